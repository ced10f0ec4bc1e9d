"""The reflector parses and trims each list page in one step with the cyclic GC paused,
and always leaves the collector as it found it."""

from __future__ import annotations

import gc
import json
from typing import Any

import pytest

from async_kubespawner.kube.cache import ObjectCache, trim_pod
from async_kubespawner.kube.reflector import Reflector


def pod(name: str, rv: str) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "resourceVersion": rv, "uid": name},
        "spec": {"containers": [{"name": "notebook", "env": [{"name": "TOKEN", "value": "x"}]}]},
        "status": {"phase": "Running"},
    }


class PagedSource:
    """Serves a list in pages of raw JSON through the reflector's ``decode`` (a
    lister-watcher that only lists)."""

    name = "pods@default"
    resource = "pods"
    namespace = "default"

    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages = pages

    def watch(self, **kw: Any) -> Any:
        raise AssertionError("not watched in these tests")

    def server_answered(self) -> Any:
        raise AssertionError("not waited for in these tests")

    async def list_page(self, **kw: Any) -> dict[str, Any]:
        index = int(kw.get("continue_token") or 0)
        raw = json.dumps(self.pages[index]).encode()
        decode = kw["decode"]
        return decode(raw)


class RecordingCache(ObjectCache):
    """Notes whether the collector was enabled while each object was trimmed."""

    def __init__(self) -> None:
        super().__init__(trim_pod)
        self.gc_enabled_while_trimming: list[bool] = []

    def trim(self, obj: dict[str, Any]) -> Any:
        self.gc_enabled_while_trimming.append(gc.isenabled())
        if obj["metadata"]["name"] == "poison":
            raise ValueError("cannot trim this one")
        return super().trim(obj)


def two_pages() -> list[dict[str, Any]]:
    return [
        {"metadata": {"continue": "1"}, "items": [pod("a", "1"), pod("b", "2")]},
        {"metadata": {"resourceVersion": "7"}, "items": [pod("c", "3")]},
    ]


async def test_pages_are_trimmed_with_gc_paused_and_gc_restored() -> None:
    cache = RecordingCache()
    reflector = Reflector(PagedSource(two_pages()), cache)
    assert gc.isenabled()
    await reflector._list()
    assert gc.isenabled()
    assert cache.gc_enabled_while_trimming == [False, False, False]
    assert sorted(k[1] for k in cache.keys()) == ["a", "b", "c"]
    assert reflector.resource_version == "7"
    # trimmed on arrival: the env (with its token) is not kept
    assert "env" not in json.dumps(cache.get(("default", "a")))


async def test_gc_is_restored_when_a_page_cannot_be_trimmed() -> None:
    cache = RecordingCache()
    pages = [{"metadata": {"resourceVersion": "3"}, "items": [pod("poison", "1")]}]
    reflector = Reflector(PagedSource(pages), cache)
    with pytest.raises(ValueError, match="cannot trim"):
        await reflector._list()
    assert gc.isenabled()


async def test_a_hub_that_disabled_gc_keeps_it_disabled() -> None:
    cache = RecordingCache()
    reflector = Reflector(PagedSource(two_pages()), cache)
    gc.disable()
    try:
        await reflector._list()
        assert not gc.isenabled()
    finally:
        gc.enable()


class OrderedSource(PagedSource):
    """Records when each page is asked for, in the order things happen."""

    def __init__(self, pages: list[dict[str, Any]], order: list[str]) -> None:
        super().__init__(pages)
        self.order = order

    async def list_page(self, **kw: Any) -> dict[str, Any]:
        self.order.append(f"ask page {int(kw.get('continue_token') or 0)}")
        return await super().list_page(**kw)


class OrderedCache(ObjectCache):
    def __init__(self, order: list[str]) -> None:
        super().__init__(trim_pod)
        self.order = order

    def trim(self, obj: dict[str, Any]) -> Any:
        self.order.append(f"trim {obj['metadata']['name']}")
        return super().trim(obj)


@pytest.mark.parametrize("partial", [True, False])
async def test_the_next_page_is_asked_for_before_this_one_is_parsed(partial: bool) -> None:
    """Only a page's list metadata is read before the next page is requested: the server
    prepares page k+1 while page k is parsed and trimmed (first lists and relists)."""
    from async_kubespawner.kube.reflector import ReflectorSettings

    order: list[str] = []
    pages = two_pages()
    pages[1]["metadata"]["continue"] = "2"
    pages.append({"metadata": {"resourceVersion": "9"}, "items": [pod("d", "4")]})
    reflector = Reflector(OrderedSource(pages, order), OrderedCache(order),
                          settings=ReflectorSettings(partial_first_list=partial))
    await reflector._list()
    assert order == ["ask page 0", "ask page 1", "trim a", "trim b", "ask page 2", "trim c",
                     "trim d"]
    assert reflector.resource_version == "9"
    assert sorted(k[1] for k in reflector.sink.keys()) == ["a", "b", "c", "d"]


async def test_a_source_that_returns_parsed_items_is_trimmed_too() -> None:
    """A lister-watcher that hands back parsed pages (not through ``decode``)."""

    class ParsedSource(PagedSource):
        async def list_page(self, **kw: Any) -> dict[str, Any]:
            return self.pages[int(kw.get("continue_token") or 0)]

    cache = RecordingCache()
    reflector = Reflector(ParsedSource(two_pages()), cache)
    await reflector._list()
    assert cache.gc_enabled_while_trimming == [False, False, False]
    assert "env" not in json.dumps(cache.get(("default", "c")))


async def test_a_restarted_first_list_drops_what_the_complete_list_lacks() -> None:
    """A first list loaded page by page that is restarted (its continue token expired)
    removes what only the abandoned attempt had listed, and keeps no copy of the items."""
    from async_kubespawner.kube.errors import Gone
    from async_kubespawner.kube.reflector import ReflectorSettings

    class ExpiringSource(PagedSource):
        def __init__(self) -> None:
            super().__init__([])
            self.expired = False

        async def list_page(self, **kw: Any) -> dict[str, Any]:
            token = kw.get("continue_token")
            if token == "old":
                self.expired = True
                raise Gone(410, "continue token expired", reason="Expired")
            if not self.expired:  # the first attempt: page 1 names a pod deleted since
                page = {"metadata": {"continue": "old"}, "items": [pod("gone", "1")]}
            elif token is None:
                page = {"metadata": {"continue": "new"}, "items": [pod("a", "2")]}
            else:
                page = {"metadata": {"resourceVersion": "9"}, "items": [pod("b", "3")]}
            return kw["decode"](json.dumps(page).encode())

    cache = ObjectCache(trim_pod)
    seen: list[Any] = []
    cache.listen(("default", "gone"), seen.append)
    reflector = Reflector(ExpiringSource(), cache,
                          settings=ReflectorSettings(partial_first_list=True))
    await reflector._list()
    await cache.listeners_idle()
    assert sorted(k[1] for k in cache.keys()) == ["a", "b"]
    assert seen[-1] is None  # its listener heard it go
    assert reflector.synced and reflector.resource_version == "9"
