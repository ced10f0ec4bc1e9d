"""Decode watch events (and Event list pages, and create responses) into only the keys
the hub reads.

Why: a pod's watch line is 4-40 KB of JSON (env, volumes, probes, managedFields). Parsed
whole, each event became hundreds of dicts and lists that the cache's trim dropped a
moment later; in a burst of 1,000 spawns that parse was a fifth of the hub's CPU, and
its short-lived containers drove the collector's young generations, whose promotions
set off the full collections that were the longest event-loop steps. msgspec decodes
straight into the shapes below and skips every other key in C without making an object
for it.

Why it cannot change what the cache holds: the result is still a plain dict, handed to
the same trim function (:func:`~.cache.trim_pod`, :func:`~.cache.trim_event`); each shape
lists every key that function reads (tests compare both paths on recorded API responses,
simulator pods and generated ones). Anything the shapes do not fit is parsed whole, as
before:

- a line whose object has an unexpected type somewhere in the kept keys (the decoder
  refuses it);
- an ``ERROR`` event (its object is a ``Status``: code, reason, message) and any event
  type the reflector does not apply as an object change.

Event observers (instrumentation) see the decoded event, so for these kinds they see
only the kept keys (a pod's conditions are all there: the trim filters them).
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

#: Event types whose object is a (possibly partial) object of the watched kind. Any other
#: (``ERROR``, or a type a future server adds) is parsed whole and left to the reflector.
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
    decoder = msgspec.json.Decoder(shape)

    def decode(line: bytes) -> Obj:
        try:
            event: Obj = decoder.decode(line)
        except msgspec.DecodeError:  # a misfit (or broken) line: parsed as before
            whole: Obj = orjson.loads(line)
            return whole
        if event.get("type") not in _OBJECT_EVENTS:
            # ERROR (a Status: its code decides between a relist and a retry) or an
            # unknown type: whatever the reflector reads of it is there.
            whole = orjson.loads(line)
            return whole
        return event

    decode.__doc__ = f"A watch line of {shape.__name__}'s object, with only the kept keys."
    return decode


#: One line of a pod watch: ``{"type", "object"}`` with the object cut to what
#: ``trim_pod`` reads.
decode_pod_watch_line = _watch_line_decoder(_PodWatchEvent)
#: One line of an Event watch, the Event cut to what ``trim_event`` reads.
decode_event_watch_line = _watch_line_decoder(_EventWatchEvent)

_event_list_decoder = msgspec.json.Decoder(_EventList)


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


_created_decoder = msgspec.json.Decoder(_Created)


def decode_created_uid(raw: bytes) -> Obj:
    """A create response as ``{"metadata": {"uid": ...}}``: all that ``start()`` reads of
    the pod it created, without parsing the whole pod (a few KB of defaults and managed
    fields per spawn). A response that does not fit is parsed whole."""
    try:
        created: Obj = _created_decoder.decode(raw)
    except msgspec.DecodeError:
        whole: Obj = orjson.loads(raw)
        return whole
    return created
