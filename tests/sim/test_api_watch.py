"""Watches through kubernetes_asyncio.watch.Watch: resume, selectors, bookmarks, timeouts."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client, watch
from kubesim.testing import run_simulator


def cm(name: str, **labels: str) -> dict:
    return {"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}


async def collect(stream, n: int) -> list[tuple[str, str]]:
    out = []
    async for ev in stream:
        obj = ev["object"]
        name = obj.metadata.name if hasattr(obj, "metadata") else obj["metadata"].get("name")
        out.append((ev["type"], name))
        if len(out) == n:
            break
    return out


async def watch_config_maps(
    v1: client.CoreV1Api, n: int, listed: Any = None, **query: str
) -> list[tuple[str, str]]:
    """The first ``n`` events of a watch of the default namespace's config maps, resumed
    from the version of ``listed`` (a list answer) when given, from the start otherwise."""
    if listed is not None:
        query["resource_version"] = listed.metadata.resource_version
    w = watch.Watch()
    try:
        return await collect(
            w.stream(v1.list_namespaced_config_map, "default", timeout_seconds=5, **query), n
        )
    finally:
        w.stop()


async def test_watch_resumes_from_list_resource_version(api_client):
    v1 = client.CoreV1Api(api_client)
    await v1.create_namespaced_config_map("default", cm("before"))
    listed = await v1.list_namespaced_config_map("default")
    await v1.create_namespaced_config_map("default", cm("after"))
    await v1.patch_namespaced_config_map("after", "default", {"data": {"k": "w"}})
    await v1.delete_namespaced_config_map("after", "default")
    events = await watch_config_maps(v1, 3, listed)
    assert events == [("ADDED", "after"), ("MODIFIED", "after"), ("DELETED", "after")]


@pytest.mark.simulator_options(root_ca_configmaps=False)  # counts configmaps
async def test_watch_without_version_starts_with_existing_objects(api_client):
    v1 = client.CoreV1Api(api_client)
    await v1.create_namespaced_config_map("default", cm("one"))
    await v1.create_namespaced_config_map("default", cm("two"))
    events = await watch_config_maps(v1, 2)
    assert events == [("ADDED", "one"), ("ADDED", "two")]


async def test_live_events_reach_a_waiting_watch(api_client):
    v1 = client.CoreV1Api(api_client)
    listed = await v1.list_namespaced_pod("default")
    w = watch.Watch()
    stream = w.stream(
        v1.list_namespaced_pod,
        "default",
        resource_version=listed.metadata.resource_version,
        timeout_seconds=10,
    )
    task = asyncio.create_task(collect(stream, 2))
    pod = {"metadata": {"name": "live"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    await v1.create_namespaced_pod("default", pod)
    await v1.patch_namespaced_pod("live", "default", {"metadata": {"labels": {"x": "1"}}})
    assert await task == [("ADDED", "live"), ("MODIFIED", "live")]
    w.stop()


async def test_label_selector_moves_become_added_and_deleted(api_client):
    v1 = client.CoreV1Api(api_client)
    listed = await v1.list_namespaced_config_map("default")
    await v1.create_namespaced_config_map("default", cm("mover", sel="no"))
    await v1.patch_namespaced_config_map(
        "mover", "default", {"metadata": {"labels": {"sel": "yes"}}}
    )
    await v1.patch_namespaced_config_map("mover", "default", {"data": {"k": "2"}})
    await v1.patch_namespaced_config_map(
        "mover", "default", {"metadata": {"labels": {"sel": "no"}}}
    )
    events = await watch_config_maps(v1, 3, listed, label_selector="sel=yes")
    assert events == [("ADDED", "mover"), ("MODIFIED", "mover"), ("DELETED", "mover")]


@pytest.mark.simulator_options(root_ca_configmaps=False)  # counts configmaps
async def test_namespace_scoping(api_client):
    v1 = client.CoreV1Api(api_client)
    await v1.create_namespace({"metadata": {"name": "other"}})
    listed = await v1.list_namespaced_config_map("default")
    await v1.create_namespaced_config_map("other", cm("elsewhere"))
    await v1.create_namespaced_config_map("default", cm("here"))
    events = await watch_config_maps(v1, 1, listed)
    assert events == [("ADDED", "here")]
    everywhere = await v1.list_config_map_for_all_namespaces()
    assert {c.metadata.name for c in everywhere.items} == {"elsewhere", "here"}


async def raw_watch_lines(url: str, query: str, n: int) -> list[dict]:
    """The raw event lines of a watch, read until the server ends it or ``n`` arrived."""
    lines = []
    async with aiohttp.ClientSession() as http, http.get(f"{url}{query}") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/json"
        async for raw in resp.content:
            lines.append(json.loads(raw))
            if len(lines) == n:
                break
    return lines


async def test_plain_watch_with_bookmarks_starts_with_initial_events_end(simulator):
    lines = await raw_watch_lines(
        simulator.url,
        "/api/v1/namespaces/default/configmaps?watch=1&labelSelector=none%3Dhere"
        "&timeoutSeconds=10&allowWatchBookmarks=true",
        1,
    )
    assert lines[0] == {
        "type": "BOOKMARK",
        "object": {
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": {
                "resourceVersion": str(simulator.store.resource_version),
                "annotations": {"k8s.io/initial-events-end": "true"},
            },
        },
    }


async def test_periodic_bookmarks_carry_the_current_version():
    async with run_simulator(bookmark_interval=0.05) as sim:
        rv = sim.store.resource_version
        lines = await raw_watch_lines(
            sim.url,
            f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}"
            "&allowWatchBookmarks=true&timeoutSeconds=5",
            2,
        )
        assert [line["type"] for line in lines] == ["BOOKMARK", "BOOKMARK"]
        assert lines[0]["object"] == {
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": str(rv)},
        }


async def test_timeout_seconds_ends_the_stream_cleanly(simulator):
    lines = await raw_watch_lines(
        simulator.url,
        f"/api/v1/namespaces/default/pods?watch=1&resourceVersion={simulator.store.resource_version}"
        "&timeoutSeconds=1",
        100,
    )
    assert lines == []  # the server ended the stream; nothing happened meanwhile
    assert not simulator.store.watches()


async def test_in_process_watch_iterates_store_events(simulator):
    store = simulator.store
    pods = store.resource("pods")
    watch_ = store.watch(pods, "default", resource_version=str(store.resource_version))
    await store.create(
        pods,
        "default",
        {"metadata": {"name": "x"}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
    )
    await store.delete(pods, "default", "x")
    seen = []
    async for event in watch_:
        seen.append(
            (
                event.type,
                event.object["metadata"]["name"],
                event.object["metadata"].get("deletionGracePeriodSeconds"),
            )
        )
        if len(seen) == 3:
            watch_.close()
    # a never-scheduled pod: deletion shows as MODIFIED (grace 0) before DELETED
    assert seen == [("ADDED", "x", None), ("MODIFIED", "x", 0), ("DELETED", "x", 0)]
