"""cancel_and_wait: stop() returns only once the background task has really ended."""

from __future__ import annotations

import asyncio

from async_kubespawner.lifecycle.tasks import cancel_and_wait


async def test_cancel_and_wait_returns_after_the_task_has_ended() -> None:
    started = asyncio.Event()
    cleaned_up: list[bool] = []

    async def background() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0)  # the task still runs after its cancellation
            cleaned_up.append(True)

    task = asyncio.get_running_loop().create_task(background())
    await started.wait()
    await cancel_and_wait(task)
    assert task.cancelled() and cleaned_up == [True]


async def test_cancel_and_wait_accepts_no_task_and_a_finished_one() -> None:
    await cancel_and_wait(None)
    task = asyncio.get_running_loop().create_task(asyncio.sleep(0, "done"))
    await task
    await cancel_and_wait(task)
    assert task.result() == "done"
