"""Run a whole hub on one machine: simulator, proxy and JupyterHub as supervised processes.

The demo (``python -m devtools.demo``) and the end-to-end tests start the
same three processes the same way, so what a newcomer sees in ``make demo`` is what
the browser tests check. Each process runs in its own session (process group): a
terminal's Ctrl-C reaches only the launcher, which then stops the hub first (so it can
stop its servers through the spawner), then the proxy, then the simulator (which stops
the single-user processes it runs as pods), and finally kills whatever is left of each
group, so nothing outlives the launcher.

Readiness is taken from the log line each program prints once it is serving, not from
polling its port: the line is the program's own statement that it is ready.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml
from traitlets.config.loader import PyFileConfigLoader

#: The repository root when running from a checkout; subprocesses get it on PYTHONPATH so
#: that they import this tree rather than some other installed copy of the package.
PACKAGE_ROOT = Path(__file__).resolve().parent.parent

#: What each program prints once it serves requests.
HUB_READY = re.compile(r"JupyterHub is now running")
PROXY_READY = re.compile(r"Proxy API at")
SIMULATOR_READY = re.compile(r"(?i)(serving|listening|running) (on|at) https?://")


class ProcessFailed(RuntimeError):
    """A supervised process exited or did not become ready; the message carries its last log lines."""


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the kernel for a port nobody is listening on (the usual bind-to-0 trick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def find_proxy_command(search_from: Iterable[Path] = ()) -> str:
    """Locate configurable-http-proxy: ``node_modules/.bin`` of the repo (what ``make`` installs), else PATH.

    Raises a FileNotFoundError that says how to install it, because JupyterHub's own
    error for a missing proxy ("No such file or directory") does not.
    """
    candidates = [*search_from, PACKAGE_ROOT, Path.cwd()]
    for root in candidates:
        path = Path(root) / "node_modules" / ".bin" / "configurable-http-proxy"
        if path.exists():
            return str(path)
    found = shutil.which("configurable-http-proxy")
    if found:
        return found
    raise FileNotFoundError(
        "configurable-http-proxy not found in node_modules/.bin or on PATH; "
        "run `make demo` (it runs `npm install`) or `npm install configurable-http-proxy`"
    )


def subprocess_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for every child: this tree (and its simulator) first on PYTHONPATH, this Python's bin first on PATH.

    The bin directory matters for process mode: the simulator runs ``jupyterhub-singleuser``
    by name, and it must be the one installed next to the interpreter running the demo.
    """
    env = dict(os.environ)
    python_path = [str(PACKAGE_ROOT), str(PACKAGE_ROOT / "simulator")]
    if env.get("PYTHONPATH"):
        python_path.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(python_path)
    bin_dirs = [str(Path(sys.executable).parent)]
    node_bin = PACKAGE_ROOT / "node_modules" / ".bin"
    if node_bin.is_dir():
        bin_dirs.append(str(node_bin))
    env["PATH"] = os.pathsep.join([*bin_dirs, env.get("PATH", "")])
    env.setdefault("PYTHONUNBUFFERED", "1")
    if extra:
        env.update(extra)
    return env


@dataclass
class SupervisedProcess:
    """One program in its own process group, its output captured line by line.

    Output goes to ``log_path`` (kept as a test artifact) and, when ``echo`` is set, to
    the launcher's stdout with a ``[name]`` prefix. ``wait_for_line`` lets a caller block
    until the program says something (e.g. that it is ready), failing at once if it dies.
    """

    name: str
    argv: Sequence[str]
    log_path: Path
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    echo: bool = False
    process: subprocess.Popen[bytes] | None = None
    _lines: deque[str] = field(default_factory=lambda: deque(maxlen=400))
    _line_count: int = 0
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _reader: threading.Thread | None = None
    _output_closed: bool = False

    def start(self) -> SupervisedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.process = subprocess.Popen(
                list(self.argv),
                env=dict(self.env) or None,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise ProcessFailed(f"{self.name}: cannot run {self.argv[0]!r}: {exc}") from exc
        assert self.process.stdout is not None
        self._reader = threading.Thread(
            target=self._read_output, args=(self.process.stdout,), name=f"{self.name}-output", daemon=True
        )
        self._reader.start()
        return self

    def _read_output(self, stream: IO[bytes]) -> None:
        with open(self.log_path, "a", encoding="utf-8") as log:
            for raw in stream:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                log.write(line + "\n")
                log.flush()
                if self.echo:
                    print(f"[{self.name}] {line}", flush=True)
                with self._changed:
                    self._lines.append(line)
                    self._line_count += 1
                    self._changed.notify_all()
        with self._changed:
            self._output_closed = True
            self._changed.notify_all()

    @property
    def pid(self) -> int:
        if self.process is None:
            raise ProcessFailed(f"{self.name} was never started")
        return self.process.pid

    @property
    def line_count(self) -> int:
        """How many lines the process has written so far: a mark for ``wait_for_line(after=...)``."""
        with self._changed:
            return self._line_count

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, count: int = 30) -> str:
        """The last lines the program wrote: what to show when it fails."""
        with self._changed:
            return self._tail_locked(count)

    def wait_for_line(self, pattern: re.Pattern[str] | str, timeout: float, *, after: int = 0) -> str:
        """Block until a line matching ``pattern`` appears (among lines numbered >= ``after``).

        Wakes on every new line and when the output closes (the process died), so a crash
        is reported at once with the last lines of its log rather than after ``timeout``.
        """
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                first = self._line_count - len(self._lines)
                for index, line in enumerate(self._lines):
                    if first + index >= after and regex.search(line):
                        return line
                if self._output_closed:
                    raise ProcessFailed(
                        f"{self.name} exited (code {self.process.poll() if self.process else None}) "
                        f"before printing /{regex.pattern}/; last lines:\n{self._tail_locked()}"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ProcessFailed(
                        f"{self.name} did not print /{regex.pattern}/ within {timeout:.0f}s; "
                        f"last lines:\n{self._tail_locked()}"
                    )
                self._changed.wait(remaining)

    def _tail_locked(self, count: int = 30) -> str:
        return "\n".join(list(self._lines)[-count:])

    def stop(self, timeout: float = 15.0, sig: int = signal.SIGTERM) -> int | None:
        """Ask the whole process group to stop, then kill what is left after ``timeout``.

        The group is killed even when its leader exited cleanly: a child it forgot to
        reap must not outlive the launcher.
        """
        if self.process is None:
            return None
        pgid = self.process.pid  # start_new_session: the leader's pid is the group id
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                self.process.wait(5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        if self._reader is not None:
            self._reader.join(5)
        return self.process.returncode


@dataclass
class SimulatorOptions:
    """How to run ``python -m kubesim`` for a hub: process mode, fast or real timings."""

    port: int = 0
    process_mode: bool = True
    fast: bool = False
    # authentication and RBAC (the program's default): off here, so the stack's own checks
    # and the browser tests read the simulator over plain HTTP without a token
    auth: bool = False
    extra_args: Sequence[str] = ()

    def argv(self, kubeconfig: Path) -> list[str]:
        argv = [
            sys.executable,
            "-m",
            "kubesim",
            "--port",
            str(self.port),  # 0: the simulator binds a free port itself (no race)
            "--kubeconfig",
            str(kubeconfig),
        ]
        if self.process_mode:
            argv.append("--process-mode")
        if self.fast:
            argv.append("--fast")
        if not self.auth:
            argv.append("--no-auth")
        argv.extend(self.extra_args)
        return argv


def start_simulator(
    state_dir: Path, options: SimulatorOptions, *, echo: bool = False, timeout: float = 30.0
) -> tuple[SupervisedProcess, Path]:
    """Start the simulator; returns the process and the kubeconfig it wrote, once it serves."""
    kubeconfig = state_dir / "kubeconfig"
    with contextlib.suppress(FileNotFoundError):
        kubeconfig.unlink()
    proc = SupervisedProcess(
        name="simulator",
        argv=options.argv(kubeconfig),
        log_path=state_dir / "simulator.log",
        env=subprocess_env(),
        cwd=state_dir,
        echo=echo,
    ).start()
    try:
        proc.wait_for_line(SIMULATOR_READY, timeout)
    except ProcessFailed:
        proc.stop()
        raise
    if not kubeconfig.exists():
        proc.stop()
        raise ProcessFailed(f"the simulator is running but wrote no kubeconfig at {kubeconfig}")
    return proc, kubeconfig


def namespaces_to_prepare(config_path: Path) -> list[str]:
    """The fixed namespace a hub config puts its pods in, which the spawner does not create.

    On a cluster the operator creates it (``examples/hardened/users-namespace.yaml``);
    on the simulator the launcher does, so that any example runs there unchanged. With
    ``enable_user_namespaces`` the spawner creates its namespaces itself.
    """
    config = PyFileConfigLoader(config_path.name, path=str(config_path.parent)).load_config()
    settings = config.KubeSpawner
    if settings.get("enable_user_namespaces"):
        return []
    namespace = settings.get("namespace")
    if isinstance(namespace, str) and namespace and "{" not in namespace:
        return [namespace]
    return []


def ensure_namespaces(kubeconfig: Path, names: Iterable[str]) -> list[str]:
    """Create the namespaces ``names`` on the simulator of ``kubeconfig``; returns those it created."""
    config = yaml.safe_load(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    server = cluster["server"]
    headers = {"Content-Type": "application/json"}
    token = (config.get("users") or [{}])[0].get("user", {}).get("token")
    if token:  # the simulator's admin token (authentication is on by default)
        headers["Authorization"] = f"Bearer {token}"
    context = None
    if cluster.get("certificate-authority"):
        context = ssl.create_default_context(cafile=cluster["certificate-authority"])
    created = []
    for name in names:
        body = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        request = urllib.request.Request(
            f"{server}/api/v1/namespaces",
            data=body.encode(),
            method="POST",
            headers=headers,
        )
        try:
            with urllib.request.urlopen(request, timeout=10, context=context):
                created.append(name)
        except urllib.error.HTTPError as exc:
            if exc.code != 409:  # 409 AlreadyExists: nothing to do
                raise ProcessFailed(
                    f"cannot create namespace {name!r} on the simulator at {server}: "
                    f"HTTP {exc.code} {exc.read().decode('utf-8', 'replace')[:300]}"
                ) from exc
    return created


@dataclass
class ProxyEndpoints:
    """Where the proxy listens and how the hub talks to it."""

    public_port: int
    api_port: int
    auth_token: str

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.public_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"


def start_proxy(
    state_dir: Path, *, public_port: int = 0, echo: bool = False, timeout: float = 20.0
) -> tuple[SupervisedProcess, ProxyEndpoints]:
    """Start configurable-http-proxy ourselves so that it survives hub restarts and never leaks."""
    endpoints = ProxyEndpoints(
        public_port=public_port or free_port(),
        api_port=free_port(),
        auth_token=secrets.token_hex(32),
    )
    proc = SupervisedProcess(
        name="proxy",
        argv=[
            find_proxy_command(),
            "--ip",
            "127.0.0.1",
            "--port",
            str(endpoints.public_port),
            "--api-ip",
            "127.0.0.1",
            "--api-port",
            str(endpoints.api_port),
        ],
        log_path=state_dir / "proxy.log",
        env=subprocess_env({"CONFIGPROXY_AUTH_TOKEN": endpoints.auth_token}),
        cwd=state_dir,
        echo=echo,
    ).start()
    try:
        proc.wait_for_line(PROXY_READY, timeout)
    except ProcessFailed:
        proc.stop()
        raise
    return proc, endpoints


def write_hub_config(
    state_dir: Path,
    base_config: Path,
    proxy: ProxyEndpoints,
    *,
    hub_port: int,
    overrides: str = "",
    proxy_started_by_hub: bool = False,
) -> Path:
    """Write a config that loads ``base_config`` and then points the hub at our proxy and state dir.

    The examples stay runnable on their own (``jupyterhub -f examples/local/...``, the hub
    starting its own proxy); this wrapper only adds what belongs to the launcher, plus
    what any example needs to run on one machine: the pods reach the hub on loopback
    (not through a ``hub`` Service) and the hub reaches pods by IP (no cluster DNS for
    ``services_enabled``), a login when the example configures no
    authenticator (the cluster examples leave that to the operator), and
    ``--allow-root`` for jupyter_server when the "pods" run as root (process mode runs
    them as the launcher's user). ``overrides`` is extra Python appended last (the
    tests use it for their settings).

    With ``proxy_started_by_hub`` the hub starts the proxy itself on ``proxy``'s ports:
    what ``internal_ssl`` needs, because the proxy's TLS certificates are made by the hub
    when it starts. With ``internal_ssl`` each pod is also given a fixed loopback address
    before it is created (the ``cni.projectcalico.org/ipAddrs`` annotation, which the
    simulator's process mode honours), so the certificate the hub makes for the server
    names the very address the hub and the proxy will reach it at.
    """
    config_path = state_dir / "jupyterhub_config.py"
    text = f'''# Written by devtools.local_stack: {base_config} plus the launcher's settings.
c = get_config()  # noqa
load_subconfig({str(base_config)!r})  # noqa
c.JupyterHub.bind_url = {proxy.public_url + "/"!r}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.JupyterHub.db_url = {"sqlite:///" + str(state_dir / "jupyterhub.sqlite")!r}
c.JupyterHub.cookie_secret_file = {str(state_dir / "jupyterhub_cookie_secret")!r}
c.JupyterHub.pid_file = {str(state_dir / "jupyterhub.pid")!r}
c.ConfigurableHTTPProxy.should_start = {proxy_started_by_hub!r}
c.ConfigurableHTTPProxy.api_url = {proxy.api_url!r}
if {proxy_started_by_hub!r} and c.JupyterHub.get("internal_ssl"):
    c.ConfigurableHTTPProxy.api_url = {proxy.api_url.replace("http://", "https://")!r}
c.ConfigurableHTTPProxy.auth_token = {proxy.auth_token!r}
c.JupyterHub.hub_connect_ip = ""  # the hub_ip above: pods on this machine reach it on loopback
if "authenticator_class" not in c.JupyterHub:
    import os as _os

    c.JupyterHub.authenticator_class = "dummy"
    c.DummyAuthenticator.password = _os.environ.get("DEMO_PASSWORD", "demo")
    c.Authenticator.allow_all = True
if {os.geteuid() == 0!r} and "--allow-root" not in list(c.KubeSpawner.get("args", [])):
    c.KubeSpawner.args = [*c.KubeSpawner.get("args", []), "--allow-root"]
if c.KubeSpawner.get("services_enabled") and "get_pod_url" not in c.KubeSpawner:
    # No cluster DNS on this machine: reach the pod by its IP rather than its Service name.
    c.KubeSpawner.get_pod_url = lambda spawner, pod: f"http://{{pod['status']['podIP']}}:{{spawner.port}}"
if c.JupyterHub.get("internal_ssl"):
    from devtools.local_stack import pin_pod_address as _pin_pod_address

    _pin_pod_address(c)
{overrides}
'''
    config_path.write_text(text)
    return config_path


def _free_loopback_address(port: int) -> str:
    """A 127.3.x.y address whose ``port`` is free (127.1/16 is the simulator's own pool)."""
    while True:
        address = f"127.3.{secrets.randbelow(256)}.{1 + secrets.randbelow(254)}"
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((address, port))
            except OSError:
                continue
            return address


def pin_pod_address(c: Any) -> None:
    """For ``internal_ssl`` on one machine: know each pod's address before its certificate.

    JupyterHub makes a server's certificate after ``pre_spawn_hook`` and before ``start()``;
    on a cluster the certificate names the Service's DNS name. There is no cluster DNS
    here, so the hook picks a free loopback address, puts it in the certificate's
    alternative names and asks for it in the pod's annotations, and the hub reaches the
    pod at it over https. The example's own ``pre_spawn_hook`` runs first.
    """
    import inspect

    previous = c.Spawner.get("pre_spawn_hook") or c.KubeSpawner.get("pre_spawn_hook")

    async def pre_spawn_hook(spawner: Any) -> None:
        if previous is not None:
            result = previous(spawner)
            if inspect.isawaitable(result):
                await result
        address = _free_loopback_address(spawner.port or 8888)
        spawner.ssl_alt_names = [*spawner.ssl_alt_names, f"IP:{address}"]
        spawner.extra_annotations = {
            **spawner.extra_annotations,
            "cni.projectcalico.org/ipAddrs": json.dumps([address]),
        }

    c.KubeSpawner.pre_spawn_hook = pre_spawn_hook
    c.KubeSpawner.get_pod_url = (
        lambda spawner, pod: f"https://{pod['status']['podIP']}:{spawner.port or 8888}"
    )


def start_hub(
    state_dir: Path,
    config_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    echo: bool = False,
    timeout: float = 60.0,
    log_name: str = "hub.log",
) -> SupervisedProcess:
    """Start JupyterHub with ``config_path`` and return once it says it is running."""
    proc = SupervisedProcess(
        name="hub",
        argv=[sys.executable, "-m", "jupyterhub", "-f", str(config_path)],
        log_path=state_dir / log_name,
        env=subprocess_env(env),
        cwd=state_dir,
        echo=echo,
    ).start()
    try:
        proc.wait_for_line(HUB_READY, timeout)
    except ProcessFailed:
        proc.stop()
        raise
    return proc


#: What the operator prints once its caches are loading and it campaigns for the Lease.
OPERATOR_READY = re.compile(r"operator \S+ started")
OPERATOR_TEMPLATE = PACKAGE_ROOT / "examples" / "operator" / "template.yaml"


def install_operator_mode(kubeconfig: Path, template_path: Path = OPERATOR_TEMPLATE,
                          *, namespace: str = "default") -> None:
    """The CRDs and the default NotebookTemplate, as an administrator installs them.

    On this machine the "pods" are processes of the launcher's user: the template's
    ``runAsUser``/``runAsNonRoot`` cannot hold, and a root launcher needs jupyter_server's
    ``--allow-root``, so the demo's copy of the template says so (what a cluster runs is
    the file itself).
    """
    import asyncio

    from async_kubespawner.kube.client import ApiSettings, build_api, load_configuration
    from async_kubespawner.operator import crds
    from async_kubespawner.operator.kubeio import NOTEBOOK_TEMPLATES

    template = yaml.safe_load(template_path.read_text())
    pod_spec = template["spec"]["pods"][0]["spec"]
    pod_spec.pop("securityContext", None)
    if os.geteuid() == 0:
        for container in pod_spec["containers"]:
            container["args"] = [*container.get("args", []), "--allow-root"]

    async def install() -> None:
        configuration = await load_configuration(ApiSettings(kubeconfig=str(kubeconfig)))
        api = build_api(configuration, request_timeout=10, retry_timeout=30)
        try:
            for manifest in crds.all_crds():
                existing = await api.get_or_none(
                    _CRDS, None, manifest["metadata"]["name"])
                if existing is None:
                    await api.create(_CRDS, None, manifest)
            if await api.get_or_none(NOTEBOOK_TEMPLATES, namespace,
                                     template["metadata"]["name"]) is None:
                await api.create(NOTEBOOK_TEMPLATES, namespace, template)
        finally:
            await api.close()

    asyncio.run(install())


def _crd_kind() -> object:
    from async_kubespawner.kube.client import ResourceKind

    return ResourceKind("customresourcedefinitions", "CustomResourceDefinition",
                        namespaced=False, prefix="/apis/apiextensions.k8s.io/v1")


_CRDS: Any = _crd_kind()


def start_operator(
    state_dir: Path,
    kubeconfig: Path,
    identity: str,
    *,
    namespace: str = "default",
    echo: bool = False,
    timeout: float = 60.0,
    health_port: int = 0,
    extra_args: Sequence[str] = (),
) -> SupervisedProcess:
    """One operator replica (``python -m async_kubespawner.operator``), once it runs.

    ``health_port`` 0 (the demo's) serves no ``/healthz`` or ``/metrics``: two replicas on
    one machine would otherwise fight over the default port. A benchmark that reads the
    metrics passes a free port, served on loopback only.
    """
    health = ["--health-port", str(health_port)]
    if health_port:
        health += ["--health-address", "127.0.0.1"]
    proc = SupervisedProcess(
        name=identity,
        argv=[sys.executable, "-m", "async_kubespawner.operator", "--namespace", namespace,
              "--kubeconfig", str(kubeconfig), "--identity", identity, *health, *extra_args],
        log_path=state_dir / f"{identity}.log",
        env=subprocess_env(),
        cwd=state_dir,
        echo=echo,
    ).start()
    try:
        proc.wait_for_line(OPERATOR_READY, timeout)
    except ProcessFailed:
        proc.stop()
        raise
    return proc


def stop_all(
    processes: Iterable[SupervisedProcess | None],
    *,
    timeout: float = 20.0,
    on_stop: Callable[[SupervisedProcess], None] | None = None,
) -> None:
    """Stop processes in the given order (hub first, simulator last), each given ``timeout``."""
    for proc in processes:
        if proc is None:
            continue
        if on_stop is not None:
            on_stop(proc)
        proc.stop(timeout)
