"""Test helpers for identities: a client for any ServiceAccount with any RBAC applied.

``sa_client`` (a pytest fixture, registered by kubesim's plugin) makes the account, its
namespace and the RBAC you give it, then hands back a kubeconfig and a
``kubernetes_asyncio`` ApiClient that authenticate as that account — so a test asserts
that an identity can do exactly what it needs, and is refused (403) everything else::

    async def test_hub_cannot_read_secrets(sa_client):
        hub = await sa_client("jhub", "hub", [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
        ])
        core = CoreV1Api(hub.api_client)
        await core.list_namespaced_pod("jhub")                  # allowed
        with pytest.raises(ApiException) as refused:
            await core.list_namespaced_secret("jhub")
        assert refused.value.status == 403

``rbac`` is a list of PolicyRules (granted by a Role and RoleBinding named after the
account), or Kubernetes objects — a YAML text with one or more documents, or a list of
dicts — created as they are (Role, ClusterRole, RoleBinding, ClusterRoleBinding, and
the ServiceAccount itself if you include it). ``cluster_rules`` grants rules through a
ClusterRole and ClusterRoleBinding. By default it runs against a fresh simulator with
authentication on, made at the first call and shared by the test's later calls
(``client.simulator``); pass ``sim=`` to use another one, started with ``auth=True``
(``auth_simulator``, or ``cluster_factory(config, auth=True)`` for a whole cluster).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest_asyncio
import yaml

from ..errors import StatusError
from ..testing import Simulator, run_simulator, write_kubeconfig
from .resources import RBAC_GROUP
from .users import SA_PREFIX


@dataclass
class ServiceAccountClient:
    """How a test talks to the simulator as one ServiceAccount."""

    namespace: str
    name: str
    token: str
    kubeconfig_path: Path
    api_client: Any  # kubernetes_asyncio.client.ApiClient, closed after the test
    simulator: Simulator

    @property
    def username(self) -> str:
        return f"{SA_PREFIX}{self.namespace}:{self.name}"

    def client_configuration(self) -> Any:
        """A new ``kubernetes_asyncio`` Configuration with this account's token."""
        config = self.simulator.client_configuration()
        config.api_key = {"BearerToken": self.token}
        config.api_key_prefix = {"BearerToken": "Bearer"}
        return config


def _objects(rbac: str | Sequence[Any]) -> list[dict[str, Any]]:
    if isinstance(rbac, str):
        return [d for d in yaml.safe_load_all(rbac) if isinstance(d, dict)]
    return [dict(o) for o in rbac if isinstance(o, dict)]


async def ensure(sim: Simulator, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    """Create ``obj`` in the simulator's store unless an object of that name exists."""
    store = sim.store
    rt = store.registry.by_kind(obj.get("kind", ""), obj.get("apiVersion", ""))
    if rt is None:
        raise ValueError(f"not a kind the simulator serves: {obj.get('apiVersion')}/{obj.get('kind')}")
    meta = obj.get("metadata") or {}
    ns = (meta.get("namespace") or namespace) if rt.namespaced else None
    try:
        return store.get_ref(rt, ns, meta.get("name", ""))
    except StatusError:
        return await store.create(rt, ns, obj)


async def grant(
    sim: Simulator,
    namespace: str,
    name: str,
    rbac: str | Sequence[Any] = (),
    *,
    cluster_rules: Sequence[dict[str, Any]] = (),
) -> None:
    """Make namespace, ServiceAccount and the RBAC of ``rbac``/``cluster_rules`` exist."""
    await ensure(sim, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    docs = _objects(rbac)
    rules = [d for d in docs if "kind" not in d]
    objects = [d for d in docs if "kind" in d]
    for obj in objects:  # an account listed in the objects is created first, as given
        if obj["kind"] == "Namespace":
            await ensure(sim, obj)
    for obj in objects:
        if obj["kind"] == "ServiceAccount":
            await ensure(sim, obj, namespace)
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}}
    await ensure(sim, account)
    for obj in objects:
        if obj["kind"] not in ("Namespace", "ServiceAccount"):
            await ensure(sim, obj, namespace)
    subject = [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]
    if rules:
        await ensure(
            sim,
            {
                "apiVersion": f"{RBAC_GROUP}/v1",
                "kind": "Role",
                "metadata": {"name": f"{name}-test-rules", "namespace": namespace},
                "rules": rules,
            },
        )
        await ensure(
            sim,
            {
                "apiVersion": f"{RBAC_GROUP}/v1",
                "kind": "RoleBinding",
                "metadata": {"name": f"{name}-test-rules", "namespace": namespace},
                "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": f"{name}-test-rules"},
                "subjects": subject,
            },
        )
    if cluster_rules:
        cluster_name = f"{namespace}:{name}:test-rules"
        await ensure(
            sim,
            {
                "apiVersion": f"{RBAC_GROUP}/v1",
                "kind": "ClusterRole",
                "metadata": {"name": cluster_name},
                "rules": list(cluster_rules),
            },
        )
        await ensure(
            sim,
            {
                "apiVersion": f"{RBAC_GROUP}/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": cluster_name},
                "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": cluster_name},
                "subjects": subject,
            },
        )


SaClientFactory = Callable[..., Awaitable[ServiceAccountClient]]


@pytest_asyncio.fixture
async def auth_simulator() -> AsyncIterator[Simulator]:
    """A running API simulator with authentication and RBAC on; its kubeconfig and
    ``api_client()`` carry the admin token (``system:masters``)."""
    async with run_simulator(auth=True) as sim:
        yield sim


@pytest_asyncio.fixture
async def sa_client() -> AsyncIterator[SaClientFactory]:
    """``await sa_client(namespace, name, rbac, cluster_rules=(), sim=None)`` →
    :class:`ServiceAccountClient` (see the module docstring)."""
    clients: list[Any] = []
    async with contextlib.AsyncExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kubesim-sa-")))
        own: list[Simulator] = []  # the simulator made when a test passes none

        async def make(
            namespace: str,
            name: str,
            rbac: str | Sequence[Any] = (),
            *,
            cluster_rules: Sequence[dict[str, Any]] = (),
            sim: Simulator | None = None,
        ) -> ServiceAccountClient:
            if sim is None:
                if not own:
                    own.append(await stack.enter_async_context(run_simulator(auth=True)))
                sim = own[0]
            if sim.auth is None or not sim.auth.enabled:
                raise ValueError(
                    "sa_client needs a simulator with authentication on (run_simulator(auth=True))"
                )
            await grant(sim, namespace, name, rbac, cluster_rules=cluster_rules)
            token = sim.auth.token_for(namespace, name)
            path = write_kubeconfig(
                tmp / f"{namespace}.{name}.kubeconfig",
                sim.url,
                token=token,
                ca_path=sim.ca_path,
                namespace=namespace,
            )
            from kubernetes_asyncio.client import ApiClient

            made = ServiceAccountClient(namespace, name, token, path, None, sim)
            made.api_client = ApiClient(configuration=made.client_configuration())
            clients.append(made.api_client)
            return made

        try:
            yield make
        finally:
            for client in clients:
                with contextlib.suppress(Exception):
                    await client.close()
