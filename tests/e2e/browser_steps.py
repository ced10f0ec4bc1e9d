"""What a person does in the hub's pages, as reusable steps (log in, start, stop)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, Request, expect

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


def open_home(page: Page, stack: HubStack) -> None:
    """Open the hub's home page and wait until its script has wired up the buttons.

    Start/stop/add are links and buttons without an href or form: until home.js has run
    (loaded asynchronously after the page's load event), a click does nothing. The page
    has finished loading its modules when the network goes quiet.
    """
    page.goto(f"{stack.url}/hub/home")
    page.wait_for_load_state("networkidle")


def stop_from_home(page: Page, stack: HubStack, user: str, server: str = "") -> None:
    """Press the stop button of ``server`` on the home page and wait for the hub to answer."""
    button = "#stop" if not server else f"#stop-{server}"
    api_path = f"/hub/api/users/{user}/server" + (f"s/{server}" if server else "")

    def is_stop_request(request: Request) -> bool:
        return request.method == "DELETE" and request.url.split("?")[0].endswith(api_path)

    with page.expect_response(lambda response: is_stop_request(response.request)) as stopped:
        page.click(button)
    assert stopped.value.status in (202, 204), f"stop answered {stopped.value.status}"
