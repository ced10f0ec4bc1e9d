"""The API client under a spawn storm: no thread-pool work per request, and
queueing for a request slot never spends a request's timeout or retry budget.

Against the simulator over real HTTP; latency and errors come from ``sim.faults``.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from typing import Any, TypeVar, TypeVarTuple, Unpack

import pytest
from kubernetes_asyncio import client as k8s_client
from kubesim.testing import Simulator, run_simulator

from async_kubespawner.kube.client import (
    NAMESPACES,
    PODS,
    ApiError,
    ClientOptions,
    KubeApi,
    build_api,
    proxy_for,
)
from async_kubespawner.kube.transport import Transport, build_client
from async_kubespawner.metrics import API_REQUEST_ERRORS
from tests.lifecycle.fake_clock import FakeClock

NS = "storm"


def create_timeouts() -> float:
    """Attempts of pod creates that hit their per-attempt timeout so far (process-wide)."""
    return API_REQUEST_ERRORS.labels("create", "pods", "timeout")._value.get()


def pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "storm"}},
        "spec": {"containers": [{"name": "notebook", "image": "example/notebook"}]},
    }


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with run_simulator() as simulator:
        yield simulator


async def make_api(sim: Simulator, pool_size: int = 0, **kwargs: Any) -> KubeApi:
    settings: dict[str, Any] = {"request_timeout": 3.0, "retry_timeout": 30.0, **kwargs}
    configuration = sim.client_configuration()
    configuration.connection_pool_maxsize = pool_size
    api = build_api(configuration, **settings)
    await api.create(NAMESPACES, None, {"metadata": {"name": NS}})
    sim.counters.reset()
    return api


_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")


class ExecutorCalls:
    """Counts what goes through ``loop.run_in_executor`` while installed."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.calls: list[str] = []
        self._loop = loop
        self._original = loop.run_in_executor

    def __enter__(self) -> "ExecutorCalls":
        def counting(
            executor: Executor | None, func: Callable[[Unpack[_Ts]], _T], *args: *_Ts
        ) -> asyncio.Future[_T]:
            self.calls.append(getattr(func, "__name__", repr(func)))
            return self._original(executor, func, *args)

        self._loop.run_in_executor = counting  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.run_in_executor = self._original  # type: ignore[method-assign]


async def crud(api: KubeApi, names: list[str]) -> None:
    await asyncio.gather(*(api.create(PODS, NS, pod(n)) for n in names))
    await asyncio.gather(*(api.get(PODS, NS, n) for n in names))
    await asyncio.gather(*(api.delete(PODS, NS, n, grace_period_seconds=0) for n in names))


async def test_requests_do_no_thread_pool_work(sim):
    api = await make_api(sim)
    try:
        names = [f"jupyter-user{i}" for i in range(20)]
        with ExecutorCalls(asyncio.get_running_loop()) as executor:
            await crud(api, names)
        assert sim.counters.count() == 60
        assert executor.calls == []
    finally:
        await api.close()


async def test_the_stock_session_does_thread_pool_work_per_request(sim):
    """The control for the test above: kubernetes_asyncio's own session hops per request."""
    client = k8s_client.ApiClient(sim.client_configuration())
    api = KubeApi(client, request_timeout=3.0, retry_timeout=30.0)
    try:
        await api.create(NAMESPACES, None, {"metadata": {"name": NS}})
        with ExecutorCalls(asyncio.get_running_loop()) as executor:
            await crud(api, ["jupyter-a", "jupyter-b"])
        assert len(executor.calls) >= 6
    finally:
        await api.close()


async def test_queued_creates_do_not_time_out_or_retry(sim):
    # 24 creates through 2 slots at 0.1 s each: the last one queues ~1.1 s, twice its
    # per-attempt timeout. Counted from the call, it would time out, retry and meet 409s.
    sim.faults.add_latency(0.1, verb="create", resource="pods")
    api = await make_api(sim, request_timeout=0.5, max_concurrent_requests=2)
    try:
        names = [f"jupyter-user{i}" for i in range(24)]
        timeouts_before = create_timeouts()
        created = await asyncio.gather(*(api.create(PODS, NS, pod(n)) for n in names))
        assert sorted(p["metadata"]["name"] for p in created) == sorted(names)
        assert sim.counters.count(verb="create", resource="pods") == 24
        assert sim.counters.count(verb="create", resource="pods", status=409) == 0
        assert sim.counters.count(verb="get") == 0  # no 409 reconciliation read-backs
        assert create_timeouts() == timeouts_before
    finally:
        await api.close()


async def test_control_queueing_in_the_connection_pool_times_out(sim):
    """The control for the test above: the same storm bounded only by a 2-connection pool
    (the old arrangement) spends its timeouts queueing and retries creates."""
    sim.faults.add_latency(0.1, verb="create", resource="pods")
    api = await make_api(sim, pool_size=2, request_timeout=0.5, max_concurrent_requests=100)
    try:
        names = [f"jupyter-user{i}" for i in range(24)]
        timeouts_before = create_timeouts()
        await asyncio.gather(*(api.create(PODS, NS, pod(n)) for n in names))
        assert create_timeouts() > timeouts_before
    finally:
        await api.close()


class CountingTransport(Transport):
    """The real transport, counting requests in flight (the client's public seam)."""

    in_flight = 0
    peak = 0

    async def request(self, *args: Any, **kwargs: Any) -> Any:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            resp = await super().request(*args, **kwargs)
            await resp.read()  # the body is part of the round trip
            return resp
        finally:
            self.in_flight -= 1


async def test_slots_bound_requests_in_flight(sim):
    sim.faults.add_latency(0.05, verb="get", resource="pods")
    configuration = sim.client_configuration()
    configuration.connection_pool_maxsize = 0
    client = build_client(configuration)
    transport = CountingTransport(client)
    api = KubeApi(
        client,
        request_timeout=3.0,
        retry_timeout=30.0,
        max_concurrent_requests=3,
        transport=transport,
    )
    try:
        await api.create(NAMESPACES, None, {"metadata": {"name": NS}})
        await api.create(PODS, NS, pod("jupyter-x"))
        transport.peak = 0
        await asyncio.gather(*(api.get(PODS, NS, "jupyter-x") for _ in range(12)))
        assert transport.peak == 3
    finally:
        await api.close()


async def test_retry_budget_still_ends_a_request_that_never_succeeds(sim):
    sim.faults.fail(503, verb="create", resource="pods")
    clock = FakeClock()
    api = await make_api(
        sim,
        retry_timeout=10,
        max_concurrent_requests=1,
        options=ClientOptions(clock=clock, sleep=clock.sleep),
    )
    try:
        with pytest.raises(ApiError) as info:
            await api.create(PODS, NS, pod("jupyter-doomed"))
        assert info.value.status == 503
        assert sum(clock.sleeps) <= 10
        assert len(clock.sleeps) >= 3
        # The slot was given back: the one-slot client still serves other requests.
        sim.faults.clear()
        assert (await api.create(PODS, NS, pod("jupyter-ok")))["metadata"]["name"] == "jupyter-ok"
    finally:
        await api.close()


def test_bad_slot_count_is_a_clear_error():
    with pytest.raises(ValueError, match="k8s_api_max_concurrent_requests"):
        KubeApi(object(), request_timeout=3, retry_timeout=30, max_concurrent_requests=0)


def test_proxy_is_resolved_once_from_configuration_or_environment(monkeypatch):
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    assert proxy_for("https://k8s.example:6443", None) is None
    assert proxy_for("https://k8s.example:6443", "http://explicit:3128") == "http://explicit:3128"
    monkeypatch.setenv("HTTPS_PROXY", "http://corp-proxy:3128")
    assert proxy_for("https://k8s.example:6443", None) == "http://corp-proxy:3128"
    assert proxy_for("https://k8s.example:6443", "http://explicit:3128") == "http://explicit:3128"
    monkeypatch.setenv("NO_PROXY", "k8s.example")
    assert proxy_for("https://k8s.example:6443", None) is None


def test_bad_slot_setting_is_rejected_with_its_name():
    from traitlets import TraitError

    from async_kubespawner.traits.api import ApiTraits

    with pytest.raises(TraitError, match="k8s_api_max_concurrent_requests must be at least 1"):
        ApiTraits(k8s_api_max_concurrent_requests=0)
    assert ApiTraits(k8s_api_max_concurrent_requests=7).k8s_api_max_concurrent_requests == 7
