"""Access reviews, rules reviews and impersonation: what ``kubectl auth can-i`` relies on."""

from __future__ import annotations

from typing import Any

from kubesim.testing import run_simulator

from .conftest import RBAC, Caller, account, binding

AUTHZ = "/apis/authorization.k8s.io/v1"
NS = "team"
USER = "system:serviceaccount:team:hub"
PODS_READ = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]


def ssar(**attributes: str) -> dict[str, Any]:
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    }


async def test_self_subject_access_review(admin: Caller) -> None:
    hub = admin.as_token(await account(admin.sim, NS, "hub", PODS_READ))
    status, body = await hub("POST", f"{AUTHZ}/selfsubjectaccessreviews", ssar(namespace=NS, verb="list", resource="pods"))
    assert status == 201
    assert body["kind"] == "SelfSubjectAccessReview"
    assert body["spec"] == {"resourceAttributes": {"namespace": NS, "verb": "list", "resource": "pods"}}
    assert body["status"] == {
        "allowed": True,
        "reason": f'RBAC: allowed by RoleBinding "hub-test-rules/{NS}" of Role "hub-test-rules" '
        f'to ServiceAccount "hub/{NS}"',
    }
    status, body = await hub("POST", f"{AUTHZ}/selfsubjectaccessreviews", ssar(namespace=NS, verb="delete", resource="pods"))
    assert body["status"] == {"allowed": False}
    status, body = await hub(
        "POST",
        f"{AUTHZ}/selfsubjectaccessreviews",
        {"spec": {"nonResourceAttributes": {"path": "/version", "verb": "get"}}},
    )
    assert body["status"]["allowed"] is True
    assert body["status"]["reason"].startswith('RBAC: allowed by ClusterRoleBinding "system:')
    status, body = await hub("POST", f"{AUTHZ}/selfsubjectaccessreviews", {"spec": {}})
    assert status == 422
    assert body["message"] == (
        'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: '
        "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified"
    )
    # the admin is allowed by its group, before RBAC: no reason given
    status, body = await admin("POST", f"{AUTHZ}/selfsubjectaccessreviews", ssar(verb="delete", resource="nodes"))
    assert body["status"] == {"allowed": True}


async def test_subject_access_reviews_need_the_right(admin: Caller) -> None:
    hub = admin.as_token(await account(admin.sim, NS, "hub", PODS_READ))
    review = {"spec": {"user": USER, "groups": ["system:serviceaccounts"], "resourceAttributes": {"namespace": NS, "verb": "get", "resource": "pods"}}}
    status, body = await admin("POST", f"{AUTHZ}/subjectaccessreviews", review)
    assert status == 201 and body["status"]["allowed"] is True
    status, body = await hub("POST", f"{AUTHZ}/subjectaccessreviews", review)
    assert status == 403
    assert body["message"] == (
        f'subjectaccessreviews.authorization.k8s.io is forbidden: User "{USER}" cannot create '
        'resource "subjectaccessreviews" in API group "authorization.k8s.io" at the cluster scope'
    )
    status, body = await admin("POST", f"{AUTHZ}/subjectaccessreviews", {"spec": {"resourceAttributes": {"verb": "get"}}})
    assert status == 422 and "at least one of user or group must be specified" in body["message"]
    # LocalSubjectAccessReview: the namespace of the URL and of the attributes must agree
    local = {"spec": {"user": USER, "resourceAttributes": {"namespace": NS, "verb": "list", "resource": "pods"}}}
    status, body = await admin("POST", f"{AUTHZ}/namespaces/{NS}/localsubjectaccessreviews", local)
    assert status == 201 and body["status"]["allowed"] is True
    assert body["metadata"]["namespace"] == NS
    status, body = await admin("POST", f"{AUTHZ}/namespaces/default/localsubjectaccessreviews", local)
    assert status == 422 and "must match metadata.namespace" in body["message"]


async def test_self_subject_rules_review(admin: Caller) -> None:
    hub = admin.as_token(await account(admin.sim, NS, "hub", PODS_READ))
    status, body = await hub("POST", f"{AUTHZ}/selfsubjectrulesreviews", {"spec": {"namespace": NS}})
    assert status == 201
    rules = body["status"]["resourceRules"]
    assert {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]} in rules
    assert {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]} in rules
    assert {"verbs": ["get"], "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"]} in body["status"]["nonResourceRules"]
    assert body["status"]["incomplete"] is False
    status, body = await hub("POST", f"{AUTHZ}/selfsubjectrulesreviews", {"spec": {"namespace": "default"}})
    assert {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]} not in body["status"]["resourceRules"]
    # a binding to a missing role makes the answer incomplete, and says why
    await admin(
        "POST",
        f"/apis/{RBAC}/namespaces/{NS}/rolebindings",
        binding(NS, "dangling", "Role", "missing", [{"kind": "ServiceAccount", "name": "hub"}]),
    )
    status, body = await hub("POST", f"{AUTHZ}/selfsubjectrulesreviews", {"spec": {"namespace": NS}})
    assert body["status"]["incomplete"] is True
    assert body["status"]["evaluationError"] == 'role.rbac.authorization.k8s.io "missing" not found'


async def test_reviews_only_take_create(admin: Caller) -> None:
    status, body = await admin("GET", f"{AUTHZ}/selfsubjectaccessreviews")
    assert status == 405 and body["reason"] == "MethodNotAllowed"


async def test_reviews_without_authentication_allow_everything() -> None:
    import aiohttp

    async with run_simulator() as sim, aiohttp.ClientSession() as http:
        caller = Caller(sim, http, None)
        status, body = await caller("POST", f"{AUTHZ}/selfsubjectaccessreviews", ssar(verb="delete", resource="nodes"))
        assert status == 201 and body["status"] == {"allowed": True}


async def test_impersonation_needs_the_impersonate_verb(admin: Caller) -> None:
    hub = admin.as_token(await account(admin.sim, NS, "hub", PODS_READ))
    # the admin may impersonate: the request runs as the account, with its groups
    status, body = await admin(
        "GET", "/api/v1/nodes", headers={"Impersonate-User": USER}
    )
    assert status == 403 and body["message"].startswith(f'nodes is forbidden: User "{USER}"')
    status, _ = await admin("GET", f"/api/v1/namespaces/{NS}/pods", headers={"Impersonate-User": USER})
    assert status == 200
    status, body = await admin(
        "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", {},
        headers={"Impersonate-User": "jane", "Impersonate-Group": "devs"},
    )
    assert body["status"]["userInfo"] == {"username": "jane", "groups": ["devs", "system:authenticated"]}
    # the account may not impersonate anyone
    status, body = await hub("GET", "/api/v1/nodes", headers={"Impersonate-User": "jane"})
    assert status == 403
    assert body["message"] == (
        f'users "jane" is forbidden: User "{USER}" cannot impersonate resource "users" in API '
        'group "" at the cluster scope'
    )
    status, body = await hub(
        "GET", "/api/v1/nodes", headers={"Impersonate-User": "system:serviceaccount:kube-system:x"}
    )
    assert body["message"] == (
        f'serviceaccounts "x" is forbidden: User "{USER}" cannot impersonate resource '
        '"serviceaccounts" in API group "" in the namespace "kube-system"'
    )
    # ... until a role grants it, for one name
    await admin(
        "POST",
        f"/apis/{RBAC}/clusterroles",
        {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": "be-jane"},
         "rules": [{"apiGroups": [""], "resources": ["users"], "resourceNames": ["jane"], "verbs": ["impersonate"]}]},
    )
    await admin(
        "POST",
        f"/apis/{RBAC}/clusterrolebindings",
        binding(None, "be-jane", "ClusterRole", "be-jane", [{"kind": "ServiceAccount", "name": "hub", "namespace": NS}]),
    )
    status, body = await hub("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", {}, headers={"Impersonate-User": "jane"})
    assert status == 201 and body["status"]["userInfo"]["username"] == "jane"
    status, _ = await hub("GET", "/api/v1/nodes", headers={"Impersonate-User": "joe"})
    assert status == 403


async def test_discovery_lists_the_auth_apis(admin: Caller) -> None:
    bodies = {}
    for path in ("/api/v1", AUTHZ, "/apis/rbac.authorization.k8s.io", f"/apis/{RBAC}"):
        status, bodies[path] = await admin("GET", path)
        assert status == 200, path
    (token,) = [r for r in bodies["/api/v1"]["resources"] if r["name"] == "serviceaccounts/token"]
    assert (token["kind"], token["verbs"]) == ("TokenRequest", ["create"])
    assert {r["name"]: r["verbs"] for r in bodies[AUTHZ]["resources"]} == {
        "localsubjectaccessreviews": ["create"],
        "selfsubjectaccessreviews": ["create"],
        "selfsubjectrulesreviews": ["create"],
        "subjectaccessreviews": ["create"],
    }
    assert bodies["/apis/rbac.authorization.k8s.io"]["preferredVersion"]["groupVersion"] == RBAC
    assert sorted(r["name"] for r in bodies[f"/apis/{RBAC}"]["resources"]) == [
        "clusterrolebindings", "clusterroles", "rolebindings", "roles",
    ]
