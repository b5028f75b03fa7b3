"""VM commands for RHEV-M-managed VMs (nodehm.mgt=rhevm, vm.mgr=<engine node>) end to end:
tables -> noderange -> dispatch -> RhevmDriver -> simulated engines over HTTPS on loopback
with a test CA. Two engines run at once, one speaking API v4 and one a RHEV-M 3.x (v3), so
every flow runs in both versions and per-manager grouping is visible on the engines."""

from __future__ import annotations

import pytest

from nodemgr.cli import nodecmds, tablecmds, vmcmds
from nodemgr.tables.store import Store
from tests.simulators.ovirt import GIB, TlsEngine

pytestmark = pytest.mark.slow


def add_storage(eng, name="data1"):
    dc = eng.by_name("datacenters", "Default")["id"]
    return eng.add("storagedomains", name=name, storage_type="nfs", address="nfs.example.com",
                   path=f"/exports/{name}", data_center=dc, dc_status="active")


def define_engine(node, sim):
    assert nodecmds.nodeadd([node, "groups=engine,all"]) == 0
    assert tablecmds.chtab([f"node={node}", f"hostconn.uri={sim.url}",
                            f"hostconn.options=ca_file={sim.ca};poll=0.02"]) == 0


@pytest.fixture
def engines(cli_env, tmp_path):
    """rhevm4 (API v4) manages vma1, vma2 and hosts host1, host2; rhevm3 (RHEV-M 3.x, v3)
    manages vmb1."""
    with TlsEngine(tmp_path, api_mode="4") as a, TlsEngine(tmp_path, api_mode="3") as b:
        for sim in (a, b):
            add_storage(sim.engine)
        cl = a.engine.by_name("clusters", "Default")["id"]
        a.engine.add("hosts", name="host2", address="192.0.2.12", status="up", cluster=cl,
                     memory=16 * GIB)
        define_engine("rhevm4", a)
        define_engine("rhevm3", b)
        assert tablecmds.chtab(["key=rhevm", "passwd.username=admin@internal",
                                "passwd.password=password"]) == 0
        assert nodecmds.nodeadd(["host1,host2", "groups=rhevh,all", "hypervisor.type=rhevh",
                                 "hypervisor.mgr=rhevm4"]) == 0
        common = ["groups=vm,all", "nodehm.mgt=rhevm", "vm.storage=data1:1G:system",
                  "vm.nics=ovirtmgmt:eth0:yes", "vm.memory=1024", "vm.cpus=1:2",
                  "vm.bootorder=network,hd"]
        assert nodecmds.nodeadd(["vma1,vma2", "vm.mgr=rhevm4", *common]) == 0
        assert nodecmds.nodeadd(["vmb1", "vm.mgr=rhevm3", *common]) == 0
        yield {"a": a.engine, "b": b.engine, "url": cli_env}


def rows(url, name, key="node"):
    return {r[key]: r for r in Store(url).select(name)}


def roots(eng):
    """How many sessions were opened (each connect reads the API root once)."""
    return sum(1 for m, p, _ in eng.requests if m == "GET" and p in ("/ovirt-engine/api", "/api"))


def vm_of(eng, name):
    return eng.by_name("vms", name)


def test_vm_flows_on_two_engines(engines, capsys):
    a, b, url = engines["a"], engines["b"], engines["url"]
    # mkvm: one session per engine, each VM on its own engine
    assert vmcmds.mkvm(["vma1,vma2,vmb1"]) == 0, capsys.readouterr().err
    assert capsys.readouterr() == ("", "")
    assert roots(a) == 1 and roots(b) == 1
    assert {v["name"] for v in a.objs["vms"].values()} == {"vma1", "vma2"}
    assert {v["name"] for v in b.objs["vms"].values()} == {"vmb1"}
    va, vb = vm_of(a, "vma1"), vm_of(b, "vmb1")
    assert va["memory"] == 1024 << 20 and (va["sockets"], va["cores"]) == (1, 2)
    assert vb["boot"] == ["network", "hd"] and len(vb["disks"]) == 1
    assert a.objs["disks"][va["disks"][0]]["bootable"] is True
    macs, vpd = rows(url, "mac"), rows(url, "vpd")
    assert macs["vma1"]["mac"] == va["nics"][0]["mac"]  # the engine's MAC pool
    assert macs["vmb1"]["mac"] == vb["nics"][0]["mac"]
    assert vpd["vma1"]["uuid"] == va["id"] and vpd["vmb1"]["uuid"] == vb["id"]

    # rpower in both versions
    assert vmcmds.rpower(["vma1,vmb1", "stat"]) == 0
    assert capsys.readouterr().out == "vma1: off\nvmb1: off\n"
    assert vmcmds.rpower(["vma1,vmb1", "on"]) == 0
    assert capsys.readouterr().out == "vma1: on\nvmb1: on\n"
    assert rows(url, "nodelist")["vma1"]["status"] == "powering-on"
    assert vmcmds.rpower(["vmb1", "suspend"]) == 0
    assert capsys.readouterr().out == "vmb1: suspended\n"
    assert vmcmds.rpower(["vmb1", "stat"]) == 0
    assert capsys.readouterr().out == "vmb1: suspended\n"
    assert vmcmds.rpower(["vmb1", "on"]) == 0
    assert vmcmds.rpower(["vma1,vmb1", "boot"]) == 0
    assert capsys.readouterr().out == "vmb1: on\nvma1: on reset\nvmb1: on reset\n"
    assert vmcmds.rpower(["vma1", "bogus"]) == 1
    assert "Unsupported power directive 'bogus'" in capsys.readouterr().err

    # lsvm: VM form (v4 and v3) and host form
    assert vmcmds.lsvm(["vma1,vmb1"]) == 0
    out = capsys.readouterr().out
    assert f"vma1: Id: {va['id']}" in out and f"vmb1: Id: {vb['id']}" in out
    assert "vmb1: Memory: 1024 MiB" in out and "vma1: CPU: 2 (sockets 1, cores 2)" in out
    assert vmcmds.lsvm(["host1,host2"]) == 0
    out = capsys.readouterr().out
    host_of_vma1 = a.objs["hosts"][va["host"]]["name"]
    assert f"{host_of_vma1}: vma1: on" in out

    # addresses: v4 reported devices, v3 guest_info
    from nodemgr.plugins.rhevm import RhevmDriver
    from nodemgr.tables.resolve import Resolver
    from nodemgr.vmspec import Resolved, vm_targets

    store = Store(url)
    ts = vm_targets(Resolved(Resolver(store), ["vma1", "vmb1"]))
    for t, eng in zip(ts, (a, b), strict=True):
        d = RhevmDriver(t.endpoint, 20)
        d.connect()
        [r] = d.addresses([t.spec])
        assert r.ok and r.data["addresses"] == [vm_of(eng, t.node)["ip"]], r.message
        [r] = d.stats([t.spec])
        assert r.ok and r.data["memory_mib"] == 1024
        d.close()

    # rmigrate: engine's choice (no target, no migrationdest), then a named host
    assert vmcmds.rmigrate(["vma1"]) == 0, capsys.readouterr().err
    other = "host2" if host_of_vma1 == "host1" else "host1"
    assert capsys.readouterr().out == f"vma1: migrated to {other}\n"
    assert rows(url, "vm")["vma1"]["host"] == other
    assert a.objs["hosts"][vm_of(a, "vma1")["host"]]["name"] == other
    assert vmcmds.rmigrate(["vma1", host_of_vma1]) == 0
    assert capsys.readouterr().out == f"vma1: migrated to {host_of_vma1}\n"
    assert vmcmds.rmigrate(["vmb1"]) == 1  # the v3 engine has one host only
    assert "no host that satisfies" in capsys.readouterr().err

    # chvm: push table changes, add and remove a disk
    assert tablecmds.chtab(["node=vma2", "vm.memory=2048", "vm.cpus=2:1"]) == 0
    assert vmcmds.chvm(["vma2,vmb1"]) == 0
    assert capsys.readouterr().out == "vma2: change vm completed.\nvmb1: change vm completed.\n"
    va2 = vm_of(a, "vma2")
    assert va2["memory"] == 2048 << 20 and (va2["sockets"], va2["cores"]) == (2, 1)
    assert vmcmds.chvm(["vma2", "-a", "2G"]) == 0
    assert len(va2["disks"]) == 2 and a.objs["disks"][va2["disks"][1]]["size"] == 2 * GIB
    assert vmcmds.chvm(["vma2", "-p", "disk2"]) == 0
    assert len(va2["disks"]) == 1
    assert vmcmds.chvm(["vma2", "-p", "disk7"]) == 1
    assert "vma2: Error: no disk disk7 on vma2" in capsys.readouterr().err

    # clonevm: template from a VM (v4 and v3), then a VM from it
    assert vmcmds.clonevm(["vma2", "-t", "gold"]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out == "vma2: gold: ok.\n"
    assert a.by_name("templates", "gold")["vm"] == va2["id"]
    assert nodecmds.nodeadd(["vmc1", "groups=vm,all", "nodehm.mgt=rhevm", "vm.mgr=rhevm4"]) == 0
    assert vmcmds.clonevm(["vmc1", "-b", "gold", "-d"]) == 0, capsys.readouterr().err
    vc = vm_of(a, "vmc1")
    assert vc["template"] == a.by_name("templates", "gold")["id"] and len(vc["disks"]) == 1
    assert rows(url, "vpd")["vmc1"]["uuid"] == vc["id"]
    assert vmcmds.rpower(["vmb1", "off"]) == 0
    capsys.readouterr()
    assert vmcmds.clonevm(["vmb1", "-t", "goldb"]) == 0, capsys.readouterr().err
    assert b.by_name("templates", "goldb") is not None

    # rmvm: refused while running; -f stops it, disks kept; -p deletes them (v4 and v3)
    assert vmcmds.rmvm(["vma1"]) == 1
    assert "vma1: Error: Cannot remove VM. VM is running." in capsys.readouterr().err
    disk_a = vm_of(a, "vma1")["disks"][0]
    assert vmcmds.rmvm(["vma1", "-f"]) == 0
    assert vm_of(a, "vma1") is None and disk_a in a.objs["disks"]  # detached, kept
    disk_b = vm_of(b, "vmb1")["disks"][0]
    import time

    deadline = time.monotonic() + 5
    while vm_of(b, "vmb1")["status"] != "down" and time.monotonic() < deadline:
        time.sleep(0.02)  # the template copy locks vmb1 for a moment
    assert vmcmds.rmvm(["vmb1", "-p"]) == 0, capsys.readouterr().err
    assert vm_of(b, "vmb1") is None and disk_b not in b.objs["disks"]
    assert vmcmds.rmvm(["vmb1"]) == 1
    assert "vmb1: Error: vmb1: node was not defined in the rhevm" in capsys.readouterr().err


def test_bad_input_one_line_nothing_changed(engines, capsys):
    a, url = engines["a"], engines["url"]
    assert tablecmds.chtab(["node=vma1", "vm.master=nosuch"]) == 0
    assert tablecmds.chtab(["node=vma2", "vm.storage=nosd:1G"]) == 0
    assert nodecmds.nodeadd(["vmx", "groups=vm,all", "nodehm.mgt=rhevm"]) == 0
    assert vmcmds.mkvm(["vma1,vma2,vmx"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "vma1: Error: template 'nosuch' not found on engine 127.0.0.1"
    assert err[1] == "vma2: Error: storage domain 'nosd' not found on engine 127.0.0.1"
    assert err[2].startswith("vmx: Error: ") and "vm.mgr" in err[2]
    assert a.objs["vms"] == {} and rows(url, "mac") == {} and rows(url, "vpd") == {}
    # wrong password: one line per node, no retry storm, the password never shown
    assert tablecmds.chtab(["key=rhevm", "passwd.username=admin@internal",
                            "passwd.password=wrong-secret"]) == 0
    n = len(a.requests)
    assert vmcmds.rpower(["vma1,vma2", "stat"]) == 1
    err = capsys.readouterr().err
    assert err.count("rejected the credentials of admin@internal") == 2
    assert "wrong-secret" not in err and len(a.requests) == n


def test_bootparams_through_cloud_init(engines, capsys):
    """mkvm --bootparams on a v4 engine: the VM's <initialization> holds them (read back
    on GET), rpower on starts with use_cloud_init and that initialization, the guest then
    reports the configured address; ``addresses`` gives the configured ip while the engine
    reports none. A v3 engine refuses them with one line and nothing created."""
    from nodemgr.plugins.rhevm import RhevmDriver, api
    from nodemgr.tables.resolve import Resolver
    from nodemgr.vmspec import Resolved, vm_targets

    a, b, url = engines["a"], engines["b"], engines["url"]
    rc = vmcmds.mkvm(["vma1", "--bootparams", "ip=192.0.2.77/24", "gateway=192.0.2.1",
                      "dns=192.0.2.53,192.0.2.54", "hostname=web77", "role=web",
                      "password=s3cret"])
    assert rc == 0, capsys.readouterr().err
    assert rows(url, "vmbootparams")["vma1"]["params"].startswith("ip=192.0.2.77/24|")
    va = vm_of(a, "vma1")
    d = RhevmDriver(vm_targets(Resolved(Resolver(Store(url)), ["vma1"]))[0].endpoint, 20)
    d.connect()
    got = d.engine.get(f"vms/{va['id']}")  # the VM as the engine shows it
    nic = "initialization/nic_configurations/nic_configuration/"
    assert api.text(got, "initialization/host_name") == "web77"
    assert (api.text(got, nic + "boot_protocol"), api.text(got, nic + "ip/address"),
            api.text(got, nic + "ip/netmask"), api.text(got, nic + "ip/gateway")) == (
        "static", "192.0.2.77", "255.255.255.0", "192.0.2.1")
    assert api.text(got, "initialization/dns_servers") == "192.0.2.53 192.0.2.54"
    assert "role=web" in api.text(got, "initialization/custom_script")
    assert "s3cret" not in api.text(got, "initialization/custom_script")
    # not running: the engine reports no address, the configured one is returned
    [t] = vm_targets(Resolved(Resolver(Store(url)), ["vma1"]))
    [r] = d.addresses([t.spec])
    assert r.ok and r.data["addresses"] == ["192.0.2.77"], r.message
    assert vmcmds.rpower(["vma1", "on"]) == 0, capsys.readouterr().err
    started = vm_of(a, "vma1")["cloud_init"]  # what the start action carried
    assert api.text(started, "nic_configurations/nic_configuration/ip/address") == \
        "192.0.2.77"
    assert api.text(started, "host_name") == "web77"
    assert started.find("root_password") is None  # write-only: the engine keeps it hidden
    [r] = d.addresses([t.spec])
    assert r.data["addresses"] == ["192.0.2.77"]  # now reported by the guest
    d.close()
    # v3: refused, nothing created
    capsys.readouterr()
    assert vmcmds.mkvm(["vmb1", "--bootparams", "ip=dhcp"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vmb1: Error: boot parameters need API v4 (cloud-init); engine ")
    assert err.endswith(" speaks v3\n") and err.count("\n") == 1
    assert not b.objs["vms"] and "vmb1" not in rows(url, "vmbootparams")


def test_rpower_on_of_a_vm_without_a_disk_is_one_line(engines, capsys):
    """A VM that boots from its hard disk alone and has none: the engine refuses the start
    (RunVmValidator, VM_CANNOT_RUN_FROM_DISK_WITHOUT_DISK, 409); rpower prints the first
    sentence of the engine's message on one line, in both API versions."""
    a, b = engines["a"], engines["b"]
    for node in ("vma1", "vmb1"):
        assert tablecmds.chtab([f"node={node}", "vm.storage=", "vm.bootorder=hd"]) == 0
    assert vmcmds.mkvm(["vma1,vmb1"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert vm_of(a, "vma1")["disks"] == [] and vm_of(b, "vmb1")["boot"] == ["hd"]
    assert vmcmds.rpower(["vma1,vmb1", "on"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert sorted(err.splitlines()) == [
        "vma1: Error: Cannot run VM without at least one bootable disk.",
        "vmb1: Error: Cannot run VM without at least one bootable disk."]
    assert vm_of(a, "vma1")["status"] == "down" and vm_of(b, "vmb1")["status"] == "down"


def test_chvm_d_detaches_keeping_the_disk_on_both_engines(engines, capsys):
    """chvm -d: the disk leaves the VM and stays on the engine (v4 ``detach_only=true``,
    v3 ``<action><detach>true</detach></action>``); -p removes it."""
    a, b = engines["a"], engines["b"]
    assert vmcmds.mkvm(["vma1,vmb1"]) == 0, capsys.readouterr().err
    for eng, node in ((a, "vma1"), (b, "vmb1")):
        assert vmcmds.chvm([node, "-a", "1G,1G"]) == 0, capsys.readouterr().err
        vm = vm_of(eng, node)
        second, third = vm["disks"][1:]
        assert vmcmds.chvm([node, "-d", "disk2"]) == 0, capsys.readouterr().err
        assert vm["disks"] == [vm["disks"][0], third] and second in eng.objs["disks"]
        assert vmcmds.chvm([node, "-p", "disk2"]) == 0, capsys.readouterr().err
        assert len(vm["disks"]) == 1 and third not in eng.objs["disks"]


def test_lsvm_of_the_engine_nodes_lists_their_vms(engines, capsys):
    """lsvm <engine node>: every VM of that engine, "engine: vm: state" (the engine's
    driver is that of the VMs naming it in vm.mgr), in both API versions."""
    assert vmcmds.mkvm(["vma1,vma2,vmb1"]) == 0, capsys.readouterr().err
    assert vmcmds.rpower(["vma2", "on"]) == 0
    capsys.readouterr()
    assert vmcmds.lsvm(["rhevm4,rhevm3"]) == 0
    out, err = capsys.readouterr()
    assert (out, err) == ("rhevm3: vmb1: off\nrhevm4: vma1: off\nrhevm4: vma2: on\n", "")


def test_rpower_stat_of_rhevh_hosts_is_their_state_on_the_engine(engines, capsys):
    a = engines["a"]
    a.by_name("hosts", "host2")["status"] = "maintenance"
    assert vmcmds.rpower(["host1,host2", "stat"]) == 0
    assert capsys.readouterr() == ("host1: on\nhost2: maintenance\n", "")


# -- rvitals, rinv, rsetboot, getrvidparms, rcons, rscan on both engines --------------------------


def test_new_commands_on_both_engines(engines, capsys):
    """rvitals (the engine's statistics, 15 s), rinv (ids, disks, NICs, the guest agent's
    addresses), rsetboot (os/boot of the VM), getrvidparms / getcons (the VM's display
    and a one-time ticket), rcons (no serial console: one line naming getrvidparms, nothing
    opened) — each on the v4 engine (vma1) and the RHEV-M 3.x one (vmb1)."""
    from tests.simulators.ovirt import Renderer

    a, b = engines["a"], engines["b"]
    assert vmcmds.mkvm(["vma1,vmb1"]) == 0, capsys.readouterr().err
    assert vmcmds.rpower(["vma1,vmb1", "on"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert vmcmds.rvitals(["vma1,vmb1"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    for node in ("vma1", "vmb1"):
        assert f"{node}: CPU: 26.0 % over 15 s, 2 vCPUs" in out            # 13 % x 2
        assert f"{node}: Memory: 307 MiB used of 1024 MiB available" in out
        assert (f"{node}: Disk: read {Renderer.DISK_READ:.0f} bytes/s, write "
                f"{Renderer.DISK_WRITE:.0f} bytes/s") in out
        assert (f"{node}: Network: rx {Renderer.NIC_RX:.0f} bytes/s, tx "
                f"{Renderer.NIC_TX:.0f} bytes/s") in out
    assert vmcmds.rinv(["vma1,vmb1"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    for node, eng in (("vma1", a), ("vmb1", b)):
        vm = vm_of(eng, node)
        mac = vm["nics"][0]["mac"]
        assert f"{node}: UUID: {vm['id']}" in out and f"{node}: CPUs: 2" in out
        assert f"{node}: Memory: 1024 MiB" in out and f"{node}: NIC 1: {mac} ovirtmgmt" in out
        assert f"{node}: Disk " in out and " 1024 MiB " in out
        tail = f", {mac})" if node == "vma1" else ")"  # v3 guest_info has no MAC
        assert f"{node}: IP: {vm['ip']} (agent{tail}" in out
    assert vmcmds.rsetboot(["vma1,vmb1", "hd"]) == 0, capsys.readouterr().err
    assert vm_of(a, "vma1")["boot"] == vm_of(b, "vmb1")["boot"] == ["hd", "network"]
    assert vmcmds.rsetboot(["vma1,vmb1", "net"]) == 0
    assert vm_of(a, "vma1")["boot"] == vm_of(b, "vmb1")["boot"] == ["network", "hd"]
    capsys.readouterr()
    assert vmcmds.getrvidparms(["vma1,vmb1"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    for node, eng in (("vma1", a), ("vmb1", b)):
        vm = vm_of(eng, node)
        addr, port, _ = Renderer(eng, "/").display_of(vm)
        assert f"{node}: method: vnc\n{node}: server: {addr}\n{node}: vidport: {port}\n" \
               f"{node}: password: {vm['ticket']}\n" in out
    assert vmcmds.getcons(["vma1"]) == 0 and "vma1: method: vnc" in capsys.readouterr().out
    n = len(a.requests)
    assert vmcmds.rcons(["vma1"]) == 1
    err = capsys.readouterr().err
    assert "no serial console" in err and "getrvidparms" in err and err.count("\n") == 1
    assert len(a.requests) == n                                     # refused before a call


def test_new_commands_bad_input_one_line(engines, capsys):
    a = engines["a"]
    assert vmcmds.mkvm(["vma1"]) == 0, capsys.readouterr().err
    boot = list(vm_of(a, "vma1")["boot"])
    capsys.readouterr()
    assert vmcmds.rsetboot(["vma1", "floppy"]) == 1
    err = capsys.readouterr().err
    assert "floppy" in err and err.count("\n") == 1 and vm_of(a, "vma1")["boot"] == boot
    assert vmcmds.getrvidparms(["vma1"]) == 1                       # down: no display
    err = capsys.readouterr().err
    assert "vma1: Error: " in err and "only while the VM runs" in err
    assert vmcmds.rvitals(["vma2"]) == 1                            # not on the engine
    assert "vma2: Error: vma2: node was not defined in the rhevm" in capsys.readouterr().err


def test_rscan_of_an_engine_lists_and_writes_unknown_vms(engines, capsys):
    """rscan <engine>: every VM of the engine with its id, CPUs, memory, MAC; -w defines
    the one whose node was removed (vm.mgr = the engine, the engine's MAC and id) and
    leaves the known ones alone."""
    a, url = engines["a"], engines["url"]
    assert vmcmds.mkvm(["vma1,vma2"]) == 0, capsys.readouterr().err
    va2 = vm_of(a, "vma2")
    assert nodecmds.noderm(["vma2"]) == 0
    capsys.readouterr()
    assert vmcmds.rscan(["rhevm4"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert va2["id"] in out and va2["nics"][0]["mac"] in out and "vma1" in out
    before = rows(url, "vm")["vma1"]
    assert vmcmds.rscan(["rhevm4", "-w"]) == 0, capsys.readouterr().err
    vm = rows(url, "vm")
    assert vm["vma2"]["mgr"] == "rhevm4" and vm["vma1"] == before
    assert rows(url, "vpd")["vma2"]["uuid"] == va2["id"]
    assert rows(url, "mac")["vma2"]["mac"].split("!")[0] == va2["nics"][0]["mac"]
