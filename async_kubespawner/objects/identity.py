"""Who an object belongs to: the identity a server's objects carry, and the rules that
decide, from an object's own metadata, whether a server may adopt, replace or delete it.

Names are not identities. Two servers can be given the same object name (the legacy
``escape`` scheme maps ``Bob`` and ``"\\x042ob"`` to the same slug; a template without
the server name gives every server of a user the same pod), an administrator can create
a Secret that happens to be named like a user's, and two hubs can share a namespace.
Acting on an object found by name alone then stops, replaces or deletes somebody else's
server or volume. So every object this package creates carries:

* upstream KubeSpawner's labels and annotations (``component``,
  ``hub.jupyter.org/username`` label and annotation, ``hub.jupyter.org/servername``),
  unchanged, so dashboards, network policies and a hub switching back keep working;
* one more annotation, :data:`IDENTITY_ANNOTATION`: the hub, the user and the server (the
  names exactly as the hub knows them) and, for a PVC, who the claim is for (one server,
  all servers of one user, or everybody).

Every decision here is a pure function of that metadata (no I/O), so it can be tested
with plain asserts and shared by start, stop, poll, ``delete_forever`` and the orphan
sweep. Objects written by upstream KubeSpawner (or by this package before it wrote the
identity annotation) carry only upstream's annotations; the raw user name in
``hub.jupyter.org/username`` still identifies the user exactly, so they are recognised
with the narrower rules documented on each function.
"""

from __future__ import annotations

import enum
import functools
import json
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: The identity annotation (a compact, ASCII-only JSON object).
IDENTITY_ANNOTATION = "hub.jupyter.org/async-kubespawner-owner"
#: Upstream KubeSpawner's owner annotations (raw names; the labels hold slugs).
USERNAME_ANNOTATION = "hub.jupyter.org/username"
SERVERNAME_ANNOTATION = "hub.jupyter.org/servername"
COMPONENT_LABEL = "component"
IDENTITY_VERSION = 1

#: Template fields that make a name differ between users / between a user's servers.
USER_UNIQUE_FIELDS = frozenset(
    {
        "username",
        "safe_username",
        "escaped_username",
        "unescaped_username",
        "userid",
        "user_server",
        "safe_user_server",
        "escaped_user_server",
    }
)
SERVER_UNIQUE_FIELDS = frozenset(
    {
        "servername",
        "safe_servername",
        "escaped_servername",
        "unescaped_servername",
        "user_server",
        "safe_user_server",
        "escaped_user_server",
    }
)


class Scope(enum.Enum):
    """Whom an object is for: one server, every server of one user, or everybody.

    Pods, Secrets and Services are always per server. A PVC's scope follows from the
    template that named it: ``claim-{user_server}`` is per server, ``home-{username}``
    is shared by the user's servers, ``shared-home`` by every user.
    """

    SERVER = "server"
    USER = "user"
    SHARED = "shared"


class Ownership(enum.Enum):
    """What an object's metadata says about a server's claim to it."""

    MINE = "mine"  # provably this server's
    FOREIGN = "foreign"  # provably somebody else's (another user, server or hub)
    UNOWNED = "unowned"  # no hub identity at all (made by hand or by another tool)


@dataclass(frozen=True)
class ServerIdentity:
    """A server as its hub knows it: the hub's identity, the raw user and server names."""

    hub: str
    user: str
    server: str = ""

    def annotation(self, scope: Scope = Scope.SERVER) -> str:
        """The :data:`IDENTITY_ANNOTATION` value. ASCII-only JSON (``ensure_ascii``): any
        user name, control characters included, round-trips exactly and prints safely."""
        return _identity_annotation(self.hub, self.user, self.server, scope)


@functools.lru_cache(maxsize=1024)
def _identity_annotation(hub: str, user: str, server: str, scope: Scope) -> str:
    """Encoded once per identity while it is in use: a start writes it on the pod, the
    Secret and the Service, and checks the PVC's against it."""
    return json.dumps(
        {"v": IDENTITY_VERSION, "hub": hub, "user": user, "server": server, "scope": scope.value},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )


@dataclass(frozen=True)
class OwnerRecord:
    """What an object says about its owner.

    ``hub`` and ``scope`` are None for objects written by upstream KubeSpawner (only its
    username/servername annotations). ``readable`` is False for an identity annotation
    that cannot be parsed: such an object is never treated as anybody's.
    """

    user: str | None
    server: str
    hub: str | None = None
    scope: Scope | None = None
    readable: bool = True

    @property
    def upstream(self) -> bool:
        return self.hub is None


def read_owner(metadata: Mapping[str, Any]) -> OwnerRecord | None:
    """The owner an object's metadata names, or None when it names none."""
    annotations = metadata.get("annotations") or {}
    raw = annotations.get(IDENTITY_ANNOTATION)
    if raw is not None:
        return _parse_identity(raw)
    user = annotations.get(USERNAME_ANNOTATION)
    if isinstance(user, str):
        server = annotations.get(SERVERNAME_ANNOTATION) or ""
        return OwnerRecord(user=user, server=server if isinstance(server, str) else "")
    return None


def _parse_identity(raw: Any) -> OwnerRecord:
    unreadable = OwnerRecord(user=None, server="", readable=False)
    if not isinstance(raw, str):
        return unreadable
    try:
        data = json.loads(raw)
    except ValueError:
        return unreadable
    if not isinstance(data, dict) or data.get("v") != IDENTITY_VERSION:
        return unreadable
    hub, user, server = data.get("hub"), data.get("user"), data.get("server")
    if not (isinstance(hub, str) and isinstance(user, str) and isinstance(server, str)):
        return unreadable
    try:
        scope = Scope(data.get("scope"))
    except ValueError:
        return unreadable
    return OwnerRecord(user=user, server=server, hub=hub, scope=scope)


def _not_this_user(identity: ServerIdentity, owner: OwnerRecord) -> str | None:
    """Why ``owner`` is not this hub's record of this user (unreadable, another hub's,
    another user's), or None when it is. Every ownership decision starts here, so pods,
    Secrets, Services and PVCs are refused for the same reasons."""
    if not owner.readable:
        return "its owner annotation cannot be read"
    if owner.hub is not None and owner.hub != identity.hub:
        return "it belongs to another hub"
    if owner.user != identity.user:
        return "it belongs to another user"
    return None


def _same_server(identity: ServerIdentity, owner: OwnerRecord) -> bool:
    return _not_this_user(identity, owner) is None and owner.server == identity.server


def pod_ownership(
    identity: ServerIdentity, metadata: Mapping[str, Any], component_label: str
) -> Ownership:
    """Whether a pod is this server's.

    The ``component`` label must be this hub's (a pod of another hub with the same name
    is not ours even when its annotations name the same user), and the owner must be
    this server. A pod with upstream's annotations only (a hub that switched from
    upstream KubeSpawner, servers still running) is this server's when the raw user and
    server names match: they are exact, unlike the slugs in names and labels.
    """
    labels = metadata.get("labels") or {}
    owner = read_owner(metadata)
    if labels.get(COMPONENT_LABEL) != component_label:
        return Ownership.FOREIGN if owner is not None else Ownership.UNOWNED
    if owner is None:
        return Ownership.UNOWNED
    return Ownership.MINE if _same_server(identity, owner) else Ownership.FOREIGN


def object_ownership(identity: ServerIdentity, metadata: Mapping[str, Any]) -> Ownership:
    """Whether a Secret or Service is this server's (they carry no component label
    upstream, so the owner annotations alone decide)."""
    owner = read_owner(metadata)
    if owner is None:
        return Ownership.UNOWNED
    return Ownership.MINE if _same_server(identity, owner) else Ownership.FOREIGN


@dataclass(frozen=True)
class Decision:
    """A yes/no with the reason, for the log line (never shown to another user)."""

    allowed: bool
    reason: str


def pvc_adoption(
    identity: ServerIdentity,
    metadata: Mapping[str, Any],
    scope: Scope,
    *,
    adopt_unowned: bool = False,
) -> Decision:
    """May a server mount an existing PVC of the name its template gives?

    * ``scope`` SHARED (the template names no user): the name is the operator's contract,
      every user mounts it, whoever created it.
    * a PVC with no owner at all (made by an administrator): only with
      ``storage_adopt_unowned_pvcs``, which says such claims were pre-provisioned.
    * otherwise the owner must be this user (for a per-user claim) or this very server
      (per-server claim), and of this hub when the PVC records one. Upstream KubeSpawner's
      claims qualify by their raw ``hub.jupyter.org/username`` (and ``servername``)
      annotations, so a migrating hub's users keep their volumes.
    """
    if scope is Scope.SHARED:
        return Decision(True, "the PVC name is shared by configuration")
    owner = read_owner(metadata)
    if owner is None:
        if adopt_unowned:
            return Decision(True, "no owner recorded; storage_adopt_unowned_pvcs is on")
        return Decision(False, "it records no owner")
    refusal = _not_this_user(identity, owner)
    if refusal is not None:
        return Decision(False, refusal)
    if scope is Scope.USER:
        return Decision(True, "it is this user's")
    if owner.scope is Scope.USER:
        # Created under an earlier per-user template that gave the same name.
        return Decision(True, "it is this user's (per-user claim)")
    if owner.server != identity.server:
        return Decision(False, "it belongs to another server of this user")
    return Decision(True, "it is this server's")


def pvc_deletion(
    identity: ServerIdentity,
    metadata: Mapping[str, Any],
    *,
    name: str,
    names_of_this_server: Iterable[str],
    template_scope: Scope,
) -> Decision:
    """May ``delete_forever`` delete this PVC (``name`` is the one it would delete)?

    Only a claim provably for this server alone, or for this user alone when the user's
    default server is being deleted (a user's deletion), is ever deleted:

    * recorded by this package: its own scope decides (SHARED: never; USER: only from
      the default server, i.e. when the user is deleted; SERVER: this server), and the
      owner must match, hub included;
    * written by upstream KubeSpawner (owner annotations only, no scope): the owner must
      match *and* ``name`` must be what the current template gives this server (so a
      claim remembered from an older, shared template is never taken for this server's),
      with a template that names the user (and, for a named server, the server);
    * no owner at all: never (an administrator's claim).
    """
    owner = read_owner(metadata)
    if owner is None:
        return Decision(False, "it records no owner (created outside the hub)")
    refusal = _not_this_user(identity, owner)
    if refusal is not None:
        return Decision(False, refusal)
    scope = owner.scope
    if scope is None:
        if name not in set(names_of_this_server):
            return Decision(
                False, "its name is not what the current pvc_name_template gives this server"
            )
        scope = template_scope
    if scope is Scope.SHARED:
        return Decision(False, "it is shared by every user")
    if scope is Scope.USER:
        if identity.server:
            return Decision(False, "it is shared by the user's servers")
        return Decision(True, "it is this user's")
    if owner.server != identity.server:
        return Decision(False, "it belongs to another server of this user")
    return Decision(True, "it is this server's")


# -- templates --------------------------------------------------------------------------


def template_fields(template: str, inherited: Mapping[str, Iterable[str]] | None = None) -> set[str]:
    """The fields a template uses, with fields that stand for other templates
    (``{pod_name}`` in ``secret_name_template``) replaced by those templates' fields."""
    used: set[str] = set()
    for _literal, field, _spec, _conv in string.Formatter().parse(template):
        if field is None:
            continue
        root = field.split(".", 1)[0].split("[", 1)[0]
        used.add(root)
    for name, fields in (inherited or {}).items():
        if name in used:
            used |= set(fields)
    return used


def template_scope(
    template: str,
    inherited: Mapping[str, Iterable[str]] | None = None,
    context: Iterable[str] = (),
) -> Scope:
    """The scope of the names a template gives (see :class:`Scope`). ``context`` are the
    fields of whatever else tells two objects apart: a per-user namespace's template."""
    used = template_fields(template, inherited) | set(context)
    if not used & USER_UNIQUE_FIELDS:
        return Scope.SHARED
    if used & SERVER_UNIQUE_FIELDS:
        return Scope.SERVER
    return Scope.USER


def uniqueness_problem(
    template: str,
    *,
    named_servers: bool,
    inherited: Mapping[str, Iterable[str]] | None = None,
    context: Iterable[str] = (),
) -> str | None:
    """Why a name template cannot give every server its own name, or None when it can.

    ``inherited`` adds the fields of templates a field stands for (``pod_name``);
    ``context`` those of a per-user namespace (objects are unique per namespace, so with
    user namespaces the namespace already separates users).
    """
    scope = template_scope(template, inherited, context)
    if scope is Scope.SHARED:
        return "it gives every user the same name (it contains no user field)"
    if scope is Scope.USER and named_servers:
        return (
            "it gives all servers of a user the same name (it contains no server field) "
            "while named servers are allowed"
        )
    return None
