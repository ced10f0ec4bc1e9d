"""End to end against the simulated cluster: the real scheduler, kubelet and PVC binder write
the statuses and events (no test-side kubelet), on the fast clock."""

import asyncio

import pytest

from async_kubespawner.spawner import SpawnFailed

from .conftest import NAMESPACE, store_pods

SCENARIO = "sim.async-kubespawner/scenario"


def scenario(name: str) -> dict:
    return {"extra_annotations": {SCENARIO: name}, "start_timeout": 120}


async def test_spawn_progress_stop_on_the_cluster(cluster, make_cluster_spawner):
    spawner = make_cluster_spawner()
    url = await spawner.start()
    [pod] = store_pods(cluster)
    assert url == f"http://{pod['status']['podIP']}:8888"
    uid = pod["metadata"]["uid"]
    assert all(
        m["raw_event"]["involvedObject"]["uid"] == uid for m in spawner.progress_log.messages
    )
    # The cluster's events reach the event index (on the fast clock they may trail "ready").
    index = (await spawner._event_reflector()).sink
    heard = asyncio.Event()
    index.listen(NAMESPACE, spawner.pod_name, lambda e: heard.set())
    if not index.for_object(NAMESPACE, spawner.pod_name, uid=uid):
        async with asyncio.timeout(10):
            await heard.wait()
    reasons = {e["reason"] for e in index.for_object(NAMESPACE, spawner.pod_name, uid=uid)}
    assert reasons & {"Scheduled", "Pulling", "Pulled", "Created", "Started"}
    assert await spawner.poll() is None
    await spawner.stop()
    assert store_pods(cluster) == []
    assert await spawner.poll() == 1


async def test_pvc_is_bound_by_the_cluster(cluster, make_cluster_spawner):
    spawner = make_cluster_spawner(storage_pvc_ensure=True, storage_capacity="1Gi")
    await spawner.start()
    pvcs = cluster.store.list(cluster.store.resource("persistentvolumeclaims"), NAMESPACE)[0]
    assert [p["metadata"]["name"] for p in pvcs] == ["claim-alice"]
    await spawner.stop()


@pytest.mark.parametrize(
    "preset,fragments",
    [
        ("image-pull-failure", ["cannot be pulled"]),
        # Exits before it is ready: reported as exited (or crash-looping) with its code.
        ("crash,ready-after=5,exit-after=0.2,exit-code=3", ["code 3"]),
        ("oom,ready-after=5,oom-after=0.2", ["OOMKilled"]),
        ("unschedulable", ["No node can run this server"]),
    ],
)
async def test_failures_reported_by_the_cluster(cluster, make_cluster_spawner, preset, fragments):
    spawner = make_cluster_spawner(unschedulable_tolerance=0.5, **scenario(preset))
    with pytest.raises(SpawnFailed) as info:
        await spawner.start()
    for fragment in fragments:
        assert fragment in str(info.value)
    assert store_pods(cluster) == []


async def test_too_big_for_any_node(cluster, make_cluster_spawner):
    spawner = make_cluster_spawner(
        mem_guarantee="1T", unschedulable_tolerance=0.5, start_timeout=120
    )
    with pytest.raises(SpawnFailed, match=r"No node can run this server.*Insufficient memory"):
        await spawner.start()


async def test_graceful_stop_of_a_slow_terminating_server(cluster, make_cluster_spawner):
    spawner = make_cluster_spawner(delete_grace_period=1, **scenario("slow-termination"))
    await spawner.start()
    await spawner.stop()  # the kubelet kills it after the grace period; stop() sees it gone
    assert store_pods(cluster) == []
