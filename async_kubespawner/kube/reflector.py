"""List + watch one kind into a cache, kept alive by a supervisor; shared per process.

The informer pattern of client-go, in asyncio:

1. **List once** (paginated, so a namespace with 20,000 pods never makes one huge JSON
   parse that stalls the hub's event loop), replace the cache, note the list's
   ``resourceVersion``.
2. **Watch from that resourceVersion** with ``allowWatchBookmarks``; each watch is held for
   minutes (``watch_timeout``) and, when the server ends it or the connection drops, the
   next one **resumes from the last resourceVersion seen** (events and bookmarks), so
   nothing is missed and nothing is re-listed.
3. **Relist only on 410 Gone** (the server no longer has history that old).
4. On errors, **back off** with full jitter, capped, reset after a success. The supervisor
   never gives up and never raises into the hub: a reflector outlives API outages of any
   length and catches up when the server returns. While it waits out an outage, the
   client probes the server about once a second and the first answer ends the wait.

A :class:`Reflector` is built from three things passed in, never patched: a
:class:`ListerWatcher` (where the objects come from: :class:`ApiListerWatcher` for the API
server, a scripted one in tests), a sink (what they go into: an
:class:`~.cache.ObjectCache`, an :class:`~.cache.EventIndex`, or anything following
:class:`Sink`), and :class:`ReflectorOptions` (clock, sleep, backoff, a state callback).
``Reflector[ObjectCache]`` is what a reader gets back, so ``reflector.sink`` is typed.

Upstream's reflector re-listed every few seconds even when idle, gave up after a few
failures (and was then reused dead, so ``poll()`` answered from a frozen cache), and
could be handed out before its first list (so ``poll()`` said running pods had stopped).
Here, :func:`get_reflector` hands out a reflector whose supervisor is running, readers
call :meth:`Reflector.wait_synced` before trusting an absence, and
:meth:`Reflector.stale_for` tells them how long the cache has been cut off.

Reflectors of per-user namespaces are leased by the servers that use them
(:func:`get_reflector` with ``owner``) and stopped, with their metric series, a short
while after the last lease is released (:func:`release_reflectors`): a hub whose users
once spawned in 300 namespaces does not keep 600 watches open.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import aiohttp
import orjson

from ..metrics import CACHE_SIZE, REFLECTOR_RESTARTS, REFLECTOR_WATCH_AGE
from .client import KubeApi, ResourceKind
from .errors import ApiError, Gone, NoResponse, error_for_exception, error_for_status
from .pod_list import decode_list_metadata

__all__ = [
    "ApiListerWatcher",
    "EventObserver",
    "ListerWatcher",
    "Reflector",
    "ReflectorHealth",
    "ReflectorOptions",
    "ReflectorSettings",
    "Sink",
    "WatchGone",
    "add_event_observer",
    "get_reflector",
    "reflectors",
    "release_reflectors",
    "stop_reflectors",
    "wait_released",
]

log = logging.getLogger("async_kubespawner.kube")

#: Longest stretch of watch events applied without yielding to the event loop. A burst
#: (1,000 pods deleted at once) wakes a waiter per event; short steps keep each loop
#: iteration, and so each woken stop()/progress listener, short (5 ms -> 2 ms cut the
#: hub-side stop p50 by ~30 % and progress p50 by ~65 % in a 1,000-spawn storm, same
#: CPU; see docs/performance.md).
_MAX_STEP_SECONDS = 0.002
#: Most bytes of a watch stream taken from aiohttp's buffer at once. Everything buffered
#: (up to 4 MiB in a backlog) came as one chunk before: one join into fresh memory, 3-8 ms
#: of CPU inside a single loop step at 10,000 spawns; a piece of 256 KiB is ~0.2 ms.
WATCH_FETCH_BYTES = 2**18
#: Byte values ``bytes.strip()`` removes: a line starting with one may be blank.
_BLANK = frozenset(b" \t\n\r\x0b\x0c")
#: A watch that ends sooner than this without any data counts as a failure (backoff);
#: a quiet watch that ran longer simply expired and is renewed at once.
_QUICK_WATCH_END = 1.0


class _Fetch:
    """Awaits one awaitable and notes whether that suspended the awaiting task.

    Why: the reflector's step budget must restart when the event loop ran other work
    (a fetch that waited for the socket) and only then; a chunk aiohttp had buffered
    already comes back without yielding. Timing the fetch cannot tell them apart (taking
    a large buffered piece can be slower than a short wait). Everything is passed
    through unchanged, cancellation included.
    """

    __slots__ = ("_awaitable", "suspended")

    def __init__(self, awaitable: Awaitable[Any]) -> None:
        self._awaitable = awaitable
        self.suspended = False

    def __await__(self) -> Generator[Any, Any, Any]:
        inner = self._awaitable.__await__()
        try:
            signal = inner.send(None)
        except StopIteration as done:
            return done.value
        self.suspended = True
        while True:
            try:
                sent = yield signal
            except GeneratorExit:
                inner.close()
                raise
            except BaseException as exc:  # thrown in by the task (cancellation): pass it on
                try:
                    signal = inner.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    signal = inner.send(sent)
                except StopIteration as done:
                    return done.value


class Sink(Protocol):
    """What a reflector feeds: :class:`~.cache.ObjectCache` or :class:`~.cache.EventIndex`.

    Optional: ``decode_page(raw)`` and ``decode_event(line)`` parse a list page and a
    watch line into only what the sink keeps (``orjson.loads`` otherwise). A line is
    any bytes-like object (a ``memoryview`` of the stream's chunk), not always ``bytes``.
    """

    def trim(self, obj: dict[str, Any]) -> Any: ...  # what replace_all(trimmed=True) takes
    def upsert(self, obj: dict[str, Any]) -> None: ...
    def remove(self, obj: dict[str, Any]) -> None: ...
    def replace_all(self, objects: list[Any], *, trimmed: bool = False) -> None: ...
    def __len__(self) -> int: ...


SinkT = TypeVar("SinkT", bound=Sink)

Decode = Callable[[bytes], dict[str, Any]]
#: A watch line's decoder: lines are views of the stream's chunk (see Reflector._watch).
LineDecode = Callable[[bytes | memoryview], dict[str, Any]]


class ListerWatcher(Protocol):
    """Where a reflector's objects come from: pages of a list, and a watch from a version.

    ``watch`` yields the stream's raw chunks (newline-separated JSON watch events);
    ``server_answered`` resolves when the source is reachable again after an outage.
    """

    @property
    def name(self) -> str: ...

    @property
    def resource(self) -> str: ...

    @property
    def namespace(self) -> str | None: ...  # None: all namespaces

    async def list_page(
        self,
        *,
        limit: int,
        continue_token: str | None,
        timeout: float,  # noqa: ASYNC109 (a per-page client timeout)
        decode: Decode,
    ) -> dict[str, Any]: ...

    def watch(
        self, *, resource_version: str, timeout_seconds: int, read_timeout: float | None
    ) -> AbstractAsyncContextManager[AsyncIterator[bytes]]: ...

    def server_answered(self) -> asyncio.Future[None]: ...


class ApiListerWatcher:
    """One kind in one namespace (or all), optionally filtered by selectors, via KubeApi."""

    def __init__(
        self,
        api: KubeApi,
        kind: ResourceKind,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> None:
        self.api = api
        self.kind = kind
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        name = f"{kind.plural}@{namespace or '*'}"
        if label_selector:
            name += f"[{label_selector}]"
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def resource(self) -> str:
        return self.kind.plural

    async def list_page(
        self,
        *,
        limit: int,
        continue_token: str | None,
        timeout: float,  # noqa: ASYNC109 (a per-page client timeout)
        decode: Decode,
    ) -> dict[str, Any]:
        return await self.api.list_page(
            self.kind,
            self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            limit=limit,
            continue_token=continue_token,
            timeout=timeout,
            decode=decode,
        )

    @asynccontextmanager
    async def watch(
        self, *, resource_version: str, timeout_seconds: int, read_timeout: float | None
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        async with self.api.watch_stream(
            self.kind,
            self.namespace,
            resource_version=resource_version,
            timeout_seconds=timeout_seconds,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            read_timeout=read_timeout,
        ) as resp:
            yield self._chunks(resp.content.iter_chunked(WATCH_FETCH_BYTES))

    async def _chunks(self, raw: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The stream's chunks; a connection lost mid-stream is a :class:`NoResponse`, like
        one lost before the answer (the one mapping of :mod:`.errors`)."""
        try:
            async for chunk in raw:
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as e:
            error = error_for_exception(
                e, verb="watch", kind=self.kind.plural, namespace=self.namespace
            )
            assert error is not None  # both kinds map
            raise error from e

    def server_answered(self) -> asyncio.Future[None]:
        return self.api.server_answered()


@dataclass(frozen=True)
class ReflectorSettings:
    """Knobs of every reflector (configured as ``c.KubeSpawner.reflector_*``)."""

    #: Server-side ``timeoutSeconds`` of each watch: how long one watch is held before it is
    #: renewed (from the last resourceVersion, without a list).
    watch_timeout: int = 300
    #: A watch that delivers nothing (not even a bookmark) for this long is presumed dead
    #: and reopened. ``None`` relies on ``watch_timeout`` alone.
    idle_timeout: float | None = None
    #: First and maximal delay between attempts after an error (full jitter in between).
    backoff_initial: float = 0.25
    backoff_max: float = 30.0
    #: Objects per list page: bounds the size of each JSON parse on the event loop (200
    #: pods of ~8 KB parse in ~15 ms).
    list_page_size: int = 200
    #: Client timeout of one list page request.
    list_timeout: float = 60.0
    #: Apply each page of the *first* list to the sink as it arrives (if the sink has
    #: ``load_page``), so a reader waiting on one key (``wait_listed``) is answered by the
    #: page that holds it instead of by the last page. The sink is then partial until
    #: ``synced``: a key present is true, an absence means nothing yet. Relists (after a
    #: 410) never do this: they replace the old content only once complete.
    partial_first_list: bool = False
    #: Objects in the first page of a list (``None``: ``list_page_size``). A small first
    #: page answers the readers of its keys after a short request; later pages are large.
    first_page_size: int | None = None
    #: Seconds a leased reflector keeps running after its last lease is released (a
    #: server stopping and starting again does not relist).
    release_delay: float = 30.0


def jittered_backoff(failures: int, settings: ReflectorSettings) -> float:
    """Full jitter, doubling from ``backoff_initial`` up to ``backoff_max``."""
    return random.uniform(
        0, min(settings.backoff_max, settings.backoff_initial * 2 ** min(failures, 20))
    )


#: ``on_state(reflector, state)``: "connected" (a list or a watch succeeded after a
#: failure, or the first list) or "disconnected" (the first failure of a streak).
StateCallback = Callable[["Reflector[Any]", str], None]


@dataclass(frozen=True)
class ReflectorOptions:
    """The seams of a reflector, passed in: time, pauses, backoff and a state callback."""

    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    backoff: Callable[[int, ReflectorSettings], float] = jittered_backoff
    on_state: StateCallback | None = None


class WatchGone(Exception):
    """The server no longer has the requested resourceVersion: relist."""


@dataclass
class ReflectorHealth:
    name: str
    running: bool
    synced: bool
    last_event_age: float | None
    restarts: int
    errors: int
    last_error: str | None
    resource_version: str | None
    objects: int
    stale_for: float = 0.0


#: ``observer(reflector, event, seen)`` for every watch event a reflector applies, with
#: the monotonic time it was decoded (benchmarks time deliveries with it). The event is as
#: the sink's ``decode_event`` parsed it: for pods and Events, only the keys the cache
#: reads (a pod's conditions are all there).
EventObserver = Callable[["Reflector[Any]", dict[str, Any], float], None]
_event_observers: list[EventObserver] = []


def add_event_observer(observer: EventObserver) -> Callable[[], None]:
    """Call ``observer`` for every watch event of every reflector; returns the removal.

    For instrumentation (benchmarks, diagnostics): observers run inside the watch loop, so
    they must be quick; an observer that raises is logged and kept.
    """
    _event_observers.append(observer)

    def remove() -> None:
        with contextlib.suppress(ValueError):
            _event_observers.remove(observer)

    return remove


class Reflector(Generic[SinkT]):
    """Keeps ``sink`` equal to what ``source`` lists and watches."""

    def __init__(
        self,
        source: ListerWatcher,
        sink: SinkT,
        *,
        settings: ReflectorSettings = ReflectorSettings(),
        options: ReflectorOptions = ReflectorOptions(),
    ) -> None:
        self.source = source
        self.sink = sink
        self.settings = settings
        self.options = options
        self.name = source.name
        self.resource_version: str | None = None
        self.restarts = 0
        self.errors = 0
        self.last_error: str | None = None
        self.last_event_monotonic: float | None = None
        self._disconnected_since: float | None = None
        self._is_connected = asyncio.Event()
        self._is_disconnected = asyncio.Event()
        self._synced = asyncio.Event()
        #: wait_listed's waiters: future -> its ``present()``.
        self._listed_waiters: dict[asyncio.Future[None], Callable[[], bool]] = {}
        #: Pages of the current first list applied to the sink so far (partial loading).
        self.pages_loaded = 0
        #: The sink's own page parser (ObjectCache.decode_page: pods parse only the keys
        #: the cache keeps), else a full parse.
        self._page_decoder: Decode | None = getattr(sink, "decode_page", None)
        #: Likewise for watch lines (kube/pod_list.py): a pod event is decoded into
        #: the keys the cache keeps, never into the whole pod.
        self._decode_event: LineDecode = getattr(sink, "decode_event", None) or orjson.loads
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._supervise(), name=f"reflector {self.name}"
            )
            REFLECTOR_WATCH_AGE.labels(self.name).set_function(self._age_or_zero)
            CACHE_SIZE.labels(self.name).set_function(self._size)

    @property
    def resource(self) -> str:
        """The resource reflected (plural, as in the URL: ``pods``, ``events``)."""
        return self.source.resource

    @property
    def namespace(self) -> str | None:
        """The namespace reflected; None for all namespaces."""
        return self.source.namespace

    def _size(self) -> int:
        return len(self.sink)

    async def stop(self) -> None:
        """Stop the supervisor (closing its watch) and drop this reflector's metric series."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for metric in (REFLECTOR_WATCH_AGE, CACHE_SIZE, REFLECTOR_RESTARTS):
            with contextlib.suppress(KeyError):
                metric.remove(self.name)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def synced(self) -> bool:
        """True once a first list has completed: from then on an absence in the cache
        means the object does not exist (as of the last event received)."""
        return self._synced.is_set()

    async def wait_synced(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait for the first list; ``False`` if it has not completed within ``timeout``."""
        if self._synced.is_set():
            return True
        try:
            async with asyncio.timeout(timeout):
                await self._synced.wait()
        except TimeoutError:
            return False
        return True

    async def wait_listed(
        self,
        present: Callable[[], bool],
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> bool:
        """Wait until ``present()`` holds or the first list has completed; ``False`` if
        neither happened within ``timeout``.

        For a reader of one key: with ``partial_first_list`` the sink fills page by page,
        so a key on page 1 of 25 is answered after one page. ``present()`` must only be
        true for something a page (or an event) put in the sink, and cheap: it is asked
        once per page applied. An absence is only meaningful once :attr:`synced`, which
        the caller checks after this returns. One future per waiter, resolved by the
        page that satisfies it: a restarted hub polling 5,000 servers at once does not
        wake 5,000 coroutines per page.
        """
        if self._synced.is_set() or present():
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._listed_waiters[future] = present
        try:
            async with asyncio.timeout(timeout):
                await future
        except TimeoutError:
            return False
        finally:
            self._listed_waiters.pop(future, None)
        return True

    def _wake_listed(self, *, everyone: bool) -> None:
        """Resolve the ``wait_listed`` waiters whose key a page brought (all at the end)."""
        for future, present in list(self._listed_waiters.items()):
            if future.done():
                continue
            try:
                if everyone or present():
                    future.set_result(None)
            except Exception as e:
                future.set_exception(e)

    def stale_for(self) -> float:
        """Seconds since this reflector lost its connection to the API server (0 while it
        is connected: then the cache is as current as the watch).

        A reader that needs the truth (``poll()``) reads the object directly once this
        exceeds its bound, instead of trusting a cache that cannot hear changes.
        """
        if self._disconnected_since is None:
            return 0.0
        return max(0.0, self.options.clock() - self._disconnected_since)

    def _age_or_zero(self) -> float:
        age = self.last_event_age
        return 0.0 if age is None else age

    @property
    def last_event_age(self) -> float | None:
        if self.last_event_monotonic is None:
            return None
        return time.monotonic() - self.last_event_monotonic

    def health(self) -> ReflectorHealth:
        return ReflectorHealth(
            name=self.name,
            running=self.running,
            synced=self.synced,
            last_event_age=self.last_event_age,
            restarts=self.restarts,
            errors=self.errors,
            last_error=self.last_error,
            resource_version=self.resource_version,
            objects=len(self.sink),
            stale_for=self.stale_for(),
        )

    def _state(self, state: str) -> None:
        if self.options.on_state is not None:
            try:
                self.options.on_state(self, state)
            except Exception:
                log.exception("Reflector %s: state callback failed", self.name)

    async def wait_connection(self, connected: bool, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait until the reflector is connected (a list or watch succeeded) or cut off
        (its last attempt failed); ``False`` if that did not happen within ``timeout``."""
        event = self._is_connected if connected else self._is_disconnected
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            return False
        return True

    def _connected(self) -> None:
        if not self._is_connected.is_set():
            self._is_disconnected.clear()
            self._is_connected.set()
        if self._disconnected_since is not None:
            self._disconnected_since = None
            self._state("connected")

    def _disconnected(self) -> None:
        if not self._is_disconnected.is_set():
            self._is_connected.clear()
            self._is_disconnected.set()
        if self._disconnected_since is None:
            self._disconnected_since = self.options.clock()
            self._state("disconnected")

    # -- the supervisor ----------------------------------------------------------------

    async def _supervise(self) -> None:
        failures = 0
        # Whether the last pause ended early because the server answered: if the attempt
        # after it fails too, the next pause is a plain one (see _pause).
        woke_early = False
        clock = self.options.clock
        while not self._stopping:
            opened: float | None = None
            unavailable = False
            try:
                if self.resource_version is None:
                    await self._list()
                    failures = 0
                opened = clock()
                delivered = await self._watch()
                if delivered or clock() - opened >= _QUICK_WATCH_END:
                    # Events arrived, or a quiet watch ran until the server ended it:
                    # renew at once (from the last resourceVersion) and forget failures.
                    failures = 0
                    woke_early = False
                    continue
                # A watch that ended at once without delivering anything: harmless once,
                # but a server that keeps closing watches at once must not be hammered.
                failures += 1
                if failures == 1:
                    continue
            except asyncio.CancelledError:
                raise
            except WatchGone:
                log.info(
                    "Reflector %s: resourceVersion %s expired (410); relisting",
                    self.name,
                    self.resource_version,
                )
                self.resource_version = None
                self.restarts += 1
                REFLECTOR_RESTARTS.labels(self.name).inc()
                failures += 1
                if failures == 1:
                    continue
            except Exception as e:  # never let an error end the reflector
                if opened is not None and clock() - opened >= _QUICK_WATCH_END:
                    # A long-held quiet watch cut by the network (a load balancer's idle
                    # timeout): not an outage, renew at once from where we are.
                    log.debug("Reflector %s: watch cut after a while (%s); renewing", self.name, e)
                    failures = 0
                    continue
                failures += 1
                self.errors += 1
                self.restarts += 1
                self.last_error = f"{type(e).__name__}: {e}"
                unavailable = isinstance(e, ApiError) and e.unavailable
                self._disconnected()
                REFLECTOR_RESTARTS.labels(self.name).inc()
                log_at = logging.WARNING if failures <= 3 or failures % 20 == 0 else logging.DEBUG
                log.log(
                    log_at,
                    "Reflector %s failed (%d in a row): %s",
                    self.name,
                    failures,
                    self.last_error,
                )
            delay = self.options.backoff(failures, self.settings)
            woke_early = await self._pause(delay, wake_on_answer=unavailable and not woke_early)

    async def _pause(self, delay: float, *, wake_on_answer: bool) -> bool:
        """Back off for ``delay``; True if it ended early because the server answered.

        After an outage (connection errors, 5xx) the backoff can have grown to tens of
        seconds while the API server is back: the first answer (to a probe the client
        sends about once a second while anyone waits, or to any other request) ends the
        pause, so the hub catches up at once. Only one pause in a row may end early, so a
        failure of this reflector alone (a broken watch endpoint while other requests
        work) still backs off.
        """
        if not wake_on_answer:
            await self.options.sleep(delay)
            return False
        answered = self.source.server_answered()
        sleeping = asyncio.ensure_future(self.options.sleep(delay))
        try:
            await asyncio.wait({answered, sleeping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in (answered, sleeping):
                if not future.done():
                    future.cancel()
        return answered.done() and not answered.cancelled()

    async def _list(self) -> None:
        items: list[Any] = []
        continue_token: str | None = None
        load_page: Callable[[list[Any]], None] | None = None
        drop_unlisted: Callable[[set[Any]], None] | None = None
        if self.settings.partial_first_list and not self._synced.is_set():
            load_page = getattr(self.sink, "load_page", None)
            if load_page is not None:
                drop_unlisted = getattr(self.sink, "drop_unlisted", None)
        #: Keys listed so far, when the pages are loaded as they come (then ``items`` is
        #: not kept: 100,000 entries would be held twice, as GC-tracked tuples).
        listed: set[Any] = set()
        count = 0
        self.pages_loaded = 0
        prefetched: asyncio.Future[dict[str, Any]] | None = None
        try:
            while True:
                limit = self.settings.list_page_size
                if continue_token is None and self.settings.first_page_size:
                    limit = self.settings.first_page_size
                try:
                    if prefetched is not None:
                        fetch, prefetched = prefetched, None
                        page = await fetch
                    else:
                        page = await self._list_page(limit, continue_token)
                except Gone:
                    if continue_token:
                        # The continue token expired between pages: start the list again.
                        items, continue_token, count = [], None, 0
                        listed.clear()
                        continue
                    raise
                meta = page.get("metadata") or {}
                continue_token = meta.get("continue") or None
                if continue_token:
                    # Ask for the next page before parsing this one (only its list
                    # metadata is read so far): the server prepares and sends the next
                    # page while this one is parsed, trimmed and its readers woken.
                    prefetched = asyncio.ensure_future(
                        self._list_page(self.settings.list_page_size, continue_token)
                    )
                    await asyncio.sleep(0)  # the request goes out before the parse
                page_items = self._page_items(page)
                count += len(page_items)
                if drop_unlisted is None:
                    items.extend(page_items)
                else:
                    listed.update(key for key, _, _ in page_items)
                if load_page is not None:
                    # A first list: what this page holds is true now; what it lacks may
                    # be on a later page, so nothing is removed until the list completes.
                    load_page(page_items)
                    self.pages_loaded += 1
                    if continue_token:
                        # Woken from the loop: their work overlaps the next page's fetch.
                        asyncio.get_running_loop().call_soon(self._wake_listed_some)
                if not continue_token:
                    break
        finally:
            if prefetched is not None:
                prefetched.cancel()
        if drop_unlisted is not None:
            # Every page is in already: only what an earlier, restarted attempt loaded
            # and this list lacks is left to remove (not a 100,000-entry rebuild).
            drop_unlisted(listed)
        else:
            self.sink.replace_all(items, trimmed=True)
        self.resource_version = (page.get("metadata") or {}).get("resourceVersion")
        self.last_event_monotonic = time.monotonic()
        self._connected()
        first = not self._synced.is_set()
        self._synced.set()
        self._wake_listed(everyone=True)
        log.log(
            logging.INFO if first else logging.DEBUG,
            "Reflector %s listed %d objects at resourceVersion %s",
            self.name,
            count,
            self.resource_version,
        )

    async def _list_page(self, limit: int, continue_token: str | None) -> dict[str, Any]:
        return await self.source.list_page(
            limit=limit,
            continue_token=continue_token,
            timeout=self.settings.list_timeout,
            decode=self._split_page,
        )

    def _wake_listed_some(self) -> None:
        self._wake_listed(everyone=False)

    @staticmethod
    def _split_page(raw: bytes) -> dict[str, Any]:
        """What the client hands back for a list page: its list metadata (the continue
        token) read without building the items, and the raw page for :meth:`_page_items`.
        """
        return {"metadata": decode_list_metadata(raw), "raw": raw}

    def _page_items(self, page: dict[str, Any]) -> list[Any]:
        """A page's items as the sink keeps them (see :meth:`_decode_items`)."""
        raw = page.get("raw")
        if isinstance(raw, bytes):
            return self._decode_items(raw)
        with _gc_paused():  # a source that handed back parsed items
            return [
                kept for kept in map(self.sink.trim, page.get("items") or ()) if kept is not None
            ]

    def _decode_items(self, raw: bytes) -> list[Any]:
        """Parse one list page and trim its items, with the cyclic GC paused.

        One bounded loop step per page. Why the pause: a page of 200 pods parses into
        ~30,000 containers that all live until the page is trimmed, so the collector's
        young generations would run dozens of times over them, promote them all, and
        every few pages trigger a *full* collection of the hub's whole heap (seven of
        them, up to 250 ms each, while loading 20,000 pods). Parsed JSON holds no
        reference cycles: refcounting frees it as soon as the page is dropped.
        """
        with _gc_paused():
            page: dict[str, Any] = (
                self._page_decoder(raw) if self._page_decoder is not None else orjson.loads(raw)
            )
            kept = []
            for obj in page.get("items") or ():
                trimmed = self.sink.trim(obj)
                if trimmed is not None:
                    kept.append(trimmed)
            return kept

    async def _watch(self) -> bool:
        """One watch from ``resource_version``; returns whether it delivered anything."""
        assert self.resource_version is not None
        delivered = False
        # Connected once the watch holds for a while or delivers a whole event: a server
        # that answers and cuts at once (crashing, or behind a failing proxy) is still
        # cut off, and the cache still stale.
        holding: asyncio.TimerHandle | None = None
        try:
            async with self.source.watch(
                resource_version=self.resource_version,
                timeout_seconds=self.settings.watch_timeout,
                read_timeout=self.settings.idle_timeout,
            ) as chunks:
                holding = asyncio.get_running_loop().call_later(
                    _QUICK_WATCH_END, self._connected
                )
                buffer = b""
                decode = self._decode_event
                perf_counter = time.perf_counter
                step_started = perf_counter()
                iterator = aiter(chunks)
                while True:
                    fetch = _Fetch(anext(iterator))
                    try:
                        chunk = await fetch
                    except StopAsyncIteration:
                        break
                    if fetch.suspended:
                        # The loop ran in between: this is a new step. A chunk already
                        # buffered comes back without yielding, in the same step, and must
                        # not restart its budget (a backlog of many chunks ran as one step
                        # of 6-13 ms at 10,000 spawns).
                        step_started = perf_counter()
                    first_end = chunk.find(b"\n")
                    if first_end < 0:
                        buffer += chunk
                        continue
                    # The line the last chunk began is completed on its own: joining it to
                    # the whole chunk copied a backlog's megabytes once more.
                    pieces = (
                        ((buffer + chunk[: first_end + 1], 0), (chunk, first_end + 1))
                        if buffer
                        else ((chunk, 0),)
                    )
                    for data, start in pieces:
                        # Lines are handed to the decoder as views of the chunk, not copies
                        # (a pod line is ~5 KB: splitting a burst's chunk into bytes objects
                        # cost more per line than a third of its decode).
                        view = memoryview(data)
                        while (end := data.find(b"\n", start)) >= 0:
                            if end > start and (
                                data[start] not in _BLANK or data[start:end].strip()
                            ):
                                self.apply(decode(view[start:end]))
                                if not delivered:
                                    delivered = True
                                    self._connected()
                            start = end + 1
                            if perf_counter() - step_started > _MAX_STEP_SECONDS:
                                # A backlog (after a stall, or a burst) arrives as one
                                # chunk of many events: let waiting spawners run between.
                                await asyncio.sleep(0)
                                step_started = perf_counter()
                        del view
                    buffer = chunk[start:]
                if buffer.strip():
                    self.apply(decode(buffer))
                    delivered = True
                    self._connected()
        except WatchGone:
            raise
        except Gone as e:
            raise WatchGone() from e
        except TimeoutError as e:
            if delivered:
                return True  # the stream went quiet past its deadline; resume
            raise NoResponse(
                0, "watch timed out", reason="Timeout", verb="watch", kind=self.source.resource
            ) from e
        except Exception:
            if delivered:
                # A dropped connection after progress: resume from where we are.
                log.debug(
                    "Reflector %s: watch dropped; resuming from %s",
                    self.name,
                    self.resource_version,
                )
                return True
            raise
        finally:
            if holding is not None:
                holding.cancel()
        return delivered

    def apply(self, event: dict[str, Any]) -> None:
        """Apply one decoded watch event to the sink (ERROR events raise)."""
        self.last_event_monotonic = seen = time.monotonic()
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            code = obj.get("code")
            if code == 410:
                raise WatchGone()
            raise error_for_status(
                int(code or 0),
                obj.get("message") or "watch error",
                reason=obj.get("reason", ""),
                body=obj if isinstance(obj, dict) else None,
                verb="watch",
                kind=self.source.resource,
            )
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if kind in ("ADDED", "MODIFIED"):
            self.sink.upsert(obj)
        elif kind == "DELETED":
            self.sink.remove(obj)
        # BOOKMARK carries only the resourceVersion.
        if rv:
            self.resource_version = rv
        for observer in _event_observers:
            try:
                observer(self, event, seen)
            except Exception:
                log.exception("Reflector %s: event observer failed", self.name)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause automatic cyclic collection for one synchronous stretch (no await inside)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# -- sharing -------------------------------------------------------------------------------

RegistryKey = tuple[int, str, str | None, str | None, str | None]


class _Entry:
    """A shared reflector and who holds it (only leased reflectors are ever released)."""

    __slots__ = ("api", "holders", "leased", "namespace", "reaper", "reflector")

    def __init__(self, reflector: Reflector[Any], api: KubeApi, namespace: str | None) -> None:
        self.reflector = reflector
        self.api = api
        self.namespace = namespace
        self.leased = False
        #: id(owner) -> the finalizer that releases the lease if the owner is collected.
        self.holders: dict[int, weakref.finalize[Any, Any]] = {}
        self.reaper: asyncio.TimerHandle | None = None


_registry: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[RegistryKey, _Entry]] = (
    weakref.WeakKeyDictionary()
)
#: Reflector stops started by a release, awaited by stop_reflectors (clean shutdown).
_stopping: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, set[asyncio.Task[None]]] = (
    weakref.WeakKeyDictionary()
)


def get_reflector(
    api: KubeApi,
    kind: ResourceKind,
    namespace: str | None,
    make_sink: Callable[[], SinkT],
    *,
    label_selector: str | None = None,
    field_selector: str | None = None,
    settings: ReflectorSettings = ReflectorSettings(),
    options: ReflectorOptions = ReflectorOptions(),
    owner: object | None = None,
) -> Reflector[SinkT]:
    """The running reflector for (loop, api, kind, namespace, selectors), started on first use.

    A reflector whose supervisor is no longer running (only possible if it was stopped) is
    replaced, so callers never get a dead one. With ``owner``, the reflector is leased to
    it until :func:`release_reflectors` (or until ``owner`` is garbage-collected); a
    reflector once leased is stopped ``settings.release_delay`` seconds after its last
    lease ends, and a later call starts a new one.
    """
    loop = asyncio.get_running_loop()
    per_loop = _registry.setdefault(loop, {})
    key: RegistryKey = (id(api), kind.plural, namespace, label_selector, field_selector)
    entry = per_loop.get(key)
    if entry is None or not entry.reflector.running or entry.api is not api:
        source = ApiListerWatcher(
            api, kind, namespace, label_selector=label_selector, field_selector=field_selector
        )
        reflector = Reflector(source, make_sink(), settings=settings, options=options)
        reflector.start()
        entry = per_loop[key] = _Entry(reflector, api, namespace)
    if owner is not None:
        _lease(entry, owner, key)
    # The key's sink type is fixed by the factory every caller of this key passes.
    found: Reflector[SinkT] = entry.reflector
    return found


def _lease(entry: _Entry, owner: object, key: RegistryKey) -> None:
    entry.leased = True
    if entry.reaper is not None:
        entry.reaper.cancel()
        entry.reaper = None
    ident = id(owner)
    if ident not in entry.holders:
        loop = asyncio.get_running_loop()
        entry.holders[ident] = weakref.finalize(owner, _collected, loop, key, ident)


def _collected(loop: asyncio.AbstractEventLoop, key: RegistryKey, ident: int) -> None:
    """An owner was garbage-collected without releasing: release for it, on its loop."""
    if loop.is_closed():
        return
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(_release_key, loop, key, ident)


def _release_key(loop: asyncio.AbstractEventLoop, key: RegistryKey, ident: int) -> None:
    entry = _registry.get(loop, {}).get(key)
    if entry is None:
        return
    finalizer = entry.holders.pop(ident, None)
    if finalizer is not None:
        finalizer.detach()
    if entry.holders or not entry.leased or entry.reaper is not None:
        return
    delay = entry.reflector.settings.release_delay
    if delay <= 0:
        _reap(loop, key, entry)
    else:
        entry.reaper = loop.call_later(delay, _reap, loop, key, entry)


def _reap(loop: asyncio.AbstractEventLoop, key: RegistryKey, entry: _Entry) -> None:
    entry.reaper = None
    per_loop = _registry.get(loop, {})
    if per_loop.get(key) is not entry or entry.holders:
        return
    del per_loop[key]
    if entry.namespace is not None:
        # Nothing of this namespace is active: check it exists again before the next start.
        entry.api.known_namespaces.discard(entry.namespace)
    log.info("Reflector %s: no active server left; stopped", entry.reflector.name)
    task = loop.create_task(entry.reflector.stop(), name=f"stop reflector {entry.reflector.name}")
    pending = _stopping.setdefault(loop, set())
    pending.add(task)
    task.add_done_callback(pending.discard)


def release_reflectors(owner: object) -> None:
    """End ``owner``'s leases on this loop's reflectors (a server stopped or is gone).

    Idempotent. A reflector whose last lease ends is stopped after its ``release_delay``.
    """
    loop = asyncio.get_running_loop()
    ident = id(owner)
    for key, entry in list(_registry.get(loop, {}).items()):
        if ident in entry.holders:
            _release_key(loop, key, ident)


async def wait_released() -> None:
    """Return once the reflectors stopped by releases so far have finished stopping."""
    pending = list(_stopping.get(asyncio.get_running_loop(), ()))
    if pending:
        await asyncio.gather(*pending)


def reflectors() -> list[Reflector[Any]]:
    """Every reflector of the running loop (for health pages and tests)."""
    return [e.reflector for e in _registry.get(asyncio.get_running_loop(), {}).values()]


async def stop_reflectors() -> None:
    """Stop every reflector of the running loop (hub shutdown, test teardown)."""
    loop = asyncio.get_running_loop()
    per_loop = _registry.pop(loop, {})
    for entry in per_loop.values():
        if entry.reaper is not None:
            entry.reaper.cancel()
        for finalizer in entry.holders.values():
            finalizer.detach()
    pending = list(_stopping.pop(loop, set()))
    await asyncio.gather(*(e.reflector.stop() for e in per_loop.values()), *pending)
