"""``kubectl get`` against a running simulated cluster: the columns and STATUS a person reads.

The cluster runs on the real clock with scenarios whose earlier steps take no time and
whose step under test takes long (a 10 s back-off, a 1000 s pull), so the state kubectl
prints is stable while it runs; every wait is on a watch, never on a timer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_asyncio
from kubernetes_asyncio import client
from kubesim.cluster.config import ClusterConfig
from kubesim.cluster.nodes import NodePoolSpec
from kubesim.cluster.testing import run_cluster

from ..support import ok
from .podwatch import follow, main_state, pod_manifest, wait_for_event

pytestmark = pytest.mark.usefixtures("kubectl_installed")


def rows(output: str) -> tuple[list[str], dict[str, list[str]]]:
    """Header cells and rows by NAME, split on kubectl's two-space column gaps."""
    lines = [line for line in output.splitlines() if line.strip()]
    header = [cell for cell in lines[0].split("  ") if cell.strip()]
    table = {}
    for line in lines[1:]:
        cells = [cell.strip() for cell in line.split("  ") if cell.strip()]
        table[cells[0]] = cells
    return [h.strip() for h in header], table


def until_state(*states: str):
    return lambda _type, pod: main_state(pod) in states


def until_phase(*phases: str):
    return lambda _type, pod: pod.status.phase in phases


def init_manifest(name: str, scenario: str) -> dict[str, Any]:
    body = pod_manifest(name, scenario=scenario)
    body["spec"]["initContainers"] = [{"name": "setup", "image": "registry.example/setup:1"}]
    return body


TwoNodes = tuple[Path, client.CoreV1Api]  # kubeconfig, API


@pytest_asyncio.fixture
async def two_nodes() -> AsyncIterator[TwoNodes]:
    """A real-clock cluster of two nodes: its kubeconfig and a CoreV1Api."""
    async with run_cluster(ClusterConfig(clock="real", nodes=[NodePoolSpec(count=2)])) as sim:
        api_client = sim.api_client()
        try:
            yield sim.kubeconfig_path, client.CoreV1Api(api_client)
        finally:
            await api_client.close()


async def test_kubectl_get_pods_shows_kubectl_statuses(two_nodes: TwoNodes) -> None:
    kc, api = two_nodes
    cases: list[tuple[dict[str, Any], Any]] = [
        (pod_manifest("running", scenario="instant"),
         lambda _t, p: bool(p.status.container_statuses)
         and p.status.container_statuses[0].ready),
        (pod_manifest("creating", scenario="instant,image-present=false,pull=1000"),
         None),
        (pod_manifest("pullfail", scenario="instant,pull-fails=true,pull=0"),
         until_state("waiting:ImagePullBackOff")),
        (pod_manifest("crashing", scenario="instant,exit-after=0"),
         until_state("waiting:CrashLoopBackOff")),
        (pod_manifest("done", scenario="instant,exit-after=0,exit-code=0",
                      restart_policy="Never"), until_phase("Succeeded")),
        (pod_manifest("failed", scenario="instant,exit-after=0,exit-code=3",
                      restart_policy="Never"), until_phase("Failed")),
        (pod_manifest("oom", scenario="instant,oom-after=0", restart_policy="Never"),
         until_phase("Failed")),
        (init_manifest("init", "instant,init-duration=1000"),
         lambda _t, p: bool(p.status.init_container_statuses)
         and p.status.init_container_statuses[0].state.running is not None),
        (pod_manifest("nofit", scenario="unschedulable"), None),
    ]
    for manifest, _ in cases:
        # cast: the client sends a plain dict as it is; its stubs ask for the model
        await api.create_namespaced_pod("default", cast(Any, manifest))
    for manifest, until in cases:
        if until is not None:
            await follow(api, manifest["metadata"]["name"], until)
    await wait_for_event(api, "creating", "Pulling")
    await wait_for_event(api, "nofit", "FailedScheduling")

    header, table = rows(await ok(kc, "get", "pods"))
    assert header == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    status = {name: cells[2] for name, cells in table.items()}
    assert status == {
        "running": "Running",
        "creating": "ContainerCreating",
        "pullfail": "ImagePullBackOff",
        "crashing": "CrashLoopBackOff",
        "done": "Completed",
        "failed": "Error",
        "oom": "OOMKilled",
        "init": "Init:0/1",
        "nofit": "Pending",
    }
    assert table["running"][1] == "1/1" and table["creating"][1] == "0/1"
    # one restart so far, with kubectl's "(N ago)" of the last termination
    assert table["crashing"][3].startswith("1 (") and table["crashing"][3].endswith(" ago)")
    assert table["running"][3] == "0"

    header, wide = rows(await ok(kc, "get", "pods", "-o", "wide"))
    assert header == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE",
                      "NOMINATED NODE", "READINESS GATES"]
    running = await api.read_namespaced_pod("running", "default")
    assert wide["running"][5:] == [running.status.pod_ip, running.spec.node_name,
                                   "<none>", "<none>"]
    assert wide["nofit"][5:7] == ["<none>", "<none>"]

    # a deletion in progress: the container ignores SIGTERM for a while
    await api.create_namespaced_pod(
        "default", cast(Any, pod_manifest("leaving", scenario="instant,termination=1000")))
    await follow(api, "leaving", until_state("running"))
    await api.delete_namespaced_pod("leaving", "default", grace_period_seconds=600)
    await wait_for_event(api, "leaving", "Killing")
    _, table = rows(await ok(kc, "get", "pod", "leaving"))
    assert table["leaving"][2] == "Terminating"


async def test_kubectl_get_nodes_events_and_other_kinds(two_nodes: TwoNodes) -> None:
    kc, api = two_nodes
    header, nodes = rows(await ok(kc, "get", "nodes"))
    assert header == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert sorted(nodes) == ["sim-node-0", "sim-node-1"]
    assert nodes["sim-node-0"][1:3] == ["Ready", "<none>"]
    assert nodes["sim-node-0"][4].startswith("v1.")
    header, _ = rows(await ok(kc, "get", "nodes", "-o", "wide"))
    assert header[5:8] == ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE"]

    # cast: the client sends a plain dict as it is; its stubs ask for the model
    await api.create_namespaced_pod(
        "default", cast(Any, pod_manifest("web", scenario="instant,output=hello\\nworld\\n")))
    await wait_for_event(api, "web", "Started")
    assert await ok(kc, "logs", "web") == "hello\nworld\n"
    stamped = (await ok(kc, "logs", "web", "--timestamps", "--tail=1")).split(" ")
    assert stamped[0].endswith("Z") and len(stamped[0]) == 30 and stamped[1] == "world\n"
    assert await ok(kc, "logs", "web", "--limit-bytes=3") == "hel"
    assert await ok(kc, "logs", "web", "--since=1h") == "hello\nworld\n"
    listing = await ok(kc, "get", "events")
    header, _ = rows(listing)
    assert header == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    lines = listing.splitlines()[1:]
    started = next(line.split() for line in lines if " Started " in line)
    assert started[1:4] == ["Normal", "Started", "pod/web"]
    assert " ".join(started[4:]) == "Started container notebook"
    assert any("Successfully assigned default/web to sim-node-" in line for line in lines)
    # -o wide adds the kubelet as source and the container as subobject
    wide = await ok(kc, "get", "events", "-o", "wide",
                         "--field-selector", "reason=Started")
    assert "spec.containers{notebook}" in wide and "kubelet, sim-node-" in wide

    await api.create_namespaced_secret("default", cast(Any, {
        "metadata": {"name": "tok"}, "stringData": {"a": "1", "b": "2"}}))
    await api.create_namespaced_config_map("default", cast(Any, {
        "metadata": {"name": "cfg"}, "data": {"k": "v"}}))
    await api.create_namespaced_service("default", cast(Any, {
        "metadata": {"name": "hub"},
        "spec": {"selector": {"app": "hub"}, "ports": [{"port": 8081}]}}))
    await api.create_namespaced_persistent_volume_claim("default", cast(Any, {
        "metadata": {"name": "home"},
        "spec": {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "1Gi"}},
                 "storageClassName": "nope"}}))
    header, secrets = rows(await ok(kc, "get", "secrets"))
    assert header == ["NAME", "TYPE", "DATA", "AGE"]
    assert secrets["tok"][1:3] == ["Opaque", "2"]
    header, cms = rows(await ok(kc, "get", "configmaps"))
    assert header == ["NAME", "DATA", "AGE"] and cms["cfg"][1] == "1"
    header, svcs = rows(await ok(kc, "get", "services"))
    assert header == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert svcs["hub"][1] == "ClusterIP" and svcs["hub"][3:5] == ["<none>", "8081/TCP"]
    header, pvcs = rows(await ok(kc, "get", "pvc"))
    assert header[:6] == ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES",
                          "STORAGECLASS"]
    assert pvcs["home"][1] == "Pending" and "nope" in pvcs["home"]
    header, nss = rows(await ok(kc, "get", "namespaces"))
    assert header == ["NAME", "STATUS", "AGE"] and nss["default"][1] == "Active"
