"""Readiness verdicts of a notebook pod, as the operator uses them: one small seam.

The operator decides Ready / Failed / waiting exactly as the in-hub spawner does
(ErrImagePull, CrashLoopBackOff, a container config error or Unschedulable lasting past a
tolerance, eviction, an exited notebook, a PVC that cannot be provisioned). All of it
goes through :func:`pod_verdict`, so that pointing the operator at the spawner's shared
pure verdict module changes this one function and nothing else.

Tolerances are measured from when the operator first saw a condition (``since``, kept
per server by the caller), like the spawner measures them from its own first sight.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_IMAGE_PULL_REASONS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)


@dataclass(frozen=True)
class Tolerances:
    """Seconds a condition may last before the server is declared failed."""

    image_pull: float = 0.0
    config_error: float = 10.0
    unschedulable: float = 300.0


@dataclass
class Verdict:
    state: str  # "ready" | "failed" | "waiting"
    message: str = ""
    reason: str = ""
    recheck_in: float | None = None


@dataclass
class SeenSince:
    """When each tolerated condition was first seen (per server, in the caller's memory)."""

    since: dict[str, float] = field(default_factory=dict)

    def first(self, what: str, now: float) -> float:
        return self.since.setdefault(what, now)

    def clear(self, what: str) -> None:
        self.since.pop(what, None)


def _pod_running(pod: dict[str, Any]) -> bool:
    """Running, with an IP, every container ready (the spawner's is_pod_running)."""
    status = pod.get("status") or {}
    return (
        status.get("phase") == "Running"
        and status.get("podIP") is not None
        and all(cs.get("ready") for cs in status.get("containerStatuses") or ())
    )


def pvc_failure(pvc_events: list[dict[str, Any]]) -> str | None:
    for event in reversed(pvc_events):
        if event.get("type") == "Warning" and event.get("reason") in (
            "ProvisioningFailed",
            "FailedBinding",
        ):
            return event.get("message") or event.get("reason") or "cannot be provisioned"
    return None


def pod_verdict(
    pod: dict[str, Any],
    pod_events: list[dict[str, Any]],
    pvc_events: dict[str, list[dict[str, Any]]],
    tolerances: Tolerances,
    seen: SeenSince,
    now: float,
    *,
    container: str = "notebook",
) -> Verdict:
    """Ready, failed (with a message a user can act on) or waiting (maybe until a recheck)."""
    name = pod["metadata"].get("name")
    status = pod.get("status") or {}
    if pod["metadata"].get("deletionTimestamp"):
        return Verdict("failed", f"The server's pod {name} is being deleted.", "PodDeleting")
    if _pod_running(pod):
        return Verdict("ready")
    phase = status.get("phase")
    if phase == "Failed":
        reason = status.get("reason") or "Failed"
        detail = status.get("message") or ""
        if reason == "Evicted":
            return Verdict("failed", f"The server was evicted from its node: {detail} "
                           "Try again; if it recurs, choose a smaller profile.", "Evicted")
        return Verdict("failed", f"The server's pod failed ({reason}). {detail}".strip(),
                       "PodFailed")
    recheck: list[float] = []
    for cs in (*(status.get("initContainerStatuses") or ()),
               *(status.get("containerStatuses") or ())):
        cname = cs.get("name")
        state = cs.get("state") or {}
        waiting = state.get("waiting")
        if waiting:
            reason = waiting.get("reason") or ""
            detail = waiting.get("message") or "no detail given"
            if reason in _IMAGE_PULL_REASONS:
                left = tolerances.image_pull - (now - seen.first(f"{cname}:pull", now))
                if left <= 0:
                    return Verdict(
                        "failed",
                        f"The image of container {cname!r} cannot be pulled ({reason}): "
                        f"{detail}. Check the image name and tag.",
                        "ImagePullFailed",
                    )
                recheck.append(left)
                continue
            seen.clear(f"{cname}:pull")
            if reason == "CrashLoopBackOff":
                last = (cs.get("lastState") or {}).get("terminated") or {}
                code = last.get("exitCode")
                why = f"exit code {code}" if code is not None else "it keeps exiting"
                return Verdict(
                    "failed",
                    f"Container {cname!r} keeps crashing ({why}; restarted "
                    f"{cs.get('restartCount', 0)} times). Check the image's start command.",
                    "CrashLoopBackOff",
                )
            if reason == "CreateContainerConfigError":
                left = tolerances.config_error - (now - seen.first(f"{cname}:config", now))
                if left <= 0:
                    return Verdict(
                        "failed",
                        f"Container {cname!r} cannot be created: {detail}. "
                        "A Secret or ConfigMap it needs is missing.",
                        "ContainerConfigError",
                    )
                recheck.append(left)
                continue
            seen.clear(f"{cname}:config")
            continue
        terminated = state.get("terminated")
        if terminated and cname == container:
            code = terminated.get("exitCode")
            return Verdict(
                "failed",
                f"The notebook server exited with code {code} before it became ready. "
                "Check the image's start command and the server's logs.",
                "ContainerExited",
            )
    if phase == "Succeeded":
        return Verdict("failed", "The notebook server exited before it became ready.",
                       "ContainerExited")
    for claim, events in pvc_events.items():
        problem = pvc_failure(events)
        if problem:
            return Verdict(
                "failed",
                f"The storage volume {claim!r} cannot be provisioned: {problem}. "
                "Ask an administrator to check the storage class.",
                "VolumeProvisioningFailed",
            )
    scheduled = next(
        (c for c in status.get("conditions") or () if c.get("type") == "PodScheduled"), None
    )
    if scheduled and scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        message = scheduled.get("message") or "no node can run it"
        if any(e.get("reason") == "TriggeredScaleUp" for e in pod_events):
            return Verdict("waiting", f"waiting for the cluster to scale up: {message}")
        left = tolerances.unschedulable - (now - seen.first("unschedulable", now))
        if left <= 0:
            return Verdict(
                "failed",
                f"No node can run this server: {message}. Choose a smaller profile or "
                "try again later.",
                "Unschedulable",
            )
        return Verdict("waiting", message, recheck_in=left)
    seen.clear("unschedulable")
    return Verdict("waiting", recheck_in=min(recheck) if recheck else None)
