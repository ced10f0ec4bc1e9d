"""The hub's CPU per API request: a create and a delete through ``KubeApi``, nothing else.

    python -m benchmarks.request_round_trip --requests 2000 --rounds 5 --json out.json

Why a benchmark of its own: a spawn+stop cycle sends two writes (the pod's create and
its delete), and what the client spends on each (building the request, aiohttp, the
per-attempt timeout, admission, metrics, reading the answer) is lost in a storm's
figure among the spawner's and the watches' work, and moves by more than itself with
the machine's load. This runs only the client: the simulator in its own process
(``benchmarks.sim_host`` without scheduler or kubelet, so it only stores and answers),
then, per round, ``--requests`` pod creates shaped like the spawner's (a create id, the
uid-only decode of the answer) and as many deletes (uid precondition, answer unread),
``--concurrency`` in flight at once, timing this process's CPU for each phase.

Reported: the median (over rounds) CPU microseconds per create and per delete, and the
wall time of each phase. ``--instant``: no server at all, aiohttp's session replaced by
one that answers at once, so only the client's own code per request is timed (the slot,
the per-attempt timeout, auth, metrics, the retry budget, reading the answer).
Nothing asserts; it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .simulator_process import SimulatorProcess
from .spawner_loading import benchmark_kubeconfig

NAMESPACE = "default"


def pod_manifest(i: int, round_: int) -> dict[str, Any]:
    """A pod shaped like a small spawner pod (labels, annotations, one container)."""
    name = f"rt-{round_}-{i:05d}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {
                "component": "singleuser-server",
                "app.kubernetes.io/component": "singleuser-server",
                "hub.jupyter.org/username": name,
            },
            "annotations": {"hub.jupyter.org/username": name},
        },
        "spec": {
            "containers": [
                {
                    "name": "notebook",
                    "image": "quay.io/jupyterhub/singleuser:5",
                    "ports": [{"name": "notebook-port", "containerPort": 8888}],
                    "env": [{"name": f"VAR_{k}", "value": "x" * 40} for k in range(20)],
                }
            ],
            "restartPolicy": "OnFailure",
        },
    }


async def _bounded(jobs: list[Callable[[], Awaitable[Any]]], concurrency: int) -> list[Any]:
    """Run ``jobs`` with at most ``concurrency`` at once, as a burst of spawners would."""
    results: list[Any] = [None] * len(jobs)
    it = iter(enumerate(jobs))

    async def worker() -> None:
        for index, job in it:
            results[index] = await job()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


class _InstantResponse:
    status = 200
    headers: dict[str, str] = {}

    def __init__(self, body: bytes) -> None:
        self._body = body

    async def read(self) -> bytes:
        return self._body

    def release(self) -> None:
        pass


class _InstantSession:
    """Stands in for aiohttp's session: every request is answered at once."""

    async def request(self, method: str, url: str, **kwargs: Any) -> _InstantResponse:
        return _InstantResponse(b'{"metadata":{"uid":"u"}}')


async def run_instant(opts: argparse.Namespace) -> dict[str, Any]:
    """The client's own code per request, without aiohttp or a server."""
    from kubernetes_asyncio import client as k8s_client

    from async_kubespawner.kube.client import PODS, KubeApi, encode_create
    from async_kubespawner.kube.pod_list import decode_created_uid

    configuration = k8s_client.Configuration(host="http://127.0.0.1:1")
    configuration.api_key = {"BearerToken": "t0ken"}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    api_client = k8s_client.ApiClient(configuration)
    await api_client.rest_client.pool_manager.close()
    api_client.rest_client.pool_manager = _InstantSession()  # type: ignore[assignment]  # a stand-in
    api = KubeApi(api_client, request_timeout=3.0, retry_timeout=30.0)
    body = encode_create(pod_manifest(0, 0))
    rounds: list[dict[str, float]] = []
    for round_ in range(opts.rounds + 1):
        cpu0 = time.process_time()
        for _ in range(opts.requests):
            await api.create(PODS, NAMESPACE, body, decode=decode_created_uid)
        cpu1 = time.process_time()
        for i in range(opts.requests):
            await api.delete(PODS, NAMESPACE, f"rt-{i}", grace_period_seconds=0, uid="u",
                             read_response=False)
        cpu2 = time.process_time()
        if round_:
            rounds.append({"create_cpu_us": (cpu1 - cpu0) / opts.requests * 1e6,
                           "delete_cpu_us": (cpu2 - cpu1) / opts.requests * 1e6})
    result: dict[str, Any] = {"requests": opts.requests, "rounds": opts.rounds,
                              "instant": True}
    for key in rounds[0]:
        result[key] = round(statistics.median(r[key] for r in rounds), 2)
    result["per_round"] = rounds
    return result


async def run(opts: argparse.Namespace) -> dict[str, Any]:
    kubeconfig = benchmark_kubeconfig()
    from async_kubespawner.kube.client import (
        PODS,
        ApiSettings,
        close_shared_apis,
        encode_create,
        shared_api,
    )
    from async_kubespawner.kube.pod_list import decode_created_uid

    sim = await SimulatorProcess.start(
        kubeconfig, users=opts.requests, seed=1, scenario="instant", cluster=False
    )
    try:
        api = await shared_api(
            ApiSettings(host=sim.url, kubeconfig=sim.kubeconfig, max_concurrent_requests=100)
        )
        rounds: list[dict[str, float]] = []
        for round_ in range(opts.rounds + 1):  # round 0 warms up (connections, imports)
            bodies = [encode_create(pod_manifest(i, round_)) for i in range(opts.requests)]

            def creator(body: Any) -> Callable[[], Awaitable[Any]]:
                return lambda: api.create(PODS, NAMESPACE, body, decode=decode_created_uid)

            cpu0, wall0 = time.process_time(), time.perf_counter()
            created = await _bounded([creator(b) for b in bodies], opts.concurrency)
            cpu1, wall1 = time.process_time(), time.perf_counter()
            uids = [c["metadata"]["uid"] for c in created]

            def deleter(body: Any, uid: str) -> Callable[[], Awaitable[Any]]:
                return lambda: api.delete(
                    PODS, NAMESPACE, body.name, grace_period_seconds=0, uid=uid,
                    read_response=False,
                )

            await _bounded([deleter(b, u) for b, u in zip(bodies, uids, strict=True)],
                           opts.concurrency)
            cpu2, wall2 = time.process_time(), time.perf_counter()
            if round_:
                rounds.append({
                    "create_cpu_us": (cpu1 - cpu0) / opts.requests * 1e6,
                    "delete_cpu_us": (cpu2 - cpu1) / opts.requests * 1e6,
                    "create_wall_ms": (wall1 - wall0) * 1000,
                    "delete_wall_ms": (wall2 - wall1) * 1000,
                })
        await close_shared_apis()
    finally:
        await sim.close()
    result: dict[str, Any] = {
        "requests": opts.requests,
        "concurrency": opts.concurrency,
        "rounds": opts.rounds,
    }
    for key in rounds[0]:
        result[key] = round(statistics.median(r[key] for r in rounds), 2)
    result["per_round"] = rounds
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.request_round_trip",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--instant", action="store_true",
                        help="no server: time the client's own code per request only")
    parser.add_argument("--json", type=Path)
    opts = parser.parse_args(argv)
    result = asyncio.run(run_instant(opts) if opts.instant else run(opts))
    text = json.dumps({k: v for k, v in result.items() if k != "per_round"}, indent=2)
    print(text)
    if opts.json:
        opts.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
