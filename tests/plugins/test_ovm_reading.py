"""The Oracle VM driver's vitals, inventory, scan, boot device and console against the
simulated OVM Manager with a real sshd as dom0 (the Xen double's ``xentop`` on its PATH
shows the VMs the simulator runs): figures, sources and the one-line errors."""

from __future__ import annotations

import pytest

from nodemgr import sshpool
from nodemgr.plugins.base import NicSpec, VmSpec
from nodemgr.plugins.ovm import NO_SERIAL, TRAITS, OvmDriver
from tests.fixtures.ovm_env import make_template, ovm_env  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow

MAC = "00:16:3e:5a:00:01"


@pytest.fixture(autouse=True)
def _close_ssh():
    yield
    sshpool.close_all()


@pytest.fixture
def d(ovm_env):  # noqa: F811
    make_template(ovm_env.templatedir, "PV")
    make_template(ovm_env.templatedir, "HVM", hvm=True)
    drv = OvmDriver(ovm_env.endpoint(), 20)
    drv.retry_schedule = (0.0, 0.0)
    drv.connect()
    yield drv
    for vm in list(ovm_env.manager.vms.values()):
        [r] = drv.remove([VmSpec(vm["imgName"], extra={"cluster": "pool1"})], force=True)
        assert r.ok, r.message


def spec(name, master="PV", **kw) -> VmSpec:
    s = VmSpec(name, memory_mib=1024, cpus=2, master=master, extra={"cluster": "pool1"},
               nics=[NicSpec("xenbr0", MAC)])
    for k, v in kw.items():
        setattr(s, k, v)
    return s


def make(d, s):
    [r] = d.create([s])
    assert r.ok, r.message
    return r


def test_vitals_from_xentop_on_the_vms_dom0(d, ovm_env):  # noqa: F811
    # a name longer than xentop's 10 columns: matched by its cut form
    busy, idle, off = spec("ovmvitals-busy"), spec("ovmidle"), spec("ovmoff")
    for s in (busy, idle, off):
        make(d, s)
    ovm_env.manager.load["ovmvitals-busy"] = {
        "load": 1.5, "disk_read_bps": 512 * 4000, "disk_write_bps": 512 * 1000,
        "net_rx_bps": 1024 * 300, "net_tx_bps": 1024 * 100}
    for s in (busy, idle):
        [r] = d.power([s], "on")
        assert r.ok, r.message
    rs = list(d.vitals([busy, idle, off, spec("ghost")], 1.0))
    assert [r.node for r in rs] == ["ovmvitals-busy", "ovmidle", "ovmoff", "ghost"]
    b, i, o, g = rs
    assert b.ok and i.ok, (b.message, i.message)
    m = b.facts.metrics
    assert m.interval_s == 1.0 and m.cpus == 2
    assert 140 <= m.cpu_pct <= 160  # 1.5 vCPUs busy, as top shows it
    assert m.mem_used_mib == 1024 and m.mem_avail_mib == 1024
    assert m.disk_read_bps == pytest.approx(512 * 4000, rel=0.05)
    assert m.disk_write_bps == pytest.approx(512 * 1000, rel=0.05)
    assert m.net_rx_bps == pytest.approx(1024 * 300, rel=0.05)
    assert m.net_tx_bps == pytest.approx(1024 * 100, rel=0.05)
    assert b.data == {"server": "ovs1", "domain": "ovmvitals-busy"}
    idle_m = i.facts.metrics
    assert idle_m.cpu_pct == 0.0 and idle_m.disk_read_bps == 0 and idle_m.net_rx_bps == 0
    assert not o.ok and o.data["error"] == "InvalidState" and "is off" in o.message
    assert not g.ok and g.data["error"] == "NotFound" and "\n" not in g.message
    # a running VM whose domain the dom0 does not show: that node fails, one line
    (ovm_env.dom0.workdir / "xen" / "domains" / "ovmidle.json").unlink()
    [r] = d.vitals([idle], 1.0)
    assert not r.ok and r.data["error"] == "NotFound"
    assert r.message == "no Xen domain ovmidle in xentop on server ovs1"


def test_inventory_and_addresses_with_their_source(d, ovm_env):  # noqa: F811
    s = spec("ovminv", bootparams={"ip": "10.3.0.9/24", "gateway": "10.3.0.1"})
    make(d, s)
    vm = ovm_env.manager.getVMByName("pool1", "ovminv")
    [r] = d.inventory([s])
    assert r.ok, r.message
    inv = r.facts.inventory
    assert (inv.uuid, inv.cpus, inv.memory_mib) == (vm["uuid"], 2, 1024)
    root = "/OVS/running_pool/ovminv"
    assert [(x.dev, x.size_mib, x.path, x.format, x.device) for x in inv.disks] == [
        ("xvda", 4, f"{root}/System.img", "raw", "disk"),
        ("xvdb", 1, f"{root}/Bootparams.img", "raw", "disk")]
    assert [(n.mac, n.network, n.model) for n in inv.nics] == [(MAC, "xenbr0", "netfront")]
    assert [(a.ip, a.source, a.mac) for a in inv.addresses] == [("10.3.0.9", "bootparams", MAC)]
    # the manager learns an address (imgIp): reported as the engine's
    ovm_env.manager.vms[vm["imgId"]]["imgIp"] = "10.3.0.77"
    [r] = d.inventory([s])
    assert [(a.ip, a.source) for a in r.facts.inventory.addresses] == [
        ("10.3.0.9", "bootparams"), ("10.3.0.77", "engine")]
    [r] = d.addresses([s])
    assert r.data["addresses"] == ["10.3.0.9", "10.3.0.77"]
    assert [a.source for a in r.facts.addresses] == ["bootparams", "engine"]
    [r] = d.inventory([spec("ghost")])
    assert not r.ok and r.data["error"] == "NotFound"


def test_scan_gives_what_rscan_writes(d, ovm_env):  # noqa: F811
    on, off = spec("ovmscan1"), spec("ovmscan2", nics=[])
    make(d, on)
    r2 = make(d, off)
    [r] = d.power([on], "on")
    vms = {v.name: v for v in d.scan()}
    assert set(vms) == {"ovmscan1", "ovmscan2"}
    a, b = vms["ovmscan1"], vms["ovmscan2"]
    assert (a.state, a.host, a.memory_mib, a.cpus, a.macs) == ("on", "ovs1", 1024, 2, [MAC])
    assert a.uuid == ovm_env.manager.getVMByName("pool1", "ovmscan1")["uuid"]
    assert [x.dev for x in a.disks] == ["xvda", "xvdb"] and a.disks[0].size_mib == 4
    assert (b.state, b.host, b.macs) == ("off", None, r2.facts.macs)


def test_set_boot_in_the_manager_and_vm_cfg(d, ovm_env):  # noqa: F811
    pv, hvm = spec("ovmboot-pv"), spec("ovmboot-hvm", master="HVM")
    make(d, pv)
    make(d, hvm)
    cfg = ovm_env.ovs / "running_pool" / "ovmboot-pv" / "vm.cfg"
    [r] = d.set_boot([pv], "net")
    assert r.ok and r.facts.bootdev == "net" and r.message == "net"
    assert ovm_env.manager.getVMByName("pool1", "ovmboot-pv")["bootDevice"] == \
        {"bootDevice": "PXE"}
    text = cfg.read_text()
    assert "bootloader = '/usr/bin/pypxeboot'" in text and f"bootargs = 'mac={MAC}'" in text
    [r] = d.set_boot([pv], "hd")
    text = cfg.read_text()
    assert r.ok and "bootloader = '/usr/bin/pygrub'" in text and "bootargs" not in text
    # default = the first of vm.bootorder
    [r] = d.set_boot([spec("ovmboot-pv", bootorder=["network", "hd"])], "default")
    assert r.ok and r.facts.bootdev == "default" and r.data["boot_device"] == "PXE"
    # a PV guest cannot boot from a CD: the manager's fault, one line, nothing changed
    before = cfg.read_text()
    [r] = d.set_boot([pv], "cd")
    assert not r.ok and "cannot boot from a CDROM" in r.message and "\n" not in r.message
    assert cfg.read_text() == before
    # an HVM guest: boot = 'd'
    [r] = d.set_boot([hvm], "cd")
    hcfg = (ovm_env.ovs / "running_pool" / "ovmboot-hvm" / "vm.cfg").read_text()
    assert r.ok and "boot = 'd'" in hcfg
    # unknown device, and a running VM (the manager configures only a powered-off VM)
    [r] = d.set_boot([pv], "floppy")
    assert not r.ok and r.data["error"] == "Unsupported"
    assert r.message == "boot device 'floppy' is not one of net, hd, cd, default"
    [r] = d.power([hvm], "on")
    [r] = d.set_boot([hvm], "net")
    assert not r.ok and r.data["error"] == "InvalidState" and "not allowed" in r.message
    assert "boot = 'd'" in (ovm_env.ovs / "running_pool" / "ovmboot-hvm" / "vm.cfg").read_text()


def test_console_is_the_vnc_display(d, ovm_env):  # noqa: F811
    from nodemgr.plugins.base import InvalidState, NotFound, Unsupported

    s = spec("ovmvnc")
    make(d, s)
    with pytest.raises(InvalidState, match="is off: its VNC display exists only while it runs"):
        d.console(s)
    [r] = d.power([s], "on")
    vm = ovm_env.manager.getVMByName("pool1", "ovmvnc")
    c = d.console(s)
    assert (c.kind, c.host, c.port) == ("vnc", "127.0.0.1", vm["vncPort"])
    assert c.port >= 5900 and c.password == vm["vncPassword"] and c.password
    assert c.command == f"vncviewer 127.0.0.1::{c.port}"
    assert c.password not in repr(c)
    with pytest.raises(Unsupported) as e:
        d.console(s, open_stream=True)
    assert str(e.value) == NO_SERIAL and TRAITS.why_not("rcons") == NO_SERIAL
    with pytest.raises(NotFound):
        d.console(spec("ghost"))


def test_busy_manager_is_retried_other_faults_are_not(d, ovm_env):  # noqa: F811
    s = spec("ovmbusy")
    make(d, s)
    ovm_env.manager.fail_next["powerOn"] = ("Virtual machine ovmbusy is busy: another "
                                            "operation is in progress")
    [r] = d.power([s], "on")
    assert r.ok and r.message == "on" and "powerOn" not in ovm_env.manager.fail_next
    ovm_env.manager.fail_next["powerOff"] = "agent error on ovs1"
    [r] = d.power([s], "off")
    assert not r.ok and r.data["error"] == "PermanentError"
    assert r.message == "powerOff failed: agent error on ovs1"
    [r] = d.power([s], "stat")
    assert r.message == "on"  # not retried: the VM still runs


def test_translate_a_broken_dom0_link(ovm_env):  # noqa: F811
    import paramiko

    from nodemgr.plugins.base import Unreachable

    drv = OvmDriver(ovm_env.endpoint(), 5)
    assert isinstance(drv.translate(paramiko.SSHException("x")), Unreachable)
    assert isinstance(drv.translate(EOFError()), Unreachable)
    assert drv.translate(ValueError("x")) is None


def test_the_real_ovm_dom0_xentop_sample_reads():
    """``xentop -b`` recorded on a real Oracle VM dom0 (tests/fixtures/xen/samples/public):
    the 10-character guest name is found by its cut form; figures from two iterations."""
    from pathlib import Path

    from nodemgr.plugins.base import PermanentError
    from nodemgr.plugins.ovm.driver import match_domain
    from nodemgr.plugins.xen.parse import parse_xentop, top_metrics

    sample = (Path(__file__).resolve().parent.parent / "fixtures" / "xen" / "samples" /
              "public" / "xentop-batch-ovm-dom0.txt").read_text()
    [rows] = parse_xentop(sample)
    row = match_domain(rows, "c2214-vkgeadm01vm01")
    assert row.name == "c2214-vkge" and row.vcpus == 92
    assert match_domain(rows, "Domain-0").maxmem_kib == 9437184
    assert match_domain(rows, "absent") is None
    m = top_metrics(row, row, 2.0)
    assert (m.mem_used_mib, m.mem_avail_mib, m.disk_read_bps, m.net_rx_bps) == \
        (754978808 // 1024, 754978816 // 1024, 0.0, 0.0)
    with pytest.raises(PermanentError, match="cannot tell"):
        match_domain(rows + [rows[0]], "c2214-vkge-other")
