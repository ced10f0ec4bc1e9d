"""How fast the simulated cluster takes pods from creation to Ready, and how much it writes.

    python -m benchmarks.cluster_lifecycle --pods 200 [--clock fast] [--json out.json]

Creates ``--pods`` pods at once through kubernetes_asyncio against an in-process
simulator + cluster, waits (on a watch) until every pod is Ready, and reports the wall
time, pods per second, and the pod writes and events the scheduler and kubelet made per
pod. With ``--scenario random`` readiness is spread out by the scenario's random timings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any, cast

from kubernetes_asyncio import client, watch
from kubesim.cluster.config import ClusterConfig
from kubesim.cluster.nodes import NodePoolSpec
from kubesim.cluster.testing import run_cluster


def _pod(i: int) -> dict[str, Any]:
    return {
        "metadata": {"name": f"bench-{i}", "labels": {"bench": "yes"}},
        "spec": {
            "containers": [
                {
                    "name": "notebook",
                    "image": "quay.io/jupyterhub/singleuser:5",
                    "resources": {"requests": {"cpu": "100m"}},
                }
            ]
        },
    }


async def measure(pods: int, clock: str, scenario: str, nodes: int) -> dict[str, Any]:
    config = ClusterConfig(
        clock=clock,
        default_scenario=scenario,
        nodes=[NodePoolSpec(count=nodes, cpu="64", memory="256Gi", pods=1000)],
    )
    async with run_cluster(config) as sim:
        api_client = sim.api_client()
        core = client.CoreV1Api(api_client)
        try:
            start_version = (await core.list_namespaced_pod("default")).metadata.resource_version
            rv_before = sim.store.resource_version
            started = time.perf_counter()
            await asyncio.gather(
                *(
                    # a plain dict body: the library sends it as is (its stubs want a V1Pod)
                    core.create_namespaced_pod("default", cast(Any, _pod(i)))
                    for i in range(pods)
                )
            )
            created = time.perf_counter()
            ready: set[str] = set()
            async with watch.Watch() as w:
                async for event in w.stream(
                    core.list_namespaced_pod,
                    "default",
                    label_selector="bench=yes",
                    resource_version=start_version,
                ):
                    pod = event["object"]
                    if any(
                        c.type == "Ready" and c.status == "True"
                        for c in pod.status.conditions or []
                    ):
                        ready.add(pod.metadata.name)
                        if len(ready) == pods:
                            break
            done = time.perf_counter()
            events, _ = sim.store.list(sim.store.resource("events"), "default")
            writes = sim.store.resource_version - rv_before
        finally:
            await api_client.close()
    return {
        "pods": pods,
        "nodes": nodes,
        "clock": clock,
        "scenario": scenario,
        "create_seconds": round(created - started, 3),
        "all_ready_seconds": round(done - started, 3),
        "pods_ready_per_second": round(pods / (done - started), 1),
        "store_writes_per_pod": round(writes / pods, 1),
        "events_per_pod": round(len(events) / pods, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=200)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--clock", default="fast")
    parser.add_argument("--scenario", default="ready")
    parser.add_argument("--json", help="also write the result to this file")
    args = parser.parse_args()
    result = asyncio.run(measure(args.pods, args.clock, args.scenario, args.nodes))
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2)


if __name__ == "__main__":
    main()
