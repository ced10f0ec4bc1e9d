"""The history window: 410 Expired on list and watch, Exact lists, pagination, restart."""

from __future__ import annotations

import json
import time
from pathlib import Path

import aiohttp
import pytest
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException
from kubesim.testing import run_simulator

SAMPLES = Path(__file__).parent / "samples"


def sample(file: str, key: str) -> dict:
    with open(f"{SAMPLES}/{file}") as f:
        return json.load(f)[key]


async def make_configmaps(v1, n: int, prefix: str = "page", **labels) -> None:
    for i in range(n):
        await v1.create_namespaced_config_map(
            "default",
            {"metadata": {"name": f"{prefix}-{i}", "labels": labels}, "data": {"i": str(i)}},
        )


async def test_list_from_compacted_version_is_410_like_the_real_server():
    async with run_simulator(history_size=2) as sim, sim.api_client() as api:
        v1 = client.CoreV1Api(api)
        await make_configmaps(v1, 4)
        with pytest.raises(ApiException) as info:
            await v1.list_namespaced_config_map(
                "default", resource_version="1", resource_version_match="Exact"
            )
        assert info.value.status == 410
        assert (
            json.loads(info.value.body)
            == sample("status-errors.json", "410_list_resource_version_too_old")["response"]["body"]
        )


async def test_watch_from_compacted_version_gets_one_error_event_then_ends():
    async with run_simulator(history_size=2) as sim:
        async with aiohttp.ClientSession() as http, sim.api_client() as api:
            await make_configmaps(client.CoreV1Api(api), 4)
            url = f"{sim.url}/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=1"
            async with http.get(url) as resp:
                assert resp.status == 200
                lines = [json.loads(line) async for line in resp.content]
        expected = sample("watch-events.json", "ERROR_expired")["event"]
        assert len(lines) == 1
        got = lines[0]
        assert got["object"]["message"].startswith("too old resource version: 1 (")
        got["object"]["message"] = expected["object"]["message"]
        assert got == expected


async def test_kubernetes_asyncio_watch_raises_410_for_expired_version():
    async with run_simulator(history_size=1) as sim, sim.api_client() as api:
        v1 = client.CoreV1Api(api)
        await make_configmaps(v1, 3)
        w = watch.Watch()
        with pytest.raises(ApiException) as info:
            async for _ev in w.stream(
                v1.list_namespaced_config_map, "default", resource_version="2"
            ):
                pass
        assert info.value.status == 410


@pytest.mark.simulator_options(root_ca_configmaps=False)  # counts configmaps
async def test_exact_list_reconstructs_an_older_state(api_client):
    v1 = client.CoreV1Api(api_client)
    await make_configmaps(v1, 2)
    then = (await v1.list_namespaced_config_map("default")).metadata.resource_version
    await v1.delete_namespaced_config_map("page-0", "default")
    await v1.patch_namespaced_config_map("page-1", "default", {"data": {"i": "changed"}})
    await make_configmaps(v1, 1, prefix="later")
    old = await v1.list_namespaced_config_map(
        "default", resource_version=then, resource_version_match="Exact"
    )
    assert old.metadata.resource_version == then
    assert [(c.metadata.name, c.data["i"]) for c in old.items] == [("page-0", "0"), ("page-1", "1")]
    now = await v1.list_namespaced_config_map(
        "default", resource_version=then, resource_version_match="NotOlderThan"
    )
    assert [c.metadata.name for c in now.items] == ["later-0", "page-1"]


async def test_too_large_resource_version_and_bad_match(api_client):
    v1 = client.CoreV1Api(api_client)
    with pytest.raises(ApiException) as info:
        await v1.list_namespaced_config_map(
            "default", resource_version="999999", resource_version_match="NotOlderThan"
        )
    assert info.value.status == 504
    assert info.value.headers["Retry-After"] == "1"
    assert json.loads(info.value.body)["details"] == {
        "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
        "retryAfterSeconds": 1,
    }
    assert "Too large resource version: 999999, current: " in json.loads(info.value.body)["message"]
    with pytest.raises(ApiException) as info:
        await v1.list_namespaced_config_map("default", resource_version_match="Exact")
    assert info.value.status == 422
    assert json.loads(info.value.body) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
        "resourceVersionMatch is forbidden unless resourceVersion is provided",
        "reason": "Invalid",
        "details": {
            "group": "meta.k8s.io",
            "kind": "ListOptions",
            "causes": [
                {
                    "reason": "FieldValueForbidden",
                    "message": "Forbidden: resourceVersionMatch is forbidden unless "
                    "resourceVersion is provided",
                    "field": "resourceVersionMatch",
                }
            ],
        },
        "code": 422,
    }


async def test_pagination_matches_the_recorded_shape(api_client):
    v1 = client.CoreV1Api(api_client)
    for i in range(5):
        await v1.create_namespaced_secret(
            "default", {"metadata": {"name": f"page-{i}"}, "data": {"i": "MA=="}}
        )
    pages, token, remaining = [], None, []
    while True:
        page = await v1.list_namespaced_secret("default", limit=2, _continue=token)
        pages.append([s.metadata.name for s in page.items])
        remaining.append(page.metadata.remaining_item_count)
        token = page.metadata._continue
        if not token:
            break
    assert pages == [["page-0", "page-1"], ["page-2", "page-3"], ["page-4"]]
    assert remaining == [3, 1, None]  # like no_selector_page_1/2/last_page


async def test_pagination_with_selector_has_no_remaining_count(simulator, api_client):
    v1 = client.CoreV1Api(api_client)
    await make_configmaps(v1, 3, page="yes")
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{simulator.url}/api/v1/namespaces/default/configmaps?labelSelector=page%3Dyes&limit=2"
        ) as resp:
            body = await resp.json()
    expected = sample("list-pagination.json", "with_label_selector_page_1")["response"]["body"]
    assert set(body) == set(expected)
    assert set(body["metadata"]) == set(expected["metadata"]) == {"resourceVersion", "continue"}
    assert set(body["items"][0]) == set(expected["items"][0])  # items carry no kind/apiVersion
    assert [i["metadata"]["name"] for i in body["items"]] == ["page-0", "page-1"]


@pytest.mark.simulator_options(root_ca_configmaps=False)  # counts configmaps
async def test_pages_are_consistent_while_objects_change(api_client):
    v1 = client.CoreV1Api(api_client)
    await make_configmaps(v1, 4)
    first = await v1.list_namespaced_config_map("default", limit=2)
    await v1.delete_namespaced_config_map("page-3", "default")
    second = await v1.list_namespaced_config_map(
        "default", limit=2, _continue=first.metadata._continue
    )
    assert [c.metadata.name for c in second.items] == ["page-2", "page-3"]
    assert second.metadata.resource_version == first.metadata.resource_version


async def test_continue_token_too_old_is_410():
    async with run_simulator(history_size=1) as sim, sim.api_client() as api:
        v1 = client.CoreV1Api(api)
        await make_configmaps(v1, 3)
        first = await v1.list_namespaced_config_map("default", limit=1)
        await make_configmaps(v1, 2, prefix="more")
        with pytest.raises(ApiException) as info:
            await v1.list_namespaced_config_map(
                "default", limit=1, _continue=first.metadata._continue
            )
        assert info.value.status == 410
        body = json.loads(info.value.body)
        assert body["reason"] == "Expired"
        assert body["metadata"]["continue"]


async def test_restart_compacts_history_and_drops_watches(simulator, api_client):
    v1 = client.CoreV1Api(api_client)
    await make_configmaps(v1, 1)
    rv = (await v1.list_namespaced_config_map("default")).metadata.resource_version
    watch_ = simulator.store.watch(
        simulator.store.resource("configmaps"), "default", resource_version=rv
    )
    simulator.faults.restart()
    assert watch_.closed
    assert [e async for e in watch_] == []
    assert (await v1.read_namespaced_config_map("page-0", "default")).data == {"i": "0"}
    with pytest.raises(ApiException) as info:
        await v1.list_namespaced_config_map(
            "default", resource_version=str(int(rv) - 1), resource_version_match="Exact"
        )
    assert info.value.status == 410


async def test_history_window_by_age_even_without_writes_but_watch_cache_keeps_events():
    async with run_simulator(history_age=60) as sim, sim.api_client() as api:
        # start the fake clock at the real one: the namespaces seeded at start-up were
        # stamped with time.monotonic(), and a fake "now" behind them would never age them
        now = [time.monotonic()]
        sim.store.clock = lambda: now[0]
        v1 = client.CoreV1Api(api)
        await make_configmaps(v1, 1)
        rv = (await v1.list_namespaced_config_map("default")).metadata.resource_version
        await make_configmaps(v1, 1, prefix="newer")
        # within the window: the change after rv replays
        w = sim.store.watch(sim.store.resource("configmaps"), "default", resource_version=rv)
        assert (await w.next_event()).object["metadata"]["name"] == "newer-0"
        w.close()
        now[0] += 61  # nothing written since, but the change aged out
        with pytest.raises(ApiException) as info:
            await v1.list_namespaced_config_map("default", resource_version=rv,
                                                resource_version_match="Exact")
        assert info.value.status == 410
        # a watch is served by the resource's watch cache, whose buffer was never full:
        # it still resumes there, as on a real server
        w = sim.store.watch(sim.store.resource("configmaps"), "default", resource_version=rv)
        assert (await w.next_event()).object["metadata"]["name"] == "newer-0"
        w.close()
