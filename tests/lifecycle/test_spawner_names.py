"""Names decided before start() are the names start() uses, as upstream KubeSpawner does.

Upstream's names are plain attributes: whatever a ``pre_spawn_hook`` or a profile's
``kubespawner_override`` assigns to ``spawner.pod_name`` / ``spawner.pvc_name`` is what
its start creates. These tests replay JupyterHub's order for a spawn (``clear_state()``,
the profile, ``pre_spawn_hook``, ``start()``) against the simulator.
"""

from __future__ import annotations

from typing import Any

from async_kubespawner import KubeSpawner

from .conftest import NAMESPACE, store_pods

STORAGE = {"storage_pvc_ensure": True, "storage_capacity": "1Gi"}
HOME = {
    "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}],
    "volume_mounts": [{"name": "home", "mountPath": "/home/jovyan"}],
}


def pvc_names(sim: Any) -> list[str]:
    items, _ = sim.store.list(sim.store.resource("persistentvolumeclaims"), NAMESPACE)
    return sorted(p["metadata"]["name"] for p in items)


def claim_of(pod: dict[str, Any]) -> str:
    [volume] = [v for v in pod["spec"]["volumes"] if v["name"] == "home"]
    return str(volume["persistentVolumeClaim"]["claimName"])


async def spawn_like_jupyterhub(spawner: KubeSpawner, user_options: dict[str, Any]) -> str:
    """JupyterHub's User.spawn, in the part that matters here."""
    spawner.user_options = user_options
    spawner.clear_state()
    await spawner.apply_group_overrides()
    await spawner.run_pre_spawn_hook()
    return await spawner.start()


async def test_names_a_pre_spawn_hook_sets_are_used(sim, make_spawner):
    def hook(spawner: KubeSpawner) -> None:
        spawner.pod_name = f"nb-{spawner.user.name}-custom"
        spawner.pvc_name = f"home-{spawner.user.name}-custom"

    spawner = make_spawner(pre_spawn_hook=hook, **STORAGE, **HOME)
    url = await spawn_like_jupyterhub(spawner, {})
    [pod] = store_pods(sim)
    assert pod["metadata"]["name"] == "nb-alice-custom"
    assert claim_of(pod) == "home-alice-custom"
    assert pvc_names(sim) == ["home-alice-custom"]
    assert url.startswith("http://10.")
    state = spawner.get_state()
    assert state["pod_name"] == "nb-alice-custom"
    assert state["dns_name"].startswith("nb-alice-custom.")
    # a name assigned for a spawn is not made the server's remembered volume
    assert "pvc_name" not in state
    await spawner.stop()
    assert store_pods(sim) == []


async def test_a_hook_name_is_for_one_spawn_but_a_remembered_pvc_stays(sim, make_spawner):
    """After the stop the pod name comes from the template again (JupyterHub clears the
    state; the hook did not run yet); the PVC the server used stays remembered."""
    calls = 0

    def hook(spawner: KubeSpawner) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            spawner.pod_name = "first-pod"

    spawner = make_spawner(pre_spawn_hook=hook, **STORAGE)
    await spawn_like_jupyterhub(spawner, {})
    assert [p["metadata"]["name"] for p in store_pods(sim)] == ["first-pod"]
    await spawner.stop()
    await spawn_like_jupyterhub(spawner, {})
    assert [p["metadata"]["name"] for p in store_pods(sim)] == ["jupyter-alice"]
    assert spawner.get_state()["pvc_name"] == "claim-alice"
    await spawner.stop()


PROFILES = [
    {"display_name": "Personal", "slug": "personal", "default": True},
    {
        "display_name": "Course volume",
        "slug": "course",
        "kubespawner_override": {"pvc_name": "course-data"},
    },
    {
        "display_name": "Renamed volumes",
        "slug": "renamed",
        "kubespawner_override": {"pvc_name_template": "vol-{username}"},
    },
]


async def test_kubespawner_override_of_pvc_name(sim, make_spawner):
    spawner = make_spawner(profile_list=PROFILES, **STORAGE, **HOME)
    await spawn_like_jupyterhub(spawner, {"profile": "course"})
    [pod] = store_pods(sim)
    assert claim_of(pod) == "course-data"
    assert pvc_names(sim) == ["course-data"]
    await spawner.stop()


async def test_an_override_never_moves_an_existing_user_to_another_volume(sim, make_spawner):
    """The PVC remembered in the server's state stays the user's volume: a profile
    naming another volume uses it for that spawn only, and a profile changing the
    template changes nothing for a user who already has one."""
    spawner = make_spawner(profile_list=PROFILES, **STORAGE, **HOME)
    await spawn_like_jupyterhub(spawner, {"profile": "personal"})
    assert spawner.get_state()["pvc_name"] == "claim-alice"
    await spawner.stop()

    await spawn_like_jupyterhub(spawner, {"profile": "course"})
    assert claim_of(store_pods(sim)[0]) == "course-data"
    assert spawner.get_state()["pvc_name"] == "claim-alice"
    await spawner.stop()

    # a new spawner (a hub restart) loading that state, choosing the renamed template
    restarted = make_spawner(profile_list=PROFILES, **STORAGE, **HOME)
    restarted.load_state(spawner.get_state())
    await spawn_like_jupyterhub(restarted, {"profile": "renamed"})
    assert claim_of(store_pods(sim)[0]) == "claim-alice"
    assert pvc_names(sim) == ["claim-alice", "course-data"]
    await restarted.stop()


async def test_a_new_user_gets_an_overridden_template(sim, make_spawner):
    """Nothing remembered yet: a profile's pvc_name_template names the first volume."""
    spawner = make_spawner(profile_list=PROFILES, **STORAGE, **HOME)
    await spawn_like_jupyterhub(spawner, {"profile": "renamed"})
    assert pvc_names(sim) == ["vol-alice"]
    assert spawner.get_state()["pvc_name"] == "vol-alice"
    await spawner.stop()


async def test_a_volume_chosen_for_one_spawn_does_not_leak_into_the_next(sim, make_spawner):
    spawner = make_spawner(profile_list=PROFILES, **STORAGE, **HOME)
    await spawn_like_jupyterhub(spawner, {"profile": "course"})
    assert claim_of(store_pods(sim)[0]) == "course-data"
    await spawner.stop()
    await spawn_like_jupyterhub(spawner, {"profile": "personal"})
    assert claim_of(store_pods(sim)[0]) == "claim-alice"
    await spawner.stop()
