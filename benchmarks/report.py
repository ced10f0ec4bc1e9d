"""Turn a result (storm, sweep or memory) into a Markdown table and PNG plots.

``python -m benchmarks.report RESULT.json [--markdown FILE] [--plots DIR]`` redraws them
from a saved result, without running anything again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_LATENCIES = (("start_overhead_ms", "start() after pod Ready"),
              ("stop_overhead_ms", "stop() after pod deleted"),
              ("progress_lag_ms", "progress event lag"))


def emit_json(result: dict[str, Any], path: Path | None) -> None:
    """Print a benchmark's figures, and write them to ``path`` when one was asked for."""
    text = json.dumps(result, indent=2)
    print(text)
    if path is not None:
        path.write_text(text + "\n")


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _storm_rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    targets = result.get("targets", {})
    rows: list[tuple[str, str, str]] = []
    for key, label in _LATENCIES:
        s = result.get(key) or {}
        rows.append((f"{label} (ms) p50 / p90 / p99 / max",
                     " / ".join(_fmt(s.get(p), 2) for p in ("p50", "p90", "p99", "max")),
                     " / ".join(t for t in (targets.get(f"{key}.p50", ""),
                                            targets.get(f"{key}.p99", "")) if t)))
    after = result.get("after_watch_delivery")
    if after:
        for key, label in (("start_overhead_ms", "start() after Ready reached the hub"),
                           ("stop_overhead_ms", "stop() after DELETED reached the hub"),
                           ("progress_lag_ms", "progress lag after the watch delivered it"),
                           ("api_to_hub_pod_ready_ms", "API write to hub watch (pod Ready)"),
                           ("api_to_hub_pod_deleted_ms", "API write to hub watch (pod DELETED)"),
                           ("api_to_hub_event_ms", "API write to hub watch (Event)")):
            s = after.get(key) or {}
            rows.append((f"{label} (ms) p50 / p90 / p99 / max",
                         " / ".join(_fmt(s.get(p), 2) for p in ("p50", "p90", "p99", "max")),
                         "diagnostic"))
    independent = result.get("independent_watcher")
    if independent:
        for key, label in (("api_to_watcher_pod_ready_ms", "API write to independent watcher (Ready)"),
                           ("api_to_watcher_pod_deleted_ms",
                            "API write to independent watcher (DELETED)"),
                           ("api_to_watcher_event_ms", "API write to independent watcher (Event)")):
            s = independent.get(key) or {}
            rows.append((f"{label} (ms) p50 / p90 / p99 / max",
                         " / ".join(_fmt(s.get(p), 2) for p in ("p50", "p90", "p99", "max")),
                         "diagnostic"))
    wall = result.get("wall_time_s", {})
    rows += [
        ("wall time: starts / idle / stops (s)",
         " / ".join(_fmt(wall.get(k), 2) for k in ("start_phase", "idle_phase", "stop_phase")),
         ""),
        ("hub CPU per spawn+stop cycle (ms)", _fmt((result.get("cpu_s_per_cycle") or 0) * 1000, 2),
         ""),
        ("hub CPU in the starts / the stops (s)",
         " / ".join(_fmt((result.get("cpu_s") or {}).get(k), 2)
                    for k in ("start_phase", "stop_phase")), "diagnostic"),
        ("stop drain: all stops issued at once until the last returned (ms)",
         _fmt(result.get("stop_drain_ms"), 1), "<= 200"),
        ("of it after the API's last deletion (the hub's part) (ms)",
         _fmt(result.get("stop_drain_after_last_delete_ms"), 1), "diagnostic"),
        ("longest single loop step: starts / stops (ms)",
         " / ".join(_fmt((result.get("max_loop_step_ms") or {}).get(k), 1)
                    for k in ("start", "stop")), "<= 5"),
        ("longest single loop step, its CPU time: starts / stops (ms)",
         " / ".join(_fmt((result.get("max_loop_step_cpu_ms") or {}).get(k), 1)
                    for k in ("start", "stop")), "<= 5"),
        ("…its CPU time outside the harness's step issuing the burst: starts / stops (ms)",
         " / ".join(_fmt((result.get("max_loop_step_cpu_ms_outside_harness") or {}).get(k), 1)
                    for k in ("start", "stop")), "<= 5"),
        ("simulator CPU: starts / idle / stops (s)",
         " / ".join(_fmt((result.get("simulator_cpu_s") or {}).get(k), 2)
                    for k in ("start_phase", "idle_phase", "stop_phase")), "other process"),
        ("hub GC gen2 pauses in the starts: count / max (ms)",
         _gc_cell(result), "diagnostic"),
        ("API requests per spawn", _fmt(result.get("requests_per_spawn"), 2), ""),
        ("API requests per stop", _fmt(result.get("requests_per_stop"), 2), ""),
        ("API requests per idle minute", _fmt(result.get("idle_requests_per_minute"), 1),
         targets.get("idle_requests_per_minute", "")),
        ("heap per cached pod (bytes)", _fmt(result.get("heap_bytes_per_pod"), 0),
         targets.get("heap_bytes_per_pod", "")),
        ("longest event-loop stall (ms)", _fmt(result.get("max_loop_stall_ms"), 1),
         targets.get("max_loop_stall_ms", "")),
        ("…once every call has arrived (the drain): starts / stops (ms)",
         " / ".join(_fmt((result.get("max_loop_stall_ms_after_arrival") or {}).get(k), 1)
                    for k in ("start", "stop")), "diagnostic"),
        ("longest stretch of the loop's own CPU between ticks (ms)",
         _fmt(result.get("max_loop_cpu_burst_ms"), 1), "diagnostic"),
    ]
    spawns, stops, polls = result.get("spawns", {}), result.get("stops", {}), result.get("polls", {})
    rows.append(("spawns completed / failed",
                 f"{_fmt(spawns.get('completed'))} / {_fmt(spawns.get('failed'))}", ""))
    rows.append(("stops completed / failed",
                 f"{_fmt(stops.get('completed'))} / {_fmt(stops.get('failed'))}", ""))
    rows.append(("poll() calls / said stopped while running",
                 f"{_fmt(polls.get('total'))} / {_fmt(polls.get('said_stopped_while_running'))}",
                 "0 wrong"))
    fault = result.get("fault_mode")
    if fault:
        rows.append(("time to recover: last catch-up after faults cleared (s)",
                     _fmt(fault.get("time_to_recover_s"), 2), ""))
        after = fault.get("start_overhead_ready_after_clear_ms") or {}
        rows.append(("start() after Ready, pods Ready after the clear (ms) p50 / p99",
                     f"{_fmt(after.get('p50'), 2)} / {_fmt(after.get('p99'), 2)}", ""))
    return rows


def _gc_cell(result: dict[str, Any]) -> str:
    gen2 = ((result.get("gc_pauses_by_phase") or {}).get("start") or {}).get("gen2") or {}
    return f"{_fmt(gen2.get('count'))} / {_fmt(gen2.get('max_ms'), 1)}"


def _memory_table(memory: dict[str, Any]) -> list[str]:
    lines = ["| cached pods | heap/pod (B) | peak RSS (MiB) | poll() returned (s) | cache loaded (s) "
             "| simulator CPU (s) | stall loading (ms) | stall holding (ms) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for size, m in memory.items():
        lines.append(f"| {int(size):,} | {_fmt(m['heap_bytes_per_pod'], 0)} "
                     f"| {_fmt(m['peak_rss_bytes'] / 2**20, 1)} "
                     f"| {_fmt(m.get('poll_returned_seconds'), 2)} | {_fmt(m['load_seconds'], 2)} "
                     f"| {_fmt(m.get('simulator_cpu_s_serving_the_load'), 2)} "
                     f"| {_fmt(m['max_loop_stall_ms_loading'], 1)} "
                     f"| {_fmt(m['max_loop_stall_ms_holding'], 1)} |")
    return lines


def _header(meta: dict[str, Any]) -> str:
    versions = meta.get("versions", {})
    machine = meta.get("machine", {})
    parts = [f"`{meta.get('spawner')}`", f"mode {meta.get('mode')}"]
    if meta.get("users"):
        parts.append(f"{meta['users']:,} users")
    if meta.get("scenario"):
        parts.append(f"scenario `{meta['scenario']}`")
    parts.append(f"seed {meta.get('seed')}")
    if machine:
        parts.append(f"{machine.get('cpu_count')} CPUs, load {machine.get('load_average_at_start')}")
    if versions:
        parts.append(", ".join(f"{k} {v}" for k, v in versions.items() if v))
    return "; ".join(parts)


def markdown_report(result: dict[str, Any]) -> str:
    meta = result.get("meta", {})
    lines = [f"**{_header(meta)}**", ""]
    if meta.get("mode") == "sweep":
        runs = result["runs"]
        sizes = list(runs)
        lines.append("| figure | " + " | ".join(f"N={int(s):,}" for s in sizes) + " |")
        lines.append("|---|" + "---:|" * len(sizes))
        for key, label in _LATENCIES:
            for p in ("p50", "p99"):
                lines.append(f"| {label} {p} (ms) | " + " | ".join(
                    _fmt((runs[s].get(key) or {}).get(p), 2) for s in sizes) + " |")
        for key, label, scale, digits in (
            ("cpu_s_per_cycle", "hub CPU per cycle (ms)", 1000, 2),
            ("requests_per_spawn", "requests per spawn", 1, 2),
            ("requests_per_stop", "requests per stop", 1, 2),
            ("idle_requests_per_minute", "requests per idle minute", 1, 1),
            ("heap_bytes_per_pod", "heap per cached pod (B)", 1, 0),
            ("max_loop_stall_ms", "longest loop stall (ms)", 1, 1),
        ):
            lines.append(f"| {label} | " + " | ".join(
                _fmt(None if runs[s].get(key) is None else runs[s][key] * scale, digits)
                for s in sizes) + " |")
        lines.append("| wall time of the starts (s) | " + " | ".join(
            _fmt(runs[s]["wall_time_s"]["start_phase"], 2) for s in sizes) + " |")
        lines.append("| spawns failed | " + " | ".join(
            _fmt(runs[s]["spawns"]["failed"]) for s in sizes) + " |")
        return "\n".join(lines)
    if meta.get("mode") == "memory":
        lines += _memory_table(result["memory"])
        return "\n".join(lines)
    lines += ["| figure | measured | target |", "|---|---:|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in _storm_rows(result)]
    if result.get("memory"):
        lines += ["", *_memory_table(result["memory"])]
    return "\n".join(lines)


def write_plots(result: dict[str, Any], directory: Path) -> list[Path]:
    """PNG plots: latency CDFs for a storm, figures against N for a sweep, memory vs N."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    meta = result.get("meta", {})
    spawner = meta.get("spawner", "")
    written: list[Path] = []

    def save(fig: Any, name: str) -> None:
        path = directory / name
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    if meta.get("mode") == "sweep":
        runs = result["runs"]
        sizes = [int(s) for s in runs]
        fig, axes = plt.subplots(2, 3, figsize=(14, 8))
        for ax, (key, label) in zip(axes[0], _LATENCIES, strict=True):
            for p, style in (("p50", "o-"), ("p99", "s--"), ("max", "^:")):
                ax.plot(sizes, [(runs[str(s)].get(key) or {}).get(p) for s in sizes], style,
                        label=p)
            ax.set(xscale="log", yscale="log", title=f"{label} (ms, log scale)",
                   xlabel="concurrent users")
            ax.legend()
        for ax, (key, label, scale) in zip(axes[1], (
            ("cpu_s_per_cycle", "hub CPU per cycle (ms)", 1000),
            ("requests_per_spawn", "API requests per spawn / stop", 1),
            ("max_loop_stall_ms", "longest loop stall (ms)", 1),
        ), strict=True):
            ax.plot(sizes, [(runs[str(s)].get(key) or 0) * scale for s in sizes], "o-", label=key)
            if key == "requests_per_spawn":
                ax.plot(sizes, [runs[str(s)].get("requests_per_stop") for s in sizes], "s--",
                        label="requests_per_stop")
                ax.legend()
            ax.set(xscale="log", title=label, xlabel="concurrent users")
        fig.suptitle(f"{spawner}: scaling sweep")
        save(fig, "sweep.png")
        return written

    memory = result.get("memory")
    if memory and len(memory) > 1:
        sizes = [int(s) for s in memory]
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
        ax1.plot(sizes, [memory[str(s)]["heap_bytes_per_pod"] for s in sizes], "o-")
        ax1.set(xscale="log", title="heap per cached pod (bytes)", xlabel="cached pods")
        ax2.plot(sizes, [memory[str(s)]["peak_rss_bytes"] / 2**20 for s in sizes], "o-",
                 label="peak RSS (MiB)")
        ax2.plot(sizes, [memory[str(s)]["max_loop_stall_ms_loading"] for s in sizes], "s--",
                 label="loop stall while loading (ms)")
        ax2.set(xscale="log", title="peak RSS and loop stall", xlabel="cached pods")
        ax2.legend()
        fig.suptitle(f"{spawner}: pod cache")
        save(fig, "memory.png")

    samples = result.get("samples_ms")
    if samples:
        fig, axes = plt.subplots(1, 3, figsize=(14, 4))
        for ax, (kind, label) in zip(axes, (("start", "start() after pod Ready"),
                                            ("stop", "stop() after pod deleted"),
                                            ("progress", "progress event lag")), strict=True):
            values = sorted(samples.get(kind) or [])
            if values:
                ax.plot(values, [(i + 1) / len(values) for i in range(len(values))])
            ax.set(title=f"{label}", xlabel="ms", ylabel="fraction ≤ x")
            ax.grid(True, alpha=0.3)
        fig.suptitle(f"{spawner}: {meta.get('users')} users, {meta.get('mode')} "
                     f"(CDF of overheads)")
        save(fig, f"{meta.get('mode', 'storm')}-cdf.png")
    return written


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m benchmarks.report",
                                     description="Markdown table and plots of a saved result.")
    parser.add_argument("result", type=Path, help="a JSON file written by spawn_storm --json")
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--plots", type=Path)
    args = parser.parse_args(argv)
    try:
        result = json.loads(args.result.read_text())
    except (OSError, ValueError) as exc:
        parser.error(f"{args.result}: cannot read a benchmark result: {exc}")
    table = markdown_report(result)
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    if args.plots:
        for path in write_plots(result, args.plots):
            print(f"plot: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
