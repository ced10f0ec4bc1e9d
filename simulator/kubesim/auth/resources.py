"""The API types of authentication and authorization, registered next to the built-ins.

RBAC objects (Role, ClusterRole and their bindings) are stored like any object; the
review kinds (SubjectAccessReview and friends, TokenReview) and the ``serviceaccounts/
token`` subresource are create-only and never stored: ``kubesim.auth.endpoints`` answers
them. They are listed in discovery so that kubectl finds them (``kubectl auth can-i``).
"""

from __future__ import annotations

from ..resources import ResourceType

RBAC_GROUP = "rbac.authorization.k8s.io"
AUTHZ_GROUP = "authorization.k8s.io"
AUTHN_GROUP = "authentication.k8s.io"


def _rbac(plural: str, kind: str, namespaced: bool) -> ResourceType:
    return ResourceType(
        group=RBAC_GROUP,
        version="v1",
        plural=plural,
        kind=kind,
        namespaced=namespaced,
        singular=kind.lower(),
    )


def _review(group: str, plural: str, kind: str, namespaced: bool = False) -> ResourceType:
    return ResourceType(
        group=group,
        version="v1",
        plural=plural,
        kind=kind,
        namespaced=namespaced,
        singular=kind.lower(),
        verbs=("create",),
    )


#: ServiceAccount again, with the TokenRequest subresource (replaces the plain built-in).
SERVICE_ACCOUNT = ResourceType(
    group="",
    version="v1",
    plural="serviceaccounts",
    kind="ServiceAccount",
    namespaced=True,
    singular="serviceaccount",
    short_names=("sa",),
    subresources=frozenset({"token"}),
    storage_version_hash="pbx9ZvyFpBE=",
)

AUTH_TYPES: tuple[ResourceType, ...] = (
    SERVICE_ACCOUNT,
    _rbac("clusterrolebindings", "ClusterRoleBinding", False),
    _rbac("clusterroles", "ClusterRole", False),
    _rbac("rolebindings", "RoleBinding", True),
    _rbac("roles", "Role", True),
    _review(AUTHZ_GROUP, "localsubjectaccessreviews", "LocalSubjectAccessReview", True),
    _review(AUTHZ_GROUP, "selfsubjectaccessreviews", "SelfSubjectAccessReview"),
    _review(AUTHZ_GROUP, "selfsubjectrulesreviews", "SelfSubjectRulesReview"),
    _review(AUTHZ_GROUP, "subjectaccessreviews", "SubjectAccessReview"),
    _review(AUTHN_GROUP, "selfsubjectreviews", "SelfSubjectReview"),
    _review(AUTHN_GROUP, "tokenreviews", "TokenReview"),
)

#: (group, plural) of the kinds answered by ``endpoints`` rather than stored.
REVIEW_KEYS = frozenset(
    (rt.group, rt.plural) for rt in AUTH_TYPES if rt.verbs == ("create",)
)
RBAC_KEYS = frozenset(
    (RBAC_GROUP, p) for p in ("roles", "clusterroles", "rolebindings", "clusterrolebindings")
)

__all__ = ["AUTH_TYPES", "RBAC_KEYS", "REVIEW_KEYS", "SERVICE_ACCOUNT"]
