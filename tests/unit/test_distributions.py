"""Two distributions from one repository: the product a hub installs, and the simulator.

A hub installs ``async-kubespawner``; it must not carry the simulator (its server, its YAML
and X.509 dependencies, its console script) nor the demo. ``kubesim`` is its own wheel with
its own command and pytest plugin, and depends on nothing of the spawner. Both wheels are
built here from the source tree, as ``python -m build`` would, and their contents read.
"""

from __future__ import annotations

import email.parser
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The deprecated alias of the old import path is the only thing under async_kubespawner/sim.
ALIAS_FILES = {"async_kubespawner/sim/__init__.py"}


def _build_wheel(source: Path, out: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-q", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("*.whl")
    return wheel


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(archive.read(name).decode())


def _requirement_names(meta: email.message.Message) -> set[str]:
    names = set()
    for requirement in meta.get_all("Requires-Dist") or []:
        if "extra ==" in requirement:
            continue
        name = requirement.split(";")[0].strip()
        for stop in "<>=!~[ ":
            name = name.split(stop)[0]
        names.add(name.lower().replace("_", "-"))
    return names


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("wheels")
    (base / "product").mkdir()
    (base / "simulator").mkdir()
    return {
        "product": _build_wheel(ROOT, base / "product"),
        "simulator": _build_wheel(ROOT / "simulator", base / "simulator"),
    }


def test_product_wheel_has_no_simulator_demo_or_their_dependencies(
    wheels: dict[str, Path],
) -> None:
    with zipfile.ZipFile(wheels["product"]) as archive:
        names = set(archive.namelist())
    sim_files = {n for n in names if n.startswith("async_kubespawner/sim/")}
    assert sim_files == ALIAS_FILES
    assert not any(n.startswith(("kubesim/", "devtools/")) for n in names)
    assert not any("demo" in n or "local_stack" in n for n in names)
    assert "async_kubespawner/profiles/templates/form.html" in names
    requirements = _requirement_names(_metadata(wheels["product"]))
    assert not requirements & {"pyyaml", "cryptography", "kubesim"}
    assert {"jupyterhub", "kubernetes-asyncio", "traitlets", "escapism"} <= requirements
    with zipfile.ZipFile(wheels["product"]) as archive:
        entry_points = next(
            archive.read(n).decode() for n in names if n.endswith("entry_points.txt")
        )
    assert "async-kubernetes = async_kubespawner:KubeSpawner" in entry_points
    # The console scripts are operator mode's: the operator and the two migration
    # commands (the simulator's and the demo's commands stay in their own distributions).
    scripts = entry_points.split("[console_scripts]", 1)[1].split("\n[", 1)[0]
    assert sorted(line.split("=")[0].strip() for line in scripts.splitlines() if "=" in line) == [
        "async-kubespawner-jupyternetes", "async-kubespawner-migrate", "async-kubespawner-operator"
    ]
    assert "async-kubernetes-operator = async_kubespawner.operator.spawner:OperatorSpawner" in (
        entry_points
    )


def test_the_alias_imports_no_simulator_code_itself() -> None:
    text = (ROOT / "async_kubespawner/sim/__init__.py").read_text()
    assert "import yaml" not in text and "aiohttp" not in text
    # Nothing else of the product imports the simulator.
    for path in (ROOT / "async_kubespawner").rglob("*.py"):
        if path.parent.name == "sim":
            continue
        source = path.read_text()
        assert "import kubesim" not in source and "from kubesim" not in source, path


def test_simulator_wheel_is_self_contained(wheels: dict[str, Path]) -> None:
    with zipfile.ZipFile(wheels["simulator"]) as archive:
        names = archive.namelist()
        sources = {n: archive.read(n).decode() for n in names if n.endswith(".py")}
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert "kubesim/app.py" in sources and "kubesim/cluster/kubelet.py" in sources
    assert not any(n.startswith("async_kubespawner/") for n in names)
    for name, source in sources.items():
        assert "async_kubespawner" not in source.replace("async_kubespawner repository", ""), name
    assert "kubesim = kubesim.__main__:main" in entry_points
    assert "async-kubespawner-sim = kubesim.__main__:main" in entry_points
    assert "kubesim = kubesim.pytest_plugin" in entry_points
    requirements = _requirement_names(_metadata(wheels["simulator"]))
    assert "async-kubespawner" not in requirements
    assert {"aiohttp", "pyyaml", "cryptography"} <= requirements
