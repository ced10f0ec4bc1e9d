"""Structural-schema shortcuts give exactly what walking the whole schema gives.

``apply_schema_defaults`` skips the parts of a schema that declare no default below, and
validation reads each schema node's keywords once into a plan and skips values a node
cannot fault; these compare both with the plain walks (kept here as the references) over
generated schemas and objects: same defaults, same causes in the same order.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kubesim.field_errors import (
    Cause,
    invalid,
    not_supported,
    required,
    too_long,
    type_invalid,
)
from kubesim.json_values import clone_json, json_type
from kubesim.structural_schema import (
    _JSON_TYPES,
    _check_list_type,
    _child,
    apply_schema_defaults,
    prune_unknown,
    unknown_schema_fields,
    validate_against_schema,
)

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


def _reference_check(schema: dict, value: Any, path: str, causes: list[Cause], root: bool = False) -> None:
    """The validator as it read every keyword from the schema dict at every value."""
    if value is None:
        if schema.get("nullable"):
            return
        if schema.get("type"):
            causes.append(
                type_invalid(
                    path, "null", f'{path} in body must be of type {schema["type"]}: "null"'
                )
            )
        return
    expected = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        if not (isinstance(value, str) or _JSON_TYPES["integer"](value)):
            causes.append(
                type_invalid(
                    path,
                    json_type(value),
                    f'{path} in body must be of type integer,string: "{json_type(value)}"',
                )
            )
            return
    elif expected and not _JSON_TYPES.get(expected, lambda v: True)(value):
        causes.append(
            type_invalid(
                path,
                json_type(value),
                f'{path} in body must be of type {expected}: "{json_type(value)}"',
            )
        )
        return
    enum = schema.get("enum")
    if enum is not None and value not in enum:
        causes.append(
            not_supported(path, value, [v if isinstance(v, str) else json.dumps(v) for v in enum])
        )
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema:
            exclusive = schema.get("exclusiveMinimum") is True
            if value < schema["minimum"] or (exclusive and value == schema["minimum"]):
                word = "greater than" if exclusive else "greater than or equal to"
                causes.append(
                    invalid(path, value, f"{path} in body should be {word} {schema['minimum']}")
                )
        if "maximum" in schema:
            exclusive = schema.get("exclusiveMaximum") is True
            if value > schema["maximum"] or (exclusive and value == schema["maximum"]):
                word = "less than" if exclusive else "less than or equal to"
                causes.append(
                    invalid(path, value, f"{path} in body should be {word} {schema['maximum']}")
                )
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            causes.append(
                invalid(
                    path,
                    value,
                    f"{path} in body should be at least {schema['minLength']} chars long",
                )
            )
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            causes.append(too_long(path, schema["maxLength"]))
        if "pattern" in schema and not re.search(schema["pattern"], value):
            causes.append(
                invalid(path, value, f"{path} in body should match '{schema['pattern']}'")
            )
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            causes.append(
                invalid(
                    path, value, f"{path} in body should have at least {schema['minItems']} items"
                )
            )
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            causes.append(
                {
                    "reason": "FieldValueTooMany",
                    "message": f"Too many: {len(value)}: must have at most {schema['maxItems']} items",
                    "field": path,
                }
            )
        items = schema.get("items")
        if isinstance(items, dict):
            for index, item in enumerate(value):
                _reference_check(items, item, f"{path}[{index}]", causes)
        _check_list_type(schema, value, path, causes)
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for name in schema.get("required") or []:
            if name not in value:
                causes.append(required(_child(path, name)))
        for key, item in value.items():
            embedded = root or schema.get("x-kubernetes-embedded-resource") is True
            if embedded and key in ("apiVersion", "kind", "metadata"):
                continue
            if key in properties:
                _reference_check(properties[key], item, _child(path, key), causes)
            elif isinstance(schema.get("additionalProperties"), dict):
                _reference_check(schema["additionalProperties"], item, _child(path, key), causes)
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            causes.append(
                invalid(
                    path,
                    value,
                    f"{path} in body should have at least {schema['minProperties']} properties",
                )
            )
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            causes.append(
                invalid(
                    path,
                    value,
                    f"{path} in body should have at most {schema['maxProperties']} properties",
                )
            )




def _validation_schemas() -> st.SearchStrategy[dict[str, Any]]:
    keywords: dict[str, st.SearchStrategy[Any]] = {
        "type": st.sampled_from(["object", "array", "string", "integer", "number", "boolean", "", "odd"]),
        "nullable": st.booleans(),
        "x-kubernetes-int-or-string": st.booleans(),
        "enum": st.lists(SCALARS | st.lists(SCALARS, max_size=1), max_size=3),
        "minimum": st.integers(-2, 2) | st.floats(-2, 2),
        "maximum": st.integers(-2, 2),
        "exclusiveMinimum": st.booleans(),
        "exclusiveMaximum": st.booleans(),
        "minLength": st.integers(0, 2),
        "maxLength": st.integers(0, 2),
        "pattern": st.sampled_from(["^x", "y$", "."]),
        "minItems": st.integers(0, 2),
        "maxItems": st.integers(0, 2),
        "x-kubernetes-list-type": st.sampled_from(["set", "map", "atomic"]),
        "x-kubernetes-list-map-keys": st.lists(KEYS, max_size=2),
        "required": st.lists(KEYS, max_size=2),
        "minProperties": st.integers(0, 2),
        "maxProperties": st.integers(0, 3),
        "x-kubernetes-embedded-resource": st.booleans(),
    }
    leaf = st.fixed_dictionaries({}, optional=keywords)

    def extend(inner: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries({}, optional={
            **keywords,
            "properties": st.dictionaries(KEYS | st.sampled_from(["kind", "metadata"]), inner,
                                          max_size=3),
            "additionalProperties": inner | st.booleans(),
            "items": inner,
        })

    return st.recursive(leaf, extend, max_leaves=12)


OBJECT_VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS | st.floats(-3, 3) | st.sampled_from(["xy", "", "yx"]),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(KEYS | st.sampled_from(["kind", "metadata"]), inner, max_size=3),
    max_leaves=14,
)


@settings(max_examples=1500, deadline=None)
@given(_validation_schemas(), OBJECT_VALUES, st.sampled_from(["", "spec"]))
def test_validation_equals_the_plain_walk(schema: dict[str, Any], obj: Any, path: str) -> None:
    expected: list[Cause] = []
    _reference_check(schema or {}, obj, path, expected, root=not path)
    assert validate_against_schema(schema, obj, path) == expected
    assert validate_against_schema(schema, obj, path) == expected  # plans now cached


def test_validation_of_a_realistic_resource() -> None:
    schema = {"type": "object", "required": ["spec"], "properties": {
        "spec": {"type": "object", "properties": {
            "size": {"type": "integer", "minimum": 1},
            "name": {"type": "string", "pattern": "^[a-z]+$"},
            "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        }},
    }}
    obj = {"metadata": {"name": 5}, "spec": {"size": 0, "name": "A", "tags": ["a", "a", 3],
                                             "labels": {"x": 1, "y": "z"}}}
    expected: list[Cause] = []
    _reference_check(schema, obj, "", expected, root=True)
    assert validate_against_schema(schema, obj) == expected
    assert [c["field"] for c in expected] == [
        "spec.size", "spec.name", "spec.tags[2]", "spec.tags[1]", "spec.labels.x"]


def _reference_prune(schema: dict, obj: Any, *, root: bool = True, share: bool = False) -> Any:
    """Pruning as it read every keyword from the schema dict at every value."""
    if isinstance(obj, list):
        declared = schema.get("items")
        items = declared if isinstance(declared, dict) else {}
        return [_reference_prune(items, item, root=False, share=share) for item in obj]
    if not isinstance(obj, dict):
        return obj
    properties = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
    result: dict[str, Any] = {}
    for key, value in obj.items():
        embedded = root or schema.get("x-kubernetes-embedded-resource") is True
        if embedded and key in ("apiVersion", "kind", "metadata"):
            result[key] = value if share else clone_json(value)
        elif key in properties:
            result[key] = _reference_prune(properties[key], value, root=False, share=share)
        elif isinstance(additional, dict):
            result[key] = _reference_prune(additional, value, root=False, share=share)
        elif preserve or additional is True:
            result[key] = value if share else clone_json(value)
    return result


def _reference_unknown(schema: dict, obj: Any, path: str = "", *, root: bool = True) -> list[str]:
    """Unknown-field paths as they were found by reading the schema dict at every value."""
    found: list[str] = []
    if isinstance(obj, list):
        raw_items = schema.get("items")
        items: dict[str, Any] = raw_items if isinstance(raw_items, dict) else {}
        for i, item in enumerate(obj):
            found += _reference_unknown(items, item, f"{path}[{i}]", root=False)
        return found
    if not isinstance(obj, dict):
        return found
    properties = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
    embedded = root or schema.get("x-kubernetes-embedded-resource") is True
    for key, value in obj.items():
        where = f"{path}.{key}" if path else key
        if embedded and key in ("apiVersion", "kind", "metadata"):
            continue
        if key in properties:
            found += _reference_unknown(properties[key], value, where, root=False)
        elif isinstance(additional, dict):
            found += _reference_unknown(additional, value, where, root=False)
        elif not (preserve or additional is True):
            found.append(where)
    return found


def _pruning_schemas() -> st.SearchStrategy[dict[str, Any]]:
    flags = {
        "x-kubernetes-preserve-unknown-fields": st.booleans(),
        "x-kubernetes-embedded-resource": st.booleans(),
        "type": st.sampled_from(["object", "array", "string"]),
    }

    def extend(inner: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries({}, optional={
            **flags,
            "properties": st.dictionaries(KEYS | st.sampled_from(["kind", "metadata"]), inner,
                                          max_size=3),
            "additionalProperties": inner | st.booleans(),
            "items": inner,
        })

    return st.recursive(st.fixed_dictionaries({}, optional=flags), extend, max_leaves=12)


@settings(max_examples=1000, deadline=None)
@given(_pruning_schemas(), OBJECT_VALUES, st.booleans(), st.booleans())
def test_pruning_and_unknown_fields_equal_the_plain_walks(
    schema: dict[str, Any], obj: Any, root: bool, share: bool
) -> None:
    snapshot = copy.deepcopy(obj)
    expected = _reference_prune(schema, obj, root=root)
    assert prune_unknown(schema, obj, root=root, share=share) == expected
    assert obj == snapshot
    for path in ("", "spec"):
        assert unknown_schema_fields(schema, obj, path, root=root) == _reference_unknown(
            schema, obj, path, root=root)


def test_a_property_whose_schema_is_not_an_object_fails_as_before() -> None:
    schema: dict[str, Any] = {"properties": {"a": ["not", "a", "schema"]}}
    assert prune_unknown(schema, {"a": 1}) == _reference_prune(schema, {"a": 1}) == {"a": 1}
    assert unknown_schema_fields(schema, {"a": 1}) == []
    with pytest.raises(AttributeError):
        prune_unknown(schema, {"a": {}})
    with pytest.raises(AttributeError):
        unknown_schema_fields(schema, {"a": {}})
