"""Two operator replicas: one leads; when it dies mid-spawn, the other finishes the work
without duplicating or orphaning anything."""

from __future__ import annotations

import asyncio
from typing import Any

from async_kubespawner.operator.kubeio import LEASES

from .conftest import NAMESPACE, OperatorHarness
from .servers import create_server, phase


async def wait_until(predicate: Any, event: asyncio.Event | None = None, timeout: float = 20) -> None:  # noqa: ASYNC109
    """Wait for a condition that a callback sets (the elector's on_change)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            assert event is not None
            event.clear()
            await event.wait()


def watch_leadership(*operators: Any) -> asyncio.Event:
    changed = asyncio.Event()
    for operator in operators:
        operator.elector.change_listeners.append(lambda value: changed.set())
    return changed


async def test_second_replica_takes_over_mid_spawn_without_duplicates(
    harness: OperatorHarness,
) -> None:
    a = await harness.start_operator("op-a")
    changed = watch_leadership(a)
    await wait_until(lambda: a.is_leader, changed)
    b = await harness.start_operator("op-b")
    changed = watch_leadership(a, b)
    await b.wait_synced()
    assert not b.is_leader

    # op-a dies after creating the server's first child (its PVC), before the rest.
    died = asyncio.Event()
    ensure_child = a.reconciler._ensure_child
    created = 0

    async def ensure_then_die(*args: Any, **kwargs: Any) -> Any:
        nonlocal created
        if created == 1:
            died.set()
            await asyncio.Event().wait()  # hangs until killed
        result = await ensure_child(*args, **kwargs)
        created += 1
        return result

    a.reconciler._ensure_child = ensure_then_die  # type: ignore[method-assign]
    await create_server(harness)
    async with asyncio.timeout(20):
        await died.wait()
    assert [p["metadata"]["name"] for p in harness.store_items("persistentvolumeclaims")] == [
        "claim-alice"]
    assert harness.store_items("pods") == []
    await a.kill()
    # (how soon: benchmarks/operator_storm.py --failover measures it with the real timings)
    await wait_until(lambda: b.is_leader, changed)
    ready = await harness.wait_server("alice", lambda s: phase(s) == "Ready")
    assert ready is not None
    uid = ready["metadata"]["uid"]
    for plural in ("pods", "persistentvolumeclaims", "services"):
        owned = [o for o in harness.store_items(plural)
                 if any(r["uid"] == uid for r in o["metadata"].get("ownerReferences") or ())]
        assert len(owned) == 1, plural
    lease = await harness.api.get(LEASES, NAMESPACE, "async-kubespawner-operator")
    assert lease["spec"]["holderIdentity"] == "op-b"
    assert lease["spec"]["leaseTransitions"] == 1


async def test_only_one_replica_leads_and_a_clean_stop_hands_over_at_once(
    harness: OperatorHarness,
) -> None:
    # A lease far longer than the test may wait: a hand-over can only come from release.
    from async_kubespawner.operator.leader import LeaseSettings

    slow = LeaseSettings(lease_duration=120.0, renew_deadline=60.0, retry_period=0.25)
    a = await harness.start_operator("op-a", lease=slow)
    b = await harness.start_operator("op-b", lease=slow)
    changed = watch_leadership(a, b)
    await wait_until(lambda: a.is_leader or b.is_leader, changed)
    leader, standby = (a, b) if a.is_leader else (b, a)
    for i in range(5):
        await create_server(harness, f"user{i}", user=f"user{i}")
    for i in range(5):
        await harness.wait_server(f"user{i}", lambda s: phase(s) == "Ready")
    assert not (a.is_leader and b.is_leader)
    assert standby.reconciles == 0
    assert len(harness.store_items("pods")) == 5
    await leader.stop()  # releases the Lease
    await wait_until(lambda: standby.is_leader, changed, timeout=30)
    lease = await harness.api.get(LEASES, NAMESPACE, "async-kubespawner-operator")
    assert lease["spec"]["holderIdentity"] == standby.identity


async def test_release_frees_the_lease_even_after_a_renewal_it_never_saw_answered(
    harness: OperatorHarness,
) -> None:
    """A shutdown can cancel a renewal after its PUT was sent: the elector's copy of the
    Lease is then one write behind, and releasing with it is a conflict. The release must
    read the Lease again and free it, or every standby waits out the whole lease."""
    from async_kubespawner.operator.leader import LeaderElector, LeaseSettings

    settings = LeaseSettings(lease_duration=120.0, renew_deadline=60.0, retry_period=0.25)
    elector = LeaderElector(harness.api, NAMESPACE, "op-x", settings)
    assert await elector.try_acquire_or_renew()
    # The renewal whose answer was lost: the same identity renews the Lease, the
    # elector never sees the answer, so its copy is one write behind.
    lost_answer = LeaderElector(harness.api, NAMESPACE, "op-x", settings)
    assert await lost_answer.try_acquire_or_renew()
    await elector.release()
    lease = await harness.api.get(LEASES, NAMESPACE, settings.name)
    assert lease["spec"]["holderIdentity"] == ""
