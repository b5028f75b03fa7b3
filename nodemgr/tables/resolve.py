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

import re
from collections.abc import Iterable

from nodemgr.errors import TableError
from nodemgr.tables import safeeval
from nodemgr.tables.schema import table as schema_table

__all__ = ["Resolver", "render", "RegexValueError", "NEXTRECORD"]

NEXTRECORD = "+=NEXTRECORD"
_SLASH_RE = re.compile(r"^/[^/]*/[^/]*/$", re.S)
_PIPE_RE = re.compile(r"^\|.*\|$", re.S)
_GROUPREF_RE = re.compile(r"\$(?:\{(\d+)\}|(\d+))|\\(\d)")
_EASY_NUM_RE = re.compile(r"[\D0]*(\d+)")


#: Longest regex a table value may hold (xCAT's are a few dozen characters).
MAX_PATTERN = 1024


class RegexValueError(ValueError):
    """A table value is a malformed regex / expression (message says why)."""


# -- regex rendering ------------------------------------------------------------------------
def _perl_pattern(pattern: str) -> re.Pattern:
    """Compile a Perl regex with Python's ``re`` (``\\z`` -> ``\\Z``, ``\\Z`` -> ``(?=\\n?\\Z)``)."""
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if nxt == "z":
                out.append(r"\Z")
            elif nxt == "Z":
                out.append(r"(?=\n?\Z)")
            else:
                out.append(pattern[i:i + 2])
            i += 2
            continue
        out.append(ch)
        i += 1
    if len(pattern) > MAX_PATTERN:
        raise RegexValueError(f"regular expression of {len(pattern)} characters is too long "
                              f"(at most {MAX_PATTERN})")
    try:
        return re.compile("".join(out))
    except re.error as exc:
        raise RegexValueError(f"bad regular expression {pattern!r}: {exc}") from None
    except OverflowError:  # a{99999999999}: the repeat count does not fit
        raise RegexValueError(f"bad regular expression {pattern[:60]!r}: a repeat count is "
                              "too large") from None
    except RecursionError:  # hundreds of nested groups
        raise RegexValueError(f"bad regular expression {pattern[:60]!r}: nested too "
                              "deeply") from None


def _groups(m: re.Match) -> list[str | None]:
    return list(m.groups())


def _expand(text: str, groups: list[str | None]) -> str:
    """Substitute ``$n``, ``${n}`` and ``\\n`` by group *n* (undefined -> '')."""

    def sub(mm: re.Match) -> str:
        k = int(mm.group(1) or mm.group(2) or mm.group(3))
        if k == 0 or k > len(groups):
            return ""
        return groups[k - 1] or ""

    return _GROUPREF_RE.sub(sub, text)


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


def render(value: str | None, node: str) -> str | None:
    """Render one raw table value for *node* (regex forms); '' and None give None.

    Raises:
        RegexValueError: malformed pattern or arithmetic.
    """
    if value is None or value == "":
        return None
    if value[0] not in "/|":  # a plain value (nearly all of them)
        return value
    if _SLASH_RE.match(value):
        pattern, repl = value[1:-1].split("/", 1)
        rx = _perl_pattern(pattern)
        result = rx.sub(lambda m: _expand(repl, _groups(m)), node, count=1)
    elif _PIPE_RE.match(value) and len(value) >= 2:
        body = value[1:-1]
        if "|" in body:
            pattern, repl = body.split("|", 1)
        else:  # easy regex: |replacement|
            count = len(_EASY_NUM_RE.findall(node))
            pattern = r"[\D0]*(\d+)" * count + ".*$"
            repl = body
        rx = _perl_pattern(pattern)
        m = rx.search(node)
        if m is None:  # Perl s/// without a match leaves the node name
            result = node
        else:
            groups = _groups(m)
            out = []
            for is_expr, piece in _split_brackets(repl):
                if not is_expr:
                    out.append(_expand(piece, groups))
                    continue
                try:
                    v = safeeval.evaluate(piece, groups)
                except safeeval.EvalError as exc:
                    raise RegexValueError(f"bad expression {piece!r}: {exc}") from None
                out.append(safeeval.format_number(v))
            result = node[:m.start()] + "".join(out) + node[m.end():]
    else:
        return value
    return result if result != "" else None


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
        self.invalidate()

    def invalidate(self) -> None:
        """Drop every cache (call after writing tables)."""
        self._rows: dict[str, dict[str, dict]] = {}
        self._complete: set[str] = set()
        self._loaded: dict[str, set[str]] = {}
        self._nodes: list[str] | None = None
        self._groups: dict[str, list[str]] | None = None
        self._some_groups: dict[str, list[str]] = {}  # groups of nodes read by key
        self._some_known: set[str] = set()            # of those, the nodes that exist
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

    def _load_nodelist(self) -> None:
        nodes: list[str] = []
        groups: dict[str, list[str]] = {}
        for r in self.store.select("nodelist", columns=("node", "groups")):
            node = r["node"]
            if node is None or node in groups:
                continue
            nodes.append(node)
            groups[node] = [g.strip() for g in (r["groups"] or "").split(",") if g.strip()]
        self._nodes, self._groups = nodes, groups

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
        return some

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
            self._load_nodelist()
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

    def _render(self, tab: str, col: str, node: str, value: str | None) -> str | None:
        try:
            return render(value, node)
        except RegexValueError as exc:
            raise TableError(f"{tab}.{col} for node {node}: {exc}") from None

    def attrs(self, nodes: Iterable[str], attrs: Iterable[str], *, blame: bool = False
              ) -> dict[str, dict]:
        """Resolve *attrs* (``table.col``) for *nodes*.

        Returns:
            node -> {attr: rendered value or None}; with ``blame=True`` each value is a
            tuple ``(value, source)`` where source is None (own row or nothing found) or
            the group the value came from (the first group, for ``+=NEXTRECORD`` chains
            and hierarchical attributes).
        Raises:
            TableError: unknown table/column, table not node-keyed, bad regex value.
        """
        attrs = list(attrs)
        nodes = list(nodes)
        split = [self._split_attr(a) for a in attrs]
        all_groups = self._groups_for(nodes)
        keys = set(nodes)
        for node in nodes:
            keys.update(all_groups.get(node, []))
        self._prefetch((tab for tab, _ in split), keys)
        tables = {tab: self._table(tab, keys) for tab, _ in split}
        hier = self._hierarchical()
        plan = [(attr, tab, col, tables[tab], col in hier)
                for attr, (tab, col) in zip(attrs, split, strict=True)]
        out: dict[str, dict] = {}
        for node in nodes:
            res: dict = {}
            groups = all_groups.get(node, [])
            for attr, tab, col, rows, is_hier in plan:
                own = rows.get(node)
                raw = own.get(col) if own is not None else None
                if raw and not is_hier and raw[0] not in "/|" and NEXTRECORD not in raw:
                    res[attr] = (raw, None) if blame else raw  # own plain value: final
                    continue
                if not rows or (not raw and not any(g in rows for g in groups)):
                    # no row (or an empty own value) and none of its groups has a row:
                    # nothing to inherit
                    res[attr] = (None, None) if blame else None
                    continue
                raw, source = self._raw(tab, col, node, groups, rows)
                value = self._render(tab, col, node, raw) if raw is not None else None
                res[attr] = (value, source if value is not None else None) if blame else value
            out[node] = res
        return out

    def attr(self, node: str, attr: str) -> str | None:
        """One rendered attribute of one node."""
        return self.attrs([node], [attr])[node][attr]
