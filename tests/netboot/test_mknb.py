"""mknb: every loader from the real Debian packages, the GRUB image built by the real
grub-mkimage, idempotence (inodes and mtimes kept), atomic refusal when a package is
missing. Fast (~0.2 s per GRUB build)."""

from __future__ import annotations

import json
import os
import struct

import pytest

from nodemgr.cli.mknbcmd import mknb as mknb_cmd
from nodemgr.netboot import mknb

NAMES = [ld.name for ld in mknb.LOADERS] + [mknb.GRUB_IMAGE]


def snapshot(root) -> dict[str, tuple[int, int, int]]:
    """path -> (inode, mtime_ns, mode) of every file under *root*, stamps included."""
    out = {}
    for d, _dirs, files in os.walk(root):
        for f in files:
            st = os.lstat(os.path.join(d, f))
            out[os.path.relpath(os.path.join(d, f), root)] = (st.st_ino, st.st_mtime_ns,
                                                               st.st_mode)
    return out


def pe_header(data: bytes) -> tuple[int, int, int]:
    """(machine, optional header magic, subsystem) of a PE image (Microsoft PE/COFF
    specification): 0x8664 = x86-64, 0x20b = PE32+, 10 = EFI application — what file(1)
    reports as "PE32+ executable (EFI application) x86-64"."""
    assert data[:2] == b"MZ"
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    assert data[pe:pe + 4] == b"PE\0\0"
    machine = struct.unpack_from("<H", data, pe + 4)[0]
    opt = pe + 24
    return (machine, struct.unpack_from("<H", data, opt)[0],
            struct.unpack_from("<H", data, opt + 68)[0])


def test_every_file_from_the_packages_then_nothing_changes(cli_env, tmp_path, capsys):
    root = tmp_path / "tftp"
    res = mknb.mknb(str(root))
    assert [(r.name, r.action) for r in res] == [(n, "placed") for n in NAMES]
    assert {r.name: r.package for r in res} == {
        "pxelinux.0": "pxelinux", "ldlinux.c32": "syslinux-common",
        "mboot.c32": "syslinux-common", "libcom32.c32": "syslinux-common",
        "libutil.c32": "syslinux-common", "undionly.kpxe": "ipxe", "snponly.efi": "ipxe",
        "ipxe.efi": "ipxe", "boot/grub2/grubx64.efi": "grub-efi-amd64-bin"}
    for ld in mknb.LOADERS:
        placed = root / ld.name
        assert not placed.is_symlink() and placed.stat().st_mode & 0o777 == 0o644
        with open(ld.source, "rb") as fh:  # ipxe.efi: the symlink's target's bytes
            assert placed.read_bytes() == fh.read()
    grub = (root / mknb.GRUB_IMAGE).read_bytes()
    assert pe_header(grub) == (0x8664, 0x20B, 10)  # x86-64 PE32+ EFI application
    assert b"(tftp)/boot/grub2" in grub
    before = snapshot(root)
    assert mknb_cmd(["-p", str(root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    inst = tmp_path / "install"  # cli_env's installdir: the shipped postscripts go there
    scripts = [f"{inst}/postscripts/{n}: placed ({mknb_src(n)})"
               for n in ("remoteshell", "sethostname")]
    assert lines[:-1] == [f"{n}: unchanged ({r.source})"
                          for n, r in zip(NAMES, res, strict=True)] + scripts
    assert lines[-1] == f"{root}: nothing changed (9 files already in place)"
    assert snapshot(root) == before  # same inodes, mtimes, modes; no temporary left
    assert (inst / "postscripts" / "sethostname").stat().st_mode & 0o777 == 0o755
    # a second run keeps the postscripts (a site's edited copy wins) and says nothing
    (inst / "postscripts" / "sethostname").write_text("#!/bin/sh\n# site copy\n")
    assert mknb_cmd(["-p", str(root)]) == 0
    assert "postscripts" not in capsys.readouterr().out
    assert (inst / "postscripts" / "sethostname").read_text().endswith("# site copy\n")


def mknb_src(name: str) -> str:
    from nodemgr.netboot import answerfile

    return os.path.join(answerfile.SHIPPED_POSTSCRIPTS, name)


def test_cli_fills_site_tftpdir_and_is_audited(cli_env, tmp_path, capsys):
    from nodemgr.cli.common import open_store

    store = open_store()
    store.upsert("site", {"key": "tftpdir"}, {"value": str(tmp_path / "site-tftp")})
    assert mknb_cmd(["x86_64", "--json"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(o["file"], o["action"]) for o in out] == [(n, "placed") for n in NAMES] + [
        (f"{tmp_path}/install/postscripts/{n}", "placed") for n in ("remoteshell", "sethostname")]
    assert (tmp_path / "site-tftp" / mknb.GRUB_IMAGE).is_file()
    assert [r["command"] for r in store.select("auditlog")][-1] == "mknb"


def test_changed_files_are_replaced_atomically_and_only_they(tmp_path):
    root = tmp_path / "tftp"
    mknb.mknb(str(root))
    (root / "pxelinux.0").write_bytes(b"stale")
    os.unlink(root / "snponly.efi")
    os.symlink("/usr/lib/ipxe/snponly.efi", root / "snponly.efi")  # leaves the root
    before = snapshot(root)
    res = {r.name: r.action for r in mknb.mknb(str(root))}
    assert res.pop("pxelinux.0") == "updated" and res.pop("snponly.efi") == "updated"
    assert set(res.values()) == {"unchanged"}
    after = snapshot(root)
    assert not (root / "snponly.efi").is_symlink()
    assert {k for k in after if after[k] != before.get(k)} == {"pxelinux.0", "snponly.efi"}


def test_grub_image_rebuilt_only_when_inputs_or_image_change(tmp_path):
    root = tmp_path / "tftp"
    mknb.mknb(str(root))
    image, stamp = root / mknb.GRUB_IMAGE, root / mknb.GRUB_STAMP
    good = image.read_bytes()
    assert "modules " + " ".join(mknb.GRUB_MODULES) in stamp.read_text()
    # a lost stamp: rebuilt, but the same bytes -> the image file is kept
    ino = image.stat().st_ino
    stamp.unlink()
    assert {r.name: r.action for r in mknb.mknb(str(root))}[mknb.GRUB_IMAGE] == "unchanged"
    assert image.stat().st_ino == ino and stamp.exists()
    # a damaged image: rebuilt
    image.write_bytes(good[:1000])
    assert {r.name: r.action for r in mknb.mknb(str(root))}[mknb.GRUB_IMAGE] == "updated"
    assert image.read_bytes() == good


def fake_sysroot(tmp_path, without: str):
    """A sysroot whose files link to the real ones, minus every source of *without*."""
    sysroot = tmp_path / "sysroot"
    for ld in mknb.LOADERS:
        if ld.package != without:
            dst = sysroot / ld.source.lstrip("/")
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(ld.source)
    if without != mknb.GRUB_PACKAGE:
        dst = sysroot / mknb.GRUB_MODDIR.lstrip("/")
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.symlink_to(mknb.GRUB_MODDIR)
    return sysroot


@pytest.mark.parametrize("package", ["pxelinux", "syslinux-common", "ipxe",
                                     "grub-efi-amd64-bin"])
def test_missing_package_is_one_line_and_nothing_placed(cli_env, tmp_path, capsys, package):
    sysroot = fake_sysroot(tmp_path, package)
    root = tmp_path / "tftp"
    with pytest.raises(mknb.MknbError, match=f"Debian package {package}\\)"):
        mknb.mknb(str(root), sysroot=str(sysroot))
    assert not root.exists()
    # an existing tree is left exactly as it was
    root.mkdir()
    (root / "pxelinux.0").write_bytes(b"old")
    before = snapshot(root)
    assert mknb_cmd(["-p", str(root), "--sysroot", str(sysroot)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("Error: boot loader source missing: ")
    assert f"apt-get install {package}); nothing was placed" in err
    assert snapshot(root) == before


def test_sysroot_with_every_package_works_and_grub_failure_places_nothing(tmp_path,
                                                                          monkeypatch):
    sysroot = fake_sysroot(tmp_path, "none")
    root = tmp_path / "tftp"
    assert {r.action for r in mknb.mknb(str(root), sysroot=str(sysroot))} == {"placed"}
    # grub-mkimage failing (an unknown target): the error says so, nothing is placed
    other = tmp_path / "other"
    monkeypatch.setattr(mknb, "GRUB_FORMAT", "nosuch-efi")
    with pytest.raises(mknb.MknbError, match="grub-mkimage failed: .*nothing was placed"):
        mknb.mknb(str(other))
    assert [p for p in other.rglob("*") if p.is_file()] == []


def test_cli_arguments(cli_env, tmp_path, capsys):
    with pytest.raises(SystemExit):
        mknb_cmd(["--help"])
    text = capsys.readouterr().out
    assert text.startswith("Usage: mknb ") and "grub-efi-amd64-bin" in text and "Secure Boot" in text
    assert mknb_cmd(["ppc64", "-p", str(tmp_path / "t")]) == 1
    assert "architecture 'ppc64' is not supported" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()
