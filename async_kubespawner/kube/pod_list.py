"""Parse a page of a pod list into only the keys :func:`~.cache.trim_pod` reads.

Why: a pod as listed is 4-40 KB of JSON (env, volumes, managedFields, probes), parsed into
hundreds of Python objects that the trim drops a moment later. A hub restarting with
5,000 pods spent most of its first list allocating and freeing them (and several times
as long with heap tracing on, as in the memory benchmark). msgspec decodes straight into
the shape below and skips every other key without making an object for it: the same
page parses ~6x faster and allocates a fraction.

Why it cannot change what the cache holds: the result is still a plain dict, handed to
the same :func:`~.cache.trim_pod`; the schema lists every key that function reads (a
test compares both paths on full pods), and a page that does not fit the schema (a value
of an unexpected type) is parsed whole instead, as before.

The same holds for the other payloads decoded here: watch lines of pods and Events
(parsed whole, a pod's were a fifth of the hub's CPU in a burst of stops), Event list
pages and the create response of a pod. Also parsed whole: ``ERROR`` events and unknown
event types (a ``Status``, whose code decides between a relist and a retry). Event
observers of the reflector see the decoded event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

import msgspec
import orjson

__all__ = [
    "decode_created_uid",
    "decode_event_list",
    "decode_event_watch_line",
    "decode_list_metadata",
    "decode_pod_list",
    "decode_pod_watch_line",
]

Obj = dict[str, Any]
#: What the decoders take: a whole payload, or a watch line as a view of its chunk.
Raw = bytes | memoryview


class _Metadata(TypedDict, total=False):
    name: Any
    namespace: Any
    uid: Any
    resourceVersion: Any
    deletionTimestamp: Any
    labels: dict[str, Any] | None
    annotations: dict[str, Any] | None


class _Port(TypedDict, total=False):
    name: Any
    containerPort: Any


class _Container(TypedDict, total=False):
    name: Any
    ports: list[_Port] | None


class _Spec(TypedDict, total=False):
    containers: list[_Container] | None
    nodeName: Any


class _Condition(TypedDict, total=False):
    type: Any
    status: Any
    reason: Any
    message: Any


class _StateDetail(TypedDict, total=False):
    reason: Any
    message: Any
    exitCode: Any
    signal: Any


class _ContainerStatus(TypedDict, total=False):
    name: Any
    ready: Any
    restartCount: Any
    state: dict[str, _StateDetail | None] | None
    lastState: dict[str, _StateDetail | None] | None


class _Status(TypedDict, total=False):
    phase: Any
    podIP: Any
    reason: Any
    message: Any
    conditions: list[_Condition] | None
    containerStatuses: list[_ContainerStatus] | None
    initContainerStatuses: list[_ContainerStatus] | None


class _Pod(TypedDict, total=False):
    metadata: _Metadata | None
    spec: _Spec | None
    status: _Status | None


class _PodList(TypedDict, total=False):
    metadata: dict[str, Any] | None
    items: list[_Pod] | None


def _typed_or_whole(shape: type) -> Callable[[Raw], Obj]:
    """A decoder of ``shape`` that parses a misfit (or broken) payload whole instead."""
    decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(shape)

    def decode(raw: Raw) -> Obj:
        try:
            typed: Obj = decoder.decode(raw)
        except msgspec.DecodeError:
            whole: Obj = orjson.loads(raw)
            return whole
        return typed

    return decode


#: A pod list page: the list's metadata whole, each item cut to what ``trim_pod`` reads.
decode_pod_list = _typed_or_whole(_PodList)


class _ListHead(TypedDict, total=False):
    metadata: dict[str, Any] | None


_head_decoder = msgspec.json.Decoder(_ListHead)


def decode_list_metadata(raw: bytes) -> dict[str, Any]:
    """A list page's own metadata (resourceVersion, continue) without building its items:
    the reflector asks for the next page with it before parsing this one."""
    try:
        head = _head_decoder.decode(raw)
    except msgspec.DecodeError:
        head = _ListHead(metadata=orjson.loads(raw).get("metadata"))
    return head.get("metadata") or {}


#: Event types whose object is one of the watched kind (other types are parsed whole).
_OBJECT_EVENTS = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK"})


class _PodWatchEvent(TypedDict, total=False):
    type: Any
    object: _Pod | None


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


def _watch_line_decoder(shape: type) -> Callable[[Raw], Obj]:
    typed = _typed_or_whole(shape)

    def decode(line: Raw) -> Obj:
        event = typed(line)
        if isinstance(event, dict) and event.get("type") not in _OBJECT_EVENTS:
            whole: Obj = orjson.loads(line)  # ERROR (a Status) or unknown: all of it
            return whole
        return event

    return decode


#: One line of a pod watch: ``{"type", "object"}`` with the object cut to what
#: ``trim_pod`` reads.
decode_pod_watch_line = _watch_line_decoder(_PodWatchEvent)
#: One line of an Event watch, the Event cut to what ``trim_event`` reads.
decode_event_watch_line = _watch_line_decoder(_EventWatchEvent)

#: An Event list page, each Event cut to what ``trim_event`` reads.
decode_event_list = _typed_or_whole(_EventList)


class _CreatedMetadata(TypedDict, total=False):
    uid: Any


class _Created(TypedDict, total=False):
    metadata: _CreatedMetadata | None


#: A create response as ``{"metadata": {"uid": ...}}``, all ``start()`` reads of it (not
#: the few KB of defaults and managed fields of the pod).
decode_created_uid = _typed_or_whole(_Created)
