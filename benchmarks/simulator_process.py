"""The hub side of ``benchmarks.sim_host``: start it as a child process and talk to it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


class SimulatorProcess:
    """A running ``python -m benchmarks.sim_host``; commands go over its stdin/stdout."""

    def __init__(self, process: asyncio.subprocess.Process, url: str, kubeconfig: str) -> None:
        self.process = process
        self.url = url
        self.kubeconfig = kubeconfig
        self._lock = asyncio.Lock()

    @classmethod
    async def start(cls, kubeconfig: Path, *, users: int, seed: int, scenario: str,
                    cluster: bool = True, bookmark_interval: float = 60.0,
                    auth: bool = False, flow_control: bool = True) -> SimulatorProcess:
        args = [sys.executable, "-m", "benchmarks.sim_host", "--kubeconfig", str(kubeconfig),
                "--users", str(users), "--seed", str(seed), "--scenario", scenario,
                "--bookmark-interval", str(bookmark_interval)]
        if not cluster:
            args.append("--no-cluster")
        if auth:
            args.append("--auth")
        if not flow_control:
            args.append("--no-flow-control")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)}
        process = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            cwd=REPO_ROOT, env=env, limit=256 * 1024 * 1024,
        )
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
        if not line:
            code = await process.wait()
            raise RuntimeError(f"the simulator process exited with status {code} before "
                               "listening; run `python -m benchmarks.sim_host --help` to check "
                               "its options")
        hello = json.loads(line)
        return cls(process, hello["url"], hello["kubeconfig"])

    async def command(self, cmd: str, **fields: Any) -> Any:
        """Send one command and return its result (raises with the simulator's message)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        async with self._lock:
            self.process.stdin.write((json.dumps({"cmd": cmd, **fields}) + "\n").encode())
            await self.process.stdin.drain()
            line = await self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the simulator process ended while answering {cmd!r}")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise RuntimeError(f"simulator command {cmd!r} failed: {reply.get('error')}")
        return reply["result"]

    async def request_total(self) -> int:
        return int((await self.command("counters"))["total"])

    async def close(self) -> None:
        if self.process.returncode is not None:
            return
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(b'{"cmd": "quit"}\n')
            await self.process.stdin.drain()
            self.process.stdin.close()
            await asyncio.wait_for(self.process.wait(), timeout=15)
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            self.process.kill()
            await self.process.wait()


def counts_by_verb(snapshot: dict[str, Any]) -> dict[str, int]:
    """``{"create pods": 3, ...}`` from a counters snapshot (for the per-phase breakdown)."""
    out: dict[str, int] = {}
    for row in snapshot.get("counts", []):
        status = row["status"]
        key = f"{row['verb']} {row['resource']}" + ("" if 200 <= status < 300 else f" {status}")
        out[key] = out.get(key, 0) + int(row["count"])
    return dict(sorted(out.items()))

