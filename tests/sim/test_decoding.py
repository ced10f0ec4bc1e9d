"""Wrongly typed bodies are the real decoder's 400, and nothing downstream ever crashes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kubesim.decoding import decode_error, drop_nulls
from kubesim.defaulting import default_object
from kubesim.json_values import clone_json
from kubesim.patching import PatchError, apply_strategic_merge_patch
from kubesim.validation import validate_object

SAMPLES = Path(__file__).parent / "samples"


def _pod(**container: Any) -> dict:
    return {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "x:1", **container}]},
    }


@pytest.mark.parametrize(
    ("kind", "obj", "detail"),
    [
        (
            "Pod",
            {"metadata": {"name": 5}},
            "json: cannot unmarshal number 5 into Go struct field ObjectMeta.metadata.name of type string",
        ),
        (
            "Pod",
            {"metadata": {"labels": ["a"]}},
            "json: cannot unmarshal array into Go struct field ObjectMeta.metadata.labels of type "
            "map[string]string",
        ),
        (
            "Pod",
            {"spec": {"containers": "c"}},
            "json: cannot unmarshal string into Go struct field PodSpec.spec.containers of type []v1.Container",
        ),
        (
            "Pod",
            {"spec": {"containers": [1]}},
            "json: cannot unmarshal number 1 into Go struct field PodSpec.spec.containers of type v1.Container",
        ),
        (
            "Pod",
            _pod(ports=[{"containerPort": "8888"}]),
            "json: cannot unmarshal string into Go struct field ContainerPort.spec.containers.ports.containerPort "
            "of type int32",
        ),
        (
            "Pod",
            _pod(ports=[{"containerPort": 1.5}]),
            "json: cannot unmarshal number 1.5 into Go struct field ContainerPort.spec.containers.ports."
            "containerPort of type int32",
        ),
        (
            "Pod",
            {"spec": {"automountServiceAccountToken": "no"}},
            "json: cannot unmarshal string into Go struct field PodSpec.spec.automountServiceAccountToken of "
            "type bool",
        ),
        (
            "Pod",
            _pod(resources={"limits": {"memory": "lots"}}),
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        ),
        ("Secret", {"data": {"k": "not base64!"}}, "illegal base64 data at input byte 3"),
        ("Secret", {"data": {"k": "abc"}}, "illegal base64 data at input byte 0"),
        (
            "Service",
            {"spec": {"ports": [{"port": 80, "targetPort": True}]}},
            "json: cannot unmarshal bool into Go value of type int32",
        ),
        ("Pod", [], "json: cannot unmarshal array into Go value of type v1.Pod"),
    ],
)
def test_type_errors_are_the_decoders_400(kind: str, obj: Any, detail: str) -> None:
    assert (
        decode_error(kind, obj) == f'{kind} in version "v1" cannot be handled as a {kind}: {detail}'
    )


def test_well_typed_bodies_decode() -> None:
    assert (
        decode_error(
            "Pod", _pod(ports=[{"containerPort": 8888.0}], resources={"limits": {"cpu": 1}})
        )
        is None
    )
    assert decode_error("Secret", {"data": {"k": "czNjcjN0", "e": ""}}) is None
    assert (
        decode_error("Service", {"spec": {"ports": [{"port": 80, "targetPort": "http"}]}}) is None
    )
    assert (
        decode_error("Widget", {"metadata": {"name": "w"}, "spec": {"anything": [1, "x"]}}) is None
    )


def test_nulls_decode_to_zero_values() -> None:
    pod = {
        "metadata": {"name": "p", "labels": {"a": None}, "annotations": None, "finalizers": [None]},
        "spec": {"nodeSelector": None, "containers": [None, {"name": "c", "image": None}]},
    }
    assert decode_error("Pod", pod) is None
    drop_nulls("Pod", pod)
    assert pod == {
        "metadata": {"name": "p", "labels": {"a": ""}, "finalizers": [""]},
        "spec": {"containers": [{}, {"name": "c"}]},
    }


def _paths(value: Any, path: tuple = ()) -> list[tuple]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


def _replaced(body: dict, path: tuple, value: Any) -> dict:
    copy = clone_json(body)
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return copy


ODD_VALUES = [None, 1, 1.5, "s", [], {}, [None], ["x"], {"k": None}, True]


def test_no_body_can_crash_defaulting_validation_or_patching() -> None:
    """Every field of every recorded body replaced by every odd JSON value: never a 500."""
    cases = 0
    for file_name, kind in [
        ("pod-defaulted.json", "Pod"),
        ("service-defaulted.json", "Service"),
        ("secret-defaulted.json", "Secret"),
        ("pvc-defaulted.json", "PersistentVolumeClaim"),
    ]:
        for entry in json.loads((SAMPLES / file_name).read_text()).values():
            if not isinstance(entry, dict) or "request" not in entry:
                continue
            stored = entry["response"]["body"]
            for body in (entry["request"]["body"], stored):
                for path in _paths(body)[1:]:
                    for odd in ODD_VALUES:
                        obj = _replaced(body, path, odd)
                        cases += 1
                        default_object(kind, obj, allocate_cluster_ip=lambda: "10.0.0.1")
                        assert isinstance(validate_object(kind, obj), list)
                        assert isinstance(validate_object(kind, obj, stored), list)
                        try:
                            apply_strategic_merge_patch(stored, obj, kind)
                        except PatchError as exc:
                            # 500 only where the real server answers 500 too (a bare Go error)
                            assert exc.code in (400, 422, 500)
                            assert exc.status()["code"] == exc.code
    assert cases > 3000


def test_a_null_does_not_hide_a_later_type_error() -> None:
    assert decode_error("Pod", {"metadata": {"finalizers": [None, 5]}}) == (
        'Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal number 5 into Go '
        "struct field ObjectMeta.metadata.finalizers of type string"
    )
