"""A clock for the client's retry policy that moves only when the policy sleeps.

Shared by the retry tests against a scripted server and against the simulator: with it
a retry budget ends after an exact number of sleeps, and the tests take no real time.
"""

from __future__ import annotations


class FakeClock:
    """Time that moves only when the policy sleeps: budgets become exact, tests instant."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
