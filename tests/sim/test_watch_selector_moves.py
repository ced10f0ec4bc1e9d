"""A label-selector watch sees status writes and label moves exactly as selectors say.

A status write keeps the stored labels (the same map), so the watch answers "did it
match before?" from the match it just made; a metadata write that changes labels must
still be checked against the old labels, turning into ADDED or DELETED.
"""

from __future__ import annotations

import json
from typing import Any

from kubesim.store import Store


def _events(written: list[bytes]) -> list[tuple[str, str, Any]]:
    out = []
    for line in written:
        event = json.loads(line)
        obj = event["object"]
        out.append((event["type"], obj["metadata"]["name"], (obj.get("status") or {}).get("phase")))
    return out


async def test_status_writes_and_label_moves_through_a_label_selector() -> None:
    store = Store(watch_flush_interval=0)  # each event written at its commit, one by one
    pods = store.resource("pods")
    body = {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    for name, team in (("in", "a"), ("out", "b")):
        await store.create(
            pods, "default", {"metadata": {"name": name, "labels": {"team": team}}, **body}
        )
    watch = store.watch(
        pods, "default", resource_version=str(store.resource_version), label_selector="team=a"
    )
    written: list[bytes] = []

    def write(line: bytes) -> bool:
        written.append(line)
        return True

    watch.attach_writer(write)
    for name in ("in", "out"):
        await store.patch(
            pods, "default", name, {"status": {"phase": "Running"}}, "merge", subresource="status"
        )
    assert _events(written) == [("MODIFIED", "in", "Running")]
    await store.patch(pods, "default", "out", {"metadata": {"labels": {"team": "a"}}}, "merge")
    await store.patch(pods, "default", "in", {"metadata": {"labels": {"team": "b"}}}, "merge")
    await store.patch(
        pods, "default", "in", {"status": {"phase": "Succeeded"}}, "merge", subresource="status"
    )
    await store.patch(
        pods, "default", "out", {"status": {"phase": "Failed"}}, "merge", subresource="status"
    )
    assert _events(written)[1:] == [
        ("ADDED", "out", "Running"),
        ("DELETED", "in", "Running"),
        ("MODIFIED", "out", "Failed"),
    ]
    watch.close()
    await store.close()
