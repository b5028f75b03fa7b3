"""The Oracle VM driver against the simulated OVM Manager (SOAP on loopback) with a real
sshd as the pool master's dom0: template import, create, boot parameters in
Bootparams.img (read back with mtools), MACs in vm.cfg, power transitions and faults,
metrics, migration, templates from VMs, and bad input leaving nothing behind."""

from __future__ import annotations

import subprocess

import pytest

from nodemgr import sshpool
from nodemgr.plugins.base import (
    Endpoint,
    InvalidState,
    NicSpec,
    PermanentError,
    Unreachable,
    VmChange,
    VmSpec,
)
from nodemgr.plugins.ovm import OvmDriver
from tests.fixtures.ovm_env import make_template, ovm_env  # noqa: F401 - the fixture
from tests.fixtures.sshd import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _close_ssh():
    yield
    sshpool.close_all()


def driver(env, **opts) -> OvmDriver:
    d = OvmDriver(env.endpoint(**opts), 20)
    d.connect()
    return d


def spec(name, master="OVM_EL5_PVM", **kw) -> VmSpec:
    s = VmSpec(name, memory_mib=1024, cpus=2, master=master, extra={"cluster": "pool1"})
    for k, v in kw.items():
        setattr(s, k, v)
    return s


def mtype(img) -> str:
    return subprocess.run(["mtype", "-i", str(img), "::bootparams.conf"], check=True,
                          capture_output=True, text=True,
                          env={"MTOOLS_SKIP_CHECK": "1", "PATH": "/usr/bin:/bin"}).stdout


def test_lifecycle_with_template_import(ovm_env):  # noqa: F811
    env = ovm_env
    make_template(env.templatedir, "OVM_EL5_PVM")
    d = driver(env)
    s = spec("ovmvm1", nics=[NicSpec("xenbr0", "00:16:3e:aa:bb:01")],
             bootparams={"ip": "10.1.0.5/24", "gateway": "10.1.0.1", "role": "web"})
    [r] = d.create([s])
    assert r.ok, r.message
    # imported, approved, and the bundle's staging files are gone
    [t] = env.manager.templates.values()
    assert t["templateName"] == "OVM_EL5_PVM" and t["status"] == "Approved"
    assert sorted(p.name for p in (env.ovs / "seed_pool").iterdir()) == ["OVM_EL5_PVM"]
    vmdir = env.ovs / "running_pool" / "ovmvm1"
    cfg = (vmdir / "vm.cfg").read_text()
    assert "mac=00:16:3e:aa:bb:01" in cfg and "/OVS/running_pool/ovmvm1/System.img" in cfg
    assert mtype(vmdir / "Bootparams.img") == "gateway=10.1.0.1\nip=10.1.0.5/24\nrole=web\n"
    seen = []
    for action in ("stat", "on", "on", "suspend", "resume", "reset", "softoff", "boot",
                   "boot", "off"):
        [r] = d.power([s], action)
        assert r.ok, (action, r.message)
        seen.append(r.message)
    assert seen == ["off", "on", "on", "suspended", "on", "reset", "off", "off on",
                    "on reset", "off"]
    [r] = d.addresses([s])
    assert r.ok and r.data["addresses"] == ["10.1.0.5"]
    [r] = d.describe([s])
    assert "Status: off" in r.message and "MAC 0: 00:16:3e:aa:bb:01" in r.message
    assert [v.name for v in d.list_vms()] == ["ovmvm1"]
    [r] = d.change([s], VmChange(cpus=4, memory_mib=2048))
    assert r.ok and "vcpus = 4" in (vmdir / "vm.cfg").read_text()
    [r] = d.power([s], "on")
    [r] = d.stats([s])
    assert r.ok and r.data["memory_mib"] == 2048
    assert d.host_free_memory_mib() == 16384 - 2048
    [r] = d.migrate([s], Endpoint("ovm", "", "ovs2"))
    assert r.ok and r.facts.host == "ovs2" and not r.updates
    # boot parameters changed: rewritten at the next power-on, never by mounting
    s.bootparams = {"ip": "dhcp"}
    [r] = d.power([s], "off")
    [r] = d.power([s], "on")
    assert r.ok and mtype(vmdir / "Bootparams.img") == "ip=dhcp\n"
    [r] = d.remove([s])
    assert not r.ok and "is on" in r.message
    [r] = d.remove([s], force=True)
    assert r.ok and not vmdir.exists()


def test_illegal_transitions_are_one_line_errors(ovm_env):  # noqa: F811
    env = ovm_env
    make_template(env.templatedir, "T2")
    d = driver(env)
    s = spec("ovmvm2", master="T2")
    [r] = d.create([s])
    assert r.ok, r.message
    assert r.facts.macs[0].startswith("00:16:3e:")  # the manager's MAC, recorded
    vm = env.manager.getVMByName("pool1", "ovmvm2")
    assert r.facts.uuid == vm["uuid"] and not r.updates
    cfg = (env.ovs / "running_pool" / "ovmvm2" / "vm.cfg").read_text()
    assert f"uuid = '{vm['uuid']}'" in cfg  # the manager's UUID is the one in vm.cfg
    for action in ("suspend", "resume", "reset"):
        [r] = d.power([s], action)
        assert not r.ok and "is not allowed" in r.message and "\n" not in r.message
        assert "<" not in r.message
    [r] = d.power([s], "on")
    assert r.facts.power == "on"
    [r] = d.change([s], VmChange(cpus=2))  # configVM only when off
    assert not r.ok and "not allowed" in r.message
    r = d.make_master(s, "T2copy")
    assert not r.ok and "not allowed" in r.message
    [r] = d.power([s], "off")
    r = d.make_master(s, "T2copy")
    assert r.ok and (env.ovs / "seed_pool" / "T2copy" / "vm.cfg").exists()
    [r] = d.clone_from_master([spec("ovmvm3")], "T2copy", None)
    assert r.ok and (env.ovs / "running_pool" / "ovmvm3" / "Bootparams.img").exists()
    [r] = d.create([s])
    assert not r.ok and "already exists" in r.message
    for name in ("ovmvm2", "ovmvm3"):
        [r] = d.remove([spec(name)])
        assert r.ok


def test_bad_input_leaves_nothing(ovm_env, tmp_path):  # noqa: F811
    env = ovm_env
    d = driver(env)
    before = set(env.manager.templates)
    # template archive missing
    [r] = d.create([spec("bad1", master="NOPE")])
    assert not r.ok and "NOPE.tgz does not exist" in r.message
    # corrupt archive: tar fails on dom0 midway; staging removed, nothing registered
    (env.templatedir / "CORRUPT.tgz").write_bytes(b"\x1f\x8b\x08\x00garbage" * 100)
    [r] = d.create([spec("bad2", master="CORRUPT")])
    assert not r.ok and "extracting CORRUPT.tgz failed on dom0" in r.message
    # an archive without vm.cfg
    import tarfile

    with tarfile.open(env.templatedir / "EMPTY.tgz", "w:gz") as tar:
        (tmp_path / "x").write_text("x")
        tar.add(tmp_path / "x", arcname="EMPTY/readme")
    [r] = d.create([spec("bad3", master="EMPTY")])
    assert not r.ok and "no vm.cfg" in r.message
    # the manager fails after the import: the template is unregistered and removed
    make_template(env.templatedir, "HALF")
    env.manager.fail_next["approveTemplate"] = "approval service unavailable"
    [r] = d.create([spec("bad4", master="HALF")])
    assert not r.ok and "approval service unavailable" in r.message
    assert set(env.manager.templates) == before
    assert sorted(p.name for p in (env.ovs / "seed_pool").iterdir()
                  if p.name in ("CORRUPT", "EMPTY", "HALF") or p.name.startswith(".")) == []
    # a template without Bootparams.img: the new VM is deleted again
    make_template(env.templatedir, "NOBP", bootparams_img=False)
    [r] = d.create([spec("bad5", master="NOBP", bootparams={"ip": "10.0.0.9/24"})])
    assert not r.ok and "no Bootparams.img" in r.message
    assert not any(v["imgName"] == "bad5" for v in env.manager.vms.values())
    assert not (env.ovs / "running_pool" / "bad5").exists()
    # unknown VM, no template given
    [r] = d.power([spec("ghost")], "on")
    assert not r.ok and "Cannot find vm ghost" in r.message
    [r] = d.create([spec("x", master=None)])
    assert not r.ok and "vm.master" in r.message


def test_manager_errors(ovm_env):  # noqa: F811
    env = ovm_env
    with pytest.raises(PermanentError, match="authentication to OVM Manager .* failed"):
        OvmDriver(env.endpoint("wrong"), 5).connect()
    ep = Endpoint("ovm", env.server.url.replace("/OVSWS", "/missing"), "m", "admin", "password")
    with pytest.raises(PermanentError, match="cannot load ServerPoolService.wsdl .* HTTP 404"):
        OvmDriver(ep, 5).connect()
    ep = Endpoint("ovm", f"http://127.0.0.1:{free_port()}/OVSWS", "m", "admin", "password")
    with pytest.raises(Unreachable, match="unreachable"):
        OvmDriver(ep, 5).connect()
    d = driver(env, pool="nopool")
    [r] = d.power([spec("x")], "stat")
    assert not r.ok and "Server pool nopool not found" in r.message
    # dom0 host key unknown: refused, one line
    bad = env.dom0.root / "empty_known_hosts"
    bad.write_text("")
    d = driver(env, known_hosts=str(bad))
    make_template(env.templatedir, "KH")
    [r] = d.create([spec("kh1", master="KH")])
    assert not r.ok and "host key" in r.message


def test_invalid_state_type(ovm_env):  # noqa: F811
    from nodemgr.plugins.ovm.soap import map_fault

    assert isinstance(map_fault("Operation x is not allowed", "x"), InvalidState)


def test_https_with_ca_file_and_standalone_simulator(tmp_path):
    import os
    import ssl
    import subprocess
    import sys
    import time

    from tests.simulators.ovirt import self_signed
    from tests.simulators.ovm import OvmManager, Server

    ca, cert, key = self_signed(tmp_path / "pki")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    with Server(OvmManager(tmp_path / "OVS"), 0, ctx) as s:
        ep = Endpoint("ovm", s.url, "m", "admin", "password", (("ca_file", str(ca)),))
        d = OvmDriver(ep, 10)
        d.connect()
        assert d.list_vms() == []
        ep = Endpoint("ovm", s.url, "m", "admin", "password")
        with pytest.raises(PermanentError, match="TLS verification"):
            OvmDriver(ep, 10).connect()
    # python -m tests.simulators.ovm --port N --tls runs on its own
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.simulators.ovm", "--port", str(port),
                             "--tls", "--ovs", str(tmp_path / "OVS2")],
                            stdout=subprocess.PIPE, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    try:
        ca_line = proc.stdout.readline()
        assert ca_line.startswith("CA certificate: ")
        assert "serving https://127.0.0.1:" in proc.stdout.readline()
        ep = Endpoint("ovm", f"https://127.0.0.1:{port}/OVSWS", "m", "admin", "password",
                      (("ca_file", ca_line.split(": ", 1)[1].strip()),))
        deadline = time.monotonic() + 10
        while True:
            try:
                OvmDriver(ep, 5).connect()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(10)
