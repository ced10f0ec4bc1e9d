"""The only module that knows kubernetes_asyncio's internals: HTTP sessions, TLS, auth.

Why isolated: the client uses ``kubernetes_asyncio`` for what it is good at (kubeconfig
and in-cluster credentials, token refresh, TLS settings) but sends its own requests on
the library's aiohttp session, and builds that session differently (no per-request
thread-pool work, a TLS context made off the event loop). That reaches into attributes
that are not the library's public API (``rest.ssl``, ``RESTClientObject.pool_manager``,
``proxy``, ``proxy_headers``, ``server_hostname``; aiohttp's ``_keepalive_timeout`` of
the library's connector) and into a method whose signature
changed between releases (``update_params_for_auth``: synchronous up to 32.x, a
coroutine from 33.0). All of it is here, and :func:`check_library` (run by a test
against the installed library) fails loudly, naming what changed, if a release moves
any of it.
"""

from __future__ import annotations

import inspect
import ssl
import urllib.request
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urlencode, urlparse

import aiohttp
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio.client import rest as k8s_rest

# Undocumented but present since Python 3.0 and used by urllib itself (it honours NO_PROXY
# from the environment only); typeshed omits it.
_proxy_bypass_environment: Callable[[str], bool] = (
    urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]  # undeclared in typeshed
)

__all__ = [
    "LibraryShapeError",
    "Transport",
    "build_client",
    "check_library",
    "proxy_for",
    "tls_context",
]


class LibraryShapeError(RuntimeError):
    """The installed kubernetes_asyncio no longer has what this module relies on."""


#: Seconds an idle connection to the API server stays in the pool for reuse (aiohttp's
#: default is 15). Why longer: a hub's requests come in bursts (a class starting at
#: 9:00, a cull every few minutes), and a burst after a quiet quarter of a minute found
#: every connection closed: measured on the simulator, 1,000 deletes at 100 in flight
#: cost 270 us of hub CPU each instead of 178 while their 100 connections were opened
#: again (TLS handshakes would add far more against a real API server). Below the 90 s
#: after which kube-apiserver closes an idle HTTP/1.1 connection; a connection the
#: server (or a proxy) closed is noticed and not reused, and one dropped silently fails
#: like any lost connection (aiohttp retries an idempotent request once, the client's
#: retries and create reconciliation handle the rest).
KEEPALIVE_SECONDS = 60.0

#: aiohttp's per-response buffer (bytes): a response's reader stops reading the socket at
#: twice this much unread. Large, so that a watch backlog leaves the API server's send
#: buffers at once: a smaller one (256 KiB) made the simulator queue its watch writes
#: with backpressure, and a real API server ends a watcher that falls behind. The
#: reflector takes the buffered bytes in pieces (``reflector.WATCH_FETCH_BYTES``).
READ_BUFSIZE = 2**21

#: RESTClientObject attributes read or replaced here.
_REST_ATTRIBUTES = ("pool_manager", "proxy", "proxy_headers", "server_hostname")


def check_library() -> None:
    """Raise :class:`LibraryShapeError` naming every internal this module relies on that the
    installed kubernetes_asyncio lacks (called by a test; cheap enough for a startup
    check). Call it on a running event loop: the library builds an aiohttp session."""
    problems: list[str] = []
    if "ssl" not in vars(k8s_rest):
        problems.append("kubernetes_asyncio.client.rest has no module attribute 'ssl'")
    rest_cls = vars(k8s_rest).get("RESTClientObject")
    if rest_cls is None:
        problems.append("kubernetes_asyncio.client.rest.RESTClientObject is gone")
    api_client_cls = vars(k8s_client).get("ApiClient")
    if api_client_cls is None or not hasattr(api_client_cls, "update_params_for_auth"):
        problems.append("ApiClient.update_params_for_auth is gone")
    if problems or rest_cls is None:
        raise LibraryShapeError("; ".join(problems))
    configuration = k8s_client.Configuration(host="https://127.0.0.1:1")
    # Built without a loop-bound session being used: only attributes are read.
    rest = rest_cls(configuration)
    try:
        missing = [a for a in _REST_ATTRIBUTES if not hasattr(rest, a)]
        if missing:
            problems.append(f"RESTClientObject lacks {', '.join(missing)}")
        session = getattr(rest, "pool_manager", None)
        if not isinstance(session, aiohttp.ClientSession):
            problems.append(
                f"RESTClientObject.pool_manager is a {type(session).__name__}, "
                "not an aiohttp.ClientSession"
            )
        elif session.connector is None:
            problems.append("RESTClientObject.pool_manager has no connector")
        elif not hasattr(session.connector, "_keepalive_timeout"):
            problems.append("aiohttp's connector has no _keepalive_timeout")
    finally:
        session = getattr(rest, "pool_manager", None)
        if isinstance(session, aiohttp.ClientSession):
            session.detach()
    if problems:
        raise LibraryShapeError("; ".join(problems))


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


def proxy_for(host_url: str, configured: str | None) -> str | None:
    """The proxy to reach ``host_url``: the configuration's own, else the environment's.

    Read once per client (``HTTPS_PROXY``/``HTTP_PROXY``, upper or lower case, and
    ``NO_PROXY``), because doing it per request is what cost a thread hop each time.
    """
    if configured:
        return configured
    parsed = urlparse(host_url)
    if not parsed.hostname:
        return None
    if _proxy_bypass_environment(parsed.netloc):
        return None
    proxies = urllib.request.getproxies_environment()
    return proxies.get(parsed.scheme) or None


def build_client(
    configuration: k8s_client.Configuration, ssl_context: ssl.SSLContext | None = None
) -> k8s_client.ApiClient:
    """An ``ApiClient`` whose session does no per-request thread-pool work.

    The library's own session is built with ``trust_env=True``, which makes aiohttp look
    up ``~/.netrc`` and the proxy variables in the default executor on *every* request. It
    is detached from its connector (not closed, so the connector and its TLS setup are
    kept) and replaced by a ``trust_env=False`` one; the proxy is resolved once instead
    (:func:`proxy_for`). Idle connections are kept :data:`KEEPALIVE_SECONDS`. ``ssl_context`` (from :func:`tls_context`, made in a thread)
    spares the event loop the CA store load. Must run on the loop that will use it.
    """
    if ssl_context is None:
        api_client = k8s_client.ApiClient(configuration)
    else:
        # The library reads its module global ``ssl`` while building: a stand-in in the
        # module's namespace is the only way in.
        namespace = vars(k8s_rest)
        real = namespace["ssl"]
        namespace["ssl"] = _PrebuiltTLS(ssl_context)
        try:  # synchronous: nothing else runs until it is restored
            api_client = k8s_client.ApiClient(configuration)
        finally:
            namespace["ssl"] = real
    rest = api_client.rest_client
    original: aiohttp.ClientSession = rest.pool_manager
    connector = original.connector
    original.detach()
    if connector is not None and getattr(connector, "_keepalive_timeout", None) is not None:
        # Not public in aiohttp (the connector is the library's); None is force_close.
        connector._keepalive_timeout = KEEPALIVE_SECONDS
    rest.pool_manager = aiohttp.ClientSession(
        connector=connector, trust_env=False, read_bufsize=READ_BUFSIZE
    )
    return api_client


#: The auth settings a request asks the ApiClient for (one list, never mutated).
_AUTH_SETTINGS = ["BearerToken"]


class Transport:
    """One HTTP round trip on an ``ApiClient``'s session with its credentials.

    Why not the ApiClient's ``call_api``: it would serialise a body twice (models to dicts,
    then its JSON encoder) and deserialise every response into models; the client encodes
    once and reads plain JSON. Auth (bearer tokens, refreshed in-cluster tokens) still
    comes from the client's configuration.
    """

    def __init__(self, api_client: k8s_client.ApiClient, *, proxy: str | None = None) -> None:
        self.api_client = api_client
        rest = api_client.rest_client
        self._proxy_headers: Any = rest.proxy_headers
        self._server_hostname: str | None = rest.server_hostname
        # Resolved once (see build_client); falls back to the Configuration's own proxy.
        self.proxy = proxy if proxy is not None else rest.proxy

    @property
    def proxy(self) -> str | None:
        return self._proxy

    @proxy.setter
    def proxy(self, value: str | None) -> None:
        self._proxy = value
        # aiohttp's keyword arguments that are the same for every request, made once.
        extra: dict[str, Any] = {}
        if value:
            extra["proxy"] = value
            if self._proxy_headers:
                extra["proxy_headers"] = self._proxy_headers
        if self._server_hostname:
            extra["server_hostname"] = self._server_hostname
        self._extra = extra

    @property
    def host(self) -> str:
        return cast(str, self.api_client.configuration.host)

    @property
    def session(self) -> aiohttp.ClientSession:
        session: aiohttp.ClientSession = self.api_client.rest_client.pool_manager
        return session

    async def _authorize(self, headers: dict[str, str], queries: list[tuple[str, Any]]) -> None:
        # Synchronous up to kubernetes_asyncio 32.x, a coroutine from 33.0 (awaiting the
        # old one's None is what broke every request on those versions).
        result = self.api_client.update_params_for_auth(headers, queries, _AUTH_SETTINGS)
        if result is not None and inspect.isawaitable(result):
            await result

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, Any]] | None = None,
        data: bytes | None = None,
        content_type: str = "application/json",
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 (passed to aiohttp)
    ) -> aiohttp.ClientResponse:
        """Send one request; the caller reads and releases the response.

        Auth is asked for on every request (the configuration may refresh its token), in
        the same step as the rest; what never changes (aiohttp's proxy and TLS keyword
        arguments) was prepared once."""
        api_client = self.api_client
        headers: dict[str, str] = dict(api_client.default_headers)
        headers["Accept"] = "application/json"
        queries = list(query) if query else []
        result = api_client.update_params_for_auth(headers, queries, _AUTH_SETTINGS)
        if result is not None and inspect.isawaitable(result):
            await result
        url = cast(str, api_client.configuration.host) + path
        if queries:
            url += "?" + urlencode(queries)
        if data is not None:
            headers["Content-Type"] = content_type
        return await api_client.rest_client.pool_manager.request(
            method, url, headers=headers, data=data, timeout=timeout, **self._extra
        )

    async def close(self) -> None:
        await self.api_client.close()
