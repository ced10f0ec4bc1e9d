"""The operator's readiness verdicts (the same classification as the in-hub spawner)."""

from __future__ import annotations

from typing import Any

import pytest

from async_kubespawner.operator.readiness import SeenSince, Tolerances, pod_verdict


def pod(status: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "jupyter-alice", "namespace": "ns", "uid": "u-1", **meta},
            "status": status}


def waiting(reason: str, message: str = "") -> dict[str, Any]:
    return {"containerStatuses": [{"name": "notebook", "ready": False,
                                   "state": {"waiting": {"reason": reason, "message": message}}}]}


T = Tolerances(image_pull=0, config_error=10, unschedulable=30)


@pytest.mark.parametrize(("status", "state", "reason"), [
    ({"phase": "Running", "podIP": "10.0.0.1",
      "containerStatuses": [{"name": "notebook", "ready": True, "state": {"running": {}}}]},
     "ready", ""),
    (waiting("ErrImagePull", "not found"), "failed", "ImagePullFailed"),
    ({"containerStatuses": [{"name": "notebook", "restartCount": 3, "state": {
        "waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 2}}}]}, "failed", "CrashLoopBackOff"),
    ({"phase": "Failed", "reason": "Evicted", "message": "low memory"}, "failed", "Evicted"),
    ({"phase": "Running", "containerStatuses": [{"name": "notebook", "state": {
        "terminated": {"exitCode": 1}}}]}, "failed", "ContainerExited"),
    (waiting("CreateContainerConfigError", "secret missing"), "waiting", ""),
    ({"phase": "Pending"}, "waiting", ""),
])
def test_verdicts(status: dict[str, Any], state: str, reason: str) -> None:
    verdict = pod_verdict(pod(status), [], {}, T, SeenSince(), now=100.0)
    assert verdict.state == state
    if state == "failed":  # the reason becomes the status condition's reason
        assert verdict.reason == reason


def test_tolerances_are_measured_from_first_sight() -> None:
    seen = SeenSince()
    unschedulable = {"phase": "Pending", "conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/3 nodes are available"}]}
    first = pod_verdict(pod(unschedulable), [], {}, T, seen, now=100.0)
    assert first.state == "waiting" and first.recheck_in == 30
    later = pod_verdict(pod(unschedulable), [], {}, T, seen, now=120.0)
    assert later.state == "waiting" and later.recheck_in == 10
    assert pod_verdict(pod(unschedulable), [], {}, T, seen, now=130.0).reason == "Unschedulable"
    scale_up = [{"reason": "TriggeredScaleUp"}]
    assert pod_verdict(pod(unschedulable), scale_up, {}, T, SeenSince(), now=999).state == "waiting"
    config = waiting("CreateContainerConfigError", "secret missing")
    seen = SeenSince()
    assert pod_verdict(pod(config), [], {}, T, seen, now=0).recheck_in == 10
    assert pod_verdict(pod(config), [], {}, T, seen, now=10).reason == "ContainerConfigError"


def test_unprovisionable_volume_fails() -> None:
    events = {"claim-alice": [{"type": "Warning", "reason": "ProvisioningFailed",
                               "message": 'storageclass "fast" not found'}]}
    verdict = pod_verdict(pod({"phase": "Pending"}), [], events, T, SeenSince(), now=0)
    assert verdict.reason == "VolumeProvisioningFailed" and "claim-alice" in verdict.message


def test_the_verdict_is_the_spawners_and_names_the_failing_claim() -> None:
    """The operator asks the spawner's verdict function: same judgement, same words; of
    several claims, the one whose events report the failure is named."""
    from async_kubespawner.lifecycle.readiness import StaticEvents, Target, assess
    from async_kubespawner.lifecycle.readiness import Tolerances as SpawnerTolerances

    evicted = pod({"phase": "Failed", "reason": "Evicted", "message": "low memory"})
    mine = pod_verdict(evicted, [], {}, T, SeenSince(), now=0)
    spawners = assess(
        evicted,
        StaticEvents(),
        SpawnerTolerances(0, 10, 30),
        0,
        target=Target("ns", "jupyter-alice", "u-1"),
    )
    assert (mine.state, mine.reason, mine.message) == (
        spawners.state,
        spawners.reason,
        spawners.message,
    )
    events = {
        "home-alice": [],
        "scratch-alice": [
            {
                "type": "Warning",
                "reason": "ProvisioningFailed",
                "message": "no capacity",
                "involvedObject": {"kind": "PersistentVolumeClaim", "name": "scratch-alice"},
            }
        ],
    }
    verdict = pod_verdict(pod({"phase": "Pending"}), [], events, T, SeenSince(), now=0)
    assert verdict.reason == "VolumeProvisioningFailed"
    assert "'scratch-alice'" in verdict.message and "no capacity" in verdict.message
