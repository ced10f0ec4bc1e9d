"""The typed watch decoders on what a simulator sends during real spawns.

Every line the pod and Event reflectors received while servers started, failed and
stopped is replayed through the full parse and through the typed decoder: both leave the
same cache bytes and resourceVersions. And the cache the spawners read during those spawns
was filled by the typed decoder (the event observer sees the kept keys only).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from async_kubespawner.kube.cache import EventIndex, ObjectCache, trim_pod
from async_kubespawner.kube.reflector import ApiListerWatcher, add_event_observer
from async_kubespawner.spawner import SpawnFailed
from tests.unit.watch_replay import replay

from . import conftest
from .conftest import store_pods


@pytest.fixture
def recorded_lines(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[bytes]]:
    """Every raw watch line each kind's reflector receives, as the server framed it."""
    lines: dict[str, list[bytes]] = {}
    original = ApiListerWatcher._chunks

    async def recording(self: ApiListerWatcher, raw: Any) -> AsyncIterator[bytes]:
        pending = b""
        async for chunk in original(self, raw):
            pending += chunk
            *complete, pending = pending.split(b"\n")
            lines.setdefault(self.kind.plural, []).extend(x for x in complete if x.strip())
            yield chunk

    monkeypatch.setattr(ApiListerWatcher, "_chunks", recording)
    return lines


async def test_spawns_on_the_simulator_cache_the_same_as_a_full_parse(
    sim: Any, make_spawner: Any, kubelet: Any, recorded_lines: dict[str, list[bytes]]
) -> None:
    kubelet.fates["jupyter-bob"] = conftest.crash_loops
    kubelet.fates["jupyter-carol"] = conftest.evicted
    kubelet.fates["jupyter-dave"] = conftest.image_pull_fails
    kubelet.fates["jupyter-erin"] = conftest.notebook_exits
    seen: list[tuple[str, dict[str, Any]]] = []
    remove = add_event_observer(lambda r, event, _: seen.append((r.resource, event)))
    try:
        ready = [make_spawner(user, user_id=i) for i, user in enumerate(("alice", "frank"))]
        failing = [
            make_spawner(user, user_id=10 + i, start_timeout=300)
            for i, user in enumerate(("bob", "carol", "dave", "erin"))
        ]
        urls = await asyncio.gather(*(s.start() for s in ready))
        assert all(url.startswith("http://10.") for url in urls)
        for spawner in failing:
            with pytest.raises(SpawnFailed):
                await spawner.start()
        for spawner in ready:
            await spawner.stop()
        assert store_pods(sim) == []
        # every deletion has reached the hub's cache too
        cache: ObjectCache = (await ready[0]._pod_reflector()).sink
        for spawner in ready:
            await cache.wait_for(("default", spawner.pod_name), lambda p: p is None, 10)
    finally:
        remove()

    pods, events = recorded_lines["pods"], recorded_lines["events"]
    kinds = {json.loads(x)["type"] for x in pods}
    assert {"ADDED", "MODIFIED", "DELETED"} <= kinds
    assert len(events) >= 6
    old, new = replay(pods, lambda: ObjectCache(trim_pod))
    assert new == old
    assert set(new[0]) == {None}  # every line applied, none refused
    old_events, new_events = replay(events, EventIndex)
    assert new_events == old_events
    assert new_events[1][0][0]  # events were indexed
    # What the spawners' reflectors applied was decoded into the kept keys only.
    pod_events = [event for resource, event in seen if resource == "pods"]
    assert pod_events
    for event in pod_events:
        text = json.dumps(event)
        assert "managedFields" not in text and '"env"' not in text and "image" not in text


async def test_the_created_hook_still_gets_the_whole_create_response(
    sim: Any, make_spawner: Any
) -> None:
    """Without a hook, start() reads only the uid of the create response; with one, the
    hook gets the whole pod as the server returned it (as upstream's does)."""
    got: list[dict[str, Any]] = []
    spawner = make_spawner(after_pod_created_hook=lambda _spawner, pod: got.append(pod))
    await spawner.start()
    [pod] = got
    assert pod["metadata"]["uid"] == spawner.pod_uid
    assert pod["spec"]["containers"][0]["env"]  # the full object, not the cut one
    await spawner.stop()
    plain = make_spawner("zoe", user_id=99)
    await plain.start()
    assert plain.pod_uid == store_pods(sim)[-1]["metadata"]["uid"]
    await plain.stop()
