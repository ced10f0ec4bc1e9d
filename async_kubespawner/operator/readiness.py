"""Readiness verdicts of a notebook pod, as the operator uses them: one small seam.

The operator decides Ready / Failed / waiting exactly as the in-hub spawner does
(ErrImagePull, CrashLoopBackOff, a container config error or Unschedulable lasting past a
tolerance, eviction, an exited notebook, a PVC that cannot be provisioned), because both
ask the same pure verdict function, :func:`async_kubespawner.lifecycle.readiness.assess`.
:func:`pod_verdict` only translates: the operator's tolerances (its own defaults), its
per-server ``SeenSince`` memory, and the events of the pod and of each of its claims.

Tolerances are measured from when the operator first saw a condition (``since``, kept
per server by the caller), like the spawner measures them from its own first sight.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..lifecycle import readiness
from ..lifecycle.readiness import Memory, StaticEvents, Target, Verdict

__all__ = ["SeenSince", "Tolerances", "Verdict", "pod_verdict"]


@dataclass(frozen=True)
class Tolerances:
    """Seconds a condition may last before the server is declared failed."""

    image_pull: float = 0.0
    config_error: float = 10.0
    unschedulable: float = 300.0


@dataclass
class SeenSince:
    """When each tolerated condition was first seen (per server, in the caller's memory)."""

    since: dict[str, float] = field(default_factory=dict)

    def first(self, what: str, now: float) -> float:
        return self.since.setdefault(what, now)

    def clear(self, what: str) -> None:
        self.since.pop(what, None)


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
    """Ready, failed (with a message a user can act on) or waiting (maybe until a recheck).

    ``pvc_events`` maps each claim of the server to its events; ``seen`` is updated with
    the tolerance clocks the verdict carries forward.
    """
    meta = pod.get("metadata") or {}
    claims = list(pvc_events)
    target = Target(
        str(meta.get("namespace") or ""),
        str(meta.get("name") or ""),
        str(meta.get("uid") or ""),
        claims[0] if claims else None,
    )
    verdict = readiness.assess(
        pod,
        StaticEvents(pod=pod_events, pvc=[e for claim in claims for e in pvc_events[claim]]),
        readiness.Tolerances(
            image_pull=tolerances.image_pull,
            config_error=tolerances.config_error,
            unschedulable=tolerances.unschedulable,
        ),
        now,
        target=target,
        memory=Memory(seen=True, since=dict(seen.since)),
        container=container,
    )
    seen.since.clear()
    seen.since.update(verdict.memory.since)
    return verdict
