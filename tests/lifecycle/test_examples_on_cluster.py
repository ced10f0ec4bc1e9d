"""Each example's configuration spawns and stops a server on the simulated cluster.

``tests/unit/test_examples.py`` checks the objects an example builds; this checks that
they work together when the spawner creates them: the PVC is bound and mounted, the
Service and the Secret are created and owned by the pod, the user's namespace appears.
The examples are meant for real clusters, so only the API address is changed here
(``k8s_api_host`` instead of in-cluster configuration).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from kubesim.cluster.config import ClusterConfig
from kubesim.cluster.nodes import NodePoolSpec
from kubesim.cluster.testing import run_cluster
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from async_kubespawner import KubeSpawner
from async_kubespawner.kube.client import close_shared_apis
from async_kubespawner.kube.reflector import stop_reflectors
from async_kubespawner.testing import build_spawner

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[Any]:
    config = ClusterConfig.fast(nodes=[NodePoolSpec(count=2, cpu="8", memory="32Gi")])
    async with run_cluster(config) as simulator:
        yield simulator
        await stop_reflectors()
        await close_shared_apis()


def spawner_for(sim: Any, example: str, user: str = "alice", server: str = "") -> KubeSpawner:
    config: Config = PyFileConfigLoader("jupyterhub_config.py", path=str(EXAMPLES / example)).load_config()
    config.KubeSpawner.k8s_api_host = sim.url
    config.KubeSpawner.start_timeout = 120  # the test's bound only: the fast cluster takes milliseconds
    return build_spawner(KubeSpawner, user, config=config, servername=server)


def stored(sim: Any, plural: str, namespace: str | None) -> dict[str, dict[str, Any]]:
    items, _ = sim.store.list(sim.store.resource(plural), namespace)
    return {item["metadata"]["name"]: item for item in items}


async def test_cluster_example_spawns_with_pvc_and_service(sim: Any) -> None:
    spawner = spawner_for(sim, "cluster")
    url = await spawner.start()
    pod = stored(sim, "pods", "default")["jupyter-alice"]
    assert pod["status"]["phase"] == "Running"
    # services_enabled: the URL goes through the Service's DNS name, as in the chart.
    assert url == "http://jupyter-alice.default.svc.cluster.local:8888"
    service = stored(sim, "services", "default")["jupyter-alice"]
    assert service["metadata"]["ownerReferences"][0]["uid"] == pod["metadata"]["uid"]
    pvc = stored(sim, "persistentvolumeclaims", "default")["claim-alice"]
    assert pvc["status"]["phase"] == "Bound"
    assert {"name": "volume-alice", "persistentVolumeClaim": {"claimName": "claim-alice"}} in pod["spec"]["volumes"]

    await spawner.stop()
    assert "jupyter-alice" not in stored(sim, "pods", "default")
    # The home directory outlives the server.
    assert "claim-alice" in stored(sim, "persistentvolumeclaims", "default")


async def test_named_servers_example_keeps_one_claim_per_server(sim: Any) -> None:
    spawners = [spawner_for(sim, "named-servers-pvc", server=name) for name in ("", "analysis")]
    for spawner in spawners:
        await spawner.start()
    claims = stored(sim, "persistentvolumeclaims", "default")
    assert {"claim-alice", "claim-alice--analysis"} <= claims.keys()
    assert all(claims[name]["status"]["phase"] == "Bound" for name in ("claim-alice", "claim-alice--analysis"))
    # remember_pvc_name: the claim's name is in the state the hub saves.
    assert spawners[1].get_state()["pvc_name"] == "claim-alice--analysis"
    for spawner in spawners:
        await spawner.stop()
    assert not [name for name in stored(sim, "pods", "default") if name.startswith("jupyter-alice")]


async def test_user_namespaces_example_creates_the_users_namespace(sim: Any) -> None:
    spawner = spawner_for(sim, "user-namespaces")
    await spawner.start()
    namespace = stored(sim, "namespaces", None)["user-alice"]
    assert namespace["metadata"]["labels"]["hub.jupyter.org/user-namespace"] == "true"
    assert stored(sim, "pods", "user-alice")["jupyter-alice"]["status"]["phase"] == "Running"
    assert "claim-alice" in stored(sim, "persistentvolumeclaims", "user-alice")
    await spawner.stop()
    assert "jupyter-alice" not in stored(sim, "pods", "user-alice")


async def test_hardened_example_spawns_with_the_token_in_a_secret(sim: Any) -> None:
    (namespace,) = [
        doc
        for doc in yaml.safe_load_all((EXAMPLES / "hardened" / "users-namespace.yaml").read_text())
        if doc and doc["kind"] == "Namespace"
    ]
    await sim.store.create(sim.store.resource("namespaces"), None, namespace)
    spawner = spawner_for(sim, "hardened")
    await spawner.start()
    pod = stored(sim, "pods", "jhub-users")["jupyter-alice"]
    assert pod["status"]["phase"] == "Running"
    (container,) = [c for c in pod["spec"]["containers"] if c["name"] == "notebook"]
    assert "token-of-alice" not in yaml.safe_dump(pod), "the API token is readable in the pod"
    (token_env,) = [e for e in container["env"] if e["name"] == "JUPYTERHUB_API_TOKEN"]
    secret_name = token_env["valueFrom"]["secretKeyRef"]["name"]
    secret = stored(sim, "secrets", "jhub-users")[secret_name]
    assert secret["metadata"]["ownerReferences"][0]["uid"] == pod["metadata"]["uid"]
    await spawner.stop()
    assert "jupyter-alice" not in stored(sim, "pods", "jhub-users")


@pytest.mark.parametrize("profile", [{"profile": "small"}, {"profile": "large", "image": "previous"}])
async def test_local_example_profiles_spawn(sim: Any, profile: dict[str, str]) -> None:
    spawner = spawner_for(sim, "local")
    spawner.user_options = profile
    await spawner.start()
    pod = stored(sim, "pods", "default")["jupyter-alice"]
    assert pod["status"]["phase"] == "Running"
    expected_image = "quay.io/jupyterhub/singleuser:4.1" if profile["profile"] == "large" else "quay.io/jupyterhub/singleuser:5"
    assert pod["spec"]["containers"][0]["image"] == expected_image
    await spawner.stop()
