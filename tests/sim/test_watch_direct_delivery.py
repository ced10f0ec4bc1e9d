"""Watch events are written to the client in the write that commits them, in order.

Why it matters: an event that waits for the rest of a busy loop iteration before the
stream's task writes it delays every watcher, and a spawner's stop() waits on exactly
that watch (the stop-latency benchmark measures it). These tests pin the two halves of the contract: delivery at commit time while the client keeps up,
and the queued, backpressured path (same order, nothing lost) when it does not.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from kubesim import app as sim_app
from kubesim.store import Store, Watch
from kubesim.testing import run_simulator


def names(lines: list[bytes]) -> list[str]:
    return [json.loads(line)["object"]["metadata"]["name"] for line in lines]


def recorded_watch(flush_interval: float = 0.0) -> tuple[Store, Any, Watch, list[bytes]]:
    """A store, its configmaps, a watch of them and the lines its direct writer took.

    With the default ``flush_interval=0`` every event is written on its own at its
    commit (what these tests pin); the burst holding is tested in test_watch_bursts.py.
    """
    store = Store(watch_flush_interval=flush_interval)
    cms = store.resource("configmaps")
    watch = store.watch(cms, "default", resource_version=str(store.resource_version))
    written: list[bytes] = []

    def write(line: bytes) -> bool:
        written.append(line)
        return True

    watch.attach_writer(write)
    return store, cms, watch, written


async def test_events_are_written_at_commit_while_nothing_is_queued():
    store, cms, watch, written = recorded_watch()
    await store.create(cms, "default", {"metadata": {"name": "a"}})
    assert names(written) == ["a"]
    assert not watch._queue and watch.delivered == 1
    watch.close()
    await store.close()


async def test_a_refused_write_queues_and_later_events_wait_behind_it():
    store, cms, watch, written = recorded_watch()
    accept = True

    def write(line: bytes) -> bool:
        if accept:
            written.append(line)
        return accept

    watch.attach_writer(write)
    await store.create(cms, "default", {"metadata": {"name": "direct"}})
    accept = False
    await store.create(cms, "default", {"metadata": {"name": "queued-1"}})
    accept = True
    # the client could take this one, but it must not overtake the queued event
    await store.create(cms, "default", {"metadata": {"name": "queued-2"}})
    assert names(written) == ["direct"]
    first = await watch.next_event()
    second = await watch.next_event()
    assert first is not None and second is not None
    assert [first.object["metadata"]["name"], second.object["metadata"]["name"]] == [
        "queued-1",
        "queued-2",
    ]
    # the queue is empty again: back to writing at commit
    await store.create(cms, "default", {"metadata": {"name": "direct-again"}})
    assert names(written) == ["direct", "direct-again"]
    watch.close()
    await store.close()


async def test_no_direct_write_while_the_stream_task_holds_events():
    store, cms, watch, written = recorded_watch()
    watch.begin_write()
    await store.create(cms, "default", {"metadata": {"name": "held"}})
    assert written == [] and len(watch._queue) == 1
    watch.end_write()
    watch.close()
    await store.close()


async def test_a_scripted_close_after_n_events_counts_every_event():
    """The fault ``close_after`` needs every event to pass through the counting queue."""
    store, cms, watch, written = recorded_watch()
    watch.close_after(1)
    for name in ("one", "two"):
        await store.create(cms, "default", {"metadata": {"name": name}})
    assert written == []
    got = [event.object["metadata"]["name"] async for event in watch]
    assert got == ["one"]
    await store.close()


async def read_watch(
    url: str, rv: int, count: int, *, opened: asyncio.Event, wait_before_reading: asyncio.Event
):
    """A client that opens a watch, then reads nothing until told to (a slow reader)."""
    connector = aiohttp.TCPConnector()
    async with aiohttp.ClientSession(connector=connector) as http:
        query = f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}"
        async with http.get(f"{url}{query}&timeoutSeconds=30") as resp:
            assert resp.status == 200
            opened.set()  # headers arrived: the server attached its writer before sending them
            await wait_before_reading.wait()
            lines = []
            async for raw in resp.content:
                lines.append(json.loads(raw))
                if len(lines) == count:
                    break
            return lines


@pytest.mark.parametrize("limit", [sim_app.DIRECT_WRITE_LIMIT, 1024])
async def test_a_slow_http_client_gets_every_event_in_order(monkeypatch, limit):
    """With a small send-buffer limit most events fall back to the queue and back again;
    the client must still see each one once, in resourceVersion order."""
    monkeypatch.setattr(sim_app, "DIRECT_WRITE_LIMIT", limit)
    async with run_simulator() as sim:
        store = sim.store
        cms = store.resource("configmaps")
        rv = store.resource_version
        opened, go = asyncio.Event(), asyncio.Event()
        reader = asyncio.ensure_future(
            read_watch(sim.url, rv, 300, opened=opened, wait_before_reading=go)
        )
        await asyncio.wait_for(opened.wait(), 10)
        (watch,) = store.watches()
        assert watch._direct is not None  # HTTP JSON watches write at commit
        payload = "x" * 4096
        for i in range(300):
            await store.create(cms, "default", {"metadata": {"name": f"c{i:03d}"},
                                                "data": {"k": payload}})
        go.set()
        lines = await asyncio.wait_for(reader, 30)
    assert [line["object"]["metadata"]["name"] for line in lines] == [
        f"c{i:03d}" for i in range(300)
    ]
    versions = [int(line["object"]["metadata"]["resourceVersion"]) for line in lines]
    assert versions == sorted(versions) and len(set(versions)) == 300
