"""``mknb``: place every file a node fetches before its own boot file in the TFTP root.

What goes where (paths relative to the TFTP root; the DHCP server hands out exactly these
names, see :mod:`nodemgr.netboot.dhcp`):

==========================  ===============================================  =====================
file                        source                                           Debian package
==========================  ===============================================  =====================
``pxelinux.0``              ``/usr/lib/PXELINUX/pxelinux.0``                 ``pxelinux``
``ldlinux.c32``             ``/usr/lib/syslinux/modules/bios/ldlinux.c32``   ``syslinux-common``
``mboot.c32``               ``/usr/lib/syslinux/modules/bios/mboot.c32``     ``syslinux-common``
``libcom32.c32``            ``/usr/lib/syslinux/modules/bios/libcom32.c32``  ``syslinux-common``
``libutil.c32``             ``/usr/lib/syslinux/modules/bios/libutil.c32``   ``syslinux-common``
``undionly.kpxe``           ``/usr/lib/ipxe/undionly.kpxe``                  ``ipxe``
``snponly.efi``             ``/usr/lib/ipxe/snponly.efi``                    ``ipxe``
``ipxe.efi``                ``/usr/lib/ipxe/ipxe.efi`` (symlink: its target)  ``ipxe``
``boot/grub2/grubx64.efi``  ``grub-mkimage -O x86_64-efi`` from               ``grub-efi-amd64-bin``
                            ``/usr/lib/grub/x86_64-efi`` (:data:`GRUB_MODULES`  (+ ``grub-common``)
                            embedded, prefix ``(tftp)/boot/grub2``)
==========================  ===============================================  =====================

The GRUB image is one self-contained file (no modules fetched over TFTP: 3 transfers per
boot instead of ~40 with ``grub-mknetdir``). Its prefix ``(tftp)/boot/grub2`` is the
directory of the server that PXE-booted it, where GRUB (>= 2.04) asks first for
``grub.cfg-01-<mac>``, then ``grub.cfg-<HEXIP>`` shortened digit by digit, then
``grub.cfg`` — the aliases ``nodeset`` writes (:mod:`nodemgr.netboot.bootfiles`).

Idempotent and atomic: a file whose bytes already match is left alone (same inode and
mtime); a new or changed one is written to a temporary name in its directory and renamed.
Every source is checked before anything is written, and every new file is staged before
the first rename, so a missing package or a failing ``grub-mkimage`` places nothing. The
GRUB image is rebuilt only when its inputs change: the stamp
``boot/grub2/.grubx64.efi.inputs`` records the ``grub-mkimage`` version, format, prefix,
module list, a SHA-256 over the module files used (the requested modules and their
``moddep.lst`` dependencies) and the image's own SHA-256.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from nodemgr.errors import NodemgrError


class MknbError(NodemgrError):
    """A loader cannot be placed: a source package is missing, ``grub-mkimage`` failed, or
    the TFTP root is unusable. Nothing was placed."""


@dataclass(frozen=True)
class Loader:
    """One file copied into the TFTP root.

    Attributes:
        name: path relative to the TFTP root (``pxelinux.0``).
        source: absolute path of the packaged file (symlinks are followed).
        package: the Debian package that ships *source*.
    """

    name: str
    source: str
    package: str


_BIOS = "/usr/lib/syslinux/modules/bios"
LOADERS: tuple[Loader, ...] = (
    Loader("pxelinux.0", "/usr/lib/PXELINUX/pxelinux.0", "pxelinux"),
    Loader("ldlinux.c32", f"{_BIOS}/ldlinux.c32", "syslinux-common"),
    Loader("mboot.c32", f"{_BIOS}/mboot.c32", "syslinux-common"),
    Loader("libcom32.c32", f"{_BIOS}/libcom32.c32", "syslinux-common"),
    Loader("libutil.c32", f"{_BIOS}/libutil.c32", "syslinux-common"),
    Loader("undionly.kpxe", "/usr/lib/ipxe/undionly.kpxe", "ipxe"),
    Loader("snponly.efi", "/usr/lib/ipxe/snponly.efi", "ipxe"),
    Loader("ipxe.efi", "/usr/lib/ipxe/ipxe.efi", "ipxe"),
)

GRUB_IMAGE = "boot/grub2/grubx64.efi"
GRUB_STAMP = "boot/grub2/.grubx64.efi.inputs"
GRUB_FORMAT = "x86_64-efi"
GRUB_PREFIX = "(tftp)/boot/grub2"
GRUB_MODDIR = "/usr/lib/grub/x86_64-efi"
GRUB_PACKAGE = "grub-efi-amd64-bin"
GRUB_MKIMAGE = "grub-mkimage"
GRUB_MKIMAGE_PACKAGE = "grub-common"
#: Modules embedded in the image: network (efinet net tftp http), what nodeset's configs
#: use (normal: menuentry/set; linux: linux/initrd; multiboot2: multiboot2/module2;
#: minicmd: exit; echo), config helpers (configfile test sleep halt reboot), video for the
#: kernel's EFI framebuffer (efi_gop efi_uga), a serial console (serial terminal), and
#: chain-loading a local disk's EFI loader (chain part_gpt part_msdos fat search).
GRUB_MODULES: tuple[str, ...] = (
    "efinet", "net", "tftp", "http", "linux", "normal", "configfile", "echo", "test",
    "sleep", "halt", "reboot", "chain", "multiboot2", "minicmd", "efi_gop", "efi_uga",
    "serial", "terminal", "part_gpt", "part_msdos", "fat", "search",
)


@dataclass(frozen=True)
class Placed:
    """What mknb did with one file.

    Attributes:
        name: path relative to the TFTP root.
        action: ``placed`` (new), ``updated`` (content changed) or ``unchanged``.
        source: the packaged file, or the ``grub-mkimage`` module directory.
        package: the Debian package it comes from.
    """

    name: str
    action: str
    source: str
    package: str


def _src(sysroot: str, path: str) -> str:
    return os.path.join(sysroot, path.lstrip("/")) if sysroot not in ("", "/") else path


def _read(path: str) -> bytes | None:
    """Bytes of regular file *path* (not a symlink), None when absent or anything else."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read()
    finally:
        os.close(fd)


def _moddep(moddir: str) -> dict[str, list[str]]:
    deps: dict[str, list[str]] = {}
    with open(os.path.join(moddir, "moddep.lst"), encoding="utf-8") as fh:
        for line in fh:
            name, sep, rest = line.partition(":")
            if sep:
                deps[name.strip()] = rest.split()
    return deps


def module_closure(moddir: str, modules: Iterable[str]) -> list[str]:
    """The modules *modules* need, themselves included, from ``<moddir>/moddep.lst``.

    Returns:
        Sorted module names. Raises OSError when ``moddep.lst`` cannot be read.
    """
    deps = _moddep(moddir)
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(deps.get(m, []))
    return sorted(seen)


def _mkimage_version(mkimage: str) -> str:
    out = subprocess.run([mkimage, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip() or out.stderr.strip()


def grub_stamp(mkimage: str, moddir: str, modules: Iterable[str] | None = None,
               prefix: str | None = None) -> str:
    """The input part of the GRUB image's stamp (text, one ``key value`` per line):
    ``grub-mkimage --version``, format, prefix, requested modules and a SHA-256 over the
    names and bytes of every module file used (:func:`module_closure`).

    Raises:
        OSError: a module file or ``moddep.lst`` cannot be read.
    """
    modules = list(GRUB_MODULES if modules is None else modules)
    prefix = GRUB_PREFIX if prefix is None else prefix
    h = hashlib.sha256()
    for m in module_closure(moddir, modules):
        with open(os.path.join(moddir, f"{m}.mod"), "rb") as fh:
            h.update(m.encode() + b"\0" + fh.read() + b"\0")
    return (f"version {_mkimage_version(mkimage)}\nformat {GRUB_FORMAT}\nprefix {prefix}\n"
            f"modules {' '.join(modules)}\nmodules-sha256 {h.hexdigest()}\n")


def missing_sources(sysroot: str = "/") -> list[tuple[str, str]]:
    """Sources that are not there, as ``(path, Debian package)``, in :data:`LOADERS` order
    then GRUB's (``grub-mkimage`` on ``$PATH``, the module directory and each module)."""
    missing = [(_src(sysroot, ld.source), ld.package) for ld in LOADERS
               if not os.path.isfile(_src(sysroot, ld.source))]
    if shutil.which(GRUB_MKIMAGE) is None:
        missing.append((GRUB_MKIMAGE, GRUB_MKIMAGE_PACKAGE))
    moddir = _src(sysroot, GRUB_MODDIR)
    needed = ["moddep.lst"] + [f"{m}.mod" for m in GRUB_MODULES]
    absent = [f for f in needed if not os.path.isfile(os.path.join(moddir, f))]
    if absent:
        missing.append((moddir if len(absent) == len(needed) else
                        os.path.join(moddir, absent[0]), GRUB_PACKAGE))
    return missing


def _missing_message(missing: list[tuple[str, str]]) -> str:
    pkgs = list(dict.fromkeys(p for _, p in missing))
    first = {}
    for path, pkg in missing:
        first.setdefault(pkg, path)
    shown = ", ".join(f"{first[p]} (Debian package {p})" for p in pkgs)
    word = "package" if len(pkgs) == 1 else "packages"
    return (f"boot loader source missing: {shown}; install the {word} "
            f"(apt-get install {' '.join(pkgs)}); nothing was placed")


class _Stage:
    """Temporary files written next to their final names, renamed by :meth:`commit`."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.pending: list[tuple[str, str]] = []
        self._suffix = f".mknb{os.getpid()}"

    def tmpname(self, rel: str) -> tuple[str, str]:
        final = os.path.join(self.root, rel)
        d, base = os.path.split(final)
        os.makedirs(d, exist_ok=True)
        if os.path.isdir(final) and not os.path.islink(final):
            raise MknbError(f"{final} is a directory; nothing was placed")
        return f"{d}/.{base}{self._suffix}", final

    def add(self, tmp: str, final: str) -> None:
        self.pending.append((tmp, final))

    def write(self, rel: str, data: bytes) -> None:
        tmp, final = self.tmpname(rel)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        try:
            os.fchmod(fd, 0o644)  # whatever the umask: the TFTP and web servers read it
            _write_all(fd, data)
        finally:
            os.close(fd)
        self.add(tmp, final)

    def discard(self) -> None:
        for tmp, _final in self.pending:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self.pending = []

    def commit(self) -> None:
        for tmp, final in self.pending:
            os.replace(tmp, final)
        self.pending = []


def _action(final: str) -> str:
    return "updated" if os.path.lexists(final) else "placed"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def mknb(root: str, sysroot: str = "/") -> list[Placed]:
    """Place the boot loaders (:data:`LOADERS`) and the GRUB image in TFTP root *root*.

    Args:
        root: the TFTP root (created if missing).
        sysroot: where the packages' files are looked for (``/``; another directory holds
            e.g. ``dpkg-deb -x`` trees of the packages). ``grub-mkimage`` comes from
            ``$PATH`` and builds from ``<sysroot>/usr/lib/grub/x86_64-efi``.
    Returns:
        One :class:`Placed` per file, :data:`LOADERS` order, the GRUB image last.
    Raises:
        MknbError: a source is missing (names the Debian package), ``grub-mkimage``
            failed, or the root cannot be written. Nothing is placed then.
    """
    missing = missing_sources(sysroot)
    if missing:
        raise MknbError(_missing_message(missing))
    root = os.path.abspath(root)
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as exc:
        raise MknbError(f"cannot create the TFTP root {root}: {exc.strerror}") from None
    stage = _Stage(root)
    results: list[Placed] = []
    try:
        for ld in LOADERS:
            src = _src(sysroot, ld.source)
            with open(src, "rb") as fh:
                data = fh.read()
            old = _read(os.path.join(root, ld.name))
            if old == data:
                results.append(Placed(ld.name, "unchanged", src, ld.package))
                continue
            stage.write(ld.name, data)
            results.append(Placed(ld.name, _action(os.path.join(root, ld.name)), src,
                                  ld.package))
        results.append(_grub(stage, sysroot))
        stage.commit()
    except OSError as exc:
        stage.discard()
        where = f" ({exc.filename})" if exc.filename else ""
        raise MknbError(f"cannot place the boot loaders in {root}: "
                        f"{exc.strerror or exc}{where}; nothing was placed") from None
    except BaseException:
        stage.discard()
        raise
    return results


def _grub(stage: _Stage, sysroot: str) -> Placed:
    """Stage the GRUB image (and its stamp) unless the stamp shows it is current."""
    moddir = _src(sysroot, GRUB_MODDIR)
    mkimage = shutil.which(GRUB_MKIMAGE) or GRUB_MKIMAGE
    inputs = grub_stamp(mkimage, moddir)
    image_path = os.path.join(stage.root, GRUB_IMAGE)
    stamp_path = os.path.join(stage.root, GRUB_STAMP)
    old = _read(image_path)
    old_sum = hashlib.sha256(old).hexdigest() if old is not None else None
    old_stamp = _read(stamp_path)
    if old is not None and old_stamp == (inputs + f"image-sha256 {old_sum}\n").encode():
        return Placed(GRUB_IMAGE, "unchanged", moddir, GRUB_PACKAGE)
    tmp, final = stage.tmpname(GRUB_IMAGE)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    cmd = [mkimage, "-O", GRUB_FORMAT, "-d", moddir, "-p", GRUB_PREFIX, "-o", tmp,
           *GRUB_MODULES]
    run = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        why = (run.stderr.strip().splitlines() or [f"exit status {run.returncode}"])[-1]
        raise MknbError(f"grub-mkimage failed: {why}; nothing was placed")
    with open(tmp, "rb") as fh:
        new = fh.read()
    os.chmod(tmp, 0o644)
    new_sum = hashlib.sha256(new).hexdigest()
    stamp = (inputs + f"image-sha256 {new_sum}\n").encode()
    if new == old:  # same bytes (the stamp was lost or the inputs changed harmlessly)
        os.unlink(tmp)
        action = "unchanged"
    else:
        stage.add(tmp, final)
        action = _action(final)
    if old_stamp != stamp:
        stage.write(GRUB_STAMP, stamp)
    return Placed(GRUB_IMAGE, action, moddir, GRUB_PACKAGE)


def install_postscripts(installdir: str, shipped: str | None = None) -> list[Placed]:
    """Copy the shipped postscripts (``nodemgr/share/postscripts``) into
    ``<installdir>/postscripts/`` (mode 0755), where answer files fetch them.

    A postscript already there is left alone whatever its content (``kept``: a site's
    edited copy wins); a new one is written under a temporary name and renamed.

    Returns:
        One :class:`Placed` per shipped script (name relative to *installdir*; action
        ``placed`` or ``kept``).
    Raises:
        OSError: the directory cannot be created or written.
    """
    from nodemgr.netboot import answerfile, files

    src_dir = shipped or answerfile.SHIPPED_POSTSCRIPTS
    dest = os.path.join(installdir, "postscripts")
    os.makedirs(dest, mode=0o755, exist_ok=True)
    out = []
    for name in sorted(os.listdir(src_dir)):
        src = os.path.join(src_dir, name)
        if name.startswith(".") or not os.path.isfile(src):
            continue
        final = os.path.join(dest, name)
        if os.path.lexists(final):
            out.append(Placed(f"postscripts/{name}", "kept", src, "nodemgr"))
            continue
        with open(src, encoding="utf-8") as f:
            files.write_atomic(final, f.read(), 0o755)
        out.append(Placed(f"postscripts/{name}", "placed", src, "nodemgr"))
    return out
