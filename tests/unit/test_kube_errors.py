"""Typed API errors, the Status they carry, the deadline, and the one public errors module."""

from __future__ import annotations

import math

import pytest

from async_kubespawner import errors
from async_kubespawner.kube.deadline import Deadline
from async_kubespawner.kube.errors import (
    ApiError,
    NamespaceNotFound,
    NotFound,
    Status,
    error_for_exception,
    error_for_response,
    error_for_status,
)


@pytest.mark.parametrize(
    "code,cls,retriable",
    [
        (0, errors.NoResponse, True),
        (400, errors.BadRequest, False),
        (401, errors.Unauthorized, False),
        (403, errors.Forbidden, False),
        (404, errors.NotFound, False),
        (409, errors.Conflict, False),
        (410, errors.Gone, False),
        (413, errors.RequestTooLarge, False),
        (422, errors.Invalid, False),
        (429, errors.TooManyRequests, True),
        (500, errors.ServerError, True),
        (503, errors.ServerError, True),
        (501, errors.ServerError, False),
        (418, ApiError, False),
    ],
)
def test_each_code_has_its_class_and_retry_verdict(code, cls, retriable):
    error = error_for_status(code, "m", verb="get", kind="pods", namespace="ns", name="p")
    assert type(error) is cls
    assert isinstance(error, ApiError)
    assert error.status == code  # the integer stays for code written against it
    assert error.retriable is retriable
    assert error.target == "pods ns/p"


def test_namespace_not_found_is_told_from_a_missing_object():
    body = {
        "kind": "Status",
        "code": 404,
        "reason": "NotFound",
        "message": 'namespaces "user-alice" not found',
        "details": {"name": "user-alice", "kind": "namespaces"},
    }
    missing_ns = error_for_status(
        404, body["message"], body=body, verb="create", kind="pods", namespace="user-alice"
    )
    assert type(missing_ns) is NamespaceNotFound and isinstance(missing_ns, NotFound)
    pod_body = dict(body, details={"name": "jupyter-a", "kind": "pods"})
    missing_pod = error_for_status(
        404, "x", body=pod_body, verb="get", kind="pods", namespace="user-alice", name="a"
    )
    assert type(missing_pod) is NotFound
    # Another namespace named in the details is not this request's namespace.
    other = dict(body, details={"name": "elsewhere", "kind": "namespaces"})
    assert type(
        error_for_status(404, "x", body=other, verb="create", kind="pods", namespace="user-alice")
    ) is NotFound
    # A GET of the namespace itself is a plain NotFound of a namespace.
    assert type(error_for_status(404, "x", body=body, verb="get", kind="namespaces")) is NotFound


def test_status_is_parsed_once_and_tolerates_junk():
    status = Status.from_body(
        {
            "code": 422,
            "reason": "Invalid",
            "message": "bad",
            "details": {
                "name": "p",
                "kind": "pods",
                "causes": [{"field": "spec.x", "reason": "FieldValueInvalid"}, "junk"],
            },
        }
    )
    assert status.code == 422 and status.details_kind == "pods"
    assert [c.field for c in status.causes] == ["spec.x"]
    assert Status.from_body(None, 502) == Status(code=502)
    assert Status.from_body({"details": "not a dict"}).details_kind == ""


def test_response_mapping_never_carries_the_request_and_honours_retry_after():
    error = error_for_response(
        429,
        b'{"kind":"Status","code":429,"reason":"TooManyRequests","message":"slow down"}',
        {"Retry-After": "3"},
        verb="create",
        kind="pods",
        namespace="ns",
        name="p",
    )
    assert type(error) is errors.TooManyRequests and error.retry_after == 3.0
    assert str(error) == "create pods ns/p: HTTP 429 TooManyRequests: slow down"
    html = error_for_response(502, b"<html>bad gateway</html>", None, verb="get", kind="pods")
    assert type(html) is errors.ServerError and "bad gateway" in html.message


def test_exception_mapping_only_maps_transport_failures():
    import aiohttp

    timeout = error_for_exception(TimeoutError(), verb="get", kind="pods", timeout=2)
    assert type(timeout) is errors.NoResponse and "within 2s" in str(timeout)
    refused = error_for_exception(
        aiohttp.ClientConnectionError("refused"), verb="watch", kind="pods"
    )
    assert type(refused) is errors.NoResponse and refused.reason == "ConnectionError"
    assert error_for_exception(ValueError("a bug"), verb="get", kind="pods") is None


def test_public_errors_module_exports_every_name():
    for name in errors.__all__:
        assert isinstance(getattr(errors, name), type), name
    assert issubclass(errors.SpawnFailed, Exception)
    assert issubclass(errors.SpawnerConfigError, ValueError)
    with pytest.raises(AttributeError):
        errors.NotAnError  # noqa: B018


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_deadline_counts_down_on_its_clock():
    clock = Clock()
    deadline = Deadline(10, "Server x did not become ready", clock=clock)
    assert deadline.left() == 10 and not deadline.expired
    clock.now += 4
    assert deadline.left() == 6
    assert deadline.timeout(2) == 2 and deadline.timeout() == 6
    assert deadline.allows(5.9) and not deadline.allows(6)
    clock.now += 7
    assert deadline.left() == 0 and deadline.expired
    assert str(deadline.error("still pulling")) == (
        "Server x did not become ready within 10 seconds: still pulling"
    )


def test_a_child_deadline_never_outlives_its_parent():
    clock = Clock()
    parent = Deadline(5, "start", clock=clock)
    assert parent.child(60, "stop the leftover").left() == 5
    assert parent.child(2).left() == 2 and parent.child(2).what == "start"
    assert Deadline(math.inf, clock=clock).left() == math.inf
    assert "ever" in Deadline(math.inf, "x did not happen").message()
    with pytest.raises(ValueError):
        Deadline(-1)
    with pytest.raises(ValueError):
        Deadline(math.nan)


def test_constructing_the_base_class_gives_the_typed_error():
    """Code written against ``ApiError(status, ...)`` (hooks, test doubles) gets the class
    the client would have raised, so ``except Forbidden`` sees it."""
    assert type(ApiError(403, "no")) is errors.Forbidden
    assert type(ApiError(0, "no answer")) is errors.NoResponse
    assert type(ApiError(503, "down")) is errors.ServerError
    assert type(ApiError(418, "teapot")) is ApiError
    assert type(errors.Conflict(409, "exists")) is errors.Conflict
    error = ApiError(404, "gone", verb="get", kind="pods", namespace="ns", name="p")
    assert isinstance(error, NotFound) and error.status == 404 and error.name == "p"
