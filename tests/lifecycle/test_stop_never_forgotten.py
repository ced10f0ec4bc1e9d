"""A stop is never forgotten: through outages longer than the client's retry budget,
beyond ``stop_timeout`` (the background reconciler), and across a hub restart (the orphan
sweep, which deletes only pods provably this hub's for servers its database records as
stopped).

Outages come from the simulator's fault injection; the tests wait on log records and
events, never on sleeps.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from jupyterhub import orm

from async_kubespawner.kube.client import PODS
from async_kubespawner.lifecycle.orphans import orphan_sweeps
from async_kubespawner.lifecycle.reconciler import deletion_reconciler
from async_kubespawner.metrics import ORPHANED_PODS_DELETED, OWED_DELETIONS

from .conftest import NAMESPACE, live_pods, record, store_pods


@contextmanager
def log_event(logger: str, matches: Callable[[logging.LogRecord], bool]) -> Iterator[asyncio.Event]:
    """An event set by the first record of ``logger`` that ``matches``."""
    seen = asyncio.Event()

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if matches(record):
                seen.set()

    target = logging.getLogger(logger)
    handler = Handler()
    old_level = target.level
    target.setLevel(logging.INFO)
    target.addHandler(handler)
    try:
        yield seen
    finally:
        target.removeHandler(handler)
        target.setLevel(old_level)


async def test_stop_retries_through_an_outage_longer_than_the_retry_budget(sim, make_spawner):
    spawner = make_spawner(k8s_api_request_retry_timeout=1, stop_timeout=120)
    await spawner.start()
    began = time.monotonic()

    def retry_after_budget(record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "delete pods" in message and "retrying" in message and time.monotonic() - began > 2

    with log_event("async_kubespawner.kube", retry_after_budget) as retried:
        sim.faults.outage(3600)
        stopping = asyncio.ensure_future(spawner.stop(now=True))
        await asyncio.wait_for(retried.wait(), 60)
    # Twice the client's retry budget has passed and stop() is still at it.
    assert not stopping.done()
    assert live_pods(sim) == [spawner.pod_name]
    sim.faults.clear()
    await asyncio.wait_for(stopping, 120)
    assert live_pods(sim) == []


async def test_a_deletion_owed_past_stop_timeout_is_completed_in_the_background(
    sim, make_spawner, caplog
):
    caplog.set_level(logging.INFO, logger="async_kubespawner")
    spawner = make_spawner(k8s_api_request_retry_timeout=1, stop_timeout=2)
    await spawner.start()
    api = await spawner._get_api()
    owed_before = OWED_DELETIONS._value.get()

    def second_retry(record: logging.LogRecord) -> bool:
        return "state=owed-deletion-retry attempt=2" in record.getMessage()

    with log_event("async_kubespawner.reconciler", second_retry) as retried_twice:
        sim.faults.outage(3600)
        await asyncio.wait_for(spawner.stop(now=True), 30)  # returns: the deletion is owed
        assert "state=deletion-owed" in caplog.text
        assert OWED_DELETIONS._value.get() == owed_before + 1
        assert live_pods(sim) == [spawner.pod_name]
        # The reconciler keeps failing while the outage lasts, and keeps going.
        await asyncio.wait_for(retried_twice.wait(), 60)
    reconciler = deletion_reconciler(api)
    assert not reconciler.settled.is_set()
    sim.faults.clear()
    # Any answer from the API server (here a read of ours) wakes the reconciler at once.
    await api.get_or_none(PODS, NAMESPACE, "nothing-here")
    await asyncio.wait_for(reconciler.settled.wait(), 30)
    assert live_pods(sim) == []
    assert OWED_DELETIONS._value.get() == owed_before
    assert "state=owed-deletion-done" in caplog.text


async def test_the_reconciler_never_deletes_a_new_pod_of_the_same_server(sim, make_spawner):
    """The debt is the old pod's uid: a new start of the same server meanwhile is safe."""
    spawner = make_spawner(k8s_api_request_retry_timeout=1, stop_timeout=2)
    await spawner.start()
    api = await spawner._get_api()
    sim.faults.outage(3600)
    await spawner.stop(now=True)
    reconciler = deletion_reconciler(api)
    sim.faults.clear()
    again = make_spawner()
    await again.start()  # replaces the leftover itself (it is this server's)
    new_uid = again.pod_uid
    await asyncio.wait_for(reconciler.settled.wait(), 60)
    [pod] = store_pods(sim)
    assert pod["metadata"]["uid"] == new_uid
    await again.stop()


# -- the orphan sweep ------------------------------------------------------------------------


async def make_running(make_spawner, user: str, server: str = "", **config: Any) -> Any:
    spawner = make_spawner(user, server, **config)
    await spawner.start()
    return spawner


async def test_orphan_sweep_deletes_only_this_hubs_pods_of_stopped_servers(
    sim, make_spawner, hub_db
):
    orphan = await make_running(make_spawner, "alice")  # its stop was forgotten
    running = await make_running(make_spawner, "bob")
    unknown = await make_running(make_spawner, "carol")  # not in the database
    other_hub = await make_running(make_spawner, "dave", hub_identity="elsewhere")
    named_orphan = await make_running(make_spawner, "alice", "lab")
    await sim.store.create(
        sim.store.resource("pods"),
        NAMESPACE,
        {  # written by upstream KubeSpawner: no owner annotation of ours
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "jupyter-erin",
                "labels": {"component": "singleuser-server"},
                "annotations": {"hub.jupyter.org/username": "erin"},
            },
            "spec": {"containers": [{"name": "notebook", "image": "busybox"}]},
        },
    )
    record(hub_db, "alice", {"": False, "lab": False})
    record(hub_db, "bob", {"": True})
    record(hub_db, "dave", {"": False})
    record(hub_db, "erin", {"": False})
    deleted_before = ORPHANED_PODS_DELETED._value.get()

    # The hub restarts and polls its running server, bob's.
    after_restart = make_spawner("bob")
    after_restart.user.db = hub_db
    assert await after_restart.poll() is None
    [sweep] = orphan_sweeps()
    deleted = await asyncio.wait_for(sweep, 30)

    assert sorted(deleted) == sorted(
        [(NAMESPACE, orphan.pod_name), (NAMESPACE, named_orphan.pod_name)]
    )
    assert sorted(live_pods(sim)) == sorted(
        [running.pod_name, unknown.pod_name, other_hub.pod_name, "jupyter-erin"]
    )
    assert ORPHANED_PODS_DELETED._value.get() == deleted_before + 2
    # Once per process: another spawner's poll does not sweep again.
    again = make_spawner("bob")
    again.user.db = hub_db
    await again.poll()
    assert orphan_sweeps() == [sweep]


async def test_orphan_sweep_can_be_turned_off(sim, make_spawner, hub_db):
    orphan = await make_running(make_spawner, "alice")
    record(hub_db, "alice", {"": False})
    record(hub_db, "bob", {"": True})
    spawner = make_spawner("bob", delete_orphaned_pods=False)
    spawner.user.db = hub_db
    await spawner.poll()
    assert orphan_sweeps() == []
    assert live_pods(sim) == [orphan.pod_name]


async def test_orphan_sweep_spares_a_server_that_starts_meanwhile(sim, make_spawner, hub_db):
    """The database is read again right before each DELETE."""
    orphan = await make_running(make_spawner, "alice")
    record(hub_db, "alice", {"": False})
    from async_kubespawner.lifecycle import orphans

    calls: list[tuple[str, str]] = []

    class StartsBetweenChecks(orphans.HubDatabase):
        def believes_stopped(self, user: str, server: str) -> bool | None:
            # the hub starts alice's server after the snapshot, before the DELETE
            calls.append((user, server))
            orm.User.find(hub_db, "alice").orm_spawners[""].server = orm.Server()
            hub_db.commit()
            return super().believes_stopped(user, server)

    api = await orphan._get_api()
    reflector = await orphan._pod_reflector()
    deleted = await orphans.sweep_orphans(
        api,
        reflector,
        hub=orphan.server_identity().hub,
        component_label="singleuser-server",
        records=StartsBetweenChecks(hub_db),
    )
    assert deleted == [] and calls == [("alice", "")]
    assert live_pods(sim) == [orphan.pod_name]
