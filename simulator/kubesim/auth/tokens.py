"""ServiceAccount tokens: signed JWTs like the ones kube-apiserver and the token controller issue.

Bound tokens (TokenRequest) carry the audiences, an expiry and optionally the object they
are bound to; legacy tokens (kept in Secrets of type ``kubernetes.io/service-account-token``)
never expire. Both are ES256-signed with a key made for each simulator, so a token from
one simulator (or a hand-made one) is refused by another. A token stays valid only while
what it names still exists: the ServiceAccount with the same uid, the Secret holding a
legacy token, the Pod or Secret a bound token is bound to — as on a real server.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from .users import UserInfo, service_account_user

#: The issuer and API audience of a kubeadm cluster (``--service-account-issuer``).
ISSUER = "https://kubernetes.default.svc.cluster.local"
API_AUDIENCES: tuple[str, ...] = (ISSUER,)
LEGACY_ISSUER = "kubernetes/serviceaccount"
#: Verified signatures kept, so a busy client's token is checked cryptographically once.
_CACHE_LIMIT = 4096


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Claims:
    """What a verified token says; liveness of what it names is checked on every use."""

    namespace: str
    name: str
    uid: str
    legacy_secret: str | None  # the Secret holding a legacy token
    bound_kind: str | None  # Pod | Secret | Node, for a bound token
    bound_name: str
    bound_uid: str
    expires: float | None
    audiences: tuple[str, ...]
    credential_id: str

    @property
    def for_api(self) -> bool:
        """Whether the token is meant for this API server (one of its audiences)."""
        return any(a in API_AUDIENCES for a in self.audiences)


class TokenSigner:
    """Issues and verifies ServiceAccount JWTs with one per-simulator ES256 key."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._public = self._key.public_key()
        self.key_id = secrets.token_hex(8)
        self._verified: dict[str, Claims] = {}

    def _sign(self, claims: dict[str, Any]) -> str:
        header = {"alg": "ES256", "kid": self.key_id}
        signing_input = (
            _b64(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64(json.dumps(claims, separators=(",", ":")).encode())
        )
        der = self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return signing_input + "." + _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def issue_bound(
        self,
        namespace: str,
        name: str,
        uid: str,
        *,
        audiences: tuple[str, ...],
        expiration_seconds: int,
        bound: dict[str, str] | None = None,
    ) -> tuple[str, float]:
        """A TokenRequest token and its expiry (epoch seconds)."""
        now = int(time.time())
        expires = now + expiration_seconds
        jti = str(uuid.uuid4())
        k8s: dict[str, Any] = {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}}
        if bound:
            k8s[bound["kind"].lower()] = {"name": bound["name"], "uid": bound["uid"]}
        claims = {
            "aud": list(audiences),
            "exp": expires,
            "iat": now,
            "iss": ISSUER,
            "jti": jti,
            "kubernetes.io": k8s,
            "nbf": now,
            "sub": f"system:serviceaccount:{namespace}:{name}",
        }
        return self._sign(claims), float(expires)

    def issue_legacy(self, namespace: str, name: str, uid: str, secret_name: str) -> str:
        """A never-expiring token as the token controller writes into a Secret."""
        return self._sign(
            {
                "iss": LEGACY_ISSUER,
                "kubernetes.io/serviceaccount/namespace": namespace,
                "kubernetes.io/serviceaccount/secret.name": secret_name,
                "kubernetes.io/serviceaccount/service-account.name": name,
                "kubernetes.io/serviceaccount/service-account.uid": uid,
                "sub": f"system:serviceaccount:{namespace}:{name}",
            }
        )

    def claims(self, token: str) -> Claims | None:
        """The claims of a token this signer issued (signature, issuer, shape); else None.

        Expiry and liveness are not judged here: they change with time and the store.
        """
        cached = self._verified.get(token)
        if cached is not None:
            return cached
        parsed = self._verify(token)
        if parsed is not None:
            if len(self._verified) >= _CACHE_LIMIT:
                self._verified.clear()
            self._verified[token] = parsed
        return parsed

    def _verify(self, token: str) -> Claims | None:
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            header = json.loads(_unb64(parts[0]))
            body = json.loads(_unb64(parts[1]))
            raw = _unb64(parts[2])
        except ValueError:
            return None
        if not isinstance(header, dict) or header.get("alg") != "ES256" or len(raw) != 64:
            return None
        if not isinstance(body, dict):
            return None
        signature = encode_dss_signature(
            int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        )
        try:
            self._public.verify(
                signature, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256())
            )
        except InvalidSignature:
            return None
        return _claims_from(body)


def _claims_from(body: dict[str, Any]) -> Claims | None:
    try:
        if body.get("iss") == LEGACY_ISSUER:
            return Claims(
                namespace=str(body["kubernetes.io/serviceaccount/namespace"]),
                name=str(body["kubernetes.io/serviceaccount/service-account.name"]),
                uid=str(body["kubernetes.io/serviceaccount/service-account.uid"]),
                legacy_secret=str(body["kubernetes.io/serviceaccount/secret.name"]),
                bound_kind=None,
                bound_name="",
                bound_uid="",
                expires=None,
                audiences=API_AUDIENCES,
                credential_id="",
            )
        if body.get("iss") != ISSUER:
            return None
        k8s = body["kubernetes.io"]
        bound_kind, bound_name, bound_uid = None, "", ""
        for kind in ("pod", "secret", "node"):
            if kind in k8s:
                bound_kind = kind.capitalize()
                bound_name, bound_uid = str(k8s[kind]["name"]), str(k8s[kind]["uid"])
        audiences = body.get("aud")
        if isinstance(audiences, str):
            audiences = [audiences]
        return Claims(
            namespace=str(k8s["namespace"]),
            name=str(k8s["serviceaccount"]["name"]),
            uid=str(k8s["serviceaccount"]["uid"]),
            legacy_secret=None,
            bound_kind=bound_kind,
            bound_name=bound_name,
            bound_uid=bound_uid,
            expires=float(body["exp"]),
            audiences=tuple(str(a) for a in audiences or ()),
            credential_id=f"JTI={body.get('jti', '')}",
        )
    except (KeyError, TypeError, ValueError):
        return None


def user_for(claims: Claims) -> UserInfo:
    """The user a verified, live token authenticates as (with the real ``extra`` keys)."""
    extra: dict[str, tuple[str, ...]] = {}
    if claims.credential_id:
        extra["authentication.kubernetes.io/credential-id"] = (claims.credential_id,)
    if claims.bound_kind == "Pod":
        extra["authentication.kubernetes.io/pod-name"] = (claims.bound_name,)
        extra["authentication.kubernetes.io/pod-uid"] = (claims.bound_uid,)
    return service_account_user(claims.namespace, claims.name, claims.uid, extra)
