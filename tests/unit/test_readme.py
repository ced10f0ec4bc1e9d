"""The README's configuration snippets are real configuration: they load and validate."""

import re
from pathlib import Path

from traitlets.config import Config

from async_kubespawner.profiles import normalize_profile_list

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_profile_example_is_a_valid_profile_list() -> None:
    match = re.search(r"```python\n(c\.KubeSpawner\.profile_list.*?)```", README.read_text(), re.S)
    assert match, "the README lost its profile_list example"
    config = Config()
    exec(match.group(1), {"c": config})
    profiles = normalize_profile_list(config.KubeSpawner.profile_list)
    assert [p["slug"] for p in profiles] == ["small", "gpu"]
    assert profiles[0]["default"] is True
    unlisted = profiles[1]["profile_options"]["image"]["unlisted_choice"]
    assert unlisted["enabled"] and unlisted["kubespawner_override"] == {"image": "{value}"}


def test_readme_names_the_two_commands_that_ci_runs() -> None:
    text = README.read_text()
    assert "make demo" in text and "make test" in text
    ci = (README.parent / ".ci" / "run").read_text()
    assert "make test" in ci
