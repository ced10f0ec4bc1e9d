"""A catch-all aiohttp app on a free localhost port, for client tests that script the
API server's answers themselves."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web


async def serve_locally(
    handle: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> tuple[web.AppRunner, str]:
    """Serve every method and path with ``handle``; returns the runner (to clean up)
    and the base URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"
