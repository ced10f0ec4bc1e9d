"""Spawns through API trouble: error bursts, slow requests, outages, 410s, load, and a clean
shutdown with nothing left running."""

import asyncio
import gc
import warnings

from async_kubespawner.kube.reflector import reflectors
from async_kubespawner.spawner import close_shared_resources, reflector_health

from .conftest import store_pods


async def test_500_503_429_bursts_during_spawns(sim, make_spawner):
    unavailable = sim.faults.fail(503, verb="create", resource="pods", count=3)
    broken = sim.faults.fail(500, verb="delete", resource="pods", count=2)
    throttled = sim.faults.fail(429, verb="create", resource="pods", count=2, retry_after=1)
    spawners = [make_spawner(f"user{i}") for i in range(5)]
    urls = await asyncio.gather(*(s.start() for s in spawners))
    assert len(set(urls)) == 5
    assert len(store_pods(sim)) == 5  # retried, never duplicated
    assert unavailable.hits == 3 and throttled.hits == 2
    await asyncio.gather(*(s.stop() for s in spawners))
    assert broken.hits == 2
    assert store_pods(sim) == []


async def test_slow_api_seconds_per_request(sim, make_spawner):
    sim.faults.add_latency(1.0, verb="create")
    sim.faults.add_latency(1.0, verb="delete")
    spawner = make_spawner(k8s_api_request_timeout=5)
    await spawner.start()
    assert len(store_pods(sim)) == 1
    await spawner.stop()
    assert store_pods(sim) == []


async def test_create_slower_than_the_request_timeout_is_reconciled(sim, make_spawner):
    """The first create's answer comes after the client gave up; the server may or may not
    have created the pod. Either way: exactly one pod, and it is the one we return."""
    sim.faults.add_latency(2.0, verb="create", resource="pods", count=1)
    spawner = make_spawner(k8s_api_request_timeout=1)
    url = await spawner.start()
    [pod] = store_pods(sim)
    assert url == f"http://{pod['status']['podIP']}:8888"
    assert await spawner.poll() is None
    await spawner.stop()


async def test_watches_dropped_and_410_during_spawns(sim, make_spawner, kubelet):
    releases = {f"jupyter-user{i}": kubelet.hold(f"jupyter-user{i}") for i in range(4)}
    spawners = [make_spawner(f"user{i}") for i in range(4)]
    starts = [asyncio.ensure_future(s.start()) for s in spawners]
    reflector = await spawners[0]._pod_reflector()
    await reflector.wait_synced(10)
    for name in releases:
        await reflector.sink.wait_for(("default", name), lambda p: p is not None, 10)
    sim.faults.expire_next(verb="watch", resource="pods")
    sim.faults.close_watches()
    for release in releases.values():
        sim.faults.close_watches(after_events=1)
        release.set()
    urls = await asyncio.gather(*starts)
    assert len(urls) == 4
    assert reflector.restarts >= 1
    await asyncio.gather(*(s.stop() for s in spawners))


async def test_outage_then_recovery(sim, make_spawner, kubelet):
    """An API outage longer than upstream's give-up window: a spawn waiting through it
    completes when the API returns, and poll() answers from a cache that caught up."""
    running = make_spawner("bob")
    await running.start()
    release = kubelet.hold("jupyter-alice")
    spawner = make_spawner(start_timeout=60)
    start = asyncio.ensure_future(spawner.start())
    reflector = await spawner._pod_reflector()
    await reflector.sink.wait_for(spawner._pod_key, lambda p: p is not None, 10)
    sim.faults.outage(3.0)
    release.set()  # the pod becomes ready while the hub cannot see it
    await sim.store.delete(
        sim.store.resource("pods"), "default", running.pod_name, grace_period_seconds=0
    )
    assert (await start).startswith("http://10.")
    assert reflector.errors >= 1 and reflector.running
    await reflector.sink.wait_for(running._pod_key, lambda p: p is None, 10)
    assert await running.poll() == 1
    await spawner.stop()


async def test_200_concurrent_spawns_share_one_reflector(sim, make_spawner):
    spawners = [make_spawner(f"user{i}") for i in range(200)]
    urls = await asyncio.gather(*(s.start() for s in spawners))
    assert len(set(urls)) == 200
    assert len(store_pods(sim)) == 200
    assert sim.counters.count("list", "pods") == 1
    assert sim.counters.count("create", "pods") == 200
    assert len([r for r in reflectors() if r.resource == "pods"]) == 1
    assert await asyncio.gather(*(s.poll() for s in spawners)) == [None] * 200
    await asyncio.gather(*(s.stop(now=True) for s in spawners))
    assert store_pods(sim) == []


def ours(task: asyncio.Task) -> bool:
    """A task of the spawner's code (not the simulator's server side, which the fixture
    shuts down after the test)."""
    code = getattr(task.get_coro(), "cr_code", None)
    filename = code.co_filename if code else ""
    return "async_kubespawner" in filename and "/sim/" not in filename


async def test_no_task_or_session_leaks_in_debug_mode(sim, make_spawner):
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    try:
        baseline = set(asyncio.all_tasks())
        spawners = [make_spawner(f"user{i}") for i in range(3)]
        await asyncio.gather(*(s.start() for s in spawners))
        [m async for m in spawners[0].progress()]
        await asyncio.gather(*(s.poll() for s in spawners))
        await asyncio.gather(*(s.stop() for s in spawners))
        health = reflector_health()
        assert {h["name"].split("@")[0] for h in health} == {"pods", "events"}
        assert all(h["running"] and h["synced"] and h["errors"] == 0 for h in health)
        await close_shared_resources()
        leftover = [
            t for t in asyncio.all_tasks() - baseline if t is not asyncio.current_task() and ours(t)
        ]
        assert not leftover, leftover
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gc.collect()
        assert not [w for w in caught if "Unclosed" in str(w.message)]
    finally:
        loop.set_debug(False)
