"""Field ownership (``metadata.managedFields``) as the real API server records it.

Every write names a *manager* (the ``fieldManager`` query parameter, else the client's
User-Agent up to its first ``/``) and an *operation* (``Update`` for create, update and
the classic patches; ``Apply`` for server-side apply). The server keeps, per manager,
the set of fields it owns, encoded as ``fieldsV1``: nested ``f:<field>`` /
``k:<key JSON>`` (an item of a keyed list) / ``v:<value JSON>`` (an item of a set) maps
where ``".": {}`` marks a node that is itself owned.

- An **Update** gives its manager the fields it added or changed, takes them from every
  other manager, and takes removed fields from everyone (structured-merge-diff's
  ``Updater.Update``). A non-leaf field that did not exist before (a new ``labels`` map,
  a new container) is owned as a whole, hence the ``"."``.
- An **Apply** makes the applied configuration's field set the manager's set, merges it
  into the object (keyed lists by key, sets as sets, other lists atomic), removes fields
  the manager applied last time and no longer applies unless someone else owns them, and
  fails with a 409 ``FieldManagerConflict`` when it would change a field another manager
  owns, unless forced, which moves the ownership.

Paths are tuples of encoded path elements (``"f:spec"``, ``'k:{"name":"main"}'``), a
set of them a Python ``frozenset``: the set algebra is then plain set algebra.
"""

from __future__ import annotations

import functools
import json
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from . import errors
from .errors import StatusError
from .field_errors import forbidden, invalid, not_supported, required, too_long
from .resources import ResourceType
from .timestamps import format_seconds

Path = tuple[str, ...]
FieldSet = frozenset[Path]

#: metadata the server owns; never part of anyone's field set (the "strip meta" manager)
STRIPPED_METADATA = frozenset(
    {
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "generation",
        "managedFields",
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    }
)

#: keyed lists of the built-in kinds (x-kubernetes-list-map-keys), by field name;
#: ``ports`` depends on where it is (a container's vs a Service's)
_KEYED_LISTS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "volumes": ("name",),
    "imagePullSecrets": ("name",),
    "env": ("name",),
    "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",),
    "schedulingGates": ("name",),
    "resourceClaims": ("name",),
    "hostAliases": ("ip",),
    "conditions": ("type",),
    "ownerReferences": ("uid",),
    "topologySpreadConstraints": ("topologyKey", "whenUnsatisfiable"),
    "secrets": ("name",),
}
_SET_LISTS = frozenset({"finalizers"})
#: list items whose fields are owned as one (structType=atomic)
_ATOMIC_ITEMS = frozenset({"ownerReferences"})


def _list_keys(path: Path, name: str, schema: dict[str, Any] | None) -> tuple[str, ...] | None:
    """The key fields of a keyed list, ``()`` for a set, ``None`` for an atomic list."""
    return _keys_of(
        name,
        schema,
        in_item=len(path) >= 2 and path[-2].startswith("k:"),
        in_metadata=path[:1] == ("f:metadata",),
    )


def _keys_of(
    name: str, schema: dict[str, Any] | None, *, in_item: bool, in_metadata: bool
) -> tuple[str, ...] | None:
    if schema is not None:
        list_type = schema.get("x-kubernetes-list-type")
        if list_type == "map":
            return tuple(schema.get("x-kubernetes-list-map-keys") or ())
        if list_type == "set":
            return ()
        if not in_metadata:
            return None
    if name == "ports":
        if in_item:  # a container's ports
            return ("containerPort", "protocol")
        return ("port", "protocol")
    if name in _SET_LISTS:
        return ()
    return _KEYED_LISTS.get(name)


def _json(value: Any) -> str:
    """Compact JSON with sorted keys (what the key and value path elements hold)."""
    if isinstance(value, str) and value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _key_element(item: Any, keys: tuple[str, ...]) -> str:
    if not keys:
        return "v:" + _json(item)
    if len(keys) == 1 and type(item) is dict:
        value = item.get(keys[0])
        return "k:{}" if value is None else '"'.join(("k:{", keys[0], ":" + _json(value) + "}"))
    values = {}
    for k in keys:
        value = item.get(k) if isinstance(item, dict) else None
        if value is None and k == "protocol":
            value = "TCP"  # the schema default, part of the key even when omitted
        if value is not None:
            values[k] = value
    return "k:{" + ",".join(f'"{k}":{_json(v)}' for k, v in sorted(values.items())) + "}"


def _child_schema(schema: dict[str, Any] | None, key: str) -> dict[str, Any] | None:
    if schema is None:
        return None
    props = schema.get("properties") or {}
    if key in props:
        return props[key]
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        return extra
    return None


def _items_schema(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    if schema is None:
        return None
    items = schema.get("items")
    return items if isinstance(items, dict) else None


# ------------------------------------------------------------------ walking objects
def _walk(
    value: Any,
    path: Path,
    schema: dict[str, Any] | None,
    out: dict[Path, Any],
    *,
    every_node: bool,
) -> None:
    """Record ``path -> leaf value`` for leaves; with ``every_node``, non-leaves too
    (value ``_NODE``). A leaf is a scalar, null, an empty map or an atomic list."""
    if isinstance(value, dict):
        if not value:
            out[path] = value
            return
        if every_node and path:
            out[path] = _NODE
        for key, child in value.items():
            _walk(child, (*path, f"f:{key}"), _child_schema(schema, key), out, every_node=every_node)
        return
    if isinstance(value, list):
        name = path[-1][2:] if path and path[-1].startswith("f:") else ""
        keys = _list_keys(path, name, schema)
        if keys is None or not value:
            out[path] = value
            return
        if every_node:
            out[path] = _NODE
        items = _items_schema(schema)
        for item in value:
            element = (*path, _key_element(item, keys))
            if not keys or not isinstance(item, dict) or name in _ATOMIC_ITEMS:
                out[element] = item
                continue
            out[element] = _NODE  # a list item is always owned itself
            for key, child in item.items():
                _walk(
                    child, (*element, f"f:{key}"), _child_schema(items, key), out, every_node=every_node
                )
        return
    out[path] = value


class _Node:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<node>"


_NODE = _Node()


def _strip(obj: dict[str, Any], subresource: str | None, reset_status: bool) -> dict[str, Any]:
    """The part of ``obj`` field ownership is about (server-owned fields removed)."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key in ("kind", "apiVersion"):
            continue
        if key == "metadata" and isinstance(value, dict):
            meta = {k: v for k, v in value.items() if k not in STRIPPED_METADATA}
            if meta:
                out[key] = meta
            continue
        if subresource == "status":
            if key == "status":
                out[key] = value
            continue
        if key == "status" and reset_status:
            continue
        out[key] = value
    return out


def leaves(
    obj: dict[str, Any],
    schema: dict[str, Any] | None = None,
    *,
    subresource: str | None = None,
    reset_status: bool = True,
    every_node: bool = True,
) -> dict[Path, Any]:
    """Every owned-able path of ``obj`` with its value (``_NODE`` for non-leaves)."""
    out: dict[Path, Any] = {}
    _walk(_strip(obj, subresource, reset_status), (), schema, out, every_node=every_node)
    out.pop(("f:metadata",), None)  # a struct every object has: never owned itself
    return out


def applied_set(
    config: dict[str, Any],
    schema: dict[str, Any] | None = None,
    *,
    subresource: str | None = None,
    reset_status: bool = True,
) -> FieldSet:
    """What an applied configuration claims: leaves and list items, not plain maps."""
    found = leaves(config, schema, subresource=subresource, reset_status=reset_status)
    return frozenset(
        p for p, v in found.items() if v is not _NODE or p[-1].startswith(("k:", "v:"))
    )


def compare(
    old: dict[Path, Any], new: dict[Path, Any]
) -> tuple[FieldSet, FieldSet, FieldSet]:
    """(added, modified, removed) paths between two ``leaves`` maps.

    A non-leaf path is "added" only when it did not exist at all before (so a new
    ``labels`` map is owned whole, a new label is not), as structured-merge-diff does.
    """
    added = frozenset(p for p in new if p not in old)
    removed = frozenset(p for p in old if p not in new)
    modified = frozenset(
        p
        for p, v in new.items()
        if p in old and v is not _NODE and (old[p] is _NODE or old[p] != v)
    )
    return added, modified, removed


def zero_skeleton(kind: str, custom: bool) -> dict[Path, Any]:
    """The non-leaf fields a new, empty object of ``kind`` already has.

    A create is an update from the Go zero value of the type: its ``spec`` (a struct)
    exists, so a creator does not own ``spec`` itself, only what is inside; a custom
    resource starts from nothing, so its creator owns ``spec`` whole.
    """
    if custom:
        return {}
    skeleton: dict[Path, Any] = {("f:metadata",): _NODE}
    skeleton.update(_zero_paths(_ZERO_VALUES.get(kind, {})))
    return skeleton


# -------------------------------------------------------------------- creation
def _created(
    value: Any,
    schema: dict[str, Any] | None,
    marked: bool,
    name: str,
    in_item: bool,
    in_metadata: bool,
    zero: dict[str, Any] | None,
) -> dict[str, Any]:
    """The ``fieldsV1`` of ``value`` as created from nothing, in one walk (no path sets).

    Equal to ``encode`` of what ``record_update`` gives a creator, several times faster,
    which matters because every create records one: every leaf and list item is owned,
    and every other node too (``"."``) when ``marked`` — i.e. unless the type's zero
    value already has it.
    """
    kind = type(value)
    if kind is dict:
        if not value:
            return {}
        out: dict[str, Any] = {".": {}} if marked else {}
        for key in sorted(value):
            child = value[key]
            if type(child) not in (dict, list):
                out["f:" + key] = {}
                continue
            inner = zero.get(key) if zero else None
            out["f:" + key] = _created(
                child,
                _child_schema(schema, key) if schema is not None else None,
                inner is None,
                key,
                False,
                in_metadata,
                inner,
            )
        return out
    if kind is list:
        keys = _keys_of(name, schema, in_item=in_item, in_metadata=in_metadata)
        if keys is None or not value:
            return {}
        out = {".": {}} if marked else {}
        items_schema = _items_schema(schema) if schema is not None else None
        children: dict[str, Any] = {}
        plain = not keys or name in _ATOMIC_ITEMS
        for item in value:
            element = _key_element(item, keys)
            if plain or type(item) is not dict:
                children[element] = {}
                continue
            fields: dict[str, Any] = {".": {}}
            for key in sorted(item):
                child = item[key]
                if type(child) not in (dict, list):
                    fields["f:" + key] = {}
                    continue
                fields["f:" + key] = _created(
                    child,
                    _child_schema(items_schema, key) if items_schema is not None else None,
                    True,
                    key,
                    True,
                    in_metadata,
                    None,
                )
            children[element] = fields
        for element in sorted(children):
            out[element] = children[element]
        return out
    return {}


def created_fields_v1(
    kind: str, obj: dict[str, Any], schema: dict[str, Any] | None, *, reset_status: bool
) -> dict[str, Any]:
    """What the creator of ``obj`` owns, as ``fieldsV1``."""
    stripped = _strip(obj, None, reset_status)
    zero = {} if schema is not None else _ZERO_VALUES.get(kind, {})
    out: dict[str, Any] = {}
    for key in sorted(stripped):
        if key == "metadata":
            child = _created(stripped[key], None, False, key, False, True, None)
        else:
            inner = zero.get(key)
            child = _created(
                stripped[key], _child_schema(schema, key), inner is None, key, False, False, inner
            )
        out[f"f:{key}"] = child
    return out


#: the nodes a built-in type's Go zero value already has (non-pointer structs, lists
#: without omitempty): a creator owns what is inside them, not the nodes themselves
_ZERO_VALUES: dict[str, dict[str, Any]] = {
    "Pod": {"spec": {"containers": {}}},
    "PersistentVolumeClaim": {"spec": {"resources": {}}},
    "Service": {"spec": {}},
    "Namespace": {"spec": {}},
    "Node": {"spec": {}},
}


def _zero_paths(tree: dict[str, Any], path: Path = ()) -> dict[Path, Any]:
    out: dict[Path, Any] = {}
    for key, inner in tree.items():
        here = (*path, f"f:{key}")
        out[here] = _NODE
        out.update(_zero_paths(inner, here))
    return out


# -------------------------------------------------------------------- encoding
def encode(fields: Iterable[Path]) -> dict[str, Any]:
    """A field set as ``fieldsV1``: ``"."`` first, then children sorted (``f:`` fields
    before ``k:`` keys before ``v:`` values, which is also their string order)."""
    # the tree marks an owned node with a "." child (never a path element), so no
    # path tuple is built or hashed a second time
    root: dict[str, Any] = {}
    for path in fields:
        node = root
        for element in path:
            child = node.get(element)
            if child is None:
                child = node[element] = {}
            node = child
        node["."] = _OWNED
    return _sorted_tree(root)


_OWNED: dict[str, Any] = {}


def _sorted_tree(node: dict[str, Any]) -> dict[str, Any]:
    owned = "." in node
    if len(node) == owned:  # no children: a leaf, owned or not
        return {}
    out: dict[str, Any] = {".": {}} if owned else {}
    for element in sorted(node):
        if element != ".":
            out[element] = _sorted_tree(node[element])
    return out


def decode(fields_v1: Any) -> FieldSet:
    """The paths of a ``fieldsV1`` document (a node with children is owned when it has ".")."""
    out: set[Path] = set()

    def walk(node: Any, path: Path) -> None:
        if not isinstance(node, dict):
            return
        children = [k for k in node if k != "."]
        if path and (not children or "." in node):
            out.add(path)
        for key in children:
            walk(node[key], (*path, key))

    walk(fields_v1, ())
    return frozenset(out)


def path_text(path: Path) -> str:
    """A path as the real conflict messages print it: ``.spec.containers[name="x"].image``."""
    parts = []
    for element in path:
        tag, _, rest = element.partition(":")
        if tag == "f":
            parts.append("." + rest)
        elif tag == "k":
            key = json.loads(rest)
            parts.append(
                "[" + ",".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in key.items()) + "]"
            )
        elif tag == "v":
            parts.append(f"[={rest}]")
        else:
            parts.append(f"[{rest}]")
    return "".join(parts)


# -------------------------------------------------------------------- managers
def now() -> str:
    return format_seconds(datetime.now(UTC))


def manager_from(field_manager: str | None, user_agent: str) -> str:
    """``fieldManager`` if given, else the User-Agent's product token (the real rule)."""
    if field_manager:
        return field_manager
    return _product_token(user_agent)


@functools.lru_cache(maxsize=256)
def _product_token(user_agent: str) -> str:
    """The User-Agent's product token, printable characters only, at most 128 (the
    real rule); a client sends the same User-Agent on every request, so it is cached."""
    out: list[str] = []
    for ch in user_agent.split("/")[0]:
        if not ch.isprintable() or unicodedata.category(ch).startswith("C"):
            continue
        if len(out) >= 128:
            break
        out.append(ch)
    return "".join(out)


class Entry:
    """One managedFields entry, decoded.

    An entry read from a stored object keeps its ``fieldsV1`` document (``raw``) and
    decodes it into a path set only when something asks for ``fields``: most writes
    leave most entries alone (a status write never touches the creator's spec fields),
    and decoding then re-encoding every entry on every write was most of a write's
    cost. ``canonical`` says ``raw`` is exactly what ``encode(fields)`` would give (the
    server wrote it), so an untouched entry is written back as it was.
    """

    __slots__ = ("_fields", "api_version", "canonical", "manager", "operation", "raw", "subresource", "time")

    def __init__(
        self,
        manager: str,
        operation: str,
        api_version: str,
        time: str | None,
        subresource: str,
        fields: FieldSet | None,
        *,
        raw: Any = None,
        canonical: bool = False,
    ) -> None:
        self.manager = manager
        self.operation = operation
        self.api_version = api_version
        self.time = time
        self.subresource = subresource
        self._fields = fields
        self.raw = raw
        self.canonical = canonical and fields is None and isinstance(raw, dict)

    @property
    def fields(self) -> FieldSet:
        """The owned paths (decoded from ``raw`` on first use)."""
        if self._fields is None:
            known = _SHARED_DOCS.get(id(self.raw))
            if known is not None and known[0] is self.raw:
                self._fields = known[1]
            else:
                self._fields = decode(self.raw or {})
        return self._fields

    def owns_any(self, paths: FieldSet) -> bool:
        """``bool(self.fields & paths)``, without decoding ``raw`` when not decoded yet."""
        if self._fields is not None or not isinstance(self.raw, dict):
            return not self.fields.isdisjoint(paths)
        raw = self.raw
        return any(_raw_owns(raw, path) for path in paths)

    def owns_anything(self) -> bool:
        """``bool(self.fields)``, stopping at the first owned path of ``raw``."""
        if self._fields is not None or not isinstance(self.raw, dict):
            return bool(self.fields)
        return _raw_has_path(self.raw)

    @property
    def identity(self) -> tuple[str, str, str, str]:
        """Updates are told apart by API version too; an applier is one entry per manager."""
        version = "" if self.operation == "Apply" else self.api_version
        return (self.manager, self.operation, version, self.subresource)

    def describe(self) -> str:
        """The manager as conflict messages name it."""
        text = json.dumps(self.manager)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
        }
        if self.time:
            out["time"] = self.time
        out["fieldsType"] = "FieldsV1"
        # stored objects are never changed in place, so sharing the document is safe
        out["fieldsV1"] = self.raw if self.canonical else _encode_shared(self.fields)
        if self.subresource:
            out["subresource"] = self.subresource
        return out


#: field set -> its fieldsV1 document, and the document's id -> (document, field set).
#: Many objects' entries own the same fields (every server's status written by the same
#: controller), so an entry a write changes is encoded once per distinct field set and
#: read back without decoding. The documents are shared, like every stored value, and
#: never modified in place; the table holds them, so their ids stay unique while listed.
_SHARED_FIELDS: dict[FieldSet, dict[str, Any]] = {}
_SHARED_DOCS: dict[int, tuple[dict[str, Any], FieldSet]] = {}
_SHARED_LIMIT = 1024


def _encode_shared(fields: FieldSet) -> dict[str, Any]:
    """``encode(fields)``, the same document for the same set while it is remembered."""
    doc = _SHARED_FIELDS.get(fields)
    if doc is None:
        if len(_SHARED_FIELDS) >= _SHARED_LIMIT:
            _SHARED_FIELDS.clear()
            _SHARED_DOCS.clear()
        doc = _SHARED_FIELDS[fields] = encode(fields)
        _SHARED_DOCS[id(doc)] = (doc, fields)
    return doc


def _raw_owns(node: Any, path: Path) -> bool:
    """``path in decode(node)``, by walking ``path`` down the document."""
    if not path:
        return False
    for element in path:
        if element == "." or not isinstance(node, dict):
            return False
        node = node.get(element, _MISSING)
        if node is _MISSING:
            return False
    return isinstance(node, dict) and (not node or "." in node)


def _raw_has_path(node: dict[str, Any]) -> bool:
    """``bool(decode(node))``: some child (not ".") of the root is, or holds, an owned node."""
    for key, child in node.items():
        if key != "." and isinstance(child, dict) and (not child or "." in child or _raw_has_path(child)):
            return True
    return False


_MISSING: Any = object()


def decode_entries(managed: Any, *, stored: bool = False) -> list[Entry] | None:
    """The entries of a ``managedFields`` value; None when it is absent or not decodable
    (the server then keeps the live object's entries, so a client that does not know
    about them cannot erase them by accident).

    ``stored``: the value is a stored object's, which the server itself encoded, so an
    entry no write touches can be written back without being decoded and re-encoded.
    """
    if not isinstance(managed, list) or not managed:
        return None
    out = []
    for raw in managed:
        if not isinstance(raw, dict) or raw.get("operation") not in ("Apply", "Update"):
            return None
        if raw.get("fieldsType", "FieldsV1") != "FieldsV1":
            return None
        out.append(
            Entry(
                str(raw.get("manager") or ""),
                raw["operation"],
                str(raw.get("apiVersion") or ""),
                raw.get("time") if isinstance(raw.get("time"), str) else None,
                str(raw.get("subresource") or ""),
                None,
                raw=raw.get("fieldsV1") or {},
                canonical=stored,
            )
        )
    return out


def encode_entries(entries: list[Entry]) -> list[dict[str, Any]]:
    """Sorted as the server sorts them: Apply before Update, then by time and manager."""
    ordered = sorted(
        entries,
        key=lambda e: (e.operation, e.time or "", e.manager, e.api_version, e.subresource),
    )
    return [e.to_json() for e in ordered]


def _by_identity(entries: list[Entry]) -> dict[tuple[str, str, str, str], Entry]:
    return {e.identity: e for e in entries}


def _without(entry: Entry, drop: FieldSet) -> Entry | None:
    """``entry`` less the paths in ``drop``; None when it then owns nothing.

    An entry that owns none of ``drop`` is returned as it is (still undecoded).
    """
    if not drop or not entry.owns_any(drop):
        return entry if entry.owns_anything() else None
    fields = entry.fields - drop
    if not fields:
        return None
    return Entry(entry.manager, entry.operation, entry.api_version, entry.time, entry.subresource, fields)


def record_update(
    entries: list[Entry],
    old: dict[Path, Any],
    new: dict[Path, Any],
    *,
    manager: str,
    api_version: str,
    subresource: str = "",
) -> list[Entry]:
    """The entries after an Update by ``manager`` that turned ``old`` into ``new``."""
    added, modified, removed = compare(old, new)
    taken = added | modified
    drop = taken | removed
    current = _by_identity(entries)
    me = Entry(manager, "Update", api_version, None, subresource, frozenset())
    mine = current.pop(me.identity, None)
    out = []
    for entry in current.values():
        kept = _without(entry, drop)
        if kept is not None:
            out.append(kept)
    if mine is not None and not taken and not (removed and mine.owns_any(removed)):
        if mine.owns_anything():  # nothing of the manager's changed: the entry stays as it was
            out.append(mine)
        return out
    before = mine.fields if mine is not None else frozenset()
    fields = (before | taken) - removed
    if fields:
        changed = mine is None or bool(taken) or fields != before
        stamp = now() if changed or mine is None else mine.time
        out.append(Entry(manager, "Update", api_version, stamp, subresource, fields))
    return out


def conflict_error(conflicts: list[tuple[Entry, Path]]) -> StatusError:
    """409 with one ``FieldManagerConflict`` cause per contested field (the real wording)."""
    conflicts = sorted(conflicts, key=lambda c: (c[0].describe(), path_text(c[1])))
    causes = [
        {"reason": "FieldManagerConflict", "message": f"conflict with {e.describe()}", "field": path_text(p)}
        for e, p in conflicts
    ]
    if len(conflicts) == 1:
        entry, path = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {entry.describe()}: {path_text(path)}"
    else:
        lines: list[str] = []
        by_manager: dict[str, list[Path]] = {}
        for entry, path in conflicts:
            by_manager.setdefault(entry.describe(), []).append(path)
        for who in sorted(by_manager):
            lines.append(f"conflicts with {who}:")
            lines.extend(f"- {path_text(p)}" for p in by_manager[who])
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    body = errors.status_body(409, "Conflict", message, {"causes": causes})
    return StatusError(body)


def record_apply(
    entries: list[Entry],
    old: dict[Path, Any],
    new: dict[Path, Any],
    applied: FieldSet,
    *,
    manager: str,
    api_version: str,
    force: bool,
    subresource: str = "",
) -> list[Entry]:
    """The entries after ``manager`` applied ``applied`` (the object went ``old`` → ``new``).

    Raises the 409 conflict when another manager owns a field the apply changes.
    """
    added, modified, removed = compare(old, new)
    taken = added | modified
    me = Entry(manager, "Apply", api_version, None, subresource, applied)
    current = _by_identity(entries)
    mine = current.pop(me.identity, None)
    conflicts = [
        (entry, path)
        for entry in current.values()
        if entry.owns_any(taken)
        for path in sorted(entry.fields & taken)
    ]
    if conflicts and not force:
        raise conflict_error(conflicts)
    out = []
    drop = taken | removed
    for entry in current.values():
        kept = _without(entry, drop)
        if kept is not None:
            out.append(kept)
    if applied:
        unchanged = mine is not None and mine.fields == applied and mine.api_version == api_version
        stamp = mine.time if unchanged and mine is not None else now()
        out.append(Entry(manager, "Apply", api_version, stamp, subresource, applied))
    return out


def owned_by_others(entries: list[Entry], manager: str, subresource: str = "") -> FieldSet:
    me = ("Apply", manager, subresource)
    return frozenset().union(
        *(e.fields for e in entries if (e.operation, e.manager, e.subresource) != me)
    )


# -------------------------------------------------------------------- apply merge
def merge_applied(
    live: Any, config: Any, path: Path = (), schema: dict[str, Any] | None = None
) -> Any:
    """``config`` merged into ``live`` the way server-side apply merges: maps field by
    field, keyed lists item by key, sets by value, everything else replaced."""
    if isinstance(live, dict) and isinstance(config, dict):
        out = dict(live)
        for key, value in config.items():
            child = (*path, f"f:{key}")
            out[key] = (
                merge_applied(live[key], value, child, _child_schema(schema, key))
                if key in live
                else value
            )
        return out
    if isinstance(live, list) and isinstance(config, list):
        name = path[-1][2:] if path and path[-1].startswith("f:") else ""
        keys = _list_keys(path, name, schema)
        if keys is None:
            return config
        if not keys:
            return live + [v for v in config if v not in live]
        index = {_key_element(item, keys): i for i, item in enumerate(live)}
        out_list = list(live)
        items = _items_schema(schema)
        for item in config:
            element = _key_element(item, keys)
            if element in index:
                i = index[element]
                out_list[i] = merge_applied(out_list[i], item, (*path, element), items)
            else:
                index[element] = len(out_list)
                out_list.append(item)
        return out_list
    return config


def remove_paths(obj: Any, paths: Iterable[Path]) -> Any:
    """``obj`` without the fields at ``paths`` (what an applier stopped applying)."""
    result = obj
    for path in sorted(paths, key=len, reverse=True):
        result = _remove(result, path)
    return result


def _remove(value: Any, path: Path) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    tag, _, name = head.partition(":")
    if tag == "f" and isinstance(value, dict):
        if name not in value:
            return value
        out = dict(value)
        if rest:
            out[name] = _remove(value[name], rest)
        else:
            del out[name]
        return out
    if tag in ("k", "v") and isinstance(value, list):
        out_list = []
        for item in value:
            if _item_matches(item, head):
                if rest:
                    out_list.append(_remove(item, rest))
                continue
            out_list.append(item)
        return out_list
    return value


def _item_matches(item: Any, element: str) -> bool:
    tag, _, text = element.partition(":")
    wanted = json.loads(text)
    if tag == "v":
        return bool(item == wanted)
    if not isinstance(item, dict):
        return False
    for k, v in wanted.items():
        got = item.get(k)
        if got is None and k == "protocol":
            got = "TCP"
        if got != v:
            return False
    return True


# -------------------------------------------------------------------- options
_FIELD_VALIDATION = ("", "Ignore", "Strict", "Warn")


def validate_write_options(
    options_kind: str,
    query: Any,
    *,
    apply: bool = False,
) -> None:
    """422 for bad ``fieldManager`` / ``fieldValidation`` / ``dryRun`` / ``force`` values,
    as the Create/Update/PatchOptions validation words them."""
    causes = []
    manager = query.get("fieldManager")
    if options_kind == "PatchOptions":
        if apply and not manager:
            causes.append(required("fieldManager", "is required for apply patch"))
        if not apply and "force" in query:
            causes.append(
                forbidden("force", "may not be specified for non-apply patch")
            )
    if manager:
        if len(manager) > 128:
            causes.append(too_long("fieldManager", 128))
        elif any(not ch.isprintable() for ch in manager):
            causes.append(
                invalid("fieldManager", manager, "must only contain printable characters")
            )
    dry_run = query.getall("dryRun", []) if hasattr(query, "getall") else []
    if any(v != "All" for v in dry_run):
        listed = ", ".join(json.dumps(v) for v in dry_run)
        causes.append(
            {
                "reason": "FieldValueNotSupported",
                "message": f'Unsupported value: []string{{{listed}}}: supported values: "All"',
                "field": "dryRun",
            }
        )
    validation = query.get("fieldValidation")
    if validation is not None and validation not in _FIELD_VALIDATION:
        causes.append(not_supported("fieldValidation", validation, _FIELD_VALIDATION))
    if causes:
        raise errors.invalid(options_kind, "", causes, "meta.k8s.io")


# -------------------------------------------------------------------- store hooks
_SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


_ADMISSION_SPEC_FIELDS = ("serviceAccountName", "serviceAccount", "priority", "preemptionPolicy", "tolerations")


def _without_admission(kind: str, obj: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """``obj`` without what admission plugins filled in (a shallow copy where needed).

    The field manager runs before admission, so a pod's creator does not own what the
    ServiceAccount (token volume and mount, account name), DefaultTolerationSeconds and
    Priority plugins add, unless the request set those fields itself.
    """
    spec = obj.get("spec")
    if kind != "Pod" or not isinstance(spec, dict):
        return obj
    raw_asked = body.get("spec")
    asked: dict[str, Any] = raw_asked if isinstance(raw_asked, dict) else {}
    spec = {k: v for k, v in spec.items() if k in asked or k not in _ADMISSION_SPEC_FIELDS}
    volumes = spec.get("volumes")
    if isinstance(volumes, list):
        kept = [
            v
            for v in volumes
            if not (isinstance(v, dict) and str(v.get("name", "")).startswith("kube-api-access-"))
        ]
        if kept or "volumes" in asked:
            spec["volumes"] = kept
        else:
            del spec["volumes"]
    for field in ("containers", "initContainers"):
        containers = spec.get(field)
        if not isinstance(containers, list):
            continue
        cleaned = []
        for container in containers:
            mounts = container.get("volumeMounts") if isinstance(container, dict) else None
            if isinstance(mounts, list):
                kept_mounts = [
                    m for m in mounts if not (isinstance(m, dict) and m.get("mountPath") == _SA_MOUNT)
                ]
                container = dict(container)
                if kept_mounts:
                    container["volumeMounts"] = kept_mounts
                else:
                    del container["volumeMounts"]
            cleaned.append(container)
        spec[field] = cleaned
    return dict(obj, spec=spec)


def ownership_after_create(
    rt: ResourceType,
    obj: dict[str, Any],
    body: dict[str, Any],
    manager: str,
    schema: dict[str, Any] | None,
    *,
    applied: FieldSet | None = None,
) -> None:
    """Set ``obj``'s managedFields for its creation by ``manager`` (in place)."""
    meta = obj["metadata"]
    if applied is not None:
        entries = [Entry(manager, "Apply", rt.api_version, now(), "", applied)] if applied else []
    else:
        reset = "status" in rt.subresources
        base = decode_entries(meta.get("managedFields")) or []
        if not base:  # the usual create: one walk straight to fieldsV1
            fields_v1 = created_fields_v1(
                rt.kind, _without_admission(rt.kind, obj, body), schema, reset_status=reset
            )
            if fields_v1:
                meta["managedFields"] = [
                    {
                        "manager": manager,
                        "operation": "Update",
                        "apiVersion": rt.api_version,
                        "time": now(),
                        "fieldsType": "FieldsV1",
                        "fieldsV1": fields_v1,
                    }
                ]
            else:
                meta.pop("managedFields", None)
            return
        found = leaves(_without_admission(rt.kind, obj, body), schema, reset_status=reset)
        entries = record_update(
            base,
            zero_skeleton(rt.kind, schema is not None),
            found,
            manager=manager,
            api_version=rt.api_version,
        )
    _store_entries(meta, entries)


def ownership_after_write(
    rt: ResourceType,
    current: dict[str, Any],
    new: dict[str, Any],
    manager: str,
    schema: dict[str, Any] | None,
    *,
    subresource: str = "",
    applied: FieldSet | None = None,
    force: bool = False,
) -> None:
    """Set ``new``'s managedFields for ``manager``'s update or apply of ``current``.

    Entries sent in the body of a main-resource write replace the stored ones (that is
    how a client resets them); absent or undecodable ones keep the stored ones.
    """
    meta = new["metadata"]
    reset = "status" in rt.subresources
    stored_entries = current["metadata"].get("managedFields")
    sent = None if subresource else meta.get("managedFields")
    # a body that sends the stored entries back unchanged (a merge patch, a read-modify-
    # write) is read as the stored entries, which need no re-encoding where untouched
    given = None if sent is None or sent == stored_entries else decode_entries(sent)
    base = (
        given
        if given is not None
        else decode_entries(stored_entries, stored=True) or []
    )
    sub = subresource or None
    old_leaves = leaves(current, schema, subresource=sub, reset_status=reset)
    new_leaves = leaves(new, schema, subresource=sub, reset_status=reset)
    if applied is not None:
        entries = record_apply(
            base,
            old_leaves,
            new_leaves,
            applied,
            manager=manager,
            api_version=rt.api_version,
            force=force,
            subresource=subresource,
        )
    else:
        entries = record_update(
            base,
            old_leaves,
            new_leaves,
            manager=manager,
            api_version=rt.api_version,
            subresource=subresource,
        )
    _store_entries(meta, entries)


def _store_entries(meta: dict[str, Any], entries: list[Entry]) -> None:
    if entries:
        meta["managedFields"] = encode_entries(entries)
    else:
        meta.pop("managedFields", None)
