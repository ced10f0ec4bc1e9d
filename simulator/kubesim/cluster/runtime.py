"""The kubelet's container runtime seam: what "running a container" means.

The kubelet drives every pod through the same status/event sequence; what differs is
whether a container is acted out from its scenario (:class:`SimulatedRuntime`) or is a
real local process (``processes.ProcessRuntime``). Both hand back a
:class:`RunningContainer` that reports exit, readiness and stops on request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from kubesim.errors import bad_request

from .clock import Clock
from .containerlogs import LogOptions, LogRecord, records_of, render, termination_message
from .nodes import SimNode
from .probes import TimelineEntry, refused_output, simulated_probe_timeline, unhealthy_message
from .scenarios import ResolvedScenario

OOM_EXIT_CODE = 137
SIGKILL_EXIT_CODE = 137


class ExitStatus:
    """How a container ended: exit code, kubelet reason (Completed/Error/OOMKilled), signal."""

    __slots__ = ("code", "message", "reason", "signal")

    def __init__(
        self,
        code: int,
        reason: str | None = None,
        signal: int | None = None,
        message: str | None = None,
    ) -> None:
        self.code = code
        self.reason = reason or ("Completed" if code == 0 else "Error")
        self.signal = signal
        self.message = message  # the terminated state's message (termination message)

    def __repr__(self) -> str:
        return f"ExitStatus({self.code}, {self.reason!r})"


@dataclass(frozen=True)
class ContainerChange:
    """One thing the kubelet learns about a running container, in the order it happened.

    kind: ``ready`` (readiness passed), ``unready`` (the readiness probe failed;
    ``message`` is the Unhealthy text), ``started`` (the startup probe passed),
    ``unhealthy`` (a startup or liveness probe failed once; ``message`` is the Unhealthy
    text), ``probe-kill`` (a startup or liveness probe failed ``failureThreshold`` times:
    the kubelet kills the container, ``message`` is the Killing text and ``grace`` the
    probe's own terminationGracePeriodSeconds if it has one) or ``exited`` (``exit`` says
    how).
    """

    kind: str
    message: str = ""
    exit: ExitStatus | None = None
    grace: float | None = None


class RunningContainer(Protocol):
    async def next_change(self) -> ContainerChange:
        """Wait for the next readiness change or the exit, whichever comes first.

        One ordered stream (rather than separate waits) is what keeps fast mode faithful:
        a container that becomes ready at 0.5 s and crashes at 1 s reports exactly that
        order however much the timers are compressed.
        """

    async def stop(self, grace_seconds: float) -> ExitStatus:
        """SIGTERM, then SIGKILL when ``grace_seconds`` (cluster time) run out."""

    def kill_now(self) -> None:
        """SIGKILL at once (a shortened grace period ran out, or the pod was force-deleted);
        a pending ``stop()`` then returns promptly."""


RunT = TypeVar("RunT")


@dataclass(frozen=True)
class ContainerLaunch:
    """Everything a runtime needs to start one container of a pod.

    One value rather than seven keyword arguments, so that the runtimes (simulated,
    stub servers, real processes) and the kubelet that calls them share one signature
    and a new fact about a start is added in one place.
    """

    pod: dict[str, Any]
    container: dict[str, Any]
    main: bool
    pod_ip: str
    node: SimNode
    scenario: ResolvedScenario
    restart_count: int

    @property
    def restart_policy(self) -> str:
        """The pod's restartPolicy (Kubernetes' default ``Always`` when unset)."""
        return str((self.pod.get("spec") or {}).get("restartPolicy", "Always"))


class ContainerRuntime(Protocol):
    def allocate_pod_ip(self, pod: dict[str, Any], node: SimNode) -> str: ...
    def release_pod(self, pod: dict[str, Any]) -> None: ...
    async def start(self, launch: ContainerLaunch) -> RunningContainer: ...
    def log_source(self, namespace: str, name: str, query: dict[str, Any]) -> Any: ...
    async def close(self) -> None: ...


def select_run(runs: Sequence[RunT], query: dict[str, Any], name: str) -> tuple[RunT, bool]:
    """The run a ``pods/{name}/log`` query asks for, and whether to follow it.

    Every runtime answers ``previous`` and ``follow`` the same way as the kubelet: the
    run before the current one (a 400 when there is none) is never followed, the current
    one is followed when asked. ``runs`` is the container's runs, oldest first, never empty.
    """
    if str(query.get("previous", "")).lower() in ("true", "1"):
        if len(runs) < 2:
            raise bad_request(
                f'previous terminated container "{query.get("container")}" in '
                f'pod "{name}" not found'
            )
        return runs[-2], False
    return runs[-1], str(query.get("follow", "")).lower() in ("true", "1")


def probe_failure_message(container: dict[str, Any], pod_ip: str) -> str:
    """What a failing readiness probe says (connection refused on its target)."""
    probe = container.get("readinessProbe") or {}
    return unhealthy_message("Readiness", refused_output(container, probe, pod_ip))


class SimulatedContainer:
    """A container whose whole behaviour comes from its scenario (main container) or which
    simply runs until stopped (sidecars and init containers).

    Its probes are acted out too: the scenario's ``startup-after`` and ``live-for`` turn
    the container's declared startupProbe and livenessProbe into the probe results a
    kubelet would see (:func:`.probes.simulated_probe_timeline`).
    """

    def __init__(
        self,
        clock: Clock,
        scenario: ResolvedScenario,
        container: dict[str, Any],
        pod_ip: str,
        main: bool,
        restart_policy: str = "Always",
    ) -> None:
        self.clock = clock
        self.scenario = scenario
        self.container = container
        self.pod_ip = pod_ip
        self.main = main
        self._elapsed = 0.0
        self._killed = asyncio.Event()
        self._stopping: asyncio.Future[None] | None = None  # a stop() waiting to finish
        self.ended = asyncio.Event()  # the run is over: a follow of its log ends
        self._ready_reported = False
        self._probe_killed = False
        probe = container.get("readinessProbe") or {}
        self._period = float(probe.get("periodSeconds") or 10)
        self._next_probe = float(probe.get("initialDelaySeconds") or 0) + self._period
        startup_after: float | None = 0.0
        if main:
            none = scenario.startup_after is None
            startup_after = None if none else scenario.seconds("startup_after")
        live_for = scenario.seconds("live_for") if main and scenario.live_for is not None else None
        self._timeline: list[TimelineEntry]
        self._timeline, self._started_at = simulated_probe_timeline(
            container, pod_ip, restart_policy, startup_after=startup_after, live_for=live_for
        )
        if self._started_at is not None:
            self._next_probe = max(self._next_probe, self._started_at)
        # what the container "prints" when it starts (the scenario's output)
        output = scenario.output.replace("\\n", "\n") if main else ""
        self.records: list[LogRecord] = records_of(output, time.time_ns()) if output else []

    def _exited(self, status: ExitStatus) -> ExitStatus:
        """The exit with the termination message a kubelet would add (from the output)."""
        status.message = termination_message(self.container, status.code, self.records)
        return status

    def _exit_at(self) -> tuple[float, ExitStatus] | None:
        s = self.scenario
        if not self.main:
            return None
        candidates: list[tuple[float, ExitStatus]] = []
        if s.exit_after is not None:
            candidates.append((s.seconds("exit_after"), self._exited(ExitStatus(s.exit_code))))
        if s.oom_after is not None:
            oom = self._exited(ExitStatus(OOM_EXIT_CODE, "OOMKilled"))
            candidates.append((s.seconds("oom_after"), oom))
        return min(candidates, key=lambda c: c[0]) if candidates else None

    async def next_change(self) -> ContainerChange:
        if self._probe_killed:
            await asyncio.Event().wait()  # the kubelet is stopping it
        upcoming: list[tuple[float, int, ContainerChange]] = []
        exit_at = self._exit_at()
        if exit_at is not None:
            upcoming.append((exit_at[0], 0, ContainerChange("exited", exit=exit_at[1])))
        if self._timeline:
            entry = self._timeline[0]
            upcoming.append(
                (entry.at, 1, ContainerChange(entry.kind, entry.message, grace=entry.grace))
            )
        if self._started_at is None:
            pass  # readiness is not probed before the startup probe passes
        elif self.main and self.scenario.never_ready:
            message = probe_failure_message(self.container, self.pod_ip)
            upcoming.append((self._next_probe, 2, ContainerChange("unready", message)))
        elif not self._ready_reported and not any(e.kind == "started" for e in self._timeline):
            # ready wins a tie with an exit: a container ready at 0 s that exits at 0 s
            # was ready first, so watchers see Ready before the termination
            ready_at = self.scenario.seconds("ready_after") if self.main else 0.0
            upcoming.append((max(ready_at, self._started_at), -1, ContainerChange("ready")))
        if not upcoming:
            await asyncio.Event().wait()  # runs until stopped
        at, source, change = min(upcoming, key=lambda u: (u[0], u[1]))
        await self.clock.sleep(at - self._elapsed)
        self._elapsed = max(self._elapsed, at)
        if change.kind == "exited":
            self.ended.set()
        if source == 1:
            self._timeline.pop(0)
            self._probe_killed = change.kind == "probe-kill"
        elif change.kind == "ready":
            self._ready_reported = True
        elif change.kind == "unready":
            self._next_probe += self._period
        return change

    async def stop(self, grace_seconds: float) -> ExitStatus:
        """SIGTERM: the container exits after the scenario's termination time, or is
        killed when the grace period (or ``kill_now``) comes first.

        One timer and one future, no task: a burst of deletions stops a thousand
        containers at once, and two tasks racing per container were a good part of it.
        """
        needed = self.scenario.seconds("termination")
        exits_in_time = needed <= grace_seconds
        if self._killed.is_set():
            await asyncio.sleep(0)
        else:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            timer = self.clock.call_later(min(needed, grace_seconds), _resolve, done)
            self._stopping = done
            try:
                await done
            finally:
                timer.cancel()
                self._stopping = None
        self.ended.set()
        if exits_in_time and not self._killed.is_set():
            return ExitStatus(0)
        return self._exited(ExitStatus(SIGKILL_EXIT_CODE, "Error"))

    def kill_now(self) -> None:
        self._killed.set()
        self.ended.set()
        if self._stopping is not None:
            _resolve(self._stopping)

    async def follow(self, options: LogOptions) -> AsyncIterator[str]:
        """``follow=true``: what it printed, then an open stream until the run ends."""
        text = render(self.records, options)
        if text:
            yield text
        if options.limit_bytes is not None and len(text.encode()) >= options.limit_bytes:
            return  # the byte budget is spent: the stream ends here
        await self.ended.wait()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class SimulatedRuntime:
    """Pod IPs from the node's podCIDR (10.244.N.x); containers acted out from scenarios."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._next_host: dict[str, int] = {}
        self._ips: dict[str, str] = {}
        # every run of every container, for pods/{name}/log (current and previous), by
        # pod then container: releasing a pod drops its entry without scanning every pod's
        self._runs: dict[tuple[str, str], dict[str, list[SimulatedContainer]]] = {}

    def allocate_pod_ip(self, pod: dict[str, Any], node: SimNode) -> str:
        uid = (pod.get("metadata") or {}).get("uid", "")
        if uid in self._ips:
            return self._ips[uid]
        network = ipaddress.IPv4Network(node.to_api("")["spec"]["podCIDR"])
        host = self._next_host.get(node.name, 1) + 1
        if host >= network.num_addresses - 1:
            host = 2
        self._next_host[node.name] = host
        self._ips[uid] = str(network.network_address + host)
        return self._ips[uid]

    def release_pod(self, pod: dict[str, Any]) -> None:
        meta = pod.get("metadata") or {}
        self._ips.pop(meta.get("uid", ""), None)
        self._runs.pop((meta.get("namespace", ""), meta.get("name", "")), None)

    async def start(self, launch: ContainerLaunch) -> RunningContainer:
        run = SimulatedContainer(
            self.clock,
            launch.scenario,
            launch.container,
            launch.pod_ip,
            launch.main,
            launch.restart_policy,
        )
        meta = launch.pod.get("metadata") or {}
        pod_runs = self._runs.setdefault((meta.get("namespace", ""), meta.get("name", "")), {})
        pod_runs.setdefault(str(launch.container.get("name", "")), []).append(run)
        return run

    def log_source(self, namespace: str, name: str, query: dict[str, Any]) -> Any:
        """The scenario's output of the current (or previous) run; None before any run.

        A follow request gets the output (a simulated container prints everything when
        it starts), then stays open until the run ends, as ``kubectl logs -f`` expects.
        """
        runs = self._runs.get((namespace, name), {}).get(str(query.get("container", "")))
        if not runs:
            return None
        run, follow = select_run(runs, query, name)
        if follow:
            return run.follow(LogOptions.from_query(query, name))
        return render(run.records, LogOptions.from_query(query, name))

    async def close(self) -> None:
        return None
