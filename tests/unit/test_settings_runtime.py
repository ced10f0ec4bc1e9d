"""Settings that steer the lifecycle rather than the objects: they are configurable
with upstream's names and keep the configured value for the lifecycle to read.
Also: nothing secret reaches the logs while objects are built."""

from __future__ import annotations

import logging

import pytest

from async_kubespawner.objects.manifests import to_dict
from tests.unit.spawner_fakes import make_spawner

RUNTIME_SETTINGS = [
    ("k8s_api_host", "https://k8s.example:6443"),
    ("k8s_api_ssl_ca_cert", "/etc/ca.pem"),
    ("k8s_api_verify_ssl", False),
    ("k8s_api_request_timeout", 10),
    ("k8s_api_request_retry_timeout", 120),
    ("events_enabled", False),
    ("slow_spawn_message_threshold", 0),
    ("slow_spawn_message_frequency", 30),
    ("slow_spawn_message", "Still waiting after {seconds}s"),
    ("delete_grace_period", 30),
    ("delete_stopped_pods", False),
    ("delete_pvc", False),
    ("storage_pvc_ensure", True),
    ("remember_pvc_name", False),
    ("handle_legacy_names", False),
    ("services_enabled", True),
    ("enable_user_namespaces", True),
    ("start_timeout", 300),
]


@pytest.mark.parametrize(("name", "value"), RUNTIME_SETTINGS)
def test_runtime_setting_is_configurable(name: str, value: object) -> None:
    assert getattr(make_spawner(config={name: value}), name) == value


def test_namespace_setting_moves_every_object() -> None:
    spawner = make_spawner(config={"namespace": "jhub-users"})
    assert spawner.namespace == "jhub-users"
    assert spawner.dns_name == "jupyter-alice.jhub-users.svc.cluster.local"
    assert spawner.get_state()["namespace"] == "jhub-users"


def test_hubnamespace_field_comes_from_the_service_account(monkeypatch, tmp_path) -> None:
    from async_kubespawner.traits import namespaces

    path = tmp_path / "namespace"
    path.write_text("jhub\n")
    monkeypatch.setattr(namespaces, "SERVICE_ACCOUNT_NAMESPACE_FILE", path)
    namespaces.hub_namespace.cache_clear()
    try:
        spawner = make_spawner(config={"enable_user_namespaces": True})
        assert spawner.namespace == "jhub-alice"
        assert make_spawner().namespace == "jhub"
    finally:
        namespaces.hub_namespace.cache_clear()


async def test_nothing_secret_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        spawner = make_spawner(config={"environment": {"DB_PASSWORD": "hunter2"}, "args": ["--x"]})
        pod = await spawner.prepare_pod()
        spawner.get_secret_manifest({"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u"})
        spawner.get_pvc_manifest()
    assert "hunter2" in repr(to_dict(pod))  # it is in the pod...
    assert "hunter2" not in caplog.text  # ...but never in the logs
    assert "secret-token-value" not in caplog.text
