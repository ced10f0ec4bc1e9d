"""``benchmarks.cycle_floor``: every part measured, and the sums made from those parts.

No timing assertions: the figures are whatever this machine gives. What can fail is that a
part is missing, that the stand-in server does not answer (every request is awaited to its
answer, so a run that completes got one per request), or that a sum is not the parts'.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import cycle_floor

REPO = Path(__file__).resolve().parents[2]


def test_the_floor_is_the_sum_of_its_parts() -> None:
    parts = {"http_us": 300.0, "http_protocol_us": 40.0, "wake_us": 10.0,
             "spawner_start_us": 500.0, "spawner_stop_us": 60.0, "watch_us_per_cycle": 400.0}
    result = cycle_floor.sums(parts, steps_per_cycle=50)
    # 2 x 300 + 500 + 60 + 400 + 50 x 10 = 2,060 us
    assert result["floor_ms_per_cycle"] == pytest.approx(2.06)
    assert result["http_share_of_target"] == pytest.approx(0.4)
    assert result["drain_floor_ms"] == pytest.approx(300.0)
    # 1,000 x (300 + 60) us: the deletes and the spawner's own stops
    assert result["drain_floor_ms_with_stop"] == pytest.approx(360.0)
    assert result["drain_floor_ms_protocol"] == pytest.approx(40.0)
    assert result["targets"] == {"ms_per_cycle": 1.5, "drain_ms": 200.0}


def test_parts_left_out_are_not_counted() -> None:
    parts = {"http_us": 300.0, "http_protocol_us": 40.0, "wake_us": 10.0}
    result = cycle_floor.sums(parts, steps_per_cycle=0)
    assert result["floor_ms_per_cycle"] == pytest.approx(0.6)
    assert result["drain_floor_ms_with_stop"] == pytest.approx(result["drain_floor_ms"])


def test_the_benchmark_measures_each_part_against_its_own_server(tmp_path: Path) -> None:
    out = tmp_path / "floor.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "simulator")])}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.cycle_floor", "--requests", "40", "--concurrency",
         "4", "--rounds", "1", "--spawners", "5", "--watch-users", "0", "--json", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    parts = result["parts"]
    for key in ("http_us", "http_protocol_us", "wake_us", "spawner_start_us", "spawner_stop_us"):
        assert parts[key] > 0, key
    assert "watch_us_per_cycle" not in parts
    assert result["left_out"] == ["watch"]
    assert result == {**result, **cycle_floor.sums(parts, result["steps_per_cycle"])}
