"""Properties of RBAC rule matching: the escalation check and the authorizer agree.

If the escalation check finds that an owner's rules cover a role's rules, then every
request that role's rules allow must also be allowed by the owner's rules — otherwise
someone could grant, through a binding, a right they do not have themselves.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from kubesim.auth.escalation import _atoms, missing
from kubesim.auth.rbac import rule_allows
from kubesim.auth.requestinfo import Attributes

GROUPS = ["", "apps", "rbac.authorization.k8s.io"]
RESOURCES = ["pods", "pods/log", "secrets", "deployments"]
VERBS = ["get", "list", "create", "delete"]
NAMES = ["a", "b"]


def rules(with_wildcards: bool) -> st.SearchStrategy[list[dict[str, list[str]]]]:
    groups = GROUPS + (["*"] if with_wildcards else [])
    resources = RESOURCES + (["*", "*/log"] if with_wildcards else [])
    verbs = VERBS + (["*"] if with_wildcards else [])
    rule = st.fixed_dictionaries(
        {
            "apiGroups": st.lists(st.sampled_from(groups), min_size=1, max_size=2, unique=True),
            "resources": st.lists(st.sampled_from(resources), min_size=1, max_size=2, unique=True),
            "verbs": st.lists(st.sampled_from(verbs), min_size=1, max_size=2, unique=True),
        },
        optional={"resourceNames": st.lists(st.sampled_from(NAMES), min_size=1, max_size=2, unique=True)},
    )
    return st.lists(rule, min_size=1, max_size=3)


def request(group: str, combined: str, verb: str, name: str) -> Attributes:
    resource, _, sub = combined.partition("/")
    return Attributes(verb, True, "", group, "v1", "ns", resource, sub, name)


REQUESTS = [
    request(g, r, v, n) for g in GROUPS for r in RESOURCES for v in VERBS for n in ["", *NAMES]
]


@settings(max_examples=300, deadline=None)
@given(owner=rules(with_wildcards=True), granted=rules(with_wildcards=False))
def test_covered_rules_never_allow_more_than_the_owner(owner: list[dict[str, list[str]]], granted: list[dict[str, list[str]]]) -> None:
    if missing(owner, granted):
        return
    for attrs in REQUESTS:
        if any(rule_allows(attrs, r) for r in granted):
            assert any(rule_allows(attrs, r) for r in owner), (attrs, owner, granted)


@settings(max_examples=300, deadline=None)
@given(granted=rules(with_wildcards=False))
def test_rules_cover_themselves_and_their_atoms_allow_the_same(granted: list[dict[str, list[str]]]) -> None:
    assert missing(granted, granted) == []
    atoms = [a for r in granted for a in _atoms(r)]
    for attrs in REQUESTS:
        assert any(rule_allows(attrs, r) for r in granted) == any(rule_allows(attrs, a) for a in atoms)
