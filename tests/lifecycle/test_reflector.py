"""The reflector against the simulator over real HTTP: list once, watch, resume, relist on 410,
survive drops and outages, share per key."""

import asyncio

import pytest
from kubesim.testing import run_simulator

from async_kubespawner.kube.cache import EventIndex, ObjectCache, trim_pod
from async_kubespawner.kube.client import EVENTS, PODS, ApiError, KubeApi
from async_kubespawner.kube.reflector import (
    ReflectorSettings,
    get_reflector,
    reflectors,
    stop_reflectors,
)

FAST = ReflectorSettings(watch_timeout=60, backoff_initial=0.02, backoff_max=0.2)
SELECTOR = "component=singleuser-server"


def pod_body(name: str, component: str = "singleuser-server") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"component": component}},
        "spec": {"containers": [{"name": "notebook", "image": "jupyter/base:1"}]},
    }


async def make_pod(sim, name: str, component: str = "singleuser-server") -> dict:
    return await sim.store.create(sim.store.resource("pods"), "default", pod_body(name, component))


async def set_phase(sim, name: str, phase: str) -> None:
    await sim.store.patch(
        sim.store.resource("pods"),
        "default",
        name,
        {"status": {"phase": phase}},
        "merge",
        subresource="status",
    )


async def delete_pod(sim, name: str) -> None:
    await sim.store.delete(sim.store.resource("pods"), "default", name, grace_period_seconds=0)


def has_phase(phase: str):
    return lambda p: p is not None and p["status"].get("phase") == phase


@pytest.fixture
async def sim():
    async with run_simulator() as simulator:
        yield simulator


@pytest.fixture
async def api(sim):
    kube = KubeApi(sim.api_client(), request_timeout=5, retry_timeout=10)
    yield kube
    await stop_reflectors()
    await kube.close()


def pod_reflector(api, settings=FAST):
    return get_reflector(
        api,
        PODS,
        "default",
        lambda: ObjectCache(trim_pod),
        label_selector=SELECTOR,
        settings=settings,
    )


async def test_list_then_watch_keeps_the_cache_current(sim, api):
    await make_pod(sim, "jupyter-a")
    await make_pod(sim, "other", component="something-else")
    reflector = pod_reflector(api)
    assert await reflector.wait_synced(10)
    cache = reflector.sink
    assert cache.get(("default", "jupyter-a")) is not None
    assert cache.get(("default", "other")) is None  # label selector applied by the server
    await make_pod(sim, "jupyter-b")
    await cache.wait_for(("default", "jupyter-b"), lambda p: p is not None, 10)
    await set_phase(sim, "jupyter-b", "Running")
    await cache.wait_for(("default", "jupyter-b"), has_phase("Running"), 10)
    await delete_pod(sim, "jupyter-a")
    await cache.wait_for(("default", "jupyter-a"), lambda p: p is None, 10)
    assert sim.counters.count("list", "pods") == 1
    health = reflector.health()
    assert health.running and health.synced and health.errors == 0
    assert health.objects == 1


async def test_ended_watches_resume_without_relisting(sim, api):
    """A watch the server ends (its timeoutSeconds, a load balancer) resumes from the last
    resourceVersion: no relist, no restart counted, nothing missed."""
    reflector = pod_reflector(api)
    await reflector.wait_synced(10)
    cache = reflector.sink
    for i in range(3):
        sim.faults.close_watches()
        await make_pod(sim, f"jupyter-{i}")
        await cache.wait_for(("default", f"jupyter-{i}"), lambda p: p is not None, 10)
    assert sim.counters.count("list", "pods") == 1
    assert sim.counters.count("watch", "pods") >= 2  # ended ones (the open one counts at its end)
    assert reflector.restarts == 0
    assert reflector.errors == 0


async def test_watches_dropped_every_few_events_lose_nothing(sim, api):
    reflector = pod_reflector(api)
    await reflector.wait_synced(10)
    cache = reflector.sink
    armed: set[int] = set()

    def drop_each_watch_after_two_events() -> None:
        for watch in sim.store.watches():
            if id(watch) not in armed:
                armed.add(id(watch))
                watch.close_after(2)

    for i in range(12):
        await make_pod(sim, f"jupyter-{i}")
        await cache.wait_for(("default", f"jupyter-{i}"), lambda p: p is not None, 10)
        drop_each_watch_after_two_events()
    for i in range(0, 12, 3):
        await delete_pod(sim, f"jupyter-{i}")
        await cache.wait_for(("default", f"jupyter-{i}"), lambda p: p is None, 10)
        drop_each_watch_after_two_events()
    assert sorted(k[1] for k in cache.keys()) == sorted(f"jupyter-{i}" for i in range(12) if i % 3)
    assert sim.counters.count("list", "pods") == 1
    # The first armed watch ends after jupyter-1 and jupyter-2, so jupyter-3 can only have
    # arrived on a resumed one. How many more were armed before their first events
    # depends on scheduling, so only that lower bound is certain.
    assert sim.counters.count("watch", "pods") >= 2
    assert reflector.errors == 0


async def test_410_mid_watch_relists_and_catches_deletions(sim, api):
    await make_pod(sim, "jupyter-a")
    await make_pod(sim, "jupyter-b")
    reflector = pod_reflector(api)
    await reflector.wait_synced(10)
    cache = reflector.sink
    sim.faults.expire_next(verb="watch")
    sim.faults.close_watches()
    await delete_pod(sim, "jupyter-a")
    await make_pod(sim, "jupyter-c")
    await cache.wait_for(("default", "jupyter-c"), lambda p: p is not None, 10)
    await cache.wait_for(("default", "jupyter-a"), lambda p: p is None, 10)
    assert sorted(k[1] for k in cache.keys()) == ["jupyter-b", "jupyter-c"]
    assert sim.counters.count("list", "pods") == 2
    assert reflector.restarts == 1


async def test_first_list_failing_leaves_it_unsynced_then_it_recovers(sim, api):
    sim.faults.fail(500, verb="list", resource="pods", count=3)
    await make_pod(sim, "jupyter-a")
    reflector = pod_reflector(api)
    assert not reflector.synced
    assert await reflector.wait_synced(10)
    assert reflector.sink.get(("default", "jupyter-a")) is not None
    assert reflector.errors == 3
    assert reflector.health().last_error and "500" in reflector.health().last_error


async def test_outage_longer_than_upstream_gives_up_then_recovery(sim, api):
    """Upstream's reflector gives up after a handful of failed attempts and is then reused
    dead. Ours keeps trying through the outage and catches up with what changed during it."""
    reflector = pod_reflector(api)
    await reflector.wait_synced(10)
    cache = reflector.sink
    await make_pod(sim, "jupyter-before")
    await cache.wait_for(("default", "jupyter-before"), lambda p: p is not None, 10)
    sim.faults.outage(2.0)
    # Changes straight into the store (as if another API server replica took them).
    await make_pod(sim, "jupyter-during")
    await delete_pod(sim, "jupyter-before")
    await cache.wait_for(("default", "jupyter-during"), lambda p: p is not None, 15)
    await cache.wait_for(("default", "jupyter-before"), lambda p: p is None, 15)
    # It failed many times during the outage and never stopped trying.
    assert reflector.running and reflector.errors >= 3 and reflector.restarts >= 3


async def test_paginated_first_list(sim, api):
    for i in range(7):
        await make_pod(sim, f"jupyter-{i}")
    reflector = pod_reflector(api, ReflectorSettings(list_page_size=3))
    await reflector.wait_synced(10)
    assert len(reflector.sink) == 7
    assert sim.counters.count("list", "pods") == 3


async def test_shared_per_key_and_stopped_cleanly(sim, api):
    first = pod_reflector(api)
    assert pod_reflector(api) is first
    events = get_reflector(api, EVENTS, "default", EventIndex, settings=FAST)
    assert events is not first
    other_ns = get_reflector(
        api, PODS, None, lambda: ObjectCache(trim_pod), label_selector=SELECTOR, settings=FAST
    )
    assert other_ns is not first
    assert len(reflectors()) == 3
    await first.wait_synced(10)
    await stop_reflectors()
    assert not first.running and not events.running
    replacement = pod_reflector(api)
    assert replacement is not first and replacement.running


async def test_event_reflector_indexes_pod_events(sim, api):
    reflector = get_reflector(api, EVENTS, "default", EventIndex, settings=FAST)
    await reflector.wait_synced(10)
    pod = await make_pod(sim, "jupyter-a")
    heard = asyncio.Event()
    reflector.sink.listen("default", "jupyter-a", lambda e: heard.set())
    await sim.store.create(
        sim.store.resource("events"),
        "default",
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "jupyter-a.1"},
            "involvedObject": {
                "kind": "Pod",
                "name": "jupyter-a",
                "namespace": "default",
                "uid": pod["metadata"]["uid"],
            },
            "reason": "Scheduled",
            "message": "assigned to node-1",
            "type": "Normal",
        },
    )
    async with asyncio.timeout(10):
        await heard.wait()
    [event] = reflector.sink.for_object("default", "jupyter-a", uid=pod["metadata"]["uid"])
    assert event["message"] == "assigned to node-1"


class PacedReflector:
    """A reflector whose watches are scripted, on a fake clock: tests the supervisor's
    pacing (when it backs off) without any real waiting."""

    def __init__(self, api, outcomes):
        from async_kubespawner.kube.reflector import Reflector

        self.reflector = Reflector(api, PODS, "default", ObjectCache(trim_pod), settings=FAST)
        self.reflector.resource_version = "1"  # as after a list
        self.now = 0.0
        self.sleeps: list[float] = []
        self.outcomes = list(outcomes)
        self.done = asyncio.Event()
        self.reflector._clock = lambda: self.now
        self.reflector._sleep = self.sleep
        self.reflector._watch = self.watch

    async def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    async def watch(self):
        if not self.outcomes:
            self.done.set()
            await asyncio.Event().wait()  # stay "watching" until stopped
        delivered, lasted = self.outcomes.pop(0)
        self.now += lasted
        return delivered


async def test_quiet_watches_that_expire_are_renewed_without_backoff(api):
    """A quiet hub's watches end after watch_timeout with no events; that is no failure,
    so renewals never slow down (upstream-style backoff here would delay the next
    spawn's events by up to backoff_max)."""
    paced = PacedReflector(api, [(False, 60.0)] * 10)
    paced.reflector.start()
    await paced.done.wait()
    await paced.reflector.stop()
    assert paced.sleeps == []
    assert paced.reflector.errors == 0


async def test_watches_ending_at_once_back_off(api):
    paced = PacedReflector(api, [(False, 0.0)] * 6 + [(True, 0.0)] + [(False, 0.0)])
    paced.reflector.start()
    await paced.done.wait()
    await paced.reflector.stop()
    # The first empty end is renewed at once, the next ones back off; a delivering watch
    # resets the count, so the single empty end after it is again renewed at once.
    assert len(paced.sleeps) == 5


async def test_quiet_watches_cut_by_the_network_are_renewed_without_backoff(api):
    paced = PacedReflector(api, [])
    cuts = [60.0] * 5

    async def cut_watch():
        if not cuts:
            paced.done.set()
            await asyncio.Event().wait()
        paced.now += cuts.pop()
        raise ApiError(0, "ServerDisconnectedError", reason="ConnectionError")

    paced.reflector._watch = cut_watch
    paced.reflector.start()
    await paced.done.wait()
    await paced.reflector.stop()
    assert paced.sleeps == []


async def test_watches_failing_at_once_back_off_and_count_as_errors(api):
    paced = PacedReflector(api, [])
    failures = [0.0] * 4

    async def failing_watch():
        if not failures:
            paced.done.set()
            await asyncio.Event().wait()
        paced.now += failures.pop()
        raise ApiError(503, "unavailable", reason="ServiceUnavailable")

    paced.reflector._watch = failing_watch
    paced.reflector.start()
    await paced.done.wait()
    await paced.reflector.stop()
    assert len(paced.sleeps) == 4
    assert paced.reflector.errors == 4


async def test_after_an_outage_the_first_answer_to_anyone_ends_the_backoff(
    sim, api, monkeypatch
):
    """The backoff may have grown to tens of seconds during an outage; once the server
    answers another request (a spawn's create, say), the reflector catches up at once."""
    monkeypatch.setattr("async_kubespawner.kube.reflector.random.uniform", lambda a, b: b)
    slow = ReflectorSettings(watch_timeout=60, backoff_initial=20, backoff_max=60)
    reflector = pod_reflector(api, slow)
    await reflector.wait_synced(10)
    pausing = asyncio.Event()
    subscribe = api.server_answered

    def noting_the_pause():
        pausing.set()
        return subscribe()

    api.server_answered = noting_the_pause
    sim.faults.outage(3600, mode="503")
    sim.store.close_watches()  # the watch fails over to the outage
    await asyncio.wait_for(pausing.wait(), 10)  # backing off: 40 s if nothing wakes it
    sim.faults.clear()
    await make_pod(sim, "jupyter-after")  # straight into the store: nobody is told
    await api.list_page(PODS, "default")  # someone else's request is answered
    await reflector.sink.wait_for(("default", "jupyter-after"), lambda p: p is not None, 5)
    assert reflector.errors >= 1


class AlwaysAnswering:
    """An API that answers everyone but the reflector (whose watch is scripted to fail)."""

    def server_answered(self):
        answered = asyncio.get_running_loop().create_future()
        answered.set_result(None)
        return answered


async def test_a_failure_of_the_reflector_alone_still_backs_off():
    """Others' answers end one pause only: if the next attempt fails as well, the reflector
    waits its full backoff instead of retrying at the rate of everyone else's requests."""
    from async_kubespawner.kube.reflector import Reflector

    reflector = Reflector(AlwaysAnswering(), PODS, "default", ObjectCache(trim_pod), settings=FAST)
    reflector.resource_version = "1"
    attempts = 0
    pauses: list[float] = []
    waiting_in_full = asyncio.Event()

    async def failing_watch():
        nonlocal attempts
        attempts += 1
        raise ApiError(500, "watch endpoint broken", verb="watch", kind="pods")

    async def sleep(seconds):
        pauses.append(seconds)
        if len(pauses) == 2:
            waiting_in_full.set()
            await asyncio.Event().wait()  # a full pause: never ends in this test

    reflector._watch = failing_watch
    reflector._sleep = sleep
    reflector.start()
    try:
        await asyncio.wait_for(waiting_in_full.wait(), 5)
        # attempt 1 fails -> pause ended early by an answer -> attempt 2 fails -> full pause
        assert attempts == 2 and len(pauses) == 2
    finally:
        await reflector.stop()
