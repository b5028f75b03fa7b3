"""The VirtualBox parsers read every real recorded VBoxManage output in
tests/fixtures/vbox/samples (provenance: tests/fixtures/vbox/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodemgr.plugins.vbox import parse as p

SAMPLES = Path(__file__).parents[1] / "fixtures" / "vbox" / "samples"


def read(name: str) -> str:
    return (SAMPLES / name).read_text()


def test_showvminfo_7_0():
    info = p.vm_info(read("showvminfo-7.0-vedv.txt"))
    assert (info.name, info.uuid, info.state) == (
        "manjaro-gnome-x64-full-clean", "19e117b3-06f4-4a1e-851d-47336ad6a142", "poweroff")
    assert (info.memory_mib, info.cpus, info.boot) == (4096, 4, ["dvd", "disk"])
    assert info.nics == [p.Nic(1, "nat", "08:00:27:44:d7:f6", None, "82540EM")]
    dvd, disk = info.disks
    assert (dvd.controller, dvd.port, dvd.device, dvd.path, dvd.dvd) == ("IDE", 1, 0, None, True)
    assert disk.path.endswith("manjaro-gnome-x64-full-clean-disk001.vdi") and not disk.dvd
    assert disk.uuid == "37a0bb6b-4292-464e-b766-1e8b7101ec94"
    raw = info.raw
    assert raw["description"] == "name1=value1\nname2=value2"  # a value over two lines
    assert raw["BIOS NVRAM File"].endswith(".nvram")            # a key with blanks
    assert "Encryption" not in raw and "rec_screen0" not in raw  # not key=value lines
    assert raw["GuestMemoryBalloon"] == "0"


def test_showvminfo_5_2_and_4_1():
    info = p.vm_info(read("showvminfo-5.2-ohai.txt"))
    assert (info.memory_mib, info.cpus, info.state, info.boot) == (1024, 1, "poweroff",
                                                                   ["disk", "dvd"])
    assert info.raw["vrdeproperty[TCP/Ports]"] == "5947"
    assert info.raw["CurrentSnapshotName"] == "base"
    assert [d.controller for d in info.disks] == ["SATA Controller"]
    old = p.vm_info(read("showvminfo-4.1-centos57.txt"))
    assert (old.memory_mib, old.boot) == (380, ["floppy", "dvd", "disk"])
    assert old.nics[0].model is None  # 4.1 printed no nictype
    assert [(d.controller, d.dvd) for d in old.disks] == [("IDE Controller", True),
                                                          ("SATA Controller", False)]


def test_showvminfo_fragment_with_quoted_keys():
    d = p.parse_machinereadable(read("showvminfo-fragment-docker-machine.txt"))
    assert d["SATA-0-0"] == "/home/ehazlett/.boot2docker/boot2docker.iso"
    assert d["SATA-IsEjected"] == "off" and d["memory"] == "1024"


def test_machinereadable_escapes_and_errors():
    text = ('name="a \\"b\\" c"\nCfgFile="C:\\\\VMs\\\\x.vbox"\nVMStateFile="C:\\VMs\\s.sav"\n'
            '"key=with=eq"="v"\n')
    d = p.parse_machinereadable(text)
    assert d["name"] == 'a "b" c' and d["CfgFile"] == "C:\\VMs\\x.vbox"
    assert d["VMStateFile"] == "C:\\VMs\\s.sav"  # pre-6.1: raw backslashes stay
    assert d["key=with=eq"] == "v"
    with pytest.raises(p.ParseError, match="unterminated value for 'description'"):
        p.parse_machinereadable('description="never closed\nmore')
    with pytest.raises(p.ParseError, match="is not a number"):
        p.vm_info("memory=lots\n")
    with pytest.raises(p.ParseError, match="not a VirtualBox MAC"):
        p.vm_info('nic1="nat"\nmacaddress1="xyz"\n')


def test_list_vms_and_runningvms():
    assert p.parse_list_vms(read("list-vms-6.1.txt")) == [
        ("centos_default_1646280262092_51162", "18748b24-afea-4945-a02c-6ee9c70f9ddf"),
        ("centos8", "ca6d485f-33d1-4f66-8df3-a3be3b1970ff")]
    assert p.parse_list_vms(read("list-runningvms-6.1.txt")) == [
        ("centos8", "ca6d485f-33d1-4f66-8df3-a3be3b1970ff")]
    assert p.parse_list_vms('"My {Weird} VM" {5a22fef0-6312-4e46-a96e-86a2aa4ddf5a}\n') == [
        ("My {Weird} VM", "5a22fef0-6312-4e46-a96e-86a2aa4ddf5a")]
    with pytest.raises(p.ParseError, match="unexpected 'list vms' line"):
        p.parse_list_vms("garbage\n")


def test_create_clone_import_start():
    assert p.parse_createvm(read("createvm-6.1.txt")) == (
        "createvm220406034829727347", "4390100b-b933-46b9-825c-fb6e1f006f8d",
        "/Users/mfm/my_python/my_vbox/createvm220406034829727347/createvm220406034829727347.vbox")
    assert p.parse_clonevm(read("clonevm-link-snapshot.txt")) == "srv"
    assert p.parse_import(read("import-ova-docker-project.txt")) == "docker-project"
    assert p.parse_import(read("import-ova.txt")) is None  # the listing was cut from it
    assert p.started(read("startvm-headless.txt"))
    assert not p.started(read("startvm-nonexistent-hostif-5.2.txt"))
    assert read("controlvm-poweroff.txt").strip().endswith("100%")
    for fn, text in ((p.parse_createvm, "x"), (p.parse_clonevm, "x"), (p.parse_import, "x")):
        with pytest.raises(p.ParseError):
            fn(text)


def test_metrics_query():
    rows = p.parse_metrics_query(read("metrics-query-7.x.txt"))
    by = {(r.object, r.name): r for r in rows}
    assert by[("WinXP", "CPU/Load/User:avg")].values == (0.10,)
    assert by[("WinXP", "RAM/Usage/Used:avg")] == p.Metric("WinXP", "RAM/Usage/Used:avg",
                                                           (1816052.0,), "kB")
    assert by[("majorbbs", "Guest/CPU/Load/User:avg")].values == ()
    assert by[("host", "RAM/VMM/Used:avg")].unit == "kB"
    old = ("Object     Metric               Values\n"
           "---------- -------------------- --------------------------------------------\n"
           "My VM      CPU/Load/User        1.00%, 2.50%, 3.00%\n")
    (row,) = p.parse_metrics_query(old)  # VirtualBox 4-6 column widths, a name with a blank
    assert (row.object, row.values, row.unit) == ("My VM", (1.0, 2.5, 3.0), "%")
    with pytest.raises(p.ParseError, match="no '----- -----' header"):
        p.parse_metrics_query("Object Metric Values\n")


def test_guest_properties():
    assert p.parse_guestproperty_get(read("guestproperty-get-value.txt")) == "192.168.56.106"
    assert p.parse_guestproperty_get(read("guestproperty-get-novalue.txt")) is None
    props = p.parse_guestproperty_enumerate(read("guestproperty-enumerate-old.txt"))
    assert p.guest_ipv4(props) == {0: "10.0.2.15", 1: "192.168.99.100", 2: "172.17.0.1",
                                   3: "172.18.0.1"}
    # 7.x's default table layout (VBoxManageGuestProp.cpp: "%-*ls = '%ls'", "@ <time>")
    new = ("/VirtualBox/GuestInfo/Net/0/V4/IP = '10.0.2.15'    @ 2023-02-06T02:18:47.191Z\n"
           "/VirtualBox/HostInfo/VBoxVer      = '7.0.6'        @ 2023-02-06T02:18:40.000Z"
           " TRANSIENT, RDONLYGUEST\n")
    assert p.parse_guestproperty_enumerate(new)["/VirtualBox/HostInfo/VBoxVer"] == "7.0.6"
    assert p.parse_guestproperty_enumerate("No properties found.\n") == {}
    with pytest.raises(p.ParseError):
        p.parse_guestproperty_get("VBoxManage: error: nope\n")
    with pytest.raises(p.ParseError):
        p.parse_guestproperty_enumerate("what is this\n")


@pytest.mark.parametrize("name,kind,code,message", [
    ("error-not-found-unregistervm-7.x.txt", p.ErrorKind.NOT_FOUND, "VBOX_E_OBJECT_NOT_FOUND",
     "Could not find a registered machine named 'al2023'"),
    ("error-not-found-showvminfo-5.1.txt", p.ErrorKind.NOT_FOUND, "VBOX_E_OBJECT_NOT_FOUND",
     "Could not find a registered machine named 'windows7'"),
    ("error-not-found-uuid-clonevm-5.0.txt", p.ErrorKind.NOT_FOUND, "VBOX_E_OBJECT_NOT_FOUND",
     "Could not find a registered machine with UUID {72c93322-9bb9-4d27-a29b-ed8cf047e370}"),
    ("error-locked-lockmachine-5.1.txt", p.ErrorKind.LOCKED, "VBOX_E_INVALID_OBJECT_STATE",
     "The machine 'packer-virtualbox-iso-1470421601' is already locked for a session "
     "(or being unlocked)"),
    ("error-locked-launchvmprocess-6.1.txt", p.ErrorKind.LOCKED, "VBOX_E_INVALID_OBJECT_STATE",
     "The machine 'packer-virtualbox-iso-1663686568' is already locked by a session "
     "(or being locked or unlocked)"),
    ("error-exists-createvm-6.1.txt", p.ErrorKind.EXISTS, "VBOX_E_FILE_ERROR",
     "Machine settings file '/home/cuckoo/.vmcloak/vms/win7x64base/win7x64base.vbox' "
     "already exists"),
    ("startvm-nonexistent-hostif-5.2.txt", p.ErrorKind.HOSTIF, "NS_ERROR_FAILURE",
     "Nonexistent host networking interface, name 'en0' (VERR_INTERNAL_ERROR)"),
])
def test_error_samples(name, kind, code, message):
    e = p.classify_error(1, read(name))
    assert (e.kind, e.code, e.message) == (kind, code, message)
    assert "\n" not in e.message


def test_missing_vboxmanage_and_other_errors():
    e = p.classify_error(127, read("missing-vboxmanage-dash.txt"))
    assert e.kind is p.ErrorKind.MISSING and "not installed" in e.message
    assert p.classify_error(127, "bash: VBoxManage: command not found\n").kind == "missing"
    other = p.classify_error(2, "VBoxManage: error: Invalid parameter '--bogus'\n")
    assert (other.kind, other.message, other.code) == ("other", "Invalid parameter '--bogus'",
                                                       None)
    assert p.classify_error(1, "").message == "exit code 1"


@pytest.mark.parametrize("state,word", [
    ("running", "on"), ("poweroff", "off"), ("paused", "suspended"), ("saved", "suspended"),
    ("aborted", "crashed"), ("aborted-saved", "crashed"), ("gurumeditation", "crashed"),
    ("teleported", "off"), ("livesnapshotting", "on"), ("teleportingpausedvm", "suspended"),
    ("starting", "on"), ("brandnew", "brandnew"), (None, "unknown")])
def test_power_states(state, word):
    assert p.power_state(state) == word


def test_every_sample_is_read_here():
    """A new sample file must get a reader in this module (listed by name here)."""
    import inspect
    import sys

    src = inspect.getsource(sys.modules[__name__])
    unread = [f.name for f in SAMPLES.iterdir() if f.name not in src]
    assert unread == []


def test_hostinfo_interfaces_and_medium_info():
    text = read("hostinfo-fragment-7.x.txt")
    assert p.host_memory_available_mib(text) == 16413
    assert p.host_cpu_count(text) is None  # the fragment has only the core count
    assert p.parse_colon_block(text)["Memory size"] == "30439 MByte"
    assert p.host_cpu_count("Processor online count: 8\nProcessor count: 8\n") == 8
    with pytest.raises(p.ParseError):
        p.host_memory_available_mib("Host Information:\n")
    assert p.parse_list_ifs("Name:            vboxnet0\nGUID:   x\n\nName:            vboxnet1\n"
                            ) == ["vboxnet0", "vboxnet1"]
    assert p.medium_capacity_mib("Location:       /v/a.vdi\nCapacity:       8192 MBytes\n") \
        == 8192
    assert p.medium_capacity_mib("UUID: x\n") is None
