"""makedhcp: Kea and dnsmasq configuration from the tables, checked by the real programs.

Rendering tests run ``makedhcp`` in-process; every Kea file it writes has passed the real
``kea-dhcp4 -t`` (interface ``lo``, which exists everywhere) and every dnsmasq options file
the real ``dnsmasq --test``. The daemon test builds two network namespaces (server bridge +
a veth whose far end is the client), starts Kea and then dnsmasq on the files ``makedhcp
-n`` + ``makedhcp <nodes>`` wrote (the command runs inside the server namespace) and asks
with busybox udhcpc, as BIOS, UEFI, UEFI HTTP-boot and iPXE clients, what each node is
offered; then adds a node with ``makedhcp <node>`` and asks again (Kea: config-reload,
same pid; dnsmasq: SIGHUP for a changed hosts line, a restart for a new node). Traffic
stays inside the namespaces, every command runs under a timeout, and everything is torn
down even on failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nodemgr.cli import dhcpcmd
from nodemgr.netboot import dhcp, kea
from nodemgr.tables.store import Store
from tests.fixtures.netns import sh, stop_groups

ROOT = Path(__file__).resolve().parents[2]
REQUIRE_ALL = os.environ.get("NODEMGR_REQUIRE_ALL") == "1"
SRV = "10.96.0.1"
NODES = {"n1": ("10.96.0.101", "52:54:00:ee:00:01", "pxe"),
         "n2": ("10.96.0.102", "52:54:00:ee:00:02", "xnba"),
         "n3": ("10.96.0.103", "52:54:00:ee:00:03", "grub2")}


def need(ok: bool, why: str) -> None:
    if not ok:
        if REQUIRE_ALL:
            pytest.fail(why)
        pytest.skip(why)


def _define(store: Store, tmp: Path, *, iface: str = "lo", master: str | None = SRV,
            nodes: dict = NODES, backend: str = "kea") -> None:
    with store.transaction():
        site = {"keaconf": tmp / "kea" / "kea-dhcp4.conf", "keasocket": tmp / "kea" / "kea4.sock",
                "dnsmasqconf": tmp / "dm" / "dnsmasq.conf", "dnsmasqhosts": tmp / "dm" / "hosts",
                "dnsmasqpid": tmp / "dm" / "dnsmasq.pid", "httpport": "8080",
                "dhcpserver": backend}
        if master:
            site["master"] = master
        for k, v in site.items():
            store.upsert("site", {"key": k}, {"value": str(v)})
        store.upsert("networks", {"net": "10.96.0.0", "mask": "255.255.255.0"},
                     {"netname": "boot", "mgtifname": iface, "gateway": SRV,
                      "nameservers": "10.96.0.2,10.96.0.3", "domain": "cluster.test",
                      "dynamicrange": "10.96.0.150-10.96.0.199"})
        for n, (ip, mac, nb) in nodes.items():
            _node(store, n, ip, mac, nb)


def _node(store, n, ip, mac, netboot="pxe"):
    store.upsert("nodelist", {"node": n}, {"groups": "all,compute"})
    store.upsert("hosts", {"node": n}, {"ip": ip})
    store.upsert("mac", {"node": n}, {"mac": mac})
    store.upsert("noderes", {"node": n}, {"netboot": netboot})


@pytest.fixture
def env(cli_env, tmp_path):
    need(shutil.which("kea-dhcp4") is not None, "kea-dhcp4 is not installed (kea-dhcp4-server)")
    need(shutil.which("dnsmasq") is not None, "dnsmasq is not installed (dnsmasq-base)")
    store = Store(cli_env)
    _define(store, tmp_path)
    yield store, tmp_path
    store.close()


def _kea(tmp: Path) -> dict:
    return json.loads((tmp / "kea" / "kea-dhcp4.conf").read_text())


def _res(cfg: dict) -> dict:
    return {r["hostname"]: r for sn in cfg["Dhcp4"]["subnet4"] for r in sn.get("reservations", [])}


# -- Kea rendering ---------------------------------------------------------------------------


def test_kea_new_then_nodes(env, capsys):
    store, tmp = env
    assert dhcpcmd.makedhcp(["-n"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("Warning: Kea is not running") and "kea-dhcp4 -c" in err
    assert err.count("\n") == 1
    cfg = _kea(tmp)
    d4 = cfg["Dhcp4"]
    assert d4["interfaces-config"] == {"interfaces": ["lo"], "dhcp-socket-type": "raw"}
    assert d4["control-socket"]["socket-name"] == str(tmp / "kea" / "kea4.sock")
    assert d4["lease-database"]["name"] == str(tmp / "kea" / "kea-leases4.csv")
    assert d4["lease-database"]["persist"] is True
    assert d4["option-data"][0] == {"name": "ipxe-encap", "data": "B00101", "always-send": True}
    (sn,) = d4["subnet4"]
    assert sn["subnet"] == "10.96.0.0/24" and sn["pools"] == [{"pool": "10.96.0.150 - 10.96.0.199"}]
    assert {"name": "routers", "data": SRV} in sn["option-data"]
    assert {"name": "domain-name-servers", "data": "10.96.0.2, 10.96.0.3"} in sn["option-data"]
    assert {"name": "domain-name", "data": "cluster.test"} in sn["option-data"]
    assert "reservations" not in sn

    assert dhcpcmd.makedhcp(["n1,n2,n3"]) == 0
    capsys.readouterr()
    cfg = _kea(tmp)
    res = _res(cfg)
    assert res["n2"] == {"hw-address": "52:54:00:ee:00:02", "ip-address": "10.96.0.102",
                         "hostname": "n2", "next-server": SRV, "client-classes": ["xnba-s0"]}
    for r in res.values():  # gotcha 4: no loader on a reservation
        assert "boot-file-name" not in r
    classes = {c["name"]: c for c in cfg["Dhcp4"]["client-classes"]}
    assert classes["boot-ipxe-s0"]["boot-file-name"] == \
        f"http://{SRV}:8080/tftpboot/xcat/xnba/nodes/${{hostname}}"
    assert classes["boot-http-s0"]["boot-file-name"] == f"http://{SRV}:8080/tftpboot/snponly.efi"
    assert classes["boot-efi-grub2-s0"]["boot-file-name"] == "boot/grub2/grubx64.efi"
    assert all(classes[c]["only-if-required"] for c in cfg["Dhcp4"]["subnet4"][0]
               ["require-client-classes"])
    sid = cfg["Dhcp4"]["subnet4"][0]["id"]

    # -n keeps every reservation (and the subnet id: leases keep their subnet)
    assert dhcpcmd.makedhcp(["-n"]) == 0
    capsys.readouterr()
    assert set(_res(_kea(tmp))) == {"n1", "n2", "n3"} and _kea(tmp)["Dhcp4"]["subnet4"][0]["id"] == sid
    # a refresh follows the tables
    store.upsert("hosts", {"node": "n1"}, {"ip": "10.96.0.111"})
    assert dhcpcmd.makedhcp(["n1"]) == 0
    capsys.readouterr()
    assert _res(_kea(tmp))["n1"]["ip-address"] == "10.96.0.111"
    # delete, then -a -d and -a
    assert dhcpcmd.makedhcp(["-d", "n2"]) == 0
    capsys.readouterr()
    assert set(_res(_kea(tmp))) == {"n1", "n3"}
    assert dhcpcmd.makedhcp(["-a", "-d"]) == 0
    assert _res(_kea(tmp)) == {}
    assert dhcpcmd.makedhcp(["-a", "-V"]) == 0
    out = capsys.readouterr().out
    assert set(_res(_kea(tmp))) == {"n1", "n2", "n3"}
    assert out.startswith("makedhcp: 3 reservation(s) in ")


def test_kea_keeps_foreign_reservations_and_reads_comments(env, capsys):
    store, tmp = env
    (tmp / "kea").mkdir()
    (tmp / "kea" / "kea-dhcp4.conf").write_text("""// a hand-written file
{"Dhcp4": { # comment
  "subnet4": [ { "id": 7, "subnet": "10.96.0.0/24", "reservations": [
     /* a printer */ {"hw-address": "aa:bb:cc:00:00:01", "ip-address": "10.96.0.50",
                      "hostname": "printer"},
     {"hw-address": "aa:bb:cc:00:00:02", "ip-address": "192.0.2.9", "hostname": "far"} ] } ]
}}""")
    assert dhcpcmd.makedhcp(["-n"]) == 0
    err = capsys.readouterr().err
    assert "kept no reservation for far (192.0.2.9)" in err
    cfg = _kea(tmp)
    assert cfg["Dhcp4"]["subnet4"][0]["id"] == 7
    assert _res(cfg)["printer"]["ip-address"] == "10.96.0.50"
    # a node with the printer's IP is a duplicate naming both
    _node(store, "n9", "10.96.0.50", "52:54:00:ee:00:09")
    assert dhcpcmd.makedhcp(["n9"]) == 1
    assert capsys.readouterr().err == \
        "n9: Error: IP 10.96.0.50 is also printer's (hosts.ip): one of them is wrong\n"


@pytest.mark.parametrize("change, message", [
    (lambda s: s.upsert("hosts", {"node": "n2"}, {"ip": "10.50.0.2"}),
     "n2: Error: 10.50.0.2 is in no networks row (run makenetworks, or add the network "
     "with chtab/tabedit networks)\n"),
    (lambda s: s.upsert("mac", {"node": "n2"}, {"mac": "52:54:00:EE:00:01"}),
     "n2: Error: MAC 52:54:00:ee:00:01 is also n1's (mac.mac): one of them is wrong\n"),
    (lambda s: s.upsert("hosts", {"node": "n2"}, {"ip": "10.96.0.101"}),
     "n2: Error: IP 10.96.0.101 is also n1's (hosts.ip): one of them is wrong\n"),
    (lambda s: s.delete("mac", {"node": "n2"}),
     "n2: Error: no MAC address (mac.mac): cannot make a DHCP reservation\n"),
    (lambda s: s.delete("hosts", {"node": "n2"}),
     "n2: Error: no IP address (hosts.ip): cannot make a DHCP reservation\n"),
    (lambda s: s.delete("site", {"key": "master"}),  # no interface of ours on 10.96.0.0/24
     None),
])
def test_bad_input_changes_nothing(env, capsys, change, message):
    store, tmp = env
    assert dhcpcmd.makedhcp(["n1,n2"]) == 0
    capsys.readouterr()
    before = (tmp / "kea" / "kea-dhcp4.conf").read_bytes()
    change(store)
    assert dhcpcmd.makedhcp(["n1,n2"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    if message is None:
        assert err.startswith("n1: Error: site.master is not set and this management node "
                              "has no address in network boot (10.96.0.0/24) on interface lo")
        assert len(err.splitlines()) == 2
    else:
        assert err == message
    assert (tmp / "kea" / "kea-dhcp4.conf").read_bytes() == before
    assert sorted(os.listdir(tmp / "kea")) == [".kea-dhcp4.conf.lock", "kea-dhcp4.conf"]


def test_kea_rejects_keeps_the_old_file(env, capsys):
    store, tmp = env
    assert dhcpcmd.makedhcp(["n1"]) == 0
    capsys.readouterr()
    before = (tmp / "kea" / "kea-dhcp4.conf").read_bytes()
    store.upsert("networks", {"net": "10.96.0.0", "mask": "255.255.255.0"},
                 {"mgtifname": "nosuchif0"})
    assert dhcpcmd.makedhcp(["n1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: kea-dhcp4 -t rejected the configuration: ")
    assert "nosuchif0" in err and err.count("\n") == 1
    assert (tmp / "kea" / "kea-dhcp4.conf").read_bytes() == before
    assert not [f for f in os.listdir(tmp / "kea") if f.endswith(".tmp")]


def test_query_without_a_server(env, capsys):
    assert dhcpcmd.makedhcp(["-q", "n1"]) == 1
    assert capsys.readouterr().err.startswith("Error: no Kea control socket at ")


def test_help_and_usage(capsys):
    with pytest.raises(SystemExit):
        dhcpcmd.makedhcp(["--help"])
    out = capsys.readouterr().out
    assert out.startswith("Usage: makedhcp -n [-V|--verbose]\n")
    for word in ("options:", "examples:", "files", "exit status:", "-q"):
        assert word in out
    assert dhcpcmd.makedhcp([]) == 1
    assert "nothing to do" in capsys.readouterr().err


def test_one_pass_for_many_nodes(env):
    """1,000 nodes: each table is read once, not per node."""
    store, tmp = env
    with store.transaction():
        for i in range(1000):
            _node(store, f"m{i:04d}", f"10.97.{i // 250}.{i % 250 + 1}",
                  f"52:54:01:00:{i >> 8:02x}:{i & 255:02x}", "xnba")
        store.insert("networks", {"net": "10.97.0.0", "mask": "255.255.0.0", "mgtifname": "lo"})
    from nodemgr.tables.resolve import Resolver

    calls = []
    real = store.select

    def counting(name, *a, **kw):
        calls.append(name)
        return real(name, *a, **kw)

    nodes = Resolver(store).nodes()
    store.select = counting
    out = dhcp.makedhcp(store, Resolver(store), replace=nodes)
    assert out.count == 1003
    assert max(calls.count(t) for t in set(calls)) == 1, calls


# -- dnsmasq rendering -----------------------------------------------------------------------


def test_dnsmasq_files(env, capsys):
    store, tmp = env
    store.upsert("site", {"key": "dhcpserver"}, {"value": "dnsmasq"})
    assert dhcpcmd.makedhcp(["-a"]) == 0
    assert capsys.readouterr().err.startswith("Warning: dnsmasq is not running")
    hosts = (tmp / "dm" / "hosts").read_text()
    assert hosts == ("52:54:00:ee:00:01,10.96.0.101,n1\n52:54:00:ee:00:02,10.96.0.102,n2\n"
                     "52:54:00:ee:00:03,10.96.0.103,n3\n")       # gotcha 5: no tags here
    opts = (tmp / "dm" / "dnsmasq.conf").read_text().splitlines()
    assert f"dhcp-hostsfile={tmp}/dm/hosts" in opts and f"pid-file={tmp}/dm/dnsmasq.pid" in opts
    assert "dhcp-range=set:net0,10.96.0.150,10.96.0.199,255.255.255.0,43200" in opts
    assert "dhcp-mac=set:xnba-s0,52:54:00:ee:00:02" in opts
    assert f"dhcp-boot=tag:xnba-s0,tag:ipxe,http://{SRV}:8080/tftpboot/xcat/xnba/nodes/" \
           "${hostname}" in opts
    assert f"dhcp-boot=tag:pxe-s0,tag:bios,pxelinux.0,,{SRV}" in opts
    # bad input: nothing changed
    before = (hosts, opts)
    store.upsert("mac", {"node": "n3"}, {"mac": "52:54:00:ee:00:01"})
    assert dhcpcmd.makedhcp(["-a"]) == 1
    assert capsys.readouterr().err == \
        "n3: Error: MAC 52:54:00:ee:00:01 is also n1's (mac.mac): one of them is wrong\n"
    assert ((tmp / "dm" / "hosts").read_text(),
            (tmp / "dm" / "dnsmasq.conf").read_text().splitlines()) == before


# -- real daemons ----------------------------------------------------------------------------

PROBE = """#!/bin/sh
[ "$1" = bound ] && echo "ip=$ip siaddr=${siaddr:-} file=${boot_file:-} hostname=${hostname:-} vendor=${vendor:-}"
exit 0
"""
ARCH = {"bios": ("0000", "PXEClient:Arch:00000:UNDI:002001"),
        "efi": ("0007", "PXEClient:Arch:00007:UNDI:003000"),
        "http": ("0010", "HTTPClient:Arch:00016:UNDI:003000")}


class Lab:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.ns = f"nmdh{os.getpid()}"
        self.nsc = self.ns + "c"
        self.procs: list[subprocess.Popen] = []
        self.script = tmp / "probe.sh"
        self.script.write_text(PROBE)
        self.script.chmod(0o755)

    def up(self) -> None:
        sh(None, "ip", "netns", "add", self.ns)
        sh(None, "ip", "netns", "add", self.nsc)
        for cmd in ("ip link set lo up", "ip link add br0 type bridge",
                    "ip link set br0 type bridge forward_delay 0",
                    f"ip addr add {SRV}/24 dev br0", "ip link set br0 up",
                    f"ip link add vprobe type veth peer name vcli netns {self.nsc}",
                    "ip link set vprobe master br0", "ip link set vprobe up"):
            sh(self.ns, *cmd.split())
        sh(self.nsc, "ip", "link", "set", "lo", "up")
        sh(self.nsc, "ip", "link", "set", "vcli", "up")

    def down(self) -> None:
        stop_groups(self.procs, grace_s=3)
        pid = dhcp.read_pid(str(self.tmp / "dm" / "dnsmasq.pid"))  # a restarted dnsmasq
        if pid is not None:
            os.kill(pid, 15)
        for ns in (self.nsc, self.ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)

    def makedhcp(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.ns, sys.executable, "-c",
                               "import sys; from nodemgr.cli.dhcpcmd import makedhcp; "
                               "sys.exit(makedhcp())", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)

    def start(self, args: list[str], log: str) -> subprocess.Popen:
        env = dict(os.environ, KEA_PIDFILE_DIR=str(self.tmp / "kea"),
                   KEA_LOCKFILE_DIR=str(self.tmp / "kea"))
        fh = open(self.tmp / log, "w")
        p = subprocess.Popen(["ip", "netns", "exec", self.ns, *args], env=env, stdout=fh,
                             stderr=subprocess.STDOUT, start_new_session=True)
        fh.close()
        self.procs.append(p)
        return p

    def probe(self, mac: str, arch: str, ipxe: bool = False) -> dict:
        code, vc = ARCH[arch]
        x = ["-x", f"0x5d:{code}", "-V", vc] + (["-x", "0x4d:69505845"] if ipxe else [])
        sh(self.nsc, "ip", "link", "set", "vcli", "address", mac)
        r = subprocess.run(["ip", "netns", "exec", self.nsc, "timeout", "6", "busybox", "udhcpc",
                            "-i", "vcli", "-f", "-q", "-n", "-t", "3", "-T", "1", "-s",
                            str(self.script), "-O", "vendor", *x], capture_output=True,
                           text=True, timeout=10)
        line = next((ln for ln in r.stdout.splitlines() if ln.startswith("ip=")), "")
        return dict(kv.split("=", 1) for kv in line.split()) if line else {}


@pytest.fixture
def lab(cli_env, tmp_path):
    need(os.geteuid() == 0, "the DHCP daemon test needs root (network namespaces)")
    for tool in ("kea-dhcp4", "dnsmasq", "busybox", "ip"):
        need(shutil.which(tool) is not None, f"{tool} is not installed")
    store = Store(cli_env)
    _define(store, tmp_path, iface="br0", master=None)  # the master comes from br0's address
    lab = Lab(tmp_path)
    try:
        lab.up()
        yield store, lab
    finally:
        lab.down()
        store.close()


def _wait(pred, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def _check_offers(lab: Lab, port: str = ":8080") -> None:
    url = f"http://{SRV}{port}/tftpboot"
    cases = [("n1", "bios", False, "pxelinux.0"), ("n1", "bios", True, "pxelinux.0"),
             ("n1", "efi", False, ""),
             ("n2", "bios", False, "undionly.kpxe"), ("n2", "efi", False, "snponly.efi"),
             ("n2", "efi", True, url + "/xcat/xnba/nodes/${hostname}"),
             ("n2", "http", False, url + "/snponly.efi"),
             ("n3", "efi", False, "boot/grub2/grubx64.efi"), ("n3", "http", False,
                                                              url + "/snponly.efi")]
    for node, arch, ipxe, file in cases:
        ip, mac, _ = NODES[node]
        got = lab.probe(mac, arch, ipxe)
        assert got.get("ip") == ip and got.get("hostname") == node, (node, arch, got)
        assert got.get("file") == file, (node, arch, ipxe, got)
        assert got.get("vendor") == ("HTTPClient" if arch == "http" else ""), got
        if file and not file.startswith("http"):
            assert got.get("siaddr") == SRV, got


@pytest.mark.slow
def test_kea_and_dnsmasq_serve_what_makedhcp_wrote(lab):
    store, lab = lab
    tmp = lab.tmp
    r = lab.makedhcp("-n")
    assert r.returncode == 0 and "Kea is not running" in r.stderr, r.stderr
    r = lab.makedhcp("n1,n2,n3")
    assert r.returncode == 0, r.stderr
    conf = str(tmp / "kea" / "kea-dhcp4.conf")
    sock = str(tmp / "kea" / "kea4.sock")
    kp = lab.start(["kea-dhcp4", "-c", conf], "kea.log")
    assert _wait(lambda: os.path.exists(sock) and _status(sock)), (tmp / "kea.log").read_text()
    _check_offers(lab)
    # unknown MAC: a pool address, no boot file
    got = lab.probe("52:54:00:ee:00:44", "efi")
    assert got.get("ip", "").startswith("10.96.0.1") and got.get("file") == "", got
    # a node added later is answered by the running server (config-reload, same process)
    _node(store, "n4", "10.96.0.104", "52:54:00:ee:00:04", "xnba")
    t0 = time.monotonic()
    r = lab.makedhcp("n4", "-V")
    assert r.returncode == 0 and "Configuration successful" in r.stdout, r.stderr
    assert time.monotonic() - t0 < 10
    got = lab.probe("52:54:00:ee:00:04", "bios")
    assert got.get("ip") == "10.96.0.104" and got.get("file") == "undionly.kpxe", got
    assert kp.poll() is None
    q = lab.makedhcp("-q", "n4,n1")
    lines = q.stdout.splitlines()
    assert q.returncode == 0 and len(lines) == 2, q
    assert lines[0].startswith(
        "n1: ip-address = 10.96.0.101, hardware-address = 52:54:00:ee:00:01, next-server = "
        "10.96.0.1, boot = pxe (subnet 10.96.0.0/24), lease = 10.96.0.101 until "), q
    assert lines[1].startswith(
        "n4: ip-address = 10.96.0.104, hardware-address = 52:54:00:ee:00:04, next-server = "
        "10.96.0.1, boot = xnba (subnet 10.96.0.0/24), lease = 10.96.0.104 until "), q
    assert os.path.exists(tmp / "kea" / "kea-leases4.csv")
    stop_groups([kp], grace_s=3)
    lab.procs.remove(kp)

    # dnsmasq from the same tables
    store.upsert("site", {"key": "dhcpserver"}, {"value": "dnsmasq"})
    store.delete("hosts", {"node": "n4"})
    r = lab.makedhcp("-n")
    assert r.returncode == 0 and "dnsmasq is not running" in r.stderr, r.stderr
    r = lab.makedhcp("n1,n2,n3")
    assert r.returncode == 0 and "dnsmasq is not running" in r.stderr, r.stderr
    dm = tmp / "dm"
    dp = lab.start(["dnsmasq", "--keep-in-foreground", f"--conf-file={dm / 'dnsmasq.conf'}",
                    "--user=root", "--port=0", "--bind-interfaces", "--no-ping",
                    f"--dhcp-leasefile={dm / 'leases'}", "--log-dhcp",
                    f"--log-facility={tmp / 'dnsmasq.log'}"], "dnsmasq.out")
    pidfile = str(dm / "dnsmasq.pid")
    assert _wait(lambda: dhcp.read_pid(pidfile) is not None), (tmp / "dnsmasq.out").read_text()
    _check_offers(lab)
    pid = dhcp.read_pid(pidfile)
    # a changed host line only: SIGHUP, the same process answers the new address
    store.upsert("hosts", {"node": "n1"}, {"ip": "10.96.0.121"})
    r = lab.makedhcp("n1", "-V")
    assert r.returncode == 0 and f"SIGHUP to dnsmasq pid {pid}" in r.stdout, (r.stdout, r.stderr)
    assert _wait(lambda: lab.probe("52:54:00:ee:00:01", "bios").get("ip") == "10.96.0.121")
    assert dhcp.read_pid(pidfile) == pid and dp.poll() is None
    # a new node changes the options file: restarted with the same command line
    store.upsert("hosts", {"node": "n4"}, {"ip": "10.96.0.104"})
    r = lab.makedhcp("n4", "-V")
    assert r.returncode == 0 and "dnsmasq restarted" in r.stdout, (r.stdout, r.stderr)
    got = lab.probe("52:54:00:ee:00:04", "efi")
    assert got.get("ip") == "10.96.0.104" and got.get("file") == "snponly.efi", got
    q = lab.makedhcp("-q", "n4")
    assert q.returncode == 0 and q.stdout.startswith("n4: ip-address = 10.96.0.104"), q


def _status(sock: str) -> bool:
    try:
        return kea.command(sock, "status-get", timeout=2).get("result") == 0
    except Exception:
        return False


@pytest.mark.slow
def test_ipxe_expands_the_hostname_in_its_script_url(lab):
    """The one iPXE class serves every node because iPXE expands ``${hostname}`` in the DHCP
    file name: a real iPXE (QEMU's virtio-net ROM, BIOS) fetches ``.../nodes/<node>``."""
    store, lab = lab
    need(shutil.which("qemu-system-x86_64") is not None, "qemu-system-x86_64 is not installed")
    need(os.path.exists("/usr/lib/ipxe/qemu/pxe-virtio.rom"), "ipxe-qemu is not installed")
    tmp = lab.tmp
    www = tmp / "www" / "tftpboot" / "xcat" / "xnba" / "nodes"
    www.mkdir(parents=True)
    (www / "n2").write_text("#!ipxe\necho nodemgr-script-of-n2\nshell\n")
    assert lab.makedhcp("n2").returncode == 0
    sh(lab.ns, "ip", "tuntap", "add", "dev", "tap0", "mode", "tap")
    sh(lab.ns, "ip", "link", "set", "tap0", "master", "br0")
    sh(lab.ns, "ip", "link", "set", "tap0", "up")
    conf, sock = tmp / "kea" / "kea-dhcp4.conf", str(tmp / "kea" / "kea4.sock")
    lab.start(["kea-dhcp4", "-c", str(conf)], "kea.log")
    # iPXE waits ~16 s for an IPv6 router advertisement without one (test-environment §1)
    lab.start(["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0",
               "--interface=br0", "--bind-interfaces", "--enable-ra",
               "--dhcp-range=fd96::,ra-only", f"--pid-file={tmp}/ra.pid"], "ra.log")
    sh(lab.ns, "ip", "-6", "addr", "add", "fd96::1/64", "dev", "br0", "nodad")
    lab.start([sys.executable, "-m", "http.server", "8080", "--bind", SRV, "--directory",
               str(tmp / "www")], "http.log")
    assert _wait(lambda: os.path.exists(sock) and _status(sock))
    lab.start(["timeout", "60", "qemu-system-x86_64", "-machine", "pc,accel=tcg", "-m", "256",
               "-nographic", "-no-reboot", "-boot", "n", "-netdev",
               "tap,id=n0,ifname=tap0,script=no,downscript=no", "-device",
               f"virtio-net-pci,netdev=n0,mac={NODES['n2'][1]}"], "qemu.log")
    seen = _wait(lambda: b"nodemgr-script-of-n2" in (tmp / "qemu.log").read_bytes(), 60)
    http = (tmp / "http.log").read_text()
    assert seen and '"GET /tftpboot/xcat/xnba/nodes/n2 HTTP' in http, (
        http, (tmp / "qemu.log").read_bytes()[-600:])
