"""Request bodies over the API server's 3 MiB limit: the simulator answers 413 like the
real server, and the spawner's client takes it (and every other 4xx but 429) as final,
where a 500 used to be retried for the whole retry budget."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp import web
from kubernetes_asyncio import client as k8s_client
from kubesim.errors import MAX_REQUEST_BODY_BYTES
from kubesim.testing import run_simulator

from async_kubespawner.kube.client import PODS, ApiError, ClientOptions, KubeApi
from tests.local_http import serve_locally


def big_pod(size: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "big"},
        "spec": {
            "containers": [
                {"name": "notebook", "image": "x", "env": [{"name": "BIG", "value": "x" * size}]}
            ]
        },
    }


class NoSleep:
    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.sleeps.append(delay)


def client(url: str) -> tuple[KubeApi, NoSleep]:
    sleeps = NoSleep()
    api = KubeApi(
        k8s_client.ApiClient(k8s_client.Configuration(host=url)),
        request_timeout=10,
        retry_timeout=30,
        options=ClientOptions(sleep=sleeps),
    )
    return api, sleeps


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_simulator_answers_413_like_the_api_server(chunked: bool) -> None:
    async with run_simulator() as sim:
        body = (
            b'{"kind":"Pod","apiVersion":"v1","metadata":{"name":"x"},"pad":"'
            + (b"x" * MAX_REQUEST_BODY_BYTES)
            + b'"}'
        )

        async def chunks() -> Any:
            for start in range(0, len(body), 65536):
                yield body[start : start + 65536]

        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{sim.url}/api/v1/namespaces/default/pods",
                data=chunks() if chunked else body,
                headers={"Content-Type": "application/json"},
            ) as response:
                assert response.status == 413
                status = await response.json()
    assert status["reason"] == "RequestEntityTooLarge"
    assert status["message"] == "Request entity too large: limit is 3145728"
    assert status["code"] == 413


async def test_a_body_under_the_limit_is_not_refused_for_its_size() -> None:
    async with run_simulator() as sim:
        api, _ = client(sim.url)
        try:
            created = await api.create(PODS, "default", big_pod(2 * 1024 * 1024))
        finally:
            await api.close()
    assert created["metadata"]["name"] == "big"


async def test_spawner_client_does_not_retry_413() -> None:
    async with run_simulator() as sim:
        api, sleeps = client(sim.url)
        try:
            with pytest.raises(ApiError) as info:
                await api.create(PODS, "default", big_pod(4 * 1024 * 1024))
        finally:
            await api.close()
        assert sim.counters.count(verb="create", resource="pods") == 1
    assert info.value.status == 413
    assert info.value.reason == "RequestEntityTooLarge"
    assert sleeps.sleeps == []
    assert "x" * 100 not in str(info.value)  # the body is never echoed


CLIENT_ERRORS = [400, 401, 403, 404, 405, 406, 409, 410, 413, 415, 422]


@pytest.mark.parametrize("code", CLIENT_ERRORS)
async def test_no_4xx_but_429_is_retried(code: int) -> None:
    seen: list[int] = []

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        seen.append(code)
        return web.json_response(
            {"kind": "Status", "code": code, "reason": "X", "message": "no"}, status=code
        )

    runner, url = await serve_locally(answer)
    api, sleeps = client(url)
    try:
        with pytest.raises(ApiError) as info:
            await api.create(PODS, "ns", big_pod(10))
    finally:
        await api.close()
        await runner.cleanup()
    assert info.value.status == code
    assert not info.value.retriable
    assert seen == [code]
    assert sleeps.sleeps == []
