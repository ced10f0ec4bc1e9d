"""CustomResourceDefinitions: registering one serves new routes, validates, has status."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

GROUP = "example.com"
# kubernetes_asyncio sends a dict body to CustomObjectsApi.patch_* as JSON patch unless told
# otherwise, and the real server rejects that (400); custom resources take merge patches.
MERGE = "application/merge-patch+json"


def crd(scope: str = "Namespaced", plural: str = "widgets", kind: str = "Widget") -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": scope,
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "shortNames": ["wd"]},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "properties": {
                            "size": {"type": "integer", "minimum": 1},
                            "color": {"type": "string", "enum": ["red", "blue"]},
                        }, "required": ["size"]},
                        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
                    },
                }},
            }],
        },
    }


def widget(name: str, size=1, **spec) -> dict:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": {"name": name},
            "spec": {"size": size, **spec}}


async def test_crd_serves_custom_resources(api_client):
    ext = client.ApiextensionsV1Api(api_client)
    created = await ext.create_custom_resource_definition(crd())
    assert {c.type: c.status for c in created.status.conditions}["Established"] == "True"
    co = client.CustomObjectsApi(api_client)
    w = await co.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w1", 3))
    assert w["metadata"]["generation"] == 1 and w["kind"] == "Widget"
    listed = await co.list_namespaced_custom_object(GROUP, "v1", "default", "widgets")
    assert listed["kind"] == "WidgetList"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["w1"]
    assert listed["items"][0]["apiVersion"] == f"{GROUP}/v1"  # CR list items keep kind/apiVersion
    patched = await co.patch_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w1",
                                                      {"spec": {"size": 4}}, _content_type=MERGE)
    assert patched["spec"]["size"] == 4 and patched["metadata"]["generation"] == 2
    # status only through the status subresource; it does not bump generation
    ignored = await co.patch_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w1",
                                                      {"status": {"ready": True}}, _content_type=MERGE)
    assert "status" not in ignored
    status = await co.patch_namespaced_custom_object_status(GROUP, "v1", "default", "widgets", "w1",
                                                            {"status": {"ready": True}},
                                                            _content_type=MERGE)
    assert status["status"] == {"ready": True} and status["metadata"]["generation"] == 2
    await co.delete_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w1")
    assert (await co.list_namespaced_custom_object(GROUP, "v1", "default", "widgets"))["items"] == []


async def test_object_sent_as_json_patch_is_rejected_like_the_real_server(api_client):
    await client.ApiextensionsV1Api(api_client).create_custom_resource_definition(crd())
    co = client.CustomObjectsApi(api_client)
    await co.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w"))
    with pytest.raises(ApiException) as info:
        await co.patch_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w", {"spec": {}})
    assert info.value.status == 400
    assert json.loads(info.value.body)["message"] == (
        "json: cannot unmarshal object into Go value of type jsonpatch.Patch")


async def test_schema_violations_are_422(api_client):
    await client.ApiextensionsV1Api(api_client).create_custom_resource_definition(crd())
    co = client.CustomObjectsApi(api_client)
    with pytest.raises(ApiException) as info:
        await co.create_namespaced_custom_object(GROUP, "v1", "default", "widgets",
                                                 widget("bad", "big", color="green"))
    assert info.value.status == 422
    body = json.loads(info.value.body)
    assert body["reason"] == "Invalid"
    assert body["details"]["group"] == GROUP and body["details"]["kind"] == "Widget"
    fields = {c["field"] for c in body["details"]["causes"]}
    assert {"spec.size", "spec.color"} <= fields
    assert body["message"].startswith('Widget.example.com "bad" is invalid: ')


async def test_cluster_scoped_crd_and_discovery(simulator, api_client):
    import aiohttp

    await client.ApiextensionsV1Api(api_client).create_custom_resource_definition(
        crd("Cluster", "gadgets", "Gadget"))
    co = client.CustomObjectsApi(api_client)
    body = widget("g1") | {"kind": "Gadget"}
    await co.create_cluster_custom_object(GROUP, "v1", "gadgets", body)
    got = await co.get_cluster_custom_object(GROUP, "v1", "gadgets", "g1")
    assert "namespace" not in got["metadata"]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{simulator.url}/apis/{GROUP}/v1") as r:
            resources = {x["name"]: x for x in (await r.json())["resources"]}
        async with http.get(f"{simulator.url}/apis") as r:
            groups = [g["name"] for g in (await r.json())["groups"]]
    assert resources["gadgets"]["namespaced"] is False
    assert "gadgets/status" in resources
    assert GROUP in groups


async def test_deleting_the_crd_removes_its_objects_and_routes(api_client):
    ext = client.ApiextensionsV1Api(api_client)
    await ext.create_custom_resource_definition(crd())
    co = client.CustomObjectsApi(api_client)
    await co.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w"))
    await ext.delete_custom_resource_definition(f"widgets.{GROUP}")
    with pytest.raises(ApiException) as info:
        await co.list_namespaced_custom_object(GROUP, "v1", "default", "widgets")
    assert info.value.status == 404


async def test_invalid_crd_is_rejected(api_client):
    bad = crd()
    bad["metadata"]["name"] = "wrong-name"
    with pytest.raises(ApiException) as info:
        await client.ApiextensionsV1Api(api_client).create_custom_resource_definition(bad)
    assert info.value.status == 422
    assert any(c["field"] == "metadata.name" for c in json.loads(info.value.body)["details"]["causes"])


async def test_custom_resources_are_watchable(simulator, api_client):
    from kubernetes_asyncio import watch

    await client.ApiextensionsV1Api(api_client).create_custom_resource_definition(crd())
    co = client.CustomObjectsApi(api_client)
    listed = await co.list_namespaced_custom_object(GROUP, "v1", "default", "widgets")
    await co.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w"))
    w = watch.Watch()
    async for event in w.stream(co.list_namespaced_custom_object, GROUP, "v1", "default", "widgets",
                                resource_version=listed["metadata"]["resourceVersion"],
                                timeout_seconds=5):
        assert event["type"] == "ADDED" and event["object"]["metadata"]["name"] == "w"
        break
    w.stop()


async def test_schema_is_checked_on_update_too(api_client):
    await client.ApiextensionsV1Api(api_client).create_custom_resource_definition(crd())
    co = client.CustomObjectsApi(api_client)
    await co.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w", 2))
    with pytest.raises(ApiException) as info:
        await co.patch_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w",
                                                {"spec": {"size": 0}}, _content_type=MERGE)
    assert info.value.status == 422
    assert [c["field"] for c in json.loads(info.value.body)["details"]["causes"]] == ["spec.size"]
    current = await co.get_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w")
    assert current["spec"]["size"] == 2  # nothing half-applied


def gadget_crd(status_subresource: bool = True) -> dict:
    """A CRD whose schema has defaults, a preserved free-form field and no required spec."""
    version: dict = {
        "name": "v1", "served": True, "storage": True,
        "schema": {"openAPIV3Schema": {
            "type": "object",
            "properties": {
                "spec": {"type": "object", "default": {}, "properties": {
                    "replicas": {"type": "integer", "default": 1, "minimum": 0},
                    "mode": {"type": "string", "enum": ["fast", "safe"]},
                    "limits": {"type": "object", "default": {"cpu": "1"}, "properties": {
                        "cpu": {"type": "string"}, "memory": {"type": "string", "default": "1Gi"}}},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                }},
                "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
                "note": {"type": "string"},
            },
        }},
    }
    if status_subresource:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"gadgets.{GROUP}"},
        "spec": {"group": GROUP, "scope": "Namespaced", "versions": [version],
                 "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"}},
    }


def gadget(name: str, **fields) -> dict:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Gadget", "metadata": {"name": name}, **fields}


async def _gadgets(api_client, status_subresource: bool = True) -> client.CustomObjectsApi:
    ext = client.ApiextensionsV1Api(api_client)
    # cast: the client sends a plain dict as it is; its stubs ask for the model
    await ext.create_custom_resource_definition(cast(Any, gadget_crd(status_subresource)))
    return client.CustomObjectsApi(api_client)


async def test_schema_defaults_fill_absent_fields_on_create(api_client):
    co = await _gadgets(api_client)
    created = await co.create_namespaced_custom_object(GROUP, "v1", "default", "gadgets", gadget("g"))
    # spec defaults to {}, then its own fields' defaults apply inside it
    assert created["spec"] == {"replicas": 1, "limits": {"cpu": "1", "memory": "1Gi"}}
    explicit = await co.create_namespaced_custom_object(
        GROUP, "v1", "default", "gadgets",
        gadget("h", spec={"replicas": 0, "limits": {"cpu": "2"}}))
    assert explicit["spec"] == {"replicas": 0, "limits": {"cpu": "2", "memory": "1Gi"}}
    stored = await co.get_namespaced_custom_object(GROUP, "v1", "default", "gadgets", "h")
    assert stored["spec"] == explicit["spec"]


async def test_unknown_fields_are_pruned_before_validation(api_client):
    co = await _gadgets(api_client)
    created = await co.create_namespaced_custom_object(
        GROUP, "v1", "default", "gadgets",
        gadget("g", spec={"replicas": 2, "colour": 7, "extra": {"any": {"thing": [1]}}},
               unknown={"x": 1}, note="kept"))
    assert "unknown" not in created and created["note"] == "kept"
    assert "colour" not in created["spec"]  # pruned, so its wrong type is no error either
    assert created["spec"]["extra"] == {"any": {"thing": [1]}}  # preserve-unknown-fields
    assert created["metadata"]["name"] == "g" and created["kind"] == "Gadget"
    stored = await co.get_namespaced_custom_object(GROUP, "v1", "default", "gadgets", "g")
    assert "unknown" not in stored and "colour" not in stored["spec"]


async def test_updates_are_defaulted_pruned_and_validated(api_client):
    co = await _gadgets(api_client)
    await co.create_namespaced_custom_object(GROUP, "v1", "default", "gadgets", gadget("g"))
    patched = await co.patch_namespaced_custom_object(
        GROUP, "v1", "default", "gadgets", "g",
        {"spec": {"replicas": None, "bogus": True, "mode": "safe"}}, _content_type=MERGE)
    assert patched["spec"]["replicas"] == 1  # removed, so defaulted again
    assert patched["spec"]["mode"] == "safe" and "bogus" not in patched["spec"]
    current = await co.get_namespaced_custom_object(GROUP, "v1", "default", "gadgets", "g")
    current["spec"]["mode"] = "reckless"
    with pytest.raises(ApiException) as info:
        await co.replace_namespaced_custom_object(GROUP, "v1", "default", "gadgets", "g", current)
    assert info.value.status == 422
    causes = json.loads(info.value.body)["details"]["causes"]
    assert [(c["reason"], c["field"]) for c in causes] == [("FieldValueNotSupported", "spec.mode")]


async def test_status_subresource_create_drops_status_and_status_writes_are_checked(api_client):
    co = await _gadgets(api_client)
    created = await co.create_namespaced_custom_object(
        GROUP, "v1", "default", "gadgets", gadget("g", status={"ready": True}))
    assert "status" not in created  # a create cannot set status when it is a subresource
    written = await co.patch_namespaced_custom_object_status(
        GROUP, "v1", "default", "gadgets", "g",
        {"status": {"ready": True, "made-up": 1}, "spec": {"replicas": 9}}, _content_type=MERGE)
    assert written["status"] == {"ready": True}  # pruned
    assert written["spec"]["replicas"] == 1  # the status endpoint writes only status
    assert written["metadata"]["generation"] == 1
    with pytest.raises(ApiException) as info:
        await co.patch_namespaced_custom_object_status(
            GROUP, "v1", "default", "gadgets", "g", {"status": {"ready": "yes"}},
            _content_type=MERGE)
    assert info.value.status == 422
    assert [c["field"] for c in json.loads(info.value.body)["details"]["causes"]] == ["status.ready"]


async def test_without_status_subresource_status_is_ordinary_data(api_client):
    co = await _gadgets(api_client, status_subresource=False)
    created = await co.create_namespaced_custom_object(
        GROUP, "v1", "default", "gadgets", gadget("g", status={"ready": False}))
    assert created["status"] == {"ready": False}
    updated = await co.patch_namespaced_custom_object(
        GROUP, "v1", "default", "gadgets", "g", {"status": {"ready": True}}, _content_type=MERGE)
    assert updated["status"] == {"ready": True}
    # every change outside metadata is a change of the object: generation moves
    assert updated["metadata"]["generation"] == 2
    noted = await co.patch_namespaced_custom_object(
        GROUP, "v1", "default", "gadgets", "g", {"note": "hello"}, _content_type=MERGE)
    assert noted["metadata"]["generation"] == 3
    labelled = await co.patch_namespaced_custom_object(
        GROUP, "v1", "default", "gadgets", "g", {"metadata": {"labels": {"a": "b"}}},
        _content_type=MERGE)
    assert labelled["metadata"]["generation"] == 3
    with pytest.raises(ApiException) as info:
        await co.get_namespaced_custom_object_status(GROUP, "v1", "default", "gadgets", "g")
    assert info.value.status == 404
