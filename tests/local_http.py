"""aiohttp applications on a free loopback port, for tests that need a real HTTP peer
(a scripted API server, a scripted hub) without the simulator: any tier may use them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web


async def _start(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, int(runner.addresses[0][1])


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[int]:
    """Run ``app`` on 127.0.0.1 for the ``async with`` block; yields its port."""
    runner, port = await _start(app)
    try:
        yield port
    finally:
        await runner.cleanup()


async def serve_locally(
    handle: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> tuple[web.AppRunner, str]:
    """Serve every method and path with ``handle``; returns the runner (to clean up)
    and the base URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner, port = await _start(app)
    return runner, f"http://127.0.0.1:{port}"
