"""The scheduler: binds pending pods to simulated nodes, or says why it cannot.

Event-driven like the real one: it acts when a pod arrives, and re-tries the pods it could
not place only when something that could change the answer happens (a pod leaves a node
or finishes, a PVC changes, a scheduling gate is removed). There is no polling loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, MutableMapping
from decimal import Decimal
from typing import Any

from .clock import Clock
from .events import scheduler_event
from .fit import (
    SCHEDULING_GATED_MESSAGE,
    UNBOUND_PVC_MESSAGE,
    NodeRejection,
    filter_node,
    fit_error_message,
    pod_requests,
)
from .nodes import TAINT_EFFECTS, SimNode, Taint
from .pvc import SELECTED_NODE, PVCBinder
from .scenarios import ScenarioBook
from .storeview import (
    StoreLike,
    cancel_all,
    is_missing,
    key_of,
    list_and_watch,
    patch_status,
    record,
    spawn,
)

log = logging.getLogger("kubesim.cluster.scheduler")
SCHEDULER_NAME = "default-scheduler"
TERMINAL_PHASES = ("Succeeded", "Failed")


class Scheduler:
    """A ``Controller`` (docs/contracts.md §2) that plays kube-scheduler for ``default-scheduler``."""

    def __init__(
        self,
        nodes: list[SimNode],
        scenarios: ScenarioBook | None = None,
        clock: Clock | None = None,
        volumes: PVCBinder | None = None,
    ) -> None:
        self.nodes = nodes
        self.volumes = volumes  # to know which claims wait for their first consumer
        self.scenarios = scenarios or ScenarioBook()
        self.clock = clock or Clock.real()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pending: dict[tuple[str, str], dict[str, Any]] = {}  # to try now
        self._unschedulable: dict[tuple[str, str], dict[str, Any]] = {}  # wait for a change
        self._last_message: dict[tuple[str, str], str] = {}
        self._delayed: set[tuple[str, str]] = set()
        # (namespace, name) -> (node, requests) for bound pods that still hold resources
        self._bound: _BoundPods = _BoundPods()
        self._wake = asyncio.Event()
        self.store: StoreLike | None = None

    async def start(self, store: StoreLike) -> None:
        self.store = store
        self._pods = store.resource("pods")
        self._pvcs = store.resource("persistentvolumeclaims")
        spawn(
            list_and_watch(store, self._pods, self._on_pod, self._on_relist),
            self._tasks,
            "scheduler pod watch",
        )
        spawn(list_and_watch(store, self._pvcs, self._on_pvc), self._tasks, "scheduler pvc watch")
        spawn(
            list_and_watch(store, store.resource("nodes"), self._on_node),
            self._tasks,
            "scheduler node watch",
        )
        spawn(self._loop(), self._tasks, "scheduler loop")

    async def stop(self) -> None:
        await cancel_all(self._tasks)

    # ------------------------------------------------------------ watch handlers

    def _on_pod(self, kind: str, pod: dict[str, Any]) -> None:
        key = key_of(pod)
        spec = pod.get("spec") or {}
        phase = (pod.get("status") or {}).get("phase")
        gone = kind == "DELETED" or phase in TERMINAL_PHASES
        if spec.get("nodeName"):
            self._pending.pop(key, None)
            self._unschedulable.pop(key, None)
            if gone:
                if self._bound.pop(key, None) is not None:
                    self._capacity_changed()
            elif key not in self._bound:
                try:
                    self._bound[key] = (spec["nodeName"], pod_requests(pod))
                except ValueError:
                    self._bound[key] = (spec["nodeName"], {})
            return
        if gone or (pod.get("metadata") or {}).get("deletionTimestamp"):
            self._pending.pop(key, None)
            self._unschedulable.pop(key, None)
            self._last_message.pop(key, None)
            return
        if (spec.get("schedulerName") or SCHEDULER_NAME) != SCHEDULER_NAME:
            return
        self._unschedulable.pop(key, None)
        self._pending[key] = pod
        self._wake.set()

    def _on_relist(self, existing: set[tuple[str, str]]) -> None:
        """Forget pods deleted while the watch was down (their capacity is free again)."""
        for table in (self._pending, self._unschedulable, self._bound):
            for key in [k for k in table if k not in existing]:
                del table[key]
        self._capacity_changed()

    def _on_pvc(self, kind: str, pvc: dict[str, Any]) -> None:
        self._capacity_changed()

    def _on_node(self, kind: str, node_obj: dict[str, Any]) -> None:
        """Follow edits of our nodes (``kubectl cordon``, ``taint``, ``label``) and re-try pods."""
        name = (node_obj.get("metadata") or {}).get("name")
        node = next((n for n in self.nodes if n.name == name), None)
        if node is None or kind == "DELETED":
            return
        spec = node_obj.get("spec") or {}
        labels = dict((node_obj.get("metadata") or {}).get("labels") or {})
        taints = [
            Taint(key=t.get("key", ""), value=t.get("value") or "", effect=t["effect"])
            for t in spec.get("taints") or []
            if t.get("effect") in TAINT_EFFECTS
        ]
        unschedulable = bool(spec.get("unschedulable"))
        if (labels, taints, unschedulable) != (node.labels, node.taints, node.unschedulable):
            node.labels, node.taints, node.unschedulable = labels, taints, unschedulable
            self._capacity_changed()

    def _capacity_changed(self) -> None:
        if self._unschedulable:
            self._pending.update(self._unschedulable)
            self._unschedulable.clear()
            self._wake.set()

    # ------------------------------------------------------------ scheduling

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                key, pod = next(iter(self._pending.items()))
                del self._pending[key]
                try:
                    await self._schedule_one(key, pod)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if not is_missing(exc):
                        log.exception("scheduling %s/%s failed", *key)
                # Store writes never suspend, so without this a burst of pending pods
                # is scheduled in one loop iteration and every watch stream (the
                # Scheduled Events, the bindings) waits for the whole burst.
                await asyncio.sleep(0)

    async def _schedule_one(self, key: tuple[str, str], pod: dict[str, Any]) -> None:
        assert self.store is not None
        spec = pod.get("spec") or {}
        if spec.get("schedulingGates"):
            await self._mark_gated(pod)
            return
        scenario, _ = self.scenarios.for_pod_lenient(pod)  # the kubelet reports a bad annotation
        delay = scenario.seconds("schedule_delay")
        if delay > 0 and key not in self._delayed:
            self._delayed.add(key)
            loop = asyncio.get_running_loop()
            loop.call_later(self.clock.real_seconds(delay), self._retry_later, key, pod)
            return
        self._delayed.discard(key)
        try:
            requests = pod_requests(pod)
        except ValueError as exc:
            await self._unschedulable_now(
                key, pod, f"0/{len(self.nodes)} nodes are available: {exc}."
            )
            return
        pre_filter, late_claims = self._pvc_problem(pod)
        rejections: dict[str, NodeRejection] = {}
        if pre_filter:
            message = fit_error_message(len(self.nodes), {}, pre_filter)
            await self._unschedulable_now(key, pod, message)
            return
        if scenario.unschedulable:
            rejections = {
                n.name: NodeRejection([scenario.unschedulable_reason], True) for n in self.nodes
            }
            await self._unschedulable_now(key, pod, fit_error_message(len(self.nodes), rejections))
            return
        used, counts = self._usage()
        feasible: list[SimNode] = []
        for node in self.nodes:
            rejection = filter_node(
                pod, requests, node, used.get(node.name, {}), counts.get(node.name, 0)
            )
            if rejection is None:
                feasible.append(node)
            else:
                rejections[node.name] = rejection
        if not feasible:
            await self._unschedulable_now(key, pod, fit_error_message(len(self.nodes), rejections))
            return
        selected = {
            ((c.get("metadata") or {}).get("annotations") or {}).get(SELECTED_NODE)
            for c in late_claims
        } - {None}
        feasible = [n for n in feasible if n.name in selected] or feasible
        chosen = max(feasible, key=lambda n: (self._free_share(n, used.get(n.name, {})), n.name))
        unbound = [c for c in late_claims if (c.get("status") or {}).get("phase") != "Bound"]
        if unbound:
            # VolumeBinding PreBind: ask for the volumes on this node, bind once they exist
            # (the claim's change re-queues the pod, as any PVC change does)
            self._unschedulable[key] = pod
            for claim in unbound:
                annotations = (claim.get("metadata") or {}).get("annotations") or {}
                if annotations.get(SELECTED_NODE) != chosen.name:
                    await self.store.patch(
                        self._pvcs,
                        key[0],
                        claim["metadata"]["name"],
                        {"metadata": {"annotations": {SELECTED_NODE: chosen.name}}},
                        "merge",
                    )
            return
        await self._bind(key, pod, chosen, requests)

    def _retry_later(self, key: tuple[str, str], pod: dict[str, Any]) -> None:
        self._pending.setdefault(key, pod)
        self._wake.set()

    def _usage(self) -> tuple[dict[str, dict[str, Decimal]], dict[str, int]]:
        return self._bound.usage()

    @staticmethod
    def _free_share(node: SimNode, used: dict[str, Decimal]) -> Decimal:
        """LeastAllocated scoring: prefer the node with the most cpu and memory left."""
        share = Decimal(0)
        for resource in ("cpu", "memory"):
            total = node.allocatable.get(resource, Decimal(0))
            if total > 0:
                share += (total - used.get(resource, Decimal(0))) / total
        return share

    def _pvc_problem(self, pod: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        """VolumeBinding's PreFilter: a missing or unbound immediate claim blocks every node.

        Also returns the claims of WaitForFirstConsumer classes, which do not block
        scheduling but must be provisioned on the chosen node before the pod binds.
        """
        assert self.store is not None
        namespace = key_of(pod)[0]
        late: list[dict[str, Any]] = []
        problem = ""
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if not claim:
                continue
            try:
                pvc = self.store.get(self._pvcs, namespace, claim)
            except Exception as exc:
                if is_missing(exc):
                    return f'persistentvolumeclaim "{claim}" not found', []
                raise
            storage_class = self.volumes.class_of(pvc) if self.volumes is not None else None
            if (
                storage_class is not None
                and storage_class.volume_binding_mode == "WaitForFirstConsumer"
            ):
                late.append(pvc)
            elif (pvc.get("status") or {}).get("phase") != "Bound":
                problem = UNBOUND_PVC_MESSAGE
        return problem, late

    async def _bind(
        self, key: tuple[str, str], pod: dict[str, Any], node: SimNode, requests: dict[str, Decimal]
    ) -> None:
        assert self.store is not None
        self._bound[key] = (node.name, requests)  # reserve before the await (the "assume" step)
        try:
            bound = await self.store.bind(*key, node.name)
        except BaseException:
            self._bound.pop(key, None)
            raise
        self._last_message.pop(key, None)
        namespace, name = key
        await record(
            self.store,
            scheduler_event(
                bound,
                "Scheduled",
                f"Successfully assigned {namespace}/{name} to {node.name}",
                action="Binding",
            ),
        )

    async def _unschedulable_now(
        self, key: tuple[str, str], pod: dict[str, Any], message: str
    ) -> None:
        assert self.store is not None
        self._unschedulable[key] = pod
        if self._last_message.get(key) == message:
            return  # same verdict as last time: the real scheduler's event would be a duplicate
        self._last_message[key] = message
        await self._not_scheduled(pod, "Unschedulable", message)
        await record(self.store, scheduler_event(pod, "FailedScheduling", message, type_="Warning"))

    async def _not_scheduled(self, pod: dict[str, Any], reason: str, message: str) -> None:
        """Set ``PodScheduled=False`` with the reason kube-scheduler gives (Unschedulable,
        SchedulingGated): what ``kubectl describe`` and the spawner's progress read."""
        assert self.store is not None
        await patch_status(
            self.store,
            self._pods,
            pod,
            {
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "lastProbeTime": None,
                        "lastTransitionTime": self.clock.timestamp(),
                        "reason": reason,
                        "message": message,
                    }
                ]
            },
        )

    async def _mark_gated(self, pod: dict[str, Any]) -> None:
        assert self.store is not None
        conditions = (pod.get("status") or {}).get("conditions") or []
        if any(c.get("reason") == "SchedulingGated" for c in conditions):
            return
        await self._not_scheduled(pod, "SchedulingGated", SCHEDULING_GATED_MESSAGE)


Usage = tuple[dict[str, dict[str, Decimal]], dict[str, int]]


class _BoundPods(MutableMapping[tuple[str, str], tuple[str, dict[str, Decimal]]]):
    """(namespace, name) -> (node, requests), with the per-node sums kept up to date.

    Summing every bound pod's requests for each pod to schedule made a storm of N pods
    cost O(N²). A new binding is added to the sums in the order a full recount would
    add it (new keys iterate last), so the Decimal results are identical; a removal or
    a rebinding drops the sums and the next ``usage()`` recounts. Each update builds
    new dicts, so a usage a caller still holds never changes under it.
    """

    __slots__ = ("_items", "_usage")

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], tuple[str, dict[str, Decimal]]] = {}
        self._usage: Usage | None = ({}, {})

    def usage(self) -> Usage:
        """(node -> resource -> requested, node -> pod count); read-only for callers."""
        if self._usage is None:
            used: dict[str, dict[str, Decimal]] = {}
            counts: dict[str, int] = {}
            for node_name, requests in self._items.values():
                counts[node_name] = counts.get(node_name, 0) + 1
                per_node = used.setdefault(node_name, {})
                for resource, amount in requests.items():
                    per_node[resource] = per_node.get(resource, Decimal(0)) + amount
            self._usage = (used, counts)
        return self._usage

    def __getitem__(self, key: tuple[str, str]) -> tuple[str, dict[str, Decimal]]:
        return self._items[key]

    def __setitem__(self, key: tuple[str, str], value: tuple[str, dict[str, Decimal]]) -> None:
        if key in self._items or self._usage is None:
            self._usage = None
        else:
            node_name, requests = value
            used, counts = self._usage
            per_node = dict(used.get(node_name, {}))
            for resource, amount in requests.items():
                per_node[resource] = per_node.get(resource, Decimal(0)) + amount
            self._usage = ({**used, node_name: per_node}, {**counts, node_name: counts.get(node_name, 0) + 1})
        self._items[key] = value

    def __delitem__(self, key: tuple[str, str]) -> None:
        del self._items[key]
        self._usage = None

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
