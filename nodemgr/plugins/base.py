"""The driver interface every hypervisor family implements.

A driver speaks one protocol to one endpoint (a libvirt URI, an engine URL, a dom0). It
declares what its family is as data (:class:`Traits`: which attribute names its endpoint,
whether the endpoint assigns MACs and UUIDs, the host types it manages, SSH needs, its own
part of the spec), receives fully resolved :class:`VmSpec` objects and returns
:class:`NodeResult` objects carrying typed :class:`Facts` (uuid, MACs, definition, host,
power state, addresses, metrics, inventory). It never reads or writes tables: the
write-back module (:mod:`nodemgr.vm.writeback`) is the only VM code that knows columns.

The base class owns the skeleton (the Ironic / MAAS shape): :meth:`HypervisorDriver.validate`
runs before any network call, :meth:`HypervisorDriver.each_node` is the per-node loop that
maps errors to failed results the same way for every family, :func:`retry` retries
:class:`Transient` errors on a schedule and reports the rest at once.

Errors (all in :mod:`nodemgr.errors`): :class:`Unreachable` (fail fast, every node of the
endpoint fails), :class:`NotFound`, :class:`InvalidState` (e.g. removing a running VM
without force), :class:`Transient` (busy: worth a retry), :class:`PermanentError` (bad
settings, credentials), :class:`Unsupported` (the family cannot). Messages are one line
and never contain secrets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

# -- errors (defined in nodemgr.errors, the one place for every error type) ----------

from nodemgr.errors import (  # noqa: E402, F401 - re-exported for drivers
    DriverError,
    InvalidState,
    NotFound,
    PermanentError,
    Transient,
    Unreachable,
    Unsupported,
)

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
        scope: for a manager endpoint reached on behalf of one of its hosts
            (:attr:`Traits.hosts_via_manager`), that host's node name: ``list_vms`` and
            ``host_power`` answer for that host only. Empty otherwise.
    """

    driver: str
    uri: str
    host: str = ""
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    options: tuple[tuple[str, str], ...] = ()
    scope: str = ""

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


#: ``hypervisor.type`` when none is set: xCAT's default, the one name of a family the
#: interface carries (tests/test_family_names.py allows exactly this assignment).
DEFAULT_VIRT_TYPE = "kvm"


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
    virt_type: str = DEFAULT_VIRT_TYPE
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
class Address:
    """One IP address of a VM and where it was learnt.

    Attributes:
        ip: the address (``10.0.0.5``, ``fe80::1``).
        source: ``agent`` (guest agent / Guest Additions), ``lease`` (the host's DHCP
            server), ``arp`` (the host's neighbour table), ``bootparams`` (the ``ip=``
            the VM was given at first boot), ``engine`` (the manager reports it).
        mac: MAC of the interface, when known.
    """

    ip: str
    source: str
    mac: str | None = None


@dataclass
class Metrics:
    """Use of one VM (``rvitals``); None means the family does not give that figure.

    Attributes:
        interval_s: seconds between the two samples the rates and CPU % come from.
        cpu_pct: CPU use over the interval, percent of ONE vCPU summed over vCPUs
            (200 = two vCPUs busy), as ``top`` shows it.
        cpus: vCPUs.
        mem_used_mib: memory the guest uses (or has been given, when the family cannot
            see inside), MiB.
        mem_avail_mib: memory available to the guest (its current allocation), MiB.
        disk_read_bps, disk_write_bps: disk I/O rates over the interval, bytes/s, all
            disks summed.
        net_rx_bps, net_tx_bps: network rates over the interval, bytes/s, all NICs.
    """

    interval_s: float | None = None
    cpu_pct: float | None = None
    cpus: int | None = None
    mem_used_mib: int | None = None
    mem_avail_mib: int | None = None
    disk_read_bps: float | None = None
    disk_write_bps: float | None = None
    net_rx_bps: float | None = None
    net_tx_bps: float | None = None


@dataclass
class DiskInfo:
    """One disk as the endpoint reports it (``rinv``, ``rscan``).

    Attributes:
        dev: device name (``vda``), or the endpoint's disk name.
        size_mib: virtual size in MiB, when known.
        path: image path or volume id.
        format: ``qcow2``, ``raw``, ``cow``...
        device: ``disk`` or ``cdrom``.
    """

    dev: str
    size_mib: int | None = None
    path: str | None = None
    format: str | None = None
    device: str = "disk"


@dataclass
class NicInfo:
    """One NIC as the endpoint reports it.

    Attributes:
        mac: MAC address, lower case.
        network: bridge / network name.
        model: NIC model (``virtio``, ``e1000``).
    """

    mac: str
    network: str | None = None
    model: str | None = None


@dataclass
class Inventory:
    """What ``rinv`` shows of a VM; None / empty means the family does not give it.

    Attributes:
        uuid: the VM's UUID.
        cpus: vCPUs.
        memory_mib: memory, MiB.
        disks: disks in device order.
        nics: NICs in order.
        addresses: IP addresses with their source.
    """

    uuid: str | None = None
    cpus: int | None = None
    memory_mib: int | None = None
    disks: list[DiskInfo] = field(default_factory=list)
    nics: list[NicInfo] = field(default_factory=list)
    addresses: list[Address] = field(default_factory=list)


@dataclass
class Facts:
    """What an operation learnt about one VM, typed; the write-back module
    (:mod:`nodemgr.vm.writeback`) is the only code that turns these into table columns.

    Every attribute is None for "no news". :attr:`cleared` names facts that are now gone
    (``{"definition"}`` after ``rmvm``, ``{"master"}`` after a detached clone).

    Attributes:
        uuid: the VM's UUID as the endpoint assigned or confirmed it.
        macs: the VM's MACs in NIC order (a manager assigned them).
        definition: the native definition to keep (libvirt domain XML, inactive form).
        master_definition: a master's native definition (``clonevm -t``).
        host: the host the VM now lives on (after create, migrate).
        master: the master the VM is now based on.
        cpus: vCPUs now configured.
        memory_mib: memory now configured, MiB.
        power: the VM's xCAT power word after the operation (``on``, ``off``...).
        status: the node's provisioning status to record (``powering-on``...).
        addresses: IP addresses found.
        metrics: use figures (``rvitals``).
        inventory: inventory (``rinv``).
        bootdev: the next-boot device now set (``net``, ``hd``, ``cd``, ``default``).
        bootparams: the ``key=value`` boot parameters the VM was given (``mkvm
            --bootparams``), kept for later runs.
        cleared: names of facts that no longer hold.
    """

    uuid: str | None = None
    macs: list[str] | None = None
    definition: str | None = None
    master_definition: str | None = None
    host: str | None = None
    master: str | None = None
    cpus: int | None = None
    memory_mib: int | None = None
    power: str | None = None
    status: str | None = None
    addresses: list[Address] | None = None
    metrics: Metrics | None = None
    inventory: Inventory | None = None
    bootdev: str | None = None
    bootparams: dict[str, str] | None = None
    cleared: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return any(v not in (None, set()) for v in self.__dict__.values())


@dataclass
class NodeResult:
    """Outcome for one node.

    Attributes:
        node: node name.
        ok: False when the node failed.
        message: text after ``node: `` (the error text when not ok); may hold several lines.
        facts: what the operation learnt (typed; written back by :mod:`nodemgr.vm.writeback`).
        data: structured data for ``--json`` (e.g. ``{"state": "on"}``); a failed result
            carries ``data["error"]`` = the error's class name (``NotFound``...), the same
            for every family.
        updates: DEPRECATED column writes ``{"table.col": value}``; drivers return
            :attr:`facts` instead. Kept so sites' own drivers keep working; the write-back
            module applies them after the facts.
    """

    node: str
    ok: bool = True
    message: str = ""
    updates: dict[str, str | None] = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    facts: Facts = field(default_factory=Facts)


@dataclass
class VmInfo:
    """One VM as seen on a host or manager (``lsvm <host>``, ``rscan``).

    Attributes:
        name: VM name on the hypervisor.
        state: xCAT power word (``on``, ``off``, ``suspended``, ...) or the native state.
        uuid: UUID if known.
        memory_mib: memory, MiB, when known.
        cpus: vCPUs, when known.
        macs: MACs in NIC order.
        disks: disks in device order.
        host: the host it runs on (a manager's VM), when known.
    """

    name: str
    state: str
    uuid: str | None = None
    memory_mib: int | None = None
    cpus: int | None = None
    macs: list[str] = field(default_factory=list)
    disks: list[DiskInfo] = field(default_factory=list)
    host: str | None = None


@dataclass(frozen=True)
class Traits:
    """What a family is, as data; the core asks these and never names a family.

    Attributes:
        label: the family's name for people (``libvirt/KVM``), used in help tables.
        endpoint_attr: the attribute that names a VM's endpoint: ``vm.host`` (the
            hypervisor itself) or ``vm.mgr`` (a manager: RHEV-M, OVM Manager).
        assigns_identity: the endpoint assigns MACs and UUIDs itself (the core must not
            generate them; the driver reports them as facts).
        places_vms: the endpoint chooses a host when none is named (``rmigrate`` without
            a target, ``mkvm`` without ``vm.host``).
        host_types: ``hypervisor.type`` values whose hosts this family manages (``lsvm
            <host>``, ``rpower <host> stat``).
        hosts_via_manager: a host of this family is reached through its manager
            (``hypervisor.mgr``): the endpoint is the manager's, scoped to the host.
        ssh: the family reaches its hosts over SSH: the endpoint gets ``known_hosts``
            and ``key`` options from ``site.sshknownhosts`` / ``site.sshkey``.
        spec: ``spec(vmspec, attrs, disk_sizes_mib) -> None`` completing the family's own
            part of a :class:`VmSpec` from the node's xCAT attributes (``attrs`` maps
            ``storage``, ``nics``, ``cpus``, ``storagemodel``, ``nicmodel``, ``host``,
            ``master``, ``virtflags`` to their values; ``macs`` to the MAC list). Raises
            UsageError for a malformed value. None: the generic spec is the family's.
        cannot: ``(command, why)`` pairs this family cannot do; ``--help`` and the
            README print them, the command answers ``why`` for such a node.
    """

    label: str = ""
    endpoint_attr: str = "vm.host"
    assigns_identity: bool = False
    places_vms: bool = False
    host_types: tuple[str, ...] = ()
    hosts_via_manager: bool = False
    ssh: bool = False
    spec: Callable[..., None] | None = None
    cannot: tuple[tuple[str, str], ...] = ()

    def why_not(self, command: str) -> str | None:
        """The reason this family cannot run *command*, or None when it can."""
        return dict(self.cannot).get(command)


@dataclass
class Console:
    """How to reach a VM's console (``getcons``, ``getrvidparms``, ``rcons``).

    Attributes:
        kind: ``serial`` (a byte stream: :attr:`stream` is set when opened by ``rcons``),
            ``vnc``, ``spice`` or ``rdp`` (a remote display: host/port/password;
            ``rdp`` is VirtualBox's VRDE).
        host: address to connect to (remote display), or the hypervisor.
        port: TCP port (remote display).
        password: one-time ticket/password (remote display), never logged.
        command: what an administrator would type to reach it by hand
            (``virsh -c URI console vm1``, ``ssh root@dom0 xl console vm1``).
        stream: an open :class:`ConsoleStream` (``rcons``), else None.
    """

    kind: str
    host: str | None = None
    port: int | None = None
    password: str | None = field(default=None, repr=False)
    command: str | None = None
    stream: ConsoleStream | None = None


class ConsoleStream:
    """An open serial console: bytes in and out, closed once.

    Drivers subclass it (libvirt's virStream, an SSH channel running ``xl console``).
    """

    def read(self, timeout: float) -> bytes | None:
        """Up to 4 KiB the guest printed, waiting at most *timeout* seconds; b"" when
        nothing came in time, None when the console closed."""
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        """Send *data* (keystrokes) to the guest."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the console; never raises."""


def retry(fn: Callable[[], T], *, schedule: Sequence[float] = (0.5, 1.0, 2.0, 4.0),
          retry_on: tuple[type[BaseException], ...] = (Transient,),
          sleep: Callable[[float], None] | None = None) -> T:
    """Call *fn* until it succeeds, waiting ``schedule[i]`` seconds before retry *i+1*.

    Only *retry_on* errors (default :class:`Transient`: busy, locked) are retried; any
    other error is final and raised at once (MAAS's power-driver split: retry what can
    change, report the rest). After the last wait the last error is raised.

    Args:
        fn: the call, no arguments.
        schedule: pauses in seconds between tries (len + 1 tries in all).
        retry_on: error types worth retrying.
        sleep: the pause function (``time.sleep``), replaceable in tests.
    Returns:
        what *fn* returns.
    """
    if sleep is None:
        import time

        sleep = time.sleep
    for pause in schedule:
        try:
            return fn()
        except retry_on:
            sleep(pause)
    return fn()


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

    Subclasses set :attr:`name` and :attr:`traits`, may set :attr:`required` (VmSpec
    attribute names that must be set, checked by :meth:`validate` before any network
    call: dispatch validates every node before ``connect``), and override what they
    support; everything not overridden raises :class:`Unsupported`.

    Methods taking a sequence of specs return an iterator of :class:`NodeResult`, one per
    spec in the same order, so a driver can batch (one round trip for ``stat`` of every VM
    on a host). Write per-node operations as ``yield from self.each_node(specs, fn)``: the
    base maps a :class:`DriverError` (or what :meth:`translate` makes of a library's own
    exception) to that node's failed result the same way for every family, and lets
    :class:`Unreachable` fail every node not yet reported.
    """

    name = "base"
    traits = Traits()
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
        """Check *spec* has what this driver needs, without any network call. Raises
        PermanentError naming the attribute."""
        for attr in self.required:
            if getattr(spec, attr, None) in (None, "", [], {}):
                raise PermanentError(f"vm attribute {attr} is required for {self.name}")

    def _unsupported(self, what: str):
        raise Unsupported(f"{what} is not supported by the {self.name} driver")

    # the per-node skeleton ----------------------------------------------------------------
    def translate(self, exc: Exception) -> DriverError | None:
        """The :class:`DriverError` a library's own exception stands for (libvirtError,
        an HTTP error...), or None to let it propagate. Override per family."""
        return None

    @staticmethod
    def failed(node: str, exc: DriverError, **data) -> NodeResult:
        """*node*'s failed result for *exc*: its first line as the message,
        ``data["error"]`` = the error's class name."""
        text = str(exc).strip()
        message = text.splitlines()[0] if text else type(exc).__name__
        return NodeResult(node=node, ok=False, message=message,
                          data={"error": type(exc).__name__, **data})

    def each_node(self, specs: Sequence[VmSpec], fn: Callable[..., NodeResult],
                  *args, **kwargs) -> Iterator[NodeResult]:
        """``fn(spec, *args, **kwargs)`` for each spec, in order: the one per-node loop.

        A :class:`DriverError` fails that node (:meth:`failed`); :class:`Unreachable` is
        raised (every node not yet reported fails with its line); another exception is
        passed to :meth:`translate` and handled the same way when it returns an error.
        """
        for spec in specs:
            try:
                yield fn(spec, *args, **kwargs)
            except Unreachable:
                raise
            except DriverError as exc:
                yield self.failed(spec.node, exc)
            except Exception as exc:  # noqa: BLE001 - a library's own error type
                err = self.translate(exc)
                if err is None:
                    raise
                if isinstance(err, Unreachable):
                    raise err from exc
                yield self.failed(spec.node, err)

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

    # inventory, vitals, boot device, console (rinv, rvitals, rsetboot, rcons) -------------
    def vitals(self, specs: Sequence[VmSpec], interval_s: float = 1.0) -> Iterator[NodeResult]:
        """Use of each VM over *interval_s* seconds: ``facts.metrics`` (:class:`Metrics`;
        figures the family cannot give stay None)."""
        self._unsupported("rvitals")

    def inventory(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        """Inventory of each VM: ``facts.inventory`` (:class:`Inventory`), addresses with
        their source included when the family can find them."""
        self._unsupported("rinv")

    def scan(self) -> list[VmInfo]:
        """Every VM on the endpoint with the details ``rscan -w`` writes (uuid, memory,
        cpus, macs, disks); by default :meth:`list_vms`."""
        return self.list_vms()

    def set_boot(self, specs: Sequence[VmSpec], device: str) -> Iterator[NodeResult]:
        """Make *device* (``net``, ``hd``, ``cd``, ``default`` = the table's
        ``vm.bootorder``) the first boot device of each VM from its next start;
        ``facts.bootdev`` = device, ``facts.definition`` when the definition changed."""
        self._unsupported("rsetboot")

    def console(self, spec: VmSpec, *, open_stream: bool = False,
                display: bool = False) -> Console:
        """How to reach *spec*'s console; with *open_stream*, a serial console opened for
        ``rcons`` (:attr:`Console.stream`); with *display*, its remote display (VNC, SPICE,
        RDP) for ``getrvidparms`` when the family has both (a family with one kind of
        console ignores it). Raises NotFound, Unsupported (no serial
        console: the message says what there is instead)."""
        self._unsupported("rcons")



def lazy_exports(package: str, names: dict[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` for a family package: ``names`` maps an attribute
    (``"XenDriver"``) to the submodule defining it (``"driver"``), imported on first
    access, so importing the package (to read its ``TRAITS``) costs no driver library.

    Use: ``__getattr__ = lazy_exports(__name__, {"XenDriver": "driver"})``.
    """

    def __getattr__(name: str) -> object:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        import importlib
        import sys

        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
