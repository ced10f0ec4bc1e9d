"""One invalid setting fails the spawns that use it, before anything is created, and
nothing else: servers already running stay pollable and stoppable, and a profile that
sets a valid value spawns."""

from __future__ import annotations

import pytest

from async_kubespawner.traits import SpawnerConfigError

from .conftest import store_pods

BAD_POD_CONFIG = {"extra_pod_config": {"hostNetwrk": True}}
PROFILES = [
    {"display_name": "Plain", "slug": "plain"},
    {
        "display_name": "Fixed",
        "slug": "fixed",
        "kubespawner_override": {"extra_pod_config": {"hostNetwork": False}},
    },
]


async def test_invalid_setting_spares_running_servers_and_creates_nothing(sim, make_spawner):
    storage = {"storage_pvc_ensure": True, "storage_capacity": "1Gi"}
    running = make_spawner("alice", **storage)
    await running.start()
    state = running.get_state()
    [pod] = store_pods(sim)

    # The hub restarts with a typo in its configuration.
    config = {**storage, "profile_list": PROFILES, **BAD_POD_CONFIG}
    restored = make_spawner("alice", **config)
    restored.load_state(state)
    assert await restored.poll() is None  # still known to run

    sim.counters.reset()
    fresh = make_spawner("bob", **config)
    fresh.user_options = {"profile": "plain"}
    with pytest.raises(SpawnerConfigError, match=r"c\.KubeSpawner\.extra_pod_config.*hostNetwrk"):
        await fresh.start()
    assert sim.counters.count(verb="create") == 0  # no PVC, no pod

    fixed = make_spawner("carol", **config)
    fixed.user_options = {"profile": "fixed"}
    await fixed.start()
    assert {p["metadata"]["name"] for p in store_pods(sim)} == {
        pod["metadata"]["name"],
        fixed.pod_name,
    }

    await restored.stop()
    await fixed.stop()
    assert store_pods(sim) == []
