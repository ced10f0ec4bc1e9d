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
same connector and resolves the proxy once, at client creation: the kubeconfig's /
``Configuration.proxy`` when set, else ``HTTPS_PROXY``/``HTTP_PROXY`` honouring ``NO_PROXY``
for the API host. ``.netrc`` is not consulted (Kubernetes credentials come from the
kubeconfig or the service account, never from netrc).

Why a bound on requests in flight: with a fixed connection pool, a request waiting for a
free connection used to spend its per-attempt timeout in the queue, so a storm of creates
timed out while merely queued, was retried and met its own 409s. Each client admits at most
``max_concurrent_requests`` request/response calls at a time (watches, which hold a
connection for minutes, are not counted; the connector itself is unbounded so they never
starve requests); a call waits for a slot *before* its per-attempt timeout starts, and the
retry budget (``k8s_api_request_retry_timeout``) starts with the first attempt actually sent.
Queueing therefore never turns into timeouts, retries or 409s; a request the server keeps
failing still ends when its budget is spent.

Creates are not idempotent, so a timed-out POST may still have succeeded on the server.
:meth:`KubeApi.create` stamps each object with a random create id and, when a retry meets
``409 AlreadyExists``, reads the object back: if it carries our id, the earlier attempt
won and the object is returned as created; otherwise the 409 is the caller's to handle.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import itertools
import logging
import os
import random
import ssl
import time
import urllib.request
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client import rest as k8s_rest

from ..metrics import API_REQUEST_DURATION, API_REQUEST_ERRORS

log = logging.getLogger("async_kubespawner.kube")

#: Annotation put on every object this package creates, so that a retried create can tell
#: its own earlier (timed-out but successful) attempt from somebody else's object.
CREATE_ID_ANNOTATION = "hub.jupyter.org/async-kubespawner-create-id"

_RETRIABLE_STATUS = frozenset({429, 500, 502, 503, 504})
_create_ids = itertools.count()


def new_create_id() -> str:
    """Unique per create across hub processes and restarts: time, process, counter and
    random bits. (uuid4 reads the OS entropy pool on every call, which measurably costs
    CPU in a storm of thousands of creates.)"""
    return f"{time.time_ns():x}-{os.getpid():x}-{next(_create_ids):x}-{random.getrandbits(32):08x}"


_BACKOFF_BASE = 0.1
_BACKOFF_CAP = 5.0


class ApiError(Exception):
    """A Kubernetes API request that failed, with the server's ``Status`` when there is one.

    ``status`` is the HTTP code, or 0 when no response arrived (timeout, connection refused).
    The message carries the server's own explanation, which is what an operator needs; it
    never carries the request body (a pod manifest may hold an API token).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        reason: str = "",
        body: dict[str, Any] | None = None,
        retry_after: float | None = None,
        verb: str = "",
        kind: str = "",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason
        self.body = body or {}
        self.retry_after = retry_after
        self.verb = verb
        self.kind = kind

    @property
    def retriable(self) -> bool:
        return self.status == 0 or self.status in _RETRIABLE_STATUS

    def __str__(self) -> str:
        where = f"{self.verb} {self.kind}: " if self.verb else ""
        code = f"HTTP {self.status}" if self.status else "no response"
        reason = f" {self.reason}" if self.reason else ""
        return f"{where}{code}{reason}: {self.message}"


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


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _backoff(attempt: int) -> float:
    """Full-jitter exponential backoff: spreads a thundering herd of retries over time."""
    return random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2**attempt))


class _RetryBudget:
    """One logical call's retry deadline, started when its first attempt is sent.

    Starting at the first send (not at the call) means time queued for a request slot is
    never charged to the budget; later attempts get what is left, at most one
    per-attempt timeout each.
    """

    def __init__(self, budget: float, request_timeout: float) -> None:
        self.budget = budget
        self.request_timeout = request_timeout
        self.deadline = float("inf")
        self._first = True

    def start(self, now: float) -> None:
        if self.deadline == float("inf"):
            self.deadline = now + self.budget

    def attempt_timeout(self, now: float) -> float:
        if self._first:
            self._first = False
            return self.request_timeout
        return max(0.05, min(self.request_timeout, self.deadline - now))


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
    ) -> None:
        if max_concurrent_requests < 1:
            raise ValueError(
                f"max_concurrent_requests must be >= 1, got {max_concurrent_requests}; "
                "set c.KubeSpawner.k8s_api_max_concurrent_requests to a positive number"
            )
        self.api_client = api_client
        self.request_timeout = request_timeout
        self.retry_timeout = retry_timeout
        self.max_concurrent_requests = max_concurrent_requests
        # Resolved once (see build_api); falls back to the Configuration's own proxy.
        self.proxy = proxy if proxy is not None else api_client.rest_client.proxy
        self._slots = asyncio.Semaphore(max_concurrent_requests)
        self._closed = False
        self._answer_waiters: list[asyncio.Future[None]] = []
        # Seams for tests of the retry policy (a fake clock makes budgets exact).
        self._sleep = asyncio.sleep
        self._clock = time.monotonic

    # -- is the server up? -----------------------------------------------------------

    def server_answered(self) -> asyncio.Future[None]:
        """A future resolved by the next response showing that the API server is up again.

        Why: a reflector backing off after an outage would otherwise learn that the
        server is back only when its jittered sleep ends (up to ``reflector_backoff_max``),
        while the spawns' own requests are already succeeding. Any response below 500
        (but 429) counts: the server is answering. Cancel the future when done with it.
        """
        self._answer_waiters = [f for f in self._answer_waiters if not f.done()]
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._answer_waiters.append(future)
        return future

    def _note_answer(self, status: int) -> None:
        if self._answer_waiters and status < 500 and status != 429:
            waiters, self._answer_waiters = self._answer_waiters, []
            for future in waiters:
                if not future.done():
                    future.set_result(None)

    # -- one round trip ---------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, Any]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | aiohttp.ClientTimeout | None,  # noqa: ASYNC109 (passed to aiohttp)
    ) -> aiohttp.ClientResponse:
        """One HTTP request on the shared session, with the client's credentials.

        The ApiClient's own ``call_api`` would serialise the body twice (models to dicts,
        then its JSON encoder); under a spawn storm that is most of the hub's CPU per
        create. Here the body is encoded once, and auth (bearer tokens, refreshed
        in-cluster tokens) still comes from the client's configuration.
        """
        client = self.api_client
        headers = dict(client.default_headers)
        headers["Accept"] = "application/json"
        queries = list(query or ())
        await client.update_params_for_auth(headers, queries, ["BearerToken"])
        url = client.configuration.host + path
        if queries:
            url += "?" + urlencode(queries)
        data: bytes | None = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = orjson.dumps(to_json(body))
        if isinstance(timeout, int | float):
            timeout = aiohttp.ClientTimeout(total=timeout)
        rest = client.rest_client
        extra: dict[str, Any] = {}
        if self.proxy:
            extra["proxy"] = self.proxy
            if rest.proxy_headers:
                extra["proxy_headers"] = rest.proxy_headers
        if rest.server_hostname:
            extra["server_hostname"] = rest.server_hostname
        return await rest.pool_manager.request(
            method,
            url,
            headers=headers,
            data=data,
            timeout=timeout or aiohttp.ClientTimeout(),
            **extra,
        )

    async def _attempt(
        self,
        verb: str,
        kind: str,
        method: str,
        path: str,
        *,
        query: list[tuple[str, Any]] | None,
        body: Any,
        content_type: str,
        timeout: float,  # noqa: ASYNC109 (passed to aiohttp)
        decode: Callable[[bytes], dict[str, Any]] | None = None,
        deadline: _RetryBudget | None = None,
    ) -> dict[str, Any]:
        # The slot is taken before the clock starts: waiting for one is not the server's
        # slowness and must not use up the per-attempt timeout.
        async with self._slots:
            started = time.monotonic()
            if deadline is not None:
                deadline.start(self._clock())
                timeout = deadline.attempt_timeout(self._clock())
            return await self._send(
                verb,
                kind,
                method,
                path,
                query=query,
                body=body,
                content_type=content_type,
                timeout=timeout,
                decode=decode,
                started=started,
            )

    async def _send(
        self,
        verb: str,
        kind: str,
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
        try:
            resp = await self._call(
                method, path, query=query, body=body, content_type=content_type, timeout=timeout
            )
            try:
                raw = await resp.read()
            finally:
                resp.release()
        except TimeoutError as e:
            API_REQUEST_ERRORS.labels(verb, kind, "timeout").inc()
            raise ApiError(
                0, f"no response within {timeout:g}s", reason="Timeout", verb=verb, kind=kind
            ) from e
        except aiohttp.ClientError as e:
            API_REQUEST_ERRORS.labels(verb, kind, "connection").inc()
            raise ApiError(
                0, f"{type(e).__name__}: {e}", reason="ConnectionError", verb=verb, kind=kind
            ) from e
        finally:
            API_REQUEST_DURATION.labels(verb, kind).observe(time.monotonic() - started)
        self._note_answer(resp.status)
        if 200 <= resp.status < 300:
            if not raw:
                return {}
            return orjson.loads(raw) if decode is None else decode(raw)
        API_REQUEST_ERRORS.labels(verb, kind, str(resp.status)).inc()
        status_body: dict[str, Any] = {}
        try:
            parsed = orjson.loads(raw)
            if isinstance(parsed, dict):
                status_body = parsed
        except ValueError:
            pass
        message = status_body.get("message") or raw[:200].decode("utf-8", "replace")
        raise ApiError(
            resp.status,
            message,
            reason=status_body.get("reason", ""),
            body=status_body,
            retry_after=_retry_after(resp.headers),
            verb=verb,
            kind=kind,
        )

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
        on_retry_error: Any = None,
    ) -> dict[str, Any]:
        """One logical API call: retried on 429/5xx/no response until the budget is spent.

        ``on_retry_error(error)`` lets a caller inspect a non-retriable error met *after*
        an ambiguous attempt (used by :meth:`create` to reconcile a 409) and return a
        result instead of raising.
        """
        budget = _RetryBudget(
            self.retry_timeout if retry_timeout is None else retry_timeout, self.request_timeout
        )
        attempt = 0
        ambiguous = False
        while True:
            try:
                return await self._attempt(
                    verb,
                    kind,
                    method,
                    path,
                    query=query,
                    body=body,
                    content_type=content_type,
                    timeout=self.request_timeout,
                    deadline=budget,
                )
            except ApiError as e:
                if not e.retriable:
                    if ambiguous and on_retry_error is not None:
                        result = await on_retry_error(e)
                        if result is not None:
                            return result
                    raise
                if e.status == 0 and method in ("POST", "PATCH", "DELETE"):
                    # The server may have applied it; later attempts must reconcile.
                    ambiguous = True
                delay = e.retry_after if e.retry_after is not None else _backoff(attempt)
                if self._clock() + delay >= budget.deadline:
                    raise
                log.info(
                    "Kubernetes API %s %s failed (%s); retrying in %.2fs", verb, kind, e, delay
                )
                attempt += 1
                await self._sleep(delay)

    # -- operations -----------------------------------------------------------------------

    async def get(
        self,
        rk: ResourceKind,
        namespace: str | None,
        name: str,
        *,
        retry_timeout: float | None = None,
    ) -> dict[str, Any]:
        return await self.request(
            "get", rk.plural, "GET", rk.path(namespace, name), retry_timeout=retry_timeout
        )

    async def get_or_none(
        self,
        rk: ResourceKind,
        namespace: str | None,
        name: str,
        *,
        retry_timeout: float | None = None,
    ) -> dict[str, Any] | None:
        try:
            return await self.get(rk, namespace, name, retry_timeout=retry_timeout)
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    async def create(
        self, rk: ResourceKind, namespace: str | None, body: Any, *, create_id: str | None = None
    ) -> dict[str, Any]:
        """Create an object, reconciling a create that timed out but reached the server.

        Raises ``ApiError(409)`` only when the existing object is not one this call made.
        """
        manifest = to_json(body)
        metadata = copy.copy(manifest.get("metadata") or {})
        annotations = dict(metadata.get("annotations") or {})
        create_id = create_id or new_create_id()
        annotations[CREATE_ID_ANNOTATION] = create_id
        metadata["annotations"] = annotations
        manifest["metadata"] = metadata
        name = metadata.get("name")

        async def reconcile(error: ApiError) -> dict[str, Any] | None:
            if error.status != 409 or not name:
                return None
            existing = await self.get_or_none(rk, namespace, name)
            if existing is not None and (
                existing.get("metadata", {}).get("annotations", {}).get(CREATE_ID_ANNOTATION)
                == create_id
            ):
                log.info(
                    "Create of %s %s/%s had succeeded before its retry", rk.kind, namespace, name
                )
                return existing
            return None

        return await self.request(
            "create",
            rk.plural,
            "POST",
            rk.path(namespace),
            body=manifest,
            on_retry_error=reconcile,
        )

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
    ) -> dict[str, Any] | None:
        """Delete an object; ``None`` when it was already gone (404 is success).

        ``uid`` adds a precondition so that a newer object with the same name is never
        deleted by mistake (409 then means: that object is not ours any more).
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
                retry_timeout=retry_timeout,
            )
        except ApiError as e:
            if e.status == 404:
                return None
            raise

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
            "list",
            rk.plural,
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
        timeout = aiohttp.ClientTimeout(
            total=timeout_seconds + 30,
            sock_connect=self.request_timeout * 3,
            sock_read=read_timeout,
        )
        started = time.monotonic()
        try:
            resp = await self._call("GET", rk.path(namespace), query=query, timeout=timeout)
        except TimeoutError as e:
            API_REQUEST_ERRORS.labels("watch", rk.plural, "timeout").inc()
            raise ApiError(
                0, "no response to watch", reason="Timeout", verb="watch", kind=rk.plural
            ) from e
        except aiohttp.ClientError as e:
            API_REQUEST_ERRORS.labels("watch", rk.plural, "connection").inc()
            raise ApiError(
                0,
                f"{type(e).__name__}: {e}",
                reason="ConnectionError",
                verb="watch",
                kind=rk.plural,
            ) from e
        finally:
            API_REQUEST_DURATION.labels("watch", rk.plural).observe(time.monotonic() - started)
        self._note_answer(resp.status)
        try:
            if resp.status != 200:
                raw = await resp.read()
                API_REQUEST_ERRORS.labels("watch", rk.plural, str(resp.status)).inc()
                try:
                    body = orjson.loads(raw)
                except ValueError:
                    body = {}
                if not isinstance(body, dict):
                    body = {}
                raise ApiError(
                    resp.status,
                    body.get("message") or raw[:200].decode("utf-8", "replace"),
                    reason=body.get("reason", ""),
                    body=body,
                    retry_after=_retry_after(resp.headers),
                    verb="watch",
                    kind=rk.plural,
                )
            yield resp
        finally:
            resp.release()
            resp.close()

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self.api_client.close()


# -- sharing per event loop ------------------------------------------------------------------

_shared: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[ApiSettings, asyncio.Task[KubeApi]]
] = weakref.WeakKeyDictionary()


async def load_configuration(settings: ApiSettings) -> k8s_client.Configuration:
    """In-cluster config inside a pod, else kubeconfig; then the spawner's overrides.

    ``KUBERNETES_SERVICE_HOST`` is what Kubernetes sets in every pod, so it decides; a
    kubeconfig that cannot be read is a configuration error worth a clear message.
    """
    configuration = k8s_client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not settings.kubeconfig:
        k8s_config.load_incluster_config(client_configuration=configuration)
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


def proxy_for(host_url: str, configured: str | None) -> str | None:
    """The proxy to reach ``host_url``: the configuration's own, else the environment's.

    Read once per client (``HTTPS_PROXY``/``HTTP_PROXY``, upper or lower case, and
    ``NO_PROXY``), because doing it per request is what cost a thread hop each time.
    """
    if configured:
        return configured
    parsed = urllib.request.urlparse(host_url)
    if not parsed.hostname:
        return None
    if urllib.request.proxy_bypass_environment(parsed.netloc):
        return None
    proxies = urllib.request.getproxies_environment()
    return proxies.get(parsed.scheme) or None


class _PrebuiltTLS:
    """Stands in for the ``ssl`` module inside ``kubernetes_asyncio.client.rest`` while one
    ApiClient is built, handing it a context that was created off the event loop.

    Why: ``RESTClientObject.__init__`` calls ``ssl.create_default_context()``, which loads
    the system CA store when no CA file is configured (~50 ms on the benchmark machine,
    the longest single step of a hub loading 20,000 pods). Everything else it does to the
    context (client certificates, verification flags) still happens, on ours.
    """

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context

    def create_default_context(self, *args: Any, **kwargs: Any) -> ssl.SSLContext:
        return self._context

    def __getattr__(self, name: str) -> Any:
        return getattr(ssl, name)


def tls_context(configuration: k8s_client.Configuration) -> ssl.SSLContext:
    """The context kubernetes_asyncio would make (run it in a thread: it reads files)."""
    return ssl.create_default_context(cafile=configuration.ssl_ca_cert)


def build_api(
    configuration: k8s_client.Configuration,
    *,
    request_timeout: float,
    retry_timeout: float,
    max_concurrent_requests: int = 100,
    ssl_context: ssl.SSLContext | None = None,
) -> KubeApi:
    """A ``KubeApi`` whose session does no per-request thread-pool work (``trust_env=False``).

    Must run on the loop that will use it. The ApiClient's own ``trust_env=True`` session is
    detached from its connector (not closed, so the connector and its TLS setup are kept)
    and replaced; the proxy it would have looked up per request is resolved here once.
    ``ssl_context`` (from :func:`tls_context`, made in a thread) spares the loop the CA
    store load.
    """
    if ssl_context is None:
        api_client = k8s_client.ApiClient(configuration)
    else:
        real = k8s_rest.ssl
        k8s_rest.ssl = _PrebuiltTLS(ssl_context)  # type: ignore[assignment]
        try:  # synchronous: nothing else runs until it is restored
            api_client = k8s_client.ApiClient(configuration)
        finally:
            k8s_rest.ssl = real
    rest = api_client.rest_client
    original = rest.pool_manager
    connector = original.connector
    original.detach()
    rest.pool_manager = aiohttp.ClientSession(
        connector=connector, trust_env=False, read_bufsize=2**21
    )
    return KubeApi(
        api_client,
        request_timeout=request_timeout,
        retry_timeout=retry_timeout,
        max_concurrent_requests=max_concurrent_requests,
        proxy=proxy_for(configuration.host, configuration.proxy),
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
    _shared.setdefault(loop, {})[settings] = future  # type: ignore[assignment]


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
