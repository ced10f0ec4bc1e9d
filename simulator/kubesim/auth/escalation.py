"""RBAC's escalation check: nobody grants permissions they do not hold.

Without it, anyone allowed to create a Role and a RoleBinding could give themselves
everything; a real server refuses a Role (or ClusterRole) with rules its author does not
hold, unless the author may ``escalate`` on it, and a binding to a role whose rules its
author does not hold, unless the author may ``bind`` that role. ``system:masters`` holds
everything.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import yaml
from aiohttp import web

from .. import errors
from ..errors import StatusError
from ..protobuf import PROTOBUF_CONTENT_TYPE, decode_object
from .requestinfo import Attributes
from .resources import RBAC_GROUP
from .users import MASTERS, UserInfo

if TYPE_CHECKING:
    from . import Auth

Rule = dict[str, Any]
_KINDS = {"roles": "Role", "clusterroles": "ClusterRole", "rolebindings": "RoleBinding",
          "clusterrolebindings": "ClusterRoleBinding"}
_PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
}


def _atoms(rule: Rule) -> list[Rule]:
    """A rule broken into single-verb, single-resource rules (BreakdownRule)."""
    out: list[Rule] = []
    verbs = rule.get("verbs") or []
    for group in rule.get("apiGroups") or []:
        for resource in rule.get("resources") or []:
            for verb in verbs:
                names = rule.get("resourceNames") or []
                if names:
                    out += [
                        {"apiGroups": [group], "resources": [resource], "verbs": [verb], "resourceNames": [n]}
                        for n in names
                    ]
                else:
                    out.append({"apiGroups": [group], "resources": [resource], "verbs": [verb]})
    for url in rule.get("nonResourceURLs") or []:
        out += [{"nonResourceURLs": [url], "verbs": [verb]} for verb in verbs]
    return out


def _covers_resource(owned: list[str], wanted: str) -> bool:
    if "*" in owned or wanted in owned:
        return True
    _, slash, sub = wanted.partition("/")
    return bool(slash) and f"*/{sub}" in owned


def _covers_url(owned: list[str], wanted: str) -> bool:
    return any(o == wanted or (o.endswith("*") and wanted.startswith(o[:-1])) for o in owned)


def _rule_covers(owner: Rule, atom: Rule) -> bool:
    verbs = owner.get("verbs") or []
    if "*" not in verbs and atom["verbs"][0] not in verbs:
        return False
    if "nonResourceURLs" in atom:
        return _covers_url(owner.get("nonResourceURLs") or [], atom["nonResourceURLs"][0])
    groups = owner.get("apiGroups") or []
    if "*" not in groups and atom["apiGroups"][0] not in groups:
        return False
    if not _covers_resource(owner.get("resources") or [], atom["resources"][0]):
        return False
    names = owner.get("resourceNames") or []
    if "resourceNames" not in atom:
        return not names
    return not names or atom["resourceNames"][0] in names


def missing(owner_rules: list[Rule], rules: list[Rule]) -> list[Rule]:
    return [a for r in rules for a in _atoms(r) if not any(_rule_covers(o, a) for o in owner_rules)]


def _go_strings(values: list[str]) -> str:
    return "[" + " ".join(json.dumps(v) for v in values) + "]"


def _compact(atoms: list[Rule]) -> list[str]:
    """Missing rights as the real message lists them: verbs merged per resource, sorted."""
    merged: dict[tuple[Any, ...], Rule] = {}
    for atom in atoms:
        key = (tuple(atom.get("apiGroups", ())), tuple(atom.get("resources", ())),
               tuple(atom.get("nonResourceURLs", ())), tuple(atom.get("resourceNames", ())))
        if key in merged and not atom.get("resourceNames") and not atom.get("nonResourceURLs"):
            if atom["verbs"][0] not in merged[key]["verbs"]:
                merged[key]["verbs"].append(atom["verbs"][0])
        elif key in merged:
            merged[(*key, len(merged))] = {**atom, "verbs": list(atom["verbs"])}
        else:
            merged[key] = {**atom, "verbs": list(atom["verbs"])}
    texts = []
    for rule in merged.values():
        parts = []
        for field, label in (("apiGroups", "APIGroups"), ("resources", "Resources"),
                             ("nonResourceURLs", "NonResourceURLs"), ("resourceNames", "ResourceNames"),
                             ("verbs", "Verbs")):
            if rule.get(field):
                parts.append(f"{label}:{_go_strings(rule[field])}")
        texts.append("{" + ", ".join(parts) + "}")
    return sorted(set(texts))


def _refused(plural: str, name: str, user: UserInfo, atoms: list[Rule]) -> StatusError:
    groups = _go_strings(list(user.groups))
    detail = (
        f'user "{user.name}" (groups={groups}) is attempting to grant RBAC permissions not '
        "currently held:\n" + "\n".join(_compact(atoms))
    )
    return StatusError(
        errors.status_body(
            403,
            "Forbidden",
            f'{plural}.{RBAC_GROUP} "{name}" is forbidden: {detail}',
            {"name": name, "group": RBAC_GROUP, "kind": plural},
        )
    )


async def _new_state(
    auth: Auth, request: web.Request, plural: str, namespace: str | None, name: str | None, verb: str
) -> dict[str, Any] | None:
    """The object the request would leave behind, or None when it cannot be read here
    (the request then fails on its own, with its own error)."""
    raw = await request.read()  # aiohttp keeps the body: the handler reads it again
    try:
        if verb == "patch":
            patch_type = _PATCH_TYPES.get(request.content_type)
            if patch_type is None:
                return None
            rt = auth.store.registry.lookup(plural, RBAC_GROUP)
            return await auth.store.patch(rt, namespace, name or "", json.loads(raw), patch_type, dry_run=True)
        if request.content_type == PROTOBUF_CONTENT_TYPE:
            return decode_object(raw, _KINDS[plural])
        body = yaml.safe_load(raw) if request.content_type == "application/yaml" else json.loads(raw)
    except (StatusError, ValueError, yaml.YAMLError):
        return None
    return body if isinstance(body, dict) else None


async def check(
    auth: Auth, request: web.Request, plural: str, namespace: str | None, name: str | None, verb: str
) -> None:
    """Raise the real 403 when the write would grant its author more than they hold."""
    user = auth.user_of(request)
    if MASTERS in user.groups or plural not in _KINDS:
        return
    obj = await _new_state(auth, request, plural, namespace, name, verb)
    if obj is None:
        return
    obj_name = name or str((obj.get("metadata") or {}).get("name", ""))
    ns = namespace or ""
    authorizer = auth.authorizer
    if plural in ("roles", "clusterroles"):
        escalate = Attributes("escalate", True, "", RBAC_GROUP, "", ns, plural, "", obj_name)
        if authorizer.authorize(user, escalate).allowed:
            return
        rules = [r for r in obj.get("rules") or [] if isinstance(r, dict)]
    else:
        raw_ref = obj.get("roleRef")
        ref: dict[str, Any] = raw_ref if isinstance(raw_ref, dict) else {}
        role_plural = "roles" if ref.get("kind") == "Role" else "clusterroles"
        bind = Attributes("bind", True, "", RBAC_GROUP, "", ns, role_plural, "", str(ref.get("name", "")))
        if authorizer.authorize(user, bind).allowed:
            return
        from .rbac import _Binding

        granted, problem = authorizer.index.role_rules(
            _Binding(obj_name, ns, str(ref.get("kind", "")), str(ref.get("name", "")), [])
        )
        if granted is None:
            raise StatusError(
                errors.status_body(
                    403, "Forbidden", f'{plural}.{RBAC_GROUP} "{obj_name}" is forbidden: {problem}',
                    {"name": obj_name, "group": RBAC_GROUP, "kind": plural},
                )
            )
        rules = granted
    owner_rules, nonresource, _problems = authorizer.rules_for(user, ns)
    lacking = missing(owner_rules + nonresource, rules)
    if lacking:
        raise _refused(plural, obj_name, user, lacking)
