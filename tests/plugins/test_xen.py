"""Xen driver end to end: the foundation's commands through a real OpenSSH sshd to dom0s
whose ``xl``/``xm`` are test doubles (tests/fixtures/xen/xl_double.py), plus the SSH
failure cases (unknown host key, bad login, unreachable dom0)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from nodemgr import sshpool
from nodemgr.cli import nodecmds, tablecmds, vmcmds
from nodemgr.plugins.base import Endpoint, NotFound, PermanentError, Unreachable, VmSpec
from nodemgr.plugins.xen import XenDriver
from tests.fixtures.sshd import free_port, sshd_factory  # noqa: F401 - the fixture
from tests.fixtures.xen.dom0 import define, dom0, endpoint, pair

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hosts(sshd_factory):  # noqa: F811
    yield pair(sshd_factory)
    sshpool.close_all()


def run(cmd, argv, capsys):
    rc = cmd(argv)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def tables(cli_env, hosts, capsys):
    a, b = hosts
    define(a, "dom0a")
    define(b, "dom0b")
    assert nodecmds.nodeadd(["xvm[1-2]", "groups=xenvms", "nodehm.mgt=xen", "vm.host=dom0a",
                             f"vm.storage=dir://{a.images}", "vm.storageformat=raw",
                             "vm.nics=xenbr0", "vm.memory=256"]) == 0
    capsys.readouterr()
    return a, b


def test_foundation_commands_on_xen(tables, capsys):
    a, b = tables
    t0 = time.monotonic()
    assert run(vmcmds.mkvm, ["xvm[1-2]", "-s", "1G"], capsys)[0] == 0
    cfg = (a.cfgdir / "xvm1.cfg").read_text()
    assert 'name = \'xvm1\'' in cfg and "bridge=xenbr0" in cfg and "memory = 256" in cfg
    assert "type = 'hvm'" in cfg and "boot = 'nc'" in cfg
    assert (a.images / "xvm1.xvda.raw").stat().st_size == 1 << 30
    rc, out, _ = run(vmcmds.rpower, ["xvm[1-2]", "stat"], capsys)
    assert (rc, out) == (0, "xvm1: off\nxvm2: off\n")
    rc, out, _ = run(vmcmds.rpower, ["xvm1", "on"], capsys)
    assert (rc, out) == (0, "xvm1: on\n")
    rc, out, _ = run(vmcmds.rpower, ["xvm[1-2]", "stat"], capsys)
    assert out == "xvm1: on\nxvm2: off\n"
    rc, out, _ = run(vmcmds.lsvm, ["dom0a"], capsys)
    assert out == "dom0a: xvm1: on\ndom0a: xvm2: off\n"
    rc, out, _ = run(vmcmds.lsvm, ["xvm1"], capsys)
    assert "xvm1: State: on" in out and "xvm1: Memory: 256" in out
    assert run(vmcmds.rpower, ["xvm1", "boot"], capsys)[1] == "xvm1: on reset\n"
    assert run(vmcmds.rpower, ["xvm1", "suspend"], capsys)[1] == "xvm1: suspended\n"
    assert run(vmcmds.rpower, ["xvm1", "stat"], capsys)[1] == "xvm1: suspended\n"
    assert run(vmcmds.rpower, ["xvm1", "resume"], capsys)[1] == "xvm1: on\n"
    assert run(vmcmds.chvm, ["xvm1", "--mem", "512", "--cpus", "2"], capsys)[0] == 0
    assert "memory = 512" in (a.cfgdir / "xvm1.cfg").read_text()
    state = json.loads((a.state / "domains" / "xvm1.json").read_text())
    assert (state["memory"], state["vcpus"]) == (512, 2)
    # rmvm refuses a running VM, then -f -p destroys it and purges its image
    rc, _, err = run(vmcmds.rmvm, ["xvm1"], capsys)
    assert rc == 1 and "xvm1: Error: xvm1 is running on dom0a" in err
    # migrate to dom0b, verified there; vm.host follows
    rc, out, err = run(vmcmds.rmigrate, ["xvm1", "dom0b"], capsys)
    assert rc == 0, err
    assert (b.cfgdir / "xvm1.cfg").exists() and not (a.cfgdir / "xvm1.cfg").exists()
    assert run(tablecmds.tabdump, ["vm"], capsys)[1].count('"dom0b"') == 1
    assert run(vmcmds.rpower, ["xvm1", "stat"], capsys)[1] == "xvm1: on\n"
    assert run(vmcmds.rpower, ["xvm1", "off"], capsys)[1] == "xvm1: off\n"
    assert run(vmcmds.rmvm, ["xvm[1-2]", "-f", "-p"], capsys)[0] == 0
    assert not (a.images / "xvm2.xvda.raw").exists()
    assert list(a.cfgdir.iterdir()) == [] and list(b.cfgdir.iterdir()) == []
    assert time.monotonic() - t0 < 30


def test_clone_by_copying_images(tables, capsys):
    a, _ = tables
    assert run(vmcmds.mkvm, ["xvm1", "-s", "64M"], capsys)[0] == 0
    (a.images / "xvm1.xvda.raw").write_bytes(b"golden" + bytes(100))
    rc, _, err = run(vmcmds.clonevm, ["xvm1", "-t", "gold"], capsys)
    assert rc == 0, err
    assert (a.images / "gold.xvda.raw").read_bytes().startswith(b"golden")
    rc, _, err = run(vmcmds.clonevm, ["xvm2", "-b", "gold"], capsys)
    assert rc == 0, err
    assert (a.images / "xvm2.xvda.raw").read_bytes().startswith(b"golden")
    assert "name = 'xvm2'" in (a.cfgdir / "xvm2.cfg").read_text()
    assert run(vmcmds.rpower, ["xvm2", "on"], capsys)[1] == "xvm2: on\n"


def test_errors_are_mapped(tables, capsys):
    a, _ = tables
    rc, _, err = run(vmcmds.rpower, ["xvm1", "on"], capsys)
    assert rc == 1 and err == "xvm1: Error: Cannot find vm xvm1 on dom0a\n"
    drv = XenDriver(endpoint(a))
    drv.connect()
    with pytest.raises(NotFound, match="Cannot find vm nosuch on dom0"):
        drv._xl("destroy", "nosuch")
    assert drv.host_free_memory_mib() == 16378 - 1023


def test_xm_fallback(sshd_factory, capsys):  # noqa: F811
    s = dom0(sshd_factory, tool="xm")
    drv = XenDriver(endpoint(s))
    drv.connect()
    assert drv.tool == "xm"
    spec = VmSpec(node="old1", memory_mib=128)
    assert [r.ok for r in drv.create([spec])] == [True]
    assert "builder = 'hvm'" in (s.cfgdir / "old1.cfg").read_text()
    assert [r.message for r in drv.power([spec], "on")] == ["on"]
    assert [r.message for r in drv.power([spec], "stat")] == ["on"]
    assert drv.list_vms()[0].name == "old1"
    with pytest.raises(NotFound):
        drv._xl("pause", "nosuch")


def test_openqrm_layout(hosts):
    a, _ = hosts
    from nodemgr.plugins.base import NicSpec

    drv = XenDriver(endpoint(a, layout="openqrm"))
    drv.connect()
    spec = VmSpec(node="q1", nics=[NicSpec(network="xenbr0", mac="00:16:3e:00:00:01")])
    assert [r.ok for r in drv.create([spec])] == [True]
    assert (a.cfgdir / "00:16:3e:00:00:01" / "00:16:3e:00:00:01.xen").exists()
    assert [v.name for v in drv.list_vms()] == ["q1"]
    assert [r.ok for r in drv.remove([spec])] == [True]


def test_unknown_host_key_is_refused(hosts, tmp_path):
    a, _ = hosts
    other = tmp_path / "known_hosts"
    other.write_text("")
    sshpool.close_all()
    with pytest.raises(PermanentError, match="is not in .*known_hosts; add it"):
        XenDriver(endpoint(a, known_hosts=str(other))).connect()
    k2 = tmp_path / "k2"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(k2)], check=True)
    kt, key = (Path(str(k2) + ".pub").read_text().split())[:2]
    other.write_text(f"[127.0.0.1]:{a.port} {kt} {key}\n")
    with pytest.raises(PermanentError, match="does not match"):
        XenDriver(endpoint(a, known_hosts=str(other))).connect()


def test_bad_login_and_unreachable(hosts, tmp_path):
    a, _ = hosts
    sshpool.close_all()
    k2 = tmp_path / "k2"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(k2)], check=True)
    with pytest.raises(PermanentError, match="authentication failed for nodemgr-test@"):
        XenDriver(endpoint(a, key=str(k2))).connect()
    ep = endpoint(a)
    dead = Endpoint(driver="xen", uri=f"ssh://root@127.0.0.1:{free_port()}/", host="gone",
                    options=ep.options)
    t = time.monotonic()
    with pytest.raises(Unreachable):
        XenDriver(dead, timeout=3).connect()
    assert time.monotonic() - t < 3


def test_one_connection_reused(hosts):
    a, _ = hosts
    sshpool.close_all()
    d1 = XenDriver(endpoint(a))
    d1.connect()
    d2 = XenDriver(endpoint(a))
    d2.connect()
    assert d1.conn is d2.conn


def test_bootparams_config_disk(tables, capsys):
    """mkvm --bootparams: the cidata ISO lands beside the images on the dom0 (read back
    from the sshd side with pycdlib), the domain config has it as a read-only cdrom, the
    running domain has it, ``addresses`` gives the configured ip, rmvm -p deletes it."""
    from nodemgr.bootparams import parse_conf, read_cidata_iso
    from nodemgr.plugins.xen.parse import parse_config, parse_disk

    a, _ = tables
    rc, _, err = run(vmcmds.mkvm, ["xvm1", "-s", "64M", "--bootparams", "ip=192.0.2.7/24",
                                   "gateway=192.0.2.1", "hostname=web7", "role=web"], capsys)
    assert rc == 0, err
    iso = a.images / "xvm1.cidata.iso"
    label, files = read_cidata_iso(str(iso))
    assert label == "cidata"
    assert parse_conf(files["bootparams.conf"]) == {
        "ip": "192.0.2.7/24", "gateway": "192.0.2.1", "hostname": "web7", "role": "web"}
    assert b'address: "192.0.2.7/24"' in files["network-config"]
    assert b'local-hostname: "web7"' in files["meta-data"]
    assert not [p for p in a.images.iterdir() if "tmp" in p.name]  # renamed into place
    cfg = parse_config((a.cfgdir / "xvm1.cfg").read_text())
    cds = [d for d in map(parse_disk, cfg["disk"]) if d.cdrom]
    assert [(d.target, d.vdev, d.access) for d in cds] == [(str(iso), "hdc", "ro")]
    assert run(vmcmds.rpower, ["xvm1", "on"], capsys)[1] == "xvm1: on\n"
    dom = json.loads((a.state / "domains" / "xvm1.json").read_text())
    assert any(str(iso) in d for d in dom["config"]["disk"])
    # addresses: read back from the ISO on the dom0, even when the spec has no parameters
    drv = XenDriver(endpoint(a))
    spec = VmSpec(node="xvm1", storage=[f"dir://{a.images}"])
    r = next(drv.addresses([spec]))
    assert (r.ok, r.data["addresses"]) == (True, ["192.0.2.7"])
    # mkvm -f replaces the parameters; dhcp → no static address
    assert run(vmcmds.rpower, ["xvm1", "off"], capsys)[0] == 0
    rc, _, err = run(vmcmds.mkvm, ["xvm1", "-f", "--bootparams", "ip=dhcp"], capsys)
    assert rc == 0, err
    assert parse_conf(read_cidata_iso(str(iso))[1]["bootparams.conf"]) == {"ip": "dhcp"}
    assert next(drv.addresses([spec])).data["addresses"] == []
    # a VM without parameters has no config disk
    assert run(vmcmds.mkvm, ["xvm2", "-s", "64M"], capsys)[0] == 0
    assert "cdrom" not in (a.cfgdir / "xvm2.cfg").read_text()
    assert next(drv.addresses([VmSpec(node="xvm2")])).data["addresses"] == []
    # rmvm without -p keeps it, -p deletes it
    assert run(vmcmds.rmvm, ["xvm1"], capsys)[0] == 0
    assert iso.exists()
    assert run(vmcmds.mkvm, ["xvm1", "-f", "-s", "64M", "--bootparams",
                                   "ip=192.0.2.8/24"], capsys)[0] == 0
    assert run(vmcmds.rmvm, ["xvm1", "-p"], capsys)[0] == 0
    assert not iso.exists() and not (a.images / "xvm1.xvda.raw").exists()


def test_bootparams_xm_disk_spec(sshd_factory):  # noqa: F811
    from nodemgr.bootparams import parse_conf, read_cidata_iso

    s = dom0(sshd_factory, tool="xm")
    drv = XenDriver(endpoint(s))
    spec = VmSpec(node="old2", memory_mib=128, bootparams={"ip": "198.51.100.4/24"})
    assert [r.ok for r in drv.create([spec])] == [True]
    iso = s.images / "old2.cidata.iso"
    assert f"'file:{iso},hdc:cdrom,r'" in (s.cfgdir / "old2.cfg").read_text()
    assert parse_conf(read_cidata_iso(str(iso))[1]["bootparams.conf"]) == {
        "ip": "198.51.100.4/24"}
    assert next(drv.addresses([spec])).data["addresses"] == ["198.51.100.4"]
    assert [r.ok for r in drv.remove([spec], purge=True)] == [True]
    assert not iso.exists()


def test_rpower_on_restarts_a_crashed_domain(tables, capsys):
    """A crashed domain kept by on_crash=preserve (``xl list`` state ``--psc-``): stat says
    so; ``rpower on`` destroys it and creates it again from its config, as an xl user does
    (``xl destroy`` + ``xl create``), instead of printing ``on`` and leaving it crashed."""
    a, _ = tables
    assert run(vmcmds.mkvm, ["xvm1", "-s", "64M"], capsys)[0] == 0
    assert run(vmcmds.rpower, ["xvm1", "on"], capsys)[1] == "xvm1: on\n"
    path = a.state / "domains" / "xvm1.json"
    dom = json.loads(path.read_text())
    path.write_text(json.dumps(dict(dom, state="--psc-")))
    assert run(vmcmds.rpower, ["xvm1", "stat"], capsys)[1] == "xvm1: crashed\n"
    rc, out, err = run(vmcmds.rpower, ["xvm1", "on"], capsys)
    assert (rc, out, err) == (0, "xvm1: on\n", "")
    new = json.loads(path.read_text())
    assert new["state"] == "-b----" and new["domid"] != dom["domid"]
    assert run(vmcmds.rpower, ["xvm1", "stat"], capsys)[1] == "xvm1: on\n"


def test_mkvm_force_bootparams_keeps_the_disks(tables, capsys):
    """mkvm -f --bootparams (no -s) on an existing VM: the new config disk replaces the old
    one, the VM's disks stay in its config (not orphaned) and their images are untouched."""
    from nodemgr.bootparams import parse_conf, read_cidata_iso
    from nodemgr.plugins.xen.parse import parse_config, parse_disk

    a, _ = tables
    assert run(vmcmds.mkvm, ["xvm1", "-s", "64M", "--bootparams", "ip=192.0.2.9/24"],
               capsys)[0] == 0
    img = a.images / "xvm1.xvda.raw"
    img.write_bytes(b"installed" + bytes(100))
    rc, _, err = run(vmcmds.mkvm, ["xvm1", "-f", "--bootparams", "ip=dhcp"], capsys)
    assert rc == 0, err
    disks = [parse_disk(d) for d in parse_config((a.cfgdir / "xvm1.cfg").read_text())["disk"]]
    assert [(d.vdev, d.target, d.cdrom) for d in disks] == [
        ("xvda", str(img), False), ("hdc", str(a.images / "xvm1.cidata.iso"), True)]
    assert img.read_bytes().startswith(b"installed")
    iso = a.images / "xvm1.cidata.iso"
    assert parse_conf(read_cidata_iso(str(iso))[1]["bootparams.conf"]) == {"ip": "dhcp"}
    # a VM that had no parameters gets its config disk beside its own disk
    assert run(vmcmds.mkvm, ["xvm2", "-s", "64M"], capsys)[0] == 0
    assert run(vmcmds.mkvm, ["xvm2", "-f", "--bootparams", "ip=192.0.2.10/24"], capsys)[0] == 0
    cfg2 = parse_config((a.cfgdir / "xvm2.cfg").read_text())
    assert [parse_disk(d).vdev for d in cfg2["disk"]] == ["xvda", "hdc"]
    assert run(vmcmds.rmvm, ["xvm[1-2]", "-p"], capsys)[0] == 0
    assert not img.exists() and not iso.exists()


def test_chvm_d_detaches_without_purging(tables, capsys):
    from nodemgr.plugins.xen.parse import parse_config, parse_disk

    a, _ = tables
    assert run(vmcmds.mkvm, ["xvm1", "-s", "64M,64M"], capsys)[0] == 0
    rc, _, err = run(vmcmds.chvm, ["xvm1", "-d", "vdb"], capsys)
    assert rc == 0, err
    cfg = parse_config((a.cfgdir / "xvm1.cfg").read_text())
    assert [parse_disk(d).vdev for d in cfg["disk"]] == ["xvda"]
    assert (a.images / "xvm1.xvdb.raw").exists()
