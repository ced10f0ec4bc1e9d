"""The kubelet: runs the pods bound to simulated nodes and reports them like a real node.

One :class:`Kubelet` controller serves all simulated nodes (each event still names its own
node as ``source.host``). Every bound pod gets a :class:`PodWorker` task that walks it
through sandbox creation, image pulls, init containers in order, the containers, readiness,
crashes and restarts under the pod's restartPolicy, eviction, and graceful deletion —
writing status and events at each step in the order a real kubelet does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from kubesim.errors import bad_request

from .clock import Clock
from .containerlogs import LogOptions
from .events import (
    PullFailure,
    container_field_path,
    crash_backoff_message,
    crash_waiting_message,
    kubelet_event,
    node_event,
    pulled_message,
)
from .nodes import SimNode
from .podstatus import (
    ContainerRecord,
    build_pod_status,
    new_container_id,
    running,
    terminated,
    waiting,
)
from .processes import ContainerConfigError, ContainerStartError
from .runtime import (
    ContainerLaunch,
    ContainerRuntime,
    ExitStatus,
    RunningContainer,
    SimulatedRuntime,
)
from .scenarios import ResolvedScenario, ScenarioBook
from .storeview import (
    StoreLike,
    cancel_all,
    is_missing,
    key_of,
    list_and_watch,
    patch_status,
    record,
    spawn,
)

log = logging.getLogger("kubesim.cluster.kubelet")


async def _first_done(*futures: asyncio.Future[Any]) -> None:
    """Wait until one of ``futures`` is done: ``asyncio.wait(..., FIRST_COMPLETED)``
    without the result sets.

    Why not ``asyncio.wait``: it checks every argument for a coroutine (an ABC
    ``isinstance`` that is slow for a plain future) and builds three sets, and each pod's
    termination waits like this two or three times, a thousand pods at once in a burst.
    The wake-up is the same as ``asyncio.wait``'s (a done callback, so a future that is
    already done still lets the loop turn once) and, like it, cancelling the waiter
    leaves the futures alone.
    """
    waiter = asyncio.get_running_loop().create_future()

    def wake(_: asyncio.Future[Any]) -> None:
        if not waiter.done():
            waiter.set_result(None)

    for future in futures:
        future.add_done_callback(wake)
    try:
        await waiter
    finally:
        for future in futures:
            future.remove_done_callback(wake)

class _ContainerDone(Exception):
    """A container that could not start and will not be restarted (restartPolicy)."""


BACKOFF_INITIAL = 10.0  # kubelet's crash and image-pull back-off, cluster seconds
BACKOFF_MAX = 300.0
EVENT_BURST = 25  # the client-go spam filter: repeats beyond this are dropped


def _backoff(attempt: int) -> float:
    return min(BACKOFF_INITIAL * (2 ** max(0, attempt - 1)), BACKOFF_MAX)


class PodWorker:
    """The life of one pod on one node."""

    def __init__(self, kubelet: Kubelet, pod: dict[str, Any], node: SimNode) -> None:
        self.kubelet = kubelet
        self.pod = pod
        self.node = node
        self.clock = kubelet.clock
        spec = pod.get("spec") or {}
        self.spec = spec
        self.restart_policy = spec.get("restartPolicy", "Always")
        self.init_specs: list[dict[str, Any]] = list(spec.get("initContainers") or [])
        self.container_specs: list[dict[str, Any]] = list(spec.get("containers") or [])
        self.init = [
            ContainerRecord(
                c["name"],
                c.get("image", ""),
                init=True,
                spec=c,
                state=waiting("PodInitializing" if i else "ContainerCreating"),
            )
            for i, c in enumerate(self.init_specs)
        ]
        initial = "PodInitializing" if self.init_specs else "ContainerCreating"
        self.containers = [
            ContainerRecord(c["name"], c.get("image", ""), spec=c, state=waiting(initial))
            for c in self.container_specs
        ]
        if self.init:
            self.init[0].state = waiting("PodInitializing")
        self.pod_ip: str | None = None
        self.sandbox_ready = False
        self.start_time = self.clock.timestamp()
        self.running: dict[str, RunningContainer] = {}
        self.deleting = asyncio.Event()
        self.grace_shortened = asyncio.Event()  # a later delete asked for less time
        # futures that ``mark_deleting`` resolves, for the waits that race a deletion
        # against something else (asyncio.wait on a future needs no task)
        self._deletion: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._grace_change: asyncio.Future[None] | None = None
        self.terminal = False
        # the pod's deletion was requested by this worker (its grace-0 DELETE went in):
        # what the watch still has to say about the pod is history, not a new pod to run
        self.finished = False
        self._phase_override: str | None = None
        self._reason: str | None = None
        self._message: str | None = None
        self._extra_conditions: list[dict[str, Any]] = []
        self._lock = asyncio.Lock()
        self._event_counts: dict[tuple[str, str, str], tuple[str, int]] = {}
        self.scenario: ResolvedScenario
        self.scenario, self.scenario_error = kubelet.scenarios.for_pod_lenient(pod)

    @property
    def store(self) -> StoreLike:
        assert self.kubelet.store is not None
        return self.kubelet.store

    # ------------------------------------------------------------ reporting

    async def write_status(self) -> None:
        async with self._lock:
            status = build_pod_status(
                self.pod,
                now=self.clock.timestamp(),
                init=self.init,
                containers=self.containers,
                sandbox_ready=self.sandbox_ready,
                host_ip=self.node.internal_ip,
                pod_ip=self.pod_ip,
                start_time=self.start_time,
                phase_override=self._phase_override,
                reason=self._reason,
                message=self._message,
                extra_conditions=self._extra_conditions,
            )
            updated = await patch_status(self.store, self.kubelet.pods_rt, self.pod, status)
            if updated is not None:
                self.pod = updated

    async def event(
        self,
        reason: str,
        message: str,
        *,
        type_: str = "Normal",
        record_for: ContainerRecord | None = None,
    ) -> None:
        """Record an event; repeats of the same event bump its count (client-go aggregation)."""
        field_path = (
            container_field_path(record_for.name, record_for.init)
            if record_for is not None
            else None
        )
        key = (reason, message, field_path or "")
        seen = self._event_counts.get(key)
        if seen is not None:
            name, count = seen
            if count >= EVENT_BURST:
                return
            self._event_counts[key] = (name, count + 1)
            with contextlib.suppress(Exception):
                await self.store.patch(
                    self.kubelet.events_rt,
                    key_of(self.pod)[0],
                    name,
                    {"count": count + 1, "lastTimestamp": self.clock.timestamp()},
                    "merge",
                )
            return
        ev = kubelet_event(
            self.pod, self.node.name, reason, message, type_=type_, field_path=field_path
        )
        self._event_counts[key] = (ev["metadata"]["name"], 1)
        await record(self.store, ev)

    # ------------------------------------------------------------ the life of the pod

    def mark_deleting(self, *, shortened: bool) -> None:
        """The pod has a deletionTimestamp (``shortened``: a later delete cut its grace)."""
        if shortened:
            self.grace_shortened.set()
            if self._grace_change is not None and not self._grace_change.done():
                self._grace_change.set_result(None)
        self.deleting.set()
        if not self._deletion.done():
            self._deletion.set_result(None)

    async def run(self) -> None:
        await self.write_status()
        if self.scenario_error:
            await self.event(
                "InvalidScenario",
                f"{self.scenario_error}; using the default scenario",
                type_="Warning",
            )
        life = asyncio.ensure_future(self._lifecycle())
        try:
            await _first_done(life, self._deletion)
            if life.done() and not life.cancelled() and life.exception() is not None:
                log.error(
                    "pod %s/%s lifecycle failed", *key_of(self.pod), exc_info=life.exception()
                )
            if not self.deleting.is_set():
                await self.deleting.wait()  # finished on its own: stays until someone deletes it
        finally:
            life.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await life
        await self._terminate()

    async def _lifecycle(self) -> None:
        s = self.scenario
        await self.clock.sleep(s.seconds("sandbox_delay"))
        self.pod_ip = self.kubelet.runtime.allocate_pod_ip(self.pod, self.node)
        self.sandbox_ready = True
        await self.write_status()
        for index, (rec, spec) in enumerate(zip(self.init, self.init_specs, strict=True)):
            rec.state = waiting("PodInitializing")
            if not await self._run_init(rec, spec):
                return
            if index + 1 < len(self.init):
                self.init[index + 1].state = waiting("PodInitializing")
        if self.init:
            for rec in self.containers:
                rec.state = waiting("ContainerCreating")
            await self.write_status()
        started: list[tuple[int, ContainerRecord, dict[str, Any]]] = []
        for index, (rec, spec) in enumerate(
            zip(self.containers, self.container_specs, strict=True)
        ):
            await self._pull(rec, spec, main=index == 0)
            try:
                await self._start(rec, spec, main=index == 0)
            except _ContainerDone:
                continue
            started.append((index, rec, spec))
        supervisors = [
            asyncio.ensure_future(self._supervise(rec, spec, main=i == 0))
            for i, rec, spec in started
        ]
        try:
            everything = asyncio.gather(*supervisors)
            # retrieve the outcome even when nobody awaits it (eviction, deletion)
            everything.add_done_callback(lambda f: f.cancelled() or f.exception())
            if s.evict_after is None:
                await everything
                return
            timer = asyncio.ensure_future(self.clock.sleep(s.seconds("evict_after")))
            await _first_done(everything, timer)
            timer.cancel()
            if not everything.done():
                for task in supervisors:
                    task.cancel()
                await asyncio.gather(*supervisors, return_exceptions=True)
                await self._evict()
        finally:
            for task in supervisors:
                task.cancel()

    async def _pull(self, rec: ContainerRecord, spec: dict[str, Any], *, main: bool) -> None:
        """Pull the image (or find it present); a failing pull backs off forever, as for real."""
        s = self.scenario
        image = spec.get("image", "")
        fails = main and s.pull_fails
        cached = image in self.kubelet.node_images.get(self.node.name, set())
        policy = spec.get("imagePullPolicy") or "IfNotPresent"
        if not fails and (s.image_present or (cached and policy != "Always") or policy == "Never"):
            await self.event(
                "Pulled", f'Container image "{image}" already present on machine', record_for=rec
            )
            rec.image_pulled = True
            return
        attempt = 0
        while True:
            attempt += 1
            await self.event("Pulling", f'Pulling image "{image}"', record_for=rec)
            took = s.seconds("pull")
            await self.clock.sleep(took)
            if not fails:
                await self.event(
                    "Pulled", pulled_message(image, took, s.image_size), record_for=rec
                )
                self.kubelet.node_images.setdefault(self.node.name, set()).add(image)
                rec.image_pulled = True
                return
            failure = PullFailure(image)
            await self.event("Failed", failure.failed_message, type_="Warning", record_for=rec)
            await self.event("Failed", "Error: ErrImagePull", type_="Warning", record_for=rec)
            rec.state = waiting("ErrImagePull", failure.error)
            await self.write_status()
            await self.event("BackOff", failure.backoff_message, record_for=rec)
            await self.event("Failed", "Error: ImagePullBackOff", type_="Warning", record_for=rec)
            rec.state = waiting("ImagePullBackOff", failure.waiting_backoff_message)
            await self.write_status()
            await self.clock.sleep(_backoff(attempt))

    async def _start(self, rec: ContainerRecord, spec: dict[str, Any], *, main: bool) -> None:
        """Create and start a container; configuration and start errors are reported and retried."""
        s = self.scenario
        attempt = 0
        while True:
            attempt += 1
            uid = str(self.pod["metadata"].get("uid"))
            rec.container_id = new_container_id(uid, rec.name, rec.restart_count)
            assert self.pod_ip is not None
            try:
                await self.clock.sleep(s.seconds("create"))
                container = await self.kubelet.runtime.start(
                    ContainerLaunch(
                        pod=self.pod,
                        container=spec,
                        main=main,
                        pod_ip=self.pod_ip,
                        node=self.node,
                        scenario=s,
                        restart_count=rec.restart_count,
                    )
                )
            except ContainerConfigError as exc:
                # the container was never created: CreateContainerConfigError, retried
                rec.container_id = None
                rec.state = waiting("CreateContainerConfigError", str(exc))
                await self.write_status()
                await self.event("Failed", f"Error: {exc}", type_="Warning", record_for=rec)
                await self.clock.sleep(_backoff(attempt))
                continue
            except ContainerStartError as exc:
                await self.event("Created", f"Created container: {rec.name}", record_for=rec)
                await self.event("Failed", f"Error: {exc}", type_="Warning", record_for=rec)
                now = self.clock.timestamp()
                rec.state = terminated(
                    128, "StartError", now, now, rec.container_id, message=str(exc)
                )
                await self.write_status()
                if not self._should_restart(ExitStatus(128)):
                    raise _ContainerDone() from exc
                rec.last_state = rec.state
                rec.state = waiting(
                    "CrashLoopBackOff", crash_waiting_message(rec.name, self.pod, _backoff(attempt))
                )
                await self.write_status()
                await self.clock.sleep(_backoff(attempt))
                rec.restart_count += 1
                continue
            break
        self.running[rec.name] = container
        await self.event("Created", f"Created container: {rec.name}", record_for=rec)
        await self.event("Started", f"Started container {rec.name}", record_for=rec)
        rec.state = running(self.clock.timestamp())
        rec.started = "startupProbe" not in spec  # else once the startup probe passes
        rec.ready = False
        await self.write_status()

    async def _run_init(self, rec: ContainerRecord, spec: dict[str, Any]) -> bool:
        """Run one init container to completion (every scenario's init containers exit 0)."""
        await self._pull(rec, spec, main=False)
        await self._start(rec, spec, main=False)
        await self.clock.sleep(self.scenario.seconds("init_duration"))
        self.running.pop(rec.name, None)
        started = rec.state.get("running", {}).get("startedAt")
        rec.state = terminated(0, "Completed", started, self.clock.timestamp(), rec.container_id)
        rec.started = False
        await self.write_status()
        return True

    async def _supervise(self, rec: ContainerRecord, spec: dict[str, Any], *, main: bool) -> None:
        """Follow a running container: readiness, exit, restart with back-off per restartPolicy."""
        crashes = 0
        while True:
            container = self.running[rec.name]
            change = await container.next_change()
            if change.kind == "ready":
                rec.ready = True
                await self.write_status()
                continue
            if change.kind == "unready":
                if rec.ready:
                    rec.ready = False
                    await self.write_status()
                await self.event("Unhealthy", change.message, type_="Warning", record_for=rec)
                continue
            if change.kind == "started":
                rec.started = True
                await self.write_status()
                continue
            if change.kind == "unhealthy":
                await self.event("Unhealthy", change.message, type_="Warning", record_for=rec)
                continue
            if change.kind == "probe-kill":
                # a failed liveness/startup probe: kill with the probe's (or the pod's) grace
                # period, then restart unless restartPolicy is Never, whatever the exit code
                await self.event("Killing", change.message, record_for=rec)
                grace = change.grace
                if grace is None:
                    grace = float(self.spec.get("terminationGracePeriodSeconds", 30))
                status = await container.stop(grace)
                self.running.pop(rec.name, None)
                await self._record_exit(rec, status)
                await self.write_status()
                if self.restart_policy == "Never":
                    return
            else:
                assert change.exit is not None
                self.running.pop(rec.name, None)
                await self._record_exit(rec, change.exit)
                await self.write_status()
                if not self._should_restart(change.exit):
                    return
            crashes += 1
            rec.last_state = rec.state
            if crashes > 1:  # the first restart is immediate, later ones back off
                backoff = _backoff(crashes - 1)
                rec.state = waiting(
                    "CrashLoopBackOff", crash_waiting_message(rec.name, self.pod, backoff)
                )
                await self.write_status()
                await self.event(
                    "BackOff",
                    crash_backoff_message(rec.name, self.pod),
                    type_="Warning",
                    record_for=rec,
                )
                await self.clock.sleep(backoff)
            rec.restart_count += 1
            await self.event(
                "Pulled",
                f'Container image "{spec.get("image", "")}" already present on machine',
                record_for=rec,
            )
            try:
                await self._start(rec, spec, main=main)
            except _ContainerDone:
                return

    def _should_restart(self, status: ExitStatus) -> bool:
        if self.restart_policy == "Always":
            return True
        return self.restart_policy == "OnFailure" and status.code != 0

    async def _record_exit(self, rec: ContainerRecord, status: ExitStatus) -> None:
        started = rec.state.get("running", {}).get("startedAt")
        rec.state = terminated(
            status.code,
            status.reason,
            started,
            self.clock.timestamp(),
            rec.container_id,
            signal=status.signal,
            message=status.message,
        )
        rec.ready = False
        rec.started = False
        if status.reason == "OOMKilled":
            self.kubelet.oom_sequence += 1
            pid = 4000 + self.kubelet.oom_sequence
            await record(
                self.store,
                node_event(
                    self.node.name,
                    "OOMKilling",
                    f"Memory cgroup out of memory: Killed process {pid} ({rec.name}) "
                    "total-vm:2097152kB, anon-rss:1048576kB, file-rss:0kB, shmem-rss:0kB, "
                    "UID:1000 pgtables:2048kB oom_score_adj:999",
                ),
            )

    async def _evict(self) -> None:
        """Node-pressure eviction: the pod fails with reason Evicted and stays until deleted."""
        main = self.containers[0] if self.containers else None
        using = "2Gi"
        request = "0"
        if main is not None:
            spec = self.container_specs[0]
            request = ((spec.get("resources") or {}).get("requests") or {}).get("memory", "0")
        message = (
            f"The node was low on resource: memory. Threshold quantity: 100Mi, available: "
            f"51200Ki. Container {main.name if main else '?'} was using {using}, "
            f"request is {request}, has larger consumption of memory. "
        )
        await self.event("Evicted", message, type_="Warning")
        await self._stop_containers(grace=0)
        self._phase_override = "Failed"
        self._reason = "Evicted"
        self._message = message
        self._extra_conditions = [
            {
                "type": "DisruptionTarget",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": self.clock.timestamp(),
                "reason": "TerminationByKubelet",
                "message": message,
            }
        ]
        self.terminal = True
        await self.write_status()

    async def _stop_containers(self, grace: float) -> None:
        """Killing event per running container, then stop them all within ``grace``."""
        victims = [
            (rec, self.running[rec.name])
            for rec in [*self.init, *self.containers]
            if rec.name in self.running and rec.is_running
        ]
        for rec, _ in victims:
            await self.event("Killing", f"Stopping container {rec.name}", record_for=rec)
        loop = asyncio.get_running_loop()
        started = loop.time()
        stops = asyncio.gather(*(c.stop(grace) for _, c in victims), return_exceptions=True)
        while not stops.done():
            if not self.grace_shortened.is_set():
                # mark_deleting resolves this when a later delete shortens the grace
                self._grace_change = loop.create_future()
                try:
                    await _first_done(stops, self._grace_change)
                finally:
                    self._grace_change = None
            if stops.done():
                break
            # Like the kubelet, honour the shorter period counted from the first request.
            self.grace_shortened.clear()
            new_grace = float(self.pod["metadata"].get("deletionGracePeriodSeconds") or 0)
            spent = self.clock.cluster_seconds(asyncio.get_running_loop().time() - started)
            deadline = asyncio.ensure_future(self.clock.sleep(new_grace - spent))
            await _first_done(stops, deadline)
            if not deadline.done():
                deadline.cancel()
                continue
            for _, container in victims:
                container.kill_now()
        results = await stops
        for (rec, _), result in zip(victims, results, strict=True):
            self.running.pop(rec.name, None)
            status = result if isinstance(result, ExitStatus) else ExitStatus(137, "Error")
            await self._record_exit(rec, status)

    async def _terminate(self) -> None:
        """Graceful deletion: stop the containers, report them, then remove the pod."""
        grace = float((self.pod.get("metadata") or {}).get("deletionGracePeriodSeconds") or 0)
        if not self.terminal:
            await self._stop_containers(grace)
            for rec in self.containers:
                if "waiting" in rec.state and "terminated" in rec.last_state:
                    rec.state, rec.last_state = rec.last_state, {}  # deleted while backing off
                elif "waiting" in rec.state:  # never started (e.g. ImagePullBackOff)
                    rec.state = terminated(
                        137,
                        "ContainerStatusUnknown",
                        None,
                        self.clock.timestamp(),
                        message="The container could not be located when the pod was terminated",
                    )
            codes = [rec.exit_code for rec in self.containers if rec.is_terminated]
            self._phase_override = (
                "Succeeded"
                if codes and all(c == 0 for c in codes) and len(codes) == len(self.containers)
                else "Failed"
            )
            self.sandbox_ready = False
            await self.write_status()
        namespace, name = key_of(self.pod)
        try:
            await self.store.delete(
                self.kubelet.pods_rt,
                namespace,
                name,
                grace_period_seconds=0,
                preconditions={"uid": self.pod["metadata"].get("uid")},
            )
        except Exception as exc:
            if not is_missing(exc) and getattr(exc, "code", None) != 409:
                raise
        self.finished = True

    def stop_now(self) -> None:
        """The pod vanished (force-deleted): nothing to report, just stop what runs."""
        for container in self.running.values():
            container.kill_now()


class Kubelet:
    """A ``Controller`` (docs/contracts.md §2) acting as the kubelet of every simulated node."""

    def __init__(
        self,
        nodes: list[SimNode],
        scenarios: ScenarioBook | None = None,
        clock: Clock | None = None,
        runtime: ContainerRuntime | None = None,
    ) -> None:
        self.nodes = {n.name: n for n in nodes}
        self.scenarios = scenarios or ScenarioBook()
        self.clock = clock or Clock.real()
        self.runtime: ContainerRuntime = runtime or SimulatedRuntime(self.clock)
        self.store: StoreLike | None = None
        self.node_images: dict[str, set[str]] = {}
        self.oom_sequence = 0
        self._workers: dict[tuple[str, str, str], tuple[PodWorker, asyncio.Task[Any]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self, store: StoreLike) -> None:
        self.store = store
        self.pods_rt = store.resource("pods")
        self.events_rt = store.resource("events")
        if hasattr(self.runtime, "store"):
            self.runtime.store = store  # process mode reads Secrets/ConfigMaps for env and volumes
        spawn(
            list_and_watch(store, self.pods_rt, self._on_pod, self._on_relist),
            self._tasks,
            "kubelet pod watch",
        )

    async def stop(self) -> None:
        for worker, _ in self._workers.values():
            worker.stop_now()
        await cancel_all(self._tasks)
        self._workers.clear()
        await self.runtime.close()

    def pod_log(self, namespace: str, name: str, query: dict[str, Any]) -> Any:
        """The ``pods/{name}/log`` source: the runtime's captured output, else the simulated (empty) log.

        A container that never started gets the kubelet's own 400 wording for why
        (``... is waiting to start: trying and failing to pull image``); None leaves the
        answer to the API server (no node has the pod yet).
        """
        LogOptions.from_query(query, name)  # the API server's validation, whatever the runtime
        text = self.runtime.log_source(namespace, name, query)
        if text is not None:
            return text
        worker = next(
            (w for (ns, n, _), (w, _) in self._workers.items() if (ns, n) == (namespace, name)),
            None,
        )
        if worker is None:
            return None
        container = query.get("container")
        record_ = next((r for r in [*worker.init, *worker.containers] if r.name == container), None)
        if record_ is None:
            return None
        if record_.container_id is None or ("waiting" in record_.state and not record_.last_state):
            reason = record_.state.get("waiting", {}).get("reason", "ContainerCreating")
            if reason in ("ErrImagePull", "ImagePullBackOff"):
                reason = "trying and failing to pull image"
            raise bad_request(
                f'container "{container}" in pod "{name}" is waiting to start: {reason}'
            )
        return ""

    def _on_relist(self, existing: set[tuple[str, str]]) -> None:
        """Pods removed while the watch was down: stop their workers as if deleted."""
        for key, (worker, _task) in list(self._workers.items()):
            if (key[0], key[1]) not in existing:
                self._on_pod("DELETED", worker.pod)

    def _on_pod(self, kind: str, pod: dict[str, Any]) -> None:
        spec = pod.get("spec") or {}
        node = self.nodes.get(spec.get("nodeName") or "")
        if node is None:
            return
        meta = pod.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "", meta.get("uid") or "")
        entry = self._workers.get(key)
        if kind == "DELETED":
            if entry is not None:
                worker, task = self._workers.pop(key)
                worker.stop_now()
                task.cancel()
            self.runtime.release_pod(pod)
            return
        if entry is not None and entry[0].finished:
            # The worker has stopped the pod and deleted it; the writes it made on the
            # way (its final status, the grace-0 deletion) are still in the watch. Like
            # the real kubelet, which keeps a terminated pod's worker until the pod is
            # gone from the API, it does not start the pod again for them.
            return
        if entry is None:
            phase = (pod.get("status") or {}).get("phase")
            worker = PodWorker(self, pod, node)
            if phase in ("Succeeded", "Failed"):
                worker.terminal = True
            task = spawn(
                self._run_worker(key, worker), self._tasks, f"kubelet pod {key[0]}/{key[1]}"
            )
            self._workers[key] = (worker, task)
            entry = (worker, task)
        if meta.get("deletionTimestamp"):
            worker = entry[0]
            before = (worker.pod.get("metadata") or {}).get("deletionGracePeriodSeconds")
            worker.pod = {**worker.pod, "metadata": meta}
            after = meta.get("deletionGracePeriodSeconds")
            worker.mark_deleting(
                shortened=worker.deleting.is_set()
                and before is not None
                and after is not None
                and after < before
            )

    async def _run_worker(self, key: tuple[str, str, str], worker: PodWorker) -> None:
        try:
            if worker.terminal:
                await worker.deleting.wait()
                await worker._terminate()
            else:
                await worker.run()
        finally:
            entry = self._workers.get(key)
            if not worker.finished and entry is not None and entry[0] is worker:
                self._workers.pop(key, None)
            # a finished worker stays registered until the pod's DELETED (or a relist
            # that no longer lists it) removes it: see _on_pod
