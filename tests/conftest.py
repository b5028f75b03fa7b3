"""Shared fixtures: a fresh table store on SQLite and on the real PostgreSQL server.

PostgreSQL tests use the server ``scripts/setup-host`` starts (database ``nodemgr_test``);
each test gets its own schema, dropped afterwards. ``$NODEMGR_TEST_PG`` overrides the base
URL. When the server is not reachable the PostgreSQL variants fail (they are never skipped
in CI: ``.ci/run`` sets ``NODEMGR_REQUIRE_ALL=1``).
"""

from __future__ import annotations

import os
import uuid

import pytest

from nodemgr.tables.store import Store

PG_BASE = os.environ.get("NODEMGR_TEST_PG", "postgresql:///nodemgr_test")
REQUIRE_ALL = os.environ.get("NODEMGR_REQUIRE_ALL") == "1"


def _pg_url(schema: str) -> str:
    sep = "&" if "?" in PG_BASE else "?"
    return f"{PG_BASE}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_url():
    """URL of a fresh, empty PostgreSQL schema (dropped after the test)."""
    psycopg = pytest.importorskip("psycopg")
    schema = "t_" + uuid.uuid4().hex[:12]
    try:
        admin = psycopg.connect(PG_BASE, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        if REQUIRE_ALL:
            raise
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield _pg_url(schema)
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A database URL for a fresh store, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/nodemgr.sqlite"
    else:
        yield request.getfixturevalue("pg_url")


@pytest.fixture
def store(db_url):
    """A fresh :class:`Store` with schema and default rows, on both back ends."""
    s = Store(db_url)
    yield s
    s.close()


@pytest.fixture
def sqlite_store(tmp_path):
    """A fresh SQLite-only store (for tests that do not depend on the back end)."""
    s = Store(f"sqlite:///{tmp_path}/nodemgr.sqlite")
    yield s
    s.close()


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    """Point commands run in-process or as subprocesses at a fresh SQLite file."""
    url = f"sqlite:///{tmp_path}/cli.sqlite"
    monkeypatch.setenv("NODEMGR_DB", url)
    monkeypatch.setenv("NODEMGR_CONF", str(tmp_path / "none.conf"))
    # installdir in the test's directory: commands that write the install tree (mknb's
    # postscripts, copycds) never touch this machine's /install
    (tmp_path / "none.conf").write_text(f"[nodemgr]\ninstalldir = {tmp_path}/install\n")
    import nodemgr.tables.store as st

    monkeypatch.setattr(st, "_default", None)
    return url
