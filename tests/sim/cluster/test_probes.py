"""Startup and liveness probes: Unhealthy events, the Killing text and restarts per restartPolicy.

Simulated pods act their probe results out from the scenario (``live-for``,
``startup-after``) on the fast clock; process-mode pods are probed for real (httpGet,
tcpSocket, exec) on a clock 20x faster than real time.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from kubernetes_asyncio import client, watch
from kubesim.cluster.probes import (
    ProbeTiming,
    simulated_probe_timeline,
)

from .podprocess import PY, process_pod
from .podwatch import HANG_GUARD, condition, create_and_follow, finished, pod_events, pod_manifest

LIVENESS = {"httpGet": {"path": "/api", "port": "notebook-port"}, "periodSeconds": 10,
            "failureThreshold": 3}


def with_probe(body: dict[str, Any], kind: str, probe: dict[str, Any]) -> dict[str, Any]:
    body["spec"]["containers"][0][kind] = probe
    return body


def restarted(_type: str, pod: Any) -> bool:
    statuses = pod.status.container_statuses or []
    return bool(statuses) and statuses[0].restart_count >= 1 and statuses[0].state.running


def reasons_and_messages(events: list[Any]) -> list[tuple[str, str, int]]:
    return [(e.reason, e.message, e.count) for e in events]


def count_of(events: list[tuple[str, str, int]], reason: str, message: str) -> int:
    """The aggregated count of one event (0: never recorded).

    The fast clock keeps the pod going after the watch has seen what a test waited for,
    so counts are checked as "at least" where the container keeps being probed.
    """
    return next((c for r, m, c in events if (r, m) == (reason, message)), 0)


# ------------------------------------------------------------------ the timeline (pure)


def test_timeline_of_a_liveness_probe_that_starts_failing():
    container = {"name": "nb", "ports": [{"containerPort": 8888, "name": "notebook-port"}],
                 "livenessProbe": {**LIVENESS, "initialDelaySeconds": 5}}
    entries, started = simulated_probe_timeline(
        container, "10.0.0.7", "Always", startup_after=0.0, live_for=12.0)
    assert started == 0.0
    # probes at 5, 15, 25, 35 ...: the first at or after 12 s fails, and the next two
    assert [(e.at, e.kind) for e in entries] == [
        (15.0, "unhealthy"), (25.0, "unhealthy"), (35.0, "unhealthy"), (35.0, "probe-kill")]
    assert entries[0].message == (
        'Liveness probe failed: Get "http://10.0.0.7:8888/api": dial tcp 10.0.0.7:8888: '
        "connect: connection refused")
    assert entries[-1].message == "Container nb failed liveness probe, will be restarted"


def test_timeline_of_a_startup_probe():
    probe = {"tcpSocket": {"port": 8888}, "periodSeconds": 5, "failureThreshold": 4,
             "terminationGracePeriodSeconds": 7}
    container = {"name": "nb", "startupProbe": probe,
                 "livenessProbe": {**LIVENESS, "httpGet": {"port": 8888}}}
    entries, started = simulated_probe_timeline(
        container, "10.0.0.7", "Never", startup_after=11.0, live_for=None)
    assert started == 15.0  # probes at 0, 5, 10 fail; the one at 15 passes
    assert [e.kind for e in entries] == ["unhealthy"] * 3 + ["started"]
    assert entries[0].message == (
        "Startup probe failed: dial tcp 10.0.0.7:8888: connect: connection refused")
    entries, started = simulated_probe_timeline(
        container, "10.0.0.7", "Never", startup_after=None, live_for=0.0)
    assert started is None  # liveness never runs before startup passes
    assert [e.kind for e in entries] == ["unhealthy"] * 4 + ["probe-kill"]
    assert entries[-1].message == "Container nb failed startup probe"  # Never: no restart
    assert entries[-1].grace == 7.0
    assert ProbeTiming.of({}).failure_threshold == 3


# ------------------------------------------------------------------ simulated pods


async def event_stream(
    api: client.CoreV1Api, manifest: dict[str, Any], until: Any
) -> list[tuple[str, str]]:
    """Create the pod and collect (reason, message) of every event write about it, in order,
    until ``until(sequence)`` holds (a repeat shows up again, as its count goes up)."""
    name = manifest["metadata"]["name"]
    start = (await api.list_namespaced_event("default")).metadata.resource_version
    # cast: the client sends a plain dict as it is; its stubs ask for the model
    await api.create_namespaced_pod("default", cast(Any, manifest))
    seen: list[tuple[str, str]] = []
    async with watch.Watch() as w, asyncio.timeout(HANG_GUARD):
        async for event in w.stream(api.list_namespaced_event, "default", resource_version=start,
                                    field_selector=f"involvedObject.name={name}"):
            seen.append((event["object"].reason, event["object"].message))
            if until(seen):
                return seen
    raise AssertionError(f"the events of {name} ended early: {seen}")


async def test_liveness_failure_restarts_the_container(core: client.CoreV1Api):
    body = with_probe(pod_manifest("live", scenario="liveness-failure"), "livenessProbe", LIVENESS)
    killing = ("Killing", "Container notebook failed liveness probe, will be restarted")
    sequence = await event_stream(
        core, body, lambda seen: killing in seen and seen[-1][0] == "Started"
        and seen.index(killing) < len(seen) - 1)
    pod = await core.read_namespaced_pod("live", "default")
    ip = pod.status.pod_ip
    unhealthy = ("Unhealthy", f'Liveness probe failed: Get "http://{ip}:8888/api": dial tcp '
                 f"{ip}:8888: connect: connection refused")
    kill_at = sequence.index(killing)
    assert sequence[kill_at - 3:kill_at] == [unhealthy] * 3  # failureThreshold in a row
    assert [r for r, _ in sequence[kill_at + 1:]] == ["Pulled", "Created", "Started"]
    assert sequence[kill_at + 1][1].endswith("already present on machine")
    status = pod.status.container_statuses[0]
    assert status.restart_count >= 1 and status.last_state.terminated is not None
    warning = next(e for e in await pod_events(core, "live") if e.reason == "Unhealthy")
    assert warning.type == "Warning" and warning.count >= 3
    assert warning.involved_object.field_path == "spec.containers{notebook}"


async def test_liveness_failure_with_restart_policy_never_ends_the_pod(core: client.CoreV1Api):
    body = with_probe(pod_manifest("live-once", scenario="liveness-failure",
                                   restart_policy="Never"), "livenessProbe", LIVENESS)
    seen = await create_and_follow(core, body, finished)
    status = seen[-1][1].status.container_statuses[0]
    assert status.restart_count == 0 and status.state.terminated is not None
    events = reasons_and_messages(await pod_events(core, "live-once"))
    assert ("Killing", "Container notebook failed liveness probe", 1) in events
    assert "Started" in [r for r, _, _ in events]
    assert [r for r, _, _ in events].count("Started") == 1


async def test_startup_probe_gates_started_and_ready(core: client.CoreV1Api):
    probe = {"tcpSocket": {"port": 8888}, "periodSeconds": 10, "failureThreshold": 5}
    body = with_probe(pod_manifest("slow-start", scenario="ready,startup-after=25"),
                      "startupProbe", probe)
    seen = await create_and_follow(core, body, lambda _t, p: condition(p, "Ready") == "True")
    running = [p.status.container_statuses[0] for _, p in seen
               if p.status.container_statuses and p.status.container_statuses[0].state.running]
    assert running[0].started is False and running[0].ready is False
    assert running[-1].started is True and running[-1].ready is True
    # never ready while not started
    assert all(s.started for s in running if s.ready)
    events = reasons_and_messages(await pod_events(core, "slow-start"))
    assert [(r, c) for r, _, c in events if r == "Unhealthy"] == [("Unhealthy", 3)]


async def test_startup_probe_that_never_passes_kills_and_restarts(core: client.CoreV1Api):
    probe = {"tcpSocket": {"port": 8888}, "periodSeconds": 10, "failureThreshold": 2}
    body = with_probe(pod_manifest("never-starts", scenario="startup-failure"),
                      "startupProbe", probe)
    seen = await create_and_follow(core, body, restarted)
    assert all(not (s.ready or s.started) for _, p in seen
               for s in p.status.container_statuses or [])
    events = reasons_and_messages(await pod_events(core, "never-starts"))
    ip = seen[-1][1].status.pod_ip
    refused = f"Startup probe failed: dial tcp {ip}:8888: connect: connection refused"
    assert count_of(events, "Unhealthy", refused) >= 2
    killing = "Container notebook failed startup probe, will be restarted"
    assert count_of(events, "Killing", killing) >= 1


# ------------------------------------------------------------------ process mode


SERVER = [PY, "-u", "-m", "http.server", "8888", "--bind", "0.0.0.0"]


async def test_process_liveness_http_status_failure_restarts(process_core: client.CoreV1Api):
    # the startup probe holds the liveness probe back until the server listens
    body = process_pod("web", SERVER, restart_policy="Always", port=8888,
                       startupProbe={"tcpSocket": {"port": 8888}, "periodSeconds": 1,
                                     "failureThreshold": 1000},
                       livenessProbe={"httpGet": {"path": "/missing", "port": 8888},
                                      "periodSeconds": 1, "failureThreshold": 2})
    await create_and_follow(process_core, body, restarted)
    events = reasons_and_messages(await pod_events(process_core, "web"))
    status_failure = "Liveness probe failed: HTTP probe failed with statuscode: 404"
    assert count_of(events, "Unhealthy", status_failure) >= 2
    killing = "Container main failed liveness probe, will be restarted"
    assert count_of(events, "Killing", killing) >= 1
    # the killed run's log is the previous one; it served the probe's requests
    previous = await process_core.read_namespaced_pod_log("web", "default", previous=True)
    assert '"GET /missing HTTP/1.1" 404' in previous


async def test_process_liveness_tcp_failure_with_never(process_core: client.CoreV1Api):
    body = process_pod("tcp", SERVER, port=8888,
                       livenessProbe={"tcpSocket": {"port": 9999}, "periodSeconds": 1,
                                      "failureThreshold": 1})
    seen = await create_and_follow(process_core, body, finished)
    pod = seen[-1][1]
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 143 and pod.status.phase == "Failed"  # SIGTERM
    events = reasons_and_messages(await pod_events(process_core, "tcp"))
    ip = pod.status.pod_ip
    assert ("Unhealthy", f"Liveness probe failed: dial tcp {ip}:9999: connect: connection refused",
            1) in events
    assert ("Killing", "Container main failed liveness probe", 1) in events


async def test_process_startup_exec_probe(process_core: client.CoreV1Api):
    # the startup probe passes once the server has written its marker file
    script = ("import pathlib, time, http.server;"
              "time.sleep(0.3); pathlib.Path('up').write_text('1');"
              "http.server.test(http.server.SimpleHTTPRequestHandler, port=8888, bind='0.0.0.0')")
    body = process_pod(
        "exec-start", [PY, "-u", "-c", script], restart_policy="Always", port=8888,
        startupProbe={"exec": {"command": ["sh", "-c", "cat up || { echo not yet; exit 1; }"]},
                      "periodSeconds": 1, "failureThreshold": 100})
    seen = await create_and_follow(process_core, body, lambda _t, p: condition(p, "Ready") == "True")
    statuses = [p.status.container_statuses[0] for _, p in seen if p.status.container_statuses]
    assert any(s.state.running and not s.started for s in statuses)
    assert statuses[-1].started and statuses[-1].ready
    unhealthy = [e for e in await pod_events(process_core, "exec-start") if e.reason == "Unhealthy"]
    assert unhealthy and unhealthy[0].message.startswith("Startup probe failed: ")
    assert "not yet" in unhealthy[0].message
