"""The package's public face: version and the JupyterHub entry point."""

import tomllib
from pathlib import Path

import async_kubespawner

ROOT = Path(__file__).resolve().parents[2]


def test_version_is_a_string() -> None:
    assert isinstance(async_kubespawner.__version__, str)
    assert async_kubespawner.__version__[0].isdigit()


def test_entry_point_names_our_spawner() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    eps = meta["project"]["entry-points"]["jupyterhub.spawners"]
    assert eps["async-kubernetes"] == "async_kubespawner:KubeSpawner"


def test_package_never_imports_upstream_kubespawner() -> None:
    for path in (ROOT / "async_kubespawner").rglob("*.py"):
        text = path.read_text()
        assert "import kubespawner" not in text and "from kubespawner" not in text, path
