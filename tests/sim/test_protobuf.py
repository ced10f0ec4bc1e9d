"""The protobuf body decoder against hand-encoded messages."""

from __future__ import annotations

import pytest
from kubesim.errors import StatusError
from kubesim.protobuf import MAGIC, decode_object


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return varint(number << 3) + varint(payload)
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def entry(key: str, value: bytes) -> bytes:
    return field(1, key.encode()) + field(2, value)


def envelope(kind: str, raw: bytes) -> bytes:
    type_meta = field(1, b"v1") + field(2, kind.encode())
    return MAGIC + field(1, type_meta) + field(2, raw) + field(4, b"application/vnd.kubernetes.protobuf")


def test_secret_with_labels_and_binary_data():
    meta = field(1, b"s") + field(11, entry("app", b"hub")) + field(14, b"example.com/keep")
    raw = field(1, meta) + field(2, entry("bin", b"\x00\xff")) + field(3, b"Opaque") + field(5, 1)
    obj = decode_object(envelope("Secret", raw), "Secret")
    assert obj == {"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": "s", "labels": {"app": "hub"},
                                "finalizers": ["example.com/keep"]},
                   "data": {"bin": "AP8="}, "type": "Opaque", "immutable": True}


def test_configmap_and_namespace():
    cm = decode_object(envelope("ConfigMap", field(1, field(1, b"c")) + field(2, entry("k", b"v"))),
                       "ConfigMap")
    assert cm["data"] == {"k": "v"} and cm["metadata"] == {"name": "c"}
    ns = decode_object(envelope("Namespace", field(1, field(1, b"n")) + field(2, field(1, b"kubernetes"))),
                       "Namespace")
    assert ns["spec"] == {"finalizers": ["kubernetes"]}


def test_unsupported_kind_and_garbage():
    with pytest.raises(StatusError) as info:
        decode_object(envelope("Pod", field(1, field(1, b"p"))), "Pod")
    assert info.value.code == 415 and "send Pod as JSON" in info.value.status["message"]
    with pytest.raises(StatusError) as info:
        decode_object(b'{"json": true}', "Secret")
    assert info.value.code == 400 and "expected prefix [107 56 115 0]" in info.value.status["message"]
    with pytest.raises(StatusError) as info:
        decode_object(MAGIC + b"\x12\x7f", "Secret")
    assert info.value.code == 400 and "truncated" in info.value.status["message"]
