"""Operator mode on the simulated cluster: CRDs installed, a default template, operators in-process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from async_kubespawner.kube.client import KubeApi, build_api, close_shared_apis
from async_kubespawner.kube.reflector import ReflectorSettings, stop_reflectors
from async_kubespawner.operator import crds
from async_kubespawner.operator.app import Operator, OperatorSettings
from async_kubespawner.operator.kubeio import NOTEBOOK_SERVERS, NOTEBOOK_TEMPLATES
from async_kubespawner.operator.leader import LeaseSettings
from async_kubespawner.operator.models import API_VERSION
from async_kubespawner.operator.readiness import Tolerances
from async_kubespawner.operator.spawner import OperatorSpawner, stop_operator_reflectors
from async_kubespawner.testing import build_spawner

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "default"
CRD_KIND = "customresourcedefinitions"


def example_template() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "examples/operator/template.yaml").read_text())


def new_api(sim: Any, config: Any = None) -> KubeApi:
    return build_api(config or sim.client_configuration(), request_timeout=5.0, retry_timeout=10.0)


async def install_crds(api: KubeApi) -> None:
    for manifest in crds.all_crds():
        await api.request("create", CRD_KIND, "POST",
                          "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                          body=manifest)


class OperatorHarness:
    """A cluster with the CRDs and a template, and operator replicas started on demand."""

    def __init__(self, sim: Any, namespace: str = NAMESPACE, config: Any = None) -> None:
        self.sim = sim
        self.namespace = namespace
        self.api = new_api(sim, config)
        self.operators: list[Operator] = []
        self._apis: list[KubeApi] = []

    async def setup(self, template: dict[str, Any] | None = None) -> None:
        await install_crds(self.api)
        await self.api.create(NOTEBOOK_TEMPLATES, self.namespace, template or example_template())

    async def start_operator(
        self, identity: str = "op-a", config: Any = None, **overrides: Any
    ) -> Operator:
        api = new_api(self.sim, config)
        self._apis.append(api)
        settings = OperatorSettings(
            namespace=self.namespace,
            lease_namespace=self.namespace,
            identity=identity,
            lease=overrides.pop("lease", LeaseSettings(
                lease_duration=2.0, renew_deadline=1.5, retry_period=0.25)),
            resync_period=overrides.pop("resync_period", 30.0),
            tolerances=overrides.pop("tolerances", Tolerances(unschedulable=2.0)),
            reflector=ReflectorSettings(backoff_initial=0.05, backoff_max=0.5),
            **overrides,
        )
        operator = Operator(api, settings)
        await operator.start()
        self.operators.append(operator)
        return operator

    async def close(self) -> None:
        for operator in self.operators:
            with contextlib.suppress(Exception):
                await operator.stop()
        for api in [*self._apis, self.api]:
            await api.close()

    # -- reading the cluster ---------------------------------------------------------

    def store_items(self, plural: str) -> list[dict[str, Any]]:
        store = self.sim.store
        items, _ = store.list(store.resource(plural), self.namespace)
        return items

    async def server(self, name: str) -> dict[str, Any] | None:
        return await self.api.get_or_none(NOTEBOOK_SERVERS, self.namespace, name)

    async def wait_server(
        self, name: str, predicate: Callable[[dict[str, Any] | None], bool], timeout: float = 20  # noqa: ASYNC109
    ) -> dict[str, Any] | None:
        """Wait on a watch of the server (event-driven) until ``predicate`` holds."""
        async with asyncio.timeout(timeout):
            while True:
                current = await self.server(name)
                if predicate(current):
                    return current
                rv = (current or {}).get("metadata", {}).get("resourceVersion") or "0"
                if current is None:
                    listed = await self.api.list_page(NOTEBOOK_SERVERS, self.namespace)
                    rv = listed["metadata"]["resourceVersion"]
                async with self.api.watch_stream(
                    NOTEBOOK_SERVERS, self.namespace, resource_version=rv, timeout_seconds=5,
                    field_selector=f"metadata.name={name}",
                ) as resp:
                    async for _ in resp.content:
                        break


def notebook_server(name: str = "alice", user: str = "alice", server: str = "",
                    variables: dict[str, str] | None = None,
                    template: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION, "kind": "NotebookServer",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"templateRef": {"name": template}, "identity": {"user": user, "server": server},
                 "variables": variables or {}},
    }


@pytest.fixture
async def harness(cluster: Any) -> AsyncIterator[OperatorHarness]:
    h = OperatorHarness(cluster)
    await h.setup()
    try:
        yield h
    finally:
        await stop_operator_reflectors()
        await h.close()
        await stop_reflectors()
        await close_shared_apis()


def make_spawner(sim: Any, username: str = "alice", servername: str = "", **settings: Any
                 ) -> OperatorSpawner:
    """An OperatorSpawner as the hub builds it, against the simulator."""
    from traitlets.config import Config

    config = Config()
    config.OperatorSpawner = Config({"k8s_api_host": sim.url, "namespace": NAMESPACE,
                                     **settings})
    if "kubeconfig" in settings:
        config.OperatorSpawner.k8s_api_host = ""
    return build_spawner(OperatorSpawner, username, config=config, servername=servername)
