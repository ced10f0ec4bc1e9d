"""A real JupyterHub running the real KubeSpawner against the simulator: a refused choice
or a failing profile is answered at once, and nothing is created in Kubernetes.

(A successful spawn with a chosen profile, through the browser to a running pod, is in
the end-to-end suite.)
"""

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from jupyterhub.tests.mocking import MockHub
from kubesim.testing import Simulator
from tornado import web

from tests.lifecycle.hub_on_simulator import admin_post, hub_config, running_hub
from tests.unit.profiles_support import spawn_body


def broken(spawner: Any) -> str:
    raise LookupError("quota service unreachable")


async def no_quota(spawner: Any) -> str:
    raise web.HTTPError(403, "%s", "No GPU quota left for you this month")


PROFILE_LIST: list[dict[str, Any]] = [
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
    async with running_hub(hub_config(simulator, PROFILE_LIST)) as app:
        yield app


async def post(app: MockHub, path: str, body: Any = None) -> tuple[int, Any]:
    status, text = await admin_post(app, path, body)
    return status, (json.loads(text) if text else None)


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
