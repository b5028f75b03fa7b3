"""discoverip against real agents in a test-made namespace: net-snmp's snmpd (v2c and
SNMPv3 authPriv) with real neighbour entries, snmpsim replaying a switch (forwarding tables,
RFC 1213 fallback, malformed rows), an agent that does not answer, and the seed's fallback:
probing the pool's directly attached subnet through its interfaces in order and reading the
kernel's neighbour table (a veth peer in a second namespace)."""

from __future__ import annotations

import time

import pytest

from tests.discovery.conftest import (
    COMMUNITY,
    DEAD_PORT,
    PEER_IP,
    PEER_MAC,
    SIM_PORT,
    SNMPD_PORT,
    V3AUTH,
    V3PRIV,
)

pytestmark = pytest.mark.slow


def machines(store, agents: str | None, macs: dict[str, str], *, subnet=None, ifaces=None,
             passwd=()):
    with store.transaction():
        store.upsert("serverpool", {"name": "cloud"},
                     {"virttype": "kvm", "snmpagents": agents, "subnet": subnet,
                      "interfaces": ifaces})
        for node, mac in macs.items():
            store.upsert("nodelist", {"node": node}, {"groups": "cloud"})
            store.upsert("hypervisor", {"node": node}, {"type": "kvm", "cluster": "cloud"})
            store.upsert("mac", {"node": node}, {"mac": mac})
        for key, user, pw, crypt in passwd:
            store.upsert("passwd", {"key": key, "username": user},
                         {"password": pw, "cryptmethod": crypt})


def test_v2c_snmpd_writes_ip_and_age_keeps_old_ip(run_in_lab):
    store, run = run_in_lab
    machines(store, f"127.0.0.1:{SNMPD_PORT}@v2c",
             {"m50": "52:54:00:aa:bb:50", "m51": "52:54:00:AA:BB:51", "m60": "52:54:00:aa:bb:60"},
             passwd=[("snmp", "community", COMMUNITY, None)])
    with store.transaction():
        store.upsert("hosts", {"node": "m60"}, {"ip": "10.98.0.160"})
    r = run("cloud", "--dry-run")
    assert r.returncode == 1
    assert r.stdout == (f"m50: 10.98.0.50 (via 127.0.0.1:{SNMPD_PORT})\n"
                        f"m51: 10.98.0.51 (via 127.0.0.1:{SNMPD_PORT})\n")
    assert r.stderr == (f"m60: Error: no IP address yet for MAC 52:54:00:aa:bb:60 in the "
                        f"neighbour tables of 127.0.0.1:{SNMPD_PORT} (hosts.ip kept: "
                        "10.98.0.160)\n")
    assert store.get("hosts", {"node": "m50"}) is None  # dry run wrote nothing
    assert store.select("ipdiscovery") == []
    r = run("cloud")
    assert r.returncode == 1 and COMMUNITY not in r.stdout + r.stderr
    assert store.get("hosts", {"node": "m50"})["ip"] == "10.98.0.50"  # IPv4 wins over fd98::50
    assert store.get("hosts", {"node": "m60"})["ip"] == "10.98.0.160"  # kept
    row = store.get("ipdiscovery", {"node": "m50"})
    assert row["via"] == f"127.0.0.1:{SNMPD_PORT}" and row["mac"] == "52:54:00:aa:bb:50"
    assert 0 <= float(row["age"]) < 600  # ipNetToPhysicalLastUpdated vs sysUpTime
    assert time.strptime(row["discovered"], "%Y-%m-%dT%H:%M:%SZ")


def test_v3_authpriv_and_wrong_key(run_in_lab):
    store, run = run_in_lab
    machines(store, f"127.0.0.1:{SNMPD_PORT}@v3:nmv3", {"m50": "52:54:00:aa:bb:50"},
             passwd=[("snmp", "nmv3", V3AUTH, "SHA/AES"), ("snmppriv", "nmv3", V3PRIV, None)])
    r = run("m50", "--dry-run")
    assert (r.returncode, r.stdout) == (0, f"m50: 10.98.0.50 (via 127.0.0.1:{SNMPD_PORT})\n")
    with store.transaction():
        store.upsert("passwd", {"key": "snmp", "username": "nmv3"}, {"password": "wrong-key-99"})
    r = run("m50")
    assert r.returncode == 1 and "wrong-key-99" not in r.stderr and V3PRIV not in r.stderr
    assert r.stderr.startswith(f"m50: Error: SNMP agent 127.0.0.1:{SNMPD_PORT}: ")
    assert "digest" in r.stderr.lower() and store.get("hosts", {"node": "m50"}) is None
    with store.transaction():
        store.delete("passwd", {"key": "snmppriv", "username": "nmv3"})
    r = run("m50")
    assert "no SNMPv3 privacy key for user nmv3" in r.stderr


def test_agent_not_answering_fails_within_timeout(run_in_lab):
    store, run = run_in_lab
    machines(store, f"127.0.0.1:{DEAD_PORT}@v2c,timeout=0.5,retries=1",
             {"m50": "52:54:00:aa:bb:50"}, passwd=[("snmp", "community", COMMUNITY, None)])
    with store.transaction():
        store.upsert("hosts", {"node": "m50"}, {"ip": "10.98.0.5"})
    t0 = time.monotonic()
    r = run("m50")
    took = time.monotonic() - t0
    assert r.returncode == 1
    assert r.stderr == (f"m50: Error: SNMP agent 127.0.0.1:{DEAD_PORT} did not answer within "
                        "1 s (hosts.ip kept: 10.98.0.5)\n")
    assert took < 6, took  # 1 s budget + interpreter and pysnmp start-up
    assert store.get("hosts", {"node": "m50"})["ip"] == "10.98.0.5"


def test_snmpsim_switch_ports_rfc1213_fallback_and_malformed(run_in_lab):
    store, run = run_in_lab
    agents = f"127.0.0.1:{SNMPD_PORT}|127.0.0.1:{SIM_PORT}"
    machines(store, agents, {"m50": "52:54:00:aa:bb:50", "m71": "52:54:00:aa:bb:71",
                             "m48": "52:54:00:aa:bb:48"},
             passwd=[("snmp", "community", COMMUNITY, None),
                     (f"snmp:127.0.0.1:{SIM_PORT}", "community", "switch1", None)])
    r = run("cloud")
    assert r.stdout == (f"m50: 10.98.0.50 (via 127.0.0.1:{SNMPD_PORT})\n"
                        f"m50: switch port Gi1/0/7 (via 127.0.0.1:{SIM_PORT})\n"
                        f"m71: 10.98.0.71 (via 127.0.0.1:{SIM_PORT})\n"
                        f"m71: switch port Gi1/0/3 (via 127.0.0.1:{SIM_PORT})\n")
    # m48 is only in the Q-BRIDGE table (vlan 20, bridge port 5): port known, no IP
    assert r.stderr == (
        f"m48: Error: no IP address yet for MAC 52:54:00:aa:bb:48 in the neighbour tables of "
        f"127.0.0.1:{SNMPD_PORT}, 127.0.0.1:{SIM_PORT}; SNMP agent 127.0.0.1:{SIM_PORT} sent "
        "3 malformed entries (skipped) (hosts.ip not set)\n")
    assert store.get("ipdiscovery", {"node": "m71"})["switchport"] == \
        f"Gi1/0/3 (via 127.0.0.1:{SIM_PORT})"
    assert store.get("ipdiscovery", {"node": "m71"})["age"] is None  # RFC 1213 has no age


def test_neighbour_fallback_probes_attached_subnet_in_interface_order(run_in_lab, lab):
    store, run = run_in_lab
    # no SNMP agents; "tun7" does not exist, so the bridge-side nmv0 is used
    machines(store, None, {"peer": PEER_MAC.upper(), "ghost": "52:54:00:12:34:99"},
             subnet="10.98.0.0/24", ifaces="tun7;nmv0")
    r = run("cloud")
    assert r.stdout == f"peer: {PEER_IP} (via neigh:nmv0)\n"
    assert r.stderr == ("ghost: Error: no IP address yet for MAC 52:54:00:12:34:99 in the "
                        "neighbour tables of neigh:nmv0 (hosts.ip not set)\n")
    assert store.get("hosts", {"node": "peer"})["ip"] == PEER_IP
    assert float(store.get("ipdiscovery", {"node": "peer"})["age"]) < 60
    # a subnet not attached through the pool's interfaces is never probed
    machines(store, None, {}, subnet="10.77.0.0/24", ifaces="nmv0")
    r = run("peer")
    assert r.returncode == 1 and "subnet 10.77.0.0/24 is not directly attached through nmv0" \
        in r.stderr
