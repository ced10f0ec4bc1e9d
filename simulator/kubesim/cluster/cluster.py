"""The simulated cluster as one controller: nodes, scheduler, kubelet and PVC binder.

``run_simulator(controllers=[SimCluster(ClusterConfig(...))])`` gives a cluster whose
pods really get scheduled and run; ``SimCluster`` is what ``python -m
kubesim`` and the ``cluster`` pytest fixture start.
"""

from __future__ import annotations

from typing import Any

from .clock import Clock
from .config import ClusterConfig
from .kubelet import Kubelet
from .nodes import SimNode, build_nodes
from .pvc import PVCBinder
from .runtime import ContainerRuntime, SimulatedRuntime
from .scenarios import ScenarioBook
from .scheduler import Scheduler
from .storeview import StoreLike, status_code


class SimCluster:
    """A ``Controller`` (docs/contracts.md §2) composed of the cluster's parts, started in order."""

    def __init__(self, config: ClusterConfig | None = None) -> None:
        self.config = config or ClusterConfig()
        self.config.validate()
        self.clock: Clock = self.config.make_clock()
        self.scenarios: ScenarioBook = self.config.make_scenarios()
        self.nodes: list[SimNode] = build_nodes(self.config.nodes)
        self.runtime: ContainerRuntime = self._make_runtime()
        self.pvc_binder = PVCBinder(
            self.config.storage_classes, self.config.persistent_volumes, self.clock
        )
        self.scheduler = Scheduler(self.nodes, self.scenarios, self.clock, self.pvc_binder)
        self.kubelet = Kubelet(self.nodes, self.scenarios, self.clock, self.runtime)
        self.store: StoreLike | None = None

    def _make_runtime(self) -> ContainerRuntime:
        if self.config.stub_servers:
            from .stubservers import StubServerRuntime

            return StubServerRuntime(self.clock, pod_ip_prefix=self.config.stub_ip_prefix)
        if not self.config.process_mode:
            return SimulatedRuntime(self.clock)
        from .processes import ProcessRuntime

        return ProcessRuntime(
            self.clock,
            image_commands=self.config.image_commands,
            root=self.config.process_root,
            pod_ip_prefix=self.config.pod_ip_prefix,
        )

    async def start(self, store: StoreLike) -> None:
        self.store = store
        await self._register_nodes(store)
        if hasattr(store, "pod_log_source"):
            store.pod_log_source = self.kubelet.pod_log  # sim-core's hook for pods/{name}/log
        await self.pvc_binder.start(store)
        await self.kubelet.start(store)
        await self.scheduler.start(store)

    async def stop(self) -> None:
        await self.scheduler.stop()
        await self.kubelet.stop()
        await self.pvc_binder.stop()

    async def _register_nodes(self, store: StoreLike) -> None:
        nodes_rt = store.resource("nodes")
        now = self.clock.timestamp()
        for node in self.nodes:
            body: dict[str, Any] = node.to_api(now)
            status = body.pop("status")
            try:
                await store.create(nodes_rt, None, body)
            except Exception as exc:
                if status_code(exc) != 409:
                    raise
            await store.patch(
                nodes_rt, None, node.name, {"status": status}, "merge", subresource="status"
            )
