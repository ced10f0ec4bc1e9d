"""Operator mode under a spawn storm: hub latency after Ready, reconcile rate, memory, failover.

    python -m benchmarks.operator_storm --users 1000 --ready-spread 10 --json out.json
    python -m benchmarks.operator_storm --users 300 --failover          # kill the leader

The simulator runs in its own process (``benchmarks.sim_host``: pods become Ready a
uniformly drawn 0-S s after they start, everything else instant; it timestamps the
moment each pod is Ready *in the API*). This process plays both the hub (N
``OperatorSpawner``s started at once, as ``User.spawn`` does, with a progress listener
each) and the operator (one replica, or two with ``--failover``), on one event loop — so
the hub's figures include the operator's CPU on the same loop, a pessimistic setup.

Figures (JSON):

``start_after_ready_ms``
    ``start()`` returned - the pod became Ready in the API (the operator's status write
    and its delivery to the hub included).
``reconciles_per_s``
    reconcile passes during the storm / storm wall time (driven by the storm's demand);
    ``steady_reconciles_per_s``: passes per second when every server is queued at once,
    several times (a resync of N Ready servers): what one replica sustains.
``operator_bytes_per_server``
    the deep size of the leader's caches and per-server memory / N (trimmed objects are
    kept as compact JSON bytes).
``failover``
    with ``--failover``: the leader is killed (Lease not released) when half the servers
    are Ready; seconds until the standby leads, and duplicate / orphaned children.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from traitlets.config import Config

from async_kubespawner.kube.client import ApiSettings, build_api, load_configuration
from async_kubespawner.operator import crds
from async_kubespawner.operator.app import Operator, OperatorSettings
from async_kubespawner.operator.kubeio import NOTEBOOK_TEMPLATES
from async_kubespawner.operator.leader import LeaseSettings
from async_kubespawner.operator.metrics import RECONCILE_DURATION
from async_kubespawner.operator.models import API_VERSION
from async_kubespawner.operator.spawner import OperatorSpawner, stop_operator_reflectors

from .figures import summarise
from .hub_stand_in import CycleRecord, build_spawner, start_server, stop_server
from .simulator_process import SimulatorProcess
from .spawn_storm import compute_figures, default_scenario
from .spawner_loading import benchmark_kubeconfig, shutdown_spawner_module

NAMESPACE = "default"

TEMPLATE = {
    "apiVersion": API_VERSION,
    "kind": "NotebookTemplate",
    "metadata": {"name": "bench"},
    "spec": {
        "variables": [{"name": "image", "default": "quay.io/jupyterhub/singleuser:5"}],
        "pods": [{
            "id": "notebook",
            "name": "jupyter-{server.slug}",
            "labels": {"component": "singleuser-server"},
            "spec": {"containers": [{
                "name": "notebook", "image": "{image}",
                "envFrom": [{"secretRef": {"name": "{secret.name}"}}],
                "ports": [{"name": "notebook-port", "containerPort": 8888}],
                "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
            }]},
        }],
    },
}


def deep_size(obj: Any, seen: set[int] | None = None) -> int:
    """Bytes held by ``obj`` and everything it references (each object counted once)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, list | tuple | set | frozenset):
        size += sum(deep_size(v, seen) for v in obj)
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        size += deep_size(vars(obj), seen)
    elif hasattr(obj, "__slots__"):
        size += sum(deep_size(getattr(obj, s), seen) for s in obj.__slots__ if hasattr(obj, s))
    return size


def operator_bytes(operator: Operator) -> int:
    """What the operator keeps per managed server: its caches and per-server memory."""
    held = [operator.servers._objects, operator.pods._objects, operator.pvcs._objects,
            operator.reconciler._memory, operator.reconciler._recorded]
    return sum(deep_size(h) for h in held)


def reconcile_seconds() -> float:
    total = 0.0
    for metric in RECONCILE_DURATION.collect():
        for sample in metric.samples:
            if sample.name.endswith("_sum"):
                total += sample.value
    return total


async def run(opts: argparse.Namespace) -> dict[str, Any]:
    kubeconfig = benchmark_kubeconfig()
    sim = await SimulatorProcess.start(kubeconfig, users=opts.users, seed=opts.seed,
                                       scenario=default_scenario(opts.ready_spread))
    configuration = await load_configuration(ApiSettings(kubeconfig=sim.kubeconfig))
    admin = build_api(configuration, request_timeout=10, retry_timeout=30)
    operators: list[Operator] = []
    try:
        for manifest in crds.all_crds():
            await admin.request("create", "customresourcedefinitions", "POST",
                                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                                body=manifest)
        await admin.create(NOTEBOOK_TEMPLATES, NAMESPACE, TEMPLATE)
        lease = LeaseSettings()  # the production timings: 10 s lease, renew every 2 s
        for identity in ("op-a", "op-b") if opts.failover else ("op-a",):
            api = build_api(configuration, request_timeout=10, retry_timeout=30)
            operator = Operator(api, OperatorSettings(
                namespace=NAMESPACE, lease_namespace=NAMESPACE, identity=identity,
                lease=lease, workers=opts.workers, resync_period=600))
            await operator.start()
            operators.append(operator)
            while not (operators[0].is_leader and operator.synced):  # noqa: ASYNC110
                await asyncio.sleep(0.05)  # set-up only; nothing is measured yet
        config = Config()
        config.OperatorSpawner = Config({"kubeconfig": sim.kubeconfig, "namespace": NAMESPACE,
                                         "template": "bench", "start_timeout": 300})
        spawners = [build_spawner(OperatorSpawner, f"bench-user-{i:05d}", i + 1, config=config)
                    for i in range(opts.users)]
        records = [CycleRecord(user=s.user.name) for s in spawners]
        warm = build_spawner(OperatorSpawner, "bench-warmup", 0, config=config)
        await warm.poll()
        await sim.command("reset_counters")
        failover: dict[str, Any] | None = None
        reconciles0, busy0 = operators[0].reconciles, reconcile_seconds()
        wall0 = time.monotonic()
        storm = asyncio.gather(*(start_server(s, r) for s, r in zip(spawners, records,
                                                                      strict=True)))
        if opts.failover:
            failover = await kill_leader_midway(operators, records, opts.users)
        await storm
        wall = time.monotonic() - wall0
        passes = sum(o.reconciles for o in operators) - reconciles0
        busy = reconcile_seconds() - busy0
        leader = next(o for o in operators if o.is_leader)
        per_server = operator_bytes(leader) / opts.users
        capacity = await resync_rate(leader, opts.users, opts.resync_rounds)
        requests = await sim.command("counters")
        marks = await sim.command("marks")
        raw = compute_figures(records, marks)
        children = await children_census(admin)
        started = sum(1 for r in records if r.start_returned is not None)
        errors = [r.start_error for r in records if r.start_error]
        await asyncio.gather(*(stop_server(s, r) for s, r in zip(spawners, records,
                                                                   strict=True)
                               if r.start_returned is not None))
        stopped = sum(1 for r in records if r.stop_returned is not None)
        result = {
            "meta": {"users": opts.users, "ready_spread_s": opts.ready_spread,
                     "seed": opts.seed, "workers": opts.workers, "failover": opts.failover},
            "started": started,
            "stopped": stopped,
            "start_errors": errors[:5],
            "storm_wall_s": round(wall, 3),
            "start_after_ready_ms": summarise(raw["start"], 1000),
            "reconciles": passes,
            "reconciles_per_s": round(passes / wall, 1),
            "reconcile_seconds_per_pass": round(busy / passes, 4) if passes else None,
            "steady_reconciles_per_s": capacity,
            "operator_bytes_per_server": round(per_server),
            "api_requests": requests.get("total"),
            "children": children,
        }
        if failover is not None:
            result["failover"] = failover
        return result
    finally:
        for operator in operators:
            await operator.stop()
            await operator.api.close()
        await stop_operator_reflectors()
        await shutdown_spawner_module(OperatorSpawner)
        await admin.close()
        await sim.close()


async def resync_rate(leader: Operator, users: int, rounds: int) -> float | None:
    """Passes per second when every server is queued ``rounds`` times (all Ready, caches
    warm): what one replica sustains, the figure behind "reconciles/s"."""
    if rounds <= 0:
        return None
    before = leader.reconciles
    started = time.monotonic()
    for _ in range(rounds):
        target = leader.reconciles + users
        leader._resync()
        while leader.reconciles < target:  # noqa: ASYNC110 (the end of a measured run)
            await asyncio.sleep(0.005)
    return round((leader.reconciles - before) / (time.monotonic() - started), 1)


async def kill_leader_midway(operators: list[Operator], records: list[CycleRecord],
                             users: int) -> dict[str, Any]:
    leader, standby = operators
    while sum(1 for r in records if r.start_returned is not None) < users // 2:  # noqa: ASYNC110
        await asyncio.sleep(0.05)  # the moment to inject the failure, not a synchronisation
    await leader.kill()
    killed = time.monotonic()
    while not standby.is_leader:  # noqa: ASYNC110 (measured to 50 ms, far below the lease)
        await asyncio.sleep(0.05)
    return {"takeover_s": round(time.monotonic() - killed, 3),
            "lease_duration_s": standby.settings.lease.lease_duration}


async def children_census(admin: Any) -> dict[str, int]:
    """Pods per NotebookServer: duplicates (two pods for one server) and orphans (a pod
    whose owner does not exist)."""
    from async_kubespawner.kube.client import PODS
    from async_kubespawner.operator.kubeio import NOTEBOOK_SERVERS

    servers = await admin.list_page(NOTEBOOK_SERVERS, NAMESPACE)
    live = {s["metadata"]["uid"] for s in servers.get("items") or ()}
    pods = await admin.list_page(PODS, NAMESPACE)
    per_owner: dict[str, int] = {}
    orphans = 0
    for pod in pods.get("items") or ():
        owners = [r["uid"] for r in pod["metadata"].get("ownerReferences") or ()]
        if not owners or owners[0] not in live:
            orphans += 1
            continue
        per_owner[owners[0]] = per_owner.get(owners[0], 0) + 1
    return {"servers": len(live), "pods": sum(per_owner.values()) + orphans,
            "duplicate_pods": sum(n - 1 for n in per_owner.values()), "orphaned_pods": orphans}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.operator_storm",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--ready-spread", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--resync-rounds", type=int, default=3,
                        help="after the storm, queue every server this many times and "
                        "measure the pass rate")
    parser.add_argument("--failover", action="store_true",
                        help="two replicas; kill the leader when half the servers are Ready")
    parser.add_argument("--json", type=Path, default=None)
    opts = parser.parse_args(argv)
    result = asyncio.run(run(opts))
    text = json.dumps(result, indent=2)
    if opts.json:
        opts.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
