import pytest

from nodemgr.errors import UsageError
from nodemgr.formats import format_macs, parse_macs
from nodemgr.vmspec import (
    build_spec,
    dev_names,
    expand_connstring,
    parse_nics,
    storage_locations,
)

KVM = "qemu#{auth.sep}#{auth.method}://#{user.name}@#{target.host}/system"


def test_connstring_macros_default_kvm():
    assert expand_connstring(KVM, host="hv1", user=None, authmethod="ssh") == \
        "qemu+ssh://root@hv1/system"
    assert expand_connstring(KVM, host="hv1", user="admin", authmethod="tls") == \
        "qemu+tls://admin@hv1/system"
    assert expand_connstring(KVM, host="hv1", user="root", authmethod=None) == \
        "qemu://root@hv1/system"


def test_localhost_is_the_local_system_uri():
    assert expand_connstring(KVM, host="localhost", user="root", authmethod="ssh") == \
        "qemu:///system"


def test_nics_kinds_models_and_macs():
    nics = parse_nics("br0,network:default=e1000,eth1|direct", ["52:54:00:00:00:01"], "virtio")
    assert [(n.network, n.kind, n.model, n.mac) for n in nics] == [
        ("br0", "bridge", "virtio", "52:54:00:00:00:01"),
        ("default", "network", "e1000", ""),
        ("eth1", "direct", "virtio", ""),
    ]


def test_mac_table_format_round_trip():
    value = "52:54:00:aa:bb:01|52:54:00:aa:bb:02!*NOIP*"
    assert parse_macs(value) == ["52:54:00:aa:bb:01", "52:54:00:aa:bb:02"]
    assert format_macs(parse_macs(value)) == value
    assert parse_macs("AA:BB:CC:DD:EE:FF!node-eth1") == ["aa:bb:cc:dd:ee:ff"]


def test_device_names_skip_c_and_used():
    assert dev_names("virtio", 3) == ["vda", "vdb", "vdd"]
    assert dev_names("scsi", 2, used=["sda"]) == ["sdb", "sdd"]
    assert dev_names("ide", 1) == ["hda"]


def test_storage_locations():
    assert storage_locations("dir:///vms=scsi|nfs://srv/p,vdb") == [
        ("dir:///vms", "scsi"), ("nfs://srv/p", None)]


def test_build_spec_from_attributes():
    spec = build_spec("vm1", {
        "vm.memory": "2G", "vm.cpus": "2", "vm.storage": "dir:///var/lib/vms",
        "vm.storageformat": "raw", "vm.bootorder": "hd,net", "vm.nics": "br0",
        "mac.mac": "52:54:00:00:00:09", "vpd.uuid": "u-1", "nodetype.os": "win2019",
    }, disk_sizes_mib=[1024, 2048])
    assert spec.memory_mib == 2048 and spec.cpus == 2
    assert [(d.dev, d.size_mib, d.format, d.location) for d in spec.disks] == [
        ("vda", 1024, "raw", "dir:///var/lib/vms"), ("vdb", 2048, "raw", "dir:///var/lib/vms")]
    assert spec.bootorder == ["hd", "network"]
    assert spec.clockoffset == "localtime"
    assert spec.nics[0].mac == "52:54:00:00:00:09" and spec.uuid == "u-1"


def test_build_spec_defaults_and_errors():
    spec = build_spec("vm1", {})
    assert (spec.memory_mib, spec.cpus, spec.bootorder, spec.disks) == (512, 1, ["network", "hd"], [])
    with pytest.raises(UsageError, match="vm.storage has no value"):
        build_spec("vm1", {}, disk_sizes_mib=[10])
    with pytest.raises(UsageError, match="block device"):
        build_spec("vm1", {"vm.storage": "phy:/dev/sdb"}, disk_sizes_mib=[10])
    with pytest.raises(UsageError, match="vm.cpus"):
        build_spec("vm1", {"vm.cpus": "two"})
    with pytest.raises(UsageError, match="invalid size"):
        build_spec("vm1", {"vm.memory": "10X"})


def test_hostconn_options_become_endpoint_options():
    from nodemgr.vmspec import parse_options

    assert parse_options("migrate_uri=tcp://10.1.0.5:49152; listen_address=10.1.0.5;unsafe") == (
        ("migrate_uri", "tcp://10.1.0.5:49152"), ("listen_address", "10.1.0.5"), ("unsafe", "1"))
    assert parse_options(None) == () and parse_options(" ; ") == ()
