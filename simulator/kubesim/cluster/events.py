"""core/v1 Events as the scheduler and the kubelet record them.

Spawners show these on the spawn page and decide from them that a spawn has failed, so
reasons, types, sources and message formats follow the real components. The kubelet's
events use the legacy recorder shape (source.component/host, first/lastTimestamp, count);
the scheduler's use the events.k8s.io recorder shape (eventTime, action,
reportingController) as seen through the core/v1 API.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

from .clock import Clock, format_go_duration

SCHEDULER = "default-scheduler"
KUBELET = "kubelet"
_sequence = itertools.count()


def event_name(involved_name: str) -> str:
    """``<object>.<hex nanoseconds>``: the client-go naming, unique even within one nanosecond."""
    return f"{involved_name}.{time.time_ns() + next(_sequence):x}"


def involved_object(obj: dict[str, Any], kind: str, field_path: str | None = None) -> dict[str, Any]:
    """The ``involvedObject`` reference of an event about a namespaced object."""
    meta = obj.get("metadata") or {}
    ref: dict[str, Any] = {
        "kind": kind,
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "apiVersion": "v1",
        "resourceVersion": meta.get("resourceVersion"),
    }
    if field_path:
        ref["fieldPath"] = field_path
    return ref


def involved_pod(pod: dict[str, Any], field_path: str | None = None) -> dict[str, Any]:
    return involved_object(pod, "Pod", field_path)


def recorder_event(
    involved: dict[str, Any],
    namespace: str | None,
    reason: str,
    message: str,
    *,
    type_: str,
    component: str,
    host: str | None = None,
) -> dict[str, Any]:
    """An event in the legacy recorder shape (source, first/lastTimestamp, count) that the
    kubelet, the node problem detector and the volume controllers write."""
    now = Clock.timestamp()
    source: dict[str, Any] = {"component": component}
    if host is not None:
        source["host"] = host
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": event_name(involved.get("name") or "object"), "namespace": namespace},
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "source": source,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "type": type_,
        # no "eventTime": null here: decoding would drop it and defaulting put it back
        # at the end, so leaving it out stores the same Event without a walk for nulls
        "reportingComponent": component,
        "reportingInstance": host or "",
    }


def container_field_path(name: str, init: bool = False) -> str:
    return f"spec.{'initContainers' if init else 'containers'}{{{name}}}"


def kubelet_event(
    pod: dict[str, Any],
    node: str,
    reason: str,
    message: str,
    *,
    type_: str = "Normal",
    field_path: str | None = None,
) -> dict[str, Any]:
    involved = involved_pod(pod, field_path)
    return recorder_event(
        involved, involved["namespace"], reason, message, type_=type_, component=KUBELET, host=node
    )


def scheduler_event(
    pod: dict[str, Any],
    reason: str,
    message: str,
    *,
    type_: str = "Normal",
    action: str = "Scheduling",
) -> dict[str, Any]:
    meta = pod.get("metadata") or {}
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": event_name(meta.get("name", "pod")),
            "namespace": meta.get("namespace"),
        },
        "involvedObject": involved_pod(pod),
        "reason": reason,
        "message": message,
        "source": {},
        "firstTimestamp": None,
        "lastTimestamp": None,
        "type": type_,
        "eventTime": Clock.micro_timestamp(),
        "action": action,
        "reportingComponent": SCHEDULER,
        "reportingInstance": f"{SCHEDULER}-sim",
    }


def node_event(
    node: str,
    reason: str,
    message: str,
    *,
    type_: str = "Warning",
    component: str = "kernel-monitor",
) -> dict[str, Any]:
    """An event about a node (OOMKilling is reported against the node, not the pod)."""
    involved = {"kind": "Node", "name": node, "uid": node, "apiVersion": "v1"}
    return recorder_event(
        involved, "default", reason, message, type_=type_, component=component, host=node
    )


@dataclass(frozen=True)
class PullFailure:
    """The texts a failed image pull produces (containerd's NotFound, as most users meet it)."""

    image: str

    @property
    def error(self) -> str:
        ref = self.image
        return (
            f'rpc error: code = NotFound desc = failed to pull and unpack image "{ref}": '
            f'failed to resolve reference "{ref}": {ref}: not found'
        )

    @property
    def failed_message(self) -> str:
        return f'Failed to pull image "{self.image}": {self.error}'

    @property
    def backoff_message(self) -> str:
        return f'Back-off pulling image "{self.image}"'

    @property
    def waiting_backoff_message(self) -> str:
        return f'Back-off pulling image "{self.image}": ErrImagePull: {self.error}'


def pulled_message(image: str, pull_seconds: float, size_bytes: int) -> str:
    took = format_go_duration(int(pull_seconds * 1000) / 1000)
    return (
        f'Successfully pulled image "{image}" in {took} ({took} including waiting). '
        f"Image size: {size_bytes} bytes."
    )


def crash_backoff_message(container: str, pod: dict[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return (
        f"Back-off restarting failed container {container} in pod "
        f"{meta.get('name')}_{meta.get('namespace')}({meta.get('uid')})"
    )


def crash_waiting_message(container: str, pod: dict[str, Any], backoff_seconds: float) -> str:
    meta = pod.get("metadata") or {}
    return (
        f"back-off {format_go_duration(backoff_seconds)} restarting failed "
        f"container={container} pod={meta.get('name')}_{meta.get('namespace')}({meta.get('uid')})"
    )
