"""A server's saved state (JupyterHub's ``orm.Spawner.state``) to and from plain data.

The keys are upstream KubeSpawner 7's, so a hub can switch spawners in either
direction and keep its running servers and volumes: ``pod_name``, ``namespace``,
``dns_name``, ``pvc_name`` (only once the PVC is known to exist) and
``kubespawner_version``; our own version goes under :data:`STATE_VERSION_KEY`.

Pure functions over mappings: the spawner's ``get_state`` / ``load_state`` /
``clear_state`` only call these and keep the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .names import Names, Remembered

__all__ = [
    "LEGACY_STATE_VERSION",
    "STATE_VERSION_KEY",
    "UPSTREAM_COMPATIBLE_VERSION",
    "SavedNames",
    "after_stop",
    "read_state",
    "state_to_save",
]

# What we write as ``kubespawner_version``: the upstream release whose state layout
# and names we reproduce, so a hub switching back to upstream KubeSpawner does not
# mistake our state for pre-7 state. Our own version goes under STATE_VERSION_KEY.
UPSTREAM_COMPATIBLE_VERSION = "7.1.0"
STATE_VERSION_KEY = "async_kubespawner_version"
# The recorded version of state that exists but records none: written by a
# KubeSpawner older than 7.0 (the value upstream uses, for subclasses that look).
LEGACY_STATE_VERSION = "unknown"


@dataclass(frozen=True)
class SavedNames:
    """What a server's state says about its objects.

    ``names`` are the names that win over the templates; ``existing_pvc`` the name of
    the PVC known to exist (saved whatever ``remember_pvc_name`` says, so that turning
    the option on later works); ``version`` the ``kubespawner_version`` that wrote the
    state (:data:`LEGACY_STATE_VERSION` for pre-7 state, None for no state at all).
    """

    names: Remembered = field(default_factory=Remembered)
    existing_pvc: str | None = None
    version: str | None = None

    @property
    def pvc_exists(self) -> bool:
        return self.existing_pvc is not None

    @property
    def is_legacy(self) -> bool:
        return self.version == LEGACY_STATE_VERSION

    def with_pvc(self, name: str, *, remember: bool) -> SavedNames:
        """The PVC ``name`` now exists. With ``remember``, its name is kept from now
        on, unless one is remembered already (the remembered volume stays the user's)."""
        names = self.names
        if remember and not names.pvc_name:
            names = replace(names, pvc_name=name)
        return replace(self, names=names, existing_pvc=name)


def read_state(state: Mapping[str, Any], *, remember_pvc_name: bool) -> SavedNames:
    """Interpret a saved state (ours or upstream's, any version)."""
    pvc_name = state.get("pvc_name") if remember_pvc_name else None
    names = Remembered(
        namespace=state.get("namespace") or None,
        pod_name=state.get("pod_name") or None,
        dns_name=state.get("dns_name") or None,
        pvc_name=pvc_name or None,
    )
    if "kubespawner_version" in state:
        version: str | None = str(state["kubespawner_version"])
    elif state:
        version = LEGACY_STATE_VERSION
    else:
        version = None
    return SavedNames(names=names, existing_pvc=pvc_name or None, version=version)


def state_to_save(names: Names, saved: SavedNames, our_version: str) -> dict[str, Any]:
    """The keys this spawner adds to JupyterHub's state for a server named ``names``."""
    state: dict[str, Any] = {
        "pod_name": names.pod_name,
        "namespace": names.namespace,
        "dns_name": names.dns_name,
        "kubespawner_version": UPSTREAM_COMPATIBLE_VERSION,
        STATE_VERSION_KEY: our_version,
    }
    if saved.existing_pvc:
        state["pvc_name"] = saved.names.pvc_name or saved.existing_pvc
    return state


def after_stop(saved: SavedNames) -> SavedNames:
    """What outlives a stopped server: its namespace (its volume lives there) and a
    remembered PVC name. The pod and DNS names are made anew at the next start, so a
    changed template takes effect then (as upstream)."""
    return replace(saved, names=replace(saved.names, pod_name=None, dns_name=None))
