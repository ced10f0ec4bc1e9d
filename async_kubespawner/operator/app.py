"""The operator process: reflectors, a work queue, workers, leader election, metrics and health.

Every replica runs the reflectors (so a standby's caches are warm when it takes over) and
serves health and metrics; only the replica holding the Lease runs workers. A worker
takes a NotebookServer key from the queue, runs one reconcile pass and, on an error,
puts the key back with a per-key backoff. Every watch event of a NotebookServer, of a
template it uses, of a pod or PVC it owns, and of an event about those, puts the key on
the queue; a periodic resync puts all of them there, so nothing depends on an event
being delivered exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..kube.client import (
    EVENTS,
    PODS,
    PVCS,
    ApiSettings,
    KubeApi,
    Priority,
    ResourceKind,
    build_api,
    load_configuration,
)
from ..kube.reflector import ApiListerWatcher, Reflector, ReflectorSettings
from ..lifecycle.tasks import cancel_and_wait
from ..startup_heap import freeze_startup_heap
from .kubeio import CLUSTER_NOTEBOOK_TEMPLATES, NOTEBOOK_SERVERS, NOTEBOOK_TEMPLATES
from .leader import LeaderElector, LeaseSettings
from .metrics import (
    CHILDREN,
    LEADER,
    QUEUE_DEPTH,
    RECONCILE_DURATION,
    RECONCILES,
    SERVERS_BY_PHASE,
)
from .models import LABEL_MANAGED_BY, MANAGED_BY
from .readiness import Tolerances
from .reconciler import (
    Key,
    NotifyingCache,
    NotifyingEvents,
    Obj,
    Reconciler,
    owner_name,
    trim_child,
    trim_child_pod,
    trim_server,
    trim_template,
)
from .workqueue import QueueShutDown, WorkQueue

log = logging.getLogger("async_kubespawner.operator")


@dataclass(frozen=True)
class OperatorSettings:
    namespace: str | None = None  # None: every namespace
    lease_namespace: str = "default"
    identity: str = ""
    lease: LeaseSettings = field(default_factory=LeaseSettings)
    workers: int = 32
    resync_period: float = 300.0
    cluster_templates: bool = True
    tolerances: Tolerances = field(default_factory=Tolerances)
    reflector: ReflectorSettings = field(default_factory=ReflectorSettings)
    #: Workers that may provision new servers at once; the others stay free for servers
    #: whose pod changed (a Ready verdict a hub waits for). None: no limit.
    provisioning_workers: int | None = 24
    #: The operator's API requests in flight at once, and of those at most
    #: ``creates_in_flight`` creates of new children and ``events_in_flight`` Event
    #: writes: what is in flight queues ahead of a Ready status write in the API server.
    #: Events are half of the operator's requests in a storm: given less than half the
    #: slots, they lag the steps they report by seconds (measured).
    #: Measured (operator_storm, 1,000 spawns): 64/32/32 without a reserve left a Ready
    #: write queued behind ~60 of the operator's own requests in the API server (status
    #: write p99 137 ms); 24/8/8 with 8 reserved, 56 ms, Events still ~0.2 s behind.
    requests_in_flight: int = 24
    creates_in_flight: int = 8
    events_in_flight: int = 8
    #: Of ``requests_in_flight``, slots only a verdict's status write (Ready, Failed), a
    #: read that verdict needs and the Lease may take: sent at once even while bulk work
    #: holds every other slot. At most a third of ``requests_in_flight`` (the rest must
    #: leave room for Events, creates and other writes together).
    critical_reserve: int = 8


class Operator:
    """One replica. ``await start()``, later ``await stop()`` (or ``kill()`` in tests)."""

    def __init__(self, api: KubeApi, settings: OperatorSettings) -> None:
        self.api = api
        self.settings = settings
        self.identity = settings.identity or f"{socket.gethostname()}-{os.getpid()}"
        self.queue: WorkQueue[Key] = self._new_queue()
        ns = settings.namespace
        self.servers = NotifyingCache(trim_server, self._server_changed)
        self.templates = NotifyingCache(trim_template, self._template_changed)
        self.cluster_templates = (
            NotifyingCache(trim_template, self._template_changed)
            if settings.cluster_templates else None
        )
        self.pods = NotifyingCache(trim_child_pod, self._child_changed)
        self.pvcs = NotifyingCache(trim_child, self._child_changed)
        self.events = NotifyingEvents(
            self._event_seen, kinds=frozenset({"Pod", "PersistentVolumeClaim"})
        )
        selector = f"{LABEL_MANAGED_BY}={MANAGED_BY}"
        rs = settings.reflector
        def source(kind: ResourceKind, namespace: str | None, **kw: Any) -> ApiListerWatcher:
            return ApiListerWatcher(api, kind, namespace, **kw)

        self.reflectors: list[Reflector[Any]] = [
            Reflector(source(NOTEBOOK_SERVERS, ns), self.servers, settings=rs),
            Reflector(source(NOTEBOOK_TEMPLATES, ns), self.templates, settings=rs),
            Reflector(source(PODS, ns, label_selector=selector), self.pods, settings=rs),
            Reflector(source(PVCS, ns, label_selector=selector), self.pvcs, settings=rs),
            # Not the Events this operator writes about NotebookServers (three per
            # spawn): it reads only those about pods and PVCs, and each one delivered is
            # API server and operator work for nothing.
            Reflector(source(EVENTS, ns, field_selector="involvedObject.kind!=NotebookServer"),
                      self.events, settings=rs),
        ]
        if self.cluster_templates is not None:
            self.reflectors.append(
                Reflector(source(CLUSTER_NOTEBOOK_TEMPLATES, None), self.cluster_templates,
                          settings=rs))
        self.reconciler = Reconciler(
            api,
            servers=self.servers,
            templates=self.templates,
            cluster_templates=self.cluster_templates,
            pods=self.pods,
            pvcs=self.pvcs,
            events=self.events,
            tolerances=settings.tolerances,
        )
        self.elector = LeaderElector(
            api, settings.lease_namespace, self.identity, settings.lease,
            on_change=self._leadership_changed,
        )
        self.reconciles = 0
        self._deferred: dict[Key, list[Obj]] = {}
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        # Status writes first, bulk creates and Events bounded (see OperatorSettings).
        self.api.configure_admission(self.settings.requests_in_flight, {
            Priority.BULK: self.settings.creates_in_flight,
            Priority.PROGRESS: self.settings.events_in_flight,
        }, reserve=min(self.settings.critical_reserve, self.settings.requests_in_flight // 3))
        for reflector in self.reflectors:
            reflector.start()
        CHILDREN.labels("Pod").set_function(lambda: len(self.pods))
        CHILDREN.labels("PersistentVolumeClaim").set_function(lambda: len(self.pvcs))
        self._task = asyncio.get_running_loop().create_task(
            self.elector.run(self._lead), name=f"operator {self.identity}")

    @property
    def is_leader(self) -> bool:
        return self.elector.is_leader

    @property
    def synced(self) -> bool:
        return all(r.synced for r in self.reflectors)

    async def wait_synced(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        results = await asyncio.gather(*(r.wait_synced(timeout) for r in self.reflectors))
        return all(results)

    async def stop(self) -> None:
        """Clean shutdown: stop leading, give the Lease up, stop the reflectors."""
        await self._cancel()
        await self.reconciler.drain(5.0)
        await self.elector.release()
        await asyncio.gather(*(r.stop() for r in self.reflectors))

    async def kill(self) -> None:
        """As if the process died: everything stops, the Lease is *not* released."""
        await self._cancel()
        self.reconciler.abandon()
        await asyncio.gather(*(r.stop() for r in self.reflectors))

    async def _cancel(self) -> None:
        self.queue.shutdown()
        await cancel_and_wait(self._task)

    def _new_queue(self) -> WorkQueue[Key]:
        return WorkQueue(on_depth=QUEUE_DEPTH.set,
                         max_normal_in_progress=self.settings.provisioning_workers)

    def _leadership_changed(self, leading: bool) -> None:
        LEADER.set(1 if leading else 0)

    # -- leading -------------------------------------------------------------------------

    async def _lead(self) -> None:
        """Run while holding the Lease: workers and the periodic resync."""
        self.queue = self._new_queue()
        self._deferred.clear()
        await self.wait_synced()
        workers = [
            asyncio.ensure_future(self._worker(i)) for i in range(self.settings.workers)
        ]
        try:
            while True:
                self.resync()
                await asyncio.sleep(self.settings.resync_period)
        finally:
            self.queue.shutdown()
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            if not self.elector.is_leader:
                self.reconciler.abandon()  # a former leader writes nothing more

    def resync(self) -> None:
        """Queue a pass for every known server and refresh the per-phase gauge.

        What each resync period does; public so a caller (the throughput benchmark) can
        ask for one at once rather than wait ``resync_period``.
        """
        phases: dict[str, int] = {}
        for key in self.servers.keys():
            server = self.servers.get(key) or {}
            self.queue.add(key, urgent=started(server))
            phase = (server.get("status") or {}).get("phase") or "Pending"
            phases[phase] = phases.get(phase, 0) + 1
        for phase in ("Pending", "Provisioning", "Starting", "Ready", "Failed", "Terminating"):
            SERVERS_BY_PHASE.labels(phase).set(phases.get(phase, 0))

    async def _worker(self, number: int) -> None:
        queue = self.queue
        while True:
            try:
                key = await queue.get()
            except QueueShutDown:
                return
            started = time.monotonic()
            outcome = "ok"
            try:
                result = await self.reconciler.reconcile(key)
                queue.forget(key)
                if result.requeue_after is not None:
                    outcome = "requeue"
                    queue.add_after(key, result.requeue_after, urgent=self._started(key))
            except asyncio.CancelledError:
                raise
            except Exception as e:
                outcome = "error"
                delay = queue.retry(key, urgent=self._started(key))
                log.warning("reconcile of %s/%s failed (%s: %s); retrying in %.2fs",
                            key[0], key[1], type(e).__name__, e, delay)
            finally:
                self._settle_deferred(key)
                queue.done(key)
                self.reconciles += 1
                RECONCILES.labels(outcome).inc()
                RECONCILE_DURATION.labels(outcome).observe(time.monotonic() - started)

    # -- what enqueues a server -------------------------------------------------------------

    def _server_changed(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        if self.queue.is_processing(key):
            # Often the echo of the running pass's own status write, delivered before the
            # write's response: decided when the pass ends (see _settle_deferred).
            self._deferred.setdefault(key, []).append({"metadata": {
                "namespace": key[0], "name": key[1],
                "resourceVersion": meta.get("resourceVersion"),
                "generation": meta.get("generation")}})
            return
        if self.reconciler.own_echo(obj):
            return  # this replica's own status write coming back: nothing new to do
        self.queue.add(key, urgent=started(obj))

    def _started(self, key: Key) -> bool:
        server = self.servers.get(key)
        return server is not None and started(server)

    def _settle_deferred(self, key: Key) -> None:
        """After a pass: queue the server again if a change other than the pass's own
        status writes arrived while it ran (the workqueue's "dirty" rule, minus echoes)."""
        arrived = self._deferred.pop(key, None)
        if arrived and not all([self.reconciler.own_echo(obj) for obj in arrived]):
            self.queue.add(key, urgent=self._started(key))

    def _template_changed(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        name = meta.get("name")
        namespace = meta.get("namespace") or ""
        for key in self.servers.keys():
            if namespace and key[0] != namespace:
                continue
            server = self.servers.get(key) or {}
            ref = (server.get("spec") or {}).get("templateRef") or {}
            if ref.get("name") == name:
                self.queue.add(key)

    def _child_changed(self, obj: Obj) -> None:
        owner = owner_name(obj)
        if owner:
            # A child's change moves a started server on (to Ready, or to a failure the
            # user is waiting to hear about): ahead of servers not yet provisioned.
            key = ((obj.get("metadata") or {}).get("namespace") or "", owner)
            self.queue.add(key, urgent=True)

    def _event_seen(self, event: Obj) -> None:
        involved = event.get("involvedObject") or {}
        namespace = involved.get("namespace") or ""
        cache = self.pods if involved.get("kind") == "Pod" else self.pvcs
        child = cache.get((namespace, involved.get("name") or ""))
        if child is not None:
            self._child_changed(child)

    # -- health ---------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "leader": self.is_leader,
            "synced": self.synced,
            "reflectors": [
                {"name": r.name, "running": r.running, "synced": r.synced,
                 "errors": r.errors, "last_error": r.last_error}
                for r in self.reflectors
            ],
            "queue_depth": len(self.queue),
            "reconciles": self.reconciles,
        }

    @property
    def healthy(self) -> bool:
        running = all(r.running for r in self.reflectors)
        campaigning = self._task is not None and not self._task.done()
        return running and campaigning


def started(server: Obj) -> bool:
    """Whether a pass over ``server`` finishes (or stops) a server rather than provisions
    a new one: its children exist, or it is being deleted. Those passes go first (see
    :class:`WorkQueue`): each is a user waiting on a verdict, and each is cheap."""
    meta = server.get("metadata") or {}
    return bool((server.get("status") or {}).get("children") or meta.get("deletionTimestamp"))


def health_app(operator: Operator) -> web.Application:
    """``/healthz`` (alive), ``/readyz`` (caches loaded) and ``/metrics`` (Prometheus)."""

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response(operator.health(), status=200 if operator.healthy else 503)

    async def readyz(request: web.Request) -> web.Response:
        return web.json_response(operator.health(), status=200 if operator.synced else 503)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


async def make_api(host: str = "", kubeconfig: str = "") -> KubeApi:
    """The operator's own API client: ``$KUBECONFIG``/in-cluster config, or ``host``."""
    settings = ApiSettings(host=host, kubeconfig=kubeconfig)
    configuration = await load_configuration(settings)
    return build_api(configuration, request_timeout=10.0, retry_timeout=30.0)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="async-kubespawner-operator",
        description="Provision JupyterHub servers (NotebookServers) from NotebookTemplates.",
    )
    parser.add_argument("--namespace", default=None,
                        help="watch this namespace only (default: every namespace)")
    parser.add_argument("--lease-namespace", default=None,
                        help="namespace of the leader Lease (default: --namespace, "
                        "$POD_NAMESPACE, or 'default')")
    parser.add_argument("--lease-name", default=LeaseSettings.name)
    parser.add_argument("--identity", default="", help="this replica's name (default: host-pid)")
    parser.add_argument("--workers", type=int, default=32,
                        help="concurrent reconcile passes (they wait on the API, not the CPU)")
    parser.add_argument("--resync-period", type=float, default=300.0)
    parser.add_argument("--provisioning-workers", type=int,
                        default=OperatorSettings.provisioning_workers,
                        help="workers that may provision new servers at once; the others "
                        "stay free for servers whose pod changed (0: no limit)")
    parser.add_argument("--requests-in-flight", type=int,
                        default=OperatorSettings.requests_in_flight,
                        help="API requests in flight at once (status writes go first)")
    parser.add_argument("--creates-in-flight", type=int,
                        default=OperatorSettings.creates_in_flight,
                        help="of those, creates of new children at most")
    parser.add_argument("--events-in-flight", type=int,
                        default=OperatorSettings.events_in_flight,
                        help="of those, Event writes at most (the rest wait, none dropped)")
    parser.add_argument("--critical-reserve", type=int,
                        default=OperatorSettings.critical_reserve,
                        help="of those, slots kept for status verdicts and the Lease")
    parser.add_argument("--health-port", type=int, default=8080,
                        help="port of /healthz, /readyz and /metrics (0: off)")
    parser.add_argument("--health-address", default="0.0.0.0")
    parser.add_argument("--no-cluster-templates", action="store_true",
                        help="do not watch ClusterNotebookTemplates")
    parser.add_argument("--kubeconfig", default="", help="default: $KUBECONFIG or in-cluster")
    parser.add_argument("--api-host", default="", help="override the API server URL")
    parser.add_argument("--unschedulable-tolerance", type=float, default=300.0)
    parser.add_argument("--image-pull-error-tolerance", type=float, default=0.0)
    parser.add_argument("--config-error-tolerance", type=float, default=10.0)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers {args.workers}: at least one worker is needed")
    if args.provisioning_workers < 0:
        parser.error(f"--provisioning-workers {args.provisioning_workers}: 0 (no limit) "
                     "or more")
    for name in ("requests_in_flight", "creates_in_flight", "events_in_flight"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} {getattr(args, name)}: at least one "
                         "request must be allowed")
    if not 0 <= args.critical_reserve <= args.requests_in_flight // 3:
        parser.error(f"--critical-reserve {args.critical_reserve}: 0 to a third of "
                     f"--requests-in-flight {args.requests_in_flight}")
    if args.resync_period <= 0:
        parser.error(f"--resync-period {args.resync_period}: must be a positive number of seconds")
    for name in ("unschedulable_tolerance", "image_pull_error_tolerance",
                 "config_error_tolerance"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} {getattr(args, name)}: a tolerance "
                         "cannot be negative")
    if not 0 <= args.health_port < 65536:
        parser.error(f"--health-port {args.health_port}: must be 0 (off) to 65535")
    return args


def settings_from_args(args: argparse.Namespace) -> OperatorSettings:
    lease_namespace = (
        args.lease_namespace or args.namespace or os.environ.get("POD_NAMESPACE") or "default"
    )
    return OperatorSettings(
        namespace=args.namespace,
        lease_namespace=lease_namespace,
        identity=args.identity,
        lease=LeaseSettings(name=args.lease_name),
        workers=args.workers,
        resync_period=args.resync_period,
        provisioning_workers=args.provisioning_workers or None,
        requests_in_flight=args.requests_in_flight,
        creates_in_flight=args.creates_in_flight,
        events_in_flight=args.events_in_flight,
        critical_reserve=args.critical_reserve,
        cluster_templates=not args.no_cluster_templates,
        tolerances=Tolerances(
            image_pull=args.image_pull_error_tolerance,
            config_error=args.config_error_tolerance,
            unschedulable=args.unschedulable_tolerance,
        ),
    )


async def run(args: argparse.Namespace, *, ready: Callable[[Operator], Awaitable[None]] | None = None) -> None:
    api = await make_api(args.api_host, args.kubeconfig)
    operator = Operator(api, settings_from_args(args))
    runner: web.AppRunner | None = None
    if args.health_port:
        runner = web.AppRunner(health_app(operator))
        await runner.setup()
        await web.TCPSite(runner, args.health_address, args.health_port).start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stopping.set)
    await operator.start()
    log.info("operator %s started (namespace %s, lease %s/%s)", operator.identity,
             args.namespace or "*", operator.settings.lease_namespace,
             operator.settings.lease.name)
    if ready is not None:
        await ready(operator)
    try:
        await stopping.wait()
    finally:
        await operator.stop()
        if runner is not None:
            await runner.cleanup()
        await api.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The process's start-up heap (modules, settings) lives until exit: keep it out of
    # every later full collection, which would otherwise stall reconciles in a storm
    # (the same policy as the hub's, see startup_heap.py).
    freeze_startup_heap()
    asyncio.run(run(args))
    return 0
