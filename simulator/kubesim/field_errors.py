"""Field errors and the 422 Status, built the way apimachinery's field package builds them.

Both object validation and CRD schema validation report problems as causes
``{"reason", "message", "field"}`` whose message text must match the real server's
(``Invalid value: "x": ...``, ``Required value``, ``Duplicate value: "main"``);
``errors.invalid`` wraps them like ``NewInvalid`` does. Kept apart so every validator
speaks with the same voice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

Cause = dict[str, str]


def go_value(value: Any) -> str:
    """Render a bad value the way the real server's field errors do (%q, %d, %t)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return '"null"'
    # Lists and objects are shown as compact JSON (a real 1.36 server says
    # 'Invalid value: ["None"]: may not change once set').
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def invalid(field: str, value: Any, detail: str) -> Cause:
    """FieldValueInvalid: the value is present but wrong."""
    return {
        "reason": "FieldValueInvalid",
        "message": f"Invalid value: {go_value(value)}: {detail}",
        "field": field,
    }


def required(field: str, detail: str = "") -> Cause:
    """FieldValueRequired: the field is missing or empty."""
    message = "Required value" + (f": {detail}" if detail else "")
    return {"reason": "FieldValueRequired", "message": message, "field": field}


def duplicate(field: str, value: Any) -> Cause:
    """FieldValueDuplicate: a name that must be unique in its list is repeated."""
    return {
        "reason": "FieldValueDuplicate",
        "message": f"Duplicate value: {go_value(value)}",
        "field": field,
    }


def not_supported(field: str, value: Any, supported: Iterable[str]) -> Cause:
    """FieldValueNotSupported: the value is not one of an enumeration."""
    listed = ", ".join(json.dumps(s) for s in supported)
    return {
        "reason": "FieldValueNotSupported",
        "message": f"Unsupported value: {go_value(value)}: supported values: {listed}",
        "field": field,
    }


def not_found(field: str, value: Any) -> Cause:
    """FieldValueNotFound: a reference to something that does not exist in the object."""
    return {
        "reason": "FieldValueNotFound",
        "message": f"Not found: {go_value(value)}",
        "field": field,
    }


def too_long(field: str, limit: int) -> Cause:
    """FieldValueTooLong: a size limit in bytes is exceeded."""
    unit = "byte" if limit == 1 else "bytes"
    return {
        "reason": "FieldValueTooLong",
        "message": f"Too long: may not be more than {limit} {unit}",
        "field": field,
    }


def forbidden(field: str, detail: str) -> Cause:
    """FieldValueForbidden: the change is not allowed at all (mostly immutable fields)."""
    return {"reason": "FieldValueForbidden", "message": f"Forbidden: {detail}", "field": field}


def type_invalid(field: str, value: Any, detail: str) -> Cause:
    """FieldValueTypeInvalid: a CRD schema type mismatch."""
    return {
        "reason": "FieldValueTypeInvalid",
        "message": f"Invalid value: {go_value(value)}: {detail}",
        "field": field,
    }
