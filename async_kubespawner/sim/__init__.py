"""Deprecated alias: the simulator is now the ``kubesim`` distribution.

The Kubernetes API simulator used to ship inside this package as ``async_kubespawner.sim``.
It moved to its own distribution so that a hub installs only what a hub needs (no YAML or
X.509 libraries, no test server). Code written against the old paths (``from
async_kubespawner.sim.testing import run_simulator``, ``pytest_plugins =
["async_kubespawner.sim.pytest_plugin"]``) keeps working for a deprecation period: every
``async_kubespawner.sim.X`` import is answered with the very module object ``kubesim.X``
(one module, not a copy, so state and ``isinstance`` checks agree), with a
``DeprecationWarning``. Install ``kubesim`` (``pip install ./simulator`` from the
repository) for it to resolve.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

_OLD = __name__
_NEW = "kubesim"

warnings.warn(
    f"{_OLD} moved to the 'kubesim' distribution; import {_NEW} instead "
    f"(the old path is an alias that will be removed)",
    DeprecationWarning,
    stacklevel=2,
)

try:
    _kubesim = importlib.import_module(_NEW)
except ImportError as exc:  # pragma: no cover - exercised by hand without the simulator
    raise ImportError(
        f"{_OLD} is now the separate 'kubesim' distribution, which is not installed: "
        "pip install kubesim (or ./simulator from the async_kubespawner repository)"
    ) from exc


class _AliasLoader(importlib.abc.Loader):
    """Answers ``async_kubespawner.sim.X`` with the already-imported ``kubesim.X``."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None  # the import system makes a placeholder; exec_module swaps it out

    def exec_module(self, module: ModuleType) -> None:
        # The import system reads sys.modules again after exec_module, so putting the real
        # module there makes every importer of the old name get the kubesim module itself.
        sys.modules[module.__name__] = importlib.import_module(self.target)


class _AliasFinder(importlib.abc.MetaPathFinder):
    """Finds every submodule under the old path and points it at its new home."""

    def find_spec(
        self, fullname: str, path: object = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(_OLD + "."):
            return None
        new_name = _NEW + fullname[len(_OLD) :]
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(new_name))


if not any(isinstance(finder, _AliasFinder) for finder in sys.meta_path):
    sys.meta_path.insert(0, _AliasFinder())


def __getattr__(name: str) -> object:
    """``async_kubespawner.sim.testing`` as an attribute, after the package import."""
    return importlib.import_module(f"{_OLD}.{name}")
