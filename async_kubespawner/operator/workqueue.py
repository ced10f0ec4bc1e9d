"""A work queue of object keys: deduplicated, one worker per key at a time, rate-limited retries.

The semantics of client-go's workqueue, which every controller relies on:

* a key added several times before a worker takes it is processed once (changes
  coalesce: the reconciler reads the latest state from the cache anyway);
* a key is never processed by two workers at once; added again while in progress, it
  is processed once more after the current pass (so no change is lost);
* a failed key is retried after a per-key exponential delay (``base * 2**failures``,
  capped), reset by :meth:`forget` after a success;
* :meth:`add_after` schedules a key (a tolerance expiring, a periodic resync).

Beyond client-go: two lanes. An *urgent* key (a server whose pod just changed: it may
have become Ready, and a hub is waiting) is handed out before every normal key (a new
server to provision), and keeps that urgency when it is added again while in progress.
``max_normal_in_progress`` caps how many workers hold normal keys at once: a storm of new
servers then never occupies every worker, so an urgent key is taken the moment it is
added instead of waiting for a provisioning pass to end.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class QueueShutDown(Exception):
    """The queue was shut down: workers end."""


class WorkQueue(Generic[K]):
    def __init__(
        self,
        *,
        base_delay: float = 0.05,
        max_delay: float = 60.0,
        on_depth: Callable[[int], None] | None = None,
        max_normal_in_progress: int | None = None,
    ) -> None:
        if max_normal_in_progress is not None and max_normal_in_progress < 1:
            raise ValueError(
                f"max_normal_in_progress must be >= 1, got {max_normal_in_progress}")
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_normal_in_progress = max_normal_in_progress
        # Two lanes: urgent keys are taken before the others. A key moved to the urgent
        # lane leaves a stale entry in the normal one, skipped when reached: promoting a
        # key costs O(1), not a scan of a queue thousands deep during a storm.
        self._urgent: deque[K] = deque()
        self._normal: deque[K] = deque()
        self._queued: dict[K, bool] = {}  # queued key -> in the urgent lane
        self._processing: dict[K, bool] = {}  # key -> taken from the urgent lane
        self._normal_in_progress = 0
        self._dirty: dict[K, bool] = {}  # added while in progress -> urgent
        self._failures: dict[K, int] = {}
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._shutdown = False
        self._on_depth = on_depth

    def __len__(self) -> int:
        return len(self._queued)

    def _depth_changed(self) -> None:
        if self._on_depth is not None:
            self._on_depth(len(self._queued))

    def add(self, key: K, *, urgent: bool = False) -> None:
        """Queue ``key``; ``urgent`` keys go ahead of every normal one (work finishing a
        spawn should not wait behind a storm of new ones), first come first served among
        themselves (so no urgent key waits behind an unbounded stream of later ones)."""
        if self._shutdown:
            return
        if key in self._processing:
            self._dirty[key] = urgent or self._dirty.get(key, False)
            return
        in_urgent_lane = self._queued.get(key)
        if in_urgent_lane is not None:
            if urgent and not in_urgent_lane:
                self._queued[key] = True
                self._urgent.append(key)
                self._wake_one()  # the normal lane's cap may have held it back
            return
        self._queued[key] = urgent
        if urgent:
            self._urgent.append(key)
        else:
            self._normal.append(key)
        self._depth_changed()
        if urgent or self._normal_allowed():
            self._wake_one()

    def _normal_allowed(self) -> bool:
        cap = self.max_normal_in_progress
        return cap is None or self._normal_in_progress < cap

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def add_after(self, key: K, delay: float, *, urgent: bool = False) -> None:
        """Add ``key`` after ``delay`` seconds (an earlier pending schedule wins)."""
        if self._shutdown:
            return
        if delay <= 0:
            self.add(key, urgent=urgent)
            return
        loop = asyncio.get_running_loop()
        existing = self._timers.get(key)
        when = loop.time() + delay
        if existing is not None:
            if existing.when() <= when:
                return
            existing.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key, urgent)

    def _fire(self, key: K, urgent: bool) -> None:
        self._timers.pop(key, None)
        self.add(key, urgent=urgent)

    def retry(self, key: K, *, urgent: bool = False) -> float:
        """Schedule a failed key again after its backoff; returns the delay."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        delay = min(self.max_delay, self.base_delay * 2**failures)
        delay = random.uniform(delay / 2, delay)
        self.add_after(key, delay, urgent=urgent)
        return delay

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)

    def failures(self, key: K) -> int:
        return self._failures.get(key, 0)

    def _pop(self) -> tuple[K, bool] | None:
        """The next key a worker may take (urgent lane first; a normal key only under
        the cap) and whether it is urgent, skipping stale entries."""
        while self._urgent:
            key = self._urgent.popleft()
            if self._queued.get(key) is True:
                return key, True
        if not self._normal_allowed():
            return None
        while self._normal:
            key = self._normal.popleft()
            if self._queued.get(key) is False:
                return key, False
        return None

    async def get(self) -> K:
        while True:
            if self._shutdown and not self._queued:
                raise QueueShutDown()
            taken = self._pop() if self._queued else None
            if taken is not None:
                break
            if self._shutdown:
                raise QueueShutDown()
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled() and self._queued:
                    self._wake_one()  # pass the wake-up on to another worker
                raise
        key, urgent = taken
        del self._queued[key]
        self._processing[key] = urgent
        if not urgent:
            self._normal_in_progress += 1
        self._depth_changed()
        return key

    def is_queued(self, key: K) -> bool:
        """Whether ``key`` waits for a worker right now."""
        return key in self._queued

    def is_processing(self, key: K) -> bool:
        """Whether a worker holds ``key`` right now."""
        return key in self._processing

    def done(self, key: K) -> None:
        urgent = self._processing.pop(key, None)
        if urgent is False:
            self._normal_in_progress -= 1
            if self._normal and self._normal_allowed():
                self._wake_one()  # a normal key held back by the cap may go now
        dirty = self._dirty.pop(key, None)
        if dirty is not None:
            self.add(key, urgent=dirty)

    def shutdown(self) -> None:
        self._shutdown = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
