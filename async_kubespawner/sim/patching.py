"""TEMPORARY stand-in until branch sim-pure lands."""

from __future__ import annotations

import copy
from typing import Any


class PatchError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


def apply_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = apply_merge_patch(out.get(k), v)
    return out


def apply_json_patch(target: Any, ops: list[dict[str, Any]]) -> Any:
    raise PatchError(415, "UnsupportedMediaType", "json patch pending sim-pure")


def apply_strategic_merge_patch(target: Any, patch: Any, kind: str) -> Any:
    return apply_merge_patch(target, patch)
