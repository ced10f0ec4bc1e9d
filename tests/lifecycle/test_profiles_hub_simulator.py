"""A real JupyterHub running the real KubeSpawner against the simulator: a refused choice
or a failing profile is answered at once, and nothing is created in Kubernetes.

(A successful spawn with a chosen profile, through the browser to a running pod, is in
the end-to-end suite.)
"""

import json
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from jupyterhub import orm
from jupyterhub.tests.mocking import MockHub
from jupyterhub.utils import random_port
from kubesim.testing import Simulator
from tornado import web
from traitlets.config import Config

from async_kubespawner import KubeSpawner
from async_kubespawner.kube.client import close_shared_apis
from async_kubespawner.kube.reflector import stop_reflectors
from tests.unit.profiles_support import InMemoryProxy, spawn_body, stop_mock_hub


def broken(spawner: Any) -> str:
    raise LookupError("quota service unreachable")


async def no_quota(spawner: Any) -> str:
    raise web.HTTPError(403, "%s", "No GPU quota left for you this month")


PROFILE_LIST = [
    {"display_name": "Small", "slug": "small", "default": True},
    {
        "display_name": "GPU",
        "slug": "gpu",
        "kubespawner_override": {"image": "quay.io/jupyter/pytorch-notebook:cuda12"},
        "profile_options": {
            "size": {"choices": {"one": {"display_name": "1 GPU"}, "two": {"display_name": "2"}}}
        },
    },
    {"display_name": "Quota", "slug": "quota", "kubespawner_override": {"image": no_quota}},
    {"display_name": "Broken", "slug": "broken", "kubespawner_override": {"image": broken}},
]


@pytest.fixture
async def hub(simulator: Simulator) -> AsyncIterator[MockHub]:
    config = Config()
    config.JupyterHub.proxy_class = InMemoryProxy
    config.JupyterHub.spawner_class = KubeSpawner
    config.JupyterHub.allow_named_servers = True
    config.JupyterHub.cookie_secret = os.urandom(32)
    config.JupyterHub.bind_url = f"http://127.0.0.1:{random_port()}/"
    config.Authenticator.admin_users = {"admin"}
    config.KubeSpawner.k8s_api_host = simulator.url
    config.KubeSpawner.namespace = "default"
    config.KubeSpawner.profile_list = PROFILE_LIST
    app = MockHub.instance(config=config)
    await app.initialize([])
    await app.start()
    try:
        yield app
    finally:
        await stop_mock_hub(app)
        await stop_reflectors()
        await close_shared_apis()


async def post(app: MockHub, path: str, body: Any = None) -> tuple[int, Any]:
    admin = app.db.query(orm.User).filter_by(name="admin").one()
    headers = {"Authorization": f"token {admin.new_api_token()}"}
    async with aiohttp.ClientSession() as session:
        async with session.post(
            app.hub.url + "api/" + path,
            data=None if body is None else json.dumps(body),
            headers=headers,
        ) as r:
            text = await r.text()
            return r.status, (json.loads(text) if text else None)


def pod_creations(simulator: Simulator) -> int:
    return sum(
        count
        for (verb, resource, _status), count in simulator.counters.by_key.items()
        if verb == "create" and resource == "pods"
    )


@pytest.mark.parametrize(
    ("options", "status", "message"),
    [
        ({"profile": "gpu", "size": "three"}, 400, "allowed: 'one', 'two'"),
        ({"profile": "tpu"}, 400, "allowed: 'small', 'gpu', 'quota', 'broken'"),
        ({"profile": "quota"}, 403, "No GPU quota left for you this month"),
        ({"profile": "broken"}, 500, None),  # details in the hub log only
    ],
)
async def test_refused_or_failing_profile_creates_nothing(
    hub: MockHub,
    simulator: Simulator,
    options: dict[str, Any],
    status: int,
    message: str | None,
) -> None:
    assert (await post(hub, "users/bob"))[0] == 201
    code, reply = await post(hub, "users/bob/servers/", spawn_body(options))
    assert code == status, reply
    if message is None:  # JupyterHub's own wording of a 500 differs between 5.x and 6.x
        assert "quota service unreachable" not in reply["message"]
    else:
        assert message in reply["message"]
    assert pod_creations(simulator) == 0
    pods, _ = simulator.store.list(simulator.store.resource("pods"), "default")
    assert pods == []


async def test_failing_override_is_explained_in_the_hub_log(
    hub: MockHub, simulator: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    assert (await post(hub, "users/carol"))[0] == 201
    code, _ = await post(hub, "users/carol/servers/", spawn_body({"profile": "broken"}))
    assert code == 500
    assert (
        "profile 'broken': kubespawner_override['image'] callable raised LookupError:"
        " quota service unreachable"
    ) in caplog.text
    assert pod_creations(simulator) == 0
