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
"""

from __future__ import annotations

from typing import Any, TypedDict

import msgspec
import orjson

__all__ = ["PodSchema", "decode_list_metadata", "decode_pod_list"]


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


#: The keys of a pod that ``trim_pod`` reads (watch events are decoded with it too).
PodSchema = _Pod


class _PodList(TypedDict, total=False):
    metadata: dict[str, Any] | None
    items: list[_Pod] | None


_decoder = msgspec.json.Decoder(_PodList)


def decode_pod_list(raw: bytes) -> dict[str, Any]:
    """A pod list page as a dict: the list's metadata whole, each item cut to what
    ``trim_pod`` reads. Falls back to a full parse for a page that does not fit."""
    try:
        page: dict[str, Any] = dict(_decoder.decode(raw))
        return page
    except msgspec.DecodeError:  # a misfit (or broken) page: parsed as before
        whole: dict[str, Any] = orjson.loads(raw)
        return whole


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
