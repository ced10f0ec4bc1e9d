"""Is a starting pod ready, failed, or still on its way? A pure verdict from what the API shows.

``assess()`` reads a pod (a plain dict, as the reflector's cache keeps it) and the
Kubernetes events of the pod and its PVC, and answers with a :class:`Verdict`: ready,
failed with a message a user can act on, or waiting (and when to look again, if a
tolerance runs out before anything changes).

It does no I/O, knows nothing of JupyterHub, traitlets or the spawner, and keeps no
state: whatever must be remembered between two assessments (since when a tolerated
problem has lasted, whether the pod was seen at all) comes in as a :class:`Memory` and
goes out, updated, in the verdict. That is what lets the in-hub spawner and an operator
(whose status conditions need the same judgement) share it, and lets every verdict be
tested with a dict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = [
    "IMAGE_PULL_REASONS",
    "TERMINATION_MESSAGE_LIMIT",
    "EventView",
    "Memory",
    "StaticEvents",
    "Target",
    "Tolerances",
    "Verdict",
    "assess",
    "exit_code",
    "pod_is_running",
]

Pod = Mapping[str, Any]
Event = Mapping[str, Any]
State = Literal["ready", "failed", "waiting"]

#: Waiting reasons of a container whose image cannot be had.
IMAGE_PULL_REASONS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "RegistryUnavailable",
    }
)

#: How much of a container's termination message (its last output, with
#: ``terminationMessagePolicy: FallbackToLogsOnError``) a failure quotes.
TERMINATION_MESSAGE_LIMIT = 1000

#: PVC event reasons that mean the volume will not come.
_PVC_FAILURE_REASONS = ("ProvisioningFailed", "FailedBinding")

#: The container whose exit ends a server (JupyterHub's single-user server).
NOTEBOOK_CONTAINER = "notebook"


@dataclass(frozen=True)
class Tolerances:
    """Seconds a problem that may heal on its own is given before it is a failure.

    A pull error rarely heals (0: fail at the first report); a missing Secret is normal
    for the instant before the spawner creates it; an unschedulable pod may fit once a
    pod elsewhere ends.
    """

    image_pull: float = 0.0
    config_error: float = 10.0
    unschedulable: float = 30.0


@dataclass(frozen=True)
class Target:
    """Which pod is being judged: the one named so, with this uid (a pod of the same
    name but another uid is a leftover or a successor, not ours)."""

    namespace: str
    pod_name: str
    uid: str
    pvc_name: str | None = None


@dataclass(frozen=True)
class Memory:
    """What one assessment hands to the next: whether the pod was seen (so that its
    disappearance is a failure, not "not created yet"), and since when each tolerated
    problem has been reported (keys like ``"notebook:pull"``, ``"unschedulable"``)."""

    seen: bool = False
    since: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """The answer: ``state``, a ``message`` for the user (failed) or for the progress
    log (waiting), a machine-readable ``reason`` (for status conditions and logs),
    ``recheck_in`` seconds when a tolerance expires before anything may change, and the
    ``memory`` to pass to the next assessment."""

    state: State
    message: str = ""
    reason: str = ""
    recheck_in: float | None = None
    memory: Memory = field(default_factory=Memory)

    @property
    def pvc_failure(self) -> bool:
        """The volume cannot be provisioned: a PVC made for this start should go too."""
        return self.reason == "VolumeProvisioningFailed"


class EventView(Protocol):
    """The events ``assess`` may consult; a protocol so that a caller can decode them
    only when asked (a pod that is simply running needs none)."""

    def for_pod(self) -> Sequence[Event]:
        """Events whose involvedObject is the target pod (this uid), oldest first."""
        ...

    def for_pvc(self) -> Sequence[Event]:
        """Events whose involvedObject is the target's PVC, oldest first."""
        ...


@dataclass(frozen=True)
class StaticEvents:
    """An :class:`EventView` over lists already at hand (tests, an operator's snapshot)."""

    pod: Sequence[Event] = ()
    pvc: Sequence[Event] = ()

    def for_pod(self) -> Sequence[Event]:
        return self.pod

    def for_pvc(self) -> Sequence[Event]:
        return self.pvc


def pod_is_running(pod: Pod | None) -> bool:
    """Running, has an IP, not being deleted, and every container ready."""
    if pod is None:
        return False
    status = pod.get("status") or {}
    metadata = pod.get("metadata") or {}
    statuses = status.get("containerStatuses") or []
    return (
        status.get("phase") == "Running"
        and status.get("podIP") is not None
        and not metadata.get("deletionTimestamp")
        and all(cs.get("ready") for cs in statuses)
    )


def exit_code(pod: Pod) -> int | None:
    """The exit status of a server whose pod has ended, None while it starts or runs.

    The notebook container's exit code once it terminated (1 if it gave none); else 0
    for a pod that Succeeded and 1 for one that Failed (evicted, say).
    """
    status = pod.get("status") or {}
    for cs in status.get("containerStatuses") or ():
        if cs.get("name") != NOTEBOOK_CONTAINER:
            continue
        terminated = (cs.get("state") or {}).get("terminated")
        if terminated:
            code = terminated.get("exitCode")
            return int(code) if code is not None else 1
    phase = status.get("phase")
    if phase == "Succeeded":
        return 0
    if phase == "Failed":
        return 1
    return None


def last_output(terminated: Mapping[str, Any]) -> str:
    """The container's termination message, quoted for the spawn page.

    A traceback from the server's last lines tells a user more than any advice we can
    give; Kubernetes fills it from ``/dev/termination-log`` or, with
    ``FallbackToLogsOnError``, from the log tail. Only the end is kept: that is where the
    error is.
    """
    message = str(terminated.get("message") or "").strip()
    if not message:
        return ""
    if len(message) > TERMINATION_MESSAGE_LIMIT:
        message = "…" + message[-TERMINATION_MESSAGE_LIMIT:]
    return f" Its last output: {message}"


class _Clocks:
    """The tolerance clocks of one assessment: copy-on-write over the incoming memory,
    so an assessment that changes nothing allocates nothing."""

    __slots__ = ("changed", "now", "since")

    def __init__(self, since: Mapping[str, float], now: float) -> None:
        self.since = since
        self.now = now
        self.changed = False

    def first_seen(self, key: str) -> float:
        value = self.since.get(key)
        if value is None:
            self.since = {**self.since, key: self.now}
            self.changed = True
            return self.now
        return value

    def left(self, key: str, tolerance: float) -> float:
        """Seconds of ``tolerance`` left for the problem ``key`` (<= 0: it is up)."""
        return tolerance - (self.now - self.first_seen(key))

    def clear(self, key: str) -> None:
        if key in self.since:
            self.since = {k: v for k, v in self.since.items() if k != key}
            self.changed = True


def assess(
    pod: Pod | None,
    events: EventView | None,
    tolerances: Tolerances,
    now: float,
    *,
    target: Target | None = None,
    memory: Memory | None = None,
    is_running: Callable[[Pod | None], bool] = pod_is_running,
    container: str = NOTEBOOK_CONTAINER,
) -> Verdict:
    """Judge ``pod`` (None: not in the cache) for ``target`` at time ``now``.

    ``target`` None judges the pod as it is (its own name and uid, no PVC): for a caller
    such as an operator that already holds the pod it means. ``events`` None means
    events are not watched: the verdicts that need them (PVC failures, a cluster
    autoscaler's scale-up) are then never given. ``is_running`` is the readiness test
    (a spawner's overridable ``is_pod_running``); ``container`` the server's container,
    whose exit ends the server.
    """
    memory = memory or Memory()
    if target is None:
        if pod is None:
            return Verdict("waiting", reason="PodNotSeen", memory=memory)
        meta = pod.get("metadata") or {}
        target = Target(
            str(meta.get("namespace") or ""),
            str(meta.get("name") or ""),
            str(meta.get("uid") or ""),
        )
    clocks = _Clocks(memory.since, now)
    seen = memory.seen
    if pod is None or (pod.get("metadata") or {}).get("uid") != target.uid:
        if seen:
            return Verdict(
                "failed",
                f"The server's pod {target.pod_name} was deleted before "
                "it became ready. Try starting it again.",
                "PodDeleted",
                memory=memory,
            )
        return Verdict("waiting", reason="PodNotSeen", memory=memory)
    verdict = _assess_pod(pod, events, tolerances, target, clocks, is_running, container)
    if seen and not clocks.changed:
        new_memory = memory
    else:
        new_memory = Memory(True, clocks.since)
    return Verdict(verdict.state, verdict.message, verdict.reason, verdict.recheck_in, new_memory)


def _assess_pod(
    pod: Pod,
    events: EventView | None,
    tolerances: Tolerances,
    target: Target,
    clocks: _Clocks,
    is_running: Callable[[Pod | None], bool],
    container: str,
) -> Verdict:
    status = pod.get("status") or {}
    verdict = _phase_verdict(pod, status, target, is_running)
    if verdict is not None:
        return verdict
    recheck: list[float] = []
    for cs in (
        *(status.get("initContainerStatuses") or ()),
        *(status.get("containerStatuses") or ()),
    ):
        verdict = _assess_container(cs, tolerances, clocks, recheck, container)
        if verdict is not None:
            return verdict
    if status.get("phase") == "Succeeded":
        return Verdict(
            "failed",
            "The notebook server exited (with success) before it "
            "became ready. Check the image's start command.",
            "PodSucceeded",
        )
    unschedulable = _unschedulable_message(status)
    if unschedulable is not None:
        return _pvc_failure(target, events) or _unschedulable_verdict(
            unschedulable, events, tolerances, clocks
        )
    clocks.clear("unschedulable")
    return _pvc_failure(target, events) or Verdict(
        "waiting", reason="Starting", recheck_in=min(recheck) if recheck else None
    )


def _phase_verdict(
    pod: Pod,
    status: Mapping[str, Any],
    target: Target,
    is_running: Callable[[Pod | None], bool],
) -> Verdict | None:
    """What the pod as a whole says: being deleted, ready, or failed."""
    if pod["metadata"].get("deletionTimestamp"):
        return Verdict(
            "failed",
            f"The server's pod {target.pod_name} is being deleted "
            "before it became ready. Try starting it again.",
            "PodDeleting",
        )
    if is_running(pod):
        return Verdict("ready", reason="Ready")
    if status.get("phase") != "Failed":
        return None
    reason = status.get("reason") or "Failed"
    detail = status.get("message") or ""
    if reason == "Evicted":
        return Verdict(
            "failed",
            f"The server was evicted from its node: {detail} "
            "Try again; if it recurs, choose a smaller profile "
            "or ask an administrator.",
            "Evicted",
        )
    return Verdict("failed", f"The server's pod failed ({reason}). {detail}".strip(), "PodFailed")


def _unschedulable_verdict(
    message: str, events: EventView | None, tolerances: Tolerances, clocks: _Clocks
) -> Verdict:
    """No node can run the pod: wait while an autoscaler adds one, else the tolerance."""
    if events is not None and any(e.get("reason") == "TriggeredScaleUp" for e in events.for_pod()):
        return Verdict("waiting", f"waiting for the cluster to scale up: {message}", "ScalingUp")
    left = clocks.left("unschedulable", tolerances.unschedulable)
    if left <= 0:
        return Verdict(
            "failed",
            f"No node can run this server: {message}. Choose a "
            "smaller profile or try again later; if it persists, "
            "ask an administrator.",
            "Unschedulable",
        )
    return Verdict("waiting", message, "Unschedulable", recheck_in=left)


def _unschedulable_message(status: Mapping[str, Any]) -> str | None:
    """The scheduler's message while PodScheduled is False for lack of a node."""
    for condition in status.get("conditions") or ():
        if condition.get("type") != "PodScheduled":
            continue
        if condition.get("status") == "False" and condition.get("reason") == "Unschedulable":
            return str(condition.get("message") or "no node can run it")
        return None
    return None


def _assess_container(
    cs: Mapping[str, Any],
    tolerances: Tolerances,
    clocks: _Clocks,
    recheck: list[float],
    container: str,
) -> Verdict | None:
    """A failure of one container, or None (appending to ``recheck`` when a tolerated
    problem's time runs out later)."""
    name = cs.get("name")
    state = cs.get("state") or {}
    waiting = state.get("waiting")
    key = f"{name}:"
    if waiting:
        reason = waiting.get("reason") or ""
        detail = waiting.get("message") or ""
        if reason in IMAGE_PULL_REASONS:
            left = clocks.left(key + "pull", tolerances.image_pull)
            if left <= 0:
                return Verdict(
                    "failed",
                    f"The image of container {name!r} cannot be pulled ({reason}): "
                    f"{detail or 'no detail given'}. Check the image name and tag, and that "
                    "the registry is reachable and its credentials (image_pull_secrets) "
                    "are set.",
                    "ImagePullFailed",
                )
            recheck.append(left)
            return None
        clocks.clear(key + "pull")
        if reason == "CrashLoopBackOff":
            last = (cs.get("lastState") or {}).get("terminated") or {}
            code = last.get("exitCode")
            why = f"exit code {code}" if code is not None else "it keeps exiting"
            if last.get("reason"):
                why += f", {last['reason']}"
            return Verdict(
                "failed",
                f"Container {name!r} keeps crashing ({why}; restarted "
                f"{cs.get('restartCount', 0)} times). Check the image's start command and "
                "the server's logs." + last_output(last),
                "CrashLoopBackOff",
            )
        if reason == "CreateContainerConfigError":
            left = clocks.left(key + "config", tolerances.config_error)
            if left <= 0:
                return Verdict(
                    "failed",
                    f"Container {name!r} cannot be created: {detail}. "
                    "A Secret or ConfigMap it needs is missing.",
                    "ContainerConfigError",
                )
            recheck.append(left)
            return None
        clocks.clear(key + "config")
        return None
    terminated = state.get("terminated")
    if terminated and name == container:
        code = terminated.get("exitCode")
        reason = terminated.get("reason") or ""
        return Verdict(
            "failed",
            f"The notebook server exited with code {code}"
            + (f" ({reason})" if reason else "")
            + " before it became ready. Check the image's start command and the server's "
            "logs." + last_output(terminated),
            "ContainerExited",
        )
    return None


def _pvc_failure(target: Target, events: EventView | None) -> Verdict | None:
    """The latest warning that the target's PVC (or one of its claims: the event names
    which) cannot be provisioned or bound."""
    if not target.pvc_name or events is None:
        return None
    for event in reversed(events.for_pvc()):
        if event.get("type") == "Warning" and event.get("reason") in _PVC_FAILURE_REASONS:
            claim = (event.get("involvedObject") or {}).get("name") or target.pvc_name
            return Verdict(
                "failed",
                f"The storage volume {claim!r} cannot be provisioned: "
                f"{event.get('message', '')}. Ask an administrator to check the "
                "storage class.",
                "VolumeProvisioningFailed",
            )
    return None
