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
* Debian (netinst, CD, DVD and BD images; xCAT ``debian.pm copycd``): ``.disk/info``, the
  one line debian-cd writes (``Debian GNU/Linux 12.5.0 "Bookworm" - Official amd64 NETINST
  with firmware 20240210-11:27``), gives the version (name ``debian<major>.<minor>``,
  ``debian12.5``), the codename, the architecture (Debian's names mapped to ours:
  ``amd64``→``x86_64``, ``arm64``→``aarch64``, ``i386``→``x86``, ``ppc64el``→``ppc64le``)
  and the disc number (``Binary-<n>``). ``dists/<codename>/Release`` (deb822 fields
  ``Codename``, ``Version``, ``Architectures``) must be there and agree: it is what makes the
  copied tree an apt archive the installer can use as its HTTP mirror
  (``mirror/http/directory=/install/<distname>/<arch>``), so ``dists/`` and ``pool/`` are
  copied as they are (only the ``dists/testing``/``dists/unstable`` links are left out, as
  xCAT removes them). Installer: ``install.amd/`` (``install.a64/``, ``install.386/``,
  ``install/`` for other architectures) ``vmlinuz`` + ``initrd.gz``. Two default images:
  ``<distname>-<arch>-install-compute`` and ``-install-xen`` (profile ``xen``: the Xen dom0
  host preseed). Only the first disc of a set holds the installer; later discs are refused.
  Ubuntu media (also ``.disk/info``) are not recognised.

Rock Ridge symbolic links (Debian media have ``debian -> .``, ``dists/stable -> <codename>``
and ``firmware/*.deb -> ../pool/...``) are recreated as links. A link that is absolute or
whose target leads out of the tree is refused before anything is written (one that only
gets out through another link, when it is made: it is removed and the import fails).

Fingerprint: SHA-256 of the volume id, the sorted (path, size) list and the (link, target)
list, appended to ``<target>/.fingerprint``; ``-w`` refuses media whose fingerprint is
already there.
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
from dataclasses import dataclass, field

from nodemgr import settings
from nodemgr.errors import NodemgrError, UsageError

NOT_IDENTIFIED = "copycds could not identify the ISO supplied, you may wish to try -n <osver>"

_FAMILIES = (("red hat enterprise linux", "rhels"), ("centos", "centos"),
             ("rocky", "rocky"), ("almalinux", "alma"), ("alma", "alma"),
             ("fedora", "fedora"), ("oracle linux", "ol"), ("scientific", "SL"))


# Debian's architecture names (dpkg) that differ from ours; the others are the same in both
_DEB_ARCH = {"amd64": "x86_64", "arm64": "aarch64", "i386": "x86", "ppc64el": "ppc64le"}
_OUR_TO_DEB = {v: k for k, v in _DEB_ARCH.items()}
_DEB_ARCHS = frozenset(_DEB_ARCH) | {"armel", "armhf", "mips64el", "mipsel", "riscv64",
                                     "s390x", "loong64"}
# where debian-cd puts the installer's kernel and initrd, by Debian architecture
_DEB_INSTALLER = {"amd64": "install.amd", "arm64": "install.a64", "i386": "install.386"}
# suite links xCAT removes from the copy ("otherwise the repository does not work")
_DEB_SKIP_LINKS = ("/dists/testing", "/dists/unstable")


class MediaError(NodemgrError):
    """The media cannot be read, identified or imported."""


@dataclass
class Media:
    """What an ISO is.

    Attributes:
        distname: e.g. ``rhels8.6``, ``rhevh6.5``, ``xcp-ng8.2.1``, ``debian12.5``.
        arch: e.g. ``x86_64``.
        discno: disc number(s) from ``.discinfo`` or Debian's ``.disk/info`` (``1`` when
            unknown).
        kind: ``rhel``, ``rhevh``, ``xen`` or ``debian``.
        kernel, initrd: paths inside the ISO (Xen: the dom0 kernel and the installer image).
        hypervisor: Xen only: the hypervisor inside the ISO.
        volid: the ISO's volume id.
        codename: Debian only: the release's ``Codename`` (``bookworm``), the suite the
            installer asks the mirror for.
    """

    distname: str
    arch: str
    discno: str = "1"
    kind: str = "rhel"
    kernel: str = ""
    initrd: str = ""
    hypervisor: str = ""
    volid: str = ""
    codename: str = ""


def _norm_arch(arch: str) -> str:
    arch = arch.strip()
    arch = _DEB_ARCH.get(arch, arch)
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
        self._entries: tuple[list[tuple[str, int]], list[tuple[str, str]]] | None = None

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

    def _scan(self) -> tuple[list[tuple[str, int]], list[tuple[str, str]]]:
        if self._entries is None:
            files, links = [], []
            for root, _dirs, names in self._iso.walk(**{self._kw: "/"}):
                for n in names:
                    p = os.path.join(root, n)
                    if self._kw == "iso_path":
                        n = n.split(";")[0]
                        p = os.path.join(root, n)
                    rec = self._iso.get_record(**self._key(p) if self._kw != "iso_path"
                                               else {"iso_path": os.path.join(root, n) + ";1"})
                    if rec.is_symlink():
                        links.append((p, rec.rock_ridge.symlink_path().decode("utf-8",
                                                                              "replace")))
                    else:
                        files.append((p, rec.get_data_length()))
            self._entries = (sorted(files), sorted(links))
        return self._entries

    def files(self) -> list[tuple[str, int]]:
        """Every regular file as (path, size), sorted by path (symbolic links excluded)."""
        return self._scan()[0]

    def symlinks(self) -> list[tuple[str, str]]:
        """Every Rock Ridge symbolic link as (path, target as written), sorted by path."""
        return self._scan()[1]

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


def _deb822(text: str) -> dict[str, str]:
    """The first paragraph of a Debian control-style file (``deb822(5)``, RFC 822-like):
    ``Field: value`` lines, a line starting with a space or tab continues the previous
    field. Field names are case-insensitive: the keys are lower case."""
    fields: dict[str, str] = {}
    last = None
    for raw in text.splitlines():
        if not raw.strip():
            if fields:
                break
            continue
        if raw[0] in " \t":
            if last is not None:
                fields[last] += "\n" + raw.strip()
            continue
        key, sep, value = raw.partition(":")
        if not sep:
            continue
        last = key.strip().lower()
        fields[last] = value.strip()
    return fields


def _debian(iso: Iso, info: bytes, name: str | None, arch: str | None) -> Media:
    """Debian media from ``.disk/info`` and ``dists/<codename>/Release`` (module docstring).

    Raises:
        MediaError: no version (without ``-n``), no ``Release`` or no ``Codename`` in it,
            ``.disk/info`` and ``Release`` disagree, architecture missing, ambiguous or not
            the requested one, or no installer kernel/initrd (a later disc of a set).
    """
    text = info.decode("utf-8", "replace").strip()
    line = text.splitlines()[0].strip() if text else ""
    head, _, tail = line.partition(" - ")
    ver = re.match(r"Debian\s+GNU/\S+\s+(\d+)(?:\.(\d+))?(?:\.\d+)*(?=\s|$)", head)
    cm = re.search(r'"([^"]+)"', head)
    codename = cm.group(1).strip().lower() if cm else ""
    info_archs = list(dict.fromkeys(t for t in tail.split() if t in _DEB_ARCHS))
    dm = re.search(r"\bBinary-(\d+)\b", tail)
    discno = dm.group(1) if dm else "1"
    if ver is None and not name:
        raise MediaError(f"{NOT_IDENTIFIED} (.disk/info names no Debian version: {line!r})")
    releases = [p for p, _ in iso.files() if re.fullmatch(r"/dists/[^/]+/Release", p)]
    want = f"/dists/{codename}/Release"
    if codename and want in releases:
        rel_path = want
    elif len(releases) == 1:
        rel_path = releases[0]
    else:
        found = ", ".join(r.lstrip("/") for r in releases) or "none"
        raise MediaError(f"the Debian media has no dists/{codename or '<codename>'}/Release "
                         f"(found: {found}); without it the tree cannot serve as an apt "
                         "mirror")
    rel_name = rel_path.lstrip("/")
    rel = _deb822((iso.read(rel_path) or b"").decode("utf-8", "replace"))
    rel_codename = rel.get("codename", "").strip()
    if not rel_codename:
        raise MediaError(f"{rel_name} has no Codename field; without it the tree cannot "
                         "serve as an apt mirror")
    if codename and rel_codename.lower() != codename:
        raise MediaError(f"the media disagrees with itself: .disk/info names {codename}, "
                         f"{rel_name} Codename {rel_codename}")
    rver = re.match(r"(\d+)(?:\.(\d+))?", rel.get("version", ""))
    if ver is not None and rver is not None and (
            rver.group(1) != ver.group(1)
            or (ver.group(2) is not None and rver.group(2) is not None
                and rver.group(2) != ver.group(2))):
        raise MediaError(f"the media disagrees with itself: .disk/info names version "
                         f"{ver.group(1)}.{ver.group(2)}, {rel_name} Version "
                         f"{rel.get('version')}")
    rel_archs = [a for a in rel.get("architectures", "").split() if a != "all"]
    extra = [a for a in info_archs if rel_archs and a not in rel_archs]
    if extra:
        raise MediaError(f"the media disagrees with itself: .disk/info names {', '.join(extra)}"
                         f", {rel_name} Architectures {' '.join(rel_archs)}")
    cands = [_norm_arch(a) for a in (info_archs or rel_archs)]
    if arch:
        march = _norm_arch(arch)
        if cands and march not in cands:
            raise MediaError(f"Requested distribution architecture {march}, but media is "
                             f"{', '.join(cands)}")
    elif len(cands) == 1:
        march = cands[0]
    elif cands:
        raise MediaError(f"the media holds several architectures ({', '.join(cands)}); give "
                         "one with -a")
    else:
        raise MediaError("the media does not name its architecture; give it with -a")
    darch = _OUR_TO_DEB.get(march, march)
    dirs = list(dict.fromkeys([_DEB_INSTALLER.get(darch, "install"), "install"]))
    for d in dirs:
        for k in ("vmlinuz", "vmlinux"):
            if iso.exists(f"/{d}/{k}") and iso.exists(f"/{d}/initrd.gz"):
                distname = name or ""
                if not distname and ver is not None:
                    distname = "debian" + ver.group(1) + (f".{ver.group(2)}" if ver.group(2)
                                                          is not None else "")
                return Media(distname=distname, arch=march, discno=discno, kind="debian",
                             kernel=f"/{d}/{k}", initrd=f"/{d}/initrd.gz",
                             codename=rel_codename.lower())
    if discno != "1":
        raise MediaError(f"this is disc {discno} of a Debian set; import the first disc (it "
                         "holds the installer)")
    raise MediaError(f"the Debian media has no installer kernel and initrd "
                     f"({dirs[0]}/vmlinuz, {dirs[0]}/initrd.gz)")


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
    info = iso.read("/.disk/info")
    if info is not None and info.lstrip().startswith(b"Debian"):
        media = _debian(iso, info, name, arch)
    if media is None and (version is not None or (name or "").startswith("rhev")):
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


def fingerprint(iso: Iso, files: list[tuple[str, int]],
                links: list[tuple[str, str]] = ()) -> str:
    """SHA-256 hex of the volume id, the sorted (path, size) list and the (link, target)
    list (media without links keep the fingerprint they had before links were read)."""
    h = hashlib.sha256(iso.volid.encode())
    for p, size in files:
        h.update(f"\0{p}\0{size}".encode())
    for p, target in links:
        h.update(f"\0{p}\0->{target}".encode())
    return h.hexdigest()


def _check_link(path: str, target: str) -> None:
    """Refuse a link that is absolute or whose target, read as a path relative to the link's
    directory, leads out of the tree (``debian -> .`` is fine, ``x -> ../../etc`` is not)."""
    rel = os.path.normpath(os.path.join(os.path.dirname(path).lstrip("/"), target))
    if not target or os.path.isabs(target) or rel == ".." or rel.startswith("../"):
        raise MediaError(f"unsafe symbolic link in the ISO: {path} -> {target}")


def _place_link(target_dir: str, path: str, link_to: str) -> str:
    """Create (or replace) the link *path* -> *link_to* under *target_dir*; returns it."""
    dst = os.path.join(target_dir, path.lstrip("/"))
    if os.path.isdir(dst) and not os.path.islink(dst):
        raise MediaError(f"cannot make the link {path}: {dst} is a directory")
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    tmp = os.path.join(os.path.dirname(dst), f".{os.path.basename(dst)}.part")
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(link_to, tmp)
    os.replace(tmp, dst)
    return dst


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
    "debian": "vga=normal fb=false",
}


def default_kcmdline(media: Media) -> str:
    """The ``boottarget.kcmdline`` copycds writes: what every node booting this media's
    installer gets; ``nodeset`` adds the per-node part (answer file, hostname, interface).

    * Red Hat family: anaconda's ``inst.repo=`` points at the copied tree
      (``http://!myipfn!/`` becomes the web server with its port) and ``ip=dhcp``.
    * Xen installer: hypervisor arguments, ``---``, dom0 arguments (multiboot).
    * RHEV-H: nothing (the live image is found inside the initrd).
    * Debian: debian-installer has no repository kernel argument; the mirror is a preseed
      question (``mirror/http/hostname`` + ``mirror/http/directory``), which the node's
      preseed answers (it knows the web server's port, which a bare ``!myipfn!`` here
      would lose). So only ``fb=false`` (``debian-installer/framebuffer=false``: a plain
      text console, which also works on a serial line) and, on x86, ``vga=normal`` — the
      pair the Debian installation guide recommends against framebuffer trouble. xCAT's
      ``debian.pm mkinstall`` builds the whole line per node (``nofb utf8 auto url=...
      mirror/http/hostname=... priority=critical locale=en_US hostname=<node>``); here
      the node-specific part (``auto=true priority=critical url=<answer file>
      hostname=<node> domain=<domain> interface=auto``) is nodeset's.
    """
    kcmd = DEFAULT_KCMDLINE[media.kind].format(d=media.distname, a=media.arch)
    if media.kind == "debian" and media.arch not in ("x86_64", "x86"):
        kcmd = kcmd.replace("vga=normal ", "")
    return kcmd


@dataclass
class Result:
    """What copycds did: the media, the target directory, bytes copied, the (first) osimage
    made and all of them (Debian makes two: ``-install-compute`` and ``-install-xen``)."""

    media: Media
    target: str
    nbytes: int
    osimage: str | None
    osimages: list[str] = field(default_factory=list)


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
        links = iso.symlinks()
        fp = fingerprint(iso, files, links)
        instdir = installdir or settings.get(store, "installdir")
        target = os.path.abspath(path or os.path.join(instdir, media.distname, media.arch))
        for p, _ in files:  # checked before anything is written
            if not os.path.abspath(os.path.join(target, p.lstrip("/"))).startswith(
                    target + os.sep):
                raise MediaError(f"unsafe path in the ISO: {p}")
        for p, link_to in links:
            _check_link(p, link_to)
        skip = _DEB_SKIP_LINKS if media.kind == "debian" else ()
        links = [(p, t) for p, t in links if p not in skip]
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
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            tmp = os.path.join(os.path.dirname(dst), f".{os.path.basename(dst)}.part")
            with open(tmp, "wb") as fh:
                iso.extract(p, fh)
            os.replace(tmp, dst)
            if progress:
                progress(size)
        for p, link_to in links:
            dst = _place_link(target, p, link_to)
            real = os.path.realpath(dst)
            if real != target and not real.startswith(target + os.sep):
                os.unlink(dst)  # through another link: refused after all
                raise MediaError(f"unsafe symbolic link in the ISO: {p} -> {link_to}")
        for p in skip:  # a stale suite link from an earlier copy (xCAT removes them too)
            if os.path.islink(os.path.join(target, p.lstrip("/"))):
                os.unlink(os.path.join(target, p.lstrip("/")))
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
    kcmd = default_kcmdline(media)
    dist = f"{media.distname}-{media.arch}"
    m = re.match(r"([A-Za-z\-]+?)([\d.]*)$", media.distname)
    base, ver = (m.group(1), m.group(2)) if m else (media.distname, "")
    major, _, minor = ver.partition(".")
    profiles = ("compute", "xen") if media.kind == "debian" else ("compute",)
    images = [] if noosimage else [f"{dist}-install-{prof}" for prof in profiles]
    with store.transaction():
        store.upsert("osdistro", {"osdistroname": dist},
                     {"basename": base, "majorversion": major or None,
                      "minorversion": minor or None, "arch": media.arch, "type": "Linux",
                      "dirpaths": target})
        store.upsert("boottarget", {"bprofile": dist},
                     {"kernel": kernel, "initrd": initrd, "kcmdline": kcmd})
        for image, prof in zip(images, profiles, strict=False):
            store.upsert("osimage", {"imagename": image},
                         {"profile": prof, "imagetype": "linux", "provmethod": "install",
                          "osdistroname": dist, "osname": "Linux", "osvers": media.distname,
                          "osarch": media.arch})
            store.upsert("linuximage", {"imagename": image},
                         {"boottarget": dist, "pkgdir": target})
    return Result(media, target, total, images[0] if images else None, images)


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
