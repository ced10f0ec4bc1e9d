"""Typed Kubernetes API errors: one class per answer a caller acts on differently.

Why types instead of an integer: callers used to branch on ``e.status == 409`` and dig
into ``body["details"]["kind"]`` to tell "the namespace is missing" from "the pod is
missing". Each answer now has its class (``except Conflict``), every error says which
object it was about (``kind``, ``namespace``, ``name``), and the server's ``Status``
object is parsed once into :class:`Status`. ``ApiError.status`` (the HTTP code, 0 when no
answer arrived) stays for code written against the integer.

One mapping, :func:`error_for_response` / :func:`error_for_exception`, turns an HTTP
answer or a transport failure into these types, for requests and watches alike.

Nothing here ever carries a request body: a pod manifest may hold an API token. What an
error says comes from the server's own ``Status`` message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

__all__ = [
    "ApiError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "Gone",
    "Invalid",
    "NamespaceNotFound",
    "NoResponse",
    "NotFound",
    "RequestTooLarge",
    "ServerError",
    "Status",
    "StatusCause",
    "TooManyRequests",
    "Unauthorized",
    "error_for_exception",
    "error_for_response",
    "error_for_status",
]

#: HTTP codes worth another attempt: the server is overloaded, restarting or unreachable.
#: Every other 4xx is an answer about the request itself and is never retried.
RETRIABLE_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class StatusCause:
    """One reason a request was refused (``Status.details.causes[]``): which field, why."""

    field: str = ""
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class Status:
    """The ``Status`` object the API server sends with an error, parsed once.

    ``details_kind`` is the resource the error is about as the server names it (plural,
    e.g. ``"namespaces"`` for a create into a namespace that does not exist).
    """

    code: int = 0
    reason: str = ""
    message: str = ""
    details_name: str = ""
    details_kind: str = ""
    details_group: str = ""
    causes: tuple[StatusCause, ...] = field(default=())

    @classmethod
    def from_body(cls, body: Mapping[str, Any] | None, code: int = 0) -> Status:
        """The Status in ``body`` (tolerant: a proxy's HTML page gives an empty Status)."""
        if not isinstance(body, Mapping):
            return cls(code=code)
        details = body.get("details")
        if not isinstance(details, Mapping):
            details = {}
        causes = tuple(
            StatusCause(
                field=str(c.get("field") or ""),
                reason=str(c.get("reason") or ""),
                message=str(c.get("message") or ""),
            )
            for c in details.get("causes") or ()
            if isinstance(c, Mapping)
        )
        raw_code = body.get("code")
        return cls(
            code=raw_code if isinstance(raw_code, int) and raw_code else code,
            reason=str(body.get("reason") or ""),
            message=str(body.get("message") or ""),
            details_name=str(details.get("name") or ""),
            details_kind=str(details.get("kind") or ""),
            details_group=str(details.get("group") or ""),
            causes=causes,
        )


class ApiError(Exception):
    """A Kubernetes API request that failed, with the server's ``Status`` when there is one.

    ``status`` is the HTTP code, or 0 when no response arrived (timeout, connection
    refused). ``kind`` is the resource (plural, as in the URL), ``namespace`` and ``name``
    the object the request was about, when it was about one. The message carries the
    server's own explanation, which is what an operator needs; never the request body.
    """

    def __new__(cls, status: int, *args: Any, **kwargs: Any) -> ApiError:
        # ``ApiError(404, ...)`` (code written before the classes, hooks, test doubles)
        # is a NotFound like the client's own: ``except NotFound`` sees it.
        if cls is ApiError:
            cls = _class_for(status)
        return super().__new__(cls, status, *args)

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
        namespace: str | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason
        self.body: dict[str, Any] = body or {}
        self.retry_after = retry_after
        self.verb = verb
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.details = Status.from_body(self.body, status)

    @property
    def retriable(self) -> bool:
        """Worth another attempt: no answer, 429 or a 5xx the API server sheds load with."""
        return self.status == 0 or self.status in RETRIABLE_STATUS

    @property
    def unavailable(self) -> bool:
        """The server did not answer or answered that it cannot serve (0 or 5xx)."""
        return self.status == 0 or self.status >= 500

    @property
    def target(self) -> str:
        """``kind namespace/name`` (or less, as known): which object this is about."""
        where = "/".join(p for p in (self.namespace, self.name) if p)
        return f"{self.kind} {where}".strip()

    def __str__(self) -> str:
        target = self.target
        where = f"{self.verb} {target}: " if self.verb else ""
        code = f"HTTP {self.status}" if self.status else "no response"
        reason = f" {self.reason}" if self.reason else ""
        return f"{where}{code}{reason}: {self.message}"


class NoResponse(ApiError):
    """No answer arrived: a timeout, a refused or dropped connection (``status == 0``)."""


class BadRequest(ApiError):
    """400: the request was malformed (a field of the wrong type, bad JSON)."""


class Unauthorized(ApiError):
    """401: the credentials were refused (an expired token, a wrong certificate)."""


class Forbidden(ApiError):
    """403: RBAC or an admission policy refused the request."""


class NotFound(ApiError):
    """404: the object (or its namespace) does not exist."""


class NamespaceNotFound(NotFound):
    """404 because the namespace itself does not exist (not the object in it).

    Raised by the client when the server's ``Status`` names the namespace as what is
    missing, so callers never parse ``details``; ``namespace`` is the missing one.
    """


class Conflict(ApiError):
    """409: the object already exists, or a precondition (uid, resourceVersion) failed."""


class Gone(ApiError):
    """410: the requested resourceVersion (or continue token) is too old: relist."""


class RequestTooLarge(ApiError):
    """413: the request body is over the API server's limit (3 MiB)."""


class Invalid(ApiError):
    """422: the object failed validation; ``details.causes`` says which fields."""


class TooManyRequests(ApiError):
    """429: the server sheds load; ``retry_after`` says when to come back."""


class ServerError(ApiError):
    """5xx: the API server (or etcd, or a webhook) failed."""


_BY_CODE: dict[int, type[ApiError]] = {
    0: NoResponse,
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    413: RequestTooLarge,
    422: Invalid,
    429: TooManyRequests,
}


def _class_for(status: int) -> type[ApiError]:
    cls = _BY_CODE.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else ApiError
    return cls


def error_for_status(
    status: int,
    message: str,
    *,
    reason: str = "",
    body: dict[str, Any] | None = None,
    retry_after: float | None = None,
    verb: str = "",
    kind: str = "",
    namespace: str | None = None,
    name: str | None = None,
) -> ApiError:
    """The typed error for an HTTP ``status`` (the one place that picks the class)."""
    cls = _class_for(status)
    if cls is NotFound and kind != "namespaces" and namespace:
        details = Status.from_body(body, status)
        if details.details_kind == "namespaces" and details.details_name in ("", namespace):
            cls = NamespaceNotFound
    return cls(
        status,
        message,
        reason=reason,
        body=body,
        retry_after=retry_after,
        verb=verb,
        kind=kind,
        namespace=namespace,
        name=name,
    )


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def error_for_response(
    status: int,
    raw: bytes,
    headers: Mapping[str, str] | None,
    *,
    verb: str,
    kind: str,
    namespace: str | None = None,
    name: str | None = None,
) -> ApiError:
    """The error for a non-2xx answer: its Status parsed, Retry-After honoured."""
    body: dict[str, Any] = {}
    try:
        parsed = orjson.loads(raw)
        if isinstance(parsed, dict):
            body = parsed
    except ValueError:
        pass
    message = str(body.get("message") or raw[:200].decode("utf-8", "replace"))
    return error_for_status(
        status,
        message,
        reason=str(body.get("reason") or ""),
        body=body,
        retry_after=_retry_after(headers),
        verb=verb,
        kind=kind,
        namespace=namespace,
        name=name,
    )


def error_for_exception(
    exc: BaseException,
    *,
    verb: str,
    kind: str,
    namespace: str | None = None,
    name: str | None = None,
    timeout: float | None = None,
) -> NoResponse | None:
    """The error for a request that got no answer, or None if ``exc`` is not that.

    Timeouts and the HTTP library's connection errors become :class:`NoResponse`;
    anything else (a bug, a cancellation) is not an API error and is left alone.
    """
    if isinstance(exc, TimeoutError):
        within = f" within {timeout:g}s" if timeout is not None else ""
        return NoResponse(
            0,
            f"no response{within}",
            reason="Timeout",
            verb=verb,
            kind=kind,
            namespace=namespace,
            name=name,
        )
    if isinstance(exc, aiohttp.ClientError):
        return NoResponse(
            0,
            f"{type(exc).__name__}: {exc}",
            reason="ConnectionError",
            verb=verb,
            kind=kind,
            namespace=namespace,
            name=name,
        )
    return None
