"""The single retry policy of ``KubeApi``: exact HTTP faults from a scripted local server.

(aioresponses 0.7.9 cannot build responses for aiohttp 3.14, so a tiny aiohttp server on
127.0.0.1 plays the API server: real HTTP, exact faults, every request recorded.)
"""

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from kubernetes_asyncio import client as k8s_client

from async_kubespawner.kube import errors
from async_kubespawner.kube.client import (
    CREATE_ID_ANNOTATION,
    PODS,
    ApiError,
    ApiSettings,
    ClientOptions,
    KubeApi,
    close_shared_apis,
    load_configuration,
    shared_api,
)
from tests.lifecycle.fake_clock import FakeClock
from tests.local_http import serve_locally

PODS_PATH = "/api/v1/namespaces/ns/pods"
POD_PATH = f"{PODS_PATH}/jupyter-alice"


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # never answer: the client's timeout fires
    drop: bool = False  # close the connection without answering
    respond: Any = None  # callable(recorded_requests) -> Reply


class ScriptedApiServer:
    """Answers each (method, path) from a queue of replies; the last one repeats."""

    def __init__(self) -> None:
        self.script: dict[tuple[str, str], list[Reply]] = {}
        self.requests: list[tuple[str, str, Any]] = []
        self._release = asyncio.Event()

    def on(self, method: str, path: str, *replies: Reply) -> None:
        self.script.setdefault((method, path), []).extend(replies)

    def bodies(self, method: str, path: str) -> list[Any]:
        return [b for m, p, b in self.requests if m == method and p == path]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw) if raw else None
        self.requests.append((request.method, request.path, body))
        queue = self.script.get((request.method, request.path))
        if not queue:
            return web.json_response(status(404, "NotFound", "not scripted"), status=404)
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if reply.respond is not None:
            reply = reply.respond(self)
        if reply.hang:
            await self._release.wait()
        if reply.drop:
            assert request.transport is not None  # the request is being served on it
            request.transport.close()
            return web.Response(status=500)
        return web.json_response(reply.body, status=reply.status, headers=reply.headers)


@pytest.fixture
async def server():
    scripted = ScriptedApiServer()
    runner, scripted.url = await serve_locally(scripted.handle)
    yield scripted
    scripted._release.set()
    await runner.cleanup()


@pytest.fixture
async def api(server):
    configuration = k8s_client.Configuration(host=server.url)
    clock = FakeClock()
    kube = KubeApi(
        k8s_client.ApiClient(configuration),
        request_timeout=0.5,
        retry_timeout=30,
        options=ClientOptions(clock=clock, sleep=clock.sleep),
    )
    kube.clock = clock
    yield kube
    await kube.close()


def status(code: int, reason: str, message: str) -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }


def error(code: int, reason: str, message: str, **kw) -> Reply:
    return Reply(status=code, body=status(code, reason, message), **kw)


POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "jupyter-alice"},
    "spec": {
        "containers": [
            {
                "name": "notebook",
                "image": "x",
                "env": [{"name": "JUPYTERHUB_API_TOKEN", "value": "s3cret"}],
            }
        ]
    },
}


def created(body: dict) -> dict:
    out = json.loads(json.dumps(body))
    out["metadata"].update(namespace="ns", uid="uid-1", resourceVersion="5")
    return out


def echo_created(server: ScriptedApiServer) -> Reply:
    return Reply(status=201, body=created(server.bodies("POST", PODS_PATH)[-1]))


async def test_5xx_then_success_is_retried_with_backoff(server, api):
    server.on(
        "POST",
        PODS_PATH,
        error(503, "ServiceUnavailable", "etcd is down"),
        error(500, "InternalError", "oops"),
        Reply(respond=echo_created),
    )
    pod = await api.create(PODS, "ns", POD)
    assert pod["metadata"]["uid"] == "uid-1"
    assert len(server.bodies("POST", PODS_PATH)) == 3
    assert len(api.clock.sleeps) == 2
    assert all(0 <= s <= 5 for s in api.clock.sleeps)


async def test_429_honours_retry_after(server, api):
    server.on(
        "GET",
        POD_PATH,
        error(429, "TooManyRequests", "slow down", headers={"Retry-After": "2"}),
        Reply(body=created(POD)),
    )
    pod = await api.get(PODS, "ns", "jupyter-alice")
    assert pod["metadata"]["name"] == "jupyter-alice"
    assert api.clock.sleeps == [2.0]


async def test_dropped_connections_and_timeouts_are_retried(server, api):
    server.on("GET", POD_PATH, Reply(drop=True), Reply(hang=True), Reply(body=created(POD)))
    pod = await api.get(PODS, "ns", "jupyter-alice")
    assert pod["metadata"]["uid"] == "uid-1"
    assert len(server.bodies("GET", POD_PATH)) == 3
    # aiohttp itself may retry a GET once on a dropped keep-alive connection; the timeout
    # is ours to retry.
    assert len(api.clock.sleeps) >= 1


async def test_budget_is_respected_then_the_last_error_is_raised(server, api):
    server.on("GET", POD_PATH, error(500, "InternalError", "still broken"))
    with pytest.raises(ApiError) as info:
        await api.get(PODS, "ns", "jupyter-alice")
    assert info.value.status == 500
    assert "still broken" in str(info.value)
    assert sum(api.clock.sleeps) <= 30
    assert len(api.clock.sleeps) >= 5  # it kept trying within the budget


async def test_retry_after_beyond_the_budget_fails_at_once(server, api):
    server.on(
        "GET",
        POD_PATH,
        error(429, "TooManyRequests", "come back later", headers={"Retry-After": "120"}),
    )
    with pytest.raises(ApiError) as info:
        await api.get(PODS, "ns", "jupyter-alice")
    assert info.value.status == 429
    assert api.clock.sleeps == []


CLIENT_ERRORS = [
    (400, "BadRequest", errors.BadRequest),
    (401, "Unauthorized", errors.Unauthorized),
    (403, "Forbidden", errors.Forbidden),
    (404, "NotFound", errors.NotFound),
    (409, "AlreadyExists", errors.Conflict),
    (410, "Gone", errors.Gone),
    (413, "RequestEntityTooLarge", errors.RequestTooLarge),
    (422, "Invalid", errors.Invalid),
]


@pytest.mark.parametrize("code,reason,cls", CLIENT_ERRORS)
async def test_client_errors_are_not_retried_and_do_not_leak_the_body(
    server, api, code, reason, cls
):
    """A 4xx (but 429) is the server's answer about this very request: one attempt, a
    typed error naming the object, never the body (the pod's env holds a token)."""
    server.on("POST", PODS_PATH, error(code, reason, f"pods is {reason.lower()}"))
    with pytest.raises(ApiError) as info:
        await api.create(PODS, "ns", POD)
    assert type(info.value) is cls
    assert info.value.status == code
    assert info.value.reason == reason
    assert (info.value.kind, info.value.namespace, info.value.name) == (
        "pods",
        "ns",
        "jupyter-alice",
    )
    assert not info.value.retriable
    assert api.clock.sleeps == []
    assert len(server.bodies("POST", PODS_PATH)) == 1
    assert "s3cret" not in str(info.value)
    assert f"create pods ns/jupyter-alice: HTTP {code} {reason}" in str(info.value)


@pytest.mark.parametrize("code,reason,cls", CLIENT_ERRORS)
async def test_client_errors_on_reads_and_deletes_are_not_retried(server, api, code, reason, cls):
    server.on("GET", POD_PATH, error(code, reason, "no"))
    server.on("DELETE", POD_PATH, error(code, reason, "no"))
    if cls is errors.NotFound:
        assert await api.get_or_none(PODS, "ns", "jupyter-alice") is None
        assert await api.delete(PODS, "ns", "jupyter-alice") is None
    else:
        with pytest.raises(cls):
            await api.get(PODS, "ns", "jupyter-alice")
        with pytest.raises(cls):
            await api.delete(PODS, "ns", "jupyter-alice")
    assert len(server.bodies("GET", POD_PATH)) == 1
    assert len(server.bodies("DELETE", POD_PATH)) == 1
    assert api.clock.sleeps == []


@pytest.mark.parametrize(
    "code,reason,cls",
    [(400, "BadRequest", errors.BadRequest), (403, "Forbidden", errors.Forbidden),
     (413, "RequestEntityTooLarge", errors.RequestTooLarge), (422, "Invalid", errors.Invalid)],
)
async def test_a_refused_create_logs_one_line_with_the_object_and_reason(
    server, api, caplog, code, reason, cls
):
    body = status(code, reason, 'Pod "jupyter-alice" is invalid: spec.containers[0].image: Required')
    body["details"] = {
        "name": "jupyter-alice",
        "kind": "pods",
        "causes": [{"field": "spec.containers[0].image", "reason": "FieldValueRequired"}],
    }
    server.on("POST", PODS_PATH, Reply(status=code, body=body))
    with caplog.at_level("WARNING", logger="async_kubespawner.kube"), pytest.raises(cls):
        await api.create(PODS, "ns", POD)
    [line] = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert "kind=Pod object=ns/jupyter-alice" in line
    assert f"status={code} reason={reason}" in line
    assert "fields=spec.containers[0].image" in line
    assert "s3cret" not in line and "JUPYTERHUB_API_TOKEN" not in line


async def test_a_create_into_a_missing_namespace_is_namespace_not_found(server, api):
    body = status(404, "NotFound", 'namespaces "ns" not found')
    body["details"] = {"name": "ns", "kind": "namespaces"}
    server.on("POST", PODS_PATH, Reply(status=404, body=body))
    api.known_namespaces.add("ns")
    with pytest.raises(errors.NamespaceNotFound) as info:
        await api.create(PODS, "ns", POD)
    assert info.value.namespace == "ns"
    assert info.value.details.details_kind == "namespaces"
    assert "ns" not in api.known_namespaces  # forgotten: the next start creates it
    # A missing pod is a plain NotFound, not a missing namespace.
    server.on("GET", POD_PATH, error(404, "NotFound", 'pods "jupyter-alice" not found'))
    with pytest.raises(errors.NotFound) as missing:
        await api.get(PODS, "ns", "jupyter-alice")
    assert type(missing.value) is errors.NotFound


@pytest.mark.parametrize("code", [429, 500, 502, 503, 504])
async def test_overload_and_server_errors_are_retried(server, api, code):
    server.on("GET", POD_PATH, error(code, "Busy", "try later"), Reply(body=created(POD)))
    assert (await api.get(PODS, "ns", "jupyter-alice"))["metadata"]["uid"] == "uid-1"
    assert len(server.bodies("GET", POD_PATH)) == 2


async def test_timed_out_create_that_succeeded_is_reconciled_not_duplicated(server, api):
    """The first POST reaches the server but the answer is lost; the retry meets 409, reads
    the pod back, finds its own create id and returns the pod: no delete, no second pod."""
    server.on(
        "POST",
        PODS_PATH,
        Reply(hang=True),
        error(409, "AlreadyExists", 'pods "jupyter-alice" already exists'),
    )
    server.on(
        "GET",
        POD_PATH,
        Reply(respond=lambda srv: Reply(body=created(srv.bodies("POST", PODS_PATH)[0]))),
    )
    pod = await api.create(PODS, "ns", POD)
    bodies = server.bodies("POST", PODS_PATH)
    assert len(bodies) == 2
    assert pod["metadata"]["uid"] == "uid-1"
    create_ids = {b["metadata"]["annotations"][CREATE_ID_ANNOTATION] for b in bodies}
    assert len(create_ids) == 1  # both attempts carry the same id
    assert pod["metadata"]["annotations"][CREATE_ID_ANNOTATION] in create_ids
    assert not server.bodies("DELETE", POD_PATH)


async def test_409_for_someone_elses_object_is_raised(server, api):
    server.on("POST", PODS_PATH, Reply(hang=True), error(409, "AlreadyExists", "exists"))
    other = created(POD)
    other["metadata"]["annotations"] = {CREATE_ID_ANNOTATION: "not-ours"}
    server.on("GET", POD_PATH, Reply(body=other))
    with pytest.raises(ApiError) as info:
        await api.create(PODS, "ns", POD)
    assert info.value.status == 409


async def test_plain_409_does_not_read_back(server, api):
    server.on("POST", PODS_PATH, error(409, "AlreadyExists", "exists"))
    with pytest.raises(ApiError) as info:
        await api.create(PODS, "ns", POD)
    assert info.value.status == 409
    assert [m for m, _, _ in server.requests] == ["POST"]


async def test_delete_404_is_success_and_sends_options(server, api):
    server.on("DELETE", POD_PATH, error(404, "NotFound", "gone"), Reply(body=created(POD)))
    assert await api.delete(PODS, "ns", "jupyter-alice") is None
    assert (
        await api.delete(PODS, "ns", "jupyter-alice", grace_period_seconds=0, uid="uid-1")
        is not None
    )
    options = server.bodies("DELETE", POD_PATH)[1]
    assert options["gracePeriodSeconds"] == 0
    assert options["preconditions"] == {"uid": "uid-1"}


async def test_delete_without_reading_the_response(server, api):
    # a caller that needs only "deleted" or "already gone" gets {} or None, and a retry
    # after a 503 sends the same options again (the body is encoded once)
    server.on(
        "DELETE",
        POD_PATH,
        error(503, "ServiceUnavailable", "busy"),
        Reply(body=created(POD)),
        error(404, "NotFound", "gone"),
    )
    assert await api.delete(PODS, "ns", "jupyter-alice", uid="uid-1", read_response=False) == {}
    assert await api.delete(PODS, "ns", "jupyter-alice", read_response=False) is None
    first, second = server.bodies("DELETE", POD_PATH)[:2]
    assert first == second
    assert first["preconditions"] == {"uid": "uid-1"}


async def test_a_retried_create_sends_the_same_bytes_with_its_create_id(server, api):
    server.on("POST", PODS_PATH, error(500, "InternalError", "oops"),
              Reply(respond=lambda srv: Reply(body=created(srv.bodies("POST", PODS_PATH)[-1]))))
    await api.create(PODS, "ns", POD, create_id="create-1")
    first, second = server.bodies("POST", PODS_PATH)
    assert first == second
    assert first["metadata"]["annotations"][CREATE_ID_ANNOTATION] == "create-1"
    assert first["spec"] == POD["spec"]


async def test_shared_api_is_one_per_loop_and_closes_cleanly(server):
    settings = ApiSettings(host=server.url)
    first = await shared_api(settings)
    second = await shared_api(settings)
    assert first is second
    assert first.api_client.configuration.host == server.url
    session = first.api_client.rest_client.pool_manager
    await close_shared_apis()
    assert session.closed
    third = await shared_api(settings)
    assert third is not first
    await close_shared_apis()


async def test_missing_credentials_give_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(RuntimeError, match=re.escape("c.KubeSpawner.k8s_api_host")):
        await load_configuration(ApiSettings(kubeconfig=str(tmp_path / "missing")))
    configuration = await load_configuration(
        ApiSettings(
            host="https://k8s.example:6443/", kubeconfig=str(tmp_path / "missing"), verify_ssl=False
        )
    )
    assert configuration.host == "https://k8s.example:6443"
    assert configuration.verify_ssl is False


async def test_to_json_matches_the_clients_serialisation():
    from kubernetes_asyncio.client import (
        V1Container,
        V1ObjectMeta,
        V1OwnerReference,
        V1Pod,
        V1PodSpec,
    )

    from async_kubespawner.kube.client import to_json

    pod = V1Pod(
        api_version="v1",
        kind="Pod",
        metadata=V1ObjectMeta(
            name="jupyter-alice",
            labels={"a": "b"},
            owner_references=[V1OwnerReference(api_version="v1", kind="Pod", name="x", uid="u")],
        ),
        spec=V1PodSpec(
            containers=[V1Container(name="notebook", image="i", args=["--a"], env=[])],
            automount_service_account_token=False,
        ),
    )
    async with k8s_client.ApiClient() as client:
        expected = client.sanitize_for_serialization(pod)
    assert to_json(pod) == expected
    assert to_json({"nested": [pod]}) == {"nested": [expected]}
    with pytest.raises(TypeError, match="cannot send a object"):
        to_json(object())


async def test_an_encoded_create_sends_what_the_manifest_would(server, api):
    from async_kubespawner.kube.client import encode_create

    server.on("POST", PODS_PATH,
              Reply(respond=lambda srv: Reply(body=created(srv.bodies("POST", PODS_PATH)[-1]))),
              Reply(respond=lambda srv: Reply(body=created(srv.bodies("POST", PODS_PATH)[-1]))))
    encoded = encode_create(POD, "create-2")
    assert (encoded.name, encoded.label, encoded.create_id) == ("jupyter-alice",) * 2 + ("create-2",)
    await api.create(PODS, "ns", encoded)
    await api.create(PODS, "ns", POD, create_id="create-2")
    from_encoded, from_manifest = server.bodies("POST", PODS_PATH)
    assert from_encoded == from_manifest
    assert from_encoded["metadata"]["annotations"][CREATE_ID_ANNOTATION] == "create-2"
    assert "annotations" not in POD["metadata"]  # the caller's manifest is not touched
