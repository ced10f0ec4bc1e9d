"""``devtools.demo.main``: a signal once the banner is out is an orderly shutdown.

A user, or the e2e test, sends SIGTERM as soon as it reads "JupyterHub is running at":
the demo must already count as started then, and say "shutting down", not "stopped
while starting" (a CI run saw the banner printed before the start was marked over).
No program is started here: ``Demo.start`` is replaced, the ordering in ``main`` is real.
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from devtools import demo as demo_module

BANNER = "\n  JupyterHub is running at http://127.0.0.1:1/\n"


@pytest.fixture
def printed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """What ``main`` prints; printing the banner delivers SIGTERM to this process at once."""
    lines: list[str] = []

    def fake_print(*values: Any, **_kwargs: Any) -> None:
        text = " ".join(str(v) for v in values)
        lines.append(text)
        if text == BANNER:
            signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(demo_module, "print", fake_print, raising=False)
    monkeypatch.setattr(demo_module, "parse_args", lambda argv: argparse.Namespace())
    yield lines


def test_sigterm_as_the_banner_is_printed_shuts_down_in_order(
    printed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    guards: list[threading.Timer] = []

    def start(self: demo_module.Demo) -> str:
        # A guard, not synchronisation: were the banner never printed, end the wait.
        guard = threading.Timer(10, self.request_stop, args=("no signal arrived",))
        guard.daemon = True
        guard.start()
        guards.append(guard)
        return BANNER

    monkeypatch.setattr(demo_module.Demo, "start", start)
    try:
        assert demo_module.main([]) == 0
    finally:
        for guard in guards:
            guard.cancel()
    assert printed[0] == BANNER
    assert "\nshutting down: received SIGTERM" in printed
    assert not any("stopped while starting" in line for line in printed)


def test_sigterm_while_starting_abandons_the_start(
    printed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def start(self: demo_module.Demo) -> str:
        signal.raise_signal(signal.SIGTERM)
        raise AssertionError("the signal should have ended the start")

    monkeypatch.setattr(demo_module.Demo, "start", start)
    assert demo_module.main([]) == 0
    assert printed == ["\nstopped while starting: received SIGTERM"]
