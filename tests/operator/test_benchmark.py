"""benchmarks/operator_storm.py end to end on a tiny storm: every figure produced, counts
consistent (never how fast anything was)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--operator-process", "--failover"]])
def test_tiny_operator_storm_produces_every_figure(tmp_path: Path, extra: list[str]) -> None:
    out = tmp_path / "storm.json"
    subprocess.run(
        [sys.executable, "-m", "benchmarks.operator_storm", "--users", "4",
         "--ready-spread", "0.5", "--resync-rounds", "1", "--json", str(out), *extra],
        cwd=REPO, env={**os.environ}, check=True, capture_output=True, timeout=240,
    )
    result = json.loads(out.read_text())
    assert result["started"] == result["stopped"] == 4
    assert result["start_after_ready_ms"]["n"] == 4
    assert result["children"] == {"servers": 4, "pods": 4, "duplicate_pods": 0,
                                  "orphaned_pods": 0}
    assert result["reconciles"] >= 4
    # hub and operator authenticate as their ServiceAccounts (shipped RBAC): flows of
    # workload-low; only the set-up and the census are the (exempt) admin's
    assert result["meta"]["auth"] and result["meta"]["flow_control"]
    assert result["flow_control"]["workload-low"]["admitted"] > 0
    assert set(result["flow_control"]) <= {"exempt", "workload-low"}
    if extra:
        assert result["failover"]["from"] != result["failover"]["to"]
    else:
        assert result["steady_reconciles_per_s"] > 0
        assert result["operator_bytes_per_server"] > 0
        # in-process replicas: every hop after Ready is traced for every server
        stages = result["start_after_ready_stages_ms"]
        assert stages and all(stage["n"] == 4 for stage in stages.values())
