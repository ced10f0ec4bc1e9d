"""Every recorded request replayed against a fresh simulator answers as the real server did
(``scripts/replay_samples.py``; this test keeps the script honest and the count at 100%)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


async def test_every_recorded_request_matches():
    spec = importlib.util.spec_from_file_location("replay_samples", ROOT / "scripts" / "replay_samples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = await module.replay(ROOT / "tests" / "sim" / "samples", verbose=True)
    assert len(results) >= 11
    assert sum(len(v) for v in results.values()) >= 40
    mismatched = {group: oks for group, oks in results.items() if not all(oks)}
    assert mismatched == {}
