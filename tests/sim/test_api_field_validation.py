"""fieldValidation=Strict|Warn|Ignore: unknown and duplicate fields, custom resources."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

CM = "/api/v1/namespaces/default/configmaps"
DUPLICATED = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup","labels":{"a":"1","a":"2"}},"data":{"k":"first"},"data":{"k":"second"}}'


async def post(sim, path: str, data: bytes) -> tuple[int, Any, list[str]]:
    async with aiohttp.ClientSession() as http, http.post(
        sim.url + path, data=data, headers={"Content-Type": "application/json"}
    ) as resp:
        return resp.status, await resp.json(), resp.headers.getall("Warning", [])


async def test_duplicate_fields_warn_by_default_and_the_last_one_wins(simulator):
    status, obj, warnings = await post(simulator, CM, DUPLICATED)
    assert status == 201
    assert obj["data"] == {"k": "second"} and obj["metadata"]["labels"] == {"a": "2"}
    assert warnings == ['299 - "duplicate field \\"metadata.labels.a\\""', '299 - "duplicate field \\"data\\""']


async def test_duplicate_fields_are_a_strict_decoding_error(simulator):
    status, body, _ = await post(simulator, CM + "?fieldValidation=Strict", DUPLICATED)
    assert status == 400
    assert body["message"] == (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: '
        'duplicate field "metadata.labels.a", duplicate field "data"'
    )
    status, _, warnings = await post(simulator, CM + "?fieldValidation=Ignore", DUPLICATED)
    assert status == 201 and warnings == []


async def test_unknown_custom_resource_fields_are_pruned_with_a_warning(simulator):
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "gadgets", "kind": "Gadget"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                   "spec": {"type": "object", "properties": {
                                       "items": {"type": "array", "items": {
                                           "type": "object", "properties": {"n": {"type": "integer"}}}},
                                       "free": {"type": "object",
                                                "x-kubernetes-preserve-unknown-fields": True}}}}}}}]},
    }
    status, _, _ = await post(simulator, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                              json.dumps(crd).encode())
    assert status == 201
    body = {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"},
            "spec": {"items": [{"n": 1, "bogus": 2}], "free": {"any": "thing"}, "extra": True}}
    path = "/apis/example.com/v1/namespaces/default/gadgets"
    status, obj, warnings = await post(simulator, path, json.dumps(body).encode())
    assert status == 201
    assert obj["spec"] == {"items": [{"n": 1}], "free": {"any": "thing"}}
    assert warnings == ['299 - "unknown field \\"spec.items[0].bogus\\""', '299 - "unknown field \\"spec.extra\\""']
    body["metadata"]["name"] = "h"
    status, answer, _ = await post(simulator, path + "?fieldValidation=Strict", json.dumps(body).encode())
    assert status == 400
    assert answer["message"] == (
        'Gadget in version "v1" cannot be handled as a Gadget: strict decoding error: '
        'unknown field "spec.items[0].bogus", unknown field "spec.extra"'
    )


async def patch(sim, path: str, body: Any) -> tuple[int, Any, list[str]]:
    async with aiohttp.ClientSession() as http, http.patch(
        sim.url + path, data=json.dumps(body), headers={"Content-Type": "application/merge-patch+json"}
    ) as resp:
        return resp.status, await resp.json(), resp.headers.getall("Warning", [])


async def test_unknown_fields_added_by_a_patch_are_warned_about_or_refused(simulator):
    await post(simulator, CM, b'{"metadata":{"name":"p"},"data":{"k":"v"}}')
    status, obj, warnings = await patch(simulator, CM + "/p", {"extra": 1, "data": {"k": "w"}})
    assert status == 200 and obj["data"] == {"k": "w"} and "extra" not in obj
    assert warnings == ['299 - "unknown field \\"extra\\""']
    status, body, _ = await patch(simulator, CM + "/p?fieldValidation=Strict", {"metadata": {"bogus": 1}})
    assert status == 400
    assert body["message"] == 'strict decoding error: unknown field "metadata.bogus"'
    # removing a field that does not exist (null) is no addition: no warning
    status, _, warnings = await patch(simulator, CM + "/p", {"extra": None})
    assert status == 200 and warnings == []
