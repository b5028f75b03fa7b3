"""One configuration (nodemgr.settings), the networks table (nodemgr.networks), and the
nodemgr-config / makenetworks commands; nodeset's use of them (no loopback master for a
node that is not on loopback, URLs under /tftpboot/ whatever tftpdir is)."""

from __future__ import annotations

import ipaddress
import json
import subprocess

import pytest

from nodemgr import config, networks, settings
from nodemgr.cli import configcmds, nodecmds, tablecmds
from nodemgr.netboot.nodeset import nodeset
from nodemgr.tables.resolve import Resolver
from nodemgr.tables.store import Store

IFACES = [("lo", ipaddress.IPv4Interface("127.0.0.1/8")),
          ("eth0", ipaddress.IPv4Interface("192.0.2.2/24")),
          ("prov0", ipaddress.IPv4Interface("10.20.0.1/16")),
          ("prov1", ipaddress.IPv4Interface("10.20.5.1/24")),
          ("ll", ipaddress.IPv4Interface("169.254.3.3/16"))]


def _conf(tmp_path, text: str) -> config.Config:
    p = tmp_path / "n.conf"
    p.write_text(text)
    return p


def test_a_new_database_is_seeded_from_the_configuration_file(tmp_path, monkeypatch):
    conf = _conf(tmp_path, "[nodemgr]\ntftpdir = /srv/tftp\nmaster = 10.9.9.9\n")
    monkeypatch.setenv("NODEMGR_CONF", str(conf))
    store = Store(f"sqlite:///{tmp_path}/a.sqlite")
    assert store.site("tftpdir") == "/srv/tftp" and store.site("master") == "10.9.9.9"
    assert store.site("installdir") == "/install"        # built-in default row
    assert settings.lookup(store, "tftpdir") == ("/srv/tftp", "site table")
    # the table wins over the file from now on
    store.upsert("site", {"key": "tftpdir"}, {"value": "/other"})
    assert settings.get(store, "tftpdir") == "/other"
    # a key the table lacks falls back to the file, then to the built-in default
    store.delete("site", {"key": "tftpdir"})
    assert settings.lookup(store, "tftpdir") == ("/srv/tftp", str(conf))
    monkeypatch.setenv("NODEMGR_CONF", str(_conf(tmp_path, "[nodemgr]\n")))
    assert settings.lookup(store, "tftpdir") == ("/tftpboot", "built-in default")
    assert settings.lookup(store, "callbackurl") == (None, "unset")
    store.close()


def test_no_silent_localhost_master(store):
    assert store.site("master") is None
    assert settings.lookup(store, "master") == (None, "unset")


def test_network_of_picks_the_longest_prefix():
    nets = networks.parse_rows([{"net": "10.20.0.0", "mask": "255.255.0.0"},
                                {"net": "10.20.5.0", "mask": "255.255.255.0", "netname": "p1"}])
    assert networks.network_of("10.20.5.7", nets).name == "p1"
    assert networks.network_of("10.20.6.7", nets).name == "10_20_0_0-255_255_0_0"
    assert networks.network_of("10.21.0.1", nets) is None
    assert networks.network_of("bogus", nets) is None
    with pytest.raises(networks.NetworkError, match="net='10.0.0.300'"):
        networks.parse_rows([{"net": "10.0.0.300", "mask": "255.0.0.0"}])


def test_master_per_node():
    nets = networks.parse_rows([{"net": "10.20.0.0", "mask": "255.255.0.0"},
                                {"net": "10.20.5.0", "mask": "255.255.255.0",
                                 "mgtifname": "prov1"},
                                {"net": "10.30.0.0", "mask": "255.255.0.0"},
                                {"net": "10.20.9.0", "mask": "255.255.255.0",
                                 "mgtifname": "nosuch"}])
    m = networks.MasterResolver(None, nets, IFACES)
    assert m.for_node("10.20.1.5") == "10.20.0.1"
    assert m.for_node("10.20.5.5") == "10.20.5.1"         # mgtifname's address
    assert m.for_node("10.20.5.5", "10.20.5.254") == "10.20.5.254"  # noderes.xcatmaster
    assert m.for_node("127.0.0.2") == "127.0.0.1"         # a loopback node is this machine
    with pytest.raises(networks.NetworkError, match="no address in network .*10.30.0.0/16"):
        m.for_node("10.30.0.7")
    with pytest.raises(networks.NetworkError, match="on interface nosuch"):
        m.for_node("10.20.9.7")
    with pytest.raises(networks.NetworkError, match="10.99.0.7 is in no networks row"):
        m.for_node("10.99.0.7")
    with pytest.raises(networks.NetworkError, match="no hosts.ip"):
        m.for_node(None)
    site = networks.MasterResolver("localhost", nets, IFACES)
    with pytest.raises(networks.NetworkError, match="^site.master is localhost, a loopback"):
        site.for_node("10.20.1.5")
    assert site.for_node("127.0.0.3") == "localhost"
    assert networks.MasterResolver("mn", [], []).for_node(None) == "mn"


def test_scan_skips_loopback_link_local_and_duplicates():
    rows = networks.scan(IFACES + [("dup", ipaddress.IPv4Interface("10.20.7.7/16"))])
    assert [(r["netname"], r["mgtifname"], r["tftpserver"]) for r in rows] == [
        ("192_0_2_0-255_255_255_0", "eth0", "192.0.2.2"),
        ("10_20_0_0-255_255_0_0", "prov0", "10.20.0.1"),
        ("10_20_5_0-255_255_255_0", "prov1", "10.20.5.1")]


def test_local_interfaces_sees_loopback():
    assert ("lo", ipaddress.IPv4Interface("127.0.0.1/8")) in networks.local_interfaces()


@pytest.fixture
def cl(store, tmp_path):
    tftp = tmp_path / "tftproot"
    store.upsert("site", {"key": "tftpdir"}, {"value": str(tftp)})
    # the answer file's needs: install tree with the postscripts, a crypted root password
    from nodemgr.netboot import mknb

    mknb.install_postscripts(str(tmp_path / "install"))
    store.upsert("site", {"key": "installdir"}, {"value": str(tmp_path / "install")})
    store.upsert("passwd", {"key": "system", "username": "root"},
                 {"password": "$6$salt$" + "B" * 86})
    store.insert("osimage", {"imagename": "img", "provmethod": "install", "osvers": "rhels9",
                             "osarch": "x86_64", "profile": "compute"})
    store.insert("boottarget", {"bprofile": "rhels9-x86_64", "kernel": "xcat/k",
                                "initrd": "xcat/i", "kcmdline": "inst.repo=http://!myipfn!/x"})
    for n, ip, mac in (("n1", "192.0.2.11", "52:54:00:00:00:01"),
                       ("n2", "203.0.113.5", "52:54:00:00:00:02"),
                       ("lo1", "127.0.0.2", "52:54:00:00:00:03")):
        store.insert("nodelist", {"node": n, "groups": "all"})
        store.insert("hosts", {"node": n, "ip": ip})
        store.insert("mac", {"node": n, "mac": mac})
        store.insert("noderes", {"node": n, "netboot": "grub2"})
    store.insert("networks", {"net": "192.0.2.0", "mask": "255.255.255.0"})
    return store, tftp


def _set(store, nodes, state):
    return {r.node: (r.ok, r.message) for r in nodeset(store, Resolver(store), nodes, state)}


def test_nodeset_uses_the_interface_address_and_refuses_loopback(cl, monkeypatch):
    store, tftp = cl
    monkeypatch.setattr(networks, "local_interfaces", lambda: IFACES)
    res = _set(store, ["n1", "n2", "lo1"], "osimage=img")
    assert res["n1"] == (True, "install rhels9-x86_64-compute")
    assert res["n2"] == (False, "site.master is not set and 203.0.113.5 is in no networks "
                                "row (run makenetworks, or set site.master)")
    assert res["lo1"][0]
    text = (tftp / "boot/grub2/n1").read_text()
    assert "inst.repo=http://192.0.2.2/x" in text
    assert "inst.ks=http://192.0.2.2/install/autoinst/n1" in text
    answer = (tftp.parent / "install" / "autoinst" / "n1").read_text()
    assert "http://192.0.2.2:8080/install-finished/n1?token=" in answer
    assert not (tftp / "boot/grub2/n2").exists()
    # a loopback site.master (or callbackurl host) is refused for n1, not for lo1
    store.upsert("site", {"key": "master"}, {"value": "127.0.0.1"})
    res = _set(store, ["n1", "lo1"], "osimage=img")
    assert res["n1"][0] is False and res["n1"][1].startswith("site.master is 127.0.0.1, a loop")
    assert res["lo1"][0]
    assert "inst.repo=http://192.0.2.2/x" in (tftp / "boot/grub2/n1").read_text()  # unchanged
    store.upsert("site", {"key": "master"}, {"value": "192.0.2.2"})
    store.upsert("site", {"key": "callbackurl"}, {"value": "http://localhost:8081"})
    ok, msg = _set(store, ["n1"], "osimage=img")["n1"]
    assert not ok and msg.startswith("site.callbackurl's host is localhost, a loopback")
    # a local boot needs no address at all
    store.delete("site", {"key": "master"})
    assert _set(store, ["n2"], "boot") == {"n2": (True, "boot")}


def test_grub2_http_url_path_is_tftpboot_whatever_tftpdir_is(cl):
    store, tftp = cl
    store.upsert("site", {"key": "master"}, {"value": "192.0.2.2"})
    store.upsert("noderes", {"node": "n1"}, {"netboot": "grub2-http"})
    assert _set(store, ["n1"], "osimage=img")["n1"][0]
    text = (tftp / "boot/grub2/n1").read_text()
    assert str(tftp) not in text and "/tftpboot/xcat/k" in text


def test_nodemgr_config_prints_each_setting_with_its_source(cli_env, capsys, tmp_path):
    assert tablecmds.chtab(["key=tftpdir", f"site.value={tmp_path}"]) == 0
    capsys.readouterr()
    assert configcmds.nodemgr_config([]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"db: {cli_env} ($NODEMGR_DB)"
    assert f"tftpdir: {tmp_path} (site table)" in lines
    assert "master: - (unset)" in lines and "httpport: 80 (built-in default)" in lines
    assert len(lines) == 1 + len(settings.SETTINGS)
    assert nodecmds.nodeadd(["a1", "groups=all", "hosts.ip=127.0.0.9"]) == 0
    assert nodecmds.nodeadd(["a2", "groups=all", "hosts.ip=198.51.100.9"]) == 0
    capsys.readouterr()
    assert configcmds.nodemgr_config(["-n", "a1,a2", "--json"]) == 1
    out, err = capsys.readouterr()
    rows = [json.loads(x) for x in out.splitlines()]
    assert {"node": "a1", "ok": True, "master": "127.0.0.1"} in rows
    assert rows[-1]["node"] == "a2" and "198.51.100.9 is in no networks row" in rows[-1]["error"]


def test_makenetworks_adds_once_and_displays(cli_env, capsys, monkeypatch):
    monkeypatch.setattr(networks, "local_interfaces", lambda: IFACES)
    assert configcmds.makenetworks(["-d"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("#netname,net,mask,mgtifname,gateway,")
    assert '"10_20_5_0-255_255_255_0","10.20.5.0","255.255.255.0","prov1"' in out
    assert Store(cli_env).select("networks") == []        # -d changes nothing
    assert configcmds.makenetworks([]) == 0
    assert "10_20_0_0-255_255_0_0: added" in capsys.readouterr().out
    assert tablecmds.chtab(["net=10.20.0.0,mask=255.255.0.0", "networks.gateway=10.20.0.254"]) == 0
    assert configcmds.makenetworks([]) == 0
    assert "10_20_0_0-255_255_0_0: exists, left as it is" in capsys.readouterr().out
    rows = Store(cli_env).select("networks")
    assert len(rows) == 3 and {r["gateway"] for r in rows} == {None, "10.20.0.254"}


def test_help_of_the_new_commands():
    for cmd in ("nodemgr-config", "makenetworks"):
        r = subprocess.run([f"bin/{cmd}", "--help"], capture_output=True, text=True)
        assert r.returncode == 0 and "exit status:" in r.stdout and "examples:" in r.stdout


def test_install_urls_carry_the_http_port(cl):
    store, tftp = cl
    store.upsert("site", {"key": "master"}, {"value": "192.0.2.2"})
    store.upsert("site", {"key": "httpport"}, {"value": "8081"})
    assert _set(store, ["n1"], "osimage=img")["n1"][0]
    assert "inst.repo=http://192.0.2.2:8081/x " in (tftp / "boot/grub2/n1").read_text()


@pytest.mark.parametrize("bad", ['console="ttyS0', "quiet \\"])
def test_unsplittable_addkcmdline_fails_that_node_only(cl, bad):
    store, tftp = cl
    store.upsert("site", {"key": "master"}, {"value": "192.0.2.2"})
    store.upsert("hosts", {"node": "n2"}, {"ip": "192.0.2.12"})
    store.upsert("bootparams", {"node": "n2"}, {"addkcmdline": bad})
    res = _set(store, ["n1", "n2"], "osimage=img")
    assert res["n1"][0]
    assert res["n2"] == (False, f"bootparams.addkcmdline {bad!r} cannot be split into words: "
                                + ("No closing quotation" if '"' in bad else "No escaped character"))
    assert not (tftp / "boot/grub2/n2").exists() and store.get("chain", {"node": "n2"}) is None
    store.delete("bootparams", {"node": "n2"})
    store.upsert("linuximage", {"imagename": "img"}, {"addkcmdline": bad})
    ok, msg = _set(store, ["n1"], "osimage=img")["n1"]
    assert not ok and msg.startswith(f"linuximage.addkcmdline of img {bad!r} cannot be split")
