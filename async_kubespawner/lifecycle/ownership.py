"""API operations that act on an object only once its metadata proves it is this
server's (the rules are the pure functions of ``objects/identity.py``).

Every destructive call that follows a read carries the read object's uid as a
precondition: between "it is mine" and the DELETE, somebody may have replaced the
object with theirs under the same name, and the API server then refuses (409) instead of
deleting the newcomer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from ..kube.client import PVCS, KubeApi, ResourceKind
from ..kube.errors import Conflict
from ..objects.identity import (
    Decision,
    Ownership,
    Scope,
    ServerIdentity,
    object_ownership,
    pvc_adoption,
    pvc_deletion,
)

log = logging.getLogger("async_kubespawner.ownership")


class NotMine(Exception):
    """An object of the name this server needs exists and is not provably its own.

    The message names the kind, namespace and name, never the other owner: it reaches
    the user who started the server.
    """

    def __init__(self, kind: str, namespace: str, name: str, reason: str) -> None:
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.reason = reason
        super().__init__(
            f"A {kind} named {name!r} already exists in namespace {namespace!r} and is not "
            f"this server's ({reason})."
        )


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


async def create_or_replace_own(
    api: KubeApi,
    kind: ResourceKind,
    namespace: str,
    manifest: Any,
    identity: ServerIdentity,
) -> None:
    """Create an object; on 409 replace it only if it is this server's leftover (an
    earlier run's, whose owner pod is gone). Raises :class:`NotMine` otherwise."""
    name = manifest.metadata.name
    try:
        await api.create(kind, namespace, manifest)
        return
    except Conflict:
        pass
    existing = await api.get_or_none(kind, namespace, name)
    if existing is not None:
        verdict = object_ownership(identity, _meta(existing))
        if verdict is not Ownership.MINE:
            log.warning(
                "kubespawner %s=%s/%s state=name-taken owner=%s",
                kind.kind.lower(),
                namespace,
                name,
                verdict.value,
            )
            raise NotMine(kind.kind, namespace, name, _reason(verdict))
        await api.delete(kind, namespace, name, uid=_meta(existing).get("uid"))
    await api.create(kind, namespace, manifest)


def _reason(verdict: Ownership) -> str:
    if verdict is Ownership.UNOWNED:
        return "it was not created by the hub"
    return "it belongs to another server or hub"


async def delete_own(
    api: KubeApi,
    kind: ResourceKind,
    namespace: str,
    name: str,
    identity: ServerIdentity,
    *,
    retry_timeout: float | None = None,
) -> str:
    """Delete a Secret or Service if it is this server's; returns what happened:
    ``deleted``, ``gone`` or ``not-mine`` (left untouched)."""
    existing = await api.get_or_none(kind, namespace, name, retry_timeout=retry_timeout)
    if existing is None:
        return "gone"
    if object_ownership(identity, _meta(existing)) is not Ownership.MINE:
        log.warning(
            "kubespawner %s=%s/%s state=not-mine: left in place",
            kind.kind.lower(),
            namespace,
            name,
        )
        return "not-mine"
    try:
        deleted = await api.delete(
            kind, namespace, name, uid=_meta(existing).get("uid"), retry_timeout=retry_timeout
        )
    except Conflict:  # replaced since we read it: no longer ours to delete
        return "not-mine"
    return "deleted" if deleted is not None else "gone"


async def adopt_or_create_pvc(
    api: KubeApi,
    namespace: str,
    manifest: Any,
    identity: ServerIdentity,
    scope: Scope,
    *,
    adopt_unowned: bool,
) -> bool:
    """Create the PVC, or adopt the existing one of that name if :func:`pvc_adoption`
    allows it. True when created. Raises :class:`NotMine` when it may not be mounted."""
    name = manifest.metadata.name
    try:
        await api.create(PVCS, namespace, manifest)
        return True
    except Conflict:
        pass
    existing = await api.get_or_none(PVCS, namespace, name)
    if existing is None:
        # Deleted between our create and our read: one more try, with the same rule.
        return await adopt_or_create_pvc(
            api, namespace, manifest, identity, scope, adopt_unowned=adopt_unowned
        )
    decision = pvc_adoption(identity, _meta(existing), scope, adopt_unowned=adopt_unowned)
    if not decision.allowed:
        log.warning(
            "kubespawner pvc=%s/%s state=not-adopted reason=%r", namespace, name, decision.reason
        )
        raise NotMine("PersistentVolumeClaim", namespace, name, decision.reason)
    log.debug("kubespawner pvc=%s/%s state=adopted reason=%r", namespace, name, decision.reason)
    return False


async def pvc_is_adoptable(
    api: KubeApi,
    namespace: str,
    name: str,
    identity: ServerIdentity,
    scope: Scope,
    *,
    adopt_unowned: bool,
) -> bool:
    """Whether a PVC of that name exists and this server may mount it (the legacy-name
    check of a server saved by KubeSpawner < 7 asks this)."""
    existing = await api.get_or_none(PVCS, namespace, name)
    if existing is None:
        return False
    return pvc_adoption(identity, _meta(existing), scope, adopt_unowned=adopt_unowned).allowed


async def _pvc_deletion_decision(
    api: KubeApi,
    namespace: str,
    name: str,
    identity: ServerIdentity,
    names_of_this_server: Callable[[], set[str]],
    template_scope: Scope,
) -> tuple[dict[str, Any] | None, Decision | None]:
    """The PVC ``name`` as read now and :func:`pvc_deletion`'s verdict on it (both None
    when it does not exist): deleting it and asking whether it is held by the server's
    name must judge the claim the same way."""
    existing = await api.get_or_none(PVCS, namespace, name)
    if existing is None:
        return None, None
    decision = pvc_deletion(
        identity,
        _meta(existing),
        name=name,
        names_of_this_server=names_of_this_server(),
        template_scope=template_scope,
    )
    return existing, decision


async def delete_pvc_forever(
    api: KubeApi,
    namespace: str,
    name: str,
    identity: ServerIdentity,
    *,
    names_of_this_server: Callable[[], set[str]],
    template_scope: Scope,
) -> tuple[str, Decision | None]:
    """Delete the PVC ``name`` (the one the server's state remembers) if
    :func:`pvc_deletion` proves it is this server's alone. Returns the outcome
    (``deleted``, ``gone``, ``kept``) and the decision behind it."""
    existing, decision = await _pvc_deletion_decision(
        api, namespace, name, identity, names_of_this_server, template_scope
    )
    if existing is None or decision is None:
        return "gone", None
    if not decision.allowed:
        return "kept", decision
    try:
        deleted = await api.delete(PVCS, namespace, name, uid=_meta(existing).get("uid"))
    except Conflict:
        return "kept", Decision(False, "it was replaced while being checked")
    return ("deleted" if deleted is not None else "gone"), decision


async def pvc_held_by_server_name(
    api: KubeApi,
    namespace: str,
    name: str,
    identity: ServerIdentity,
    *,
    names_of_this_server: Callable[[], set[str]],
    template_scope: Scope,
) -> bool:
    """Whether the PVC ``name`` exists and is this server's alone (what ``delete_forever``
    would delete): its owner annotation names the server, so renaming the server would
    strand it. Claims shared by the user's servers or by everybody, and claims nobody
    owns, are not held by the server's name."""
    _, decision = await _pvc_deletion_decision(
        api, namespace, name, identity, names_of_this_server, template_scope
    )
    return decision is not None and decision.allowed
