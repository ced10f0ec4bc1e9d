"""The orphan sweep: after a hub restart, delete pods this hub created for servers its
database records as stopped.

How they arise: a ``stop()`` that could not reach the API server hands the pod to the
deletion reconciler (``reconciler.py``), which lives in the hub process; if the hub
restarts before the debt is settled, JupyterHub has already recorded the server as
stopped and will never poll or stop it again (at start-up it polls only the servers it
believes running). The pod would run forever.

What is deleted, and why it is safe. A pod is deleted only if all of these hold:

1. it carries this hub's ``component`` label and an owner annotation
   (``hub.jupyter.org/async-kubespawner-owner``) that names *this* hub's identity: pods
   of other hubs, pods written by upstream KubeSpawner (no owner annotation) and pods
   made by hand are never candidates;
2. the hub's database knows that user and that server, and records the server as
   stopped (``orm.Spawner.server`` is None). JupyterHub sets ``server`` *before* it
   calls ``start()`` and clears it only after ``stop()`` returned, so a server that is
   starting, running or stopping is never "stopped" here. A user or server the database
   does not know (deleted, or a database restored from a backup) is left alone: it is not
   *known* to be stopped;
3. the answer is read again from the database right before the DELETE, and the DELETE
   carries the pod's uid as a precondition, so a new pod started meanwhile is untouched.

The database is read through the spawner's own ``user.db`` (the hub's SQLAlchemy session;
the sweep runs on the hub's event loop, between its other uses of the session). Without
one (a spawner driven outside a hub) there is no sweep. It runs once per hub process and
pod cache, as soon as that cache has listed, triggered by the first spawner that uses
it: at start-up when any server is running (JupyterHub polls them), otherwise at the
first start. ``c.KubeSpawner.delete_orphaned_pods = False`` turns it off.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any, Protocol

from ..kube.client import PODS, ApiError, KubeApi
from ..kube.reflector import Reflector
from ..metrics import ORPHANED_PODS_DELETED
from ..objects.identity import COMPONENT_LABEL, read_owner

log = logging.getLogger("async_kubespawner.orphans")


class ServerRecords(Protocol):
    """What the sweep asks the hub's database."""

    def stopped_servers(self) -> set[tuple[str, str]]:
        """Every (user, server) the database knows and records as stopped (one query:
        the sweep must not stall the hub's loop with a query per pod)."""
        ...

    def believes_stopped(self, user: str, server: str) -> bool | None:
        """True (known and stopped), False (known, not stopped), None (unknown)."""
        ...


#: Seconds the sweep waits for the pod cache's first list before giving up for this run.
SWEEP_LIST_TIMEOUT = 600.0


class HubDatabase:
    """:class:`ServerRecords` from the hub's SQLAlchemy session (JupyterHub's ``orm``)."""

    def __init__(self, db: Any) -> None:
        self.db = db

    def stopped_servers(self) -> set[tuple[str, str]]:
        from jupyterhub import orm  # type: ignore[import-untyped]

        rows = (
            self.db.query(orm.User.name, orm.Spawner.name)
            .join(orm.Spawner, orm.Spawner.user_id == orm.User.id)
            .filter(orm.Spawner.server_id.is_(None))
            .all()
        )
        return {(user, server or "") for user, server in rows}

    def believes_stopped(self, user: str, server: str) -> bool | None:
        from jupyterhub import orm  # type: ignore[import-untyped]

        orm_user = orm.User.find(self.db, user)
        if orm_user is None:
            return None
        orm_spawner = orm_user.orm_spawners.get(server)
        if orm_spawner is None:
            return None
        return orm_spawner.server is None


async def sweep_orphans(
    api: KubeApi,
    reflector: Reflector,
    *,
    hub: str,
    component_label: str,
    records: ServerRecords,
) -> list[tuple[str, str]]:
    """Delete this hub's pods of servers the database records as stopped; returns the
    (namespace, name) of the pods deleted. See the module docstring for the rules."""
    if not await reflector.wait_synced(SWEEP_LIST_TIMEOUT):
        log.warning("kubespawner orphan-sweep skipped: the pod cache did not load")
        return []
    try:
        stopped_servers = records.stopped_servers()
    except Exception:  # a database error must not take the hub down with it
        log.exception("kubespawner orphan-sweep skipped: cannot read the hub database")
        return []
    cache = reflector.sink
    deleted: list[tuple[str, str]] = []
    for index, key in enumerate(cache.keys()):  # type: ignore[attr-defined]
        if index and index % 200 == 0:
            await asyncio.sleep(0)  # decoding cached pods is CPU work: let the hub breathe
        pod = cache.get(key)  # type: ignore[attr-defined]
        if pod is None:
            continue
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue
        if (meta.get("labels") or {}).get(COMPONENT_LABEL) != component_label:
            continue
        owner = read_owner(meta)
        if owner is None or not owner.readable or owner.hub != hub or owner.user is None:
            continue
        if (owner.user, owner.server) not in stopped_servers:
            continue
        namespace, name = meta.get("namespace") or "", meta.get("name") or ""
        # Read again right before the DELETE (no await in between): the server may have
        # been started since the snapshot.
        try:
            if records.believes_stopped(owner.user, owner.server) is not True:
                continue
        except Exception:
            log.exception("kubespawner orphan-sweep stopped: cannot read the hub database")
            return deleted
        try:
            await api.delete(PODS, namespace, name, grace_period_seconds=0, uid=meta.get("uid"))
        except ApiError as e:
            if e.status != 409:  # 409: replaced meanwhile, not the orphan any more
                log.warning("kubespawner pod=%s/%s orphan-sweep delete failed: %s", namespace, name, e)
            continue
        ORPHANED_PODS_DELETED.inc()
        log.warning(
            "kubespawner pod=%s/%s state=orphan-deleted: its server is recorded as stopped "
            "in the hub database",
            namespace,
            name,
        )
        deleted.append((namespace, name))
    log.info("kubespawner orphan-sweep done deleted=%d", len(deleted))
    return deleted


_sweeps: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[int, str], asyncio.Task[list[tuple[str, str]]]]
] = weakref.WeakKeyDictionary()


def schedule_orphan_sweep(
    api: KubeApi,
    reflector: Reflector,
    *,
    hub: str,
    component_label: str,
    records: ServerRecords,
) -> asyncio.Task[list[tuple[str, str]]]:
    """The sweep of this pod cache for this hub: started on the first call, the same task
    afterwards (once per process)."""
    per_loop = _sweeps.setdefault(asyncio.get_running_loop(), {})
    key = (id(reflector), hub)
    task = per_loop.get(key)
    if task is None:
        task = per_loop[key] = asyncio.get_running_loop().create_task(
            sweep_orphans(
                api,
                reflector,
                hub=hub,
                component_label=component_label,
                records=records,
            )
        )
    return task


def orphan_sweeps() -> list[asyncio.Task[list[tuple[str, str]]]]:
    """The sweeps started on the running loop (for tests and health pages)."""
    return list(_sweeps.get(asyncio.get_running_loop(), {}).values())
