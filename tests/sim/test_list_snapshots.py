"""Continue pages served from a remembered list: same answers as rebuilding, O(page) work.

The first page of a paginated list is remembered (sorted, filtered references) so the
following pages are a bisect and a slice instead of a rebuild of the whole list from the
history. These tests pin that the shortcut is taken, that it answers exactly what the
rebuild would (consistent snapshot, remainingItemCount, selectors), and that it never
outlives what the real server could serve (410 after compaction or a restart).
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from kubesim.store import ListSnapshots


async def make_configmaps(v1: Any, n: int, prefix: str = "cm", **labels: str) -> None:
    for i in range(n):
        await v1.create_namespaced_config_map(
            "default", {"metadata": {"name": f"{prefix}-{i:03d}", "labels": labels}}
        )


async def page_through(v1: Any, limit: int, **kwargs: Any) -> tuple[list[list[str]], list[Any]]:
    pages, remaining, token = [], [], None
    while True:
        page = await v1.list_namespaced_config_map(
            "default", limit=limit, _continue=token, **kwargs
        )
        pages.append([c.metadata.name for c in page.items])
        remaining.append(page.metadata.remaining_item_count)
        token = page.metadata._continue
        if not token:
            return pages, remaining


def count_rebuilds(monkeypatch: pytest.MonkeyPatch, store: Any) -> list[int]:
    """Count the store-wide list builds (what each page used to cost)."""
    calls: list[int] = []
    original = store.list_refs

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(store, "list_refs", counting)
    return calls


@pytest.mark.simulator_options(root_ca_configmaps=False)  # counts configmaps
async def test_continue_pages_do_not_rebuild_the_list(simulator, api_client, monkeypatch):
    v1 = client.CoreV1Api(api_client)
    await make_configmaps(v1, 25)
    rebuilds = count_rebuilds(monkeypatch, simulator.store)
    pages, remaining = await page_through(v1, 4)
    assert len(pages) == 7
    assert [n for p in pages for n in p] == [f"cm-{i:03d}" for i in range(25)]
    assert remaining == [21, 17, 13, 9, 5, 1, None]
    assert len(rebuilds) == 1  # the first page only


@pytest.mark.simulator_options(root_ca_configmaps=False)  # counts configmaps
async def test_remembered_pages_stay_consistent_while_objects_change(simulator, api_client):
    v1 = client.CoreV1Api(api_client)
    await make_configmaps(v1, 6)
    first = await v1.list_namespaced_config_map("default", limit=2)
    await v1.delete_namespaced_config_map("cm-003", "default")
    await v1.patch_namespaced_config_map("cm-004", "default", {"data": {"changed": "yes"}})
    await v1.create_namespaced_config_map("default", {"metadata": {"name": "cm-002a"}})
    second = await v1.list_namespaced_config_map(
        "default", limit=2, _continue=first.metadata._continue
    )
    third = await v1.list_namespaced_config_map(
        "default", limit=2, _continue=second.metadata._continue
    )
    assert [c.metadata.name for c in second.items] == ["cm-002", "cm-003"]
    assert [c.metadata.name for c in third.items] == ["cm-004", "cm-005"]
    assert third.items[0].data is None  # as it was when the list began
    assert third.metadata._continue is None
    assert second.metadata.resource_version == first.metadata.resource_version


@pytest.mark.simulator_options(root_ca_configmaps=False)  # counts configmaps
async def test_selector_lists_are_remembered_separately(simulator, api_client):
    v1 = client.CoreV1Api(api_client)
    await make_configmaps(v1, 5, prefix="a", team="a")
    await make_configmaps(v1, 3, prefix="b", team="b")
    pages_a, remaining_a = await page_through(v1, 2, label_selector="team=a")
    pages_b, _ = await page_through(v1, 2, label_selector="team=b")
    pages_all, remaining_all = await page_through(v1, 3)
    assert pages_a == [["a-000", "a-001"], ["a-002", "a-003"], ["a-004"]]
    assert remaining_a == [None, None, None]  # no remainingItemCount with a selector
    assert pages_b == [["b-000", "b-001"], ["b-002"]]
    assert [n for p in pages_all for n in p] == [f"a-{i:03d}" for i in range(5)] + [
        f"b-{i:03d}" for i in range(3)
    ]
    assert remaining_all == [5, 2, None]


async def test_forgotten_list_is_rebuilt_from_history(simulator, api_client, monkeypatch):
    v1 = client.CoreV1Api(api_client)
    await make_configmaps(v1, 4, team="x")
    first = await v1.list_namespaced_config_map("default", limit=2)
    # more distinct paginated lists than are remembered push the first one out
    for i in range(ListSnapshots().max_entries + 1):
        await v1.list_namespaced_config_map("default", limit=1, label_selector=f"team in (x,y{i})")
    rebuilds = count_rebuilds(monkeypatch, simulator.store)
    second = await v1.list_namespaced_config_map(
        "default", limit=2, _continue=first.metadata._continue
    )
    assert [c.metadata.name for c in second.items] == ["cm-002", "cm-003"]
    assert len(rebuilds) == 1


async def test_restart_between_pages_is_410_even_when_remembered(simulator, api_client):
    v1 = client.CoreV1Api(api_client)
    await make_configmaps(v1, 3)
    first = await v1.list_namespaced_config_map("default", limit=1)
    await make_configmaps(v1, 1, prefix="later")  # the list's version is now behind
    simulator.faults.restart()
    with pytest.raises(ApiException) as info:
        await v1.list_namespaced_config_map("default", limit=1, _continue=first.metadata._continue)
    assert info.value.status == 410


def obj(name: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name}}


def test_page_after_bisects_and_counts_what_remains():
    snaps = ListSnapshots()
    items = [obj(n) for n in ("a", "b", "c", "d", "e")]
    snaps.remember(("q",), 7, items, now=0.0)
    page, remaining = snaps.page_after(("q",), 7, ("ns", "b"), 2, oldest_rv=0, now=1.0)
    assert [o["metadata"]["name"] for o in page] == ["c", "d"]
    assert remaining == 1
    page, remaining = snaps.page_after(("q",), 7, ("ns", "d"), 0, oldest_rv=0, now=1.0)
    assert [o["metadata"]["name"] for o in page] == ["e"] and remaining == 0
    assert snaps.page_after(("q",), 8, ("ns", "b"), 2, oldest_rv=0, now=1.0) is None
    assert snaps.page_after(("other",), 7, ("ns", "b"), 2, oldest_rv=0, now=1.0) is None


def test_remembered_lists_expire_by_age_compaction_and_count():
    snaps = ListSnapshots(max_entries=2, max_age=10.0)
    snaps.remember(("q",), 1, [obj("a"), obj("b")], now=0.0)
    assert snaps.page_after(("q",), 1, ("ns", "a"), 1, oldest_rv=0, now=11.0) is None
    snaps.remember(("q",), 2, [obj("a"), obj("b")], now=0.0)
    assert snaps.page_after(("q",), 2, ("ns", "a"), 1, oldest_rv=3, now=1.0) is None
    for rv in (3, 4, 5):
        snaps.remember(("q",), rv, [obj("a"), obj("b")], now=0.0)
    assert snaps.page_after(("q",), 3, ("ns", "a"), 1, oldest_rv=0, now=1.0) is None
    assert snaps.page_after(("q",), 5, ("ns", "a"), 1, oldest_rv=0, now=1.0) is not None
