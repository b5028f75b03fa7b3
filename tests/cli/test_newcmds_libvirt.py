"""rvitals, rinv, rsetboot, rscan, getcons, rcons and revacuate end to end on libvirt: the
tables, dispatch, the operations layer and the libvirt driver against the real system
libvirtd with QEMU (software emulation), and revacuate between two private libvirtd
instances (the ``mig_hosts`` fixture). Guests are OS-less: what they "do" is their
firmware (SeaBIOS, the iPXE NIC ROM on an isolated L2 bridge).
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET

import pytest

from nodemgr.cli import nodecmds, tablecmds, vmcmds
from tests.cli.test_newcmds import rows
from tests.cli.test_vmcmds_libvirt import site  # noqa: F401 - the fixture
from tests.plugins.conftest import mig_hosts  # noqa: F401 - the fixture

pytestmark = [pytest.mark.slow, pytest.mark.libvirtd]


def run(cmd, argv, capsys):
    rc = cmd(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_rvitals_and_rinv(site, capsys):  # noqa: F811
    a, b, _ = site["names"]
    assert run(vmcmds.mkvm, [a, "-s", "16M"], capsys)[0] == 0
    assert run(vmcmds.rpower, [a, "on"], capsys)[0] == 0
    rc, out, err = run(vmcmds.rvitals, [a, "--interval", "0.5"], capsys)
    assert rc == 0, err
    got = dict(line.split(": ", 2)[1:] for line in out.splitlines())
    assert re.fullmatch(r"[\d.]+ % over [\d.]+ s, 1 vCPU", got["CPU"]), got["CPU"]
    assert got["Memory"].endswith("MiB used of 128 MiB available")
    assert got["Disk"].startswith("read ") and "bytes/s" in got["Disk"]
    assert got["Network"].startswith("rx ") and "bytes/s" in got["Network"]
    # a VM that is off, and one that was never made: one line each, exit 1
    rc, out, err = run(vmcmds.rvitals, [f"{a},{b}"], capsys)
    assert rc == 1 and err == f"{b}: Error: Cannot find vm {b} on localhost\n"
    uuid = rows(site["url"], "vpd")[a]["uuid"]
    mac = rows(site["url"], "mac")[a]["mac"]
    rc, out, err = run(vmcmds.rinv, [a], capsys)
    assert rc == 0, err
    assert f"{a}: UUID: {uuid}\n" in out and f"{a}: CPUs: 1\n" in out
    assert f"{a}: Memory: 128 MiB\n" in out
    assert f"{a}: Disk vda: 16 MiB {site['dir']}/{a}.vda.qcow2 (qcow2)\n" in out
    assert f"{a}: NIC 1: {mac} " in out
    assert run(vmcmds.rpower, [a, "off"], capsys)[0] == 0
    rc, out, err = run(vmcmds.rvitals, [a], capsys)
    assert rc == 1 and err == f"{a}: Error: {a} is off: no vitals of a vm that is not running\n"


def test_rsetboot_changes_the_definition_and_the_stored_copy(site, capsys):  # noqa: F811
    a = site["names"][0]
    assert run(vmcmds.mkvm, [a, "-s", "16M"], capsys)[0] == 0  # vm.bootorder=hd
    conn = site["conn"]

    def order() -> list[str]:
        import libvirt

        xml = conn.lookupByName(a).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        return [b.get("dev") for b in ET.fromstring(xml).findall("os/boot")]

    def stored() -> list[str]:
        xml = rows(site["url"], "kvm_nodedata")[a]["xml"]
        return [b.get("dev") for b in ET.fromstring(xml).findall("os/boot")]

    assert order() == ["hd"]
    assert run(vmcmds.rsetboot, [a, "net"], capsys) == (0, f"{a}: Network\n", "")
    assert order() == stored() == ["network", "hd"]
    assert run(vmcmds.rsetboot, [a, "cd"], capsys)[1] == f"{a}: CD/DVD\n"
    assert order() == ["cdrom", "network", "hd"]
    assert run(vmcmds.rsetboot, [a, "default"], capsys)[1] == f"{a}: default (hd)\n"
    assert order() == stored() == ["hd"]
    rc, out, err = run(vmcmds.rsetboot, [a, "usb"], capsys)
    assert (rc, out) == (1, "") and len(err.splitlines()) == 1 and "usb" in err
    assert order() == ["hd"]
    # the next start boots from the network first
    assert run(vmcmds.rsetboot, [a, "net"], capsys)[0] == 0
    assert run(vmcmds.rpower, [a, "on"], capsys)[0] == 0
    live = ET.fromstring(conn.lookupByName(a).XMLDesc(0))
    assert [b.get("dev") for b in live.findall("os/boot")] == ["network", "hd"]


def test_rscan_writes_a_domain_made_behind_nodemgrs_back(site, capsys):  # noqa: F811
    a, b, _ = site["names"]
    assert run(vmcmds.mkvm, [a, "-s", "16M"], capsys)[0] == 0
    stray = f"{site['tag']}-stray"
    conn = site["conn"]
    conn.defineXML(f"""<domain type='qemu'><name>{stray}</name>
      <uuid>7a7a7a7a-0000-4000-8000-00000000007a</uuid><memory unit='MiB'>80</memory>
      <vcpu>2</vcpu><os><type>hvm</type></os><devices>
      <interface type='bridge'><mac address='52:54:00:7a:7a:01'/>
      <source bridge='{_bridge_of(conn, a)}'/></interface></devices></domain>""")
    before = rows(site["url"], "vm")[a]
    rc, out, err = run(vmcmds.rscan, ["localhost"], capsys)
    assert rc == 0, err
    assert stray in out and a in out
    assert stray not in rows(site["url"], "nodelist")  # listing writes nothing
    rc, out, err = run(vmcmds.rscan, ["localhost", "-w"], capsys)
    assert rc == 0, err
    assert rows(site["url"], "vm")[stray]["host"] == "localhost"
    assert rows(site["url"], "vpd")[stray]["uuid"] == "7a7a7a7a-0000-4000-8000-00000000007a"
    assert rows(site["url"], "mac")[stray]["mac"] == "52:54:00:7a:7a:01"
    assert rows(site["url"], "vm")[stray]["cpus"] == "2"
    assert rows(site["url"], "vm")[stray]["memory"] == "80"
    assert rows(site["url"], "vm")[a] == before  # a known node is left alone
    assert b not in out  # never made: not on the host


def add_hosts(hosts, ports) -> None:
    """Hypervisor nodes (group ``hypervisor``, type qemu, driver kvm) for the private
    libvirtd instances *hosts*, reached over TCP, migration streams on *ports*."""
    for h, port in zip(hosts, ports, strict=True):
        assert nodecmds.nodeadd([h.name, "groups=hypervisor,all", "hypervisor.type=qemu",
                                 "nodehm.mgt=kvm"]) == 0
        assert tablecmds.chtab([f"node={h.name}", f"hostconn.uri={h.tcp_uri}",
                                f"hostconn.options=migrate_uri=tcp://127.0.0.1:{port};"
                                "listen_address=127.0.0.1"]) == 0


def _bridge_of(conn, name: str) -> str:
    xml = ET.fromstring(conn.lookupByName(name).XMLDesc(0))
    return xml.find("devices/interface/source").get("bridge")


def test_getcons_and_rcons_show_the_firmware(site, capsys, monkeypatch):  # noqa: F811
    a = site["names"][0]
    assert nodecmds.nodech([a, "vm.bootorder=net"]) == 0
    assert run(vmcmds.mkvm, [a, "-s", "16M"], capsys)[0] == 0
    rc, out, err = run(vmcmds.getcons, [a], capsys)
    assert rc == 0, err
    assert out == (f"{a}: method: serial\n{a}: server: localhost\n"
                   f"{a}: command: virsh -c qemu:///system console {a}\n")
    rc, out, err = run(vmcmds.rcons, [a, "--timeout", "1"], capsys)  # off: one line
    assert (rc, out) == (1, "") and len(err.splitlines()) == 1 and "is off" in err, err
    assert run(vmcmds.rpower, [a, "on"], capsys)[0] == 0
    got = io.BytesIO()

    class Stdout:
        buffer = got

    monkeypatch.setattr("sys.stdout", Stdout)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    # iPXE tries DHCP on the isolated bridge for several seconds, printing as it goes;
    # rcons leaves after 3 s without output
    assert vmcmds.rcons([a, "--timeout", "3"]) == 0
    assert b"iPXE" in got.getvalue(), got.getvalue()[-400:]


def test_revacuate_moves_running_vms_to_migrationdest(cli_env, mig_hosts, capsys):  # noqa: F811
    a, b = mig_hosts
    add_hosts(mig_hosts, (49491, 49492))
    assert nodecmds.nodeadd(["nmtest-ev1,nmtest-ev2", "groups=all", "nodehm.mgt=kvm",
                             f"vm.host={a.name}", "vm.migrationdest=hypervisor",
                             "vm.memory=64", "vm.bootorder=hd"]) == 0
    assert run(vmcmds.mkvm, ["nmtest-ev1,nmtest-ev2"], capsys)[0] == 0
    assert run(vmcmds.rpower, ["nmtest-ev1", "on"], capsys)[0] == 0  # ev2 stays off, stays
    rc, out, err = run(vmcmds.revacuate, [a.name], capsys)
    assert rc == 0, err
    assert f"nmtest-ev1: migrated to {b.name}" in out
    assert out.endswith(f"{a.name}: no running VM\n"), out
    hosts = {n: r["host"] for n, r in rows(cli_env, "vm").items()}
    assert (hosts["nmtest-ev1"], hosts["nmtest-ev2"]) == (b.name, a.name)
    assert run(vmcmds.rpower, ["nmtest-ev1", "stat"], capsys)[1] == "nmtest-ev1: on\n"
    assert run(vmcmds.rmvm, ["nmtest-ev1,nmtest-ev2", "-f"], capsys)[0] == 0
