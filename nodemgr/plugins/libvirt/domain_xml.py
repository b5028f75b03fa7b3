"""Build and edit libvirt XML (domains, storage pools, volumes) for the libvirt driver.

The formats are libvirt's: domain XML (https://libvirt.org/formatdomain.html), storage
pool and volume XML (https://libvirt.org/formatstorage.html), capabilities
(https://libvirt.org/formatcaps.html).

Pure functions over strings and ElementTree: nothing here talks to libvirt, reads tables or
touches files, so every rule (xCAT's storage naming ``<node>.<dev>.<fmt>``, device letters
that skip ``c``, pool names ``dir_<path>``, the always-present empty cdrom) is testable
without a daemon. It must never import ``libvirt``.
"""

from __future__ import annotations

import re
import uuid as uuidlib
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass

from nodemgr.plugins.base import (
    DEV_PREFIX,
    NicInfo,
    NicSpec,
    PermanentError,
    Unsupported,
    VmSpec,
    next_dev_names,
)

MiB = 1024 * 1024

#: disk bus -> target device prefix (xCAT: virtio→vd, scsi→sd, ide→hd; sata shares sd).
BUS_PREFIX = DEV_PREFIX

#: vm.bootorder words -> libvirt ``<boot dev>``.
BOOT_DEVS = {"network": "network", "net": "network", "n": "network", "pxe": "network",
             "hd": "hd", "h": "hd", "disk": "hd", "cdrom": "cdrom", "cd": "cdrom", "c": "cdrom",
             "dvd": "cdrom", "fd": "fd", "floppy": "fd"}

NIC_KINDS = ("bridge", "network", "direct")

#: ``rsetboot`` device words -> libvirt ``<boot dev>``.
SETBOOT_DEVS = {"net": "network", "hd": "hd", "cd": "cdrom"}


# -- storage locations -------------------------------------------------------------------


@dataclass(frozen=True)
class Location:
    """A parsed ``vm.storage`` location.

    Attributes:
        kind: ``dir``, ``nfs``, ``lvm`` or ``phy``.
        path: directory (dir), export path (nfs), volume group (lvm) or device (phy).
        server: NFS server (nfs only).
        devices: physical volumes for a new volume group (lvm only).
        url: the location as given (without ``=model`` / ``,dev`` suffixes).
    """

    kind: str
    path: str
    server: str = ""
    devices: tuple[str, ...] = ()
    url: str = ""

    @property
    def pool_name(self) -> str:
        """libvirt pool name xCAT uses for this location (``dir_<path with / as _>``)."""
        if self.kind == "dir":
            return "dir_" + self.path.replace("/", "_")
        if self.kind == "nfs":
            return "nfs_" + (self.server + self.path).replace("/", "_")
        if self.kind == "lvm":
            return self.path
        raise PermanentError(f"{self.url} is not a storage pool location")

    def pool_xml(self, pools_dir: str = "/var/lib/nodemgr/pools") -> str:
        """Definition of the libvirt storage pool for this location."""
        pool = ET.Element("pool")
        ET.SubElement(pool, "name").text = self.pool_name
        if self.kind == "dir":
            pool.set("type", "dir")
            target_path = self.path
        elif self.kind == "nfs":
            pool.set("type", "netfs")
            pool_uuid = str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, self.url))
            ET.SubElement(pool, "uuid").text = pool_uuid
            src = ET.SubElement(pool, "source")
            ET.SubElement(src, "host", name=self.server)
            ET.SubElement(src, "dir", path=self.path)
            ET.SubElement(src, "format", type="nfs")
            target_path = f"{pools_dir}/{pool_uuid}"
        elif self.kind == "lvm":
            pool.set("type", "logical")
            src = ET.SubElement(pool, "source")
            ET.SubElement(src, "name").text = self.path
            for dev in self.devices:
                ET.SubElement(src, "device", path=dev)
            target_path = f"/dev/{self.path}"
        else:
            raise PermanentError(f"{self.url} is not a storage pool location")
        ET.SubElement(ET.SubElement(pool, "target"), "path").text = target_path
        return ET.tostring(pool, encoding="unicode")

    def matches_pool(self, pool_xml: str) -> bool:
        """True when an existing pool definition serves this location (same directory,
        same NFS export, same volume group), whatever its name."""
        root = ET.fromstring(pool_xml)
        ptype = root.get("type")
        if self.kind == "dir" and ptype in ("dir", "fs", "netfs"):
            return _norm(root.findtext("target/path")) == _norm(self.path) and ptype == "dir"
        if self.kind == "nfs" and ptype == "netfs":
            host = root.find("source/host")
            return (host is not None and host.get("name") == self.server
                    and _norm(root.find("source/dir").get("path")) == _norm(self.path))
        if self.kind == "lvm" and ptype == "logical":
            return (root.findtext("source/name") or root.findtext("name")) == self.path
        return False


def _norm(path: str | None) -> str:
    return (path or "").rstrip("/") or "/"


def parse_location(location: str) -> Location:
    """Parse one ``vm.storage`` entry: ``dir:///path``, ``nfs://server/path``,
    ``lvm://vg[:pv1,pv2]``, ``phy:/dev/x`` or a bare absolute directory path (taken as
    ``dir://``). xCAT's ``=model`` and ``,dev[:cdrom]`` suffixes are ignored here."""
    loc = location.strip()
    if not loc:
        raise PermanentError("vm.storage has no value for node")
    if loc.startswith("lvm://"):
        body = loc[len("lvm://"):].split("=", 1)[0]
        vg, _, pvs = body.partition(":")
        return Location("lvm", vg.strip("/"), devices=tuple(p for p in pvs.split(",") if p),
                        url=f"lvm://{body}")
    loc = loc.split(",", 1)[0].split("=", 1)[0]
    if loc.startswith("dir://"):
        path = loc[len("dir://"):]
        if not path.startswith("/"):
            raise PermanentError(f"Invalid storage location {location}: dir:// needs an absolute path")
        return Location("dir", _norm(path), url=loc)
    if loc.startswith("nfs://"):
        body = loc[len("nfs://"):]
        server, slash, path = body.partition("/")
        if not server or not slash:
            raise PermanentError(f"Invalid storage location {location}: expected nfs://server/path")
        return Location("nfs", _norm("/" + path), server=server, url=loc)
    if loc.startswith("phy:"):
        return Location("phy", loc[len("phy:"):], url=loc)
    if loc.startswith("/"):
        return Location("dir", _norm(loc), url="dir://" + _norm(loc))
    raise PermanentError(f"Unsupported storage location {location} for libvirt")


def volume_name(node: str, dev: str, fmt: str) -> str:
    """xCAT's volume name ``<node>.<dev>.<fmt>``."""
    return f"{node}.{dev}.{fmt}"


def volume_xml(name: str, capacity_bytes: int, fmt: str, *, backing: str | None = None,
               backing_format: str | None = None) -> str:
    """A sparse volume (allocation 0) of *capacity_bytes*, optionally a thin clone (qcow2
    overlay) of the volume at path *backing*."""
    vol = ET.Element("volume")
    ET.SubElement(vol, "name").text = name
    ET.SubElement(vol, "capacity", unit="bytes").text = str(int(capacity_bytes))
    ET.SubElement(vol, "allocation", unit="bytes").text = "0"
    ET.SubElement(ET.SubElement(vol, "target"), "format", type=fmt)
    if backing:
        bs = ET.SubElement(vol, "backingStore")
        ET.SubElement(bs, "path").text = backing
        ET.SubElement(bs, "format", type=backing_format or "qcow2")
    return ET.tostring(vol, encoding="unicode")


def volume_copy_xml(name: str, capacity_bytes: int, fmt: str) -> str:
    """Target definition for ``createXMLFrom`` (a full copy with the source's capacity)."""
    vol = ET.Element("volume")
    ET.SubElement(vol, "name").text = name
    ET.SubElement(vol, "capacity", unit="bytes").text = str(int(capacity_bytes))
    ET.SubElement(ET.SubElement(vol, "target"), "format", type=fmt)
    return ET.tostring(vol, encoding="unicode")


# -- device names ------------------------------------------------------------------------


def next_devs(bus: str, used: Iterable[str], count: int) -> list[str]:
    """The next *count* free device names for *bus* (project rule
    :func:`~nodemgr.plugins.base.next_dev_names`: ``a, b, d, e, ...``, ``c`` kept for the
    cdrom as xCAT does, names in *used* skipped). Raises PermanentError when they run out."""
    names = next_dev_names(bus, count, used)
    if len(names) < count:
        raise PermanentError(f"No more free device names for {bus} disks")
    return names


def bus_for_dev(dev: str, default: str = "virtio") -> str:
    """Bus implied by a target name (``vd*`` virtio, ``sd*`` scsi, ``hd*`` ide)."""
    if dev.startswith("vd"):
        return "virtio"
    if dev.startswith("sd"):
        return "scsi"
    if dev.startswith("hd"):
        return "ide"
    return default


# -- domain XML --------------------------------------------------------------------------


@dataclass
class DiskDevice:
    """A disk as it goes into (or comes out of) a domain definition.

    Attributes:
        dev: target device (``vda``).
        bus: target bus.
        source: file or block device path, or None (empty cdrom).
        format: driver type (``qcow2``, ``raw``), or None.
        device: ``disk`` or ``cdrom``.
        kind: ``file`` or ``block``.
        cache: cache mode or None.
    """

    dev: str
    bus: str = "virtio"
    source: str | None = None
    format: str | None = "qcow2"
    device: str = "disk"
    kind: str = "file"
    cache: str | None = None


def disk_element(disk: DiskDevice) -> ET.Element:
    """``<disk>`` element for *disk*."""
    el = ET.Element("disk", type=disk.kind, device=disk.device)
    drv = ET.SubElement(el, "driver", name="qemu")
    fmt = disk.format or ("raw" if disk.device == "cdrom" else None)
    if fmt:
        drv.set("type", fmt)
    if disk.cache and disk.device != "cdrom":
        drv.set("cache", disk.cache)
    if disk.source:
        ET.SubElement(el, "source", {("dev" if disk.kind == "block" else "file"): disk.source})
    ET.SubElement(el, "target", dev=disk.dev, bus=disk.bus)
    if disk.device == "cdrom":
        ET.SubElement(el, "readonly")
    return el


def disk_xml(disk: DiskDevice) -> str:
    """``<disk>`` XML text (for attach/update/detach)."""
    return ET.tostring(disk_element(disk), encoding="unicode")


def nic_element(nic: NicSpec) -> ET.Element:
    """``<interface>`` for a bridge, libvirt network or macvtap (direct) NIC."""
    kind = nic.kind or "bridge"
    if kind not in NIC_KINDS:
        raise PermanentError(f"Unsupported NIC type {kind} (expected bridge, network or direct)")
    el = ET.Element("interface", type=kind)
    if nic.mac:
        ET.SubElement(el, "mac", address=nic.mac.lower())
    if kind == "bridge":
        ET.SubElement(el, "source", bridge=nic.network)
    elif kind == "network":
        ET.SubElement(el, "source", network=nic.network)
    else:
        ET.SubElement(el, "source", dev=nic.network, mode="bridge")
    ET.SubElement(el, "model", type=nic.model or "virtio")
    return el


def boot_devs(bootorder: Iterable[str]) -> list[str]:
    """libvirt boot devices for vm.bootorder words (``net``/``n`` → network, ...)."""
    out: list[str] = []
    for word in bootorder:
        for part in re.split(r"[,:]", word):
            part = part.strip().lower()
            if not part:
                continue
            if part not in BOOT_DEVS:
                raise PermanentError(f"Unsupported boot device {part} (use network, hd or cdrom)")
            dev = BOOT_DEVS[part]
            if dev not in out:
                out.append(dev)
    return out or ["network", "hd"]


def setboot_order(device: str, current: list[str], bootorder: Iterable[str]) -> list[str]:
    """The boot order after ``rsetboot <device>``: *device* (``net``, ``hd``, ``cd``) first,
    then the rest of *current* (the domain's order) in order; ``default`` is the table's
    *bootorder* (``vm.bootorder`` words). Raises Unsupported for another word."""
    if device == "default":
        return boot_devs(bootorder)
    dev = SETBOOT_DEVS.get(device)
    if dev is None:
        raise Unsupported(f"Unsupported boot device '{device}' (use net, hd, cd or default)")
    return [dev] + [d for d in current if d != dev]


def cdrom_device(disks: Iterable[DiskDevice], machine: str | None) -> DiskDevice:
    """The empty cdrom every domain gets: ``hdc`` on IDE, or ``sdc`` on SATA for q35."""
    if machine and "q35" in machine:
        return DiskDevice(dev="sdc", bus="sata", source=None, format="raw", device="cdrom")
    return DiskDevice(dev="hdc", bus="ide", source=None, format="raw", device="cdrom")


def build_domain_xml(spec: VmSpec, disks: list[DiskDevice], virt_type: str,
                     arch: str | None = None) -> str:
    """Domain definition for *spec* with the resolved *disks*.

    Memory MiB→KiB, vcpus, ``<os><type>hvm`` with boot devices from the boot order and (x86)
    ``<bios useserial='yes'/>`` so SeaBIOS prints to the serial console, clock offset,
    features acpi/apic/pae (x86), the disks plus an empty cdrom if none is given, NICs, a
    serial console on a pty, and graphics per ``spec.extra["vidproto"]``:
    ``vnc`` (default, listening on 127.0.0.1 only), ``spice``, or ``none`` (no graphics,
    no video: cheapest under software emulation).
    """
    extra = spec.extra or {}
    machine = extra.get("machine")
    arch = extra.get("arch") or arch
    dom = ET.Element("domain", type=virt_type)
    ET.SubElement(dom, "name").text = spec.node
    if spec.uuid:
        ET.SubElement(dom, "uuid").text = spec.uuid
    kib = str(int(spec.memory_mib) * 1024)
    ET.SubElement(dom, "memory", unit="KiB").text = kib
    ET.SubElement(dom, "currentMemory", unit="KiB").text = kib
    ET.SubElement(dom, "vcpu").text = str(int(spec.cpus))
    os_el = ET.SubElement(dom, "os")
    os_type = ET.SubElement(os_el, "type")
    os_type.text = "hvm"
    if arch:
        os_type.set("arch", arch)
    if machine:
        os_type.set("machine", machine)
    for dev in boot_devs(spec.bootorder):
        ET.SubElement(os_el, "boot", dev=dev)
    x86 = not arch or arch in ("x86_64", "i686", "i386")
    if x86:  # SeaBIOS prints to the serial console too (rcons sees the firmware)
        ET.SubElement(os_el, "bios", useserial="yes")
    if x86:
        feats = ET.SubElement(dom, "features")
        for f in ("acpi", "apic", "pae"):
            ET.SubElement(feats, f)
    cpumode = extra.get("cpumode")
    if cpumode:
        if cpumode not in ("host-model", "host-passthrough"):
            raise PermanentError(f"Unsupported cpumode {cpumode}")
        ET.SubElement(dom, "cpu", mode=cpumode)
    offset = (spec.clockoffset or "utc").lower()
    if offset not in ("utc", "localtime"):
        raise PermanentError(f"Unsupported clock offset {spec.clockoffset}")
    ET.SubElement(dom, "clock", offset=offset)
    ET.SubElement(dom, "on_poweroff").text = "destroy"
    ET.SubElement(dom, "on_reboot").text = "restart"
    ET.SubElement(dom, "on_crash").text = "restart"
    devs = ET.SubElement(dom, "devices")
    all_disks = list(disks)
    if not any(d.device == "cdrom" for d in all_disks):
        all_disks.append(cdrom_device(all_disks, machine))
    if any(d.bus == "scsi" for d in all_disks):
        ET.SubElement(devs, "controller", type="scsi", index="0", model="virtio-scsi")
    for disk in all_disks:
        devs.append(disk_element(disk))
    for nic in spec.nics:
        devs.append(nic_element(nic))
    serial = ET.SubElement(devs, "serial", type="pty")
    ET.SubElement(serial, "target", port="0")
    console = ET.SubElement(devs, "console", type="pty")
    ET.SubElement(console, "target", type="serial", port="0")
    vidproto = (extra.get("vidproto") or "vnc").lower()
    if vidproto in ("vnc", "spice"):
        ET.SubElement(devs, "graphics", type=vidproto, autoport="yes", listen="127.0.0.1")
        video = ET.SubElement(devs, "video")
        model = extra.get("vidmodel") or ("qxl" if vidproto == "spice" else "vga")
        ET.SubElement(video, "model", type=model)
    elif vidproto == "none":
        ET.SubElement(ET.SubElement(devs, "video"), "model", type="none")
    else:
        raise PermanentError(f"Unsupported vidproto {vidproto} (use vnc, spice or none)")
    return ET.tostring(dom, encoding="unicode")


# -- reading and editing existing definitions --------------------------------------------


class DomainXml:
    """An editable domain definition (a thin wrapper over ElementTree)."""

    def __init__(self, text: str) -> None:
        self.root = ET.fromstring(text)
        if self.root.tag != "domain":
            raise PermanentError("stored definition is not a libvirt domain")

    def __str__(self) -> str:
        return ET.tostring(self.root, encoding="unicode")

    @property
    def name(self) -> str:
        return self.root.findtext("name") or ""

    @name.setter
    def name(self, value: str) -> None:
        el = self.root.find("name")
        if el is None:
            el = ET.SubElement(self.root, "name")
        el.text = value

    @property
    def devices(self) -> ET.Element:
        devs = self.root.find("devices")
        if devs is None:
            devs = ET.SubElement(self.root, "devices")
        return devs

    def set_uuid(self, value: str | None) -> None:
        """Set the UUID, or remove it (libvirt then picks one) when *value* is None."""
        el = self.root.find("uuid")
        if value is None:
            if el is not None:
                self.root.remove(el)
            return
        if el is None:
            el = ET.Element("uuid")
            self.root.insert(1, el)
        el.text = value

    def disk_elements(self) -> list[ET.Element]:
        return self.devices.findall("disk")

    def disks(self) -> list[DiskDevice]:
        """Every ``<disk>`` as a :class:`DiskDevice`."""
        out = []
        for el in self.disk_elements():
            out.append(disk_from_element(el))
        return out

    def disk_element(self, dev: str) -> ET.Element | None:
        for el in self.disk_elements():
            tgt = el.find("target")
            if tgt is not None and tgt.get("dev") == dev:
                return el
        return None

    def used_devs(self) -> set[str]:
        return {d.dev for d in self.disks()}

    def add_disk(self, disk: DiskDevice) -> None:
        """Append *disk* after the last existing disk."""
        devs = self.devices
        children = list(devs)
        last = max((i for i, c in enumerate(children) if c.tag == "disk"), default=-1)
        devs.insert(last + 1, disk_element(disk))

    def remove_disk(self, dev: str) -> bool:
        el = self.disk_element(dev)
        if el is None:
            return False
        self.devices.remove(el)
        return True

    def cdrom_elements(self) -> list[ET.Element]:
        return [el for el in self.disk_elements() if el.get("device") == "cdrom"]

    def set_memory_kib(self, kib: int) -> None:
        for tag in ("memory", "currentMemory"):
            el = self.root.find(tag)
            if el is None:
                if tag == "currentMemory":
                    continue
                el = ET.SubElement(self.root, tag)
            el.text = str(int(kib))
            el.set("unit", "KiB")
        mx = self.root.find("maxMemory")
        if mx is not None and memory_kib(mx) < kib:
            mx.text, mx.attrib = str(int(kib)), {**mx.attrib, "unit": "KiB"}

    def memory_kib(self) -> int:
        el = self.root.find("memory")
        return memory_kib(el) if el is not None else 0

    def set_vcpus(self, n: int) -> None:
        el = self.root.find("vcpu")
        if el is None:
            el = ET.SubElement(self.root, "vcpu")
        el.text = str(int(n))
        el.attrib.pop("current", None)
        topo = self.root.find("cpu/topology")
        if topo is not None:  # keep sockets*cores*threads == vcpus
            self.root.find("cpu").remove(topo)

    def vcpus(self) -> int:
        return int(self.root.findtext("vcpu") or 1)

    def interfaces(self) -> list[ET.Element]:
        return self.devices.findall("interface")

    def nics(self) -> list[NicInfo]:
        """Every ``<interface>`` as a :class:`NicInfo` (MAC lower case; network = bridge,
        network or device name)."""
        out = []
        for el in self.interfaces():
            mac = el.find("mac")
            src = el.find("source")
            model = el.find("model")
            network = None
            if src is not None:
                network = src.get("bridge") or src.get("network") or src.get("dev")
            out.append(NicInfo(mac=(mac.get("address") or "").lower() if mac is not None else "",
                               network=network,
                               model=model.get("type") if model is not None else None))
        return out

    def macs(self) -> list[str]:
        """MACs of the interfaces in order (those that have one)."""
        return [n.mac for n in self.nics() if n.mac]

    def boot_order(self) -> list[str]:
        """The ``<os><boot dev>`` list (empty when the devices carry ``<boot order>``)."""
        return [b.get("dev") for b in self.root.findall("os/boot") if b.get("dev")]

    def set_boot_order(self, devs: list[str]) -> None:
        """Make *devs* (libvirt words ``network``, ``hd``, ``cdrom``, ``fd``) the boot order:
        ``<os><boot dev>`` elements in that order. Per-device ``<boot order>`` elements are
        removed: libvirt refuses a definition holding both."""
        os_el = self.root.find("os")
        if os_el is None:
            os_el = ET.SubElement(self.root, "os")
        for el in os_el.findall("boot"):
            os_el.remove(el)
        for el in list(self.devices):
            for b in el.findall("boot"):
                el.remove(b)
        kids = list(os_el)
        at = max((i for i, c in enumerate(kids) if c.tag in ("type", "loader", "nvram",
                                                            "kernel", "initrd", "cmdline")),
                 default=-1) + 1
        for k, dev in enumerate(devs):
            os_el.insert(at + k, ET.Element("boot", dev=dev))

    def has_serial_console(self) -> bool:
        """True when the domain has a ``<console>`` or ``<serial>`` device."""
        return (self.devices.find("console") is not None
                or self.devices.find("serial") is not None)

    def strip_runtime(self) -> None:
        """Drop what only belongs to one running instance (id, pty paths, aliases)."""
        self.root.attrib.pop("id", None)
        for el in list(self.root.iter()):
            for child in list(el):
                if child.tag == "alias":
                    el.remove(child)


_UNIT_KIB = {"b": 1 / 1024, "bytes": 1 / 1024, "k": 1, "kib": 1, "kb": 1000 / 1024,
             "m": 1024, "mib": 1024, "mb": 1e6 / 1024, "g": 1024 ** 2, "gib": 1024 ** 2,
             "gb": 1e9 / 1024, "t": 1024 ** 3, "tib": 1024 ** 3, "tb": 1e12 / 1024}


def memory_kib(el: ET.Element) -> int:
    """Value of a libvirt memory element in KiB, honouring its ``unit``."""
    unit = (el.get("unit") or "KiB").lower()
    return int(int(el.text or 0) * _UNIT_KIB.get(unit, 1))


def disk_from_element(el: ET.Element) -> DiskDevice:
    tgt = el.find("target")
    drv = el.find("driver")
    src = el.find("source")
    source = None
    if src is not None:
        source = src.get("file") or src.get("dev") or src.get("volume") or src.get("name")
    return DiskDevice(
        dev=tgt.get("dev") if tgt is not None else "",
        bus=(tgt.get("bus") if tgt is not None else None) or "virtio",
        source=source,
        format=drv.get("type") if drv is not None else None,
        device=el.get("device") or "disk",
        kind=el.get("type") or "file",
        cache=drv.get("cache") if drv is not None else None,
    )


def master_definition(domain_xml: str, master: str, sources: dict[str, str]) -> str:
    """Definition of master *master* made from a VM's: name=master, no UUID, MACs blanked
    (removed; a clone gets its own), disk sources replaced by the master's copies
    (*sources*: dev → path), runtime-only bits dropped."""
    doc = DomainXml(domain_xml)
    doc.strip_runtime()
    doc.name = master
    doc.set_uuid(None)
    for nic in doc.interfaces():
        for mac in nic.findall("mac"):
            nic.remove(mac)
        for tgt in nic.findall("target"):
            nic.remove(tgt)
    for el in doc.disk_elements():
        disk = disk_from_element(el)
        if disk.device != "disk":
            continue
        for bs in el.findall("backingStore"):
            el.remove(bs)
        if disk.dev in sources:
            src = el.find("source")
            src.attrib.clear()
            src.set("file", sources[disk.dev])
    return str(doc)


def clone_definition(master_xml: str, spec: VmSpec, master: str,
                     sources: dict[str, tuple[str, str]], *, thin: bool) -> str:
    """Definition of VM *spec* cloned from a master definition.

    Name and UUID from the spec; the master's NICs get the spec's MACs (and bridges/networks)
    in order, extra NICs of the spec are appended; disks point at *sources* (dev → (path,
    format)) with cache ``writethrough`` for thin clones (xCAT). Raises PermanentError when
    the spec has fewer NICs than the master.
    """
    doc = DomainXml(master_xml)
    doc.strip_runtime()
    doc.name = spec.node
    doc.set_uuid(spec.uuid or None)
    ifaces = doc.interfaces()
    if len(ifaces) > len(spec.nics):
        raise PermanentError(f"KVM master {master} has {len(ifaces)} nics but this vm only has "
                             f"{len(spec.nics)} defined")
    for iface, nic in zip(ifaces, spec.nics, strict=False):
        for mac in iface.findall("mac"):
            iface.remove(mac)
        new = nic_element(nic)
        if nic.mac:
            iface.insert(0, new.find("mac"))
        src = iface.find("source")
        if src is not None and nic.network:
            iface.remove(src)
            iface.set("type", new.get("type"))
            iface.insert(1 if nic.mac else 0, new.find("source"))
    devs = doc.devices
    last_iface = max((i for i, c in enumerate(devs) if c.tag == "interface"),
                     default=len(list(devs)) - 1)
    for k, nic in enumerate(spec.nics[len(ifaces):]):
        devs.insert(last_iface + 1 + k, nic_element(nic))
    for el in doc.disk_elements():
        disk = disk_from_element(el)
        if disk.device != "disk" or disk.dev not in sources:
            continue
        path, fmt = sources[disk.dev]
        for bs in el.findall("backingStore"):
            el.remove(bs)
        src = el.find("source")
        src.attrib.clear()
        src.set("file", path)
        drv = el.find("driver")
        if drv is None:
            drv = ET.SubElement(el, "driver", name="qemu")
        drv.set("type", fmt)
        if thin:
            drv.set("cache", "writethrough")
    return str(doc)


def host_uuid(capabilities_xml: str) -> str | None:
    """The host UUID from a capabilities document (None for the test driver)."""
    return ET.fromstring(capabilities_xml).findtext("host/uuid")


def host_domain_types(capabilities_xml: str, os_type: str = "hvm") -> list[str]:
    """Domain types (``kvm``, ``qemu``, ...) the host offers for *os_type* guests."""
    root = ET.fromstring(capabilities_xml)
    out: list[str] = []
    for guest in root.findall("guest"):
        if guest.findtext("os_type") != os_type:
            continue
        for arch in guest.findall("arch"):
            for dom in arch.findall("domain"):
                t = dom.get("type")
                if t and t not in out:
                    out.append(t)
    return out


def pool_target_path(pool_xml: str) -> str:
    return ET.fromstring(pool_xml).findtext("target/path") or ""
