"""The packaged form in headless Chromium: usable by keyboard, with and without JavaScript.

No hub is needed: the rendered form is put inside a ``<form>`` as JupyterHub's
spawn.html does, a person operates it with the keyboard, and what the browser would
submit (``FormData``) goes through ``options_from_form``. The full spawn through a hub
to a pod is the other end-to-end tests' job.

This module drives Playwright's async API from a function-scoped fixture, which shadows
the package's sync, module-scoped ``browser``: the sync API never runs in this module,
so no event loop is held while these asyncio tests run.
"""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.unit.profiles_support import PROFILES, ProfileTestSpawner

from .hub_stack import CHROMIUM_ARGS, CHROMIUM_PATH

pytestmark = pytest.mark.e2e


@pytest.fixture
def chromium() -> str:
    if not Path(CHROMIUM_PATH).exists():
        pytest.fail(f"{CHROMIUM_PATH} is missing: `apt-get install -y chromium` (Debian's package)")
    return CHROMIUM_PATH


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def open_form(browser: Browser, *, javascript: bool) -> tuple[Page, ProfileTestSpawner]:
    spawner = ProfileTestSpawner(profile_list=PROFILES)
    html = await spawner.get_options_form()
    context = await browser.new_context(java_script_enabled=javascript)
    page = await context.new_page()
    await page.set_content(
        f"<!doctype html><html><body><form id='spawn_form'>{html}"
        "<button type='submit'>Start</button></form></body></html>"
    )
    return page, spawner


async def submitted(page: Page) -> dict[str, list[str]]:
    """What the browser would post: the form's successful controls."""
    pairs: list[list[str]] = await page.evaluate(
        "() => Array.from(new FormData(document.getElementById('spawn_form')).entries())"
    )
    form: dict[str, list[str]] = {}
    for key, value in pairs:
        form.setdefault(key, []).append(value)
    return form


async def focused(page: Page) -> dict[str, Any]:
    return await page.evaluate(
        "() => ({name: document.activeElement.name, value: document.activeElement.value})"
    )


async def test_keyboard_only_choice_of_profile_option_and_free_text(browser: Browser) -> None:
    page, spawner = await open_form(browser, javascript=True)
    free_text = page.locator("#profile-option-small-cpu--image--unlisted-choice")
    assert not await free_text.is_visible()  # hidden until "Other..." is chosen
    assert not await page.locator("#profile-option-small-cpu--image").is_visible()

    await page.keyboard.press("Tab")
    assert await focused(page) == {"name": "profile", "value": "gpu"}  # the checked radio
    await page.keyboard.press("Tab")
    assert await focused(page) == {"name": "profile-option-gpu--size", "value": "one"}
    await page.keyboard.press("Shift+Tab")
    await page.keyboard.press("ArrowUp")  # radio groups move with the arrow keys
    assert await focused(page) == {"name": "profile", "value": "small-cpu"}
    assert not await page.locator("#profile-option-gpu--size").is_visible()
    await page.keyboard.press("Tab")
    assert await focused(page) == {"name": "profile-option-small-cpu--image", "value": "scipy"}
    await page.keyboard.press("End")  # last choice of the select: "Other..."
    await page.keyboard.press("Tab")
    assert await free_text.is_visible()
    assert (await focused(page))["name"] == "profile-option-small-cpu--image--unlisted-choice"
    await page.keyboard.type("pangeo/ml:3")

    form = await submitted(page)
    assert "profile-option-gpu--size" not in form  # the profile not chosen does not post
    # As upstream's form: with "Other" chosen, only the free text is posted.
    assert "profile-option-small-cpu--image" not in form
    assert spawner.run_options_from_form(form) == {
        "profile": "small-cpu",
        "image--unlisted-choice": "pangeo/ml:3",
    }


async def test_script_disables_free_text_that_does_not_apply(browser: Browser) -> None:
    page, spawner = await open_form(browser, javascript=True)
    await page.check("#profile-item-small-cpu")
    await page.select_option("#profile-option-small-cpu--image", "unlisted-choice")
    await page.fill("#profile-option-small-cpu--image--unlisted-choice", "not a pangeo image")
    await page.select_option("#profile-option-small-cpu--image", "base")
    form = await submitted(page)
    assert "profile-option-small-cpu--image--unlisted-choice" not in form
    assert spawner.run_options_from_form(form) == {"profile": "small-cpu", "image": "base"}


async def test_without_javascript_everything_posts_and_the_server_reads_the_selection(
    browser: Browser,
) -> None:
    page, spawner = await open_form(browser, javascript=False)
    free_text = page.locator("#profile-option-small-cpu--image--unlisted-choice")
    assert await free_text.is_visible() and await free_text.is_enabled()
    await page.check("#profile-item-small-cpu")
    await free_text.fill("typed but not selected")
    await page.select_option("#profile-option-small-cpu--image", "base")
    form = await submitted(page)
    assert form["profile-option-small-cpu--image--unlisted-choice"] == ["typed but not selected"]
    assert spawner.run_options_from_form(form) == {"profile": "small-cpu", "image": "base"}
