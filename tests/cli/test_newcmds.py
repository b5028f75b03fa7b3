"""rvitals, rinv, rscan, revacuate, rsetboot, rcons, getcons, getrvidparms end to end through
the tables, dispatch, the operations layer and the fake driver (the families' own tests
drive the same commands against libvirtd, the Xen double and the simulators)."""

from __future__ import annotations

import io
import json

import pytest

from nodemgr.cli import console, nodecmds, tablecmds, vmcmds
from nodemgr.plugins.base import ConsoleStream
from nodemgr.tables.store import Store


@pytest.fixture
def cluster(cli_env, tmp_path):
    """hv1 (8 GiB), hv2 (16 GiB), hv3 (2 GiB) fake hypervisors; vm1-vm3 on hv1."""
    state = tmp_path / "hv.json"
    assert nodecmds.nodeadd(["hv1-hv3", "groups=hypervisor,all", "hypervisor.type=fake",
                             "nodehm.mgt=fake"]) == 0
    for h, mem in (("hv1", 8192), ("hv2", 16384), ("hv3", 2048)):
        assert tablecmds.chtab([f"node={h}",
                                f"hostconn.uri=fake://{h}?state={state}&memory={mem}"]) == 0
    assert nodecmds.nodeadd(["vm1-vm3", "groups=vm,all", "nodehm.mgt=fake", "vm.host=hv1",
                             "vm.memory=1024", "vm.cpus=1", "vm.nics=br0",
                             "vm.storage=dir:///var/lib/vms"]) == 0
    return {"state": state, "url": cli_env}


def vms(state):
    return json.loads(state.read_text())["vms"] if state.exists() else {}


def rows(url, name, key="node"):
    return {r[key]: r for r in Store(url).select(name)}


def lines(text):
    return [x for x in text.splitlines() if x]


# -- rvitals ---------------------------------------------------------------------------------


def test_rvitals_cpu_and_memory_with_units_and_says_what_is_missing(cluster, capsys):
    vmcmds.mkvm(["vm1,vm2"])
    vmcmds.rpower(["vm1", "on"])
    capsys.readouterr()
    assert vmcmds.rvitals(["vm1", "--interval", "0.3"]) == 0
    out = capsys.readouterr().out
    cpu = next(x for x in lines(out) if x.startswith("vm1: CPU: "))
    assert cpu.endswith("% over 0.3 s, 1 vCPU")
    assert 50 <= float(cpu.split()[2]) <= 110  # a running fake VM keeps its vCPU busy
    assert "vm1: Memory: 1024 MiB used of 1024 MiB available" in out
    assert "vm1: Disk: not available from this node's hypervisor family" in out


def test_rvitals_items_and_nothing_given_fails(cluster, capsys):
    vmcmds.mkvm(["vm1"])
    capsys.readouterr()
    assert vmcmds.rvitals(["vm1", "mem", "--interval", "0.1"]) == 0
    assert capsys.readouterr().out == "vm1: Memory: 0 MiB used of 0 MiB available\n"
    # the fake gives no disk or net figures: asking for only those gives nothing -> exit 1
    assert vmcmds.rvitals(["vm1", "disk", "net", "--interval", "0.1", "--json"]) == 1
    obj = json.loads(capsys.readouterr().out)
    assert obj["ok"] is False and obj["error"] == "Unsupported"
    assert "none of disk, net is available" in obj["message"]


@pytest.mark.parametrize("argv,needle", [
    (["vm1", "cpu", "temperature"], "unknown vitals item 'temperature'"),
    (["vm1", "--interval", "0"], "invalid --interval"),
])
def test_rvitals_bad_input_one_line(cluster, capsys, argv, needle):
    assert vmcmds.rvitals(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and needle in err


# -- rinv ------------------------------------------------------------------------------------


def test_rinv_inventory_with_address_sources(cluster, capsys):
    vmcmds.mkvm(["vm1", "-s", "2G"])
    vmcmds.rpower(["vm1", "on"])
    capsys.readouterr()
    assert vmcmds.rinv(["vm1"]) == 0
    out = capsys.readouterr().out
    uuid = rows(cluster["url"], "vpd")["vm1"]["uuid"]
    mac = rows(cluster["url"], "mac")["vm1"]["mac"]
    assert f"vm1: UUID: {uuid}" in out and "vm1: CPUs: 1" in out
    assert "vm1: Memory: 1024 MiB" in out
    assert "vm1: Disk vda: 2048 MiB /var/lib/vms/vm1.vda.qcow2 (qcow2)" in out
    assert f"vm1: NIC 1: {mac} br0 (virtio)" in out
    ip = next(x for x in lines(out) if x.startswith("vm1: IP: "))
    assert ip.endswith("(lease)")
    assert vmcmds.rinv(["vm1", "ip", "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["inventory"]["addresses"][0]["source"] == "lease"


def test_rinv_unknown_item_and_missing_vm(cluster, capsys):
    assert vmcmds.rinv(["vm1", "bios"]) == 1
    assert "unknown inventory item 'bios'" in capsys.readouterr().err
    assert vmcmds.rinv(["vm2"]) == 1  # never created
    err = capsys.readouterr().err
    assert err.startswith("vm2: Error: ") and err.count("\n") == 1


# -- rsetboot --------------------------------------------------------------------------------


def test_rsetboot_sets_next_boot_device(cluster, capsys):
    vmcmds.mkvm(["vm1,vm2"])
    capsys.readouterr()
    assert vmcmds.rsetboot(["vm1,vm2", "hd"]) == 0
    assert capsys.readouterr().out == "vm1: hd\nvm2: hd\n"
    assert vms(cluster["state"])["vm1"]["bootorder"] == ["hd", "network"]
    assert vmcmds.rsetboot(["vm1", "default"]) == 0
    assert vms(cluster["state"])["vm1"]["bootorder"] == ["network", "hd"]  # vm.bootorder


def test_rsetboot_unknown_device_changes_nothing(cluster, capsys):
    vmcmds.mkvm(["vm1"])
    before = vms(cluster["state"])
    assert vmcmds.rsetboot(["vm1", "floppy"]) == 1
    assert "unknown boot device 'floppy' (one of net, hd, cd, default)" in capsys.readouterr().err
    assert vms(cluster["state"]) == before


# -- rscan -----------------------------------------------------------------------------------


def test_rscan_lists_and_writes_only_unknown_vms(cluster, capsys):
    from nodemgr.plugins.fake import seed_state

    vmcmds.mkvm(["vm1"])
    seed_state(str(cluster["state"]), "hv1", ["orphan1"], state="on")
    capsys.readouterr()
    assert vmcmds.rscan(["hv1"]) == 0
    out = lines(capsys.readouterr().out)
    assert out[0].split() == ["hv1:", "type", "name", "hypervisor", "id", "cpu", "memory",
                              "nic", "disk"]
    assert any(x.split()[1:4] == ["fake", "orphan1", "hv1"] for x in out)
    assert "orphan1" not in rows(cluster["url"], "nodelist")  # no -w: nothing written
    before_vm1 = rows(cluster["url"], "vm")["vm1"]
    assert vmcmds.rscan(["hv1", "-w"]) == 0
    assert "orphan1: defined from hv1" in capsys.readouterr().out
    assert rows(cluster["url"], "vm")["orphan1"]["host"] == "hv1"
    assert rows(cluster["url"], "nodehm")["orphan1"]["mgt"] == "fake"
    assert "vm" in rows(cluster["url"], "nodelist")["orphan1"]["groups"]
    assert rows(cluster["url"], "vm")["vm1"] == before_vm1  # known VMs left alone


def test_rscan_name_collision_with_another_hosts_node_is_refused(cluster, capsys):
    from nodemgr.plugins.fake import seed_state

    seed_state(str(cluster["state"]), "hv2", ["vm3"], state="on")  # vm3 is hv1's node
    capsys.readouterr()
    assert vmcmds.rscan(["hv2", "-w"]) == 1
    err = capsys.readouterr().err
    assert "vm3: Error: node vm3 already exists on hv1 (vm.host)" in err
    assert rows(cluster["url"], "vm")["vm3"]["host"] == "hv1"


def test_rscan_stanza_round_trips_into_mkdef(cluster, capsys, monkeypatch):
    from nodemgr.cli import defcmds
    from nodemgr.plugins.fake import seed_state

    seed_state(str(cluster["state"]), "hv2", ["new1"], state="off")
    capsys.readouterr()
    assert vmcmds.rscan(["hv2", "-z"]) == 0
    stanza = capsys.readouterr().out
    assert "new1:\n    objtype=node\n" in stanza and "    vmhost=hv2" in stanza
    assert "new1" not in rows(cluster["url"], "nodelist")
    monkeypatch.setattr("sys.stdin", io.StringIO(stanza))
    assert defcmds.mkdef(["-z"]) == 0
    assert rows(cluster["url"], "vm")["new1"]["host"] == "hv2"
    assert rows(cluster["url"], "nodehm")["new1"]["mgt"] == "fake"


def test_rscan_of_a_vm_is_refused(cluster, capsys):
    assert vmcmds.rscan(["vm1"]) == 1
    assert "vm1: Error: vm1 is not a hypervisor or manager" in capsys.readouterr().err


# -- revacuate -------------------------------------------------------------------------------


def test_revacuate_moves_running_vms_by_free_memory(cluster, capsys):
    assert tablecmds.chtab(["node=vm1", "vm.migrationdest=hv2,hv3"]) == 0
    assert tablecmds.chtab(["node=vm2", "vm.migrationdest=hv2,hv3"]) == 0
    vmcmds.mkvm(["vm1,vm2,vm3"])
    vmcmds.rpower(["vm1,vm2", "on"])  # vm3 stays off: stopped VMs stay defined
    capsys.readouterr()
    assert vmcmds.revacuate(["hv1"]) == 0
    out = capsys.readouterr().out
    assert "vm1: migrated to hv2" in out and "vm2: migrated to hv2" in out
    assert out.endswith("hv1: no running VM\n")
    st = vms(cluster["state"])
    assert st["vm1"]["host"] == "hv2" and st["vm3"]["host"] == "hv1"
    assert rows(cluster["url"], "vm")["vm1"]["host"] == "hv2"


def test_revacuate_without_room_says_which_stayed(cluster, capsys):
    assert tablecmds.chtab(["node=vm1", "vm.migrationdest=hv3", "vm.memory=4096"]) == 0
    vmcmds.mkvm(["vm1,vm2"])
    vmcmds.rpower(["vm1,vm2", "on"])  # vm2 has no vm.migrationdest
    capsys.readouterr()
    assert vmcmds.revacuate(["hv1"]) == 1
    err = capsys.readouterr().err
    assert "vm1: Error: no destination with room for 4096 MiB in vm.migrationdest" in err
    assert "vm2: Error: vm.migrationdest is not set (no other host to move it to)" in err
    assert "hv1: Error: still running: vm1 (no destination with room" in err
    assert vms(cluster["state"])["vm1"]["host"] == "hv1"


# -- consoles --------------------------------------------------------------------------------


def test_getcons_and_getrvidparms(cluster, capsys):
    vmcmds.mkvm(["vm1"])
    capsys.readouterr()
    assert vmcmds.getcons(["vm1"]) == 0
    assert capsys.readouterr().out == ("vm1: method: serial\nvm1: server: hv1\n"
                                       "vm1: command: fake-console vm1\n")
    assert vmcmds.getrvidparms(["vm1"]) == 1  # a serial console is no remote display
    assert "vm1: Error: no remote display, only a serial console" in capsys.readouterr().err


def test_rcons_copies_the_guest_output_and_leaves_on_timeout(cluster, capsys, monkeypatch):
    vmcmds.mkvm(["vm1"])
    vmcmds.rpower(["vm1", "on"])
    capsys.readouterr()
    out = io.BytesIO()

    class Stdout:
        buffer = out

    monkeypatch.setattr("sys.stdout", Stdout)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert vmcmds.rcons(["vm1", "--timeout", "0.3"]) == 0
    assert b"SeaBIOS (fake) vm1\r\nBooting from Network...\r\n" in out.getvalue()


def test_rcons_needs_one_node_and_a_console(cluster, capsys):
    assert vmcmds.rcons(["vm1,vm2"]) == 1
    assert "rcons opens the console of exactly one node" in capsys.readouterr().err
    assert tablecmds.chtab(["node=hv1", "hostconn.options=console=none"]) == 0
    vmcmds.mkvm(["vm1"])
    capsys.readouterr()
    assert vmcmds.rcons(["vm1", "--timeout", "0.1"]) == 1
    err = capsys.readouterr().err
    assert err == "Error: vm1 has no serial console\n"


class _Echo(ConsoleStream):
    def __init__(self):
        self.sent, self.left = b"", [b"hello\r\n"]

    def read(self, timeout):
        return self.left.pop(0) if self.left else None

    def write(self, data):
        self.sent += data


def test_console_attach_sends_stdin_and_stops_when_the_console_closes(tmp_path):
    stdin = (tmp_path / "in").open("w+b")
    stdin.write(b"root\n")
    stdin.seek(0)
    out = io.BytesIO()
    s = _Echo()
    assert console.attach(s, stdin=stdin, stdout=out) == 0
    assert out.getvalue() == b"hello\r\n" and s.sent == b"root\n"


def test_verbose_prints_each_driver_call_without_secrets(cluster, capsys):
    from nodemgr.cli import common

    assert tablecmds.chtab(["key=fake", "passwd.username=root", "passwd.password=s3cret"]) == 0
    vmcmds.mkvm(["vm1"])
    capsys.readouterr()
    try:
        assert vmcmds.rpower(["vm1,vm2", "stat", "-V"]) == 0
    finally:
        common.set_verbose(False)
    out, err = capsys.readouterr()
    assert out == "vm1: off\nvm2: off\n"
    assert "fake hv1: connect()" in err and "fake hv1: power([vm1, vm2], 'stat')" in err
    assert "s3cret" not in err
