"""Field errors and the 422 Status, built the way apimachinery's field package builds them.

Both object validation and CRD schema validation report problems as causes
``{"reason", "message", "field"}`` whose message text must match the real server's
(``Invalid value: "x": ...``, ``Required value``, ``Duplicate value: "main"``), and
``invalid_status`` wraps them like ``NewInvalid`` does. Kept apart so every validator
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


def invalid_status(kind: str, name: str, causes: list[Cause], group: str = "") -> dict[str, Any]:
    """The 422 ``Status`` body, built like apimachinery's NewInvalid (message dedups causes)."""
    qualified = f"{kind}.{group}" if group else kind
    seen: list[str] = []
    for cause in causes:
        text = f"{cause['field']}: {cause['message']}"
        if text not in seen:
            seen.append(text)
    if not seen:
        message = f"{qualified} {json.dumps(name)} is invalid"
    elif len(seen) == 1:
        message = f"{qualified} {json.dumps(name)} is invalid: {seen[0]}"
    else:
        message = f"{qualified} {json.dumps(name)} is invalid: [{', '.join(seen)}]"
    details: dict[str, Any] = {"name": name} if name else {}  # Go omits an empty name
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = [dict(c) for c in causes]
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Invalid",
        "details": details,
        "code": 422,
    }
