"""nodemgr.objdef: the attribute map (against the schema), the stanza parser, and reading and
writing objects on real SQLite and PostgreSQL stores (the ``store`` fixture)."""

from __future__ import annotations

import pytest

from nodemgr import objdef
from nodemgr.objdef import TYPES, Change, ObjectError, Objects
from nodemgr.tables.schema import TABLES


# -- the map ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(TYPES))
def test_every_mapped_attribute_is_a_column_of_this_schema(name):
    t = TYPES[name]
    ktab, kcol = t.keyentry.split(".")
    assert kcol in TABLES[ktab].columns
    for attr, entry in t.attrs.items():
        tab, col = entry.split(".")
        assert tab in TABLES and col in TABLES[tab].columns, (attr, entry)
    for attr in t.only_if:
        assert attr in t.attrs


def test_left_out_attributes_name_tables_this_schema_lacks():
    for name, attrs in objdef.NOT_HERE.items():
        for attr, where in attrs.items():
            assert attr not in TYPES[name].attrs, attr
            for entry in where.split(", "):
                assert entry.split(".")[0] not in TABLES, (attr, entry)


def test_xcat_names_from_the_issue_map_to_their_columns():
    node = TYPES["node"].attrs
    assert {a: node[a] for a in ("groups", "ip", "mac", "mgt", "os", "provmethod", "netboot",
                                 "xcatmaster", "vmhost", "vmmemory", "vmcpus", "vmstorage",
                                 "vmnics", "status", "currstate", "postscripts")} == {
        "groups": "nodelist.groups", "ip": "hosts.ip", "mac": "mac.mac", "mgt": "nodehm.mgt",
        "os": "nodetype.os", "provmethod": "nodetype.provmethod",
        "netboot": "noderes.netboot", "xcatmaster": "noderes.xcatmaster",
        "vmhost": "vm.host", "vmmemory": "vm.memory", "vmcpus": "vm.cpus",
        "vmstorage": "vm.storage", "vmnics": "vm.nics", "status": "nodelist.status",
        "currstate": "chain.currstate", "postscripts": "postscripts.postscripts"}
    assert TYPES["group"].attrs["vmmemory"] == "vm.memory"
    assert "groups" not in TYPES["group"].attrs and "members" in TYPES["group"].attrs


def test_unknown_type_and_attribute_messages():
    with pytest.raises(ObjectError, match=r"^Type 'bogus' is not a valid xCAT object type\.$"):
        objdef.object_type("bogus")
    with pytest.raises(ObjectError, match="no routes table"):
        objdef.object_type("route")
    with pytest.raises(ObjectError, match=r"^'foo' is not a valid attribute name for an "
                       r"object type of 'node'\.$"):
        objdef.check_attribute(TYPES["node"], "foo")
    with pytest.raises(ObjectError, match=r"ipmi\.bmc, a table nodemgr does not have"):
        objdef.check_attribute(TYPES["node"], "bmc")
    with pytest.raises(ObjectError, match=r"nics\.nicips"):
        objdef.check_attribute(TYPES["node"], "nicips.eth0")
    objdef.check_attribute(TYPES["site"], "anything.goes")


# -- parsing ----------------------------------------------------------------------------------
def test_assignments_and_selections():
    assert objdef.parse_assignment("groups,=a,b") == Change("groups", ",=", "a,b")
    assert objdef.parse_assignment("groups^=a") == Change("groups", "^=", "a")
    assert objdef.parse_assignment("kcmdline=a=b c") == Change("kcmdline", "=", "a=b c")
    assert objdef.parse_assignment("os=") == Change("os", "=", "")
    with pytest.raises(ObjectError, match=r"^Incorrect 'attr=val' pair - =x\.$"):
        objdef.parse_assignment("=x")
    w = objdef.parse_where("os=~^sles[0-9]+$")
    assert (w.attr, w.op, w.matches("sles15"), w.matches("rhels9"), w.matches(None)) == \
        ("os", "=~", True, False, False)
    assert objdef.parse_where("mgt!=kvm").matches(None)
    assert objdef.parse_where("os!~/^rh/").matches("sles")
    with pytest.raises(ObjectError, match="Incorrect selection string"):
        objdef.parse_where("os")
    with pytest.raises(ObjectError, match="Incorrect selection string"):
        objdef.parse_where("os=~(")


STANZA = """\
# <xCAT data object stanza file>

default-node:
    groups=all,compute
    arch=x86_64

n1:
    objtype=node
    mac="aa:bb:cc:dd:ee:01"
    kcmdline=console=ttyS0 quiet
n2:
    objtype=node
    arch=ppc64le
default-node:
    arch=
fd59::/64:
    objtype=network
    net=fd59::
    mask=/64
n3:
	objtype=node
"""


def test_stanza_file_with_defaults_quotes_comments_and_ipv6_names():
    got = [(s.name, s.objtype, s.attrs, s.line) for s in objdef.parse_stanza(STANZA)]
    assert got == [
        ("n1", "node", {"groups": "all,compute", "arch": "x86_64",
                        "mac": "aa:bb:cc:dd:ee:01", "kcmdline": "console=ttyS0 quiet"}, 7),
        ("n2", "node", {"groups": "all,compute", "arch": "ppc64le"}, 11),
        ("fd59::/64", "network", {"net": "fd59::", "mask": "/64"}, 16),
        ("n3", "node", {"groups": "all,compute"}, 20),  # arch= unset the default
    ]


@pytest.mark.parametrize("text,message", [
    ("n1:\n  objtype=node\n  bogus=1\n",
     "stanza line 3: 'bogus' is not a valid attribute name for an object type of 'node'."),
    ("n1:\n  objtype=node\n  groups=all\njunk\n",
     "stanza line 4: 'junk' is neither a 'name:' header nor an 'attr=value' line"),
    ("  groups=all\n", "stanza line 1: 'groups=' comes before any 'name:' header"),
    ("n1:\n  groups=all\n", "stanza line 1: No objtype value was specified for 'n1'. Cannot "
     "create object definition."),
    ("n1:\n  objtype=frob\n", "stanza line 1: Type 'frob' is not a valid xCAT object type."),
    ("n1:\n objtype=node\nn1:\n objtype=node\n", "stanza line 3: a second stanza for 'n1' "
     "(the first is on line 1; only one stanza may exist for each object name)"),
    ("default-thing:\n a=1\n", "stanza line 1: Type 'thing' is not a valid xCAT object type."),
])
def test_malformed_stanzas_name_the_line(text, message):
    with pytest.raises(ObjectError) as exc:
        objdef.parse_stanza(text)
    assert str(exc.value) == message


def test_render_stanza_is_xcats_layout():
    text = objdef.render_stanza([("n1", "node", {"mac": "m", "arch": "x", "os": None}),
                                 ("g", "group", {"members": None})])
    assert text == ("# <xCAT data object stanza file>\n\nn1:\n    objtype=node\n"
                    "    arch=x\n    mac=m\n\ng:\n    objtype=group\n    members=\n")
    parsed = objdef.parse_stanza(text)
    assert [(s.name, s.attrs) for s in parsed] == [("n1", {"arch": "x", "mac": "m"}),
                                                   ("g", {"members": ""})]


# -- reading and writing on both back ends ----------------------------------------------------
def seed(s) -> None:
    with s.transaction():
        s.upsert("postscripts", {"node": "xcatdefaults"},
                 {"postscripts": "syslog,remoteshell,syncfiles", "postbootscripts": "otherpkgs"})
        for n, g in (("vm1", "vms,all"), ("vm2", "vms,all"), ("hv1", "hvs,all")):
            s.insert("nodelist", {"node": n, "groups": g})
        s.insert("vm", {"node": "vms", "memory": "2048", "nics": "|vm(\\d+)|br($1+0)|"})
        s.insert("vm", {"node": "vm1", "memory": "8192"})
        s.insert("hosts", {"node": "vms", "ip": "|vm(\\d+)|10.0.0.($1+10)|"})
        s.insert("postscripts", {"node": "vm2", "postscripts": "mine"})
        s.insert("nodegroup", {"groupname": "big", "grouptype": "dynamic",
                               "wherevals": "vmmemory==8192", "members": "dynamic"})


def rows(s, table):
    return sorted(tuple(sorted((k, v) for k, v in r.items() if v is not None))
                   for r in s.select(table, include_disabled=True))


def snapshot(s):
    return {t: rows(s, t) for t in TABLES if t != "auditlog"}


def test_node_values_are_what_the_node_sees_or_its_own_rows(store):
    seed(store)
    objs = Objects(store)
    node = TYPES["node"]
    seen = objs.read(node, ["vm1", "vm2"])
    assert (seen["vm1"]["vmmemory"], seen["vm1"]["vmnics"], seen["vm1"]["ip"]) == \
        ("8192", "br1", "10.0.0.11")
    assert seen["vm2"]["vmmemory"] == "2048"
    assert seen["vm1"]["postscripts"] == "syslog,remoteshell,syncfiles"
    assert seen["vm2"]["postscripts"] == "syslog,remoteshell,syncfiles,mine"
    assert seen["vm2"]["postbootscripts"] == "otherpkgs"
    own = objs.read(node, ["vm1", "vm2"], own=True)
    assert (own["vm1"]["vmmemory"], own["vm1"]["vmnics"], own["vm1"]["ip"]) == \
        ("8192", None, None)
    assert (own["vm2"]["postscripts"], own["vm2"]["postbootscripts"]) == ("mine", None)


def test_group_values_are_its_rows_and_computed_members(store):
    seed(store)
    objs = Objects(store)
    assert objs.names(TYPES["group"]) == ["all", "big", "hvs", "vms"]
    got = objs.read(TYPES["group"], ["vms", "big", "all"])
    assert got["vms"]["vmmemory"] == "2048"
    assert got["vms"]["vmnics"] == "|vm(\\d+)|br($1+0)|"  # raw: no node name to render with
    assert got["vms"]["members"] == "vm1,vm2"
    assert got["all"]["members"] == "vm1,vm2,hv1"  # nodelist order
    assert (got["big"]["grouptype"], got["big"]["members"]) == ("dynamic", "vm1")


def test_chdef_rules_replace_append_remove_and_unset(store):
    seed(store)
    objs = Objects(store)
    node = TYPES["node"]
    objdef.apply(objs, node, {"vm1": [Change("groups", ",=", "gpu,vms"),
                                      Change("vmcpus", "=", "4")],
                              "vm2": [Change("groups", "^=", "vms"),
                                      Change("vmnics", ",=", "br9")]})
    assert store.get("nodelist", {"node": "vm1"})["groups"] == "vms,all,gpu"
    assert store.get("nodelist", {"node": "vm2"})["groups"] == "all"
    assert store.get("vm", {"node": "vm1"})["cpus"] == "4"
    # vm2 was in vms: its nics came from the group (br2), the node's own row gets the list
    assert store.get("vm", {"node": "vm2"})["nics"] == "br2,br9"
    objdef.apply(objs, node, {"vm1": [Change("vmmemory", "=", "")]})
    assert store.get("vm", {"node": "vm1"})["memory"] is None
    assert objs.read(node, ["vm1"])["vm1"]["vmmemory"] == "2048"  # inherits again


def test_scripts_of_xcatdefaults_are_not_stored_again(store):
    seed(store)
    objs = Objects(store)
    warnings = objdef.apply(objs, TYPES["node"], {
        "hv1": [Change("postscripts", "=", "syslog,remoteshell,syncfiles,extra")]})
    assert store.get("postscripts", {"node": "hv1"})["postscripts"] == "extra"
    assert warnings[0] == "hv1: postscripts 'syslog' is already included in the 'xcatdefaults'."


def test_static_group_members_change_the_nodes_groups(store):
    seed(store)
    objs = Objects(store)
    group = TYPES["group"]
    objdef.apply(objs, group, {"LinuxNodes": [Change("members", "=", "vm1,hv1")]},
                 new={"LinuxNodes"})
    assert store.get("nodegroup", {"groupname": "LinuxNodes"})["grouptype"] == "static"
    assert store.get("nodelist", {"node": "hv1"})["groups"] == "hvs,all,LinuxNodes"
    objdef.apply(objs, group, {"LinuxNodes": [Change("members", "=", "vm2")]})
    assert [store.get("nodelist", {"node": n})["groups"] for n in ("vm1", "vm2", "hv1")] == \
        ["vms,all", "vms,all,LinuxNodes", "hvs,all"]
    objdef.apply(objs, group, {"LinuxNodes": [Change("members", ",=", "hv1")]})
    objdef.apply(objs, group, {"LinuxNodes": [Change("members", "^=", "vm2")]})
    assert objs.members("LinuxNodes") == ["hv1"]
    with pytest.raises(ObjectError, match="Invalid nodes and/or groups in noderange: nope"):
        objdef.apply(objs, group, {"LinuxNodes": [Change("members", ",=", "nope")]})
    objdef.remove(objs, group, ["LinuxNodes"])
    assert store.get("nodelist", {"node": "hv1"})["groups"] == "hvs,all"
    assert store.get("nodegroup", {"groupname": "LinuxNodes"}) is None


def test_dynamic_groups_take_selections_only(store):
    seed(store)
    objs = Objects(store)
    group = TYPES["group"]
    objdef.apply(objs, group, {"kvm": []}, new={"kvm"}, dynamic=True,
                 wherevals=["vmmemory==2048"])
    assert objs.members("kvm") == ["vm2"]
    objdef.apply(objs, group, {"kvm": []}, dynamic=True, wherevals=["ip=~^10"], where_op=",=")
    assert store.get("nodegroup", {"groupname": "kvm"})["wherevals"] == \
        "vmmemory==2048::ip=~^10"
    with pytest.raises(ObjectError, match="^Can not assign attributes to dynamic node group"):
        objdef.apply(objs, group, {"kvm": [Change("vmcpus", "=", "2")]})
    with pytest.raises(ObjectError, match="Incorrect attribute 'nope'"):
        objdef.apply(objs, group, {"d2": []}, new={"d2"}, dynamic=True, wherevals=["nope==1"])


def test_other_types_osimage_network_policy_site(store):
    objs = Objects(store)
    osimage, network = TYPES["osimage"], TYPES["network"]
    with pytest.raises(ObjectError, match=r"^Cannot set the attr='template' attribute unless "
                       r"'imagetype=linux'"):
        objdef.apply(objs, osimage, {"img": [Change("template", "=", "/t")]}, new={"img"})
    objdef.apply(objs, osimage, {"img": [Change("imagetype", "=", "linux"),
                                         Change("template", "=", "/t"),
                                         Change("osvers", "=", "rhels9")]}, new={"img"})
    assert store.get("linuximage", {"imagename": "img"})["template"] == "/t"
    assert objs.read(osimage, ["img"])["img"]["template"] == "/t"
    objdef.apply(objs, network, {"n1": [Change("net", "=", "10.0.0.0"),
                                        Change("mask", "=", "255.0.0.0")]}, new={"n1"})
    with pytest.raises(ObjectError, match="^A network definition called 'n1' already exists"):
        objdef.apply(objs, network, {"n2": [Change("net", "=", "10.0.0.0"),
                                            Change("mask", "=", "255.0.0.0")]}, new={"n2"})
    with pytest.raises(ObjectError, match="The required attributes are: net mask"):
        objdef.apply(objs, network, {"n3": [Change("gateway", "=", "1.1.1.1")]}, new={"n3"})
    objdef.apply(objs, network, {"n1": [Change("gateway", "=", "10.0.0.1")]})
    assert store.get("networks", {"net": "10.0.0.0", "mask": "255.0.0.0"})["gateway"] == \
        "10.0.0.1"
    objdef.apply(objs, TYPES["policy"], {"7.0": [Change("name", "=", "admin1"),
                                                 Change("rule", "=", "allow")]}, new={"7.0"})
    assert objs.read(TYPES["policy"], ["7.0"])["7.0"]["rule"] == "allow"
    site = TYPES["site"]
    objdef.apply(objs, site, {"clustersite": [Change("domain", "=", "lab"),
                                              Change("dhcpsetup", "=", "")]})
    got = objs.read(site, ["clustersite"])["clustersite"]
    assert got["domain"] == "lab" and "dhcpsetup" not in got
    with pytest.raises(ObjectError, match="site definition cannot be removed"):
        objdef.remove(objs, site, ["clustersite"])


def test_an_error_anywhere_writes_nothing(store):
    seed(store)
    before = snapshot(store)
    objs = Objects(store)
    with pytest.raises(ObjectError):
        objdef.apply(objs, TYPES["node"], {"vm1": [Change("vmcpus", "=", "2")],
                                           "vm2": [Change("nope", "=", "x")]})
    with pytest.raises(ObjectError):  # the check happens in the plan, after vm1's values
        objdef.apply(objs, TYPES["group"], {"g1": [Change("members", "=", "vm1")],
                                            "g2": [Change("members", "=", "ghost")]},
                     new={"g1", "g2"})
    assert snapshot(store) == before


def test_removing_a_node_clears_every_node_table(store):
    seed(store)
    with store.transaction():
        store.insert("kvm_nodedata", {"node": "vm1", "xml": "<domain/>"})
        store.insert("chain", {"node": "vm1", "currstate": "boot"})
    objs = Objects(store)
    objdef.remove(objs, TYPES["node"], ["vm1"])
    for t in TABLES.values():
        if t.nodecol:
            assert not store.select(t.name, {t.nodecol: "vm1"}, include_disabled=True), t.name
    assert store.get("vm", {"node": "vms"}) is not None  # the group's row stays


def test_force_unsets_the_mapped_attributes_only(store):
    """mkdef -f: the object gets exactly the new attributes; what xCAT's map does not cover
    (kvm_nodedata.xml, vm.vidproto) stays, rows left empty go."""
    seed(store)
    with store.transaction():
        store.insert("kvm_nodedata", {"node": "vm1", "xml": "<domain/>"})
        store.upsert("vm", {"node": "vm1"}, {"vidproto": "spice", "cpus": "2"})
        store.insert("chain", {"node": "vm1", "currstate": "boot"})
    objs = Objects(store)
    objdef.apply(objs, TYPES["node"], {"vm1": [Change("groups", "=", "all")]},
                 replace={"vm1"})
    assert store.get("kvm_nodedata", {"node": "vm1"})["xml"] == "<domain/>"
    vm = store.get("vm", {"node": "vm1"})
    assert (vm["vidproto"], vm["cpus"], vm["memory"]) == ("spice", None, None)
    assert store.get("chain", {"node": "vm1"}) is None  # nothing was left in it
    assert store.get("nodelist", {"node": "vm1"})["groups"] == "all"
