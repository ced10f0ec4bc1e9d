"""After an outage, poll() is right again within seconds: while the pod reflector is cut
off beyond ``reflector_stale_after``, poll() reads the pod directly; and the reflector
resumes at the API server's first answer (a probe about once a second), not after its
backoff."""

from __future__ import annotations

from async_kubespawner.kube.reflector import reflectors

from .conftest import NAMESPACE


def pod_reflector():
    [reflector] = [r for r in reflectors() if r.resource == "pods"]
    return reflector


async def delete_in_store(sim, name: str) -> None:
    await sim.store.delete(sim.store.resource("pods"), NAMESPACE, name, grace_period_seconds=0)


async def test_a_cut_off_cache_is_not_trusted_past_the_bound(sim, make_spawner):
    """The watch endpoint fails (5xx) while plain reads work: the cache cannot hear the
    deletion, so poll() asks the API server once instead of reporting a ghost."""
    spawner = make_spawner(reflector_stale_after=0)
    await spawner.start()
    reflector = pod_reflector()
    sim.faults.fail(503, verb="watch", resource="pods")
    sim.faults.fail(503, verb="list", resource="pods")
    sim.faults.close_watches()
    assert await reflector.wait_connection(False, 10)
    await delete_in_store(sim, spawner.pod_name)
    assert reflector.sink.get(spawner._pod_key) is not None  # the stale cache says running
    gets = sim.counters.count("get", "pods")
    assert await spawner.poll() == 1
    assert sim.counters.count("get", "pods") == gets + 1  # one direct read, no retries


async def test_a_connected_cache_is_trusted_and_costs_no_request(sim, make_spawner):
    spawner = make_spawner(reflector_stale_after=0)
    await spawner.start()
    gets = sim.counters.count("get", "pods")
    assert await spawner.poll() is None
    assert sim.counters.count("get", "pods") == gets


async def test_while_the_api_is_down_poll_falls_back_to_the_cache(sim, make_spawner):
    spawner = make_spawner(reflector_stale_after=0)
    await spawner.start()
    reflector = pod_reflector()
    sim.faults.outage(3600)  # connections reset; every watch closed
    assert await reflector.wait_connection(False, 10)
    assert await spawner.poll() is None  # unknown: the cache's "running" stands
    assert reflector.stale_for() > 0
    sim.faults.clear()


async def test_a_pod_deleted_right_after_an_outage_is_seen_within_the_bound(sim, make_spawner):
    spawner = make_spawner(reflector_backoff_max=30)
    await spawner.start()
    reflector = pod_reflector()
    sim.faults.outage(3600)
    assert await reflector.wait_connection(False, 10)
    sim.faults.clear()
    await delete_in_store(sim, spawner.pod_name)
    # Event-driven, bounded by the target (5 s): the cache hears the deletion once the
    # reflector has resumed.
    await reflector.sink.wait_for(spawner._pod_key, lambda p: p is None, 5)
    assert await spawner.poll() == 1
    assert reflector.stale_for() == 0
