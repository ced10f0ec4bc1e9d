"""Timeouts that do not charge the hub's own event-loop stalls to the API server.

Why: a timeout armed with ``loop.call_at`` fires when the loop gets round to it. When the
hub's loop is blocked (a synchronous database query, token hashing, a full garbage
collection, or simply thousands of ready callbacks), an API server that answered in
milliseconds has its answer sitting in the socket buffer while the clock runs. When the
loop resumes, the socket's read callback and the expired timer run in the same iteration;
the timer cancels the waiting task before the task can take the answer, and the request
is counted as "no response", retried (a create then meets its own 409) and, in a storm,
fails spawns that Kubernetes served in time. Measured in a whole-hub storm of 5,000 users
on 2 cores: stalls of up to 45 s and 1,408 failed starts.

The rule: a timeout of ``T`` seconds counts only time during which the loop was free to
read answers. :class:`LoopStallClock` measures the loop's stalls cheaply (one timer
callback every :data:`TICK` seconds, only while a timeout is armed; a tick that runs
more than :data:`TOLERANCE` late counts the excess as stall) and
:class:`StallTolerantTimeout` subtracts the stalls measured inside its window. When the
timeout would fire and a stall was measured since its last check, it re-arms for a
short :data:`GRACE` (at least one more loop iteration), so an answer that arrived during
the stall is read rather than discarded. A server that never answers is still abandoned:
after at most ``MAX_CHARGE * T`` seconds of time in which the loop was responsive (see
:func:`next_delay`), plus however long the loop itself was stalled, which no timer
armed on that loop could shorten anyway.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Callable
from types import TracebackType

__all__ = [
    "GRACE",
    "MAX_CHARGE",
    "TICK",
    "TOLERANCE",
    "LoopStallClock",
    "StallTolerantTimeout",
    "next_delay",
    "stall_clock",
]

#: Seconds between the stall clock's ticks while any timeout is armed.
TICK = 0.1
#: Lateness of a tick not counted as a stall (timer resolution, an ordinary busy turn).
TOLERANCE = 0.05
#: Seconds a timeout is re-armed for when it would fire right after a stall: long
#: enough for at least one more loop iteration, in which an answer already in the
#: socket buffer is read.
GRACE = 0.1
#: The most a timeout of T seconds waits, in responsive loop time, for a server that
#: never answers: MAX_CHARGE * T.
MAX_CHARGE = 2.0


def next_delay(
    limit: float,
    charged: float,
    new_stall: float,
    *,
    check_every: float = math.inf,
) -> float | None:
    """Seconds until the timeout's next check, or ``None``: abandon the wait now.

    ``charged`` is the time waited minus the loop stalls measured meanwhile;
    ``new_stall`` the stall measured since the previous check. Below ``limit`` the
    timeout waits for the rest (checking at least every ``check_every`` seconds). At or
    past ``limit`` it gives up, unless the loop has just been stalled: then the answer
    may be waiting unread, and one :data:`GRACE` more is granted while ``charged``
    stays below ``MAX_CHARGE * limit``, the hard bound.
    """
    if charged < limit:
        return min(limit - charged, check_every)
    hard = MAX_CHARGE * limit
    if new_stall > 0 and charged < hard:
        return min(GRACE, hard - charged)
    return None


class LoopStallClock:
    """Seconds the event loop has been stalled, as measured by a self-rescheduling tick.

    :meth:`stalled` includes the lateness of the tick that is due but has not run yet,
    so a timeout that fires in the iteration right after a stall (before the tick gets
    its turn) already sees it, and nothing is counted twice once the tick has run. The
    tick runs only while :meth:`acquire` calls outnumber :meth:`release` calls (one
    callback every :data:`TICK` seconds while API requests are in flight; none when the
    hub is idle). It keeps no reference to its loop or its timer handle, so a closed
    loop is not kept alive by the per-loop registry.
    """

    __slots__ = ("_due", "_running", "accumulated", "tick", "tolerance", "users")

    def __init__(self, *, tick: float = TICK, tolerance: float = TOLERANCE) -> None:
        self.tick = tick
        self.tolerance = tolerance
        self.users = 0
        #: Stall seconds counted by ticks that have run.
        self.accumulated = 0.0
        self._due = 0.0
        self._running = False

    def stalled(self, now: float) -> float:
        """Total stall seconds so far, at loop time ``now`` (never decreases)."""
        if self._running:
            late = now - self._due - self.tolerance
            if late > 0:
                return self.accumulated + late
        return self.accumulated

    def acquire(self) -> None:
        self.users += 1
        if not self._running:
            self._running = True
            self._schedule(asyncio.get_running_loop())

    def release(self) -> None:
        # The tick notices it has no users at its next run and stops by itself.
        self.users -= 1

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        self._due = loop.time() + self.tick
        loop.call_at(self._due, self._on_tick)

    def _on_tick(self) -> None:
        loop = asyncio.get_running_loop()
        late = loop.time() - self._due - self.tolerance
        if late > 0:
            self.accumulated += late
        if self.users > 0:
            self._schedule(loop)
        else:
            self._running = False


_clocks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopStallClock] = (
    weakref.WeakKeyDictionary()
)


def stall_clock(loop: asyncio.AbstractEventLoop | None = None) -> LoopStallClock:
    """The stall clock of ``loop`` (default: the running loop), made on first use."""
    loop = loop if loop is not None else asyncio.get_running_loop()
    clock = _clocks.get(loop)
    if clock is None:
        clock = _clocks[loop] = LoopStallClock()
    return clock


class StallTolerantTimeout:
    """``with StallTolerantTimeout(seconds):`` cancels the block like ``asyncio.timeout``
    and raises :class:`TimeoutError`, but charges only responsive loop time (see the
    module docstring and :func:`next_delay`).

    ``seconds`` of ``None``, ``0`` or infinity means no timeout. ``tick=False`` measures
    stalls by this timeout's own lateness alone, without the loop's :class:`LoopStallClock`
    (for the long-lived timeouts of watches, which are open all the time: they would keep
    the clock ticking in an idle hub; a stall far from their deadline cannot discard an
    answer, and one that covers it is seen by their lateness). ``progress``, when given,
    makes it an idle timeout: a callable returning a value that changes whenever the
    awaited work moved on (a stream's byte count); the window restarts whenever it has
    changed, checked every quarter of ``seconds``, so a quiet stream is abandoned after
    between ``seconds`` and ``1.25 * seconds`` of silence (responsive time).

    Enter and leave it in the same task; it is not reusable.
    """

    __slots__ = (
        "_cancelling",
        "_clock",
        "_due",
        "_handle",
        "_late",
        "_loop",
        "_mark",
        "_seen",
        "_stall0",
        "_start",
        "_task",
        "check_every",
        "expired",
        "limit",
        "progress",
        "tick",
    )

    def __init__(
        self,
        seconds: float | None,
        *,
        progress: Callable[[], object] | None = None,
        tick: bool = True,
    ) -> None:
        self.limit = seconds if seconds is not None and 0 < seconds < math.inf else None
        self.progress = progress
        self.tick = tick
        self.check_every = self.limit / 4 if (self.limit and progress is not None) else math.inf
        #: True once the timeout has cancelled the block.
        self.expired = False
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[object] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clock: LoopStallClock | None = None
        self._start = self._stall0 = self._seen = self._due = self._late = 0.0
        self._cancelling = 0
        self._mark: object = None

    def __enter__(self) -> StallTolerantTimeout:
        if self.limit is None:
            return self
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("StallTolerantTimeout must be used inside a task")
        loop = asyncio.get_running_loop()
        if self.tick:
            self._clock = stall_clock(loop)
            self._clock.acquire()
        self._task, self._loop = task, loop
        self._cancelling = task.cancelling()
        self._due = loop.time()
        self._restart(self._due)
        return self

    def _stalled(self, now: float) -> float:
        """Stall seconds so far: the loop's clock, or this timeout's own lateness."""
        if self._clock is not None:
            return self._clock.stalled(now)
        late = now - self._due - TOLERANCE
        return self._late + late if late > 0 else self._late

    def _arm(self, when: float) -> None:
        assert self._loop is not None
        self._due = when
        self._handle = self._loop.call_at(when, self._check)

    def _restart(self, now: float) -> None:
        assert self.limit is not None
        self._start = now
        self._stall0 = self._seen = self._stalled(now)
        if self.progress is not None:
            self._mark = self.progress()
        self._arm(now + min(self.limit, self.check_every))

    def _check(self) -> None:
        loop, limit = self._loop, self.limit
        assert loop is not None and limit is not None
        self._handle = None
        now = loop.time()
        if self._clock is None:
            self._late = self._stalled(now)  # this firing's lateness, counted once
            self._due = now
        if self.progress is not None and self.progress() != self._mark:
            self._restart(now)
            return
        stalled = self._stalled(now)
        charged = (now - self._start) - (stalled - self._stall0)
        new_stall = stalled - self._seen
        self._seen = stalled
        delay = next_delay(limit, charged, new_stall, check_every=self.check_every)
        if delay is None:
            self.expired = True
            assert self._task is not None
            self._task.cancel()
        else:
            self._arm(now + delay)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.limit is None:
            return
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        assert self._task is not None
        if self._clock is not None:
            self._clock.release()
        if not self.expired:
            return
        # Our cancellation is taken back whatever happened; it becomes a TimeoutError
        # only when it is what ended the block and nobody else cancelled the task.
        if (
            self._task.uncancel() <= self._cancelling
            and exc_type is not None
            and issubclass(exc_type, asyncio.CancelledError)
        ):
            raise TimeoutError(f"no answer within {self.limit:g}s") from exc
