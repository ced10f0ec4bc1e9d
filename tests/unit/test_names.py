"""compute_names and the state mapping as pure functions: templates, remembered names,
dependency order, and what outlives a stop."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from async_kubespawner.objects.names import (
    NameTemplateError,
    NameTemplates,
    Remembered,
    compute_names,
    legacy_pvc_name,
)
from async_kubespawner.objects.slugs import TemplateFields
from async_kubespawner.objects.state import (
    LEGACY_STATE_VERSION,
    STATE_VERSION_KEY,
    UPSTREAM_COMPATIBLE_VERSION,
    SavedNames,
    after_stop,
    read_state,
    state_to_save,
)

TEMPLATES = NameTemplates(
    pod="jupyter-{user_server}",
    pvc="claim-{user_server}",
    secret="{pod_name}",
    dns="{name}.{namespace}.svc.cluster.local",
    namespace="jhub",
)


def fields(user: str = "alice", server: str = "", scheme: str = "safe") -> TemplateFields:
    return TemplateFields.for_server(
        username=user, servername=server, userid=7, hub_namespace="jhub", slug_scheme=scheme
    )


def test_names_from_the_default_templates() -> None:
    names = compute_names(fields("alice", "lab"), TEMPLATES)
    assert names.namespace == "jhub"
    assert names.pod_name == "jupyter-alice--lab"
    assert names.pvc_name == "claim-alice--lab"
    assert names.secret_name == "jupyter-alice--lab"
    assert names.dns_name == "jupyter-alice--lab.jhub.svc.cluster.local"


def test_user_namespace_feeds_the_other_templates() -> None:
    templates = NameTemplates(
        pod="nb-{namespace}",
        pvc="home-{pod_name}",
        secret="tok-{pod_name}",
        dns="{name}.{namespace}",
        namespace="jhub",
        user_namespace="{hubnamespace}-{username}",
    )
    names = compute_names(fields(), templates)
    assert names.namespace == "jhub-alice"
    assert names.pod_name == "nb-jhub-alice"
    assert (names.pvc_name, names.secret_name) == ("home-nb-jhub-alice", "tok-nb-jhub-alice")
    assert names.dns_name == "nb-jhub-alice.jhub-alice"


def test_remembered_names_win_and_derived_names_follow_them() -> None:
    templates = NameTemplates(
        pod="jupyter-{username}",
        pvc="home-{pod_name}",
        secret="{pod_name}-secret",
        dns="{name}.{namespace}",
        namespace="jhub",
    )
    names = compute_names(fields(), templates, Remembered(pod_name="old-pod", namespace="ns0"))
    assert names.namespace == "ns0"
    assert names.pod_name == "old-pod"
    assert names.pvc_name == "home-old-pod"
    assert names.secret_name == "old-pod-secret"
    assert names.dns_name == "old-pod.ns0"
    kept = compute_names(fields(), templates, Remembered(pvc_name="claim-x", dns_name="d"))
    assert (kept.pvc_name, kept.dns_name, kept.pod_name) == ("claim-x", "d", "jupyter-alice")


def test_merged_remembered_names() -> None:
    state = Remembered(pod_name="p", pvc_name="claim-alice")
    assigned = Remembered(pvc_name="course-data")
    merged = state.merged(assigned)
    assert (merged.pod_name, merged.pvc_name) == ("p", "course-data")


def test_legacy_pvc_name_uses_the_escape_scheme() -> None:
    f = fields("al.ice")
    names = compute_names(f, TEMPLATES)
    assert names.pvc_name.startswith("claim-al-ice---")
    assert legacy_pvc_name(f, TEMPLATES, names) == "claim-al-2eice"


@pytest.mark.parametrize(
    ("templates", "setting"),
    [
        (NameTemplates("x-{nope}", "c", "s", "{name}", "ns"), "pod_name_template"),
        (NameTemplates("p", "c-{username.x}", "s", "{name}", "ns"), "pvc_name_template"),
        (NameTemplates("p", "c", "s", "{pod}", "ns"), "dns_name_template"),
        (NameTemplates("p", "c", "s", "{name}", "ns", "{x}"), "user_namespace_template"),
    ],
)
def test_a_template_that_cannot_be_expanded_names_its_setting(
    templates: NameTemplates, setting: str
) -> None:
    with pytest.raises(NameTemplateError) as info:
        compute_names(fields(), templates)
    assert info.value.setting == setting


@given(
    user=st.text(min_size=1, max_size=40),
    server=st.text(max_size=20),
    pod=st.one_of(st.none(), st.from_regex(r"[a-z][a-z0-9-]{0,20}[a-z0-9]", fullmatch=True)),
    pvc=st.one_of(st.none(), st.from_regex(r"[a-z][a-z0-9-]{0,20}[a-z0-9]", fullmatch=True)),
)
def test_user_input_is_data_and_remembered_names_always_win(
    user: str, server: str, pod: str | None, pvc: str | None
) -> None:
    """Any user or server name (braces included) expands without error and never
    reaches a template as a template; a remembered name is returned exactly."""
    names = compute_names(fields(user, server), TEMPLATES, Remembered(pod_name=pod, pvc_name=pvc))
    if pod is not None:
        assert names.pod_name == pod
    if pvc is not None:
        assert names.pvc_name == pvc
    assert "{" not in names.pod_name + names.pvc_name or "{" in user + server


# -- state -------------------------------------------------------------------------


def test_state_round_trip() -> None:
    names = compute_names(fields("bob", "x"), TEMPLATES)
    saved = SavedNames().with_pvc(names.pvc_name, remember=True)
    state = state_to_save(names, saved, "9.9")
    assert state == {
        "pod_name": "jupyter-bob--x",
        "namespace": "jhub",
        "dns_name": "jupyter-bob--x.jhub.svc.cluster.local",
        "pvc_name": "claim-bob--x",
        "kubespawner_version": UPSTREAM_COMPATIBLE_VERSION,
        STATE_VERSION_KEY: "9.9",
    }
    loaded = read_state(state, remember_pvc_name=True)
    assert loaded.existing_pvc == "claim-bob--x" and loaded.version == UPSTREAM_COMPATIBLE_VERSION
    assert compute_names(fields("bob", "x"), TEMPLATES, loaded.names) == names


def test_pvc_name_is_saved_only_once_it_exists() -> None:
    names = compute_names(fields(), TEMPLATES)
    assert "pvc_name" not in state_to_save(names, SavedNames(), "1")
    # saved without remember_pvc_name too (load_state decides whether to use it)
    forgetful = SavedNames().with_pvc(names.pvc_name, remember=False)
    assert forgetful.names.pvc_name is None
    assert state_to_save(names, forgetful, "1")["pvc_name"] == "claim-alice"
    assert read_state({"pvc_name": "claim-old"}, remember_pvc_name=False).names.pvc_name is None


def test_a_remembered_pvc_is_not_replaced_by_a_later_one() -> None:
    saved = SavedNames().with_pvc("claim-alice", remember=True)
    again = saved.with_pvc("course-data", remember=True)
    assert again.names.pvc_name == "claim-alice"
    names = compute_names(fields(), TEMPLATES, Remembered(pvc_name="course-data"))
    assert state_to_save(names, again, "1")["pvc_name"] == "claim-alice"


def test_state_versions() -> None:
    assert read_state({}, remember_pvc_name=True).version is None
    pre7 = read_state({"pod_name": "jupyter-alice"}, remember_pvc_name=True)
    assert pre7.version == LEGACY_STATE_VERSION and pre7.is_legacy
    assert not read_state({"kubespawner_version": "7.1.0"}, remember_pvc_name=True).is_legacy


def test_after_stop_keeps_namespace_and_pvc_only() -> None:
    saved = read_state(
        {
            "pod_name": "p",
            "dns_name": "d",
            "namespace": "ns",
            "pvc_name": "c",
            "kubespawner_version": "7",
        },
        remember_pvc_name=True,
    )
    kept = after_stop(saved)
    assert kept.names == Remembered(namespace="ns", pvc_name="c")
    assert kept.pvc_exists and kept.version == "7"
