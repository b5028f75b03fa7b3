"""Node table commands: nodels, nodech, nodeadd, noderm (xCAT ``tabutils.pm``).

Thin on purpose: parse arguments, expand the noderange with :mod:`nodemgr.noderange` (never
parse one here), read rendered values through the
:class:`~nodemgr.tables.resolve.Resolver`, and write through the store in exactly one
transaction per command, so an error leaves the tables unchanged. Output follows xCAT:
``node: value`` or ``node: table.col: value``, in noderange order.
"""

from __future__ import annotations

import re
import sys
from collections import namedtuple
from collections.abc import Sequence

from nodemgr import noderange
from nodemgr.cli.common import glob_message, main_wrapper, open_store, parser
from nodemgr.cli.output import Reporter
from nodemgr.errors import TableError, UsageError
from nodemgr.tables import lists
from nodemgr.tables.schema import TABLES, TableSchema

#: What an empty assignment stores: a regex value that renders to nothing, so the node's
#: own row overrides a group's value with "unset" (xCAT's nodech does the same).
UNSET = "|^.*$||"

_NODE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")

_EXIT = """\
exit status:
  0  success
  1  an error: bad arguments, unknown table or column, invalid noderange (nothing is
     changed); or a value that cannot be rendered for some nodes (a malformed regex
     value): each such node is one "node: Error: ..." line and is left out (listed or
     changed no further), the other nodes are done as usual"""

_NOTE_QUOTE = """\
Quote noderanges with brackets ('node[1-10]'): unquoted, the shell may expand them into
several arguments, which these commands refuse."""


def _resolver(store, *, by_key: bool = False):
    """A resolver; *by_key*: nodelist rows read for the nodes asked about only, while they
    are few (see ``Resolver(nodes_by_key=)``), for commands about a few named nodes."""
    from nodemgr.tables.resolve import Resolver

    return Resolver(store, nodes_by_key=by_key)


def _refuse_globbed(words: Sequence[str]) -> None:
    if noderange.looks_globbed(words):
        raise UsageError(glob_message(words))


def _node_table(name: str) -> TableSchema:
    t = TABLES.get(name)
    if t is None:
        raise TableError(f'Unknown table "{name}"')
    if t.nodecol is None:
        raise TableError(f'Table "{name}" is not keyed by node')
    return t


def _stored(table: str, value: str) -> str | None:
    """The value to write for *value*; empty means "unset" (NULL in nodelist, which has no
    group rows to override, else :data:`UNSET`)."""
    if value != "":
        return value
    return None if table == "nodelist" else UNSET


# -- nodels --------------------------------------------------------------------------------
_NODELS_USAGE = """\
nodels [noderange] [-b|--blame] [-H|--with-fieldname] [-S] [--json]
              [table.column | shortname | table ...] [table.column<op>value ...]"""

_NODELS_DESC = """\
List the nodes of a noderange (all nodes without one) and, when asked, their attributes.
Values are rendered as a node sees them: its own row, then its groups in nodelist.groups
order, then regex values (/re/repl/, |re|repl|) applied to the node name.

Attributes: table.column, a whole table (every column), or the shortnames groups and tags
(nodelist.groups) and mgt (nodehm.mgt). One attribute prints "node: value"; two or more
terms, a table, or -H print "node: table.column: value".

Criteria keep only the nodes whose rendered value matches:
  table.column==value   equal            table.column!=value   not equal
  table.column=~regex   regex matches    table.column!~regex   regex does not match
(an unset value compares as the empty string; /slashes/ around a regex are optional)."""

_NODELS_EPILOG = f"""\
examples:
  nodels                                   every node
  nodels 'vm[01-10]' nodehm.mgt            vm01: kvm ...
  nodels compute -b vm.memory              vm01: 4096 (inherited from group compute)
  nodels all vm.host==hv1 vm.memory        vm01: vm.memory: 4096
  nodels all nodetype.os=~^rhel            only the names of matching nodes
  nodels vm01 vm                           every column of the vm table for vm01

{_NOTE_QUOTE}

{_EXIT}"""


def _hidden(resolver, nodes: list[str], errors: dict[str, dict[str, str]]) -> set[str]:
    """The hidden nodes of *nodes*; a node whose nodelist.hidden cannot be rendered is
    counted as hidden (not listed) and its error added to *errors*."""
    values = resolver.attrs(nodes, ["nodelist.hidden"], errors=errors)
    return {n for n in nodes
            if n in errors or (values[n]["nodelist.hidden"] or "").strip() == "1"}


@main_wrapper
def nodels(argv: list[str] | None = None) -> int:
    """``nodels``: list nodes and their rendered attributes."""
    p = parser("nodels", _NODELS_DESC, _NODELS_EPILOG, usage=_NODELS_USAGE, noderange=True)
    p.add_argument("-b", "--blame", action="store_true",
                   help="for values inherited from a group, say which group")
    p.add_argument("-H", "--with-fieldname", dest="fieldname", action="store_true",
                   help="always print table.column before each value")
    p.add_argument("-S", dest="show_hidden", action="store_true",
                   help="also list hidden nodes (nodelist.hidden=1)")
    p.add_argument("--json", action="store_true",
                   help='one JSON object per node: {"node", "ok", "message", "attributes"}')
    p.add_argument("words", nargs="*", metavar="noderange|attribute|criterion",
                   help="a noderange, then attributes and criteria")
    a = p.parse_intermixed_args(argv)
    words = a.words
    _refuse_globbed(words)

    display: list[tuple[str, str]] = []  # (label, table.col)
    selectors: list[noderange.Selector] = []
    long_form = a.fieldname
    terms = 0
    for w in words[1:]:
        if noderange.is_selector(w):
            selectors.append(noderange.parse_selector(w))
            terms += 1
        elif w in noderange.SHORTNAMES or "." in w:
            display.append((w, noderange.attribute(w)))
            terms += 1
        elif w in TABLES:
            t = _node_table(w)
            display.extend((f"{w}.{c}", f"{w}.{c}") for c in t.columns)
            long_form = True
        else:
            raise UsageError(f'"{w}" is not a table, table.column or shortname '
                             f"({', '.join(sorted(noderange.SHORTNAMES))})")
    display = list(dict(display).items())  # drop repeats, keep first order
    long_form = long_form or terms > 1

    store = open_store()
    resolver = _resolver(store, by_key=True)
    # a value that cannot be rendered for a node (bad regex, arithmetic, timeout) is that
    # node's error line; the other nodes are listed as usual (exit code 1)
    errors: dict[str, dict[str, str]] = {}
    if words:
        nodes = noderange.expand(words[0], resolver, errors=errors)
    else:
        nodes = sorted(resolver.nodes())
    if not a.show_hidden and nodes:
        hidden = _hidden(resolver, nodes, errors)
        nodes = [n for n in nodes if n not in hidden]
    nodes = noderange.select(nodes, selectors, resolver, errors=errors)

    out = Reporter(json_mode=a.json)
    keycols = {f"{t.name}.{t.nodecol}" for t in TABLES.values() if t.nodecol}
    wanted = list(dict.fromkeys(attr for _, attr in display if attr not in keycols))
    values = (resolver.attrs(nodes, wanted, blame=a.blame, errors=errors)
              if wanted and nodes else {})
    listed: set[str] = set()
    if errors:  # the nodes left out because of an error are reported in their place
        listed = set(nodes)
        nodes = sorted(listed | errors.keys())
    plain = display and not a.blame and not a.json
    spec = [(label, attr, attr in keycols) for label, attr in display]
    for node in nodes:
        bad = errors.get(node) if errors else None
        if bad is not None and (not display or node not in listed):
            out.node(node, "; ".join(bad.values()), False)
            continue
        if plain and bad is None:  # the usual case, one write per node
            vals = values[node]
            if long_form:
                out.line("\n".join([f"{node}: {label}: {node if key else vals[attr] or ''}"
                                    for label, attr, key in spec]))
            else:
                label, attr, key = spec[0]
                out.line(f"{node}: {node if key else vals[attr] or ''}")
            continue
        if not display:
            if a.json:
                out.node(node, "", True)
            else:
                out.line(node)
            continue
        shown: dict[str, str] = {}
        inherited: dict[str, str] = {}
        failed: dict[str, str] = {}  # label -> error, for this node's bad values
        for label, attr in display:
            if attr in keycols:
                value, source = node, None
            elif bad is not None and attr in bad:
                failed[label] = bad[attr]
                continue
            elif a.blame:
                value, source = values[node][attr]
            else:
                value, source = values[node][attr], None
            shown[label] = value or ""
            if source:
                inherited[label] = source
        if a.json:
            extra = {"attributes": shown}
            if a.blame:
                extra["inherited"] = inherited
            out.node(node, "; ".join(failed.values()), not failed, **extra)
            continue
        for label, _ in display:
            if label in failed:
                out.node(node, failed[label], False)
                continue
            value = shown[label]
            if label in inherited:
                value = f"{value} (inherited from group {inherited[label]})"
            out.line(f"{node}: {label}: {value}" if long_form else f"{node}: {value}")
    return out.exit_code


# -- nodech / nodeadd ----------------------------------------------------------------------
class Change(namedtuple("Change", "attr op value")):
    """One assignment: ``attr`` (table.col), ``op`` (``=``, ``,=``, ``^=``), ``value``
    (a named tuple: no ``dataclasses``, whose ``inspect`` import costs a cold start)."""

    __slots__ = ()


def _parse_changes(words: Sequence[str]) -> tuple[list[Change], list[noderange.Selector]]:
    changes: list[Change] = []
    selectors: list[noderange.Selector] = []
    for w in words:
        if noderange.is_selector(w):
            selectors.append(noderange.parse_selector(w))
            continue
        lhs, eq, value = w.partition("=")
        if not eq or not lhs:
            raise UsageError(f'malformed argument "{w}": use table.column=value')
        op = "="
        if lhs.endswith(","):
            op, lhs = ",=", lhs[:-1]
        elif lhs.endswith("^"):
            op, lhs = "^=", lhs[:-1]
        if value.startswith("@"):  # "=@" is xCAT's unambiguous assignment: col=@=x sets "=x"
            value = value[1:]
        attr = noderange.attribute(lhs)
        tab, col = attr.split(".", 1)
        if col == TABLES[tab].nodecol:
            raise UsageError(f"{attr} is the node name itself; use nodeadd and noderm to "
                             "rename a node")
        if op != "=" and value == "":
            raise UsageError(f'"{w}": {op} needs a value')
        changes.append(Change(attr, op, value))
    return changes, selectors


def _warn_dynamic(resolver, changes: Sequence[Change]) -> None:
    dynamic = {name for name, row in resolver.nodegroups().items()
               if (row.get("grouptype") or "").strip().lower() == "dynamic"}
    for c in changes:
        if c.attr == "nodelist.groups" and c.op != "^=":
            for g in c.value.split(","):
                if g in dynamic:
                    sys.stderr.write(f"Warning: nodegroup {g} is a dynamic node group; nodes "
                                     "should not be added to it statically\n")


def _apply(store, resolver, nodes: Sequence[str], changes: Sequence[Change], *,
           new: set[str] = frozenset(), errors: dict[str, dict[str, str]] | None = None
           ) -> None:
    """Compute every node's new values, then write them all in one transaction.

    ``,=`` and ``^=`` start from the node's rendered value (group values included, as in
    xCAT), and a node is only written when the value really changes. With *errors*, a node
    whose current value cannot be rendered is not changed and its error is added there.
    """
    listy = list(dict.fromkeys(c.attr for c in changes if c.op != "="))
    known = [n for n in nodes if n not in new]
    current = resolver.attrs(known, listy, errors=errors) if listy and known else {}
    updates: dict[tuple[str, str], dict[str, str | None]] = {}
    for node in nodes:
        if errors and node in errors:
            continue
        pending: dict[str, str] = {}
        for c in changes:
            if c.op == "=":
                pending[c.attr] = c.value
                continue
            cur = pending.get(c.attr)
            if cur is None:
                cur = current.get(node, {}).get(c.attr) or ""
            value = (lists.append if c.op == ",=" else lists.remove)(cur, c.value)
            if value != ",".join(lists.items(cur)):
                pending[c.attr] = value
        for attr, value in pending.items():
            tab, col = attr.split(".", 1)
            updates.setdefault((tab, node), {})[col] = _stored(tab, value)
    by_table: dict[str, list[dict[str, str | None]]] = {}
    for (tab, node), values in updates.items():
        by_table.setdefault(tab, []).append({TABLES[tab].nodecol: node, **values})
    with store.transaction():
        for tab, rows in by_table.items():  # each table's rows in node order, batched
            store.upsert_many(tab, rows)
    resolver.invalidate()


def _report(errors: dict[str, dict[str, str]]) -> int:
    """Print each node's value errors (``node: Error: ...``, node order); the exit code."""
    out = Reporter()
    for node in sorted(errors):
        out.node(node, "; ".join(errors[node].values()), False)
    return out.exit_code


def _delete_rows(store, tables: Sequence[TableSchema], nodes: Sequence[str]) -> None:
    """Delete the nodes' rows (disabled ones too) from *tables* in one transaction, by key
    in batches (``DELETE ... WHERE node IN (...)``), never reading the tables."""
    if not nodes:
        return
    with store.transaction():
        for t in tables:
            store.delete_any(t.name, t.nodecol, nodes)


_NODECH_USAGE = """\
nodech <noderange> table.column=value [table.column,=value] [table.column^=value]
              [table.column<op>value ...]
       nodech -d|--delete <noderange> table [table ...]"""

_NODECH_DESC = """\
Change attributes of nodes in node-keyed tables (shortnames groups, tags, mgt work too).
  table.column=value    set the value
  table.column=         set "unset": the node no longer inherits a group's value
                        (stored as the regex |^.*$||, which renders to nothing)
  table.column,=v1,v2   append each value not already in the comma list (after the others)
  table.column^=v1,v2   remove each value from the comma list
  table.column=@value   set exactly "value" (lets a value start with "=")
Lists start from the node's current rendered value, group values included.
Criteria (==, !=, =~, !~, as in nodels) limit the change to matching nodes.
-d removes the nodes' rows from the given tables. All changes happen in one transaction."""

_NODECH_EPILOG = f"""\
examples:
  nodech 'vm[01-10]' vm.memory=4096 vm.cpus=2
  nodech vm01 groups,=gpu                  add vm01 to group gpu
  nodech vm01 groups^=gpu                  take it out again
  nodech compute vm.host==hv1 vm.host=hv2  move only compute nodes that are on hv1
  nodech vm05 vm.nics=                     vm05 has no nics even if its group has
  nodech -d vm01 vm kvm_nodedata

{_NOTE_QUOTE}

{_EXIT}"""


@main_wrapper
def nodech(argv: list[str] | None = None) -> int:
    """``nodech``: change or delete node attributes."""
    p = parser("nodech", _NODECH_DESC, _NODECH_EPILOG, usage=_NODECH_USAGE, noderange=True)
    p.add_argument("-d", "--delete", action="store_true",
                   help="delete the nodes' rows from the named tables")
    p.add_argument("words", nargs="*", metavar="noderange|change",
                   help="the noderange, then changes and criteria (with -d: table names)")
    a = p.parse_intermixed_args(argv)
    words = a.words
    _refuse_globbed(words)
    if len(words) < 2:
        raise UsageError("nodech needs a noderange and at least one "
                         + ("table" if a.delete else "table.column=value")
                         + f"\n{p.format_usage().rstrip()}")
    text, rest = words[0], words[1:]
    if a.delete:
        for w in rest:
            if "=" in w or "." in w:
                raise UsageError(f'"{w}": with -d give table names only')
        tables = [_node_table(w) for w in dict.fromkeys(rest)]
        store = open_store()
        errors: dict[str, dict[str, str]] = {}
        nodes = noderange.expand(text, _resolver(store), errors=errors)
        _delete_rows(store, tables, nodes)
        return _report(errors)
    changes, selectors = _parse_changes(rest)
    if not changes:
        raise UsageError("nodech needs at least one table.column=value")
    store = open_store()
    resolver = _resolver(store)
    errors = {}
    nodes = noderange.expand(text, resolver, errors=errors)
    nodes = noderange.select(nodes, selectors, resolver, errors=errors)
    _warn_dynamic(resolver, changes)
    _apply(store, resolver, nodes, changes, errors=errors)
    return _report(errors)


_NODEADD_USAGE = "nodeadd <noderange> groups=group1[,group2 ...] [table.column=value ...]"

_NODEADD_DESC = """\
Define nodes: create their nodelist rows with the given groups and set any other
attributes (same operators as nodech). The noderange names new nodes, so it is expanded
without checking that they exist (node[01-20], node1-node20, 10-20 with $XCAT_NODE_PREFIX).
A node that already exists keeps its rows and gets the attributes set, like xCAT.
Node names may use letters, digits, "_", "." and "-"; capital letters draw a warning
because DNS may not resolve them. Everything happens in one transaction."""

_NODEADD_EPILOG = f"""\
examples:
  nodeadd 'vm[01-20]' groups=vms,compute nodehm.mgt=kvm vm.host=hv1
  nodeadd hv1,hv2 groups=hypervisors hypervisor.type=kvm

{_NOTE_QUOTE}

{_EXIT}"""


@main_wrapper
def nodeadd(argv: list[str] | None = None) -> int:
    """``nodeadd``: define nodes."""
    p = parser("nodeadd", _NODEADD_DESC, _NODEADD_EPILOG, usage=_NODEADD_USAGE,
               noderange=True)
    p.add_argument("words", nargs="*", metavar="noderange|attribute",
                   help="the new nodes, then groups=... and other table.column=value")
    a = p.parse_intermixed_args(argv)
    words = a.words
    _refuse_globbed(words)
    if len(words) < 2:
        raise UsageError("nodeadd needs a noderange and groups=<groups>\n"
                         + p.format_usage().rstrip())
    changes, selectors = _parse_changes(words[1:])
    if selectors:
        raise UsageError(f'nodeadd takes no criteria ("{selectors[0].text}")')
    if not any(c.attr == "nodelist.groups" and c.op == "=" for c in changes):
        raise UsageError("nodeadd needs groups=<group1,group2,...>")
    store = open_store()
    resolver = _resolver(store, by_key=True)
    nodes = noderange.expand(words[0], resolver, verify=False, exclude_site=False)
    bad = [n for n in nodes if not _NODE_NAME.fullmatch(n)]
    if bad:
        raise UsageError(f'invalid node name "{bad[0]}"' + (
            f" (and {len(bad) - 1} more)" if len(bad) > 1 else "")
            + ': use letters, digits, "_", "." and "-"')
    capitals = [n for n in nodes if n != n.lower()]
    if capitals:
        sys.stderr.write(f"Warning: the node name '{','.join(capitals[:10])}' contains capital "
                         "letters which may not be resolved correctly by the dns server.\n")
    _warn_dynamic(resolver, changes)
    existing = resolver.existing(nodes)  # by key (answered by expand's lookups)
    # groups= is required, so every node gets its nodelist row (NULL groups for "groups=")
    _apply(store, resolver, nodes, changes, new={n for n in nodes if n not in existing})
    return 0


# -- noderm --------------------------------------------------------------------------------
_NODERM_DESC = """\
Remove nodes: delete their rows from every node-keyed table (nodelist, nodehm, vm, mac,
...), in one transaction. Group rows and other nodes are untouched."""

_NODERM_EPILOG = f"""\
examples:
  noderm vm05
  noderm 'vm[01-20],-vm07'

{_NOTE_QUOTE}

{_EXIT}"""


@main_wrapper
def noderm(argv: list[str] | None = None) -> int:
    """``noderm``: remove nodes from every node table."""
    p = parser("noderm", _NODERM_DESC, _NODERM_EPILOG, usage="noderm <noderange>",
               noderange=True)
    p.add_argument("words", nargs="*", metavar="noderange", help="the nodes to remove")
    a = p.parse_intermixed_args(argv)
    words = a.words
    _refuse_globbed(words)
    if len(words) != 1:
        raise UsageError("noderm takes exactly one noderange\n" + p.format_usage().rstrip())
    store = open_store()
    errors: dict[str, dict[str, str]] = {}
    nodes = noderange.expand(words[0], _resolver(store), errors=errors)
    _delete_rows(store, [t for t in TABLES.values() if t.nodecol], nodes)
    return _report(errors)
