"""nodeset: state machine, byte-exact boot files for every format, aliases, atomicity and
bad input, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import re
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodemgr.errors import UsageError
from nodemgr.netboot import bootfiles, mknb, tokens
from nodemgr.netboot.nodeset import _next_steps, callback_url, nodeset, parse_steps
from nodemgr.tables.resolve import Resolver

IMG = "rhels8.6-x86_64-install-compute"
MAC = "52:54:00:aa:bb:01"
ROOT_HASH = "$6$testsalt$" + "A" * 86
KS = "inst.ks=http://10.0.0.1/install/autoinst/n1"


def answer_token(tftp, node: str) -> str:
    """The node's token, from its answer file (``<tftp>/../install/autoinst/<node>``)."""
    text = (tftp.parent / "install" / "autoinst" / node).read_text()
    m = re.search(rf"install-finished/{node}\?token=([\w-]+)", text)
    assert m, text
    return m.group(1)


@pytest.fixture
def cl(store, tmp_path):
    """n1 (MAC, IP), n2 (IP only), site with a TFTP root and master, the RHEL image (its
    answer file: the shipped kickstart; the install tree with the shipped postscripts and
    a crypted root password)."""
    tftp = tmp_path / "tftp"
    mknb.install_postscripts(str(tmp_path / "install"))
    for k, v in {"tftpdir": str(tftp), "master": "10.0.0.1",
                 "callbackurl": "http://10.0.0.1:8080",
                 "installdir": str(tmp_path / "install")}.items():
        store.upsert("site", {"key": k}, {"value": v})
    store.upsert("passwd", {"key": "system", "username": "root"}, {"password": ROOT_HASH})
    for n, ip in (("n1", "10.0.0.11"), ("n2", "10.0.0.12")):
        store.insert("nodelist", {"node": n, "groups": "compute,all"})
        store.insert("hosts", {"node": n, "ip": ip})
    store.insert("mac", {"node": "n1", "mac": MAC.upper()})
    store.insert("osimage", {"imagename": IMG, "provmethod": "install", "osvers": "rhels8.6",
                             "osarch": "x86_64", "profile": "compute"})
    store.insert("boottarget", {"bprofile": "rhels8.6-x86_64",
                                "kernel": "xcat/rhels8.6/x86_64/vmlinuz",
                                "initrd": "xcat/rhels8.6/x86_64/initrd.img",
                                "kcmdline": "inst.repo=http://!myipfn!/install/rhels8.6/x86_64"})
    return store, Resolver(store), tftp


def run(cl, nodes, state):
    store, res, _ = cl
    return {r.node: (r.ok, r.message) for r in nodeset(store, res, nodes, state)}


def tokenless(store):
    store.upsert("site", {"key": "callbacktokens"}, {"value": "no"})


PXE_INSTALL = """\
#install rhels8.6-x86_64-compute
DEFAULT xCAT
LABEL xCAT
 KERNEL xcat/rhels8.6/x86_64/vmlinuz
 APPEND initrd=xcat/rhels8.6/x86_64/initrd.img inst.repo=http://10.0.0.1/install/rhels8.6/x86_64 BOOTIF=01-52-54-00-aa-bb-01 inst.ks=http://10.0.0.1/install/autoinst/n1
"""
IPXE_INSTALL = """\
#!ipxe
#install rhels8.6-x86_64-compute
kernel http://10.0.0.1/tftpboot/xcat/rhels8.6/x86_64/vmlinuz initrd=initrd inst.repo=http://10.0.0.1/install/rhels8.6/x86_64 BOOTIF=01-52-54-00-aa-bb-01 inst.ks=http://10.0.0.1/install/autoinst/n1
initrd --name initrd http://10.0.0.1/tftpboot/xcat/rhels8.6/x86_64/initrd.img
boot
"""
GRUB_INSTALL = """\
#install rhels8.6-x86_64-compute
set timeout=5
set default="xCAT OS Deployment"
menuentry "xCAT OS Deployment" {
    insmod http
    insmod tftp
    set root=(http,10.0.0.1)
    echo Loading Install kernel ...
    linux /tftpboot/xcat/rhels8.6/x86_64/vmlinuz inst.repo=http://10.0.0.1/install/rhels8.6/x86_64 BOOTIF=01-52-54-00-aa-bb-01 inst.ks=http://10.0.0.1/install/autoinst/n1
    echo Loading initial ramdisk ...
    initrd /tftpboot/xcat/rhels8.6/x86_64/initrd.img
}
"""
PXE_BOOT = "#boot\nDEFAULT xCAT\nLABEL xCAT\n LOCALBOOT 0\n"
IPXE_BOOT = "#!ipxe\n#boot\nexit\n"
GRUB_BOOT = ('#boot\nset timeout=5\nset default="Boot from local disk"\n'
             'menuentry "Boot from local disk" {\n    exit\n}\n')

LAYOUT = {
    "pxe": ("pxelinux.cfg/n1", ["pxelinux.cfg/01-52-54-00-aa-bb-01", "pxelinux.cfg/0A00000B"]),
    "xnba": ("xcat/xnba/nodes/n1", ["xcat/xnba/macs/01-52-54-00-aa-bb-01"]),
    "grub2": ("boot/grub2/n1", ["boot/grub2/grub.cfg-01-52-54-00-aa-bb-01",
                                "boot/grub2/grub.cfg-0A00000B"]),
}


@pytest.mark.parametrize("fmt,install,boot", [("pxe", PXE_INSTALL, PXE_BOOT),
                                              ("xnba", IPXE_INSTALL, IPXE_BOOT),
                                              ("grub2", GRUB_INSTALL, GRUB_BOOT)])
def test_golden_files_and_aliases(cl, fmt, install, boot):
    store, _, tftp = cl
    tokenless(store)
    store.insert("noderes", {"node": "n1", "netboot": fmt})
    assert run(cl, ["n1"], f"osimage={IMG}") == {"n1": (True, "install rhels8.6-x86_64-compute")}
    main, aliases = LAYOUT[fmt]
    assert (tftp / main).read_text() == install
    for a in aliases:  # every alias is a symlink to the node file: never disagrees
        assert (tftp / a).is_symlink() and (tftp / a).read_text() == install
    assert run(cl, ["n1"], "next") == {"n1": (True, "boot")}
    assert (tftp / main).read_text() == boot
    assert all((tftp / a).read_text() == boot for a in aliases)
    assert run(cl, ["n1"], "stat") == {"n1": (True, "boot")}
    assert run(cl, ["n1"], "offline") == {"n1": (True, "offline")}
    assert not (tftp / main).exists() and not any(os.path.lexists(tftp / a) for a in aliases)


def test_install_writes_tables_status_and_token(cl):
    store, _, tftp = cl
    assert run(cl, ["n1", "n2"], f"osimage={IMG}") == {
        "n1": (True, "install rhels8.6-x86_64-compute"),
        "n2": (False, "No MAC address available for this node")}
    chain = store.get("chain", {"node": "n1"})
    assert (chain["currstate"], chain["currchain"]) == ("install rhels8.6-x86_64-compute", "boot")
    nt = store.get("nodetype", {"node": "n1"})
    assert (nt["os"], nt["arch"], nt["profile"], nt["provmethod"]) == ("rhels8.6", "x86_64",
                                                                      "compute", IMG)
    assert store.get("nodelist", {"node": "n1"})["status"] == "installing"
    assert store.get("bootparams", {"node": "n1"})["kernel"] == "xcat/rhels8.6/x86_64/vmlinuz"
    text = (tftp / "pxelinux.cfg/n1").read_text()
    assert KS in text and "token" not in text   # the answer file's URL, no token
    token = answer_token(tftp, "n1")
    # issue 12 item 7: the live token is in the answer file only, in no table
    for name in ("nodetoken", "bootparams", "chain", "nodelist", "auditlog"):
        assert token not in repr(store.select(name, include_disabled=True)), name
    assert store.get("bootparams", {"node": "n1"})["kcmdline"].endswith(KS)
    # n2 failed: nothing of it changed
    assert store.get("chain", {"node": "n2"}) is None and not (tftp / "pxelinux.cfg/n2").exists()
    # the callback's sequence
    with store.transaction():
        assert tokens.consume(store, "n1", token)
        assert run(cl, ["n1"], "next") == {"n1": (True, "boot")}
    assert tokens.consume(store, "n1", token) is False
    assert (tftp / "pxelinux.cfg/n1").read_text() == PXE_BOOT


def test_legacy_install_and_unknown_osimage_per_node(cl):
    store, _, _ = cl
    store.insert("mac", {"node": "n2", "mac": "52:54:00:aa:bb:02"})
    store.insert("nodetype", {"node": "n1", "os": "rhels8.6", "arch": "x86_64",
                              "profile": "compute"})
    assert run(cl, ["n1", "n2"], "install") == {
        "n1": (True, "install rhels8.6-x86_64-compute"),
        "n2": (False, "nodetype.os not defined for n2")}
    assert run(cl, ["n2", "n1"], "osimage=nosuch")["n2"] == (
        False, "Cannot find the OS image nosuch in the osimage table")


def test_multi_step_chain(cl):
    store, _, tftp = cl
    res = run(cl, ["n1"], f"boot,osimage={IMG}")
    assert res == {"n1": (True, "boot")}
    assert store.get("chain", {"node": "n1"})["currchain"] == f"osimage={IMG}"
    assert "LOCALBOOT 0" in (tftp / "pxelinux.cfg/n1").read_text()
    assert [run(cl, ["n1"], "next")["n1"][1] for _ in range(3)] == [
        "install rhels8.6-x86_64-compute", "boot", "boot"]
    assert run(cl, ["n1"], "enact") == {"n1": (True, "boot")}


@pytest.mark.parametrize("state", ["shell", "standby", "runcmd=bmcsetup",
                                   "runimage=http://10.0.0.1/img.tgz", "runcmd=x,boot"])
def test_genesis_states_are_refused_and_change_nothing(cl, state):
    """Without a genesis image and xcatd such a boot file could only hang: refused."""
    store, _, tftp = cl
    run(cl, ["n1"], "boot")
    before = (tftp / "pxelinux.cfg/n1").read_text(), store.get("chain", {"node": "n1"})
    ok, msg = run(cl, ["n1"], state)["n1"]
    assert not ok and "genesis" in msg and "use boot or osimage=<image>" in msg
    assert ((tftp / "pxelinux.cfg/n1").read_text(), store.get("chain", {"node": "n1"})) == before


def test_next_of_a_fresh_node_is_refused_not_a_genesis_file(cl):
    store, _, tftp = cl
    ok, msg = run(cl, ["n1"], "next")["n1"]
    assert not ok and msg.startswith("state 'standby' (next: the chain has no further step)")
    assert not (tftp / "pxelinux.cfg").exists() or not list((tftp / "pxelinux.cfg").iterdir())


def test_xen_multiboot_and_rhevh_lines(cl):
    store, _, tftp = cl
    tokenless(store)
    store.insert("osimage", {"imagename": "xen", "provmethod": "install", "osvers": "xcp-ng8.2",
                             "osarch": "x86_64", "profile": "compute"})
    store.insert("linuximage", {"imagename": "xen", "boottarget": "xcp"})
    store.insert("boottarget", {"bprofile": "xcp", "kernel": "x/vmlinuz!x/xen.gz",
                                "initrd": "x/install.img",
                                "kcmdline": "dom0_mem=1024M --- console=hvc0 install"})
    run(cl, ["n1"], "osimage=xen")
    dom0 = ("console=hvc0 install BOOTIF=01-52-54-00-aa-bb-01 "
            "nodemgr.callback=http://10.0.0.1:8080/install-finished/n1")
    assert (tftp / "pxelinux.cfg/n1").read_text().splitlines()[3:] == [
        " KERNEL mboot.c32", f" APPEND x/xen.gz dom0_mem=1024M --- x/vmlinuz {dom0} --- x/install.img"]
    store.upsert("noderes", {"node": "n1"}, {"netboot": "grub2"})
    run(cl, ["n1"], "enact")
    g = (tftp / "boot/grub2/n1").read_text()
    assert "    multiboot2 /tftpboot/x/xen.gz dom0_mem=1024M\n" in g
    assert f"    module2 /tftpboot/x/vmlinuz {dom0}\n" in g
    assert "    module2 /tftpboot/x/install.img\n" in g
    assert not (tftp / "pxelinux.cfg/n1").exists()  # format switch removes the old files
    store.upsert("noderes", {"node": "n1"}, {"netboot": "xnba"})
    run(cl, ["n1"], "enact")
    x = (tftp / "xcat/xnba/nodes/n1").read_text().splitlines()
    assert x[2:] == ["kernel http://10.0.0.1/tftpboot/x/xen.gz dom0_mem=1024M",
                     f"module http://10.0.0.1/tftpboot/x/vmlinuz {dom0}",
                     "module http://10.0.0.1/tftpboot/x/install.img", "boot"]
    # RHEV-H
    store.insert("osimage", {"imagename": "rh", "provmethod": "install", "osvers": "rhevh6.5",
                             "osarch": "x86_64", "profile": "compute"})
    store.insert("boottarget", {"bprofile": "rhevh6.5-x86_64", "kernel": "r/vmlinuz0",
                                "initrd": "r/initrd0.img"})
    assert run(cl, ["n1"], "osimage=rh")["n1"] == (
        False, "hypervisor.mgr (the RHEV-M server for management_server=) is not set")
    store.insert("hypervisor", {"node": "n1", "mgr": "rhevm.example.com"})
    store.insert("passwd", {"key": "rhevh", "username": "root", "password": "$1$ab$xyz"})
    assert run(cl, ["n1"], "osimage=rh")["n1"] == (True, "install rhevh6.5-x86_64-compute")
    line = (tftp / "xcat/xnba/nodes/n1").read_text().splitlines()[2]
    assert line.startswith("kernel http://10.0.0.1/tftpboot/r/vmlinuz0 initrd=initrd rootflags=loop "
                           "root=live:/rhevh.iso ")
    assert line.endswith(" BOOTIF=52:54:00:aa:bb:01 ip=dhcp rootpw=$1$ab$xyz ssh_pwauth=1 "
                         "management_server=rhevm.example.com rhevm_admin_password=$1$ab$xyz "
                         "local_boot_trigger=http://10.0.0.1:8080/xcatrhevh/rhevh_finish_install/n1")


def test_bad_state_and_bad_node_name_change_nothing(cl):
    store, res, tftp = cl
    for bad in ("bogus", "boot,stat", "runcmd=", "runimage=file:///x", ""):
        with pytest.raises(UsageError):
            nodeset(store, res, ["n1"], bad)
    assert store.select("chain") == [] and not tftp.exists()
    r = nodeset(store, res, ["../etc", "n1"], "boot")
    assert not r[0].ok and "not usable as a boot file name" in r[0].message and r[1].ok
    assert sorted(os.listdir(tftp / "pxelinux.cfg")) == sorted(
        ["n1", "01-52-54-00-aa-bb-01", "0A00000B"])
    with pytest.raises(UsageError):
        bootfiles.TftpTree(str(tftp)).path("../x")


def test_mac_change_moves_alias_and_mac_taken_over(cl):
    store, _, tftp = cl
    run(cl, ["n1"], "boot")
    store.update("mac", {"node": "n1"}, {"mac": "52:54:00:aa:bb:09"})
    store.insert("mac", {"node": "n2", "mac": MAC})
    res = Resolver(store)
    nodeset(store, res, ["n1", "n2"], "boot")
    d = tftp / "pxelinux.cfg"
    assert os.readlink(d / "01-52-54-00-aa-bb-09") == "n1"
    assert os.readlink(d / "01-52-54-00-aa-bb-01") == "n2"


def test_readers_never_see_partial_files(cl):
    """A reader polling the alias while nodeset rewrites it sees a whole old or new file."""
    store, _, tftp = cl
    tokenless(store)
    run(cl, ["n1"], "boot")
    path = tftp / "pxelinux.cfg/01-52-54-00-aa-bb-01"
    seen, stop = set(), threading.Event()

    def reader():
        while not stop.is_set():
            try:
                seen.add(path.read_text())
            except FileNotFoundError:
                seen.add(None)

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(30):
            run(cl, ["n1"], "boot" if i % 2 else f"osimage={IMG}")
    finally:
        stop.set()
        t.join()
    assert seen <= {PXE_BOOT, PXE_INSTALL}


def test_callback_url_defaults(store):
    store.upsert("site", {"key": "master"}, {"value": "mn"})
    assert callback_url(store, "n1", None) == "http://mn:8080/install-finished/n1"
    assert callback_url(store, "n1", "T", rhevh=True) == (
        "http://mn:8080/xcatrhevh/rhevh_finish_install/n1?token=T")


STEP = st.sampled_from(["boot", "shell", "standby", "runcmd=x", "runimage=http://h/i",
                        f"osimage={IMG}", "netboot"])


@settings(max_examples=300, deadline=None)
@given(chain=st.lists(STEP, max_size=5), cs=st.sampled_from(["", "boot", "runcmd=x", "shell",
                                                              "install a-b-c", "netboot a-b-c"]),
       currchain=st.lists(STEP, max_size=4))
def test_next_reaches_a_fixed_point_and_never_repeats_one_shot_steps(chain, cs, currchain):
    a = {"chain.chain": ",".join(chain), "chain.currstate": cs,
         "chain.currchain": ",".join(currchain), "nodetype.provmethod": IMG}
    path = []
    for _ in range(len(chain) + len(currchain) + 3):
        step, rest = _next_steps(a)
        path.append(step)
        cur = {"osimage": f"install {IMG}"}.get(step.split("=")[0], step)
        a = {**a, "chain.currstate": cur, "chain.currchain": ",".join(rest)}
    last = path[-1]
    assert path[-2] == last and last.split("=")[0] in ("boot", "standby", "shell", "netboot")
    for x, y in zip(path, path[1:], strict=False):
        if x.startswith(("runcmd", "runimage", "osimage")):
            assert y != x or x in currchain + chain  # only repeated when listed twice


def test_parse_steps():
    assert parse_steps("runcmd=bmcsetup,shell") == ["runcmd=bmcsetup", "shell"]
    with pytest.raises(UsageError, match="Unknown state foo requested"):
        parse_steps("foo")


def test_many_nodes_one_token_each_and_next_disarms_all(cl):
    """The bulk table writes (upsert_many/delete_many): every node gets its own hashed
    token, status and chain; ``next`` then deletes every token."""
    store, _, tftp = cl
    nodes = [f"m{i:02d}" for i in range(40)]
    for i, n in enumerate(nodes):
        store.insert("nodelist", {"node": n, "groups": "compute,all"})
        store.insert("hosts", {"node": n, "ip": f"10.0.1.{i}"})
        store.insert("mac", {"node": n, "mac": f"52:54:00:00:01:{i:02x}"})
    res = Resolver(store)
    out = {r.node: (r.ok, r.message) for r in nodeset(store, res, nodes, f"osimage={IMG}")}
    assert out == {n: (True, "install rhels8.6-x86_64-compute") for n in nodes}
    toks = [answer_token(tftp, n) for n in nodes]
    assert len(set(toks)) == len(nodes)
    rows = {r["node"]: r for r in store.select("nodetoken")}
    assert sorted(rows) == sorted(nodes)
    assert all(t not in repr(rows) for t in toks)
    assert {store.get("nodelist", {"node": n})["status"] for n in nodes} == {"installing"}
    assert {store.get("chain", {"node": n})["currchain"] for n in nodes} == {"boot"}
    out = {r.node: r.message for r in nodeset(store, Resolver(store), nodes, "next")}
    assert set(out.values()) == {"boot"}
    assert store.select("nodetoken") == []
    assert not tokens.consume(store, nodes[0], toks[0])


def test_tree_trusts_one_scan_of_an_existing_tree(tmp_path):
    """A new TftpTree over files left by an earlier command: unchanged aliases are not
    touched, stale ones and other formats' files go, a stale temporary name or a regular
    file in an alias's place is replaced."""
    root = tmp_path / "tftp"
    spec = bootfiles.BootSpec(node="n1", comment="boot", mac=MAC, ip="10.0.0.11")
    old = bootfiles.TftpTree(str(root))
    old.install(spec)
    old.install(bootfiles.BootSpec(node="n1", comment="boot", netboot="xnba", mac=MAC))
    old.install(spec)  # back to pxe: the xnba files of n1 are gone
    assert not (root / "xcat/xnba/nodes/n1").exists()
    assert not os.path.lexists(root / "xcat/xnba/macs/01-52-54-00-aa-bb-01")
    d = root / "pxelinux.cfg"
    os.symlink("n1", d / "01-52-54-00-aa-bb-77")            # stale alias of n1
    (root / "boot/grub2").mkdir(parents=True)
    (root / "boot/grub2/n1").write_text("old grub\n")        # n1 in another format
    ino = os.lstat(d / "01-52-54-00-aa-bb-01").st_ino
    new = bootfiles.TftpTree(str(root))
    os.symlink("elsewhere", d / f".0A00000B{new._suffix}")   # stale temporary symlink
    os.unlink(d / "0A00000B")
    (d / "0A00000B").write_text("not a link\n")              # regular file in an alias's place
    assert new.install(spec) == ["pxelinux.cfg/n1", "pxelinux.cfg/01-52-54-00-aa-bb-01",
                                 "pxelinux.cfg/0A00000B"]
    assert os.lstat(d / "01-52-54-00-aa-bb-01").st_ino == ino  # untouched
    assert os.readlink(d / "0A00000B") == "n1"
    assert not os.path.lexists(d / "01-52-54-00-aa-bb-77")
    assert not (root / "boot/grub2/n1").exists()
    assert sorted(os.listdir(d)) == ["01-52-54-00-aa-bb-01", "0A00000B", "n1"]
    new.remove("n1")
    assert os.listdir(d) == []


def test_one_node_uses_its_alias_record_not_a_scan(cl, monkeypatch):
    """A few nodes never read whole directories: a node whose MAC and IP changed since its
    last nodeset loses its stale aliases through its bootalias record; an alias another
    node took over meanwhile stays; a format change and offline clean up the same way."""
    store, _, tftp = cl
    run(cl, ["n1"], "boot")
    d = tftp / "pxelinux.cfg"
    assert store.get("bootalias", {"node": "n1"})["aliases"] == (
        "pxelinux.cfg/01-52-54-00-aa-bb-01,pxelinux.cfg/0A00000B")

    def no_scan(self, family):
        raise AssertionError("directory scanned")

    monkeypatch.setattr(bootfiles.TftpTree, "_scan", no_scan)
    store.update("mac", {"node": "n1"}, {"mac": "52:54:00:aa:bb:09"})
    store.update("hosts", {"node": "n1"}, {"ip": "10.0.0.99"})
    assert run(cl, ["n1"], "boot") == {"n1": (True, "boot")}
    assert sorted(os.listdir(d)) == ["01-52-54-00-aa-bb-09", "0A000063", "n1"]
    assert os.readlink(d / "0A000063") == "n1"
    # n2 takes n1's MAC over; n1 moves on: the alias now n2's is left alone
    store.insert("mac", {"node": "n2", "mac": "52:54:00:aa:bb:09"})
    assert run(cl, ["n2"], "boot")["n2"][0]
    store.update("mac", {"node": "n1"}, {"mac": MAC})
    assert run(cl, ["n1"], "boot")["n1"][0]
    assert os.readlink(d / "01-52-54-00-aa-bb-09") == "n2"
    assert os.readlink(d / "01-52-54-00-aa-bb-01") == "n1"
    store.upsert("noderes", {"node": "n1"}, {"netboot": "xnba"})
    assert run(cl, ["n1"], "boot")["n1"][0]
    assert sorted(os.listdir(d)) == ["01-52-54-00-aa-bb-09", "0A00000C", "n2"]
    assert os.readlink(tftp / "xcat/xnba/macs/01-52-54-00-aa-bb-01") == "../nodes/n1"
    assert run(cl, ["n1"], "offline") == {"n1": (True, "offline")}
    assert os.listdir(tftp / "xcat/xnba/macs") == [] == os.listdir(tftp / "xcat/xnba/nodes")
    assert store.get("bootalias", {"node": "n1"}) is None
    assert sorted(os.listdir(d)) == ["01-52-54-00-aa-bb-09", "0A00000C", "n2"]


def test_node_without_record_falls_back_to_one_scan(cl):
    """Files written before alias records were kept (no bootalias row): the node's stale
    aliases are still found (one scan), and the record is written for next time."""
    store, _, tftp = cl
    tree = bootfiles.TftpTree(str(tftp))
    tree.install(bootfiles.BootSpec(node="n1", comment="boot", mac="52:54:00:aa:bb:77",
                                    ip="10.0.0.77"))
    assert run(cl, ["n1"], "boot")["n1"][0]
    assert sorted(os.listdir(tftp / "pxelinux.cfg")) == ["01-52-54-00-aa-bb-01", "0A00000B",
                                                         "n1"]
    assert store.get("bootalias", {"node": "n1"}) is not None


def test_prepare_then_apply_and_a_stale_plan_is_detected(cl):
    """prepare() writes nothing; apply() writes what nodeset() would; a plan whose node's
    chain row changed since prepare() reports itself as changed (the callback re-plans)."""
    from nodemgr.netboot.nodeset import apply, prepare

    store, res, tftp = cl
    tokenless(store)
    run(cl, ["n1"], f"osimage={IMG}")
    p = prepare(store, res, ["n1"], "next")
    assert p.unchanged() and store.get("chain", {"node": "n1"})["currstate"].startswith("install")
    run(cl, ["n1"], "boot")
    assert not p.unchanged()
    p = prepare(store, Resolver(store), ["n1"], "next")
    assert p.unchanged()
    assert [(r.node, r.ok, r.message) for r in apply(p)] == [("n1", True, "boot")]


def _tree_state(root) -> dict:
    """Every entry under *root*: path -> ("link", target) / ("file", text)."""
    out = {}
    for d, _dirs, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            rel = os.path.relpath(p, root)
            out[rel] = (("link", os.readlink(p)) if os.path.islink(p)
                        else ("file", open(p).read()))
    return out


def test_a_rolled_back_transaction_leaves_the_boot_files_as_they_were(cl):
    """apply() inside a caller's transaction (as the callback does): nothing is renamed
    into place before the commit; a rollback removes the temporary files, so tables and
    TFTP tree stay in step."""
    from nodemgr.netboot.nodeset import apply, prepare

    store, res, tftp = cl
    tokenless(store)
    run(cl, ["n1"], f"osimage={IMG}")
    before, chain = _tree_state(tftp), store.get("chain", {"node": "n1"})
    p = prepare(store, Resolver(store), ["n1"], "next")
    with pytest.raises(RuntimeError, match="caller fails"), store.transaction():
        assert [r.ok for r in apply(p)] == [True]
        assert _tree_state(tftp).items() >= before.items()  # old files still served
        raise RuntimeError("caller fails after apply")
    assert _tree_state(tftp) == before  # and no temporary file left behind
    assert store.get("chain", {"node": "n1"}) == chain
    p = prepare(store, Resolver(store), ["n1"], "next")
    with store.transaction():
        apply(p)
        # not yet: the commit has not happened
        assert (tftp / "pxelinux.cfg/n1").read_text() == PXE_INSTALL
    assert (tftp / "pxelinux.cfg/n1").read_text() == PXE_BOOT


def test_a_failing_statement_changes_neither_tables_nor_files(cl):
    """A database error in nodeset's transaction (here a trigger refusing nodelist
    writes) rolls everything back: before, the files were already in place."""
    store, res, tftp = cl
    tokenless(store)
    run(cl, ["n1"], "boot")
    before = _tree_state(tftp)
    if store.dialect == "sqlite":
        store._exec("CREATE TRIGGER refuse BEFORE UPDATE ON nodelist "
                    "BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END")
    else:
        store._exec("CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'refused by a trigger'; END $$ LANGUAGE plpgsql")
        store._exec("CREATE TRIGGER refuse BEFORE UPDATE ON nodelist "
                    "FOR EACH ROW EXECUTE FUNCTION refuse()")
    from nodemgr.errors import TableError

    with pytest.raises(TableError, match="refused by a trigger"):
        nodeset(store, Resolver(store), ["n1"], f"osimage={IMG}")
    assert _tree_state(tftp) == before
    assert store.get("chain", {"node": "n1"})["currstate"] == "boot"


def test_a_rename_failing_after_the_commit_is_reported_for_its_node(cl):
    """The one window left: the tables committed, then a rename fails (here a directory
    sits where n1's file goes). n1 is reported (tables ahead of files: run nodeset
    again); n2's files are in place."""
    from nodemgr.netboot.nodeset import apply, prepare

    store, res, tftp = cl
    tokenless(store)
    store.insert("mac", {"node": "n2", "mac": "52:54:00:aa:bb:02"})
    p = prepare(store, res, ["n1", "n2"], "boot")
    with store.transaction():
        results = apply(p)
        (tftp / "pxelinux.cfg/n1").mkdir()
        (tftp / "pxelinux.cfg/n1/x").write_text("in the way\n")
    assert [r.ok for r in results] == [True, True]  # known only after the commit:
    assert list(p.unpublished) == ["n1"]
    assert "boot file pxelinux.cfg/n1 could not be put in place" in p.unpublished["n1"]
    assert (tftp / "pxelinux.cfg/n2").read_text() == PXE_BOOT
    # when nodeset owns the transaction, the failure is the node's result
    (tftp / "pxelinux.cfg/n1/x").unlink()
    (tftp / "pxelinux.cfg/n1").rmdir()
    assert run(cl, ["n1", "n2"], "boot") == {"n1": (True, "boot"), "n2": (True, "boot")}


def test_staged_tree_answers_from_its_pending_changes(tmp_path):
    """Two nodes swap a MAC within one staged batch: the second node's stale-alias check
    sees the first one's pending re-link, so the swapped alias survives publish (as it
    does written at once)."""
    results = {}
    for staged in (False, True):
        root = tmp_path / ("staged" if staged else "direct")
        first = bootfiles.TftpTree(str(root))
        first.install_node(bootfiles.BootSpec(node="n1", comment="boot", mac=MAC), [])
        first.install_node(bootfiles.BootSpec(node="n2", comment="boot",
                                              mac="52:54:00:aa:bb:02"), [])
        t = bootfiles.TftpTree(str(root), staged=staged)
        t.install_node(bootfiles.BootSpec(node="n2", comment="shell", mac=MAC),
                       ["pxelinux.cfg/01-52-54-00-aa-bb-02"])
        t.install_node(bootfiles.BootSpec(node="n1", comment="shell",
                                          mac="52:54:00:aa:bb:02"),
                       ["pxelinux.cfg/01-52-54-00-aa-bb-01"])
        if staged:
            assert os.readlink(root / "pxelinux.cfg/01-52-54-00-aa-bb-01") == "n1"  # pending
            assert t.publish() == []
        results[staged] = _tree_state(root)
    assert results[True] == results[False]
    assert results[True]["pxelinux.cfg/01-52-54-00-aa-bb-01"] == ("link", "n2")
    assert results[True]["pxelinux.cfg/01-52-54-00-aa-bb-02"] == ("link", "n1")


def test_concurrent_nodesets_put_files_in_place_in_commit_order(cl, monkeypatch):
    """Two writers for one node: the second cannot commit until the first's boot files
    are in place (writer lock held through the renames), so the files end as the tables
    do — the second's state — however the two are scheduled."""
    from nodemgr.tables.store import Store

    store, _, tftp = cl
    tokenless(store)
    run(cl, ["n1"], "offline")
    in_publish, release = threading.Event(), threading.Event()
    real_publish = bootfiles.TftpTree.publish

    def slow_publish(self):
        if threading.current_thread().name == "first":
            in_publish.set()
            assert release.wait(10)
        return real_publish(self)

    monkeypatch.setattr(bootfiles.TftpTree, "publish", slow_publish)
    first_store, second_store = Store(store.url), Store(store.url)
    done = {}

    def go(name, st, state):
        done[name] = nodeset(st, Resolver(st), ["n1"], state)[0].ok

    first = threading.Thread(target=go, name="first", args=("first", first_store, "boot"))
    second = threading.Thread(target=go, name="second",
                              args=("second", second_store, f"osimage={IMG}"))
    first.start()
    assert in_publish.wait(10)  # first committed "boot", its files not yet in place
    second.start()
    second.join(1.0)
    assert second.is_alive()  # queued behind the first writer
    assert store.get("chain", {"node": "n1"})["currstate"] == "boot"
    release.set()
    first.join(10)
    second.join(20)
    assert done == {"first": True, "second": True}
    assert store.get("chain", {"node": "n1"})["currstate"].startswith("install")
    assert (tftp / "pxelinux.cfg/n1").read_text().startswith("#install")
    first_store.close()
    second_store.close()
