"""Process mode: pods whose main container is a real local process on its own loopback IP."""

import asyncio
import base64
import os
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from kubernetes_asyncio import client
from kubesim.cluster.config import ClusterConfig
from kubesim.cluster.testing import run_cluster

from .podprocess import PY, process_pod
from .podwatch import (
    create_and_follow,
    finished,
    follow,
    pod_events,
    ready,
    wait_for_event,
)


async def test_two_http_servers_on_the_same_port_each_on_its_pod_ip(process_core: client.CoreV1Api):
    server = [PY, "-u", "-m", "http.server", "8888", "--bind", "0.0.0.0"]
    pods = []
    for name in ("web-a", "web-b"):
        seen = await create_and_follow(
            process_core, process_pod(name, server, restart_policy="Always", port=8888), ready
        )
        pods.append(seen[-1][1])
    ips = {p.status.pod_ip for p in pods}
    assert len(ips) == 2 and all(ip.startswith("127.1.") for ip in ips)
    async with aiohttp.ClientSession() as session:
        for pod in pods:
            async with session.get(f"http://{pod.status.pod_ip}:8888/") as response:
                assert response.status == 200
                assert "Directory listing" in await response.text()
    log = await process_core.read_namespaced_pod_log("web-a", "default")
    assert '"GET / HTTP/1.1" 200' in log
    tail = await process_core.read_namespaced_pod_log("web-a", "default", tail_lines=1)
    assert tail.count("\n") == 1 and tail in log


async def test_env_and_volumes_from_secret_configmap_and_downward_api(process_core: client.CoreV1Api):
    # cast: the client sends a plain dict as it is; its stubs ask for the model
    await process_core.create_namespaced_secret(
        "default",
        cast(Any, {
            "metadata": {"name": "creds"}, "data": {"token": base64.b64encode(b"s3cret").decode()}
        }),
    )
    await process_core.create_namespaced_config_map(
        "default",
        cast(Any, {
            "metadata": {"name": "settings"}, "data": {"colour": "teal", "app.conf": "x=1\n"}
        }),
    )
    script = (
        "import os, pathlib;"
        "print('TOKEN=' + os.environ['TOKEN']);"
        "print('COLOUR=' + os.environ['COLOUR']);"
        "print('NAME=' + os.environ['MY_NAME'] + ' NS=' + os.environ['MY_NS']);"
        "print('IP=' + os.environ['MY_IP']);"
        "print('MEM=' + os.environ['MEM_MI']);"
        "print('GREETING=' + os.environ['GREETING']);"
        "print('CWD=' + os.getcwd());"
        "print('FILE=' + pathlib.Path('../etc/app/app.conf').read_text().strip());"
        "print('SECRETFILE=' + pathlib.Path('../secrets/token').read_text())"
    )
    manifest = process_pod(
        "env-check",
        [PY, "-c", script],
        workingDir="/sim-workdir",
        env=[
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
            {
                "name": "COLOUR",
                "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "colour"}},
            },
            {"name": "MY_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "MY_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {
                "name": "MEM_MI",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
            },
            {"name": "GREETING", "value": "hello $(MY_NAME)"},
        ],
        resources={"limits": {"memory": "256Mi"}},
        volumeMounts=[
            {"name": "conf", "mountPath": "/etc/app"},
            {"name": "sec", "mountPath": "/secrets"},
        ],
    )
    manifest["spec"]["volumes"] = [
        {"name": "conf", "configMap": {"name": "settings"}},
        {"name": "sec", "secret": {"secretName": "creds"}},
    ]
    seen = await create_and_follow(process_core, manifest, finished)
    pod = seen[-1][1]
    log = await process_core.read_namespaced_pod_log("env-check", "default")
    assert pod.status.phase == "Succeeded", log
    assert "TOKEN=s3cret\n" in log and "COLOUR=teal\n" in log
    assert "NAME=env-check NS=default\n" in log
    assert f"IP={pod.status.pod_ip}\n" in log
    assert "MEM=256\n" in log and "GREETING=hello env-check\n" in log
    assert "CWD=" in log and log.split("CWD=")[1].split("\n")[0].endswith("/rootfs/sim-workdir")
    assert "FILE=x=1\n" in log and "SECRETFILE=s3cret" in log


async def test_missing_secret_is_a_container_config_error(process_core: client.CoreV1Api):
    manifest = process_pod(
        "no-secret",
        [PY, "-c", "pass"],
        env=[{"name": "T", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}],
    )
    seen = await create_and_follow(
        process_core,
        manifest,
        lambda _t, p: any(
            s.state.waiting and s.state.waiting.reason == "CreateContainerConfigError"
            for s in p.status.container_statuses or []
        ),
    )
    assert (
        seen[-1][1].status.container_statuses[0].state.waiting.message
        == 'secret "absent" not found'
    )
    failed = await wait_for_event(process_core, "no-secret", "Failed")
    assert failed.message == 'Error: secret "absent" not found'


async def test_crash_exit_code_is_reported(process_core: client.CoreV1Api):
    seen = await create_and_follow(
        process_core, process_pod("crasher", [PY, "-c", "import sys; print('bye'); sys.exit(7)"]), finished
    )
    pod = seen[-1][1]
    term = pod.status.container_statuses[0].state.terminated
    assert (pod.status.phase, term.exit_code, term.reason) == ("Failed", 7, "Error")
    assert await process_core.read_namespaced_pod_log("crasher", "default") == "bye\n"


async def test_restarted_container_keeps_previous_log(process_core: client.CoreV1Api):
    script = "import sys; print('run'); sys.exit(3)"
    seen = await create_and_follow(
        process_core,
        process_pod("flappy", [PY, "-c", script], restart_policy="OnFailure"),
        lambda _t, p: (
            (p.status.container_statuses or [None])[0] is not None
            and p.status.container_statuses[0].restart_count >= 1
            and p.status.container_statuses[0].last_state.terminated is not None
        ),
    )
    assert seen[-1][1].status.container_statuses[0].last_state.terminated.exit_code == 3
    previous = await process_core.read_namespaced_pod_log("flappy", "default", previous=True)
    assert previous == "run\n"


TRAP_TERM = (
    "import os, signal, sys, time\n"
    "def term(*_):\n"
    "    print('got SIGTERM', flush=True)\n"
    "    {on_term}\n"
    "signal.signal(signal.SIGTERM, term)\n"
    "print('pid', os.getpid(), flush=True)\n"
    "open('ready', 'w').close()\n"
    "while True:\n"
    "    time.sleep(0.05)\n"
)


@pytest.mark.parametrize(
    ("on_term", "exit_code", "reason"), [("sys.exit(0)", 0, "Completed"), ("pass", 137, "Error")]
)
async def test_delete_sends_sigterm_then_sigkill_at_grace_end(process_core, on_term, exit_code, reason):
    manifest = process_pod(
        "stopper",
        [PY, "-c", TRAP_TERM.format(on_term=on_term)],
        restart_policy="Always",
        readinessProbe={"exec": {"command": ["test", "-e", "ready"]}, "periodSeconds": 1},
    )
    await create_and_follow(process_core, manifest, ready)
    log = await process_core.read_namespaced_pod_log("stopper", "default")
    pid = int(log.split("pid ")[1].split()[0])
    before = (await process_core.list_namespaced_pod("default")).metadata.resource_version
    await process_core.delete_namespaced_pod("stopper", "default", grace_period_seconds=4)
    seen = await follow(process_core, "stopper", lambda t, _p: t == "DELETED", resource_version=before)
    term = seen[-1][1].status.container_statuses[0].state.terminated
    assert (term.exit_code, term.reason) == (exit_code, reason)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    killing = [e.message for e in await pod_events(process_core, "stopper") if e.reason == "Killing"]
    assert killing == ["Stopping container main"]


async def test_follow_log_streams_until_exit(process_core: client.CoreV1Api):
    script = (
        "import sys, time\nfor i in range(3):\n    print('line', i, flush=True); time.sleep(0.1)\n"
    )
    # cast: the client sends a plain dict as it is; its stubs ask for the model
    await process_core.create_namespaced_pod(
        "default", cast(Any, process_pod("talker", [PY, "-c", script]))
    )
    await wait_for_event(process_core, "talker", "Started")
    # _preload_content=False: the unread aiohttp response (the stubs type the text)
    response = cast(aiohttp.ClientResponse, await process_core.read_namespaced_pod_log(
        "talker", "default", follow=True, _preload_content=False
    ))
    async with asyncio.timeout(20):
        text = (await response.read()).decode()
    assert text == "line 0\nline 1\nline 2\n"


async def test_image_command_mapping_and_missing_command(tmp_path: Path):
    config = ClusterConfig(
        clock=0.05,
        process_mode=True,
        default_scenario="instant",
        process_root=str(tmp_path / "pods"),
        image_commands={"example.org/echo:*": [PY, "-c", "print('mapped')"]},
    )
    async with run_cluster(config) as sim:
        api_client = sim.api_client()
        process_core = client.CoreV1Api(api_client)
        try:
            mapped = {
                "metadata": {"name": "mapped"},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "example.org/echo:1"}],
                },
            }
            await create_and_follow(process_core, mapped, finished)
            assert await process_core.read_namespaced_pod_log("mapped", "default") == "mapped\n"
            unknown = {
                "metadata": {"name": "unknown"},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "example.org/other:1"}],
                },
            }
            seen = await create_and_follow(process_core, unknown, finished)
            term = seen[-1][1].status.container_statuses[0].state.terminated
            assert (term.exit_code, term.reason) == (128, "StartError")
            assert "no command for image" in term.message
        finally:
            await api_client.close()


def test_command_resolution_follows_entrypoint_semantics(tmp_path: Path):
    from kubesim.cluster.clock import Clock
    from kubesim.cluster.processes import ContainerStartError, ProcessRuntime

    runtime = ProcessRuntime(
        Clock.fast(),
        root=str(tmp_path),
        image_commands={"quay.io/jupyterhub/singleuser:*": ["jupyterhub-singleuser"]},
    )
    image = "quay.io/jupyterhub/singleuser:5"
    assert runtime.command_for({"image": image}) == ["jupyterhub-singleuser"]
    # KubeSpawner puts cmd into args: they are the whole command line
    assert runtime.command_for(
        {"image": image, "args": ["jupyterhub-singleuser", "--allow-root"]}
    ) == ["jupyterhub-singleuser", "--allow-root"]
    assert runtime.command_for({"image": image, "command": ["python"], "args": ["-V"]}) == [
        "python",
        "-V",
    ]
    with pytest.raises(ContainerStartError, match="--image-command"):
        runtime.command_for({"image": "example.org/unknown:1"})


def test_only_the_whole_any_address_is_rewritten():
    from kubesim.cluster.processes import _own_ip

    ip = "127.1.0.9"
    assert _own_ip("--ip=0.0.0.0", ip) == f"--ip={ip}"
    assert _own_ip("http://0.0.0.0:8888/user/a/", ip) == f"http://{ip}:8888/user/a/"
    assert _own_ip("10.0.0.0/8", ip) == "10.0.0.0/8"
    assert _own_ip("0.0.0.0.1", ip) == "0.0.0.0.1"


async def test_a_second_delete_with_a_shorter_grace_period_wins(process_core: client.CoreV1Api):
    manifest = process_pod(
        "stubborn",
        [PY, "-c", TRAP_TERM.format(on_term="pass")],
        restart_policy="Always",
        readinessProbe={"exec": {"command": ["test", "-e", "ready"]}, "periodSeconds": 1},
    )
    await create_and_follow(process_core, manifest, ready)
    before = (await process_core.list_namespaced_pod("default")).metadata.resource_version
    # 3600 cluster seconds is three minutes here: only the shortened period ends this test
    await process_core.delete_namespaced_pod("stubborn", "default", grace_period_seconds=3600)
    await process_core.delete_namespaced_pod("stubborn", "default", grace_period_seconds=1)
    seen = await follow(process_core, "stubborn", lambda t, _p: t == "DELETED", resource_version=before)
    assert [p.metadata.deletion_grace_period_seconds for _, p in seen][:2] == [3600, 1]
    term = seen[-1][1].status.container_statuses[0].state.terminated
    assert (term.exit_code, term.reason) == (137, "Error")


async def test_absolute_mount_paths_reach_the_process_and_claims_outlive_pods(
    process_core: client.CoreV1Api, tmp_path: Path
):
    """A process opens its mounts by their absolute paths, and a claim's files persist.

    Env values and options naming paths under a mount are rewritten to rootfs, so
    ``JUPYTERHUB_SSL_KEYFILE=/etc/jupyterhub/ssl/ssl.key`` works; what one pod writes to a
    PersistentVolumeClaim, the next pod of the same claim reads back.
    """
    # cast: the client sends a plain dict as it is; its stubs ask for the model
    await process_core.create_namespaced_secret(
        "default", cast(Any, {"metadata": {"name": "tls"}, "stringData": {"ssl.key": "KEY"}})
    )
    await process_core.create_namespaced_persistent_volume_claim(
        "default",
        cast(Any, {
            "metadata": {"name": "home"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        }),
    )

    def pod(name: str, script: str) -> dict:
        manifest = process_pod(
            name,
            [PY, "-c", script, "--out=/home/jovyan/from-arg.txt"],
            env=[
                {"name": "KEYFILE", "value": "/etc/jupyterhub/ssl/ssl.key"},
                {"name": "HOMEDIR", "value": "/home/jovyan"},
                {"name": "SCRATCH", "value": "/scratch"},
                {"name": "HOST_PATH", "value": "/usr/bin"},
            ],
            volumeMounts=[
                {"name": "ssl", "mountPath": "/etc/jupyterhub/ssl"},
                {"name": "home", "mountPath": "/home/jovyan"},
                {"name": "scratch", "mountPath": "/scratch"},
            ],
        )
        manifest["spec"]["volumes"] = [
            {"name": "ssl", "secret": {"secretName": "tls"}},
            {"name": "home", "persistentVolumeClaim": {"claimName": "home"}},
            {"name": "scratch", "emptyDir": {}},
        ]
        return manifest

    writer = (
        "import os, sys, pathlib;"
        "print('KEY=' + pathlib.Path(os.environ['KEYFILE']).read_text());"
        "pathlib.Path(os.environ['HOMEDIR'], 'notes.txt').write_text('kept');"
        "pathlib.Path(sys.argv[1].split('=', 1)[1]).write_text('arg');"
        "pathlib.Path(os.environ['SCRATCH'], 'tmp.txt').write_text('gone');"
        "print('ROOT=' + os.environ['KUBESIM_ROOTFS']);"
        "print('HOST=' + os.environ['HOST_PATH'])"
    )
    seen = await create_and_follow(process_core, pod("writer", writer), finished)
    log = await process_core.read_namespaced_pod_log("writer", "default")
    assert seen[-1][1].status.phase == "Succeeded", log
    assert "KEY=KEY\n" in log and "HOST=/usr/bin\n" in log
    rootfs = log.split("ROOT=")[1].split("\n")[0]
    assert rootfs.startswith(str(tmp_path / "pods"))
    before = (await process_core.list_namespaced_pod("default")).metadata.resource_version
    await process_core.delete_namespaced_pod("writer", "default", grace_period_seconds=0)
    await follow(process_core, "writer", lambda kind, _pod: kind == "DELETED", resource_version=before)

    reader = (
        "import os, pathlib;"
        "print('NOTES=' + pathlib.Path(os.environ['HOMEDIR'], 'notes.txt').read_text());"
        "print('ARG=' + pathlib.Path(os.environ['HOMEDIR'], 'from-arg.txt').read_text());"
        "print('SCRATCH=' + str(sorted(os.listdir(os.environ['SCRATCH']))))"
    )
    seen = await create_and_follow(process_core, pod("reader", reader), finished)
    log = await process_core.read_namespaced_pod_log("reader", "default")
    assert seen[-1][1].status.phase == "Succeeded", log
    assert "NOTES=kept\n" in log and "ARG=arg\n" in log
    assert "SCRATCH=[]\n" in log  # an emptyDir starts empty in every pod


async def test_a_pod_gets_the_loopback_address_its_cni_annotation_asks_for(
    process_core: client.CoreV1Api,
):
    """``cni.projectcalico.org/ipAddrs`` fixes the address; a non-loopback one is ignored."""
    server = [PY, "-u", "-m", "http.server", "8888", "--bind", "0.0.0.0"]
    fixed = process_pod("fixed", server, restart_policy="Always", port=8888)
    fixed["metadata"]["annotations"] = {"cni.projectcalico.org/ipAddrs": '["127.3.9.9"]'}
    ignored = process_pod("outside", server, restart_policy="Always", port=8888)
    ignored["metadata"]["annotations"] = {"cni.projectcalico.org/ipAddrs": '["10.0.0.7"]'}
    pod = (await create_and_follow(process_core, fixed, ready))[-1][1]
    other = (await create_and_follow(process_core, ignored, ready))[-1][1]
    assert pod.status.pod_ip == "127.3.9.9"
    assert other.status.pod_ip.startswith("127.1.")
    async with aiohttp.ClientSession() as session, session.get("http://127.3.9.9:8888/") as r:
        assert r.status == 200


async def test_stub_servers_answer_on_pod_ports_while_the_container_runs():
    """Stub-server mode: no process, yet the pod's address answers HTTP until it stops."""
    config = ClusterConfig(clock=0.05, stub_servers=True, default_scenario="instant")
    async with run_cluster(config) as sim:
        api_client = sim.api_client()
        try:
            process_core = client.CoreV1Api(api_client)
            pod = process_pod("stub", ["unused"], restart_policy="Always", port=8888)
            seen = await create_and_follow(process_core, pod, ready)
            address = seen[-1][1].status.pod_ip
            assert address.startswith("127.2.")
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://{address}:8888/user/x/api/status") as r:
                    assert r.status == 200
                    assert (await r.json())["connections"] == 0
                before = (await process_core.list_namespaced_pod("default")).metadata.resource_version
                await process_core.delete_namespaced_pod("stub", "default", grace_period_seconds=0)
                await follow(process_core, "stub", lambda kind, _p: kind == "DELETED", resource_version=before)
                with pytest.raises(aiohttp.ClientConnectionError):
                    await session.get(f"http://{address}:8888/")
        finally:
            await api_client.close()


def test_stub_servers_and_process_mode_exclude_each_other():
    from kubesim.cluster.config import ClusterConfigError

    with pytest.raises(ClusterConfigError, match="exclude each other"):
        ClusterConfig(stub_servers=True, process_mode=True).validate()
