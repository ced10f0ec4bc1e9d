"""The hub's cost of applying a spawn storm's watch lines: full parse vs typed decoders.

A storm's CPU figure moves by ±10 % with the machine's load, more than the watch path's
whole share; this isolates it. A spawn storm (``spawn_storm``'s own, simulator in its
own process) runs with the pod and Event reflectors' raw watch lines recorded; then the
same lines are applied, in a fresh process state, to a pod cache and an Event index twice
per round, alternating: parsed whole (``orjson.loads``, as before) and with the sinks'
typed ``decode_event``. Reported per spawn+stop cycle: CPU, and the collections of each
generation the replay triggered (a live heap of 100,000 small containers stands in for a
hub's). Both paths must leave identical caches: the run fails otherwise.

Usage::

    python -m benchmarks.watch_decode --users 1000 --rounds 3 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from .report import emit_json
from .spawner_loading import benchmark_kubeconfig

benchmark_kubeconfig()  # before any Kubernetes client is imported (see spawn_storm)

from async_kubespawner.kube.cache import EventIndex, ObjectCache, trim_pod  # noqa: E402
from async_kubespawner.kube.reflector import ApiListerWatcher, Reflector  # noqa: E402


@contextlib.contextmanager
def recording() -> Iterator[list[tuple[str, bytes]]]:
    """Every raw watch line the reflectors receive, in order, with its resource."""
    lines: list[tuple[str, bytes]] = []
    original = ApiListerWatcher._chunks

    async def chunks(self: ApiListerWatcher, raw: Any) -> AsyncIterator[bytes]:
        pending = b""
        async for chunk in original(self, raw):
            pending += chunk
            *complete, pending = pending.split(b"\n")
            lines.extend((self.kind.plural, x) for x in complete if x.strip())
            yield chunk

    ApiListerWatcher._chunks = chunks  # type: ignore[method-assign]
    try:
        yield lines
    finally:
        ApiListerWatcher._chunks = original  # type: ignore[method-assign]


def record_storm(users: int) -> list[tuple[str, bytes]]:
    """The watch lines of one ``users``-spawn storm on the simulator, with their resource."""
    from . import spawn_storm

    opts = spawn_storm.build_parser().parse_args(
        ["--users", str(users), "--no-memory", "--idle-seconds", "1", "--no-step-timing"])
    with recording() as lines:
        asyncio.run(spawn_storm.run_storm(opts))
    return list(lines)


class _Source:
    name = "replay"
    resource = "pods"
    namespace = "default"


def replay(lines: list[tuple[str, bytes]], typed: bool) -> tuple[float, list[int], Any]:
    """(CPU seconds, collections per generation, final cache state)."""
    pods = Reflector(_Source(), ObjectCache(trim_pod))  # type: ignore[arg-type]
    events = Reflector(_Source(), EventIndex())  # type: ignore[arg-type]
    decoders: dict[str, tuple[Reflector[Any], Callable[[bytes], Any]]] = {
        "pods": (pods, pods.sink.decode_event if typed else orjson.loads),
        "events": (events, events.sink.decode_event if typed else orjson.loads),
    }
    gc.collect()
    before = [s["collections"] for s in gc.get_stats()]
    started = time.process_time()
    for resource, line in lines:
        reflector, decode = decoders[resource]
        reflector.apply(decode(line))
    cpu = time.process_time() - started
    after = [s["collections"] for s in gc.get_stats()]
    state = (dict(pods.sink._objects), list(events.sink._order.items()),
             pods.resource_version, events.resource_version)
    return cpu, [b - a for a, b in zip(before, after, strict=True)], state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.watch_decode",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    lines = record_storm(args.users)
    heap = [{"a": [i], "b": {"c": i}} for i in range(100_000)]  # a hub's live objects
    runs: dict[str, list[tuple[float, list[int]]]] = {"full_parse": [], "typed": []}
    states = []
    for _ in range(args.rounds):
        for name, typed in (("full_parse", False), ("typed", True)):
            cpu, collections, state = replay(lines, typed)
            runs[name].append((cpu, collections))
            states.append(state)
    del heap
    if any(state != states[0] for state in states):
        print("the two paths left different caches", file=sys.stderr)
        return 1
    cycles = args.users
    result: dict[str, Any] = {
        "users": args.users,
        "lines": {r: sum(1 for x, _ in lines if x == r) for r in ("pods", "events")},
        "rounds": args.rounds,
    }
    for name, measured in runs.items():
        result[name] = {
            "cpu_ms_per_cycle": round(statistics.median(c for c, _ in measured) / cycles * 1000, 4),
            "collections_gen0_gen1_gen2": [statistics.median(g[i] for _, g in measured)
                                           for i in range(3)],
        }
    result["cpu_ratio_typed_to_full"] = round(
        result["typed"]["cpu_ms_per_cycle"] / result["full_parse"]["cpu_ms_per_cycle"], 3)
    emit_json(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
