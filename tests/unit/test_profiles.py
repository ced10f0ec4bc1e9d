"""profile_list normalisation, the validation of user_options, and applying overrides."""

import asyncio
from typing import Any

import pytest
from tornado import web

from async_kubespawner.profiles import (
    STATE_KEY,
    ProfileListError,
    ProfileOverrideError,
    merge_override,
    normalize_profile_list,
    select_profile,
    substitute_unlisted_value,
)

from .profiles_support import PROFILES, ProfileTestSpawner


def spawner_with(profile_list: Any, **traits: Any) -> ProfileTestSpawner:
    return ProfileTestSpawner(profile_list=profile_list, **traits)


# --------------------------------------------------------------------------- #
# normalisation
# --------------------------------------------------------------------------- #


def test_slug_derived_from_display_name_as_upstream_and_defaults_filled() -> None:
    profiles = normalize_profile_list(
        [{"display_name": "Données GPU, 1,000 cores!"}, {"display_name": "Other"}]
    )
    assert [p["slug"] for p in profiles] == ["donnees-gpu-1000-cores", "other"]
    assert [p["default"] for p in profiles] == [True, False]
    assert profiles[0]["description"] == ""
    assert profiles[0]["kubespawner_override"] == {}


def test_first_default_wins_and_first_choice_is_default_when_none_marked() -> None:
    profiles = normalize_profile_list(
        [
            {"display_name": "A", "default": True},
            {"display_name": "B", "default": True},
            {"display_name": "C", "profile_options": {"o": {"choices": {"x": {}, "y": {}}}}},
        ]
    )
    assert [p["default"] for p in profiles] == [True, False, False]
    choices = profiles[2]["profile_options"]["o"]["choices"]
    assert [c["default"] for c in choices.values()] == [True, False]
    assert choices["x"]["display_name"] == "x"


def test_normalisation_does_not_mutate_configuration() -> None:
    raw = [{"display_name": "A", "profile_options": {"o": {"choices": {"x": {}}}}}]
    normalize_profile_list(raw)
    assert raw == [{"display_name": "A", "profile_options": {"o": {"choices": {"x": {}}}}}]


def test_dict_form_is_keyed_by_slug() -> None:
    profiles = normalize_profile_list(
        {"small": {"display_name": "Small"}, "big": {"display_name": "Big", "default": True}}
    )
    assert [p["slug"] for p in profiles] == ["small", "big"]
    assert [p["default"] for p in profiles] == [False, True]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("gpu", "must be a list or a dict"),
        ([{"slug": "x"}], "profile_list[0] needs a non-empty string 'display_name'"),
        ([{"display_name": "A"}, {"display_name": "a"}], "already used by profile_list[0]"),
        ({"a": {"display_name": "A", "slug": "b"}}, "the key is the slug"),
        (
            [{"display_name": "A", "kubespawner_override": ["image"]}],
            "kubespawner_override must be a dict",
        ),
        (
            [{"display_name": "A", "profile_options": {"o": {"choices": {}}}}],
            "offers nothing to choose",
        ),
        (
            [
                {
                    "display_name": "A",
                    "profile_options": {
                        "o": {"unlisted_choice": {"enabled": True, "validation_regex": "("}}
                    },
                }
            ],
            "is not a valid regular expression",
        ),
        (
            [{"display_name": "A", "profile_options": {"o": {"choices": {"unlisted_choice": {}}}}}],
            "a choice name must be a non-empty string other than 'unlisted-choice'",
        ),
        (
            [
                {
                    "display_name": "A",
                    "profile_options": {"o--unlisted-choice": {"choices": {"x": {}}}},
                }
            ],
            "is reserved or empty",
        ),
        (
            [{"display_name": "A", "profile_options": {3: {"choices": {"x": {}}}}}],
            "an option name must be a string, got 3",
        ),
        ({1: {"display_name": "A"}}, "each key is a profile's slug"),
    ],
)
def test_malformed_profile_list_is_a_clear_configuration_error(raw: Any, message: str) -> None:
    with pytest.raises(ProfileListError) as info:
        normalize_profile_list(raw)
    assert message in str(info.value)


# --------------------------------------------------------------------------- #
# selection: every validation error
# --------------------------------------------------------------------------- #


def test_empty_options_select_default_profile_and_default_choices() -> None:
    profiles = normalize_profile_list(PROFILES)
    selection = select_profile(profiles, {})
    assert selection.as_user_options() == {"profile": "gpu", "size": "one"}
    small = select_profile(profiles, {"profile": "small-cpu"})
    assert small.as_user_options() == {"profile": "small-cpu", "image": "scipy"}


@pytest.mark.parametrize(
    ("options", "field", "fragments"),
    [
        ({"profile": "tpu"}, "profile", ["'tpu' is not a profile", "'small-cpu', 'gpu'"]),
        ({"profile": 3}, "profile", ["must be a string naming a profile, got int 3", "'gpu'"]),
        ({"profile": "gpu", "size": "three"}, "size", ["'three' is not a choice", "'one', 'two'"]),
        ({"profile": "gpu", "size": ["one"]}, "size", ["must be a string", "got list"]),
        (
            {"profile": "small-cpu", "image": "conda"},
            "image",
            ["'conda' is not a choice", "'base', 'scipy', 'unlisted-choice'"],
        ),
        (
            {"profile": "small-cpu", "image--unlisted-choice": "ubuntu:22.04"},
            "image--unlisted-choice",
            ["'ubuntu:22.04' is not accepted", "Must be a pangeo image with a tag"],
        ),
        (
            {"profile": "small-cpu", "image": "unlisted-choice"},
            "image--unlisted-choice",
            ["no free text was given", "'base', 'scipy'"],
        ),
        (
            {"profile": "small-cpu", "image--unlisted-choice": 7},
            "image--unlisted-choice",
            ["must be a string, got int"],
        ),
        (
            {"profile": "small-cpu", "image": "base", "image--unlisted-choice": "pangeo/x:1"},
            "image--unlisted-choice",
            ["while choice 'base' was chosen"],
        ),
        (
            {"profile": "gpu", "size--unlisted-choice": "3"},
            "size--unlisted-choice",
            ["takes no free text", "'one', 'two'"],
        ),
        (
            {"profile": "gpu", "image": "base"},
            "image",
            ["profile 'gpu' has no option 'image'", "'size'"],
        ),
    ],
)
def test_invalid_user_options_name_field_and_allowed_values(
    options: dict[str, Any], field: str, fragments: list[str]
) -> None:
    from async_kubespawner.profiles import UserOptionsError

    profiles = normalize_profile_list(PROFILES)
    with pytest.raises(UserOptionsError) as info:
        select_profile(profiles, options)
    assert info.value.field == field
    for fragment in fragments:
        assert fragment in str(info.value)
    http = info.value.as_http_error()
    assert http.status_code == 400
    assert http.log_message is not None
    assert field in http.log_message % http.args


def test_free_text_must_match_the_whole_regex() -> None:
    from async_kubespawner.profiles import UserOptionsError

    profiles = normalize_profile_list(
        [
            {
                "display_name": "A",
                "profile_options": {
                    "tag": {"unlisted_choice": {"enabled": True, "validation_regex": "[a-z]+"}}
                },
            }
        ]
    )
    ok = select_profile(profiles, {"tag--unlisted-choice": "abc"})
    assert ok.options["tag"].unlisted_value == "abc"
    with pytest.raises(UserOptionsError):  # re.match would accept the prefix "abc"
        select_profile(profiles, {"tag--unlisted-choice": "abc; rm -rf"})


def test_unrelated_keys_are_left_for_apply_user_options() -> None:
    profiles = normalize_profile_list(PROFILES)
    selection = select_profile(profiles, {"profile": "gpu", "team": "physics"})
    assert selection.slug == "gpu"


# --------------------------------------------------------------------------- #
# merging and templating helpers
# --------------------------------------------------------------------------- #


def test_merge_override_is_recursive_none_deletes_lists_replace_and_input_is_untouched() -> None:
    current = {"a": {"x": 1, "y": 2}, "b": [1, 2], "c": "keep", "d": "drop"}
    update = {"a": {"y": 3, "z": {"deep": True}}, "b": [3], "d": None, "e": {"n": None, "m": 1}}
    assert merge_override(current, update) == {
        "a": {"x": 1, "y": 3, "z": {"deep": True}},
        "b": [3],
        "c": "keep",
        "e": {"m": 1},
    }
    assert current == {"a": {"x": 1, "y": 2}, "b": [1, 2], "c": "keep", "d": "drop"}


def test_value_substituted_in_nested_dicts_and_lists_other_fields_kept() -> None:
    template = {"a": "{value}", "b": [{"c": "x-{value}"}, 3], "d": "{username}"}
    assert substitute_unlisted_value(template, "v") == {
        "a": "v",
        "b": [{"c": "x-v"}, 3],
        "d": "{username}",
    }


# --------------------------------------------------------------------------- #
# load_user_options on a spawner
# --------------------------------------------------------------------------- #


async def test_profile_overrides_any_setting_and_dicts_merge() -> None:
    spawner = spawner_with(
        PROFILES,
        node_selector={"zone": "a"},
        environment={"EXISTING": "1"},
    )
    spawner.user_options = {"profile": "gpu", "size": "two"}
    await spawner.load_user_options()
    assert spawner.image == "cuda:12"
    assert spawner.namespace == "gpu-users"
    assert spawner.node_selector == {"zone": "a", "gpu": "true"}
    assert spawner.tolerations == [{"key": "nvidia.com/gpu", "operator": "Exists"}]
    assert spawner.pod_name_template == "gpu-{user_server}"
    assert spawner.cpu_limit == 8  # the option's override applies after the profile's
    assert spawner.environment == {"EXISTING": "1"}


async def test_override_does_not_mutate_configured_dict() -> None:
    configured = {"zone": "a"}
    spawner = spawner_with(PROFILES, node_selector=configured)
    spawner.user_options = {"profile": "gpu"}
    await spawner.load_user_options()
    assert configured == {"zone": "a"}


async def test_unlisted_choice_templates_value_everywhere() -> None:
    spawner = spawner_with(PROFILES, environment={"EXISTING": "1"})
    spawner.user_options = {"profile": "small-cpu", "image--unlisted-choice": "pangeo/ml:2024.1"}
    await spawner.load_user_options()
    assert spawner.image == "pangeo/ml:2024.1"
    assert spawner.environment == {
        "EXISTING": "1",
        "CUSTOM_IMAGE": "pangeo/ml:2024.1",
        "KEEP": "{username}",
    }
    assert spawner.volumes == [{"name": "scratch", "emptyDir": {"medium": "pangeo/ml:2024.1"}}]
    assert spawner.cpu_limit == 2
    assert spawner.mem_limit == 2 * 1024**3


async def test_callable_overrides_sync_and_async_receive_the_spawner() -> None:
    seen: list[Any] = []

    def sync_image(spawner: Any) -> str:
        seen.append(spawner)
        return "sync:" + spawner.namespace

    async def async_env(spawner: Any) -> dict[str, str]:
        await asyncio.sleep(0)
        seen.append(spawner)
        return {"FROM_ASYNC": "yes"}

    profiles = [
        {
            "display_name": "C",
            "kubespawner_override": {
                "namespace": "ns1",
                "image": sync_image,
                "environment": async_env,
            },
        }
    ]
    spawner = spawner_with(profiles, environment={"A": "1"})
    await spawner.load_user_options()
    assert spawner.image == "sync:ns1"
    assert spawner.environment == {"A": "1", "FROM_ASYNC": "yes"}
    assert seen == [spawner, spawner]


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_callable_override_that_raises_is_a_clear_error(asynchronous: bool) -> None:
    def boom(spawner: Any) -> str:
        raise KeyError("no quota for this user")

    async def aboom(spawner: Any) -> str:
        raise KeyError("no quota for this user")

    profiles = [
        {"display_name": "C", "kubespawner_override": {"image": aboom if asynchronous else boom}}
    ]
    spawner = spawner_with(profiles)
    with pytest.raises(ProfileOverrideError) as info:
        await spawner.load_user_options()
    assert "profile 'c': kubespawner_override['image'] callable raised KeyError" in str(info.value)
    assert "no quota for this user" in str(info.value)
    assert spawner.get_state().get(STATE_KEY) is None


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_profile_list_callable_sync_and_async(asynchronous: bool) -> None:
    def make(spawner: Any) -> list[dict[str, Any]]:
        return [
            {"display_name": f"For {spawner.namespace}", "kubespawner_override": {"image": "x"}}
        ]

    async def amake(spawner: Any) -> list[dict[str, Any]]:
        return make(spawner)

    spawner = spawner_with(amake if asynchronous else make, namespace="team")
    assert [p["slug"] for p in await spawner.resolve_profile_list()] == ["for-team"]
    await spawner.load_user_options()
    assert spawner.image == "x"


async def test_profile_list_callable_that_raises_is_a_clear_error() -> None:
    def broken_profiles(spawner: Any) -> list[Any]:
        raise RuntimeError("LDAP is down")

    spawner = spawner_with(broken_profiles)
    with pytest.raises(
        ProfileListError, match="'broken_profiles' raised RuntimeError: LDAP is down"
    ):
        await spawner.load_user_options()


async def test_unknown_override_key_and_invalid_value_are_configuration_errors() -> None:
    spawner = spawner_with([{"display_name": "A", "kubespawner_override": {"imgae": "x"}}])
    with pytest.raises(ProfileOverrideError, match="'imgae' is not a KubeSpawner setting"):
        await spawner.load_user_options()
    spawner = spawner_with([{"display_name": "A", "kubespawner_override": {"cpu_limit": "lots"}}])
    with pytest.raises(ProfileOverrideError, match="profile 'a': kubespawner_override cpu_limit"):
        await spawner.load_user_options()


async def test_free_text_the_setting_rejects_is_the_users_400() -> None:
    profiles = [
        {
            "display_name": "A",
            "profile_options": {
                "memory": {
                    "unlisted_choice": {
                        "enabled": True,
                        "kubespawner_override": {"mem_limit": "{value}"},
                    }
                }
            },
        }
    ]
    spawner = spawner_with(profiles)
    spawner.user_options = {"memory--unlisted-choice": "lots"}
    with pytest.raises(web.HTTPError) as info:
        await spawner.load_user_options()
    assert info.value.status_code == 400
    assert info.value.log_message is not None
    assert "'memory--unlisted-choice'" in info.value.log_message % info.value.args
    assert "mem_limit" in info.value.log_message % info.value.args


async def test_invalid_user_options_raise_400_before_anything_changes() -> None:
    spawner = spawner_with(PROFILES)
    spawner.user_options = {"profile": "gpu", "size": "huge"}
    with pytest.raises(web.HTTPError) as info:
        await spawner.load_user_options()
    assert info.value.status_code == 400
    assert spawner.image == "quay.io/jupyterhub/singleuser:latest"
    assert spawner.namespace == "default"


async def test_load_user_options_is_idempotent_and_rearmed_by_clear_state() -> None:
    calls: list[int] = []

    def counted(spawner: Any) -> dict[str, str]:
        calls.append(1)
        return {"N": str(len(calls))}

    spawner = spawner_with(
        [{"display_name": "A", "kubespawner_override": {"environment": counted}}]
    )
    await spawner.load_user_options()
    await spawner.load_user_options()
    assert calls == [1]
    spawner.user_options = {"profile": "nope"}
    with pytest.raises(web.HTTPError):
        await spawner.load_user_options()
    spawner.clear_state()
    spawner.user_options = {}
    await spawner.load_user_options()
    assert calls == [1, 1]


async def test_selection_is_kept_in_state_and_survives_a_restart() -> None:
    spawner = spawner_with(PROFILES)
    spawner.user_options = {"profile": "small-cpu", "image--unlisted-choice": "pangeo/ml:1"}
    await spawner.load_user_options()
    state = spawner.get_state()
    assert state[STATE_KEY] == {"profile": "small-cpu", "image--unlisted-choice": "pangeo/ml:1"}
    restarted = spawner_with(PROFILES)
    restarted.load_state(state)
    assert restarted.profile_selection == state[STATE_KEY]
    restarted.clear_state()
    assert restarted.profile_selection is None
    assert STATE_KEY not in restarted.get_state()


async def test_no_profiles_means_no_form_and_options_pass_through() -> None:
    spawner = spawner_with([])
    assert await spawner.get_options_form() == ""
    form_data = {"anything": ["x"]}
    assert spawner.run_options_from_form(form_data) == form_data
    spawner.user_options = {"anything": "x"}
    await spawner.load_user_options()
    assert spawner.profile_selection is None


async def test_without_group_overrides_the_profile_still_precedes_pre_spawn_hook() -> None:
    """JupyterHub < 5.3 has no apply_group_overrides step: run_pre_spawn_hook applies it."""
    seen: list[str] = []
    spawner = spawner_with(PROFILES, pre_spawn_hook=lambda s: seen.append(s.image))
    spawner.user_options = {"profile": "gpu"}
    await spawner.run_pre_spawn_hook()
    assert seen == ["cuda:12"]
    await spawner.start()  # start() loads again: a no-op, the hook's world stays
    assert spawner.started_with is not None and spawner.started_with["image"] == "cuda:12"


def test_default_apply_user_options_warns_only_about_keys_nobody_handles(
    caplog: pytest.LogCaptureFixture,
) -> None:
    spawner = spawner_with(PROFILES)
    spawner.log.propagate = True
    # the choice a hub restores from the database (JupyterHub's load_state contract)
    spawner.load_state({"profile_selection": {"profile": "gpu", "size": "one"}})
    spawner.apply_user_options(spawner, {"profile": "gpu", "size": "one"})
    assert "no profile option" not in caplog.text
    spawner.apply_user_options(spawner, {"profile": "gpu", "team": "physics"})
    assert "no profile option or apply_user_options handles: ['team']" in caplog.text
