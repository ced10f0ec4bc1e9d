"""clone_json: an independent deep copy of JSON data, scalars shared."""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from kubesim.json_values import clone_json

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=3)
VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=2), inner, max_size=4),
    max_leaves=30,
)


def _containers(value: Any) -> list[Any]:
    found = []
    if isinstance(value, dict | list):
        found.append(value)
        for child in value.values() if isinstance(value, dict) else value:
            found += _containers(child)
    return found


@settings(max_examples=400, deadline=None)
@given(VALUES)
def test_copy_is_equal_and_shares_no_container(value: Any) -> None:
    snapshot = copy.deepcopy(value)
    clone = clone_json(value)
    assert clone == value == snapshot
    originals = {id(c) for c in _containers(value)}
    assert not any(id(c) in originals for c in _containers(clone))
    if isinstance(value, dict):
        assert list(clone) == list(value)  # key order kept


def test_subclasses_become_plain_and_a_repeated_part_is_copied_twice() -> None:
    shared = {"x": [1]}
    value = OrderedDict(a=shared, b=shared, c=(1, 2))
    clone = clone_json(value)
    assert type(clone) is dict
    assert clone["a"] == clone["b"] == shared
    assert clone["a"] is not clone["b"]
    assert clone["c"] is value["c"]  # not JSON: left as it is, as before
