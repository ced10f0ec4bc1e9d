"""managedFields on every write, and server-side apply (application/apply-patch+yaml)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

SAMPLES = Path(__file__).parent / "samples"
APPLY = "application/apply-patch+yaml"


def recorded(file: str, key: str) -> dict[str, Any]:
    with open(SAMPLES / file) as f:
        return json.load(f)[key]


async def call(
    sim, method: str, path: str, body: Any = None, ctype: str = "application/json",
    agent: str = "probe/1.0",
) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, str) or body is None else json.dumps(body)
    headers = {"Content-Type": ctype, "User-Agent": agent}
    async with aiohttp.ClientSession() as http, http.request(
        method, sim.url + path, data=data, headers=headers
    ) as resp:
        return resp.status, await resp.json()


CM = "/api/v1/namespaces/default/configmaps"


def entries(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return obj["metadata"].get("managedFields", [])


def strip_time(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k != "time"} for e in items]


async def test_create_records_the_user_agent_as_manager_like_the_recording(simulator):
    """The recorded PUT body carries the real server's entry for a ConfigMap created by
    the probe: manager = User-Agent product token, fieldsV1 owning data as a whole."""
    sent = recorded("status-errors.json", "409_conflict_stale_resource_version")["request"]["body"]
    real_entry = sent["metadata"]["managedFields"][0]
    status, obj = await call(
        simulator, "POST", CM, {"metadata": {"name": "upd"}, "data": {"k": "v"}},
        agent="conformance-probe/1.2 (linux)",
    )
    assert status == 201
    [entry] = entries(obj)
    assert {k: v for k, v in entry.items() if k != "time"} == {
        k: v for k, v in real_entry.items() if k != "time"
    }


async def test_field_manager_parameter_names_the_manager_and_updates_add_entries(simulator):
    await call(simulator, "POST", CM + "?fieldManager=creator", {"metadata": {"name": "a"}, "data": {"k": "v"}})
    status, obj = await call(
        simulator, "PATCH", CM + "/a?fieldManager=labeller",
        {"metadata": {"labels": {"team": "x"}}}, "application/merge-patch+json",
    )
    assert status == 200
    assert strip_time(entries(obj)) == [
        {"manager": "creator", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:data": {".": {}, "f:k": {}}}},
        {"manager": "labeller", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:team": {}}}}},
    ]
    # changing a field moves it to the new manager; removing it drops it from everyone
    status, obj = await call(
        simulator, "PATCH", CM + "/a?fieldManager=labeller",
        {"data": {"k": "w"}, "metadata": {"labels": None}}, "application/merge-patch+json",
    )
    assert strip_time(entries(obj)) == [
        {"manager": "creator", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:data": {}}},
        {"manager": "labeller", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:data": {"f:k": {}}}},
    ]


async def test_pod_creator_owns_type_defaults_but_not_admission_additions(simulator):
    status, pod = await call(simulator, "POST", "/api/v1/namespaces/default/pods", {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "main", "image": "x", "ports": [{"containerPort": 80}]}]},
    })
    assert status == 201
    [entry] = entries(pod)
    spec = entry["fieldsV1"]["f:spec"]
    assert set(spec) == {"f:containers", "f:dnsPolicy", "f:enableServiceLinks", "f:restartPolicy",
                         "f:schedulerName", "f:securityContext", "f:terminationGracePeriodSeconds"}
    container = spec["f:containers"]['k:{"name":"main"}']
    assert container["."] == {}
    assert container["f:ports"] == {
        ".": {}, 'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}, "f:protocol": {}}
    }
    assert "f:volumeMounts" not in container  # the token mount is the ServiceAccount plugin's
    assert "f:status" not in entry["fieldsV1"]  # status is reset on the main resource


async def test_noop_update_changes_nothing(simulator):
    _, obj = await call(simulator, "POST", CM, {"metadata": {"name": "same"}, "data": {"k": "v"}})
    status, again = await call(simulator, "PUT", CM + "/same", obj)
    assert status == 200
    assert again["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
    assert again["metadata"]["managedFields"] == obj["metadata"]["managedFields"]


async def test_managed_fields_sent_in_a_put_replace_the_stored_ones(simulator):
    _, obj = await call(simulator, "POST", CM, {"metadata": {"name": "r"}, "data": {"k": "v"}})
    obj["metadata"]["managedFields"] = []  # empty: "I do not know about them", kept
    _, kept = await call(simulator, "PUT", CM + "/r", obj)
    assert strip_time(entries(kept)) == strip_time(entries(obj) or entries(kept))
    assert [e["manager"] for e in entries(kept)] == ["probe"]
    kept["metadata"]["managedFields"] = [
        {"manager": "other", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:data": {"f:k": {}}}}
    ]
    _, replaced = await call(simulator, "PUT", CM + "/r", kept)
    assert [e["manager"] for e in entries(replaced)] == ["other"]


async def test_apply_creates_then_conflicts_then_forces(simulator):
    config = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  k: v\n  j: x\n"
    status, obj = await call(simulator, "PATCH", CM + "/ssa?fieldManager=alice", config, APPLY)
    assert status == 201
    assert strip_time(entries(obj)) == [
        {"manager": "alice", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:data": {"f:j": {}, "f:k": {}}}}
    ]
    # bob applying the same value shares ownership; a different value is a conflict
    same = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa}\ndata: {k: v}\n"
    status, obj = await call(simulator, "PATCH", CM + "/ssa?fieldManager=bob", same, APPLY)
    assert status == 200
    assert [e["manager"] for e in entries(obj)] == ["alice", "bob"]
    other = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa}\ndata: {j: y}\n"
    status, body = await call(simulator, "PATCH", CM + "/ssa?fieldManager=carol", other, APPLY)
    assert status == 409
    assert body == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'Apply failed with 1 conflict: conflict with "alice": .data.j',
        "reason": "Conflict",
        "details": {"causes": [
            {"reason": "FieldManagerConflict", "message": 'conflict with "alice"', "field": ".data.j"}
        ]},
        "code": 409,
    }
    status, obj = await call(simulator, "PATCH", CM + "/ssa?fieldManager=carol&force=true", other, APPLY)
    assert status == 200 and obj["data"] == {"k": "v", "j": "y"}
    owners = {e["manager"]: e["fieldsV1"] for e in entries(obj)}
    assert owners["carol"] == {"f:data": {"f:j": {}}}
    assert owners["alice"] == {"f:data": {"f:k": {}}}
    # alice stops applying k: bob still owns it, so it stays; then bob drops it too
    none = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa}\n"
    _, obj = await call(simulator, "PATCH", CM + "/ssa?fieldManager=alice", none, APPLY)
    assert obj["data"] == {"k": "v", "j": "y"}
    _, obj = await call(simulator, "PATCH", CM + "/ssa?fieldManager=bob", none, APPLY)
    assert obj["data"] == {"j": "y"}


async def test_conflicts_with_an_updater_name_its_api_version_and_list_every_field(simulator):
    await call(simulator, "POST", CM, {"metadata": {"name": "two"}, "data": {"a": "1", "b": "2"}},
               agent="kubectl-create/v1.36")
    config = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: two}\ndata: {a: x, b: y}\n"
    status, body = await call(simulator, "PATCH", CM + "/two?fieldManager=ctl", config, APPLY)
    assert status == 409
    assert body["message"] == (
        'Apply failed with 2 conflicts: conflicts with "kubectl-create" using v1:\n- .data.a\n- .data.b'
    )
    assert [c["field"] for c in body["details"]["causes"]] == [".data.a", ".data.b"]


async def test_apply_merges_keyed_lists_and_detects_container_conflicts(simulator):
    pods = "/api/v1/namespaces/default/pods"
    await call(simulator, "POST", pods, {"metadata": {"name": "web"}, "spec": {"containers": [
        {"name": "main", "image": "img:1"}]}})
    config = ("apiVersion: v1\nkind: Pod\nmetadata: {name: web, labels: {tier: web}}\n"
              "spec:\n  containers:\n  - name: main\n    image: img:2\n")
    status, body = await call(simulator, "PATCH", pods + "/web?fieldManager=op", config, APPLY)
    assert status == 409
    assert body["details"]["causes"] == [{
        "reason": "FieldManagerConflict", "message": 'conflict with "probe" using v1',
        "field": '.spec.containers[name="main"].image',
    }]


async def test_apply_option_errors_are_422_with_the_real_wording(simulator):
    config = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: m}\n"
    status, body = await call(simulator, "PATCH", CM + "/m", config, APPLY)
    assert status == 422
    assert body["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch'
    )
    assert body["details"] == {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [
        {"reason": "FieldValueRequired", "message": "Required value: is required for apply patch",
         "field": "fieldManager"}]}
    await call(simulator, "POST", CM, {"metadata": {"name": "m"}})
    status, body = await call(simulator, "PATCH", CM + "/m?force=true", {"data": {}},
                              "application/merge-patch+json")
    assert status == 422
    assert body["details"]["causes"] == [{"reason": "FieldValueForbidden",
        "message": "Forbidden: may not be specified for non-apply patch", "field": "force"}]
    status, body = await call(simulator, "POST", CM + "?fieldValidation=Sometimes", {"metadata": {"name": "n"}})
    assert status == 422
    assert body["message"] == (
        'CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Sometimes": '
        'supported values: "", "Ignore", "Strict", "Warn"'
    )
    status, body = await call(simulator, "POST", CM + "?dryRun=Maybe", {"metadata": {"name": "n"}})
    assert status == 422
    assert body["details"]["causes"][0]["message"] == (
        'Unsupported value: []string{"Maybe"}: supported values: "All"'
    )


@pytest.fixture
async def widgets(simulator):
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                   "spec": {"type": "object", "properties": {
                                       "size": {"type": "integer"},
                                       "tags": {"type": "array", "items": {"type": "string"},
                                                "x-kubernetes-list-type": "set"}}},
                                   "status": {"type": "object", "properties": {
                                       "phase": {"type": "string"}}}}}}}]},
    }
    status, _ = await call(simulator, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert status == 201
    return "/apis/example.com/v1/namespaces/default/widgets"


async def test_custom_resources_apply_and_refuse_strategic_merge(simulator, widgets):
    config = ("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"
              "spec: {size: 1, tags: [a]}\n")
    status, obj = await call(simulator, "PATCH", widgets + "/w?fieldManager=op", config, APPLY)
    assert status == 201
    assert entries(obj)[0]["fieldsV1"] == {"f:spec": {"f:size": {}, "f:tags": {'v:"a"': {}}}}
    status, body = await call(simulator, "PATCH", widgets + "/w", {"spec": {"size": 2}},
                              "application/strategic-merge-patch+json")
    assert status == 415
    assert body == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "the body of the request was in an unknown format - accepted media types include: "
                   "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        "reason": "UnsupportedMediaType", "details": {}, "code": 415,
    }
    # a merge patch by someone else records an Update entry next to the Apply one
    status, obj = await call(simulator, "PATCH", widgets + "/w?fieldManager=tuner", {"spec": {"size": 3}},
                             "application/merge-patch+json")
    assert status == 200
    assert [(e["manager"], e["operation"]) for e in entries(obj)] == [("op", "Apply"), ("tuner", "Update")]
    # a status write is recorded against the status subresource
    status, obj = await call(simulator, "PATCH", widgets + "/w/status?fieldManager=ctrl",
                             {"status": {"phase": "Ready"}}, "application/merge-patch+json")
    assert status == 200
    status_entry = next(e for e in entries(obj) if e["manager"] == "ctrl")
    assert status_entry["subresource"] == "status"
    assert status_entry["fieldsV1"] == {"f:status": {".": {}, "f:phase": {}}}


async def test_pod_field_set_equals_the_recorded_one(simulator):
    """The recorded PUT body of 11-update-conflicts carries the real server's fieldsV1 for
    a pod created with two containers and a scheduling gate: ours must be identical."""
    sent = recorded("status-errors.json", "422_invalid_immutable_pod_field")["request"]["body"]
    [real_entry] = sent["metadata"]["managedFields"]
    image = "registry.example/probe/notebook:1.0"
    status, pod = await call(simulator, "POST", "/api/v1/namespaces/default/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "upd-pod"},
        "spec": {"containers": [{"name": "main", "image": image}, {"name": "side", "image": image}],
                 "schedulingGates": [{"name": "example.com/probe-hold"}]},
    }, agent="conformance-probe/1.0")
    assert status == 201
    [entry] = entries(pod)
    assert entry["fieldsV1"] == real_entry["fieldsV1"]
    assert {k: v for k, v in entry.items() if k not in ("time", "fieldsV1")} == {
        k: v for k, v in real_entry.items() if k not in ("time", "fieldsV1")
    }


CREATED = [
    ("Pod", {"metadata": {"name": "p", "labels": {"a": "b"}, "finalizers": ["x/y"],
                          "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o",
                                               "uid": "u-1"}]},
             "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}],
                                      "env": [{"name": "A", "value": "1"}],
                                      "resources": {"limits": {"cpu": "1"}}}],
                      "nodeSelector": {"k": "v"}, "dnsPolicy": "ClusterFirst"},
             "status": {"phase": "Pending"}}),
    ("PersistentVolumeClaim", {"metadata": {"name": "c"},
                               "spec": {"accessModes": ["ReadWriteOnce"],
                                        "resources": {"requests": {"storage": "1Gi"}}}}),
    ("Service", {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80, "targetPort": 8888}],
                                                     "selector": {"app": "x"}}}),
    ("ConfigMap", {"metadata": {"name": "m", "annotations": {"a": "b"}}, "data": {"k": "v"}}),
]


@pytest.mark.parametrize(("kind", "obj"), CREATED)
def test_one_walk_create_encoding_equals_the_set_algebra(kind, obj):
    """The fast path every create takes gives exactly what the general Update rule gives."""
    from kubesim import managed_fields as mf

    reset = kind in ("Pod", "PersistentVolumeClaim", "Service")
    fast = mf.created_fields_v1(kind, obj, None, reset_status=reset)
    [entry] = mf.record_update([], mf.zero_skeleton(kind, False), mf.leaves(obj, reset_status=reset),
                               manager="m", api_version="v1")
    assert fast == mf.encode(entry.fields)
    assert mf.decode(fast) == entry.fields


def test_custom_resource_creator_owns_spec_whole():
    from kubesim import managed_fields as mf

    obj = {"metadata": {"name": "w"}, "spec": {"size": 1, "tags": ["a"]}}
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "size": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"}}}}}
    fast = mf.created_fields_v1("Widget", obj, schema, reset_status=False)
    assert fast == {"f:spec": {".": {}, "f:size": {}, "f:tags": {".": {}, 'v:"a"': {}}}}
    [entry] = mf.record_update([], mf.zero_skeleton("Widget", True), mf.leaves(obj, schema, reset_status=False),
                               manager="m", api_version="example.com/v1")
    assert mf.encode(entry.fields) == fast
