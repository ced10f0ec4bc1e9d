"""The simulator process's garbage-collection policy: full-collection survivors frozen, rarer young ones.

Why: an API server's store is long-lived by nature (every object, its watch-cache history,
its Events), so the heap grows with the cluster and every full (generation-2) collection
walks all of it: with a thousand servers' objects stored, one full collection held the
simulator's loop for 100-300 ms in the operator storm, and every request in flight at
that moment (a status write a hub waits on) waited with it. A real API server (Go, a
concurrent collector) has no such pause, so the simulator should not show one either.

What: after each full collection, ``gc.freeze()`` moves the survivors into the permanent
generation, so the next full collection walks only what was allocated since. Stored
objects are JSON trees (no reference cycles): when deleted, reference counting frees them
whether frozen or not. The price is cyclic garbage that was alive at a freeze and dies
later (an aiohttp request object, say) is no longer collected: bounded by what one
collection's survivors hold, and the process is a test tool. Only the simulator's own
process entry points install it (``kubesim`` and the benchmarks' host), never a process
that merely embeds the simulator, such as a test run.

The young generation is also collected less often (every ``YOUNG_THRESHOLD`` net
allocations instead of CPython's 700). Why: nearly everything a write allocates survives
(the new version of the object, its history entry, its watch event), so a young
collection mostly walks survivors; at 700 a burst of a thousand graceful pod deletions
ran sixty young and six middle collections, 8-10% of the simulator's CPU. At 10,000 the
same burst runs three young collections and no older one, and the middle generation is
walked after the burst, when much of what it held (superseded versions, finished
requests) is already gone. Memory stays bounded: cyclic garbage waits for at most that
many allocations. The price is a longer single young collection (10-15 ms instead of
1-2 ms, still below what one full collection cost before the freeze).
"""

from __future__ import annotations

import gc
from typing import Any

_installed = False

#: net allocations between two young-generation collections in the simulator process
YOUNG_THRESHOLD = 10_000


def _freeze_after_full_collection(phase: str, info: dict[str, Any]) -> None:
    if phase == "stop" and info.get("generation") == 2:
        gc.freeze()


def freeze_survivors_of_full_collections() -> bool:
    """Install the policy once per process; True if this call installed it."""
    global _installed
    if _installed:
        return False
    _installed = True
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    gc.freeze()  # the start-up heap (modules, schemas) first
    gc.callbacks.append(_freeze_after_full_collection)
    return True
