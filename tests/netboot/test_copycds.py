"""copycds on ISOs built with xorriso (RHEL, RHEV-H, XCP-ng, Debian, unknown), on both back
ends."""

from __future__ import annotations

import gzip
import hashlib
import os

import pytest

from nodemgr.netboot import copycds as cc
from tests.fixtures.iso import builders, debian


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


# -- Debian ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def debs(tmp_path_factory):
    d = tmp_path_factory.mktemp("debisos")
    specs = {
        "netinst": {},
        "dvd": dict(info=debian.DVD_12_4, version="12.4"),
        "dvd2": dict(info=debian.DVD2_12_4, version="12.4", installer=False),
        "bd": dict(info=debian.BD_12_5),
        "11": dict(info=debian.NETINST_11_11, codename="bullseye", version="11.11"),
        "arm64": dict(info=debian.ARM64_12_5, archs=("arm64",)),
        "multi": dict(info=debian.MULTI_12_5, archs=("amd64", "i386")),
        "noversion": dict(info=debian.TESTING, codename="trixie", version=None),
        "nocodename": dict(release=debian.release_text(with_codename=False)),
        "wrongcodename": dict(release=debian.release_text(codename="trixie")),
        "norelease": dict(codename="trixie"),  # .disk/info says Bookworm
        "escape": dict(links={"pool/evil": "../../../etc"}),
        "absolute": dict(links={"pool/evil": "/etc/shadow"}),
        "testing-link": dict(links={"dists/testing": "bookworm"}),
        "ubuntu": dict(info='Ubuntu-Server 20.04.1 LTS "Focal Fossa" - Release amd64 '
                            "(20200731)", codename="focal", version="20.04"),
    }
    return {k: debian.debian_iso(str(d / f"{k}.iso"), **kw) for k, kw in specs.items()}


@pytest.mark.parametrize("which, distname, arch, discno, kernel", [
    ("netinst", "debian12.5", "x86_64", "1", "/install.amd/vmlinuz"),
    ("dvd", "debian12.4", "x86_64", "1", "/install.amd/vmlinuz"),
    ("bd", "debian12.5", "x86_64", "1", "/install.amd/vmlinuz"),
    ("11", "debian11.11", "x86_64", "1", "/install.amd/vmlinuz"),
    ("arm64", "debian12.5", "aarch64", "1", "/install.a64/vmlinuz"),
])
def test_debian_identified(debs, which, distname, arch, discno, kernel):
    m = cc.inspect(debs[which])
    assert (m.kind, m.distname, m.arch, m.discno, m.kernel) == ("debian", distname, arch,
                                                                  discno, kernel)
    assert m.initrd == kernel.replace("vmlinuz", "initrd.gz")
    assert m.codename == ("bullseye" if which == "11" else "bookworm")


def test_debian_inspect_command_output(debs, capsys):
    from nodemgr.cli.netbootcmds import copycds as cmd

    assert cmd(["-i", debs["netinst"]]) == 0
    assert capsys.readouterr().out == "DISTNAME:debian12.5\nARCH:x86_64\nDISCNO:1\n"
    assert cmd(["-i", "-a", "arm64", debs["arm64"]]) == 0
    assert capsys.readouterr().out == "DISTNAME:debian12.5\nARCH:aarch64\nDISCNO:1\n"


def test_debian_name_and_arch_overrides(debs):
    assert cc.inspect(debs["netinst"], name="debian12-site").distname == "debian12-site"
    for a in ("x86_64", "amd64"):  # ours or Debian's name
        assert cc.inspect(debs["netinst"], arch=a).arch == "x86_64"
    with pytest.raises(cc.MediaError, match="^Requested distribution architecture aarch64, "
                                            "but media is x86_64$"):
        cc.inspect(debs["netinst"], arch="aarch64")
    with pytest.raises(cc.MediaError, match=r"several architectures \(x86_64, x86\); give "
                                            "one with -a"):
        cc.inspect(debs["multi"])
    m = cc.inspect(debs["multi"], arch="i386")
    assert (m.arch, m.kernel) == ("x86", "/install.386/vmlinuz")
    with pytest.raises(cc.MediaError, match="media is x86_64, x86$"):
        cc.inspect(debs["multi"], arch="ppc64le")
    # no version on the media: -n names it
    assert cc.inspect(debs["noversion"], name="debian13").distname == "debian13"


def _tables(store):
    return {t: store.select(t) for t in ("osdistro", "boottarget", "osimage", "linuximage")}


def test_debian_import_tree_boot_files_and_rows(site, debs):
    store, tmp = site
    r = cc.copycds(store, debs["netinst"])
    assert (r.osimage, r.osimages) == ("debian12.5-x86_64-install-compute",
                                       ["debian12.5-x86_64-install-compute",
                                        "debian12.5-x86_64-install-xen"])
    tree = tmp / "install/debian12.5/x86_64"
    assert r.target == str(tree)
    # the copy is whole (md5sum.txt checks out) and the tree is an apt archive: the Release,
    # the Packages it lists and every Filename in them, relative to the tree
    for line in (tree / "md5sum.txt").read_text().splitlines():
        digest, rel = line.split("  ", 1)
        assert hashlib.md5((tree / rel).read_bytes()).hexdigest() == digest, rel
    assert "Codename: bookworm" in (tree / "dists/bookworm/Release").read_text()
    assert (tree / ".disk/info").read_text().startswith("Debian GNU/Linux 12.5.0")
    pkgs = gzip.decompress((tree / "dists/bookworm/main/binary-amd64/Packages.gz")
                           .read_bytes()).decode()
    filename = next(x.split(": ")[1] for x in pkgs.splitlines() if x.startswith("Filename:"))
    assert filename.startswith("pool/main/") and (tree / filename).is_file()
    # debian-cd's links are links again, inside the tree
    assert os.readlink(tree / "debian") == "." and os.readlink(tree / "dists/stable") == \
        "bookworm"
    assert (tree / "dists/stable/Release").is_file()
    assert (tree / "firmware/firmware-misc-nonfree_20230625-2_all.deb").read_bytes() == \
        b"FIRMWARE\n" * 16
    boot = tmp / "tftp/xcat/debian12.5/x86_64"
    assert (boot / "vmlinuz").read_bytes() == (tree / "install.amd/vmlinuz").read_bytes()
    assert (boot / "initrd.img").read_bytes() == (tree / "install.amd/initrd.gz").read_bytes()
    rows = _tables(store)
    od = rows["osdistro"][0]
    assert (od["osdistroname"], od["basename"], od["majorversion"], od["minorversion"],
            od["arch"], od["type"], od["dirpaths"]) == ("debian12.5-x86_64", "debian", "12",
                                                        "5", "x86_64", "Linux", str(tree))
    bt = store.get("boottarget", {"bprofile": "debian12.5-x86_64"})
    assert (bt["kernel"], bt["initrd"], bt["kcmdline"]) == (
        "xcat/debian12.5/x86_64/vmlinuz", "xcat/debian12.5/x86_64/initrd.img",
        "vga=normal fb=false")
    assert len(rows["osimage"]) == 2 and len(rows["linuximage"]) == 2
    for prof in ("compute", "xen"):
        img = f"debian12.5-x86_64-install-{prof}"
        osi = store.get("osimage", {"imagename": img})
        assert {k: osi[k] for k in ("profile", "imagetype", "provmethod", "osdistroname",
                                    "osname", "osvers", "osarch")} == {
            "profile": prof, "imagetype": "linux", "provmethod": "install",
            "osdistroname": "debian12.5-x86_64", "osname": "Linux", "osvers": "debian12.5",
            "osarch": "x86_64"}
        li = store.get("linuximage", {"imagename": img})
        assert (li["boottarget"], li["pkgdir"]) == ("debian12.5-x86_64", str(tree))
    # -w: the same media again is refused, nothing changes
    with pytest.raises(cc.MediaError, match="^The disc iso has already been copied in!$"):
        cc.copycds(store, debs["netinst"], nonoverwrite=True)
    assert _tables(store) == rows
    cc.copycds(store, debs["netinst"])  # without -w a re-import overwrites (links too)
    assert os.readlink(tree / "debian") == "." and _tables(store) == rows


def test_debian_arm64_import_and_suite_links(site, debs):
    store, tmp = site
    r = cc.copycds(store, debs["arm64"], noosimage=True)
    assert r.osimages == [] and store.select("osimage") == []
    assert (tmp / "tftp/xcat/debian12.5/aarch64/vmlinuz").read_bytes().startswith(
        b"KERNEL-debian-arm64")
    assert store.get("boottarget", {"bprofile": "debian12.5-aarch64"})["kcmdline"] == \
        "fb=false"
    cc.copycds(store, debs["testing-link"], path=str(tmp / "t"))
    assert not os.path.lexists(tmp / "t/dists/testing")  # left out, as xCAT removes it
    assert os.path.islink(tmp / "t/dists/stable")


@pytest.mark.parametrize("which, message", [
    ("noversion", "^copycds could not identify the ISO supplied, you may wish to try "
                  r"-n <osver> \(.disk/info names no Debian version: 'Debian GNU/Linux "
                  "testing "),
    ("nocodename", "^dists/bookworm/Release has no Codename field; without it the tree "
                   "cannot serve as an apt mirror$"),
    ("wrongcodename", "^the media disagrees with itself: .disk/info names bookworm, "
                      "dists/bookworm/Release Codename trixie$"),
    ("norelease", "^the media disagrees with itself: .disk/info names bookworm, "
                  "dists/trixie/Release Codename trixie$"),
    ("ubuntu", "^copycds could not identify the ISO supplied, you may wish to try -n "
               "<osver>$"),
    ("dvd2", "^this is disc 2 of a Debian set; import the first disc"),
    ("escape", r"^unsafe symbolic link in the ISO: /pool/evil -> \.\./\.\./\.\./etc$"),
    ("absolute", "^unsafe symbolic link in the ISO: /pool/evil -> /etc/shadow$"),
])
def test_debian_bad_media_changes_nothing(site, debs, which, message):
    store, tmp = site
    before = _tables(store)
    with pytest.raises(cc.MediaError, match=message) as exc:
        cc.copycds(store, debs[which])
    assert "\n" not in str(exc.value)
    assert _tables(store) == before
    assert not (tmp / "install").exists() and not (tmp / "tftp").exists()
