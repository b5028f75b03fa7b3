"""The VM commands against the real libvirtd with QEMU: the quick start's path, in a test.

Marked slow: it starts real (OS-less) QEMU guests. Tables are a fresh SQLite file; disks go
to a private directory pool; every domain, volume and pool is removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from nodemgr.cli import nodecmds, tablecmds, vmcmds
from nodemgr.tables.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.libvirtd]
REQUIRE_ALL = os.environ.get("NODEMGR_REQUIRE_ALL") == "1"


@pytest.fixture
def site(cli_env):
    libvirt = pytest.importorskip("libvirt")
    try:
        conn = libvirt.open("qemu:///system")
    except libvirt.libvirtError as exc:
        if REQUIRE_ALL:
            raise
        pytest.skip(f"libvirtd not reachable: {exc}")
    tag = "nmtest-" + uuid.uuid4().hex[:6]
    pooldir = Path(f"/var/lib/nodemgr/{tag}")
    pooldir.mkdir(parents=True)
    os.chmod(pooldir, 0o755)
    names = [f"{tag}-a", f"{tag}-b", f"{tag}-c"]
    bridge = "nmt" + tag[-6:]  # isolated L2 bridge: no address, no uplink, IPv6 off
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    subprocess.run(["sysctl", "-qw", f"net.ipv6.conf.{bridge}.disable_ipv6=1"], check=True)
    subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
    assert nodecmds.nodeadd(["localhost", "groups=hypervisor,all", "hypervisor.type=qemu",
                             "nodehm.mgt=kvm"]) == 0
    assert nodecmds.nodeadd([",".join(names), f"groups={tag},all", "nodehm.mgt=kvm",
                             "vm.host=localhost", "vm.memory=128", "vm.cpus=1",
                             f"vm.storage=dir://{pooldir}", "vm.bootorder=hd",
                             f"vm.nics={bridge}"]) == 0
    yield {"tag": tag, "names": names, "dir": pooldir, "url": cli_env, "conn": conn}
    for dom in conn.listAllDomains():
        if dom.name().startswith(tag) or dom.name() == f"{tag}-gold":
            if dom.isActive():
                dom.destroy()
            dom.undefineFlags(0)
    for pool in conn.listAllStoragePools():
        if pool.name().startswith("dir_") and tag in pool.name():
            if pool.isActive():
                pool.destroy()
            pool.undefine()
    conn.close()
    subprocess.run(["ip", "link", "del", bridge], check=False)
    shutil.rmtree(pooldir, ignore_errors=True)


def test_vm_lifecycle_on_real_libvirtd(site, capsys):
    a, b, c = site["names"]
    tag = site["tag"]
    assert vmcmds.mkvm([f"{a},{b}", "-s", "64M"]) == 0, capsys.readouterr().err
    assert (site["dir"] / f"{a}.vda.qcow2").exists()
    mac = {r["node"]: r["mac"] for r in Store(site["url"]).select("mac")}
    assert mac[a].startswith("52:54:00:") and mac[a] != mac[b]
    uuid_a = {r["node"]: r["uuid"] for r in Store(site["url"]).select("vpd")}[a]
    assert site["conn"].lookupByName(a).UUIDString() == uuid_a

    capsys.readouterr()
    assert vmcmds.rpower([tag, "on"]) == 1  # c was never created
    out, err = capsys.readouterr()
    assert out == f"{a}: on\n{b}: on\n"
    assert err == f"{c}: Error: Cannot find vm {c} on localhost\n"
    assert vmcmds.rpower([f"{a},{b}", "stat"]) == 0
    assert capsys.readouterr().out == f"{a}: on\n{b}: on\n"

    assert vmcmds.lsvm(["localhost"]) == 0
    listing = capsys.readouterr().out
    assert f"localhost: {a}: on\n" in listing and f"localhost: {b}: on\n" in listing

    assert vmcmds.rmvm([a]) == 1
    assert "Cannot rmvm active guest" in capsys.readouterr().err

    assert vmcmds.rpower([f"{a},{b}", "off"]) == 0
    assert capsys.readouterr().out == f"{a}: off\n{b}: off\n"
    assert vmcmds.chvm([b, "-a", "32M", "--cpus", "2"]) == 0, capsys.readouterr().err
    assert (site["dir"] / f"{b}.vdb.qcow2").exists()
    assert site["conn"].lookupByName(b).info()[3] == 2
    assert {r["node"]: r["cpus"] for r in Store(site["url"]).select("vm")}[b] == "2"

    assert vmcmds.clonevm([a, "-t", f"{tag}-gold"]) == 0, capsys.readouterr().err
    assert (site["dir"] / f"{tag}-gold.vda.qcow2").exists()
    assert vmcmds.clonevm([c, "-b", f"{tag}-gold"]) == 0, capsys.readouterr().err
    assert vmcmds.rpower([c, "on"]) == 0
    assert capsys.readouterr().out.endswith(f"{c}: on\n")

    assert vmcmds.rmvm([f"{b},{c}", "-f", "-p"]) == 0, capsys.readouterr().err
    assert not (site["dir"] / f"{b}.vda.qcow2").exists()
    assert not (site["dir"] / f"{b}.vdb.qcow2").exists()
    names = {d.name() for d in site["conn"].listAllDomains()}
    assert b not in names and c not in names and a in names
    kvm = {r["node"] for r in Store(site["url"]).select("kvm_nodedata")}
    assert a in kvm and b not in kvm


def test_unreachable_hypervisor_fails_fast_others_proceed(site, capsys):
    a, b, _ = site["names"]
    # a hypervisor whose libvirt socket does not exist: its node fails, the other proceeds
    assert tablecmds.chtab(["node=deadhv", "hostconn.uri=qemu+unix:///system?socket=/nonexistent/sock"]) == 0
    assert nodecmds.nodeadd(["deadhv", "groups=hypervisor,all", "hypervisor.type=qemu"]) == 0
    assert nodecmds.nodech([b, "vm.host=deadhv"]) == 0
    assert vmcmds.mkvm([f"{a},{b}", "-s", "64M"]) == 1
    out, err = capsys.readouterr()
    assert err.startswith(f"{b}: Error: Cannot communicate via libvirt to deadhv")
    assert site["conn"].lookupByName(a)
    assert b not in {r["node"] for r in Store(site["url"]).select("mac")}


def _disks(conn, name):
    import xml.etree.ElementTree as ET

    doc = ET.fromstring(conn.lookupByName(name).XMLDesc(0))
    return [(d.get("device"), d.find("target").get("dev"),
             d.find("source").get("file") if d.find("source") is not None else None)
            for d in doc.iter("disk")]


def test_mkvm_force_bootparams_on_an_existing_vm_attaches_the_config_disk(site, capsys):
    """mkvm -f --bootparams without -s on a defined VM: its stored definition is kept (the
    disk stays) and the cloud-init config disk is attached as its cdrom."""
    from nodemgr.bootparams import parse_conf, read_cidata_iso

    a = site["names"][0]
    assert vmcmds.mkvm([a, "-s", "64M"]) == 0, capsys.readouterr().err
    vda = str(site["dir"] / f"{a}.vda.qcow2")
    assert _disks(site["conn"], a) == [("disk", "vda", vda), ("cdrom", "hdc", None)]
    assert vmcmds.mkvm([a, "-f", "--bootparams", "ip=192.0.2.5/24", "role=db"]) == 0, \
        capsys.readouterr().err
    iso = site["dir"] / f"{a}.cidata.iso"
    assert _disks(site["conn"], a) == [("disk", "vda", vda), ("cdrom", "hdc", str(iso))]
    assert parse_conf(read_cidata_iso(str(iso))[1]["bootparams.conf"]) == {
        "ip": "192.0.2.5/24", "role": "db"}
    stored = {r["node"]: r["xml"] for r in Store(site["url"]).select("kvm_nodedata")}[a]
    assert str(iso) in stored and vda in stored
    # again: the config disk is replaced in place, not added twice
    assert vmcmds.mkvm([a, "-f", "--bootparams", "ip=dhcp"]) == 0, capsys.readouterr().err
    assert _disks(site["conn"], a) == [("disk", "vda", vda), ("cdrom", "hdc", str(iso))]
    assert parse_conf(read_cidata_iso(str(iso))[1]["bootparams.conf"]) == {"ip": "dhcp"}


def test_clonevm_b_takes_cpus_and_memory_from_the_vm_table(site, capsys):
    """clonevm -b: a clone whose vm.cpus/vm.memory are set gets them, not the master's;
    one without them keeps the master's."""
    a, b, c = site["names"]
    tag = site["tag"]
    assert vmcmds.mkvm([a, "-s", "16M", "--cpus", "2", "--mem", "160"]) == 0, \
        capsys.readouterr().err
    assert vmcmds.clonevm([a, "-t", f"{tag}-gold", "-d"]) == 0, capsys.readouterr().err
    assert nodecmds.nodech([b, "vm.memory=192"]) == 0  # vm.cpus=1 from the fixture
    assert tablecmds.chtab([f"node={c}", "vm.cpus=", "vm.memory="]) == 0
    assert vmcmds.clonevm([f"{b},{c}", "-b", f"{tag}-gold"]) == 0, capsys.readouterr().err
    info = {n: site["conn"].lookupByName(n).info() for n in (b, c)}
    assert (info[b][3], info[b][1]) == (1, 192 * 1024)
    assert (info[c][3], info[c][1]) == (2, 160 * 1024)
    stored = {r["node"]: r["xml"] for r in Store(site["url"]).select("kvm_nodedata")}
    assert "<vcpu>1</vcpu>" in stored[b].replace(" placement='static'", "")


def test_chvm_d_detaches_without_purging(site, capsys):
    """chvm -d (xCAT): the disk leaves the definition, its volume stays; -p purges."""
    a = site["names"][0]
    assert vmcmds.mkvm([a, "-s", "16M,16M,16M"]) == 0, capsys.readouterr().err
    vol = {d: site["dir"] / f"{a}.{d}.qcow2" for d in ("vda", "vdb", "vdd")}
    assert vmcmds.chvm([a, "-d", "vdb"]) == 0, capsys.readouterr().err
    assert [dev for kind, dev, _ in _disks(site["conn"], a) if kind == "disk"] == ["vda", "vdd"]
    assert vol["vdb"].exists()
    stored = {r["node"]: r["xml"] for r in Store(site["url"]).select("kvm_nodedata")}[a]
    assert str(vol["vdb"]) not in stored and str(vol["vdd"]) in stored
    assert vmcmds.chvm([a, "-p", "vdd"]) == 0, capsys.readouterr().err
    assert not vol["vdd"].exists() and vol["vdb"].exists()
    capsys.readouterr()
    assert vmcmds.chvm([a, "-d", "vdz"]) == 1
    assert capsys.readouterr().err == f"{a}: Error: Disk vdz does not exist\n"
    assert vmcmds.chvm([a, "-d", "vda", "-a", "1G"]) == 1
    assert "-a and -d cannot be used together" in capsys.readouterr().err


def test_rpower_of_hypervisor_hosts_reports_the_host(site, capsys):
    """rpower <pool> stat: a host is not a VM. Each pool machine (hypervisor.type, no
    vm.host) is asked through its hypervisor connection: "on" when it answers, its one
    connection error otherwise; power actions on a host are refused per node."""
    from nodemgr.cli import poolcmds

    a = site["names"][0]
    assert poolcmds.mkpool(["cloud", "--virttype", "qemu"]) == 0
    assert poolcmds.poolmachine(["cloud", "local", "--local"]) == 0
    assert poolcmds.poolmachine(["cloud", "dead", "--local"]) == 0
    assert tablecmds.chtab(["node=dead",
                            "hostconn.uri=qemu+unix:///system?socket=/nonexistent/sock"]) == 0
    assert vmcmds.mkvm([a, "-s", "16M"]) == 0
    capsys.readouterr()
    assert vmcmds.rpower([f"cloud,localhost,{a}", "stat"]) == 1
    out, err = capsys.readouterr()
    assert sorted(out.splitlines()) == sorted([f"{a}: off", "local: on", "localhost: on"])
    assert err.startswith("dead: Error: Cannot communicate via libvirt to dead") and \
        err.count("\n") == 1, err
    assert vmcmds.rpower(["local", "off"]) == 1
    assert capsys.readouterr() == ("", "local: Error: local is a hypervisor host, not a VM "
                                       "(rpower stat only)\n")
