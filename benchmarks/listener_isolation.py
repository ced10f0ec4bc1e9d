"""How long a burst of cache changes takes to apply when one object's listener is slow.

A listener is code of whoever subscribed (a spawn's progress log, a hook). This measures
the stream's side: the time from the first of ``--changes`` changes of one pod (whose
listener burns ``--listener-ms`` of CPU per call) to a *second* pod's change being in the
cache and its waiter woken, inside a running event loop, as the reflector's watch loop
applies them. Runs against whatever ``async_kubespawner`` is first on the path, so the
same command measures two trees:

    python -m benchmarks.listener_isolation --json out.json
    PYTHONPATH=/path/to/other/tree python -m benchmarks.listener_isolation
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from async_kubespawner.kube.cache import ObjectCache, trim_pod


def pod(name: str, rv: int) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": name, "resourceVersion": str(rv)},
        "spec": {"containers": [{"name": "notebook"}]},
        "status": {"phase": "Pending"},
    }


async def measure(changes: int, listener_ms: float) -> dict[str, float]:
    cache = ObjectCache(trim_pod)
    calls = 0

    def slow_listener(_pod: Any) -> None:
        nonlocal calls
        calls += 1
        end = time.perf_counter() + listener_ms / 1000
        while time.perf_counter() < end:
            pass

    cache.listen(("default", "jupyter-a"), slow_listener)
    other = asyncio.ensure_future(
        cache.wait_for(("default", "jupyter-b"), lambda p: p is not None, 60)
    )
    await asyncio.sleep(0)
    started = time.perf_counter()
    for rv in range(1, changes + 1):  # the watch loop applying a backlog
        cache.upsert(pod("jupyter-a", rv))
    cache.upsert(pod("jupyter-b", changes + 1))
    await other
    other_seen = time.perf_counter() - started
    idle = getattr(cache, "listeners_idle", None)
    if idle is not None:
        await idle()
    return {
        "other_pod_seen_ms": round(other_seen * 1000, 2),
        "listener_calls": calls,
        "all_delivered_ms": round((time.perf_counter() - started) * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--listener-ms", type=float, default=5.0)
    parser.add_argument("--json", help="write the result here too")
    args = parser.parse_args()
    result = {
        "changes": args.changes,
        "listener_ms": args.listener_ms,
        **asyncio.run(measure(args.changes, args.listener_ms)),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
