"""Whole responses over HTTP compared with the recorded ones, placeholders as patterns.

``<uid-N>``, ``<rv>``, ``<time>``, ``<ip>``, ``<gen>`` in a recorded value match any value
of that shape; everything else must be equal. ``managedFields`` entries are compared
without their ``fieldsV1`` (the recording left it out); requests carry the recording
client's User-Agent, which names the field manager.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

SAMPLES = Path(__file__).parent / "samples"
RUN = "g1"
USER_AGENT = "conformance-probe/1.0"  # the recording's client: its field manager
PLACEHOLDERS = {
    r"<uid-\d+>": r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    r"<rv>": r"[0-9]+",
    r"<time>": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
    r"<ip>": r"\d+\.\d+\.\d+\.\d+",
    r"<gen(-\d+)?>": r"[bcdfghjklmnpqrstvwxz2456789]{5}",
    r"<run>": RUN,
}


def load(file: str) -> dict[str, Any]:
    with open(SAMPLES / file) as f:
        return json.load(f)


def pattern(recorded: str) -> re.Pattern[str]:
    """A regex for a recorded string: literal text, placeholders replaced by their shapes."""
    placeholder = re.compile("|".join(f"({p})" for p in PLACEHOLDERS))
    shapes = list(PLACEHOLDERS.values())
    out, pos = [], 0
    for m in placeholder.finditer(recorded):
        out.append(re.escape(recorded[pos:m.start()]))
        which = next(i for i, p in enumerate(PLACEHOLDERS) if re.fullmatch(p, m.group(0)))
        out.append(shapes[which])
        pos = m.end()
    out.append(re.escape(recorded[pos:]))
    return re.compile("^" + "".join(out) + "$")


def assert_matches(actual: Any, recorded: Any, where: str = "") -> None:
    if isinstance(recorded, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        if "fieldsType" in recorded and "fieldsV1" not in recorded:  # a managedFields entry
            actual = {k: v for k, v in actual.items() if k != "fieldsV1"}
        if "." not in where or where.endswith(".metadata"):  # the root and metadata: same order
            assert list(actual) == list(recorded), f"{where}: keys {list(actual)} != {list(recorded)}"
        else:  # deeper, the real order is Go's struct field order; only the key set matters
            assert sorted(actual) == sorted(recorded), f"{where}: keys {sorted(actual)} != {sorted(recorded)}"
        for key, value in recorded.items():
            assert_matches(actual[key], value, f"{where}.{key}")
    elif isinstance(recorded, list):
        assert isinstance(actual, list) and len(actual) == len(recorded), f"{where}: {actual!r}"
        for i, (a, r) in enumerate(zip(actual, recorded, strict=True)):
            assert_matches(a, r, f"{where}[{i}]")
    elif isinstance(recorded, str) and "<" in recorded:
        assert isinstance(actual, str) and pattern(recorded).match(actual), f"{where}: {actual!r} !~ {recorded!r}"
    else:
        assert actual == recorded, f"{where}: {actual!r} != {recorded!r}"


def concrete(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("<run>", RUN)
    if isinstance(value, dict):
        return {k: concrete(v) for k, v in value.items()}
    if isinstance(value, list):
        return [concrete(v) for v in value]
    return value


def cases(file: str) -> list[tuple[str, str]]:
    return [(file, k) for k, v in load(file).items() if isinstance(v, dict) and "response" in v]


async def send(sim, request: dict[str, Any]) -> tuple[int, str, Any]:
    data = request.get("body_text")
    if data is None and "body" in request:
        data = json.dumps(concrete(request["body"]))
    headers = {"Content-Type": request["content_type"]} if "content_type" in request else {}
    headers["User-Agent"] = USER_AGENT
    async with aiohttp.ClientSession() as http:
        async with http.request(request["method"], sim.url + concrete(request["path"]),
                                data=data, headers=headers) as resp:
            return resp.status, resp.headers["Content-Type"], await resp.json()


async def make_namespace(sim) -> None:
    async with aiohttp.ClientSession() as http:
        await http.post(f"{sim.url}/api/v1/namespaces", json={"metadata": {"name": f"probe-{RUN}"}})


@pytest.mark.parametrize(
    ("file", "key"),
    cases("pod-defaulted.json") + cases("service-defaulted.json")
    + cases("pvc-defaulted.json") + cases("secret-defaulted.json"),
)
async def test_created_object_matches_recording(simulator, file, key):
    entry = load(file)[key]
    await make_namespace(simulator)
    status, ctype, body = await send(simulator, entry["request"])
    assert (status, ctype) == (entry["response"]["status"], entry["response"]["content_type"])
    assert_matches(body, entry["response"]["body"], key)


@pytest.mark.parametrize("key", ["422_invalid_one_cause", "422_invalid_several_causes"])
async def test_invalid_create_matches_recording(simulator, key):
    entry = load("status-errors.json")[key]
    await make_namespace(simulator)
    status, _, body = await send(simulator, entry["request"])
    assert status == 422
    assert body == entry["response"]["body"]


async def test_immutable_pod_update_matches_recording(simulator):
    entry = load("status-errors.json")["422_invalid_immutable_pod_field"]
    await make_namespace(simulator)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "upd-pod"},
           "spec": {"containers": [{"name": "main", "image": "registry.example/probe/notebook:1.0"},
                                   {"name": "side", "image": "registry.example/probe/notebook:1.0"}],
                    "schedulingGates": [{"name": "example.com/probe-hold"}]}}
    status, _, created = await send(simulator, {"method": "POST", "path": "/api/v1/namespaces/probe-<run>/pods",
                                                "content_type": "application/json", "body": pod})
    assert status == 201
    body = created
    body["spec"]["containers"].append({"name": "extra", "image": "registry.example/probe/notebook:1.0"})
    status, _, answer = await send(simulator, {"method": "PUT", "path": "/api/v1/namespaces/probe-<run>/pods/upd-pod",
                                               "content_type": "application/json", "body": body})
    assert status == 422
    assert answer == entry["response"]["body"]


async def test_watch_event_shapes_match_recording(simulator):
    """ADDED/MODIFIED/DELETED lines of a label-selected ConfigMap watch, as recorded."""
    import asyncio

    recorded = load("watch-events.json")
    await make_namespace(simulator)
    store = simulator.store
    rv = store.resource_version
    url = (f"{simulator.url}/api/v1/namespaces/probe-{RUN}/configmaps?watch=1"
           f"&labelSelector=w%3Dlife&resourceVersion={rv}")
    lines: list[dict[str, Any]] = []
    async with aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}) as http, http.get(url) as resp:
        base = f"{simulator.url}/api/v1/namespaces/probe-{RUN}/configmaps"
        await http.post(base, json={"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": "w-life", "labels": {"w": "life"}},
                                    "data": {"k": "v"}})
        await http.patch(f"{base}/w-life", data=json.dumps({"metadata": {"labels": {"added": "yes"}}}),
                         headers={"Content-Type": "application/merge-patch+json"})
        await http.patch(f"{base}/w-life", data=json.dumps({"metadata": {"labels": {"added": None}},
                                                           "data": {"k": "v2"}}),
                         headers={"Content-Type": "application/merge-patch+json"})
        await http.delete(f"{base}/w-life")
        while len(lines) < 4:
            lines.append(json.loads(await asyncio.wait_for(resp.content.readline(), 10)))
    assert [line["type"] for line in lines] == ["ADDED", "MODIFIED", "MODIFIED", "DELETED"]
    assert_matches(lines[0], recorded["ADDED"], "ADDED")
    assert_matches(lines[1], recorded["MODIFIED"], "MODIFIED")
    assert_matches(lines[3], recorded["DELETED"], "DELETED")
    uids = {line["object"]["metadata"]["uid"] for line in lines}
    assert len(uids) == 1  # <uid-18> throughout
