"""nodels, nodech, nodeadd, noderm run in-process: output format, semantics (reference
§1.11), one-line errors with nothing changed. Output tests use SQLite through ``cli_env``;
the write paths also run on the ``store`` fixture, so PostgreSQL is covered."""

from __future__ import annotations

import pytest

import nodemgr.tables.store as store_mod
from nodemgr.cli.nodecmds import UNSET, nodeadd, nodech, nodels, noderm
from nodemgr.cli.tablecmds import chtab
from nodemgr.tables.store import Store


def seed(s: Store) -> None:
    """vm01..vm04 in vms (+gpu for vm01, vm02), hv1, hidden bmc1; group attributes."""
    with s.transaction():
        for i in range(1, 5):
            s.insert("nodelist", {"node": f"vm{i:02d}",
                                  "groups": "vms,gpu,all" if i <= 2 else "vms,all"})
        s.insert("nodelist", {"node": "hv1", "groups": "hypervisors,all"})
        s.insert("nodelist", {"node": "bmc1", "groups": "all", "hidden": "1"})
        s.insert("nodehm", {"node": "vms", "mgt": "kvm", "power": "kvm"})
        s.insert("nodehm", {"node": "hv1", "mgt": "ipmi"})
        s.insert("vm", {"node": "vms", "memory": "2048", "cpus": "2",
                        "nics": "|vm(\\d+)|br($1+0)|", "host": "hv1"})
        s.insert("vm", {"node": "vm01", "memory": "8192"})
        s.insert("vm", {"node": "gpu", "othersettings": "a,b"})
        s.insert("nodetype", {"node": "vm03", "os": "rhels8"})
        s.insert("nodegroup", {"groupname": "dyn", "grouptype": "dynamic",
                               "wherevals": "vm.memory==2048"})


@pytest.fixture
def cli(cli_env):
    """A seeded SQLite database the commands use; yields a store to inspect it."""
    s = Store(cli_env)
    seed(s)
    yield s
    s.close()


@pytest.fixture
def anydb(store, monkeypatch):
    """The commands run on the ``store`` fixture (SQLite and PostgreSQL)."""
    seed(store)
    monkeypatch.setattr(store_mod, "_default", store)
    return store


def run(func, argv, capsys):
    rc = func(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def rows(s: Store, table: str) -> dict[str, dict]:
    t = {"nodelist": "node"}.get(table, "node")
    return {r[t]: r for r in s.select(table, include_disabled=True)}


def snapshot(s: Store) -> dict:
    return {t: s.select(t, include_disabled=True)
            for t in ("nodelist", "nodehm", "vm", "nodetype", "mac", "hosts")}


# -- nodels ----------------------------------------------------------------------------------------
def test_nodels_lists_all_visible_nodes_in_string_order(cli, capsys):
    assert run(nodels, [], capsys) == (0, "hv1\nvm01\nvm02\nvm03\nvm04\n", "")
    assert run(nodels, ["-S"], capsys)[1] == "bmc1\nhv1\nvm01\nvm02\nvm03\nvm04\n"
    assert run(nodels, ["vms,hv1"], capsys)[1] == "hv1\nvm01\nvm02\nvm03\nvm04\n"
    assert run(nodels, ["all"], capsys)[1] == "hv1\nvm01\nvm02\nvm03\nvm04\n"
    assert run(nodels, ["all", "-S"], capsys)[1].startswith("bmc1\n")


def test_nodels_one_attribute_is_short_form_with_rendered_values(cli, capsys):
    rc, out, err = run(nodels, ["vm[01-03]", "vm.memory"], capsys)
    assert (rc, err) == (0, "")
    assert out == "vm01: 8192\nvm02: 2048\nvm03: 2048\n"
    assert run(nodels, ["vm02,vm04", "vm.nics"], capsys)[1] == "vm02: br2\nvm04: br4\n"
    assert run(nodels, ["vm03", "nodetype.os"], capsys)[1] == "vm03: rhels8\n"
    assert run(nodels, ["vm04", "nodetype.os"], capsys)[1] == "vm04: \n"  # unset


def test_nodels_long_form(cli, capsys):
    out = run(nodels, ["vm01,hv1", "mgt", "vm.cpus"], capsys)[1]
    assert out == ("hv1: mgt: ipmi\nhv1: vm.cpus: \n"
                   "vm01: mgt: kvm\nvm01: vm.cpus: 2\n")
    assert run(nodels, ["vm01", "-H", "groups"], capsys)[1] == "vm01: groups: vms,gpu,all\n"
    assert run(nodels, ["vm01", "groups"], capsys)[1] == "vm01: vms,gpu,all\n"
    assert run(nodels, ["vm01", "--with-fieldname", "tags"], capsys)[1] == \
        "vm01: tags: vms,gpu,all\n"


def test_nodels_table_lists_every_column(cli, capsys):
    out = run(nodels, ["vm01", "nodehm"], capsys)[1].splitlines()
    from nodemgr.tables.schema import TABLES
    assert [line.split(": ")[1] for line in out] == [f"nodehm.{c}" for c in TABLES["nodehm"].columns]
    assert out[0] == "vm01: nodehm.node: vm01"
    assert "vm01: nodehm.mgt: kvm" in out and "vm01: nodehm.power: kvm" in out


def test_nodels_blame(cli, capsys):
    out = run(nodels, ["vm01,vm02", "-b", "vm.memory"], capsys)[1]
    assert out == "vm01: 8192\nvm02: 2048 (inherited from group vms)\n"
    out = run(nodels, ["vm01", "--blame", "vm.othersettings", "vm.host", "nodetype.os"],
              capsys)[1]
    assert out == ("vm01: vm.othersettings: a,b (inherited from group gpu)\n"
                   "vm01: vm.host: hv1 (inherited from group vms)\n"
                   "vm01: nodetype.os: \n")


def test_nodels_criteria(cli, capsys):
    assert run(nodels, ["all", "vm.memory==2048"], capsys)[1] == "vm02\nvm03\nvm04\n"
    assert run(nodels, ["all", "mgt!=kvm"], capsys)[1] == "hv1\n"
    assert run(nodels, ["all", "nodetype.os=~/^rh/"], capsys)[1] == "vm03\n"
    assert run(nodels, ["vms", "nodetype.os!~rh"], capsys)[1] == "vm01\nvm02\nvm04\n"
    # a criterion counts as a term: with one attribute the long form is used (xCAT)
    out = run(nodels, ["all", "vm.memory==2048", "vm.nics"], capsys)[1]
    assert out == "vm02: vm.nics: br2\nvm03: vm.nics: br3\nvm04: vm.nics: br4\n"
    out = run(nodels, ["vms", "vm.memory!=2048", "vm.memory"], capsys)[1]
    assert out == "vm01: vm.memory: 8192\n"
    assert run(nodels, ["vms", "vm.memory==1"], capsys)[1] == ""
    # the noderange itself may be a selector or a dynamic group
    assert run(nodels, ["mgt==ipmi"], capsys)[1] == "hv1\n"
    assert run(nodels, ["dyn"], capsys)[1] == "vm02\nvm03\nvm04\n"


def test_nodels_json(cli, capsys):
    import json
    out = run(nodels, ["vm01,vm02", "--json", "-b", "vm.memory", "mgt"], capsys)[1]
    objs = [json.loads(line) for line in out.splitlines()]
    assert objs == [
        {"node": "vm01", "ok": True, "message": "",
         "attributes": {"vm.memory": "8192", "mgt": "kvm"}, "inherited": {"mgt": "vms"}},
        {"node": "vm02", "ok": True, "message": "",
         "attributes": {"vm.memory": "2048", "mgt": "kvm"},
         "inherited": {"vm.memory": "vms", "mgt": "vms"}},
    ]
    assert [json.loads(x)["node"] for x in run(nodels, ["--json"], capsys)[1].splitlines()] == [
        "hv1", "vm01", "vm02", "vm03", "vm04"]


@pytest.mark.parametrize("argv, message", [
    (["ghost"], "Error: Invalid nodes and/or groups in noderange: ghost\n"),
    (["vm01,ghost1,ghost2"], "Error: Invalid nodes and/or groups in noderange: ghost1,ghost2\n"),
    (["vm[01-03"], 'Error: unbalanced "[" in noderange "vm[01-03"\n'),
    (["vm01", "nosuch.col"], 'Error: Unknown table "nosuch"\n'),
    (["vm01", "vm.nosuch"], 'Error: No column "nosuch" in table "vm"\n'),
    (["vm01", "nosuch"], 'Error: "nosuch" is not a table, table.column or shortname '
                         "(groups, mgt, tags)\n"),
    (["vm01", "site"], 'Error: Table "site" is not keyed by node\n'),
    (["vm01", "site.value"], 'Error: Table "site" is not keyed by node\n'),
    (["vm01", "vm.memory=~("], "Error: bad regular expression"),
    (["vm01", "vm02"], "Error: the noderange arrived as several arguments (vm01 vm02); the "
                       "shell probably expanded an unquoted bracket range: quote it, "
                       "e.g. 'node[1-2]'\n"),
    (["--bogus"], "Error: Unknown option: --bogus\nUsage: nodels"),
])
def test_nodels_errors(cli, capsys, argv, message):
    rc, out, err = run(nodels, argv, capsys)
    assert (rc, out) == (1, "")
    assert err.startswith(message)
    assert "Traceback" not in err


@pytest.mark.parametrize("func, words", [
    (nodels, ["Usage: nodels [noderange]", "-b, --blame", "examples:", "exit status:"]),
    (nodech, ["Usage: nodech <noderange>", "nodech -d|--delete", ",=value", "^=value",
              "|^.*$||", "examples:", "exit status:"]),
    (nodeadd, ["Usage: nodeadd <noderange> groups=group1", "examples:", "exit status:"]),
    (noderm, ["Usage: noderm <noderange>", "examples:", "exit status:"]),
])
def test_help(func, words, capsys):
    with pytest.raises(SystemExit) as info:
        func(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for w in words:
        assert w in out


# -- nodech ----------------------------------------------------------------------------------------
def test_nodech_sets_values(anydb, capsys):
    assert run(nodech, ["vm[01-02]", "vm.cpus=4", "nodetype.os=rhels9", "mgt=libvirt"],
               capsys) == (0, "", "")
    vm, nt, hm = rows(anydb, "vm"), rows(anydb, "nodetype"), rows(anydb, "nodehm")
    assert vm["vm01"]["cpus"] == vm["vm02"]["cpus"] == "4"
    assert vm["vm01"]["memory"] == "8192"  # other columns kept
    assert nt["vm01"]["os"] == nt["vm02"]["os"] == "rhels9"
    assert hm["vm02"]["mgt"] == "libvirt"
    assert nt["vm03"]["os"] == "rhels8" and vm["vms"]["cpus"] == "2"
    assert run(nodels, ["vms", "vm.cpus"], capsys)[1] == "vm01: 4\nvm02: 4\nvm03: 2\nvm04: 2\n"


def test_nodech_empty_value_overrides_group_with_unset(anydb, capsys):
    assert run(nodech, ["vm03", "vm.host=", "groups="], capsys)[0] == 0
    assert rows(anydb, "vm")["vm03"]["host"] == UNSET
    assert rows(anydb, "nodelist")["vm03"]["groups"] is None  # nodelist: plain NULL
    assert run(nodels, ["vm02,vm03", "vm.host"], capsys)[1] == "vm02: hv1\nvm03: \n"


def test_nodech_list_operators(anydb, capsys):
    assert run(nodech, ["vm03", "groups,=gpu"], capsys)[0] == 0
    assert rows(anydb, "nodelist")["vm03"]["groups"] == "vms,all,gpu"   # xCAT: appended
    run(nodech, ["vm03", "groups,=gpu"], capsys)  # already there: unchanged
    assert rows(anydb, "nodelist")["vm03"]["groups"] == "vms,all,gpu"
    assert run(nodech, ["vm01", "groups^=gpu"], capsys)[0] == 0
    assert rows(anydb, "nodelist")["vm01"]["groups"] == "vms,all"
    # several operations on one column apply in order
    run(nodech, ["vm04", "groups,=a", "groups,=b", "groups^=vms"], capsys)
    assert rows(anydb, "nodelist")["vm04"]["groups"] == "all,a,b"
    # ,= and ^= start from the rendered value: a group's list is copied and changed
    run(nodech, ["vm02", "vm.othersettings,=c"], capsys)
    assert rows(anydb, "vm")["vm02"]["othersettings"] == "a,b,c"
    run(nodech, ["vm02", "vm.othersettings^=a"], capsys)
    assert rows(anydb, "vm")["vm02"]["othersettings"] == "b,c"
    run(nodech, ["vm02", "vm.othersettings^=b", "vm.othersettings^=c"], capsys)
    assert rows(anydb, "vm")["vm02"]["othersettings"] == UNSET  # emptied: explicitly unset
    assert run(nodels, ["vm02", "vm.othersettings"], capsys)[1] == "vm02: \n"
    # nothing to remove / already present: the node does not get a copy of the group value
    run(nodech, ["vm02,vm03", "vm.host^=zz", "vm.host,=hv1"], capsys)
    vm = rows(anydb, "vm")
    assert "vm03" not in vm and vm["vm02"]["host"] is None


def test_nodech_list_operators_take_several_items(anydb, capsys):
    """Issue 12 item 8: each item is appended unless present, each listed item removed —
    the same rule as chtab's +=."""
    assert run(nodech, ["vm01", "groups=all,rhels5.5"], capsys)[0] == 0
    assert run(nodech, ["vm01", "groups,=rhels5.5,rhels5.6"], capsys)[0] == 0
    assert rows(anydb, "nodelist")["vm01"]["groups"] == "all,rhels5.5,rhels5.6"
    assert run(nodech, ["vm01", "groups^=rhels5.4,rhels5.5"], capsys)[0] == 0
    assert rows(anydb, "nodelist")["vm01"]["groups"] == "all,rhels5.6"
    assert run(chtab, ["node=vm01", "nodelist.groups+=rhels5.6,rhels5.7"], capsys)[0] == 0
    assert rows(anydb, "nodelist")["vm01"]["groups"] == "all,rhels5.6,rhels5.7"


def test_nodech_unambiguous_assignment(anydb, capsys):
    assert run(nodech, ["vm01", "vm.othersettings=@=x", "vm.vidpassword=@@y"], capsys)[0] == 0
    vm = rows(anydb, "vm")["vm01"]
    assert (vm["othersettings"], vm["vidpassword"]) == ("=x", "@y")
    assert run(nodech, ["vm01", "bootparams.kcmdline=a==b"], capsys)[0] == 0
    assert rows(anydb, "bootparams")["vm01"]["kcmdline"] == "a==b"


def test_nodech_criteria_limit_the_change(anydb, capsys):
    assert run(nodech, ["vms", "vm.memory==2048", "nodetype.os!~rh", "vm.host=hv2"],
               capsys)[0] == 0
    vm = rows(anydb, "vm")
    assert vm["vm02"]["host"] == vm["vm04"]["host"] == "hv2"
    assert vm["vm01"]["host"] is None and "vm03" not in vm


def test_nodech_delete_rows(anydb, capsys):
    assert run(nodech, ["-d", "vm01,hv1", "vm", "nodehm"], capsys) == (0, "", "")
    assert "vm01" not in rows(anydb, "vm") and "hv1" not in rows(anydb, "nodehm")
    assert "vm01" in rows(anydb, "nodelist") and "vms" in rows(anydb, "vm")
    assert run(nodels, ["vm01", "vm.memory"], capsys)[1] == "vm01: 2048\n"  # group again


def test_nodech_warns_about_dynamic_groups(anydb, capsys):
    rc, _, err = run(nodech, ["vm01", "groups,=dyn"], capsys)
    assert rc == 0
    assert err == ("Warning: nodegroup dyn is a dynamic node group; nodes should not be "
                   "added to it statically\n")


@pytest.mark.parametrize("argv, message", [
    (["vm01", "vm.cpus=4", "nosuch.col=1"], 'Error: Unknown table "nosuch"'),
    (["vm01", "vm.cpus=4", "vm.nosuch=1"], 'Error: No column "nosuch" in table "vm"'),
    (["vm01", "vm.cpus=4", "site.value=1"], 'Error: Table "site" is not keyed by node'),
    (["vm01", "vm.cpus=4", "vm.node=x"], "Error: vm.node is the node name itself"),
    (["vm01", "vm.cpus=4", "vm.cpus"], 'Error: malformed argument "vm.cpus"'),
    (["vm01", "vm.cpus=4", "groups,="], 'Error: "groups,=": ,= needs a value'),
    (["vm01", "vm.cpus=4", "vm.memory=~("], "Error: bad regular expression"),
    (["vm01,ghost", "vm.cpus=4"], "Error: Invalid nodes and/or groups in noderange: ghost"),
    (["vm01-hv1", "vm.cpus=4"], 'Error: "vm01-hv1" is not a node or group, nor a valid range'),
    (["vm01"], "Error: nodech needs a noderange and at least one table.column=value"),
    (["vm01", "vm.memory==4"], "Error: nodech needs at least one table.column=value"),
    (["vm01", "vm02", "vm.cpus=4"], "Error: the noderange arrived as several arguments"),
    (["-d", "vm01", "vm.cpus"], 'Error: "vm.cpus": with -d give table names only'),
    (["-d", "vm01", "vm", "nosuch"], 'Error: Unknown table "nosuch"'),
    (["-d", "vm01", "vm", "site"], 'Error: Table "site" is not keyed by node'),
    (["-d", "ghost", "vm"], "Error: Invalid nodes and/or groups in noderange: ghost"),
])
def test_nodech_errors_change_nothing(anydb, capsys, argv, message):
    with pytest.raises(SystemExit):
        nodech(["-?"])
    usage = capsys.readouterr().out.split("\n\n")[0].splitlines()  # the Usage: block
    before = snapshot(anydb)
    rc, out, err = run(nodech, argv, capsys)
    assert (rc, out) == (1, "")
    # one line naming the problem, then (for a usage error) xCAT's Usage: block only
    assert err.startswith(message) and err.splitlines()[1:] in ([], usage)
    assert "Traceback" not in err
    assert snapshot(anydb) == before


def _fail_on_call(monkeypatch, store, method: str, n: int) -> None:
    """Make ``store.<method>`` raise a TableError on its *n*-th call (counting anew for
    every command run afterwards is not needed: each test below runs one command per
    patch)."""
    from nodemgr.errors import TableError

    real, calls = getattr(store, method), []

    def failing(*args, **kw):
        calls.append(args)
        if len(calls) == n:
            raise TableError("database error: disk full")
        return real(*args, **kw)

    monkeypatch.setattr(store, method, failing)


@pytest.mark.parametrize("func, argv, method, n", [
    # the writes are batched per table: the n-th batch fails, after earlier ones were sent
    (nodech, ["vms", "vm.cpus=8"], "upsert_many", 1),
    (nodech, ["vms,hv1", "vm.cpus=8", "groups,=x", "mgt=ipmi"], "upsert_many", 3),
    (nodeadd, ["new[1-5]", "groups=vms", "vm.cpus=1"], "upsert_many", 2),
    (noderm, ["vms,hv1"], "delete_any", 3),
    (nodech, ["-d", "vms,hv1", "vm", "nodelist"], "delete_any", 2),
])
def test_write_failure_mid_transaction_rolls_back(anydb, capsys, monkeypatch, func, argv,
                                                  method, n):
    before = snapshot(anydb)
    _fail_on_call(monkeypatch, anydb, method, n)
    assert run(func, argv, capsys) == (1, "", "Error: database error: disk full\n")
    assert snapshot(anydb) == before


# -- nodeadd ---------------------------------------------------------------------------------------
def test_nodeadd_creates_nodes(anydb, capsys):
    assert run(nodeadd, ["new[01-03],hv2", "groups=vms,new", "mgt=kvm", "vm.host=hv2"],
               capsys) == (0, "", "")
    nl = rows(anydb, "nodelist")
    for n in ("new01", "new02", "new03", "hv2"):
        assert nl[n]["groups"] == "vms,new"
        assert rows(anydb, "nodehm")[n]["mgt"] == "kvm"
        assert rows(anydb, "vm")[n]["host"] == "hv2"
    assert run(nodels, ["new", "vm.memory"], capsys)[1] == \
        "hv2: 2048\nnew01: 2048\nnew02: 2048\nnew03: 2048\n"


def test_nodeadd_existing_node_is_updated(anydb, capsys):
    assert run(nodeadd, ["vm01,vm09", "groups=vms", "vm.cpus=16"], capsys)[0] == 0
    assert rows(anydb, "nodelist")["vm01"]["groups"] == "vms"
    assert rows(anydb, "vm")["vm01"]["memory"] == "8192" and rows(anydb, "vm")["vm01"]["cpus"] == "16"
    assert rows(anydb, "nodelist")["vm09"]["groups"] == "vms"
    assert run(nodeadd, ["lonely", "groups="], capsys)[0] == 0
    assert rows(anydb, "nodelist")["lonely"]["groups"] is None
    assert run(nodels, ["lonely"], capsys)[1] == "lonely\n"


def test_nodeadd_numeric_shorthand_and_excludenodes(anydb, capsys, monkeypatch):
    monkeypatch.setenv("XCAT_NODE_PREFIX", "c")
    with anydb.transaction():
        anydb.upsert("site", {"key": "excludenodes"}, {"value": "c2"})
    assert run(nodeadd, ["1-3", "groups=compute"], capsys)[0] == 0
    assert {"c1", "c2", "c3"} <= set(rows(anydb, "nodelist"))  # excludenodes does not hide new
    assert run(nodels, ["compute"], capsys)[1] == "c1\nc3\n"    # ...but does hide from others


@pytest.mark.parametrize("argv, message", [
    (["new1"], "Error: nodeadd needs a noderange and groups=<groups>"),
    (["new1", "vm.cpus=2"], "Error: nodeadd needs groups=<group1,group2,...>"),
    (["new1", "groups=a", "vm.cpus==2"], 'Error: nodeadd takes no criteria ("vm.cpus==2")'),
    (["new1", "groups=a", "vm.nosuch=2"], 'Error: No column "nosuch" in table "vm"'),
    (["new 1", "groups=a"], 'Error: invalid node name "new 1"'),
    (["new1,a!b,c?d", "groups=a"], 'Error: invalid node name "a!b" (and 1 more)'),
    (["new[1-3", "groups=a"], 'Error: unbalanced "["'),
    (["new5-new1", "groups=a"], 'Error: range "new5-new1" counts down'),
    (["new1", "new2", "groups=a"], "Error: the noderange arrived as several arguments"),
])
def test_nodeadd_errors_change_nothing(anydb, capsys, argv, message):
    before = snapshot(anydb)
    rc, out, err = run(nodeadd, argv, capsys)
    assert (rc, out) == (1, "")
    assert err.startswith(message) and "Traceback" not in err
    assert snapshot(anydb) == before


def test_nodeadd_warns_about_capitals(cli, capsys):
    rc, _, err = run(nodeadd, ["Node1,node2", "groups=x"], capsys)
    assert rc == 0
    assert err == ("Warning: the node name 'Node1' contains capital letters which may not be "
                   "resolved correctly by the dns server.\n")
    assert "Node1" in rows(cli, "nodelist")


# -- noderm ----------------------------------------------------------------------------------------
def test_noderm_removes_rows_from_every_node_table(anydb, capsys):
    with anydb.transaction():
        anydb.insert("mac", {"node": "vm01", "mac": "52:54:00:00:00:01"})
        anydb.insert("hosts", {"node": "vm01", "ip": "10.0.0.1"})
        anydb.insert("hosts", {"node": "vm02", "ip": "10.0.0.2", "disable": "1"})
    assert run(noderm, ["vm01,vm02"], capsys) == (0, "", "")
    for table in ("nodelist", "vm", "mac", "hosts", "nodehm"):
        assert not {"vm01", "vm02"} & set(rows(anydb, table)), table
    assert {"vm03", "vm04", "hv1"} <= set(rows(anydb, "nodelist"))
    assert "vms" in rows(anydb, "vm") and "vms" in rows(anydb, "nodehm")  # group rows stay
    assert run(nodels, ["vms"], capsys)[1] == "vm03\nvm04\n"


@pytest.mark.parametrize("argv, message", [
    (["vm01,ghost"], "Error: Invalid nodes and/or groups in noderange: ghost"),
    ([], "Error: noderm takes exactly one noderange"),
    (["vm01", "vm02"], "Error: the noderange arrived as several arguments (vm01 vm02)"),
    (["vms", "hv1"], "Error: noderm takes exactly one noderange"),
])
def test_noderm_errors_change_nothing(anydb, capsys, argv, message):
    before = snapshot(anydb)
    rc, out, err = run(noderm, argv, capsys)
    assert (rc, out) == (1, "")
    assert err.startswith(message)
    assert snapshot(anydb) == before


# -- bad regex values: that node's one-line error, the others as usual (issue 12 item 3) ----------
@pytest.fixture
def badcli(cli_env):
    """n1, n2 in all; n3 in bad,all; group all has a good regex hosts.ip, bad a broken one."""
    s = Store(cli_env)
    with s.transaction():
        s.insert("nodelist", {"node": "n1", "groups": "all"})
        s.insert("nodelist", {"node": "n2", "groups": "all"})
        s.insert("nodelist", {"node": "n3", "groups": "bad,all"})
        s.insert("hosts", {"node": "all", "ip": r"|n(\d+)|10.0.0.($1+0)|"})
        s.insert("hosts", {"node": "bad", "ip": "/a{99999999999}/x/"})
        s.insert("nodehm", {"node": "all", "mgt": "ipmi"})
    yield s
    s.close()


N3_ERROR = ("n3: Error: hosts.ip (value of group bad): bad regular expression "
            "'a{99999999999}': repeat count too big at position 2\n")


def test_nodels_bad_group_value_fails_only_that_node(badcli, capsys):
    assert run(nodels, ["all", "hosts.ip"], capsys) == (
        1, "n1: 10.0.0.1\nn2: 10.0.0.2\n", N3_ERROR)
    # long form: n3's other attributes are still shown
    rc, out, err = run(nodels, ["all", "hosts.ip", "mgt"], capsys)
    assert (rc, err) == (1, N3_ERROR)
    assert out == ("n1: hosts.ip: 10.0.0.1\nn1: mgt: ipmi\nn2: hosts.ip: 10.0.0.2\n"
                   "n2: mgt: ipmi\nn3: mgt: ipmi\n")
    # a node list without attributes does not render hosts.ip: no error
    assert run(nodels, ["all"], capsys) == (0, "n1\nn2\nn3\n", "")


def test_nodels_bad_value_json_and_blame(badcli, capsys):
    import json
    rc, out, err = run(nodels, ["all", "--json", "hosts.ip", "mgt"], capsys)
    objs = {o["node"]: o for o in map(json.loads, out.splitlines())}
    assert rc == 1 and err == ""
    assert objs["n1"]["ok"] and objs["n1"]["attributes"] == {"hosts.ip": "10.0.0.1",
                                                             "mgt": "ipmi"}
    assert objs["n3"]["ok"] is False and objs["n3"]["attributes"] == {"mgt": "ipmi"}
    assert objs["n3"]["message"] == N3_ERROR.split(": Error: ", 1)[1].rstrip("\n")
    rc, out, err = run(nodels, ["all", "-b", "hosts.ip"], capsys)
    assert (rc, err) == (1, N3_ERROR)
    assert out == ("n1: 10.0.0.1 (inherited from group all)\n"
                   "n2: 10.0.0.2 (inherited from group all)\n")


@pytest.mark.parametrize("argv, out", [
    (["all", "hosts.ip==10.0.0.2"], "n2\n"),           # criterion after the noderange
    (["hosts.ip==10.0.0.2"], "n2\n"),                  # the noderange is the selector
    (["all,-hosts.ip==10.0.0.2"], "n1\n"),             # excluded by a selector
    (["all", "hosts.ip!=x", "mgt"], "n1: mgt: ipmi\nn2: mgt: ipmi\n"),
])
def test_nodels_bad_value_under_a_selector(badcli, capsys, argv, out):
    rc, stdout, err = run(nodels, argv, capsys)
    assert (rc, stdout, err) == (1, out, N3_ERROR)
    assert "nested too deeply" not in err


def test_nodels_catastrophic_value_returns_quickly(badcli, capsys):
    import time
    with badcli.transaction():
        badcli.upsert("hosts", {"node": "bad"}, {"ip": "/^(a|aa)+$/x/"})
        badcli.upsert("nodelist", {"node": "a" * 31 + "b"}, {"groups": "bad,all"})
    t0 = time.monotonic()
    rc, out, err = run(nodels, ["all", "hosts.ip"], capsys)
    assert time.monotonic() - t0 < 1.5
    assert rc == 1 and out == "n1: 10.0.0.1\nn2: 10.0.0.2\nn3: n3\n"
    assert err == (f"{'a' * 31}b: Error: hosts.ip (value of group bad): regular expression "
                   "'^(a|aa)+$' took longer than 0.1 s (catastrophic backtracking?)\n")


def test_nodech_and_noderm_skip_only_the_bad_node(badcli, capsys):
    with badcli.transaction():
        badcli.insert("vm", {"node": "all", "nics": "br0"})
        badcli.insert("vm", {"node": "bad", "nics": "|(unbalanced|x|"})
    rc, out, err = run(nodech, ["all", "vm.nics,=br1"], capsys)
    assert (rc, out) == (1, "")
    assert err.startswith("n3: Error: vm.nics (value of group bad): bad regular expression")
    assert {n: r["nics"] for n, r in rows(badcli, "vm").items()} == {
        "all": "br0", "bad": "|(unbalanced|x|", "n1": "br0,br1", "n2": "br0,br1"}
    rc, out, err = run(noderm, ["hosts.ip==10.0.0.1"], capsys)
    assert (rc, out, err) == (1, "", N3_ERROR)
    assert set(rows(badcli, "nodelist")) == {"n2", "n3"}


# -- every kind of bad value through the real nodels command -----------------------------------
SUBPROCESS_BAD = {  # group -> (value, what its error says)
    "repeat": ("/a{99999999999}/x/", "repeat count too big"),
    "deep600": ("/" + "(" * 600 + "a" + ")" * 600 + "/x/", "too long"),
    "deep300": ("/" + "(" * 300 + "a" + ")" * 300 + "/x/", "nested more than 50 deep"),
    "escape": (r"/\q/x/", "bad escape"),
    "unbalanced": ("/(a/x/", "missing )"),
    "closing": ("/a)/x/", "unbalanced parenthesis"),
    "slow": ("/^(a|aa)+$/x/", "(catastrophic backtracking?)"),
    "divzero": (r"|(\d+)|($1/0)|", "Illegal division by zero"),
    "power": (r"|(\d+)|(2**99999999)|", "number too large"),
    "exprdeep": (r"|(\d+)|(" + "-" * 150 + "1)|", "nested too deeply"),
    "syntax": (r"|(\d+)|(1 +)|", "syntax error"),
    "unsafe": (r"|(\d+)|(__import__('os'))|", "not allowed"),
}


def test_every_bad_value_is_one_line_per_node_from_the_real_command(cli_env):
    import os
    import subprocess
    import sys
    from pathlib import Path

    s = Store(cli_env)
    with s.transaction():
        s.insert("hosts", {"node": "all", "ip": r"|\D+(\d+)|10.1.0.($1+0)|"})
        s.insert("nodelist", {"node": "good1", "groups": "all"})
        s.insert("nodelist", {"node": "good2", "groups": "all"})
        for i, (group, (value, _)) in enumerate(SUBPROCESS_BAD.items()):
            node = ("a" * 31 + "b") if group == "slow" else f"x{group}{i}"
            s.insert("nodelist", {"node": node, "groups": f"{group},all"})
            s.insert("hosts", {"node": group, "ip": value})
    nodes = {r["node"]: r["groups"].split(",")[0] for r in s.select("nodelist")}
    s.close()
    nodels_bin = Path(sys.executable).parent / "nodels"
    for argv, good in ((["all", "hosts.ip"], "good1: 10.1.0.1\ngood2: 10.1.0.2\n"),
                       (["hosts.ip!=nothing"], "good1\ngood2\n")):
        p = subprocess.run([str(nodels_bin), *argv], env=dict(os.environ), capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 1 and p.stdout == good, (argv, p.stdout, p.stderr)
        lines = p.stderr.splitlines()
        assert "Traceback" not in p.stderr
        assert len(lines) == len(SUBPROCESS_BAD), p.stderr      # one line per bad node
        for line in lines:
            node, rest = line.split(": Error: ", 1)
            group = nodes[node]
            assert rest.startswith(f"hosts.ip (value of group {group}): "), line
            assert SUBPROCESS_BAD[group][1] in rest, line
