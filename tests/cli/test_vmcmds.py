"""VM commands end to end through tables, noderange, policy, dispatch and the fake driver.

The fake driver keeps its hypervisors' state in a JSON file, so what a command did is
checked on the "hypervisor" side as well as in the tables.
"""

from __future__ import annotations

import json

import pytest

from nodemgr.cli import nodecmds, tablecmds, vmcmds
from nodemgr.tables.store import Store


@pytest.fixture
def cluster(cli_env, tmp_path):
    """Two fake hypervisors (hv1 with 8 GiB, hv2 with 16 GiB) and three VMs on hv1."""
    state = tmp_path / "hv.json"
    assert nodecmds.nodeadd(["hv1,hv2", "groups=hypervisor,all", "hypervisor.type=fake",
                             "nodehm.mgt=fake"]) == 0
    assert tablecmds.chtab(["node=hv1", f"hostconn.uri=fake://hv1?state={state}&memory=8192"]) == 0
    assert tablecmds.chtab(["node=hv2", f"hostconn.uri=fake://hv2?state={state}&memory=16384"]) == 0
    assert nodecmds.nodeadd(["vm1-vm3", "groups=vm,all", "nodehm.mgt=fake", "vm.host=hv1",
                             "vm.memory=1024", "vm.cpus=1", "vm.nics=br0",
                             "vm.storage=dir:///var/lib/vms"]) == 0
    return {"state": state, "url": cli_env}


def vms(state):
    return json.loads(state.read_text())["vms"] if state.exists() else {}


def rows(url, name, key="node"):
    return {r[key]: r for r in Store(url).select(name)}


def test_mkvm_creates_and_records_mac_uuid(cluster, capsys):
    assert vmcmds.mkvm(["vm1,vm2", "-s", "2G", "--cpus", "2"]) == 0
    out, err = capsys.readouterr()
    assert out == "" and err == ""  # silent on success, like xCAT
    st = vms(cluster["state"])
    assert set(st) == {"vm1", "vm2"} and st["vm1"]["cpus"] == 2
    macs, vpd, vm = (rows(cluster["url"], t) for t in ("mac", "vpd", "vm"))
    assert macs["vm1"]["mac"].startswith("52:54:00:") and macs["vm1"]["mac"] != macs["vm2"]["mac"]
    assert vpd["vm1"]["uuid"] and vm["vm1"]["cpus"] == "2"


def test_mkvm_existing_without_force_fails_and_keeps_tables(cluster, capsys):
    assert vmcmds.mkvm(["vm1", "-s", "1G"]) == 0
    before = rows(cluster["url"], "mac")
    assert vmcmds.mkvm(["vm1", "-s", "1G"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vm1: Error: ")
    assert rows(cluster["url"], "mac") == before


@pytest.mark.parametrize("argv,needle", [
    (["vm1", "-s", "10X"], "invalid size '10X'"),
    (["vm1", "--cpus", "zero"], "invalid --cpus"),
    (["vm[1-", "-s", "1G"], "noderange"),
    (["nosuchvm"], "Invalid nodes and/or groups in noderange: nosuchvm"),
])
def test_mkvm_bad_input_one_line_nothing_changed(cluster, capsys, argv, needle):
    assert vmcmds.mkvm(argv) == 1
    err = capsys.readouterr().err
    assert needle in err and err.startswith("Error: ") and err.count("\n") <= 2
    assert vms(cluster["state"]) == {} and rows(cluster["url"], "mac") == {}


def test_rpower_strings_and_status(cluster, capsys):
    vmcmds.mkvm(["vm1,vm2"])
    capsys.readouterr()
    assert vmcmds.rpower(["vm1,vm2", "on"]) == 0
    assert capsys.readouterr().out == "vm1: on\nvm2: on\n"
    assert rows(cluster["url"], "nodelist")["vm1"]["status"] == "powering-on"
    assert rows(cluster["url"], "nodelist")["vm1"]["statustime"]
    assert vmcmds.rpower(["vm1", "boot"]) == 0
    assert capsys.readouterr().out == "vm1: on reset\n"
    assert vmcmds.rpower(["vm2", "off"]) == 0
    assert rows(cluster["url"], "nodelist")["vm2"]["status"] == "powering-off"
    assert vmcmds.rpower(["vm2", "boot"]) == 0
    assert capsys.readouterr().out == "vm2: off\nvm2: off on\n"
    assert vmcmds.rpower(["vm", "stat"]) == 0  # vm3 was never created: off, as in xCAT
    assert capsys.readouterr().out == "vm1: on\nvm2: on\nvm3: off\n"


def test_rpower_json_and_unsupported_directive(cluster, capsys):
    vmcmds.mkvm(["vm1"])
    capsys.readouterr()
    assert vmcmds.rpower(["vm1", "stat", "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["node"] == "vm1" and obj["ok"] is True and obj["message"] == "off"
    assert vmcmds.rpower(["vm1", "dance"]) == 1
    assert "Unsupported power directive 'dance'" in capsys.readouterr().err


def test_vm_without_host_stat_off_and_no_plugin_error(cluster, capsys):
    nodecmds.nodeadd(["orphan", "groups=all", "nodehm.mgt=fake"])
    nodecmds.nodeadd(["bare", "groups=all"])
    assert vmcmds.rpower(["orphan,bare", "stat"]) == 1
    out, err = capsys.readouterr()
    assert out == "orphan: off\n"
    assert err == ("bare: Error: Unable to identify plugin for this command, check relevant "
                   "tables: nodehm.power;nodehm.mgt\n")


def test_unreachable_hypervisor_fails_only_its_nodes(cluster, capsys, tmp_path):
    tablecmds.chtab(["node=hv2", "hostconn.uri=fake://hv2?refuse=1"])
    nodecmds.nodech(["vm3", "vm.host=hv2"])
    vmcmds.mkvm(["vm1,vm2"])
    capsys.readouterr()
    assert vmcmds.rpower(["vm1-vm3", "stat"]) == 1
    out, err = capsys.readouterr()
    assert out == "vm1: off\nvm2: off\n"
    assert err.startswith("vm3: Error: ") and err.count("\n") == 1


def test_rmvm_running_refused_then_forced_purge(cluster, capsys):
    vmcmds.mkvm(["vm1", "-s", "1G"])
    vmcmds.rpower(["vm1", "on"])
    capsys.readouterr()
    assert vmcmds.rmvm(["vm1"]) == 1
    assert "Cannot rmvm active guest (use -f argument to force)" in capsys.readouterr().err
    assert "vm1" in vms(cluster["state"])
    assert vmcmds.rmvm(["vm1", "-f", "-p"]) == 0
    assert "vm1" not in vms(cluster["state"])
    assert "vm1" not in rows(cluster["url"], "kvm_nodedata")
    assert "vm1" in rows(cluster["url"], "nodelist")  # the node definition stays


def test_chvm_writes_tables_only_on_success(cluster, capsys):
    vmcmds.mkvm(["vm1"])
    assert vmcmds.chvm(["vm1", "--cpus", "4", "--mem", "2G"]) == 0
    vm = rows(cluster["url"], "vm")["vm1"]
    assert (vm["cpus"], vm["memory"]) == ("4", "2048")
    assert vms(cluster["state"])["vm1"]["cpus"] == 4
    vmcmds.rpower(["vm1", "on"])
    capsys.readouterr()
    assert vmcmds.chvm(["vm1", "--cpus", "8"]) == 1
    assert "Hot add of cpus not supported" in capsys.readouterr().err
    assert rows(cluster["url"], "vm")["vm1"]["cpus"] == "4"
    assert vmcmds.chvm(["vm1", "-a", "1G", "-p", "vdb"]) == 1
    assert vmcmds.chvm(["vm1", "--resize", "vda"]) == 1
    assert "invalid --resize" in capsys.readouterr().err


def test_chvm_d_detaches_and_bad_combinations_are_refused(cluster, capsys):
    assert vmcmds.mkvm(["vm1", "-s", "1G,1G"]) == 0
    assert vmcmds.chvm(["vm1", "-d", "vdb"]) == 0, capsys.readouterr().err
    assert [d["dev"] for d in vms(cluster["state"])["vm1"]["disks"]
            if d["device"] == "disk"] == ["vda"]
    for argv, needle in ((["vm1", "-d", "vda", "-p", "vda"], "vda: give a disk to -d or to -p"),
                         (["vm1", "-d", "vda", "-a", "1G"], "-a and -d cannot be used")):
        assert vmcmds.chvm(argv) == 1
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1, err
    assert [d["dev"] for d in vms(cluster["state"])["vm1"]["disks"]
            if d["device"] == "disk"] == ["vda"]


def test_lsvm_host_lists_every_vm_and_vm_details(cluster, capsys):
    vmcmds.mkvm(["vm1,vm2"])
    vmcmds.rpower(["vm2", "on"])
    capsys.readouterr()
    assert vmcmds.lsvm(["hv1"]) == 0
    assert capsys.readouterr().out == "hv1: vm1: off\nhv1: vm2: on\n"
    assert vmcmds.lsvm(["vm2"]) == 0
    out = capsys.readouterr().out
    assert "vm2: Host: hv1\n" in out and "vm2: State: 1 (running)" in out


def test_rmigrate_picks_most_free_memory_and_updates_host(cluster, capsys):
    nodecmds.nodeadd(["hv3", "groups=hypervisor,all", "hypervisor.type=fake", "nodehm.mgt=fake"])
    tablecmds.chtab(["node=hv3", "hostconn.uri=fake://hv3?refuse=1"])
    nodecmds.nodech(["vm1", "vm.migrationdest=hypervisor"])
    vmcmds.mkvm(["vm1"])
    vmcmds.rpower(["vm1", "on"])
    capsys.readouterr()
    assert vmcmds.rmigrate(["vm1"]) == 0
    assert capsys.readouterr().out == "vm1: migrated to hv2\n"
    assert rows(cluster["url"], "vm")["vm1"]["host"] == "hv2"
    assert vmcmds.rmigrate(["vm1", "hv2"]) == 0
    assert capsys.readouterr().out == "vm1: Guest is already on host hv2\n"


def test_rmigrate_failure_keeps_vm_host(cluster, capsys):
    vmcmds.mkvm(["vm1"])
    tablecmds.chtab(["node=hv2", "hostconn.uri=fake://hv2?refuse=1"])
    capsys.readouterr()
    assert vmcmds.rmigrate(["vm1", "hv2"]) == 1
    assert rows(cluster["url"], "vm")["vm1"]["host"] == "hv1"


def test_clonevm_master_then_thin_clones(cluster, capsys):
    vmcmds.mkvm(["vm1", "-s", "1G"])
    assert vmcmds.clonevm(["vm1", "-t", "gold"]) == 0
    master = rows(cluster["url"], "vmmaster", "name")["gold"]
    assert master["nics"] == "br0" and master["storage"] == "dir:///var/lib/vms"
    assert rows(cluster["url"], "vm")["vm1"]["master"] == "gold"
    assert vmcmds.clonevm(["vm2,vm3", "-b", "gold"]) == 0
    st = vms(cluster["state"])
    assert {"vm2", "vm3"} <= set(st)
    vm = rows(cluster["url"], "vm")
    assert vm["vm2"]["master"] == "gold" and rows(cluster["url"], "mac")["vm3"]["mac"]
    assert vmcmds.clonevm(["vm2", "-b", "nosuch"]) == 1
    assert "no master named 'nosuch'" in capsys.readouterr().err


def test_policy_denies_without_matching_row(cluster, capsys):
    tablecmds.chtab(["-d", "priority=1", "policy"])
    assert vmcmds.rpower(["vm1", "stat"]) == 1
    assert capsys.readouterr().err == "Error: Permission denied for request\n"


def test_help_is_man_page_grade(capsys):
    for cmd in (vmcmds.mkvm, vmcmds.rmvm, vmcmds.chvm, vmcmds.lsvm, vmcmds.clonevm,
                vmcmds.rpower, vmcmds.rmigrate, vmcmds.revacuate, vmcmds.rvitals, vmcmds.rinv,
                vmcmds.rscan, vmcmds.rsetboot, vmcmds.rcons, vmcmds.getcons,
                vmcmds.getrvidparms):
        with pytest.raises(SystemExit) as exc:
            cmd(["--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert "Usage:" in out and "examples:" in out and "exit status:" in out
        # what each family can do comes from the drivers' traits
        assert "hypervisor families (nodehm.mgt):" in out and "fake (tests): yes" in out


def test_changing_commands_are_audited_reads_are_not(cluster, capsys):
    vmcmds.mkvm(["vm1"])
    vmcmds.rpower(["vm1", "stat"])
    vmcmds.lsvm(["vm1"])
    tablecmds.chtab(["-d", "priority=1", "policy"])
    vmcmds.rpower(["vm1", "on"])
    audit = Store(cluster["url"]).select("auditlog")
    assert [(r["command"], r["noderange"], r["status"]) for r in audit] == [
        ("mkvm", "vm1", "Allowed"), ("rpower", "vm1", "Denied")]


def test_rmigrate_force_records_vm_on_target_when_source_is_dead(cluster, capsys):
    vmcmds.mkvm(["vm1"])
    tablecmds.chtab(["node=hv1", "hostconn.uri=fake://hv1?refuse=1"])
    capsys.readouterr()
    assert vmcmds.rmigrate(["vm1", "hv2"]) == 1
    assert rows(cluster["url"], "vm")["vm1"]["host"] == "hv1"
    assert capsys.readouterr().err.startswith("vm1: Error: ")
    assert vmcmds.rmigrate(["vm1", "hv2", "-f"]) == 0
    assert capsys.readouterr().out == "vm1: migrated to hv2\n"
    assert rows(cluster["url"], "vm")["vm1"]["host"] == "hv2"


def test_lsvm_of_a_node_that_is_neither_vm_nor_hypervisor(cluster, capsys):
    nodecmds.nodeadd(["bare", "groups=all"])
    nodecmds.nodeadd(["lost", "groups=all", "nodehm.mgt=fake"])
    assert vmcmds.lsvm(["bare,lost"]) == 1
    assert capsys.readouterr().err == (
        "bare: Error: Unable to identify plugin for this command, check relevant tables: "
        "nodehm.power;nodehm.mgt\nlost: Error: vm.host is not set\n")


def test_mkvm_without_host_adopts_one_from_migrationdest(cluster, capsys):
    nodecmds.nodech(["vm1", "vm.host=", "vm.migrationdest=hypervisor"])
    nodecmds.nodeadd(["vm9", "groups=all", "nodehm.mgt=fake"])
    assert vmcmds.mkvm(["vm1,vm9"]) == 1
    assert capsys.readouterr().err == (
        "vm9: Error: vm.host is not set (and no vm.migrationdest to choose from)\n")
    assert rows(cluster["url"], "vm")["vm1"]["host"] == "hv2"  # 16 GiB free beats 8 GiB
    assert vms(cluster["state"])["vm1"]["host"] == "hv2"
