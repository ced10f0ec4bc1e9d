"""A hub restarted with many pods answers poll() page by page, never wrongly.

The pod cache's first list is applied page by page: a poll whose pod is on a page
already applied answers (running) before the list is complete; a poll whose pod is not
listed yet waits, and answers "stopped" only once the whole list is in (the pod may be
on the last page). A relist after a 410 replaces the old content only once complete, so
no key vanishes and reappears for a poller. The simulator holds each list page until
the test releases it: every step is synchronised on events.
"""

from __future__ import annotations

import asyncio

from async_kubespawner.kube.cache import ObjectCache, trim_pod
from async_kubespawner.kube.client import PODS, KubeApi
from async_kubespawner.kube.reflector import (
    Reflector,
    ReflectorSettings,
    get_reflector,
    reflectors,
    stop_reflectors,
)

from .conftest import NAMESPACE

PAGED = ReflectorSettings(
    watch_timeout=60,
    backoff_initial=0.02,
    backoff_max=0.2,
    list_page_size=2,
    first_page_size=1,
    partial_first_list=True,
)
SELECTOR = "component=singleuser-server"


def pod_body(name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"component": "singleuser-server"}},
        "spec": {"containers": [{"name": "notebook", "image": "jupyter/base:1"}]},
    }


async def make_pods(sim, names: list[str]) -> None:
    for name in names:
        await sim.store.create(sim.store.resource("pods"), NAMESPACE, pod_body(name))


def listed_names(sim) -> list[str]:
    """The pods in the order the API lists them."""
    items, _ = sim.store.list(sim.store.resource("pods"), NAMESPACE)
    return [p["metadata"]["name"] for p in items]


def key(name: str) -> tuple[str, str]:
    return (NAMESPACE, name)


async def page_applied(reflector: Reflector[ObjectCache], n: int) -> None:
    assert await reflector.wait_listed(lambda: reflector.pages_loaded >= n, 10)


async def test_the_first_list_fills_the_cache_page_by_page(sim):
    await make_pods(sim, [f"jupyter-p{i}" for i in range(7)])
    order = listed_names(sim)  # pages: [1], [2, 3], [4, 5], [6, 7]
    api = KubeApi(sim.api_client(), request_timeout=5, retry_timeout=10)
    gate = sim.faults.hold(verb="list", resource="pods")
    try:
        reflector = get_reflector(
            api, PODS, NAMESPACE, lambda: ObjectCache(trim_pod),
            label_selector=SELECTOR, settings=PAGED,
        )
        cache = reflector.sink
        first, last = key(order[0]), key(order[-1])
        absent = asyncio.ensure_future(reflector.wait_listed(lambda: key("nobody") in cache, 10))
        on_last = asyncio.ensure_future(reflector.wait_listed(lambda: last in cache, 10))

        gate.release()
        await page_applied(reflector, 1)
        assert not reflector.synced
        assert list(cache.keys()) == [first]  # the small first page: one pod
        assert await reflector.wait_listed(lambda: first in cache, 10)
        for n, names in ((2, order[1:3]), (3, order[3:5])):
            gate.release()
            await page_applied(reflector, n)
            assert all(key(name) in cache for name in names)
            assert last not in cache
            assert not absent.done() and not on_last.done()
            assert not reflector.synced
        gate.release()
        assert await on_last
        assert await absent  # answered by the end of the list, not by a page
        assert reflector.synced
        assert key("nobody") not in cache
        assert sorted(cache.keys()) == sorted(key(n) for n in order)
    finally:
        gate.open()
        await stop_reflectors()
        await api.close()


async def test_a_relist_replaces_the_old_content_only_once_complete(sim):
    await make_pods(sim, [f"jupyter-r{i}" for i in range(5)])
    api = KubeApi(sim.api_client(), request_timeout=5, retry_timeout=10)
    try:
        reflector = get_reflector(
            api, PODS, NAMESPACE, lambda: ObjectCache(trim_pod),
            label_selector=SELECTOR, settings=PAGED,
        )
        assert await reflector.wait_synced(10)
        cache = reflector.sink
        before = sorted(cache.keys())
        heard: dict[str, list[bool]] = {}
        for k in before:
            cache.listen(k, lambda obj, name=k[1]: heard.setdefault(name, []).append(obj is None))
        gate = sim.faults.hold(verb="list", resource="pods")
        # The watch expires (410): the reflector must relist; meanwhile one pod is
        # deleted and one created (what the relist must catch).
        sim.faults.expire_next(verb="watch")
        sim.faults.close_watches()
        gone = before[0][1]
        await sim.store.delete(sim.store.resource("pods"), NAMESPACE, gone, grace_period_seconds=0)
        await make_pods(sim, ["jupyter-r9"])
        await gate.wait_arrived(1)
        gate.release()
        await gate.wait_arrived(2)  # page 1 of the relist was taken in; page 2 is held
        # Nothing changed for readers: every old key still there, the new one not yet.
        assert sorted(cache.keys()) == before
        assert reflector.pages_loaded == 0
        gate.open()
        await cache.wait_for(key(gone), lambda p: p is None, 10)
        await cache.wait_for(key("jupyter-r9"), lambda p: p is not None, 10)
        await cache.listeners_idle()
        assert heard.get(gone) == [True]  # removed once, at the end
        assert not any(any(flags) for name, flags in heard.items() if name != gone)
        assert reflector.synced
    finally:
        await stop_reflectors()
        await api.close()


async def test_polls_after_a_restart_answer_listed_pods_early_never_stopped_early(
    sim, make_spawner
):
    users = [f"user{i:02d}" for i in range(7)]
    config = {"reflector_list_page_size": 2}
    for user in users:
        await make_spawner(user, **config).start()
    await stop_reflectors()  # the hub restarts: a fresh pod cache
    order = [name for name in listed_names(sim) if name.startswith("jupyter-user")]
    spawners = {user: make_spawner(user, **config) for user in users}
    never_started = make_spawner("nobody", **config)

    gate = sim.faults.hold(verb="list", resource="pods")
    try:
        polls = {user: asyncio.ensure_future(s.poll()) for user, s in spawners.items()}
        stopped = asyncio.ensure_future(never_started.poll())
        await gate.wait_arrived(1)
        [reflector] = [r for r in reflectors() if r.resource == "pods"]
        cache = reflector.sink
        # first page: min(POD_FIRST_PAGE_SIZE, 2) = 2 pods; then pages of 2
        gate.release()
        await page_applied(reflector, 1)
        listed = [u for u, s in spawners.items() if s._pod_key in cache]
        assert len(listed) == 2
        # their polls answer while the rest of the list is still held back
        done, _ = await asyncio.wait([polls[u] for u in listed], timeout=10)
        assert len(done) == 2 and all(t.result() is None for t in done)
        assert not reflector.synced
        while not reflector.synced:
            assert not stopped.done()  # an absence means nothing before the end
            for user, task in polls.items():
                if task.done():
                    assert task.result() is None
                    assert spawners[user]._pod_key in cache
            gate.release()
            await reflector.wait_listed(
                lambda n=reflector.pages_loaded + 1: reflector.pages_loaded >= n, 10
            )
        assert [await polls[u] for u in users] == [None] * len(users)
        assert await stopped == 1
        assert len(order) == len(users)
    finally:
        gate.open()


async def test_a_first_list_restarted_by_an_expired_continue_token_ends_right(sim):
    """A continue token expires between pages (410): the list starts over; what earlier
    pages brought stays readable meanwhile, and the complete list decides the end."""
    await make_pods(sim, [f"jupyter-c{i}" for i in range(5)])
    order = listed_names(sim)
    api = KubeApi(sim.api_client(), request_timeout=5, retry_timeout=10)
    gate = sim.faults.hold(verb="list", resource="pods")
    try:
        reflector = get_reflector(
            api, PODS, NAMESPACE, lambda: ObjectCache(trim_pod),
            label_selector=SELECTOR, settings=PAGED,
        )
        cache = reflector.sink
        gate.release()
        await page_applied(reflector, 1)
        assert key(order[0]) in cache
        await sim.store.delete(
            sim.store.resource("pods"), NAMESPACE, order[0], grace_period_seconds=0
        )
        sim.faults.expire_next(verb="list")
        gate.release()  # page 2 is answered 410 Expired: the list starts over
        await gate.wait_arrived(3)
        assert key(order[0]) in cache  # listed once, not yet contradicted by a full list
        assert not reflector.synced
        gate.open()
        assert await reflector.wait_synced(10)
        assert sorted(cache.keys()) == sorted(key(n) for n in order[1:])
        assert sim.counters.count("list", "pods", status=410) == 1
    finally:
        gate.open()
        await stop_reflectors()
        await api.close()
