"""What every command shares: its conventions (xCAT's), the error boundary, the store.

The conventions, defined here once for every command (:class:`Parser`):

* ``Usage:`` -- help and usage errors print xCAT's ``Usage: <prog> ...`` block: the
  command's synopsis (hand-written, or built from its options as ``[-b|--blame]``), then
  ``<prog> {-v|--version}`` and ``<prog> [-?|-h|--help]`` (the form of xCAT's
  ``tabutils.pm`` usages), at a fixed width of 92 columns so the text is the same on every
  terminal (help2man reads it).
* ``-h``, ``--help`` and ``-?`` print the help on stdout and exit 0; ``-v``/``--version``
  prints ``<prog> - nodemgr version <x.y.z>`` (xCAT's object commands print
  ``<prog> - <version>``) and exits 0; ``-V``/``--verbose`` turns :func:`verbose` on: what
  would be called or written, one line each on stderr.
* A bad option is ``Error: Unknown option: --x`` (Getopt::Long's wording, with the
  dashes kept) and extra words ``Error: unexpected argument: x``, each followed by the
  ``Usage:`` block on stderr, exit 1 -- never argparse's ``unrecognized arguments`` and
  exit 2.
* A command that takes a noderange and is given words that look like a bracket range
  the shell expanded (``rpower vm[1-2] stat`` -> ``rpower vm1 vm2 stat``,
  :func:`nodemgr.noderange.looks_globbed`) says so and asks for quotes, whatever else
  went wrong (:data:`GLOB_HINT`).

``main_wrapper`` turns a ``NodemgrError`` into ``Error: <message>`` and exit code 1, so no
command prints a traceback for bad input; it also keeps a closed pipe (``| head``) quiet.
A missing optional library (pycdlib, libvirt-python, psycopg...) becomes one line naming the
extra that brings it (``nodemgr.extras``), not a ``ModuleNotFoundError`` traceback.

Cold start: this module imports argparse and nothing heavier; the noderange heuristic,
logging and the store are imported only on the paths that need them.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Sequence

from nodemgr.errors import NodemgrError, UsageError

#: Columns of every help text: fixed, so ``--help`` is byte-identical on every terminal.
HELP_WIDTH = 92

#: What a noderange command says when its words look shell-expanded.
GLOB_HINT = ("the shell probably expanded an unquoted bracket range: quote it, "
             "e.g. 'node[1-2]'")

#: The logger library layers write ``-V`` lines to (no handler unless ``-V`` was given).
VERBOSE_LOGGER = "nodemgr.verbose"

_verbose = False
_last: Parser | None = None  # the parser of the running command (for main_wrapper's hint)


def verbose(text: str) -> None:
    """``-V``/``--verbose``: print *text* (one line: what is called or written) on stderr.

    Does nothing unless the command was given ``-V``. Library layers that must not import
    the CLI write to ``logging.getLogger(VERBOSE_LOGGER).info(...)`` instead: ``-V``
    attaches a stderr handler to that logger, so both reach the same stream.
    """
    if _verbose:
        sys.stderr.write(f"{text}\n")
        sys.stderr.flush()


def is_verbose() -> bool:
    """True when the running command was given ``-V``/``--verbose``."""
    return _verbose


def set_verbose(on: bool = True) -> None:
    """Turn :func:`verbose` output on (as ``-V`` does) or off."""
    global _verbose
    _verbose = on
    import logging  # only with -V: logging costs a cold start ~3 ms

    log = logging.getLogger(VERBOSE_LOGGER)
    log.handlers = [h for h in log.handlers if not getattr(h, "_nodemgr_verbose", False)]
    if on:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._nodemgr_verbose = True
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def version_line(prog: str) -> str:
    """``nodels - nodemgr version 0.1.0``: what ``-v``/``--version`` prints."""
    from nodemgr import __version__

    return f"{prog} - nodemgr version {__version__}"


def looks_globbed(words: Sequence[str]) -> bool:
    """True when two neighbouring plain words of *words* (words starting with ``-`` are
    skipped) look like one bracket range the shell expanded
    (:func:`nodemgr.noderange.looks_globbed`)."""
    from nodemgr.noderange import looks_globbed as pair

    plain = [w for w in words if not w.startswith("-")]
    return any(pair(plain[i:i + 2]) for i in range(len(plain) - 1))


def glob_message(words: Sequence[str]) -> str:
    """``the noderange arrived as several arguments (vm1 vm2 stat); the shell probably
    expanded an unquoted bracket range: quote it, e.g. 'node[1-2]'``."""
    plain = [w for w in words if not w.startswith("-")]
    shown = " ".join(plain[:3]) + (" ..." if len(plain) > 3 else "")
    return f"the noderange arrived as several arguments ({shown}); {GLOB_HINT}"


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written, options as ``-n, --name NAME``, fixed width
    (passing the width also spares argparse's terminal query and its ``shutil`` import)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30, width=HELP_WIDTH)

    def _format_action_invocation(self, action):  # argparse API
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        metavar = self._format_args(action, self._get_default_metavar_for_optional(action))
        return f"{', '.join(action.option_strings)} {metavar}"


class _Help(argparse.Action):
    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help=None):
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        parser.print_help()
        parser.exit(0)


class _Version(_Help):
    def __call__(self, parser, namespace, values, option_string=None):
        sys.stdout.write(version_line(parser.prog) + "\n")
        parser.exit(0)


class _Verbose(argparse.Action):
    def __init__(self, option_strings, dest, default=False, help=None):
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, True)
        set_verbose(True)


class Parser(argparse.ArgumentParser):
    """argparse with xCAT's conventions (see the module docstring): ``Usage:``, ``-h``/
    ``--help``/``-?``, ``-v``/``--version``, ``-V``/``--verbose``, usage errors as
    ``Error: ...`` plus the usage on stderr and exit 1 (not 2), the glob hint.

    Args:
        prog: the command name.
        description, epilog: help text, printed as written.
        usage: a hand-written synopsis (without ``Usage:``; may span lines) instead of
            the one built from the options; the ``-v``/``-h`` lines are added unless it
            names ``--version`` itself.
        noderange: whether the command takes a noderange (the glob hint); default: it has
            a positional argument named ``noderange``.
        help: add ``-h``/``--help``/``-?``; False for a command that handles them itself
            (lsdef's ``-h -t node``).
    """

    def __init__(self, prog: str, description: str | None = None, epilog: str | None = None,
                 usage: str | None = None, *, noderange: bool | None = None,
                 help: bool = True) -> None:
        super().__init__(prog=prog, usage=usage, description=description, epilog=epilog,
                         formatter_class=_Formatter, add_help=False)
        self.noderange = noderange
        self.words: list[str] = []
        self._checking = False
        if help:
            self.add_argument("-h", "--help", "-?", action=_Help,
                              help="print this help and exit")
        self.add_argument("-v", "--version", action=_Version,
                          help="print the version and exit")
        self.add_argument("-V", "--verbose", action=_Verbose,
                          help="say what is called or written, on stderr")

    @property
    def takes_noderange(self) -> bool:
        """Whether the glob hint applies (see *noderange*)."""
        if self.noderange is not None:
            return self.noderange
        return any(a.dest == "noderange" for a in self._actions if not a.option_strings)

    # -- usage and help ----------------------------------------------------------------------
    def format_usage(self) -> str:
        """xCAT's usage block: ``Usage: <synopsis>`` then the ``-v`` and ``-h`` lines."""
        pad = " " * len("Usage: ")
        if self.usage is not None:
            text = self.usage.strip("\n")
        else:
            text = self._synopsis(HELP_WIDTH - len(pad))
        lines = [f"Usage: {text}"]
        if "--version" not in text:
            lines += [f"{pad}{self.prog} {{-v|--version}}", f"{pad}{self.prog} [-?|-h|--help]"]
        return "\n".join(lines) + "\n"

    def format_help(self) -> str:
        """The usage block, the description, the options (each listed once), the epilog."""
        formatter = self._get_formatter()
        formatter.add_text(self.description)
        for group in self._action_groups:
            formatter.start_section(group.title)
            formatter.add_text(group.description)
            formatter.add_arguments(group._group_actions)
            formatter.end_section()
        formatter.add_text(self.epilog)
        return self.format_usage() + "\n" + formatter.format_help()

    def _synopsis(self, width: int) -> str:
        """``prog <positionals> [-b|--blame] [-n|--name NAME] ...`` wrapped at *width*;
        a noderange command names its positionals first, as xCAT's usages do."""
        fmt = self._get_formatter()
        conventional = (_Help, _Version)
        required_groups = {id(g): g for g in self._mutually_exclusive_groups if g.required}
        in_group = {id(a): g for g in required_groups.values() for a in g._group_actions}
        options, positionals, done = [], [], set()
        for action in self._actions:
            if isinstance(action, conventional) or action.help == argparse.SUPPRESS:
                continue
            if not action.option_strings:
                positionals.append(fmt._format_args(action, action.dest))
                continue
            group = in_group.get(id(action))
            if group is not None:
                if id(group) not in done:
                    done.add(id(group))
                    options.append("{" + " | ".join(
                        _option(fmt, a) for a in group._group_actions
                        if a.help != argparse.SUPPRESS) + "}")
                continue
            text = _option(fmt, action)
            options.append(text if action.required else f"[{text}]")
        words = positionals + options if self.takes_noderange else options + positionals
        lines, line = [], self.prog
        indent = " " * (len(self.prog) + 1)
        for w in words:
            if len(line) + 1 + len(w) > width and line.strip():
                lines.append(line)
                line = indent + w
            else:
                line = f"{line} {w}"
        lines.append(line)
        return ("\n" + " " * len("Usage: ")).join(lines)

    # -- parsing and errors ------------------------------------------------------------------
    def parse_args(self, args=None, namespace=None):  # argparse API
        """As argparse's, with xCAT's wording for words it does not know."""
        return self._parse(self.parse_known_args, args, namespace)

    def parse_intermixed_args(self, args=None, namespace=None):  # argparse API
        """As argparse's, with xCAT's wording for words it does not know."""
        return self._parse(self.parse_known_intermixed_args, args, namespace)

    def _parse(self, parse, args, namespace):
        global _last
        self.words = list(sys.argv[1:] if args is None else args)
        _last = self
        ns, extra = parse(self.words, namespace)
        if extra:
            s = "s" if len(extra) > 1 else ""
            self.error(f"unexpected argument{s}: {' '.join(extra)}")
        return ns

    def _unknown_options(self, words: list[str]) -> list[str]:
        """The words before ``--`` that look like options but name none of this parser's
        (argparse's own test: abbreviations and ``--opt=value`` count as known)."""
        unknown = []
        for w in words:
            if w == "--":
                break
            if w.startswith("-") and w != "-" and not self._negative_number_matcher.match(w):
                found = self._parse_optional(w)
                if found is not None and found[0] is None:
                    unknown.append(w)
        return unknown

    def error(self, message: str):  # noqa: D401 - argparse API
        """Raise ``UsageError``: *message* (or, when the words look shell-expanded, the
        glob message instead), then the usage block; ``main_wrapper`` prints it after
        ``Error:`` and exits 1."""
        if not self._checking:
            self._checking = True  # _parse_optional may call error() itself
            try:
                unknown = self._unknown_options(self.words)
            finally:
                self._checking = False
            if unknown:  # named first, as Getopt::Long does, before missing arguments
                s = "s" if len(unknown) > 1 else ""
                message = f"Unknown option{s}: {' '.join(unknown)}"
        if self.takes_noderange and looks_globbed(self.words):
            message = glob_message(self.words)
        raise UsageError(f"{message}\n{self.format_usage().rstrip()}")


def _option(fmt: argparse.HelpFormatter, action: argparse.Action) -> str:
    """``-b|--blame`` or ``-n|--name NAME`` for the synopsis."""
    names = "|".join(action.option_strings)
    if action.nargs == 0:
        return names
    return f"{names} {fmt._format_args(action, fmt._get_default_metavar_for_optional(action))}"


def with_glob_hint(message: str, p: Parser | None = None) -> str:
    """*message*, plus the quoting hint when the running command (*p*, default the last
    parser that parsed) takes a noderange and its words look shell-expanded."""
    p = p or _last
    if p is None or not p.takes_noderange or GLOB_HINT in message:
        return message
    if not looks_globbed(p.words):
        return message
    return f"{message} ({GLOB_HINT})"


def parser(prog: str, description: str, epilog: str | None = None, *,
           usage: str | None = None, noderange: bool | None = None) -> Parser:
    """A :class:`Parser` for command *prog* (every command starts here)."""
    return Parser(prog, description, epilog, usage, noderange=noderange)


def main_wrapper(func: Callable[[list[str]], int]) -> Callable[[list[str] | None], int]:
    """Decorate a command ``func(argv) -> exit code`` into a console-script entry point."""

    @functools.wraps(func)
    def wrapper(argv: list[str] | None = None) -> int:
        global _last
        args = sys.argv[1:] if argv is None else argv
        _last = None
        if _verbose:  # a previous in-process command's -V
            set_verbose(False)
        try:
            return func(args)
        except NodemgrError as exc:
            sys.stderr.write(f"Error: {_missing(func, exc) or with_glob_hint(str(exc))}\n")
            return 1
        except ModuleNotFoundError as exc:
            message = _missing(func, exc)
            if message is None:  # a nodemgr module: a broken install or a bug
                raise
            sys.stderr.write(f"Error: {message}\n")
            return 1
        except KeyboardInterrupt:
            sys.stderr.write("Error: interrupted\n")
            return 130
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 1

    return wrapper


def _missing(func: Callable, exc: BaseException) -> str | None:
    """``copycds needs pycdlib: pip install 'nodemgr[netboot]'`` when *exc* is, or was
    raised while handling, a missing optional library (nodemgr.extras); else None."""
    if not isinstance(exc, ModuleNotFoundError) and exc.__context__ is None:
        return None
    from nodemgr import extras
    from nodemgr.cli.registry import COMMANDS

    target = f"{func.__module__}:{func.__name__}"
    command = next((name for name, value in COMMANDS.items() if value == target),
                   os.path.basename(sys.argv[0]) or func.__name__)
    return extras.missing_message(command, exc)


def open_store():
    """The configured store (``$NODEMGR_DB`` / ``etc/nodemgr.conf``)."""
    from nodemgr.tables.store import open_default

    return open_default()


def prepare(store, command: str, noderange_text: str, args: list[str], *,
            audit: bool = True):
    """Expand *noderange_text*, check the policy table and write the audit row.

    Every command that acts on nodes starts here, so the noderange, policy and audit rules
    are the same for all of them. A denial is audited and raised; an allowed request is
    audited when *audit* (read-only requests pass False).

    Returns:
        ``(resolver, nodes)``: a fresh Resolver and the expanded node list.
    Raises:
        NoderangeError, PolicyDenied.
    """
    from nodemgr import noderange, policy
    from nodemgr.errors import PolicyDenied
    from nodemgr.tables.resolve import Resolver

    resolver = Resolver(store)
    nodes = noderange.expand(noderange_text, resolver)
    user = policy.current_user()
    try:
        policy.authorize(store, resolver, command, nodes, args, user=user)
    except PolicyDenied:
        policy.audit(store, user=user, host="localhost", command=command,
                     noderange=noderange_text, args=args, status="Denied")
        raise
    if audit:
        policy.audit(store, user=user, host="localhost", command=command,
                     noderange=noderange_text, args=args, status="Allowed")
    return resolver, nodes
