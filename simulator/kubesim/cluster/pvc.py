"""The PersistentVolumeClaim binder: dynamic provisioning and static binding, or the reason why not.

The store has no PersistentVolume or StorageClass kinds, so both come from the cluster
configuration (what an operator would have installed). A claim binds after the class's
provisioning delay; without a usable class or volume it stays Pending with the events
the persistentvolume controller emits, and the scheduler keeps its pods unschedulable.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from kubesim.quantity_grammar import QuantityError, parse_quantity

from .clock import Clock
from .events import involved_object, recorder_event
from .storeview import StoreLike, cancel_all, is_missing, key_of, list_and_watch, record, spawn

PV_CONTROLLER = "persistentvolume-controller"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
BINDING_MODES = ("Immediate", "WaitForFirstConsumer")


@dataclass
class StorageClassSpec:
    name: str
    provisioner: str = "sim.async-kubespawner/hostpath"
    bind_delay: float = 1.0  # cluster seconds from claim to Bound
    default: bool = False
    fails: bool = False  # the provisioner refuses every claim (ProvisioningFailed)
    # WaitForFirstConsumer: provision only once the scheduler has picked a node for a pod
    # using the claim (most cloud default classes); Immediate: at once
    volume_binding_mode: str = "Immediate"

    def __post_init__(self) -> None:
        if self.volume_binding_mode not in BINDING_MODES:
            raise ValueError(
                f"storage class {self.name!r}: volume_binding_mode "
                f"{self.volume_binding_mode!r} is not one of {', '.join(BINDING_MODES)}"
            )


@dataclass
class PersistentVolumeSpec:
    """A pre-created volume claims can bind to (static provisioning)."""

    name: str
    capacity: str = "10Gi"
    access_modes: list[str] = field(default_factory=lambda: ["ReadWriteOnce"])
    storage_class: str = ""


def _event(
    pvc: dict[str, Any], reason: str, message: str, type_: str, component: str
) -> dict[str, Any]:
    involved = involved_object(pvc, "PersistentVolumeClaim")
    return recorder_event(
        involved, involved["namespace"], reason, message, type_=type_, component=component
    )


class PVCBinder:
    """A ``Controller`` (docs/contracts.md §2) playing the persistentvolume controller and provisioner."""

    def __init__(
        self,
        storage_classes: list[StorageClassSpec] | None = None,
        volumes: list[PersistentVolumeSpec] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.classes = {c.name: c for c in storage_classes or []}
        self.volumes = list(volumes or [])
        self.bound_volumes: dict[str, tuple[str, str]] = {}  # pv name -> claim key
        self.clock = clock or Clock.real()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._handled: set[str] = set()  # claim uids being provisioned or reported
        self._waiting_for_consumer: set[str] = set()  # WaitForFirstConsumer event already sent
        self.store: StoreLike | None = None

    @property
    def default_class(self) -> StorageClassSpec | None:
        return next((c for c in self.classes.values() if c.default), None)

    async def start(self, store: StoreLike) -> None:
        self.store = store
        self._pvcs = store.resource("persistentvolumeclaims")
        spawn(list_and_watch(store, self._pvcs, self._on_pvc), self._tasks, "pvc binder watch")

    async def stop(self) -> None:
        await cancel_all(self._tasks)

    def _on_pvc(self, kind: str, pvc: dict[str, Any]) -> None:
        meta = pvc.get("metadata") or {}
        uid = meta.get("uid") or ""
        if kind == "DELETED":
            self._handled.discard(uid)
            self._waiting_for_consumer.discard(uid)
            for pv, claim in list(self.bound_volumes.items()):
                if claim == key_of(pvc):
                    del self.bound_volumes[pv]
            return
        if (pvc.get("status") or {}).get("phase") != "Pending" or uid in self._handled:
            return
        if meta.get("deletionTimestamp"):
            return
        storage_class = self.class_of(pvc)
        if (
            storage_class is not None
            and storage_class.volume_binding_mode == "WaitForFirstConsumer"
            and SELECTED_NODE not in (meta.get("annotations") or {})
        ):
            if uid not in self._waiting_for_consumer:  # said once; provisioned on selection
                self._waiting_for_consumer.add(uid)
                assert self.store is not None
                spawn(
                    record(
                        self.store,
                        _event(
                            pvc,
                            "WaitForFirstConsumer",
                            "waiting for first consumer to be created before binding",
                            "Normal",
                            PV_CONTROLLER,
                        ),
                    ),
                    self._tasks,
                    f"pvc event {key_of(pvc)}",
                )
            return
        self._handled.add(uid)
        spawn(self._bind(pvc), self._tasks, f"pvc binder {key_of(pvc)}")

    async def _bind(self, pvc: dict[str, Any]) -> None:
        assert self.store is not None
        spec = pvc.get("spec") or {}
        class_name = spec.get("storageClassName")
        namespace, name = key_of(pvc)
        volume = self._matching_volume(pvc, class_name or "")
        if volume is not None:
            await self._mark_bound(pvc, volume.name, volume.capacity, bound_by_controller=True)
            return
        storage_class = (
            self.classes.get(class_name)
            if class_name
            else (self.default_class if class_name is None else None)
        )
        if class_name and storage_class is None:
            await record(
                self.store,
                _event(
                    pvc,
                    "ProvisioningFailed",
                    f'storageclass.storage.k8s.io "{class_name}" not found',
                    "Warning",
                    PV_CONTROLLER,
                ),
            )
            return
        if storage_class is None:
            await record(
                self.store,
                _event(
                    pvc,
                    "FailedBinding",
                    "no persistent volumes available for this claim and no storage class is set",
                    "Normal",
                    PV_CONTROLLER,
                ),
            )
            return
        provisioner = storage_class.provisioner
        await record(
            self.store,
            _event(
                pvc,
                "ExternalProvisioning",
                f"Waiting for a volume to be created either by the external provisioner "
                f"'{provisioner}' or manually by the system administrator. If volume creation is "
                "delayed, please verify that the provisioner is running and correctly registered.",
                "Normal",
                PV_CONTROLLER,
            ),
        )
        await record(
            self.store,
            _event(
                pvc,
                "Provisioning",
                f'External provisioner is provisioning volume for claim "{namespace}/{name}"',
                "Normal",
                provisioner,
            ),
        )
        await self.clock.sleep(storage_class.bind_delay)
        if storage_class.fails:
            await record(
                self.store,
                _event(
                    pvc,
                    "ProvisioningFailed",
                    f'failed to provision volume with StorageClass "{storage_class.name}": '
                    "rpc error: code = ResourceExhausted desc = simulated provisioner is out of space",
                    "Warning",
                    provisioner,
                ),
            )
            return
        volume_name = f"pvc-{(pvc.get('metadata') or {}).get('uid')}"
        request = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
        try:
            bound = await self._mark_bound(pvc, volume_name, request, provisioner=provisioner)
        except Exception as exc:
            if is_missing(exc):
                return
            raise
        if bound is not None:
            await record(
                self.store,
                _event(
                    pvc,
                    "ProvisioningSucceeded",
                    f"Successfully provisioned volume {volume_name}",
                    "Normal",
                    provisioner,
                ),
            )

    def class_of(self, pvc: dict[str, Any]) -> StorageClassSpec | None:
        """The claim's storage class: named, or the default when the claim names none."""
        name = (pvc.get("spec") or {}).get("storageClassName")
        if name is None:
            return self.default_class
        return self.classes.get(name) if name else None

    def _matching_volume(self, pvc: dict[str, Any], class_name: str) -> PersistentVolumeSpec | None:
        spec = pvc.get("spec") or {}
        wanted_modes = set(spec.get("accessModes") or [])
        try:
            wanted = parse_quantity(
                ((spec.get("resources") or {}).get("requests") or {}).get("storage", "0")
            )
        except QuantityError:
            return None
        best: PersistentVolumeSpec | None = None
        best_size = Decimal(0)
        for volume in self.volumes:
            if volume.name in self.bound_volumes or volume.storage_class != class_name:
                continue
            if not wanted_modes <= set(volume.access_modes):
                continue
            size = parse_quantity(volume.capacity)
            if size >= wanted and (best is None or size < best_size):
                best, best_size = volume, size  # the smallest volume that fits, as the real one
        return best

    async def _mark_bound(
        self,
        pvc: dict[str, Any],
        volume: str,
        capacity: str,
        *,
        provisioner: str | None = None,
        bound_by_controller: bool = False,
    ) -> dict[str, Any] | None:
        assert self.store is not None
        namespace, name = key_of(pvc)
        annotations = {"pv.kubernetes.io/bind-completed": "yes"}
        if bound_by_controller or provisioner:
            annotations["pv.kubernetes.io/bound-by-controller"] = "yes"
        if provisioner:
            annotations["volume.beta.kubernetes.io/storage-provisioner"] = provisioner
            annotations["volume.kubernetes.io/storage-provisioner"] = provisioner
        claim_key = key_of(pvc)
        self.bound_volumes[volume] = claim_key
        try:
            await self.store.patch(
                self._pvcs,
                namespace,
                name,
                {"metadata": {"annotations": annotations}, "spec": {"volumeName": volume}},
                "merge",
            )
            spec = pvc.get("spec") or {}
            return await self.store.patch(
                self._pvcs,
                namespace,
                name,
                {
                    "status": {
                        "phase": "Bound",
                        "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                        "capacity": {"storage": capacity},
                    }
                },
                "merge",
                subresource="status",
            )
        except Exception:
            self.bound_volumes.pop(volume, None)
            raise
