"""Fidelity of the VBoxManage double (tests/fixtures/vbox/VBoxManage), run on a real sshd
and reached over nodemgr.sshpool as the driver will: its outputs parse with the same parser
as the real recorded samples, showvminfo prints the keys of the recorded 7.0 sample, and its
error texts have the recorded ones' shape (names and line numbers aside)."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from nodemgr import sshpool
from nodemgr.plugins.vbox import parse as p
from tests.fixtures.sshd import sshd_factory  # noqa: F401 - the fixture
from tests.fixtures.vbox.host import make_ova, vbox_host, vbox_run

pytestmark = pytest.mark.slow
SAMPLES = Path(__file__).parents[1] / "fixtures" / "vbox" / "samples"
_SERIAL = itertools.count(1)


def shape(text: str) -> list[str]:
    """The first two lines (error + Details) with quoted names, braces and numbers blanked."""
    lines = text.strip().splitlines()[:2]
    return [re.sub(r"\d+", "N", re.sub(r"\{[^}]*\}|'[^']*'", "X", ln)) for ln in lines]


def ok(h, *args) -> sshpool.Result:
    r = vbox_run(h, *args)
    assert r.rc == 0, (args, r.err)
    return r


@pytest.fixture(scope="module")
def host(sshd_factory):  # noqa: F811
    h = vbox_host(sshd_factory)
    yield h
    sshpool.close_all()


@pytest.fixture
def vm(host):
    """A VM laid out like the recorded 7.0 sample: IDE (empty DVD at 1-0), SATA disk, NAT."""
    name = f"vm{next(_SERIAL)}"
    out = ok(host, "createvm", "--name", name, "--ostype", "ArchLinux_64", "--register").out
    assert p.parse_createvm(out)[0] == name
    ok(host, "modifyvm", name, "--memory", "4096", "--cpus", "4", "--nic1", "nat",
       "--boot1", "dvd", "--boot2", "disk", "--boot3", "none", "--boot4", "none")
    ok(host, "storagectl", name, "--name", "IDE", "--add", "ide")
    ok(host, "storagectl", name, "--name", "SATA", "--add", "sata", "--portcount", "1")
    disk = str(host.images / f"{name}.vdi")
    assert re.fullmatch(r"Medium created\. UUID: [0-9a-f-]{36}\n",
                        ok(host, "createmedium", "disk", "--filename", disk, "--size", "8").out)
    ok(host, "storageattach", name, "--storagectl", "IDE", "--port", "1", "--device", "0",
       "--type", "dvddrive", "--medium", "emptydrive")
    ok(host, "storageattach", name, "--storagectl", "SATA", "--port", "0", "--device", "0",
       "--type", "hdd", "--medium", disk)
    return name


def test_createvm_matches_the_recorded_lines(host, vm):
    recorded = (SAMPLES / "createvm-6.1.txt").read_text().splitlines()
    r = ok(host, "createvm", "--name", vm + "b", "--register")
    assert [re.sub(r"'.*'|[0-9a-f-]{36}", "X", x) for x in r.out.splitlines()] == [
        re.sub(r"'.*'|[0-9a-f-]{36}", "X", x) for x in recorded]


def test_showvminfo_has_the_recorded_7_0_keys(host, vm):
    recorded = p.parse_machinereadable((SAMPLES / "showvminfo-7.0-vedv.txt").read_text())
    text = ok(host, "showvminfo", vm, "--machinereadable").out
    mine = p.parse_machinereadable(text)
    assert set(mine) == set(recorded)
    assert list(mine) == list(recorded)  # and in the same order
    nonkv = [ln for ln in text.splitlines() if "=" not in ln]
    assert nonkv == ["Encryption:     disabled", " rec_screen0"]  # the 7.0 quirks too
    info = p.vm_info(text)
    assert (info.name, info.memory_mib, info.cpus, info.state, info.boot) == (
        vm, 4096, 4, "poweroff", ["dvd", "disk"])
    assert [(d.controller, d.port, d.device, d.dvd) for d in info.disks] == [
        ("IDE", 1, 0, True), ("SATA", 0, 0, False)]
    assert info.nics[0].kind == "nat" and info.nics[0].mac.startswith("08:00:27:")


def test_bridged_nic_mac_boot_net_and_power_cycle(host, vm):
    ok(host, "modifyvm", vm, "--nic1", "bridged", "--bridgeadapter1", "eth0",
       "--macaddress1", "080027AABBCC", "--nic2", "hostonly", "--hostonlyadapter2", "vboxnet0",
       "--boot1", "net")
    info = p.vm_info(ok(host, "showvminfo", vm, "--machinereadable").out)
    assert [(n.slot, n.kind, n.network) for n in info.nics] == [(1, "bridged", "eth0"),
                                                                (2, "hostonly", "vboxnet0")]
    assert info.nics[0].mac == "08:00:27:aa:bb:cc" and info.boot[0] == "net"
    out = ok(host, "startvm", vm, "--type", "headless").out
    assert p.started(out)
    assert out.splitlines() == [x.replace("AlmaLinux9", vm) for x in
                                (SAMPLES / "startvm-headless.txt").read_text().splitlines()]
    names = [n for n, _ in p.parse_list_vms(ok(host, "list", "runningvms").out)]
    assert vm in names
    states = []
    for action in ("pause", "resume", "reset", "savestate"):
        ok(host, "controlvm", vm, action)
        states.append(p.power_state(p.vm_info(ok(host, "showvminfo", vm,
                                                 "--machinereadable").out).state))
    assert states == ["suspended", "on", "on", "suspended"]
    ok(host, "startvm", vm, "--type", "headless")
    r = ok(host, "controlvm", vm, "poweroff")
    assert r.err.strip() == (SAMPLES / "controlvm-poweroff.txt").read_text().strip()
    assert vm not in [n for n, _ in p.parse_list_vms(ok(host, "list", "runningvms").out)]


def test_error_texts_have_the_recorded_shape(host, vm):
    def same(args, sample, kind):
        r = vbox_run(host, *args)
        assert r.rc == 1, r
        assert shape(r.err) == shape((SAMPLES / sample).read_text())
        assert p.classify_error(r.rc, r.err).kind is kind

    same(["unregistervm", "nosuch", "--delete"], "error-not-found-unregistervm-7.x.txt",
         p.ErrorKind.NOT_FOUND)
    same(["showvminfo", "nosuch", "--machinereadable"], "error-not-found-showvminfo-5.1.txt",
         p.ErrorKind.NOT_FOUND)
    same(["createvm", "--name", vm, "--register"], "error-exists-createvm-6.1.txt",
         p.ErrorKind.EXISTS)
    ok(host, "--lock", vm)
    same(["storagectl", vm, "--name", "X", "--add", "scsi"], "error-locked-lockmachine-5.1.txt",
         p.ErrorKind.LOCKED)
    same(["startvm", vm, "--type", "headless"], "error-locked-launchvmprocess-6.1.txt",
         p.ErrorKind.LOCKED)
    ok(host, "--unlock", vm)
    ok(host, "modifyvm", vm, "--nic1", "hostonly", "--hostonlyadapter1", "vboxnet9")
    r = vbox_run(host, "startvm", vm, "--type", "headless")
    recorded = (SAMPLES / "startvm-nonexistent-hostif-5.2.txt").read_text()
    assert r.rc == 1 and r.out.startswith("Waiting for VM ")
    assert shape(r.err) == shape("\n".join(recorded.splitlines()[1:]))
    e = p.classify_error(r.rc, r.err)
    assert e.kind is p.ErrorKind.HOSTIF and "'vboxnet9'" in e.message
    assert p.power_state(p.vm_info(ok(host, "showvminfo", vm, "--machinereadable").out)
                         .state) == "off"


def test_missing_vboxmanage(sshd_factory):  # noqa: F811
    bare = vbox_host(sshd_factory, install=False)
    r = vbox_run(bare, "list", "vms")
    assert (r.rc, r.err) == (127, (SAMPLES / "missing-vboxmanage-dash.txt").read_text())
    assert p.classify_error(r.rc, r.err).kind is p.ErrorKind.MISSING


def test_metrics_and_guest_properties(host, vm):
    assert p.parse_guestproperty_get(ok(host, "guestproperty", "get", vm,
                                        "/VirtualBox/GuestInfo/Net/0/V4/IP").out) is None
    ok(host, "startvm", vm, "--type", "headless")
    ok(host, "metrics", "setup", "--period", "1", "--samples", "1", vm,
       "CPU/Load/User,RAM/Usage/Used")
    out = ok(host, "metrics", "query", vm, "CPU/Load/User,RAM/Usage/Used").out
    assert out.splitlines()[:2] == [  # VBoxManageMetrics.cpp 7.x header, byte for byte
        "Object          Metric                                   Values",
        "--------------- ---------------------------------------- "
        "--------------------------------------------"]
    rows = {r.name: r for r in p.parse_metrics_query(out)}
    assert rows["RAM/Usage/Used"].values == (4096 * 1024.0,) and rows["RAM/Usage/Used"].unit == "kB"
    assert rows["CPU/Load/User:avg"].unit == "%"
    # Guest Additions absent: no value; present: the guest's addresses
    assert p.parse_guestproperty_get(ok(host, "guestproperty", "get", vm,
                                        "/VirtualBox/GuestInfo/Net/0/V4/IP").out) is None
    ok(host, "--guest", vm, "10.0.0.5,192.168.56.7")
    assert ok(host, "guestproperty", "get", vm, "/VirtualBox/GuestInfo/Net/0/V4/IP").out == (
        "Value: 10.0.0.5\n")
    props = p.parse_guestproperty_enumerate(ok(host, "guestproperty", "enumerate", vm,
                                               "--patterns", "/VirtualBox/GuestInfo/Net/*").out)
    assert p.guest_ipv4(props) == {0: "10.0.0.5", 1: "192.168.56.7"}
    guest = {r.name: r for r in p.parse_metrics_query(
        ok(host, "metrics", "query", vm).out)}
    assert guest["CPU/Load/User"].values == (2.0,)
    ok(host, "controlvm", vm, "poweroff")
    assert p.parse_guestproperty_get(ok(host, "guestproperty", "get", vm,
                                        "/VirtualBox/GuestInfo/Net/0/V4/IP").out) is None
    r = vbox_run(host, "metrics", "query", "nosuch")
    assert (r.rc, r.err.strip()) == (1, "VBoxManage: error: Invalid machine name: 'nosuch'")


def test_import_clone_and_purge(host, vm):
    ova = make_ova(host.images / "tmpl.ova", "tmpl", memory_mib=768, cpus=2)
    out = ok(host, "import", str(ova), "--vsys", "0", "--vmname", "gold").out
    assert p.parse_import(out) == "gold"
    info = p.vm_info(ok(host, "showvminfo", "gold", "--machinereadable").out)
    assert (info.memory_mib, info.cpus, len(info.disks)) == (768, 2, 1)
    r = vbox_run(host, "import", str(ova), "--vsys", "0", "--vmname", "gold")
    assert r.rc == 1 and p.classify_error(r.rc, r.err).kind is p.ErrorKind.EXISTS
    snap = ok(host, "snapshot", "gold", "take", "base").out
    assert re.fullmatch(r"Snapshot taken\. UUID: [0-9a-f-]{36}\n", snap)
    out = ok(host, "clonevm", "gold", "--snapshot", "base", "--options", "link", "--name",
             "thin1", "--register").out
    assert p.parse_clonevm(out) == "thin1"
    thin = p.vm_info(ok(host, "showvminfo", "thin1", "--machinereadable").out)
    assert thin.memory_mib == 768 and thin.nics[0].mac != info.nics[0].mac
    assert "/Snapshots/{" in thin.disks[0].path  # a differencing image, as VirtualBox names it
    r = vbox_run(host, "clonevm", "gold", "--snapshot", "nosnap", "--options", "link",
                 "--name", "thin2", "--register")
    assert r.rc == 1 and "Could not find a snapshot named 'nosnap'" in r.err
    vmdir = Path(thin.cfgfile).parent
    ok(host, "unregistervm", "thin1", "--delete")
    assert not vmdir.exists()
    assert "thin1" not in [n for n, _ in p.parse_list_vms(ok(host, "list", "vms").out)]
    ok(host, "startvm", vm, "--type", "headless")
    r = vbox_run(host, "unregistervm", vm, "--delete")
    assert r.rc == 1 and p.classify_error(r.rc, r.err).kind is p.ErrorKind.LOCKED
    ok(host, "controlvm", vm, "poweroff")
