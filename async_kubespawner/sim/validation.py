"""TEMPORARY stand-in until branch sim-pure lands."""

from __future__ import annotations

from typing import Any

from .errors import invalid


def validate_object(
    kind: str, obj: dict[str, Any], old: dict[str, Any] | None = None
) -> list[dict]:
    return []


def validate_against_schema(schema: dict[str, Any], obj: dict[str, Any]) -> list[dict]:
    return []


def invalid_status(kind: str, name: str, causes: list[dict], group: str = "") -> dict:
    return invalid(kind, name, causes, group).status
