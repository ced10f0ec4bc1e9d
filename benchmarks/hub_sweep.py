"""``make bench-hub``: the whole-hub storm at several sizes, ours, operator mode and upstream.

    python -m benchmarks.hub_sweep --users 100,1000,5000 --out benchmarks/results/hub \
        [--spawners ours,operator,upstream] [--reuse upstream]

Each (spawner, size) is one ``benchmarks.hub_storm`` run in a fresh set of processes,
the spawners one after the other at each size, so all see the same machine at nearly the
same moment. ``operator`` is this package's operator mode (the hub's OperatorSpawner and
one operator process); its run gets the in-hub run of the same size as its baseline, so
its JSON and the table say what the extra hop costs. Upstream KubeSpawner 7.1 is
installed into a side directory (``--upstream-dir``, made with ``pip install --no-deps
--target``) and put on the hub's PYTHONPATH only: this package never imports it.
``--reuse LABELS`` takes those spawners' JSON from an earlier run in ``--out`` instead of
running them again (the table says so). Writes one JSON per run, ``hub-sweep.md`` (the
tables) and ``hub-sweep.png`` (start and stop latencies, CPU per cycle, against users).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.hub_storm import hub_python_problem, hub_versions_line

OURS = "async_kubespawner.KubeSpawner"
UPSTREAM = "kubespawner.KubeSpawner"
UPSTREAM_PIN = "jupyterhub-kubespawner==7.1.0"


def ensure_upstream(directory: Path) -> None:
    if (directory / "kubespawner").is_dir():
        return
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
         str(directory), UPSTREAM_PIN],
        check=True,
    )


OPERATOR = "async_kubespawner.operator.spawner.OperatorSpawner"
#: label on the command line -> (spawner class, label in the tables and the plot)
SPAWNERS = {"ours": (OURS, "ours"), "operator": (OPERATOR, "operator mode"),
            "upstream": (UPSTREAM, "upstream 7.1")}


def result_path(out: Path, label: str, users: int, round_number: int = 0) -> Path:
    """``hub-storm-LABEL-USERS.json``; with rounds, ``...-rK.json`` for round K."""
    suffix = f"-r{round_number}" if round_number else ""
    return out / f"hub-storm-{label}-{users}{suffix}.json"


def copy_round(out: Path, label: str, users: int, round_number: int) -> None:
    """Make round ``round_number``'s JSON and Markdown the plain-named ones of the size."""
    for suffix in (".json", ".md"):
        source = result_path(out, label, users, round_number).with_suffix(suffix)
        target = result_path(out, label, users).with_suffix(suffix)
        if source.exists():
            target.write_text(source.read_text())
        else:
            target.unlink(missing_ok=True)


def median_run(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The round whose start -> reachable p50 is the median (the lower one of two middles);
    a failed round (no figures) counts as the slowest."""
    def key(run: dict[str, Any]) -> float:
        p50 = (run.get("start_to_reachable_ms") or {}).get("p50")
        return float("inf") if p50 is None else float(p50)

    ordered = sorted(runs, key=key)
    return ordered[(len(ordered) - 1) // 2]


def parse_spawners(text: str) -> list[str]:
    """``ours,operator,upstream`` -> the labels in that order (each known, none twice)."""
    labels = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in labels if t not in SPAWNERS]
    if unknown or not labels or len(set(labels)) != len(labels):
        raise ValueError(f"--spawners {text!r}: a comma-separated list of distinct "
                         f"{', '.join(SPAWNERS)}")
    return labels


def run_one(label: str, users: int, out: Path, extra: list[str],
            baseline: Path | None = None, round_number: int = 0,
            hub_python: Path | None = None) -> dict[str, Any]:
    target = result_path(out, label, users, round_number)
    argv = [sys.executable, "-m", "benchmarks.hub_storm", "--spawner", SPAWNERS[label][0],
            "--users", str(users), "--json", str(target),
            "--markdown", str(target.with_suffix(".md"))]
    if hub_python is not None:
        argv += ["--hub-python", str(hub_python)]
    for path in extra:
        argv += ["--extra-path", path]
    if baseline is not None and baseline.exists():
        argv += ["--baseline", str(baseline)]
    target.unlink(missing_ok=True)  # a failed run must not leave an earlier run's figures
    subprocess.run(argv, check=False)
    return dict(json.loads(target.read_text())) if target.exists() else {"failed": users}


def hub_lines(results: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    """Each distinct "JupyterHub X on Python Y" the runs' hubs ran (a sweep may mix runs)."""
    return sorted({line for by_size in results.values() for r in by_size.values()
                   if r and (line := hub_versions_line(r.get("meta") or {}))})


def table(results: dict[str, dict[int, dict[str, Any]]], reused: Sequence[str] = (),
          rounds: dict[int, list[dict[str, Any]]] | None = None) -> str:
    """The figures of every (size, spawner); then the extra hop of operator mode at each
    size; with ``rounds`` (size -> each round's operator-mode result, several rounds), the
    extra hop of every round and their median."""
    hubs = hub_lines(results)
    rows = [f"Hub: {', '.join(hubs)}.", ""] if hubs else []
    rows += ["| users | spawner | failed | start -> reachable p50 / p99 (ms) | stop p50 / p99 "
            "(ms) | hub CPU / cycle (ms) | operator CPU / cycle (ms) | reconciles/s | "
            "longest hub stall start / stop (ms) | load before |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    sizes = sorted({n for by_size in results.values() for n in by_size})
    for n in sizes:
        for label, by_size in results.items():
            r = by_size.get(n)
            if r is None and label in reused:
                continue  # no earlier run of this size: nothing to show, nothing failed
            name = f"{label} (earlier run)" if label in reused else label
            if not r or "start_to_reachable_ms" not in r:
                rows.append(f"| {n} | {name} | {r.get('failed') if r else '-'} |"
                            + " - |" * 7)
                continue
            s, t, stall = r["start_to_reachable_ms"], r["stop_ms"], r["hub_longest_stall_ms"]
            operator = r.get("operator") or {}
            rate = (operator.get("reconciles_per_s") or {}).get("storm", "-")
            load = (r.get("meta") or {}).get("load_avg_before") or ["-"]
            rows.append(
                f"| {n} | {name} | {r['failed']} | {s['p50']} / {s['p99']} | "
                f"{t['p50']} / {t['p99']} | {r['hub_cpu_ms_per_cycle']} | "
                f"{r.get('operator_cpu_ms_per_cycle', '-')} | {rate} | "
                f"{stall['start_phase']} / {stall['stop_phase']} | "
                f"{load[0] if isinstance(load[0], str) else round(load[0], 2)} |")
    hops = [(n, r["vs_baseline"]) for n, r in sorted(results.get("operator mode", {}).items())
            if "vs_baseline" in r]
    several = {n for n, runs in (rounds or {}).items() if len(runs) > 1}
    hops = [(n, median_hop([r.get("vs_baseline") for r in (rounds or {})[n]])
             if n in several else hop) for n, hop in hops]
    if hops:
        how = ("the median over the rounds of each round's difference" if several
               else "same size, same sweep")
        rows += ["", f"The extra hop (operator mode minus ours; {how}):", "",
                 "| users | start -> reachable p50 / p99 (ms) | stop p50 / p99 (ms) | "
                 "CPU / cycle: ours hub / operator mode hub + operator (ms) |",
                 "|---:|---:|---:|---:|"]
        for n, hop in hops:
            s, t = hop["start_to_reachable_ms"], hop["stop_ms"]
            cpu = hop["control_plane_cpu_ms_per_cycle"]
            rows.append(f"| {n} | {_signed(s['p50'])} / {_signed(s['p99'])} | "
                        f"{_signed(t['p50'])} / {_signed(t['p99'])} | "
                        f"{cpu['in_hub']} / {cpu['operator_mode']} |")
    if rounds and any(len(runs) > 1 for runs in rounds.values()):
        rows += ["", "Every round (each operator-mode run minus the in-hub run just before it):",
                 "", "| users | round | start -> reachable p50 / p99 (ms) | stop p50 / p99 (ms) |",
                 "|---:|---:|---:|---:|"]
        for n, runs in sorted(rounds.items()):
            diffs = [r.get("vs_baseline") for r in runs]
            for k, hop in enumerate(diffs, 1):
                if hop is None:
                    rows.append(f"| {n} | {k} | - | - |")
                    continue
                s, t = hop["start_to_reachable_ms"], hop["stop_ms"]
                rows.append(f"| {n} | {k} | {_signed(s['p50'])} / {_signed(s['p99'])} | "
                            f"{_signed(t['p50'])} / {_signed(t['p99'])} |")
            medians = [_median([(h or {}).get(key, {}).get(p) for h in diffs])
                       for key in ("start_to_reachable_ms", "stop_ms") for p in ("p50", "p99")]
            rows.append(f"| {n} | median | {_signed(medians[0])} / {_signed(medians[1])} | "
                        f"{_signed(medians[2])} / {_signed(medians[3])} |")
    return "\n".join(rows) + "\n"


def median_hop(hops: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """Each figure of several rounds' extra hop, as the median over the rounds."""
    def figure(key: str, sub: str) -> float | None:
        value = _median([((h or {}).get(key) or {}).get(sub) for h in hops])
        return None if value is None else round(value, 3)

    return {
        "start_to_reachable_ms": {p: figure("start_to_reachable_ms", p) for p in ("p50", "p99")},
        "stop_ms": {p: figure("stop_ms", p) for p in ("p50", "p99")},
        "control_plane_cpu_ms_per_cycle": {
            m: figure("control_plane_cpu_ms_per_cycle", m) for m in ("in_hub", "operator_mode")},
    }


def _median(values: Sequence[float | None]) -> float | None:
    known = sorted(v for v in values if v is not None)
    if not known:
        return None
    middle = len(known) // 2
    return known[middle] if len(known) % 2 else (known[middle - 1] + known[middle]) / 2


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}"


def drawn(result: dict[str, Any], users: int) -> bool:
    """Whether a run's latencies and CPU per cycle mean anything: its failed starts and
    stops are at most half its users. Figures over a handful of survivors (upstream at 5,000
    users: 4 of 5,000) would draw as the fastest run of all."""
    return "start_to_reachable_ms" in result and result.get("failed", users) <= users / 2


def plot(results: dict[str, dict[int, dict[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 4, figsize=(19, 4.5))
    panels = [("start -> reachable (ms)", "start_to_reachable_ms"), ("stop (ms)", "stop_ms")]
    # One colour per spawner in every panel: p50 solid, p99 dashed.
    colour = {label: f"C{i}" for i, label in enumerate(results)}
    for axis, (title, key) in zip(axes, panels, strict=False):
        for label, by_size in results.items():
            sizes = sorted(n for n, r in by_size.items() if key in r and drawn(r, n))
            for pct, style in (("p50", "-o"), ("p99", "--^")):
                axis.plot(sizes, [by_size[n][key][pct] for n in sizes], style,
                          color=colour[label], label=f"{label} {pct}")
        axis.set(xscale="log", yscale="log", xlabel="concurrent users", title=title)
        axis.legend()
    for label, by_size in results.items():
        sizes = sorted(n for n, r in by_size.items()
                       if "hub_cpu_ms_per_cycle" in r and drawn(r, n))
        axes[2].plot(sizes, [by_size[n]["hub_cpu_ms_per_cycle"] for n in sizes], "-o",
                     color=colour[label], label=f"{label}: hub")
        with_operator = [n for n in sizes if "operator_cpu_ms_per_cycle" in by_size[n]]
        if with_operator:
            axes[2].plot(with_operator, [by_size[n]["hub_cpu_ms_per_cycle"]
                                         + by_size[n]["operator_cpu_ms_per_cycle"]
                                         for n in with_operator], "--s", color=colour[label],
                         label=f"{label}: hub + operator")
    axes[2].set(xscale="log", xlabel="concurrent users", title="CPU per start+stop (ms)")
    axes[2].legend()
    for label, by_size in results.items():
        sizes = sorted(n for n, r in by_size.items() if "failed" in r)
        axes[3].plot(sizes, [100 * by_size[n]["failed"] / n for n in sizes], "-o",
                     color=colour[label], label=label)
    axes[3].set(xscale="log", ylim=(-3, 103), xlabel="concurrent users",
                title="failed starts + stops (% of users)")
    axes[3].legend()
    hubs = hub_lines(results)
    figure.suptitle(f"A real JupyterHub ({', '.join(hubs) if hubs else 'version unknown'}) "
                    "+ proxy under a storm (simulated cluster, stub servers); "
                    "latency and CPU drawn for runs with failures at most half the users")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hub_sweep")
    parser.add_argument("--users", default="100,1000,5000")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/hub"))
    parser.add_argument("--upstream-dir", type=Path, default=Path(".bench/upstream-ks"))
    parser.add_argument("--spawners", default="ours,operator,upstream",
                        help="which to run, in this order at each size: ours (the in-hub "
                        "spawner), operator (operator mode), upstream (KubeSpawner 7.1)")
    parser.add_argument("--reuse", default="",
                        help="labels of --spawners whose JSON in --out, from an earlier run, "
                        "is plotted instead of running them again (with --rounds, each "
                        "round's ...-rK.json); reusing every spawner redraws the tables and "
                        "the plot from the files")
    parser.add_argument("--no-upstream", action="store_true",
                        help="leave upstream out of --spawners")
    parser.add_argument("--hub-python", type=Path, default=None,
                        help="the Python that runs JupyterHub in every run (default: this "
                        "one), e.g. .venv-matrix/z2jh/bin/python: the Zero to JupyterHub "
                        "image's JupyterHub")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the spawners this many times at each size, interleaved "
                        "(ours, operator, ours, operator, ...): on a shared machine one run "
                        "is noise. Each round's JSON is ...-rK.json; the tables and the plot "
                        "show the round with the median start p50, and every round's extra hop")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds {args.rounds}: at least one")
    if args.hub_python is not None and (problem := hub_python_problem(args.hub_python)):
        parser.error(f"--hub-python {args.hub_python}: {problem}")
    try:
        labels = parse_spawners(args.spawners)
        reuse = parse_spawners(args.reuse) if args.reuse.strip() else []
    except ValueError as e:
        parser.error(str(e))
    if args.no_upstream:
        labels = [label for label in labels if label != "upstream"]
    if set(reuse) - set(labels):
        parser.error(f"--reuse {args.reuse}: only spawners of --spawners can be reused")
    sizes = [int(n) for n in args.users.split(",") if n.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    if "upstream" in labels and "upstream" not in reuse:
        ensure_upstream(args.upstream_dir)
    results: dict[str, dict[int, dict[str, Any]]] = {SPAWNERS[label][1]: {} for label in labels}
    operator_rounds: dict[int, list[dict[str, Any]]] = {}
    earlier: set[str] = set()
    for n in sizes:
        # label -> [(round number, result)]: rounds run now, or found in --out for --reuse
        runs: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        for label in reuse:
            found = [(k, result_path(args.out, label, n, k))
                     for k in range(1, args.rounds + 1) if args.rounds > 1]
            found = [(k, path) for k, path in found if path.exists()]
            if found:  # this sweep's rounds, drawn again from their files
                runs[label] = [(k, dict(json.loads(path.read_text()))) for k, path in found]
                continue
            path = result_path(args.out, label, n)
            if path.exists():  # a run of an earlier sweep
                results[SPAWNERS[label][1]][n] = dict(json.loads(path.read_text()))
                earlier.add(label)
        for k in range(1, args.rounds + 1):
            number = k if args.rounds > 1 else 0
            for label in labels:
                if label in reuse:
                    continue
                extra = [str(args.upstream_dir.resolve())] if label == "upstream" else []
                # the in-hub run of the same round, when the sweep runs one; else the last
                baseline = (result_path(args.out, "ours", n, number if "ours" in labels
                                        and "ours" not in reuse else 0)
                            if label == "operator" else None)
                runs.setdefault(label, []).append(
                    (number, run_one(label, n, args.out, extra, baseline, number,
                                     args.hub_python)))
        for label, done in runs.items():
            chosen = median_run([run for _, run in done])
            results[SPAWNERS[label][1]][n] = chosen
            if args.rounds > 1:  # the plain name holds the median round, for other readers
                copy_round(args.out, label, n, next(k for k, run in done if run is chosen))
        if "operator" in runs:
            operator_rounds[n] = [run for _, run in runs["operator"]]
    reused = [SPAWNERS[label][1] for label in reuse if label in earlier]
    text = table(results, reused, operator_rounds)
    (args.out / "hub-sweep.md").write_text(text)
    plot({f"{label} (earlier run)" if label in reused else label: by_size
          for label, by_size in results.items()}, args.out / "hub-sweep.png")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
