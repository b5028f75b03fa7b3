"""Boot parameters reach a real libvirt guest: mkvm with ``spec.bootparams`` on the system
libvirtd uploads a cloud-init NoCloud ISO (label ``cidata``) into the VM's storage pool
and attaches it as the cdrom; after power-on the running QEMU has that image in its cdrom
drive (asked through the QEMU monitor), and reading it back gives the parameters, with
the network configuration that sets the guest's address."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET

import pytest

from nodemgr.bootparams import parse_conf, read_cidata_iso
from nodemgr.plugins.base import DiskSpec
from tests.plugins.test_libvirt import _real_driver, _real_spec, one


@pytest.mark.libvirtd
@pytest.mark.slow
def test_bootparams_reach_a_real_guest(real):
    d = _real_driver(real)
    params = {"ip": "192.0.2.10/24", "gateway": "192.0.2.1", "hostname": "web1", "role": "web"}
    spec = _real_spec(real, "bp", [DiskSpec(dev="vda", location=real.location, size_mib=16)],
                      bootparams=params, nics=[])
    r = one(d.create([spec]))
    assert r.ok, r.message
    iso = real.dir / f"{spec.node}.cidata.iso"
    assert iso.exists()
    r = one(d.power([spec], "on"))
    assert r.ok and r.message == "on", r.message
    dom = real.conn.lookupByName(spec.node)
    cds = [disk for disk in ET.fromstring(dom.XMLDesc(0)).iter("disk")
           if disk.get("device") == "cdrom"]
    assert [c.find("source").get("file") for c in cds] == [str(iso)]
    block = subprocess.run(["virsh", "-c", real.uri, "qemu-monitor-command", spec.node,
                            "--hmp", "info block"], capture_output=True, text=True,
                           check=True).stdout
    assert str(iso) in block  # the running QEMU has the config disk in a drive
    label, files = read_cidata_iso(str(iso))
    assert label == "cidata"
    assert parse_conf(files["bootparams.conf"]) == params
    assert b'address: "192.0.2.10/24"' in files["network-config"]
    assert b'local-hostname: "web1"' in files["meta-data"]
    # the guest has no OS to report an address: addresses falls back to the configured one
    got = one(d.addresses([spec]))
    assert got.data == {"addresses": ["192.0.2.10"], "source": "bootparams"}, got.data
    # mkvm -f replaces the config disk with the new parameters
    one(d.power([spec], "off"))
    spec.bootparams = {"ip": "dhcp"}
    r = one(d.create([spec], force=True))
    assert r.ok, r.message
    assert parse_conf(read_cidata_iso(str(iso))[1]["bootparams.conf"]) == {"ip": "dhcp"}
