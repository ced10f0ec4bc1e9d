"""Load benchmark of the API simulator: stored pods, watches, create rate, watch latency.

The simulator runs as its own process (``python -m kubesim``), as it does
for the demo, so it has a core to itself and its memory can be read from /proc; this
process is the client, speaking raw HTTP with pre-serialised bodies so the figures are
the server's rather than a client library's.

    python -m benchmarks.sim_load                      # the full-size targets
    python -m benchmarks.sim_load --pods 2000 --json out.json
    python -m benchmarks.sim_load --auth serviceaccount  # every request through RBAC

``--auth`` says who the load comes from: ``off`` (authentication and RBAC off), ``admin``
(the kubeconfig's system:masters token: authenticated, allowed before RBAC) or
``serviceaccount`` (a TokenRequest token of a ServiceAccount whose Role and ClusterRole
allow the load, so every request is authenticated and RBAC-authorized). The server serves
plain HTTP in every mode, so the modes differ by the authentication and RBAC checks only.

Figures (and their goals): stored pods (>= 20,000), open watches (>= 100), pod
creates/s with 10 watchers attached (>= 1,000), watch delivery latency p50/p99 (<= 5 ms),
server memory per stored pod. Nothing here asserts; it measures and reports.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "bench"


@dataclass
class Results:
    stored_pods: int = 0
    open_watches: int = 0
    load_creates_per_s: float = 0.0
    creates_per_s_with_10_watchers: float = 0.0
    # server CPU time per create with 10 watchers: unlike wall-clock rates, this does not
    # depend on other processes competing for the cores; 1000 / it = creates/s on one core
    server_cpu_ms_per_create: float = 0.0
    creates_per_s_per_server_core: float = 0.0
    events_delivered_per_watcher: int = 0
    delivery_latency_ms_p50: float = 0.0
    delivery_latency_ms_p99: float = 0.0
    paced_rate_per_s: float = 0.0
    paced_achieved_per_s: float = 0.0
    paced_latency_ms_p50: float = 0.0
    paced_latency_ms_p99: float = 0.0
    list_all_pods_s: float = 0.0
    # every stored pod listed in pages of `--page-size` (continue tokens), first to last
    paginated_list_s: float = 0.0
    paginated_list_pages: int = 0
    # core/v1 Events created at `--paced-rate` with 10 event watchers attached
    event_rate_per_s: float = 0.0
    event_latency_ms_p50: float = 0.0
    event_latency_ms_p99: float = 0.0
    server_rss_mb_empty: float = 0.0
    server_rss_mb_loaded: float = 0.0
    memory_per_pod_kb: float = 0.0
    # the machine's 1-minute load average before and after: figures from a busy machine
    # (other processes competing for the cores) are not comparable with a quiet one
    load_average_before: float = 0.0
    load_average_after: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)


def event_body(name: str) -> bytes:
    """A kubelet-shaped core/v1 Event; metadata first so the watcher finds its name."""
    return json.dumps({
        "metadata": {"name": name, "namespace": NAMESPACE},
        "involvedObject": {"kind": "Pod", "namespace": NAMESPACE, "name": "load-000000"},
        "reason": "Pulled", "message": "Container image already present on machine",
        "type": "Normal", "source": {"component": "kubelet", "host": "node-1"},
        "count": 1,
    }).encode()


def pod_body(name: str, labels: dict[str, str] | None = None) -> bytes:
    """A spawner-like pod (labels, env, resources, one volume)."""
    return json.dumps({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"app": "jupyterhub",
                                                          "component": "singleuser-server"},
                     "annotations": {"hub.jupyter.org/username": name}},
        "spec": {
            "containers": [{
                "name": "notebook",
                "image": "quay.io/jupyter/base-notebook:latest",
                "args": ["jupyterhub-singleuser"],
                "ports": [{"name": "notebook-port", "containerPort": 8888}],
                "env": [{"name": "JUPYTERHUB_USER", "value": name},
                        {"name": "JUPYTERHUB_API_URL", "value": "http://hub:8081/hub/api"}],
                "resources": {"requests": {"memory": "1Gi", "cpu": "500m"},
                              "limits": {"memory": "2Gi"}},
            }],
            "securityContext": {"fsGroup": 100},
        },
    }).encode()


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Watcher:
    """A raw watch stream that timestamps each event line on arrival."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http, self.url = http, url
        self.arrivals: dict[str, float] = {}
        self.count = 0
        self.task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        self.waiting_for: str | None = None
        self.arrived = asyncio.Event()

    async def run(self) -> None:
        async with self.http.get(self.url, timeout=aiohttp.ClientTimeout(total=None)) as resp:
            self.ready.set()
            async for line in resp.content:
                now = time.perf_counter()
                start = line.find(b'"name":"')
                if start < 0:
                    continue
                end = line.find(b'"', start + 8)
                name = line[start + 8:end].decode()
                self.arrivals[name] = now
                self.count += 1
                if name == self.waiting_for:
                    self.arrived.set()

    def start(self) -> None:
        self.task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, aiohttp.ClientError):
                pass


async def create_many(http: aiohttp.ClientSession, base: str, names: list[str],
                      concurrency: int, sent: dict[str, float] | None = None,
                      rate: float | None = None, plural: str = "pods") -> float:
    """Create pods ``names`` with ``concurrency`` in flight (or paced at ``rate``/s); seconds taken."""
    url = f"{base}/api/v1/namespaces/{NAMESPACE}/{plural}"
    body = pod_body if plural == "pods" else event_body
    headers = {"Content-Type": "application/json"}
    queue = list(reversed(names))
    started = time.perf_counter()

    async def worker() -> None:
        while queue:
            name = queue.pop()
            if rate is not None:
                due = started + (len(names) - len(queue) - 1) / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)  # pacing the load generator, not synchronisation
            if sent is not None:
                sent[name] = time.perf_counter()
            async with http.post(url, data=body(name), headers=headers) as resp:
                if resp.status != 201:
                    raise RuntimeError(f"create {name}: HTTP {resp.status} {await resp.text()}")
                await resp.read()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


async def wait_delivered(watchers: list[Watcher], names: list[str], limit_s: float) -> None:
    """Wait until every watcher has seen the last of ``names`` (events arrive in order)."""
    last = names[-1]
    for w in watchers:
        w.waiting_for = last
        w.arrived.clear()
        if last in w.arrivals:
            w.arrived.set()
    try:
        await asyncio.wait_for(asyncio.gather(*(w.arrived.wait() for w in watchers)), limit_s)
    except TimeoutError:
        missing = sum(last not in w.arrivals for w in watchers)
        raise RuntimeError(f"{missing} watchers did not get every event within {limit_s}s") from None


def latencies(watchers: list[Watcher], sent: dict[str, float]) -> list[float]:
    return [(w.arrivals[n] - t) * 1000 for w in watchers for n, t in sent.items() if n in w.arrivals]


async def list_in_pages(http: aiohttp.ClientSession, url: str, page_size: int,
                        expected: int) -> tuple[float, int]:
    """Seconds to list everything at ``url`` following continue tokens, and the pages."""
    started = time.perf_counter()
    pages, seen, token = 0, 0, ""
    while True:
        params = {"limit": str(page_size)}
        if token:
            params["continue"] = token
        async with http.get(url, params=params) as resp:
            if resp.status != 200:
                raise RuntimeError(f"paginated list: HTTP {resp.status} {await resp.text()}")
            page = await resp.json()
        pages += 1
        seen += len(page["items"])
        token = page["metadata"].get("continue", "")
        if not token:
            break
    if seen != expected:
        raise RuntimeError(f"paginated list returned {seen} items, expected {expected}")
    return time.perf_counter() - started, pages


async def start_server(kubeconfig: Path, history_size: int,
                       auth: str = "off") -> tuple[asyncio.subprocess.Process, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "simulator")])}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kubesim", "--port", "0",
        "--kubeconfig", str(kubeconfig), "--history-size", str(history_size),
        "--no-cluster",  # the API server alone: no scheduler/kubelet writing pod status
        *(["--no-auth"] if auth == "off" else ["--no-tls"]),
        stdout=asyncio.subprocess.PIPE, env=env,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
    if "listening on" not in line:
        raise RuntimeError(f"simulator did not start: {line!r}")
    return proc, line.split("listening on ", 1)[1].split()[0]


async def service_account_token(http: aiohttp.ClientSession, base: str) -> str:
    """A ServiceAccount allowed exactly the load (via a Role in each namespace used and a
    ClusterRole for the all-namespaces list), and a TokenRequest token for it."""
    rbac = f"{base}/apis/rbac.authorization.k8s.io/v1"
    subject = [{"kind": "ServiceAccount", "name": "load", "namespace": NAMESPACE}]
    rules = [{"apiGroups": [""], "resources": ["pods", "events"],
              "verbs": ["get", "list", "watch", "create"]}]
    posts: list[tuple[str, dict[str, Any]]] = [
        (f"{base}/api/v1/namespaces/{NAMESPACE}/serviceaccounts", {"metadata": {"name": "load"}})]
    for ns in (NAMESPACE, "idle"):
        posts += [
            (f"{rbac}/namespaces/{ns}/roles", {"metadata": {"name": "load"}, "rules": rules}),
            (f"{rbac}/namespaces/{ns}/rolebindings", {
                "metadata": {"name": "load"}, "subjects": subject,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "load"}}),
        ]
    posts += [
        (f"{rbac}/clusterroles", {"metadata": {"name": "load"}, "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]}),
        (f"{rbac}/clusterrolebindings", {
            "metadata": {"name": "load"}, "subjects": subject,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "load"}}),
    ]
    for url, body in posts:
        async with http.post(url, json=body) as resp:
            if resp.status != 201:
                raise RuntimeError(f"RBAC set-up {url}: HTTP {resp.status} {await resp.text()}")
    async with http.post(f"{base}/api/v1/namespaces/{NAMESPACE}/serviceaccounts/load/token",
                         json={"spec": {}}) as resp:
        return str((await resp.json())["status"]["token"])


async def run(args: argparse.Namespace) -> Results:
    res = Results(settings=vars(args).copy())
    res.settings.pop("json", None)
    res.settings["cpus"] = os.cpu_count()
    res.load_average_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        proc, base = await start_server(kubeconfig, args.history_size, args.auth)
        admin = {}
        if args.auth != "off":
            token = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["token"]
            admin = {"Authorization": f"Bearer {token}"}
        connector = aiohttp.TCPConnector(limit=0)
        try:
            async with aiohttp.ClientSession(connector=connector, connector_owner=False,
                                             headers=admin) as setup:
                for ns in (NAMESPACE, "idle"):
                    async with setup.post(f"{base}/api/v1/namespaces",
                                          json={"metadata": {"name": ns}}) as resp:
                        if resp.status != 201:
                            raise RuntimeError(f"namespace {ns}: HTTP {resp.status} {await resp.text()}")
                load_headers = admin
                if args.auth == "serviceaccount":
                    load_headers = {"Authorization": f"Bearer {await service_account_token(setup, base)}"}
            async with aiohttp.ClientSession(connector=connector, headers=load_headers) as http:
                res.server_rss_mb_empty = rss_mb(proc.pid)

                # 1. bulk load, no watchers
                names = [f"load-{i:06d}" for i in range(args.pods)]
                took = await create_many(http, base, names, args.concurrency)
                res.load_creates_per_s = args.pods / took
                res.server_rss_mb_loaded = rss_mb(proc.pid)
                res.memory_per_pod_kb = (
                    (res.server_rss_mb_loaded - res.server_rss_mb_empty) * 1024 / args.pods)
                t0 = time.perf_counter()
                async with http.get(f"{base}/api/v1/pods") as resp:
                    listing = await resp.json()
                res.list_all_pods_s = time.perf_counter() - t0
                res.stored_pods = len(listing["items"])
                rv = listing["metadata"]["resourceVersion"]
                del listing
                res.paginated_list_s, res.paginated_list_pages = await list_in_pages(
                    http, f"{base}/api/v1/pods", args.page_size, res.stored_pods)

                # 2. watches: 10 see every pod event, the rest watch elsewhere (idle)
                watch_url = f"{base}/api/v1/namespaces/{NAMESPACE}/pods?watch=1&resourceVersion={rv}"
                idle_url = f"{base}/api/v1/namespaces/idle/pods?watch=1&resourceVersion={rv}"
                busy = [Watcher(http, watch_url) for _ in range(10)]
                idle = [Watcher(http, idle_url) for _ in range(max(0, args.watches - 10))]
                for w in busy + idle:
                    w.start()
                await asyncio.gather(*(w.ready.wait() for w in busy + idle))
                async with http.get(f"{base}/_sim/state", headers=admin) as resp:
                    res.open_watches = (await resp.json())["openWatches"]

                # 3. creates as fast as they go, with 10 watchers attached
                sent: dict[str, float] = {}
                burst = [f"burst-{i:06d}" for i in range(args.burst)]
                cpu_before = cpu_seconds(proc.pid)
                took = await create_many(http, base, burst, args.concurrency, sent)
                res.creates_per_s_with_10_watchers = args.burst / took
                await wait_delivered(busy, burst, 120)
                cpu_used = cpu_seconds(proc.pid) - cpu_before
                res.server_cpu_ms_per_create = cpu_used * 1000 / args.burst
                if cpu_used > 0:
                    res.creates_per_s_per_server_core = args.burst / cpu_used
                res.events_delivered_per_watcher = min(len(w.arrivals) for w in busy)
                lat = latencies(busy, sent)
                res.delivery_latency_ms_p50 = percentile(lat, 0.5)
                res.delivery_latency_ms_p99 = percentile(lat, 0.99)

                # 4. watch latency at a steady rate below saturation
                sent = {}
                paced = [f"paced-{i:06d}" for i in range(args.paced_count)]
                res.paced_rate_per_s = args.paced_rate
                took = await create_many(http, base, paced, 8, sent, rate=args.paced_rate)
                res.paced_achieved_per_s = args.paced_count / took
                await wait_delivered(busy, paced, 60)
                lat = latencies(busy, sent)
                res.paced_latency_ms_p50 = percentile(lat, 0.5)
                res.paced_latency_ms_p99 = percentile(lat, 0.99)
                for w in busy + idle:
                    await w.stop()

                # 5. the same paced rate for core/v1 Events (what the kubelet writes most)
                async with http.get(f"{base}/api/v1/namespaces/{NAMESPACE}/events") as resp:
                    rv = (await resp.json())["metadata"]["resourceVersion"]
                event_url = (f"{base}/api/v1/namespaces/{NAMESPACE}/events"
                             f"?watch=1&resourceVersion={rv}")
                watchers = [Watcher(http, event_url) for _ in range(10)]
                for w in watchers:
                    w.start()
                await asyncio.gather(*(w.ready.wait() for w in watchers))
                sent = {}
                events = [f"event-{i:06d}" for i in range(args.paced_count)]
                took = await create_many(http, base, events, 8, sent, rate=args.paced_rate,
                                         plural="events")
                res.event_rate_per_s = args.paced_count / took
                await wait_delivered(watchers, events, 60)
                lat = latencies(watchers, sent)
                res.event_latency_ms_p50 = percentile(lat, 0.5)
                res.event_latency_ms_p99 = percentile(lat, 0.99)
                for w in watchers:
                    await w.stop()
        finally:
            proc.terminate()
            await proc.wait()
    res.load_average_after = os.getloadavg()[0]
    return res


def print_table(res: Results) -> None:
    rows = [
        ("stored pods", f"{res.stored_pods:,}", ">= 20,000"),
        ("open watches", f"{res.open_watches}", ">= 100"),
        ("bulk creates/s (no watchers)", f"{res.load_creates_per_s:,.0f}", ""),
        ("creates/s with 10 watchers", f"{res.creates_per_s_with_10_watchers:,.0f}", ">= 1,000"),
        ("  server CPU per create (ms)", f"{res.server_cpu_ms_per_create:.2f}", ""),
        ("  = creates/s per server core", f"{res.creates_per_s_per_server_core:,.0f}", ">= 1,000"),
        ("  watch latency p50 / p99 (ms)",
         f"{res.delivery_latency_ms_p50:.1f} / {res.delivery_latency_ms_p99:.1f}", "(saturated)"),
        (f"watch latency at {res.paced_achieved_per_s:.0f}/s p50 / p99 (ms)",
         f"{res.paced_latency_ms_p50:.1f} / {res.paced_latency_ms_p99:.1f}", "<= 5"),
        ("list all pods (s)", f"{res.list_all_pods_s:.2f}", ""),
        (f"list all pods in {res.paginated_list_pages} pages (s)",
         f"{res.paginated_list_s:.2f}", f"limit={res.settings.get('page_size')}"),
        (f"Event watch latency at {res.event_rate_per_s:.0f}/s p50 / p99 (ms)",
         f"{res.event_latency_ms_p50:.1f} / {res.event_latency_ms_p99:.1f}", "<= 5"),
        ("server RSS empty / loaded (MB)",
         f"{res.server_rss_mb_empty:.0f} / {res.server_rss_mb_loaded:.0f}", ""),
        ("memory per stored pod (KB)", f"{res.memory_per_pod_kb:.1f}", ""),
        ("machine load average before / after",
         f"{res.load_average_before:.1f} / {res.load_average_after:.1f}",
         f"{os.cpu_count()} cpus; figures need a quiet machine"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'measured':>16}  goal")
    for name, value, goal in rows:
        print(f"{name:<{width}}  {value:>16}  {goal}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=20_000, help="pods stored before measuring")
    parser.add_argument("--watches", type=int, default=100, help="watches open (10 busy)")
    parser.add_argument("--burst", type=int, default=5_000, help="pods created at full speed")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--paced-rate", type=float, default=1000.0, help="creates/s for latency")
    parser.add_argument("--paced-count", type=int, default=2_000, help="pods created paced")
    parser.add_argument("--page-size", type=int, default=200, help="limit of the paged list")
    parser.add_argument("--history-size", type=int, default=10_000)
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    parser.add_argument("--auth", choices=("off", "admin", "serviceaccount"), default="off",
                        help="who the load comes from (see the module docstring)")
    args = parser.parse_args(argv)
    for name in ("pods", "watches", "burst", "concurrency", "paced_count", "page_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.watches < 10:
        parser.error("--watches must be at least 10 (ten of them receive every event)")
    res = asyncio.run(run(args))
    print_table(res)
    if args.json:
        args.json.write_text(json.dumps(asdict(res), indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
