"""Protobuf bodies of the auth kinds kubectl sends (``auth can-i``, ``create token``,
``create role``/``rolebinding``/``clusterrole``/``clusterrolebinding``, ``auth whoami``).

client-go's typed clients send these as protobuf; only the field numbers of the messages
in k8s.io/api's ``generated.proto`` are needed. Registered into ``kubesim.protobuf``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..protobuf import _map_entry, _object_meta, fields


def _strings(data: bytes, names: dict[int, str], repeated: frozenset[int] = frozenset()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, _wire, raw in fields(data):
        name = names.get(number)
        if name is None:
            continue
        if number in repeated:
            out.setdefault(name, []).append(raw.decode())
        elif raw:  # Go writes every string field; empty ones decode to "absent"
            out[name] = raw.decode()
    return out


_RESOURCE_ATTRIBUTES = {
    1: "namespace", 2: "verb", 3: "group", 4: "version", 5: "resource", 6: "subresource", 7: "name",
}
_NONRESOURCE_ATTRIBUTES = {1: "path", 2: "verb"}


def _access_spec(data: bytes) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    for number, _wire, raw in fields(data):
        if number == 1:
            spec["resourceAttributes"] = _strings(raw, _RESOURCE_ATTRIBUTES)
        elif number == 2:
            spec["nonResourceAttributes"] = _strings(raw, _NONRESOURCE_ATTRIBUTES)
        elif number == 3:
            spec["user"] = raw.decode()
        elif number == 4:
            spec.setdefault("groups", []).append(raw.decode())
        elif number == 5:
            key, values = "", []
            for n, _w, v in fields(raw):
                if n == 1:
                    key = v.decode()
                elif n == 2:
                    values = [item.decode() for i, _x, item in fields(v) if i == 1]
            spec.setdefault("extra", {})[key] = values
        elif number == 6:
            spec["uid"] = raw.decode()
    return spec


def _with_spec(spec_decoder: Callable[[bytes], dict[str, Any]]) -> Callable[[bytes], dict[str, Any]]:
    def decode(data: bytes) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for number, _wire, raw in fields(data):
            if number == 1:
                obj["metadata"] = _object_meta(raw)
            elif number == 2:
                obj["spec"] = spec_decoder(raw)
        return obj

    return decode


def _token_spec(data: bytes) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    for number, wire, raw in fields(data):
        if number == 1:
            spec.setdefault("audiences", []).append(raw.decode())
        elif number == 4 and wire == 0:
            spec["expirationSeconds"] = raw
        elif number == 3:
            spec["boundObjectRef"] = _strings(raw, {1: "kind", 2: "apiVersion", 3: "name", 4: "uid"})
    return spec


def _rule(data: bytes) -> dict[str, Any]:
    names = {1: "verbs", 2: "apiGroups", 3: "resources", 4: "resourceNames", 5: "nonResourceURLs"}
    return _strings(data, names, frozenset(names))


def _label_selector(data: bytes) -> dict[str, Any]:
    selector: dict[str, Any] = {}
    for number, _wire, raw in fields(data):
        if number == 1:
            k, v = _map_entry(raw, "str")
            selector.setdefault("matchLabels", {})[k] = v
        elif number == 2:
            selector.setdefault("matchExpressions", []).append(
                _strings(raw, {1: "key", 2: "operator", 3: "values"}, frozenset({3}))
            )
    return selector


def _role(data: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = {"rules": []}
    for number, _wire, raw in fields(data):
        if number == 1:
            obj["metadata"] = _object_meta(raw)
        elif number == 2:
            obj["rules"].append(_rule(raw))
        elif number == 3:
            selectors = [_label_selector(v) for n, _w, v in fields(raw) if n == 1]
            obj["aggregationRule"] = {"clusterRoleSelectors": selectors}
    return obj


def _binding(data: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for number, _wire, raw in fields(data):
        if number == 1:
            obj["metadata"] = _object_meta(raw)
        elif number == 2:
            subject = _strings(raw, {1: "kind", 2: "apiGroup", 3: "name", 4: "namespace"})
            obj.setdefault("subjects", []).append(subject)
        elif number == 3:
            obj["roleRef"] = _strings(raw, {1: "apiGroup", 2: "kind", 3: "name"})
    return obj


def _metadata_only(data: bytes) -> dict[str, Any]:
    metas = [_object_meta(v) for n, _w, v in fields(data) if n == 1]
    return {"metadata": metas[-1] if metas else {}}


AUTH_DECODERS: dict[str, Callable[[bytes], dict[str, Any]]] = {
    "SelfSubjectAccessReview": _with_spec(_access_spec),
    "SubjectAccessReview": _with_spec(_access_spec),
    "LocalSubjectAccessReview": _with_spec(_access_spec),
    "SelfSubjectRulesReview": _with_spec(lambda raw: _strings(raw, {1: "namespace"})),
    "SelfSubjectReview": _metadata_only,
    "TokenReview": _with_spec(lambda raw: _strings(raw, {1: "token", 2: "audiences"}, frozenset({2}))),
    "TokenRequest": _with_spec(_token_spec),
    "Role": _role,
    "ClusterRole": _role,
    "RoleBinding": _binding,
    "ClusterRoleBinding": _binding,
}
