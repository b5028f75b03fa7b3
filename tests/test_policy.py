import pytest

from nodemgr.errors import PolicyDenied
from nodemgr.policy import check


def expand(nr):
    return {"rack1": ["n1", "n2"], "n3": ["n3"], "all": ["n1", "n2", "n3"]}.get(nr, nr.split(","))


def run(rows, user="alice", command="rpower", nodes=("n1", "n2", "n3"), args=("stat",)):
    check(rows, user=user, host="localhost", command=command, nodes=list(nodes), args=list(args),
          expand=expand)


def row(priority, **kw):
    base = {"priority": str(priority), "name": None, "host": None, "commands": None,
            "noderange": None, "parameters": None, "rule": "allow"}
    base.update(kw)
    return base


def test_no_rows_denies():
    with pytest.raises(PolicyDenied, match="Permission denied for request"):
        run([])


def test_root_row_allows_root_only():
    rows = [row(1, name="root")]
    run(rows, user="root")
    with pytest.raises(PolicyDenied):
        run(rows, user="alice")


def test_priority_order_first_decides():
    rows = [row(2, name="alice", rule="allow"), row(1, name="alice", rule="deny")]
    with pytest.raises(PolicyDenied):
        run(rows)


def test_partial_allow_continues_for_remaining_nodes():
    rows = [row(1, noderange="rack1"), row(2, noderange="n3", rule="deny")]
    with pytest.raises(PolicyDenied):
        run(rows)
    run([row(1, noderange="rack1"), row(2, noderange="n3")])


def test_commands_and_parameters_filter():
    rows = [row(1, commands="rpower,lsvm", parameters="^stat$")]
    run(rows)
    with pytest.raises(PolicyDenied):
        run(rows, args=("off",))
    with pytest.raises(PolicyDenied):
        run(rows, command="rmvm")


def test_noderange_row_skipped_for_request_without_nodes():
    with pytest.raises(PolicyDenied):
        run([row(1, noderange="all")], nodes=())
    run([row(1, noderange="all"), row(2)], nodes=())


def test_audit_rows_redact_passwords_and_honour_skip(sqlite_store):
    from nodemgr.policy import audit

    audit(sqlite_store, user="root", host="localhost", command="rpower", noderange="vm1",
          args=["on", "passwd.password=secret", "--password", "hunter2"], status="Allowed")
    audit(sqlite_store, user="root", host="localhost", command="mkvm", noderange="vm2",
          args=[], status="Denied")
    rows = sqlite_store.select("auditlog")
    assert [r["recid"] for r in rows] == ["1", "2"]
    assert rows[0]["args"] == "on passwd.password=****** --password ******"
    assert "secret" not in str(rows) and "hunter2" not in str(rows)
    assert rows[1]["status"] == "Denied" and rows[1]["command"] == "mkvm"
    sqlite_store.upsert("site", {"key": "auditskipcmds"}, {"value": "rpower"})
    audit(sqlite_store, user="root", host="localhost", command="rpower", noderange="vm1",
          args=["on"], status="Allowed")
    assert len(sqlite_store.select("auditlog")) == 2
