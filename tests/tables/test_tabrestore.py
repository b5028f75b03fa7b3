"""Restore/dump through the store on SQLite and PostgreSQL: real xCAT dumps come back
byte-identical, and a failing restore changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodemgr.cli.tablecmds import dump_table, restore_text
from nodemgr.errors import TableError
from nodemgr.tables.resolve import Resolver

DATA = Path(__file__).parent / "data"

IDENTICAL = {
    "xcat210_site.csv": "site",
    "xcat210_nodelist.csv": "nodelist",
    "xcat210_mac.csv": "mac",
    "xcat210_hosts.csv": "hosts",
    "xcat210_nodetype.csv": "nodetype",
    "xcatdoc_policy.csv": "policy",
    "xcatdoc_vm.csv": "vm",
    "xcatdoc_hosts.csv": "hosts",
    "xcatdoc_hosts_easy.csv": "hosts",
}


@pytest.mark.parametrize("fname", sorted(IDENTICAL))
def test_real_xcat_dump_round_trips_byte_identical(store, fname):
    raw = (DATA / fname).read_bytes()
    table = IDENTICAL[fname]
    assert restore_text(store, table, raw.decode()) == raw.count(b"\n") - 1
    assert dump_table(store, table).encode() == raw


@pytest.mark.parametrize("fname, table, added", [
    ("xcat210_noderes.csv", "noderes", ["syslog"]),
    ("xcatdoc_nodehm_old.csv", "nodehm", ["consoleondemand", "consoleenabled"]),
])
def test_older_xcat_dump_restores_with_new_columns_empty(store, fname, table, added):
    text = (DATA / fname).read_text()
    restore_text(store, table, text)
    out = dump_table(store, table).splitlines()
    old = text.splitlines()
    header = old[0].split(",")
    before = header.index("comments")
    assert out[0].split(",") == header[:before] + added + header[before:]
    for o, n in zip(old[1:], out[1:], strict=True):
        fields = o.split(",")
        assert n.split(",") == fields[:before] + [""] * len(added) + fields[before:]


def test_restored_regex_rows_resolve_as_documented(store):
    restore_text(store, "vm", (DATA / "xcatdoc_vm.csv").read_text())
    restore_text(store, "hosts", (DATA / "xcatdoc_hosts_easy.csv").read_text())
    restore_text(store, "nodelist", '#node,groups\n"c01f02x03v04","kvms"\n"node1","compute"\n')
    r = Resolver(store)
    assert r.attrs(["c01f02x03v04"], ["vm.host", "vm.storage"])["c01f02x03v04"] == {
        "vm.host": "c01f02x03", "vm.storage": "dir:///install/vms/vm4"}
    assert r.attr("node1", "hosts.ip") == "10.0.0.1"


def test_disabled_rows_are_dumped(store):
    restore_text(store, "nodelist", '#node,groups,disable\n"n1","all","1"\n"n2","all",\n')
    assert dump_table(store, "nodelist").splitlines()[1:] == [
        '"n1","all",,,,,,,,,,,"1"', '"n2","all",,,,,,,,,,,']
    assert Resolver(store).nodes() == ["n2"]


def test_restore_replaces_by_default_and_adds_with_add(store):
    restore_text(store, "hosts", '#node,ip\n"a","1"\n"b","2"\n')
    restore_text(store, "hosts", '#node,ip\n"c","3"\n')
    assert [r["node"] for r in store.select("hosts")] == ["c"]
    restore_text(store, "hosts", '#node,ip\n"d","4"\n', add=True)
    assert [r["node"] for r in store.select("hosts")] == ["c", "d"]


@pytest.mark.parametrize("text, message", [
    ('#node,bogus\n"x","y"\n', 'No column "bogus" in table "hosts"'),
    ('#node,ip\n"x","1"\n"y","unterminated\n', 'CSV unmatched " in record on line 3'),
    ('#node,ip\n"x","1"\n"y","2","3"\n', "Too many fields on line 3"),
    ('#node,ip\n"x","1"\n"x","2"\n', "line 3: database error"),      # duplicate key
    ('#node,ip\n"x","1"\n,"2"\n', 'line 3: key column "node" is empty'),
    ('#node,ip\n"x","1"\n"","2"\n', 'line 3: key column "node" is empty'),
    ('#node,node\n"x","1"\n', "a column is named twice"),
    ("node,ip\n", "Data missing header line starting with #"),
])
def test_failed_restore_changes_nothing(store, text, message):
    restore_text(store, "hosts", '#node,ip\n"keep","10.0.0.1"\n')
    before = dump_table(store, "hosts")
    with pytest.raises(TableError, match=message):
        restore_text(store, "hosts", text)
    assert dump_table(store, "hosts") == before
    with pytest.raises(TableError):
        restore_text(store, "hosts", text, add=True)
    assert dump_table(store, "hosts") == before
    # the connection is still usable after the rollback
    restore_text(store, "hosts", '#node,ip\n"new","1"\n')
    assert [r["node"] for r in store.select("hosts")] == ["new"]


def test_store_update(store):
    store.insert("passwd", {"key": "system", "username": "root", "password": "a"})
    store.insert("passwd", {"key": "system", "username": "admin", "password": "b",
                            "disable": "1"})
    store.insert("passwd", {"key": "ipmi", "username": "ADMIN", "password": "c"})
    assert store.update("passwd", {"key": "system"}, {"password": "z", "comments": None}) == 2
    rows = store.select("passwd", include_disabled=True)
    assert [(r["key"], r["username"], r["password"]) for r in rows] == [
        ("system", "root", "z"), ("system", "admin", "z"), ("ipmi", "ADMIN", "c")]
    assert store.update("passwd", {"key": "none"}, {"password": "q"}) == 0
    assert store.update("passwd", {"key": "ipmi"}, {}) == 0
    with pytest.raises(TableError, match='No column "nope"'):
        store.update("passwd", {"key": "ipmi"}, {"nope": "1"})
