"""Quantities are stored in the canonical form the real server prints."""

from __future__ import annotations

from typing import Any

import pytest
from kubesim.defaulting import default_object
from kubesim.quantities import QuantityError, canonical_quantity
from kubesim.validation import validate_object


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("0.5", "500m"),
        (0.5, "500m"),
        ("1000m", "1"),
        ("1024Mi", "1Gi"),
        ("1536Mi", "1536Mi"),
        ("1.5Gi", "1536Mi"),
        ("512Mi", "512Mi"),
        ("1000", "1k"),
        ("1500", "1500"),
        ("1e3", "1e3"),
        ("1.5e3", "1500"),
        ("100Ki", "100Ki"),
        ("0.1", "100m"),
        (2, "2"),
        (1073741824, "1073741824"),
        ("0", "0"),
        ("1.0000000001", "1000000001n"),
        ("1000k", "1M"),
    ],
)
def test_canonical_form(raw: object, canonical: str) -> None:
    assert canonical_quantity(raw) == canonical


@pytest.mark.parametrize("raw", ["lots", "1GB", "", True, [1], None])
def test_unparseable(raw: object) -> None:
    with pytest.raises(QuantityError):
        canonical_quantity(raw)


def pod_with(resources: dict[str, Any]) -> dict[str, Any]:
    """A one-container pod whose container asks for ``resources``."""
    container = {"name": "c", "image": "x:1", "resources": resources}
    return {"metadata": {"name": "p"}, "spec": {"containers": [container]}}


def test_pod_and_pvc_quantities_are_stored_canonically() -> None:
    pod = pod_with(
        {"limits": {"cpu": 0.5, "memory": "1024Mi"}, "requests": {"cpu": "0.25"}}
    )
    default_object("Pod", pod, allocate_cluster_ip=lambda: "10.0.0.1")
    assert pod["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "500m", "memory": "1Gi"},
        "requests": {"cpu": "250m", "memory": "1Gi"},
    }
    pvc: dict[str, Any] = {
        "metadata": {"name": "c"}, "spec": {"resources": {"requests": {"storage": "10240Mi"}}}
    }
    default_object("PersistentVolumeClaim", pvc, allocate_cluster_ip=lambda: "10.0.0.1")
    assert pvc["spec"]["resources"]["requests"] == {"storage": "10Gi"}


def test_unparseable_quantities_are_left_for_validation() -> None:
    pod = pod_with({"limits": {"memory": "lots"}})
    default_object("Pod", pod, allocate_cluster_ip=lambda: "10.0.0.1")
    assert pod["spec"]["containers"][0]["resources"]["limits"] == {"memory": "lots"}
    assert validate_object("Pod", pod)[0]["message"].endswith(
        "quantities must match the regular "
        "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )


def test_request_over_limit_message_quotes_canonical_values() -> None:
    pod = pod_with({"limits": {"memory": "1024Mi"}, "requests": {"memory": "2048Mi"}})
    causes = validate_object("Pod", pod)
    assert causes == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "2Gi": must be less than or equal to memory limit of 1Gi',
            "field": "spec.containers[0].resources.requests",
        }
    ]
