"""nodeset / updatenodestat / copycds as commands: output lines, errors, exit codes, --help."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nodemgr.cli import netbootcmds, nodecmds, tablecmds
from nodemgr.netboot import mknb
from nodemgr.tables.store import Store
from tests.fixtures.iso import builders


@pytest.fixture
def env(cli_env, tmp_path):
    for k, v in (("tftpdir", tmp_path / "tftp"), ("installdir", tmp_path / "install"),
                 ("master", "10.0.0.1")):
        assert tablecmds.chtab([f"key={k}", f"site.value={v}"]) == 0
    assert nodecmds.nodeadd(["n1,n2", "groups=compute,all"]) == 0
    assert tablecmds.chtab(["node=n1", "mac.mac=52:54:00:aa:bb:01"]) == 0
    # what an install's answer file needs: the postscripts, a crypted root password
    mknb.install_postscripts(str(tmp_path / "install"))
    assert tablecmds.chtab(["key=system,username=root",
                            "passwd.password=$6$cli$" + "C" * 86]) == 0
    return tmp_path


def test_provisioning_flow(env, capsys):
    iso = builders.rhel_iso(str(env / "rhel.iso"))
    assert netbootcmds.copycds([iso]) == 0
    out = capsys.readouterr().out
    assert f"Copying media to {env}/install/rhels8.6/x86_64" in out
    assert out.endswith("Media copy operation successful\n")
    assert "\r" not in out  # no progress bar in a pipe
    assert netbootcmds.nodeset(["n1,n2", "osimage=rhels8.6-x86_64-install-compute"]) == 1
    out, err = capsys.readouterr()
    assert out == "n1: install rhels8.6-x86_64-compute\n"
    assert err == "n2: Error: No MAC address available for this node\n"
    assert netbootcmds.nodeset(["n1", "stat"]) == 0
    assert capsys.readouterr().out == "n1: install rhels8.6-x86_64-compute\n"
    assert netbootcmds.nodeset(["n1", "next"]) == 0
    assert capsys.readouterr().out == "n1: boot\n"
    assert netbootcmds.updatenodestat(["n1", "booted"]) == 0
    assert Store(os.environ["NODEMGR_DB"]).get("nodelist", {"node": "n1"})["status"] == "booted"


def test_errors(env, capsys):
    assert netbootcmds.updatenodestat(["n1", "bootd"]) == 1
    assert "Error: unknown status 'bootd'" in capsys.readouterr().err
    assert netbootcmds.nodeset(["n1", "bogus"]) == 1
    assert capsys.readouterr().err == "Error: Unknown state bogus requested\n"
    assert netbootcmds.nodeset(["nosuch", "boot"]) == 1
    assert netbootcmds.copycds(["-i", str(env / "none.iso")]) == 1
    unknown = builders.unknown_iso(str(env / "u.iso"))
    assert netbootcmds.copycds([unknown]) == 1
    assert "try -n <osver>" in capsys.readouterr().err


def test_copycds_inspection(env, capsys):
    iso = builders.xen_iso(str(env / "x.iso"))
    assert netbootcmds.copycds(["-i", iso]) == 0
    assert capsys.readouterr().out == "DISTNAME:xcp-ng8.2.1\nARCH:x86_64\nDISCNO:1\n"


@pytest.mark.parametrize("cmd", ["nodeset", "updatenodestat", "copycds"])
def test_help(cmd):
    p = subprocess.run([sys.executable, "-c", f"from nodemgr.cli.netbootcmds import {cmd}; "
                        f"raise SystemExit({cmd}(['--help']))"], capture_output=True, text=True)
    assert p.returncode == 0 and "examples:" in p.stdout and "exit status:" in p.stdout
