"""A stop that could not even learn which pod to delete (the hub had just restarted: no
pod cache yet, and the API server unreachable) owes the deletion of "this server's pod",
uid unknown. If the user starts the server again before the reconciler gets to that debt
(it works through its debts one by one, and a mass outage leaves many), the debt must not
take the new pod for the old one."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from async_kubespawner.kube.reflector import stop_reflectors
from async_kubespawner.lifecycle import reconciler as reconciler_module
from async_kubespawner.lifecycle.reconciler import deletion_reconciler

from .conftest import NAMESPACE, store_pods

STOPPING = {"k8s_api_request_retry_timeout": 1, "stop_timeout": 2}


@pytest.mark.parametrize(
    "start_config",
    [pytest.param(STOPPING, id="same-api-client"), pytest.param({}, id="other-api-settings")],
)
async def test_a_debt_of_unknown_uid_never_deletes_the_next_pod(
    sim: Any, make_spawner: Any, monkeypatch: Any, start_config: dict[str, Any]
) -> None:
    first = make_spawner(**STOPPING)
    await first.start()
    state = first.get_state()
    old_uid = first.pod_uid
    api = await first._get_api()

    # The reconciler is busy elsewhere until ``gate`` opens.
    gate = asyncio.Event()
    original = reconciler_module.DeletionReconciler._attempt

    async def busy_first(self: Any, debt: Any) -> bool:
        await gate.wait()
        return await original(self, debt)

    monkeypatch.setattr(reconciler_module.DeletionReconciler, "_attempt", busy_first)

    await stop_reflectors()  # the hub restarts: no pod cache yet
    sim.faults.outage(3600)
    restarted = make_spawner(**STOPPING)
    restarted.load_state(state)
    await asyncio.wait_for(restarted.stop(now=True), 30)
    reconciler = deletion_reconciler(api)
    assert [debt.uid for debt in reconciler.owed.values()] == [None]
    sim.faults.clear()

    again = make_spawner(**start_config)
    await again.start()  # replaces the leftover itself (it is this server's)
    new_uid = again.pod_uid
    assert new_uid != old_uid

    gate.set()
    await asyncio.wait_for(reconciler.settled.wait(), 60)
    [pod] = store_pods(sim)
    assert pod["metadata"]["uid"] == new_uid
    assert not pod["metadata"].get("deletionTimestamp")
    assert NAMESPACE == pod["metadata"]["namespace"]
    await again.stop()
