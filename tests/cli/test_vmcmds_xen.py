"""rvitals, rinv, rscan, rsetboot, getcons, getrvidparms, rcons and revacuate end to end on
Xen: the tables, dispatch, the operations layer and the Xen driver, through a real sshd to
two dom0s whose ``xl``/``xentop`` are the double (tests/fixtures/xen/xl_double.py)."""

from __future__ import annotations

import io
import json

import pytest

from nodemgr import sshpool
from nodemgr.cli import nodecmds, vmcmds
from nodemgr.plugins.xen.parse import parse_config
from nodemgr.tables.store import Store
from tests.fixtures.sshd import sshd_factory  # noqa: F401 - the fixture
from tests.fixtures.xen.dom0 import define, pair

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hosts(sshd_factory):  # noqa: F811
    yield pair(sshd_factory, xentop=True)
    sshpool.close_all()


@pytest.fixture
def xen(cli_env, hosts, capsys):
    """dom0a and dom0b as Xen hypervisor nodes; xvm1, xvm2 defined on dom0a."""
    a, b = hosts
    define(a, "dom0a")
    define(b, "dom0b")
    assert nodecmds.nodeadd(["xvm[1-2]", "groups=xenvms", "nodehm.mgt=xen", "vm.host=dom0a",
                             f"vm.storage=dir://{a.images}", "vm.storageformat=raw",
                             "vm.nics=xenbr0", "vm.memory=256", "vm.cpus=2",
                             "vm.migrationdest=dom0b"]) == 0
    capsys.readouterr()
    return {"a": a, "b": b, "url": cli_env}


def run(cmd, argv, capsys):
    rc = cmd(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def rows(url, name, key="node"):
    return {r[key]: r for r in Store(url).select(name)}


def busy(s, node, **figures):
    path = s.state / "domains" / f"{node}.json"
    path.write_text(json.dumps(dict(json.loads(path.read_text()), **figures)))


def test_rvitals_and_rinv(xen, capsys):
    a = xen["a"]
    assert run(vmcmds.mkvm, ["xvm[1-2]", "-s", "64M", "--bootparams", "ip=192.0.2.41/24"],
               capsys)[0] == 0
    assert run(vmcmds.rpower, ["xvm1", "on"], capsys)[0] == 0
    busy(a, "xvm1", load=0.5, disk_write_bps=1 << 20, net_rx_bps=100_000)
    rc, out, err = run(vmcmds.rvitals, ["xvm1"], capsys)
    assert (rc, err) == (0, "")
    assert "xvm1: CPU: 50.0 % over 1 s, 2 vCPUs\n" in out
    assert "xvm1: Memory: 256 MiB used of 256 MiB available\n" in out
    disk = next(x for x in out.splitlines() if x.startswith("xvm1: Disk: "))
    assert disk.startswith("xvm1: Disk: read 0 bytes/s, write ")
    assert 0.9 * (1 << 20) <= int(disk.split()[-2]) <= 1.1 * (1 << 20)
    # a stopped VM: one line, exit 1
    rc, out, err = run(vmcmds.rvitals, ["xvm2", "cpu"], capsys)
    assert (rc, out, err) == (1, "", "xvm2: Error: xvm2 is not running on dom0a\n")
    rc, out, err = run(vmcmds.rinv, ["xvm1"], capsys)
    assert rc == 0, err
    assert "xvm1: CPUs: 2\n" in out and "xvm1: Memory: 256 MiB\n" in out
    assert f"xvm1: Disk xvda: 64 MiB {a.images}/xvm1.xvda.raw (raw)\n" in out
    assert "xvm1: IP: 192.0.2.41 (bootparams, " in out
    rc, out, _ = run(vmcmds.rinv, ["xvm2", "uuid"], capsys)
    assert rc == 0 and out.startswith("xvm2: UUID: ")


def test_rscan_writes_a_vm_made_on_the_dom0(xen, capsys):
    a = xen["a"]
    assert run(vmcmds.mkvm, ["xvm1", "-s", "64M"], capsys)[0] == 0
    (a.cfgdir / "stray1.cfg").write_text(
        "name = 'stray1'\nuuid = '7d3e1c52-9a1b-4c0e-8f44-2b6a1d0c9e77'\nmemory = 512\n"
        "vcpus = 3\nvif = [ 'mac=00:16:3e:12:34:56,bridge=xenbr0' ]\n"
        f"disk = [ 'format=raw,vdev=xvda,access=rw,target={a.images}/stray1.img' ]\n"
        "type = 'hvm'\nboot = 'c'\n")
    rc, out, err = run(vmcmds.rscan, ["dom0a"], capsys)
    assert rc == 0, err
    assert any(x.split()[1:4] == ["xen", "stray1", "dom0a"] for x in out.splitlines())
    assert "stray1" not in rows(xen["url"], "nodelist")
    before = rows(xen["url"], "vm")["xvm1"]
    rc, out, err = run(vmcmds.rscan, ["dom0a", "-w"], capsys)
    assert rc == 0, err
    assert "stray1: defined from dom0a" in out
    vm = rows(xen["url"], "vm")["stray1"]
    assert (vm["host"], vm["memory"], vm["cpus"]) == ("dom0a", "512", "3")
    assert rows(xen["url"], "mac")["stray1"]["mac"] == "00:16:3e:12:34:56"
    assert rows(xen["url"], "vpd")["stray1"]["uuid"] == "7d3e1c52-9a1b-4c0e-8f44-2b6a1d0c9e77"
    assert rows(xen["url"], "nodehm")["stray1"]["mgt"] == "xen"
    assert rows(xen["url"], "vm")["xvm1"] == before  # a known VM is left alone


def test_rsetboot(xen, capsys):
    a = xen["a"]
    assert run(vmcmds.mkvm, ["xvm1", "-s", "64M"], capsys)[0] == 0

    def boot():
        return parse_config((a.cfgdir / "xvm1.cfg").read_text())["boot"]

    assert boot() == "nc"
    rc, out, err = run(vmcmds.rsetboot, ["xvm1", "hd"], capsys)
    assert (rc, err, boot()) == (0, "", "cn")
    assert out.startswith("xvm1: ")
    rc, out, err = run(vmcmds.rsetboot, ["xvm1", "default"], capsys)
    assert (rc, boot()) == (0, "nc")
    rc, out, err = run(vmcmds.rsetboot, ["xvm1", "floppy"], capsys)
    assert rc == 1 and len(err.splitlines()) == 1 and "floppy" in err
    assert boot() == "nc"


def test_getcons_getrvidparms_and_rcons(xen, capsys, monkeypatch):
    a = xen["a"]
    assert run(vmcmds.mkvm, ["xvm1", "-s", "64M"], capsys)[0] == 0
    rc, out, err = run(vmcmds.getcons, ["xvm1"], capsys)
    assert (rc, out) == (1, "") and err == "xvm1: Error: xvm1 is not running on dom0a; " \
        "rpower it on first\n"
    assert run(vmcmds.rpower, ["xvm1", "on"], capsys)[0] == 0
    rc, out, err = run(vmcmds.getcons, ["xvm1"], capsys)
    assert rc == 0, err
    assert out == ("xvm1: method: serial\nxvm1: server: dom0a\nxvm1: command: ssh -t "
                   f"-p {a.port} {a.user}@127.0.0.1 xl console xvm1\n")
    rc, out, err = run(vmcmds.getrvidparms, ["xvm1"], capsys)
    assert rc == 1 and err.startswith("xvm1: Error: ") and len(err.splitlines()) == 1
    got = io.BytesIO()

    class Stdout:
        buffer = got

    monkeypatch.setattr("sys.stdout", Stdout)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert vmcmds.rcons(["xvm1", "--timeout", "0.5"]) == 0
    assert b"SeaBIOS" in got.getvalue() and got.getvalue().endswith(b"xvm1 login: ")


def test_revacuate_moves_the_running_vms_to_migrationdest(xen, capsys):
    a, b = xen["a"], xen["b"]
    assert run(vmcmds.mkvm, ["xvm[1-2]", "-s", "64M"], capsys)[0] == 0
    assert run(vmcmds.rpower, ["xvm1", "on"], capsys)[0] == 0  # xvm2 stays off, stays here
    rc, out, err = run(vmcmds.revacuate, ["dom0a"], capsys)
    assert rc == 0, err
    assert "xvm1: migrated to dom0b" in out and out.endswith("dom0a: no running VM\n")
    assert (b.cfgdir / "xvm1.cfg").exists() and (a.cfgdir / "xvm2.cfg").exists()
    assert rows(xen["url"], "vm")["xvm1"]["host"] == "dom0b"
    assert rows(xen["url"], "vm")["xvm2"]["host"] == "dom0a"
    assert run(vmcmds.rpower, ["xvm1", "stat"], capsys)[1] == "xvm1: on\n"
