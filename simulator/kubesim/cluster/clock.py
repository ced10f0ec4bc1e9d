"""Simulated time for the cluster's controllers.

Scenario timings are written in "cluster seconds" (a 2 s image pull, a pod that crashes
after 30 s). In real mode a cluster second is a wall-clock second, which is what the demo
and benchmarks want. In fast mode every wait is scaled down (by default a thousandfold) so
a test walks a pod through its whole life in milliseconds, while the order of status
changes and events stays exactly the same, and messages still quote the cluster-time
durations ("Successfully pulled image ... in 2s").

Timestamps written into objects are always wall-clock UTC: they are compared by clients
with their own clocks, so scaling them would only produce nonsense ages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..timestamps import format_seconds

# 1 cluster second lasts this many real seconds in fast mode.
FAST_SCALE = 0.001


class Clock:
    """Converts cluster seconds into real waits; the single place where controllers sleep."""

    def __init__(self, scale: float = 1.0) -> None:
        if scale < 0:
            raise ValueError(
                f"clock scale must be >= 0 (real seconds per cluster second), got {scale}"
            )
        self.scale = scale

    @classmethod
    def real(cls) -> Clock:
        return cls(1.0)

    @classmethod
    def fast(cls, scale: float = FAST_SCALE) -> Clock:
        return cls(scale)

    @property
    def is_fast(self) -> bool:
        return self.scale < 1.0

    async def sleep(self, cluster_seconds: float) -> None:
        """Wait ``cluster_seconds`` of cluster time; always yields to the loop once.

        Yielding even for zero keeps a controller from starving the API server it
        shares the event loop with when a scenario has no delays at all.
        """
        await asyncio.sleep(max(0.0, cluster_seconds) * self.scale)

    def call_later(
        self, cluster_seconds: float, callback: Callable[..., object], *args: Any
    ) -> asyncio.TimerHandle:
        """Run ``callback(*args)`` after ``cluster_seconds`` of cluster time (at the next
        turn of the loop for zero): a timer where a waiting task would cost more, such
        as a thousand containers being stopped at once."""
        return asyncio.get_running_loop().call_later(
            self.real_seconds(cluster_seconds), callback, *args
        )

    def real_seconds(self, cluster_seconds: float) -> float:
        """The real duration of a cluster-time span (for timeouts handed to asyncio)."""
        return max(0.0, cluster_seconds) * self.scale

    def cluster_seconds(self, real_seconds: float) -> float:
        """The cluster time a real duration represents (the inverse of ``real_seconds``)."""
        return real_seconds / self.scale if self.scale > 0 else float("inf")

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)

    @staticmethod
    def timestamp(when: datetime | None = None) -> str:
        """An RFC 3339 timestamp with second precision, as the API server serialises metav1.Time.

        Formatted through the store's per-second cache: a burst stamps the same second
        many times (events, exits, statuses), and ``strftime`` cost more than the rest.
        """
        if when is None:
            return format_seconds(datetime.now(UTC))
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")

    @staticmethod
    def micro_timestamp(when: datetime | None = None) -> str:
        """metav1.MicroTime (used by Event.eventTime): microsecond precision."""
        return (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_go_duration(seconds: float) -> str:
    """Format a duration the way Go's ``time.Duration.String()`` does (``1.2s``, ``350ms``, ``2m3s``).

    The kubelet's Pulled message prints durations with Go's formatter; clients that parse
    or display these messages see the same shapes as from a real node.
    """
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        ms = seconds * 1000
        if ms >= 1:
            return f"{_trim(ms, 3)}ms"
        us = seconds * 1_000_000
        return f"{_trim(us, 3)}µs"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    out = ""
    if hours:
        out += f"{int(hours)}h"
    if hours or minutes:
        out += f"{int(minutes)}m"
    out += f"{_trim(secs, 9)}s"
    return out


def _trim(value: float, digits: int) -> str:
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return text or "0"
