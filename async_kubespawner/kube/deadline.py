"""A point in time that an operation must finish by, and what to say when it does not.

Why an object: remainders used to be recomputed by hand at every step
(``max(0.0, deadline - time.monotonic())``), each with its own clock and its own
message, and the client's retry budget kept a clock of its own. A :class:`Deadline`
knows its clock, its total and what it bounds, so every step asks ``left()``, a step
with its own cap asks for a :meth:`child`, and a timeout always reads the same way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

Clock = Callable[[], float]


class Deadline:
    """``seconds`` from ``start`` (default: now) on ``clock``; ``what`` names the bounded work.

    ``what`` says what did not happen if the deadline passes ("Server x did not become
    ready"). ``seconds`` may be ``math.inf`` (no bound). Nothing here sleeps or raises by itself:
    callers pass :meth:`left` to the waits they make, and raise :meth:`error` when the
    wait ran out.
    """

    __slots__ = ("at", "clock", "seconds", "what")

    def __init__(
        self,
        seconds: float,
        what: str = "the operation did not complete",
        *,
        clock: Clock = time.monotonic,
        start: float | None = None,
    ) -> None:
        if math.isnan(seconds) or seconds < 0:
            raise ValueError(f"a deadline needs a number of seconds >= 0, got {seconds!r}")
        self.seconds = seconds
        self.what = what
        self.clock = clock
        self.at = (clock() if start is None else start) + seconds

    def left(self) -> float:
        """Seconds left, never negative (``math.inf`` when unbounded)."""
        return max(0.0, self.at - self.clock())

    @property
    def expired(self) -> bool:
        return self.clock() >= self.at

    def timeout(self, cap: float | None = None) -> float:
        """What a single wait may take: the time left, at most ``cap``."""
        left = self.left()
        return left if cap is None else min(left, cap)

    def allows(self, seconds: float) -> bool:
        """Whether a pause of ``seconds`` still ends before the deadline."""
        return self.clock() + seconds < self.at

    def child(self, seconds: float, what: str | None = None) -> Deadline:
        """A deadline for one step: ``seconds`` from now, but never past this one."""
        return Deadline(min(seconds, self.left()), what or self.what, clock=self.clock)

    def message(self, detail: str = "") -> str:
        """The one way a timeout reads: ``<what> within <N> seconds[: <detail>]``, where
        ``what`` says what did not happen ("Server x did not become ready")."""
        limit = "ever" if math.isinf(self.seconds) else f"within {self.seconds:g} seconds"
        return f"{self.what} {limit}" + (f": {detail}" if detail else "")

    def error(self, detail: str = "") -> TimeoutError:
        return TimeoutError(self.message(detail))

    def __repr__(self) -> str:
        return f"Deadline({self.what!r}, {self.left():.3f}s of {self.seconds:g}s left)"
