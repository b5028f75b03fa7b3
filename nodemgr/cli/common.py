"""What every command shares: the error boundary, argument-parser defaults, the store.

``main_wrapper`` turns a ``NodemgrError`` into ``Error: <message>`` and exit code 1, so no
command prints a traceback for bad input; it also keeps a closed pipe (``| head``) quiet.
A missing optional library (pycdlib, libvirt-python, psycopg...) becomes one line naming the
extra that brings it (``nodemgr.extras``), not a ``ModuleNotFoundError`` traceback.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable

from nodemgr.errors import NodemgrError, UsageError


class Parser(argparse.ArgumentParser):
    """argparse with xCAT-style usage errors (``Error: ...`` and exit 1, not 2)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        raise UsageError(f"{message}\n{self.format_usage().rstrip()}")


def parser(prog: str, description: str, epilog: str | None = None) -> Parser:
    """A parser with ``--help`` rendering *description* and *epilog* as written."""
    return Parser(prog=prog, description=description, epilog=epilog,
                  formatter_class=argparse.RawDescriptionHelpFormatter)


def main_wrapper(func: Callable[[list[str]], int]) -> Callable[[list[str] | None], int]:
    """Decorate a command ``func(argv) -> exit code`` into a console-script entry point."""

    @functools.wraps(func)
    def wrapper(argv: list[str] | None = None) -> int:
        args = sys.argv[1:] if argv is None else argv
        try:
            return func(args)
        except NodemgrError as exc:
            sys.stderr.write(f"Error: {_missing(func, exc) or exc}\n")
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
