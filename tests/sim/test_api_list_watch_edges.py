"""List and watch edges: ListOptions misuse, continue tokens, future and expired
resourceVersions, the per-resource watch cache window, selectors on initial events."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from kubesim.testing import run_simulator

from .support import sample

CM = "/api/v1/namespaces/default/configmaps"


async def get(sim, path: str) -> tuple[int, Any, Any]:
    async with aiohttp.ClientSession() as http, http.get(sim.url + path) as resp:
        return resp.status, await resp.json(), resp.headers


async def make(sim, n: int, prefix: str = "cm", labels: dict[str, str] | None = None) -> None:
    async with aiohttp.ClientSession() as http:
        for i in range(n):
            body = {"metadata": {"name": f"{prefix}-{i}", "labels": labels or {}}}
            async with http.post(sim.url + CM, json=body) as resp:
                assert resp.status == 201


async def watch_lines(sim, path: str, count: int) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as http, http.get(sim.url + path) as resp:
        assert resp.status == 200
        while len(lines) < count:
            line = await asyncio.wait_for(resp.content.readline(), 10)
            if not line:
                break
            lines.append(json.loads(line))
    return lines


def invalid_list_options(*causes: dict[str, str]) -> dict[str, Any]:
    texts = [f"{c['field']}: {c['message']}" for c in causes]
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    return {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f'ListOptions.meta.k8s.io "" is invalid: {joined}', "reason": "Invalid",
        "details": {"group": "meta.k8s.io", "kind": "ListOptions", "causes": list(causes)},
        "code": 422,
    }


@pytest.mark.parametrize(
    ("query", "reason", "message", "field"),
    [
        ("?resourceVersion=5&resourceVersionMatch=Newest", "FieldValueNotSupported",
         'Unsupported value: "Newest": supported values: "Exact", "NotOlderThan", ""',
         "resourceVersionMatch"),
        ("?resourceVersion=0&resourceVersionMatch=Exact", "FieldValueForbidden",
         'Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
         "resourceVersionMatch"),
        ("?sendInitialEvents=true", "FieldValueForbidden",
         "Forbidden: sendInitialEvents is forbidden for list", "sendInitialEvents"),
        ("?watch=1&resourceVersionMatch=NotOlderThan", "FieldValueForbidden",
         "Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents "
         "is provided", "resourceVersionMatch"),
        ("?watch=1&sendInitialEvents=true", "FieldValueForbidden",
         "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
         "resourceVersionMatch"),
    ],
)
async def test_list_options_misuse_is_422_invalid(simulator, query, reason, message, field):
    status, body, _ = await get(simulator, CM + query)
    assert status == 422
    assert body == invalid_list_options({"reason": reason, "message": message, "field": field})


async def test_exact_list_of_a_bootstrap_version_is_410_on_a_fresh_server(simulator):
    entry = sample("status-errors.json", "410_list_resource_version_too_old")
    status, body, _ = await get(simulator, CM + "?resourceVersion=1&resourceVersionMatch=Exact")
    assert status == 410
    assert body == entry["response"]["body"]


@pytest.mark.simulator_options(root_ca_configmaps=False)  # counts configmaps
async def test_limit_with_resource_version_0_is_served_whole(simulator):
    await make(simulator, 5)
    status, body, _ = await get(simulator, CM + "?limit=2&resourceVersion=0")
    assert status == 200
    assert len(body["items"]) == 5 and "continue" not in body["metadata"]
    _, paged, _ = await get(simulator, CM + "?limit=2")
    assert len(paged["items"]) == 2 and paged["metadata"]["continue"]


async def test_malformed_continue_tokens_get_the_decoders_message(simulator):
    status, body, _ = await get(simulator, CM + "?limit=1&continue=not*base64")
    assert status == 400
    assert body["message"] == (
        "invalid continue token: continue key is not valid: incorrect encoded start "
        "resourceVersion (version meta.k8s.io/v1): illegal base64 data at input byte 3"
    )
    token = "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MCwic3RhcnQiOiJ4In0"  # {"v":...,"rv":0,...}
    status, body, _ = await get(simulator, CM + f"?limit=1&continue={token}")
    assert status == 400
    assert body["message"] == (
        "invalid continue token: continue key is not valid: incorrect encoded start "
        "resourceVersion (version meta.k8s.io/v1)"
    )


async def test_expired_continue_token_is_410_with_a_token_to_go_on():
    async with run_simulator(history_size=3) as sim:
        await make(sim, 4)
        _, first, _ = await get(sim, CM + "?limit=2")
        await make(sim, 4, prefix="later")  # the first page's version is compacted
        status, body, _ = await get(sim, CM + f"?limit=2&continue={first['metadata']['continue']}")
        assert status == 410
        assert body["reason"] == "Expired"
        assert body["message"].startswith(
            "The provided continue parameter is too old to display a consistent list result."
        )
        status, rest, _ = await get(sim, CM + f"?limit=10&continue={body['metadata']['continue']}")
        assert status == 200
        assert [o["metadata"]["name"] for o in rest["items"]][:2] == ["cm-2", "cm-3"]


@pytest.mark.simulator_options(root_ca_configmaps=False)  # counts configmaps
async def test_read_at_a_future_version_waits_for_it_then_504(simulator):
    _, listed, _ = await get(simulator, CM)
    future = int(listed["metadata"]["resourceVersion"]) + 1
    pending = asyncio.ensure_future(get(simulator, CM + f"?resourceVersion={future}"))
    # the list is answered only once the store reaches its version: wait until it waits
    await asyncio.wait_for(simulator.store.read_waiting_for_version.wait(), 10)
    assert not pending.done()
    await make(simulator, 1)
    status, body, _ = await pending
    assert status == 200 and len(body["items"]) == 1
    status, body, headers = await get(simulator, CM + "/cm-0?resourceVersion=999999")
    assert status == 504
    assert headers["Retry-After"] == "1"
    assert body["reason"] == "Timeout"
    assert body["message"].startswith("Too large resource version: 999999, current: ")
    assert body["details"] == {
        "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
        "retryAfterSeconds": 1,
    }


async def test_watch_with_a_non_numeric_resource_version_is_400(simulator):
    status, body, _ = await get(simulator, CM + "?watch=1&resourceVersion=abc")
    assert status == 400 and body["reason"] == "BadRequest"


async def test_initial_watch_events_honour_label_and_field_selectors(simulator):
    await make(simulator, 2, prefix="in", labels={"w": "yes"})
    await make(simulator, 2, prefix="out", labels={"w": "no"})
    lines = await watch_lines(
        simulator, CM + "?watch=1&labelSelector=w%3Dyes&allowWatchBookmarks=true", 3
    )
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in lines] == [
        ("ADDED", "in-0"), ("ADDED", "in-1"), ("BOOKMARK", None)
    ]
    lines = await watch_lines(
        simulator,
        CM + "?watch=1&fieldSelector=metadata.name%3Dout-1&sendInitialEvents=true"
        "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true",
        2,
    )
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in lines] == [
        ("ADDED", "out-1"), ("BOOKMARK", None)
    ]
    assert lines[1] == {"type": "BOOKMARK", "object": {
        "kind": "ConfigMap", "apiVersion": "v1",
        "metadata": {"resourceVersion": lines[1]["object"]["metadata"]["resourceVersion"],
                     "annotations": {"k8s.io/initial-events-end": "true"}}}}


async def test_watch_window_is_per_resource_and_sized_like_the_watch_cache():
    """A busy resource forgets old versions once its 100-event buffer is full and older
    than 75 s; a quiet resource resumes from the same version."""
    async with run_simulator() as sim:
        clock = [0.0]
        sim.store.clock = lambda: clock[0]
        start = sim.store.resource_version
        async with aiohttp.ClientSession() as http:
            for i in range(101):
                clock[0] += 1.0  # 101 s in all: the oldest event is no longer fresh
                async with http.post(sim.url + CM, json={"metadata": {"name": f"c{i}"}}) as resp:
                    assert resp.status == 201
        oldest = sim.store.resource_version - 100  # the first buffered event's version - 1
        expected = sample("watch-events.json", "ERROR_expired")["event"]
        lines = await watch_lines(sim, CM + f"?watch=1&resourceVersion={start}", 1)
        assert lines[0]["object"]["message"] == f"too old resource version: {start} ({oldest})"
        lines[0]["object"]["message"] = expected["object"]["message"]
        assert lines[0] == expected
        # the secrets cache saw nothing: the same version still resumes there
        async with aiohttp.ClientSession() as http, http.get(
            sim.url + f"/api/v1/namespaces/default/secrets?watch=1&resourceVersion={start}"
            "&timeoutSeconds=1"
        ) as resp:
            assert resp.status == 200
            assert await resp.read() == b""
        # while every event was fresh, the buffer grew instead of forgetting
        assert sim.store.oldest_watchable_version(sim.store.resource("secrets")) == start


async def test_busy_fresh_watch_cache_grows_instead_of_expiring():
    async with run_simulator() as sim:
        start = sim.store.resource_version
        await make(sim, 150)  # within a second: the cache doubles to 200
        rt = sim.store.resource("configmaps")
        assert sim.store.oldest_watchable_version(rt) == start
        lines = await watch_lines(sim, CM + f"?watch=1&resourceVersion={start}", 150)
        assert len(lines) == 150 and all(e["type"] == "ADDED" for e in lines)
