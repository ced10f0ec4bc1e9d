"""Who a request is from, in the words of the real authenticators."""

from __future__ import annotations

from dataclasses import dataclass, field

AUTHENTICATED = "system:authenticated"
MASTERS = "system:masters"
SERVICE_ACCOUNTS = "system:serviceaccounts"
SA_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True)
class UserInfo:
    """An authenticated identity: what RBAC subjects and reviews are matched against."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict, hash=False, compare=False)

    def to_api(self) -> dict[str, object]:
        """As ``UserInfo`` in TokenReview and SelfSubjectReview status."""
        body: dict[str, object] = {"username": self.name}
        if self.uid:
            body["uid"] = self.uid
        body["groups"] = list(self.groups)
        if self.extra:
            body["extra"] = {k: list(v) for k, v in self.extra.items()}
        return body


def service_account_user(
    namespace: str, name: str, uid: str = "", extra: dict[str, tuple[str, ...]] | None = None
) -> UserInfo:
    """The identity a ServiceAccount token stands for, with the groups the server adds."""
    return UserInfo(
        name=f"{SA_PREFIX}{namespace}:{name}",
        uid=uid,
        groups=(SERVICE_ACCOUNTS, f"{SERVICE_ACCOUNTS}:{namespace}", AUTHENTICATED),
        extra=extra or {},
    )


def split_service_account(username: str) -> tuple[str, str] | None:
    """(namespace, name) of ``system:serviceaccount:NS:NAME``, else None."""
    if not username.startswith(SA_PREFIX):
        return None
    namespace, sep, name = username[len(SA_PREFIX) :].partition(":")
    if not sep or not namespace or not name or ":" in name:
        return None
    return namespace, name


#: Who a request is from when authentication is off: it may do anything, as before.
UNAUTHENTICATED_ADMIN = UserInfo(name="system:admin", groups=(MASTERS, AUTHENTICATED))
