"""What a request asks to do, in authorizer terms, read from the URL alone.

The real server authorizes before it looks anything up (an unknown resource is 403 for
someone who may not touch it, 404 only for someone who may), so these attributes come
from the path and query the way the apiserver's RequestInfoFactory reads them, not from
the simulator's registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..selectors import SelectorError, parse_field_selector

_METHOD_VERBS = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}
_NONRESOURCE_VERBS = {
    "POST": "post",
    "GET": "get",
    "HEAD": "head",
    "PUT": "put",
    "PATCH": "patch",
    "DELETE": "delete",
}
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


@dataclass(frozen=True, slots=True)
class Attributes:
    """One authorization question: may this request do ``verb`` on this resource or path."""

    verb: str
    resource_request: bool
    path: str = ""
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""

    @property
    def combined_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def _valid_path_segment(name: str) -> bool:
    return name not in (".", "..") and "/" not in name and "%" not in name


def request_attributes(method: str, path: str, query: Mapping[str, str]) -> Attributes:
    """The attributes the real server derives from ``method path?query``."""
    parts = [p for p in path.strip("/").split("/") if p] if path.strip("/") else []
    nonresource = Attributes(
        verb=_NONRESOURCE_VERBS.get(method, method.lower()), resource_request=False, path=path
    )
    if not parts or parts[0] not in ("api", "apis"):
        return nonresource
    if parts[0] == "api":
        if len(parts) < 2:
            return nonresource
        group, version, rest = "", parts[1], parts[2:]
    else:
        if len(parts) < 3:
            return nonresource
        group, version, rest = parts[1], parts[2], parts[3:]
    if not rest:
        return nonresource
    verb = _METHOD_VERBS.get(method, method.lower())
    if rest[0] == "watch":
        verb, rest = "watch", rest[1:]
        if not rest:
            return Attributes(verb, True, path, group, version)
    namespace = ""
    if rest[0] == "namespaces":
        if len(rest) > 1:
            namespace = rest[1]
            if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
                rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if not name and verb == "get":
        verb = "watch" if query.get("watch", "").lower() in ("1", "true") else "list"
        selector = query.get("fieldSelector")
        if selector:
            name = _exact_name(selector)
    if not name and verb == "delete":
        verb = "deletecollection"
    return Attributes(verb, True, path, group, version, namespace, resource, subresource, name)


def _exact_name(selector: str) -> str:
    """``metadata.name=X`` in a list's field selector names the object, as on a real server."""
    try:
        parsed = parse_field_selector(selector, "")
    except SelectorError:
        return ""
    for req in parsed.requirements:
        if req.field == "metadata.name" and req.operator == "=":
            return req.value if req.value and _valid_path_segment(req.value) else ""
    return ""
