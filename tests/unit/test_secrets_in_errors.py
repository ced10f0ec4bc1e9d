"""Environment values never reach an error message or a log line.

JupyterHub shows a spawn's error to the user; environment variables are where operators
keep credentials, in ``environment`` and in every container's ``env``. And the keys of
``user_options`` come from users: they are logged as data (repr), capped in length.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from tornado import web

from async_kubespawner.profiles import ProfileOverrideError
from async_kubespawner.traits import SpawnerConfigError

from .spawner_fakes import make_spawner

SECRET = "s3cr3t-Pa55word-db"
ENV = [{"name": "DB_PASSWORD", "value": SECRET}]

BAD_SETTINGS: list[dict[str, Any]] = [
    {"extra_containers": [{"name": "sidecar", "image": "x:1", "env": ENV, "bogusField": 1}]},
    {"init_containers": [{"name": "init", "image": "x:1", "env": ENV, "imagePullPolicy": 5}]},
    {"extra_container_config": {"env": ENV, "bogusField": 1}},
    {"extra_pod_config": {"initContainers": [{"name": "i", "env": ENV}], "bogusField": 1}},
    {"extra_container_config": {"env": [{"name": "DB_PASSWORD", "value": SECRET, "x": 1}]}},
]


@pytest.mark.parametrize("config", BAD_SETTINGS)
def test_configuration_errors_redact_every_container_env(
    config: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        spawner = make_spawner(config=config)
        with pytest.raises(SpawnerConfigError) as info:
            spawner.check_configuration()
    message = str(info.value)
    setting = next(iter(config))
    assert f"c.KubeSpawner.{setting}" in message  # still says what to fix
    assert SECRET not in message
    assert SECRET not in caplog.text


async def test_profile_override_errors_redact_env() -> None:
    profiles = [
        {
            "display_name": "Sidecar",
            "slug": "sidecar",
            "kubespawner_override": {
                "extra_containers": [
                    {"name": "s", "image": "x:1", "env": ENV, "bogusField": 1}
                ]
            },
        }
    ]
    spawner = make_spawner(config={"profile_list": profiles})
    spawner.user_options = {"profile": "sidecar"}
    with pytest.raises(ProfileOverrideError) as info:
        await spawner.load_user_options()
    assert "extra_containers" in str(info.value)
    assert SECRET not in str(info.value)


async def test_free_text_errors_shown_to_the_user_redact_env() -> None:
    profiles = [
        {
            "display_name": "Custom",
            "slug": "custom",
            "profile_options": {
                "image": {
                    "unlisted_choice": {
                        "enabled": True,
                        "kubespawner_override": {
                            "extra_containers": [
                                {"name": "s", "image": "{value}", "env": ENV, "bogusField": 1}
                            ]
                        },
                    }
                }
            },
        }
    ]
    spawner = make_spawner(config={"profile_list": profiles})
    spawner.user_options = {"profile": "custom", "image--unlisted-choice": "x:1"}
    with pytest.raises(web.HTTPError) as info:
        await spawner.load_user_options()
    assert info.value.status_code == 400
    assert info.value.log_message is not None
    assert "image--unlisted-choice" in info.value.log_message % info.value.args
    assert SECRET not in info.value.log_message % info.value.args


def test_unknown_user_options_keys_are_logged_as_capped_data(
    caplog: pytest.LogCaptureFixture,
) -> None:
    spawner = make_spawner()
    spawner.log.propagate = True
    forged = "x\n[I 2026-01-01 hub] admin logged in"
    options = {forged: 1, **{f"key{i}": i for i in range(20_000)}}
    with caplog.at_level(logging.WARNING):
        spawner.apply_user_options(spawner, options)
    (record,) = [r for r in caplog.records if "user_options key" in r.getMessage()]
    line = record.getMessage()
    assert "\n" not in line  # a newline in a key cannot start a forged log line
    assert "\\n[I 2026-01-01 hub]" in line  # it is shown escaped, as data
    assert "20001 user_options key(s)" in line
    assert len(line) < 700
