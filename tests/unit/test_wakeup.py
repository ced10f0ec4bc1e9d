"""The readiness wait's wake-up: Event semantics, one timer per distinct wake time."""

from __future__ import annotations

import asyncio

import pytest

from async_kubespawner.lifecycle.wakeup import REARM_SLACK, Wakeup


async def woken_wait(wakeup: Wakeup, within: float) -> None:
    """One look's wait, woken by a change on the next loop turn (before its end)."""
    wakeup.clear()
    asyncio.get_running_loop().call_soon(wakeup.set)
    await wakeup.wait(within)


async def test_a_set_before_the_wait_lets_it_pass_without_arming_a_timer() -> None:
    wakeup = Wakeup()
    wakeup.clear()
    wakeup.set()
    await wakeup.wait(3600)
    assert wakeup._timer is None


async def test_a_set_from_a_listener_wakes_the_waiter() -> None:
    wakeup = Wakeup()
    wakeup.clear()
    asyncio.get_running_loop().call_soon(wakeup.set)
    await asyncio.wait_for(wakeup.wait(3600), 5)
    assert wakeup.is_set()
    wakeup.close()


async def test_a_set_after_clear_is_not_lost_between_look_and_wait() -> None:
    """The waiter clears, looks (a listener sets meanwhile), then waits: no sleep."""
    wakeup = Wakeup()
    wakeup.clear()
    wakeup.set()  # during the look
    await asyncio.wait_for(wakeup.wait(3600), 5)


async def test_the_wait_ends_at_its_time_without_any_set() -> None:
    wakeup = Wakeup()
    wakeup.clear()
    await asyncio.wait_for(wakeup.wait(0), 5)
    assert not wakeup.is_set()
    assert wakeup._timer is None  # the timer that fired is gone


async def test_waits_with_the_same_end_share_one_timer() -> None:
    wakeup = Wakeup()
    ends = []
    for _ in range(3):
        await woken_wait(wakeup, 3600)
        ends.append(wakeup._timer)
    assert ends[0] is not None and all(t is ends[0] for t in ends)
    wakeup.close()
    assert ends[0].cancelled()


async def test_an_earlier_end_rearms_and_a_later_one_keeps_the_timer() -> None:
    wakeup = Wakeup()
    await woken_wait(wakeup, 3600)
    first = wakeup._timer
    await woken_wait(wakeup, 60)  # must end earlier: re-armed
    second = wakeup._timer
    assert first is not None and first.cancelled() and second is not first
    await woken_wait(wakeup, 7200)  # may end later: the earlier timer is kept (an early look)
    assert wakeup._timer is second
    wakeup.close()


async def test_a_cancelled_wait_leaves_the_next_one_working() -> None:
    wakeup = Wakeup()
    task = asyncio.ensure_future(wakeup.wait(3600))
    # queued after the task's first step, so it cancels the task while it awaits
    asyncio.get_running_loop().call_soon(task.cancel)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert wakeup._future is None
    wakeup.clear()
    asyncio.get_running_loop().call_soon(wakeup.set)
    await asyncio.wait_for(wakeup.wait(3600), 5)
    wakeup.close()
    assert wakeup._timer is None


async def test_an_end_earlier_by_less_than_the_slack_keeps_the_timer() -> None:
    """A wait for the same deadline asks a few microseconds more or less at each look:
    the armed timer stays (the wait may end up to REARM_SLACK late)."""
    wakeup = Wakeup()
    await woken_wait(wakeup, 3600)
    armed = wakeup._timer
    await woken_wait(wakeup, 3600 - REARM_SLACK / 2)
    assert wakeup._timer is armed and armed is not None and not armed.cancelled()
    wakeup.close()
