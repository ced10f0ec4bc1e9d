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
``event_delay_ms``
    per Event reason: from the step that emitted the Event (written in the background,
    bounded) to its write ending: how far the hub's progress messages lag.
``operator_bytes_per_server``
    the deep size of the leader's caches and per-server memory / N (trimmed objects are
    kept as compact JSON bytes).
``failover``
    with ``--failover``: the leader is killed (Lease not released; SIGKILL with
    ``--operator-process``) when half the servers are Ready; seconds until the Lease names
    the standby, and duplicate / orphaned children.

Who is who: the simulator authenticates (``--auth`` of ``benchmarks.sim_host``) and the
hub and the operator each get the ServiceAccount and RBAC a cluster gives them
(``examples/operator/hub-role.yaml`` and ``operator.yaml``, in this namespace): two users,
hence two flows of API Priority and Fairness's ``workload-low`` level, so the operator's
status write is queued fairly against the hub's burst of creates, as on a real API server.
The set-up and the census use the admin token (exempt). ``--no-auth`` runs everyone as the
admin without RBAC (flows then by address and User-Agent: hub and operator share one);
``--no-flow-control`` has the simulator serve requests in arrival order.

With ``--operator-process`` the replicas are ``python -m async_kubespawner.operator``
child processes (reconcile counts from their ``/metrics``, memory as the leader's RSS
growth over the storm / N).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml
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
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "operator"
HUB_ACCOUNT, OPERATOR_ACCOUNT = "hub", "async-kubespawner-operator"

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
    # The children's owner index and the pending status-write echoes, where they exist.
    held += [getattr(cache, name) for cache in (operator.pods, operator.pvcs)
             for name in ("_by_owner",) if hasattr(cache, name)]
    held += [getattr(operator.reconciler, name)
             for name in ("_written", "_unechoed", "_parsed_templates")
             if hasattr(operator.reconciler, name)]
    return sum(deep_size(h) for h in held)


def reconcile_seconds() -> float:
    total = 0.0
    for metric in RECONCILE_DURATION.collect():
        for sample in metric.samples:
            if sample.name.endswith("_sum"):
                total += sample.value
    return total


class HopTrace:
    """Timestamps of the hop from "pod Ready in the API" to "start() returned", per server
    (in-process replicas only): when the leader's pod cache got the Ready pod, when the
    reconcile writing the Ready status began and ended its write, and when the hub's
    NotebookServer cache got the Ready status. Where the latency after Ready goes."""

    def __init__(self) -> None:
        self.pod_seen: dict[str, float] = {}
        self.write_began: dict[str, float] = {}
        self.write_ended: dict[str, float] = {}
        self.hub_seen: dict[str, float] = {}
        #: reason -> seconds from each background Event's emission to its write.
        self.event_delays: dict[str, list[float]] = {}

    def attach_operator(self, operator: Operator) -> None:
        from async_kubespawner.operator.reconciler import owner_name

        pods = operator.pods
        upsert = pods.upsert

        def traced_upsert(obj: dict[str, Any]) -> None:
            conditions = (obj.get("status") or {}).get("conditions") or ()
            if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
                self.pod_seen.setdefault(owner_name(obj) or "", time.monotonic())
            upsert(obj)

        pods.upsert = traced_upsert  # type: ignore[method-assign]

        def on_status_write(server: dict[str, Any], status: dict[str, Any],
                            began: float, ended: float) -> None:
            if status.get("phase") == "Ready":
                name = server["metadata"]["name"]
                self.write_began.setdefault(name, began)
                self.write_ended.setdefault(name, ended)

        operator.reconciler.status_write_listeners.append(on_status_write)

        def on_event_write(server: dict[str, Any], reason: str, emitted: float,
                           written: float) -> None:
            self.event_delays.setdefault(reason, []).append(written - emitted)

        listeners = getattr(operator.reconciler, "event_write_listeners", None)
        if listeners is not None:
            listeners.append(on_event_write)

    def attach_hub(self, cache: Any) -> None:
        upsert = cache.upsert

        def traced_upsert(obj: dict[str, Any]) -> None:
            if (obj.get("status") or {}).get("phase") == "Ready":
                self.hub_seen.setdefault(obj["metadata"]["name"], time.monotonic())
            upsert(obj)

        cache.upsert = traced_upsert

    def figures(self, spawners: list[Any], records: list[CycleRecord],
                marks: dict[str, Any]) -> dict[str, Any]:
        ready = {name: float(at) for _ns, name, _uid, at in marks["ready"]}
        stages: dict[str, list[float]] = {
            "ready_to_operator_seen": [], "operator_seen_to_write_began": [],
            "status_write": [], "write_ended_to_hub_seen": [], "hub_seen_to_start_returned": []}
        for spawner, record in zip(spawners, records, strict=True):
            name = spawner.object_name
            chain = [ready.get(record.pod_name), self.pod_seen.get(name),
                     self.write_began.get(name), self.write_ended.get(name),
                     self.hub_seen.get(name), record.start_returned]
            if any(t is None for t in chain):
                continue
            for stage, (a, b) in zip(stages.values(), itertools.pairwise(chain),
                                     strict=True):
                stage.append(b - a)  # type: ignore[operator]
        return {k: summarise(v, 1000) for k, v in stages.items()}


class InProcessReplicas:
    """Operator replicas on this process's loop (shares the CPU with the stand-in hub)."""

    def __init__(self, configuration: Any, opts: argparse.Namespace) -> None:
        self.configuration = configuration
        self.opts = opts
        self.operators: list[Operator] = []
        self.trace = HopTrace()

    async def start(self, identities: list[str]) -> None:
        lease = LeaseSettings()  # the production timings: 10 s lease, renew every 2 s
        for identity in identities:
            api = build_api(self.configuration, request_timeout=10, retry_timeout=30)
            operator = Operator(api, OperatorSettings(
                namespace=NAMESPACE, lease_namespace=NAMESPACE, identity=identity,
                lease=lease, workers=self.opts.workers, resync_period=600,
                **admission_settings(self.opts)))
            self.trace.attach_operator(operator)
            await operator.start()
            self.operators.append(operator)
            while not (self.operators[0].is_leader and operator.synced):  # noqa: ASYNC110
                await asyncio.sleep(0.05)  # set-up only; nothing is measured yet

    async def counters(self) -> tuple[int, float]:
        return sum(o.reconciles for o in self.operators), reconcile_seconds()

    async def memory_per_server(self, users: int) -> float:
        leader = next(o for o in self.operators if o.is_leader)
        return operator_bytes(leader) / users

    async def steady_rate(self, users: int, rounds: int) -> float | None:
        return await resync_rate(next(o for o in self.operators if o.is_leader), users, rounds)

    async def kill_leader(self) -> None:
        leader = next(o for o in self.operators if o.is_leader)
        await leader.kill()

    def leader_identity(self) -> str | None:
        return next((o.identity for o in self.operators if o.is_leader), None)

    async def stop(self) -> None:
        for operator in self.operators:
            await operator.stop()
            await operator.api.close()


class ProcessReplicas:
    """``python -m async_kubespawner.operator`` child processes, as in a Deployment."""

    def __init__(self, kubeconfig: str, opts: argparse.Namespace, admin: Any) -> None:
        self.kubeconfig = kubeconfig
        self.opts = opts
        self.admin = admin
        self.processes: dict[str, tuple[asyncio.subprocess.Process, int]] = {}
        self.baseline_rss: int | None = None

    async def start(self, identities: list[str]) -> None:
        import os
        import socket

        from .simulator_process import REPO_ROOT

        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)}
        for identity in identities:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "async_kubespawner.operator", "--namespace", NAMESPACE,
                "--kubeconfig", self.kubeconfig, "--identity", identity,
                "--health-address", "127.0.0.1", "--health-port", str(port),
                "--workers", str(self.opts.workers), "--resync-period", "600",
                *admission_args(self.opts),
                "--log-level", "WARNING", env=env, cwd=REPO_ROOT)
            self.processes[identity] = (process, port)
            while not await self._ready(port):  # noqa: ASYNC110 (set-up only)
                await asyncio.sleep(0.1)
        while self.leader_identity() is None:
            await self._refresh_leader()
            await asyncio.sleep(0.1)
        self.baseline_rss = self._rss(self.leader_identity() or "")

    async def _ready(self, port: int) -> bool:
        import aiohttp

        try:
            async with aiohttp.ClientSession() as http, http.get(
                    f"http://127.0.0.1:{port}/readyz") as r:
                return r.status == 200
        except aiohttp.ClientError:
            return False

    _leader: str | None = None

    async def _refresh_leader(self) -> None:
        from async_kubespawner.operator.kubeio import LEASES

        lease = await self.admin.get_or_none(LEASES, NAMESPACE, LeaseSettings().name)
        self._leader = ((lease or {}).get("spec") or {}).get("holderIdentity") or None

    def leader_identity(self) -> str | None:
        return self._leader

    def _rss(self, identity: str) -> int:
        pid = self.processes[identity][0].pid
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    async def _metrics(self, identity: str) -> tuple[int, float]:
        import aiohttp

        port = self.processes[identity][1]
        passes, busy = 0, 0.0
        try:
            async with aiohttp.ClientSession() as http, http.get(
                    f"http://127.0.0.1:{port}/metrics") as r:
                text = await r.text()
        except aiohttp.ClientError:
            return 0, 0.0
        for line in text.splitlines():
            if line.startswith("kubespawner_operator_reconciles_total{"):
                passes += int(float(line.rsplit(" ", 1)[1]))
            elif line.startswith("kubespawner_operator_reconcile_duration_seconds_sum{"):
                busy += float(line.rsplit(" ", 1)[1])
        return passes, busy

    async def counters(self) -> tuple[int, float]:
        total, busy = 0, 0.0
        for identity, (process, _) in self.processes.items():
            if process.returncode is None:
                p, b = await self._metrics(identity)
                total, busy = total + p, busy + b
        return total, busy

    async def memory_per_server(self, users: int) -> float:
        await self._refresh_leader()
        leader = self.leader_identity() or ""
        return (self._rss(leader) - (self.baseline_rss or 0)) / users

    async def steady_rate(self, users: int, rounds: int) -> float | None:
        return None  # the resync cannot be triggered from outside the process

    async def kill_leader(self) -> None:
        import signal

        await self._refresh_leader()
        process = self.processes[self.leader_identity() or ""][0]
        process.send_signal(signal.SIGKILL)
        await process.wait()

    async def stop(self) -> None:
        import signal

        for process, _ in self.processes.values():
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                await process.wait()


_RBAC_PATHS = {
    "ServiceAccount": "/api/v1/namespaces/{ns}/serviceaccounts",
    "Role": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
    "RoleBinding": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
    "ClusterRole": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
}


def example_rbac() -> list[dict[str, Any]]:
    """The shipped hub and operator RBAC (no Deployment), moved into NAMESPACE."""
    objects: list[dict[str, Any]] = []
    for name in ("hub-role.yaml", "operator.yaml"):
        for doc in yaml.safe_load_all((EXAMPLES / name).read_text()):
            if not isinstance(doc, dict) or doc.get("kind") not in _RBAC_PATHS:
                continue
            if not doc["kind"].startswith("Cluster"):
                doc["metadata"]["namespace"] = NAMESPACE
            for subject in doc.get("subjects") or ():
                if subject.get("kind") == "ServiceAccount":
                    subject["namespace"] = NAMESPACE
            objects.append(doc)
    return objects


async def least_privilege_kubeconfigs(sim: SimulatorProcess, admin: Any,
                                      directory: Path) -> tuple[str, str]:
    """Kubeconfigs of the hub's and the operator's ServiceAccounts, with their RBAC."""
    for obj in example_rbac():
        path = _RBAC_PATHS[obj["kind"]].format(ns=NAMESPACE)
        await admin.request("create", obj["kind"].lower(), "POST", path, body=obj)
    paths = []
    for account in (HUB_ACCOUNT, OPERATOR_ACCOUNT):
        token = (await sim.command("service_account_token", namespace=NAMESPACE,
                                   name=account))["token"]
        paths.append(kubeconfig_with_token(Path(sim.kubeconfig), token,
                                           directory / f"kubeconfig-{account}"))
    return paths[0], paths[1]


def kubeconfig_with_token(admin: Path, token: str, path: Path) -> str:
    """A copy of the admin kubeconfig (same server and CA) that authenticates with ``token``."""
    config = yaml.safe_load(admin.read_text())
    config["users"][0]["user"] = {"token": token}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return str(path)


_ADMISSION = ("provisioning_workers", "requests_in_flight", "creates_in_flight",
              "events_in_flight", "critical_reserve")


def admission_settings(opts: argparse.Namespace) -> dict[str, Any]:
    """The operator's admission settings given on the command line (others: defaults)."""
    out: dict[str, Any] = {}
    for name in _ADMISSION:
        value = getattr(opts, name, None)
        if value is not None:
            out[name] = (value or None) if name == "provisioning_workers" else value
    return out


def admission_args(opts: argparse.Namespace) -> list[str]:
    return [arg for name in _ADMISSION if getattr(opts, name, None) is not None
            for arg in (f"--{name.replace('_', '-')}", str(getattr(opts, name)))]


async def run(opts: argparse.Namespace) -> dict[str, Any]:
    kubeconfig = benchmark_kubeconfig()
    sim = await SimulatorProcess.start(kubeconfig, users=opts.users, seed=opts.seed,
                                       scenario=default_scenario(opts.ready_spread),
                                       auth=opts.auth, flow_control=opts.flow_control)
    configuration = await load_configuration(ApiSettings(kubeconfig=sim.kubeconfig))
    admin = build_api(configuration, request_timeout=10, retry_timeout=30)
    replicas: InProcessReplicas | ProcessReplicas | None = None
    try:
        for manifest in crds.all_crds():
            await admin.request("create", "customresourcedefinitions", "POST",
                                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                                body=manifest)
        await admin.create(NOTEBOOK_TEMPLATES, NAMESPACE, TEMPLATE)
        hub_kubeconfig = operator_kubeconfig = sim.kubeconfig
        if opts.auth:
            hub_kubeconfig, operator_kubeconfig = await least_privilege_kubeconfigs(
                sim, admin, Path(kubeconfig).parent)
        replicas = (
            ProcessReplicas(operator_kubeconfig, opts, admin) if opts.operator_process
            else InProcessReplicas(await load_configuration(
                ApiSettings(kubeconfig=operator_kubeconfig)), opts))
        await replicas.start(["op-a", "op-b"] if opts.failover else ["op-a"])
        config = Config()
        config.OperatorSpawner = Config({"kubeconfig": hub_kubeconfig, "namespace": NAMESPACE,
                                         "template": "bench", "start_timeout": 300})
        spawners = [build_spawner(OperatorSpawner, f"bench-user-{i:05d}", i + 1, config=config)
                    for i in range(opts.users)]
        records = [CycleRecord(user=s.user.name) for s in spawners]
        warm = build_spawner(OperatorSpawner, "bench-warmup", 0, config=config)
        await warm.poll()
        trace = replicas.trace if isinstance(replicas, InProcessReplicas) else None
        if trace is not None:
            trace.attach_hub((await warm._servers()).sink)
        await sim.command("reset_counters")
        failover: dict[str, Any] | None = None
        reconciles0, busy0 = await replicas.counters()
        sim_cpu0 = (await sim.command("cpu"))["process_time"]
        if opts.sim_profile:
            await sim.command("profile_start")
        load0 = os.getloadavg()
        wall0, cpu0 = time.monotonic(), time.process_time()
        storm = asyncio.gather(*(start_server(s, r) for s, r in zip(spawners, records,
                                                                      strict=True)))
        if opts.failover:
            failover = await kill_leader_midway(replicas, admin, records, opts.users)
        await storm
        wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
        if opts.sim_profile:
            await sim.command("profile_stop", path=str(opts.sim_profile.resolve()))
        # The storm's requests and simulator CPU, before the resync below adds its own.
        requests = await sim.command("counters")
        sim_cpu = (await sim.command("cpu"))["process_time"] - sim_cpu0
        reconciles1, busy1 = await replicas.counters()
        passes, busy = reconciles1 - reconciles0, busy1 - busy0
        per_server = await replicas.memory_per_server(opts.users)
        capacity = await replicas.steady_rate(opts.users, opts.resync_rounds)
        marks = await sim.command("marks")
        raw = compute_figures(records, marks)
        children = await children_census(admin)
        started = sum(1 for r in records if r.start_returned is not None)
        errors = [r.start_error for r in records if r.start_error]
        stop0 = time.monotonic()
        await asyncio.gather(*(stop_server(s, r) for s, r in zip(spawners, records,
                                                                   strict=True)
                               if r.start_returned is not None))
        stop_wall = time.monotonic() - stop0
        stopped = sum(1 for r in records if r.stop_returned is not None)
        result = {
            "meta": {"users": opts.users, "ready_spread_s": opts.ready_spread,
                     "seed": opts.seed, "workers": opts.workers, "failover": opts.failover,
                     "admission": admission_settings(opts),
                     "operator": "process" if opts.operator_process else "in-process",
                     "auth": opts.auth, "flow_control": opts.flow_control,
                     "load_average_before": [round(x, 2) for x in load0],
                     "load_average_after": [round(x, 2) for x in os.getloadavg()]},
            "started": started,
            "stopped": stopped,
            "start_errors": errors[:5],
            "storm_wall_s": round(wall, 3),
            "stop_all_wall_s": round(stop_wall, 3),
            "start_after_ready_ms": summarise(raw["start"], 1000),
            "reconciles": passes,
            "reconciles_per_s": round(passes / wall, 1),
            "reconcile_seconds_per_pass": round(busy / passes, 4) if passes else None,
            "steady_reconciles_per_s": capacity,
            "operator_bytes_per_server": round(per_server),
            "api_requests": requests.get("total"),
            "requests_per_spawn": round((requests.get("total") or 0) / opts.users, 2),
            "requests_per_spawn_by_kind": requests_by_kind(requests, opts.users),
            "requests_by_status": requests_by_status(requests),
            "simulator_cpu_s": round(sim_cpu, 3),
            "simulator_cpu_ms_per_spawn": round(1000 * sim_cpu / opts.users, 3),
            "bench_process_cpu_ms_per_spawn": round(1000 * cpu / opts.users, 3),
            "children": children,
        }
        if trace is not None:
            result["start_after_ready_stages_ms"] = trace.figures(spawners, records, marks)
            # Events are written in the background, bounded: how far they lag the steps
            # they report (the hub's progress messages).
            result["event_delay_ms"] = {reason: summarise(v, 1000)
                                        for reason, v in sorted(trace.event_delays.items())}
        result["flow_control"] = await flow_control_summary(sim)
        if failover is not None:
            result["failover"] = failover
        return result
    finally:
        if replicas is not None:
            await replicas.stop()
        await stop_operator_reflectors()
        await shutdown_spawner_module(OperatorSpawner)
        await admin.close()
        await sim.close()


def requests_by_status(snapshot: dict[str, Any]) -> dict[str, int]:
    """HTTP status -> requests in the storm (429: refused by flow control or a fault;
    499: the client gave up, e.g. its request timeout, while the request waited)."""
    counts: dict[str, int] = {}
    for row in snapshot.get("counts") or ():
        key = str(row["status"])
        counts[key] = counts.get(key, 0) + int(row["count"])
    return dict(sorted(counts.items()))


async def flow_control_summary(sim: SimulatorProcess) -> dict[str, Any]:
    """The simulator's priority levels that saw traffic: requests admitted, how many had to
    queue, rejections (429)."""
    described = await sim.command("flow_control")
    if not described.get("enabled"):
        return {"enabled": False}
    return {lv["name"]: {k: lv[k] for k in ("admitted", "queued", "rounds", "rejected",
                                             "executing", "waiting")}
            for lv in described["priorityLevels"] if lv["admitted"] or lv["rejected"]}


def requests_by_kind(snapshot: dict[str, Any], users: int) -> dict[str, float]:
    """``verb resource`` -> requests per spawn (every status code together), the storm's
    API cost broken down: what each avoidable read or write costs the API server."""
    counts: dict[str, int] = {}
    for row in snapshot.get("counts") or ():
        key = f"{row['verb']} {row['resource']}"
        counts[key] = counts.get(key, 0) + int(row["count"])
    return {k: round(n / users, 3) for k, n in sorted(counts.items(), key=lambda kv: -kv[1])}


async def resync_rate(leader: Operator, users: int, rounds: int) -> float | None:
    """Passes per second when every server is queued ``rounds`` times (all Ready, caches
    warm): what one replica sustains, the figure behind "reconciles/s"."""
    if rounds <= 0:
        return None
    before = leader.reconciles
    started = time.monotonic()
    for _ in range(rounds):
        target = leader.reconciles + users
        leader.resync()
        while leader.reconciles < target:  # noqa: ASYNC110 (the end of a measured run)
            await asyncio.sleep(0.005)
    return round((leader.reconciles - before) / (time.monotonic() - started), 1)


async def kill_leader_midway(replicas: Any, admin: Any, records: list[CycleRecord],
                             users: int) -> dict[str, Any]:
    """Kill the leader (no release) once half the servers are Ready; time the takeover
    from the Lease itself, as any observer would see it."""
    from async_kubespawner.operator.kubeio import LEASES

    while sum(1 for r in records if r.start_returned is not None) < users // 2:  # noqa: ASYNC110
        await asyncio.sleep(0.05)  # the moment to inject the failure, not a synchronisation
    lease = await admin.get(LEASES, NAMESPACE, LeaseSettings().name)
    old = lease["spec"]["holderIdentity"]
    await replicas.kill_leader()
    killed = time.monotonic()
    while True:
        lease = await admin.get(LEASES, NAMESPACE, LeaseSettings().name)
        if lease["spec"].get("holderIdentity") not in (old, "", None):
            break
        await asyncio.sleep(0.05)  # measured to 50 ms, far below the lease duration
    return {"takeover_s": round(time.monotonic() - killed, 3), "from": old,
            "to": lease["spec"]["holderIdentity"],
            "lease_duration_s": lease["spec"].get("leaseDurationSeconds")}


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
    for name in _ADMISSION:
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=None,
                            help="the operator's setting of that name (default: its own)")
    parser.add_argument("--resync-rounds", type=int, default=3,
                        help="after the storm, queue every server this many times and "
                        "measure the pass rate")
    parser.add_argument("--operator-process", action="store_true",
                        help="run the operator replicas as their own processes "
                        "(python -m async_kubespawner.operator), as a Deployment does")
    parser.add_argument("--failover", action="store_true",
                        help="two replicas; kill the leader when half the servers are Ready")
    parser.add_argument("--no-auth", dest="auth", action="store_false",
                        help="no authentication or RBAC: hub and operator both act as the "
                        "admin (one flow of flow control, by address and User-Agent)")
    parser.add_argument("--no-flow-control", dest="flow_control", action="store_false",
                        help="the simulator serves requests in arrival order instead of "
                        "API Priority and Fairness")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--sim-profile", type=Path, metavar="FILE", default=None,
                        help="cProfile the simulator process during the storm into FILE")
    opts = parser.parse_args(argv)
    result = asyncio.run(run(opts))
    text = json.dumps(result, indent=2)
    if opts.json:
        opts.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
