"""A request body is encoded once, and the fast path for plain data sends the same bytes
as the converting walk (``to_json``) would."""

from __future__ import annotations

import datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubernetes_asyncio.client import V1Container, V1EnvVar, V1ObjectMeta, V1Pod, V1PodSpec

from async_kubespawner.kube.client import encode_body, to_json

_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=10)
    | st.datetimes(timezones=st.none() | st.just(datetime.UTC))
    | st.dates()
)
_json_like = st.recursive(
    _leaves,
    lambda inner: st.lists(inner, max_size=4)
    | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=6), _json_like, max_size=5))
def test_plain_data_encodes_as_the_converting_walk_does(body: dict) -> None:
    assert encode_body(body) == orjson.dumps(to_json(body))


def _pod() -> V1Pod:
    return V1Pod(
        api_version="v1",
        kind="Pod",
        metadata=V1ObjectMeta(name="jupyter-alice", labels={"a": "b"}),
        spec=V1PodSpec(
            containers=[V1Container(name="notebook", image="i", env=[V1EnvVar(name="A", value="1")])]
        ),
    )


def test_models_anywhere_are_converted() -> None:
    pod = _pod()
    assert encode_body(pod) == orjson.dumps(to_json(pod))
    nested = {"items": [pod], "when": datetime.datetime(2026, 1, 2, 3, 4, 5)}
    encoded = encode_body(nested)
    assert encoded is not None
    assert orjson.loads(encoded) == {
        "items": [to_json(pod)],
        "when": "2026-01-02T03:04:05",
    }


def test_bytes_and_none_pass_through() -> None:
    assert encode_body(b'{"a":1}') == b'{"a":1}'
    assert encode_body(None) is None


def test_what_cannot_be_sent_is_refused() -> None:
    with pytest.raises(TypeError):
        encode_body({"a": object()})
