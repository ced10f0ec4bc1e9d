"""order_env keeps upstream's order exactly: checked against the plain rounds algorithm
on random environments with references, cycles and dangling references."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from async_kubespawner.objects.manifests import _env_references, order_env


def rounds_order(env: dict[str, Any]) -> list[str]:
    """The rounds as upstream describes them, written the obvious way."""
    pending = {name: _env_references(name, value) for name, value in env.items()}
    placed: list[str] = []
    while pending:
        ready = sorted(name for name, refs in pending.items() if refs <= set(placed))
        if not ready:
            return placed + sorted(pending)
        placed += ready
        for name in ready:
            del pending[name]
    return placed


_names = st.sampled_from(["A", "B", "C", "HOME", "PATH", "X_1", "NOPE"])
_value = st.one_of(
    st.text(max_size=8),
    st.lists(_names, max_size=3).map(lambda refs: "/".join(f"$({r})" for r in refs)),
    st.dictionaries(st.just("valueFrom"), st.just({"fieldRef": {"fieldPath": "x"}}), max_size=1),
)


@given(st.dictionaries(_names, _value, max_size=7))
def test_order_env_is_the_rounds_order(env: dict[str, Any]) -> None:
    assert order_env(env) == rounds_order(env)
