"""The Event index evicts in insertion order, as it did with one OrderedDict, without ever
rebuilding a large ordered mapping in one step.

The index keeps its eviction order in a deque (entries of removed events are skipped) and
a plain dict of what it keeps. What could fail: which events are kept after any sequence
of additions, changes and removals (compared with a reference model written the way the
index was before, one OrderedDict), and the order's length under churn.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from async_kubespawner.kube.cache import EventIndex

PODS = ("a", "b", "c")


def _event(uid: str, pod: str, rv: str = "1") -> dict[str, Any]:
    return {
        "metadata": {"name": f"{pod}.{uid}", "namespace": "ns", "uid": uid, "resourceVersion": rv},
        "involvedObject": {"kind": "Pod", "name": pod, "namespace": "ns", "uid": f"uid-{pod}"},
        "reason": "Scheduled",
        "message": "m",
    }


class _Reference:
    """The index's bounds as they were: one OrderedDict for the order, one per object."""

    def __init__(self, per_object: int, total: int) -> None:
        self.per_object, self.total = per_object, total
        self.order: OrderedDict[str, str] = OrderedDict()
        self.buckets: dict[str, OrderedDict[str, str]] = {}

    def upsert(self, uid: str, pod: str, rv: str) -> None:
        bucket = self.buckets.setdefault(pod, OrderedDict())
        previous = bucket.get(uid)
        if previous == rv:
            return
        bucket[uid] = rv
        if previous is None:
            self.order[uid] = pod
            while len(bucket) > self.per_object:
                old, _ = bucket.popitem(last=False)
                self.order.pop(old, None)
            while len(self.order) > self.total:
                old, old_pod = self.order.popitem(last=False)
                self.buckets[old_pod].pop(old, None)

    def remove(self, uid: str) -> None:
        pod = self.order.pop(uid, None)
        if pod is not None:
            self.buckets[pod].pop(uid, None)

    def kept(self, pod: str) -> list[tuple[str, str]]:
        return list(self.buckets.get(pod, {}).items())


operations = st.lists(
    st.one_of(
        st.tuples(st.just("upsert"), st.integers(0, 12), st.sampled_from(PODS),
                  st.sampled_from(("1", "2"))),
        st.tuples(st.just("remove"), st.integers(0, 12)),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(operations, st.integers(1, 4), st.integers(1, 8))
def test_the_same_events_are_kept_as_with_one_ordered_dict(
    ops: list[tuple[Any, ...]], per_object: int, total: int
) -> None:
    index = EventIndex(per_object_limit=per_object, total_limit=total)
    reference = _Reference(per_object, total)
    pods_of: dict[str, str] = {}  # an event's uid always names the same pod, as in Kubernetes
    for op in ops:
        if op[0] == "upsert":
            _, n, pod, rv = op
            uid = f"e{n}"
            pod = pods_of.setdefault(uid, pod)
            index.upsert(_event(uid, pod, rv))
            reference.upsert(uid, pod, rv)
        else:
            uid = f"e{op[1]}"
            index.remove({"metadata": {"uid": uid}})
            reference.remove(uid)
        assert len(index) == len(reference.order)
        for pod in PODS:
            held = [(e["metadata"]["uid"], e["metadata"]["resourceVersion"])
                    for e in index.for_object("ns", pod)]
            assert held == reference.kept(pod)


def test_the_order_stays_as_long_as_what_is_kept() -> None:
    """Removals at the head go at once; removals elsewhere are dropped in one rebuild
    once they would make the order more than twice as long as needed."""
    index = EventIndex(per_object_limit=10_000, total_limit=10_000)
    for i in range(3000):
        index.upsert(_event(f"e{i}", PODS[i % 3]))
    for i in range(100):  # the oldest, as Events expire
        index.remove({"metadata": {"uid": f"e{i}"}})
    assert len(index._fifo) == len(index) == 2900
    for i in range(2999, 499, -1):  # the newest, leaving stale entries behind the head
        index.remove({"metadata": {"uid": f"e{i}"}})
    assert len(index) == 400
    assert len(index._fifo) <= 2 * len(index) + 1024
    # And eviction still takes the oldest kept event first.
    small = EventIndex(per_object_limit=100, total_limit=3)
    for uid in ("x1", "x2", "x3"):
        small.upsert(_event(uid, "a"))
    small.remove({"metadata": {"uid": "x1"}})
    small.upsert(_event("x1", "a"))  # added again: now the newest
    small.upsert(_event("x4", "a"))
    assert [e["metadata"]["uid"] for e in small.for_object("ns", "a")] == ["x3", "x1", "x4"]
