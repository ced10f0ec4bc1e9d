"""Fixtures for the cluster tests: a CoreV1Api on the fast ``cluster``."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from kubernetes_asyncio import client

try:  # until sim-core's API server is merged into this branch
    import async_kubespawner.sim.testing  # noqa: F401
    HAVE_API_SERVER = True
except ImportError:
    HAVE_API_SERVER = False

from async_kubespawner.sim.cluster.testing import cluster, cluster_factory  # noqa: F401

needs_api_server = pytest.mark.skipif(
    not HAVE_API_SERVER, reason="the simulator's API server (sim-core) is not merged yet")


@pytest_asyncio.fixture
async def core(cluster: Any) -> AsyncIterator[client.CoreV1Api]:  # noqa: F811
    api_client = cluster.api_client()
    try:
        yield client.CoreV1Api(api_client)
    finally:
        await api_client.close()
