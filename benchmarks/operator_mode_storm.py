"""Operator mode under a spawn storm: start latency, reconcile rate, memory and leader failover.

    python -m benchmarks.operator_mode_storm --users 1000 --ready-spread 10 --json out.json

One run, four processes: the simulator (``benchmarks.sim_host``: API server, scheduler,
kubelet; pods become Ready uniformly within ``--ready-spread`` s of being created), two
operator replicas (``benchmarks.operator_replica``: the real operator, campaigning for
the Lease, plus a memory endpoint), and this process, which plays the hub: N
``OperatorSpawner`` objects started at once, as JupyterHub would.

Two storms:

1. **Latency storm** (no fault): N spawns. ``start()`` returned minus the moment the
   server's pod became Ready in the API (the simulator's commit mark, on the system-wide
   monotonic clock), so the figure includes the operator seeing the pod, its status
   write, and the hub seeing the status. Reconciles per second are sampled from the
   leader's ``/metrics`` every 0.5 s: overall, and while its queue was non-empty (the
   rate it sustains when it has work). Memory: the leader's (and the standby's) own state
   and RSS, after a full collection, with 0 and with N servers, divided by N.
2. **Failover storm**: N more spawns; ``--kill-after`` seconds in, the leader is killed
   (SIGKILL: no Lease release, as a crashed pod). Failover time: the kill to the standby
   reporting itself leader. Every spawn must still complete; then every NotebookServer
   must have exactly one pod, PVC and Service, every child an existing owner: duplicates
   and orphans are counted.

The machine is shared: the load average before and after is in the output, with the
CPU count. Figures are reported, never asserted (targets are listed for comparison).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from traitlets.config import Config

from async_kubespawner.kube.client import (
    PODS,
    PVCS,
    SERVICES,
    ApiSettings,
    KubeApi,
    build_api,
    close_shared_apis,
    load_configuration,
)
from async_kubespawner.operator import crds
from async_kubespawner.operator.kubeio import NOTEBOOK_SERVERS, NOTEBOOK_TEMPLATES
from async_kubespawner.operator.spawner import OperatorSpawner, stop_operator_reflectors
from async_kubespawner.testing import build_spawner

from .figures import summarise
from .simulator_process import REPO_ROOT, SimulatorProcess, counts_by_verb
from .spawner_loading import benchmark_kubeconfig

NAMESPACE = "default"
TARGETS = {
    "start_after_ready_ms.p99": "<= 50",
    "reconciles_per_second.busy": ">= 200",
    "failover_seconds": "<= 15",
    "state_bytes_per_server": "<= 5120",
    "duplicates": "== 0",
    "orphans": "== 0",
}
_METRIC = re.compile(r'^(kubespawner_operator_\w+)(?:\{([^}]*)\})? ([0-9.eE+-]+)$')


def default_scenario(ready_spread: float) -> str:
    """Every kubelet step instant, pods Ready uniformly within ``ready_spread`` s."""
    return f"instant,ready-after=0-{ready_spread:g}"


async def start_simulator(kubeconfig: Path, *, users: int, seed: int,
                          scenario: str) -> SimulatorProcess:
    """``benchmarks.operator_sim_host`` (sim_host plus a PVC binder) as a child process."""
    args = [sys.executable, "-m", "benchmarks.operator_sim_host", "--kubeconfig",
            str(kubeconfig), "--users", str(users), "--seed", str(seed), "--scenario", scenario]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    process = await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        cwd=REPO_ROOT, env=env, limit=256 * 1024 * 1024)
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
    if not line:
        raise RuntimeError(f"the simulator exited with status {await process.wait()}")
    hello = json.loads(line)
    return SimulatorProcess(process, hello["url"], hello["kubeconfig"])


def progress(message: str) -> None:
    print(f"[operator_mode_storm {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Replica:
    """One operator replica process and its endpoints."""

    def __init__(self, identity: str, url: str, logdir: Path, profile: bool = False,
                 workers: int = 8) -> None:
        self.identity = identity
        self.workers = workers
        self.profile = profile
        self.url = url
        self.health_port = free_port()
        self.memory_port = free_port()
        self.log = logdir / f"{identity}.log"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)}
        log = self.log.open("wb")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.operator_replica",
            "--memory-port", str(self.memory_port), *(["--profile"] if self.profile else []),
            "--namespace", NAMESPACE, "--api-host", self.url, "--identity", self.identity,
            "--health-port", str(self.health_port), "--health-address", "127.0.0.1",
            "--log-level", "WARNING", "--workers", str(self.workers),
            stdout=log, stderr=log, cwd=REPO_ROOT, env=env,
        )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.process.pid) if self.process is not None else 0.0

    async def get(self, session: aiohttp.ClientSession, path: str) -> Any:
        port = self.memory_port if path.startswith(("/memory", "/profile")) else (
            self.health_port)
        async with session.get(f"http://127.0.0.1:{port}{path}") as resp:
            if path == "/metrics":
                return await resp.text()
            return await resp.json()

    async def wait_ready(self, session: aiohttp.ClientSession, timeout: float = 60) -> None:  # noqa: ASYNC109
        """Until /readyz answers 200 and the memory endpoint is up (bounded polling of
        another process's endpoints: there is nothing to subscribe to)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"operator {self.identity} exited; see {self.log}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(f"http://127.0.0.1:{self.health_port}/readyz") as r:
                    if r.status == 200:
                        await self.get(session, "/memory")
                        return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"operator {self.identity} not ready in {timeout} s; see {self.log}")

    def kill(self) -> None:
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 20)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


def parse_metrics(text: str) -> dict[str, float]:
    """Sums of the operator's series by name (``reconciles_total``, ``queue_depth`` ...)."""
    sums: dict[str, float] = {}
    for line in text.splitlines():
        match = _METRIC.match(line)
        if match:
            sums[match.group(1)] = sums.get(match.group(1), 0.0) + float(match.group(3))
    return sums


async def leader_of(replicas: list[Replica], session: aiohttp.ClientSession) -> Replica | None:
    for replica in replicas:
        if replica.alive:
            with contextlib.suppress(aiohttp.ClientError, OSError):
                if (await replica.get(session, "/healthz")).get("leader"):
                    return replica
    return None


class MetricsSampler:
    """Samples the leader's reconcile counter and queue depth every ``interval`` s."""

    def __init__(self, replicas: list[Replica], session: aiohttp.ClientSession,
                 interval: float = 0.5) -> None:
        self.replicas = replicas
        self.session = session
        self.interval = interval
        self.samples: list[tuple[float, str, float, float]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            for replica in self.replicas:
                if not replica.alive:
                    continue
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    m = parse_metrics(await replica.get(self.session, "/metrics"))
                    if m.get("kubespawner_operator_leader"):
                        self.samples.append((
                            time.monotonic(), replica.identity,
                            m.get("kubespawner_operator_reconciles_total", 0.0),
                            m.get("kubespawner_operator_queue_depth", 0.0)))
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def rates(self) -> dict[str, Any]:
        """Reconciles per second: overall, busiest interval, and while the queue had work."""
        overall: list[float] = []
        busy_count, busy_time, total_count, total_time = 0.0, 0.0, 0.0, 0.0
        for (t0, who0, c0, q0), (t1, who1, c1, q1) in zip(self.samples, self.samples[1:],
                                                          strict=False):
            if who0 != who1 or c1 < c0 or t1 <= t0:
                continue
            rate = (c1 - c0) / (t1 - t0)
            overall.append(rate)
            total_count += c1 - c0
            total_time += t1 - t0
            if q0 > 0 and q1 > 0:
                busy_count += c1 - c0
                busy_time += t1 - t0
        return {
            "overall": round(total_count / total_time, 1) if total_time else None,
            "peak_interval": round(max(overall), 1) if overall else None,
            "busy": round(busy_count / busy_time, 1) if busy_time else None,
            "busy_seconds": round(busy_time, 2),
            "reconciles": int(total_count),
        }


def spawner_for(url: str, name: str) -> OperatorSpawner:
    config = Config()
    config.OperatorSpawner = Config({
        "k8s_api_host": url, "namespace": NAMESPACE, "start_timeout": 600,
        "stop_timeout": 600, "k8s_api_request_retry_timeout": 120,
        "ip": "0.0.0.0", "port": 8888, "env_keep": [],
    })
    return build_spawner(OperatorSpawner, name, config=config)


async def start_all(spawners: list[OperatorSpawner]) -> tuple[dict[str, float], dict[str, str]]:
    returned: dict[str, float] = {}
    failures: dict[str, str] = {}

    async def one(spawner: OperatorSpawner) -> None:
        try:
            await spawner.start()
            returned[spawner.object_name] = time.monotonic()
        except Exception as e:
            failures[spawner.object_name] = f"{type(e).__name__}: {e}"

    await asyncio.gather(*(one(s) for s in spawners))
    return returned, failures


async def stop_all(spawners: list[OperatorSpawner]) -> int:
    results = await asyncio.gather(*(s.stop() for s in spawners), return_exceptions=True)
    return sum(1 for r in results if isinstance(r, BaseException))


def start_overheads(returned: dict[str, float], marks: dict[str, Any]) -> list[float]:
    ready: dict[str, float] = {}
    for namespace, name, _uid, at in marks["ready"]:
        if namespace == NAMESPACE:
            ready[name] = float(at)  # the latest Ready of that name (storm 2 names differ)
    return [t - ready[name] for name, t in returned.items() if name in ready]


async def audit_children(api: KubeApi) -> dict[str, Any]:
    """Exactly one pod, PVC and Service per NotebookServer; every child's owner exists."""
    servers = (await api.list_page(NOTEBOOK_SERVERS, NAMESPACE))["items"]
    uids = {s["metadata"]["uid"]: s["metadata"]["name"] for s in servers}
    per_server: dict[str, dict[str, int]] = {uid: {} for uid in uids}
    orphans = 0
    for rk, kind in ((PODS, "Pod"), (PVCS, "PersistentVolumeClaim"), (SERVICES, "Service")):
        items = (await api.list_page(rk, NAMESPACE))["items"]
        for item in items:
            meta = item["metadata"]
            if (meta.get("labels") or {}).get("app.kubernetes.io/managed-by") != (
                    "async-kubespawner-operator"):
                continue
            owner = next((r["uid"] for r in meta.get("ownerReferences") or ()
                          if r.get("kind") == "NotebookServer"), None)
            if owner is None:
                if kind == "PersistentVolumeClaim" and not meta.get("ownerReferences"):
                    continue  # retained by policy from an earlier, stopped server
                orphans += 1
            elif owner not in uids:
                orphans += 1
            else:
                per_server[owner][kind] = per_server[owner].get(kind, 0) + 1
    duplicates = sum(max(0, n - 1) for kinds in per_server.values() for n in kinds.values())
    missing = sum(1 for kinds in per_server.values()
                  for kind in ("Pod", "PersistentVolumeClaim", "Service") if not kinds.get(kind))
    return {"servers": len(uids), "duplicates": duplicates, "orphans": orphans,
            "missing": missing}


async def memory(replica: Replica, session: aiohttp.ClientSession) -> dict[str, Any]:
    return dict(await replica.get(session, "/memory"))


async def storm(args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()
    kubeconfig = benchmark_kubeconfig()
    sim = await start_simulator(kubeconfig, users=args.users * 2, seed=args.seed,
                                scenario=default_scenario(args.ready_spread))
    logdir = Path(tempfile.mkdtemp(prefix="operator-storm-"))
    replicas = [Replica("op-a", sim.url, logdir, args.profile, args.workers),
                Replica("op-b", sim.url, logdir, args.profile, args.workers)]
    api = build_api(await load_configuration(ApiSettings(host=sim.url)),
                    request_timeout=30.0, retry_timeout=120.0)
    result: dict[str, Any] = {
        "users": args.users, "ready_spread_s": args.ready_spread,
        "scenario": default_scenario(args.ready_spread), "targets": TARGETS,
        "operator_workers": args.workers,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_before": [round(x, 2) for x in load_before]},
        "logs": str(logdir),
    }
    async with aiohttp.ClientSession() as session:
        try:
            for manifest in crds.all_crds():
                await api.request("create", "customresourcedefinitions", "POST",
                                  "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                                  body=manifest)
            template = yaml.safe_load(
                (REPO_ROOT / "examples/operator/template.yaml").read_text())
            await api.create(NOTEBOOK_TEMPLATES, NAMESPACE, template)
            for replica in replicas:
                await replica.start()
            await asyncio.gather(*(r.wait_ready(session) for r in replicas))
            leader = None
            for _ in range(600):  # the first election, a Lease write away (bounded: 60 s)
                leader = await leader_of(replicas, session)
                if leader is not None:
                    break
                await asyncio.sleep(0.1)
            if leader is None:
                raise RuntimeError(f"no operator became leader; see {logdir}")
            standby = next(r for r in replicas if r is not leader)
            base = {r.identity: await memory(r, session) for r in replicas}
            progress(f"leader {leader.identity}; latency storm of {args.users}")

            # -- 1. latency storm -------------------------------------------------------
            spawners = [spawner_for(sim.url, f"user{i}") for i in range(args.users)]
            sampler = MetricsSampler(replicas, session)
            await sim.command("reset_counters")
            cpu_before = {"hub": time.process_time(),
                          "simulator": process_cpu_seconds(sim.process.pid),
                          **{r.identity: r.cpu_seconds() for r in replicas}}
            sampler.start()
            started = time.monotonic()
            returned, failures = await start_all(spawners)
            storm_seconds = time.monotonic() - started
            await sampler.stop()
            cpu_after = {"hub": time.process_time(),
                         "simulator": process_cpu_seconds(sim.process.pid),
                         **{r.identity: r.cpu_seconds() for r in replicas}}
            requests = counts_by_verb(await sim.command("counters"))
            if args.profile:
                await leader.get(session, f"/profile?path={logdir}/{leader.identity}.pstats")
            overheads = start_overheads(returned, await sim.command("marks"))
            loaded = {r.identity: await memory(r, session) for r in replicas}
            audit = await audit_children(api)
            per_server: dict[str, Any] = {}
            for r in replicas:
                n = max(1, loaded[r.identity]["servers"] - base[r.identity]["servers"])
                per_server[r.identity] = {
                    "role": "leader" if r is leader else "standby",
                    "state_bytes_per_server": round(
                        (loaded[r.identity]["state_bytes"] - base[r.identity]["state_bytes"]) / n),
                    "rss_bytes_per_server": round(
                        (loaded[r.identity]["rss_bytes"] - base[r.identity]["rss_bytes"]) / n),
                    "parts_bytes_per_server": {
                        k: round((v - base[r.identity]["parts"][k]) / n)
                        for k, v in loaded[r.identity]["parts"].items()},
                }
            progress(f"storm done in {storm_seconds:.1f}s, {len(failures)} failed; stopping")
            stop_started = time.monotonic()
            stop_errors = await stop_all(spawners)
            result["latency_storm"] = {
                "spawned": len(returned), "failed": len(failures),
                "failures": dict(list(failures.items())[:5]),
                "wall_seconds": round(storm_seconds, 2),
                "start_after_ready_ms": summarise(overheads, scale=1000),
                "reconciles_per_second": sampler.rates(),
                "cpu_seconds": {k: round(cpu_after[k] - cpu_before[k], 2) for k in cpu_after},
                "leader_cpu_ms_per_reconcile": round(
                    1000 * (cpu_after[leader.identity] - cpu_before[leader.identity])
                    / max(1, sampler.rates()["reconciles"]), 2),
                "api_requests_per_spawn": {
                    k: round(v / args.users, 2) for k, v in requests.items()},
                "memory": per_server,
                "audit": audit,
                "stop_wall_seconds": round(time.monotonic() - stop_started, 2),
                "stop_errors": stop_errors,
            }

            # -- 2. failover storm -------------------------------------------------------
            progress("failover storm")
            spawners = [spawner_for(sim.url, f"fo{i}") for i in range(args.users)]
            starting = asyncio.ensure_future(start_all(spawners))
            await asyncio.sleep(args.kill_after)  # the moment of the crash, by design
            killed_at = time.monotonic()
            leader.kill()
            took_over: float | None = None
            deadline = killed_at + 120
            while time.monotonic() < deadline:
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    if (await standby.get(session, "/healthz")).get("leader"):
                        took_over = time.monotonic()
                        break
                await asyncio.sleep(0.05)  # polling another process's endpoint, bounded
            progress(f"killed {leader.identity}; standby leads after "
                     f"{(took_over or 0) - killed_at:.1f}s; waiting for the spawns")
            returned, failures = await starting
            audit = await audit_children(api)
            result["failover_storm"] = {
                "killed": leader.identity, "kill_after_s": args.kill_after,
                "failover_seconds": round(took_over - killed_at, 2) if took_over else None,
                "spawned": len(returned), "failed": len(failures),
                "failures": dict(list(failures.items())[:5]),
                "audit": audit,
                "start_after_ready_ms": summarise(
                    start_overheads(returned, await sim.command("marks")), scale=1000),
            }
            result["failover_storm"]["stop_errors"] = await stop_all(spawners)
        finally:
            await stop_operator_reflectors()
            await close_shared_apis()
            for replica in replicas:
                with contextlib.suppress(Exception):
                    await replica.stop()
            await api.close()
            await sim.close()
    result["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    latency = result["latency_storm"]
    failover = result["failover_storm"]
    leader_memory = next(v for v in latency["memory"].values() if v["role"] == "leader")
    result["summary"] = {
        "start_after_ready_ms.p50": latency["start_after_ready_ms"]["p50"],
        "start_after_ready_ms.p99": latency["start_after_ready_ms"]["p99"],
        "reconciles_per_second.busy": latency["reconciles_per_second"]["busy"],
        "reconciles_per_second.overall": latency["reconciles_per_second"]["overall"],
        "leader_cpu_ms_per_reconcile": latency["leader_cpu_ms_per_reconcile"],
        "failover_seconds": failover["failover_seconds"],
        "state_bytes_per_server": leader_memory["state_bytes_per_server"],
        "rss_bytes_per_server": leader_memory["rss_bytes_per_server"],
        "duplicates": latency["audit"]["duplicates"] + failover["audit"]["duplicates"],
        "orphans": latency["audit"]["orphans"] + failover["audit"]["orphans"],
        "failed_spawns": latency["failed"] + failover["failed"],
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.operator_mode_storm",
                                     description=__doc__.split("\n", 1)[0])
    parser.add_argument("--users", type=int, default=1000, help="concurrent spawns per storm")
    parser.add_argument("--ready-spread", type=float, default=10.0,
                        help="pods become Ready uniformly within this many seconds")
    parser.add_argument("--kill-after", type=float, default=None,
                        help="seconds into the failover storm the leader is killed "
                        "(default: half the ready spread)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=8,
                        help="the operators' --workers (concurrent reconciles; default: the "
                        "operator's default)")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the operators; the leader's stats of the latency storm "
                        "are written next to the logs")
    parser.add_argument("--json", help="write the results here (default: stdout only)")
    args = parser.parse_args(argv)
    if args.kill_after is None:
        args.kill_after = args.ready_spread / 2
    result = asyncio.run(storm(args))
    text = json.dumps(result, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(text)
    return 0 if result["summary"]["failed_spawns"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
