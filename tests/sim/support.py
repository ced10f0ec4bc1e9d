"""What several simulator test modules share: the recorded samples, raw HTTP calls and kubectl.

Kept in one plain module (not in a test module) so that no test module imports another
and every test file that replays a recording reads it the same way.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import aiohttp
from kubesim.testing import Simulator

SAMPLES = Path(__file__).parent / "samples"
REPO_ROOT = Path(__file__).resolve().parents[2]
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


def load(file: str) -> dict[str, Any]:
    """A whole recording file of ``tests/sim/samples`` (real API server responses)."""
    with open(SAMPLES / file) as f:
        recording: dict[str, Any] = json.load(f)
    return recording


def sample(file: str, key: str) -> dict[str, Any]:
    """One recorded exchange (or event) of a recording file."""
    entry: dict[str, Any] = load(file)[key]
    return entry


def concrete(value: Any, run: str) -> Any:
    """A recorded value with its ``<run>`` placeholders filled in for this test run."""
    if isinstance(value, str):
        return value.replace("<run>", run)
    if isinstance(value, dict):
        return {k: concrete(v, run) for k, v in value.items()}
    if isinstance(value, list):
        return [concrete(v, run) for v in value]
    return value


async def call(
    sim: Simulator,
    method: str,
    path: str,
    body: Any = None,
    ctype: str = "application/json",
    *,
    accept: str | None = None,
    agent: str | None = None,
) -> tuple[int, Any]:
    """One raw HTTP request (no client library in between); (status, decoded JSON body).

    A ``str`` body is sent as it is (YAML, malformed JSON), anything else as JSON.
    ``agent`` is the User-Agent, which the server turns into the default field manager.
    """
    data = body if body is None or isinstance(body, str) else json.dumps(body)
    headers = {"Content-Type": ctype}
    if accept is not None:
        headers["Accept"] = accept
    if agent is not None:
        headers["User-Agent"] = agent
    async with aiohttp.ClientSession() as http, http.request(
        method, sim.url + path, data=data, headers=headers
    ) as resp:
        return resp.status, await resp.json()


async def kubectl(
    kubeconfig: Path, *args: str, stdin: str | None = None
) -> tuple[int, str, str]:
    """Run the real kubectl against a simulator's kubeconfig: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        KUBECTL, "--kubeconfig", str(kubeconfig), *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else None,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    return proc.returncode or 0, out.decode(), err.decode()


async def ok(kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    """kubectl's stdout; the test fails with kubectl's stderr when it exits non-zero."""
    code, out, err = await kubectl(kubeconfig, *args, stdin=stdin)
    assert code == 0, f"kubectl {' '.join(args)} failed: {err}"
    return out
