"""docs/operator-migration.md: every console example runs and prints what the page shows.

Each ```console block holds commands (``$ ...``) followed by the lines the page shows of
their output; ``...`` stands for lines left out. The command runs in-process (only the
two documented commands are allowed) and the shown lines must appear in its output, in
order.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
from pathlib import Path

import pytest

from async_kubespawner.operator import jupyternetes, migrate

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "operator-migration.md"
COMMANDS = {
    "async_kubespawner.operator.migrate": migrate.main,
    "async_kubespawner.operator.jupyternetes": jupyternetes.main,
}


def examples() -> list[tuple[str, list[str]]]:
    found = []
    for block in re.findall(r"```console\n(.*?)```", DOC.read_text(), re.S):
        lines = block.rstrip("\n").split("\n")
        assert lines[0].startswith("$ "), block
        found.append((lines[0][2:], lines[1:]))
    return found


def test_the_page_has_examples_of_both_commands() -> None:
    used = {shlex.split(command)[2] for command, _ in examples()}
    assert used == set(COMMANDS)


@pytest.mark.parametrize(("command", "shown"), examples())
def test_console_example(command: str, shown: list[str]) -> None:
    words = shlex.split(command)
    assert words[:2] == ["python", "-m"], command
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            COMMANDS[words[2]](words[3:])
    finally:
        os.chdir(cwd)
    printed = (out.getvalue() + err.getvalue()).split("\n")
    position = 0
    for line in shown:
        if line == "...":
            continue
        assert line in printed[position:], f"not printed (in order): {line!r}"
        position = printed.index(line, position) + 1
