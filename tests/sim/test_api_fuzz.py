"""Random requests for every resource and verb: none may end in a server error.

The issue's rule is "never a 500 with a traceback, never a half-applied change". The
hand-written tests cover the inputs someone thought of; these throw a fixed-seed stream
of malformed bodies, query strings, content types, subresources and fault commands at
the HTTP app. A failure prints the request, so it can be replayed and turned into a
focused test. Bounded in count, so the file stays a few seconds.
"""

from __future__ import annotations

import collections
import json
import logging
import random
from typing import Any

import aiohttp
import pytest
from kubesim.testing import Simulator

WEIRD: list[Any] = [None, 0, 1, -1, 2**70, 1.5, "", "x", "-", "a=b", "\x00", "ü", [], {},
                    [None], {"": None}, True, False, "9" * 40]
QUERY_KEYS = ["labelSelector", "fieldSelector", "limit", "continue", "resourceVersion",
              "resourceVersionMatch", "timeoutSeconds", "watch", "allowWatchBookmarks",
              "sendInitialEvents", "dryRun", "gracePeriodSeconds", "propagationPolicy",
              "orphanDependents", "follow", "tailLines", "sinceSeconds", "limitBytes",
              "container", "previous", "timestamps", "sinceTime", "fieldManager",
              "fieldValidation", "includeObject"]
QUERY_VALUES = ["", "0", "1", "-1", "x", "true", "false", "All", "Exact", "NotOlderThan", "a=b",
                "a in (b", "a!=", "metadata.name=x", "status.phase=Running", "spec.nodeName=",
                "bogus=1", "!a", "a,b", "99999999999999999999", "Background", "Foreground",
                "Orphan", "Strict", "Ignore", "1.5", "%", "2026-01-01T00:00:00Z", "a" * 300,
                "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MSwic3RhcnQiOiJ4In0", "Object", "None"]
CONTENT_TYPES = ["application/json", "application/merge-patch+json",
                 "application/strategic-merge-patch+json", "application/json-patch+json",
                 "application/apply-patch+yaml", "application/yaml", "text/plain",
                 "application/vnd.kubernetes.protobuf", "", "application/json; charset=utf-8"]
ACCEPTS = ["application/json;as=Table;v=v1;g=meta.k8s.io", "application/yaml", "*/*",
           "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"]
KEYS = ["metadata", "spec", "status", "kind", "apiVersion", "name", "data", "items", "op",
        "path", "value", "$patch", "$retainKeys", "containers", "ports", "labels",
        "finalizers", "ownerReferences", "stringData", "involvedObject", "target",
        "generateName", "namespace", "resourceVersion", "uid", "preconditions",
        "propagationPolicy", "gracePeriodSeconds", "conditions", "properties", "versions"]
CRD = {"metadata": {"name": "widgets.example.com"}, "spec": {
    "group": "example.com", "scope": "Namespaced", "names": {"plural": "widgets", "kind": "Widget"},
    "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                  "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                      "spec": {"type": "object", "properties": {
                          "size": {"type": "integer", "default": 1, "minimum": 0},
                          "id": {"type": "string", "pattern": "^[a-z]+$"},
                          "tags": {"type": "array", "items": {"type": "string"},
                                   "x-kubernetes-list-type": "set"}}},
                      "status": {"type": "object",
                                 "x-kubernetes-preserve-unknown-fields": True}}}}}]}}
# (group, version, plural, cluster-scoped): a valid body to mutate
VALID: dict[tuple[str, str, str, bool], dict[str, Any]] = {
    ("", "v1", "pods", False): {"metadata": {"name": "p", "labels": {"a": "b"}}, "spec": {
        "containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}],
                        "env": [{"name": "A", "value": "1"}],
                        "resources": {"limits": {"cpu": "1"}}}]}},
    ("", "v1", "services", False): {"metadata": {"name": "s"}, "spec": {
        "ports": [{"port": 80}], "selector": {"a": "b"}}},
    ("", "v1", "secrets", False): {"metadata": {"name": "s"}, "stringData": {"a": "b"}},
    ("", "v1", "configmaps", False): {"metadata": {"name": "c"}, "data": {"a": "b"}},
    ("", "v1", "persistentvolumeclaims", False): {"metadata": {"name": "c"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}},
    ("", "v1", "serviceaccounts", False): {"metadata": {"name": "sa"}},
    ("", "v1", "events", False): {"metadata": {"name": "e"}, "reason": "r",
                                  "involvedObject": {"kind": "Pod", "name": "p"}},
    ("", "v1", "namespaces", True): {"metadata": {"name": "ns1"}},
    ("", "v1", "nodes", True): {"metadata": {"name": "n1"}, "status": {
        "conditions": [{"type": "Ready", "status": "True"}]}},
    ("events.k8s.io", "v1", "events", False): {
        "metadata": {"name": "e2"}, "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingController": "a/b", "reportingInstance": "i", "action": "A", "reason": "R",
        "regarding": {"kind": "Pod", "name": "p"}},
    ("coordination.k8s.io", "v1", "leases", False): {
        "metadata": {"name": "l"}, "spec": {"holderIdentity": "me", "leaseDurationSeconds": 10}},
    ("apiextensions.k8s.io", "v1", "customresourcedefinitions", True): CRD,
    ("example.com", "v1", "widgets", False): {
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"size": 2, "id": "abc", "tags": ["a"]}},
}
SUBRESOURCES = [None] * 6 + ["status", "status", "log", "binding", "finalize", "eviction"]
FAULT_ACTIONS = ["latency", "error", "reset", "expire", "close_watches", "restart", "clear",
                 "remove", "outage", "bogus", None, 1]
FAULT_OPTIONS = ["seconds", "up_to", "code", "fraction", "verb", "resource", "name",
                 "namespace", "count", "retry_after", "after_events", "mode", "id", "x"]
FAULT_VALUES: list[Any] = [None, 0, 1, -1, 0.5, 2, "x", "1", [], {}, True, 429, 503, 999,
                           "inf", "nan", "list", "watch", "pods", "503", "reset"]


def random_json(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.4:
        return rng.choice(WEIRD)
    if roll < 0.7:
        return {rng.choice(KEYS): random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]


def mutate(rng: random.Random, value: Any) -> Any:
    """``value`` with a few subtrees replaced by junk, so most of the body stays plausible."""
    if isinstance(value, dict):
        out = dict(value)
        for _ in range(rng.randint(0, 2)):
            if out and rng.random() < 0.6:
                key = rng.choice(list(out))
                out[key] = random_json(rng, 2) if rng.random() < 0.5 else mutate(rng, out[key])
            else:
                out[rng.choice(["spec", "metadata", "status", "data", "kind"])] = random_json(rng, 1)
        return out
    if isinstance(value, list):
        return [mutate(rng, v) for v in value] + ([random_json(rng, 2)] if rng.random() < 0.3 else [])
    return random_json(rng, 3) if rng.random() < 0.5 else value


def random_body(rng: random.Random, valid: dict[str, Any]) -> bytes:
    roll = rng.random()
    if roll < 0.05:
        return rng.choice([b"{", b"", b"\xff\xfe", b"null", b"[1,", b'{"a":1}{}', b"1e999999",
                           b"NaN", b"[" * 3000, b"&a [*a]", b"{1: x, metadata: {name: 2026-01-01}}",
                           b"!!set {a}", b"metadata: {name: x}\ndata: !!binary aGk="])
    if roll < 0.55:
        body: Any = mutate(rng, valid)
    elif roll < 0.75:
        body = valid
    elif roll < 0.85:
        body = [{"op": rng.choice(["add", "remove", "replace", "test", "move", "copy", "x"]),
                 "path": rng.choice(["/metadata/labels/x", "/spec", "/", "", "/metadata/name",
                                     "/spec/containers/0", "/spec/containers/-", "~1", "/a/~2"]),
                 "value": random_json(rng, 2),
                 "from": rng.choice(["/metadata", "/spec/containers/0", "", "/x"])}
                for _ in range(rng.randint(0, 3))]
    else:
        body = random_json(rng)
    return json.dumps(body).encode()


class Fuzzer:
    def __init__(self, simulator: Simulator, http: aiohttp.ClientSession, seed: int) -> None:
        self.sim, self.http, self.rng = simulator, http, random.Random(seed)
        self.server_errors: list[tuple[Any, ...]] = []

    async def api_request(self) -> None:
        rng = self.rng
        (group, version, plural, cluster), valid = rng.choice(list(VALID.items()))
        name = valid["metadata"]["name"] if rng.random() < 0.8 else rng.choice(["zz", "A_B", "x" * 300])
        namespace = None if cluster else rng.choice(["default"] * 4 + ["nope", "ns1"])
        collection = rng.random() < 0.4
        parts = ["/api/v1" if not group else f"/apis/{group}/{version}"]
        if rng.random() < 0.05:
            parts.append("watch")
        if namespace is not None:
            parts += ["namespaces", namespace]
        parts.append(plural)
        if not collection:
            parts.append(name)
            subresource = rng.choice(SUBRESOURCES)
            if subresource:
                parts.append(subresource)
        method = rng.choice(
            ["GET", "POST", "POST", "DELETE", "HEAD"]
            if collection
            else ["GET", "PUT", "PATCH", "PATCH", "DELETE", "HEAD", "POST"]
        )
        query = {rng.choice(QUERY_KEYS): rng.choice(QUERY_VALUES) for _ in range(rng.randint(0, 4))}
        content_type = rng.choice(CONTENT_TYPES if method == "PATCH" else CONTENT_TYPES[:1] * 6 + CONTENT_TYPES)
        headers = {"Content-Type": content_type} if content_type else {}
        if rng.random() < 0.1:
            headers["Accept"] = rng.choice(ACCEPTS)
        data = random_body(rng, valid) if method not in ("GET", "HEAD") else None
        url = self.sim.url + "/".join(parts)
        try:
            async with self.http.request(method, url, params=query, data=data, headers=headers) as resp:
                if resp.headers.get("Transfer-Encoding") == "chunked":
                    resp.close()  # a stream (watch, followed log): its headers are the answer
                    return
                text = await resp.text()
        except aiohttp.ClientError:
            return  # a scripted reset or outage cut the connection
        if resp.status >= 500 and not _expected_server_answer(resp.status, text, content_type):
            self.server_errors.append((resp.status, method, url, query, headers, data, text))

    async def fault_command(self) -> None:
        rng = self.rng
        command: Any = {"action": rng.choice(FAULT_ACTIONS)}
        for _ in range(rng.randint(0, 4)):
            command[rng.choice(FAULT_OPTIONS)] = rng.choice(FAULT_VALUES)
        if command["action"] in ("latency", "outage"):  # keep the run short
            command["seconds"] = 0.001
            command.pop("up_to", None)
        if rng.random() < 0.1:
            command = random_json(rng)
        async with self.http.post(f"{self.sim.url}/_sim/faults", json=command) as resp:
            if resp.status >= 500:
                self.server_errors.append((resp.status, "faults", command, await resp.text()))
        if rng.random() < 0.3:
            async with self.http.delete(f"{self.sim.url}/_sim/faults") as resp:
                assert resp.status == 200


def _expected_server_answer(status: int, text: str, content_type: str) -> bool:
    """5xx answers the real server gives too (not crashes): injected faults (the commands
    above never script a 500), a too-new resourceVersion (504), and strategic merge's
    unconverted Go errors (a 500 without a reason)."""
    if status in (503, 504, 429):
        return True
    body = json.loads(text) if text.startswith("{") else {}
    return status == 500 and "reason" not in body and "strategic" in content_type


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_requests_never_crash_the_server(simulator, caplog, seed: int) -> None:
    caplog.set_level(logging.ERROR)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{simulator.url}/apis/apiextensions.k8s.io/v1/"
                             "customresourcedefinitions", json=CRD) as resp:
            assert resp.status == 201
        fuzzer = Fuzzer(simulator, http, seed)
        for _ in range(600):
            if fuzzer.rng.random() < 0.06:
                await fuzzer.fault_command()
            else:
                await fuzzer.api_request()
    await simulator.store.wait_gc_idle()
    assert fuzzer.server_errors == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    statuses: collections.Counter[int] = collections.Counter()
    for entry in simulator.counters.snapshot()["counts"]:
        statuses[entry["status"]] += entry["count"]
    assert {200, 201, 400, 404, 422} <= set(statuses)  # the stream reached every layer
