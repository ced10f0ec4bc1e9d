"""LoopTurns: a burst of CPU-heavy steps is spread over event-loop iterations.

Iterations are counted with a callback that re-schedules itself with ``call_soon`` (it
runs exactly once per iteration), so the tests assert on the loop's structure, not on
time.
"""

from __future__ import annotations

import asyncio

from async_kubespawner.lifecycle.loop_turns import LoopTurns, loop_turns


class IterationCounter:
    """Counts event-loop iterations: one call_soon callback per iteration."""

    def __init__(self) -> None:
        self.iteration = 0
        self._handle: asyncio.Handle | None = None

    def _tick(self) -> None:
        self.iteration += 1
        self._handle = asyncio.get_running_loop().call_soon(self._tick)

    def start(self) -> None:
        self._handle = asyncio.get_running_loop().call_soon(self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()


async def test_a_lone_step_runs_at_once() -> None:
    turns = LoopTurns(budget=10.0)
    counter = IterationCounter()
    counter.start()
    before = counter.iteration
    await turns.take()
    counter.stop()
    assert counter.iteration == before  # no iteration went by: the fast path


async def test_a_burst_gets_one_step_per_iteration_in_arrival_order() -> None:
    turns = LoopTurns(budget=0.0)  # budget spent by the first step of each iteration
    counter = IterationCounter()
    counter.start()
    ran: list[tuple[int, int]] = []  # (step, iteration it ran in)

    async def step(i: int) -> None:
        await turns.take()
        ran.append((i, counter.iteration))

    await asyncio.gather(*(step(i) for i in range(20)))
    counter.stop()
    assert [i for i, _ in ran] == list(range(20))
    iterations = [it for _, it in ran]
    # every step after the first ran in an iteration of its own
    assert len(set(iterations)) == 20
    assert turns.queued == 0


async def test_steps_within_the_budget_share_an_iteration() -> None:
    turns = LoopTurns(budget=60.0)
    counter = IterationCounter()
    counter.start()
    ran: list[int] = []

    async def step() -> None:
        await turns.take()
        ran.append(counter.iteration)

    await asyncio.gather(*(step() for _ in range(10)))
    counter.stop()
    assert len(set(ran)) == 1


async def test_a_cancelled_waiter_does_not_stall_the_queue() -> None:
    turns = LoopTurns(budget=0.0)
    done: list[int] = []

    async def step(i: int) -> None:
        await turns.take()
        done.append(i)

    tasks = [asyncio.ensure_future(step(i)) for i in range(6)]
    await asyncio.sleep(0)  # step 0 ran at once (its slice is open); the others queued
    assert done == [0]
    assert turns.queued == 5
    tasks[1].cancel()
    tasks[3].cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert done == [0, 2, 4, 5]
    assert turns.queued == 0


async def test_a_granted_then_cancelled_turn_is_handed_on() -> None:
    turns = LoopTurns(budget=0.0)
    done: list[int] = []

    async def step(i: int) -> None:
        await turns.take()
        done.append(i)

    tasks = [asyncio.ensure_future(step(i)) for i in range(3)]
    await asyncio.sleep(0)  # step 0 ran; 1 and 2 queued
    assert turns.queued == 2
    # At the next iteration boundary step 1 is granted its turn; cancel it before it runs.
    # The subject is event-loop iterations themselves, so yielding one iteration at a
    # time is the synchronisation here, not a stand-in for it.
    while len(turns._waiting) == 2:  # noqa: ASYNC110
        await asyncio.sleep(0)
    tasks[1].cancel()
    # Without the hand-on, nobody would ever release step 2 (the guard turns a hang
    # into a failure; it is not a timing assertion).
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
    assert tasks[1].cancelled()
    assert done == [0, 2]


async def test_one_instance_per_loop() -> None:
    assert loop_turns() is loop_turns()


async def test_cheap_queued_steps_are_released_in_growing_batches_in_order() -> None:
    turns = LoopTurns(budget=0.0)  # the burst queues behind the first step
    counter = IterationCounter()
    counter.start()
    ran: list[tuple[int, int]] = []

    async def step(i: int) -> None:
        await turns.take()
        ran.append((i, counter.iteration))

    tasks = [asyncio.ensure_future(step(i)) for i in range(200)]
    await asyncio.sleep(0)
    assert turns.queued == 199
    turns.budget = 60.0  # from now on every step is cheap against the budget
    await asyncio.gather(*tasks)
    counter.stop()
    assert [i for i, _ in ran] == list(range(200))
    per_iteration: dict[int, int] = {}
    for _, iteration in ran:
        per_iteration[iteration] = per_iteration.get(iteration, 0) + 1
    # doubling batches (1, 2, 4, ... 64): a handful of iterations, not 199
    assert len(per_iteration) <= 12
    assert max(per_iteration.values()) == 64


async def test_released_steps_that_find_the_budget_spent_go_first_next_time() -> None:
    turns = LoopTurns(budget=0.0)
    counter = IterationCounter()
    counter.start()
    ran: list[tuple[int, int]] = []

    async def step(i: int) -> None:
        await turns.take()
        ran.append((i, counter.iteration))

    tasks = [asyncio.ensure_future(step(i)) for i in range(30)]
    await asyncio.sleep(0)
    turns.budget = 60.0
    await asyncio.sleep(0)  # the next slice releases a batch while the budget is large
    turns.budget = 0.0  # ...and now every slice is spent by its first step
    await asyncio.gather(*tasks)
    counter.stop()
    assert [i for i, _ in ran] == list(range(30))  # deferred steps kept their place
    iterations = [it for _, it in ran]
    shared = {it for it in iterations if iterations.count(it) > 1}
    # only the iteration released while the budget was large ran more than one step
    assert len(shared) <= 1
    assert turns.queued == 0 and turns._deferred == []
