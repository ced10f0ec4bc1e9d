"""TEMPORARY stand-in until branch sim-pure lands (equality/existence label selectors only)."""

from __future__ import annotations

from typing import Any


class SelectorError(ValueError):
    pass


class LabelSelector:
    def __init__(self, reqs: list[tuple[str, str, str | None]]) -> None:
        self.reqs = reqs

    def matches(self, labels: dict[str, str] | None) -> bool:
        labels = labels or {}
        for key, op, value in self.reqs:
            if op == "=" and labels.get(key) != value:
                return False
            if op == "!=" and labels.get(key) == value:
                return False
            if op == "exists" and key not in labels:
                return False
            if op == "!" and key in labels:
                return False
        return True


def parse_label_selector(text: str) -> LabelSelector:
    reqs: list[tuple[str, str, str | None]] = []
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        if "!=" in part:
            k, v = part.split("!=", 1)
            reqs.append((k.strip(), "!=", v.strip()))
        elif "=" in part:
            k, v = part.replace("==", "=").split("=", 1)
            reqs.append((k.strip(), "=", v.strip()))
        elif part.startswith("!"):
            reqs.append((part[1:].strip(), "!", None))
        else:
            reqs.append((part, "exists", None))
    return LabelSelector(reqs)


class FieldSelector:
    def __init__(self, reqs: list[tuple[str, bool, str]]) -> None:
        self.reqs = reqs

    def matches(self, obj: dict[str, Any]) -> bool:
        for path, eq, value in self.reqs:
            cur: Any = obj
            for p in path.split("."):
                cur = cur.get(p) if isinstance(cur, dict) else None
            if (str(cur or "") == value) != eq:
                return False
        return True


def parse_field_selector(text: str, kind: str) -> FieldSelector:
    reqs = []
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        eq = "!=" not in part
        k, v = part.replace("!=", "=").replace("==", "=").split("=", 1)
        reqs.append((k.strip(), eq, v.strip()))
    return FieldSelector(reqs)
