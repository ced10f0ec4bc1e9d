"""Container probes (startup, liveness, readiness) as the kubelet runs and reports them.

Two users: process mode runs each probe for real against the process (:func:`run_probe`:
a TCP connect, an HTTP GET, a command), and simulated mode derives the same sequence of
probe results from the pod's scenario (:func:`simulated_probe_timeline`). Either way the
kubelet sees the same :class:`~.runtime.ContainerChange` stream and writes the same
``Unhealthy`` events (``Liveness probe failed: ...``) and ``Killing`` events
(``Container notebook failed liveness probe, will be restarted``) a real node writes.

The timing rules mirror the kubelet's probe workers: nothing is probed before
``initialDelaySeconds``; then one probe every ``periodSeconds``; ``failureThreshold``
consecutive failures (default 3) fail the probe, ``successThreshold`` successes pass it.
Until a container's startup probe has passed, its liveness and readiness probes do not run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
from dataclasses import dataclass
from typing import Any

EXEC_OUTPUT_LIMIT = 10 * 1024  # bytes of an exec probe's output the kubelet keeps


@dataclass(frozen=True)
class ProbeTiming:
    """A probe's schedule with the API server's defaults filled in."""

    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3
    termination_grace: float | None = None  # probe-level terminationGracePeriodSeconds

    @classmethod
    def of(cls, probe: dict[str, Any]) -> ProbeTiming:
        grace = probe.get("terminationGracePeriodSeconds")
        return cls(
            initial_delay=float(probe.get("initialDelaySeconds") or 0),
            period=float(probe.get("periodSeconds") or 10),
            timeout=float(probe.get("timeoutSeconds") or 1),
            success_threshold=int(probe.get("successThreshold") or 1),
            failure_threshold=int(probe.get("failureThreshold") or 3),
            termination_grace=None if grace is None else float(grace),
        )

    def probe_time(self, index: int) -> float:
        """When the ``index``-th probe runs, in seconds after the container started."""
        return self.initial_delay + index * self.period


def unhealthy_message(kind: str, output: str) -> str:
    """The ``Unhealthy`` event text: ``Liveness probe failed: <what the probe saw>``."""
    return f"{kind} probe failed: {output}"


def probe_kill_message(container_name: str, kind: str, restart_policy: str) -> str:
    """The ``Killing`` event text when a liveness or startup probe has failed for good."""
    message = f"Container {container_name} failed {kind.lower()} probe"
    if restart_policy != "Never":
        message += ", will be restarted"
    return message


def probe_port(container: dict[str, Any], probe: dict[str, Any]) -> int:
    """The probe's port, resolving a named port against the container's ports."""
    for handler in ("httpGet", "tcpSocket", "grpc"):
        if handler in probe:
            port = probe[handler].get("port")
            if isinstance(port, str) and not port.isdigit():
                for declared in container.get("ports") or []:
                    if declared.get("name") == port:
                        return int(declared["containerPort"])
                raise ValueError(
                    f"probe port {port!r} is not a port name of container {container.get('name')!r}"
                )
            if port is not None:
                return int(port)
    ports = container.get("ports") or []
    return int(ports[0]["containerPort"]) if ports else 8888


def _url(probe: dict[str, Any], host: str, port: int | str) -> str:
    get = probe.get("httpGet") or {}
    scheme = str(get.get("scheme") or "HTTP").lower()
    path = str(get.get("path") or "/")
    if not path.startswith("/"):
        path = "/" + path
    return f"{scheme}://{get.get('host') or host}:{port}{path}"


def refused_output(container: dict[str, Any], probe: dict[str, Any], pod_ip: str) -> str:
    """What a probe reports when nothing listens on its port (the usual simulated failure)."""
    if "exec" in probe:
        return ""
    try:
        port: int | str = probe_port(container, probe)
    except ValueError:
        port = next(
            (probe[h].get("port") for h in ("httpGet", "tcpSocket") if h in probe), "<none>"
        )
    dial = f"dial tcp {pod_ip}:{port}: connect: connection refused"
    if "httpGet" in probe:
        return f'Get "{_url(probe, pod_ip, port)}": {dial}'
    return dial


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    output: str = ""


async def run_probe(
    probe: dict[str, Any],
    container: dict[str, Any],
    pod_ip: str,
    *,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
) -> ProbeResult:
    """Run one probe for real, with the output the kubelet would put in its event."""
    limit = ProbeTiming.of(probe).timeout
    if "exec" in probe:
        command = [str(c) for c in probe["exec"].get("command") or []]
        return await _exec_probe(command, limit, cwd, env)
    try:
        port = probe_port(container, probe)
    except ValueError as exc:
        return ProbeResult(False, str(exc))
    if "httpGet" in probe:
        return await _http_probe(probe, pod_ip, port, limit)
    if "tcpSocket" in probe:
        host = probe["tcpSocket"].get("host") or pod_ip
        return await _tcp_probe(host, port, limit)
    return ProbeResult(True)  # grpc and unknown handlers: not emulated, treated as passing


async def _tcp_probe(host: str, port: int, limit: float) -> ProbeResult:
    try:
        async with asyncio.timeout(limit):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return ProbeResult(False, f"dial tcp {host}:{port}: i/o timeout")
    except OSError as exc:
        return ProbeResult(False, f"dial tcp {host}:{port}: connect: {_os_error_text(exc)}")
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return ProbeResult(True)


def _os_error_text(exc: OSError) -> str:
    """Go's wording for the errors a dial meets (``connection refused``, not ``Connect call failed``)."""
    if exc.errno:
        return os.strerror(exc.errno).lower()
    return (exc.strerror or str(exc)).lower()


async def _http_probe(probe: dict[str, Any], host: str, port: int, limit: float) -> ProbeResult:
    import aiohttp

    url = _url(probe, host, port)
    headers = {
        str(h.get("name")): str(h.get("value", ""))
        for h in (probe["httpGet"].get("httpHeaders") or [])
    }
    headers.setdefault("User-Agent", "kube-probe/1.36")
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=limit)) as session,
            session.get(url, headers=headers, allow_redirects=False) as response,
        ):
            if 200 <= response.status < 400:
                return ProbeResult(True)
            return ProbeResult(False, f"HTTP probe failed with statuscode: {response.status}")
    except TimeoutError:
        return ProbeResult(
            False,
            f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting '
            "headers)",
        )
    except aiohttp.ClientConnectorError as exc:
        return ProbeResult(
            False, f'Get "{url}": dial tcp {host}:{port}: connect: {_os_error_text(exc.os_error)}'
        )
    except (aiohttp.ClientError, OSError) as exc:
        return ProbeResult(False, f'Get "{url}": {exc}')


async def _exec_probe(
    command: list[str], limit: float, cwd: str | None, env: dict[str, str] | None
) -> ProbeResult:
    if not command:
        return ProbeResult(False, "exec probe has no command")
    try:
        proc = await asyncio.create_subprocess_exec(
            *command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    except OSError as exc:
        return ProbeResult(
            False,
            "OCI runtime exec failed: exec failed: unable to start container process: exec: "
            f'"{command[0]}": {(exc.strerror or str(exc)).lower()}',
        )
    try:
        async with asyncio.timeout(limit):
            output, _ = await proc.communicate()
    except TimeoutError:
        return ProbeResult(False, f"command {shlex.join(command)!r} timed out")
    finally:
        if proc.returncode is None:  # timed out, or the probe loop was cancelled
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                await proc.wait()
    # the kubelet keeps at most 10 KiB of a probe command's output
    text = output[:EXEC_OUTPUT_LIMIT].decode("utf-8", "replace")
    return ProbeResult(proc.returncode == 0, text)


# ------------------------------------------------------------------ simulated probes


@dataclass(frozen=True)
class TimelineEntry:
    """One probe outcome of a simulated container, ``at`` seconds after it started.

    ``kind``: ``started`` (the startup probe passed), ``unready`` / ``unhealthy`` (a probe
    failed; ``message`` is the Unhealthy text), ``probe-kill`` (liveness or startup probe
    failed ``failureThreshold`` times; ``message`` is the Killing text).
    """

    at: float
    kind: str
    message: str = ""
    grace: float | None = None


def simulated_probe_timeline(
    container: dict[str, Any],
    pod_ip: str,
    restart_policy: str,
    *,
    startup_after: float | None,
    live_for: float | None,
) -> tuple[list[TimelineEntry], float | None]:
    """The startup and liveness probe outcomes a scenario implies, and when the container started.

    ``startup_after``: the startup probe passes from this many seconds after the start
    (None: never). ``live_for``: the liveness probe passes for this long, then fails
    (None: always passes). Probes the container does not declare never fail: a scenario
    cannot make a kubelet run a probe that is not there.

    Returns the entries in time order, ending with a ``probe-kill`` when a probe fails
    for good, and the ``started`` time (None when the startup probe never passes).
    """
    entries: list[TimelineEntry] = []
    name = str(container.get("name", ""))
    started_at: float | None = 0.0
    startup = container.get("startupProbe")
    if startup is not None:
        timing = ProbeTiming.of(startup)
        failures = 0
        index = 0
        started_at = None
        while True:
            at = timing.probe_time(index)
            index += 1
            if startup_after is not None and at >= startup_after:
                started_at = at
                entries.append(TimelineEntry(at, "started"))
                break
            failures += 1
            entries.append(
                TimelineEntry(
                    at,
                    "unhealthy",
                    unhealthy_message("Startup", refused_output(container, startup, pod_ip)),
                )
            )
            if failures >= timing.failure_threshold:
                entries.append(
                    TimelineEntry(
                        at,
                        "probe-kill",
                        probe_kill_message(name, "Startup", restart_policy),
                        timing.termination_grace,
                    )
                )
                return entries, None
    liveness = container.get("livenessProbe")
    if liveness is not None and live_for is not None and started_at is not None:
        timing = ProbeTiming.of(liveness)
        index = 0
        while timing.probe_time(index) < max(live_for, started_at):
            index += 1
        for failure in range(timing.failure_threshold):
            at = timing.probe_time(index + failure)
            entries.append(
                TimelineEntry(
                    at,
                    "unhealthy",
                    unhealthy_message("Liveness", refused_output(container, liveness, pod_ip)),
                )
            )
        entries.append(
            TimelineEntry(
                entries[-1].at,
                "probe-kill",
                probe_kill_message(name, "Liveness", restart_policy),
                timing.termination_grace,
            )
        )
    return entries, started_at
