"""docs/configuration.md is generated from the traits and must be kept up to date."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from async_kubespawner.traits import DEPRECATED_ALIASES, KubeSpawnerSettings

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location(
        "generate_config_reference", ROOT / "docs" / "generate_config_reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_reference_is_up_to_date() -> None:
    expected = _generator().render()
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == expected, (
        "docs/configuration.md is stale: run python docs/generate_config_reference.py"
    )


def test_reference_lists_every_setting_and_alias() -> None:
    text = _generator().render()
    for name in KubeSpawnerSettings.class_traits(config=True):
        assert f"| `{name}` |" in text, name
    for old in DEPRECATED_ALIASES:
        assert f"| `{old}` |" in text, old
    assert "| `{safe_user_server}` |" in text
