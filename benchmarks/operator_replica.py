"""One operator replica for the operator benchmark: the real operator, plus a memory endpoint.

    python -m benchmarks.operator_replica --memory-port P [operator options ...]

Runs exactly what ``python -m async_kubespawner.operator`` runs (same arguments, same
code path through :func:`async_kubespawner.operator.app.run`), and in addition serves
``GET http://127.0.0.1:P/memory`` (and, with ``--profile``, ``/profile?path=FILE``, the
cProfile statistics of the replica so far): after a full garbage collection, the process's RSS and
the deep size of the operator's own state (its caches of NotebookServers, templates,
pods, PVCs and Events, and the reconciler's per-server memory). The benchmark reads it
with no servers and with N servers; the difference divided by N is the memory the
operator spends per managed server, free of the interpreter's and libraries' fixed cost.

Why a separate module rather than an option of the operator: the measurement walks the
operator's private objects, which a production process has no reason to expose.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import logging
import sys
import types
from typing import Any

from aiohttp import web

from async_kubespawner.operator import app

_SKIP = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType,
         types.MethodType, types.CodeType, types.FrameType)


def deep_size(roots: list[Any]) -> int:
    """Bytes of every object reachable from ``roots`` (each counted once; classes,
    modules and functions, which are shared by the whole process, not at all)."""
    seen: set[int] = set()
    stack = list(roots)
    total = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _SKIP):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def operator_state(operator: app.Operator) -> dict[str, Any]:
    gc.collect()
    reconciler = operator.reconciler
    parts = {
        "servers": operator.servers,
        "templates": operator.templates,
        "pods": operator.pods,
        "pvcs": operator.pvcs,
        "events": operator.events,
        "reconciler_memory": [reconciler._memory, reconciler._recorded],
        "queue": operator.queue,
    }
    sizes = {name: deep_size([value]) for name, value in parts.items()}
    return {
        "rss_bytes": rss_bytes(),
        "state_bytes": deep_size(list(parts.values())),
        "parts": sizes,
        "servers": len(operator.servers),
        "pods": len(operator.pods),
        "reconciles": operator.reconciles,
        "leader": operator.is_leader,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--memory-port", type=int, required=True)
    parser.add_argument("--profile", action="store_true",
                        help="run under cProfile; GET /profile?path=FILE writes the stats")
    ours, rest = parser.parse_known_args(argv)
    profiler = cProfile.Profile() if ours.profile else None
    if profiler is not None:
        profiler.enable()
    args = app.parse_args(rest)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runners: list[web.AppRunner] = []

    async def ready(operator: app.Operator) -> None:
        async def memory(request: web.Request) -> web.Response:
            return web.json_response(operator_state(operator))

        async def profile(request: web.Request) -> web.Response:
            if profiler is None:
                return web.json_response({"error": "not started with --profile"}, status=404)
            profiler.disable()
            profiler.dump_stats(request.query["path"])
            profiler.enable()
            return web.json_response({"written": request.query["path"]})

        web_app = web.Application()
        web_app.router.add_get("/memory", memory)
        web_app.router.add_get("/profile", profile)
        runner = web.AppRunner(web_app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", ours.memory_port).start()
        runners.append(runner)

    asyncio.run(app.run(args, ready=ready))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
