"""The longest event-loop stall: a ticker that measures how late it wakes up.

A hub serves every user from one event loop; a callback that runs for 200 ms (parsing a
big list response, say) delays every request by as much. A task that asks to wake every
``interval`` seconds and records how late it actually woke sees exactly those stalls,
whatever code caused them, without instrumenting the spawner.
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
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="loop stall monitor")

    def reset(self) -> None:
        """Start a new measurement window (e.g. the idle phase) keeping the ticker running."""
        self.max_stall = 0.0
        self.stalls_over_50ms = 0
        self.ticks = 0

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            expected = time.monotonic() + self.interval
            await asyncio.sleep(self.interval)
            late = time.monotonic() - expected
            self.ticks += 1
            if late > self.max_stall:
                self.max_stall = late
            if late > 0.05:
                self.stalls_over_50ms += 1

    def snapshot(self) -> dict[str, float | int]:
        return {
            "max_loop_stall_ms": round(self.max_stall * 1000, 3),
            "stalls_over_50ms": self.stalls_over_50ms,
            "ticks": self.ticks,
        }
