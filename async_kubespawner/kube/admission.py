"""Admission of API requests: how many are in flight at once, and which waiting one goes next.

Why a bound at all: see :mod:`.client` (queueing for a slot happens before a request's
timeout starts, so a burst never turns into timeouts and retries).

Why priorities: an API server serves a client's requests roughly in the order they
arrive, so a request that someone is waiting on (the status write that tells a hub a
server is Ready) must not queue behind dozens of the same client's bulk work (creating
the children of a thousand new servers, writing their Events). :class:`Admission` admits
waiting requests by :class:`Priority` (FIFO within one priority) and can cap how many
requests of one priority are in flight at once, so that bulk work never holds more than
its share of the slots nor floods the server's queue ahead of an urgent write.

With every request at the default priority and no caps (what the in-hub spawner uses),
it is exactly a FIFO semaphore of ``limit`` slots.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from enum import IntEnum

__all__ = ["Admission", "Priority"]


class Priority(IntEnum):
    """Which waiting request is admitted first (lower value first)."""

    #: Somebody waits on this very answer: a readiness verdict's status write, a read
    #: that verdict needs, a failure a user is about to be shown.
    CRITICAL = 0
    #: Everything else a caller does not classify: the default.
    NORMAL = 1
    #: Reports of steps already taken that nobody awaits (Events: a user's progress
    #: messages). Ahead of new work, which they cannot starve for long: there are only
    #: as many as steps taken; bounded by a cap so they cannot pile up in the server.
    PROGRESS = 2
    #: New work in a burst that can wait behind all of the above: creating objects.
    BULK = 3


class Admission:
    """At most ``limit`` requests in flight; at most ``caps[p]`` of priority ``p``; the
    last ``reserve`` slots only for CRITICAL requests (so a verdict someone waits on is
    sent at once even while every other slot holds bulk work).

    A request is admitted at once when a slot is free, its priority's cap is not
    reached and no earlier request of its priority waits; otherwise it waits. A freed
    slot goes to the oldest waiter of the most urgent priority that may run. A waiter
    cancelled while queued leaves no trace; one cancelled just after being granted a
    slot hands the slot back.
    """

    def __init__(
        self, limit: int, caps: Mapping[Priority, int] | None = None, reserve: int = 0
    ) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        if not 0 <= reserve < limit:
            raise ValueError(f"reserve must be >= 0 and below the limit {limit}, got {reserve}")
        for priority, cap in (caps or {}).items():
            if cap < 1:
                raise ValueError(f"the cap of {priority.name} requests must be >= 1, got {cap}")
        self.limit = limit
        self.reserve = reserve
        levels = len(Priority)
        self._caps = [min(limit, (caps or {}).get(Priority(p), limit)) for p in range(levels)]
        self._running = [0] * levels
        self._total = 0
        self._waiters: list[deque[asyncio.Future[None]]] = [deque() for _ in range(levels)]

    @property
    def in_flight(self) -> int:
        return self._total

    def running(self, priority: Priority) -> int:
        """Requests of ``priority`` in flight now."""
        return self._running[priority]

    def waiting(self, priority: Priority | None = None) -> int:
        """Requests waiting for a slot (of ``priority``, or of any)."""
        if priority is not None:
            return sum(1 for w in self._waiters[priority] if not w.done())
        return sum(self.waiting(p) for p in Priority)

    def cap(self, priority: Priority) -> int:
        return self._caps[priority]

    def _may_run(self, level: int) -> bool:
        if self._total >= self.limit or self._running[level] >= self._caps[level]:
            return False
        # Requests other than CRITICAL may hold at most ``limit - reserve`` slots.
        others = self._total - self._running[Priority.CRITICAL]
        return level == Priority.CRITICAL or others < self.limit - self.reserve

    def _take(self, level: int) -> None:
        self._total += 1
        self._running[level] += 1

    def try_acquire(self, priority: Priority = Priority.NORMAL) -> bool:
        """Take a slot at once if :meth:`acquire` would not wait; False otherwise (then
        call :meth:`acquire`). Why: most requests find a free slot, and a plain call
        spares them a coroutine."""
        level = int(priority)
        if not self._waiters[level] and self._may_run(level):
            self._take(level)
            return True
        return False

    async def acquire(self, priority: Priority = Priority.NORMAL) -> None:
        level = int(priority)
        if not self._waiters[level] and self._may_run(level):
            self._take(level)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[level].append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(priority)  # granted, then cancelled: the slot goes on
            else:
                with contextlib.suppress(ValueError):  # a dispatch may have dropped it
                    self._waiters[level].remove(waiter)
                self._dispatch()  # it may have been the head its level was waiting on
            raise

    def release(self, priority: Priority = Priority.NORMAL) -> None:
        level = int(priority)
        if self._running[level] <= 0:
            raise RuntimeError(f"release of a {priority.name} slot that was not taken")
        self._total -= 1
        self._running[level] -= 1
        self._dispatch()

    def _dispatch(self) -> None:
        """Hand free slots to waiters, most urgent priority first, oldest first."""
        for level, waiters in enumerate(self._waiters):
            if self._total >= self.limit:
                return
            while waiters and self._may_run(level):
                waiter = waiters.popleft()
                if waiter.done():
                    continue
                self._take(level)
                waiter.set_result(None)

    @asynccontextmanager
    async def slot(self, priority: Priority = Priority.NORMAL) -> AsyncIterator[None]:
        await self.acquire(priority)
        try:
            yield
        finally:
            self.release(priority)
