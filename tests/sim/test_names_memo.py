"""The name grammars remember their answers without changing them.

Validation asks the same questions on every write (label keys, finalizers, the object's
name), so the grammar checks cache their answers per string; these pin the cached
answers to the uncached rules and make sure a caller's list is its own.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kubesim import names

RULES: list[Callable[[str], list[str]]] = [
    names.dns1123_label_errors,
    names.dns1123_subdomain_errors,
    names.dns1035_label_errors,
    names.qualified_name_errors,
    names.label_value_errors,
    names.config_key_errors,
    names.port_name_errors,
]
NAMEISH = st.text(alphabet="abcXYZ019-_./:", max_size=70) | st.text(max_size=300)


@settings(max_examples=300, deadline=None)
@given(NAMEISH)
def test_cached_answers_equal_the_rules(value: str) -> None:
    for rule in RULES:
        uncached = rule.__wrapped__(value)  # type: ignore[attr-defined]
        assert rule(value) == uncached
        assert rule(value) == uncached  # the second call is answered from the cache


@pytest.mark.parametrize("rule", RULES)
def test_each_call_gets_its_own_list(rule: Callable[[str], list[str]]) -> None:
    bad = "-Not Valid-" * 30
    first = rule(bad)
    assert first
    first.append("changed by a caller")
    assert "changed by a caller" not in rule(bad)
    valid = rule("ok")
    valid.append("x")
    assert "x" not in rule("ok")


def test_non_strings_reach_the_rule_uncached() -> None:
    with pytest.raises(AttributeError):
        names.qualified_name_errors(5)
