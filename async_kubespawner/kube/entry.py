"""The bytes a cache keeps per object: a lossless, compact form of the trimmed object.

Why its own format: a hub holding 100,000 pods pays every byte 100,000 times. The trimmed
pod as plain JSON repeats what the cache already knows (its name and namespace are the
cache key, its resourceVersion is needed apart from the JSON to compare versions without
decoding), spells the same half-dozen label and annotation keys in every pod, and holds
the owner annotation as JSON escaped inside JSON. The entry drops the first, numbers the
second and keeps the owner's four fields as a plain array, and puts the resourceVersion in
a short header of the same bytes object (one object per pod, no tuple).

Why lossless: every reader of the cache (poll, stop, start's waits, progress, the orphan
sweep, ``get_pod_url`` and ``is_pod_running`` hooks, the operator) gets exactly the
trimmed dict it got before, key for key, value for value, so no reader can be weakened by
the format, the ownership check least of all: the owner annotation a reader parses is the
very string the API server returned. A form that would not round-trip exactly (a
hand-written owner annotation, an odd value type) is kept as it is.

Layout: ``flag`` (1 byte: 0 plain JSON, 1 compact metadata), the resourceVersion's length
(1 byte, or 255 and 4 bytes big-endian), the resourceVersion (UTF-8), then compact JSON.
"""

from __future__ import annotations

from json.encoder import encode_basestring_ascii
from typing import Any

import orjson

from ..objects.identity import IDENTITY_ANNOTATION, IDENTITY_VERSION

Obj = dict[str, Any]
Key = tuple[str, str]

__all__ = ["canonical_identity", "entry_version", "pack_entry", "unpack_entry"]

_PLAIN = 0
_COMPACT = 1
_LONG = 255

#: Label and annotation keys stored as their index in this tuple (append only: entries
#: live only in memory, but a stable table keeps the format easy to reason about).
KNOWN_KEYS: tuple[str, ...] = (
    "component",
    "app.kubernetes.io/component",
    "hub.jupyter.org/username",
    "hub.jupyter.org/servername",
    "hub.jupyter.org/kubespawner-version",
    "hub.jupyter.org/jupyterhub-version",
    IDENTITY_ANNOTATION,
    "hub.jupyter.org/async-kubespawner-create-id",
    "app",
    "heritage",
    "release",
    "chart",
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/managed-by",
)
_KEY_INDEX = {key: index for index, key in enumerate(KNOWN_KEYS)}
_OWNER_INDEX = _KEY_INDEX[IDENTITY_ANNOTATION]
_SCOPES = ("server", "user", "shared")


def canonical_identity(hub: str, user: str, server: str, scope: str) -> str:
    """The owner annotation exactly as ``ServerIdentity.annotation`` writes it (sorted
    keys, no spaces, ASCII-only), built from its four fields without a dict or an encoder
    object (the cache rebuilds it on every read of a pod)."""
    return (
        f'{{"hub":{encode_basestring_ascii(hub)},"scope":{encode_basestring_ascii(scope)},'
        f'"server":{encode_basestring_ascii(server)},"user":{encode_basestring_ascii(user)},'
        f'"v":{IDENTITY_VERSION}}}'
    )


_OWNER_HEAD = '{"hub":"'
_OWNER_TAIL = f'","v":{IDENTITY_VERSION}}}'


_SCOPE_SEP = '","scope":"'
_SERVER_SEP = '","server":"'
_USER_SEP = '","user":"'


def _plain_owner(raw: str) -> list[str] | None:
    """The fields of a canonical owner annotation whose strings need no escapes (the
    common case), cut out without a JSON parser or a regular expression (both allocate per
    call, which 100,000 pods under heap tracing feel). None: any
    other string, for the general path.

    The caller still checks ``canonical_identity(*fields) == raw``: that comparison, not
    this parse, is what makes the compact form lossless.
    """
    if not (raw.startswith(_OWNER_HEAD) and raw.endswith(_OWNER_TAIL)):
        return None
    if "\\" in raw or not (raw.isascii() and raw.isprintable()):
        return None
    scope_at = raw.find(_SCOPE_SEP, len(_OWNER_HEAD) - 1)
    if scope_at < len(_OWNER_HEAD):
        return None  # absent, or overlapping the head ('{"hub":","scope":...')
    server_at = raw.find(_SERVER_SEP, scope_at + len(_SCOPE_SEP))
    if server_at < 0:
        return None
    user_at = raw.find(_USER_SEP, server_at + len(_SERVER_SEP))
    if user_at < 0 or user_at + len(_USER_SEP) > len(raw) - len(_OWNER_TAIL):
        return None
    scope = raw[scope_at + len(_SCOPE_SEP) : server_at]
    if scope not in _SCOPES:
        return None
    fields = [
        raw[len(_OWNER_HEAD) : scope_at],
        raw[user_at + len(_USER_SEP) : -len(_OWNER_TAIL)],
        raw[server_at + len(_SERVER_SEP) : user_at],
        scope,
    ]
    for field in fields:
        if '"' in field:
            return None
    return fields


#: How many owner annotations each memo below remembers (oldest forgotten first). A
#: spawn's pod is packed once per watch event (about ten in its life) and read back
#: by every wait and poll: the same string, or the same four fields, again and again.
_OWNER_MEMO_SIZE = 2048
#: raw annotation -> what :func:`_compact_owner` makes of it (a tuple of the four fields,
#: or the string itself). Tuples, so a shared result cannot be changed by anyone.
_compacted: dict[str, Any] = {}
#: the four fields -> their canonical annotation (what :func:`_expand_owner` rebuilds).
_expanded: dict[tuple[Any, ...], str] = {}


def _remember(memo: dict[Any, Any], key: Any, value: Any) -> None:
    if len(memo) >= _OWNER_MEMO_SIZE:
        del memo[next(iter(memo))]
    memo[key] = value


def _compact_owner(raw: Any) -> Any:
    """``(hub, user, server, scope)`` when ``raw`` is exactly the canonical annotation of
    those fields; ``raw`` itself when it is any other string; ``[raw]`` for a non-string
    (never from an API server, kept lossless anyway). Strings are memoised: the result
    is a pure function of the string (the proof below runs on every miss)."""
    if not isinstance(raw, str):
        return [raw]
    known = _compacted.get(raw)
    if known is None:
        known = _compact_owner_string(raw)
        _remember(_compacted, raw, known)
    return known


def _compact_owner_string(raw: str) -> Any:
    fields = _plain_owner(raw)
    if fields is not None:
        # The re-encoding is the proof that the fields give back exactly this string.
        return tuple(fields) if canonical_identity(*fields) == raw else raw
    if not raw.startswith('{"hub":'):
        return raw
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw
    if not isinstance(data, dict) or len(data) != 5:
        return raw
    hub, user, server, scope = (data.get(k) for k in ("hub", "user", "server", "scope"))
    if not (
        isinstance(hub, str)
        and isinstance(user, str)
        and isinstance(server, str)
        and scope in _SCOPES
    ):
        return raw
    if canonical_identity(hub, user, server, scope) != raw:
        return raw  # e.g. "v": true, other spacing or escapes: keep the exact string
    return (hub, user, server, scope)


def _expand_owner(stored: Any) -> Any:
    if isinstance(stored, list):
        if len(stored) == 4:
            fields = tuple(stored)
            known = _expanded.get(fields)
            if known is None:
                known = canonical_identity(*fields)
                _remember(_expanded, fields, known)
            return known
        return stored[0]
    return stored


def _compact_map(mapping: Any) -> Any:
    """A label or annotation dict as ``[key-or-index, value, ...]``; anything else
    wrapped as ``{"v": value}`` so the two cannot be confused."""
    if not isinstance(mapping, dict):
        return {"v": mapping}
    out: list[Any] = [None] * (2 * len(mapping))  # one allocation, filled in place
    index_of = _KEY_INDEX.get
    i = 0
    for key, value in mapping.items():
        index = index_of(key)
        if index is None:
            out[i] = key
        else:
            out[i] = index
            if index == _OWNER_INDEX:
                value = _compact_owner(value)
        out[i + 1] = value
        i += 2
    return out


def _expand_map(stored: Any) -> Any:
    if not isinstance(stored, list):
        return stored["v"]
    out: dict[str, Any] = {}
    pairs = iter(stored)
    for key, value in zip(pairs, pairs, strict=True):
        if type(key) is int:
            if key == _OWNER_INDEX:
                value = _expand_owner(value)
            key = KNOWN_KEYS[key]
        out[key] = value
    return out


#: Entry heads (flag, length) made once: no bytes object per entry for them.
_HEADS = {flag: [bytes((flag, n)) for n in range(_LONG)] for flag in (_PLAIN, _COMPACT)}


def _entry(flag: int, rv: str, body: bytes) -> bytes:
    encoded = rv.encode()
    if len(encoded) < _LONG:
        return b"".join((_HEADS[flag][len(encoded)], encoded, body))
    return b"".join((bytes((flag, _LONG)), len(encoded).to_bytes(4, "big"), encoded, body))


def _split(entry: bytes) -> tuple[int, str, int]:
    """(flag, resourceVersion, offset of the JSON)."""
    length = entry[1]
    start = 2
    if length == _LONG:
        length = int.from_bytes(entry[2:6], "big")
        start = 6
    return entry[0], entry[start : start + length].decode(), start + length


def pack_entry(key: Key, rv: str, trimmed: Obj, *, reuse: bool = False) -> bytes:
    """The entry of ``trimmed`` cached under ``key`` at version ``rv``.

    ``reuse``: ``trimmed`` is not used after this call (a list page's items), so its
    metadata is rewritten in place instead of copied.
    """
    meta = trimmed.get("metadata")
    if not isinstance(meta, dict):
        return _entry(_PLAIN, rv, orjson.dumps(trimmed))
    compact = meta if reuse else dict(meta)
    for name, known in (("name", key[1]), ("namespace", key[0]), ("resourceVersion", rv)):
        value = compact.get(name)
        if value == known and isinstance(value, str):
            del compact[name]  # rebuilt from the key / the header on read
    if "labels" in compact:
        compact["labels"] = _compact_map(compact["labels"])
    if "annotations" in compact:
        compact["annotations"] = _compact_map(compact["annotations"])
    if reuse:
        return _entry(_COMPACT, rv, orjson.dumps(trimmed))
    stored = dict(trimmed)
    stored["metadata"] = compact
    return _entry(_COMPACT, rv, orjson.dumps(stored))


def unpack_entry(key: Key, entry: bytes) -> Obj:
    """The trimmed dict ``entry`` was packed from (a fresh one at every call)."""
    flag, rv, start = _split(entry)
    obj: Obj = orjson.loads(memoryview(entry)[start:])
    if flag == _PLAIN:
        return obj
    stored = obj["metadata"]
    meta: dict[str, Any] = {"name": key[1], "namespace": key[0], "resourceVersion": rv}
    meta.update(stored)
    if "labels" in stored:
        meta["labels"] = _expand_map(stored["labels"])
    if "annotations" in stored:
        meta["annotations"] = _expand_map(stored["annotations"])
    obj["metadata"] = meta
    return obj


def entry_version(entry: bytes) -> str:
    """The resourceVersion an entry was packed at, without decoding its JSON."""
    return _split(entry)[1]
