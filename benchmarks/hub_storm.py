"""The whole hub under a storm: a real JupyterHub, its proxy and the simulator, driven over HTTP.

    python -m benchmarks.hub_storm --spawner async_kubespawner.KubeSpawner --users 1000 \\
        --json out.json [--markdown out.md]

``spawn_storm`` measures the spawner inside a stand-in hub; this measures what a hub
operator feels. Three processes, as in production:

- the simulator (``python -m kubesim --stub-servers``): API server, scheduler and kubelet;
  every pod gets a loopback address and the simulator answers HTTP on its port while it
  runs, so thousands of "servers" cost no process each;
- JupyterHub (``python -m jupyterhub``) with the spawner under test, which starts the real
  configurable-http-proxy itself;
- this driver, which plays N users through the hub's REST API at once: create the server
  (``POST /users/:name/server``), follow its progress stream until ready, reach it
  through the proxy (``GET /user/:name/api/status`` answered by the server), then stop
  it (``DELETE``), all N together. It authenticates as a hub user's script would, with a
  token the hub generated (``DRIVER_USER``'s, requested once with the service token of
  the config): JupyterHub hashes a token from the config with 16,384 rounds of SHA-512
  at every request (2.6 ms on the 7 December machine, three requests a cycle), a token
  it generated with one.

Figures (JSON): ``failed``; ``start_to_reachable_ms`` (POST sent -> first 200 from the
server through the proxy) and ``stop_ms`` (DELETE sent -> the hub answers 204, or its
event log records the stop: ``c.EventLogger.handlers`` writes JupyterHub's
``server-action`` events to a file the driver reads, so that learning of a stop costs the
hub nothing), each ``{p50, p90, p99, max, n}``; ``hub_cpu_ms_per_cycle`` (the hub process's
CPU over both phases / N; the proxy's and the simulator's reported apart); the hub's
longest event-loop stall per phase (a monitor task on the hub's own loop); and where
the hub's time went, from JupyterHub's own Prometheus metrics and a timer on every
database statement: spawn (``jupyterhub_server_spawn_duration_seconds``), proxy route
add/remove, stop, REST request handling, database.

Operator mode runs when ``--spawner`` is the operator-mode spawner
(``async_kubespawner.operator.spawner.OperatorSpawner`` or its entry point name
``async-kubernetes-operator``): the CRDs and a NotebookTemplate are installed in the
simulator as the demo installs them, one operator replica (``--operator-replicas 2``: a
leader and a standby) runs as its own process (``python -m async_kubespawner.operator``),
and the hub only creates NotebookServers and their env Secrets. The template is by default
``examples/operator/template.yaml`` cut down to one pod (no PVC, no Service), so that the
operator creates what the in-hub spawner creates and the difference is the extra hop
(``--operator-template FILE`` uses any other). Its pods are served like any other in
stub-server mode (the main container's ``containerPort`` answers). Added figures:
``operator.reconciles_per_s`` (from the replicas' ``/metrics``) and
``operator_cpu_ms_per_cycle`` (the replicas' process CPU / N); with ``--baseline
IN_HUB.json`` (an in-hub run of the same size) the JSON and Markdown also give the extra
hop's cost: start -> reachable p50 / p99 and stop p50 / p99, operator minus in-hub.
The simulator runs without authentication (as before), so the hub's identity is the
simulator's admin in both modes; the least-privilege Role of
``examples/operator/hub-role.yaml`` is checked by ``tests/operator/test_hub_rbac.py``.

``--hub-python`` runs JupyterHub in another virtualenv, e.g. the compatibility matrix's
``.venv-matrix/z2jh/bin/python`` (the Zero to JupyterHub image's JupyterHub 5.5 and Python
3.13; ``make bench-hub HUB_ENV=z2jh`` builds it and sweeps with it).

Upstream is measured from a side directory, leaving the environment untouched::

    pip install --no-deps --target /tmp/upstream-ks jupyterhub-kubespawner==7.1.0
    python -m benchmarks.hub_storm --spawner kubespawner.KubeSpawner \\
        --extra-path /tmp/upstream-ks --users 1000 --json upstream.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import datetime
import json
import math
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from .figures import summarise

REPO_ROOT = Path(__file__).resolve().parent.parent
NODE_BIN = REPO_ROOT / "node_modules" / ".bin"

# Runs inside the hub process (appended to its config): a loop-stall monitor on the hub's
# own event loop and a timer on every database statement, written to a JSON file the
# driver reads at the end. time.monotonic() is CLOCK_MONOTONIC, shared by all processes.
HUB_PROBE = r'''
import asyncio as _asyncio, json as _json, time as _time
from sqlalchemy import event as _event
from sqlalchemy.engine import Engine as _Engine

_probe = {"stalls": [], "db_seconds": 0.0, "db_statements": 0}


@_event.listens_for(_Engine, "before_cursor_execute")
def _db_before(conn, cursor, statement, parameters, context, executemany):
    conn.info.setdefault("_probe_t", []).append(_time.perf_counter())


@_event.listens_for(_Engine, "after_cursor_execute")
def _db_after(conn, cursor, statement, parameters, context, executemany):
    _probe["db_seconds"] += _time.perf_counter() - conn.info["_probe_t"].pop()
    _probe["db_statements"] += 1


from sqlalchemy.engine.default import DefaultDialect as _Dialect

_do_commit = _Dialect.do_commit


def _timed_commit(self, dbapi_connection):
    t = _time.perf_counter()
    try:
        return _do_commit(self, dbapi_connection)
    finally:
        _probe["db_seconds"] += _time.perf_counter() - t
        _probe["db_commits"] = _probe.get("db_commits", 0) + 1


_Dialect.do_commit = _timed_commit


async def _monitor(path, interval=0.005):
    last_write = _time.monotonic()
    while True:
        before = _time.monotonic()
        await _asyncio.sleep(interval)
        now = _time.monotonic()
        late = now - before - interval
        if late > 0.005:
            _probe["stalls"].append([round(before, 6), round(late * 1000, 3)])
        if now - last_write > 0.25:
            last_write = now
            with open(path + ".tmp", "w") as f:
                _json.dump(_probe, f)
            import os as _os
            _os.replace(path + ".tmp", path)


_probe_task = _asyncio.get_running_loop().create_task(_monitor(PROBE_PATH))
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pids(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in children.read_text().split()] if children.exists() else []


def raise_fd_limit() -> int:
    """Thousands of servers are thousands of sockets in the simulator and the proxy."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Process:
    """A child process with its output in a file, started in its own process group."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str], cwd: Path):
        self.name = name
        self.log = log
        self._file = log.open("wb")
        self.proc = asyncio.create_subprocess_exec(
            *argv, stdout=self._file, stderr=asyncio.subprocess.STDOUT, env=env, cwd=cwd,
            start_new_session=True,
        )
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> Process:
        self.process = await self.proc
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def wait_for(self, pattern: str, within: float) -> str:
        """Read the log until a line matches (the process says it is ready)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            assert self.process is not None
            for line in self.log.read_text(errors="replace").splitlines():
                if regex.search(line):
                    return line
            if self.process.returncode is not None:
                break
            await asyncio.sleep(0.1)
        tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"{self.name} did not print {pattern!r} in {within} s:\n{tail}")

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            self._file.close()
            return
        for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                await asyncio.wait_for(self.process.wait(), grace)
                break
            except TimeoutError:
                continue
        self._file.close()


#: The hub's event log in the state directory: JupyterHub's server start/stop events.
EVENT_LOG = "hub-events.jsonl"

#: The hub user whose generated API token the driver plays its users with. Why not the
#: service token of the config: JupyterHub stores a token it did not generate with 16,384
#: hash rounds (``orm.Hashed.rounds``) and hashes every request's token that many times
#: to look it up, one round for a token it generated. Browsers (cookies) and users'
#: scripts (tokens from the token page) never pay that; a driver that did charged the
#: hub ~8 ms of CPU per cycle that no hub operator's users cause.
DRIVER_USER = "storm-driver"


def hub_config(args: argparse.Namespace, state: Path, token: str, ports: dict[str, int],
               template: str = "") -> str:
    """The hub's config file: ``template`` is the NotebookTemplate in operator mode."""
    return f'''
c = get_config()  # noqa
c.JupyterHub.spawner_class = {args.spawner!r}
c.JupyterHub.bind_url = "http://127.0.0.1:{ports["public"]}/"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {ports["hub"]}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{ports["proxy_api"]}"
c.ConfigurableHTTPProxy.auth_token = {secrets.token_hex(32)!r}
c.JupyterHub.db_url = "sqlite:///{args.db_dir / (state.name + ".sqlite")}"
c.JupyterHub.cookie_secret_file = "{state / "cookie_secret"}"
c.JupyterHub.pid_file = "{state / "jupyterhub.pid"}"
c.JupyterHub.concurrent_spawn_limit = 0
c.JupyterHub.active_server_limit = 0
c.JupyterHub.cleanup_servers = False
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.log_level = "WARN"
import logging as _logging
c.EventLogger.handlers = [_logging.FileHandler("{state / EVENT_LOG}", delay=True)]
c.JupyterHub.services = [{{"name": "storm", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [
    {{"name": "storm", "services": ["storm"], "users": [{DRIVER_USER!r}],
     "scopes": ["admin:users", "admin:servers", "access:servers", "read:metrics"]}},
    # unfiltered: JupyterHub 5.5 checks a service's tokens!user=NAME against the service
    # rather than the user (fixed in 6.x) and refuses
    {{"name": "storm-token", "services": ["storm"], "scopes": ["tokens"]}},
]
c.Spawner.start_timeout = {args.timeout}
c.Spawner.http_timeout = {args.timeout}
c.KubeSpawner.image = "quay.io/jupyterhub/singleuser:5.2"
c.KubeSpawner.namespace = "default"
{operator_settings(args, template)}PROBE_PATH = "{state / "hub-probe.json"}"
''' + HUB_PROBE


def operator_settings(args: argparse.Namespace, template: str) -> str:
    """The OperatorSpawner's lines of the hub config (nothing for an in-hub spawner).

    ``stop_timeout`` follows ``--timeout`` as ``start_timeout`` does: its default (60 s)
    would fail stops that only queue behind a storm's thousand others.
    """
    if not is_operator_mode(args.spawner):
        return ""
    return (f'c.OperatorSpawner.namespace = "default"\n'
            f"c.OperatorSpawner.template = {template!r}\n"
            f"c.OperatorSpawner.stop_timeout = {math.ceil(args.timeout)}\n")


def parse_metrics(text: str) -> dict[str, float]:
    """The ``_sum`` and ``_count`` samples of JupyterHub's histograms, summed over labels."""
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        if name.endswith(("_sum", "_count")):
            try:
                totals[name] = totals.get(name, 0.0) + float(value)
            except ValueError:
                continue
    return totals


#: The spawner classes that mean operator mode: the class's import path and its entry point.
OPERATOR_SPAWNERS = frozenset({
    "async_kubespawner.operator.spawner.OperatorSpawner", "async-kubernetes-operator"})
EXAMPLE_TEMPLATE = REPO_ROOT / "examples" / "operator" / "template.yaml"
BENCH_TEMPLATE = "hub-storm"


def is_operator_mode(spawner: str) -> bool:
    return spawner in OPERATOR_SPAWNERS


def like_for_like_template(example: dict[str, Any], name: str = BENCH_TEMPLATE) -> dict[str, Any]:
    """The example NotebookTemplate cut down to the objects an in-hub spawn makes.

    The in-hub run of this benchmark creates a pod (and the env Secret); the example
    template adds a PVC and a Service, whose creation and deletion would be counted as the
    extra hop's cost. Without them (and the home volume that mounts the PVC, and the
    ``storage`` variable only the PVC used) the operator creates the same pod the in-hub
    spawner does, from the same kind of spec. The example is not changed.
    """
    template = copy.deepcopy(example)
    template["metadata"] = {"name": name}
    spec = template["spec"]
    for key in ("pvcs", "otherResources", "pvcRetention"):
        spec.pop(key, None)
    spec["variables"] = [v for v in spec.get("variables") or [] if v.get("name") != "storage"]
    for pod in spec["pods"]:
        pod_spec = pod["spec"]
        pod_spec.pop("volumes", None)
        for container in pod_spec.get("containers") or []:
            container.pop("volumeMounts", None)
    return template


def write_operator_template(args: argparse.Namespace, state: Path) -> tuple[Path, str]:
    """The template file to install and its name (what the hub's config refers to)."""
    if args.operator_template is not None:
        text = args.operator_template.read_text()
        template = yaml.safe_load(text)
        if not isinstance(template, dict) or template.get("kind") != "NotebookTemplate":
            raise SystemExit(f"--operator-template {args.operator_template}: not a "
                             "NotebookTemplate")
        return args.operator_template, str(template["metadata"]["name"])
    template = like_for_like_template(yaml.safe_load(EXAMPLE_TEMPLATE.read_text()))
    path = state / "template.yaml"
    path.write_text(yaml.safe_dump(template, sort_keys=False))
    return path, str(template["metadata"]["name"])


def parse_operator_metrics(text: str) -> dict[str, float]:
    """Reconcile passes (all and by outcome), their summed duration, and the leader gauge.

    Samples of ``kubespawner_operator_reconciles_total{outcome="..."}`` become
    ``reconciles`` and ``reconciles_<outcome>``; the duration histogram's ``_sum`` becomes
    ``reconcile_seconds``. Summing the dicts of several replicas gives the totals of the
    deployment (a standby reconciles nothing).
    """
    out = {"reconciles": 0.0, "reconcile_seconds": 0.0, "leader": 0.0}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name_labels, _, raw = line.rpartition(" ")
        try:
            value = float(raw)
        except ValueError:
            continue
        name, _, labels = name_labels.partition("{")
        if name == "kubespawner_operator_reconciles_total":
            outcome = re.search(r'outcome="([^"]*)"', labels)
            out["reconciles"] += value
            key = f"reconciles_{outcome.group(1) if outcome else 'unknown'}"
            out[key] = out.get(key, 0.0) + value
        elif name == "kubespawner_operator_reconcile_duration_seconds_sum":
            out["reconcile_seconds"] += value
        elif name == "kubespawner_operator_leader":
            out["leader"] += value
    return out


def sum_metrics(samples: Sequence[dict[str, float]]) -> dict[str, float]:
    total: dict[str, float] = {}
    for sample in samples:
        for key, value in sample.items():
            total[key] = total.get(key, 0.0) + value
    return total


def operator_figures(snapshots: Sequence[dict[str, float]], walls: tuple[float, float],
                     cycles: int) -> dict[str, Any]:
    """Reconcile figures from four metric snapshots: before the starts, after them, before
    the stops (passes in between, e.g. late status writes, belong to neither phase) and
    after them."""
    before, started, stopping, stopped = snapshots

    def delta(a: dict[str, float], b: dict[str, float], key: str) -> float:
        return b.get(key, 0.0) - a.get(key, 0.0)

    start_n, stop_n = delta(before, started, "reconciles"), delta(stopping, stopped, "reconciles")
    outcomes = sorted({k for k in stopped if k.startswith("reconciles_")})
    return {
        "reconciles": {"start_phase": int(start_n), "stop_phase": int(stop_n)},
        "reconciles_by_outcome": {k.removeprefix("reconciles_"): int(delta(before, stopped, k))
                                  for k in outcomes},
        "reconciles_per_s": {
            "start_phase": round(start_n / walls[0], 1) if walls[0] > 0 else None,
            "stop_phase": round(stop_n / walls[1], 1) if walls[1] > 0 else None,
            "storm": round((start_n + stop_n) / sum(walls), 1) if sum(walls) > 0 else None},
        "reconciles_per_cycle": round((start_n + stop_n) / max(1, cycles), 2),
        "reconcile_busy_s": round(delta(before, stopped, "reconcile_seconds"), 3),
    }


def hop_overhead(in_hub: dict[str, Any], operator: dict[str, Any]) -> dict[str, Any]:
    """What operator mode costs over the in-hub spawner at the same size: operator minus
    in-hub, per latency percentile, and the CPU of the whole control plane per cycle (the
    hub, plus the operator in operator mode)."""
    def diff(key: str, pct: str) -> float | None:
        a, b = (in_hub.get(key) or {}).get(pct), (operator.get(key) or {}).get(pct)
        return round(b - a, 3) if a is not None and b is not None else None

    hub_cpu = operator.get("hub_cpu_ms_per_cycle", 0.0)
    plane = hub_cpu + operator.get("operator_cpu_ms_per_cycle", 0.0)
    return {
        "baseline_spawner": (in_hub.get("meta") or {}).get("spawner"),
        "start_to_reachable_ms": {p: diff("start_to_reachable_ms", p) for p in ("p50", "p99")},
        "stop_ms": {p: diff("stop_ms", p) for p in ("p50", "p99")},
        "control_plane_cpu_ms_per_cycle": {
            "in_hub": in_hub.get("hub_cpu_ms_per_cycle"),
            "operator_mode": round(plane, 3)},
    }


def census(pods: Sequence[dict[str, Any]], secrets: Sequence[dict[str, Any]],
           servers: Sequence[dict[str, Any]] | None) -> dict[str, int]:
    """What the cluster holds: pods, running pods, Secrets, NotebookServers, and how many
    pods take their environment from a Secret that exists (in operator mode, the one the
    hub created: the server's API token reaches the pod through it)."""
    names = {(s.get("metadata") or {}).get("name") for s in secrets}
    with_secret = 0
    for pod in pods:
        refs = set()
        for container in (pod.get("spec") or {}).get("containers") or []:
            refs |= {(e.get("secretRef") or {}).get("name") for e in container.get("envFrom") or []}
            refs |= {((e.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name")
                     for e in container.get("env") or []}
        refs.discard(None)
        if refs and refs <= names:
            with_secret += 1
    out = {"pods": len(pods),
           "pods_running": sum(1 for p in pods
                               if (p.get("status") or {}).get("phase") == "Running"),
           "secrets": len(secrets), "pods_env_from_existing_secret": with_secret}
    if servers is not None:
        out["notebookservers"] = len(servers)
    return out


def api_server(kubeconfig_text: str) -> str:
    """The API server URL of a kubeconfig (the simulator's has one cluster)."""
    return str(yaml.safe_load(kubeconfig_text)["clusters"][0]["cluster"]["server"])


async def cluster_census(server: str, *, operator_mode: bool) -> dict[str, int]:
    """:func:`census` of the simulator's ``default`` namespace (read over plain HTTP)."""
    paths = {"pods": "/api/v1/namespaces/default/pods",
             "secrets": "/api/v1/namespaces/default/secrets"}
    if operator_mode:
        paths["servers"] = ("/apis/notebooks.async-kubespawner.io/v1alpha1/namespaces/default/"
                            "notebookservers")
    items: dict[str, list[dict[str, Any]]] = {}
    async with aiohttp.ClientSession() as http:
        for key, path in paths.items():
            async with http.get(server + path) as r:
                items[key] = list((await r.json()).get("items") or [])
    return census(items["pods"], items["secrets"], items.get("servers"))


class OperatorReplicas:
    """The operator's replicas, each ``python -m async_kubespawner.operator`` in its own
    process as the demo starts them, with ``/metrics`` on a loopback port."""

    def __init__(self, state: Path, kubeconfig: Path, count: int) -> None:
        self.state = state
        self.kubeconfig = kubeconfig
        self.count = count
        self.replicas: list[tuple[Any, int]] = []  # (SupervisedProcess, health port)

    async def start(self, template: Path, within: float = 60.0) -> None:
        from devtools import local_stack

        await asyncio.to_thread(local_stack.install_operator_mode, self.kubeconfig, template)
        for i in range(self.count):
            port = free_port()
            proc = await asyncio.to_thread(
                local_stack.start_operator, self.state, self.kubeconfig, f"operator-{i}",
                health_port=port)
            self.replicas.append((proc, port))
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:  # one replica holds the Lease, caches loaded
            async with aiohttp.ClientSession() as http:
                health = []
                for _, port in self.replicas:
                    with contextlib.suppress(aiohttp.ClientError, ValueError):
                        async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                            health.append(await r.json())
            if any(h.get("leader") and h.get("synced") for h in health):
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"no operator replica led with loaded caches within {within} s")

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc, _ in self.replicas]

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    async def metrics(self) -> dict[str, float]:
        samples = []
        async with aiohttp.ClientSession() as http:
            for _, port in self.replicas:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
                        samples.append(parse_operator_metrics(await r.text()))
        return sum_metrics(samples)

    async def stop(self) -> None:
        for proc, _ in self.replicas:
            await asyncio.to_thread(proc.stop, 20)


#: How often the driver opens a progress stream again that the hub closed without a ready
#: or failed event, and after how long (s): as the spawn page's EventSource does.
PROGRESS_REOPENS = 3
PROGRESS_REOPEN_DELAY = 1.0


def failure_kind(why: str) -> str:
    """A failure message's kind, for counting: an HTTP status without the page it came
    with, and any other message with its numbers (user names, counts) folded to ``N``."""
    head = why.split(": ", 1)[0]
    if re.fullmatch(r"(POST|DELETE|progress GET) \d{3}", head):
        return head
    return re.sub(r"\d+", "N", why)[:100]


PHASE_METRICS = {
    "spawn (spawner start, per server)": "jupyterhub_server_spawn_duration_seconds",
    "proxy route add": "jupyterhub_proxy_add_duration_seconds",
    "proxy route delete": "jupyterhub_proxy_delete_duration_seconds",
    "stop (spawner stop, per server)": "jupyterhub_server_stop_seconds",
    "REST request handling": "jupyterhub_request_duration_seconds",
}


#: The schema of JupyterHub's server start/stop events (its event log, jupyter_events).
SERVER_ACTION_SCHEMA = "https://schema.jupyter.org/jupyterhub/events/server-action"


def stop_events(lines: Iterable[str]) -> Iterator[tuple[str, float]]:
    """``(user name, wall-clock time)`` of each default server's stop in JupyterHub's event
    log, one JSON object a line (``c.EventLogger.handlers``); other lines are skipped."""
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if (not isinstance(event, dict) or event.get("__schema__") != SERVER_ACTION_SCHEMA
                or event.get("action") != "stop" or event.get("servername") != ""):
            continue
        stamp = str(event.get("__timestamp__", ""))
        # jupyter_events writes an aware ISO time with a "Z" appended ("...+00:00Z").
        try:
            when = datetime.datetime.fromisoformat(stamp.removesuffix("Z"))
        except ValueError:
            continue
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
        yield str(event.get("username", "")), when.timestamp()


class EventTail:
    """The complete lines appended to a file since the last read (none while it is absent)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""

    def read(self) -> list[str]:
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self._offset += len(data)
        *complete, self._partial = (self._partial + data).split(b"\n")
        return [line.decode(errors="replace") for line in complete if line.strip()]


class Driver:
    #: Seconds between reads of the hub's event log while stops are pending.
    EVENT_READ_INTERVAL = 0.05
    #: The fallback list of active users runs at most this often (s), and never more often
    #: than every STOP_POLL_SHARE_INVERSE times its own duration: at 5,000 users one list is
    #: 25 pages of user models, seconds of the hub's CPU, and polling it every quarter
    #: second made the driver the largest load on the hub in the stop phase.
    STOP_POLL_MIN_INTERVAL = 10.0
    STOP_POLL_SHARE_INVERSE = 20

    def __init__(self, hub_api: str, public: str, token: str, timeout: float,
                 events: Path) -> None:
        self.hub_api = hub_api
        self.public = public
        self.headers = {"Authorization": f"token {token}"}
        self.timeout = timeout
        self.session: aiohttp.ClientSession
        self._stopping: dict[str, asyncio.Future[float]] = {}
        self._stop_watcher: asyncio.Future[None] | None = None
        #: the hub's event log (JSON lines, written by the hub's ``c.EventLogger.handlers``)
        self._events = EventTail(events)
        #: monotonic time of every stop the event log reported, pending or not yet
        self._stopped_at: dict[str, float] = {}
        self.stop_poll_errors = 0
        self.stop_polls = 0
        self.stops_seen_in_event_log = 0
        self.progress_reopened = 0

    async def __aenter__(self) -> Driver:
        self.session = aiohttp.ClientSession(
            headers=self.headers,
            connector=aiohttp.TCPConnector(limit=0, force_close=False),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._stop_watcher is not None:
            self._stop_watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError, RuntimeError):
                await self._stop_watcher
        await self.session.close()

    async def wait_for_hub(self) -> None:
        for _ in range(300):
            try:
                async with self.session.get(f"{self.hub_api}/") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        raise RuntimeError("the hub's REST API did not answer")

    async def generated_token(self, user: str) -> str:
        """A new token the hub generates for ``user`` (one hash round per lookup; see
        :data:`DRIVER_USER`), with the user's permissions."""
        async with self.session.post(f"{self.hub_api}/users/{user}/tokens",
                                     json={"note": "hub_storm driver"}) as r:
            if r.status != 201:
                raise RuntimeError(f"requesting the driver's token: {r.status} {await r.text()}")
            token: str = (await r.json())["token"]
            return token

    async def create_users(self, names: Sequence[str]) -> None:
        for i in range(0, len(names), 500):
            async with self.session.post(
                f"{self.hub_api}/users", json={"usernames": list(names[i : i + 500])}
            ) as r:
                if r.status not in (201, 409):
                    raise RuntimeError(f"creating users: {r.status} {await r.text()}")

    async def metrics(self) -> dict[str, float]:
        async with self.session.get(f"{self.hub_api.rsplit('/api', 1)[0]}/metrics") as r:
            return parse_metrics(await r.text()) if r.status == 200 else {}

    async def start(self, name: str) -> tuple[float | None, str]:
        """Seconds from the POST to the server answering through the proxy, or the failure.

        A connection the hub or the proxy drops under the storm is this user's failure,
        not the end of the run for all N.
        """
        try:
            return await self._start(name)
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            return None, f"{type(e).__name__}: {str(e)[:200]}"

    async def stop(self, name: str) -> tuple[float | None, str]:
        """:meth:`_stop`, a dropped connection being this user's failure (see :meth:`start`)."""
        try:
            return await self._stop(name)
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            return None, f"{type(e).__name__}: {str(e)[:200]}"

    async def _start(self, name: str) -> tuple[float | None, str]:
        t0 = time.monotonic()
        async with self.session.post(f"{self.hub_api}/users/{name}/server", json={}) as r:
            if r.status not in (201, 202):
                return None, f"POST {r.status}: {(await r.text())[:200]}"
            pending = r.status == 202
        if pending:
            failure = await self._follow_progress(name)
            if failure:
                return None, failure
        for _ in range(200):
            async with self.session.get(f"{self.public}/user/{name}/api/status") as r:
                if r.status == 200 and "started" in await r.text():
                    return time.monotonic() - t0, ""
            await asyncio.sleep(0.05)
        return None, "not reachable through the proxy"

    async def _follow_progress(self, name: str) -> str:
        """Follow the spawn's progress stream as the spawn page does: "" once it says ready,
        else why not.

        The page reads the stream with an ``EventSource``, which opens it again by itself
        when the stream ends, whether the hub closed it or the connection broke; so does
        this driver, after ``PROGRESS_REOPEN_DELAY`` and at most ``PROGRESS_REOPENS``
        times (counted in ``progress_reopened``). An answer other than 200 ends an
        ``EventSource`` for good, and ends this too, with the status in the failure.
        """
        url = f"{self.hub_api}/users/{name}/server/progress"
        broken = ""
        for attempt in range(PROGRESS_REOPENS + 1):
            if attempt:
                self.progress_reopened += 1
                await asyncio.sleep(PROGRESS_REOPEN_DELAY)
            try:
                async with self.session.get(url) as r:
                    if r.status != 200:
                        return f"progress GET {r.status}: {(await r.text())[:200]}"
                    async for raw in r.content:
                        line = raw.decode().strip()
                        if not line.startswith("data:"):
                            continue
                        event = json.loads(line[5:])
                        if event.get("failed"):
                            return f"failed: {event.get('message', '')[:200]}"
                        if event.get("ready"):
                            return ""
                broken = ""
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as e:
                broken = f" (last: {type(e).__name__})"
        return f"progress stream ended without ready, {PROGRESS_REOPENS + 1} times{broken}"

    async def _stop(self, name: str) -> tuple[float | None, str]:
        """Seconds from the DELETE to the hub reporting the server gone, or the failure.

        A stop the hub answers 202 (still stopping after its ``slow_stop_timeout``) ends
        when the hub's event log records it (:meth:`_watch_stops`), at the time the hub
        wrote there; not by a request per user (1,000 users polling on their own would be
        thousands of requests a second, and the hub would spend the storm answering the
        driver).
        """
        t0 = time.monotonic()
        async with self.session.delete(f"{self.hub_api}/users/{name}/server") as r:
            if r.status == 204:
                return time.monotonic() - t0, ""
            if r.status != 202:
                return None, f"DELETE {r.status}: {(await r.text())[:200]}"
        done = asyncio.get_running_loop().create_future()
        if name in self._stopped_at:  # its stop event was read before the 202 was
            done.set_result(self._stopped_at[name])
        self._stopping[name] = done
        if self._stop_watcher is None or self._stop_watcher.done():
            self._stop_watcher = asyncio.ensure_future(self._watch_stops())
        try:
            finished = await asyncio.wait_for(done, self.timeout)
        except TimeoutError:
            return None, "stop did not finish"
        finally:
            self._stopping.pop(name, None)
        return max(0.0, finished - t0), ""

    async def _active_users(self) -> set[str]:
        """Names of the users whose default server the hub lists as active."""
        active: set[str] = set()
        offset = 0
        while True:
            async with self.session.get(
                f"{self.hub_api}/users",
                params={"state": "active", "offset": str(offset), "limit": "200"},
                headers={"Accept": "application/jupyterhub-pagination+json"},
            ) as r:
                r.raise_for_status()
                page = await r.json()
            items = page["items"] if isinstance(page, dict) else page
            active.update(u["name"] for u in items if "" in (u.get("servers") or {}))
            next_page = page.get("_pagination", {}).get("next") if isinstance(page, dict) else None
            if not next_page:
                return active
            offset = int(next_page["offset"])

    def _read_stop_events(self) -> None:
        """Mark the stops the hub's event log recorded since the last read as finished,
        at the time the hub recorded them (its wall clock, on this machine)."""
        offset = time.time() - time.monotonic()
        for name, wall in stop_events(self._events.read()):
            finished = wall - offset
            self._stopped_at.setdefault(name, finished)
            self.stops_seen_in_event_log += 1
            done = self._stopping.get(name)
            if done is not None and not done.done():
                done.set_result(finished)

    @classmethod
    def fallback_delay(cls, duration: float) -> float:
        """Seconds until the next list of active users after one that took ``duration``."""
        return max(cls.STOP_POLL_MIN_INTERVAL, cls.STOP_POLL_SHARE_INVERSE * duration)

    async def _watch_stops(self) -> None:
        """Until no stop is pending: which have finished.

        The hub's event log, read every :attr:`EVENT_READ_INTERVAL`, says so at no cost to
        the hub. The paged list of active users is the fallback, for a stop that finished
        without its event, so it runs rarely (:meth:`fallback_delay`). A list that fails (a
        starved hub answering 5xx or not at all) is retried later: one failed poll must not
        leave every pending stop waiting for ``--timeout`` with no poller left.
        """
        next_poll = time.monotonic() + self.STOP_POLL_MIN_INTERVAL
        while self._stopping:
            await asyncio.sleep(self.EVENT_READ_INTERVAL)
            self._read_stop_events()
            if not self._stopping or time.monotonic() < next_poll:
                continue
            began = time.monotonic()
            try:
                self.stop_polls += 1
                active = await self._active_users()
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError):
                self.stop_poll_errors += 1
                active = None
            arrived = time.monotonic()
            next_poll = arrived + self.fallback_delay(arrived - began)
            if active is None:
                continue
            self._read_stop_events()  # an event written meanwhile is the more exact time
            for name, done in list(self._stopping.items()):
                if name not in active and not done.done():
                    done.set_result(arrived)


def stalls_between(stalls: list[list[float]], start: float, end: float) -> float:
    inside = [ms for t, ms in stalls if start <= t <= end]
    return round(max(inside), 1) if inside else 0.0


async def run(args: argparse.Namespace) -> dict[str, Any]:
    fd_limit = raise_fd_limit()
    state = Path(tempfile.mkdtemp(prefix="hub-storm-"))
    env = dict(os.environ)
    extra = [str(REPO_ROOT), str(REPO_ROOT / "simulator"), *args.extra_path]
    env["PYTHONPATH"] = os.pathsep.join([*extra, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PATH"] = os.pathsep.join([str(NODE_BIN), str(Path(sys.executable).parent), env["PATH"]])
    kubeconfig = state / "kubeconfig"
    nodes = max(3, math.ceil(args.users / 100) + 1)
    sim = await Process(
        "simulator",
        # --no-auth: plain HTTP without RBAC, so figures compare with runs before auth
        [sys.executable, "-m", "kubesim", "--no-auth", "--kubeconfig", str(kubeconfig), "--stub-servers",
         "--scenario", args.scenario, "--seed", "42", "--nodes", str(nodes),
         "--node-cpu", "64", "--node-memory", "512Gi"],
        state / "simulator.log", env, state,
    ).start()
    hub = None
    operators: OperatorReplicas | None = None
    template_name = ""
    token = secrets.token_hex(24)
    try:
        await sim.wait_for(r"simulator listening on", 60)
        # Only now: a port taken before the simulator bound its own (port 0) could be
        # the one the kernel then gave it, and the proxy's API would find it taken.
        ports = {"public": free_port(), "hub": free_port(), "proxy_api": free_port()}
        if is_operator_mode(args.spawner):
            template_path, template_name = write_operator_template(args, state)
            operators = OperatorReplicas(state, kubeconfig, args.operator_replicas)
            await operators.start(template_path)
        config = state / "jupyterhub_config.py"
        config.write_text(hub_config(args, state, token, ports, template_name))
        hub = await Process(
            "hub", [str(args.hub_python), "-m", "jupyterhub", "-f", str(config)],
            state / "hub.log", {**env, "KUBECONFIG": str(kubeconfig)}, state,
        ).start()
        hub_api = f"http://127.0.0.1:{ports['public']}/hub/api"
        names = [f"user{i:05d}" for i in range(args.users)]
        async with Driver(hub_api, f"http://127.0.0.1:{ports['public']}", token,
                          args.timeout, events=state / EVENT_LOG) as driver:
            await driver.wait_for_hub()
            generated = await driver.generated_token(DRIVER_USER)
        async with Driver(hub_api, f"http://127.0.0.1:{ports['public']}", generated,
                          args.timeout, events=state / EVENT_LOG) as driver:
            await driver.create_users(names)
            proxy_pid = next(iter(child_pids(hub.pid)), None)
            def cpu() -> tuple[float, float, float, float]:
                return (cpu_seconds(hub.pid), cpu_seconds(proxy_pid) if proxy_pid else 0.0,
                        cpu_seconds(sim.pid), operators.cpu() if operators else 0.0)

            async def operator_metrics() -> dict[str, float]:
                return await operators.metrics() if operators else {}

            cpu0 = cpu()
            metrics0 = await driver.metrics()
            op0 = await operator_metrics()
            t_start = time.monotonic()
            started = await asyncio.gather(*(driver.start(n) for n in names))
            t_started = time.monotonic()
            cpu1 = cpu()
            op1 = await operator_metrics()
            # Between the phases, outside both: what the cluster holds at the peak.
            peak = await cluster_census(api_server(kubeconfig.read_text()),
                                        operator_mode=operators is not None)
            cpu1b = cpu()
            op1b = await operator_metrics()
            t_stopping = time.monotonic()
            up = [n for n, (s, _) in zip(names, started, strict=True) if s is not None]
            stopped = await asyncio.gather(*(driver.stop(n) for n in up))
            t_stopped = time.monotonic()
            cpu2 = cpu()
            op2 = await operator_metrics()
            metrics1 = await driver.metrics()
            stop_poll_errors = driver.stop_poll_errors
            stop_polls = driver.stop_polls
            stops_in_event_log = driver.stops_seen_in_event_log
            progress_reopened = driver.progress_reopened
        await asyncio.sleep(0.5)  # one more write of the hub's probe file
        probe = json.loads((state / "hub-probe.json").read_text())
    finally:
        if hub is not None:
            await hub.stop()
        if operators is not None:
            await operators.stop()
        await sim.stop()
    failures = [why for _, why in started if why] + [why for _, why in stopped if why]
    cycles = max(1, len(up))
    # CPU of the two phases, without the census taken between them.
    spent = tuple((c1 - c0) + (c2 - c1b) for c0, c1, c1b, c2 in zip(cpu0, cpu1, cpu1b, cpu2,
                                                                      strict=True))
    phases: dict[str, Any] = {}
    for label, metric in PHASE_METRICS.items():
        total = metrics1.get(f"{metric}_sum", 0.0) - metrics0.get(f"{metric}_sum", 0.0)
        count = metrics1.get(f"{metric}_count", 0.0) - metrics0.get(f"{metric}_count", 0.0)
        phases[label] = {"total_s": round(total, 3), "count": int(count),
                         "mean_ms": round(total / count * 1000, 2) if count else None}
    phases["database (every statement and commit)"] = {
        "total_s": round(probe["db_seconds"], 3),
        "count": probe["db_statements"] + probe.get("db_commits", 0),
        "commits": probe.get("db_commits", 0),
        "mean_ms": round(probe["db_seconds"] / probe["db_statements"] * 1000, 3)
        if probe["db_statements"] else None}
    result: dict[str, Any] = {
        "meta": {
            "spawner": args.spawner, "users": args.users, "scenario": args.scenario,
            "db_dir": str(args.db_dir),
            "python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "load_avg_before": os.getloadavg(), "fd_limit": fd_limit,
            "hub_python": str(args.hub_python),
            # which token the driver's requests carry (DRIVER_USER): "generated" by the hub
            "driver_token": "generated",
            "versions": versions(env, args.hub_python),
        },
        "failed": len([s for s, _ in started if s is None]) + len([s for s, _ in stopped
                                                                  if s is None]),
        "failures_sample": failures[:10],
        "failures_by_kind": dict(Counter(failure_kind(why) for why in failures).most_common()),
        "progress_reopened": progress_reopened,
        "start_to_reachable_ms": summarise([s for s, _ in started if s is not None], 1000),
        "stop_ms": summarise([s for s, _ in stopped if s is not None], 1000),
        "wall_s": {"start_phase": round(t_started - t_start, 3),
                   "stop_phase": round(t_stopped - t_stopping, 3)},
        "hub_cpu_ms_per_cycle": round(spent[0] / cycles * 1000, 3),
        "proxy_cpu_ms_per_cycle": round(spent[1] / cycles * 1000, 3),
        "simulator_cpu_ms_per_cycle": round(spent[2] / cycles * 1000, 3),
        "hub_cpu_s": {"start_phase": round(cpu1[0] - cpu0[0], 3),
                      "stop_phase": round(cpu2[0] - cpu1b[0], 3)},
        "hub_longest_stall_ms": {"start_phase": stalls_between(probe["stalls"], t_start, t_started),
                                 "stop_phase": stalls_between(probe["stalls"], t_stopping,
                                                              t_stopped)},
        "cluster_at_peak": peak,
        "driver_stop_poll_errors": stop_poll_errors,
        "driver_stop_polls": stop_polls,
        "stops_seen_in_hub_event_log": stops_in_event_log,
        "hub_time_by_phase": phases,
    }
    if operators is not None:
        result["meta"]["operator_replicas"] = args.operator_replicas
        result["meta"]["operator_template"] = (str(args.operator_template)
                                              if args.operator_template else
                                              f"{EXAMPLE_TEMPLATE.relative_to(REPO_ROOT)} "
                                              "without PVC, Service and volume")
        result["operator_cpu_ms_per_cycle"] = round(spent[3] / cycles * 1000, 3)
        result["operator_cpu_s"] = {"start_phase": round(cpu1[3] - cpu0[3], 3),
                                    "stop_phase": round(cpu2[3] - cpu1b[3], 3)}
        result["operator"] = operator_figures(
            (op0, op1, op1b, op2), (t_started - t_start, t_stopped - t_stopping), len(up))
    if args.baseline is not None:
        result["vs_baseline"] = hop_overhead(json.loads(args.baseline.read_text()), result)
    if args.keep_state:
        result["meta"]["state_dir"] = str(state)
    else:
        shutil.rmtree(state, ignore_errors=True)
        (args.db_dir / (state.name + ".sqlite")).unlink(missing_ok=True)
    return result


def versions(env: dict[str, str], python: Path | str = sys.executable) -> dict[str, str]:
    """What the hub process imports (its PYTHONPATH may hold upstream's side directory),
    and the version of the Python that runs it (``python``)."""
    code = ("import json, platform, importlib.metadata as m\n"
            "out = {'python': platform.python_version()}\n"
            "for d in ('jupyterhub', 'kubernetes_asyncio', 'jupyterhub-kubespawner', "
            "'async-kubespawner'):\n"
            "    try: out[d] = m.version(d)\n    except m.PackageNotFoundError: pass\n"
            "print(json.dumps(out))")
    done = subprocess.run([str(python), "-c", code], env=env, capture_output=True,
                          text=True, check=False)
    try:
        return dict(json.loads(done.stdout))
    except ValueError:
        return {}


def hub_python_problem(python: Path) -> str | None:
    """Why ``python`` cannot run the hub (None: it can), checked before any process starts."""
    if not python.is_file() or not os.access(python, os.X_OK):
        return "no such executable"
    done = subprocess.run([str(python), "-c", "import jupyterhub"], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        return "cannot import jupyterhub"
    return None


def hub_versions_line(meta: dict[str, Any]) -> str:
    """``JupyterHub 5.5.0 on Python 3.13.0`` from a run's meta (empty when unknown)."""
    found = meta.get("versions") or {}
    if "jupyterhub" not in found:
        return ""
    line = f"JupyterHub {found['jupyterhub']}"
    if "python" in found:
        line += f" on Python {found['python']}"
    return line


def driver_token_text(meta: dict[str, Any]) -> str:
    """Which token the driver's requests carried; runs from before ``driver_token`` was
    recorded used the config's service token."""
    if meta.get("driver_token") == "generated":
        return f"generated by the hub for {DRIVER_USER} (one hash round per request)"
    return "the config's service token (16,384 hash rounds per request)"


def markdown(result: dict[str, Any]) -> str:
    s, t = result["start_to_reachable_ms"], result["stop_ms"]
    rows = [
        f"# Whole-hub storm: {result['meta']['users']} users, {result['meta']['spawner']}",
        "",
        *([f"Hub: {hub}.", ""] if (hub := hub_versions_line(result["meta"])) else []),
        "| figure | value |",
        "|---|---:|",
        f"| failed | {result['failed']} |",
        f"| the driver's API token | {driver_token_text(result['meta'])} |",
        "| failures by kind | " + (", ".join(
            f"{kind.replace('|', '/')} x{count}"
            for kind, count in (result.get("failures_by_kind") or {}).items()) or "none") + " |",
        f"| progress streams opened again after the hub closed them without ready | "
        f"{result.get('progress_reopened', 0)} |",
        f"| start -> reachable through the proxy (ms) p50 / p99 / max | "
        f"{s['p50']} / {s['p99']} / {s['max']} |",
        f"| stop (ms) p50 / p99 / max | {t['p50']} / {t['p99']} / {t['max']} |",
        f"| stops seen in the hub's event log / lists of active users polled (failed) | "
        f"{result.get('stops_seen_in_hub_event_log', '-')} / "
        f"{result.get('driver_stop_polls', '-')} ({result.get('driver_stop_poll_errors', 0)}) |",
        f"| hub CPU per start+stop cycle (ms) | {result['hub_cpu_ms_per_cycle']} |",
        f"| proxy / simulator CPU per cycle (ms) | {result['proxy_cpu_ms_per_cycle']} / "
        f"{result['simulator_cpu_ms_per_cycle']} |",
        f"| hub's longest loop stall, start / stop phase (ms) | "
        f"{result['hub_longest_stall_ms']['start_phase']} / "
        f"{result['hub_longest_stall_ms']['stop_phase']} |",
        f"| wall time, start / stop phase (s) | {result['wall_s']['start_phase']} / "
        f"{result['wall_s']['stop_phase']} |",
        "| objects at the peak | " + ", ".join(
            f"{k.replace('_', ' ')} {v}" for k, v in result["cluster_at_peak"].items()) + " |",
        "",
        "| where the hub's time went | total (s) | count | mean (ms) |",
        "|---|---:|---:|---:|",
    ]
    for label, row in result["hub_time_by_phase"].items():
        rows.append(f"| {label} | {row['total_s']} | {row['count']} | {row['mean_ms']} |")
    if "operator" in result:
        op = result["operator"]
        rate, passes = op["reconciles_per_s"], op["reconciles"]
        rows += [
            "",
            f"| operator ({result['meta']['operator_replicas']} replica(s), template: "
            f"{result['meta']['operator_template']}) | value |",
            "|---|---:|",
            f"| operator CPU per start+stop cycle (ms) | {result['operator_cpu_ms_per_cycle']} |",
            f"| hub + operator CPU per cycle (ms) | "
            f"{round(result['hub_cpu_ms_per_cycle'] + result['operator_cpu_ms_per_cycle'], 3)} |",
            f"| reconciles/s, start / stop phase / whole storm | {rate['start_phase']} / "
            f"{rate['stop_phase']} / {rate['storm']} |",
            f"| reconcile passes, start / stop phase (per cycle) | {passes['start_phase']} / "
            f"{passes['stop_phase']} ({op['reconciles_per_cycle']}) |",
            "| passes by outcome | " + ", ".join(
                f"{k} {v}" for k, v in op["reconciles_by_outcome"].items()) + " |",
            f"| reconcile time, summed over passes (s) | {op['reconcile_busy_s']} |",
        ]
    if "vs_baseline" in result:
        rows += ["", *hop_rows(result["vs_baseline"])]
    return "\n".join(rows) + "\n"


def hop_rows(hop: dict[str, Any]) -> list[str]:
    """The extra hop's cost as Markdown rows (this run minus the in-hub baseline)."""
    s, t, cpu = hop["start_to_reachable_ms"], hop["stop_ms"], hop["control_plane_cpu_ms_per_cycle"]
    return [
        f"| the extra hop: this run minus {hop['baseline_spawner']} | value |",
        "|---|---:|",
        f"| start -> reachable p50 / p99 (ms) | {_signed(s['p50'])} / {_signed(s['p99'])} |",
        f"| stop p50 / p99 (ms) | {_signed(t['p50'])} / {_signed(t['p99'])} |",
        f"| control-plane CPU per cycle, in-hub hub / operator mode hub + operator (ms) | "
        f"{cpu['in_hub']} / {cpu['operator_mode']} |",
    ]


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hub_storm",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--spawner", default="async_kubespawner.KubeSpawner",
                        help="the spawner_class the hub runs (a dotted path)")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--scenario", default="instant",
                        help="the simulated pods' scenario (kubesim --scenario)")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="start_timeout / http_timeout of the hub, and the stop wait (s)")
    parser.add_argument("--db-dir", type=Path, default=Path("/dev/shm") if Path("/dev/shm").is_dir()
                        else Path(tempfile.gettempdir()),
                        help="where the hub's SQLite file goes (default /dev/shm: memory, so "
                        "another process's disk writes do not show as hub time)")
    parser.add_argument("--hub-python", type=Path, default=Path(sys.executable),
                        help="the Python that runs JupyterHub (default: this one), e.g. "
                        ".venv-matrix/z2jh/bin/python for the Zero to JupyterHub image's "
                        "versions; it must have JupyterHub and the spawner's packages")
    parser.add_argument("--extra-path", action="append", default=[],
                        help="a directory put first on the hub's PYTHONPATH (repeatable)")
    parser.add_argument("--operator-replicas", type=int, default=1,
                        help="operator mode: operator processes (1; 2 adds a standby)")
    parser.add_argument("--operator-template", type=Path, default=None,
                        help="operator mode: the NotebookTemplate file to install (default: "
                        "examples/operator/template.yaml without its PVC and Service)")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="the JSON of an in-hub run of the same size: report this run's "
                        "latencies minus its (the cost of operator mode's extra hop)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--keep-state", action="store_true",
                        help="keep the logs and database in a temporary directory")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.users < 1:
        print("--users must be at least 1", file=sys.stderr)
        return 2
    if args.operator_replicas < 1:
        print("--operator-replicas must be at least 1", file=sys.stderr)
        return 2
    # Absolute, not resolved: the processes run in a state directory, and a virtualenv's
    # python is a symlink whose target would not see the virtualenv's packages.
    args.hub_python = args.hub_python.absolute()
    problem = hub_python_problem(args.hub_python)
    if problem:
        print(f"--hub-python {args.hub_python}: {problem}", file=sys.stderr)
        return 2
    for option in ("operator_template", "baseline"):
        path = getattr(args, option)
        if path is not None and not path.is_file():
            print(f"--{option.replace('_', '-')} {path}: no such file", file=sys.stderr)
            return 2
    result = asyncio.run(run(args))
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(result))
    print(markdown(result))
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
