"""rmigrate end to end: tables -> dispatch -> libvirt driver -> a real live migration
between two private libvirtd instances (fixture ``mig_hosts``, shared with the driver tests).
"""

from __future__ import annotations

import json

import pytest

from nodemgr.cli import nodecmds, vmcmds
from nodemgr.tables.store import Store
from tests.cli.test_newcmds_libvirt import add_hosts
from tests.plugins.conftest import mig_hosts  # noqa: F401 - the fixture

pytestmark = [pytest.mark.slow, pytest.mark.libvirtd]


def test_rmigrate_chooses_target_migrates_live_and_updates_vm_host(cli_env, mig_hosts, capsys):  # noqa: F811
    import libvirt

    a, b = mig_hosts
    add_hosts(mig_hosts, (49481, 49482))
    assert nodecmds.nodeadd(["nmtest-rmig", "groups=all", "nodehm.mgt=kvm",
                             f"vm.host={a.name}", "vm.migrationdest=hypervisor",
                             "vm.memory=64", "vm.bootorder=hd"]) == 0
    assert vmcmds.mkvm(["nmtest-rmig"]) == 0, capsys.readouterr().err
    assert vmcmds.rpower(["nmtest-rmig", "on"]) == 0
    capsys.readouterr()

    assert vmcmds.rmigrate(["nmtest-rmig"]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out == f"nmtest-rmig: migrated to {b.name}\n"
    assert {r["node"]: r["host"] for r in Store(cli_env).select("vm")}["nmtest-rmig"] == b.name
    conn_b = libvirt.open(b.unix_uri)
    try:
        assert conn_b.lookupByName("nmtest-rmig").isActive()
    finally:
        conn_b.close()
    assert vmcmds.rpower(["nmtest-rmig", "stat"]) == 0
    assert capsys.readouterr().out == "nmtest-rmig: on\n"

    # back to A by name, as JSON for scripts; then A again is a no-op
    assert vmcmds.rmigrate(["nmtest-rmig", a.name, "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert (obj["node"], obj["ok"], obj["message"]) == ("nmtest-rmig", True,
                                                        f"migrated to {a.name}")
    assert vmcmds.rmigrate(["nmtest-rmig", a.name]) == 0
    assert capsys.readouterr().out == f"nmtest-rmig: Guest is already on host {a.name}\n"
    assert {r["node"]: r["host"] for r in Store(cli_env).select("vm")}["nmtest-rmig"] == a.name
    assert vmcmds.rmvm(["nmtest-rmig", "-f"]) == 0
