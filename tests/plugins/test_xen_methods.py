"""The Xen driver's reshaped results and its new methods (vitals, inventory, scan,
set_boot, console) through a real sshd to a dom0 whose ``xl``/``xentop`` are the double
(tests/fixtures/xen/xl_double.py): typed facts instead of columns, one failed-result shape
for every error, and the figures a guest under a known load gives."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from nodemgr import sshpool
from nodemgr.plugins.base import (
    Address,
    DiskSpec,
    Facts,
    InvalidState,
    NicSpec,
    NotFound,
    PermanentError,
    VmChange,
    VmSpec,
)
from nodemgr.plugins.xen import TRAITS, XenDriver
from nodemgr.plugins.xen.parse import parse_config
from nodemgr.vm import writeback
from tests.fixtures.sshd import sshd_factory  # noqa: F401 - the fixture
from tests.fixtures.xen.dom0 import dom0, endpoint

pytestmark = pytest.mark.slow

MAC1, MAC2 = "00:16:3e:aa:00:01", "00:16:3e:aa:00:02"


@pytest.fixture(scope="module")
def servers(sshd_factory):  # noqa: F811
    """One dom0 with xentop, one without (vitals falls back to two ``xl list``)."""
    yield dom0(sshd_factory, xentop=True), dom0(sshd_factory)
    sshpool.close_all()


@pytest.fixture
def host(servers):
    s = servers[0]
    for p in (s.cfgdir, s.images, s.state):
        subprocess.run(["find", str(p), "-mindepth", "1", "-delete"], check=True)
    return s


def spec(s, node="xvm1", **kw) -> VmSpec:
    kw.setdefault("nics", [NicSpec(network="xenbr0", mac=MAC1)])
    kw.setdefault("disks", [DiskSpec(dev="vda", location=f"dir://{s.images}", size_mib=64,
                                     format="raw")])
    return VmSpec(node=node, memory_mib=256, cpus=2, storage=[f"dir://{s.images}"], **kw)


def made(s, *specs, on=()):
    drv = XenDriver(endpoint(s))
    assert [r.ok for r in drv.create(list(specs))] == [True] * len(specs)
    if on:
        assert [r.message for r in drv.power([x for x in specs if x.node in on], "on")] == \
            ["on"] * len(on)
    return drv


def load(s, node, **figures):
    """Give running domain *node* a CPU load and I/O rates (the double grows its counters)."""
    path = s.state / "domains" / f"{node}.json"
    d = json.loads(path.read_text())
    d.update(figures)
    path.write_text(json.dumps(d))


def test_traits_are_data_and_results_carry_facts_not_columns(host):
    assert TRAITS.host_types == ("xen",) and TRAITS.ssh and XenDriver.traits is TRAITS
    assert TRAITS.why_not("getrvidparms") and TRAITS.why_not("rcons") is None
    drv = XenDriver(endpoint(host))
    one = spec(host)
    r = next(drv.create([one]))
    assert (r.ok, r.updates, r.facts) == (True, {}, Facts(host="dom0"))
    assert writeback.columns(r.facts) == {"vm.host": "dom0"}
    r = next(drv.power([one], "on"))
    assert (r.message, r.data, r.facts) == ("on", {"state": "on"},
                                            Facts(power="on", status="powering-on"))
    r = next(drv.power([one], "stat"))
    assert (r.facts.power, r.facts.status) == ("on", None)
    r = next(drv.change([one], VmChange(cpus=1, memory_mib=128)))
    assert (r.facts.cpus, r.facts.memory_mib, r.updates) == (1, 128, {})


def test_every_error_is_a_failed_result_with_its_class(host):
    drv = XenDriver(endpoint(host))
    gone = VmSpec(node="nosuch")
    for results in (drv.power([gone], "on"), drv.describe([gone]), drv.addresses([gone]),
                    drv.remove([gone]), drv.vitals([gone]), drv.inventory([gone]),
                    drv.set_boot([gone], "net")):
        (r,) = list(results)
        assert (r.ok, r.data["error"], r.message) == (
            False, "NotFound", "Cannot find vm nosuch on dom0")
    made(host, spec(host), on=("xvm1",))
    (r,) = drv.remove([spec(host)])
    assert (r.ok, r.data["error"]) == (False, "InvalidState")


def test_validate_needs_a_mac_for_the_openqrm_layout(host):
    drv = XenDriver(endpoint(host, layout="openqrm"))
    with pytest.raises(PermanentError, match="openqrm config layout needs the node.s MAC"):
        drv.validate(VmSpec(node="q1"))
    drv.validate(VmSpec(node="q1", nics=[NicSpec(network="xenbr0", mac=MAC1)]))


# -- vitals ----------------------------------------------------------------------------------


def test_vitals_from_one_xentop_run(host):
    """Two running VMs, one stopped: one ``xentop -b -i 2`` gives each running one its CPU
    % (150 for one and a half vCPUs busy), memory and disk/network rates; the stopped one
    fails with InvalidState, the unknown one with NotFound."""
    busy, idle, off = spec(host, "xvm1"), spec(host, "xvm2"), spec(host, "xvm3")
    drv = made(host, busy, idle, off, on=("xvm1", "xvm2"))
    load(host, "xvm1", load=1.5, disk_write_bps=4 << 20, disk_read_bps=1 << 20,
         net_rx_bps=200_000, net_tx_bps=50_000)
    r1, r2, r3, r4 = drv.vitals([busy, idle, off, VmSpec(node="nosuch")], interval_s=0.4)
    m = r1.facts.metrics
    assert r1.ok and m.interval_s == 1.0  # xentop's delay is whole seconds
    assert m.cpu_pct == pytest.approx(150, abs=1)
    assert (m.cpus, m.mem_used_mib, m.mem_avail_mib) == (2, 256, 256)
    assert m.disk_write_bps == pytest.approx(4 << 20, rel=0.1)
    assert m.disk_read_bps == pytest.approx(1 << 20, rel=0.1)
    assert m.net_rx_bps == pytest.approx(200_000, rel=0.1)
    assert m.net_tx_bps == pytest.approx(50_000, rel=0.1)
    assert r1.message.startswith("cpu 150.0% over 1 s, mem 256/256 MiB, disk r/w ")
    m2 = r2.facts.metrics
    assert (m2.cpu_pct, m2.disk_read_bps, m2.net_tx_bps) == (0.0, 0.0, 0.0)
    assert (r3.ok, r3.data["error"], r3.message) == (
        False, "InvalidState", "xvm3 is not running on dom0")
    assert (r4.ok, r4.data["error"]) == (False, "NotFound")


def test_vitals_without_xentop_from_two_list_samples(servers):
    s = servers[1]
    one = spec(s)
    drv = made(s, one, on=("xvm1",))
    load(s, "xvm1", load=1.0, disk_write_bps=1 << 20)
    (r,) = drv.vitals([one], interval_s=1.0)
    m = r.facts.metrics
    assert 70 <= m.cpu_pct <= 130  # CPU time grown over the local interval (SSH latency in it)
    assert (m.mem_used_mib, m.disk_write_bps, m.net_rx_bps) == (256, None, None)
    assert "disk" not in r.message
    assert drv.remove([one], force=True, purge=True)


# -- inventory, scan -------------------------------------------------------------------------


@pytest.fixture
def neighbour():
    """An L2-only bridge (no address, IPv6 off: it sends nothing) in the root namespace
    with a permanent neighbour entry for MAC2 (what the dom0's ARP table would hold for the
    VM's second NIC); removed afterwards."""
    name = "nmtx" + uuid.uuid4().hex[:6]
    subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
    try:
        with open(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "w") as fh:
            fh.write("1\n")
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
        subprocess.run(["ip", "neigh", "add", "198.51.100.77", "lladdr", MAC2, "dev", name,
                        "nud", "permanent"], check=True)
        yield "198.51.100.77"
    finally:
        subprocess.run(["ip", "link", "del", name], check=False)


def test_inventory_sizes_macs_and_addresses_with_their_source(host, neighbour):
    vm = spec(host, uuid="5c1b9a4e-3f55-4a37-9d64-0f2b5c8e1a11",
              nics=[NicSpec(network="xenbr0", mac=MAC1), NicSpec(network="xenbr1", mac=MAC2)],
              disks=[DiskSpec(dev="vda", location=f"dir://{host.images}", size_mib=64,
                              format="raw"),
                     DiskSpec(dev="vdb", location=f"dir://{host.images}", size_mib=32,
                              format="qcow2")],
              bootparams={"ip": "192.0.2.7/24", "gateway": "192.0.2.1"})
    drv = made(host, vm, on=("xvm1",))
    (r,) = drv.inventory([vm])
    inv = r.facts.inventory
    assert (inv.uuid, inv.cpus, inv.memory_mib) == (vm.uuid, 2, 256)
    assert [(d.dev, d.size_mib, d.format, d.device) for d in inv.disks] == [
        ("xvda", 64, "raw", "disk"), ("xvdb", 32, "qcow2", "disk"),
        ("hdc", None, "raw", "cdrom")]
    assert [(n.mac, n.network) for n in inv.nics] == [(MAC1, "xenbr0"), (MAC2, "xenbr1")]
    assert r.facts.addresses == inv.addresses == [
        Address("192.0.2.7", "bootparams", MAC1), Address(neighbour, "arp", MAC2)]
    assert "UUID/GUID: 5c1b9a4e-3f55-4a37-9d64-0f2b5c8e1a11" in r.message
    assert "Disk xvdb: 32 MB @ " in r.message and f"IP address: {neighbour} (arp)" in r.message
    # stopped: the same from its config file
    assert [x.ok for x in drv.power([vm], "off")] == [True]
    (r,) = drv.inventory([vm])
    assert (r.facts.inventory.uuid, r.facts.inventory.memory_mib) == (vm.uuid, 256)


def test_scan_gives_what_rscan_writes(host):
    a = spec(host, "xvm1", uuid="11111111-2222-3333-4444-555555555555")
    b = spec(host, "xvm2", nics=[NicSpec(network="xenbr0", mac=MAC2)])
    drv = made(host, a, b, on=("xvm2",))
    found = {v.name: v for v in drv.scan()}
    assert sorted(found) == ["xvm1", "xvm2"]
    v1, v2 = found["xvm1"], found["xvm2"]
    assert (v1.state, v1.uuid, v1.memory_mib, v1.cpus, v1.macs) == (
        "off", a.uuid, 256, 2, [MAC1])
    assert [d.dev for d in v1.disks] == ["xvda"]
    assert v2.state == "on" and v2.macs == [MAC2]
    state = json.loads((host.state / "domains" / "xvm2.json").read_text())
    assert v2.uuid == state["uuid"]  # the running domain's, from xl list -l


# -- set_boot --------------------------------------------------------------------------------


def boot_of(s, node="xvm1") -> str:
    return parse_config((s.cfgdir / f"{node}.cfg").read_text())["boot"]


def test_set_boot_writes_boot_and_the_next_start_uses_it(host):
    vm = spec(host)
    drv = made(host, vm)
    assert boot_of(host) == "nc"  # vm.bootorder network, hd
    (r,) = drv.set_boot([vm], "hd")
    assert (r.ok, r.message, r.data, r.facts) == (True, "hd", {"boot": "cn"},
                                                  Facts(bootdev="hd"))
    assert boot_of(host) == "cn"
    assert [x.message for x in drv.power([vm], "on")] == ["on"]
    dom = json.loads((host.state / "domains" / "xvm1.json").read_text())
    assert dom["config"]["boot"] == "cn"  # xl create read it
    (r,) = drv.set_boot([vm], "net")
    assert (r.message, boot_of(host)) == ("net (from its next start)", "nc")
    (r,) = drv.set_boot([vm], "cd")
    assert (r.ok, r.data["error"], r.message) == (
        False, "InvalidState", "xvm1 has no cdrom drive to boot from")
    (r,) = drv.set_boot([vm], "default")
    assert boot_of(host) == "nc" and r.facts.bootdev == "default"


def test_set_boot_bad_input_changes_nothing(host):
    vm = spec(host)
    pv = spec(host, "xvm2", extra={"othersettings": "kernel=/boot/vmlinuz;ramdisk=/boot/initrd"})
    drv = made(host, vm, pv)
    before = (host.cfgdir / "xvm1.cfg").read_text()
    results = list(drv.set_boot([vm, pv], "floppy"))
    assert [(r.ok, r.data["error"], r.message) for r in results] == [
        (False, "PermanentError", "unknown boot device 'floppy' (net, hd, cd or default)")] * 2
    assert (host.cfgdir / "xvm1.cfg").read_text() == before
    (r,) = drv.set_boot([pv], "net")
    assert (r.ok, r.data["error"]) == (False, "Unsupported")
    assert "PV guest" in r.message and "boot" not in parse_config(
        (host.cfgdir / "xvm2.cfg").read_text())


def test_set_boot_cd_with_a_cdrom(host):
    vm = spec(host, bootparams={"ip": "dhcp"})  # the config disk is a cdrom (hdc)
    drv = made(host, vm)
    (r,) = drv.set_boot([vm], "cd")
    assert (r.ok, boot_of(host)) == (True, "dnc")


# -- console ---------------------------------------------------------------------------------


def read_until(stream, marker: bytes, limit: int = 50) -> bytes:
    got = b""
    for _ in range(limit):
        chunk = stream.read(0.2)
        if chunk is None:
            break
        got += chunk
        if marker in got:
            break
    return got


def test_console_is_xl_console_on_a_pty(host):
    vm = spec(host)
    drv = made(host, vm, spec(host, "xvm2"), on=("xvm1",))
    con = drv.console(vm)
    assert (con.kind, con.stream) == ("serial", None)
    assert con.command == f"ssh -t -p {host.port} {host.user}@{host.host} xl console xvm1"
    con = drv.console(vm, open_stream=True)
    try:
        banner = read_until(con.stream, b"login: ")
        assert b"SeaBIOS" in banner and banner.endswith(b"xvm1 login: ")
        con.stream.write(b"root\r")
        assert b"root" in read_until(con.stream, b"root")
        con.stream.detach()  # Ctrl-]: xl console exits, the guest keeps running
        assert read_until(con.stream, b"\0") == b"" and con.stream.read(0.1) is None
    finally:
        con.stream.close()
    assert [r.message for r in drv.power([vm], "stat")] == ["on"]
    with pytest.raises(InvalidState, match="xvm2 is not running on dom0"):
        drv.console(spec(host, "xvm2"))
    with pytest.raises(NotFound):
        drv.console(VmSpec(node="nosuch"))
