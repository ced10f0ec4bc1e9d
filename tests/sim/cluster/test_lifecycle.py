"""Each scenario drives a pod through the statuses and events of a real cluster.

Everything is observed through the unmodified kubernetes_asyncio client, watching pods
and listing events as a spawner does, on the fast clock.
"""

import re
from typing import Any, cast

from kubernetes_asyncio import client

from .podwatch import (
    condition,
    create_and_follow,
    follow,
    main_state,
    pod_events,
    pod_manifest,
    ready,
    wait_for_event,
)


async def test_pod_becomes_ready_with_real_statuses_and_events(core: client.CoreV1Api):
    seen = await create_and_follow(core, pod_manifest("alice", cpu="500m"), ready)
    states = [main_state(p) for _, p in seen]
    assert states[0] == "none"  # as created: no node yet
    assert "waiting:ContainerCreating" in states
    assert states.index("waiting:ContainerCreating") < states.index("running")
    # PodScheduled precedes the kubelet's first status; the pod IP arrives with the sandbox
    first_kubelet = next(p for _, p in seen if p.status.container_statuses)
    assert condition(first_kubelet, "PodScheduled") == "True"
    assert condition(first_kubelet, "PodReadyToStartContainers") == "False"
    pod = seen[-1][1]
    assert pod.status.phase == "Running"
    assert [
        condition(pod, c)
        for c in (
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
            "PodScheduled",
        )
    ] == ["True"] * 5
    assert all(c.last_transition_time is not None for c in pod.status.conditions)
    assert pod.spec.node_name.startswith("sim-node-")
    assert re.fullmatch(r"10\.244\.\d+\.\d+", pod.status.pod_ip)
    assert pod.status.pod_ips[0].ip == pod.status.pod_ip
    assert pod.status.host_ip.startswith("10.0.") and pod.status.start_time is not None
    assert pod.status.qos_class == "Burstable"
    cs = pod.status.container_statuses[0]
    assert (cs.name, cs.ready, cs.started, cs.restart_count) == ("notebook", True, True, 0)
    assert cs.image == "registry.example/notebook:1.0"
    assert cs.image_id.startswith("registry.example/notebook@sha256:")
    assert cs.container_id.startswith("containerd://")
    assert cs.state.running.started_at is not None

    events = await pod_events(core, "alice")
    assert [e.reason for e in events] == ["Scheduled", "Pulling", "Pulled", "Created", "Started"]
    scheduled, pulling, pulled, created, started = events
    assert scheduled.message == f"Successfully assigned default/alice to {pod.spec.node_name}"
    assert scheduled.reporting_component == "default-scheduler"
    assert pulling.message == 'Pulling image "registry.example/notebook:1.0"'
    assert re.fullmatch(
        r'Successfully pulled image "registry.example/notebook:1.0" in 1s '
        r"\(1s including waiting\)\. Image size: \d+ bytes\.",
        pulled.message,
    )
    assert created.message == "Created container: notebook"
    assert started.message == "Started container notebook"
    assert all(e.type == "Normal" for e in events)
    assert pulling.source.component == "kubelet" and pulling.source.host == pod.spec.node_name
    assert pulling.involved_object.field_path == "spec.containers{notebook}"
    assert await core.read_namespaced_pod_log("alice", "default") == ""  # simulated: silent


async def test_image_pull_failure_backs_off(core: client.CoreV1Api):
    seen = await create_and_follow(
        core,
        pod_manifest("bob", image="registry.example/nope:404", scenario="image-pull-failure"),
        lambda _t, p: main_state(p) == "waiting:ImagePullBackOff",
    )
    states = [main_state(p) for _, p in seen]
    assert states.index("waiting:ErrImagePull") < states.index("waiting:ImagePullBackOff")
    pod = seen[-1][1]
    assert pod.status.phase == "Pending"
    waiting = pod.status.container_statuses[0].state.waiting
    assert waiting.message.startswith(
        'Back-off pulling image "registry.example/nope:404": ErrImagePull'
    )
    reasons = [(e.type, e.reason, e.message) for e in await pod_events(core, "bob")]
    assert ("Warning", "Failed", "Error: ErrImagePull") in reasons
    assert ("Normal", "BackOff", 'Back-off pulling image "registry.example/nope:404"') in reasons
    assert ("Warning", "Failed", "Error: ImagePullBackOff") in reasons
    failed = next(m for t, r, m in reasons if r == "Failed" and m.startswith("Failed to pull"))
    assert "code = NotFound" in failed
    try:
        await core.read_namespaced_pod_log("bob", "default")
    except client.ApiException as exc:
        assert exc.status == 400
        assert (
            'container \\"notebook\\" in pod \\"bob\\" is waiting to start: trying and failing to pull image'
            in cast(str, exc.body)  # the client decodes it (the stubs say bytes)
        )
    else:
        raise AssertionError("the log of a container that never started is a 400")


async def test_crash_with_restart_policy_never_fails_with_exit_code(core: client.CoreV1Api):
    seen = await create_and_follow(
        core,
        pod_manifest("carol", scenario="crash,exit-after=1,exit-code=3", restart_policy="Never"),
        lambda _t, p: p.status.phase == "Failed",
    )
    pod = seen[-1][1]
    term = pod.status.container_statuses[0].state.terminated
    assert (term.exit_code, term.reason) == (3, "Error")
    assert term.started_at is not None and term.finished_at is not None
    assert condition(pod, "Ready") == "False"
    # it was ready before it crashed (ready-after 0.5 < exit-after 1), in that order
    assert any(condition(p, "Ready") == "True" for _, p in seen)


async def test_on_failure_success_means_succeeded(core: client.CoreV1Api):
    seen = await create_and_follow(
        core,
        pod_manifest("dave", scenario="crash,exit-code=0", restart_policy="OnFailure"),
        lambda _t, p: p.status.phase in ("Succeeded", "Failed"),
    )
    pod = seen[-1][1]
    assert pod.status.phase == "Succeeded"
    assert pod.status.container_statuses[0].state.terminated.reason == "Completed"
    assert pod.status.container_statuses[0].restart_count == 0


async def test_crash_loop_backoff(core: client.CoreV1Api):
    seen = await create_and_follow(
        core,
        pod_manifest("erin", scenario="crashloop,exit-code=2"),
        lambda _t, p: main_state(p) == "waiting:CrashLoopBackOff",
    )
    pod = seen[-1][1]
    assert pod.status.phase == "Running"  # a crash-looping pod stays Running
    cs = pod.status.container_statuses[0]
    assert cs.restart_count >= 1
    assert cs.last_state.terminated.exit_code == 2
    assert re.fullmatch(
        r"back-off 10s restarting failed container=notebook pod=erin_default\(.+\)",
        cs.state.waiting.message,
    )
    backoff = await wait_for_event(core, "erin", "BackOff")
    assert backoff.type == "Warning"
    assert backoff.message.startswith(
        "Back-off restarting failed container notebook in pod erin_default("
    )


async def test_oom_killed(core: client.CoreV1Api):
    seen = await create_and_follow(
        core,
        pod_manifest("frank", scenario="oom,oom-after=1", restart_policy="Never"),
        lambda _t, p: p.status.phase == "Failed",
    )
    term = seen[-1][1].status.container_statuses[0].state.terminated
    assert (term.exit_code, term.reason) == (137, "OOMKilled")
    oom = await wait_for_event(core, seen[-1][1].spec.node_name, "OOMKilling", kind="Node")
    assert oom.type == "Warning" and oom.message.startswith(
        "Memory cgroup out of memory: Killed process"
    )


async def test_evicted(core: client.CoreV1Api):
    seen = await create_and_follow(
        core,
        pod_manifest("grace", scenario="evicted,evict-after=1"),
        lambda _t, p: p.status.phase == "Failed",
    )
    pod = seen[-1][1]
    assert pod.status.reason == "Evicted"
    assert pod.status.message.startswith("The node was low on resource: memory.")
    assert condition(pod, "DisruptionTarget") == "True"
    reasons = [e.reason for e in await pod_events(core, "grace")]
    assert reasons.index("Evicted") < reasons.index("Killing")
    # an evicted pod stays until deleted, then goes at once
    before = (await core.list_namespaced_pod("default")).metadata.resource_version
    await core.delete_namespaced_pod("grace", "default")
    gone = await follow(core, "grace", lambda t, _p: t == "DELETED", resource_version=before)
    assert gone[-1][0] == "DELETED"


async def test_readiness_never_comes(core: client.CoreV1Api):
    manifest = pod_manifest("heidi", scenario="never-ready")
    manifest["spec"]["containers"][0]["readinessProbe"] = {
        "httpGet": {"path": "/api", "port": 8888},
        "periodSeconds": 2,
    }
    # cast: the client sends a plain dict as it is; its stubs ask for the model
    await core.create_namespaced_pod("default", cast(Any, manifest))
    unhealthy = await wait_for_event(core, "heidi", "Unhealthy")
    pod = await core.read_namespaced_pod("heidi", "default")
    assert pod.status.phase == "Running" and condition(pod, "Ready") == "False"
    assert unhealthy.type == "Warning"
    assert unhealthy.message == (
        f'Readiness probe failed: Get "http://{pod.status.pod_ip}:8888/api": '
        f"dial tcp {pod.status.pod_ip}:8888: connect: connection refused"
    )


async def test_graceful_deletion_kills_then_removes(core: client.CoreV1Api):
    await create_and_follow(core, pod_manifest("ivan"), ready)
    before = (await core.list_namespaced_pod("default")).metadata.resource_version
    await core.delete_namespaced_pod("ivan", "default")
    seen = await follow(core, "ivan", lambda t, _p: t == "DELETED", resource_version=before)
    assert seen[0][1].metadata.deletion_timestamp is not None
    assert seen[-1][0] == "DELETED"
    last = seen[-1][1].status.container_statuses[0].state.terminated
    assert (last.exit_code, last.reason) == (0, "Completed")
    assert seen[-1][1].status.phase == "Succeeded"
    killing = [e for e in await pod_events(core, "ivan") if e.reason == "Killing"]
    assert [k.message for k in killing] == ["Stopping container notebook"]


async def test_termination_slower_than_grace_is_killed(core: client.CoreV1Api):
    await create_and_follow(core, pod_manifest("judy", scenario="slow-termination"), ready)
    before = (await core.list_namespaced_pod("default")).metadata.resource_version
    await core.delete_namespaced_pod("judy", "default", grace_period_seconds=2)
    seen = await follow(core, "judy", lambda t, _p: t == "DELETED", resource_version=before)
    last = seen[-1][1].status.container_statuses[0].state.terminated
    assert (last.exit_code, last.reason) == (137, "Error")
    assert seen[-1][1].status.phase == "Failed"


async def test_init_containers_run_in_order_first(core: client.CoreV1Api):
    manifest = pod_manifest("ken")
    manifest["spec"]["initContainers"] = [
        {"name": "fetch", "image": "busybox:1"},
        {"name": "chown", "image": "busybox:1"},
    ]
    seen = await create_and_follow(core, manifest, ready)
    pod = seen[-1][1]
    inits = pod.status.init_container_statuses
    assert [s.name for s in inits] == ["fetch", "chown"]
    assert all(s.state.terminated.reason == "Completed" for s in inits)
    assert condition(pod, "Initialized") == "True"
    early = [p for _, p in seen if p.status.init_container_statuses]
    assert any(
        condition(p, "Initialized") == "False" and main_state(p) == "waiting:PodInitializing"
        for p in early
    )
    started = [
        e.involved_object.field_path for e in await pod_events(core, "ken") if e.reason == "Started"
    ]
    assert started == [
        "spec.initContainers{fetch}",
        "spec.initContainers{chown}",
        "spec.containers{notebook}",
    ]
    # the second pull of busybox on the same node finds the image present
    pulled = [e.message for e in await pod_events(core, "ken") if e.reason == "Pulled"]
    assert 'Container image "busybox:1" already present on machine' in pulled


async def test_guaranteed_qos(core: client.CoreV1Api):
    manifest = pod_manifest("leo")
    manifest["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1", "memory": "1Gi"}}
    seen = await create_and_follow(core, manifest, ready)
    assert seen[-1][1].status.qos_class == "Guaranteed"


async def test_container_status_reports_mounts_and_resources(core: client.CoreV1Api):
    manifest = pod_manifest("mona", cpu="250m")
    manifest["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "cfg", "mountPath": "/etc/cfg", "readOnly": True}
    ]
    manifest["spec"]["volumes"] = [{"name": "cfg", "emptyDir": {}}]
    seen = await create_and_follow(core, manifest, ready)
    cs = seen[-1][1].status.container_statuses[0]
    assert cs.resources.requests == {"cpu": "250m"}
    assert cs.allocated_resources == {"cpu": "250m"}
    mounts = [(m.name, m.mount_path, m.read_only) for m in cs.volume_mounts]
    assert mounts[0] == ("cfg", "/etc/cfg", True)
    # the API server's service-account token volume is mounted too, as on a real cluster
    assert mounts[1][1] == "/var/run/secrets/kubernetes.io/serviceaccount"


async def test_bad_scenario_annotation_is_reported_and_the_pod_still_runs(core: client.CoreV1Api):
    seen = await create_and_follow(core, pod_manifest("typo", scenario="crsh,exit-after=1"), ready)
    assert seen[-1][1].status.phase == "Running"
    warning = await wait_for_event(core, "typo", "InvalidScenario")
    assert warning.type == "Warning"
    assert "unknown scenario 'crsh'" in warning.message and "using the default" in warning.message


async def test_slow_pull_and_seeded_random_timings_show_in_pulled_messages(core: client.CoreV1Api):
    await create_and_follow(core, pod_manifest("slow", scenario="slow-pull"), ready)
    pulled = next(e.message for e in await pod_events(core, "slow") if e.reason == "Pulled")
    assert " in 30s (30s including waiting)." in pulled
    durations = []
    for name in ("spread-a", "spread-b"):
        # distinct images, so neither finds the other's image already on its node
        await create_and_follow(
            core,
            pod_manifest(name, image=f"example.org/{name}:1", scenario="random,pull=2-9"),
            ready,
        )
        message = next(e.message for e in await pod_events(core, name) if e.reason == "Pulled")
        took = re.search(r" in ([0-9.]+)s \(", message)
        assert took is not None, message
        durations.append(float(took[1]))
    assert all(2 <= d <= 9 for d in durations) and durations[0] != durations[1]
