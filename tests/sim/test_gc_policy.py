"""The simulator process's GC policy: survivors of a full collection leave later walks."""

from __future__ import annotations

import gc
import subprocess
import sys

SCRIPT = """
import gc
from kubesim.gc_policy import freeze_survivors_of_full_collections
assert freeze_survivors_of_full_collections() is True
assert freeze_survivors_of_full_collections() is False  # once per process
young, middle, old = gc.get_threshold()
assert (young, middle, old) == (2_000, 4, 10), gc.get_threshold()
after_start = gc.get_freeze_count()
store = [{"metadata": {"name": f"pod-{i}"}, "spec": {"n": [i]}} for i in range(20000)]
gc.collect()  # a full collection: its survivors (the store) are frozen after it
assert gc.get_freeze_count() >= after_start + 20000, (after_start, gc.get_freeze_count())
del store  # acyclic stored objects are still freed by reference counting
print("ok")
"""


def test_full_collection_survivors_are_frozen_in_a_fresh_process() -> None:
    # A child process: freezing is process-wide and must not leak into the test run.
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         check=False, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_importing_the_policy_installs_nothing() -> None:
    import kubesim.gc_policy

    assert kubesim.gc_policy._freeze_after_full_collection not in gc.callbacks
