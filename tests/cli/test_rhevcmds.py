"""lsve, cfgve, chhypervisor and rmhypervisor end to end: tables -> dispatch -> RhevmDriver
-> two simulated engines (API v4 and RHEV-M 3.x v3) over HTTPS on loopback with a test CA;
hosts grouped per engine (hypervisor.mgr)."""

from __future__ import annotations

import time

import pytest

from nodemgr.cli import nodecmds, rhevcmds, tablecmds
from tests.simulators.ovirt import TlsEngine

pytestmark = pytest.mark.slow


@pytest.fixture
def engines(cli_env, tmp_path):
    with TlsEngine(tmp_path, api_mode="4") as a, TlsEngine(tmp_path, api_mode="3") as b:
        for node, sim in (("rhevm4", a), ("rhevm3", b)):
            assert nodecmds.nodeadd([node, "groups=engine,all"]) == 0
            assert tablecmds.chtab([f"node={node}", f"hostconn.uri={sim.url}",
                                    f"hostconn.options=ca_file={sim.ca};poll=0.02"]) == 0
        assert tablecmds.chtab(["key=rhevm", "passwd.username=admin@internal",
                                "passwd.password=password"]) == 0
        assert tablecmds.chtab(["key=rhevh", "passwd.username=root",
                                "passwd.password=hostsecret"]) == 0
        yield {"a": a, "b": b, "url": cli_env, "tmp": tmp_path}


@pytest.mark.parametrize("engine", ["rhevm4", "rhevm3"])
def test_cfgve_and_lsve_data_center_objects(engines, engine, capsys):
    sim = engines["a"] if engine == "rhevm4" else engines["b"]

    def ok(argv, want=None):
        rc = rhevcmds.cfgve(["-m", engine, *argv])
        out, err = capsys.readouterr()
        assert rc == 0, err
        if want is not None:
            assert out == want
        return out

    ok(["-t", "dc", "-o", "dc2", "-c", "-k", "localfs"], "dc2: created.\n")
    ok(["-t", "cl", "-o", "cl2", "-c", "-d", "dc2"], "cl2: created.\n")
    ok(["-t", "nw", "-o", "storage", "-c", "-d", "dc2", "-n", "20"], "storage: created.\n")
    ok(["-t", "nw", "-o", "storage", "-a", "-l", "cl2"], "storage: attached to cl2.\n")
    assert rhevcmds.lsve(["-t", "cl", "-m", engine, "-o", "cl2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{engine}: cluster: [cl2]\n") and f"{engine}:   network: storage" in out
    ok(["-t", "sd", "-o", "local1", "-c", "-k", "localfs", "--host", "host1",
        "--path", "/data/images"], "local1: created.\n")
    ok(["-t", "sd", "-o", "local1", "-a", "-d", "dc2"], "local1: attached to dc2.\n")
    time.sleep(0.1)
    assert rhevcmds.lsve(["-t", "dc", "-m", engine, "-o", "dc2"]) == 0
    assert f"{engine}:   storagedomain: local1 (active)" in capsys.readouterr().out
    ok(["-t", "sd", "-o", "local1", "-s", "-d", "dc2"], "local1: maintenance\n")
    ok(["-t", "sd", "-o", "local1", "-g", "-d", "dc2"], "local1: active\n")
    ok(["-t", "sd", "-o", "local1", "-s", "-d", "dc2"])
    ok(["-t", "sd", "-o", "local1", "-b", "-d", "dc2"], "local1: detached from dc2.\n")
    ok(["-t", "sd", "-o", "local1", "-r", "--host", "host1"], "local1: removed.\n")
    ok(["-t", "nw", "-o", "storage", "-b", "-l", "cl2"], "storage: detached from cl2.\n")
    ok(["-t", "nw", "-o", "storage", "-r", "-d", "dc2"], "storage: removed.\n")
    ok(["-t", "cl", "-o", "cl2", "-r"], "cl2: removed.\n")
    ok(["-t", "dc", "-o", "dc2", "-r"], "dc2: removed.\n")
    assert sim.engine.by_name("datacenters", "dc2") is None
    # unknown names and conflicts: one line, nothing changed
    assert rhevcmds.cfgve(["-m", engine, "-t", "cl", "-o", "cl3", "-c", "-d", "nodc"]) == 1
    assert capsys.readouterr().err == \
        f"{engine}: Error: data center 'nodc' not found on engine 127.0.0.1\n"
    assert rhevcmds.cfgve(["-m", engine, "-t", "dc", "-o", "Default", "-r"]) == 1
    assert "Cannot remove Data Center" in capsys.readouterr().err
    assert sim.engine.by_name("clusters", "cl3") is None


@pytest.mark.parametrize("argv,needle", [
    (["-m", "rhevm4", "-t", "dc", "-o", "x"], "give one action"),
    (["-m", "rhevm4", "-t", "sd", "-o", "x", "-c"], "needs -k nfs|localfs"),
    (["-m", "rhevm4", "-t", "tpl", "-o", "x", "-c"], "cfgve cannot create a tpl"),
    (["-m", "nosuch", "-t", "dc", "-o", "x", "-c"], "engine node 'nosuch' is not defined"),
])
def test_cfgve_bad_arguments_touch_nothing(engines, argv, needle, capsys):
    n = len(engines["a"].engine.requests)
    assert rhevcmds.cfgve(argv) == 1
    assert needle in capsys.readouterr().err
    assert len(engines["a"].engine.requests) == n


def test_cfgve_getca_then_verified(engines, capsys):
    a = engines["a"]
    out = engines["tmp"] / "rhevm4-ca.pem"
    assert rhevcmds.cfgve(["-m", "rhevm4", "--getca", "--ca-out", str(out)]) == 0
    import hashlib
    import ssl

    digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(a.ca.read_text())).hexdigest().upper()
    assert f"SHA-256 {digest[:2]}:{digest[2:4]}:" in capsys.readouterr().out
    assert out.read_bytes() == a.ca.read_bytes()
    assert tablecmds.chtab(["node=rhevm4", f"hostconn.options=ca_file={out}"]) == 0
    assert rhevcmds.lsve(["-t", "host", "-m", "rhevm4"]) == 0
    assert "rhevm4: host: [host1]" in capsys.readouterr().out
    # without a CA the engine is not trusted: one clear line
    assert tablecmds.chtab(["node=rhevm4", "hostconn.options=poll=0.02"]) == 0
    assert rhevcmds.lsve(["-t", "dc", "-m", "rhevm4"]) == 1
    assert "not trusted" in capsys.readouterr().err


def test_hosts_on_two_engines(engines, capsys):
    a, b = engines["a"].engine, engines["b"].engine
    assert nodecmds.nodeadd(["hv4a,hv4b", "groups=rhevh,all", "hypervisor.type=rhevh",
                             "hypervisor.mgr=rhevm4", "hosts.ip=192.0.2.40"]) == 0
    assert nodecmds.nodeadd(["hv3a", "groups=rhevh,all", "hypervisor.type=rhevh",
                             "hypervisor.mgr=rhevm3", "hypervisor.cluster=Default"]) == 0
    assert nodecmds.nodeadd(["hvnone", "groups=rhevh,all", "hypervisor.type=rhevh"]) == 0
    ra, rb = (sum(1 for m, p, _ in e.requests if m == "GET" and p.endswith("api"))
              for e in (a, b))
    assert rhevcmds.chhypervisor(["hv4a,hv4b,hv3a,hvnone", "--add"]) == 1
    out, err = capsys.readouterr()
    assert out == "hv3a: up\nhv4a: up\nhv4b: up\n"  # noderange order
    assert err == "hvnone: Error: Missing the management point in 'hypervisor.mgr'.\n"
    # one session per engine for its own hosts
    assert sum(1 for m, p, _ in a.requests if m == "GET" and p.endswith("api")) == ra + 1
    assert sum(1 for m, p, _ in b.requests if m == "GET" and p.endswith("api")) == rb + 1
    assert {"hv4a", "hv4b"} <= {h["name"] for h in a.objs["hosts"].values()}
    assert a.by_name("hosts", "hv4a")["address"] == "192.0.2.40"
    assert b.by_name("hosts", "hv3a") is not None and b.by_name("hosts", "hv4a") is None
    assert rhevcmds.chhypervisor(["hv4a,hv3a", "-d"]) == 0
    assert capsys.readouterr().out == "hv3a: maintenance\nhv4a: maintenance\n"
    assert rhevcmds.chhypervisor(["hv4a", "-e"]) == 0
    assert capsys.readouterr().out == "hv4a: up\n"
    assert rhevcmds.chhypervisor(["hv4a", "-l"]) == 0
    assert "hv4a: hosts: [hv4a]\nhv4a:   address: 192.0.2.40\nhv4a:   state: up\n" in \
        capsys.readouterr().out
    # approve a self-registered RHEV-H (pending_approval), v4 and v3
    for eng in (a, b):
        eng.add("hosts", name="rhevh9.example.com", address="192.0.2.9",
                status="pending_approval", cluster=None, memory=8 << 30)
    assert nodecmds.nodeadd(["rhevh9", "groups=rhevh,all", "hypervisor.type=rhevh",
                             "hypervisor.mgr=rhevm4"]) == 0
    assert rhevcmds.chhypervisor(["rhevh9", "-a"]) == 0
    assert capsys.readouterr().out == "rhevh9: approved.\n"
    assert rhevcmds.chhypervisor(["rhevh9", "-a"]) == 1
    assert "not pending_approval" in capsys.readouterr().err
    assert tablecmds.chtab(["node=rhevh9", "hypervisor.mgr=rhevm3"]) == 0
    assert rhevcmds.chhypervisor(["rhevh9", "-a"]) == 0
    # remove: refused while up, -f puts it into maintenance first
    assert rhevcmds.rmhypervisor(["hv4b"]) == 1
    assert "Host must be in Maintenance mode first" in capsys.readouterr().err
    assert rhevcmds.rmhypervisor(["hv4b,hv3a", "-f"]) == 0
    assert capsys.readouterr().out == "hv3a: removed.\nhv4b: removed.\n"
    assert a.by_name("hosts", "hv4b") is None and b.by_name("hosts", "hv3a") is None
    assert rhevcmds.rmhypervisor(["hv3a"]) == 1
    assert "host 'hv3a' not found on engine" in capsys.readouterr().err


def test_not_implemented_options_say_so(engines, capsys):
    assert nodecmds.nodeadd(["hv1", "groups=all", "hypervisor.type=rhevh",
                             "hypervisor.mgr=rhevm4"]) == 0
    for opt in ("-n", "-p"):
        assert rhevcmds.chhypervisor(["hv1", opt]) == 1
        assert "not implemented yet" in capsys.readouterr().err


@pytest.mark.parametrize("engine", ["rhevm4", "rhevm3"])
def test_host_nics_and_cluster_cpu_read_in_both_versions(engines, engine, capsys):
    """chhypervisor -l lists the host's one NIC (a v3 <host_nics> also holds the
    collection's <actions>, which is no NIC); lsve -t cl shows the CPU type (v3 prints it
    as <cpu id="...">)."""
    sim = (engines["a"] if engine == "rhevm4" else engines["b"]).engine
    cl = sim.by_name("clusters", "Default")["id"]
    sim.add("hosts", name="hvl", address="192.0.2.77", status="up", cluster=cl,
            memory=8 << 30, ip="192.0.2.77")
    assert nodecmds.nodeadd(["hvl", "groups=rhevh,all", "hypervisor.type=rhevh",
                             f"hypervisor.mgr={engine}"]) == 0
    assert rhevcmds.chhypervisor(["hvl", "-l"]) == 0
    nics = [line for line in capsys.readouterr().out.splitlines() if "  nic " in line]
    assert len(nics) == 1 and nics[0].startswith("hvl:   nic eth0: mac ") and \
        "ip 192.0.2.77 state up" in nics[0], nics
    assert rhevcmds.lsve(["-t", "cl", "-m", engine, "-o", "Default"]) == 0
    assert f"{engine}:   cpu_type: Intel Westmere Family\n" in capsys.readouterr().out
