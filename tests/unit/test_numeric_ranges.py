"""Every numeric setting has a range checked when the configuration loads."""

from __future__ import annotations

from typing import Any

import pytest
from traitlets import TraitError

from async_kubespawner import KubeSpawner
from async_kubespawner.traits.limits import CHECKED_ELSEWHERE, NUMERIC_RANGES
from tests.unit.spawner_fakes import make_spawner

_NUMERIC = {"Int", "Integer", "Float", "CInt", "CFloat", "ByteSpecification", "MemorySetting"}


def numeric_settings() -> set[str]:
    names = set()
    for name, trait in KubeSpawner.class_traits(config=True).items():
        kinds = {type(t).__name__ for t in getattr(trait, "trait_types", [trait])}
        if kinds & _NUMERIC:
            names.add(name)
    return names


def test_every_numeric_setting_has_a_range() -> None:
    missing = numeric_settings() - set(NUMERIC_RANGES) - CHECKED_ELSEWHERE
    assert missing == set()


def _below(setting: str) -> Any:
    low, exclusive, _, _ = NUMERIC_RANGES[setting]
    value = low if exclusive else low - 1
    if setting in ("mem_limit", "mem_guarantee"):
        return "-1G"
    return value


@pytest.mark.parametrize("setting", sorted(NUMERIC_RANGES))
def test_below_the_range_is_refused_naming_the_setting(setting: str) -> None:
    spawner = make_spawner(config={setting: _below(setting)})  # built: running servers work
    with pytest.raises(TraitError) as info:
        spawner.check_configuration()  # refused for every spawn, before anything is created
    message = str(info.value)
    # ours, or traitlets' own bound check where the trait declares one (poll_jitter)
    assert f"KubeSpawner.{setting}" in message or f"'{setting}' trait" in message, message


@pytest.mark.parametrize(
    "setting", sorted(s for s, (_, _, high, _) in NUMERIC_RANGES.items() if high is not None)
)
def test_above_the_range_is_refused(setting: str) -> None:
    high = NUMERIC_RANGES[setting][2]
    assert high is not None
    value: Any = high + 1 if isinstance(high, int) or float(high).is_integer() else high * 2
    if setting == "poll_jitter":
        value = 1.5
    spawner = make_spawner(config={setting: int(value) if setting != "poll_jitter" else value})
    with pytest.raises(TraitError):
        spawner.check_configuration()


@pytest.mark.parametrize("setting", sorted(NUMERIC_RANGES))
def test_the_default_is_in_range(setting: str) -> None:
    spawner = make_spawner()
    getattr(spawner, setting)  # the defaults load without error
