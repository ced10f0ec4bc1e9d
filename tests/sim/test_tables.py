"""The printers behind ``kubectl get`` (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime

from kubesim.resources import ResourceRegistry
from kubesim.tables import build_table, human_age, pod_status_reason

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


def test_pod_status_column_follows_kubectl_rules():
    init_crash = pod(phase="Pending", initContainerStatuses=[
        {"name": "i", "restartCount": 2,
         "state": {"waiting": {"reason": "CrashLoopBackOff"}}}])
    init_crash["spec"]["initContainers"] = [{"name": "i"}]
    assert pod_status_reason(init_crash) == "Init:CrashLoopBackOff"
    killed = pod(phase="Failed", containerStatuses=[
        {"name": "c", "state": {"terminated": {"exitCode": 137, "signal": 9}}}])
    assert pod_status_reason(killed) == "Signal:9"
    # a finished pod being deleted keeps its final status instead of "Terminating"
    done = pod(phase="Succeeded", containerStatuses=[
        {"name": "c", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}])
    done["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert pod_status_reason(done) == "Completed"
    # a sidecar (restartable init container) counts in READY and does not block "Running"
    sidecar = pod(phase="Running", conditions=[{"type": "Initialized", "status": "True"}],
                  initContainerStatuses=[{"name": "proxy", "started": True, "ready": True,
                                          "state": {"running": {}}}],
                  containerStatuses=[{"name": "c", "ready": True, "state": {"running": {}}}])
    sidecar["spec"]["initContainers"] = [{"name": "proxy", "restartPolicy": "Always"}]
    reg = ResourceRegistry.with_builtins()
    cells = build_table(reg.lookup("pods"), [sidecar])["rows"][0]["cells"]
    assert cells[1:3] == ["2/2", "Running"]


def test_restarts_cell_and_finished_rows():
    reg = ResourceRegistry.with_builtins()
    crashed = pod(phase="Running", containerStatuses=[
        {"name": "c", "restartCount": 3, "ready": False,
         "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2020-01-01T00:00:00Z"}},
         "state": {"waiting": {"reason": "CrashLoopBackOff"}}}])
    row = build_table(reg.lookup("pods"), [crashed])["rows"][0]
    assert row["cells"][2] == "CrashLoopBackOff"
    assert row["cells"][3].startswith("3 (") and row["cells"][3].endswith("d ago)")
    assert "conditions" not in row
    failed = pod(phase="Failed", containerStatuses=[
        {"name": "c", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}])
    row = build_table(reg.lookup("pods"), [failed])["rows"][0]
    assert row["cells"][2] == "OOMKilled"
    assert row["conditions"] == [{"type": "Completed", "status": "True", "reason": "Failed",
                                  "message": "The pod failed."}]


def test_event_secret_configmap_rows():
    reg = ResourceRegistry.with_builtins()
    ev = {"metadata": {"name": "web.1"}, "type": "Warning", "reason": "BackOff",
          "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{nb}"},
          "source": {"component": "kubelet", "host": "n1"}, "message": "Back-off \n",
          "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z",
          "count": 4}
    table = build_table(reg.lookup("events"), [ev])
    assert [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0] == [
        "Last Seen", "Type", "Reason", "Object", "Message"]
    cells = table["rows"][0]["cells"]
    assert cells[1:7] == ["Warning", "BackOff", "pod/web", "spec.containers{nb}", "kubelet, n1",
                          "Back-off"]
    assert cells[8:] == [4, "web.1"]
    # the events.k8s.io shape: no lastTimestamp, an eventTime with microseconds
    scheduler = {"metadata": {"name": "s"}, "involvedObject": {"kind": "Pod", "name": "web"},
                 "eventTime": "2026-01-01T00:00:00.123456Z", "reportingComponent": "default-scheduler"}
    cells = build_table(reg.lookup("events"), [scheduler])["rows"][0]["cells"]
    assert cells[0].endswith("d") and cells[5] == "default-scheduler" and cells[8] == 1
    secret = {"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"a": "", "b": ""}}
    assert build_table(reg.lookup("secrets"), [secret])["rows"][0]["cells"][:3] == [
        "s", "kubernetes.io/tls", 2]
    cm = {"metadata": {"name": "c"}, "data": {"a": "1"}, "binaryData": {"b": ""}}
    assert build_table(reg.lookup("configmaps"), [cm])["rows"][0]["cells"][:2] == ["c", 2]


def test_human_age_tolerates_a_second_of_skew():
    future = datetime.fromtimestamp(NOW.timestamp() + 1, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert human_age(future, NOW) == "0s"
    far = datetime.fromtimestamp(NOW.timestamp() + 5, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert human_age(far, NOW) == "<invalid>"
    three_years = datetime.fromtimestamp(NOW.timestamp() - 3 * 365 * 86400 - 10 * 86400, UTC)
    assert human_age(three_years.strftime("%Y-%m-%dT%H:%M:%SZ"), NOW) == "3y10d"


def test_serviceaccount_and_lease_rows():
    reg = ResourceRegistry.with_builtins()
    sa = {"metadata": {"name": "hub"}, "secrets": [{"name": "t"}]}
    assert build_table(reg.lookup("serviceaccounts"), [sa])["rows"][0]["cells"][:2] == ["hub", 1]
    lease = {"metadata": {"name": "leader"}, "spec": {"holderIdentity": "hub-0"}}
    table = build_table(reg.lookup("leases", "coordination.k8s.io"), [lease])
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Holder", "Age"]
    assert table["rows"][0]["cells"][:2] == ["leader", "hub-0"]
