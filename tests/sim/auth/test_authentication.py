"""Authentication: the 401s, user and ServiceAccount tokens, token Secrets, revocation."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from kubesim.testing import run_simulator

from .conftest import Caller, account

UNAUTHORIZED = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "Unauthorized",
    "reason": "Unauthorized",
    "code": 401,
}


@pytest.mark.parametrize("path", ["/api/v1/namespaces/default/pods", "/version", "/api", "/_sim/state"])
@pytest.mark.parametrize(
    "header",
    [None, "Bearer not-a-token", "Basic YWRtaW46YWRtaW4=", "Bearer ", "Bearer a.b.c"],
)
async def test_no_or_bad_credentials_are_401(admin: Caller, path: str, header: str | None) -> None:
    caller = admin.as_token(None)
    status, body = await caller("GET", path, headers={"Authorization": header} if header else None)
    assert (status, body) == (401, UNAUTHORIZED)


async def test_admin_token_of_the_kubeconfig_may_do_anything(admin: Caller) -> None:
    assert admin.sim.kubeconfig_path.read_text().count(admin.sim.token or "-") == 1
    status, _ = await admin("POST", "/api/v1/namespaces", {"metadata": {"name": "made"}})
    assert status == 201
    status, body = await admin("GET", "/_sim/state")
    assert status == 200 and "resourceVersion" in body


async def test_token_option_keeps_its_meaning() -> None:
    """``run_simulator(token=...)``: that token may do everything, anything else is 401."""
    async with run_simulator(token="s3cret") as sim:
        assert sim.auth is not None and sim.auth.enabled
        client = sim.api_client()
        try:
            from kubernetes_asyncio.client import CoreV1Api

            pods = await CoreV1Api(client).list_namespaced_pod("default")
            assert pods.items == []
        finally:
            await client.close()


async def test_without_auth_every_request_passes() -> None:
    async with run_simulator() as sim:
        assert sim.auth is not None and not sim.auth.enabled
        assert sim.token is None
        assert "token" not in sim.kubeconfig_path.read_text()


async def test_static_user_token(admin: Caller) -> None:
    assert admin.sim.auth is not None
    bob = admin.as_token(admin.sim.auth.add_user("bob", groups=("devs",)))
    status, body = await bob("GET", "/api/v1/namespaces/default/pods")
    assert status == 403
    assert body["message"] == (
        'pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the '
        'namespace "default"'
    )
    status, body = await bob("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", {})
    assert status == 201
    assert body["status"]["userInfo"] == {
        "username": "bob",
        "groups": ["devs", "system:authenticated"],
    }


async def token_request(admin: Caller, namespace: str, name: str, spec: dict[str, Any]) -> tuple[int, Any]:
    return await admin(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
    )


async def test_token_request_issues_a_working_token(admin: Caller) -> None:
    await account(admin.sim, "ns", "hub", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}])
    status, body = await token_request(admin, "ns", "hub", {})
    assert status == 201
    assert body["kind"] == "TokenRequest"
    assert body["metadata"]["name"] == "hub" and body["metadata"]["namespace"] == "ns"
    assert body["spec"] == {
        "audiences": ["https://kubernetes.default.svc.cluster.local"],
        "expirationSeconds": 3600,
        "boundObjectRef": None,
    }
    token = body["status"]["token"]
    assert token.count(".") == 2  # a JWT
    hub = admin.as_token(token)
    assert (await hub("GET", "/api/v1/namespaces/ns/pods"))[0] == 200
    status, review = await hub("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", {})
    info = review["status"]["userInfo"]
    assert info["username"] == "system:serviceaccount:ns:hub"
    assert info["groups"] == [
        "system:serviceaccounts",
        "system:serviceaccounts:ns",
        "system:authenticated",
    ]
    assert info["extra"]["authentication.kubernetes.io/credential-id"][0].startswith("JTI=")


async def test_token_request_validation(admin: Caller) -> None:
    await account(admin.sim, "ns", "hub")
    status, body = await token_request(admin, "ns", "hub", {"expirationSeconds": 60})
    assert status == 422
    assert body["message"] == (
        'TokenRequest.authentication.k8s.io "hub" is invalid: spec.expirationSeconds: Invalid '
        "value: 60: may not specify a duration less than 10 minutes"
    )
    status, body = await token_request(admin, "ns", "nobody", {})
    assert status == 404
    assert body["message"] == 'serviceaccounts "nobody" not found'
    status, _ = await admin("GET", "/api/v1/namespaces/ns/serviceaccounts/hub/token")
    assert status == 405


async def test_a_token_dies_with_its_account(admin: Caller) -> None:
    token = await account(admin.sim, "ns", "hub", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}])
    hub = admin.as_token(token)
    assert (await hub("GET", "/api/v1/namespaces/ns/pods"))[0] == 200
    assert (await admin("DELETE", "/api/v1/namespaces/ns/serviceaccounts/hub"))[0] == 200
    assert await hub("GET", "/api/v1/namespaces/ns/pods") == (401, UNAUTHORIZED)
    # an account of the same name is another account: the old token stays dead
    assert (await admin("POST", "/api/v1/namespaces/ns/serviceaccounts", {"metadata": {"name": "hub"}}))[0] == 201
    assert await hub("GET", "/api/v1/namespaces/ns/pods") == (401, UNAUTHORIZED)


async def test_expired_and_foreign_audience_tokens_are_refused(admin: Caller) -> None:
    sim = admin.sim
    assert sim.auth is not None
    await account(sim, "ns", "hub", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}])
    uid = sim.store.get_ref(sim.store.resource("serviceaccounts"), "ns", "hub")["metadata"]["uid"]
    expired, _ = sim.auth.signer.issue_bound(
        "ns", "hub", uid, audiences=("https://kubernetes.default.svc.cluster.local",), expiration_seconds=-1
    )
    assert await admin.as_token(expired)("GET", "/api/v1/namespaces/ns/pods") == (401, UNAUTHORIZED)
    status, body = await token_request(admin, "ns", "hub", {"audiences": ["vault"]})
    vault_token = body["status"]["token"]
    assert await admin.as_token(vault_token)("GET", "/api/v1/namespaces/ns/pods") == (401, UNAUTHORIZED)
    # ... but TokenReview for that audience accepts it
    status, review = await admin(
        "POST",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        {"spec": {"token": vault_token, "audiences": ["vault"]}},
    )
    assert status == 201
    assert review["status"]["authenticated"] is True
    assert review["status"]["user"]["username"] == "system:serviceaccount:ns:hub"
    status, review = await admin("POST", "/apis/authentication.k8s.io/v1/tokenreviews", {"spec": {"token": "x"}})
    assert review["status"].get("authenticated") is None and review["status"]["error"]
    # a token signed by another simulator's key is refused
    async with run_simulator(auth=True) as other:
        assert other.auth is not None
        foreign, _ = other.auth.signer.issue_bound(
            "ns", "hub", uid, audiences=("https://kubernetes.default.svc.cluster.local",), expiration_seconds=3600
        )
    assert await admin.as_token(foreign)("GET", "/api/v1/namespaces/ns/pods") == (401, UNAUTHORIZED)


async def test_token_bound_to_a_pod_dies_with_the_pod(admin: Caller) -> None:
    await account(admin.sim, "ns", "hub", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}])
    pod = {
        "metadata": {"name": "p"},
        "spec": {"serviceAccountName": "hub", "containers": [{"name": "c", "image": "x"}]},
    }
    status, made = await admin("POST", "/api/v1/namespaces/ns/pods", pod)
    assert status == 201, made
    ref = {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": made["metadata"]["uid"]}
    status, body = await token_request(admin, "ns", "hub", {"boundObjectRef": ref})
    assert status == 201, body
    hub = admin.as_token(body["status"]["token"])
    status, review = await hub("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", {})
    assert review["status"]["userInfo"]["extra"]["authentication.kubernetes.io/pod-name"] == ["p"]
    await admin("DELETE", "/api/v1/namespaces/ns/pods/p?gracePeriodSeconds=0")
    assert await hub("GET", "/api/v1/namespaces/ns/pods") == (401, UNAUTHORIZED)
    status, body = await token_request(admin, "ns", "hub", {"boundObjectRef": {**ref, "name": "gone"}})
    assert status == 400


async def wait_for_token(admin: Caller, namespace: str, name: str) -> dict[str, Any]:
    assert admin.sim.auth is not None
    await admin.sim.auth.controller.idle()
    status, secret = await admin("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
    assert status == 200
    return secret


async def test_token_controller_fills_and_revokes_token_secrets(admin: Caller) -> None:
    await account(admin.sim, "ns", "hub", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}])
    secret = {
        "metadata": {"name": "hub-token", "annotations": {"kubernetes.io/service-account.name": "hub"}},
        "type": "kubernetes.io/service-account-token",
    }
    assert (await admin("POST", "/api/v1/namespaces/ns/secrets", secret))[0] == 201
    filled = await wait_for_token(admin, "ns", "hub-token")
    assert sorted(filled["data"]) == ["ca.crt", "namespace", "token"]
    assert base64.b64decode(filled["data"]["namespace"]) == b"ns"
    uid = admin.sim.store.get_ref(admin.sim.store.resource("serviceaccounts"), "ns", "hub")["metadata"]["uid"]
    assert filled["metadata"]["annotations"]["kubernetes.io/service-account.uid"] == uid
    hub = admin.as_token(base64.b64decode(filled["data"]["token"]).decode())
    assert (await hub("GET", "/api/v1/namespaces/ns/pods"))[0] == 200
    # deleting the Secret revokes the token at once
    assert (await admin("DELETE", "/api/v1/namespaces/ns/secrets/hub-token"))[0] == 200
    assert await hub("GET", "/api/v1/namespaces/ns/pods") == (401, UNAUTHORIZED)


async def test_token_controller_deletes_secrets_of_missing_accounts(admin: Caller) -> None:
    await account(admin.sim, "ns", "hub")
    for name, account_name in (("orphan", "nobody"), ("hubs", "hub")):
        secret = {
            "metadata": {"name": name, "annotations": {"kubernetes.io/service-account.name": account_name}},
            "type": "kubernetes.io/service-account-token",
        }
        assert (await admin("POST", "/api/v1/namespaces/ns/secrets", secret))[0] == 201
    assert admin.sim.auth is not None
    await admin.sim.auth.controller.idle()
    assert (await admin("GET", "/api/v1/namespaces/ns/secrets/orphan"))[0] == 404
    assert (await admin("GET", "/api/v1/namespaces/ns/secrets/hubs"))[0] == 200
    # the account goes: so do its token Secrets
    assert (await admin("DELETE", "/api/v1/namespaces/ns/serviceaccounts/hub"))[0] == 200
    await admin.sim.auth.controller.idle()
    assert (await admin("GET", "/api/v1/namespaces/ns/secrets/hubs"))[0] == 404
