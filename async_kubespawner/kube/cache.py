"""The in-memory store a reflector fills: trimmed objects, an event index, and waits on change.

Why trim: a pod as the API returns it is 5-40 KB of JSON (managedFields alone are often
half); a hub with 20,000 pods would spend hundreds of MB holding fields nobody reads.
Objects are cut on arrival to what the spawner reads (see :func:`trim_pod`), which keeps a
cached pod at well under 3 KB.

Why waits instead of polling: ``start()`` must return within milliseconds of the pod
becoming ready and ``stop()`` within milliseconds of it disappearing. Each wait registers
a predicate on one key; a change to that key evaluates only that key's waiters, so a
change costs O(waiters of that object), not O(all spawners).

Why listeners are called apart from the change: a listener is code of whoever subscribed
(a spawn's progress log, a hook) and may be slow. Called inside the change, each call
would hold up the reflector's watch loop, and with it every other spawn's events. Inside
a running event loop, changes are queued per key and delivered by loop callbacks of
their own, in short steps, so the watch loop applies the next events in between. An object's
listeners get its latest state (intermediate states of a slow-listened object are
skipped, as a reader of the cache would skip them); an event's listeners get every new
event. Waiters (:meth:`ObjectCache.wait_for`) are still woken inside the change: they
only resolve a future.

Why an event index: progress and fail-fast decisions for one server must cost
O(its own events). Events are indexed by the object they involve (namespace, kind, name)
and filtered by the involved object's uid, bounded per object and in total, so a
namespace with a noisy controller cannot make the hub run out of memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import orjson

from .entry import entry_version, pack_entry, unpack_entry
from .pod_list import (
    decode_event_list,
    decode_event_watch_line,
    decode_pod_list,
    decode_pod_watch_line,
)

log = logging.getLogger("async_kubespawner.kube")

Key = tuple[str, str]
Obj = dict[str, Any]
Predicate = Callable[[Obj | None], Any]
Listener = Callable[[Obj | None], None]


#: Longest stretch of listener calls the notifier makes before yielding to the loop.
_NOTIFY_STEP_SECONDS = 0.002

K = TypeVar("K")
P = TypeVar("P")


class _Notifier(Generic[K, P]):
    """Delivers changes to listeners from loop callbacks of its own, not from the code
    that changed the cache.

    ``coalesce``: keep only the latest payload per key (object states); otherwise every
    payload is delivered in order (events). Deliveries run in steps of at most
    ``_NOTIFY_STEP_SECONDS``, each a plain loop callback (cheaper than a task per burst),
    so the watch loop runs between steps. Outside a running event loop (plain synchronous
    use of a cache), listeners are called at once.
    """

    def __init__(self, listeners: dict[K, list[Callable[[P], None]]], coalesce: bool) -> None:
        self._listeners = listeners
        self._coalesce = coalesce
        self._pending: dict[K, list[P]] = {}
        self._scheduled = False
        self._idle_waiters: list[asyncio.Future[None]] = []

    def notify(self, key: K, payload: P) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._deliver(key, [payload])
            return
        queued = self._pending.get(key)
        if queued is None or self._coalesce:
            self._pending[key] = [payload]
        else:
            queued.append(payload)
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._step)

    def _step(self) -> None:
        started = time.perf_counter()
        while self._pending:
            key = next(iter(self._pending))
            self._deliver(key, self._pending.pop(key))
            if self._pending and time.perf_counter() - started > _NOTIFY_STEP_SECONDS:
                asyncio.get_running_loop().call_soon(self._step)  # the watch loop runs first
                return
        self._scheduled = False
        waiters, self._idle_waiters = self._idle_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _deliver(self, key: K, payloads: list[P]) -> None:
        for payload in payloads:
            for listener in list(self._listeners.get(key, ())):
                try:
                    listener(payload)
                except Exception:
                    log.exception("cache listener for %s failed", key)

    async def idle(self) -> None:
        """Return once every change queued so far has been delivered."""
        if not self._scheduled:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._idle_waiters.append(waiter)
        await waiter

    @property
    def pending(self) -> int:
        """Keys with changes not yet delivered (for tests and diagnostics)."""
        return len(self._pending)


def _subscribe(registry: dict[Any, list[Any]], key: Any, listener: Any) -> Callable[[], None]:
    """Add ``listener`` under ``key``; the returned call removes it (once, however often
    it is called) and drops the key with its last listener, so finished spawns leave
    no entries behind."""
    registry.setdefault(key, []).append(listener)

    def unsubscribe() -> None:
        listeners = registry.get(key)
        if listeners is not None and listener in listeners:
            listeners.remove(listener)
            if not listeners:
                del registry[key]

    return unsubscribe


# Annotations that can be large and that nobody reading the cache needs.
# Labels and annotations the spawner reads: JupyterHub's own (owner of a pod: username,
# servername) and the component label its reflector selects on. Others (chart, release,
# heritage, ...) are set by the operator and read by nobody here.
_KEPT_PREFIXES = ("hub.jupyter.org/", "component", "app.kubernetes.io/component")
# Annotations nobody reads from the cache (the create id is kept: start() recognises its
# new pod on the watch by it, before the create response arrives).
_DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


_KEPT_CONDITIONS = frozenset({"PodScheduled", "Ready"})


# The trim functions below run for every pod of a first list (100,000 in a big hub) and
# every watch event, so they are plain loops: on Python 3.11 each comprehension is a
# function call with objects of its own, which heap tracing and the allocator both feel.


def _kept_entries(mapping: dict[str, Any], dropped: tuple[str, ...] = ()) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for k, v in mapping.items():
        if k.startswith(_KEPT_PREFIXES) and k not in dropped:
            kept[k] = v
    return kept


def _trim_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": meta.get("name"),
        "namespace": meta.get("namespace") or "",
        "uid": meta.get("uid"),
        "resourceVersion": meta.get("resourceVersion"),
    }
    if meta.get("deletionTimestamp"):
        out["deletionTimestamp"] = meta["deletionTimestamp"]
    labels = meta.get("labels")
    if labels:
        kept = _kept_entries(labels)
        if kept:
            out["labels"] = kept
    annotations = meta.get("annotations")
    if annotations:
        kept = _kept_entries(annotations, _DROPPED_ANNOTATIONS)
        if kept:
            out["annotations"] = kept
    return out


_STATE_DETAILS = ("reason", "message", "exitCode", "signal")


def _trim_state(state: dict[str, Any] | None) -> dict[str, Any]:
    """A container state without its timestamps and ids: which state, and why."""
    if not state:
        return {}
    out: dict[str, Any] = {}
    for name, detail in state.items():
        kept: dict[str, Any] = {}
        if detail:
            for k, v in detail.items():
                if k in _STATE_DETAILS:
                    kept[k] = v
        out[name] = kept
    return out


def _trim_container_status(status: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": status.get("name") or "",
        "ready": bool(status.get("ready", False)),
        "restartCount": status.get("restartCount", 0),
        "state": _trim_state(status.get("state")),
    }
    if status.get("lastState"):
        out["lastState"] = _trim_state(status["lastState"])
    return out


_CONDITION_FIELDS = ("type", "status", "reason", "message")


def trim_pod(pod: Obj) -> Obj:
    """Keep what the lifecycle reads: identity, labels, node, IP, phase, conditions,
    container states and the notebook port. Everything else (the spec's env with its
    API token, volumes, managedFields) is dropped on arrival.
    """
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    containers = []
    for c in spec.get("containers") or []:
        trimmed_c: dict[str, Any] = {"name": c.get("name") or ""}
        ports = []
        for p in c.get("ports") or ():
            ports.append({"name": p.get("name") or "", "containerPort": p.get("containerPort")})
        if ports:
            trimmed_c["ports"] = ports
        containers.append(trimmed_c)
    trimmed_spec: dict[str, Any] = {"containers": containers}
    if spec.get("nodeName"):
        trimmed_spec["nodeName"] = spec["nodeName"]
    trimmed_status: dict[str, Any] = {}
    for scalar in ("phase", "podIP", "reason", "message"):
        if status.get(scalar):
            trimmed_status[scalar] = status[scalar]
    if status.get("conditions"):
        # Only the conditions the lifecycle reads, and only while they are not met (why a
        # pod cannot be scheduled or is not ready). A running pod has five true ones, each
        # costing a few hundred bytes per pod; readiness is read from container states.
        unmet = []
        for c in status["conditions"]:
            if c.get("type") in _KEPT_CONDITIONS and c.get("status") != "True":
                condition: dict[str, Any] = {}
                for k in _CONDITION_FIELDS:
                    if c.get(k):
                        condition[k] = c[k]
                unmet.append(condition)
        if unmet:
            trimmed_status["conditions"] = unmet
    for field in ("containerStatuses", "initContainerStatuses"):
        if status.get(field):
            statuses = []
            for s in status[field]:
                statuses.append(_trim_container_status(s))
            trimmed_status[field] = statuses
    return {
        "kind": "Pod",
        "metadata": _trim_metadata(pod.get("metadata") or {}),
        "spec": trimmed_spec,
        "status": trimmed_status,
    }


def trim_generic(obj: Obj) -> Obj:
    """Identity and status only: enough to confirm that an object exists and its phase."""
    out: Obj = {"metadata": _trim_metadata(obj.get("metadata") or {})}
    if obj.get("kind"):
        out["kind"] = obj["kind"]
    status = obj.get("status")
    if isinstance(status, dict) and status.get("phase"):
        out["status"] = {"phase": status["phase"]}
    return out


def trim_event(event: Obj) -> Obj:
    meta = event.get("metadata") or {}
    involved = event.get("involvedObject") or {}
    out: Obj = {
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "involvedObject": {
            k: involved.get(k) for k in ("kind", "name", "namespace", "uid") if involved.get(k)
        },
    }
    for scalar in (
        "reason",
        "message",
        "type",
        "count",
        "firstTimestamp",
        "lastTimestamp",
        "eventTime",
    ):
        if event.get(scalar):
            out[scalar] = event[scalar]
    return out


def object_key(obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or "")


class _Waiter:
    __slots__ = ("future", "predicate")

    def __init__(self, predicate: Predicate, future: asyncio.Future[Obj | None]) -> None:
        self.predicate = predicate
        self.future = future


Packed = tuple[Key, str, bytes]  # (key, resourceVersion, the entry: see kube/entry.py)


def pack_json(obj: Any) -> bytes:
    """Compact JSON of ``obj`` to keep for a long time (cache entries, progress logs).

    Why bytes: they are invisible to Python's cyclic garbage collector (see
    :class:`ObjectCache`). Why the copy: orjson encodes ~10x faster than ``json``, but the
    bytes object it returns keeps its whole output buffer (~8 KB whatever the length);
    the copy (a few hundred ns) is exactly as long as the JSON, which is what keeps a
    cached pod under 1 KB.
    """
    return memoryview(orjson.dumps(obj)).tobytes()


#: List pages of objects trimmed by these functions are parsed into only the keys the
#: trim reads (kube/pod_list.py); any other trim gets whole objects.
_PAGE_DECODERS: dict[Callable[[Obj], Obj], Callable[[bytes], Obj]] = {trim_pod: decode_pod_list}
#: Likewise for the lines of a watch (kube/pod_list.py).
_WATCH_DECODERS: dict[Callable[[Obj], Obj], Callable[[bytes | memoryview], Obj]] = {
    trim_pod: decode_pod_watch_line
}


class ObjectCache:
    """Objects of one kind keyed by (namespace, name), trimmed on arrival.

    Each object is stored as one bytes object (:mod:`.entry`: its resourceVersion and a
    lossless compact JSON of its trimmed form) and decoded on read. Why: bytes are
    invisible to Python's cyclic garbage collector, so 100,000 cached pods add nothing to
    the full collections that would otherwise pause the hub's event loop (as nested
    dicts they would add ~1,000,000 tracked objects), and they take a fraction of the
    memory. A read costs a few microseconds and returns a fresh dict, so no caller can
    corrupt the cache by mutating what it got. Keys share one string per namespace.
    """

    def __init__(self, trim: Callable[[Obj], Obj] = trim_generic) -> None:
        self._trim = trim
        self._objects: dict[Key, bytes] = {}
        self._namespaces: dict[str, str] = {}
        self._waiters: dict[Key, list[_Waiter]] = {}
        self._listeners: dict[Key, list[Listener]] = {}
        self._notifier: _Notifier[Key, Obj | None] = _Notifier(self._listeners, coalesce=True)

    def __len__(self) -> int:
        return len(self._objects)

    def __contains__(self, key: object) -> bool:
        return key in self._objects

    def get(self, key: Key) -> Obj | None:
        entry = self._objects.get(key)
        return None if entry is None else unpack_entry(key, entry)

    def keys(self) -> list[Key]:
        return list(self._objects)

    def version(self, key: Key) -> str | None:
        """The cached object's resourceVersion (None: absent), without decoding it: lets a
        reader keep what it derived from an object until the object changes."""
        entry = self._objects.get(key)
        return None if entry is None else entry_version(entry)

    def _pack(self, trimmed: Obj, *, reuse: bool = False) -> Packed:
        """The cache entry of one trimmed object, under a key whose namespace string is
        shared with every other key of that namespace (``reuse``: see pack_entry)."""
        namespace, name = object_key(trimmed)
        namespace = self._namespaces.setdefault(namespace, namespace)
        key = (namespace, name)
        rv = trimmed["metadata"].get("resourceVersion") or ""
        return key, rv, pack_entry(key, rv, trimmed, reuse=reuse)

    # -- changes (called by the reflector) ----------------------------------------------

    def upsert(self, obj: Obj) -> None:
        trimmed = self._trim(obj)
        key, _, entry = self._pack(trimmed)
        self._objects[key] = entry
        # Those waiting on this key get the trimmed dict itself: an equal copy of what is
        # stored (the entry is lossless), without decoding it again per event.
        self._changed(key, entry, trimmed)

    def remove(self, obj: Obj) -> None:
        key = object_key(obj)
        if self._objects.pop(key, None) is not None:
            self._changed(key, None)

    def trim(self, obj: Obj) -> Packed:
        """Cut and pack an object as the cache keeps it (the reflector does this page by
        page, so a 20,000-object relist never does it all in one event-loop step)."""
        return self._pack(self._trim(obj), reuse=True)  # nobody else sees this trim

    def decode_page(self, raw: bytes) -> Obj:
        """Parse one list page (its items then go through :meth:`trim`): for pods, only
        the keys :func:`trim_pod` reads are parsed (kube/pod_list.py)."""
        decode = _PAGE_DECODERS.get(self._trim)
        if decode is None:
            page: Obj = orjson.loads(raw)
            return page
        return decode(raw)

    def decode_event(self, line: bytes | memoryview) -> Obj:
        """Parse one watch line for :meth:`upsert`/:meth:`remove`: for pods, only the
        keys :func:`trim_pod` reads (kube/pod_list.py)."""
        decode = _WATCH_DECODERS.get(self._trim)
        if decode is None:
            event: Obj = orjson.loads(line)
            return event
        return decode(line)

    def replace_all(self, objects: list[Any], *, trimmed: bool = False) -> None:
        """A relist: the new list is the truth; what it lacks was deleted meanwhile.

        With ``trimmed``, ``objects`` are what :meth:`trim` returned."""
        fresh: dict[Key, bytes] = {}
        versions: dict[Key, str] = {}
        for obj in objects:
            key, rv, entry = obj if trimmed else self.trim(obj)
            fresh[key] = entry
            versions[key] = rv
        old = self._objects
        self._objects = fresh
        for key in old.keys() - fresh.keys():
            self._changed(key, None)
        for key, entry in fresh.items():
            previous = old.get(key)
            if previous is None or entry_version(previous) != versions[key]:
                self._changed(key, entry)

    def load_page(self, objects: list[Packed]) -> None:
        """Add one page of a first list (what :meth:`trim` returned), removing nothing.

        The reflector calls this page by page while its first list is in progress, so a
        key already listed can be read before the last page arrives; the list's
        :meth:`replace_all` then drops whatever the complete list lacks.
        """
        for key, rv, entry in objects:
            previous = self._objects.get(key)
            self._objects[key] = entry
            if previous is None or entry_version(previous) != rv:
                self._changed(key, entry)

    def drop_unlisted(self, listed: set[Key]) -> None:
        """End a first list loaded with :meth:`load_page`: remove what the list lacks
        (what an earlier attempt of it loaded and has been deleted since)."""
        if len(listed) == len(self._objects):
            return  # every cached key was listed (the keys of the pages are distinct)
        for key in [k for k in self._objects if k not in listed]:
            del self._objects[key]
            self._changed(key, None)

    def _changed(self, key: Key, entry: bytes | None, decoded: Obj | None = None) -> None:
        waiters = self._waiters.get(key)
        listeners = self._listeners.get(key)
        if not waiters and not listeners:
            return
        obj = decoded if decoded is not None or entry is None else unpack_entry(key, entry)
        if waiters:
            for waiter in list(waiters):
                if waiter.future.done():
                    continue
                try:
                    if waiter.predicate(obj):
                        waiter.future.set_result(obj)
                except Exception as e:
                    waiter.future.set_exception(e)
        if listeners:
            self._notifier.notify(key, obj)

    # -- waiting ----------------------------------------------------------------------

    async def wait_for(
        self,
        key: Key,
        predicate: Predicate,
        timeout: float | None,  # noqa: ASYNC109 (a deadline is part of every wait's contract)
    ) -> Obj | None:
        """Return the object (or ``None`` if absent) as soon as ``predicate`` holds for it.

        Raises ``TimeoutError`` when it does not hold within ``timeout`` seconds.
        """
        current = self.get(key)
        if predicate(current):
            return current
        future: asyncio.Future[Obj | None] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(predicate, future)
        self._waiters.setdefault(key, []).append(waiter)
        try:
            async with asyncio.timeout(timeout):
                return await future
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.remove(waiter)
                if not waiters:
                    del self._waiters[key]

    def listen(self, key: Key, listener: Listener) -> Callable[[], None]:
        """Call ``listener(obj_or_None)`` after changes of ``key`` (with its latest state,
        from the cache's notifier task); returns the unsubscribe."""
        return _subscribe(self._listeners, key, listener)

    async def listeners_idle(self) -> None:
        """Return once listeners have heard every change made so far."""
        await self._notifier.idle()


EventKey = tuple[str, str, str]  # (namespace, involved kind, involved name)
EventListener = Callable[[Obj], None]


#: One kept event: (resourceVersion, uid of the involved object, compact JSON of it trimmed).
PackedEvent = tuple[str, str, bytes]


#: Entries of removed events the Event index's eviction order may hold beyond twice what
#: it keeps before it drops them all in one pass.
_STALE_SLACK = 1024


class EventIndex:
    """Kubernetes Events indexed by the object they involve, bounded per object and in total.

    Only events about the kinds in ``kinds`` are kept (pods and PVCs by default): those are
    the ones a spawn's progress and failure diagnosis read. Like :class:`ObjectCache`, each
    is kept as bytes: 20,000 kept events as dicts would be 60,000 more objects for every
    full garbage collection of the hub to walk; reads (a spawn's few events) decode them.
    """

    def __init__(
        self,
        *,
        per_object_limit: int = 100,
        total_limit: int = 20000,
        kinds: frozenset[str] = frozenset({"Pod", "PersistentVolumeClaim"}),
    ) -> None:
        self.per_object_limit = per_object_limit
        self.total_limit = total_limit
        self.kinds = kinds
        self._by_object: dict[EventKey, OrderedDict[str, PackedEvent]] = {}
        # Every kept event: its uid -> its object key and its insertion number, flat (a
        # tuple of strings and an int is left alone by the collector, a nested one not
        # always).
        self._order: dict[str, tuple[str, str, str, int]] = {}
        # (uid, insertion number) in insertion order: the eviction order. Why not one
        # OrderedDict: at the total limit every new event evicts the oldest, and an
        # OrderedDict of 20,000 under that churn rebuilds itself every few thousand
        # operations, 2-4 ms of one loop step each (10,000-spawn storm). A deque never
        # rebuilds; entries of events removed since are skipped when they come up.
        self._fifo: deque[tuple[str, int]] = deque()
        self._inserted = 0
        self._listeners: dict[EventKey, list[EventListener]] = {}
        self._notifier: _Notifier[EventKey, Obj] = _Notifier(self._listeners, coalesce=False)

    def __len__(self) -> int:
        return len(self._order)

    @staticmethod
    def _key_of(event: Obj) -> EventKey:
        involved = event.get("involvedObject") or {}
        namespace = (
            involved.get("namespace") or (event.get("metadata") or {}).get("namespace") or ""
        )
        return (namespace, involved.get("kind") or "", involved.get("name") or "")

    def for_object(
        self, namespace: str, name: str, *, kind: str = "Pod", uid: str | None = None
    ) -> list[Obj]:
        events = self._by_object.get((namespace, kind, name))
        if not events:
            return []
        return [
            orjson.loads(packed)
            for _, involved_uid, packed in events.values()
            if uid is None or involved_uid == uid
        ]

    def listen(
        self, namespace: str, name: str, listener: EventListener, *, kind: str = "Pod"
    ) -> Callable[[], None]:
        return _subscribe(self._listeners, (namespace, kind, name), listener)

    async def listeners_idle(self) -> None:
        """Return once listeners have heard every event added so far."""
        await self._notifier.idle()

    # -- changes (called by the reflector) ----------------------------------------------

    @staticmethod
    def decode_page(raw: bytes) -> Obj:
        """Parse one Event list page into only the keys :func:`trim_event` reads."""
        return decode_event_list(raw)

    @staticmethod
    def decode_event(line: bytes | memoryview) -> Obj:
        """Parse one Event watch line into only the keys :func:`trim_event` reads."""
        return decode_event_watch_line(line)

    def trim(self, event: Obj) -> Obj | None:
        involved = event.get("involvedObject") or {}
        if involved.get("kind") not in self.kinds:
            return None
        return trim_event(event)

    def upsert(self, event: Obj, *, trimmed: bool = False) -> None:
        kept = event if trimmed else self.trim(event)
        if kept is None:
            return
        self._upsert_trimmed(kept)

    def _upsert_trimmed(self, trimmed: Obj) -> None:
        uid = trimmed["metadata"].get("uid") or f"{object_key(trimmed)}"
        key = self._key_of(trimmed)
        bucket = self._by_object.setdefault(key, OrderedDict())
        previous = bucket.get(uid)
        is_new = previous is None
        rv = trimmed["metadata"].get("resourceVersion") or ""
        if previous is not None and previous[0] == rv:
            return  # seen already (a relist repeats what we hold)
        involved_uid = (trimmed.get("involvedObject") or {}).get("uid") or ""
        bucket[uid] = (rv, involved_uid, pack_json(trimmed))
        if is_new:
            self._inserted += 1
            self._order[uid] = (*key, self._inserted)
            self._fifo.append((uid, self._inserted))
            while len(bucket) > self.per_object_limit:
                old_uid, _ = bucket.popitem(last=False)
                self._order.pop(old_uid, None)
            while len(self._order) > self.total_limit:
                self._evict_oldest()
            if len(self._fifo) > 2 * len(self._order) + _STALE_SLACK:
                self._compact()
        if key in self._listeners:
            self._notifier.notify(key, trimmed)

    def remove(self, event: Obj) -> None:
        uid = (event.get("metadata") or {}).get("uid")
        if not uid:
            return
        kept = self._order.pop(uid, None)
        if kept is None:
            return
        self._forget(uid, kept[:3])
        self._drop_stale()

    def _forget(self, uid: str, key: EventKey) -> None:
        bucket = self._by_object.get(key)
        if bucket is not None:
            bucket.pop(uid, None)
            if not bucket:
                del self._by_object[key]

    def _is_kept(self, entry: tuple[str, int]) -> bool:
        kept = self._order.get(entry[0])
        return kept is not None and kept[3] == entry[1]

    def _evict_oldest(self) -> None:
        """Drop the oldest kept event (skipping the order's entries of removed ones)."""
        while self._fifo:
            uid, number = self._fifo.popleft()
            kept = self._order.get(uid)
            if kept is not None and kept[3] == number:
                del self._order[uid]
                self._forget(uid, kept[:3])
                return

    def _drop_stale(self) -> None:
        """After a removal: removed events at the head of the eviction order go at once
        (Events expire oldest first)."""
        fifo = self._fifo
        while fifo and not self._is_kept(fifo[0]):
            fifo.popleft()
        if len(fifo) > 2 * len(self._order) + _STALE_SLACK:
            self._compact()

    def _compact(self) -> None:
        """Drop every entry of a removed event at once: the order had become more than
        twice as long as what is kept (removals, or per-object evictions, away from its
        head), which is rare; the order's length stays bounded by what is kept."""
        self._fifo = deque(entry for entry in self._fifo if self._is_kept(entry))

    def replace_all(self, events: list[Obj], *, trimmed: bool = False) -> None:
        """A relist: keep what the server still has, add what is new (listeners hear new)."""
        present = {(e.get("metadata") or {}).get("uid") for e in events}
        for uid in [u for u in self._order if u not in present]:
            self.remove({"metadata": {"uid": uid}})
        for event in events:
            self.upsert(event, trimmed=trimmed)
