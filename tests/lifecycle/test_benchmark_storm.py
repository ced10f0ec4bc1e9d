"""A tiny spawn storm end to end, through the benchmark's command line and the simulator.

No timing assertions: the test checks that every figure is produced and consistent
(counts match, keys present), never how fast anything was.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
REQUIRED_KEYS = ("start_overhead_ms", "stop_overhead_ms", "progress_lag_ms", "cpu_s_per_cycle",
                 "requests_per_spawn", "requests_per_stop", "idle_requests_per_minute",
                 "heap_bytes_per_pod", "max_loop_stall_ms")


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "simulator")])}
    return subprocess.run([sys.executable, "-m", "benchmarks.spawn_storm", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=240)


def _check_summary(summary: dict[str, Any], n: int) -> None:
    assert set(summary) == {"p50", "p90", "p99", "max", "n"}
    assert summary["n"] == n
    assert summary["p50"] <= summary["p90"] <= summary["p99"] <= summary["max"]


def test_tiny_storm_produces_every_figure(tmp_path: Path) -> None:
    out, table, plots = tmp_path / "out.json", tmp_path / "out.md", tmp_path / "plots"
    users = 5
    done = _run_cli("--spawner", "async_kubespawner.KubeSpawner", "--users", str(users),
                    "--ready-spread", "0.3", "--idle-seconds", "1", "--poll-interval", "0.2",
                    "--watch-probe",
                    "--json", str(out), "--markdown", str(table), "--plots", str(plots))
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    for key in REQUIRED_KEYS:
        assert key in result, key
    assert result["spawns"] == {"requested": users, "completed": users, "failed": 0,
                                "errors": {}}
    assert result["stops"]["completed"] == users
    _check_summary(result["start_overhead_ms"], users)
    _check_summary(result["stop_overhead_ms"], users)
    assert result["progress_lag_ms"]["n"] == result["progress_events_received"] > 0
    assert result["unmatched"] == {"start": 0, "stop": 0, "progress": 0}
    # every spawn created a pod and every stop deleted one: the counters saw them
    assert result["requests_by_phase"]["start"]["create pods"] == users
    assert result["requests_by_phase"]["stop"]["delete pods"] == users
    assert result["requests_per_spawn"] >= 1 and result["requests_per_stop"] >= 1
    assert result["polls"]["total"] > 0
    assert result["polls"]["said_stopped_while_running"] == 0
    assert result["polls"]["errors"] == {}
    assert result["cpu_s_per_cycle"] > 0
    # measured (a number, not None), but with a handful of pods the per-pod difference is
    # within allocator noise and may even be negative: its size is the memory mode's job
    assert isinstance(result["heap_bytes_per_pod"], float | int)
    assert result["memory"][str(users)]["cached_pods"] == users
    assert result["meta"]["spawner"] == "async_kubespawner.KubeSpawner"
    assert result["meta"]["seed"] == 42 and result["meta"]["users"] == users
    # our spawner gets the split at the watch, and the independent watcher saw every pod
    after = result["after_watch_delivery"]
    _check_summary(after["start_overhead_ms"], users)
    assert result["independent_watcher"]["api_to_watcher_pod_ready_ms"]["n"] == users
    assert result["heap_census_after_starts"]["tracked_objects"] > 0
    # the longest step outside the harness's own is one of the steps recorded, never the
    # harness's, and at most the longest of all
    for phase in ("start", "stop"):
        outside = result["max_loop_step_cpu_ms_outside_harness"][phase]
        steps = result["slowest_steps_cpu_by_phase"][phase]
        assert outside in [s["cpu_ms"] for s in steps if "main_coroutine" not in s["step"]]
        assert outside <= result["max_loop_step_cpu_ms"][phase]
        # the stalls once every call had arrived are measured, within the phase's own
        after_arrival = result["max_loop_stall_ms_after_arrival"][phase]
        assert isinstance(after_arrival, float | int)
        assert 0 <= after_arrival <= result["loop_stalls_by_phase"][phase]["max_loop_stall_ms"]
    assert "once every call has arrived" in table.read_text()
    assert "start() after pod Ready" in table.read_text()
    assert (plots / "storm-cdf.png").stat().st_size > 0
