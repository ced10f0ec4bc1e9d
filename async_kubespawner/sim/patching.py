"""The three PATCH flavours of the API server: JSON merge, JSON patch, strategic merge.

Clients pick the flavour with the Content-Type; the spawner and kubectl mostly send
strategic merge patches, whose list semantics (merge containers by name, env by name,
volume mounts by mount path, finalizers as a set) differ from a plain JSON merge in
ways that change the result. Every function returns a new document and leaves its
inputs untouched, so a failed patch can never leave a half-applied object in the store.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

GENERIC_INVALID_MESSAGE = "the server rejected our request due to an error in our request"


class PatchError(Exception):
    """A patch the real API server refuses, with the HTTP status it answers.

    ``message`` is the Status message; for 422 answers the real server puts the
    specific problem in ``details.causes`` (type UnexpectedServerResponse) and a
    generic message on top, which ``causes``/``status()`` reproduce.
    """

    def __init__(
        self, code: int, reason: str, message: str, causes: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(causes[0]["message"] if causes else message)
        self.code = code
        self.reason = reason
        self.message = message
        self.causes = causes or []

    def status(self) -> dict[str, Any]:
        """The full ``Status`` body the real server sends for this failure."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.code == 422:
            body["details"] = {"causes": self.causes}
        body["code"] = self.code
        return body


def _bad_request(message: str) -> PatchError:
    return PatchError(400, "BadRequest", message)


def _unprocessable(detail: str) -> PatchError:
    """How the real server reports a JSON patch that does not apply to the object."""
    return PatchError(
        422,
        "Invalid",
        GENERIC_INVALID_MESSAGE,
        [{"reason": "UnexpectedServerResponse", "message": detail}],
    )


# --------------------------------------------------------------------------- RFC 7386


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


# --------------------------------------------------------------------------- RFC 6902


def _pointer(path: Any, op: str) -> list[str]:
    """Split a JSON pointer into unescaped tokens (``~1`` is ``/``, ``~0`` is ``~``)."""
    if not isinstance(path, str):
        raise _bad_request(f"operation {op!r}: path must be a string, got {json.dumps(path)}")
    if path == "":
        return []
    if not path.startswith("/"):
        raise _unprocessable(
            f"{op} operation does not apply: invalid JSON pointer {path!r}: "
            "it must be empty or start with '/'"
        )
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _index(token: str, length: int, *, allow_end: bool, path: str) -> int:
    if token == "-" and allow_end:
        return length
    if not token.isdigit() or (len(token) > 1 and token[0] == "0"):
        raise _unprocessable(f"Unable to access invalid index: {token}: invalid index referenced")
    index = int(token)
    if index > length or (index == length and not allow_end):
        raise _unprocessable(f"Unable to access invalid index: {index}: invalid index referenced")
    return index


def _parent(doc: Any, tokens: list[str], op: str, path: str) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(token, len(node), allow_end=False, path=path)]
        else:
            raise _unprocessable(
                f'{op} operation does not apply: doc is missing path: "{path}": missing value'
            )
    return node


def _get(doc: Any, path: str, op: str) -> Any:
    tokens = _pointer(path, op)
    if not tokens:
        return doc
    parent = _parent(doc, tokens, op, path)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(last, len(parent), allow_end=False, path=path)]
    raise _unprocessable(
        f'{op} operation does not apply: doc is missing path: "{path}": missing value'
    )


def _add(doc: Any, path: str, value: Any, op: str = "add") -> Any:
    tokens = _pointer(path, op)
    if not tokens:
        return value
    parent = _parent(doc, tokens, op, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(last, len(parent), allow_end=True, path=path), value)
    else:
        raise _unprocessable(
            f'{op} operation does not apply: doc is missing path: "{path}": missing value'
        )
    return doc


def _remove(doc: Any, path: str, op: str = "remove") -> Any:
    tokens = _pointer(path, op)
    if not tokens:
        raise _unprocessable(f"{op} operation does not apply: cannot remove the whole document")
    parent = _parent(doc, tokens, op, path)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list):
        del parent[_index(last, len(parent), allow_end=False, path=path)]
    else:
        raise _unprocessable(
            f'{op} operation does not apply: doc is missing path: "{path}": missing value'
        )
    return doc


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0 but True != 1, as in any JSON library."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def apply_json_patch(target: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch, all or nothing: a failing operation leaves no trace."""
    if not isinstance(ops, list):
        raise _bad_request(
            f"json: cannot unmarshal {_json_type(ops)} into Go value of type jsonpatch.Patch"
        )
    doc = copy.deepcopy(target)
    for number, operation in enumerate(ops):
        if not isinstance(operation, dict):
            raise _bad_request(
                f"json: cannot unmarshal {_json_type(operation)} into Go value "
                "of type jsonpatch.Operation"
            )
        op = operation.get("op")
        path = operation.get("path")
        if op in ("add", "replace", "test") and "value" not in operation:
            raise _unprocessable(f"{op} operation (#{number}) has no value: missing value")
        if op == "add":
            doc = _add(doc, path, copy.deepcopy(operation["value"]))
        elif op == "remove":
            doc = _remove(doc, path)
        elif op == "replace":
            tokens = _pointer(path, op)
            try:
                _get(doc, path, op)
            except PatchError:
                raise _unprocessable(
                    f"replace operation does not apply: doc is missing key: {path}: missing value"
                ) from None
            if not tokens:
                doc = copy.deepcopy(operation["value"])
            else:
                parent = _parent(doc, tokens, op, path)
                if isinstance(parent, list):
                    parent[_index(tokens[-1], len(parent), allow_end=False, path=path)] = (
                        copy.deepcopy(operation["value"])
                    )
                else:
                    parent[tokens[-1]] = copy.deepcopy(operation["value"])
        elif op in ("move", "copy"):
            source = operation.get("from")
            try:
                value = _get(doc, source, op)
            except PatchError:
                raise _unprocessable(
                    f"{op} operation does not apply: doc is missing from path: {source}: missing value"
                ) from None
            if op == "move":
                if (
                    isinstance(path, str)
                    and isinstance(source, str)
                    and path.startswith(source + "/")
                ):
                    raise _unprocessable(
                        f"move operation does not apply: cannot move {source} into "
                        f"its own child {path}"
                    )
                doc = _remove(doc, source, op)
            doc = _add(doc, path, copy.deepcopy(value), op)
        elif op == "test":
            try:
                current = _get(doc, path, op)
            except PatchError:
                current = _MISSING
            if current is _MISSING or not _equal(current, operation["value"]):
                raise _unprocessable(f"testing value {path} failed: test failed")
        else:
            raise _bad_request(f"Unexpected kind: {op}")
    return doc


_MISSING = object()


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if value is None:
        return "null"
    return "number"


# --------------------------------------------------------------------------- strategic merge


@dataclass(frozen=True)
class ListMerge:
    """How a list field merges: by ``key`` (lists of objects), as a set (``key == ""``)."""

    key: str
    item: dict[str, Any] = field(default_factory=dict)


# A schema maps field names to a nested schema (objects) or a ListMerge (lists).
# Lists absent from a schema are replaced wholesale, as the real server does for
# lists without a patch strategy (tolerations, args, command...).
_METADATA = {
    "ownerReferences": ListMerge("uid"),
    "finalizers": ListMerge(""),
}
_CONTAINER = {
    "env": ListMerge("name"),
    "volumeMounts": ListMerge("mountPath"),
    "volumeDevices": ListMerge("devicePath"),
    "ports": ListMerge("containerPort"),
    "resizePolicy": ListMerge("resourceName"),
}
_POD_SPEC = {
    "containers": ListMerge("name", _CONTAINER),
    "initContainers": ListMerge("name", _CONTAINER),
    "ephemeralContainers": ListMerge("name", _CONTAINER),
    "volumes": ListMerge("name"),
    "imagePullSecrets": ListMerge("name"),
    "hostAliases": ListMerge("ip"),
    "schedulingGates": ListMerge("name"),
    "resourceClaims": ListMerge("name"),
    "topologySpreadConstraints": ListMerge("topologyKey"),
}
_POD_STATUS = {
    "conditions": ListMerge("type"),
    "podIPs": ListMerge("ip"),
    "hostIPs": ListMerge("ip"),
}
_POD_TEMPLATE = {"metadata": _METADATA, "spec": _POD_SPEC}

STRATEGIC_SCHEMAS: dict[str, dict[str, Any]] = {
    "Pod": {"metadata": _METADATA, "spec": _POD_SPEC, "status": _POD_STATUS},
    "Service": {
        "metadata": _METADATA,
        "spec": {"ports": ListMerge("port")},
        "status": {"conditions": ListMerge("type")},
    },
    "Node": {
        "metadata": _METADATA,
        "status": {"conditions": ListMerge("type"), "addresses": ListMerge("type")},
    },
    "Namespace": {"metadata": _METADATA},
    "PersistentVolumeClaim": {"metadata": _METADATA, "status": {"conditions": ListMerge("type")}},
    "ServiceAccount": {
        "metadata": _METADATA,
        "secrets": ListMerge("name"),
        "imagePullSecrets": ListMerge("name"),
    },
    "Deployment": {
        "metadata": _METADATA,
        "spec": {"template": _POD_TEMPLATE},
        "status": {"conditions": ListMerge("type")},
    },
    "StatefulSet": {"metadata": _METADATA, "spec": {"template": _POD_TEMPLATE}},
    "DaemonSet": {"metadata": _METADATA, "spec": {"template": _POD_TEMPLATE}},
    "ReplicaSet": {"metadata": _METADATA, "spec": {"template": _POD_TEMPLATE}},
    "Job": {"metadata": _METADATA, "spec": {"template": _POD_TEMPLATE}},
}

_DIRECTIVE_PATCH = "$patch"
_RETAIN_KEYS = "$retainKeys"
_DELETE_FROM = "$deleteFromPrimitiveList/"
_SET_ORDER = "$setElementOrder/"


def apply_strategic_merge_patch(target: dict, patch: Any, kind: str) -> dict:
    """Kubernetes strategic merge patch for ``kind`` (lists merge by the kind's merge keys)."""
    if not isinstance(patch, dict):
        raise _bad_request(
            f"json: cannot unmarshal {_json_type(patch)} into Go value of type map[string]interface {{}}"
        )
    schema = STRATEGIC_SCHEMAS.get(kind, {"metadata": _METADATA})
    result = _merge_map(copy.deepcopy(target) if isinstance(target, dict) else {}, patch, schema)
    return result if result is not None else {}


def _merge_map(original: dict, patch: dict, schema: dict[str, Any]) -> dict | None:
    """Merge ``patch`` into ``original`` (already a private copy); None means "delete me"."""
    directive = patch.get(_DIRECTIVE_PATCH)
    if directive is not None:
        if directive == "replace":
            return _strip_directives(
                {k: v for k, v in patch.items() if k != _DIRECTIVE_PATCH}, schema
            )
        if directive == "delete":
            return None
        if directive != "merge":
            raise _bad_request(f"unknown patch type: {directive} in map: {_go_map(patch)}")
    if _RETAIN_KEYS in patch:
        retain = patch[_RETAIN_KEYS]
        if not isinstance(retain, list):
            raise _bad_request("invalid patch: $retainKeys must be a list of strings")
        for key in [k for k in patch if not k.startswith("$")]:
            if key not in retain:
                raise _unprocessable(
                    "The patch content doesn't match the retainKeys list: "
                    f"key {key!r} is not in $retainKeys"
                )
        for key in list(original):
            if key not in retain:
                del original[key]
    for key, value in patch.items():
        if key.startswith(_DELETE_FROM):
            name = key[len(_DELETE_FROM) :]
            if not isinstance(value, list):
                raise _bad_request("invalid patch: $deleteFromPrimitiveList must be a list")
            if isinstance(original.get(name), list):
                original[name] = [item for item in original[name] if item not in value]
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            original.pop(key, None)
            continue
        sub = schema.get(key)
        current = original.get(key)
        if isinstance(value, dict):
            merged = _merge_map(
                current if isinstance(current, dict) else {},
                value,
                sub if isinstance(sub, dict) else {},
            )
            if merged is None:
                original.pop(key, None)
            else:
                original[key] = merged
        elif isinstance(value, list) and isinstance(sub, ListMerge):
            original[key] = _merge_list(current if isinstance(current, list) else [], value, sub)
        elif isinstance(value, list):
            original[key] = _strip_list(value)
        else:
            original[key] = copy.deepcopy(value)
    for key, order in patch.items():
        if key.startswith(_SET_ORDER):
            name = key[len(_SET_ORDER) :]
            sub = schema.get(name)
            if isinstance(original.get(name), list) and isinstance(order, list):
                original[name] = _apply_order(
                    original[name], order, sub.key if isinstance(sub, ListMerge) else ""
                )
    return original


def _merge_list(original: list, patch: list, strategy: ListMerge) -> list:
    if strategy.key == "":
        result = list(original)
        for item in patch:
            if item not in result:
                result.append(copy.deepcopy(item))
        return result
    if any(isinstance(i, dict) and i.get(_DIRECTIVE_PATCH) == "replace" for i in patch):
        return [
            _strip_directives(i, strategy.item)
            for i in patch
            if not (isinstance(i, dict) and i.get(_DIRECTIVE_PATCH) == "replace")
        ]
    result = [copy.deepcopy(i) for i in original]
    for item in patch:
        if not isinstance(item, dict):
            raise _bad_request(
                f"invalid patch: list items merged by {strategy.key!r} must be objects"
            )
        if strategy.key not in item:
            raise _bad_request(
                f"map: {_go_map(item)} does not contain declared merge key: {strategy.key}"
            )
        position = next(
            (
                n
                for n, cur in enumerate(result)
                if isinstance(cur, dict) and _equal(cur.get(strategy.key), item[strategy.key])
            ),
            None,
        )
        if item.get(_DIRECTIVE_PATCH) == "delete":
            if position is not None:
                del result[position]
            continue
        if position is None:
            merged = _merge_map({}, item, strategy.item)
            if merged is not None:
                result.append(merged)
        else:
            merged = _merge_map(result[position], item, strategy.item)
            if merged is None:
                del result[position]
            else:
                result[position] = merged
    return result


def _apply_order(items: list, order: list, key: str) -> list:
    """Reorder like ``$setElementOrder``: listed elements first in that order, others after."""

    def ident(item: Any) -> Any:
        if key and isinstance(item, dict):
            return json.dumps(item.get(key), sort_keys=True)
        return json.dumps(item, sort_keys=True)

    wanted = [ident(o) for o in order]
    rank = {w: n for n, w in enumerate(wanted)}
    listed = sorted((i for i in items if ident(i) in rank), key=lambda i: rank[ident(i)])
    return listed + [i for i in items if ident(i) not in rank]


def _strip_directives(value: Any, schema: dict[str, Any]) -> Any:
    """A patch value that lands where nothing existed: merge it into emptiness."""
    if isinstance(value, dict):
        merged = _merge_map({}, value, schema)
        return merged if merged is not None else {}
    if isinstance(value, list):
        return _strip_list(value)
    return copy.deepcopy(value)


def _strip_list(value: list) -> list:
    return [
        _strip_directives(i, {})
        for i in value
        if not (isinstance(i, dict) and i.get(_DIRECTIVE_PATCH) == "delete")
    ]


def _go_map(value: dict) -> str:
    """Render a map the way Go's %v does, for error messages that quote the patch."""
    parts = []
    for key in sorted(value):
        item = value[key]
        shown = _go_map(item) if isinstance(item, dict) else item
        parts.append(f"{key}:{shown}")
    return "map[" + " ".join(parts) + "]"
