"""What a person does in the hub's pages, as reusable steps (log in, start, stop)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from .hub_stack import HubStack

#: DummyAuthenticator's shared password in every e2e config (examples/local documents its own).
PASSWORD = "e2e-password"


def log_in(page: Page, stack: HubStack, user: str, password: str = PASSWORD) -> None:
    """Log in through the login form and land on the hub's home or spawn page."""
    page.goto(f"{stack.url}/hub/login")
    page.fill("input#username_input", user)
    page.fill("input#password_input", password)
    page.click("#login_submit")
    # JupyterHub sends a fresh login to /hub/spawn (or straight on to a running server).
    expect(page).not_to_have_url(re.compile(r"/hub/login"))


def expect_server_page(page: Page, user: str, server: str = "") -> None:
    """The browser is on the single-user server of ``user`` (proxied under /user/<name>/<server>/)."""
    prefix = f"/user/{user}/{server + '/' if server else ''}"
    expect(page).to_have_url(re.compile(re.escape(prefix)), timeout=60_000)
    # jupyter_server's own landing page (no JupyterLab in the test environment).
    expect(page.get_by_text("A Jupyter Server is running")).to_be_visible()


def server_is_stopped(model: dict[str, object], server: str = "") -> bool:
    """JupyterHub ≥ 5 may keep a stopped server's entry (``stopped: true``) or drop it."""
    servers = model.get("servers") or {}
    assert isinstance(servers, dict)
    entry = servers.get(server)
    return entry is None or (bool(entry.get("stopped")) and not entry.get("ready"))
