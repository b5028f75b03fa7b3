"""The resolver reads only the rows it needs for a few nodes, and the same values as a
whole-table read."""

from nodemgr.tables.resolve import Resolver


def fill(store, n=300):
    with store.transaction():
        for i in range(n):
            store.insert("nodelist", {"node": f"vm{i:03d}", "groups": f"rack{i % 3},vm"})
            store.insert("kvm_nodedata", {"node": f"vm{i:03d}", "xml": f"<domain>{i}</domain>"})
        store.insert("vm", {"node": "rack1", "memory": "2048"})
        store.insert("vm", {"node": "vm", "memory": "1024", "cpus": "2"})
        store.insert("vm", {"node": "vm004", "cpus": "8"})


def test_few_nodes_read_few_rows_with_group_values(store):
    fill(store)
    r = Resolver(store)
    got = r.attrs(["vm004", "vm007"], ["vm.memory", "vm.cpus", "kvm_nodedata.xml"])
    assert got == {
        "vm004": {"vm.memory": "2048", "vm.cpus": "8", "kvm_nodedata.xml": "<domain>4</domain>"},
        "vm007": {"vm.memory": "2048", "vm.cpus": "2", "kvm_nodedata.xml": "<domain>7</domain>"},
    }
    assert set(r._rows["kvm_nodedata"]) == {"vm004", "vm007"}
    whole = Resolver(store)
    nodes = whole.nodes()
    assert len(nodes) == 300
    everything = whole.attrs(nodes, ["vm.memory", "vm.cpus", "kvm_nodedata.xml"])
    assert "kvm_nodedata" in whole._complete
    assert {n: everything[n] for n in ("vm004", "vm007")} == got


def test_one_statement_reads_every_table_of_an_attrs_call(store):
    fill(store, 20)
    statements = []
    real = store._run
    store._run = lambda sql, params: (statements.append(sql), real(sql, params))[1]
    r = Resolver(store, nodes_by_key=True)
    got = r.attrs(["vm004"], ["vm.memory", "vm.cpus", "kvm_nodedata.xml", "hosts.ip"])
    assert got == {"vm004": {"vm.memory": "2048", "vm.cpus": "8",
                             "kvm_nodedata.xml": "<domain>4</domain>", "hosts.ip": None}}
    # the node's groups, then the four tables at once, then site.hierarchicalattrs
    assert [s.split(" FROM ")[1].split()[0] for s in statements] == [
        '"nodelist"', '"vm"', '"site"']
    assert "UNION ALL" in statements[1] and '"kvm_nodedata"' in statements[1]
    statements.clear()
    assert r.attrs(["vm004"], ["vm.memory"]) == {"vm004": {"vm.memory": "2048"}}
    assert statements == []  # cached for the life of the resolver
