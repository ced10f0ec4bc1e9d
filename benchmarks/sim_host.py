"""The simulator process of a benchmark run: API server, nodes, scheduler and kubelet.

Why a separate process: the hub process being measured must not share its event loop or
its CPU accounting with the API server, or every figure (overhead, CPU per cycle, loop
stalls) would include the simulator's own work.

Why this process records "marks": the figures compare the moment ``start()`` returns in
the hub with the moment the pod became Ready *in the API*. A pod's Ready condition carries
``lastTransitionTime`` with one-second resolution only, which is useless for
millisecond overheads. So the store used here carries a commit listener
(:class:`CommitMarks`, through the store's public ``commit_listeners``) that timestamps,
at commit time, each write that makes a pod Ready, each pod deletion and each Event it
stores, on ``CLOCK_MONOTONIC``. On Linux that clock is system-wide, so the hub process
can subtract its own ``time.monotonic()`` readings from these marks directly. A mark is
the instant the change exists in the API (before any watcher is told), so the overhead
includes everything a real hub pays: watch delivery over HTTP, JSON decoding, cache
update and waking the waiting coroutine.

Protocol: the process prints one JSON line ``{"url": ..., "kubeconfig": ...}`` when it
listens, then answers JSON commands read line by line from stdin, one JSON line each:

- ``{"cmd": "marks"}`` → ``{"ready": [[ns, name, uid, t], ...], "deleted": [...],
  "events": {uid: t}}``
- ``{"cmd": "counters"}`` / ``{"cmd": "reset_counters"}`` → the request counters
- ``{"cmd": "fault", "command": {...}}`` → the simulator's fault admin command
  (same body as ``POST /_sim/faults``)
- ``{"cmd": "cpu"}`` → the simulator process's CPU seconds so far
- ``{"cmd": "drop_watches"}`` → end every client (HTTP) watch; controllers keep theirs
- ``{"cmd": "populate", "count": N, "template": pod, "namespace": ns}`` → create N
  running, ready pods directly in the store (memory mode: no kubelet involved); with
  ``"substitute": MARK``, pod i is the template with every ``MARK`` replaced by
  ``MARK-i`` (zero-padded to 5 digits), name included, so each pod is its own user's
- ``{"cmd": "profile_start"}`` / ``{"cmd": "profile_stop", "path": FILE}`` → cProfile of
  this process between the two (pstats file), to see where the simulator's CPU goes
- ``{"cmd": "service_account_token", "namespace": ns, "name": sa}`` → ``{"token": ...}``:
  a bound token of ServiceAccount ``ns/sa`` (made if missing), as a pod would mount it;
  with ``--auth`` only
- ``{"cmd": "gc_pauses"}`` → this process's garbage-collector pauses by generation
  (count, total and longest) since the previous ``gc_pauses``
- ``{"cmd": "flow_control"}`` → the priority levels' live counters (``GET /_sim/flowcontrol``)
- ``{"cmd": "quit"}`` → stop and exit

Who the clients are: with ``--auth`` the kubeconfig carries the admin token
(``system:masters``: exempt from API Priority and Fairness, as an administrator is) and a
benchmark asks for ServiceAccount tokens for the programs it measures, so a hub and an
operator are different users, hence different flows of the ``workload-low`` priority level,
as in a cluster. Without it, flow control tells clients apart by address and User-Agent.
``--no-flow-control`` serves requests in arrival order (the simulator before it modelled
API Priority and Fairness), for comparisons.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import cProfile
import json
import math
import os
import random
import sys
import time
import uuid
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kubesim.cluster.clock import Clock
from kubesim.cluster.kubelet import Kubelet
from kubesim.cluster.nodes import NodePoolSpec, SimNode, build_nodes
from kubesim.cluster.scenarios import ScenarioBook
from kubesim.cluster.scheduler import Scheduler
from kubesim.gc_policy import freeze_survivors_of_full_collections
from kubesim.store import Store
from kubesim.testing import run_simulator

from benchmarks.diagnostics import GcPauses

#: Pods a simulated node accepts; nodes are added so every user fits.
PODS_PER_NODE = 110


def _is_ready(pod: dict[str, Any] | None) -> bool:
    if not pod:
        return False
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


class CommitMarks:
    """A store commit listener that timestamps the writes the figures are measured from.

    Registered in :attr:`Store.commit_listeners`, which the store calls synchronously
    at each commit before any watcher is offered the event: the mark is the instant the
    change exists in the API. Listeners do not get the previous object, so the uids of
    the pods last seen Ready are kept to tell a write that *makes* a pod Ready.
    """

    def __init__(self) -> None:
        self.ready_marks: list[tuple[str, str, str, float]] = []
        self.deleted_marks: list[tuple[str, str, str, float]] = []
        self.event_marks: dict[str, float] = {}
        self._ready_uids: set[str] = set()

    def __call__(self, rt: Any, event_type: str, obj: dict[str, Any]) -> None:
        now = time.monotonic()
        plural = getattr(rt, "plural", "")
        if plural == "pods":
            meta = obj.get("metadata") or {}
            uid = meta.get("uid", "")
            key = (meta.get("namespace", ""), meta.get("name", ""), uid)
            if event_type == "DELETED":
                self.deleted_marks.append((*key, now))
                self._ready_uids.discard(uid)
            elif _is_ready(obj):
                if uid not in self._ready_uids:
                    self._ready_uids.add(uid)
                    self.ready_marks.append((*key, now))
            else:
                self._ready_uids.discard(uid)
        elif plural == "events" and event_type == "ADDED":
            event_uid = (obj.get("metadata") or {}).get("uid")
            if event_uid:
                self.event_marks[event_uid] = now


class MarkingStore(Store):
    """The simulator store of a benchmark run: commit marks, and which watches are internal."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.marker = CommitMarks()
        self.commit_listeners.append(self.marker)
        self.internal_watches: weakref.WeakSet[Any] = weakref.WeakSet()

    def drop_client_watches(self) -> int:
        """End every watch served over HTTP (the controllers' own watches stay)."""
        dropped = 0
        for watch in self.watches():
            if watch not in self.internal_watches:
                watch.close("dropped by the benchmark's fault mode")
                dropped += 1
        return dropped

    def marks(self) -> dict[str, Any]:
        return {
            "ready": self.marker.ready_marks,
            "deleted": self.marker.deleted_marks,
            "events": self.marker.event_marks,
        }


def seed_uids(seed: int) -> None:
    """Make object uids a seeded sequence, so per-pod scenario timings replay exactly.

    The kubelet draws each pod's ranged timings from ``seed/uid``; with random uuid4 uids
    two runs would get different readiness spreads. Only this process is affected.
    """
    rng = random.Random(f"uids/{seed}")

    def seeded_uuid4() -> uuid.UUID:
        return uuid.UUID(int=rng.getrandbits(128), version=4)

    uuid.uuid4 = seeded_uuid4


def nodes_for(users: int) -> list[SimNode]:
    """Enough nodes of generous size that scheduling never limits a storm of ``users``."""
    count = max(1, math.ceil(users * 1.1 / PODS_PER_NODE))
    pool = NodePoolSpec(count=count, name_prefix="bench-node", cpu="512", memory="2Ti",
                        pods=PODS_PER_NODE)
    return build_nodes([pool])


class ControllerStoreView:
    """The store as the in-process controllers see it: their watches are remembered.

    The fault mode drops the *API clients'* watches (as a real API server restart or a
    load balancer does); the simulated scheduler and kubelet stand for components with
    their own connections, and closing their in-process watches would stop the cluster.
    """

    def __init__(self, store: MarkingStore) -> None:
        self._store = store

    def watch(self, *args: Any, **kwargs: Any) -> Any:
        watch = self._store.watch(*args, **kwargs)
        self._store.internal_watches.add(watch)
        return watch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class ViewedController:
    """Starts a controller on a :class:`ControllerStoreView` of the store."""

    def __init__(self, controller: Any) -> None:
        self.controller = controller

    async def start(self, store: Store) -> None:
        assert isinstance(store, MarkingStore)
        await self.controller.start(ControllerStoreView(store))

    async def stop(self) -> None:
        await self.controller.stop()


class NodeRegistrar:
    """Registers the Node objects (the scheduler works from its own list; kubectl likes them)."""

    def __init__(self, nodes: Sequence[SimNode]) -> None:
        self.nodes = nodes

    async def start(self, store: Store) -> None:
        nodes_rt = store.resource("nodes")
        now = Clock.timestamp()
        for node in self.nodes:
            body: dict[str, Any] = node.to_api(now)
            status = body.pop("status")
            await store.create(nodes_rt, None, body)
            await store.patch(nodes_rt, None, node.name, {"status": status}, "merge",
                              subresource="status")

    async def stop(self) -> None:
        return None


def running_status(pod: dict[str, Any], index: int) -> dict[str, Any]:
    """What a kubelet reports for a running, ready single-container pod."""
    now = Clock.timestamp()
    ip = f"10.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255}"
    containers = (pod.get("spec") or {}).get("containers") or []
    conditions = [
        {"type": kind, "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
        for kind in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                     "PodScheduled")
    ]
    return {
        "phase": "Running",
        "conditions": conditions,
        "hostIP": "10.0.0.1",
        "hostIPs": [{"ip": "10.0.0.1"}],
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": now,
        "qosClass": "Burstable",
        "containerStatuses": [
            {
                "name": c.get("name", "notebook"),
                "state": {"running": {"startedAt": now}},
                "lastState": {},
                "ready": True,
                "restartCount": 0,
                "image": c.get("image", ""),
                "imageID": f"docker.io/library/{c.get('image', '')}@sha256:{'0' * 64}",
                "containerID": f"containerd://{uuid.uuid4().hex}{uuid.uuid4().hex}",
                "started": True,
            }
            for c in containers
        ],
    }


async def populate(store: Store, template: dict[str, Any], count: int, namespace: str,
                   substitute: str | None = None) -> int:
    """Create ``count`` running pods from ``template`` (memory mode: no kubelet needed)."""
    pods = store.resource("pods")
    base = template.get("metadata", {}).get("name") or "bench-pod"
    text = json.dumps(template) if substitute else ""
    created = 0
    for index in range(count):
        if substitute:
            pod = json.loads(text.replace(substitute, f"{substitute}-{index:05d}"))
        else:
            pod = copy.deepcopy(template)
        meta = pod.setdefault("metadata", {})
        if not substitute:
            meta["name"] = f"{base}-{index}"
        meta.pop("namespace", None)
        pod.setdefault("spec", {})["nodeName"] = "bench-node"
        await store.create(pods, namespace, pod)
        await store.patch(pods, namespace, meta["name"],
                          {"status": running_status(pod, index)}, "merge", subresource="status")
        created += 1
        if index % 200 == 0:
            await asyncio.sleep(0)  # let the API answer requests while we fill the store
    return created


async def service_account_token(sim: Any, namespace: str, name: str) -> str:
    """A bound token of ServiceAccount ``namespace/name``, creating the account if needed."""
    if sim.auth is None or not sim.auth.enabled:
        raise ValueError("service account tokens need the simulator started with --auth")
    accounts = sim.store.resource("serviceaccounts")
    try:
        sim.store.get_ref(accounts, namespace, name)
    except Exception:  # StatusError 404: make it
        await sim.store.create(accounts, namespace, {
            "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}})
    token: str = sim.auth.token_for(namespace, name, expiration_seconds=24 * 3600)
    return token


_profiler: cProfile.Profile | None = None
_gc_pauses = GcPauses()


def _profile(start: bool, path: str | None = None) -> dict[str, Any]:
    global _profiler
    if start:
        _profiler = cProfile.Profile()
        _profiler.enable()
        return {"profiling": True}
    if _profiler is None:
        raise ValueError("profile_stop without profile_start")
    _profiler.disable()
    _profiler.dump_stats(path or "sim.prof")
    _profiler = None
    return {"written": path}


async def handle(store: MarkingStore, sim: Any, command: dict[str, Any]) -> Any:
    match command.get("cmd"):
        case "profile_start":
            return _profile(True)
        case "profile_stop":
            return _profile(False, command.get("path"))
        case "marks":
            return store.marks()
        case "counters":
            return sim.counters.snapshot()
        case "reset_counters":
            snapshot = sim.counters.snapshot()
            sim.counters.reset()
            return snapshot
        case "fault":
            return sim.faults.apply_admin(command["command"])
        case "cpu":
            times = os.times()
            return {"process_time": time.process_time(), "user": times.user,
                    "system": times.system}
        case "gc_pauses":
            # this process's cyclic-collector pauses since the last call, by generation
            snapshot = _gc_pauses.snapshot()
            _gc_pauses.reset()
            return snapshot
        case "service_account_token":
            return {"token": await service_account_token(sim, command["namespace"],
                                                         command["name"])}
        case "flow_control":
            flow = sim.flow_control
            return {"enabled": False} if flow is None else {"enabled": True, **flow.describe()}
        case "drop_watches":
            return {"dropped": store.drop_client_watches()}
        case "populate":
            count = await populate(store, command["template"], int(command["count"]),
                                   command.get("namespace", "default"),
                                   command.get("substitute"))
            return {"created": count}
        case other:
            raise ValueError(f"unknown command {other!r}")


async def serve(args: argparse.Namespace) -> None:
    seed_uids(args.seed)
    random.seed(args.seed)  # the fault script draws from the global generator
    store = MarkingStore(bookmark_interval=args.bookmark_interval)
    controllers: list[Any] = []
    if not args.no_cluster:
        nodes = nodes_for(args.users)
        scenarios = ScenarioBook(default=args.scenario, seed=args.seed)
        clock = Clock.real()
        controllers = [NodeRegistrar(nodes),
                       ViewedController(Scheduler(nodes, scenarios, clock)),
                       ViewedController(Kubelet(nodes, scenarios, clock))]
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with run_simulator(store=store, controllers=controllers,
                             kubeconfig_path=args.kubeconfig, auth=args.auth,
                             flow_control=args.flow_control) as sim:
        print(json.dumps({"url": sim.url, "kubeconfig": str(sim.kubeconfig_path)}), flush=True)
        while line := await reader.readline():
            try:
                command = json.loads(line)
                if command.get("cmd") == "quit":
                    break
                reply = {"ok": True, "result": await handle(store, sim, command)}
            except Exception as exc:  # the benchmark reads the error; the simulator stays up
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sim_host",
                                     description="The simulator process of a benchmark run.")
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--users", type=int, default=100, help="sizes the node pool")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--scenario", default="instant,ready-after=0-10",
                        help="default pod scenario (sim/cluster/scenarios.py spec)")
    parser.add_argument("--bookmark-interval", type=float, default=60.0)
    parser.add_argument("--no-cluster", action="store_true",
                        help="API server only (memory mode fills the store itself)")
    parser.add_argument("--auth", action="store_true",
                        help="authentication and RBAC on (the kubeconfig gets the admin "
                        "token; ask for ServiceAccount tokens with service_account_token)")
    parser.add_argument("--no-flow-control", dest="flow_control", action="store_false",
                        help="serve requests in arrival order, not by API Priority and "
                        "Fairness")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    freeze_survivors_of_full_collections()  # as the kubesim command does
    _gc_pauses.start()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
