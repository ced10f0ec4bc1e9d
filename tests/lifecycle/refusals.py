"""Shared by the invalid-configuration tests: a PVC-backed home and the "nothing created" check.

A refusal is only safe if it leaves the cluster as it found it, so every row of those
tables ends with :func:`nothing_created`.
"""

from __future__ import annotations

from typing import Any

#: Settings that make the spawner ensure a PVC before the pod.
PVC = {"storage_pvc_ensure": True, "storage_capacity": "1Gi"}
#: A home volume mounted from that PVC (the claim name is a template the spawner expands).
MOUNTED = {
    "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}],
    "volume_mounts": [{"name": "home", "mountPath": "/home/jovyan"}],
}


def nothing_created(sim: Any, namespaces_before: int) -> None:
    """Assert the simulator holds no pod, PVC, Secret, Service and no new namespace."""
    store = sim.store
    for plural in ("pods", "persistentvolumeclaims", "secrets", "services"):
        items, _ = store.list(store.resource(plural), None)
        assert items == [], (plural, [i["metadata"]["name"] for i in items])
    namespaces, _ = store.list(store.resource("namespaces"), None)
    assert len(namespaces) == namespaces_before
