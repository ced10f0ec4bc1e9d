"""The few store operations the controllers share: list-then-watch, status writes, events.

The scheduler, kubelet and PVC binder talk to the store only through these helpers, so a
change in the store's seam (docs/contracts.md §1) is absorbed here once.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from kubesim.store import PodLog

log = logging.getLogger("kubesim.cluster")


class StoreLike(Protocol):
    """The part of ``kubesim.store.Store`` the cluster uses (docs/contracts.md §1).

    The controllers are clients of the store through these calls only, as a real
    scheduler and kubelet are clients of the API server through its API.
    """

    pod_log_source: Callable[[str, str, dict[str, Any]], PodLog | Awaitable[PodLog]] | None

    def resource(self, plural: str, group: str = "") -> Any: ...
    async def create(
        self, rt: Any, namespace: str | None, obj: dict[str, Any], *, owned: bool = False
    ) -> dict[str, Any]: ...
    def get(self, rt: Any, namespace: str | None, name: str) -> dict[str, Any]: ...
    def list(
        self, rt: Any, namespace: str | None = None
    ) -> tuple[builtins.list[dict[str, Any]], str]: ...
    async def patch(
        self,
        rt: Any,
        namespace: str | None,
        name: str,
        patch: Any,
        patch_type: str,
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]: ...
    async def delete(
        self,
        rt: Any,
        namespace: str | None,
        name: str,
        *,
        grace_period_seconds: int | None = None,
        preconditions: dict[str, Any] | None = None,
    ) -> dict[str, Any]: ...
    def watch(
        self, rt: Any, namespace: str | None = None, *, resource_version: str | None = None
    ) -> Any: ...
    async def bind(self, namespace: str, name: str, node_name: str) -> dict[str, Any]: ...


def status_code(exc: BaseException) -> int | None:
    """The HTTP code of a store ``StatusError`` (duck-typed, so this module needs no import of it)."""
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) else None


def is_missing(exc: BaseException) -> bool:
    return status_code(exc) == 404


def key_of(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or "")


async def _deliver(
    handle: Callable[[str, dict[str, Any]], Awaitable[None] | None], kind: str, obj: dict[str, Any]
) -> None:
    try:
        result = handle(kind, obj)
        if result is not None:
            await result
    except asyncio.CancelledError:
        raise
    except Exception:  # one bad object must not stop the controller
        log.exception("cluster controller failed to handle %s %s", kind, key_of(obj))


def _nothing_ready() -> None:
    return None


async def list_and_watch(
    store: StoreLike,
    rt: Any,
    handle: Callable[[str, dict[str, Any]], Awaitable[None] | None],
    on_relist: Callable[[set[tuple[str, str]]], Awaitable[None] | None] | None = None,
) -> None:
    """Call ``handle(type, object)`` for every existing object (as ADDED), then for each change.

    Runs until cancelled, like an informer: the watch starts at the list's resourceVersion
    so nothing between the two is lost; a watch the store closes (a scripted fault, an API
    server "restart") is resumed from the last version seen; when that version has
    expired (410) the controller relists, and ``on_relist`` gets the keys that exist now so
    it can forget objects deleted while it was not watching.
    """
    idle_closes = 0
    while True:
        items, version = store.list(rt)
        for item in items:
            await _deliver(handle, "ADDED", item)
        if on_relist is not None:
            result = on_relist({key_of(item) for item in items})
            if result is not None:
                await result
        expired = False
        while not expired:
            watch = store.watch(rt, resource_version=version)
            # a store of another make may lack it: then one event per iteration step
            next_ready = getattr(watch, "next_ready", _nothing_ready)
            delivered = 0
            try:
                async for first in watch:
                    # the events already queued behind it are taken without an async
                    # iteration step each (a burst queues four per deleted pod)
                    event: Any = first
                    while event is not None:
                        if event.type == "ERROR":
                            expired = True  # 410 Gone: relist
                            break
                        version = (event.object.get("metadata") or {}).get(
                            "resourceVersion", version
                        )
                        if event.type in ("ADDED", "MODIFIED", "DELETED"):
                            delivered += 1
                            await _deliver(handle, event.type, event.object)
                        event = next_ready()
                    if expired:
                        break
            finally:
                watch.close()
            # Closed under us: resume at once; only a watch that keeps closing without
            # delivering anything gets a growing pause (a reconnect back-off, as client-go's).
            idle_closes = 0 if delivered else idle_closes + 1
            if idle_closes > 1:
                await asyncio.sleep(min(0.01 * 2**idle_closes, 1.0))


async def patch_status(
    store: StoreLike, pods: Any, pod: dict[str, Any], status: dict[str, Any]
) -> dict[str, Any] | None:
    """Merge-patch a pod's status; None when the pod is already gone."""
    namespace, name = key_of(pod)
    try:
        return await store.patch(
            pods, namespace, name, {"status": status}, "merge", subresource="status"
        )
    except Exception as exc:
        if is_missing(exc):
            return None
        raise


async def record(store: StoreLike, event: dict[str, Any]) -> None:
    """Create an Event, best effort, as the real kubelet's event recorder does.

    A refused event is never the pod's problem: a missing namespace (404), a duplicate
    name (409), or a namespace being terminated (403 — NamespaceLifecycle admission refuses
    new content there) must not crash the pod's worker.

    ``event`` is handed over (``owned``): every recorder builds a fresh dict for the call
    and never touches it again, so the store need not copy it first (a burst of
    deletions records a Killing event per pod).
    """
    events = store.resource("events")
    try:
        await store.create(events, event["metadata"]["namespace"], event, owned=True)
    except Exception as exc:
        if status_code(exc) not in (403, 404, 409):
            raise


def spawn(coro: Awaitable[Any], tasks: set[asyncio.Task[Any]], name: str) -> asyncio.Task[Any]:
    """Start a background task that is tracked (so stop() can cancel it) and logs crashes."""
    task = asyncio.ensure_future(coro)
    task.set_name(name)
    tasks.add(task)

    def done(t: asyncio.Task[Any]) -> None:
        tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:
            log.error("%s crashed", name, exc_info=t.exception())

    task.add_done_callback(done)
    return task


async def cancel_all(tasks: set[asyncio.Task[Any]]) -> None:
    for task in list(tasks):
        task.cancel()
    for task in list(tasks):
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
