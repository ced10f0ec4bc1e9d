"""The storm benchmark's step timer names what ran without calling foreign ``__repr__``s.

aiohttp's ``ClientResponse.__repr__`` caches ``headers`` as None when called before the
response has started; describing the step that ran its ``__reset_writer`` callback (a
request body written, the answer not yet read) made that request fail in ``start()``
with ``AttributeError: 'NoneType' object has no attribute 'getall'``.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import time

from aiohttp import ClientSession, web

from benchmarks.loop_monitor import LoopStallMonitor, SlowestSteps, StepCensus, _describe
from tests.local_http import serve


class _Touchy:
    def __init__(self) -> None:
        self.reprs = 0

    def __repr__(self) -> str:
        self.reprs += 1
        return "touched"

    def step(self) -> None:
        pass


async def test_a_bound_method_step_is_named_without_its_objects_repr() -> None:
    loop = asyncio.get_running_loop()
    touchy = _Touchy()
    described = [
        _describe(asyncio.Handle(touchy.step, (), loop)),
        _describe(asyncio.Handle(functools.partial(touchy.step), (), loop)),
    ]
    assert touchy.reprs == 0
    assert all("_Touchy.step" in d for d in described), described


async def test_describing_every_step_leaves_requests_with_a_body_intact() -> None:
    """Every step described (so the body writer's done callback is, on the Pythons where
    aiohttp runs it as a step of its own, such as 3.11): each DELETE with a body still
    gets its answer. Naming a step never calls its object's ``__repr__`` on any Python:
    the test above."""

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"kind": "Status", "status": "Success"})

    app = web.Application()
    app.router.add_delete("/pod", handler)
    steps = SlowestSteps(keep=1_000_000)
    async with serve(app) as port:
        steps.install()
        try:
            async with ClientSession() as session:
                for _ in range(3):
                    async with session.request(
                        "DELETE", f"http://127.0.0.1:{port}/pod",
                        data=b'{"kind":"DeleteOptions"}',
                    ) as response:
                        assert response.status == 200
                        assert (await response.json())["status"] == "Success"
        finally:
            steps.uninstall()
    described = [what for _, what, _ in steps.steps]
    assert any("RequestHandler" in what for what in described), described[:20]
    if sys.version_info < (3, 12):  # where the body writer's callback is its own step
        assert any("ClientResponse" in what for what in described), described[:20]


async def test_steps_are_ranked_by_wall_time_and_by_their_own_cpu_time() -> None:
    """A step that waits (here: sleeps, as a preempted process would) has a long wall time
    but little CPU time; one that computes has both. The CPU ranking names the one that
    computed, so a shared machine's waiting does not pass for the loop's own work."""
    import time

    def waits(done: asyncio.Future[None]) -> None:
        time.sleep(0.03)
        done.set_result(None)

    def computes(done: asyncio.Future[None]) -> None:
        until = time.thread_time() + 0.01
        while time.thread_time() < until:
            pass
        done.set_result(None)

    loop = asyncio.get_running_loop()
    steps = SlowestSteps(keep=2)
    steps.install()
    try:
        for callback in (waits, computes):
            done: asyncio.Future[None] = loop.create_future()
            loop.call_soon(callback, done)
            await done
    finally:
        steps.uninstall()
    by_cpu = steps.snapshot_cpu()
    assert "computes" in by_cpu[0]["step"], by_cpu
    assert by_cpu[0]["cpu_ms"] >= 10.0
    by_wall = {entry["step"]: entry for entry in steps.snapshot()}
    waited = next(entry for name, entry in by_wall.items() if "waits" in name)
    assert waited["ms"] >= 30.0
    assert waited["cpu_ms"] < waited["ms"] - 20.0


async def test_the_census_counts_every_step_of_a_coroutine_under_one_name() -> None:
    """Three steps of one task (it resumes twice), whatever line each resumed at, are one
    row; its CPU is what those steps spent; per-cycle figures divide by ``per``; a reset
    empties the rows the installed wrapper fills; uninstalling restores ``_run``."""
    original = asyncio.events.Handle._run

    async def three_steps() -> None:
        await asyncio.sleep(0)
        busy_until = time.thread_time() + 0.002  # CPU in this step, not waiting
        while time.thread_time() < busy_until:
            pass
        await asyncio.sleep(0)

    census = StepCensus()
    census.install()
    try:
        await asyncio.get_running_loop().create_task(three_steps())
        rows = {what: row for what, row in census.rows.items() if "three_steps" in what}
        assert list(rows) == ["task test_the_census_counts_every_step_of_a_coroutine_under_one_name"
                              ".<locals>.three_steps"]
        steps, cpu = next(iter(rows.values()))
        assert steps == 3
        assert cpu >= 0.002
        snapshot = census.snapshot(per=2, keep=50)
        row = next(r for r in snapshot["rows"] if "three_steps" in r["step"])
        assert row["steps_per_cycle"] == 1.5
        assert row["cpu_us_per_cycle"] >= 1000
        assert snapshot["steps_per_cycle"] >= 1.5
        census.reset()
        await asyncio.sleep(0)  # a step after the reset is counted in the emptied rows
        assert census.rows and not any("three_steps" in what for what in census.rows)
    finally:
        census.uninstall()
    assert asyncio.events.Handle._run is original


def test_the_stall_monitor_tells_the_arrival_from_the_drain() -> None:
    """A stall before ``mark()`` counts in the window's longest stall only; one after it
    in both (the storm marks the end of its arrival so). Ticks are recorded directly, so
    the figures are exact and no loop is held."""
    monitor = LoopStallMonitor()
    monitor.record(0.001, 0.001)
    assert monitor.snapshot()["max_loop_stall_after_mark_ms"] is None  # not marked
    monitor.record(0.5, 0.5)  # the arrival: the stand-in hub's N first steps
    monitor.mark()
    assert monitor.snapshot()["max_loop_stall_after_mark_ms"] == 0.0
    monitor.record(0.02, 0.02)  # a shorter one while the calls drain
    snapshot = monitor.snapshot()
    assert snapshot["max_loop_stall_ms"] == 500.0
    assert snapshot["max_loop_stall_after_mark_ms"] == 20.0
    assert snapshot["stalls_over_50ms"] == 1 and snapshot["ticks"] == 3
    monitor.reset()  # a new window forgets the mark
    assert monitor.snapshot()["max_loop_stall_after_mark_ms"] is None


async def test_the_stall_monitor_records_a_stall_of_its_loop() -> None:
    """The ticker itself: a loop held for 200 ms shows as a stall of at least that much
    (a lower bound only: the machine may add to it, never take away)."""
    monitor = LoopStallMonitor(interval=0.001)
    monitor.start()
    try:
        await monitor.settle()
        monitor.reset()
        time.sleep(0.2)  # noqa: ASYNC251  # the stall being measured: the loop held
        await monitor.settle()
        snapshot = monitor.snapshot()
    finally:
        await monitor.stop()
    stall = snapshot["max_loop_stall_ms"]
    assert stall is not None and stall >= 190
