"""The readiness wait's look at its pod, and what wakes it.

Each wake of a start's readiness wait looks at its pod. Most wakes are the pod's own
changes, whose new state the cache has just handed to the start's listener; the look
uses that dict instead of decoding the cache entry again, but only while it is the
version the cache holds, and never for a deployment's own ``is_pod_running`` (which
gets a fresh dict at every look, as it always did). An Event of the pod wakes the wait
only when the last look consulted the pod's Events (an unschedulable pod waiting for an
autoscaler): otherwise it cannot change the verdict before the pod itself changes.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from async_kubespawner import KubeSpawner
from async_kubespawner.kube.cache import EventIndex, ObjectCache, trim_pod
from async_kubespawner.lifecycle.readiness import Tolerances
from async_kubespawner.lifecycle.start import (
    StartOperation,
    _StartWatch,
    _stock_is_pod_running,
)

KEY = ("ns", "jupyter-alice")


def _pod(rv: str, phase: str = "Pending") -> dict[str, Any]:
    return {
        "metadata": {"name": KEY[1], "namespace": KEY[0], "uid": "u1", "resourceVersion": rv},
        "status": {"phase": phase},
    }


class _Changed:
    def set(self) -> None:
        pass


def _operation(cache: ObjectCache, *, stock: bool = True) -> StartOperation:
    """A start's look state alone (the rest of the operation is not needed here),
    listening to its pod as a start does."""
    operation = object.__new__(StartOperation)
    operation.pod_cache = cache
    operation.pod_key = KEY
    operation._delivered = None
    operation._reuse_delivered = stock
    operation.changed = _Changed()  # type: ignore[assignment]
    operation.watch = type("W", (), {"uid": "u1"})()
    cache.listen(KEY, operation._on_pod_change)
    return operation


def test_the_delivered_pod_is_used_while_it_is_the_cached_version() -> None:
    cache = ObjectCache(trim_pod)
    operation = _operation(cache)
    assert operation._current_pod() is None  # not created yet
    cache.upsert(_pod("1"))  # outside a loop: the listener hears it at once
    delivered = operation._delivered
    assert delivered is not None
    assert operation._current_pod() is delivered
    assert operation._current_pod() == cache.get(KEY)


def test_a_newer_cached_version_is_decoded() -> None:
    cache = ObjectCache(trim_pod)
    operation = _operation(cache)
    cache.upsert(_pod("1"))
    stale = operation._delivered
    cache.upsert(_pod("2", "Running"))
    operation._delivered = stale  # the newer state not delivered yet
    current = operation._current_pod()
    assert current is not stale and current == cache.get(KEY)
    assert current is not None and current["metadata"]["resourceVersion"] == "2"


def test_a_removed_pod_is_none_even_before_its_removal_is_delivered() -> None:
    cache = ObjectCache(trim_pod)
    operation = _operation(cache)
    cache.upsert(_pod("1"))
    delivered = operation._delivered
    cache.remove(_pod("1"))
    operation._delivered = delivered
    assert operation._current_pod() is None


def test_an_own_is_pod_running_gets_a_fresh_pod_at_every_look() -> None:
    class Custom(KubeSpawner):
        def is_pod_running(self, pod: Any) -> bool:
            return super().is_pod_running(pod)

    assert _stock_is_pod_running(object.__new__(KubeSpawner))
    assert not _stock_is_pod_running(object.__new__(Custom))
    cache = ObjectCache(trim_pod)
    operation = _operation(cache, stock=False)
    cache.upsert(_pod("1"))
    first, second = operation._current_pod(), operation._current_pod()
    assert first == second == cache.get(KEY)
    assert first is not second and first is not operation._delivered


# -- which Events wake the readiness wait ------------------------------------------------


class _Recorded:
    """A ``changed`` flag that counts its sets."""

    def __init__(self) -> None:
        self.sets = 0

    def set(self) -> None:
        self.sets += 1


def _event(reason: str, n: int) -> dict[str, Any]:
    return {
        "metadata": {"name": f"e{n}", "namespace": KEY[0], "uid": f"e{n}", "resourceVersion": str(n)},
        "involvedObject": {"kind": "Pod", "name": KEY[1], "namespace": KEY[0], "uid": "u1"},
        "reason": reason,
        "message": reason,
        "type": "Normal",
    }


def _unschedulable(rv: str) -> dict[str, Any]:
    pod = _pod(rv)
    pod["status"]["conditions"] = [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
         "message": "0/3 nodes are available"}
    ]  # fmt: skip
    return pod


def _watching(stock: bool = True) -> tuple[StartOperation, ObjectCache, EventIndex, _Recorded]:
    cache, index = ObjectCache(trim_pod), EventIndex()
    operation = _operation(cache, stock=stock)
    operation.watch = _StartWatch(uid="u1", pod_name=KEY[1], namespace=KEY[0], pvc_name=None)
    operation.event_index = index
    operation.progress = None
    operation.namespace, operation.pod_name = KEY
    operation.plan = SimpleNamespace(tolerances=Tolerances(unschedulable=30.0))  # type: ignore[assignment]
    operation.host = object.__new__(KubeSpawner)  # only its is_pod_running is asked
    recorded = _Recorded()
    operation.changed = recorded  # type: ignore[assignment]
    index.listen(KEY[0], KEY[1], operation._on_pod_event)
    return operation, cache, index, recorded


def test_an_event_that_cannot_change_the_verdict_does_not_wake_the_wait() -> None:
    operation, cache, index, recorded = _watching()
    cache.upsert(_pod("1"))  # pending: its events decide nothing
    assert recorded.sets == 1
    _, verdict = operation._look(100.0)
    assert verdict.state == "waiting"
    index.upsert(_event("Pulling", 1))
    assert recorded.sets == 1  # heard (progress), no wake
    cache.upsert(_pod("2"))  # the pod itself changes: a wake
    assert recorded.sets == 2


def test_an_unschedulable_pod_is_woken_by_its_events() -> None:
    """Its verdict reads the pod's events (an autoscaler scaling up): each one wakes."""
    operation, cache, index, recorded = _watching()
    cache.upsert(_unschedulable("1"))
    _, verdict = operation._look(100.0)
    assert verdict.reason == "Unschedulable"
    index.upsert(_event("TriggeredScaleUp", 1))
    assert recorded.sets == 2
    _, verdict = operation._look(101.0)
    assert verdict.reason == "ScalingUp"


def test_an_own_is_pod_running_is_woken_by_every_event() -> None:
    class Custom(KubeSpawner):
        def is_pod_running(self, pod: Any) -> bool:
            return super().is_pod_running(pod)

    operation, cache, index, recorded = _watching(stock=False)
    operation.host = object.__new__(Custom)
    cache.upsert(_pod("1"))
    operation._look(100.0)
    index.upsert(_event("Pulling", 1))
    assert recorded.sets == 2


def test_a_look_does_not_keep_the_delivered_pod() -> None:
    """Thousands of waiting spawns must not each hold a decoded pod between changes:
    the look after a change uses the delivered dict, later looks decode the entry."""
    operation, cache, _index, _recorded = _watching()
    cache.upsert(_pod("1"))
    delivered = operation._delivered
    first, _ = operation._look(100.0)
    assert first is delivered and operation._delivered is None
    second, _ = operation._look(101.0)
    assert second == first and second is not first
