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
import contextlib
import time


class LoopStallMonitor:
    """Records the lateness of a periodic wake-up; ``max_stall`` is the worst seen (s)."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.max_stall = 0.0
        self.stalls_over_50ms = 0
        self.ticks = 0
        self.max_stall_cpu = 0.0
        self.max_cpu_burst = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="loop stall monitor")

    def reset(self) -> None:
        """Start a new measurement window (e.g. the idle phase) keeping the ticker running."""
        self.max_stall = 0.0
        self.stalls_over_50ms = 0
        self.ticks = 0
        self.max_stall_cpu = 0.0
        self.max_cpu_burst = 0.0

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            expected = time.monotonic() + self.interval
            cpu_before = time.thread_time()
            await asyncio.sleep(self.interval)
            late = time.monotonic() - expected
            cpu = time.thread_time() - cpu_before
            self.ticks += 1
            self.max_cpu_burst = max(self.max_cpu_burst, cpu)
            if late > self.max_stall:
                self.max_stall = late
                self.max_stall_cpu = cpu
            if late > 0.05:
                self.stalls_over_50ms += 1

    def snapshot(self) -> dict[str, float | int]:
        return {
            "max_loop_stall_ms": round(self.max_stall * 1000, 3),
            "max_loop_stall_cpu_ms": round(self.max_stall_cpu * 1000, 3),
            "max_loop_cpu_burst_ms": round(self.max_cpu_burst * 1000, 3),
            "stalls_over_50ms": self.stalls_over_50ms,
            "ticks": self.ticks,
        }
