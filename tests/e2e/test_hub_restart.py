"""Restarting the hub while servers run: they keep running, stay reachable, and can still be stopped.

A hub upgrade (``helm upgrade``) restarts the hub process with ``cleanup_servers=False``;
the new process must find every running server again from the spawner state in its
database and the pods in the cluster, without restarting any of them. The proxy is a
separate process (as in the Zero to JupyterHub chart), so the routes survive too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from .browser_steps import (
    PASSWORD,
    expect_server_page,
    log_in,
    open_home,
    pod_of,
    server_is_stopped,
    stop_from_home,
    submit_spawn_form,
)
from .conftest import Screenshots
from .hub_stack import KEEP_SERVERS, HubStack, eventually, local_stack_in_process_mode

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubStack]:
    overrides = f"c.DummyAuthenticator.password = {PASSWORD!r}\n{KEEP_SERVERS}"
    yield from local_stack_in_process_mode(tmp_path_factory, "test_hub_restart", overrides)


def test_servers_survive_a_hub_restart(stack: HubStack, page: Page, screenshot: Screenshots) -> None:
    log_in(page, stack, "hedy")
    page.goto(f"{stack.url}/hub/spawn/hedy")
    submit_spawn_form(page, "small")
    expect_server_page(page, "hedy")
    page.goto(f"{stack.url}/hub/spawn/hedy/lab")
    submit_spawn_form(page, "small")
    expect_server_page(page, "hedy", "lab")
    before = {server: pod_of(stack, "hedy", server) for server in ("", "lab")}
    screenshot(page, "before restart")

    stack.stop_hub()
    # With the hub down, the pods keep running: nothing stopped them.
    for server in ("", "lab"):
        pod = stack.pod(before[server]["metadata"]["name"])
        assert pod is not None and pod["status"]["phase"] == "Running"

    stack.start_hub()
    # The same pods (same uid): the new hub adopted them instead of starting new ones.
    for server in ("", "lab"):
        after = pod_of(stack, "hedy", server)
        assert after["metadata"]["uid"] == before[server]["metadata"]["uid"]
    model = stack.user_model("hedy")
    assert model["servers"][""]["ready"] and model["servers"]["lab"]["ready"]

    page.goto(f"{stack.url}/user/hedy/")
    expect_server_page(page, "hedy")
    page.goto(f"{stack.url}/user/hedy/lab/")
    expect_server_page(page, "hedy", "lab")
    screenshot(page, "named server after restart")

    open_home(page, stack)
    stop_from_home(page, stack, "hedy")
    expect(page.locator("#start")).to_be_visible(timeout=30_000)
    eventually(lambda: server_is_stopped(stack.user_model("hedy")), 30, "hedy's default server stopped")
    assert stack.pod(before[""]["metadata"]["name"]) is None
    stop_from_home(page, stack, "hedy", "lab")
    eventually(lambda: server_is_stopped(stack.user_model("hedy"), "lab"), 30, "hedy's lab server stopped")
    assert stack.pod(before["lab"]["metadata"]["name"]) is None
    page.reload()
    screenshot(page, "both stopped after restart")
