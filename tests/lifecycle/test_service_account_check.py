"""The pod's service account is looked up before anything is created: a missing one is
refused naming the setting (the API server would refuse the pod with 403 after the PVC
exists); an existing one spawns and is looked up once for a burst of spawns; without the
right to read service accounts the check steps aside."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from async_kubespawner.kube.client import ApiError
from async_kubespawner.lifecycle.preflight import check_service_account
from async_kubespawner.traits import SpawnerConfigError

from .conftest import NAMESPACE

PVC = {"storage_pvc_ensure": True, "storage_capacity": "1Gi"}


async def make_account(sim: Any, name: str) -> None:
    await sim.store.create(
        sim.store.resource("serviceaccounts"),
        NAMESPACE,
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
    )


def pvcs(sim: Any) -> list[Any]:
    return sim.store.list(sim.store.resource("persistentvolumeclaims"), NAMESPACE)[0]


async def test_missing_account_is_refused_before_the_pvc(sim: Any, make_spawner: Any) -> None:
    spawner = make_spawner(service_account="notebooks", **PVC)
    with pytest.raises(SpawnerConfigError) as info:
        await spawner.start()
    assert "KubeSpawner.service_account" in str(info.value)
    assert "'notebooks' does not exist in namespace 'default'" in str(info.value)
    assert pvcs(sim) == []


async def test_existing_account_spawns_and_is_read_once(sim: Any, make_spawner: Any) -> None:
    await make_account(sim, "notebooks")
    spawners = [make_spawner(f"user{i}", service_account="notebooks") for i in range(5)]
    sim.counters.reset()
    await asyncio.gather(*(s.start() for s in spawners))
    assert sim.counters.count(verb="get", resource="serviceaccounts") <= 5
    before = sim.counters.count(verb="get", resource="serviceaccounts")
    extra = make_spawner("late", service_account="notebooks")
    await extra.start()
    assert sim.counters.count(verb="get", resource="serviceaccounts") == before
    await asyncio.gather(*(s.stop() for s in [*spawners, extra]))


class _Api:
    def __init__(self, status: int) -> None:
        self.status = status

    async def get_or_none(self, *args: Any) -> Any:
        raise ApiError(self.status, "forbidden", reason="Forbidden")


async def test_no_right_to_read_accounts_skips_the_check() -> None:
    spawner = SimpleNamespace(namespace="ns", service_account="notebooks")
    pod = {"spec": {"serviceAccountName": "notebooks"}}
    await check_service_account(spawner, _Api(403), pod)  # type: ignore[arg-type]
    with pytest.raises(ApiError):
        await check_service_account(spawner, _Api(500), pod)  # type: ignore[arg-type]
