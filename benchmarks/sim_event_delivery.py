"""Event delivery with the simulated cluster running: commit -> watch arrival, by reason.

``sim_load`` measures the API server alone (no scheduler or kubelet writing). This runs
the simulator in-process with its cluster, creates a burst of pods over HTTP and
timestamps every core/v1 Event twice: when the store commits it and when a raw aiohttp
watch stream delivers it. Grouping by reason shows which writer holds the loop (a
scheduler binding a whole burst in one loop iteration delayed every Scheduled Event).

    python -m benchmarks.sim_event_delivery --pods 500
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from typing import Any

import aiohttp
from kubesim.cluster import add_arguments, build_controllers
from kubesim.store import Store
from kubesim.testing import run_simulator

EVENTS_PER_POD = 4  # Scheduled (or FailedScheduling), Pulling/Pulled, Created, Started


class CommitTimes:
    """A store commit listener that remembers when each Event was committed, and its reason.

    The store calls it synchronously at each commit, before any watcher is offered the
    event (``Store.commit_listeners``).
    """

    def __init__(self) -> None:
        self.committed: dict[str, tuple[float, str]] = {}

    def __call__(self, rt: Any, event_type: str, obj: dict[str, Any]) -> None:
        if rt.plural == "events" and event_type == "ADDED":
            self.committed[obj["metadata"]["uid"]] = (time.monotonic(), str(obj.get("reason")))


async def run(pods: int, concurrency: int) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    times = CommitTimes()
    store = Store()
    store.commit_listeners.append(times)
    arrived: dict[str, float] = {}
    async with (
        run_simulator(store=store, controllers=build_controllers(parser.parse_args([]))) as sim,
        aiohttp.ClientSession() as http,
    ):
        base = f"{sim.url}/api/v1/namespaces/default"
        async with http.get(f"{base}/events") as resp:
            rv = (await resp.json())["metadata"]["resourceVersion"]
        ready, complete = asyncio.Event(), asyncio.Event()

        async def watch() -> None:
            url = f"{base}/events?watch=1&resourceVersion={rv}"
            async with http.get(url, timeout=aiohttp.ClientTimeout(total=None)) as resp:
                ready.set()
                async for line in resp.content:
                    got = time.monotonic()
                    event = json.loads(line)
                    if event["type"] == "ADDED":
                        arrived.setdefault(event["object"]["metadata"]["uid"], got)
                    if len(arrived) >= EVENTS_PER_POD * pods and all(
                        uid in arrived for uid in times.committed
                    ):
                        complete.set()

        watcher = asyncio.create_task(watch())
        await ready.wait()
        slots = asyncio.Semaphore(concurrency)

        async def create(name: str) -> None:
            body = {"metadata": {"name": name},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
            async with slots, http.post(f"{base}/pods", json=body) as resp:
                if resp.status != 201:
                    raise RuntimeError(f"create {name}: HTTP {resp.status} {await resp.text()}")

        await asyncio.gather(*(create(f"storm-{i:05d}") for i in range(pods)))
        with contextlib.suppress(TimeoutError):  # report what arrived, however much
            await asyncio.wait_for(complete.wait(), 60)
        watcher.cancel()
    by_reason: dict[str, list[float]] = {}
    for uid, (at, reason) in times.committed.items():
        if uid in arrived:
            by_reason.setdefault(reason, []).append((arrived[uid] - at) * 1000)
    figures = {}
    for reason, lags in sorted(by_reason.items()):
        lags.sort()
        figures[reason] = {"n": len(lags), "p50_ms": lags[len(lags) // 2],
                           "p99_ms": lags[min(len(lags) - 1, int(len(lags) * 0.99))]}
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=500, help="pods created in the burst")
    parser.add_argument("--concurrency", type=int, default=32, help="creates in flight")
    args = parser.parse_args(argv)
    if args.pods < 1 or args.concurrency < 1:
        parser.error("--pods and --concurrency must be at least 1")
    figures = asyncio.run(run(args.pods, args.concurrency))
    print(f"{'reason':<20} {'events':>7} {'p50 ms':>8} {'p99 ms':>8}")
    for reason, f in figures.items():
        print(f"{reason:<20} {f['n']:>7} {f['p50_ms']:>8.1f} {f['p99_ms']:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
