"""Fixtures for the cluster tests: a CoreV1Api on the fast ``cluster`` (from the sim plugin)."""

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from kubernetes_asyncio import client


@pytest_asyncio.fixture
async def core(cluster: Any) -> AsyncIterator[client.CoreV1Api]:
    api_client = cluster.api_client()
    try:
        yield client.CoreV1Api(api_client)
    finally:
        await api_client.close()
