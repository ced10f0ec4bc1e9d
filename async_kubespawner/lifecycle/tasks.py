"""Stopping a background task: cancel it and wait until it has really ended.

A component that owns a long-running task (the deletion reconciler, the operator's work
loop, a benchmark's loop monitor) must not return from ``stop()`` while that task can
still touch the API or its state; and the ``CancelledError`` it ends with is the expected
outcome, not a failure to report.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (if any) and wait for it to finish, swallowing its cancellation."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
