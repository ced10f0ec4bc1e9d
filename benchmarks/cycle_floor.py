"""What a spawn+stop cycle's parts cost on this machine, each alone: the floor under a storm.

    python -m benchmarks.cycle_floor --requests 2000 --rounds 5 --json out.json

Why: issue 16 asks for at most 1.5 ms of hub CPU per spawn+stop cycle and for 1,000
simultaneous stops drained in 200 ms. The storm (``spawn_storm``) measures the whole, and
its figure moves by ±20 % with this shared machine's speed from one day to the next. Whether
a target can be reached with this stack *on this machine* is a question about the parts
that no change of ours removes, so this measures them alone, in one process, one after
the other:

- ``http``: one request's CPU in this process through an aiohttp session set up as the
  client's (``trust_env`` off, keep-alive, ``--concurrency`` connections, a per-request
  timeout, the bearer header), against a server in another process that answers every
  request at once with a small fixed body. That is the HTTP library, asyncio and the
  kernel's side of the socket, nothing of ours and nothing of the API server's. Every
  create and every delete goes through kubernetes_asyncio's aiohttp session (the
  architecture: credentials, TLS and proxies are the library's), so a cycle pays it twice.
- ``http_protocol``: the same requests through a bare asyncio protocol (keep-alive, a
  ``Content-Length`` answer and nothing else): a bound no HTTP client on asyncio goes
  under, shown for comparison only; the package does not use it.
- ``wake``: one loop step, a task resumed by an ``asyncio.Event`` another task set.
- ``spawner``: the spawner's own Python per start (before its first request) and per stop
  (``spawner_hot_path``, default configuration, best of three runs).
- ``watch``: the watch path per cycle, the chunks of a recorded 1,000-spawn storm through
  the reflectors into the caches (``watch_path``; ``--watch-lines`` replays a saved
  recording, ``--watch-users 0`` leaves the part out).

Reported: each part (median over rounds) and three sums. ``floor_ms_per_cycle``: two
requests, the spawner's start and stop, the watch path, and ``--steps-per-cycle`` loop
steps (the step census's count of a 1,000-spawn storm), each at the cost measured here;
what the hub's JupyterHub part, the progress stream and the readiness looks add comes on
top. ``drain_floor_ms``: 1,000 deletes at the ``http`` cost, on one event loop, with no
other work at all; ``drain_floor_ms_with_stop``: the same plus 1,000 of the spawner's own
stops (finding the pod, proving it this server's), still without reading a single watch
line: the least CPU the hub's one core spends on 1,000 stops, however fast the API
server. Nothing asserts; it measures.
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

import aiohttp

from .report import emit_json

#: Loop steps per spawn+stop cycle in the step census of a 1,000-spawn storm
#: (``spawn_storm --step-census``; docs/performance.md).
CENSUS_STEPS_PER_CYCLE = 64.4
TARGET_MS_PER_CYCLE = 1.5
TARGET_DRAIN_MS = 200.0
DRAIN_STOPS = 1000

_BODY = b'{"kind":"Status","apiVersion":"v1","status":"Success"}'
_ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(_BODY)).encode()
    + b"\r\n\r\n"
    + _BODY
)
#: A delete's options, as the client sends them with a uid precondition.
_DELETE_BODY = b'{"gracePeriodSeconds":0,"preconditions":{"uid":"u"}}'
_PATH = "/api/v1/namespaces/default/pods/jupyter-floor"


def _content_length(head: bytes) -> int:
    """The Content-Length of a request's or response's head (0 without one)."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


class _AnswerAtOnce(asyncio.Protocol):
    """The stand-in server: every complete request (headers and Content-Length body) gets
    the same small answer, so the server's own cost is nothing and on another core."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            length = _content_length(self.buffer[:end])
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length:]
            self.transport.write(_ANSWER)


async def serve() -> None:
    """``--serve``: listen on a free loopback port, print it, answer until killed."""
    server = await asyncio.get_running_loop().create_server(_AnswerAtOnce, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


class _OneAtATime(asyncio.Protocol):
    """A keep-alive connection with one request in flight: the bare protocol client."""

    def __init__(self) -> None:
        self.buffer = b""
        self.answer: asyncio.Future[bytes] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        length = _content_length(self.buffer[:end])
        if len(self.buffer) >= end + 4 + length and self.answer is not None:
            body = self.buffer[end + 4:end + 4 + length]
            self.buffer = self.buffer[end + 4 + length:]
            answer, self.answer = self.answer, None
            answer.set_result(body)


async def _cpu_per_call(call: Callable[[], Awaitable[Any]], count: int, concurrency: int) -> float:
    """CPU microseconds of this process per ``call``, ``concurrency`` in flight at once."""
    left = iter(range(count))

    async def worker() -> None:
        for _ in left:
            await call()

    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - started) / count * 1e6


async def measure_http(port: int, requests: int, rounds: int, concurrency: int) -> dict[str, Any]:
    """Median CPU µs per request: aiohttp as the client uses it, and the bare protocol."""
    url = f"http://127.0.0.1:{port}{_PATH}"
    headers = {"Authorization": "Bearer t0ken", "Accept": "application/json",
               "Content-Type": "application/json"}
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=60)
    per_round: dict[str, list[float]] = {"aiohttp": [], "protocol": []}
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:

        async def through_aiohttp() -> None:
            async with session.request("DELETE", url, headers=headers, data=_DELETE_BODY,
                                       timeout=timeout) as response:
                await response.read()

        for round_ in range(rounds + 1):  # round 0 opens the connections
            cost = await _cpu_per_call(through_aiohttp, requests, concurrency)
            if round_:
                per_round["aiohttp"].append(cost)

    loop = asyncio.get_running_loop()
    idle: asyncio.Queue[_OneAtATime] = asyncio.Queue()
    for _ in range(concurrency):
        _, protocol = await loop.create_connection(_OneAtATime, "127.0.0.1", port)
        idle.put_nowait(protocol)
    request = (
        f"DELETE {_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Authorization: Bearer t0ken\r\nAccept: application/json\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(_DELETE_BODY)}\r\n\r\n"
    ).encode() + _DELETE_BODY

    async def through_protocol() -> None:
        connection = await idle.get()
        connection.answer = loop.create_future()
        connection.transport.write(request)
        await connection.answer
        idle.put_nowait(connection)

    try:
        for round_ in range(rounds + 1):
            cost = await _cpu_per_call(through_protocol, requests, concurrency)
            if round_:
                per_round["protocol"].append(cost)
    finally:
        while not idle.empty():
            idle.get_nowait().transport.close()
    return {
        "http_us": round(statistics.median(per_round["aiohttp"]), 1),
        "http_protocol_us": round(statistics.median(per_round["protocol"]), 1),
        "per_round": per_round,
    }


async def measure_wake(count: int, rounds: int) -> float:
    """Median CPU µs of one loop step: a waiting task resumed by an Event set elsewhere."""
    costs: list[float] = []
    for _ in range(rounds):
        events = [asyncio.Event() for _ in range(count)]

        async def waiter(event: asyncio.Event) -> None:
            await event.wait()

        tasks = [asyncio.ensure_future(waiter(e)) for e in events]
        await asyncio.sleep(0)  # every waiter is now parked on its event
        started = time.process_time()
        for event in events:
            event.set()
        await asyncio.gather(*tasks)
        costs.append((time.process_time() - started) / count * 1e6)
    return round(statistics.median(costs), 2)


async def _start_server() -> tuple[asyncio.subprocess.Process, int]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.cycle_floor", "--serve",
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
    if not line.strip():
        process.kill()
        raise RuntimeError("the stand-in server did not report its port")
    return process, int(line)


def sums(parts: dict[str, Any], steps_per_cycle: float) -> dict[str, Any]:
    """The floor per cycle and the drain floor from the parts (µs in, ms out)."""
    spawner = parts.get("spawner_start_us", 0.0) + parts.get("spawner_stop_us", 0.0)
    floor_us = (2 * parts["http_us"] + spawner + parts.get("watch_us_per_cycle", 0.0)
                + steps_per_cycle * parts["wake_us"])
    return {
        "floor_ms_per_cycle": round(floor_us / 1000, 3),
        "http_share_of_target": round(2 * parts["http_us"] / 1000 / TARGET_MS_PER_CYCLE, 3),
        "drain_floor_ms": round(DRAIN_STOPS * parts["http_us"] / 1000, 1),
        "drain_floor_ms_with_stop": round(
            DRAIN_STOPS * (parts["http_us"] + parts.get("spawner_stop_us", 0.0)) / 1000, 1),
        "drain_floor_ms_protocol": round(DRAIN_STOPS * parts["http_protocol_us"] / 1000, 1),
        "targets": {"ms_per_cycle": TARGET_MS_PER_CYCLE, "drain_ms": TARGET_DRAIN_MS},
    }


async def run(opts: argparse.Namespace) -> dict[str, Any]:
    process, port = await _start_server()
    try:
        http = await measure_http(port, opts.requests, opts.rounds, opts.concurrency)
    finally:
        process.kill()
        await process.wait()
    parts: dict[str, Any] = {
        "http_us": http["http_us"],
        "http_protocol_us": http["http_protocol_us"],
        "wake_us": await measure_wake(opts.requests, opts.rounds),
    }
    if opts.spawners:
        from . import spawner_hot_path

        spawner = await spawner_hot_path.run(opts.spawners, 3)
        parts["spawner_start_us"] = spawner["default"]["prepare_us"]["median"]
        parts["spawner_stop_us"] = spawner["default"]["stop_us"]["median"]
    return parts


def watch_part(opts: argparse.Namespace) -> float | None:
    """Median CPU µs per cycle of the watch path, or None when left out."""
    if not opts.watch_lines and not opts.watch_users:
        return None
    from . import watch_path
    from .watch_decode import record_storm

    if opts.watch_lines:
        lines = [(r, line.encode()) for r, line in
                 map(json.loads, opts.watch_lines.read_text().splitlines())]
        cycles: int = opts.watch_cycles
    else:
        lines = record_storm(opts.watch_users)
        cycles = int(opts.watch_users)
    streams = {r: watch_path.chunked(lines, r, 8) for r in ("pods", "events")}
    runs: list[float] = [asyncio.run(watch_path.replay(streams)) for _ in range(opts.rounds)]
    return round(float(statistics.median(runs)) / cycles * 1e6, 1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cycle_floor",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests (and wakes) per round")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--spawners", type=int, default=500,
                        help="fresh spawners per spawner_hot_path run (0: leave the part out)")
    parser.add_argument("--watch-users", type=int, default=1000,
                        help="record a storm of this size for the watch part (0: leave it out)")
    parser.add_argument("--watch-lines", type=Path,
                        help="replay this recording (watch_path --save-lines) instead")
    parser.add_argument("--watch-cycles", type=int, default=1000,
                        help="the cycles the --watch-lines recording holds")
    parser.add_argument("--steps-per-cycle", type=float, default=CENSUS_STEPS_PER_CYCLE)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    opts = build_parser().parse_args(argv)
    if opts.serve:
        asyncio.run(serve())
        return 0
    # The watch part records a storm with its own event loop: before ours starts.
    watch_us = watch_part(opts)
    parts = asyncio.run(run(opts))
    if watch_us is not None:
        parts["watch_us_per_cycle"] = watch_us
    result: dict[str, Any] = {
        "requests": opts.requests, "concurrency": opts.concurrency, "rounds": opts.rounds,
        "steps_per_cycle": opts.steps_per_cycle, "parts": parts,
        "left_out": [name for name, on in (("spawner", opts.spawners),
                                           ("watch", watch_us is not None)) if not on],
        **sums(parts, opts.steps_per_cycle),
    }
    emit_json(result, opts.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
