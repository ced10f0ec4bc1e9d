"""Where a real hub's CPU goes: a sampling profile of the JupyterHub process, by component.

JupyterHub's own metrics say how long a spawn or a REST request took, not who burnt the
CPU meanwhile: with 1,000 users at once the hub's loop is saturated and every duration
includes everyone else's work. A sampling profiler attached to the hub process answers the
question that matters for a spawner ("how much of the hub's CPU is the spawner's?") without
changing the hub: ``py-spy record --format raw`` writes one line per distinct stack,
``frame;frame;...;leaf COUNT``, and each stack is charged to one component by the first
rule of :data:`COMPONENTS` that any of its frames matches (the spawner first, so a database
call made *by* the spawner would count as the spawner's; none is made today).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

# (component, pattern on one frame "function (path:line)"), in priority order.
COMPONENTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("spawner (spawner package and its Kubernetes client)",
     re.compile(r"\((?:async_kubespawner|kubespawner|kubernetes_asyncio)/")),
    ("API token hashing (jupyterhub.utils.hash_token)",
     re.compile(r"^(?:hash_token|compare_token) \(jupyterhub/utils\.py")),
    ("database (SQLAlchemy)", re.compile(r"\(sqlalchemy/")),
    ("proxy API calls", re.compile(r"\(jupyterhub/proxy\.py")),
    ("waiting for I/O (select)", re.compile(r"^(?:\S+\.)?select \(selectors\.py")),
    ("HTTP server and client (tornado)", re.compile(r"\(tornado/")),
)
OTHER = "other (JupyterHub, asyncio, traitlets...)"


def parse_raw(lines: Iterable[str]) -> list[tuple[list[str], int]]:
    """``(frames root->leaf, samples)`` per line of a py-spy raw profile; blank and
    malformed lines (no trailing count) are skipped rather than failing a whole report."""
    stacks: list[tuple[list[str], int]] = []
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        stacks.append((stack.split(";"), int(count)))
    return stacks


def component_of(frames: list[str]) -> str:
    """The component a stack is charged to (see the module docstring)."""
    for name, pattern in COMPONENTS:
        if any(pattern.search(frame) for frame in frames):
            return name
    return OTHER


def attribute(stacks: Iterable[tuple[list[str], int]]) -> dict[str, dict[str, float]]:
    """Samples and share of the total per component, largest first."""
    counts: dict[str, int] = {}
    for frames, n in stacks:
        key = component_of(frames)
        counts[key] = counts.get(key, 0) + n
    total = sum(counts.values())
    return {
        name: {"samples": n, "share": round(n / total, 4) if total else 0.0}
        for name, n in sorted(counts.items(), key=lambda kv: -kv[1])
    }


def attribute_file(path: Path) -> dict[str, dict[str, float]]:
    """:func:`attribute` of a py-spy raw file."""
    with path.open(encoding="utf-8", errors="replace") as f:
        return attribute(parse_raw(f))


def markdown(shares: dict[str, dict[str, float]]) -> list[str]:
    """Table rows for a report."""
    rows = ["| hub CPU by component (sampled) | samples | share |", "|---|---:|---:|"]
    for name, row in shares.items():
        rows.append(f"| {name} | {int(row['samples'])} | {100 * row['share']:.1f} % |")
    return rows


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(attribute_file(Path(sys.argv[1])), indent=2))
