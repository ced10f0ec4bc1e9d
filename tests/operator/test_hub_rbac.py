"""Least privilege in operator mode, on a simulated cluster that enforces RBAC.

The hub runs as the ServiceAccount of ``examples/operator/hub-role.yaml`` and the
operator as the one of ``examples/operator/operator.yaml``: a full spawn and stop work,
nothing either of them does is refused, and the hub's identity is refused (403) creating
a pod, reading a Secret or patching a template.

Needs the simulator's authentication and RBAC (``cluster_factory(..., auth=True)`` and
the ``sa_client`` fixture of ``kubesim.auth``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from kubesim.cluster.config import ClusterConfig

from async_kubespawner.operator.models import GROUP, VERSION

from .conftest import OperatorHarness, make_spawner

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "operator"
NAMESPACE = "jhub"  # the namespace examples/operator/operator.yaml is written for
#: the client's keyword for a patch's content type, which its stubs leave out
AS_MERGE_PATCH: dict[str, Any] = {"_content_type": "application/merge-patch+json"}


def rbac_objects(name: str) -> list[dict[str, Any]]:
    """The example's RBAC objects (what ``kubectl apply -n jhub`` would create)."""
    docs = [d for d in yaml.safe_load_all((EXAMPLE / name).read_text()) if d]
    return [d for d in docs if d["kind"] != "Deployment"]


async def refused(call: Any) -> None:
    with pytest.raises(ApiException) as info:
        await call
    assert info.value.status == 403, info.value.body


async def test_hub_and_operator_need_only_the_example_rbac(
    cluster_factory: Any, sa_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = await cluster_factory(ClusterConfig.fast(), auth=True)
    hub = await sa_client(NAMESPACE, "hub", rbac_objects("hub-role.yaml"), sim=sim)
    operator_sa = await sa_client(NAMESPACE, "async-kubespawner-operator",
                                  rbac_objects("operator.yaml"), sim=sim)
    denied: list[tuple[str, Any]] = []
    authorizer = sim.auth.authorizer
    real_authorize = authorizer.authorize

    def recording(user: Any, attrs: Any) -> Any:
        decision = real_authorize(user, attrs)
        if not decision.allowed and user.name in (hub.username, operator_sa.username):
            denied.append((user.name, attrs))
        return decision

    monkeypatch.setattr(authorizer, "authorize", recording)
    harness = OperatorHarness(sim, NAMESPACE)  # the administrator installs CRDs and template
    try:
        await harness.setup()
        await harness.start_operator(config=operator_sa.client_configuration())
        spawner = make_spawner(sim, namespace=NAMESPACE, kubeconfig=str(hub.kubeconfig_path))
        url = await spawner.start()
        assert url.endswith(":8888")
        assert await spawner.poll() is None
        await spawner.stop()
        assert await spawner.poll() == 1
        await spawner.delete_forever()
        assert denied == [], denied

        core = client.CoreV1Api(hub.api_client)
        # cast: the client sends a plain dict as it is; its stubs ask for the model
        await refused(core.create_namespaced_pod(NAMESPACE, cast(Any, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "miner"},
            "spec": {"containers": [{"name": "x", "image": "evil/miner"}]}})))
        await refused(core.read_namespaced_secret("jupyter-alice-env", NAMESPACE))
        await refused(core.list_namespaced_secret(NAMESPACE))
        await refused(core.create_namespaced_persistent_volume_claim(NAMESPACE, cast(Any, {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "x"},
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}}})))
        custom = client.CustomObjectsApi(hub.api_client)
        await refused(custom.patch_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, "notebooktemplates", "default",
            {"spec": {"pods": []}}, **AS_MERGE_PATCH))
        await refused(custom.list_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, "notebooktemplates"))
        await refused(custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, NAMESPACE, "notebookservers", "jupyter-alice",
            {"status": {"phase": "Ready"}}, **AS_MERGE_PATCH))
        assert {u for u, _ in denied} == {hub.username}
        assert json.dumps(sorted(a.verb for _, a in denied)) == json.dumps(sorted(
            ["create", "get", "list", "create", "patch", "list", "patch"]))
    finally:
        await harness.close()
