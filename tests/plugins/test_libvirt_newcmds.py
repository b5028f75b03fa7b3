"""The libvirt driver's methods behind rvitals, rinv, rscan, rsetboot and rcons/getcons, and
the package shape (traits without libvirt, facts instead of columns).

Two layers as in test_libvirt.py: libvirt's test driver (inventory, scan, boot order,
refusals) and the real system libvirtd with QEMU (software emulation) for what the test
driver cannot do: statistics (it reports none) and the serial console (it has no
``openConsole``). The console test reads what a real guest's firmware prints: SeaBIOS
with ``<bios useserial='yes'/>`` (the sga option ROM) and the iPXE NIC ROM.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from nodemgr.plugins.base import NicSpec
from nodemgr.plugins.libvirt import TRAITS, LibvirtDriver
from nodemgr.plugins.libvirt.domain_xml import DomainXml, build_domain_xml, setboot_order
from tests.plugins import test_libvirt as base
from tests.plugins.test_libvirt import T, _real_driver, _real_spec, one

libvirt = pytest.importorskip("libvirt")

drv = base.drv  # the test-driver host fixture, shared with test_libvirt.py
PACKAGE = Path(__file__).resolve().parents[2] / "nodemgr" / "plugins" / "libvirt"


# -- the package ------------------------------------------------------------------------


def test_traits_are_the_packages():
    from nodemgr.plugins.registry import traits

    assert traits("kvm") is TRAITS and traits("libvirt") is TRAITS
    assert LibvirtDriver.traits is TRAITS
    assert set(TRAITS.host_types) == {"kvm", "qemu", "libvirt"}
    assert TRAITS.endpoint_attr == "vm.host" and not TRAITS.assigns_identity


def test_no_table_columns_in_the_package():
    """The driver speaks facts: no ``"table.col"`` string and no ``updates=`` anywhere in
    the package's code (docstrings may name xCAT attributes)."""
    col = re.compile(r"""["'](vpd|mac|vm|kvm_nodedata|kvm_masterdata|nodelist|nodehm)\.[a-z]+["']""")
    for path in PACKAGE.glob("*.py"):
        text = path.read_text()
        assert not col.search(text), (path.name, col.search(text).group(0))
        assert "updates=" not in text and "updates[" not in text, path.name


# -- domain XML: serial console and boot order (no libvirt) -----------------------------


def test_new_domains_print_the_firmware_on_the_serial_console():
    root = ET.fromstring(build_domain_xml(T("n1"), [], "qemu"))
    assert root.find("os/bios").get("useserial") == "yes"
    assert root.find("devices/serial").get("type") == "pty"
    assert root.find("devices/console/target").get("type") == "serial"
    arm = ET.fromstring(build_domain_xml(T("n1", extra={"arch": "aarch64"}), [], "qemu"))
    assert arm.find("os/bios") is None  # SeaBIOS is x86 only


def test_setboot_order_words():
    assert setboot_order("net", ["hd", "cdrom", "network"], []) == ["network", "hd", "cdrom"]
    assert setboot_order("cd", ["network", "hd"], []) == ["cdrom", "network", "hd"]
    assert setboot_order("hd", [], []) == ["hd"]
    assert setboot_order("default", ["cdrom"], ["net", "hd"]) == ["network", "hd"]
    from nodemgr.plugins.base import Unsupported

    with pytest.raises(Unsupported, match=r"^Unsupported boot device 'usb' \(use net, hd, cd "
                                          r"or default\)$"):
        setboot_order("usb", [], [])


def test_set_boot_order_replaces_per_device_boot_elements():
    doc = DomainXml("<domain><name>x</name><os><type>hvm</type><bios useserial='yes'/></os>"
                    "<devices><disk type='file' device='disk'><target dev='vda'/>"
                    "<boot order='1'/></disk><interface type='bridge'><boot order='2'/>"
                    "</interface></devices></domain>")
    doc.set_boot_order(["network", "hd"])
    assert doc.boot_order() == ["network", "hd"]
    assert doc.root.findall("devices//boot") == []
    assert [c.tag for c in doc.root.find("os")] == ["type", "boot", "boot", "bios"]


# -- test driver: rinv, rscan, rsetboot, refusals ---------------------------------------


class TestInventoryAndScan:
    def test_inventory(self, drv):
        r = one(drv.inventory([T()]))
        assert r.ok, r.message
        inv = r.facts.inventory
        assert (inv.uuid, inv.cpus, inv.memory_mib) == ("11111111-0000-4000-8000-000000000001",
                                                        1, 256)
        assert [(d.dev, d.device, d.size_mib, d.path) for d in inv.disks] == [
            ("vda", "disk", 64, "/images/cn001.vda.qcow2"),
            ("vdb", "disk", 64, "/images/cn001.vdb.raw"),
            ("hdc", "cdrom", None, None)]
        assert [(n.mac, n.network) for n in inv.nics] == [("52:54:00:00:00:01", "default")]
        # the test driver answers every address source alike: the first (lease) is kept
        assert [(a.ip, a.source, a.mac) for a in inv.addresses] == [
            ("192.168.122.3", "lease", "52:54:00:00:00:01")]
        assert r.updates == {} and r.facts.definition is None  # nothing to write

    def test_inventory_of_an_off_vm_falls_back_to_bootparams(self, drv):
        one(drv.power([T("cn002")], "off"))
        spec = T("cn002", bootparams={"ip": "192.0.2.7/24"},
                 nics=[NicSpec(network="br0", mac="52:54:00:AA:00:07")])
        inv = one(drv.inventory([spec])).facts.inventory
        assert [(a.ip, a.source, a.mac) for a in inv.addresses] == [
            ("192.0.2.7", "bootparams", "52:54:00:aa:00:07")]
        assert inv.disks == [] and inv.nics == []

    def test_inventory_unknown(self, drv):
        r = one(drv.inventory([T("ghost")]))
        assert (r.ok, r.data["error"]) == (False, "NotFound")
        assert r.message == "Cannot find vm ghost on hyp1"

    def test_addresses_carry_their_source(self, drv):
        r = one(drv.addresses([T()]))
        assert r.data == {"addresses": ["192.168.122.3"], "source": "guest"}
        assert [(a.ip, a.source) for a in r.facts.addresses] == [("192.168.122.3", "lease")]

    def test_scan(self, drv):
        one(drv.power([T("cn002")], "off"))
        vms = {v.name: v for v in drv.scan()}
        cn1, cn2 = vms["cn001"], vms["cn002"]
        assert (cn1.state, cn1.uuid, cn1.memory_mib, cn1.cpus, cn1.macs, cn1.host) == (
            "on", "11111111-0000-4000-8000-000000000001", 256, 1, ["52:54:00:00:00:01"], "hyp1")
        assert [(d.dev, d.size_mib) for d in cn1.disks if d.device == "disk"] == [("vda", 64),
                                                                                  ("vdb", 64)]
        assert (cn2.state, cn2.macs, cn2.disks) == ("off", [], [])


class TestSetBoot:
    def test_net_then_default(self, drv):
        r = one(drv.set_boot([T()], "hd"))
        assert (r.ok, r.message, r.facts.bootdev) == (True, "Hard Drive", "hd")
        stored = drv.conn.lookupByName("cn001").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        assert DomainXml(stored).boot_order() == ["hd", "network"]
        assert DomainXml(r.facts.definition).boot_order() == ["hd", "network"]
        r = one(drv.set_boot([T()], "cd"))
        assert r.message == "CD/DVD" and DomainXml(r.facts.definition).boot_order() == [
            "cdrom", "hd", "network"]
        r = one(drv.set_boot([T(bootorder=["net", "hd"])], "default"))
        assert (r.message, r.data["bootorder"]) == ("default (network,hd)", ["network", "hd"])
        assert r.updates == {}

    def test_stored_definition_only(self, drv):
        xml = build_domain_xml(T("cn050", uuid="50505050-0000-4000-8000-000000000050"), [], "test")
        r = one(drv.set_boot([T("cn050", definition=xml)], "net"))
        assert r.ok and r.message == "Network"
        assert DomainXml(r.facts.definition).boot_order() == ["network", "hd"]
        assert "cn050" not in [d.name() for d in drv.conn.listAllDomains(0)]  # not defined

    def test_unknown_device_and_vm(self, drv):
        before = drv.conn.lookupByName("cn001").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        r, g = drv.set_boot([T(), T("ghost")], "usb")
        assert (r.ok, r.data["error"], r.message) == (
            False, "Unsupported", "Unsupported boot device 'usb' (use net, hd, cd or default)")
        assert g.data["error"] == "Unsupported"  # the word is checked before the lookup
        assert drv.conn.lookupByName("cn001").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) == before
        r = one(drv.set_boot([T("ghost")], "net"))
        assert (r.ok, r.data["error"]) == (False, "NotFound")


class TestRefusals:
    def test_vitals_of_off_and_unknown_vms(self, drv):
        one(drv.power([T("cn002")], "off"))
        off, ghost = drv.vitals([T("cn002"), T("ghost")], 0)
        assert (off.ok, off.data["error"], off.message) == (
            False, "InvalidState", "cn002 is off: no vitals of a vm that is not running")
        assert (ghost.ok, ghost.data["error"]) == (False, "NotFound")

    def test_vitals_sample_all_vms_twice(self, drv, monkeypatch):
        calls = []
        real = drv.conn.domainListGetStats

        def counting(doms, *a):
            calls.append(sorted(d.name() for d in doms))
            return real(doms, *a)

        monkeypatch.setattr(drv._conn, "domainListGetStats", counting, raising=False)
        res = list(drv.vitals([T("cn001"), T("cn002")], 0.05))
        assert calls == [["cn001", "cn002"]] * 2
        assert all(r.ok for r in res)
        m = res[0].facts.metrics
        assert m.interval_s >= 0.05
        # the test driver reports no statistics: every figure is "not given"
        assert (m.cpu_pct, m.mem_used_mib, m.disk_read_bps, m.net_rx_bps) == (None,) * 4

    def test_console_without_serial_device(self, drv):
        with pytest.raises(Exception) as exc:  # cn002's definition has no console
            drv.console(T("cn002"))
        assert type(exc.value).__name__ == "Unsupported"
        assert str(exc.value).startswith("cn002 has no serial console")
        with pytest.raises(Exception) as exc:
            drv.console(T("ghost"))
        assert type(exc.value).__name__ == "NotFound"

    def test_console_parameters(self, drv, test_uri):
        drv.conn.defineXML(build_domain_xml(T("cn060"), [], "test"))
        cons = drv.console(T("cn060"))
        assert (cons.kind, cons.host, cons.stream) == ("serial", "hyp1", None)
        assert cons.command == f"virsh -c {test_uri} console cn060"
        with pytest.raises(Exception) as exc:  # defined, not running
            drv.console(T("cn060"), open_stream=True)
        assert type(exc.value).__name__ == "InvalidState"


# -- the real libvirtd: rvitals and rcons on running QEMU guests ------------------------


def _read_until(stream, needles, deadline_s=90.0) -> bytes:
    """Read *stream* until every byte string of *needles* was seen (or the deadline)."""
    buf = b""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end and not all(n in buf for n in needles):
        chunk = stream.read(1.0)
        if chunk is None:
            break
        assert len(chunk) <= 4096  # ConsoleStream.read: up to 4 KiB
        buf += chunk
    return buf


@pytest.mark.libvirtd
@pytest.mark.slow
def test_serial_console_shows_the_firmware(real, l2_bridge):
    """A real guest booting from the network: SeaBIOS (useserial) and then iPXE print to
    the serial console, read through libvirt's console stream; the stream ends when the
    domain stops."""
    d = _real_driver(real)
    spec = _real_spec(real, "cons", bootorder=["network"],
                      nics=[NicSpec(network=l2_bridge, mac="52:54:00:7e:57:10")])
    assert one(d.create([spec])).ok
    off = d.console(spec)  # the parameters need no running domain
    assert off.kind == "serial" and off.command.endswith(f" console {spec.node}")
    with pytest.raises(Exception) as exc:
        d.console(spec, open_stream=True)
    assert type(exc.value).__name__ == "InvalidState"
    assert one(d.power([spec], "on")).message == "on"
    cons = d.console(spec, open_stream=True)
    try:
        out = _read_until(cons.stream, [b"SeaBIOS", b"iPXE"])
        assert b"SeaBIOS (version" in out, out[-500:]
        assert b"iPXE" in out, out[-500:]  # the NIC's option ROM, over the same console
        cons.stream.write(b"\r")  # keystrokes reach the guest without error
        one(d.power([spec], "off"))
        _read_until(cons.stream, [b"\0never"], deadline_s=30)
        assert cons.stream.read(1.0) is None  # closed with the domain
    finally:
        cons.stream.close()
    cons.stream.close()  # twice is harmless
    assert cons.stream.read(0.1) is None


@pytest.mark.libvirtd
@pytest.mark.slow
def test_console_without_useserial_stays_silent(real):
    """Why mkvm writes ``<bios useserial='yes'/>``: the same guest without it (and
    without graphics) prints nothing on the serial console while SeaBIOS runs."""
    d = _real_driver(real)
    spec = _real_spec(real, "quiet")
    doc = DomainXml(build_domain_xml(spec, [], "qemu"))
    doc.root.find("os").remove(doc.root.find("os/bios"))
    real.conn.defineXML(str(doc))
    assert one(d.power([spec], "on")).message == "on"
    cons = d.console(spec, open_stream=True)
    try:
        loud = _real_spec(real, "loud")
        assert one(d.create([loud])).ok and one(d.power([loud], "on")).ok
        other = d.console(loud, open_stream=True)
        try:
            assert b"SeaBIOS" in _read_until(other.stream, [b"Booting from"])
        finally:
            other.stream.close()
        # by the time the loud twin has printed its boot lines, this one printed nothing
        assert cons.stream.read(0.5) == b""
    finally:
        cons.stream.close()


@pytest.mark.libvirtd
@pytest.mark.slow
def test_vitals_of_running_guests(real, l2_bridge):
    """rvitals on real guests: CPU %, memory (MiB), disk and network rates (bytes/s); the
    PXE-booting guest transmits (DHCP), so its tx rate is above zero."""
    d = _real_driver(real)
    pxe = _real_spec(real, "vpxe", bootorder=["network"],
                     nics=[NicSpec(network=l2_bridge, mac="52:54:00:7e:57:11")])
    plain = _real_spec(real, "vhd")
    assert all(r.ok for r in d.create([pxe, plain]))
    assert [r.message for r in d.power([pxe, plain], "on")] == ["on", "on"]
    res = list(d.vitals([pxe, plain], 3.0))
    assert all(r.ok for r in res), [r.message for r in res]
    mp, mh = (r.facts.metrics for r in res)
    for m in (mp, mh):
        assert m.interval_s >= 3.0
        assert m.cpu_pct is not None and m.cpu_pct >= 0
        assert m.cpus == 1 and m.mem_avail_mib == 96
        assert m.mem_used_mib is not None and 0 < m.mem_used_mib
        assert m.disk_read_bps is not None and m.disk_write_bps is not None  # the cdrom
    assert mp.net_tx_bps > 0 and mp.net_rx_bps is not None
    assert (mh.net_rx_bps, mh.net_tx_bps) == (None, None)  # no NIC: not given


@pytest.mark.libvirtd
@pytest.mark.slow
def test_remote_display_parameters(real):
    """console(display=True), for getrvidparms: the running guest's VNC port, where a real
    VNC server answers with its RFB banner; no graphics → Unsupported; off → InvalidState."""
    import socket

    d = _real_driver(real)
    vnc = _real_spec(real, "vnc", extra={"vidproto": "vnc"})
    bare = _real_spec(real, "bare")
    assert all(r.ok for r in d.create([vnc, bare]))
    with pytest.raises(Exception) as exc:
        d.console(vnc, display=True)
    assert type(exc.value).__name__ == "InvalidState"
    assert [r.message for r in d.power([vnc, bare], "on")] == ["on", "on"]
    cons = d.console(vnc, display=True)
    assert (cons.kind, cons.host) == ("vnc", "127.0.0.1") and cons.port >= 5900
    assert cons.command == f"virt-viewer -c {real.uri} {vnc.node}"
    with socket.create_connection((cons.host, cons.port), timeout=10) as sock:
        assert sock.recv(12).startswith(b"RFB ")
    with pytest.raises(Exception) as exc:
        d.console(bare, display=True)
    assert type(exc.value).__name__ == "Unsupported"
    assert str(exc.value).startswith(f"{bare.node} has no VNC or SPICE display")


@pytest.mark.libvirtd
@pytest.mark.slow
def test_lost_connection_fails_every_node(real):
    """The new methods share the base loop: a connection that dies under the driver is
    Unreachable (every node not yet reported fails with that one line), never a
    per-node libvirt message."""
    from nodemgr.plugins.base import Unreachable

    d = _real_driver(real)
    specs = [_real_spec(real, "u1"), _real_spec(real, "u2")]
    for call in (lambda: d.inventory(specs), lambda: d.vitals(specs, 0.1),
                 lambda: d.set_boot(specs, "net")):
        d._conn.close()  # the connection dies under the driver
        with pytest.raises(Unreachable, match="^Cannot communicate via libvirt to localhost"):
            list(call())
        d.close()
        d.connect()
    with pytest.raises(Unreachable):
        d._conn.close()
        d.scan()
