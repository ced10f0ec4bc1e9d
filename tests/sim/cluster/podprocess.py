"""Pods whose containers are real processes (the cluster's process mode), and a check
that none of them outlives the simulator."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

PY = sys.executable


def descendants(pid: int) -> set[int]:
    """Live (non-zombie) descendants of ``pid``, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, ppid = fields[0], int(fields[1])
        if state != "Z":
            children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def process_pod(
    name: str,
    command: list[str],
    *,
    restart_policy: str = "Never",
    port: int | None = None,
    **container: Any,
) -> dict[str, Any]:
    """A pod whose one container runs ``command`` (process mode runs it for real)."""
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": restart_policy,
            "terminationGracePeriodSeconds": 30,
            "containers": [
                {"name": "main", "image": "python:3.11", "command": command, **container}
            ],
        },
    }
    if port:
        body["spec"]["containers"][0]["ports"] = [{"containerPort": port}]
    return body
