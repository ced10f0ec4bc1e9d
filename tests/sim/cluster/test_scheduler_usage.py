"""The scheduler's running per-node sums equal a full recount after any bind history.

Scheduling reads each node's requested resources and pod count for every pod; they are
kept up to date as pods bind and unbind instead of being recounted each time. A wrong
sum would place pods on full nodes, so every sequence of binds, rebinds and removals
must leave exactly what summing the bound pods gives, with Decimal results identical.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from kubesim.cluster.scheduler import _BoundPods

KEYS = st.tuples(st.just("ns"), st.sampled_from(["a", "b", "c", "d", "e"]))
REQUESTS = st.dictionaries(
    st.sampled_from(["cpu", "memory", "nvidia.com/gpu"]),
    st.decimals(min_value=0, max_value=10**12, places=3, allow_nan=False, allow_infinity=False),
    max_size=3,
)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("set"), KEYS, st.sampled_from(["n1", "n2"]), REQUESTS),
        st.tuples(st.just("pop"), KEYS),
        st.tuples(st.just("del"), KEYS),
        st.tuples(st.just("usage"),),
    ),
    max_size=30,
)


def _recount(bound: dict[Any, tuple[str, dict[str, Decimal]]]) -> tuple[dict[str, Any], dict[str, int]]:
    used: dict[str, dict[str, Decimal]] = {}
    counts: dict[str, int] = {}
    for node, requests in bound.values():
        counts[node] = counts.get(node, 0) + 1
        per_node = used.setdefault(node, {})
        for resource, amount in requests.items():
            per_node[resource] = per_node.get(resource, Decimal(0)) + amount
    return used, counts


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_running_sums_equal_a_recount(ops: list[tuple[Any, ...]]) -> None:
    bound = _BoundPods()
    plain: dict[Any, tuple[str, dict[str, Decimal]]] = {}
    held = []
    for op in ops:
        if op[0] == "set":
            bound[op[1]] = (op[2], op[3])
            plain[op[1]] = (op[2], op[3])
        elif op[0] == "pop":
            assert bound.pop(op[1], None) == plain.pop(op[1], None)
        elif op[0] == "del" and op[1] in plain:
            del bound[op[1]]
            del plain[op[1]]
        else:
            snapshot = _recount(plain)
            usage = bound.usage()
            held.append((usage, snapshot))
        assert bound.usage() == _recount(plain)
        assert dict(bound) == plain
        assert list(bound) == list(plain)
    # a usage handed out earlier is never changed by later binds
    for usage, snapshot in held:
        assert usage == snapshot
