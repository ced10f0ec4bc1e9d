"""Fixtures of the simulator tests (the simulator's own come from the kubesim plugin)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .support import KUBECTL


@pytest.fixture
def kubectl_installed() -> None:
    """A missing kubectl is a failed set-up, not a reason to skip a kubectl test."""
    if not Path(KUBECTL).exists():
        pytest.fail(
            f"{KUBECTL} is missing: `make test` installs it (scripts/install-system-deps.sh), "
            "or run `apt-get install -y kubernetes-client`"
        )
