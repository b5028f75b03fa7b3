"""The foundation's VM commands on Oracle VM nodes (nodehm.mgt=ovm, vm.mgr = the manager
node) against the simulated OVM Manager with a real sshd as the pool master's dom0:
mkvm --bootparams (kept in vmbootparams, written into Bootparams.img), rpower, lsvm, chvm,
rmigrate, clonevm -t/-b, rmvm; bad input is one line per node and changes nothing."""

from __future__ import annotations

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
    for vm in list(env.manager.vms.values()):
        env.manager.vms.pop(vm["imgId"])


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
