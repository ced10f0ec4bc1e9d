"""The hub's burst-aware GC policy: its decisions (fake collector and clock), the ways an
operator keeps control, and the reclaim of cyclic garbage with the real collector."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from async_kubespawner import gc_policy
from async_kubespawner.gc_policy import BurstGcPolicy, InFlight, PolicySettings
from tests.unit.spawner_fakes import make_spawner

BURST = (700, 1_000_000, 100)
FREEZE, UNFREEZE = -1, -2  # in FakeCollector.ops, beside the collected generations
DEFAULT = (700, 10, 10)


class FakeCollector:
    """The part of ``gc`` the policy uses, recording what it is asked to do."""

    def __init__(self, thresholds: tuple[int, int, int] = DEFAULT, enabled: bool = True) -> None:
        self.thresholds = thresholds
        self.enabled = enabled
        self.count = (0, 0, 0)
        self.callbacks: list[Callable[[str, dict[str, Any]], None]] = []
        self.set_calls: list[tuple[int, ...]] = []
        self.collected: list[int] = []
        #: collections (their generation), freezes and unfreezes, in order
        self.ops: list[int] = []

    def get_threshold(self) -> tuple[int, int, int]:
        return self.thresholds

    def set_threshold(self, *t: int) -> None:
        self.set_calls.append(t)
        self.thresholds = (t[0], t[1], t[2])

    def get_count(self) -> tuple[int, int, int]:
        return self.count

    def collect(self, generation: int = 2) -> int:
        self.collected.append(generation)
        self.ops.append(generation)
        self.full_collection_ran()
        return 0

    def isenabled(self) -> bool:
        return self.enabled

    def freeze(self) -> None:
        self.ops.append(FREEZE)

    def unfreeze(self) -> None:
        self.ops.append(UNFREEZE)

    def full_collection_ran(self) -> None:
        """What CPython does after any full collection: callbacks, count reset."""
        self.count = (0, 0, 0)
        for callback in list(self.callbacks):
            callback("start", {"generation": 2})
            callback("stop", {"generation": 2, "collected": 0, "uncollectable": 0})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def collector() -> FakeCollector:
    return FakeCollector()


@pytest.fixture
def policy(collector: FakeCollector, clock: Clock) -> Iterator[BurstGcPolicy]:
    p = BurstGcPolicy(collector, clock=clock)
    assert p.install() is True
    yield p
    p.uninstall()


def test_installs_only_over_cpython_defaults_and_changes_nothing_until_work(
    policy: BurstGcPolicy, collector: FakeCollector
) -> None:
    assert policy.state == "quiet"
    assert collector.set_calls == []  # installing alone touches nothing
    assert len(collector.callbacks) == 1


def test_a_burst_raises_middle_and_old_thresholds_and_keeps_them_while_work_remains(
    policy: BurstGcPolicy, collector: FakeCollector, clock: Clock
) -> None:
    policy.work_started()
    policy.work_started()
    assert collector.thresholds == BURST
    policy.work_finished()
    clock.now += 60  # one of two still in flight: the burst goes on, however long it takes
    policy.tick()
    assert collector.thresholds == BURST
    assert collector.set_calls == [BURST]  # no flapping per start() or stop()


def test_the_burst_ends_after_the_quiet_delay_not_at_the_first_gap(
    policy: BurstGcPolicy, collector: FakeCollector, clock: Clock
) -> None:
    policy.work_started()
    policy.work_finished()
    clock.now += 1.9  # a gap between two waves of the same storm
    policy.tick()
    assert collector.thresholds == BURST
    policy.work_started()  # the next wave
    policy.work_finished()
    clock.now += 2.0
    policy.tick()
    assert collector.thresholds == DEFAULT
    assert policy.state == "quiet"


def test_the_full_collection_a_burst_owed_runs_once_when_it_is_over(
    policy: BurstGcPolicy, collector: FakeCollector, clock: Clock
) -> None:
    policy.work_started()
    collector.count = (5, 3, 14)  # 14 middle collections since the last full one
    policy.work_finished()
    clock.now += 2.0
    policy.tick()
    assert collector.collected == [2]
    assert policy.deferred_collections == 1
    clock.now += 10
    policy.tick()
    assert collector.collected == [2]  # once, not at every tick


def test_no_full_collection_when_the_burst_owed_none(
    policy: BurstGcPolicy, collector: FakeCollector, clock: Clock
) -> None:
    policy.work_started()
    collector.count = (5, 3, 9)  # the default collector would not have run one either
    policy.work_finished()
    clock.now += 2.0
    policy.tick()
    assert collector.collected == []
    assert collector.thresholds == DEFAULT


def test_a_never_ending_burst_gets_the_ordinary_thresholds_back_after_max_deferral(
    policy: BurstGcPolicy, collector: FakeCollector, clock: Clock
) -> None:
    policy.work_started()
    clock.now += 119
    policy.tick()
    assert collector.thresholds == BURST
    clock.now += 1  # 120 s without a full collection, work always in flight
    policy.tick()
    assert policy.state == "catch-up"
    assert collector.thresholds == DEFAULT
    collector.full_collection_ran()  # the collector ran the one it owed
    assert policy.state == "burst"
    assert collector.thresholds == BURST
    clock.now += 119  # the deferral clock restarted at that collection
    policy.tick()
    assert collector.thresholds == BURST


def test_a_full_collection_during_a_burst_restarts_the_deferral_clock(
    policy: BurstGcPolicy, collector: FakeCollector, clock: Clock
) -> None:
    policy.work_started()
    clock.now += 100
    collector.full_collection_ran()  # the raised oldest threshold was reached
    clock.now += 100
    policy.tick()
    assert policy.state == "burst"


@pytest.mark.parametrize(
    ("thresholds", "enabled"),
    [((1000, 10, 10), True), ((700, 20, 10), True), ((0, 10, 10), True), (DEFAULT, False)],
)
def test_thresholds_chosen_by_someone_else_or_a_disabled_collector_are_left_alone(
    thresholds: tuple[int, int, int], enabled: bool, clock: Clock
) -> None:
    collector = FakeCollector(thresholds, enabled)
    policy = BurstGcPolicy(collector, clock=clock)
    assert policy.install() is False
    assert policy.work_started() is False
    policy.work_finished(False)
    clock.now += 1000
    policy.tick()
    policy.uninstall()
    assert collector.set_calls == []
    assert collector.callbacks == []
    assert collector.collected == []


def test_thresholds_changed_by_something_else_mid_burst_are_kept(
    policy: BurstGcPolicy, collector: FakeCollector, clock: Clock
) -> None:
    policy.work_started()
    collector.thresholds = (5000, 10, 10)  # a hub extension decided
    policy.work_finished()
    clock.now += 5
    policy.tick()
    assert policy.stepped_aside
    assert collector.thresholds == (5000, 10, 10)
    assert policy.work_started() is False
    policy.uninstall()
    assert collector.thresholds == (5000, 10, 10)
    assert collector.set_calls == [BURST]
    assert collector.callbacks == []


def test_uninstall_gives_the_defaults_back_mid_burst(
    policy: BurstGcPolicy, collector: FakeCollector
) -> None:
    policy.work_started()
    policy.uninstall()
    assert collector.thresholds == DEFAULT
    assert collector.callbacks == []


def test_in_flight_counts_each_operation_once(
    policy: BurstGcPolicy, collector: FakeCollector, clock: Clock
) -> None:
    operation = InFlight.begin(policy)
    operation.end()
    operation.end()  # a second end() (a finally run twice) does not undercount others
    other = InFlight.begin(policy)
    assert policy.in_flight == 1
    other.end()
    InFlight.begin(None).end()  # a spawner whose configuration leaves gc alone
    assert policy.in_flight == 0


# -- the spawner's settings ------------------------------------------------------------


@pytest.fixture
def process_policy(
    monkeypatch: pytest.MonkeyPatch, collector: FakeCollector
) -> Iterator[FakeCollector]:
    """The process-wide policy, on a fake collector (the test process's gc untouched)."""
    monkeypatch.setattr(gc_policy, "_policy", BurstGcPolicy(collector))
    yield collector


def test_on_by_default_for_the_hub_process(process_policy: FakeCollector) -> None:
    policy = make_spawner()._gc_policy()
    assert policy is gc_policy.hub_policy()
    assert policy.state == "quiet"
    assert policy.work_started() is True
    assert process_policy.thresholds == BURST
    assert make_spawner()._gc_policy() is policy  # one per process


def test_gc_burst_policy_false_turns_it_off(process_policy: FakeCollector) -> None:
    assert make_spawner(gc_burst_policy=False)._gc_policy() is None
    assert gc_policy.hub_policy().state == "off"
    assert process_policy.set_calls == []


def test_gc_young_threshold_keeps_the_operators_setting(process_policy: FakeCollector) -> None:
    assert make_spawner(gc_young_threshold=10_000)._gc_policy() is None
    assert gc_policy.hub_policy().state == "off"
    assert process_policy.set_calls == []


def test_operator_thresholds_from_the_config_file_are_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    collector = FakeCollector((2000, 20, 20))  # jupyterhub_config.py called gc.set_threshold
    monkeypatch.setattr(gc_policy, "_policy", BurstGcPolicy(collector))
    policy = make_spawner()._gc_policy()
    assert policy is not None and policy.work_started() is False
    assert collector.thresholds == (2000, 20, 20)
    assert collector.set_calls == []


# -- the real collector ----------------------------------------------------------------


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


@pytest.fixture
def real_gc() -> Iterator[None]:
    """The policy on the test process's own collector, which is given back afterwards."""
    saved = gc.get_threshold()
    gc.set_threshold(*DEFAULT)
    try:
        yield
    finally:
        gc.set_threshold(*saved)


def _leak_a_cycle_into_the_oldest_generation() -> weakref.ref[_Node]:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    gc.collect(1)  # alive at a middle collection: promoted to the oldest generation
    return weakref.ref(a)  # a and b die here, as a cycle only a full collection frees


def test_cyclic_garbage_of_a_burst_is_reclaimed_when_it_ends(real_gc: None, clock: Clock) -> None:
    policy = BurstGcPolicy(gc, clock=clock, settings=PolicySettings())
    assert policy.install() is True
    try:
        policy.work_started()
        assert gc.get_threshold() == BURST
        leaked = _leak_a_cycle_into_the_oldest_generation()
        for _ in range(10):  # the middle collections a burst's allocations would cause
            gc.collect(1)
        assert leaked() is not None  # deferred, not yet freed
        policy.work_finished()
        clock.now += 2.0
        policy.tick()
        assert leaked() is None  # freed by the collection the burst owed
        assert gc.get_threshold() == DEFAULT
        assert policy.deferred_collections == 1
    finally:
        policy.uninstall()
    assert gc.get_threshold() == DEFAULT
    assert policy._on_collection not in gc.callbacks


def test_cyclic_garbage_is_reclaimed_under_never_ending_work(real_gc: None, clock: Clock) -> None:
    """Work always in flight: after max_deferral the collector's own rules run the full
    collection (driven here by allocations only, no explicit full collect)."""
    policy = BurstGcPolicy(gc, clock=clock, settings=PolicySettings(max_deferral=60))
    assert policy.install() is True
    try:
        policy.work_started()
        leaked = _leak_a_cycle_into_the_oldest_generation()
        clock.now += 60
        policy.tick()
        assert gc.get_threshold() == DEFAULT  # catch-up: the ordinary thresholds
        full_before = gc.get_stats()[2]["collections"]
        kept: list[list[int]] = []
        while gc.get_stats()[2]["collections"] == full_before:
            kept.append([0])  # allocations that survive: young and middle collections
            assert len(kept) < 5_000_000, "the collector never ran a full collection"
        assert leaked() is None
        assert policy.state == "burst"  # deferring again, work still in flight
        assert gc.get_threshold() == BURST
    finally:
        policy.uninstall()


async def test_a_start_cancelled_before_its_coroutine_ran_is_still_uncounted(
    policy: BurstGcPolicy,
) -> None:
    """start() counts at the call and uncounts from the future's done callback, which
    runs however the future ends, even when its coroutine never started."""
    async def body() -> None:
        raise AssertionError("never runs")

    operation = InFlight.begin(policy)
    future = asyncio.ensure_future(body())
    future.add_done_callback(operation.end_callback)
    assert policy.in_flight == 1
    future.cancel()
    with pytest.raises(asyncio.CancelledError):
        await future
    # the done callback was registered before this task's wake-up, so it has run
    assert policy.in_flight == 0


# -- survivors frozen, whole-heap sweeps ------------------------------------------------

def _end_burst(policy: BurstGcPolicy, clock: Clock) -> None:
    policy.work_started()
    policy.work_finished()
    clock.now += policy.settings.quiet_delay
    policy.tick()


def test_survivors_of_every_full_collection_are_frozen(
    policy: BurstGcPolicy, collector: FakeCollector, clock: Clock
) -> None:
    collector.full_collection_ran()  # one the collector decided on its own
    assert collector.ops == [FREEZE]
    collector.ops.clear()
    policy.work_started()
    collector.count = (0, 0, 100)
    policy.work_finished()
    clock.now += 2.0
    policy.tick()
    assert collector.ops == [2, FREEZE]  # the owed collection, then its survivors


def test_nothing_is_frozen_when_freezing_is_off(collector: FakeCollector, clock: Clock) -> None:
    policy = BurstGcPolicy(
        collector, clock=clock, settings=PolicySettings(freeze_survivors=False)
    )
    assert policy.install()
    clock.now += 10_000
    collector.count = (0, 0, 100)
    _end_burst(policy, clock)
    assert collector.ops == [2]  # collected, never frozen nor unfrozen


def test_a_sweep_unfreezes_before_one_full_collection_once_per_interval(
    collector: FakeCollector, clock: Clock
) -> None:
    policy = BurstGcPolicy(collector, clock=clock, settings=PolicySettings(sweep_interval=600))
    assert policy.install()
    clock.now += 599
    _end_burst(policy, clock)  # 601 s after install, nothing owed: the sweep is due
    assert collector.ops == [UNFREEZE, 2, FREEZE]
    assert policy.sweeps == 1
    collector.ops.clear()
    clock.now += 100
    _end_burst(policy, clock)  # 102 s later: not due, nothing owed, nothing done
    assert collector.ops == []
    clock.now += 500
    _end_burst(policy, clock)
    assert collector.ops == [UNFREEZE, 2, FREEZE]
    assert policy.sweeps == 2


def test_a_never_quiet_hub_sweeps_at_the_deferral_limit(
    collector: FakeCollector, clock: Clock
) -> None:
    policy = BurstGcPolicy(
        collector, clock=clock, settings=PolicySettings(max_deferral=120, sweep_interval=600)
    )
    assert policy.install()
    policy.work_started()
    clock.now += 120
    policy.tick()  # catch-up, sweep not yet due: frozen objects stay frozen
    assert policy.state == "catch-up" and collector.ops == []
    collector.full_collection_ran()
    assert collector.ops == [FREEZE] and policy.state == "burst"
    collector.ops.clear()
    clock.now += 600
    policy.tick()  # catch-up with the sweep due: the collector's next full one sees all
    assert collector.ops == [UNFREEZE] and policy.state == "catch-up"


def test_cyclic_garbage_among_frozen_survivors_is_reclaimed_by_the_sweep(
    real_gc: None, clock: Clock
) -> None:
    policy = BurstGcPolicy(gc, clock=clock, settings=PolicySettings(sweep_interval=600))
    assert policy.install() is True
    try:
        a, b = _Node(), _Node()
        a.other, b.other = b, a
        gc.collect()  # a full collection the cycle survives: frozen by the policy
        frozen = weakref.ref(a)
        del a, b
        gc.collect()
        assert frozen() is not None  # out of the collector's reach while frozen
        clock.now += 600
        _end_burst(policy, clock)
        assert policy.sweeps == 1
        assert frozen() is None  # the sweep's full collection reclaimed it
        assert gc.get_freeze_count() > 0  # and the heap is frozen again
    finally:
        policy.uninstall()
        gc.unfreeze()  # leave the test process's collector as the other tests expect


# -- young collections by time during a burst --------------------------------------------


def _young_collection_ran(collector: FakeCollector) -> None:
    """What CPython does after a young collection it decided on: callbacks."""
    for callback in list(collector.callbacks):
        callback("start", {"generation": 0})
        callback("stop", {"generation": 0, "collected": 0, "uncollectable": 0})


def test_a_burst_gets_a_young_collection_when_the_collector_ran_none_since_the_last_tick(
    policy: BurstGcPolicy, collector: FakeCollector
) -> None:
    policy.young_tick()
    assert collector.collected == []  # quiet: the collector's own business
    policy.work_started()
    policy.young_tick()  # nothing ran since the burst began (the count can lag)
    assert collector.collected == [0]
    _young_collection_ran(collector)  # allocations made the collector run one itself
    policy.young_tick()
    assert collector.collected == [0]  # nothing added: one ran in this interval
    policy.young_tick()
    assert collector.collected == [0, 0]
    assert policy.forced_young_collections == 2


def test_no_young_collections_by_time_when_the_interval_is_none(
    collector: FakeCollector, clock: Clock
) -> None:
    policy = BurstGcPolicy(
        collector, clock=clock, settings=PolicySettings(young_interval=None)
    )
    assert policy.install()
    policy.work_started()
    assert policy._young_timer is None
    policy.uninstall()


def test_a_held_back_middle_collection_is_owed_too(
    policy: BurstGcPolicy, collector: FakeCollector, clock: Clock
) -> None:
    """No middle collection runs during a burst, so ten young ones since the last is what
    the ordinary thresholds would have acted on: the burst's end runs a full one."""
    policy.work_started()
    collector.count = (5, 10, 0)
    policy.work_finished()
    clock.now += 2.0
    policy.tick()
    assert collector.collected == [2]
    assert policy.deferred_collections == 1


async def test_the_young_timer_runs_during_a_burst_and_stops_with_it(clock: Clock) -> None:
    collector = FakeCollector()
    young = asyncio.Event()
    collect = collector.collect

    def collect_and_tell(generation: int = 2) -> int:
        if generation == 0:
            young.set()
        return collect(generation)

    collector.collect = collect_and_tell  # type: ignore[method-assign]
    policy = BurstGcPolicy(collector, clock=clock, settings=PolicySettings(young_interval=0.001))
    assert policy.install()
    try:
        policy.work_started()
        await asyncio.wait_for(young.wait(), timeout=10)  # the timer ran one
        assert policy._young_timer is not None  # and is set for the next interval
        policy.work_finished()
        clock.now += 2.0
        policy.tick()  # the burst is over
        assert policy.state == "quiet"
        timer = policy._young_timer
        assert timer is not None
        young.clear()
        # the pending timer fires once more, sees the burst over, and does not come back
        fired = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.002, fired.set_result, None)
        await fired
        assert policy._young_timer is None
        assert not young.is_set()
    finally:
        policy.uninstall()


def test_cyclic_garbage_from_before_a_burst_is_reclaimed_when_it_ends(
    real_gc: None, clock: Clock
) -> None:
    """Garbage the collector had promoted before the burst: the burst holds back the
    middle collection that would have freed it, and its end runs it (as a full one)."""
    policy = BurstGcPolicy(gc, clock=clock, settings=PolicySettings(young_interval=None))
    assert policy.install() is True
    try:
        a, b = _Node(), _Node()
        a.other, b.other = b, a
        gc.collect(0)  # alive at a young collection: promoted to the middle generation
        leaked = weakref.ref(a)
        del a, b
        policy.work_started()
        assert gc.get_threshold() == BURST
        young_before = gc.get_stats()[0]["collections"]
        middle_before = gc.get_stats()[1]["collections"]
        kept: list[list[int]] = []
        while gc.get_stats()[0]["collections"] < young_before + 20:
            kept.append([0])  # allocations: young collections only, during the burst
        assert gc.get_stats()[1]["collections"] == middle_before
        assert leaked() is not None  # held back with the middle collections
        policy.work_finished()
        clock.now += 2.0
        policy.tick()
        assert leaked() is None  # reclaimed by the collection the burst owed
        assert policy.deferred_collections == 1
        assert gc.get_threshold() == DEFAULT
    finally:
        policy.uninstall()
        gc.unfreeze()  # the owed collection froze its survivors


def test_young_tick_runs_a_real_young_collection_during_a_burst(
    real_gc: None, clock: Clock
) -> None:
    policy = BurstGcPolicy(gc, clock=clock, settings=PolicySettings(young_interval=None))
    assert policy.install() is True
    try:
        policy.work_started()
        before = gc.get_stats()[0]["collections"]
        policy.young_tick()
        assert gc.get_stats()[0]["collections"] == before + 1
        assert policy.forced_young_collections == 1
    finally:
        policy.uninstall()


# -- a spawn announced by its pre-spawn hook ---------------------------------------------


def test_expected_work_begins_a_burst_that_ends_after_the_quiet_delay(
    policy: BurstGcPolicy, collector: FakeCollector, clock: Clock
) -> None:
    policy.work_expected()
    assert policy.state == "burst" and policy.in_flight == 0
    assert collector.thresholds == BURST
    clock.now += 1.9
    policy.work_expected()  # another spawn's hook: the quiet delay starts again
    clock.now += 1.9
    policy.tick()
    assert policy.state == "burst"
    clock.now += 0.1
    policy.tick()
    assert policy.state == "quiet"  # no start() came
    assert collector.thresholds == DEFAULT


def test_expected_work_does_not_end_a_burst_with_work_in_flight(
    policy: BurstGcPolicy, clock: Clock
) -> None:
    policy.work_started()
    policy.work_expected()
    clock.now += 10
    policy.tick()
    assert policy.state == "burst"  # the start() still in flight keeps it going
    policy.work_finished()
    clock.now += 2.0
    policy.tick()
    assert policy.state == "quiet"


async def test_the_pre_spawn_hook_begins_the_burst(process_policy: FakeCollector) -> None:
    spawner = make_spawner()
    await spawner.run_pre_spawn_hook()
    policy = gc_policy.hub_policy()
    assert policy.state == "burst" and policy.in_flight == 0
    assert process_policy.thresholds == BURST
    policy.uninstall()


async def test_the_pre_spawn_hook_leaves_the_collector_alone_when_the_policy_is_off(
    process_policy: FakeCollector,
) -> None:
    await make_spawner(gc_burst_policy=False).run_pre_spawn_hook()
    assert process_policy.set_calls == []


async def test_stop_polling_begins_the_burst_before_a_stop(process_policy: FakeCollector) -> None:
    """JupyterHub's ``User.stop`` stops polling before its poll() and database work."""
    spawner = make_spawner()
    stopped: list[bool] = []
    spawner._poll_callback = type("Callback", (), {"stop": lambda self: stopped.append(True)})()
    spawner.stop_polling()
    policy = gc_policy.hub_policy()
    assert policy.state == "burst" and policy.in_flight == 0
    assert process_policy.thresholds == BURST
    assert stopped == [True] and spawner._poll_callback is None  # JupyterHub's part still runs
    policy.uninstall()


def test_stop_polling_leaves_the_collector_alone_when_the_policy_is_off(
    process_policy: FakeCollector,
) -> None:
    make_spawner(gc_burst_policy=False).stop_polling()
    assert process_policy.set_calls == []
