"""Which spawner class is measured, with which configuration, pointed at which API server.

``--spawner`` names any importable ``Spawner`` subclass (``module.Class`` or
``module:Class``), so a user can measure the spawner they run today next to ours; the
benchmark imports it only when asked. ``--config`` is a Python traitlets config file, as
``jupyterhub_config.py`` is (``c.KubeSpawner.cpu_limit = 1``...).
"""

from __future__ import annotations

import atexit
import importlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from jupyterhub.spawner import Spawner
from traitlets.config import Config, PyFileConfigLoader


class BenchmarkSetupError(ValueError):
    """A ``--spawner`` or ``--config`` that cannot be used; the message says how to fix it."""


def load_spawner_class(path: str) -> type[Spawner]:
    module_name, sep, class_name = path.replace(":", ".").rpartition(".")
    if not sep or not module_name:
        raise BenchmarkSetupError(
            f"--spawner {path!r}: give a dotted path such as async_kubespawner.KubeSpawner")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BenchmarkSetupError(
            f"--spawner {path!r}: cannot import {module_name!r} ({exc}); is it installed in "
            f"this Python ({sys.executable})?") from exc
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type) or not issubclass(cls, Spawner):
        raise BenchmarkSetupError(
            f"--spawner {path!r}: {module_name}.{class_name} is not a jupyterhub Spawner class")
    return cls


def load_config(path: str | None) -> Config:
    if not path:
        return Config()
    file = Path(path)
    if not file.is_file():
        raise BenchmarkSetupError(f"--config {path!r}: no such file")
    loader = PyFileConfigLoader(file.name, path=str(file.resolve().parent))
    try:
        return loader.load_config()
    except Exception as exc:
        raise BenchmarkSetupError(f"--config {path!r}: cannot load it: {exc}") from exc


_kubeconfig_dir: Path | None = None


def benchmark_kubeconfig() -> Path:
    """One kubeconfig path for every simulator this process starts, exported as KUBECONFIG.

    Kubernetes client libraries fix their default kubeconfig location when imported, and
    some load it once per process; with one stable path, each simulator started in turn
    (storm, then memory probe) is found there.
    """
    global _kubeconfig_dir
    if _kubeconfig_dir is None:
        _kubeconfig_dir = Path(tempfile.mkdtemp(prefix="aks-bench-kube-"))
        atexit.register(shutil.rmtree, _kubeconfig_dir, True)
    path = _kubeconfig_dir / "kubeconfig"
    os.environ["KUBECONFIG"] = str(path)
    return path


def point_at_simulator(spawner_class: type[Spawner], config: Config, url: str,
                       kubeconfig: str) -> None:
    """Aim the spawner at the simulator unless the config already chose an API server.

    ``KUBECONFIG`` serves every Kubernetes client library; ``k8s_api_host`` is set too
    when the class has that trait (ours and upstream's), since it wins over in-cluster
    detection.
    """
    os.environ["KUBECONFIG"] = kubeconfig
    if "k8s_api_host" not in spawner_class.class_trait_names():
        return
    for section in (spawner_class.__name__, *(c.__name__ for c in spawner_class.__mro__)):
        if section in config and "k8s_api_host" in config[section]:
            return
    config[spawner_class.__name__]["k8s_api_host"] = url


async def shutdown_spawner_module(spawner_class: type[Spawner]) -> None:
    """Close what the hub closes at shutdown (our shared reflectors and API clients).

    Other spawner classes are left alone: their process ends after the measurement.
    """
    if not spawner_class.__module__.startswith("async_kubespawner"):
        return
    reflector = sys.modules.get("async_kubespawner.kube.reflector")
    client = sys.modules.get("async_kubespawner.kube.client")
    if reflector is not None:
        await reflector.stop_reflectors()
    if client is not None:
        await client.close_shared_apis()


def describe_versions(spawner_class: type[Spawner]) -> dict[str, Any]:
    """Versions of what the figures depend on."""
    from importlib import metadata

    versions: dict[str, Any] = {"python": sys.version.split()[0]}
    for dist in ("jupyterhub", "kubernetes_asyncio", "kubernetes", "aiohttp", "traitlets"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    top = spawner_class.__module__.split(".")[0]
    module = sys.modules.get(top)
    versions[top] = getattr(module, "__version__", None)
    return versions
