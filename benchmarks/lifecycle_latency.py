"""Measure the lifecycle's own latencies against the in-process simulator.

    PYTHONPATH=. python benchmarks/lifecycle_latency.py --spawns 1000 --spread 10

What it measures, with a kubelet stand-in that makes each pod ready (and, on stop, removes
it) at a random moment within ``--spread`` seconds:

* start(): time from the ready status being committed in the API to start() returning;
* stop(): time from the pod being removed in the API to stop() returning;
* progress: time from an Event being committed to a progress listener receiving it;
* idle: API requests other than the held watches during ``--idle`` seconds of idleness;
* stall: the longest event-loop stall while a reflector lists and holds ``--cached`` pods,
  and the heap per cached pod.

The simulator runs in the same process and loop, so its work is included in the numbers
(an upper bound for a hub talking to a real API server). Results are printed as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from kubesim.testing import run_simulator
from traitlets.config import Config

from async_kubespawner import KubeSpawner
from async_kubespawner.kube.cache import ObjectCache, trim_pod
from async_kubespawner.kube.client import PODS, ApiSettings, _make_api, close_shared_apis
from async_kubespawner.kube.reflector import ReflectorSettings, get_reflector, stop_reflectors


class _User:
    def __init__(self, name: str) -> None:
        self.name, self.id, self.url, self.escaped_name = name, 1, f"/user/{name}/", name
        self.settings: dict[str, Any] = {}


def _spawner(url: str, name: str) -> KubeSpawner:
    cfg = Config()
    cfg.KubeSpawner = Config(
        {
            "k8s_api_host": url,
            "namespace": "default",
            "slow_spawn_message_threshold": 0,
            "start_timeout": 600,
            "stop_timeout": 600,
            "k8s_api_request_timeout": 30,
        }
    )
    hub = SimpleNamespace(
        public_host="",
        api_url="http://hub:8081/hub/api",
        base_url="/hub/",
        connect_ip="",
        connect_port=0,
        url="http://hub:8081/hub/",
    )
    return KubeSpawner(
        user=_User(name),
        hub=hub,
        orm_spawner=SimpleNamespace(name="", display_name="", server=None),
        config=cfg,
        api_token="t",
    )


class SpreadKubelet:
    """Readies each new pod at a random time in [0, spread]; removes deleted pods likewise."""

    def __init__(self, spread: float) -> None:
        self.spread = spread
        self.ready_at: dict[str, float] = {}
        self.gone_at: dict[str, float] = {}
        self.event_at: dict[str, float] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self, store: Any) -> None:
        self.store = store
        self.rt = store.resource("pods")
        self.watch = store.watch(self.rt, None, resource_version=str(store.resource_version))
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self.watch.close()
        for t in [self.task, *self.tasks]:
            t.cancel()
            with contextlib.suppress(BaseException):
                await t

    def _later(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self) -> None:
        async for event in self.watch:
            meta = event.object["metadata"]
            if event.type == "ADDED":
                self._later(self._ready(event.object))
            elif event.type == "MODIFIED" and meta.get("deletionTimestamp"):
                if meta["name"] not in self.gone_at:
                    self.gone_at[meta["name"]] = 0.0
                    self._later(self._remove(meta))

    async def _ready(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        name = meta["name"]
        await self.store.bind("default", name, "node-1")
        await asyncio.sleep(random.uniform(0, self.spread))
        await self.store.create(
            self.store.resource("events"),
            "default",
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"generateName": f"{name}-"},
                "involvedObject": {
                    "kind": "Pod",
                    "name": name,
                    "namespace": "default",
                    "uid": meta["uid"],
                },
                "reason": "Started",
                "message": "Started container notebook",
                "type": "Normal",
            },
        )
        self.event_at[name] = time.perf_counter()
        await asyncio.sleep(0.05)
        n = len(self.ready_at)
        await self.store.patch(
            self.rt,
            "default",
            name,
            {
                "status": {
                    "phase": "Running",
                    "podIP": f"10.{n // 65536}.{n // 256 % 256}.{n % 256}",
                    "containerStatuses": [
                        {
                            "name": "notebook",
                            "ready": True,
                            "restartCount": 0,
                            "image": "x",
                            "imageID": "",
                            "state": {"running": {}},
                        }
                    ],
                }
            },
            "merge",
            subresource="status",
        )
        self.ready_at[name] = time.perf_counter()

    async def _remove(self, meta: dict[str, Any]) -> None:
        await asyncio.sleep(random.uniform(0, self.spread))
        await self.store.delete(self.rt, "default", meta["name"], grace_period_seconds=0)
        self.gone_at[meta["name"]] = time.perf_counter()


def _summary(values_ms: list[float]) -> dict[str, float]:
    values_ms.sort()
    return {
        "n": len(values_ms),
        "median_ms": round(statistics.median(values_ms), 2),
        "p99_ms": round(values_ms[int(len(values_ms) * 0.99) - 1], 2),
        "max_ms": round(values_ms[-1], 2),
    }


async def measure_lifecycle(spawns: int, spread: float, idle: float) -> dict[str, Any]:
    kubelet = SpreadKubelet(spread)
    async with run_simulator(controllers=[kubelet]) as sim:
        spawners = [_spawner(sim.url, f"user{i}") for i in range(spawns)]
        returned: dict[str, float] = {}
        heard: dict[str, float] = {}

        async def spawn(s: KubeSpawner) -> None:
            await s.start()
            returned[s.pod_name] = time.perf_counter()

        async def listen(s: KubeSpawner) -> None:
            async for m in s.progress():
                if "Started container" in m["message"] and s.pod_name not in heard:
                    heard[s.pod_name] = time.perf_counter()

        futures = []
        for s in spawners:
            futures.append(spawn(s))
        starts = [asyncio.ensure_future(f) for f in futures]
        listeners = [asyncio.ensure_future(listen(s)) for s in spawners[:200]]
        await asyncio.gather(*starts)
        await asyncio.gather(*listeners)
        start_lat = [(returned[n] - kubelet.ready_at[n]) * 1000 for n in returned]
        progress_lat = [(heard[n] - kubelet.event_at[n]) * 1000 for n in heard]

        sim.counters.reset()
        await asyncio.sleep(idle)
        idle_log = [r for r in sim.counters.log if r.verb != "watch"]

        stopped: dict[str, float] = {}

        async def stop(s: KubeSpawner) -> None:
            await s.stop()
            stopped[s.pod_name] = time.perf_counter()

        await asyncio.gather(*(stop(s) for s in spawners))
        stop_lat = [(stopped[n] - kubelet.gone_at[n]) * 1000 for n in stopped]
        await stop_reflectors()
        await close_shared_apis()
    return {
        "spawns": spawns,
        "spread_s": spread,
        "start_after_ready": _summary(start_lat),
        "stop_after_gone": _summary(stop_lat),
        "progress_after_event": _summary(progress_lat),
        "idle_seconds": idle,
        "idle_requests_besides_watches": len(idle_log),
    }


async def measure_stall(cached: int, gc_freeze: bool = False) -> dict[str, Any]:
    """The simulator runs in a subprocess here, so the stall measured is the hub's own.

    The cache adds no GC-tracked objects, but the process's own heap (JupyterHub,
    kubernetes_asyncio's thousands of model classes) makes each full collection take
    tens of milliseconds; ``gc_freeze`` does what a hub can do at startup (``gc.freeze()``
    after imports) to take that heap out of collections."""
    if gc_freeze:
        gc.collect()
        gc.freeze()
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "kubesim",
            "--no-auth",  # the spawner's latency, comparable with runs before authentication
            "--kubeconfig",
            str(kubeconfig),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            for _ in range(600):  # a starting subprocess offers nothing to await
                if kubeconfig.exists():
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)
            return await _measure_stall(kubeconfig, cached)
        finally:
            proc.terminate()
            await proc.wait()
            if gc_freeze:
                gc.unfreeze()


async def _measure_stall(kubeconfig: Path, cached: int) -> dict[str, Any]:
    api = await _make_api(ApiSettings(kubeconfig=str(kubeconfig), request_timeout=60))
    sem = asyncio.Semaphore(32)

    async def create(i: int) -> None:
        async with sem:
            await api.create(
                PODS,
                "default",
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": f"jupyter-u{i}",
                        "labels": {
                            "component": "singleuser-server",
                            "hub.jupyter.org/username": f"u{i}",
                        },
                        "annotations": {"hub.jupyter.org/username": f"u{i}"},
                    },
                    "spec": {
                        "containers": [
                            {
                                "name": "notebook",
                                "image": "jupyter/base:1",
                                "ports": [{"name": "notebook-port", "containerPort": 8888}],
                                "env": [{"name": f"V{j}", "value": "x" * 40} for j in range(20)],
                            }
                        ]
                    },
                },
            )

    await asyncio.gather(*(create(i) for i in range(cached)))
    worst = 0.0
    done = asyncio.Event()

    async def monitor() -> None:
        nonlocal worst
        while not done.is_set():
            t = time.perf_counter()
            await asyncio.sleep(0.005)
            worst = max(worst, time.perf_counter() - t - 0.005)

    mon = asyncio.ensure_future(monitor())
    started = time.perf_counter()
    reflector = get_reflector(
        api,
        PODS,
        "default",
        lambda: ObjectCache(trim_pod),
        label_selector="component=singleuser-server",
        settings=ReflectorSettings(),
    )
    await reflector.wait_synced(600)
    list_seconds = time.perf_counter() - started
    # A burst of watch events on the full cache.
    step = max(1, cached // 500)
    last = ""
    for i in range(0, cached, step):
        last = f"jupyter-u{i}"
        await api.request(
            "patch",
            "pods",
            "PATCH",
            PODS.path("default", last) + "/status",
            body={"status": {"phase": "Running"}},
            content_type="application/merge-patch+json",
        )
    await reflector.sink.wait_for(
        ("default", last), lambda p: p and p["status"].get("phase") == "Running", 60
    )
    done.set()
    await mon
    # Heap per cached pod, measured the way the hub holds them: each pod parsed from its
    # own JSON (as a watch line) and trimmed into a fresh cache.
    raw = [json.dumps(o) for o in (await api.list_page(PODS, "default", limit=1000))["items"]]
    cache = ObjectCache(trim_pod)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for line in raw:
        cache.upsert(json.loads(line))
    per_pod = (tracemalloc.get_traced_memory()[0] - before) / len(raw)
    tracemalloc.stop()
    size = len(reflector.sink)
    await stop_reflectors()
    await api.close()
    return {
        "cached_pods": size,
        "relist_seconds": round(list_seconds, 2),
        "max_loop_stall_ms": round(worst * 1000, 1),
        "heap_per_cached_pod_bytes": round(per_pod),
        "raw_pod_json_bytes": len(raw[0]),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spawns", type=int, default=1000)
    parser.add_argument("--spread", type=float, default=10.0)
    parser.add_argument("--idle", type=float, default=20.0)
    parser.add_argument("--cached", type=int, default=20000)
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() before the stall measurement (as a hub can at startup)",
    )
    args = parser.parse_args()
    result = await measure_lifecycle(args.spawns, args.spread, args.idle)
    if args.cached:
        result["stall"] = await measure_stall(args.cached)
        if args.gc_freeze:
            result["stall_with_gc_freeze"] = await measure_stall(args.cached, gc_freeze=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
