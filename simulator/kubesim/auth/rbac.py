"""The RBAC authorizer: Role, ClusterRole, RoleBinding and ClusterRoleBinding, as the real one.

The rules are the stored objects themselves, read through an index rebuilt when an RBAC
object changes (the store tells us at commit time), and decisions are cached per
(user, groups, request attributes) until the next RBAC change — so the check costs a
dictionary lookup on the hot path. Requests from ``system:masters`` are allowed before
RBAC is consulted, as the real server's privileged-group authorizer does.

Aggregated ClusterRoles (``admin``, ``edit``, ``view``) take the rules of every ClusterRole
their ``aggregationRule`` selects, transitively, when the index is built.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..selectors import parse_label_selector
from .requestinfo import Attributes
from .resources import RBAC_GROUP
from .users import AUTHENTICATED, MASTERS, UserInfo, split_service_account

Rule = dict[str, Any]
_DECISION_CACHE_LIMIT = 16384


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str = ""


# ------------------------------------------------------------------------- rule matching
def _has(values: Any, wanted: str) -> bool:
    return isinstance(values, list) and (wanted in values)


def verb_matches(rule: Rule, verb: str) -> bool:
    verbs = rule.get("verbs") or []
    return "*" in verbs or verb in verbs


def rule_allows(attrs: Attributes, rule: Rule) -> bool:
    """``RuleAllows`` of the real authorizer: verb, group, resource/subresource, name or URL."""
    if not verb_matches(rule, attrs.verb):
        return False
    if not attrs.resource_request:
        for url in rule.get("nonResourceURLs") or []:
            if url == "*" or url == attrs.path:
                return True
            if url.endswith("*") and attrs.path.startswith(url[:-1]):
                return True
        return False
    groups = rule.get("apiGroups") or []
    if "*" not in groups and attrs.api_group not in groups:
        return False
    combined = attrs.combined_resource
    resource_ok = False
    for resource in rule.get("resources") or []:
        if resource == "*" or resource == combined:
            resource_ok = True
            break
        if attrs.subresource and resource == "*/" + attrs.subresource:
            resource_ok = True
            break
    if not resource_ok:
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


# ----------------------------------------------------------------------------- subjects
def applies_to(user: UserInfo, subject: dict[str, Any], namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name", "")
    if kind == "User":
        return user.name == name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        sa_namespace = subject.get("namespace") or namespace
        if not sa_namespace:
            return False
        return split_service_account(user.name) == (sa_namespace, name)
    return False


def describe_subject(subject: dict[str, Any], binding_namespace: str) -> str:
    kind, name = subject.get("kind", ""), subject.get("name", "")
    if kind == "ServiceAccount":
        return f'{kind} "{name}/{subject.get("namespace") or binding_namespace}"'
    return f'{kind} "{name}"'


# --------------------------------------------------------------------------------- index
@dataclass
class _Binding:
    name: str
    namespace: str  # "" for a ClusterRoleBinding
    role_kind: str
    role_name: str
    subjects: list[dict[str, Any]]

    def describe(self, subject: dict[str, Any]) -> str:
        if self.namespace:
            return (
                f'RoleBinding "{self.name}/{self.namespace}" of {self.role_kind} '
                f'"{self.role_name}" to {describe_subject(subject, self.namespace)}'
            )
        return (
            f'ClusterRoleBinding "{self.name}" of {self.role_kind} "{self.role_name}" to '
            f"{describe_subject(subject, '')}"
        )


@dataclass
class RbacIndex:
    """The RBAC objects of one moment, shaped for lookups."""

    cluster_roles: dict[str, list[Rule]] = field(default_factory=dict)
    roles: dict[tuple[str, str], list[Rule]] = field(default_factory=dict)
    cluster_bindings: list[_Binding] = field(default_factory=list)
    bindings: dict[str, list[_Binding]] = field(default_factory=dict)

    def role_rules(self, binding: _Binding) -> tuple[list[Rule] | None, str]:
        """The rules a binding grants, or an error like the real GetRoleReferenceRules."""
        if binding.role_kind == "ClusterRole":
            rules = self.cluster_roles.get(binding.role_name)
            if rules is None:
                return None, f'clusterrole.{RBAC_GROUP} "{binding.role_name}" not found'
            return rules, ""
        if binding.role_kind == "Role":
            rules = self.roles.get((binding.namespace, binding.role_name))
            if rules is None:
                return None, f'role.{RBAC_GROUP} "{binding.role_name}" not found'
            return rules, ""
        return None, f'unsupported role reference kind: "{binding.role_kind}"'

    def applicable(self, user: UserInfo, namespace: str) -> Iterable[tuple[_Binding, dict[str, Any]]]:
        """(binding, first matching subject) for every binding that applies to ``user``,
        ClusterRoleBindings first, then the RoleBindings of ``namespace``."""
        for binding in self.cluster_bindings:
            for subject in binding.subjects:
                if applies_to(user, subject, ""):
                    yield binding, subject
                    break
        if namespace:
            for binding in self.bindings.get(namespace, ()):
                for subject in binding.subjects:
                    if applies_to(user, subject, namespace):
                        yield binding, subject
                        break


def _rules(obj: dict[str, Any]) -> list[Rule]:
    return [r for r in obj.get("rules") or [] if isinstance(r, dict)]


def _aggregate(cluster_roles: dict[str, dict[str, Any]]) -> dict[str, list[Rule]]:
    """Rules of every ClusterRole, with aggregation rules resolved (transitively)."""
    resolved: dict[str, list[Rule]] = {}

    def resolve(name: str, seen: frozenset[str]) -> list[Rule]:
        if name in resolved:
            return resolved[name]
        obj = cluster_roles[name]
        aggregation = obj.get("aggregationRule")
        if not isinstance(aggregation, dict):
            resolved[name] = _rules(obj)
            return resolved[name]
        rules: list[Rule] = []
        for selector in aggregation.get("clusterRoleSelectors") or []:
            labels = _selector_text(selector)
            if labels is None:
                continue
            for other, other_obj in sorted(cluster_roles.items()):
                if other == name or other in seen:
                    continue
                if labels.matches((other_obj.get("metadata") or {}).get("labels") or {}):
                    for rule in resolve(other, seen | {name}):
                        if rule not in rules:
                            rules.append(rule)
        resolved[name] = rules
        return rules

    for name in cluster_roles:
        resolve(name, frozenset())
    return resolved


def _selector_text(selector: Any) -> Any:
    """A LabelSelector object as a parsed selector (matchLabels and matchExpressions)."""
    if not isinstance(selector, dict):
        return None
    terms = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        key, op = expr.get("key", ""), expr.get("operator", "")
        values = ",".join(expr.get("values") or [])
        if op == "In":
            terms.append(f"{key} in ({values})")
        elif op == "NotIn":
            terms.append(f"{key} notin ({values})")
        elif op == "Exists":
            terms.append(key)
        elif op == "DoesNotExist":
            terms.append(f"!{key}")
    try:
        return parse_label_selector(",".join(terms))
    except ValueError:
        return None


def build_index(store: Any) -> RbacIndex:
    """Read every RBAC object from ``store`` into an index."""
    reg = store.registry
    index = RbacIndex()
    cluster_roles = {
        o["metadata"]["name"]: o for o in store.list_refs(reg.lookup("clusterroles", RBAC_GROUP))[0]
    }
    index.cluster_roles = _aggregate(cluster_roles)
    for role in store.list_refs(reg.lookup("roles", RBAC_GROUP))[0]:
        meta = role["metadata"]
        index.roles[(meta.get("namespace", ""), meta["name"])] = _rules(role)
    for kind, plural in (("cluster", "clusterrolebindings"), ("ns", "rolebindings")):
        for obj in store.list_refs(reg.lookup(plural, RBAC_GROUP))[0]:
            meta, ref = obj["metadata"], obj.get("roleRef") or {}
            binding = _Binding(
                name=meta["name"],
                namespace=meta.get("namespace", "") if kind == "ns" else "",
                role_kind=str(ref.get("kind", "")),
                role_name=str(ref.get("name", "")),
                subjects=[s for s in obj.get("subjects") or [] if isinstance(s, dict)],
            )
            if kind == "ns":
                index.bindings.setdefault(binding.namespace, []).append(binding)
            else:
                index.cluster_bindings.append(binding)
    return index


# ---------------------------------------------------------------------------- authorizer
class Authorizer:
    """system:masters, then RBAC; decisions cached until an RBAC object changes."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._index: RbacIndex | None = None
        self._decisions: dict[tuple[Any, ...], Decision] = {}

    def rbac_changed(self) -> None:
        """Called at commit time for every write to an RBAC object."""
        self._index = None
        self._decisions.clear()

    @property
    def index(self) -> RbacIndex:
        if self._index is None:
            self._index = build_index(self.store)
        return self._index

    def authorize(self, user: UserInfo, attrs: Attributes) -> Decision:
        if MASTERS in user.groups:
            return Decision(True)
        key = (user.name, user.groups, attrs)
        decision = self._decisions.get(key)
        if decision is None:
            decision = self._rbac(user, attrs)
            if len(self._decisions) >= _DECISION_CACHE_LIMIT:
                self._decisions.clear()
            self._decisions[key] = decision
        return decision

    def _rbac(self, user: UserInfo, attrs: Attributes) -> Decision:
        index = self.index
        problems: list[str] = []
        for binding, subject in index.applicable(user, attrs.namespace):
            rules, problem = index.role_rules(binding)
            if rules is None:
                problems.append(problem)
                continue
            for rule in rules:
                if rule_allows(attrs, rule):
                    return Decision(True, f"RBAC: allowed by {binding.describe(subject)}")
        if not problems:
            return Decision(False, "")
        joined = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
        return Decision(False, f"RBAC: {joined}")

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[Rule], list[Rule], list[str]]:
        """(resource rules, non-resource rules, problems) for SelfSubjectRulesReview: the
        rules are incomplete when a binding names a role that does not exist."""
        resource: list[Rule] = []
        nonresource: list[Rule] = []
        problems: list[str] = []
        if MASTERS in user.groups:
            resource.append({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]})
            nonresource.append({"verbs": ["*"], "nonResourceURLs": ["*"]})
        index = self.index
        for binding, _subject in index.applicable(user, namespace):
            rules, problem = index.role_rules(binding)
            if rules is None:
                problems.append(problem)
                continue
            for rule in rules:
                if rule.get("nonResourceURLs"):
                    nonresource.append(
                        {"verbs": list(rule.get("verbs") or []), "nonResourceURLs": list(rule["nonResourceURLs"])}
                    )
                else:
                    entry: Rule = {"verbs": list(rule.get("verbs") or [])}
                    for key in ("apiGroups", "resources", "resourceNames"):
                        if rule.get(key):
                            entry[key] = list(rule[key])
                    resource.append(entry)
        return resource, nonresource, problems


# ---------------------------------------------------------------------- default policy
_BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
_AUTOUPDATE = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
_READ = ["get", "list", "watch"]
_WRITE = ["create", "delete", "deletecollection", "patch", "update"]


def _cluster_role(
    name: str,
    rules: list[Rule],
    labels: dict[str, str] | None = None,
    aggregate_from: str | None = None,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "ClusterRole",
        "metadata": {
            "name": name,
            "labels": {**_BOOTSTRAP_LABELS, **(labels or {})},
            "annotations": dict(_AUTOUPDATE),
        },
        "rules": rules,
    }
    if aggregate_from is not None:
        obj["aggregationRule"] = {
            "clusterRoleSelectors": [
                {"matchLabels": {f"rbac.authorization.k8s.io/aggregate-to-{aggregate_from}": "true"}}
            ]
        }
    return obj


def _cluster_binding(name: str, role: str, groups: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {
            "name": name,
            "labels": dict(_BOOTSTRAP_LABELS),
            "annotations": dict(_AUTOUPDATE),
        },
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": g} for g in groups],
    }


def _to(role: str) -> dict[str, str]:
    return {f"rbac.authorization.k8s.io/aggregate-to-{role}": "true"}


DISCOVERY_URLS = [
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/healthz",
    "/livez",
    "/openapi",
    "/openapi/*",
    "/readyz",
    "/version",
    "/version/",
]
PUBLIC_INFO_URLS = ["/healthz", "/livez", "/readyz", "/version", "/version/"]


def default_policy() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(ClusterRoles, ClusterRoleBindings) a real server creates at start, for the kinds
    the simulator serves: what kubectl needs to work for any authenticated user, the
    superuser role bound to ``system:masters``, and the aggregated user-facing roles."""
    roles = [
        _cluster_role(
            "cluster-admin",
            [
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                {"nonResourceURLs": ["*"], "verbs": ["*"]},
            ],
        ),
        _cluster_role("system:discovery", [{"nonResourceURLs": DISCOVERY_URLS, "verbs": ["get"]}]),
        _cluster_role(
            "system:public-info-viewer", [{"nonResourceURLs": PUBLIC_INFO_URLS, "verbs": ["get"]}]
        ),
        _cluster_role(
            "system:basic-user",
            [
                {
                    "apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    "verbs": ["create"],
                },
                {
                    "apiGroups": ["authentication.k8s.io"],
                    "resources": ["selfsubjectreviews"],
                    "verbs": ["create"],
                },
            ],
        ),
        _cluster_role("admin", [], aggregate_from="admin"),
        _cluster_role("edit", [], _to("admin"), aggregate_from="edit"),
        _cluster_role("view", [], _to("edit"), aggregate_from="view"),
        _cluster_role(
            "system:aggregate-to-admin",
            [
                {
                    "apiGroups": [RBAC_GROUP],
                    "resources": ["rolebindings", "roles"],
                    "verbs": [*_WRITE, *_READ],
                },
                {
                    "apiGroups": ["authorization.k8s.io"],
                    "resources": ["localsubjectaccessreviews"],
                    "verbs": ["create"],
                },
            ],
            _to("admin"),
        ),
        _cluster_role(
            "system:aggregate-to-edit",
            [
                {
                    "apiGroups": [""],
                    "resources": ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"],
                    "verbs": _WRITE,
                },
                {
                    "apiGroups": [""],
                    "resources": [
                        "configmaps",
                        "events",
                        "persistentvolumeclaims",
                        "secrets",
                        "serviceaccounts",
                        "services",
                    ],
                    "verbs": _WRITE,
                },
                {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
                {"apiGroups": [""], "resources": ["secrets"], "verbs": _READ},
                {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]},
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": [*_WRITE, *_READ]},
            ],
            _to("edit"),
        ),
        _cluster_role(
            "system:aggregate-to-view",
            [
                {
                    "apiGroups": [""],
                    "resources": [
                        "configmaps",
                        "persistentvolumeclaims",
                        "persistentvolumeclaims/status",
                        "pods",
                        "serviceaccounts",
                        "services",
                        "services/status",
                        "events",
                        "pods/log",
                        "pods/status",
                        "namespaces",
                        "namespaces/status",
                    ],
                    "verbs": _READ,
                },
                {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": _READ},
            ],
            _to("view"),
        ),
    ]
    bindings = [
        _cluster_binding("cluster-admin", "cluster-admin", [MASTERS]),
        _cluster_binding("system:discovery", "system:discovery", [AUTHENTICATED]),
        _cluster_binding("system:basic-user", "system:basic-user", [AUTHENTICATED]),
        _cluster_binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            [AUTHENTICATED, "system:unauthenticated"],
        ),
    ]
    return roles, bindings

