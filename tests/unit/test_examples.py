"""Every example under examples/ loads, uses only real settings, and its RBAC covers what the spawner does.

An example that a newcomer copies must not carry a misspelt setting (traitlets would only
warn, and the hub would silently run without it) nor RBAC that forgets a verb (the spawn
would fail with a 403 in production, never in a demo).
"""

from __future__ import annotations

from decimal import Decimal
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio.client import ApiClient, V1OwnerReference
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from async_kubespawner import KubeSpawner
from async_kubespawner.kube.quantity import parse_quantity
from async_kubespawner.testing import build_spawner

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_NAMES = [
    "local", "cluster", "named-servers-pvc", "user-namespaces", "hardened", "internal-ssl"
]


def load_example(name: str) -> Config:
    loader = PyFileConfigLoader("jupyterhub_config.py", path=str(EXAMPLES / name))
    return loader.load_config()


def spawner_for(name: str, user: str = "alice", server: str = "") -> KubeSpawner:
    """A spawner configured by example ``name`` for ``user``'s server, as the hub would build it."""
    return build_spawner(
        KubeSpawner,
        user,
        config=load_example(name),
        servername=server,
        api_token="example-api-token-0123456789",
    )


async def as_json(model: Any) -> Any:
    """A kubernetes_asyncio model as the JSON the API server receives (camelCase, no nulls)."""
    async with ApiClient() as api:
        return api.sanitize_for_serialization(model)


async def pod_dict(spawner: KubeSpawner) -> dict[str, Any]:
    return dict(await as_json(await spawner.get_pod_manifest()))


def quantities(resources: dict[str, Any]) -> dict[str, Decimal]:
    """Requests or limits as numbers: "2G", 2000000000 and "2e9" are the same quantity."""
    return {key: parse_quantity(value) for key, value in resources.items()}


def notebook(pod: dict[str, Any]) -> dict[str, Any]:
    (container,) = [c for c in pod["spec"]["containers"] if c["name"] == "notebook"]
    return container


OWNER = V1OwnerReference(api_version="v1", kind="Pod", name="jupyter-alice", uid="uid-1")


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_every_example_directory_is_tested() -> None:
    found = sorted(p.name for p in EXAMPLES.iterdir() if (p / "jupyterhub_config.py").exists())
    assert found == sorted(EXAMPLE_NAMES)


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_loads_and_selects_this_spawner(name: str) -> None:
    config = load_example(name)
    assert config.JupyterHub.spawner_class == "async-kubernetes"
    assert config.KubeSpawner, f"{name} configures no KubeSpawner setting"


def test_the_spawner_entry_point_is_this_package() -> None:
    (entry,) = [ep for ep in entry_points(group="jupyterhub.spawners") if ep.name == "async-kubernetes"]
    assert entry.value == "async_kubespawner:KubeSpawner"


def test_local_example_matches_what_the_demo_promises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    config = load_example("local")
    assert config.DummyAuthenticator.password == "demo"
    assert "password ``demo``" in (EXAMPLES / "local" / "jupyterhub_config.py").read_text()
    assert config.JupyterHub.allow_named_servers is True
    assert config.JupyterHub.hub_ip == "127.0.0.1"
    profiles = config.KubeSpawner.profile_list
    assert [p["slug"] for p in profiles] == ["small", "large"]
    assert sum(bool(p.get("default")) for p in profiles) == 1
    choices = profiles[1]["profile_options"]["image"]["choices"]
    images = {c["kubespawner_override"]["image"] for c in choices.values()}
    assert len(images) == 2, "each choice of the option must pick a different image"
    assert config.KubeSpawner.events_enabled is True


def test_local_example_password_can_be_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_PASSWORD", "s3cret")
    assert load_example("local").DummyAuthenticator.password == "s3cret"


def test_hardened_example_turns_on_both_protections() -> None:
    config = load_example("hardened")
    assert config.KubeSpawner.security_profile == "restricted"
    assert config.KubeSpawner.api_token_in_secret is True
    (namespace,) = [
        d for d in load_yaml_documents(EXAMPLES / "hardened" / "users-namespace.yaml") if d["kind"] == "Namespace"
    ]
    assert namespace["metadata"]["name"] == config.KubeSpawner.namespace
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# -- the objects each example builds for a sample user ------------------------------------------


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
async def test_every_example_builds_a_pod_for_a_sample_user(name: str) -> None:
    spawner = spawner_for(name, server="analysis")
    pod = await pod_dict(spawner)
    assert pod["metadata"]["name"] == spawner.pod_name == "jupyter-alice--analysis"
    assert notebook(pod)["ports"][0]["name"] == "notebook-port"
    assert pod["metadata"]["labels"]["hub.jupyter.org/servername"] == "analysis"


async def test_local_example_pod_runs_the_singleuser_server_in_default() -> None:
    spawner = spawner_for("local")
    pod = await pod_dict(spawner)
    assert spawner.namespace == "default"
    container = notebook(pod)
    assert container["image"] == "quay.io/jupyterhub/singleuser:5"
    assert container["args"] == ["jupyterhub-singleuser", "--allow-root"]
    # JupyterHub's byte units are binary: "128M" is 128 MiB.
    assert quantities(container["resources"]["requests"]) == {
        "cpu": Decimal("0.1"),
        "memory": parse_quantity("128Mi"),
    }


async def test_local_example_large_profile_option_sets_image_and_resources() -> None:
    spawner = spawner_for("local")
    spawner.user_options = {"profile": "large", "image": "previous"}
    await spawner.load_user_options()
    container = notebook(await pod_dict(spawner))
    assert container["image"] == "quay.io/jupyterhub/singleuser:4.1"
    assert quantities(container["resources"]["limits"]) == {"cpu": 2, "memory": parse_quantity("2Gi")}
    assert quantities(container["resources"]["requests"]) == {"cpu": 1, "memory": parse_quantity("1Gi")}


async def test_cluster_example_mounts_a_dynamic_pvc_and_targets_user_nodes() -> None:
    spawner = spawner_for("cluster")
    pod = await pod_dict(spawner)
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v]
    assert claims == [spawner.pvc_name] == ["claim-alice"]
    assert {"name": "volume-alice", "mountPath": "/home/jovyan"} in notebook(pod)["volumeMounts"]
    assert any(t["key"] == "hub.jupyter.org/dedicated" for t in pod["spec"]["tolerations"])
    assert pod["spec"]["securityContext"]["fsGroup"] == 100
    assert notebook(pod)["securityContext"]["runAsUser"] == 1000
    pvc = await as_json(spawner.get_pvc_manifest())
    assert pvc["metadata"]["name"] == "claim-alice"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "10Gi"
    service = await as_json(spawner.get_service_manifest(OWNER))
    assert service["metadata"]["name"] == spawner.pod_name
    assert service["metadata"]["ownerReferences"][0]["uid"] == "uid-1"


async def test_named_servers_example_gives_each_server_its_own_claim() -> None:
    claims = {}
    for server in ("", "analysis", "teaching"):
        spawner = spawner_for("named-servers-pvc", server=server)
        pod = await pod_dict(spawner)
        (volume,) = pod["spec"]["volumes"]
        claims[server] = volume["persistentVolumeClaim"]["claimName"]
        pvc = await as_json(spawner.get_pvc_manifest())
        assert pvc["metadata"]["name"] == claims[server]
        assert pvc["spec"]["storageClassName"] == "standard"
        assert pvc["metadata"]["labels"]["hub.jupyter.org/server"] == server
    assert claims == {"": "claim-alice", "analysis": "claim-alice--analysis", "teaching": "claim-alice--teaching"}


async def test_user_namespaces_example_puts_each_user_in_their_own_namespace() -> None:
    namespaces = {user: spawner_for("user-namespaces", user=user).namespace for user in ("alice", "bob")}
    # The hub runs in "default" here, so {hubnamespace} is "user" (as upstream).
    assert namespaces == {"alice": "user-alice", "bob": "user-bob"}
    spawner = spawner_for("user-namespaces")
    namespace = await as_json(spawner.get_namespace_manifest())
    assert namespace["metadata"]["name"] == "user-alice"
    assert namespace["metadata"]["labels"]["hub.jupyter.org/username"] == "alice"


async def test_hardened_example_pod_is_restricted_and_carries_no_token() -> None:
    spawner = spawner_for("hardened")
    pod = await pod_dict(spawner)
    context = notebook(pod)["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert context["runAsNonRoot"] is True
    seccomp = (pod["spec"].get("securityContext") or {}).get("seccompProfile") or context.get("seccompProfile")
    assert seccomp == {"type": "RuntimeDefault"}
    assert pod["spec"]["automountServiceAccountToken"] is False
    env = notebook(pod)["env"]
    assert all(e.get("value") != spawner.api_token for e in env), "the API token is in the pod spec"
    token_refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env if e["name"] == "JUPYTERHUB_API_TOKEN"}
    secret = await as_json(spawner.get_secret_manifest(OWNER))
    assert token_refs["JUPYTERHUB_API_TOKEN"]["name"] == secret["metadata"]["name"]


# -- RBAC -------------------------------------------------------------------------------------

#: What the spawner calls on the API, per resource (see the comments in the rbac files).
SPAWNER_NEEDS = {
    "pods": {"get", "list", "watch", "create", "delete"},
    "events": {"list", "watch"},
    "persistentvolumeclaims": {"get", "create", "delete"},
    # get: the owner of an existing Secret/Service is checked before it is replaced or
    # deleted (docs/security.md)
    "services": {"get", "create", "delete"},
    "secrets": {"get", "create", "delete"},
}


def granted(rules: list[dict[str, Any]]) -> dict[str, set[str]]:
    allowed: dict[str, set[str]] = {}
    for rule in rules:
        assert rule["apiGroups"] == [""], "the spawner only uses the core API group"
        for resource in rule["resources"]:
            allowed.setdefault(resource, set()).update(rule["verbs"])
    return allowed


def missing_permissions(rules: list[dict[str, Any]], needs: dict[str, set[str]]) -> dict[str, set[str]]:
    allowed = granted(rules)
    return {
        resource: verbs - allowed.get(resource, set())
        for resource, verbs in needs.items()
        if verbs - allowed.get(resource, set())
    }


@pytest.mark.parametrize(
    ("path", "role_kind", "needs"),
    [
        ("cluster/rbac.yaml", "Role", SPAWNER_NEEDS),
        ("hardened/users-namespace.yaml", "Role", SPAWNER_NEEDS),
        (
            "user-namespaces/rbac.yaml",
            "ClusterRole",
            {**SPAWNER_NEEDS, "namespaces": {"create"}},
        ),
    ],
)
def test_rbac_grants_what_the_spawner_does(path: str, role_kind: str, needs: dict[str, set[str]]) -> None:
    docs = load_yaml_documents(EXAMPLES / path)
    (role,) = [d for d in docs if d["kind"] == role_kind]
    assert missing_permissions(role["rules"], needs) == {}
    (binding,) = [d for d in docs if d["kind"] == f"{role_kind}Binding"]
    assert binding["roleRef"] == {
        "kind": role_kind,
        "name": role["metadata"]["name"],
        "apiGroup": "rbac.authorization.k8s.io",
    }
    (subject,) = binding["subjects"]
    assert subject == {"kind": "ServiceAccount", "name": "hub", "namespace": "jhub"}


def test_rbac_check_notices_a_missing_verb() -> None:
    rules = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "create"]}]
    assert missing_permissions(rules, {"pods": {"create", "delete"}}) == {"pods": {"delete"}}


def test_user_namespaces_example_has_no_namespaced_role() -> None:
    """A Role would not let the reflectors watch across namespaces: only a ClusterRole works."""
    kinds = {d["kind"] for d in load_yaml_documents(EXAMPLES / "user-namespaces" / "rbac.yaml")}
    assert "Role" not in kinds
    assert load_example("user-namespaces").KubeSpawner.enable_user_namespaces is True
