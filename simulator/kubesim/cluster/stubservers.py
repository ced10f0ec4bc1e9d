"""Stub-server mode: every pod answers HTTP on its ports, without a process per pod.

Process mode runs each pod's main container as a real program, which is what a demo wants
and what a benchmark of thousands of servers cannot afford (a Jupyter server is ~60 MB).
A client that only needs "the server answers at its address" (a hub waiting for a server
to come up, a proxy routing to it, a load test) gets that here: containers are acted out
from their scenarios as in the default simulated mode, but each pod has a loopback address
(``127.N.x.y``) and, while its main container runs, the simulator itself listens on every
``containerPort`` of it and answers each HTTP request with a small JSON body shaped like a
Jupyter server's ``/api/status``. The listener closes when the container stops, so a
client sees "connection refused" after a stop, as it would from a real pod.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

from .nodes import SimNode
from .runtime import (
    ContainerChange,
    ContainerLaunch,
    ExitStatus,
    RunningContainer,
    SimulatedRuntime,
)

log = logging.getLogger("kubesim.cluster.stubservers")

_MAX_HEADER_BYTES = 64 * 1024


class _StubHttp(asyncio.Protocol):
    """Answers every request on a connection with 200 and the status body (keep-alive)."""

    def __init__(self, body: bytes, live: set[asyncio.Transport]) -> None:
        self.body = body
        self.live = live
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.skip = 0  # request body bytes still to discard

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.live.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.live.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self.skip:
                taken = min(self.skip, len(self.buffer))
                self.buffer = self.buffer[taken:]
                self.skip -= taken
                if self.skip:
                    return
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                if len(self.buffer) > _MAX_HEADER_BYTES and self.transport is not None:
                    self.transport.close()
                return
            self.buffer = rest
            self.skip = _content_length(head)
            self._respond(close=b"connection: close" in head.lower())

    def _respond(self, *, close: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(self.body)}\r\n".encode()
            + (b"Connection: close\r\n\r\n" if close else b"\r\n")
            + self.body
        )
        if close:
            self.transport.close()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                return max(0, int(value.strip()))
            except ValueError:
                return 0
    return 0


def _status_body() -> bytes:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return json.dumps(
        {"started": now, "last_activity": now, "connections": 0, "kernels": 0}
    ).encode()


class _ServedContainer:
    """A simulated container whose ports are open while it runs."""

    def __init__(
        self,
        inner: RunningContainer,
        servers: list[asyncio.Server],
        connections: set[asyncio.Transport],
    ) -> None:
        self.inner = inner
        self.servers = servers
        self.connections = connections

    def _close(self) -> None:
        """The process is gone: stop listening and drop open connections (keep-alive ones too)."""
        for server in self.servers:
            server.close()
        self.servers = []
        for transport in list(self.connections):
            transport.abort()
        self.connections.clear()

    async def next_change(self) -> ContainerChange:
        change = await self.inner.next_change()
        if change.kind in ("exited", "probe-kill"):
            self._close()
        return change

    async def stop(self, grace_seconds: float) -> ExitStatus:
        try:
            return await self.inner.stop(grace_seconds)
        finally:
            self._close()

    def kill_now(self) -> None:
        self._close()
        self.inner.kill_now()

    def __getattr__(self, name: str) -> Any:  # records, follow, ...: the inner run's
        return getattr(self.inner, name)


class StubServerRuntime(SimulatedRuntime):
    """Simulated containers on loopback pod IPs whose ports answer HTTP while they run."""

    def __init__(self, clock: Any, *, pod_ip_prefix: str = "127.2") -> None:
        super().__init__(clock)
        self.pod_ip_prefix = pod_ip_prefix
        # Where this simulator starts handing out addresses: spread by process id, so two
        # simulators on one machine rarely hand out the same address and port.
        self._next = 2 + (os.getpid() * 7919) % 60000
        self._served: dict[str, list[_ServedContainer]] = {}

    def allocate_pod_ip(self, pod: dict[str, Any], node: SimNode) -> str:
        uid = (pod.get("metadata") or {}).get("uid", "")
        if uid not in self._ips:
            taken = set(self._ips.values())
            while True:
                n = self._next
                self._next = n + 1 if n < 65000 else 2
                address = f"{self.pod_ip_prefix}.{n // 256}.{n % 256}"
                if n % 256 not in (0, 255) and address not in taken:
                    break
            self._ips[uid] = address
        return self._ips[uid]

    async def start(self, launch: ContainerLaunch) -> RunningContainer:
        run = await super().start(launch)
        container, main, pod_ip = launch.container, launch.main, launch.pod_ip
        ports = [int(p["containerPort"]) for p in container.get("ports") or [] if "containerPort" in p]
        if not main or not ports:
            return run
        body = _status_body()
        loop = asyncio.get_running_loop()
        servers = []
        connections: set[asyncio.Transport] = set()
        for port in ports:
            try:
                servers.append(
                    await loop.create_server(
                        lambda: _StubHttp(body, connections), pod_ip, port, backlog=64
                    )
                )
            except OSError as exc:  # the address is busy: the pod is not reachable, as in life
                log.warning("pod %s: cannot listen on %s:%d: %s", pod_ip, pod_ip, port, exc)
        served = _ServedContainer(run, servers, connections)
        uid = (launch.pod.get("metadata") or {}).get("uid", "")
        self._served.setdefault(uid, []).append(served)
        return served

    def release_pod(self, pod: dict[str, Any]) -> None:
        for served in self._served.pop((pod.get("metadata") or {}).get("uid", ""), []):
            served.kill_now()
        super().release_pod(pod)

    async def close(self) -> None:
        for runs in self._served.values():
            for served in runs:
                served.kill_now()
        self._served.clear()
