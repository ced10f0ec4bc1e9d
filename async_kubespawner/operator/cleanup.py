"""A failed start's NotebookServer, deleted in the background when the stop that should
have deleted it could not.

Why: under extreme hub starvation a NotebookServer create timed out at the client while
the API server made the object; the start failed before the server's env Secret was
created, and JupyterHub's cleanup ``stop()`` failed too (its delete timed out as well).
Nothing tried again: a NotebookServer was left whose pod has no env Secret and never
starts. Likewise a create that got no answer may still land *after* a stop found nothing
to delete. :func:`clean_up` retries such a deletion in the background, bounded.

What is deleted: only the NotebookServer provably made for this server. A
:class:`CleanupTarget` names it by the uid the spawner learnt (its create's answer, or the
cache at stop time) or, when the create got no answer, by the create id annotation that
create carried; the object must also name this server in ``spec.identity``. The DELETE
carries the object's uid as a precondition, so an object replaced in between (a new start
of the server) is never deleted. The env Secret is not deleted here: it is owned by the
NotebookServer (an ownerReference), so the garbage collector removes it with it, and the
hub, which may not read Secrets, could not prove one its own anyway.

Bounded: jittered exponential backoff (:class:`CleanupRetry`: from 1 s, doubling to at
most 30 s) for at most 300 s; a create that got no answer is awaited for at most 60 s
after it was sent (through the NotebookServer cache: no polling). A new ``start()`` of
the server cancels a pending cleanup, since that start removes leftovers itself.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..kube.cache import ObjectCache
from ..kube.client import CREATE_ID_ANNOTATION, KubeApi
from ..kube.errors import ApiError, Conflict
from .kubeio import NOTEBOOK_SERVERS

log = logging.getLogger("async_kubespawner.operator.cleanup")

__all__ = ["CleanupRetry", "CleanupTarget", "clean_up"]


@dataclass(frozen=True)
class CleanupRetry:
    """How a background cleanup paces itself, and when it gives up."""

    #: First pause between attempts (seconds, jittered), doubled after each failure...
    first: float = 1.0
    #: ...up to this.
    cap: float = 30.0
    #: Seconds after which the cleanup gives up (and says what it left).
    budget: float = 300.0
    #: Seconds after a create got no answer during which it may still land.
    settle: float = 60.0


@dataclass(frozen=True)
class CleanupTarget:
    """The one NotebookServer a cleanup may delete (see the module docstring)."""

    namespace: str
    name: str
    user: str
    server: str
    #: The object's uid, when the spawner learnt it.
    uid: str | None = None
    #: The create id annotation of the spawner's last create, when it made one.
    create_id: str | None = None
    #: Monotonic time that create was sent (for the settle window).
    created_at: float | None = None

    @property
    def provable(self) -> bool:
        """Whether anything could ever prove an object to be this target."""
        return bool(self.uid or self.create_id)

    @property
    def answer_unknown(self) -> bool:
        """The create got no answer: its object may not have landed yet."""
        return self.uid is None and self.create_id is not None

    def owns(self, obj: dict[str, Any]) -> bool:
        """Whether ``obj`` is provably the object this target names."""
        meta = obj.get("metadata") or {}
        identity = (obj.get("spec") or {}).get("identity") or {}
        if identity.get("user") != self.user or (identity.get("server") or "") != self.server:
            return False
        if self.uid:
            return bool(meta.get("uid") == self.uid)
        annotations = meta.get("annotations") or {}
        return self.create_id is not None and annotations.get(CREATE_ID_ANNOTATION) == (
            self.create_id
        )


async def clean_up(
    api: KubeApi,
    cache: ObjectCache | None,
    target: CleanupTarget,
    retry: CleanupRetry = CleanupRetry(),
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> str:
    """Delete ``target``'s NotebookServer if it exists; returns what happened.

    ``deleted`` (the DELETE was accepted), ``gone`` (nothing of that name, or only after
    the settle window), ``deleting`` (already being deleted: the operator's finalizer
    finishes it), ``not-ours`` (an object of that name that the target does not prove to
    be its own; left alone), ``unprovable`` (the target names nothing provable), or
    ``gave-up`` (still failing when the budget ran out, or refused for good).
    """
    if not target.provable:
        return "unprovable"
    return await _Cleanup(api, cache, target, retry, clock).run(sleep)


class _Cleanup:
    def __init__(
        self,
        api: KubeApi,
        cache: ObjectCache | None,
        target: CleanupTarget,
        retry: CleanupRetry,
        clock: Callable[[], float],
    ) -> None:
        self.api, self.cache, self.target, self.retry, self.clock = (
            api, cache, target, retry, clock
        )
        #: Whether the create that got no answer has been waited for already: once it
        #: has shown, a later "not found" means gone, not "not landed yet".
        self.settled = not target.answer_unknown or cache is None or target.created_at is None
        self.where = f"{target.namespace}/{target.name}"

    async def run(self, sleep: Callable[[float], Awaitable[None]]) -> str:
        started = self.clock()
        delay = self.retry.first
        attempt = 0
        while True:
            attempt += 1
            try:
                outcome = await self.attempt()
            except ApiError as e:
                if not e.retriable:
                    log.warning("NotebookServer %s: cleanup refused (%s); left as is",
                                self.where, e)
                    return "gave-up"
                pause = min(self.retry.cap, delay) * random.uniform(0.8, 1.2)
                if self.clock() - started + pause > self.retry.budget:
                    log.warning(
                        "NotebookServer %s: cleanup still failing after %d attempts (%s); "
                        "giving up: delete it by hand if it is still there",
                        self.where, attempt, e,
                    )
                    return "gave-up"
                log.info("NotebookServer %s: cleanup attempt %d failed (%s); retrying in "
                         "%.1fs", self.where, attempt, e, pause)
                delay = min(self.retry.cap, delay * 2)
                await sleep(pause)
                continue
            if outcome is not None:
                log.info("NotebookServer %s: cleanup %s after %d attempt(s)", self.where,
                         outcome, attempt)
                return outcome

    async def attempt(self) -> str | None:
        """One read-check-delete; ``None``: look again at once (the object appeared, or
        was replaced between the read and the delete)."""
        target = self.target
        obj = await self.api.get_or_none(
            NOTEBOOK_SERVERS, target.namespace, target.name, retry_timeout=0
        )
        if obj is None:
            if self.settled:
                return "gone"
            self.settled = True
            assert self.cache is not None and target.created_at is not None
            left = target.created_at + self.retry.settle - self.clock()
            if left <= 0:
                return "gone"
            try:  # a create that got no answer may still land: wait for it to show
                await self.cache.wait_for(
                    (target.namespace, target.name), lambda s: s is not None, left
                )
            except TimeoutError:
                return "gone"
            return None
        meta = obj.get("metadata") or {}
        if not target.owns(obj):
            return "not-ours"
        if meta.get("deletionTimestamp"):
            return "deleting"
        try:
            deleted = await self.api.delete(
                NOTEBOOK_SERVERS, target.namespace, target.name, uid=meta.get("uid"),
                retry_timeout=0,
            )
        except Conflict:
            return None  # replaced since the read: read again
        return "deleted" if deleted is not None else "gone"
