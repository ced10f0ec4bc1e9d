"""The body nesting limit holds at exactly the same boundary with the fast check.

``nested_deeper_than`` answers from orjson's indented output and only walks the value
when that output cannot rule depth out; these pin it to the plain walk (the reference)
for every shape: at, just under and just over the limit, empty and non-empty innermost
containers, keys that look like JSON, and values orjson refuses.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kubesim.decoding import MAX_BODY_DEPTH, _walk_deeper_than, nested_deeper_than

# Keys and strings that imitate the indented output's own syntax.
TRICKY = st.sampled_from(['"', "\\", '": {', "\n" + " " * 8 + "[", "{", "[", "a", "", "\ud800"])
TEXT = TRICKY | st.text(max_size=4)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | TEXT
VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=25,
)


def _chain(depth: int, innermost: Any, *, key: str = "k") -> Any:
    """``depth`` nested containers (alternating object/array) around ``innermost``."""
    value = innermost
    for level in range(depth):
        value = {key: value} if level % 2 else [value]
    return value


@settings(max_examples=600, deadline=None)
@given(VALUES, st.integers(min_value=-1, max_value=8))
def test_fast_check_agrees_with_the_walk(value: Any, limit: int) -> None:
    assert nested_deeper_than(value, limit) is _walk_deeper_than(value, limit)


@pytest.mark.parametrize("innermost", [1, "x", {}, [], {"a": 1}, [1], None])
@pytest.mark.parametrize("key", ["k", '": [', "\\", "\n  {"])
def test_boundary_is_exactly_the_limit(innermost: Any, key: str) -> None:
    extra = 1 if isinstance(innermost, dict | list) else 0
    for depth in range(MAX_BODY_DEPTH - 3, MAX_BODY_DEPTH + 4):
        value = _chain(depth - extra, innermost, key=key)
        expected = depth > MAX_BODY_DEPTH
        assert _walk_deeper_than(value, MAX_BODY_DEPTH) is expected, depth
        assert nested_deeper_than(value, MAX_BODY_DEPTH) is expected, depth


def test_deep_value_beside_shallow_siblings() -> None:
    for depth in (MAX_BODY_DEPTH, MAX_BODY_DEPTH + 1):
        value = {"metadata": {"name": "x"}, "a": [1, {"b": 2}], "z": _chain(depth - 2, {})}
        assert nested_deeper_than(value, MAX_BODY_DEPTH) is (depth > MAX_BODY_DEPTH)


def test_values_orjson_refuses_are_walked() -> None:
    too_big = 2**70
    assert nested_deeper_than({"n": too_big}, 1) is False
    assert nested_deeper_than({"n": [too_big]}, 1) is True
    assert nested_deeper_than({1: {"a": 1}}, 1) is True  # a non-string key
    assert nested_deeper_than(_chain(400, 1), 300) is True  # past orjson's own depth limit
    assert nested_deeper_than(_chain(400, 1), 400) is False


def test_tuples_are_leaves_as_in_the_walk() -> None:
    """orjson writes a tuple as an array; the walk does not count it, nor may the check."""
    value = {"a": ((("deep",),),)}
    assert nested_deeper_than(value, 1) is False
    assert nested_deeper_than(value, 0) is True


def test_scalars_are_never_too_deep() -> None:
    for scalar in (None, 1, "x", 1.5, True):
        assert nested_deeper_than(scalar, 0) is False
