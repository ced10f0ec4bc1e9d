"""A server touches only objects that provably belong to it.

Each test plays a collision that a name alone cannot resolve (legacy slugs that collide,
templates without the server name, an administrator's object named like a user's, a pod
of another hub) and checks that start, poll, stop and delete_forever never act on the
other party's object, and that the user-facing message names no other user.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from async_kubespawner.objects.identity import IDENTITY_ANNOTATION
from async_kubespawner.objects.slugs import escape_slug
from async_kubespawner.spawner import SpawnFailed
from async_kubespawner.traits import SpawnerConfigError

from .conftest import NAMESPACE, store_pods

# Two user names the legacy 'escape' scheme maps to the same slug ("-42ob").
VICTIM = "Bob"
COLLIDER = "\x042ob"


def test_the_colliding_names_collide() -> None:
    assert escape_slug(VICTIM) == escape_slug(COLLIDER)


def pods_by_name(sim: Any) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p for p in store_pods(sim)}


def store_objects(sim: Any, plural: str) -> dict[str, dict[str, Any]]:
    items, _ = sim.store.list(sim.store.resource(plural), NAMESPACE)
    return {
        o["metadata"]["name"]: o for o in items if not o["metadata"].get("deletionTimestamp")
    }


async def create_object(sim: Any, plural: str, manifest: dict[str, Any]) -> dict[str, Any]:
    return await sim.store.create(sim.store.resource(plural), NAMESPACE, manifest)


def foreign_pod(name: str, *, labels: dict[str, str], annotations: dict[str, str]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {"containers": [{"name": "x", "image": "busybox"}]},
    }


def pvc_manifest(name: str, annotations: dict[str, str] | None = None) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }


# -- pods ---------------------------------------------------------------------------------


async def test_colliding_legacy_names_never_stop_the_other_users_pod(sim, make_spawner):
    victim = make_spawner(VICTIM, slug_scheme="escape")
    await victim.start()
    [victim_pod] = store_pods(sim)
    collider = make_spawner(COLLIDER, slug_scheme="escape")
    assert collider.pod_name == victim.pod_name
    with pytest.raises(SpawnFailed) as failure:
        await collider.start()
    message = str(failure.value)
    assert "already exists" in message and VICTIM not in message
    # JupyterHub's cleanup after a failed start: poll(), then stop().
    assert await collider.poll() == 1  # not its pod: its server is not running
    await collider.stop()
    [pod] = store_pods(sim)
    assert pod["metadata"]["uid"] == victim_pod["metadata"]["uid"]
    assert not pod["metadata"].get("deletionTimestamp")
    assert await victim.poll() is None
    await victim.stop()
    assert store_pods(sim) == []


async def test_pod_of_another_hub_is_neither_replaced_nor_stopped(sim, make_spawner):
    """Same name, same user annotation, another hub's component label."""
    other = await create_object(
        sim,
        "pods",
        foreign_pod(
            "jupyter-alice",
            labels={"component": "other-hub-server"},
            annotations={"hub.jupyter.org/username": "alice"},
        ),
    )
    spawner = make_spawner()
    with pytest.raises(SpawnFailed) as failure:
        await spawner.start()
    assert "already exists" in str(failure.value)
    assert await spawner.poll() == 1
    await spawner.stop()
    [pod] = store_pods(sim)
    assert pod["metadata"]["uid"] == other["metadata"]["uid"]
    assert not pod["metadata"].get("deletionTimestamp")


async def test_pod_recording_another_hub_is_not_replaced(sim, make_spawner):
    """Same component label and user, but the owner annotation names another hub."""
    identity = {"v": 1, "hub": "elsewhere/singleuser-server", "user": "alice", "server": ""}
    other = await create_object(
        sim,
        "pods",
        foreign_pod(
            "jupyter-alice",
            labels={"component": "singleuser-server"},
            annotations={
                "hub.jupyter.org/username": "alice",
                IDENTITY_ANNOTATION: json.dumps({**identity, "scope": "server"}),
            },
        ),
    )
    spawner = make_spawner()
    reflector = await spawner._pod_reflector()
    await reflector.sink.wait_for(spawner._pod_key, lambda p: p is not None, 10)
    assert await spawner.poll() == 1  # in our cache, but not ours
    await spawner.stop()
    with pytest.raises(SpawnFailed):
        await spawner.start()
    [pod] = store_pods(sim)
    assert pod["metadata"]["uid"] == other["metadata"]["uid"]
    assert not pod["metadata"].get("deletionTimestamp")


async def test_upstream_pod_of_the_same_server_is_still_ours(sim, make_spawner):
    """A hub switching from upstream KubeSpawner: its running pods carry only upstream's
    labels and annotations, and must still be polled and stopped."""
    upstream = await create_object(
        sim,
        "pods",
        foreign_pod(
            "jupyter-alice",
            labels={"component": "singleuser-server", "hub.jupyter.org/username": "alice"},
            annotations={"hub.jupyter.org/username": "alice"},
        ),
    )
    spawner = make_spawner()
    reflector = await spawner._pod_reflector()
    await reflector.sink.wait_for(spawner._pod_key, lambda p: p is not None, 10)
    await spawner.stop(now=True)
    assert upstream["metadata"]["name"] not in pods_by_name(sim)


# -- templates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "servername", "setting"),
    [
        ({"pod_name_template": "jupyter-{username}"}, "lab", "pod_name_template"),
        ({"pod_name_template": "jupyter-pod"}, "", "pod_name_template"),
        ({"pod_name_template": "jupyter-{servername}"}, "", "pod_name_template"),
        (
            {"api_token_in_secret": True, "secret_name_template": "hub-token"},
            "",
            "secret_name_template",
        ),
        (
            {"services_enabled": True, "pod_name_template": "notebook"},
            "",
            "pod_name_template",
        ),
    ],
)
def test_templates_that_are_not_unique_per_server_are_refused(
    make_spawner, config, servername, setting
):
    with pytest.raises(SpawnerConfigError) as refused:
        make_spawner("alice", servername, **config)
    assert refused.value.setting == setting
    assert "{user_server}" in refused.value.fix


def test_named_servers_allowed_by_the_hub_need_the_server_name(sim):
    from async_kubespawner import KubeSpawner
    from async_kubespawner.testing import build_spawner, kubespawner_config

    config = kubespawner_config({"k8s_api_host": sim.url, "pod_name_template": "jupyter-{username}"})
    build_spawner(KubeSpawner, "alice", config=config)  # fine without named servers
    config.JupyterHub.allow_named_servers = True
    with pytest.raises(SpawnerConfigError, match="named servers"):
        build_spawner(KubeSpawner, "alice", config=config)


def test_templates_unique_per_server_are_accepted(make_spawner):
    make_spawner("alice", "lab", pod_name_template="jupyter-{userid}-{servername}")
    make_spawner("alice", "lab", api_token_in_secret=True, secret_name_template="{pod_name}-tok")
    # user namespaces already separate users: the server name suffices
    make_spawner(
        "alice", "lab", enable_user_namespaces=True, pod_name_template="nb-{servername}"
    )


# -- Secrets and Services -------------------------------------------------------------------


async def test_colliding_secret_names_never_hand_one_users_token_to_another(sim, make_spawner):
    config = {
        "slug_scheme": "escape",
        "pod_name_template": "jupyter-{userid}",
        "api_token_in_secret": True,
        "secret_name_template": "token-{username}",
    }
    victim = make_spawner(VICTIM, **config)
    await victim.start()
    secret = store_objects(sim, "secrets")[victim.secret_name]
    collider = make_spawner(COLLIDER, **{**config, "user_id": 8})
    assert collider.secret_name == victim.secret_name
    assert collider.pod_name != victim.pod_name
    with pytest.raises(SpawnFailed) as failure:
        await collider.start()
    assert "Secret" in str(failure.value) and VICTIM not in str(failure.value)
    kept = store_objects(sim, "secrets")[victim.secret_name]
    assert kept["metadata"]["uid"] == secret["metadata"]["uid"]
    assert kept["data"] == secret["data"]
    assert victim.pod_name in pods_by_name(sim)
    assert collider.pod_name not in pods_by_name(sim)  # cleaned up
    await collider.stop()
    assert victim.secret_name in store_objects(sim, "secrets")
    await victim.stop()


@pytest.mark.parametrize(
    ("plural", "config"),
    [("secrets", {"api_token_in_secret": True}), ("services", {"services_enabled": True})],
)
async def test_an_administrators_object_named_like_a_users_is_left_alone(
    sim, make_spawner, plural, config
):
    body: dict[str, Any] = {"apiVersion": "v1", "metadata": {"name": "jupyter-alice"}}
    if plural == "secrets":
        body |= {"kind": "Secret", "stringData": {"password": "hunter2"}}
    else:
        body |= {"kind": "Service", "spec": {"ports": [{"port": 80}]}}
    made = await create_object(sim, plural, body)
    spawner = make_spawner(**config)
    with pytest.raises(SpawnFailed) as failure:
        await spawner.start()
    assert "not this server's" in str(failure.value)
    assert store_objects(sim, plural)["jupyter-alice"]["metadata"]["uid"] == made["metadata"]["uid"]
    assert store_pods(sim) == []  # the pod it had created is cleaned up
    await spawner.stop()
    assert store_objects(sim, plural)["jupyter-alice"]["metadata"]["uid"] == made["metadata"]["uid"]


async def test_own_leftover_secret_is_replaced(sim, make_spawner):
    spawner = make_spawner(api_token_in_secret=True)
    await spawner.start()
    first = store_objects(sim, "secrets")[spawner.secret_name]["metadata"]["uid"]
    # the hub lost track of the server: the same server starts again
    again = make_spawner(api_token_in_secret=True)
    await again.start()
    second = store_objects(sim, "secrets")[spawner.secret_name]["metadata"]["uid"]
    assert second != first
    await again.stop()


# -- PVCs ---------------------------------------------------------------------------------


async def test_pvc_found_on_409_is_not_adopted_when_another_users(sim, make_spawner):
    config = {"slug_scheme": "escape", "storage_pvc_ensure": True, "storage_capacity": "1Gi", "pod_name_template": "p-{userid}"}
    victim = make_spawner(VICTIM, **config)
    await victim.start()
    [claim] = store_objects(sim, "persistentvolumeclaims").values()
    collider = make_spawner(COLLIDER, **{**config, "user_id": 8})
    assert collider.pvc_name == victim.pvc_name
    with pytest.raises(SpawnFailed) as failure:
        await collider.start()
    assert "storage volume" in str(failure.value) and VICTIM not in str(failure.value)
    assert collider.pod_name not in pods_by_name(sim)  # never mounted
    await collider.delete_forever()
    kept = store_objects(sim, "persistentvolumeclaims")[victim.pvc_name]
    assert kept["metadata"]["uid"] == claim["metadata"]["uid"]
    await victim.stop()


async def test_pvc_of_upstream_kubespawner_for_the_same_user_is_adopted(sim, make_spawner):
    """A migrating hub: upstream's claim records the user in its annotations."""
    await create_object(
        sim,
        "persistentvolumeclaims",
        pvc_manifest("claim-alice", {"hub.jupyter.org/username": "alice"}),
    )
    spawner = make_spawner(storage_pvc_ensure=True, storage_capacity="1Gi")
    await spawner.start()
    assert spawner.get_state()["pvc_name"] == "claim-alice"
    await spawner.stop()


async def test_unowned_pvc_is_adopted_only_when_configured(sim, make_spawner):
    await create_object(sim, "persistentvolumeclaims", pvc_manifest("claim-alice"))
    with pytest.raises(SpawnFailed, match="storage_adopt_unowned_pvcs"):
        await make_spawner(storage_pvc_ensure=True, storage_capacity="1Gi").start()
    assert store_pods(sim) == []
    spawner = make_spawner(storage_pvc_ensure=True, storage_capacity="1Gi", storage_adopt_unowned_pvcs=True)
    await spawner.start()
    await spawner.stop()
    await spawner.delete_forever()  # adopted, but not provably ours: kept
    assert "claim-alice" in store_objects(sim, "persistentvolumeclaims")


async def test_shared_pvc_template_mounts_the_shared_claim(sim, make_spawner):
    config = {"storage_pvc_ensure": True, "storage_capacity": "1Gi", "pvc_name_template": "shared-home"}
    first = make_spawner("alice", **config)
    await first.start()
    second = make_spawner("carol", **config)
    await second.start()
    await first.stop()
    await second.stop()
    await first.delete_forever()
    assert "shared-home" in store_objects(sim, "persistentvolumeclaims")


async def test_per_user_claim_is_shared_by_the_users_servers(sim, make_spawner):
    config = {"storage_pvc_ensure": True, "storage_capacity": "1Gi", "pvc_name_template": "home-{username}"}
    named = make_spawner("alice", "lab", **config)
    await named.start()  # creates home-alice, recording scope "user"
    default = make_spawner("alice", **config)
    await default.start()  # adopts it
    await named.stop()
    await default.stop()
    await named.delete_forever()  # a named server never deletes the user's claim
    assert "home-alice" in store_objects(sim, "persistentvolumeclaims")
    await default.delete_forever()  # the user's deletion does
    assert "home-alice" not in store_objects(sim, "persistentvolumeclaims")


# -- delete_forever -----------------------------------------------------------------------


async def test_delete_forever_keeps_a_remembered_shared_claim(sim, make_spawner):
    """A hub that moved from pvc_name_template 'shared-home' to 'claim-{username}': the
    user's state still remembers 'shared-home', which every user mounts."""
    old = make_spawner(storage_pvc_ensure=True, storage_capacity="1Gi", pvc_name_template="shared-home")
    await old.start()
    await old.stop()
    state = old.get_state()
    assert state["pvc_name"] == "shared-home"
    moved = make_spawner(pvc_name_template="claim-{username}")
    moved.load_state(state)
    await moved.delete_forever()
    assert "shared-home" in store_objects(sim, "persistentvolumeclaims")


async def test_delete_forever_keeps_a_remembered_upstream_shared_claim(sim, make_spawner):
    """The same move on a claim upstream KubeSpawner created (owner annotation of the
    first user who spawned, no scope recorded)."""
    await create_object(
        sim,
        "persistentvolumeclaims",
        pvc_manifest("shared-home", {"hub.jupyter.org/username": "alice"}),
    )
    moved = make_spawner(pvc_name_template="claim-{username}")
    moved.load_state({"pvc_name": "shared-home", "kubespawner_version": "7.1.0"})
    assert moved.pvc_name == "shared-home"
    await moved.delete_forever()
    assert "shared-home" in store_objects(sim, "persistentvolumeclaims")


async def test_delete_forever_deletes_its_own_and_upstreams_claims(sim, make_spawner):
    spawner = make_spawner(storage_pvc_ensure=True, storage_capacity="1Gi")
    await spawner.start()
    await spawner.stop()
    await create_object(
        sim,
        "persistentvolumeclaims",
        pvc_manifest(
            "claim-alice--gpu",
            {"hub.jupyter.org/username": "alice", "hub.jupyter.org/servername": "gpu"},
        ),
    )
    await spawner.delete_forever()
    await make_spawner("alice", "gpu").delete_forever()
    assert store_objects(sim, "persistentvolumeclaims") == {}


# -- hostile names, end to end ------------------------------------------------------------

HOSTILE = [
    ("Bob", ""),
    ("bob", ""),
    ("BOB", "lab"),
    (COLLIDER, ""),
    ("a--b", ""),
    ("a", "-b"),
    ("a-", "b"),
    ("é", "\x00"),
    ("用户", "服务器"),
    ("x" * 80, "y" * 80),
    ("-", "."),
    ("{username}", "{0.__class__}"),
]


async def test_hostile_names_get_their_own_objects_and_touch_nobody_elses(sim, make_spawner):
    spawners = [
        make_spawner(user, server, user_id=i, api_token_in_secret=True)
        for i, (user, server) in enumerate(HOSTILE)
    ]
    assert len({s.pod_name for s in spawners}) == len(HOSTILE)
    for spawner in spawners:
        await spawner.start()
    assert len(store_pods(sim)) == len(HOSTILE)
    assert [await s.poll() for s in spawners] == [None] * len(HOSTILE)
    for pod in store_pods(sim):
        owner = json.loads(pod["metadata"]["annotations"][IDENTITY_ANNOTATION])
        assert (owner["user"], owner["server"]) in HOSTILE
    # Each stop removes its own pod and Secret, and nobody else's.
    for done, spawner in enumerate(spawners, start=1):
        await spawner.stop(now=True)
        assert len(store_pods(sim)) == len(HOSTILE) - done
        assert spawner.secret_name not in store_objects(sim, "secrets")
        assert len(store_objects(sim, "secrets")) == len(HOSTILE) - done
