"""The few API operations operator mode needs beyond the package's client, in one place.

Everything goes through :class:`~async_kubespawner.kube.client.KubeApi` (its retry policy,
timeouts and metrics); this module only adds the resource kinds of operator mode, merge
patches, replaces (for optimistic concurrency on Leases and finalizers), and a small
discovery cache that maps an ``apiVersion``/``kind`` named in a template to its REST path.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..kube.client import ApiError, KubeApi, Priority, ResourceKind
from .models import GROUP, VERSION

_PREFIX = f"/apis/{GROUP}/{VERSION}"

NOTEBOOK_SERVERS = ResourceKind("notebookservers", "NotebookServer", prefix=_PREFIX)
NOTEBOOK_TEMPLATES = ResourceKind("notebooktemplates", "NotebookTemplate", prefix=_PREFIX)
CLUSTER_NOTEBOOK_TEMPLATES = ResourceKind(
    "clusternotebooktemplates", "ClusterNotebookTemplate", namespaced=False, prefix=_PREFIX
)
LEASES = ResourceKind("leases", "Lease", prefix="/apis/coordination.k8s.io/v1")

MERGE_PATCH = "application/merge-patch+json"


async def merge_patch(
    api: KubeApi,
    rk: ResourceKind,
    namespace: str | None,
    name: str,
    patch: dict[str, Any],
    *,
    subresource: str = "",
    priority: Priority = Priority.NORMAL,
) -> dict[str, Any]:
    """A JSON merge patch (``metadata.resourceVersion`` in ``patch`` makes it conditional)."""
    path = rk.path(namespace, name) + (f"/{subresource}" if subresource else "")
    return await api.request(
        "patch", rk.plural, "PATCH", path, body=patch, content_type=MERGE_PATCH,
        priority=priority,
    )


async def replace(
    api: KubeApi, rk: ResourceKind, namespace: str | None, name: str, body: dict[str, Any],
    *, priority: Priority = Priority.NORMAL,
) -> dict[str, Any]:
    """PUT: fails with 409 when ``body``'s resourceVersion is no longer current."""
    return await api.request("replace", rk.plural, "PUT", rk.path(namespace, name), body=body,
                             priority=priority)


class KindResolver:
    """``(apiVersion, kind)`` -> :class:`ResourceKind`, from the API server's discovery.

    Asked once per group/version and remembered: templates name a handful of kinds.
    """

    def __init__(self, api: KubeApi) -> None:
        self.api = api
        self._known: dict[tuple[str, str], ResourceKind] = {
            ("v1", "Pod"): ResourceKind("pods", "Pod"),
            ("v1", "PersistentVolumeClaim"): ResourceKind("persistentvolumeclaims", "PersistentVolumeClaim"),
        }
        self._lock = asyncio.Lock()

    async def resolve(self, api_version: str, kind: str) -> ResourceKind:
        found = self._known.get((api_version, kind))
        if found is not None:
            return found
        async with self._lock:
            found = self._known.get((api_version, kind))
            if found is not None:
                return found
            prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            try:
                listing = await self.api.request("discover", "discovery", "GET", prefix)
            except ApiError as e:
                if e.status == 404:
                    raise LookupError(f"the API server does not serve {api_version}") from e
                raise
            for resource in listing.get("resources") or ():
                name = resource.get("name") or ""
                if "/" in name:
                    continue
                rk = ResourceKind(
                    name, resource.get("kind") or "", bool(resource.get("namespaced")), prefix
                )
                self._known[(api_version, rk.kind)] = rk
            found = self._known.get((api_version, kind))
            if found is None:
                raise LookupError(f"the API server does not serve {kind} in {api_version}")
            return found
