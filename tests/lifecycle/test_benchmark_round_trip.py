"""The Kubernetes-layer benchmarks end to end: request round trips against the simulator,
and a recorded watch replayed through the reflector.

No timing assertions: every figure is produced, for every round (a create or a delete
that fails raises, so a run that completes made and deleted every pod).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_round_trip_benchmark_produces_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "rt.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "simulator")])}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.request_round_trip", "--requests", "20",
         "--concurrency", "5", "--rounds", "2", "--json", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert (result["requests"], result["concurrency"], result["rounds"]) == (20, 5, 2)
    assert len(result["per_round"]) == 2
    for key in ("create_cpu_us", "delete_cpu_us", "create_wall_ms", "delete_wall_ms"):
        assert result[key] > 0
        assert all(r[key] > 0 for r in result["per_round"])


def test_watch_path_benchmark_replays_a_recording(tmp_path: Path) -> None:
    """A recording of two pod lines and one Event line, replayed through the watch loop."""
    pod = {"metadata": {"name": "p", "namespace": "default", "uid": "u", "resourceVersion": "2",
                        "labels": {"component": "singleuser-server"}},
           "spec": {"containers": [{"name": "notebook"}]}, "status": {"phase": "Pending"}}
    event = {"metadata": {"name": "e", "namespace": "default", "uid": "eu",
                          "resourceVersion": "3"},
             "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
             "reason": "Scheduled", "message": "m"}
    recording = tmp_path / "lines.jsonl"
    recording.write_text("\n".join(json.dumps(x) for x in [
        ["pods", json.dumps({"type": "ADDED", "object": pod})],
        ["pods", json.dumps({"type": "DELETED", "object": pod})],
        ["events", json.dumps({"type": "ADDED", "object": event})],
    ]) + "\n")
    out = tmp_path / "wp.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "simulator")])}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.watch_path", "--lines", str(recording), "--users",
         "1", "--rounds", "2", "--json", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["lines"] == {"pods": 2, "events": 1}
    assert result["cpu_ms_per_cycle_best"] <= result["cpu_ms_per_cycle_median"]


def test_round_trip_benchmark_times_the_client_alone(tmp_path: Path) -> None:
    out = tmp_path / "instant.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "simulator")])}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.request_round_trip", "--instant", "--requests",
         "50", "--rounds", "1", "--json", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["instant"] is True and len(result["per_round"]) == 1
    assert result["create_cpu_us"] > 0 and result["delete_cpu_us"] > 0
