"""The table store: the only module that writes SQL, for SQLite and PostgreSQL.

SQLite (the standard library's ``sqlite3``) is the default; PostgreSQL is used through
psycopg 3, imported only when the URL asks for it, so a command that uses SQLite never pays
for it. A new database gets its schema and default rows on first use. Rows come back in
insertion order (what ``tabdump`` shows). Every value is text or None.
This module must never interpret values (groups, regexes): that is ``resolve``'s job.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import sqlite3
import urllib.parse
import zlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from nodemgr.errors import ConfigError, TableError
from nodemgr.tables.schema import DEFAULT_ROWS, TABLES, TableSchema, is_disabled, table

Row = dict[str, str | None]

#: Changes whenever a table or column is added, so old databases are brought up to date.
SCHEMA_STAMP = zlib.crc32(repr([(t.name, t.columns, t.intindex)
                               for t in TABLES.values()]).encode()) & 0x7FFFFFFF


def _q(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


class Store:
    """A connection to the tables.

    Args:
        url: ``sqlite:///relative/path``, ``sqlite:////absolute/path``, ``sqlite://`` (in
            memory) or ``postgresql://user[:password]@host[:port]/db``.
    Raises:
        ConfigError: unsupported URL or the database cannot be opened (message names the
            URL with any password masked).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._depth = 0
        self._sql_cache: dict[tuple, tuple[str, list[str]]] = {}
        self._site: dict[str, str | None] | None = None
        self._site_scope = 0
        self._after: list[tuple] = []  # (on_commit, on_rollback) of the open transaction
        self._writer_depth = 0
        self._writer_fd: int | None = None
        # PostgreSQL bulk loads: tables deleted whole in the open transaction, the keys
        # inserted into them since, and the inserts not yet sent (see insert())
        self._emptied: dict[str, set[tuple]] = {}
        self._pending: list[tuple[str, tuple[str, ...], list[list[str | None]]]] = []
        self._npending = 0
        self._staged_keys: list[str] | None = None  # in _nodemgr_keys (delete_any)
        if url.startswith("sqlite:"):
            self.dialect = "sqlite"
            self._ph = "?"
            self._conn = self._open_sqlite(url)
        elif url.startswith(("postgresql:", "postgres:")):
            self.dialect = "postgresql"
            self._ph = "%s"
            self._conn = self._open_pg(url)
        else:
            raise ConfigError(f"unsupported database URL {mask_url(url)!r} "
                              "(use sqlite:///path or postgresql://...)")
        self._ensure_schema()

    # -- connection ---------------------------------------------------------------
    @staticmethod
    def _open_sqlite(url: str) -> sqlite3.Connection:
        path = url[len("sqlite:"):]
        path = path[3:] if path.startswith("///") else path.lstrip("/")
        if path in ("", ":memory:"):
            path = ":memory:"
        else:
            parent = os.path.dirname(os.path.abspath(path))
            try:
                os.makedirs(parent, exist_ok=True)
                # a new database file is the owner's only (it holds passwd rows and token
                # hashes); SQLite gives its -wal and -shm files the same mode
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                pass
            except OSError as exc:
                raise ConfigError(f"cannot create database {path}: {exc}") from None
        try:
            conn = sqlite3.connect(path, timeout=30.0, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=30000")
            if path != ":memory:":
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
                if mode.lower() != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open database {url}: {exc}") from None
        return conn

    @staticmethod
    def _open_pg(url: str):
        try:
            import psycopg
        except ImportError:
            raise ConfigError("PostgreSQL URL given but psycopg is not installed "
                              "(pip install 'psycopg[binary]')") from None
        try:
            return psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            # psycopg/libpq echo a malformed URL (with its password) in their messages
            raise ConfigError(f"cannot open database {mask_url(url)}: "
                              f"{redact(first, url)}") from None

    def close(self) -> None:
        """Close the connection (and the writer lock file)."""
        self._conn.close()
        if self._writer_fd is not None:
            os.close(self._writer_fd)
            self._writer_fd = None

    # -- schema -------------------------------------------------------------------
    def _existing_tables(self) -> set[str]:
        if self.dialect == "sqlite":
            cur = self._conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        else:
            cur = self._conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        return {r[0] for r in cur.fetchall()}

    def _stamp(self) -> int | None:
        """The schema stamp recorded in the database (None when never stamped)."""
        if self.dialect == "sqlite":
            return self._conn.execute("PRAGMA user_version").fetchone()[0] or None
        row = self._exec("SELECT obj_description(to_regclass('site'), 'pg_class')").fetchone()
        text = row[0] if row else None
        return int(text.split(":", 1)[1]) if text and text.startswith("nodemgr:") else None

    def _columns_of(self, name: str) -> set[str]:
        if self.dialect == "sqlite":
            return {r[1] for r in self._conn.execute(f"PRAGMA table_info({_q(name)})")}
        cur = self._exec("SELECT column_name FROM information_schema.columns "
                         "WHERE table_schema = current_schema() AND table_name = ?", [name])
        return {r[0] for r in cur.fetchall()}

    def _ensure_schema(self) -> None:
        """Create missing tables (with their default rows) and add missing columns.

        A stamp of the schema (``PRAGMA user_version`` on SQLite, a comment on the ``site``
        table on PostgreSQL) makes this one cheap query when nothing changed."""
        if self._stamp() == SCHEMA_STAMP:
            return
        with self.transaction():
            have = self._existing_tables()
            for t in TABLES.values():
                if t.name in have:
                    for c in t.columns:
                        if c not in self._columns_of(t.name):
                            self._exec(f"ALTER TABLE {_q(t.name)} ADD COLUMN {_q(c)} TEXT")
                    continue
                cols = [f"{_q(c)} TEXT{' NOT NULL' if c in t.keys else ''}" for c in t.columns]
                if self.dialect == "postgresql":
                    cols.append("_seq BIGSERIAL")
                cols.append(f"PRIMARY KEY ({', '.join(_q(k) for k in t.keys)})")
                self._exec(f"CREATE TABLE {_q(t.name)} ({', '.join(cols)})")
                for row in self._default_rows(t.name):
                    self.insert(t.name, row)
            for t in TABLES.values():
                for c in t.intindex:
                    self._exec(f"CREATE INDEX IF NOT EXISTS {_q(f'{t.name}_{c}_int')} "
                               f"ON {_q(t.name)} (({self._int_expr(c)}))")
            if self.dialect == "sqlite":
                self._exec(f"PRAGMA user_version = {SCHEMA_STAMP}")
            else:
                self._exec(f"COMMENT ON TABLE site IS 'nodemgr:{SCHEMA_STAMP}'")

    @staticmethod
    def _default_rows(name: str) -> list[dict[str, str]]:
        """A new table's rows: :data:`DEFAULT_ROWS`; for ``site`` overlaid with the
        configuration file's keys (``tftpdir``, ``installdir``, ``master``, ...)."""
        rows = DEFAULT_ROWS.get(name, [])
        if name != "site":
            return rows
        from nodemgr import config

        seed = dict(config.load().site_seed)
        out = [{"key": r["key"], "value": seed.pop(r["key"], r["value"])} for r in rows]
        return out + [{"key": k, "value": v} for k, v in sorted(seed.items())]

    # -- transactions ---------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[Store]:
        """All-or-nothing block; nested blocks join the outermost one.

        SQLite takes the write lock at the start (``BEGIN IMMEDIATE``) so concurrent
        commands serialise instead of failing at commit.
        """
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self._exec("BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN")
        self._depth = 1
        self._after = []
        try:
            yield self
        except BaseException:
            self._depth = 0
            self._site = None  # it may hold values this transaction wrote
            self._end_bulk()
            try:
                self._exec("ROLLBACK")
            finally:
                self._run_after(1)
            raise
        self._depth = 0
        try:
            try:
                self._flush()
            finally:
                self._end_bulk()
            self._exec("COMMIT")
        except TableError:
            self._site = None
            with contextlib.suppress(TableError):  # SQLite keeps a failed COMMIT's transaction
                self._exec("ROLLBACK")
            self._run_after(1)
            raise
        self._run_after(0)

    @contextlib.contextmanager
    def writer_lock(self) -> Iterator[Store]:
        """Queue behind every other process's writer lock on the same database, for writers
        whose work continues after their commit (``nodeset`` renames boot files into place
        then): held from before the transaction until after that work, it keeps two
        writers' files in the order of their commits. Re-entrant within this store.

        SQLite: ``flock`` on ``<database>.writer.lock`` (a blocking ``flock`` also wakes the
        next waiter at once, where SQLite's busy handler sleeps up to 100 ms between polls);
        PostgreSQL: a session-level advisory lock; an in-memory database: nothing to order.

        Raises:
            TableError: the lock file cannot be opened, or a database error.
        """
        if self._writer_depth:
            self._writer_depth += 1
            try:
                yield self
            finally:
                self._writer_depth -= 1
            return
        key = zlib.crc32(b"nodemgr writer") & 0x7FFFFFFF
        if self.dialect == "sqlite":
            path = self._writer_lock_path()
            if path is not None and self._writer_fd is None:
                try:
                    self._writer_fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
                except OSError as exc:
                    raise TableError(f"cannot open {path}: {exc.strerror}") from None
            if self._writer_fd is not None:
                fcntl.flock(self._writer_fd, fcntl.LOCK_EX)
        else:
            self._exec("SELECT pg_advisory_lock(?)", [key])
        self._writer_depth = 1
        try:
            yield self
        finally:
            self._writer_depth = 0
            if self.dialect == "sqlite":
                if self._writer_fd is not None:
                    fcntl.flock(self._writer_fd, fcntl.LOCK_UN)
            else:
                self._exec("SELECT pg_advisory_unlock(?)", [key])

    def _writer_lock_path(self) -> str | None:
        for row in self._conn.execute("PRAGMA database_list"):
            if row[1] == "main":
                return row[2] + ".writer.lock" if row[2] else None
        return None

    @property
    def in_transaction(self) -> bool:
        """True inside :meth:`transaction` (a new block would join the open one)."""
        return self._depth > 0

    def after(self, on_commit=None, on_rollback=None) -> None:
        """Run *on_commit* once the open transaction commits, or *on_rollback* if it rolls
        back (either may be None). Both are called without arguments, after the database
        has finished, in registration order; what they raise propagates. For work outside
        the database that must follow the tables' fate (boot files: written under
        temporary names first, renamed into place only after the commit).

        Raises:
            TableError: no transaction is open.
        """
        if not self._depth:
            raise TableError("after() needs an open transaction")
        self._after.append((on_commit, on_rollback))

    def _run_after(self, which: int) -> None:
        hooks, self._after = self._after, []
        for pair in hooks:
            if pair[which] is not None:
                pair[which]()

    #: Rows collected by :meth:`insert` (PostgreSQL bulk load) before they are sent.
    BULK_ROWS = 20_000

    def _writing(self, name: str) -> None:
        """Before any write to table *name* other than a collected insert: the site copy is
        stale, and the table's collected keys no longer describe it."""
        if name == "site":
            self._site = None
        if self._emptied:
            self._emptied.pop(name, None)

    def _end_bulk(self) -> None:
        self._staged_keys = None  # its ON COMMIT DROP table goes with the transaction
        self._emptied = {}
        self._pending = []
        self._npending = 0

    def _flush(self) -> None:
        """Send the rows :meth:`insert` collected: one ``COPY`` per run of rows of the same
        table and columns, in insertion order (so ``_seq`` keeps it)."""
        if not self._pending:
            return
        pending, self._pending, self._npending = self._pending, [], 0
        for name, cols, rows in pending:
            self._copy_in(_q(name), cols, rows)

    def _copy_in(self, target: str, cols: tuple[str, ...] | list[str], rows) -> None:
        """``COPY target (cols) FROM STDIN`` of *rows* (sequences of str or None)."""
        try:
            with self._conn.cursor() as cur, cur.copy(
                    f"COPY {target} ({', '.join(_q(c) for c in cols)}) FROM STDIN") as cp:
                for r in rows:
                    cp.write_row(r)
        except Exception as exc:  # psycopg.Error
            raise TableError(f"database error: {str(exc).strip().splitlines()[0]}") from None

    def _exec(self, sql: str, params: Iterable[Any] = ()):
        if self._pending:
            self._flush()
        try:
            return self._conn.execute(sql.replace("?", self._ph), tuple(params))
        except Exception as exc:  # sqlite3.Error or psycopg.Error
            if self.dialect == "postgresql" and self._depth == 0:
                pass
            raise TableError(f"database error: {str(exc).strip().splitlines()[0]}") from None

    # -- reads --------------------------------------------------------------------------
    def select(self, name: str, where: Mapping[str, str | None] | None = None, *,
               include_disabled: bool = False, any_of: tuple[str, Iterable[str]] | None = None,
               columns: Iterable[str] | None = None) -> list[Row]:
        """Rows of table *name* in insertion order.

        Args:
            name: table name.
            where: column -> value equality filter (None matches NULL).
            include_disabled: also return rows whose ``disable`` is set (tabdump only).
            any_of: ``(column, values)``: only rows whose column is one of *values*.
            columns: only these columns (``disable`` is always read); default all.
        Returns:
            A list of dicts column -> str or None.
        Raises:
            TableError: unknown table or column.
        """
        where_items = list(where.items()) if where else []
        params = [v for _, v in where_items if v is not None]
        shape = (name, None if columns is None else tuple(columns),
                 tuple((c, v is None) for c, v in where_items))
        if any_of is None:
            sql, cols = self._select_sql(shape, None, 0)
            raw = self._run(sql, params).fetchall()
        else:
            col, values = any_of
            values = list(dict.fromkeys(values))
            raw = []
            for i in range(0, len(values), 500):
                chunk = values[i:i + 500]
                sql, cols = self._select_sql(shape, col, len(chunk))
                raw.extend(self._run(sql, params + chunk).fetchall())
            if not values:
                sql, cols = self._select_sql(shape, col, 0)
        rows = [dict(zip(cols, r, strict=True)) for r in raw]
        if not include_disabled:
            rows = [r for r in rows if not is_disabled(r["disable"])]
        return rows

    def distinct(self, name: str, column: str) -> list[str | None]:
        """The distinct values of *column* among the enabled rows of table *name* (one
        ``SELECT DISTINCT`` in SQL, no order promised).

        Raises:
            TableError: unknown table or column, database error.
        """
        t = table(name)
        t.check_column(column)
        if column == "disable":
            sql = f"SELECT DISTINCT {_q(column)} FROM {_q(t.name)}"
            return [r[0] for r in self._run(sql, []).fetchall() if not is_disabled(r[0])]
        sql = f"SELECT DISTINCT {_q(column)}, {_q('disable')} FROM {_q(t.name)}"
        return list(dict.fromkeys(r[0] for r in self._run(sql, []).fetchall()
                                  if not is_disabled(r[1])))

    #: Above this many key values in one batch, :meth:`select_batch` falls back to one
    #: :meth:`select` per table (SQLite allows 32,766 parameters, PostgreSQL 65,535).
    BATCH_MAX_KEYS = 2000

    def select_batch(self, requests: Iterable[tuple[str, str | None, Iterable[str] | None]]
                     ) -> list[list[Row]]:
        """Several tables' enabled rows in one statement (``UNION ALL``), for a request
        that needs a little of many tables (the install-finished callback resolves ~10):
        one round trip and one statement instead of one each.

        Args:
            requests: ``(table, key column, key values)`` each; values None = whole table,
                else only rows whose key column is one of them (an empty list reads none).
        Returns:
            One list of rows per request, in request order; rows as :meth:`select` returns
            them (every column, insertion order, disabled rows left out).
        Raises:
            TableError: unknown table or column, database error.
        """
        reqs = [(name, col, None if vals is None else list(dict.fromkeys(vals)))
                for name, col, vals in requests]
        if sum(len(v) for _, _, v in reqs if v) > self.BATCH_MAX_KEYS or len(reqs) < 2:
            return [self.select(n, any_of=None if v is None else (c, v)) for n, c, v in reqs]
        if any(v is None for _, _, v in reqs):
            # whole tables (thousands of rows) read alone, in rowid order without a sort of
            # the union; the keyed rest still in one statement
            keyed = [r for r in reqs if r[2] is not None]
            rest = iter(self.select_batch(keyed) if len(keyed) > 1 else
                        [self.select(n, any_of=(c, v)) for n, c, v in keyed])
            return [self.select(n) if v is None else next(rest) for n, c, v in reqs]
        shape = tuple((n, c, None if v is None else len(v)) for n, c, v in reqs)
        hit = self._sql_cache.get(("batch", shape))
        if hit is None:
            width = max(len(table(n).columns) for n, _, _ in reqs)
            order = "rowid" if self.dialect == "sqlite" else "_seq"
            parts = []
            for i, (n, c, count) in enumerate(shape):
                t = table(n)
                cols = [_q(x) for x in t.columns] + ["NULL"] * (width - len(t.columns))
                where = ""
                if count is not None:
                    t.check_column(c)
                    where = (f" WHERE {_q(c)} IN ({', '.join('?' * count)})" if count
                             else " WHERE 1 = 0")
                parts.append(f"SELECT {i}, {order}, {', '.join(cols)} FROM {_q(t.name)}{where}")
            sql = " UNION ALL ".join(parts) + " ORDER BY 1, 2"
            hit = (sql.replace("?", self._ph), [table(n).columns for n, _, _ in reqs])
            self._sql_cache[("batch", shape)] = hit
        sql, columns = hit
        out: list[list[Row]] = [[] for _ in reqs]
        for r in self._run(sql, [x for _, _, v in reqs if v for x in v]).fetchall():
            cols = columns[r[0]]
            row = dict(zip(cols, r[2:2 + len(cols)], strict=True))
            if not is_disabled(row["disable"]):
                out[r[0]].append(row)
        return out

    def _select_sql(self, shape: tuple, any_col: str | None, n_any: int
                    ) -> tuple[str, list[str]]:
        """SQL text (in this dialect's parameter style) and column list for a select of
        *shape* ``(table, columns or None, ((where column, is None), ...))`` with an
        ``IN`` list of *n_any* values on *any_col*. Built and validated once per shape:
        a callback runs ~20 selects, and building their text was most of their cost."""
        key = (shape, any_col, n_any)
        hit = self._sql_cache.get(key)
        if hit is not None:
            return hit
        name, columns, where_sig = shape
        t = table(name)
        cols = list(t.columns) if columns is None else list(dict.fromkeys(columns))
        for c in cols:
            t.check_column(c)
        if "disable" not in cols:
            cols.append("disable")
        parts = []
        for c, is_none in where_sig:
            t.check_column(c)
            parts.append(f"{_q(c)} IS NULL" if is_none else f"{_q(c)} = ?")
        if any_col is not None:
            t.check_column(any_col)
            if n_any:
                parts.append(f"{_q(any_col)} IN ({', '.join('?' for _ in range(n_any))})")
        order = "rowid" if self.dialect == "sqlite" else "_seq"
        sql = (f"SELECT {', '.join(_q(c) for c in cols)} FROM {_q(t.name)}"
               + (" WHERE " + " AND ".join(parts) if parts else "") + f" ORDER BY {order}")
        hit = (sql.replace("?", self._ph), cols)
        self._sql_cache[key] = hit
        return hit

    def _run(self, sql: str, params: list[Any]):
        """Execute SQL already in this dialect's parameter style."""
        if self._pending:
            self._flush()
        try:
            return self._conn.execute(sql, tuple(params))
        except Exception as exc:  # sqlite3.Error or psycopg.Error
            raise TableError(f"database error: {str(exc).strip().splitlines()[0]}") from None

    @contextlib.contextmanager
    def site_cache(self) -> Iterator[Store]:
        """Within the block, read the site table once and answer :meth:`site` from that
        copy (writes to it through this store, and a rollback, drop the copy)."""
        self._site_scope += 1
        try:
            yield self
        finally:
            self._site_scope -= 1
            if not self._site_scope:
                self._site = None

    def get(self, name: str, key: Mapping[str, str]) -> Row | None:
        """The enabled row of *name* whose key columns equal *key*, or None."""
        rows = self.select(name, key)
        return rows[0] if rows else None

    def site(self, key: str, default: str | None = None) -> str | None:
        """Value of ``site.<key>`` (enabled rows only), else *default*.

        Inside :meth:`site_cache` the site table is read once for the whole block (a
        callback reads ~10 keys); outside it every call reads the database, so a change made
        by another process is seen at once."""
        if self._site_scope:
            if self._site is None:
                self._site = {}
                for r in self.select("site"):
                    self._site.setdefault(r["key"], r["value"])
            value = self._site.get(key)
        else:
            row = self.get("site", {"key": key})
            value = row["value"] if row else None
        return default if value in (None, "") else value

    def _int_expr(self, column: str) -> str:
        """SQL for the integer value of text *column*: SQLite's ``CAST`` (the leading digits,
        0 for none); on PostgreSQL digits-only values (others NULL), since its ``CAST``
        fails on non-numeric text. The same text builds the index and queries it."""
        col = _q(column)
        if self.dialect == "sqlite":
            return f"CAST({col} AS INTEGER)"
        return f"CASE WHEN {col} ~ '^[0-9]{{1,18}}$' THEN CAST({col} AS BIGINT) END"

    def max_int(self, name: str, column: str) -> int:
        """The largest integer value of *column* in table *name* (disabled rows included),
        or 0 when there is none or it is negative; values without leading digits count as
        0. One index lookup when the schema declares *column* in ``intindex`` (else one
        scan in SQL, never in Python)."""
        t = table(name)
        t.check_column(column)
        row = self._exec(f"SELECT MAX({self._int_expr(column)}) FROM {_q(t.name)}").fetchone()
        return max(int(row[0]), 0) if row and row[0] is not None else 0

    def next_int(self, name: str, column: str) -> int:
        """``max_int + 1``, for a row the caller inserts in the same transaction: on
        PostgreSQL, concurrent transactions queue on a transaction-level advisory lock named
        after *name*.*column* until the holder commits (SQLite's ``BEGIN IMMEDIATE`` write
        lock already does that), so two commands never take the same number.

        Raises:
            TableError: called outside :meth:`transaction`, or a database error.
        """
        if not self._depth:
            raise TableError(f"next_int({name}.{column}) needs an open transaction")
        if self.dialect == "postgresql":
            self._exec("SELECT pg_advisory_xact_lock(?)",
                       [zlib.crc32(f"{name}.{column}".encode()) & 0x7FFFFFFF])
        return self.max_int(name, column) + 1

    # -- writes -------------------------------------------------------------------------
    def insert(self, name: str, row: Mapping[str, str | None]) -> None:
        """Insert one row; unknown columns raise TableError, a duplicate key too.

        On PostgreSQL, inside a transaction that deleted the whole table first
        (``delete(name)``, what ``tabrestore`` does), rows are collected and sent with
        ``COPY`` in batches of BULK_ROWS (one round trip per batch instead of one per row):
        the keys inserted since the delete are tracked here, so a duplicate key still
        raises at the insert that repeats it, with PostgreSQL's message. Any other
        statement on the connection sends the collected rows first."""
        t = table(name)
        keys = self._emptied.get(name)
        if keys is not None:
            cols = tuple(row)
            key = tuple(row.get(k) for k in t.keys)
            if None not in key:
                if name == "site":
                    self._site = None
                checked = self._pending[-1][:2] == (name, cols) if self._pending else False
                if not checked:
                    for c in cols:
                        t.check_column(c)
                if key in keys:
                    raise TableError("database error: duplicate key value violates unique "
                                     f'constraint "{t.name}_pkey"')
                keys.add(key)
                if checked:
                    self._pending[-1][2].append([row[c] for c in cols])
                else:
                    self._pending.append((name, cols, [[row[c] for c in cols]]))
                self._npending += 1
                if self._npending >= self.BULK_ROWS:
                    self._flush()
                return
        self._writing(name)
        cols = list(row)
        for c in cols:
            t.check_column(c)
        self._exec(f"INSERT INTO {_q(t.name)} ({', '.join(_q(c) for c in cols)}) "
                   f"VALUES ({', '.join('?' for _ in cols)})", [row[c] for c in cols])

    def upsert(self, name: str, key: Mapping[str, str], values: Mapping[str, str | None]) -> None:
        """Set *values* on the row identified by *key*, creating the row if needed.

        Columns not named in *values* keep their value (or stay NULL on a new row).
        """
        self._writing(name)
        t = table(name)
        for c in list(key) + list(values):
            t.check_column(c)
        if sorted(key) != sorted(t.keys):
            raise TableError(f"table {name} is keyed by {','.join(t.keys)}")
        cols = list(key) + [c for c in values if c not in key]
        params = [key[c] if c in key else values[c] for c in cols]
        self._exec(self._upsert_sql(t, cols), params)

    def _upsert_sql(self, t: TableSchema, cols: list[str]) -> str:
        """``INSERT .. ON CONFLICT (keys) DO UPDATE`` of *cols* (key columns included);
        built once per table and column list."""
        key = ("upsert", t.name, tuple(cols))
        sql = self._sql_cache.get(key)
        if sql is None:
            sets = [c for c in cols if c not in t.keys]
            conflict = ", ".join(_q(k) for k in t.keys)
            action = ("DO UPDATE SET " + ", ".join(f"{_q(c)} = excluded.{_q(c)}" for c in sets)
                      if sets else "DO NOTHING")
            sql = self._sql_cache[key] = (
                f"INSERT INTO {_q(t.name)} ({', '.join(_q(c) for c in cols)}) "
                f"VALUES ({', '.join('?' for _ in cols)}) ON CONFLICT ({conflict}) {action}")
        return sql

    def upsert_many(self, name: str, rows: Iterable[Mapping[str, str | None]]) -> int:
        """:meth:`upsert` for many rows, sent with ``executemany`` (one prepared statement
        per run of rows naming the same columns, instead of one round trip per row).

        Same semantics as calling ``upsert(name, {keys of row}, {other columns of row})``
        for each row in order: columns a row does not name keep their value (NULL on a new
        row), and a later row for the same key wins. Joins the caller's transaction; call it
        inside one for all-or-nothing (a failure part-way leaves the earlier runs written
        otherwise, exactly like a loop of ``upsert``).

        Args:
            name: table name.
            rows: mappings column -> str or None, each naming every key column of the table.
        Returns:
            How many rows were given.
        Raises:
            TableError: unknown table or column, a row missing a key column, or the
                database refused a statement (nothing of that statement's run written).
        """
        self._writing(name)
        t = table(name)
        keyset = set(t.keys)
        n = 0
        run_cols: tuple[str, ...] | None = None
        batch: list[list[str | None]] = []
        checked: set[tuple[str, ...]] = set()
        for row in rows:
            cols = tuple(row)
            if cols not in checked:
                for c in cols:
                    t.check_column(c)
                if not keyset <= set(cols):
                    raise TableError(f"table {name} is keyed by {','.join(t.keys)}")
                checked.add(cols)
            if cols != run_cols:
                if batch:
                    self._upsert_run(t, run_cols, batch)
                run_cols, batch = cols, []
            batch.append(list(row.values()))  # (in the order of cols = tuple(row))
            n += 1
        if batch:
            self._upsert_run(t, run_cols, batch)
        return n

    #: Most parameters in one multi-row statement on PostgreSQL (its limit is 65,535).
    PG_MAX_PARAMS = 30_000

    def _upsert_run(self, t: TableSchema, cols: tuple[str, ...], batch: list[list]) -> None:
        """Upsert rows *batch* (values of *cols*): ``executemany`` on SQLite (in-process,
        no round trips); on PostgreSQL multi-row ``INSERT ... VALUES (..), (..) ON
        CONFLICT`` statements of up to PG_MAX_PARAMS parameters, so a batch costs a few
        round trips instead of one per row. A statement never holds the same key twice
        (PostgreSQL refuses that): a repeated key starts the next statement, so the later
        row still wins."""
        if self.dialect == "sqlite":
            self._execmany(self._upsert_sql(t, list(cols)), batch)
            return
        if len(batch) >= self.STAGE_MIN:
            self._upsert_staged(t, cols, batch)
            return
        per = max(1, min(1000, self.PG_MAX_PARAMS // len(cols)))
        kidx = [cols.index(k) for k in t.keys]
        start = 0
        while start < len(batch):
            seen: set[tuple] = set()
            end = start
            while end < len(batch) and end - start < per:
                k = tuple(batch[end][i] for i in kidx)
                if k in seen:
                    break
                seen.add(k)
                end += 1
            rows = batch[start:end]
            self._run(self._upsert_sql_multi(t, cols, len(rows)),
                      [v for r in rows for v in r])
            start = end

    #: From this many rows, a PostgreSQL upsert run goes through a staging table.
    STAGE_MIN = 200

    def _upsert_staged(self, t: TableSchema, cols: tuple[str, ...], batch: list[list]) -> None:
        """PostgreSQL: ``COPY`` *batch* into a temporary table, then one ``UPDATE ... FROM``
        of the rows that exist and one ``INSERT ... SELECT ... WHERE NOT EXISTS`` of the
        others, in batch order: a few round trips whatever the size, and no per-row
        speculative insertion (``ON CONFLICT`` costs about twice a plain insert). Should a
        concurrent transaction insert one of the keys in between, the insert is rolled
        back to a savepoint and done again as ``INSERT ... ON CONFLICT DO UPDATE``. A key
        given twice keeps its first place and its last values (what a loop of
        :meth:`upsert` leaves; one statement may not change a row twice)."""
        kidx = [cols.index(k) for k in t.keys]
        last: dict[tuple, list] = {}
        for r in batch:
            last[tuple(r[i] for i in kidx)] = r
        stage, target = "_nodemgr_stage", _q(t.name)
        names = ", ".join(_q(c) for c in cols)
        match = " AND ".join(f"{target}.{_q(k)} = s.{_q(k)}" for k in t.keys)
        sets = [c for c in cols if c not in t.keys]
        insert = (f"INSERT INTO {target} ({names}) SELECT {names} FROM {stage} AS s WHERE NOT "
                  f"EXISTS (SELECT 1 FROM {target} WHERE {match}) ORDER BY _ord")
        with self.transaction():
            self._run(f"CREATE TEMP TABLE {stage} ({', '.join(f'{_q(c)} TEXT' for c in cols)}, "
                      "_ord BIGINT) ON COMMIT DROP", [])
            self._copy_in(stage, (*cols, "_ord"),
                          ((*r, i) for i, r in enumerate(last.values())))
            if sets:
                self._run(f"UPDATE {target} SET "
                          + ", ".join(f"{_q(c)} = s.{_q(c)}" for c in sets)
                          + f" FROM {stage} AS s WHERE {match}", [])
            self._run("SAVEPOINT _nodemgr_upsert", [])
            try:
                self._run(insert, [])
            except TableError:  # a key inserted meanwhile by another transaction
                self._run("ROLLBACK TO SAVEPOINT _nodemgr_upsert", [])
                conflict = self._upsert_sql(t, list(cols)).split(" ON CONFLICT ", 1)[1]
                self._run(f"INSERT INTO {target} ({names}) SELECT {names} FROM {stage} "
                          f"ORDER BY _ord ON CONFLICT {conflict}", [])
            self._run("RELEASE SAVEPOINT _nodemgr_upsert", [])
            self._run(f"DROP TABLE {stage}", [])

    def _upsert_sql_multi(self, t: TableSchema, cols: tuple[str, ...], nrows: int) -> str:
        key = ("upsert_multi", t.name, cols, nrows)
        sql = self._sql_cache.get(key)
        if sql is None:
            one = "(" + ", ".join(self._ph for _ in cols) + ")"
            single = self._upsert_sql(t, list(cols)).replace("?", self._ph)
            head, _, tail = single.partition(" VALUES ")
            tail = tail.split(") ON CONFLICT ", 1)[1]
            sql = self._sql_cache[key] = (f"{head} VALUES {', '.join([one] * nrows)} "
                                          f"ON CONFLICT {tail}")
        return sql

    def delete_many(self, name: str, keys: Iterable[Mapping[str, str]]) -> None:
        """Delete the row of each key in *keys* (``executemany``; a missing row is no error).

        Args:
            name: table name.
            keys: mappings naming exactly the table's key columns, each value a string.
        Raises:
            TableError: unknown table, a mapping that is not the table's key, or a
                database error.
        """
        self._writing(name)
        t = table(name)
        cols = list(t.keys)
        params = []
        for k in keys:
            if len(k) != len(cols) or any(k.get(c) is None for c in cols):
                raise TableError(f"table {name} is keyed by {','.join(t.keys)}")
            params.append([k[c] for c in cols])
        if params:
            where = " AND ".join(f"{_q(c)} = ?" for c in cols)
            self._execmany(f"DELETE FROM {_q(t.name)} WHERE {where}", params)

    #: Values per ``IN (...)`` list of :meth:`delete_any` (SQLite allows 32,766 parameters).
    IN_CHUNK = 1000

    def delete_any(self, name: str, column: str, values: Iterable[str]) -> int:
        """Delete every row (disabled ones too) whose *column* is one of *values*: one
        ``DELETE ... WHERE column IN (...)`` per IN_CHUNK values on SQLite; on PostgreSQL
        one ``DELETE ... WHERE column = ANY(array)``, or from STAGE_MIN values on, the
        values ``COPY``-ed once per transaction into a temporary table that every
        ``delete_any`` of the same values reuses (``noderm`` deletes from ~20 tables);
        returns how many rows.
        Joins the caller's transaction (call it inside one for all-or-nothing).

        Raises:
            TableError: unknown table or column, database error.
        """
        self._writing(name)
        t = table(name)
        t.check_column(column)
        values = list(dict.fromkeys(values))
        if self.dialect == "postgresql":
            if not values:
                return 0
            if len(values) < self.STAGE_MIN:  # one statement, the keys as one text[]
                return max(self._run(f"DELETE FROM {_q(t.name)} WHERE {_q(column)} = ANY(%s)",
                                     [values]).rowcount, 0)
            with self.transaction():  # keys staged once for every table of the transaction
                if self._staged_keys != values:
                    if self._staged_keys is None:
                        self._run("CREATE TEMP TABLE _nodemgr_keys (k TEXT) ON COMMIT DROP", [])
                    else:
                        self._run("TRUNCATE _nodemgr_keys", [])
                    self._copy_in("_nodemgr_keys", ("k",), ((v,) for v in values))
                    self._run("ANALYZE _nodemgr_keys", [])
                    self._staged_keys = values
                return max(self._run(f"DELETE FROM {_q(t.name)} WHERE {_q(column)} IN "
                                     "(SELECT k FROM _nodemgr_keys)", []).rowcount, 0)
        n = 0
        for i in range(0, len(values), self.IN_CHUNK):
            chunk = values[i:i + self.IN_CHUNK]
            key = ("delete_any", t.name, column, len(chunk))
            sql = self._sql_cache.get(key)
            if sql is None:
                sql = self._sql_cache[key] = (
                    f"DELETE FROM {_q(t.name)} WHERE {_q(column)} IN "
                    f"({', '.join(self._ph for _ in chunk)})")
            n += max(self._run(sql, chunk).rowcount, 0)
        return n

    def _execmany(self, sql: str, params_seq: list[list[Any]]) -> None:
        if self._pending:
            self._flush()
        sql = sql.replace("?", self._ph)
        try:
            if self.dialect == "sqlite":
                self._conn.executemany(sql, params_seq)
            else:
                with self._conn.cursor() as cur:
                    cur.executemany(sql, params_seq)
        except Exception as exc:  # sqlite3.Error or psycopg.Error
            raise TableError(f"database error: {str(exc).strip().splitlines()[0]}") from None

    def update(self, name: str, where: Mapping[str, str | None] | None,
               values: Mapping[str, str | None]) -> int:
        """Set *values* on every row matching *where* (disabled rows too; all rows when
        *where* is empty); returns how many rows changed. Unknown columns raise TableError."""
        self._writing(name)
        t = table(name)
        for c in values:
            t.check_column(c)
        if not values:
            return 0
        sets = ", ".join(f"{_q(c)} = ?" for c in values)
        clause, params = self._where(t, where)
        cur = self._exec(f"UPDATE {_q(t.name)} SET {sets}{clause}",
                         [values[c] for c in values] + params)
        return cur.rowcount

    def delete(self, name: str, where: Mapping[str, str | None] | None = None) -> int:
        """Delete rows matching *where* (all rows when None); returns how many."""
        self._writing(name)
        t = table(name)
        clause, params = self._where(t, where)
        cur = self._exec(f"DELETE FROM {_q(t.name)}{clause}", params)
        if not clause and self._depth and self.dialect == "postgresql":
            self._emptied[t.name] = set()  # inserts that follow are collected (insert())
        return cur.rowcount

    def _where(self, t: TableSchema, where: Mapping[str, str | None] | None):
        if not where:
            return "", []
        parts, params = [], []
        for c, v in where.items():
            t.check_column(c)
            if v is None:
                parts.append(f"{_q(c)} IS NULL")
            else:
                parts.append(f"{_q(c)} = ?")
                params.append(v)
        return " WHERE " + " AND ".join(parts), params


#: ``password=value`` in a URL query or a libpq keyword string (value quoted or not).
_PASSWORD_PARAM = re.compile(r"(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&#]*)")


def _url_secrets(url: str) -> list[str]:
    """Every spelling of a password *url* may hold, longest first: the userinfo's (RFC 3986
    authority, and the looser "up to the last @" reading libpq or a typo may give it),
    each ``password=`` parameter, raw and percent-decoded."""
    found: set[str] = set()
    rest = url.split("://", 1)[1] if "://" in url else ""
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    for cred in (authority.rsplit("@", 1)[0] if "@" in authority else "",
                 rest.rsplit("@", 1)[0] if "@" in rest else ""):
        if ":" in cred:
            found.add(cred.split(":", 1)[1])
    for m in _PASSWORD_PARAM.finditer(url):
        value = m.group(2)
        found.add(value)
        if value.startswith("'") and value.endswith("'") and len(value) > 1:
            found.add(value[1:-1])
    found |= {urllib.parse.unquote(v) for v in found}
    return sorted((v for v in found if v), key=len, reverse=True)


def mask_url(url: str) -> str:
    """Return *url* with any password replaced by ``***`` (for messages and output):
    ``postgresql://user:***@host/db``, ``?password=***``, ``password=*** host=...``."""
    out = url
    if "://" in url:
        scheme, rest = url.split("://", 1)
        cut = re.search(r"[/?#]", rest)
        authority, tail = (rest[:cut.start()], rest[cut.start():]) if cut else (rest, "")
        if "@" in authority:
            cred, host = authority.rsplit("@", 1)
            if ":" in cred:
                cred = cred.split(":", 1)[0] + ":***"
            authority = f"{cred}@{host}"
        out = f"{scheme}://{authority}{tail}"
    out = _PASSWORD_PARAM.sub(r"\1***", out)
    return redact(out, url)


def redact(text: str, url: str) -> str:
    """Return *text* (an error message, a log line) with every password of *url* replaced
    by ``***`` (so an echo of *url* itself is masked too). libpq and psycopg echo parts
    of a malformed URL in quotes (``invalid integer value "pw" for ... "port"``): a quoted
    piece of 3 characters or more that is part of a password is replaced too."""
    secrets = _url_secrets(url)
    if not secrets:
        return text
    for secret in secrets:
        text = text.replace(secret, "***")

    def quoted(m: re.Match) -> str:
        inner = m.group(2)
        if len(inner) >= 3 and any(inner in s for s in secrets):
            return f"{m.group(1)}***{m.group(1)}"
        return m.group(0)
    return re.sub(r"([\"'])([^\"']*)\1", quoted, text)


_default: Store | None = None


def open_default() -> Store:
    """Open (once per process) the store named by the configuration / ``$NODEMGR_DB``."""
    global _default
    if _default is None:
        from nodemgr import config

        _default = Store(config.load().db_url)
    return _default
