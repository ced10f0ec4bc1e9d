"""What goes first: request admission by priority, and an operator whose Events and creates
cannot hold a Ready verdict back.

The API server serves a client's requests roughly in arrival order, so the order in which
the client *sends* them is the order they are answered: these tests check that order at
the client (the admission), at the transport (what is really sent), and end to end (Events
held at the API server do not stop servers from becoming Ready, and are all written
afterwards).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from async_kubespawner.kube.admission import Admission, Priority
from async_kubespawner.kube.client import EVENTS, NAMESPACES, PODS, KubeApi
from async_kubespawner.kube.transport import Transport, build_client
from async_kubespawner.operator.app import Operator, started
from async_kubespawner.operator.kubeio import NOTEBOOK_SERVERS, merge_patch

from .conftest import NAMESPACE, OperatorHarness, make_spawner
from .servers import create_server, phase

# -- the admission on its own ---------------------------------------------------------------


async def admitted_in_order(admission: Admission, arrivals: list[Priority]) -> list[int]:
    """Queue one waiter per priority in ``arrivals`` behind a held slot, free the slot,
    and return the order (indices into ``arrivals``) in which they were admitted."""
    order: list[int] = []

    async def one(i: int, priority: Priority) -> None:
        await admission.acquire(priority)
        order.append(i)
        admission.release(priority)

    await admission.acquire(Priority.NORMAL)  # hold the only slot
    tasks = [asyncio.ensure_future(one(i, p)) for i, p in enumerate(arrivals)]
    await asyncio.sleep(0)  # let each task queue (a yield, not a wait for time)
    assert admission.waiting() == len(arrivals)
    admission.release(Priority.NORMAL)
    await asyncio.gather(*tasks)
    return order


async def test_waiting_requests_are_admitted_most_urgent_first_fifo_within() -> None:
    arrivals = [Priority.PROGRESS, Priority.BULK, Priority.NORMAL, Priority.BULK,
                Priority.CRITICAL, Priority.PROGRESS, Priority.CRITICAL]
    order = await admitted_in_order(Admission(1), arrivals)
    assert order == [4, 6, 2, 0, 5, 1, 3]


async def test_without_priorities_admission_is_a_fifo_semaphore() -> None:
    # What the in-hub spawner gets: every call at the default priority, no caps.
    order = await admitted_in_order(Admission(1), [Priority.NORMAL] * 6)
    assert order == list(range(6))


async def test_a_capped_priority_never_exceeds_its_cap_and_others_still_run() -> None:
    admission = Admission(10, {Priority.BULK: 2})
    bulk = [asyncio.ensure_future(admission.acquire(Priority.BULK)) for _ in range(5)]
    await asyncio.sleep(0)
    assert admission.running(Priority.BULK) == 2 and admission.waiting(Priority.BULK) == 3
    # A request of another priority is admitted at once: the cap holds BULK back only.
    await asyncio.wait_for(admission.acquire(Priority.NORMAL), 1)
    assert admission.in_flight == 3
    admission.release(Priority.BULK)
    await asyncio.sleep(0)
    assert admission.running(Priority.BULK) == 2 and admission.waiting(Priority.BULK) == 2
    for task in bulk:
        task.cancel()
    await asyncio.gather(*bulk, return_exceptions=True)


async def test_a_cancelled_waiter_leaves_no_trace_and_a_granted_one_hands_its_slot_on() -> None:
    admission = Admission(1)
    await admission.acquire()
    queued = asyncio.ensure_future(admission.acquire(Priority.CRITICAL))
    later = asyncio.ensure_future(admission.acquire(Priority.BULK))
    await asyncio.sleep(0)
    queued.cancel()  # cancelled while waiting
    await asyncio.gather(queued, return_exceptions=True)
    assert admission.waiting() == 1
    admission.release()
    await asyncio.wait_for(later, 1)  # the slot went to the next waiter, not to the ghost
    granted = asyncio.ensure_future(admission.acquire(Priority.NORMAL))
    await asyncio.sleep(0)
    admission.release(Priority.BULK)  # grants `granted` its slot ...
    granted.cancel()  # ... which it never uses
    await asyncio.gather(granted, return_exceptions=True)
    assert admission.in_flight == 0
    await asyncio.wait_for(admission.acquire(Priority.NORMAL), 1)


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="limit"):
        Admission(0)
    with pytest.raises(ValueError, match="BULK"):
        Admission(4, {Priority.BULK: 0})


@settings(max_examples=60, deadline=None)
@given(
    limit=st.integers(1, 4),
    caps=st.dictionaries(st.sampled_from(list(Priority)), st.integers(1, 3)),
    plan=st.lists(st.tuples(st.sampled_from(list(Priority)), st.booleans()), max_size=25),
    seed=st.integers(0, 2**16),
)
def test_limits_hold_and_every_request_not_cancelled_is_admitted(
    limit: int, caps: dict[Priority, int], plan: list[tuple[Priority, bool]], seed: int
) -> None:
    async def scenario() -> None:
        admission = Admission(limit, caps)
        rng = random.Random(seed)
        peak = {p: 0 for p in Priority}
        total_peak = 0
        served: list[int] = []

        async def request(i: int, priority: Priority) -> None:
            nonlocal total_peak
            await admission.acquire(priority)
            try:
                peak[priority] = max(peak[priority], admission.running(priority))
                total_peak = max(total_peak, admission.in_flight)
                for _ in range(rng.randint(0, 3)):
                    await asyncio.sleep(0)
                served.append(i)
            finally:
                admission.release(priority)

        tasks = []
        for i, (priority, cancel) in enumerate(plan):
            task = asyncio.ensure_future(request(i, priority))
            tasks.append((task, cancel))
            if rng.random() < 0.5:
                await asyncio.sleep(0)
        for task, cancel in tasks:
            if cancel:
                task.cancel()
        await asyncio.wait_for(asyncio.gather(*(t for t, _ in tasks), return_exceptions=True), 5)
        assert total_peak <= limit
        for priority in Priority:
            assert peak[priority] <= caps.get(priority, limit)
        expected = {i for i, (t, _) in enumerate(tasks) if not t.cancelled()}
        assert set(served) >= expected
        assert admission.in_flight == 0 and admission.waiting() == 0

    asyncio.run(scenario())


# -- the client: the order requests are really sent in ---------------------------------------


class RecordingTransport(Transport):
    """The real transport, recording each request's method and path as it is sent."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[tuple[str, str]] = []

    async def request(self, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        self.sent.append((method, path))
        return await super().request(method, path, *args, **kwargs)


def recording_api(cluster: Any) -> tuple[KubeApi, RecordingTransport]:
    configuration = cluster.client_configuration()
    configuration.connection_pool_maxsize = 0
    client = build_client(configuration)
    transport = RecordingTransport(client)
    api = KubeApi(client, request_timeout=5.0, retry_timeout=10.0, max_concurrent_requests=1,
                  transport=transport)
    return api, transport


def event(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": NAMESPACE},
            "reason": "Test", "message": "m", "type": "Normal"}


def created_test_events(cluster: Any) -> list[str]:
    items = cluster.store.list(cluster.store.resource("events"), NAMESPACE)[0]
    items.sort(key=lambda e: int(e["metadata"]["resourceVersion"]))
    return [e["metadata"]["name"] for e in items if e["reason"] == "Test"]


async def queue_behind_a_held_request(
    cluster: Any, api: KubeApi, calls: list[Any]
) -> None:
    """Occupy the client's one slot with a request the API server holds, queue ``calls``
    (coroutine functions) in list order, then let everything through."""
    hold = cluster.faults.hold(verb="get", resource="namespaces")
    holder = asyncio.ensure_future(api.get_or_none(NAMESPACES, None, NAMESPACE))
    await hold.wait_arrived(1)
    tasks = []
    for call in calls:
        tasks.append(asyncio.ensure_future(call()))
        await asyncio.sleep(0)  # queued in this order (a yield, not a wait for time)
    assert api.admission.waiting() == len(calls)
    hold.open()
    await asyncio.gather(holder, *tasks)


async def test_the_client_sends_waiting_requests_by_priority(cluster: Any) -> None:
    api, transport = recording_api(cluster)
    try:
        await api.create(PODS, NAMESPACE, {"metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "c", "image": "example/i"}]}})
        transport.sent.clear()
        await queue_behind_a_held_request(cluster, api, [
            lambda: api.create(EVENTS, NAMESPACE, event("e1"), priority=Priority.BULK),
            lambda: api.create(EVENTS, NAMESPACE, event("e2"), priority=Priority.PROGRESS),
            lambda: api.get(PODS, NAMESPACE, "p"),
            lambda: merge_patch(api, PODS, NAMESPACE, "p", {"metadata": {"labels": {"a": "b"}}},
                                priority=Priority.CRITICAL),
        ])
        assert transport.sent[1:] == [
            ("PATCH", f"/api/v1/namespaces/{NAMESPACE}/pods/p"),
            ("GET", f"/api/v1/namespaces/{NAMESPACE}/pods/p"),
            ("POST", f"/api/v1/namespaces/{NAMESPACE}/events"),
            ("POST", f"/api/v1/namespaces/{NAMESPACE}/events"),
        ]
        names = created_test_events(cluster)
        assert names == ["e2", "e1"]
    finally:
        await api.close()


async def test_a_client_without_priorities_sends_in_call_order(cluster: Any) -> None:
    """The in-hub spawner's client: no priorities given, so first come, first sent."""
    api, transport = recording_api(cluster)
    try:
        await queue_behind_a_held_request(cluster, api, [
            (lambda i=i: api.create(EVENTS, NAMESPACE, event(f"e{i}"))) for i in range(5)
        ])
        names = created_test_events(cluster)
        assert names == [f"e{i}" for i in range(5)]
        assert len(transport.sent) == 6
    finally:
        await api.close()


async def test_admission_can_only_change_while_idle(cluster: Any) -> None:
    api, _ = recording_api(cluster)
    try:
        api.configure_admission(8, {Priority.PROGRESS: 2})
        assert api.admission.limit == 8 and api.admission.cap(Priority.PROGRESS) == 2
        assert api.max_concurrent_requests == 8
        await api.admission.acquire()
        with pytest.raises(RuntimeError, match="no request runs"):
            api.configure_admission(4)
        api.admission.release()
    finally:
        await api.close()


# -- the operator: Events bounded, all delivered, never ahead of a Ready verdict --------------


def server_events(h: OperatorHarness) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for e in sorted(h.store_items("events"), key=lambda e: int(e["metadata"]["resourceVersion"])):
        involved = e["involvedObject"]
        if involved.get("kind") == "NotebookServer":
            out.setdefault(involved["name"], []).append(e["reason"])
    return out


async def test_events_held_by_the_api_server_do_not_hold_servers_back(
    harness: OperatorHarness,
) -> None:
    # Four request slots, one of them at most for Events. With Events unbounded, the
    # first Events held at the API server would take every slot and no status would be
    # written: the servers would never become Ready.
    held = harness.sim.faults.hold(verb="create", resource="events")
    operator: Operator = await harness.start_operator(
        requests_in_flight=4, events_in_flight=1, creates_in_flight=2, provisioning_workers=2)
    names = [f"user{i}" for i in range(5)]
    for name in names:
        await create_server(harness, name, user=name)
    for name in names:
        assert phase(await harness.wait_server(name, lambda s: phase(s) == "Ready")) == "Ready"
    admission = operator.api.admission
    assert admission.running(Priority.PROGRESS) == 1  # the one the API server holds
    assert admission.waiting(Priority.PROGRESS) >= 1  # the rest queued, none dropped
    assert held.arrived == 1
    held.open()
    await asyncio.wait_for(operator.reconciler.flush_events(), 20)
    # Every step's Event, once each, in the order of the server's steps.
    assert server_events(harness) == {n: ["Provisioning", "Created", "Ready"] for n in names}


async def test_passes_that_finish_a_server_are_not_stuck_behind_provisioning(
    harness: OperatorHarness,
) -> None:
    # One provisioning worker whose creates the API server holds: every new server
    # waits, yet a Ready server's change is still handled by another worker at once.
    operator = await harness.start_operator(provisioning_workers=1, workers=4)
    await create_server(harness, "ready-one", user="ready-one")
    await harness.wait_server("ready-one", lambda s: phase(s) == "Ready")
    held = harness.sim.faults.hold(verb="create", resource="pods")
    for name in ("new-1", "new-2", "new-3"):
        await create_server(harness, name, user=name)
    await held.wait_arrived(1)
    # The hub deletes the Ready server: its teardown must not wait for provisioning.
    await harness.api.delete(NOTEBOOK_SERVERS, NAMESPACE, "ready-one")
    assert await harness.wait_server("ready-one", lambda s: s is None) is None
    assert held.arrived == 1  # still only the first provisioning pass reached its create
    for name in ("new-2", "new-3"):  # waiting for the one provisioning worker
        assert operator.queue.is_queued((NAMESPACE, name))
    held.open()
    for name in ("new-1", "new-2", "new-3"):
        await harness.wait_server(name, lambda s: phase(s) == "Ready")


def test_started_servers_are_the_urgent_ones() -> None:
    assert not started({"metadata": {"name": "a"}, "status": {}})
    assert not started({"metadata": {"name": "a"}, "status": {"phase": "Provisioning"}})
    assert started({"metadata": {"name": "a"}, "status": {"children": [{"kind": "Pod"}]}})
    assert started({"metadata": {"name": "a", "deletionTimestamp": "2026-01-01T00:00:00Z"}})


# -- two status writes per spawn, the same progress on the spawn page -------------------------


async def test_a_spawn_writes_two_statuses_and_the_page_still_says_provisioning(
    harness: OperatorHarness,
) -> None:
    await harness.start_operator()
    harness.sim.counters.reset()
    spawner = make_spawner(harness.sim)
    await spawner.start()
    # Starting (children recorded) and Ready: no Provisioning write in between.
    assert harness.sim.counters.count(verb="patch", resource="notebookservers/status") == 2
    messages = [m["message"] async for m in spawner.progress()]
    at = {text: next(i for i, m in enumerate(messages) if text in m)
          for text in ("Server provisioning", "Creating 3 objects", "Server starting",
                       "is ready at http")}
    assert at["Server provisioning"] < at["Server starting"] < at["is ready at http"]
    assert at["Server provisioning"] < at["Creating 3 objects"]
    assert sum("Server provisioning" in m for m in messages) == 1
    await spawner.stop()


async def test_a_failed_create_records_provisioning_before_the_verdict(
    harness: OperatorHarness,
) -> None:
    # The API server refuses the pod: the server fails, and its conditions say the
    # template was accepted and the children could not be created.
    harness.sim.faults.fail(403, verb="create", resource="pods")
    await harness.start_operator()
    await create_server(harness)
    failed = await harness.wait_server("alice", lambda s: phase(s) == "Failed")
    assert failed is not None
    conditions = {c["type"]: (c["status"], c["reason"]) for c in failed["status"]["conditions"]}
    assert conditions["Accepted"] == ("True", "Accepted")
    assert conditions["ChildrenCreated"] == ("False", "ChildRejected")


# -- a pass right after a status write sees that write, not the cache's older copy -------------


class StatusPatches:
    """An API answering each status merge patch as the server would (next resourceVersion)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.version = 10

    async def request(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.bodies.append(kwargs["body"])
        self.version += 1
        return cached_server(str(self.version), kwargs["body"]["status"])


def cached_server(rv: str, status: dict[str, Any] | None = None,
                  **meta: Any) -> dict[str, Any]:
    from async_kubespawner.operator.models import FINALIZER

    return {"metadata": {"name": "alice", "namespace": NAMESPACE, "uid": "u1",
                         "resourceVersion": rv, "generation": 1, "finalizers": [FINALIZER],
                         **meta},
            "spec": {}, "status": dict(status or {})}


def status_reconciler(api: Any) -> Any:
    from async_kubespawner.kube.cache import ObjectCache
    from async_kubespawner.operator.reconciler import Reconciler, trim_server, trim_template

    return Reconciler(api, servers=ObjectCache(trim_server),
                      templates=ObjectCache(trim_template), cluster_templates=None,
                      pods=ObjectCache(), pvcs=ObjectCache(), events=None)


async def test_a_pass_before_the_echo_reads_its_own_status_write() -> None:
    api = StatusPatches()
    r = status_reconciler(api)
    key = (NAMESPACE, "alice")
    r.servers.upsert(cached_server("10"))
    children = [{"kind": "Pod", "name": "jupyter-alice"}]
    server = r._current(key)
    assert await r._write_status(server, {"phase": "Starting", "children": children})
    # The pod's watch event queues a pass at once; the echo of the write is on its way.
    again = r._current(key)
    assert again["status"]["children"] == children  # not the cache's Pending copy
    assert again["metadata"]["resourceVersion"] == "11"
    assert not await r._write_status(again, {"phase": "Starting", "children": children})
    assert len(api.bodies) == 1  # nothing re-sent
    r.servers.upsert(cached_server("11", {"phase": "Starting", "children": children}))
    assert r.own_echo(r.servers.get(key))
    assert r._unechoed == {}  # the cache has it now


async def test_a_second_write_in_a_pass_still_overlays_the_older_cached_copy() -> None:
    api = StatusPatches()
    r = status_reconciler(api)
    key = (NAMESPACE, "alice")
    r.servers.upsert(cached_server("10"))
    server = r._current(key)
    assert await r._write_status(server, {"phase": "Provisioning"})
    assert await r._write_status(server, {"phase": "Starting"})
    again = r._current(key)
    assert again["status"]["phase"] == "Starting"
    assert again["metadata"]["resourceVersion"] == "12"


async def test_a_newer_cached_version_wins_over_a_remembered_write() -> None:
    api = StatusPatches()
    r = status_reconciler(api)
    key = (NAMESPACE, "alice")
    r.servers.upsert(cached_server("10"))
    assert await r._write_status(r._current(key), {"phase": "Starting"})
    # The hub deleted the server meanwhile: the cache moved past the remembered base.
    r.servers.upsert(cached_server("12", {"phase": "Starting"},
                                   deletionTimestamp="2026-12-06T12:00:00Z"))
    current = r._current(key)
    assert current["metadata"]["deletionTimestamp"] and r._unechoed == {}


async def test_reserved_slots_go_only_to_critical_requests() -> None:
    """With every unreserved slot taken by bulk work, a CRITICAL request is admitted at
    once and a NORMAL one waits."""
    admission = Admission(4, reserve=2)
    await admission.acquire(Priority.BULK)
    await admission.acquire(Priority.BULK)
    queued = asyncio.Event()
    normal_admitted = asyncio.Event()

    async def normal() -> None:
        waiting = admission.acquire(Priority.NORMAL)
        queued.set()
        await waiting
        normal_admitted.set()

    task = asyncio.ensure_future(normal())
    await queued.wait()
    assert admission.waiting(Priority.NORMAL) == 1 and not normal_admitted.is_set()
    await admission.acquire(Priority.CRITICAL)
    await admission.acquire(Priority.CRITICAL)
    assert admission.in_flight == 4
    admission.release(Priority.BULK)  # a free unreserved slot: the NORMAL one goes
    await task
    assert normal_admitted.is_set() and admission.running(Priority.NORMAL) == 1


def test_a_reserve_must_leave_slots_for_everyone() -> None:
    with pytest.raises(ValueError, match="reserve"):
        Admission(4, reserve=4)
    with pytest.raises(ValueError, match="reserve"):
        Admission(4, reserve=-1)
