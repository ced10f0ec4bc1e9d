"""The start sequence reads its settings once and checks the configuration once."""

from __future__ import annotations

from typing import Any

import pytest

from async_kubespawner import KubeSpawner
from async_kubespawner.traits import SpawnerConfigError

from .conftest import NAMESPACE, store_pods

EVERYTHING = {
    "storage_pvc_ensure": True,
    "storage_capacity": "1Gi",
    "services_enabled": True,
    "api_token_in_secret": True,
}


def count_checks(spawner: KubeSpawner) -> list[None]:
    calls: list[None] = []
    check = spawner.check_configuration

    def counted() -> None:
        calls.append(None)
        check()

    spawner.check_configuration = counted  # type: ignore[method-assign]  # a spy on one instance
    return calls


async def test_configuration_is_checked_once_per_start(sim, make_spawner):
    """Namespace, PVC, pod, Service and Secret manifests, one check before any of them."""
    spawner = make_spawner(enable_user_namespaces=True, **EVERYTHING)
    calls = count_checks(spawner)
    await spawner.start()
    assert len(calls) == 1
    # on their own (a hook, a test), the manifest methods still check
    spawner.get_pvc_manifest()
    assert len(calls) == 2
    await spawner.stop()


async def test_a_bad_name_fails_before_anything_is_created(sim, make_spawner):
    def hook(spawner: KubeSpawner) -> None:
        spawner.pvc_name = "Not A Valid Name"

    spawner = make_spawner(pre_spawn_hook=hook, **EVERYTHING)
    await spawner.run_pre_spawn_hook()
    with pytest.raises(SpawnerConfigError, match="not a valid PVC name"):
        await spawner.start()
    assert store_pods(sim) == []
    pvcs, _ = sim.store.list(sim.store.resource("persistentvolumeclaims"), NAMESPACE)
    assert pvcs == []


async def test_settings_changed_during_a_start_do_not_change_it(sim, make_spawner, kubelet):
    """The plan is resolved when the start begins: a hook changing the spawner while the
    pod starts (here after it is created) does not rename what this start waits for,
    nor the server stop() deletes."""

    def after_created(spawner: KubeSpawner, pod: dict[str, Any]) -> None:
        spawner.pod_name_template = "other-{username}"
        spawner.start_timeout = 1

    spawner = make_spawner(after_pod_created_hook=after_created, start_timeout=120)
    url = await spawner.start()
    assert url.startswith("http://10.")
    assert [p["metadata"]["name"] for p in store_pods(sim)] == ["jupyter-alice"]
    # nor what the running server is known by
    assert spawner.pod_name == spawner.get_state()["pod_name"] == "jupyter-alice"
    await spawner.stop()
    assert store_pods(sim) == []
