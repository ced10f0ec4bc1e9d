"""Profile behaviour a hub config, hook or client can see, as upstream KubeSpawner 7.1
documents and tests it (its profile docs and public-behaviour tests): each test states
the upstream behaviour it holds us to."""

from __future__ import annotations

import inspect
import logging
import uuid
from typing import Any

import pytest

from async_kubespawner import KubeSpawner
from async_kubespawner.profiles import (
    LEGACY_UNLISTED_CHOICE,
    UNLISTED_CHOICE,
    ProfileOverrideError,
)
from async_kubespawner.profiles.mixin import check_api_body_shape
from async_kubespawner.traits import SpawnerConfigError

from .spawner_fakes import make_spawner

IMAGE_OPTION = {
    "display_name": "Image",
    "choices": {
        "op-1": {"display_name": "One", "kubespawner_override": {"image": "pangeo/a:1"}},
        "op-2": {"display_name": "Two", "kubespawner_override": {"image": "pangeo/b:2"}},
    },
    "unlisted_choice": {
        "enabled": True,
        "display_name": "Image Location",
        "validation_regex": "^pangeo/.*$",
        "validation_message": "Must be a pangeo image, matching ^pangeo/.*$",
        "kubespawner_override": {
            "image": "{value}",
            "environment": {
                "CUSTOM_IMAGE_USED": "yes",
                "CUSTOM_IMAGE": "{value}",
                "USER": "${JUPYTER_USER}",
                "USER_TEST": "${{JUPYTER_USER}}",
            },
            "init_containers": [
                {"name": "testing", "image": "{value}", "securityContext": {"runAsUser": 1000}}
            ],
        },
    },
}

SIZE_OPTION = {
    "display_name": "Memory",
    "choices": {"small": {"display_name": "4G", "kubespawner_override": {"mem_limit": "4G"}}},
    "unlisted_choice": {
        "enabled": True,
        "validation_regex": r"^\d+G$",
        "kubespawner_override": {"mem_limit": "{value}"},
    },
}

PROFILES: list[dict[str, Any]] = [
    {"display_name": "Small", "slug": "small", "kubespawner_override": {"cpu_limit": 1}},
    {
        "display_name": "CPU only",
        "slug": "cpu",
        "default": True,
        "kubespawner_override": {"cpu_limit": 2},
        "profile_options": {"image": IMAGE_OPTION, "size": SIZE_OPTION},
    },
]


def spawner_for(profiles: Any = PROFILES, **config: Any) -> KubeSpawner:
    return make_spawner(config={"profile_list": profiles, **config})


async def test_unlisted_choice_fills_value_and_unescapes_braces_like_upstream() -> None:
    """Upstream: ``{value}`` is the user's text in strings at any depth; ``${{X}}``
    reads back as ``${X}`` (its braces are unescaped), ``${X}`` passes through."""
    spawner = spawner_for()
    image = "pangeo/pangeo-notebook:latest"
    spawner.user_options = {"profile": "cpu", "image--unlisted-choice": image}
    await spawner.load_user_options()
    assert spawner.image == image
    assert spawner.environment == {
        "CUSTOM_IMAGE_USED": "yes",
        "CUSTOM_IMAGE": image,
        "USER": "${JUPYTER_USER}",
        "USER_TEST": "${JUPYTER_USER}",
    }
    assert spawner.init_containers == [
        {"name": "testing", "image": image, "securityContext": {"runAsUser": 1000}}
    ]
    env = spawner.get_env()
    assert env["CUSTOM_IMAGE"] == image
    assert env["USER_TEST"] == "${JUPYTER_USER}"


async def test_empty_profile_means_the_default_profile() -> None:
    """Upstream: a profile slug of '' selects the default profile, as no slug does."""
    spawner = spawner_for()
    spawner.user_options = {"profile": ""}
    await spawner.load_user_options()
    assert spawner.cpu_limit == 2
    assert spawner.image == "pangeo/a:1"  # the first choice is the implicit default
    assert spawner.profile_selection == {"profile": "cpu", "image": "op-1", "size": "small"}


def test_options_from_form_is_synchronous_and_returns_a_dict() -> None:
    """Upstream's ``options_from_form`` returns the dict itself (no coroutine), so code
    that calls it directly (tests, custom frontends) gets the options."""
    spawner = spawner_for()
    assert not inspect.iscoroutinefunction(spawner.options_from_form)
    options = spawner.options_from_form(
        {
            "profile": ["cpu"],
            "profile-option-cpu--image--unlisted-choice": ["pangeo/test:latest"],
        }
    )
    assert options == {"profile": "cpu", "image--unlisted-choice": "pangeo/test:latest"}


def test_options_from_form_keeps_profiles_apart_by_their_full_prefix() -> None:
    """Upstream: the fields of profile 'short-plus' never leak into 'short'."""
    profiles = [
        {
            "display_name": "short",
            "slug": "short",
            "profile_options": {"relevant": {"choices": {"choice-a": {}}}},
        },
        {
            "display_name": "short-plus",
            "slug": "short-plus",
            "profile_options": {"irrelevant": {"choices": {"choice-b": {}}}},
        },
    ]
    spawner = spawner_for(profiles)
    options = spawner.options_from_form(
        {
            "profile": ["short"],
            "profile-option-short--relevant": ["choice-a"],
            "profile-option-short-plus--irrelevant": ["choice-b"],
        }
    )
    assert options == {"profile": "short", "relevant": "choice-a"}


def test_a_subclass_extends_options_from_form_through_super() -> None:
    """Deployments subclass KubeSpawner and call ``super()._options_from_form(formdata)``
    then add their own keys: that needs the synchronous method upstream has."""

    class SiteSpawner(KubeSpawner):
        def _options_from_form(self, formdata: dict[str, list[str]]) -> dict[str, Any]:
            options = super()._options_from_form(formdata)
            options["mount_secrets"] = formdata.get("secrets", ["0"])[0] == "1"
            return options

    spawner = make_spawner(config={"profile_list": PROFILES})
    spawner.__class__ = SiteSpawner
    spawner.options_from_form = spawner._options_from_form
    assert spawner.run_options_from_form({"profile": ["small"], "secrets": ["1"]}) == {
        "profile": "small",
        "mount_secrets": True,
    }


async def test_unlisted_choice_value_and_field_names_are_upstreams() -> None:
    """Upstream's select names "Other" ``unlisted-choice``; a client posting it with the
    text is accepted, and the stored options are what was posted (no extra keys)."""
    assert UNLISTED_CHOICE == "unlisted-choice"
    spawner = spawner_for()
    form = spawner.render_options_form
    html = await form()
    assert 'value="unlisted-choice"' in html
    options = spawner.options_from_form(
        {
            "profile": ["cpu"],
            "profile-option-cpu--size": ["unlisted-choice"],
            "profile-option-cpu--size--unlisted-choice": ["32G"],
        }
    )
    assert options == {"profile": "cpu", "size": "unlisted-choice", "size--unlisted-choice": "32G"}
    spawner.user_options = options
    await spawner.load_user_options()
    assert spawner.mem_limit == 32 * 1024**3


async def test_free_text_alone_and_the_earlier_marker_are_accepted() -> None:
    spawner = spawner_for()
    spawner.user_options = {"profile": "cpu", "size--unlisted-choice": "8G"}
    await spawner.load_user_options()
    assert spawner.mem_limit == 8 * 1024**3
    assert spawner.get_state()["profile_selection"] == {
        "profile": "cpu",
        "image": "op-1",
        "size--unlisted-choice": "8G",
    }
    # user_options saved by earlier releases of this package still start
    spawner.user_options = {
        "profile": "cpu",
        "size": LEGACY_UNLISTED_CHOICE,
        "size--unlisted-choice": "16G",
    }
    await spawner.load_user_options()
    assert spawner.mem_limit == 16 * 1024**3


async def test_profile_namespace_wins_over_user_namespaces() -> None:
    """Upstream applies a profile's ``namespace`` even with ``enable_user_namespaces``
    (and docs/profiles.md says so)."""
    profiles = [
        {"display_name": "Team", "slug": "team", "kubespawner_override": {"namespace": "team-x"}},
        {"display_name": "Own", "slug": "own"},
    ]
    spawner = spawner_for(profiles, enable_user_namespaces=True)
    assert spawner.namespace == "user-alice"
    spawner.user_options = {"profile": "team"}
    await spawner.load_user_options()
    assert spawner.namespace == "team-x"
    assert spawner.get_namespace_manifest().metadata.name == "team-x"
    pod = await spawner.get_pod_manifest()
    assert pod.metadata.name == spawner.pod_name
    # the next start with another profile is back in the user's own namespace
    spawner.clear_state()
    spawner.user_options = {"profile": "own"}
    await spawner.load_user_options()
    assert spawner.namespace == "user-alice"


async def test_load_user_options_again_with_new_options_reapplies() -> None:
    """Upstream: calling ``load_user_options()`` after changing ``user_options`` applies
    the new choice (operator code does this). Settings the first choice overrode and
    the second does not go back to their configured values."""
    spawner = spawner_for(cpu_limit=0.5)
    spawner.user_options = {"profile": "cpu", "image": "op-2"}
    await spawner.load_user_options()
    assert (spawner.cpu_limit, spawner.image) == (2, "pangeo/b:2")
    spawner.user_options = {"profile": "small"}
    await spawner.load_user_options()
    assert spawner.cpu_limit == 1
    assert spawner.image == make_spawner().image  # the configured image again
    await spawner.load_user_options()  # same options: nothing changes
    assert spawner.profile_selection == {"profile": "small"}


def test_a_jupyterhub_6_body_on_a_jupyterhub_5_hub_is_refused() -> None:
    """JupyterHub 5 takes the whole request body as user_options: a body shaped for
    JupyterHub 6 would silently start the default profile. Refused on 5.x only."""
    nested = {"user_options": {"profile": "gpu"}}
    with pytest.raises(ValueError, match="whose REST API takes the options as the request body"):
        check_api_body_shape(nested, hub_version=(5, 5))
    check_api_body_shape(nested, hub_version=(6, 1))  # a key like any other on 6.x
    check_api_body_shape({"profile": "gpu", "user_options": {}}, hub_version=(5, 5))


async def test_a_bad_override_fails_only_the_spawns_that_choose_it() -> None:
    profiles = [
        {"display_name": "Fine", "slug": "fine"},
        {
            "display_name": "Broken",
            "slug": "broken",
            "kubespawner_override": {"extra_pod_config": {"hostNetwrk": True}},
        },
    ]
    fine = spawner_for(profiles)
    fine.user_options = {"profile": "fine"}
    await fine.load_user_options()
    await fine.get_pod_manifest()
    broken = spawner_for(profiles)
    broken.user_options = {"profile": "broken"}
    with pytest.raises(ProfileOverrideError, match="hostNetwrk"):
        await broken.load_user_options()


async def test_an_invalid_setting_fails_spawns_not_the_construction(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One bad value must not stop the hub from building spawner objects (running
    servers must stay pollable and stoppable); the spawn fails before anything is
    created, and a profile giving a valid value makes that spawn work."""
    caplog.set_level(logging.ERROR)
    typo = f"hostNetwrk{uuid.uuid4().hex[:6]}"  # unique: errors are logged once per process
    bad = {"extra_pod_config": {typo: True}}
    profiles = [
        {"display_name": "Plain", "slug": "plain"},
        {
            "display_name": "Fixed",
            "slug": "fixed",
            "kubespawner_override": {"extra_pod_config": {"hostNetwork": False}},
        },
    ]
    spawner = spawner_for(profiles, mem_limit="2G", **bad)
    spawner.log.propagate = True
    assert spawner.mem_limit == 2 * 1024**3  # the valid settings applied
    with pytest.raises(SpawnerConfigError) as info:
        spawner.check_configuration()
    assert "c.KubeSpawner.extra_pod_config" in str(info.value)
    assert typo in str(info.value)
    with pytest.raises(SpawnerConfigError, match="extra_pod_config"):
        await spawner.get_pod_manifest()
    spawner.user_options = {"profile": "fixed"}
    await spawner.load_user_options()
    spawner.check_configuration()
    pod = await spawner.get_pod_manifest()
    assert pod.spec.host_network is False
    # logged once per process, not per spawner object
    spawner_for(profiles, **bad)
    assert len([r for r in caplog.records if typo in r.getMessage()]) == 1


async def test_each_start_applies_its_choice_to_the_configured_values() -> None:
    """JupyterHub clears the state at every spawn, before group overrides: the last
    choice is undone there, so a value it set never outlives it."""
    spawner = spawner_for(cpu_limit=0.5)
    spawner.user_options = {"profile": "cpu"}
    await spawner.load_user_options()
    assert spawner.cpu_limit == 2
    spawner.clear_state()
    assert spawner.cpu_limit == 0.5
    spawner.user_options = {"profile": "cpu"}
    await spawner.load_user_options()
    assert spawner.cpu_limit == 2
