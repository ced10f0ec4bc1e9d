"""Readiness verdicts from plain dict pods and events: every verdict a start can reach,
with the tolerance clocks carried in ``Memory`` from one assessment to the next."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from async_kubespawner.lifecycle.readiness import (
    TERMINATION_MESSAGE_LIMIT,
    Memory,
    StaticEvents,
    Target,
    Tolerances,
    Verdict,
    assess,
    exit_code,
    pod_is_running,
)

TARGET = Target("users", "jupyter-alice", "uid-1", pvc_name="claim-alice")
TOLERANCES = Tolerances(image_pull=0, config_error=10, unschedulable=30)


def pod(
    phase: str = "Pending",
    *,
    uid: str = "uid-1",
    containers: list[dict[str, Any]] | None = None,
    init: list[dict[str, Any]] | None = None,
    conditions: list[dict[str, Any]] | None = None,
    ip: str | None = None,
    deleting: bool = False,
    **status: Any,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "jupyter-alice", "namespace": "users", "uid": uid}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    body: dict[str, Any] = {"phase": phase, **status}
    if containers is not None:
        body["containerStatuses"] = containers
    if init is not None:
        body["initContainerStatuses"] = init
    if conditions is not None:
        body["conditions"] = conditions
    if ip is not None:
        body["podIP"] = ip
    return {"metadata": meta, "status": body}


def waiting(reason: str, message: str = "", name: str = "notebook") -> dict[str, Any]:
    return {
        "name": name,
        "ready": False,
        "state": {"waiting": {"reason": reason, "message": message}},
    }


UNSCHEDULABLE = [
    {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/3 nodes are available: 3 Insufficient memory.",
    }
]


def judge(p: dict[str, Any] | None, now: float = 100.0, **kwargs: Any) -> Verdict:
    kwargs.setdefault("target", TARGET)
    return assess(
        p, kwargs.pop("events", None), kwargs.pop("tolerances", TOLERANCES), now, **kwargs
    )


def test_ready() -> None:
    running = pod(
        "Running", ip="10.0.0.5", containers=[{"name": "notebook", "ready": True, "state": {}}]
    )
    verdict = judge(running)
    assert (verdict.state, verdict.reason) == ("ready", "Ready")
    assert verdict.memory.seen
    assert pod_is_running(running)


def test_running_but_a_container_not_ready_is_waiting() -> None:
    p = pod(
        "Running", ip="10.0.0.5", containers=[{"name": "notebook", "ready": False, "state": {}}]
    )
    verdict = judge(p)
    assert (verdict.state, verdict.reason) == ("waiting", "Starting")
    assert verdict.recheck_in is None


def test_custom_readiness_test_is_used() -> None:
    """A spawner subclass overriding is_pod_running decides what ready means."""
    p = pod("Pending")
    assert judge(p, is_running=lambda _pod: True).state == "ready"


def test_not_created_yet_then_deleted() -> None:
    assert judge(None).state == "waiting"
    # a pod of the same name with another uid (a leftover) is not ours
    assert judge(pod(uid="old")).reason == "PodNotSeen"
    seen = judge(pod()).memory
    gone = judge(None, memory=seen)
    assert (gone.state, gone.reason) == ("failed", "PodDeleted")
    assert "jupyter-alice was deleted" in gone.message


def test_being_deleted() -> None:
    verdict = judge(pod(deleting=True))
    assert (verdict.state, verdict.reason) == ("failed", "PodDeleting")


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff", "InvalidImageName"])
def test_image_pull_error_fails_at_once_by_default(reason: str) -> None:
    p = pod(containers=[waiting(reason, 'pull access denied for "nope"')])
    verdict = judge(p)
    assert (verdict.state, verdict.reason) == ("failed", "ImagePullFailed")
    assert reason in verdict.message and "image_pull_secrets" in verdict.message


def test_image_pull_error_within_its_tolerance_waits_then_fails() -> None:
    tolerant = Tolerances(image_pull=20)
    p = pod(containers=[waiting("ErrImagePull")])
    first = judge(p, now=100, tolerances=tolerant)
    assert (first.state, first.recheck_in) == ("waiting", 20)
    later = judge(p, now=115, tolerances=tolerant, memory=first.memory)
    assert later.state == "waiting" and later.recheck_in == pytest.approx(5)
    assert judge(p, now=120, tolerances=tolerant, memory=later.memory).state == "failed"


def test_a_healed_pull_error_resets_its_clock() -> None:
    tolerant = Tolerances(image_pull=20)
    first = judge(pod(containers=[waiting("ErrImagePull")]), now=100, tolerances=tolerant)
    healed = judge(pod(containers=[waiting("ContainerCreating")]), now=110, memory=first.memory)
    assert healed.memory.since == {}
    again = judge(
        pod(containers=[waiting("ErrImagePull")]),
        now=125,
        tolerances=tolerant,
        memory=healed.memory,
    )
    assert again.state == "waiting" and again.recheck_in == 20


def test_crash_loop_quotes_exit_code_and_last_output() -> None:
    container = waiting("CrashLoopBackOff", name="notebook")
    container["restartCount"] = 3
    container["lastState"] = {
        "terminated": {"exitCode": 2, "reason": "Error", "message": "x" * 2000 + "Traceback: boom"}
    }
    verdict = judge(pod(containers=[container]))
    assert (verdict.state, verdict.reason) == ("failed", "CrashLoopBackOff")
    assert "exit code 2, Error" in verdict.message and "restarted 3 times" in verdict.message
    assert verdict.message.endswith("Traceback: boom")
    quoted = verdict.message.split("Its last output: ", 1)[1]
    assert len(quoted) == TERMINATION_MESSAGE_LIMIT + 1  # the ellipsis and the tail


def test_crash_loop_of_an_init_container() -> None:
    verdict = judge(pod(init=[waiting("CrashLoopBackOff", name="fetch-data")]))
    assert verdict.state == "failed" and "'fetch-data'" in verdict.message


def test_config_error_tolerated_then_failed() -> None:
    p = pod(containers=[waiting("CreateContainerConfigError", 'secret "s" not found')])
    first = judge(p, now=0)
    assert (first.state, first.recheck_in) == ("waiting", 10)
    last = judge(p, now=10, memory=first.memory)
    assert (last.state, last.reason) == ("failed", "ContainerConfigError")
    assert 'secret "s" not found' in last.message


def test_notebook_container_exited() -> None:
    exited = {"name": "notebook", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}
    verdict = judge(pod("Running", containers=[exited]))
    assert (verdict.state, verdict.reason) == ("failed", "ContainerExited")
    assert "exited with code 1 (Error)" in verdict.message
    # a sidecar that exited is not the server ending
    sidecar = {"name": "sidecar", "state": {"terminated": {"exitCode": 0}}}
    assert judge(pod("Running", containers=[sidecar])).state == "waiting"


def test_evicted() -> None:
    verdict = judge(pod("Failed", reason="Evicted", message="The node was low on memory."))
    assert (verdict.state, verdict.reason) == ("failed", "Evicted")
    assert "low on memory" in verdict.message


def test_failed_and_succeeded_phases() -> None:
    assert judge(pod("Failed", reason="DeadlineExceeded")).reason == "PodFailed"
    assert judge(pod("Succeeded")).reason == "PodSucceeded"


def test_unschedulable_waits_for_its_tolerance() -> None:
    p = pod(conditions=UNSCHEDULABLE)
    first = judge(p, now=0)
    assert (first.state, first.reason, first.recheck_in) == ("waiting", "Unschedulable", 30)
    assert "Insufficient memory" in first.message
    assert judge(p, now=29, memory=first.memory).state == "waiting"
    past = judge(p, now=30, memory=first.memory)
    assert (past.state, past.reason) == ("failed", "Unschedulable")
    assert "No node can run this server: 0/3 nodes" in past.message


def test_unschedulable_while_the_autoscaler_scales_up_keeps_waiting() -> None:
    events = StaticEvents(pod=[{"reason": "TriggeredScaleUp", "type": "Normal"}])
    p = pod(conditions=UNSCHEDULABLE)
    first = judge(p, now=0, events=events)
    later = judge(p, now=1000, events=events, memory=first.memory)
    assert (later.state, later.reason, later.recheck_in) == ("waiting", "ScalingUp", None)


def test_scheduled_again_resets_the_unschedulable_clock() -> None:
    first = judge(pod(conditions=UNSCHEDULABLE), now=0)
    assert "unschedulable" in first.memory.since
    scheduled = judge(
        pod(conditions=[{"type": "PodScheduled", "status": "True"}]), now=5, memory=first.memory
    )
    assert "unschedulable" not in scheduled.memory.since


def test_pvc_that_cannot_be_provisioned() -> None:
    events = StaticEvents(
        pvc=[
            {"type": "Normal", "reason": "WaitForFirstConsumer"},
            {
                "type": "Warning",
                "reason": "ProvisioningFailed",
                "message": 'storageclass "x" not found',
            },
        ]
    )
    verdict = judge(pod(conditions=UNSCHEDULABLE), events=events)
    assert (verdict.state, verdict.reason) == ("failed", "VolumeProvisioningFailed")
    assert verdict.pvc_failure and "'claim-alice'" in verdict.message
    assert 'storageclass "x" not found' in verdict.message
    # also while the pod waits for anything else
    assert judge(pod(), events=events).pvc_failure
    # no PVC ensured for this start: its events are not consulted
    no_pvc = Target("users", "jupyter-alice", "uid-1")
    assert judge(pod(), events=events, target=no_pvc).state == "waiting"


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        (pod("Running", containers=[{"name": "notebook", "state": {"running": {}}}]), None),
        (pod("Pending"), None),
        (
            pod(
                "Running",
                containers=[{"name": "notebook", "state": {"terminated": {"exitCode": 3}}}],
            ),
            3,
        ),
        (pod("Running", containers=[{"name": "notebook", "state": {"terminated": {"reason": "Error"}}}]), 1),
        (
            pod(
                "Running",
                containers=[{"name": "sidecar", "state": {"terminated": {"exitCode": 0}}}],
            ),
            None,
        ),
        (pod("Succeeded"), 0),
        (pod("Failed", reason="Evicted"), 1),
    ],
)
def test_exit_code(p: dict[str, Any], expected: int | None) -> None:
    assert exit_code(p) == expected


def test_the_four_argument_form_judges_the_pod_as_it_is() -> None:
    """assess(pod, events, tolerances, now): what a caller holding the pod it means
    (an operator's status) uses."""
    p = pod(conditions=UNSCHEDULABLE)
    first = assess(p, None, TOLERANCES, 0)
    assert (first.state, first.reason) == ("waiting", "Unschedulable")
    assert assess(p, None, TOLERANCES, 30, memory=first.memory).state == "failed"
    assert assess(None, None, TOLERANCES, 0).reason == "PodNotSeen"


def test_without_events_the_event_verdicts_are_never_given() -> None:
    assert judge(pod(), events=None).state == "waiting"


def test_an_assessment_that_changes_nothing_keeps_the_memory_object() -> None:
    first = judge(pod(), now=0)
    assert judge(pod(), now=1, memory=first.memory).memory is first.memory


container_states = st.one_of(
    st.builds(
        waiting,
        st.sampled_from(
            ["ErrImagePull", "CrashLoopBackOff", "CreateContainerConfigError", "ContainerCreating"]
        ),
    ),
    st.just({"name": "notebook", "ready": True, "state": {"running": {}}}),
    st.just({"name": "notebook", "state": {"terminated": {"exitCode": 3}}}),
)


@given(
    phase=st.sampled_from(["Pending", "Running", "Succeeded", "Failed", "Unknown"]),
    containers=st.lists(container_states, max_size=3),
    unschedulable=st.booleans(),
    times=st.lists(st.floats(min_value=0, max_value=100), min_size=1, max_size=5),
)
def test_any_pod_gets_a_consistent_verdict(
    phase: str, containers: list[dict[str, Any]], unschedulable: bool, times: list[float]
) -> None:
    """Whatever the pod shows, the verdict is well formed: a failure always explains
    itself, only waiting asks for a recheck, and the clocks never run backwards."""
    p = pod(
        phase,
        ip="10.0.0.1",
        containers=containers,
        conditions=UNSCHEDULABLE if unschedulable else None,
    )
    memory = Memory()
    for now in sorted(times):
        verdict = judge(p, now=now, memory=memory)
        assert verdict.state in ("ready", "failed", "waiting")
        assert verdict.reason
        if verdict.state == "failed":
            assert verdict.message
        if verdict.recheck_in is not None:
            assert verdict.state == "waiting" and verdict.recheck_in > 0
        assert all(since <= now for since in verdict.memory.since.values())
        memory = verdict.memory
