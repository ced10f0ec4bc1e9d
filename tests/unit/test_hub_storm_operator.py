"""The pure parts of the whole-hub storm's operator mode: the config it gives the hub, the
template it installs, the figures it reads from the operator's ``/metrics``, and the sweep's
tables. The harness end to end (processes and all) is ``tests/e2e/test_hub_storm_benchmark.py``."""

from __future__ import annotations

import argparse
import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from async_kubespawner.operator.models import parse_template_spec
from async_kubespawner.operator.render import ServerContext, render
from benchmarks import hub_storm, hub_sweep

OPERATOR = "async_kubespawner.operator.spawner.OperatorSpawner"


def example_template() -> dict[str, Any]:
    return dict(yaml.safe_load(hub_storm.EXAMPLE_TEMPLATE.read_text()))


def args(spawner: str, **extra: Any) -> argparse.Namespace:
    return hub_storm.build_parser().parse_args(["--spawner", spawner, "--timeout", "90.5",
                                                *[str(x) for kv in extra.items() for x in kv]])


# -- which spawner means operator mode ------------------------------------------------------

@pytest.mark.parametrize("spawner", [OPERATOR, "async-kubernetes-operator"])
def test_the_operator_spawner_by_path_or_entry_point_means_operator_mode(spawner: str) -> None:
    assert hub_storm.is_operator_mode(spawner)


@pytest.mark.parametrize("spawner", ["async_kubespawner.KubeSpawner", "kubespawner.KubeSpawner",
                                     "OperatorSpawner", "mymodule.NotTheOperatorSpawner"])
def test_other_spawners_run_in_hub(spawner: str) -> None:
    assert not hub_storm.is_operator_mode(spawner)


def test_the_sweep_runs_the_same_operator_spawner_the_storm_recognises() -> None:
    assert hub_storm.is_operator_mode(hub_sweep.SPAWNERS["operator"][0])
    assert not hub_storm.is_operator_mode(hub_sweep.SPAWNERS["ours"][0])


# -- the hub's config -------------------------------------------------------------------------

def hub_config_text(spawner: str, template: str = "hub-storm") -> str:
    ports = {"public": 1, "hub": 2, "proxy_api": 3}
    return hub_storm.hub_config(args(spawner), Path("/tmp/state"), "t0ken", ports, template)


class FakeConfig:
    """Enough of traitlets' ``c`` to execute the config: records every attribute set."""

    def __init__(self) -> None:
        self.sections: dict[str, dict[str, Any]] = {}

    def __getattr__(self, section: str) -> Any:
        values = self.sections.setdefault(section, {})

        class Section:
            def __setattr__(self, name: str, value: Any) -> None:
                values[name] = value

        return Section()


def run_config(text: str) -> dict[str, dict[str, Any]]:
    config = FakeConfig()
    head = text.split("PROBE_PATH", 1)[0]  # the probe needs a running hub; the settings do not
    exec(compile(head, "jupyterhub_config.py", "exec"), {"get_config": lambda: config})
    return config.sections


def test_operator_mode_points_the_hub_at_the_installed_template() -> None:
    sections = run_config(hub_config_text(OPERATOR, template="hub-storm"))
    assert sections["JupyterHub"]["spawner_class"] == OPERATOR
    assert sections["OperatorSpawner"] == {
        "namespace": "default", "template": "hub-storm",
        # the stop wait follows --timeout (rounded up), as start_timeout does
        "stop_timeout": 91}
    assert sections["Spawner"]["start_timeout"] == 90.5


def test_in_hub_mode_has_no_operator_settings() -> None:
    sections = run_config(hub_config_text("async_kubespawner.KubeSpawner"))
    assert "OperatorSpawner" not in sections
    assert sections["KubeSpawner"]["namespace"] == "default"


def test_a_template_name_is_written_as_a_python_literal() -> None:
    sections = run_config(hub_config_text(OPERATOR, template='x"\nimport os'))
    assert sections["OperatorSpawner"]["template"] == 'x"\nimport os'


# -- the like-for-like template ----------------------------------------------------------------

def test_the_bench_template_is_the_example_without_its_pvc_and_service() -> None:
    example = example_template()
    original = copy.deepcopy(example)
    template = hub_storm.like_for_like_template(example)
    assert example == original  # the example is not changed
    assert template["metadata"] == {"name": hub_storm.BENCH_TEMPLATE}
    spec = template["spec"]
    assert "pvcs" in example["spec"] and "pvcs" not in spec
    assert "otherResources" in example["spec"] and "otherResources" not in spec
    assert [v["name"] for v in spec["variables"]] == ["image", "memory"]
    pod = spec["pods"][0]["spec"]
    assert "volumes" not in pod
    container = pod["containers"][0]
    assert "volumeMounts" not in container
    # what the stub servers and the token need is kept: the port and the env Secret
    assert container["ports"] == [{"name": "notebook-port", "containerPort": 8888}]
    assert container["envFrom"] == [{"secretRef": {"name": "{secret.name}"}}]
    assert spec["notebookPort"] == 8888


def test_the_bench_template_renders_one_pod_that_takes_the_hubs_secret() -> None:
    """The operator's own parser and renderer accept it: one child, the pod."""
    template = hub_storm.like_for_like_template(example_template())
    context = ServerContext(user="user00001", server="", namespace="default",
                            object_name="jupyter-user00001",
                            secret_name="jupyter-user00001-env")
    children = render(parse_template_spec(template), {}, context)
    assert [(c.kind, c.name) for c in children] == [("Pod", "jupyter-user00001")]
    container = children[0].manifest["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "jupyter-user00001-env"}}]
    assert container["image"] == "quay.io/jupyterhub/singleuser:5"


def test_the_written_template_is_what_the_hub_is_told(tmp_path: Path) -> None:
    path, name = hub_storm.write_operator_template(args(OPERATOR), tmp_path)
    assert name == hub_storm.BENCH_TEMPLATE
    assert yaml.safe_load(path.read_text())["metadata"]["name"] == name


def test_an_operator_template_file_is_used_as_it_is(tmp_path: Path) -> None:
    given = tmp_path / "mine.yaml"
    given.write_text(hub_storm.EXAMPLE_TEMPLATE.read_text())
    path, name = hub_storm.write_operator_template(
        args(OPERATOR, **{"--operator-template": given}), tmp_path / "state")
    assert (path, name) == (given, "default")


def test_an_operator_template_that_is_not_a_template_is_refused(tmp_path: Path) -> None:
    given = tmp_path / "pod.yaml"
    given.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n")
    with pytest.raises(SystemExit, match="not a NotebookTemplate"):
        hub_storm.write_operator_template(args(OPERATOR, **{"--operator-template": given}),
                                          tmp_path)


@pytest.mark.parametrize("argv, message", [
    (["--operator-replicas", "0"], "--operator-replicas must be at least 1"),
    (["--operator-template", "/nonexistent/t.yaml"], "--operator-template /nonexistent"),
    (["--baseline", "/nonexistent/b.json"], "--baseline /nonexistent"),
])
def test_bad_options_fail_before_anything_starts(
        argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert hub_storm.main(["--spawner", OPERATOR, *argv]) == 2
    assert message in capsys.readouterr().err


# -- the operator's metrics -------------------------------------------------------------------

def operator_metrics_text(ok: int, requeue: int, seconds: list[float], leader: int) -> str:
    """Text in the operator's exposition format, made by prometheus_client as the operator's
    ``/metrics`` makes it (same names and labels as async_kubespawner.operator.metrics)."""
    registry = CollectorRegistry()
    passes = Counter("kubespawner_operator_reconciles_total", "passes", ["outcome"],
                     registry=registry)
    duration = Histogram("kubespawner_operator_reconcile_duration_seconds", "time",
                         ["outcome"], registry=registry)
    lead = Gauge("kubespawner_operator_leader", "leader", registry=registry)
    passes.labels("ok").inc(ok)
    passes.labels("requeue").inc(requeue)
    for s in seconds:
        duration.labels("ok").observe(s)
    lead.set(leader)
    return generate_latest(registry).decode()


def test_reconcile_counts_and_time_are_read_from_the_exposition_format() -> None:
    parsed = hub_storm.parse_operator_metrics(operator_metrics_text(7, 3, [0.25, 0.5], 1))
    assert parsed["reconciles"] == 10
    assert parsed["reconciles_ok"] == 7 and parsed["reconciles_requeue"] == 3
    assert parsed["reconcile_seconds"] == pytest.approx(0.75)
    assert parsed["leader"] == 1
    # the _created timestamps and the bucket lines are not counted as passes
    assert set(parsed) == {"reconciles", "reconciles_ok", "reconciles_requeue",
                           "reconcile_seconds", "leader"}


def test_a_standby_adds_nothing_to_the_deployments_totals() -> None:
    leader = hub_storm.parse_operator_metrics(operator_metrics_text(5, 0, [0.1], 1))
    standby = hub_storm.parse_operator_metrics(operator_metrics_text(0, 0, [], 0))
    total = hub_storm.sum_metrics([leader, standby])
    assert total["reconciles"] == 5 and total["leader"] == 1


def test_reconcile_rates_per_phase_leave_out_passes_between_the_phases() -> None:
    snapshots = ({"reconciles": 10.0, "reconciles_ok": 10.0, "reconcile_seconds": 1.0},
                 {"reconciles": 310.0, "reconciles_ok": 300.0, "reconciles_requeue": 10.0,
                  "reconcile_seconds": 3.0},
                 {"reconciles": 330.0, "reconciles_ok": 320.0, "reconciles_requeue": 10.0,
                  "reconcile_seconds": 3.5},
                 {"reconciles": 430.0, "reconciles_ok": 410.0, "reconciles_requeue": 10.0,
                  "reconciles_error": 10.0, "reconcile_seconds": 4.0})
    figures = hub_storm.operator_figures(snapshots, (3.0, 2.0), 100)
    assert figures["reconciles"] == {"start_phase": 300, "stop_phase": 100}
    assert figures["reconciles_per_s"] == {"start_phase": 100.0, "stop_phase": 50.0,
                                           "storm": 80.0}
    assert figures["reconciles_per_cycle"] == 4.0
    assert figures["reconciles_by_outcome"] == {"error": 10, "ok": 400, "requeue": 10}
    assert figures["reconcile_busy_s"] == 3.0


def test_reconcile_rates_of_an_empty_phase_are_none_not_a_division_by_zero() -> None:
    zero = {"reconciles": 0.0}
    figures = hub_storm.operator_figures((zero, zero, zero, zero), (0.0, 0.0), 0)
    assert figures["reconciles_per_s"] == {"start_phase": None, "stop_phase": None,
                                           "storm": None}


# -- the extra hop ----------------------------------------------------------------------------

def run_result(p50: float, p99: float, stop50: float, hub_cpu: float,
               operator_cpu: float | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "meta": {"spawner": "async_kubespawner.KubeSpawner"},
        "start_to_reachable_ms": {"p50": p50, "p99": p99},
        "stop_ms": {"p50": stop50, "p99": None}, "hub_cpu_ms_per_cycle": hub_cpu}
    if operator_cpu is not None:
        result["operator_cpu_ms_per_cycle"] = operator_cpu
    return result


def test_the_extra_hop_is_operator_minus_in_hub_with_the_operators_cpu_added() -> None:
    hop = hub_storm.hop_overhead(run_result(100.0, 400.0, 50.0, 30.0),
                                 run_result(130.5, 380.0, 80.0, 20.0, operator_cpu=12.5))
    assert hop["baseline_spawner"] == "async_kubespawner.KubeSpawner"
    assert hop["start_to_reachable_ms"] == {"p50": 30.5, "p99": -20.0}
    assert hop["stop_ms"] == {"p50": 30.0, "p99": None}  # a missing percentile stays missing
    assert hop["control_plane_cpu_ms_per_cycle"] == {"in_hub": 30.0, "operator_mode": 32.5}
    rows = "\n".join(hub_storm.hop_rows(hop))
    assert "| +30.5 / -20.0 |" in rows and "| +30.0 / - |" in rows


# -- the census -------------------------------------------------------------------------------

def pod(name: str, phase: str, env_from: Sequence[str] = (),
        key_refs: Sequence[str] = ()) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "notebook"}
    if env_from:
        container["envFrom"] = [{"secretRef": {"name": s}} for s in env_from]
    if key_refs:
        container["env"] = [{"name": "T", "valueFrom": {"secretKeyRef": {"name": s, "key": "t"}}}
                            for s in key_refs] + [{"name": "PLAIN", "value": "x"}]
    return {"metadata": {"name": name}, "spec": {"containers": [container]},
            "status": {"phase": phase}}


def test_the_census_counts_pods_whose_env_secret_exists() -> None:
    secrets = [{"metadata": {"name": "a-env"}}, {"metadata": {"name": "b-env"}}]
    pods = [pod("a", "Running", env_from=["a-env"]),
            pod("b", "Running", key_refs=["b-env"]),
            pod("c", "Pending", env_from=["c-env"]),          # its Secret is missing
            pod("d", "Running", env_from=["a-env", "gone"]),  # one of two is missing
            pod("e", "Running")]                              # no Secret at all
    counts = hub_storm.census(pods, secrets, servers=[{}, {}])
    assert counts == {"pods": 5, "pods_running": 4, "secrets": 2,
                      "pods_env_from_existing_secret": 2, "notebookservers": 2}
    assert "notebookservers" not in hub_storm.census(pods, secrets, servers=None)


def test_the_api_server_is_read_from_the_kubeconfig() -> None:
    text = yaml.safe_dump({"clusters": [{"name": "sim", "cluster": {
        "server": "http://127.0.0.1:4321"}}]})
    assert hub_storm.api_server(text) == "http://127.0.0.1:4321"


# -- the sweep --------------------------------------------------------------------------------

def test_the_sweep_takes_known_distinct_spawners_in_order() -> None:
    assert hub_sweep.parse_spawners("ours, operator,upstream") == ["ours", "operator", "upstream"]
    for bad in ("ours,ours", "ours,nope", "", ","):
        with pytest.raises(ValueError, match="--spawners"):
            hub_sweep.parse_spawners(bad)


def sweep_result(p50: float, cpu: float, **extra: Any) -> dict[str, Any]:
    return {"failed": 0, "start_to_reachable_ms": {"p50": p50, "p99": p50 * 2},
            "stop_ms": {"p50": 5.0, "p99": 9.0}, "hub_cpu_ms_per_cycle": cpu,
            "hub_longest_stall_ms": {"start_phase": 1.0, "stop_phase": 2.0},
            "meta": {"load_avg_before": [1.234, 1.0, 1.0]}, **extra}


def test_the_sweep_table_shows_operator_figures_the_hop_and_reused_runs() -> None:
    operator = sweep_result(
        120.0, 20.0, operator_cpu_ms_per_cycle=8.0,
        operator={"reconciles_per_s": {"storm": 55.5}},
        vs_baseline=hub_storm.hop_overhead(sweep_result(100.0, 30.0),
                                           sweep_result(120.0, 20.0,
                                                        operator_cpu_ms_per_cycle=8.0)))
    results = {"ours": {100: sweep_result(100.0, 30.0)},
               "operator mode": {100: operator},
               "upstream 7.1": {100: sweep_result(900.0, 40.0)}}
    text = hub_sweep.table(results, reused=["upstream 7.1"])
    lines = text.splitlines()
    assert any(line.startswith("| 100 | operator mode | 0 | 120.0 / 240.0 |")
               and "| 20.0 | 8.0 | 55.5 |" in line for line in lines)
    assert any(line.startswith("| 100 | ours |") and "| 30.0 | - | - |" in line
               and line.endswith("| 1.23 |") for line in lines)
    assert any(line.startswith("| 100 | upstream 7.1 (earlier run) |") for line in lines)
    assert "| 100 | +20.0 / +40.0 | +0.0 / +0.0 | 30.0 / 28.0 |" in lines


def test_a_failed_run_is_a_row_of_dashes_with_the_same_number_of_columns() -> None:
    text = hub_sweep.table({"operator mode": {100: {"failed": 100}}})
    header, _, row = text.splitlines()[:3]
    assert row.startswith("| 100 | operator mode | 100 |")
    assert row.count("|") == header.count("|")


def test_the_sweep_plot_draws_hub_plus_operator_cpu(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt
    import numpy as np

    results = {"ours": {100: sweep_result(100.0, 30.0), 1000: sweep_result(200.0, 35.0)},
               "operator mode": {100: sweep_result(120.0, 20.0, operator_cpu_ms_per_cycle=8.0),
                                 1000: sweep_result(250.0, 25.0, operator_cpu_ms_per_cycle=9.0)}}
    path = tmp_path / "sweep.png"
    hub_sweep.plot(results, path)
    assert path.read_bytes()[:4] == b"\x89PNG"
    cpu_panel = plt.gcf().axes[2]
    lines = {line.get_label(): [float(y) for y in np.asarray(line.get_ydata())]
             for line in cpu_panel.get_lines()}
    plt.close("all")
    assert lines == {"ours: hub": [30.0, 35.0], "operator mode: hub": [20.0, 25.0],
                     "operator mode: hub + operator": [28.0, 34.0]}


def test_a_run_where_most_users_failed_is_drawn_only_as_its_failures(tmp_path: Path) -> None:
    """Upstream at 5,000 users: 4 servers of 5,000, whose latencies and CPU per cycle would
    draw as the fastest run of all. Its latency and CPU points are left out; the failures
    panel shows every run's failed starts and stops, as a share of its users."""
    import matplotlib.pyplot as plt
    import numpy as np

    mostly_failed = sweep_result(50.0, 60000.0) | {"failed": 4996}
    results = {"ours": {100: sweep_result(100.0, 30.0), 5000: sweep_result(900.0, 80.0)
                        | {"failed": 326}},
               "upstream 7.1": {100: sweep_result(120.0, 40.0), 5000: mostly_failed}}
    hub_sweep.plot(results, tmp_path / "sweep.png")
    panels = plt.gcf().axes

    def drawn(panel: int) -> dict[str, list[float]]:
        # each line's label is the string the plot gave it (matplotlib types it as object)
        return {cast(str, line.get_label()): [float(x) for x in np.asarray(line.get_xdata())]
                for line in panels[panel].get_lines()}

    failures = {line.get_label(): [round(float(y), 2) for y in np.asarray(line.get_ydata())]
                for line in panels[3].get_lines()}
    start, cpu = drawn(0), drawn(2)
    plt.close("all")
    assert start["ours p50"] == [100.0, 5000.0] and start["upstream 7.1 p50"] == [100.0]
    assert cpu == {"ours: hub": [100.0, 5000.0], "upstream 7.1: hub": [100.0]}
    assert failures == {"ours": [0.0, 6.52], "upstream 7.1": [0.0, 99.92]}
    assert hub_sweep.drawn({"start_to_reachable_ms": {}, "failed": 50}, 100)
    assert not hub_sweep.drawn({"start_to_reachable_ms": {}, "failed": 51}, 100)
    assert not hub_sweep.drawn({"failed": 0}, 100)  # a run that wrote no figures


def test_the_median_round_is_chosen_by_start_p50_and_a_failed_round_is_the_slowest() -> None:
    runs = [sweep_result(300.0, 1.0), {"failed": 100}, sweep_result(100.0, 2.0)]
    assert hub_sweep.median_run(runs)["hub_cpu_ms_per_cycle"] == 1.0  # 100, 300, failed
    assert hub_sweep.median_run(runs[:1] + runs[2:])["hub_cpu_ms_per_cycle"] == 2.0  # lower middle


def test_every_rounds_extra_hop_is_listed_with_the_median() -> None:
    def operator_round(start: float, stop: float) -> dict[str, Any]:
        return {"vs_baseline": {"start_to_reachable_ms": {"p50": start, "p99": start},
                                "stop_ms": {"p50": stop, "p99": None}}}

    rounds = {100: [operator_round(10.0, -4.0), operator_round(-30.0, 2.0), {"failed": 1},
                    operator_round(50.0, 6.0)]}
    lines = hub_sweep.table({"ours": {}}, rounds=rounds).splitlines()
    assert "| 100 | 3 | - | - |" in lines
    assert "| 100 | median | +10.0 / +10.0 | +2.0 / - |" in lines
    # one round is no round-by-round table
    assert "median" not in hub_sweep.table({"ours": {}}, rounds={100: rounds[100][:1]})


def test_result_paths_name_the_round() -> None:
    out = Path("/r")
    assert hub_sweep.result_path(out, "operator", 100) == out / "hub-storm-operator-100.json"
    assert hub_sweep.result_path(out, "ours", 1000, 2) == out / "hub-storm-ours-1000-r2.json"


def test_the_median_round_becomes_the_plain_named_json_and_markdown(tmp_path: Path) -> None:
    for k in (1, 2):
        hub_sweep.result_path(tmp_path, "ours", 10, k).write_text(f'{{"round": {k}}}')
        hub_sweep.result_path(tmp_path, "ours", 10, k).with_suffix(".md").write_text(f"# {k}")
    hub_sweep.result_path(tmp_path, "ours", 10).with_suffix(".md").write_text("# stale")
    hub_sweep.copy_round(tmp_path, "ours", 10, 2)
    assert (tmp_path / "hub-storm-ours-10.json").read_text() == '{"round": 2}'
    assert (tmp_path / "hub-storm-ours-10.md").read_text() == "# 2"


def test_with_rounds_the_hop_table_gives_each_figures_median_over_the_rounds() -> None:
    def hop(start: float, cpu: float) -> dict[str, Any]:
        return {"start_to_reachable_ms": {"p50": start, "p99": start + 1},
                "stop_ms": {"p50": None, "p99": 1.0},
                "control_plane_cpu_ms_per_cycle": {"in_hub": cpu, "operator_mode": cpu + 1}}

    rounds = [{"vs_baseline": hop(50.0, 30.0)}, {"vs_baseline": hop(-10.0, 10.0)},
              {"vs_baseline": hop(20.0, 20.0)}]
    assert hub_sweep.median_hop([r["vs_baseline"] for r in rounds]) == hop(20.0, 20.0) | {
        "stop_ms": {"p50": None, "p99": 1.0}}
    results = {"operator mode": {100: rounds[0]}}  # the table's row is one round ...
    lines = hub_sweep.table(results, rounds={100: rounds}).splitlines()
    assert "| 100 | +20.0 / +21.0 | - / +1.0 | 20.0 / 21.0 |" in lines  # ... the hop, the median
