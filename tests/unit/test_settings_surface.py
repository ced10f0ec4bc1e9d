"""The configuration surface: every upstream setting exists with its type and default."""

from __future__ import annotations

import pytest
from traitlets import Bool, Dict, Enum, Float, Integer, List, Unicode, Union

from async_kubespawner.profiles import ProfilesMixin
from async_kubespawner.traits import DEPRECATED_ALIASES, KubeSpawnerSettings
from tests.unit.spawner_fakes import make_spawner

# All 82 settings of upstream KubeSpawner 7.1, by concern.
UPSTREAM_SETTINGS = {
    "api": [
        "k8s_api_host",
        "k8s_api_ssl_ca_cert",
        "k8s_api_verify_ssl",
        "k8s_api_request_timeout",
        "k8s_api_request_retry_timeout",
    ],
    "events": [
        "events_enabled",
        "slow_spawn_message_threshold",
        "slow_spawn_message_frequency",
        "slow_spawn_message",
    ],
    "namespaces": [
        "namespace",
        "enable_user_namespaces",
        "user_namespace_template",
        "user_namespace_labels",
        "user_namespace_annotations",
    ],
    "naming": [
        "slug_scheme",
        "pod_name_template",
        "dns_name_template",
        "component_label",
        "common_labels",
        "extra_labels",
        "extra_annotations",
        "handle_legacy_names",
    ],
    "networking": [
        "ip",
        "services_enabled",
        "pod_connect_ip",
        "secret_name_template",
        "secret_mount_path",
    ],
    "hooks": ["modify_pod_hook", "after_pod_created_hook", "get_pod_url"],
    "pod": [
        "image",
        "image_pull_policy",
        "image_pull_secrets",
        "cmd",
        "working_dir",
        "node_selector",
        "tolerations",
        "node_affinity_preferred",
        "node_affinity_required",
        "pod_affinity_preferred",
        "pod_affinity_required",
        "pod_anti_affinity_preferred",
        "pod_anti_affinity_required",
        "scheduler_name",
        "priority_class_name",
        "lifecycle_hooks",
        "init_containers",
        "extra_containers",
        "extra_container_config",
        "extra_pod_config",
    ],
    "stop": ["delete_grace_period", "delete_stopped_pods"],
    "resources": ["extra_resource_guarantees", "extra_resource_limits"],
    "security": [
        "service_account",
        "automount_service_account_token",
        "uid",
        "gid",
        "fs_gid",
        "supplemental_gids",
        "privileged",
        "allow_privilege_escalation",
        "container_security_context",
        "pod_security_context",
    ],
    "storage": [
        "storage_pvc_ensure",
        "storage_capacity",
        "storage_class",
        "storage_access_modes",
        "storage_selector",
        "storage_extra_labels",
        "storage_extra_annotations",
        "pvc_name_template",
        "remember_pvc_name",
        "delete_pvc",
        "volumes",
        "volume_mounts",
    ],
    "profiles": ["profile_list", "profile_form_template", "additional_profile_form_template_paths"],
    "deprecated": ["k8s_api_threadpool_workers", "hub_connect_ip", "hub_connect_port"],
}
ALL_UPSTREAM = [name for names in UPSTREAM_SETTINGS.values() for name in names]
PROFILE_SETTINGS = set(UPSTREAM_SETTINGS["profiles"])


def test_the_list_has_all_82_upstream_settings() -> None:
    assert len(ALL_UPSTREAM) == 82 == len(set(ALL_UPSTREAM))


def test_settings_mixin_declares_every_non_profile_setting() -> None:
    declared = set(KubeSpawnerSettings.class_traits(config=True))
    missing = [n for n in ALL_UPSTREAM if n not in PROFILE_SETTINGS and n not in declared]
    assert missing == []


def test_kubespawner_has_all_82_upstream_settings() -> None:
    from async_kubespawner import KubeSpawner

    declared = set(KubeSpawner.class_traits(config=True))
    assert [n for n in ALL_UPSTREAM if n not in declared] == []


def test_profile_settings_are_left_to_the_profiles_mixin() -> None:
    # profile_list & co. belong to ProfilesMixin (profiles.py); the settings mixin must
    # not shadow them, since ProfilesMixin comes first in KubeSpawner's bases.
    assert not PROFILE_SETTINGS & set(KubeSpawnerSettings.class_traits())
    assert ProfilesMixin in __import__("async_kubespawner").KubeSpawner.__mro__


def test_every_setting_has_help_text() -> None:
    for name, trait in KubeSpawnerSettings.class_traits(config=True).items():
        assert trait.help and len(trait.help) > 20, name


T = type
DEFAULTS: list[tuple[str, type | tuple[T, ...], object]] = [
    ("k8s_api_host", Unicode, ""),
    ("k8s_api_ssl_ca_cert", Unicode, ""),
    ("k8s_api_verify_ssl", Bool, None),
    ("k8s_api_request_timeout", Integer, 3),
    ("k8s_api_request_retry_timeout", Integer, 30),
    ("events_enabled", Bool, True),
    ("slow_spawn_message_threshold", Integer, 60),
    ("slow_spawn_message_frequency", Integer, 5),
    (
        "slow_spawn_message",
        Unicode,
        "Server launch is taking longer than expected. Please be patient! "
        "Current time spent waiting: {seconds} seconds.",
    ),
    ("namespace", Unicode, "default"),
    ("enable_user_namespaces", Bool, False),
    ("user_namespace_template", Unicode, "{hubnamespace}-{username}"),
    ("user_namespace_labels", Dict, {}),
    ("user_namespace_annotations", Dict, {}),
    ("slug_scheme", Enum, "safe"),
    ("pod_name_template", Unicode, "jupyter-{user_server}"),
    ("dns_name_template", Unicode, "{name}.{namespace}.svc.cluster.local"),
    ("component_label", Unicode, "singleuser-server"),
    (
        "common_labels",
        Dict,
        {
            "app.kubernetes.io/name": "jupyterhub",
            "app.kubernetes.io/managed-by": "kubespawner",
            "app": "jupyterhub",
            "heritage": "jupyterhub",
        },
    ),
    ("extra_labels", Dict, {}),
    ("extra_annotations", Dict, {}),
    ("handle_legacy_names", Bool, True),
    ("ip", Unicode, "0.0.0.0"),
    ("services_enabled", Bool, False),
    ("pod_connect_ip", Unicode, ""),
    ("secret_name_template", Unicode, "{pod_name}"),
    ("secret_mount_path", Unicode, "/etc/jupyterhub/ssl/"),
    ("modify_pod_hook", object, None),
    ("after_pod_created_hook", object, None),
    ("get_pod_url", object, None),
    ("image", Unicode, "quay.io/jupyterhub/singleuser:latest"),
    ("image_pull_policy", Unicode, None),
    ("image_pull_secrets", Union, []),
    ("cmd", List, None),
    ("working_dir", Unicode, None),
    ("node_selector", Dict, {}),
    ("tolerations", Union, []),
    ("node_affinity_preferred", Union, []),
    ("node_affinity_required", Union, []),
    ("pod_affinity_preferred", Union, []),
    ("pod_affinity_required", Union, []),
    ("pod_anti_affinity_preferred", Union, []),
    ("pod_anti_affinity_required", Union, []),
    ("scheduler_name", Unicode, None),
    ("priority_class_name", Unicode, ""),
    ("lifecycle_hooks", Dict, {}),
    ("init_containers", Union, []),
    ("extra_containers", Union, []),
    ("extra_container_config", Dict, {}),
    ("extra_pod_config", Dict, {}),
    ("delete_grace_period", Integer, 1),
    ("delete_stopped_pods", Bool, True),
    ("extra_resource_guarantees", Dict, {}),
    ("extra_resource_limits", Dict, {}),
    ("service_account", Unicode, None),
    ("automount_service_account_token", Bool, None),
    ("uid", Union, None),
    ("gid", Union, None),
    ("fs_gid", Union, None),
    ("supplemental_gids", Union, []),
    ("privileged", Bool, False),
    ("allow_privilege_escalation", Bool, False),
    ("container_security_context", Union, {}),
    ("pod_security_context", Union, {}),
    ("storage_pvc_ensure", Bool, False),
    ("storage_capacity", Unicode, None),
    ("storage_class", Unicode, None),
    ("storage_access_modes", List, ["ReadWriteOnce"]),
    ("storage_selector", Dict, {}),
    ("storage_extra_labels", Dict, {}),
    ("storage_extra_annotations", Dict, {}),
    ("pvc_name_template", Unicode, "claim-{user_server}"),
    ("remember_pvc_name", Bool, True),
    ("delete_pvc", Bool, True),
    ("volumes", Union, []),
    ("volume_mounts", Union, []),
    ("k8s_api_threadpool_workers", Integer, 0),
    ("hub_connect_ip", Unicode, ""),
    ("hub_connect_port", Integer, 0),
    # beyond upstream
    ("api_token_in_secret", Bool, False),
    ("security_profile", Enum, ""),
    ("k8s_api_max_concurrent_requests", Integer, 100),
    ("freeze_startup_heap", Bool, True),
    ("gc_young_threshold", Integer, None),
    ("gc_burst_policy", Bool, True),
    ("stop_timeout", Integer, 60),
    ("events_per_object_limit", Integer, 100),
    ("events_total_limit", Integer, 20000),
    ("image_pull_error_tolerance", Float, 0),
    ("config_error_tolerance", Float, 10),
    ("unschedulable_tolerance", Float, 30),
    ("first_list_timeout", Float, 10),
    ("reflector_cluster_wide", Bool, None),
    ("reflector_watch_timeout", Integer, 300),
    ("reflector_idle_timeout", Float, None),
    ("reflector_backoff_max", Float, 30),
    ("reflector_release_delay", Float, 30),
    ("reflector_stale_after", Float, 5),
    ("reflector_list_page_size", Integer, 200),
    ("hub_identity", Unicode, None),
    ("delete_orphaned_pods", Bool, True),
    ("storage_adopt_unowned_pvcs", Bool, False),
]


def test_defaults_table_covers_every_setting_of_the_mixin() -> None:
    listed = {name for name, _, _ in DEFAULTS}
    assert listed == set(KubeSpawnerSettings.class_traits(config=True)) - {
        "env_keep",
        "ssl_alt_names_include_local",
        "mem_limit",
        "mem_guarantee",
    }


@pytest.mark.parametrize(("name", "trait_type", "default"), DEFAULTS)
def test_type_and_default(name: str, trait_type: type, default: object) -> None:
    trait = KubeSpawnerSettings.class_traits()[name]
    if trait_type is not object:
        assert isinstance(trait, trait_type), type(trait)
    spawner = make_spawner()
    assert getattr(spawner, name) == default


def test_inherited_settings_redefaulted() -> None:
    spawner = make_spawner()
    assert spawner.ip == "0.0.0.0"
    assert spawner.port == 8888  # base default 0 means 8888 here
    assert make_spawner(port=9000).port == 9000
    assert spawner.env_keep == []
    assert spawner.ssl_alt_names_include_local is False
    assert spawner.ssl_alt_names == [
        "DNS:jupyter-alice.default.svc.cluster.local",
        "DNS:jupyter-alice",
        "DNS:jupyter-alice.default",
        "DNS:jupyter-alice.default.svc",
    ]
    assert spawner.mem_limit is None and spawner.cpu_limit is None


def test_deprecated_aliases_include_the_pair_upstream_dropped() -> None:
    # Upstream's table has 23 entries, one of them the bogus joined name its missing
    # comma made; without the bug it is 24 working aliases.
    assert len(DEPRECATED_ALIASES) == 24
    assert "singleuser_allow_privilege_escalation" in DEPRECATED_ALIASES
    assert "singleuser_lifecycle_hooks" in DEPRECATED_ALIASES
    assert (
        "singleuser_allow_privilege_escalationsingleuser_lifecycle_hooks" not in DEPRECATED_ALIASES
    )
