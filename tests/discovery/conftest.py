"""A test-made network namespace for MAC->IP discovery: a veth pair whose far end lives in a
second namespace (a "machine" with a known MAC), permanent neighbour entries, net-snmp's
snmpd (v2c community + SNMPv3 authPriv user) and snmpsim replaying a switch, both on
127.0.0.1 inside the namespace. ``discoverip`` runs inside it through ``ip netns exec``.
Everything is stopped and deleted at the end, also after a failure."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.netns import sh, stop_groups

ROOT = Path(__file__).resolve().parents[2]
REQUIRE_ALL = os.environ.get("NODEMGR_REQUIRE_ALL") == "1"
SNMPD_PORT, SIM_PORT, DEAD_PORT = 16161, 16162, 16199
PEER_MAC, PEER_IP = "52:54:00:12:34:23", "10.98.0.23"
SNMPD_CONF = """\
agentAddress udp:127.0.0.1:{port}
view all included .1
rocommunity {community} 127.0.0.1 -V all
sysName nodemgr-test-router
dontLogTCPWrappersConnects yes
createUser nmv3 SHA "{auth}" AES "{priv}"
rouser nmv3 priv -V all
"""
COMMUNITY, V3AUTH, V3PRIV = "nm-c0mmunity", "nm-auth-key-1", "nm-priv-key-1"


def need(ok: bool, why: str) -> None:
    if not ok:
        if REQUIRE_ALL:
            pytest.fail(why)
        pytest.skip(why)



def switch_records() -> str:
    """An 8-port switch (snmpsim .snmprec, sorted): ifName, BRIDGE-MIB and Q-BRIDGE-MIB
    forwarding entries, plus an RFC 1213 ARP table with malformed rows (no IP-MIB table)."""
    recs = []

    def add(oid, tag, val):
        recs.append((tuple(int(x) for x in oid.split(".")), tag, val))

    add("1.3.6.1.2.1.1.3.0", "67", "123456")
    add("1.3.6.1.2.1.1.5.0", "4", "switch1")
    for p in range(1, 9):
        add(f"1.3.6.1.2.1.2.2.1.2.{p}", "4", f"GigabitEthernet1/0/{p}")
        add(f"1.3.6.1.2.1.31.1.1.1.1.{10 + p}", "4", f"Gi1/0/{p}")
        add(f"1.3.6.1.2.1.17.1.4.1.2.{p}", "2", str(10 + p))  # bridge port -> ifIndex
    fdb = {"52:54:00:aa:bb:50": 7, "52:54:00:aa:bb:71": 3}
    for m, port in fdb.items():
        idx = ".".join(str(int(x, 16)) for x in m.split(":"))
        add("1.3.6.1.2.1.17.4.3.1.2." + idx, "2", str(port))
        add("1.3.6.1.2.1.17.7.1.2.2.1.2.1." + idx, "2", str(port))
    # Q-BRIDGE only (vlan 20) and a malformed port value (a string)
    add("1.3.6.1.2.1.17.7.1.2.2.1.2.20.82.84.0.170.187.72", "2", "5")
    add("1.3.6.1.2.1.17.7.1.2.2.1.2.20.82.84.0.170.187.73", "4", "five")
    # RFC 1213 ipNetToMediaPhysAddress.<ifIndex>.<ip>: one good, two malformed
    add("1.3.6.1.2.1.4.22.1.2.3.10.98.0.70", "4x", "525400aabb")      # 5 octets
    add("1.3.6.1.2.1.4.22.1.2.3.10.98.0.71", "4x", "525400aabb71")
    add("1.3.6.1.2.1.4.22.1.2.3.10.98.0.72", "2", "7")                 # not octets
    recs.sort()
    return "".join(f"{'.'.join(map(str, o))}|{t}|{v}\n" for o, t, v in recs)


def _wait_udp(ns: str, port: int, proc: subprocess.Popen, log: Path, limit: float = 20) -> None:
    deadline = time.monotonic() + limit
    while f"127.0.0.1:{port}" not in sh(ns, "ss", "-lnu").stdout:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"agent on port {port} did not start:\n{log.read_text()}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    need(os.geteuid() == 0, "needs root (network namespaces)")
    need(shutil.which("snmpd") is not None or os.path.exists("/usr/sbin/snmpd"),
         "snmpd is not installed (Debian snmpd)")
    sim = Path(sys.executable).with_name("snmpsim-command-responder")
    need(sim.exists(), "snmpsim is not installed (extra snmptest)")
    work = tmp_path_factory.mktemp("snmp")
    ns, peer = f"nmsnmp{os.getpid()}", f"nmpeer{os.getpid()}"
    procs: list[subprocess.Popen] = []
    sh(None, "ip", "netns", "add", ns)
    try:
        sh(None, "ip", "netns", "add", peer)
        for cmd in ("ip link set lo up",
                    "ip link add nmv0 type veth peer name nmv1",
                    f"ip link set nmv1 netns {peer}",
                    "ip addr add 10.98.0.1/24 dev nmv0",
                    "ip -6 addr add fd98::1/64 dev nmv0 nodad", "ip link set nmv0 up",
                    # neighbours the router "knows": permanent entries, v4 and v6
                    "ip neigh add 10.98.0.50 lladdr 52:54:00:aa:bb:50 dev nmv0 nud permanent",
                    "ip neigh add fd98::50 lladdr 52:54:00:aa:bb:50 dev nmv0 nud permanent",
                    "ip neigh add 10.98.0.51 lladdr 52:54:00:aa:bb:51 dev nmv0 nud permanent"):
            sh(ns, *cmd.split())
        for cmd in ("ip link set lo up", f"ip link set nmv1 address {PEER_MAC}",
                    f"ip addr add {PEER_IP}/24 dev nmv1", "ip link set nmv1 up"):
            sh(peer, *cmd.split())
        conf = work / "snmpd.conf"
        conf.write_text(SNMPD_CONF.format(port=SNMPD_PORT, community=COMMUNITY,
                                          auth=V3AUTH, priv=V3PRIV))
        (work / "persist").mkdir()
        env = dict(os.environ, SNMP_PERSISTENT_DIR=str(work / "persist"))
        log = work / "snmpd.log"
        p = subprocess.Popen(["ip", "netns", "exec", ns, "/usr/sbin/snmpd", "-f", "-Lf",
                              str(log), "-C", "-c", str(conf), "-p", str(work / "snmpd.pid")],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                             start_new_session=True)
        procs.append(p)
        _wait_udp(ns, SNMPD_PORT, p, log)
        data = work / "simdata"
        data.mkdir()
        (data / "switch1.snmprec").write_text(switch_records())
        simlog = work / "snmpsim.log"
        with open(simlog, "w") as fh:
            p = subprocess.Popen(["ip", "netns", "exec", ns, str(sim), f"--data-dir={data}",
                                  f"--cache-dir={work / 'simcache'}",
                                  f"--agent-udpv4-endpoint=127.0.0.1:{SIM_PORT}",
                                  "--logging-method=stdout"],
                                 env=dict(os.environ, SNMPSIM_ALLOW_ROOT="true"), stdout=fh,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(p)
        _wait_udp(ns, SIM_PORT, p, simlog, limit=60)
        yield {"ns": ns, "peer": peer, "work": work}
    finally:
        stop_groups(procs)
        subprocess.run(["ip", "netns", "del", peer], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@pytest.fixture
def run_in_lab(lab, tmp_path):
    """(store, run) : a fresh SQLite store, and run(*args) -> CompletedProcess of
    ``discoverip args`` inside the lab namespace."""
    from nodemgr.tables.store import Store

    url = f"sqlite:///{tmp_path}/nodemgr.sqlite"
    (tmp_path / "none.conf").write_text("[nodemgr]\n")
    store = Store(url)
    env = dict(os.environ, NODEMGR_DB=url, NODEMGR_CONF=str(tmp_path / "none.conf"))

    def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", lab["ns"], sys.executable,
                               str(ROOT / "bin" / "nodemgr"), "discoverip", *args], env=env, capture_output=True, text=True, timeout=timeout)

    yield store, run
    store.close()
