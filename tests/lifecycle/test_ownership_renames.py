"""An administrator renames a user whose server runs (JupyterHub allows it), then a new
user takes the old name. The running pod still carries the old name in its owner
annotation; the uid in the renamed server's state is what proves it is that server's.
Neither the orphan sweep nor the new user's start (or JupyterHub's cleanup stop after a
refused start) may delete it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from jupyterhub import orm

from async_kubespawner.lifecycle.orphans import orphan_sweeps
from async_kubespawner.spawner import SpawnFailed

from .conftest import live_pods, record, store_pods


def uid_of(sim: Any, name: str) -> str:
    [pod] = [p for p in store_pods(sim) if p["metadata"]["name"] == name]
    return str(pod["metadata"]["uid"])


async def rename_running_user(sim: Any, make_spawner: Any, db: Any) -> tuple[Any, str]:
    """alice's server runs; she is renamed bob (state kept, as JupyterHub does); a new
    user alice is created, her default server recorded stopped. Returns bob's spawner
    (as the hub rebuilds it after a restart) and the pod's uid."""
    alice = make_spawner("alice")
    await alice.start()
    state = alice.get_state()
    record(db, "bob", {"": True})
    orm.User.find(db, "bob").orm_spawners[""].state = state
    db.commit()
    record(db, "alice", {"": False})
    bob = make_spawner("bob", user_id=7)
    bob.load_state(state)
    bob.user.db = db
    return bob, uid_of(sim, alice.pod_name)


async def test_the_sweep_spares_a_renamed_users_running_pod(sim, make_spawner, hub_db):
    bob, uid = await rename_running_user(sim, make_spawner, hub_db)
    assert await bob.poll() is None  # still bob's, by the uid in his state
    [sweep] = orphan_sweeps()
    assert await asyncio.wait_for(sweep, 30) == []
    assert uid_of(sim, bob.pod_name) == uid


async def test_the_new_user_of_the_old_name_neither_replaces_nor_stops_it(
    sim,
    make_spawner,
    hub_db,
):
    bob, uid = await rename_running_user(sim, make_spawner, hub_db)
    newcomer = make_spawner("alice", user_id=8, delete_orphaned_pods=False)
    newcomer.user.db = hub_db
    assert newcomer.pod_name == bob.pod_name
    with pytest.raises(SpawnFailed, match="not this server's") as info:
        await newcomer.start()
    assert "bob" not in str(info.value)
    assert uid_of(sim, bob.pod_name) == uid
    # JupyterHub's cleanup after a failed start: poll, then stop.
    assert await newcomer.poll() == 1
    await newcomer.stop()
    assert uid_of(sim, bob.pod_name) == uid
    assert live_pods(sim) == [bob.pod_name]
    assert await bob.poll() is None


async def test_a_pod_claimed_by_its_annotation_is_checked_once(
    sim,
    make_spawner,
    hub_db,
    monkeypatch,
):
    """Pods of upstream KubeSpawner are claimed by their annotations at every poll: the
    database is asked once per pod, not once per poll."""
    from async_kubespawner.lifecycle import orphans

    first = make_spawner("carol", delete_orphaned_pods=False)
    await first.start()
    record(hub_db, "carol", {"": True})
    calls: list[int] = []
    real = orphans.HubDatabase.running_pod_uids

    def counted(self: Any) -> dict[str, tuple[str, str]]:
        calls.append(1)
        return real(self)

    monkeypatch.setattr(orphans.HubDatabase, "running_pod_uids", counted)
    after_restart = make_spawner("carol", delete_orphaned_pods=False)  # no uid in state
    after_restart.user.db = hub_db
    for _ in range(3):
        assert await after_restart.poll() is None
    assert calls == [1]


async def test_the_sweep_matches_exact_names_only(sim, make_spawner, hub_db):
    """Server and user names that share a prefix, or differ only by case, are distinct
    owners: only the exact (user, server) the database records as stopped is swept."""
    stopped = make_spawner("alice", "lab")
    await stopped.start()
    spared = []
    for user, server in (("alice", "lab2"), ("alice-lab", ""), ("Alice", "lab"), ("alice", "Lab")):
        spawner = make_spawner(user, server)
        await spawner.start()
        spared.append(spawner.pod_name)
    record(hub_db, "alice", {"lab": False, "lab2": True, "Lab": True})
    record(hub_db, "alice-lab", {"": True})
    record(hub_db, "Alice", {"lab": True})
    poller = make_spawner("alice", "lab2")
    poller.user.db = hub_db
    assert await poller.poll() is None
    [sweep] = orphan_sweeps()
    assert await asyncio.wait_for(sweep, 30) == [(stopped.namespace, stopped.pod_name)]
    assert sorted(live_pods(sim)) == sorted(spared)
