"""Structural OpenAPI v3 schemas of CustomResourceDefinitions: validation, pruning, defaults.

A custom resource is checked against its CRD's schema instead of a built-in validator:
types, required fields, enums, bounds, patterns, list types; unknown fields are pruned
silently (not refused) and ``default`` values filled in, as the real server does.
Messages follow kube-openapi ("spec.size in body must be of type integer: \"string\"").
"""

from __future__ import annotations

import json
import re
from typing import Any

from kubesim.field_errors import (
    Cause,
    duplicate,
    invalid,
    not_supported,
    required,
    too_long,
    type_invalid,
)
from kubesim.json_values import clone_json, json_type

_JSON_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}


def validate_against_schema(schema: dict, obj: Any, path: str = "") -> list[Cause]:
    """Validate a custom resource against its CRD's structural openAPIV3Schema.

    Messages follow kube-openapi's ("spec.size in body must be of type integer: \\"string\\"").
    ``apiVersion``, ``kind`` and ``metadata`` at the root are the server's, not the schema's.
    """
    causes: list[Cause] = []
    _check(schema or {}, obj, path, causes, root=not path)
    return causes


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Plan:
    """What ``_check`` needs from one schema node, read from the dict once.

    Every custom resource write is validated against its CRD's schema; looking the same
    dozen keywords up in every node's dict for every value was most of that cost. The
    plan holds the answers, plus the Python types for which the node checks nothing
    (a plain ``type: string`` property and a string value), so the parent skips them.
    """

    __slots__ = (
        "additional", "children", "embedded", "enum", "int_or_string", "items", "list_checks",
        "list_type", "nullable", "numeric", "object_checks", "open", "properties", "required",
        "schema", "string", "trivial", "type", "type_ok",
    )

    def __init__(self, schema: dict) -> None:
        self.schema = schema
        self.nullable = bool(schema.get("nullable"))
        self.type = schema.get("type")
        self.int_or_string = bool(schema.get("x-kubernetes-int-or-string"))
        expected = self.type
        self.type_ok = _JSON_TYPES.get(expected) if expected else None
        self.enum = schema.get("enum")
        self.numeric = "minimum" in schema or "maximum" in schema
        self.string = "minLength" in schema or "maxLength" in schema or "pattern" in schema
        self.list_checks = "minItems" in schema or "maxItems" in schema
        items = schema.get("items")
        self.items = _Plan(items) if isinstance(items, dict) else None
        self.list_type = schema.get("x-kubernetes-list-type") in ("set", "map")
        self.properties = schema.get("properties") or {}
        # a property whose schema is not an object fails in ``_check`` as it always did
        self.children: dict[str, _Plan | None] = {
            key: _Plan(sub) if isinstance(sub, dict) else None
            for key, sub in self.properties.items()
        }
        self.required = schema.get("required") or []
        self.embedded = schema.get("x-kubernetes-embedded-resource") is True
        additional = schema.get("additionalProperties")
        self.additional = _Plan(additional) if isinstance(additional, dict) else None
        # unknown fields are kept (not pruned, not reported) under this node
        self.open = schema.get("x-kubernetes-preserve-unknown-fields") is True or additional is True
        self.object_checks = "minProperties" in schema or "maxProperties" in schema
        trivial: tuple[type, ...] = ()
        if not self.int_or_string and self.enum is None:
            if expected == "string" and not self.string:
                trivial = (str,)
            elif expected in (None, "") and not (self.numeric or self.string):
                trivial = (str, bool)  # (bool before int: a bool is never "numeric" here)
            elif expected == "boolean":
                trivial = (bool,)
            elif expected in ("integer", "number") and not self.numeric:
                trivial = (int,)
        self.trivial = trivial


# Schemas a write has met, by identity (see ``_DEFAULTS_BELOW`` for why that is safe).
# ``_NO_SCHEMA`` stands for an absent ``items``: nothing declared, everything pruned.
_PLANS: dict[int, tuple[dict, _Plan]] = {}
_PLAN_CACHE_SIZE = 8192


def _plan(schema: dict) -> _Plan:
    cached = _PLANS.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    plan = _Plan(schema)
    if len(_PLANS) >= _PLAN_CACHE_SIZE:
        _PLANS.clear()
    _PLANS[id(schema)] = (schema, plan)
    return plan


_NO_SCHEMA = _Plan({})


def _check(schema: dict, value: Any, path: str, causes: list[Cause], root: bool = False) -> None:
    _run(_plan(schema), value, path, causes, root)


def _run(plan: _Plan, value: Any, path: str, causes: list[Cause], root: bool = False) -> None:
    schema = plan.schema
    if value is None:
        if plan.nullable:
            return
        if plan.type:
            causes.append(
                type_invalid(
                    path, "null", f'{path} in body must be of type {schema["type"]}: "null"'
                )
            )
        return
    if plan.int_or_string:
        if not (isinstance(value, str) or _JSON_TYPES["integer"](value)):
            causes.append(
                type_invalid(
                    path,
                    json_type(value),
                    f'{path} in body must be of type integer,string: "{json_type(value)}"',
                )
            )
            return
    elif plan.type_ok is not None and not plan.type_ok(value):
        causes.append(
            type_invalid(
                path,
                json_type(value),
                f'{path} in body must be of type {plan.type}: "{json_type(value)}"',
            )
        )
        return
    enum = plan.enum
    if enum is not None and value not in enum:
        causes.append(
            not_supported(path, value, [v if isinstance(v, str) else json.dumps(v) for v in enum])
        )
    if plan.numeric and isinstance(value, int | float) and not isinstance(value, bool):
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
    if plan.string and isinstance(value, str):
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
        if plan.list_checks:
            if "minItems" in schema and len(value) < schema["minItems"]:
                causes.append(
                    invalid(
                        path,
                        value,
                        f"{path} in body should have at least {schema['minItems']} items",
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
        items = plan.items
        if items is not None:
            skip = items.trivial
            for index, item in enumerate(value):
                if type(item) in skip:
                    continue
                _run(items, item, f"{path}[{index}]", causes)
        if plan.list_type:
            _check_list_type(schema, value, path, causes)
    if isinstance(value, dict):
        children = plan.children
        for name in plan.required:
            if name not in value:
                causes.append(required(_child(path, name)))
        embedded = root or plan.embedded
        additional = plan.additional
        for key, item in value.items():
            if embedded and key in ("apiVersion", "kind", "metadata"):
                continue
            if key in children:
                sub = children[key]
                if sub is None:
                    _check(plan.properties[key], item, _child(path, key), causes)
                    continue
            elif additional is not None:
                sub = additional
            else:
                continue
            if type(item) in sub.trivial:
                continue
            _run(sub, item, _child(path, key), causes)
        if plan.object_checks:
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


def _check_list_type(schema: dict, value: list, path: str, causes: list[Cause]) -> None:
    """x-kubernetes-list-type set/map: items (or their map keys) must be unique."""
    list_type = schema.get("x-kubernetes-list-type")
    if list_type not in ("set", "map"):
        return
    keys = schema.get("x-kubernetes-list-map-keys") or []
    seen: list[Any] = []
    for index, item in enumerate(value):
        if list_type == "map" and isinstance(item, dict):
            identity: Any = {k: item.get(k) for k in keys}
        else:
            identity = item
        if any(_same_json(identity, other) for other in seen):
            causes.append(duplicate(f"{path}[{index}]", identity))
        else:
            seen.append(identity)


def _same_json(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def apply_schema_defaults(schema: dict, obj: Any) -> None:
    """Fill ``default`` values of a structural schema into ``obj`` in place, as the real
    server does for custom resources when it decodes a request (and when it reads).

    A default applies where the field is absent; nested objects are defaulted after
    their own default (if any) has been applied, so defaults compose. Parts of the
    schema that declare no default anywhere below are not walked at all.
    """
    if not _declares_defaults(schema):
        return
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
                apply_schema_defaults(sub, value)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for item in obj:
            apply_schema_defaults(schema["items"], item)


# Schemas a write has met, by identity, with whether any property below declares a
# default. A CRD's schema is never modified once stored (a change stores a new CRD
# object, and so new schema dicts); each entry keeps its schema alive, so an id cannot
# be reused while cached. Bounded: cleared when full.
_DEFAULTS_BELOW: dict[int, tuple[dict, bool]] = {}
_DEFAULTS_CACHE_SIZE = 8192


def _declares_defaults(schema: dict) -> bool:
    """Whether ``apply_schema_defaults`` could set anything in a value of ``schema``."""
    cached = _DEFAULTS_BELOW.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    properties = schema.get("properties") or {}
    found = any(isinstance(sub, dict) and "default" in sub for sub in properties.values())
    if not found:
        found = any(isinstance(sub, dict) and _declares_defaults(sub) for sub in properties.values())
    for nested in ("additionalProperties", "items"):
        sub = schema.get(nested)
        if not found and isinstance(sub, dict):
            found = _declares_defaults(sub)
    if len(_DEFAULTS_BELOW) >= _DEFAULTS_CACHE_SIZE:
        _DEFAULTS_BELOW.clear()
    _DEFAULTS_BELOW[id(schema)] = (schema, found)
    return found


def prune_unknown(schema: dict, obj: Any, *, root: bool = True, share: bool = False) -> Any:
    """Drop fields the structural schema does not declare, as the real server silently does.

    ``x-kubernetes-preserve-unknown-fields: true`` keeps them; ``additionalProperties``
    describes map values. Returns a new value; ``obj`` is not modified.

    ``share``: the values kept whole (an embedded resource's ``apiVersion``, ``kind`` and
    ``metadata``, preserved unknown fields) are ``obj``'s own instead of deep copies. For
    the store, whose writes own ``obj`` or share those parts with the stored object
    already and never modify them in place: copying the metadata (managedFields and
    all) of every custom resource write was a large part of its cost.
    """
    return _prune(_plan(schema), obj, root, share)


def _prune(plan: _Plan, obj: Any, root: bool, share: bool) -> Any:
    if isinstance(obj, list):
        items = plan.items or _NO_SCHEMA
        return [_prune(items, item, False, share) for item in obj]
    if not isinstance(obj, dict):
        return obj
    children = plan.children
    additional = plan.additional
    embedded = root or plan.embedded
    result: dict[str, Any] = {}
    for key, value in obj.items():
        if embedded and key in ("apiVersion", "kind", "metadata"):
            result[key] = value if share else clone_json(value)
        elif key in children:
            sub = children[key]
            if not isinstance(value, dict | list):
                result[key] = value  # a scalar is kept as it is, whatever its schema
            elif sub is None:  # not a schema: fails as reading one always did
                result[key] = prune_unknown(plan.properties[key], value, root=False, share=share)
            else:
                result[key] = _prune(sub, value, False, share)
        elif additional is not None:
            result[key] = _prune(additional, value, False, share)
        elif plan.open:
            result[key] = value if share else clone_json(value)
    return result


def unknown_schema_fields(schema: dict, obj: Any, path: str = "", *, root: bool = True) -> list[str]:
    """The paths ``prune_unknown`` would drop, named as the real strict decoder names them
    (``spec.extra``, ``spec.items[0].bogus``): what ``fieldValidation`` warns about or
    refuses for a custom resource."""
    found: list[str] = []
    _unknown(_plan(schema), obj, path, root, found)
    return found


def _unknown(plan: _Plan, obj: Any, path: str, root: bool, found: list[str]) -> None:
    if isinstance(obj, list):
        items = plan.items or _NO_SCHEMA
        for i, item in enumerate(obj):
            if isinstance(item, dict | list):
                _unknown(items, item, f"{path}[{i}]", False, found)
        return
    if not isinstance(obj, dict):
        return
    children = plan.children
    additional = plan.additional
    embedded = root or plan.embedded
    for key, value in obj.items():
        if embedded and key in ("apiVersion", "kind", "metadata"):
            continue
        if key in children:
            if not isinstance(value, dict | list):
                continue  # a scalar has no fields to be unknown
            where = f"{path}.{key}" if path else key
            sub = children[key]
            if sub is None:  # not a schema: fails as reading one always did
                found += unknown_schema_fields(plan.properties[key], value, where, root=False)
            else:
                _unknown(sub, value, where, False, found)
        elif additional is not None:
            if isinstance(value, dict | list):
                _unknown(additional, value, f"{path}.{key}" if path else key, False, found)
        elif not plan.open:
            found.append(f"{path}.{key}" if path else key)
