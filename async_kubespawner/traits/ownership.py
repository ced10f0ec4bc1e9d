"""Which objects a server may treat as its own (see ``objects/identity.py`` and
docs/security.md)."""

from __future__ import annotations

from typing import Any

from traitlets import Bool, Unicode, validate
from traitlets.config import LoggingConfigurable

from .errors import SpawnerConfigError


class OwnershipTraits(LoggingConfigurable):
    hub_identity = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""Identifies this hub in the owner annotation
        (hub.jupyter.org/async-kubespawner-owner) of every pod, PVC, Secret and Service it
        creates; a server acts only on objects that name this hub, its user and itself.
        None: the hub's namespace and component_label ('jhub/singleuser-server'), which
        already differ between hubs that may share a namespace. Set it to keep that value
        when moving a hub to another namespace: objects recording another identity are
        never stopped, replaced or deleted by this hub.""",
    )
    delete_orphaned_pods = Bool(
        True,
        config=True,
        help="""Once per hub process, delete pods this hub created for servers its
        database records as stopped (a stop that could not reach the API server before
        the hub restarted). Only pods whose owner annotation names this hub and a user
        and server the database knows are touched; see docs/security.md. Turn off to
        leave such pods for an administrator.""",
    )
    storage_adopt_unowned_pvcs = Bool(
        False,
        config=True,
        help="""With storage_pvc_ensure, mount an existing PVC of this server's name that
        records no owner at all (created by an administrator, e.g. pre-provisioned for
        each user). Off by default: a PVC is otherwise mounted only when it records this
        server (or this user, for a per-user name) as its owner, or when
        pvc_name_template names no user (shared by configuration). Adopted unowned
        claims are never deleted by delete_forever.""",
    )

    @validate("hub_identity")
    def _check_hub_identity(self, proposal: Any) -> str | None:
        value = proposal.value
        if value is not None and (not value.strip() or len(value) > 253):
            raise SpawnerConfigError(
                "hub_identity",
                value,
                "it must be a non-empty string of at most 253 characters",
                "Use something that names this hub, such as its namespace and release.",
            )
        return value
