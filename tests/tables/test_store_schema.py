"""A database made by an older nodemgr gets new tables and columns on first use."""

from nodemgr.tables.store import SCHEMA_STAMP, Store


def test_old_database_gains_missing_columns_and_tables(db_url):
    s = Store(db_url)
    s._exec('ALTER TABLE "hostconn" DROP COLUMN "options"')
    s._exec('DROP TABLE "virttype"')
    if s.dialect == "sqlite":
        s._exec("PRAGMA user_version = 1")
    else:
        s._exec("COMMENT ON TABLE site IS 'nodemgr:1'")
    s.upsert("hostconn", {"node": "hv1"}, {"uri": "qemu:///system"})
    s.close()
    s = Store(db_url)
    assert s.select("hostconn") == [{"node": "hv1", "uri": "qemu:///system", "authmethod": None,
                                     "username": None, "options": None, "comments": None,
                                     "disable": None}]
    assert [r["type"] for r in s.select("virttype")] == ["kvm", "qemu", "xen"]
    assert s._stamp() == SCHEMA_STAMP
    s.close()


def test_current_database_is_not_touched(db_url):
    Store(db_url).close()
    s = Store(db_url)
    assert s._stamp() == SCHEMA_STAMP
    s.close()


def test_max_int_ignores_non_numbers_and_counts_disabled(store):
    assert store.max_int("auditlog", "recid") == 0
    for recid, disable in (("9", None), ("10", "1"), ("x7", None), ("3", None)):
        store.insert("auditlog", {"recid": recid, "disable": disable})
    assert store.max_int("auditlog", "recid") == 10


def test_site_cache_scope_reads_once_and_drops_on_write_and_rollback(store):
    import pytest

    from nodemgr.errors import TableError

    reads = []
    real_select = store.select
    store.select = lambda name, *a, **k: (reads.append(name), real_select(name, *a, **k))[1]
    with store.site_cache():
        assert store.site("master") is None and store.site("domain") == "cluster"
        assert reads.count("site") == 1
        store.upsert("site", {"key": "master"}, {"value": "mn1"})
        assert store.site("master") == "mn1"  # a write drops the copy
        with pytest.raises(TableError), store.transaction():
            store.upsert("site", {"key": "master"}, {"value": "mn2"})
            assert store.site("master") == "mn2"
            store.insert("nosuchtable", {})
        assert store.site("master") == "mn1"  # the rollback dropped it too
    n = reads.count("site")
    store.site("master")
    store.site("domain")
    assert reads.count("site") == n + 2  # outside the block: every call reads the database


def _plan(store, sql):
    if store.dialect == "sqlite":
        return " ".join(str(r[-1]) for r in store._exec("EXPLAIN QUERY PLAN " + sql).fetchall())
    store._exec("SET enable_seqscan = off")  # a tiny table would be scanned anyway
    try:
        return " ".join(r[0] for r in store._exec("EXPLAIN " + sql).fetchall())
    finally:
        store._exec("SET enable_seqscan = on")


def test_max_int_is_an_index_lookup_also_in_an_old_database(db_url):
    s = Store(db_url)
    s._exec('DROP INDEX "auditlog_recid_int"')
    if s.dialect == "sqlite":
        s._exec("PRAGMA user_version = 1")
    else:
        s._exec("COMMENT ON TABLE site IS 'nodemgr:1'")
    s.close()
    s = Store(db_url)  # the stamp differs: the index comes back
    sql = f'SELECT MAX({s._int_expr("recid")}) FROM "auditlog"'
    assert "auditlog_recid_int" in _plan(s, sql)
    for i in range(1, 51):
        s.insert("auditlog", {"recid": str(i)})
    assert s.max_int("auditlog", "recid") == 50
    s.close()


def test_next_int_never_hands_out_one_number_twice_under_concurrency(db_url):
    import threading

    import pytest

    from nodemgr.errors import TableError

    stores = [Store(db_url) for _ in range(4)]
    with pytest.raises(TableError, match="needs an open transaction"):
        stores[0].next_int("auditlog", "recid")
    errors = []

    def worker(s):
        try:
            for _ in range(15):
                with s.transaction():
                    s.insert("auditlog", {"recid": str(s.next_int("auditlog", "recid"))})
        except Exception as exc:  # a duplicate key would land here
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    recids = sorted(int(r["recid"]) for r in stores[0].select("auditlog"))
    assert recids == list(range(1, 61))
    for s in stores:
        s.close()


def test_a_new_sqlite_database_and_its_wal_are_owner_only(tmp_path):
    """Issue 12 item 7: under umask 022 the file used to be 0644 (passwd rows readable)."""
    import os
    import stat

    from nodemgr.tables.store import Store

    old = os.umask(0o022)
    try:
        s = Store(f"sqlite:///{tmp_path}/db/new.sqlite")
        s.upsert("site", {"key": "x"}, {"value": "y"})
        for name in ("new.sqlite", "new.sqlite-wal", "new.sqlite-shm"):
            mode = stat.S_IMODE(os.stat(tmp_path / "db" / name).st_mode)
            assert mode == 0o600, (name, oct(mode))
        s.close()
        (tmp_path / "old.sqlite").touch(mode=0o640)      # an existing file keeps its mode
        Store(f"sqlite:///{tmp_path}/old.sqlite").close()
        assert stat.S_IMODE(os.stat(tmp_path / "old.sqlite").st_mode) == 0o640
    finally:
        os.umask(old)
