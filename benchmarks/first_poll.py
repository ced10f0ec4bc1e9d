"""The first ``poll()`` after a hub (re)start, with N running pods in the cluster.

What a restarted hub feels: JupyterHub polls every running server when it starts, and
each answer waits on the pod cache. This measures, in a fresh hub process per sample,
the time from the first ``poll()`` call to its answer, for the server whose pod is
(a) first in the list, (b) the median one and (c) the last one, and the time until the
whole cache is loaded. With ``--all``, also what a restarting hub does: poll every
running server at once (the answer times of the first, median and last pod, p50/p99).

The simulator runs in its own process; its store is filled directly with N running
pods, each one a different user's (the measured spawner's own manifest for a marker
user, with the marker replaced by ``MARK-i``), so every poll is answered for a pod that
is provably its server's (status ``None``, running), not a stand-in.

Usage::

    python -m benchmarks.first_poll --pods 5000 --samples 5 [--tracemalloc] --json out.json

``--tracemalloc`` reproduces the conditions of the memory benchmark's "poll returned"
figure (heap tracing on in the hub process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from .hub_stand_in import build_spawner
from .simulator_process import REPO_ROOT, SimulatorProcess
from .spawner_loading import (
    benchmark_kubeconfig,
    load_config,
    load_spawner_class,
    point_at_simulator,
    shutdown_spawner_module,
)

#: The user whose pod manifest is stamped out; pod i belongs to user ``MARK-i:05d``.
MARK = "fpuser"
OURS = "async_kubespawner.KubeSpawner"


def user_of(index: int) -> str:
    return f"{MARK}-{index:05d}"


async def probe(args: argparse.Namespace) -> dict[str, Any]:
    """One fresh hub process: one spawner, one first poll(), then wait for the full load."""
    spawner_class = load_spawner_class(args.spawner)
    config = load_config(None)
    point_at_simulator(spawner_class, config, args.url, args.kubeconfig)
    if args.tracemalloc:
        tracemalloc.start()
    if args.all:
        return await probe_all(args, spawner_class, config)
    spawner = build_spawner(spawner_class, user_of(args.index), args.index + 1, config=config)
    started = time.monotonic()
    cpu_started = time.process_time()
    status = await spawner.poll()
    poll_seconds = time.monotonic() - started
    result: dict[str, Any] = {
        "index": args.index,
        "poll_status": status,
        "poll_ms": round(poll_seconds * 1000, 1),
        # the hub process's own CPU until the answer: what the machine's other load
        # cannot inflate (the wall time above includes waiting for a shared CPU)
        "poll_cpu_ms": round((time.process_time() - cpu_started) * 1000, 1),
    }
    reflector_module = sys.modules.get("async_kubespawner.kube.reflector")
    if reflector_module is not None:
        (reflector,) = [r for r in reflector_module.reflectors() if r.resource == "pods"]
        result["pages_loaded_at_answer"] = getattr(reflector, "pages_loaded", None)
        await reflector.wait_synced(600)
        result["load_ms"] = round((time.monotonic() - started) * 1000, 1)
        result["cached_pods"] = len(reflector.sink)
    await shutdown_spawner_module(spawner_class)
    return result


async def probe_all(args: argparse.Namespace, spawner_class: type,
                    config: Any) -> dict[str, Any]:
    """What a restarting hub does: poll every running server at once (JupyterHub checks
    all of them concurrently at start-up); when does each answer?"""
    spawners = [build_spawner(spawner_class, user_of(i), i + 1, config=config)
                for i in range(args.pods)]
    answered: list[float] = [0.0] * len(spawners)
    statuses: dict[str, int] = {}

    async def one(i: int) -> None:
        status = await spawners[i].poll()
        answered[i] = time.monotonic()
        statuses[str(status)] = statuses.get(str(status), 0) + 1

    started = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(len(spawners))))
    ms = [round((t - started) * 1000, 1) for t in answered]
    ordered = sorted(ms)
    result = {
        "pods": args.pods,
        "statuses": statuses,
        "first_ms": ms[0],
        "median_pod_ms": ms[len(ms) // 2],
        "last_ms": ms[-1],
        "p50_ms": ordered[len(ordered) // 2],
        "p99_ms": ordered[int(len(ordered) * 0.99)],
        "max_ms": ordered[-1],
    }
    await shutdown_spawner_module(spawner_class)
    return result


async def _run_child(args: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="aks-first-poll-") as tmp:
        out = Path(tmp) / "probe.json"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.first_poll", "--probe", *args, "--json", str(out),
            cwd=REPO_ROOT, env=env)
        code = await process.wait()
        if code != 0 or not out.exists():
            raise RuntimeError(f"first-poll probe {' '.join(args)} failed with status {code}")
        result: dict[str, Any] = json.loads(out.read_text())
        return result


async def measure(spawner: str, pods: int, samples: int, seed: int,
                  traced: bool = False, all_users: bool = False) -> dict[str, Any]:
    benchmark_kubeconfig()
    spawner_class = load_spawner_class(spawner)
    sim = await SimulatorProcess.start(benchmark_kubeconfig(), users=1, seed=seed,
                                       scenario="instant", cluster=False)
    try:
        config = load_config(None)
        point_at_simulator(spawner_class, config, sim.url, sim.kubeconfig)
        template_spawner = build_spawner(spawner_class, MARK, 0, config=config)
        from kubernetes_asyncio.client import ApiClient

        manifest = await template_spawner.get_pod_manifest()
        async with ApiClient() as client:
            template = client.sanitize_for_serialization(manifest)
        namespace = str(getattr(template_spawner, "namespace", "default") or "default")
        await shutdown_spawner_module(spawner_class)
        filled = time.monotonic()
        await sim.command("populate", count=pods, template=template, namespace=namespace,
                          substitute=MARK)
        fill_seconds = time.monotonic() - filled
        common = ["--spawner", spawner, "--url", sim.url, "--kubeconfig", sim.kubeconfig]
        if traced:
            common.append("--tracemalloc")
        cases = {"first": 0, "median": pods // 2, "last": pods - 1}
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in cases}
        everyone: list[dict[str, Any]] = []
        for _ in range(samples):  # interleaved, so drift of the machine hits every case
            for name, index in cases.items():
                runs[name].append(await _run_child([*common, "--index", str(index)]))
            if all_users:
                everyone.append(await _run_child([*common, "--all", "--pods", str(pods)]))
    finally:
        await sim.close()
    summary: dict[str, Any] = {"spawner": spawner, "pods": pods, "samples": samples,
                               "tracemalloc": traced,
                               "load_average_after": [round(x, 2) for x in os.getloadavg()],
                               "fill_seconds": round(fill_seconds, 1)}
    for name, results in runs.items():
        statuses = {r["poll_status"] for r in results}
        summary[name] = {
            "index": cases[name],
            "poll_ms_median": statistics.median(r["poll_ms"] for r in results),
            "poll_ms_max": max(r["poll_ms"] for r in results),
            "poll_status": sorted(statuses, key=str),
            "runs": results,
        }
        cpus = [r["poll_cpu_ms"] for r in results if "poll_cpu_ms" in r]
        if cpus:
            summary[name]["poll_cpu_ms_median"] = statistics.median(cpus)
        loads = [r["load_ms"] for r in results if "load_ms" in r]
        if loads:
            summary[name]["load_ms_median"] = statistics.median(loads)
    if everyone:
        summary["all_at_once"] = {
            key: statistics.median(r[key] for r in everyone)
            for key in ("first_ms", "median_pod_ms", "last_ms", "p50_ms", "p99_ms", "max_ms")
        }
        summary["all_at_once"]["statuses"] = [r["statuses"] for r in everyone]
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.first_poll",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--spawner", default=OURS)
    parser.add_argument("--pods", type=int, default=5000)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="trace the heap in each hub process (as the memory benchmark "
                        "does: every allocation several-fold slower)")
    # one probe (internal: the fresh hub process of one sample)
    parser.add_argument("--all", action="store_true",
                        help="also time a hub start that polls every server at once")
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--kubeconfig", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        result = asyncio.run(probe(args))
    else:
        result = asyncio.run(measure(args.spawner, args.pods, args.samples, args.seed,
                                     args.tracemalloc, args.all))
        brief = {k: v for k, v in result.items() if k not in ("first", "median", "last")}
        brief.pop("all_at_once", None)
        if "all_at_once" in result:
            brief["all_at_once"] = result["all_at_once"]
        for name in ("first", "median", "last"):
            brief[name] = {k: v for k, v in result[name].items() if k != "runs"}
        print(json.dumps(brief, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
