"""Authentication and authorization for the simulator, as a real cluster does them.

Off by default in-process (``run_simulator()``), so a test that does not ask for it sees
an API server that lets everyone do everything; on by default for the ``kubesim`` command.
When on, every request must carry a bearer token — a static user token (the admin token
written into the kubeconfig is one, in group ``system:masters``), a TokenRequest token or
a legacy ServiceAccount token Secret's — or it is answered 401; then the request's verb
on its resource (or its non-resource path) is authorized by ``system:masters`` and RBAC,
and refused with the real 403 ``Forbidden`` Status otherwise.

The HTTP layer calls :meth:`Auth.admit` for every request and :meth:`Auth.serve` for the
create-only review APIs and TokenRequest; the store tells :meth:`Auth.on_commit` about
every write, which keeps the RBAC decision cache fresh and drives the token controller.
"""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Any

from aiohttp import web

from .. import errors
from .. import protobuf as wire
from ..errors import StatusError
from ..resources import ResourceType
from . import endpoints, escalation
from .controller import SA_NAME_KEY, SA_TOKEN_TYPE, TokenController
from .impersonation import impersonated
from .protobuf import AUTH_DECODERS
from .rbac import Authorizer, Decision, default_policy
from .requestinfo import Attributes, request_attributes
from .resources import RBAC_GROUP, RBAC_KEYS
from .tokens import API_AUDIENCES, TokenSigner, user_for
from .users import AUTHENTICATED, MASTERS, UNAUTHENTICATED_ADMIN, UserInfo

USER_KEY = web.RequestKey("sim_user", UserInfo)
# kubectl sends these kinds as protobuf (auth can-i, create token/role/rolebinding)
wire.DECODERS.update(AUTH_DECODERS)
ADMIN_USER = "kubesim-admin"

__all__ = ["ADMIN_USER", "USER_KEY", "Attributes", "Auth", "Decision", "UserInfo", "forbidden"]


def forbidden(user: UserInfo, attrs: Attributes, reason: str = "") -> StatusError:
    """The real 403 body: who may not do what, where; an RBAC reason appended."""
    if not attrs.resource_request:
        message = f'forbidden: User "{user.name}" cannot {attrs.verb} path "{attrs.path}"'
        details: dict[str, Any] = {}
    else:
        where = (
            f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
        )
        what = (
            f'User "{user.name}" cannot {attrs.verb} resource "{attrs.combined_resource}" in '
            f'API group "{attrs.api_group}" {where}'
        )
        qualified = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
        if attrs.name:
            message = f'{qualified} "{attrs.name}" is forbidden: {what}'
        else:
            message = f"{qualified} is forbidden: {what}"
        details = {}
        if attrs.name:
            details["name"] = attrs.name
        if attrs.api_group:
            details["group"] = attrs.api_group
        details["kind"] = attrs.resource
    if reason:
        message = f"{message}: {reason}"
    return StatusError(
        errors.status_body(403, "Forbidden", message, details),
        headers={"X-Content-Type-Options": "nosniff"},
    )


class Auth:
    """The authenticator, the authorizer and the auth APIs of one simulator."""

    def __init__(self, store: Any, *, enabled: bool = False, admin_token: str | None = None) -> None:
        self.store = store
        self.enabled = enabled or admin_token is not None
        self.signer = TokenSigner()
        self.authorizer = Authorizer(store)
        self.ca_pem: bytes = b""
        self._static: dict[str, UserInfo] = {}
        self.admin_token: str | None = None
        if self.enabled:
            self.admin_token = admin_token or secrets.token_urlsafe(32)
            self.add_token(self.admin_token, ADMIN_USER, groups=(MASTERS,))
        self.controller = TokenController(store, self.signer, lambda: self.ca_pem)
        self._listening = False
        self._accounts = store.registry.lookup("serviceaccounts")
        self._sa_users: dict[str, UserInfo] = {}  # token -> user, once its signature checked
        self._attributes: dict[tuple[str, str], Attributes] = {}  # per method and URL
        if self.enabled:
            self._listen()

    def _listen(self) -> None:
        if not self._listening:
            self.store.commit_listeners.append(self.on_commit)
            self._listening = True

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Create the default ClusterRoles and bindings (when on), as a real server does."""
        if not self.enabled:
            return
        roles, bindings = default_policy()
        reg = self.store.registry
        for plural, objects in (("clusterroles", roles), ("clusterrolebindings", bindings)):
            rt = reg.lookup(plural, "rbac.authorization.k8s.io")
            for obj in objects:
                try:
                    self.store.get_ref(rt, None, obj["metadata"]["name"])
                except StatusError:
                    await self.store.create(rt, None, obj)

    async def stop(self) -> None:
        await self.controller.stop()
        if self._listening:
            self.store.commit_listeners.remove(self.on_commit)
            self._listening = False

    def on_commit(self, rt: ResourceType, event_type: str, obj: dict[str, Any]) -> None:
        if rt.key in RBAC_KEYS:
            self.authorizer.rbac_changed()
        elif rt.group == "" and rt.plural in ("secrets", "serviceaccounts"):
            self.controller.on_commit(rt.plural, event_type, obj)

    # ------------------------------------------------------------- authentication
    def add_token(self, token: str, name: str, *, groups: tuple[str, ...] = (), uid: str = "") -> str:
        """Accept ``token`` as user ``name`` (``system:authenticated`` is added, as the
        real token-file authenticator's caller does)."""
        if not token:
            raise ValueError("a token must not be empty")
        all_groups = tuple(dict.fromkeys((*groups, AUTHENTICATED)))
        self._static[token] = UserInfo(name=name, uid=uid, groups=all_groups)
        return token

    def add_user(self, name: str, groups: tuple[str, ...] = (), uid: str = "") -> str:
        """A new random token for user ``name``; returns it."""
        return self.add_token(secrets.token_urlsafe(32), name, groups=groups, uid=uid)

    def user_for_token(
        self, token: str, audiences: tuple[str, ...] = API_AUDIENCES
    ) -> UserInfo | None:
        """Who ``token`` authenticates as for ``audiences``, or None (bad, expired, revoked)."""
        if not token:
            return None
        static = self._static.get(token)
        if static is not None:
            return static
        claims = self.signer.claims(token)
        if claims is None:
            return None
        if claims.expires is not None and claims.expires <= time.time():
            return None
        if audiences is not API_AUDIENCES and not set(claims.audiences) & set(audiences):
            return None
        if audiences is API_AUDIENCES and not claims.for_api:
            return None
        store, reg = self.store, self.store.registry
        try:
            account = store.get_ref(self._accounts, claims.namespace, claims.name)
        except StatusError:
            return None
        if account["metadata"].get("uid") != claims.uid:
            return None
        if claims.legacy_secret is not None:
            if not self._legacy_secret_holds(claims.namespace, claims.legacy_secret, claims.name, token):
                return None
        if claims.bound_kind is not None:
            plural = {"Pod": "pods", "Secret": "secrets", "Node": "nodes"}[claims.bound_kind]
            try:
                bound = store.get_ref(reg.lookup(plural), claims.namespace, claims.bound_name)
            except StatusError:
                return None
            if bound["metadata"].get("uid") != claims.bound_uid or bound["metadata"].get(
                "deletionTimestamp"
            ):
                return None
        user = self._sa_users.get(token)
        if user is None:
            if len(self._sa_users) >= 4096:
                self._sa_users.clear()
            user = self._sa_users[token] = user_for(claims)
        return user

    def _legacy_secret_holds(self, namespace: str, name: str, account: str, token: str) -> bool:
        import base64

        try:
            secret = self.store.get_ref(self.store.registry.lookup("secrets"), namespace, name)
        except StatusError:
            return False
        if secret.get("type") != SA_TOKEN_TYPE:
            return False
        if (secret["metadata"].get("annotations") or {}).get(SA_NAME_KEY) != account:
            return False
        stored = (secret.get("data") or {}).get("token", "")
        try:
            return hmac.compare_digest(base64.b64decode(stored), token.encode())
        except ValueError:
            return False

    def authenticate(self, request: web.Request) -> UserInfo:
        """The request's user, or the real 401 when there is no valid bearer token."""
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise errors.unauthorized()
        user = self.user_for_token(value.strip())
        if user is None:
            raise errors.unauthorized()
        return user

    def user_of(self, request: web.Request) -> UserInfo:
        """Who an admitted request is from (an all-powerful admin when auth is off)."""
        return request.get(USER_KEY, UNAUTHENTICATED_ADMIN)

    # -------------------------------------------------------------- authorization
    def decide(self, user: UserInfo, attrs: Attributes) -> Decision:
        if not self.enabled:
            return Decision(True)
        return self.authorizer.authorize(user, attrs)

    def _allowed(self, user: UserInfo, attrs: Attributes) -> tuple[bool, str]:
        decision = self.authorizer.authorize(user, attrs)
        return decision.allowed, decision.reason

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[Any], list[Any], list[str]]:
        if not self.enabled:
            return (
                [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                [],
            )
        return self.authorizer.rules_for(user, namespace)

    def admit(self, request: web.Request) -> None:
        """Authenticate and authorize ``request``; raises the real 401 or 403."""
        if not self.enabled:
            return
        user = self.authenticate(request)
        headers = request.headers
        if "Impersonate-User" in headers or "Impersonate-Group" in headers or "Impersonate-Uid" in headers:
            user = impersonated(
                user, headers, lambda name: headers.getall(name, []), self._allowed
            ) or user
        request[USER_KEY] = user
        if MASTERS in user.groups:
            return
        key = (request.method, request.raw_path)  # the query included
        attrs = self._attributes.get(key)
        if attrs is None:
            attrs = request_attributes(request.method, request.path, request.query)
            if len(self._attributes) >= 4096:
                self._attributes.clear()
            self._attributes[key] = attrs
        decision = self.authorizer.authorize(user, attrs)
        if not decision.allowed:
            raise forbidden(user, attrs, decision.reason)

    async def serve(
        self,
        request: web.Request,
        group: str,
        plural: str,
        namespace: str | None,
        name: str | None,
        subresource: str | None,
        verb: str,
    ) -> web.StreamResponse | None:
        """The response for the review APIs and TokenRequest; None for anything else.

        A write of RBAC objects is checked here for escalation first (never by masters).
        """
        if (
            self.enabled
            and group == RBAC_GROUP
            and verb in ("create", "update", "patch")
            and subresource is None
        ):
            await escalation.check(self, request, plural, namespace, name, verb)
        return await endpoints.serve(
            self, request, group, plural, namespace, name, subresource, verb
        )

    def token_for(
        self, namespace: str, name: str, *, expiration_seconds: int = 3600
    ) -> str:
        """A bound token for ServiceAccount ``namespace/name`` (it must exist): for tests."""
        account = self.store.get_ref(self.store.registry.lookup("serviceaccounts"), namespace, name)
        token, _expires = self.signer.issue_bound(
            namespace,
            name,
            account["metadata"].get("uid", ""),
            audiences=API_AUDIENCES,
            expiration_seconds=expiration_seconds,
        )
        return token
