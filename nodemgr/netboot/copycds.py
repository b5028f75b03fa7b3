"""copycds: import installation media (ISO 9660 images) without mounting them.

Reads the ISO with pycdlib (no loop mount, no root), identifies the distribution and
architecture, copies the tree to ``<installdir>/<distname>/<arch>`` (or ``-p``), puts the
boot kernel and initrd under ``<tftpdir>/xcat/<distname>/<arch>/`` and records the
``osdistro``, ``boottarget``, ``osimage`` and ``linuximage`` rows ``nodeset`` uses.

Recognised media (xCAT ``anaconda.pm``/``rhevm.pm copycd``, reference §8):

* Red Hat family: ``.treeinfo`` (INI, read with ``configparser``: legacy ``[general]`` and
  productmd's ``[release]``/``[tree]``/``[images-<arch>]``) and ``.discinfo`` (timestamp,
  description, arch, disc numbers). Name ``rhels<ver>``, ``centos<ver>``, ``rocky<ver>``,
  ``alma<ver>``, ``fedora<ver>``, ``ol<ver>``.
* RHEV-H (oVirt Node live ISO): ``isolinux/version`` with ``PRODUCT='... Hypervisor'``, or
  ``-n rhevh*``; name ``rhevh<ver>``. The ISO is also kept whole as ``rhevh.iso`` and the
  install initrd ``initrd0.img`` gets a gzipped newc cpio holding ``rhevh.iso`` appended, as
  xCAT's mkinstall does (the live installer finds ``root=live:/rhevh.iso`` there).
* Xen installer (XenServer / XCP-ng layout): ``.treeinfo`` ``[platform]``/``[branding]`` or
  ``boot/xen.gz``; name ``<brand><ver>`` (``xcp-ng8.2.1``); multiboot kernel
  ``vmlinuz!xen.gz``.

Fingerprint: SHA-256 of the volume id and the sorted (path, size) list, appended to
``<target>/.fingerprint``; ``-w`` refuses media whose fingerprint is already there.
This module must never mount anything, never write outside the target, the TFTP
``xcat/<distname>/<arch>`` directory and the tables, and never print (the command does).
"""

from __future__ import annotations

import configparser
import gzip
import hashlib
import io
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass

from nodemgr import settings
from nodemgr.errors import NodemgrError, UsageError

NOT_IDENTIFIED = "copycds could not identify the ISO supplied, you may wish to try -n <osver>"

_FAMILIES = (("red hat enterprise linux", "rhels"), ("centos", "centos"),
             ("rocky", "rocky"), ("almalinux", "alma"), ("alma", "alma"),
             ("fedora", "fedora"), ("oracle linux", "ol"), ("scientific", "SL"))


class MediaError(NodemgrError):
    """The media cannot be read, identified or imported."""


@dataclass
class Media:
    """What an ISO is.

    Attributes:
        distname: e.g. ``rhels8.6``, ``rhevh6.5``, ``xcp-ng8.2.1``.
        arch: e.g. ``x86_64``.
        discno: disc number(s) from ``.discinfo`` (``1`` when unknown).
        kind: ``rhel``, ``rhevh`` or ``xen``.
        kernel, initrd: paths inside the ISO (Xen: the dom0 kernel and the installer image).
        hypervisor: Xen only: the hypervisor inside the ISO.
        volid: the ISO's volume id.
    """

    distname: str
    arch: str
    discno: str = "1"
    kind: str = "rhel"
    kernel: str = ""
    initrd: str = ""
    hypervisor: str = ""
    volid: str = ""


def _norm_arch(arch: str) -> str:
    arch = arch.strip()
    if re.fullmatch(r"i[3-6]86", arch):
        return "x86"
    return "ppc64" if arch == "ppc" else arch


class Iso:
    """A read-only ISO opened with pycdlib; paths are Rock Ridge / Joliet names
    (``/.treeinfo``), falling back to plain ISO 9660 names."""

    def __init__(self, path: str) -> None:
        import pycdlib
        from pycdlib.pycdlibexception import PyCdlibException

        self.path = path
        self._iso = pycdlib.PyCdlib()
        try:
            self._iso.open(path)
        except FileNotFoundError:
            raise MediaError(f"The management server was unable to find/read {path}") from None
        except (PyCdlibException, OSError) as exc:
            raise MediaError(f"{path} is not a readable ISO 9660 image: {exc}") from None
        if self._iso.has_rock_ridge():
            self._kw = "rr_path"
        elif self._iso.has_joliet():
            self._kw = "joliet_path"
        else:
            self._kw = "iso_path"
        self.volid = self._iso.pvd.volume_identifier.decode("ascii", "replace").strip()

    def close(self) -> None:
        """Close the image."""
        self._iso.close()

    def _key(self, path: str) -> dict:
        if self._kw == "iso_path":
            return {"iso_path": path.upper() + ";1"}
        return {self._kw: path}

    def exists(self, path: str) -> bool:
        """True when the file *path* exists in the image."""
        try:
            self._iso.get_record(**self._key(path))
            return True
        except Exception:  # pycdlib raises its own exception for missing paths
            return False

    def read(self, path: str) -> bytes | None:
        """The bytes of *path*, or None when it does not exist."""
        buf = io.BytesIO()
        try:
            self._iso.get_file_from_iso_fp(buf, **self._key(path))
        except Exception:
            return None
        return buf.getvalue()

    def files(self) -> list[tuple[str, int]]:
        """Every file as (path, size), sorted by path."""
        out = []
        for root, _dirs, names in self._iso.walk(**{self._kw: "/"}):
            for n in names:
                p = os.path.join(root, n)
                if self._kw == "iso_path":
                    n = n.split(";")[0]
                    p = os.path.join(root, n)
                rec = self._iso.get_record(**self._key(p) if self._kw != "iso_path"
                                           else {"iso_path": os.path.join(root, n) + ";1"})
                out.append((p, rec.get_data_length()))
        return sorted(out)

    def extract(self, path: str, fh) -> None:
        """Write *path*'s content to the binary file object *fh*."""
        self._iso.get_file_from_iso_fp(fh, **self._key(path))


def _ini(data: bytes | None) -> configparser.ConfigParser | None:
    if data is None:
        return None
    cp = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        cp.read_string(data.decode("utf-8", "replace"))
    except configparser.Error:
        return None
    return cp


def _family_name(text: str) -> str | None:
    low = text.lower()
    for needle, short in _FAMILIES:
        if needle in low:
            return short
    return None


def identify(iso: Iso, name: str | None = None, arch: str | None = None) -> Media:
    """Identify the media (see module docstring).

    Args:
        iso: the open image.
        name: ``-n`` distro name (overrides detection).
        arch: ``-a`` architecture (must agree with the media's when both are known).
    Returns:
        A :class:`Media`.
    Raises:
        MediaError: not identifiable (message suggests ``-n``) or architecture mismatch.
    """
    ti = _ini(iso.read("/.treeinfo"))
    di_raw = iso.read("/.discinfo")
    di = di_raw.decode("utf-8", "replace").splitlines() if di_raw else []
    version = iso.read("/isolinux/version")
    media: Media | None = None
    if version is not None or (name or "").startswith("rhev"):
        vals = dict(re.findall(r"^(\w+)='?([^'\n]*)'?$", (version or b"").decode("utf-8",
                                                                                  "replace"), re.M))
        if "Hypervisor" in vals.get("PRODUCT", "") or (name or "").startswith("rhev"):
            media = Media(distname=f"rhevh{vals.get('VERSION', '')}", arch="x86_64",
                          kind="rhevh", kernel="/isolinux/vmlinuz0",
                          initrd="/isolinux/initrd0.img")
            if vals.get("VERSION", "") == "" and not name:
                media = None
    if media is None and ti is not None and (ti.has_section("platform")
                                             or ti.has_section("branding")):
        sec = "branding" if ti.has_section("branding") else "platform"
        brand = ti.get(sec, "name", fallback="xen").lower().replace(" ", "")
        media = Media(distname=brand + ti.get(sec, "version", fallback=""), arch="x86_64",
                      kind="xen", kernel="/boot/vmlinuz", initrd="/install.img",
                      hypervisor="/boot/xen.gz")
    if media is None and ti is None and iso.exists("/boot/xen.gz") and name:
        media = Media(distname=name, arch=arch or "x86_64", kind="xen", kernel="/boot/vmlinuz",
                      initrd="/install.img", hypervisor="/boot/xen.gz")
    if media is None and (ti is not None or di):
        fam = ver = None
        march = ""
        if ti is not None:
            fam = ti.get("general", "family", fallback=None) or ti.get("release", "name",
                                                                       fallback=None)
            ver = ti.get("general", "version", fallback=None) or ti.get("release", "version",
                                                                        fallback=None)
            march = ti.get("general", "arch", fallback="") or ti.get("tree", "arch", fallback="")
        if len(di) >= 3:
            march = march or di[2].strip()
            if not fam and len(di) >= 2:
                m = re.match(r"(.*?)\s*([\d.]+)\s*$", di[1].strip())
                if m and _family_name(m.group(1)):
                    fam, ver = m.group(1), m.group(2)
        short = _family_name(fam or "")
        if short and ver:
            distname = f"{short}{ver}"
        elif name:
            distname = name
        else:
            distname = ""
        if distname:
            kernel, initrd = "/images/pxeboot/vmlinuz", "/images/pxeboot/initrd.img"
            if ti is not None and march and ti.has_section(f"images-{march}"):
                kernel = "/" + ti.get(f"images-{march}", "kernel", fallback=kernel).lstrip("/")
                initrd = "/" + ti.get(f"images-{march}", "initrd", fallback=initrd).lstrip("/")
            media = Media(distname=distname, arch=march, kind="rhel", kernel=kernel,
                          initrd=initrd, discno=(di[3].strip() if len(di) >= 4 else "1") or "1")
    if media is None and name and iso.exists("/images/pxeboot/vmlinuz"):
        media = Media(distname=name, arch=arch or "", kind="rhel",
                      kernel="/images/pxeboot/vmlinuz", initrd="/images/pxeboot/initrd.img")
    if media is None:
        raise MediaError(NOT_IDENTIFIED)
    if name:
        media.distname = name
    media.arch = _norm_arch(media.arch) if media.arch else ""
    if arch:
        want = _norm_arch(arch)
        if media.arch and media.arch != want:
            raise MediaError(f"Requested distribution architecture {want}, but media is "
                             f"{media.arch}")
        media.arch = want
    if not media.arch:
        raise MediaError("the media does not name its architecture; give it with -a")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", media.distname):
        raise MediaError(f"distribution name '{media.distname}' is not usable as a directory")
    media.volid = iso.volid
    return media


def fingerprint(iso: Iso, files: list[tuple[str, int]]) -> str:
    """SHA-256 hex of the volume id and the sorted (path, size) list."""
    h = hashlib.sha256(iso.volid.encode())
    for p, size in files:
        h.update(f"\0{p}\0{size}".encode())
    return h.hexdigest()


def _newc(name: str, size: int, mode: int = 0o100644) -> bytes:
    """A cpio "newc" header for one file (``man 5 cpio``), name padded to 4 bytes."""
    raw = name.encode() + b"\0"
    fields = (1, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, len(raw), 0)
    head = b"070701" + b"".join(f"{v:08X}".encode() for v in fields) + raw
    return head + b"\0" * (-len(head) % 4)


def append_iso_to_initrd(initrd: str, iso_path: str, out: str) -> None:
    """Write *out* = *initrd* + gzip(newc cpio holding *iso_path* as ``rhevh.iso``), the way
    xCAT builds RHEV-H's ``initrd0.img`` (Linux unpacks concatenated initramfs archives)."""
    size = os.path.getsize(iso_path)
    tmp = out + ".part"
    with open(tmp, "wb") as dst:
        with open(initrd, "rb") as src:
            shutil.copyfileobj(src, dst, 1 << 20)
        with gzip.GzipFile(fileobj=dst, mode="wb", compresslevel=1, mtime=0) as gz:
            gz.write(_newc("rhevh.iso", size))
            with open(iso_path, "rb") as src:
                shutil.copyfileobj(src, gz, 1 << 20)
            gz.write(b"\0" * (-size % 4))
            trailer = _newc("TRAILER!!!", 0, mode=0)
            gz.write(trailer)
    os.replace(tmp, out)


DEFAULT_KCMDLINE = {
    "rhel": "inst.repo=http://!myipfn!/install/{d}/{a} ip=dhcp",
    "xen": "dom0_mem=1024M,max:1024M dom0_max_vcpus=2 com1=115200,8n1 console=com1,vga --- "
           "console=hvc0 console=tty0 install",
    "rhevh": "",
}


@dataclass
class Result:
    """What copycds did: the media, the target directory, bytes copied, osimage made."""

    media: Media
    target: str
    nbytes: int
    osimage: str | None


def copycds(store, iso_path: str, *, name: str | None = None, arch: str | None = None,
            path: str | None = None, noosimage: bool = False, nonoverwrite: bool = False,
            installdir: str | None = None, tftpdir: str | None = None,
            progress: Callable[[int], None] | None = None,
            on_total: Callable[[int], None] | None = None) -> Result:
    """Import one ISO (module docstring).

    Args:
        store: the table store (rows written in one transaction at the end).
        iso_path: the ISO file.
        name, arch: ``-n``/``-a`` overrides.
        path: ``-p`` target directory (default ``<installdir>/<distname>/<arch>``).
        noosimage: ``-o``: no osimage/linuximage rows.
        nonoverwrite: ``-w``: refuse media already imported (fingerprint).
        installdir, tftpdir: override the installdir / tftpdir settings
            (:mod:`nodemgr.settings`: site table, configuration file, built-in default).
        progress: called with the number of bytes copied since the last call.
        on_total: called once with the total bytes to copy.
    Returns:
        A :class:`Result`.
    Raises:
        MediaError: unreadable/unidentifiable media, architecture mismatch, ``-w`` repeat.
        OSError: the copy failed (the tables are unchanged).
    """
    if not os.path.isfile(iso_path):
        raise MediaError(f"The management server was unable to find/read {iso_path}"
                         + (" (only ISO files are supported)" if os.path.exists(iso_path) else ""))
    iso = Iso(iso_path)
    try:
        media = identify(iso, name, arch)
        files = iso.files()
        fp = fingerprint(iso, files)
        instdir = installdir or settings.get(store, "installdir")
        target = os.path.abspath(path or os.path.join(instdir, media.distname, media.arch))
        fpfile = os.path.join(target, ".fingerprint")
        if nonoverwrite and os.path.isfile(fpfile):
            with open(fpfile, encoding="ascii", errors="replace") as fh:
                if fp in fh.read().split():
                    raise MediaError("The disc iso has already been copied in!")
        if os.path.islink(target):
            os.unlink(target)
        total = sum(s for _, s in files)
        if media.kind == "rhevh":
            total += os.path.getsize(iso_path)
        if on_total:
            on_total(total)
        for p, size in files:
            dst = os.path.join(target, p.lstrip("/"))
            if not os.path.abspath(dst).startswith(target + os.sep):
                raise MediaError(f"unsafe path in the ISO: {p}")
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            tmp = os.path.join(os.path.dirname(dst), f".{os.path.basename(dst)}.part")
            with open(tmp, "wb") as fh:
                iso.extract(p, fh)
            os.replace(tmp, dst)
            if progress:
                progress(size)
    finally:
        iso.close()
    if media.kind == "rhevh":
        tmp = os.path.join(target, ".rhevh.iso.part")
        shutil.copyfile(iso_path, tmp)
        os.replace(tmp, os.path.join(target, "rhevh.iso"))
        if progress:
            progress(os.path.getsize(iso_path))
    with open(fpfile, "a", encoding="ascii") as fh:
        fh.write(fp + "\n")
    # boot files for nodeset, under the TFTP root
    tdir = tftpdir or settings.get(store, "tftpdir")
    rel = f"xcat/{media.distname}/{media.arch}"
    bootdir = os.path.join(tdir, rel)
    os.makedirs(bootdir, exist_ok=True)

    def place(src_in_iso: str, as_name: str) -> str:
        src = os.path.join(target, src_in_iso.lstrip("/"))
        if not os.path.isfile(src):
            raise MediaError(f"the media has no {src_in_iso}")
        tmp = os.path.join(bootdir, f".{as_name}.part")
        shutil.copyfile(src, tmp)
        os.replace(tmp, os.path.join(bootdir, as_name))
        return f"{rel}/{as_name}"

    if media.kind == "rhevh":
        kernel = place(media.kernel, "vmlinuz0")
        append_iso_to_initrd(os.path.join(target, media.initrd.lstrip("/")),
                             os.path.join(target, "rhevh.iso"),
                             os.path.join(bootdir, "initrd0.img"))
        initrd = f"{rel}/initrd0.img"
    elif media.kind == "xen":
        kernel = place(media.kernel, "vmlinuz") + "!" + place(media.hypervisor, "xen.gz")
        initrd = place(media.initrd, "install.img")
    else:
        kernel = place(media.kernel, "vmlinuz")
        initrd = place(media.initrd, "initrd.img")
    kcmd = DEFAULT_KCMDLINE[media.kind].format(d=media.distname, a=media.arch)
    dist = f"{media.distname}-{media.arch}"
    m = re.match(r"([A-Za-z\-]+?)([\d.]*)$", media.distname)
    base, ver = (m.group(1), m.group(2)) if m else (media.distname, "")
    major, _, minor = ver.partition(".")
    image = None
    with store.transaction():
        store.upsert("osdistro", {"osdistroname": dist},
                     {"basename": base, "majorversion": major or None,
                      "minorversion": minor or None, "arch": media.arch, "type": "Linux",
                      "dirpaths": target})
        store.upsert("boottarget", {"bprofile": dist},
                     {"kernel": kernel, "initrd": initrd, "kcmdline": kcmd})
        if not noosimage:
            image = f"{dist}-install-compute"
            store.upsert("osimage", {"imagename": image},
                         {"profile": "compute", "imagetype": "linux", "provmethod": "install",
                          "osdistroname": dist, "osname": "Linux", "osvers": media.distname,
                          "osarch": media.arch})
            store.upsert("linuximage", {"imagename": image},
                         {"boottarget": dist, "pkgdir": target})
    return Result(media, target, total, image)


def inspect(iso_path: str, name: str | None = None, arch: str | None = None) -> Media:
    """``-i``: identify only. Raises MediaError like :func:`copycds`."""
    if not os.path.isfile(iso_path):
        raise MediaError(f"The management server was unable to find/read {iso_path}")
    iso = Iso(iso_path)
    try:
        return identify(iso, name, arch)
    finally:
        iso.close()


__all__ = ["copycds", "inspect", "identify", "Media", "MediaError", "NOT_IDENTIFIED",
           "UsageError"]
