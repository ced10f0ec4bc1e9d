"""Defaults and validation of RBAC objects, as the real rbac registry applies them.

A binding whose ``roleRef`` or subjects are malformed would otherwise be stored and then
silently grant nothing (or, worse, something else than meant); a real server refuses it
with 422, and a ``roleRef`` can never change (delete and re-create the binding instead).
"""

from __future__ import annotations

from typing import Any

from ..field_errors import Cause, invalid, not_supported, required

GROUP = "rbac.authorization.k8s.io"
KINDS = frozenset({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})


def default_rbac(kind: str, obj: dict[str, Any]) -> None:
    """The API group defaults of roleRef and of User/Group subjects."""
    if kind not in ("RoleBinding", "ClusterRoleBinding"):
        return
    ref = obj.get("roleRef")
    if isinstance(ref, dict) and not ref.get("apiGroup"):
        ref["apiGroup"] = GROUP
    for subject in obj.get("subjects") or []:
        if isinstance(subject, dict) and subject.get("kind") in ("User", "Group"):
            if not subject.get("apiGroup"):
                subject["apiGroup"] = GROUP


def validate_rbac(kind: str, obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    if kind in ("Role", "ClusterRole"):
        causes: list[Cause] = []
        for i, rule in enumerate(obj.get("rules") or []):
            if isinstance(rule, dict):
                causes += _rule(rule, kind == "Role", f"rules[{i}]")
        return causes
    return _binding(kind, obj, old)


def _rule(rule: dict[str, Any], namespaced: bool, path: str) -> list[Cause]:
    causes: list[Cause] = []
    if not rule.get("verbs"):
        causes.append(required(f"{path}.verbs", "verbs must contain at least one value"))
    urls = rule.get("nonResourceURLs") or []
    if urls:
        if namespaced:
            causes.append(
                invalid(f"{path}.nonResourceURLs", urls, "namespaced rules cannot apply to non-resource URLs")
            )
        if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
            causes.append(
                invalid(
                    f"{path}.nonResourceURLs",
                    urls,
                    "rules cannot apply to both regular resources and non-resource URLs",
                )
            )
        return causes
    if not rule.get("apiGroups"):
        causes.append(required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
    if not rule.get("resources"):
        causes.append(required(f"{path}.resources", "resource rules must supply at least one resource"))
    return causes


def _binding(kind: str, obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    causes: list[Cause] = []
    raw_ref = obj.get("roleRef")
    ref: dict[str, Any] = raw_ref if isinstance(raw_ref, dict) else {}
    if ref.get("apiGroup") != GROUP:
        causes.append(not_supported("roleRef.apiGroup", ref.get("apiGroup", ""), [GROUP]))
    kinds = ["ClusterRole", "Role"] if kind == "RoleBinding" else ["ClusterRole"]
    if ref.get("kind") not in kinds:
        causes.append(not_supported("roleRef.kind", ref.get("kind", ""), kinds))
    if not ref.get("name"):
        causes.append(required("roleRef.name"))
    for i, subject in enumerate(obj.get("subjects") or []):
        if not isinstance(subject, dict):
            continue
        path = f"subjects[{i}]"
        if not subject.get("name"):
            causes.append(required(f"{path}.name"))
        subject_kind = subject.get("kind")
        if subject_kind == "ServiceAccount":
            if subject.get("apiGroup"):
                causes.append(not_supported(f"{path}.apiGroup", subject["apiGroup"], [""]))
            if kind == "ClusterRoleBinding" and not subject.get("namespace"):
                causes.append(required(f"{path}.namespace"))
        elif subject_kind in ("User", "Group"):
            if subject.get("apiGroup") != GROUP:
                causes.append(not_supported(f"{path}.apiGroup", subject.get("apiGroup", ""), [GROUP]))
        else:
            causes.append(not_supported(f"{path}.kind", subject_kind or "", ["Group", "ServiceAccount", "User"]))
    if old is not None and isinstance(old.get("roleRef"), dict) and old["roleRef"] != obj.get("roleRef"):
        causes.append(invalid("roleRef", obj.get("roleRef"), "cannot change roleRef"))
    return causes
