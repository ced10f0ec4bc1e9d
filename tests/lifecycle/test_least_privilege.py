"""The examples' RBAC is enough for a whole spawn and stop, and nothing more is allowed.

The simulated cluster runs with authentication and RBAC on; the hub talks to it as the
ServiceAccount of the example (its token in a kubeconfig, as in a pod), so every call the
spawner makes is authorized exactly as on a real cluster. Every authorization decision
made for the hub is recorded: all must be "allowed", and each must be covered by the
example's rules (so a rule the spawner never needs shows up as unused in review).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes_asyncio.client import CoreV1Api, RbacAuthorizationV1Api
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config import kube_config
from kubesim.auth.rbac import rule_allows
from kubesim.cluster.config import ClusterConfig

from async_kubespawner import KubeSpawner
from async_kubespawner.kube.client import close_shared_apis
from async_kubespawner.kube.reflector import stop_reflectors
from async_kubespawner.testing import build_spawner, kubespawner_config

EXAMPLES = Path(__file__).parents[2] / "examples"
HUB_NAMESPACE = "jhub"  # where every example puts the hub (ServiceAccount jhub/hub)
CRASH = "crash,ready-after=5,exit-after=0.2,exit-code=3"
#: every feature that makes the spawner touch another kind: a PVC (created, looked up,
#: deleted with the server), a Service, the API token in a Secret
FEATURES = {
    "start_timeout": 60,
    "slow_spawn_message_threshold": 0,
    "storage_pvc_ensure": True,
    "storage_capacity": "1Gi",
    "delete_pvc": True,
    "services_enabled": True,
    "api_token_in_secret": True,
}
# example -> (RBAC files, the spawner's own settings, where the users' pods go)
CASES: dict[str, tuple[list[str], dict[str, Any], str]] = {
    "cluster": (["cluster/rbac.yaml"], {"namespace": "jhub"}, "jhub"),
    "hardened": (
        ["cluster/rbac.yaml", "hardened/users-namespace.yaml"],
        {"namespace": "jhub-users"},
        "jhub-users",
    ),
    "user-namespaces": (
        ["user-namespaces/rbac.yaml"],
        {"namespace": "jhub", "enable_user_namespaces": True},
        "user-{user}",  # {hubnamespace}-{username}; outside a pod the hub's is "default"
    ),
}


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
    assert info.value.body is not None
    return dict(json.loads(info.value.body))


def granted_rules(files: list[str]) -> list[dict[str, Any]]:
    docs = [d for f in files for d in yaml.safe_load_all((EXAMPLES / f).read_text()) if d]
    return [r for d in docs if d["kind"] in ("Role", "ClusterRole") for r in d["rules"]]


@pytest.mark.parametrize("example", sorted(CASES))
async def test_example_rbac_runs_a_spawn_and_nothing_else(
    example: str, secured_cluster: Any, sa_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    files, settings, pods_namespace = CASES[example]
    rbac = "\n---\n".join((EXAMPLES / f).read_text() for f in files)
    hub = await sa_client(HUB_NAMESPACE, "hub", rbac, sim=secured_cluster)
    # $KUBECONFIG as the hub's process would have it at start (the client reads it at import)
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(hub.kubeconfig_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    store = secured_cluster.store
    asked: list[tuple[Any, bool]] = []  # what the authorizer decided for the hub
    authorizer = secured_cluster.auth.authorizer
    real_authorize = authorizer.authorize

    def recording(user: Any, attrs: Any) -> Any:
        decision = real_authorize(user, attrs)
        if user.name == hub.username:
            asked.append((attrs, decision.allowed))
        return decision

    monkeypatch.setattr(authorizer, "authorize", recording)

    spawner = build_spawner(KubeSpawner, "alice", config=kubespawner_config({**settings, **FEATURES}))
    url = await spawner.start()
    assert url.startswith("http://")
    namespace = spawner.namespace
    assert namespace == pods_namespace.format(user="alice")
    for kind in ("pods", "persistentvolumeclaims", "services", "secrets"):
        made, _ = store.list(store.resource(kind), namespace)
        assert made, f"the spawn made no {kind}: the test would not check their RBAC"
    assert await spawner.poll() is None
    await spawner.stop()
    assert await spawner.poll() == 1
    await spawner.delete_forever()  # the PVC goes with the server (delete_pvc)
    for kind in ("pods", "services", "secrets", "persistentvolumeclaims"):
        left, _ = store.list(store.resource(kind), namespace)
        assert [o for o in left if o.get("type") != "kubernetes.io/service-account-token"] == []

    # A server that crashes before it is ready: the failure path and its cleanup.
    crashing = build_spawner(
        KubeSpawner,
        "bob",
        config=kubespawner_config(
            {**settings, "start_timeout": 60, "extra_annotations": {"sim.async-kubespawner/scenario": CRASH}}
        ),
    )
    with pytest.raises(Exception, match="code 3"):
        await crashing.start()

    # Every request the spawner made was allowed, and each is covered by the example; the
    # one exception is optional: without `get serviceaccounts` the spawner skips the check
    # that its pods' account exists (docs/security.md), and the examples do not grant it.
    refusals = [a for a, allowed in asked if not allowed]
    assert [a for a in refusals if (a.verb, a.combined_resource) != ("get", "serviceaccounts")] == []
    used = {a for a, allowed in asked if a.resource_request and allowed}
    assert {("watch", "pods"), ("watch", "events"), ("create", "pods")} <= {
        (a.verb, a.combined_resource) for a in used
    }
    rules = granted_rules(files)
    assert all(any(rule_allows(a, r) for r in rules) for a in used)

    # ... and the same identity is refused what it does not need.
    core, rbac_api = CoreV1Api(hub.api_client), RbacAuthorizationV1Api(hub.api_client)
    await refused(core.list_namespaced_secret(namespace))  # never enumerates Secrets
    await refused(core.read_namespaced_pod_log("jupyter-bob", namespace))
    await refused(core.patch_namespaced_pod("x", namespace, {"metadata": {"labels": {"a": "b"}}}))
    # cast: the client sends a plain dict as it is; its stubs ask for the model
    await refused(
        core.create_namespaced_service_account_token("hub", HUB_NAMESPACE, cast(Any, {"spec": {}}))
    )
    body = await refused(
        rbac_api.create_cluster_role(
            cast(Any, {
                "metadata": {"name": "escalate"},
                "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
            })
        )
    )
    assert body["message"] == (
        "clusterroles.rbac.authorization.k8s.io is forbidden: User "
        '"system:serviceaccount:jhub:hub" cannot create resource "clusterroles" in API group '
        '"rbac.authorization.k8s.io" at the cluster scope'
    )
    body = await refused(core.delete_node("sim-node-0"))
    assert body["details"] == {"name": "sim-node-0", "kind": "nodes"}
    if example != "user-namespaces":  # a ClusterRole reaches every namespace, by design
        body = await refused(core.list_namespaced_secret("kube-system"))
        assert body["message"] == (
            'secrets is forbidden: User "system:serviceaccount:jhub:hub" cannot list resource '
            '"secrets" in API group "" in the namespace "kube-system"'
        )
        await refused(core.list_namespaced_pod("default"))
