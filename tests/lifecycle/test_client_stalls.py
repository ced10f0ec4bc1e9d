"""KubeApi does not charge the hub's own event-loop stalls to the API server.

A tiny aiohttp server on 127.0.0.1 plays the API server in the test's own loop. To model
a hub whose loop is blocked (a synchronous database query, token hashing), the handler
writes its whole answer to the socket and then blocks the loop synchronously past the
client's per-attempt timeout: the answer is in the client's socket buffer, unread, when
the timeout comes due. ``retry_timeout=0`` makes any timeout final, so an answer that
were discarded would fail the call instead of being papered over by a retry.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from kubernetes_asyncio import client as k8s_client

from async_kubespawner.kube import errors
from async_kubespawner.kube.client import PODS, KubeApi
from tests.local_http import serve_locally

REQUEST_TIMEOUT = 0.5
POD_PATH = "/api/v1/namespaces/ns/pods/jupyter-alice"
PODS_PATH = "/api/v1/namespaces/ns/pods"


def block_loop_until(loop: asyncio.AbstractEventLoop, until: float) -> None:
    """The fault under test: the loop's thread is busy synchronously until ``until``."""
    while loop.time() < until:
        time.sleep(0.01)


def pod(name: str = "jupyter-alice", rv: str = "1") -> dict[str, Any]:
    return {"kind": "Pod", "metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}}


@dataclass
class StallingApiServer:
    """Answers, then stalls the loop; or never answers (``silent``)."""

    mode: str = "answer-then-stall"
    stall: float = 3 * REQUEST_TIMEOUT
    requests: list[tuple[str, str]] = field(default_factory=list)
    url: str = ""
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        await request.read()
        loop = asyncio.get_running_loop()
        arrived = loop.time()
        if request.query.get("watch") == "true":
            return await self.watch(request, arrived)
        if self.mode == "silent":
            await self.release.wait()
            return web.Response(status=500)
        if self.mode == "stall-then-silent":
            block_loop_until(loop, arrived + self.stall)
            await self.release.wait()
            return web.Response(status=500)
        body = pod() if request.method in ("GET", "POST") else {"kind": "Status"}
        response = web.json_response(body, status=201 if request.method == "POST" else 200)
        await response.prepare(request)
        await response.write_eof()  # the whole answer is in the client's socket buffer
        block_loop_until(loop, arrived + self.stall)
        return response

    async def watch(self, request: web.Request, arrived: float) -> web.StreamResponse:
        """Two events, the second followed by a stall longer than the idle timeout,
        then silence until the end of the test."""
        loop = asyncio.get_running_loop()
        response = web.StreamResponse()
        response.content_type = "application/json"
        await response.prepare(request)
        await response.write(json.dumps({"type": "ADDED", "object": pod(rv="2")}).encode() + b"\n")
        await response.write(
            json.dumps({"type": "MODIFIED", "object": pod(rv="3")}).encode() + b"\n"
        )
        block_loop_until(loop, arrived + self.stall)
        await self.release.wait()
        return response


@pytest.fixture
async def server() -> AsyncIterator[StallingApiServer]:
    scripted = StallingApiServer()
    runner, scripted.url = await serve_locally(scripted.handle)
    yield scripted
    scripted.release.set()
    await runner.cleanup()


@pytest.fixture
async def api(server: StallingApiServer) -> AsyncIterator[KubeApi]:
    kube = KubeApi(
        k8s_client.ApiClient(k8s_client.Configuration(host=server.url)),
        request_timeout=REQUEST_TIMEOUT,
        retry_timeout=0,
    )
    yield kube
    await kube.close()


async def test_a_get_answered_during_a_stall_succeeds(server, api) -> None:
    got = await api.get(PODS, "ns", "jupyter-alice")
    assert got["metadata"]["name"] == "jupyter-alice"
    assert server.requests == [("GET", POD_PATH)]  # one attempt, not a retry


async def test_a_create_answered_during_a_stall_is_not_sent_twice(server, api) -> None:
    created = await api.create(PODS, "ns", pod())
    assert created["metadata"]["name"] == "jupyter-alice"
    assert server.requests == [("POST", PODS_PATH)]


async def test_a_delete_answered_during_a_stall_succeeds(server, api) -> None:
    assert await api.delete(PODS, "ns", "jupyter-alice") is not None
    assert server.requests == [("DELETE", POD_PATH)]


async def test_a_server_that_never_answers_still_times_out(server, api) -> None:
    server.mode = "silent"
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with asyncio.timeout(30):  # a guard: fail rather than hang
        with pytest.raises(errors.NoResponse) as caught:
            await api.get(PODS, "ns", "jupyter-alice")
    assert caught.value.reason == "Timeout"
    assert f"within {REQUEST_TIMEOUT:g}s" in str(caught.value)
    assert loop.time() - started >= REQUEST_TIMEOUT


async def test_a_silent_server_times_out_after_a_stall_too(server, api) -> None:
    """The loop stalls while the server is silent: a grace, then the timeout."""
    server.mode = "stall-then-silent"
    async with asyncio.timeout(30):
        with pytest.raises(errors.NoResponse) as caught:
            await api.get(PODS, "ns", "jupyter-alice")
    assert caught.value.reason == "Timeout"
    assert server.requests == [("GET", POD_PATH)]


async def test_a_watch_delivers_what_arrived_during_a_stall_then_idles_out(
    server, api
) -> None:
    lines: list[dict[str, Any]] = []
    async with asyncio.timeout(30):
        with pytest.raises(errors.NoResponse) as caught:
            async with api.watch_stream(
                PODS,
                "ns",
                resource_version="1",
                timeout_seconds=300,
                read_timeout=REQUEST_TIMEOUT,
            ) as resp:
                while line := await resp.content.readline():
                    lines.append(json.loads(line))
    assert [e["type"] for e in lines] == ["ADDED", "MODIFIED"]
    assert caught.value.reason == "Timeout"
    assert caught.value.verb == "watch"


async def test_a_callers_own_timeout_inside_a_watch_is_left_alone(server, api) -> None:
    server.stall = 0
    with pytest.raises(TimeoutError) as caught:
        async with api.watch_stream(
            PODS, "ns", resource_version="1", timeout_seconds=300, read_timeout=None
        ) as resp:
            await resp.content.readline()
            async with asyncio.timeout(0.01):
                await asyncio.Event().wait()
    assert not isinstance(caught.value, errors.ApiError)
