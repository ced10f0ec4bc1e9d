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
  it (``DELETE``), all N together.

Figures (JSON): ``failed``; ``start_to_reachable_ms`` (POST sent -> first 200 from the
server through the proxy) and ``stop_ms`` (DELETE sent -> the hub reports the server
gone), each ``{p50, p90, p99, max, n}``; ``hub_cpu_ms_per_cycle`` (the hub process's
CPU over both phases / N; the proxy's and the simulator's reported apart); the hub's
longest event-loop stall per phase (a monitor task on the hub's own loop); and where
the hub's time went, from JupyterHub's own Prometheus metrics and a timer on every
database statement: spawn (``jupyterhub_server_spawn_duration_seconds``), proxy route
add/remove, stop, REST request handling, database.

Upstream is measured from a side directory, leaving the environment untouched::

    pip install --no-deps --target /tmp/upstream-ks jupyterhub-kubespawner==7.1.0
    python -m benchmarks.hub_storm --spawner kubespawner.KubeSpawner \\
        --extra-path /tmp/upstream-ks --users 1000 --json upstream.json
"""

from __future__ import annotations

import argparse
import asyncio
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
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

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


def hub_config(args: argparse.Namespace, state: Path, token: str, ports: dict[str, int]) -> str:
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
c.JupyterHub.services = [{{"name": "storm", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{"name": "storm", "services": ["storm"],
    "scopes": ["admin:users", "admin:servers", "access:servers", "read:metrics"]}}]
c.Spawner.start_timeout = {args.timeout}
c.Spawner.http_timeout = {args.timeout}
c.KubeSpawner.image = "quay.io/jupyterhub/singleuser:5.2"
c.KubeSpawner.namespace = "default"
PROBE_PATH = "{state / "hub-probe.json"}"
''' + HUB_PROBE


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


PHASE_METRICS = {
    "spawn (spawner start, per server)": "jupyterhub_server_spawn_duration_seconds",
    "proxy route add": "jupyterhub_proxy_add_duration_seconds",
    "proxy route delete": "jupyterhub_proxy_delete_duration_seconds",
    "stop (spawner stop, per server)": "jupyterhub_server_stop_seconds",
    "REST request handling": "jupyterhub_request_duration_seconds",
}


class Driver:
    def __init__(self, hub_api: str, public: str, token: str, timeout: float) -> None:
        self.hub_api = hub_api
        self.public = public
        self.headers = {"Authorization": f"token {token}"}
        self.timeout = timeout
        self.session: aiohttp.ClientSession

    async def __aenter__(self) -> Driver:
        self.session = aiohttp.ClientSession(
            headers=self.headers,
            connector=aiohttp.TCPConnector(limit=0, force_close=False),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
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
        """Seconds from the POST to the server answering through the proxy, or the failure."""
        t0 = time.monotonic()
        async with self.session.post(f"{self.hub_api}/users/{name}/server", json={}) as r:
            if r.status not in (201, 202):
                return None, f"POST {r.status}: {(await r.text())[:200]}"
            pending = r.status == 202
        if pending:
            async with self.session.get(f"{self.hub_api}/users/{name}/server/progress") as r:
                ready = False
                async for raw in r.content:
                    line = raw.decode().strip()
                    if not line.startswith("data:"):
                        continue
                    event = json.loads(line[5:])
                    if event.get("failed"):
                        return None, f"failed: {event.get('message', '')[:200]}"
                    if event.get("ready"):
                        ready = True
                        break
                if not ready:
                    return None, "progress stream ended without ready"
        for _ in range(200):
            async with self.session.get(f"{self.public}/user/{name}/api/status") as r:
                if r.status == 200 and "started" in await r.text():
                    return time.monotonic() - t0, ""
            await asyncio.sleep(0.05)
        return None, "not reachable through the proxy"

    async def stop(self, name: str) -> tuple[float | None, str]:
        t0 = time.monotonic()
        async with self.session.delete(f"{self.hub_api}/users/{name}/server") as r:
            if r.status == 204:
                return time.monotonic() - t0, ""
            if r.status != 202:
                return None, f"DELETE {r.status}: {(await r.text())[:200]}"
        while time.monotonic() - t0 < self.timeout:
            await asyncio.sleep(0.25)
            async with self.session.get(f"{self.hub_api}/users/{name}") as r:
                model = await r.json()
            if "" not in (model.get("servers") or {}):
                return time.monotonic() - t0, ""
        return None, "stop did not finish"


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
    token = secrets.token_hex(24)
    ports = {"public": free_port(), "hub": free_port(), "proxy_api": free_port()}
    try:
        await sim.wait_for(r"simulator listening on", 60)
        config = state / "jupyterhub_config.py"
        config.write_text(hub_config(args, state, token, ports))
        hub = await Process(
            "hub", [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            state / "hub.log", {**env, "KUBECONFIG": str(kubeconfig)}, state,
        ).start()
        hub_api = f"http://127.0.0.1:{ports['public']}/hub/api"
        names = [f"user{i:05d}" for i in range(args.users)]
        async with Driver(hub_api, f"http://127.0.0.1:{ports['public']}", token,
                          args.timeout) as driver:
            await driver.wait_for_hub()
            await driver.create_users(names)
            proxy_pid = next(iter(child_pids(hub.pid)), None)
            cpu0 = (cpu_seconds(hub.pid), cpu_seconds(proxy_pid) if proxy_pid else 0.0,
                    cpu_seconds(sim.pid))
            metrics0 = await driver.metrics()
            t_start = time.monotonic()
            started = await asyncio.gather(*(driver.start(n) for n in names))
            t_started = time.monotonic()
            cpu1 = (cpu_seconds(hub.pid), cpu_seconds(proxy_pid) if proxy_pid else 0.0,
                    cpu_seconds(sim.pid))
            up = [n for n, (s, _) in zip(names, started, strict=True) if s is not None]
            stopped = await asyncio.gather(*(driver.stop(n) for n in up))
            t_stopped = time.monotonic()
            cpu2 = (cpu_seconds(hub.pid), cpu_seconds(proxy_pid) if proxy_pid else 0.0,
                    cpu_seconds(sim.pid))
            metrics1 = await driver.metrics()
        await asyncio.sleep(0.5)  # one more write of the hub's probe file
        probe = json.loads((state / "hub-probe.json").read_text())
    finally:
        if hub is not None:
            await hub.stop()
        await sim.stop()
    failures = [why for _, why in started if why] + [why for _, why in stopped if why]
    cycles = max(1, len(up))
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
    result = {
        "meta": {
            "spawner": args.spawner, "users": args.users, "scenario": args.scenario,
            "db_dir": str(args.db_dir),
            "python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "load_avg_before": os.getloadavg(), "fd_limit": fd_limit,
            "versions": versions(env),
        },
        "failed": len([s for s, _ in started if s is None]) + len([s for s, _ in stopped
                                                                  if s is None]),
        "failures_sample": failures[:10],
        "start_to_reachable_ms": summarise([s for s, _ in started if s is not None], 1000),
        "stop_ms": summarise([s for s, _ in stopped if s is not None], 1000),
        "wall_s": {"start_phase": round(t_started - t_start, 3),
                   "stop_phase": round(t_stopped - t_started, 3)},
        "hub_cpu_ms_per_cycle": round((cpu2[0] - cpu0[0]) / cycles * 1000, 3),
        "proxy_cpu_ms_per_cycle": round((cpu2[1] - cpu0[1]) / cycles * 1000, 3),
        "simulator_cpu_ms_per_cycle": round((cpu2[2] - cpu0[2]) / cycles * 1000, 3),
        "hub_cpu_s": {"start_phase": round(cpu1[0] - cpu0[0], 3),
                      "stop_phase": round(cpu2[0] - cpu1[0], 3)},
        "hub_longest_stall_ms": {"start_phase": stalls_between(probe["stalls"], t_start, t_started),
                                 "stop_phase": stalls_between(probe["stalls"], t_started,
                                                              t_stopped)},
        "hub_time_by_phase": phases,
    }
    if args.keep_state:
        result["meta"]["state_dir"] = str(state)
    else:
        shutil.rmtree(state, ignore_errors=True)
        (args.db_dir / (state.name + ".sqlite")).unlink(missing_ok=True)
    return result


def versions(env: dict[str, str]) -> dict[str, str]:
    """What the hub process imports (its PYTHONPATH may hold upstream's side directory)."""
    import subprocess

    code = ("import json, importlib.metadata as m\nout = {}\n"
            "for d in ('jupyterhub', 'kubernetes_asyncio', 'jupyterhub-kubespawner', "
            "'async-kubespawner'):\n"
            "    try: out[d] = m.version(d)\n    except m.PackageNotFoundError: pass\n"
            "print(json.dumps(out))")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=False)
    try:
        return dict(json.loads(done.stdout))
    except ValueError:
        return {}


def markdown(result: dict[str, Any]) -> str:
    s, t = result["start_to_reachable_ms"], result["stop_ms"]
    rows = [
        f"# Whole-hub storm: {result['meta']['users']} users, {result['meta']['spawner']}",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| failed | {result['failed']} |",
        f"| start -> reachable through the proxy (ms) p50 / p99 / max | "
        f"{s['p50']} / {s['p99']} / {s['max']} |",
        f"| stop (ms) p50 / p99 / max | {t['p50']} / {t['p99']} / {t['max']} |",
        f"| hub CPU per start+stop cycle (ms) | {result['hub_cpu_ms_per_cycle']} |",
        f"| proxy / simulator CPU per cycle (ms) | {result['proxy_cpu_ms_per_cycle']} / "
        f"{result['simulator_cpu_ms_per_cycle']} |",
        f"| hub's longest loop stall, start / stop phase (ms) | "
        f"{result['hub_longest_stall_ms']['start_phase']} / "
        f"{result['hub_longest_stall_ms']['stop_phase']} |",
        f"| wall time, start / stop phase (s) | {result['wall_s']['start_phase']} / "
        f"{result['wall_s']['stop_phase']} |",
        "",
        "| where the hub's time went | total (s) | count | mean (ms) |",
        "|---|---:|---:|---:|",
    ]
    for label, row in result["hub_time_by_phase"].items():
        rows.append(f"| {label} | {row['total_s']} | {row['count']} | {row['mean_ms']} |")
    return "\n".join(rows) + "\n"


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
    parser.add_argument("--extra-path", action="append", default=[],
                        help="a directory put first on the hub's PYTHONPATH (repeatable)")
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
