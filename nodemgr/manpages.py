"""Manual pages for nodemgr: commands from their own ``--help``, tables from the schema.

``python -m nodemgr.manpages --out DIR`` writes

* ``DIR/man1/CMD.1`` for every command in :data:`nodemgr.cli.registry.COMMANDS`, made by
  help2man (GNU's generator of man pages from ``--help`` and ``--version`` output) from what
  the command prints, so a page never says something ``--help`` does not; the NAME line is
  the first line of the parser's description, and ENVIRONMENT, FILES and SEE ALSO are added;
* ``DIR/man3/noderange.3``, written by hand (``nodemgr/share/man/man3/noderange.3``) from
  what :mod:`nodemgr.noderange` accepts, as xCAT's noderange(3);
* ``DIR/man5/nodemgr-tables.5``, every table with its columns (xCAT's xcatdb(5)), and one
  page per table, ``DIR/man5/TABLE.5nodemgr`` (xCAT's nodehm(5), site(5) ...), from the
  descriptions in :mod:`nodemgr.tables.schema`. The ``5nodemgr`` extension keeps
  ``hosts``, ``networks`` and ``passwd`` from clashing with the system's hosts(5),
  networks(5), passwd(5): ``man nodehm`` finds the table, ``man 5nodemgr hosts`` the
  table of that name.

help2man runs the commands, so it needs the package importable with its core dependency;
set ``SOURCE_DATE_EPOCH`` for a reproducible date. This module writes only under DIR and
never opens the tables.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from nodemgr import __version__
from nodemgr.cli.registry import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
#: The hand-written pages, copied as they are.
HANDWRITTEN = Path(__file__).resolve().parent / "share" / "man"
#: Section of the per-table pages.
TABLE_SECTION = "5nodemgr"
#: The page listing every table.
TABLES_PAGE = "nodemgr-tables"
#: Longest time one command may take to print its --help or --version (seconds).
TIMEOUT = 60


class ManpageError(Exception):
    """A page could not be made: the message names the command and what help2man said."""


# -- roff ----------------------------------------------------------------------------------

def roff(text: str) -> str:
    """*text* escaped for a roff line: backslashes, and a leading ``.`` or ``'`` that would
    start a request (groff's man(7) rules); a ``;``, ``,`` or ``/`` inside a word becomes a
    place the line may break (``\\:``), so long values fill the line without warnings."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    text = re.sub(r"([;,/])(?=\S)", r"\1\\:", text)
    return "\\&" + text if text[:1] in (".", "'") else text


def _th(name: str, section: str, title: str) -> str:
    date = ""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.isdigit():
        import time

        date = time.strftime("%Y-%m-%d", time.gmtime(int(epoch)))
    # left-adjusted: long values (vm.othersettings) would otherwise stretch a line
    return (f'.TH {name.upper()} {section} "{date}" "nodemgr {__version__}" "{title}"\n'
            ".ad l\n")


# -- the tables (section 5) ------------------------------------------------------------------

def table_page(name: str) -> str:
    """The man page of table *name* (xCAT's db2man layout: NAME, SYNOPSIS with the columns,
    DESCRIPTION, one entry per column, SEE ALSO).

    Raises:
        KeyError: no such table.
    """
    from nodemgr.tables.schema import TABLES

    t = TABLES[name]
    out = [_th(name, TABLE_SECTION, "nodemgr tables"), ".SH NAME\n",
           f"{roff(name)} \\- a table in the nodemgr database\n", ".SH SYNOPSIS\n",
           f"\\fB{roff(name)} Attributes:\\fR\n",
           ", ".join(f"\\fI{roff(c)}\\fR" for c in t.columns) + "\n",
           ".SH DESCRIPTION\n", roff(t.description or f"The {name} table.") + "\n"]
    keys = ", ".join(t.keys)
    out.append(".PP\n" + roff(f"Key: {keys}.") + (
        roff(f" The {t.nodecol} column holds a node or a group name.") if t.nodecol else "")
        + "\n")
    out.append(f".SH \"{roff(name.upper())} ATTRIBUTES\"\n")
    for c in t.columns:
        out += [".TP\n", f"\\fB{roff(c)}\\fR\n", roff(t.descriptions.get(c, "")) + "\n"]
    out += [".SH \"SEE ALSO\"\n",
            f".BR {TABLES_PAGE} (5),\n.BR tabdump (1),\n.BR chtab (1),\n.BR nodels (1)\n"]
    return "".join(out)


def tables_page() -> str:
    """nodemgr-tables(5): every table, its description and its columns (xCAT's xcatdb(5))."""
    from nodemgr.tables.schema import TABLES

    out = [_th(TABLES_PAGE, "5", "nodemgr tables"), ".SH NAME\n",
           f"{roff(TABLES_PAGE)} \\- the tables of the nodemgr database\n", ".SH DESCRIPTION\n",
           "The nodemgr database holds xCAT's tables, with xCAT's table and column names, "
           "in SQLite or PostgreSQL (\\fBNODEMGR_DB\\fR, \\fBdb\\fR in nodemgr.conf).\n"
           "Commands read and change them: \\fBtabdump\\fR(1), \\fBtabrestore\\fR(1), "
           "\\fBchtab\\fR(1), \\fBnodels\\fR(1), \\fBnodech\\fR(1).\n"
           ".PP\nEach table has its own page, " + roff(f"TABLE({TABLE_SECTION})") +
           ", with a description of every column: \\fBman nodehm\\fR, "
           f"\\fBman {TABLE_SECTION} hosts\\fR.\n", ".SH TABLES\n"]
    for name, t in TABLES.items():
        out += [".TP\n", f"\\fB{roff(name)}\\fR\n", roff(t.description) + "\n",
                ".br\n", "Columns: " + roff(", ".join(t.columns)) + ".\n"]
    out += [".SH \"SEE ALSO\"\n",
            ",\n".join(f".BR {n} ({TABLE_SECTION})" for n in TABLES) + "\n"]
    return "".join(out)


# -- the commands (section 1) -----------------------------------------------------------------

def help2man_form(text: str) -> str:
    """*text* (a ``--help``) with its leading ``Usage:`` block in the form help2man reads.

    xCAT's block (``Usage: prog ...``, lines wrapped under it, then one ``prog ...`` line
    per other form) becomes one line per form, the others introduced by ``  or: `` (GNU's
    form, help2man's SYNOPSIS rule); the rest of *text* is unchanged.
    """
    lines = text.split("\n")
    if not lines or not lines[0].startswith("Usage:"):
        return text
    end = next((i for i, line in enumerate(lines) if not line.strip()), len(lines))
    block = lines[:end]
    prog = block[0].split()[1] if len(block[0].split()) > 1 else ""
    forms: list[str] = []
    for line in block:
        words = line.split()
        if line.startswith("Usage:"):
            forms.append(" ".join(words[1:]))
        elif words[:1] == [prog]:
            forms.append(" ".join(words))
        elif forms:
            forms[-1] += " " + " ".join(words)
    usage = [f"Usage: {forms[0]}"] + [f"  or:  {f}" for f in forms[1:]]
    return "\n".join(usage + lines[end:])


def run_for_help2man(name: str, argv: list[str]) -> int:
    """Run command *name* as help2man sees it: ``--help`` passed through
    :func:`help2man_form`, anything else as it is. Returns the exit code."""
    from nodemgr.cli.registry import run

    if argv != ["--help"]:
        return run(name, argv)
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            code = run(name, argv)
    except SystemExit as exc:   # argparse's help action exits
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    sys.stdout.write(help2man_form(buf.getvalue()))
    return code


def _wrapper(directory: Path, name: str) -> Path:
    """An executable called *name* that runs the command from this copy of nodemgr with
    this interpreter (help2man takes the program's name from the file's)."""
    path = directory / name
    path.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(ROOT)!r})\n"
                    "from nodemgr.manpages import run_for_help2man\n"
                    f"sys.exit(run_for_help2man({name!r}, sys.argv[1:]))\n")
    path.chmod(0o755)
    return path


def version_string(program: Path, name: str) -> str:
    """help2man's version line for command *name*, ``NAME (nodemgr) VERSION`` (GNU's form,
    which help2man splits into program, package and version): VERSION is the last word of
    the command's own ``--version`` line (``rpower - nodemgr version 0.1.0``) when it
    answers with exit 0, else the package's version."""
    try:
        r = subprocess.run([str(program), "--version"], capture_output=True, text=True,
                           timeout=TIMEOUT, stdin=subprocess.DEVNULL)
        line = (r.stdout or r.stderr).strip().splitlines()[0] if r.returncode == 0 else ""
    except (OSError, subprocess.TimeoutExpired, IndexError):
        line = ""
    version = line.split()[-1] if line else __version__
    return f"{name} (nodemgr) {version}"


def summary(name: str) -> str:
    """The NAME line's text: the first line of the command's parser description, without
    its final full stop."""
    from nodemgr.completion import parser_of

    p = parser_of(name)
    first = (p.description or "").strip().splitlines()[0] if p and p.description else ""
    return first.rstrip(".") or "a nodemgr command"


def _family(name: str) -> list[str]:
    module = COMMANDS[name].split(":")[0]
    return sorted(c for c, target in COMMANDS.items() if target.split(":")[0] == module
                  and c != name)


def _include(name: str) -> str:
    from nodemgr.completion import spec_of

    spec = spec_of(name)
    takes_range = any(a.kind == "noderange" for a in spec.positionals) or any(
        a is not None and a.kind == "noderange" for a in spec.options.values())
    see = [f".BR {c} (1)" for c in _family(name)]
    if takes_range:
        see.append(".BR noderange (3)")
    see.append(f".BR {TABLES_PAGE} (5)")
    return ("[ENVIRONMENT]\n.TP\n\\fBNODEMGR_DB\\fR\n"
            "The database URL (sqlite:////path or postgresql://...); overrides \\fBdb\\fR "
            "of the configuration file.\n.TP\n\\fBNODEMGR_CONF\\fR\n"
            "The configuration file to read instead of /etc/nodemgr/nodemgr.conf.\n"
            "[FILES]\n.TP\n/etc/nodemgr/nodemgr.conf\n"
            "The configuration: the database URL and the first values of the site table.\n"
            "[SEE ALSO]\n" + ",\n".join(see) + "\n")


def command_page(name: str, workdir: Path, help2man: str = "help2man") -> str:
    """The section-1 page of command *name*, made by help2man from its ``--help``.

    Raises:
        ManpageError: help2man is missing or failed (its message).
    """
    program = _wrapper(workdir, name)
    include = workdir / f"{name}.h2m"
    include.write_text(_include(name))
    cmd = [help2man, "--no-info", "--section=1", "--manual=nodemgr commands",
           f"--source=nodemgr {__version__}", f"--name={summary(name)}",
           f"--version-string={version_string(program, name)}",
           f"--include={include}", str(program)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT,
                           stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise ManpageError(f"{help2man} not found: install help2man") from None
    except subprocess.TimeoutExpired:
        raise ManpageError(f"{name}: help2man took more than {TIMEOUT} s") from None
    if r.returncode != 0 or not r.stdout:
        msg = " ".join(r.stderr.split()) or f"exit {r.returncode}"
        raise ManpageError(f"{name}: help2man: {msg}")
    return r.stdout


# -- everything --------------------------------------------------------------------------------

def build(out: str | os.PathLike, commands: Iterable[str] | None = None, *,
          help2man: str = "help2man", sections: str = "135") -> list[Path]:
    """Write the pages under *out* (``man1/``, ``man3/``, ``man5/``).

    Args:
        out: the directory (created).
        commands: the commands to document (default: every registry command).
        help2man: the help2man program.
        sections: which of ``1``, ``3``, ``5`` to write.
    Returns:
        The files written, in order.
    Raises:
        ManpageError: help2man is missing, or some commands' pages could not be made (the
            message names each; every other page is written).
    """
    out = Path(out)
    written: list[Path] = []

    def put(rel: str, text: str) -> None:
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)

    failed: list[str] = []
    if "1" in sections:
        with tempfile.TemporaryDirectory(prefix="nodemgr-man-") as tmp:
            for name in sorted(commands if commands is not None else COMMANDS):
                try:
                    put(f"man1/{name}.1", command_page(name, Path(tmp), help2man))
                except ManpageError as exc:
                    if "not found" in str(exc):
                        raise
                    failed.append(str(exc))
    if "3" in sections:
        for src in sorted((HANDWRITTEN / "man3").glob("*.3")):
            put(f"man3/{src.name}", src.read_text())
    if "5" in sections:
        from nodemgr.tables.schema import TABLES

        put(f"man5/{TABLES_PAGE}.5", tables_page())
        for name in TABLES:
            put(f"man5/{name}.{TABLE_SECTION}", table_page(name))
    if failed:
        raise ManpageError("; ".join(failed))
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m nodemgr.manpages --out DIR [--sections 135] [CMD...]``; exit 0, or 1 with
    one line naming the page that failed."""
    ap = argparse.ArgumentParser(prog="python -m nodemgr.manpages",
                                 description="Write nodemgr's man pages under DIR.")
    ap.add_argument("--out", required=True, metavar="DIR")
    ap.add_argument("--sections", default="135", help="which sections (default 135)")
    ap.add_argument("--help2man", default="help2man", metavar="PROGRAM")
    ap.add_argument("commands", nargs="*", metavar="CMD", help="default: every command")
    a = ap.parse_args(argv)
    unknown = [c for c in a.commands if c not in COMMANDS]
    if unknown:
        sys.stderr.write(f"Error: not a nodemgr command: {', '.join(unknown)}\n")
        return 1
    try:
        paths = build(a.out, a.commands or None, help2man=a.help2man, sections=a.sections)
    except ManpageError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return 1
    print(f"{len(paths)} pages under {a.out}")
    return 0


def available(help2man: str = "help2man") -> bool:
    """Whether *help2man* is on PATH."""
    return shutil.which(help2man) is not None


if __name__ == "__main__":
    sys.exit(main())
