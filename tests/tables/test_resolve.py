"""Attribute resolution: own row, groups, +=NEXTRECORD, regex values, disabled rows.

Table-backed tests use the ``store`` fixture: each runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import pytest

from nodemgr.errors import TableError
from nodemgr.tables.resolve import Resolver, render


def add(store, table, **row):
    store.insert(table, row)


@pytest.fixture
def cluster(store):
    add(store, "nodelist", node="n1", groups="compute,rack1,all")
    add(store, "nodelist", node="n2", groups="rack1,compute,all")
    add(store, "nodelist", node="n3", groups="all")
    add(store, "nodelist", node="gone", groups="compute,all", disable="1")
    add(store, "nodehm", node="compute", mgt="kvm", serialspeed="115200")
    add(store, "nodehm", node="rack1", mgt="ipmi", serialport="1")
    add(store, "nodehm", node="all", mgt="fake", cons="all-cons", serialport="0")
    add(store, "nodehm", node="n3", mgt="libvirt")
    return store


# -- pure rendering ---------------------------------------------------------------------
@pytest.mark.parametrize("value, node, expected", [
    ("plain", "n1", "plain"),
    ("", "n1", None),
    (None, "n1", None),
    (r"/\z/-bmc/", "node1", "node1-bmc"),
    (r"/node/host/", "node12", "host12"),
    (r"/(\d+)$/-$1-x/", "node12", "node-12-x"),
    (r"/nomatch/x/", "node1", "node1"),                 # Perl s/// without a match
    (r"/^.*$//", "node1", None),                        # renders empty -> undefined
    (r"|node(\d+)|10.0.0.($1+0)|", "node007", "10.0.0.7"),
    (r"|node(\d+)|host($1)|", "node007", "host007"),
    (r"|node(\d+)|host$1|", "node007", "host007"),      # no brackets: plain regex
    (r"|^.*$||", "n1", None),                           # nodech's "explicitly unset"
    ("||", "n1", None),
    (r"|10.0.0.($1+0)|", "node1", "10.0.0.1"),          # easy regex (xCAT doc example)
    (r"|10.($1).($2*2)|", "r3n05", "10.3.10"),          # easy regex, two numbers
    (r"|x($1+1)|", "r0010n5", "x11"),                   # [\D0]* eats leading zeros
    (r"|\D+(\d+)|cmm(sprintf('%02d',($1-1)/14+1))|", "node29", "cmm03"),
    (r"|\D+(\d+)|cmm(sprintf('%02d',($1-1)/14+1))|", "node1", "cmm01"),
    (r"|\D+(\d+)|($1/2)|", "n7", "3.5"),
    (r"|\D+(\d+)|(ipadd(10,1,0,0,$1,1,1))|", "n254", "10.1.1.1"),
    (r"|r(\d+)u(\d+)|(dim2idx($1,10,$2,42))|", "r2u5", "89"),
    (r"|(\w)(\d+)|(a2idx($1))-($2)|", "c7", "3-7"),
    (r"|(\d+)|(skip($1,'13:1'))|", "n13", "n14"),       # unmatched prefix is kept
    (r"|\D+(\d+)\D+(\d+)\D+(\d+)\D+(\d+)|c($1)f($2)x($3)|", "c01f02x03v04", "c01f02x03"),
    (r"|\D+(\d+)\D+(\d+)\D+(\d+)\D+(\d+)|dir:///install/vms/vm($4+0)|", "c01f02x03v04",
     "dir:///install/vms/vm4"),
    ("/install/custom/", "node1", "node1"),             # 3 slashes: xCAT treats it as s///
    ("/install", "node1", "/install"),
    ("a|b|c", "node1", "a|b|c"),
])
def test_render(value, node, expected):
    assert render(value, node) == expected


@pytest.mark.parametrize("value", [
    r"|node(\d+)|10.0.0.(__import__('os').system('touch /tmp/nodemgr-pwned'))|",
    r"|node(\d+)|(open('/etc/passwd'))|",
    r"|node(\d+)|(().__class__)|",
    r"|node(\d+)|(9**9**9)|",
    r"|node(\d+)|($1/0)|",
    r"/(unclosed/x/",
    r"|(unclosed|x|",
    "/a{99999999999}/x/",                          # OverflowError in re (issue 12)
    "/" + "(" * 600 + "a" + ")" * 600 + "/x/",     # RecursionError in re (issue 12)
    "/" + "(" * 500 + "a" + ")" * 500 + "/x/",     # short enough, still too deep
])
def test_render_refuses(value, tmp_path):
    from nodemgr.tables.resolve import RegexValueError

    with pytest.raises(RegexValueError):
        render(value, "node1")


# -- inheritance ----------------------------------------------------------------------------
def test_nodes_and_groups(cluster):
    r = Resolver(cluster)
    assert r.nodes() == ["n1", "n2", "n3"]            # disabled node invisible
    assert r.groups_of("n1") == ["compute", "rack1", "all"]
    assert r.groups_of("nope") == []
    assert r.static_groups() == {"compute", "rack1", "all"}


def test_own_row_then_groups_in_order(cluster):
    r = Resolver(cluster)
    got = r.attrs(["n1", "n2", "n3"], ["nodehm.mgt", "nodehm.serialport", "nodehm.cons",
                                        "nodehm.termserver"])
    assert got["n1"] == {"nodehm.mgt": "kvm", "nodehm.serialport": "1",
                         "nodehm.cons": "all-cons", "nodehm.termserver": None}
    assert got["n2"]["nodehm.mgt"] == "ipmi"           # rack1 listed before compute
    assert got["n3"]["nodehm.mgt"] == "libvirt"        # own row wins
    assert got["n3"]["nodehm.serialport"] == "0"


def test_blame(cluster):
    r = Resolver(cluster)
    got = r.attrs(["n1", "n3"], ["nodehm.mgt", "nodehm.cons", "nodehm.getmac"], blame=True)
    assert got["n1"]["nodehm.mgt"] == ("kvm", "compute")
    assert got["n1"]["nodehm.cons"] == ("all-cons", "all")
    assert got["n1"]["nodehm.getmac"] == (None, None)
    assert got["n3"]["nodehm.mgt"] == ("libvirt", None)


def test_empty_string_inherits_but_unset_regex_stops(cluster):
    add(cluster, "nodehm", node="n1", mgt="", cons=r"|^.*$||")
    r = Resolver(cluster)
    assert r.attr("n1", "nodehm.mgt") == "kvm"         # '' is undefined: keep looking
    assert r.attr("n1", "nodehm.cons") is None         # nodech's unset marker stops


def test_disabled_rows_are_invisible(cluster):
    cluster.update("nodehm", {"node": "compute"}, {"disable": "yes"})
    add(cluster, "nodehm", node="n2", mgt="own", disable="1")
    r = Resolver(cluster)
    assert r.attr("n1", "nodehm.mgt") == "ipmi"        # compute row disabled: next group
    assert r.attr("n2", "nodehm.mgt") == "ipmi"        # own disabled row ignored
    cluster.update("nodehm", {"node": "n2"}, {"disable": "0"})
    r.invalidate()
    assert r.attr("n2", "nodehm.mgt") == "own"         # "0" means enabled


def test_nextrecord(store):
    add(store, "nodelist", node="n1", groups="g1,g2,g3,g4")
    add(store, "chain", node="n1", chain="shell,+=NEXTRECORD")
    add(store, "chain", node="g1", chain="runcmd=bmcsetup,+=NEXTRECORD")
    add(store, "chain", node="g2", currstate="x")      # does not define chain: skipped
    add(store, "chain", node="g3", chain="standby")
    add(store, "chain", node="g4", chain="never")
    add(store, "chain", node="n2", chain="boot+=NEXTRECORD")   # nothing to append
    r = Resolver(store)
    got = r.attrs(["n1", "n2"], ["chain.chain"], blame=True)
    assert got["n1"]["chain.chain"] == ("shell,runcmd=bmcsetup,standby", None)
    assert got["n2"]["chain.chain"] == ("boot", None)


def test_nextrecord_from_group(store):
    add(store, "nodelist", node="n1", groups="g1,g2")
    add(store, "chain", node="g1", chain="a,+=NEXTRECORD")
    add(store, "chain", node="g2", chain="b")
    assert Resolver(store).attrs(["n1"], ["chain.chain"], blame=True)["n1"] == {
        "chain.chain": ("a,b", "g1")}


def test_regex_values_are_rendered_for_each_node(store):
    add(store, "nodelist", node="node1", groups="compute")
    add(store, "nodelist", node="node22", groups="compute")
    add(store, "hosts", node="compute", ip=r"|node(\d+)|10.0.0.($1+0)|",
        hostnames=r"/\z/-ib/")
    r = Resolver(store)
    got = r.attrs(["node1", "node22"], ["hosts.ip", "hosts.hostnames"], blame=True)
    assert got["node1"] == {"hosts.ip": ("10.0.0.1", "compute"),
                            "hosts.hostnames": ("node1-ib", "compute")}
    assert got["node22"]["hosts.ip"] == ("10.0.0.22", "compute")


def test_xcat_documentation_vm_example(store):
    add(store, "nodelist", node="c01f02x03v04", groups="kvms")
    add(store, "vm", node="kvms",
        host=r"|\D+(\d+)\D+(\d+)\D+(\d+)\D+(\d+)|c($1)f($2)x($3)|",
        storage=r"|\D+(\d+)\D+(\d+)\D+(\d+)\D+(\d+)|dir:///install/vms/vm($4+0)|",
        memory="3072", cpus="2", nics="virbr2", nicmodel="virtio")
    got = Resolver(store).attrs(["c01f02x03v04"], ["vm.host", "vm.storage", "vm.memory"])
    assert got["c01f02x03v04"] == {"vm.host": "c01f02x03",
                                   "vm.storage": "dir:///install/vms/vm4",
                                   "vm.memory": "3072"}


def test_bad_regex_names_table_column_and_node(store):
    add(store, "nodelist", node="n1", groups="all")
    add(store, "hosts", node="all", ip=r"|n(\d+)|10.0.0.(__import__('os'))|")
    add(store, "vm", node="all", host="/(broken/x/")
    r = Resolver(store)
    with pytest.raises(TableError, match=r"hosts\.ip for node n1"):
        r.attr("n1", "hosts.ip")
    with pytest.raises(TableError, match=r"vm\.host for node n1"):
        r.attr("n1", "vm.host")


def test_malicious_value_has_no_side_effect(store, tmp_path):
    target = tmp_path / "pwned"
    add(store, "nodelist", node="n1", groups="all")
    add(store, "hosts", node="all",
        ip=rf"|n(\d+)|(__import__('os').system('touch {target}'))|")
    with pytest.raises(TableError):
        Resolver(store).attr("n1", "hosts.ip")
    assert not target.exists()


def test_hierarchical_attrs(store):
    store.upsert("site", {"key": "hierarchicalattrs"}, {"value": "groups,currchain:;"})
    add(store, "nodelist", node="n1", groups="g1,g2")
    add(store, "osimage", imagename="unused")
    add(store, "chain", node="n1", chain="own", currchain="a;b")
    add(store, "chain", node="g1", chain="g1chain", currchain="b;c")
    add(store, "chain", node="g2", currchain="d")
    r = Resolver(store)
    got = r.attrs(["n1"], ["chain.currchain", "chain.chain"], blame=True)["n1"]
    assert got["chain.currchain"] == ("a;b;c;d", None)
    assert got["chain.chain"] == ("own", None)          # not hierarchical: own row wins


def test_hierarchical_attrs_from_groups_only(store):
    store.upsert("site", {"key": "hierarchicalattrs"}, {"value": "currchain"})
    add(store, "nodelist", node="n1", groups="g1,g2")
    add(store, "chain", node="g1", currchain="x,y")
    add(store, "chain", node="g2", currchain="y,z")
    got = Resolver(store).attrs(["n1"], ["chain.currchain"], blame=True)["n1"]
    assert got["chain.currchain"] == ("x,y,z", "g1")


def test_nodecol_other_than_node(store):
    add(store, "vmmaster", name="master1", os="rhels7.9")
    add(store, "nodelist", node="master1", groups="masters")
    add(store, "vmmaster", name="masters", arch="x86_64")
    got = Resolver(store).attrs(["master1"], ["vmmaster.os", "vmmaster.arch"])
    assert got["master1"] == {"vmmaster.os": "rhels7.9", "vmmaster.arch": "x86_64"}


@pytest.mark.parametrize("attr, message", [
    ("nodehm", "table.column"),
    ("nosuch.col", 'Unknown table "nosuch"'),
    ("nodehm.nosuch", 'No column "nosuch" in table "nodehm"'),
    ("site.value", 'Table "site" is not keyed by node'),
])
def test_bad_attribute(store, attr, message):
    with pytest.raises(TableError, match=message):
        Resolver(store).attrs(["n1"], [attr])


def test_cache_and_invalidate(cluster):
    r = Resolver(cluster)
    assert r.attr("n1", "nodehm.mgt") == "kvm"
    cluster.update("nodehm", {"node": "compute"}, {"mgt": "changed"})
    cluster.insert("nodelist", {"node": "n9", "groups": "x"})
    assert r.attr("n1", "nodehm.mgt") == "kvm"          # cached for this command
    assert "n9" not in r.nodes()
    r.invalidate()
    assert r.attr("n1", "nodehm.mgt") == "changed"
    assert "n9" in r.nodes()


def test_nodegroups(store):
    add(store, "nodegroup", groupname="kvmhosts", grouptype="dynamic",
        wherevals="nodehm.mgt==kvm")
    add(store, "nodegroup", groupname="old", grouptype="dynamic", disable="1")
    groups = Resolver(store).nodegroups()
    assert list(groups) == ["kvmhosts"]
    assert groups["kvmhosts"]["wherevals"] == "nodehm.mgt==kvm"


def test_nodes_by_key_reads_only_the_nodes_asked_about(cluster):
    """nodes_by_key: the same values as a whole-table resolver (group inheritance, disabled
    rows hidden, unknown nodes without groups), reading nodelist rows by key only."""
    whole, keyed = Resolver(cluster), Resolver(cluster, nodes_by_key=True)
    attrs = ["nodehm.mgt", "nodehm.serialport", "nodehm.cons"]
    for nodes in (["n1"], ["n2", "n3"], ["gone"], ["nosuch"]):
        assert keyed.attrs(nodes, attrs, blame=True) == whole.attrs(nodes, attrs, blame=True)
    assert keyed._groups is None                      # the whole nodelist was never read
    assert keyed.groups_of("n2") == ["rack1", "compute", "all"] and keyed.groups_of("gone") == []
    assert keyed.nodes() == ["n1", "n2", "n3"]        # anything needing every node loads it
