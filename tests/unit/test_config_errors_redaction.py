"""Configuration errors reach the user (JupyterHub shows a spawn's error): no env value
of any container, wherever it is configured, may appear in one. Each case names a
setting whose value holds env entries and is invalid for another reason."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from traitlets import TraitError

from async_kubespawner.traits.errors import SpawnerConfigError
from tests.unit.spawner_fakes import make_spawner

SECRET = "s3cretVALUE"
ENV = {"name": "TOKEN", "value": SECRET}
CASES: dict[str, dict[str, Any]] = {
    "sidecar": {"extra_containers": [{"name": "side", "image": "x", "env": [ENV], "bogus": 1}]},
    "sidecar-env-entry": {
        "extra_containers": [{"name": "side", "image": "x", "env": [{**ENV, "bogus": 1}]}]
    },
    "sidecar-value-from-string": {
        "extra_containers": [
            {"name": "side", "image": "x", "env": [{"name": "T", "valueFrom": SECRET}]}
        ]
    },
    "init-container": {
        "init_containers": [{"name": "init", "image": "x", "env": [ENV], "bogus": 1}]
    },
    "container-config-env-entry": {"extra_container_config": {"env": [{**ENV, "bogus": 1}]}},
    "container-config-env-mapping": {"extra_container_config": {"env": {"TOKEN": SECRET}}},
    "container-config-other-field": {"extra_container_config": {"env": [ENV], "bogus": 1}},
    "sidecars-given-as-a-mapping": {"extra_containers": {"name": "x", "env": [ENV]}},
    "probe-header": {
        "extra_container_config": {
            "livenessProbe": {
                "httpGet": {"port": 80, "httpHeaders": [{"name": "Authorization", "value": SECRET}]},
                "bogus": 1,
            }
        }
    },
    "pod-config-init-containers": {
        "extra_pod_config": {
            "initContainers": [{"name": "i", "image": "x", "env": [ENV], "bogus": 1}]
        }
    },
}


def error_text(config: dict[str, Any]) -> str:
    try:
        spawner = make_spawner(config=config)
        asyncio.run(spawner.get_pod_manifest())
    except (TraitError, ValueError, TypeError) as e:
        return str(e)
    raise AssertionError("the configuration was accepted")


@pytest.mark.parametrize("case", list(CASES))
def test_no_env_value_in_a_configuration_error(case: str) -> None:
    text = error_text(CASES[case])
    assert SECRET not in text, text
    assert "c.KubeSpawner." in text  # still names the setting


def test_the_rest_of_the_value_is_still_shown() -> None:
    text = error_text(CASES["sidecar"])
    assert "'bogus'" in text and "'side'" in text and "TOKEN" in text


@pytest.mark.parametrize(
    "override",
    [
        {"extra_containers": [{"name": "side", "image": "x", "env": [ENV], "bogus": 1}]},
        {"environment": [SECRET]},
    ],
    ids=["sidecar", "environment"],
)
def test_no_env_value_in_a_profile_override_error(override: dict[str, Any]) -> None:
    profile = {"display_name": "P", "slug": "p", "default": True, "kubespawner_override": override}
    spawner = make_spawner(config={"profile_list": [profile]})
    with pytest.raises(Exception) as info:
        asyncio.run(spawner.load_user_options())
    assert "kubespawner_override" in str(info.value)
    assert SECRET not in str(info.value), str(info.value)


# Any configuration-shaped value: env lists and name/value pairs nested anywhere.
_leaf = st.sampled_from(["x", 1, None, True, "image:1"])
_env_list = st.lists(
    st.fixed_dictionaries({"name": st.sampled_from(["A", "TOKEN"]), "value": st.just(SECRET)}),
    min_size=1,
    max_size=3,
)
_values = st.recursive(
    _leaf | _env_list.map(lambda env: {"env": env}),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["spec", "containers", "env", "x", "env2"]), inner, max_size=3)
    | inner.map(lambda v: {"env": {"TOKEN": SECRET}, "other": v}),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(_values, st.sampled_from(["extra_pod_config", "extra_containers", "init_containers"]))
def test_no_nested_env_value_is_ever_shown(value: Any, setting: str) -> None:
    text = str(SpawnerConfigError(setting, value, "it is wrong", "Fix it."))
    assert SECRET[:5] not in text  # not even the start of one, where a long value is cut
