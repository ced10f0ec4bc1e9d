"""The store's commit listeners: called once per commit, before any watcher gets the event.

Instrumentation (the benchmarks' commit marks) and the RBAC decision cache rely on this
public hook instead of overriding the store's private commit step.
"""

from __future__ import annotations

from typing import Any

from kubesim.store import Store


async def test_listeners_see_every_commit_before_a_watcher_is_written_to() -> None:
    store = Store(watch_flush_interval=0)  # one write per event, so each can be counted
    cms = store.resource("configmaps")
    watch = store.watch(cms, "default", resource_version=str(store.resource_version))
    written: list[bytes] = []

    def write(line: bytes) -> bool:
        written.append(line)
        return True

    watch.attach_writer(write)
    seen: list[tuple[str, str, str, int]] = []

    def listener(rt: Any, event_type: str, obj: dict[str, Any]) -> None:
        # how many lines the watcher had been given when the listener ran
        seen.append((rt.plural, event_type, obj["metadata"]["name"], len(written)))

    store.commit_listeners.append(listener)
    await store.create(cms, "default", {"metadata": {"name": "a"}})
    await store.patch(cms, "default", "a", {"data": {"k": "v"}}, "merge")
    await store.delete(cms, "default", "a")
    assert seen == [
        ("configmaps", "ADDED", "a", 0),
        ("configmaps", "MODIFIED", "a", 1),
        ("configmaps", "DELETED", "a", 2),
    ]
    assert len(written) == 3
    watch.close()
    await store.close()
