"""Run the simulator in-process: a real HTTP(S) server on a free loopback port.

Tests, benchmarks and the demo all start the simulator through ``run_simulator``, so
they exercise the same code path as a real client (``kubernetes_asyncio`` or kubectl,
over a socket) and get a kubeconfig file any tool can use.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import ssl
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import yaml
from aiohttp import web

from .app import SimulatorAPI, make_app
from .auth import Auth
from .faults import Faults, RequestCounters
from .flowcontrol import FlowControl
from .store import Store

if TYPE_CHECKING:
    from .cluster.cluster import SimCluster


class Controller(Protocol):
    """An in-process cluster component (scheduler, kubelet, PVC binder): a store client."""

    async def start(self, store: Store) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Simulator:
    """A running simulator: where it listens and the handles to script and inspect it."""

    url: str
    store: Store
    faults: Faults
    counters: RequestCounters
    kubeconfig_path: Path
    token: str | None = None
    ca_path: Path | None = None
    controllers: Sequence[Controller] = field(default_factory=tuple)
    #: authentication and RBAC: ``auth.enabled``, ``auth.add_user``, ``auth.token_for``
    auth: Auth | None = None
    #: the simulated cluster (nodes, scheduler, kubelet) when ``run_cluster`` started one
    cluster: SimCluster | None = None
    #: API Priority and Fairness (``kubesim.flowcontrol``); None when turned off
    flow_control: FlowControl | None = None

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def client_configuration(self) -> Any:
        """A ``kubernetes_asyncio`` Configuration pointing at this simulator."""
        from kubernetes_asyncio.client import Configuration

        config = Configuration(host=self.url)
        if self.token is not None:
            config.api_key = {"BearerToken": self.token}
            config.api_key_prefix = {"BearerToken": "Bearer"}
        if self.ca_path is not None:
            config.ssl_ca_cert = str(self.ca_path)
            config.verify_ssl = True
        return config

    def api_client(self) -> Any:
        """A new ``kubernetes_asyncio.client.ApiClient`` for this simulator; the caller closes it."""
        from kubernetes_asyncio.client import ApiClient

        return ApiClient(configuration=self.client_configuration())


def write_kubeconfig(
    path: Path,
    url: str,
    *,
    token: str | None = None,
    ca_path: Path | None = None,
    namespace: str = "default",
) -> Path:
    """Write a kubeconfig for ``url`` (context and user named ``sim``)."""
    cluster: dict[str, Any] = {"server": url}
    if ca_path is not None:
        cluster["certificate-authority"] = str(ca_path)
    user: dict[str, Any] = {"token": token} if token else {}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sim", "cluster": cluster}],
        "users": [{"name": "sim", "user": user}],
        "contexts": [
            {"name": "sim", "context": {"cluster": "sim", "user": "sim", "namespace": namespace}}
        ],
        "current-context": "sim",
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


def make_self_signed_cert(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate for ``host`` (IP and DNS SAN); returns (cert, key) paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "async-kubespawner-sim")])
    now = datetime.datetime.now(datetime.UTC)
    alt_names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    with contextlib.suppress(ValueError):
        alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "sim-ca.crt", directory / "sim.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


@asynccontextmanager
async def run_simulator(
    *,
    tls: bool = False,
    token: str | None = None,
    auth: bool = False,
    controllers: Sequence[Controller] = (),
    host: str = "127.0.0.1",
    port: int = 0,
    kubeconfig_path: Path | str | None = None,
    store: Store | None = None,
    flow_control: FlowControl | bool = True,
    **store_options: Any,
) -> AsyncIterator[Simulator]:
    """Serve a simulator until the block exits; ``port=0`` picks a free port.

    ``store_options`` go to ``Store`` (``history_size``, ``history_age``,
    ``bookmark_interval``, ...). ``controllers`` are started after the server listens
    and stopped before it closes, in reverse order.

    ``auth=True`` turns on authentication and RBAC (``kubesim.auth``) with a random admin
    token (``system:masters``) in the kubeconfig and on ``sim.token``; ``token=...``
    does the same with that token. Without either, every request is let through.

    ``flow_control`` (on by default, as on a real server) queues requests fairly among
    clients (``kubesim.flowcontrol``); ``False`` serves them in arrival order, and a
    :class:`~kubesim.flowcontrol.FlowControl` replaces the default configuration.
    """
    store = store if store is not None else Store(**store_options)
    faults = Faults(store)
    counters = RequestCounters()
    api = SimulatorAPI(
        store,
        faults,
        counters,
        auth=Auth(store, enabled=auth, admin_token=token),
        flow_control=flow_control,
    )
    token = api.auth.admin_token
    await api.auth.start()
    runner = web.AppRunner(
        make_app(api), handler_cancellation=True, access_log=None, shutdown_timeout=0.1
    )
    await runner.setup()
    with tempfile.TemporaryDirectory(prefix="aks-sim-") as tmp:
        workdir = Path(tmp)
        ssl_context = None
        ca_path = None
        if tls:
            ca_path, key_path = make_self_signed_cert(workdir, host)
            api.auth.ca_pem = ca_path.read_bytes()  # what token Secrets carry as ca.crt
            ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_context.load_cert_chain(ca_path, key_path)
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
        started: list[Controller] = []
        try:
            await site.start()
            server = getattr(site, "_server", None)
            sockets = getattr(server, "sockets", None) or []
            bound_port = sockets[0].getsockname()[1] if sockets else port
            scheme = "https" if tls else "http"
            url = f"{scheme}://{host}:{bound_port}"
            api.server_address = f"{host}:{bound_port}"
            kc_path = Path(kubeconfig_path) if kubeconfig_path else workdir / "kubeconfig"
            write_kubeconfig(kc_path, url, token=token, ca_path=ca_path)
            sim = Simulator(
                url,
                store,
                faults,
                counters,
                kc_path,
                token,
                ca_path,
                tuple(controllers),
                api.auth,
                flow_control=api.flow,
            )
            for controller in controllers:
                await controller.start(store)
                started.append(controller)
            yield sim
        finally:
            for controller in reversed(started):
                with contextlib.suppress(Exception):
                    await controller.stop()
            store.close_watches()
            await api.auth.stop()
            await runner.cleanup()
            await store.close()
