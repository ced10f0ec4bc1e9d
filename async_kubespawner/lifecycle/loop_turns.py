"""Taking turns on the event loop: CPU-heavy steps that many spawns reach at once.

A hub that gets 1,000 spawn requests in a burst runs the first step of 1,000 ``start()``
coroutines in **one** event-loop iteration: asyncio runs every callback that is ready
when an iteration begins before it polls for I/O again. Each start builds its pod
manifest (a couple of milliseconds of traitlets, templates and model objects), so that
one iteration holds the loop for seconds, and every watch event, progress message and
HTTP request of the hub waits behind it (this was the largest stall of the spawn storm).

:class:`LoopTurns` spreads such steps over iterations. A step calls ``await
turns.take()`` just before its synchronous stretch. While nobody is queued and the
current iteration's budget is not spent, the call returns at once (no cost for a quiet
hub); otherwise the caller queues, and queued callers are released **per loop
iteration, as many as fit in the budget**, in arrival order, so between two slices the
loop always gets to poll its sockets and run the other callbacks (watch lines, timers,
requests). A released caller that finds the iteration's budget spent by those before it
goes back to the head of the queue. How many are released at once adapts: twice as many
as ran in the last slice (so cheap steps, such as a burst of stops, soon run dozens per
iteration instead of one every other iteration), one more than ran when some had to go
back (so heavy steps, such as building manifests, cost one extra wake-up per iteration).

It is a fairness device, not a lock: nothing is held after ``take()`` returns, so a step
that suspends in the middle cannot block anyone.
"""

from __future__ import annotations

import asyncio
import collections
import time
import weakref

#: CPU a burst of steps may use within one loop iteration before the rest queue (seconds).
DEFAULT_BUDGET = 0.002
#: Most queued steps released for one iteration.
MAX_RELEASE = 64


class LoopTurns:
    """Releases queued CPU-heavy steps one per event-loop iteration (see module doc)."""

    def __init__(self, budget: float = DEFAULT_BUDGET) -> None:
        self.budget = budget
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        # perf_counter() when the first step of the current iteration was let through
        self._slice_started: float | None = None
        self._end_scheduled = False
        # released steps that ran in the current slice, and how many were released
        self._ran = 0
        self._release = 1
        # released steps that found the budget spent: back to the head of the queue
        self._deferred: list[asyncio.Future[None]] = []

    @property
    def queued(self) -> int:
        """Steps waiting for their turn (for tests and metrics)."""
        return sum(1 for f in self._waiting if not f.done())

    async def take(self) -> None:
        """Return when the caller may run its synchronous stretch."""
        loop = asyncio.get_running_loop()
        now = time.perf_counter()
        if not self._waiting and (
            self._slice_started is None or now - self._slice_started < self.budget
        ):
            self._open_slice(loop, now)
            return
        turn: asyncio.Future[None] = loop.create_future()
        self._waiting.append(turn)
        self._schedule_end(loop)
        while True:
            try:
                await turn
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled():
                    # Granted, then cancelled before running: hand the turn on.
                    self._schedule_end(loop)
                raise
            now = time.perf_counter()
            if self._slice_started is None or now - self._slice_started < self.budget:
                break
            # The steps released before this one spent the iteration: next slice, first.
            turn = loop.create_future()
            self._deferred.append(turn)
            self._schedule_end(loop)
        self._ran += 1
        self._open_slice(loop, now)

    def _open_slice(self, loop: asyncio.AbstractEventLoop, now: float) -> None:
        if self._slice_started is None:
            self._slice_started = now
            self._schedule_end(loop)

    def _schedule_end(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._end_scheduled:
            self._end_scheduled = True
            # call_soon from inside an iteration runs in the *next* iteration, after the
            # loop has polled for I/O: exactly the boundary between two slices.
            loop.call_soon(self._end_slice)

    def _end_slice(self) -> None:
        self._end_scheduled = False
        self._slice_started = None
        if self._deferred:
            self._release = self._ran + 1
            self._waiting.extendleft(reversed(self._deferred))
            self._deferred = []
        elif self._ran >= self._release:
            self._release = min(2 * self._release, MAX_RELEASE)
        self._ran = 0
        released = 0
        while self._waiting and released < self._release:
            turn = self._waiting.popleft()
            if not turn.done():  # skip callers cancelled while queued
                turn.set_result(None)
                released += 1


_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopTurns] = (
    weakref.WeakKeyDictionary()
)


def loop_turns() -> LoopTurns:
    """The turns shared by every spawner on the running event loop."""
    loop = asyncio.get_running_loop()
    turns = _per_loop.get(loop)
    if turns is None:
        turns = _per_loop[loop] = LoopTurns()
    return turns
