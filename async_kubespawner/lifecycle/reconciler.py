"""Deletions owed: pods a ``stop()`` could not delete, retried in the background until
they are gone.

Why: when the API server is unreachable for longer than ``stop_timeout``, ``stop()``
must return (JupyterHub records the server stopped either way, and a user waits on it),
but the pod must not run forever. The stop hands the pod to this reconciler: one task
per event loop and API client retries every owed deletion with jittered exponential
backoff, wakes early as soon as the API server answers anybody (``server_answered``),
and ends a debt when the DELETE is accepted, when the API says the pod is gone, or when
the pod cache shows the pod gone. It survives any number of further outages; it ends
with the hub process (whose restart runs the orphan sweep, ``orphans.py``, which finds
what was still owed).

A debt is identified by the pod's uid where the stop knew it, so a new pod of the same
server started meanwhile is never deleted (the DELETE carries the uid as a
precondition). A debt without a uid (the stop could not even read the pod) is settled
by reading the pod first and deleting it only if its owner annotation is this server's.
"""

from __future__ import annotations

import asyncio
import logging
import random
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..kube.client import PODS, KubeApi
from ..kube.errors import ApiError, Conflict
from ..metrics import OWED_DELETIONS, OWED_DELETIONS_SETTLED
from ..objects.identity import Ownership, ServerIdentity, pod_ownership
from .tasks import cancel_and_wait

log = logging.getLogger("async_kubespawner.reconciler")

#: First and longest pause between attempts (seconds; jittered).
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0


@dataclass
class OwedDeletion:
    """A pod a stop could not delete."""

    namespace: str
    name: str
    uid: str | None
    identity: ServerIdentity
    component_label: str
    grace_period_seconds: int = 0
    #: The pod cache, to learn without a request that the pod is gone.
    cached: Callable[[], dict[str, Any] | None] | None = None
    attempts: int = 0
    delay: float = field(default=BACKOFF_FIRST)

    @property
    def key(self) -> tuple[str, str, str | None]:
        return (self.namespace, self.name, self.uid)


class DeletionReconciler:
    """The owed deletions of one API client on one event loop."""

    def __init__(self, api: KubeApi) -> None:
        self.api = api
        self.owed: dict[tuple[str, str, str | None], OwedDeletion] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        #: Set whenever the last debt is settled (tests and shutdown wait on it).
        self.settled = asyncio.Event()
        self.settled.set()

    def owe(self, debt: OwedDeletion) -> None:
        if debt.key not in self.owed:
            OWED_DELETIONS.inc()
        self.owed[debt.key] = debt
        self.settled.clear()
        log.warning(
            "kubespawner pod=%s/%s state=deletion-owed uid=%s: the API server could not be "
            "reached in time; deleting it in the background",
            debt.namespace,
            debt.name,
            debt.uid or "unknown",
        )
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        self._wake.set()

    async def pin_unknown(
        self, namespace: str, name: str, owned: Callable[[dict[str, Any]], bool]
    ) -> None:
        """Before a server starts again, turn its debt of unknown uid into a debt of the
        pod that exists now (or settle it when there is none, or it is not the server's).

        Such a debt deletes "the server's pod, whichever": reached after the new start
        created its pod, it would take the new pod for the old one. Pinned to the uid
        read here, before anything is created, it can only ever delete the old pod.
        Errors propagate: the start then fails, as it would at its own first request.
        """
        debt = self.owed.get((namespace, name, None))
        if debt is None:
            return
        pod = await self.api.get_or_none(PODS, namespace, name)
        if self.owed.get(debt.key) is not debt:
            return  # settled meanwhile
        uid = (pod.get("metadata") or {}).get("uid") if pod is not None else None
        if pod is None or not uid or not owned(pod) or (namespace, name, uid) in self.owed:
            # Gone, not the server's, or already owed by uid: nothing left to pin.
            self._settle(debt)
            if not self.owed:
                self.settled.set()
            return
        del self.owed[debt.key]
        debt.uid = uid
        self.owed[debt.key] = debt

    async def stop(self) -> None:
        """Cancel the background task (hub shutdown); debts are then left to the sweep."""
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while self.owed:
            self._wake.clear()
            for debt in list(self.owed.values()):
                if await self._attempt(debt):
                    self._settle(debt)
            if not self.owed:
                break
            delay = min(d.delay for d in self.owed.values())
            await self._pause(delay)
        self.settled.set()

    async def _pause(self, delay: float) -> None:
        """Sleep out the backoff, or less: the first answer the API server gives anyone
        (it is back) or a new debt ends it."""
        answered = self.api.server_answered()
        woken: asyncio.Future[Any] = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({answered, woken}, timeout=delay)
            if answered.done():
                for debt in self.owed.values():
                    debt.delay = BACKOFF_FIRST
        finally:
            answered.cancel()
            woken.cancel()

    def _settle(self, debt: OwedDeletion) -> None:
        if self.owed.get(debt.key) is not debt:
            return  # settled already (a start pinned it while an attempt was under way)
        del self.owed[debt.key]
        OWED_DELETIONS.dec()
        OWED_DELETIONS_SETTLED.inc()
        log.info(
            "kubespawner pod=%s/%s state=owed-deletion-done attempts=%d",
            debt.namespace,
            debt.name,
            debt.attempts,
        )

    async def _attempt(self, debt: OwedDeletion) -> bool:
        """One try; True when the debt is settled."""
        if debt.cached is not None and debt.uid is not None:
            pod = debt.cached()
            if pod is None or (pod.get("metadata") or {}).get("uid") != debt.uid:
                return True  # the cache (a synced watch) shows it gone
        debt.attempts += 1
        try:
            uid = debt.uid
            if uid is None:
                pod = await self.api.get_or_none(PODS, debt.namespace, debt.name)
                if pod is None:
                    return True
                meta = pod.get("metadata") or {}
                if debt.uid is not None:  # pinned while we read: that uid, nothing else
                    uid = debt.uid
                elif pod_ownership(debt.identity, meta, debt.component_label) is not Ownership.MINE:
                    log.warning(
                        "kubespawner pod=%s/%s state=owed-deletion-dropped: the pod of that "
                        "name is not this server's",
                        debt.namespace,
                        debt.name,
                    )
                    return True
                else:
                    uid = meta.get("uid")
            await self.api.delete(
                PODS,
                debt.namespace,
                debt.name,
                grace_period_seconds=debt.grace_period_seconds,
                uid=uid,
            )
            return True
        except Conflict:  # the uid precondition failed: that pod is gone
            return True
        except ApiError as e:
            debt.delay = min(BACKOFF_MAX, debt.delay * 2) * random.uniform(0.8, 1.2)
            log.warning(
                "kubespawner pod=%s/%s state=owed-deletion-retry attempt=%d error=%s "
                "next_in=%.1fs",
                debt.namespace,
                debt.name,
                debt.attempts,
                e,
                debt.delay,
            )
            return False


_reconcilers: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[int, DeletionReconciler]
] = weakref.WeakKeyDictionary()


def deletion_reconciler(api: KubeApi) -> DeletionReconciler:
    """The reconciler of ``api`` on the running loop (created on first use)."""
    per_loop = _reconcilers.setdefault(asyncio.get_running_loop(), {})
    reconciler = per_loop.get(id(api))
    if reconciler is None or reconciler.api is not api:
        reconciler = per_loop[id(api)] = DeletionReconciler(api)
    return reconciler


def reconcilers() -> list[DeletionReconciler]:
    """Every reconciler of the running loop."""
    return list(_reconcilers.get(asyncio.get_running_loop(), {}).values())


async def pin_unknown_debts(
    namespace: str, name: str, owned: Callable[[dict[str, Any]], bool]
) -> None:
    """:meth:`DeletionReconciler.pin_unknown` in every reconciler of the running loop
    (a stop made with other API settings, e.g. before a configuration change, owes its
    debt to another client's reconciler)."""
    for reconciler in reconcilers():
        await reconciler.pin_unknown(namespace, name, owned)


async def stop_reconcilers() -> None:
    """Stop every reconciler of the running loop (hub shutdown, test teardown)."""
    per_loop = _reconcilers.pop(asyncio.get_running_loop(), {})
    await asyncio.gather(*(r.stop() for r in per_loop.values()))
