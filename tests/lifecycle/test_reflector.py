"""The reflector against the simulator over real HTTP: list once, watch, resume, relist on 410,
survive drops and outages, share per key."""

import asyncio
import contextlib

import pytest
from kubesim.testing import run_simulator

from async_kubespawner.kube.cache import EventIndex, ObjectCache, trim_pod
from async_kubespawner.kube.client import EVENTS, PODS, ClientOptions, KubeApi
from async_kubespawner.kube.errors import NoResponse, ServerError
from async_kubespawner.kube.reflector import (
    Reflector,
    ReflectorOptions,
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
    held = []  # the armed watches themselves, so that no id is reused by a later one

    def drop_each_watch_after_two_events() -> None:
        for watch in sim.store.watches():
            if id(watch) not in armed:
                armed.add(id(watch))
                held.append(watch)
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
    # arrived on a resumed one, which the next arming saw. Counted from the watches the
    # store held, not from the request counters: those count a request when its handler
    # has finished, and a closed watch's handler may still be finishing under load (a
    # CI run once counted 1). How many more were armed depends on scheduling, so only
    # that lower bound is certain.
    assert len(armed) >= 2
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


class ScriptedSource:
    """A lister-watcher whose watches are scripted: each is a callable run inside the watch
    (it may advance the fake clock, raise, or return whether to deliver an event)."""

    name = "pods@default"
    resource = "pods"
    namespace = "default"

    def __init__(self, watches, answered=None):
        self.watches = list(watches)
        self.done = asyncio.Event()
        self.answered = answered

    async def list_page(self, *, limit, continue_token, timeout, decode):  # noqa: ASYNC109
        return decode(b'{"metadata": {"resourceVersion": "1"}, "items": []}')

    @contextlib.asynccontextmanager
    async def watch(self, *, resource_version, timeout_seconds, read_timeout):
        if not self.watches:
            self.done.set()
            await asyncio.Event().wait()  # stay "watching" until stopped
        delivered = await self.watches.pop(0)()

        async def chunks():
            if delivered:
                yield b'{"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "2"}}}\n'

        yield chunks()

    def server_answered(self):
        future = asyncio.get_running_loop().create_future()
        if self.answered is not None:
            self.answered(future)
        return future


class PacedReflector:
    """A reflector on a scripted source and a fake clock: tests the supervisor's pacing
    (when it backs off) without any real waiting. Seams are passed in, not patched."""

    def __init__(self, watches, answered=None):
        self.now = 0.0
        self.sleeps: list[float] = []
        self.source = ScriptedSource(watches, answered)
        self.reflector = Reflector(
            self.source,
            ObjectCache(trim_pod),
            settings=FAST,
            options=ReflectorOptions(clock=lambda: self.now, sleep=self.sleep),
        )

    @property
    def done(self):
        return self.source.done

    async def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def outcome(self, delivered, lasted):
        async def watch():
            self.now += lasted
            return delivered

        return watch

    def failure(self, lasted, error):
        async def watch():
            self.now += lasted
            raise error

        return watch


def paced_reflector(outcomes):
    pacer = PacedReflector([])
    pacer.source.watches = [pacer.outcome(d, t) for d, t in outcomes]
    return pacer


async def test_quiet_watches_that_expire_are_renewed_without_backoff():
    """A quiet hub's watches end after watch_timeout with no events; that is no failure,
    so renewals never slow down (upstream-style backoff here would delay the next
    spawn's events by up to backoff_max)."""
    paced = paced_reflector([(False, 60.0)] * 10)
    paced.reflector.start()
    await paced.done.wait()
    await paced.reflector.stop()
    assert paced.sleeps == []
    assert paced.reflector.errors == 0


async def test_watches_ending_at_once_back_off():
    paced = paced_reflector([(False, 0.0)] * 6 + [(True, 0.0)] + [(False, 0.0)])
    paced.reflector.start()
    await paced.done.wait()
    await paced.reflector.stop()
    # The first empty end is renewed at once, the next ones back off; a delivering watch
    # resets the count, so the single empty end after it is again renewed at once.
    assert len(paced.sleeps) == 5


async def test_quiet_watches_cut_by_the_network_are_renewed_without_backoff():
    paced = PacedReflector([])
    cut = NoResponse(0, "ServerDisconnectedError", reason="ConnectionError")
    paced.source.watches = [paced.failure(60.0, cut) for _ in range(5)]
    paced.reflector.start()
    await paced.done.wait()
    await paced.reflector.stop()
    assert paced.sleeps == []


async def test_watches_failing_at_once_back_off_and_count_as_errors():
    paced = PacedReflector([])
    down = ServerError(503, "unavailable", reason="ServiceUnavailable")
    paced.source.watches = [paced.failure(0.0, down) for _ in range(4)]
    paced.reflector.start()
    await paced.done.wait()
    await paced.reflector.stop()
    assert len(paced.sleeps) == 4
    assert paced.reflector.errors == 4


def longest_backoff(failures: int, settings: ReflectorSettings) -> float:
    """No jitter: the longest pause the settings allow."""
    return min(settings.backoff_max, settings.backoff_initial * 2**failures)


class StateLog:
    """A reflector's on_state callback that tests can await (no sleeps)."""

    def __init__(self) -> None:
        self.states: list[str] = []
        self.changed = asyncio.Condition()
        self._events: dict[str, asyncio.Event] = {}

    def __call__(self, reflector, state: str) -> None:
        self.states.append(state)
        self.event(state).set()

    def event(self, state: str) -> asyncio.Event:
        return self._events.setdefault(state, asyncio.Event())


async def outage_then_answer(sim, api, *, answer_by_request: bool) -> None:
    slow = ReflectorSettings(watch_timeout=60, backoff_initial=20, backoff_max=60)
    states = StateLog()
    options = ReflectorOptions(backoff=longest_backoff, on_state=states)
    reflector = get_reflector(
        api, PODS, "default", lambda: ObjectCache(trim_pod), settings=slow, options=options
    )
    await reflector.wait_synced(10)
    sim.faults.outage(3600, mode="503")
    sim.store.close_watches()  # the watch fails over to the outage
    # Disconnected: the reflector now pauses 40 s unless an answer wakes it.
    await asyncio.wait_for(states.event("disconnected").wait(), 10)
    assert reflector.stale_for() >= 0
    sim.faults.clear()
    await make_pod(sim, "jupyter-after")  # straight into the store: nobody is told
    if answer_by_request:
        await api.list_page(PODS, "default")  # someone else's request is answered
    await reflector.sink.wait_for(("default", "jupyter-after"), lambda p: p is not None, 5)
    assert reflector.errors >= 1
    assert states.states == ["disconnected", "connected"]
    assert reflector.stale_for() == 0


async def test_after_an_outage_the_first_answer_to_anyone_ends_the_backoff(sim):
    """The backoff may have grown to tens of seconds during an outage; once the server
    answers another request (a spawn's create, say), the reflector catches up at once."""
    # No probes: the answer must come from someone else's request.
    kube = KubeApi(
        sim.api_client(),
        request_timeout=5,
        retry_timeout=10,
        options=ClientOptions(probe_interval=0),
    )
    try:
        await outage_then_answer(sim, kube, answer_by_request=True)
        assert sim.counters.count("discovery", "version") == 0
    finally:
        await stop_reflectors()
        await kube.close()


async def test_after_an_outage_a_probe_ends_the_backoff_when_nobody_else_asks(sim, api):
    """A quiet hub sends no other request: the client's own probe (GET /version about once
    a second while a reflector waits) finds the server back and the reflector resumes."""
    await outage_then_answer(sim, api, answer_by_request=False)
    assert sim.counters.count("discovery", "version") >= 1


async def test_a_failure_of_the_reflector_alone_still_backs_off():
    """Others' answers end one pause only: if the next attempt fails as well, the reflector
    waits its full backoff instead of retrying at the rate of everyone else's requests."""
    attempts = 0
    pauses: list[float] = []
    waiting_in_full = asyncio.Event()

    async def failing_watch():
        nonlocal attempts
        attempts += 1
        raise ServerError(500, "watch endpoint broken", verb="watch", kind="pods")

    async def sleep(seconds):
        pauses.append(seconds)
        if len(pauses) == 2:
            waiting_in_full.set()
        await asyncio.Event().wait()  # a full pause: never ends in this test

    source = ScriptedSource([failing_watch] * 3, answered=lambda f: f.set_result(None))
    reflector = Reflector(
        source, ObjectCache(trim_pod), settings=FAST, options=ReflectorOptions(sleep=sleep)
    )
    reflector.start()
    try:
        await asyncio.wait_for(waiting_in_full.wait(), 5)
        # list, attempt 1 fails -> pause ended early by an answer -> attempt 2 fails ->
        # full pause
        assert attempts == 2 and len(pauses) == 2
    finally:
        await reflector.stop()


class OneChunkSource:
    """Lists nothing, then delivers ``lines`` as one chunk on its first watch (a backlog
    arriving at once, as after a stall) and stays open."""

    name = "pods@default"
    resource = "pods"
    namespace = "default"

    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines
        self.watched = 0

    async def list_page(self, *, limit, continue_token, timeout, decode):  # noqa: ASYNC109
        return decode(b'{"metadata": {"resourceVersion": "1"}, "items": []}')

    @contextlib.asynccontextmanager
    async def watch(self, *, resource_version, timeout_seconds, read_timeout):
        self.watched += 1
        lines = self.lines if self.watched == 1 else []

        async def chunks():
            if lines:
                yield b"\n".join(lines) + b"\n"
            await asyncio.Event().wait()

        yield chunks()

    def server_answered(self):
        return asyncio.get_running_loop().create_future()


def added(name: str, rv: int) -> bytes:
    import json

    pod = pod_body(name)
    pod["metadata"].update(namespace="default", uid=name, resourceVersion=str(rv))
    return json.dumps({"type": "MODIFIED" if rv > 1 else "ADDED", "object": pod}).encode()


async def test_a_slow_listener_does_not_delay_the_stream():
    """A listener is someone else's code (a progress log, a hook). 50 changes of one pod
    whose listener takes 5 ms each must not hold up the next pod's change: called inside
    the watch loop, the other pod would be applied only after 250 ms of listener calls."""
    import time

    changes = 50
    source = OneChunkSource([added("jupyter-a", rv) for rv in range(1, changes + 1)] +
                            [added("jupyter-b", changes + 1)])
    cache = ObjectCache(trim_pod)
    heard: list[str] = []

    def slow_listener(pod):
        heard.append(pod["metadata"]["resourceVersion"])
        time.sleep(0.005)  # stands for a listener's CPU work, not for synchronisation

    cache.listen(("default", "jupyter-a"), slow_listener)
    reflector = Reflector(source, cache, settings=FAST)
    reflector.start()
    try:
        await cache.wait_for(("default", "jupyter-b"), lambda p: p is not None, 10)
        heard_when_b_arrived = len(heard)
        await cache.listeners_idle()
    finally:
        await reflector.stop()
    assert heard_when_b_arrived < changes // 2  # the stream did not wait for the listener
    assert heard[-1] == str(changes)  # the listener heard the latest state...
    assert len(heard) < changes  # ...without replaying every intermediate one


class AnswersThenCuts:
    """A crashing server: every watch is answered (200), sends half a line, and is cut."""

    name = "pods@default"
    resource = "pods"
    namespace = "default"

    def __init__(self, cuts: int) -> None:
        self.cuts = cuts
        self.done = asyncio.Event()

    async def list_page(self, *, limit, continue_token, timeout, decode):  # noqa: ASYNC109
        return decode(b'{"metadata": {"resourceVersion": "1"}, "items": []}')

    @contextlib.asynccontextmanager
    async def watch(self, *, resource_version, timeout_seconds, read_timeout):
        if self.cuts == 0:
            self.done.set()
            await asyncio.Event().wait()
        self.cuts -= 1

        async def chunks():
            yield b'{"type": "ADDED", "object": {"metadata":'
            raise NoResponse(0, "ClientPayloadError: cut", reason="ConnectionError")

        yield chunks()

    def server_answered(self):
        return asyncio.get_running_loop().create_future()


async def test_a_server_that_answers_and_cuts_at_once_leaves_the_cache_stale():
    """Answered-then-cut watches are not a connection: the cache stays marked stale (so
    poll() reads directly), and the failures back off."""
    now = [0.0]
    pauses: list[float] = []

    async def sleep(seconds):
        pauses.append(seconds)
        now[0] += seconds

    states = StateLog()
    source = AnswersThenCuts(cuts=4)
    reflector = Reflector(
        source,
        ObjectCache(trim_pod),
        settings=FAST,
        options=ReflectorOptions(clock=lambda: now[0], sleep=sleep, on_state=states),
    )
    reflector.start()
    try:
        await asyncio.wait_for(source.done.wait(), 5)
        assert reflector.errors == 4 and len(pauses) == 4
        assert states.states == ["disconnected"]  # never "connected" in between
        assert reflector.stale_for() == pytest.approx(sum(pauses))
    finally:
        await reflector.stop()
