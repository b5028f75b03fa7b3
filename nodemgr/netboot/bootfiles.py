"""Boot files: one :class:`BootSpec` per node, rendered to pxelinux, iPXE or GRUB2 and
written atomically with the node's MAC and IP aliases.

Formats (``noderes.netboot``; xCAT's ``pxe.pm``, ``xnba.pm``, ``grub2.pm``):

========== ================================ ==============================================
netboot    node file (under the TFTP root)  aliases (symlinks to the node file)
========== ================================ ==============================================
pxe        ``pxelinux.cfg/<node>``          ``pxelinux.cfg/<HEXIP>``, ``pxelinux.cfg/01-<mac>``
xnba       ``xcat/xnba/nodes/<node>``       ``xcat/xnba/macs/01-<mac>``
grub2[-tftp|-http] ``boot/grub2/<node>``    ``boot/grub2/grub.cfg-<HEXIP>``, ``boot/grub2/grub.cfg-01-<mac>``
========== ================================ ==============================================

Transport of kernels and initrds: ``pxe`` over TFTP (pxelinux.0 speaks nothing else);
``xnba``, ``grub2`` and ``grub2-http`` over HTTP from ``http://<server>[:<httpport>]/tftpboot/``
(the web server maps ``/tftpboot/`` to the TFTP root whatever ``tftpdir`` is:
``makewebconf``, the web app); ``grub2-tftp`` over TFTP. TFTP then carries only the first
loader (``mknb``) and the boot file itself.

``<mac>`` is lower case with dashes (``52-54-00-aa-bb-01``), ``<HEXIP>`` the upper-case
hex IPv4 address (``0A000105``). Aliases are **symbolic links** to the node file, in the same
tree: the node file is replaced by one ``rename``, so every alias switches to the new
content at the same instant and can never disagree with it (hard links would each need
their own rename). An alias is itself re-pointed by creating a temporary symlink and
renaming it over the old one. Every file is written to a temporary name in the same
directory and renamed, so a reader (the TFTP server) sees the old or the new file, never a
partial one. No fsync: boot files are derived data (``nodeset <nr> enact`` rewrites them).

This module must never read tables (it gets a BootSpec) and never write outside the TFTP
root: node names are checked by :func:`check_node_name` and every path is verified to stay
under the root.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from nodemgr.errors import UsageError
from nodemgr.netboot import files

FORMATS = ("pxe", "xnba", "grub2", "grub2-tftp", "grub2-http")

_NODE_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*\Z")
_MAC_RE = re.compile(r"([0-9a-fA-F]{2})([:\-]?)([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2"
                     r"([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\Z")


def check_node_name(node: str) -> None:
    """Raise UsageError unless *node* is safe as a file name (no ``/``, no ``..``, no
    leading dot or dash, printable ASCII letters, digits, ``_ . -`` only)."""
    if not _NODE_RE.match(node) or ".." in node:
        shown = node.encode("unicode_escape").decode("ascii")
        raise UsageError(f"node name '{shown}' is not usable as a boot file name")


def normalize_mac(value: str | None) -> str | None:
    """First MAC of a ``mac.mac`` value (``aa:bb:..|cc:..!host``), as ``aa:bb:cc:dd:ee:ff``;
    None when empty. Raises UsageError for a malformed MAC."""
    if not value:
        return None
    first = value.split("|")[0].split("!")[0].strip()
    if not first:
        return None
    m = _MAC_RE.match(first)
    if not m:
        raise UsageError(f"malformed MAC address '{first}'")
    return ":".join(g.lower() for i, g in enumerate(m.groups()) if i != 1)


def hexip(ip: str | None) -> str | None:
    """``10.0.1.5`` → ``0A000105``; None for empty or non-IPv4 values."""
    if not ip:
        return None
    parts = ip.strip().split(".")
    if len(parts) != 4:
        return None
    octets = []
    for p in parts:
        if not (p.isascii() and p.isdigit()) or int(p) > 255:
            return None
        octets.append(int(p))
    return bytes(octets).hex().upper()


@dataclass(frozen=True)
class BootSpec:
    """Everything every format needs to boot one node.

    Attributes:
        node: node name (checked with :func:`check_node_name`).
        comment: the node's currstate, written as the file's ``#`` comment line.
        netboot: format, one of :data:`FORMATS`.
        kernel: kernel path relative to the TFTP root; None = boot from the local disk.
        initrd: initrd path relative to the TFTP root, or None.
        args: the kernel command line (for multiboot: the dom0 kernel's line).
        hypervisor: multiboot hypervisor (``xcat/xen/x86_64/xen.gz``) or None.
        hypargs: the hypervisor's own arguments.
        mac: install MAC ``aa:bb:cc:dd:ee:ff`` or None (no MAC alias then).
        ip: node IPv4 address or None (no hex-IP alias then).
        server: address iPXE and GRUB2 fetch kernels from (HTTP; GRUB2 ``grub2-tftp``:
            TFTP).
        httpport: port of the web server (80 is left out of URLs).
        httpprefix: URL path of the TFTP root on the web server (``/tftpboot``).
    """

    node: str
    comment: str
    netboot: str = "pxe"
    kernel: str | None = None
    initrd: str | None = None
    args: str = ""
    hypervisor: str | None = None
    hypargs: str = ""
    mac: str | None = None
    ip: str | None = None
    server: str = ""
    httpport: str = "80"
    httpprefix: str = "/tftpboot"

    @property
    def family(self) -> str:
        """``pxe``, ``xnba`` or ``grub2``."""
        return "grub2" if self.netboot.startswith("grub2") else self.netboot


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


# -- renderers ---------------------------------------------------------------------------

def render_pxelinux(spec: BootSpec) -> str:
    """pxelinux.cfg text (xCAT ``pxe.pm``; ``IPAPPEND 2`` is replaced by an explicit
    ``BOOTIF=`` in ``args``, so all formats carry the same line)."""
    lines = [f"#{spec.comment}", "DEFAULT xCAT", "LABEL xCAT"]
    if spec.kernel is None:
        lines.append(" LOCALBOOT 0")
    elif spec.hypervisor:
        lines.append(" KERNEL mboot.c32")
        tail = f" --- {spec.initrd}" if spec.initrd else ""
        lines.append(" APPEND " + _join(spec.hypervisor, spec.hypargs) + " --- "
                     + _join(spec.kernel, spec.args) + tail)
    else:
        lines.append(f" KERNEL {spec.kernel}")
        lines.append(" APPEND " + _join(f"initrd={spec.initrd}" if spec.initrd else "",
                                        spec.args))
    return "\n".join(lines) + "\n"


def port_suffix(httpport: str | None) -> str:
    """``:<port>`` for a URL on the web server, or '' for the default port 80 (or unset)."""
    return "" if (httpport or "") in ("", "80") else f":{httpport}"


def http_base(spec: BootSpec) -> str:
    """``http://<server>[:<httpport>]<httpprefix>/``: the URL of the TFTP root on the web
    server (nginx, ``makewebconf``; the web app's ``/tftpboot/`` route). Port 80 is left out.
    An empty *server* (never the case for a kernel from ``nodeset``) falls back to iPXE's
    ``${next-server}``."""
    port = port_suffix(spec.httpport)
    prefix = "/" + spec.httpprefix.strip("/") if spec.httpprefix.strip("/") else ""
    return f"http://{spec.server or '${next-server}'}{port}{prefix}/"


def render_ipxe(spec: BootSpec) -> str:
    """iPXE script (xCAT ``xnba.pm``, modern iPXE commands). Kernel, initrd and Xen modules
    are fetched over HTTP (:func:`http_base`): TFTP only carries the first loader. The
    kernel line names the initrd (``initrd=initrd`` + ``initrd --name initrd``): EFI iPXE
    passes it to an EFI-stub kernel only then. A local boot is ``exit`` (back to the
    firmware's next device)."""
    lines = ["#!ipxe", f"#{spec.comment}"]
    if spec.kernel is None:
        lines.append("exit")
        return "\n".join(lines) + "\n"
    base = http_base(spec)
    if spec.hypervisor:
        lines.append("kernel " + _join(base + spec.hypervisor, spec.hypargs))
        lines.append("module " + _join(base + spec.kernel, spec.args))
        if spec.initrd:
            lines.append(f"module {base}{spec.initrd}")
        lines.append("boot")
    else:
        lines.append("kernel " + _join(base + spec.kernel,
                                       "initrd=initrd" if spec.initrd else "", spec.args))
        if spec.initrd:
            lines.append(f"initrd --name initrd {base}{spec.initrd}")
        lines.append("boot")
    return "\n".join(lines) + "\n"


def render_grub2(spec: BootSpec) -> str:
    """GRUB2 config (xCAT ``grub2.pm``); ``linux``/``initrd`` (GRUB >= 2.04 loads EFI stub
    kernels with them too); Xen with ``multiboot2``/``module2``; local boot = ``exit``.

    ``grub2`` and ``grub2-http`` fetch over HTTP: ``set root=(http,<server>[:<httpport>])``
    and paths under ``httpprefix`` (GRUB's device syntax; the port form works in Debian's
    GRUB 2.06, measured in ../shared/reference/test-environment.md §6); ``grub2-tftp``
    keeps TFTP (``set root=(tftp,<server>)``, paths from the TFTP root)."""
    lines = [f"#{spec.comment}", "set timeout=5"]
    if spec.kernel is None:
        lines += ['set default="Boot from local disk"',
                  'menuentry "Boot from local disk" {', "    exit", "}"]
        return "\n".join(lines) + "\n"
    if spec.netboot == "grub2-tftp":
        root, prefix = f"tftp,{spec.server}", "/"
    else:  # grub2, grub2-http
        port = port_suffix(spec.httpport)
        path = spec.httpprefix.strip("/")
        root, prefix = f"http,{spec.server}{port}", f"/{path}/" if path else "/"
    lines += ['set default="xCAT OS Deployment"', 'menuentry "xCAT OS Deployment" {',
              "    insmod http", "    insmod tftp", f"    set root=({root})"]
    if spec.hypervisor:
        lines += ["    echo Loading Xen hypervisor ...",
                  "    multiboot2 " + _join(prefix + spec.hypervisor, spec.hypargs),
                  "    echo Loading dom0 kernel ...",
                  "    module2 " + _join(prefix + spec.kernel, spec.args)]
        if spec.initrd:
            lines += ["    echo Loading initial ramdisk ...", f"    module2 {prefix}{spec.initrd}"]
    else:
        lines += ["    echo Loading Install kernel ...",
                  "    linux " + _join(prefix + spec.kernel, spec.args)]
        if spec.initrd:
            lines += ["    echo Loading initial ramdisk ...", f"    initrd {prefix}{spec.initrd}"]
    lines.append("}")
    return "\n".join(lines) + "\n"


RENDERERS = {"pxe": render_pxelinux, "xnba": render_ipxe, "grub2": render_grub2}


# -- layout --------------------------------------------------------------------------------

#: family -> (node file directory, alias directory, alias target prefix)
_DIRS = {
    "pxe": ("pxelinux.cfg", "pxelinux.cfg", ""),
    "xnba": ("xcat/xnba/nodes", "xcat/xnba/macs", "../nodes/"),
    "grub2": ("boot/grub2", "boot/grub2", ""),
}


#: alias directory -> family
_ALIAS_FAMILY = {adir: fam for fam, (_n, adir, _p) in _DIRS.items()}


def node_file(family: str, node: str) -> str:
    """The node file of *node* for format family *family*, relative to the TFTP root."""
    return f"{_DIRS[family][0]}/{node}"


def alias_names(spec: BootSpec) -> list[str]:
    """Alias paths (relative to the TFTP root) for *spec*'s node, MAC first."""
    fam = spec.family
    adir = _DIRS[fam][1]
    mac = spec.mac.replace(":", "-") if spec.mac else None
    hx = hexip(spec.ip)
    out = []
    if fam == "pxe":
        out += [f"{adir}/01-{mac}"] if mac else []
        out += [f"{adir}/{hx}"] if hx else []
    elif fam == "xnba":
        out += [f"{adir}/01-{mac}"] if mac else []
    else:
        out += [f"{adir}/grub.cfg-01-{mac}"] if mac else []
        out += [f"{adir}/grub.cfg-{hx}"] if hx else []
    return out


def render(spec: BootSpec) -> str:
    """The node file's text for *spec*'s format."""
    return RENDERERS[spec.family](spec)


class TftpTree:
    """Writes and removes boot files under one TFTP root.

    The first use of a format's directories scans them once (alias symlinks: target →
    aliases; node files present), so stale aliases of a node (changed MAC or IP, another
    format) are removed, and unchanged aliases are left alone, without a system call per
    node and format. The scan is trusted for the life of the object (one command): keep one
    TftpTree per command, not per process.

    Staged (``staged=True``): every new file and symlink is written at once under a
    temporary name (so a full disk or a permission problem shows before anything else
    happens), but the renames into place and the removals wait for :meth:`publish` — called
    after the tables' transaction commits — or are undone by :meth:`discard` when it rolls
    back. Until then the tree answers its own questions (is this alias pointing at that
    node? does this file exist?) as if the pending changes were made.

    Args:
        root: the TFTP root directory (created if missing).
        staged: hold changes back until :meth:`publish`.
    """

    def __init__(self, root: str, *, staged: bool = False) -> None:
        self.root = os.path.abspath(root)
        self._aliases: dict[str, dict[str, set[str]]] = {}
        self._owner: dict[str, dict[str, str]] = {}
        self._nodes: dict[str, set[str]] = {}
        self._made: dict[str, str] = {}
        self._suffix = f".tmp{os.getpid()}"
        self._staged = staged
        #: pending changes in order: (node, temporary path, final path) renames,
        #: (node, None, path) removals
        self._pending: list[tuple[str, str | None, str]] = []
        self._node = ""  # the node whose files are being changed (tags pending changes)
        #: final path -> ("link", target) / ("file", None) / None (removed), as pending
        self._view: dict[str, tuple[str, str | None] | None] = {}
        self._serial = 0
        self._marker: str | None = None

    # -- paths ------------------------------------------------------------------------
    def path(self, rel: str) -> str:
        """Absolute path of *rel*; raises UsageError if it would leave the root."""
        full = os.path.normpath(os.path.join(self.root, rel))
        if not full.startswith(self.root + os.sep):
            raise UsageError(f"path '{rel}' leaves the TFTP root")
        return full

    def _dir(self, rel_dir: str) -> str:
        """Absolute path of directory *rel_dir*, created (once per object) if missing."""
        full = self._made.get(rel_dir)
        if full is None:
            full = self.path(rel_dir)
            os.makedirs(full, exist_ok=True)
            self._made[rel_dir] = full
        return full

    def _scan(self, family: str) -> None:
        """Read *family*'s directories once: alias symlinks and node files present."""
        if family in self._aliases:
            return
        ndir, adir, prefix = _DIRS[family]
        amap: dict[str, set[str]] = {}
        nodes: set[str] = set()
        for rel in dict.fromkeys((adir, ndir)):
            try:
                entries = list(os.scandir(self.path(rel)))
            except (FileNotFoundError, NotADirectoryError):
                entries = []
            for e in entries:
                if e.name.startswith("."):
                    continue  # temporary names
                if not e.is_symlink():
                    if rel == ndir:
                        nodes.add(e.name)
                    continue
                if rel != adir:
                    continue
                try:
                    target = os.readlink(e.path)
                except OSError:
                    continue
                if target.startswith(prefix) and "/" not in target[len(prefix):]:
                    amap.setdefault(target[len(prefix):], set()).add(f"{adir}/{e.name}")
        self._aliases[family] = amap
        self._owner[family] = {a: n for n, links in amap.items() for a in links}
        self._nodes[family] = nodes

    def _alias_map(self, family: str) -> dict[str, set[str]]:
        """node file name -> alias paths (relative to root) currently pointing at it."""
        self._scan(family)
        return self._aliases[family]

    # -- primitives -------------------------------------------------------------------
    def write_file(self, rel: str, text: str) -> None:
        """Write *text* to *rel* atomically (temporary file in the same directory + rename),
        mode 0644 (the TFTP server must read it)."""
        self._write(*os.path.split(self.path(rel)), text)

    def _tmp(self, d: str, base: str) -> str:
        if not self._staged:
            return f"{d}/.{base}{self._suffix}"
        self.claim()
        self._serial += 1  # staged: several versions of one name may be pending
        return f"{d}/.{base}{self._suffix}-{self._serial}"

    def _put(self, tmp: str, final: str, what: tuple[str, str | None]) -> None:
        """Rename *tmp* over *final* now, or (staged) when published."""
        if self._staged:
            self._pending.append((self._node, tmp, final))
            self._view[final] = what
        else:
            os.replace(tmp, final)

    def _write(self, d: str, base: str, text: str) -> None:
        """Write *text* to ``d/base`` through the temporary name ``d/.base.tmp<pid>``."""
        tmp = self._tmp(d, base)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, text.encode("utf-8"))
        finally:
            os.close(fd)
        self._put(tmp, f"{d}/{base}", ("file", None))

    def _readlink(self, full: str) -> str | None:
        """The target of symlink *full* (pending changes included), None when it is not
        a symlink or does not exist."""
        if full in self._view:
            v = self._view[full]
            return v[1] if v is not None and v[0] == "link" else None
        try:
            return os.readlink(full)
        except OSError:
            return None

    def _lexists(self, full: str) -> bool:
        if full in self._view:
            return self._view[full] is not None
        return os.path.lexists(full)

    def _remove(self, full: str) -> None:
        """Remove *full* (now, or staged when published); a missing file is fine."""
        if self._staged:
            if self._lexists(full):
                self._pending.append((self._node, None, full))
                self._view[full] = None
            return
        try:
            os.unlink(full)
        except FileNotFoundError:
            pass

    def publish(self) -> list[tuple[str, str, str]]:
        """Carry out the pending changes in order (staged trees; nothing to do otherwise).

        Returns:
            ``(node, path relative to the root, error text)`` for each change that failed
            (the others are made regardless).
        """
        pending, self._pending, self._view = self._pending, [], {}
        errors = [(node, os.path.relpath(final, self.root), why)
                  for node, final, why in files.carry_out(pending)]
        self._unmark()
        return errors

    def claim(self) -> None:
        """Staged trees, under the writer lock: remove a killed writer's temporary files
        (:func:`nodemgr.netboot.files.sweep_and_mark`) and mark the tree as being written
        by this process until :meth:`publish` or :meth:`discard`. Idempotent."""
        if self._staged and self._marker is None:
            self._marker = files.sweep_and_mark(
                self.root, sorted({x for v in _DIRS.values() for x in v[:2]}))

    def _unmark(self) -> None:
        files.unmark(self._marker)
        self._marker = None

    def discard(self) -> None:
        """Drop the pending changes (the tables' transaction rolled back): remove the
        temporary files; the tree is as it was. The directory scans are forgotten too."""
        pending, self._pending, self._view = self._pending, [], {}
        for _node, tmp, _final in pending:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        self._unmark()
        self._aliases.clear()
        self._owner.clear()
        self._nodes.clear()

    def link(self, rel: str, target: str) -> None:
        """Make *rel* a symlink to *target* (relative), re-pointing atomically."""
        full = self.path(rel)
        if self._readlink(full) == target:
            return
        self._link(*os.path.split(full), target)

    def _link(self, d: str, base: str, target: str) -> None:
        """Temporary symlink + rename over ``d/base`` (a stale temporary name is replaced)."""
        tmp = self._tmp(d, base)
        try:
            os.symlink(target, tmp)
        except FileExistsError:
            os.unlink(tmp)
            os.symlink(target, tmp)
        self._put(tmp, f"{d}/{base}", ("link", target))

    def _unlink(self, rel: str) -> None:
        self._remove(self.path(rel))

    # -- per node -----------------------------------------------------------------------
    def install(self, spec: BootSpec, aliases: list[str] | None = None) -> list[str]:
        """Write *spec*'s node file and aliases; remove the node's files of other formats
        and stale aliases. Returns the paths written (node file first). *aliases*:
        :func:`alias_names` of *spec* when the caller has them already."""
        check_node_name(spec.node)
        self._node = spec.node
        fam = spec.family
        ndir, adir, prefix = _DIRS[fam]
        nfull = self._dir(ndir)
        afull = self._dir(adir) if adir != ndir else nfull
        main = f"{ndir}/{spec.node}"
        text = render(spec)
        # names from a hex IP and a normalised MAC only
        wanted = alias_names(spec) if aliases is None else aliases
        # aliases first: a brand-new alias dangles for an instant (= "no file"), never
        # shows another node's file; the node file's rename is the switch-over point
        self._scan(fam)
        amap, owner = self._aliases[fam], self._owner[fam]
        target = prefix + spec.node
        for a in wanted:
            prev = owner.get(a)
            if prev == spec.node:
                continue  # already points at this node's file (scan or an earlier install)
            self._link(afull, a[len(adir) + 1:], target)
            if prev is not None:
                amap.get(prev, set()).discard(a)
            owner[a] = spec.node
        self._write(nfull, spec.node, text)
        self._nodes[fam].add(spec.node)
        mine = amap.setdefault(spec.node, set())
        for stale in mine - set(wanted):
            self._unlink(stale)
            owner.pop(stale, None)
        mine.clear()
        mine.update(wanted)
        for other_fam in _DIRS:
            if other_fam != fam:
                self._remove_family(other_fam, spec.node)
        return [main, *wanted]

    def _remove_family(self, fam: str, node: str) -> None:
        self._scan(fam)
        owner = self._owner[fam]
        for a in self._aliases[fam].pop(node, set()):
            self._unlink(a)
            owner.pop(a, None)
        nodes = self._nodes[fam]
        if node in nodes:
            self._unlink(f"{_DIRS[fam][0]}/{node}")
            nodes.discard(node)

    # -- one node, without scanning (cost independent of the number of nodes) -----------
    def has_files(self, node: str) -> bool:
        """True when *node* has a node file in any format (one ``lstat`` per format)."""
        check_node_name(node)
        return any(self._lexists(self.path(node_file(fam, node))) for fam in _DIRS)

    def _drop_aliases(self, node: str, aliases: Iterable[str], keep: Iterable[str] = ()) -> None:
        """Unlink each of *aliases* (root-relative) that still points at *node*'s file of
        its format; entries outside the alias directories, aliases re-pointed to another
        node since, and names in *keep* are left alone."""
        keep = set(keep)
        for a in aliases:
            d, _, base = a.rpartition("/")
            fam = _ALIAS_FAMILY.get(d)
            if a in keep or fam is None or not base or base.startswith("."):
                continue
            full = self.path(a)
            if self._readlink(full) != _DIRS[fam][2] + node:
                continue  # gone, not a symlink, or another node's now: not ours
            self._remove(full)

    def install_node(self, spec: BootSpec, previous: Iterable[str],
                     aliases: list[str] | None = None) -> list[str]:
        """Like :meth:`install` for one node, without reading whole directories: *previous*
        are the alias paths the node was last given (its record), so a stale alias (MAC or
        IP changed, other format) is found without a scan. A few system calls per node.

        Returns:
            The paths written (node file first).
        """
        check_node_name(spec.node)
        self._node = spec.node
        fam = spec.family
        ndir, adir, prefix = _DIRS[fam]
        nfull = self._dir(ndir)
        afull = self._dir(adir) if adir != ndir else nfull
        text = render(spec)
        wanted = alias_names(spec) if aliases is None else aliases
        target = prefix + spec.node
        for a in wanted:  # aliases first, node file rename = switch-over (see install)
            base = a[len(adir) + 1:]
            if self._readlink(f"{afull}/{base}") == target:
                continue
            self._link(afull, base, target)
        self._write(nfull, spec.node, text)
        self._drop_aliases(spec.node, previous, keep=wanted)
        for other in _DIRS:
            if other != fam:
                self._unlink(node_file(other, spec.node))
        return [f"{ndir}/{spec.node}", *wanted]

    def remove_node(self, node: str, previous: Iterable[str]) -> None:
        """Like :meth:`remove` for one node whose alias record is *previous* (no scan)."""
        check_node_name(node)
        self._node = node
        self._drop_aliases(node, previous)
        for fam in _DIRS:
            self._unlink(node_file(fam, node))

    def remove(self, node: str) -> None:
        """Remove every boot file and alias of *node*, in every format (``offline``)."""
        check_node_name(node)
        self._node = node
        for fam in _DIRS:
            self._remove_family(fam, node)

    def comment(self, family: str, node: str) -> str | None:
        """The ``#`` comment (currstate) of *node*'s file in *family*, or None if absent."""
        check_node_name(node)
        try:
            with open(self.path(node_file(family, node)), encoding="utf-8") as fh:
                head = [fh.readline(), fh.readline()]
        except FileNotFoundError:
            return None
        for line in head:
            if line.startswith("#") and not line.startswith("#!"):
                return line[1:].rstrip("\n")
        return ""
