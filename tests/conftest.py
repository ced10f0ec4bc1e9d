"""Shared pytest configuration: every test runs on asyncio (pytest-asyncio auto mode).

The simulator's fixtures (``simulator``, ``api_client``, ``cluster``, ``cluster_factory``)
come from the ``kubesim`` distribution's pytest plugin, registered by its entry point.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

_E2E = Path(__file__).parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the end-to-end tier last.

    Playwright's sync API keeps its own event loop on the main thread for as long as the
    session-scoped browser lives; asyncio tests collected after it would then find a loop
    already running. Putting e2e last keeps both tiers in one pytest run.
    """
    items.sort(key=lambda item: _E2E in Path(str(item.fspath)).parents)


# Property tests check what holds, never how fast: no per-example deadline (a loaded CI
# machine or the compatibility matrix running beside it must not turn a slow example
# into a failure), and no health check on slow data generation for the same reason.
settings.register_profile(
    "project", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("project")


@pytest.fixture(autouse=True)
def _collector_policy_per_test() -> Iterator[None]:
    """Each test starts with no burst-aware GC policy engaged and ends by giving the
    process's thresholds back, whatever spawners it started (see gc_policy.py)."""
    yield
    from async_kubespawner import gc_policy

    gc_policy.disengage()
