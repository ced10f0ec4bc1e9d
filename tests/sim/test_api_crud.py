"""CRUD over real HTTP with the unmodified kubernetes_asyncio client."""

from __future__ import annotations

import json

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p1", "labels": {"app": "nb"}},
    "spec": {"containers": [{"name": "main", "image": "registry.example/nb:1"}]},
}


def status_of(exc: ApiException) -> dict:
    assert exc.body is not None
    return json.loads(exc.body)


async def test_create_get_list_pod(api_client):
    v1 = client.CoreV1Api(api_client)
    created = await v1.create_namespaced_pod("default", POD)
    assert created.metadata.uid
    assert created.metadata.generation == 1
    assert created.metadata.namespace == "default"
    assert created.status.phase == "Pending"
    got = await v1.read_namespaced_pod("p1", "default")
    assert got.metadata.resource_version == created.metadata.resource_version
    listed = await v1.list_namespaced_pod("default")
    assert [p.metadata.name for p in listed.items] == ["p1"]
    assert int(listed.metadata.resource_version) >= int(created.metadata.resource_version)


async def test_resource_version_is_global_and_increasing(api_client):
    v1 = client.CoreV1Api(api_client)
    a = await v1.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    b = await v1.create_namespaced_secret("default", {"metadata": {"name": "b"}})
    c = await v1.create_namespace({"metadata": {"name": "c"}})
    rvs = [int(o.metadata.resource_version) for o in (a, b, c)]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3


async def test_get_missing_is_real_404(api_client):
    v1 = client.CoreV1Api(api_client)
    with pytest.raises(ApiException) as info:
        await v1.read_namespaced_pod("nope", "default")
    assert info.value.status == 404
    assert status_of(info.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "kind": "pods"},
        "code": 404,
    }


async def test_create_duplicate_and_missing_namespace(api_client):
    v1 = client.CoreV1Api(api_client)
    await v1.create_namespaced_pod("default", POD)
    with pytest.raises(ApiException) as info:
        await v1.create_namespaced_pod("default", POD)
    assert info.value.status == 409
    assert status_of(info.value)["reason"] == "AlreadyExists"
    with pytest.raises(ApiException) as info:
        await v1.create_namespaced_pod("missing", POD)
    assert info.value.status == 404
    assert status_of(info.value)["message"] == 'namespaces "missing" not found'


async def test_generate_name(api_client):
    v1 = client.CoreV1Api(api_client)
    body = {"metadata": {"generateName": "gen-"}, "spec": POD["spec"]}
    created = await v1.create_namespaced_pod("default", body)
    assert created.metadata.name.startswith("gen-")
    assert len(created.metadata.name) == len("gen-") + 5
    assert created.metadata.generate_name == "gen-"


async def test_dry_run_does_not_store(api_client):
    v1 = client.CoreV1Api(api_client)
    before = (await v1.list_namespaced_pod("default")).metadata.resource_version
    created = await v1.create_namespaced_pod("default", POD, dry_run="All")
    assert created.metadata.name == "p1"
    after = await v1.list_namespaced_pod("default")
    assert after.items == []
    assert after.metadata.resource_version == before


async def test_replace_with_stale_resource_version_conflicts(api_client):
    v1 = client.CoreV1Api(api_client)
    cm = await v1.create_namespaced_config_map(
        "default", {"metadata": {"name": "upd"}, "data": {"k": "v"}}
    )
    cm.data = {"k": "new"}
    updated = await v1.replace_namespaced_config_map("upd", "default", cm)
    assert updated.data == {"k": "new"}
    assert int(updated.metadata.resource_version) > int(cm.metadata.resource_version)
    cm.data = {"k": "stale"}
    with pytest.raises(ApiException) as info:
        await v1.replace_namespaced_config_map("upd", "default", cm)
    assert info.value.status == 409
    assert status_of(info.value)["message"] == (
        'Operation cannot be fulfilled on configmaps "upd": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )


async def test_noop_update_keeps_resource_version(api_client):
    v1 = client.CoreV1Api(api_client)
    cm = await v1.create_namespaced_config_map(
        "default", {"metadata": {"name": "same"}, "data": {"k": "v"}}
    )
    again = await v1.patch_namespaced_config_map("same", "default", {"data": {"k": "v"}})
    assert again.metadata.resource_version == cm.metadata.resource_version


async def test_merge_patch_and_status_subresource(api_client):
    v1 = client.CoreV1Api(api_client)
    await v1.create_namespaced_pod("default", POD)
    patched = await v1.patch_namespaced_pod(
        "p1",
        "default",
        {"metadata": {"labels": {"extra": "yes"}}},
        _content_type="application/merge-patch+json",
    )
    assert patched.metadata.labels == {"app": "nb", "extra": "yes"}
    assert patched.metadata.generation == 1  # metadata changes do not bump generation
    # status written through the main resource is ignored ...
    ignored = await v1.patch_namespaced_pod(
        "p1",
        "default",
        {"status": {"phase": "Running"}},
        _content_type="application/merge-patch+json",
    )
    assert ignored.status.phase == "Pending"
    # ... and through the status subresource it sticks
    running = await v1.patch_namespaced_pod_status(
        "p1",
        "default",
        {"status": {"phase": "Running"}},
        _content_type="application/merge-patch+json",
    )
    assert running.status.phase == "Running"


async def test_patch_with_wrong_content_type_is_415(simulator):
    import aiohttp

    async with aiohttp.ClientSession() as http:
        await http.post(
            f"{simulator.url}/api/v1/namespaces/default/configmaps",
            json={"metadata": {"name": "pat"}},
        )
        async with http.patch(
            f"{simulator.url}/api/v1/namespaces/default/configmaps/pat",
            data=b'{"data": {"k": "w"}}',
            headers={"Content-Type": "application/json"},
        ) as resp:
            assert resp.status == 415
            assert await resp.json() == {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": "415: Unsupported Media Type",
                "reason": "UnsupportedMediaType",
                "details": {},
                "code": 415,
            }


async def test_services_secrets_pvcs_events(api_client):
    v1 = client.CoreV1Api(api_client)
    svc = await v1.create_namespaced_service(
        "default", {"metadata": {"name": "svc"}, "spec": {"ports": [{"port": 80}]}}
    )
    assert svc.spec.cluster_ip
    sec = await v1.create_namespaced_secret(
        "default", {"metadata": {"name": "sec"}, "data": {"a": "Yg=="}}
    )
    assert sec.data == {"a": "Yg=="}
    pvc = await v1.create_namespaced_persistent_volume_claim(
        "default",
        {
            "metadata": {"name": "claim"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    assert pvc.metadata.name == "claim"
    ev = await v1.create_namespaced_event(
        "default",
        {
            "metadata": {"name": "ev1"},
            "involvedObject": {"kind": "Pod", "name": "p1", "namespace": "default"},
            "reason": "Scheduled",
            "message": "ok",
            "type": "Normal",
        },
    )
    assert ev.reason == "Scheduled"
    for delete, name in (
        (v1.delete_namespaced_service, "svc"),
        (v1.delete_namespaced_secret, "sec"),
        (v1.delete_namespaced_event, "ev1"),
    ):
        await delete(name, "default")
    assert (await v1.list_namespaced_service("default")).items == []


async def test_unbound_pod_is_deleted_at_once(api_client):
    v1 = client.CoreV1Api(api_client)
    await v1.create_namespaced_pod("default", POD)
    deleted = await v1.delete_namespaced_pod("p1", "default")
    assert deleted.metadata.deletion_timestamp is not None
    with pytest.raises(ApiException) as info:
        await v1.read_namespaced_pod("p1", "default")
    assert info.value.status == 404


async def test_delete_answers_status_or_object_like_the_real_registries(simulator):
    import aiohttp

    async with aiohttp.ClientSession() as http:
        base = f"{simulator.url}/api/v1/namespaces/default"
        async with http.post(f"{base}/configmaps", json={"metadata": {"name": "c"}}) as r:
            uid = (await r.json())["metadata"]["uid"]
        async with http.delete(f"{base}/configmaps/c") as r:
            assert r.status == 200
            assert await r.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                      "status": "Success",
                                      "details": {"name": "c", "kind": "configmaps", "uid": uid}}
        await http.post(f"{base}/services", json={"metadata": {"name": "s"},
                                                  "spec": {"ports": [{"port": 80}]}})
        async with http.delete(f"{base}/services/s") as r:
            assert (await r.json())["kind"] == "Service"
        await http.post(f"{base}/configmaps", json={"metadata": {"name": "f", "finalizers": ["a/b"]}})
        async with http.delete(f"{base}/configmaps/f") as r:  # not gone yet: the object
            body = await r.json()
            assert body["kind"] == "ConfigMap" and body["metadata"]["deletionTimestamp"]


async def test_service_account_admission(api_client):
    v1 = client.CoreV1Api(api_client)
    await v1.create_namespace({"metadata": {"name": "fresh"}})
    sas = await v1.list_namespaced_service_account("fresh")
    assert [sa.metadata.name for sa in sas.items] == ["default"]
    await v1.create_namespaced_pod("fresh", POD)  # runs as "default", which exists at once
    custom = {**POD, "metadata": {"name": "p2"}, "spec": {**POD["spec"], "serviceAccountName": "hub-user"}}
    with pytest.raises(ApiException) as info:
        await v1.create_namespaced_pod("fresh", custom)
    assert info.value.status == 403
    assert status_of(info.value) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'pods "p2" is forbidden: error looking up service account fresh/hub-user: '
                   'serviceaccount "hub-user" not found',
        "reason": "Forbidden", "details": {"name": "p2", "kind": "pods"}, "code": 403,
    }
    await v1.create_namespaced_service_account("fresh", {"metadata": {"name": "hub-user"}})
    created = await v1.create_namespaced_pod("fresh", custom)
    assert created.spec.service_account_name == "hub-user"
