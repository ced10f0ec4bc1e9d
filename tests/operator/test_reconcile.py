"""The operator on the simulated cluster: provisioning, status, events, teardown, retention."""

from __future__ import annotations

from typing import Any, cast

from async_kubespawner.operator.kubeio import NOTEBOOK_SERVERS
from async_kubespawner.operator.models import FINALIZER, LABEL_SERVER

from .conftest import NAMESPACE, OperatorHarness, notebook_server
from .servers import create_server, phase


async def one_pass(operator: Any, name: str) -> None:
    """Queue the server and wait until a reconcile pass of it has finished."""
    import asyncio

    done = asyncio.Event()
    reconcile = operator.reconciler.reconcile

    async def observed(key: Any) -> Any:
        try:
            return await reconcile(key)
        finally:
            if key == (NAMESPACE, name):
                done.set()

    operator.reconciler.reconcile = observed
    try:
        operator.queue.add((NAMESPACE, name))
        async with asyncio.timeout(10):
            await done.wait()
    finally:
        operator.reconciler.reconcile = reconcile


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


async def test_image_that_cannot_be_pulled_fails_fast_with_a_message(cluster_factory: Any) -> None:
    from kubesim.cluster.config import ClusterConfig

    from .conftest import OperatorHarness

    sim = await cluster_factory(ClusterConfig.fast(
        image_rules=[("*/broken:*", "image-pull-failure")]))
    h = OperatorHarness(sim)
    await h.setup()
    try:
        await h.start_operator()
        await create_server(h, variables={"image": "quay.io/jupyter/broken:1"})
        failed = await h.wait_server("alice", lambda s: phase(s) == "Failed")
        assert failed is not None
        assert "cannot be pulled" in failed["status"]["reason"]
        ready = next(c for c in failed["status"]["conditions"] if c["type"] == "Ready")
        assert ready["reason"] == "ImagePullFailed"
        warnings = [e for e in h.store_items("events")
                    if e["involvedObject"].get("kind") == "NotebookServer"
                    and e["type"] == "Warning"]
        assert [e["reason"] for e in warnings] == ["ImagePullFailed"]  # once, not per pass
    finally:
        await h.close()


async def test_changed_template_does_not_disturb_a_running_server(
    harness: OperatorHarness,
) -> None:
    from async_kubespawner.operator.kubeio import NOTEBOOK_TEMPLATES, merge_patch

    await harness.start_operator()
    await create_server(harness)
    ready = await harness.wait_server("alice", lambda s: phase(s) == "Ready")
    assert ready is not None
    pod_uid = harness.store_items("pods")[0]["metadata"]["uid"]
    template = await harness.api.get(NOTEBOOK_TEMPLATES, NAMESPACE, "default")
    template["spec"]["pods"][0]["name"] = "renamed-{server.slug}"
    patched = await merge_patch(harness.api, NOTEBOOK_TEMPLATES, NAMESPACE, "default",
                                {"spec": {"pods": template["spec"]["pods"]}})
    assert patched["metadata"]["generation"] == 2
    # a server started afterwards uses the new template ...
    await create_server(harness, "bob", user="bob")
    await harness.wait_server("bob", lambda s: phase(s) == "Ready")
    names = sorted(p["metadata"]["name"] for p in harness.store_items("pods"))
    assert names == ["jupyter-alice", "renamed-bob"]
    # ... and alice's server was left as it was
    assert any(p["metadata"]["uid"] == pod_uid for p in harness.store_items("pods"))
    alice = await harness.server("alice")
    assert alice is not None and phase(alice) == "Ready"
    assert alice["status"]["templateGeneration"] == ready["status"]["templateGeneration"] == 1


async def test_existing_object_of_someone_else_is_never_adopted(harness: OperatorHarness) -> None:
    from async_kubespawner.kube.client import PODS

    await harness.api.create(PODS, NAMESPACE, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "jupyter-alice"},
        "spec": {"containers": [{"name": "x", "image": "busybox"}]}})
    operator = await harness.start_operator()
    await create_server(harness)
    failed = await harness.wait_server("alice", lambda s: phase(s) == "Failed")
    assert failed is not None
    assert "does not belong to this server" in failed["status"]["reason"]
    pods = harness.store_items("pods")
    assert len(pods) == 1 and not pods[0]["metadata"].get("ownerReferences")
    # a refused server is final for its spec and template: another pass writes nothing
    await one_pass(operator, "alice")
    again = await harness.server("alice")
    assert again is not None
    assert again["metadata"]["resourceVersion"] == failed["metadata"]["resourceVersion"]


async def test_purge_deletes_only_this_servers_retained_volumes(harness: OperatorHarness) -> None:
    await harness.start_operator()
    for user in ("alice", "bob"):
        await create_server(harness, user, user=user)
        await harness.wait_server(user, lambda s: phase(s) == "Ready")
        await harness.api.delete(NOTEBOOK_SERVERS, NAMESPACE, user)
        await harness.wait_server(user, lambda s: s is None)
    assert len(harness.store_items("persistentvolumeclaims")) == 2
    body = notebook_server("alice")
    body["spec"]["purgeStorage"] = True
    await harness.api.create(NOTEBOOK_SERVERS, NAMESPACE, body)
    purged = await harness.wait_server("alice", lambda s: any(
        c["type"] == "StoragePurged" for c in ((s or {}).get("status") or {}).get("conditions", [])))
    assert purged is not None
    remaining = [p["metadata"]["name"] for p in harness.store_items("persistentvolumeclaims")
                 if not p["metadata"].get("deletionTimestamp")]
    assert remaining == ["claim-bob"]
    assert harness.store_items("pods") == []  # a purge provisions nothing


async def test_health_and_metrics_endpoints(harness: OperatorHarness) -> None:
    import aiohttp
    from aiohttp.test_utils import TestServer

    from async_kubespawner.operator.app import health_app

    operator = await harness.start_operator()
    await operator.wait_synced()
    server = TestServer(health_app(operator))
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(server.make_url("/healthz")) as r:
                assert r.status == 200
                body = await r.json()
                assert body["identity"] == "op-a" and body["synced"] is True
            async with http.get(server.make_url("/readyz")) as r:
                assert r.status == 200
            async with http.get(server.make_url("/metrics")) as r:
                text = await r.text()
                assert "kubespawner_operator_leader" in text
                assert "kubespawner_operator_reconcile_duration_seconds" in text
            await operator.kill()
            async with http.get(server.make_url("/healthz")) as r:
                assert r.status == 503
    finally:
        await server.close()


WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced",
             "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                 "openAPIV3Schema": {"type": "object", "properties": {"spec": {
                     "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}]},
}


async def test_other_resources_of_any_kind_are_created_owned_and_removed(
    harness: OperatorHarness,
) -> None:
    from .conftest import CRD_KIND, example_template

    await harness.api.request("create", CRD_KIND, "POST",
                              "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                              body=WIDGET_CRD)
    template = example_template()
    template["metadata"]["name"] = "extras"
    template["spec"]["otherResources"] += [
        {"id": "settings", "apiVersion": "v1", "kind": "ConfigMap", "name": "settings-{server.slug}",
         "data": {"owner": "{user.name}", "volume": "{pvcs.home.name}"}},
        {"id": "widget", "apiVersion": "example.com/v1", "kind": "Widget",
         "name": "widget-{server.slug}", "spec": {"for": "{user.name}"}},
    ]
    from async_kubespawner.operator.kubeio import NOTEBOOK_TEMPLATES

    await harness.api.create(NOTEBOOK_TEMPLATES, NAMESPACE, template)
    await harness.start_operator()
    server = await create_server(harness, template="extras")
    await harness.wait_server("alice", lambda s: phase(s) == "Ready")
    (config_map,) = [c for c in harness.store_items("configmaps")
                     if c["metadata"]["name"] == "settings-alice"]
    assert config_map["data"] == {"owner": "alice", "volume": "claim-alice"}
    assert config_map["metadata"]["ownerReferences"][0]["uid"] == server["metadata"]["uid"]
    widgets = harness.sim.store.list(
        harness.sim.store.registry.by_kind("Widget", "example.com/v1"), NAMESPACE)[0]
    assert [w["spec"] for w in widgets] == [{"for": "alice"}]
    await harness.api.delete(NOTEBOOK_SERVERS, NAMESPACE, "alice")
    await harness.wait_server("alice", lambda s: s is None)
    assert not [c for c in harness.store_items("configmaps")
                if c["metadata"]["name"] == "settings-alice"]
    assert harness.sim.store.list(
        harness.sim.store.registry.by_kind("Widget", "example.com/v1"), NAMESPACE)[0] == []


async def test_cluster_scoped_child_is_refused_before_anything_is_created(
    harness: OperatorHarness,
) -> None:
    from async_kubespawner.operator.kubeio import NOTEBOOK_TEMPLATES

    from .conftest import example_template

    template = example_template()
    template["metadata"]["name"] = "escape"
    template["spec"]["otherResources"].append(
        {"id": "ns", "apiVersion": "v1", "kind": "Namespace", "name": "{user.name}-playground"})
    await harness.api.create(NOTEBOOK_TEMPLATES, NAMESPACE, template)
    await harness.start_operator()
    await create_server(harness, template="escape")
    failed = await harness.wait_server("alice", lambda s: phase(s) == "Failed")
    assert failed is not None and "cluster-scoped" in failed["status"]["reason"]
    assert harness.store_items("persistentvolumeclaims") == []
    assert harness.store_items("pods") == []


async def test_cluster_template(harness: OperatorHarness) -> None:
    from async_kubespawner.operator.kubeio import CLUSTER_NOTEBOOK_TEMPLATES

    from .conftest import example_template

    template = example_template()
    template["kind"] = "ClusterNotebookTemplate"
    template["metadata"] = {"name": "shared"}
    template["spec"]["pods"][0]["name"] = "shared-{server.slug}"
    await harness.api.create(CLUSTER_NOTEBOOK_TEMPLATES, None, template)
    await harness.start_operator()
    body = notebook_server("alice")
    body["spec"]["templateRef"] = {"name": "shared", "kind": "ClusterNotebookTemplate"}
    await harness.api.create(NOTEBOOK_SERVERS, NAMESPACE, body)
    await harness.wait_server("alice", lambda s: phase(s) == "Ready")
    assert [p["metadata"]["name"] for p in harness.store_items("pods")] == ["shared-alice"]


async def test_deleting_the_template_leaves_running_servers_alone_and_opt_in_restarts(
    harness: OperatorHarness,
) -> None:
    from async_kubespawner.operator.kubeio import NOTEBOOK_TEMPLATES, merge_patch

    operator = await harness.start_operator()
    await create_server(harness)
    await harness.wait_server("alice", lambda s: phase(s) == "Ready")
    await harness.api.delete(NOTEBOOK_TEMPLATES, NAMESPACE, "default")
    # a pass after the deletion (the resync does the same) keeps the server Ready
    before = await harness.server("alice")
    assert before is not None
    await one_pass(operator, "alice")
    alice = await harness.server("alice")
    assert alice is not None and phase(alice) == "Ready"
    assert alice["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    # an administrator who opts in stops servers made from an older generation
    from .conftest import example_template

    template = example_template()
    template["spec"]["updateRunningServers"] = True
    await harness.api.create(NOTEBOOK_TEMPLATES, NAMESPACE, template)
    await merge_patch(harness.api, NOTEBOOK_TEMPLATES, NAMESPACE, "default",
                      {"spec": {"notebookPort": 9999}})
    failed = await harness.wait_server("alice", lambda s: phase(s) == "Failed")
    assert failed is not None and failed["status"]["conditions"][-1]["reason"] == "TemplateChanged"


async def test_operator_watches_pod_events_but_not_its_own_server_events(
        harness: OperatorHarness) -> None:
    from async_kubespawner.kube.client import EVENTS
    from async_kubespawner.kube.reflector import ApiListerWatcher

    operator = await harness.start_operator()
    await create_server(harness)
    await harness.wait_server("alice", lambda s: phase(s) == "Ready")
    written = {e["involvedObject"]["kind"] for e in harness.store_items("events")}
    assert {"NotebookServer", "Pod"} <= written  # both kinds exist in the namespace
    # the operator's reflectors read the API: each source is an ApiListerWatcher (app.py)
    sources = [cast(ApiListerWatcher, r.source) for r in operator.reflectors]
    watch = next(s for s in sources if s.kind is EVENTS)
    page = await harness.api.list_page(EVENTS, NAMESPACE, field_selector=watch.field_selector)
    kinds = {e["involvedObject"]["kind"] for e in page["items"]}
    assert "Pod" in kinds and "NotebookServer" not in kinds
