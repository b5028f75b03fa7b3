"""The libvirt driver (entry points ``libvirt`` and ``kvm``): VMs on KVM/QEMU hosts, and on
anything else a libvirt URI reaches (``qemu:///system``, ``qemu+ssh://root@host/system``,
``qemu+tcp://...``, ``qemu+unix:///system?socket=...``, ``test:///default``).

It speaks only libvirt: XML comes from :mod:`.domain_xml`, pools and volumes from
:mod:`.storage`, the serial console from :mod:`.console`; tables are never read or written
(what they should learn comes back as typed ``NodeResult.facts``). ``libvirt`` is imported
on first connect only, so commands that never reach a hypervisor start fast; libvirt's own
stderr printing is silenced and every error becomes one typed, one-line message
(:meth:`LibvirtDriver.translate`). It must never shell out (no ssh, no qemu-img):
everything goes through the libvirt connection, so a remote host works the same as a
local one.

Behaviour follows xCAT's kvm.pm (output strings, storage naming ``<node>.<dev>.<fmt>``,
pools ``dir_<path>``), with these deliberate changes: domains are persistent (defineXML),
``lsvm`` lists shut-off domains too, a paused domain reports ``suspended`` (xCAT: ``off``),
and ``Memory:`` in ``lsvm`` is in MiB with the unit printed.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from nodemgr.formats import truthy
from nodemgr.plugins.base import (
    POWER_ACTIONS,
    Address,
    Console,
    DiskInfo,
    DriverError,
    Endpoint,
    Facts,
    HypervisorDriver,
    InvalidState,
    Inventory,
    Metrics,
    NodeResult,
    NotFound,
    PermanentError,
    Transient,
    Unreachable,
    Unsupported,
    VmChange,
    VmInfo,
    VmSpec,
    retry,
)
from nodemgr.plugins.libvirt import TRAITS
from nodemgr.plugins.libvirt.console import open_console
from nodemgr.plugins.libvirt.domain_xml import (
    BUS_PREFIX,
    DiskDevice,
    DomainXml,
    MiB,
    boot_devs,
    build_domain_xml,
    clone_definition,
    disk_from_element,
    disk_xml,
    host_domain_types,
    host_uuid,
    master_definition,
    next_devs,
    nic_element,
    parse_location,
    setboot_order,
    volume_copy_xml,
    volume_name,
    volume_xml,
)
from nodemgr.plugins.libvirt.storage import Storage, reason

_LIBVIRT: Any = None

# libvirt domain states (virDomainState), kept here so this module imports without libvirt.
_NOSTATE, _RUNNING, _BLOCKED, _PAUSED, _SHUTDOWN, _SHUTOFF, _CRASHED, _PMSUSPENDED = range(8)
STATE_NAMES = {0: "no state", 1: "running", 2: "blocked", 3: "paused", 4: "shutting down",
               5: "shut off", 6: "crashed", 7: "pmsuspended"}

#: xCAT's messages, verbatim where xCAT had one.
MSG_CONFLICT = ("Storage creation request conflicts with existing file(s) {path}. To force remove "
                "the existing storage file, rerun {cmd} with the -f option.")
MSG_RM_ACTIVE = "Cannot rmvm active guest (use -f argument to force)"
MSG_RM_MISSING = "Cannot remove guest vm, no such vm found"
MSG_NOT_PURGING = "Not purging raw or block storage device: {path}"
MSG_HOT_CPUS = "Hot add of cpus not supported (VM must be powered down to successfully change)"
MSG_MEM_MAX = ("Unable to increase memory beyond current capacity (requires VM to be powered "
               "down to change)")
MSG_QCOW2_SHRINK = "Resizing disk {dev} failed, qcow2 doesn't support shrinking images yet"
MSG_NO_INFO = "Could not get any information about specified object"

MEDIA_RETRIES = 3
MEDIA_DELAY_S = 1.0


def state_word(state: int | None) -> str:
    """xCAT's power word for a libvirt state: ``on`` for running/blocked/no state (as
    kvm.pm), ``suspended`` for paused or PM-suspended (kvm.pm said ``off``; we can suspend,
    so we say so), ``off`` for everything else and for an undefined domain (None)."""
    if state in (_NOSTATE, _RUNNING, _BLOCKED):
        return "on"
    if state in (_PAUSED, _PMSUSPENDED):
        return "suspended"
    return "off"


def _silence(_ctx: Any, _err: Any) -> None:
    """libvirt error handler: errors arrive as exceptions, never on stderr."""


def _libvirt() -> Any:
    """The ``libvirt`` module, imported on first use, with its stderr printing silenced."""
    global _LIBVIRT
    if _LIBVIRT is None:
        try:
            import libvirt
        except ImportError as exc:
            raise PermanentError("libvirt-python is not installed (pip install "
                                 "'nodemgr[libvirt]')") from exc
        libvirt.registerErrorHandler(_silence, None)
        _LIBVIRT = libvirt
    return _LIBVIRT


def _effective_uri(uri: str) -> str:
    """``qemu+ssh`` URIs get ``no_tty=1`` (as xCAT): never hang on a password prompt."""
    parts = urlsplit(uri)
    if "+ssh" not in parts.scheme:
        return uri
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if "no_tty" in query:
        return uri
    query["no_tty"] = "1"
    return urlunsplit(parts._replace(query=urlencode(query)))


class LibvirtDriver(HypervisorDriver):
    """Driver for one libvirt connection (endpoint URI).

    Endpoint options: ``virt_type`` (force a domain type for every VM of the endpoint),
    ``pools_dir`` (where netfs pools are mounted). Migration target options: ``unsafe``
    (allow live migration without shared storage), ``migrate_uri`` (data stream URI, e.g.
    ``tcp://10.0.0.2:49152``), ``listen_address``, ``p2p`` (``yes``/``no``; default: try
    peer-to-peer, fall back to client-managed).

    Every per-node operation runs in the base's :meth:`each_node`: failed nodes carry
    ``data["error"]`` = the typed error's class name (``NotFound``, ``InvalidState``,
    ``PermanentError``), libvirt's own errors are mapped by :meth:`translate`, and a lost
    connection raises :class:`Unreachable`.
    """

    name = "libvirt"
    traits = TRAITS

    def __init__(self, endpoint: Endpoint, timeout: float = 60.0) -> None:
        super().__init__(endpoint, timeout)
        self._conn: Any = None
        self._domain_types: list[str] | None = None
        self.storage = Storage(self)

    # -- connection ------------------------------------------------------------------------

    @property
    def label(self) -> str:
        """How messages name the endpoint: its host, else its URI."""
        return self.endpoint.host or self.endpoint.uri

    @property
    def lv(self) -> Any:
        return _libvirt()

    def _open(self, endpoint: Endpoint) -> Any:
        lv = self.lv
        label = endpoint.host or endpoint.uri
        uri = _effective_uri(endpoint.uri)
        try:
            if endpoint.username or endpoint.password:
                def _auth(creds: list, _data: Any) -> int:
                    for cred in creds:
                        if cred[0] == lv.VIR_CRED_AUTHNAME:
                            cred[4] = endpoint.username or ""
                        elif cred[0] in (lv.VIR_CRED_PASSPHRASE, lv.VIR_CRED_NOECHOPROMPT):
                            cred[4] = endpoint.password or ""
                    return 0

                auth = [[lv.VIR_CRED_AUTHNAME, lv.VIR_CRED_PASSPHRASE,
                         lv.VIR_CRED_NOECHOPROMPT], _auth, None]
                conn = lv.openAuth(uri, auth, 0)
            else:
                conn = lv.open(uri)
        except lv.libvirtError as exc:
            why = reason(exc)
            if exc.get_error_code() in (lv.VIR_ERR_AUTH_FAILED, lv.VIR_ERR_AUTH_CANCELLED):
                raise PermanentError(f"Cannot communicate via libvirt to {label}: {why}") from exc
            raise Unreachable(f"Cannot communicate via libvirt to {label}: {why}") from exc
        if conn is None:
            raise Unreachable(f"Cannot communicate via libvirt to {label}: connection failed")
        return conn

    def connect(self) -> None:
        if self._conn is None:
            self._conn = self._open(self.endpoint)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        self.storage.clear()
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - close never raises
                pass

    @property
    def conn(self) -> Any:
        if self._conn is None:
            self.connect()
        return self._conn

    # -- errors ----------------------------------------------------------------------------

    def _alive(self) -> bool:
        try:
            return bool(self._conn is not None and self._conn.isAlive())
        except Exception:  # noqa: BLE001
            return False

    def translate(self, exc: Exception) -> DriverError | None:
        """The typed error for a libvirtError from this endpoint (None for anything else):
        no domain → NotFound, operation invalid → InvalidState, a lost connection →
        Unreachable, the rest → PermanentError; libvirt's message on one line."""
        if _LIBVIRT is None or not isinstance(exc, _LIBVIRT.libvirtError):
            return None
        lv = self.lv
        code, domain, why = exc.get_error_code(), exc.get_error_domain(), reason(exc)
        if code == lv.VIR_ERR_NO_DOMAIN:
            return NotFound(why)
        if code == lv.VIR_ERR_OPERATION_INVALID:
            return InvalidState(why)
        lost = code in (lv.VIR_ERR_NO_CONNECT, lv.VIR_ERR_INVALID_CONN)
        if not lost and (domain in (lv.VIR_FROM_RPC, lv.VIR_FROM_REMOTE)
                         or code in (lv.VIR_ERR_RPC, lv.VIR_ERR_SYSTEM_ERROR)):
            lost = not self._alive()
        if lost:
            return Unreachable(f"Cannot communicate via libvirt to {self.label}: {why}")
        return PermanentError(why)

    # -- small helpers ---------------------------------------------------------------------

    def _lookup(self, name: str) -> Any:
        """The domain called *name*, or None."""
        try:
            return self.conn.lookupByName(name)
        except self.lv.libvirtError as exc:
            if exc.get_error_code() == self.lv.VIR_ERR_NO_DOMAIN:
                return None
            raise

    def _require(self, name: str) -> Any:
        dom = self._lookup(name)
        if dom is None:
            raise NotFound(f"Cannot find vm {name} on {self.label}")
        return dom

    def _state(self, dom: Any) -> int | None:
        """libvirt state of *dom*; None when there is no domain (any more: a transient
        domain vanishes when destroyed)."""
        if dom is None:
            return None
        try:
            return dom.state()[0]
        except self.lv.libvirtError as exc:
            if exc.get_error_code() == self.lv.VIR_ERR_NO_DOMAIN:
                return None
            raise

    def _inactive_xml(self, dom: Any) -> str:
        flags = self.lv.VIR_DOMAIN_XML_INACTIVE if dom.isPersistent() else 0
        return dom.XMLDesc(flags)

    def _virt_type(self, requested: str) -> str:
        """Domain type: the endpoint's ``virt_type`` option, else the spec's; ``kvm`` falls
        back to ``qemu`` (software emulation) when the host does not offer kvm."""
        forced = self.endpoint.option("virt_type")
        if forced:
            return forced
        if self._domain_types is None:
            self._domain_types = host_domain_types(self.conn.getCapabilities())
        types = self._domain_types
        requested = requested if requested not in ("", "libvirt") else "kvm"
        if requested in types or not types:
            return requested
        if requested in ("kvm", "qemu") and "qemu" in types:
            return "qemu"
        if types == ["test"]:
            return "test"
        raise PermanentError(f"{self.label} does not offer {requested} guests "
                             f"(it offers {', '.join(types)})")

    def _undefine(self, dom: Any) -> None:
        lv = self.lv
        if not dom.isPersistent():
            return
        flags = (lv.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | lv.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                 | lv.VIR_DOMAIN_UNDEFINE_NVRAM | lv.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA)
        try:
            dom.undefineFlags(flags)
        except lv.libvirtError as exc:
            if exc.get_error_code() not in (lv.VIR_ERR_INVALID_ARG, lv.VIR_ERR_NO_SUPPORT,
                                            lv.VIR_ERR_ARGUMENT_UNSUPPORTED):
                raise
            dom.undefine()

    # -- validate --------------------------------------------------------------------------

    def validate(self, spec: VmSpec) -> None:
        """Check boot order, NICs and storage locations before any libvirt call."""
        super().validate(spec)
        boot_devs(spec.bootorder)
        for nic in spec.nics:
            nic_element(nic)
        for disk in spec.disks:
            if disk.location:
                parse_location(disk.location)
            if disk.bus and disk.bus not in BUS_PREFIX:
                raise PermanentError(f"Unsupported disk bus {disk.bus}")

    # -- mkvm ------------------------------------------------------------------------------

    def create(self, specs: Sequence[VmSpec], *, force: bool = False) -> Iterator[NodeResult]:
        """Define each VM persistently, creating disks that have ``size_mib``.

        Volumes are ``<node>.<dev>.<fmt>`` in the pool of their location (capacity = size,
        allocation 0). An existing volume is a conflict unless *force* (then it is deleted
        and recreated); an existing domain is an error unless *force* (then it is undefined
        first; a running one is never replaced). Conflicts are checked for every disk
        before anything is created, and volumes made by a failed call are deleted again.
        With a stored definition (``spec.definition``) and no disk to create, that
        definition is defined again, its cdrom holding the config disk when the spec has
        boot parameters. Silent on success; facts: ``definition`` (and ``uuid`` when libvirt
        chose it); ``data["uuid"]``.
        """
        yield from self.each_node(specs, self._create_one, force)

    def _create_one(self, spec: VmSpec, force: bool) -> NodeResult:
        lv = self.lv
        node = spec.node
        existing = self._lookup(node)
        if existing is not None:
            if not force:
                raise InvalidState(f"Cannot create guest vm, {node} already exists on "
                                   f"{self.label} (use -f to replace it)")
            if existing.isActive():
                raise InvalidState(f"Cannot replace active guest {node} (power it off first)")
        to_create = [d for d in spec.disks if d.size_mib and d.device != "cdrom"]
        created: list[Any] = []
        if spec.definition and not to_create:
            xml = spec.definition
            if spec.bootparams:  # the stored definition keeps its disks, gets the config disk
                try:
                    xml = self._with_cidata(spec, xml, created)
                except BaseException:
                    self.storage.cleanup(created)
                    raise
        else:
            disks, plan = self._plan_disks(spec, force)
            try:
                for disk, pool, name, size_mib, fmt, old in plan:
                    if old is not None:
                        err = self.storage.delete_volume(old.path())
                        if err:
                            raise PermanentError(err)
                    vol = pool.createXML(volume_xml(name, size_mib * MiB, fmt), 0)
                    created.append(vol)
                    disk.source = vol.path()
                if spec.bootparams:
                    disks.append(self._cidata_disk(spec, disks, created))
                xml = build_domain_xml(spec, disks, self._virt_type(spec.virt_type))
            except BaseException:
                self.storage.cleanup(created)
                raise
        try:
            if existing is not None:
                self._undefine(existing)
            dom = self.conn.defineXML(xml)
        except lv.libvirtError:
            self.storage.cleanup(created)
            raise
        uuid = dom.UUIDString()
        facts = Facts(definition=dom.XMLDesc(lv.VIR_DOMAIN_XML_INACTIVE),
                      uuid=None if spec.uuid else uuid)
        return NodeResult(node=node, facts=facts, data={"uuid": uuid})

    def _cidata_disk(self, spec: VmSpec, disks: list[DiskDevice], created: list[Any]
                     ) -> DiskDevice:
        """Boot parameters as a cloud-init NoCloud disk (``nodemgr.bootparams``): the ISO is
        built locally and uploaded as volume ``<node>.cidata.iso`` of the first
        ``vm.storage`` pool (a libvirt stream, so remote hosts work too), replacing an old
        one, and returned as a read-only cdrom device (appended to *created* for cleanup)."""
        import os
        import tempfile

        from nodemgr.bootparams import build_cidata_iso

        if not spec.storage:
            raise PermanentError("boot parameters need vm.storage (the config disk is "
                                 "stored there)")
        pool = self.storage.pool_for(parse_location(spec.storage[0]))
        name = f"{spec.node}.cidata.iso"
        with tempfile.TemporaryDirectory(prefix="nodemgr-cidata-") as tmp:
            path = os.path.join(tmp, name)
            build_cidata_iso(path, spec.node, spec.bootparams,
                             spec.nics[0].mac if spec.nics else None, spec.uuid)
            with open(path, "rb") as fh:
                data = fh.read()
        vol = self.storage.upload(pool, name, data)
        created.append(vol)
        used = {d.dev for d in disks}
        dev = next(d for d in ("hdc", "hdd", "hdb") if d not in used)
        return DiskDevice(dev=dev, bus="ide", source=vol.path(), format="raw", device="cdrom")

    def _with_cidata(self, spec: VmSpec, xml: str, created: list[Any]) -> str:
        """*xml* (a stored definition) with the VM's config disk as its cdrom: in the drive
        that holds the old one, else in the empty cdrom drive, else in a new drive."""
        import posixpath

        doc = DomainXml(xml)
        ours = f"{spec.node}.cidata.iso"
        cds = [disk_from_element(el) for el in doc.cdrom_elements()]
        old = next((c for c in cds if c.source and posixpath.basename(c.source) == ours),
                   None) or next((c for c in cds if not c.source), None)
        if old is not None:
            doc.remove_disk(old.dev)
        disk = self._cidata_disk(spec, doc.disks(), created)
        if old is not None:
            disk.dev, disk.bus = old.dev, old.bus
        doc.add_disk(disk)
        return str(doc)

    def _plan_disks(self, spec: VmSpec, force: bool) -> tuple[list[DiskDevice], list[tuple]]:
        """Resolve the spec's disks; returns the devices and the volumes to create as
        ``(device, pool, name, size_mib, format, existing volume)`` (the device's source is
        filled in once the volume exists)."""
        node = spec.node
        used = {d.dev for d in spec.disks if d.dev}
        disks: list[DiskDevice] = []
        plan: list[tuple] = []
        conflicts: list[str] = []
        for d in spec.disks:
            bus = d.bus or spec.storagemodel or "virtio"
            if bus not in BUS_PREFIX:
                raise PermanentError(f"Unsupported disk bus {bus}")
            dev = d.dev
            if not dev and d.device != "cdrom":
                dev = next_devs(bus, used, 1)[0]
                used.add(dev)
            if d.device == "cdrom":
                cd_bus = d.bus if d.bus in ("ide", "sata", "scsi") else "ide"
                disks.append(DiskDevice(dev=d.dev or "hdc", bus=cd_bus, source=d.source,
                                        format="raw", device="cdrom"))
                continue
            cache = d.cache or spec.extra.get("storagecache") or "none"
            if d.source and not d.size_mib:
                kind = "block" if d.source.startswith("/dev/") else "file"
                disks.append(DiskDevice(dev=dev, bus=bus, source=d.source, kind=kind, cache=cache,
                                        format=d.format or ("raw" if kind == "block" else "qcow2")))
                continue
            location = d.location or (spec.storage[0] if spec.storage else "")
            if not location:
                raise PermanentError("Requested initialization of storage, but vm.storage has "
                                     "no value for node")
            loc = parse_location(location)
            if loc.kind == "phy":
                if d.size_mib:
                    raise PermanentError("mkvm management of block device storage not implemented")
                disks.append(DiskDevice(dev=dev, bus=bus, source=loc.path, kind="block",
                                        format="raw", cache=cache))
                continue
            fmt = "raw" if loc.kind == "lvm" else (d.format or spec.storageformat or "qcow2")
            pool = self.storage.pool_for(loc)
            name = volume_name(node, dev, fmt)
            old = self.storage.vol_in_pool(pool, name)
            if d.size_mib:
                if old is not None and not force:
                    conflicts.append(old.path())
                disk = DiskDevice(dev=dev, bus=bus, source=None, format=fmt, cache=cache)
                plan.append((disk, pool, name, int(d.size_mib), fmt, old))
                disks.append(disk)
            else:
                if old is None:
                    raise NotFound(f"Storage volume {name} not found in {loc.url}")
                disks.append(DiskDevice(dev=dev, bus=bus, source=old.path(), format=fmt,
                                        cache=cache))
        if conflicts:
            raise InvalidState(MSG_CONFLICT.format(path=",".join(conflicts), cmd="mkvm"))
        return disks, plan

    # -- rmvm ------------------------------------------------------------------------------

    def remove(self, specs: Sequence[VmSpec], *, force: bool = False,
               purge: bool = False) -> Iterator[NodeResult]:
        """Remove each VM. Running without *force* → ``Cannot rmvm active guest (use -f
        argument to force)``; unknown (no domain, no stored definition) → ``Cannot remove
        guest vm, no such vm found``. *force* destroys; *purge* deletes every disk volume
        except cdroms, raw and block devices (``Not purging raw or block storage device:
        <path>``), with retries. Then undefines (managed save, snapshots, NVRAM too).
        Silent on success; facts: ``cleared={"definition"}``."""
        yield from self.each_node(specs, self._remove_one, force, purge)

    def _remove_one(self, spec: VmSpec, force: bool, purge: bool) -> NodeResult:
        node = spec.node
        dom = self._lookup(node)
        xmls: list[str] = []
        if dom is None:
            if not spec.definition:
                raise NotFound(MSG_RM_MISSING)
            xmls.append(spec.definition)
        else:
            persistent = bool(dom.isPersistent())
            if dom.isActive():
                if not force:
                    raise InvalidState(MSG_RM_ACTIVE)
                xmls.append(dom.XMLDesc(0))
                try:
                    dom.destroy()
                except self.lv.libvirtError as exc:
                    if exc.get_error_code() not in (self.lv.VIR_ERR_OPERATION_INVALID,
                                                    self.lv.VIR_ERR_NO_DOMAIN):
                        raise  # else it stopped meanwhile
            if persistent:
                xmls.append(dom.XMLDesc(self.lv.VIR_DOMAIN_XML_INACTIVE))
            else:
                dom = None  # a transient domain is gone once destroyed
        lines: list[str] = []
        errors: list[str] = []
        if purge:
            seen: set[str] = set()
            for text in xmls:
                for disk in DomainXml(text).disks():
                    if disk.device == "cdrom" or not disk.source or disk.source in seen:
                        continue
                    seen.add(disk.source)
                    if disk.kind == "block" or disk.format == "raw":
                        lines.append(MSG_NOT_PURGING.format(path=disk.source))
                        continue
                    err = self.storage.delete_volume(disk.source)
                    if err:
                        errors.append(err)
        if dom is not None:
            try:
                self._undefine(dom)
            except self.lv.libvirtError as exc:
                if exc.get_error_code() != self.lv.VIR_ERR_NO_DOMAIN:
                    raise
        if errors:
            return NodeResult(node=node, ok=False, message="\n".join(errors + lines),
                              facts=Facts(cleared={"definition"}),
                              data={"error": "PermanentError"})
        return NodeResult(node=node, message="\n".join(lines), facts=Facts(cleared={"definition"}))

    # -- chvm ------------------------------------------------------------------------------

    def change(self, specs: Sequence[VmSpec], change: VmChange) -> Iterator[NodeResult]:
        """Apply *change* to each VM's persistent definition (and live, when running).

        Disks: ``add_disks_mib`` makes ``<node>.<dev>.<fmt>`` volumes in the rightmost
        ``vm.storage`` location with the next free names (``c`` and used names skipped),
        attached live when running (IDE needs power-off); ``remove_disks`` detaches and
        deletes; ``detach_disks`` detaches and keeps the volume; ``resize`` grows/shrinks (``Resized disk vda``; qcow2 shrink refused with
        xCAT's message). cdrom insert/eject. ``cpus`` only when off (xCAT's message
        otherwise); ``memory_mib`` live up to the maximum, else offline. Facts: ``definition``
        (and ``cpus``/``memory_mib`` when changed); when some part failed the result is not
        ok, its message holds the errors, ``data["messages"]`` what succeeded, and the facts
        still describe the resulting definition.
        """
        yield from self.each_node(specs, self._change_one, change)

    def _change_one(self, spec: VmSpec, change: VmChange) -> NodeResult:
        lv = self.lv
        node = spec.node
        dom = self._require(node)
        active = bool(dom.isActive())
        persistent = bool(dom.isPersistent())
        live_flags = lv.VIR_DOMAIN_AFFECT_LIVE | (lv.VIR_DOMAIN_AFFECT_CONFIG if persistent else 0)
        msgs: list[str] = []
        errs: list[str] = []
        facts = Facts()
        changed = False

        def config() -> DomainXml:
            return DomainXml(self._inactive_xml(dom))

        def define(doc: DomainXml) -> None:
            nonlocal dom, changed
            dom = self.conn.defineXML(str(doc))
            changed = True

        if change.add_disks_mib and change.remove_disks:
            raise PermanentError("Currently adding and purging concurrently is not supported")

        if change.add_disks_mib:
            changed |= self._add_disks(spec, dom, active, live_flags, change.add_disks_mib,
                                       config, define, errs)
            dom = self._require(node)

        purge = set(change.remove_disks)
        for dev in [*change.remove_disks, *change.detach_disks]:
            try:
                changed |= self._remove_disk(dom, dev, active, config, define, errs,
                                             purge=dev in purge)
            except lv.libvirtError as exc:
                errs.append(f"Unable to remove device {dev}: {reason(exc)}")

        if change.cdrom or change.eject:
            path = self.storage.cdrom_path(change.cdrom) if change.cdrom else None
            doc = config()
            cds = doc.cdrom_elements()
            if cds:
                cd = disk_from_element(cds[0])
                new = DiskDevice(dev=cd.dev, bus=cd.bus, source=path, format="raw", device="cdrom")
            else:
                new = DiskDevice(dev="hdc", bus="ide", source=path, format="raw", device="cdrom")
            if active:
                if not cds:
                    errs.append("VM has no cdrom drive (power it off to add one)")
                else:
                    self._change_media(dom, disk_xml(new), live_flags, new.dev)
                    changed = True
            else:
                if cds:
                    doc.remove_disk(new.dev)
                doc.add_disk(new)
                define(doc)

        for dev, size_mib in change.resize.items():
            line, ok = self._resize(dom, dev, int(size_mib), active)
            (msgs if ok else errs).append(line)
            changed |= ok

        if change.cpus:
            if active:
                errs.append(MSG_HOT_CPUS)
            else:
                doc = config()
                doc.set_vcpus(change.cpus)
                define(doc)
                facts.cpus = change.cpus

        if change.memory_mib:
            kib = int(change.memory_mib) * 1024
            if active:
                if kib > dom.maxMemory():
                    errs.append(MSG_MEM_MAX)
                else:
                    dom.setMemoryFlags(kib, live_flags)
                    changed = True
                    facts.memory_mib = int(change.memory_mib)
            else:
                doc = config()
                doc.set_memory_kib(kib)
                define(doc)
                facts.memory_mib = int(change.memory_mib)

        if changed or facts:
            facts.definition = self._inactive_xml(dom)
        if errs:
            return NodeResult(node=node, ok=False, message="\n".join(errs), facts=facts,
                              data={"error": "PermanentError", "messages": msgs})
        return NodeResult(node=node, message="\n".join(msgs), facts=facts)

    def _add_disks(self, spec: VmSpec, dom: Any, active: bool, live_flags: int,
                   sizes: list[int], config: Callable[[], DomainXml],
                   define: Callable[[DomainXml], None], errs: list[str]) -> bool:
        lv = self.lv
        node = spec.node
        if not spec.storage:
            errs.append("Can not add storage, vmstorage attribute not defined.")
            return False
        entry = spec.storage[-1]
        loc = parse_location(entry)
        model = entry.split(",", 1)[0].partition("=")[2] if "=" in entry and loc.kind != "lvm" else ""
        model = model or spec.storagemodel or "virtio"
        if model not in BUS_PREFIX:
            raise PermanentError(f"Unsupported disk bus {model}")
        prefix = BUS_PREFIX[model]
        if prefix == "hd" and active:
            errs.append("VM must be powered off to add IDE drives")
            return False
        pool = self.storage.pool_for(loc)
        used = config().used_devs() | DomainXml(dom.XMLDesc(0)).used_devs()
        for vname in pool.listVolumes():
            parts = vname.split(".")
            if len(parts) >= 2 and parts[0] == node:
                used.add(parts[1])
        fmt = "raw" if loc.kind == "lvm" else (spec.storageformat or "qcow2")
        cache = spec.extra.get("storagecache") or "none"
        changed = False
        for dev, size in zip(next_devs(model, used, len(sizes)), sizes, strict=True):
            name = volume_name(node, dev, fmt)
            vol = pool.createXML(volume_xml(name, int(size) * MiB, fmt), 0)
            disk = DiskDevice(dev=dev, bus=model, source=vol.path(), format=fmt, cache=cache)
            if active:
                try:
                    dom.attachDeviceFlags(disk_xml(disk), live_flags)
                except lv.libvirtError as exc:
                    why = reason(exc)
                    if "No more available PCI" in why:
                        errs.append(f"Exhausted Virtio limits trying to add {vol.path()}")
                    else:
                        errs.append(f"Unable to attach {vol.path()} because of {why}")
                    self.storage.cleanup([vol])
                    continue
                changed = True
            else:
                doc = config()
                doc.add_disk(disk)
                try:
                    define(doc)
                except lv.libvirtError:
                    self.storage.cleanup([vol])
                    raise
                changed = True
        return changed

    def _remove_disk(self, dom: Any, dev: str, active: bool, config: Callable[[], DomainXml],
                     define: Callable[[DomainXml], None], errs: list[str], *,
                     purge: bool = True) -> bool:
        lv = self.lv
        doc = config()
        el = doc.disk_element(dev)
        live_el = DomainXml(dom.XMLDesc(0)).disk_element(dev) if active else None
        if el is None and live_el is None:
            errs.append(f"Disk {dev} does not exist")
            return False
        disk = disk_from_element(el if el is not None else live_el)
        if disk.device == "cdrom":
            errs.append(f"Disk {dev} is a cdrom (use eject)")
            return False
        if live_el is not None:
            dom.detachDeviceFlags(ET.tostring(live_el, encoding="unicode"),
                                  lv.VIR_DOMAIN_AFFECT_LIVE)
            if DomainXml(dom.XMLDesc(0)).disk_element(dev) is not None:
                errs.append(f"Unable to remove device {dev}: the guest did not release it "
                            "(power the VM off and retry)")
                return False
        if el is not None:
            doc.remove_disk(dev)
            define(doc)
        if purge and disk.source and disk.kind == "file":
            err = self.storage.delete_volume(disk.source)
            if err:
                errs.append(err)
        return True

    def _change_media(self, dom: Any, xml: str, flags: int, dev: str = "hdc") -> None:
        """Insert/eject live. libvirt opens the tray, swaps the medium and closes it; a guest
        probing the drive meanwhile (SeaBIOS does in its first ~0.1 s: a change 50 ms after
        power-on failed about 1 in 3 times here) makes QEMU answer "Tray of device ... is not
        open", and libvirt's idea of the tray can then stay wrong for a while. Retried a few
        times (:func:`~nodemgr.plugins.base.retry`), then reported as one explanatory line."""
        lv = self.lv

        def attempt() -> None:
            try:
                dom.updateDeviceFlags(xml, flags)
            except lv.libvirtError as exc:
                # "Tray of device '...' is not open" (remove-medium) or "Tray of the device is
                # not open" (insert-medium)
                if "tray of" not in reason(exc).lower():
                    raise
                raise Transient(reason(exc)) from exc

        try:
            retry(attempt, schedule=(MEDIA_DELAY_S,) * (MEDIA_RETRIES - 1))
        except Transient as exc:
            raise PermanentError(
                f"Unable to change the media in {dev}: {exc} (the guest was using the drive, "
                "e.g. the firmware right after power-on; retry, or power-cycle the VM)") from exc

    def _resize(self, dom: Any, dev: str, size_mib: int, active: bool) -> tuple[str, bool]:
        lv = self.lv
        doc = DomainXml(dom.XMLDesc(0))
        el = doc.disk_element(dev)
        if el is None or el.get("device") == "cdrom":
            return f"Disk {dev} does not exist", False
        disk = disk_from_element(el)
        try:
            vol = self.storage.vol_by_path(disk.source) if disk.source else None
            if vol is None:
                return f"Resizing disk {dev} failed, {disk.source} is not a storage volume", False
            capacity = vol.info()[1]
            new = size_mib * MiB
            if new < capacity and (disk.format or "qcow2") == "qcow2":
                return MSG_QCOW2_SHRINK.format(dev=dev), False
            if active:
                dom.blockResize(dev, new, lv.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
            else:
                vol.resize(new, lv.VIR_STORAGE_VOL_RESIZE_SHRINK if new < capacity else 0)
        except lv.libvirtError as exc:
            return f"Resizing disk {dev} failed, {reason(exc)}", False
        return f"Resized disk {dev}", True

    # -- rpower ----------------------------------------------------------------------------

    def power(self, specs: Sequence[VmSpec], action: str) -> Iterator[NodeResult]:
        """Power *action* with xCAT's output: ``on`` (already on: ``on``; a suspended VM is
        resumed; a VM defined only in ``spec.definition`` is defined first), ``off`` (destroy),
        ``softoff`` (ACPI shutdown; prints the state right after, usually ``on``), ``reset``
        (destroy + start, so a pending persistent definition applies; an off VM prints
        ``off``), ``boot`` (``off on`` / ``on reset``), ``suspend`` → ``suspended``,
        ``resume`` → ``on``, ``stat`` → ``on``/``off``/``suspended`` (one libvirt round
        trip for all nodes; undefined → ``off``). Facts: ``power`` (the state word after
        the action), ``status`` ``powering-on``/``powering-off`` only for VMs that actually
        started/stopped, ``definition`` when ``off`` stops a persistent domain."""
        action = {"state": "stat", "status": "stat"}.get(action, action)
        if action == "stat":
            states: list[dict[str, int]] = []  # one round trip, made for the first node
            yield from self.each_node(specs, self._stat_one, states)
            return
        yield from self.each_node(specs, self._power_one, action)

    def _all_states(self) -> dict[str, int]:
        """Name → libvirt state of every domain, in one round trip when the driver can."""
        lv = self.lv
        try:
            stats = self.conn.getAllDomainStats(lv.VIR_DOMAIN_STATS_STATE, 0)
            return {dom.name(): int(st.get("state.state", _NOSTATE)) for dom, st in stats}
        except lv.libvirtError as exc:
            if exc.get_error_code() not in (lv.VIR_ERR_NO_SUPPORT, lv.VIR_ERR_ARGUMENT_UNSUPPORTED):
                raise
        return {dom.name(): dom.state()[0] for dom in self.conn.listAllDomains(0)}

    def _stat_one(self, spec: VmSpec, states: list[dict[str, int]]) -> NodeResult:
        if not states:
            states.append(self._all_states())
        word = state_word(states[0].get(spec.node))
        return NodeResult(node=spec.node, message=word, data={"state": word},
                          facts=Facts(power=word))

    def _power_one(self, spec: VmSpec, action: str) -> NodeResult:
        if action not in POWER_ACTIONS:
            raise PermanentError(f"Unsupported power directive '{action}'")
        node = spec.node
        dom = self._lookup(node)
        before = state_word(self._state(dom))
        prefix = ""
        if action == "boot":
            prefix = before + " "
            action = "on" if before == "off" else "reset"
        status = None
        facts = Facts()
        if action == "on":
            if dom is None:
                if not spec.definition:
                    raise NotFound(f"Cannot find vm {node} on {self.label}")
                dom = self.conn.defineXML(spec.definition)
            st = self._state(dom)
            if state_word(st) == "off":
                dom.create()
                status = "powering-on"
            elif st == _PMSUSPENDED:
                dom.pMWakeup(0)
            elif st == _PAUSED:
                dom.resume()
            text = state_word(self._state(dom))
        elif action == "off":
            if dom is not None and dom.isPersistent():
                facts.definition = self._inactive_xml(dom)
            if dom is not None and dom.isActive():
                dom.destroy()
                status = "powering-off"
            text = "off"
        elif action == "softoff":
            if dom is not None and dom.isActive():
                dom.shutdown()
                status = "powering-off"
            text = state_word(self._state(dom))
        elif action == "reset":
            if dom is not None and dom.isActive():
                if dom.isPersistent():
                    dom.destroy()
                    dom.create()
                else:
                    dom.reset(0)
                status = "powering-on"
                text = "reset"
            else:
                text = state_word(self._state(dom))
        elif action == "suspend":
            if dom is None:
                raise NotFound(f"Cannot find vm {node} on {self.label}")
            if before == "off":
                raise InvalidState("Cannot suspend a vm that is off")
            if before == "on":
                dom.suspend()
            text = "suspended"
        else:  # resume
            if dom is None:
                raise NotFound(f"Cannot find vm {node} on {self.label}")
            if before == "off":
                raise InvalidState("Cannot resume a vm that is off")
            st = self._state(dom)
            if st == _PMSUSPENDED:
                dom.pMWakeup(0)
            elif st == _PAUSED:
                dom.resume()
            text = "on"
        facts.status = status
        facts.power = state_word(self._state(dom))
        return NodeResult(node=node, message=prefix + text, facts=facts,
                          data={"state": facts.power})

    # -- lsvm ------------------------------------------------------------------------------

    def list_vms(self) -> list[VmInfo]:
        """Every domain, shut-off ones included (xCAT listed running ones only)."""
        lv = self.lv
        try:
            states = self._all_states()
            doms = self.conn.listAllDomains(0)
            return [VmInfo(name=d.name(), state=state_word(states.get(d.name())),
                           uuid=d.UUIDString()) for d in doms]
        except lv.libvirtError as exc:
            raise self.translate(exc) from exc

    def describe(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        """Lines ``Id:`` (``-`` when off), ``Host:``, ``OS:``, ``Memory: <n> MiB`` (maximum;
        xCAT printed KiB without a unit), ``CPU:``, ``State: <n> (<text>)``, then ``Disk
        file: <path>`` (``Disk object:`` for block devices) per disk. Unknown VM → xCAT's
        ``Could not get any information about specified object``."""
        yield from self.each_node(specs, self._describe_one)

    def _describe_one(self, spec: VmSpec) -> NodeResult:
        dom = self._lookup(spec.node)
        if dom is None:
            raise NotFound(MSG_NO_INFO)
        state, max_kib, _mem, ncpu, _cpu = dom.info()
        dom_id = dom.ID()
        try:
            host = self.endpoint.host or self.conn.getHostname()
        except self.lv.libvirtError:
            host = self.label
        lines = [f"Id: {dom_id if dom_id >= 0 else '-'}", f"Host: {host}", f"OS: {dom.OSType()}",
                 f"Memory: {max_kib // 1024} MiB", f"CPU: {ncpu}",
                 f"State: {state} ({STATE_NAMES.get(state, 'unknown')})"]
        disks = []
        for disk in DomainXml(dom.XMLDesc(0)).disks():
            if disk.device == "cdrom" or not disk.source:
                continue
            key = "Disk object" if disk.kind == "block" else "Disk file"
            lines.append(f"{key}: {disk.source}")
            disks.append({"dev": disk.dev, "source": disk.source, "format": disk.format})
        return NodeResult(node=spec.node, message="\n".join(lines),
                          data={"id": dom_id, "state": state_word(state), "memory_mib": max_kib // 1024,
                                "cpus": ncpu, "disks": disks, "uuid": dom.UUIDString()})

    # -- rmigrate --------------------------------------------------------------------------

    def migrate(self, specs: Sequence[VmSpec], target: Endpoint) -> Iterator[NodeResult]:
        """Live-migrate each VM to *target* (``LIVE | PERSIST_DEST | UNDEFINE_SOURCE``;
        ``UNSAFE`` only with the target option ``unsafe`` or for a VM without disks),
        peer-to-peer when the source daemon can reach the target, else client-managed.
        A shut-off VM is moved by defining it on the target and undefining it here. Reports
        ``migrated to <target>`` only once the VM is verified there (fact ``host``).
        A VM not on this host → ok with the host fact rewritten (xCAT); same host → ``Guest is
        already on host <target>``. Failures: ``Failed migration of <n> from <src> to <dst>:
        <libvirt error>``. Facts: ``host`` = the target's host, ``definition`` = the
        inactive definition on the target."""
        lv = self.lv
        self.connect()
        try:
            dconn = self._open(target)
        except DriverError as exc:
            yield from self.each_node(specs, self._migrate_refused, target, exc)
            return
        try:
            same = target.uri == self.endpoint.uri
            if not same:
                try:
                    here = host_uuid(self.conn.getCapabilities())
                    there = host_uuid(dconn.getCapabilities())
                    same = bool(here) and here == there
                except lv.libvirtError:
                    pass
            yield from self.each_node(specs, self._migrate_one, target, dconn, same)
        finally:
            try:
                dconn.close()
            except Exception:  # noqa: BLE001
                pass

    def _migrate_refused(self, spec: VmSpec, target: Endpoint, exc: DriverError) -> NodeResult:
        raise PermanentError(f"Failed migration of {spec.node} from {self.label} to "
                             f"{target.host or target.uri}: {exc}")

    def _migrate_one(self, spec: VmSpec, target: Endpoint, dconn: Any, same: bool) -> NodeResult:
        """One VM: libvirt's failures become ``Failed migration of ...`` (PermanentError),
        unless this connection died (Unreachable)."""
        try:
            return self._migrate_vm(spec, target, dconn, same)
        except self.lv.libvirtError as exc:
            if not self._alive():
                raise Unreachable(f"Cannot communicate via libvirt to {self.label}: "
                                  f"{reason(exc)}") from exc
            raise PermanentError(f"Failed migration of {spec.node} from {self.label} to "
                                 f"{target.host or target.uri}: {reason(exc)}") from exc

    def _migrate_vm(self, spec: VmSpec, target: Endpoint, dconn: Any, same: bool) -> NodeResult:
        lv = self.lv
        node = spec.node
        dst = target.host or target.uri
        moved = Facts(host=target.host or dst)
        if same:
            return NodeResult(node=node, message=f"Guest is already on host {dst}", facts=moved)
        dom = self._lookup(node)
        if dom is None:
            return NodeResult(node=node, message=f"migrated to {dst}", facts=moved,
                              data={"note": f"not found on {self.label}"})
        if not dom.isActive():
            xml = self._inactive_xml(dom)
            ddom = dconn.defineXML(xml)
            self._undefine(dom)
            moved.definition = ddom.XMLDesc(lv.VIR_DOMAIN_XML_INACTIVE)
            return NodeResult(node=node, message=f"migrated to {dst}", facts=moved,
                              data={"live": False})
        flags = lv.VIR_MIGRATE_LIVE | lv.VIR_MIGRATE_PERSIST_DEST | lv.VIR_MIGRATE_UNDEFINE_SOURCE
        has_disks = any(d.device == "disk" and d.source
                        for d in DomainXml(dom.XMLDesc(0)).disks())
        if truthy(target.option("unsafe")) or not has_disks:
            flags |= lv.VIR_MIGRATE_UNSAFE
        params: dict[str, Any] = {}
        if target.option("migrate_uri"):
            params[lv.VIR_MIGRATE_PARAM_URI] = target.option("migrate_uri")
        if target.option("listen_address"):
            params[lv.VIR_MIGRATE_PARAM_LISTEN_ADDRESS] = target.option("listen_address")
        p2p = (target.option("p2p") or "auto").strip().lower()
        p2p = "yes" if truthy(p2p) else ("auto" if p2p == "auto" else "no")
        if target.password and p2p == "auto":  # the source daemon cannot use our credentials
            p2p = "no"
        started = time.monotonic()
        mode = "client"
        if p2p != "no":
            try:
                dom.migrateToURI3(_effective_uri(target.uri), params, flags | lv.VIR_MIGRATE_PEER2PEER)
                mode = "p2p"
            except lv.libvirtError as exc:
                fallback = exc.get_error_code() in (
                    lv.VIR_ERR_NO_SUPPORT, lv.VIR_ERR_ARGUMENT_UNSUPPORTED,
                    lv.VIR_ERR_OPERATION_UNSUPPORTED) or exc.get_error_domain() in (
                    lv.VIR_FROM_RPC, lv.VIR_FROM_REMOTE)
                if p2p == "yes" or not fallback or not dom.isActive():
                    raise
        if mode == "client":
            dom.migrate3(dconn, params, flags)
        elapsed = time.monotonic() - started
        try:
            ddom = dconn.lookupByName(node)
        except lv.libvirtError as exc:
            raise PermanentError(f"Failed migration of {node} from {self.label} to {dst}: "
                                 f"not found on the target after migration ({reason(exc)})") from exc
        if not ddom.isActive():
            raise PermanentError(f"Failed migration of {node} from {self.label} to {dst}: "
                                 "not running on the target after migration")
        moved.definition = ddom.XMLDesc(lv.VIR_DOMAIN_XML_INACTIVE)
        return NodeResult(node=node, message=f"migrated to {dst}", facts=moved,
                          data={"live": True, "mode": mode, "seconds": round(elapsed, 2)})

    # -- clonevm ---------------------------------------------------------------------------

    def make_master(self, spec: VmSpec, master: str, *, detached: bool = False,
                    force: bool = False) -> NodeResult:
        """Make master *master* from the VM (``clonevm -t``): the VM must be off unless
        *force* (a running VM is copied detached). Every disk volume is copied (flattened)
        to ``<master>.<dev>.<fmt>`` in its pool (``Cloning <vol> (currently is N MB and has
        a capacity of M MB)`` lines). Unless detached, the VM's disks are then replaced by
        thin qcow2 overlays on the master copies (identical content, so this is xCAT's
        rebase without qemu-img) and the facts carry ``master`` and the VM's new
        ``definition``. ``facts.master_definition`` is the master's XML: no UUID, no MACs,
        name = master, disks = the copies."""
        return next(self.each_node([spec], self._make_master, master, detached, force))

    def _make_master(self, spec: VmSpec, master: str, detached: bool, force: bool) -> NodeResult:
        lv = self.lv
        node = spec.node
        dom = self._require(node)
        if dom.isActive():
            if not force:
                raise InvalidState("Cannot make a master from an active guest (power it off, "
                                   "or use -f to copy it as it runs, which implies --detached)")
            detached = True
        if self._lookup(master) is not None:
            raise InvalidState(f"{master} is the name of an existing vm on {self.label}")
        xml = self._inactive_xml(dom)
        doc = DomainXml(xml)
        jobs = []
        conflicts = []
        for disk in doc.disks():
            if disk.device != "disk":
                continue
            if disk.kind != "file" or not disk.source:
                raise PermanentError(f"Cannot make a master from {disk.kind} device "
                                     f"{disk.source or disk.dev}")
            vol = self.storage.vol_by_path(disk.source)
            if vol is None:
                raise PermanentError(f"{disk.source} is not a libvirt storage volume")
            pool = vol.storagePoolLookupByVolume()
            fmt = disk.format or "raw"
            name = volume_name(master, disk.dev, fmt)
            old = self.storage.vol_in_pool(pool, name)
            if old is not None:
                if not force:
                    conflicts.append(old.path())
                    continue
            jobs.append((disk, vol, pool, fmt, name, old))
        if conflicts:
            raise InvalidState(MSG_CONFLICT.format(path=",".join(conflicts), cmd="clonevm"))
        lines: list[str] = []
        sources: dict[str, str] = {}
        copies: list[tuple] = []
        created: list[Any] = []
        try:
            for disk, vol, pool, fmt, name, old in jobs:
                if old is not None:
                    err = self.storage.delete_volume(old.path())
                    if err:
                        raise PermanentError(err)
                _t, capacity, allocation = vol.info()[:3]
                lines.append(f"Cloning {vol.name()} (currently is {allocation // MiB} MB and has "
                             f"a capacity of {capacity // MiB} MB)")
                copy = pool.createXMLFrom(volume_copy_xml(name, capacity, fmt), vol, 0)
                created.append(copy)
                sources[disk.dev] = copy.path()
                copies.append((disk, vol, pool, fmt, copy, capacity))
        except BaseException:
            self.storage.cleanup(created)
            raise
        master_xml = master_definition(xml, master, sources)
        facts = Facts(master_definition=master_xml)
        if not detached:
            for disk, vol, pool, fmt, copy, capacity in copies:
                old_path = vol.path()
                err = self.storage.delete_volume(old_path)
                if err:
                    raise PermanentError(f"{err} (the master copy {copy.path()} is complete)")
                name = volume_name(node, disk.dev, "qcow2")
                overlay = pool.createXML(volume_xml(name, capacity, "qcow2", backing=copy.path(),
                                                    backing_format=fmt), 0)
                el = doc.disk_element(disk.dev)
                for bs in el.findall("backingStore"):
                    el.remove(bs)
                src = el.find("source")
                src.attrib.clear()
                src.set("file", overlay.path())
                drv = el.find("driver")
                if drv is None:
                    drv = ET.SubElement(el, "driver", name="qemu")
                drv.set("type", "qcow2")
            dom = self.conn.defineXML(str(doc))
            facts.definition = dom.XMLDesc(lv.VIR_DOMAIN_XML_INACTIVE)
            facts.master = master
        storage = None
        if sources:
            first = next(iter(sources.values()))
            storage = "dir://" + first.rpartition("/")[0]
        return NodeResult(node=node, message="\n".join(lines), facts=facts,
                          data={"master": master,
                                "master_disks": sorted(sources.values()), "storage": storage})

    def clone_from_master(self, specs: Sequence[VmSpec], master: str, master_definition: str | None,
                          *, detached: bool = False) -> Iterator[NodeResult]:
        """Define each VM from the master's definition (``clonevm -b``): the spec's name, UUID
        and MACs/bridges; per master disk a thin qcow2 ``<node>.<dev>.qcow2`` backed by the
        master's volume (cache writethrough), or with *detached* a full copy
        ``<node>.<dev>.<fmt>``. Volumes go to the spec's first storage location, else next
        to the master's. CPUs and memory are the master's unless ``vm.cpus``/``vm.memory``
        are set (``spec.extra``). Facts: ``definition``, ``master`` (unless detached),
        ``uuid`` (when libvirt chose it) and the clone's ``cpus`` and ``memory_mib`` as
        defined, so the tables say what the clone has."""
        yield from self.each_node(specs, self._clone_one, master, master_definition, detached)

    def _clone_one(self, spec: VmSpec, master: str, master_xml: str | None,
                   detached: bool) -> NodeResult:
        if not master_xml:
            raise PermanentError(f"No definition stored for master {master}")
        lv = self.lv
        node = spec.node
        if self._lookup(node) is not None:
            raise InvalidState(f"Cannot create guest vm, {node} already exists on {self.label}")
        mdoc = DomainXml(master_xml)
        dest_pool = self.storage.pool_for(parse_location(spec.storage[0])) if spec.storage else None
        jobs = []
        conflicts = []
        for disk in mdoc.disks():
            if disk.device != "disk" or not disk.source:
                continue
            mvol = self.storage.vol_by_path(disk.source)
            if mvol is None:
                raise NotFound(f"Master volume {disk.source} not found on {self.label}")
            pool = dest_pool or mvol.storagePoolLookupByVolume()
            mfmt = disk.format or "qcow2"
            fmt = mfmt if detached else "qcow2"
            name = volume_name(node, disk.dev, fmt)
            old = self.storage.vol_in_pool(pool, name)
            if old is not None:
                conflicts.append(old.path())
            jobs.append((disk, mvol, pool, mfmt, fmt, name))
        if conflicts:
            raise InvalidState(MSG_CONFLICT.format(path=",".join(conflicts), cmd="clonevm"))
        created: list[Any] = []
        sources: dict[str, tuple[str, str]] = {}
        try:
            for disk, mvol, pool, mfmt, fmt, name in jobs:
                capacity = mvol.info()[1]
                if detached:
                    vol = pool.createXMLFrom(volume_copy_xml(name, capacity, fmt), mvol, 0)
                else:
                    vol = pool.createXML(volume_xml(name, capacity, "qcow2", backing=mvol.path(),
                                                    backing_format=mfmt), 0)
                created.append(vol)
                sources[disk.dev] = (vol.path(), fmt)
            xml = clone_definition(master_xml, spec, master, sources, thin=not detached)
            if spec.extra.get("cpus") or spec.extra.get("memory"):  # set in the vm table
                doc = DomainXml(xml)
                if spec.extra.get("cpus"):
                    doc.set_vcpus(spec.cpus)
                if spec.extra.get("memory"):
                    doc.set_memory_kib(spec.memory_mib * 1024)
                xml = str(doc)
            dom = self.conn.defineXML(xml)
        except BaseException:
            self.storage.cleanup(created)
            raise
        defined = dom.XMLDesc(lv.VIR_DOMAIN_XML_INACTIVE)
        doc = DomainXml(defined)
        facts = Facts(definition=defined, master=None if detached else master,
                      uuid=None if spec.uuid else dom.UUIDString(), cpus=doc.vcpus(),
                      memory_mib=doc.memory_kib() // 1024)
        return NodeResult(node=node, facts=facts, data={"uuid": dom.UUIDString()})

    # -- stats, addresses, free memory -----------------------------------------------------

    def stats(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        """``data``: ``cpu_time_s``, ``memory_mib`` (current), ``max_memory_mib``, ``cpus``,
        ``state``; message lines ``CPU time: <s> s``, ``Memory: <n> MiB``."""
        yield from self.each_node(specs, self._stats_one)

    def _stats_one(self, spec: VmSpec) -> NodeResult:
        dom = self._require(spec.node)
        state, max_kib, kib, ncpu, cpu_ns = dom.info()
        data = {"cpu_time_s": round(cpu_ns / 1e9, 3), "memory_mib": kib // 1024,
                "max_memory_mib": max_kib // 1024, "cpus": ncpu, "state": state_word(state)}
        return NodeResult(node=spec.node, message=f"CPU time: {data['cpu_time_s']:.2f} s\n"
                          f"Memory: {data['memory_mib']} MiB", data=data)

    def addresses(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        """IP addresses of running VMs from DHCP leases, the guest agent and the host's ARP
        table (best effort, each source tried; none known → empty list, ok), else the
        ``ip=`` of the boot parameters. ``facts.addresses`` (:class:`Address` with source
        ``lease``/``agent``/``arp``/``bootparams``); ``data``: ``addresses`` (strings) and
        ``source`` (``guest`` or ``bootparams``)."""
        yield from self.each_node(specs, self._addresses_one)

    def _addresses_one(self, spec: VmSpec) -> NodeResult:
        found = self._find_addresses(spec, self._require(spec.node))
        ips = [a.ip for a in found]
        source = "bootparams" if found and found[0].source == "bootparams" else "guest"
        return NodeResult(node=spec.node, message="\n".join(ips), facts=Facts(addresses=found),
                          data={"addresses": ips, "source": source})

    def _find_addresses(self, spec: VmSpec, dom: Any) -> list[Address]:
        """Addresses of *dom*: libvirt's lease, agent and ARP sources in that order (each
        address once, loopback skipped), else the boot parameters' ``ip=``."""
        lv = self.lv
        found: list[Address] = []
        if dom.isActive():
            for source, word in ((lv.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, "lease"),
                                 (lv.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT, "agent"),
                                 (lv.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP, "arp")):
                try:
                    ifaces = dom.interfaceAddresses(source, 0) or {}
                except lv.libvirtError:
                    continue
                for name, info in ifaces.items():
                    if name == "lo":
                        continue
                    mac = (info.get("hwaddr") or "").lower() or None
                    for addr in info.get("addrs") or []:
                        ip = addr.get("addr")
                        if (ip and all(a.ip != ip for a in found)
                                and not ip.startswith(("127.", "::1"))):
                            found.append(Address(ip=ip, source=word, mac=mac))
        if not found and spec.bootparams:
            # nothing reported (no lease, agent or ARP entry): the address the VM was given
            # through its boot parameters (cidata disk), as the other families do
            from nodemgr.bootparams import addresses as configured

            mac = spec.nics[0].mac.lower() if spec.nics and spec.nics[0].mac else None
            found = [Address(ip=ip, source="bootparams", mac=mac)
                     for ip in configured(spec.bootparams)]
        return found

    # -- rvitals ---------------------------------------------------------------------------

    def vitals(self, specs: Sequence[VmSpec], interval_s: float = 1.0) -> Iterator[NodeResult]:
        """Use of each VM over *interval_s* seconds (``rvitals``): every running domain of
        *specs* is sampled in one ``domainListGetStats`` round trip, then once more after one
        sleep; ``facts.metrics`` (:class:`Metrics`): ``cpu_pct`` from ``cpu.time`` (percent
        of one vCPU, summed over vCPUs), ``mem_avail_mib`` = ``balloon.current``,
        ``mem_used_mib`` = ``balloon.available - balloon.unused`` when the guest's balloon
        driver reports them, else ``balloon.rss`` (QEMU's resident memory: what the guest
        has touched), disk and network rates (bytes/s) from ``block.<n>.rd/wr.bytes`` and
        ``net.<n>.rx/tx.bytes``, ``interval_s`` as measured. A domain that is not running
        fails with InvalidState; an unknown one with NotFound."""
        lv = self.lv
        self.connect()
        doms: dict[str, Any] = {}
        for spec in specs:
            try:
                dom = self._lookup(spec.node)
                if dom is not None and dom.isActive():
                    doms[spec.node] = dom
            except lv.libvirtError:
                continue  # reported by that node's own pass below
        first: dict[str, dict] = {}
        second: dict[str, dict] = {}
        took = 0.0
        if doms:
            first, t0 = self._sample(list(doms.values())), time.monotonic()
            time.sleep(max(float(interval_s), 0.0))
            second, took = self._sample(list(doms.values())), time.monotonic() - t0
        yield from self.each_node(specs, self._vitals_one, doms, first, second, took)

    def _sample(self, doms: list[Any]) -> dict[str, dict]:
        """Name → libvirt stats record of *doms*, one round trip."""
        lv = self.lv
        kinds = (lv.VIR_DOMAIN_STATS_CPU_TOTAL | lv.VIR_DOMAIN_STATS_BALLOON
                 | lv.VIR_DOMAIN_STATS_VCPU | lv.VIR_DOMAIN_STATS_INTERFACE
                 | lv.VIR_DOMAIN_STATS_BLOCK)
        return {d.name(): st for d, st in self.conn.domainListGetStats(doms, kinds, 0)}

    def _vitals_one(self, spec: VmSpec, doms: dict[str, Any], first: dict[str, dict],
                    second: dict[str, dict], took: float) -> NodeResult:
        node = spec.node
        if node not in doms:
            dom = self._require(node)
            raise InvalidState(f"{node} is {state_word(self._state(dom))}: no vitals of a vm "
                               "that is not running")
        if node not in second:
            raise InvalidState(f"{node} stopped while it was sampled")
        a, b = first.get(node, {}), second[node]
        m = Metrics(interval_s=round(took, 3))

        def rate(key: str) -> float | None:
            if key not in a or key not in b or took <= 0:
                return None
            return max(b[key] - a[key], 0) / took

        def summed(prefix: str, count_key: str, what: str) -> float | None:
            n = int(b.get(count_key, 0))
            rates = [rate(f"{prefix}.{i}.{what}") for i in range(n)]
            rates = [r for r in rates if r is not None]
            return round(sum(rates), 1) if rates else None

        cpu = rate("cpu.time")  # ns per s
        m.cpu_pct = round(cpu / 1e7, 1) if cpu is not None else None
        m.cpus = int(b["vcpu.current"]) if "vcpu.current" in b else None
        if "balloon.current" in b:
            m.mem_avail_mib = int(b["balloon.current"]) // 1024
        if "balloon.available" in b and "balloon.unused" in b:
            m.mem_used_mib = (int(b["balloon.available"]) - int(b["balloon.unused"])) // 1024
        elif "balloon.rss" in b:
            m.mem_used_mib = int(b["balloon.rss"]) // 1024
        m.disk_read_bps = summed("block", "block.count", "rd.bytes")
        m.disk_write_bps = summed("block", "block.count", "wr.bytes")
        m.net_rx_bps = summed("net", "net.count", "rx.bytes")
        m.net_tx_bps = summed("net", "net.count", "tx.bytes")
        return NodeResult(node=node, facts=Facts(metrics=m))

    # -- rinv, rscan -----------------------------------------------------------------------

    def inventory(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        """Inventory of each VM (``rinv``) from its definition (the running one when it
        runs): UUID, vCPUs, memory (MiB, the maximum), disks with their virtual size (the
        storage volume's capacity, or the running block device's), NICs with MAC, network
        and model, and addresses with their source (:meth:`addresses`).
        ``facts.inventory`` (:class:`Inventory`). Unknown VM → NotFound."""
        yield from self.each_node(specs, self._inventory_one)

    def _inventory_one(self, spec: VmSpec) -> NodeResult:
        dom = self._require(spec.node)
        active = bool(dom.isActive())
        doc = DomainXml(dom.XMLDesc(0) if active else self._inactive_xml(dom))
        inv = Inventory(uuid=dom.UUIDString(), cpus=doc.vcpus(),
                        memory_mib=doc.memory_kib() // 1024,
                        disks=self._disk_infos(doc, dom if active else None), nics=doc.nics(),
                        addresses=self._find_addresses(spec, dom))
        return NodeResult(node=spec.node, facts=Facts(inventory=inv))

    def _disk_infos(self, doc: DomainXml, live: Any = None) -> list[DiskInfo]:
        """The disks of *doc* with sizes: the volume's capacity, else (a running domain
        *live*) the block device's; None when neither knows."""
        out = []
        for disk in doc.disks():
            size = self.storage.capacity_mib(disk.source) if disk.device == "disk" else None
            if size is None and live is not None and disk.source:
                try:
                    size = live.blockInfo(disk.dev, 0)[0] // MiB
                except self.lv.libvirtError:
                    size = None
            out.append(DiskInfo(dev=disk.dev, size_mib=size, path=disk.source,
                                format=disk.format, device=disk.device))
        return out

    def scan(self) -> list[VmInfo]:
        """Every domain with what ``rscan -w`` writes: UUID, memory (MiB, maximum), vCPUs,
        MACs in NIC order, disks with sizes (from the persistent definition when there is
        one), state."""
        lv = self.lv
        try:
            states = self._all_states()
            out = []
            for dom in self.conn.listAllDomains(0):
                try:
                    doc = DomainXml(self._inactive_xml(dom))
                except lv.libvirtError as exc:
                    if exc.get_error_code() == lv.VIR_ERR_NO_DOMAIN:
                        continue  # undefined between the listing and now: not there
                    raise
                out.append(VmInfo(name=dom.name(), state=state_word(states.get(dom.name())),
                                  uuid=dom.UUIDString(), memory_mib=doc.memory_kib() // 1024,
                                  cpus=doc.vcpus(), macs=doc.macs(),
                                  disks=self._disk_infos(doc), host=self.endpoint.host or None))
            return out
        except lv.libvirtError as exc:
            raise self.translate(exc) from exc

    # -- rsetboot --------------------------------------------------------------------------

    def set_boot(self, specs: Sequence[VmSpec], device: str) -> Iterator[NodeResult]:
        """Make *device* the first boot device of each VM from its next start (``rsetboot``):
        ``net``, ``hd``, ``cd`` go first in the persistent definition's ``<os><boot>`` list
        (the rest keep their order; per-device ``<boot order>`` is replaced), ``default``
        restores the table's ``vm.bootorder``. A running VM keeps booting as it did until
        it is powered off and on (or ``rpower reset``, which restarts it). A VM defined
        only in the tables (``spec.definition``, not on the host) has its stored
        definition changed. Message: the device as xCAT prints it (``Network``, ``Hard
        Drive``, ``CD/DVD``, ``default (network,hd)``); facts ``bootdev`` and
        ``definition``. Another word → Unsupported."""
        yield from self.each_node(specs, self._set_boot_one, device)

    def _set_boot_one(self, spec: VmSpec, device: str) -> NodeResult:
        setboot_order(device, [], spec.bootorder)  # an unknown word fails before any call
        dom = self._lookup(spec.node)
        if dom is None and not spec.definition:
            raise NotFound(f"Cannot find vm {spec.node} on {self.label}")
        doc = DomainXml(self._inactive_xml(dom) if dom is not None else spec.definition)
        order = setboot_order(device, doc.boot_order(), spec.bootorder)
        doc.set_boot_order(order)
        if dom is not None:
            dom = self.conn.defineXML(str(doc))
            definition = dom.XMLDesc(self.lv.VIR_DOMAIN_XML_INACTIVE)
        else:
            definition = str(doc)
        words = {"net": "Network", "hd": "Hard Drive", "cd": "CD/DVD"}
        text = words.get(device) or f"default ({','.join(order)})"
        return NodeResult(node=spec.node, message=text,
                          facts=Facts(bootdev=device, definition=definition),
                          data={"bootorder": order})

    # -- rcons, getcons --------------------------------------------------------------------

    def console(self, spec: VmSpec, *, open_stream: bool = False,
                display: bool = False) -> Console:
        """The VM's serial console: ``Console(kind="serial", host=<endpoint host>,
        command="virsh -c <uri> console <vm>")``; with *open_stream* its
        :class:`~nodemgr.plugins.libvirt.console.LibvirtConsoleStream` (libvirt's console
        stream on a connection of its own: the bytes travel in the libvirt connection).
        With *display* (``getrvidparms``) the running domain's remote display instead:
        ``Console(kind="vnc"|"spice", host=<listen address, or the endpoint's host when it
        listens on every address>, port, password (the graphics ``passwd``, when set),
        command="virt-viewer -c <uri> <vm>")``. Raises NotFound (no such domain),
        Unsupported (no ``<console>``/``<serial>``; with *display*, no VNC/SPICE
        graphics), InvalidState (a stream or a display of a VM that is not running)."""
        try:
            if display:
                return self._display(spec)
            return self._console(spec, open_stream)
        except self.lv.libvirtError as exc:
            raise self.translate(exc) from exc

    def _display(self, spec: VmSpec) -> Console:
        dom = self._require(spec.node)
        if not dom.isActive():
            raise InvalidState(f"{spec.node} is off: its display port is assigned when it "
                               "starts")
        root = ET.fromstring(dom.XMLDesc(self.lv.VIR_DOMAIN_XML_SECURE))
        gfx = next((g for g in root.findall("devices/graphics")
                    if g.get("type") in ("vnc", "spice")), None)
        if gfx is None:
            raise Unsupported(f"{spec.node} has no VNC or SPICE display (vm.vidproto none); "
                              "use rcons for its serial console")
        listen = gfx.get("listen") or ""
        host = listen if listen not in ("", "0.0.0.0", "::") else (self.endpoint.host or listen)
        port = int(gfx.get("port") or -1)
        return Console(kind=gfx.get("type"), host=host or None,
                       port=port if port > 0 else None, password=gfx.get("passwd") or None,
                       command=f"virt-viewer -c {self.endpoint.uri} {spec.node}")

    def _console(self, spec: VmSpec, open_stream: bool) -> Console:
        dom = self._require(spec.node)
        if not DomainXml(dom.XMLDesc(0)).has_serial_console():
            raise Unsupported(f"{spec.node} has no serial console (its definition has no "
                              "<console> or <serial> device; recreate it with mkvm -f)")
        cons = Console(kind="serial", host=self.endpoint.host or None,
                       command=f"virsh -c {self.endpoint.uri} console {spec.node}")
        if open_stream:
            if not dom.isActive():
                raise InvalidState(f"{spec.node} is off: power it on to reach its console")
            cons.stream = open_console(self.lv, lambda: self._open(self.endpoint), spec.node)
        return cons

    def host_free_memory_mib(self) -> int:
        """Host memory minus the maximum memory of running domains (xCAT's pick_target rule,
        which does not trust lazily-touched guest memory); falls back to libvirt's free
        memory figure."""
        lv = self.lv
        try:
            total_mib = int(self.conn.getInfo()[1])
            used_kib = sum(d.info()[1] for d in self.conn.listAllDomains(
                lv.VIR_CONNECT_LIST_DOMAINS_ACTIVE))
            return max(total_mib - used_kib // 1024, 0)
        except lv.libvirtError:
            pass
        try:
            return int(self.conn.getFreeMemory()) // MiB
        except lv.libvirtError as exc:
            raise self.translate(exc) from exc
