"""A burst of watch events goes to an HTTP client in a few writes, never late or reordered.

Why: one send() per event was a third of the simulator's CPU when a thousand pods were
deleted at once (four pod events and one Event each), and it woke the client once per
event. The first event after a quiet spell is still written at its commit; the ones that
follow within ``watch_flush_interval`` are held and written together when the loop
comes round, or at the first commit once the oldest has waited the interval. These
tests pin each of those moments, and that a held event is never lost or overtaken.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from kubesim.store import Store, Watch

INTERVAL = 0.005


class StepClock:
    """The store's clock, moved by hand (the holding is timed on it)."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def names(writes: list[bytes]) -> list[list[str]]:
    """The objects' names in each write (one list per write)."""
    return [
        [json.loads(line)["object"]["metadata"]["name"] for line in data.splitlines()]
        for data in writes
    ]


def burst_watch() -> tuple[Store, StepClock, Any, Watch, list[bytes], dict[str, bool]]:
    store = Store(watch_flush_interval=INTERVAL)
    clock = StepClock()
    store.clock = clock
    cms = store.resource("configmaps")
    watch = store.watch(cms, "default", resource_version=str(store.resource_version))
    writes: list[bytes] = []
    accept = {"now": True}

    def write(data: bytes) -> bool:
        if accept["now"]:
            writes.append(data)
        return accept["now"]

    watch.attach_writer(write)
    return store, clock, cms, watch, writes, accept


async def create(store: Store, cms: Any, name: str) -> None:
    await store.create(cms, "default", {"metadata": {"name": name}})


async def loop_turn() -> None:
    """One turn of the event loop: the moment under test, not a wait for something."""
    await asyncio.sleep(0)


async def test_first_event_at_commit_the_rest_of_the_burst_in_one_write_next_turn() -> None:
    store, _clock, cms, watch, writes, _ = burst_watch()
    await create(store, cms, "a")
    assert names(writes) == [["a"]]  # a quiet spell ends: written at once
    await create(store, cms, "b")
    await create(store, cms, "c")
    assert names(writes) == [["a"]]  # held
    await loop_turn()
    assert names(writes) == [["a"], ["b", "c"]]
    assert watch.delivered == 3 and not watch._queue
    watch.close()
    await store.close()


async def test_a_commit_writes_what_has_waited_the_interval_without_a_loop_turn() -> None:
    store, clock, cms, watch, writes, _ = burst_watch()
    await create(store, cms, "a")
    await create(store, cms, "b")
    clock.advance(INTERVAL * 0.4)
    await create(store, cms, "c")
    assert names(writes) == [["a"]]  # b has waited less than the interval
    clock.advance(INTERVAL * 0.7)
    await create(store, cms, "d")
    assert names(writes) == [["a"], ["b", "c", "d"]]  # d's commit wrote the burst
    clock.advance(INTERVAL * 1.1)
    await create(store, cms, "e")
    assert names(writes) == [["a"], ["b", "c", "d"], ["e"]]  # quiet again: at once
    watch.close()
    await store.close()


async def test_held_events_that_cannot_be_written_are_queued_ahead_of_later_ones() -> None:
    store, _clock, cms, watch, writes, accept = burst_watch()
    await create(store, cms, "a")
    await create(store, cms, "b")
    accept["now"] = False  # the client stops reading
    await loop_turn()  # the burst's write is refused: b goes to the queue
    accept["now"] = True
    await create(store, cms, "c")  # the client could take it, but b is first
    assert names(writes) == [["a"]]
    got = [(await watch.next_event()), (await watch.next_event())]
    assert [e.object["metadata"]["name"] for e in got if e is not None] == ["b", "c"]
    watch.close()
    await store.close()


async def test_closing_a_watch_writes_what_it_holds_first() -> None:
    store, _clock, cms, watch, writes, _ = burst_watch()
    await create(store, cms, "a")
    await create(store, cms, "b")
    watch.close("timeout")
    assert names(writes) == [["a"], ["b"]]
    assert await watch.next_event() is None
    await store.close()


async def test_a_scripted_close_after_n_events_counts_from_the_call() -> None:
    """``close_after(n)``: what was committed before the call is written first, as it
    would have been one event at a time; the n events after it go through the counting
    queue, and the one after them is never delivered."""
    store, _clock, cms, watch, writes, _ = burst_watch()
    await create(store, cms, "a")
    await create(store, cms, "b")
    watch.close_after(2)
    assert names(writes) == [["a"], ["b"]]
    for name in ("c", "d", "e"):
        await create(store, cms, name)
    got = [event.object["metadata"]["name"] async for event in watch]
    assert got == ["c", "d"]
    assert names(writes) == [["a"], ["b"]]
    await store.close()


async def test_no_holding_with_a_zero_interval() -> None:
    store = Store(watch_flush_interval=0)
    cms = store.resource("configmaps")
    watch = store.watch(cms, "default", resource_version=str(store.resource_version))
    writes: list[bytes] = []

    def write(data: bytes) -> bool:
        writes.append(data)
        return True

    watch.attach_writer(write)
    for name in ("a", "b", "c"):
        await create(store, cms, name)
    assert names(writes) == [["a"], ["b"], ["c"]]
    watch.close()
    await store.close()


async def test_a_periodic_bookmark_never_overtakes_held_events() -> None:
    """A BOOKMARK carries the newest resourceVersion; a client that resumes from it must
    already have every event before it, so held events are written first."""
    store = Store(watch_flush_interval=INTERVAL)
    cms = store.resource("configmaps")
    watch = store.watch(
        cms, "default", resource_version=str(store.resource_version), allow_bookmarks=True,
        bookmark_interval=3600,
    )
    order: list[str] = []

    def write(data: bytes) -> bool:
        order.extend(json.loads(line)["object"]["metadata"]["name"] for line in data.splitlines())
        return True

    watch.attach_writer(write)
    await create(store, cms, "a")
    await create(store, cms, "b")  # held
    watch._last_bookmark -= 7200  # a bookmark is due now
    event = await watch.next_event()
    assert event is not None and event.type == "BOOKMARK"
    assert order == ["a", "b"]
    assert int(event.object["metadata"]["resourceVersion"]) == store.resource_version
    watch.close()
    await store.close()



async def test_the_end_of_a_request_writes_what_has_waited_the_interval() -> None:
    """No commit follows the last events of a burst; the HTTP layer's check at the end of
    each request writes them once due, without waiting for the loop to come round."""
    store, clock, cms, watch, writes, _ = burst_watch()
    await create(store, cms, "a")
    await create(store, cms, "b")
    store.flush_due_watches()
    assert names(writes) == [["a"]]  # not due yet
    clock.advance(INTERVAL * 1.1)
    store.flush_due_watches()
    assert names(writes) == [["a"], ["b"]]
    watch.close()
    await store.close()
