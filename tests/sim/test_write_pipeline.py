"""A write type-checks its object once: ``decode`` does it, defaulting and validation
trust it when the store says so, and stay safe for callers that have not decoded."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from kubesim import decoding, defaulting, validation
from kubesim.defaulting import default_object
from kubesim.errors import StatusError
from kubesim.store import Store, dumps
from kubesim.validation import validate_object

POD = {"metadata": {"name": "p", "labels": {"app": "nb"}},
       "spec": {"containers": [{"name": "c", "image": "img:1", "env": [{"name": "A", "value": None}]}]}}


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    s = Store()
    yield s
    await s.close()


@pytest.fixture
def type_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every ``check_types`` call made through any of the modules that import it."""
    calls: list[str] = []
    real = decoding.check_types

    def counting(kind: str, obj: Any) -> bool:
        calls.append(kind)
        return real(kind, obj)

    for module in (decoding, defaulting, validation):
        monkeypatch.setattr(module, "check_types", counting)
    return calls


async def test_each_store_write_type_checks_once(store: Store, type_checks: list[str]) -> None:
    pods = store.resource("pods")
    created = await store.create(pods, "default", POD)
    assert type_checks == ["Pod"]
    assert created["spec"]["containers"][0]["env"] == [{"name": "A"}]  # the null was dropped
    type_checks.clear()
    await store.patch(pods, "default", "p", {"metadata": {"labels": {"b": "c"}}}, "strategic")
    assert type_checks == ["Pod"]
    type_checks.clear()
    body = store.get(pods, "default", "p")
    body["metadata"]["labels"] = {"d": "e"}
    replaced = await store.replace(pods, "default", "p", body)
    assert type_checks == ["Pod"]
    assert replaced["metadata"]["labels"] == {"d": "e"}


async def test_invalid_write_still_refused_after_one_pass(store: Store, type_checks: list[str]) -> None:
    pods = store.resource("pods")
    bad = {"metadata": {"name": "q"}, "spec": {"containers": [{"name": "c", "image": ""}]}}
    with pytest.raises(StatusError) as info:
        await store.create(pods, "default", bad)
    assert info.value.code == 422
    assert [c["field"] for c in info.value.status["details"]["causes"]] == [
        "spec.containers[0].image"]
    assert type_checks == ["Pod"]


def _allocate() -> str:
    return "10.96.0.9"


@pytest.mark.parametrize("call", [
    lambda obj: default_object("Pod", obj, allocate_cluster_ip=_allocate),
    lambda obj: validate_object("Pod", obj),
])
def test_direct_callers_are_still_type_checked(call: Callable[[dict], Any]) -> None:
    """Without ``decoded=True`` a body that does not decode is no crash."""
    undecodable = {"metadata": {"name": "p"}, "spec": {"containers": "not a list"}}
    result = call(undecodable)
    if result is not None:  # validation reports the decode error as its single cause
        assert len(result) == 1 and "cannot unmarshal" in result[0]["message"]
    assert undecodable["spec"] == {"containers": "not a list"}  # defaulting left it alone


def test_direct_validation_ignores_nulls_like_decoding() -> None:
    with_nulls: dict[str, Any] = {
        "metadata": {"name": "p", "labels": None},
        "spec": {"containers": [{"name": "c", "image": "i", "ports": None}]},
    }
    assert validate_object("Pod", with_nulls) == []
    assert with_nulls["metadata"]["labels"] is None  # the caller's object is not modified


def test_serialised_json_is_compact_utf8_and_takes_integers_beyond_64_bits():
    """The fast encoder refuses integers past 64 bits; a client can still store one (a
    ConfigMap-like free-form field), and reading it back must not be a server error."""
    assert dumps({"a": "é", "b": [1, 2.5]}) == '{"a":"é","b":[1,2.5]}'.encode()
    assert dumps({"big": 2**70}) == b'{"big":1180591620717411303424}'
