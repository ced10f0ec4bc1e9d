"""Where the hub's CPU goes, phase by phase (the starts, the stops).

A whole-run cProfile mixes imports, the warm-up, the idle polls and the storm; a cut
aimed at the stops needs the stops alone. Two views, each switched on by its flag:

- ``--profile-phases DIR``: a cProfile of each phase only (``DIR/start.pstats``,
  ``DIR/stop.pstats``): exact call counts, costs inflated by the profiler's own
  per-call overhead (deep recursion most of all);
- ``--sample-phases DIR``: py-spy, out of process, sampling this process only while a
  phase runs (``DIR/start.txt``, ``DIR/stop.txt``, collapsed stacks: one line per stack
  with its sample count). Unbiased by per-call overhead, and it sees time in C code
  (JSON, the garbage collector's pauses show as the Python line that triggered them).
"""

from __future__ import annotations

import asyncio
import cProfile
import os
import shutil
import signal
import sys
from pathlib import Path


class PhaseProfiles:
    """cProfile and/or py-spy around each named phase; both off when no directory."""

    def __init__(self, profile_dir: Path | None, sample_dir: Path | None,
                 sample_rate: int = 1000) -> None:
        self.profile_dir = profile_dir
        self.sample_dir = sample_dir
        self.sample_rate = sample_rate
        self._profiler: cProfile.Profile | None = None
        self._sampler: asyncio.subprocess.Process | None = None
        self._phase = ""
        for folder in (profile_dir, sample_dir):
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
        # the environment's own py-spy first (a virtualenv's bin/ need not be on PATH)
        beside = Path(sys.executable).parent / "py-spy"
        self.py_spy = str(beside) if beside.exists() else shutil.which("py-spy")
        if sample_dir is not None and self.py_spy is None:
            raise RuntimeError("--sample-phases needs py-spy (pip install py-spy)")

    async def begin(self, phase: str) -> None:
        self._phase = phase
        if self.sample_dir is not None:
            out = self.sample_dir / f"{phase}.txt"
            self._sampler = await asyncio.create_subprocess_exec(
                str(self.py_spy), "record", "--pid", str(os.getpid()), "--rate", str(self.sample_rate),
                "--format", "raw", "--output", str(out), "--nonblocking",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
            # py-spy prints its banner once it is attached and sampling
            assert self._sampler.stdout is not None
            await asyncio.wait_for(self._sampler.stdout.readline(), timeout=30)
        if self.profile_dir is not None:
            self._profiler = cProfile.Profile()
            self._profiler.enable()

    async def end(self) -> None:
        if self._profiler is not None and self.profile_dir is not None:
            self._profiler.disable()
            self._profiler.dump_stats(str(self.profile_dir / f"{self._phase}.pstats"))
            self._profiler = None
        if self._sampler is not None:
            self._sampler.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            await asyncio.wait_for(self._sampler.communicate(), timeout=60)
            self._sampler = None
