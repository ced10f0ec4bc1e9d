"""kubectl against the simulator: the in-process fixture and the command-line program."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
from pathlib import Path

import pytest
from kubesim.testing import run_simulator

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


@pytest.fixture(autouse=True)
def _kubectl_installed() -> None:
    """A missing kubectl is a failed set-up, not a reason to skip the smoke test."""
    if not Path(KUBECTL).exists():
        pytest.fail(
            f"{KUBECTL} is missing: `make test` installs it (scripts/install-system-deps.sh), "
            "or run `apt-get install -y kubernetes-client`"
        )

REPO_ROOT = Path(__file__).resolve().parents[2]

POD_YAML = """\
apiVersion: v1
kind: Pod
metadata:
  name: kp
  labels: {app: demo}
spec:
  containers:
  - name: main
    image: registry.example/nb:1
"""


async def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        KUBECTL, "--kubeconfig", str(kubeconfig), *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else None,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    return proc.returncode or 0, out.decode(), err.decode()


async def ok(kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    code, out, err = await kubectl(kubeconfig, *args, stdin=stdin)
    assert code == 0, f"kubectl {' '.join(args)} failed: {err}"
    return out


async def test_kubectl_smoke(tmp_path):
    async with run_simulator(tls=True, token="kubectl-token") as sim:
        kc = sim.kubeconfig_path
        sim.store.pod_log_source = lambda ns, name, params: f"hello from {ns}/{name}/{params['container']}\n"
        assert "default" in await ok(kc, "get", "namespaces", "-o", "name")
        assert (await ok(kc, "create", "-f", "-", stdin=POD_YAML)).strip() == "pod/kp created"
        pod = json.loads(await ok(kc, "get", "pod", "kp", "-o", "json"))
        assert pod["spec"]["containers"][0]["image"] == "registry.example/nb:1"
        # client-side apply computes a strategic merge patch from the last-applied annotation
        await ok(kc, "apply", "-f", "-", stdin=POD_YAML)
        await ok(kc, "apply", "-f", "-", stdin=POD_YAML.replace("app: demo", "app: demo2"))
        await ok(kc, "patch", "pod", "kp", "--type=merge", "-p", '{"metadata":{"labels":{"m":"n"}}}')
        await ok(kc, "patch", "pod", "kp", "-p", '{"metadata":{"labels":{"s":"t"}}}')
        labels = json.loads(await ok(kc, "get", "pod", "kp", "-o", "json"))["metadata"]["labels"]
        assert labels == {"app": "demo2", "m": "n", "s": "t"}
        assert await ok(kc, "logs", "kp") == "hello from default/kp/main\n"
        assert "kp" in await ok(kc, "get", "pods", "-l", "app=demo2", "-o", "name")
        assert (await ok(kc, "delete", "pod", "kp")).strip() == 'pod "kp" deleted'
        code, _, err = await kubectl(kc, "get", "pod", "kp")
        assert code != 0 and 'pods "kp" not found' in err
        assert sim.counters.count(resource="pods", verb="patch") >= 3


async def test_kubectl_reports_server_validation_errors(tmp_path):
    async with run_simulator() as sim:
        code, _, err = await kubectl(sim.kubeconfig_path, "create", "-f", "-",
                                     stdin=POD_YAML.replace("name: kp", "name: kp\n  bogus: 1"))
        assert code != 0
        assert 'unknown field "metadata.bogus"' in err


async def test_command_line_program_serves_until_sigterm(tmp_path):
    # kubectl only sends a bearer token over TLS, so the token goes with --tls
    kubeconfig = tmp_path / "kubeconfig"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "simulator")])}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kubesim", "--port", "0", "--kubeconfig",
        str(kubeconfig), "--tls", "--token", "cli-token", "--bookmark-interval", "5",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line.startswith("simulator listening on https://127.0.0.1:"), line
        assert f"kubeconfig={kubeconfig}" in line
        out = await ok(kubeconfig, "create", "-f", "-",
                       stdin="apiVersion: v1\nkind: Namespace\nmetadata:\n  name: from-cli\n")
        assert out.strip() == "namespace/from-cli created"
        assert "from-cli" in await ok(kubeconfig, "get", "namespaces", "-o", "name")
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert b"simulator stopped" in rest


async def test_command_line_rejects_bad_options(tmp_path):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kubesim", "--kubeconfig", str(tmp_path / "k"),
        "--error-rate", "2", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "simulator")])},
    )
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert b"--error-rate must be between 0 and 1, got 2.0" in err


async def test_kubectl_get_prints_server_side_tables():
    async with run_simulator() as sim:
        kc = sim.kubeconfig_path
        await ok(kc, "create", "-f", "-", stdin=POD_YAML)
        await sim.store.bind("default", "kp", "node-7")
        out = await ok(kc, "get", "pods", "-o", "wide")
        header, row = out.splitlines()
        assert header.split()[:5] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
        assert row.split()[:4] == ["kp", "0/1", "Pending", "0"]
        assert "node-7" in row.split()
        await sim.store.delete(sim.store.resource("pods"), "default", "kp")
        assert (await ok(kc, "get", "pod", "kp")).splitlines()[1].split()[2] == "Terminating"
        ns_out = await ok(kc, "get", "namespaces")
        assert ns_out.splitlines()[0].split() == ["NAME", "STATUS", "AGE"]


async def test_kubectl_create_generators_send_protobuf():
    """kubectl create namespace/secret/configmap/serviceaccount speak protobuf."""
    async with run_simulator() as sim:
        kc = sim.kubeconfig_path
        assert (await ok(kc, "create", "namespace", "jhub")).strip() == "namespace/jhub created"
        await ok(kc, "-n", "jhub", "create", "secret", "generic", "tok", "--from-literal=token=abc")
        await ok(kc, "-n", "jhub", "create", "configmap", "cfg", "--from-literal=k=v")
        await ok(kc, "-n", "jhub", "create", "serviceaccount", "hub")
        store = sim.store
        assert store.get(store.resource("secrets"), "jhub", "tok")["data"] == {"token": "YWJj"}
        assert store.get(store.resource("configmaps"), "jhub", "cfg")["data"] == {"k": "v"}
        assert store.get(store.resource("serviceaccounts"), "jhub", "hub")["metadata"]["name"] == "hub"
        code, _, err = await kubectl(kc, "-n", "jhub", "create", "service", "clusterip", "s",
                                     "--tcp=80:8080")
        assert code != 0 and "send Service as JSON" in err
