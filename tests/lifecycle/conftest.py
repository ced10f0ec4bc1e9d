"""Fixtures for lifecycle tests: the simulator, a scriptable kubelet, and spawner factories.

The tests play the kubelet themselves (a controller on the simulator's store, like a real
kubelet is a client of the API server): each pod gets a scripted fate — become ready,
fail to pull its image, crash, stay unschedulable, be evicted, or wait until the test
releases it — so every lifecycle path is exercised precisely and fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from jupyterhub import orm
from kubesim.store import Watch
from kubesim.testing import run_simulator

from async_kubespawner import KubeSpawner
from async_kubespawner.kube.client import close_shared_apis
from async_kubespawner.kube.reflector import stop_reflectors
from async_kubespawner.lifecycle.reconciler import stop_reconcilers
from async_kubespawner.testing import build_spawner, kubespawner_config

NAMESPACE = "default"
_ips = itertools.count(2)


Fate = Callable[["ScriptedKubelet", dict[str, Any]], Awaitable[None]]


class ScriptedKubelet:
    """Binds each new pod to node-1 and plays its scripted fate; honours deletions."""

    def __init__(self) -> None:
        self.fates: dict[str, Fate] = {}
        self.default_fate: Fate = become_ready
        self.store: Any = None
        self._task: asyncio.Task[None] | None = None
        self._fate_tasks: set[asyncio.Task[None]] = set()
        self.released: dict[str, asyncio.Event] = {}

    async def start(self, store: Any) -> None:
        self.store = store
        self.pods = store.resource("pods")
        self.events = store.resource("events")
        self._watch: Watch | None = None
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.close()
        for task in [self._task, *self._fate_tasks]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    async def _run(self) -> None:
        # Faults close every watch of the store (outages): reopen from where we were, as a
        # real kubelet would.
        rv = str(self.store.resource_version)
        while True:
            self._watch = self.store.watch(self.pods, None, resource_version=rv)
            async for event in self._watch:
                rv = event.object["metadata"].get("resourceVersion") or rv
                await self._handle(event)

    async def _handle(self, event: Any) -> None:
        if event.type in ("ADDED", "MODIFIED", "DELETED"):
            pod = event.object
            meta = pod["metadata"]
            if event.type == "ADDED":
                fate = self.fates.get(meta["name"], self.default_fate)
                task = asyncio.get_running_loop().create_task(self._play(fate, pod))
                self._fate_tasks.add(task)
                task.add_done_callback(self._fate_tasks.discard)
            elif event.type == "MODIFIED" and meta.get("deletionTimestamp"):
                with contextlib.suppress(Exception):
                    await self.store.delete(
                        self.pods,
                        meta["namespace"],
                        meta["name"],
                        grace_period_seconds=0,
                        preconditions={"uid": meta["uid"]},
                    )

    async def _play(self, fate: Fate, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        with contextlib.suppress(Exception):
            await self.store.bind(meta["namespace"], meta["name"], "node-1")
            await self.event(
                pod,
                "Scheduled",
                f"Successfully assigned {meta['namespace']}/{meta['name']} to node-1",
            )
        await fate(self, pod)

    # -- what fates use ---------------------------------------------------------------

    async def status(self, pod: dict[str, Any], status: dict[str, Any]) -> None:
        meta = pod["metadata"]
        with contextlib.suppress(Exception):
            await self.store.patch(
                self.pods,
                meta["namespace"],
                meta["name"],
                {"status": status},
                "merge",
                subresource="status",
            )

    async def event(
        self,
        pod: dict[str, Any],
        reason: str,
        message: str,
        type_: str = "Normal",
        kind: str = "Pod",
        name: str | None = None,
    ) -> None:
        meta = pod["metadata"]
        await self.store.create(
            self.events,
            meta["namespace"],
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"generateName": f"{name or meta['name']}-"},
                "involvedObject": {
                    "kind": kind,
                    "name": name or meta["name"],
                    "namespace": meta["namespace"],
                    "uid": meta["uid"] if kind == "Pod" else "pvc-uid",
                },
                "reason": reason,
                "message": message,
                "type": type_,
                "lastTimestamp": "2026-11-24T06:00:00Z",
            },
        )

    def hold(self, name: str) -> asyncio.Event:
        """Keep pod ``name`` pending until the returned event is set."""
        release = asyncio.Event()
        self.released[name] = release

        async def held(kubelet: ScriptedKubelet, pod: dict[str, Any]) -> None:
            await release.wait()
            await become_ready(kubelet, pod)

        self.fates[name] = held
        return release


def container_status(
    state: dict[str, Any],
    *,
    ready: bool = False,
    restarts: int = 0,
    last: dict[str, Any] | None = None,
) -> dict[str, Any]:
    status = {
        "name": "notebook",
        "ready": ready,
        "restartCount": restarts,
        "state": state,
        "image": "jupyter/base:1",
        "imageID": "",
    }
    if last:
        status["lastState"] = last
    return status


async def waiting(
    kubelet: ScriptedKubelet,
    pod: dict[str, Any],
    phase: str,
    reason: str,
    message: str,
    *,
    pod_ip: str | None = None,
    restarts: int = 0,
    last: dict[str, Any] | None = None,
) -> None:
    """Report the notebook container waiting for ``reason``: the shape every kubelet
    failure short of a terminated container takes in the pod's status."""
    status: dict[str, Any] = {"phase": phase}
    if pod_ip is not None:
        status["podIP"] = pod_ip
    status["containerStatuses"] = [
        container_status(
            {"waiting": {"reason": reason, "message": message}}, restarts=restarts, last=last
        )
    ]
    await kubelet.status(pod, status)


async def become_ready(kubelet: ScriptedKubelet, pod: dict[str, Any]) -> None:
    await kubelet.event(pod, "Pulled", "Container image already present on machine")
    await kubelet.event(pod, "Started", "Started container notebook")
    await kubelet.status(
        pod,
        {
            "phase": "Running",
            "podIP": f"10.1.{next(_ips) // 250}.{next(_ips) % 250 + 2}",
            "conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "PodScheduled", "status": "True"},
            ],
            "containerStatuses": [container_status({"running": {}}, ready=True)],
        },
    )


async def image_pull_fails(kubelet: ScriptedKubelet, pod: dict[str, Any]) -> None:
    await kubelet.event(pod, "Pulling", 'Pulling image "jupyter/nope:404"')
    await kubelet.event(
        pod, "Failed", 'Failed to pull image "jupyter/nope:404": not found', "Warning"
    )
    await waiting(
        kubelet, pod, "Pending", "ErrImagePull", 'rpc error: pull "jupyter/nope:404": not found'
    )


async def config_error(kubelet: ScriptedKubelet, pod: dict[str, Any]) -> None:
    """What a kubelet reports while a Secret the container needs does not exist."""
    await waiting(
        kubelet, pod, "Pending", "CreateContainerConfigError", 'secret "user-settings" not found'
    )


async def crash_loops(kubelet: ScriptedKubelet, pod: dict[str, Any]) -> None:
    await waiting(
        kubelet,
        pod,
        "Running",
        "CrashLoopBackOff",
        "back-off 10s restarting failed container",
        pod_ip="10.9.9.9",
        restarts=2,
        last={"terminated": {"exitCode": 3, "reason": "Error"}},
    )


async def notebook_exits(kubelet: ScriptedKubelet, pod: dict[str, Any]) -> None:
    await kubelet.status(
        pod,
        {
            "phase": "Running",
            "podIP": "10.9.9.8",
            "containerStatuses": [
                container_status({"terminated": {"exitCode": 127, "reason": "Error"}})
            ],
        },
    )


async def evicted(kubelet: ScriptedKubelet, pod: dict[str, Any]) -> None:
    await kubelet.status(
        pod,
        {
            "phase": "Failed",
            "reason": "Evicted",
            "message": "The node was low on resource: memory.",
        },
    )


async def not_scheduled(kubelet: ScriptedKubelet, pod: dict[str, Any], message: str) -> None:
    """Report the pod Pending with the scheduler's Unschedulable condition and ``message``."""
    condition = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": message,
    }
    await kubelet.status(pod, {"phase": "Pending", "conditions": [condition]})


async def unschedulable(kubelet: ScriptedKubelet, pod: dict[str, Any]) -> None:
    await not_scheduled(kubelet, pod, "0/3 nodes are available: 3 Insufficient memory.")


async def pvc_cannot_bind(kubelet: ScriptedKubelet, pod: dict[str, Any]) -> None:
    claim = next(
        (
            v["persistentVolumeClaim"]["claimName"]
            for v in pod["spec"].get("volumes") or []
            if v.get("persistentVolumeClaim")
        ),
        "claim-alice",
    )
    await kubelet.event(
        pod,
        "ProvisioningFailed",
        'storageclass.storage.k8s.io "fast" not found',
        "Warning",
        kind="PersistentVolumeClaim",
        name=claim,
    )
    await not_scheduled(
        kubelet,
        pod,
        "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims.",
    )


@pytest.fixture
def kubelet() -> ScriptedKubelet:
    return ScriptedKubelet()


@pytest.fixture
async def sim(kubelet):
    async with run_simulator(controllers=[kubelet]) as simulator:
        yield simulator
        await stop_reconcilers()
        await stop_reflectors()
        await close_shared_apis()


def spawner_factory(sim: Any) -> Callable[..., Any]:
    """Build KubeSpawners for user/server against the simulator ``sim``."""

    def make(
        username: str = "alice", servername: str = "", *, user_id: int = 7, **config: Any
    ) -> KubeSpawner:
        settings = {
            "k8s_api_host": sim.url,
            "namespace": NAMESPACE,
            "slow_spawn_message_threshold": 0,
            **config,
        }
        return build_spawner(
            KubeSpawner,
            username,
            user_id,
            config=kubespawner_config(settings),
            servername=servername,
        )

    return make


@pytest.fixture
def make_spawner(sim):
    return spawner_factory(sim)


@pytest.fixture
async def make_cluster_spawner(cluster):
    """Spawners against the simulated cluster (real scheduler, kubelet, PVC binder)."""
    yield spawner_factory(cluster)
    await stop_reflectors()
    await close_shared_apis()


def store_pods(sim) -> list[dict[str, Any]]:
    items, _ = sim.store.list(sim.store.resource("pods"), NAMESPACE)
    return items


def live_pods(sim: Any) -> list[str]:
    """Names of the pods in the store that are not being deleted."""
    return [p["metadata"]["name"] for p in store_pods(sim) if not p["metadata"].get("deletionTimestamp")]


@pytest.fixture
def hub_db() -> Any:
    """A real JupyterHub database (in memory), as the hub's session."""
    db = orm.new_session_factory("sqlite:///:memory:")()
    yield db
    db.close()


def record(db: Any, user: str, servers: dict[str, bool]) -> None:
    """The hub's record of ``user``: each server name → whether it is running."""
    orm_user = orm.User(name=user)
    db.add(orm_user)
    db.commit()
    for name, running in servers.items():
        orm_spawner = orm.Spawner(name=name, user=orm_user)
        if running:
            orm_spawner.server = orm.Server()
        db.add(orm_spawner)
    db.commit()
