"""The benchmark harness: percentiles, the hub stand-in, figure matching, the reports.

Pure: nothing here starts the simulator (the tiny storm end to end is in
``tests/lifecycle/test_benchmark_storm.py``). No timing assertions.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from jupyterhub.spawner import Spawner
from traitlets.config import Config

from benchmarks.figures import nearest_rank, summarise
from benchmarks.hub_stand_in import CycleRecord, build_spawner, start_server, stop_server
from benchmarks.loop_monitor import LoopStallMonitor
from benchmarks.spawn_storm import (
    _arrive,
    build_parser,
    compute_figures,
    fault_recovery,
    validate,
)
from benchmarks.spawner_loading import BenchmarkSetupError, load_config, load_spawner_class

# -- percentiles -------------------------------------------------------------------------


def test_nearest_rank_percentiles() -> None:
    values = list(range(1, 101))  # 1..100
    assert nearest_rank(values, 50) == 50
    assert nearest_rank(values, 90) == 90
    assert nearest_rank(values, 99) == 99
    assert nearest_rank(values, 100) == 100
    assert nearest_rank([7.0], 99) == 7.0
    # nearest rank on a small sample: p50 of 4 values is the 2nd, p99 the 4th
    assert nearest_rank([1, 2, 3, 4], 50) == 2
    assert nearest_rank([1, 2, 3, 4], 99) == 4


def test_percentile_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="no values"):
        nearest_rank([], 50)
    with pytest.raises(ValueError, match="percentile"):
        nearest_rank([1, 2], 0)


def test_summarise_scales_sorts_and_handles_empty() -> None:
    summary = summarise([0.003, 0.001, 0.002, 0.010], scale=1000)
    assert summary == {"p50": 2.0, "p90": 10.0, "p99": 10.0, "max": 10.0, "n": 4}
    assert summarise([]) == {"p50": None, "p90": None, "p99": None, "max": None, "n": 0}


# -- figures from marks --------------------------------------------------------------------


def test_overheads_match_the_latest_mark_before_the_return() -> None:
    record = CycleRecord(user="u", namespace="ns", pod_name="jupyter-u", start_returned=10.5,
                         stop_returned=20.25, progress=[("ev-1", 9.75), (None, 9.8),
                                                        ("ev-unknown", 9.9)])
    marks = {
        # an earlier pod of the same name became ready at 3.0; this one at 10.0
        "ready": [["ns", "jupyter-u", "uid-old", 3.0], ["ns", "jupyter-u", "uid-new", 10.0]],
        "deleted": [["ns", "jupyter-u", "uid-new", 20.0]],
        "events": {"ev-1": 9.5},
    }
    raw = compute_figures([record], marks)
    assert raw["start"] == [pytest.approx(0.5)]
    assert raw["stop"] == [pytest.approx(0.25)]
    assert raw["progress"] == [pytest.approx(0.25)]
    assert raw["unmatched"] == {"start": 0, "stop": 0, "progress": 1}


def test_a_start_that_returns_before_ready_is_negative_not_hidden() -> None:
    record = CycleRecord(user="u", namespace="ns", pod_name="p", start_returned=5.0)
    raw = compute_figures([record], {"ready": [["ns", "p", "x", 6.0]], "deleted": [],
                                     "events": {}})
    assert raw["start"] == [pytest.approx(-1.0)]


def test_fault_recovery_measures_catch_up_from_the_clear() -> None:
    records = [
        # ready at 2.0 while faults were on (cleared at 10.0); answered at 13.0: 3 s catch-up
        CycleRecord(user="a", namespace="ns", pod_name="a", start_returned=13.0),
        # ready at 3.0 and answered at 4.0, during the faults: no catch-up needed
        CycleRecord(user="b", namespace="ns", pod_name="b", start_returned=4.0),
        # ready after the clear at 12.0, answered at 12.5: normal service
        CycleRecord(user="c", namespace="ns", pod_name="c", start_returned=12.5),
        CycleRecord(user="d", namespace="ns", pod_name="d"),  # never started
    ]
    marks = {"ready": [["ns", "a", "1", 2.0], ["ns", "b", "2", 3.0], ["ns", "c", "3", 12.0]],
             "deleted": [], "events": {}}
    recovery = fault_recovery(records, marks, cleared=10.0)
    assert recovery["time_to_recover_s"] == 3.0
    assert recovery["ready_during_faults"] == 2
    assert recovery["start_overhead_ready_after_clear_ms"]["max"] == 500.0


# -- the hub stand-in with JupyterHub's Spawner base class -----------------------------------


class _EchoSpawner(Spawner):
    """A Spawner that starts at once and reports two progress messages."""

    started = False

    async def start(self) -> str:
        self.started = True
        await asyncio.sleep(0)
        return "http://10.0.0.1:8888"

    async def progress(self):
        yield {"progress": 50, "message": "halfway",
               "raw_event": {"metadata": {"uid": "event-uid-1"}}}

    async def poll(self) -> int | None:
        return None if self.started else 0

    async def stop(self, now: bool = False) -> None:
        self.started = False


async def test_stand_in_objects_drive_the_spawner_base_class() -> None:
    config = Config()
    config.Spawner.start_timeout = 7
    spawner = build_spawner(_EchoSpawner, "alice", 3, config=config, servername="lab")
    assert spawner.user.name == "alice" and spawner.user.id == 3
    assert spawner.name == "lab"
    assert spawner.start_timeout == 7
    assert spawner.api_token == "bench-token-000003"
    env = spawner.get_env()  # the base class reads user, hub and tokens here
    assert env["JUPYTERHUB_USER"] == "alice"
    assert env["JUPYTERHUB_API_URL"] == "http://hub.bench.svc:8081/hub/api"

    record = CycleRecord(user="alice")
    await start_server(spawner, record)
    assert record.start_error is None
    assert record.url == "http://10.0.0.1:8888"
    assert record.start_returned is not None and record.start_returned >= record.start_called
    # _generate_progress ran: the hub's "Server requested" plus the spawner's own message
    uids = [uid for uid, _ in record.progress]
    assert uids == [None, "event-uid-1"]
    assert spawner.server is not None and spawner.server.base_url == "/user/alice/"
    # as the hub does, the server now points at the URL start() returned
    assert (spawner.server.ip, spawner.server.port) == ("10.0.0.1", 8888)
    assert await spawner.poll() is None

    await stop_server(spawner, record)
    assert record.stop_error is None and record.stop_returned is not None
    assert await spawner.poll() == 0


async def test_the_address_start_returned_reaches_a_server_read_during_start() -> None:
    """KubeSpawner reads ``self.server`` while it starts; as in User.spawn, the address
    start() returns must reach that same Server object, or the first poll() sees the
    placeholder address, logs it as changed and commits, in every benchmark cycle."""

    class ReadsServer(_EchoSpawner):
        async def start(self) -> str:
            assert self.server is not None and self.server.ip == ""  # the placeholder
            return await super().start()

    spawner = build_spawner(ReadsServer, "carol", 5, config=Config())
    record = CycleRecord(user="carol")
    await start_server(spawner, record)
    assert record.start_error is None
    assert (spawner.server.ip, spawner.server.port) == ("10.0.0.1", 8888)
    assert spawner.server.url == "http://10.0.0.1:8888/user/carol/"
    assert (spawner.orm_spawner.server.ip, spawner.orm_spawner.server.port) == ("10.0.0.1", 8888)


async def test_stop_follows_user_stop_stop_polling_then_poll_then_stop() -> None:
    calls: list[str] = []

    class Traced(_EchoSpawner):
        def stop_polling(self) -> None:
            calls.append(f"stop_polling pending={self._stop_pending}")
            super().stop_polling()

        async def poll(self) -> int | None:
            calls.append(f"poll pending={self._stop_pending}")
            return await super().poll()

        async def stop(self, now: bool = False) -> None:
            calls.append("stop")
            await super().stop(now)

    spawner = build_spawner(Traced, "carol", 5, config=Config())
    record = CycleRecord(user="carol")
    await start_server(spawner, record)
    await stop_server(spawner, record)
    assert calls == ["stop_polling pending=False", "poll pending=True", "stop"]
    assert record.stop_error is None and spawner._stop_pending is False

    # a server that already stopped is not stopped again (the hub skips stop() too)
    # and, in a storm where every server runs, is counted as a failed stop
    calls.clear()
    again = CycleRecord(user="carol")
    await stop_server(spawner, again)
    assert calls == ["stop_polling pending=False", "poll pending=True"]
    assert again.stop_error == "poll() said the server had stopped before stop()"
    assert again.stop_returned is None


@pytest.mark.parametrize("arrival, distinct", [("burst", 1), ("per-iteration", 5)])
async def test_requests_arrive_in_one_iteration_or_one_each(arrival: str, distinct: int) -> None:
    """Which loop iteration each handler's first step runs in (a counter bumped once per
    iteration by a callback that re-schedules itself)."""
    loop = asyncio.get_running_loop()
    iteration = 0
    ticking = True

    def tick() -> None:
        nonlocal iteration
        iteration += 1
        if ticking:
            loop.call_soon(tick)

    loop.call_soon(tick)
    seen: list[int] = []

    async def handle(_spawner: Any, _record: CycleRecord) -> None:
        seen.append(iteration)

    monitor = LoopStallMonitor(interval=0.001)
    monitor.start()
    try:
        await _arrive(arrival, handle, [(None, CycleRecord(user=f"u{i}")) for i in range(5)],
                      monitor)
    finally:
        await monitor.stop()
    ticking = False
    assert len(seen) == 5
    assert len(set(seen)) == distinct
    # marked once every call had arrived: the drain's stalls are measured apart
    assert monitor.snapshot()["max_loop_stall_after_mark_ms"] is not None


async def test_a_failing_start_is_recorded_not_raised() -> None:
    class Broken(_EchoSpawner):
        async def start(self) -> str:
            raise RuntimeError("no capacity")

    record = CycleRecord(user="bob")
    await start_server(build_spawner(Broken, "bob", 4, config=Config()), record)
    assert record.start_returned is None
    assert record.start_error == "RuntimeError: no capacity"


# -- setup errors ----------------------------------------------------------------------------


def test_spawner_and_config_errors_say_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkSetupError, match="dotted path"):
        load_spawner_class("KubeSpawner")
    with pytest.raises(BenchmarkSetupError, match="cannot import 'no_such_module_xyz'"):
        load_spawner_class("no_such_module_xyz.KubeSpawner")
    with pytest.raises(BenchmarkSetupError, match="not a jupyterhub Spawner"):
        load_spawner_class("json.JSONDecoder")
    assert load_spawner_class("async_kubespawner:KubeSpawner").__name__ == "KubeSpawner"
    with pytest.raises(BenchmarkSetupError, match="no such file"):
        load_config(str(tmp_path / "missing.py"))
    config_file = tmp_path / "bench_config.py"
    config_file.write_text("c.KubeSpawner.cpu_limit = 2\n")
    assert load_config(str(config_file)).KubeSpawner.cpu_limit == 2


def test_cli_rejects_bad_sizes() -> None:
    parser = build_parser()
    with pytest.raises(SystemExit):
        validate(parser, parser.parse_args(["--users", "0"]))
    with pytest.raises(SystemExit):
        validate(parser, parser.parse_args(["--sweep", "10", "--memory", "10"]))


# -- reports of the other modes --------------------------------------------------------------


def _memory_entry(pods: int) -> dict[str, Any]:
    return {"pods": pods, "heap_bytes_per_pod": 1100.0, "peak_rss_bytes": 200 * 2**20,
            "poll_returned_seconds": 0.5, "load_seconds": 0.5,
            "simulator_cpu_s_serving_the_load": 0.1, "max_loop_stall_ms_loading": 10.0,
            "max_loop_stall_ms_holding": 5.0}


def test_memory_and_sweep_reports_have_a_row_per_size(tmp_path: Path) -> None:
    from benchmarks.report import markdown_report, write_plots

    memory = {"meta": {"mode": "memory", "spawner": "x.Y", "seed": 1},
              "memory": {"1000": _memory_entry(1000), "5000": _memory_entry(5000)}}
    table = markdown_report(memory)
    assert "| 1,000 | 1,100 |" in table and "| 5,000 | 1,100 |" in table
    assert [p.name for p in write_plots(memory, tmp_path)] == ["memory.png"]

    run: dict[str, Any] = {key: {"p50": 1.0, "p90": 2.0, "p99": 3.0, "max": 4.0, "n": 1}
                           for key in ("start_overhead_ms", "stop_overhead_ms", "progress_lag_ms")}
    run.update({"cpu_s_per_cycle": 0.005, "requests_per_spawn": 1.0, "requests_per_stop": 1.0,
                "idle_requests_per_minute": 0.0, "heap_bytes_per_pod": None,
                "max_loop_stall_ms": 10.0, "wall_time_s": {"start_phase": 9.5},
                "spawns": {"failed": 0}})
    sweep = {"meta": {"mode": "sweep", "spawner": "x.Y", "seed": 1},
             "runs": {"10": run, "100": run}}
    table = markdown_report(sweep)
    assert "| figure | N=10 | N=100 |" in table
    assert "| requests per idle minute | 0.0 | 0.0 |" in table
    assert [p.name for p in write_plots(sweep, tmp_path)] == ["sweep.png"]


async def test_hostile_options_benchmark_produces_every_figure() -> None:
    from benchmarks.hostile_options import measure

    figures = await measure(submissions=60, warmup=20, servers=5, seed=3)
    assert figures["accepted"] + figures["refused"] == 60
    assert figures["accepted"] > 0 and figures["refused"] > 0
    # user text never became a template: no 50-million-character env value
    assert figures["longest_env_value_chars"] < 1000
    for key in ("rss_growth_mb", "heap_growth_kb", "cpu_us_per_submission", "peak_rss_mb"):
        assert isinstance(figures[key], float)


def test_reflector_deliveries_index_what_was_seen_when_read() -> None:
    """The observer only appends; the indexes are built on reading, also after more came."""
    from benchmarks.diagnostics import ReflectorDeliveries

    def pod(uid: str, ready: bool) -> dict[str, Any]:
        return {"metadata": {"namespace": "ns", "name": "jupyter-a", "uid": uid},
                "status": {"conditions": [{"type": "Ready", "status": str(ready)}]}}

    seen = ReflectorDeliveries()
    seen.record("pods", {"type": "ADDED", "object": pod("u1", False)}, 1.0)
    seen.record("pods", {"type": "MODIFIED", "object": pod("u1", True)}, 2.0)
    seen.record("pods", {"type": "MODIFIED", "object": pod("u1", True)}, 3.0)  # Ready again
    seen.record("events", {"type": "ADDED", "object": {"metadata": {"uid": "e1"}}}, 4.0)
    seen.record("events", {"type": "ADDED", "object": {"metadata": {"uid": "e1"}}}, 5.0)
    assert seen.pod_ready == {("ns", "u1"): 2.0}
    assert seen.pod_ready_by_name == {("ns", "jupyter-a"): [2.0]}
    assert seen.events == {"e1": 4.0}
    assert seen.pod_deleted == {}
    seen.record("pods", {"type": "DELETED", "object": pod("u1", True)}, 6.0)
    seen.record("pods", {"type": "MODIFIED", "object": pod("u2", True)}, 7.0)
    assert seen.pod_deleted == {("ns", "jupyter-a"): [6.0]}
    assert seen.pod_ready_by_name == {("ns", "jupyter-a"): [2.0, 7.0]}

