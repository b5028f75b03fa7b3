"""Attribute resolution: a node's own row, its groups, ``+=NEXTRECORD`` and regex values.

This is xCAT's ``getNodeAttribs`` (``perl-xCAT/xCAT/Table.pm``:
``getNodeAttribs_nosub_returnany`` + ``transRegexAttrs``), read-only and cached per
:class:`Resolver` instance (tables are small: one instance per command, call
:meth:`Resolver.invalidate` after writing).

Rules, per attribute ``table.col`` of a node-keyed table (schema ``nodecol``):

1. The node's own row. An empty string counts as undefined (xCAT's ``getAttribs`` turns
   ``''`` into undef), so it does *not* stop inheritance; ``nodech`` writes the regex
   ``|^.*$||`` for "explicitly unset", which is defined, stops inheritance and renders to
   nothing.
2. Still undefined: the node's groups in ``nodelist.groups`` order; the first group row that
   defines it wins. A value ending in ``+=NEXTRECORD`` keeps going and appends the next
   defining group's value; every ``+=NEXTRECORD`` is removed at the end.
3. Columns named in ``site.hierarchicalattrs`` (``col`` or ``col:delim``, comma-separated)
   are instead the concatenation of the node's and all its groups' values, duplicates
   dropped, joined by the delimiter (default ``,``).
4. The value is then rendered against the node name (:func:`render`):
   ``/pattern/replacement/`` (exactly three slashes) is one Perl ``s///``;
   ``|pattern|replacement|`` is the same with every ``( ... )`` of the replacement computed
   by :mod:`nodemgr.tables.safeeval`; ``|replacement|`` ("easy regex") builds the pattern
   from the node name, one ``[\\D0]*(\\d+)`` per number in it, then ``.*$``.
   A rendered empty string means undefined (None).

Disabled rows are invisible (``Store.select`` hides them).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable

from nodemgr.errors import TableError
from nodemgr.tables import safeeval
from nodemgr.tables.schema import table as schema_table

__all__ = ["Resolver", "render", "compile_value", "RegexValueError", "RegexTimeout",
           "REGEX_TIMEOUT", "NEXTRECORD", "regex_engine"]

NEXTRECORD = "+=NEXTRECORD"
_NO_GROUPS: list[str] = []  # the groups of an unknown node (never changed)
_SLASH_RE = re.compile(r"^/[^/]*/[^/]*/$", re.S)
_PIPE_RE = re.compile(r"^\|.*\|$", re.S)
_GROUPREF_RE = re.compile(r"\$(?:\{(\d+)\}|(\d+))|\\(\d)")
_EASY_NUM_RE = re.compile(r"[\D0]*(\d+)")


#: Longest regex a table value may hold (xCAT's are a few dozen characters).
MAX_PATTERN = 1024
#: Deepest nesting of groups in a value's regex (xCAT's nest two or three). A fixed bound,
#: so whether a value compiles never depends on how deep the caller's stack already is
#: (the engine's parser takes ~3 frames a level; the noderange parser at its own limit is
#: ~200 frames deep when it asks for values).
MAX_NESTING = 50

#: Longest one match of a value's regex against a node name may take, in seconds. xCAT's
#: values match a node name (a few dozen characters) in a few microseconds, so a sane value
#: never comes near 0.1 s (over 10,000 times that), while a runaway pattern (catastrophic
#: backtracking) answers within a blink instead of minutes, and a command stays
#: interactive.
REGEX_TIMEOUT = 0.1
#: After this many timeouts of one value, a resolver refuses that value for the remaining
#: nodes without trying: a catastrophic group value on 10,000 nodes costs 0.5 s, not 1,000 s.
MAX_TIMEOUTS = 5


class RegexValueError(ValueError):
    """A table value is a malformed regex / expression (message says why)."""


class RegexTimeout(RegexValueError):
    """A value's regex took longer than :data:`REGEX_TIMEOUT` on a node name.

    Attributes:
        shown: the pattern as the message quotes it.
    """

    def __init__(self, message: str, shown: str = "") -> None:
        super().__init__(message)
        self.shown = shown


# -- regex rendering ------------------------------------------------------------------------
# The engine is the ``regex`` package (mrab-regex): ``re``-compatible in its default
# VERSION0 mode, closer to Perl (possessive quantifiers, atomic groups, \p{..}), and its
# matching takes a timeout. It is imported on the first regex value (~25 ms here), so a
# command that meets none does not pay for it.
_engine = None


def regex_engine():
    """The ``regex`` module (imported on first use; RegexValueError when missing)."""
    global _engine
    if _engine is None:
        try:
            import regex
        except ImportError:
            raise RegexValueError("regex values need the 'regex' package "
                                  "(pip install regex)") from None
        _engine = regex
    return _engine


def _perl_pattern(pattern: str):
    """Compile a Perl regex (``\\z`` -> ``\\Z``, ``\\Z`` -> ``(?=\\n?\\Z)``)."""
    if len(pattern) > MAX_PATTERN:
        raise RegexValueError(f"regular expression of {len(pattern)} characters is too long "
                              f"(at most {MAX_PATTERN})")
    shown = repr(pattern) if len(pattern) <= 60 else repr(pattern[:57] + "...")
    out = []
    i = depth = deepest = 0
    in_class = False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if nxt == "z" and not in_class:
                out.append(r"\Z")
            elif nxt == "Z" and not in_class:
                out.append(r"(?=\n?\Z)")
            else:
                out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            if pattern.startswith("]", i + 1) or pattern.startswith("^]", i + 1):
                out.append(pattern[i:pattern.index("]", i) + 1])  # a leading ] is literal
                i = pattern.index("]", i) + 1
                continue
        elif ch == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == ")":
            depth -= 1
        out.append(ch)
        i += 1
    if deepest > MAX_NESTING:
        raise RegexValueError(f"bad regular expression {shown}: groups nested more than "
                              f"{MAX_NESTING} deep")
    engine = regex_engine()
    try:
        return engine.compile("".join(out))
    except engine.error as exc:
        raise RegexValueError(f"bad regular expression {shown}: {exc}") from None
    except OverflowError:  # a repeat count that does not fit
        raise RegexValueError(f"bad regular expression {shown}: a repeat count is "
                              "too large") from None
    except RecursionError:  # hundreds of nested groups
        raise RegexValueError(f"bad regular expression {shown}: nested too "
                              "deeply") from None
    except (ValueError, TypeError, MemoryError) as exc:
        raise RegexValueError(f"bad regular expression {shown}: {exc}") from None


def _search(rx, node: str):
    """The first match of *rx* in *node*, within :data:`REGEX_TIMEOUT`."""
    try:
        return rx.search(node, timeout=REGEX_TIMEOUT)
    except TimeoutError:
        p = rx.pattern
        shown = repr(p) if len(p) <= 60 else repr(p[:57] + "...")
        raise RegexTimeout(f"regular expression {shown} took longer than {REGEX_TIMEOUT:g} s "
                           "(catastrophic backtracking?)", shown) from None
    except (RecursionError, MemoryError, OverflowError) as exc:
        raise RegexValueError(f"regular expression {rx.pattern[:60]!r} failed: "
                              f"{type(exc).__name__}") from None


#: Most backtracking steps a match may provably take to skip the engine's timeout (below).
STEP_BUDGET = 1_000_000
_QUANT_RE = re.compile(r"\{\d*(?:,\d*)?\}")
_OPEN_RE = re.compile(r"\(\?(?:[aiLmsu]*(?:-[imsx]+)?[:)]|P?<[A-Za-z_]\w*>)")
_ESCAPE_LEN = {"x": 4, "u": 6, "U": 10, "p": 3, "P": 3}


def _safe_length(pattern: str) -> int:
    r"""The longest node name on which *pattern* provably matches in at most
    :data:`STEP_BUDGET` steps, so that it needs no timeout; -1 when no bound is known.

    Asking the engine for a timeout costs ~4 us a match here, more than the match itself
    for xCAT's patterns (``n(\d+)``), so it is skipped where a bound exists: quantifiers
    only on single-character atoms (no quantified group, no back-reference, lookaround,
    fuzzy or verbose syntax), whose backtracking tree has at most (n+1)^q paths per start
    position times the product of the alternations' branch counts, each path at most
    (atoms + q*n) steps long, for q quantifiers and a name of n characters."""
    p = pattern.replace(r"(?=\n?\Z)", "$")  # _perl_pattern's \Z: one fixed-cost test
    i = q = atoms = 0
    paths = 1
    branches = [1]
    prev = None  # what a quantifier would apply to: "atom", "group", "quant" or None
    while i < len(p):
        c = p[i]
        if c == "\\":
            d = p[i + 1:i + 2]
            if not d or d.isdigit() or d in "gkLNo":  # back-references, named lists
                return -1
            i += _ESCAPE_LEN.get(d, 2)
            if d in "pPxuU" and p.startswith("{", i - _ESCAPE_LEN[d] + 2):
                end = p.find("}", i - _ESCAPE_LEN[d] + 2)
                if end < 0:
                    return -1
                i = end + 1
            prev, atoms = "atom", atoms + 1
        elif c == "[":
            j = i + 1
            j += p.startswith("^", j)
            j += p.startswith("]", j)
            while j < len(p) and p[j] != "]":
                j += 2 if p[j] == "\\" else 1
            if j >= len(p):
                return -1
            i, prev, atoms = j + 1, "atom", atoms + 1
        elif c == "(":
            if p.startswith("(?", i):
                m = _OPEN_RE.match(p, i)
                if m is None:
                    return -1  # lookaround, atomic, conditional, comment, other flags
                i = m.end()
                if p[i - 1] == ")":  # inline flags
                    prev = None
                    continue
            else:
                i += 1
            branches.append(1)
            prev = None
        elif c == ")":
            if len(branches) == 1:
                return -1
            paths *= branches.pop()
            i, prev = i + 1, "group"
        elif c == "|":
            branches[-1] += 1
            i, prev = i + 1, None
        elif c in "*+?" or (c == "{" and _QUANT_RE.match(p, i)):
            if prev != "atom":
                return -1  # a quantified group (or a syntax error)
            i = i + 1 if c != "{" else _QUANT_RE.match(p, i).end()
            i += p.startswith(("?", "+"), i)  # lazy / possessive
            q, prev = q + 1, "quant"
        elif c == "{":
            return -1  # fuzzy matching, or a brace the engine may read otherwise
        else:
            i, prev, atoms = i + 1, "atom", atoms + 1
    if len(branches) != 1:
        return -1
    paths *= branches[0]
    n = -1
    while n < 4096 and (n + 2) ** (q + 1) * paths * (atoms + q * (n + 1) + 1) <= STEP_BUDGET:
        n += 1
    return n


def _split_brackets(text: str) -> list[tuple[bool, str]]:
    """Split *text* into (is_expression, piece): top-level balanced ``( ... )`` groups are
    expressions (quotes inside them respected), the rest literal. Like Text::Balanced's
    ``extract_bracketed`` loop in xCAT, an unbalanced ``(`` ends the search: the rest is
    literal."""
    pieces: list[tuple[bool, str]] = []
    i, n, lit_start = 0, len(text), 0
    while i < n:
        if text[i] != "(":
            i += 1
            continue
        depth, j, quote = 0, i, None
        end = -1
        while j < n:
            c = text[j]
            if quote:
                if c == "\\":
                    j += 2
                    continue
                if c == quote:
                    quote = None
            elif c in "'\"":
                quote = c
            elif c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth == 0:
                    end = j
                    break
            j += 1
        if end < 0:
            break
        if i > lit_start:
            pieces.append((False, text[lit_start:i]))
        pieces.append((True, text[i:end + 1]))
        i = lit_start = end + 1
    if lit_start < n:
        pieces.append((False, text[lit_start:]))
    return pieces


def _literal_pieces(text: str, ngroups: int) -> list:
    """*text* as literal strings and 0-based group indexes: ``$n``, ``${n}`` and ``\\n``
    name group *n*; a group that does not exist is ''."""
    out: list = []
    pos = 0
    for m in _GROUPREF_RE.finditer(text):
        if m.start() > pos:
            out.append(text[pos:m.start()])
        k = int(m.group(1) or m.group(2) or m.group(3))
        if 0 < k <= ngroups:
            out.append(k - 1)
        pos = m.end()
    if pos < len(text):
        out.append(text[pos:])
    return out


def _expression_piece(piece: str) -> Callable[[tuple], str]:
    """The compiled ``( ... )`` expression *piece* of a ``|re|repl|`` replacement: a function
    of the groups. A piece that does not compile raises only when a node uses it (a node
    the pattern does not match renders as its name, as before)."""
    try:
        fn = safeeval.compile_bare(piece)
    except safeeval.EvalError as exc:
        message = f"bad expression {piece!r}: {exc}"

        def refused(groups: tuple) -> str:
            raise RegexValueError(message)
        return refused
    fmt = safeeval.format_number

    def run(groups: tuple) -> str:
        try:
            return fmt(fn(groups))
        except (ValueError, OverflowError, RecursionError) as exc:  # EvalError included
            raise RegexValueError(f"bad expression {piece!r}: "
                                  f"{safeeval.reason(exc)}") from None
    return run


def _substitute(rx, parts: list) -> Callable[[str], str | None]:
    """Perl's ``s/rx/parts/`` on a node name, once: no match leaves the name."""
    safe = _safe_length(rx.pattern)
    search = rx.search
    if all(type(p) is str for p in parts):
        const = "".join(parts)

        def apply_const(node: str) -> str | None:
            m = search(node) if len(node) <= safe else _search(rx, node)
            if m is None:
                return node or None
            return (node[:m.start()] + const + node[m.end():]) or None
        return apply_const

    # the replacement as a %-template of its literal text and one function of the groups
    # per group reference or expression
    template = "".join(p.replace("%", "%%") if type(p) is str else "%s" for p in parts)
    dynamic = [_group_text(p) if type(p) is int else p for p in parts if type(p) is not str]

    def apply(node: str) -> str | None:
        m = search(node) if len(node) <= safe else _search(rx, node)
        if m is None:
            return node or None
        g = m.groups()
        start, end = m.span()
        return (node[:start] + template % tuple([f(g) for f in dynamic])
                + node[end:]) or None
    return apply


def _group_text(i: int) -> Callable[[tuple], str]:
    return lambda groups: groups[i] or ""


def _refuse(message: str) -> Callable[[str], str | None]:
    def refused(node: str) -> str | None:
        raise RegexValueError(message)
    return refused


def _pipe_parts(rx, repl: str) -> list:
    parts: list = []
    for is_expr, piece in _split_brackets(repl):
        if is_expr:
            parts.append(_expression_piece(piece))
        else:
            parts.extend(_literal_pieces(piece, rx.groups))
    return parts


def _easy(body: str) -> Callable[[str], str | None]:
    """``|replacement|``: the pattern depends on how many numbers the node name has, so
    one compiled substitution per count."""
    by_count: dict[int, Callable[[str], str | None]] = {}

    def apply(node: str) -> str | None:
        count = len(_EASY_NUM_RE.findall(node))
        fn = by_count.get(count)
        if fn is None:
            try:
                rx = _perl_pattern(r"[\D0]*(\d+)" * count + ".*$")
                fn = _substitute(rx, _pipe_parts(rx, body))
            except RegexValueError as exc:
                fn = _refuse(str(exc))
            by_count[count] = fn
        return fn(node)
    return apply


@functools.lru_cache(maxsize=4096)
def compile_value(value: str) -> Callable[[str], str | None]:
    """The renderer of one raw value, built once per distinct value text (cached): a
    function of the node name giving the rendered value (None for '') or raising
    :class:`RegexValueError`. The pattern is compiled, the replacement split into literal
    pieces, group references and compiled :mod:`~nodemgr.tables.safeeval` expressions."""
    if not value or value[0] not in "/|":
        plain = value or None
        return lambda node: plain
    try:
        if _SLASH_RE.match(value):
            pattern, repl = value[1:-1].split("/", 1)
            rx = _perl_pattern(pattern)
            return _substitute(rx, _literal_pieces(repl, rx.groups))
        if _PIPE_RE.match(value) and len(value) >= 2:
            body = value[1:-1]
            if "|" not in body:
                return _easy(body)
            pattern, repl = body.split("|", 1)
            rx = _perl_pattern(pattern)
            return _substitute(rx, _pipe_parts(rx, repl))
    except RegexValueError as exc:  # the same error for every node, without recompiling
        return _refuse(str(exc))
    return lambda node: value


def render(value: str | None, node: str) -> str | None:
    """Render one raw table value for *node* (regex forms); '' and None give None.

    Raises:
        RegexValueError: malformed pattern or arithmetic, or a match that took longer
            than :data:`REGEX_TIMEOUT` (:class:`RegexTimeout`).
    """
    if value is None or value == "":
        return None
    if value[0] not in "/|":  # a plain value (nearly all of them)
        return value
    return compile_value(value)(node)


# -- the resolver ---------------------------------------------------------------------------
class Resolver:
    """Rendered, group-inherited attribute values, with whole tables cached lazily.

    Args:
        store: a :class:`nodemgr.tables.store.Store`.
        nodes_by_key: read ``nodelist`` rows only for the nodes asked about (up to
            WHOLE_TABLE_KEYS) instead of the whole table, until something needs every node
            (``nodes()``, ``static_groups()``): for a request about one known node (the
            install-finished callback), so its cost does not grow with the cluster.
    """

    def __init__(self, store, *, nodes_by_key: bool = False) -> None:
        self.store = store
        self.nodes_by_key = nodes_by_key
        self._slow: dict[str, list] = {}  # regex value -> [timeouts, message]
        self.invalidate()

    def invalidate(self) -> None:
        """Drop every cache (call after writing tables)."""
        self._rows: dict[str, dict[str, dict]] = {}
        self._complete: set[str] = set()
        self._loaded: dict[str, set[str]] = {}
        self._nodes: list[str] | None = None
        self._groups: dict[str, list[str]] | None = None
        self._nodelist_rows: dict[str, dict] | None = None  # NODELIST_COLUMNS only
        self._some_groups: dict[str, list[str]] = {}  # groups of nodes read by key
        self._some_known: set[str] = set()            # of those, the nodes that exist
        self._static: set[str] | None = None  # static_groups() read without the nodelist
        self._hier: dict[str, str] | None = None
        self._nodegroups: dict[str, dict] | None = None

    # -- tables ------------------------------------------------------------------------
    #: Above this many keys not yet read, a table is read whole rather than by key.
    WHOLE_TABLE_KEYS = 200

    def _table(self, name: str, keys: Iterable[str] | None = None) -> dict[str, dict]:
        """Enabled rows of a node-keyed table by their node/group key (first row wins).

        With *keys*, only rows for those keys need to be present: a command about a few
        nodes reads a few rows, not the whole table (``kvm_nodedata`` holds a domain
        definition per VM)."""
        rows = self._rows.setdefault(name, {})
        if name in self._complete:
            return rows
        loaded = self._loaded.setdefault(name, set())
        wanted = None if keys is None else set(keys) - loaded
        if wanted is not None and not wanted:
            return rows
        key = schema_table(name).nodecol
        if wanted is None or len(wanted) > self.WHOLE_TABLE_KEYS:
            self._keep(name, self.store.select(name), None)
        else:
            self._keep(name, self.store.select(name, any_of=(key, sorted(wanted))), wanted)
        return rows

    def _keep(self, name: str, found: list[dict], wanted: set[str] | None) -> None:
        """Cache rows *found* of table *name*, read for keys *wanted* (None: whole table)."""
        rows = self._rows.setdefault(name, {})
        key = schema_table(name).nodecol
        if wanted is None:
            self._complete.add(name)
        else:
            self._loaded.setdefault(name, set()).update(wanted)
        for r in found:
            k = r.get(key)
            if k is not None and k not in rows:
                rows[k] = r

    def _prefetch(self, names: Iterable[str], keys: set[str]) -> None:
        """Read what :meth:`_table` would read for each of *names* and *keys*, all tables
        in one statement (:meth:`Store.select_batch`)."""
        todo = []
        for name in dict.fromkeys(names):
            if name in self._complete:
                continue
            wanted = keys - self._loaded.get(name, set())
            if not wanted:
                continue
            whole = len(wanted) > self.WHOLE_TABLE_KEYS
            todo.append((name, None if whole else wanted))
        if len(todo) < 2:
            return  # nothing to gain: _table reads it
        found = self.store.select_batch(
            (n, schema_table(n).nodecol, None if w is None else sorted(w)) for n, w in todo)
        for (name, wanted), rows in zip(todo, found, strict=True):
            self._keep(name, rows, wanted)

    #: The nodelist columns read with the node names: nodels' hidden test and groups are
    #: served from this one read (see :meth:`attrs`) instead of a second, whole-row read.
    NODELIST_COLUMNS = ("node", "groups", "hidden")

    def _load_nodelist(self) -> None:
        nodes: list[str] = []
        groups: dict[str, list[str]] = {}
        parsed: dict[str | None, list[str]] = {}  # nodes of the same groups share the list
        rows: dict[str, dict] = {}
        for r in self.store.select("nodelist", columns=self.NODELIST_COLUMNS):
            node = r["node"]
            if node is None or node in groups:
                continue
            rows[node] = r
            nodes.append(node)
            text = r["groups"]
            gs = parsed.get(text)
            if gs is None:
                gs = parsed[text] = [g.strip() for g in (text or "").split(",") if g.strip()]
            groups[node] = gs
        self._nodes, self._groups = nodes, groups
        self._nodelist_rows = rows

    def _groups_for(self, nodes: list[str]) -> dict[str, list[str]]:
        """node -> its groups for *nodes*: from the whole nodelist, or with *nodes_by_key*
        (up to WHOLE_TABLE_KEYS nodes not read yet) only the rows of these nodes."""
        if self._groups is not None or not self.nodes_by_key:
            if self._groups is None:
                self._load_nodelist()
            return self._groups
        some = self._some_groups
        missing = [n for n in dict.fromkeys(nodes) if n not in some]
        if len(missing) > self.WHOLE_TABLE_KEYS:
            self._load_nodelist()
            return self._groups
        if missing:
            self._read_groups_by_key(missing, some)
        return some

    def _read_groups_by_key(self, missing: list[str], some: dict[str, list[str]]) -> None:
        """Read the ``nodelist`` rows of *missing* by key into *some* (node -> groups; []
        for a name with no enabled row) and the known names."""
        for n in missing:
            some[n] = []
        seen: set[str] = set()
        for r in self.store.select("nodelist", columns=("node", "groups"),
                                   any_of=("node", missing)):
            node = r["node"]
            if node is None or node in seen:
                continue
            seen.add(node)
            self._some_known.add(node)
            some[node] = [g.strip() for g in (r["groups"] or "").split(",") if g.strip()]

    def existing(self, names: Iterable[str]) -> set[str]:
        """Those of *names* that have an enabled ``nodelist`` row, read by key (``WHERE node
        IN (...)``, batched) unless the whole nodelist is already loaded: for the noderange
        parser's test of a few plain names, whose cost must not grow with the cluster. The
        rows read also serve :meth:`groups_of` / :meth:`attrs` under *nodes_by_key*."""
        names = list(dict.fromkeys(names))
        if self._groups is not None:
            return {n for n in names if n in self._groups}
        some = self._some_groups
        missing = [n for n in names if n not in some]
        if missing:
            self._read_groups_by_key(missing, some)
        return {n for n in names if n in self._some_known}

    def known(self, nodes: Iterable[str]) -> list[str]:
        """Those of *nodes* that have an enabled ``nodelist`` row, in the order given (read
        by key under *nodes_by_key*, like their groups)."""
        nodes = list(nodes)
        self._groups_for(nodes)
        have = self._some_known if self._groups is None else self._groups
        return [n for n in nodes if n in have]

    def rows(self, name: str, keys: Iterable[str]) -> dict[str, dict]:
        """Enabled rows of node-keyed table *name* by key (first row of a key wins), with at
        least those of *keys* present; the dict is the resolver's cache: do not change it."""
        return self._table(name, keys)

    def prefetch(self, nodes: Iterable[str], names: Iterable[str]) -> None:
        """Read the rows of tables *names* that *nodes* and their groups need, in one
        statement, so later :meth:`attrs` / :meth:`rows` calls about them read nothing."""
        nodes = list(nodes)
        groups = self._groups_for(nodes)
        keys = set(nodes)
        for node in nodes:
            keys.update(groups.get(node, []))
        self._prefetch(names, keys)

    def nodes(self) -> list[str]:
        """Every enabled ``nodelist.node``, in table order."""
        if self._nodes is None:
            self._load_nodelist()
        return list(self._nodes)

    def groups_of(self, node: str) -> list[str]:
        """The node's ``nodelist.groups`` in order ([] for an unknown node)."""
        return list(self._groups_for([node]).get(node, []))

    def static_groups(self) -> set[str]:
        """Every group name that appears in any ``nodelist.groups``."""
        if self._groups is None:
            if self._static is None:
                # one DISTINCT in SQL: nodes share a few groups texts, so this reads a
                # handful of rows where loading the nodelist reads one per node
                self._static = {g.strip() for text in self.store.distinct("nodelist", "groups")
                                if text for g in text.split(",") if g.strip()}
            return set(self._static)
        return {g for gs in self._groups.values() for g in gs}

    def nodegroups(self) -> dict[str, dict]:
        """Enabled ``nodegroup`` rows by groupname."""
        if self._nodegroups is None:
            out: dict[str, dict] = {}
            for r in self.store.select("nodegroup"):
                if r["groupname"] is not None and r["groupname"] not in out:
                    out[r["groupname"]] = r
            self._nodegroups = out
        return dict(self._nodegroups)

    def _hierarchical(self) -> dict[str, str]:
        """Column -> delimiter from ``site.hierarchicalattrs``."""
        if self._hier is None:
            hier: dict[str, str] = {}
            for item in (self.store.site("hierarchicalattrs") or "").split(","):
                item = item.strip()
                if not item:
                    continue
                col, sep, delim = item.partition(":")
                hier[col.strip()] = delim if sep and delim else ","
            self._hier = hier
        return self._hier

    # -- resolution --------------------------------------------------------------------
    _SPLIT: dict[str, tuple[str, str]] = {}  # checked attributes (the schema is fixed)

    @staticmethod
    def _split_attr(attr: str) -> tuple[str, str]:
        hit = Resolver._SPLIT.get(attr)
        if hit is not None:
            return hit
        tab, dot, col = attr.partition(".")
        if not dot or not tab or not col:
            raise TableError(f'Bad attribute "{attr}": use table.column')
        t = schema_table(tab)
        t.check_column(col)
        if t.nodecol is None:
            raise TableError(f'Table "{tab}" is not keyed by node')
        Resolver._SPLIT[attr] = (tab, col)
        return tab, col

    def _raw(self, tab: str, col: str, node: str, groups: list[str] | None = None,
             rows: dict[str, dict] | None = None) -> tuple[str | None, str | None]:
        """Inherited raw value and its source (None = own row, else first group used).

        *groups* and *rows* may be passed when the caller already has them (``attrs``)."""
        if groups is None:
            groups = self.groups_of(node)
        if rows is None:
            rows = self._table(tab, [node, *groups])

        def val(key: str) -> str | None:
            r = rows.get(key)
            v = r.get(col) if r else None
            return None if v == "" else v

        delim = self._hierarchical().get(col)
        if delim is not None:
            parts: list[str] = []
            source: str | None = None
            first = True
            for key, src in [(node, None)] + [(g, g) for g in groups]:
                v = val(key)
                if v is None:
                    continue
                if first:
                    source, first = src, False
                for p in v.replace(NEXTRECORD, "").split(delim):
                    if p != "" and p not in parts:
                        parts.append(p)
            return (delim.join(parts) if parts else None), source

        value = val(node)
        source = None
        if value is None or value.endswith(NEXTRECORD):
            for g in groups:
                gv = val(g)
                if gv is None:
                    continue
                if value is None:
                    value, source = gv, g
                else:
                    value = value[: -len(NEXTRECORD)] + gv
                if not value.endswith(NEXTRECORD):
                    break
        if value is not None:
            value = value.replace(NEXTRECORD, "")
        return value, source

    def _render(self, raw: str, node: str, fn: Callable[[str], str | None]) -> str | None:
        """``fn(node)``, *fn* being :func:`compile_value` of *raw*, except that a value
        that already took longer than :data:`REGEX_TIMEOUT` on :data:`MAX_TIMEOUTS` nodes
        of this resolver is refused without trying again."""
        slow = self._slow.get(raw)
        if slow is not None and slow[0] >= MAX_TIMEOUTS:
            raise RegexTimeout(slow[1])
        try:
            return fn(node)
        except RegexTimeout as exc:
            if slow is None:
                slow = self._slow[raw] = [0, ""]
            slow[0] += 1
            slow[1] = (f"regular expression {exc.shown} not tried: it took longer than "
                       f"{REGEX_TIMEOUT:g} s on {MAX_TIMEOUTS} other nodes (catastrophic "
                       "backtracking?)")
            raise

    def attrs(self, nodes: Iterable[str], attrs: Iterable[str], *, blame: bool = False,
              errors: dict[str, dict[str, str]] | None = None) -> dict[str, dict]:
        """Resolve *attrs* (``table.col``) for *nodes*.

        Args:
            errors: collect bad values per node instead of raising: a value that cannot be
                rendered for a node (malformed regex or arithmetic, a match over
                :data:`REGEX_TIMEOUT`) is None in the result and
                ``errors[node][attr]`` is its one-line message, naming the table.column
                (and the group the value came from), without the node name; every other
                node and attribute is rendered as usual. Without *errors* the first bad
                value raises TableError.
        Returns:
            node -> {attr: rendered value or None}; with ``blame=True`` each value is a
            tuple ``(value, source)`` where source is None (own row or nothing found) or
            the group the value came from (the first group, for ``+=NEXTRECORD`` chains
            and hierarchical attributes).
        Raises:
            TableError: unknown table/column, table not node-keyed, bad regex value (only
                without *errors*).
        """
        attrs = list(attrs)
        nodes = list(nodes)
        split = [self._split_attr(a) for a in attrs]
        all_groups = self._groups_for(nodes)
        keys = set(nodes)
        seen: set[int] = set()
        for node in nodes:
            gs = all_groups.get(node)
            if gs and id(gs) not in seen:  # nodes of the same groups share one list
                seen.add(id(gs))
                keys.update(gs)
        tables: dict[str, dict[str, dict]] = {}
        if (self._nodelist_rows is not None and "nodelist" not in self._complete
                and all(c in self.NODELIST_COLUMNS for t, c in split if t == "nodelist")):
            tables["nodelist"] = self._nodelist_rows  # read with the node names already
        self._prefetch((tab for tab, _ in split if tab not in tables), keys)
        for tab, _ in split:
            if tab not in tables:
                tables[tab] = self._table(tab, keys)
        hier = self._hierarchical()
        # memo: what a node without its own value inherits depends only on its groups
        # (one list object per distinct nodelist.groups text):
        # id(groups) -> (raw, source, compiled renderer or None for a plain value)
        plan = [(attr, tab, col, tables[tab], col in hier, {})
                for attr, (tab, col) in zip(attrs, split, strict=True)]
        out: dict[str, dict] = {}
        render_fn = self._render
        for node in nodes:
            res: dict = {}
            groups = all_groups.get(node, _NO_GROUPS)
            gkey = id(groups)
            for attr, tab, col, rows, is_hier, memo in plan:
                own = rows.get(node)
                raw = own.get(col) if own is not None else None
                if raw:
                    if not is_hier and raw[0] not in "/|" and NEXTRECORD not in raw:
                        res[attr] = (raw, None) if blame else raw  # own plain value: final
                        continue
                    raw, source = self._raw(tab, col, node, groups, rows)
                    fn = compile_value(raw) if raw and raw[0] in "/|" else None
                else:
                    hit = memo.get(gkey)
                    if hit is None:
                        if not rows or not any(g in rows for g in groups):
                            hit = (None, None, None)  # no group row: nothing to inherit
                        else:
                            raw, source = self._raw(tab, col, node, groups, rows)
                            hit = (raw, source,
                                   compile_value(raw) if raw and raw[0] in "/|" else None)
                        memo[gkey] = hit
                    raw, source, fn = hit
                if fn is None:
                    value = raw or None  # ('' only from a "+=NEXTRECORD" alone)
                else:
                    try:
                        value = render_fn(raw, node, fn)
                    except RegexValueError as exc:
                        if errors is None:
                            raise TableError(f"{tab}.{col} for node {node}: {exc}") from None
                        where = f" (value of group {source})" if source else ""
                        errors.setdefault(node, {})[attr] = f"{tab}.{col}{where}: {exc}"
                        value = None
                res[attr] = (value, source if value is not None else None) if blame else value
            out[node] = res
        return out

    def attr(self, node: str, attr: str) -> str | None:
        """One rendered attribute of one node."""
        return self.attrs([node], [attr])[node][attr]
