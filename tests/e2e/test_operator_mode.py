"""Operator mode end to end: a real JupyterHub (operator mode), the proxy, the simulator in
process mode (the "pods" are real jupyterhub-singleuser processes) and two operator
replicas as their own processes, as ``make demo DEMO_ARGS=--operator`` runs them.

Driven through the hub's REST API: a spawn reaches a running server through the proxy, a
named server runs next to it, the leader operator is killed (SIGKILL) in the middle of a
spawn and the spawn still completes, and stopping the servers removes every
NotebookServer and pod.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from devtools import local_stack
from devtools.local_stack import SimulatorOptions, SupervisedProcess

from .browser_steps import PASSWORD, expect_server_page, log_in, submit_spawn_form, watch_progress
from .conftest import Screenshots
from .hub_stack import HubStack, eventually, http_json

pytestmark = pytest.mark.e2e

CONFIG = local_stack.PACKAGE_ROOT / "examples" / "operator" / "jupyterhub_config.py"
GROUP_PATH = "/apis/notebooks.async-kubespawner.io/v1alpha1/namespaces/default/notebookservers"


class OperatorHubStack(HubStack):
    """A HubStack with the CRDs, the default template and two operator replicas."""

    operators: dict[str, SupervisedProcess]

    def start(self) -> OperatorHubStack:
        self.operators = {}  # before anything starts: stop() after a failed start reads it
        super().start()
        return self

    def prepare_cluster(self) -> None:
        """The operator's CRDs and template, then two replicas, instead of the namespaces."""
        assert self.kubeconfig is not None
        local_stack.install_operator_mode(self.kubeconfig)
        for identity in ("operator-a", "operator-b"):
            self.operators[identity] = local_stack.start_operator(
                self.state_dir, self.kubeconfig, identity)

    def stop(self) -> None:
        self.stop_hub()  # the hub stops its servers while the operators still run
        local_stack.stop_all(self.operators.values())
        super().stop()

    def sim_get(self, path: str) -> Any:
        status, body = http_json("GET", f"{self.simulator_url}{path}")
        assert status == 200, f"GET {path}: {status} {body}"
        return body

    def leader(self) -> str:
        lease = self.sim_get(
            "/apis/coordination.k8s.io/v1/namespaces/default/leases/async-kubespawner-operator")
        return str(lease["spec"]["holderIdentity"])

    def notebook_servers(self) -> dict[str, str]:
        items = self.sim_get(GROUP_PATH)["items"]
        return {i["metadata"]["name"]: (i.get("status") or {}).get("phase", "") for i in items}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorHubStack]:
    # The entry point name works once the package is installed; the import path always.
    overrides = (
        'c.JupyterHub.spawner_class = "async_kubespawner.operator.spawner.OperatorSpawner"\n'
        'c.JupyterHub.authenticator_class = "dummy"\n'
        f'c.DummyAuthenticator.password = {PASSWORD!r}\n'
    )
    stack = OperatorHubStack(
        state_dir=tmp_path_factory.mktemp("operator"), base_config=CONFIG, overrides=overrides,
        # The "large" profile's image (the template's default) takes 12 s to pull: longer
        # than a takeover, so the leader killed after the request dies mid-spawn.
        simulator=SimulatorOptions(process_mode=True, extra_args=(
            "--image-scenario", "quay.io/jupyterhub/singleuser:*=ready,pull=12")),
    ).start()
    try:
        yield stack
    finally:
        stack.stop()


def server_ready(stack: HubStack, user: str, name: str = "") -> dict[str, Any] | None:
    model = stack.user_model(user)
    server = (model.get("servers") or {}).get(name)
    return server if server and server.get("ready") else None


def test_spawn_named_server_and_leader_failover(stack: OperatorHubStack) -> None:
    status, _ = http_json("POST", f"{stack.hub_api}/users/alice", token=stack.api_token)
    assert status == 201
    status, body = http_json("POST", f"{stack.hub_api}/users/alice/server", token=stack.api_token,
                             body={"profile": "standard", "image": "scipy"})
    assert status in (201, 202), body
    eventually(lambda: server_ready(stack, "alice"), 90, "alice's server ready")
    # the server answers through the proxy
    status, body = http_json("GET", f"{stack.url}/user/alice/api")
    assert status == 200 and "version" in body
    assert stack.notebook_servers() == {"jupyter-alice": "Ready"}
    pods = stack.pods(label_selector="notebooks.async-kubespawner.io/server=jupyter-alice")
    assert [p["spec"]["containers"][0]["image"] for p in pods] == [
        "quay.io/jupyter/scipy-notebook:2025-01-06"]

    # a named server next to it, while the leader is killed mid-spawn
    leader = stack.leader()
    status, body = http_json("POST", f"{stack.hub_api}/users/alice/servers/work",
                             token=stack.api_token, body={"profile": "large"})
    assert status in (201, 202), body
    process = stack.operators[leader].process
    assert process is not None
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    eventually(lambda: server_ready(stack, "alice", "work"), 120, "the named server ready")
    assert stack.leader() != leader
    events = stack.sim_get("/api/v1/namespaces/default/events")["items"]
    ready_events = [e for e in events if e["involvedObject"].get("name") == "jupyter-alice--work"
                    and e["reason"] == "Ready"]
    assert [e["source"]["component"] for e in ready_events] == ["async-kubespawner-operator"]
    assert stack.notebook_servers() == {"jupyter-alice": "Ready", "jupyter-alice--work": "Ready"}
    work_pods = stack.pods(
        label_selector="notebooks.async-kubespawner.io/server=jupyter-alice--work")
    assert len(work_pods) == 1  # no duplicate from the failover

    for path in ("/users/alice/server", "/users/alice/servers/work"):
        status, body = http_json("DELETE", f"{stack.hub_api}{path}", token=stack.api_token)
        assert status in (202, 204), body
    eventually(lambda: stack.notebook_servers() == {}, 60, "every NotebookServer gone")
    eventually(lambda: not stack.pods(
        label_selector="app.kubernetes.io/managed-by=async-kubespawner-operator"),
        60, "every pod gone")


def test_spawn_page_shows_the_operators_progress(
    stack: OperatorHubStack, page: Page, screenshot: Screenshots
) -> None:
    seen = watch_progress(page.context)
    log_in(page, stack, "bea")
    page.goto(f"{stack.url}/hub/spawn/bea")
    expect(page.locator("#spawn_form")).to_be_visible()
    submit_spawn_form(page, "standard", {"image": "base"})
    page.locator("#progress-details summary").click()
    expect(page.locator("#progress-log")).to_contain_text("Creating 3 objects", timeout=30_000)
    screenshot(page, "progress from the operator")
    expect_server_page(page, "bea")
    log = "\n".join(seen.log)
    # the hub's request, the operator's Events on the NotebookServer, the pod's own Events
    for expected in ("Requesting server jupyter-bea", "Created PersistentVolumeClaim claim-bea",
                     "Started container"):
        assert expected in log, f"{expected!r} missing from the progress log:\n{log}"
    assert log.index("Requesting server") < log.index("Created Persistent")
    assert seen.values == sorted(seen.values), f"the progress bar went backwards: {seen.values}"
