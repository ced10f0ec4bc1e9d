"""CustomResourceDefinitions beyond the schema: status conditions, discovery, the scale
subresource, printer columns; and the coordination Leases an operator elects a leader with."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import aiohttp
import pytest

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"

CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com", "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wg"]},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "subresources": {"status": {}, "scale": {
                "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
                "labelSelectorPath": ".status.selector"}},
            "additionalPrinterColumns": [
                {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                {"name": "Phase", "type": "string", "jsonPath": ".status.phase",
                 "description": "where it is"},
                {"name": "Ready", "type": "string",
                 "jsonPath": '.status.conditions[?(@.type=="Ready")].status', "priority": 1},
                {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
            ],
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "required": ["size"], "properties": {
                    "replicas": {"type": "integer", "minimum": 0, "default": 1},
                    "size": {"type": "string", "enum": ["small", "large"]},
                    "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 8},
                    "weight": {"type": "number", "maximum": 10},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}},
                "status": {"type": "object", "properties": {
                    "replicas": {"type": "integer"}, "selector": {"type": "string"},
                    "phase": {"type": "string"},
                    "conditions": {"type": "array", "items": {"type": "object", "properties": {
                        "type": {"type": "string"}, "status": {"type": "string"}}}}}}}}},
        }],
    },
}


async def call(sim, method: str, path: str, body: Any = None, ctype: str = "application/json",
               accept: str = "application/json") -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.request(
        method, sim.url + path,
        data=body if body is None or isinstance(body, str) else json.dumps(body),
        headers={"Content-Type": ctype, "Accept": accept},
    ) as resp:
        return resp.status, await resp.json()


@pytest.fixture
async def widgets(simulator) -> dict[str, Any]:
    status, crd = await call(simulator, "POST", CRDS, CRD)
    assert status == 201
    return crd


async def test_crd_status_has_accepted_names_and_conditions(simulator, widgets):
    status = widgets["status"]
    assert status["acceptedNames"] == {"plural": "widgets", "singular": "widget", "kind": "Widget",
                                       "shortNames": ["wg"], "listKind": "WidgetList"}
    assert [(c["type"], c["status"], c["reason"], c["message"]) for c in status["conditions"]] == [
        ("NamesAccepted", "True", "NoConflicts", "no conflicts found"),
        ("Established", "True", "InitialNamesAccepted", "the initial names have been accepted"),
    ]
    assert status["storedVersions"] == ["v1"]
    changed = dict(widgets)
    changed["spec"] = dict(widgets["spec"], names=dict(widgets["spec"]["names"], categories=["all"]))
    _, updated = await call(simulator, "PUT", CRDS + "/widgets.example.com", changed)
    assert updated["status"]["acceptedNames"]["categories"] == ["all"]


async def test_discovery_of_a_custom_resource_group(simulator, widgets):
    status, listing = await call(simulator, "GET", "/apis/example.com/v1")
    assert status == 200
    digest = hashlib.sha256(b"example.com/v1/Widget").digest()[:8]
    assert listing["resources"] == [
        {"name": "widgets", "singularName": "widget", "namespaced": True, "kind": "Widget",
         "verbs": ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"],
         "shortNames": ["wg"], "storageVersionHash": base64.b64encode(digest).decode()},
        {"name": "widgets/status", "singularName": "", "namespaced": True, "kind": "Widget",
         "verbs": ["get", "patch", "update"]},
        {"name": "widgets/scale", "singularName": "", "namespaced": True, "group": "autoscaling",
         "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]},
    ]
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    _, aggregated = await call(simulator, "GET", "/apis", accept=accept)
    [group] = [g for g in aggregated["items"] if g["metadata"].get("name") == "example.com"]
    [resource] = group["versions"][0]["resources"]
    assert resource["responseKind"] == {"group": "example.com", "version": "v1", "kind": "Widget"}
    assert [(s["subresource"], s["responseKind"]) for s in resource["subresources"]] == [
        ("status", {"group": "example.com", "version": "v1", "kind": "Widget"}),
        ("scale", {"group": "autoscaling", "version": "v1", "kind": "Scale"}),
    ]


async def test_scale_subresource_reads_and_writes_the_replicas_path(simulator, widgets):
    await call(simulator, "POST", WIDGETS, {"apiVersion": "example.com/v1", "kind": "Widget",
                                            "metadata": {"name": "w"}, "spec": {"size": "small"}})
    await call(simulator, "PATCH", WIDGETS + "/w/status",
               {"status": {"replicas": 1, "selector": "app=w"}}, "application/merge-patch+json")
    status, scale = await call(simulator, "GET", WIDGETS + "/w/scale")
    assert status == 200
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 1}  # the schema default
    assert scale["status"] == {"replicas": 1, "selector": "app=w"}
    scale["spec"]["replicas"] = 3
    status, scaled = await call(simulator, "PUT", WIDGETS + "/w/scale", scale)
    assert status == 200 and scaled["spec"] == {"replicas": 3}
    status, scaled = await call(simulator, "PATCH", WIDGETS + "/w/scale", {"spec": {"replicas": 5}},
                                "application/merge-patch+json")
    assert status == 200 and scaled["spec"] == {"replicas": 5}
    _, widget = await call(simulator, "GET", WIDGETS + "/w")
    assert widget["spec"]["replicas"] == 5
    status, body = await call(simulator, "PATCH", WIDGETS + "/w/scale", {"spec": {"replicas": -1}},
                              "application/merge-patch+json")
    assert status == 422
    assert body["message"] == ('Scale.autoscaling "w" is invalid: spec.replicas: Invalid value: -1: '
                               "must be greater than or equal to 0")
    scale["spec"]["replicas"] = 2  # scale's resourceVersion is now stale
    status, body = await call(simulator, "PUT", WIDGETS + "/w/scale", scale)
    assert status == 409 and body["reason"] == "Conflict"


async def test_printer_columns_in_table_output(simulator, widgets):
    await call(simulator, "POST", WIDGETS, {"apiVersion": "example.com/v1", "kind": "Widget",
                                            "metadata": {"name": "w"}, "spec": {"size": "large", "replicas": 2}})
    await call(simulator, "PATCH", WIDGETS + "/w/status",
               {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}},
               "application/merge-patch+json")
    status, table = await call(simulator, "GET", WIDGETS, accept=TABLE)
    assert status == 200 and table["kind"] == "Table"
    assert [(c["name"], c["type"], c["priority"]) for c in table["columnDefinitions"]] == [
        ("Name", "string", 0), ("Replicas", "integer", 0), ("Phase", "string", 0),
        ("Ready", "string", 1), ("Age", "date", 0)]
    assert table["columnDefinitions"][2]["description"] == "where it is"
    [row] = table["rows"]
    assert row["cells"][:4] == ["w", 2, "Running", "True"]
    assert row["cells"][4].endswith("s")  # an age such as "0s"
    await call(simulator, "POST", WIDGETS, {"apiVersion": "example.com/v1", "kind": "Widget",
                                            "metadata": {"name": "bare"}, "spec": {"size": "small"}})
    _, table = await call(simulator, "GET", WIDGETS + "/bare", accept=TABLE)
    assert table["rows"][0]["cells"][:4] == ["bare", 1, None, None]


async def test_schema_validation_causes_and_preserved_fields(simulator, widgets):
    bad = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "bad"},
           "spec": {"size": "huge", "name": "Abc", "weight": 11, "replicas": -2}}
    status, body = await call(simulator, "POST", WIDGETS, bad)
    assert status == 422
    assert sorted((c["field"], c["reason"], c["message"]) for c in body["details"]["causes"]) == [
        ("spec.name", "FieldValueInvalid", "Invalid value: \"Abc\": spec.name in body should match '^[a-z]+$'"),
        ("spec.replicas", "FieldValueInvalid",
         "Invalid value: -2: spec.replicas in body should be greater than or equal to 0"),
        ("spec.size", "FieldValueNotSupported", 'Unsupported value: "huge": supported values: "small", "large"'),
        ("spec.weight", "FieldValueInvalid",
         "Invalid value: 11: spec.weight in body should be less than or equal to 10"),
    ]
    status, body = await call(simulator, "POST", WIDGETS, {
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "nosize"}, "spec": {}})
    assert status == 422
    assert body["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.size"}]
    status, kept = await call(simulator, "POST", WIDGETS, {
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "free"},
        "spec": {"size": "small", "extra": {"anything": {"goes": [1, 2]}}}})
    assert status == 201 and kept["spec"]["extra"] == {"anything": {"goes": [1, 2]}}


async def test_status_subresource_is_separate_from_spec(simulator, widgets):
    _, created = await call(simulator, "POST", WIDGETS, {
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "s"},
        "spec": {"size": "small"}, "status": {"phase": "Ignored"}})
    assert "status" not in created and created["metadata"]["generation"] == 1
    _, written = await call(simulator, "PUT", WIDGETS + "/s/status",
                            dict(created, status={"phase": "Up"}, spec={"size": "large"}))
    assert written["status"] == {"phase": "Up"} and written["spec"]["size"] == "small"
    assert written["metadata"]["generation"] == 1  # a status write is not a new generation
    _, main = await call(simulator, "PUT", WIDGETS + "/s", dict(written, status={"phase": "Lost"},
                                                                spec={"size": "large"}))
    assert main["status"] == {"phase": "Up"} and main["metadata"]["generation"] == 2


async def test_leases_support_leader_election(simulator):
    leases = "/apis/coordination.k8s.io/v1/namespaces/default/leases"
    spec = {"holderIdentity": "a", "leaseDurationSeconds": 15,
            "acquireTime": "2026-01-01T00:00:00.000000Z", "renewTime": "2026-01-01T00:00:00.000000Z",
            "leaseTransitions": 0}
    status, lease = await call(simulator, "POST", leases, {"metadata": {"name": "op"}, "spec": spec})
    assert status == 201 and lease["spec"]["holderIdentity"] == "a"
    renewed = dict(lease, spec=dict(lease["spec"], renewTime="2026-01-01T00:00:05.000000Z"))
    status, renewed_back = await call(simulator, "PUT", leases + "/op", renewed)
    assert status == 200 and renewed_back["spec"]["renewTime"] == "2026-01-01T00:00:05.000000Z"
    # a contender holding the old version loses the race with a 409
    stolen = dict(lease, spec=dict(lease["spec"], holderIdentity="b", leaseTransitions=1))
    status, body = await call(simulator, "PUT", leases + "/op", stolen)
    assert status == 409
    assert body["message"].startswith('Operation cannot be fulfilled on leases.coordination.k8s.io "op"')
    status, _ = await call(simulator, "PATCH", leases + "/op?fieldManager=b",
                           "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: op}\n"
                           "spec: {holderIdentity: b}\n", "application/apply-patch+yaml")
    assert status == 409  # "a"'s field: taking it needs force
