"""The simulator's old import paths keep working, as the very same modules, with a warning."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings


def test_old_paths_are_the_kubesim_modules_with_a_deprecation_warning() -> None:
    # A fresh interpreter: in this one the alias may already have been imported.
    code = (
        "import warnings\n"
        "warnings.simplefilter('error', DeprecationWarning)\n"
        "try:\n"
        "    import async_kubespawner.sim.testing\n"
        "except DeprecationWarning as w:\n"
        "    print('WARNED', w)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "WARNED" in out.stdout and "kubesim" in out.stdout


def test_old_and_new_names_share_one_module_object() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old_testing = importlib.import_module("async_kubespawner.sim.testing")
        old_store = importlib.import_module("async_kubespawner.sim.store")
        old_plugin = importlib.import_module("async_kubespawner.sim.pytest_plugin")
        from async_kubespawner.sim.cluster import testing as old_cluster_testing
    import kubesim.cluster.testing
    import kubesim.pytest_plugin
    import kubesim.store
    import kubesim.testing

    assert old_testing is kubesim.testing
    assert old_store.Store is kubesim.store.Store
    assert old_plugin is kubesim.pytest_plugin
    assert old_cluster_testing is kubesim.cluster.testing
    assert old_testing.run_simulator is kubesim.testing.run_simulator
