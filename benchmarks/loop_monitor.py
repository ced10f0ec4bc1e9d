"""The longest event-loop stall: a ticker that measures how late it wakes up.

A hub serves every user from one event loop; a callback that runs for 200 ms (parsing a
big list response, say) delays every request by as much. A task that asks to wake every
``interval`` seconds and records how late it actually woke sees exactly those stalls,
whatever code caused them, without instrumenting the spawner.

On a shared machine a late wake-up can also mean the process was not scheduled at all.
So each tick also records the CPU time the loop's thread used meanwhile
(``time.thread_time``): ``max_loop_cpu_burst_ms`` is the longest stretch of the loop's
own work between two ticks, the part of a stall our process is responsible for, and
``max_loop_stall_cpu_ms`` is how much of the worst stall was such work.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from typing import Any

from async_kubespawner.lifecycle.tasks import cancel_and_wait


class LoopStallMonitor:
    """Records the lateness of a periodic wake-up; ``max_stall`` is the worst seen (s)."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.max_stall = 0.0
        self.stalls_over_50ms = 0
        self.ticks = 0
        self.max_stall_cpu = 0.0
        self.max_cpu_burst = 0.0
        #: the longest stall since :meth:`mark` (None: not marked in this window)
        self.max_stall_after_mark: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._ticked: asyncio.Event | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="loop stall monitor")

    async def settle(self) -> None:
        """Wait for the ticker's next wake-up, so a stall caused between two phases (a
        measurement of our own, such as a full collection) is not counted in the next."""
        self._ticked = asyncio.Event()
        await self._ticked.wait()
        self._ticked = None

    def reset(self) -> None:
        """Start a new measurement window (e.g. the idle phase) keeping the ticker running."""
        self.max_stall = 0.0
        self.stalls_over_50ms = 0
        self.ticks = 0
        self.max_stall_cpu = 0.0
        self.max_cpu_burst = 0.0
        self.max_stall_after_mark = None

    def mark(self) -> None:
        """Also track the longest stall from now on, within the current window: a storm
        marks the end of its arrival, so the stall its issuing of N calls caused (the
        harness's, where a hub takes N requests over N iterations) is told apart from the
        stalls while they drain."""
        self.max_stall_after_mark = 0.0

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            expected = time.monotonic() + self.interval
            cpu_before = time.thread_time()
            await asyncio.sleep(self.interval)
            self.record(time.monotonic() - expected, time.thread_time() - cpu_before)
            if self._ticked is not None:
                self._ticked.set()

    def record(self, late: float, cpu: float) -> None:
        """One tick: it woke ``late`` seconds after it asked, the loop's thread having used
        ``cpu`` seconds meanwhile (apart from the ticker so the figures can be checked
        without holding a real loop)."""
        self.ticks += 1
        self.max_cpu_burst = max(self.max_cpu_burst, cpu)
        if late > self.max_stall:
            self.max_stall = late
            self.max_stall_cpu = cpu
        if self.max_stall_after_mark is not None and late > self.max_stall_after_mark:
            self.max_stall_after_mark = late
        if late > 0.05:
            self.stalls_over_50ms += 1

    def snapshot(self) -> dict[str, float | int | None]:
        return {
            "max_loop_stall_ms": round(self.max_stall * 1000, 3),
            "max_loop_stall_cpu_ms": round(self.max_stall_cpu * 1000, 3),
            "max_loop_cpu_burst_ms": round(self.max_cpu_burst * 1000, 3),
            "stalls_over_50ms": self.stalls_over_50ms,
            "ticks": self.ticks,
            "max_loop_stall_after_mark_ms": (
                None if self.max_stall_after_mark is None
                else round(self.max_stall_after_mark * 1000, 3)
            ),
        }


Run = Callable[[asyncio.events.Handle], None]


class _StepWrapper:
    """Wraps ``asyncio.Handle._run`` (every callback the loop runs) while installed, on
    top of whatever wraps it already; :meth:`uninstall` puts that back. Subclasses say
    what to do around each step in :meth:`_wrap`."""

    def __init__(self) -> None:
        self._original: Run | None = None

    def _wrap(self, original: Run) -> Run:
        raise NotImplementedError

    def install(self) -> None:
        if self._original is not None:
            return
        self._original = asyncio.events.Handle._run
        asyncio.events.Handle._run = self._wrap(self._original)  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        if self._original is not None:
            asyncio.events.Handle._run = self._original  # type: ignore[method-assign,assignment]
            self._original = None


class SlowestSteps(_StepWrapper):
    """The longest single callbacks (task steps) the loop ran, with what they were.

    A stall seen by :class:`LoopStallMonitor` is one loop iteration, which may be one long
    step or many short ones; this tells which, and names the coroutine. It wraps
    ``asyncio.Handle._run`` in this process while installed.

    Each step is timed twice: wall time (``perf_counter``) and the CPU time the loop's
    thread spent in it (``thread_time``). On a shared machine a step's wall time also
    counts the time the process waited to be scheduled again; its CPU time is the step's
    own work (its garbage collections included), so the slowest steps are ranked both
    ways: ``steps`` by wall time, ``cpu_steps`` by CPU time. The CPU clock costs about
    0.5 us a read (a system call), two per step.
    """

    def __init__(self, keep: int = 8) -> None:
        super().__init__()
        self.keep = keep
        #: (wall seconds, what ran, CPU seconds), longest wall time first.
        self.steps: list[tuple[float, str, float]] = []
        #: (CPU seconds, what ran, wall seconds), longest CPU time first.
        self.cpu_steps: list[tuple[float, str, float]] = []

    def _wrap(self, original: Run) -> Run:
        recorder = self
        perf_counter = time.perf_counter
        thread_time = time.thread_time

        def timed_run(handle: asyncio.events.Handle) -> None:
            cpu_started = thread_time()
            started = perf_counter()
            original(handle)
            took = perf_counter() - started
            cpu = thread_time() - cpu_started
            keep = recorder.keep
            steps = recorder.steps
            if len(steps) < keep or took > steps[-1][0]:
                steps.append((took, _describe(handle), cpu))
                steps.sort(key=lambda s: -s[0])
                del steps[keep:]
            by_cpu = recorder.cpu_steps
            if len(by_cpu) < keep or cpu > by_cpu[-1][0]:
                by_cpu.append((cpu, _describe(handle), took))
                by_cpu.sort(key=lambda s: -s[0])
                del by_cpu[keep:]

        return timed_run

    def reset(self) -> None:
        self.steps = []
        self.cpu_steps = []

    def snapshot(self) -> list[dict[str, Any]]:
        """The slowest steps by wall time, each with its CPU time."""
        return [{"ms": round(took * 1000, 2), "cpu_ms": round(cpu * 1000, 2), "step": what}
                for took, what, cpu in self.steps]

    def snapshot_cpu(self) -> list[dict[str, Any]]:
        """The steps that used the most CPU time, each with its wall time."""
        return [{"cpu_ms": round(cpu * 1000, 2), "ms": round(took * 1000, 2), "step": what}
                for cpu, what, took in self.cpu_steps]


class StepCensus(_StepWrapper):
    """Every step the loop ran, counted and timed (thread CPU) by what ran.

    :class:`SlowestSteps` names the worst steps; this accounts for all of them, so the
    CPU of a spawn+stop cycle can be split by coroutine without a profiler's distortion
    (cProfile's per-call cost inflates the small functions a hot path is made of; a
    sampling profiler over-weights system calls). Steps of one coroutine are one row
    whatever line they resumed at. It costs two CPU-clock reads and one ``_describe``
    per step.
    """

    def __init__(self) -> None:
        super().__init__()
        #: what ran -> [steps, CPU seconds]
        self.rows: dict[str, list[float]] = {}

    def _wrap(self, original: Run) -> Run:
        rows = self.rows
        thread_time = time.thread_time

        def counted_run(handle: asyncio.events.Handle) -> None:
            what = _describe(handle, with_line=False)
            started = thread_time()
            original(handle)
            row = rows.get(what)
            if row is None:
                row = rows[what] = [0, 0.0]
            row[0] += 1
            row[1] += thread_time() - started

        return counted_run

    def reset(self) -> None:
        self.rows.clear()  # in place: the installed wrapper holds this dict

    def snapshot(self, per: int = 1, keep: int = 20) -> dict[str, Any]:
        """The ``keep`` costliest rows by CPU, each as steps and CPU microseconds per
        ``per`` (a phase's cycles), and the totals over every row."""
        per = max(per, 1)
        ordered = sorted(self.rows.items(), key=lambda item: -item[1][1])
        return {
            "steps_per_cycle": round(sum(r[0] for r in self.rows.values()) / per, 2),
            "cpu_us_per_cycle": round(sum(r[1] for r in self.rows.values()) * 1e6 / per, 1),
            "rows": [{"step": what, "steps_per_cycle": round(n / per, 2),
                      "cpu_us_per_cycle": round(cpu * 1e6 / per, 1)}
                     for what, (n, cpu) in ordered[:keep]],
        }


def _describe(handle: asyncio.events.Handle, with_line: bool = True) -> str:
    """Name what a step ran without calling any ``__repr__`` but asyncio's own.

    Why: ``repr()`` of a bound method calls its object's ``__repr__``, which may have side
    effects. aiohttp's ``ClientResponse.__repr__`` reads ``headers``, a cached property:
    read before the response has started (its request-body writer finishing schedules
    ``ClientResponse.__reset_writer`` as a step of its own), it caches ``None``, and that
    request then fails in ``start()`` with ``AttributeError: 'NoneType' object has no
    attribute 'getall'``. Which steps get described depends on which are slowest, so a
    garbage collection landing in such a step is what made a stop fail, rarely, in storms.
    ``with_line=False`` leaves out the line a task resumed at, so that all of one
    coroutine's steps have one name.
    """
    callback = getattr(handle, "_callback", None)
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        frame = getattr(coro, "cr_frame", None)
        where = f" (now at line {frame.f_lineno})" if frame is not None and with_line else ""
        return f"task {getattr(coro, '__qualname__', coro)!s}{where}"
    target = callback.func if isinstance(callback, functools.partial) else callback
    owner = getattr(target, "__self__", None)
    func = getattr(target, "__func__", target)
    name = getattr(func, "__qualname__", None) or type(func).__qualname__
    if owner is not None and not isinstance(owner, type):
        return f"<bound method {name} of a {type(owner).__module__}.{type(owner).__qualname__}>"
    return f"<{type(func).__name__} {name}>"
