"""The hub process's garbage-collection policy: no full collection while spawns or stops drain.

Why: a burst keeps thousands of short-lived objects in flight (requests, watch lines,
manifests, progress events). With CPython's thresholds (700, 10, 10) most are still alive
at a young collection, are promoted, and every tenth middle collection walks all of them
at once: a pause of the whole event loop that every spawn, request and proxy call waits
through (twelve in the 10,000-spawn benchmark's starts, up to 667 ms).

While a ``start()`` or ``stop()`` is in flight (a *burst*) the thresholds are
(700, 1000000, 100): young collections as usual, middle and full ones wait. Every
collection walks all the objects of the generations it collects that are still alive, and
in a burst nearly all of them are (the coroutines, futures and requests of a thousand
spawns in flight): a middle collection walked 77,000 of them, 12-25 ms of one loop step,
and a young threshold of 10,000 made each young collection 5-40 ms. So only young
collections run, each walking what was allocated since the previous one.

CPython 3.11 counts the youngest generation as allocations *minus deallocations* of any
tracked object, old ones included; when the old in-flight state of finished spawns is
freed as fast as new objects are made (a storm's drain), the count stays low while the
young generation grows: 41,000 objects at a threshold of 10,000, 14,700 at 700. So during
a burst the policy also runs a young collection itself when the collector has run none
for ``young_interval`` seconds (10 ms), which bounds a young collection by what 10 ms of
work leaves alive (at 25 ms, young collections of up to 9 ms in the starts of a
10,000-spawn storm; at 10 ms, 1.7-3.4 ms in six runs, and no more CPU in a 1,000-spawn
storm beyond its noise).

``quiet_delay`` seconds after the last one ends the thresholds are restored and the
collection the burst held back, if any, runs once as a full one: cyclic garbage is
reclaimed later, never lost. The bound for a hub that is never quiet: after
``max_deferral`` seconds of bursts without a full collection the ordinary thresholds
return until the collector has run one. A spawn's pre-spawn hook begins a burst too
(:meth:`BurstGcPolicy.work_expected`): thousands of hooks can run before the first
``start()`` of a storm.

Survivors of every full collection are then frozen (``gc.freeze()``), as the start-up
heap already is (startup_heap.py): a full collection walks only what was allocated since
the last one, not the 10,000 spawners and their state a large hub keeps (a 547 ms pause
in the 10,000-stop benchmark's stops became 61 ms). Frozen objects that later become cyclic
garbage are not lost: once ``sweep_interval`` seconds have passed since the last sweep,
the next quiet moment (or the next deferral limit) unfreezes everything first, so that
full collection walks and reclaims the whole heap, once.

The operator keeps control: off with ``c.KubeSpawner.gc_burst_policy = False``, when
``gc_young_threshold`` is set, when the collector is disabled or its thresholds were not
CPython's defaults at the first spawn; and if anything else changes the thresholds while
it runs, it steps aside for good and leaves their values. Figures: docs/performance.md.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("async_kubespawner")

#: CPython's own thresholds (unchanged from 3.0 to 3.12): anything else was chosen by
#: someone, and the policy then leaves the collector alone.
CPYTHON_DEFAULT_THRESHOLDS: tuple[int, int, int] = (700, 10, 10)

Thresholds = tuple[int, int, int]


class Collector(Protocol):
    """What the policy uses of the ``gc`` module (a fake in the unit tests)."""

    callbacks: list[Callable[[str, dict[str, Any]], None]]

    def get_threshold(self) -> Thresholds: ...

    def set_threshold(self, threshold0: int, threshold1: int = ..., threshold2: int = ...) -> None:
        ...

    def get_count(self) -> Thresholds: ...

    def collect(self, generation: int = ...) -> int: ...

    def isenabled(self) -> bool: ...

    def freeze(self) -> None: ...

    def unfreeze(self) -> None: ...


@dataclass(frozen=True)
class PolicySettings:
    """The policy's tunables; the defaults are the measured ones (docs/performance.md)."""

    #: Youngest generation during a burst (CPython: 700). A young collection walks every
    #: object allocated since the last one still alive, and in a burst most are: 10,000
    #: made each young collection 5-40 ms of one loop step.
    young_threshold: int = 700
    #: Middle generation during a burst, in young collections (CPython: 10): in effect
    #: none until the burst is over (or ``max_deferral``). A middle collection walks every
    #: young survivor since the last one, in a burst the whole in-flight state.
    middle_threshold: int = 1_000_000
    #: Oldest generation during a burst, in middle collections (CPython: 10).
    old_threshold: int = 100
    #: During a burst, a young collection at least this often (seconds) even when the
    #: collector's count does not ask for one (CPython 3.11's count subtracts old
    #: objects freed); None: only the collector's own.
    young_interval: float | None = 0.01
    #: Seconds with nothing in flight before a burst counts as over.
    quiet_delay: float = 2.0
    #: Longest a burst may hold off full collections (seconds).
    max_deferral: float = 120.0
    #: Freeze the survivors of each full collection, so the next walks only newer objects.
    freeze_survivors: bool = True
    #: Seconds between whole-heap sweeps (unfreeze, then one full collection) that
    #: reclaim cyclic garbage among frozen objects; each runs at a quiet moment.
    sweep_interval: float = 600.0


class BurstGcPolicy:
    """Decides the collector's thresholds from the spawners' work in flight.

    Every decision is a method call with the time passed in or read from ``clock``
    (:meth:`work_started`, :meth:`work_finished`, :meth:`tick`), so the unit tests
    drive it with a fake collector and a fake clock; in the hub a timer on the event
    loop calls :meth:`tick`.
    """

    def __init__(
        self,
        collector: Collector | Any = gc,
        *,
        settings: PolicySettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.collector = collector
        self.settings = settings or PolicySettings()
        self.clock = clock
        #: "off" (never installed or stepped aside), "quiet", "burst", "catch-up".
        self.state = "off"
        self.stepped_aside = False
        self.in_flight = 0
        self.base: Thresholds = CPYTHON_DEFAULT_THRESHOLDS
        self._expected: Thresholds | None = None  # what the policy itself set last
        self._quiet_since: float | None = None
        self._last_full: float = 0.0
        self._last_sweep: float = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self._young_timer: asyncio.TimerHandle | None = None
        self._young_timer_loop: asyncio.AbstractEventLoop | None = None
        self._collections = 0  # collections of any generation (_on_collection)
        self._collections_at_young_tick = 0
        #: Young collections the policy ran itself during bursts (diagnostics).
        self.forced_young_collections = 0
        #: Full collections run by the policy at the end of a burst (diagnostics).
        self.deferred_collections = 0
        #: Whole-heap sweeps started (diagnostics).
        self.sweeps = 0

    # -- installing --------------------------------------------------------------------

    def install(self) -> bool:
        """Take charge of the thresholds if nobody else has; True if it did."""
        if self.state != "off" or self.stepped_aside:
            return False
        current = tuple(self.collector.get_threshold())
        if not self.collector.isenabled():
            self._decline("the garbage collector is disabled")
            return False
        if current != CPYTHON_DEFAULT_THRESHOLDS:
            self._decline(f"the collector's thresholds were already set to {current}")
            return False
        self.base = CPYTHON_DEFAULT_THRESHOLDS  # equal to current, checked above
        self._expected = self.base
        self._last_full = self._last_sweep = self.clock()
        self.state = "quiet"
        self.collector.callbacks.append(self._on_collection)
        log.info(
            "Garbage collection: no full collection while spawns or stops are in flight "
            "(c.KubeSpawner.gc_burst_policy)"
        )
        return True

    def _decline(self, reason: str) -> None:
        self.stepped_aside = True
        log.info("Garbage collection left as it is: %s (c.KubeSpawner.gc_burst_policy)", reason)

    def uninstall(self) -> None:
        """Give the thresholds back (as they were at install) and stop deciding."""
        if self.state != "off" and self._still_ours():
            self.collector.set_threshold(*self.base)
        self._stop()

    def _stop(self) -> None:
        self.state = "off"
        if self._on_collection in self.collector.callbacks:
            self.collector.callbacks.remove(self._on_collection)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._young_timer is not None:
            self._young_timer.cancel()
            self._young_timer = None

    # -- the spawners' work ------------------------------------------------------------

    def work_started(self) -> bool:
        """A ``start()`` or ``stop()`` began; True if counted (pass it to
        :meth:`work_finished`). Nothing is counted while the policy is off."""
        if self.state == "off":
            return False
        self.in_flight += 1
        self._quiet_since = None
        if self.state == "quiet":
            self._set("burst")
        self._schedule()
        return True

    def work_expected(self) -> None:
        """A ``start()`` is about to come (the spawn's pre-spawn hook runs): begin the
        burst now, counting nothing in flight.

        Why: the hub runs every spawn's pre-spawn hook before its ``start()``, and in a
        storm thousands of hooks run before the first ``start()`` is called; under the
        ordinary thresholds their allocations ended in full collections (56 ms in the
        10,000-spawn benchmark). If no work is counted, the burst ends ``quiet_delay``
        seconds after the last call, as after any other work.
        """
        if self.state == "off":
            return
        if self.in_flight == 0:
            self._quiet_since = self.clock()
        if self.state == "quiet":
            self._set("burst")
        self._schedule(replace=self.in_flight == 0)

    def work_finished(self, counted: bool = True) -> None:
        """A counted ``start()`` or ``stop()`` ended (however it ended)."""
        if not counted:
            return
        self.in_flight = max(0, self.in_flight - 1)
        if self.in_flight == 0 and self.state != "off":
            self._quiet_since = self.clock()
            self._schedule(replace=True)

    def tick(self) -> None:
        """Decide what the time alone changes: the burst is over, or deferred too long."""
        if self.state == "off":
            return
        if not self._still_ours():
            self._step_aside()
            return
        now = self.clock()
        if self.state in ("burst", "catch-up") and self.in_flight == 0:
            if self._quiet_since is not None and now - self._quiet_since >= self.settings.quiet_delay:
                # what the ordinary thresholds would have run by now: a middle or a full
                # collection. A full one walks hardly more (the last one's survivors are
                # frozen) and also reclaims the cycles among what the burst promoted.
                count = self.collector.get_count()
                owed = count[2] >= self.base[2] or count[1] >= self.base[1]
                swept = self._unfreeze_if_sweep_due(now)
                self._set("quiet")
                if owed or swept:
                    self.deferred_collections += 1
                    self.collector.collect(2)  # _on_collection notes the time, refreezes
                return
        if self.state == "burst" and now - self._last_full >= self.settings.max_deferral:
            self._unfreeze_if_sweep_due(now)  # the collector's own full collection sweeps
            self._set("catch-up")

    def _unfreeze_if_sweep_due(self, now: float) -> bool:
        """Give frozen objects back to the collector once per ``sweep_interval``, so the
        full collection about to run reclaims cyclic garbage among them; True if it did."""
        if not self.settings.freeze_survivors:
            return False
        if now - self._last_sweep < self.settings.sweep_interval:
            return False
        self._last_sweep = now
        self.sweeps += 1
        self.collector.unfreeze()
        return True

    # -- internals ---------------------------------------------------------------------

    def _thresholds_for(self, state: str) -> Thresholds:
        if state == "burst":
            return (
                max(self.base[0], self.settings.young_threshold),
                max(self.base[1], self.settings.middle_threshold),
                max(self.base[2], self.settings.old_threshold),
            )
        return self.base

    def _set(self, state: str) -> None:
        if not self._still_ours():
            self._step_aside()
            return
        self.state = state
        wanted = self._thresholds_for(state)
        if wanted != self._expected:
            self.collector.set_threshold(*wanted)
            self._expected = wanted

    def _still_ours(self) -> bool:
        return tuple(self.collector.get_threshold()) == self._expected

    def _step_aside(self) -> None:
        log.info(
            "Garbage collection thresholds changed to %s by something else; leaving them "
            "to it (c.KubeSpawner.gc_burst_policy)",
            tuple(self.collector.get_threshold()),
        )
        self.stepped_aside = True
        self._stop()

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        """gc callback: a full collection ran (the collector's or the policy's own)."""
        if phase != "stop":
            return
        self._collections += 1
        if info.get("generation") != 2:
            return
        self._last_full = self.clock()
        if self.settings.freeze_survivors:
            # Everything still alive now is what the hub keeps (spawners, caches): the
            # next full collection need not walk it again. Reference counting still frees
            # frozen objects; cycles among them wait for the next sweep.
            self.collector.freeze()
        if self.state == "catch-up" and self._still_ours():
            # The owed collection has run: back to deferring if work is still in flight.
            self._set("burst" if self.in_flight else "quiet")

    def _schedule(self, replace: bool = False) -> None:
        """Keep one timer on the running loop while a decision is pending: the end of
        the quiet delay once nothing is in flight, else a periodic deferral check."""
        if self.state in ("off", "quiet"):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None  # a synchronous caller: tick() is called by hand
        if self._timer is not None:
            if not replace and self._timer_loop is loop:
                return
            # replaced, or left on a loop that is gone (a test's, say)
            self._timer.cancel()
            self._timer = None
        if loop is None:
            return
        if self.in_flight == 0 and self._quiet_since is not None:
            # a little past the delay, so the timer never fires a hair early
            delay = self._quiet_since + self.settings.quiet_delay - self.clock() + 0.01
        else:
            delay = min(self.settings.quiet_delay * 5, self.settings.max_deferral / 4)
        self._timer = loop.call_later(max(0.0, delay), self._on_timer)
        self._timer_loop = loop
        self._schedule_young(loop)

    # -- young collections by time -------------------------------------------------------

    def _schedule_young(self, loop: asyncio.AbstractEventLoop) -> None:
        """Keep one young-collection timer on ``loop`` while a burst lasts."""
        interval = self.settings.young_interval
        if not interval or self.state not in ("burst", "catch-up"):
            return
        if self._young_timer is not None:
            if self._young_timer_loop is loop:
                return
            self._young_timer.cancel()  # left on a loop that is gone (a test's, say)
        self._collections_at_young_tick = self._collections
        self._young_timer = loop.call_later(interval, self._on_young_timer)
        self._young_timer_loop = loop

    def _on_young_timer(self) -> None:
        self._young_timer = None
        self.young_tick()
        if self.state in ("burst", "catch-up"):
            self._schedule_young(asyncio.get_running_loop())

    def young_tick(self) -> None:
        """Run a young collection if the collector has run none since the last call.

        Why: the collector's own trigger is its count of allocations minus
        deallocations, and deallocating old objects lowers it too. In a storm's drain
        the old state of finished spawns is freed while new objects are made, the count
        stays under the threshold and the young generation grows without a collection
        until one finally walks all of it (14,700 objects and 7 ms at a threshold of 700).
        Called every ``young_interval`` during a burst, this bounds a young collection by
        what that much work leaves alive; when allocations drive the collector itself,
        it does nothing.
        """
        if self.state not in ("burst", "catch-up"):
            return
        if self._collections == self._collections_at_young_tick:
            self.forced_young_collections += 1
            self.collector.collect(0)
        self._collections_at_young_tick = self._collections

    def _on_timer(self) -> None:
        self._timer = None
        self.tick()
        self._schedule()


_policy: BurstGcPolicy | None = None


def hub_policy() -> BurstGcPolicy:
    """The process's one policy (made on first use, installed by :func:`engage`)."""
    global _policy
    if _policy is None:
        _policy = BurstGcPolicy()
    return _policy


def engage() -> BurstGcPolicy:
    """Install the process's policy once; later calls return it as it is."""
    policy = hub_policy()
    if policy.state == "off" and not policy.stepped_aside:
        policy.install()
    return policy


def disengage() -> None:
    """Give the thresholds back and forget the policy (a clean shutdown; the next
    spawner to start or stop engages a new one)."""
    global _policy
    if _policy is not None:
        _policy.uninstall()
        _policy = None


class InFlight:
    """One ``start()``/``stop()`` counted while it runs: :meth:`begin` when it starts,
    :meth:`end` in its ``finally``. A no-op when the policy is None or off."""

    __slots__ = ("counted", "policy")

    def __init__(self, policy: BurstGcPolicy | None, counted: bool) -> None:
        self.policy = policy
        self.counted = counted

    @classmethod
    def begin(cls, policy: BurstGcPolicy | None) -> InFlight:
        return cls(policy, policy.work_started() if policy is not None else False)

    def end(self) -> None:
        if self.policy is not None and self.counted:
            self.counted = False
            self.policy.work_finished()

    def end_callback(self, _future: object) -> None:
        """:meth:`end` as a future's done callback."""
        self.end()
