"""The noderange grammar: the only place that parses noderanges (xCAT ``NodeRange.pm``).

:func:`expand` turns text such as ``compute@rack1,node[01-10],-node5`` into a sorted list of
node names, reading nodes, groups and attribute values through a
:class:`nodemgr.tables.resolve.Resolver`. This module never writes to the tables and never
prints; for bad input it raises only :class:`~nodemgr.errors.NoderangeError`, whose message
is one line naming the problem.

Grammar (reference §3; ``,`` binds loosest, then ``@``, then a leading ``-``)::

    range  := item ("," item)*            union, left to right; empty items are skipped
    item   := "-" inter                   exclusion: collected and applied at the end of
            | "@" inter                     this level, so it wins wherever it stands
            | inter                       "@x" as an item narrows everything to its left
    inter  := term ("@" term)*            intersection
    term   := "(" range ")" | "^" path | atom

An atom is expanded by the first rule that applies: an existing node name; a group (dynamic
``nodegroup`` row, static ``nodelist.groups`` member, or a ``nodegroup`` row without members,
which is empty); ``/regex`` (nodes whose whole name matches); an attribute selector
``table.col==v`` / ``!=`` / ``=~re`` / ``!~re`` (``=`` alone means ``==``; shortnames
``groups``, ``tags``, ``mgt``); digits only (``$XCAT_NODE_PREFIX`` + digits +
``$XCAT_NODE_SUFFIX``, prefix ``node`` by default); bracket ranges ``a[1-3,7]b[1:2]``;
``name10+3``; ``left-right`` / ``left:right``. Names a range generates are looked up as
nodes and groups again (``rack1-rack3`` names three groups). A left bound with a leading
zero keeps its width (Perl's string range): ``node001-node010``.

Where xCAT was ambiguous or brittle, this module decides:
``/regex`` is tried before selectors and is never split at commas inside ``()``, ``[]`` or
``{}``; a descending or over-large range, a malformed bracket or ``+`` range and, when
verifying, a range whose ends differ in more than one number are errors instead of silently
matching nothing; ``site.excludenodes`` is expanded without verification so a stale name
there cannot break every command; the "invalid nodes" list is cut after 20 names.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import stat
from collections import namedtuple
from collections.abc import Iterable, Mapping, Sequence

from nodemgr.errors import NodemgrError, NoderangeError
from nodemgr.tables.schema import TABLES

__all__ = [
    "expand", "looks_globbed", "Selector", "parse_selector", "is_selector", "select",
    "attribute", "SHORTNAMES", "OBJECT_ATTRS", "MAX_DEPTH", "MAX_NAMES",
]

#: Deepest nesting of parentheses and ``^file`` includes.
MAX_DEPTH = 64
#: Most names one expansion may generate (ranges, brackets, ``+N``).
MAX_NAMES = 1_000_000
#: Longest digit run a range may count over.
MAX_DIGITS = 18
#: Most names one expansion looks up by key (``WHERE node IN (...)``) before it reads the
#: whole nodelist instead.
KEY_LOOKUPS = 20_000
#: How many unknown names the "Invalid nodes" message lists before cutting.
MISSING_SHOWN = 20

#: nodels/nodech/noderange aliases for common attributes (xCAT ``%shortnames``).
SHORTNAMES: dict[str, str] = {
    "groups": "nodelist.groups",
    "tags": "nodelist.groups",
    "mgt": "nodehm.mgt",
}

#: Object attribute names (``mkdef -t group -w``) accepted in dynamic groups' wherevals.
OBJECT_ATTRS: dict[str, str] = {
    "groups": "nodelist.groups", "status": "nodelist.status",
    "statustime": "nodelist.statustime",
    "mgt": "nodehm.mgt", "power": "nodehm.power", "cons": "nodehm.cons",
    "serialport": "nodehm.serialport", "serialspeed": "nodehm.serialspeed",
    "os": "nodetype.os", "arch": "nodetype.arch", "profile": "nodetype.profile",
    "provmethod": "nodetype.provmethod",
    "netboot": "noderes.netboot", "xcatmaster": "noderes.xcatmaster",
    "installnic": "noderes.installnic", "primarynic": "noderes.primarynic",
    "tftpserver": "noderes.tftpserver", "tftpdir": "noderes.tftpdir",
    "ip": "hosts.ip", "mac": "mac.mac",
    "chain": "chain.chain", "currstate": "chain.currstate", "currchain": "chain.currchain",
    "kernel": "bootparams.kernel", "initrd": "bootparams.initrd",
    "kcmdline": "bootparams.kcmdline",
    "vmhost": "vm.host", "vmstorage": "vm.storage", "vmnics": "vm.nics",
    "vmnicnicmodel": "vm.nicmodel", "vmcpus": "vm.cpus", "vmmemory": "vm.memory",
    "vmmanager": "vm.mgr", "vmcluster": "vm.cluster", "vmmaster": "vm.master",
    "vmbootorder": "vm.bootorder", "vmvirtflags": "vm.virtflags",
    "vmstoragemodel": "vm.storagemodel", "vmstorageformat": "vm.storageformat",
    "vmstoragecache": "vm.storagecache", "vmothersetting": "vm.othersettings",
    "migrationdest": "vm.migrationdest",
    "hosttype": "hypervisor.type", "hostmanager": "hypervisor.mgr",
    "hostinterface": "hypervisor.interface", "hostcluster": "hypervisor.cluster",
}

_DIGITS = re.compile(r"[0-9]+")
_HAS_DIGIT = re.compile(r"[0-9]")
_NUM_SPLIT = re.compile(r"([0-9]+)")
_PLUS_FRONT = re.compile(r"(.*?)([0-9]+)(\..+)?", re.S)
_SEL_RE = re.compile(r"([^=!~]+?)(==|!=|=~|!~|=)(.*)", re.S)
_SEL_OPS = ("==", "!=", "=~", "!~")
_FILE_TOKEN = re.compile(r"[^:\t ]*")
_CLOSERS = {"(": ")", "[": "]", "{": "}"}
_GLOB_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def _printable(text: str) -> str:
    """*text* with control and other unprintable characters escaped (one line)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _show(text: str, limit: int = 80) -> str:
    """*text* quoted for a one-line message (control characters escaped, long text cut)."""
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return '"' + _printable(text) + '"'


# -- attribute selectors ---------------------------------------------------------------------
def attribute(name: str, aliases: Mapping[str, str] | None = None) -> str:
    """Return the ``table.col`` that *name* (``table.col`` or a shortname) stands for.

    Raises:
        NoderangeError: not of that form, unknown table or column, or a table that is not
            keyed by node (``Unknown table "x"``, ``No column "x" in table "t"``).
    """
    full = (aliases or SHORTNAMES).get(name, name)
    tab, dot, col = full.partition(".")
    if not dot or not tab or not col:
        raise NoderangeError(f"{_show(name)} is not table.column or one of "
                             f"{', '.join(sorted(SHORTNAMES))}")
    t = TABLES.get(tab)
    if t is None:
        raise NoderangeError(f'Unknown table "{tab}"')
    if col not in t.columns:
        raise NoderangeError(f'No column "{col}" in table "{tab}"')
    if t.nodecol is None:
        raise NoderangeError(f'Table "{tab}" is not keyed by node')
    return full


class Selector(namedtuple("Selector", "text attr op value pattern", defaults=(None,))):
    """One attribute criterion, e.g. ``nodetype.os=~^rhel`` (immutable; a named tuple, not
    a dataclass: ``dataclasses`` imports ``inspect``, ~10 ms of a cold start).

    Attributes:
        text: as written.
        attr: the ``table.col`` it tests (shortnames resolved).
        op: ``==``, ``!=``, ``=~`` or ``!~``.
        value: the comparison value (for regexes without the surrounding slashes).
        pattern: the compiled regex for ``=~``/``!~``.
    """

    __slots__ = ()

    # equal (and hashed) by the first four fields: ``pattern`` is derived from them
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Selector) and self[:4] == other[:4]

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(self[:4])

    def matches(self, value: str | None) -> bool:
        """Whether a node whose rendered value is *value* (None = unset, tested as "")
        satisfies the criterion (``=~`` searches anywhere, like Perl's ``=~``).

        Raises:
            NoderangeError: the regex took longer than REGEX_TIMEOUT on the value.
        """
        v = "" if value is None else value
        if self.op == "==":
            return v == self.value
        if self.op == "!=":
            return v != self.value
        found = _bounded(self.pattern.search, v, self.text) is not None
        return found if self.op == "=~" else not found


def is_selector(text: str) -> bool:
    """True when the first operator in *text* is a criterion (``==``, ``!=``, ``=~``,
    ``!~``): ``a.b==c`` is one, ``a.b=c==d`` is an assignment whose value is ``c==d``."""
    m = _SEL_RE.fullmatch(text)
    return m is not None and m.group(2) in _SEL_OPS


def parse_selector(text: str, *, single_eq: bool = False,
                   aliases: Mapping[str, str] | None = None) -> Selector:
    """Parse ``table.col<op>value``.

    Args:
        text: the criterion.
        single_eq: also accept ``table.col=value`` as ``==`` (noderange atoms do).
        aliases: name -> ``table.col`` map (default :data:`SHORTNAMES`).
    Raises:
        NoderangeError: not a criterion, bad attribute or bad regular expression.
    """
    m = _SEL_RE.fullmatch(text)
    if m is None or (m.group(2) == "=" and not single_eq):
        raise NoderangeError(f"{_show(text)} is not a criterion: use table.column==value, "
                             "!=value, =~regex or !~regex")
    name, op, value = m.groups()
    op = "==" if op == "=" else op
    attr = attribute(name.strip(), aliases)
    pattern = None
    if op in ("=~", "!~"):
        value = value[1:] if value.startswith("/") else value
        value = value[:-1] if value.endswith("/") else value
        pattern = _compile(value, text)
    return Selector(text, attr, op, value, pattern)


def _compile(regex: str, context: str):
    """*regex* compiled with the engine of regex table values (the ``regex`` package,
    imported on first use), so its matches are bounded in time like theirs."""
    from nodemgr.tables.resolve import RegexValueError, regex_engine

    try:
        engine = regex_engine()
    except RegexValueError as exc:
        raise NoderangeError(str(exc)) from None
    try:
        return engine.compile(regex)
    except (engine.error, OverflowError, ValueError, TypeError, RecursionError,
            MemoryError) as exc:
        raise NoderangeError(f"bad regular expression {_show(regex)} in {_show(context)}: "
                             f"{exc or type(exc).__name__}") from None


def _bounded(method, text: str, context: str):
    """``method(text)`` (a compiled pattern's search or fullmatch) within REGEX_TIMEOUT."""
    from nodemgr.tables.resolve import REGEX_TIMEOUT

    try:
        return method(text, timeout=REGEX_TIMEOUT)
    except TimeoutError:
        raise NoderangeError(f"the regular expression in {_show(context)} took longer than "
                             f"{REGEX_TIMEOUT:g} s on {_show(text, 40)} (catastrophic "
                             "backtracking?)") from None


def select(nodes: Iterable[str], selectors: Sequence[Selector], resolver, *,
           errors: dict[str, dict[str, str]] | None = None) -> list[str]:
    """The nodes (order kept) whose rendered attributes satisfy every selector.

    With *errors* (see :meth:`Resolver.attrs <nodemgr.tables.resolve.Resolver.attrs>`), a
    node whose tested value cannot be rendered is left out and its messages are added to
    ``errors[node]``; without it the first such value raises TableError."""
    nodes = list(nodes)
    if not selectors or not nodes:
        return nodes
    attrs = list(dict.fromkeys(s.attr for s in selectors))
    if errors is None:
        values = resolver.attrs(nodes, attrs)
        return [n for n in nodes if all(s.matches(values[n][s.attr]) for s in selectors)]
    bad: dict[str, dict[str, str]] = {}
    values = resolver.attrs(nodes, attrs, errors=bad)
    for node, msgs in bad.items():
        errors.setdefault(node, {}).update(msgs)
    return [n for n in nodes
            if n not in bad and all(s.matches(values[n][s.attr]) for s in selectors)]


# -- the glob heuristic ----------------------------------------------------------------------
def looks_globbed(argv_tokens: Sequence[str]) -> bool:
    """True when the first two arguments look like names the shell produced by expanding
    an unquoted bracket range (``node[1-2]`` -> ``node1 node2``, xCAT issue #3319).

    The test: both are plain names containing digits and they are the same apart from their
    numbers (``node1``/``node2``, ``f1n1``/``f1n2``, ``vm01.lab``/``vm02.lab``). Table
    names, ``table.col`` and assignments never match, so commands can refuse safely.
    """
    if len(argv_tokens) < 2:
        return False
    a, b = argv_tokens[0], argv_tokens[1]
    if a == b or not (_GLOB_NAME.fullmatch(a) and _GLOB_NAME.fullmatch(b)):
        return False
    if not (_HAS_DIGIT.search(a) and _HAS_DIGIT.search(b)):
        return False
    return _DIGITS.sub("#", a) == _DIGITS.sub("#", b)


# -- expansion -------------------------------------------------------------------------------
def expand(text: str, resolver, *, verify: bool = True, env: Mapping[str, str] | None = None,
           exclude_site: bool = True, errors: dict[str, dict[str, str]] | None = None
           ) -> list[str]:
    """Expand a noderange into node names, deduplicated and sorted as strings (xCAT's order).

    Args:
        text: the noderange (``'`` and ``"`` are removed first, as xCAT does).
        resolver: a :class:`~nodemgr.tables.resolve.Resolver` (or anything with its
            methods); ``resolver.store.site("excludenodes")`` is read when it has a store.
        verify: names that are neither nodes nor groups are an error; ``False`` (nodeadd)
            keeps them as new node names.
        env: where ``XCAT_NODE_PREFIX``/``XCAT_NODE_SUFFIX`` come from (default
            ``os.environ``).
        exclude_site: subtract ``site.excludenodes``.
        errors: collect per-node value errors instead of raising (see
            :meth:`Resolver.attrs <nodemgr.tables.resolve.Resolver.attrs>`): a node whose
            value a selector atom or dynamic group tests cannot be rendered is left out of
            the result (whether it belongs cannot be told) and its messages are added to
            ``errors[node]``.
    Raises:
        NoderangeError: ``Invalid nodes and/or groups in noderange: a,b`` or a one-line
            description of the syntax problem.
    """
    if not isinstance(text, str):
        raise NoderangeError("the noderange must be text")
    s = text.replace("'", "").replace('"', "")
    if not s.strip():
        raise NoderangeError("empty noderange")
    ex = _Expander(resolver, verify, env, errors)
    try:
        result = ex.top(s)
        if ex.missing:
            raise NoderangeError(_missing_message(list(ex.missing)))
        if exclude_site and result:
            result -= _site_excluded(resolver, env)
        if errors:
            result -= errors.keys()
    except NoderangeError:
        raise
    except NodemgrError as exc:  # table problems met while evaluating selectors
        raise NoderangeError(str(exc)) from None
    except RecursionError:
        raise NoderangeError(f"noderange nested too deeply: {_show(s)}") from None
    return sorted(result)


def _missing_message(missing: list[str]) -> str:
    shown = ",".join(_printable(m) for m in missing[:MISSING_SHOWN])
    if len(missing) > MISSING_SHOWN:
        shown += f",... ({len(missing) - MISSING_SHOWN} more)"
    return f"Invalid nodes and/or groups in noderange: {shown}"


def _site_excluded(resolver, env) -> set[str]:
    store = getattr(resolver, "store", None)
    value = store.site("excludenodes") if store is not None else None
    if not value:
        return set()
    value = value.replace("'", "").replace('"', "")
    try:
        return _Expander(resolver, False, env).top(value)
    except NoderangeError as exc:
        raise NoderangeError(f"site.excludenodes: {exc}") from None


class _Expander:
    """One expansion: the parser plus lazily loaded node/group/attribute caches."""

    def __init__(self, resolver, verify: bool, env: Mapping[str, str] | None,
                 errors: dict[str, dict[str, str]] | None = None) -> None:
        self.r = resolver
        self.verify = verify
        self.errors = errors
        env = os.environ if env is None else env
        self.prefix = env.get("XCAT_NODE_PREFIX", "node")
        self.suffix = env.get("XCAT_NODE_SUFFIX", "")
        self.missing: dict[str, None] = {}
        self.files: list[str] = []
        self.generated = 0
        self._all: list[str] | None = None
        self._checked: set[str] = set()  # names looked up by key ...
        self._known: set[str] = set()    # ... and those of them that are nodes
        self._nodes: set[str] | None = None
        self._static: set[str] | None = None
        self._members: dict[str, list[str]] | None = None
        self._nodegroups: dict[str, dict] | None = None
        self._values: dict[str, dict[str, str | None]] = {}

    # -- caches ---------------------------------------------------------------------------
    @property
    def all_nodes(self) -> list[str]:
        if self._all is None:
            self._all = list(self.r.nodes())
        return self._all

    @property
    def nodes(self) -> set[str]:
        if self._nodes is None:
            self._nodes = set(self.all_nodes)
        return self._nodes

    def _existing(self, names: Sequence[str]) -> set[str]:
        """Those of *names* that are nodes: looked up by key while the names asked about
        stay under KEY_LOOKUPS (a plain name, a short list, a range of a few thousand),
        else (or once anything loaded every node) tested against the whole nodelist."""
        if self._all is None:
            lookup = getattr(self.r, "existing", None)
            todo = [n for n in dict.fromkeys(names) if n not in self._checked]
            if lookup is not None and len(self._checked) + len(todo) <= KEY_LOOKUPS:
                if todo:
                    self._known |= lookup(todo)
                    self._checked.update(todo)
                return {n for n in names if n in self._known}
        nodes = self.nodes
        return {n for n in names if n in nodes}

    def _group(self, name: str) -> set[str] | None:
        """Members of group *name*, or None when no group has that name."""
        if self._nodegroups is None:
            self._nodegroups = dict(self.r.nodegroups())
        row = self._nodegroups.get(name)
        if row is not None and (row.get("grouptype") or "").strip().lower() == "dynamic":
            return self._dynamic(name, row)
        if self._static is None:
            self._static = set(self.r.static_groups())
        if name in self._static:
            if self._members is None:
                members: dict[str, list[str]] = {}
                for node in self.all_nodes:
                    for g in self.r.groups_of(node):
                        members.setdefault(g, []).append(node)
                self._members = members
            return set(self._members.get(name, ()))
        if row is not None:
            return set()  # a defined group without members expands to nothing
        return None

    def _dynamic(self, name: str, row: Mapping) -> set[str]:
        where = (row.get("wherevals") or "").strip()
        if not where:
            return set()
        aliases = {**OBJECT_ATTRS, **SHORTNAMES}
        try:
            sels = [parse_selector(w.strip(), aliases=aliases)
                    for w in where.split("::") if w.strip()]
        except NoderangeError as exc:
            raise NoderangeError(f'dynamic group "{name}": {exc}') from None
        return self._select(sels)

    def _select(self, selectors: Sequence[Selector]) -> set[str]:
        nodes = self.all_nodes
        for attr in {s.attr for s in selectors}:
            if attr not in self._values:
                try:
                    if self.errors is None:
                        got = self.r.attrs(nodes, [attr])
                    else:
                        bad: dict[str, dict[str, str]] = {}
                        got = self.r.attrs(nodes, [attr], errors=bad)
                        for node, msgs in bad.items():
                            self.errors.setdefault(node, {}).update(msgs)
                except RecursionError:  # not the noderange's nesting: say what it was
                    raise NoderangeError(f"the values of {attr} are nested too deeply to "
                                         "evaluate") from None
                self._values[attr] = {n: got[n][attr] for n in nodes}
        return {n for n in nodes
                if all(s.matches(self._values[s.attr][n]) for s in selectors)}

    def _count(self, n: int) -> None:
        self.generated += n
        if self.generated > MAX_NAMES:
            raise NoderangeError(f"the noderange expands to more than {MAX_NAMES} names")

    # -- the parser -----------------------------------------------------------------------
    def top(self, s: str, depth: int = 0) -> set[str]:
        """Expand a whole noderange text."""
        result, i = self._range(s, 0, depth, paren=False)
        if i < len(s):  # _range stops only at the end or at a ')' it cannot match
            raise NoderangeError(f'unbalanced ")" in noderange {_show(s)}')
        return result

    def _range(self, s: str, i: int, depth: int, *, paren: bool) -> tuple[set[str], int]:
        if depth > MAX_DEPTH:
            raise NoderangeError(f"noderange nested more than {MAX_DEPTH} levels deep")
        n = len(s)
        include: set[str] = set()
        exclude: set[str] = set()
        items = 0
        while True:
            i = _skip_ws(s, i)
            if i >= n or s[i] == ")":
                break
            if s[i] == ",":
                i += 1
                continue
            op = s[i] if s[i] in "-@" else ","
            if op != ",":
                i = _skip_ws(s, i + 1)
                if i >= n or s[i] in ",@)":
                    raise NoderangeError(f'nothing after "{op}" in noderange {_show(s)}')
            nodes, i = self._inter(s, i, depth)
            items += 1
            if op == "-":
                exclude |= nodes
            elif op == "@":
                include &= nodes
            else:
                include |= nodes
            i = _skip_ws(s, i)
            if i < n and s[i] not in ",)":
                raise NoderangeError(f"unexpected {_show(s[i:i + 20])} in noderange {_show(s)}")
        if not items:
            if paren:
                raise NoderangeError(f'empty "()" in noderange {_show(s)}')
            if i >= n:
                raise NoderangeError(f"empty noderange {_show(s)}")
        return include - exclude, i

    def _inter(self, s: str, i: int, depth: int) -> tuple[set[str], int]:
        nodes, i = self._term(s, i, depth)
        n = len(s)
        while True:
            j = _skip_ws(s, i)
            if j >= n or s[j] != "@":
                return nodes, i
            j = _skip_ws(s, j + 1)
            if j >= n or s[j] in ",@)":
                raise NoderangeError(f'nothing after "@" in noderange {_show(s)}')
            more, i = self._term(s, j, depth)
            nodes &= more

    def _term(self, s: str, i: int, depth: int) -> tuple[set[str], int]:
        if s[i] == "(":
            nodes, j = self._range(s, i + 1, depth + 1, paren=True)
            if j >= len(s) or s[j] != ")":
                raise NoderangeError(f'unbalanced "(" in noderange {_show(s)}')
            return nodes, j + 1
        j = _scan_atom(s, i)
        atom = s[i:j].strip()
        if atom.startswith("^"):
            return self._file(atom[1:], depth), j
        return self._atom(atom), j

    # -- atoms ----------------------------------------------------------------------------
    def _atom(self, atom: str) -> set[str]:
        if self._existing([atom]):
            return {atom}
        members = self._group(atom)
        if members is not None:
            return members
        if atom.startswith("/"):
            return self._regex(atom[1:])
        if "=" in atom or "~" in atom:
            return self._select([parse_selector(atom, single_eq=True)])
        if _DIGITS.fullmatch(atom):
            return self._lookup(self.prefix + atom + self.suffix)
        if "[" in atom or "]" in atom:
            return self._brackets(atom)
        if "+" in atom:
            return self._plus(atom)
        if ":" in atom or "-" in atom:
            return self._dash(atom)
        return self._lookup(atom)

    def _lookup(self, name: str) -> set[str]:
        """A final name: a node, a group's members, else missing (or new, unverified)."""
        if self._existing([name]):
            return {name}
        members = self._group(name)
        if members is not None:
            return members
        if self.verify:
            self.missing[name] = None
            return set()
        return {name}

    def _names(self, names: Iterable[str]) -> set[str]:
        """Look up generated names (all-digit ones get the node prefix)."""
        names = list(names)
        nodes = self._existing(names + [self.prefix + n + self.suffix
                                        for n in names if _DIGITS.fullmatch(n)])
        out: set[str] = set()
        for name in names:
            if name in nodes:
                out.add(name)
                continue
            if _DIGITS.fullmatch(name):
                name = self.prefix + name + self.suffix
                if name in nodes:
                    out.add(name)
                    continue
            out |= self._lookup(name)
        return out

    def _regex(self, body: str) -> set[str]:
        if not body:
            raise NoderangeError('empty regular expression after "/"')
        rx = _compile(body, "/" + body)
        return {n for n in self.all_nodes if _bounded(rx.fullmatch, n, "/" + body)}

    def _numbers(self, lo: str, hi: str, shown: str) -> tuple[range, int]:
        """The numbers from *lo* to *hi* and the width to pad them to (Perl's string range:
        a bound with a leading zero keeps its width)."""
        if len(lo) > MAX_DIGITS or len(hi) > MAX_DIGITS:
            raise NoderangeError(f"number too long in range {_show(shown)}")
        a, b = int(lo), int(hi)
        if a > b:
            raise NoderangeError(f"range {_show(shown)} counts down; write the smaller "
                                 "end first")
        self._count(b - a + 1)
        width = len(lo) if len(lo) > 1 and lo.startswith("0") else 0
        return range(a, b + 1), width

    def _range_values(self, left: str, right: str, shown: str) -> list[str] | None:
        """Names from *left* to *right* (which differ in one number), or None when they do
        not have that form."""
        if left == right:
            return [left]
        la, ra = _NUM_SPLIT.split(left), _NUM_SPLIT.split(right)
        if len(la) != len(ra):
            return None
        for idx, (lpart, rpart) in enumerate(zip(la, ra, strict=True)):
            if lpart == rpart:
                continue
            if idx % 2 == 0 or la[idx + 1:] != ra[idx + 1:]:
                return None  # text differs, or a second number differs
            numbers, width = self._numbers(lpart, rpart, shown)
            pre, post = "".join(la[:idx]), "".join(la[idx + 1:])
            return [f"{pre}{str(v).zfill(width)}{post}" for v in numbers]
        return None  # pragma: no cover - left != right means some part differs

    def _dash(self, atom: str) -> set[str]:
        if ":" in atom:
            parts = atom.split(":")
            if len(parts) != 2:
                raise NoderangeError(f'range {_show(atom)} has more than one ":"')
            left, right = parts
        else:
            count = atom.count("-")
            if count % 2 == 0:  # not a range: only valid as a literal name
                return self._lookup(atom)
            parts = atom.split("-")
            left, right = "-".join(parts[: count // 2 + 1]), "-".join(parts[count // 2 + 1:])
        if not (left and right and _HAS_DIGIT.search(left) and _HAS_DIGIT.search(right)):
            return self._lookup(atom)
        values = self._range_values(left, right, atom)
        if values is None:
            if not self.verify:  # nodeadd: a hostname such as r1-sw2
                return {atom}
            raise NoderangeError(f"{_show(atom)} is not a node or group, nor a valid range: "
                                 f"{_show(left)} and {_show(right)} must be the same apart "
                                 "from one number")
        return self._names(values)

    def _plus(self, atom: str) -> set[str]:
        front, _, count = atom.partition("+")
        m = _PLUS_FRONT.fullmatch(front)
        if m is None or not _DIGITS.fullmatch(count):
            raise NoderangeError(f"bad range {_show(atom)}: use <name><number>+<count>, "
                                 "e.g. node10+3")
        pre, start, post = m.group(1), m.group(2), m.group(3) or ""
        if len(count) > MAX_DIGITS or len(start) > MAX_DIGITS:
            raise NoderangeError(f"number too long in range {_show(atom)}")
        if not pre and not post:
            pre, post = self.prefix, self.suffix
        end = str(int(start) + int(count))
        numbers, width = self._numbers(start, end, atom)
        return self._names(f"{pre}{str(v).zfill(width)}{post}" for v in numbers)

    def _brackets(self, atom: str) -> set[str]:
        parts: list[list[str]] = []
        literal: list[str] = []
        i = 0
        while i < len(atom):
            c = atom[i]
            if c == "[":
                j = atom.find("]", i + 1)
                if j < 0:
                    raise NoderangeError(f'unbalanced "[" in {_show(atom)}')
                parts.append(["".join(literal)])
                literal = []
                parts.append(self._bracket_values(atom[i + 1:j], atom))
                i = j + 1
            elif c == "]":
                raise NoderangeError(f'unbalanced "]" in {_show(atom)}')
            else:
                literal.append(c)
                i += 1
        parts.append(["".join(literal)])
        self._count(math.prod(len(p) for p in parts))
        return self._names("".join(p) for p in itertools.product(*parts))

    def _bracket_values(self, inner: str, atom: str) -> list[str]:
        if "[" in inner:
            raise NoderangeError(f'nested "[" in {_show(atom)}')
        out: list[str] = []
        for piece in inner.split(","):
            piece = piece.strip()
            if not piece:
                raise NoderangeError(f"empty item inside [] in {_show(atom)}")
            bounds = re.split(r"[-:]", piece)
            if len(bounds) == 1:
                out.append(piece)
                continue
            lo, hi = bounds[0], bounds[-1]
            values = None
            if len(bounds) == 2 and lo and hi:
                values = self._range_values(lo, hi, piece)
            if values is None:
                raise NoderangeError(f"bad range {_show(piece)} inside [] in {_show(atom)}: "
                                     "use first-last, e.g. [01-10]")
            out.extend(values)
        return out

    def _file(self, path: str, depth: int) -> set[str]:
        path = path.strip()
        if not path:
            raise NoderangeError('missing file name after "^"')
        try:
            full = os.path.abspath(path)
            st = os.stat(full)
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise NoderangeError(f"cannot read noderange file {_show(path)}: {reason}") from None
        if not stat.S_ISREG(st.st_mode):
            raise NoderangeError(f"noderange file {_show(path)} is not a regular file")
        if full in self.files:
            raise NoderangeError(f"noderange file {_show(path)} includes itself")
        if depth + 1 > MAX_DEPTH:
            raise NoderangeError(f"noderange nested more than {MAX_DEPTH} levels deep")
        self.files.append(full)
        out: set[str] = set()
        try:
            with open(full, encoding="utf-8", errors="replace") as fh:
                for lineno, line in enumerate(fh, 1):
                    line = line.rstrip("\r\n")
                    if line.startswith(("#", "^")):
                        continue
                    token = _FILE_TOKEN.match(line).group(0).strip()
                    if not token:
                        continue
                    try:
                        out |= self.top(token, depth + 1)
                    except NoderangeError as exc:
                        raise NoderangeError(f"{path} line {lineno}: {exc}") from None
        except OSError as exc:
            raise NoderangeError(f"cannot read noderange file {_show(path)}: "
                                 f"{exc.strerror or exc}") from None
        finally:
            self.files.pop()
        return out


def _skip_ws(s: str, i: int) -> int:
    n = len(s)
    while i < n and s[i].isspace():
        i += 1
    return i


def _scan_atom(s: str, i: int) -> int:
    """End of the atom starting at *i*: the first ``,``, ``@`` or unmatched ``)`` outside
    ``()``, ``[]`` and ``{}`` (backslash escapes the next character)."""
    n = len(s)
    stack: list[str] = []
    j = i
    while j < n:
        c = s[j]
        if c == "\\":
            j += 2
            continue
        if stack and stack[-1] == "[":
            if c == "]":
                stack.pop()
        elif c in _CLOSERS:
            stack.append(c)
        elif c in ")]}":
            if not stack:
                if c == ")":
                    break
                raise NoderangeError(f'unbalanced "{c}" in noderange {_show(s)}')
            opener = stack.pop()
            if _CLOSERS[opener] != c:
                raise NoderangeError(f'"{opener}" closed by "{c}" in noderange {_show(s)}')
        elif not stack and c in ",@":
            break
        j += 1
    if stack:
        raise NoderangeError(f'unbalanced "{stack[-1]}" in noderange {_show(s)}')
    return min(j, n)
