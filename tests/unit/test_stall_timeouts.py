"""Stall-tolerant timeouts: an answer that arrived while the event loop was blocked is
read, not discarded; a source that never answers still times out.

The stall is modelled by blocking the loop synchronously inside a callback (that is the
fault under test). The answer travels through a real socket pair, so after the stall the
loop sees the readable socket and the expired timer in the same iteration, exactly as a
hub does after a slow database query.
"""

from __future__ import annotations

import asyncio
import math
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from async_kubespawner.kube.stalls import (
    GRACE,
    MAX_CHARGE,
    TOLERANCE,
    LoopStallClock,
    StallTolerantTimeout,
    next_delay,
    stall_clock,
)

LIMIT = 0.3


def block_loop_until(loop: asyncio.AbstractEventLoop, until: float) -> None:
    """The fault: the loop's thread is busy (synchronously) until loop time ``until``."""
    while loop.time() < until:
        time.sleep(0.01)


async def connected_pair() -> AsyncIterator[tuple[asyncio.StreamReader, socket.socket]]:
    left, right = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=left)
    try:
        yield reader, right
    finally:
        writer.close()
        right.close()


@pytest.fixture
async def pair() -> AsyncIterator[tuple[asyncio.StreamReader, socket.socket]]:
    async for item in connected_pair():
        yield item


def answer_during_stall(
    peer: socket.socket, loop: asyncio.AbstractEventLoop, stall_until: float
) -> None:
    """The peer answers at once, but the loop is blocked past the reader's timeout."""
    peer.sendall(b"answer\n")
    block_loop_until(loop, stall_until)


async def read_with(
    read: Callable[[asyncio.StreamReader], Coroutine[Any, Any, bytes]],
    reader: asyncio.StreamReader,
    peer: socket.socket,
) -> bytes:
    loop = asyncio.get_running_loop()
    armed = loop.time()
    task = asyncio.create_task(read(reader))
    await asyncio.sleep(0)  # the task arms its timeout and waits on the socket
    loop.call_soon(answer_during_stall, peer, loop, armed + LIMIT + 0.2)
    return await task


async def read_stall_tolerant(reader: asyncio.StreamReader) -> bytes:
    with StallTolerantTimeout(LIMIT):
        return await reader.readline()


async def read_by_own_lateness(reader: asyncio.StreamReader) -> bytes:
    with StallTolerantTimeout(LIMIT, tick=False):
        return await reader.readline()


READERS = pytest.mark.parametrize(
    "read", [read_stall_tolerant, read_by_own_lateness], ids=["stall-clock", "own-lateness"]
)


async def read_plain(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(LIMIT):
        return await reader.readline()


@READERS
async def test_an_answer_that_arrived_during_a_stall_is_read(pair, read) -> None:
    reader, peer = pair
    assert await read_with(read, reader, peer) == b"answer\n"


@READERS
async def test_an_answer_just_before_the_deadline_then_a_stall_is_read(pair, read) -> None:
    """The stall starts late in the window, after the stall clock's last tick: what it
    measures leaves the wait at its limit, and the grace lets the answer be read."""
    reader, peer = pair
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(read(reader))
    await asyncio.sleep(0)
    armed = loop.time()
    loop.call_at(armed + 0.9 * LIMIT, answer_during_stall, peer, loop, armed + LIMIT + 0.2)
    assert await task == b"answer\n"


async def test_the_fault_is_real_for_a_plain_timeout(pair) -> None:
    """Control: the same scenario with asyncio's own timeout loses the answer, so the
    test above exercises the fault and not a lucky ordering."""
    reader, peer = pair
    with pytest.raises(TimeoutError):
        await read_with(read_plain, reader, peer)


@pytest.mark.parametrize("tick", [True, False], ids=["stall-clock", "own-lateness"])
async def test_a_silent_peer_still_times_out(pair, tick: bool) -> None:
    reader, _peer = pair
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with asyncio.timeout(30):  # a guard: the test fails rather than hangs
        with pytest.raises(TimeoutError), StallTolerantTimeout(LIMIT, tick=tick):
            await reader.readline()
    assert loop.time() - started >= LIMIT  # never abandoned early


@pytest.mark.parametrize("tick", [True, False], ids=["stall-clock", "own-lateness"])
async def test_a_silent_peer_times_out_after_a_stall_too(pair, tick: bool) -> None:
    """A stall earns a grace, not an endless wait: silence still ends the block."""
    reader, _peer = pair
    loop = asyncio.get_running_loop()

    async def wait() -> None:
        with StallTolerantTimeout(LIMIT, tick=tick):
            await reader.readline()

    task = asyncio.create_task(wait())
    await asyncio.sleep(0)
    loop.call_soon(block_loop_until, loop, loop.time() + 3 * LIMIT)
    async with asyncio.timeout(30):
        with pytest.raises(TimeoutError):
            await task


async def test_a_stall_mid_wait_is_not_charged(pair) -> None:
    """Blocked for most of the window, then the answer comes in responsive time: the
    timeout counts only the responsive part, so the answer is in time."""
    reader, peer = pair
    loop = asyncio.get_running_loop()

    async def read() -> bytes:
        with StallTolerantTimeout(LIMIT):
            return await reader.readline()

    task = asyncio.create_task(read())
    await asyncio.sleep(0)
    armed = loop.time()
    loop.call_soon(block_loop_until, loop, armed + 5 * LIMIT)
    # After the stall, the peer answers only once the loop has run again.
    loop.call_soon(lambda: loop.call_soon(peer.sendall, b"late but fine\n"))
    assert await task == b"late but fine\n"


async def test_an_idle_timeout_restarts_on_progress(pair) -> None:
    reader, peer = pair
    received: list[bytes] = []

    async def consume() -> None:
        with StallTolerantTimeout(LIMIT, progress=lambda: len(received)):
            while True:
                received.append(await reader.readline())

    task = asyncio.create_task(consume())
    # Feed a line every half of the limit, over three limits: never idle for long.
    for _ in range(6):
        peer.sendall(b"x\n")
        await asyncio.sleep(LIMIT / 2)
    assert not task.done()
    async with asyncio.timeout(30):
        with pytest.raises(TimeoutError):
            await task  # then silence ends it
    assert len(received) == 6


async def test_caller_cancellation_stays_a_cancellation(pair) -> None:
    reader, _peer = pair

    async def wait() -> None:
        with StallTolerantTimeout(LIMIT):
            await reader.readline()

    task = asyncio.create_task(wait())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("seconds", [None, 0, math.inf])
async def test_no_limit_means_no_timer(seconds: float | None) -> None:
    timeout = StallTolerantTimeout(seconds)
    with timeout:
        await asyncio.sleep(0)
    assert timeout.limit is None and not timeout.expired


async def test_the_stall_clock_measures_a_blocked_loop_before_its_tick_runs() -> None:
    loop = asyncio.get_running_loop()
    clock = LoopStallClock(tick=0.05, tolerance=0.01)
    clock.acquire()
    before = clock.stalled(loop.time())
    block_loop_until(loop, loop.time() + 0.5)
    # The tick is overdue: its lateness is already counted.
    assert clock.stalled(loop.time()) - before >= 0.5 - 0.05 - 0.01
    clock.release()


async def test_own_lateness_mode_leaves_the_stall_clock_alone() -> None:
    clock = stall_clock()
    users = clock.users
    with StallTolerantTimeout(LIMIT, tick=False):
        assert clock.users == users
    with StallTolerantTimeout(LIMIT):
        assert clock.users == users + 1
    assert clock.users == users


async def test_the_stall_clock_stops_ticking_without_users() -> None:
    clock = LoopStallClock()
    clock.acquire()
    clock.release()
    clock._on_tick()  # the tick that finds no user left
    assert not clock._running
    clock.acquire()  # and starts again for the next one
    assert clock._running
    clock.release()


async def test_one_clock_per_loop() -> None:
    assert stall_clock() is stall_clock(asyncio.get_running_loop())


limits = st.floats(min_value=0.01, max_value=600, allow_nan=False)
fractions = st.floats(min_value=0, max_value=3, allow_nan=False)


@given(limit=limits, charged_part=fractions, stall=st.floats(min_value=0, max_value=100))
def test_next_delay_bounds(limit: float, charged_part: float, stall: float) -> None:
    charged = charged_part * limit
    delay = next_delay(limit, charged, stall)
    if charged < limit:
        # Never abandoned before the server has had the whole limit of responsive time.
        assert delay is not None and 0 < delay <= limit - charged + 1e-9
    elif charged >= MAX_CHARGE * limit or stall == 0:
        assert delay is None
    else:
        # A stall just happened: a short grace, never past the hard bound.
        assert delay is not None and 0 < delay <= GRACE
        assert charged + delay <= MAX_CHARGE * limit + 1e-9


@given(limit=limits, stalls=st.lists(st.floats(min_value=0, max_value=1), max_size=200))
def test_a_silent_server_is_abandoned_within_the_hard_bound(
    limit: float, stalls: list[float]
) -> None:
    """Simulated checks of a silent server's timeout, the loop stalled for an arbitrary
    fraction of each interval (and fully responsive once the script runs out): the wait
    ends, and never later than MAX_CHARGE * limit of responsive time."""
    charged, new_stall, checks = 0.0, 0.0, 0
    delay = next_delay(limit, charged, new_stall)
    while delay is not None:
        checks += 1
        assert checks < 10_000 + len(stalls)
        fraction = stalls[checks - 1] if checks <= len(stalls) else 0.0
        # A stall beyond TOLERANCE is all that counts; model it as part of the interval.
        new_stall = delay * fraction if delay * fraction > TOLERANCE else 0.0
        charged += delay - new_stall
        delay = next_delay(limit, charged, new_stall)
    assert limit - 1e-9 <= charged <= MAX_CHARGE * limit + 1e-9
