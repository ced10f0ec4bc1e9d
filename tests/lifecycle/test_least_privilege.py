"""The example RBAC is enough for a whole spawn and stop, and nothing more is allowed.

The simulated cluster runs with authentication and RBAC on; the hub talks to it as the
ServiceAccount of ``examples/cluster/rbac.yaml`` (its token in a kubeconfig, as in a
pod), so every call the spawner makes is authorized exactly as on a real cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio.client import CoreV1Api, RbacAuthorizationV1Api
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config import kube_config
from kubesim.cluster.config import ClusterConfig

from async_kubespawner import KubeSpawner
from async_kubespawner.kube.client import close_shared_apis
from async_kubespawner.kube.reflector import stop_reflectors
from async_kubespawner.testing import build_spawner, kubespawner_config

EXAMPLE_RBAC = Path(__file__).parents[2] / "examples" / "cluster" / "rbac.yaml"
HUB_NAMESPACE = "jhub"  # where the example puts the hub and its users' pods


@pytest.fixture
async def secured_cluster(cluster_factory: Any) -> Any:
    sim = await cluster_factory(ClusterConfig.fast(), auth=True)
    yield sim
    await stop_reflectors()
    await close_shared_apis()


async def refused(call: Any) -> dict[str, Any]:
    with pytest.raises(ApiException) as info:
        await call
    assert info.value.status == 403, info.value.body
    import json

    return json.loads(info.value.body)


async def test_example_rbac_runs_a_spawn_and_nothing_else(
    secured_cluster: Any, sa_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = await sa_client(HUB_NAMESPACE, "hub", EXAMPLE_RBAC.read_text(), sim=secured_cluster)
    # $KUBECONFIG as the hub's process would have it at start (the client reads it at import)
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(hub.kubeconfig_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    store = secured_cluster.store
    # what the authorizer is asked on the hub's behalf, and its answers
    asked: list[tuple[Any, bool]] = []
    authorizer = secured_cluster.auth.authorizer
    real_authorize = authorizer.authorize

    def recording(user: Any, attrs: Any) -> Any:
        decision = real_authorize(user, attrs)
        if user.name == hub.username:
            asked.append((attrs, decision.allowed))
        return decision

    monkeypatch.setattr(authorizer, "authorize", recording)
    # Every feature that makes the spawner touch another kind: a PVC (created, looked up,
    # deleted with the server), a Service, the API token in a Secret.
    spawner = build_spawner(
        KubeSpawner,
        "alice",
        config=kubespawner_config(
            {
                "namespace": HUB_NAMESPACE,
                "start_timeout": 60,
                "slow_spawn_message_threshold": 0,
                "storage_pvc_ensure": True,
                "storage_capacity": "1Gi",
                "delete_pvc": True,
                "services_enabled": True,
                "api_token_in_secret": True,
            }
        ),
    )
    url = await spawner.start()
    assert url.startswith("http://")
    for kind in ("persistentvolumeclaims", "services", "secrets"):
        made, _ = store.list(store.resource(kind), HUB_NAMESPACE)
        assert made, f"the spawn made no {kind}: the test would not check their RBAC"
    assert await spawner.poll() is None
    await spawner.stop()
    assert await spawner.poll() == 1
    await spawner.delete_forever()  # the PVC goes with the server (delete_pvc)
    for kind in ("pods", "services", "secrets", "persistentvolumeclaims"):
        left, _ = store.list(store.resource(kind), HUB_NAMESPACE)
        assert [o for o in left if o.get("type") != "kubernetes.io/service-account-token"] == []

    # A server that crashes: the spawner reads its log for the spawn page (pods/log).
    crashing = build_spawner(
        KubeSpawner,
        "bob",
        config=kubespawner_config(
            {
                "namespace": HUB_NAMESPACE,
                "start_timeout": 60,
                "extra_annotations": {"sim.async-kubespawner/scenario": "crash,ready-after=5,exit-after=0.2,exit-code=3"},
            }
        ),
    )
    with pytest.raises(Exception, match="code 3"):
        await crashing.start()

    # Every request the spawner made was allowed, and each is covered by the example.
    assert [a for a, allowed in asked if not allowed] == []
    used = {(a.verb, a.combined_resource) for a, _allowed in asked if a.resource_request}
    assert {("watch", "pods"), ("watch", "events"), ("create", "pods")} <= used
    granted = {
        (verb, resource)
        for rule in yaml.safe_load_all(EXAMPLE_RBAC.read_text())
        if rule and rule["kind"] == "Role"
        for r in rule["rules"]
        for resource in r["resources"]
        for verb in r["verbs"]
    }
    assert used <= granted

    # ... and the same identity is refused anything outside the example.
    core, rbac = CoreV1Api(hub.api_client), RbacAuthorizationV1Api(hub.api_client)
    body = await refused(
        rbac.create_cluster_role(
            {"metadata": {"name": "escalate"}, "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}
        )
    )
    assert body["message"] == (
        'clusterroles.rbac.authorization.k8s.io is forbidden: User '
        '"system:serviceaccount:jhub:hub" cannot create resource "clusterroles" in API group '
        '"rbac.authorization.k8s.io" at the cluster scope'
    )
    body = await refused(core.list_namespaced_secret("kube-system"))
    assert body["message"] == (
        'secrets is forbidden: User "system:serviceaccount:jhub:hub" cannot list resource '
        '"secrets" in API group "" in the namespace "kube-system"'
    )
    body = await refused(core.delete_node("sim-node-0"))
    assert body["details"] == {"name": "sim-node-0", "kind": "nodes"}
    await refused(core.list_namespaced_pod("default"))  # other namespaces' pods
    body = await refused(core.read_namespaced_secret("anyones-token", HUB_NAMESPACE))
    assert body["message"].startswith('secrets "anyones-token" is forbidden: User')
    await refused(core.read_namespaced_pod_log("jupyter-bob", HUB_NAMESPACE))
    await refused(core.patch_namespaced_pod("x", HUB_NAMESPACE, {"metadata": {"labels": {"a": "b"}}}))
    await refused(core.create_namespaced_service_account_token("hub", HUB_NAMESPACE, {"spec": {}}))
