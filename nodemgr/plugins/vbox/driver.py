"""VirtualBox driver: runs ``VBoxManage`` on the host over SSH, as the pool or machine user.

VirtualBox keeps a registry of VMs per user (``~/.config/VirtualBox``), so the login user
matters: it is the endpoint's user (``hostconn.username``, else the server pool's user,
else the ``passwd`` row of key ``vbox``; ``root`` when none is set). One SSH connection per
host (:mod:`nodemgr.sshpool`: paramiko, host keys checked against the administrator's
known_hosts); reads of many VMs are ONE remote command (a shell loop of ``showvminfo
--machinereadable``), so ``rpower <group> stat`` costs one round trip per host.

Operations -> VBoxManage (formats read by :mod:`nodemgr.plugins.vbox.parse`):

* mkvm: ``createvm --register --uuid``, ``modifyvm`` (memory, cpus, boot order, NICs with
  MAC, adapter type and bridged / host-only / internal / NAT attachment, VRDE when
  ``vm.vidproto=rdp``), ``storagectl`` (IDE for the DVD drive, SATA or SCSI for disks),
  ``createmedium`` + ``storageattach``. With ``vm.master`` naming an appliance (a path
  ending in ``.ova``/``.ovf``) ``import --vsys 0 --vmname``, naming a registered VM
  (template) a full ``clonevm``; then the node's NICs, hardware UUID and (when the table
  sets them) memory and cpus. A failure after ``createvm`` unregisters and deletes what was
  made: nothing is left.
* rmvm: ``unregistervm`` (``-p``: ``--delete``, and the config disk); ``-f`` powers off.
* chvm: ``modifyvm --memory --cpus``, ``createmedium``/``storageattach`` (add),
  ``storageattach --medium none`` (+ ``closemedium --delete`` for purge),
  ``modifymedium --resize``, the DVD drive's medium (also while running).
* rpower: ``startvm --type headless``, ``controlvm poweroff|acpipowerbutton|reset|pause|
  resume|savestate`` (suspend = ``pause``, or ``savestate`` with option ``suspend=save``),
  ``discardstate``.
* lsvm / rscan: ``list vms`` + ``showvminfo`` of each (one command); rinv adds
  ``showmediuminfo`` (disk sizes) and guest properties; rvitals: ``metrics setup`` /
  ``metrics query`` (CPU/Load/User+Kernel, RAM/Usage/Used, Net/Rate/Rx|Tx, Guest/RAM/*)
  and ``list hostinfo`` (CPU count, free memory for placement).
* clonevm -t: a full ``clonevm`` named after the master plus ``snapshot take``; clonevm -b:
  ``clonevm --snapshot <it> --options link`` (thin; ``-d``: full).
* rsetboot: ``modifyvm --boot1..4`` (net, disk, dvd); getcons/getrvidparms: the VRDE
  server's address and port (RDP) from ``showvminfo``.
* rmigrate / revacuate / rcons: Unsupported (see :data:`~nodemgr.plugins.vbox.TRAITS`).

Device names: disks on a SATA/SCSI controller are ``sd<x>`` with x = the port (``sda`` =
port 0; ``vd<x>`` names the same slot), on IDE ``hd<x>`` (port * 2 + device; ``hdc``, the
secondary master, is the DVD drive). Boot parameters (``spec.bootparams``): the cloud-init
NoCloud config disk (:mod:`nodemgr.bootparams`) is uploaded beside the VM's settings file
as ``<node>.cidata.iso`` and attached as a second DVD drive (IDE secondary slave).

Endpoint: the URI's user, host and port (``vbox+ssh://user@host:port/``, ``vbox://host``,
``ssh://user@host/``); a URI without a host (a local machine: ``vbox:///``) is reached over
SSH on 127.0.0.1. Options ``known_hosts``, ``key``, ``retry`` (pauses in seconds between
tries of a command refused because the VM is locked by another session, default
``0.5,1,2,4``), ``suspend`` (``pause``/``save``), ``vrdeport`` (ports or ranges VRDE may
use, default ``5000-5999``), ``ostype`` (default ``Other_64``).

What it must never do: read tables, trust an unknown host key, dump raw VBoxManage output as
an error (errors are one line: :func:`~nodemgr.plugins.vbox.parse.classify_error`), or
leave half a VM behind after a failed mkvm.
"""

from __future__ import annotations

import math
import os
import posixpath
import re
import shlex
import tempfile
from collections.abc import Iterator, Sequence
from urllib.parse import urlsplit

from nodemgr.plugins.base import (
    Address,
    Console,
    DiskInfo,
    DiskSpec,
    DriverError,
    Endpoint,
    Facts,
    HypervisorDriver,
    InvalidState,
    Inventory,
    Metrics,
    NicInfo,
    NicSpec,
    NodeResult,
    NotFound,
    PermanentError,
    Transient,
    Unsupported,
    VmChange,
    VmInfo,
    VmSpec,
    retry,
)
from nodemgr.plugins.vbox import NO_MIGRATE, NO_SERIAL, TRAITS
from nodemgr.plugins.vbox import parse as vp

CIDATA_SUFFIX = ".cidata.iso"
#: nodemgr boot words -> VirtualBox ``--bootN`` devices
BOOT = {"network": "net", "hd": "disk", "cdrom": "dvd"}
#: rsetboot devices -> VirtualBox boot devices
BOOT_DEVICE = {"net": "net", "hd": "disk", "cd": "dvd"}
#: image formats createmedium makes; qcow2 (nodemgr's default) becomes VDI
FORMATS = {"vdi": "VDI", "vmdk": "VMDK", "vhd": "VHD", "qcow2": "VDI"}
#: VirtualBox adapter types (``--nictypeN``), and nodemgr/libvirt model names for them
NIC_TYPES = {t.lower(): t for t in ("Am79C970A", "Am79C973", "Am79C960", "82540EM",
                                    "82543GC", "82545EM", "virtio")}
NIC_TYPES.update({"e1000": "82540EM", "pcnet": "Am79C973"})
#: disk bus -> (controller name, storagectl --add)
BUS_CONTROLLER = {"virtio": ("SATA", "sata"), "sata": ("SATA", "sata"),
                  "scsi": ("SCSI", "scsi"), "ide": ("IDE", "ide")}
IDE_TYPES = ("PIIX3", "PIIX4", "ICH6")
DVD_SLOT = ("IDE", 1, 0)       # hdc: the DVD drive
CIDATA_SLOT = ("IDE", 1, 1)    # hdd: the config disk
_BEGIN, _RC = "@@nodemgr-begin", "@@nodemgr-rc "
#: whether the remote command is there at all (exit 127 otherwise, as the shell says)
_HAVE = "command -v VBoxManage >/dev/null 2>&1 || exit 127"


def ssh_target(endpoint: Endpoint) -> tuple[str, int, str]:
    """(host, port, user) of *endpoint*: the URI's (``vbox+ssh://u@h:p/``, ``vbox://h``,
    ``ssh://u@h/``), 127.0.0.1 for a URI without a host (a local machine), else the
    endpoint's host node; the user defaults to the endpoint's, then ``root``."""
    user = endpoint.username or "root"
    if "://" in endpoint.uri:
        u = urlsplit(endpoint.uri)
        if u.hostname:
            return u.hostname, u.port or 22, u.username or user
        return "127.0.0.1", u.port or 22, u.username or user
    return endpoint.host or "127.0.0.1", 22, user


def _letter(i: int) -> str:
    return chr(ord("a") + i) if 0 <= i < 26 else f"{i}"


def _index(dev: str) -> int | None:
    """Letter index of a device name (``vdb`` -> 1), None when it has no letter."""
    return ord(dev[-1]) - ord("a") if dev and dev[-1].isalpha() and len(dev) >= 3 else None


def _dir(location: str | None) -> str:
    """The directory of a storage location (``dir:///vms`` -> ``/vms``), "" for none."""
    loc = (location or "").strip()
    for prefix in ("dir://", "file://"):
        if loc.startswith(prefix):
            loc = loc[len(prefix):]
    return loc.rstrip("/") if loc not in ("", "/") else loc


def nic_attachment(nic: NicSpec) -> tuple[str, str | None]:
    """(VirtualBox attachment, network) for a ``vm.nics`` entry: ``nat``; ``hostonly:X``
    or a ``vboxnet*`` name -> host-only; ``intnet:X`` or ``network:X`` -> internal network
    X; ``bridged:X``, a bridge or a ``direct:`` interface -> bridged to X."""
    prefix, sep, rest = nic.network.partition(":")
    if nic.network == "nat":
        return "nat", None
    if sep and prefix in ("hostonly", "intnet", "bridged"):
        return prefix, rest
    if nic.kind == "network":
        return "intnet", nic.network
    if nic.network.startswith("vboxnet"):
        return "hostonly", nic.network
    return "bridged", nic.network


class VboxDriver(HypervisorDriver):
    """VirtualBox host over SSH. See the module docstring for the mapping and options."""

    name = "vbox"
    traits = TRAITS

    def __init__(self, endpoint: Endpoint, timeout: float = 60.0) -> None:
        super().__init__(endpoint, timeout)
        self.conn = None
        self.host, self.port, self.user = ssh_target(endpoint)
        self.where = endpoint.host if endpoint.host and "://" not in endpoint.host \
            else self.host
        try:
            self.schedule = tuple(float(x) for x in
                                  (endpoint.option("retry") or "0.5,1,2,4").split(",") if x)
        except ValueError:
            raise PermanentError(f"option retry must be seconds like 0.5,1,2 (not "
                                 f"{endpoint.option('retry')!r})") from None
        self.suspend = endpoint.option("suspend", "pause")
        if self.suspend not in ("pause", "save"):
            raise PermanentError(f"option suspend must be pause or save, not '{self.suspend}'")

    # connection ----------------------------------------------------------------------------
    def connect(self) -> None:
        """Open (or reuse) the SSH connection and check VBoxManage is there. Raises
        Unreachable, PermanentError (host key, login, VBoxManage missing)."""
        from nodemgr import sshpool

        self.conn = sshpool.connection(
            self.host, port=self.port, user=self.user, password=self.endpoint.password,
            key_filename=self.endpoint.option("key"),
            known_hosts=self.endpoint.option("known_hosts"), timeout=min(self.timeout, 30.0))
        r = self.conn.run(_HAVE, timeout=self.timeout)
        if r.rc != 0:
            raise self._error(vp.classify_error(r.rc, r.err), None, "")

    def close(self) -> None:
        """Keep the pooled connection for reuse (closed at process exit)."""
        self.conn = None

    def validate(self, spec: VmSpec) -> None:
        """The generic checks, plus what VirtualBox cannot take: a disk format other than
        VDI/VMDK/VHD (qcow2 becomes VDI), storage that is not a directory, a NIC model it
        has no adapter for. No network call."""
        super().validate(spec)
        for d in spec.disks:
            if d.size_mib and d.format.lower() not in FORMATS:
                raise PermanentError(f"VirtualBox creates VDI, VMDK or VHD disks, not "
                                     f"'{d.format}' (vm.storageformat)")
            if d.location and not _dir(d.location).startswith("/"):
                raise PermanentError(f"VirtualBox storage must be a directory on the host "
                                     f"(dir:///path), not '{d.location}'")
            if d.bus not in BUS_CONTROLLER:
                raise PermanentError(f"no VirtualBox controller for disk bus '{d.bus}' "
                                     "(virtio, sata, scsi, ide)")
        for n in spec.nics:
            if n.model and n.model.lower() not in NIC_TYPES:
                raise PermanentError(f"VirtualBox has no '{n.model}' network adapter "
                                     f"(vm.nicmodel: {', '.join(sorted(set(NIC_TYPES)))})")

    def translate(self, exc: Exception) -> DriverError | None:
        """VBoxManage output this driver cannot read -> PermanentError naming the host."""
        if isinstance(exc, vp.ParseError):
            return PermanentError(f"{self.where}: {exc}")
        return None

    # running VBoxManage ---------------------------------------------------------------------
    def _sh(self, cmd):
        if self.conn is None:
            self.connect()
        return self.conn.run(cmd, timeout=self.timeout)

    def _vbox(self, *args: str, node: str | None = None):
        """Run ``VBoxManage *args``; a refusal because the VM is locked by another session
        is retried on the ``retry`` schedule, then reported; other errors at once, typed,
        one line."""
        def once():
            r = self._sh(["VBoxManage", *args])
            if r.rc == 0:
                return r
            raise self._error(vp.classify_error(r.rc, r.err or r.out), node, args[0])

        return retry(once, schedule=self.schedule)

    def _error(self, e: vp.VBoxError, node: str | None, cmd: str) -> DriverError:
        """The typed one-line error for a classified VBoxManage failure."""
        K = vp.ErrorKind
        if e.kind is K.MISSING:
            return PermanentError(f"VBoxManage is not installed on {self.where} (not on the "
                                  f"PATH of user {self.user})")
        if e.kind is K.NOT_FOUND:
            if node and "registered machine" in e.message:
                return NotFound(f"Cannot find vm {node} on {self.where}")
            return NotFound(f"{self.where}: {e.message}")
        if e.kind is K.LOCKED:
            return Transient(f"{node or 'the VM'} is locked by another VirtualBox session on "
                             f"{self.where} ({e.code or 'locked'}); try again when it is free")
        if e.kind in (K.EXISTS, K.HOSTIF):
            return (InvalidState if e.kind is K.EXISTS else PermanentError)(
                f"{self.where}: {e.message}")
        return PermanentError(f"VBoxManage {cmd} failed on {self.where}: {e.message}")

    def _chunks(self, script: str) -> list[tuple[int, str]]:
        """Run a script whose VBoxManage calls are framed by :data:`_BEGIN` / :data:`_RC`
        lines; returns (exit code, output) per call, in order."""
        r = self._sh(script)
        if r.rc != 0 and _BEGIN not in r.out:
            raise self._error(vp.classify_error(r.rc, r.err), None, "list")
        out, cur = [], None
        for line in r.out.splitlines(keepends=True):
            if line.rstrip("\n") == _BEGIN:
                cur = []
            elif line.startswith(_RC) and cur is not None:
                out.append((int(line[len(_RC):].strip() or 1), "".join(cur)))
                cur = None
            elif cur is not None:
                cur.append(line)
        return out

    @staticmethod
    def _framed(argv: Sequence[str]) -> str:
        return (f"printf '%s\\n' {_BEGIN}; {shlex.join(argv)} 2>&1 </dev/null; "
                f"printf '{_RC}%s\\n' $?")

    def _infos(self, names: Sequence[str]) -> dict[str, vp.VmInfo | vp.VBoxError]:
        """``showvminfo --machinereadable`` of each name in ONE remote command: name ->
        :class:`~nodemgr.plugins.vbox.parse.VmInfo`, or the classified error (not found)."""
        names = list(dict.fromkeys(names))
        if not names:
            return {}
        script = "; ".join([_HAVE, *(self._framed(["VBoxManage", "showvminfo", n,
                                                   "--machinereadable"]) for n in names)])
        chunks = self._chunks(script)
        if len(chunks) != len(names):
            raise PermanentError(f"{self.where}: showvminfo output ended after "
                                 f"{len(chunks)} of {len(names)} VMs")
        out = {}
        for name, (rc, text) in zip(names, chunks, strict=True):
            out[name] = vp.vm_info(text) if rc == 0 else vp.classify_error(rc, text)
        return out

    def _info(self, infos: dict, spec: VmSpec) -> vp.VmInfo:
        """*spec*'s VmInfo from :meth:`_infos`; NotFound when it is not registered."""
        got = infos.get(spec.node)
        if got is None or isinstance(got, vp.VBoxError):
            if got is None or got.kind is vp.ErrorKind.NOT_FOUND:
                raise NotFound(f"Cannot find vm {spec.node} on {self.where}")
            raise self._error(got, spec.node, "showvminfo")
        return got

    def _all(self) -> list[vp.VmInfo]:
        """Every registered VM's showvminfo, in ONE remote command (``list vms``, then
        ``showvminfo`` by UUID); a VM gone or inaccessible meanwhile is left out."""
        script = (f"{_HAVE}\nout=$(VBoxManage list vms) || exit $?\n"
                  "printf '%s\\n' \"$out\" | while IFS= read -r line; do\n"
                  "  [ -n \"$line\" ] || continue\n  u=${line##*\\{}; u=${u%\\}}\n"
                  f"  printf '%s\\n' {_BEGIN}; VBoxManage showvminfo \"$u\" --machinereadable "
                  f"2>&1 </dev/null; printf '{_RC}%s\\n' $?\ndone")
        return [vp.vm_info(text) for rc, text in self._chunks(script) if rc == 0]

    # layout of a VM -------------------------------------------------------------------------
    @staticmethod
    def _controllers(info: vp.VmInfo) -> dict[str, str]:
        """controller name -> its type (``IntelAhci``, ``PIIX4``...)."""
        raw = info.raw
        return {raw[k]: raw.get("storagecontrollertype" + k[len("storagecontrollername"):], "")
                for k in raw if k.startswith("storagecontrollername")}

    def _dev(self, info: vp.VmInfo, disk: vp.Disk) -> str:
        """nodemgr's device name for an attached medium (see the module docstring)."""
        if self._controllers(info).get(disk.controller) in IDE_TYPES:
            return "hd" + _letter(disk.port * 2 + disk.device)
        return "sd" + _letter(disk.port)

    def _disk_controller(self, info: vp.VmInfo) -> str | None:
        """The VM's disk controller (the first one that is not IDE or floppy)."""
        for name, ctype in self._controllers(info).items():
            if ctype not in (*IDE_TYPES, "I82078"):
                return name
        return None

    def _ide(self, info: vp.VmInfo) -> str | None:
        return next((n for n, t in self._controllers(info).items() if t in IDE_TYPES), None)

    def _slot(self, info: vp.VmInfo, dev: str) -> vp.Disk:
        """The attached disk (not DVD) a device name stands for; NotFound otherwise."""
        for d in info.disks:
            if d.path and not d.dvd and self._dev(info, d)[2:] == dev[2:] and \
                    (dev.startswith("hd") == self._dev(info, d).startswith("hd")):
                return d
        raise NotFound(f"{info.name} has no disk {dev}")

    @staticmethod
    def _vmdir(info: vp.VmInfo) -> str:
        return posixpath.dirname(info.cfgfile or "")

    def _is_cidata(self, d: vp.Disk, node: str) -> bool:
        return bool(d.path) and posixpath.basename(d.path) == f"{node}{CIDATA_SUFFIX}"

    def _dvd(self, info: vp.VmInfo, node: str) -> vp.Disk | None:
        return next((d for d in info.disks if d.dvd and not self._is_cidata(d, node)), None)

    # mkvm ------------------------------------------------------------------------------------
    def create(self, specs: Sequence[VmSpec], *, force: bool = False) -> Iterator[NodeResult]:
        """Create and register each VM (see the module docstring); it is not started
        (``rpower on`` does). A name already registered is refused (InvalidState) unless
        *force*, which deletes the old VM first (not while it runs). A NIC on a bridged or
        host-only interface the host does not have is refused before anything is made.
        ``facts.host`` = the host node, ``facts.uuid`` = the hardware UUID."""
        if self.conn is None:
            self.connect()
        registered = dict(vp.parse_list_vms(self._vbox("list", "vms").out))
        ifs: dict[str, list[str]] = {}
        yield from self.each_node(specs, self._create_one, registered, ifs, force)

    def _check_ifs(self, spec: VmSpec, ifs: dict[str, list[str]]) -> None:
        for nic in spec.nics:
            kind, net = nic_attachment(nic)
            if kind not in ("bridged", "hostonly"):
                continue
            what = "bridgedifs" if kind == "bridged" else "hostonlyifs"
            if what not in ifs:
                ifs[what] = vp.parse_list_ifs(self._vbox("list", what).out)
            if net not in ifs[what]:
                label = "bridged" if kind == "bridged" else "host-only"
                raise PermanentError(f"{label} interface '{net}' does not exist on "
                                     f"{self.where} (VBoxManage list {what}: "
                                     f"{', '.join(ifs[what]) or 'none'})")

    def _create_one(self, spec: VmSpec, registered: dict, ifs: dict,
                    force: bool) -> NodeResult:
        self._check_ifs(spec, ifs)
        if spec.node in registered:
            if not force:
                raise InvalidState(f"{spec.node} is already registered on {self.where} "
                                   "(rmvm it first, or mkvm -f to replace it)")
            old = self._info(self._infos([spec.node]), spec)
            if vp.power_state(old.state) in ("on", "suspended"):
                raise InvalidState(f"{spec.node} is running on {self.where}; stop it first")
            self._vbox("unregistervm", spec.node, "--delete", node=spec.node)
            self._rm_cidata(old, spec.node)
        base = _dir(spec.storage[0]) if spec.storage else ""
        if spec.master:
            info = self._from_master(spec, base)
        else:
            args = ["createvm", "--name", spec.node, "--register",
                    "--ostype", spec.extra.get("guestostype") or
                    self.endpoint.option("ostype", "Other_64")]
            if spec.uuid:
                args += ["--uuid", spec.uuid]
            if base:
                args += ["--basefolder", base]
            vp.parse_createvm(self._createvm(args, spec.node, force).out)
            info = None
        try:
            self._configure(spec, info, base)
        except BaseException:
            self._sh(["VBoxManage", "unregistervm", spec.node, "--delete"])
            raise
        return NodeResult(spec.node, facts=Facts(host=self._host_fact(), uuid=spec.uuid))

    def _createvm(self, args: list[str], node: str, force: bool):
        """``createvm``; the settings file of an unregistered VM of that name in the same
        folder (left by ``rmvm`` without ``-p``) is refused, or with *force* registered
        and deleted first."""
        try:
            return self._vbox(*args, node=node)
        except InvalidState as exc:
            m = re.search(r"Machine settings file '(.*)' already exists", str(exc))
            if m is None:
                raise
            if not force:
                raise InvalidState(f"{exc} (an unregistered VM's files, left by rmvm "
                                   "without -p; mkvm -f deletes them)") from None
            self._vbox("registervm", m.group(1), node=node)
            self._vbox("unregistervm", node, "--delete", node=node)
            return self._vbox(*args, node=node)

    def _host_fact(self) -> str | None:
        h = self.endpoint.host
        return h if h and "://" not in h else None

    def _from_master(self, spec: VmSpec, base: str) -> vp.VmInfo:
        """Import the appliance or fully clone the template VM *spec.master* as the node."""
        src = spec.master or ""
        extra = ["--basefolder", base] if base else []
        if src.endswith((".ova", ".ovf")) or src.startswith("/"):
            args = ["import", src, "--vsys", "0", "--vmname", spec.node, *extra]
            if "memory" in spec.extra:
                args += ["--vsys", "0", "--memory", str(spec.memory_mib)]
            if "cpus" in spec.extra:
                args += ["--vsys", "0", "--cpus", str(spec.cpus)]
            vp.parse_import(self._vbox(*args, node=spec.node).out)
        else:
            args = ["clonevm", src, "--name", spec.node, "--register", *extra]
            if spec.uuid:
                args += ["--uuid", spec.uuid]
            try:
                vp.parse_clonevm(self._vbox(*args, node=src).out)
            except NotFound:
                raise NotFound(f"template {src} (vm.master) is not registered on "
                               f"{self.where}") from None
        return self._info(self._infos([spec.node]), spec)

    def _configure(self, spec: VmSpec, info: vp.VmInfo | None, base: str) -> None:
        """modifyvm, controllers, disks, DVD and config disk for a VM just made; *info*
        is the imported/cloned VM (None: made from scratch, everything from *spec*)."""
        mod = ["modifyvm", spec.node]
        if info is None or "memory" in spec.extra:
            mod += ["--memory", str(spec.memory_mib)]
        if info is None or "cpus" in spec.extra:
            mod += ["--cpus", str(spec.cpus)]
        if spec.uuid:
            mod += ["--hardwareuuid", spec.uuid]
        if info is None:
            order = [BOOT[b] for b in spec.bootorder if b in BOOT][:4]
            for i in range(4):
                mod += [f"--boot{i + 1}", order[i] if i < len(order) else "none"]
        if spec.nics:
            for i in range(1, 9):
                if i > len(spec.nics):
                    if info is not None and any(n.slot == i for n in info.nics):
                        mod += [f"--nic{i}", "none"]
                    continue
                mod += self._nic_args(i, spec.nics[i - 1])
        if (spec.extra.get("vidproto") or "").lower() == "rdp":
            mod += ["--vrde", "on", "--vrdeport",
                    self.endpoint.option("vrdeport", "5000-5999")]
        self._vbox(*mod, node=spec.node)
        if info is None:
            info = self._info(self._infos([spec.node]), spec)
        ctl = self._disk_controller(info)
        for d in spec.disks:
            if d.device == "cdrom":
                continue
            name, add = BUS_CONTROLLER[d.bus]
            if add == "ide":
                ctl_name = self._ensure_ide(spec, info)
                i = _index(d.dev) or 0
                port, device = divmod(i, 2)
            else:
                if ctl is None:
                    self._vbox("storagectl", spec.node, "--name", name, "--add", add,
                               *(["--portcount", "30"] if add == "sata" else []),
                               node=spec.node)
                    ctl = name
                ctl_name, port, device = ctl, _index(d.dev) or 0, 0
            path = d.source
            if d.size_mib:
                path = self._disk_path(spec, info, d, base)
                self._vbox("createmedium", "disk", "--filename", path, "--size",
                           str(d.size_mib), "--format", FORMATS[d.format.lower()],
                           node=spec.node)
            if path:
                self._vbox("storageattach", spec.node, "--storagectl", ctl_name, "--port",
                           str(port), "--device", str(device), "--type", "hdd", "--medium",
                           path, node=spec.node)
        cdrom = next((d.source for d in spec.disks if d.device == "cdrom" and d.source), None)
        if self._dvd(info, spec.node) is None or cdrom:
            ide = self._ensure_ide(spec, info)
            self._vbox("storageattach", spec.node, "--storagectl", ide, "--port", "1",
                       "--device", "0", "--type", "dvddrive", "--medium",
                       cdrom or "emptydrive", node=spec.node)
        if spec.bootparams:
            iso = self._put_cidata(spec, self._vmdir(info))
            ide = self._ensure_ide(spec, info)
            self._vbox("storageattach", spec.node, "--storagectl", ide, "--port", "1",
                       "--device", "1", "--type", "dvddrive", "--medium", iso, node=spec.node)

    def _ensure_ide(self, spec: VmSpec, info: vp.VmInfo) -> str:
        ide = self._ide(info)
        if ide is None:
            self._vbox("storagectl", spec.node, "--name", "IDE", "--add", "ide",
                       node=spec.node)
            info.raw["storagecontrollername99"] = "IDE"
            info.raw["storagecontrollertype99"] = "PIIX4"
            ide = "IDE"
        return ide

    def _disk_path(self, spec: VmSpec, info: vp.VmInfo, d: DiskSpec, base: str) -> str:
        """``<dir>/<node>.<dev>.<ext>``: in the VM's folder for the first storage location
        (or none), else in the disk's own location."""
        where = _dir(d.location)
        folder = self._vmdir(info) if where in ("", base) else where
        ext = FORMATS[d.format.lower()].lower()
        return f"{folder}/{spec.node}.{d.dev}.{ext}"

    @staticmethod
    def _nic_args(slot: int, nic: NicSpec) -> list[str]:
        kind, net = nic_attachment(nic)
        args = [f"--nic{slot}", kind]
        key = {"bridged": "--bridgeadapter", "hostonly": "--hostonlyadapter",
               "intnet": "--intnet"}.get(kind)
        if key and net:
            args += [f"{key}{slot}", net]
        if nic.mac:
            args += [f"--macaddress{slot}", nic.mac.replace(":", "").upper()]
        if nic.model:
            args += [f"--nictype{slot}", NIC_TYPES[nic.model.lower()]]
        return args

    # boot parameters --------------------------------------------------------------------------
    def _put_cidata(self, spec: VmSpec, folder: str) -> str:
        """Build the NoCloud ISO for *spec* locally, upload it as ``<folder>/<node>.cidata.iso``
        (atomically); returns its path on the host."""
        from nodemgr.bootparams import build_cidata_iso

        path = f"{folder}/{spec.node}{CIDATA_SUFFIX}"
        with tempfile.TemporaryDirectory(prefix="nodemgr-cidata-") as tmp:
            local = os.path.join(tmp, "cidata.iso")
            build_cidata_iso(local, spec.node, spec.bootparams,
                             spec.nics[0].mac if spec.nics else None, spec.uuid)
            with open(local, "rb") as fh:
                data = fh.read()
        self.conn.put(path, data)
        return path

    def _rm_cidata(self, info: vp.VmInfo, node: str) -> None:
        for d in info.disks:
            if self._is_cidata(d, node):
                self._sh(["rm", "-f", "--", d.path])

    # rmvm --------------------------------------------------------------------------------------
    def remove(self, specs: Sequence[VmSpec], *, force: bool = False,
               purge: bool = False) -> Iterator[NodeResult]:
        """Unregister each VM (``purge``: ``--delete``, i.e. its disks, saved state,
        settings and folder, plus the config disk); a running one is refused (InvalidState)
        unless *force*, which powers it off first."""
        infos = self._infos([s.node for s in specs])
        yield from self.each_node(specs, self._remove_one, infos, force, purge)

    def _remove_one(self, spec: VmSpec, infos: dict, force: bool, purge: bool) -> NodeResult:
        info = self._info(infos, spec)
        if vp.power_state(info.state) in ("on", "suspended") and info.state != "saved":
            if not force:
                raise InvalidState(f"{spec.node} is running on {self.where} "
                                   "(use -f to stop it first)")
            self._vbox("controlvm", spec.node, "poweroff", node=spec.node)
        if purge:
            self._vbox("unregistervm", spec.node, "--delete", node=spec.node)
            self._rm_cidata(info, spec.node)
        else:
            self._vbox("unregistervm", spec.node, node=spec.node)
        return NodeResult(spec.node)

    # rpower --------------------------------------------------------------------------------------
    def power(self, specs: Sequence[VmSpec], action: str) -> Iterator[NodeResult]:
        """Power *action* with xCAT's replies (``on``, ``off``, ``off on``, ``on reset``,
        ``reset``, ``suspended``); the states of all *specs* come from one remote command.
        ``facts.power`` = the state after it, ``facts.status`` = ``powering-on``/
        ``powering-off`` for a change. ``stat`` of a VM not registered here is ``off``."""
        if action in ("state", "status"):
            action = "stat"
        infos = self._infos([s.node for s in specs])
        yield from self.each_node(specs, self._power_one, action, infos)

    def _power_one(self, spec: VmSpec, action: str, infos: dict) -> NodeResult:
        got = infos.get(spec.node)
        if action == "stat" and isinstance(got, vp.VBoxError) and \
                got.kind is vp.ErrorKind.NOT_FOUND:
            return NodeResult(spec.node, message="off", data={"state": "off"},
                              facts=Facts(power="off"))
        info = self._info(infos, spec)
        prev = vp.power_state(info.state)
        n = spec.node

        def start():
            r = self._vbox("startvm", n, "--type", "headless", node=n)
            if not vp.started(r.out):
                raise PermanentError(f"startvm of {n} on {self.where} did not report a start")

        def stop():
            if info.state == "saved":
                self._vbox("discardstate", n, node=n)
            elif prev in ("on", "suspended"):
                self._vbox("controlvm", n, "poweroff", node=n)

        if action == "stat":
            msg = state = prev
        elif action == "on":
            if info.state == "paused":
                self._vbox("controlvm", n, "resume", node=n)
            elif prev != "on":
                start()
            msg = state = "on"
        elif action == "off":
            stop()
            msg = state = "off"
        elif action == "softoff":
            if prev == "on":
                self._vbox("controlvm", n, "acpipowerbutton", node=n)
            else:
                stop()
            msg = state = "off"
        elif action == "reset":
            if prev == "on":
                self._vbox("controlvm", n, "reset", node=n)
                msg, state = "reset", "on"
            else:
                msg = state = prev
        elif action == "boot":
            if prev == "on":
                self._vbox("controlvm", n, "reset", node=n)
                msg = "on reset"
            else:
                stop()
                start()
                msg = "off on"
            state = "on"
        elif action == "suspend":
            if info.state != "running":
                raise InvalidState(f"{n} is not running on {self.where}")
            self._vbox("controlvm", n, "savestate" if self.suspend == "save" else "pause",
                       node=n)
            msg = state = "suspended"
        elif action == "resume":
            if info.state == "paused":
                self._vbox("controlvm", n, "resume", node=n)
            elif info.state == "saved":
                start()
            else:
                raise InvalidState(f"{n} is not suspended on {self.where}")
            msg = state = "on"
        else:
            raise PermanentError(f"Unsupported power directive '{action}'")
        facts = Facts(power=state)
        if action != "stat" and state == "on" and (prev != "on" or action in ("reset",
                                                                              "boot")):
            facts.status = "powering-on"
        elif action in ("off", "softoff") and prev != "off":
            facts.status = "powering-off"
        return NodeResult(n, message=msg, data={"state": state, "previous": prev},
                          facts=facts)

    # lsvm, rscan ----------------------------------------------------------------------------------
    def _vminfo(self, info: vp.VmInfo) -> VmInfo:
        return VmInfo(name=info.name or "", state=vp.power_state(info.state),
                      uuid=info.raw.get("hardwareuuid") or info.uuid,
                      memory_mib=info.memory_mib, cpus=info.cpus,
                      macs=[n.mac for n in info.nics if n.mac],
                      disks=[DiskInfo(dev=self._dev(info, d), path=d.path,
                                      format=_fmt(d.path), device="cdrom" if d.dvd else "disk")
                             for d in info.disks if d.path])

    def list_vms(self) -> list[VmInfo]:
        """Every VM registered for the login user, with its state, UUID (the hardware
        UUID, what the guest and PXE see), memory, cpus, MACs and media: one command."""
        return sorted((self._vminfo(i) for i in self._all()), key=lambda v: v.name)

    def describe(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        """Host, State, UUID, Memory, CPUs, OS type, settings file, boot order, media,
        NICs and VRDE of each VM (one command for all)."""
        infos = self._infos([s.node for s in specs])
        yield from self.each_node(specs, self._describe_one, infos)

    def _describe_one(self, spec: VmSpec, infos: dict) -> NodeResult:
        info = self._info(infos, spec)
        state = vp.power_state(info.state)
        lines = [f"Host: {self.where}", f"State: {state} ({info.state})",
                 f"UUID: {info.raw.get('hardwareuuid') or info.uuid}",
                 f"Memory: {info.memory_mib}", f"CPU: {info.cpus}",
                 f"OS type: {info.ostype}", f"Config: {info.cfgfile}",
                 f"Boot: {','.join(info.boot)}"]
        for d in info.disks:
            kind = "DVD" if d.dvd else "Disk"
            lines.append(f"{kind} {self._dev(info, d)}: {d.path or 'empty'}")
        for n in info.nics:
            lines.append(f"NIC {n.slot}: {n.mac or ''} {n.kind} {n.network or ''}".rstrip())
        if info.raw.get("vrde") == "on":
            lines.append(f"VRDE: on, port {info.raw.get('vrdeports', '')}")
        return NodeResult(spec.node, message="\n".join(lines), data={"state": state},
                          facts=Facts(power=state))

    # rvitals ------------------------------------------------------------------------------------
    def vitals(self, specs: Sequence[VmSpec], interval_s: float = 1.0) -> Iterator[NodeResult]:
        """Use of each running VM over *interval_s* seconds (rounded up to whole seconds,
        VirtualBox's metric period), from ONE remote command: ``metrics setup --period P
        --samples 1`` for each VM, a pause of P, ``metrics query``. CPU % = (CPU/Load/User
        + CPU/Load/Kernel) x the host's CPU count (VirtualBox gives a VM's load as a share
        of the whole host; ``list hostinfo``); memory used = the guest's own figure with
        Guest Additions (Guest/RAM/Usage/Total - Free), else what the VM process holds
        (RAM/Usage/Used); available = its configured memory; network rates Net/Rate/Rx|Tx
        (VirtualBox 6.1+). VirtualBox has no disk rate metric: disk stays None. A VM that
        is not running fails with InvalidState."""
        if self.conn is None:
            self.connect()
        period = max(1, math.ceil(interval_s))
        metrics = ("CPU/Load/User,CPU/Load/Kernel,RAM/Usage/Used,Net/Rate/Rx,Net/Rate/Tx,"
                   "Guest/RAM/Usage/Total,Guest/RAM/Usage/Free")
        parts = [_HAVE, self._framed(["VBoxManage", "list", "hostinfo"])]
        parts += [f"VBoxManage metrics setup --period {period} --samples 1 "
                  f"{shlex.quote(s.node)} >/dev/null 2>&1" for s in specs]
        parts += [f"sleep {period}", self._framed(["VBoxManage", "metrics", "query", "*",
                                                   metrics])]
        parts += [self._framed(["VBoxManage", "showvminfo", s.node, "--machinereadable"])
                  for s in specs]
        chunks = self._chunks("; ".join(parts))
        if len(chunks) != len(specs) + 2:
            raise PermanentError(f"{self.where}: the metrics command's output ended early")
        (hrc, host), (mrc, query), rest = chunks[0], chunks[1], chunks[2:]
        ncpu = vp.host_cpu_count(host) if hrc == 0 else None
        rows: dict[str, dict[str, float]] = {}
        if mrc == 0:
            for m in vp.parse_metrics_query(query):
                if ":" not in m.name and m.values:
                    rows.setdefault(m.object, {})[m.name] = m.values[-1]
        infos = {s.node: (vp.vm_info(t) if rc == 0 else vp.classify_error(rc, t))
                 for s, (rc, t) in zip(specs, rest, strict=False)}
        yield from self.each_node(specs, self._vitals_one, infos, rows, ncpu, period)

    def _vitals_one(self, spec: VmSpec, infos: dict, rows: dict, ncpu: int | None,
                    period: int) -> NodeResult:
        info = self._info(infos, spec)
        if vp.power_state(info.state) not in ("on", "suspended") or info.state == "saved":
            raise InvalidState(f"{spec.node} is not running on {self.where}")
        r = rows.get(spec.node, {})
        cpu = None
        if "CPU/Load/User" in r:
            cpu = round((r["CPU/Load/User"] + r.get("CPU/Load/Kernel", 0.0)) * (ncpu or 1), 1)
        used = None
        if "Guest/RAM/Usage/Total" in r and "Guest/RAM/Usage/Free" in r:
            used = int(r["Guest/RAM/Usage/Total"] - r["Guest/RAM/Usage/Free"]) // 1024
        elif "RAM/Usage/Used" in r:
            used = int(r["RAM/Usage/Used"]) // 1024
        m = Metrics(interval_s=float(period), cpu_pct=cpu, cpus=info.cpus,
                    mem_used_mib=used, mem_avail_mib=info.memory_mib,
                    net_rx_bps=r.get("Net/Rate/Rx"), net_tx_bps=r.get("Net/Rate/Tx"))
        return NodeResult(spec.node, facts=Facts(metrics=m))

    # rinv, addresses ----------------------------------------------------------------------------
    def _guest(self, specs: Sequence[VmSpec]) -> list[tuple[int, str]]:
        """``guestproperty enumerate`` of the network and Guest Additions properties of
        each spec, in one remote command (chunks in spec order)."""
        pats = "/VirtualBox/GuestInfo/Net/*|/VirtualBox/GuestAdd/Version"
        return self._chunks("; ".join([_HAVE, *(self._framed(
            ["VBoxManage", "guestproperty", "enumerate", s.node, "--patterns", pats])
            for s in specs)]))

    @staticmethod
    def _agent_addresses(info: vp.VmInfo, rc: int, text: str) -> list[Address] | None:
        """Addresses Guest Additions publish (source ``agent``; the MAC of the adapter with
        the same index, best effort), or None when they do not run."""
        props = vp.parse_guestproperty_enumerate(text) if rc == 0 else {}
        if "/VirtualBox/GuestAdd/Version" not in props and not vp.guest_ipv4(props):
            return None
        macs = [n.mac for n in info.nics]
        return [Address(ip, "agent", macs[i] if i < len(macs) else None)
                for i, ip in sorted(vp.guest_ipv4(props).items())]

    def addresses(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        """Each running VM's IPv4 addresses from its guest properties
        (``/VirtualBox/GuestInfo/Net/<n>/V4/IP``, published by Guest Additions);
        ``data["addresses"]`` is a list of strings. Without Guest Additions running the
        node fails with InvalidState saying so (VirtualBox cannot see the guest's
        addresses any other way)."""
        infos = self._infos([s.node for s in specs])
        guest = self._guest(specs)
        yield from self.each_node(specs, self._addresses_one, infos, dict(zip(
            [s.node for s in specs], guest, strict=False)))

    def _addresses_one(self, spec: VmSpec, infos: dict, guest: dict) -> NodeResult:
        info = self._info(infos, spec)
        addrs = self._agent_addresses(info, *guest.get(spec.node, (1, "")))
        if addrs is None:
            raise InvalidState(f"Guest Additions are not running in {spec.node}: VirtualBox "
                               "knows a guest's addresses only from them "
                               "(/VirtualBox/GuestInfo/Net/N/V4/IP)")
        ips = [a.ip for a in addrs]
        return NodeResult(spec.node, message=",".join(ips), data={"addresses": ips},
                          facts=Facts(addresses=addrs))

    def inventory(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        """Each VM's hardware UUID, cpus, memory (MiB), media with their capacity
        (``showmediuminfo``, MiB), NICs with MAC, adapter type and network, and addresses:
        ``agent`` (Guest Additions' guest properties, while the VM runs) and
        ``bootparams`` (the ``ip=`` of its boot parameters). ``data["guest_additions"]``
        says whether Guest Additions answered. Three remote commands for all specs."""
        infos = self._infos([s.node for s in specs])
        guest = dict(zip([s.node for s in specs], self._guest(specs), strict=False))
        paths = [d.path for i in infos.values() if isinstance(i, vp.VmInfo)
                 for d in i.disks if d.path and not d.dvd]
        sizes = {}
        if paths:
            chunks = self._chunks("; ".join([_HAVE, *(self._framed(
                ["VBoxManage", "showmediuminfo", "disk", p]) for p in paths)]))
            sizes = {p: vp.medium_capacity_mib(t) if rc == 0 else None
                     for p, (rc, t) in zip(paths, chunks, strict=False)}
        yield from self.each_node(specs, self._inventory_one, infos, guest, sizes)

    def _inventory_one(self, spec: VmSpec, infos: dict, guest: dict,
                       sizes: dict) -> NodeResult:
        from nodemgr.bootparams import addresses as bp_addresses

        info = self._info(infos, spec)
        vm = self._vminfo(info)
        for d in vm.disks:
            if d.device == "disk":
                d.size_mib = sizes.get(d.path)
        nics = [NicInfo(mac=n.mac or "", network=n.network or n.kind, model=n.model)
                for n in info.nics]
        agent = self._agent_addresses(info, *guest.get(spec.node, (1, "")))
        first = nics[0].mac if nics else None
        addrs = [Address(ip, "bootparams", first) for ip in bp_addresses(spec.bootparams)]
        addrs += [a for a in agent or [] if a.ip not in {b.ip for b in addrs}]
        inv = Inventory(uuid=vm.uuid, cpus=info.cpus, memory_mib=info.memory_mib,
                        disks=vm.disks, nics=nics, addresses=addrs)
        return NodeResult(spec.node, data={"guest_additions": agent is not None},
                          facts=Facts(inventory=inv, addresses=addrs))

    def scan(self) -> list[VmInfo]:
        """:meth:`list_vms` (it already carries uuid, memory, cpus, MACs and media)."""
        return self.list_vms()

    def host_free_memory_mib(self) -> int:
        """``Memory available`` of ``list hostinfo`` (MiB)."""
        return vp.host_memory_available_mib(self._vbox("list", "hostinfo").out)

    # chvm ----------------------------------------------------------------------------------------
    def change(self, specs: Sequence[VmSpec], change: VmChange) -> Iterator[NodeResult]:
        """cpus/memory (one ``modifyvm``), add disks (in the rightmost storage location;
        VDI unless vm.storageformat says VMDK/VHD), detach (``-d``, the image kept) or
        purge (``-p``, ``closemedium --delete``) disks, grow disks (``modifymedium
        --resize``), insert/eject the DVD. Everything but the DVD needs the VM off
        (InvalidState otherwise: VirtualBox holds a running VM's settings locked). Every
        named disk is checked before anything changes. ``facts.cpus``/``memory_mib``."""
        infos = self._infos([s.node for s in specs])
        yield from self.each_node(specs, self._change_one, change, infos)

    def _change_one(self, spec: VmSpec, change: VmChange, infos: dict) -> NodeResult:
        info = self._info(infos, spec)
        n = spec.node
        running = vp.power_state(info.state) in ("on", "suspended")
        offline = (change.cpus or change.memory_mib or change.add_disks_mib
                   or change.remove_disks or change.detach_disks or change.resize)
        if running and offline:
            raise InvalidState(f"{n} is running on {self.where}: VirtualBox changes its "
                               "memory, CPUs and disks only while it is off")
        slots = {dev: self._slot(info, dev) for dev in
                 [*change.remove_disks, *change.detach_disks, *change.resize]}
        if (change.cdrom or change.eject) and self._dvd(info, n) is None and running:
            raise InvalidState(f"{n} has no DVD drive (add one while it is off)")
        for dev, size in change.resize.items():
            current = self._capacity(slots[dev].path)
            if current is not None and size < current:
                raise PermanentError(f"VirtualBox cannot shrink {dev} of {n} "
                                     f"({current} MiB) to {size} MiB")
        mod = ["modifyvm", n]
        if change.memory_mib:
            mod += ["--memory", str(change.memory_mib)]
        if change.cpus:
            mod += ["--cpus", str(change.cpus)]
        if len(mod) > 2:
            self._vbox(*mod, node=n)
        for dev, size in change.resize.items():
            self._vbox("modifymedium", "disk", slots[dev].path, "--resize", str(size), node=n)
        for dev in [*change.remove_disks, *change.detach_disks]:
            d = slots[dev]
            self._vbox("storageattach", n, "--storagectl", d.controller, "--port",
                       str(d.port), "--device", str(d.device), "--medium", "none", node=n)
            if dev in change.remove_disks:
                self._vbox("closemedium", "disk", d.path, "--delete", node=n)
        if change.add_disks_mib:
            self._add_disks(spec, info, change.add_disks_mib)
        if change.cdrom or change.eject:
            dvd = self._dvd(info, n)
            ctl, port, device = ((dvd.controller, dvd.port, dvd.device) if dvd
                                 else (self._ensure_ide(spec, info), 1, 0))
            self._vbox("storageattach", n, "--storagectl", ctl, "--port", str(port),
                       "--device", str(device), "--type", "dvddrive", "--medium",
                       change.cdrom or "emptydrive", node=n)
        return NodeResult(n, facts=Facts(cpus=change.cpus or None,
                                         memory_mib=change.memory_mib or None))

    def _capacity(self, path: str | None) -> int | None:
        if not path:
            return None
        r = self._sh(["VBoxManage", "showmediuminfo", "disk", path])
        return vp.medium_capacity_mib(r.out) if r.rc == 0 else None

    def _add_disks(self, spec: VmSpec, info: vp.VmInfo, sizes: Sequence[int]) -> None:
        """New disks on the VM's disk controller (a SATA one is added when it has none),
        on its first free ports; a disk whose attach fails is deleted again."""
        ctl = self._disk_controller(info)
        if ctl is None:
            self._vbox("storagectl", spec.node, "--name", "SATA", "--add", "sata",
                       "--portcount", "30", node=spec.node)
            ctl = "SATA"
        used = {d.port for d in info.disks if d.controller == ctl}
        loc = (spec.storage or [""])[-1]
        fmt = spec.storageformat.lower() if spec.storageformat.lower() in FORMATS else "vdi"
        free = [p for p in range(30) if p not in used][: len(sizes)]
        for port, size in zip(free, sizes, strict=False):
            dev = "sd" + _letter(port)
            d = DiskSpec(dev=dev, location=loc, size_mib=size, format=fmt)
            path = self._disk_path(spec, info, d, _dir(spec.storage[0]) if spec.storage
                                   else "")
            self._vbox("createmedium", "disk", "--filename", path, "--size", str(size),
                       "--format", FORMATS[fmt], node=spec.node)
            try:
                self._vbox("storageattach", spec.node, "--storagectl", ctl, "--port",
                           str(port), "--device", "0", "--type", "hdd", "--medium", path,
                           node=spec.node)
            except DriverError:
                self._sh(["VBoxManage", "closemedium", "disk", path, "--delete"])
                raise

    # rsetboot -------------------------------------------------------------------------------------
    def set_boot(self, specs: Sequence[VmSpec], device: str) -> Iterator[NodeResult]:
        """Make *device* (``net``, ``hd``, ``cd``; ``default`` = ``vm.bootorder``) the
        first boot device (``modifyvm --boot1..4``; the devices it had follow). An unknown
        device fails every node with no call to the host; a running VM is InvalidState
        (VirtualBox reads the boot order at power-on and locks it while running)."""
        if device not in (*BOOT_DEVICE, "default"):
            err = PermanentError(f"unknown boot device '{device}' (net, hd, cd or default)")
            yield from self.each_node(specs, _refuse, err)
            return
        infos = self._infos([s.node for s in specs])
        yield from self.each_node(specs, self._set_boot_one, device, infos)

    def _set_boot_one(self, spec: VmSpec, device: str, infos: dict) -> NodeResult:
        info = self._info(infos, spec)
        if vp.power_state(info.state) in ("on", "suspended"):
            raise InvalidState(f"{spec.node} is running on {self.where}: VirtualBox changes "
                               "the boot order only while it is off")
        if device == "default":
            order = [BOOT[b] for b in spec.bootorder if b in BOOT]
        else:
            first = BOOT_DEVICE[device]
            order = [first, *(b for b in info.boot if b != first)]
        order = (order + ["none"] * 4)[:4]
        args = ["modifyvm", spec.node]
        for i, b in enumerate(order):
            args += [f"--boot{i + 1}", b]
        self._vbox(*args, node=spec.node)
        return NodeResult(spec.node, message=device, data={"boot": [b for b in order
                                                                     if b != "none"]},
                          facts=Facts(bootdev=device))

    # getcons / getrvidparms ------------------------------------------------------------------------
    def console(self, spec: VmSpec, *, open_stream: bool = False,
                display: bool = False) -> Console:
        """The VM's VRDE server (RDP): ``Console(kind="rdp")`` with its address (the host's
        when VRDE listens on every address) and port (the one it listens on while running,
        else the first configured). VirtualBox has no serial console over SSH: with
        *open_stream* Unsupported; VRDE off: Unsupported naming how to turn it on."""
        if open_stream:
            raise Unsupported(NO_SERIAL)
        info = self._info(self._infos([spec.node]), spec)
        raw = info.raw
        if raw.get("vrde") != "on":
            raise Unsupported(f"{spec.node} has no remote display: VRDE is off (vm.vidproto="
                              f"rdp at mkvm, or VBoxManage modifyvm {spec.node} --vrde on); "
                              "VirtualBox has no serial console over SSH")
        port = int(raw.get("vrdeport") or -1)
        if port <= 0:
            first = (raw.get("vrdeports") or "").split(",")[0].split("-")[0]
            port = int(first) if first.isdigit() else None
        addr = raw.get("vrdeaddress") or ""
        host = addr if addr not in ("", "0.0.0.0", "::") else self.host
        return Console(kind="rdp", host=host, port=port,
                       command=f"xfreerdp /v:{host}:{port}" if port else None)

    # rmigrate ----------------------------------------------------------------------------------------
    def migrate(self, specs: Sequence[VmSpec], target: Endpoint) -> Iterator[NodeResult]:
        """Unsupported: see :data:`~nodemgr.plugins.vbox.NO_MIGRATE`."""
        yield from self.each_node(specs, _refuse, Unsupported(NO_MIGRATE))

    # clonevm -------------------------------------------------------------------------------------------
    def make_master(self, spec: VmSpec, master: str, *, detached: bool = False,
                    force: bool = False) -> NodeResult:
        """Make master *master*: a full ``clonevm`` of the (stopped) VM registered as
        *master*, with a snapshot ``nodemgr-master`` thin clones are linked to. The VM
        keeps its own disks (VirtualBox cannot rebase it on the master).
        ``facts.master_definition`` = ``name=...;uuid=...;snapshot=...;host=...``.
        An existing master is replaced only with *force*."""
        infos = self._infos([spec.node, master])
        info = self._info(infos, spec)
        if vp.power_state(info.state) in ("on", "suspended") and not force:
            raise InvalidState(f"{spec.node} is running; power it off or use -f")
        if isinstance(infos.get(master), vp.VmInfo):
            if not force:
                raise InvalidState(f"Master {master} already exists on {self.where} "
                                   "(use -f to replace it)")
            self._vbox("unregistervm", master, "--delete", node=master)
        vp.parse_clonevm(self._vbox("clonevm", spec.node, "--name", master, "--register",
                                    node=spec.node).out)
        self._vbox("snapshot", master, "take", "nodemgr-master", node=master)
        minfo = self._info(self._infos([master]), VmSpec(node=master))
        text = (f"name={master};uuid={minfo.uuid};snapshot=nodemgr-master;"
                f"host={self.where}")
        return NodeResult(spec.node, message=f"master {master} made on {self.where}",
                          data={"master_definition": text},
                          facts=Facts(master_definition=text))

    def clone_from_master(self, specs: Sequence[VmSpec], master: str,
                          master_definition: str | None, *,
                          detached: bool = False) -> Iterator[NodeResult]:
        """Each VM as a clone of master *master* (a VM registered on this host):
        ``clonevm --snapshot nodemgr-master --options link`` (thin: differencing disks on
        the master's), or a full copy when *detached*; then the node's MACs, hardware UUID,
        NICs and (when the table sets them) memory and cpus. ``facts.cpus``/``memory_mib``
        report what the clone got."""
        from nodemgr.formats import keyvals

        snap = keyvals(master_definition, ";").get("snapshot") or "nodemgr-master"
        registered = dict(vp.parse_list_vms(self._vbox("list", "vms").out))
        yield from self.each_node(specs, self._clone_one, master, snap, detached, registered)

    def _clone_one(self, spec: VmSpec, master: str, snap: str, detached: bool,
                   registered: dict) -> NodeResult:
        if master not in registered:
            raise NotFound(f"Master {master} is not registered on {self.where} (clonevm -t "
                           "makes it on the host of its VM)")
        if spec.node in registered:
            raise InvalidState(f"{spec.node} already exists on {self.where}; remove it first "
                               "(rmvm)")
        args = ["clonevm", master, "--name", spec.node, "--register"]
        if not detached:
            args += ["--snapshot", snap, "--options", "link"]
        if spec.uuid:
            args += ["--uuid", spec.uuid]
        if spec.storage:
            args += ["--basefolder", _dir(spec.storage[0])]
        vp.parse_clonevm(self._vbox(*args, node=master).out)
        try:
            info = self._info(self._infos([spec.node]), spec)
            self._configure(spec, info, "")
        except BaseException:
            self._sh(["VBoxManage", "unregistervm", spec.node, "--delete"])
            raise
        info = self._info(self._infos([spec.node]), spec)
        facts = Facts(host=self._host_fact(), uuid=spec.uuid, cpus=info.cpus,
                      memory_mib=info.memory_mib, master=None if detached else master)
        if detached:
            facts.cleared.add("master")
        return NodeResult(spec.node, facts=facts)


def _refuse(spec: VmSpec, err: DriverError) -> NodeResult:
    """The per-node function for a request refused before any call: raises *err*."""
    raise err


def _fmt(path: str | None) -> str | None:
    ext = posixpath.splitext(path or "")[1][1:].lower()
    return ext or None
