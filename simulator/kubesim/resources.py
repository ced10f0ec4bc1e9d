"""The resource types the simulator serves, and the registry CRDs add to at run time.

Routing, discovery, the store and error messages all need the same facts about a
resource (plural, kind, scope, subresources); keeping them in one registry means a
CustomResourceDefinition registered while the server runs is served everywhere at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import resource_not_found

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
CLUSTER_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    """One servable resource: what the URL says (group/version/plural) and what it holds."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    subresources: frozenset[str] = frozenset()
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    has_generation: bool = False
    storage_version_hash: str = ""
    # DELETE answers with the deleted object (else with a Status "Success") when the object
    # is gone at once; the real registries set this for pods, services, PVCs, namespaces, CRs.
    returns_deleted: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def key(self) -> tuple[str, str]:
        """Identity within the store: (group, plural); a kind has one stored version."""
        return (self.group, self.plural)


def _core(plural: str, kind: str, namespaced: bool = True, **kw: Any) -> ResourceType:
    return ResourceType(
        group="",
        version="v1",
        plural=plural,
        kind=kind,
        namespaced=namespaced,
        singular=kw.pop("singular", kind.lower()),
        **kw,
    )


BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _core("configmaps", "ConfigMap", short_names=("cm",), storage_version_hash="qFsyl6wFWjQ="),
    _core("events", "Event", short_names=("ev",), storage_version_hash="r2yiGXH7wu8="),
    _core(
        "namespaces",
        "Namespace",
        namespaced=False,
        short_names=("ns",),
        verbs=CLUSTER_VERBS,
        subresources=frozenset({"status", "finalize"}),
        returns_deleted=True,
        storage_version_hash="Q3oi5N2YM8M=",
    ),
    _core(
        "nodes",
        "Node",
        namespaced=False,
        short_names=("no",),
        subresources=frozenset({"status"}),
        storage_version_hash="XwShjMxG9Fs=",
    ),
    _core(
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        short_names=("pvc",),
        subresources=frozenset({"status"}),
        returns_deleted=True,
        storage_version_hash="QWTyNDq0dC4=",
    ),
    _core(
        "pods",
        "Pod",
        short_names=("po",),
        categories=("all",),
        subresources=frozenset({"status", "log", "binding"}),
        has_generation=True,
        returns_deleted=True,
        storage_version_hash="xPOwRZ+Yhw8=",
    ),
    _core("secrets", "Secret", storage_version_hash="S6u1pOWzb84="),
    _core(
        "serviceaccounts",
        "ServiceAccount",
        short_names=("sa",),
        storage_version_hash="pbx9ZvyFpBE=",
    ),
    _core(
        "services",
        "Service",
        short_names=("svc",),
        categories=("all",),
        subresources=frozenset({"status"}),
        returns_deleted=True,
        storage_version_hash="0/CO1lhkEBI=",
    ),
    ResourceType(
        group="events.k8s.io",
        version="v1",
        plural="events",
        kind="Event",
        namespaced=True,
        singular="event",
        short_names=("ev",),
        storage_version_hash="r2yiGXH7wu8=",
    ),
    ResourceType(
        group="coordination.k8s.io",
        version="v1",
        plural="leases",
        kind="Lease",
        namespaced=True,
        singular="lease",
        storage_version_hash="gqkMMb/YqFM=",
    ),
    ResourceType(
        group="apiextensions.k8s.io",
        version="v1",
        plural="customresourcedefinitions",
        kind="CustomResourceDefinition",
        namespaced=False,
        singular="customresourcedefinition",
        short_names=("crd", "crds"),
        subresources=frozenset({"status"}),
        has_generation=True,
        storage_version_hash="jfWCUB31mvA=",
    ),
)

# core/v1 events and events.k8s.io/v1 events are one stored collection, as in a real
# cluster: requests under events.k8s.io are served from the core one (event_views).

# Group names a real 1.36 server lists in /apis, in its order; groups the simulator
# does not serve are listed too so that kubectl's discovery matches, but have no resources.
REAL_GROUP_ORDER = (
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
    "resource.k8s.io",
    "flowcontrol.apiserver.k8s.io",
)


@dataclass
class ResourceRegistry:
    """Lookup of resource types by URL parts, plus the CRD schemas registered at run time."""

    types: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)
    schemas: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def with_builtins(cls) -> ResourceRegistry:
        reg = cls()
        for rt in BUILTIN_TYPES:
            reg.add(rt)
        from .auth.resources import AUTH_TYPES  # RBAC, reviews, serviceaccounts/token

        for rt in AUTH_TYPES:
            reg.add(rt)
        return reg

    def add(self, rt: ResourceType, schema: dict[str, Any] | None = None) -> None:
        self.types[(rt.group, rt.version, rt.plural)] = rt
        if schema is not None:
            self.schemas[(rt.group, rt.plural)] = schema

    def remove(self, group: str, plural: str) -> list[ResourceType]:
        gone = [rt for k, rt in self.types.items() if k[0] == group and k[2] == plural]
        for rt in gone:
            del self.types[(rt.group, rt.version, rt.plural)]
        self.schemas.pop((group, plural), None)
        return gone

    def lookup(self, plural: str, group: str = "", version: str | None = None) -> ResourceType:
        """The type for URL parts; 404 with the real body when nothing is served there."""
        if version is not None:
            rt = self.types.get((group, version, plural))
            if rt is None:
                raise resource_not_found()
            return rt
        for (g, _v, p), rt in self.types.items():
            if g == group and p == plural:
                return rt
        raise resource_not_found()

    def find(self, plural: str, group: str = "") -> ResourceType | None:
        for (g, _v, p), rt in self.types.items():
            if g == group and p == plural:
                return rt
        return None

    def by_kind(self, kind: str, api_version: str) -> ResourceType | None:
        for rt in self.types.values():
            if rt.kind == kind and rt.api_version == api_version:
                return rt
        return None

    def schema(self, rt: ResourceType) -> dict[str, Any] | None:
        return self.schemas.get(rt.key)

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(list(self.types.values()))

    def group_versions(self) -> dict[str, list[str]]:
        """Served API groups (non-core) and their versions, in registration order."""
        out: dict[str, list[str]] = {}
        for g, v, _p in self.types:
            if g and v not in out.setdefault(g, []):
                out[g].append(v)
        return out

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return sorted(
            (rt for (g, v, _p), rt in self.types.items() if g == group and v == version),
            key=lambda rt: rt.plural,
        )
