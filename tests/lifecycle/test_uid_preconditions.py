"""Every DELETE after an ownership check carries the checked object's uid, and the API
server (here the simulator, which applies preconditions as the real one does) refuses it
when the object was replaced in between: the newcomer is never deleted.

Each test replaces the object behind the spawner's back and hands the spawner a stale
read (the old object), the worst interleaving of "read, decide, delete"."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from async_kubespawner.kube.client import PODS, SECRETS, ApiError
from async_kubespawner.lifecycle.ownership import delete_own, delete_pvc_forever
from async_kubespawner.objects.identity import Scope

from .conftest import NAMESPACE

PVC = {
    "storage_pvc_ensure": True,
    "storage_capacity": "1Gi",
    "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}],
    "volume_mounts": [{"name": "home", "mountPath": "/home/jovyan"}],
}


async def replace_behind_the_back(sim: Any, plural: str, name: str) -> tuple[dict, str]:
    """Delete the object and create it again with the same content: a new uid. Returns
    the old object (what a stale read would give) and the new uid."""
    resource = sim.store.resource(plural)
    old = sim.store.get(resource, NAMESPACE, name)
    old = copy.deepcopy(old)
    await sim.store.delete(resource, NAMESPACE, name, grace_period_seconds=0)
    again = copy.deepcopy(old)
    for key in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp"):
        again["metadata"].pop(key, None)
    again["metadata"].pop("finalizers", None)
    created = await sim.store.create(resource, NAMESPACE, again)
    return old, created["metadata"]["uid"]


def stale(old: dict[str, Any]) -> Any:
    async def get_or_none(*args: Any, **kwargs: Any) -> dict[str, Any]:
        return copy.deepcopy(old)

    return get_or_none


async def test_a_pod_delete_with_a_stale_uid_is_refused(sim: Any, make_spawner: Any) -> None:
    spawner = make_spawner()
    await spawner.start()
    api = await spawner._get_api()
    old, new_uid = await replace_behind_the_back(sim, "pods", spawner.pod_name)
    with pytest.raises(ApiError) as info:
        await api.delete(PODS, NAMESPACE, spawner.pod_name, uid=old["metadata"]["uid"])
    assert info.value.status == 409
    assert sim.store.get(sim.store.resource("pods"), NAMESPACE, spawner.pod_name)["metadata"][
        "uid"
    ] == new_uid


async def test_a_secret_replaced_after_the_check_is_left(
    sim: Any, make_spawner: Any, monkeypatch: Any
) -> None:
    spawner = make_spawner(api_token_in_secret=True)
    spawner.api_token = "token-for-the-test"
    await spawner.start()
    api = await spawner._get_api()
    old, new_uid = await replace_behind_the_back(sim, "secrets", spawner.secret_name)
    monkeypatch.setattr(api, "get_or_none", stale(old))
    outcome = await delete_own(
        api, SECRETS, NAMESPACE, spawner.secret_name, spawner.server_identity()
    )
    assert outcome == "not-mine"
    secret = sim.store.get(sim.store.resource("secrets"), NAMESPACE, spawner.secret_name)
    assert secret["metadata"]["uid"] == new_uid


async def test_delete_forever_keeps_a_claim_replaced_after_the_check(
    sim: Any, make_spawner: Any, monkeypatch: Any
) -> None:
    spawner = make_spawner(**PVC)
    await spawner.start()
    await spawner.stop()
    api = await spawner._get_api()
    resource = sim.store.resource("persistentvolumeclaims")
    stored_uid = sim.store.get(resource, NAMESPACE, spawner.pvc_name)["metadata"]["uid"]
    # delete_forever read a claim of that name that has since been replaced by this one
    # (a claim being deleted waits for its pods, so the read is made up).
    old = copy.deepcopy(sim.store.get(resource, NAMESPACE, spawner.pvc_name))
    old["metadata"]["uid"] = "0" * 8 + stored_uid[8:]
    monkeypatch.setattr(api, "get_or_none", stale(old))
    outcome, decision = await delete_pvc_forever(
        api,
        NAMESPACE,
        spawner.pvc_name,
        spawner.server_identity(),
        names_of_this_server=spawner.pvc_names_of_this_server,
        template_scope=Scope.SERVER,
    )
    assert outcome == "kept" and decision is not None
    assert "replaced" in decision.reason
    assert sim.store.get(resource, NAMESPACE, spawner.pvc_name)["metadata"]["uid"] == stored_uid
