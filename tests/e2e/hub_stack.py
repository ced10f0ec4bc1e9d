"""A hub under test: simulator (optional), proxy and JupyterHub as real processes, plus API helpers.

One ``HubStack`` is shared by the tests of a module (starting the three processes costs
a few seconds); each test uses its own user names so that tests do not see each
other's servers. The REST helpers talk to the hub and to the simulator over plain HTTP,
exactly as an operator's script or ``kubectl`` would, so the tests check what really
happened (a pod gone, a server stopped), not what the page claims.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from devtools import local_stack
from devtools.local_stack import (
    ProxyEndpoints,
    SimulatorOptions,
    SupervisedProcess,
)

T = TypeVar("T")

REPO_ROOT = local_stack.PACKAGE_ROOT
ARTIFACTS = REPO_ROOT / "test-artifacts" / "e2e"
#: The configuration of the local demo, which most hub-plus-simulator tests start from.
LOCAL_CONFIG = REPO_ROOT / "examples" / "local" / "jupyterhub_config.py"

#: The launch options every browser test uses: Debian's chromium, never a downloaded one.
CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


def http_json(
    method: str, url: str, *, token: str | None = None, body: Any = None, timeout: float = 30.0
) -> tuple[int, Any]:
    """One HTTP request; returns (status, decoded JSON or None). HTTP errors are returned, not raised.

    The default timeout is well above JupyterHub's own ``slow_spawn_timeout`` (10 s): a
    start request is answered 201 when the server is up within it and 202 after it, so
    a client timeout of 10 s races the hub's answer on a loaded machine.
    """
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("Authorization", f"token {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw) if raw else None
        except ValueError:
            return exc.code, raw.decode("utf-8", "replace")


def eventually(check: Callable[[], T], timeout: float, what: str) -> T:
    """Re-ask an external system (the hub's REST API) until ``check`` returns something truthy.

    The hub offers no way to await "this server has stopped" — a stop answered with 202
    completes in the background — so asking again is the only way to observe it; each
    retry is a real request, and the failure says what never became true.
    """
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still not true after {timeout:.0f}s")
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def children_of(pid: int) -> set[int]:
    """Direct children of ``pid``, read from /proc (the demo's hub, proxy and simulator)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def descendants_of(pid: int) -> set[int]:
    """Every process below ``pid`` (hub, proxy, simulator, and the simulator's pod processes)."""
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        children = set().union(*(children_of(p) for p in frontier))
        frontier = children - found
        found |= children
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@dataclass
class HubStack:
    """The processes of one hub under test and how to reach them."""

    state_dir: Path
    base_config: Path
    overrides: str = ""
    simulator: SimulatorOptions | None = None
    api_token: str = field(default_factory=lambda: secrets.token_hex(24), repr=False)
    hub_port: int = field(default_factory=local_stack.free_port)
    sim_process: SupervisedProcess | None = field(default=None, repr=False)
    proxy_process: SupervisedProcess | None = field(default=None, repr=False)
    hub_process: SupervisedProcess | None = field(default=None, repr=False)
    proxy: ProxyEndpoints | None = field(default=None, repr=False)
    kubeconfig: Path | None = None
    hub_starts: int = 0
    #: The hub starts the proxy itself (internal_ssl: the proxy's certificates are the hub's).
    proxy_started_by_hub: bool = False

    def start(self) -> HubStack:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            if self.simulator is not None:
                self.sim_process, self.kubeconfig = local_stack.start_simulator(
                    self.state_dir, self.simulator
                )
                self.prepare_cluster()
            if self.proxy_started_by_hub:
                self.proxy = local_stack.ProxyEndpoints(
                    public_port=local_stack.free_port(),
                    api_port=local_stack.free_port(),
                    auth_token=secrets.token_hex(32),
                )
            else:
                self.proxy_process, self.proxy = local_stack.start_proxy(self.state_dir)
            self.start_hub()
        except BaseException:
            self.stop()
            raise
        return self

    def prepare_cluster(self) -> None:
        """What runs on the simulator before the proxy and the hub start (a subclass adds
        its own cluster objects and processes here)."""
        self.prepare_namespaces()

    def prepare_namespaces(self) -> None:
        """What the demo does too: create the fixed namespace the config's pods go to."""
        assert self.kubeconfig is not None
        local_stack.ensure_namespaces(self.kubeconfig, local_stack.namespaces_to_prepare(self.base_config))

    def _config(self) -> Path:
        assert self.proxy is not None
        # A service token with admin rights lets the tests use the REST API like an operator.
        service = f'''
c.JupyterHub.services = [{{"name": "e2e-checker", "api_token": {self.api_token!r}}}]
c.JupyterHub.load_roles = [{{"name": "e2e-checker", "scopes": ["admin:users", "admin:servers", "access:servers", "read:hub"], "services": ["e2e-checker"]}}]
'''
        return local_stack.write_hub_config(
            self.state_dir,
            self.base_config,
            self.proxy,
            hub_port=self.hub_port,
            overrides=service + self.overrides,
            proxy_started_by_hub=self.proxy_started_by_hub,
        )

    def start_hub(self) -> None:
        env = {"KUBECONFIG": str(self.kubeconfig)} if self.kubeconfig else {}
        self.hub_starts += 1
        self.hub_process = local_stack.start_hub(
            self.state_dir, self._config(), env=env, log_name=f"hub-{self.hub_starts}.log"
        )

    def use_config(self, base_config: Path) -> None:
        """Restart the hub with another configuration; the simulator and the proxy stay."""
        if base_config == self.base_config and self.hub_process is not None:
            return
        self.stop_hub()
        self.base_config = base_config
        if self.kubeconfig is not None:
            self.prepare_namespaces()
        self.start_hub()

    def stop_hub(self) -> None:
        if self.hub_process is not None:
            self.hub_process.stop()
            self.hub_process = None

    def stop(self) -> None:
        """Stop everything; fail if any process of the stack (pods included) outlives it."""
        processes = [self.hub_process, self.proxy_process, self.sim_process]
        tree: set[int] = set()
        for proc in processes:
            if proc is not None and proc.running():
                tree |= {proc.pid} | descendants_of(proc.pid)
        local_stack.stop_all(processes)
        self.hub_process = self.proxy_process = self.sim_process = None
        survivors = sorted(pid for pid in tree if alive(pid))
        assert not survivors, f"processes outlived the stack: {survivors}"

    # -- addresses ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self.proxy is not None
        return self.proxy.public_url

    @property
    def hub_api(self) -> str:
        return f"{self.url}/hub/api"

    @property
    def simulator_url(self) -> str:
        assert self.kubeconfig is not None, "this stack runs no simulator"
        config = yaml.safe_load(self.kubeconfig.read_text())
        return str(config["clusters"][0]["cluster"]["server"])

    # -- checks through the APIs ------------------------------------------------------------

    def hub_get(self, path: str) -> tuple[int, Any]:
        return http_json("GET", f"{self.hub_api}{path}", token=self.api_token)

    def user_model(self, name: str) -> dict[str, Any]:
        status, body = self.hub_get(f"/users/{name}")
        assert status == 200, f"GET /users/{name}: {status} {body}"
        return dict(body)

    def pods(self, namespace: str = "default", label_selector: str = "") -> list[dict[str, Any]]:
        query = f"?labelSelector={urllib.parse.quote(label_selector)}" if label_selector else ""
        status, body = http_json("GET", f"{self.simulator_url}/api/v1/namespaces/{namespace}/pods{query}")
        assert status == 200, f"listing pods: {status} {body}"
        return list(body["items"])

    def pod(self, name: str, namespace: str = "default") -> dict[str, Any] | None:
        status, body = http_json("GET", f"{self.simulator_url}/api/v1/namespaces/{namespace}/pods/{name}")
        if status == 404:
            return None
        assert status == 200, f"reading pod {namespace}/{name}: {status} {body}"
        return dict(body)

    def artifact_logs(self) -> list[Path]:
        return sorted(self.state_dir.glob("*.log"))


# ---------------------------------------------------------------- driving servers through the REST API


def server_path(user: str, server: str) -> str:
    return f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"


def progress_until_done(stack: HubStack, user: str, server: str) -> list[dict[str, Any]]:
    """Follow the hub's progress stream (what the spawn page shows) until ready or failed.

    A start that finished while the POST was answered (201) streams only the final event.
    """
    url = f"{stack.hub_api}{server_path(user, server)}/progress"
    request = urllib.request.Request(url, headers={"Authorization": f"token {stack.api_token}"})
    events: list[dict[str, Any]] = []
    with urllib.request.urlopen(request, timeout=90) as stream:
        for raw in stream:
            line = raw.decode().strip()
            if not line.startswith("data:"):
                continue
            events.append(json.loads(line[len("data:") :]))
            if events[-1].get("ready") or events[-1].get("failed"):
                break
    return events


def spawn(stack: HubStack, user: str, server: str = "") -> list[dict[str, Any]]:
    status, body = http_json("POST", f"{stack.hub_api}/users/{user}", token=stack.api_token)
    assert status in (201, 409), f"creating user {user}: {status} {body}"
    status, body = http_json("POST", stack.hub_api + server_path(user, server), token=stack.api_token, body={})
    assert status in (201, 202), f"starting {user}/{server}: {status} {body}"
    events = progress_until_done(stack, user, server)
    assert events and events[-1].get("ready"), f"{user}/{server} did not start: {events[-1:]}"
    # Reachable through the proxy, as the browser would reach it.
    prefix = f"/user/{user}/{server + '/' if server else ''}"
    status, body = http_json("GET", f"{stack.url}{prefix}api/status", token=stack.api_token)
    assert status == 200 and "started" in body, f"{prefix}api/status: {status} {body}"
    return events


def stop(stack: HubStack, user: str, server: str = "") -> None:
    status, _ = http_json("DELETE", stack.hub_api + server_path(user, server), token=stack.api_token)
    assert status in (202, 204)
    eventually(
        lambda: not (stack.user_model(user)["servers"].get(server) or {}).get("ready"),
        60,
        f"{user}/{server} stopped",
    )


def stored(stack: HubStack, path: str) -> dict[str, Any] | None:
    status, body = http_json("GET", f"{stack.simulator_url}{path}")
    return body if status == 200 else None


def keep_logs(state_dir: Path, module: str) -> None:
    """Copy a stack's process logs into the artifacts (the state dir is a temp dir)."""
    target = ARTIFACTS / module / "logs"
    target.mkdir(parents=True, exist_ok=True)
    for log in state_dir.glob("*.log"):
        shutil.copy(log, target / log.name)


StackT = TypeVar("StackT", bound=HubStack)


@contextmanager
def running(hub: StackT, module: str) -> Iterator[StackT]:
    """Start ``hub``, hand it to the tests, then stop it and keep its logs.

    The one shape of every module-scoped stack fixture: the logs are copied whatever the
    tests did, so a failure in CI can be read from the artifacts without a re-run.
    """
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()
        keep_logs(hub.state_dir, module)


#: For the tests that restart the hub: its servers outlive it, as after ``helm upgrade``.
KEEP_SERVERS = "c.JupyterHub.cleanup_servers = False\n"


def local_stack_in_process_mode(
    tmp_path_factory: pytest.TempPathFactory, module: str, overrides: str
) -> Iterator[HubStack]:
    """The body of a module's ``stack`` fixture: the demo configuration plus ``overrides``,
    with the simulator running real processes; logs kept under ``module``."""
    hub = HubStack(
        state_dir=tmp_path_factory.mktemp(module),
        base_config=LOCAL_CONFIG,
        overrides=overrides,
        simulator=SimulatorOptions(process_mode=True),
    )
    with running(hub, module) as started:
        yield started
