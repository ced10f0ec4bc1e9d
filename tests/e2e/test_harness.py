"""The harness itself, proven with JupyterHub's own SimpleLocalProcessSpawner.

If these fail, the e2e machinery (processes, proxy, browser, screenshots) is broken,
not the spawner: they use no Kubernetes at all. They also pin down what the spawner
tests rely on: a real login form, a real spawn through the real proxy, and a clean
stop of every process of the stack.
"""

from __future__ import annotations

import os
import select
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from devtools.local_stack import ProcessFailed, SupervisedProcess

from .browser_steps import (
    PASSWORD,
    expect_server_page,
    log_in,
    open_home,
    server_is_stopped,
    stop_from_home,
)
from .conftest import Screenshots, keep_logs
from .hub_stack import HubStack, eventually

pytestmark = pytest.mark.e2e

LOCAL_PROCESS_CONFIG = f'''
c = get_config()  # noqa
c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {PASSWORD!r}
c.Authenticator.allow_all = True
c.Spawner.cmd = ["jupyterhub-singleuser"]
c.Spawner.args = ["--allow-root"]  # CI runs as root; jupyter_server refuses root without it
c.Spawner.start_timeout = 30
'''


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubStack]:
    state_dir = tmp_path_factory.mktemp("harness")
    base = state_dir / "base_config.py"
    base.write_text(
        LOCAL_PROCESS_CONFIG
        + f"c.SimpleLocalProcessSpawner.home_dir_template = {str(state_dir / 'home-{username}')!r}\n"
    )
    for user in ("alice", "bob"):
        (state_dir / f"home-{user}").mkdir()
    hub = HubStack(state_dir=state_dir, base_config=base).start()
    try:
        yield hub
    finally:
        hub.stop()
        keep_logs(state_dir, "test_harness")


def test_login_lands_on_the_hub(stack: HubStack, page: Page, screenshot: Screenshots) -> None:
    page.goto(f"{stack.url}/hub/login")
    expect(page.locator("#login_submit")).to_be_visible()
    screenshot(page, "login form")
    log_in(page, stack, "alice")
    screenshot(page, "after login")
    assert stack.user_model("alice")["name"] == "alice"


def test_wrong_password_is_refused(stack: HubStack, page: Page, screenshot: Screenshots) -> None:
    page.goto(f"{stack.url}/hub/login")
    page.fill("input#username_input", "alice")
    page.fill("input#password_input", "not-" + PASSWORD)
    page.click("#login_submit")
    expect(page.locator(".login_error, #login_error, p.login_error")).to_contain_text("Invalid")
    screenshot(page, "refused")


def test_spawn_through_the_proxy_and_stop(stack: HubStack, page: Page, screenshot: Screenshots) -> None:
    log_in(page, stack, "bob")
    page.goto(f"{stack.url}/hub/spawn/bob")
    expect_server_page(page, "bob")
    screenshot(page, "server page")
    assert stack.user_model("bob")["servers"][""]["ready"] is True

    open_home(page, stack)
    stop_from_home(page, stack, "bob")
    expect(page.locator("#start")).to_be_visible(timeout=30_000)
    screenshot(page, "stopped")
    eventually(lambda: server_is_stopped(stack.user_model("bob")), 30, "bob's server stopped")


def test_stop_leaves_no_process(tmp_path: Path) -> None:
    """A stack with a process that ignores SIGTERM is still cleaned up completely."""
    script = tmp_path / "stubborn.py"
    script.write_text(
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import signal, time; "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); print(\"child up\", flush=True); time.sleep(600)'])\n"
        "print('parent up', child.pid, flush=True)\n"
        "child.wait()\n"
    )
    proc = SupervisedProcess(
        name="stubborn", argv=[sys.executable, str(script)], log_path=tmp_path / "stubborn.log"
    ).start()
    proc.wait_for_line("child up", timeout=10)
    child_pid = int(proc.wait_for_line("parent up", timeout=10).split()[-1])
    child_exit = os.pidfd_open(child_pid)  # becomes readable when the child exits
    try:
        proc.stop(timeout=0.5)
        assert not proc.running()
        # The child was in the same group: SIGKILL reached it too. Delivery is asynchronous,
        # so await its exit on the pidfd rather than looking at it right away.
        readable, _, _ = select.select([child_exit], [], [], 10)
        assert readable == [child_exit], f"child {child_pid} survived the group kill"
    finally:
        os.close(child_exit)


def test_a_crash_is_reported_with_its_output(tmp_path: Path) -> None:
    proc = SupervisedProcess(
        name="crasher",
        argv=[sys.executable, "-c", "print('config error: no such thing'); raise SystemExit(3)"],
        log_path=tmp_path / "crasher.log",
    ).start()
    with pytest.raises(ProcessFailed, match="no such thing"):
        proc.wait_for_line("never printed", timeout=30)
    assert proc.stop() == 3

