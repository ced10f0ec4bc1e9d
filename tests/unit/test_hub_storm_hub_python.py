"""The whole-hub benchmark's hub in another Python (``--hub-python``, ``make bench-hub
HUB_ENV=z2jh``): checked before anything starts, passed on by the sweep, and named in the
results, so a run on the Zero to JupyterHub image's JupyterHub says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import hub_storm, hub_sweep

REPO = Path(__file__).resolve().parents[2]


def fake_python(tmp_path: Path, body: str) -> Path:
    """An executable that stands in for an interpreter (a shell script)."""
    path = tmp_path / "python"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


def test_this_python_can_run_the_hub() -> None:
    assert hub_storm.hub_python_problem(Path(sys.executable)) is None


def test_a_missing_interpreter_is_named(tmp_path: Path) -> None:
    assert hub_storm.hub_python_problem(tmp_path / "nope") == "no such executable"


def test_a_file_that_is_not_executable_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "python"
    path.write_text("")
    assert hub_storm.hub_python_problem(path) == "no such executable"


def test_an_interpreter_without_jupyterhub_is_refused(tmp_path: Path) -> None:
    assert hub_storm.hub_python_problem(fake_python(tmp_path, "exit 1")) == (
        "cannot import jupyterhub")


def test_a_bad_hub_python_fails_before_any_process_starts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    def no_run(_args: Any) -> Any:
        raise AssertionError("the storm must not start")

    monkeypatch.setattr(hub_storm, "run", no_run)
    assert hub_storm.main(["--hub-python", str(tmp_path / "nope")]) == 2
    assert f"--hub-python {tmp_path / 'nope'}: no such executable" in capsys.readouterr().err


def test_a_relative_hub_python_is_made_absolute_but_not_resolved(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The processes run in a state directory; a virtualenv's python is a symlink whose
    # target would not see the virtualenv's packages.
    real = fake_python(tmp_path, "exit 0")
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    link = tmp_path / "venv" / "bin" / "python"
    link.symlink_to(real)
    seen: list[Path] = []

    async def record(args: Any) -> dict[str, Any]:
        seen.append(args.hub_python)
        raise SystemExit(0)

    monkeypatch.setattr(hub_storm, "run", record)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        hub_storm.main(["--hub-python", "venv/bin/python"])
    assert seen == [link]
    assert seen[0].is_absolute()


def test_versions_are_read_by_the_hubs_python(tmp_path: Path) -> None:
    # A stand-in interpreter that prints what the real one would: what the hub's
    # Python says is what the results report, not what this process imports.
    answer = {"python": "3.13.0", "jupyterhub": "5.5.0"}
    python = fake_python(tmp_path, f"echo '{json.dumps(answer)}'")
    assert hub_storm.versions(dict(os.environ), python) == answer


def test_versions_of_this_python_name_it_and_jupyterhub() -> None:
    found = hub_storm.versions(dict(os.environ))
    assert found["python"] == ".".join(map(str, sys.version_info[:3]))
    import jupyterhub

    assert found["jupyterhub"] == jupyterhub.__version__


def test_the_hub_line_names_jupyterhub_and_python() -> None:
    meta = {"versions": {"jupyterhub": "5.5.0", "python": "3.13.0"}}
    assert hub_storm.hub_versions_line(meta) == "JupyterHub 5.5.0 on Python 3.13.0"
    assert hub_storm.hub_versions_line({"versions": {"jupyterhub": "6.1.1"}}) == (
        "JupyterHub 6.1.1")
    assert hub_storm.hub_versions_line({}) == ""


def storm_result(jupyterhub: str, python: str) -> dict[str, Any]:
    return {"failed": 0, "start_to_reachable_ms": {"p50": 1.0, "p99": 2.0, "max": 2.0},
            "stop_ms": {"p50": 1.0, "p99": 2.0, "max": 2.0}, "hub_cpu_ms_per_cycle": 40.0,
            "hub_longest_stall_ms": {"start_phase": 1.0, "stop_phase": 2.0},
            "meta": {"load_avg_before": [0.5, 0.5, 0.5],
                     "versions": {"jupyterhub": jupyterhub, "python": python}}}


def test_the_sweep_table_is_captioned_with_the_hubs_versions() -> None:
    results = {"ours": {100: storm_result("5.5.0", "3.13.0")},
               "upstream 7.1": {100: storm_result("5.5.0", "3.13.0")}}
    lines = hub_sweep.table(results).splitlines()
    assert lines[0] == "Hub: JupyterHub 5.5.0 on Python 3.13.0."
    assert lines[2].startswith("| users | spawner |")


def test_a_sweep_of_several_hubs_names_each() -> None:
    results = {"ours": {100: storm_result("5.5.0", "3.13.0"),
                        1000: storm_result("6.1.1", "3.11.7")}}
    assert hub_sweep.table(results).splitlines()[0] == (
        "Hub: JupyterHub 5.5.0 on Python 3.13.0, JupyterHub 6.1.1 on Python 3.11.7.")


def test_the_sweep_passes_the_hub_python_to_every_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    argvs: list[list[str]] = []

    def record(argv: list[str], check: bool) -> subprocess.CompletedProcess[str]:
        argvs.append(argv)
        return subprocess.CompletedProcess(argv, 0)

    monkeypatch.setattr(hub_sweep.subprocess, "run", record)
    hub_python = Path("/opt/z2jh/bin/python")
    hub_sweep.run_one("ours", 10, tmp_path, [], hub_python=hub_python)
    hub_sweep.run_one("ours", 10, tmp_path, [])
    assert argvs[0][argvs[0].index("--hub-python") + 1] == str(hub_python)
    assert "--hub-python" not in argvs[1]


def test_the_sweep_refuses_a_bad_hub_python_before_running(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        hub_sweep.main(["--users", "10", "--spawners", "ours", "--out", str(tmp_path),
                        "--hub-python", str(tmp_path / "nope")])
    assert "--hub-python" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_make_builds_the_matrix_hub_and_writes_to_its_own_folder() -> None:
    dry = subprocess.run(["make", "-n", "bench-hub", "HUB_ENV=z2jh", "USERS=10"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    assert "MATRIX_BUILD_ONLY=1" in dry and "compat-matrix.sh z2jh" in dry
    assert "--out benchmarks/results/hub/z2jh" in dry
    assert "--hub-python .venv-matrix/z2jh/bin/python" in dry
    plain = subprocess.run(["make", "-n", "bench-hub", "USERS=10"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout
    assert "--hub-python" not in plain and "compat-matrix" not in plain
