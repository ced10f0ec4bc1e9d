"""Remaining verbs and query semantics over HTTP: patches, selectors, binding, logs, streams."""

from __future__ import annotations

import json

import aiohttp
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from kubesim.app import iterate_lines
from kubesim.store import Store

POD = {"metadata": {"name": "p", "labels": {"app": "nb"}},
       "spec": {"containers": [{"name": "main", "image": "img:1",
                                "env": [{"name": "A", "value": "1"}]}]}}


async def test_json_patch_with_test_op(api_client):
    v1 = client.CoreV1Api(api_client)
    await v1.create_namespaced_config_map("default", {"metadata": {"name": "j"}, "data": {"k": "v"}})
    ok = await v1.patch_namespaced_config_map("j", "default", [
        {"op": "test", "path": "/data/k", "value": "v"},
        {"op": "replace", "path": "/data/k", "value": "w"}])
    assert ok.data == {"k": "w"}
    with pytest.raises(ApiException) as info:
        await v1.patch_namespaced_config_map("j", "default", [
            {"op": "test", "path": "/data/k", "value": "v"},
            {"op": "replace", "path": "/data/k", "value": "never"}])
    assert info.value.status == 422
    assert (await v1.read_namespaced_config_map("j", "default")).data == {"k": "w"}  # not half-applied


async def test_failed_json_patch_test_keeps_the_real_422_causes(api_client):
    """The 422 body names what failed in ``details.causes``, as the real server sends it."""
    v1 = client.CoreV1Api(api_client)
    await v1.create_namespaced_config_map("default", {"metadata": {"name": "t"}, "data": {"k": "v"}})
    with pytest.raises(ApiException) as info:
        await v1.patch_namespaced_config_map("t", "default", [
            {"op": "test", "path": "/data/k", "value": "other"}])
    body = json.loads(info.value.body)
    assert info.value.status == 422
    assert body["reason"] == "Invalid"
    assert body["message"] == "the server rejected our request due to an error in our request"
    causes = body["details"]["causes"]
    assert len(causes) == 1
    assert causes[0]["reason"] == "UnexpectedServerResponse"
    assert "test failed" in causes[0]["message"]


async def test_unconvertible_strategic_patch_is_a_reasonless_500(api_client):
    """A plain Go error from the patcher: code 500 with no reason, and no details made up."""
    v1 = client.CoreV1Api(api_client)
    await v1.create_namespaced_pod("default", POD)
    with pytest.raises(ApiException) as info:
        await v1.patch_namespaced_pod("p", "default", {"spec": {"$patch": "sideways"}})
    body = json.loads(info.value.body)
    assert info.value.status == 500
    assert "reason" not in body and "details" not in body
    assert body["message"].startswith("unknown patch type: sideways in map: ")


async def test_strategic_merge_patch_uses_list_merge_keys(api_client):
    v1 = client.CoreV1Api(api_client)
    await v1.create_namespaced_pod("default", POD)
    # containers merge by name: only the image changes, env stays
    patched = await v1.patch_namespaced_pod("p", "default", {
        "spec": {"containers": [{"name": "main", "image": "img:2"}]}})
    main = patched.spec.containers[0]
    assert main.image == "img:2"
    assert [(e.name, e.value) for e in main.env] == [("A", "1")]
    # service ports merge by port
    await v1.create_namespaced_service("default", {"metadata": {"name": "s"}, "spec": {
        "ports": [{"name": "http", "port": 80}, {"name": "extra", "port": 81}]}})
    svc = await v1.patch_namespaced_service("s", "default", {
        "spec": {"ports": [{"port": 80, "targetPort": 9090}]}})
    ports = {p.port: (p.name, p.target_port) for p in svc.spec.ports}
    assert ports == {80: ("http", 9090), 81: ("extra", 81)}


@pytest.mark.simulator_options(root_ca_configmaps=False)  # counts configmaps
async def test_label_selector_operators(api_client):
    v1 = client.CoreV1Api(api_client)
    for name, labels in (("a", {"tier": "web", "env": "prod"}), ("b", {"tier": "db"}),
                         ("c", {"env": "dev"})):
        await v1.create_namespaced_config_map("default", {"metadata": {"name": name, "labels": labels}})

    async def names(selector: str) -> list[str]:
        return [c.metadata.name for c in
                (await v1.list_namespaced_config_map("default", label_selector=selector)).items]

    assert await names("tier in (web,db)") == ["a", "b"]
    assert await names("tier notin (web)") == ["b", "c"]
    assert await names("env") == ["a", "c"]
    assert await names("!env") == ["b"]
    assert await names("env==prod,tier=web") == ["a"]
    assert await names("env!=prod") == ["b", "c"]
    with pytest.raises(ApiException) as info:
        await v1.list_namespaced_config_map("default", label_selector="tier in (")
    assert info.value.status == 400


async def test_field_selectors_and_unsupported_field(api_client, simulator):
    v1 = client.CoreV1Api(api_client)
    await v1.create_namespaced_pod("default", POD)
    await v1.create_namespaced_pod("default", {**POD, "metadata": {"name": "q"}})
    await simulator.store.bind("default", "q", "node-1")
    on_node = await v1.list_pod_for_all_namespaces(field_selector="spec.nodeName=node-1")
    assert [p.metadata.name for p in on_node.items] == ["q"]
    pending = await v1.list_namespaced_pod("default", field_selector="status.phase=Pending,metadata.name!=q")
    assert [p.metadata.name for p in pending.items] == ["p"]
    with pytest.raises(ApiException) as info:
        await v1.list_namespaced_pod("default", field_selector="spec.bogus=1")
    assert info.value.status == 400
    assert "spec.bogus" in json.loads(info.value.body)["message"]


async def test_event_field_selectors(api_client):
    v1 = client.CoreV1Api(api_client)
    for name, pod, reason in (("e1", "p", "Scheduled"), ("e2", "p", "Pulled"), ("e3", "other", "Pulled")):
        await v1.create_namespaced_event("default", {
            "metadata": {"name": name}, "reason": reason, "message": "m", "type": "Normal",
            "involvedObject": {"kind": "Pod", "name": pod, "namespace": "default"}})
    events = await v1.list_namespaced_event(
        "default", field_selector="involvedObject.kind=Pod,involvedObject.name=p,reason=Pulled")
    assert [e.metadata.name for e in events.items] == ["e2"]


async def test_binding_subresource(simulator, api_client):
    v1 = client.CoreV1Api(api_client)
    await v1.create_namespaced_pod("default", POD)
    async with aiohttp.ClientSession() as http:
        url = f"{simulator.url}/api/v1/namespaces/default/pods/p/binding"
        body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
                "target": {"apiVersion": "v1", "kind": "Node", "name": "node-3"}}
        async with http.post(url, json=body) as resp:
            assert resp.status == 201
            assert (await resp.json())["status"] == "Success"
        async with http.post(url, json=body) as resp:
            assert resp.status == 409  # already bound
    pod = await v1.read_namespaced_pod("p", "default")
    assert pod.spec.node_name == "node-3"
    assert any(c.type == "PodScheduled" and c.status == "True" for c in pod.status.conditions)


async def test_pod_logs_from_the_kubelet_hook(simulator, api_client):
    v1 = client.CoreV1Api(api_client)
    await v1.create_namespaced_pod("default", POD)
    with pytest.raises(ApiException) as info:
        await v1.read_namespaced_pod_log("p", "default")
    assert info.value.status == 400 and "waiting to start" in json.loads(info.value.body)["message"]
    simulator.store.pod_log_source = lambda ns, name, params: (
        iterate_lines("line 1\nline 2\n") if params["follow"] else "line 1\n")
    assert await v1.read_namespaced_pod_log("p", "default") == "line 1\n"
    assert await v1.read_namespaced_pod_log("p", "default", follow=True) == "line 1\nline 2\n"
    with pytest.raises(ApiException) as info:
        await v1.read_namespaced_pod_log("p", "default", container="nope")
    assert info.value.status == 400


async def test_streaming_list_with_send_initial_events(simulator, api_client):
    v1 = client.CoreV1Api(api_client)
    await v1.create_namespaced_config_map("default", {"metadata": {"name": "snap", "labels": {"snap": "yes"}}})
    url = (f"{simulator.url}/api/v1/namespaces/default/configmaps?watch=1&labelSelector=snap%3Dyes"
           "&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan"
           "&timeoutSeconds=5")
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        first = json.loads(await resp.content.readline())
        second = json.loads(await resp.content.readline())
    assert first["type"] == "ADDED" and first["object"]["metadata"]["name"] == "snap"
    assert second["type"] == "BOOKMARK"
    assert second["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_slow_watcher_is_dropped_when_its_queue_overflows():
    store = Store(watch_queue_size=3)
    cms = store.resource("configmaps")
    watch = store.watch(cms, "default", resource_version=str(store.resource_version))
    for i in range(5):
        await store.create(cms, "default", {"metadata": {"name": f"c{i}"}})
    assert watch.closed and watch.close_reason == "watcher fell too far behind"
    assert [e async for e in watch] == []
    await store.close()


async def test_in_process_watch_bookmarks():
    store = Store(bookmark_interval=0.01)
    cms = store.resource("configmaps")
    watch = store.watch(cms, "default", resource_version=str(store.resource_version),
                        allow_bookmarks=True, timeout_seconds=5)
    event = await watch.next_event()
    assert event is not None and event.type == "BOOKMARK"
    assert event.object["metadata"] == {"resourceVersion": str(store.resource_version)}
    watch.close()
    await store.close()


async def test_namespace_deletion_over_http(api_client, simulator):
    v1 = client.CoreV1Api(api_client)
    await v1.create_namespace({"metadata": {"name": "gone"}})
    await v1.create_namespaced_secret("gone", {"metadata": {"name": "s"}})
    await v1.delete_namespace("gone")  # typed V1Status by the client; the body is the Namespace
    await simulator.store.wait_gc_idle()
    with pytest.raises(ApiException) as info:
        await v1.read_namespace("gone")
    assert info.value.status == 404
