"""Malformed input never becomes a 500: wrong JSON types are the decoder's 400s."""

from __future__ import annotations

import json
import random
from typing import Any

import aiohttp
from kubernetes_asyncio import client

WEIRD: list[Any] = [None, 1, "x", [], {}, [1], {"a": None}, True, -1, 1.5, {"": ""}, [{}]]
BASE = {
    "pods": {"metadata": {"name": "p", "labels": {"a": "b"}, "finalizers": ["x/y"],
                          "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "o",
                                               "uid": "u"}]},
             "spec": {"containers": [{"name": "c", "image": "i", "env": [{"name": "A", "value": "1"}],
                                      "ports": [{"containerPort": 80}],
                                      "resources": {"requests": {"cpu": "1"}}}],
                      "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "c"}}]}},
    "services": {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}},
    "secrets": {"metadata": {"name": "s"}, "stringData": {"a": "b"}, "data": {"b": "Yg=="}},
    "configmaps": {"metadata": {"name": "c"}, "data": {"a": "b"}},
    "persistentvolumeclaims": {"metadata": {"name": "c"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}},
    "events": {"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "r"},
}
PATCH_TYPES = {"merge": "application/merge-patch+json",
               "strategic": "application/strategic-merge-patch+json",
               "json": "application/json-patch+json"}


def mutate(rng: random.Random, value):
    if isinstance(value, dict):
        out = dict(value)
        if out and rng.random() < 0.5:
            key = rng.choice(list(out))
            out[key] = rng.choice(WEIRD) if rng.random() < 0.5 else mutate(rng, out[key])
        elif rng.random() < 0.3:
            out[rng.choice(["spec", "metadata", "status", "data", "x"])] = rng.choice(WEIRD)
        return out
    if isinstance(value, list):
        return [mutate(rng, v) for v in value] + ([rng.choice(WEIRD)] if rng.random() < 0.3 else [])
    return rng.choice(WEIRD) if rng.random() < 0.5 else value


async def test_random_malformed_writes_never_500(simulator):
    rng = random.Random(20261124)
    statuses: dict[int, int] = {}
    async with aiohttp.ClientSession() as http:
        for _ in range(400):
            plural = rng.choice(list(BASE))
            name = BASE[plural]["metadata"]["name"]
            url = f"{simulator.url}/api/v1/namespaces/default/{plural}"
            body = mutate(rng, BASE[plural]) if rng.random() < 0.9 else rng.choice(WEIRD)
            verb = rng.choice(["POST", "PUT", "merge", "strategic", "json", "DELETE"])
            if verb == "json":
                body = [{"op": rng.choice(["add", "remove", "replace", "test", "move", "bogus"]),
                         "path": rng.choice(["/metadata/labels/x", "/spec", "/", "", "/metadata/name",
                                             "/spec/containers/0", "/spec/containers/-"]),
                         "value": rng.choice(WEIRD), "from": "/metadata"}]
            if verb in PATCH_TYPES:
                request = http.patch(f"{url}/{name}", data=json.dumps(body),
                                     headers={"Content-Type": PATCH_TYPES[verb]})
            elif verb == "DELETE":
                request = http.delete(f"{url}/{name}")
            else:
                target = url if verb == "POST" else f"{url}/{name}"
                request = http.request(verb, target, data=json.dumps(body),
                                       headers={"Content-Type": "application/json"})
            async with request as resp:
                payload = await resp.json()
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
                assert resp.status < 500, (verb, plural, body, payload)
                if resp.status >= 400:
                    assert payload["kind"] == "Status" and payload["message"]
    await simulator.store.wait_gc_idle()
    assert statuses.get(400, 0) > 20 and statuses.get(201, 0) > 5  # both paths were exercised


async def test_wrong_json_type_is_the_decoders_400(api_client, simulator):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{simulator.url}/api/v1/namespaces/default/pods", json={
                "metadata": {"name": "p"}, "spec": {"containers": "main"}}) as resp:
            assert resp.status == 400
            assert (await resp.json())["message"] == (
                'Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal string '
                "into Go struct field PodSpec.spec.containers of type []v1.Container")
        async with http.post(f"{simulator.url}/api/v1/namespaces/default/secrets", json={
                "metadata": {"name": "s", "labels": {"a": 1}}}) as resp:
            assert resp.status == 400
            assert "Go struct field ObjectMeta.metadata.labels of type string" in (await resp.json())["message"]
        async with http.post(f"{simulator.url}/api/v1/namespaces/default/secrets", json={
                "metadata": {"name": "s"}, "data": {"k": "not base64!"}}) as resp:
            assert resp.status == 400
            assert "illegal base64 data at input byte 3" in (await resp.json())["message"]
    # nulls are dropped like Go zero values
    v1 = client.CoreV1Api(api_client)
    cm = await v1.create_namespaced_config_map("default", {"metadata": {"name": "n", "labels": None},
                                                           "data": {"k": "v"}})
    assert cm.metadata.labels is None


async def test_status_fields_read_back_are_type_checked(simulator):
    """Fields the Table printer and controllers read (node conditions, container statuses,
    load-balancer ingress) refuse a wrong JSON type with the decoder's 400, so a later
    ``kubectl get`` cannot trip over them."""
    table = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
    async with aiohttp.ClientSession() as http:
        base = f"{simulator.url}/api/v1"
        cases = [
            ("nodes", {"metadata": {"name": "n"}, "status": {"conditions": [["Ready"]]}},
             "Go struct field NodeStatus.status.conditions of type v1.NodeCondition"),
            ("namespaces/default/pods",
             {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]},
              "status": {"containerStatuses": [{"name": "c", "restartCount": "2"}]}},
             "Go struct field ContainerStatus.status.containerStatuses.restartCount of type int32"),
            ("namespaces/default/services",
             {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]},
              "status": {"loadBalancer": {"ingress": "1.2.3.4"}}},
             "Go struct field LoadBalancerStatus.status.loadBalancer.ingress of type"),
        ]
        for path, body, message in cases:
            async with http.post(f"{base}/{path}", json=body) as resp:
                assert resp.status == 400, path
                assert message in (await resp.json())["message"]
        async with http.post(f"{base}/nodes", json={"metadata": {"name": "ok"}, "status": {
                "conditions": [{"type": "Ready", "status": "True"}],
                "nodeInfo": {"kubeletVersion": "v1.36.2"}}}) as resp:
            assert resp.status == 201
        async with http.get(f"{base}/nodes", headers=table) as resp:
            assert resp.status == 200
            rows = (await resp.json())["rows"]
            assert [r["cells"][:2] for r in rows] == [["ok", "Ready"]]


async def test_non_string_kind_or_api_version_is_a_400(simulator):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{simulator.url}/api/v1/namespaces/default/configmaps",
                             json={"apiVersion": 1, "kind": "ConfigMap",
                                   "metadata": {"name": "c"}}) as resp:
            assert resp.status == 400
            assert (await resp.json())["message"] == (
                "the object provided is unrecognized (must be of type ConfigMap): couldn't get "
                "version/kind; json parse error: json: cannot unmarshal number into Go struct "
                "field .apiVersion of type string")


async def test_non_positive_limit_means_no_paging(api_client):
    v1 = client.CoreV1Api(api_client)
    for name in ("a", "b", "c"):
        await v1.create_namespaced_config_map("default", {"metadata": {"name": name,
                                                                       "labels": {"x": "y"}}})
    for limit in (0, -1):
        listed = await v1.list_namespaced_config_map("default", limit=limit, label_selector="x=y")
        assert [c.metadata.name for c in listed.items] == ["a", "b", "c"]
        assert listed.metadata._continue is None


async def test_head_of_a_watch_answers_headers_only(simulator):
    """A streamed body after a HEAD answer would be read as the next response's status line."""
    async with aiohttp.ClientSession() as http:
        url = f"{simulator.url}/api/v1/namespaces/default/serviceaccounts"
        async with http.head(url, params={"watch": "1"}) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "application/json"
        async with http.get(url) as resp:  # same keep-alive connection, clean
            assert resp.status == 200
            assert (await resp.json())["items"][0]["metadata"]["name"] == "default"
    assert simulator.store.watches() == []


async def test_crd_schemas_are_type_checked_and_patterns_must_compile(simulator):
    url = f"{simulator.url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions"

    def crd(properties: dict, group="example.com") -> dict:
        return {"metadata": {"name": f"things.{group}"}, "spec": {
            "group": group, "scope": "Namespaced",
            "names": {"plural": "things", "kind": "Thing"},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                "openAPIV3Schema": {"type": "object", "properties": properties}}}]}}

    async with aiohttp.ClientSession() as http:
        async with http.post(url, json=crd({}, group=1.5)) as resp:
            assert resp.status == 400
            assert "CustomResourceDefinitionSpec.spec.group of type string" in (
                await resp.json())["message"]
        async with http.post(url, json=crd({"size": {"type": "integer", "minimum": "1"}})) as resp:
            assert resp.status == 400
            assert "JSONSchemaProps" in (await resp.json())["message"]
        async with http.post(url, json=crd({"id": {"type": "string", "pattern": "(["}})) as resp:
            assert resp.status == 422
            cause = (await resp.json())["details"]["causes"][0]
            assert cause["field"] == (
                "spec.versions[0].schema.openAPIV3Schema.properties[id].pattern")
            assert cause["message"].startswith(
                'Invalid value: "([": must be a valid regular expression')


async def test_unknown_fields_are_dropped_with_a_warning_by_default(simulator, api_client):
    """The real decoder has no place for a field its Go type lacks: it drops it (Warn, the
    default, says so in a Warning header), or refuses the body under Strict."""
    url = f"{simulator.url}/api/v1/namespaces/default/serviceaccounts"
    body = {"metadata": {"name": "sa", "colour": "red"}, "spec": {"x": 1}, "automountServiceAccountToken": False}
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json=body) as resp:
            assert resp.status == 201
            created = await resp.json()
            assert resp.headers.getall("Warning") == [
                '299 - "unknown field \\"metadata.colour\\""', '299 - "unknown field \\"spec\\""']
        assert "spec" not in created and "colour" not in created["metadata"]
        assert created["automountServiceAccountToken"] is False
        async with http.put(f"{url}/sa", json=dict(body, metadata={"name": "sa"}),
                            params={"fieldValidation": "Ignore"}) as resp:
            assert resp.status == 200
            assert "Warning" not in resp.headers
        async with http.post(url, json=dict(body, metadata={"name": "sb"}),
                             params={"fieldValidation": "Strict"}) as resp:
            assert resp.status == 400
            assert (await resp.json())["message"] == (
                'ServiceAccount in version "v1" cannot be handled as a ServiceAccount: strict '
                'decoding error: unknown field "spec"')
    # a patch cannot sneak one in either
    v1 = client.CoreV1Api(api_client)
    patched = await v1.patch_namespaced_service_account(
        "sa", "default", {"spec": {"y": 2}, "metadata": {"labels": {"a": "b"}}})
    assert patched.metadata.labels == {"a": "b"}
    raw = simulator.store.get(simulator.store.resource("serviceaccounts"), "default", "sa")
    assert "spec" not in raw


async def test_null_body_is_a_400(simulator):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{simulator.url}/api/v1/namespaces/default/configmaps",
                             data=b"null", headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == 400
            assert (await resp.json())["message"] == "Object 'Kind' is missing in 'null'"


async def test_yaml_bodies_are_read_as_yaml_to_json_conversion_does(simulator):
    url = f"{simulator.url}/api/v1/namespaces/default/configmaps"
    yaml_type = {"Content-Type": "application/yaml"}
    async with aiohttp.ClientSession() as http:
        # a non-string key becomes its text; an unquoted date stays the string written
        async with http.post(url, headers=yaml_type,
                             data=b"metadata: {name: a}\ndata: {1: 2026-01-01, 2.5: x}") as resp:
            assert resp.status == 201
            assert (await resp.json())["data"] == {"1": "2026-01-01", "2.5": "x"}
        async with http.post(url, headers=yaml_type,
                             data=b"metadata: {name: b, labels: {1: b}}") as resp:
            assert resp.status == 201
            assert (await resp.json())["metadata"]["labels"] == {"1": "b"}
        for body in (b"&a [*a]", b"metadata: {name: c}\ndata: {k: .nan}",
                     b"metadata: {name: c, annotations: {? [1, 2] : v}}"):
            async with http.post(url, headers=yaml_type, data=body) as resp:
                assert resp.status == 400, body
                assert (await resp.json())["reason"] == "BadRequest"


async def test_json_without_nan_and_within_depth(simulator):
    url = f"{simulator.url}/api/v1/namespaces/default/configmaps"
    json_type = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession() as http:
        async with http.post(url, headers=json_type,
                             data=b'{"metadata": {"name": "n", "generation": NaN}}') as resp:
            assert resp.status == 400
            assert "invalid character 'N' looking for beginning of value" in (
                await resp.json())["message"]
        for depth in (150, 5000):
            deep = b'{"metadata": {"name": "d"}, "x": ' + b"[" * depth + b"]" * depth + b"}"
            async with http.post(url, headers=json_type, data=deep) as resp:
                assert resp.status == 400
                assert (await resp.json())["message"].endswith("exceeded max depth of 100")
            async with http.delete(f"{url}/x", data=b"[" * depth + b"]" * depth) as resp:
                assert resp.status == 400
        nested = {"metadata": {"name": "ok"}, "data": {"k": "v"}}
        async with http.post(url, json=nested) as resp:
            assert resp.status == 201


async def test_patches_cannot_stack_nesting_past_the_limit(simulator):
    """Each body is depth-checked, so only patches could build a deeper object, one
    bounded layer at a time, until reading it back overflowed the stack."""
    crds = f"{simulator.url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    crd = {"metadata": {"name": "blobs.example.com"}, "spec": {
        "group": "example.com", "scope": "Namespaced",
        "names": {"plural": "blobs", "kind": "Blob"},
        "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
            "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}
    url = f"{simulator.url}/apis/example.com/v1/namespaces/default/blobs"

    def nested(depth: int) -> dict:
        value: dict = {}
        for _ in range(depth):
            value = {"a": value}
        return value

    async with aiohttp.ClientSession() as http:
        async with http.post(crds, json=crd) as resp:
            assert resp.status == 201
        async with http.post(url, json={"apiVersion": "example.com/v1", "kind": "Blob",
                                        "metadata": {"name": "b"}, "x": nested(90)}) as resp:
            assert resp.status == 201
        deeper = [{"op": "add", "path": "/x" + "/a" * 89 + "/b", "value": nested(90)}]
        async with http.patch(f"{url}/b", json=deeper,
                              headers={"Content-Type": "application/json-patch+json"}) as resp:
            assert resp.status == 400
            assert (await resp.json())["message"] == (
                "the patched object would be nested deeper than 100 levels")
        async with http.get(f"{url}/b") as resp:
            assert resp.status == 200
