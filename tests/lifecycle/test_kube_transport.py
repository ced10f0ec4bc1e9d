"""The one module that touches kubernetes_asyncio's internals, checked against the
installed library: it must fail loudly, naming what moved, when a release changes shape;
and credentials must reach the server whichever form ``update_params_for_auth`` takes
(synchronous up to 32.x, a coroutine from 33.0)."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio.client import rest as k8s_rest

from async_kubespawner.kube import transport
from async_kubespawner.kube.transport import LibraryShapeError, Transport, check_library


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

    app = web.Application()
    app.router.add_get("/version", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", seen
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
