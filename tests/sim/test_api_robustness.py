"""Malformed input never becomes a 500: wrong JSON types are the decoder's 400s."""

from __future__ import annotations

import json
import random

import aiohttp
from kubernetes_asyncio import client

WEIRD = [None, 1, "x", [], {}, [1], {"a": None}, True, -1, 1.5, {"": ""}, [{}]]
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
