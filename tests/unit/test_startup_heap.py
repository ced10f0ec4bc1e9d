"""The start-up heap is frozen once per process, at the first API client, unless disabled."""

from __future__ import annotations

import gc

import pytest

from async_kubespawner import startup_heap
from tests.unit.spawner_fakes import make_spawner


@pytest.fixture
def freezes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record gc.freeze() calls instead of freezing the test process; start unfrozen."""
    calls: list[int] = []
    monkeypatch.setattr(startup_heap, "_frozen", False)
    monkeypatch.setattr(startup_heap.gc, "freeze", lambda: calls.append(1))

    async def no_client(settings: object) -> object:
        return object()

    monkeypatch.setattr("async_kubespawner.spawner.shared_api", no_client)
    return calls


async def test_first_api_use_freezes_the_heap_once(freezes: list[int]) -> None:
    first, second = make_spawner(), make_spawner()
    await first._get_api()
    await first._get_api()
    await second._get_api()
    assert freezes == [1]  # one process, one freeze, whoever asks first


async def test_freeze_startup_heap_false_leaves_the_collector_alone(freezes: list[int]) -> None:
    spawner = make_spawner(freeze_startup_heap=False)
    await spawner._get_api()
    assert freezes == []


def test_freezing_moves_objects_out_of_the_collected_generations(monkeypatch) -> None:
    """The real call: what was tracked is now in the permanent generation."""
    monkeypatch.setattr(startup_heap, "_frozen", False)
    try:
        assert startup_heap.freeze_startup_heap() is True
        assert gc.get_freeze_count() > 0
        assert startup_heap.freeze_startup_heap() is False
    finally:
        gc.unfreeze()  # give the test process its collector back



async def test_young_threshold_is_off_by_default_and_set_once_when_asked(
    freezes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(startup_heap, "_young_threshold_set", False)
    set_to: list[tuple[int, ...]] = []
    monkeypatch.setattr(startup_heap.gc, "set_threshold", lambda *t: set_to.append(t))
    await make_spawner()._get_api()
    assert set_to == []
    older = gc.get_threshold()[1:]
    await make_spawner(gc_young_threshold=10_000)._get_api()
    await make_spawner(gc_young_threshold=20_000)._get_api()
    assert set_to == [(10_000, *older)]  # one process, one policy, older thresholds kept
