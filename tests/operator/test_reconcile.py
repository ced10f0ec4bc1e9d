"""The operator on the simulated cluster: provisioning, status, events, teardown, retention."""

from __future__ import annotations

from typing import Any

from async_kubespawner.kube.client import SECRETS
from async_kubespawner.operator.kubeio import NOTEBOOK_SERVERS
from async_kubespawner.operator.models import FINALIZER, LABEL_SERVER

from .conftest import NAMESPACE, OperatorHarness, notebook_server


def phase(obj: dict[str, Any] | None) -> str | None:
    return ((obj or {}).get("status") or {}).get("phase")


async def create_server(h: OperatorHarness, name: str = "alice", **kwargs: Any) -> dict[str, Any]:
    body = notebook_server(name, **kwargs)
    body["spec"]["envSecretRef"] = {"name": f"{name}-env"}
    created = await h.api.create(NOTEBOOK_SERVERS, NAMESPACE, body)
    await h.api.create(SECRETS, NAMESPACE, {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": f"{name}-env", "ownerReferences": [{
            "apiVersion": created["apiVersion"], "kind": "NotebookServer", "name": name,
            "uid": created["metadata"]["uid"]}]},
        "stringData": {"JUPYTERHUB_API_TOKEN": "t0ken"},
    })
    return created


async def test_server_is_provisioned_and_becomes_ready(harness: OperatorHarness) -> None:
    await harness.start_operator()
    created = await create_server(harness, variables={"memory": "2Gi"})
    ready = await harness.wait_server("alice", lambda s: phase(s) == "Ready")
    assert ready is not None
    status = ready["status"]
    assert status["port"] == 8888 and status["address"]
    assert {(c["kind"], c["name"]) for c in status["children"]} == {
        ("PersistentVolumeClaim", "claim-alice"), ("Service", "jupyter-alice"),
        ("Pod", "jupyter-alice")}
    assert FINALIZER in ready["metadata"]["finalizers"]
    pods = harness.store_items("pods")
    assert len(pods) == 1
    pod = pods[0]
    assert pod["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
    assert pod["metadata"]["labels"][LABEL_SERVER] == "alice"
    assert pod["metadata"]["labels"]["component"] == "singleuser-server"
    container = pod["spec"]["containers"][0]
    assert container["resources"]["limits"]["memory"] == "2Gi"
    assert container["envFrom"] == [{"secretRef": {"name": "alice-env"}}]
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "claim-alice"
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {"Accepted": "True", "ChildrenCreated": "True", "Ready": "True"}
    reasons = [e["reason"] for e in sorted(harness.store_items("events"),
                                           key=lambda e: int(e["metadata"]["resourceVersion"]))
               if e["involvedObject"].get("kind") == "NotebookServer"]
    assert reasons == ["Provisioning", "Created", "Ready"]


async def test_refused_variable_fails_the_server_naming_it(harness: OperatorHarness) -> None:
    await harness.start_operator()
    await create_server(harness, variables={"image": "evil.example/miner:1"})
    failed = await harness.wait_server("alice", lambda s: phase(s) == "Failed")
    assert failed is not None
    assert "'image'" in failed["status"]["reason"]
    accepted = next(c for c in failed["status"]["conditions"] if c["type"] == "Accepted")
    assert accepted["status"] == "False" and accepted["reason"] == "VariableRefused"
    assert harness.store_items("pods") == [] and harness.store_items("persistentvolumeclaims") == []


async def test_stop_tears_down_in_order_and_retains_the_volume(harness: OperatorHarness) -> None:
    await harness.start_operator()
    first = await create_server(harness)
    await harness.wait_server("alice", lambda s: phase(s) == "Ready")
    await harness.api.delete(NOTEBOOK_SERVERS, NAMESPACE, "alice")
    await harness.wait_server("alice", lambda s: s is None)
    assert harness.store_items("pods") == []
    assert harness.store_items("services") == [] or all(
        s["metadata"]["name"] == "kubernetes" for s in harness.store_items("services"))
    pvcs = harness.store_items("persistentvolumeclaims")
    assert [p["metadata"]["name"] for p in pvcs] == ["claim-alice"]
    assert not pvcs[0]["metadata"].get("ownerReferences")
    # started again: the same volume is adopted, not duplicated
    second = await create_server(harness)
    assert second["metadata"]["uid"] != first["metadata"]["uid"]
    await harness.wait_server("alice", lambda s: phase(s) == "Ready")
    pvcs = harness.store_items("persistentvolumeclaims")
    assert len(pvcs) == 1
    assert pvcs[0]["metadata"]["ownerReferences"][0]["uid"] == second["metadata"]["uid"]
