"""Bad configuration is refused before anything is created.

Each row is one invalid value a hub operator can write. Some are refused when the hub
loads its configuration, the others by the checks ``start()`` runs on the final objects
before its first create; either way the error names the setting, and the simulator (which
applies the real API server's rules) holds no pod, PVC, Secret, Service or new namespace
afterwards. Without these checks a third of the rows failed only after the PVC existed
(as a 422 or 403 from the API server) and another third were accepted and broke later
(hot loops, crash loops, requests without timeouts, group 0).
"""

from __future__ import annotations

from typing import Any

import pytest
from traitlets import TraitError

from .conftest import NAMESPACE
from .refusals import MOUNTED, PVC, namespace_count, nothing_created, refusal

SIDE = {"name": "side", "image": "busybox"}


def _gids_as_string(spawner: Any) -> str:
    return "100"


# (id, config, the setting the error must name)
CASES: list[tuple[str, dict[str, Any], str]] = [
    # numeric settings
    ("backoff-zero", {"reflector_backoff_max": 0}, "reflector_backoff_max"),
    ("backoff-negative", {"reflector_backoff_max": -1}, "reflector_backoff_max"),
    ("events-per-object-negative", {"events_per_object_limit": -1}, "events_per_object_limit"),
    ("events-total-negative", {"events_total_limit": -1}, "events_total_limit"),
    ("start-timeout-negative", {"start_timeout": -5}, "start_timeout"),
    ("stop-timeout-negative", {"stop_timeout": -1}, "stop_timeout"),
    ("request-timeout-zero", {"k8s_api_request_timeout": 0}, "k8s_api_request_timeout"),
    ("request-timeout-negative", {"k8s_api_request_timeout": -1}, "k8s_api_request_timeout"),
    (
        "retry-timeout-negative",
        {"k8s_api_request_retry_timeout": -1},
        "k8s_api_request_retry_timeout",
    ),
    ("concurrency-zero", {"k8s_api_max_concurrent_requests": 0}, "k8s_api_max_concurrent_requests"),
    ("grace-negative", {"delete_grace_period": -1}, "delete_grace_period"),
    ("watch-timeout-zero", {"reflector_watch_timeout": 0}, "reflector_watch_timeout"),
    ("idle-timeout-zero", {"reflector_idle_timeout": 0}, "reflector_idle_timeout"),
    ("page-size-zero", {"reflector_list_page_size": 0}, "reflector_list_page_size"),
    ("first-list-negative", {"first_list_timeout": -1}, "first_list_timeout"),
    ("slow-frequency-zero", {"slow_spawn_message_frequency": 0}, "slow_spawn_message_frequency"),
    ("pull-tolerance-negative", {"image_pull_error_tolerance": -1}, "image_pull_error_tolerance"),
    ("port-too-high", {"port": 70000}, "port"),
    ("port-negative", {"port": -1}, "port"),
    ("uid-negative", {"uid": -1}, "uid"),
    ("uid-too-high", {"uid": 2**31}, "uid"),
    ("gid-negative", {"gid": -3}, "gid"),
    ("fs-gid-negative", {"fs_gid": -5}, "fs_gid"),
    ("supplemental-negative", {"supplemental_gids": [-1]}, "supplemental_gids"),
    ("supplemental-callable-string", {"supplemental_gids": _gids_as_string}, "supplemental_gids"),
    ("cpu-limit-negative", {"cpu_limit": -1.0}, "cpu_limit"),
    ("cpu-guarantee-negative", {"cpu_guarantee": -0.5}, "cpu_guarantee"),
    ("cpu-limit-below-1m", {"cpu_limit": 0.0001}, "cpu_limit"),
    ("mem-limit-negative", {"mem_limit": "-1G"}, "mem_limit"),
    ("mem-guarantee-negative", {"mem_guarantee": "-2G"}, "mem_guarantee"),
    # quantities that only clash together
    ("cpu-request-above-limit", {"cpu_guarantee": 4.0, "cpu_limit": 2.0}, "cpu_guarantee"),
    ("mem-request-above-limit", {"mem_guarantee": "4G", "mem_limit": "2G"}, "mem_guarantee"),
    (
        "extra-limit-negative",
        {"extra_resource_limits": {"nvidia.com/gpu": "-1"}},
        "extra_resource_limits",
    ),
    (
        "extra-request-above-limit",
        {
            "extra_resource_guarantees": {"nvidia.com/gpu": "2"},
            "extra_resource_limits": {"nvidia.com/gpu": "1"},
        },
        "extra_resource_guarantees",
    ),
    # enums
    ("pull-policy", {"image_pull_policy": "Sometimes"}, "image_pull_policy"),
    (
        "extra-container-pull-policy",
        {"extra_container_config": {"imagePullPolicy": "Sometimes"}},
        "extra_container_config",
    ),
    ("toleration-operator", {"tolerations": [{"key": "a", "operator": "Maybe"}]}, "tolerations"),
    (
        "toleration-effect",
        {"tolerations": [{"key": "a", "operator": "Exists", "effect": "Sometimes"}]},
        "tolerations",
    ),
    (
        "toleration-exists-value",
        {"tolerations": [{"key": "a", "operator": "Exists", "value": "v"}]},
        "tolerations",
    ),
    ("toleration-empty-key", {"tolerations": [{"operator": "Equal", "value": "v"}]}, "tolerations"),
    (
        "toleration-seconds",
        {
            "tolerations": [
                {"key": "a", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5}
            ]
        },
        "tolerations",
    ),
    ("restart-policy", {"extra_pod_config": {"restartPolicy": "Sometimes"}}, "extra_pod_config"),
    ("dns-policy", {"extra_pod_config": {"dnsPolicy": "Whatever"}}, "extra_pod_config"),
    (
        "termination-grace",
        {"extra_pod_config": {"terminationGracePeriodSeconds": -1}},
        "extra_pod_config",
    ),
    ("active-deadline", {"extra_pod_config": {"activeDeadlineSeconds": 0}}, "extra_pod_config"),
    ("access-modes-empty", {**PVC, "storage_access_modes": []}, "storage_access_modes"),
    ("access-mode", {**PVC, "storage_access_modes": ["ReadSometimes"]}, "storage_access_modes"),
    # ports
    (
        "extra-container-port",
        {"extra_container_config": {"ports": [{"name": "notebook-port", "containerPort": 70000}]}},
        "extra_container_config",
    ),
    (
        "sidecar-port-zero",
        {"extra_containers": [{**SIDE, "ports": [{"containerPort": 0}]}]},
        "extra_containers",
    ),
    (
        "sidecar-port-name",
        {
            "extra_containers": [
                {**SIDE, "ports": [{"containerPort": 9000, "name": "a-very-long-port-name"}]}
            ]
        },
        "extra_containers",
    ),
    (
        "sidecar-host-port",
        {"extra_containers": [{**SIDE, "ports": [{"containerPort": 90, "hostPort": 70000}]}]},
        "extra_containers",
    ),
    # names
    (
        "volume-duplicate",
        {"volumes": [{"name": "a", "emptyDir": {}}, {"name": "a", "emptyDir": {}}]},
        "volumes",
    ),
    ("volume-name", {"volumes": [{"name": "Bad_Name", "emptyDir": {}}]}, "volumes"),
    ("volume-no-source", {"volumes": [{"name": "a"}]}, "volumes"),
    (
        "volume-two-sources",
        {"volumes": [{"name": "a", "emptyDir": {}, "secret": {"secretName": "s"}}]},
        "volumes",
    ),
    (
        "volume-claim-empty",
        {"volumes": [{"name": "a", "persistentVolumeClaim": {"claimName": ""}}]},
        "volumes",
    ),
    (
        "mount-unknown-volume",
        {"volume_mounts": [{"name": "nowhere", "mountPath": "/x"}]},
        "volume_mounts",
    ),
    (
        "mount-duplicate-path",
        {
            **MOUNTED,
            "volume_mounts": [
                {"name": "home", "mountPath": "/x"},
                {"name": "home", "mountPath": "/x"},
            ],
        },
        "volume_mounts",
    ),
    (
        "mount-absolute-subpath",
        {**MOUNTED, "volume_mounts": [{"name": "home", "mountPath": "/x", "subPath": "/etc"}]},
        "volume_mounts",
    ),
    (
        "sidecar-named-notebook",
        {"extra_containers": [{**SIDE, "name": "notebook"}]},
        "extra_containers",
    ),
    ("init-container-name", {"init_containers": [{**SIDE, "name": "Init_1"}]}, "init_containers"),
    ("init-container-no-image", {"init_containers": [{"name": "init"}]}, "init_containers"),
    ("image-empty", {"image": ""}, "image"),
    ("image-whitespace", {"image": " example.org/lab:1"}, "image"),
    ("env-name", {"environment": {"A=B": "secret-value"}}, "environment"),
    ("node-selector-key", {"node_selector": {"bad key": "x"}}, "node_selector"),
    ("node-selector-value", {"node_selector": {"pool": "not a label"}}, "node_selector"),
    ("pull-secret-empty", {"image_pull_secrets": [""]}, "image_pull_secrets"),
    ("service-account-name", {"service_account": "Bad_Account"}, "service_account"),
    ("service-account-missing", {"service_account": "nobody-here"}, "service_account"),
    ("priority-class", {"priority_class_name": "Not Valid"}, "priority_class_name"),
    ("hostname", {"extra_pod_config": {"hostname": "Bad_Host"}}, "extra_pod_config"),
    (
        "container-run-as-negative",
        {"container_security_context": {"runAsUser": -1}},
        "container_security_context",
    ),
    ("pod-fs-group-negative", {"pod_security_context": {"fsGroup": -1}}, "pod_security_context"),
    ("pvc-storage-zero", {**PVC, "storage_capacity": "0"}, "storage_capacity"),
    ("pvc-storage-negative", {**PVC, "storage_capacity": "-1Gi"}, "storage_capacity"),
    ("pvc-storage-class", {**PVC, "storage_class": "Fast Disks"}, "storage_class"),
    (
        "pvc-selector-operator",
        {**PVC, "storage_selector": {"matchExpressions": [{"key": "a", "operator": "Maybe"}]}},
        "storage_selector",
    ),
    ("pvc-name-template", {**PVC, "pvc_name_template": "Claim_{username}"}, "pvc_name_template"),
    ("pod-name-template", {"pod_name_template": "{username}_pod"}, "pod_name_template"),
    (
        "service-name",
        {"services_enabled": True, "pod_name_template": "1-{username}"},
        "pod_name_template",
    ),
    ("extra-label-value", {"extra_labels": {"team": "not a label"}}, "extra_labels"),
    (
        "user-namespace",
        {"enable_user_namespaces": True, "user_namespace_template": "NS_{username}"},
        "user_namespace_template",
    ),
]


def test_the_table_is_large_and_distinct() -> None:
    assert len(CASES) >= 70
    assert len({case_id for case_id, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("config", "setting"), [pytest.param(c, s, id=i) for i, c, s in CASES])
async def test_invalid_value_refused_before_anything_is_created(
    sim: Any, make_spawner: Any, config: dict[str, Any], setting: str
) -> None:
    namespaces_before = namespace_count(sim)
    message = await refusal(make_spawner, config)
    assert f"KubeSpawner.{setting}" in message or f"{setting} must" in message, message
    assert "secret-value" not in message  # env values are never echoed
    nothing_created(sim, namespaces_before)
    assert NAMESPACE == "default"


async def test_a_pod_over_the_request_limit_is_refused_before_the_pvc(
    sim: Any, make_spawner: Any
) -> None:
    namespaces_before = namespace_count(sim)
    spawner = make_spawner(environment={"BIG": "x" * (4 * 1024 * 1024)}, **PVC)
    with pytest.raises(TraitError) as info:
        await spawner.start()
    message = str(info.value)
    assert "KubeSpawner.environment" in message and "3145728" in message
    assert "xxxx" not in message
    nothing_created(sim, namespaces_before)
