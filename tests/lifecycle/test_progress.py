"""The progress log: replay for late joiners, several listeners, percentages, patience."""

import asyncio
import gc

from async_kubespawner.lifecycle.progress import PROGRESS_CEILING, SpawnProgress


def k8s_event(uid: str, message: str, type_: str = "Normal") -> dict:
    return {
        "metadata": {"uid": uid, "name": f"jupyter-alice.{uid}", "namespace": "ns"},
        "involvedObject": {"kind": "Pod", "name": "jupyter-alice", "uid": "pod-1"},
        "reason": "Scheduled",
        "message": message,
        "type": type_,
        "lastTimestamp": "2026-11-24T06:00:00Z",
    }


async def collect(log: SpawnProgress) -> list[dict]:
    return [m async for m in log.follow()]


async def test_two_listeners_and_a_late_joiner_see_the_same_sequence():
    log = SpawnProgress()
    first = asyncio.create_task(collect(log))
    second = asyncio.create_task(collect(log))
    log.add_event(k8s_event("e1", "Successfully assigned ns/jupyter-alice to node-1"))
    await asyncio.sleep(0)
    log.add_event(k8s_event("e2", "Pulling image", "Normal"))
    log.add_event(k8s_event("e2", "Pulling image", "Normal"))  # repeated: shown once
    log.push("Restoring your files")
    log.add_event(k8s_event("e3", "Back-off pulling image", "Warning"))
    late = asyncio.create_task(collect(log))
    log.finish()
    log.push("after the end is ignored")
    a, b, c = await first, await second, await late
    assert a == b == c
    assert [m["message"] for m in a] == [
        "2026-11-24T06:00:00Z [Normal] Successfully assigned ns/jupyter-alice to node-1",
        "2026-11-24T06:00:00Z [Normal] Pulling image",
        a[2]["message"],
        "2026-11-24T06:00:00Z [Warning] Back-off pulling image",
    ]
    assert a[2]["message"].endswith("[Normal] Restoring your files")
    assert a[0]["raw_event"]["metadata"]["uid"] == "e1"
    assert "raw_event" not in a[2]
    progress = [m["progress"] for m in a]
    assert progress == sorted(progress)
    assert progress[0] == 30 and progress[-1] < PROGRESS_CEILING


async def test_listener_after_finish_gets_everything_then_stops():
    log = SpawnProgress()
    log.add_event(k8s_event("e1", "one"))
    log.finish()
    assert [m["raw_event"]["message"] for m in await collect(log)] == ["one"]


async def test_progress_approaches_but_never_reaches_the_ceiling():
    log = SpawnProgress()
    for i in range(50):
        log.push(f"step {i}")
    log.finish()
    values = [m["progress"] for m in await collect(log)]
    assert max(values) <= PROGRESS_CEILING
    assert values[-1] >= 89


async def test_explicit_progress_is_clamped_and_monotonic():
    log = SpawnProgress()
    log.push("halfway", progress=50)
    log.push("back?", progress=10)
    log.push("too far", progress=150)
    log.finish()
    assert [m["progress"] for m in await collect(log)] == [50, 50, PROGRESS_CEILING]


async def test_patience_messages_follow_the_threshold_and_frequency():
    log = SpawnProgress(
        slow_spawn_message="Be patient: {seconds} seconds",
        slow_spawn_message_threshold=0.05,
        slow_spawn_message_frequency=0.5,
    )
    listener = log.follow()
    first = await anext(listener)  # woken by the timer, not by polling
    assert "Be patient: 0 seconds" in first["message"]
    log.finish()
    assert [m async for m in listener] == []
    assert len(log.messages) == 1


async def test_patience_disabled_with_zero_threshold():
    log = SpawnProgress(slow_spawn_message="x", slow_spawn_message_threshold=0)
    assert log._slow_handle is None
    log.finish()


async def test_bad_message_template_does_not_raise():
    log = SpawnProgress(slow_spawn_message="{nope}", slow_spawn_message_threshold=0.01)
    message = await anext(log.follow())
    assert message["message"].endswith("{nope}")
    log.finish()


async def test_listeners_get_their_own_copies_and_the_log_holds_no_dicts():
    """A finished spawn's log stays until the next spawn: as bytes it costs the collector
    nothing, and no listener can change what the next one sees."""
    log = SpawnProgress()
    events = [k8s_event(f"e{i}", f"step {i}") for i in range(500)]
    gc.collect()
    before = len(gc.get_objects())
    for event in events:
        log.add_event(event)
    log.finish()
    gc.collect()
    assert len(gc.get_objects()) - before < 50
    first = await collect(log)
    first[0]["message"] = "changed by a listener"
    first[0]["raw_event"]["reason"] = "changed"
    second = await collect(log)
    assert second[0]["raw_event"] == events[0]
    assert "step 0" in second[0]["message"] and len(second) == 500
