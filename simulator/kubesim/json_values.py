"""Decoded JSON values (dicts, lists, strings, numbers, booleans, None) as the simulator holds them.

Every layer that hands data across the store boundary copies it, and several error
messages name the JSON type of a value the request got wrong. Both live here once, so
the store, the patch engines, the decoder and the schema checks cannot drift apart: the
type is classified in one place and then named in the vocabulary of the Go component
whose message the simulator reproduces.
"""

from __future__ import annotations

from typing import Any

# The scalar types JSON decodes to: immutable, so a copy shares them.
_LEAVES = frozenset({str, int, float, bool, type(None)})


def clone_json(value: Any) -> Any:
    """A deep copy of JSON data, several times faster than ``copy.deepcopy``.

    Scalars are immutable, so only dicts and lists are rebuilt (subclasses of either
    become plain ones). Most values of an object are scalars, so they are taken as they
    are without a call each.
    """
    cls = type(value)
    if cls is dict:
        return {k: v if type(v) in _LEAVES else clone_json(v) for k, v in value.items()}
    if cls is list:
        return [v if type(v) in _LEAVES else clone_json(v) for v in value]
    if isinstance(value, dict):
        return {k: clone_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone_json(v) for v in value]
    return value


def json_type(value: Any) -> str:
    """The JSON Schema / OpenAPI type name of ``value``, as kube-openapi's validation
    messages print it: null, boolean, integer, number, string, array or object."""
    if isinstance(value, bool):  # before int: bool is an int subclass in Python
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


# Go's encoding/json has one number type and calls booleans "bool" in UnmarshalTypeError.
_GO_UNMARSHAL_NAMES = {"boolean": "bool", "integer": "number"}

# The dynamic type encoding/json gives a value decoded into an interface{} (what %T prints).
_GO_DYNAMIC_TYPES = {
    "null": "<nil>",
    "boolean": "bool",
    "integer": "float64",
    "number": "float64",
    "string": "string",
    "array": "[]interface {}",
    "object": "map[string]interface {}",
}


def go_unmarshal_type(value: Any) -> str:
    """How Go's encoding/json names ``value``'s JSON type in "json: cannot unmarshal X
    into Go value of type T" (bool, number, string, array, object, null)."""
    name = json_type(value)
    return _GO_UNMARSHAL_NAMES.get(name, name)


def go_dynamic_type(value: Any) -> str:
    """The Go type ``value`` has after encoding/json decoded it into an ``interface{}``,
    for messages that print it (``float64``, ``map[string]interface {}``, ...)."""
    return _GO_DYNAMIC_TYPES[json_type(value)]


def mapping(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one: validators read fields of a
    section that a bad body may have given another type (which decoding reports)."""
    return value if isinstance(value, dict) else {}
