"""Decoding the few protobuf request bodies kubectl sends, into the JSON shape the store uses.

``kubectl create namespace|configmap|secret|serviceaccount`` use client-go's typed
clients, which send ``application/vnd.kubernetes.protobuf`` (and accept JSON back).
These generators are the first commands of every JupyterHub-on-Kubernetes guide, so the
simulator decodes their bodies; other kinds answer 415 with what to do instead. Only the
wire format and the field numbers of these messages are needed, no generated code.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

from . import errors

MAGIC = b"k8s\x00"
PROTOBUF_CONTENT_TYPE = "application/vnd.kubernetes.protobuf"


class ProtobufError(ValueError):
    pass


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("varint too long")


def fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of each field; length-delimited values are bytes."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = int.from_bytes(data[pos : pos + 8], "little"), pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ProtobufError("truncated length-delimited field")
            value, pos = data[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = int.from_bytes(data[pos : pos + 4], "little"), pos + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        yield number, wire, value


def _map_entry(data: bytes, value_kind: str) -> tuple[str, str]:
    key, value = "", "" if value_kind == "str" else b""
    for number, _wire, raw in fields(data):
        if number == 1:
            key = raw.decode()
        elif number == 2:
            value = raw
    if value_kind == "bytes":
        return key, base64.b64encode(value if isinstance(value, bytes) else b"").decode()
    return key, value.decode() if isinstance(value, bytes) else value


def _object_meta(data: bytes) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    strings = {1: "name", 2: "generateName", 3: "namespace", 5: "uid", 6: "resourceVersion"}
    for number, _wire, raw in fields(data):
        if number in strings:
            if raw:  # Go writes every string field; empty ones decode to "absent"
                meta[strings[number]] = raw.decode()
        elif number in (11, 12):
            k, v = _map_entry(raw, "str")
            meta.setdefault("labels" if number == 11 else "annotations", {})[k] = v
        elif number == 14:
            meta.setdefault("finalizers", []).append(raw.decode())
        # ownerReferences, timestamps and managedFields are not sent by the generators
    return meta


def _namespace(data: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for number, _wire, raw in fields(data):
        if number == 1:
            obj["metadata"] = _object_meta(raw)
        elif number == 2:
            finalizers = [v.decode() for n, _w, v in fields(raw) if n == 1]
            obj["spec"] = {"finalizers": finalizers} if finalizers else {}
    return obj


def _configmap(data: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for number, wire, raw in fields(data):
        if number == 1:
            obj["metadata"] = _object_meta(raw)
        elif number == 2:
            k, v = _map_entry(raw, "str")
            obj.setdefault("data", {})[k] = v
        elif number == 3:
            k, v = _map_entry(raw, "bytes")
            obj.setdefault("binaryData", {})[k] = v
        elif number == 4 and wire == 0:
            obj["immutable"] = bool(raw)
    return obj


def _secret(data: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for number, wire, raw in fields(data):
        if number == 1:
            obj["metadata"] = _object_meta(raw)
        elif number == 2:
            k, v = _map_entry(raw, "bytes")
            obj.setdefault("data", {})[k] = v
        elif number == 3:
            obj["type"] = raw.decode()
        elif number == 4:
            k, v = _map_entry(raw, "str")
            obj.setdefault("stringData", {})[k] = v
        elif number == 5 and wire == 0:
            obj["immutable"] = bool(raw)
    return obj


def _serviceaccount(data: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for number, wire, raw in fields(data):
        if number == 1:
            obj["metadata"] = _object_meta(raw)
        elif number == 4 and wire == 0:
            obj["automountServiceAccountToken"] = bool(raw)
    return obj


DECODERS: dict[str, Callable[[bytes], dict[str, Any]]] = {
    "Namespace": _namespace,
    "ConfigMap": _configmap,
    "Secret": _secret,
    "ServiceAccount": _serviceaccount,
}


def decode_object(body: bytes, expected_kind: str) -> dict[str, Any]:
    """The JSON-shaped object in a protobuf request body (``k8s\\0`` + runtime.Unknown)."""
    if not body.startswith(MAGIC):
        raise errors.bad_request(
            f"the object provided is unrecognized (must be of type {expected_kind}): provided "
            "data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
        )
    api_version = kind = ""
    raw = b""
    try:
        for number, _wire, value in fields(body[len(MAGIC) :]):
            if number == 1:
                for n, _w, v in fields(value):
                    if n == 1:
                        api_version = v.decode()
                    elif n == 2:
                        kind = v.decode()
            elif number == 2:
                raw = value
        decoder = DECODERS.get(kind)
        if decoder is None:
            raise errors.unsupported_media_type_for(
                f"protobuf bodies are decoded only for {', '.join(sorted(DECODERS))}; "
                f"send {kind or expected_kind} as JSON (e.g. kubectl apply -f / create -f)"
            )
        obj = decoder(raw)
    except (ProtobufError, UnicodeDecodeError) as exc:
        raise errors.bad_request(
            f"the object provided is unrecognized (must be of type {expected_kind}): {exc}"
        ) from None
    obj = {"apiVersion": api_version, "kind": kind, **obj}
    obj.setdefault("metadata", {})
    return obj
