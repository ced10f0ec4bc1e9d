"""``python -m kubesim`` / ``async-kubespawner-sim``: serve the simulator.

Writes a kubeconfig so that ``kubectl --kubeconfig FILE ...``, a JupyterHub using the
spawner, or any other Kubernetes client can talk to it, then serves until SIGINT or
SIGTERM. Cluster components (nodes, scheduler, kubelet) plug in through
``build_controllers``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from . import cluster
from .gc_policy import freeze_survivors_of_full_collections
from .testing import Controller, run_simulator

log = logging.getLogger("kubesim")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubesim",
        description="A local Kubernetes API simulator (no cluster needed).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: a free port)")
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        required=True,
        help="where to write a kubeconfig for this simulator",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        default=None,
        help="serve HTTPS with a self-signed cert (the default with authentication on: "
        "kubectl sends bearer tokens over HTTPS only)",
    )
    parser.add_argument(
        "--no-tls", dest="tls", action="store_false", help="serve plain HTTP even with authentication on"
    )
    parser.add_argument(
        "--token",
        help="the admin (system:masters) bearer token written into the kubeconfig "
        "(default: a random one)",
    )
    parser.add_argument(
        "--no-auth",
        dest="auth",
        action="store_false",
        help="turn authentication and RBAC off: every request may do everything",
    )
    parser.add_argument(
        "--no-flow-control",
        dest="flow_control",
        action="store_false",
        help="serve requests in arrival order instead of API Priority and Fairness "
        "(fair queuing among clients, 429 when a priority level's queues are full)",
    )
    history = parser.add_argument_group("history and watches")
    history.add_argument(
        "--history-size",
        type=int,
        default=10_000,
        help="changes kept for Exact lists and continue tokens (etcd's part; default 10000)",
    )
    history.add_argument(
        "--history-age",
        type=float,
        default=300.0,
        help="seconds before a change is compacted (default 300, etcd's compaction)",
    )
    history.add_argument(
        "--watch-cache-min",
        type=int,
        default=100,
        help="events each resource's watch cache keeps at least (default 100, as the real one)",
    )
    history.add_argument(
        "--watch-cache-fresh",
        type=float,
        default=75.0,
        help="seconds of events a watch cache grows to keep (default 75, as the real one)",
    )
    history.add_argument(
        "--bookmark-interval",
        type=float,
        default=60.0,
        help="seconds between periodic watch BOOKMARKs (default 60)",
    )
    faults = parser.add_argument_group("faults (also scriptable at run time via /_sim/faults)")
    faults.add_argument(
        "--latency", type=float, default=0.0, help="add this many seconds to every API request"
    )
    faults.add_argument(
        "--error-rate",
        type=float,
        default=0.0,
        help="fraction (0-1) of API requests answered with --error-code",
    )
    faults.add_argument(
        "--error-code",
        type=int,
        default=503,
        choices=(429, 500, 503, 504),
        help="status used by --error-rate (default 503)",
    )
    add_cluster_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return parser


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the cluster components (nodes, scheduler, kubelet, process mode)."""
    cluster.add_arguments(parser)


def build_controllers(args: argparse.Namespace) -> Sequence[Controller]:
    """The in-process cluster components to run next to the API server (none with
    ``--no-cluster``: the API server alone, no nodes and no scheduler)."""
    return tuple(cluster.build_controllers(args))


def validate_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not 0.0 <= args.error_rate <= 1.0:
        parser.error(f"--error-rate must be between 0 and 1, got {args.error_rate}")
    if args.latency < 0:
        parser.error(f"--latency must be >= 0, got {args.latency}")
    if args.history_size < 1:
        parser.error(f"--history-size must be at least 1, got {args.history_size}")
    if args.watch_cache_min < 1:
        parser.error(f"--watch-cache-min must be at least 1, got {args.watch_cache_min}")
    if args.watch_cache_fresh < 0:
        parser.error(f"--watch-cache-fresh must be >= 0, got {args.watch_cache_fresh}")
    if args.bookmark_interval <= 0:
        parser.error(f"--bookmark-interval must be > 0, got {args.bookmark_interval}")
    if args.token is not None and not args.auth:
        parser.error("--token needs authentication: drop --no-auth")
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be between 0 and 65535, got {args.port}")


async def serve(args: argparse.Namespace, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set (or SIGINT/SIGTERM when it is not given)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with run_simulator(
        tls=args.auth if args.tls is None else args.tls,
        token=args.token if args.auth else None,
        auth=args.auth,
        host=args.host,
        port=args.port,
        kubeconfig_path=args.kubeconfig,
        controllers=build_controllers(args),
        history_size=args.history_size,
        history_age=args.history_age,
        watch_cache_min=args.watch_cache_min,
        watch_cache_max=max(args.watch_cache_min, 100 * 1024),
        watch_cache_fresh=args.watch_cache_fresh,
        bookmark_interval=args.bookmark_interval,
        flow_control=args.flow_control,
    ) as sim:
        if args.latency:
            sim.faults.add_latency(args.latency)
        if args.error_rate:
            sim.faults.fail(args.error_code, fraction=args.error_rate)
        # one machine-readable line, so scripts can wait for it
        print(f"simulator listening on {sim.url} kubeconfig={sim.kubeconfig_path}", flush=True)
        await stop.wait()
    print("simulator stopped", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    validate_args(parser, args)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    freeze_survivors_of_full_collections()  # this process is the API server; see gc_policy
    try:
        asyncio.run(serve(args))
    except OSError as exc:
        print(f"cannot start the simulator on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
