"""xCAT's object commands: lsdef, mkdef, chdef, rmdef (``DBobjectdefs.pm``).

Thin: parse arguments, expand noderanges with :mod:`nodemgr.noderange`, check the policy
table, and let :mod:`nodemgr.objdef` read and write (one transaction per command, so an
error changes nothing). Output and messages are xCAT's: ``Object name: n1`` then
``    attr=value`` sorted, ``n1  (node)`` for short listings, ``N object definitions have
been created or modified.`` after a change.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from nodemgr import noderange, objdef, policy
from nodemgr.cli.common import Parser, main_wrapper, open_store
from nodemgr.errors import PolicyDenied, UsageError
from nodemgr.objdef import ALL_TYPES, SITE_NAME, TYPES, Change, ObjectError, ObjType
from nodemgr.tables.schema import TABLES


# -- shared --------------------------------------------------------------------------------
def _parser(prog: str, usage: str, description: str, epilog: str) -> Parser:
    """The common parser (``Usage:``, ``-v``, ``-V``, the glob hint) with the object
    commands' own ``-h``: with ``-t`` it lists the types' attributes, as xCAT's does."""
    p = Parser(prog, description, epilog, usage, noderange=True, help=False)
    p.add_argument("-h", "--help", "-?", dest="help", action="store_true",
                   help="print this help and exit; with -t: the valid attributes of those "
                   "types")
    p.add_argument("-t", dest="types", metavar="object-types",
                   help="comma-separated object types (default node)")
    p.add_argument("-o", dest="objects", metavar="object-names",
                   help="comma-separated object names (for nodes any noderange)")
    return p


_TYPES_TEXT = """\
object types:
  node       a node (nodelist row plus its rows in the node tables); default type
  group      a node group: its nodegroup row and its rows in the node tables (what its
             members inherit); members= lists (sets) the nodes whose groups name it
  osimage    an OS image (osimage and linuximage rows)
  network    a network (networks row, named by netname)
  site       the one site definition, clustersite: every site key is an attribute
  policy     a policy rule, named by its priority
  osdistro   an OS distribution copied by copycds
  auditlog   an audit record, named by its recid (-a leaves them out)
Use -h with -t to list a type's attributes and what each one means."""

_EXIT = """\
exit status:
  0  success
  1  an error (bad option, unknown type, attribute or object, malformed stanza, policy
     denial); a command that changes objects changes nothing then"""


def _types(text: str | None) -> list[ObjType]:
    names = [n.strip() for n in (text or "node").split(",") if n.strip()]
    if not names:
        raise ObjectError("No object type was given with -t.")
    return [objdef.object_type(n) for n in dict.fromkeys(names)]


def _split_words(words: Sequence[str], *, assignments: bool) -> tuple[str | None, list[str]]:
    """(the noderange or object names, the attr=val words)."""
    names = [w for w in words if "=" not in w]
    pairs = [w for w in words if "=" in w]
    if len(names) > 1:
        hint = ""
        if noderange.looks_globbed(names):
            hint = (" (the shell probably expanded an unquoted bracket range: quote it, "
                    "e.g. 'node[1-2]')")
        raise UsageError(f"noderange can not contain spaces.{hint}")
    if pairs and not assignments:
        raise UsageError(f"'{pairs[0]}': this command takes no attr=val pairs (select "
                         "objects with -w attr==val)")
    return (names[0] if names else None), pairs


def _names(objects: objdef.Objects, t: ObjType, text: str) -> list[str]:
    """The objects *text* names: a noderange for nodes (names that are no node or group are
    kept, as xCAT's object commands do: lsdef and rmdef then say "Could not find an object
    named ...", mkdef and chdef create them), a comma list otherwise."""
    if t.name == "node":
        nodes = noderange.expand(text, objects.resolver, verify=False)
        if not nodes:
            raise ObjectError(f"No node in '{text}', check the noderange syntax.")
        return nodes
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ObjectError("No object names were provided.")
    return list(dict.fromkeys(names))


def _authorize(store, resolver, command: str, nodes: Sequence[str], argv: Sequence[str],
               *, audit: bool, text: str | None = None) -> None:
    """The policy table's verdict on the request (for the nodes it touches), audited like
    every other command's request."""
    user = policy.current_user()
    shown = text or ""
    try:
        policy.authorize(store, resolver, command, nodes, list(argv), user=user)
    except PolicyDenied:
        policy.audit(store, user=user, host="localhost", command=command,
                     noderange=shown, args=list(argv), status="Denied")
        raise
    if audit:
        policy.audit(store, user=user, host="localhost", command=command,
                     noderange=shown, args=list(argv), status="Allowed")


def _missing(t: ObjType, name: str) -> str:
    return f"Could not find an object named '{name}' of type '{t.name}'."


def _attr_help(types: Sequence[ObjType], only: str | None) -> int:
    """``-h -t type``: xCAT's list of attribute names and descriptions."""
    wanted = [a.strip() for a in (only or "").split(",") if a.strip()]
    out: list[str] = []
    for t in types:
        if t.name == "site":
            out += ["", "There can only be one xCAT site definition. This definition consists ",
                    "of an unlimited list of user-defined attributes and values that represent ",
                    "global settings for the whole cluster. The following is a list ",
                    "of the attributes currently supported by xCAT.",
                    TABLES["site"].descriptions["key"]]
            continue
        if not wanted:
            out.append(f"The valid attribute names for object type '{t.name}' are:")
        out.append("Attribute          Description\n")
        items = []
        for attr in sorted(t.attrs):
            if wanted and attr not in wanted:
                continue
            tab, col = t.entry(attr)
            desc = TABLES[tab].descriptions.get(col, "")
            items.append(f"{attr}:{chr(9) * 2 if len(attr) < 7 else chr(9)}{desc}")
        out.append("\n\n".join(items))
    sys.stdout.write("\n".join(out) + "\n")
    return 0


# -- lsdef ---------------------------------------------------------------------------------
_LSDEF_USAGE = """lsdef - List xCAT data object definitions.

  lsdef [-h | --help ] [-t object-types] [-i attr-list]
  lsdef [-v | --version] [-V | --verbose]
  lsdef [-t object-types] [-o object-names] [-l | --long] [-s | --short] [-a | --all]
        [-z | --stanza] [-S] [-i attr-list] [-c | --compress] [--json]
        [-w attr==val [-w attr=~val] ...] [noderange]"""

_LSDEF_DESC = """\
List object definitions: nodes (default), groups, osimages, networks, the site, policy rules
and osdistros, with xCAT's attribute names (see -h -t <type>).

With no object named, print the names of every object of the types (default: every
node): "n1  (node)". Naming objects (a noderange for nodes, -o for any type), -l or -i
prints each definition:
    Object name: n1
        arch=x86_64
        groups=all,compute
attributes sorted by name, unset ones left out. A node's values are the ones it sees: its
own rows, then its groups' (in nodelist.groups order), regular expressions evaluated, and
its postscripts/postbootscripts start with the xcatdefaults row's -- what xCAT's lsdef
shows. A group's values are its own rows, the ones its members inherit; members= lists its
nodes.
"""

_LSDEF_EPILOG = f"""\
{_TYPES_TEXT}

examples:
  lsdef                               the names of every node
  lsdef node1                         every attribute of node1 (also: lsdef -t node -o node1)
  lsdef -s node1                      only its name
  lsdef -t network                    the names of the networks; -l: their definitions
  lsdef -t node -i mac,installnic     two attributes of every node
  lsdef -t node -w status==booting    the nodes whose status is booting
  lsdef -l -t group -o service        the group's own attributes and members
  lsdef -t node -l service            the definitions of the group's nodes
  lsdef -a -l -z > db.stanza          every definition, to restore with mkdef -z -f
  lsdef -t node -h -i profile,os      what two attributes mean

Quote noderanges with brackets ('node[1-10]'): unquoted, the shell may expand them.

{_EXIT}"""


def _begin(p, argv: list[str], command: str, *, usage_alone: bool):
    """The part every object command shares: the command alone prints its usage (xCAT,
    *usage_alone*), then parse (``-v`` prints the version, as every command's parser
    does); ``-h`` prints the help (with ``-t`` the type's attributes). Returns the parsed
    arguments, or the exit code when done."""
    if usage_alone and not argv:
        sys.stdout.write(p.format_usage())
        return 0
    a = p.parse_intermixed_args(argv)
    if a.help:
        if a.types:
            return _attr_help(_types(a.types), getattr(a, "attrs", None)
                              if command == "lsdef" else None)
        sys.stdout.write(p.format_help())
        return 0
    return a


@main_wrapper
def lsdef(argv: list[str] | None = None) -> int:
    """``lsdef``: list object definitions."""
    p = _parser("lsdef", _LSDEF_USAGE, _LSDEF_DESC, _LSDEF_EPILOG)
    p.add_argument("-l", "--long", action="store_true",
                   help="every attribute of each object, also when none is named")
    p.add_argument("-s", "--short", action="store_true", help="only the names")
    p.add_argument("-i", dest="attrs", metavar="attr-list",
                   help="only these comma-separated attributes (printed even when unset)")
    p.add_argument("-c", "--compress", action="store_true",
                   help='with -i: "name: attr=value" lines (for xcoll)')
    p.add_argument("-w", dest="where", action="append", metavar="attr==val",
                   help="only objects whose value matches: attr==val, attr!=val, "
                   "attr=~regex, attr!~regex (an unset value is \"\"); repeatable, all "
                   "must hold")
    p.add_argument("-z", "--stanza", action="store_true",
                   help="stanza format (xcatstanzafile(5)) for mkdef -z / chdef -z: each "
                   "object's own rows as stored (no group values, regular expressions "
                   "unevaluated, no xcatdefaults), so 'lsdef -z | mkdef -z -f' recreates "
                   "exactly those rows")
    p.add_argument("-a", "--all", action="store_true", help="every object of every type")
    p.add_argument("-S", dest="hidden", action="store_true",
                   help="also hidden nodes (nodelist.hidden=1)")
    p.add_argument("--json", action="store_true",
                   help='a JSON list: [{"name", "objtype", "attributes": {...}}, ...]')
    p.add_argument("words", nargs="*", metavar="noderange",
                   help="the nodes (or, with -t, the comma-separated objects) to list")
    a = _begin(p, argv, "lsdef", usage_alone=False)
    if isinstance(a, int):
        return a
    text, _ = _split_words(a.words, assignments=False)
    if a.long and a.short:
        raise UsageError("The flags '-l' and '-s' cannot be used together.")
    if a.attrs and a.short:
        raise UsageError("The flags '-i' and '-s' cannot be used together.")
    if a.compress and not a.attrs:
        raise UsageError("The flags '-c' and '-i' must be used together.")
    if a.all and a.types:
        raise UsageError("The flags '-a' and '-t' cannot be used together.")
    if a.all and (a.objects or text):
        raise UsageError("Cannot use '-a' with '-o', a noderange or file input.")
    types = [TYPES[n] for n in ALL_TYPES] if a.all else _types(a.types)
    named = a.objects or text
    if named and len(types) > 1:
        raise UsageError("Cannot name objects of several types at once: give one type "
                         "with -t.")
    wanted = [x.strip() for x in (a.attrs or "").split(",") if x.strip()] or None
    wheres = [objdef.parse_where(w) for w in a.where or ()]
    for t in types:
        for attr in (wanted or []) + [w.attr for w in wheres]:
            objdef.check_attribute(t, attr)
    # the site is one object: "lsdef -t site" shows it (xCAT's docs read site values so)
    long = bool(a.long or named or a.attrs or types == [TYPES["site"]]) and not a.short

    store = open_store()
    objects = objdef.Objects(store)
    errors: list[str] = []
    listing: list[tuple[ObjType, list[str]]] = []
    nodes_asked: list[str] = []
    for t in types:
        if named:
            names = _names(objects, t, named)
            have = objects.exists(t, names)
            errors += [_missing(t, n) for n in names if n not in have]
            names = [n for n in names if n in have]
        else:
            names = objects.names(t)
            if not names and not a.all:
                raise ObjectError(f"Could not get objects of type '{t.name}'.")
        if t.name == "node":
            if not a.hidden:
                hidden = objects.hidden(names)
                names = [n for n in names if n not in hidden]
            nodes_asked = names
        listing.append((t, sorted(names)))
    _authorize(store, objects.resolver, "lsdef", nodes_asked, argv or [], audit=False,
               text=named)

    shown: list[tuple[str, str, dict]] = []
    bad: dict[str, dict[str, str]] = {}  # node -> table.col -> why its value cannot render
    for t, names in listing:
        values = objects.read(t, names, own=a.stanza, defaults=not a.stanza, errors=bad) \
            if (long or wheres) else {n: {} for n in names}
        if wheres:
            view = values if not a.stanza else objects.read(t, names, errors=bad)
            names = [n for n in names if all(w.matches(view[n].get(w.attr)) for w in wheres)]
        shown += [(n, t.name, values[n]) for n in names]

    out = sys.stdout
    if a.json:
        data = []
        for name, objtype, values in shown:
            obj: dict = {"name": name, "objtype": objtype}
            if long:
                obj["attributes"] = dict(objdef.attr_lines(objtype, values, wanted))
            data.append(obj)
        out.write(json.dumps(data, indent=2) + "\n")
    elif a.stanza:
        if shown:
            out.write(objdef.render_stanza(shown, wanted, long=long))
    elif not shown:
        if not errors:
            out.write("Could not find any objects to display.\n")
    else:
        several = len(types) > 1
        lines: list[str] = []
        for name, objtype, values in shown:
            if not long:
                lines.append(f"{name} ({objtype})" if a.all else f"{name}  ({objtype})")
                continue
            if not a.compress:
                lines.append(f"Object name: {name}" + (f"  ({objtype})" if several else ""))
            for attr, value in objdef.attr_lines(objtype, values, wanted):
                lines.append(f"{name}: {attr}={value}" if a.compress else f"    {attr}={value}")
        out.write("\n".join(lines) + "\n")
    out.flush()
    for node in sorted(bad):
        for msg in bad[node].values():
            sys.stderr.write(f"{node}: Error: {msg}\n")
    for e in errors:
        sys.stderr.write(f"Error: {e}\n")
    return 1 if errors or bad else 0


# -- mkdef / chdef ---------------------------------------------------------------------------
def _read_stanzas() -> list[objdef.Stanza]:
    text = sys.stdin.read()
    if not text.strip():
        raise ObjectError("-z reads a stanza file from standard input, which is empty "
                          "(example: cat stanzafile | mkdef -z)")
    return objdef.parse_stanza(text)


def _cli_changes(a, pairs: Sequence[str], *, plus: bool = False, minus: bool = False
                 ) -> list[Change]:
    changes = [objdef.parse_assignment(w) for w in pairs]
    if plus or minus:
        op = ",=" if plus else "^="
        changes = [Change(c.attr, op, c.value) if c.op == "=" else c for c in changes]
    return changes


def _capitals(names: Sequence[str]) -> None:
    caps = [n for n in names if n != n.lower()]
    if caps:
        sys.stderr.write(f"Warning: The node name '{','.join(caps)}' contains capital letters "
                         "which may not be resolved correctly by the dns server.\n")


def _order(types: Sequence[str]) -> list[str]:
    """Nodes first (a stanza's groups may list them as members), then the rest sorted."""
    return sorted(dict.fromkeys(types), key=lambda n: (n != "node", n != "group", n))


def _targets_from_stanzas(stanzas, *, plus=False, minus=False):
    """type -> name -> changes, from stanzas."""
    out: dict[str, dict[str, list[Change]]] = {}
    for s in stanzas:
        op = ",=" if plus else "^=" if minus else "="
        out.setdefault(s.objtype, {})[s.name] = [Change(k, op, v) for k, v in s.attrs.items()]
    return out


def _check_names(t: ObjType, names: Sequence[str]) -> None:
    bad = [n for n in names if not objdef.valid_name(t, n)]
    if bad:
        raise ObjectError(f"invalid {t.name} name '{bad[0]}'"
                          + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else "")
                          + ': use letters, digits, "_", "." and "-"')


def _print_warnings(warnings: Sequence[str]) -> None:
    for w in warnings:
        sys.stderr.write(f"Warning: {w}\n")


_MKDEF_USAGE = """mkdef - Create xCAT data object definitions.

  mkdef [-h | --help ] [-t object-types]
  mkdef [-v | --version] [-V | --verbose]
  mkdef [-t object-types] [-o object-names] [-z | --stanza ] [-d | --dynamic]
        [-w attr==val [-w attr=~val] ...] [-f | --force] [noderange] [attr=val [attr=val...]]"""

_MKDEF_DESC = """\
Create object definitions, writing each attribute into its table.column (xCAT's map; see
-h -t <type>). A node needs groups=. An object that already exists is refused unless -f is
given, which unsets every attribute of the old definition first: the object then has exactly
the attributes given (a group keeps its members; columns outside xCAT's attribute map, such
as a VM's kvm_nodedata.xml or vm.vidproto, keep their values, and rows left empty are
deleted). Everything happens in one transaction: a bad attribute, name or stanza creates
nothing.

For a group, members=<noderange> adds the group to each member's groups (the nodes must
exist); -d with -w creates a dynamic group whose members are the nodes matching the
selections (wherevals); -w without -d makes the currently matching nodes static members.
An empty value (attr=) leaves the attribute unset.
"""

_MKDEF_EPILOG = f"""\
{_TYPES_TEXT}

examples:
  mkdef -t node -o node01 groups="all,aix"
  mkdef -f -t node -o node01 nodetype=osi groups="linux"      re-create node01
  mkdef -t node node1,node2,node3 power=kvm groups="all,vms"
  mkdef -t group -o LinuxNodes members="clstrn01,clstrn02"
  mkdef -t group -o SLESNodes -d -w "os=~^sles[0-9]+$"
  mkdef -t policy -o 7.0 name=admin1 rule=allow
  mkdef -t osimage -o rhels9-compute imagetype=linux osvers=rhels9 osarch=x86_64 \\
        provmethod=install profile=compute
  cat defstanzafile | mkdef -z

{_EXIT}"""


@main_wrapper
def mkdef(argv: list[str] | None = None) -> int:
    """``mkdef``: create object definitions."""
    p = _parser("mkdef", _MKDEF_USAGE, _MKDEF_DESC, _MKDEF_EPILOG)
    p.add_argument("-f", "--force", action="store_true",
                   help="re-create an existing definition: unset its attributes first")
    p.add_argument("-z", "--stanza", action="store_true",
                   help="read the definitions (any types) from a stanza file on standard "
                   "input (xcatstanzafile(5), the output of lsdef -z); not with -t or -o")
    p.add_argument("-d", "--dynamic", action="store_true",
                   help="with -t group and -w: a dynamic group")
    p.add_argument("-w", dest="where", action="append", metavar="attr==val",
                   help="a group's selection (==, !=, =~, !~), repeatable")
    p.add_argument("-p", "--plus", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("-m", "--minus", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("words", nargs="*", metavar="noderange|attr=val",
                   help="the new objects (a noderange of new node names, or with -t "
                   "comma-separated names), then their attributes")
    a = _begin(p, argv, "mkdef", usage_alone=True)
    if isinstance(a, int):
        return a
    if a.plus or a.minus:
        raise UsageError("The '-p' and '-m' options are not valid for the mkdef command.")
    text, pairs = _split_words(a.words, assignments=True)
    return _define(a, argv or [], text, pairs, command="mkdef")


_CHDEF_USAGE = """chdef - Change xCAT data object definitions.

  chdef [-h | --help ] [-t object-types]
  chdef [-v | --version] [-V | --verbose]
  chdef [-t object-types] [-o object-names] [-d | --dynamic] [-z | --stanza]
        [-m | --minus] [-p | --plus] [-w attr==val [-w attr=~val] ... ]
        [noderange] [attr=val | attr,=val | attr^=val ...]"""

_CHDEF_DESC = """\
Change object definitions (xCAT's attribute names; see -h -t <type>). Everything happens in
one transaction: an unknown attribute or object changes nothing.

  attr=val      set the value (replaces it; attr= unsets the object's own value, so a
                node inherits its groups' value again)
  attr,=v1,v2   add each item not already in the comma-separated list (like nodech)
  attr^=v1,v2   remove each item from the list (-p / -m turn every attr=val into these)
Lists start from the value lsdef shows (for a node its inherited value). A group's
members=<noderange> replaces its static members (adds/removes the group in each node's
groups); with -p/-m it adds or removes members. -d -w changes a dynamic group's
selections (with -p/-m: adds/removes some). An object that does not exist is created, as
in xCAT (a node in group all unless groups= is given), and the output names it.
"""

_CHDEF_EPILOG = f"""\
{_TYPES_TEXT}

examples:
  chdef -t site -o clustersite installdir=/xcatinstall
  chdef -t node -o node01 groups="all,aix"
  chdef -p -t node -o node01 groups="compute"          add a group
  chdef -m -t node -o node01 groups="all"              remove one
  chdef node01 groups,=gpu vmmemory=8192               the same rule as nodech
  chdef -p -t group -o LinuxNodes members="node01"     add node01 to LinuxNodes
  chdef -t group -o dyngrp -d -p -w cons==hmc          one more selection
  chdef -t policy -o 7.0 name=admin1 rule=allow
  cat mystanzafile | chdef -z

Quote noderanges with brackets ('node[1-10]'): unquoted, the shell may expand them.

{_EXIT}"""


@main_wrapper
def chdef(argv: list[str] | None = None) -> int:
    """``chdef``: change object definitions."""
    p = _parser("chdef", _CHDEF_USAGE, _CHDEF_DESC, _CHDEF_EPILOG)
    p.add_argument("-p", "--plus", action="store_true",
                   help="every attr=val adds its items to the list (like attr,=val)")
    p.add_argument("-m", "--minus", action="store_true",
                   help="every attr=val removes its items from the list (like attr^=val)")
    p.add_argument("-z", "--stanza", action="store_true",
                   help="read the changes from a stanza file on standard input")
    p.add_argument("-d", "--dynamic", action="store_true",
                   help="with -t group and -w: change a dynamic group's selections")
    p.add_argument("-w", dest="where", action="append", metavar="attr==val",
                   help="a group's selection (==, !=, =~, !~), repeatable")
    p.add_argument("-f", "--force", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("words", nargs="*", metavar="noderange|attr=val",
                   help="the objects (a noderange, or with -t comma-separated names), then "
                   "the changes")
    a = _begin(p, argv, "chdef", usage_alone=True)
    if isinstance(a, int):
        return a
    if a.force:
        raise UsageError("The '-f' option is not valid for the chdef command.")
    if a.plus and a.minus:
        raise UsageError("The flags '-p' and '-m' cannot be used together.")
    text, pairs = _split_words(a.words, assignments=True)
    return _define(a, argv or [], text, pairs, command="chdef")


def _define(a, argv: Sequence[str], text: str | None, pairs: Sequence[str], *,
            command: str) -> int:
    """mkdef and chdef: collect type -> name -> changes, check them, write them."""
    mk = command == "mkdef"
    plus, minus = (False, False) if mk else (a.plus, a.minus)
    if a.stanza:
        if a.types:
            raise UsageError("Cannot combine '-t' and '-a', '-z', or '-x' options.")
        if a.objects or text or pairs:
            raise UsageError("Cannot use '-z' with '-o' or a noderange.")
        if a.dynamic or a.where:
            raise UsageError("-d and -w cannot be used with -z.")
    elif (a.dynamic or a.where) and a.types != "group":
        raise UsageError("-d and -w are for groups: give -t group.")
    if a.dynamic and not a.where and mk:
        raise UsageError("The dynamic option (-d) must be used with -w.")

    store = open_store()
    objects = objdef.Objects(store)
    work: dict[str, dict[str, list[Change]]] = {}
    if a.stanza:
        stanzas = _read_stanzas()
        if not stanzas:
            raise ObjectError("No object names were provided.")
        work = _targets_from_stanzas(stanzas, plus=plus, minus=minus)
    else:
        types = _types(a.types)
        if len(types) > 1:
            raise UsageError("Cannot combine multiple types with 'att=val' pairs on the "
                             "command line.")
        t = types[0]
        named = a.objects or text
        if t.name == "site":
            named = named or SITE_NAME
        if not named:
            raise ObjectError("No object names were provided.")
        names = _names(objects, t, named)
        changes = _cli_changes(a, pairs, plus=plus, minus=minus)
        if mk and any(c.op != "=" for c in changes):
            raise UsageError("mkdef sets values (attr=val); 'attr,=' and 'attr^=' are for "
                             "chdef.")
        work = {t.name: {n: list(changes) for n in names}}
        if not mk and not changes and not a.where:
            sys.stdout.write("No object definitions have been created or modified.\n")
            return 0

    # check everything before the first write
    plan: list[tuple[ObjType, dict[str, list[Change]], set[str], set[str]]] = []
    created: list[str] = []
    all_nodes: list[str] = []
    for tname in _order(work):
        t = objdef.object_type(tname)
        objs = work[tname]
        for chs in objs.values():
            for c in chs:
                objdef.check_attribute(t, c.attr)
        names = list(objs)
        if t.name == "site":
            bad = [n for n in names if n != SITE_NAME]
            if bad:
                raise ObjectError(f"There can only be one xCAT site definition, "
                                  f"'{SITE_NAME}' (not '{bad[0]}').")
        _check_names(t, names)
        have = objects.exists(t, names)
        new = {n for n in names if n not in have}
        replace: set[str] = set()
        if mk:
            old = [n for n in names if n in have]
            if old and not a.force:
                raise ObjectError(f"A definition for '{old[0]}' already exists. To remove the "
                                  "old definition and replace it with a new definition use "
                                  "the force '-f' option. To change the existing definition "
                                  "use the 'chdef' command.")
            replace = set(old)
            if t.name == "node":
                for n in names:
                    if not any(c.attr == "groups" and c.value for c in objs[n]):
                        raise ObjectError(f"Attribute 'groups' is not specified for node "
                                          f"'{n}'.")
                _capitals(names)
        else:
            if new and (minus or any(c.op == "^=" for n in new for c in objs[n])):
                raise ObjectError(f"The '-m' option is not valid since the "
                                  f"'{sorted(new)[0]}' definition does not exist.")
            if t.name == "node" and new:  # xCAT's chdef creates a node, in group all
                for n in new:
                    if not any(c.attr == "groups" for c in objs[n]):
                        objs[n] = [*objs[n], Change("groups", "=", "all")]
                _capitals(sorted(new))
            created += sorted(new)
        if t.name == "node":
            all_nodes += names
        plan.append((t, objs, new, replace))

    _authorize(store, objects.resolver, command, all_nodes, argv, audit=True,
               text=(a.objects or text) if not a.stanza else ",".join(all_nodes))
    warnings: list[str] = []
    count = 0
    with store.transaction():
        for t, objs, new, replace in plan:
            where_op = ",=" if plus else "^=" if minus else "="
            warnings += objdef.apply(objects, t, objs, new=new, replace=replace,
                                     wherevals=a.where if not a.stanza else None,
                                     dynamic=bool(a.dynamic), where_op=where_op)
            count += len(objs)
    _print_warnings(warnings)
    sys.stdout.write(f"{count} object definitions have been created or modified.\n")
    if created:
        sys.stdout.write(f"New object definitions '{','.join(created)}' have been created.\n")
    return 0


# -- rmdef ---------------------------------------------------------------------------------
_RMDEF_USAGE = """rmdef - Remove xCAT data object definitions.

  rmdef [-h | --help ] [-t object-types]
  rmdef [-v | --version] [-V | --verbose]
  rmdef [-t object-types] [-a | --all] [-f | --force] [-o object-names] [noderange]"""

_RMDEF_DESC = """\
Remove object definitions: every row that holds them, in one transaction. A node's rows go
from every node table (like noderm); a group's nodegroup row and its rows in the node tables
go, and its name is taken out of its static members' groups. An object that does not exist
is an error (one line each) and then nothing is removed.
"""

_RMDEF_EPILOG = f"""\
{_TYPES_TEXT}

examples:
  rmdef -t node node1-node4           remove four nodes
  rmdef -t node -o bpcnodes           remove the nodes of group bpcnodes
  rmdef -t group -o bpcnodes          remove the group (its nodes stay, without it)
  rmdef -t osimage -o rhels9-compute

Quote noderanges with brackets ('node[1-10]'): unquoted, the shell may expand them.

{_EXIT}"""


@main_wrapper
def rmdef(argv: list[str] | None = None) -> int:
    """``rmdef``: remove object definitions."""
    p = _parser("rmdef", _RMDEF_USAGE, _RMDEF_DESC, _RMDEF_EPILOG)
    p.add_argument("-a", "--all", action="store_true",
                   help="every object of the -t types (without -t: every node, group, "
                   "osimage, network and osdistro); needs -f")
    p.add_argument("-f", "--force", action="store_true", help="confirms -a")
    p.add_argument("words", nargs="*", metavar="noderange",
                   help="the nodes (or, with -t, the comma-separated objects) to remove")
    a = _begin(p, argv, "rmdef", usage_alone=True)
    if isinstance(a, int):
        return a
    text, _ = _split_words(a.words, assignments=False)
    if a.all and not a.force:
        raise UsageError("You must use the '-f' option when using the '-a' option.")
    if a.all and (a.objects or text):
        raise UsageError("Cannot use '-a' with '-o', a noderange or file input.")
    named = a.objects or text
    if "site" in (a.types or "").split(","):
        raise ObjectError("The site definition cannot be removed; clear single attributes "
                          "with 'chdef -t site attr='.")
    if not named and not a.all:
        raise ObjectError("No object names were provided.")
    if a.all:
        types = _types(a.types) if a.types else [
            TYPES[n] for n in ALL_TYPES if n not in ("site", "policy")]
    else:
        types = _types(a.types)
        if len(types) > 1:
            raise UsageError("Cannot name objects of several types at once: give one type "
                             "with -t.")
    store = open_store()
    objects = objdef.Objects(store)
    work: list[tuple[ObjType, list[str]]] = []
    nodes: list[str] = []
    for t in types:
        if a.all:
            names = objects.names(t)
        else:
            names = _names(objects, t, named)
            have = objects.exists(t, names)
            missing = [n for n in names if n not in have]
            if missing:  # xCAT's lines; unlike xCAT, the others are not removed either
                for n in missing:
                    sys.stderr.write(f"Error: {_missing(t, n)}\n")
                sys.stdout.write("No objects have been removed from the xCAT database.\n")
                return 1
        if t.name == "node":
            nodes += names
        work.append((t, names))
    _authorize(store, objects.resolver, "rmdef", nodes, argv or [], audit=True, text=named)
    count = 0
    with store.transaction():
        for t, names in work:
            objdef.remove(objects, t, names)
            count += len(names)
    if count:
        sys.stdout.write(f"{count} object definitions have been removed.\n")
    else:
        sys.stdout.write("No objects have been removed from the xCAT database.\n")
    return 0
