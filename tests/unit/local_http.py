"""``serve``: an aiohttp application on a free loopback port, for unit tests that need a
real HTTP peer (a scripted hub, an API answer) without the simulator."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[int]:
    """Run ``app`` on 127.0.0.1 for the ``async with`` block; yields its port."""
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()
