"""Shared by the tests that run a real JupyterHub (MockHub) with the real KubeSpawner
against the simulator: its configuration, its start and clean stop, and an admin's REST call.

Those tests differ only in their profile list and a few hub settings; keeping the set-up
here means a change to how a MockHub is started or torn down (the shared API clients and
reflectors outlive the app) is made once.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from jupyterhub import orm
from jupyterhub.tests.mocking import MockHub
from jupyterhub.utils import random_port
from kubesim.testing import Simulator
from traitlets.config import Config

from async_kubespawner import KubeSpawner
from async_kubespawner.kube.client import close_shared_apis
from async_kubespawner.kube.reflector import stop_reflectors
from tests.unit.profiles_support import InMemoryProxy, stop_mock_hub


def hub_config(simulator: Simulator, profile_list: list[dict[str, Any]]) -> Config:
    """A hub with named servers, an ``admin`` user, and KubeSpawner on the simulator."""
    config = Config()
    config.JupyterHub.proxy_class = InMemoryProxy
    config.JupyterHub.spawner_class = KubeSpawner
    config.JupyterHub.allow_named_servers = True
    config.JupyterHub.cookie_secret = os.urandom(32)  # else a secret file lands in the cwd
    config.JupyterHub.bind_url = f"http://127.0.0.1:{random_port()}/"
    config.Authenticator.admin_users = {"admin"}
    config.KubeSpawner.k8s_api_host = simulator.url
    config.KubeSpawner.namespace = "default"
    config.KubeSpawner.profile_list = profile_list
    return config


@asynccontextmanager
async def running_hub(config: Config) -> AsyncIterator[MockHub]:
    """Start a MockHub with ``config``; afterwards stop it and the process-wide clients."""
    app = MockHub.instance(config=config)
    await app.initialize([])
    await app.start()
    try:
        yield app
    finally:
        await stop_mock_hub(app)
        await stop_reflectors()
        await close_shared_apis()


async def admin_post(app: MockHub, path: str, body: Any = None) -> tuple[int, str]:
    """POST to the hub's REST API (``path`` below ``api/``) as ``admin``: status and text."""
    admin = app.db.query(orm.User).filter_by(name="admin").one()
    headers = {"Authorization": f"token {admin.new_api_token()}"}
    async with aiohttp.ClientSession() as session:
        async with session.post(
            app.hub.url + "api/" + path,
            data=None if body is None else json.dumps(body),
            headers=headers,
        ) as reply:
            return reply.status, await reply.text()
