"""``python -m kubesim`` with a cluster from YAML and options, and config errors."""

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from kubernetes_asyncio import client, config
from kubesim.cluster.config import ClusterConfig, ClusterConfigError

from .podwatch import follow

REPO = Path(__file__).resolve().parents[3]

CLUSTER_YAML = """
clock: 0.05
nodes:
  - {count: 2, cpu: "2", memory: 8Gi, labels: {pool: users}}
  - {name_prefix: gpu, count: 1, extended: {nvidia.com/gpu: "1"},
     taints: ["nvidia.com/gpu=present:NoSchedule"]}
process_mode: true
scenarios:
  quick: {preset: instant}
default_scenario: quick
"""


def test_yaml_config_loads(tmp_path: Path):
    path = tmp_path / "cluster.yaml"
    path.write_text(CLUSTER_YAML)
    cfg = ClusterConfig.from_yaml(path)
    assert [p.count for p in cfg.nodes] == [2, 1]
    assert cfg.nodes[1].taints[0].key == "nvidia.com/gpu"
    assert cfg.process_mode and cfg.make_clock().scale == 0.05
    assert cfg.make_scenarios().parse("quick").image_present


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"nodez": []}, "unknown key(s) nodez"),
        ({"nodes": [{"count": 1, "cpu": "lots"}]}, "nodes[0]: node pool 'sim-node': cpu"),
        ({"nodes": [{"count": 1, "taints": ["k=v:Never"]}]}, "effect 'Never'"),
        ({"default_scenario": "explode"}, "unknown scenario 'explode'"),
        ({"scenarios": {"x": {"pull": "soon"}}}, "scenario 'x': pull: 'soon' is not a duration"),
        ({"clock": "warp"}, "clock: 'warp' is not 'real', 'fast' or a number"),
        (
            {"image_rules": [{"image": "x"}]},
            "image_rules[0]: expected {image: GLOB, scenario: SPEC}",
        ),
        (
            {"storage_classes": [{"name": "s", "speed": 1}]},
            "storage_classes[0]: unknown key(s) speed",
        ),
        ({"pod_ip_prefix": "10.0"}, "pod_ip_prefix: '10.0' must look like '127.N'"),
    ],
)
def test_config_errors_say_what_and_where(data, message):
    with pytest.raises(ClusterConfigError) as info:
        ClusterConfig.from_mapping(data, where="cluster.yaml")
    assert message in str(info.value) and str(info.value).startswith("cluster.yaml")


def test_command_line_options_override_yaml(tmp_path: Path):
    path = tmp_path / "cluster.yaml"
    path.write_text(CLUSTER_YAML)
    parser = argparse.ArgumentParser()
    ClusterConfig.add_arguments(parser)
    args = parser.parse_args(
        [
            "--cluster-config",
            str(path),
            "--nodes",
            "5",
            "--node-cpu",
            "8",
            "--node-taint",
            "dedicated=user:NoSchedule",
            "--scenario",
            "random",
            "--image-scenario",
            "*/broken:*=image-pull-failure",
            "--seed",
            "7",
            "--image-command",
            "example.org/lab:*=jupyter lab",
        ]
    )
    cfg = ClusterConfig.from_args(args)
    assert (cfg.nodes[0].count, cfg.nodes[0].cpu) == (5, "8")
    assert cfg.nodes[0].taints[-1].key == "dedicated"
    assert (cfg.default_scenario, cfg.seed) == ("random", 7)
    assert ("*/broken:*", "image-pull-failure") in cfg.image_rules
    assert cfg.image_commands["example.org/lab:*"] == ["jupyter", "lab"]
    assert ClusterConfig.from_args(parser.parse_args(["--fast"])).make_clock().is_fast
    bad = parser.parse_args(["--image-scenario", "no-equals-sign"])
    with pytest.raises(ClusterConfigError, match="expected GLOB=SPEC"):
        ClusterConfig.from_args(bad)


async def start_simulator(tmp_path: Path) -> tuple[asyncio.subprocess.Process, Path]:
    (tmp_path / "cluster.yaml").write_text(CLUSTER_YAML)
    kubeconfig = tmp_path / "kubeconfig"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kubesim",
        "--kubeconfig",
        str(kubeconfig),
        "--cluster-config",
        str(tmp_path / "cluster.yaml"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "simulator")])},
        cwd=tmp_path,
    )
    assert proc.stdout is not None
    async with asyncio.timeout(30):
        line = (await proc.stdout.readline()).decode()
    assert line.startswith("simulator listening on https://127.0.0.1:"), line
    return proc, kubeconfig


async def run_pod_and_get_pid(kubeconfig: Path) -> tuple[int, str]:
    api_client = await config.new_client_from_config(str(kubeconfig))
    core = client.CoreV1Api(api_client)
    try:
        nodes = (await client.CoreV1Api(api_client).list_node()).items
        assert sorted(n.metadata.name for n in nodes) == ["gpu", "sim-node-0", "sim-node-1"]
        script = "import os, time; print(os.getpid(), flush=True); time.sleep(600)"
        start = (await core.list_namespaced_pod("default")).metadata.resource_version
        # cast: the client sends a plain dict as it is; its stubs ask for the model
        await core.create_namespaced_pod(
            "default",
            cast(Any, {
                "metadata": {"name": "sleeper"},
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "image": "python:3.11",
                            "command": [sys.executable, "-c", script],
                        }
                    ]
                },
            }),
        )
        seen = await follow(
            core,
            "sleeper",
            lambda _t, p: (
                bool(p.status.container_statuses) and p.status.container_statuses[0].ready
            ),
            resource_version=start,
        )
        pod = seen[-1][1]
        assert pod.status.pod_ip.startswith("127.1.")
        assert sorted(c.type for c in pod.status.conditions if c.status == "True") == [
            "ContainersReady",
            "Initialized",
            "PodReadyToStartContainers",
            "PodScheduled",
            "Ready",
        ]
        # _preload_content=False: the unread aiohttp response (the stubs type the text)
        stream = cast(aiohttp.ClientResponse, await core.read_namespaced_pod_log(
            "sleeper", "default", follow=True, _preload_content=False
        ))
        first_line = await stream.content.readline()  # the process prints its pid first thing
        stream.release()
        return int(first_line.split()[0]), pod.spec.node_name
    finally:
        await api_client.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
async def test_cli_cluster_from_yaml_and_no_process_outlives_it(tmp_path: Path, how):
    proc, kubeconfig = await start_simulator(tmp_path)
    pidfd = None
    try:
        pid, node = await run_pod_and_get_pid(kubeconfig)
        assert node.startswith("sim-node-")  # the tainted gpu node was not chosen
        pidfd = os.pidfd_open(pid)  # readable once the pod's process has exited
        assert alive(pid)
    finally:
        proc.send_signal(how)
        async with asyncio.timeout(30):
            await proc.wait()
    # SIGTERM: the kubelet stops its processes; SIGKILL: PR_SET_PDEATHSIG does it
    loop = asyncio.get_running_loop()
    exited = loop.create_future()

    def note_exit() -> None:
        if not exited.done():
            exited.set_result(None)

    loop.add_reader(pidfd, note_exit)
    try:
        async with asyncio.timeout(10):
            await exited
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
    assert not alive(pid)
