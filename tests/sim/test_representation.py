"""How responses are represented: YAML, 406, metadata-only views, plain 404s, decoding
errors, and core Events seen through events.k8s.io/v1."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
import yaml
from kubesim.testing import Simulator

from .test_api_goldens import load

PARTIAL = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
PARTIAL_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
CM = "/api/v1/namespaces/default/configmaps"
NOT_ACCEPTABLE = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "only the following media types are accepted: application/json, "
    "application/yaml, application/vnd.kubernetes.protobuf",
    "reason": "NotAcceptable",
    "code": 406,
}


@pytest.fixture
async def call(simulator: Simulator) -> Any:
    async with aiohttp.ClientSession() as http:

        async def go(
            method: str, path: str, body: Any = None, accept: str | None = None, ctype: str = "application/json"
        ) -> tuple[int, str, str]:
            headers = {"Accept": accept} if accept is not None else {}
            data = None
            if body is not None:
                headers["Content-Type"] = ctype
                data = body if isinstance(body, str) else json.dumps(body)
            async with http.request(method, simulator.url + path, data=data, headers=headers) as resp:
                return resp.status, resp.headers.get("Content-Type", ""), await resp.text()

        yield go


async def made(call: Any, name: str = "c") -> dict[str, Any]:
    status, _, text = await call("POST", CM, {"metadata": {"name": name, "labels": {"app": "x"}}, "data": {"k": "v"}})
    assert status == 201
    return json.loads(text)


async def test_yaml_is_answered_as_yaml(call: Any) -> None:
    stored = await made(call)
    status, ctype, text = await call("GET", f"{CM}/c", accept="application/yaml")
    assert (status, ctype) == (200, "application/yaml")
    assert yaml.safe_load(text) == stored
    # keys sorted, as the server's JSON-to-YAML conversion writes them
    top = [line.split(":")[0] for line in text.splitlines() if line and not line.startswith(" ")]
    assert top == sorted(top) == ["apiVersion", "data", "kind", "metadata"]
    status, ctype, text = await call("GET", CM, accept="application/yaml")
    assert ctype == "application/yaml" and yaml.safe_load(text)["kind"] == "ConfigMapList"
    # errors too
    status, ctype, text = await call("GET", f"{CM}/nope", accept="application/yaml")
    assert (status, ctype) == (404, "application/yaml")
    assert yaml.safe_load(text)["message"] == 'configmaps "nope" not found'
    # a create answered in YAML
    status, ctype, text = await call("POST", CM, {"metadata": {"name": "y"}}, accept="application/yaml")
    assert (status, ctype) == (201, "application/yaml") and yaml.safe_load(text)["metadata"]["name"] == "y"


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "application/json;as=Foo;g=meta.k8s.io;v=v1", "application/json;q=0"])
async def test_unsupported_accept_is_406_before_anything_is_done(call: Any, simulator: Simulator, accept: str) -> None:
    before = simulator.store.resource_version
    status, ctype, text = await call("POST", CM, {"metadata": {"name": "never"}}, accept=accept)
    assert (status, ctype, json.loads(text)) == (406, "application/json", NOT_ACCEPTABLE)
    assert simulator.store.resource_version == before  # nothing was written
    status, *_ = await call("GET", f"{CM}/never")
    assert status == 404


@pytest.mark.parametrize(
    "accept",
    ["application/json", "*/*", "application/*", "application/vnd.kubernetes.protobuf, application/json", "text/html, application/json;q=0.5", ""],
)
async def test_acceptable_types(call: Any, accept: str) -> None:
    await made(call)
    status, ctype, _ = await call("GET", f"{CM}/c", accept=accept)
    assert (status, ctype) == (200, "application/json")


async def test_partial_object_metadata(call: Any) -> None:
    stored = await made(call)
    status, _, text = await call("GET", f"{CM}/c", accept=PARTIAL)
    assert status == 200
    assert json.loads(text) == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": stored["metadata"],
    }
    # every namespace also holds kube-root-ca.crt: select ours
    mine = f"{CM}?fieldSelector=metadata.name%3Dc"
    status, _, text = await call("GET", mine, accept=f"{PARTIAL_LIST},application/json")
    listed = json.loads(text)
    assert listed["kind"] == "PartialObjectMetadataList" and listed["apiVersion"] == "meta.k8s.io/v1"
    assert listed["items"] == [{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": stored["metadata"]}]
    assert '"data"' not in text
    status, _, text = await call("GET", CM, accept=PARTIAL)
    assert status == 406
    assert json.loads(text)["message"] == (
        "you requested PartialObjectMetadata, but the requested object is a list (*core.ConfigMapList)"
    )
    status, _, text = await call("GET", f"{CM}/c", accept=PARTIAL_LIST)
    assert status == 406
    # a watch of metadata, as client-go's metadata informers run one
    status, _, text = await call("GET", f"{mine}&watch=1&timeoutSeconds=1", accept=PARTIAL)
    (event,) = [json.loads(line) for line in text.splitlines()]
    assert event == {"type": "ADDED", "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": stored["metadata"]}}


async def test_unknown_versions_are_plain_404(call: Any) -> None:
    recorded = load("status-errors.json")["404_unknown_api_group_plain_text"]["response"]
    for path in ("/apis/nope.example.com/v1/foos", "/api/v2/pods", "/apis/coordination.k8s.io/v9/leases",
                 "/apis/rbac.authorization.k8s.io/v2/roles"):
        status, ctype, text = await call("GET", path)
        assert (status, ctype, text) == (recorded["status"], recorded["content_type"], recorded["body"]), path
    status, ctype, _ = await call("GET", "/apis/coordination.k8s.io/v1/foos")
    assert (status, ctype) == (404, "application/json")  # a known version: a Status


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "the object provided is unrecognized (must be of type ConfigMap): couldn't get version/kind; json parse error: unexpected end of JSON input ()"),
        ("[]", 'the object provided is unrecognized (must be of type ConfigMap): couldn\'t get version/kind; json parse error: json: cannot unmarshal array into Go value of type struct { APIVersion string "json:\\"apiVersion,omitempty\\""; Kind string "json:\\"kind,omitempty\\"" }'),
        ('"text"', 'the object provided is unrecognized (must be of type ConfigMap): couldn\'t get version/kind; json parse error: json: cannot unmarshal string into Go value of type struct { APIVersion string "json:\\"apiVersion,omitempty\\""; Kind string "json:\\"kind,omitempty\\"" }'),
        ('{"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "a"}}', 'ConfigMap in version "v1" cannot be handled as a ConfigMap: no kind "ConfigMap" is registered for version "apps/v1" in scheme "k8s.io/kubernetes/pkg/api/legacyscheme/scheme.go:30"'),
        ('{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}}', 'Secret in version "v1" cannot be handled as a ConfigMap: converting (v1.Secret) to (core.ConfigMap): unknown conversion'),
    ],
)
async def test_decoding_errors(call: Any, body: str, message: str) -> None:
    status, _, text = await call("POST", CM, body)
    assert status == 400
    assert json.loads(text)["message"] == message


async def test_kind_mismatch_golden(call: Any) -> None:
    sample = load("status-errors.json")["400_kind_mismatch"]
    status, _, text = await call("POST", "/api/v1/namespaces/default/pods", sample["request"]["body"])
    assert (status, json.loads(text)) == (sample["response"]["status"], sample["response"]["body"])


CORE_EVENT = {
    "metadata": {"name": "pulled"},
    "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
    "reason": "Pulled",
    "message": "Container image already present on machine",
    "type": "Normal",
    "source": {"component": "kubelet", "host": "node-1"},
    "count": 1,
    "firstTimestamp": "2026-01-01T00:00:00Z",
    "lastTimestamp": "2026-01-01T00:00:00Z",
}
NEW_EVENT = {
    "apiVersion": "events.k8s.io/v1",
    "kind": "Event",
    "metadata": {"name": "scheduled"},
    "eventTime": "2026-01-01T00:00:00.000000Z",
    "reportingController": "default-scheduler",
    "reportingInstance": "default-scheduler-node-1",
    "action": "Binding",
    "reason": "Scheduled",
    "regarding": {"kind": "Pod", "name": "p", "namespace": "default"},
    "note": "Successfully assigned default/p to node-1",
    "type": "Normal",
}
EVENTS_V1 = "/apis/events.k8s.io/v1/namespaces/default/events"
EVENTS_CORE = "/api/v1/namespaces/default/events"


async def test_core_events_are_readable_as_events_k8s_io(call: Any) -> None:
    status, *_ = await call("POST", EVENTS_CORE, CORE_EVENT)
    assert status == 201
    status, _, text = await call("GET", f"{EVENTS_V1}/pulled")
    new = json.loads(text)
    assert status == 200
    assert (new["kind"], new["apiVersion"]) == ("Event", "events.k8s.io/v1")
    assert new["regarding"] == CORE_EVENT["involvedObject"]
    assert new["note"] == CORE_EVENT["message"]
    assert new["deprecatedSource"] == CORE_EVENT["source"]
    assert new["deprecatedCount"] == 1
    assert new["deprecatedFirstTimestamp"] == "2026-01-01T00:00:00Z"
    assert "message" not in new and "involvedObject" not in new
    status, _, text = await call("GET", f"{EVENTS_V1}?fieldSelector=regarding.name%3Dp")
    listed = json.loads(text)
    assert listed["kind"] == "EventList" and listed["apiVersion"] == "events.k8s.io/v1"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["pulled"]
    status, _, text = await call("GET", f"{EVENTS_V1}?fieldSelector=regarding.name%3Dother")
    assert json.loads(text)["items"] == []


async def test_events_k8s_io_writes_land_in_the_core_collection(call: Any) -> None:
    status, _, text = await call("POST", EVENTS_V1, NEW_EVENT)
    assert status == 201, text
    status, _, text = await call("GET", f"{EVENTS_CORE}/scheduled")
    core = json.loads(text)
    assert (core["kind"], core["apiVersion"]) == ("Event", "v1")
    assert core["involvedObject"] == NEW_EVENT["regarding"]
    assert core["message"] == NEW_EVENT["note"]
    assert core["reportingComponent"] == "default-scheduler"
    # one collection: a core list sees it, a patch through either view changes both
    status, _, text = await call("PATCH", f"{EVENTS_V1}/scheduled", {"note": "changed"}, ctype="application/merge-patch+json")
    assert status == 200 and json.loads(text)["note"] == "changed"
    status, _, text = await call("GET", f"{EVENTS_CORE}/scheduled")
    assert json.loads(text)["message"] == "changed"
    status, _, text = await call(
        "PATCH", f"{EVENTS_V1}/scheduled", [{"op": "replace", "path": "/note", "value": "again"}], ctype="application/json-patch+json"
    )
    assert status == 200 and json.loads(text)["note"] == "again"
    status, *_ = await call("DELETE", f"{EVENTS_V1}/scheduled")
    assert status == 200
    status, *_ = await call("GET", f"{EVENTS_CORE}/scheduled")
    assert status == 404


async def test_events_k8s_io_keeps_its_strict_validation(call: Any) -> None:
    status, _, text = await call("POST", EVENTS_V1, {**NEW_EVENT, "eventTime": None})
    assert status == 422
    body = json.loads(text)
    assert body["details"]["group"] == "events.k8s.io"
    assert {"reason": "FieldValueRequired", "message": "Required value", "field": "eventTime"} in body["details"]["causes"]
    # the same event through core/v1 is accepted (old-style writers are not held to it)
    core = {k: v for k, v in CORE_EVENT.items()}
    assert (await call("POST", EVENTS_CORE, core))[0] == 201


async def test_events_k8s_io_watch_sees_core_writes(call: Any, simulator: Simulator) -> None:
    assert (await call("POST", EVENTS_CORE, CORE_EVENT))[0] == 201
    status, _, text = await call("GET", f"{EVENTS_V1}?watch=1&timeoutSeconds=1&fieldSelector=regarding.name%3Dp")
    assert status == 200
    (event,) = [json.loads(line) for line in text.splitlines()]
    assert event["type"] == "ADDED"
    assert event["object"]["apiVersion"] == "events.k8s.io/v1"
    assert event["object"]["note"] == CORE_EVENT["message"]
