"""Table commands: tabdump, tabrestore, chtab.

They read and write raw table rows (no group inheritance, no regex rendering: that is what
``nodels`` shows). Every write happens inside one ``Store.transaction()``, so a failure part
way leaves the tables exactly as they were.
"""

from __future__ import annotations

import os
import re
import sys

from nodemgr.cli.common import main_wrapper, open_store, parser
from nodemgr.cli.output import json_line
from nodemgr.errors import TableError, UsageError
from nodemgr.tables import csvfmt, lists
from nodemgr.tables.schema import TABLES
from nodemgr.tables.schema import table as schema_table

# -- tabdump ------------------------------------------------------------------------------
TABDUMP_USAGE = """\
tabdump [-f|--file FILE] [-w|--where ATTR<op>VALUE ...] [-n|--number N] [--json] TABLE
       tabdump -d|--description [--json] [TABLE]
       tabdump [--json]"""

TABDUMP_DESC = """\
Display a table as CSV, or list the tables.

With no TABLE, print the names of all tables, sorted. With TABLE, print every row of
the table -- disabled rows included -- in xCAT's tabdump CSV format: a header line
'#col1,col2,...' in schema order, then one line per row where a defined value is written
"value" (inner quotes doubled) and an undefined value as an empty field. Values are the
raw rows: no group inheritance and no regular-expression rendering (see nodels).
The output can be edited and loaded back with tabrestore.

--json prints one object per line instead: per row {"table", "row": {column: value or
null}}; per table (no TABLE) {"name", "objtype": "table", "attributes": {"description"}};
per column (-d TABLE) {"name", "objtype": "column", "attributes": {"table",
"description"}}.
"""

TABDUMP_EPILOG = """\
selection (-w, may be repeated; all must hold; rows with an undefined value never match):
  ATTR==VALUE   equal                   ATTR!=VALUE   not equal
  ATTR>VALUE    ATTR>=VALUE  ATTR<VALUE  ATTR<=VALUE   text comparison
  ATTR=~PATTERN SQL LIKE (% any text, _ one character; case-sensitive)
  ATTR!~PATTERN SQL NOT LIKE

examples:
  tabdump                           list the tables
  tabdump site                      the site table as CSV
  tabdump -d vm                     what each column of the vm table means
  tabdump -w mgt==kvm nodehm        only the rows whose mgt is kvm
  tabdump -w 'node=~r1%' hosts      rows whose node starts with r1
  tabdump -f /tmp/nodelist.csv nodelist
  tabdump -n 20 auditlog            the last 20 audit records

exit status:
  0 success; 1 unknown table or column, bad selection, or the file cannot be written.
"""

_OPS = ("==", "!=", ">=", "<=", "=~", "!~", ">", "<")
_WHERE_RE = re.compile(r"^\s*([A-Za-z0-9_]+)\s*(==|!=|>=|<=|=~|!~|>|<)(.*)$", re.S)


def _like(pattern: str) -> re.Pattern:
    out = []
    for ch in pattern:
        if ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.S)


def parse_where(expr: str, table_name: str):
    """``attr<op>value`` -> predicate(row) -> bool. Unknown column -> TableError."""
    m = _WHERE_RE.match(expr)
    if not m:
        raise UsageError(f"bad selection {expr!r}: use ATTR<op>VALUE with op one of "
                         + " ".join(_OPS))
    col, op, val = m.group(1), m.group(2), m.group(3)
    schema_table(table_name).check_column(col)
    if op in ("=~", "!~"):
        rx = _like(val)
        want = op == "=~"

        def pred(row):
            v = row.get(col)
            return v is not None and bool(rx.fullmatch(v)) == want
        return pred
    compare = {
        "==": lambda a: a == val, "!=": lambda a: a != val,
        ">": lambda a: a > val, ">=": lambda a: a >= val,
        "<": lambda a: a < val, "<=": lambda a: a <= val,
    }[op]

    def pred(row):
        v = row.get(col)
        return v is not None and compare(v)
    return pred


def _described(pairs) -> str:
    """xCAT's -d layout: ``name:<tab(s)>text``, entries separated by a blank line."""
    lines = [f"{name}:{chr(9) * 2 if len(name) < 7 else chr(9)}{text}" for name, text in pairs]
    return "\n\n".join(lines) + "\n" if lines else ""


@main_wrapper
def tabdump(argv: list[str]) -> int:
    """``tabdump`` entry point."""
    p = parser("tabdump", TABDUMP_DESC, TABDUMP_EPILOG, usage=TABDUMP_USAGE)
    p.add_argument("-d", "--description", action="store_true",
                   help="show the description of each table (no TABLE) or of each column "
                   "of TABLE instead of the data")
    p.add_argument("-f", "--file", metavar="FILE",
                   help="write the CSV to FILE instead of standard output")
    p.add_argument("-w", "--where", metavar="ATTR<op>VALUE", action="append", default=[],
                   help="only rows matching this selection (repeatable; see below)")
    p.add_argument("-n", "--number", metavar="N", type=int,
                   help="only the last N records (auditlog and eventlog only)")
    p.add_argument("--json", action="store_true", help="one JSON object per row, table or "
                   "column (see above)")
    p.add_argument("table", nargs="?", help="the table to display")
    a = p.parse_args(argv)

    if a.table is None:
        if a.where or a.file or a.number is not None:
            raise UsageError("-f, -w and -n need a TABLE")
        names = sorted(TABLES)
        if a.json:
            text = "".join(json_line({"name": n, "objtype": "table", "attributes":
                                      {"description": TABLES[n].description}}) + "\n"
                           for n in names)
        elif a.description:
            text = _described((n, TABLES[n].description) for n in names)
        else:
            text = "".join(n + "\n" for n in names)
        sys.stdout.write(text)
        return 0

    t = schema_table(a.table)
    if a.description:
        if a.json:
            sys.stdout.write("".join(
                json_line({"name": c, "objtype": "column", "attributes": {
                    "table": t.name, "description": t.descriptions.get(c, "")}}) + "\n"
                for c in t.columns))
        else:
            sys.stdout.write(_described((c, t.descriptions.get(c, "")) for c in t.columns))
        return 0
    preds = [parse_where(w, t.name) for w in a.where]
    if a.number is not None:
        if t.name not in ("auditlog", "eventlog"):
            raise UsageError("-n is only valid for the auditlog and eventlog tables")
        if a.number < 0:
            raise UsageError("-n needs a number >= 0")
    if a.json:
        text = "".join(json_line({"table": t.name, "row": {c: r.get(c) for c in t.columns}})
                       + "\n" for r in _rows(open_store(), t.name, preds, last=a.number))
    else:
        text = dump_table(open_store(), t.name, preds, last=a.number)
    if a.file:
        try:
            with open(a.file, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
        except OSError as exc:
            raise TableError(f"cannot write {a.file}: {exc.strerror}") from None
    else:
        sys.stdout.write(text)
    return 0


# -- tabrestore ---------------------------------------------------------------------------
TABRESTORE_DESC = """\
Replace the contents of a table with the rows of a tabdump CSV file.

The table is named by the file name without its directory and '.csv' suffix
(/tmp/nodelist.csv restores the nodelist table). The first line must be the tabdump header
'#col1,col2,...'; every column it names must exist in the table (columns it leaves out
are stored undefined). Fields are "quoted" (inner quotes doubled, commas and newlines
allowed) or plain (up to the next comma); an empty field is undefined while "" is an
empty string. Blank lines between records are ignored.

By default all rows of the table are deleted first; with -a the rows are added to the
existing ones. Everything happens in one transaction: on any error (bad CSV, unknown
column, duplicate or missing key) nothing is changed.
"""

TABRESTORE_EPILOG = """\
examples:
  tabdump nodelist > /tmp/nodelist.csv; vi /tmp/nodelist.csv; tabrestore /tmp/nodelist.csv
  tabrestore -a extra/hosts.csv       add the rows of extra/hosts.csv to the hosts table

exit status:
  0 the table was restored; 1 nothing was changed (the error is printed).
"""


@main_wrapper
def tabrestore(argv: list[str]) -> int:
    """``tabrestore`` entry point."""
    p = parser("tabrestore", TABRESTORE_DESC, TABRESTORE_EPILOG)
    p.add_argument("-a", "--addrows", action="store_true",
                   help="add the rows to the table instead of replacing its contents")
    p.add_argument("file", metavar="FILE.csv",
                   help="the CSV file; its base name (without .csv) is the table")
    a = p.parse_args(argv)

    base = os.path.basename(a.file)
    name = base[:-4] if base.endswith(".csv") else base
    t = schema_table(name)
    try:
        with open(a.file, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise TableError(f"cannot read {a.file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise TableError(f"{a.file} is not UTF-8 text") from None
    restore_text(open_store(), t.name, text, add=a.addrows, source=a.file)
    return 0


def _rows(store, name: str, preds=(), *, last: int | None = None) -> list[dict]:
    """The rows of table *name* (disabled too) passing all *preds*, or the *last* N."""
    rows = [r for r in store.select(name, include_disabled=True)
            if all(pr(r) for pr in preds)]
    if last is not None:
        rows = rows[len(rows) - last:] if last > 0 else []
    return rows


def dump_table(store, name: str, preds=(), *, last: int | None = None) -> str:
    """tabdump CSV of table *name*: every row (disabled too) passing all *preds*, or only
    the *last* N of them."""
    t = schema_table(name)
    return csvfmt.dump(t.columns, _rows(store, t.name, preds, last=last))


def restore_text(store, name: str, text: str, *, add: bool = False, source: str = "") -> int:
    """Load tabdump CSV *text* into table *name* in one transaction (all rows replaced unless
    *add*); returns the number of rows. On any error nothing changes.

    Raises:
        TableError: bad CSV, unknown column, empty key, database error (duplicate key, ...);
            messages name *source* and the line.
    """
    t = schema_table(name)
    where = f"{source} " if source else ""
    columns, rows = csvfmt.parse_lines(text)
    for c in columns:
        t.check_column(c)
    if len(set(columns)) != len(columns):
        raise TableError(f"{where}header: a column is named twice")
    for line, row in rows:
        for k in t.keys:
            if row.get(k) in (None, ""):
                raise TableError(f'{where}line {line}: key column "{k}" is empty')
    with store.transaction():
        if not add:
            store.delete(t.name)
        for line, row in rows:
            try:
                store.insert(t.name, row)
            except TableError as exc:
                raise TableError(f"{where}line {line}: {exc}") from None
    return len(rows)


# -- chtab --------------------------------------------------------------------------------
CHTAB_USAGE = """\
chtab KEY=VALUE[,KEY=VALUE...] TABLE.COLUMN=VALUE [TABLE.COLUMN+=VALUE ...]
       chtab -d|--delete KEY=VALUE[,KEY=VALUE...] TABLE [TABLE ...]"""

CHTAB_DESC = """\
Add, change or delete rows of any table directly.

The first argument selects rows: every KEY must be a column of each table named after it
(usually the key column: node, key, imagename, priority, ...). Each TABLE.COLUMN=VALUE sets
a column on every selected row of TABLE; when no row matches, one row is created with the
KEY values and the new values. TABLE.COLUMN+=VALUE appends VALUE to the comma-separated
list in the column, skipping items already present. An empty VALUE clears the column
(stores it undefined). A password column given as "-" (passwd.password=-) is read
from a prompt without echo on a terminal, else from the first line of standard input, so
the secret never appears in argv, ps or the shell history. Several tables may be changed
at once.

With -d, delete the selected rows from each TABLE.

All changes happen in one transaction: an unknown table or column, or any other error,
changes nothing. Values are written as given: group inheritance and regular expressions
apply when they are read (nodels), not here.
"""

CHTAB_EPILOG = """\
examples:
  chtab key=dhcpsetup site.value=n
  chtab node=compute nodehm.mgt=kvm nodetype.os=rhels7.9 nodetype.arch=x86_64
  chtab node=vm1 nodelist.groups+=vms         add vm1 to group vms (once)
  chtab key=system passwd.username=root passwd.password=-     prompts (or reads stdin):
                                                              never a password in argv
  chtab priority=6 policy.name=alice policy.commands=rpower policy.rule=allow
  chtab -d node=vm1 vm kvm_nodedata           remove vm1's rows from two tables

exit status:
  0 success; 1 bad arguments, unknown table or column, or a database error (nothing
  changed).
"""


def _keyspec(text: str) -> dict[str, str]:
    keys: dict[str, str] = {}
    for part in text.split(","):
        col, eq, val = part.partition("=")
        col = col.strip()
        if not eq or not col or "." in col:
            raise UsageError(f"bad key {part!r}: use KEY=VALUE[,KEY=VALUE...]")
        keys[col] = val
    return keys


def _read_secret(what: str) -> str:
    """A password given as ``-``: prompted for (no echo) on a terminal, else the first line
    of standard input — never on the command line, where ``ps`` and shell history see it.

    Raises:
        UsageError: nothing on standard input."""
    import getpass

    if sys.stdin.isatty():
        return getpass.getpass(f"{what}: ")
    line = sys.stdin.readline()
    if not line:
        raise UsageError(f"{what}=- reads the value from standard input, which is empty")
    return line.rstrip("\r\n")


def _known_tables(names: list[str]) -> None:
    """Raise one TableError naming every unknown table of *names* (``Unknown table "a"``,
    ``Unknown tables "a", "b"``), so a typo in two tables is not found one run at a time."""
    unknown = [n for n in dict.fromkeys(names) if n not in TABLES and "=" not in n]
    if len(unknown) == 1:
        schema_table(unknown[0])
    if unknown:
        raise TableError("Unknown tables " + ", ".join(f'"{n}"' for n in unknown))


@main_wrapper
def chtab(argv: list[str]) -> int:
    """``chtab`` entry point."""
    p = parser("chtab", CHTAB_DESC, CHTAB_EPILOG, usage=CHTAB_USAGE)
    p.add_argument("-d", "--delete", action="store_true",
                   help="delete the rows selected by KEY=VALUE from each TABLE")
    p.add_argument("keys", metavar="KEY=VALUE[,KEY=VALUE...]", help="which rows")
    p.add_argument("changes", nargs="+", metavar="TABLE.COLUMN[+]=VALUE | TABLE",
                   help="what to set (or, with -d, the tables to delete from)")
    a = p.parse_args(argv)
    keys = _keyspec(a.keys)
    _known_tables(a.changes if a.delete else [c.partition(".")[0] for c in a.changes
                                              if "." in c.partition("=")[0]])

    if a.delete:
        tables = []
        for name in a.changes:
            if "=" in name or "." in name:
                raise UsageError(f"with -d give table names, not {name!r}")
            t = schema_table(name)
            for k in keys:
                t.check_column(k)
            tables.append(t)
        store = open_store()
        with store.transaction():
            for t in tables:
                store.delete(t.name, keys)
        return 0

    # table -> ordered list of (column, value, append?)
    plan: dict[str, list[tuple[str, str | None, bool]]] = {}
    for arg in a.changes:
        m = re.match(r"^([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)(\+?=)(.*)$", arg, re.S)
        if not m:
            raise UsageError(f"bad assignment {arg!r}: use TABLE.COLUMN=VALUE or "
                             "TABLE.COLUMN+=VALUE")
        tname, col, op, val = m.groups()
        t = schema_table(tname)
        t.check_column(col)
        for k in keys:
            t.check_column(k)
        if val == "-" and "password" in col:
            val = _read_secret(f"{tname}.{col}")
        plan.setdefault(tname, []).append((col, val if val != "" else None, op == "+="))

    store = open_store()
    with store.transaction():
        for tname, changes in plan.items():
            t = schema_table(tname)
            rows = store.select(tname, keys, include_disabled=True)
            if not rows:
                new: dict[str, str | None] = dict(keys)
                for col, val, append in changes:
                    new[col] = (lists.append(new.get(col), val) or None) if append else val
                store.insert(tname, new)
                continue
            for row in rows:
                values: dict[str, str | None] = {}
                for col, val, append in changes:
                    cur = values[col] if col in values else row[col]
                    values[col] = (lists.append(cur, val) or None) if append else val
                store.update(tname, {k: row[k] for k in t.keys}, values)
    return 0
