"""``python -m benchmarks.hub_storm`` runs a real hub, proxy and simulator and reports figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from devtools import local_stack

pytestmark = pytest.mark.e2e


def test_a_small_whole_hub_storm_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "storm.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.hub_storm", "--users", "3", "--json", str(out)],
        capture_output=True, text=True, timeout=300, env=local_stack.subprocess_env(),
        cwd=local_stack.PACKAGE_ROOT,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["failed"] == 0
    assert result["start_to_reachable_ms"]["n"] == 3 and result["stop_ms"]["n"] == 3
    assert result["start_to_reachable_ms"]["p50"] > 0
    assert result["hub_cpu_ms_per_cycle"] > 0
    phases = result["hub_time_by_phase"]
    assert phases["spawn (spawner start, per server)"]["count"] == 3
    assert phases["proxy route add"]["count"] == 3
    assert phases["database (every statement and commit)"]["count"] > 0
    assert result["meta"]["versions"]["jupyterhub"]
