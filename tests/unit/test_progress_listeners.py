"""SpawnProgress wakes each listener in the next loop iteration, and a cancelled listener
does not disturb the others."""

from __future__ import annotations

import asyncio
from typing import Any

from async_kubespawner.lifecycle.progress import SpawnProgress


async def collect(log: SpawnProgress, into: list[dict[str, Any]]) -> None:
    async for message in log.follow():
        into.append(message)


async def test_a_pushed_message_reaches_a_waiting_listener_in_the_next_iteration() -> None:
    log = SpawnProgress()
    got: list[dict[str, Any]] = []
    listener = asyncio.ensure_future(collect(log, got))
    await asyncio.sleep(0)  # the listener has replayed nothing and now waits
    assert got == []
    log.push("Pulling image")
    await asyncio.sleep(0)  # exactly one iteration later
    assert [m["message"].endswith("Pulling image") for m in got] == [True]
    log.finish()
    await listener


async def test_cancelling_one_listener_leaves_the_others_following() -> None:
    log = SpawnProgress()
    first: list[dict[str, Any]] = []
    second: list[dict[str, Any]] = []
    a = asyncio.ensure_future(collect(log, first))
    b = asyncio.ensure_future(collect(log, second))
    log.push("one")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    a.cancel()
    await asyncio.gather(a, return_exceptions=True)
    log.push("two")
    log.finish()
    await b
    assert [m["message"].rsplit(" ", 1)[-1] for m in second] == ["one", "two"]
    assert [m["message"].rsplit(" ", 1)[-1] for m in first] == ["one"]


async def test_a_late_joiner_replays_everything() -> None:
    log = SpawnProgress()
    log.push("one")
    log.push("two")
    log.finish()
    late: list[dict[str, Any]] = []
    await collect(log, late)
    assert [m["message"].rsplit(" ", 1)[-1] for m in late] == ["one", "two"]
    assert [m["progress"] for m in late] == sorted(m["progress"] for m in late)
