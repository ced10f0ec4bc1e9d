"""A person using the hub: spawn with live Kubernetes progress, stop, named servers, profiles, failures.

One stack for the module: the simulator in process mode (every pod a real
``jupyterhub-singleuser`` on its own loopback IP), the proxy, and JupyterHub running
``examples/local`` — the configuration ``make demo`` runs — plus a third profile whose
image cannot be pulled. Each test uses its own user, so the order of the tests does not
matter. What the page shows is checked in the browser; what really happened (a pod
created with the chosen image, a pod gone) is checked through the simulator's API.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, Response, expect

from async_kubespawner.kube.quantity import parse_quantity
from devtools.local_stack import SimulatorOptions

from .browser_steps import (
    PASSWORD,
    expect_server_page,
    log_in,
    open_home,
    pod_of,
    server_is_stopped,
    stop_from_home,
    submit_spawn_form,
    watch_progress,
)
from .conftest import Screenshots
from .hub_stack import LOCAL_CONFIG, HubStack, eventually, running

pytestmark = pytest.mark.e2e

SCENARIO_ANNOTATION = "sim.async-kubespawner/scenario"
# The registry answers "not found" after 2 s, as a real one takes a moment to: past the 1 s
# JupyterHub waits inside the POST, so the failure arrives on the spawn-pending page.
BROKEN_IMAGE = "registry.example.invalid/no-such-image:404"

# start_timeout far beyond the test's own waits: a failure shown in time can only come from
# the spawner acting on the pull error, never from JupyterHub giving up on a slow start.
OVERRIDES = f'''
c.DummyAuthenticator.password = {PASSWORD!r}
c.KubeSpawner.start_timeout = 600
c.KubeSpawner.profile_list = list(c.KubeSpawner.profile_list) + [
    {{
        "display_name": "Broken image",
        "slug": "broken",
        "description": "An image the registry does not have.",
        "kubespawner_override": {{
            "image": {BROKEN_IMAGE!r},
            "extra_annotations": {{{SCENARIO_ANNOTATION!r}: "image-pull-failure,pull=2"}},
        }},
    }},
]
'''


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubStack]:
    hub = HubStack(
        state_dir=tmp_path_factory.mktemp("spawn"),
        base_config=LOCAL_CONFIG,
        overrides=OVERRIDES,
        # The default image takes 2.5 s to "pull", so the spawn page is still showing
        # progress when the test looks at it, however fast the machine.
        simulator=SimulatorOptions(
            process_mode=True,
            extra_args=["--image-scenario", "quay.io/jupyterhub/singleuser:5=pull=2.5"],
        ),
    )
    with running(hub, "test_spawn") as started:
        yield started


def notebook_container(pod: dict[str, Any]) -> dict[str, Any]:
    (container,) = [c for c in pod["spec"]["containers"] if c["name"] == "notebook"]
    return container


# -- the scenarios ----------------------------------------------------------------------------


def test_spawn_shows_kubernetes_progress_and_lands_on_the_server(
    stack: HubStack, page: Page, screenshot: Screenshots
) -> None:
    seen = watch_progress(page.context)
    log_in(page, stack, "ada")
    page.goto(f"{stack.url}/hub/spawn/ada")
    expect(page.locator("#spawn_form")).to_be_visible()
    screenshot(page, "options form")
    submit_spawn_form(page, "small")
    page.locator("#progress-details summary").click()  # open the event log for the screenshot
    expect(page.locator("#progress-log")).to_contain_text("Pulling", timeout=30_000)
    screenshot(page, "progress with kubernetes events")
    expect_server_page(page, "ada")
    screenshot(page, "server page")

    log = "\n".join(seen.log)
    # Real event messages, in the order a kubelet emits them.
    for expected in ("Successfully assigned default/", "Pulling image", "Started container"):
        assert expected in log, f"{expected!r} missing from the progress log:\n{log}"
    assert log.index("Successfully assigned") < log.index("Pulling image") < log.index("Started container")
    values = seen.values
    assert values == sorted(values), f"the progress bar went backwards: {values}"
    assert len(set(values)) >= 3, f"the progress bar did not advance step by step: {values}"

    pod = pod_of(stack, "ada")
    assert pod["status"]["phase"] == "Running"
    assert parse_quantity(notebook_container(pod)["resources"]["limits"]["memory"]) == parse_quantity("512Mi")


def test_stop_from_home_page_deletes_the_pod(stack: HubStack, page: Page, screenshot: Screenshots) -> None:
    log_in(page, stack, "barbara")
    page.goto(f"{stack.url}/hub/spawn/barbara")
    submit_spawn_form(page, "small")
    expect_server_page(page, "barbara")
    pod_name = pod_of(stack, "barbara")["metadata"]["name"]

    open_home(page, stack)
    expect(page.locator("#stop")).to_be_visible()
    screenshot(page, "home with running server")
    stop_from_home(page, stack, "barbara")
    expect(page.locator("#start")).to_be_visible(timeout=30_000)
    eventually(lambda: server_is_stopped(stack.user_model("barbara")), 30, "barbara's server stopped")
    screenshot(page, "home after stop")
    # stop() returns once the pod is gone, not merely once its deletion was requested.
    assert stack.pod(pod_name) is None


def test_two_named_servers_are_both_reachable(stack: HubStack, page: Page, screenshot: Screenshots) -> None:
    log_in(page, stack, "grace")
    for server in ("one", "two"):
        open_home(page, stack)
        page.fill("input.new-server-name", server)

        def creates_server(r: Response, server: str = server) -> bool:
            return r.request.method == "PUT" and r.url.split("?")[0].endswith(f"/servers/{server}")

        with page.expect_response(creates_server):
            page.click("button.new-server-btn")
        # JupyterHub ≥ 6 creates the named server (PUT), reloads the home page, and offers
        # "start" (a plain link to the spawn page).
        page.locator(f"#start-{server}").click()
        expect(page.locator("#spawn_form")).to_be_visible()
        submit_spawn_form(page, "small")
        expect_server_page(page, "grace", server)
        screenshot(page, f"named server {server}")

    for server in ("one", "two"):
        page.goto(f"{stack.url}/user/grace/{server}/")
        expect_server_page(page, "grace", server)
    page.goto(f"{stack.url}/hub/home")
    screenshot(page, "home with two named servers")

    servers = stack.user_model("grace")["servers"]
    assert servers["one"]["ready"] and servers["two"]["ready"]
    pods = {server: pod_of(stack, "grace", server) for server in ("one", "two")}
    assert pods["one"]["metadata"]["name"] != pods["two"]["metadata"]["name"]
    assert pods["one"]["status"]["podIP"] != pods["two"]["status"]["podIP"], "each pod has its own IP"


def test_profile_and_option_choose_image_and_resources(
    stack: HubStack, page: Page, screenshot: Screenshots
) -> None:
    log_in(page, stack, "linus")
    page.goto(f"{stack.url}/hub/spawn/linus")
    page.check("input[name='profile'][value='large']")
    page.select_option("select[name='profile-option-large--image']", "previous")
    screenshot(page, "large profile with previous image")
    page.locator("#spawn_form [type='submit']").click()
    expect_server_page(page, "linus")

    pod = pod_of(stack, "linus")
    container = notebook_container(pod)
    assert container["image"] == "quay.io/jupyterhub/singleuser:4.1"
    limits = {k: parse_quantity(v) for k, v in container["resources"]["limits"].items()}
    requests = {k: parse_quantity(v) for k, v in container["resources"]["requests"].items()}
    # JupyterHub's byte units are binary: "2G" is 2 GiB.
    assert limits == {"cpu": 2, "memory": parse_quantity("2Gi")}
    assert requests == {"cpu": 1, "memory": parse_quantity("1Gi")}


def test_unpullable_image_fails_on_the_spawn_page_within_seconds(
    stack: HubStack, page: Page, screenshot: Screenshots
) -> None:
    log_in(page, stack, "margaret")
    page.goto(f"{stack.url}/hub/spawn/margaret")
    submit_spawn_form(page, "broken")
    message = page.locator("#progress-message")
    expect(message).to_contain_text("Spawn failed", timeout=30_000)
    screenshot(page, "spawn failed")
    text = message.inner_text()
    # The user sees which image and why, not a generic timeout.
    assert BROKEN_IMAGE in text or "ErrImagePull" in text or "ImagePullBackOff" in text, text
    assert not re.search(r"didn't respond|timeout", text, re.IGNORECASE), text
    eventually(lambda: server_is_stopped(stack.user_model("margaret")), 30, "margaret's failed server cleared")
