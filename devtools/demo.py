"""``python -m devtools.demo``: a real JupyterHub spawning real servers on this machine.

What ``make demo`` runs. It starts three programs, each in its own process group:

1. the Kubernetes API simulator in process mode (``python -m kubesim``),
   whose "pods" are real ``jupyterhub-singleuser`` processes on their own loopback IPs —
   skipped when ``--kubeconfig`` points at a real cluster, the rest being identical;
2. configurable-http-proxy, the public entry point (``--port``, 8000 by default);
3. JupyterHub with ``examples/local/jupyterhub_config.py`` (or ``--config``) and this
   package's ``KubeSpawner``, told where the API server is through ``$KUBECONFIG``.

It prints the URL and the login, and on Ctrl-C or SIGTERM stops the hub first (which
stops the users' servers through the spawner, deleting their pods), then the proxy,
then the simulator, and kills whatever is left of each process group. State (the hub's
database, kubeconfig, logs) lives in ``--state-dir`` (``.demo/``).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from . import local_stack
from .local_stack import ProcessFailed, SimulatorOptions, SupervisedProcess

DEFAULT_CONFIG = local_stack.PACKAGE_ROOT / "examples" / "local" / "jupyterhub_config.py"
OPERATOR_CONFIG = local_stack.PACKAGE_ROOT / "examples" / "operator" / "jupyterhub_config.py"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.demo",
        description="Run JupyterHub with async_kubespawner on the built-in Kubernetes simulator "
        "(or on a real cluster with --kubeconfig). Ctrl-C stops everything.",
    )
    parser.add_argument("--port", type=int, default=8000, help="public port of the hub (default 8000)")
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help="the hub's jupyterhub_config.py (default: examples/local/jupyterhub_config.py)",
    )
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        default=None,
        help="use this cluster instead of starting the simulator (the same code path: "
        "the hub gets it as $KUBECONFIG)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".demo"),
        help="where the hub's database, the simulator's kubeconfig and the logs go (default .demo/)",
    )
    parser.add_argument(
        "--fast", action="store_true", help="simulator timings in milliseconds instead of seconds"
    )
    parser.add_argument(
        "--operator",
        action="store_true",
        help="operator mode: the CRDs and examples/operator/template.yaml are installed, two "
        "operator replicas (one leads) provision the servers, and the hub (default config "
        "examples/operator/jupyterhub_config.py) only creates NotebookServers",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="echo the simulator's and the proxy's logs too"
    )
    args = parser.parse_args(argv)
    if args.operator and args.config == DEFAULT_CONFIG:
        args.config = OPERATOR_CONFIG
    if not args.config.is_file():
        parser.error(
            f"--config {args.config}: no such file. From a source checkout the default is "
            "examples/local/jupyterhub_config.py; an installed package has no examples, so pass --config."
        )
    if args.kubeconfig is not None and not args.kubeconfig.is_file():
        parser.error(f"--kubeconfig {args.kubeconfig}: no such file")
    if not 0 < args.port < 65536:
        parser.error(f"--port {args.port}: must be between 1 and 65535")
    if not port_is_free(args.port):
        parser.error(
            f"--port {args.port}: 127.0.0.1:{args.port} is already in use (another demo or hub?); "
            "stop it or choose another port, e.g. --port 8001"
        )
    return args


def port_is_free(port: int) -> bool:
    """Whether the proxy could bind ``port``: say so before starting three programs, not after."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class StopRequested(Exception):
    """Ctrl-C or SIGTERM arrived while the demo was still starting its programs."""


@dataclass
class Demo:
    """The running programs and the one event that ends the demo."""

    args: argparse.Namespace
    starting: bool = True
    processes: list[SupervisedProcess] = field(default_factory=list)
    finished: threading.Event = field(default_factory=threading.Event)
    reason: str = ""

    def request_stop(self, reason: str) -> None:
        if not self.finished.is_set():
            self.reason = reason
            self.finished.set()

    def watch(self, proc: SupervisedProcess) -> None:
        """End the demo when ``proc`` exits on its own: a hub without a simulator is no demo."""

        def wait() -> None:
            assert proc.process is not None
            code = proc.process.wait()
            self.request_stop(f"{proc.name} exited with code {code} (log: {proc.log_path})")

        threading.Thread(target=wait, name=f"watch-{proc.name}", daemon=True).start()

    def start(self) -> str:
        """Start every program; returns the banner that says where the hub is.

        The caller prints it once the start is over (``starting`` false): a user or a
        test that signals as soon as it reads the banner must get an orderly shutdown,
        not "stopped while starting".
        """
        args = self.args
        state = args.state_dir.resolve()
        state.mkdir(parents=True, exist_ok=True)
        env: dict[str, str] = {}
        if args.kubeconfig is None:
            # A new simulator is an empty cluster: the hub's memory of servers from a
            # previous run would only point at pods that no longer exist.
            for stale in ("jupyterhub.sqlite", "jupyterhub.pid"):
                (state / stale).unlink(missing_ok=True)
            print("starting the Kubernetes simulator (process mode) ...", flush=True)
            sim, kubeconfig = local_stack.start_simulator(
                state, SimulatorOptions(process_mode=True, fast=args.fast), echo=args.verbose
            )
            self.processes.append(sim)
            self.watch(sim)
            config_namespaces = local_stack.namespaces_to_prepare(args.config)
            for namespace in local_stack.ensure_namespaces(kubeconfig, config_namespaces):
                print(f"created namespace {namespace!r} in the simulator", flush=True)
        else:
            kubeconfig = args.kubeconfig.resolve()
            print(f"using the cluster of {kubeconfig}", flush=True)
        env["KUBECONFIG"] = str(kubeconfig)
        if args.operator:
            print("installing the CRDs and the default NotebookTemplate ...", flush=True)
            local_stack.install_operator_mode(kubeconfig)
            for identity in ("operator-a", "operator-b"):
                print(f"starting {identity} ...", flush=True)
                operator = local_stack.start_operator(
                    state, kubeconfig, identity, echo=args.verbose)
                # Not watched: a replica that dies is what the other one is there for.
                self.processes.append(operator)

        print("starting configurable-http-proxy ...", flush=True)
        proxy, endpoints = local_stack.start_proxy(state, public_port=args.port, echo=args.verbose)
        self.processes.append(proxy)
        self.watch(proxy)

        print("starting JupyterHub ...", flush=True)
        config = local_stack.write_hub_config(
            state, args.config.resolve(), endpoints, hub_port=local_stack.free_port()
        )
        hub = local_stack.start_hub(state, config, env=env, echo=True)
        self.processes.append(hub)
        self.watch(hub)
        password = os.environ.get("DEMO_PASSWORD", "demo")
        return (
            "\n"
            f"  JupyterHub is running at {endpoints.public_url}/\n"
            f"  Log in with any user name and the password: {password}\n"
            f"  Logs and state: {state}\n"
            "  Press Ctrl-C to stop everything.\n"
        )

    def stop(self) -> None:
        """Hub first (it stops the servers through the spawner), simulator last."""
        for proc in reversed(self.processes):
            if proc.running():
                print(f"stopping {proc.name} ...", flush=True)
            proc.stop(timeout=30 if proc.name == "hub" else 15)
        self.processes.clear()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    demo = Demo(args)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        demo.request_stop(f"received {signal.Signals(signum).name}")
        if demo.starting:
            # Abandon a start that is waiting for a program to be ready; `finally` cleans up.
            raise StopRequested(demo.reason)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            banner = demo.start()
            demo.starting = False
        except (ProcessFailed, FileNotFoundError) as exc:
            print(f"demo failed to start: {exc}", file=sys.stderr, flush=True)
            return 1
        except StopRequested:
            print(f"\nstopped while starting: {demo.reason}", flush=True)
            return 0
        print(banner, flush=True)
        if not demo.finished.is_set():
            demo.finished.wait()
        print(f"\nshutting down: {demo.reason}", flush=True)
        return 0 if demo.reason.startswith("received") else 1
    finally:
        demo.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
