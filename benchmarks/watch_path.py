"""The hub's CPU for a storm's watch streams, through the reflector's own watch loop.

    python -m benchmarks.watch_path --users 1000 --save-lines lines.jsonl
    python -m benchmarks.watch_path --lines lines.jsonl --rounds 5 --json out.json

Why beside ``watch_decode``: that one applies decoded lines one by one (decoders compared);
this one feeds the raw streams, cut into chunks as a burst delivers them, through
``Reflector._watch`` into a pod cache and an Event index: the line splitting, the decode,
the trim, the packing and the index, everything the hub does per watch event except the
socket read and the waiters' own code. A recording (``--save-lines``, JSON lines of
``[resource, line]``) lets two checkouts be compared on the very same input: run each
with ``--lines`` alternately.

Reported: the median and the best (over rounds) CPU milliseconds per spawn+stop cycle.
Nothing asserts; it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from .report import emit_json
from .spawner_loading import benchmark_kubeconfig

benchmark_kubeconfig()  # before any Kubernetes client is imported (see spawn_storm)

from async_kubespawner.kube.cache import EventIndex, ObjectCache, trim_pod  # noqa: E402
from async_kubespawner.kube.reflector import Reflector  # noqa: E402
from async_kubespawner.testing import ReplayedWatch  # noqa: E402

from .watch_decode import record_storm  # noqa: E402


def chunked(lines: list[tuple[str, bytes]], resource: str, per_chunk: int) -> list[bytes]:
    mine = [line for r, line in lines if r == resource]
    return [b"\n".join(mine[i:i + per_chunk]) + b"\n" for i in range(0, len(mine), per_chunk)]


async def replay(streams: dict[str, list[bytes]]) -> float:
    """CPU seconds to run both streams through fresh reflectors."""
    pods = Reflector(ReplayedWatch("pods", streams["pods"]), ObjectCache(trim_pod))  # type: ignore[arg-type]
    events = Reflector(ReplayedWatch("events", streams["events"]), EventIndex())  # type: ignore[arg-type]
    pods.resource_version = events.resource_version = "1"
    gc.collect()
    started = time.process_time()
    await pods._watch()
    await events._watch()
    return time.process_time() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.watch_path",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1000,
                        help="storm size to record (also the cycles divided by)")
    parser.add_argument("--lines", type=Path, help="replay this recording instead of a storm")
    parser.add_argument("--save-lines", type=Path, help="write the recording here")
    parser.add_argument("--per-chunk", type=int, default=8, help="lines per chunk (default 8)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.lines:
        lines = [(r, line.encode()) for r, line in map(json.loads, args.lines.read_text().splitlines())]
    else:
        lines = record_storm(args.users)
    if args.save_lines:
        args.save_lines.write_bytes(b"".join(
            orjson.dumps([r, line.decode()]) + b"\n" for r, line in lines))
    streams = {r: chunked(lines, r, args.per_chunk) for r in ("pods", "events")}
    runs = [asyncio.run(replay(streams)) for _ in range(args.rounds)]
    cycles = args.users
    result: dict[str, Any] = {
        "users": args.users,
        "lines": {r: sum(1 for x, _ in lines if x == r) for r in ("pods", "events")},
        "per_chunk": args.per_chunk,
        "rounds": args.rounds,
        "cpu_ms_per_cycle_median": round(statistics.median(runs) / cycles * 1000, 4),
        "cpu_ms_per_cycle_best": round(min(runs) / cycles * 1000, 4),
    }
    emit_json(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
