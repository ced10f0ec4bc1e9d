"""``Status`` failure bodies exactly as a real kube-apiserver builds them.

Clients branch on ``reason`` and ``code`` (``kubernetes_asyncio`` raises ``ApiException``
with the body; the spawner's retry policy reads ``code``; reflectors relist on 410
``Expired``), so every error the simulator sends is built here, once, in the real shape
recorded in ``reference/apiserver-samples/status-errors.json``.
"""

from __future__ import annotations

from typing import Any


class StatusError(Exception):
    """An API failure carrying the full ``metav1.Status`` body the server answers with.

    Raised anywhere in the store or the HTTP layer; the HTTP layer turns it into a
    response with ``code`` as the HTTP status, so no code path has to know about HTTP.
    """

    def __init__(self, status: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(status.get("message", ""))
        self.status = status
        self.code: int = int(status["code"])
        self.headers = dict(headers or {})

    @property
    def reason(self) -> str:
        return str(self.status.get("reason", ""))


def status_body(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A failure ``Status``; ``details`` is left out when ``None`` (as the server does)."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def _details(name: str | None, plural: str, group: str = "") -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name is not None:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = plural
    return details


def _qualified(plural: str, group: str) -> str:
    return f"{plural}.{group}" if group else plural


def not_found(plural: str, name: str, group: str = "") -> StatusError:
    return StatusError(
        status_body(
            404,
            "NotFound",
            f'{_qualified(plural, group)} "{name}" not found',
            _details(name, plural, group),
        )
    )


def resource_not_found() -> StatusError:
    """The answer for an unknown resource inside a known group/version."""
    return StatusError(
        status_body(404, "NotFound", "the server could not find the requested resource", {})
    )


def already_exists(plural: str, name: str, group: str = "") -> StatusError:
    return StatusError(
        status_body(
            409,
            "AlreadyExists",
            f'{_qualified(plural, group)} "{name}" already exists',
            _details(name, plural, group),
        )
    )


def conflict(plural: str, name: str, detail: str, group: str = "") -> StatusError:
    return StatusError(
        status_body(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {_qualified(plural, group)} "{name}": {detail}',
            _details(name, plural, group),
        )
    )


STALE_OBJECT = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def stale_conflict(plural: str, name: str, group: str = "") -> StatusError:
    return conflict(plural, name, STALE_OBJECT, group)


def invalid(kind: str, name: str, causes: list[dict[str, Any]], group: str = "") -> StatusError:
    """422 Invalid; the message lists every cause the way the server joins them."""
    parts = [f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in causes]
    joined = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = causes
    return StatusError(
        status_body(422, "Invalid", f'{kind} "{name}" is invalid: {joined}', details)
    )


def bad_request(message: str) -> StatusError:
    return StatusError(status_body(400, "BadRequest", message))


def expired(message: str) -> StatusError:
    return StatusError(status_body(410, "Expired", message))


def list_too_old() -> StatusError:
    return expired("The resourceVersion for the provided list is too old.")


def gone(message: str) -> StatusError:
    return StatusError(status_body(410, "Gone", message))


def unsupported_media_type() -> StatusError:
    return StatusError(status_body(415, "UnsupportedMediaType", "415: Unsupported Media Type", {}))


def method_not_allowed(verb: str, plural: str) -> StatusError:
    return StatusError(
        status_body(
            405,
            "MethodNotAllowed",
            f'the server does not allow this method on the requested resource ({verb} "{plural}")',
            {},
        )
    )


def forbidden(plural: str, name: str, why: str, group: str = "") -> StatusError:
    return StatusError(
        status_body(
            403,
            "Forbidden",
            f'{_qualified(plural, group)} "{name}" is forbidden: {why}',
            _details(name, plural, group),
        )
    )


def namespace_terminating(plural: str, name: str, namespace: str, group: str = "") -> StatusError:
    err = forbidden(
        plural,
        name,
        f"unable to create new content in namespace {namespace} because it is being terminated",
        group,
    )
    err.status["details"]["causes"] = [
        {
            "reason": "NamespaceTerminating",
            "message": f"namespace {namespace} is being terminated",
            "field": "metadata.namespace",
        }
    ]
    return err


def unauthorized() -> StatusError:
    return StatusError(status_body(401, "Unauthorized", "Unauthorized"))


def too_many_requests(retry_after: int = 1) -> StatusError:
    return StatusError(
        status_body(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
            {"retryAfterSeconds": retry_after},
        ),
        headers={"Retry-After": str(retry_after)},
    )


#: The API server's limit on a create/update/patch/delete body (``MaxRequestBodyBytes``:
#: twice etcd's 1.5 MiB request limit, because JSON shrinks as protobuf).
MAX_REQUEST_BODY_BYTES = 3 * 1024 * 1024


def request_entity_too_large(limit: int = MAX_REQUEST_BODY_BYTES) -> StatusError:
    """413 for a request body over the limit, worded as the real server words it."""
    return StatusError(
        status_body(413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit}", {})
    )


def internal_error(
    message: str = "an error on the server has prevented the request from succeeding",
) -> StatusError:
    return StatusError(status_body(500, "InternalError", f"Internal error occurred: {message}", {}))


def service_unavailable(
    message: str = "the server is currently unable to handle the request",
) -> StatusError:
    return StatusError(status_body(503, "ServiceUnavailable", message, {}))


def timeout(
    message: str = "the server was unable to return a response in the time allotted, but may still be processing the request",
) -> StatusError:
    return StatusError(status_body(504, "Timeout", message, {}))


def error_for_code(code: int, retry_after: int = 1) -> StatusError:
    """A representative error for a status code (used by scripted faults)."""
    match code:
        case 429:
            return too_many_requests(retry_after)
        case 500:
            return internal_error()
        case 503:
            return service_unavailable()
        case 504:
            return timeout()
        case 401:
            return unauthorized()
        case 409:
            return StatusError(status_body(409, "Conflict", "injected conflict", {}))
        case 410:
            return expired("injected: resource version expired")
        case _:
            return StatusError(status_body(code, "InternalError", f"injected error {code}", {}))


def unsupported_media_type_for(message: str) -> StatusError:
    """415 with a message saying what the server can take instead."""
    return StatusError(status_body(415, "UnsupportedMediaType", message, {}))
