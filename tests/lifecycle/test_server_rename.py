"""JupyterHub 6 renames a stopped named server (``PATCH /users/:name/servers/:server``)
and calls ``Spawner.rename`` first; an error there prevents the rename.

A per-server PVC records the server's name as its owner, and the hub has no right to
re-annotate it. Renamed, the server could no longer mount its own claim (start refused:
"it belongs to another server of this user"), while a new server given the old name
would mount it, and delete it with ``delete_forever``. So such a rename is refused, with
the reason; a rename that leaves no claim behind goes through."""

from __future__ import annotations

from typing import Any

import pytest
from tornado import web

from .conftest import NAMESPACE

PVC = {
    "storage_pvc_ensure": True,
    "storage_capacity": "1Gi",
    "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}],
    "volume_mounts": [{"name": "home", "mountPath": "/home/jovyan"}],
}


def claims(sim: Any) -> list[str]:
    items, _ = sim.store.list(sim.store.resource("persistentvolumeclaims"), NAMESPACE)
    return sorted(p["metadata"]["name"] for p in items)


async def started_and_stopped(make_spawner: Any, server: str, **config: Any) -> Any:
    spawner = make_spawner("alice", server, **config)
    await spawner.start()
    await spawner.stop()
    return spawner


async def test_a_server_with_its_own_claim_is_not_renamed(sim: Any, make_spawner: Any) -> None:
    old = await started_and_stopped(make_spawner, "a", **PVC)
    with pytest.raises(web.HTTPError) as info:
        await old.rename("a", "b")
    assert info.value.status_code == 409
    message = getattr(info.value, "jupyterhub_message", "")
    assert old.pvc_name in message and "rename" in message
    assert claims(sim) == [old.pvc_name]


async def test_a_per_user_claim_follows_the_renamed_server(sim: Any, make_spawner: Any) -> None:
    config = {**PVC, "pvc_name_template": "claim-{username}"}
    old = await started_and_stopped(make_spawner, "a", **config)
    state = old.get_state()
    await old.rename("a", "b")
    renamed = make_spawner("alice", "b", **config)
    renamed.load_state(state)
    assert (await renamed.start()).startswith("http://")
    assert renamed.pvc_name == old.pvc_name
    await renamed.stop()


async def test_a_server_without_a_claim_is_renamed(sim: Any, make_spawner: Any) -> None:
    old = await started_and_stopped(make_spawner, "a")
    await old.rename("a", "b")
    assert claims(sim) == []
