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
from nodemgr.cli.vmhelp import (
    CHVM_HELP,
    CLONEVM_HELP,
    GETCONS_HELP,
    GETRVIDPARMS_HELP,
    LSVM_HELP,
    MKVM_HELP,
    RCONS_HELP,
    REVACUATE_HELP,
    RINV_HELP,
    RMIGRATE_HELP,
    RMVM_HELP,
    RPOWER_HELP,
    RSCAN_HELP,
    RSETBOOT_HELP,
    RVITALS_HELP,
    families,
)
from nodemgr.errors import UsageError

POWER_WORDS = ("on", "off", "softoff", "reset", "boot", "stat", "state", "status", "suspend",
               "resume")


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
    p = parser(name, text + (families(command or name) if wants_help else ""))
    p.add_argument("noderange")
    p.add_argument("--json", action="store_true", help="print one JSON object per node")
    return p


def _cpus(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise UsageError(f"invalid --cpus '{value}' (a whole number of at least 1)")
    return int(value)


def _devs(value: str | None) -> list[str]:
    return [d.strip() for d in (value or "").split(",") if d.strip()]


# -- rpower ------------------------------------------------------------------------------------


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


@main_wrapper
def revacuate(argv: list[str]) -> int:
    p = _vm_parser("revacuate", REVACUATE_HELP, argv)
    a = p.parse_args(argv)
    from nodemgr.vm import ops

    run = _run("revacuate", a.noderange, argv)
    return _print(ops.evacuate(run), a.json)


# -- clonevm ------------------------------------------------------------------------------------


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


@main_wrapper
def rinv(argv: list[str]) -> int:
    p = _vm_parser("rinv", RINV_HELP, argv)
    p.add_argument("items", nargs="*", default=["all"],
                   metavar="all|uuid|cpu|mem|disk|nic|ip")
    a = p.parse_args(argv)
    from nodemgr.vm import ops

    run = _run("rinv", a.noderange, argv, audit=False)
    return _print(ops.inventory(run, a.items), a.json)


@main_wrapper
def rsetboot(argv: list[str]) -> int:
    p = _vm_parser("rsetboot", RSETBOOT_HELP, argv)
    p.add_argument("device", metavar="net|hd|cd|default")
    a = p.parse_args(argv)
    from nodemgr.vm import ops

    run = _run("rsetboot", a.noderange, argv)
    return _print(ops.set_boot(run, a.device), a.json)


# -- consoles -------------------------------------------------------------------------------------


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
