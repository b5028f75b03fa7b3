"""The fake driver: xCAT/libvirt semantics and messages, latency/hang/refuse, shared state."""

from __future__ import annotations

import json
import threading
import time

import pytest

from nodemgr.plugins import fake
from nodemgr.plugins.base import (
    DiskSpec,
    Endpoint,
    InvalidState,
    NicSpec,
    NotFound,
    Unreachable,
    VmChange,
    VmSpec,
)
from nodemgr.plugins.fake import FakeDriver, parse_uri, seed_state
from nodemgr.vm.writeback import columns


@pytest.fixture
def state(tmp_path):
    return str(tmp_path / "state.json")


def drv(state: str, host: str = "hyp1", query: str = "", **options: str) -> FakeDriver:
    ep = Endpoint("fake", f"fake://{host}?state={state}{'&' + query if query else ''}", host,
                  options=tuple(options.items()))
    d = FakeDriver(ep, timeout=5)
    d.connect()
    return d


def one(it):
    results = list(it)
    assert len(results) == 1
    return results[0]


def vm(name: str, **kw) -> VmSpec:
    return VmSpec(name, **kw)


# -- settings ---------------------------------------------------------------------------


def test_parse_uri_forms():
    assert parse_uri("fake:///var/tmp/s.json") == ("", "/var/tmp/s.json", {})
    assert parse_uri("fake://h1?state=/x/y.json&latency=0.05&hang=1") == (
        "h1", "", {"state": "/x/y.json", "latency": "0.05", "hang": "1"})
    assert parse_uri("fake://h1?state=/a%20b.json")[2]["state"] == "/a b.json"


def test_settings_host_path_and_options_win():
    s = fake.Settings(Endpoint("fake", "fake:///p/s.json", host="hostA"))
    assert (s.host, s.state, s.latency, s.hang, s.refuse) == ("hostA", "/p/s.json", 0.0, "", False)
    s = fake.Settings(Endpoint("fake", "fake://h9?latency=0.5&hang=1",
                               options=(("latency", "0.01"), ("refuse", "1"))))
    assert (s.host, s.latency, s.hang, s.refuse) == ("h9", 0.01, "connect", True)
    assert fake.Settings(Endpoint("fake", "fake://")).host == "localhost"


# -- power ---------------------------------------------------------------------------------


def test_power_state_machine_and_xcat_strings(state):
    d = drv(state)
    bare = one(d.power([vm("v1")], "on"))      # undefined and no stored definition
    assert (bare.ok, bare.message) == (False, "Cannot find vm v1 on hyp1")
    p = lambda action: one(d.power([vm("v1", definition="<domain/>")], action))  # noqa: E731
    assert p("stat").message == "off"          # undefined domain reads as off (xCAT)
    assert p("on").message == "on"             # defined from the stored definition
    assert p("on").message == "on"             # already on: no-op
    assert p("stat").message == "on"
    r = p("boot")
    assert (r.message, r.data) == ("on reset", {"state": "on", "previous": "on"})
    assert p("off").message == "off"
    assert p("reset").message == "off"         # reset of an off VM leaves it off
    assert p("boot").message == "off on"
    assert p("reset").message == "reset"
    assert p("suspend").message == "suspended"
    assert p("status").message == "suspended"
    assert p("resume").message == "on"
    assert p("softoff").message == "off"
    r = p("suspend")
    assert not r.ok and r.message == "Requested operation is not valid: domain is not running"
    r = p("resume")
    assert not r.ok and "domain is not paused" in r.message
    r = p("frobnicate")
    assert not r.ok and r.message == "Unsupported power directive 'frobnicate'"


def test_power_batch_keeps_order_and_isolates_failures(state):
    seed_state(state, "hyp1", ["a", "c"], state="off")
    seed_state(state, "hyp1", ["b"], state="on")
    d = drv(state)
    results = list(d.power([vm("c"), vm("b"), vm("a")], "suspend"))
    assert [r.node for r in results] == ["c", "b", "a"]
    assert [r.ok for r in results] == [False, True, False]


def test_vms_of_another_host_are_not_seen(state):
    seed_state(state, "hyp2", ["v1"], state="on")
    d = drv(state, "hyp1")
    assert one(d.power([vm("v1")], "stat")).message == "off"
    assert d.list_vms() == []
    assert one(drv(state, "hyp2").power([vm("v1")], "stat")).message == "on"


# -- create / remove ---------------------------------------------------------------------


def test_create_defines_an_off_vm_with_disks(state):
    d = drv(state)
    spec = vm("v1", memory_mib=2048, cpus=2,
              disks=[DiskSpec("vda", "dir:///vms", size_mib=20480)],
              nics=[NicSpec("br0", "42:00:0a:00:00:05")])
    r = one(d.create([spec]))
    assert r.ok and r.message == ""            # KVM mkvm prints nothing on success
    assert r.facts.host == "hyp1" and r.facts.uuid and not r.updates
    info = one(d.describe([vm("v1")]))
    assert info.message.splitlines() == [
        "Id: -", "Host: hyp1", "OS: hvm", "Memory: 2097152", "CPU: 2", "State: 5 (shut off)",
        "Disk file: /vms/v1.vda.qcow2"]
    assert one(d.power([vm("v1")], "stat")).message == "off"
    # the state really is in the file
    with open(state, encoding="utf-8") as fh:
        assert json.load(fh)["vms"]["v1"]["disks"][0]["size_mib"] == 20480


def test_create_conflicting_storage_needs_force(state):
    d = drv(state)
    spec = vm("v1", disks=[DiskSpec("vda", "dir:///vms", size_mib=1024)])
    assert one(d.create([spec])).ok
    r = one(d.create([spec]))
    assert not r.ok
    assert r.message == ("Storage creation request conflicts with existing file(s) "
                         "/vms/v1.vda.qcow2. To force remove the existing storage file, "
                         "rerun mkvm with the -f option.")
    assert one(d.create([spec], force=True)).ok
    r = one(d.create([vm("v2", disks=[DiskSpec("sda", "phy:/dev/sdx", size_mib=5)])]))
    assert r.message == "mkvm management of block device storage not implemented"


def test_remove_running_needs_force(state):
    seed_state(state, "hyp1", ["v1"], state="on")
    d = drv(state)
    r = one(d.remove([vm("v1")]))
    assert not r.ok and r.message == "Cannot rmvm active guest (use -f argument to force)"
    assert one(d.remove([vm("v1")], force=True)).ok
    r = one(d.remove([vm("v1")]))
    assert not r.ok and r.message == "Cannot remove guest vm, no such vm found"


def test_remove_purge_leaves_raw_disks(state):
    d = drv(state)
    one(d.create([vm("v1", disks=[DiskSpec("vda", "dir:///vms", size_mib=1),
                                  DiskSpec("vdb", "dir:///vms", size_mib=1, format="raw")])]))
    r = one(d.remove([vm("v1")], purge=True))
    assert r.ok
    assert r.message == "Not purging raw or block storage device: /vms/v1.vdb.raw"
    assert r.data["purged"] == ["/vms/v1.vda.qcow2"]


# -- change --------------------------------------------------------------------------------


def test_change_cpus_memory_disks(state):
    d = drv(state)
    one(d.create([vm("v1", disks=[DiskSpec("vda", "dir:///a", size_mib=1024)])]))
    spec = vm("v1", storage=["dir:///a", "dir:///b"])
    r = one(d.change([spec], VmChange(cpus=4, memory_mib=4096, add_disks_mib=[10, 20])))
    assert r.ok, r.message
    lines = one(d.describe([vm("v1")])).message.splitlines()
    assert "CPU: 4" in lines and "Memory: 4194304" in lines
    # new disks skip used names and "c" (the cdrom), in the rightmost storage location
    assert lines[-2:] == ["Disk file: /b/v1.vdb.qcow2", "Disk file: /b/v1.vdd.qcow2"]
    r = one(d.change([spec], VmChange(resize={"vda": 512})))
    assert not r.ok
    assert r.message == "Resizing disk vda failed, qcow2 doesn't support shrinking images yet"
    assert one(d.change([spec], VmChange(resize={"vda": 4096}))).message == "Resized disk vda"
    r = one(d.change([spec], VmChange(remove_disks=["vdz"])))
    assert not r.ok and r.message == "Unable to find disk vdz"


def test_change_is_all_or_nothing_and_refuses_hot_cpu(state):
    seed_state(state, "hyp1", ["v1"], state="on", memory_mib=512, cpus=1)
    d = drv(state)
    r = one(d.change([vm("v1")], VmChange(memory_mib=1024, add_disks_mib=[10])))
    assert not r.ok and "vm.storage has no value" in r.message
    assert "Memory: 524288" in one(d.describe([vm("v1")])).message  # memory not applied
    r = one(d.change([vm("v1")], VmChange(cpus=2)))
    assert r.message == ("Hot add of cpus not supported (VM must be powered down to "
                         "successfully change)")
    r = one(d.change([vm("v1", storage=["dir:///x=ide"])], VmChange(add_disks_mib=[1])))
    assert r.message == "VM must be powered off to add IDE drives"
    r = one(d.change([vm("nope")], VmChange(cpus=2)))
    assert r.message == "Domain not found: no domain with matching name 'nope'"


def test_change_cdrom_insert_and_eject(state):
    seed_state(state, "hyp1", ["v1"], state="off")
    d = drv(state)
    assert one(d.change([vm("v1")], VmChange(cdrom="/iso/x.iso"))).ok
    with fake.open_state(state) as st:
        assert st["vms"]["v1"]["disks"][-1]["path"] == "/iso/x.iso"
    assert one(d.change([vm("v1")], VmChange(eject=True))).ok
    with fake.open_state(state) as st:
        assert st["vms"]["v1"]["disks"][-1]["path"] is None


# -- queries ---------------------------------------------------------------------------------


def test_list_vms_includes_off_ones(state):
    seed_state(state, "hyp1", ["a"], state="on")
    seed_state(state, "hyp1", ["b"], state="off")
    assert [(v.name, v.state) for v in drv(state).list_vms()] == [("a", "on"), ("b", "off")]


def test_describe_unknown(state):
    r = one(drv(state).describe([vm("zz")]))
    assert not r.ok and r.message == "Could not get any information about specified object"


def test_stats_addresses_free_memory(state):
    seed_state(state, "hyp1", ["a"], state="on", memory_mib=1024)
    seed_state(state, "hyp1", ["b"], state="off", memory_mib=4096)
    d = drv(state, query="memory=8192")
    s = one(d.stats([vm("a")]))
    assert s.ok and s.data["memory_mib"] == 1024 and s.data["cpu_time_s"] >= 0
    assert one(d.stats([vm("b")])).data["memory_mib"] == 0
    assert d.host_free_memory_mib() == 8192 - 1024
    one(d.create([vm("c", nics=[NicSpec("br0", "42:00:0a:01:02:03")])]))
    one(d.power([vm("c")], "on"))
    assert one(d.addresses([vm("c")])).data["addresses"] == ["10.1.2.4"]
    assert one(d.addresses([vm("b")])).data["addresses"] == []
    assert not one(d.addresses([vm("zz")])).ok


# -- migrate, masters -------------------------------------------------------------------------


def test_migrate_within_one_file_and_across_files(state, tmp_path):
    seed_state(state, "hyp1", ["a", "b"], state="on", memory_mib=1024)
    d = drv(state, "hyp1")
    same = Endpoint("fake", f"fake://hyp2?state={state}", "hyp2")
    r = one(d.migrate([vm("a")], same))
    assert (r.ok, r.message, columns(r.facts)) == (True, "migrated to hyp2", {"vm.host": "hyp2"})
    assert one(drv(state, "hyp2").power([vm("a")], "stat")).message == "on"
    other = str(tmp_path / "other.json")
    r = one(d.migrate([vm("b")], Endpoint("fake", f"fake://hyp3?state={other}", "hyp3")))
    assert r.ok
    assert one(drv(other, "hyp3").power([vm("b")], "stat")).message == "on"
    assert one(d.power([vm("b")], "stat")).message == "off"   # gone from the source
    r = one(drv(state, "hyp2").migrate([vm("a")], same))
    assert r.ok and r.message == "Guest is already on host hyp2"


def test_migrate_failures(state):
    seed_state(state, "hyp1", ["big"], state="on", memory_mib=4096)
    d = drv(state)
    r = one(d.migrate([vm("big")], Endpoint("fake", f"fake://hyp2?state={state}&memory=1024",
                                             "hyp2")))
    assert not r.ok and r.message.startswith("Failed migration of big from hyp1 to hyp2: ")
    r = one(d.migrate([vm("big")], Endpoint("fake", "fake://hyp4?refuse=1", "hyp4")))
    assert not r.ok and "Cannot communicate via fake to hyp4" in r.message


def test_make_master_and_clone(state):
    d = drv(state)
    one(d.create([vm("gold", memory_mib=2048, disks=[DiskSpec("vda", "dir:///vms",
                                                              size_mib=100)])]))
    r = d.make_master(vm("gold"), "m1")
    assert r.ok and columns(r.facts) == {"vm.master": "m1"}
    assert r.message == ("Cloning /vms/gold.vda.qcow2 (currently is 100 MB and has a "
                         "capacity of 100 MB)")
    definition = r.facts.master_definition
    with pytest.raises(InvalidState):
        d.make_master(vm("gold"), "m1")
    results = list(d.clone_from_master([vm("c1"), vm("c2")], "m1", None))
    assert all(x.ok for x in results) and results[0].facts.master == "m1"
    with fake.open_state(state) as st:
        disk = st["vms"]["c1"]["disks"][0]
        assert (disk["path"], disk["backing"]) == ("/vms/c1.vda.qcow2", "/vms/m1.vda.qcow2")
        assert st["vms"]["c1"]["memory_mib"] == 2048
    # a master known only by its stored definition (another state file)
    d2 = drv(state + ".2")
    assert one(d2.clone_from_master([vm("c3")], "m1", definition, detached=True)).ok
    r = one(d2.clone_from_master([vm("c4")], "nope", None))
    assert not r.ok and r.message == "Master nope not found"
    with pytest.raises(NotFound):
        d.make_master(vm("ghost"), "m2")


# -- latency, hang, refuse, sharing -------------------------------------------------------------


def test_latency_is_per_round_trip_not_per_vm(state):
    names = [f"v{i}" for i in range(50)]
    seed_state(state, "hyp1", names)
    t0 = time.monotonic()
    d = drv(state, query="latency=0.1")
    results = list(d.power([vm(n) for n in names], "stat"))
    elapsed = time.monotonic() - t0
    assert [r.message for r in results] == ["on"] * 50
    assert d.round_trips == 2                     # connect + one stat of all 50
    assert 0.2 <= elapsed < 0.5


def test_hang_never_connects_and_refuse_fails_fast(state):
    d = FakeDriver(Endpoint("fake", "fake://dead?hang=1", "dead"))
    t = threading.Thread(target=d.connect, daemon=True)
    t.start()
    t.join(0.3)
    assert t.is_alive()                           # still waiting for an answer
    d = FakeDriver(Endpoint("fake", "fake://gone?refuse=1&latency=5", "gone"))
    t0 = time.monotonic()
    with pytest.raises(Unreachable, match="Cannot communicate via fake to gone"):
        d.connect()
    assert time.monotonic() - t0 < 0.5


def test_hang_in_a_named_call(state):
    d = drv(state, query="hang=power")
    t = threading.Thread(target=lambda: list(d.power([vm("a")], "stat")), daemon=True)
    t.start()
    t.join(0.3)
    assert t.is_alive()
    assert list(d.stats([vm("a")]))               # other calls answer


def test_parallel_writers_lose_nothing(state):
    """Threads each creating VMs in one file: flock makes read-modify-write atomic."""

    def work(k: int) -> None:
        d = drv(state, f"hyp{k % 3}")
        for i in range(20):
            assert one(d.create([vm(f"t{k}-{i}")])).ok

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with fake.open_state(state) as st:
        assert len(st["vms"]) == 160
        assert len({v["id"] for v in st["vms"].values()}) == 160


def test_memory_backend_without_state_file(monkeypatch):
    monkeypatch.setattr(fake, "_memory", {})
    d = FakeDriver(Endpoint("fake", "fake://m1", "m1"))
    d.connect()
    one(d.create([vm("x")]))
    assert one(FakeDriver(Endpoint("fake", "fake://m1", "m1")).power([vm("x")], "on")).message == "on"


def test_corrupt_state_file_is_a_clear_error(state):
    with open(state, "w", encoding="utf-8") as fh:
        fh.write("{not json")
    results = None
    with pytest.raises(Exception, match="is not JSON"):
        results = list(drv(state).power([vm("a")], "stat"))
    assert results is None
