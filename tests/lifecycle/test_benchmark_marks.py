"""The benchmark simulator's commit marks, fed by the store's public commit listener.

The storm's overhead figures subtract these marks from the hub's own clock, so a write
that makes a pod Ready must be marked exactly once per transition, whatever else the
pod's later writes change. No timing assertions: only which writes are marked.
"""

from __future__ import annotations

from typing import Any

from benchmarks.sim_host import MarkingStore


def ready(status: str) -> dict[str, Any]:
    return {"status": {"conditions": [{"type": "Ready", "status": status}]}}


async def test_ready_transitions_deletions_and_events_are_marked_once() -> None:
    store = MarkingStore()
    pods = store.resource("pods")
    events = store.resource("events")
    pod = {"metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "x"}]}}
    created = await store.create(pods, "default", pod)
    uid = created["metadata"]["uid"]
    marks = store.marks()
    assert marks["ready"] == []

    await store.patch(pods, "default", "p", ready("True"), "merge", subresource="status")
    await store.patch(pods, "default", "p", {"metadata": {"labels": {"a": "b"}}}, "merge")
    assert [m[:3] for m in store.marks()["ready"]] == [("default", "p", uid)]

    await store.patch(pods, "default", "p", ready("False"), "merge", subresource="status")
    await store.patch(pods, "default", "p", ready("True"), "merge", subresource="status")
    assert [m[:3] for m in store.marks()["ready"]] == [("default", "p", uid)] * 2

    await store.delete(pods, "default", "p", grace_period_seconds=0)
    assert [m[:3] for m in store.marks()["deleted"]] == [("default", "p", uid)]

    event = await store.create(events, "default", {
        "metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"},
        "reason": "Started", "message": "m", "type": "Normal",
    })
    assert list(store.marks()["events"]) == [event["metadata"]["uid"]]
    await store.close()
