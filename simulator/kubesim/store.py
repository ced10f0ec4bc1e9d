"""The API server's storage and watch machinery, independent of HTTP.

What a real kube-apiserver + etcd + garbage collector give their clients, in one
process: objects with uid/resourceVersion/creationTimestamp/generation, one global
resourceVersion across every kind, a bounded window of change history (so a watch or
list from a version that fell out of it gets 410 Expired, like the real watch cache),
watch fan-out to per-watcher queues, graceful pod deletion, finalizers, ownerReference
garbage collection and namespace termination.

The HTTP app (``app.py``) is one client of this store; the scheduler and kubelet
(``cluster/``) are others. The store knows nothing about either.

Stored objects are never mutated in place: every write builds a new dict. That lets
watch events, list results and the history share the same dicts and the same
serialised JSON bytes without defensive copies on the hot path.
"""

from __future__ import annotations

import asyncio
import bisect
import builtins
import collections
import contextlib
import ipaddress
import json
import logging
import math
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from . import errors
from .custom_resources import (
    CR_VERBS,
    CustomResourceVersion,
    storage_version_hash,
    version_info,
)
from .decoding import MAX_BODY_DEPTH, OBJECT_META_ORDER, decode, nested_deeper_than
from .defaulting import default_object
from .errors import StatusError
from .field_errors import invalid as field_invalid
from .field_errors import not_supported as field_not_supported
from .field_errors import required as field_required
from .json_values import clone_json
from .list_options import decode_continue, encode_continue  # noqa: F401  (re-exported)
from .managed_fields import (
    applied_set,
    decode_entries,
    merge_applied,
    owned_by_others,
    ownership_after_create,
    ownership_after_write,
    remove_paths,
)
from .namespaces import PLACEHOLDER_CA, root_ca_configmap, termination_conditions
from .owner_refs import OwnerState, Verdict, classify, invalid_namespace_event
from .patching import (
    PatchError,
    apply_json_patch,
    apply_merge_patch,
    apply_strategic_merge_patch,
)
from .resources import ResourceRegistry, ResourceType
from .selectors import SelectorError, parse_field_selector, parse_label_selector
from .timestamps import now_rfc3339
from .validation import (
    apply_schema_defaults,
    prune_unknown,
    validate_against_schema,
    validate_metadata,
    validate_object,
)
from .watch_cache import (
    EVENT_FRESH_SECONDS,
    LOWER_BOUND_CAPACITY,
    UPPER_BOUND_CAPACITY,
    WatchCacheWindows,
)

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (group, plural)
# A pod's log as the kubelet serves it: the text, an async iterator of text for
# follow=true, or None while the container has not started (the real 400 "waiting to start").
PodLog = str | AsyncIterator[str] | None
ObjKey = tuple[str, str]  # (namespace or "", name)

# Namespaces a fresh real cluster has.
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_GENERATE_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_CRD_KEY: Key = ("apiextensions.k8s.io", "customresourcedefinitions")
_NS_KEY: Key = ("", "namespaces")
_POD_KEY: Key = ("", "pods")
_PVC_KEY: Key = ("", "persistentvolumeclaims")
PVC_PROTECTION = "kubernetes.io/pvc-protection"


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON, as the real server writes it (no spaces).

    orjson serialises a pod ~10x faster than ``json``, and every write is serialised at
    least once for its response and its watchers; the ``json`` fallback covers what
    orjson refuses (integers beyond 64 bits that a client managed to store).
    """
    try:
        return orjson.dumps(obj)
    except TypeError:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def bad_selector(exc: Exception) -> StatusError:
    return errors.bad_request(str(exc))


@dataclass(slots=True)
class WatchEvent:
    """One watch event. ``object`` is shared with the store: treat it as read-only."""

    type: str  # ADDED | MODIFIED | DELETED | BOOKMARK | ERROR
    object: dict[str, Any]
    _line: bytes | None = field(default=None, repr=False)
    _object_json: bytes | None = field(default=None, repr=False)

    def object_json(self) -> bytes:
        """The object serialised once (also the body of the write's own response)."""
        if self._object_json is None:
            self._object_json = dumps(self.object)
        return self._object_json

    def line(self) -> bytes:
        """The event as one newline-terminated JSON line, serialised once and shared."""
        if self._line is None:
            self._line = (
                b'{"type":"' + self.type.encode() + b'","object":' + self.object_json() + b"}\n"
            )
        return self._line


@dataclass(slots=True)
class _Change:
    """One entry of the history window (what a watch from an older version replays)."""

    rv: int
    key: Key
    namespace: str
    type: str
    obj: dict[str, Any]
    old: dict[str, Any] | None
    at: float


class Watch:
    """One watcher: a bounded per-watcher queue filled by the store's fan-out.

    Iterate it (``async for event in watch``) to receive ``WatchEvent``s; the HTTP layer
    uses ``next_event`` with the pre-serialised lines. Iteration ends when the watch is
    closed (by ``close()``, a timeout, a scripted fault, a restart or an overflowing
    queue — the real server also drops watchers that fall too far behind).
    """

    def __init__(
        self,
        store: Store,
        rt: ResourceType,
        namespace: str | None,
        label_selector: Any,
        field_selector: Any,
        *,
        allow_bookmarks: bool,
        bookmark_interval: float,
        timeout_seconds: float | None,
        max_queue: int,
    ) -> None:
        self.store = store
        self.rt = rt
        self.namespace = namespace or None
        self._labels = label_selector
        self._fields = field_selector
        self.allow_bookmarks = allow_bookmarks
        self.bookmark_interval = bookmark_interval
        self.deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
        self._queue: collections.deque[WatchEvent] = collections.deque()
        self._max_queue = max_queue
        self._wakeup = asyncio.Event()
        self.closed = False
        self.close_reason = ""
        self._remaining: int | None = None  # close after this many more events (fault)
        self._last_bookmark = time.monotonic()
        self.delivered = 0
        # Set by the HTTP layer: writes event lines to the client's socket at once.
        self._direct: Callable[[bytes], bool] | None = None
        self._writing = False  # the consumer holds events it has not written yet
        # events of a burst held for one write (see _push); always older than the queue's
        self._held: list[WatchEvent] = []
        self._last_direct = -math.inf  # monotonic time of the last direct write

    # -- filled by the store -------------------------------------------------
    def _matches(self, obj: dict[str, Any]) -> bool:
        if self._labels is not None and not self._labels.matches(
            obj.get("metadata", {}).get("labels") or {}
        ):
            return False
        return self._fields is None or self._fields.matches(obj)

    def _offer(self, change: _Change, shared: WatchEvent | None = None) -> None:
        """Queue ``change`` as this watcher sees it (selector moves become ADDED/DELETED).

        ``shared`` is the live event every current watcher gets, so its JSON line is
        serialised once; replays from the history make their own (the history keeps no
        serialised bytes, which would cost kilobytes per remembered change).
        """
        if self.closed:
            return
        if self.namespace is not None and change.namespace != self.namespace:
            return
        event = shared if shared is not None else WatchEvent(change.type, change.obj)
        if self._labels is None and self._fields is None:
            self._push(event)
            return
        now_in = self._matches(change.obj)
        if change.type != "MODIFIED" or change.old is None:
            if now_in:
                self._push(event)
            return
        if self._fields is None and _labels_of(change.old) is _labels_of(change.obj):
            was_in = now_in  # the same labels (a status write shares them): same answer
        else:
            was_in = self._matches(change.old)
        if now_in and was_in:
            self._push(event)
        elif now_in:
            self._push(WatchEvent("ADDED", change.obj))
        elif was_in:
            self._push(WatchEvent("DELETED", change.obj))

    def attach_writer(self, write: Callable[[bytes], bool] | None) -> None:
        """Deliver events by calling ``write(lines)`` in the committing write itself.

        Why: a queued event waits for the stream's task to be scheduled, i.e. for the rest
        of the loop iteration in which it was committed. Under a burst (1,000 pods deleted
        at once) one iteration runs a hundred request handlers and kubelet workers, so
        every event committed early in it reached clients ~100 ms late. Writing at commit
        time takes the loop out of the delivery path, as on a real API server, where
        watch fan-out does not wait for unrelated requests.

        ``write`` returns False when it cannot take the line now (the client reads slower
        than we write): the event is queued and the stream's task takes over, with
        backpressure, until the queue is empty again. Order is kept because the direct
        path is only used while nothing is queued or being written by the task.

        Within a burst, events are written together rather than one send each (see
        ``_push``); ``write`` then gets several lines at once.
        """
        if write is None and self._held:
            self._spill()
        self._direct = write

    def begin_write(self) -> None:
        """The consumer took events off the queue and is writing them (no direct writes)."""
        self._writing = True

    def end_write(self) -> None:
        self._writing = False

    def _push(self, event: WatchEvent) -> None:
        """Hand ``event`` to the client: written now, held for the burst's write, or queued.

        Why hold: each write is a send() to the client's socket, and under a burst (a
        thousand pods deleted at once: four pod events and an Event each) those sends were
        a third of the server's CPU and woke the client once per event. So the first
        event after a quiet spell (``StoreOptions.watch_flush_interval``) is written at
        once, as before, and the ones that follow it within that interval are held and
        written together: at the first commit once the oldest has waited the interval,
        or when the loop comes round, whichever is first. The real API server does the
        same: its watch handler flushes the connection only when no further event is
        waiting. A held event is never overtaken: anything that must go through the
        queue first moves the held ones there.
        """
        if (
            self._direct is not None
            and not self._queue
            and not self._writing
            and self._remaining is None
        ):
            if self._held:
                self._held.append(event)
                return
            now = self.store.clock()
            if now - self._last_direct < self.store.options.watch_flush_interval:
                self._held.append(event)
                self.store._hold(self, now)
                return
            if self._direct(event.line()):
                self._last_direct = now
                self.delivered += 1
                return
        elif self._held:
            self._spill()
        self._enqueue(event)

    def _enqueue(self, event: WatchEvent) -> None:
        if len(self._queue) >= self._max_queue:
            self.close("watcher fell too far behind")
            return
        self._queue.append(event)
        self._wakeup.set()

    def _spill(self) -> None:
        """Move the held events to the queue (they go before anything queued later)."""
        held, self._held = self._held, []
        for event in held:
            self._enqueue(event)
            if self.closed:
                return

    def _flush(self) -> None:
        """Write the held events in one go (the store calls this; see ``_push``)."""
        if not self._held or self.closed:
            return
        if (
            self._direct is not None
            and not self._queue
            and not self._writing
            and self._remaining is None
            and self._direct(b"".join([event.line() for event in self._held]))
        ):
            self.delivered += len(self._held)
            self._held = []
            self._last_direct = self.store.clock()
            return
        self._spill()

    def close_after(self, events: int) -> None:
        self._flush()  # events committed before this call go out as they would have
        self._remaining = max(0, events)
        if self._remaining == 0:
            self.close("closed by fault")

    def close(self, reason: str = "closed") -> None:
        if not self.closed:
            # held events were committed before the close: written as they would have been
            self._flush()
            if self.closed:  # the flush met a full queue, which closed the watch
                return
            self.closed = True
            self.close_reason = reason
            self._queue.clear()  # a closed stream delivers nothing more, like a cut connection
            self.store._forget(self)
            self._wakeup.set()

    # -- consumed by the client ----------------------------------------------
    async def next_event(self) -> WatchEvent | None:
        """The next event, a BOOKMARK when one is due, or ``None`` once the watch ends."""
        while True:
            if self._queue:
                if self._remaining is not None:
                    if self._remaining <= 0:
                        self.close("closed by fault")
                        return None
                    self._remaining -= 1
                self.delivered += 1
                return self._queue.popleft()
            if self.closed:
                return None
            now = time.monotonic()
            wait: float | None = None
            if self.deadline is not None:
                if now >= self.deadline:
                    self.close("timeout")
                    return None
                wait = self.deadline - now
            if self.allow_bookmarks:
                due = self._last_bookmark + self.bookmark_interval
                if now >= due:
                    if self._held:
                        # a BOOKMARK names the store's newest version: the events held
                        # for the burst's write must reach the client before it does
                        self._flush()
                        if self._queue:
                            continue
                    self._last_bookmark = now
                    return self.store._bookmark(self.rt)
                wait = due - now if wait is None else min(wait, due - now)
            self._wakeup.clear()
            if wait is None:
                await self._wakeup.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), wait)

    def next_ready(self) -> WatchEvent | None:
        """``next_event``'s answer when it is a queued event, else None, with no coroutine.

        What an in-process consumer uses to take the rest of a burst once awake: each
        ``async for`` step through ``_iterate`` and ``next_event`` costs a generator and a
        coroutine, for an answer that is just the head of the queue. Only the plain case
        is served here (no scripted close pending): anything else is None, and the
        consumer goes back to ``next_event``, which handles it.
        """
        if self._queue and self._remaining is None:
            self.delivered += 1
            return self._queue.popleft()
        return None

    def __aiter__(self) -> AsyncIterator[WatchEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[WatchEvent]:
        while (event := await self.next_event()) is not None:
            yield event


@dataclass
class StoreOptions:
    """Knobs of the history window, bookmarks and watch buffers."""

    history_size: int = 10_000  # changes kept for Exact lists / continue tokens (etcd's part)
    history_age: float = 300.0  # seconds before a change is compacted (etcd's 5 min compaction)
    # the per-resource watch cache that decides how far back a watch resumes
    watch_cache_min: int = LOWER_BOUND_CAPACITY
    watch_cache_max: int = UPPER_BOUND_CAPACITY
    watch_cache_fresh: float = EVENT_FRESH_SECONDS
    bookmark_interval: float = 60.0  # seconds between periodic BOOKMARKs
    watch_queue_size: int = 100_000  # events buffered per watcher before it is dropped
    # an HTTP watch's events that follow a write within this many seconds are held and
    # written together (Watch._push); 0 writes each event on its own, at its commit
    watch_flush_interval: float = 0.001
    service_cidr: str = "10.96.0.0/12"
    initial_namespaces: tuple[str, ...] = INITIAL_NAMESPACES
    # ServiceAccount "default" in every namespace, and pods refused (403) when the account
    # they name does not exist, like the real ServiceAccount admission plugin
    service_accounts: bool = True
    # ConfigMap kube-root-ca.crt in every namespace, as kube-controller-manager publishes it
    root_ca_configmaps: bool = True


class Store:
    """Objects of every kind, one resourceVersion sequence, history, watchers, GC."""

    def __init__(self, registry: ResourceRegistry | None = None, **options: Any) -> None:
        unknown = set(options) - set(StoreOptions.__dataclass_fields__)
        if unknown:
            raise TypeError(
                f"unknown store option(s) {sorted(unknown)}; "
                f"valid: {sorted(StoreOptions.__dataclass_fields__)}"
            )
        self.options = StoreOptions(**options)
        self.registry = registry or ResourceRegistry.with_builtins()
        self.resource_version = 0
        self.clock: Callable[[], float] = time.monotonic  # ages the history; tests may replace it
        self._objects: dict[Key, dict[ObjKey, dict[str, Any]]] = collections.defaultdict(dict)
        self._history: collections.deque[_Change] = collections.deque()
        self._compacted_rv = 0  # every change with rv > this is still in the history
        self._watch_windows = WatchCacheWindows(
            lower_bound=self.options.watch_cache_min,
            upper_bound=self.options.watch_cache_max,
            fresh_seconds=self.options.watch_cache_fresh,
        )
        self._rv_waiters: list[tuple[int, asyncio.Future[None]]] = []
        #: Set once a read has started waiting for a resourceVersion the store has not
        #: reached (wait_for_version): what a test awaits before writing that version.
        self.read_waiting_for_version = asyncio.Event()
        #: scale subresource and printer columns of each served custom resource version
        self.custom_versions: dict[tuple[str, str, str], CustomResourceVersion] = {}
        self._watchers: dict[Key, set[Watch]] = collections.defaultdict(set)
        # HTTP watches holding events of a burst (Watch._push), and since when
        self._holding: list[Watch] = []
        self._holding_since = 0.0
        self._flush_scheduled = False
        self._dependents: dict[str, set[tuple[Key, str, str]]] = collections.defaultdict(set)
        self._by_uid: dict[str, tuple[Key, str, str]] = {}
        self._gc_queue: collections.deque[tuple[str, Any]] = collections.deque()
        self._terminating_claims: set[ObjKey] = set()
        self._last_event: WatchEvent | None = None  # PVCs held by kubernetes.io/pvc-protection
        self._gc_wakeup: asyncio.Event | None = None
        self._gc_idle: asyncio.Event | None = None
        self._gc_task: asyncio.Task[None] | None = None
        network = ipaddress.ip_network(self.options.service_cidr)
        self._ip_pool = network.hosts()
        next(self._ip_pool, None)  # the first address is the kubernetes service's
        self._used_ips: set[str] = set()
        # the kubelet's answer to pods/{name}/log (namespace, pod, options from app.log_options)
        self.pod_log_source: (
            Callable[[str, str, dict[str, Any]], PodLog | Awaitable[PodLog]] | None
        ) = None
        #: the CA bundle published as ConfigMap kube-root-ca.crt (the server may set its own)
        self.root_ca_pem = PLACEHOLDER_CA
        # called with (type, event type, object) after every commit, synchronously and
        # before any watcher is offered the event: what must see a write before the next
        # request does (the RBAC decision cache), and instrumentation timing commits
        self.commit_listeners: list[Callable[[ResourceType, str, dict[str, Any]], None]] = []
        for name in self.options.initial_namespaces:
            self._seed_namespace(name)
        # a real cluster's bootstrap writes are long compacted, and its watch caches
        # started after them: resourceVersion=1 is "too old" from the first request on
        self.compact()

    # ------------------------------------------------------------------ lookup
    def resource(self, plural: str, group: str = "") -> ResourceType:
        return self.registry.lookup(plural, group)

    def _bucket(self, rt: ResourceType) -> dict[ObjKey, dict[str, Any]]:
        return self._objects[rt.key]

    def _objkey(self, rt: ResourceType, namespace: str | None, name: str) -> ObjKey:
        return ((namespace or "") if rt.namespaced else "", name)

    def get_ref(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        """The stored object itself (read-only!); 404 if missing."""
        obj = self._bucket(rt).get(self._objkey(rt, namespace, name))
        if obj is None:
            raise errors.not_found(rt.plural, name, rt.group)
        return obj

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        """A private copy of the object; ``StatusError(404)`` if missing."""
        return clone_json(self.get_ref(rt, namespace, name))

    def encode(self, obj: dict[str, Any]) -> bytes:
        """``obj`` as JSON, reusing the bytes its watch event already made when it is the
        object just written (a create's response and its ADDED line share one dump)."""
        last = self._last_event
        if last is not None and last.object is obj:
            return last.object_json()
        return dumps(obj)

    def holds(self, obj: dict[str, Any]) -> bool:
        """Whether this very object (by uid) is still stored."""
        return obj.get("metadata", {}).get("uid", "") in self._by_uid

    def count(self, rt: ResourceType) -> int:
        return len(self._bucket(rt))

    # ------------------------------------------------------------------- lists
    def compile_selectors(
        self, rt: ResourceType, label_selector: str | None, field_selector: str | None
    ) -> tuple[Any, Any]:
        try:
            labels = parse_label_selector(label_selector) if label_selector else None
            fields = parse_field_selector(field_selector, rt.kind) if field_selector else None
        except SelectorError as exc:
            raise bad_selector(exc) from None
        return labels, fields

    def list_refs(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
        exact: bool = False,
    ) -> tuple[list[dict[str, Any]], int]:
        """Matching stored objects (read-only), sorted like etcd keys, and the list version.

        ``exact`` (or ``resource_version_match="Exact"``) rebuilds the state as of
        ``resource_version`` from the history window — 410 if it fell out of it.
        """
        labels, fields = self.compile_selectors(rt, label_selector, field_selector)
        rv = self.resource_version
        wanted: int | None = None
        if resource_version not in (None, "", "0"):
            wanted = parse_resource_version(resource_version)
        if resource_version_match == "Exact" or exact:
            self._trim_history(self.clock())
            if wanted is None:
                raise errors.bad_request(
                    'resourceVersionMatch: Forbidden: resourceVersionMatch "exact" is forbidden '
                    'for resourceVersion "0"'
                )
            if wanted > rv:
                raise too_large_resource_version(wanted, rv)
            if wanted < self._compacted_rv:
                raise errors.list_too_old()
            objects = self._snapshot(rt, wanted)
            rv = wanted
        else:
            if wanted is not None and wanted > rv:
                raise too_large_resource_version(wanted, rv)
            objects = self._bucket(rt)
        ns = (namespace or "") if rt.namespaced and namespace else None
        items = []
        for (obj_ns, _name), obj in sorted(objects.items()):
            if ns is not None and obj_ns != ns:
                continue
            if labels is not None and not labels.matches(
                obj.get("metadata", {}).get("labels") or {}
            ):
                continue
            if fields is not None and not fields.matches(obj):
                continue
            items.append(obj)
        return items, rv

    def list(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        """Private copies of the matching objects and the list's resourceVersion."""
        items, rv = self.list_refs(
            rt, namespace, label_selector=label_selector, field_selector=field_selector
        )
        return [clone_json(o) for o in items], str(rv)

    def _snapshot(self, rt: ResourceType, at_rv: int) -> dict[ObjKey, dict[str, Any]]:
        """The kind's objects as they were at ``at_rv``, by undoing newer changes."""
        state = dict(self._bucket(rt))
        for change in reversed(self._history):
            if change.rv <= at_rv:
                break
            if change.key != rt.key:
                continue
            meta = change.obj["metadata"]
            okey = (meta.get("namespace", ""), meta["name"])
            if change.type == "ADDED":
                state.pop(okey, None)
            elif change.old is not None:
                state[okey] = change.old
        return state

    # ----------------------------------------------------------------- watches
    def watch(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        allow_bookmarks: bool = False,
        send_initial_events: bool | None = None,
        timeout_seconds: float | None = None,
        bookmark_interval: float | None = None,
    ) -> Watch:
        """Start a watch; events after ``resource_version`` are replayed first.

        Without a resourceVersion (or with "0") the watch starts with one ADDED per
        existing object, like the real server; with ``allow_bookmarks`` a plain watch
        then gets the ``k8s.io/initial-events-end`` BOOKMARK. A version older than the
        history window gives a watch whose only event is the real 410 ERROR.
        """
        labels, fields = self.compile_selectors(rt, label_selector, field_selector)
        self._trim_history(self.clock())  # a quiet store still forgets old changes
        watch = Watch(
            self,
            rt,
            namespace if rt.namespaced else None,
            labels,
            fields,
            allow_bookmarks=allow_bookmarks,
            bookmark_interval=bookmark_interval or self.options.bookmark_interval,
            timeout_seconds=timeout_seconds,
            max_queue=self.options.watch_queue_size,
        )
        initial = (
            resource_version in (None, "", "0")
            if send_initial_events is None
            else (send_initial_events)
        )
        if initial:
            items, rv = self.list_refs(rt, watch.namespace)
            for obj in items:
                if watch._matches(obj):  # the initial events honour the selectors too
                    watch._queue.append(WatchEvent("ADDED", obj))
            if allow_bookmarks:
                watch._queue.append(self._bookmark(rt, rv, initial_events_end=True))
                watch._last_bookmark = time.monotonic()
        else:
            since = parse_resource_version(resource_version or "0")
            oldest = self.oldest_watchable_version(rt)
            if since < oldest:
                watch._queue.append(
                    WatchEvent("ERROR", too_old_resource_version(since, oldest).status)
                )
                watch.closed = True
                watch.close_reason = "expired"
                return watch
            self._replay(watch, since)
        self._watchers[rt.key].add(watch)
        return watch

    def _replay(self, watch: Watch, since: int) -> None:
        for change in self._watch_windows.since(watch.rt.key, since):
            watch._offer(change)

    def _bookmark(
        self, rt: ResourceType, rv: int | None = None, *, initial_events_end: bool = False
    ) -> WatchEvent:
        meta: dict[str, Any] = {"resourceVersion": str(rv or self.resource_version)}
        if initial_events_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return WatchEvent(
            "BOOKMARK", {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}
        )

    def _hold(self, watch: Watch, now: float) -> None:
        """``watch`` holds events now: they are written when the loop comes round, or at
        the first commit once the oldest of all held events has waited the interval."""
        if not self._holding:
            self._holding_since = now
        self._holding.append(watch)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_scheduled_watches)

    def _flush_scheduled_watches(self) -> None:
        self._flush_scheduled = False
        self.flush_watches()

    def flush_due_watches(self) -> None:
        """``flush_watches`` once the oldest held event has waited the interval.

        Commits check this themselves; the HTTP layer also calls it as each request ends,
        so that held events do not wait for the loop to come round when a busy loop
        iteration has stopped committing (the last events of a burst)."""
        if self._holding and self.clock() - self._holding_since >= self.options.watch_flush_interval:
            self.flush_watches()

    def flush_watches(self) -> None:
        """Write every event an HTTP watch holds (the end of a burst)."""
        holding, self._holding = self._holding, []
        for watch in holding:
            watch._flush()

    def _forget(self, watch: Watch) -> None:
        self._watchers[watch.rt.key].discard(watch)

    def watches(self) -> builtins.list[Watch]:
        return [w for ws in self._watchers.values() for w in ws]

    def close_watches(self, after_events: int | None = None) -> int:
        """Close every open watch now, or after each has delivered ``after_events`` more."""
        open_watches = self.watches()
        for w in open_watches:
            if after_events is None:
                w.close("closed by fault")
            else:
                w.close_after(after_events)
        return len(open_watches)

    def compact(self) -> None:
        """Forget the whole history: any older resourceVersion now gets 410 Expired."""
        self._history.clear()
        self._compacted_rv = self.resource_version
        self._watch_windows.restart_all(self.resource_version)

    def restart(self) -> None:
        """What an API server restart looks like to clients: watches drop, history is gone."""
        self.compact()
        self.close_watches()

    @property
    def oldest_resumable_version(self) -> int:
        """The oldest version an Exact list or a continue token may still name."""
        return self._compacted_rv

    def oldest_watchable_version(self, rt: ResourceType) -> int:
        """The oldest version a watch of ``rt`` may resume from (its watch cache window,
        which etcd's compaction does not shorten)."""
        return self._watch_windows.oldest(rt.key)

    async def wait_for_version(self, rv: int, patience: float = 3.0) -> bool:
        """Wait until the store has reached ``rv`` (as the watch cache waits to catch up
        with etcd before serving a read at a newer version); False on timeout."""
        if self.resource_version >= rv:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (rv, future)
        self._rv_waiters.append(entry)
        self.read_waiting_for_version.set()
        try:
            await asyncio.wait_for(asyncio.shield(future), patience)
            return True
        except TimeoutError:
            return False
        finally:
            with contextlib.suppress(ValueError):
                self._rv_waiters.remove(entry)

    def _wake_rv_waiters(self, rv: int) -> None:
        for wanted, future in self._rv_waiters:
            if wanted <= rv and not future.done():
                future.set_result(None)

    # ------------------------------------------------------------------ writes
    def _commit(
        self,
        rt: ResourceType,
        event_type: str,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """Assign the next resourceVersion, store/remove ``obj``, record and fan out."""
        self.resource_version += 1
        rv = self.resource_version
        meta = obj["metadata"] = dict(obj["metadata"])
        meta["resourceVersion"] = str(rv)
        okey = (meta.get("namespace", "") if rt.namespaced else "", meta["name"])
        bucket = self._bucket(rt)
        uid = meta.get("uid", "")
        if event_type == "DELETED":
            bucket.pop(okey, None)
            self._by_uid.pop(uid, None)
        else:
            bucket[okey] = obj
            self._by_uid[uid] = (rt.key, okey[0], okey[1])
        self._index_owners(rt, okey, old, None if event_type == "DELETED" else obj)
        if event_type != "DELETED" and meta.get("ownerReferences") and self._gc_wakeup is not None:
            if _owner_uids(obj) != _owner_uids(old):
                self._gc_enqueue("owners", (rt.key, okey))
        change = _Change(rv, rt.key, okey[0], event_type, obj, old, self.clock())
        self._history.append(change)
        self._trim_history(change.at)
        self._watch_windows.record(rt.key, rv, change.at, change)
        if self._rv_waiters:
            self._wake_rv_waiters(rv)
        # listeners before the fan-out: a listener then sees the write no later than any
        # watcher does (benchmarks timestamp commits here, as "in the API, nobody told")
        for listener in self.commit_listeners:
            listener(rt, event_type, obj)
        watchers = self._watchers.get(rt.key)
        shared = self._last_event = WatchEvent(event_type, obj)
        if watchers:
            for watch in tuple(watchers):
                watch._offer(change, shared)
        if self._holding and change.at - self._holding_since >= self.options.watch_flush_interval:
            self.flush_watches()
        if self._terminating_claims:
            self._note_claim_users(rt, event_type, obj)
        return obj

    def _note_claim_users(self, rt: ResourceType, event_type: str, obj: dict[str, Any]) -> None:
        """Queue a pvc-protection check when a pod that may hold a deleting claim lets go."""
        if rt.key == _POD_KEY:
            phase = (obj.get("status") or {}).get("phase")
            if event_type == "DELETED" or phase in ("Succeeded", "Failed"):
                ns = obj["metadata"].get("namespace", "")
                for claim in _claim_names(obj):
                    if (ns, claim) in self._terminating_claims:
                        self._gc_enqueue("claim", (ns, claim))
        elif rt.key == _PVC_KEY and event_type == "DELETED":
            meta = obj["metadata"]
            self._terminating_claims.discard((meta.get("namespace", ""), meta["name"]))

    def _trim_history(self, now: float) -> None:
        history = self._history
        limit = self.options.history_size
        oldest_allowed = now - self.options.history_age
        while history and (len(history) > limit or history[0].at < oldest_allowed):
            self._compacted_rv = history.popleft().rv

    def _index_owners(
        self,
        rt: ResourceType,
        okey: ObjKey,
        old: dict[str, Any] | None,
        new: dict[str, Any] | None,
    ) -> None:
        ref = (rt.key, okey[0], okey[1])
        old_owners = _owner_uids(old)
        new_owners = _owner_uids(new)
        if old_owners == new_owners:
            return
        for uid in old_owners - new_owners:
            deps = self._dependents.get(uid)
            if deps is not None:
                deps.discard(ref)
                if not deps:
                    del self._dependents[uid]
        for uid in new_owners - old_owners:
            self._dependents[uid].add(ref)

    def allocate_cluster_ip(self) -> str:
        for addr in self._ip_pool:
            ip = str(addr)
            if ip not in self._used_ips:
                self._used_ips.add(ip)
                return ip
        raise errors.internal_error("failed to allocate a serviceIP: range is full")

    def _seed_namespace(self, name: str) -> None:
        obj = {
            "kind": "Namespace",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "uid": str(uuid.uuid4()),
                "creationTimestamp": now_rfc3339(),
                "labels": {"kubernetes.io/metadata.name": name},
            },
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }
        self._commit(self.registry.lookup("namespaces"), "ADDED", obj, None)
        self._add_default_service_account(name)

    def _add_default_service_account(self, namespace: str) -> None:
        """Every namespace gets ServiceAccount "default" and ConfigMap kube-root-ca.crt,
        as kube-controller-manager does.

        Done in the same call as the namespace's creation, so a pod created right after it
        never meets the real cluster's brief "serviceaccount not found" window.
        """
        if self.options.root_ca_configmaps:
            self._publish_root_ca(namespace)
        if not self.options.service_accounts:
            return
        sa = {
            "kind": "ServiceAccount",
            "apiVersion": "v1",
            "metadata": {
                "name": "default",
                "namespace": namespace,
                "uid": str(uuid.uuid4()),
                "resourceVersion": "",
                "creationTimestamp": now_rfc3339(),
            },
        }
        self._commit(self.registry.lookup("serviceaccounts"), "ADDED", sa, None)

    def _publish_root_ca(self, namespace: str) -> None:
        """The root-ca-cert-publisher: ConfigMap ``kube-root-ca.crt`` in every namespace
        (pods mount it through their token volume)."""
        rt = self.registry.lookup("configmaps")
        cm = root_ca_configmap(namespace, self.root_ca_pem)
        meta = cm["metadata"]
        meta["uid"] = str(uuid.uuid4())
        meta["resourceVersion"] = ""
        meta["creationTimestamp"] = now_rfc3339()
        ownership_after_create(rt, cm, {}, "kube-controller-manager", None)
        self._commit(rt, "ADDED", _ordered(cm), None)

    def _admit_service_account(self, namespace: str, pod: dict[str, Any]) -> None:
        """The ServiceAccount admission plugin: a pod may only run as an existing account."""
        if not self.options.service_accounts:
            return
        account = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        if (namespace, account) not in self._objects[("", "serviceaccounts")]:
            name = pod["metadata"].get("name", "")
            raise errors.forbidden(
                "pods",
                name,
                f"error looking up service account {namespace}/{account}: "
                f'serviceaccount "{account}" not found',
            )

    def _check_namespace(self, rt: ResourceType, namespace: str | None, name: str) -> None:
        if not rt.namespaced:
            return
        if not namespace:
            raise errors.bad_request("the server could not find the requested resource")
        ns = self._objects[_NS_KEY].get(("", namespace))
        if ns is None:
            raise errors.not_found("namespaces", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise errors.namespace_terminating(rt.plural, name, namespace, rt.group)

    def _validate(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        """422 with every cause, before anything is written (never a half-applied change)."""
        schema = self.registry.schema(rt)
        if schema is not None:
            old_meta = old.get("metadata") if old is not None else None
            causes = validate_metadata(rt.kind, obj.get("metadata"), old_meta)
            causes += validate_against_schema(schema, obj)
        else:
            causes = validate_object(rt.kind, obj, old, decoded=True)
        if causes:
            name = obj.get("metadata", {}).get("name", "")
            raise errors.invalid(rt.kind, name, causes, rt.group)

    async def create(
        self,
        rt: ResourceType,
        namespace: str | None,
        obj: dict[str, Any],
        *,
        dry_run: bool = False,
        owned: bool = False,
        manager: str | None = None,
        applied: Any = None,
    ) -> dict[str, Any]:
        """Store a new object; returns it as stored (defaulted, with uid/rv/timestamps).

        ``owned=True`` lets a caller that will never touch ``obj`` again skip the copy.
        ``manager`` records the write in ``managedFields`` (an Update by that manager, or
        with ``applied`` — the field set of an applied configuration — an Apply).
        """
        self._ensure_gc_worker()
        obj = decode(rt.kind, rt.group, rt.version, obj if owned else clone_json(obj))
        if not isinstance(obj.get("metadata"), dict):
            obj["metadata"] = {}
        meta = obj["metadata"]
        obj["kind"] = rt.kind
        obj["apiVersion"] = rt.api_version
        if rt.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and namespace and body_ns != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            meta["namespace"] = namespace = namespace or body_ns
        else:
            meta.pop("namespace", None)
        name = meta.get("name")
        if not name:
            prefix = meta.get("generateName")
            if prefix:
                name = prefix + "".join(random.choices(_GENERATE_NAME_ALPHABET, k=5))
                meta["name"] = name
            else:
                raise errors.invalid(
                    rt.kind,
                    "",
                    [
                        field_required("metadata.name", "name or generateName is required")
                    ],
                    rt.group,
                )
        for volatile in (
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "selfLink",
        ):
            meta.pop(volatile, None)
        self._check_namespace(rt, namespace, name)
        spec = obj.get("spec")
        # what the request itself set, so admission's additions are not the creator's
        body = {"spec": dict.fromkeys(spec)} if isinstance(spec, dict) else {}
        obj = self._default(rt, obj, None, dry_run)
        meta = obj["metadata"]
        if rt.key == _NS_KEY:
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj["status"] = {"phase": "Active"}
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        if rt.key == _POD_KEY:
            self._admit_service_account(namespace or "", obj)
        self._validate(rt, obj, None)
        if manager is not None:
            ownership_after_create(
                rt, obj, body, manager, self.registry.schema(rt), applied=applied
            )
        if rt.key == _CRD_KEY:
            self._prepare_crd(obj)
        if self._objkey(rt, namespace, name) in self._bucket(rt):
            raise errors.already_exists(rt.plural, name, rt.group)
        meta["uid"] = str(uuid.uuid4())
        meta["resourceVersion"] = ""  # keeps the key's place; _commit fills it in
        meta["creationTimestamp"] = now_rfc3339()
        if rt.has_generation or self.registry.schema(rt) is not None:
            meta["generation"] = 1
        if dry_run:
            del meta["resourceVersion"]
            return _ordered(obj)
        stored = self._commit(rt, "ADDED", _ordered(obj), None)
        if rt.key == _CRD_KEY:
            self._register_crd(stored)
        elif rt.key == _NS_KEY:
            self._add_default_service_account(name)
        return stored

    def _default(
        self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None, dry_run: bool
    ) -> dict[str, Any]:
        """``obj`` as the real server stores it before validation, on create (``old`` None)
        and on every update; returns the object to go on with (pruning builds a new one).

        Built-in kinds get their type and admission defaults; updates pass the stored
        object so create-only defaults (the PVC protection finalizer, the token volume)
        are not added back and a Service keeps its allocated cluster IP and node ports.
        Custom resources get their schema's ``default`` values, then lose every field the
        schema does not declare, in that order, as the apiextensions server does; with a
        status subresource a create cannot set ``status``.
        """
        schema = self.registry.schema(rt)
        if schema is None:
            default_object(
                rt.kind,
                obj,
                allocate_cluster_ip=self._lazy_ip_allocator(dry_run),
                old=old,
                decoded=True,  # every write decodes first; type-check once per write
            )
            return obj
        if old is None and "status" in rt.subresources:
            obj.pop("status", None)
        apply_schema_defaults(schema, obj)
        pruned: dict[str, Any] = prune_unknown(schema, obj, share=True)
        return pruned

    def _lazy_ip_allocator(self, dry_run: bool) -> Callable[[], str]:
        if dry_run:
            return lambda: "10.96.0.0"
        return self.allocate_cluster_ip

    async def replace(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        obj: dict[str, Any],
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        owned: bool = False,
        manager: str | None = None,
    ) -> dict[str, Any]:
        """PUT semantics: a stale ``metadata.resourceVersion`` in ``obj`` is a 409 Conflict."""
        self._ensure_gc_worker()
        current = self.get_ref(rt, namespace, name)
        obj = decode(rt.kind, rt.group, rt.version, obj if owned else clone_json(obj))
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            obj["metadata"] = meta = {}
        body_name = meta.get("name")
        if body_name and body_name != name:
            raise errors.bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        body_uid = meta.get("uid")
        if body_uid and body_uid != current["metadata"].get("uid"):
            # a uid in the body is a precondition of the update
            raise errors.conflict(
                rt.plural,
                name,
                f"Precondition failed: UID in precondition: {body_uid}, "
                f"UID in object meta: {current['metadata'].get('uid')}",
                rt.group,
            )
        body_rv = meta.get("resourceVersion")
        if body_rv and body_rv != current["metadata"]["resourceVersion"]:
            raise errors.stale_conflict(rt.plural, name, rt.group)
        return self._update(rt, current, obj, subresource, dry_run, manager=manager)

    async def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        patch: Any,
        patch_type: str,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        manager: str | None = None,
    ) -> dict[str, Any]:
        """Apply a merge, JSON or strategic-merge patch (``patch_type`` "merge"/"json"/"strategic")."""
        self._ensure_gc_worker()
        current = self.get_ref(rt, namespace, name)
        try:
            if patch_type == "merge":
                if not isinstance(patch, dict):
                    raise errors.bad_request(
                        "json: cannot unmarshal array into Go value of type map[string]interface {}"
                    )
                # a status write keeps only the patched status (``_update`` takes the
                # rest from the stored object), so the rest need not be copied; a
                # custom resource's schema defaults are set in place in that status,
                # so it gets a private copy of the status alone. Other writes keep the
                # whole patched object and get a full copy.
                if subresource == "status":
                    patched = apply_merge_patch(current, patch, share=True)
                    if "status" in patched and self.registry.schema(rt) is not None:
                        patched["status"] = clone_json(patched["status"])
                else:
                    patched = apply_merge_patch(current, patch)
            elif patch_type == "json":
                if not isinstance(patch, list):
                    raise errors.bad_request(
                        "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
                    )
                patched = apply_json_patch(current, patch)
            elif patch_type == "strategic":
                if not isinstance(patch, dict):
                    raise errors.bad_request(
                        "json: cannot unmarshal array into Go value of type map[string]interface {}"
                    )
                if self.registry.schema(rt) is not None:
                    raise errors.unsupported_media_type()
                patched = apply_strategic_merge_patch(current, patch, rt.kind)
            else:
                raise errors.unsupported_media_type()
        except PatchError as exc:
            # the patch module knows the whole real body (422 causes, the reason-less 500)
            raise StatusError(exc.status()) from None
        if not isinstance(patched, dict):
            raise errors.bad_request("the patch did not produce an object")
        if _patched_deeper_than(patched, current, MAX_BODY_DEPTH):
            # each body is depth-checked, but patches could stack nesting without bound
            raise errors.bad_request(
                f"the patched object would be nested deeper than {MAX_BODY_DEPTH} levels"
            )
        patched = decode(rt.kind, rt.group, rt.version, patched, stored=current)
        meta = patched.get("metadata")
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        if meta.get("name") != name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        if meta.get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise errors.stale_conflict(rt.plural, name, rt.group)
        if meta.get("uid") != current["metadata"].get("uid"):
            raise errors.invalid(
                rt.kind,
                name,
                [field_invalid("metadata.uid", meta.get("uid"), "field is immutable")],
                rt.group,
            )
        return self._update(rt, current, patched, subresource, dry_run, manager=manager)

    async def apply(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        config: dict[str, Any],
        *,
        manager: str,
        force: bool = False,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Server-side apply of ``config`` by ``manager``; (object, whether it was created).

        A missing object is created from the configuration; an existing one gets the
        configuration merged in, loses what ``manager`` applied before and applies no
        more (unless another manager owns it), and changes no field another manager owns
        unless ``force`` (409 ``FieldManagerConflict`` otherwise).
        """
        self._ensure_gc_worker()
        meta = config.get("metadata")
        if meta is not None and not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        body_name = (meta or {}).get("name")
        if body_name and body_name != name:
            raise errors.bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        if rt.namespaced and (meta or {}).get("namespace") not in (None, "", namespace):
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        schema = self.registry.schema(rt)
        reset = "status" in rt.subresources
        config = decode(rt.kind, rt.group, rt.version, clone_json(config))
        if schema is not None:
            config = prune_unknown(schema, config, share=True)
        applied = applied_set(config, schema, subresource=subresource, reset_status=reset)
        current = self._bucket(rt).get(self._objkey(rt, namespace, name))
        if current is None:
            if subresource:
                raise errors.not_found(rt.plural, name, rt.group)
            config.setdefault("metadata", {})["name"] = name
            created = await self.create(
                rt, namespace, config, dry_run=dry_run, owned=True, manager=manager, applied=applied
            )
            return created, True
        entries = decode_entries(current["metadata"].get("managedFields")) or []
        mine = next(
            (e for e in entries if e.manager == manager and e.operation == "Apply"
             and e.subresource == (subresource or "")),
            None,
        )
        merged = merge_applied(current, config)
        if mine is not None:
            stale = mine.fields - applied - owned_by_others(entries, manager, subresource or "")
            if stale:
                merged = remove_paths(merged, stale)
        merged = dict(merged)
        merged["metadata"] = dict(merged.get("metadata") or {})
        merged["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        updated = self._update(
            rt, current, merged, subresource, dry_run, manager=manager, applied=applied, force=force
        )
        return updated, False

    def _update(
        self,
        rt: ResourceType,
        current: dict[str, Any],
        new: dict[str, Any],
        subresource: str | None,
        dry_run: bool,
        *,
        manager: str | None = None,
        applied: Any = None,
        force: bool = False,
    ) -> dict[str, Any]:
        cur_meta = current["metadata"]
        custom = self.registry.schema(rt) is not None
        if subresource == "status":
            merged = dict(current)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            merged["metadata"] = dict(cur_meta)
            new = merged
        elif subresource not in (None, ""):
            raise errors.method_not_allowed("update", f"{rt.plural}/{subresource}")
        else:
            new["kind"] = rt.kind
            new["apiVersion"] = rt.api_version
            meta = new["metadata"] = dict(new.get("metadata") or {})
            for fixed in (
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "namespace",
                "name",
                "generation",
            ):
                if fixed in cur_meta:
                    meta[fixed] = cur_meta[fixed]
                else:
                    meta.pop(fixed, None)
            if "status" in rt.subresources or rt.key == _NS_KEY:
                if "status" in current:
                    new["status"] = current["status"]
                else:
                    new.pop("status", None)
            if not custom:
                self._default(rt, new, current, dry_run)
        if custom:  # a status write is pruned and defaulted too
            new = self._default(rt, new, current, dry_run)
        meta = new["metadata"]
        meta["resourceVersion"] = cur_meta["resourceVersion"]
        if manager is not None:  # before validation: an apply conflict is a 409, not a 422
            ownership_after_write(
                rt,
                current,
                new,
                manager,
                self.registry.schema(rt),
                subresource=subresource or "",
                applied=applied,
                force=force,
            )
        elif "managedFields" in cur_meta:  # the server's own writes keep the entries
            meta["managedFields"] = cur_meta["managedFields"]
        self._validate(rt, new, current)
        if "generation" in cur_meta and _generation_changes(rt, current, new, custom):
            meta["generation"] = cur_meta["generation"] + 1
        if rt.key == _CRD_KEY:
            self._prepare_crd(new, current)
        if new == current:
            return current  # a no-op write: no new resourceVersion, no event
        if dry_run:
            return new
        if cur_meta.get("deletionTimestamp") and not meta.get("finalizers"):
            if (
                rt.key != _POD_KEY
                or meta.get("deletionGracePeriodSeconds") == 0
                or not _on_node(new)
            ):
                return self._remove(rt, new, current)
        stored = self._commit(rt, "MODIFIED", _ordered(new), current)
        if rt.key == _CRD_KEY:
            self._register_crd(stored)
        if cur_meta.get("deletionTimestamp"):
            self._gc_enqueue("deleting", (rt.key, stored))
        return stored

    async def bind(self, namespace: str, name: str, node_name: str) -> dict[str, Any]:
        """The ``pods/binding`` subresource: set ``spec.nodeName`` once, as the scheduler does.

        Like the real registry this writes storage directly (no update validation, no
        generation bump) and refuses a pod that is already bound or being deleted.
        """
        rt = self.registry.lookup("pods")
        current = self.get_ref(rt, namespace, name)
        spec = current.get("spec") or {}
        if current["metadata"].get("deletionTimestamp"):
            raise errors.conflict(
                "pods", name, "pod is being deleted, cannot be assigned to a host"
            )
        if spec.get("nodeName"):
            raise errors.conflict(
                "pods", name, f'pod {name} is already assigned to node "{spec["nodeName"]}"'
            )
        if spec.get("schedulingGates"):
            raise errors.conflict(
                "pods",
                name,
                "pod has non-empty .spec.schedulingGates, cannot be assigned to a host",
            )
        new = dict(current)
        new["spec"] = dict(spec, nodeName=node_name)
        status = dict(current.get("status") or {})
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        conditions.append(
            {
                "type": "PodScheduled",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": now_rfc3339(),
            }
        )
        status["conditions"] = conditions
        new["status"] = status
        new["metadata"] = dict(current["metadata"])
        return self._commit(rt, "MODIFIED", new, current)

    # ---------------------------------------------------------------- deletion
    async def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        *,
        grace_period_seconds: int | None = None,
        propagation_policy: str | None = None,
        preconditions: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Delete like the real server: graceful for pods on a node, finalizers, GC.

        Returns the object as it is after the call (with ``deletionTimestamp`` when it
        is not gone yet; its final state when it is).
        """
        self._ensure_gc_worker()
        current = self.get_ref(rt, namespace, name)
        meta = current["metadata"]
        if preconditions:
            want_uid = preconditions.get("uid")
            if want_uid and want_uid != meta.get("uid"):
                raise errors.conflict(
                    rt.plural,
                    name,
                    f"Precondition failed: UID in precondition: {want_uid}, UID in object meta: {meta.get('uid')}",
                    rt.group,
                )
            want_rv = preconditions.get("resourceVersion")
            if want_rv and want_rv != meta.get("resourceVersion"):
                raise errors.conflict(
                    rt.plural,
                    name,
                    "Precondition failed: ResourceVersion in precondition: "
                    f"{want_rv}, ResourceVersion in object meta: {meta.get('resourceVersion')}",
                    rt.group,
                )
        if propagation_policy not in (None, "", "Background", "Foreground", "Orphan"):
            raise errors.invalid(
                "DeleteOptions",
                "",
                [
                    field_not_supported(
                        "propagationPolicy",
                        propagation_policy,
                        ("Foreground", "Background", "Orphan", "nil"),
                    )
                ],
            )
        if grace_period_seconds is not None and grace_period_seconds < 0:
            grace_period_seconds = 1 if grace_period_seconds else 0
        if dry_run:
            return current
        if rt.key == _NS_KEY:
            return self._terminate_namespace(current)

        finalizers = list(meta.get("finalizers") or [])
        if propagation_policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        elif propagation_policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")

        grace = 0
        if rt.key == _POD_KEY:
            spec = current.get("spec") or {}
            grace = (
                grace_period_seconds
                if grace_period_seconds is not None
                else int(spec.get("terminationGracePeriodSeconds", 30))
            )
            phase = (current.get("status") or {}).get("phase")
            if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
                grace = 0

        if meta.get("deletionTimestamp"):
            # already being deleted: only a shorter grace period (pods) changes anything
            old_grace = meta.get("deletionGracePeriodSeconds")
            if rt.key == _POD_KEY and old_grace is not None and grace < old_grace:
                if grace == 0 and not finalizers:
                    # the deletion shows grace 0 (MODIFIED), then the pod goes (DELETED)
                    marked = self._mark_deleting(rt, current, 0, finalizers)
                    return self._remove(rt, marked, marked)
                return self._mark_deleting(rt, current, grace, finalizers)
            if finalizers != list(meta.get("finalizers") or []):
                return self._mark_deleting(rt, current, old_grace or 0, finalizers)
            return current

        if grace > 0 or finalizers:
            return self._mark_deleting(rt, current, grace, finalizers)
        if rt.key == _POD_KEY:
            # the real server shows the deletion (MODIFIED, grace 0) before the DELETED
            marked = self._mark_deleting(rt, current, 0, finalizers)
            return self._remove(rt, marked, marked)
        return self._remove(rt, current, current)

    def _mark_deleting(
        self, rt: ResourceType, current: dict[str, Any], grace: int, finalizers: builtins.list[str]
    ) -> dict[str, Any]:
        new = dict(current)
        meta = new["metadata"] = dict(current["metadata"])
        meta["deletionTimestamp"] = now_rfc3339(grace)
        meta["deletionGracePeriodSeconds"] = grace
        if finalizers:
            meta["finalizers"] = finalizers
        if "generation" in meta:
            meta["generation"] += 1
        stored = self._commit(rt, "MODIFIED", _ordered(new), current)
        if finalizers:
            self._gc_enqueue("deleting", (rt.key, stored))
        return stored

    def _remove(
        self, rt: ResourceType, final: dict[str, Any], current: dict[str, Any]
    ) -> dict[str, Any]:
        obj = dict(final)
        obj["metadata"] = dict(final["metadata"])
        removed = self._commit(rt, "DELETED", obj, current)
        if rt.kind == "Service" and rt.group == "":
            for ip in (removed.get("spec") or {}).get("clusterIPs") or []:
                self._used_ips.discard(ip)
        if rt.key == _CRD_KEY:
            self._unregister_crd(removed)
        self._gc_enqueue("removed", (rt.key, removed))
        if rt.namespaced:
            self._maybe_finish_namespace(removed["metadata"].get("namespace", ""))
        return removed

    def _terminate_namespace(self, ns: dict[str, Any]) -> dict[str, Any]:
        if ns["metadata"].get("deletionTimestamp"):
            return ns
        new = dict(ns)
        new["metadata"] = dict(
            ns["metadata"], deletionTimestamp=now_rfc3339(), deletionGracePeriodSeconds=0
        )
        new["status"] = dict(ns.get("status") or {}, phase="Terminating")
        stored = self._commit(self.registry.lookup("namespaces"), "MODIFIED", new, ns)
        self._gc_enqueue("namespace", stored["metadata"]["name"])
        return stored

    # ------------------------------------------------------- garbage collector
    def _ensure_gc_worker(self) -> None:
        if self._gc_task is None or self._gc_task.done():
            self._gc_wakeup = asyncio.Event()
            self._gc_idle = asyncio.Event()
            self._gc_idle.set()
            self._gc_task = asyncio.get_running_loop().create_task(
                self._gc_loop(), name="sim-garbage-collector"
            )
            if self._gc_queue:
                self._gc_wakeup.set()
                self._gc_idle.clear()

    def _gc_enqueue(self, what: str, payload: Any) -> None:
        self._gc_queue.append((what, payload))
        if self._gc_wakeup is not None and self._gc_idle is not None:
            self._gc_idle.clear()
            self._gc_wakeup.set()

    async def wait_gc_idle(self) -> None:
        """Wait until the garbage collector has processed everything queued so far."""
        self._ensure_gc_worker()
        assert self._gc_idle is not None
        await self._gc_idle.wait()

    async def _gc_loop(self) -> None:
        assert self._gc_wakeup is not None and self._gc_idle is not None
        while True:
            if not self._gc_queue:
                self._gc_idle.set()
                self._gc_wakeup.clear()
                await self._gc_wakeup.wait()
                continue
            what, payload = self._gc_queue.popleft()
            try:
                if what == "removed":
                    await self._gc_owner_removed(*payload)
                elif what == "deleting":
                    await self._gc_owner_deleting(*payload)
                elif what == "namespace":
                    await self._gc_namespace(payload)
                elif what == "claim":
                    await self._gc_claim(*payload)
                elif what == "owners":
                    await self._gc_check_owners(*payload)
            except StatusError as exc:
                log.debug("garbage collector: %s", exc)
            except Exception:
                log.exception("garbage collector failed on %s", what)
            await asyncio.sleep(0)  # let API requests interleave, like a separate controller

    def _lookup_ref(self, ref: tuple[Key, str, str]) -> tuple[ResourceType, dict[str, Any]] | None:
        key, ns, name = ref
        obj = self._objects[key].get((ns, name))
        if obj is None:
            return None
        rt = self.registry.find(key[1], key[0])
        return None if rt is None else (rt, obj)

    def _owner_verdict(self, dependent_namespace: str, ref: dict[str, Any]) -> Verdict:
        """How the collector sees one ownerReference of a dependent (``owner_refs``)."""
        owner_rt = self.registry.by_kind(str(ref.get("kind", "")), str(ref.get("apiVersion", "")))
        live = self._by_uid.get(str(ref.get("uid", "")))
        return classify(
            dependent_namespace,
            None if owner_rt is None else owner_rt.namespaced,
            None if live is None else live[1],
        )

    async def _gc_settle_dependent(
        self, rt: ResourceType, okey: ObjKey
    ) -> tuple[dict[str, Any], ...]:
        """The collector's attempt on one dependent: delete it (background) when no owner
        is verified present, else drop its references to absent owners. Any reference that
        cannot be resolved leaves it untouched, as the real collector stops there.
        Returns the references that break the namespace rule."""
        dep = self._objects[rt.key].get(okey)
        if dep is None:
            return ()
        refs = [r for r in dep["metadata"].get("ownerReferences") or [] if isinstance(r, dict)]
        if not refs:
            return ()
        verdicts = [(r, self._owner_verdict(okey[0], r)) for r in refs]
        invalid = tuple(r for r, v in verdicts if v.invalid_namespace)
        if any(v.state is OwnerState.UNRESOLVABLE for _, v in verdicts):
            return invalid
        solid = [r for r, v in verdicts if v.state is OwnerState.SOLID]
        if not solid:
            if not dep["metadata"].get("deletionTimestamp"):
                await self.delete(rt, okey[0] or None, okey[1], propagation_policy="Background")
        elif len(solid) < len(refs):
            await self.patch(
                rt, okey[0] or None, okey[1], {"metadata": {"ownerReferences": solid}}, "merge"
            )
        return invalid

    async def _gc_check_owners(self, key: Key, okey: ObjKey) -> None:
        """A dependent whose ownerReferences changed: settled as the collector's check of a
        new reference decides, and each reference that breaks the namespace rule is
        reported with an ``OwnerRefInvalidNamespace`` Event about the dependent."""
        rt = self.registry.find(key[1], key[0])
        obj = self._objects[key].get(okey)
        if rt is None or obj is None or obj["metadata"].get("deletionTimestamp"):
            return
        for ref in await self._gc_settle_dependent(rt, okey):
            event = invalid_namespace_event(obj, rt.api_version, rt.kind, ref, now_rfc3339())
            with contextlib.suppress(StatusError):  # e.g. the namespace is terminating
                await self.create(
                    self.registry.lookup("events"), event["metadata"]["namespace"], event
                )

    async def _gc_owner_removed(self, key: Key, owner: dict[str, Any]) -> None:
        """An owner is gone: each dependent is settled again (deleted in the background
        when no other owner is verified present)."""
        uid = owner["metadata"].get("uid", "")
        for ref in list(self._dependents.get(uid, ())):
            found = self._lookup_ref(ref)
            if found is None:
                continue
            await self._gc_settle_dependent(found[0], (ref[1], ref[2]))
        # dependents of a foreground-deleting owner may be waiting on this one
        for r in owner["metadata"].get("ownerReferences") or []:
            where = self._by_uid.get(r.get("uid", ""))
            if where is not None:
                found = self._lookup_ref(where)
                if found is not None:
                    await self._gc_owner_deleting(found[0].key, found[1])

    async def _gc_owner_deleting(self, key: Key, owner: dict[str, Any]) -> None:
        """Handle the ``orphan`` and ``foregroundDeletion`` finalizers of an owner."""
        rt = self.registry.find(key[1], key[0])
        if rt is None:
            return
        meta = owner["metadata"]
        ns, name, uid = meta.get("namespace"), meta["name"], meta.get("uid", "")
        found = self._lookup_ref((key, ns or "", name))
        if found is None or found[1]["metadata"].get("uid") != uid:
            return
        owner = found[1]
        finalizers = list(owner["metadata"].get("finalizers") or [])
        if not owner["metadata"].get("deletionTimestamp"):
            return
        if rt.key == _PVC_KEY and PVC_PROTECTION in finalizers:
            self._terminating_claims.add((ns or "", name))
            await self._gc_claim(ns or "", name)
            return
        deps = [d for d in (self._lookup_ref(r) for r in list(self._dependents.get(uid, ()))) if d]
        if "orphan" in finalizers:
            for dep_rt, dep in deps:
                refs = [
                    r for r in dep["metadata"].get("ownerReferences") or [] if r.get("uid") != uid
                ]
                dmeta = dep["metadata"]
                await self.patch(
                    dep_rt,
                    dmeta.get("namespace"),
                    dmeta["name"],
                    {"metadata": {"ownerReferences": refs or None}},
                    "merge",
                )
            finalizers.remove("orphan")
            await self.patch(
                rt, ns, name, {"metadata": {"finalizers": finalizers or None}}, "merge"
            )
        elif "foregroundDeletion" in finalizers:
            # only dependents that may reference this owner wait for it (and are deleted
            # with it); the others are the collector's to settle on their own
            me = {"kind": rt.kind, "apiVersion": rt.api_version, "uid": uid}
            deps = [(dep_rt, dep) for dep_rt, dep in deps if self._owner_verdict(
                dep["metadata"].get("namespace") or "", me).state is OwnerState.SOLID]
            pending = False
            for dep_rt, dep in deps:
                pending = True
                if not dep["metadata"].get("deletionTimestamp"):
                    dmeta = dep["metadata"]
                    await self.delete(
                        dep_rt,
                        dmeta.get("namespace"),
                        dmeta["name"],
                        propagation_policy="Foreground",
                    )
            if not pending:
                finalizers.remove("foregroundDeletion")
                await self.patch(
                    rt, ns, name, {"metadata": {"finalizers": finalizers or None}}, "merge"
                )

    async def _gc_claim(self, namespace: str, name: str) -> None:
        """The pvc-protection controller: release a deleting claim no live pod uses."""
        claim = self._objects[_PVC_KEY].get((namespace, name))
        if claim is None or not claim["metadata"].get("deletionTimestamp"):
            self._terminating_claims.discard((namespace, name))
            return
        finalizers = list(claim["metadata"].get("finalizers") or [])
        if PVC_PROTECTION not in finalizers:
            return
        for (pod_ns, _pod), pod in self._objects[_POD_KEY].items():
            if pod_ns != namespace or name not in _claim_names(pod):
                continue
            if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                return  # still in use; a later pod change queues another check
        finalizers.remove(PVC_PROTECTION)
        self._terminating_claims.discard((namespace, name))
        await self.patch(
            self.registry.lookup("persistentvolumeclaims"),
            namespace,
            name,
            {"metadata": {"finalizers": finalizers or None}},
            "merge",
        )

    async def _gc_namespace(self, namespace: str) -> None:
        """The namespace controller: delete everything inside, then the namespace."""
        for rt in self.registry:
            if not rt.namespaced:
                continue
            for (obj_ns, name), obj in list(self._objects[rt.key].items()):
                if obj_ns == namespace and not obj["metadata"].get("deletionTimestamp"):
                    with contextlib.suppress(StatusError):
                        await self.delete(rt, namespace, name)
        if not self._maybe_finish_namespace(namespace):
            self._report_namespace_content(namespace)

    def _report_namespace_content(self, namespace: str) -> None:
        """The namespace controller's status conditions: what is left and who holds it."""
        ns = self._objects[_NS_KEY].get(("", namespace))
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        remaining: dict[str, int] = {}
        holders: dict[str, int] = {}
        for rt in self.registry:
            if not rt.namespaced:
                continue
            for (obj_ns, _name), obj in self._objects[rt.key].items():
                if obj_ns != namespace:
                    continue
                resource = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
                remaining[resource] = remaining.get(resource, 0) + 1
                for finalizer in obj["metadata"].get("finalizers") or ():
                    holders[finalizer] = holders.get(finalizer, 0) + 1
        status = dict(ns.get("status") or {})
        status["conditions"] = termination_conditions(remaining, holders, now_rfc3339())
        new = dict(ns, status=status)
        self._commit(self.registry.lookup("namespaces"), "MODIFIED", new, ns)

    def _maybe_finish_namespace(self, namespace: str) -> bool:
        ns = self._objects[_NS_KEY].get(("", namespace))
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return False
        for rt in self.registry:
            if rt.namespaced and any(k[0] == namespace for k in self._objects[rt.key]):
                return False
        self._remove(self.registry.lookup("namespaces"), ns, ns)
        return True

    # ---------------------------------------------------------------- CRDs
    def _prepare_crd(self, crd: dict[str, Any], old: dict[str, Any] | None = None) -> None:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        group = spec.get("group", "")
        plural = names.get("plural", "")
        causes = []
        if not group or "." not in group:
            causes.append(
                field_invalid("spec.group", group, "should be a domain with at least one dot")
            )
        if not plural:
            causes.append(
                field_required("spec.names.plural")
            )
        if not names.get("kind"):
            causes.append(
                field_required("spec.names.kind")
            )
        if spec.get("scope") not in ("Namespaced", "Cluster"):
            causes.append(
                field_not_supported("spec.scope", spec.get("scope", ""), ("Cluster", "Namespaced"))
            )
        if not spec.get("versions"):
            causes.append(
                field_required(
                    "spec.versions", "must have exactly one version marked as storage version"
                )
            )
        expected = f"{plural}.{group}"
        if crd["metadata"].get("name") != expected:
            causes.append(
                field_invalid(
                    "metadata.name",
                    crd["metadata"].get("name"),
                    'must be spec.names.plural+"."+spec.group',
                )
            )
        if causes:
            raise errors.invalid(
                "CustomResourceDefinition",
                crd["metadata"].get("name", ""),
                causes,
                "apiextensions.k8s.io",
            )
        accepted = {k: v for k, v in names.items()}
        accepted.setdefault("singular", names["kind"].lower())
        accepted.setdefault("listKind", names["kind"] + "List")
        old_status = (old or {}).get("status") or {}
        if old_status.get("acceptedNames") == accepted and old_status.get("conditions"):
            # names unchanged: the conditions (and their transition times) stay
            crd["status"] = dict(
                old_status,
                storedVersions=list(
                    dict.fromkeys(
                        [*(old_status.get("storedVersions") or [])]
                        + [v["name"] for v in spec["versions"] if v.get("storage")]
                    )
                ),
            )
            return
        crd["status"] = {
            "conditions": [
                {
                    "type": "NamesAccepted",
                    "status": "True",
                    "lastTransitionTime": now_rfc3339(),
                    "reason": "NoConflicts",
                    "message": "no conflicts found",
                },
                {
                    "type": "Established",
                    "status": "True",
                    "lastTransitionTime": now_rfc3339(),
                    "reason": "InitialNamesAccepted",
                    "message": "the initial names have been accepted",
                },
            ],
            "acceptedNames": accepted,
            "storedVersions": [v["name"] for v in spec["versions"] if v.get("storage")],
        }

    def _register_crd(self, crd: dict[str, Any]) -> None:
        spec = crd["spec"]
        names = spec["names"]
        for version in spec["versions"]:
            if not version.get("served", True):
                continue
            subresources = frozenset((version.get("subresources") or {}).keys())
            storage = next(
                (v["name"] for v in spec["versions"] if v.get("storage")), version["name"]
            )
            rt = ResourceType(
                group=spec["group"],
                version=version["name"],
                plural=names["plural"],
                kind=names["kind"],
                namespaced=spec["scope"] == "Namespaced",
                subresources=subresources,
                singular=names.get("singular", names["kind"].lower()),
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                has_generation=True,
                returns_deleted=True,
                verbs=CR_VERBS,
                storage_version_hash=storage_version_hash(spec["group"], storage, names["kind"]),
            )
            self.custom_versions[(rt.group, rt.version, rt.plural)] = version_info(version)
            schema = (version.get("schema") or {}).get("openAPIV3Schema") or {}
            if self.registry.find(rt.plural, rt.group) is None:
                self._watch_windows.start(rt.key, self.resource_version)  # a new cache
            self.registry.add(rt, schema)

    def _unregister_crd(self, crd: dict[str, Any]) -> None:
        spec = crd.get("spec") or {}
        group, plural = spec.get("group", ""), (spec.get("names") or {}).get("plural", "")
        gone = self.registry.remove(group, plural)
        for rt_gone in gone:
            self.custom_versions.pop((rt_gone.group, rt_gone.version, rt_gone.plural), None)
        if gone:
            rt = gone[0]
            for obj in list(self._objects[rt.key].values()):
                self._remove(rt, obj, obj)
            for w in list(self._watchers.get(rt.key, ())):
                w.close("resource removed")

    # --------------------------------------------------------------- shutdown
    async def close(self) -> None:
        self.close_watches()
        if self._gc_task is not None:
            self._gc_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._gc_task
            self._gc_task = None


def _owner_uids(obj: dict[str, Any] | None) -> frozenset[str]:
    if obj is None:
        return frozenset()
    refs = obj.get("metadata", {}).get("ownerReferences")
    if not refs:
        return frozenset()
    return frozenset(r.get("uid", "") for r in refs if isinstance(r, dict))


def _generation_changes(
    rt: ResourceType, old: dict[str, Any], new: dict[str, Any], custom: bool
) -> bool:
    """Whether an update is a change of the desired state, which bumps ``generation``.

    Built-in kinds count their ``spec``; a custom resource counts every field but
    ``metadata`` (and ``status``, when it has a status subresource), like the
    apiextensions server, whose objects need not have a ``spec`` at all.
    """
    if not custom:
        return new.get("spec") != old.get("spec")
    ignored = {"metadata", "status"} if "status" in rt.subresources else {"metadata"}
    keys = (set(old) | set(new)) - ignored
    return any(old.get(k) != new.get(k) for k in keys)


def _claim_names(pod: dict[str, Any]) -> list[str]:
    volumes = (pod.get("spec") or {}).get("volumes") or []
    return [
        v["persistentVolumeClaim"]["claimName"]
        for v in volumes
        if isinstance(v, dict)
        and isinstance(v.get("persistentVolumeClaim"), dict)
        and v["persistentVolumeClaim"].get("claimName")
    ]


def _on_node(pod: dict[str, Any]) -> bool:
    return bool((pod.get("spec") or {}).get("nodeName"))


def _labels_of(obj: dict[str, Any]) -> Any:
    """The labels map of ``obj`` as stored (compared by identity, never modified)."""
    meta = obj.get("metadata")
    return meta.get("labels") if isinstance(meta, dict) else None


def _patched_deeper_than(patched: Any, current: dict[str, Any], limit: int) -> bool:
    """``nested_deeper_than(patched, limit)``, without walking what ``patched`` shares
    with the stored object it was made from.

    A shared top-level field is the stored object's own, which was within the limit when
    it was written, at the same depth; only the fields the patch made can be too deep. A
    status write shares the spec, which for a pod is most of the object.
    """
    if type(patched) is not dict:
        return nested_deeper_than(patched, limit)
    made = {key: value for key, value in patched.items() if current.get(key) is not value}
    return nested_deeper_than(made, limit)


def _ordered(obj: dict[str, Any]) -> dict[str, Any]:
    """Key order as the real server writes it (kind, apiVersion, metadata first)."""
    meta = obj["metadata"]
    ordered_meta = {k: meta[k] for k in OBJECT_META_ORDER if k in meta}
    ordered_meta.update((k, v) for k, v in meta.items() if k not in ordered_meta)
    out: dict[str, Any] = {
        "kind": obj["kind"],
        "apiVersion": obj["apiVersion"],
        "metadata": ordered_meta,
    }
    out.update((k, v) for k, v in obj.items() if k not in out)
    return out


def parse_resource_version(text: str) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise errors.bad_request(f'invalid resource version "{text}"') from None
    if value < 0:
        raise errors.bad_request(f'invalid resource version "{text}"')
    return value


def too_old_resource_version(requested: int, oldest: int) -> StatusError:
    return errors.expired(f"too old resource version: {requested} ({oldest})")


def too_large_resource_version(requested: int, current: int) -> StatusError:
    return StatusError(
        errors.status_body(
            504,
            "Timeout",
            f"Too large resource version: {requested}, current: {current}",
            {
                "causes": [
                    {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
                ],
                "retryAfterSeconds": 1,
            },
        ),
        headers={"Retry-After": "1"},
    )


ListQueryKey = tuple[Any, ...]


@dataclass(slots=True)
class _PagedList:
    keys: list[ObjKey]
    items: list[dict[str, Any]]
    rv: int
    made_at: float


class ListSnapshots:
    """Results of recent paginated lists, so each continue page costs O(page).

    Rebuilding the list as of the token's resourceVersion for every page (sort the whole
    kind, undo newer changes from the history) made a 20,000-pod list with limit=200 cost
    O(N²/limit). The real server reads one etcd revision per page instead; the equivalent
    here is to keep the first page's sorted, filtered result (references to immutable
    stored versions, never copies) and answer the following pages by bisecting it for the
    token's last key. A result is only reused while its resourceVersion is still within
    the history window, so expiry (410) and restarts behave exactly as before; a miss
    (evicted, other process) falls back to rebuilding from the history.
    """

    def __init__(self, max_entries: int = 16, max_age: float = 300.0) -> None:
        self.max_entries = max_entries
        self.max_age = max_age
        self._entries: collections.OrderedDict[ListQueryKey, _PagedList] = collections.OrderedDict()

    def remember(
        self, query: ListQueryKey, rv: int, items: list[dict[str, Any]], now: float
    ) -> None:
        keys = [(o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in items]
        self._entries[(*query, rv)] = _PagedList(keys, items, rv, now)
        self._entries.move_to_end((*query, rv))
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def page_after(
        self, query: ListQueryKey, rv: int, after: ObjKey, limit: int, oldest_rv: int, now: float
    ) -> tuple[list[dict[str, Any]], int] | None:
        """The ``limit`` items after key ``after`` and how many remain behind them.

        ``None`` when this list is not remembered (or no longer may be used): the caller
        then rebuilds it from the history.
        """
        entry = self._entries.get((*query, rv))
        if entry is None:
            return None
        if rv < oldest_rv or now - entry.made_at > self.max_age:
            del self._entries[(*query, rv)]
            return None
        self._entries.move_to_end((*query, rv))
        start = bisect.bisect_right(entry.keys, after)
        end = start + limit if limit else len(entry.items)
        return entry.items[start:end], max(len(entry.items) - end, 0)

    def clear(self) -> None:
        self._entries.clear()
