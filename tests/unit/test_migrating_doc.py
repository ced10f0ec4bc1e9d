"""docs/migrating.md's configuration snippets are real configuration: they load and build."""

from __future__ import annotations

import re
from pathlib import Path

from traitlets.config import Config

from async_kubespawner import KubeSpawner
from async_kubespawner.testing import build_spawner

DOC = Path(__file__).resolve().parents[2] / "docs" / "migrating.md"


def snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def load(snippet: str) -> Config:
    config = Config()
    exec(snippet, {"c": config, "get_config": lambda: config})
    return config


def test_the_switch_is_one_line_naming_our_entry_point() -> None:
    config = load(snippets()[0])
    assert config.JupyterHub.spawner_class == "async-kubernetes"


def test_an_upstream_configuration_loads_unchanged_and_builds_a_pod() -> None:
    config = load(snippets()[1])
    spawner = build_spawner(KubeSpawner, "alice", config=config, servername="lab")
    assert spawner.image == "quay.io/jupyterhub/singleuser:5.2"
    assert spawner.cpu_limit == 2
    assert spawner.pvc_name == "claim-alice--lab"
    assert [p["slug"] for p in spawner.profile_list] == ["small", "large"]
