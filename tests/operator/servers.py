"""NotebookServer helpers shared by the operator tests: create one with its env Secret, read its phase.

Kept out of the test modules so that no test module imports another: each test module
can then be renamed, moved or run alone without breaking its neighbours.
"""

from __future__ import annotations

from typing import Any

from async_kubespawner.kube.client import SECRETS
from async_kubespawner.operator.kubeio import NOTEBOOK_SERVERS

from .conftest import NAMESPACE, OperatorHarness, notebook_server


def phase(obj: dict[str, Any] | None) -> str | None:
    """The server's ``status.phase``, or None while it has no status."""
    return ((obj or {}).get("status") or {}).get("phase")


async def create_server(h: OperatorHarness, name: str = "alice", **kwargs: Any) -> dict[str, Any]:
    """Create a NotebookServer and the env Secret it references, owned by the server as the hub does."""
    body = notebook_server(name, **kwargs)
    body["spec"]["envSecretRef"] = {"name": f"{name}-env"}
    created = await h.api.create(NOTEBOOK_SERVERS, NAMESPACE, body)
    await h.api.create(SECRETS, NAMESPACE, {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": f"{name}-env", "ownerReferences": [{
            "apiVersion": created["apiVersion"], "kind": "NotebookServer", "name": name,
            "uid": created["metadata"]["uid"]}]},
        "stringData": {"JUPYTERHUB_API_TOKEN": "t0ken"},
    })
    return created
