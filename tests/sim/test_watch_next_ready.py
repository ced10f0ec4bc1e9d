"""``Watch.next_ready``: the queued head without a coroutine, and nothing else.

Why: the in-process controllers (scheduler, kubelet) take the rest of a burst with it
after one ``async for`` step. It must hand out exactly what ``next_event`` would have
(same events, same order, same delivered count) and leave every other case (an empty
queue, a scripted close pending, a closed watch) to ``next_event``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kubesim.cluster.storeview import list_and_watch
from kubesim.store import Store


def configmap(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {}}


async def watch_of_three_creates() -> Any:
    """A watch opened on an empty store, with the ADDED events of a, b and c queued."""
    store = Store()
    cms = store.resource("configmaps")
    watch = store.watch(cms, "default", resource_version=str(store.resource_version))
    for name in ("a", "b", "c"):
        await store.create(cms, "default", configmap(name))
    return watch


async def test_next_ready_hands_out_the_queue_in_order_then_none() -> None:
    watch = await watch_of_three_creates()
    first = await watch.next_event()
    assert first is not None and first.object["metadata"]["name"] == "a"
    rest = [watch.next_ready(), watch.next_ready()]
    assert [e.object["metadata"]["name"] for e in rest if e is not None] == ["b", "c"]
    assert watch.delivered == 3
    assert watch.next_ready() is None  # empty: next_event waits (or sends a BOOKMARK)
    watch.close()


async def test_next_ready_leaves_a_pending_scripted_close_to_next_event() -> None:
    watch = await watch_of_three_creates()
    watch.close_after(1)
    assert watch.next_ready() is None  # the fault's count is next_event's to keep
    got = await watch.next_event()
    assert got is not None and got.object["metadata"]["name"] == "a"
    assert await watch.next_event() is None  # closed after one, as scripted
    assert watch.next_ready() is None


class WatchStarted:
    """The store as a controller sees it, telling when the controller's watch is open."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.started = asyncio.Event()

    def list(self, rt: Any) -> Any:
        return self.store.list(rt)

    def watch(self, rt: Any, **options: Any) -> Any:
        watch = self.store.watch(rt, **options)
        self.started.set()
        return watch


async def test_a_controller_sees_every_event_of_a_burst_in_order() -> None:
    store = Store()
    cms = store.resource("configmaps")
    seen: list[tuple[str, str]] = []
    done = asyncio.Event()

    def handle(kind: str, obj: dict[str, Any]) -> None:
        seen.append((kind, obj["metadata"]["name"]))
        if kind == "DELETED" and obj["metadata"]["name"] == "c":
            done.set()

    view = WatchStarted(store)
    task = asyncio.ensure_future(list_and_watch(view, cms, handle))
    async with asyncio.timeout(10):
        await view.started.wait()  # the controller has listed and watches
    for name in ("a", "b", "c"):
        await store.create(cms, "default", configmap(name))
    for name in ("a", "b", "c"):
        await store.delete(cms, "default", name)
    async with asyncio.timeout(10):
        await done.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    ours = [entry for entry in seen if entry[1] in ("a", "b", "c")]
    assert ours == [("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c"),
                    ("DELETED", "a"), ("DELETED", "b"), ("DELETED", "c")]
