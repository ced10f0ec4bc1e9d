"""``python -m benchmarks.hub_storm`` runs a real hub, proxy and simulator and reports figures."""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import hub_storm
from devtools import local_stack

pytestmark = pytest.mark.e2e


def test_a_small_whole_hub_storm_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "storm.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.hub_storm", "--users", "3", "--json", str(out),
         "--db-dir", str(tmp_path), "--keep-state"],
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
    shutil.rmtree(result["meta"]["state_dir"], ignore_errors=True)
    # The driver played its users with a token the hub generated for DRIVER_USER (one hash
    # round per lookup), not with the config's service token (16,384): the hub recorded
    # that token's use, and the service token was used only to ask for it.
    (database,) = tmp_path.glob("*.sqlite")
    with contextlib.closing(sqlite3.connect(database)) as db:
        tokens = db.execute(
            "SELECT users.name, services.name, api_tokens.hashed, api_tokens.last_activity "
            "FROM api_tokens LEFT JOIN users ON api_tokens.user_id = users.id "
            "LEFT JOIN services ON api_tokens.service_id = services.id").fetchall()
    # JupyterHub stores "algorithm:rounds:salt:digest"
    used = {(user, service): int(hashed.split(":")[1]) for user, service, hashed, last in tokens
            if last is not None}
    assert used[(hub_storm.DRIVER_USER, None)] == 1
    assert used[(None, "storm")] == 16384
    assert result["meta"]["driver_token"] == "generated"


def test_a_small_operator_mode_storm_reports_the_operators_figures(tmp_path: Path) -> None:
    """Operator mode: the hub's OperatorSpawner, one operator process, its pods served as
    stub servers; the in-hub run of the same size is the baseline for the extra hop."""
    baseline = tmp_path / "in-hub.json"
    baseline.write_text(json.dumps({
        "meta": {"spawner": "async_kubespawner.KubeSpawner"},
        "start_to_reachable_ms": {"p50": 1.0, "p99": 2.0}, "stop_ms": {"p50": 1.0, "p99": 2.0},
        "hub_cpu_ms_per_cycle": 1.0}))
    out = tmp_path / "storm.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.hub_storm", "--spawner", "async-kubernetes-operator",
         "--users", "3", "--baseline", str(baseline), "--json", str(out)],
        capture_output=True, text=True, timeout=300, env=local_stack.subprocess_env(),
        cwd=local_stack.PACKAGE_ROOT,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["failed"] == 0
    assert result["start_to_reachable_ms"]["n"] == 3 and result["stop_ms"]["n"] == 3
    # the operator made the pods from the template; each takes the env Secret the hub made
    assert result["cluster_at_peak"] == {"pods": 3, "pods_running": 3, "secrets": 3,
                                         "pods_env_from_existing_secret": 3,
                                         "notebookservers": 3}
    operator = result["operator"]
    assert operator["reconciles"]["start_phase"] >= 3 and operator["reconciles"]["stop_phase"] >= 3
    assert operator["reconciles_by_outcome"].get("error", 0) == 0
    assert operator["reconciles_per_s"]["storm"] > 0
    assert result["operator_cpu_ms_per_cycle"] > 0
    assert result["meta"]["operator_replicas"] == 1
    hop = result["vs_baseline"]
    assert hop["start_to_reachable_ms"]["p50"] == round(
        result["start_to_reachable_ms"]["p50"] - 1.0, 3)
    assert hop["control_plane_cpu_ms_per_cycle"]["operator_mode"] == pytest.approx(
        result["hub_cpu_ms_per_cycle"] + result["operator_cpu_ms_per_cycle"], abs=0.01)
