"""The printers behind ``kubectl get`` (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime

from async_kubespawner.sim.resources import ResourceRegistry
from async_kubespawner.sim.tables import build_table, human_age, pod_status_reason

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_human_age_matches_kubectl_shapes():
    cases = {0: "0s", 119: "119s", 150: "2m30s", 600: "10m", 3 * 3600 + 60: "3h1m",
             9 * 3600: "9h", 3 * 86400 + 3600: "3d1h", 30 * 86400: "30d"}
    for seconds, expected in cases.items():
        then = datetime.fromtimestamp(NOW.timestamp() - seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert human_age(then, NOW) == expected, seconds
    assert human_age(None) == "<unknown>"


def pod(**status) -> dict:
    return {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}, "status": status}


def test_pod_status_column():
    assert pod_status_reason(pod(phase="Pending")) == "Pending"
    gated = pod(phase="Pending", conditions=[{"type": "PodScheduled", "status": "False",
                                              "reason": "SchedulingGated"}])
    assert pod_status_reason(gated) == "SchedulingGated"
    pulling = pod(phase="Pending", containerStatuses=[
        {"name": "c", "ready": False, "state": {"waiting": {"reason": "ContainerCreating"}}}])
    assert pod_status_reason(pulling) == "ContainerCreating"
    backoff = pod(phase="Pending", containerStatuses=[
        {"name": "c", "ready": False, "state": {"waiting": {"reason": "ImagePullBackOff"}}}])
    assert pod_status_reason(backoff) == "ImagePullBackOff"
    crashed = pod(phase="Failed", containerStatuses=[
        {"name": "c", "ready": False, "state": {"terminated": {"exitCode": 3}}}])
    assert pod_status_reason(crashed) == "ExitCode:3"
    init = pod(phase="Pending", initContainerStatuses=[
        {"name": "i", "state": {"running": {}}}])
    init["spec"]["initContainers"] = [{"name": "i"}]
    assert pod_status_reason(init) == "Init:0/1"
    running = pod(phase="Running", containerStatuses=[
        {"name": "c", "ready": True, "state": {"running": {}}}])
    running["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert pod_status_reason(running) == "Terminating"


def test_table_shape_and_row_objects():
    reg = ResourceRegistry.with_builtins()
    pods = reg.lookup("pods")
    obj = pod(phase="Running", podIP="10.0.0.5", containerStatuses=[
        {"name": "c", "ready": True, "restartCount": 2, "state": {"running": {}}}])
    table = build_table(pods, [obj], list_meta={"resourceVersion": "9"})
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0] == [
        "Name", "Ready", "Status", "Restarts", "Age"]
    cells = table["rows"][0]["cells"]
    assert cells[:4] == ["p", "1/1", "Running", "2"] and cells[5] == "10.0.0.5"
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert build_table(pods, [obj], include_object="None")["rows"][0].keys() == {"cells"}
    assert build_table(pods, [obj], include_object="Object")["rows"][0]["object"] is obj
    svc = {"metadata": {"name": "s"}, "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.9",
                                               "ports": [{"port": 80, "protocol": "TCP"}]}}
    row = build_table(reg.lookup("services"), [svc])["rows"][0]["cells"]
    assert row[:5] == ["s", "ClusterIP", "10.96.0.9", "<none>", "80/TCP"]
