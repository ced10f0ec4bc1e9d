"""What a person does in the hub's pages, as reusable steps (log in, start, stop)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from playwright.sync_api import BrowserContext, Page, Request, expect

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


# -- watching the progress bar ----------------------------------------------------------------

RECORD_PROGRESS = """
(() => {
  const report = () => {
    const bar = document.querySelector('#progress-bar');
    const log = [...document.querySelectorAll('#progress-log .progress-log-event')].map(e => e.textContent);
    window.e2eRecordProgress({
      value: bar ? Number(bar.getAttribute('aria-valuenow') || 0) : null,
      message: (document.querySelector('#progress-message') || {}).textContent || '',
      log: log,
      failed: !!(bar && bar.classList.contains('bg-danger')),
    });
  };
  document.addEventListener('DOMContentLoaded', () => {
    const target = document.querySelector('#progress-log');
    if (!target) return;
    new MutationObserver(report).observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
    report();
  });
})();
"""


@dataclass
class ProgressSeen:
    """Every state of the spawn page's progress bar the browser rendered (survives the redirect)."""

    states: list[dict[str, Any]] = field(default_factory=list)

    def record(self, state: dict[str, Any]) -> None:
        if not self.states or self.states[-1] != state:
            self.states.append(state)

    @property
    def values(self) -> list[int]:
        return [s["value"] for s in self.states if s["value"] is not None]

    @property
    def log(self) -> list[str]:
        return max((s["log"] for s in self.states), key=len, default=[])


def watch_progress(context: BrowserContext) -> ProgressSeen:
    """Record every progress-bar state the pages of ``context`` render, from the first one."""
    seen = ProgressSeen()
    context.expose_function("e2eRecordProgress", seen.record)
    context.add_init_script(RECORD_PROGRESS)
    return seen


def submit_spawn_form(page: Page, profile: str, options: dict[str, str] | None = None) -> None:
    """Choose a profile (and option choices) on the options form and press Start."""
    page.check(f"input[name='profile'][value='{profile}']")
    for option, choice in (options or {}).items():
        page.select_option(f"select[name='profile-option-{profile}--{option}']", choice)
    page.locator("#spawn_form [type='submit']").click()


def pod_of(stack: HubStack, user: str, server: str = "") -> dict[str, Any]:
    """The pod the hub's state says belongs to user/server, read from the simulator."""
    selector = f"hub.jupyter.org/username={user}"
    pods = [
        p
        for p in stack.pods(label_selector=selector)
        if p["metadata"].get("annotations", {}).get("hub.jupyter.org/servername", "") == server
    ]
    assert len(pods) == 1, f"expected one pod for {user}/{server!r}, found {[p['metadata']['name'] for p in pods]}"
    return pods[0]
