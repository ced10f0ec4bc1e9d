"""The scheduler lets watch streams run while it works through a burst of pending pods.

Store writes never suspend, so a scheduler that binds a whole burst in one loop
iteration holds back every watch (the Scheduled Events, the bindings) until the burst
is done: Events reached watchers tens of milliseconds late in a spawn storm. This pins
the fix structurally, without timing: a watcher must hear of the first Scheduled Event
while most of the burst is still unbound.
"""

from __future__ import annotations

from typing import Any

from kubesim.cluster.config import ClusterConfig

from .podwatch import pod_manifest

BURST = 30


def bound_pods(store: Any) -> int:
    pods, _ = store.list_refs(store.resource("pods"), "default")
    return sum(1 for p in pods if (p.get("spec") or {}).get("nodeName"))


async def test_watchers_hear_scheduled_events_during_a_burst(cluster_factory):
    sim = await cluster_factory(ClusterConfig.fast())
    store = sim.store
    events = store.resource("events")
    watch = store.watch(events, "default", resource_version=str(store.resource_version))
    pods = store.resource("pods")
    for i in range(BURST):  # one loop iteration: the scheduler sees them all pending at once
        await store.create(pods, "default", pod_manifest(f"burst-{i}"))
    bound_when_heard = None
    async for event in watch:
        if event.object.get("reason") == "Scheduled":
            bound_when_heard = bound_pods(store)
            break
    watch.close()
    assert bound_when_heard is not None
    assert bound_when_heard < BURST // 2, (
        f"{bound_when_heard} of {BURST} bound before the first event"
    )
