"""An independent watcher process: when does a plain client hear of each change?

If the hub's watch hears of an Event seconds after it was written, is it the API server
(the simulator) or the hub process? This process holds its own two watches (pods and
events, plain aiohttp, no spawner code), timestamps each line on ``CLOCK_MONOTONIC`` as
it is decoded, and writes the receive times when told to stop (a line on stdin):
``{"ready": {"ns/name": t}, "deleted": {"ns/name": t}, "events": {uid: t}}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp


def _ready(pod: dict[str, Any]) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


async def _watch(session: aiohttp.ClientSession, url: str, plural: str,
                 seen: dict[str, dict[str, float]]) -> None:
    async with session.get(f"{url}/api/v1/namespaces/default/{plural}") as listed:
        version = (await listed.json())["metadata"]["resourceVersion"]
    while True:
        params = {"watch": "true", "resourceVersion": version, "timeoutSeconds": "3600"}
        async with session.get(f"{url}/api/v1/namespaces/default/{plural}",
                               params=params, timeout=aiohttp.ClientTimeout(total=None)) as resp:
            async for line in resp.content:
                got = time.monotonic()
                if not line.strip():
                    continue
                event = json.loads(line)
                obj = event.get("object") or {}
                meta = obj.get("metadata") or {}
                version = meta.get("resourceVersion") or version
                key = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
                if plural == "events" and event["type"] == "ADDED":
                    seen["events"].setdefault(meta.get("uid", ""), got)
                elif plural == "pods" and event["type"] == "DELETED":
                    seen["deleted"][key] = got
                elif plural == "pods" and _ready(obj):
                    seen["ready"].setdefault(key, got)


async def main_async(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    seen: dict[str, dict[str, float]] = {"ready": {}, "deleted": {}, "events": {}}
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with aiohttp.ClientSession() as session:
        tasks = [asyncio.ensure_future(_watch(session, args.url, plural, seen))
                 for plural in ("pods", "events")]
        print("watching", flush=True)
        await reader.readline()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
    return seen


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.watch_probe")
    parser.add_argument("--url", required=True)
    parser.add_argument("--json", required=True)
    args = parser.parse_args()
    seen = asyncio.run(main_async(args))
    Path(args.json).write_text(json.dumps(seen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
