"""Validation: the real server's 422 causes, compared with recorded Status bodies."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from async_kubespawner.sim.defaulting import default_object
from async_kubespawner.sim.validation import (
    decode_error,
    invalid_status,
    prune_unknown,
    validate_against_schema,
    validate_object,
)

SAMPLES = Path(__file__).parent / "samples"
ERRORS = json.loads((SAMPLES / "status-errors.json").read_text())

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)


def _pod(name: str = "p", **spec: Any) -> dict:
    body = {"containers": [{"name": "main", "image": "registry.example/nb:1.0"}]}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": body}


def _fields(causes: list[dict]) -> list[tuple[str, str, str]]:
    return [(c["reason"], c["field"], c["message"]) for c in causes]


@pytest.mark.parametrize("case", ["422_invalid_one_cause", "422_invalid_several_causes"])
def test_create_errors_match_recorded_status(case: str) -> None:
    entry = ERRORS[case]
    body = entry["request"]["body"]
    causes = validate_object("Pod", body)
    assert invalid_status("Pod", body["metadata"]["name"], causes) == entry["response"]["body"]


def test_adding_a_container_on_update_matches_recorded_status() -> None:
    entry = ERRORS["422_invalid_immutable_pod_field"]
    new = json.loads(json.dumps(entry["request"]["body"]).replace("<gen>", "x2b4z"))
    old = copy.deepcopy(new)
    old["spec"]["containers"] = old["spec"]["containers"][:2]
    causes = validate_object("Pod", new, old)
    assert invalid_status("Pod", "upd-pod", causes) == entry["response"]["body"]


def test_valid_defaulted_pod_has_no_causes_and_image_update_is_allowed() -> None:
    pod = _pod(volumes=[{"name": "home", "emptyDir": {}}])
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "home", "mountPath": "/home/jovyan"}]
    default_object("Pod", pod, allocate_cluster_ip=lambda: "10.0.0.1")
    assert validate_object("Pod", pod) == []
    updated = copy.deepcopy(pod)
    updated["spec"]["containers"][0]["image"] = "registry.example/nb:2.0"
    updated["spec"]["activeDeadlineSeconds"] = 100
    updated["spec"]["tolerations"].append({"key": "x", "operator": "Exists"})
    updated["metadata"]["labels"] = {"new": "label"}
    assert validate_object("Pod", updated, pod) == []


def test_pod_update_forbidden_changes() -> None:
    old = _pod(schedulingGates=[{"name": "example.com/hold"}])
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["args"] = ["changed"]
    new["spec"]["schedulingGates"] = [{"name": "example.com/hold"}, {"name": "example.com/new"}]
    causes = _fields(validate_object("Pod", new, old))
    assert (
        "FieldValueForbidden",
        "spec.schedulingGates",
        "Forbidden: only deletion is allowed, but found new scheduling gate 'example.com/new'",
    ) in causes
    assert any(
        c[1] == "spec"
        and c[2].startswith(
            "Forbidden: pod updates may not change fields other than `spec.containers[*].image`"
        )
        for c in causes
    )
    removed_gate = copy.deepcopy(old)
    removed_gate["spec"]["schedulingGates"] = []
    assert validate_object("Pod", removed_gate, old) == []
    renamed = copy.deepcopy(old)
    renamed["metadata"]["name"] = "other"
    assert (
        "FieldValueInvalid",
        "metadata.name",
        'Invalid value: "other": field is immutable',
    ) in _fields(validate_object("Pod", renamed, old))


def test_names_by_kind() -> None:
    assert _fields(validate_object("Namespace", {"metadata": {"name": "a.b"}})) == [
        ("FieldValueInvalid", "metadata.name", f'Invalid value: "a.b": {LABEL_MSG}')
    ]
    assert validate_object("ConfigMap", {"metadata": {"name": "a.b"}}) == []
    service = _fields(
        validate_object(
            "Service", {"metadata": {"name": "1svc"}, "spec": {"ports": [{"port": 80}]}}
        )
    )
    assert service[0][1] == "metadata.name"
    assert (
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
        "alphabetic character" in service[0][2]
    )
    long_name = "a" * 254
    assert _fields(validate_object("Secret", {"metadata": {"name": long_name}}))[0] == (
        "FieldValueInvalid",
        "metadata.name",
        f'Invalid value: "{long_name}": must be no more than 253 bytes',
    )
    assert _fields(validate_object("Secret", {"metadata": {}})) == [
        ("FieldValueRequired", "metadata.name", "Required value: name or generateName is required")
    ]


def test_generate_name_is_checked_as_a_prefix() -> None:
    assert validate_object("Pod", {**_pod(), "metadata": {"generateName": "jupyter-"}}) == []
    causes = _fields(validate_object("Pod", {**_pod(), "metadata": {"generateName": "Bad_"}}))
    assert causes == [
        ("FieldValueInvalid", "metadata.generateName", f'Invalid value: "Bad_": {SUBDOMAIN_MSG}')
    ]


def test_labels_annotations_owner_references_finalizers() -> None:
    meta = {
        "name": "ok",
        "labels": {"bad key!": "v", "good": "-bad-value"},
        "annotations": {"big": "x" * (256 * 1024)},
        "ownerReferences": [
            {"apiVersion": "v1", "kind": "Pod", "name": "o"},
            {"apiVersion": "v1", "kind": "Pod", "name": "a", "uid": "1", "controller": True},
            {"apiVersion": "v1", "kind": "Pod", "name": "b", "uid": "2", "controller": True},
        ],
        "finalizers": ["example.com/ok", "bare"],
    }
    causes = _fields(validate_object("ConfigMap", {"metadata": meta}))
    fields = [c[1] for c in causes]
    assert fields.count("metadata.labels") == 2
    assert causes[0][2].startswith(
        'Invalid value: "bad key!": name part must consist of alphanumeric characters'
    )
    assert (
        "FieldValueTooLong",
        "metadata.annotations",
        "Too long: may not be more than 262144 bytes",
    ) in causes
    assert (
        "FieldValueInvalid",
        "metadata.ownerReferences[0].uid",
        'Invalid value: "": must not be empty',
    ) in causes
    assert any("Only one reference can have Controller set to true" in c[2] for c in causes)
    assert (
        "FieldValueInvalid",
        "metadata.finalizers",
        'Invalid value: "bare": name is neither a standard finalizer name nor is it fully qualified',
    ) in causes


def test_pod_spec_rules() -> None:
    pod = _pod(
        restartPolicy="Sometimes",
        dnsPolicy="Weird",
        volumes=[{"name": "v"}, {"name": "v"}],
        containers=[
            {
                "name": "main",
                "image": "x:1",
                "ports": [
                    {"name": "http", "containerPort": 8888},
                    {"name": "http", "containerPort": 70000},
                ],
                "env": [{"name": ""}, {"name": "A=B"}],
                "volumeMounts": [{"name": "missing", "mountPath": "/a"}],
                "resources": {"limits": {"cpu": "500m"}, "requests": {"cpu": "1", "memory": "-1"}},
            }
        ],
    )
    causes = _fields(validate_object("Pod", pod))
    assert (
        "FieldValueNotSupported",
        "spec.restartPolicy",
        'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
    ) in causes
    assert any(c[0] == "FieldValueNotSupported" and c[1] == "spec.dnsPolicy" for c in causes)
    assert ("FieldValueDuplicate", "spec.volumes[1].name", 'Duplicate value: "v"') in causes
    assert (
        "FieldValueDuplicate",
        "spec.containers[0].ports[1].name",
        'Duplicate value: "http"',
    ) in causes
    assert (
        "FieldValueInvalid",
        "spec.containers[0].ports[1].containerPort",
        "Invalid value: 70000: must be between 1 and 65535, inclusive",
    ) in causes
    assert ("FieldValueRequired", "spec.containers[0].env[0].name", "Required value") in causes
    assert any(c[1] == "spec.containers[0].env[1].name" for c in causes)
    assert (
        "FieldValueNotFound",
        "spec.containers[0].volumeMounts[0].name",
        'Not found: "missing"',
    ) in causes
    assert (
        "FieldValueInvalid",
        "spec.containers[0].resources.requests",
        'Invalid value: "1": must be less than or equal to cpu limit of 500m',
    ) in causes
    assert (
        "FieldValueInvalid",
        "spec.containers[0].resources.requests[memory]",
        'Invalid value: "-1": must be greater than or equal to 0',
    ) in causes
    assert _fields(validate_object("Pod", _pod(containers=[]))) == [
        ("FieldValueRequired", "spec.containers", "Required value")
    ]


def test_init_and_app_containers_share_names() -> None:
    pod = _pod(initContainers=[{"name": "main", "image": "i:1"}])
    assert _fields(validate_object("Pod", pod)) == [
        ("FieldValueDuplicate", "spec.containers[0].name", 'Duplicate value: "main"')
    ]


def test_bad_quantity_is_a_decode_error_first() -> None:
    pod = _pod(
        containers=[{"name": "m", "image": "x:1", "resources": {"limits": {"memory": "lots"}}}]
    )
    assert decode_error("Pod", pod) == (
        'Pod in version "v1" cannot be handled as a Pod: quantities must match the regular expression '
        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )
    assert decode_error("Pod", _pod()) is None
    for good in ("1Gi", "500m", "1e3", "0.5"):
        ok = _pod(
            containers=[{"name": "m", "image": "x:1", "resources": {"requests": {"memory": good}}}]
        )
        assert decode_error("Pod", ok) is None
        assert validate_object("Pod", ok) == []
    # reached validation anyway: still refused, never accepted
    assert validate_object("Pod", pod)[0]["field"] == "spec.containers[0].resources.limits[memory]"


def test_service_rules_and_cluster_ip_immutability() -> None:
    svc = {
        "metadata": {"name": "svc"},
        "spec": {"type": "Weird", "ports": [{"port": 0}, {"port": 80, "targetPort": "Bad_Name"}]},
    }
    causes = _fields(validate_object("Service", svc))
    assert ("FieldValueRequired", "spec.ports[0].name", "Required value") in causes
    assert (
        "FieldValueInvalid",
        "spec.ports[0].port",
        "Invalid value: 0: must be between 1 and 65535, inclusive",
    ) in causes
    assert any(c[1] == "spec.type" and c[0] == "FieldValueNotSupported" for c in causes)
    assert any(c[1] == "spec.ports[1].targetPort" for c in causes)
    assert _fields(validate_object("Service", {"metadata": {"name": "s"}, "spec": {}})) == [
        ("FieldValueRequired", "spec.ports", "Required value")
    ]
    old = {"metadata": {"name": "s"}, "spec": {"clusterIP": "10.0.0.1", "ports": [{"port": 80}]}}
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = "10.0.0.2"
    assert _fields(validate_object("Service", new, old)) == [
        (
            "FieldValueInvalid",
            "spec.clusterIPs[0]",
            'Invalid value: []string{"10.0.0.2"}: may not change once set',
        )
    ]
    assert validate_object("Service", old, old) == []


def test_secrets_and_configmaps() -> None:
    causes = _fields(
        validate_object(
            "Secret",
            {"metadata": {"name": "s"}, "data": {"bad key": "eA=="}, "type": "kubernetes.io/tls"},
        )
    )
    assert causes[0][1] == "data[bad key]"
    assert (
        "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
        in causes[0][2]
    )
    assert ("FieldValueRequired", "data[tls.crt]", "Required value") in causes
    old = {"metadata": {"name": "s"}, "data": {"k": "eA=="}, "immutable": True}
    new = {"metadata": {"name": "s"}, "data": {"k": "eQ=="}, "immutable": True}
    assert _fields(validate_object("Secret", new, old)) == [
        ("FieldValueForbidden", "data", "Forbidden: field is immutable when `immutable` is set")
    ]
    retyped = {"metadata": {"name": "s"}, "type": "other/type"}
    assert _fields(validate_object("Secret", retyped, {"metadata": {"name": "s"}})) == [
        ("FieldValueInvalid", "type", 'Invalid value: "other/type": field is immutable')
    ]
    cm = {"metadata": {"name": "c"}, "data": {"k": "v"}, "binaryData": {"k": "eA=="}}
    assert _fields(validate_object("ConfigMap", cm))[0][1] == "binaryData[k]"


def test_pvc_rules_and_update() -> None:
    pvc = {
        "metadata": {"name": "claim"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    assert validate_object("PersistentVolumeClaim", pvc) == []
    assert _fields(
        validate_object("PersistentVolumeClaim", {"metadata": {"name": "c"}, "spec": {}})
    ) == [
        (
            "FieldValueRequired",
            "spec.accessModes",
            "Required value: at least 1 access mode is required",
        ),
        ("FieldValueRequired", "spec.resources[storage]", "Required value"),
    ]
    grown = copy.deepcopy(pvc)
    grown["spec"]["resources"]["requests"]["storage"] = "2Gi"
    grown["spec"]["volumeName"] = "pv-1"
    assert validate_object("PersistentVolumeClaim", grown, pvc) == []
    changed = copy.deepcopy(pvc)
    changed["spec"]["accessModes"] = ["ReadWriteMany"]
    assert _fields(validate_object("PersistentVolumeClaim", changed, pvc))[0][:2] == (
        "FieldValueForbidden",
        "spec",
    )


def test_invalid_status_for_a_group_and_deduplicated_message() -> None:
    cause = {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.x"}
    status = invalid_status("Lease", "l", [cause, dict(cause)], group="coordination.k8s.io")
    assert status["message"] == 'Lease.coordination.k8s.io "l" is invalid: spec.x: Required value'
    assert status["details"] == {
        "name": "l",
        "group": "coordination.k8s.io",
        "kind": "Lease",
        "causes": [cause, cause],
    }
    assert status["code"] == 422 and status["reason"] == "Invalid"


SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["size"],
            "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                "mode": {"type": "string", "enum": ["fast", "slow"]},
                "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "port": {"x-kubernetes-int-or-string": True},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
    },
}


def test_schema_validation() -> None:
    good = {
        "apiVersion": "x/v1",
        "kind": "X",
        "metadata": {"name": "a"},
        "spec": {
            "size": 3,
            "mode": "fast",
            "name": "abc",
            "tags": ["a"],
            "port": "http",
            "labels": {"a": "b"},
        },
    }
    assert validate_against_schema(SCHEMA, good) == []
    bad = {
        "spec": {
            "size": "three",
            "mode": "medium",
            "name": "ABCDEFG",
            "tags": ["a", "b", 3],
            "port": 1.5,
            "labels": {"a": 1},
        },
        "status": {"ready": "yes"},
    }
    causes = _fields(validate_against_schema(SCHEMA, bad))
    assert (
        "FieldValueTypeInvalid",
        "spec.size",
        'Invalid value: "string": spec.size in body must be of type integer: "string"',
    ) in causes
    assert (
        "FieldValueNotSupported",
        "spec.mode",
        'Unsupported value: "medium": supported values: "fast", "slow"',
    ) in causes
    assert (
        "FieldValueInvalid",
        "spec.name",
        "Invalid value: \"ABCDEFG\": spec.name in body should match '^[a-z]+$'",
    ) in causes
    assert ("FieldValueTooLong", "spec.name", "Too long: may not be more than 5 bytes") in causes
    assert any(c[1] == "spec.tags" and c[0] == "FieldValueTooMany" for c in causes)
    assert any(c[1] == "spec.tags[2]" for c in causes)
    assert any(c[1] == "spec.port" for c in causes)
    assert any(c[1] == "spec.labels.a" for c in causes)
    assert any(c[1] == "status.ready" for c in causes)
    missing = _fields(validate_against_schema(SCHEMA, {"spec": {"size": 0}}))
    assert (
        "FieldValueInvalid",
        "spec.size",
        "Invalid value: 0: spec.size in body should be greater than or equal to 1",
    ) in missing
    assert _fields(validate_against_schema(SCHEMA, {"spec": {}})) == [
        ("FieldValueRequired", "spec.size", "Required value")
    ]


def test_prune_unknown_fields() -> None:
    obj = {
        "apiVersion": "x/v1",
        "kind": "X",
        "metadata": {"name": "a"},
        "junk": 1,
        "spec": {
            "size": 1,
            "unknown": True,
            "extra": {"anything": {"goes": 1}},
            "labels": {"k": "v"},
            "tags": ["a"],
        },
    }
    before = copy.deepcopy(obj)
    pruned = prune_unknown(SCHEMA, obj)
    assert pruned == {
        "apiVersion": "x/v1",
        "kind": "X",
        "metadata": {"name": "a"},
        "spec": {
            "size": 1,
            "extra": {"anything": {"goes": 1}},
            "labels": {"k": "v"},
            "tags": ["a"],
        },
    }
    assert obj == before
