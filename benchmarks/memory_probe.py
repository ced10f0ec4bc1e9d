"""Memory mode: heap per cached pod, peak RSS and loop stalls with 1k/5k/20k pods cached.

No spawns are needed to measure a pod cache: the simulator's store is filled directly
with N running pods built from the measured spawner's own pod manifest (so each cached
pod is as large as a real user pod of that configuration), then a fresh hub process
creates one spawner and calls ``poll()``, which makes any Kubernetes spawner load its pod
cache (ours waits for the reflector's first list; upstream's waits for its first load).

Each size runs in two fresh hub processes, because the two measurements disturb each
other: one with ``tracemalloc`` for the heap, one without for peak RSS and loop stalls
(tracemalloc slows every allocation several-fold and adds its own memory).

Heap per pod is marginal: (traced bytes still allocated after loading N pods - the same
with an empty cache) / N, so the fixed cost of clients, reflectors and warm caches is not
spread over the pods. Both runs measure from before the first spawner is built.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from .diagnostics import GcPauses
from .hub_stand_in import build_spawner
from .loop_monitor import LoopStallMonitor, SlowestSteps
from .simulator_process import REPO_ROOT, SimulatorProcess
from .spawner_loading import (
    benchmark_kubeconfig,
    load_config,
    load_spawner_class,
    point_at_simulator,
    shutdown_spawner_module,
)

#: How long the probe holds the loaded cache while watching the loop (seconds).
HOLD_SECONDS = 3.0


def _current_rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _wait_until_loaded(spawner_class: type, limit: float) -> float | None:
    """For async_kubespawner: wait until every reflector finished its first list.

    ``poll()`` gives up waiting after ``first_list_timeout`` (answering "running", as it
    must not guess "stopped"), so with a big cache it can return before the cache is
    loaded; the heap must be measured once the pods are actually in it.
    """
    started = time.monotonic()
    module = sys.modules.get("async_kubespawner.kube.reflector")
    if module is not None:
        for reflector in module.reflectors():
            await reflector.wait_synced(limit)
    # upstream KubeSpawner keeps its reflectors on the class, each with a first-load future
    for reflector in list(getattr(spawner_class, "reflectors", {}).values()):
        future = getattr(reflector, "first_load_future", None)
        if future is not None:
            await asyncio.wait_for(asyncio.shield(future), limit)
    return time.monotonic() - started


def _cached_pods() -> int | None:
    """Pods in the measured spawner's pod cache (ours, or upstream's class reflectors)."""
    module = sys.modules.get("async_kubespawner.kube.reflector")
    if module is None:
        upstream = sys.modules.get("kubespawner.spawner")
        reflectors = getattr(getattr(upstream, "KubeSpawner", None), "reflectors", {})
        pods = reflectors.get("pods") if isinstance(reflectors, dict) else None
        return len(pods.resources) if pods is not None else None
    sizes = [len(r.sink) for r in module.reflectors() if r.resource == "pods"]
    return max(sizes) if sizes else None


async def probe(args: argparse.Namespace) -> dict[str, Any]:
    """The hub process of one measurement: load the cache, hold it, report."""
    spawner_class = load_spawner_class(args.spawner)
    config = load_config(args.config)
    point_at_simulator(spawner_class, config, args.url, args.kubeconfig)
    gc.collect()
    if args.tracemalloc:
        tracemalloc.start()
    baseline_heap = tracemalloc.get_traced_memory()[0] if args.tracemalloc else 0
    baseline_rss = _current_rss()
    monitor = LoopStallMonitor()
    monitor.start()
    steps = SlowestSteps()
    steps.install()
    gc_pauses = GcPauses()
    gc_pauses.start()
    spawner = build_spawner(spawner_class, "bench-probe", 1, config=config)
    started = time.monotonic()
    status = await spawner.poll()
    poll_seconds = time.monotonic() - started
    await _wait_until_loaded(spawner_class, 600)
    load_seconds = time.monotonic() - started
    load_stall = monitor.snapshot()
    monitor.reset()
    load_steps = steps.snapshot()
    steps.reset()
    load_gc = gc_pauses.snapshot()
    gc_pauses.reset()
    # hold the loaded cache: what does an idle hub with N pods cost the loop?
    await asyncio.sleep(HOLD_SECONDS)
    hold_stall = monitor.snapshot()
    await monitor.stop()
    hold_steps = steps.snapshot()
    steps.uninstall()
    hold_gc = gc_pauses.snapshot()
    gc_pauses.stop()
    gc.collect()
    result: dict[str, Any] = {
        "pods": args.pods,
        "poll_status": status,
        "poll_returned_seconds": round(poll_seconds, 3),
        "load_seconds": round(load_seconds, 3),
        "cached_pods": _cached_pods(),
        "max_loop_stall_ms_loading": load_stall["max_loop_stall_ms"],
        "max_loop_stall_ms_holding": hold_stall["max_loop_stall_ms"],
        "max_loop_cpu_burst_ms_loading": load_stall["max_loop_cpu_burst_ms"],
        "max_loop_cpu_burst_ms_holding": hold_stall["max_loop_cpu_burst_ms"],
        "gc_loading": load_gc,
        "gc_holding": hold_gc,
        "slowest_steps_loading": load_steps,
        "slowest_steps_holding": hold_steps,
        "rss_baseline_bytes": baseline_rss,
        "rss_after_bytes": _current_rss(),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    if args.tracemalloc:
        current, peak = tracemalloc.get_traced_memory()
        result["heap_bytes"] = current - baseline_heap
        result["heap_peak_bytes"] = peak - baseline_heap
        result["heap_bytes_per_pod"] = round((current - baseline_heap) / max(args.pods, 1), 1)
        tracemalloc.stop()
    await shutdown_spawner_module(spawner_class)
    return result


async def _template_pod(spawner_class: type, config: Any) -> dict[str, Any]:
    """The measured spawner's own pod manifest, as JSON, to stamp out N cached pods."""
    from kubernetes_asyncio.client import ApiClient

    spawner = build_spawner(spawner_class, "bench-template", 0, config=config)
    manifest = await spawner.get_pod_manifest()
    async with ApiClient() as client:
        pod = client.sanitize_for_serialization(manifest)
    pod.setdefault("metadata", {})["name"] = "bench-cached"
    return pod


async def _run_child(args: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="aks-mem-") as tmp:
        out = Path(tmp) / "probe.json"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.memory_probe", *args, "--json", str(out),
            cwd=REPO_ROOT, env=env)
        code = await process.wait()
        if code != 0 or not out.exists():
            raise RuntimeError(f"memory probe {' '.join(args)} failed with status {code}")
        return json.loads(out.read_text())


async def measure_memory(spawner: str, config_path: str | None, sizes: list[int],
                         seed: int) -> dict[str, Any]:
    """For each size: a simulator filled with N pods, then the two probe processes."""
    benchmark_kubeconfig()  # before any Kubernetes client is imported
    spawner_class = load_spawner_class(spawner)
    results: dict[str, Any] = {}
    for size in sizes:
        sim = await SimulatorProcess.start(benchmark_kubeconfig(), users=1, seed=seed,
                                           scenario="instant", cluster=False)
        try:
            config = load_config(config_path)
            point_at_simulator(spawner_class, config, sim.url, sim.kubeconfig)
            template = await _template_pod(spawner_class, config)
            await shutdown_spawner_module(spawner_class)
            namespace = str(getattr(build_spawner(spawner_class, "bench-ns", 0, config=config),
                                    "namespace", "default") or "default")
            common = ["--spawner", spawner, "--url", sim.url, "--kubeconfig", sim.kubeconfig]
            if config_path:
                common += ["--config", config_path]
            # what a hub with an empty cache holds (clients, reflectors, imports' caches)
            empty = await _run_child([*common, "--pods", "0", "--tracemalloc"])
            filled = time.monotonic()
            await sim.command("populate", count=size, template=template, namespace=namespace)
            fill_seconds = time.monotonic() - filled
            common += ["--pods", str(size)]
            cpu_before = (await sim.command("cpu"))["process_time"]
            plain = await _run_child(common)
            sim_cpu = (await sim.command("cpu"))["process_time"] - cpu_before
            traced = await _run_child([*common, "--tracemalloc"])
        finally:
            await sim.close()
        results[str(size)] = {
            "pods": size,
            "fill_seconds": round(fill_seconds, 1),
            "heap_bytes_per_pod": round((traced["heap_bytes"] - empty["heap_bytes"]) / size, 1),
            "heap_bytes": traced["heap_bytes"],
            "heap_bytes_empty_cache": empty["heap_bytes"],
            "cached_pods": plain["cached_pods"],
            "peak_rss_bytes": plain["peak_rss_bytes"],
            "rss_growth_bytes": plain["rss_after_bytes"] - plain["rss_baseline_bytes"],
            "poll_returned_seconds": plain["poll_returned_seconds"],
            "load_seconds": plain["load_seconds"],
            "simulator_cpu_s_serving_the_load": round(sim_cpu, 3),
            "max_loop_stall_ms_loading": plain["max_loop_stall_ms_loading"],
            "max_loop_stall_ms_holding": plain["max_loop_stall_ms_holding"],
            "max_loop_cpu_burst_ms_loading": plain["max_loop_cpu_burst_ms_loading"],
            "max_loop_cpu_burst_ms_holding": plain["max_loop_cpu_burst_ms_holding"],
            "gc_loading": plain["gc_loading"],
            "gc_holding": plain["gc_holding"],
            "slowest_steps_loading": plain["slowest_steps_loading"],
            "slowest_steps_holding": plain["slowest_steps_holding"],
        }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory_probe",
                                     description="One hub-side memory probe (see module doc).")
    parser.add_argument("--spawner", required=True)
    parser.add_argument("--config")
    parser.add_argument("--pods", type=int, required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--json", required=True)
    args = parser.parse_args(argv)
    result = asyncio.run(probe(args))
    Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
