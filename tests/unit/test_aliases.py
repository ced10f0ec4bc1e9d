"""Deprecated names keep working, from configuration and at runtime, with a warning
that names the setting to use instead."""

from __future__ import annotations

import logging
from typing import Any, cast

import pytest

from async_kubespawner.traits import DEPRECATED_ALIASES
from tests.unit.spawner_fakes import make_spawner

# A value each new setting accepts and that differs from its default.
SAMPLE_VALUES = {
    "image": "example.org/lab:1",
    "working_dir": "/home/x",
    "service_account": "notebooks",
    "extra_labels": {"team": "a"},
    "extra_annotations": {"note": "x"},
    "image_pull_policy": "Always",
    "image_pull_secrets": ["regcred"],
    "node_selector": {"pool": "users"},
    "uid": 1234,
    "fs_gid": 100,
    "supplemental_gids": [5, 6],
    "privileged": True,
    "allow_privilege_escalation": True,
    "lifecycle_hooks": {"postStart": {"exec": {"command": ["true"]}}},
    "extra_pod_config": {"hostname": "lab"},
    "init_containers": [{"name": "init", "image": "busybox"}],
    "extra_container_config": {"stdin": True},
    "extra_containers": [{"name": "side", "image": "busybox"}],
    "storage_class": "fast",
    "storage_pvc_ensure": True,
    "storage_capacity": "5Gi",
    "storage_extra_labels": {"tier": "x"},
    "storage_access_modes": ["ReadWriteMany"],
}


def test_every_alias_target_has_a_sample() -> None:
    assert {new for new, _ in DEPRECATED_ALIASES.values()} == set(SAMPLE_VALUES)


@pytest.mark.parametrize(("old", "new"), [(o, n) for o, (n, _) in DEPRECATED_ALIASES.items()])
def test_alias_from_config(old: str, new: str, caplog: pytest.LogCaptureFixture) -> None:
    value = SAMPLE_VALUES[new]
    with caplog.at_level(logging.WARNING):
        spawner = make_spawner(config={old: value})
    assert getattr(spawner, new) == value
    assert any(old in r.getMessage() and new in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("old", "new"), [(o, n) for o, (n, _) in DEPRECATED_ALIASES.items()])
def test_alias_at_runtime(old: str, new: str, caplog: pytest.LogCaptureFixture) -> None:
    spawner = make_spawner()
    value = SAMPLE_VALUES[new]
    with caplog.at_level(logging.WARNING):
        setattr(spawner, old, value)
    assert getattr(spawner, new) == value
    assert getattr(spawner, old) == value
    assert any(f"use KubeSpawner.{new}" in r.getMessage() for r in caplog.records)


def test_new_name_wins_when_both_are_configured(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        spawner = make_spawner(config={"singleuser_uid": 1, "uid": 2})
    assert spawner.uid == 2
    assert any("ignored" in r.getMessage() for r in caplog.records)


def test_alias_changes_the_pod() -> None:
    import asyncio

    spawner = make_spawner(
        config={
            "singleuser_lifecycle_hooks": SAMPLE_VALUES["lifecycle_hooks"],
            "singleuser_allow_privilege_escalation": True,
        }
    )
    pod = asyncio.run(spawner.get_pod_manifest())
    container = pod.spec.containers[0]
    # Nested fields stay plain dicts, as upstream leaves them.
    assert cast(dict[str, Any], container.lifecycle.post_start)["exec"]["command"] == ["true"]
    assert cast(dict[str, Any], container.security_context)["allowPrivilegeEscalation"] is True


def test_hub_connect_settings_copy_onto_the_hub(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        spawner = make_spawner(config={"hub_connect_ip": "10.0.0.1", "hub_connect_port": 8082})
    assert spawner.hub.connect_ip == "10.0.0.1"
    assert spawner.hub.connect_port == 8082
    assert any("JupyterHub.hub_connect_ip" in r.getMessage() for r in caplog.records)


def test_threadpool_workers_is_a_warned_no_op(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        spawner = make_spawner(config={"k8s_api_threadpool_workers": 8})
    assert spawner.k8s_api_threadpool_workers == 8
    assert any("k8s_api_threadpool_workers" in r.getMessage() for r in caplog.records)
