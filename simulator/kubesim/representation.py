"""What a response looks like: the ``Accept`` header's media type, YAML, metadata-only views.

The real server negotiates the output before it does anything (a request it cannot
answer in an acceptable type is 406 and changes nothing), encodes YAML by converting the
JSON (so keys come out sorted), and answers ``as=PartialObjectMetadata[List]`` with the
objects' metadata alone — what client-go's metadata informers and
``kubectl get --show-labels``-style tools ask for. Tables stay with ``tables``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import yaml
from aiohttp import web

from .errors import StatusError, status_body

JSON = "json"
YAML = "yaml"
TABLE = "table"
PARTIAL = "partial"
PARTIAL_LIST = "partial-list"

ACCEPTED = "application/json, application/yaml, application/vnd.kubernetes.protobuf"
_META_GROUP_VERSIONS = (("meta.k8s.io", "v1"), ("meta.k8s.io", "v1beta1"))
_PLAIN = {
    "application/json": JSON,
    "application/yaml": YAML,
    # protobuf clients always list JSON too; the simulator answers them in JSON
    "application/vnd.kubernetes.protobuf": JSON,
    "application/*": JSON,
    "*/*": JSON,
    "": JSON,
}


def not_acceptable(message: str) -> StatusError:
    return StatusError(status_body(406, "NotAcceptable", message))


def _clauses(accept: str) -> list[tuple[str, dict[str, str]]]:
    """Media ranges in preference order (q values honoured, q=0 dropped)."""
    ranked: list[tuple[float, int, str, dict[str, str]]] = []
    for index, clause in enumerate(accept.split(",")):
        media, *raw_params = (p.strip() for p in clause.split(";"))
        params: dict[str, str] = {}
        for raw in raw_params:
            key, _, value = raw.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 1.0
        if q > 0:
            ranked.append((-q, index, media.lower(), params))
    ranked.sort()
    return [(media, params) for _q, _i, media, params in ranked]


def negotiate(accept: str) -> str:
    """The shape to answer in for ``accept``; the real 406 when no clause can be served."""
    plain = _PLAIN.get(accept)  # the common case, one media type without parameters
    if plain is not None:
        return plain
    for media, params in _clauses(accept.strip()):
        as_kind = params.get("as")
        if as_kind is None:
            shape = _PLAIN.get(media)
            if shape is not None:
                return shape
            continue
        if media not in ("application/json", "application/vnd.kubernetes.protobuf"):
            continue
        if (params.get("g", ""), params.get("v", "")) not in _META_GROUP_VERSIONS:
            continue
        if as_kind == "Table":
            return TABLE
        if as_kind == "PartialObjectMetadata":
            return PARTIAL
        if as_kind == "PartialObjectMetadataList":
            return PARTIAL_LIST
    raise not_acceptable(f"only the following media types are accepted: {ACCEPTED}")


def check_scope(shape: str, *, collection: bool, watch: bool, kind: str, group: str) -> None:
    """A single object asked for as a list (or the other way round) is 406, as for real."""
    internal = f"*{group.split('.')[0] if group else 'core'}.{kind}"
    if shape == PARTIAL and collection and not watch:
        raise not_acceptable(
            f"you requested PartialObjectMetadata, but the requested object is a list ({internal}List)"
        )
    if shape == PARTIAL_LIST and (not collection or watch):
        raise not_acceptable(
            f"you requested PartialObjectMetadataList, but the requested object is not a list "
            f"({internal})"
        )


def partial(obj: dict[str, Any], version: str = "v1") -> dict[str, Any]:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": obj.get("metadata") or {},
    }


def partial_list(body: dict[str, Any], version: str = "v1") -> dict[str, Any]:
    return {
        "kind": "PartialObjectMetadataList",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": body.get("metadata") or {},
        "items": [partial(item, version) for item in body.get("items") or []],
    }


def _version(accept: str) -> str:
    return "v1beta1" if "v=v1beta1" in accept.replace(" ", "") else "v1"


def reshape_body(body: dict[str, Any], shape: str, accept: str) -> dict[str, Any]:
    """The JSON body of a response in the negotiated shape (a Status stays a Status)."""
    if body.get("kind") == "Status":
        return body
    if shape == PARTIAL:
        return partial(body, _version(accept))
    if shape == PARTIAL_LIST:
        return partial_list(body, _version(accept))
    return body


def to_yaml(body: Any) -> bytes:
    """YAML as the real server writes it: the JSON converted, keys sorted, no line wrapping."""
    return yaml.safe_dump(
        body, sort_keys=True, default_flow_style=False, allow_unicode=True, width=1 << 30
    ).encode()


def reshape(response: web.StreamResponse, shape: str, accept: str) -> web.StreamResponse:
    """``response`` (a finished JSON response) in the negotiated shape; others unchanged."""
    if not isinstance(response, web.Response) or response.prepared:
        return response
    if not (response.content_type == "application/json" or (response.headers.get("Content-Type") or "").startswith("application/json")):
        return response
    raw = response.body
    if not isinstance(raw, bytes | bytearray) or not raw:
        return response
    body = orjson.loads(raw)
    if isinstance(body, dict):
        body = reshape_body(body, shape, accept)
    headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-type", "content-length")}
    if shape == YAML:
        return web.Response(
            body=to_yaml(body), status=response.status, content_type=None,
            headers={**headers, "Content-Type": "application/yaml"},
        )
    return web.Response(
        body=orjson.dumps(body), status=response.status, content_type=None,
        headers={**headers, "Content-Type": "application/json"},
    )


def then_partial(
    first: Callable[[bytes], bytes] | None, accept: str
) -> Callable[[bytes], bytes]:
    """A watch-line transform: ``first`` (if any), then the metadata-only view."""
    if first is None:
        return lambda line: event_line(line, accept)
    return lambda line: event_line(first(line), accept)


def event_line(line: bytes, accept: str) -> bytes:
    """A watch event line with its object as PartialObjectMetadata (an ERROR keeps its Status)."""
    event = orjson.loads(line)
    obj = event.get("object")
    if event.get("type") != "ERROR" and isinstance(obj, dict):
        event["object"] = partial(obj, _version(accept))
    return orjson.dumps(event) + b"\n"
