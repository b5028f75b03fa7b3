"""Who may run which command on which nodes, from the ``policy`` table (xCAT semantics).

Rows are read in numeric ``priority`` order. A row applies when its ``name`` (the user; ``*``
any user; empty anyone), ``host`` (the client host; empty/``*`` any), ``commands`` (comma list;
empty/``*`` any) and ``parameters`` (regex over the arguments joined by spaces; empty/``*``
any) all match. Its ``noderange`` (empty/``*`` = any) is compared with the nodes still
undecided: no overlap → skip; an ``allow`` row covering only part of them allows that part
and evaluation continues for the rest; a full hit (or a partial ``deny``) decides. ``allow``,
``accept`` and ``trusted`` allow; any other rule denies. No deciding row → deny.

Differences from xCAT, on purpose: a ``deny`` row only decides for the nodes it names (xCAT's
partial deny blocked the whole request, issue #2072); a request without nodes skips rows
that have a noderange (as xCAT does) — documented in the README.
This module reads tables; it never prints.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from nodemgr.errors import PolicyDenied

ALLOW = {"allow", "accept", "trusted"}


def _any(value: str | None) -> bool:
    return value in (None, "", "*")


def check(rows: Sequence[dict], *, user: str, host: str, command: str,
          nodes: Iterable[str], args: Sequence[str],
          expand: Callable[[str], list[str]]) -> None:
    """Raise :class:`PolicyDenied` unless the policy rows allow the request.

    Args:
        rows: enabled ``policy`` rows.
        user: the requesting user name.
        host: the requesting host's short name (``localhost`` for local commands).
        command: the command name (``rpower``).
        nodes: the expanded noderange of the request (may be empty).
        args: the other arguments.
        expand: function expanding a row's noderange to node names.
    Raises:
        PolicyDenied: ``Permission denied for request`` (no matching allow).
    """
    left = set(nodes)
    had_nodes = bool(left)
    joined = " ".join(args)

    def prio(row):
        try:
            return float(row["priority"])
        except (TypeError, ValueError):
            return float("inf")

    for row in sorted(rows, key=prio):
        name = row.get("name")
        if not _any(name) and name != user:
            continue
        if name == "*" and not user:
            continue
        if not _any(row.get("host")) and row["host"] != host:
            continue
        cmds = row.get("commands")
        if not _any(cmds) and command not in [c.strip() for c in cmds.split(",")]:
            continue
        params = row.get("parameters")
        if not _any(params):
            try:
                if not re.search(params, joined):
                    continue
            except re.error:
                continue
        allow = (row.get("rule") or "").lower() in ALLOW
        nr = row.get("noderange")
        if not _any(nr):
            if not had_nodes:
                continue
            hit = left & set(expand(nr))
            if not hit:
                continue
            if hit != left:
                if allow:
                    left -= hit
                    continue
                raise PolicyDenied()
        if allow:
            return
        raise PolicyDenied()
    raise PolicyDenied()


def authorize(store, resolver, command: str, nodes: Iterable[str], args: Sequence[str],
              *, user: str | None = None, host: str = "localhost") -> None:
    """Check the request against ``store``'s policy table for the local user.

    Args:
        store: the table store.
        resolver: a Resolver (used to expand row noderanges).
        command, nodes, args: the request.
        user: defaults to the effective Unix user.
    Raises:
        PolicyDenied
    """
    if user is None:
        user = current_user()
    from nodemgr import noderange

    check(store.select("policy"), user=user, host=host, command=command, nodes=nodes,
          args=args, expand=lambda nr: noderange.expand(nr, resolver, verify=False))


def current_user() -> str:
    """Name of the effective Unix user."""
    import os
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def audit(store, *, user: str, host: str, command: str, noderange: str,
          args: Sequence[str], status: str) -> None:
    """Append one ``auditlog`` row for a request, as xCAT's daemon does.

    Skipped when ``site.auditskipcmds`` is ``ALL`` or lists *command*. Arguments that look
    like passwords (``password=...``, ``-p <x>`` after ``--password``) are redacted.
    """
    skip = {c.strip() for c in (store.site("auditskipcmds") or "").split(",")}
    if "ALL" in skip or command in skip:
        return
    shown, hide_next = [], False
    for arg in args:
        if hide_next:
            shown.append("******")
            hide_next = False
        elif arg in ("--password", "--passwd"):
            shown.append(arg)
            hide_next = True
        elif re.match(r"(?i)^[\w.]*passw(or)?d=", arg):
            shown.append(arg.split("=", 1)[0] + "=******")
        else:
            shown.append(arg)
    from nodemgr.formats import timestamp

    with store.transaction():
        store.insert("auditlog", {
            "recid": str(store.next_int("auditlog", "recid")),
            "audittime": timestamp(),
            "userid": user, "clientname": host, "clienttype": "cli", "command": command,
            "noderange": noderange, "args": " ".join(shown), "status": status})
