"""Pod status builders, QoS class, event texts and scenario parsing (pure, no store)."""

import pytest
from kubesim.cluster.clock import format_go_duration
from kubesim.cluster.events import PullFailure, pulled_message
from kubesim.cluster.podstatus import (
    ContainerRecord,
    build_pod_status,
    compute_phase,
    image_id,
    normalize_image,
    qos_class,
    running,
    terminated,
    waiting,
)
from kubesim.cluster.scenarios import (
    SCENARIO_ANNOTATION,
    Duration,
    ScenarioBook,
    ScenarioError,
)

T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T00:00:05Z"


def pod_with(resources_list, restart="Always"):
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
        "spec": {
            "restartPolicy": restart,
            "containers": [
                {"name": f"c{i}", "image": "x", "resources": r}
                for i, r in enumerate(resources_list)
            ],
        },
    }


def test_qos_classes():
    assert qos_class(pod_with([{}])) == "BestEffort"
    assert qos_class(pod_with([{"requests": {"cpu": "1"}}])) == "Burstable"
    both = {"limits": {"cpu": "1", "memory": "1Gi"}}
    assert qos_class(pod_with([both])) == "Guaranteed"
    assert (
        qos_class(pod_with([{**both, "requests": {"cpu": "1000m", "memory": "1Gi"}}]))
        == "Guaranteed"
    )
    assert qos_class(pod_with([{**both, "requests": {"cpu": "500m"}}])) == "Burstable"
    assert qos_class(pod_with([both, {}])) == "Burstable"


def test_image_normalisation():
    assert normalize_image("python") == "docker.io/library/python:latest"
    assert normalize_image("jupyter/base:1") == "docker.io/jupyter/base:1"
    assert normalize_image("quay.io/jupyterhub/singleuser:5") == "quay.io/jupyterhub/singleuser:5"
    assert normalize_image("localhost:5000/x") == "localhost:5000/x:latest"
    assert image_id("python").startswith("docker.io/library/python@sha256:")


def rec(name, state, **kw):
    return ContainerRecord(name=name, image="x", state=state, **kw)


@pytest.mark.parametrize(
    ("policy", "states", "expected"),
    [
        ("Always", [waiting("ContainerCreating")], "Pending"),
        ("Always", [running(T0)], "Running"),
        ("Never", [terminated(0, "Completed", T0, T1)], "Succeeded"),
        ("Never", [terminated(1, "Error", T0, T1)], "Failed"),
        ("OnFailure", [terminated(1, "Error", T0, T1)], "Running"),
        ("OnFailure", [terminated(0, "Completed", T0, T1)], "Succeeded"),
        ("Always", [terminated(0, "Completed", T0, T1)], "Running"),
        ("Always", [running(T0), waiting("ContainerCreating")], "Pending"),
    ],
)
def test_phase(policy, states, expected):
    assert compute_phase(policy, [], [rec(f"c{i}", s) for i, s in enumerate(states)]) == expected


def test_crashlooping_container_keeps_pod_running():
    crashed = rec(
        "c", waiting("CrashLoopBackOff"), last_state=terminated(1, "Error", T0, T1), restart_count=1
    )
    assert compute_phase("Always", [], [crashed]) == "Running"


def test_init_container_phase():
    init = [rec("i", running(T0), init=True)]
    assert compute_phase("Always", init, [rec("c", waiting("PodInitializing"))]) == "Pending"
    failed = [rec("i", terminated(1, "Error", T0, T1), init=True)]
    assert compute_phase("Never", failed, [rec("c", waiting("PodInitializing"))]) == "Failed"


def test_build_status_pending_then_ready_keeps_transition_times():
    pod = pod_with([{}])
    main = rec("c0", waiting("ContainerCreating"))
    st = build_pod_status(
        pod,
        now=T0,
        init=[],
        containers=[main],
        sandbox_ready=False,
        host_ip="10.0.0.2",
        pod_ip=None,
        start_time=T0,
    )
    conds = {c["type"]: c for c in st["conditions"]}
    assert [c["type"] for c in st["conditions"]] == [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ]
    assert st["phase"] == "Pending" and "podIP" not in st
    assert conds["Ready"]["reason"] == "ContainersNotReady"
    assert conds["Ready"]["message"] == "containers with unready status: [c0]"
    assert st["qosClass"] == "BestEffort" and st["hostIPs"] == [{"ip": "10.0.0.2"}]
    pod["status"] = st
    main.state, main.ready, main.started, main.image_pulled = running(T1), True, True, True
    st2 = build_pod_status(
        pod,
        now=T1,
        init=[],
        containers=[main],
        sandbox_ready=True,
        host_ip="10.0.0.2",
        pod_ip="10.244.1.5",
        start_time=T0,
    )
    conds2 = {c["type"]: c for c in st2["conditions"]}
    assert st2["phase"] == "Running" and st2["podIPs"] == [{"ip": "10.244.1.5"}]
    assert conds2["Ready"]["status"] == "True" and conds2["Ready"]["lastTransitionTime"] == T1
    assert conds2["Initialized"]["lastTransitionTime"] == T0  # unchanged status keeps its time
    cs = st2["containerStatuses"][0]
    assert cs["image"] == "docker.io/library/x:latest" and cs["imageID"].startswith("docker.io/")
    assert cs["state"] == {"running": {"startedAt": T1}} and cs["started"] is True


def test_build_status_with_init_container():
    pod = pod_with([{}])
    st = build_pod_status(
        pod,
        now=T0,
        init=[rec("i", running(T0), init=True)],
        containers=[rec("c0", waiting("PodInitializing"))],
        sandbox_ready=True,
        host_ip="10.0.0.2",
        pod_ip="10.244.1.5",
        start_time=T0,
    )
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Initialized"]["status"] == "False"
    assert conds["Initialized"]["message"] == "containers with incomplete status: [i]"
    assert st["initContainerStatuses"][0]["name"] == "i"


def test_event_texts():
    assert pulled_message("python:3", 1.2345, 1000) == (
        'Successfully pulled image "python:3" in 1.234s (1.234s including waiting). '
        "Image size: 1000 bytes."
    )
    failure = PullFailure("nope:1")
    assert failure.failed_message.startswith(
        'Failed to pull image "nope:1": rpc error: code = NotFound'
    )
    assert format_go_duration(0.35) == "350ms"
    assert format_go_duration(125) == "2m5s"
    assert format_go_duration(10) == "10s"


def test_duration_parsing():
    assert Duration.parse("2") == Duration(2, 2)
    assert Duration.parse("500ms") == Duration(0.5, 0.5)
    assert Duration.parse("1-3") == Duration(1, 3)
    assert Duration.parse("1s..2m") == Duration(1, 120)
    for bad in ("soon", "3-1", "-1", True):
        with pytest.raises(ScenarioError):
            Duration.parse(bad)


def test_scenario_resolution_order_and_overrides():
    book = ScenarioBook(image_rules=[("*/broken:*", "image-pull-failure")], default="ready")
    pod = {
        "metadata": {"name": "p", "uid": "u1"},
        "spec": {"containers": [{"name": "c", "image": "example.org/broken:1"}]},
    }
    assert book.for_pod(pod).pull_fails is True
    pod["metadata"]["annotations"] = {SCENARIO_ANNOTATION: "crash,exit-after=5,exit-code=3"}
    chosen = book.for_pod(pod)
    assert (chosen.pull_fails, chosen.exit_code, chosen.seconds("exit_after")) == (False, 3, 5.0)
    pod["metadata"]["annotations"] = {SCENARIO_ANNOTATION: "pull=1-3"}
    first = book.for_pod(pod).seconds("pull")
    assert 1 <= first <= 3 and book.for_pod(pod).seconds("pull") == first  # seeded per pod
    other = {**pod, "metadata": {**pod["metadata"], "uid": "u2"}}
    assert book.for_pod(other).seconds("pull") != first


def test_scenario_errors_are_specific():
    book = ScenarioBook()
    with pytest.raises(ScenarioError, match="unknown scenario 'explode'"):
        book.parse("explode")
    with pytest.raises(ScenarioError, match="unknown setting 'colour'"):
        book.parse("ready,colour=blue")
    with pytest.raises(ScenarioError, match="exit-code: 'x' is not an integer"):
        book.parse("crash,exit-code=x")
    with pytest.raises(ScenarioError, match="default scenario"):
        ScenarioBook(default="nope")
    defined = book.define("gpu-slow", {"preset": "slow-pull", "pull": 60, "never-ready": "yes"})
    assert defined.never_ready and defined.pull == Duration(60, 60)
