"""Watch lines, Event list pages and create responses decoded into only the keys read.

Why: a pod's watch line is 4-40 KB of JSON; parsed whole, each event made hundreds of
dicts and lists that the trim dropped at once (a fifth of the hub's CPU in a burst of
stops). As for list pages (kube/pod_list.py), msgspec decodes into the shapes below and
skips every other key in C. The result is still a plain dict for the same trim, so the
cache cannot change (tests compare both paths). Parsed whole, as before: a line the
shape refuses (an unexpected type), and ``ERROR`` or unknown event types (a ``Status``:
its code decides between a relist and a retry). Event observers see the decoded event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

import msgspec
import orjson

from .pod_list import PodSchema

__all__ = [
    "decode_created_uid",
    "decode_event_list",
    "decode_event_watch_line",
    "decode_pod_watch_line",
]

Obj = dict[str, Any]

#: Event types whose object is one of the watched kind (other types are parsed whole).
_OBJECT_EVENTS = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK"})


class _PodWatchEvent(TypedDict, total=False):
    type: Any
    object: PodSchema | None


class _EventMetadata(TypedDict, total=False):
    name: Any
    namespace: Any
    uid: Any
    resourceVersion: Any
    creationTimestamp: Any


class _InvolvedObject(TypedDict, total=False):
    kind: Any
    name: Any
    namespace: Any
    uid: Any


class _Event(TypedDict, total=False):
    """What :func:`~.cache.trim_event` reads of a Kubernetes Event."""

    metadata: _EventMetadata | None
    involvedObject: _InvolvedObject | None
    reason: Any
    message: Any
    type: Any
    count: Any
    firstTimestamp: Any
    lastTimestamp: Any
    eventTime: Any


class _EventWatchEvent(TypedDict, total=False):
    type: Any
    object: _Event | None


class _EventList(TypedDict, total=False):
    metadata: dict[str, Any] | None
    items: list[_Event] | None


def _watch_line_decoder(shape: type) -> Callable[[bytes], Obj]:
    decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(shape)

    def decode(line: bytes) -> Obj:
        try:
            event: Obj = decoder.decode(line)
        except msgspec.DecodeError:  # a misfit (or broken) line: parsed as before
            whole: Obj = orjson.loads(line)
            return whole
        if event.get("type") not in _OBJECT_EVENTS:  # ERROR (a Status) or unknown
            whole = orjson.loads(line)
            return whole
        return event

    return decode


#: One line of a pod watch: ``{"type", "object"}`` with the object cut to what
#: ``trim_pod`` reads.
decode_pod_watch_line = _watch_line_decoder(_PodWatchEvent)
#: One line of an Event watch, the Event cut to what ``trim_event`` reads.
decode_event_watch_line = _watch_line_decoder(_EventWatchEvent)

_event_list_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(_EventList)


def decode_event_list(raw: bytes) -> Obj:
    """An Event list page: the list's metadata whole, each Event cut to what
    ``trim_event`` reads. Falls back to a full parse for a page that does not fit."""
    try:
        page: Obj = _event_list_decoder.decode(raw)
    except msgspec.DecodeError:
        whole: Obj = orjson.loads(raw)
        return whole
    return page


class _CreatedMetadata(TypedDict, total=False):
    uid: Any


class _Created(TypedDict, total=False):
    metadata: _CreatedMetadata | None


_created_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(_Created)


def decode_created_uid(raw: bytes) -> Obj:
    """A create response as ``{"metadata": {"uid": ...}}``, all ``start()`` reads of it
    (not the few KB of defaults and managed fields); a misfit is parsed whole."""
    try:
        created: Obj = _created_decoder.decode(raw)
    except msgspec.DecodeError:
        whole: Obj = orjson.loads(raw)
        return whole
    return created
