"""Every scripted fault, from Python and through the /_sim admin endpoints."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

CM = {"metadata": {"name": "c"}, "data": {"k": "v"}}


async def test_error_for_matching_verb_and_resource(simulator, api_client):
    v1 = client.CoreV1Api(api_client)
    simulator.faults.fail(503, verb="create", resource="configmaps", count=1)
    with pytest.raises(ApiException) as info:
        await v1.create_namespaced_config_map("default", CM)
    assert info.value.status == 503
    assert json.loads(info.value.body)["reason"] == "ServiceUnavailable"
    await v1.create_namespaced_config_map("default", CM)  # count=1: the next one works
    assert simulator.faults.rules == []


async def test_429_carries_retry_after(simulator, api_client):
    v1 = client.CoreV1Api(api_client)
    simulator.faults.fail(429, resource="pods", retry_after=3)
    with pytest.raises(ApiException) as info:
        await v1.list_namespaced_pod("default")
    assert info.value.status == 429
    assert info.value.headers["Retry-After"] == "3"
    body = json.loads(info.value.body)
    assert body["reason"] == "TooManyRequests" and body["details"]["retryAfterSeconds"] == 3
    await v1.list_namespaced_config_map("default")  # other resources unaffected


async def test_error_for_a_named_object_only(simulator, api_client):
    v1 = client.CoreV1Api(api_client)
    await v1.create_namespaced_config_map("default", CM)
    await v1.create_namespaced_config_map("default", {"metadata": {"name": "d"}})
    simulator.faults.fail(500, name="c")
    with pytest.raises(ApiException) as info:
        await v1.read_namespaced_config_map("c", "default")
    assert info.value.status == 500
    await v1.read_namespaced_config_map("d", "default")


async def test_error_fraction_is_honoured(simulator, api_client):
    v1 = client.CoreV1Api(api_client)
    simulator.faults.fail(500, fraction=0.5, verb="list")
    failures = 0
    for _ in range(60):
        try:
            await v1.list_namespaced_pod("default")
        except ApiException:
            failures += 1
    assert 5 < failures < 55
    assert simulator.counters.count(verb="list", status=500) == failures


async def test_latency_delays_matching_requests(simulator, api_client):
    v1 = client.CoreV1Api(api_client)
    rule = simulator.faults.add_latency(0.01, up_to=0.02, verb="get")
    await v1.create_namespaced_config_map("default", CM)
    await v1.read_namespaced_config_map("c", "default")
    assert rule.hits == 1  # only the get matched


async def test_connection_reset_mid_response(simulator, api_client):
    v1 = client.CoreV1Api(api_client)
    simulator.faults.reset_connections(verb="list", count=1)
    with pytest.raises(aiohttp.ClientError):
        await v1.list_namespaced_pod("default")
    await v1.list_namespaced_pod("default")
    assert simulator.counters.count(verb="list", status=0) == 1  # the cut one
    assert simulator.counters.count(verb="list", status=200) == 1


async def test_scripted_reset_logs_no_traceback(simulator, caplog):
    """A reset is the fault working as scripted, not a server error worth a traceback."""
    simulator.faults.reset_connections(count=2)
    url = f"{simulator.url}/api/v1/namespaces"
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientPayloadError):
            async with http.get(url) as resp:
                await resp.read()
        # a HEAD is cut before its headers; aiohttp retries an idempotent request once
        async with http.head(url) as resp:
            assert resp.status == 200
    assert simulator.counters.count(verb="list", status=0) == 2
    assert [r for r in caplog.records if r.levelno >= 40] == []


async def test_expire_next_list_and_watch(simulator, api_client):
    v1 = client.CoreV1Api(api_client)
    simulator.faults.expire_next(verb="list")
    with pytest.raises(ApiException) as info:
        await v1.list_namespaced_pod("default")
    assert info.value.status == 410
    await v1.list_namespaced_pod("default")
    # kubernetes_asyncio's Watch retries a 410 once when no timeout_seconds is given
    simulator.faults.expire_next(2, verb="watch")
    w = watch.Watch()
    with pytest.raises(ApiException) as info:
        async for _ in w.stream(v1.list_namespaced_pod, "default", resource_version="1"):
            pass
    assert info.value.status == 410
    assert simulator.counters.count(verb="watch", status=200) == 2


async def test_close_watches_now_and_after_n_events(simulator, api_client):
    v1 = client.CoreV1Api(api_client)
    rv = (await v1.list_namespaced_config_map("default")).metadata.resource_version
    for i in range(5):
        await v1.create_namespaced_config_map("default", {"metadata": {"name": f"c{i}"}})
    store = simulator.store
    w1 = store.watch(store.resource("configmaps"), "default", resource_version=rv)
    assert simulator.faults.close_watches(after_events=2) == 1
    assert [e.object["metadata"]["name"] async for e in w1] == ["c0", "c1"]
    w2 = store.watch(store.resource("configmaps"), "default", resource_version=rv)
    simulator.faults.close_watches()
    assert [e async for e in w2] == []


async def test_close_watches_ends_http_streams(simulator, api_client):
    v1 = client.CoreV1Api(api_client)
    rv = (await v1.list_namespaced_config_map("default")).metadata.resource_version
    w = watch.Watch()
    first_seen = asyncio.Event()

    async def consume() -> list[str]:
        seen = []
        async for ev in w.stream(v1.list_namespaced_config_map, "default", resource_version=rv,
                                 timeout_seconds=30):
            seen.append(ev["object"].metadata.name)
            first_seen.set()
        return seen

    task = asyncio.create_task(consume())
    await v1.create_namespaced_config_map("default", CM)
    await first_seen.wait()
    assert simulator.faults.close_watches() == 1
    # kubernetes_asyncio's Watch ends its stream when the server closes it
    assert await task == ["c"]
    assert simulator.store.watches() == []


async def test_outage_resets_then_recovers(simulator, api_client):
    v1 = client.CoreV1Api(api_client)
    simulator.faults.outage(30)
    with pytest.raises(aiohttp.ClientError):
        await v1.list_namespaced_pod("default")
    simulator.faults.clear()
    await v1.list_namespaced_pod("default")
    simulator.faults.outage(30, mode="503")
    with pytest.raises(ApiException) as info:
        await v1.list_namespaced_pod("default")
    assert info.value.status == 503
    async with aiohttp.ClientSession() as http, http.get(f"{simulator.url}/version") as resp:
        assert resp.status == 503  # discovery is down too


async def test_admin_endpoint_scripts_faults_and_reports_counters(simulator, api_client):
    v1 = client.CoreV1Api(api_client)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{simulator.url}/_sim/faults",
                             json={"action": "error", "code": 504, "verb": "get", "count": 1}) as r:
            assert r.status == 200
            assert (await r.json())["code"] == 504
        with pytest.raises(ApiException) as info:
            await v1.read_namespace("default")
        assert info.value.status == 504
        await v1.read_namespace("default")
        async with http.post(f"{simulator.url}/_sim/faults", json={"action": "bogus"}) as r:
            assert r.status == 400
            assert "unknown fault action 'bogus'" in (await r.json())["message"]
        async with http.post(f"{simulator.url}/_sim/faults", json={"action": "error", "code": 418}) as r:
            assert r.status == 400
        async with http.get(f"{simulator.url}/_sim/counters") as r:
            counts = (await r.json())["counts"]
        assert {"verb": "get", "resource": "namespaces", "status": 504, "count": 1} in counts
        assert {"verb": "get", "resource": "namespaces", "status": 200, "count": 1} in counts
        async with http.get(f"{simulator.url}/_sim/requests?limit=2") as r:
            assert len((await r.json())["requests"]) == 2
        async with http.post(f"{simulator.url}/_sim/faults", json={"action": "restart"}) as r:
            assert (await r.json()) == {"restarted": True}
        async with http.get(f"{simulator.url}/_sim/state") as r:
            state = await r.json()
        assert state["oldestResumableVersion"] == state["resourceVersion"]


def test_bad_fault_scripts_say_what_is_wrong(simulator):
    with pytest.raises(ValueError, match="fraction must be a number between 0 and 1, got 2"):
        simulator.faults.fail(500, fraction=2)
    with pytest.raises(ValueError, match="unknown verb 'fetch'"):
        simulator.faults.fail(500, verb="fetch")
    with pytest.raises(ValueError, match="outage mode"):
        simulator.faults.outage(1, mode="explode")
    # values only used later, while matching a request, are checked now: a bad one would
    # otherwise turn every later API request into a 500
    with pytest.raises(ValueError, match="count must be a whole number >= 0, got 'x'"):
        simulator.faults.fail(500, count="x")
    with pytest.raises(ValueError, match="retry_after must be a whole number"):
        simulator.faults.fail(429, retry_after=1.5)
    with pytest.raises(ValueError, match="resource must be a string"):
        simulator.faults.reset_connections(resource=["pods"])
    with pytest.raises(ValueError, match="latency must be a finite number"):
        simulator.faults.add_latency(float("inf"))
    with pytest.raises(ValueError, match="outage seconds must be a finite number"):
        simulator.faults.outage(float("nan"))
    with pytest.raises(ValueError, match="after_events must be a whole number"):
        simulator.faults.close_watches(after_events="5")
    assert simulator.faults.rules == []


async def test_bad_admin_fault_commands_are_400_and_leave_the_api_working(simulator):
    async with aiohttp.ClientSession() as http:
        for command in ({"action": "error", "code": 503, "count": "x"},
                        {"action": "expire", "count": [1]},
                        {"action": "latency", "seconds": "inf"},
                        {"action": "outage", "seconds": 1e999},
                        {"action": "close_watches", "after_events": "x"},
                        {"action": "remove", "id": 1e999}):
            async with http.post(f"{simulator.url}/_sim/faults", json=command) as resp:
                assert resp.status == 400, command
                assert (await resp.json())["reason"] == "BadRequest"
        async with http.get(f"{simulator.url}/api/v1/namespaces/default/pods") as resp:
            assert resp.status == 200


async def test_expired_watch_fault_with_a_malformed_version_is_a_400(simulator):
    simulator.faults.expire_next(verb="watch")
    async with aiohttp.ClientSession() as http:
        url = f"{simulator.url}/api/v1/namespaces/default/pods"
        async with http.get(url, params={"watch": "1", "resourceVersion": "soon"}) as resp:
            assert resp.status == 400
            assert (await resp.json())["message"] == 'invalid resource version "soon"'


async def test_outage_ends_by_itself_after_its_duration(simulator, api_client):
    v1 = client.CoreV1Api(api_client)
    now = [1000.0]
    simulator.faults.clock = lambda: now[0]
    simulator.faults.outage(10, mode="503")
    with pytest.raises(ApiException) as info:
        await v1.list_namespaced_pod("default")
    assert info.value.status == 503
    now[0] += 9.9
    assert simulator.faults.in_outage
    now[0] += 0.2
    assert not simulator.faults.in_outage
    await v1.list_namespaced_pod("default")


async def test_hold_lets_matching_requests_through_one_by_one(simulator, api_client):
    v1 = client.CoreV1Api(api_client)
    gate = simulator.faults.hold(verb="list", resource="configmaps")
    await v1.create_namespaced_config_map("default", CM)  # not held: another verb
    first = asyncio.ensure_future(v1.list_namespaced_config_map("default"))
    second = asyncio.ensure_future(v1.list_namespaced_config_map("default"))
    await gate.wait_arrived(2)
    assert not first.done() and not second.done()
    gate.release()
    done, pending = await asyncio.wait({first, second}, return_when=asyncio.FIRST_COMPLETED)
    assert len(done) == 1 and len(pending) == 1
    assert "c" in [cm.metadata.name for cm in done.pop().result().items]
    simulator.faults.clear()  # clearing opens every hold
    assert "c" in [cm.metadata.name for cm in (await pending.pop()).items]
    assert simulator.faults.rules == []
