"""A profile's ``namespace`` wins over ``enable_user_namespaces``, as upstream: the pod
runs in the profile's namespace, which is created like a user namespace would be."""

from __future__ import annotations

PROFILES = [
    {"display_name": "Team", "slug": "team", "kubespawner_override": {"namespace": "team-x"}},
    {"display_name": "Own", "slug": "own"},
]


def pods_in(sim, namespace: str) -> list[str]:
    items, _ = sim.store.list(sim.store.resource("pods"), namespace)
    return [p["metadata"]["name"] for p in items]


async def test_profile_namespace_with_user_namespaces(sim, make_spawner):
    spawner = make_spawner("alice", enable_user_namespaces=True, profile_list=PROFILES)
    spawner.user_options = {"profile": "team"}
    await spawner.start()
    assert spawner.namespace == "team-x"
    assert pods_in(sim, "team-x") == [spawner.pod_name]
    assert spawner.get_state()["namespace"] == "team-x"
    await spawner.stop()
    assert pods_in(sim, "team-x") == []

    spawner.clear_state()
    spawner.user_options = {"profile": "own"}
    await spawner.start()
    assert spawner.namespace == "user-alice"
    assert pods_in(sim, "user-alice") == [spawner.pod_name]
    await spawner.stop()
