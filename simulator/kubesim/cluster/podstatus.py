"""Pod status exactly as a kubelet writes it, built from the kubelet's view of its containers.

The kubelet keeps a :class:`ContainerRecord` per container and calls
:func:`build_pod_status` after every change; the result goes to the store with a merge
patch on ``pods/status``. Keeping this pure makes the phase rules (which a spawner's
``poll()`` depends on) testable with plain asserts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kubesim.quantity_grammar import parse_quantity

from .fit import container_requests

POD_CONDITION_ORDER = (
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
    "DisruptionTarget",
)


def normalize_image(image: str) -> str:
    """containerd's fully qualified reference: ``python`` → ``docker.io/library/python:latest``."""
    name, _, digest = image.partition("@")
    first, _, rest = name.partition("/")
    if not rest:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    if digest:
        return f"{name}@{digest}"
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


def image_id(image: str) -> str:
    """A stable repo digest for an image reference (what status.imageID shows)."""
    full = normalize_image(image)
    if "@" in full:
        return full
    repo = full.rsplit(":", 1)[0]
    return f"{repo}@sha256:{hashlib.sha256(full.encode()).hexdigest()}"


def new_container_id(pod_uid: str, name: str, restart: int) -> str:
    digest = hashlib.sha256(f"{pod_uid}/{name}/{restart}".encode()).hexdigest()
    return f"containerd://{digest}"


def qos_class(pod: dict[str, Any]) -> str:
    """Guaranteed / Burstable / BestEffort, from cpu and memory requests and limits."""
    spec = pod.get("spec") or {}
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    any_set = False
    guaranteed = True
    for container in containers:
        limits = (container.get("resources") or {}).get("limits") or {}
        requests = container_requests(container)  # requests default to limits
        for resource in ("cpu", "memory"):
            if resource in requests:
                any_set = True
            if resource not in limits or requests[resource] != parse_quantity(limits[resource]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def waiting(reason: str, message: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"reason": reason}
    if message:
        body["message"] = message
    return {"waiting": body}


def running(started_at: str) -> dict[str, Any]:
    return {"running": {"startedAt": started_at}}


def terminated(
    exit_code: int,
    reason: str,
    started_at: str | None,
    finished_at: str,
    container_id: str | None = None,
    message: str | None = None,
    signal: int | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"exitCode": exit_code, "reason": reason}
    if signal:
        body["signal"] = signal
    if message:
        body["message"] = message
    body["startedAt"] = started_at
    body["finishedAt"] = finished_at
    if container_id:
        body["containerID"] = container_id
    return {"terminated": body}


@dataclass
class ContainerRecord:
    """The kubelet's knowledge of one container (init or regular)."""

    name: str
    image: str
    init: bool = False
    state: dict[str, Any] = field(default_factory=lambda: waiting("ContainerCreating"))
    last_state: dict[str, Any] = field(default_factory=dict)
    ready: bool = False
    started: bool = False
    restart_count: int = 0
    container_id: str | None = None
    image_pulled: bool = False
    spec: dict[str, Any] = field(default_factory=dict)  # the container as declared in the pod

    @property
    def is_running(self) -> bool:
        return "running" in self.state

    @property
    def is_terminated(self) -> bool:
        return "terminated" in self.state

    @property
    def exit_code(self) -> int | None:
        term = self.state.get("terminated")
        return None if term is None else int(term["exitCode"])

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "state": self.state,
            "lastState": self.last_state,
            "ready": self.ready,
            "restartCount": self.restart_count,
            "image": normalize_image(self.image) if self.image_pulled else self.image,
            "imageID": image_id(self.image) if self.image_pulled else "",
            "started": self.started,
        }
        if self.container_id:
            out["containerID"] = self.container_id
        if self.container_id and not self.init and self.spec.get("resources"):
            resources = self.spec["resources"]
            # requests default to limits, as the API server stores them
            out["allocatedResources"] = {
                **resources.get("limits", {}),
                **resources.get("requests", {}),
            }
            out["resources"] = {k: dict(v) for k, v in resources.items() if v}
        mounts = self.spec.get("volumeMounts") or []
        if self.container_id and mounts:
            out["volumeMounts"] = [
                {
                    "name": m["name"],
                    "mountPath": m["mountPath"],
                    **(
                        {"readOnly": True, "recursiveReadOnly": "Disabled"}
                        if m.get("readOnly")
                        else {}
                    ),
                }
                for m in mounts
            ]
        return out


def _condition(
    kind: str, status: bool, when: str, reason: str | None = None, message: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": kind,
        "status": "True" if status else "False",
        "lastProbeTime": None,
        "lastTransitionTime": when,
    }
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    return out


def compute_phase(
    restart_policy: str, init: list[ContainerRecord], containers: list[ContainerRecord]
) -> str:
    """The kubelet's getPhase: what ``status.phase`` is for these container states."""
    for record in init:
        if record.is_terminated and record.exit_code == 0:
            continue
        failed_for_good = restart_policy == "Never" and (
            record.exit_code not in (None, 0) or "terminated" in record.last_state
        )
        return "Failed" if failed_for_good else "Pending"
    waiting_fresh = running_n = stopped = succeeded = 0
    for record in containers:
        if record.is_running:
            running_n += 1
        elif record.is_terminated:
            stopped += 1
            if record.exit_code == 0:
                succeeded += 1
        elif "terminated" in record.last_state:
            stopped += 1  # waiting to restart after a crash: counts as stopped, not pending
            if record.last_state["terminated"].get("exitCode") == 0:
                succeeded += 1
        else:
            waiting_fresh += 1
    if waiting_fresh:
        return "Pending"
    if running_n:
        return "Running"
    if stopped:
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if restart_policy == "OnFailure":
            return "Running"
        return "Failed"
    return "Pending"


def _transition(previous: dict[str, dict[str, Any]], cond: dict[str, Any]) -> dict[str, Any]:
    """Keep lastTransitionTime when a condition's status did not change (as the kubelet does)."""
    old = previous.get(cond["type"])
    if old is not None and old.get("status") == cond["status"] and old.get("lastTransitionTime"):
        cond["lastTransitionTime"] = old["lastTransitionTime"]
    return cond


def build_pod_status(
    pod: dict[str, Any],
    *,
    now: str,
    init: list[ContainerRecord],
    containers: list[ContainerRecord],
    sandbox_ready: bool,
    host_ip: str,
    pod_ip: str | None,
    start_time: str,
    phase_override: str | None = None,
    reason: str | None = None,
    message: str | None = None,
    extra_conditions: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The full status object for a pod bound to a node."""
    spec = pod.get("spec") or {}
    old_status = pod.get("status") or {}
    previous = {c["type"]: c for c in old_status.get("conditions") or []}
    phase = phase_override or compute_phase(spec.get("restartPolicy", "Always"), init, containers)

    initialized = all(r.is_terminated and r.exit_code == 0 for r in init)
    unready = [r.name for r in containers if not r.ready]
    incomplete = [r.name for r in init if not (r.is_terminated and r.exit_code == 0)]
    completed_reason = "PodCompleted" if phase == "Succeeded" else None

    conds: list[dict[str, Any]] = [
        _condition(
            "PodReadyToStartContainers", sandbox_ready and phase in ("Pending", "Running"), now
        ),
    ]
    if initialized:
        conds.append(_condition("Initialized", True, now, completed_reason if init else None))
    else:
        conds.append(
            _condition(
                "Initialized",
                False,
                now,
                "ContainersNotInitialized",
                f"containers with incomplete status: [{' '.join(incomplete)}]",
            )
        )
    if unready:
        why = completed_reason or "ContainersNotReady"
        msg = None if completed_reason else f"containers with unready status: [{' '.join(unready)}]"
        conds.append(_condition("Ready", False, now, why, msg))
        conds.append(_condition("ContainersReady", False, now, why, msg))
    else:
        conds.append(_condition("Ready", True, now))
        conds.append(_condition("ContainersReady", True, now))
    scheduled = previous.get("PodScheduled") or _condition("PodScheduled", True, now)
    conds.append(dict(scheduled))
    conds.extend(extra_conditions)
    conds = [_transition(previous, c) for c in conds]
    conds.sort(
        key=lambda c: (
            POD_CONDITION_ORDER.index(c["type"])
            if c["type"] in POD_CONDITION_ORDER
            else len(POD_CONDITION_ORDER)
        )
    )

    status: dict[str, Any] = {
        "phase": phase,
        "conditions": conds,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": start_time,
        "containerStatuses": [r.to_api() for r in containers],
        "qosClass": old_status.get("qosClass") or qos_class(pod),  # set once, at creation
    }
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    if init:
        status["initContainerStatuses"] = [r.to_api() for r in init]
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    return status
