"""VM commands: mkvm, rmvm, chvm, lsvm, clonevm, rpower, rmigrate, revacuate, rvitals, rinv,
rscan, rsetboot, rcons, getcons, getrvidparms.

Each command parses its arguments, expands the noderange and checks policy
(:func:`nodemgr.cli.common.prepare`), calls one operation of :mod:`nodemgr.vm.ops` (which
resolves the tables, dispatches to the drivers and writes results back) and prints the
results in noderange order. Nothing here talks to a hypervisor, reads a column or names a
hypervisor family: what a family cannot do comes from its driver's traits.
"""

from __future__ import annotations

from collections.abc import Iterable

from nodemgr.cli.common import main_wrapper, open_store, parser, prepare
from nodemgr.cli.output import Reporter
from nodemgr.errors import UsageError

POWER_WORDS = ("on", "off", "softoff", "reset", "boot", "stat", "state", "status", "suspend",
               "resume")

EXIT = """
exit status:
  0  every node succeeded
  1  a node failed (its line on stderr reads "node: Error: ..."), or the command
     was refused (bad noderange, bad option, policy)
"""


def _run(command: str, noderange_text: str, args: list[str], *, audit: bool = True):
    """Open the store, expand and authorize the noderange: a :class:`nodemgr.vm.ops.Run`."""
    from nodemgr.vm.ops import Run

    store = open_store()
    resolver, nodes = prepare(store, command, noderange_text, args, audit=audit)
    return Run(store, resolver, nodes)


def _print(results: Iterable, json_mode: bool) -> int:
    out = Reporter(json_mode=json_mode)
    for r in results:
        out.result(r)
    return out.exit_code


def _vm_parser(name: str, text: str, argv: list[str], *, command: str | None = None):
    """The command's parser: a noderange, ``--json``, and (for ``--help``) the families
    that cannot run *command*, from their traits."""
    wants_help = any(a in ("-h", "--help", "-?") for a in argv)
    p = parser(name, text + (_families(command or name) if wants_help else ""))
    p.add_argument("noderange")
    p.add_argument("--json", action="store_true", help="print one JSON object per node")
    return p


def _families(command: str) -> str:
    """``hypervisor families:`` lines for --help: each driver's label and whether it can
    run *command* (and why not), read from the registry's traits."""
    from nodemgr.plugins import registry

    lines, seen = [], set()
    for name in registry.available():
        try:
            tr = registry.traits(name)
        except Exception:  # noqa: BLE001 - a broken site plugin must not break --help
            continue
        if not tr.label or tr.label in seen:
            continue
        seen.add(tr.label)
        why = tr.why_not(command)
        lines.append(f"  {name:9} {tr.label}: {'no - ' + why if why else 'yes'}")
    return "\nhypervisor families (nodehm.mgt):\n" + "\n".join(lines) + "\n" if lines else ""


def _cpus(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise UsageError(f"invalid --cpus '{value}' (a whole number of at least 1)")
    return int(value)


def _devs(value: str | None) -> list[str]:
    return [d.strip() for d in (value or "").split(",") if d.strip()]


# -- rpower ------------------------------------------------------------------------------------

RPOWER_HELP = """\
Control the power of virtual machines.

  on        start the VM (already on: prints "on")
  off       hard power off
  softoff   ask the guest to shut down (ACPI); prints the state at that moment
  reset     hard reset; prints "reset"
  boot      off -> "off on"; on -> "on reset"
  suspend   pause the VM -> "suspended";  resume -> "on"
  stat      print the power state: on, off, suspended (also: state, status)

Output is one line per node, "node: <state>", in noderange order. on/off/boot/reset set
nodelist.status to powering-on / powering-off for nodes whose state changed.
The driver comes from nodehm.power, else nodehm.mgt; the hypervisor from vm.host (vm.mgr
for families reached through a manager). A VM with no vm.host is reported "off" by stat;
"on" of one with vm.migrationdest places it on the host with the most free memory. A
crashed VM kept by its hypervisor is destroyed and started again by "on".

A hypervisor or manager node (no vm.host, and a hypervisor row or hostconn.uri) is not
a VM: stat connects to it and prints "on" when it answers (a host reached through its
manager: its state there, e.g. maintenance), else its one-line error; other actions are
refused.

examples:
  rpower vm1,vm2 stat
  rpower 'vm[01-20]' boot
  rpower compute,-vm5 off --json
""" + EXIT


@main_wrapper
def rpower(argv: list[str]) -> int:
    p = _vm_parser("rpower", RPOWER_HELP, argv)
    p.add_argument("action", metavar="on|off|softoff|reset|boot|suspend|resume|stat")
    a = p.parse_args(argv)
    if a.action not in POWER_WORDS:
        raise UsageError(f"Unsupported power directive '{a.action}'")
    action = "stat" if a.action in ("state", "status") else a.action
    from nodemgr.vm import ops

    run = _run("rpower", a.noderange, [a.action], audit=action != "stat")
    return _print(ops.power(run, action), a.json)


# -- mkvm -------------------------------------------------------------------------------------

MKVM_HELP = """\
Create virtual machines from their table definitions.

Reads vm.host, vm.memory (MiB), vm.cpus, vm.nics, vm.nicmodel, vm.storage,
vm.storagemodel, vm.storageformat, vm.bootorder, mac.mac and vpd.uuid. Missing MACs and
UUIDs are generated and written to the mac and vpd tables (a family whose manager
assigns them reports them instead); the domain definition is kept in kvm_nodedata.
Domains are persistent (defined on the hypervisor). A VM without vm.host goes to the host
of vm.migrationdest with the most free memory, written to vm.host.

Sizes: bare numbers are GiB for -s, MiB for --mem; suffixes K, M, G, T accepted
(20, 20G, 20480M). --bootparams keys: ip (address/prefix or dhcp: how the VM's address
is set), gateway, dns, hostname, any other key; kept in the vmbootparams table and given
to the guest on a small config disk at first boot.

Silent on success (like xCAT).

examples:
  mkvm vm1 -s 20G
  mkvm 'vm[1-4]' -s 10G,2G --mem 2048 --cpus 2
  mkvm web1 --bootparams ip=10.0.0.5/24 gateway=10.0.0.1 dns=10.0.0.1 role=web
""" + EXIT


@main_wrapper
def mkvm(argv: list[str]) -> int:
    from nodemgr.units import parse_size_mib, parse_sizes_mib

    p = _vm_parser("mkvm", MKVM_HELP, argv)
    p.add_argument("-s", "--size", dest="size", metavar="SIZE[,SIZE...]",
                   help="create one disk per size in the first vm.storage location, named "
                        "<node>.<dev>.<format>")
    p.add_argument("--mem", metavar="SIZE", help="memory; written to vm.memory")
    p.add_argument("--cpus", metavar="N", help="virtual CPUs; written to vm.cpus")
    p.add_argument("-f", "--force", action="store_true",
                   help="replace an existing definition and existing disk files")
    p.add_argument("--bootparams", nargs="+", action="extend", metavar="KEY=VALUE",
                   help="parameters the guest reads at first boot (replacing what was kept)")
    a = p.parse_args(argv)
    boot = None
    if a.bootparams:
        from nodemgr.bootparams import parse_pairs

        boot = parse_pairs(a.bootparams)
    sizes = parse_sizes_mib(a.size, "G") if a.size else []
    mem = parse_size_mib(a.mem, "M") if a.mem else None
    cpus = _cpus(a.cpus)
    from nodemgr.vm import ops

    run = _run("mkvm", a.noderange, argv)
    return _print(ops.create(run, disk_sizes_mib=sizes, memory_mib=mem, cpus=cpus,
                             force=a.force, bootparams=boot), a.json)


# -- rmvm -------------------------------------------------------------------------------------

RMVM_HELP = """\
Remove virtual machines from their hypervisors.

A running VM is refused unless -f is given. The node's definition in the tables is kept;
its stored domain definition (kvm_nodedata) is dropped. -p deletes disk volumes, not
cdroms, raw-format images or block devices; the VM's own boot-parameter disk
(<node>.cidata.iso) goes with it.

Silent on success.

examples:
  rmvm vm1
  rmvm vm1,vm2 -f -p
""" + EXIT


@main_wrapper
def rmvm(argv: list[str]) -> int:
    p = _vm_parser("rmvm", RMVM_HELP, argv)
    p.add_argument("-f", "--force", action="store_true", help="power the VM off first")
    p.add_argument("-p", "--purge", action="store_true", help="also delete its disk volumes")
    a = p.parse_args(argv)
    from nodemgr.vm import ops

    run = _run("rmvm", a.noderange, argv)
    return _print(ops.remove(run, force=a.force, purge=a.purge), a.json)


# -- chvm -------------------------------------------------------------------------------------

CHVM_HELP = """\
Change virtual machines.

Sizes: bare numbers are GiB for -a and --resize, MiB for --mem. --cpus needs the VM off;
--mem is applied live when the VM runs, up to its maximum. qcow2 disks cannot shrink.

With no option, the table settings (vm.memory, vm.cpus, ...) are pushed to the VM, as
xCAT's chvm does for engine-managed VMs.

examples:
  chvm vm1 -a 10G
  chvm vm1 -d vdb                 # detach; the volume stays (rmvm -p does not delete it)
  chvm vm1 --resize vda=30G
  chvm vm1 --cpus 4 --mem 8G
  chvm vm1 --cdrom /install/iso/rhel9.iso
""" + EXIT


@main_wrapper
def chvm(argv: list[str]) -> int:
    from nodemgr.plugins.base import VmChange
    from nodemgr.units import parse_size_mib, parse_sizes_mib

    p = _vm_parser("chvm", CHVM_HELP, argv)
    p.add_argument("-a", dest="add", metavar="SIZE[,SIZE...]",
                   help="add disks (in the rightmost vm.storage location)")
    p.add_argument("-d", dest="detach", metavar="DEV[,DEV...]",
                   help="detach disks, keeping their storage (vdb, sdc, ...)")
    p.add_argument("-p", dest="purge", metavar="DEV[,DEV...]", help="detach and purge disks")
    p.add_argument("--resize", metavar="DEV=SIZE[,...]", help="grow disks")
    p.add_argument("--cpus", metavar="N", help="virtual CPUs; written to vm.cpus")
    p.add_argument("--mem", metavar="SIZE", help="memory; written to vm.memory")
    p.add_argument("--cdrom", "--optical", "--dvd", dest="cdrom", metavar="PATH",
                   help="insert an ISO image in the cdrom drive")
    p.add_argument("--eject", action="store_true", help="eject the cdrom")
    a = p.parse_args(argv)
    if a.add and (a.purge or a.detach):
        raise UsageError(f"-a and {'-p' if a.purge else '-d'} cannot be used together")
    if a.cdrom and a.eject:
        raise UsageError("--cdrom and --eject cannot be used together")
    change = VmChange(cdrom=a.cdrom, eject=a.eject, cpus=_cpus(a.cpus),
                      add_disks_mib=parse_sizes_mib(a.add, "G") if a.add else [],
                      remove_disks=_devs(a.purge), detach_disks=_devs(a.detach))
    both = set(change.detach_disks) & set(change.remove_disks)
    if both:
        raise UsageError(f"{','.join(sorted(both))}: give a disk to -d or to -p, not both")
    for item in (a.resize or "").split(",") if a.resize else []:
        dev, sep, size = item.partition("=")
        if not sep or not dev.strip():
            raise UsageError(f"invalid --resize '{item}' (use DEV=SIZE, e.g. vda=30G)")
        change.resize[dev.strip()] = parse_size_mib(size, "G")
    if a.mem is not None:
        change.memory_mib = parse_size_mib(a.mem, "M")
    change.push = not any((a.add, a.purge, a.detach, a.resize, a.cpus, a.mem, a.cdrom,
                           a.eject))
    from nodemgr.vm import ops

    run = _run("chvm", a.noderange, argv)
    return _print(ops.change(run, change), a.json)


# -- lsvm -------------------------------------------------------------------------------------

LSVM_HELP = """\
List virtual machines.

For a hypervisor node: every VM defined on it, running or not, one line each,
"host: vmname: state". For a manager node (the node VMs name in vm.mgr): every VM it
manages, the same way. For a VM node: its details (Id, Host, OS, Memory, CPU, State,
disks), one "node: key: value" line each.

A node is taken as a hypervisor or manager when it has no vm.host (or vm.mgr) and has a
hypervisor row or a hostconn.uri. Its driver: nodehm.power/nodehm.mgt, else that of
hypervisor.type, else that of the VMs naming it in vm.mgr.

examples:
  lsvm kvmhost1
  lsvm -a kvmhost1              # with uuid, memory, cpus, MACs and disks of each VM
  lsvm engine1                  # every VM of that manager
  lsvm vm1,vm2
""" + EXIT


@main_wrapper
def lsvm(argv: list[str]) -> int:
    p = _vm_parser("lsvm", LSVM_HELP, argv)
    p.add_argument("-a", "--all", action="store_true",
                   help="for a host or manager: each VM's details too")
    a = p.parse_args(argv)
    from nodemgr.vm import ops

    run = _run("lsvm", a.noderange, argv, audit=False)
    return _print(ops.listing(run, details=a.all), a.json)


# -- rmigrate ----------------------------------------------------------------------------------

RMIGRATE_HELP = """\
Live-migrate virtual machines to another hypervisor.

The target is the given hypervisor node, else the host in vm.migrationdest (a noderange)
with the most free memory, skipping the current host and unreachable ones; for a VM whose
manager places VMs itself, with neither, the manager chooses the host. vm.host is changed
only after the VM is verified running on the target. Migrations run one at a time, as
xCAT does. Shared storage (or diskless guests) is a prerequisite.

examples:
  rmigrate vm1 kvmhost2
  rmigrate 'vm[1-4]'            # choose from vm.migrationdest
""" + EXIT


@main_wrapper
def rmigrate(argv: list[str]) -> int:
    p = _vm_parser("rmigrate", RMIGRATE_HELP, argv)
    p.add_argument("target", nargs="?", help="the hypervisor node to move to")
    p.add_argument("-f", "--force", action="store_true",
                   help="when the source hypervisor is unreachable, just record the VM on "
                        "the target (vm.host) so it can be started there")
    a = p.parse_args(argv)
    from nodemgr.vm import ops

    run = _run("rmigrate", a.noderange, argv)
    return _print(ops.migrate(run, a.target, force=a.force), a.json)


# -- revacuate ----------------------------------------------------------------------------------

REVACUATE_HELP = """\
Empty hypervisors for maintenance: live-migrate every running VM off each host.

Each VM goes to the host of its vm.migrationdest with the most free memory that has room
for it (what this run already sent there counts); a manager that places VMs itself
chooses when vm.migrationdest is unset. One line per VM ("vm: migrated to host2" or its
error), then one per host: "host: no running VM", or "host: Error: still running: vm
(why)". Stopped VMs stay defined where they are.

examples:
  revacuate kvmhost1
  revacuate 'kvmhost[1-2]' --json
""" + EXIT


@main_wrapper
def revacuate(argv: list[str]) -> int:
    p = _vm_parser("revacuate", REVACUATE_HELP, argv)
    a = p.parse_args(argv)
    from nodemgr.vm import ops

    run = _run("revacuate", a.noderange, argv)
    return _print(ops.evacuate(run), a.json)


# -- clonevm ------------------------------------------------------------------------------------

CLONEVM_HELP = """\
Make a master from a VM, or VMs from a master.

-t MASTER makes master MASTER from the (single, normally powered-off) VM: its disks are
copied to <MASTER>.<dev>.<fmt>; unless -d, the VM is rebased onto the copies and
vm.master is set. Writes the vmmaster and kvm_masterdata rows.
-b MASTER creates each VM from master MASTER: qcow2 disks backed by the master's (thin),
or full copies with -d; new MACs and UUIDs; sets vm.master (thin only). A VM without
vm.nics / vm.storage takes the master's; a VM, vm.memory and vm.cpus unset, keeps the
master's size.

examples:
  clonevm vm1 -t rhel9-gold
  clonevm 'vm[10-19]' -b rhel9-gold
""" + EXIT


@main_wrapper
def clonevm(argv: list[str]) -> int:
    p = _vm_parser("clonevm", CLONEVM_HELP, argv)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("-t", dest="make", metavar="MASTER", help="make a master from the VM")
    g.add_argument("-b", dest="base", metavar="MASTER", help="create VMs from the master")
    p.add_argument("-d", "--detached", action="store_true",
                   help="full copies, no dependency on the master")
    p.add_argument("-f", "--force", action="store_true",
                   help="-t: allow a running VM (implies -d)")
    a = p.parse_args(argv)
    from nodemgr.vm import ops

    run = _run("clonevm", a.noderange, argv)
    if a.make:
        return _print(ops.make_master(run, a.make, detached=a.detached, force=a.force),
                      a.json)
    return _print(ops.clone(run, a.base, detached=a.detached), a.json)


# -- rvitals, rinv, rsetboot -------------------------------------------------------------------

RVITALS_HELP = """\
Show the use of virtual machines: CPU (% over the interval, 100 = one vCPU busy),
memory used / available (MiB), disk and network I/O rates (bytes/s).

Items: cpu, mem, disk, net, all (default). A figure the VM's family cannot give is said
on its line; a node that gave none of the asked figures fails (exit 1).

examples:
  rvitals vm1
  rvitals 'vm[1-4]' cpu mem --interval 5
""" + EXIT


@main_wrapper
def rvitals(argv: list[str]) -> int:
    p = _vm_parser("rvitals", RVITALS_HELP, argv)
    p.add_argument("items", nargs="*", default=["all"], metavar="cpu|mem|disk|net|all")
    p.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                   help="seconds between the two samples rates come from (default 1)")
    a = p.parse_args(argv)
    if not 0 < a.interval <= 300:
        raise UsageError(f"invalid --interval '{a.interval:g}' (0 < seconds <= 300)")
    from nodemgr.vm import ops

    run = _run("rvitals", a.noderange, argv, audit=False)
    return _print(ops.vitals(run, a.items, a.interval), a.json)


RINV_HELP = """\
Show the inventory of virtual machines: UUID, CPUs, memory (MiB), disks (size in MiB,
image), NICs (MAC, network, model) and IP addresses with where each was found (agent:
the guest agent; lease: the host's DHCP server; arp: the host's neighbour table;
bootparams: the address the VM was given; engine: its manager).

Items: uuid, cpu, mem, disk, nic, ip, all (default).

examples:
  rinv vm1
  rinv 'vm[1-4]' ip
""" + EXIT


@main_wrapper
def rinv(argv: list[str]) -> int:
    p = _vm_parser("rinv", RINV_HELP, argv)
    p.add_argument("items", nargs="*", default=["all"],
                   metavar="all|uuid|cpu|mem|disk|nic|ip")
    a = p.parse_args(argv)
    from nodemgr.vm import ops

    run = _run("rinv", a.noderange, argv, audit=False)
    return _print(ops.inventory(run, a.items), a.json)


RSETBOOT_HELP = """\
Set the next boot device of virtual machines: net (network, PXE: how a VM gets
installed by nodeset), hd, cd, or default (vm.bootorder). Takes effect from the next
start; the stored definition is updated. Prints the device set.

examples:
  rsetboot vm1 net && rpower vm1 boot
  rsetboot 'vm[1-4]' default
""" + EXIT


@main_wrapper
def rsetboot(argv: list[str]) -> int:
    p = _vm_parser("rsetboot", RSETBOOT_HELP, argv)
    p.add_argument("device", metavar="net|hd|cd|default")
    a = p.parse_args(argv)
    from nodemgr.vm import ops

    run = _run("rsetboot", a.noderange, argv)
    return _print(ops.set_boot(run, a.device), a.json)


# -- consoles -------------------------------------------------------------------------------------

GETCONS_HELP = """\
Print how to reach each VM's console: "method: serial" and the command that opens it by
hand, or for a VM with a remote display only, its VNC/SPICE server, port and one-time
password (as getrvidparms).

examples:
  getcons vm1
""" + EXIT

GETRVIDPARMS_HELP = """\
Print the remote display (VNC or SPICE) parameters of VMs: method, server, vidport and a
one-time password where the family issues one. A VM whose family has only a serial
console fails with the command for it.

examples:
  getrvidparms vm1
""" + EXIT


@main_wrapper
def getcons(argv: list[str]) -> int:
    p = _vm_parser("getcons", GETCONS_HELP, argv)
    a = p.parse_args(argv)
    from nodemgr.vm import ops

    return _print(ops.consoles(_run("getcons", a.noderange, argv, audit=False)), a.json)


@main_wrapper
def getrvidparms(argv: list[str]) -> int:
    p = _vm_parser("getrvidparms", GETRVIDPARMS_HELP, argv)
    a = p.parse_args(argv)
    from nodemgr.vm import ops

    return _print(ops.consoles(_run("getrvidparms", a.noderange, argv), kind="display"),
                  a.json)


RCONS_HELP = """\
Open the serial console of one VM. On a terminal, keystrokes go to the guest until the
escape sequence Ctrl-E c . (xCAT's conserver escape) or Ctrl-]; otherwise standard input
is sent to the guest and what it prints is copied to standard output until the console
closes or --timeout seconds pass without output.

examples:
  rcons vm1
  rcons vm1 --timeout 10 < /dev/null > vm1-boot.log
""" + EXIT


@main_wrapper
def rcons(argv: list[str]) -> int:
    p = _vm_parser("rcons", RCONS_HELP, argv)
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="leave after this many seconds without output")
    a = p.parse_args(argv)
    from nodemgr.cli import console
    from nodemgr.vm import ops

    run = _run("rcons", a.noderange, argv)
    if len(run.nodes) != 1:
        raise UsageError("rcons opens the console of exactly one node")
    drv, cons = ops.open_console(run, run.nodes[0])
    try:
        return console.attach(cons.stream, timeout=a.timeout)
    finally:
        cons.stream.close()
        drv.close()


# -- rscan ----------------------------------------------------------------------------------------

RSCAN_HELP = """\
List the VMs on hypervisors or managers, and adopt them as nodes.

Prints xCAT's table per host: type name hypervisor id cpu memory nic disk (memory in
MiB, id the VM's UUID). -w writes a node definition (nodelist groups=vm,all,
nodehm.mgt, vm.host or vm.mgr, vm.memory, vm.cpus, mac.mac, vpd.uuid) for every VM
that is not a node yet; a VM already defined on this host is left alone unless -u; a
VM whose name is a node of another host is an error line and is not written.

examples:
  rscan kvmhost1
  rscan kvmhost1 -w
  rscan engine1 -z > vms.stanza     # lsdef -z form, for mkdef -z
""" + EXIT


@main_wrapper
def rscan(argv: list[str]) -> int:
    p = _vm_parser("rscan", RSCAN_HELP, argv)
    p.add_argument("-w", "--write", action="store_true",
                   help="define the VMs not yet known as nodes")
    p.add_argument("-u", "--update", action="store_true",
                   help="with -w: also rewrite VMs already defined on this host")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("-x", dest="xml", action="store_true", help="print XML")
    fmt.add_argument("-z", dest="stanza", action="store_true",
                     help="print the lsdef -z stanza of each VM")
    a = p.parse_args(argv)
    if a.update and not a.write:
        raise UsageError("-u updates what -w writes: give -w too")
    from nodemgr.vm import ops

    run = _run("rscan", a.noderange, argv, audit=a.write)
    results = ops.scan(run, write=a.write, update=a.update)
    if not (a.xml or a.stanza):
        return _print(results, a.json)
    from nodemgr.vm import report

    out = Reporter()
    for r in results:
        if not r.ok or "vms" not in r.data:
            out.result(r)
            continue
        out.line(report.scan_xml(r) if a.xml else report.scan_stanza(r))
    return out.exit_code
