"""Simulated nodes: what they offer (capacity, labels, taints) and how they look in the API.

Nodes are created once at start-up from :class:`NodePoolSpec` entries. The scheduler fits
pods against :class:`SimNode` (parsed quantities); the API objects written to the store
exist so that ``kubectl get nodes`` and clients that read node labels see them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from kubesim.quantity_grammar import QuantityError, parse_quantity

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
KUBELET_VERSION = "v1.36.2"


class NodeConfigError(ValueError):
    """A node pool described in the configuration cannot be built."""


@dataclass(frozen=True)
class Taint:
    key: str
    effect: str
    value: str = ""

    def __post_init__(self) -> None:
        if self.effect not in TAINT_EFFECTS:
            raise NodeConfigError(
                f"taint {self.key!r}: effect {self.effect!r} is not one of {', '.join(TAINT_EFFECTS)}"
            )

    @classmethod
    def parse(cls, text: str) -> Taint:
        """Parse kubectl's taint syntax ``key[=value]:Effect``."""
        key_value, sep, effect = text.rpartition(":")
        if not sep or not key_value:
            raise NodeConfigError(
                f"taint {text!r} must look like key=value:Effect or key:Effect "
                f"(Effect one of {', '.join(TAINT_EFFECTS)})"
            )
        key, _, value = key_value.partition("=")
        return cls(key=key, value=value, effect=effect)

    def to_api(self) -> dict[str, str]:
        out = {"key": self.key, "effect": self.effect}
        if self.value:
            out["value"] = self.value
        return out


@dataclass
class NodePoolSpec:
    """``count`` identical nodes; names are ``{name_prefix}-{i}`` (or just the prefix when count is 1)."""

    count: int = 1
    name_prefix: str = "sim-node"
    cpu: str = "4"
    memory: str = "16Gi"
    pods: int = 110
    extended: dict[str, str] = field(default_factory=dict)  # e.g. {"nvidia.com/gpu": "1"}
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[Taint] = field(default_factory=list)
    # What system daemons reserve: allocatable = capacity - reserved.
    reserved_cpu: str = "0"
    reserved_memory: str = "0"
    unschedulable: bool = False

    def validate(self) -> None:
        if self.count < 0:
            raise NodeConfigError(
                f"node pool {self.name_prefix!r}: count must be >= 0, got {self.count}"
            )
        for what, value in [
            ("cpu", self.cpu),
            ("memory", self.memory),
            ("reserved_cpu", self.reserved_cpu),
            ("reserved_memory", self.reserved_memory),
            *[(f"extended[{k}]", v) for k, v in self.extended.items()],
        ]:
            try:
                parse_quantity(value)
            except QuantityError as exc:
                raise NodeConfigError(f"node pool {self.name_prefix!r}: {what}: {exc}") from exc


@dataclass
class SimNode:
    """One node as the scheduler sees it: allocatable amounts in base units."""

    name: str
    labels: dict[str, str]
    taints: list[Taint]
    capacity: dict[str, str]
    allocatable: dict[str, Decimal]
    internal_ip: str
    unschedulable: bool = False

    def to_api(self, created: str) -> dict[str, Any]:
        """The Node object as a kubelet would register it."""
        spec: dict[str, Any] = {"podCIDR": _pod_cidr(self), "podCIDRs": [_pod_cidr(self)]}
        if self.taints:
            spec["taints"] = [t.to_api() for t in self.taints]
        if self.unschedulable:
            spec["unschedulable"] = True
        allocatable = {k: _format_quantity(k, v) for k, v in self.allocatable.items()}
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.name, "labels": dict(self.labels)},
            "spec": spec,
            "status": {
                "capacity": dict(self.capacity),
                "allocatable": allocatable,
                "conditions": [
                    _node_condition(
                        "MemoryPressure",
                        "False",
                        "KubeletHasSufficientMemory",
                        "kubelet has sufficient memory available",
                        created,
                    ),
                    _node_condition(
                        "DiskPressure",
                        "False",
                        "KubeletHasNoDiskPressure",
                        "kubelet has no disk pressure",
                        created,
                    ),
                    _node_condition(
                        "PIDPressure",
                        "False",
                        "KubeletHasSufficientPID",
                        "kubelet has sufficient PID available",
                        created,
                    ),
                    _node_condition(
                        "Ready", "True", "KubeletReady", "kubelet is posting ready status", created
                    ),
                ],
                "addresses": [
                    {"type": "InternalIP", "address": self.internal_ip},
                    {"type": "Hostname", "address": self.name},
                ],
                "nodeInfo": {
                    "architecture": "amd64",
                    "operatingSystem": "linux",
                    "osImage": "async-kubespawner simulated node",
                    "kernelVersion": "6.1.0-sim",
                    "containerRuntimeVersion": "containerd://2.1.0-sim",
                    "kubeletVersion": KUBELET_VERSION,
                    "kubeProxyVersion": "",
                    "machineID": "",
                    "systemUUID": "",
                    "bootID": "",
                },
            },
        }


def _node_condition(kind: str, status: str, reason: str, message: str, when: str) -> dict[str, str]:
    return {
        "type": kind,
        "status": status,
        "lastHeartbeatTime": when,
        "lastTransitionTime": when,
        "reason": reason,
        "message": message,
    }


def _pod_cidr(node: SimNode) -> str:
    third = int(ipaddress.IPv4Address(node.internal_ip)) & 0xFF
    return f"10.244.{third}.0/24"


def _format_quantity(resource: str, value: Decimal) -> str:
    """Render a base-unit amount compactly (millicores for fractional cpu, Ki for memory)."""
    if resource == "cpu" and value != value.to_integral_value():
        return f"{int(value * 1000)}m"
    if resource in ("memory", "ephemeral-storage") and value % 1024 == 0 and value >= 1024:
        return f"{int(value // 1024)}Ki"
    return str(int(value)) if value == value.to_integral_value() else str(value)


def build_nodes(pools: list[NodePoolSpec]) -> list[SimNode]:
    """Expand pools into nodes with unique names and unique InternalIPs (10.0.0.x)."""
    nodes: list[SimNode] = []
    seen: set[str] = set()
    for pool in pools:
        pool.validate()
        for i in range(pool.count):
            name = pool.name_prefix if pool.count == 1 else f"{pool.name_prefix}-{i}"
            if name in seen:
                raise NodeConfigError(
                    f"two node pools produce the node name {name!r}; give them "
                    "different name_prefix values"
                )
            seen.add(name)
            index = len(nodes) + 1
            capacity = {
                "cpu": pool.cpu,
                "memory": pool.memory,
                "pods": str(pool.pods),
                "ephemeral-storage": "100Gi",
                **pool.extended,
            }
            allocatable = {k: parse_quantity(v) for k, v in capacity.items()}
            allocatable["cpu"] -= parse_quantity(pool.reserved_cpu)
            allocatable["memory"] -= parse_quantity(pool.reserved_memory)
            labels = {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": "amd64",
                **pool.labels,
            }
            nodes.append(
                SimNode(
                    name=name,
                    labels=labels,
                    taints=list(pool.taints),
                    capacity=capacity,
                    allocatable=allocatable,
                    internal_ip=f"10.0.{index // 250}.{index % 250 + 1}",
                    unschedulable=pool.unschedulable,
                )
            )
    return nodes
