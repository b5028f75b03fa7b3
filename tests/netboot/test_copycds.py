"""copycds on ISOs built with xorriso (RHEL, RHEV-H, XCP-ng, unknown), on both back ends."""

from __future__ import annotations

import gzip
import os

import pytest

from nodemgr.netboot import copycds as cc
from tests.fixtures.iso import builders


@pytest.fixture(scope="module")
def isos(tmp_path_factory):
    d = tmp_path_factory.mktemp("isos")
    return {k: f(str(d / f"{k}.iso")) for k, f in (
        ("rhel", builders.rhel_iso), ("rhevh", builders.rhevh_iso), ("xen", builders.xen_iso),
        ("unknown", builders.unknown_iso))}


@pytest.fixture
def site(store, tmp_path):
    store.upsert("site", {"key": "tftpdir"}, {"value": str(tmp_path / "tftp")})
    store.upsert("site", {"key": "installdir"}, {"value": str(tmp_path / "install")})
    return store, tmp_path


def test_rhel_import_tree_rows_and_boot_files(site, isos):
    store, tmp = site
    r = cc.copycds(store, isos["rhel"])
    assert (r.media.distname, r.media.arch, r.osimage) == ("rhels8.6", "x86_64",
                                                           "rhels8.6-x86_64-install-compute")
    tree = tmp / "install/rhels8.6/x86_64"
    assert (tree / ".treeinfo").is_file() and len(os.listdir(tree / "Packages")) == 5
    assert (tmp / "tftp/xcat/rhels8.6/x86_64/vmlinuz").read_bytes().startswith(b"KERNEL-rhel86")
    assert store.get("osimage", {"imagename": r.osimage})["provmethod"] == "install"
    assert store.get("boottarget", {"bprofile": "rhels8.6-x86_64"})["initrd"] == \
        "xcat/rhels8.6/x86_64/initrd.img"
    assert store.get("osdistro", {"osdistroname": "rhels8.6-x86_64"})["dirpaths"] == str(tree)
    with pytest.raises(cc.MediaError, match="already been copied"):
        cc.copycds(store, isos["rhel"], nonoverwrite=True)
    cc.copycds(store, isos["rhel"])  # without -w a re-import overwrites


def test_rhevh_kept_whole_and_initrd_carries_the_iso(site, isos):
    store, tmp = site
    r = cc.copycds(store, isos["rhevh"], name="rhevh6.5", arch="x86_64")
    assert r.media.kind == "rhevh"
    tree = tmp / "install/rhevh6.5/x86_64"
    iso = open(isos["rhevh"], "rb").read()
    assert (tree / "rhevh.iso").read_bytes() == iso
    initrd = (tmp / "tftp/xcat/rhevh6.5/x86_64/initrd0.img").read_bytes()
    orig = b"INITRD-rhevh\n" * 64
    assert initrd.startswith(orig)
    cpio = gzip.decompress(initrd[len(orig):])
    assert cpio.startswith(b"070701") and b"rhevh.iso\0" in cpio[:200] and iso in cpio
    assert cpio.rstrip(b"\0").endswith(b"TRAILER!!!")


def test_xen_multiboot_boottarget(site, isos):
    store, _ = site
    r = cc.copycds(store, isos["xen"], noosimage=True)
    assert r.media.distname == "xcp-ng8.2.1" and r.osimage is None
    bt = store.get("boottarget", {"bprofile": "xcp-ng8.2.1-x86_64"})
    assert bt["kernel"] == "xcat/xcp-ng8.2.1/x86_64/vmlinuz!xcat/xcp-ng8.2.1/x86_64/xen.gz"
    assert " --- " in bt["kcmdline"] and store.select("osimage") == []


def test_bad_media_changes_nothing(site, isos):
    store, tmp = site
    with pytest.raises(cc.MediaError, match="try -n <osver>"):
        cc.copycds(store, isos["unknown"])
    with pytest.raises(cc.MediaError, match="Requested distribution architecture ppc64le, "
                                            "but media is x86_64"):
        cc.copycds(store, isos["rhel"], arch="ppc64le")
    with pytest.raises(cc.MediaError, match="unable to find/read"):
        cc.copycds(store, str(tmp / "missing.iso"))
    assert store.select("osimage") == [] and not (tmp / "install").exists()


def test_inspect(isos):
    m = cc.inspect(isos["rhel"])
    assert (m.distname, m.arch, m.discno) == ("rhels8.6", "x86_64", "1")
    assert cc.inspect(isos["rhel"], name="centos8").distname == "centos8"
