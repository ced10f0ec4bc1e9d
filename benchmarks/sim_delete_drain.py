"""How fast the simulator finishes N graceful pod deletions issued at once, and at what CPU.

    python -m benchmarks.sim_delete_drain --pods 1000 --json out.json
    python -m benchmarks.sim_delete_drain --pods 1000 --profile sim.prof
    python -m benchmarks.sim_delete_drain --pods 1000 --py-spy sim.txt

``--profile`` is cProfile (exact call counts, but its per-call overhead inflates the
small functions the hot path is made of); ``--py-spy`` samples the simulator with py-spy
over the drain instead (collapsed stacks, CPU time only, little overhead), the view to
trust for where the time goes.

Why a benchmark of its own: in a whole-hub stop storm (``benchmarks.spawn_storm``) the
hub's part of a stop is a fraction of a millisecond once the API has deleted the pod; the
drain is set by the API server's throughput on graceful deletions (the DELETE, the
kubelet's Killing event, its final status write, its grace-0 delete, and the watch
fan-out of each). This measures exactly that path, without a hub: the simulator in its
own process (``benchmarks.sim_host``, scheduler and kubelet included), N pods shaped like
the ones the spawner makes, two client watches like a hub's (pods by label selector,
events unfiltered), then N DELETEs with a uid precondition and the default grace period,
all at once over a pool of connections.

Figures: ``drain_ms`` (first DELETE sent → the pods watch has seen every DELETED, what a
hub's stops wait for), ``responses_ms`` (→ the last DELETE answered), the simulator's CPU
seconds over the drain and per pod, and what the watches saw per pod (so a change that
loses an event shows here too). Nothing asserts; it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from .simulator_process import SimulatorProcess

NAMESPACE = "default"
SELECTOR = "component=singleuser-server"


def pod_body(user: str) -> bytes:
    """A pod as the spawner makes it with its defaults (labels, annotations, 19 env vars)."""
    env = {
        "JPY_API_TOKEN": "bench-token",
        "JUPYTERHUB_ACTIVITY_URL": f"http://hub.bench.svc:8081/hub/api/users/{user}/activity",
        "JUPYTERHUB_API_TOKEN": "bench-token",
        "JUPYTERHUB_API_URL": "http://hub.bench.svc:8081/hub/api",
        "JUPYTERHUB_BASE_URL": "/",
        "JUPYTERHUB_CLIENT_ID": f"jupyterhub-user-{user}",
        "JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED": "0",
        "JUPYTERHUB_HOST": "",
        "JUPYTERHUB_OAUTH_ACCESS_SCOPES": f'["access:servers!server={user}/"]',
        "JUPYTERHUB_OAUTH_CALLBACK_URL": f"/user/{user}/oauth_callback",
        "JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES": "[]",
        "JUPYTERHUB_OAUTH_SCOPES": f'["access:servers!server={user}/"]',
        "JUPYTERHUB_PUBLIC_HUB_URL": "",
        "JUPYTERHUB_PUBLIC_URL": "",
        "JUPYTERHUB_SERVER_NAME": "",
        "JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:8888/",
        "JUPYTERHUB_USER": user,
        "JUPYTER_IMAGE": "quay.io/jupyterhub/singleuser:latest",
        "JUPYTER_IMAGE_SPEC": "quay.io/jupyterhub/singleuser:latest",
    }
    return orjson.dumps({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"jupyter-{user}",
            "labels": {
                "app": "jupyterhub", "component": "singleuser-server", "heritage": "jupyterhub",
                "hub.jupyter.org/username": user, "hub.jupyter.org/servername": "",
            },
            "annotations": {"hub.jupyter.org/username": user},
        },
        "spec": {
            "automountServiceAccountToken": False,
            "restartPolicy": "OnFailure",
            "containers": [{
                "name": "notebook",
                "image": "quay.io/jupyterhub/singleuser:latest",
                "env": [{"name": k, "value": v} for k, v in env.items()],
                "ports": [{"containerPort": 8888, "name": "notebook-port"}],
                "resources": {"limits": {}, "requests": {}},
                "securityContext": {"allowPrivilegeEscalation": False},
                "volumeMounts": [],
            }],
            "volumes": [],
        },
    })


class WatchTally:
    """A client watch that counts what it sees per type (and Ready pods / Killing events)."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http = http
        self.url = url
        self.counts: dict[str, int] = {}
        self.ready: set[str] = set()
        self.killing = 0
        self.deleted: set[str] = set()
        self.last_deleted_at = 0.0
        self.changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        async with self.http.get(self.url, timeout=aiohttp.ClientTimeout(total=None)) as resp:
            resp.raise_for_status()
            async for line in resp.content:
                event = orjson.loads(line)
                kind = event["type"]
                self.counts[kind] = self.counts.get(kind, 0) + 1
                obj = event["object"]
                name = obj.get("metadata", {}).get("name", "")
                if kind == "DELETED":
                    self.deleted.add(name)
                    self.last_deleted_at = time.monotonic()
                elif obj.get("kind") == "Event":
                    if obj.get("reason") == "Killing":
                        self.killing += 1
                elif any(c.get("type") == "Ready" and c.get("status") == "True"
                         for c in (obj.get("status") or {}).get("conditions") or []):
                    self.ready.add(name)
                self.changed.set()

    async def wait(self, done: Any, limit_s: float) -> None:
        deadline = time.monotonic() + limit_s
        while not done():
            self.changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the watch did not see what was expected in time")
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except TimeoutError:
                pass

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


async def start_py_spy(pid: int, path: str) -> asyncio.subprocess.Process:
    """py-spy sampling ``pid`` (CPU only, GIL holder only) until ``stop_py_spy``."""
    beside = Path(sys.executable).parent / "py-spy"  # installed in the same environment
    spy = await asyncio.create_subprocess_exec(
        str(beside) if beside.exists() else "py-spy", "record", "--pid", str(pid), "--rate", "1000", "--format", "raw",
        "--gil", "--output", path, "--nonblocking", stdout=asyncio.subprocess.PIPE)
    assert spy.stdout is not None
    # py-spy says "Sampling process ..." once it is attached
    await asyncio.wait_for(spy.stdout.readline(), 10)
    return spy


async def stop_py_spy(spy: asyncio.subprocess.Process) -> None:
    spy.send_signal(signal.SIGINT)
    await spy.communicate()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="sim-delete-drain-"))
    sim = await SimulatorProcess.start(workdir / "kubeconfig", users=args.pods, seed=args.seed,
                                       scenario="instant")
    users = [f"bench-user-{i:05d}" for i in range(args.pods)]
    base = f"{sim.url}/api/v1/namespaces/{NAMESPACE}"
    headers = {"Content-Type": "application/json", "User-Agent": "bench-hub/1.0"}
    connector = aiohttp.TCPConnector(limit=args.connections)
    try:
        async with aiohttp.ClientSession(connector=connector, headers=headers) as http:
            pods = WatchTally(http, f"{base}/pods?watch=1&labelSelector={SELECTOR}"
                              "&allowWatchBookmarks=true")
            events = WatchTally(http, f"{base}/events?watch=1&allowWatchBookmarks=true")
            pods.start()
            events.start()
            uids: dict[str, str] = {}

            async def create(user: str) -> None:
                async with http.post(f"{base}/pods", data=pod_body(user)) as resp:
                    body = await resp.read()
                    if resp.status != 201:
                        raise RuntimeError(f"create {user}: {resp.status} {body[:300]!r}")
                    uids[user] = orjson.loads(body)["metadata"]["uid"]

            await asyncio.gather(*(create(u) for u in users))
            await pods.wait(lambda: len(pods.ready) >= args.pods, 120)
            pods.counts.clear()
            events.counts.clear()
            await asyncio.sleep(0.5)  # a quiet moment, so the CPU reading is the drain's
            if args.profile:
                await sim.command("profile_start")
            spy = await start_py_spy(sim.process.pid, args.py_spy) if args.py_spy else None
            before = await sim.command("cpu")
            cpu0 = before["process_time"]
            await sim.command("gc_pauses")
            statuses: dict[int, int] = {}
            last_response = 0.0

            async def delete(user: str) -> None:
                nonlocal last_response
                body = orjson.dumps({"kind": "DeleteOptions", "apiVersion": "v1",
                                     "preconditions": {"uid": uids[user]}})
                async with http.delete(f"{base}/pods/jupyter-{user}", data=body) as resp:
                    await resp.read()
                    statuses[resp.status] = statuses.get(resp.status, 0) + 1
                    last_response = time.monotonic()

            started = time.monotonic()
            await asyncio.gather(*(delete(u) for u in users))
            await pods.wait(lambda: len(pods.deleted) >= args.pods, 120)
            await events.wait(lambda: events.killing >= args.pods, 30)
            after = await sim.command("cpu")
            cpu = after["process_time"] - cpu0
            system = after["system"] - before["system"]
            gc_pauses = await sim.command("gc_pauses")
            if spy is not None:
                await stop_py_spy(spy)
            if args.profile:
                await sim.command("profile_stop", path=args.profile)
            await pods.stop()
            await events.stop()
    finally:
        await sim.close()
    return {
        "pods": args.pods,
        "connections": args.connections,
        "drain_ms": round((pods.last_deleted_at - started) * 1000, 1),
        "responses_ms": round((last_response - started) * 1000, 1),
        "simulator_cpu_s": round(cpu, 3),
        "simulator_cpu_ms_per_pod": round(cpu * 1000 / args.pods, 3),
        "simulator_system_cpu_s": round(system, 3),
        "simulator_gc_pauses": gc_pauses,
        "delete_statuses": statuses,
        "pod_watch_events_per_pod": {k: v / args.pods for k, v in sorted(pods.counts.items())},
        "event_watch_events_per_pod": {k: v / args.pods for k, v in sorted(events.counts.items())},
        "load_average": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=100,
                        help="the client's connection pool (DELETEs in flight)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--profile", help="cProfile the simulator during the drain (pstats file)")
    parser.add_argument("--py-spy", help="sample the simulator with py-spy during the drain "
                        "(collapsed stacks to this file)")
    args = parser.parse_args(argv)
    if args.py_spy:
        args.py_spy = str(Path(args.py_spy).resolve())
    if args.profile:
        args.profile = str(Path(args.profile).resolve())  # the simulator runs elsewhere
    result = asyncio.run(run(args))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
