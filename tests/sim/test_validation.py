"""Validation: the real server's 422 causes, compared with recorded Status bodies."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from kubesim.defaulting import default_object
from kubesim.validation import (
    apply_schema_defaults,
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
        "finalizers": ["example.com/ok", "bare", "orphan", "foregroundDeletion", "bad name"],
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
        "metadata.ownerReferences.uid",
        'Invalid value: "": uid must not be empty',
    ) in causes
    assert any(
        c[2].endswith(
            'Only one reference can have Controller set to true. Found "true" in '
            "references for a and b"
        )
        for c in causes
    )
    finalizer_causes = [c for c in causes if c[1] == "metadata.finalizers"]
    assert len(finalizer_causes) == 2
    assert finalizer_causes[0][2].startswith('Invalid value: "bad name": name part must consist of')
    assert finalizer_causes[1][2].endswith(
        "finalizer orphan and foregroundDeletion cannot be both set"
    )
    namespace = {"metadata": {"name": "ns"}, "spec": {"finalizers": ["kubernetes", "bare"]}}
    assert _fields(validate_object("Namespace", namespace)) == [
        (
            "FieldValueInvalid",
            "spec.finalizers[1]",
            'Invalid value: "bare": name is neither a standard finalizer name nor is it fully qualified',
        )
    ]


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
    # reached validation anyway: still refused with the same words, never accepted
    assert validate_object("Pod", pod) == [
        {"reason": "FieldValueInvalid", "message": decode_error("Pod", pod), "field": ""}
    ]


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
    old: dict[str, Any] = {
        "metadata": {"name": "s"}, "spec": {"clusterIP": "10.0.0.1", "ports": [{"port": 80}]}
    }
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = "10.0.0.2"
    assert _fields(validate_object("Service", new, old)) == [
        (
            "FieldValueInvalid",
            "spec.clusterIPs[0]",
            'Invalid value: ["10.0.0.2"]: may not change once set',
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
    assert _fields(
        validate_object("Secret", {"metadata": {"name": "s"}, "type": "kubernetes.io/basic-auth"})
    ) == [
        ("FieldValueRequired", "data[username]", "Required value"),
        ("FieldValueRequired", "data[password]", "Required value"),
    ]
    assert _fields(
        validate_object("Secret", {"metadata": {"name": "s"}, "type": "kubernetes.io/ssh-auth"})
    ) == [("FieldValueRequired", "data[ssh-privatekey]", "Required value")]
    cm = {"metadata": {"name": "c"}, "data": {"k": "v"}, "binaryData": {"k": "eA=="}}
    assert _fields(validate_object("ConfigMap", cm))[0][1] == "binaryData[k]"


def test_pvc_rules_and_update() -> None:
    pvc: dict[str, Any] = {
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
    # only a bound claim may grow; the binder may set volumeName once
    assert _fields(validate_object("PersistentVolumeClaim", grown, pvc))[0][:2] == (
        "FieldValueForbidden",
        "spec",
    )
    grown["status"] = {"phase": "Bound"}
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


LIST_SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "tags": {
                    "type": "array",
                    "items": {"type": "string"},
                    "x-kubernetes-list-type": "set",
                },
                "ports": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "port": {"type": "integer", "default": 80},
                        },
                    },
                },
                "replicas": {"type": "integer", "default": 1},
                "template": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "properties": {
                        "spec": {"type": "object", "properties": {"x": {"type": "string"}}}
                    },
                },
                "mode": {
                    "type": "object",
                    "default": {},
                    "properties": {"fast": {"type": "boolean", "default": False}},
                },
            },
        }
    },
}


def test_schema_list_types_and_embedded_resources() -> None:
    obj = {
        "spec": {
            "tags": ["a", "b", "a"],
            "ports": [{"name": "http"}, {"name": "http", "port": 81}],
            "template": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "t"},
                "spec": {"x": "y", "junk": 1},
            },
        }
    }
    causes = _fields(validate_against_schema(LIST_SCHEMA, obj))
    assert ("FieldValueDuplicate", "spec.tags[2]", 'Duplicate value: "a"') in causes
    assert any(c[0] == "FieldValueDuplicate" and c[1] == "spec.ports[1]" for c in causes)
    assert len(causes) == 2
    pruned = prune_unknown(LIST_SCHEMA, obj)
    assert pruned["spec"]["template"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "t"},
        "spec": {"x": "y"},
    }


def test_schema_defaults() -> None:
    obj = {"spec": {"ports": [{"name": "http"}, {"name": "https", "port": 443}]}}
    apply_schema_defaults(LIST_SCHEMA, obj)
    assert obj == {
        "spec": {
            "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}],
            "replicas": 1,
            "mode": {"fast": False},
        }
    }


def test_volume_sources_tolerations_selectors_and_ids() -> None:
    pod = _pod(
        volumes=[
            {"name": "none"},
            {"name": "two", "emptyDir": {}, "secret": {"secretName": "s"}},
            {"name": "claim", "persistentVolumeClaim": {}},
            {"name": "cm", "configMap": {}},
        ],
        tolerations=[
            {"key": "k", "operator": "Sometimes"},
            {"key": "k", "operator": "Exists", "value": "v"},
            {"operator": "Equal", "value": "v"},
            {"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5},
            {"key": "k", "operator": "Exists", "effect": "Sometimes"},
        ],
        nodeSelector={"bad key!": "ok"},
        hostname="Bad_Host",
        securityContext={"runAsUser": -1},
    )
    pod["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "cm", "mountPath": "/a", "subPath": "/abs"},
        {"name": "cm", "mountPath": "/b", "subPath": "x/../y"},
    ]
    pod["spec"]["containers"][0]["securityContext"] = {"runAsGroup": 2**31}
    causes = _fields(validate_object("Pod", pod))
    expected = [
        ("FieldValueRequired", "spec.volumes[0]", "Required value: must specify a volume type"),
        (
            "FieldValueForbidden",
            "spec.volumes[1].secret",
            "Forbidden: may not specify more than 1 volume type",
        ),
        ("FieldValueRequired", "spec.volumes[2].persistentVolumeClaim.claimName", "Required value"),
        ("FieldValueRequired", "spec.volumes[3].configMap.name", "Required value"),
        (
            "FieldValueNotSupported",
            "spec.tolerations[0].operator",
            'Unsupported value: "Sometimes": supported values: "Equal", "Exists"',
        ),
        (
            "FieldValueInvalid",
            "spec.tolerations[1].operator",
            "Invalid value: \"v\": value must be empty when `operator` is 'Exists'",
        ),
        (
            "FieldValueInvalid",
            "spec.tolerations[3].effect",
            "Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set",
        ),
        (
            "FieldValueNotSupported",
            "spec.tolerations[4].effect",
            'Unsupported value: "Sometimes": supported values: "NoExecute", "NoSchedule", "PreferNoSchedule"',
        ),
        (
            "FieldValueInvalid",
            "spec.securityContext.runAsUser",
            "Invalid value: -1: must be between 0 and 2147483647, inclusive",
        ),
        (
            "FieldValueInvalid",
            "spec.containers[0].volumeMounts[0].subPath",
            'Invalid value: "/abs": must be a relative path',
        ),
        (
            "FieldValueInvalid",
            "spec.containers[0].volumeMounts[1].subPath",
            "Invalid value: \"x/../y\": must not contain '..'",
        ),
        (
            "FieldValueInvalid",
            "spec.containers[0].securityContext.runAsGroup",
            "Invalid value: 2147483648: must be between 0 and 2147483647, inclusive",
        ),
    ]
    for cause in expected:
        assert cause in causes
    assert any(c[1] == "spec.tolerations[2].operator" for c in causes)
    assert any(c[1] == "spec.nodeSelector" for c in causes)
    assert any(c[1] == "spec.hostname" for c in causes)


def test_pvc_storage_must_be_positive() -> None:
    pvc = {
        "metadata": {"name": "c"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "0Gi"}}},
    }
    assert _fields(validate_object("PersistentVolumeClaim", pvc)) == [
        (
            "FieldValueInvalid",
            "spec.resources[storage]",
            'Invalid value: "0": must be greater than zero',
        )
    ]


def test_core_events_are_validated_leniently() -> None:
    good: dict[str, Any] = {
        "apiVersion": "v1",
        "metadata": {"name": "e", "namespace": "hub"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "hub"},
        "reason": "Pulled",
    }
    assert validate_object("Event", good) == []
    elsewhere = copy.deepcopy(good)
    elsewhere["involvedObject"]["namespace"] = "other"
    assert _fields(validate_object("Event", elsewhere)) == [
        (
            "FieldValueInvalid",
            "involvedObject.namespace",
            'Invalid value: "other": does not match event.namespace',
        )
    ]
    no_object_namespace = copy.deepcopy(good)
    del no_object_namespace["involvedObject"]["namespace"]
    assert (
        _fields(validate_object("Event", no_object_namespace))[0][1] == "involvedObject.namespace"
    )
    with_time = copy.deepcopy(good)
    with_time["eventTime"] = "2026-11-24T06:00:00.000000Z"
    assert {c[1] for c in _fields(validate_object("Event", with_time))} == {
        "reportingComponent",
        "reportingInstance",
        "action",
    }


def test_events_k8s_io_are_validated_strictly() -> None:
    event = {
        "apiVersion": "events.k8s.io/v1",
        "metadata": {"name": "e", "namespace": "hub"},
        "regarding": {"kind": "Pod", "name": "p", "namespace": "hub"},
        "reason": "Pulled",
        "type": "Normal",
        "note": "pulled",
        "action": "Pulling",
        "reportingController": "example.com/kubelet",
        "reportingInstance": "node-1",
        "eventTime": "2026-11-24T06:00:00.000000Z",
    }
    assert validate_object("Event", event) == []
    bad = {
        **event,
        "type": "Odd",
        "deprecatedCount": 3,
        "eventTime": None,
        "reportingController": "",
    }
    causes = _fields(validate_object("Event", bad))
    assert ("FieldValueRequired", "eventTime", "Required value") in causes
    assert ("FieldValueInvalid", "type", 'Invalid value: "": has invalid value: Odd') in causes
    assert ("FieldValueInvalid", "count", 'Invalid value: "": needs to be unset') in causes


def test_pod_update_grace_period_deadline_and_toleration_seconds() -> None:
    old = _pod(
        activeDeadlineSeconds=100,
        terminationGracePeriodSeconds=30,
        tolerations=[
            {"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}
        ],
    )
    seconds_changed = copy.deepcopy(old)
    seconds_changed["spec"]["tolerations"][0]["tolerationSeconds"] = 10
    assert validate_object("Pod", seconds_changed, old) == []
    grace_changed = copy.deepcopy(old)
    grace_changed["spec"]["terminationGracePeriodSeconds"] = 5
    assert [c["field"] for c in validate_object("Pod", grace_changed, old)] == ["spec"]
    negative = copy.deepcopy(old)
    negative["spec"]["terminationGracePeriodSeconds"] = -1
    repaired = copy.deepcopy(old)
    repaired["spec"]["terminationGracePeriodSeconds"] = 1
    assert validate_object("Pod", repaired, negative) == []
    no_deadline = copy.deepcopy(old)
    del no_deadline["spec"]["activeDeadlineSeconds"]
    assert _fields(validate_object("Pod", no_deadline, old)) == [
        (
            "FieldValueInvalid",
            "spec.activeDeadlineSeconds",
            'Invalid value: "null": must not update from a positive integer to nil value',
        )
    ]
    longer = copy.deepcopy(old)
    longer["spec"]["activeDeadlineSeconds"] = 200
    assert _fields(validate_object("Pod", longer, old))[0][2] == (
        "Invalid value: 200: must be less than or equal to previous value"
    )
