"""Fixtures of the end-to-end tests: a headless Chromium and a screenshot helper per test.

The browser is Debian's ``/usr/bin/chromium`` driven by Playwright's sync API
(``playwright install`` is never run: no downloads). Each test gets a fresh browser
context (its own cookies), so logging in as one user never leaks into another test.
Screenshots land in ``test-artifacts/e2e/<module>/<test>/NN-<step>.png`` and the
process logs of each stack are copied next to them, so a failure in CI can be read
without re-running it.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Generator, Iterator
from pathlib import Path

import playwright.sync_api as playwright_sync
import pytest

# keep_logs is re-exported: the stack modules that copy logs by hand import it from here
from .hub_stack import ARTIFACTS, CHROMIUM_ARGS, CHROMIUM_PATH
from .hub_stack import keep_logs as keep_logs


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/e2e is an e2e test, so ``-m 'not e2e'`` skips the slow tier."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="module")
def browser() -> Iterator[playwright_sync.Browser]:
    if not Path(CHROMIUM_PATH).exists():
        pytest.fail(
            f"{CHROMIUM_PATH} is missing: install Debian's chromium (`make test` runs "
            "scripts/install-system-deps.sh, or `apt-get install -y chromium`)"
        )
    # Per module, not per session: Playwright's sync API must not stay open while the
    # asyncio tests of other directories run their own event loops in this thread.
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Screenshots:
    """Numbered screenshots of one test's steps."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.count = 0
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True, exist_ok=True)

    def __call__(self, page: playwright_sync.Page, step: str) -> Path:
        self.count += 1
        slug = re.sub(r"[^a-z0-9]+", "-", step.lower()).strip("-")
        path = self.directory / f"{self.count:02d}-{slug}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Screenshots:
    module = Path(str(request.node.fspath)).stem
    return Screenshots(ARTIFACTS / module / request.node.name)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember each phase's report on the test item, so fixtures can tell that the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page(browser: playwright_sync.Browser, request: pytest.FixtureRequest) -> Iterator[playwright_sync.Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    context.set_default_timeout(20_000)
    page = context.new_page()
    try:
        yield page
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            # What the browser showed when the test failed: the first thing to look at in CI.
            module = Path(str(request.node.fspath)).stem
            target = ARTIFACTS / module / request.node.name / "failure.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(target), full_page=True)
        context.close()


