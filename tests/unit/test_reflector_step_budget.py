"""A watch backlog is applied in slices of the reflector's step budget, across chunks too.

aiohttp hands back a chunk it has already buffered without yielding to the event loop,
so a backlog that arrives as many chunks is, to the loop, one step. The reflector used
to restart its 2 ms budget at every chunk, and a backlog of chunks then ran as one
step of 6-13 ms at 10,000 spawns. The budget now restarts only after a yield or a fetch
that waited for the socket.

The clock is a fake one that each applied line advances by 1.5 ms (the budget is 2 ms),
and a ticker task counts loop iterations, so what could fail is how many lines share
one iteration, not timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from async_kubespawner.kube.cache import ObjectCache, trim_pod
from async_kubespawner.kube.reflector import Reflector, add_event_observer
from async_kubespawner.testing import ReplayedWatch

LINE_COST = 0.0015


def _pod_line(i: int) -> bytes:
    pod = {"metadata": {"name": f"jupyter-u{i}", "namespace": "default", "uid": f"uid-{i}",
                        "resourceVersion": str(10 + i),
                        "labels": {"component": "singleuser-server"}},
           "spec": {"containers": [{"name": "notebook"}]}, "status": {"phase": "Pending"}}
    return json.dumps({"type": "ADDED", "object": pod}).encode() + b"\n"


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Clock]:
    fake = _Clock()
    monkeypatch.setattr(time, "perf_counter", fake)  # the reflector's clock: time.perf_counter
    yield fake


async def _lines_per_iteration(source: Any, clock: _Clock) -> list[int]:
    """Run one watch of ``source``; how many lines each loop iteration applied."""
    ticks = 0
    applied_at: list[int] = []

    def observe(_reflector: Any, _event: Any, _seen: float) -> None:
        applied_at.append(ticks)
        clock.now += LINE_COST

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    reflector = Reflector(source, ObjectCache(trim_pod))
    reflector.resource_version = "1"
    remove = add_event_observer(observe)
    counting = asyncio.ensure_future(ticker())
    try:
        await asyncio.sleep(0)
        assert await reflector._watch()
    finally:
        remove()
        counting.cancel()
    return [applied_at.count(t) for t in sorted(set(applied_at))]


async def test_buffered_chunks_share_one_budget(clock: _Clock) -> None:
    """Ten one-line chunks that were all buffered: at most two lines (3 ms) per step."""
    source = ReplayedWatch("pods", [_pod_line(i) for i in range(10)])
    per_iteration = await _lines_per_iteration(source, clock)
    assert sum(per_iteration) == 10
    # Before: the budget restarted at every chunk, so all ten ran in one iteration.
    assert max(per_iteration) == 2


async def test_one_chunk_is_sliced_as_before(clock: _Clock) -> None:
    source = ReplayedWatch("pods", [b"".join(_pod_line(i) for i in range(10))])
    per_iteration = await _lines_per_iteration(source, clock)
    assert sum(per_iteration) == 10
    assert max(per_iteration) == 2


class _WaitingWatch(ReplayedWatch):
    """Each chunk arrives after the loop ran (the fetch waited for the socket)."""

    def __init__(self, resource: str, chunks: list[bytes], clock: _Clock) -> None:
        super().__init__(resource, chunks)
        self._clock = clock

    @contextlib.asynccontextmanager
    async def watch(self, **kwargs: Any) -> AsyncIterator[AsyncIterator[bytes]]:
        async def waited() -> AsyncIterator[bytes]:
            for chunk in self.chunks:
                await asyncio.sleep(0)
                self._clock.now += 0.001  # the time the loop spent elsewhere
                yield chunk

        yield waited()


async def test_a_chunk_that_waited_starts_a_new_budget(clock: _Clock) -> None:
    """A chunk fetched after a wait is a new step: its line runs at once, no extra yield."""
    source = _WaitingWatch("pods", [_pod_line(i) for i in range(6)], clock)
    per_iteration = await _lines_per_iteration(source, clock)
    # One line per chunk, each in its own iteration (the wait), none pushed further.
    assert per_iteration == [1] * 6


async def test_a_fetch_knows_whether_it_suspended_and_passes_everything_through() -> None:
    from async_kubespawner.kube.reflector import _Fetch

    async def at_once() -> str:
        return "ready"

    async def after_a_turn() -> str:
        await asyncio.sleep(0)
        return "later"

    async def failing() -> str:
        await asyncio.sleep(0)
        raise ValueError("no")

    quick, slow = _Fetch(at_once()), _Fetch(after_a_turn())
    assert (await quick, quick.suspended) == ("ready", False)
    assert (await slow, slow.suspended) == ("later", True)
    with pytest.raises(ValueError, match="no"):
        await _Fetch(failing())

    waiting = asyncio.get_running_loop().create_future()
    fetch = _Fetch(waiting)

    async def wait_on_it() -> Any:
        return await fetch

    task = asyncio.ensure_future(wait_on_it())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert waiting.cancelled() and fetch.suspended
