"""The driver interface shared by libvirt, RHEV-M/oVirt, Oracle VM and Xen.

A driver speaks one protocol to one endpoint (a libvirt URI, an engine URL, a dom0). It
receives fully resolved :class:`VmSpec` objects built by the dispatch layer from the tables,
and returns results; it never reads or writes tables itself. What the tables should learn
from an operation (a new MAC, the stored domain definition, a new host) comes back in
``NodeResult.updates`` and is written by the caller.

Errors are typed so dispatch can treat them differently: :class:`Unreachable` (fail fast,
every node of the endpoint fails), :class:`NotFound`, :class:`InvalidState` (e.g. removing a
running VM without force), :class:`PermanentError` (bad settings, credentials, unsupported).
Messages are one line and never contain secrets.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

# -- errors ------------------------------------------------------------------------------


class DriverError(Exception):
    """Base of driver errors; ``str(exc)`` is the one-line message printed after ``Error:``."""


class Unreachable(DriverError):
    """The endpoint cannot be contacted (connection refused, timeout, DNS)."""


class NotFound(DriverError):
    """The VM (or host, template, volume) does not exist on the endpoint."""


class InvalidState(DriverError):
    """The VM is in a state that forbids the operation (running, locked, ...)."""


class PermanentError(DriverError):
    """Retrying will not help: bad settings, authentication, unsupported operation."""


# -- specs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """Where a driver connects.

    Attributes:
        driver: entry-point name of the driver (``libvirt``, ``rhevm``, ``ovm``, ``xen``).
        uri: connection string (``qemu+ssh://root@host/system``, ``https://engine/ovirt-engine/api``).
        host: the hypervisor or manager node name the URI was built for (for messages).
        username: login name, if any.
        password: secret; never shown by ``repr`` or in messages.
        options: driver-specific settings (e.g. ``{"ca_file": ...}``).
    """

    driver: str
    uri: str
    host: str = ""
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    options: tuple[tuple[str, str], ...] = ()

    def option(self, name: str, default: str | None = None) -> str | None:
        """Value of driver option *name*, or *default*."""
        return dict(self.options).get(name, default)


@dataclass
class DiskSpec:
    """One virtual disk or cdrom.

    Attributes:
        dev: target device name (``vda``, ``sdb``, ``hdc``).
        location: storage location from ``vm.storage`` (``dir:///var/lib/nodemgr/vms``,
            ``nfs://srv/path``, ``lvm://vg``, ``phy:/dev/sdx``, a file path; ``sd:...`` for
            RHEV storage domains).
        size_mib: size to create in MiB (None for an existing disk).
        format: image format (``qcow2``, ``raw``).
        bus: ``virtio``, ``scsi``, ``ide``, ``sata``.
        cache: cache mode (``none``, ``writethrough``), or None for the default.
        device: ``disk`` or ``cdrom``.
        source: path of an existing image / ISO (cdrom), if known.
    """

    dev: str
    location: str = ""
    size_mib: int | None = None
    format: str = "qcow2"
    bus: str = "virtio"
    cache: str | None = None
    device: str = "disk"
    source: str | None = None


@dataclass
class NicSpec:
    """One network interface.

    Attributes:
        network: bridge, libvirt network, or manager network name.
        mac: MAC address ``aa:bb:cc:dd:ee:ff``.
        model: NIC model (``virtio``, ``e1000``).
        kind: ``bridge``, ``network`` (libvirt network), or ``direct`` (macvtap).
    """

    network: str
    mac: str
    model: str = "virtio"
    kind: str = "bridge"


@dataclass
class VmSpec:
    """Everything a driver needs to know about one VM, resolved from the tables.

    Attributes:
        node: node (and VM) name.
        uuid: UUID (``vpd.uuid``) or None to let the driver choose.
        memory_mib: memory in MiB.
        cpus: number of virtual CPUs.
        disks: disks in device order.
        nics: NICs in order; the first is the install NIC.
        bootorder: boot devices in order: ``network``, ``hd``, ``cdrom``.
        virt_type: domain type for libvirt (``kvm``, ``qemu``, ``xen``).
        clockoffset: ``utc`` or ``localtime``.
        master: name of the master/template the VM is based on, or None.
        definition: the stored native definition (libvirt domain XML from
            ``kvm_nodedata.xml``), or None.
        storage: the storage locations of ``vm.storage`` in order (for adding disks).
        storageformat: default image format for new disks.
        storagemodel: default disk bus for new disks.
        bootparams: ``key=value`` settings given to the guest at first boot.
        extra: family-specific settings (``cluster``, ``datacenter``, ``othersettings``, ...);
            ``memory``/``cpus`` are the table's values, present only when set (a clone keeps
            its master's size otherwise).
    """

    node: str
    uuid: str | None = None
    memory_mib: int = 512
    cpus: int = 1
    disks: list[DiskSpec] = field(default_factory=list)
    nics: list[NicSpec] = field(default_factory=list)
    bootorder: list[str] = field(default_factory=lambda: ["network", "hd"])
    virt_type: str = "kvm"
    clockoffset: str = "utc"
    master: str | None = None
    definition: str | None = None
    storage: list[str] = field(default_factory=list)
    storageformat: str = "qcow2"
    storagemodel: str = "virtio"
    bootparams: dict[str, str] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class VmChange:
    """What ``chvm`` asks for; None / empty means "leave alone".

    Attributes:
        cpus: new vCPU count.
        memory_mib: new memory in MiB.
        add_disks_mib: sizes in MiB of new disks to add (in the rightmost storage location).
        remove_disks: device names (``vdb``) of disks to detach and purge.
        detach_disks: device names of disks to detach, keeping their storage (``chvm -d``).
        resize: device -> new size in MiB.
        cdrom: path of an ISO to insert, or None.
        eject: eject the cdrom.
        push: push the table settings (managers such as RHEV-M: ``chvm`` with no options).
    """

    cpus: int | None = None
    memory_mib: int | None = None
    add_disks_mib: list[int] = field(default_factory=list)
    remove_disks: list[str] = field(default_factory=list)
    detach_disks: list[str] = field(default_factory=list)
    resize: dict[str, int] = field(default_factory=dict)
    cdrom: str | None = None
    eject: bool = False
    push: bool = False


@dataclass
class NodeResult:
    """Outcome for one node.

    Attributes:
        node: node name.
        ok: False when the node failed.
        message: text after ``node: `` (the error text when not ok); may hold several lines.
        updates: table writes the caller should make on success, as
            ``{"table.column": value}`` for the node's own row (None clears).
        data: structured data for ``--json`` (e.g. ``{"state": "on"}``).
    """

    node: str
    ok: bool = True
    message: str = ""
    updates: dict[str, str | None] = field(default_factory=dict)
    data: dict = field(default_factory=dict)


@dataclass
class VmInfo:
    """One VM as seen on a host (``lsvm <host>``).

    Attributes:
        name: VM name on the hypervisor.
        state: xCAT power word (``on``, ``off``, ``suspended``, ...) or the native state.
        uuid: UUID if known.
    """

    name: str
    state: str
    uuid: str | None = None


#: xCAT's message for a node whose driver cannot be found (nodehm.power / nodehm.mgt).
NO_PLUGIN = ("Unable to identify plugin for this command, check relevant tables: "
             "nodehm.power;nodehm.mgt")

#: Disk bus -> device-name prefix, and the letters used after it ("c" is kept for the
#: cdrom, as xCAT does).
DEV_PREFIX = {"virtio": "vd", "scsi": "sd", "sata": "sd", "ide": "hd"}
DEV_LETTERS = "abdefghijklmnopqrstuvwxyz"


def next_dev_names(bus: str, count: int, used=()) -> list[str]:
    """The next *count* free device names for *bus* (``vda``, ``vdb``, ``vdd``, ...),
    skipping names in *used*; fewer when the letters run out."""
    prefix = DEV_PREFIX.get(bus, "vd")
    used = set(used)
    return [prefix + c for c in DEV_LETTERS if prefix + c not in used][:count]


POWER_ACTIONS = ("on", "off", "softoff", "reset", "boot", "suspend", "resume", "stat")


class HypervisorDriver:
    """One hypervisor family. An instance talks to one endpoint; dispatch creates one per
    endpoint and calls it from one thread at a time.

    Subclasses set :attr:`name`, may set :attr:`required` (VmSpec attribute names that must
    be set, checked by :meth:`validate` before any network call), and override what they
    support; everything not overridden raises :class:`PermanentError`.

    Methods taking a sequence of specs return an iterator of :class:`NodeResult`, one per
    spec in the same order, so a driver can batch (one round trip for ``stat`` of every VM
    on a host). A failure of one node is a result with ``ok=False``; an exception raised by
    the method fails every node not yet reported.
    """

    name = "base"
    required: tuple[str, ...] = ()

    def __init__(self, endpoint: Endpoint, timeout: float = 60.0) -> None:
        """Args: endpoint to talk to; timeout in seconds for one call to it."""
        self.endpoint = endpoint
        self.timeout = timeout

    # lifecycle of the connection --------------------------------------------------------
    def connect(self) -> None:
        """Open the connection (and check reachability). Raises Unreachable/PermanentError."""

    def close(self) -> None:
        """Close the connection; never raises."""

    def validate(self, spec: VmSpec) -> None:
        """Check *spec* has what this driver needs. Raises PermanentError naming the attribute."""
        for attr in self.required:
            if getattr(spec, attr, None) in (None, "", [], {}):
                raise PermanentError(f"vm attribute {attr} is required for {self.name}")

    def _unsupported(self, what: str):
        raise PermanentError(f"{what} is not supported by the {self.name} driver")

    # VM operations -------------------------------------------------------------------------
    def create(self, specs: Sequence[VmSpec], *, force: bool = False) -> Iterator[NodeResult]:
        """Create each VM (disks with ``size_mib`` are created). ``force`` replaces existing
        disks/definitions. Updates may include ``vm.host``, ``kvm_nodedata.xml``."""
        self._unsupported("mkvm")

    def remove(self, specs: Sequence[VmSpec], *, force: bool = False,
               purge: bool = False) -> Iterator[NodeResult]:
        """Remove each VM; ``force`` stops a running one first, ``purge`` deletes its disks.
        A running VM without ``force`` is an InvalidState result."""
        self._unsupported("rmvm")

    def change(self, specs: Sequence[VmSpec], change: VmChange) -> Iterator[NodeResult]:
        """Apply *change* to each VM."""
        self._unsupported("chvm")

    def power(self, specs: Sequence[VmSpec], action: str) -> Iterator[NodeResult]:
        """Run power *action* (one of :data:`POWER_ACTIONS`); the message is xCAT's state
        text (``on``, ``off``, ``off on``, ``on reset``, ``suspended``)."""
        self._unsupported("rpower")

    def host_power(self) -> str:
        """Power word of the endpoint's host itself (``rpower <hypervisor> stat``): ``on``,
        since :meth:`connect` reached it (it raises otherwise). A driver that reaches a
        host through its manager reports the manager's view of it."""
        return "on"

    def list_vms(self) -> list[VmInfo]:
        """Every VM on the endpoint's host, defined-but-off ones included."""
        self._unsupported("lsvm")

    def describe(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        """Details of each VM, one ``key: value`` line each in the message."""
        self._unsupported("lsvm")

    def migrate(self, specs: Sequence[VmSpec], target: Endpoint) -> Iterator[NodeResult]:
        """Live-migrate each VM to *target*; only report ok once the VM is verified there.
        Updates include ``vm.host`` = ``target.host``."""
        self._unsupported("rmigrate")

    def make_master(self, spec: VmSpec, master: str, *, detached: bool = False,
                    force: bool = False) -> NodeResult:
        """Make master/template *master* from the VM (``clonevm -t``). Updates may include
        ``kvm_masterdata.xml`` (keyed by master) in ``data["master_definition"]``."""
        self._unsupported("clonevm -t")

    def clone_from_master(self, specs: Sequence[VmSpec], master: str, master_definition: str | None,
                          *, detached: bool = False) -> Iterator[NodeResult]:
        """Create each VM from *master* (``clonevm -b``): thin (backing file) unless detached."""
        self._unsupported("clonevm -b")

    def stats(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        """CPU and memory use of each VM: ``data`` holds ``cpu_time_s``, ``memory_mib`` ..."""
        self._unsupported("stats")

    def addresses(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        """IP addresses of each VM: ``data["addresses"]`` is a list of strings."""
        self._unsupported("addresses")

    def host_free_memory_mib(self) -> int:
        """Free memory of the endpoint's host in MiB (for choosing a migration target)."""
        self._unsupported("free memory query")
