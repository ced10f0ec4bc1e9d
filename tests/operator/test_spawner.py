"""The hub side of operator mode, driven as the hub drives it, against an in-process operator."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from async_kubespawner.kube.client import SECRETS
from async_kubespawner.operator.kubeio import NOTEBOOK_SERVERS
from async_kubespawner.operator.spawner import OperatorSpawner, SpawnFailed

from .conftest import NAMESPACE, OperatorHarness, make_spawner


async def collect_progress(spawner: OperatorSpawner) -> list[str]:
    return [m["message"] async for m in spawner.progress()]


async def test_spawn_progress_poll_restart_and_stop(harness: OperatorHarness) -> None:
    await harness.start_operator()
    spawner = make_spawner(harness.sim)
    url = await spawner.start()
    assert url.startswith("http://10.") and url.endswith(":8888")
    messages = await collect_progress(spawner)
    text = "\n".join(messages)
    for expected in ("Requesting server jupyter-alice", "Creating 3 objects",
                     "Created PersistentVolumeClaim claim-alice", "is ready at http"):
        assert expected in text
    assert text.index("Creating 3 objects") < text.index("is ready at http")
    server = await harness.server("jupyter-alice")
    assert server is not None
    # the token is in the owned Secret, never in the custom resource
    assert spawner.api_token not in json.dumps(server)
    secret = await harness.api.get(SECRETS, NAMESPACE, "jupyter-alice-env")
    assert secret["metadata"]["ownerReferences"][0]["uid"] == server["metadata"]["uid"]
    assert await spawner.poll() is None
    state = spawner.get_state()
    assert state["notebook_server"] == "jupyter-alice"
    # a restarted hub knows the server from its state alone
    restarted = make_spawner(harness.sim)
    restarted.object_name = "unrelated"
    restarted.load_state(state)
    assert await restarted.poll() is None
    await restarted.stop()
    assert await harness.server("jupyter-alice") is None  # finalizer done, object gone
    assert harness.store_items("pods") == []
    assert await spawner.poll() == 1


async def test_named_servers_are_separate(harness: OperatorHarness) -> None:
    await harness.start_operator()
    default = make_spawner(harness.sim)
    work = make_spawner(harness.sim, servername="work")
    urls = await asyncio.gather(default.start(), work.start())
    assert urls[0] != urls[1]
    assert default.object_name == "jupyter-alice" and work.object_name == "jupyter-alice--work"
    pods = sorted(p["metadata"]["name"] for p in harness.store_items("pods"))
    assert pods == ["jupyter-alice", "jupyter-alice--work"]
    await work.stop()
    assert await default.poll() is None and await work.poll() == 1
    await default.stop()


async def test_profile_selects_template_variables(harness: OperatorHarness) -> None:
    await harness.start_operator()
    profiles = [
        {"display_name": "Small", "slug": "small", "default": True},
        {"display_name": "Large", "slug": "large",
         "kubespawner_override": {"variables": {"memory": "4Gi"}}},
    ]
    spawner = make_spawner(harness.sim, profile_list=profiles)
    spawner.user_options = {"profile": "large"}
    await spawner.start()
    pod = harness.store_items("pods")[0]
    assert pod["spec"]["containers"][0]["resources"]["limits"]["memory"] == "4Gi"
    form = await spawner.get_options_form()
    assert 'value="large"' in form
    await spawner.stop()


async def test_refused_variable_fails_start_with_its_name_and_leaves_nothing(
    harness: OperatorHarness,
) -> None:
    await harness.start_operator()
    spawner = make_spawner(harness.sim, variables={"memory": "64Gi"})
    with pytest.raises(SpawnFailed, match="'memory'"):
        await spawner.start()
    await harness.wait_server("jupyter-alice", lambda s: s is None)
    assert harness.store_items("pods") == []


async def test_delete_forever_follows_the_retention_policy(harness: OperatorHarness) -> None:
    await harness.start_operator()
    spawner = make_spawner(harness.sim)
    await spawner.start()
    await spawner.stop()
    pvcs = [p["metadata"]["name"] for p in harness.store_items("persistentvolumeclaims")]
    assert pvcs == ["claim-alice"]  # whenStopped: Retain
    await spawner.delete_forever()  # whenDeleted: Delete
    assert [p for p in harness.store_items("persistentvolumeclaims")
            if not p["metadata"].get("deletionTimestamp")] == []
    assert await harness.server("jupyter-alice") is None


async def test_stop_of_a_server_that_was_never_started(harness: OperatorHarness) -> None:
    await harness.start_operator()
    spawner: Any = make_spawner(harness.sim, servername="never")
    await spawner.stop()
    assert await spawner.poll() == 1
    assert await harness.api.get_or_none(NOTEBOOK_SERVERS, NAMESPACE, spawner.object_name) is None


async def test_progress_shows_what_the_operator_waits_for(cluster_factory: Any) -> None:
    from kubesim.cluster.config import ClusterConfig

    from async_kubespawner.operator.readiness import Tolerances

    sim = await cluster_factory(ClusterConfig.fast(
        image_rules=[("*/huge:*", "unschedulable")]))
    h = OperatorHarness(sim)
    await h.setup()
    try:
        await h.start_operator(tolerances=Tolerances(unschedulable=0.5))
        spawner = make_spawner(sim, variables={"image": "quay.io/jupyter/huge:1"})
        with pytest.raises(SpawnFailed, match="No node can run this server"):
            await spawner.start()
        messages = "\n".join(await collect_progress(spawner))
        # the operator's waiting condition (Normal), not only the scheduler's Warning event
        assert any("[Normal]" in line and "Insufficient cpu" in line
                   for line in messages.splitlines()), messages
    finally:
        await h.close()


def test_server_listens_on_the_pod_network_like_the_in_hub_spawner() -> None:
    from async_kubespawner.testing import build_spawner

    spawner = build_spawner(OperatorSpawner, "alice")
    assert (spawner.ip, spawner.port) == ("0.0.0.0", 8888)
    env = spawner.get_env()
    assert env["JUPYTERHUB_SERVICE_URL"].startswith("http://0.0.0.0:8888/")


@pytest.mark.parametrize(("setting", "value"), [("template", "Not A Name"),
                                                 ("namespace", "under_score")])
def test_bad_names_are_refused_at_config_load(setting: str, value: str) -> None:
    from traitlets import TraitError
    from traitlets.config import Config

    from async_kubespawner.testing import build_spawner

    config = Config()
    config.OperatorSpawner = Config({setting: value})
    with pytest.raises(TraitError, match=setting):
        build_spawner(OperatorSpawner, "alice", config=config)
