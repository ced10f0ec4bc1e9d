"""The three PATCH flavours of the API server: JSON merge, JSON patch, strategic merge.

Clients pick the flavour with the Content-Type; the spawner and kubectl mostly send
strategic merge patches, whose list semantics (merge containers by name, env by name,
volume mounts by mount path, finalizers as a set) differ from a plain JSON merge in
ways that change the result. Every function returns a new document and leaves its
inputs untouched, so a failed patch can never leave a half-applied object in the store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .json_values import clone_json, go_dynamic_type, go_unmarshal_type

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
        }
        if self.reason:
            body["reason"] = self.reason
        if self.code == 422:
            body["details"] = {"causes": self.causes}
        body["code"] = self.code
        return body


def _bad_request(message: str) -> PatchError:
    return PatchError(400, "BadRequest", message)


def _unconverted(message: str) -> PatchError:
    """A plain Go error the real server never turned into a Status: 500 with an empty reason.

    kubectl shows these as "Error from server: <message>"; faithful, if unfriendly.
    """
    return PatchError(500, "", message)


def _unprocessable(detail: str) -> PatchError:
    """How the real server reports a JSON patch that does not apply to the object."""
    return PatchError(
        422,
        "Invalid",
        GENERIC_INVALID_MESSAGE,
        [{"reason": "UnexpectedServerResponse", "message": detail}],
    )


# --------------------------------------------------------------------------- RFC 7386


def apply_merge_patch(target: Any, patch: Any, *, share: bool = False) -> Any:
    """RFC 7386 JSON merge patch: objects merge recursively, null deletes, anything else replaces.

    ``share``: copy only the maps the patch goes into and share every other part with
    ``target`` (the result equals the unshared one). Only for a caller that never
    modifies the result in place below the maps the patch touched, such as a built-in
    kind's status write, which keeps the patched ``status`` and does not modify it.
    """
    if share:
        return _merge_shared(target, patch)
    return _merge_into(clone_json(target), patch)


def _merge_shared(target: Any, patch: Any) -> Any:
    """``_merge_into(clone_json(target), patch)`` copying only the maps on the patch's paths."""
    if not isinstance(patch, dict):
        return clone_json(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_shared(result.get(key), value)
    return result


def _merge_into(target: Any, patch: Any) -> Any:
    """Merge ``patch`` into ``target``, a private copy that may be modified."""
    if not isinstance(patch, dict):
        return clone_json(patch)
    result = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_into(result.get(key), value)
    return result


# --------------------------------------------------------------------------- RFC 6902
#
# The real server applies JSON patches with evanphx/json-patch (v4); its quirks are
# part of the observable behaviour, so they are kept: a failed operation's message
# names the operation and path the way that library does, "replace" of a missing
# object key adds it, a "test" of a missing key against null passes, and negative
# array indices count from the end.

_ERR_MISSING = "missing value"
_ERR_INDEX = "invalid index referenced"
_ERR_TEST = "test failed"


class _OpFailed(Exception):
    """One operation did not apply; the message is the library's wording."""


def _unescape_token(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _find_parent(doc: Any, path: str) -> tuple[Any, str] | None:
    """The container holding the last token of ``path`` and that token, or None."""
    split = path.split("/")
    if len(split) < 2:
        return None
    node = doc
    for part in split[1:-1]:
        key = _unescape_token(part)
        if isinstance(node, dict):
            node = node.get(key)
        elif isinstance(node, list):
            try:
                node = node[_array_index(node, key, for_add=False)]
            except _OpFailed:
                return None
        else:
            return None
        if not isinstance(node, dict | list):
            return None
    return node, _unescape_token(split[-1])


def _atoi(key: str) -> int:
    """Go's strconv.Atoi: optional sign, decimal digits only."""
    body = key[1:] if key[:1] in ("+", "-") else key
    if not body.isdigit() or not body.isascii():
        raise ValueError(key)
    return int(key)


def _array_index(array: list, key: str, *, for_add: bool) -> int:
    try:
        index = _atoi(key)
    except ValueError:
        if for_add:
            raise _OpFailed(
                f"value was not a proper array index: '{key}': "
                f'strconv.Atoi: parsing "{key}": invalid syntax'
            ) from None
        raise _OpFailed(f'strconv.Atoi: parsing "{key}": invalid syntax') from None
    size = len(array) + 1 if for_add else len(array)
    if index < 0:
        if index < -size:
            raise _OpFailed(f"Unable to access invalid index: {index}: {_ERR_INDEX}")
        index += size
    if index >= size:
        raise _OpFailed(f"Unable to access invalid index: {index}: {_ERR_INDEX}")
    return index


def _container_get(container: Any, key: str) -> Any:
    """Like the library's get: a missing object key is None (not an error), arrays check bounds."""
    if isinstance(container, dict):
        return container.get(key)
    return container[_array_index(container, key, for_add=False)]


def _container_add(container: Any, key: str, value: Any) -> None:
    if isinstance(container, dict):
        container[key] = value
    elif key == "-":
        container.append(value)
    else:
        container.insert(_array_index(container, key, for_add=True), value)


def _container_remove(container: Any, key: str) -> None:
    if isinstance(container, dict):
        if key not in container:
            raise _OpFailed(f"Unable to remove nonexistent key: {key}: {_ERR_MISSING}")
        del container[key]
    else:
        del container[_array_index(container, key, for_add=False)]


def _apply_operation(doc: Any, operation: dict) -> Any:
    """Apply one operation to ``doc`` (a private copy) and return the new document."""
    op = operation.get("op")
    path = operation.get("path")
    value = clone_json(operation.get("value"))
    if op not in ("add", "remove", "replace", "move", "copy", "test"):
        raise _OpFailed(f"Unexpected kind: {op if op is not None else 'unknown'}")
    if not isinstance(path, str):
        raise _OpFailed(f"{op} operation failed to decode path: {_ERR_MISSING}")
    if op == "replace" and path == "":
        if not isinstance(value, dict | list):
            raise _OpFailed("replace operation value must be object or array")
        return value
    if op == "test" and path == "":
        if _equal(doc, value):
            return doc
        raise _OpFailed(f"testing value {path} failed: {_ERR_TEST}")
    if op in ("move", "copy"):
        source = operation.get("from")
        if not isinstance(source, str):
            raise _OpFailed(f"{op} operation failed to decode from: {_ERR_MISSING}")
        found = _find_parent(doc, source)
        if found is None:
            raise _OpFailed(
                f"{op} operation does not apply: doc is missing from path: {source}: {_ERR_MISSING}"
            )
        container, key = found
        try:
            moved = _container_get(container, key)
            if op == "move":
                _container_remove(container, key)
        except _OpFailed as exc:
            where = f"move for path: '{key}'" if op == "move" else f"copy for from: '{source}'"
            raise _OpFailed(f"error in {where}: {exc}") from None
        target = _find_parent(doc, path)
        if target is None:
            raise _OpFailed(
                f"{op} operation does not apply: doc is missing destination path: "
                f"{path}: {_ERR_MISSING}"
            )
        try:
            _container_add(target[0], target[1], clone_json(moved))
        except _OpFailed as exc:
            where = (
                f"error in move for path: '{path}'"
                if op == "move"
                else ("error while adding value during copy")
            )
            raise _OpFailed(f"{where}: {exc}") from None
        return doc
    found = _find_parent(doc, path)
    if found is None:
        if op == "test":
            raise _OpFailed(
                f"test operation does not apply: is missing path: {path}: {_ERR_MISSING}"
            )
        quoted = f'"{path}"' if op in ("add", "remove") else path
        raise _OpFailed(
            f"{op} operation does not apply: doc is missing path: {quoted}: {_ERR_MISSING}"
        )
    container, key = found
    try:
        if op == "add":
            _container_add(container, key, value)
        elif op == "remove":
            _container_remove(container, key)
        elif op == "replace":
            try:
                _container_get(container, key)
            except _OpFailed:
                raise _OpFailed(
                    f"replace operation does not apply: doc is missing key: {path}: {_ERR_MISSING}"
                ) from None
            if isinstance(container, dict):
                container[key] = value
            else:
                container[_array_index(container, key, for_add=False)] = value
        else:  # test
            try:
                current = _container_get(container, key)
            except _OpFailed as exc:
                raise _OpFailed(f"error in test for path: '{path}': {exc}") from None
            if not _equal(current, value):
                raise _OpFailed(f"testing value {path} failed: {_ERR_TEST}")
    except _OpFailed as exc:
        if str(exc).startswith(("replace operation", "testing value", "error in test")):
            raise
        raise _OpFailed(f"error in {op} for path: '{path}': {exc}") from None
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
    """RFC 6902 JSON patch, all or nothing: a failing operation leaves no trace.

    A patch that is not a list of operations is a 400 (it cannot be decoded); an
    operation that does not apply is the real server's 422 with the library's message
    as the cause.
    """
    if not isinstance(ops, list):
        raise _bad_request(
            f"json: cannot unmarshal {go_unmarshal_type(ops)} into Go value of type jsonpatch.Patch"
        )
    for operation in ops:
        if not isinstance(operation, dict):
            raise _bad_request(
                f"json: cannot unmarshal {go_unmarshal_type(operation)} into Go value of type "
                "jsonpatch.Operation"
            )
    doc = clone_json(target)
    for operation in ops:
        try:
            doc = _apply_operation(doc, operation)
        except _OpFailed as exc:
            raise _unprocessable(str(exc)) from None
    return doc


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
            f"json: cannot unmarshal {go_unmarshal_type(patch)} into Go value of type map[string]interface {{}}"
        )
    schema = STRATEGIC_SCHEMAS.get(kind, {"metadata": _METADATA})
    result = _merge_map(clone_json(target) if isinstance(target, dict) else {}, patch, schema)
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
            raise _unconverted(f"unknown patch type: {directive} in map: {_go_map(patch)}")
    if _RETAIN_KEYS in patch:
        retain = patch[_RETAIN_KEYS]
        if not isinstance(retain, list):
            raise _bad_request("invalid patch format of retainKeys")
        for key in [k for k in patch if not k.startswith("$")]:
            if key not in retain:
                raise _unprocessable("patch content doesn't match retainKeys list")
        for key in list(original):
            if key not in retain:
                del original[key]
    for key, value in patch.items():
        if key.startswith(_DELETE_FROM):
            name = key[len(_DELETE_FROM) :]
            if not isinstance(value, list):
                raise _bad_request("invalid patch format of primitive list")
            if isinstance(original.get(name), list):
                original[name] = [item for item in original[name] if item not in value]
    before: dict[str, list] = {
        k[len(_SET_ORDER) :]: list(original.get(k[len(_SET_ORDER) :]) or [])
        for k in patch
        if k.startswith(_SET_ORDER)
    }
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
            original[key] = clone_json(value)
    for key, order in patch.items():
        if key.startswith(_SET_ORDER):
            name = key[len(_SET_ORDER) :]
            sub = schema.get(name)
            if isinstance(original.get(name), list) and isinstance(order, list):
                original[name] = _apply_order(
                    original[name],
                    order,
                    before.get(name, []),
                    sub.key if isinstance(sub, ListMerge) else "",
                )
    return original


def _merge_list(original: list, patch: list, strategy: ListMerge) -> list:
    if strategy.key == "":
        result = list(original)
        for item in patch:
            if item not in result:
                result.append(clone_json(item))
        return result
    if any(isinstance(i, dict) and i.get(_DIRECTIVE_PATCH) == "replace" for i in patch):
        return [
            _strip_directives(i, strategy.item)
            for i in patch
            if not (isinstance(i, dict) and i.get(_DIRECTIVE_PATCH) == "replace")
        ]
    result = list(original)  # the items are already the caller's private copies
    for item in patch:
        if not isinstance(item, dict):
            raise _unconverted(
                f"expected a map[string]interface {{}}, but received a {go_dynamic_type(item)}"
            )
        if strategy.key not in item:
            raise _unconverted(
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


def _apply_order(items: list, order: list, server_order: list, key: str) -> list:
    """Reorder a merged list like ``$setElementOrder`` does in the real server.

    Elements named in ``order`` take that order; the others (only the server knows
    them) keep their relative order and are interleaved by their position in the list
    as it was before the patch, which is how kubectl apply keeps hand-added items
    where they were.
    """

    def ident(item: Any) -> str:
        if key and isinstance(item, dict):
            return json.dumps(item.get(key), sort_keys=True)
        return json.dumps(item, sort_keys=True)

    rank = {ident(o): n for n, o in enumerate(order)}
    server_rank = {ident(o): n for n, o in enumerate(server_order)}
    listed = sorted((i for i in items if ident(i) in rank), key=lambda i: rank[ident(i)])
    server_only = sorted(
        (i for i in items if ident(i) not in rank),
        key=lambda i: server_rank.get(ident(i), len(server_rank)),
    )
    result: list = []
    left, right = 0, 0
    while left < len(server_only) or right < len(listed):
        if left >= len(server_only):
            result.append(listed[right])
            right += 1
        elif right >= len(listed):
            result.append(server_only[left])
            left += 1
        else:
            li = server_rank.get(ident(server_only[left]))
            ri = server_rank.get(ident(listed[right]))
            if li is not None and ri is not None and li < ri:
                result.append(server_only[left])
                left += 1
            else:
                result.append(listed[right])
                right += 1
    return result


def _strip_directives(value: Any, schema: dict[str, Any]) -> Any:
    """A patch value that lands where nothing existed: merge it into emptiness."""
    if isinstance(value, dict):
        merged = _merge_map({}, value, schema)
        return merged if merged is not None else {}
    if isinstance(value, list):
        return _strip_list(value)
    return clone_json(value)


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
