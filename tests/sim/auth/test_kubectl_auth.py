"""The real kubectl against the simulator with authentication on: can-i, tokens, whoami, RBAC."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from kubernetes_asyncio.client import CoreV1Api
from kubernetes_asyncio.client.exceptions import ApiException
from kubesim.testing import run_simulator, write_kubeconfig

from ..support import REPO_ROOT, kubectl, ok

pytestmark = pytest.mark.usefixtures("kubectl_installed")


async def test_kubectl_auth_can_i_create_token_and_whoami(tmp_path: Path) -> None:
    # kubectl sends bearer tokens over HTTPS only
    async with run_simulator(tls=True, auth=True) as sim:
        kc = sim.kubeconfig_path
        assert (await ok(kc, "auth", "can-i", "delete", "nodes")).strip() == "yes"
        await ok(kc, "create", "namespace", "jhub")
        await ok(kc, "-n", "jhub", "create", "serviceaccount", "hub")
        await ok(kc, "-n", "jhub", "create", "role", "hub", "--verb=get,list,watch", "--resource=pods,pods/log")
        await ok(kc, "-n", "jhub", "create", "rolebinding", "hub", "--role=hub", "--serviceaccount=jhub:hub")
        # as the account, through impersonation by the admin
        as_hub = ("--as=system:serviceaccount:jhub:hub", "-n", "jhub")
        assert (await ok(kc, "auth", "can-i", "list", "pods", *as_hub)).strip() == "yes"
        code, out, _ = await kubectl(kc, "auth", "can-i", "create", "pods", *as_hub)
        assert (code, out.strip()) == (1, "no")
        # as the account, with its own token
        token = (await ok(kc, "-n", "jhub", "create", "token", "hub", "--duration=15m")).strip()
        hub_kc = write_kubeconfig(tmp_path / "hub", sim.url, token=token, ca_path=sim.ca_path, namespace="jhub")
        assert (await ok(hub_kc, "auth", "can-i", "get", "pods", "--subresource=log")).strip() == "yes"
        code, out, _ = await kubectl(hub_kc, "auth", "can-i", "get", "secrets")
        assert (code, out.strip()) == (1, "no")
        listing = await ok(hub_kc, "auth", "can-i", "--list")
        assert any(line.split()[:1] == ["pods/log"] for line in listing.splitlines())
        whoami = await ok(hub_kc, "auth", "whoami")
        assert "system:serviceaccount:jhub:hub" in whoami
        assert "system:serviceaccounts:jhub" in whoami
        assert "No resources found" in (await kubectl(hub_kc, "get", "pods"))[2]
        code, _, err = await kubectl(hub_kc, "get", "secrets")
        assert code == 1
        assert (
            'Error from server (Forbidden): secrets is forbidden: User "system:serviceaccount:jhub:hub" '
            'cannot list resource "secrets" in API group "" in the namespace "jhub"'
        ) in err
        code, _, err = await kubectl(hub_kc, "delete", "node", "sim-node-0")
        assert code == 1 and "cannot delete resource \"nodes\"" in err
        bad_kc = write_kubeconfig(tmp_path / "bad", sim.url, token="nope", ca_path=sim.ca_path)
        code, _, err = await kubectl(bad_kc, "get", "pods")
        assert code == 1 and "Unauthorized" in err


async def test_kubectl_creates_cluster_rbac_from_its_protobuf_bodies() -> None:
    async with run_simulator(tls=True, auth=True) as sim:
        kc = sim.kubeconfig_path
        await ok(kc, "create", "clusterrole", "node-reader", "--verb=get,list", "--resource=nodes")
        await ok(kc, "create", "clusterrolebinding", "bob-reads-nodes", "--clusterrole=node-reader", "--user=bob")
        stored = sim.store.get_ref(sim.store.registry.lookup("clusterrolebindings", "rbac.authorization.k8s.io"), None, "bob-reads-nodes")
        assert stored["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "node-reader"}
        assert stored["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"}]
        assert "generateName" not in stored["metadata"]
        assert (await ok(kc, "auth", "can-i", "list", "nodes", "--as=bob")).strip() == "yes"
        code, out, _ = await kubectl(kc, "auth", "can-i", "delete", "nodes", "--as=bob")
        assert (code, out.strip()) == (1, "no")


async def test_command_line_turns_authentication_on(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kubesim", "--no-cluster", "--kubeconfig", str(kubeconfig),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "simulator")])},
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line.startswith("simulator listening on https://"), line
        assert "token:" in kubeconfig.read_text()
        assert (await ok(kubeconfig, "auth", "can-i", "'*'", "'*'")).strip() == "yes"
        info = await ok(kubeconfig, "auth", "whoami")
        assert "system:masters" in info
        bad = write_kubeconfig(tmp_path / "bad", line.split()[3], token="x", ca_path=None)
        code, _, err = await kubectl(bad, "--insecure-skip-tls-verify", "get", "pods")
        assert code == 1 and "Unauthorized" in err
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.communicate(), 30)


async def test_sa_client_fixture(sa_client) -> None:
    hub = await sa_client("jhub", "hub", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}])
    assert hub.username == "system:serviceaccount:jhub:hub"
    core = CoreV1Api(hub.api_client)
    assert (await core.list_namespaced_pod("jhub")).items == []
    with pytest.raises(ApiException) as refused:
        await core.list_namespaced_secret("jhub")
    assert refused.value.status == 403
    with pytest.raises(ApiException) as refused:
        await core.list_namespaced_pod("default")
    assert refused.value.status == 403
    # the kubeconfig works for kubectl too (over HTTPS only: this one is HTTP, so the
    # same identity is checked through a kubernetes_asyncio client built from the file)
    from kubernetes_asyncio import config

    client = await config.new_client_from_config(str(hub.kubeconfig_path))
    try:
        assert (await CoreV1Api(client).list_namespaced_pod("jhub")).items == []
    finally:
        await client.close()
    # a second identity with cluster-wide rules, in the same simulator
    reader = await sa_client("ops", "reader", cluster_rules=[{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}])
    assert reader.simulator is hub.simulator
    assert (await CoreV1Api(reader.api_client).list_node()).items == []


def test_command_line_options_of_authentication(capsys: pytest.CaptureFixture[str]) -> None:
    from kubesim.__main__ import build_parser, validate_args

    parser = build_parser()
    args = parser.parse_args(["--kubeconfig", "k"])
    assert (args.auth, args.tls) == (True, None)  # on, and HTTPS follows authentication
    args = parser.parse_args(["--kubeconfig", "k", "--no-auth"])
    assert args.auth is False
    args = parser.parse_args(["--kubeconfig", "k", "--no-tls"])
    assert (args.auth, args.tls) == (True, False)
    args = parser.parse_args(["--kubeconfig", "k", "--no-auth", "--token", "t"])
    with pytest.raises(SystemExit):
        validate_args(parser, args)
    assert "--token needs authentication" in capsys.readouterr().err
