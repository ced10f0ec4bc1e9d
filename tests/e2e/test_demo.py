"""``python -m devtools.demo``: it serves the hub, and Ctrl-C leaves no process behind.

The demo runs as a subprocess exactly as ``make demo`` runs it. ``--kubeconfig`` (the
"real cluster" path) skips the simulator, so these checks hold whatever state the
spawner is in; the simulator path is what the browser tests in this directory use,
through the same ``local_stack`` functions.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from devtools import local_stack
from devtools.local_stack import SupervisedProcess

from .browser_steps import PASSWORD, expect_server_page
from .conftest import Screenshots, keep_logs
from .hub_stack import alive, children_of, descendants_of, http_json

pytestmark = pytest.mark.e2e

# Any spawner will do: these tests never start a server.
CONFIG = f'''
c = get_config()  # noqa
c.JupyterHub.spawner_class = "simple"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {PASSWORD!r}
'''


def run_demo(tmp_path: Path, *extra: str, simulator: bool = False) -> SupervisedProcess:
    """The demo as `make demo` runs it; with ``simulator=False``, on a (fake) --kubeconfig cluster."""
    options: list[str] = []
    if not simulator:
        config = tmp_path / "config.py"
        config.write_text(CONFIG)
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\n")
        options = ["--config", str(config), "--kubeconfig", str(kubeconfig)]
    port = local_stack.free_port()
    return SupervisedProcess(
        name="demo",
        argv=[
            sys.executable, "-m", "devtools.demo",
            "--port", str(port),
            "--state-dir", str(tmp_path / "state"),
            *options,
            *extra,
        ],
        log_path=tmp_path / "demo.log",
        env=local_stack.subprocess_env(),
    ).start()


def test_demo_serves_then_stops_everything_on_sigterm(tmp_path: Path) -> None:
    """SIGTERM (systemd, CI, `kill`); Ctrl-C's SIGINT is the make-demo test below."""
    demo = run_demo(tmp_path)
    try:
        line = demo.wait_for_line(r"JupyterHub is running at http://", timeout=60)
        url = re.search(r"http://\S+", line).group(0)  # type: ignore[union-attr]
        demo.wait_for_line(rf"password: {re.escape('demo')}", timeout=5)
        status, body = http_json("GET", f"{url}hub/api/")
        assert status == 200 and "version" in body
        started = children_of(demo.pid)
        assert len(started) == 2, f"expected the proxy and the hub, found {started}"

        demo.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        assert demo.process.wait(60) == 0  # type: ignore[union-attr]
        demo.wait_for_line(r"shutting down: received", timeout=5)
        assert [pid for pid in started if alive(pid)] == []
        assert not (tmp_path / "state" / "jupyterhub.pid").exists(), "the hub did not shut down cleanly"
    finally:
        demo.stop()


def test_demo_reports_a_bad_option_clearly(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "devtools.demo", "--config", str(tmp_path / "nope.py")],
        capture_output=True,
        text=True,
        env=local_stack.subprocess_env(),
        timeout=60,
    )
    assert result.returncode == 2
    assert "--config" in result.stderr and "no such file" in result.stderr


def test_demo_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "devtools.demo", "--port", str(port)],
            capture_output=True,
            text=True,
            env=local_stack.subprocess_env(),
            timeout=60,
        )
    assert result.returncode == 2
    assert f"127.0.0.1:{port} is already in use" in result.stderr


def test_demo_exits_when_the_hub_dies(tmp_path: Path) -> None:
    demo = run_demo(tmp_path)
    try:
        demo.wait_for_line(r"JupyterHub is running at http://", timeout=60)
        hub_pid = int((tmp_path / "state" / "jupyterhub.pid").read_text())
        os.kill(hub_pid, signal.SIGKILL)
        assert demo.process.wait(30) == 1  # type: ignore[union-attr]
        demo.wait_for_line(r"shutting down: hub exited", timeout=5)
    finally:
        demo.stop()


def test_make_demo_spawns_a_real_server_and_ctrl_c_leaves_nothing(
    tmp_path: Path, page: Page, screenshot: Screenshots
) -> None:
    """The README's first command, as a newcomer uses it: log in, start, land in the server, Ctrl-C."""
    demo = run_demo(tmp_path, simulator=True)
    try:
        line = demo.wait_for_line(r"JupyterHub is running at http://", timeout=90)
        url = re.search(r"http://\S+", line).group(0).rstrip("/")  # type: ignore[union-attr]
        page.goto(f"{url}/hub/login")
        page.fill("input#username_input", "newcomer")
        page.fill("input#password_input", "demo")  # the password the demo prints
        page.click("#login_submit")
        expect(page.locator("#spawn_form")).to_be_visible()
        screenshot(page, "demo options form")
        page.locator("#spawn_form [type='submit']").click()
        expect_server_page(page, "newcomer")
        screenshot(page, "demo server page")
        processes = descendants_of(demo.pid)
        # simulator, proxy, hub, and the pod's jupyterhub-singleuser (at least)
        assert len(processes) >= 4, processes

        demo.process.send_signal(signal.SIGINT)  # type: ignore[union-attr]
        assert demo.process.wait(90) == 0  # type: ignore[union-attr]
        assert [pid for pid in processes if alive(pid)] == []
    finally:
        demo.stop()
        keep_logs(tmp_path / "state", "test_demo")
