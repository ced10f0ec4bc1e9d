"""One Kubernetes API client per event loop, and the single place where requests are retried.

Why one client: every ``kubernetes_asyncio.ApiClient`` owns an aiohttp session with its own
connection pool. A hub with thousands of spawners must not open thousands of pools, and the
session is bound to the event loop that created it, so the client is shared per loop.

Why one retry policy: API servers shed load with 429 (and say when to come back with
``Retry-After``), restart behind load balancers (5xx, refused connections) and stall. Every
call that the spawner makes goes through :meth:`KubeApi.request`, which retries those
failures with jittered, capped backoff inside one budget (``k8s_api_request_retry_timeout``),
applies a per-attempt timeout (``k8s_api_request_timeout``) and records latency and errors.

Why raw responses: the spawner reads a handful of fields of what it creates; deserialising
full ``V1Pod`` models for every response costs CPU on the hub's event loop for nothing. All
calls use ``_preload_content=False`` and parse JSON into plain dicts.

Why no thread-pool work per request: ``kubernetes_asyncio`` builds its aiohttp session with
``trust_env=True``, which makes aiohttp look up ``~/.netrc`` and the proxy environment
variables in the default executor on *every* request (two thread hops each, measured:
604 + 604 for 604 requests). :func:`build_api` swaps in a ``trust_env=False`` session on the
same connector and resolves the proxy once (see :mod:`.transport`, the one module that
touches the library's internals). ``.netrc`` is not consulted (Kubernetes credentials come
from the kubeconfig or the service account, never from netrc).

Why a bound on requests in flight: with a fixed connection pool, a request waiting for a
free connection used to spend its per-attempt timeout in the queue, so a storm of creates
timed out while merely queued, was retried and met its own 409s. Each client admits at most
``max_concurrent_requests`` request/response calls at a time (watches, which hold a
connection for minutes, are not counted; the connector itself is unbounded so they never
starve requests); a call waits for a slot *before* its per-attempt timeout starts, and the
retry budget (``k8s_api_request_retry_timeout``) starts with the first attempt actually sent.
Queueing therefore never turns into timeouts, retries or 409s; a request the server keeps
failing still ends when its budget is spent. Every call may name a :class:`Priority`
(default ``NORMAL``): waiting calls are admitted most urgent first, and
:meth:`KubeApi.configure_admission` can cap the slots one priority may hold (the operator
keeps its bulk creates and Events from queueing ahead of a Ready status write; see
:mod:`.admission`). With the defaults, admission is a plain FIFO semaphore.

Why typed errors: every failure is raised as a class of :mod:`.errors` (``NotFound``,
``Conflict``, ``NamespaceNotFound``...) naming the kind, namespace and name it was about.
Only "no answer", 429 and 5xx are retried; any other 4xx is an answer about the request
itself (a 413 body too large, a 422 invalid object, a 403 refused by RBAC) and is raised
at once. A refused create is logged once, with the object and the server's reason.

Creates are not idempotent, so a timed-out POST may still have succeeded on the server.
:meth:`KubeApi.create` stamps each object with a random create id and, when a retry meets
``409 AlreadyExists``, reads the object back: if it carries our id, the earlier attempt
won and the object is returned as created; otherwise the 409 is the caller's to handle.
"""


from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import itertools
import logging
import os
import random
import ssl
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config

from ..metrics import API_REQUEST_DURATION, API_REQUEST_ERRORS
from .admission import Admission, Priority
from .deadline import Deadline
from .errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    Invalid,
    NamespaceNotFound,
    NoResponse,
    NotFound,
    RequestTooLarge,
    error_for_exception,
    error_for_response,
)
from .stalls import StallTolerantTimeout
from .transport import Transport, build_client, proxy_for, tls_context

__all__ = [
    "CREATE_ID_ANNOTATION",
    "EVENTS",
    "NAMESPACES",
    "PODS",
    "PVCS",
    "SECRETS",
    "SERVICES",
    "ApiError",
    "ApiSettings",
    "ClientOptions",
    "KubeApi",
    "Priority",
    "ResourceKind",
    "adopt_api",
    "build_api",
    "close_shared_apis",
    "load_configuration",
    "new_create_id",
    "proxy_for",
    "shared_api",
    "tls_context",
    "to_json",
]

log = logging.getLogger("async_kubespawner.kube")

#: Annotation put on every object this package creates, so that a retried create can tell
#: its own earlier (timed-out but successful) attempt from somebody else's object.
CREATE_ID_ANNOTATION = "hub.jupyter.org/async-kubespawner-create-id"

_create_ids = itertools.count()


def new_create_id() -> str:
    """Unique per create across hub processes and restarts: time, process, counter and
    random bits. (uuid4 reads the OS entropy pool on every call, which measurably costs
    CPU in a storm of thousands of creates.)"""
    return f"{time.time_ns():x}-{os.getpid():x}-{next(_create_ids):x}-{random.getrandbits(32):08x}"


_BACKOFF_BASE = 0.1
_BACKOFF_CAP = 5.0


def full_jitter_backoff(attempt: int) -> float:
    """Full-jitter exponential backoff: spreads a thundering herd of retries over time."""
    return random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2**attempt))


@dataclass(frozen=True)
class ClientOptions:
    """How the client paces itself; passed in (tests give a fake clock), never patched.

    ``clock`` and ``sleep`` drive the retry budget and the pauses between attempts;
    ``backoff(attempt)`` is the pause before attempt ``attempt + 1`` when the server gave
    no ``Retry-After``. ``probe_interval`` / ``probe_timeout`` pace the cheap
    ``GET /version`` sent while someone waits for the server to come back
    (:meth:`KubeApi.server_answered`).
    """

    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    backoff: Callable[[int], float] = full_jitter_backoff
    probe_interval: float = 1.0
    probe_timeout: float = 1.0


@dataclass(frozen=True)
class ResourceKind:
    """Where a kind lives in the REST API (core group only: all this spawner touches)."""

    plural: str
    kind: str
    namespaced: bool = True
    prefix: str = "/api/v1"

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        if self.namespaced and namespace:
            base = f"{self.prefix}/namespaces/{namespace}/{self.plural}"
        else:
            base = f"{self.prefix}/{self.plural}"
        return f"{base}/{name}" if name else base


PODS = ResourceKind("pods", "Pod")
EVENTS = ResourceKind("events", "Event")
PVCS = ResourceKind("persistentvolumeclaims", "PersistentVolumeClaim")
SERVICES = ResourceKind("services", "Service")
SECRETS = ResourceKind("secrets", "Secret")
NAMESPACES = ResourceKind("namespaces", "Namespace", namespaced=False)


@dataclass(frozen=True)
class ApiSettings:
    """How to reach the API server; equal settings share one client on a loop."""

    host: str = ""
    ssl_ca_cert: str = ""
    verify_ssl: bool | None = None
    request_timeout: float = 3.0
    retry_timeout: float = 30.0
    max_concurrent_requests: int = 100
    kubeconfig: str = field(default="", compare=True)


_MODEL_FIELDS: dict[type, tuple[tuple[str, str], ...]] = {}


def to_json(value: Any) -> Any:
    """A kubernetes_asyncio model (or dicts/lists of them) as plain JSON data.

    One pass, with each model class's (attribute, JSON key) pairs computed once; the
    client's ``sanitize_for_serialization`` walks every object twice.
    """
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    cls = type(value)
    fields = _MODEL_FIELDS.get(cls)
    if fields is None:
        attribute_map = getattr(cls, "attribute_map", None)
        if attribute_map is None:
            raise TypeError(f"cannot send a {cls.__name__} to the Kubernetes API")
        fields = tuple((attr, attribute_map[attr]) for attr in cls.openapi_types)
        _MODEL_FIELDS[cls] = fields
    out = {}
    for attr, key in fields:
        item = getattr(value, attr)
        if item is not None:
            out[key] = to_json(item)
    return out


def encode_body(body: Any) -> bytes | None:
    """A request body as the bytes sent: a model or JSON data encoded, bytes as given.

    A request encodes its body once, before it queues for a request slot: the bytes
    are not tracked by the garbage collector, while a manifest's tree of dicts (or
    models) held by a thousand queued creates would be walked by every collection.
    """
    if body is None or isinstance(body, bytes):
        return body
    if isinstance(body, dict):
        # Plain JSON data (a checked manifest) encodes as is, without the copy that
        # to_json makes; a model anywhere inside makes orjson refuse it (a TypeError),
        # and the converting walk then gives the same bytes.
        try:
            return orjson.dumps(body)
        except TypeError:
            pass
    return orjson.dumps(to_json(body))


@dataclass(frozen=True)
class EncodedCreate:
    """A create's body encoded once, create id annotation included (:func:`encode_create`).

    A caller that may send the same create twice (after a conflict it resolved) keeps
    this instead of the manifest: bytes, which the garbage collector does not track,
    where a thousand queued pod manifests would be a hundred thousand dicts to walk.
    """

    data: bytes
    name: str | None
    label: str | None
    create_id: str


def encode_create(body: Any, create_id: str | None = None) -> EncodedCreate:
    """``body`` (a model or JSON data) with the create id annotation, encoded."""
    # A dict is copied only where the create id goes (encode_body converts any model
    # left inside it); a model is converted whole.
    manifest = dict(body) if isinstance(body, dict) else to_json(body)
    metadata = copy.copy(manifest.get("metadata") or {})
    annotations = dict(metadata.get("annotations") or {})
    create_id = create_id or new_create_id()
    annotations[CREATE_ID_ANNOTATION] = create_id
    metadata["annotations"] = annotations
    manifest["metadata"] = metadata
    name = metadata.get("name")
    data = encode_body(manifest)
    assert data is not None  # a manifest, never None
    return EncodedCreate(data, name, name or metadata.get("generateName"), create_id)


def _ignore_body(_raw: bytes) -> dict[str, Any]:
    """A success whose body the caller does not read: not decoded at all."""
    return {}


class _Target:
    """What one request is about, for metrics, errors and log lines.

    A plain slotted class (a frozen dataclass's ``__init__`` costs several times more, once
    per request) carrying its latency histogram's child, looked up once per (verb, kind)
    for the process (see :func:`_duration_of`)."""

    __slots__ = ("duration", "kind", "name", "namespace", "verb")

    def __init__(
        self, verb: str, kind: str, namespace: str | None = None, name: str | None = None
    ) -> None:
        self.verb = verb
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.duration = _duration_of(verb, kind)

    def __repr__(self) -> str:
        return f"_Target({self.verb!r}, {self.kind!r}, {self.namespace!r}, {self.name!r})"


#: ``API_REQUEST_DURATION`` children by (verb, kind): ``labels()`` takes a lock, builds a
#: tuple and validates the values on every call, for a child that never changes (the
#: client never removes label sets of this metric; verbs and kinds are a fixed few).
_DURATIONS: dict[tuple[str, str], Any] = {}


def _duration_of(verb: str, kind: str) -> Any:
    child = _DURATIONS.get((verb, kind))
    if child is None:
        child = _DURATIONS[(verb, kind)] = API_REQUEST_DURATION.labels(verb, kind)
    return child


#: Refusals of a create worth one log line for the operator: the object is wrong or not
#: allowed, and retrying cannot help.
_REFUSALS = (BadRequest, Forbidden, Invalid, RequestTooLarge)
#: Longest server message quoted in that log line.
_REFUSAL_MESSAGE_LIMIT = 500


def _log_refused_create(rk: ResourceKind, namespace: str | None, name: str, e: ApiError) -> None:
    """One structured line per refused create: which object, the code and the server's
    reason and message (capped), the fields it named. Never the request body: a manifest
    may carry a token or a user's secret."""
    fields = ",".join(c.field for c in e.details.causes if c.field)
    message = e.message if len(e.message) <= _REFUSAL_MESSAGE_LIMIT else (
        e.message[:_REFUSAL_MESSAGE_LIMIT] + "..."
    )
    log.warning(
        "kubernetes create refused kind=%s object=%s/%s status=%d reason=%s fields=%s message=%r",
        rk.kind,
        namespace or "",
        name,
        e.status,
        e.reason or "-",
        fields or "-",
        message,
    )


class KubeApi:
    """The API operations the spawner needs, on top of one shared ``ApiClient``."""

    def __init__(
        self,
        api_client: k8s_client.ApiClient,
        *,
        request_timeout: float,
        retry_timeout: float,
        max_concurrent_requests: int = 100,
        proxy: str | None = None,
        options: ClientOptions | None = None,
        transport: Transport | None = None,
    ) -> None:
        if max_concurrent_requests < 1:
            raise ValueError(
                f"max_concurrent_requests must be >= 1, got {max_concurrent_requests}; "
                "set c.KubeSpawner.k8s_api_max_concurrent_requests to a positive number"
            )
        self.api_client = api_client
        self.transport = transport if transport is not None else Transport(api_client, proxy=proxy)
        self.request_timeout = request_timeout
        self.retry_timeout = retry_timeout
        self.max_concurrent_requests = max_concurrent_requests
        self.options = options if options is not None else ClientOptions()
        #: Namespaces known to exist (created or found once); forgotten when a request is
        #: answered "namespace not found", so a deleted namespace is created again.
        self.known_namespaces: set[str] = set()
        self.admission = Admission(max_concurrent_requests)
        self._closed = False
        self._answer_waiters: list[asyncio.Future[None]] = []
        self._probe_task: asyncio.Task[None] | None = None

    @property
    def proxy(self) -> str | None:
        return self.transport.proxy

    # -- is the server up? -----------------------------------------------------------

    def server_answered(self) -> asyncio.Future[None]:
        """A future resolved by the next response showing that the API server is up again.

        Why: a reflector backing off after an outage would otherwise learn that the
        server is back only when its jittered sleep ends (up to ``reflector_backoff_max``).
        Any response below 500 (but 429) counts: the server is answering. While anyone
        waits, one cheap probe (``GET /version``) is sent about once a second
        (``ClientOptions.probe_interval``), shared by all waiters, so the answer comes
        within a second of the server's return even when the hub sends nothing else.
        Cancel the future when done with it.
        """
        self._answer_waiters = [f for f in self._answer_waiters if not f.done()]
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._answer_waiters.append(future)
        if self.options.probe_interval > 0 and (
            self._probe_task is None or self._probe_task.done()
        ):
            self._probe_task = asyncio.get_running_loop().create_task(
                self._probe_while_waited_for(), name="kubespawner-api-probe"
            )
        return future

    def _someone_waits(self) -> bool:
        self._answer_waiters = [f for f in self._answer_waiters if not f.done()]
        return bool(self._answer_waiters)

    async def _probe_while_waited_for(self) -> None:
        while not self._closed and self._someone_waits():
            # Real time on purpose: a test's fake clock (options.sleep) would make this a
            # hot loop of requests.
            await asyncio.sleep(self.options.probe_interval)
            if self._closed or not self._someone_waits():
                return
            with contextlib.suppress(ApiError):
                await self.probe()

    async def probe(self) -> bool:
        """One cheap ``GET /version`` outside the request slots and retries: True when the
        server answered (whatever it said, but 5xx/429)."""
        target = _Target("probe", "version")
        try:
            await self._send(
                target,
                "GET",
                "/version",
                query=None,
                body=None,
                content_type="application/json",
                timeout=self.options.probe_timeout,
                decode=None,
                started=time.monotonic(),
            )
        except ApiError as e:
            return not e.unavailable and e.status != 429
        return True

    def _note_answer(self, status: int) -> None:
        if self._answer_waiters and status < 500 and status != 429:
            waiters, self._answer_waiters = self._answer_waiters, []
            for future in waiters:
                if not future.done():
                    future.set_result(None)

    # -- one round trip ---------------------------------------------------------------

    async def _round_trip(
        self,
        target: _Target,
        method: str,
        path: str,
        *,
        query: list[tuple[str, Any]] | None,
        body: Any,
        content_type: str,
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 (passed to aiohttp)
        limit: float | None,
        started: float,
    ) -> aiohttp.ClientResponse:
        """Send one request; a transport failure becomes :class:`~.errors.NoResponse`.

        The one exception mapping for requests and watches alike; the body is encoded
        once, here. ``timeout`` is aiohttp's own (connect only: the time an answer may
        take is bounded by the caller's :class:`~.stalls.StallTolerantTimeout`);
        ``limit`` is that bound, for the error message.
        """
        data = encode_body(body)
        try:
            return await self.transport.request(
                method, path, query=query, data=data, content_type=content_type, timeout=timeout
            )
        except (TimeoutError, aiohttp.ClientError) as e:
            raise self._no_response(target, e, limit) from e
        finally:
            target.duration.observe(time.monotonic() - started)

    def _no_response(
        self, target: _Target, e: BaseException, timeout: float | None
    ) -> ApiError:
        error = error_for_exception(
            e,
            verb=target.verb,
            kind=target.kind,
            namespace=target.namespace,
            name=target.name,
            timeout=timeout,
        )
        assert error is not None  # only called with what it maps
        API_REQUEST_ERRORS.labels(
            target.verb, target.kind, "timeout" if error.reason == "Timeout" else "connection"
        ).inc()
        return error

    def _refusal(self, target: _Target, status: int, raw: bytes, headers: Any) -> ApiError:
        API_REQUEST_ERRORS.labels(target.verb, target.kind, str(status)).inc()
        error = error_for_response(
            status,
            raw,
            headers,
            verb=target.verb,
            kind=target.kind,
            namespace=target.namespace,
            name=target.name,
        )
        if isinstance(error, NamespaceNotFound) and error.namespace:
            self.known_namespaces.discard(error.namespace)
        return error

    async def _send(
        self,
        target: _Target,
        method: str,
        path: str,
        *,
        query: list[tuple[str, Any]] | None,
        body: Any,
        content_type: str,
        timeout: float,  # noqa: ASYNC109 (passed to aiohttp)
        decode: Callable[[bytes], dict[str, Any]] | None,
        started: float,
    ) -> dict[str, Any]:
        # The per-attempt timeout is ours, not aiohttp's: aiohttp's fires in the same
        # loop iteration as the read of an answer that arrived while the hub's loop was
        # stalled, and discards it. Ours does not charge stalls to the server.
        try:
            with StallTolerantTimeout(timeout):
                resp = await self._round_trip(
                    target,
                    method,
                    path,
                    query=query,
                    body=body,
                    content_type=content_type,
                    timeout=_NO_CLIENT_TIMEOUT,
                    limit=timeout,
                    started=started,
                )
                try:
                    raw = await resp.read()
                except aiohttp.ClientError as e:
                    raise self._no_response(target, e, timeout) from e
                finally:
                    resp.release()
        except TimeoutError as e:
            raise self._no_response(target, e, timeout) from e
        status = resp.status
        self._note_answer(status)
        if 200 <= status < 300:
            if not raw:
                return {}
            parsed: dict[str, Any] = orjson.loads(raw) if decode is None else decode(raw)
            return parsed
        raise self._refusal(target, status, raw, resp.headers)

    def configure_admission(
        self, limit: int | None = None, caps: dict[Priority, int] | None = None,
        reserve: int = 0,
    ) -> None:
        """Replace the admission policy: ``limit`` requests in flight (default: as built),
        at most ``caps[p]`` of priority ``p``, ``reserve`` of them for CRITICAL only. Only while nothing is in flight (at
        start-up), so no slot is ever counted against the wrong policy."""
        if self.admission.in_flight or self.admission.waiting():
            raise RuntimeError("the admission policy can change only while no request runs")
        limit = self.max_concurrent_requests if limit is None else limit
        self.admission = Admission(limit, caps, reserve)
        self.max_concurrent_requests = limit

    async def _attempt(
        self,
        target: _Target,
        method: str,
        path: str,
        *,
        query: list[tuple[str, Any]] | None,
        body: Any,
        content_type: str,
        timeout: float | None,  # noqa: ASYNC109 (passed to aiohttp)
        decode: Callable[[bytes], dict[str, Any]] | None = None,
        budget: _RetryBudget | None = None,
        priority: Priority = Priority.NORMAL,
    ) -> dict[str, Any]:
        # The slot is taken before the clock starts: waiting for one is not the server's
        # slowness and must not use up the per-attempt timeout.
        admission = self.admission
        if not admission.try_acquire(priority):  # no coroutine when a slot is free
            await admission.acquire(priority)
        try:
            started = time.monotonic()
            if budget is not None:
                timeout = budget.attempt_timeout()
            return await self._send(
                target,
                method,
                path,
                query=query,
                body=body,
                content_type=content_type,
                timeout=self.request_timeout if timeout is None else timeout,
                decode=decode,
                started=started,
            )
        finally:
            admission.release(priority)

    # -- the retry policy ---------------------------------------------------------------

    async def request(
        self,
        verb: str,
        kind: str,
        method: str,
        path: str,
        *,
        query: list[tuple[str, Any]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        retry_timeout: float | None = None,
        on_retry_error: Callable[[ApiError], Awaitable[dict[str, Any] | None]] | None = None,
        namespace: str | None = None,
        name: str | None = None,
        decode: Callable[[bytes], dict[str, Any]] | None = None,
        priority: Priority = Priority.NORMAL,
    ) -> dict[str, Any]:
        """One logical API call: retried on 429/5xx/no response until the budget is spent.

        Any other 4xx is raised at once: it is the server's answer about this request
        (413 too large, 422 invalid, 403 forbidden...), and the same request would get
        the same answer. ``on_retry_error(error)`` lets a caller inspect a non-retriable
        error met *after* an ambiguous attempt (used by :meth:`create` to reconcile a 409)
        and return a result instead of raising. ``namespace``/``name`` only label errors.
        ``decode`` replaces ``orjson.loads`` for a successful response. The body is
        encoded once, here, for every attempt. ``priority`` orders the call's attempts
        among those waiting for a slot.
        """
        target = _Target(verb, kind, namespace, name)
        body = encode_body(body)
        budget = _RetryBudget(
            self.retry_timeout if retry_timeout is None else retry_timeout,
            self.request_timeout,
            self.options.clock,
        )
        attempt = 0
        ambiguous = False
        while True:
            try:
                return await self._attempt(
                    target,
                    method,
                    path,
                    query=query,
                    body=body,
                    content_type=content_type,
                    timeout=None,
                    decode=decode,
                    budget=budget,
                    priority=priority,
                )
            except ApiError as e:
                if not e.retriable:
                    if ambiguous and on_retry_error is not None:
                        result = await on_retry_error(e)
                        if result is not None:
                            return result
                    raise
                if isinstance(e, NoResponse) and method in ("POST", "PATCH", "DELETE"):
                    # The server may have applied it; later attempts must reconcile.
                    ambiguous = True
                delay = e.retry_after if e.retry_after is not None else self.options.backoff(
                    attempt
                )
                if not budget.allows(delay):
                    raise
                log.info("Kubernetes API %s failed (%s); retrying in %.2fs", verb, e, delay)
                attempt += 1
                await self.options.sleep(delay)

    # -- operations -----------------------------------------------------------------------

    async def get(
        self,
        rk: ResourceKind,
        namespace: str | None,
        name: str,
        *,
        retry_timeout: float | None = None,
        priority: Priority = Priority.NORMAL,
    ) -> dict[str, Any]:
        return await self.request(
            "get",
            rk.plural,
            "GET",
            rk.path(namespace, name),
            retry_timeout=retry_timeout,
            namespace=namespace,
            name=name,
            priority=priority,
        )

    async def get_or_none(
        self,
        rk: ResourceKind,
        namespace: str | None,
        name: str,
        *,
        retry_timeout: float | None = None,
        priority: Priority = Priority.NORMAL,
    ) -> dict[str, Any] | None:
        try:
            return await self.get(rk, namespace, name, retry_timeout=retry_timeout,
                                  priority=priority)
        except NotFound:
            return None

    async def create(
        self,
        rk: ResourceKind,
        namespace: str | None,
        body: Any,
        *,
        create_id: str | None = None,
        priority: Priority = Priority.NORMAL,
        decode: Callable[[bytes], dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Create an object, reconciling a create that timed out but reached the server.

        Raises :class:`~.errors.Conflict` only when the existing object is not one this
        call made, :class:`~.errors.NamespaceNotFound` when the namespace is missing. A
        refused create (400, 403, 413, 422) is logged once with the object and the reason.
        ``body`` may be an :class:`EncodedCreate` (its own create id then applies).
        ``decode`` replaces ``orjson.loads`` for the response (a caller that reads only a
        few keys of the created object); a create reconciled after an ambiguous attempt
        returns the object read back whole.
        """
        encoded = body if isinstance(body, EncodedCreate) else encode_create(body, create_id)
        del body  # only the bytes travel on: the tree is freed before the slot wait
        data, name, label, create_id = (
            encoded.data, encoded.name, encoded.label, encoded.create_id
        )

        async def reconcile(error: ApiError) -> dict[str, Any] | None:
            if not isinstance(error, Conflict) or not name:
                return None
            existing = await self.get_or_none(rk, namespace, name, priority=priority)
            if existing is not None and (
                existing.get("metadata", {}).get("annotations", {}).get(CREATE_ID_ANNOTATION)
                == create_id
            ):
                log.info(
                    "Create of %s %s/%s had succeeded before its retry", rk.kind, namespace, name
                )
                return existing
            return None

        try:
            created = await self.request(
                "create",
                rk.plural,
                "POST",
                rk.path(namespace),
                body=data,
                on_retry_error=reconcile,
                namespace=namespace,
                name=label,
                priority=priority,
                decode=decode,
            )
        except _REFUSALS as e:
            _log_refused_create(rk, namespace, label or "", e)
            raise
        if rk == NAMESPACES and name:
            self.known_namespaces.add(name)
        return created

    async def delete(
        self,
        rk: ResourceKind,
        namespace: str | None,
        name: str,
        *,
        grace_period_seconds: int | None = None,
        uid: str | None = None,
        propagation_policy: str | None = None,
        retry_timeout: float | None = None,
        read_response: bool = True,
        priority: Priority = Priority.NORMAL,
    ) -> dict[str, Any] | None:
        """Delete an object; ``None`` when it was already gone (404 is success).

        ``uid`` adds a precondition so that a newer object with the same name is never
        deleted by mistake (:class:`~.errors.Conflict` then means: that object is not ours
        any more). ``read_response=False``: the answer to a successful delete (the whole
        object, managed fields and all) is not decoded, and ``{}`` is returned; a caller
        that only needs "deleted" or "already gone" saves the parse, and a burst of stops
        does not keep a thousand decoded pods alive for the collector to walk.
        """
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if uid:
            options["preconditions"] = {"uid": uid}
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        try:
            return await self.request(
                "delete",
                rk.plural,
                "DELETE",
                rk.path(namespace, name),
                body=options,
                namespace=namespace,
                name=name,
                retry_timeout=retry_timeout,
                decode=None if read_response else _ignore_body,
                priority=priority,
            )
        except NotFound:
            return None

    async def list_page(
        self,
        rk: ResourceKind,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (passed to aiohttp)
        decode: Callable[[bytes], dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """One page of a list (no retries: the reflector owns its own backoff).

        ``decode`` replaces ``orjson.loads`` for a successful response: the reflector
        parses and trims a page in one step (see ``Reflector._list``)."""
        query: list[tuple[str, Any]] = []
        if label_selector:
            query.append(("labelSelector", label_selector))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        if limit:
            query.append(("limit", limit))
        if continue_token:
            query.append(("continue", continue_token))
        return await self._attempt(
            _Target("list", rk.plural, namespace),
            "GET",
            rk.path(namespace),
            query=query,
            body=None,
            content_type="application/json",
            timeout=timeout or max(self.request_timeout, 30.0),
            decode=decode,
        )

    @asynccontextmanager
    async def watch_stream(
        self,
        rk: ResourceKind,
        namespace: str | None,
        *,
        resource_version: str,
        timeout_seconds: int,
        label_selector: str | None = None,
        field_selector: str | None = None,
        read_timeout: float | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Open a watch and hand the streaming response to the caller (who parses lines)."""
        query: list[tuple[str, Any]] = [
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("resourceVersion", resource_version),
            ("timeoutSeconds", timeout_seconds),
        ]
        if label_selector:
            query.append(("labelSelector", label_selector))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        # aiohttp bounds only the connect; the stream's overall bound (the server's
        # timeoutSeconds plus a margin) and its idle bound (``read_timeout`` of silence)
        # are stall-tolerant timeouts, by the same rule as a request's.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.request_timeout * 3)
        target = _Target("watch", rk.plural, namespace)
        opened: list[aiohttp.ClientResponse] = []

        def received() -> int:
            """Bytes of the stream received so far (the idle timeout's progress)."""
            return opened[0].content.total_bytes if opened else 0

        overall = StallTolerantTimeout(timeout_seconds + 30, tick=False)
        idle = StallTolerantTimeout(read_timeout, progress=received, tick=False)
        try:
            with overall, idle:
                resp = await self._round_trip(
                    target,
                    "GET",
                    rk.path(namespace),
                    query=query,
                    body=None,
                    content_type="application/json",
                    timeout=timeout,
                    limit=self.request_timeout * 3,
                    started=time.monotonic(),
                )
                opened.append(resp)
                self._note_answer(resp.status)
                try:
                    if resp.status != 200:
                        try:
                            raw = await resp.read()
                        except aiohttp.ClientError as e:
                            raise self._no_response(target, e, None) from e
                        raise self._refusal(target, resp.status, raw, resp.headers)
                    yield resp
                finally:
                    resp.release()
                    resp.close()
        except TimeoutError as e:
            if not (overall.expired or idle.expired):
                raise  # the caller's own, passing through
            limit = read_timeout if idle.expired else timeout_seconds + 30
            raise self._no_response(target, e, limit) from e

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._probe_task is not None and not self._probe_task.done():
                self._probe_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._probe_task
            await self.transport.close()


#: aiohttp's own timeouts are off for requests: the per-attempt bound is a
#: :class:`~.stalls.StallTolerantTimeout` around the whole attempt (connect included).
_NO_CLIENT_TIMEOUT = aiohttp.ClientTimeout(total=None)


class _RetryBudget:
    """One logical call's retry deadline, started when its first attempt is sent.

    Starting at the first send (not at the call) means time queued for a request slot is
    never charged to the budget; later attempts get what is left, at most one
    per-attempt timeout each. The :class:`~.deadline.Deadline` is made only when a
    second attempt is considered: most calls succeed at once and never need it.
    """

    __slots__ = ("_deadline", "_started", "budget", "clock", "request_timeout")

    def __init__(
        self, budget: float, request_timeout: float, clock: Callable[[], float]
    ) -> None:
        self.budget = budget
        self.request_timeout = request_timeout
        self.clock = clock
        self._started: float | None = None
        self._deadline: Deadline | None = None

    @property
    def deadline(self) -> Deadline | None:
        """The budget's deadline once the first attempt was sent (None before)."""
        if self._deadline is None and self._started is not None:
            self._deadline = Deadline(
                self.budget, "the API request did not succeed", clock=self.clock,
                start=self._started,
            )
        return self._deadline

    def attempt_timeout(self) -> float:
        if self._started is None:
            if not self.budget >= 0:  # also NaN: what Deadline itself refuses
                raise ValueError(
                    f"a deadline needs a number of seconds >= 0, got {self.budget!r}"
                )
            self._started = self.clock()
            return self.request_timeout
        deadline = self.deadline
        assert deadline is not None
        return max(0.05, deadline.timeout(self.request_timeout))

    def allows(self, delay: float) -> bool:
        """Whether another attempt after a pause of ``delay`` still fits in the budget."""
        deadline = self.deadline
        return deadline is not None and deadline.allows(delay)


# -- sharing per event loop ------------------------------------------------------------------

_shared: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[ApiSettings, asyncio.Future[KubeApi]]
] = weakref.WeakKeyDictionary()


async def load_configuration(settings: ApiSettings) -> k8s_client.Configuration:
    """In-cluster config inside a pod, else kubeconfig; then the spawner's overrides.

    ``KUBERNETES_SERVICE_HOST`` is what Kubernetes sets in every pod, so it decides; a
    kubeconfig that cannot be read is a configuration error worth a clear message.
    """
    configuration = k8s_client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not settings.kubeconfig:
        # Unannotated in kubernetes_asyncio; it fills ``configuration`` and returns None.
        k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]  # untyped library
            client_configuration=configuration
        )
    else:
        try:
            await k8s_config.load_kube_config(
                config_file=settings.kubeconfig or None, client_configuration=configuration
            )
        except Exception as e:
            if not settings.host:
                raise RuntimeError(
                    "cannot find Kubernetes API credentials: not running in a pod "
                    "(KUBERNETES_SERVICE_HOST unset) and no usable kubeconfig "
                    f"({type(e).__name__}: {e}); set KUBECONFIG or c.KubeSpawner.k8s_api_host"
                ) from e
    if settings.host:
        configuration.host = settings.host.rstrip("/")
    if settings.ssl_ca_cert:
        configuration.ssl_ca_cert = settings.ssl_ca_cert
    if settings.verify_ssl is not None:
        configuration.verify_ssl = settings.verify_ssl
    # Unbounded connector: requests are bounded by KubeApi's slots instead (so queueing
    # happens before a timeout starts), and watches, each holding a connection for
    # minutes, are bounded by the number of reflectors.
    configuration.connection_pool_maxsize = 0
    return configuration


def build_api(
    configuration: k8s_client.Configuration,
    *,
    request_timeout: float,
    retry_timeout: float,
    max_concurrent_requests: int = 100,
    ssl_context: ssl.SSLContext | None = None,
    options: ClientOptions | None = None,
) -> KubeApi:
    """A ``KubeApi`` whose session does no per-request thread-pool work (``trust_env=False``).

    Must run on the loop that will use it. ``ssl_context`` (from :func:`tls_context`, made
    in a thread) spares the loop the CA store load; see :func:`.transport.build_client`.
    """
    api_client = build_client(configuration, ssl_context)
    return KubeApi(
        api_client,
        request_timeout=request_timeout,
        retry_timeout=retry_timeout,
        max_concurrent_requests=max_concurrent_requests,
        proxy=proxy_for(configuration.host or "", configuration.proxy),
        options=options,
    )


async def _make_api(settings: ApiSettings) -> KubeApi:
    configuration = await load_configuration(settings)
    context = await asyncio.to_thread(tls_context, configuration)
    return build_api(
        configuration,
        request_timeout=settings.request_timeout,
        retry_timeout=settings.retry_timeout,
        max_concurrent_requests=settings.max_concurrent_requests,
        ssl_context=context,
    )


async def shared_api(settings: ApiSettings) -> KubeApi:
    """The ``KubeApi`` for these settings on the running loop, created on first use."""
    loop = asyncio.get_running_loop()
    per_loop = _shared.setdefault(loop, {})
    task = per_loop.get(settings)
    if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
        task = loop.create_task(_make_api(settings), name="kubespawner-api-client")
        per_loop[settings] = task
    return await asyncio.shield(task)


def adopt_api(settings: ApiSettings, api: KubeApi) -> None:
    """Make ``api`` the shared client for ``settings`` on this loop (tests, embedding)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[KubeApi] = loop.create_future()
    future.set_result(api)
    _shared.setdefault(loop, {})[settings] = future


async def close_shared_apis() -> None:
    """Close every client of the running loop (at hub shutdown; leaves no open session)."""
    loop = asyncio.get_running_loop()
    per_loop = _shared.pop(loop, {})
    for task in per_loop.values():
        if not task.done():
            task.cancel()
            try:
                await task
            except BaseException:
                continue
        if not task.cancelled() and task.exception() is None:
            await task.result().close()
