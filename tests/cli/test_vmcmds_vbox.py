"""Every VM command end to end on VirtualBox: the tables, the server-pool commands (the
seed's pool / machine / pool user / connection string), dispatch, the operations layer and
the vbox driver, through a real sshd to a host whose ``VBoxManage`` is the double
(tests/fixtures/vbox/VBoxManage). Bad input is one line per node and changes nothing."""

from __future__ import annotations

import pytest

from nodemgr import sshpool
from nodemgr.cli import nodecmds, poolcmds, tablecmds, vmcmds
from nodemgr.plugins.vbox import NO_MIGRATE, NO_SERIAL
from nodemgr.tables.store import Store
from tests.fixtures.sshd import sshd_factory  # noqa: F401 - the fixture
from tests.fixtures.vbox.host import registered, vbox_host, vbox_run
from tests.fixtures.vbox.host import vm_info as info

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def host(sshd_factory):  # noqa: F811
    h = vbox_host(sshd_factory)
    yield h
    sshpool.close_all()


def _wipe(h) -> None:
    import subprocess

    for d in (h.state, h.images):
        subprocess.run(["find", str(d), "-mindepth", "1", "-delete"], check=True)


@pytest.fixture
def vbox(cli_env, host, capsys):
    """Pool ``vbpool`` (virttype vbox) with machine ``vbhost`` (the management node
    itself: reached over SSH on 127.0.0.1) and pool user = the sshd's login user; VMs
    vb1, vb2 on it."""
    _wipe(host)
    tpl = f"vbox+ssh://#{{user.name}}@#{{target.host}}:{host.port}/"
    assert poolcmds.chvirttype(["vbox", "--connstring", tpl]) == 0
    assert poolcmds.mkpool(["vbpool", "--virttype", "vbox"]) == 0
    assert poolcmds.poolmachine(["vbpool", "vbhost", "--local"]) == 0
    assert poolcmds.pooluser(["vbpool", host.user]) == 0
    assert tablecmds.chtab(["key=sshknownhosts", f"site.value={host.known_hosts}"]) == 0
    assert tablecmds.chtab(["key=sshkey", f"site.value={host.client_key}"]) == 0
    assert tablecmds.chtab(["node=vbhost", "hostconn.options=retry=0.1,0.2"]) == 0
    assert nodecmds.nodeadd(["vb[1-2]", "groups=vbvms", "nodehm.mgt=vbox", "vm.host=vbhost",
                             f"vm.storage=dir://{host.images}", "vm.storageformat=vdi",
                             "vm.nics=vboxnet0", "vm.memory=256", "vm.cpus=2"]) == 0
    capsys.readouterr()
    return {"h": host, "url": cli_env}


def run(cmd, argv, capsys):
    rc = cmd(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def rows(url, name, key="node"):
    return {r[key]: r for r in Store(url).select(name)}


def test_mkvm_rpower_lsvm_rmvm(vbox, capsys):
    h, url = vbox["h"], vbox["url"]
    assert run(vmcmds.mkvm, ["vb[1-2]", "-s", "16M"], capsys) == (0, "", "")
    mac, vpd = rows(url, "mac")["vb1"]["mac"], rows(url, "vpd")["vb1"]["uuid"]
    i = info(h, "vb1")
    assert (i.raw["hardwareuuid"], i.nics[0].mac, i.memory_mib, i.cpus) == (vpd, mac, 256, 2)
    assert rows(url, "vm")["vb1"]["host"] == "vbhost"
    assert run(vmcmds.rpower, ["vb1", "on"], capsys) == (0, "vb1: on\n", "")
    assert rows(url, "nodelist")["vb1"]["status"] == "powering-on"
    assert run(vmcmds.rpower, ["vbvms", "stat"], capsys) == (0, "vb1: on\nvb2: off\n", "")
    assert run(vmcmds.rpower, ["vbhost", "stat"], capsys) == (0, "vbhost: on\n", "")
    assert run(vmcmds.rpower, ["vb1", "suspend"], capsys)[1] == "vb1: suspended\n"
    assert run(vmcmds.rpower, ["vb1", "resume"], capsys)[1] == "vb1: on\n"
    assert run(vmcmds.rpower, ["vb1", "reset"], capsys)[1] == "vb1: reset\n"
    rc, out, err = run(vmcmds.lsvm, ["vbhost"], capsys)
    assert (rc, out, err) == (0, "vbhost: vb1: on\nvbhost: vb2: off\n", "")
    rc, out, _ = run(vmcmds.lsvm, ["vbhost", "-a"], capsys)
    assert f"vbhost: vb1: uuid: {vpd}\n" in out and f"vbhost: vb1: macs: {mac}\n" in out
    rc, out, _ = run(vmcmds.lsvm, ["vb1"], capsys)
    assert rc == 0 and "vb1: State: on (running)\n" in out and "vb1: Host: vbhost\n" in out
    rc, out, err = run(vmcmds.rmvm, ["vb1"], capsys)
    assert (rc, out) == (1, "") and err == "vb1: Error: vb1 is running on vbhost (use -f to " \
                                           "stop it first)\n"
    assert "vb1" in registered(h)
    assert run(vmcmds.rmvm, ["vb[1-2]", "-f", "-p"], capsys) == (0, "", "")
    assert registered(h) == set() and not any(h.images.iterdir())
    assert "vb1" in rows(url, "nodelist")  # the node stays defined


def test_chvm(vbox, capsys):
    h, url = vbox["h"], vbox["url"]
    assert run(vmcmds.mkvm, ["vb1", "-s", "16M"], capsys)[0] == 0
    assert run(vmcmds.chvm, ["vb1", "--cpus", "4", "--mem", "512", "-a", "8M"],
               capsys) == (0, "", "")
    assert (rows(url, "vm")["vb1"]["cpus"], rows(url, "vm")["vb1"]["memory"]) == ("4", "512")
    i = info(h, "vb1")
    assert (i.cpus, i.memory_mib) == (4, 512)
    assert sorted(d.port for d in i.disks if not d.dvd) == [0, 1]
    assert run(vmcmds.chvm, ["vb1", "-p", "sdb"], capsys) == (0, "", "")
    assert [d.port for d in info(h, "vb1").disks if not d.dvd] == [0]
    iso = h.images / "tools.iso"
    iso.write_bytes(b"iso")
    assert run(vmcmds.rpower, ["vb1", "on"], capsys)[0] == 0
    assert run(vmcmds.chvm, ["vb1", "--cdrom", str(iso)], capsys) == (0, "", "")
    assert [d.path for d in info(h, "vb1").disks if d.dvd] == [str(iso)]
    rc, out, err = run(vmcmds.chvm, ["vb1", "--cpus", "1"], capsys)
    assert (rc, out) == (1, "") and err == ("vb1: Error: vb1 is running on vbhost: VirtualBox "
                                            "changes its memory, CPUs and disks only while it "
                                            "is off\n")
    assert rows(url, "vm")["vb1"]["cpus"] == "4" and info(h, "vb1").cpus == 4


def test_bad_input_one_line_nothing_changed(vbox, capsys, sshd_factory):  # noqa: F811
    h, url = vbox["h"], vbox["url"]
    assert run(vmcmds.mkvm, ["vb1"], capsys)[0] == 0
    before = (info(h, "vb1").raw, rows(url, "mac"), rows(url, "vpd"))
    # a name already registered
    rc, out, err = run(vmcmds.mkvm, ["vb1"], capsys)
    assert (rc, out) == (1, "") and err == ("vb1: Error: vb1 is already registered on vbhost "
                                            "(rmvm it first, or mkvm -f to replace it)\n")
    assert (info(h, "vb1").raw, rows(url, "mac"), rows(url, "vpd")) == before
    # an unknown host-only interface
    assert tablecmds.chtab(["node=vb2", "vm.nics=vboxnet9"]) == 0
    rc, out, err = run(vmcmds.mkvm, ["vb2", "-s", "8M"], capsys)
    assert (rc, err) == (1, "vb2: Error: host-only interface 'vboxnet9' does not exist on "
                            "vbhost (VBoxManage list hostonlyifs: vboxnet0)\n")
    assert "vb2" not in registered(h) and "vb2" not in rows(url, "vpd")
    # a locked session: retried, then one line
    vbox_run(h, "--lock", "vb1")
    rc, out, err = run(vmcmds.chvm, ["vb1", "--mem", "1024"], capsys)
    assert (rc, err) == (1, "vb1: Error: vb1 is locked by another VirtualBox session on "
                            "vbhost (VBOX_E_INVALID_OBJECT_STATE); try again when it is free\n")
    assert rows(url, "vm")["vb1"]["memory"] == "256" and info(h, "vb1").memory_mib == 256
    vbox_run(h, "--unlock", "vb1")
    # Guest Additions absent: rinv says where addresses could not come from
    assert run(vmcmds.rpower, ["vb1", "on"], capsys)[0] == 0
    rc, out, err = run(vmcmds.rinv, ["vb1", "ip"], capsys)
    assert (rc, err) == (0, "") and out.startswith("vb1: IP: none found")
    # VBoxManage missing on the host: every node of it, one line each
    bare = vbox_host(sshd_factory, install=False)
    assert tablecmds.chtab(["node=vbhost", f"hostconn.uri=vbox+ssh://{bare.user}@127.0.0.1:"
                                           f"{bare.port}/"]) == 0
    assert tablecmds.chtab(["key=sshknownhosts", f"site.value={bare.known_hosts}"]) == 0
    assert tablecmds.chtab(["key=sshkey", f"site.value={bare.client_key}"]) == 0
    rc, out, err = run(vmcmds.rpower, ["vb[1-2]", "stat"], capsys)
    line = f"VBoxManage is not installed on vbhost (not on the PATH of user {bare.user})"
    assert (rc, out, err) == (1, "", f"vb1: Error: {line}\nvb2: Error: {line}\n")


def test_rvitals_rinv_rscan(vbox, capsys):
    h, url = vbox["h"], vbox["url"]
    assert run(vmcmds.mkvm, ["vb[1-2]", "-s", "16M", "--bootparams", "ip=192.0.2.41/24"],
               capsys)[0] == 0
    assert run(vmcmds.rpower, ["vb1", "on"], capsys)[0] == 0
    rc, out, err = run(vmcmds.rvitals, ["vb1"], capsys)
    assert (rc, err) == (0, "")
    assert out.splitlines() == [
        "vb1: CPU: 12.0 % over 1 s, 2 vCPUs", "vb1: Memory: 256 MiB used of 256 MiB available",
        "vb1: Disk: not available from this node's hypervisor family",
        "vb1: Network: rx 0 bytes/s, tx 0 bytes/s"]
    rc, out, err = run(vmcmds.rvitals, ["vb2", "cpu"], capsys)
    assert (rc, out, err) == (1, "", "vb2: Error: vb2 is not running on vbhost\n")
    vbox_run(h, "--guest", "vb1", "10.0.0.5")
    rc, out, err = run(vmcmds.rinv, ["vb1"], capsys)
    assert (rc, err) == (0, "")
    mac = rows(url, "mac")["vb1"]["mac"]
    assert f"vb1: UUID: {rows(url, 'vpd')['vb1']['uuid']}\n" in out
    assert "vb1: CPUs: 2\n" in out and "vb1: Memory: 256 MiB\n" in out
    assert f"vb1: Disk sda: 16 MiB {h.images}/vb1/vb1.vda.vdi (vdi)\n" in out
    assert f"vb1: NIC 1: {mac} vboxnet0 (virtio)\n" in out
    assert f"vb1: IP: 192.0.2.41 (bootparams, {mac})\nvb1: IP: 10.0.0.5 (agent, {mac})\n" in out
    # rscan: a VM made by hand on the host is written with -w; known VMs are left alone
    vbox_run(h, "createvm", "--name", "stray1", "--register")
    vbox_run(h, "modifyvm", "stray1", "--memory", "384", "--cpus", "3", "--nic1", "bridged",
             "--bridgeadapter1", "eth0", "--macaddress1", "080027123456")
    rc, out, err = run(vmcmds.rscan, ["vbhost"], capsys)
    assert rc == 0, err
    assert any(x.split()[1:4] == ["vbox", "stray1", "vbhost"] for x in out.splitlines())
    before = rows(url, "vm")["vb1"]
    rc, out, err = run(vmcmds.rscan, ["vbhost", "-w"], capsys)
    assert (rc, err) == (0, "") and "stray1: defined from vbhost" in out
    vm = rows(url, "vm")["stray1"]
    assert (vm["host"], vm["memory"], vm["cpus"]) == ("vbhost", "384", "3")
    assert rows(url, "mac")["stray1"]["mac"] == "08:00:27:12:34:56"
    assert rows(url, "nodehm")["stray1"]["mgt"] == "vbox"
    assert rows(url, "vm")["vb1"] == before


def test_rsetboot_getcons_getrvidparms_rcons(vbox, capsys):
    h = vbox["h"]
    assert tablecmds.chtab(["node=vb1", "vm.vidproto=rdp"]) == 0
    assert run(vmcmds.mkvm, ["vb[1-2]"], capsys)[0] == 0
    assert info(h, "vb1").boot == ["net", "disk"]
    assert run(vmcmds.rsetboot, ["vb1", "hd"], capsys) == (0, "vb1: hd\n", "")
    assert info(h, "vb1").boot == ["disk", "net"]
    assert run(vmcmds.rsetboot, ["vb1", "default"], capsys)[0] == 0
    assert info(h, "vb1").boot == ["net", "disk"]
    rc, out, err = run(vmcmds.rsetboot, ["vb1", "floppy"], capsys)
    assert rc == 1 and len(err.splitlines()) == 1 and "floppy" in err
    assert info(h, "vb1").boot == ["net", "disk"]
    assert run(vmcmds.rpower, ["vb1", "on"], capsys)[0] == 0
    rc, out, err = run(vmcmds.getrvidparms, ["vb1"], capsys)
    assert (rc, err) == (0, "")
    assert out == ("vb1: method: rdp\nvb1: server: 127.0.0.1\nvb1: vidport: 5000\n"
                   "vb1: command: xfreerdp /v:127.0.0.1:5000\n")
    assert run(vmcmds.getcons, ["vb1"], capsys) == (0, out, "")
    rc, out, err = run(vmcmds.getrvidparms, ["vb2"], capsys)
    assert (rc, out) == (1, "") and err.startswith("vb2: Error: vb2 has no remote display: "
                                                   "VRDE is off")
    rc, out, err = run(vmcmds.rcons, ["vb1"], capsys)
    assert (rc, out) == (1, "") and err.strip().endswith(NO_SERIAL)
    assert len(err.splitlines()) == 1


def test_clonevm_and_rmigrate(vbox, capsys):
    h, url = vbox["h"], vbox["url"]
    assert nodecmds.nodeadd(["vb3", "groups=vbvms", "nodehm.mgt=vbox", "vm.host=vbhost",
                             "vm.nics=vboxnet0"]) == 0
    assert poolcmds.poolmachine(["vbpool", "vbhost2", "--local"]) == 0
    assert run(vmcmds.mkvm, ["vb1", "-s", "16M"], capsys)[0] == 0
    assert run(vmcmds.clonevm, ["vb1", "-t", "gold"], capsys)[0] == 0
    assert "gold" in rows(url, "vmmaster", "name") and "gold" in registered(h)
    assert run(vmcmds.clonevm, ["vb2", "-b", "gold"], capsys) == (0, "", "")
    assert run(vmcmds.clonevm, ["vb3", "-b", "gold", "-d"], capsys) == (0, "", "")
    vm = rows(url, "vm")
    assert (vm["vb2"]["master"], vm["vb3"]["master"]) == ("gold", None)
    assert vm["vb3"]["memory"] == "256" and vm["vb3"]["host"] == "vbhost"
    thin, full = info(h, "vb2"), info(h, "vb3")
    assert "/Snapshots/{" in next(d.path for d in thin.disks if not d.dvd)
    assert "/Snapshots/" not in next(d.path for d in full.disks if not d.dvd)
    assert thin.nics[0].mac == rows(url, "mac")["vb2"]["mac"]
    assert thin.raw["hardwareuuid"] == rows(url, "vpd")["vb2"]["uuid"]
    rc, out, err = run(vmcmds.clonevm, ["vb2", "-b", "nosuch"], capsys)
    assert rc == 1 and "no master named 'nosuch'" in err
    # rmigrate: refused with why, nothing moved
    assert run(vmcmds.rpower, ["vb1", "on"], capsys)[0] == 0
    rc, out, err = run(vmcmds.rmigrate, ["vb1", "vbhost2"], capsys)
    assert (rc, out, err) == (1, "", f"vb1: Error: {NO_MIGRATE}\n")
    assert rows(url, "vm")["vb1"]["host"] == "vbhost"
    assert info(h, "vb1").state == "running"


def test_revacuate_says_why_the_vms_stay(vbox, capsys):
    h = vbox["h"]
    assert poolcmds.poolmachine(["vbpool", "vbhost2", "--local"]) == 0
    assert tablecmds.chtab(["node=vb1", "vm.migrationdest=vbhost2"]) == 0
    assert run(vmcmds.mkvm, ["vb1"], capsys)[0] == 0
    assert run(vmcmds.rpower, ["vb1", "on"], capsys)[0] == 0
    rc, out, err = run(vmcmds.revacuate, ["vbhost"], capsys)
    assert rc == 1 and f"vb1: Error: {NO_MIGRATE}\n" in err
    assert f"vbhost: Error: still running: vb1 ({NO_MIGRATE})\n" in err
    assert info(h, "vb1").state == "running"


def test_mkvm_places_a_vm_without_host_by_free_memory(vbox, capsys):
    h, url = vbox["h"], vbox["url"]
    assert nodecmds.nodeadd(["vb9", "groups=vbvms", "nodehm.mgt=vbox", "vm.nics=vboxnet0",
                             "vm.migrationdest=vbpool", "vm.memory=128"]) == 0
    capsys.readouterr()
    assert run(vmcmds.mkvm, ["vb9"], capsys) == (0, "", "")
    assert rows(url, "vm")["vb9"]["host"] == "vbhost" and "vb9" in registered(h)
