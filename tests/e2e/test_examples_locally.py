"""Every example runs on one machine: ``python -m devtools.demo --config examples/<name>/...``.

The cluster examples are written for real clusters; the launcher's wrapper config adds
only what one machine needs (loopback hub address, a login, pods reached by IP) and
creates the fixed namespace an example expects, as an operator would with kubectl.
One simulator and one proxy serve all of them; the hub is restarted with each
configuration. Servers are started and stopped through the hub's REST API, followed on
its progress stream, and reached through the proxy with a token — the path a browser
takes, without a browser (the browser tests use ``examples/local``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.local_stack import SimulatorOptions

from .conftest import keep_logs
from .hub_stack import REPO_ROOT, HubStack, http_json, spawn, stop, stored

pytestmark = pytest.mark.e2e

EXAMPLES = REPO_ROOT / "examples"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubStack]:
    state_dir = tmp_path_factory.mktemp("examples")
    hub = HubStack(
        state_dir=state_dir,
        base_config=EXAMPLES / "cluster" / "jupyterhub_config.py",
        # Simulated timings in milliseconds (PVC binding, pulls): only the servers' own
        # start-up takes real time. Progress is what the browser tests watch.
        simulator=SimulatorOptions(process_mode=True, fast=True),
    ).start()
    try:
        yield hub
    finally:
        hub.stop()
        keep_logs(state_dir, "test_examples_locally")


def test_cluster_example_runs_locally(stack: HubStack) -> None:
    stack.use_config(EXAMPLES / "cluster" / "jupyterhub_config.py")
    spawn(stack, "carol")
    pvc = stored(stack, "/api/v1/namespaces/default/persistentvolumeclaims/claim-carol")
    assert pvc is not None and pvc["status"]["phase"] == "Bound"
    assert stored(stack, "/api/v1/namespaces/default/services/jupyter-carol") is not None
    stop(stack, "carol")
    assert stored(stack, "/api/v1/namespaces/default/pods/jupyter-carol") is None


def test_named_servers_pvc_example_runs_locally(stack: HubStack) -> None:
    stack.use_config(EXAMPLES / "named-servers-pvc" / "jupyterhub_config.py")
    spawn(stack, "dave", "analysis")
    pvc = stored(stack, "/api/v1/namespaces/default/persistentvolumeclaims/claim-dave--analysis")
    assert pvc is not None and pvc["spec"]["storageClassName"] == "standard"
    stop(stack, "dave", "analysis")


def test_a_file_in_the_named_servers_volume_survives_stop_and_start(stack: HubStack) -> None:
    """Write through the proxy into the server's PVC, stop, start again, read it back.

    In process mode the claim's mount at /home/jovyan is the bound volume's own directory,
    so this is the persistence a user relies on, checked through the whole stack.
    """
    stack.use_config(EXAMPLES / "named-servers-pvc" / "jupyterhub_config.py")
    user, server = "gina", "thesis"
    contents = f"{stack.url}/user/{user}/{server}/api/contents/home/jovyan/notes.txt"
    spawn(stack, user, server)
    status, body = http_json(
        "PUT",
        contents,
        token=stack.api_token,
        body={"type": "file", "format": "text", "content": "kept across restarts"},
    )
    assert status in (200, 201), f"writing into the volume: {status} {body}"
    stop(stack, user, server)
    assert stored(stack, f"/api/v1/namespaces/default/pods/jupyter-{user}--{server}") is None
    spawn(stack, user, server)
    status, body = http_json("GET", contents, token=stack.api_token)
    assert status == 200, f"reading back: {status} {body}"
    assert body["content"] == "kept across restarts"
    stop(stack, user, server)


def test_user_namespaces_example_runs_locally(stack: HubStack) -> None:
    stack.use_config(EXAMPLES / "user-namespaces" / "jupyterhub_config.py")
    spawn(stack, "erin")
    assert stored(stack, "/api/v1/namespaces/user-erin") is not None
    assert stored(stack, "/api/v1/namespaces/user-erin/pods/jupyter-erin") is not None
    stop(stack, "erin")
    assert stored(stack, "/api/v1/namespaces/user-erin/pods/jupyter-erin") is None


def test_hardened_example_runs_locally(stack: HubStack) -> None:
    stack.use_config(EXAMPLES / "hardened" / "jupyterhub_config.py")
    spawn(stack, "frank")
    pod = stored(stack, "/api/v1/namespaces/jhub-users/pods/jupyter-frank")
    assert pod is not None
    (container,) = [c for c in pod["spec"]["containers"] if c["name"] == "notebook"]
    token = next(e for e in container["env"] if e["name"] == "JUPYTERHUB_API_TOKEN")
    assert "value" not in token and "secretKeyRef" in token["valueFrom"]
    stop(stack, "frank")
