"""Process mode: a pod's main container runs as a real local process.

What a container runtime would give the process, emulated on one machine:

- **its own IP**: each pod gets a loopback address 127.N.x.y as podIP (all of 127/8 is
  local on Linux). A process in a pod has its own network namespace, where binding
  ``0.0.0.0`` means "my pod IP"; here ``0.0.0.0`` in the command line and env values is
  rewritten to the pod IP, so many pods can listen on port 8888 at once.
- **its command**: ``command`` + ``args``, or, when the pod leaves the image's entrypoint,
  a per-image command from configuration (``quay.io/jupyterhub/singleuser:*`` →
  ``jupyterhub-singleuser``) followed by ``args``.
- **its environment**: ``env`` (with ``valueFrom`` secretKeyRef, configMapKeyRef, fieldRef,
  resourceFieldRef and ``$(VAR)`` expansion) and ``envFrom``.
- **its files**: a per-pod directory ``<root>/<namespace>/<pod>/rootfs``; Secret, ConfigMap
  and downwardAPI volumes are written under ``rootfs/<mountPath>``, emptyDirs created
  there, and a PersistentVolumeClaim's mount is a link to the bound volume's own directory
  ``<root>/_volumes/<pv>``, which outlives the pod (what one pod writes, the next pod of the
  claim reads). The process has no mount namespace, so it is told where its files are:
  every env value and command-line argument that names a path under a mount
  (``/etc/jupyterhub/ssl/ssl.key``, ``--notebook-dir=/home/jovyan``) is rewritten to the
  same path under rootfs, and ``KUBESIM_ROOTFS`` holds the root. ``workingDir`` is taken
  inside rootfs unless it exists on the host.
- **its lifetime**: a new session (process group) per container, SIGTERM then SIGKILL at
  the end of the grace period, the whole group killed when the simulator stops, and
  ``PR_SET_PDEATHSIG`` so a killed simulator does not leave orphans behind.
- **its logs**: stdout and stderr captured per container and restart, served by
  ``pods/{name}/log`` (``follow``, ``tailLines``, ``previous``).
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import contextlib
import fnmatch
import ipaddress
import json
import logging
import math
import os
import re
import shutil
import signal
import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from kubesim.errors import bad_request
from kubesim.quantity_grammar import QuantityError, parse_quantity

from .clock import Clock
from .containerlogs import ContainerLog, LogOptions, termination_message
from .nodes import SimNode
from .probes import ProbeResult, ProbeTiming, probe_kill_message, run_probe, unhealthy_message
from .runtime import (
    ContainerChange,
    ContainerLaunch,
    ExitStatus,
    SimulatedContainer,
    select_run,
)
from .storeview import StoreLike, is_missing, key_of

log = logging.getLogger("kubesim.cluster.processes")

# Host variables a process needs to find its interpreter and tools.
PASSED_THROUGH_ENV = ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "TMPDIR", "TZ")
READY_CHECK_INTERVAL = 0.05  # real seconds between port checks (no probe configured)
_live_groups: set[int] = set()  # every process group we started and have not reaped


def _kill_leftovers() -> None:
    """Last line of defence at interpreter exit: no process outlives the simulator."""
    for pgid in list(_live_groups):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    _live_groups.clear()


atexit.register(_kill_leftovers)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class ContainerConfigError(Exception):
    """The container cannot be configured (missing Secret, key...): CreateContainerConfigError."""


class ContainerStartError(Exception):
    """The container's process cannot be started: StartError, exit code 128."""


# ------------------------------------------------------------------ environment

_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")


def expand_references(value: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: known names replaced, ``$$`` escapes, unknown kept."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _VAR_REF.sub(sub, value)


def _field_value(pod: dict[str, Any], path: str, pod_ip: str, node: SimNode) -> str:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": node.name,
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": node.internal_ip,
        "status.hostIPs": node.internal_ip,
    }
    if path in simple:
        return str(simple[path])
    match = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if match:
        return str((meta.get(match[1]) or {}).get(match[2], ""))
    raise ContainerConfigError(f'unsupported fieldRef fieldPath "{path}"')


def _resource_value(
    pod: dict[str, Any], container: dict[str, Any], ref: dict[str, Any], node: SimNode
) -> str:
    target = container
    if ref.get("containerName"):
        target = next(
            (
                c
                for c in (pod.get("spec") or {}).get("containers") or []
                if c.get("name") == ref["containerName"]
            ),
            container,
        )
    section, _, resource = str(ref.get("resource", "")).partition(".")
    resources = target.get("resources") or {}
    raw = (resources.get(section) or {}).get(resource)
    if raw is None and section == "requests":
        raw = (resources.get("limits") or {}).get(resource)
    try:
        value = (
            parse_quantity(raw) if raw is not None else node.allocatable.get(resource, Decimal(0))
        )
        divisor = parse_quantity(ref.get("divisor") or "1")
    except QuantityError as exc:
        raise ContainerConfigError(f"resourceFieldRef {ref.get('resource')}: {exc}") from exc
    return str(math.ceil(value / divisor))


class EnvResolver:
    """Builds a container's environment from the store, as the kubelet does before start."""

    def __init__(self, store: StoreLike, pod: dict[str, Any], node: SimNode, pod_ip: str) -> None:
        self.store = store
        self.pod = pod
        self.node = node
        self.pod_ip = pod_ip
        self.namespace = key_of(pod)[0]

    def _object_data(self, plural: str, name: str, optional: bool) -> dict[str, str] | None:
        kind = "secret" if plural == "secrets" else "configmap"
        try:
            obj = self.store.get(self.store.resource(plural), self.namespace, name)
        except Exception as exc:
            if is_missing(exc):
                if optional:
                    return None
                raise ContainerConfigError(f'{kind} "{name}" not found') from None
            raise
        data: dict[str, str] = {}
        if plural == "secrets":
            for key, value in (obj.get("data") or {}).items():
                data[key] = base64.b64decode(value).decode("utf-8", "replace")
            data.update(obj.get("stringData") or {})
        else:
            data.update(obj.get("data") or {})
            for key, value in (obj.get("binaryData") or {}).items():
                data[key] = base64.b64decode(value).decode("utf-8", "replace")
        return data

    def _key(self, plural: str, ref: dict[str, Any]) -> str | None:
        optional = bool(ref.get("optional"))
        data = self._object_data(plural, ref.get("name", ""), optional)
        if data is None:
            return None
        key = ref.get("key", "")
        if key not in data:
            if optional:
                return None
            kind = "secret" if plural == "secrets" else "configmap"
            raise ContainerConfigError(
                f"couldn't find key {key} in {kind.title() if kind == 'secret' else 'ConfigMap'} "
                f"{self.namespace}/{ref.get('name')}"
            )
        return data[key]

    def environment(self, container: dict[str, Any]) -> dict[str, str]:
        env: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            for kind, plural in (("secretRef", "secrets"), ("configMapRef", "configmaps")):
                if kind in source:
                    ref = source[kind]
                    data = self._object_data(plural, ref.get("name", ""), bool(ref.get("optional")))
                    for key, text in (data or {}).items():
                        env[prefix + key] = text
        for var in container.get("env") or []:
            name = var.get("name", "")
            if "valueFrom" not in var:
                env[name] = expand_references(str(var.get("value", "")), env)
                continue
            source = var["valueFrom"]
            value: str | None
            if "secretKeyRef" in source:
                value = self._key("secrets", source["secretKeyRef"])
            elif "configMapKeyRef" in source:
                value = self._key("configmaps", source["configMapKeyRef"])
            elif "fieldRef" in source:
                value = _field_value(
                    self.pod, source["fieldRef"].get("fieldPath", ""), self.pod_ip, self.node
                )
            elif "resourceFieldRef" in source:
                value = _resource_value(self.pod, container, source["resourceFieldRef"], self.node)
            else:
                raise ContainerConfigError(f"env {name}: unsupported valueFrom {sorted(source)}")
            if value is not None:
                env[name] = value
        return env

    def write_volumes(
        self, rootfs: Path, container: dict[str, Any], volumes_root: Path | None = None
    ) -> list[str]:
        """Materialise the container's mounts under rootfs; return their mount paths.

        Secret/ConfigMap/downwardAPI files are written, emptyDirs created, and a
        PersistentVolumeClaim's mount becomes a link to its bound volume's directory under
        ``volumes_root`` (kept across pods, as a real volume is).
        """
        volumes = {v.get("name"): v for v in (self.pod.get("spec") or {}).get("volumes") or []}
        mount_paths: list[str] = []
        for mount in container.get("volumeMounts") or []:
            volume = volumes.get(mount.get("name"))
            if volume is None:
                continue
            mount_path = "/" + str(mount.get("mountPath", "")).strip("/")
            if mount_path != "/":
                mount_paths.append(mount_path)
            target = rootfs / mount_path.lstrip("/")
            if "persistentVolumeClaim" in volume and volumes_root is not None:
                self._link_claim(volume["persistentVolumeClaim"], mount, target, volumes_root)
                continue
            if mount.get("subPath"):
                target = target.parent
            target.mkdir(parents=True, exist_ok=True)
            files: dict[str, str] = {}
            if "secret" in volume:
                ref = volume["secret"]
                files = (
                    self._object_data(
                        "secrets", ref.get("secretName", ""), bool(ref.get("optional"))
                    )
                    or {}
                )
                files = _select_items(files, ref.get("items"))
            elif "configMap" in volume:
                ref = volume["configMap"]
                files = (
                    self._object_data("configmaps", ref.get("name", ""), bool(ref.get("optional")))
                    or {}
                )
                files = _select_items(files, ref.get("items"))
            elif "downwardAPI" in volume:
                for item in volume["downwardAPI"].get("items") or []:
                    if "fieldRef" in item:
                        files[item["path"]] = _field_value(
                            self.pod, item["fieldRef"].get("fieldPath", ""), self.pod_ip, self.node
                        )
            for rel, content in files.items():
                path = target / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content)
        return mount_paths

    def _link_claim(
        self, ref: dict[str, Any], mount: dict[str, Any], target: Path, volumes_root: Path
    ) -> None:
        """Point the mount at the claim's volume directory, made on first use.

        The directory is named after the bound PersistentVolume (``spec.volumeName``), so
        it lives as long as the volume, not the pod; an unbound claim (the scheduler does
        not place such a pod) falls back to the claim's uid.
        """
        claim = ref.get("claimName", "")
        try:
            pvc = self.store.get(self.store.resource("persistentvolumeclaims"), self.namespace, claim)
        except Exception as exc:
            if is_missing(exc):
                raise ContainerConfigError(
                    f'persistentvolumeclaim "{claim}" not found'
                ) from None
            raise
        volume_name = (pvc.get("spec") or {}).get("volumeName") or (
            f"claim-{(pvc.get('metadata') or {}).get('uid', claim)}"
        )
        source = volumes_root / volume_name
        if mount.get("subPath"):
            source = source / str(mount["subPath"]).strip("/")
        source.mkdir(parents=True, exist_ok=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            return
        target.symlink_to(source, target_is_directory=True)


def _select_items(data: dict[str, str], items: list[dict[str, Any]] | None) -> dict[str, str]:
    if not items:
        return data
    return {
        item.get("path", item["key"]): data[item["key"]]
        for item in items
        if item.get("key") in data
    }


# ------------------------------------------------------------------ the process container


class ProcessContainer:
    """A running local process playing a container (the ``RunningContainer`` protocol)."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        container: dict[str, Any],
        pod_ip: str,
        clock: Clock,
        logfile: ContainerLog,
        *,
        cwd: str,
        env: dict[str, str],
        restart_policy: str = "Always",
        rootfs: Path | None = None,
    ) -> None:
        self.process = process
        self.rootfs = rootfs  # where the termination message file would be
        self.restart_policy = restart_policy  # the Killing text says whether it restarts
        self.cwd = cwd  # exec probes run where the container runs, with its environment
        self.env = env
        self.container = container
        self.pod_ip = pod_ip
        self.clock = clock
        self.log = logfile
        self._changes: asyncio.Queue[ContainerChange] = asyncio.Queue()
        self._stopping = False
        self._started = asyncio.get_running_loop().time()
        self._tasks = [
            asyncio.ensure_future(self._watch_exit()),
            asyncio.ensure_future(self._probes()),
        ]
        _live_groups.add(process.pid)

    @property
    def pgid(self) -> int:
        return self.process.pid  # start_new_session: the child leads its own group

    async def _watch_exit(self) -> None:
        code = await self.process.wait()
        _live_groups.discard(self.pgid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(
                self.pgid, signal.SIGKILL
            )  # the container is gone: so is everything it forked
        if not self._stopping:
            await self._changes.put(ContainerChange("exited", exit=await self._exit_status(code)))

    async def _exit_status(self, returncode: int) -> ExitStatus:
        """The exit as the runtime reports it, with the termination message the kubelet adds."""
        status = exit_status(returncode)
        if self.rootfs is not None:
            # the last lines may still be in the pipe: wait until the log has them all
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self.log.wait_closed()
            status.message = termination_message(
                self.container, status.code, self.log.records(), self.rootfs
            )
        return status

    async def _probes(self) -> None:
        """The kubelet's probe workers: startup first, then readiness and liveness together."""
        startup = self.container.get("startupProbe")
        if startup is not None:
            if not await self._startup(startup):
                return
            await self._changes.put(ContainerChange("started"))
        await asyncio.gather(self._readiness(), self._liveness())

    async def _probe(self, probe: dict[str, Any]) -> ProbeResult:
        return await run_probe(probe, self.container, self.pod_ip, cwd=self.cwd, env=self.env)

    async def _startup(self, probe: dict[str, Any]) -> bool:
        """Probe until it passes (True) or fails ``failureThreshold`` times in a row (False)."""
        return await self._probe_until_kill(probe, "Startup", until_ok=True)

    async def _liveness(self) -> None:
        probe = self.container.get("livenessProbe")
        if probe is None:
            return
        await self._probe_until_kill(probe, "Liveness", until_ok=False)

    async def _probe_until_kill(self, probe: dict[str, Any], kind: str, *, until_ok: bool) -> bool:
        """Run ``probe`` every period from its initial delay, as the kubelet runs startup
        and liveness probes: each failure is reported, and ``failureThreshold`` failures
        in a row ask for the container's kill (False). With ``until_ok`` (a startup probe)
        the first success ends the probing (True); otherwise (liveness) a success resets
        the count and probing goes on for the container's life."""
        timing = ProbeTiming.of(probe)
        await self._until_initial_delay(timing)
        failures = 0
        while True:
            result = await self._probe(probe)
            if result.ok:
                if until_ok:
                    return True
                failures = 0
            else:
                failures += 1
                await self._changes.put(
                    ContainerChange("unhealthy", unhealthy_message(kind, result.output))
                )
                if failures >= timing.failure_threshold:
                    await self._changes.put(self._probe_kill(kind, timing))
                    return False
            await self.clock.sleep(timing.period)

    async def _until_initial_delay(self, timing: ProbeTiming) -> None:
        """initialDelaySeconds counts from the container's start, not from the probe's:
        a liveness probe held back by a slow startup probe runs as soon as it may."""
        ran = self.clock.cluster_seconds(asyncio.get_running_loop().time() - self._started)
        await self.clock.sleep(max(0.0, timing.initial_delay - ran))

    def _probe_kill(self, kind: str, timing: ProbeTiming) -> ContainerChange:
        message = probe_kill_message(str(self.container.get("name")), kind, self.restart_policy)
        return ContainerChange("probe-kill", message, grace=timing.termination_grace)

    async def _readiness(self) -> None:
        probe = self.container.get("readinessProbe")
        if probe is None:
            await self._wait_port_open()
            await self._changes.put(ContainerChange("ready"))
            return
        timing = ProbeTiming.of(probe)
        await self._until_initial_delay(timing)
        successes = 0
        ready = False
        while True:
            result = await self._probe(probe)
            if result.ok:
                successes += 1
                if not ready and successes >= timing.success_threshold:
                    ready = True
                    await self._changes.put(ContainerChange("ready"))
            else:
                successes = 0
                await self._changes.put(
                    ContainerChange("unready", unhealthy_message("Readiness", result.output))
                )
                ready = False
            await self.clock.sleep(timing.period)

    async def _wait_port_open(self) -> None:
        """Without a probe: ready once the first declared port accepts connections."""
        ports = self.container.get("ports") or []
        if not ports:
            return
        port = int(ports[0]["containerPort"])
        # A foreign process gives no signal when it starts listening: checking the port is
        # the only way to know (the kubelet's own probes are periodic for the same reason).
        while not await _tcp_ok(self.pod_ip, port):  # noqa: ASYNC110
            await asyncio.sleep(READY_CHECK_INTERVAL)

    async def next_change(self) -> ContainerChange:
        return await self._changes.get()

    async def stop(self, grace_seconds: float) -> ExitStatus:
        """SIGTERM to the process group, SIGKILL when the grace period (cluster time) ends."""
        self._stopping = True
        for task in self._tasks[1:]:
            task.cancel()
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pgid, signal.SIGTERM)
            try:
                async with asyncio.timeout(self.clock.real_seconds(grace_seconds)):
                    await self.process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.pgid, signal.SIGKILL)
                await self.process.wait()
        with contextlib.suppress(asyncio.CancelledError):
            await self._tasks[0]
        assert self.process.returncode is not None
        return await self._exit_status(self.process.returncode)

    def kill_now(self) -> None:
        """Synchronous SIGKILL of the whole group (pod force-deleted, simulator stopping)."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        if self.process.returncode is None:  # after exit the group was killed and may be reused
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pgid, signal.SIGKILL)
        _live_groups.discard(self.pgid)


def exit_status(returncode: int) -> ExitStatus:
    """A Popen return code as the runtime reports it: killed by signal N → exit code 128+N."""
    if returncode < 0:
        return ExitStatus(128 - returncode, "Error", signal=-returncode)
    return ExitStatus(returncode)


async def _tcp_ok(host: str, port: int, limit: float = 1.0) -> bool:
    try:
        async with asyncio.timeout(limit):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return True


# ------------------------------------------------------------------ the runtime


class ProcessRuntime:
    """Runs each pod's first container as a local process; other containers are simulated."""

    def __init__(
        self,
        clock: Clock,
        *,
        image_commands: dict[str, list[str]] | None = None,
        root: str | None = None,
        pod_ip_prefix: str = "127.1",
    ) -> None:
        self.clock = clock
        self.image_commands = dict(image_commands or {})
        self._own_root = root is None
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="aks-sim-pods-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.pod_ip_prefix = pod_ip_prefix
        self.store: StoreLike | None = None
        self._ips: dict[str, str] = {}
        # Where this simulator starts handing out 127.N.x.y: spread by process id, so two
        # simulators on one machine (tests running side by side, a demo) rarely hand out
        # the same address and fight over the same port.
        self._next_ip = 2 + (os.getpid() * 7919) % 60000
        self._containers: dict[tuple[str, str], dict[str, ProcessContainer]] = {}
        self._logs: dict[tuple[str, str, str], list[ContainerLog]] = {}
        self._pumps: set[asyncio.Task[Any]] = set()
        self._every_process: list[ProcessContainer] = []  # so close() can reap them all

    # pod network
    def allocate_pod_ip(self, pod: dict[str, Any], node: SimNode) -> str:
        uid = (pod.get("metadata") or {}).get("uid", "")
        requested = _requested_ip(pod)
        if uid not in self._ips and requested and requested not in self._ips.values():
            self._ips[uid] = requested
        if uid not in self._ips:
            n = self._next_ip
            self._next_ip = self._next_ip + 1 if self._next_ip < 65000 else 2
            if n % 256 in (0, 255):  # skip .0 and .255: legal on lo, but confusing to read
                return self.allocate_pod_ip(pod, node)
            self._ips[uid] = f"{self.pod_ip_prefix}.{n // 256}.{n % 256}"
        return self._ips[uid]

    def pod_dir(self, namespace: str, name: str) -> Path:
        return self.root / namespace / name

    def release_pod(self, pod: dict[str, Any]) -> None:
        namespace, name = key_of(pod)
        for container in self._containers.pop((namespace, name), {}).values():
            container.kill_now()
        for key in [k for k in self._logs if k[:2] == (namespace, name)]:
            del self._logs[key]
        self._ips.pop((pod.get("metadata") or {}).get("uid", ""), None)
        shutil.rmtree(self.pod_dir(namespace, name), ignore_errors=True)

    def command_for(self, container: dict[str, Any]) -> list[str]:
        """What the runtime would exec: the mapping plays the image's default CMD.

        As with an image whose ENTRYPOINT passes its arguments through (the Jupyter images
        use ``tini -g --``): ``command`` replaces everything, ``args`` alone are the command
        line (this is how KubeSpawner's ``cmd`` arrives), and only a container with neither
        falls back to the per-image default from the configuration.
        """
        args = [str(a) for a in container.get("args") or []]
        if container.get("command"):
            return [str(c) for c in container["command"]] + args
        if args:
            return args
        image = str(container.get("image", ""))
        for glob, command in self.image_commands.items():
            if fnmatch.fnmatchcase(image, glob):
                return list(command)
        raise ContainerStartError(
            f'no command for image "{image}": give the container a command, or map the image in '
            "the cluster config (image_commands / --image-command GLOB=COMMAND)"
        )

    async def start(self, launch: ContainerLaunch) -> Any:
        if not launch.main:
            return SimulatedContainer(
                self.clock,
                launch.scenario,
                launch.container,
                launch.pod_ip,
                main=False,
                restart_policy=launch.restart_policy,
            )
        pod, container, pod_ip = launch.pod, launch.container, launch.pod_ip
        assert self.store is not None, "ProcessRuntime.store is set by the kubelet at start"
        namespace, name = key_of(pod)
        resolver = EnvResolver(self.store, pod, launch.node, pod_ip)
        env = resolver.environment(container)
        rootfs = self.pod_dir(namespace, name) / "rootfs"
        rootfs.mkdir(parents=True, exist_ok=True)
        mount_paths = resolver.write_volumes(rootfs, container, self.root / "_volumes")
        command = [
            _in_rootfs(_own_ip(expand_references(part, env), pod_ip), rootfs, mount_paths)
            for part in self.command_for(container)
        ]
        env = {k: _in_rootfs(_own_ip(v, pod_ip), rootfs, mount_paths) for k, v in env.items()}
        env["KUBESIM_ROOTFS"] = str(rootfs)
        full_env = {k: os.environ[k] for k in PASSED_THROUGH_ENV if k in os.environ}
        # tools installed next to the simulator's interpreter (jupyterhub-singleuser in the
        # same virtualenv) are found even when that virtualenv is not activated
        full_env["PATH"] = os.pathsep.join(
            [str(Path(sys.executable).parent), full_env.get("PATH", os.defpath)]
        )
        full_env.update({"HOSTNAME": name, "HOME": str(rootfs)})
        full_env.update(env)
        cwd = _working_dir(container.get("workingDir"), rootfs)
        logfile = ContainerLog(
            self.pod_dir(namespace, name) / "logs" / f"{container['name']}-{launch.restart_count}.log"
        )
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                cwd=cwd,
                env=full_env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            logfile.close()
            raise ContainerStartError(
                f"failed to create containerd task: failed to create shim task: OCI runtime create "
                f"failed: runc create failed: unable to start container process: exec: "
                f'"{command[0]}": {exc.strerror or exc}'
            ) from exc
        assert process.stdout is not None
        pump = asyncio.ensure_future(logfile.pump(process.stdout))
        self._pumps.add(pump)
        pump.add_done_callback(self._pumps.discard)
        running = ProcessContainer(
            process,
            container,
            pod_ip,
            self.clock,
            logfile,
            cwd=cwd,
            env=full_env,
            restart_policy=launch.restart_policy,
            rootfs=rootfs,
        )
        self._containers.setdefault((namespace, name), {})[container["name"]] = running
        self._every_process = [c for c in self._every_process if c.process.returncode is None]
        self._every_process.append(running)
        self._logs.setdefault((namespace, name, container["name"]), []).append(logfile)
        log.info(
            "pod %s/%s: started %s (pid %d) on %s", namespace, name, command[0], process.pid, pod_ip
        )
        return running

    def log_source(self, namespace: str, name: str, query: dict[str, Any]) -> Any:
        """For ``pods/{name}/log``: text, an async iterator (follow), or None (nothing ran yet)."""
        runs = self._logs.get((namespace, name, str(query.get("container", ""))))
        if not runs:
            return None
        run, follow = select_run(runs, query, name)
        try:
            options = LogOptions.from_query(query, name)
        except ValueError:
            raise bad_request("tailLines, sinceSeconds and limitBytes must be integers") from None
        if follow:
            return run.follow(options)
        return run.text(options)

    async def close(self) -> None:
        """Kill every process group and wait until each process is reaped.

        Waiting matters: a SIGKILLed process exists until the kernel has torn it down, and
        the promise is that none outlives the simulator's stop.
        """
        victims = list(self._every_process)
        for container in victims:
            container.kill_now()
        self._containers.clear()
        _kill_leftovers()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await asyncio.gather(*(c.process.wait() for c in victims))
        for pump in list(self._pumps):
            pump.cancel()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)


_ANY_ADDRESS = re.compile(r"(?<![\d.])0\.0\.0\.0(?![\d.])")


def _own_ip(value: str, pod_ip: str) -> str:
    """In its own network namespace 0.0.0.0 would be the pod's IP: make it so here.

    Only the whole address is replaced (``--ip=0.0.0.0``, ``http://0.0.0.0:8888/``), never
    a part of another one (``10.0.0.0/8``).
    """
    return _ANY_ADDRESS.sub(pod_ip, value)


#: The annotation Calico's CNI reads to give a pod a fixed address; honoured here so that a
#: client can know a pod's IP before it runs (a certificate naming it, made in advance).
FIXED_IP_ANNOTATION = "cni.projectcalico.org/ipAddrs"


def _requested_ip(pod: dict[str, Any]) -> str | None:
    """The loopback address the pod asks for in ``cni.projectcalico.org/ipAddrs``, if any.

    Only an address in 127.0.0.0/8 other than 127.0.0.1 is taken (this runtime's pod
    network); anything else is ignored, as a CNI outside its pool would refuse it.
    """
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(FIXED_IP_ANNOTATION)
    if not raw:
        return None
    try:
        addresses = json.loads(raw)
        address = ipaddress.ip_address(str(addresses[0]))
    except (ValueError, IndexError, KeyError, TypeError):
        return None
    if address.version != 4 or not address.is_loopback or str(address) == "127.0.0.1":
        return None
    return str(address)


def _in_rootfs(value: str, rootfs: Path, mount_paths: list[str]) -> str:
    """A path under one of the pod's mounts, as the process can open it: under rootfs.

    Whole values (``/etc/jupyterhub/ssl/ssl.key``) and option values
    (``--notebook-dir=/home/jovyan``) are rewritten; anything else is left alone, so a
    path that is not a mount (``/usr/bin/python``) still names the host's file.
    """
    prefix, sep, path = value.partition("=") if value.startswith("-") else ("", "", value)
    for mount in mount_paths:
        if path == mount or path.startswith(mount + "/"):
            return f"{prefix}{sep}{rootfs}{path}"
    return value


def _working_dir(working_dir: str | None, rootfs: Path) -> str:
    if not working_dir:
        return str(rootfs)
    if Path(working_dir).is_dir():
        return working_dir
    inside = rootfs / working_dir.lstrip("/")
    inside.mkdir(parents=True, exist_ok=True)
    return str(inside)
