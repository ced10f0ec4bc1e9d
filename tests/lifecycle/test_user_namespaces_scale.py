"""Per-user namespaces at scale: a namespace's reflectors (watches, tasks, metric series)
live while a server of it is active, and a deleted user namespace is created again."""

from __future__ import annotations

import asyncio
import gc

import pytest
from prometheus_client import REGISTRY

from async_kubespawner.kube.reflector import reflectors, wait_released

PER_NAMESPACE = {
    "enable_user_namespaces": True,
    "reflector_cluster_wide": False,
    "reflector_release_delay": 0,
}


def reflector_tasks() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("reflector ")]


def series(name: str) -> float | None:
    return REGISTRY.get_sample_value("kubespawner_cache_objects", {"reflector": name})


def namespaces(sim) -> set[str]:
    items, _ = sim.store.list(sim.store.resource("namespaces"), None)
    return {n["metadata"]["name"] for n in items if not n["metadata"].get("deletionTimestamp")}


async def test_reflectors_of_a_namespace_go_when_its_last_server_stops(sim, make_spawner):
    users = 12
    spawners = [make_spawner(f"user{i}", **PER_NAMESPACE) for i in range(users)]
    await asyncio.gather(*(s.start() for s in spawners))
    opened = reflectors()
    # a pod and an event reflector per user namespace, each with its supervisor task
    assert len(opened) == 2 * users
    assert {r.namespace for r in opened} == {s.namespace for s in spawners}
    assert len(reflector_tasks()) == 2 * users
    assert all(series(r.name) is not None for r in opened)
    watches_while_running = sim.counters.count("watch")

    await asyncio.gather(*(s.stop() for s in spawners[: users // 2]))
    await wait_released()
    assert len(reflectors()) == users  # the other half's namespaces keep theirs
    assert {r.namespace for r in reflectors()} == {s.namespace for s in spawners[users // 2 :]}

    await asyncio.gather(*(s.stop() for s in spawners[users // 2 :]))
    await wait_released()
    assert reflectors() == []
    assert reflector_tasks() == []
    assert all(r.running is False for r in opened)
    assert all(series(r.name) is None for r in opened)  # metric series removed too

    # Re-opened on demand: the next start of a namespace gets fresh reflectors.
    await spawners[0].start()
    assert {r.namespace for r in reflectors()} == {spawners[0].namespace}
    assert await spawners[0].poll() is None
    await spawners[0].stop()
    await wait_released()
    assert reflectors() == []
    assert sim.counters.count("watch") >= watches_while_running


async def test_a_server_of_the_namespace_keeps_it_open_for_its_neighbour(sim, make_spawner):
    first = make_spawner("alice", **PER_NAMESPACE)
    second = make_spawner("alice", "gpu", **PER_NAMESPACE)
    await asyncio.gather(first.start(), second.start())
    assert first.namespace == second.namespace
    await first.stop()
    await wait_released()
    assert {r.namespace for r in reflectors()} == {second.namespace}
    assert await second.poll() is None  # still answered from a live cache
    await second.stop()
    await wait_released()
    assert reflectors() == []


async def test_a_spawner_dropped_without_stop_releases_its_lease(sim, make_spawner):
    spawner = make_spawner("bob", **PER_NAMESPACE)
    await spawner.start()
    namespace = spawner.namespace
    assert {r.namespace for r in reflectors()} == {namespace}
    del spawner
    gc.collect()
    await asyncio.sleep(0)  # one loop turn: the release is scheduled on the loop
    await wait_released()
    assert reflectors() == []


@pytest.mark.parametrize("with_pvc", [False, True])
async def test_a_deleted_user_namespace_is_created_again(sim, make_spawner, with_pvc):
    """The hub remembers which namespaces exist; an administrator deleting one (with its
    pods) used to make every later start of that user fail."""
    config = {"enable_user_namespaces": True}  # cluster-wide reflectors: never released
    if with_pvc:
        config.update(storage_pvc_ensure=True, storage_capacity="1Gi")
    alice = make_spawner("alice", **config)
    await alice.start()
    namespace = alice.namespace
    await alice.stop()
    await sim.store.delete(sim.store.resource("namespaces"), None, namespace)
    await sim.store.wait_gc_idle()
    assert namespace not in namespaces(sim)
    again = make_spawner("alice", **config)
    # The first create (PVC or pod) meets "namespace not found": created again, retried.
    await again.start()
    assert namespace in namespaces(sim)
    assert sim.counters.count("create", "namespaces") == 2
    first_create = "persistentvolumeclaims" if with_pvc else "pods"
    assert sim.counters.count("create", first_create, status=404) == 1
    assert await again.poll() is None
    await again.stop()


async def test_a_released_namespace_is_checked_again_on_the_next_start(sim, make_spawner):
    alice = make_spawner("alice", **PER_NAMESPACE)
    await alice.start()
    namespace = alice.namespace
    await alice.stop()
    await wait_released()
    await sim.store.delete(sim.store.resource("namespaces"), None, namespace)
    await sim.store.wait_gc_idle()
    again = make_spawner("alice", **PER_NAMESPACE)
    await again.start()
    assert namespace in namespaces(sim)
    # no failed pod create: the namespace was ensured before it
    assert sim.counters.count("create", "pods", status=404) == 0
    await again.stop()
