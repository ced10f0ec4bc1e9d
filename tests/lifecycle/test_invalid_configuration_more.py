"""More invalid values a hub operator can write, found by trying: each used to be
accepted at load and create the PVC before the API server refused the pod (422), or to
break the hub later. Same contract as ``test_invalid_configuration.py``: refused with
the setting's name, nothing created, no env value echoed."""

from __future__ import annotations

import math
from typing import Any

import pytest
from kubesim.validation import validate_object
from traitlets import TraitError

from .refusals import MOUNTED, PVC, namespace_count, nothing_created, refusal

SECRET_ENV = {"value": "secret-value", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}


def affinity(operator: str, values: list[str] | None = None) -> list[dict[str, Any]]:
    expression: dict[str, Any] = {"key": "pool", "operator": operator}
    if values is not None:
        expression["values"] = values
    return [{"matchExpressions": [expression]}]


def _returns(value: Any) -> Any:
    def callable_setting(spawner: Any) -> Any:
        return value

    return callable_setting


CASES: list[tuple[str, dict[str, Any], str]] = [
    ("cpu-limit-infinite", {"cpu_limit": math.inf}, "cpu_limit"),
    ("cpu-guarantee-infinite", {"cpu_guarantee": math.inf}, "cpu_guarantee"),
    ("first-list-timeout-infinite", {"first_list_timeout": math.inf}, "first_list_timeout"),
    ("backoff-infinite", {"reflector_backoff_max": math.inf}, "reflector_backoff_max"),
    ("pod-context-callable-list", {"pod_security_context": _returns([1])}, "pod_security_context"),
    (
        "container-context-callable-str",
        {"container_security_context": _returns("privileged")},
        "container_security_context",
    ),
    ("env-value-and-value-from", {"environment": {"A": SECRET_ENV}}, "environment"),
    (
        "node-affinity-operator",
        {"node_affinity_required": affinity("Bogus", ["a"])},
        "node_affinity_required",
    ),
    (
        "node-affinity-in-without-values",
        {"node_affinity_required": affinity("In")},
        "node_affinity_required",
    ),
    (
        "node-affinity-gt-two-values",
        {"node_affinity_required": affinity("Gt", ["1", "2"])},
        "node_affinity_required",
    ),
    (
        "node-affinity-preferred-operator",
        {
            "node_affinity_preferred": [
                {"weight": 1, "preference": affinity("Maybe", ["a"])[0]}
            ]
        },
        "node_affinity_preferred",
    ),
]


@pytest.mark.parametrize(("config", "setting"), [pytest.param(c, s, id=i) for i, c, s in CASES])
async def test_refused_before_anything_is_created(
    sim: Any, make_spawner: Any, config: dict[str, Any], setting: str
) -> None:
    namespaces_before = namespace_count(sim)
    message = await refusal(make_spawner, {**PVC, **MOUNTED, **config})
    assert f"KubeSpawner.{setting}" in message, message
    assert "secret-value" not in message
    nothing_created(sim, namespaces_before)


def pod(container: dict[str, Any], spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "x", **container}], **(spec or {})},
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (pod({"env": [{"name": "A", **SECRET_ENV}]}), "spec.containers[0].env[0].valueFrom"),
        (
            pod(
                {},
                {
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": affinity("Bogus", ["a"])
                            }
                        }
                    }
                },
            ),
            "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
            ".nodeSelectorTerms[0].matchExpressions[0].operator",
        ),
    ],
)
def test_the_simulator_refuses_them_as_the_api_server_does(body: dict[str, Any], field: str) -> None:
    causes = validate_object("Pod", body)
    assert field in [c["field"] for c in causes], causes
    assert "secret-value" not in repr(causes)


@pytest.mark.parametrize(
    ("config", "setting"),
    [
        pytest.param({"extra_resource_limits": {"nvidia.com/gpu": 1.5}}, "extra_resource_limits", id="half-a-gpu"),
        pytest.param(
            {"extra_resource_guarantees": {"nvidia.com/gpu": "1"}},
            "extra_resource_limits",  # the fix: set the limit
            id="gpu-request-without-limit",
        ),
        pytest.param(
            {
                "extra_resource_guarantees": {"nvidia.com/gpu": "1"},
                "extra_resource_limits": {"nvidia.com/gpu": "2"},
            },
            "extra_resource_guarantees",
            id="gpu-request-below-limit",
        ),
    ],
)
async def test_extended_resources_are_whole_and_not_overcommitted(
    sim: Any, make_spawner: Any, config: dict[str, Any], setting: str
) -> None:
    """Extended resources (a GPU) are counted in whole units and never overcommitted:
    the API server refuses a fraction, a request without a limit and a request that
    differs from the limit."""
    namespaces_before = namespace_count(sim)
    spawner = make_spawner(**PVC, **MOUNTED, **config)
    with pytest.raises(TraitError) as info:
        await spawner.start()
    assert f"KubeSpawner.{setting}" in str(info.value), str(info.value)
    nothing_created(sim, namespaces_before)


@pytest.mark.parametrize(
    ("resources", "field"),
    [
        ({"limits": {"nvidia.com/gpu": "1500m"}}, "spec.containers[0].resources.limits[nvidia.com/gpu]"),
        ({"requests": {"nvidia.com/gpu": "1"}}, "spec.containers[0].resources.limits"),
        (
            {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "2"}},
            "spec.containers[0].resources.requests",
        ),
    ],
)
def test_the_simulator_refuses_bad_extended_resources(resources: dict[str, Any], field: str) -> None:
    causes = validate_object("Pod", pod({"resources": resources}))
    assert field in [c["field"] for c in causes], causes


def test_fractional_native_resources_are_still_accepted() -> None:
    resources = {"limits": {"cpu": "1500m", "memory": "1.5Gi"}, "requests": {"cpu": "500m"}}
    assert validate_object("Pod", pod({"resources": resources})) == []


NEGATIVE_SCRATCH = {
    "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "-1Gi"}}],
    "volume_mounts": [{"name": "scratch", "mountPath": "/scratch"}],
}


async def test_a_negative_empty_dir_size_is_refused(sim: Any, make_spawner: Any) -> None:
    namespaces_before = namespace_count(sim)
    with pytest.raises(TraitError, match=r"KubeSpawner\.volumes"):
        spawner = make_spawner(storage_pvc_ensure=True, storage_capacity="1Gi", **NEGATIVE_SCRATCH)
        await spawner.start()
    nothing_created(sim, namespaces_before)
    body = pod({}, {"volumes": NEGATIVE_SCRATCH["volumes"]})
    fields = [c["field"] for c in validate_object("Pod", body)]
    assert "spec.volumes[0].emptyDir.sizeLimit" in fields
