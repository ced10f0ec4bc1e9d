"""The RBAC authorizer: every verb, scopes, subresources, names, groups, URLs, the 403 bodies."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import RBAC, Caller, account, binding, role

NS = "team"
USER = "system:serviceaccount:team:hub"


def forbidden(message: str, details: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Forbidden",
        "details": details,
        "code": 403,
    }


async def hub_with(admin: Caller, rules: Any = (), **kw: Any) -> Caller:
    return admin.as_token(await account(admin.sim, NS, "hub", rules, **kw))


async def test_forbidden_bodies_are_worded_as_the_real_server(admin: Caller) -> None:
    hub = await hub_with(admin)
    assert await hub("POST", f"/api/v1/namespaces/{NS}/pods", {"metadata": {"name": "x"}}) == (
        403,
        forbidden(
            f'pods is forbidden: User "{USER}" cannot create resource "pods" in API group "" in '
            f'the namespace "{NS}"',
            {"kind": "pods"},
        ),
    )
    assert await hub("GET", "/api/v1/nodes") == (
        403,
        forbidden(
            f'nodes is forbidden: User "{USER}" cannot list resource "nodes" in API group "" at '
            "the cluster scope",
            {"kind": "nodes"},
        ),
    )
    assert await hub("GET", f"/api/v1/namespaces/{NS}/pods/p1/log") == (
        403,
        forbidden(
            f'pods "p1" is forbidden: User "{USER}" cannot get resource "pods/log" in API group '
            f'"" in the namespace "{NS}"',
            {"name": "p1", "kind": "pods"},
        ),
    )
    assert await hub("DELETE", f"/apis/{RBAC}/clusterroles/admin") == (
        403,
        forbidden(
            f'clusterroles.rbac.authorization.k8s.io "admin" is forbidden: User "{USER}" cannot '
            'delete resource "clusterroles" in API group "rbac.authorization.k8s.io" at the '
            "cluster scope",
            {"name": "admin", "group": "rbac.authorization.k8s.io", "kind": "clusterroles"},
        ),
    )
    assert await hub("GET", "/metrics") == (
        403,
        forbidden(f'forbidden: User "{USER}" cannot get path "/metrics"', {}),
    )
    # a namespace is its own namespace, as the real request-info parser reads the URL
    _status, body = await hub("GET", f"/api/v1/namespaces/{NS}")
    assert body["message"] == (
        f'namespaces "{NS}" is forbidden: User "{USER}" cannot get resource "namespaces" in API '
        f'group "" in the namespace "{NS}"'
    )


async def test_authorization_comes_before_lookup(admin: Caller) -> None:
    """An unknown resource is 403 for who may not touch it, 404 only for who may."""
    hub = await hub_with(admin)
    status, body = await hub("GET", f"/api/v1/namespaces/{NS}/foos")
    assert status == 403 and body["message"].startswith('foos is forbidden: User "')
    assert (await admin("GET", f"/api/v1/namespaces/{NS}/foos"))[0] == 404
    status, _ = await hub("GET", "/apis/nope.example.com/v1/foos")
    assert status == 403


async def test_discovery_and_self_reviews_are_open_to_every_authenticated_user(admin: Caller) -> None:
    hub = await hub_with(admin)
    for path in ("/api", "/api/v1", "/apis", f"/apis/{RBAC}", "/version", "/healthz", "/openapi/v3"):
        status, _ = await hub("GET", path)
        assert status == 200, path


VERB_REQUESTS = [
    ("get", "GET", f"/api/v1/namespaces/{NS}/configmaps/cm", None),
    ("list", "GET", f"/api/v1/namespaces/{NS}/configmaps", None),
    ("watch", "GET", f"/api/v1/namespaces/{NS}/configmaps?watch=1&timeoutSeconds=1", None),
    ("watch", "GET", f"/api/v1/watch/namespaces/{NS}/configmaps?timeoutSeconds=1", None),
    ("create", "POST", f"/api/v1/namespaces/{NS}/configmaps", {"metadata": {"name": "new"}}),
    ("update", "PUT", f"/api/v1/namespaces/{NS}/configmaps/cm", {"metadata": {"name": "cm"}, "data": {"a": "b"}}),
    ("patch", "PATCH", f"/api/v1/namespaces/{NS}/configmaps/cm", {"data": {"a": "c"}}),
    ("delete", "DELETE", f"/api/v1/namespaces/{NS}/configmaps/cm", None),
    ("deletecollection", "DELETE", f"/api/v1/namespaces/{NS}/configmaps", None),
]


@pytest.mark.parametrize(("verb", "method", "path", "body"), VERB_REQUESTS)
async def test_each_request_is_authorized_with_its_verb(
    admin: Caller, verb: str, method: str, path: str, body: Any
) -> None:
    others = sorted({v for v, *_ in VERB_REQUESTS} - {verb})
    hub = await hub_with(admin, [{"apiGroups": [""], "resources": ["configmaps"], "verbs": others}])
    assert (await admin("POST", f"/api/v1/namespaces/{NS}/configmaps", {"metadata": {"name": "cm"}}))[0] == 201
    status, refused = await hub(method, path, body)
    assert status == 403, refused
    assert f'cannot {verb} resource "configmaps"' in refused["message"]
    # granted that verb alone, the same request passes
    await admin(
        "POST",
        f"/apis/{RBAC}/namespaces/{NS}/roles",
        role(NS, f"only-{verb}", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": [verb]}]),
    )
    await admin(
        "POST",
        f"/apis/{RBAC}/namespaces/{NS}/rolebindings",
        binding(NS, f"only-{verb}", "Role", f"only-{verb}", [{"kind": "ServiceAccount", "name": "hub"}]),
    )
    status, answer = await hub(method, path, body)
    assert status in (200, 201), answer


async def test_resource_names_subresources_and_wildcards(admin: Caller) -> None:
    hub = await hub_with(
        admin,
        [
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["mine"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["*/log"], "verbs": ["get"]},
            {"apiGroups": ["*"], "resources": ["leases"], "verbs": ["*"]},
        ],
    )
    for name in ("mine", "theirs"):
        await admin("POST", f"/api/v1/namespaces/{NS}/configmaps", {"metadata": {"name": name}})
    assert (await hub("GET", f"/api/v1/namespaces/{NS}/configmaps/mine"))[0] == 200
    status, body = await hub("GET", f"/api/v1/namespaces/{NS}/configmaps/theirs")
    assert status == 403 and body["details"] == {"name": "theirs", "kind": "configmaps"}
    # a list is not of one name... unless its field selector names the object
    assert (await hub("GET", f"/api/v1/namespaces/{NS}/configmaps"))[0] == 403
    status, listed = await hub("GET", f"/api/v1/namespaces/{NS}/configmaps?fieldSelector=metadata.name%3Dmine")
    assert status == 200 and [i["metadata"]["name"] for i in listed["items"]] == ["mine"]
    # "*/log": the log subresource of any resource, not the resource itself
    assert (await hub("GET", f"/api/v1/namespaces/{NS}/pods/p/log"))[0] == 404  # allowed, no pod
    assert (await hub("GET", f"/api/v1/namespaces/{NS}/pods/p"))[0] == 403
    # "*" verbs and api groups
    lease = {"metadata": {"name": "leader"}, "spec": {}}
    assert (await hub("POST", f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases", lease))[0] == 201
    assert (await hub("DELETE", f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/leader"))[0] == 200


async def test_cluster_role_through_a_role_binding_stays_in_its_namespace(admin: Caller) -> None:
    hub = await hub_with(admin)
    await admin("POST", "/api/v1/namespaces", {"metadata": {"name": "elsewhere"}})
    await admin(
        "POST",
        f"/apis/{RBAC}/namespaces/{NS}/rolebindings",
        binding(NS, "view", "ClusterRole", "view", [{"kind": "ServiceAccount", "name": "hub", "namespace": NS}]),
    )
    assert (await hub("GET", f"/api/v1/namespaces/{NS}/pods"))[0] == 200
    assert (await hub("GET", "/api/v1/namespaces/elsewhere/pods"))[0] == 403
    assert (await hub("GET", "/api/v1/pods"))[0] == 403  # all namespaces: cluster scope
    # view is aggregated: it reads pods and events, never secrets, and writes nothing
    assert (await hub("GET", f"/api/v1/namespaces/{NS}/events"))[0] == 200
    assert (await hub("GET", f"/api/v1/namespaces/{NS}/secrets"))[0] == 403
    assert (await hub("POST", f"/api/v1/namespaces/{NS}/configmaps", {"metadata": {"name": "c"}}))[0] == 403


@pytest.mark.parametrize(
    ("role_name", "allowed", "refused"),
    [
        ("view", [("GET", "pods")], [("GET", "secrets"), ("POST", "pods")]),
        ("edit", [("POST", "configmaps"), ("GET", "secrets")], [("POST", "roles")]),
        ("admin", [("POST", "configmaps"), ("POST", "roles")], []),
    ],
)
async def test_aggregated_default_roles(
    admin: Caller, role_name: str, allowed: list[tuple[str, str]], refused: list[tuple[str, str]]
) -> None:
    hub = await hub_with(admin)
    await admin(
        "POST",
        f"/apis/{RBAC}/namespaces/{NS}/rolebindings",
        binding(NS, role_name, "ClusterRole", role_name, [{"kind": "ServiceAccount", "name": "hub"}]),
    )

    def path(plural: str) -> str:
        prefix = f"/apis/{RBAC}" if plural == "roles" else "/api/v1"
        return f"{prefix}/namespaces/{NS}/{plural}"

    def body(plural: str) -> dict[str, Any]:
        return {"metadata": {"name": "x"}, "rules": []} if plural == "roles" else {"metadata": {"name": "x"}}

    for method, plural in allowed:
        status, answer = await hub(method, path(plural), body(plural) if method == "POST" else None)
        assert status in (200, 201), (role_name, method, plural, answer)
    for method, plural in refused:
        status, _ = await hub(method, path(plural), body(plural) if method == "POST" else None)
        assert status == 403, (role_name, method, plural)


async def test_aggregation_follows_labelled_roles(admin: Caller) -> None:
    hub = await hub_with(admin)
    await admin(
        "POST",
        f"/apis/{RBAC}/namespaces/{NS}/rolebindings",
        binding(NS, "view", "ClusterRole", "view", [{"kind": "ServiceAccount", "name": "hub"}]),
    )
    assert (await hub("GET", f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases"))[0] == 403
    extra = role("", "lease-reader", [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["list"]}], kind="ClusterRole")
    extra["metadata"]["labels"] = {"rbac.authorization.k8s.io/aggregate-to-view": "true"}
    assert (await admin("POST", f"/apis/{RBAC}/clusterroles", extra))[0] == 201
    assert (await hub("GET", f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases"))[0] == 200


async def test_group_subjects(admin: Caller) -> None:
    hub = await hub_with(admin)
    for group, plural in (
        ("system:serviceaccounts:team", "configmaps"),
        ("system:serviceaccounts", "services"),
        ("system:authenticated", "endpoints-none"),
    ):
        name = plural
        await admin("POST", f"/apis/{RBAC}/clusterroles", role("", name, [{"apiGroups": [""], "resources": [plural], "verbs": ["list"]}], kind="ClusterRole"))
        await admin("POST", f"/apis/{RBAC}/clusterrolebindings", binding(None, name, "ClusterRole", name, [{"kind": "Group", "name": group, "apiGroup": "rbac.authorization.k8s.io"}]))
    assert (await hub("GET", "/api/v1/configmaps"))[0] == 200
    assert (await hub("GET", "/api/v1/services"))[0] == 200
    status, _ = await hub("GET", "/api/v1/namespaces/other/configmaps")
    assert status == 200  # a ClusterRoleBinding: every namespace
    status, _ = await hub("GET", "/api/v1/secrets")
    assert status == 403


async def test_rbac_changes_apply_to_the_next_request(admin: Caller) -> None:
    """Decisions are cached; any write to an RBAC object drops the cache."""
    hub = await hub_with(admin)
    path = f"/api/v1/namespaces/{NS}/configmaps"
    assert (await hub("GET", path))[0] == 403
    await admin("POST", f"/apis/{RBAC}/namespaces/{NS}/roles", role(NS, "r", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]))
    await admin("POST", f"/apis/{RBAC}/namespaces/{NS}/rolebindings", binding(NS, "rb", "Role", "r", [{"kind": "ServiceAccount", "name": "hub"}]))
    assert (await hub("GET", path))[0] == 403  # get is not list
    status, _ = await admin("PATCH", f"/apis/{RBAC}/namespaces/{NS}/roles/r", {"rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]})
    assert status == 200
    assert (await hub("GET", path))[0] == 200
    await admin("DELETE", f"/apis/{RBAC}/namespaces/{NS}/rolebindings/rb")
    assert (await hub("GET", path))[0] == 403


async def test_a_binding_to_a_missing_role_says_so(admin: Caller) -> None:
    hub = await hub_with(admin)
    await admin("POST", f"/apis/{RBAC}/namespaces/{NS}/rolebindings", binding(NS, "rb", "Role", "missing", [{"kind": "ServiceAccount", "name": "hub"}]))
    status, body = await hub("GET", f"/api/v1/namespaces/{NS}/pods")
    assert status == 403
    assert body["message"] == (
        f'pods is forbidden: User "{USER}" cannot list resource "pods" in API group "" in the '
        f'namespace "{NS}": RBAC: role.rbac.authorization.k8s.io "missing" not found'
    )


async def test_watch_is_refused_before_any_event(admin: Caller) -> None:
    hub = await hub_with(admin, [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}])
    status, body = await hub("GET", f"/api/v1/namespaces/{NS}/pods?watch=true")
    assert status == 403 and 'cannot watch resource "pods"' in body["message"]


async def test_sim_admin_paths_need_the_admin(admin: Caller) -> None:
    hub = await hub_with(admin, cluster_rules=[{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}])
    status, body = await hub("GET", "/_sim/state")
    assert status == 403 and body["message"] == f'forbidden: User "{USER}" cannot get path "/_sim/state"'
    status, body = await hub("POST", "/_sim/faults", {"clear": True})
    assert status == 403 and body["message"] == f'forbidden: User "{USER}" cannot post path "/_sim/faults"'


async def test_rbac_names_may_hold_colons_and_are_path_segments(admin: Caller) -> None:
    ok = role("", "team:reader", [], kind="ClusterRole")
    assert (await admin("POST", f"/apis/{RBAC}/clusterroles", ok))[0] == 201
    bad = role("", "a/b", [], kind="ClusterRole")
    status, body = await admin("POST", f"/apis/{RBAC}/clusterroles", bad)
    assert status == 422 and "may not contain '/'" in body["message"]


async def test_rbac_objects_are_validated_and_defaulted(admin: Caller) -> None:
    status, body = await admin(
        "POST",
        f"/apis/{RBAC}/namespaces/default/roles",
        role("default", "bad", [{"resources": ["pods"]}, {"nonResourceURLs": ["/x"], "verbs": ["get"]}]),
    )
    assert status == 422
    assert body["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value: verbs must contain at least one value", "field": "rules[0].verbs"},
        {"reason": "FieldValueRequired", "message": "Required value: resource rules must supply at least one api group", "field": "rules[0].apiGroups"},
        {"reason": "FieldValueInvalid", "message": 'Invalid value: ["/x"]: namespaced rules cannot apply to non-resource URLs', "field": "rules[1].nonResourceURLs"},
    ]
    bad = binding(None, "b", "Role", "", [{"kind": "ServiceAccount", "name": "x"}, {"kind": "Robot", "name": "r"}])
    status, body = await admin("POST", f"/apis/{RBAC}/clusterrolebindings", bad)
    assert status == 422
    assert [c["field"] for c in body["details"]["causes"]] == [
        "roleRef.kind", "roleRef.name", "subjects[0].namespace", "subjects[1].kind",
    ]
    assert body["details"]["causes"][0]["message"] == 'Unsupported value: "Role": supported values: "ClusterRole"'
    # defaults: the API group of roleRef and of User/Group subjects
    good = binding("default", "rb", "ClusterRole", "view", [{"kind": "User", "name": "jane"}])
    del good["roleRef"]["apiGroup"]
    status, made = await admin("POST", f"/apis/{RBAC}/namespaces/default/rolebindings", good)
    assert status == 201, made
    assert made["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"
    assert made["subjects"] == [{"kind": "User", "name": "jane", "apiGroup": "rbac.authorization.k8s.io"}]
    # a roleRef never changes
    status, body = await admin(
        "PATCH", f"/apis/{RBAC}/namespaces/default/rolebindings/rb", {"roleRef": {"name": "edit"}}
    )
    assert status == 422 and body["message"].endswith("cannot change roleRef")


RBAC_WRITER = [
    {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": ["create", "update", "patch"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
]


async def test_nobody_grants_what_they_do_not_hold(admin: Caller) -> None:
    hub = await hub_with(admin, RBAC_WRITER)
    pods = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
    assert (await hub("POST", f"/apis/{RBAC}/namespaces/{NS}/roles", role(NS, "ok", pods)))[0] == 201
    secrets = [{"apiGroups": [""], "resources": ["secrets", "pods"], "verbs": ["get", "list"]}]
    status, body = await hub("POST", f"/apis/{RBAC}/namespaces/{NS}/roles", role(NS, "more", secrets))
    assert status == 403
    assert body["message"] == (
        f'roles.rbac.authorization.k8s.io "more" is forbidden: user "{USER}" '
        '(groups=["system:serviceaccounts" "system:serviceaccounts:team" "system:authenticated"]) '
        "is attempting to grant RBAC permissions not currently held:\n"
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list"]}'
    )
    assert body["details"] == {"name": "more", "group": "rbac.authorization.k8s.io", "kind": "roles"}
    # ... nor widens a role it may patch
    status, _ = await hub("PATCH", f"/apis/{RBAC}/namespaces/{NS}/roles/ok", {"rules": secrets})
    assert status == 403
    # a binding to a role within the author's rights is fine; to "admin" it is not
    me = [{"kind": "ServiceAccount", "name": "hub", "namespace": NS}]
    assert (await hub("POST", f"/apis/{RBAC}/namespaces/{NS}/rolebindings", binding(NS, "ok", "Role", "ok", me)))[0] == 201
    status, body = await hub("POST", f"/apis/{RBAC}/namespaces/{NS}/rolebindings", binding(NS, "adm", "ClusterRole", "admin", me))
    assert status == 403 and "is attempting to grant RBAC permissions not currently held" in body["message"]
    status, body = await hub("POST", f"/apis/{RBAC}/namespaces/{NS}/rolebindings", binding(NS, "gone", "Role", "missing", me))
    assert status == 403 and body["message"].endswith('role.rbac.authorization.k8s.io "missing" not found')


async def test_escalate_and_bind_verbs_lift_the_check(admin: Caller) -> None:
    hub = await hub_with(
        admin,
        [
            *RBAC_WRITER,
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["escalate"]},
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "resourceNames": ["edit"], "verbs": ["bind"]},
        ],
    )
    secrets = [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
    assert (await hub("POST", f"/apis/{RBAC}/namespaces/{NS}/roles", role(NS, "more", secrets)))[0] == 201
    me = [{"kind": "ServiceAccount", "name": "hub", "namespace": NS}]
    assert (await hub("POST", f"/apis/{RBAC}/namespaces/{NS}/rolebindings", binding(NS, "e", "ClusterRole", "edit", me)))[0] == 201
    assert (await hub("POST", f"/apis/{RBAC}/namespaces/{NS}/rolebindings", binding(NS, "a", "ClusterRole", "admin", me)))[0] == 403
    # the admin (system:masters) is never checked
    assert (await admin("POST", f"/apis/{RBAC}/namespaces/{NS}/rolebindings", binding(NS, "a", "ClusterRole", "admin", me)))[0] == 201
