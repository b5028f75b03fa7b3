"""The install-finished callback through Flask's test client, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from nodemgr.web.app import create_app
from tests.web.provision import arm, define, state

NODES = {"node01": ("10.99.0.101", "52:54:00:aa:bb:01"),
         "node02": ("10.99.0.102", "52:54:00:aa:bb:02")}


@pytest.fixture
def env(store, tmp_path):
    tftp = tmp_path / "tftpboot"
    tftp.mkdir()
    define(store, str(tftp), NODES)
    urls = arm(store, list(NODES))
    app = create_app(db_url=store.url, tftp_root=str(tftp))
    return store, app.test_client(), urls, tftp


def get(client, url, addr="10.99.0.101", **headers):
    return client.get(url, environ_base={"REMOTE_ADDR": addr}, headers=headers)


def audit_rows(store):
    return store.select("auditlog")


def test_success_advances_chain_and_marks_booted(env):
    store, client, urls, tftp = env
    before = state(store, "node01")
    assert before[0] == "installing" and before[1].startswith("install ") and before[3]
    r = get(client, urls["node01"])
    assert r.status_code == 200, r.text
    assert r.text == "node01: booted\n"
    status, currstate, currchain, tokenhash, _ = state(store, "node01")
    assert (status, currstate, tokenhash) == ("booted", "boot", None)
    assert "LOCALBOOT" in (tftp / "pxelinux.cfg" / "node01").read_text()
    assert "LOCALBOOT" in (tftp / "pxelinux.cfg" / "01-52-54-00-aa-bb-01").read_text()
    last = audit_rows(store)[-1]
    assert (last["command"], last["noderange"], last["status"]) == (
        "installfinished", "node01", "allowed")
    assert "token" not in (last["args"] or "").replace("auth=token", "")
    # node02 untouched
    assert state(store, "node02")[0] == "installing"


def test_rhevh_route_uses_rhevhupdateflag(env):
    store, client, urls, _ = env
    url = urls["node01"].replace("/install-finished/", "/xcatrhevh/rhevh_finish_install/")
    assert get(client, url).status_code == 200
    assert audit_rows(store)[-1]["command"] == "rhevhupdateflag"


def test_replay_is_refused(env):
    store, client, urls, _ = env
    assert get(client, urls["node01"]).status_code == 200
    after = state(store, "node01")
    r = get(client, urls["node01"])
    assert r.status_code == 403 and "token" in r.text
    assert state(store, "node01") == after
    assert audit_rows(store)[-1]["status"].startswith("denied")


@pytest.mark.parametrize("mangle", [
    lambda u: u.split("?")[0],                          # no token
    lambda u: u[:-4] + "AAAA",                          # wrong token
    lambda u: u + "x",                                  # longer token
])
def test_bad_token_changes_nothing(env, mangle):
    store, client, urls, _ = env
    before = state(store, "node01")
    r = get(client, mangle(urls["node01"]))
    assert r.status_code == 403
    assert state(store, "node01") == before


def test_expired_token_refused(env):
    store, client, urls, _ = env
    store.update("nodetoken", {"node": "node01"}, {"expires": "1000"})
    before = state(store, "node01")
    assert get(client, urls["node01"]).status_code == 403
    assert state(store, "node01") == before


def test_other_nodes_token_refused(env):
    store, client, urls, _ = env
    url = urls["node02"].replace("node02", "node01")
    assert get(client, url).status_code == 403
    assert state(store, "node01")[0] == "installing"


def test_spoofed_source_refused(env):
    store, client, urls, _ = env
    before = state(store, "node01")
    r = get(client, urls["node01"], addr="10.99.0.102")  # node02's address
    assert r.status_code == 403 and "not from the node's address" in r.text
    assert state(store, "node01") == before
    assert "token=" not in r.text


def test_forwarded_for_ignored_unless_proxy_trusted(env):
    store, client, urls, _ = env
    r = get(client, urls["node01"], addr="127.0.0.1", **{"X-Forwarded-For": "10.99.0.101"})
    assert r.status_code == 403
    store.upsert("site", {"key": "callbackproxies"}, {"value": "127.0.0.0/8"})
    # a client-supplied hop to the left of the proxy's own entry is not believed
    r = get(client, urls["node01"], addr="127.0.0.1",
            **{"X-Forwarded-For": "10.99.0.101, 10.99.0.102"})
    assert r.status_code == 403
    r = get(client, urls["node01"], addr="127.0.0.1", **{"X-Forwarded-For": "10.99.0.101"})
    assert r.status_code == 200


def test_unknown_node_404_and_malformed_400(env):
    store, client, urls, _ = env
    before = [state(store, n) for n in NODES]
    n_audit = len(audit_rows(store))
    assert get(client, "/install-finished/nosuchnode?token=x").status_code == 404
    for bad in ["/install-finished/%2e%2e", "/install-finished/-rf",
                "/xcatrhevh/rhevh_finish_install/a%00b", "/install-finished/.hidden"]:
        assert get(client, bad).status_code == 400, bad
    assert get(client, "/install-finished/a/b").status_code == 404  # not a route
    assert [state(store, n) for n in NODES] == before
    assert len(audit_rows(store)) == n_audit


def test_policy_denies_when_tokens_off_without_xcat_row(env):
    store, client, urls, _ = env
    store.upsert("site", {"key": "callbacktokens"}, {"value": "no"})
    bare = urls["node01"].split("?")[0]
    before = state(store, "node01")
    r = get(client, bare)
    assert r.status_code == 403 and "policy" in r.text
    assert state(store, "node01") == before
    # xCAT's anonymous row 7 makes the address alone enough
    store.insert("policy", {"priority": "7", "commands": "rhevhupdateflag,installfinished",
                            "rule": "allow"})
    assert get(client, bare).status_code == 200
    assert state(store, "node01")[0] == "booted"


def test_policy_deny_row_wins(env):
    store, client, urls, _ = env
    store.insert("policy", {"priority": "2", "commands": "installfinished",
                            "noderange": "node01", "rule": "deny"})
    before = state(store, "node01")
    assert get(client, urls["node01"]).status_code == 403
    assert state(store, "node01") == before
    assert get(client, urls["node02"], addr="10.99.0.102").status_code == 200


def test_dns_address_when_no_hosts_ip(env):
    store, client, urls, _ = env
    store.upsert("nodelist", {"node": "localhost"}, {"groups": "all"})
    store.upsert("chain", {"node": "localhost"}, {"currstate": "boot"})
    store.insert("policy", {"priority": "7", "commands": "installfinished", "rule": "allow"})
    store.upsert("site", {"key": "callbacktokens"}, {"value": "no"})
    # localhost resolves to 127.0.0.1 (and ::1): the node is itself
    assert get(client, "/install-finished/localhost", addr="127.0.0.1").status_code == 200
    assert get(client, "/install-finished/localhost", addr="10.1.1.1").status_code == 403


def test_boot_files_over_http(env):
    store, client, urls, tftp = env
    (tftp / "e2e").mkdir()
    (tftp / "e2e" / "vmlinuz").write_bytes(b"K" * 1000)
    (tftp / "out").symlink_to("/etc")
    r = client.get("/tftpboot/e2e/vmlinuz")
    assert r.status_code == 200 and r.data == b"K" * 1000
    assert client.get("/tftpboot/pxelinux.cfg/01-52-54-00-aa-bb-01").status_code == 200
    assert client.get("/tftpboot/out/passwd").status_code == 403
    assert client.get("/tftpboot/../etc/passwd").status_code in (403, 404)
    assert client.get("/tftpboot/missing").status_code == 404
    assert client.get("/healthz").text == "ok\n"


def test_errors_are_one_plain_text_line_never_html(tmp_path, caplog):
    """Issue 12: no Flask HTML page or traceback reaches a client; an unexpected failure is
    logged once and answered 500 in one line."""
    from nodemgr.web.app import create_app

    client = create_app(db_url="bogus://nowhere", tftp_root=str(tmp_path)).test_client()
    with caplog.at_level("ERROR", logger="nodemgr.web"):
        r = client.get("/install-finished/node01?token=secret-token")
    assert r.status_code == 500 and r.mimetype == "text/plain"
    assert r.get_data(as_text=True) == "500 internal error (logged on the server)\n"
    msgs = [rec.getMessage() for rec in caplog.records if rec.name == "nodemgr.web"]
    assert len(msgs) == 1 and "ConfigError" in msgs[0] and "secret-token" not in msgs[0]
    r = client.get("/no/such/route")
    assert (r.status_code, r.mimetype, r.get_data(as_text=True)) == (404, "text/plain",
                                                                      "404 Not Found\n")
    r = client.post("/healthz")
    assert r.status_code == 405 and "GET" in r.headers["Allow"]
    assert "<" not in r.get_data(as_text=True)
