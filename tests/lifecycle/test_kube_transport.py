"""The one module that touches kubernetes_asyncio's internals, checked against the
installed library: it must fail loudly, naming what moved, when a release changes shape;
and credentials must reach the server whichever form ``update_params_for_auth`` takes
(synchronous up to 32.x, a coroutine from 33.0)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio.client import rest as k8s_rest

from async_kubespawner.kube import transport
from async_kubespawner.kube.transport import (
    KEEPALIVE_SECONDS,
    LibraryShapeError,
    Transport,
    build_client,
    check_library,
)
from tests.local_http import serve_locally


async def test_the_installed_library_has_the_shape_this_package_relies_on():
    check_library()


async def test_a_moved_internal_is_named_loudly(monkeypatch):
    real_init = k8s_rest.RESTClientObject.__init__

    def init_without_session(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        self.pool_manager.detach()
        del self.pool_manager

    monkeypatch.setattr(k8s_rest.RESTClientObject, "__init__", init_without_session)
    with pytest.raises(LibraryShapeError, match="pool_manager"):
        check_library()


async def test_a_library_without_the_ssl_seam_is_named(monkeypatch):
    monkeypatch.delattr(k8s_rest, "ssl")
    with pytest.raises(LibraryShapeError, match="'ssl'"):
        check_library()


@pytest.fixture
async def echo_server():
    seen: list[dict[str, str]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.json_response({"major": "1", "minor": "31"})

    runner, url = await serve_locally(handle)
    yield url, seen
    await runner.cleanup()


def bearer_configuration(host: str) -> k8s_client.Configuration:
    configuration = k8s_client.Configuration(host=host)
    configuration.api_key = {"BearerToken": "t0ken"}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    return configuration


@pytest.mark.parametrize("style", ["installed", "synchronous"])
async def test_credentials_are_sent_whatever_the_auth_method_returns(echo_server, style):
    url, seen = echo_server
    client = transport.build_client(bearer_configuration(url))
    if style == "synchronous":
        # kubernetes_asyncio <= 32.x: update_params_for_auth returned None, not a coroutine
        # (awaiting it is what made every request fail there).
        def update_params_for_auth(headers, queries, auth_settings, request_auth=None):
            headers["Authorization"] = "Bearer t0ken"

        client.update_params_for_auth = update_params_for_auth
    sender = Transport(client)
    try:
        resp = await sender.request("GET", "/version", timeout=aiohttp.ClientTimeout(total=5))
        assert resp.status == 200
        resp.release()
    finally:
        await sender.close()
    assert seen[-1]["Authorization"] == "Bearer t0ken"


async def test_the_replaced_session_does_no_per_request_environment_lookups(echo_server):
    url, _ = echo_server
    client = transport.build_client(k8s_client.Configuration(host=url))
    try:
        session = Transport(client).session
        assert isinstance(session, aiohttp.ClientSession)
        assert session.trust_env is False
    finally:
        await client.close()


async def test_a_connection_idle_longer_than_aiohttps_default_is_reused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two requests 30 s apart (aiohttp's clock moved on, not the test's) share one
    connection: the pool keeps idle connections KEEPALIVE_SECONDS, not aiohttp's 15."""
    from aiohttp import connector as aiohttp_connector

    peers: list[object] = []

    async def handle(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        return web.json_response({})

    runner, url = await serve_locally(handle)
    offset = [0.0]
    real = aiohttp_connector.monotonic
    monkeypatch.setattr(aiohttp_connector, "monotonic", lambda: real() + offset[0])
    client = build_client(k8s_client.Configuration(host=url))
    transport_ = Transport(client)
    try:
        assert transport_.session.connector._keepalive_timeout == KEEPALIVE_SECONDS  # type: ignore[union-attr]
        for _ in range(2):
            resp = await transport_.request("GET", "/version", timeout=aiohttp.ClientTimeout(total=5))
            await resp.read()
            resp.release()
            offset[0] += 30.0  # longer than aiohttp's 15 s, shorter than ours
    finally:
        await transport_.close()
        await runner.cleanup()
    assert len(peers) == 2 and peers[0] == peers[1]  # one connection, reused


async def test_a_watch_backlog_is_taken_in_pieces() -> None:
    """2 MiB of watch lines already buffered by aiohttp reach the reflector in pieces of
    at most ``WATCH_FETCH_BYTES``, all of them, in order: one piece of everything
    buffered was a join of megabytes inside one loop step. The response is aiohttp's own
    reader, filled before the first fetch, so the backlog is there whatever the timing."""
    from contextlib import asynccontextmanager
    from types import SimpleNamespace
    from unittest import mock

    from async_kubespawner.kube.client import PODS
    from async_kubespawner.kube.reflector import WATCH_FETCH_BYTES, ApiListerWatcher

    line = b'{"type":"ADDED","object":{"metadata":{"name":"p","resourceVersion":"2"}}}\n'
    body = line * (2 * 2**20 // len(line))
    reader = aiohttp.StreamReader(mock.Mock(), 2**21, loop=asyncio.get_running_loop())
    reader.feed_data(body)
    reader.feed_eof()

    class _Api:
        @asynccontextmanager
        async def watch_stream(self, *args: object, **kwargs: object):
            yield SimpleNamespace(content=reader)

    source = ApiListerWatcher(_Api(), PODS, "default")  # type: ignore[arg-type]
    sizes: list[int] = []
    received = bytearray()
    async with source.watch(resource_version="1", timeout_seconds=5, read_timeout=None) as chunks:
        async for chunk in chunks:
            sizes.append(len(chunk))
            received += chunk
    assert bytes(received) == body
    assert max(sizes) <= WATCH_FETCH_BYTES
    assert len(sizes) >= len(body) // WATCH_FETCH_BYTES
