"""The simulator keeps its own copy of the quantity grammar; it must agree with the spawner's."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubesim import quantity_grammar as sim_grammar

from async_kubespawner.kube import quantity as hub_grammar

SAMPLES = [
    "1", "0", "500m", "1Gi", "1.5Gi", "1e3", "1E-3", "+2", "-1", ".5", "5.", "1Ki", "10M",
    "1k", "1K", "1.0.0", "", " 1", "1 ", "lots", "1gi", "1ii", "1e", "0x10", "1_000",
    "1Mi1", "--1", 3, 2.5, True, None, ["1"],
]


def _outcome(module: object, value: object) -> tuple[str, Decimal | None]:
    try:
        return ("ok", module.parse_quantity(value))  # type: ignore[attr-defined]
    except module.QuantityError as exc:  # type: ignore[attr-defined]
        return (str(exc), None)


@pytest.mark.parametrize("value", SAMPLES, ids=repr)
def test_both_copies_accept_refuse_and_value_the_same(value: object) -> None:
    assert _outcome(sim_grammar, value) == _outcome(hub_grammar, value)


@given(st.text(alphabet="0123456789.+-eEKMGTPikmnu ", max_size=8))
def test_both_copies_agree_on_random_strings(value: str) -> None:
    assert _outcome(sim_grammar, value) == _outcome(hub_grammar, value)


def test_the_copies_are_the_same_code() -> None:
    def body(path: str) -> str:
        text = open(path).read()
        return text[text.index('"""', 3) + 3 :]

    assert body(sim_grammar.__file__) == body(hub_grammar.__file__)
