"""TEMPORARY stand-in until branch sim-pure lands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def default_object(
    kind: str, obj: dict[str, Any], *, allocate_cluster_ip: Callable[[], str]
) -> None:
    if kind == "Pod":
        obj.setdefault("status", {"phase": "Pending", "qosClass": "BestEffort"})
    if kind == "Service":
        spec = obj.setdefault("spec", {})
        if "clusterIP" not in spec:
            spec["clusterIP"] = allocate_cluster_ip()
            spec["clusterIPs"] = [spec["clusterIP"]]
