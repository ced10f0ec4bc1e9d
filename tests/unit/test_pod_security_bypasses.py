"""Pod fields that reach the kubelet by another way than the field the standard names.

The API server copies a seccomp annotation into the empty ``seccompProfile`` field it
stands for when it creates a pod (its version-skew rule), so an annotation set by
``extra_annotations`` or ``modify_pod_hook`` is the field the kubelet applies; and the
Kubernetes 1.34 baseline adds a control on probes and lifecycle hooks that name a host.
Each case here passed the checker before it knew about them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from async_kubespawner.objects.pod_security import check_pod
from tests.unit.restricted_pods import compliant

POD_SECCOMP = "seccomp.security.alpha.kubernetes.io/pod"
CONTAINER_SECCOMP = "container.seccomp.security.alpha.kubernetes.io/"


def baseline_default() -> dict[str, Any]:
    """The default pod: no security fields at all (what baseline accepts)."""
    return {
        "metadata": {"name": "p", "annotations": {}},
        "spec": {
            "containers": [
                {"name": "notebook", "image": "x"},
                {"name": "side", "image": "x"},
            ],
            "initContainers": [{"name": "init", "image": "x"}],
        },
    }


def controls(pod: dict[str, Any], level: str) -> set[str]:
    return {v.control for v in check_pod(pod, level)}


@pytest.mark.parametrize("value", ["unconfined"])
def test_pod_seccomp_annotation_without_a_field_counts_as_the_field(value: str) -> None:
    pod = baseline_default()
    pod["metadata"]["annotations"][POD_SECCOMP] = value
    violations = check_pod(pod, "baseline")
    assert [(v.control, v.field, v.value) for v in violations] == [
        ("Seccomp", f"metadata.annotations[{POD_SECCOMP!r}]", value)
    ]


@pytest.mark.parametrize("name", ["notebook", "side", "init"])
def test_container_seccomp_annotation_without_a_field_counts_as_the_field(name: str) -> None:
    pod = baseline_default()
    pod["metadata"]["annotations"][CONTAINER_SECCOMP + name] = "unconfined"
    assert controls(pod, "baseline") == {"Seccomp"}


def test_container_annotation_under_restricted_when_only_the_pod_sets_seccomp() -> None:
    """restricted lets a container leave seccompProfile out when the pod sets it; the
    container's annotation then becomes its field, Unconfined."""
    pod = compliant()
    pod["spec"]["containers"][1]["securityContext"].pop("seccompProfile")
    assert check_pod(pod, "restricted") == []
    pod["metadata"]["annotations"][CONTAINER_SECCOMP + "side"] = "unconfined"
    assert controls(pod, "restricted") == {"Seccomp"}
    assert controls(pod, "baseline") == {"Seccomp"}


def test_annotations_do_not_override_a_field_that_is_set() -> None:
    """The API server copies an annotation only into an empty field."""
    pod = compliant()
    pod["metadata"]["annotations"][POD_SECCOMP] = "unconfined"
    pod["metadata"]["annotations"][CONTAINER_SECCOMP + "side"] = "unconfined"
    assert check_pod(pod, "restricted") == []


@pytest.mark.parametrize("value", ["runtime/default", "docker/default", "localhost/p.json"])
def test_allowed_seccomp_annotations_satisfy_restricted(value: str) -> None:
    """Conversely a RuntimeDefault/Localhost annotation is the field restricted requires."""
    pod = compliant()
    pod["spec"]["securityContext"].pop("seccompProfile")
    for container in pod["spec"]["containers"] + pod["spec"]["initContainers"]:
        container["securityContext"].pop("seccompProfile")
    assert "Seccomp" in controls(pod, "restricted")
    pod["metadata"]["annotations"][POD_SECCOMP] = value
    assert check_pod(pod, "restricted") == []


HOST_FIELDS = [
    ("livenessProbe", "httpGet"),
    ("readinessProbe", "httpGet"),
    ("startupProbe", "tcpSocket"),
    ("lifecycle.postStart", "httpGet"),
    ("lifecycle.preStop", "tcpSocket"),
]


@pytest.mark.parametrize(("where", "handler"), HOST_FIELDS)
@pytest.mark.parametrize("container", [("containers", 0), ("containers", 1), ("initContainers", 0)])
def test_probes_and_lifecycle_hooks_may_not_name_a_host(
    where: str, handler: str, container: tuple[str, int]
) -> None:
    pod = baseline_default()
    target = pod["spec"][container[0]][container[1]]
    for part in where.split("."):
        target = target.setdefault(part, {})
    target[handler] = {"host": "169.254.169.254", "port": 80}
    violations = check_pod(pod, "baseline")
    assert [(v.control, v.level, v.value) for v in violations] == [
        ("Host Probes / Lifecycle Hooks", "baseline", "169.254.169.254")
    ]
    assert violations[0].field == (
        f"spec.{container[0]}[{container[1]}].{where}.{handler}.host"
    )
    assert "Host Probes / Lifecycle Hooks" in controls(pod, "restricted")
    ok = copy.deepcopy(pod)
    # an empty host (the pod's IP) is allowed
    target_ok = ok["spec"][container[0]][container[1]]
    for part in where.split("."):
        target_ok = target_ok[part]
    target_ok[handler]["host"] = ""
    assert check_pod(ok, "baseline") == []


def test_a_probe_header_is_never_echoed() -> None:
    """Only the host is reported: probe headers can carry credentials."""
    pod = baseline_default()
    pod["spec"]["containers"][0]["livenessProbe"] = {
        "httpGet": {
            "host": "10.0.0.1",
            "port": 80,
            "httpHeaders": [{"name": "Authorization", "value": "Bearer s3cr3t"}],
        }
    }
    text = " ".join(v.describe() + v.fix for v in check_pod(pod, "baseline"))
    assert "10.0.0.1" in text and "s3cr3t" not in text
