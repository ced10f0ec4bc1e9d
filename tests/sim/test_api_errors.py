"""Error bodies compared with the recorded Status objects (placeholders normalised)."""

from __future__ import annotations

import json
import re

import aiohttp
import pytest

from .support import concrete, load

ERRORS = load("status-errors.json")

RUN = "t1"


async def replay(sim, key: str, *, prepare=()) -> tuple[int, str, object, object]:
    """Send the recorded request of ``key``; return (status, content type, body, expected body)."""
    entry = concrete(ERRORS[key], RUN)
    req, expected = entry["request"], entry["response"]
    async with aiohttp.ClientSession() as http:
        await http.post(f"{sim.url}/api/v1/namespaces", json={"metadata": {"name": f"probe-{RUN}"}})
        for path, body in prepare:
            async with http.post(f"{sim.url}{path}", json=body) as r:
                assert r.status == 201, await r.text()
        data = req.get("body_text")
        if data is None and "body" in req:
            data = json.dumps(req["body"])
        headers = {"Content-Type": req["content_type"]} if "content_type" in req else {}
        async with http.request(req["method"], f"{sim.url}{req['path']}", data=data, headers=headers) as r:
            text = await r.text()
            body = json.loads(text) if r.content_type == "application/json" else text
            return r.status, r.headers["Content-Type"], body, expected


@pytest.mark.parametrize(
    "key",
    [
        "404_not_found",
        "404_namespace_not_found_on_create",
        "404_unknown_resource",
        "400_malformed_json",
        "400_kind_mismatch",
        "400_strict_field_validation",
    ],
)
async def test_error_body_matches_recording(simulator, key):
    status, ctype, body, expected = await replay(simulator, key)
    assert status == expected["status"]
    assert ctype == expected["content_type"]
    assert body == expected["body"]


async def test_already_exists_matches_recording(simulator):
    pod = concrete(ERRORS["409_already_exists"]["request"]["body"], RUN)
    status, _, body, expected = await replay(
        simulator, "409_already_exists", prepare=[(f"/api/v1/namespaces/probe-{RUN}/pods", pod)]
    )
    assert (status, body) == (expected["status"], expected["body"])


async def test_stale_put_matches_recording(simulator):
    cm = {"metadata": {"name": "upd"}, "data": {"k": "v"}}
    entry = ERRORS["409_conflict_stale_resource_version"]
    async with aiohttp.ClientSession() as http:
        await http.post(f"{simulator.url}/api/v1/namespaces", json={"metadata": {"name": f"probe-{RUN}"}})
        async with http.post(f"{simulator.url}/api/v1/namespaces/probe-{RUN}/configmaps", json=cm) as r:
            created = await r.json()
        await http.patch(f"{simulator.url}/api/v1/namespaces/probe-{RUN}/configmaps/upd",
                         data=json.dumps({"data": {"k": "newer"}}),
                         headers={"Content-Type": "application/merge-patch+json"})
        stale = concrete(entry["request"]["body"], RUN)
        stale["metadata"].update(uid=created["metadata"]["uid"],
                                 resourceVersion=created["metadata"]["resourceVersion"],
                                 creationTimestamp=created["metadata"]["creationTimestamp"])
        async with http.put(f"{simulator.url}/api/v1/namespaces/probe-{RUN}/configmaps/upd",
                            json=stale) as r:
            assert r.status == 409
            assert await r.json() == entry["response"]["body"]


async def test_unauthenticated_request_is_401_with_a_token():
    from kubesim.testing import run_simulator

    async with run_simulator(token="s3cret") as sim, aiohttp.ClientSession() as http:
        async with http.get(f"{sim.url}/api/v1/namespaces") as r:
            assert r.status == 401
            assert (await r.json())["reason"] == "Unauthorized"
        async with http.get(f"{sim.url}/api/v1/namespaces",
                            headers={"Authorization": "Bearer wrong"}) as r:
            assert r.status == 401
        async with http.get(f"{sim.url}/api/v1/namespaces",
                            headers={"Authorization": "Bearer s3cret"}) as r:
            assert r.status == 200
        async with http.get(f"{sim.url}/_sim/counters") as r:
            assert r.status == 401  # the admin endpoints need the token too


async def test_tls_and_token_with_kubernetes_asyncio():
    from kubernetes_asyncio import client
    from kubesim.testing import run_simulator

    async with run_simulator(tls=True, token="t0ken") as sim:
        assert sim.url.startswith("https://127.0.0.1:")
        kubeconfig = sim.kubeconfig_path.read_text()
        assert "certificate-authority" in kubeconfig and "t0ken" in kubeconfig
        async with sim.api_client() as api:
            names = [n.metadata.name for n in (await client.CoreV1Api(api).list_namespace()).items]
        assert "default" in names
        assert sim.counters.count(verb="list", resource="namespaces", status=200) == 1


async def test_yaml_bodies_are_accepted(simulator):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{simulator.url}/api/v1/namespaces/default/configmaps",
                             data="metadata:\n  name: y\ndata:\n  k: v\n",
                             headers={"Content-Type": "application/yaml"}) as r:
            assert r.status == 201
            assert (await r.json())["data"] == {"k": "v"}
        async with http.post(f"{simulator.url}/api/v1/namespaces/default/configmaps",
                             data="x", headers={"Content-Type": "text/plain"}) as r:
            assert r.status == 415
            assert re.search("accepted media types include", (await r.json())["message"])


async def test_method_not_allowed(simulator):
    async with aiohttp.ClientSession() as http:
        async with http.put(f"{simulator.url}/api/v1/namespaces/default/pods", json={}) as r:
            assert r.status == 405
            assert (await r.json())["reason"] == "MethodNotAllowed"


async def test_written_kubeconfig_works_with_load_kube_config():
    from kubernetes_asyncio import client, config
    from kubesim.testing import run_simulator

    async with run_simulator(tls=True, token="from-file") as sim:
        configuration = client.Configuration()
        await config.load_kube_config(config_file=str(sim.kubeconfig_path),
                                      client_configuration=configuration)
        async with client.ApiClient(configuration) as api:
            ns = await client.CoreV1Api(api).read_namespace("default")
        assert ns.status.phase == "Active"
