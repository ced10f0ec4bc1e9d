"""Structural-schema shortcuts give exactly what walking the whole schema gives.

``apply_schema_defaults`` skips the parts of a schema that declare no default below;
these compare it with the plain walk (kept here as the reference) over generated
schemas and objects, including defaults that are objects with defaults of their own.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from kubesim.json_values import clone_json
from kubesim.structural_schema import apply_schema_defaults

KEYS = st.sampled_from(["a", "b", "c", "spec", "items"])
SCALARS = st.none() | st.integers(-3, 3) | st.sampled_from(["x", "y"]) | st.booleans()
VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=12,
)


def _schemas() -> st.SearchStrategy[dict[str, Any]]:
    def extend(inner: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries({}, optional={
            "type": st.sampled_from(["object", "array", "string"]),
            "properties": st.dictionaries(KEYS, inner, max_size=3),
            "additionalProperties": inner | st.booleans(),
            "items": inner,
            "default": VALUES,
        })

    leaf = st.fixed_dictionaries({}, optional={"type": st.just("string"), "default": VALUES})
    return st.recursive(leaf, extend, max_leaves=10)


def _reference_defaults(schema: dict, obj: Any) -> None:
    """The plain walk: every property of every object, whatever the schema declares."""
    if isinstance(obj, dict):
        properties = schema.get("properties") or {}
        for key, sub in properties.items():
            if key not in obj and isinstance(sub, dict) and "default" in sub:
                obj[key] = clone_json(sub["default"])
        for key, value in obj.items():
            sub = properties.get(key)
            if sub is None and isinstance(schema.get("additionalProperties"), dict):
                sub = schema["additionalProperties"]
            if isinstance(sub, dict):
                _reference_defaults(sub, value)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for item in obj:
            _reference_defaults(schema["items"], item)


@settings(max_examples=500, deadline=None)
@given(_schemas(), VALUES)
def test_defaults_equal_the_plain_walk(schema: dict[str, Any], obj: Any) -> None:
    expected = copy.deepcopy(obj)
    _reference_defaults(schema, expected)
    actual = copy.deepcopy(obj)
    apply_schema_defaults(schema, actual)
    assert actual == expected
    apply_schema_defaults(schema, actual)  # answered from the cache the second time
    assert actual == expected


def test_default_deep_below_a_default_free_level() -> None:
    schema = {"properties": {"spec": {"properties": {"list": {"items": {
        "properties": {"inner": {"properties": {"mode": {"default": "safe"}}}}}}}}}}
    obj = {"spec": {"list": [{"inner": {}}, {"inner": {"mode": "fast"}}, {}]}}
    apply_schema_defaults(schema, obj)
    assert obj == {"spec": {"list": [{"inner": {"mode": "safe"}}, {"inner": {"mode": "fast"}}, {}]}}


def test_schema_without_defaults_leaves_the_object_alone() -> None:
    schema = {"properties": {"spec": {"properties": {"a": {"type": "string"}}}}}
    obj = {"spec": {"a": "x"}}
    apply_schema_defaults(schema, obj)
    assert obj == {"spec": {"a": "x"}}
