"""Spawn storms against the simulator, for any Spawner class: latency, cost and memory.

    python -m benchmarks.spawn_storm --spawner async_kubespawner.KubeSpawner \\
        --users 1000 --ready-spread 10 --json out.json --markdown out.md --plots plots/

One run: the simulator (API server, scheduler, kubelet; seeded timings) starts in its own
process (``benchmarks.sim_host``); this process plays the hub. It builds N spawner
objects, starts them all at once the way JupyterHub does (each with a progress listener),
polls the running ones every ``poll_interval``, holds them idle for a while, then stops
them all. Figures (see ``benchmarks/README.md`` for the exact definitions):

- start overhead: ``start()`` returned - the pod became Ready in the API;
- stop overhead: ``stop()`` returned - the pod was deleted from the API;
- progress lag: a listener got an event - the event was written to the API;
- CPU seconds of this (hub) process per start+stop cycle, wall time per phase;
- API requests per spawn, per stop and per idle minute (simulator counters);
- heap per cached pod and peak RSS (memory mode, fresh processes, see memory_probe);
- the longest event-loop stall.

Modes: ``--sweep 10,100,1000`` runs one storm per size (each in a fresh process) and
plots every figure against N; ``--idle-minutes M`` holds the servers M minutes;
``--faults`` drops watches, forces 410s and answers 500s during the storm;
``--memory 1000,5000,20000`` measures only the pod cache at those sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .diagnostics import GcPauses, ReflectorDeliveries, reflector_health
from .figures import summarise
from .hub_stand_in import (
    CycleRecord,
    build_spawner,
    poll_server,
    start_server,
    stop_server,
    warm_up_hub_models,
)
from .loop_monitor import LoopStallMonitor, SlowestSteps, StepCensus
from .phase_profile import PhaseProfiles
from .simulator_process import REPO_ROOT, SimulatorProcess, counts_by_verb
from .spawner_loading import (
    BenchmarkSetupError,
    benchmark_kubeconfig,
    describe_versions,
    load_config,
    load_spawner_class,
    point_at_simulator,
    shutdown_spawner_module,
)

#: The targets async_kubespawner is held to: a hub of 1,000 users must not wait on the spawner.
TARGETS: dict[str, str] = {
    "start_overhead_ms.p50": "<= 5",
    "start_overhead_ms.p99": "<= 50",
    "stop_overhead_ms.p50": "<= 5",
    "stop_overhead_ms.p99": "<= 50",
    "progress_lag_ms.p99": "<= 20",
    "idle_requests_per_minute": "== 0",
    "heap_bytes_per_pod": "<= 3072",
    "max_loop_stall_ms": "<= 50",
}


def default_scenario(ready_spread: float) -> str:
    """Pods that become ready uniformly within ``ready_spread`` s of starting, stop at once.

    Everything else a kubelet does (sandbox, pull, create) is instant, so the spread of
    readiness is exactly the chosen one and the storm's length is predictable.
    """
    return f"instant,ready-after=0-{ready_spread:g}"


async def inject_faults(sim: SimulatorProcess, seconds: float, log: list[dict[str, Any]]) -> float:
    """The fault script: 500s on 5% of requests, 410 Gone on lists/watches, watches dropped
    every 2 s, and a 3 s total outage (503 + every watch cut) in the middle. Returns the
    monotonic time at which every fault was cleared."""
    started = time.monotonic()

    async def fault(command: dict[str, Any]) -> None:
        await sim.command("fault", command=command)
        log.append({"at_s": round(time.monotonic() - started, 3), **command})

    await fault({"action": "error", "code": 500, "fraction": 0.05})
    await fault({"action": "expire", "count": 3})
    outage_done = False
    while (elapsed := time.monotonic() - started) < seconds:
        await asyncio.sleep(2.0)  # the fault script's own rhythm, not a synchronisation
        dropped = await sim.command("drop_watches")
        log.append({"at_s": round(time.monotonic() - started, 3), "action": "drop_watches",
                    **dropped})
        await fault({"action": "expire", "count": 1, "verb": "watch"})
        if not outage_done and elapsed >= seconds / 2:
            await fault({"action": "outage", "seconds": 3, "mode": "503"})
            await sim.command("drop_watches")
            outage_done = True
    await fault({"action": "clear"})
    return time.monotonic()


def _mark_index(rows: list[list[Any]]) -> dict[tuple[str, str], list[float]]:
    index: dict[tuple[str, str], list[float]] = {}
    for namespace, name, _uid, at in rows:
        index.setdefault((namespace, name), []).append(float(at))
    for times in index.values():
        times.sort()
    return index


def _overhead(index: dict[tuple[str, str], list[float]], key: tuple[str, str],
              returned: float | None) -> float | None:
    """``returned`` - the latest mark at or before it (or the first after it: negative)."""
    if returned is None:
        return None
    times = index.get(key)
    if not times:
        return None
    before = [t for t in times if t <= returned]
    return returned - (before[-1] if before else times[0])


def compute_figures(records: list[CycleRecord], marks: dict[str, Any]) -> dict[str, Any]:
    """Overheads and lags (seconds) from the hub's records and the simulator's marks."""
    ready = _mark_index(marks["ready"])
    deleted = _mark_index(marks["deleted"])
    events: dict[str, float] = marks["events"]
    starts, stops, lags = [], [], []
    unmatched = {"start": 0, "stop": 0, "progress": 0}
    for record in records:
        key = (record.namespace, record.pod_name)
        if record.start_returned is not None:
            value = _overhead(ready, key, record.start_returned)
            if value is None:
                unmatched["start"] += 1
            else:
                starts.append(value)
        if record.stop_returned is not None:
            value = _overhead(deleted, key, record.stop_returned)
            if value is None:
                unmatched["stop"] += 1
            else:
                stops.append(value)
        for uid, got in record.progress:
            if uid is None:
                continue
            written = events.get(uid)
            if written is None:
                unmatched["progress"] += 1
            else:
                lags.append(got - written)
    return {"start": starts, "stop": stops, "progress": lags, "unmatched": unmatched}


def compute_after_watch(records: list[CycleRecord], deliveries: ReflectorDeliveries,
                        marks: dict[str, Any]) -> dict[str, list[float]]:
    """The same overheads measured from the moment our reflector got the change, and the
    API-to-hub delivery time itself (write in the simulator -> decoded in the hub)."""
    ready = _mark_index(marks["ready"])
    deleted = _mark_index(marks["deleted"])
    starts, stops, lags, delivery, deleted_delivery = [], [], [], [], []
    for record in records:
        key = (record.namespace, record.pod_name)
        value = _overhead(deliveries.pod_ready_by_name, key, record.start_returned)
        if value is not None:
            starts.append(value)
        value = _overhead(deliveries.pod_deleted, key, record.stop_returned)
        if value is not None:
            stops.append(value)
        seen_ready = deliveries.pod_ready_by_name.get(key)
        if seen_ready:
            written = _overhead(ready, key, seen_ready[-1])
            if written is not None:
                delivery.append(written)
        seen_deleted = deliveries.pod_deleted.get(key)
        if seen_deleted:
            written = _overhead(deleted, key, seen_deleted[-1])
            if written is not None:
                deleted_delivery.append(written)
        for uid, got in record.progress:
            if uid is not None and uid in deliveries.events:
                lags.append(got - deliveries.events[uid])
    events_written: dict[str, float] = marks["events"]
    event_delivery = [seen - events_written[uid] for uid, seen in deliveries.events.items()
                      if uid in events_written]
    return {"start": starts, "stop": stops, "progress": lags, "pod_ready_delivery": delivery,
            "pod_deleted_delivery": deleted_delivery, "event_delivery": event_delivery}


async def _start_watch_probe(sim: SimulatorProcess) -> tuple[Any, Path]:
    """Start ``benchmarks.watch_probe`` (its own process and watches) on the simulator."""
    out = Path(tempfile.mkdtemp(prefix="aks-watch-probe-")) / "seen.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.watch_probe", "--url", sim.url, "--json", str(out),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=REPO_ROOT, env=env)
    assert process.stdout is not None
    await asyncio.wait_for(process.stdout.readline(), timeout=30)
    return process, out


async def _finish_watch_probe(probe: tuple[Any, Path], marks: dict[str, Any]) -> dict[str, Any]:
    """API write -> an independent plain client decoded it (pods Ready, Events)."""
    process, out = probe
    process.stdin.write(b"stop\n")
    await process.stdin.drain()
    await asyncio.wait_for(process.wait(), timeout=60)
    seen = json.loads(out.read_text())
    out.unlink(missing_ok=True)
    out.parent.rmdir()
    first_ready: dict[str, float] = {}
    for namespace, name, _uid, at in marks["ready"]:
        first_ready.setdefault(f"{namespace}/{name}", float(at))
    ready = [seen["ready"][k] - t for k, t in first_ready.items() if k in seen["ready"]]
    events = [t - marks["events"][uid] for uid, t in seen["events"].items()
              if uid in marks["events"]]
    last_deleted = {f"{namespace}/{name}": float(at) for namespace, name, _uid, at in marks["deleted"]}
    deleted = [seen["deleted"][k] - t for k, t in last_deleted.items() if k in seen["deleted"]]
    return {"about": "a separate process with its own plain watches (benchmarks/watch_probe.py)",
            "api_to_watcher_pod_ready_ms": summarise(ready, 1000),
            "api_to_watcher_pod_deleted_ms": summarise(deleted, 1000),
            "api_to_watcher_event_ms": summarise(events, 1000)}


def _heap_census() -> dict[str, Any]:
    """How many objects the collector tracks with N servers up, and what one full
    collection of them costs: the size of every later generation-2 pause."""
    import gc
    from collections import Counter

    objects = gc.get_objects()
    kinds = Counter(type(o).__name__ for o in objects).most_common(8)
    # which dicts: their first keys tell whose they are (a trimmed pod, a progress message)
    shapes = Counter(",".join(map(str, list(o)[:4])) for o in objects
                     if type(o) is dict).most_common(8)
    count = len(objects)
    del objects
    started = time.perf_counter()
    gc.collect()
    return {"tracked_objects": count, "top_types": dict(kinds), "top_dict_shapes": dict(shapes),
            "full_collection_ms": round((time.perf_counter() - started) * 1000, 1)}


def fault_recovery(records: list[CycleRecord], marks: dict[str, Any],
                   cleared: float) -> dict[str, Any]:
    """How long the hub needed to catch up once the faults stopped.

    For a pod that became Ready while faults were on, the hub could at best answer when
    they ended: its catch-up is ``start()`` returned - max(Ready, faults cleared). The
    time to recover is the largest catch-up; pods Ready after the clear show whether
    normal service resumed (their plain start overhead).
    """
    ready = _mark_index(marks["ready"])
    catch_up: list[float] = []
    after_clear: list[float] = []
    for record in records:
        if record.start_returned is None:
            continue
        times = ready.get((record.namespace, record.pod_name))
        if not times:
            continue
        before = [t for t in times if t <= record.start_returned]
        ready_at = before[-1] if before else times[0]
        if ready_at < cleared:
            catch_up.append(max(0.0, record.start_returned - cleared))
        else:
            after_clear.append(record.start_returned - ready_at)
    return {
        "time_to_recover_s": round(max(catch_up, default=0.0), 3),
        "ready_during_faults": len(catch_up),
        "catch_up_after_clear_ms": summarise(catch_up, 1000),
        "start_overhead_ready_after_clear_ms": summarise(after_clear, 1000),
    }


async def _arrive(arrival: str, handle: Callable[[Any, CycleRecord], Awaitable[None]],
                  servers: list[tuple[Any, CycleRecord]], monitor: LoopStallMonitor) -> None:
    """The N spawn or stop requests, handled at once until all are done.

    ``burst`` (the default, the harshest case) starts all N in one loop iteration;
    ``per-iteration`` starts each in its own, as a hub handles separately received HTTP
    requests (a hub never makes N coroutines in one step, and their allocation alone
    can set off a collection that no request of a real hub would cause).

    ``monitor`` is marked once the arrival is over: in a burst, after the loop iteration
    that ran all N first steps (the stand-in hub's per-request work, N at once), so the
    stalls while the N drain are reported apart from it.
    """
    per_iteration = arrival == "per-iteration"
    tasks = []
    for s, r in servers:
        tasks.append(asyncio.ensure_future(handle(s, r)))
        if per_iteration:
            await asyncio.sleep(0)  # the modelled arrival process, not a synchronisation
    if not per_iteration:
        await monitor.settle()  # its next tick comes after the N first steps ran
    monitor.mark()
    await asyncio.gather(*tasks)


def _after_last_delete(running: list[tuple[Any, CycleRecord]],
                       marks: dict[str, Any]) -> float | None:
    """Milliseconds from the API's last pod deletion to the last stop() returning: the
    part of the stop drain the hub adds to the API server's own pace."""
    returned = [r.stop_returned for _, r in running if r.stop_returned is not None]
    deleted = [float(at) for *_key, at in marks["deleted"]]
    if not returned or not deleted:
        return None
    return round((max(returned) - max(deleted)) * 1000, 1)


def _errors(messages: list[str | None]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for message in messages:
        if message:
            counts[message] = counts.get(message, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1])[:5])


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


async def run_storm(opts: argparse.Namespace) -> dict[str, Any]:
    """One storm in this process (the hub); the simulator in a child process."""
    scenario = opts.scenario or default_scenario(opts.ready_spread)
    rng = random.Random(opts.seed)
    idle_seconds = opts.idle_minutes * 60 if opts.idle_minutes else opts.idle_seconds
    # Kubernetes clients read KUBECONFIG when imported: point it at the simulator first
    kubeconfig = benchmark_kubeconfig()
    spawner_class = load_spawner_class(opts.spawner)
    config = load_config(opts.config)
    sim = await SimulatorProcess.start(kubeconfig, users=opts.users, seed=opts.seed,
                                       scenario=scenario)
    try:
        point_at_simulator(spawner_class, config, sim.url, sim.kubeconfig)
        result = await _storm(opts, spawner_class, config, sim, rng, idle_seconds)
    finally:
        await sim.close()
    result["meta"].update({"scenario": scenario, "machine": machine()})
    return result


async def _storm(opts: argparse.Namespace, spawner_class: type, config: Any,
                 sim: SimulatorProcess, rng: random.Random,
                 idle_seconds: float | None) -> dict[str, Any]:
    monitor = LoopStallMonitor()
    monitor.start()
    steps = SlowestSteps()
    if not opts.no_step_timing:
        steps.install()
    slowest: dict[str, Any] = {}
    slowest_cpu: dict[str, Any] = {}  # the same steps ranked by their CPU time
    deliveries = ReflectorDeliveries()
    instrumented = deliveries.install(spawner_class)
    gc_pauses = GcPauses()
    spawners = [
        build_spawner(spawner_class, f"bench-user-{i:05d}", i + 1, config=config)
        for i in range(opts.users)
    ]
    records = [CycleRecord(user=s.user.name) for s in spawners]
    if opts.gc_freeze:
        # what a hub can do once its start-up objects exist: exempt them from every
        # later full collection (experiment switch, off by default)
        import gc

        gc.collect()
        gc.freeze()
    poll_interval = float(opts.poll_interval if opts.poll_interval is not None
                          else spawners[0].poll_interval)
    if idle_seconds is None:
        idle_seconds = poll_interval + 5  # long enough for every server to be polled once
    probe = await _start_watch_probe(sim) if opts.watch_probe else None
    # The hub polls its servers at start-up; for a Kubernetes spawner this loads the
    # shared pod cache, which a running hub has long done before a storm arrives.
    warm_up_hub_models()
    warm = build_spawner(spawner_class, "bench-warmup", 0, config=config)
    await warm.poll()
    stalls: dict[str, Any] = {"warmup": monitor.snapshot()}
    monitor.reset()
    slowest["warmup"] = steps.snapshot()
    slowest_cpu["warmup"] = steps.snapshot_cpu()
    steps.reset()
    gc_pauses.start()
    gc_by_phase: dict[str, Any] = {}
    sim_cpu: dict[str, float] = {}
    sim_cpu0 = (await sim.command("cpu"))["process_time"]
    fault_log: list[dict[str, Any]] = []
    fault_task = (asyncio.ensure_future(inject_faults(sim, opts.fault_seconds, fault_log))
                  if opts.faults else None)

    counts0 = counts_by_verb(await sim.command("reset_counters"))
    del counts0  # requests before the storm (warm-up) are not the storm's
    phases = PhaseProfiles(opts.profile_phases, opts.sample_phases)
    census = StepCensus() if opts.step_census else None
    census_by_phase: dict[str, Any] = {}
    if census is not None:
        census.install()  # over the step timer, if that is on; taken off before it
    await phases.begin("start")
    cpu0, wall0 = time.process_time(), time.monotonic()
    await _arrive(opts.arrival, start_server, list(zip(spawners, records, strict=True)),
                  monitor)
    cpu_start, wall_start = time.process_time() - cpu0, time.monotonic() - wall0
    await phases.end()
    if census is not None:
        census_by_phase["start"] = census.snapshot(per=opts.users)
    fault_cleared = await fault_task if fault_task is not None else None
    start_counts = counts_by_verb(await sim.command("reset_counters"))
    stalls["start"] = monitor.snapshot()
    monitor.reset()
    slowest["start"] = steps.snapshot()
    slowest_cpu["start"] = steps.snapshot_cpu()
    steps.reset()
    gc_by_phase["start"] = gc_pauses.snapshot()
    gc_pauses.reset()
    sim_cpu1 = (await sim.command("cpu"))["process_time"]
    sim_cpu["start_phase"] = round(sim_cpu1 - sim_cpu0, 3)

    running = [(s, r) for s, r in zip(spawners, records, strict=True) if r.start_returned]
    pollers = [asyncio.ensure_future(poll_server(s, r, poll_interval, rng)) for s, r in running]
    cpu1 = time.process_time()
    await asyncio.sleep(idle_seconds)  # the idle window being measured
    cpu_idle = time.process_time() - cpu1
    idle_counts = counts_by_verb(await sim.command("reset_counters"))
    stalls["idle"] = monitor.snapshot()
    monitor.reset()
    slowest["idle"] = steps.snapshot()
    slowest_cpu["idle"] = steps.snapshot_cpu()
    steps.reset()
    gc_by_phase["idle"] = gc_pauses.snapshot()
    gc_pauses.reset()
    sim_cpu2 = (await sim.command("cpu"))["process_time"]
    sim_cpu["idle_phase"] = round(sim_cpu2 - sim_cpu1, 3)
    for poller in pollers:
        poller.cancel()
    await asyncio.gather(*pollers, return_exceptions=True)
    # measured between the phases, so its own full collection is in no phase's figures
    heap_census = _heap_census()
    await monitor.settle()  # the census's own collection stalls the loop: not the stops'
    monitor.reset()
    steps.reset()
    gc_pauses.reset()

    if opts.sim_profile_stops:
        await sim.command("profile_start")
    if census is not None:
        census.reset()
    await phases.begin("stop")
    cpu2, wall2 = time.process_time(), time.monotonic()
    await _arrive(opts.arrival, stop_server, running, monitor)
    cpu_stop, wall_stop = time.process_time() - cpu2, time.monotonic() - wall2
    await phases.end()
    if census is not None:
        census_by_phase["stop"] = census.snapshot(per=len(running))
        census.uninstall()
    if opts.sim_profile_stops:
        await sim.command("profile_stop", path=str(opts.sim_profile_stops.resolve()))
    stop_counts = counts_by_verb(await sim.command("reset_counters"))
    stalls["stop"] = monitor.snapshot()
    slowest["stop"] = steps.snapshot()
    slowest_cpu["stop"] = steps.snapshot_cpu()
    steps.uninstall()
    await monitor.stop()
    gc_by_phase["stop"] = gc_pauses.snapshot()
    gc_pauses.stop()
    sim_cpu["stop_phase"] = round((await sim.command("cpu"))["process_time"] - sim_cpu2, 3)
    marks = await sim.command("marks")
    independent = await _finish_watch_probe(probe, marks) if probe is not None else None
    reflectors = reflector_health()
    await shutdown_spawner_module(spawner_class)
    deliveries.uninstall()

    raw = compute_figures(records, marks)
    # A relist (after a 410) fills the cache without watch lines, so in fault mode the
    # after-watch figures would match the wrong moments: only the end-to-end ones count.
    after_watch = (compute_after_watch(records, deliveries, marks)
                   if instrumented and not opts.faults else None)
    started_ok = len(running)
    stopped_ok = sum(1 for _, r in running if r.stop_returned is not None)
    result: dict[str, Any] = {
        "meta": {
            "spawner": opts.spawner,
            "users": opts.users,
            "seed": opts.seed,
            "ready_spread_s": opts.ready_spread,
            "poll_interval_s": poll_interval,
            "idle_seconds": idle_seconds,
            "faults": bool(opts.faults),
            "arrival": opts.arrival,
            "config": opts.config,
            "versions": describe_versions(spawner_class),
            "clock": "CLOCK_MONOTONIC, shared by the hub and simulator processes",
        },
        "start_overhead_ms": summarise(raw["start"], 1000),
        "stop_overhead_ms": summarise(raw["stop"], 1000),
        "progress_lag_ms": summarise(raw["progress"], 1000),
        "wall_time_s": {"start_phase": round(wall_start, 3), "stop_phase": round(wall_stop, 3),
                        "idle_phase": round(idle_seconds, 3),
                        "total": round(wall_start + idle_seconds + wall_stop, 3)},
        "cpu_s_per_cycle": round((cpu_start + cpu_stop) / max(opts.users, 1), 6),
        # all stops are issued at once: the drain is the last one's return
        "stop_drain_ms": round(wall_stop * 1000, 1),
        # the hub's share of the drain: the last stop's return after the last deletion
        "stop_drain_after_last_delete_ms": _after_last_delete(running, marks),
        "max_loop_step_ms": {phase: (steps_[0]["ms"] if steps_ else None)
                             for phase, steps_ in slowest.items()},
        # the same without the time the process waited for a CPU (robust on a shared machine)
        "max_loop_step_cpu_ms": {phase: (steps_[0]["cpu_ms"] if steps_ else None)
                                 for phase, steps_ in slowest_cpu.items()},
        # The harness issues all N calls in one step of its own coroutine, where a hub would
        # take N requests in N steps: the longest step of everything else (the spawner,
        # its client, the hub stand-in, the collector) is what a hub's users would feel.
        "max_loop_step_cpu_ms_outside_harness": {
            phase: next((s["cpu_ms"] for s in steps_ if not s["step"].startswith(_HARNESS_STEP)),
                        None)
            for phase, steps_ in slowest_cpu.items()},
        "cpu_s": {"start_phase": round(cpu_start, 3), "stop_phase": round(cpu_stop, 3),
                  "idle_phase": round(cpu_idle, 3)},
        "requests_per_spawn": round(sum(start_counts.values()) / max(started_ok, 1), 3),
        "requests_per_stop": round(sum(stop_counts.values()) / max(stopped_ok, 1), 3),
        "idle_requests_per_minute": round(sum(idle_counts.values()) * 60 / idle_seconds, 3)
        if idle_seconds > 0 else None,
        "requests_by_phase": {"start": start_counts, "idle": idle_counts, "stop": stop_counts},
        "heap_bytes_per_pod": None,
        "max_loop_stall_ms": max(s["max_loop_stall_ms"] for s in stalls.values()),
        # the same once the N calls have arrived (in a burst: after the iteration that ran
        # the stand-in hub's N first steps): the stalls while they drain
        "max_loop_stall_ms_after_arrival": {
            phase: stalls[phase].get("max_loop_stall_after_mark_ms") for phase in ("start", "stop")},
        "max_loop_cpu_burst_ms": max(s["max_loop_cpu_burst_ms"] for s in stalls.values()),
        "loop_stalls_by_phase": stalls,
        "spawns": {"requested": opts.users, "completed": started_ok,
                   "failed": opts.users - started_ok,
                   "errors": _errors([r.start_error for r in records])},
        "stops": {"completed": stopped_ok, "failed": started_ok - stopped_ok,
                  "errors": _errors([r.stop_error for _, r in running])},
        "polls": {"total": sum(r.polls for r in records),
                  "said_stopped_while_running": sum(r.wrong_polls for r in records),
                  "errors": _errors([r.poll_error for r in records])},
        "progress_events_received": sum(1 for r in records for uid, _ in r.progress if uid),
        "unmatched": raw["unmatched"],
        "start_returned_before_ready": sum(1 for v in raw["start"] if v < 0),
        "targets": TARGETS,
        "gc_pauses_by_phase": gc_by_phase,
        "slowest_steps_by_phase": slowest,
        "slowest_steps_cpu_by_phase": slowest_cpu,
        "gc_frozen": bool(opts.gc_freeze),
        "step_census_by_phase": census_by_phase or None,
        "heap_census_after_starts": heap_census,
        "reflectors": reflectors,
        "simulator_cpu_s": sim_cpu,
        "samples_ms": {kind: [round(v * 1000, 3) for v in raw[kind]]
                       for kind in ("start", "stop", "progress")},
    }
    if after_watch is not None:
        result["after_watch_delivery"] = {
            "about": "async_kubespawner only: measured from the moment its reflector decoded "
                     "the watch line, so API-server/transport latency is excluded",
            "start_overhead_ms": summarise(after_watch["start"], 1000),
            "stop_overhead_ms": summarise(after_watch["stop"], 1000),
            "progress_lag_ms": summarise(after_watch["progress"], 1000),
            "api_to_hub_pod_ready_ms": summarise(after_watch["pod_ready_delivery"], 1000),
            "api_to_hub_pod_deleted_ms": summarise(after_watch["pod_deleted_delivery"], 1000),
            "api_to_hub_event_ms": summarise(after_watch["event_delivery"], 1000),
        }
    if independent is not None:
        result["independent_watcher"] = independent
    if fault_cleared is not None:
        ends = [r.start_returned for r in records if r.start_returned] or [fault_cleared]
        result["fault_mode"] = {
            "script": fault_log,
            "last_start_after_faults_cleared_s": round(max(0.0, max(ends) - fault_cleared), 3),
            "spawns_completed": started_ok,
            "spawns_failed": opts.users - started_ok,
            **fault_recovery(records, marks, fault_cleared),
        }
    return result


async def add_memory(result: dict[str, Any], opts: argparse.Namespace, sizes: list[int]) -> None:
    from .memory_probe import measure_memory

    memory = await measure_memory(opts.spawner, opts.config, sizes, opts.seed)
    result["memory"] = memory
    if memory:
        largest = memory[str(max(sizes))]
        result["heap_bytes_per_pod"] = largest["heap_bytes_per_pod"]
        result["peak_rss_bytes"] = {size: m["peak_rss_bytes"] for size, m in memory.items()}


# --------------------------------------------------------------------------------- CLI


def _sizes(text: str, flag: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise BenchmarkSetupError(
            f"{flag} {text!r}: give comma-separated numbers, e.g. 10,100,1000") from None
    if not sizes or any(n < 1 for n in sizes):
        raise BenchmarkSetupError(f"{flag} {text!r}: sizes must be positive integers")
    return sizes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.spawn_storm",
        description="Spawn storms, latency to readiness, idle cost and memory for any "
                    "JupyterHub Spawner class, against the local Kubernetes simulator.")
    parser.add_argument("--spawner", default="async_kubespawner.KubeSpawner",
                        help="importable Spawner class (default async_kubespawner.KubeSpawner)")
    parser.add_argument("--config", help="Python traitlets config file (c.KubeSpawner.* ...)")
    parser.add_argument("--users", type=int, default=100, help="concurrent spawns (default 100)")
    parser.add_argument("--ready-spread", type=float, default=10.0,
                        help="pods become ready uniformly within this many seconds (default 10)")
    parser.add_argument("--scenario", help="the simulator's pod scenario spec instead "
                        "(sim/cluster/scenarios.py), e.g. 'ready,pull=1-3'")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--poll-interval", type=float,
                        help="seconds between poll() calls (default: the spawner's poll_interval)")
    parser.add_argument("--idle-seconds", type=float,
                        help="idle window between the storm and the stops (default: "
                             "poll_interval + 5 s, so every server is polled)")
    parser.add_argument("--idle-minutes", type=float,
                        help="idle mode: hold the N servers this many minutes")
    parser.add_argument("--faults", action="store_true",
                        help="fault mode: drops, 410s, 500s and a short outage during the storm")
    parser.add_argument("--fault-seconds", type=float, default=10.0,
                        help="how long the fault script runs from the storm's start (default 10)")
    parser.add_argument("--sweep", help="scaling sweep: storm sizes, e.g. 10,100,1000,5000")
    parser.add_argument("--memory", help="memory mode only: cached-pod counts, e.g. 1000,5000,20000")
    parser.add_argument("--no-memory", action="store_true",
                        help="skip the memory probe at N pods after a storm")
    parser.add_argument("--watch-probe", action="store_true",
                        help="diagnostic: an independent watcher process times API delivery")
    parser.add_argument("--gc-freeze", action="store_true",
                        help="experiment: gc.freeze() after the spawner objects are built")
    parser.add_argument("--profile", type=Path,
                        help="write a cProfile of the hub process here (pstats format)")
    parser.add_argument("--profile-phases", type=Path, metavar="DIR",
                        help="cProfile of the start and of the stop phase alone "
                             "(DIR/start.pstats, DIR/stop.pstats)")
    parser.add_argument("--sample-phases", type=Path, metavar="DIR",
                        help="py-spy samples of the start and of the stop phase alone, "
                             "collapsed stacks (DIR/start.txt, DIR/stop.txt)")
    parser.add_argument("--arrival", choices=("burst", "per-iteration"), default="burst",
                        help="how the N spawn requests, then the N stop requests, arrive: all "
                             "in one event-loop iteration (default, the harshest case) or one "
                             "per iteration, as separate HTTP requests would")
    parser.add_argument("--no-step-timing", action="store_true",
                        help="do not time each event-loop callback (the slowest-steps "
                             "diagnostic costs two clock reads per callback)")
    parser.add_argument("--step-census", action="store_true",
                        help="diagnostic: count every event-loop step of the start and the "
                             "stop phase, with its CPU time, by what ran (step_census_by_phase"
                             " in the JSON: steps and CPU microseconds per cycle); its own "
                             "cost is in the phases' CPU figures")
    parser.add_argument("--sim-profile-stops", type=Path, metavar="FILE",
                        help="diagnostic: cProfile of the simulator process during the stops")
    parser.add_argument("--debug-slow-callbacks", type=float, metavar="SECONDS",
                        help="asyncio debug mode: log every callback that runs longer")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--markdown", type=Path, help="write the Markdown table here")
    parser.add_argument("--plots", type=Path, help="write PNG plots into this directory")
    return parser


def validate(parser: argparse.ArgumentParser, opts: argparse.Namespace) -> None:
    if opts.users < 1:
        parser.error(f"--users must be at least 1, got {opts.users}")
    if opts.ready_spread < 0:
        parser.error(f"--ready-spread must be >= 0 seconds, got {opts.ready_spread}")
    if (opts.idle_seconds is not None and opts.idle_seconds < 0) or (opts.idle_minutes is not None and opts.idle_minutes <= 0):
        parser.error("--idle-seconds must be >= 0 and --idle-minutes > 0")
    if opts.sweep and opts.memory:
        parser.error("--sweep and --memory are separate runs; give one of them")


async def run_sweep(opts: argparse.Namespace, sizes: list[int]) -> dict[str, Any]:
    """One storm per size, each in a fresh hub process (no state carried between sizes)."""
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="aks-sweep-") as tmp:
        for size in sizes:
            out = Path(tmp) / f"{size}.json"
            args = [sys.executable, "-m", "benchmarks.spawn_storm", "--spawner", opts.spawner,
                    "--users", str(size), "--ready-spread", str(opts.ready_spread),
                    "--seed", str(opts.seed), "--json", str(out)]
            for flag, value in (("--config", opts.config), ("--scenario", opts.scenario),
                                ("--poll-interval", opts.poll_interval),
                                ("--idle-seconds", opts.idle_seconds)):
                if value is not None:
                    args += [flag, str(value)]
            if opts.no_memory:
                args.append("--no-memory")
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(
                p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)}
            process = await asyncio.create_subprocess_exec(*args, cwd=REPO_ROOT, env=env)
            if await process.wait() != 0 or not out.exists():
                raise RuntimeError(f"the storm with --users {size} failed; run it alone to see why")
            runs[str(size)] = json.loads(out.read_text())
            print(f"sweep: {size} users done", file=sys.stderr, flush=True)
    first = next(iter(runs.values()))
    return {"meta": {**first["meta"], "mode": "sweep", "sizes": sizes}, "runs": runs}


async def run(opts: argparse.Namespace) -> dict[str, Any]:
    benchmark_kubeconfig()  # before any Kubernetes client is imported
    if opts.memory:
        sizes = _sizes(opts.memory, "--memory")
        spawner_class = load_spawner_class(opts.spawner)
        from .memory_probe import measure_memory

        memory = await measure_memory(opts.spawner, opts.config, sizes, opts.seed)
        return {"meta": {"mode": "memory", "spawner": opts.spawner, "seed": opts.seed,
                         "sizes": sizes, "versions": describe_versions(spawner_class),
                         "machine": machine()},
                "memory": memory,
                "heap_bytes_per_pod": memory[str(max(sizes))]["heap_bytes_per_pod"],
                "max_loop_stall_ms": max(max(m["max_loop_stall_ms_loading"],
                                             m["max_loop_stall_ms_holding"])
                                         for m in memory.values()),
                "targets": TARGETS}
    if opts.sweep:
        return await run_sweep(opts, _sizes(opts.sweep, "--sweep"))
    result = await run_storm(opts)
    result["meta"]["mode"] = ("faults" if opts.faults else
                              "idle" if opts.idle_minutes else "storm")
    if not opts.no_memory:
        await add_memory(result, opts, [opts.users])
    return result


#: How the slowest-steps diagnostic names a step of the harness's own main coroutine.
_HARNESS_STEP = "task _run_instrumented.<locals>.main_coroutine"


def _run_instrumented(opts: argparse.Namespace) -> dict[str, Any]:
    """``run(opts)``, optionally under cProfile or asyncio's slow-callback logging.

    Both exist to answer "where does the time go" when a figure misses its target.
    """
    debug = opts.debug_slow_callbacks is not None

    async def main_coroutine() -> dict[str, Any]:
        if debug:
            import logging

            logging.basicConfig(level=logging.WARNING)
            asyncio.get_running_loop().slow_callback_duration = opts.debug_slow_callbacks
        return await run(opts)

    if opts.profile is None:
        return asyncio.run(main_coroutine(), debug=debug)
    import cProfile

    profiler = cProfile.Profile()
    try:
        return profiler.runcall(asyncio.run, main_coroutine(), debug=debug)
    finally:
        opts.profile.parent.mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(str(opts.profile))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    opts = parser.parse_args(argv)
    validate(parser, opts)
    try:
        result = _run_instrumented(opts)
    except BenchmarkSetupError as exc:
        parser.error(str(exc))
    from .report import markdown_report, write_plots

    table = markdown_report(result)
    print(table)
    if opts.json:
        opts.json.parent.mkdir(parents=True, exist_ok=True)
        opts.json.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")
    if opts.markdown:
        opts.markdown.parent.mkdir(parents=True, exist_ok=True)
        opts.markdown.write_text(table + "\n")
    if opts.plots:
        for path in write_plots(result, opts.plots):
            print(f"plot: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
