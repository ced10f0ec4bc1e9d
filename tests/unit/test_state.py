"""Spawner state: upstream's keys, so a hub can switch spawners in either direction
and keep its running servers and PVCs."""

from __future__ import annotations

import pytest

from async_kubespawner import __version__
from async_kubespawner.traits import STATE_VERSION_KEY, UPSTREAM_COMPATIBLE_VERSION
from tests.unit.spawner_fakes import make_spawner


def test_fresh_state_has_upstream_keys_and_ours() -> None:
    state = make_spawner("alice", "lab").get_state()
    assert state == {
        "pod_name": "jupyter-alice--lab",
        "namespace": "default",
        "dns_name": "jupyter-alice--lab.default.svc.cluster.local",
        "kubespawner_version": UPSTREAM_COMPATIBLE_VERSION,
        STATE_VERSION_KEY: __version__,
    }
    assert UPSTREAM_COMPATIBLE_VERSION.startswith("7.")


def test_pvc_name_is_saved_only_once_the_pvc_exists() -> None:
    spawner = make_spawner()
    assert "pvc_name" not in spawner.get_state()
    spawner.mark_pvc_exists()
    assert spawner.get_state()["pvc_name"] == "claim-alice"
    # saved even without remember_pvc_name (as upstream): load_state decides
    forgetful = make_spawner(
        config={"remember_pvc_name": False, "pvc_name_template": "home-{username}"}
    )
    forgetful.mark_pvc_exists()
    assert forgetful.get_state()["pvc_name"] == "home-alice"
    forgetful.load_state({**forgetful.get_state(), "pvc_name": "claim-old"})
    assert forgetful.pvc_name == "home-alice"


# Exactly what upstream KubeSpawner 7.1 writes for a running named server.
UPSTREAM_STATE = {
    "pod_name": "jupyter-alice--lab",
    "namespace": "jhub",
    "dns_name": "jupyter-alice--lab.jhub.svc.cluster.local",
    "pvc_name": "claim-alice--lab",
    "kubespawner_version": "7.1.0",
}


def test_load_upstream_state() -> None:
    spawner = make_spawner("alice", "lab", config={"pvc_name_template": "home-{username}"})
    spawner.load_state(UPSTREAM_STATE)
    assert spawner.pod_name == "jupyter-alice--lab"
    assert spawner.namespace == "jhub"
    assert spawner.dns_name == "jupyter-alice--lab.jhub.svc.cluster.local"
    # the remembered PVC wins over a changed template
    assert spawner.pvc_name == "claim-alice--lab"
    assert not spawner.needs_legacy_pvc_check
    saved = spawner.get_state()
    assert {k: saved[k] for k in UPSTREAM_STATE} == UPSTREAM_STATE
    assert saved[STATE_VERSION_KEY] == __version__


def test_our_state_round_trips() -> None:
    first = make_spawner("bob", "x", config={"namespace": "users"})
    first.mark_pvc_exists()
    state = first.get_state()
    second = make_spawner("bob", "x")
    second.load_state(state)
    assert second.get_state() == state
    assert second.namespace == "users"


def test_clear_state_keeps_a_remembered_pvc_and_renews_the_rest() -> None:
    spawner = make_spawner(
        "alice", "lab", config={"pod_name_template": "nb-{username}--{servername}"}
    )
    spawner.load_state(UPSTREAM_STATE)
    spawner.clear_state()
    assert spawner.pod_name == "nb-alice--lab"
    assert spawner.pvc_name == "claim-alice--lab"
    assert spawner.get_state()["pvc_name"] == "claim-alice--lab"
    assert spawner.api_token == ""


def test_clear_state_forgets_pvc_without_remember_pvc_name() -> None:
    spawner = make_spawner(
        "alice", "lab", config={"remember_pvc_name": False, "pvc_name_template": "home-{username}"}
    )
    spawner.load_state(UPSTREAM_STATE)
    assert spawner.pvc_name == "home-alice"  # the saved name is not used
    spawner.clear_state()
    assert spawner.pvc_name == "home-alice"
    assert "pvc_name" not in spawner.get_state()


# What a KubeSpawner older than 7.0 left in the database (no version key).
PRE7_STATE = {"pod_name": "jupyter-alice-2esmith"}


@pytest.mark.parametrize("user", ["alice.smith", "Alice.Smith"])
def test_pre7_state_asks_for_the_legacy_pvc(user: str) -> None:
    spawner = make_spawner(user)
    spawner.load_state(PRE7_STATE)
    assert spawner.pod_name == "jupyter-alice-2esmith"
    assert spawner.needs_legacy_pvc_check
    expected = "claim-" + ("alice-2esmith" if user == "alice.smith" else "-41lice-2e-53mith")
    assert spawner.legacy_pvc_name() == expected
    # the new-scheme name is untouched until the lifecycle finds the legacy PVC
    assert spawner.pvc_name.startswith("claim-alice-smith---")
    spawner.use_pvc_name(spawner.legacy_pvc_name())
    assert not spawner.needs_legacy_pvc_check
    state = spawner.get_state()
    assert state["pvc_name"] == expected
    assert state["kubespawner_version"] == UPSTREAM_COMPATIBLE_VERSION


def test_legacy_check_off() -> None:
    spawner = make_spawner("alice.smith", config={"handle_legacy_names": False})
    spawner.load_state(PRE7_STATE)
    assert not spawner.needs_legacy_pvc_check


def test_empty_state_is_not_legacy() -> None:
    spawner = make_spawner()
    spawner.load_state({})
    assert not spawner.needs_legacy_pvc_check
    assert spawner.pod_name == "jupyter-alice"


def test_a_running_servers_names_stay_those_of_its_state() -> None:
    """Until the server stops, a changed template (a new config, a profile) renames
    nothing: the hub must find the pod it started."""
    spawner = make_spawner("alice")
    spawner.load_state(UPSTREAM_STATE)
    spawner.pod_name_template = "lab-{username}"
    assert spawner.pod_name == "jupyter-alice--lab"
    assert spawner.dns_name == "jupyter-alice--lab.jhub.svc.cluster.local"


def test_template_overrides_after_clear_state_keep_remembered_pvc() -> None:
    """JupyterHub clears the state, then applies the profile, then starts: a profile's
    templates name the new pod, but the remembered PVC is never replaced."""
    spawner = make_spawner("alice")
    spawner.load_state(UPSTREAM_STATE)
    spawner.clear_state()
    spawner.pod_name_template = "lab-{username}"
    spawner.pvc_name_template = "vol-{username}"
    spawner.slug_scheme = "escape"
    assert spawner.pod_name == "lab-alice"
    assert spawner.pvc_name == "claim-alice--lab"
    assert spawner.dns_name == "lab-alice.jhub.svc.cluster.local"


def test_user_namespaces_in_state() -> None:
    spawner = make_spawner("alice", config={"enable_user_namespaces": True})
    assert spawner.namespace == "user-alice"  # hub namespace 'default' -> 'user'
    spawner.load_state({**UPSTREAM_STATE, "namespace": "old-alice"})
    assert spawner.namespace == "old-alice"
    # a changed template does not move a server whose namespace is in its state
    spawner.user_namespace_template = "new-{username}"
    assert spawner.names.namespace == spawner.namespace == "old-alice"
    spawner.clear_state()
    assert spawner.namespace == "old-alice"
    assert spawner.dns_name == "jupyter-alice.old-alice.svc.cluster.local"
    # a fresh user gets the template's namespace
    fresh = make_spawner(
        "bob", config={"enable_user_namespaces": True, "user_namespace_template": "new-{username}"}
    )
    assert fresh.namespace == "new-bob"


def test_legacy_check_needs_a_different_legacy_name() -> None:
    plain = make_spawner("alice")  # same name in both schemes: nothing to look for
    plain.load_state({"pod_name": "jupyter-alice"})
    assert not plain.needs_legacy_pvc_check
    forgetful = make_spawner("alice.smith", config={"remember_pvc_name": False})
    forgetful.load_state(PRE7_STATE)
    assert not forgetful.needs_legacy_pvc_check


@pytest.mark.parametrize(
    ("existing", "expected_name", "remembered"),
    [
        ({"claim-alice-smith---" + "*"}, "new", True),  # the current name exists: keep it
        ({"claim-alice-2esmith"}, "claim-alice-2esmith", True),  # only the legacy one
        (set(), "new", False),  # neither: the lifecycle creates the current one
    ],
)
async def test_resolve_legacy_pvc_name(
    existing: set[str], expected_name: str, remembered: bool
) -> None:
    spawner = make_spawner("alice.smith")
    spawner.load_state(PRE7_STATE)
    current = spawner.pvc_name
    existing = {current if name.endswith("*") else name for name in existing}
    asked: list[str] = []

    async def pvc_exists(name: str) -> bool:
        asked.append(name)
        return name in existing

    await spawner.resolve_legacy_pvc_name(pvc_exists)
    assert spawner.pvc_name == (current if expected_name == "new" else expected_name)
    assert asked[0] == current
    assert ("pvc_name" in spawner.get_state()) is remembered
    assert not spawner.needs_legacy_pvc_check or not remembered
    # once resolved, the next start asks nothing
    if remembered:
        asked.clear()
        await spawner.resolve_legacy_pvc_name(pvc_exists)
        assert asked == []


def test_names_follow_their_inputs_until_something_decides_them() -> None:
    spawner = make_spawner("alice", "lab")
    assert spawner.pod_name == "jupyter-alice--lab"
    spawner.pod_name_template = "nb-{username}"
    spawner.namespace = "team"
    spawner.slug_scheme = "escape"
    assert (spawner.pod_name, spawner.dns_name) == ("nb-alice", "nb-alice.team.svc.cluster.local")
    spawner.user.name = "bob"  # an admin renamed the user
    assert spawner.pod_name == "nb-bob"
    spawner.pod_name = "chosen"
    spawner.pod_name_template = "other-{username}"
    assert spawner.pod_name == spawner.secret_name == "chosen"


async def test_a_profiles_namespace_wins_over_user_namespaces() -> None:
    """Names are not recomputed after the overrides, so a profile's namespace stays the
    namespace of the spawn, user namespaces or not (docs/profiles.md)."""
    spawner = make_spawner(
        "alice",
        config={
            "enable_user_namespaces": True,
            "profile_list": [
                {
                    "display_name": "Team",
                    "slug": "team",
                    "kubespawner_override": {"namespace": "team-a"},
                }
            ],
        },
    )
    spawner.clear_state()
    assert spawner.namespace == "user-alice"
    await spawner.load_user_options()
    assert spawner.namespace == spawner.names.namespace == "team-a"
    assert spawner.dns_name == "jupyter-alice.team-a.svc.cluster.local"
