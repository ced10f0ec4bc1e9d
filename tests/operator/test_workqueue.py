"""The work queue: coalescing, one worker per key, re-run after a change mid-pass, backoff."""

from __future__ import annotations

import asyncio

import pytest

from async_kubespawner.operator.workqueue import QueueShutDown, WorkQueue


async def test_adds_coalesce_until_taken() -> None:
    q: WorkQueue[str] = WorkQueue()
    for _ in range(3):
        q.add("a")
    q.add("b")
    assert len(q) == 2
    assert await q.get() == "a"
    assert await q.get() == "b"


async def test_a_key_is_never_handed_to_two_workers_and_a_change_mid_pass_is_not_lost() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert await q.get() == "a"
    q.add("a")  # changed while being processed
    assert len(q) == 0  # not handed out again now ...
    waiter = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    assert not waiter.done()
    q.done("a")  # ... but right after the pass
    assert await asyncio.wait_for(waiter, 1) == "a"


async def test_retry_backs_off_per_key_and_forget_resets() -> None:
    q: WorkQueue[str] = WorkQueue(base_delay=0.01, max_delay=1.0)
    delays = [q.retry("a") for _ in range(5)]
    assert all(0.005 * 2**i <= d <= 0.01 * 2**i for i, d in enumerate(delays))
    assert q.failures("a") == 5
    q.forget("a")
    assert q.failures("a") == 0
    assert await asyncio.wait_for(q.get(), 2) == "a"  # scheduled once, not five times
    q.done("a")
    assert len(q) == 0


async def test_add_after_keeps_the_earliest_schedule() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_after("a", 3600)
    q.add_after("a", 0.01)  # earlier: replaces the hour-long schedule
    assert await asyncio.wait_for(q.get(), 30) == "a"
    q.add_after("b", 0.01)
    q.add_after("b", 3600)  # later: the earlier one stays
    assert await asyncio.wait_for(q.get(), 30) == "b"


async def test_shutdown_ends_waiting_workers() -> None:
    q: WorkQueue[str] = WorkQueue()
    waiter = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    q.shutdown()
    with pytest.raises(QueueShutDown):
        await asyncio.wait_for(waiter, 1)


async def test_urgent_keys_jump_the_queue() -> None:
    q: WorkQueue[str] = WorkQueue()
    for key in ("new-1", "new-2", "started"):
        q.add(key)
    q.add("started", urgent=True)  # already queued: moved ahead of the normal keys
    q.add("other", urgent=True)  # urgent too, but later: behind "started"
    assert [await q.get() for _ in range(4)] == ["started", "other", "new-1", "new-2"]


async def test_promoted_key_is_taken_once_and_its_old_place_is_skipped() -> None:
    q: WorkQueue[str] = WorkQueue()
    for key in ("a", "b", "c"):
        q.add(key)
    q.add("b", urgent=True)
    q.add("b", urgent=True)  # already in the urgent lane: nothing changes
    assert len(q) == 3
    assert await q.get() == "b"
    q.done("b")
    q.add("b")  # queued again, behind c; its stale entry (between a and c) must not
    assert len(q) == 3  # make it a fourth key
    taken = [await q.get() for _ in range(3)]
    assert sorted(taken) == ["a", "b", "c"] and len(q) == 0
    for key in taken:
        q.done(key)
    q.add("d")
    assert await q.get() == "d"  # no leftover entry of any earlier key comes first
    assert len(q) == 0


async def test_depth_counts_keys_not_lane_entries() -> None:
    depths: list[int] = []
    q: WorkQueue[str] = WorkQueue(on_depth=depths.append)
    q.add("a")
    q.add("a", urgent=True)
    assert len(q) == 1 and depths == [1]
    await q.get()
    assert depths == [1, 0]


async def test_a_key_made_urgent_while_in_progress_stays_urgent() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("started")
    assert await q.get() == "started"
    q.add("new-1")
    q.add("new-2")
    q.add("started", urgent=True)  # its pod became Ready during the pass
    q.add("started")  # a later ordinary change does not take the urgency away
    q.done("started")
    assert await q.get() == "started"  # ahead of the servers still to provision


async def test_normal_keys_never_occupy_every_worker() -> None:
    q: WorkQueue[str] = WorkQueue(max_normal_in_progress=2)
    for i in range(4):
        q.add(f"new-{i}")
    assert [await q.get(), await q.get()] == ["new-0", "new-1"]
    waiter = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    assert not waiter.done()  # two normal keys in progress: the cap
    q.add("ready", urgent=True)
    assert await asyncio.wait_for(waiter, 1) == "ready"  # taken by the free worker at once
    q.add("new-2", urgent=True)  # promoted: no longer held by the cap
    assert await asyncio.wait_for(q.get(), 1) == "new-2"
    waiter = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    assert not waiter.done()
    q.done("ready")  # an urgent pass ending frees no normal slot
    await asyncio.sleep(0)
    assert not waiter.done()
    q.done("new-0")
    assert await asyncio.wait_for(waiter, 1) == "new-3"
    assert len(q) == 0


async def test_scheduled_and_retried_keys_keep_their_urgency() -> None:
    q: WorkQueue[str] = WorkQueue(max_normal_in_progress=1, base_delay=0.001)
    q.add("provisioning")
    assert await q.get() == "provisioning"
    q.add("new")  # held back by the cap
    q.add_after("tolerance-expired", 0.001, urgent=True)
    assert await asyncio.wait_for(q.get(), 5) == "tolerance-expired"
    q.done("tolerance-expired")
    q.retry("tolerance-expired", urgent=True)
    assert await asyncio.wait_for(q.get(), 5) == "tolerance-expired"
    assert q.is_queued("new")


def test_a_cap_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_normal_in_progress"):
        WorkQueue(max_normal_in_progress=0)
