"""Running a simulated cluster in tests: ``run_cluster`` and the ``cluster`` pytest fixtures.

``cluster`` is the API simulator plus three nodes, the scheduler, the kubelet and the PVC
binder on the fast clock: pods go from Pending to Ready in milliseconds, through the
same statuses and events as on a real cluster. ``cluster_factory`` starts one with a
custom :class:`ClusterConfig` (nodes, scenarios, process mode).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest_asyncio

from .cluster import SimCluster
from .config import ClusterConfig


@asynccontextmanager
async def run_cluster(
    config: ClusterConfig | None = None, **simulator_options: Any
) -> AsyncIterator[Any]:
    """A running simulator with a :class:`SimCluster`; yields the ``Simulator``.

    The cluster itself is ``sim.controllers[0]`` (also ``sim.cluster``).
    """
    from kubesim.testing import run_simulator

    cluster = SimCluster(config or ClusterConfig.fast())
    async with run_simulator(controllers=[cluster], **simulator_options) as sim:
        sim.cluster = cluster
        yield sim


@pytest_asyncio.fixture
async def cluster() -> AsyncIterator[Any]:
    """Simulator + 3 nodes (4 cpu, 16Gi) + scheduler + kubelet + PVC binder, fast clock."""
    async with run_cluster(ClusterConfig.fast()) as sim:
        yield sim


@pytest_asyncio.fixture
async def cluster_factory() -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """``await cluster_factory(ClusterConfig.fast(nodes=[...]))`` → a running Simulator."""
    async with AsyncExitStack() as stack:

        async def make(config: ClusterConfig | None = None, **simulator_options: Any) -> Any:
            return await stack.enter_async_context(run_cluster(config, **simulator_options))

        yield make
