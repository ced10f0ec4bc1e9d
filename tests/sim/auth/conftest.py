"""Helpers for the authentication and RBAC tests: raw HTTP calls with a bearer token."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from kubesim.auth.testing import grant
from kubesim.testing import Simulator

RBAC = "rbac.authorization.k8s.io/v1"


class Caller:
    """Raw requests to a simulator as the holder of ``token`` (exact bodies, no client)."""

    def __init__(self, sim: Simulator, http: aiohttp.ClientSession, token: str | None) -> None:
        self.sim, self.http, self.token = sim, http, token

    async def __call__(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        sent = dict(headers or {})
        if self.token is not None:
            sent["Authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body)
        if data is not None:
            sent.setdefault(
                "Content-Type",
                "application/merge-patch+json" if method == "PATCH" else "application/json",
            )
        async with self.http.request(method, self.sim.url + path, data=data, headers=sent) as resp:
            text = await resp.text()
            try:
                return resp.status, json.loads(text)
            except ValueError:
                return resp.status, text

    def as_token(self, token: str | None) -> Caller:
        return Caller(self.sim, self.http, token)


@pytest.fixture
async def http() -> Any:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def admin(auth_simulator: Simulator, http: aiohttp.ClientSession) -> Caller:
    return Caller(auth_simulator, http, auth_simulator.token)


async def account(sim: Simulator, namespace: str, name: str, rules: Any = (), **kw: Any) -> str:
    """A ServiceAccount with ``rules`` granted, and a token for it."""
    await grant(sim, namespace, name, rules, **kw)
    assert sim.auth is not None
    return sim.auth.token_for(namespace, name)


def role(namespace: str, name: str, rules: list[dict[str, Any]], kind: str = "Role") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if kind == "Role":
        meta["namespace"] = namespace
    return {"apiVersion": RBAC, "kind": kind, "metadata": meta, "rules": rules}


def binding(
    namespace: str | None,
    name: str,
    role_kind: str,
    role_name: str,
    subjects: list[dict[str, Any]],
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {
        "apiVersion": RBAC,
        "kind": "RoleBinding" if namespace else "ClusterRoleBinding",
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
        "subjects": subjects,
    }
