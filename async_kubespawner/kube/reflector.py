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
   length and catches up when the server returns.

Upstream's reflector re-listed every few seconds even when idle, gave up after a few
failures (and was then reused dead, so ``poll()`` answered from a frozen cache), and
could be handed out before its first list (so ``poll()`` said running pods had stopped).
Here, :func:`get_reflector` hands out a reflector whose supervisor is running, and readers
call :meth:`Reflector.wait_synced` before trusting an absence.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from ..metrics import CACHE_SIZE, REFLECTOR_RESTARTS, REFLECTOR_WATCH_AGE
from .client import ApiError, KubeApi, ResourceKind

log = logging.getLogger("async_kubespawner.kube")

#: Longest stretch of watch events applied without yielding to the event loop. A burst
#: (1,000 pods deleted at once) wakes a waiter per event; short steps keep each loop
#: iteration, and so each woken stop()/progress listener, short (5 ms -> 2 ms cut the
#: hub-side stop p50 by ~30 % and progress p50 by ~65 % in a 1,000-spawn storm, same
#: CPU; see docs/performance.md).
_MAX_STEP_SECONDS = 0.002
#: A watch that ends sooner than this without any data counts as a failure (backoff);
#: a quiet watch that ran longer simply expired and is renewed at once.
_QUICK_WATCH_END = 1.0


class Sink(Protocol):
    """What a reflector feeds: :class:`~.cache.ObjectCache` or :class:`~.cache.EventIndex`."""

    def trim(self, obj: dict[str, Any]) -> Any: ...  # what replace_all(trimmed=True) takes
    def upsert(self, obj: dict[str, Any]) -> None: ...
    def remove(self, obj: dict[str, Any]) -> None: ...
    def replace_all(self, objects: list[Any], *, trimmed: bool = False) -> None: ...
    def __len__(self) -> int: ...


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


class Reflector:
    """Keeps ``sink`` equal to the server's view of one kind, namespace and selector."""

    def __init__(
        self,
        api: KubeApi,
        kind: ResourceKind,
        namespace: str | None,
        sink: Sink,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        settings: ReflectorSettings = ReflectorSettings(),
    ) -> None:
        self.api = api
        self.kind = kind
        self.namespace = namespace
        self.sink = sink
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.settings = settings
        self.name = f"{kind.plural}@{namespace or '*'}"
        if label_selector:
            self.name += f"[{label_selector}]"
        self.resource_version: str | None = None
        self.restarts = 0
        self.errors = 0
        self.last_error: str | None = None
        self.last_event_monotonic: float | None = None
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        # Seams for tests of the supervisor's pacing.
        self._sleep = asyncio.sleep
        self._clock = time.monotonic

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._supervise(), name=f"reflector {self.name}"
            )
            REFLECTOR_WATCH_AGE.labels(self.name).set_function(self._age_or_zero)
            CACHE_SIZE.labels(self.name).set_function(lambda: len(self.sink))

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for metric in (REFLECTOR_WATCH_AGE, CACHE_SIZE):
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
        )

    # -- the supervisor ----------------------------------------------------------------

    async def _supervise(self) -> None:
        failures = 0
        # Whether the last pause ended early because the server answered someone else: if
        # the attempt after it fails too, the next pause is a plain one (see _pause).
        woke_early = False
        while not self._stopping:
            opened: float | None = None
            unavailable = False
            try:
                if self.resource_version is None:
                    await self._list()
                    failures = 0
                opened = self._clock()
                delivered = await self._watch()
                if delivered or self._clock() - opened >= _QUICK_WATCH_END:
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
                if opened is not None and self._clock() - opened >= _QUICK_WATCH_END:
                    # A long-held quiet watch cut by the network (a load balancer's idle
                    # timeout): not an outage, renew at once from where we are.
                    log.debug("Reflector %s: watch cut after a while (%s); renewing", self.name, e)
                    failures = 0
                    continue
                failures += 1
                self.errors += 1
                self.restarts += 1
                self.last_error = f"{type(e).__name__}: {e}"
                unavailable = isinstance(e, ApiError) and (e.status == 0 or e.status >= 500)
                REFLECTOR_RESTARTS.labels(self.name).inc()
                log_at = logging.WARNING if failures <= 3 or failures % 20 == 0 else logging.DEBUG
                log.log(
                    log_at,
                    "Reflector %s failed (%d in a row): %s",
                    self.name,
                    failures,
                    self.last_error,
                )
            delay = random.uniform(
                0,
                min(
                    self.settings.backoff_max,
                    self.settings.backoff_initial * 2 ** min(failures, 20),
                ),
            )
            woke_early = await self._pause(delay, wake_on_answer=unavailable and not woke_early)

    async def _pause(self, delay: float, *, wake_on_answer: bool) -> bool:
        """Back off for ``delay``; True if it ended early because the server answered.

        After an outage (connection errors, 5xx) the backoff can have grown to tens of
        seconds while the API server is back and the spawns' own requests already succeed:
        the first such answer ends the pause, so the hub catches up at once. Only one
        pause in a row may end early, so a failure of this reflector alone (a broken
        watch endpoint while other requests work) still backs off.
        """
        if not wake_on_answer:
            await self._sleep(delay)
            return False
        answered = self.api.server_answered()
        sleeping = asyncio.ensure_future(self._sleep(delay))
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
        while True:
            try:
                page = await self.api.list_page(
                    self.kind,
                    self.namespace,
                    label_selector=self.label_selector,
                    field_selector=self.field_selector,
                    limit=self.settings.list_page_size,
                    continue_token=continue_token,
                    timeout=self.settings.list_timeout,
                    decode=self._decode_page,
                )
            except ApiError as e:
                if e.status == 410 and continue_token:
                    # The continue token expired between pages: start the list again.
                    items, continue_token = [], None
                    continue
                raise
            items.extend(page.get("items") or ())
            meta = page.get("metadata") or {}
            continue_token = meta.get("continue") or None
            if not continue_token:
                break
        self.sink.replace_all(items, trimmed=True)
        self.resource_version = (page.get("metadata") or {}).get("resourceVersion")
        self.last_event_monotonic = time.monotonic()
        first = not self._synced.is_set()
        self._synced.set()
        log.log(
            logging.INFO if first else logging.DEBUG,
            "Reflector %s listed %d objects at resourceVersion %s",
            self.name,
            len(items),
            self.resource_version,
        )

    def _decode_page(self, raw: bytes) -> dict[str, Any]:
        """Parse one list page and trim its items, with the cyclic GC paused.

        One bounded loop step per page. Why the pause: a page of 200 pods parses into
        ~30,000 containers that all live until the page is trimmed, so the collector's
        young generations would run dozens of times over them, promote them all, and
        every few pages trigger a *full* collection of the hub's whole heap (seven of
        them, up to 250 ms each, while loading 20,000 pods). Parsed JSON holds no
        reference cycles: refcounting frees it as soon as the page is dropped.
        """
        with _gc_paused():
            page = orjson.loads(raw)
            kept = []
            for obj in page.get("items") or ():
                trimmed = self.sink.trim(obj)
                if trimmed is not None:
                    kept.append(trimmed)
            page["items"] = kept
            return page

    async def _watch(self) -> bool:
        """One watch from ``resource_version``; returns whether it delivered anything."""
        assert self.resource_version is not None
        delivered = False
        try:
            async with self.api.watch_stream(
                self.kind,
                self.namespace,
                resource_version=self.resource_version,
                timeout_seconds=self.settings.watch_timeout,
                label_selector=self.label_selector,
                field_selector=self.field_selector,
                read_timeout=self.settings.idle_timeout,
            ) as resp:
                buffer = b""
                async for chunk in resp.content.iter_any():
                    buffer += chunk
                    if b"\n" not in chunk:
                        continue
                    *lines, buffer = buffer.split(b"\n")
                    step_started = time.perf_counter()
                    for line in lines:
                        if line.strip():
                            self._apply(orjson.loads(line))
                            delivered = True
                        if time.perf_counter() - step_started > _MAX_STEP_SECONDS:
                            # A backlog (after a stall, or a burst) arrives as one chunk
                            # of many events: let waiting spawners run in between.
                            await asyncio.sleep(0)
                            step_started = time.perf_counter()
                if buffer.strip():
                    self._apply(orjson.loads(buffer))
                    delivered = True
        except WatchGone:
            raise
        except ApiError as e:
            if e.status == 410:
                raise WatchGone() from e
            raise
        except TimeoutError as e:
            if delivered:
                return True  # the stream went quiet past its deadline; resume
            raise ApiError(
                0, "watch timed out", reason="Timeout", verb="watch", kind=self.kind.plural
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
        return delivered

    def _apply(self, event: dict[str, Any]) -> None:
        self.last_event_monotonic = time.monotonic()
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            code = obj.get("code")
            if code == 410:
                raise WatchGone()
            raise ApiError(
                int(code or 0),
                obj.get("message") or "watch error",
                reason=obj.get("reason", ""),
                verb="watch",
                kind=self.kind.plural,
            )
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if kind in ("ADDED", "MODIFIED"):
            self.sink.upsert(obj)
        elif kind == "DELETED":
            self.sink.remove(obj)
        # BOOKMARK carries only the resourceVersion.
        if rv:
            self.resource_version = rv


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
_registry: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[RegistryKey, Reflector]] = (
    weakref.WeakKeyDictionary()
)


def get_reflector(
    api: KubeApi,
    kind: ResourceKind,
    namespace: str | None,
    make_sink: Callable[[], Sink],
    *,
    label_selector: str | None = None,
    field_selector: str | None = None,
    settings: ReflectorSettings = ReflectorSettings(),
) -> Reflector:
    """The running reflector for (loop, api, kind, namespace, selectors), started on first use.

    A reflector whose supervisor is no longer running (only possible if it was stopped) is
    replaced, so callers never get a dead one.
    """
    loop = asyncio.get_running_loop()
    per_loop = _registry.setdefault(loop, {})
    key: RegistryKey = (id(api), kind.plural, namespace, label_selector, field_selector)
    reflector = per_loop.get(key)
    if reflector is None or not reflector.running or reflector.api is not api:
        reflector = Reflector(
            api,
            kind,
            namespace,
            make_sink(),
            label_selector=label_selector,
            field_selector=field_selector,
            settings=settings,
        )
        reflector.start()
        per_loop[key] = reflector
    return reflector


def reflectors() -> list[Reflector]:
    """Every reflector of the running loop (for health pages and tests)."""
    return list(_registry.get(asyncio.get_running_loop(), {}).values())


async def stop_reflectors() -> None:
    """Stop every reflector of the running loop (hub shutdown, test teardown)."""
    per_loop = _registry.pop(asyncio.get_running_loop(), {})
    await asyncio.gather(*(r.stop() for r in per_loop.values()))
