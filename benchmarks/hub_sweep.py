"""``make bench-hub``: the whole-hub storm at several sizes, ours and upstream, side by side.

    python -m benchmarks.hub_sweep --users 100,1000,5000 --out benchmarks/results/hub

Each (spawner, size) is one ``benchmarks.hub_storm`` run in a fresh set of processes,
ours then upstream at each size, so both see the same machine at nearly the same moment.
Upstream KubeSpawner 7.1 is installed into a side directory (``--upstream-dir``, made
with ``pip install --no-deps --target``) and put on the hub's PYTHONPATH only: this
package never imports it. Writes one JSON per run, ``hub-sweep.md`` (a table) and
``hub-sweep.png`` (start and stop latencies, hub CPU per cycle, against users).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


def run_one(spawner: str, users: int, out: Path, extra: list[str]) -> dict[str, Any]:
    label = "ours" if spawner == OURS else "upstream"
    target = out / f"hub-storm-{label}-{users}.json"
    argv = [sys.executable, "-m", "benchmarks.hub_storm", "--spawner", spawner,
            "--users", str(users), "--json", str(target),
            "--markdown", str(target.with_suffix(".md"))]
    for path in extra:
        argv += ["--extra-path", path]
    subprocess.run(argv, check=False)
    return dict(json.loads(target.read_text())) if target.exists() else {"failed": users}


def table(results: dict[str, dict[int, dict[str, Any]]]) -> str:
    rows = ["| users | spawner | failed | start -> reachable p50 / p99 (ms) | stop p50 / p99 "
            "(ms) | hub CPU / cycle (ms) | longest hub stall start / stop (ms) |",
            "|---:|---|---:|---:|---:|---:|---:|"]
    sizes = sorted({n for by_size in results.values() for n in by_size})
    for n in sizes:
        for label, by_size in results.items():
            r = by_size.get(n)
            if not r or "start_to_reachable_ms" not in r:
                rows.append(f"| {n} | {label} | {r.get('failed') if r else '-'} | - | - | - | - |")
                continue
            s, t, stall = r["start_to_reachable_ms"], r["stop_ms"], r["hub_longest_stall_ms"]
            rows.append(
                f"| {n} | {label} | {r['failed']} | {s['p50']} / {s['p99']} | "
                f"{t['p50']} / {t['p99']} | {r['hub_cpu_ms_per_cycle']} | "
                f"{stall['start_phase']} / {stall['stop_phase']} |")
    return "\n".join(rows) + "\n"


def plot(results: dict[str, dict[int, dict[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    panels = [("start -> reachable (ms)", "start_to_reachable_ms"), ("stop (ms)", "stop_ms")]
    for axis, (title, key) in zip(axes, panels, strict=False):
        for label, by_size in results.items():
            sizes = sorted(n for n, r in by_size.items() if key in r)
            for pct, style in (("p50", "-o"), ("p99", "--^")):
                axis.plot(sizes, [by_size[n][key][pct] for n in sizes], style,
                          label=f"{label} {pct}")
        axis.set(xscale="log", yscale="log", xlabel="concurrent users", title=title)
        axis.legend()
    for label, by_size in results.items():
        sizes = sorted(n for n, r in by_size.items() if "hub_cpu_ms_per_cycle" in r)
        axes[2].plot(sizes, [by_size[n]["hub_cpu_ms_per_cycle"] for n in sizes], "-o",
                     label=label)
    axes[2].set(xscale="log", xlabel="concurrent users", title="hub CPU per start+stop (ms)")
    axes[2].legend()
    figure.suptitle("A real JupyterHub + proxy under a storm (simulated cluster, stub servers)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hub_sweep")
    parser.add_argument("--users", default="100,1000,5000")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/hub"))
    parser.add_argument("--upstream-dir", type=Path, default=Path(".bench/upstream-ks"))
    parser.add_argument("--no-upstream", action="store_true")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.users.split(",") if n.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    spawners = [(OURS, [])]
    if not args.no_upstream:
        ensure_upstream(args.upstream_dir)
        spawners.append((UPSTREAM, [str(args.upstream_dir.resolve())]))
    results: dict[str, dict[int, dict[str, Any]]] = {"ours": {}, "upstream 7.1": {}}
    for n in sizes:
        for spawner, extra in spawners:
            label = "ours" if spawner == OURS else "upstream 7.1"
            results[label][n] = run_one(spawner, n, args.out, extra)
    if args.no_upstream:
        del results["upstream 7.1"]
    (args.out / "hub-sweep.md").write_text(table(results))
    plot(results, args.out / "hub-sweep.png")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
