"""pytest fixtures for the simulator: ``simulator`` (API server only), ``api_client``,
``auth_simulator`` and ``sa_client`` (authentication and RBAC on; a client per ServiceAccount).

Registered for the whole suite from ``tests/conftest.py``. Each test gets a fresh
simulator on its own loopback port, so tests never share state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from .testing import Simulator, run_simulator


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "simulator_options(**options): Store options for the test's `simulator` fixture "
        "(e.g. root_ca_configmaps=False for a namespace without kube-root-ca.crt)",
    )


@pytest_asyncio.fixture
async def simulator(request: pytest.FixtureRequest) -> AsyncIterator[Simulator]:
    """A running API simulator (no nodes, scheduler or kubelet); a test's
    ``@pytest.mark.simulator_options(...)`` passes store options to it."""
    marker = request.node.get_closest_marker("simulator_options")
    options = dict(marker.kwargs) if marker is not None else {}
    async with run_simulator(**options) as sim:
        yield sim


@pytest_asyncio.fixture
async def api_client(simulator: Simulator) -> AsyncIterator[Any]:
    """A ``kubernetes_asyncio`` ApiClient for ``simulator``, closed after the test."""
    client = simulator.api_client()
    try:
        yield client
    finally:
        await client.close()

from .auth.testing import auth_simulator, sa_client  # noqa: E402,F401  (identities and RBAC)
from .cluster.testing import cluster, cluster_factory  # noqa: E402,F401  (the cluster fixtures)
