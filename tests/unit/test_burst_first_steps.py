"""A burst of spawns or stops issued in one loop iteration does not run its first work there.

JupyterHub's first call into a spawn is the profile load (through the group overrides or
the pre-spawn hook), and its first call into a stop is ``poll()``. Issued for many servers
in one iteration (a class logging in at 9:00, a cull), both take loop turns
(lifecycle/loop_turns.py), so that watches and requests are served between them.
Iterations are counted by a callback that re-schedules itself (one run per iteration):
the tests assert the loop's structure, not time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from unittest import mock

import pytest_asyncio

from async_kubespawner import KubeSpawner
from async_kubespawner.lifecycle.loop_turns import loop_turns
from async_kubespawner.profiles.mixin import ProfilesMixin
from async_kubespawner.testing import build_spawner

from .test_loop_turns import IterationCounter

BURST = 20


@pytest_asyncio.fixture
async def counter() -> AsyncIterator[IterationCounter]:
    counter = IterationCounter()
    counter.start()
    yield counter
    counter.stop()


def _spawners() -> list[KubeSpawner]:
    return [build_spawner(KubeSpawner, f"user{i}", i + 1) for i in range(BURST)]


async def test_a_burst_of_pre_spawn_hooks_loads_one_profile_per_turn(
    counter: IterationCounter,
) -> None:
    spawners = _spawners()
    loop_turns().budget = 0.0  # every load spends its iteration's budget: one per turn
    loaded_at: dict[str, int] = {}
    original = ProfilesMixin.load_user_options

    async def recording(self: Any) -> None:
        loaded_at.setdefault(self.user.name, counter.iteration)
        await original(self)

    with mock.patch.object(ProfilesMixin, "load_user_options", recording):
        await asyncio.gather(*(s.run_pre_spawn_hook() for s in spawners))

    assert sorted(loaded_at) == sorted(s.user.name for s in spawners)
    # before: all twenty in the iteration that ran the hooks' first steps
    assert len(set(loaded_at.values())) == BURST
    # the profile step still happened: the defaults it fills are in place
    assert all(s._profile_applied_options == {} for s in spawners)


async def test_a_burst_of_polls_reads_one_cache_per_turn(counter: IterationCounter) -> None:
    spawners = _spawners()
    loop_turns().budget = 0.0
    polled_at: list[int] = []

    async def poll_cache(self: Any) -> int | None:
        polled_at.append(counter.iteration)
        return None  # running: poll() passes the answer on unchanged

    with mock.patch.object(KubeSpawner, "_poll_cache", poll_cache):
        answers = await asyncio.gather(*(s.poll() for s in spawners))

    assert answers == [None] * BURST
    assert len(polled_at) == BURST
    assert len(set(polled_at)) == BURST  # before: one iteration for all twenty


async def test_a_lone_poll_does_not_wait_for_a_turn(counter: IterationCounter) -> None:
    (spawner,) = _spawners()[:1]
    polled_at: list[int] = []

    async def poll_cache(self: Any) -> int | None:
        polled_at.append(counter.iteration)
        return 1

    with mock.patch.object(KubeSpawner, "_poll_cache", poll_cache):
        before = counter.iteration
        with mock.patch("async_kubespawner.spawner.release_reflectors"):
            assert await spawner.poll() == 1
    assert polled_at == [before]  # same iteration: a quiet hub pays nothing
