"""The default field manager (the User-Agent's product token) is the same when cached."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st
from kubesim.managed_fields import manager_from


def _rule(user_agent: str) -> str:
    """The real server's rule: the part before "/", printable characters, at most 128."""
    kept = [ch for ch in user_agent.split("/")[0]
            if ch.isprintable() and not unicodedata.category(ch).startswith("C")]
    return "".join(kept[:128])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.none() | st.text(max_size=5))
def test_manager_follows_the_rule_every_time(user_agent: str, field_manager: str | None) -> None:
    expected = field_manager or _rule(user_agent)
    assert manager_from(field_manager, user_agent) == expected
    assert manager_from(field_manager, user_agent) == expected


def test_known_agents() -> None:
    assert manager_from(None, "OpenAPI-Generator/36.1.0/python") == "OpenAPI-Generator"
    assert manager_from("mine", "kubectl/v1.30") == "mine"
    assert manager_from("", "kube\u200bctl/v1") == "kubectl"
    assert manager_from(None, "x" * 300) == "x" * 128
