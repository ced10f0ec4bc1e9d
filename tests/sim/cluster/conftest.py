"""Fixtures for the cluster tests: a CoreV1Api on the fast ``cluster`` (from the sim
plugin), and one on a process-mode cluster whose containers are real processes."""

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from kubernetes_asyncio import client
from kubesim.cluster.config import ClusterConfig
from kubesim.cluster.testing import run_cluster

from .podprocess import descendants


@pytest_asyncio.fixture
async def core(cluster: Any) -> AsyncIterator[client.CoreV1Api]:
    api_client = cluster.api_client()
    try:
        yield client.CoreV1Api(api_client)
    finally:
        await api_client.close()


@pytest_asyncio.fixture
async def process_core(tmp_path: Path) -> AsyncIterator[client.CoreV1Api]:
    """A process-mode cluster (a clock 20x faster than real time); asserts no stray processes."""
    before = descendants(os.getpid())
    config = ClusterConfig(
        clock=0.05,
        process_mode=True,
        default_scenario="instant",
        process_root=str(tmp_path / "pods"),
    )
    async with run_cluster(config) as sim:
        api_client = sim.api_client()
        try:
            yield client.CoreV1Api(api_client)
        finally:
            await api_client.close()
    assert descendants(os.getpid()) - before == set(), "a pod process outlived the simulator"
