"""What API Priority and Fairness costs the simulator, and what it buys a light client.

Three figures, flow control off and on (``kubesim --no-flow-control`` / default):

``rate``
    a create+get loop against the simulator in its own process (``python -m kubesim
    --no-auth``, raw HTTP from ``--workers`` concurrent clients of one flow):
    requests/s and the server's CPU microseconds per request (from /proc).
``admit_us``
    the admission itself, in process: ``FlowControl.admit`` + ``release`` for an idle
    level (the path nearly every request takes) and for a queued request.
``light_client_ms``
    the flood a hub makes: ``--workers`` clients of one flow keep creating, while a
    second program (its own process, another User-Agent: another flow) makes one GET at
    a time; its latency p50/p99. Without fair queuing it waits behind the whole flood.

    PYTHONPATH=.:simulator python -m benchmarks.sim_flow_control [--seconds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import make_mocked_request

REPO_ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "default"
BATCH = 200


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def start_simulator(flow_control: bool, workdir: Path) -> tuple[Any, str]:
    args = [sys.executable, "-m", "kubesim", "--no-auth", "--kubeconfig",
            str(workdir / f"kubeconfig-{flow_control}")]
    if not flow_control:
        args.append("--no-flow-control")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO_ROOT), str(REPO_ROOT / "simulator"), os.environ.get("PYTHONPATH", "")])}
    process = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                   env=env)
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
    url = line.split("listening on ", 1)[1].split()[0]
    return process, url


async def create_get_loop(url: str, workers: int, seconds: float,
                          agent: str) -> int:
    done = 0
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=workers)
    async with aiohttp.ClientSession(connector=connector,
                                     headers={"User-Agent": agent}) as http:
        async def worker(w: int) -> None:
            nonlocal done
            i = 0
            while time.monotonic() < deadline:
                name = f"{agent}-{w}-{i}".lower()
                body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                   "metadata": {"name": name}, "data": {"k": "v"}})
                async with http.post(f"{url}/api/v1/namespaces/{NAMESPACE}/configmaps",
                                     data=body,
                                     headers={"Content-Type": "application/json"}) as r:
                    await r.read()
                    assert r.status in (201, 429), r.status
                async with http.get(
                        f"{url}/api/v1/namespaces/{NAMESPACE}/configmaps/{name}") as r:
                    await r.read()
                done += 2
                i += 1

        await asyncio.gather(*(worker(w) for w in range(workers)))
    return done


async def light_client(url: str, seconds: float) -> list[float]:
    """One GET at a time for ``seconds``; the latencies (run in a process of its own, so
    the flood's client loop does not add to them)."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession(headers={"User-Agent": "light-client/1"}) as http:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            async with http.get(f"{url}/api/v1/namespaces/{NAMESPACE}/configmaps/absent") as r:
                await r.read()
            latencies.append(time.perf_counter() - started)
    return latencies


async def light_client_process(url: str, seconds: float) -> list[float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO_ROOT), str(REPO_ROOT / "simulator"), os.environ.get("PYTHONPATH", "")])}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.sim_flow_control", "--light-client", url,
        "--seconds", str(seconds), stdout=asyncio.subprocess.PIPE, env=env, cwd=REPO_ROOT)
    out, _ = await process.communicate()
    latencies: list[float] = json.loads(out)
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure_server(flow_control: bool, workers: int, seconds: float,
                         workdir: Path) -> dict[str, Any]:
    process, url = await start_simulator(flow_control, workdir)
    try:
        await create_get_loop(url, 4, 0.5, "warmup")
        cpu0, wall0 = cpu_seconds(process.pid), time.monotonic()
        done = await create_get_loop(url, workers, seconds, "flood")
        cpu, wall = cpu_seconds(process.pid) - cpu0, time.monotonic() - wall0
        light = asyncio.create_task(light_client_process(url, seconds))
        await create_get_loop(url, workers, seconds + 1, "flood2")
        latencies = await light
        return {
            "requests": done,
            "requests_per_s": round(done / wall, 1),
            "server_cpu_us_per_request": round(cpu / done * 1e6, 1),
            "light_client_ms": {
                "count": len(latencies),
                "p50": round(statistics.median(latencies) * 1000, 2),
                "p99": round(percentile(latencies, 0.99) * 1000, 2),
            },
        }
    finally:
        process.terminate()
        await process.wait()


async def admit_cost(rounds: int) -> dict[str, float]:
    from kubesim.auth.users import UserInfo
    from kubesim.flowcontrol import TICKET_KEY, FlowControl

    flow = FlowControl()
    user = UserInfo("system:serviceaccount:hub:hub",
                    groups=("system:serviceaccounts", "system:authenticated"))
    request = make_mocked_request("PATCH", "/api/v1/namespaces/hub/pods/jupyter-x/status")
    # mocked requests are slow to make (milliseconds): made before the clock starts
    batch = [make_mocked_request("PATCH", "/api/v1/namespaces/hub/pods/jupyter-x/status")
             for _ in range(BATCH)]

    async def idle() -> float:
        started = time.perf_counter()
        for _ in range(rounds):
            await flow.admit(request, user)
            flow.release(request[TICKET_KEY])
            await asyncio.sleep(0)  # the next loop turn: the level is idle again
        return (time.perf_counter() - started) / rounds * 1e6

    async def baseline() -> float:
        started = time.perf_counter()
        for _ in range(rounds):
            await asyncio.sleep(0)
        return (time.perf_counter() - started) / rounds * 1e6

    async def queued() -> float:
        async def one(req: Any) -> None:
            await flow.admit(req, user)
            flow.release(req[TICKET_KEY])

        started = time.perf_counter()
        for _ in range(rounds // BATCH):  # a burst of one flow, within its queues' limits
            await asyncio.gather(*(one(req) for req in batch))
        return (time.perf_counter() - started) / rounds * 1e6

    async def gathered_baseline() -> float:
        async def one() -> None:
            await asyncio.sleep(0)

        started = time.perf_counter()
        for _ in range(rounds // BATCH):
            await asyncio.gather(*(one() for _ in range(BATCH)))
        return (time.perf_counter() - started) / rounds * 1e6

    await idle()
    return {
        "idle_level_us": round(await idle() - await baseline(), 2),
        "queued_us": round(await queued() - await gathered_baseline(), 2),
    }


async def run(opts: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"meta": {"workers": opts.workers, "seconds": opts.seconds,
                                       "load_average_before": os.getloadavg()}}
    result["admit_us"] = await admit_cost(opts.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        for label, enabled in (("off", False), ("on", True)):
            result[label] = await measure_server(enabled, opts.workers, opts.seconds, Path(tmp))
    result["meta"]["load_average_after"] = os.getloadavg()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sim_flow_control",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=20000)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--light-client", metavar="URL", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.light_client:  # the light client's own process
        print(json.dumps(asyncio.run(light_client(opts.light_client, opts.seconds))))
        return 0
    result = asyncio.run(run(opts))
    text = json.dumps(result, indent=2)
    if opts.json:
        opts.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
