"""The README's runnable examples run as written (issue 15, "README truth").

A fenced block right after a ``<!-- runnable -->`` line is a shell session: lines starting
with ``$ `` are commands, the lines after one (up to the next ``$ `` line) its exact
standard output. Each block runs in order in one scratch directory with a fresh SQLite
database ($NODEMGR_DB), the installed commands on PATH; every command must exit 0 and print
what the README shows.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
MARK = "<!-- runnable -->"


def blocks(text: str) -> list[tuple[int, list[tuple[str, list[str]]]]]:
    """(line number, [(command, expected output lines)]) of each runnable block."""
    out = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() != MARK:
            continue
        j = i + 1
        assert lines[j].startswith("```"), f"README.md:{j + 1}: a fence must follow {MARK}"
        session: list[tuple[str, list[str]]] = []
        j += 1
        while not lines[j].startswith("```"):
            if lines[j].startswith("$ "):
                session.append((lines[j][2:], []))
            elif session:
                session[-1][1].append(lines[j])
            j += 1
        out.append((i + 1, session))
    return out


def test_the_readme_has_runnable_examples():
    found = blocks(README.read_text())
    assert found and sum(len(s) for _, s in found) >= 5


def test_blocks_parse_commands_and_output():
    text = f"x\n{MARK}\n```console\n$ echo a\na\n$ true\n```\n"
    assert blocks(text) == [(2, [("echo a", ["a"]), ("true", [])])]


@pytest.mark.parametrize("lineno,session", blocks(README.read_text()),
                         ids=lambda v: f"README.md:{v}" if isinstance(v, int) else "")
def test_readme_example_runs(tmp_path, lineno, session):
    env = dict(os.environ, NODEMGR_DB=f"sqlite:///{tmp_path}/readme.sqlite",
               NODEMGR_CONF=str(tmp_path / "none.conf"), HOME=str(tmp_path),
               PATH=f"{pathlib.Path(sys.executable).parent}:{os.environ['PATH']}")
    (tmp_path / "none.conf").write_text(f"[nodemgr]\ninstalldir = {tmp_path}/install\n")
    for command, expected in session:
        p = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, text=True,
                           capture_output=True, timeout=120)
        where = f"README.md:{lineno}: `{command}`"
        assert p.returncode == 0, f"{where} exited {p.returncode}: {p.stderr.strip()}"
        got = [re.sub(r"\s+$", "", x) for x in p.stdout.splitlines()]
        want = [re.sub(r"\s+$", "", x) for x in expected]
        assert got == want, f"{where} printed:\n" + "\n".join(got)
