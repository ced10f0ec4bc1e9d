"""Discovery documents compared with the recorded ones, and the dynamic client on top."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.dynamic import DynamicClient

SAMPLES = Path(__file__).parent / "samples"
with open(f"{SAMPLES}/discovery.json") as f:
    DISCOVERY = json.load(f)
with open(f"{SAMPLES}/status-errors.json") as f:
    UNKNOWN_RESOURCE = json.load(f)["404_unknown_resource"]["response"]["body"]


async def fetch(url: str, accept: str | None = None) -> tuple[int, str, object]:
    headers = {"Accept": accept} if accept else {}
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        text = await resp.text()
        body = json.loads(text) if resp.content_type.startswith("application/json") else text
        return resp.status, resp.headers["Content-Type"], body


def by_name(resources: list[dict], key: str) -> dict[str, dict]:
    return {r[key]: r for r in resources}


async def test_version(simulator):
    status, ctype, body = await fetch(f"{simulator.url}/version")
    expected = DISCOVERY["version"]["response"]["body"]
    assert status == 200 and ctype == "application/json"
    assert set(body) == set(expected)
    assert (body["major"], body["minor"], body["gitVersion"]) == ("1", "36", "v1.36.2")


async def test_api_versions(simulator):
    _, _, body = await fetch(f"{simulator.url}/api")
    expected = DISCOVERY["api"]["response"]["body"]
    assert body["kind"] == expected["kind"] and body["versions"] == ["v1"]
    assert body["serverAddressByClientCIDRs"][0]["clientCIDR"] == "0.0.0.0/0"


async def test_core_resource_list_matches_recording(simulator):
    _, _, body = await fetch(f"{simulator.url}/api/v1")
    expected = DISCOVERY["api_v1"]["response"]["body"]
    assert body["kind"] == "APIResourceList" and body["groupVersion"] == "v1"
    got = by_name(body["resources"], "name")
    for name, entry in by_name(expected["resources"], "name").items():
        assert got[name] == entry, name


async def test_group_list_and_group(simulator):
    _, _, body = await fetch(f"{simulator.url}/apis")
    expected = DISCOVERY["apis"]["response"]["body"]
    assert [g["name"] for g in body["groups"]][: len(expected["groups"])] == expected["groups"]
    assert by_name(body["groups"], "name")["apps"] == expected["example_group_entry_apps"]
    _, _, group = await fetch(f"{simulator.url}/apis/apps")
    assert group == DISCOVERY["apis_apps_group"]["response"]["body"]


async def test_aggregated_discovery_as_kubectl_asks(simulator):
    accept = DISCOVERY["api_aggregated"]["request"]["accept"]
    status, ctype, body = await fetch(f"{simulator.url}/api", accept)
    expected = DISCOVERY["api_aggregated"]["response"]
    assert status == 200 and ctype == expected["content_type"]
    assert body["kind"] == "APIGroupDiscoveryList" and body["apiVersion"] == "apidiscovery.k8s.io/v2"
    version = body["items"][0]["versions"][0]
    assert version["version"] == "v1" and version["freshness"] == "Current"
    got = by_name(version["resources"], "resource")
    for name, entry in by_name(expected["body"]["items"][0]["versions"][0]["resources"], "resource").items():
        mine = dict(got[name])
        if name != "pods":  # the recording trimmed other kinds' subresources
            mine.pop("subresources", None)
            entry = {k: v for k, v in entry.items() if k != "subresources"}
        assert mine == entry, name
    status, ctype, body = await fetch(f"{simulator.url}/apis", accept)
    assert ctype == expected["content_type"]
    names = [item["metadata"]["name"] for item in body["items"]]
    assert names[: len(DISCOVERY["apis_aggregated"]["response"]["body"]["items"])] == (
        DISCOVERY["apis_aggregated"]["response"]["body"]["items"]
    )


async def test_unknown_group_is_plain_text_404(simulator):
    status, ctype, body = await fetch(f"{simulator.url}/apis/nope.example.com/v1/foos")
    assert status == 404
    assert ctype.startswith("text/plain")
    assert body == "404 page not found\n"


async def test_unknown_resource_is_status_404(simulator):
    status, _, body = await fetch(f"{simulator.url}/api/v1/namespaces/default/foos")
    assert status == 404 and body == UNKNOWN_RESOURCE


async def test_dynamic_client_discovers_and_uses_resources(api_client):
    dyn = await DynamicClient(api_client)
    pods = await dyn.resources.get(api_version="v1", kind="Pod")
    await pods.create(body={"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "dyn"},
                            "spec": {"containers": [{"name": "c", "image": "i"}]}},
                      namespace="default")
    listed = await pods.get(namespace="default")
    assert [p.metadata.name for p in listed.items] == ["dyn"]
    leases = await dyn.resources.get(api_version="coordination.k8s.io/v1", kind="Lease")
    await leases.create(body={"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                              "metadata": {"name": "hub"}, "spec": {"holderIdentity": "a"}},
                        namespace="default")
    lease = await leases.get(name="hub", namespace="default")
    assert lease.spec.holderIdentity == "a"


async def test_events_k8s_io_and_core_events(api_client):
    ev = client.EventsV1Api(api_client)
    created = await ev.create_namespaced_event("default", {
        "metadata": {"name": "e1"}, "eventTime": "2026-11-24T00:00:00.000000Z",
        "reportingController": "sim", "reportingInstance": "sim-1", "action": "Test",
        "reason": "Tested", "type": "Normal", "regarding": {"kind": "Pod", "name": "p"}})
    assert created.metadata.name == "e1"
    assert [e.metadata.name for e in (await ev.list_namespaced_event("default")).items] == ["e1"]
