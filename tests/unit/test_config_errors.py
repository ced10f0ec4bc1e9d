"""Bad configuration is reported when the hub loads it (or before anything is
created), naming the setting, the value, what is wrong and how to fix it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import pytest
from traitlets import TraitError

from async_kubespawner.traits import SpawnerConfigError
from tests.unit.spawner_fakes import make_spawner

# (config, setting named, text showing what is wrong, text of the fix)
LOAD_TIME_ERRORS = [
    ({"mem_limit": "lots"}, "mem_limit = 'lots'", "not a memory size", "suffix K, M, G or T"),
    ({"mem_guarantee": "1X"}, "mem_guarantee", "not a memory size", "'2G'"),
    (
        {"extra_resource_limits": {"nvidia.com/gpu": "one"}},
        "extra_resource_limits",
        "'nvidia.com/gpu' is not a Kubernetes quantity",
        "500m",
    ),
    (
        {"extra_resource_guarantees": {"cpu": "fast"}},
        "extra_resource_guarantees",
        "'cpu' is not a Kubernetes quantity",
        "2Gi",
    ),
    ({"storage_capacity": "big"}, "storage_capacity = 'big'", "not a Kubernetes quantity", "10Gi"),
    (
        {"pod_name_template": "jupyter-{user}"},
        "pod_name_template = 'jupyter-{user}'",
        "unknown template field {user}",
        "{username}",
    ),
    ({"pvc_name_template": "claim-{username"}, "pvc_name_template", "not a valid template", "{{"),
    (
        {"user_namespace_template": "ns-{pod_name}"},
        "user_namespace_template",
        "unknown template field {pod_name}",
        "{hubnamespace}",
    ),
    (
        {"dns_name_template": "{pod}.svc"},
        "dns_name_template",
        "unknown template field {pod}",
        "{name}",
    ),
    (
        {"volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "{pvc}"}}]},
        "volumes[0]['persistentVolumeClaim']['claimName']",
        "unknown template field {pvc}",
        "{pvc_name}",
    ),
    ({"extra_labels": {"team": "{group}"}}, "extra_labels['team']", "{group}", "{username}"),
    (
        {"extra_labels": {"bad key!": "x"}},
        "extra_labels",
        "'bad key!' is not a valid label key",
        "DNS-subdomain prefix",
    ),
    (
        {"extra_labels": {"team": "data science"}},
        "extra_labels",
        "'data science' of 'team' is not a valid label value",
        "63 characters",
    ),
    (
        {"storage_extra_labels": {"tier": "-x"}},
        "storage_extra_labels",
        "'-x' of 'tier' is not a valid label value",
        "63 characters",
    ),
    (
        {"user_namespace_labels": {"a": "b" * 64}},
        "user_namespace_labels",
        "is not a valid label value",
        "63 characters",
    ),
    ({"extra_labels": {"n": 5}}, "extra_labels", "is a int, not a string", "Quote the value"),
    (
        {"storage_extra_annotations": {"note": "{nope}"}},
        "storage_extra_annotations['note']",
        "unknown template field {nope}",
        "{username}",
    ),
    (
        {"user_namespace_annotations": {"bad key!": "x"}},
        "user_namespace_annotations",
        "'bad key!' is not a valid label key",
        "DNS-subdomain prefix",
    ),
    (
        {"extra_annotations": {"n": 5}},
        "extra_annotations",
        "is a int, not a string",
        "Quote the value",
    ),
    (
        {"common_labels": {"app": "jupyter hub"}},
        "common_labels",
        "'jupyter hub' of 'app' is not a valid label value",
        "63 characters",
    ),
    (
        {"component_label": ""},
        "component_label",
        "not a valid, non-empty label value",
        "63 characters",
    ),
    (
        {"tolerations": [{"key": "gpu", "operatr": "Exists"}]},
        "tolerations",
        "unknown field 'operatr'",
        "Toleration",
    ),
    ({"tolerations": ["gpu"]}, "tolerations", "expected a mapping", "Toleration"),
    (
        {"tolerations": [{"key": "gpu", "tolerationSeconds": "ten"}]},
        "tolerations",
        "tolerationSeconds: expected int",
        "Toleration",
    ),
    (
        {"node_affinity_required": [{"matchExpressions": {"key": "a"}}]},
        "node_affinity_required",
        "expected a list",
        "NodeSelectorTerm",
    ),
    (
        {"pod_anti_affinity_preferred": [{"weight": 1}]},
        "pod_anti_affinity_preferred",
        "pod_affinity_term",
        "WeightedPodAffinityTerm",
    ),
    ({"volumes": [{"emptyDir": {}}]}, "volumes", "`name`, must not be `None`", "Volume"),
    (
        {"volume_mounts": [{"name": "home"}]},
        "volume_mounts",
        "`mount_path`, must not be `None`",
        "VolumeMount",
    ),
    (
        {"volume_mounts": {"home": {"name": "home", "mountpath": "/home"}}},
        "volume_mounts",
        "unknown field 'mountpath'",
        "VolumeMount",
    ),
    (
        {"init_containers": [{"image": "busybox"}]},
        "init_containers",
        "`name`, must not be `None`",
        "Container",
    ),
    (
        {"extra_container_config": {"imagee": "x"}},
        "extra_container_config",
        "'imagee' is not a field of a Container",
        "image",
    ),
    ({"extra_pod_config": {"restartPolicy": 5}}, "extra_pod_config", "expected str", "PodSpec"),
    (
        {"lifecycle_hooks": {"postStrt": {}}},
        "lifecycle_hooks",
        "'postStrt' is not a field",
        "postStart",
    ),
    (
        {"container_security_context": {"run_as_user": 1000}},
        "container_security_context",
        "'run_as_user' is not a camelCase field",
        "'runAsUser'",
    ),
    (
        {"pod_security_context": {"fsGroup": "users"}},
        "pod_security_context",
        "expected int",
        "PodSecurityContext",
    ),
    (
        {"image_pull_policy": "Sometimes"},
        "image_pull_policy = 'Sometimes'",
        "not an image pull policy",
        "IfNotPresent",
    ),
    (
        {"image_pull_secrets": [{"nam": "regcred"}]},
        "image_pull_secrets",
        "unknown field 'nam'",
        '{"name"',
    ),
    (
        {"storage_access_modes": ["RWO"]},
        "storage_access_modes",
        "'RWO' is not an access mode",
        "ReadWriteOnce",
    ),
    (
        {"storage_selector": {"matchLabel": {"a": "b"}}},
        "storage_selector",
        "unknown field 'matchLabel'",
        "LabelSelector",
    ),
]


@pytest.mark.parametrize(("config", "setting", "problem", "fix"), LOAD_TIME_ERRORS)
def test_error_when_config_loads(config: dict, setting: str, problem: str, fix: str) -> None:
    # The hub still builds the spawner (running servers can be polled and stopped);
    # the error is raised for the spawn, before anything is created.
    spawner = make_spawner(config=config)
    with pytest.raises(SpawnerConfigError) as info:
        spawner.check_configuration()
    message = str(info.value)
    assert message.startswith("c.KubeSpawner."), message
    assert setting in message, message
    assert problem in message, message
    assert fix in message, message


@pytest.mark.parametrize(
    "setting", ["extra_annotations", "storage_extra_annotations", "user_namespace_annotations"]
)
def test_annotation_values_need_not_be_label_values(setting: str) -> None:
    value = {"note": "Alice's lab, see https://example.org/docs"}
    assert getattr(make_spawner(config={setting: value}), setting) == value


@pytest.mark.parametrize(
    ("config", "trait"),
    [
        ({"slug_scheme": "md5"}, "slug_scheme"),
        ({"cpu_limit": "lots"}, "cpu_limit"),
        ({"uid": "root"}, "uid"),
        ({"privileged": "yes"}, "privileged"),
        ({"security_profile": "strict"}, "security_profile"),
        ({"storage_access_modes": 5}, "storage_access_modes"),
    ],
)
def test_wrong_types_name_the_setting(config: dict, trait: str) -> None:
    spawner = make_spawner(config=config)
    with pytest.raises(TraitError, match=trait):
        spawner.check_configuration()


# Problems that show only once the user is known: reported by check_configuration(),
# which the lifecycle calls before creating anything (and get_*_manifest call too).
def test_template_making_an_invalid_pod_name() -> None:
    spawner = make_spawner(
        "Alice@Example", config={"pod_name_template": "jupyter-{unescaped_username}"}
    )
    with pytest.raises(SpawnerConfigError) as info:
        spawner.check_configuration()
    message = str(info.value)
    assert "pod_name_template = 'jupyter-{unescaped_username}'" in message
    assert "'jupyter-Alice@Example', which is not a valid pod name" in message
    assert "{safe_username}" in message
    with pytest.raises(SpawnerConfigError):
        asyncio.run(spawner.get_pod_manifest())


def test_template_making_an_invalid_label_value() -> None:
    spawner = make_spawner("a b", config={"extra_labels": {"who": "{unescaped_username}"}})
    with pytest.raises(SpawnerConfigError) as info:
        spawner.get_service_manifest({"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u"})
    message = str(info.value)
    assert "c.KubeSpawner.extra_labels" in message
    assert "label 'who' gets the value 'a b'" in message
    assert "{safe_username}" in message


def test_user_namespace_template_making_an_invalid_namespace() -> None:
    spawner = make_spawner(
        "Alice",
        config={"enable_user_namespaces": True, "user_namespace_template": "{unescaped_username}"},
    )
    with pytest.raises(SpawnerConfigError, match="not a valid namespace name"):
        spawner.get_namespace_manifest()


def test_service_name_must_be_a_dns_label() -> None:
    spawner = make_spawner(config={"services_enabled": True, "pod_name_template": "1-{username}"})
    with pytest.raises(SpawnerConfigError, match="not a valid Service name"):
        spawner.check_configuration()
    # without a Service the same name is a fine pod name
    make_spawner(config={"pod_name_template": "1-{username}"}).check_configuration()


def test_callable_returning_a_non_integer_uid() -> None:
    spawner = make_spawner(config={"uid": lambda spawner: "1000"})
    with pytest.raises(
        SpawnerConfigError, match=r"c.KubeSpawner.uid = '1000': the callable returned"
    ):
        asyncio.run(spawner.get_pod_manifest())


@pytest.mark.parametrize(
    ("config", "setting"),
    [
        ({"privileged": True}, "privileged"),
        ({"container_security_context": {"privileged": True}}, "container_security_context"),
        ({"allow_privilege_escalation": True}, "allow_privilege_escalation"),
        (
            {
                "allow_privilege_escalation": None,
                "container_security_context": {"allowPrivilegeEscalation": True},
            },
            "container_security_context",
        ),
        ({"uid": 0}, "uid"),
        ({"container_security_context": {"runAsUser": 0}}, "container_security_context"),
        ({"pod_security_context": {"runAsUser": 0}}, "pod_security_context"),
        ({"uid": lambda spawner: 0}, "uid"),
        ({"pod_security_context": {"runAsNonRoot": False}}, "pod_security_context"),
        (
            {"container_security_context": {"capabilities": {"add": ["SYS_ADMIN"]}}},
            "container_security_context",
        ),
    ],
)
def test_restricted_profile_refuses_contradictions(config: dict, setting: str) -> None:
    spawner = make_spawner(config={"security_profile": "restricted", **config})
    with pytest.raises(SpawnerConfigError) as info:
        asyncio.run(spawner.get_pod_manifest())
    message = str(info.value)
    assert message.startswith(f"c.KubeSpawner.{setting}")
    assert "contradicts security_profile 'restricted'" in message
    assert "or set security_profile = ''" in message


def test_restricted_profile_allows_net_bind_service() -> None:
    spawner = make_spawner(
        config={
            "security_profile": "restricted",
            "container_security_context": {"capabilities": {"add": ["NET_BIND_SERVICE"]}},
        }
    )
    pod = asyncio.run(spawner.get_pod_manifest())
    # the profile's drop ALL wins; the allowed add is kept
    # a plain dict, as upstream leaves it (the model's type says V1SecurityContext)
    capabilities = cast(dict[str, Any], pod.spec.containers[0].security_context)["capabilities"]
    assert (capabilities["add"], capabilities["drop"]) == (["NET_BIND_SERVICE"], ["ALL"])


def test_modify_pod_hook_returning_none() -> None:
    spawner = make_spawner(config={"modify_pod_hook": lambda spawner, pod: None})
    with pytest.raises(SpawnerConfigError, match="returned None instead of the pod"):
        asyncio.run(spawner.prepare_pod())


def test_environment_errors_never_show_the_value(caplog: pytest.LogCaptureFixture) -> None:
    secret = "{not-a-field} hunter2"
    spawner = make_spawner(config={"environment": {"PASSWORD": secret}})
    with caplog.at_level(logging.DEBUG):
        env = spawner.get_env()
    assert env["PASSWORD"] == secret  # kept literally, as before templating existed
    assert "hunter2" not in caplog.text
    assert "PASSWORD" in caplog.text


def test_error_type_is_a_trait_error() -> None:
    assert issubclass(SpawnerConfigError, TraitError)
    error = SpawnerConfigError("environment", "s3cret", "bad", "Fix it.")
    assert "s3cret" not in str(error)
