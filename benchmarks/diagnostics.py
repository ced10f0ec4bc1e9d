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
        self._pod_ready: dict[tuple[str, str], float] = {}    # first Ready seen per pod uid
        self._pod_ready_by_name: dict[tuple[str, str], list[float]] = {}
        self._pod_deleted: dict[tuple[str, str], list[float]] = {}
        self._events: dict[str, float] = {}
        # What the observer saw, in order, indexed only when read. Why: at 10,000 spawns
        # the index of 50,000 Event uids grew (a whole-dict rehash, 2-6 ms) inside the
        # reflector's step that applied a line, and the storm charged the harness's
        # bookkeeping to the spawner's longest loop step. Appending is O(1) always.
        self._seen: list[tuple[str, Any, str, str, Any, bool, float]] = []
        self._indexed = 0
        self._restore: Callable[[], None] | None = None

    def _index(self) -> None:
        seen, start = self._seen, self._indexed
        self._indexed = len(seen)
        for arrival in seen[start:]:
            self._file(*arrival)

    @property
    def pod_ready(self) -> dict[tuple[str, str], float]:
        self._index()
        return self._pod_ready

    @property
    def pod_ready_by_name(self) -> dict[tuple[str, str], list[float]]:
        self._index()
        return self._pod_ready_by_name

    @property
    def pod_deleted(self) -> dict[tuple[str, str], list[float]]:
        self._index()
        return self._pod_deleted

    @property
    def events(self) -> dict[str, float]:
        self._index()
        return self._events

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
        """Note one applied watch event: the few strings the figures need, flat (a tuple
        of strings the collector soon stops tracking, not the decoded event)."""
        obj = event.get("object") or {}
        meta = obj.get("metadata") or {}
        kind = event.get("type")
        ready = plural == "pods" and kind in ("ADDED", "MODIFIED") and _ready(obj)
        self._seen.append((plural, kind, meta.get("namespace", ""), meta.get("name", ""),
                           meta.get("uid"), ready, seen))

    def _file(self, plural: str, kind: Any, namespace: str, name: str, uid: Any,
              ready: bool, seen: float) -> None:
        if plural == "pods":
            key = (namespace, name)
            if kind == "DELETED":
                self._pod_deleted.setdefault(key, []).append(seen)
            elif ready:
                uid_key = (namespace, uid or "")
                if uid_key not in self._pod_ready:
                    self._pod_ready[uid_key] = seen
                    self._pod_ready_by_name.setdefault(key, []).append(seen)
        elif plural == "events" and kind == "ADDED":
            if uid and uid not in self._events:
                self._events[uid] = seen


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
