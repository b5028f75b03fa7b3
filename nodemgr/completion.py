"""Shell completion for every nodemgr command: the back end the bash and zsh scripts call.

Nothing here runs when a command starts: the shell scripts
(``nodemgr/share/completion/nodemgr.bash`` and ``_nodemgr.zsh``) are loaded by the shell's
own completion system, and they start ``nodemgr-complete`` (this module) only when TAB is
pressed. argcomplete would do the same job but puts an import and an environment check in
every command's start; these commands start with one import (``nodemgr.cli.registry``), so
the completer stays a separate program.

What it completes, for whatever :data:`nodemgr.cli.registry.COMMANDS` lists:

* command options, read from the command's own argparse parser (:func:`parser_of` runs
  the command up to its ``parse_args`` call and stops it there, as argcomplete does), and
  an option's value when it has ``choices``, names files or directories, or is a noderange;
* positional arguments by their name in the parser: a noderange (node and group names
  from the tables, after ``,``, ``@``, ``(``, a leading ``-`` and the ``-``/``:`` of a
  range too), table names, ``table.column`` attributes, key columns (``chtab node=``),
  pool and virttype names, files, and fixed words (``rpower ... on|off|...``).

Protocol (both shells): the first output line is a directive (empty, ``nospace`` or
``files``), the second the prefix every candidate shares (zsh shows only the rest), then one
candidate per line. ``nodemgr-complete bash WORDBREAKS LINE`` takes the command line up to
the cursor and returns candidates with the part bash treats as separate words (up to the
last character of ``$COMP_WORDBREAKS``, such as ``=`` or ``:``) removed;
``nodemgr-complete zsh CURRENT WORD...`` takes zsh's ``$words`` (unquoted) and the 1-based
index of the word under the cursor. ``nodemgr-complete --script bash|zsh`` prints the shell
script with the command list filled in; ``--write DIR`` writes the files a package installs
(see :func:`write_scripts`). This module never writes to the tables, and a database that is
missing or unreadable completes no names rather than failing.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from nodemgr.cli.registry import COMMANDS

SHARE = Path(__file__).resolve().parent / "share" / "completion"
#: Template files: ``@COMMANDS@`` is replaced by the registry's command names.
TEMPLATES = {"bash": SHARE / "nodemgr.bash", "zsh": SHARE / "_nodemgr.zsh"}
#: Where a package installs the generated scripts, relative to a prefix such as ``/usr``.
INSTALL_PATHS = {"bash": "share/bash-completion/completions/nodemgr",
                 "zsh": "share/zsh/vendor-completions/_nodemgr"}
#: Attribute shortnames nodels and nodech accept (nodemgr.noderange.SHORTNAMES).
SHORTNAMES = ("groups", "tags", "mgt")
#: Parser destinations and metavars whose value is a file or directory.
_FILE_DESTS = {"file", "iso", "path", "output", "root", "sysroot", "tftpdir", "ca_out"}


#: The argument :func:`parser_of` gives a command that does not parse an empty command line.
PROBE = "--nodemgr-completion-probe"


class _Captured(BaseException):
    """Raised from inside ``parse_known_args`` to stop a command and hand out its parser
    (a BaseException, so no command's ``except Exception`` swallows it)."""


def parser_of(name: str) -> argparse.ArgumentParser | None:
    """The argparse parser command *name* builds, without running the command.

    The command's function is called with no arguments (then with :data:`PROBE`) while
    ``ArgumentParser.parse_known_args`` (which ``parse_args`` and ``parse_intermixed_args``
    call) is replaced by one that raises; its output is discarded.

    Returns:
        The parser, or None when the command reached no parser (or failed before it).
    Raises:
        KeyError: *name* is not in the registry.
    """
    module, func = COMMANDS[name].split(":")
    saved = argparse.ArgumentParser.parse_known_args

    def capture(self, args=None, namespace=None):
        raise _Captured(self)

    argparse.ArgumentParser.parse_known_args = capture
    try:
        command = getattr(importlib.import_module(module), func)
        # no arguments first; a command that prints its usage for none (mkdef, as xCAT's)
        # gets an option no command knows, which only its parser reads
        for argv in ([], [PROBE]):
            try:
                with contextlib.redirect_stdout(io.StringIO()), \
                        contextlib.redirect_stderr(io.StringIO()):
                    command(argv)
            except _Captured as got:
                return got.args[0]
            except (Exception, SystemExit):
                continue
    except Exception:   # noqa: BLE001 - an import failure: no parser
        return None
    finally:
        argparse.ArgumentParser.parse_known_args = saved
    return None


# -- what each argument holds -------------------------------------------------------------

@dataclass(frozen=True)
class Arg:
    """One positional argument or option value: *kind* is ``noderange``, ``table``,
    ``attribute``, ``keycol``, ``pool``, ``virttype``, ``files``, ``words`` (the fixed
    *words*) or ``none``; *many* when it takes any number of words."""

    kind: str
    words: tuple[str, ...] = ()
    many: bool = False


def _kind(dest: str, metavar: str | None, choices) -> Arg:
    if choices:
        return Arg("words", tuple(str(c) for c in choices))
    meta = (metavar or "").strip()
    low = f"{dest} {meta}".lower()
    if "|" in meta and "noderange" not in low and "table" not in low:
        return Arg("words", tuple(w for w in meta.replace(" ", "").split("|") if w))
    if "noderange" in low:
        return Arg("noderange")
    if dest in _FILE_DESTS or meta in ("FILE", "DIR"):
        return Arg("files")
    if "table.column" in low:
        return Arg("attribute")
    if dest == "types":
        from nodemgr.objdef import ALL_TYPES

        return Arg("words", tuple(ALL_TYPES))
    if dest == "table":
        return Arg("table")
    if dest == "keys" or meta.startswith("KEY=VALUE"):
        return Arg("keycol")
    if dest == "pool":
        return Arg("pool")
    if dest == "virttype":
        return Arg("virttype")
    return Arg("none")


@dataclass(frozen=True)
class Spec:
    """What completion knows of one command: ``options`` maps each option string to the
    :class:`Arg` of its value (None: it takes none); ``positionals`` in order."""

    options: dict[str, Arg | None]
    positionals: tuple[Arg, ...]


def spec_of(name: str) -> Spec:
    """The :class:`Spec` of command *name*, from its parser (see :func:`parser_of`).

    A ``words`` positional whose metavar reads ``noderange|attribute|...`` (nodels, nodech,
    nodeadd) is a noderange followed by any number of attributes.
    """
    p = parser_of(name)
    if p is None:
        return Spec({"-h": None, "--help": None}, ())
    options: dict[str, Arg | None] = {}
    positionals: list[Arg] = []
    for a in p._actions:  # argparse keeps no public list of its actions
        if a.option_strings:
            value = None if a.nargs == 0 else _kind(a.dest, a.metavar, a.choices)
            for s in a.option_strings:
                options[s] = value
            continue
        many = a.nargs in ("*", "+", argparse.REMAINDER)
        meta = a.metavar if isinstance(a.metavar, str) else ""
        if meta.startswith("noderange|"):
            positionals.append(Arg("noderange"))
            positionals.append(Arg("attribute", many=True))
        else:
            positionals.append(Arg(**{**_kind(a.dest, a.metavar, a.choices).__dict__,
                                      "many": many}))
    return Spec(options, tuple(positionals))


# -- names from the tables -----------------------------------------------------------------

def _store():
    from nodemgr import config
    from nodemgr.tables.store import Store

    url = config.load().db_url
    if url.startswith("sqlite:///") and not os.path.exists(url[len("sqlite:///"):]):
        return None     # never create a database by pressing TAB
    return Store(url)


def table_names(kind: str) -> list[str]:
    """Names for *kind* read from the configured store: ``noderange`` (nodes, static and
    dynamic groups), ``pool`` (serverpool.name) or ``virttype`` (virttype.type); an empty
    list when the store cannot be opened or read."""
    try:
        store = _store()
        if store is None:
            return []
        try:
            if kind == "pool":
                return sorted(v for v in store.distinct("serverpool", "name") if v)
            if kind == "virttype":
                return sorted(v for v in store.distinct("virttype", "type") if v)
            names = {v for v in store.distinct("nodelist", "node") if v}
            for groups in store.distinct("nodelist", "groups"):
                names.update(g.strip() for g in (groups or "").split(",") if g.strip())
            names.update(v for v in store.distinct("nodegroup", "groupname") if v)
            return sorted(names)
        finally:
            store.close()
    except Exception:   # noqa: BLE001 - completion must never print a traceback
        return []


# -- candidates ----------------------------------------------------------------------------

@dataclass
class Result:
    """Candidates (whole words), the directive for the shell, and the prefix they share."""

    words: list[str]
    directive: str = ""
    prefix: str = ""


def _attributes(cur: str) -> Result:
    from nodemgr.tables.schema import TABLES

    if "." in cur:
        table, _, _col = cur.partition(".")
        if table in TABLES and "=" not in cur and "~" not in cur and "!" not in cur:
            cols = [f"{table}.{c}" for c in TABLES[table].columns]
            return Result([c for c in cols if c.startswith(cur)], prefix=table + ".")
        return Result([])
    words = [f"{t}." for t in TABLES] + list(SHORTNAMES)
    words = [w for w in words if w.startswith(cur)]
    return Result(words, "nospace" if all(w.endswith(".") for w in words) else "")


def _keycols(cur: str) -> Result:
    from nodemgr.tables.schema import TABLES

    keys = sorted({f"{k}=" for t in TABLES.values() for k in t.keys})
    return Result([k for k in keys if k.startswith(cur)], "nospace")


def noderange_candidates(cur: str, names: list[str]) -> Result:
    """Complete the last item of noderange *cur* with *names*.

    The item is the text after the last ``,`` (then a leading ``-``, ``@``, ``(`` or
    ``^``); names that start with it complete it, and so do names that start with the text
    after a ``-``, ``:`` or ``@`` inside it (the right end of ``node01-node1``, the group of
    ``compute@rack``), so a name that itself holds a ``-`` still completes whole.

    Returns:
        A :class:`Result` of whole words (``vm01,vm02``), with no space after them so
        another ``,`` can follow, and the shared prefix up to the completed part.
    """
    head, _, item = cur.rpartition(",")
    head = head + "," if _ else ""
    while item[:1] in ("-", "@", "(", "^") and item:
        head, item = head + item[0], item[1:]
    out: dict[str, None] = {}
    prefixes = [head]
    out.update((head + n, None) for n in names if n.startswith(item))
    for i, ch in enumerate(item):
        if ch in "-:@":
            pre, rest = head + item[: i + 1], item[i + 1:]
            prefixes.append(pre)
            out.update((pre + n, None) for n in names if n.startswith(rest))
    words = list(out)
    prefix = os.path.commonprefix(words) if words else head
    shared = max((p for p in prefixes if prefix.startswith(p)), key=len, default="")
    return Result(words, "nospace", shared)


def _value(arg: Arg | None, cur: str) -> Result:
    if arg is None or arg.kind == "none":
        return Result([])
    if arg.kind == "files":
        return Result([], "files")
    if arg.kind == "words":
        return Result([w for w in arg.words if w.startswith(cur)])
    if arg.kind == "noderange":
        return noderange_candidates(cur, table_names("noderange"))
    if arg.kind in ("pool", "virttype"):
        return Result([n for n in table_names(arg.kind) if n.startswith(cur)])
    if arg.kind == "table":
        from nodemgr.tables.schema import TABLES

        return Result([t for t in TABLES if t.startswith(cur)])
    if arg.kind == "keycol":
        return _keycols(cur)
    return _attributes(cur)


def complete(words: list[str], index: int) -> Result:
    """Candidates for ``words[index]`` of the command line *words* (``words[0]`` is the
    command; *index* may equal ``len(words)``, an empty word after the last).

    Returns:
        A :class:`Result`; a command not in the registry completes command names when
        *index* is 0 and nothing otherwise.
    """
    words = list(words) + [""] * (index + 1 - len(words))
    cur = words[index]
    if index == 0:
        return Result(sorted(c for c in COMMANDS if c.startswith(cur)))
    name = os.path.basename(words[0])
    if name not in COMMANDS:
        return Result([])
    spec = spec_of(name)
    prev = words[index - 1]
    if prev in spec.options and spec.options[prev] is not None and "=" not in prev:
        return _value(spec.options[prev], cur)
    if cur.startswith("--") and "=" in cur:
        opt, _, val = cur.partition("=")
        r = _value(spec.options.get(opt), val)
        return Result([f"{opt}={w}" for w in r.words], r.directive, f"{opt}={r.prefix}")
    if cur.startswith("-"):
        return Result(sorted(o for o in spec.options if o.startswith(cur)))
    position, i, dashdash = 0, 1, False
    while i < index:
        w = words[i]
        if w == "--":
            dashdash = True
        elif w.startswith("-") and len(w) > 1 and not dashdash:
            if spec.options.get(w) is not None:
                i += 1          # the option's value
        else:
            position += 1
        i += 1
    if not spec.positionals:
        return Result([])
    if position >= len(spec.positionals):
        last = spec.positionals[-1]
        return _value(last, cur) if last.many else Result([])
    return _value(spec.positionals[position], cur)


# -- the shells ----------------------------------------------------------------------------

def split_line(line: str) -> list[str]:
    """The words of a partial command line as the shell will see them (quotes removed);
    an unterminated quote is closed, and a line ending in a space ends in an empty word."""
    for closing in ("", '"', "'"):
        try:
            words = shlex.split(line + closing)
            break
        except ValueError:
            continue
    else:
        words = line.split()
    if not line or line[-1].isspace():
        words.append("")
    return words


def _bash(wordbreaks: str, line: str) -> list[str]:
    words = split_line(line)
    r = complete(words, len(words) - 1)
    cur = words[-1]
    cut = max((cur.rfind(c) for c in wordbreaks if c not in "\"'"), default=-1) + 1
    out = [w[cut:] for w in r.words if w.startswith(cur[:cut])]
    return [r.directive, r.prefix[cut:] if r.prefix.startswith(cur[:cut]) else ""] + out


def _zsh(current: int, words: list[str]) -> list[str]:
    r = complete(words, current - 1)
    prefix = r.prefix if all(w.startswith(r.prefix) for w in r.words) else ""
    return [r.directive, prefix] + [w[len(prefix):] for w in r.words]


def script(shell: str) -> str:
    """The completion script for *shell* (``bash`` or ``zsh``) naming every registry command.

    Raises:
        KeyError: another shell.
    """
    return TEMPLATES[shell].read_text().replace("@COMMANDS@", " ".join(sorted(COMMANDS)))


def write_scripts(root: str | os.PathLike) -> list[Path]:
    """Write the installed layout under *root* (a prefix such as ``debian/tmp/usr``):
    ``share/bash-completion/completions/nodemgr`` with a symbolic link to it for every
    command (bash-completion loads a file by the command's name), and
    ``share/zsh/vendor-completions/_nodemgr`` (its ``#compdef`` line names the commands).

    Returns:
        The paths written (links included).
    """
    root = Path(root)
    written = []
    for shell, rel in INSTALL_PATHS.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(script(shell))
        written.append(path)
    bash_dir = root / Path(INSTALL_PATHS["bash"]).parent
    for name in sorted(COMMANDS):
        link = bash_dir / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to("nodemgr")
        written.append(link)
    return written


def main(argv: list[str] | None = None) -> int:
    """``nodemgr-complete``: see the module docstring for the forms; exit 0, or 2 with a
    one-line message for a bad form."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        if len(argv) == 2 and argv[0] == "--script":
            sys.stdout.write(script(argv[1]))
            return 0
        if len(argv) == 2 and argv[0] == "--write":
            for path in write_scripts(argv[1]):
                print(path)
            return 0
        if argv[:1] == ["bash"] and len(argv) == 3:
            lines = _bash(argv[1], argv[2])
        elif argv[:1] == ["zsh"] and len(argv) >= 3:
            lines = _zsh(int(argv[1]), argv[2:])
        else:
            raise ValueError
    except (ValueError, KeyError):
        sys.stderr.write("Usage: nodemgr-complete bash WORDBREAKS LINE | zsh CURRENT WORD... "
                         "| --script bash|zsh | --write DIR\n")
        return 2
    sys.stdout.write("".join(line + "\n" for line in lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
