"""The foundation's VM commands on Oracle VM nodes (nodehm.mgt=ovm, vm.mgr = the manager
node) against the simulated OVM Manager with a real sshd as the pool master's dom0:
mkvm --bootparams (kept in vmbootparams, written into Bootparams.img), rpower, lsvm, chvm,
rmigrate, clonevm -t/-b, rmvm; rvitals (xentop on the dom0), rinv, rsetboot, getrvidparms /
getcons (the VNC display), rcons (refused: no serial console), rscan [-w], revacuate and
the servers' own rpower/lsvm through the manager; bad input is one line per node and changes
nothing."""

from __future__ import annotations

import re
import subprocess

import pytest

from nodemgr import sshpool
from nodemgr.cli import nodecmds, tablecmds, vmcmds
from nodemgr.tables.store import Store
from tests.fixtures.ovm_env import make_template, ovm_env  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(cli_env, ovm_env):  # noqa: F811
    env = ovm_env
    make_template(env.templatedir, "OVM_EL5_PVM")
    opts = ";".join(f"{k}={v}" for k, v in env.options().items())
    assert nodecmds.nodeadd(["ovmmgr,ovs1,ovs2", "groups=ovm,all"]) == 0
    assert tablecmds.chtab(["node=ovmmgr", f"hostconn.uri={env.server.url}",
                            f"hostconn.options={opts}"]) == 0
    assert tablecmds.chtab(["key=ovm", "passwd.username=admin",
                            "passwd.password=password"]) == 0
    assert nodecmds.nodeadd(["ovmc[1-2]", "groups=vm,all", "nodehm.mgt=ovm", "vm.mgr=ovmmgr",
                             "vm.cluster=pool1", "vm.master=OVM_EL5_PVM", "vm.memory=1024",
                             "vm.cpus=1"]) == 0
    yield env
    sshpool.close_all()
    for vm in list(env.manager.vms.values()):  # deleted as the manager does: files too
        env.manager._set_state(vm, "Powered Off")
        env.manager.deleteVMByVMId(vm["imgId"])


def rows(url, name, key="node"):
    return {r[key]: r for r in Store(url).select(name)}


def mtype(img) -> str:
    return subprocess.run(["mtype", "-i", str(img), "::bootparams.conf"], check=True,
                          capture_output=True, text=True,
                          env={"MTOOLS_SKIP_CHECK": "1", "PATH": "/usr/bin:/bin"}).stdout


def test_commands_end_to_end(cluster, cli_env, capsys):
    env = cluster
    assert vmcmds.mkvm(["ovmc1,ovmc2", "--bootparams", "ip=10.2.0.7/24",
                        "gateway=10.2.0.1", "role=db"]) == 0, capsys.readouterr().err
    assert capsys.readouterr() == ("", "")
    bp = rows(cli_env, "vmbootparams")
    assert bp["ovmc1"]["params"] == "ip=10.2.0.7/24|gateway=10.2.0.1|role=db"
    assert rows(cli_env, "mac")["ovmc1"]["mac"].startswith(("00:16:3e:", "52:54:00:"))
    img = env.ovs / "running_pool" / "ovmc1" / "Bootparams.img"
    assert mtype(img) == "gateway=10.2.0.1\nip=10.2.0.7/24\nrole=db\n"
    # the MAC the tables hold is the one in vm.cfg after power-on
    for argv, want in ((["ovmc1,ovmc2", "stat"], "ovmc1: off\novmc2: off\n"),
                       (["ovmc1", "on"], "ovmc1: on\n"),
                       (["ovmc1", "suspend"], "ovmc1: suspended\n"),
                       (["ovmc1", "resume"], "ovmc1: on\n"),
                       (["ovmc1", "boot"], "ovmc1: on reset\n")):
        assert vmcmds.rpower(argv) == 0, capsys.readouterr().err
        assert capsys.readouterr().out == want
    mac = rows(cli_env, "mac")["ovmc1"]["mac"].split("!")[0]
    assert f"mac={mac}" in (env.ovs / "running_pool" / "ovmc1" / "vm.cfg").read_text().lower()
    # an illegal transition: one line, exit 1
    assert vmcmds.rpower(["ovmc2", "resume"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ovmc2: Error: ") and "not allowed" in err and err.count("\n") == 1
    assert vmcmds.lsvm(["ovmc1"]) == 0
    out = capsys.readouterr().out
    assert "ovmc1: Status: on" in out and "ovmc1: Pool: pool1" in out
    assert vmcmds.rmigrate(["ovmc1", "ovs2"]) == 0, capsys.readouterr().err
    assert "migrated to ovs2" in capsys.readouterr().out
    assert rows(cli_env, "vm")["ovmc1"]["host"] == "ovs2"
    assert vmcmds.rpower(["ovmc1", "off"]) == 0
    assert vmcmds.chvm(["ovmc1", "--cpus", "2", "--mem", "2048"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert "vcpus = 2" in (env.ovs / "running_pool" / "ovmc1" / "vm.cfg").read_text()
    assert vmcmds.clonevm(["ovmc1", "-t", "gold"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert (env.ovs / "seed_pool" / "gold" / "vm.cfg").exists()
    assert nodecmds.nodeadd(["ovmc3", "groups=vm,all", "nodehm.mgt=ovm", "vm.mgr=ovmmgr",
                             "vm.cluster=pool1"]) == 0
    assert vmcmds.clonevm(["ovmc3", "-b", "gold"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert (env.ovs / "running_pool" / "ovmc3" / "vm.cfg").exists()
    assert vmcmds.rmvm(["ovmc1,ovmc2,ovmc3"]) == 0, capsys.readouterr().err
    assert not any((env.ovs / "running_pool").iterdir())


def test_bad_bootparams_change_nothing(cluster, cli_env, capsys):
    for argv, needle in ((["ovmc1", "--bootparams", "novalue"], "invalid boot parameter"),
                         (["ovmc1", "--bootparams", "ip=10.0.0.300/24"], "ip='10.0.0.300/24'"),
                         (["ovmc1", "--bootparams", "gateway=x"], "gateway='x'")):
        assert vmcmds.mkvm(argv) == 1
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1
    assert rows(cli_env, "vmbootparams") == {}
    assert not cluster.manager.vms
    # a missing template is a per-node error; tables untouched
    assert tablecmds.chtab(["node=ovmc2", "vm.master=MISSING"]) == 0
    assert vmcmds.mkvm(["ovmc2", "--bootparams", "ip=dhcp"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ovmc2: Error: template MISSING is not in server pool pool1")
    assert rows(cli_env, "vmbootparams") == {}


def test_lsvm_of_the_manager_node_lists_its_vms(cluster, capsys):
    assert vmcmds.mkvm(["ovmc1,ovmc2"]) == 0, capsys.readouterr().err
    assert vmcmds.lsvm(["ovmmgr"]) == 0
    assert capsys.readouterr() == ("ovmmgr: ovmc1: off\novmmgr: ovmc2: off\n", "")


# -- rvitals, rinv, rsetboot, getrvidparms, getcons, rcons, rscan, revacuate ----------------------


def test_new_commands_end_to_end(cluster, cli_env, capsys):
    env = cluster
    assert vmcmds.mkvm(["ovmc1", "--bootparams", "ip=10.2.0.8/24"]) == 0, capsys.readouterr().err
    assert vmcmds.mkvm(["ovmc2"]) == 0, capsys.readouterr().err
    vm1 = env.manager.getVMByName("pool1", "ovmc1")
    assert rows(cli_env, "vpd")["ovmc1"]["uuid"] == vm1["uuid"]  # the manager's UUID kept
    mac1 = rows(cli_env, "mac")["ovmc1"]["mac"].split("!")[0]
    env.manager.load["ovmc1"] = {"load": 0.5, "disk_write_bps": 512 * 2000,
                                 "net_rx_bps": 1024 * 50}
    assert vmcmds.rpower(["ovmc1", "on"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    # rvitals: xentop's figures with units
    assert vmcmds.rvitals(["ovmc1"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    cpu = re.search(r"^ovmc1: CPU: ([\d.]+) % over 1 s, 1 vCPU$", out, re.M)
    assert cpu and 40 <= float(cpu.group(1)) <= 60, out
    assert "ovmc1: Memory: 1024 MiB used of 1024 MiB available\n" in out
    assert re.search(r"^ovmc1: Disk: read 0 bytes/s, write \d+ bytes/s$", out, re.M), out
    assert re.search(r"^ovmc1: Network: rx \d+ bytes/s, tx 0 bytes/s$", out, re.M), out
    assert vmcmds.rvitals(["ovmc2", "cpu"]) == 1                    # off: one line
    err = capsys.readouterr().err
    assert err == "ovmc2: Error: VM ovmc2 is off: no use figures\n"
    # rinv: the manager's ids, vm.cfg's disks and NICs, the boot parameters' address
    assert vmcmds.rinv(["ovmc1"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"ovmc1: UUID: {vm1['uuid']}\n" in out and "ovmc1: CPUs: 1\n" in out
    assert "ovmc1: Memory: 1024 MiB\n" in out
    assert "ovmc1: Disk xvda: 4 MiB /OVS/running_pool/ovmc1/System.img (raw)\n" in out
    assert f"ovmc1: NIC 1: {mac1} xenbr0 (netfront)\n" in out
    assert f"ovmc1: IP: 10.2.0.8 (bootparams, {mac1})\n" in out
    # rsetboot: the manager's boot device; a running VM is refused by the manager
    assert vmcmds.rsetboot(["ovmc2", "net"]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out == "ovmc2: net\n"
    assert env.manager.getVMByName("pool1", "ovmc2")["bootDevice"] == {"bootDevice": "PXE"}
    assert "pypxeboot" in (env.ovs / "running_pool" / "ovmc2" / "vm.cfg").read_text()
    assert vmcmds.rsetboot(["ovmc1", "net"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ovmc1: Error: ") and "not allowed" in err and err.count("\n") == 1
    assert vmcmds.rsetboot(["ovmc2", "floppy"]) == 1
    err = capsys.readouterr().err
    assert "floppy" in err and err.count("\n") == 1
    # getrvidparms / getcons: the VNC display of the running VM
    vm1 = env.manager.getVMByName("pool1", "ovmc1")
    assert vmcmds.getrvidparms(["ovmc1"]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out == (
        f"ovmc1: method: vnc\novmc1: server: 127.0.0.1\novmc1: vidport: {vm1['vncPort']}\n"
        f"ovmc1: password: {vm1['vncPassword']}\n"
        f"ovmc1: command: vncviewer 127.0.0.1::{vm1['vncPort']}\n")
    assert vmcmds.getcons(["ovmc1"]) == 0 and "ovmc1: method: vnc" in capsys.readouterr().out
    assert vmcmds.getrvidparms(["ovmc2"]) == 1                      # off: no display
    err = capsys.readouterr().err
    assert "only while it runs" in err and err.count("\n") == 1
    # rcons: refused before any call to the manager, naming what there is instead
    n = len(env.manager.messages)
    assert vmcmds.rcons(["ovmc1"]) == 1
    err = capsys.readouterr().err
    assert "no serial console" in err and "getrvidparms" in err and err.count("\n") == 1
    assert len(env.manager.messages) == n


def test_rscan_lists_and_writes_unknown_vms(cluster, cli_env, capsys):
    env = cluster
    assert vmcmds.mkvm(["ovmc1,ovmc2"]) == 0, capsys.readouterr().err
    vm2 = env.manager.getVMByName("pool1", "ovmc2")
    mac2 = rows(cli_env, "mac")["ovmc2"]["mac"].split("!")[0]
    assert nodecmds.noderm(["ovmc2"]) == 0
    capsys.readouterr()
    assert vmcmds.rscan(["ovmmgr"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert vm2["uuid"] in out and mac2 in out and "ovmc1" in out
    assert "/OVS/running_pool/ovmc2/System.img" in out
    before = rows(cli_env, "vm")["ovmc1"]
    assert vmcmds.rscan(["ovmmgr", "-w"]) == 0, capsys.readouterr().err
    assert "ovmc2: defined from ovmmgr" in capsys.readouterr().out
    vm = rows(cli_env, "vm")
    assert vm["ovmc2"]["mgr"] == "ovmmgr" and vm["ovmc1"] == before
    assert vm["ovmc2"]["memory"] == "1024" and vm["ovmc2"]["cpus"] == "1"
    assert rows(cli_env, "vpd")["ovmc2"]["uuid"] == vm2["uuid"]
    assert rows(cli_env, "mac")["ovmc2"]["mac"].split("!")[0] == mac2
    assert rows(cli_env, "nodehm")["ovmc2"]["mgt"] == "ovm"


def test_revacuate_and_the_servers_through_their_manager(cluster, cli_env, capsys):
    """ovs1/ovs2 as hypervisor nodes (type ovm, reached through ovmmgr): rpower stat is
    their status in the manager, lsvm lists what runs there, revacuate moves every running
    VM off ovs1 (the manager's other server with room: no vm.migrationdest)."""
    env = cluster
    for host in ("ovs1", "ovs2"):
        assert tablecmds.chtab([f"node={host}", "hypervisor.type=ovm",
                                "hypervisor.mgr=ovmmgr"]) == 0
    assert vmcmds.mkvm(["ovmc1,ovmc2"]) == 0, capsys.readouterr().err
    assert vmcmds.rpower(["ovmc1,ovmc2", "on"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert vmcmds.rpower(["ovs1,ovs2", "stat"]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out == "ovs1: on\novs2: on\n"
    assert vmcmds.lsvm(["ovs1"]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out == "ovs1: ovmc1: on\novs1: ovmc2: on\n"
    assert vmcmds.revacuate(["ovs1"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "ovmc1: migrated to ovs2\n" in out and "ovmc2: migrated to ovs2\n" in out
    assert out.endswith("ovs1: no running VM\n")
    assert {rows(cli_env, "vm")[n]["host"] for n in ("ovmc1", "ovmc2")} == {"ovs2"}
    assert vmcmds.lsvm(["ovs1"]) == 0 and capsys.readouterr().out == ""
    # evacuating ovs2 sends them back to ovs1, the only other server
    assert vmcmds.revacuate(["ovs2"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "ovmc1: migrated to ovs1\n" in out and out.endswith("ovs2: no running VM\n")
    env.manager.servers["ovs1"]["status"] = "Inactive"
    try:
        assert vmcmds.rpower(["ovs1", "stat"]) == 0
        assert capsys.readouterr().out == "ovs1: inactive\n"
    finally:
        env.manager.servers["ovs1"]["status"] = "Active"


def test_revacuate_without_room_says_which_stayed(cluster, cli_env, capsys):
    env = cluster
    for host in ("ovs1", "ovs2"):
        assert tablecmds.chtab([f"node={host}", "hypervisor.type=ovm",
                                "hypervisor.mgr=ovmmgr"]) == 0
    assert tablecmds.chtab(["node=ovmc1", "vm.memory=12000"]) == 0
    assert vmcmds.mkvm(["ovmc1"]) == 0, capsys.readouterr().err
    assert vmcmds.rpower(["ovmc1", "on"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert vmcmds.revacuate(["ovs1"]) == 1                          # ovs2 has 8 GiB
    err = capsys.readouterr().err
    assert "ovmc1: Error: no other server of pool pool1 has room for 12000 MiB\n" in err
    assert "ovs1: Error: still running: ovmc1 (no other server" in err
    [vm] = [v for v in env.manager.vms.values() if v["imgName"] == "ovmc1"]
    assert vm["_server"] == "ovs1" and vm["status"]["status"] == "Running"   # nothing moved
    assert rows(cli_env, "vm")["ovmc1"].get("host") in (None, "")
