"""Store.upsert_many and Store.delete_many behave exactly like loops of upsert and delete,
on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import pytest

from nodemgr.errors import TableError
from nodemgr.tables.store import Store

ROWS = [
    {"node": "n1", "currstate": "boot", "currchain": None},
    {"node": "n2", "currstate": "install rhels8.6-x86_64-compute", "currchain": "boot"},
    {"node": "n3", "chain": "runcmd=bmcsetup,shell"},           # another column set
    {"node": "n1", "currstate": "shell", "currchain": "boot"},  # later row wins
    {"node": "n4", "currstate": "standby", "currchain": None},
]


def _chain(store: Store) -> list[dict]:
    return sorted(store.select("chain", columns=["node", "currstate", "currchain", "chain"]),
                  key=lambda r: r["node"])


def test_upsert_many_equals_a_loop_of_upsert(db_url, tmp_path):
    many = Store(db_url)
    loop = Store(f"sqlite:///{tmp_path}/loop.sqlite")
    for s in (many, loop):  # existing rows: unnamed columns must keep their values
        s.upsert("chain", {"node": "n3"}, {"currstate": "boot", "chain": "old"})
        s.upsert("chain", {"node": "n2"}, {"chain": "keepme"})
    with many.transaction():
        assert many.upsert_many("chain", iter(ROWS)) == len(ROWS)
    with loop.transaction():
        for r in ROWS:
            loop.upsert("chain", {"node": r["node"]}, {k: v for k, v in r.items() if k != "node"})
    assert _chain(many) == _chain(loop)
    got = {r["node"]: r for r in _chain(many)}
    assert got["n1"]["currstate"] == "shell"
    assert got["n2"]["chain"] == "keepme"
    assert got["n3"] == {"node": "n3", "currstate": "boot", "currchain": None,
                         "chain": "runcmd=bmcsetup,shell", "disable": None}
    many.close()
    loop.close()


def test_upsert_many_key_only_rows_and_empty_input(store):
    assert store.upsert_many("nodelist", []) == 0
    store.upsert_many("nodelist", [{"node": "a"}, {"node": "a"}, {"node": "b"}])
    assert [r["node"] for r in store.select("nodelist")] == ["a", "b"]


def test_upsert_many_bad_input_writes_nothing(store):
    with pytest.raises(TableError, match="keyed by node"):
        with store.transaction():
            store.upsert_many("chain", [{"node": "ok", "currstate": "boot"},
                                        {"currstate": "boot"}])
    with pytest.raises(TableError, match="nosuch"):
        with store.transaction():
            store.upsert_many("chain", [{"node": "ok", "currstate": "boot"},
                                        {"node": "x", "nosuch": "1"}])
    with pytest.raises(TableError):
        store.upsert_many("nosuchtable", [{"node": "x"}])
    assert store.select("chain") == []


def test_upsert_many_database_error_rolls_back(store):
    # NULL in a key column is refused by the database itself (NOT NULL)
    with pytest.raises(TableError, match="database error"):
        with store.transaction():
            store.upsert_many("chain", [{"node": "n1", "currstate": "boot"}])
            store.upsert_many("chain", [{"node": "n2", "currstate": "boot"},
                                        {"node": None, "currstate": "boot"}])
    assert store.select("chain") == []
    store.upsert_many("chain", [{"node": "n1", "currstate": "boot"}])  # usable afterwards
    assert [r["node"] for r in store.select("chain")] == ["n1"]


def test_upsert_many_ten_thousand_rows(store):
    rows = [{"node": f"n{i:05d}", "status": "installing", "statustime": "x"}
            for i in range(10_000)]
    with store.transaction():
        store.upsert_many("nodelist", rows)
        store.upsert_many("nodelist", ({**r, "status": "booted"} for r in rows[::2]))
    got = store.select("nodelist", columns=["node", "status"])
    assert len(got) == 10_000
    assert sum(r["status"] == "booted" for r in got) == 5_000


def test_delete_many(store):
    store.upsert_many("nodetoken", [{"node": n, "tokenhash": "h", "expires": "1"}
                                    for n in ("a", "b", "c")])
    store.delete_many("nodetoken", [{"node": "a"}, {"node": "c"}, {"node": "missing"}])
    assert [r["node"] for r in store.select("nodetoken")] == ["b"]
    store.delete_many("nodetoken", [])
    with pytest.raises(TableError, match="keyed by node"):
        store.delete_many("nodetoken", [{"tokenhash": "h"}])
    with pytest.raises(TableError, match="keyed by node"):
        store.delete_many("nodetoken", [{"node": "b", "tokenhash": "h"}])
    assert [r["node"] for r in store.select("nodetoken")] == ["b"]


def test_select_batch_equals_one_select_per_table(store):
    with store.transaction():
        store.insert("hosts", {"node": "n1", "ip": "10.0.0.1"})
        store.insert("hosts", {"node": "n2", "ip": "10.0.0.2", "disable": "1"})
        store.insert("hosts", {"node": "all", "hostnames": "x"})
        for n in ("n3", "n1", "n2"):  # insertion order is what comes back
            store.insert("mac", {"node": n, "mac": f"52:54:00:00:00:0{n[1]}"})
        store.insert("chain", {"node": "n1", "currstate": "boot"})
    requests = [("hosts", "node", ["n1", "n2", "all", "n1"]),  # duplicates are harmless
                ("mac", "node", None),                          # whole table
                ("chain", "node", []),                          # nothing asked: nothing
                ("site", "key", ["master"])]
    got = store.select_batch(requests)
    assert got == [store.select("hosts", any_of=("node", ["n1", "n2", "all"])),
                   store.select("mac"), [], store.select("site", {"key": "master"})]
    assert [r["node"] for r in got[0]] == ["n1", "all"]  # disabled row left out
    assert [r["node"] for r in got[1]] == ["n3", "n1", "n2"]
    assert got[1][0] == {"node": "n3", "interface": None, "mac": "52:54:00:00:00:03",
                         "comments": None, "disable": None}
    # a second call with the same shape reuses the statement text and gives the same rows
    assert store.select_batch(requests) == got
    with pytest.raises(TableError, match='No column "nosuch"'):
        store.select_batch([("hosts", "nosuch", ["x"]), ("mac", "node", ["y"])])


def test_select_batch_with_many_keys_falls_back_to_one_select_each(store, monkeypatch):
    monkeypatch.setattr(store, "BATCH_MAX_KEYS", 3)
    store.insert("hosts", {"node": "n1", "ip": "10.0.0.1"})
    got = store.select_batch([("hosts", "node", ["n1", "n2", "n3", "n4"]), ("mac", "node", None)])
    assert got == [store.select("hosts"), []]


def test_after_hooks_follow_the_outermost_transaction(store):
    seen = []
    with pytest.raises(TableError, match="needs an open transaction"):
        store.after(lambda: seen.append("x"))
    with store.transaction():
        store.after(lambda: seen.append("commit 1"), lambda: seen.append("rollback 1"))
        with store.transaction():  # nested: joins, runs nothing yet
            store.after(lambda: seen.append("commit 2"))
        assert seen == [] and store.in_transaction
    assert seen == ["commit 1", "commit 2"] and not store.in_transaction
    seen.clear()
    with pytest.raises(TableError), store.transaction():
        store.after(lambda: seen.append("commit"), lambda: seen.append("rollback"))
        store.insert("nosuchtable", {})
    assert seen == ["rollback"]
    seen.clear()
    with store.transaction():  # hooks of a finished transaction never run again
        pass
    assert seen == []


def test_writer_lock_excludes_other_stores_and_is_reentrant(db_url):
    import threading

    from nodemgr.tables.store import Store

    a, b = Store(db_url), Store(db_url)
    order = []

    def other():
        with b.writer_lock():
            order.append("b")

    with a.writer_lock():
        with a.writer_lock():  # re-entrant: no self-deadlock
            t = threading.Thread(target=other)
            t.start()
            t.join(0.5)
            assert t.is_alive() and order == []
        order.append("a")  # still held after the inner block
        t.join(0.2)
        assert t.is_alive()
    t.join(10)
    assert order == ["a", "b"]
    a.close()
    b.close()


def test_upsert_many_repeated_keys_across_statement_boundaries(store, monkeypatch):
    # small multi-row statements on PostgreSQL: repeats inside and across statements
    monkeypatch.setattr(Store, "PG_MAX_PARAMS", 6)  # 3 rows of 2 columns per statement
    rows = [{"node": f"n{i % 4}", "currstate": f"s{i}"} for i in range(11)]
    with store.transaction():
        store.upsert_many("chain", rows)
    got = store.select("chain", columns=["node", "currstate"])
    assert [r["node"] for r in got] == ["n0", "n1", "n2", "n3"]  # insertion order
    assert {r["node"]: r["currstate"] for r in got} == {
        "n0": "s8", "n1": "s9", "n2": "s10", "n3": "s7"}


def test_delete_any_by_key_in_chunks(store, monkeypatch):
    monkeypatch.setattr(Store, "IN_CHUNK", 3)
    store.upsert_many("nodelist", [{"node": f"n{i}"} for i in range(10)])
    store.update("nodelist", {"node": "n4"}, {"disable": "1"})  # disabled rows go too
    with store.transaction():
        assert store.delete_any("nodelist", "node",
                                ["n1", "n4", "n5", "n1", "ghost", "n8", "n9"]) == 5
    assert [r["node"] for r in store.select("nodelist", include_disabled=True)] == [
        "n0", "n2", "n3", "n6", "n7"]
    assert store.delete_any("nodelist", "node", []) == 0
    with pytest.raises(TableError):
        store.delete_any("nodelist", "nosuch", ["n0"])


def test_distinct_leaves_out_disabled_rows(store):
    store.upsert_many("nodelist", [{"node": "a", "groups": "x,y"}, {"node": "b", "groups": "x,y"},
                                   {"node": "c", "groups": None},
                                   {"node": "d", "groups": "hid", "disable": "1"}])
    assert sorted(store.distinct("nodelist", "groups"), key=str) == [None, "x,y"]
