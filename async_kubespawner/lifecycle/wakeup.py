"""What a spawn's readiness wait sleeps on between two looks at the caches.

Why not ``asyncio.Event`` plus ``asyncio.timeout`` around each wait: the wait wakes for
every change of its pod and every Kubernetes Event about it (eight to ten times in a
start), and each wake built a fresh ``Event.wait`` coroutine and future, a ``Timeout``,
its ``TimerHandle`` and two contexts. With thousands of spawns waiting at once, those
short-lived objects were most of what the collector's young generations walked (a
10,000-spawn storm's young collections took up to 150 ms, each walking 60,000-240,000
objects, a third of them these). Here a wake costs one future; the timer is armed once
per distinct wake-up time, which for a plain wait is the spawn's deadline, so once.
"""

from __future__ import annotations

import asyncio
import math

#: Seconds by which a wait may end later than asked rather than re-arm the timer. A wait
#: for a deadline asks for ``deadline - now``, which lands a few microseconds either side
#: of the armed end at each look: without this, half the looks of a start re-armed it.
REARM_SLACK = 0.001


class Wakeup:
    """A flag listeners :meth:`set` and one waiter awaits with a timeout.

    Semantics are those of the ``Event`` it replaces: a :meth:`set` between
    :meth:`clear` and :meth:`wait` makes the wait return at once. A timer wake and a
    set are not told apart; the waiter looks at the caches either way.
    """

    __slots__ = ("_future", "_loop", "_pending", "_timer", "_timer_at")

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._future: asyncio.Future[None] | None = None
        self._pending = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def set(self) -> None:
        """Something the waiter looks at changed: wake it (or let its next wait pass)."""
        self._pending = True
        future = self._future
        if future is not None and not future.done():
            future.set_result(None)

    def clear(self) -> None:
        """The waiter is about to look: changes from now on count."""
        self._pending = False

    def is_set(self) -> bool:
        return self._pending

    async def wait(self, within: float) -> None:
        """Until :meth:`set` or ``within`` seconds, whichever is first; returns either way.

        The timer is kept across waits: re-armed only when this wait must end earlier
        than the armed one (by more than ``REARM_SLACK``); a timer that fires before a
        later wait's end wakes it early, which the waiter treats as any other look.
        """
        if self._pending:
            return
        loop = self._loop
        at = loop.time() + max(0.0, within)
        if self._timer is None or at < self._timer_at - REARM_SLACK:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_at(at, self._on_timer)
            self._timer_at = at
        future = self._future = loop.create_future()
        try:
            await future
        finally:
            self._future = None

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        future = self._future
        if future is not None and not future.done():
            future.set_result(None)

    def close(self) -> None:
        """The wait is over: drop the timer (it holds this object, and so the spawn)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = math.inf
