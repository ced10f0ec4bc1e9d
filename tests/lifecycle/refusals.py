"""Shared by the invalid-configuration tests: a PVC-backed home and the "nothing created" check.

A refusal is only safe if it leaves the cluster as it found it, so every row of those
tables ends with :func:`nothing_created`.
"""

from __future__ import annotations

from typing import Any

from traitlets import TraitError

#: Settings that make the spawner ensure a PVC before the pod.
PVC = {"storage_pvc_ensure": True, "storage_capacity": "1Gi"}
#: A home volume mounted from that PVC (the claim name is a template the spawner expands).
MOUNTED = {
    "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}],
    "volume_mounts": [{"name": "home", "mountPath": "/home/jovyan"}],
}


def namespace_count(sim: Any) -> int:
    """How many namespaces the simulator holds (a refusal must not add one)."""
    return len(sim.store.list(sim.store.resource("namespaces"), None)[0])


async def refusal(make_spawner: Any, config: dict[str, Any]) -> str:
    """The message of the TraitError that refuses ``config``: raised when the hub loads
    it, or else by ``start()`` before its first create. No error at all fails the test."""
    try:
        spawner = make_spawner(**config)
    except TraitError as e:
        return str(e)
    try:
        await spawner.start()
    except TraitError as e:
        return str(e)
    raise AssertionError(f"start() accepted {sorted(config)}")


def nothing_created(sim: Any, namespaces_before: int) -> None:
    """Assert the simulator holds no pod, PVC, Secret, Service and no new namespace."""
    store = sim.store
    for plural in ("pods", "persistentvolumeclaims", "secrets", "services"):
        items, _ = store.list(store.resource(plural), None)
        assert items == [], (plural, [i["metadata"]["name"] for i in items])
    namespaces, _ = store.list(store.resource("namespaces"), None)
    assert len(namespaces) == namespaces_before
