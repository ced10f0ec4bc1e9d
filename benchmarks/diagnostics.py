"""Instruments that explain a figure: GC pauses, and when our reflector got each change.

The headline figures are spawner-agnostic (API write → hub answer). When one misses its
target the question is *where* the time went: in the API server and the wire (write →
the hub's watch delivered it), in the hub's garbage collector, or in the spawner (watch
delivered → ``start()`` returned). These instruments answer that without changing the
code being measured.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any


class GcPauses:
    """Durations of the cyclic garbage collector's runs in this process, by generation.

    A full (generation 2) collection walks every tracked object; with thousands of
    spawner objects it can hold the event loop for a long time, and it shows up in a
    profile as whatever innocent allocation happened to trigger it. Each run is timed in
    wall time and in the thread's CPU time (``max_cpu_ms``): on a shared machine the wall
    time also counts waiting to be scheduled.
    """

    def __init__(self) -> None:
        self._started: float | None = None
        self._cpu_started = 0.0
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self.cpu: dict[int, list[float]] = {0: [], 1: [], 2: []}

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._cpu_started = time.thread_time()
            self._started = time.perf_counter()
        elif self._started is not None:
            generation = int(info.get("generation", 0))
            self.pauses[generation].append(time.perf_counter() - self._started)
            self.cpu[generation].append(time.thread_time() - self._cpu_started)
            self._started = None

    def start(self) -> None:
        gc.callbacks.append(self._callback)

    def stop(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def reset(self) -> None:
        self.pauses = {0: [], 1: [], 2: []}
        self.cpu = {0: [], 1: [], 2: []}

    def snapshot(self) -> dict[str, Any]:
        return {
            f"gen{gen}": {"count": len(p), "total_ms": round(sum(p) * 1000, 1),
                          "max_ms": round(max(p, default=0.0) * 1000, 1),
                          "max_cpu_ms": round(max(self.cpu[gen], default=0.0) * 1000, 1)}
            for gen, p in self.pauses.items()
        }


def _ready(pod: dict[str, Any]) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


class ReflectorDeliveries:
    """When async_kubespawner's reflectors received each change (monotonic seconds).

    Registered as a reflector event observer (``add_event_observer``: called once per
    watch line, right after it is decoded) in this process only. Other spawner classes
    are not instrumented: their figures stay the end-to-end ones.
    """

    def __init__(self) -> None:
        self.pod_ready: dict[tuple[str, str], float] = {}    # first Ready seen per pod uid
        self.pod_ready_by_name: dict[tuple[str, str], list[float]] = {}
        self.pod_deleted: dict[tuple[str, str], list[float]] = {}
        self.events: dict[str, float] = {}
        self._restore: Callable[[], None] | None = None

    def install(self, spawner_class: type) -> bool:
        if not spawner_class.__module__.startswith("async_kubespawner"):
            return False
        try:
            from async_kubespawner.kube.reflector import add_event_observer
        except ImportError:
            return False
        probe = self

        def observe(reflector: Any, event: dict[str, Any], seen: float) -> None:
            probe.record(str(reflector.resource), event, seen)

        self._restore = add_event_observer(observe)
        return True

    def uninstall(self) -> None:
        if self._restore is not None:
            self._restore()
            self._restore = None

    def record(self, plural: str, event: dict[str, Any], seen: float) -> None:
        obj = event.get("object") or {}
        meta = obj.get("metadata") or {}
        kind = event.get("type")
        if plural == "pods":
            name = (meta.get("namespace", ""), meta.get("name", ""))
            if kind == "DELETED":
                self.pod_deleted.setdefault(name, []).append(seen)
            elif kind in ("ADDED", "MODIFIED") and _ready(obj):
                uid_key = (meta.get("namespace", ""), meta.get("uid", ""))
                if uid_key not in self.pod_ready:
                    self.pod_ready[uid_key] = seen
                    self.pod_ready_by_name.setdefault(name, []).append(seen)
        elif plural == "events" and kind == "ADDED":
            uid = meta.get("uid")
            if uid and uid not in self.events:
                self.events[uid] = seen


def reflector_health() -> list[dict[str, Any]] | None:
    """Restarts and errors of async_kubespawner's reflectors on the running loop.

    A reflector that restarted during a storm (its watch dropped or fell behind) relists
    or resumes, and every change in between reaches the hub late; this shows whether
    that happened.
    """
    import sys

    module = sys.modules.get("async_kubespawner.kube.reflector")
    if module is None:
        return None
    out = []
    for reflector in module.reflectors():
        out.append({
            "name": reflector.name,
            "restarts": reflector.restarts,
            "errors": reflector.errors,
            "last_error": (reflector.last_error or "")[:200] or None,
            "cached": len(reflector.sink),
        })
    return out
