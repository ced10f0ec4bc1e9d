"""Keep the hub's start-up objects out of every later full garbage collection.

Why: a full (generation-2) collection walks every object the cyclic collector tracks. In
a hub process that is first of all what start-up created and will keep until exit: the
imported modules of JupyterHub, tornado, SQLAlchemy, kubernetes_asyncio and this package,
their classes and functions, the configuration, the spawner objects of the users whose
servers are running. ~135,000 objects before any user exists, ~230,000 with 1,000 servers
starting. A spawn storm allocates enough to trigger two or three full collections of
that whole heap, each holding the event loop for 100-160 ms on the benchmark machine.

``gc.freeze()`` moves everything tracked at that moment into a permanent generation the
collector no longer visits. Done once, when the first spawner first talks to Kubernetes
(the hub has finished starting by then), a storm's full collections only walk what was
allocated since: 140 ms -> 44 ms in the 1,000-spawn benchmark (see
docs/performance.md). Nothing frozen is ever freed by the cyclic collector; reference
counting still frees frozen objects without cycles. No collection runs first, so the
freeze itself costs microseconds and cannot stall the loop; the cyclic garbage that
happens to exist at that moment (kilobytes, once) is the price.

It is a process-wide policy, so it can be switched off:
``c.KubeSpawner.freeze_startup_heap = False``.

The same place applies an opt-in second policy, ``c.KubeSpawner.gc_young_threshold``:
the youngest generation's threshold (CPython's default is 700 allocations). A burst of
spawns or stops keeps thousands of short-lived objects in flight (requests, decoded
watch lines, manifests); at 700 most of them are still alive at a young collection, are
promoted, and feed the next full collection, a single pause of the whole event loop as
long as it takes to walk every in-flight object. With a larger threshold most of them
are freed by reference counting before any collection sees them.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger("async_kubespawner")

_frozen = False


def freeze_startup_heap() -> bool:
    """Freeze the current heap once per process; True if this call did it."""
    global _frozen
    if _frozen:
        return False
    _frozen = True
    before = gc.get_freeze_count()
    gc.freeze()
    log.info(
        "Froze %d start-up objects out of later garbage collections "
        "(c.KubeSpawner.freeze_startup_heap)",
        gc.get_freeze_count() - before,
    )
    return True


_young_threshold_set = False


def set_young_threshold(threshold: int | None) -> bool:
    """Set the youngest generation's collection threshold once per process (older
    generations' thresholds kept); None leaves the collector alone. True if this call
    set it."""
    global _young_threshold_set
    if threshold is None or _young_threshold_set:
        return False
    _young_threshold_set = True
    before = gc.get_threshold()
    gc.set_threshold(threshold, *before[1:])
    log.info(
        "Young garbage-collection threshold %d -> %d (c.KubeSpawner.gc_young_threshold)",
        before[0],
        threshold,
    )
    return True
