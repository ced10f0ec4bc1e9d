"""The recorded API-server samples the tests compare against ship with the tests.

A test that read them from the machine-wide reference folder would pass on the machine
that has it and fail everywhere else (CI, a contributor's clone), so the copies in
``tests/sim/samples`` are the only ones the suite may use.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = Path(__file__).parent / "samples"
# built from parts so this file does not match its own search
OUTSIDE = re.compile("/work/" + "shared|\\.\\./" + "shared|apiserver" + "-samples")


def test_no_test_or_benchmark_reads_samples_from_outside_the_repo() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("tests", "benchmarks")
        for path in (ROOT / folder).rglob("*.py")
        if OUTSIDE.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_every_recorded_sample_is_present_and_parses() -> None:
    expected = {"discovery.json", "list-pagination.json", "pod-defaulted.json",
                "pvc-defaulted.json", "secret-defaulted.json", "service-defaulted.json",
                "status-errors.json", "watch-events.json"}
    present = {p.name for p in SAMPLES.glob("*.json")}
    assert expected <= present
    for name in sorted(expected):
        assert json.loads((SAMPLES / name).read_text(encoding="utf-8")), name
