"""Fuzzing ``user_options``: whatever a client sends, the hub answers, and a refusal
creates nothing.

Three doors, one gate: the REST API (arbitrary JSON bodies through a real JupyterHub
app against the Kubernetes API simulator), the spawn form (arbitrary form fields) and
``load_user_options`` itself. A refusal is always a 400 and leaves the spawner's
settings untouched; whatever the form accepts, loading accepts too.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from jupyterhub.tests.mocking import MockHub
from kubesim.testing import Simulator
from tornado import web

from async_kubespawner import KubeSpawner
from tests.lifecycle.hub_on_simulator import admin_post, hub_config, running_hub
from tests.unit.profiles_support import spawn_body
from tests.unit.spawner_fakes import make_spawner

PROFILE_LIST: list[dict[str, Any]] = [
    {"display_name": "Small", "slug": "small", "default": True},
    {
        "display_name": "GPU",
        "slug": "gpu",
        "kubespawner_override": {"image": "quay.io/jupyter/pytorch-notebook:cuda12"},
        "profile_options": {
            "size": {"choices": {"one": {}, "two": {"kubespawner_override": {"cpu_limit": 2}}}},
            "image": {
                "choices": {"base": {}},
                "unlisted_choice": {
                    "enabled": True,
                    "validation_regex": r"^quay\.io/[a-z/-]+:[\w.-]+$",
                    "kubespawner_override": {
                        "image": "{value}",
                        "environment": {"IMAGE": "{value}"},
                    },
                },
            },
        },
    },
]

SETTINGS_SEEN = ("image", "cpu_limit", "environment", "namespace", "pod_name")

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(
        ["small", "gpu", "one", "two", "base", "unlisted-choice", "unlisted_choice", "", "{value}"]
    )
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
option_values = scalars | json_values
known = st.fixed_dictionaries(
    {},
    optional={
        "profile": option_values,
        "size": option_values,
        "image": option_values,
        "image--unlisted-choice": option_values,
        "size--unlisted-choice": option_values,
        "user_options": json_values,
    },
)
user_options = st.builds(
    lambda a, b: {**b, **a}, known, st.dictionaries(st.text(max_size=20), json_values, max_size=3)
)


def snapshot(spawner: KubeSpawner) -> dict[str, Any]:
    return {name: copy.deepcopy(getattr(spawner, name)) for name in SETTINGS_SEEN}


@settings(max_examples=300, deadline=None)
@given(options=user_options)
async def test_load_user_options_accepts_or_refuses_with_a_400_and_no_change(
    options: dict[str, Any],
) -> None:
    spawner = make_spawner("alice", "fuzz", config={"profile_list": PROFILE_LIST})
    before = snapshot(spawner)
    spawner.user_options = options
    try:
        await spawner.load_user_options()
    except web.HTTPError as exc:
        assert exc.status_code == 400
        assert snapshot(spawner) == before
        assert spawner.profile_selection is None
    else:
        assert spawner.profile_selection is not None
        assert spawner.profile_selection["profile"] in ("small", "gpu")


form_keys = st.sampled_from(
    [
        "profile",
        "profile-option-gpu--size",
        "profile-option-gpu--image",
        "profile-option-gpu--image--unlisted-choice",
        "profile-option-small--size",
    ]
) | st.text(max_size=30)
form_values = st.lists(
    st.sampled_from(["gpu", "small", "one", "two", "base", "unlisted-choice", "", "quay.io/a:1"])
    | st.text(max_size=30),
    min_size=0,
    max_size=3,
)


@settings(max_examples=300, deadline=None)
@given(form=st.dictionaries(form_keys, form_values, max_size=6))
async def test_whatever_the_form_accepts_loads(form: dict[str, list[str]]) -> None:
    spawner = make_spawner("alice", "fuzz", config={"profile_list": PROFILE_LIST})
    try:
        options = spawner.options_from_form(form)
    except web.HTTPError as exc:
        assert exc.status_code == 400
        return
    assert isinstance(options, dict)
    json.dumps(options)  # JupyterHub stores it in its database as JSON
    spawner.user_options = options
    await spawner.load_user_options()  # no refusal: the form already validated it


@pytest.fixture
async def hub(simulator: Simulator) -> AsyncIterator[MockHub]:
    config = hub_config(simulator, PROFILE_LIST)
    config.JupyterHub.named_server_limit_per_user = 0
    # Accepted spawns answer 202 after a second; a refusal (no API call, only checks)
    # is a 400 well within it.
    config.JupyterHub.tornado_settings = {"slow_spawn_timeout": 1}
    async with running_hub(config) as app:
        yield app


def creations(simulator: Simulator) -> int:
    return sum(
        count
        for (verb, _resource, _status), count in simulator.counters.by_key.items()
        if verb == "create"
    )


_servers = itertools.count()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(options=user_options)
async def test_rest_api_never_crashes_and_refusals_create_nothing(
    hub: MockHub, simulator: Simulator, options: dict[str, Any]
) -> None:
    before = creations(simulator)
    server = f"fuzz{next(_servers)}"
    status, body = await admin_post(hub, f"users/admin/servers/{server}", spawn_body(options))
    event(f"status {status}")
    assert status in (201, 202, 400), body
    if status == 400:
        assert creations(simulator) == before  # refused before anything was created
        assert "Invalid user option" in json.loads(body)["message"]
