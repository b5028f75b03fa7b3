"""The PostgreSQL bulk paths of the store (COPY into a staging table, collected inserts
after a whole-table delete, staged keys for delete_any) behave like the row-by-row ones,
on SQLite and on the real PostgreSQL server. The thresholds are lowered so small inputs
take the bulk paths."""

from __future__ import annotations

import pytest

from nodemgr.errors import TableError
from nodemgr.tables.store import Store


@pytest.fixture
def bulk(store, monkeypatch):
    monkeypatch.setattr(Store, "STAGE_MIN", 2)
    monkeypatch.setattr(Store, "BULK_ROWS", 3)
    return store


def _nodes(store: Store, name: str = "nodelist") -> list[str]:
    return [r["node"] for r in store.select(name, include_disabled=True)]


def test_staged_upsert_order_repeats_and_existing_rows(bulk):
    bulk.upsert("chain", {"node": "n2"}, {"currstate": "old", "chain": "keepme"})
    rows = [{"node": f"n{i % 4}", "currstate": f"s{i}"} for i in range(11)]
    with bulk.transaction():
        assert bulk.upsert_many("chain", rows) == 11
    got = bulk.select("chain", columns=["node", "currstate", "chain"])
    assert [r["node"] for r in got] == ["n2", "n0", "n1", "n3"]  # insertion order
    assert {r["node"]: (r["currstate"], r["chain"]) for r in got} == {
        "n0": ("s8", None), "n1": ("s9", None), "n2": ("s10", "keepme"), "n3": ("s7", None)}
    bulk.upsert_many("nodelist", [{"node": "a"}, {"node": "b"}, {"node": "a"}])  # keys only
    assert _nodes(bulk) == ["a", "b"]


def test_staged_upsert_failure_leaves_nothing(bulk):
    bulk.upsert_many("nodelist", [{"node": "a", "groups": "x"}, {"node": "b"}])
    with pytest.raises(TableError, match="keyed by node"):
        with bulk.transaction():
            bulk.upsert_many("nodelist", [{"node": "a", "groups": "y"}, {"node": "c"}])
            bulk.upsert_many("nodelist", [{"groups": "y"}])
    assert [(r["node"], r["groups"]) for r in bulk.select("nodelist")] == [
        ("a", "x"), ("b", None)]


def test_inserts_after_a_whole_table_delete(bulk):
    bulk.upsert_many("hosts", [{"node": "old1", "ip": "1"}, {"node": "old2", "ip": "2"}])
    with bulk.transaction():
        bulk.delete("hosts")
        for i in range(7):  # 7 rows, collected 3 at a time
            bulk.insert("hosts", {"node": f"h{i}", "ip": f"10.0.0.{i}"})
        bulk.insert("hosts", {"node": "other", "ip": None, "comments": "another column set"})
        # a read in the same transaction sees every row inserted so far
        assert _nodes(bulk, "hosts") == [f"h{i}" for i in range(7)] + ["other"]
        bulk.insert("hosts", {"node": "last", "ip": "9"})
    assert _nodes(bulk, "hosts") == [f"h{i}" for i in range(7)] + ["other", "last"]
    assert bulk.get("hosts", {"node": "h3"})["ip"] == "10.0.0.3"


def test_collected_insert_duplicate_raises_at_the_repeat(bulk):
    bulk.insert("hosts", {"node": "keep", "ip": "1"})
    with pytest.raises(TableError, match="database error: (duplicate key|UNIQUE)") as exc:
        with bulk.transaction():
            bulk.delete("hosts")
            bulk.insert("hosts", {"node": "x", "ip": "1"})
            bulk.insert("hosts", {"node": "y", "ip": "2"})
            try:
                bulk.insert("hosts", {"node": "x", "ip": "3"})
            except TableError as e:
                raise TableError(f"line 4: {e}") from None
    assert str(exc.value).startswith("line 4: database error")
    assert _nodes(bulk, "hosts") == ["keep"]  # rolled back, nothing collected was sent


def test_collected_inserts_stop_after_another_write(bulk):
    with bulk.transaction():
        bulk.delete("hosts")
        bulk.insert("hosts", {"node": "a"})
        bulk.update("hosts", {"node": "a"}, {"node": "b"})  # keys changed behind the list
        bulk.insert("hosts", {"node": "a"})
        with pytest.raises(TableError, match="unknown column|nosuch"):
            bulk.insert("hosts", {"node": "c", "nosuch": "1"})
    assert sorted(_nodes(bulk, "hosts")) == ["a", "b"]


def test_collected_inserts_unknown_column_writes_nothing(bulk):
    bulk.insert("hosts", {"node": "keep"})
    with pytest.raises(TableError, match="nosuch"):
        with bulk.transaction():
            bulk.delete("hosts")
            bulk.insert("hosts", {"node": "a"})
            bulk.insert("hosts", {"node": "b", "nosuch": "1"})
    assert _nodes(bulk, "hosts") == ["keep"]


def test_delete_any_staged_keys_reused_and_replaced(bulk):
    for tab in ("nodelist", "nodehm", "mac"):
        bulk.upsert_many(tab, [{"node": f"n{i}"} for i in range(6)])
    bulk.update("nodehm", {"node": "n2"}, {"disable": "1"})  # disabled rows go too
    with bulk.transaction():
        assert bulk.delete_any("nodelist", "node", ["n1", "n2", "ghost"]) == 2
        assert bulk.delete_any("nodehm", "node", ["n1", "n2", "ghost"]) == 2
        assert bulk.delete_any("mac", "node", ["n4", "n5"]) == 2  # other keys
        assert bulk.delete_any("nodelist", "node", ["n0"]) == 1    # below STAGE_MIN
    assert _nodes(bulk) == ["n3", "n4", "n5"]
    assert _nodes(bulk, "nodehm") == ["n0", "n3", "n4", "n5"]
    assert _nodes(bulk, "mac") == ["n0", "n1", "n2", "n3"]
    assert bulk.delete_any("mac", "node", ["n0", "n1"]) == 2  # outside a transaction
    assert bulk.delete_any("mac", "node", ["n2", "n3"]) == 2  # and again (table dropped)
    assert _nodes(bulk, "mac") == []
