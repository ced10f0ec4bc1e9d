"""``Impersonate-*`` headers (``kubectl --as``/``--as-group``), as the real filter handles them.

The authenticated user must be allowed the ``impersonate`` verb on each thing it claims:
``users``, ``groups`` or ``serviceaccounts`` (core group) and ``uids`` or
``userextras/KEY`` (authentication.k8s.io). The request then runs as the impersonated
user, with ``system:authenticated`` added (and a ServiceAccount's groups when none are
given), so a test can ask "what could this account do" with the admin's credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .. import errors
from .requestinfo import Attributes
from .resources import AUTHN_GROUP
from .users import AUTHENTICATED, SERVICE_ACCOUNTS, UserInfo, split_service_account

EXTRA_PREFIX = "impersonate-extra-"


def impersonated(
    requester: UserInfo,
    headers: Mapping[str, str],
    getall: Callable[[str], list[str]],
    allowed: Callable[[UserInfo, Attributes], tuple[bool, str]],
) -> UserInfo | None:
    """The user the request acts as, None without impersonation; raises the real 403."""
    name = headers.get("Impersonate-User")
    groups = getall("Impersonate-Group")
    uid = headers.get("Impersonate-Uid")
    extra: dict[str, tuple[str, ...]] = {}
    for header in headers:
        if header.lower().startswith(EXTRA_PREFIX):
            key = header[len(EXTRA_PREFIX) :].lower()
            extra[key] = tuple(getall(header))
    if name is None:
        if groups or uid or extra:
            raise errors.StatusError(
                errors.status_body(
                    500,
                    "InternalError",
                    "Internal error occurred: requested impersonation is not supported: "
                    "impersonating user must be set",
                    {},
                )
            )
        return None
    checks: list[Attributes] = []
    account = split_service_account(name)
    if account is not None:
        checks.append(
            Attributes("impersonate", True, "", "", "", account[0], "serviceaccounts", "", account[1])
        )
    else:
        checks.append(Attributes("impersonate", True, "", "", "", "", "users", "", name))
    checks += [Attributes("impersonate", True, "", "", "", "", "groups", "", g) for g in groups]
    if uid:
        checks.append(Attributes("impersonate", True, "", AUTHN_GROUP, "", "", "uids", "", uid))
    for key, values in extra.items():
        checks += [
            Attributes("impersonate", True, "", AUTHN_GROUP, "", "", "userextras", key, v)
            for v in values
        ]
    for attrs in checks:
        ok, reason = allowed(requester, attrs)
        if not ok:
            from . import forbidden  # the one place 403 bodies are built

            raise forbidden(requester, attrs, reason)
    if account is not None and not groups:
        groups = [SERVICE_ACCOUNTS, f"{SERVICE_ACCOUNTS}:{account[0]}"]
    if name != "system:anonymous" and AUTHENTICATED not in groups:
        groups = [*groups, AUTHENTICATED]
    return UserInfo(name=name, uid=uid or "", groups=tuple(groups), extra=extra)
