"""Server-pool commands through the tables: pools, machines by IP/MAC/local, users with
per-machine override, virttype defaults, bad input changes nothing, endpoints see changes at
once, and VMs with vm.migrationdest=<pool> land on the machine with the most free memory."""

from __future__ import annotations

from nodemgr.cli import poolcmds, vmcmds
from nodemgr.tables.resolve import Resolver
from nodemgr.tables.store import open_default
from nodemgr.vmspec import Resolved, host_endpoint


def run(fn, argv, capsys):
    rc = fn(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_seed_workflow(cli_env, capsys):
    assert run(poolcmds.mkpool, ["cloud", "--virttype", "kvm", "--subnet", "10.132.181.0/24",
                                 "--portName", "cscotun0;br0"], capsys)[0] == 0
    assert run(poolcmds.poolmachine, ["cloud", "local", "--local"], capsys)[0] == 0
    assert run(poolcmds.poolmachine, ["cloud", "cloud-1", "--mac", "00:1C:C4:9F:E9:3B"],
               capsys)[0] == 0
    assert run(poolcmds.poolmachine, ["cloud", "office", "--ip", "10.132.181.57"], capsys)[0] == 0
    assert run(poolcmds.pooluser, ["cloud", "cloud", "--userId", "1001", "--groupId", "1001"],
               capsys)[0] == 0
    assert run(poolcmds.pooluser, ["cloud", "admin", "--machine", "office"], capsys)[0] == 0
    rc, out, _ = run(poolcmds.lspool, [], capsys)
    assert out == ("cloud: virttype=kvm subnet=10.132.181.0/24 interfaces=cscotun0;br0 "
                   "username=cloud machines=cloud-1,local,office\n")
    store = open_default()
    res = Resolved(Resolver(store), [])
    assert host_endpoint(res, "local", "kvm").uri == "qemu:///system"
    res = Resolved(Resolver(store), [])
    assert host_endpoint(res, "office", "kvm").uri == "qemu+ssh://admin@10.132.181.57/system"
    assert host_endpoint(res, "cloud-1", "kvm").uri == "qemu+ssh://cloud@cloud-1/system"
    assert store.get("mac", {"node": "cloud-1"})["mac"] == "00:1c:c4:9f:e9:3b"
    # virttype defaults (add-libvirt-virtualization)
    assert run(poolcmds.chvirttype, ["qemu", "--emulatorPath", "/usr/bin/qemu-system-x86_64"],
               capsys)[0] == 0
    assert store.get("virttype", {"type": "qemu"})["emulator"] == "/usr/bin/qemu-system-x86_64"
    # removing a machine takes effect at once; a pool with machines needs -f
    assert run(poolcmds.poolmachine, ["cloud", "office", "-d"], capsys)[0] == 0
    rc, _, err = run(poolcmds.rmpool, ["cloud"], capsys)
    assert rc == 1 and "has machines (cloud-1, local)" in err
    assert run(poolcmds.rmpool, ["cloud", "-f"], capsys)[0] == 0
    assert store.select("serverpool") == []
    assert store.get("hypervisor", {"node": "local"})["cluster"] is None


def test_bad_input_changes_nothing(cli_env, capsys):
    assert run(poolcmds.mkpool, ["p1"], capsys)[0] == 0
    for fn, argv, msg in [
        (poolcmds.mkpool, ["p1"], "already exists"),
        (poolcmds.mkpool, ["p2", "--subnet", "10.0.0.300/24"], "invalid subnet"),
        (poolcmds.mkpool, ["p2", "--virttype", "vmware"], "unknown virtualization type"),
        (poolcmds.poolmachine, ["p1", "m1", "--mac", "zz:11"], "invalid MAC"),
        (poolcmds.poolmachine, ["p1", "m1", "--ip", "1.2.3"], "invalid IP"),
        (poolcmds.poolmachine, ["p1", "m1"], "--ip, --mac, or --local"),
        (poolcmds.poolmachine, ["nopool", "m1", "--local"], "no server pool named 'nopool'"),
        (poolcmds.pooluser, ["p1", "u", "--userId", "x"], "invalid --userId"),
        (poolcmds.pooluser, ["p1", "u", "--machine", "m9"], "not a machine of server pool"),
    ]:
        rc, _, err = run(fn, argv, capsys)
        assert rc == 1 and msg in err and err.startswith("Error: "), (argv, err)
    store = open_default()
    assert [r["name"] for r in store.select("serverpool")] == ["p1"]
    assert store.select("hypervisor") == [] and store.select("hosts") == []


def test_vm_placed_on_pool_machine_by_free_memory(cli_env, capsys, monkeypatch):
    from nodemgr.cli import nodecmds
    from nodemgr.plugins import fake

    assert run(poolcmds.mkpool, ["fp", "--virttype", "fake"], capsys)[0] == 1  # not a type
    store = open_default()
    with store.transaction():
        store.upsert("virttype", {"type": "fake"}, {"connstring": "fake://#{target.host}"})
    assert run(poolcmds.mkpool, ["fp", "--virttype", "fake"], capsys)[0] == 0
    for m in ("h1", "h2"):
        assert run(poolcmds.poolmachine, ["fp", m, "--ip", "10.0.0.1" if m == "h1"
                                          else "10.0.0.2"], capsys)[0] == 0
    assert nodecmds.nodeadd(["v1", "groups=vms", "nodehm.mgt=fake", "vm.migrationdest=fp"]) == 0
    capsys.readouterr()
    free = {"h1": 1000, "h2": 4000}
    monkeypatch.setattr(fake.FakeDriver, "host_free_memory_mib",
                        lambda self: free[self.endpoint.host], raising=False)
    rc, out, err = run(vmcmds.mkvm, ["v1"], capsys)
    assert rc == 0, err
    assert store.get("vm", {"node": "v1"})["host"] == "h2"
