"""VM commands: mkvm, rmvm, chvm, lsvm, clonevm, rpower, rmigrate.

Each command: parse arguments, expand the noderange, check policy, build targets from the
tables (``nodemgr.vmspec``), run them through ``nodemgr.dispatch`` and print results in
noderange order, writing each node's table updates as its result arrives.
Nothing here talks to a hypervisor or parses a table column itself.
"""

from __future__ import annotations

import argparse
import getpass
import time
from collections.abc import Callable, Iterable, Iterator

from nodemgr.cli.common import main_wrapper, open_store, parser, prepare
from nodemgr.cli.output import Reporter
from nodemgr.errors import UsageError

POWER_WORDS = ("on", "off", "softoff", "reset", "boot", "stat", "state", "status", "suspend",
               "resume")


class Ctx:
    """What every VM command needs after argument parsing."""

    def __init__(self, command: str, noderange_text: str, args: list[str], json_mode: bool):
        self.command = command
        self.store = open_store()
        self.resolver, self.nodes = prepare(self.store, command, noderange_text, args,
                                            audit=command != "lsvm" and args != ["stat"])
        self.out = Reporter(json_mode=json_mode)
        self.maxp = _int(self.store.site("vmmaxp"), 64)
        self.timeout = _float(self.store.site("vmtimeout"), 60.0)

    def resolved(self):
        from nodemgr.vmspec import Resolved

        return Resolved(self.resolver, self.nodes)

    def write(self, node: str, updates: dict) -> None:
        """Write one node's table updates in one transaction."""
        from nodemgr.vmspec import apply_updates

        if updates:
            with self.store.transaction():
                apply_updates(self.store, node, updates)

    def stream(self, targets, call: Callable, local: dict | None = None, *,
               maxp: int | None = None) -> Iterator:
        """Results in node order: dispatched targets merged with locally decided ones."""
        from nodemgr import dispatch

        local = local or {}
        remote = [t for t in targets if t.node not in local]
        it = iter(dispatch.run(remote, call, maxp=maxp or self.maxp, timeout=self.timeout))
        for t in targets:
            yield local[t.node] if t.node in local else next(it)

    def report(self, results: Iterable, extra: Callable | None = None) -> int:
        """Print each result; on success write its updates (plus ``extra(result)``)."""
        for r in results:
            if r.ok:
                updates = dict(r.updates)
                if extra:
                    updates.update(extra(r) or {})
                self.write(r.node, updates)
            self.out.result(r)
        return self.out.exit_code


def _int(value, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _float(value, default: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if number > 0 else default


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object per node")


def _result(node: str, message: str = "", ok: bool = True, **updates):
    from nodemgr.plugins.base import NodeResult

    return NodeResult(node=node, ok=ok, message=message, updates=updates)


EXIT = """
exit status:
  0  every node succeeded
  1  a node failed (its line on stderr reads "node: Error: ..."), or the command
     was refused (bad noderange, bad option, policy)
"""

# -- rpower ------------------------------------------------------------------------------------

RPOWER_HELP = """\
Control the power of virtual machines.

  on        start the VM (already on: prints "on")
  off       hard power off (libvirt destroy)
  softoff   ask the guest to shut down (ACPI); prints the state at that moment
  reset     hard reset; prints "reset"
  boot      off -> "off on"; on -> "on reset"
  suspend   pause the VM -> "suspended";  resume -> "on"
  stat      print the power state: on, off, suspended (also: state, status)

Output is one line per node, "node: <state>", in noderange order. on/off/boot/reset set
nodelist.status to powering-on / powering-off for nodes whose state changed.
The driver comes from nodehm.power, else nodehm.mgt (kvm, libvirt, ...); the hypervisor
from vm.host. A VM with no vm.host is reported "off" by stat. A crashed Xen domain
(kept by on_crash=preserve) is destroyed and started again by "on".

A hypervisor or manager node (no vm.host, and a hypervisor row or hostconn.uri) is not
a VM: stat connects to it and prints "on" when it answers (a RHEV-H host: its state on
the engine, e.g. maintenance), else its one-line error; other actions are refused.

examples:
  rpower vm1,vm2 stat
  rpower 'vm[01-20]' boot
  rpower compute,-vm5 off --json
""" + EXIT


@main_wrapper
def rpower(argv: list[str]) -> int:
    p = parser("rpower", RPOWER_HELP)
    p.add_argument("noderange")
    p.add_argument("action", metavar="on|off|softoff|reset|boot|suspend|resume|stat")
    _common(p)
    a = p.parse_args(argv)
    if a.action not in POWER_WORDS:
        raise UsageError(f"Unsupported power directive '{a.action}'")
    action = "stat" if a.action in ("state", "status") else a.action
    ctx = Ctx("rpower", a.noderange, [a.action], a.json)
    from nodemgr.vmspec import vm_targets

    res = ctx.resolved()
    targets = vm_targets(res, need_host=False)
    adopted = _adopt_hosts(ctx, res, targets) if action in ("on", "boot") else {}
    from nodemgr.vmspec import host_target, is_host_node

    local = {}
    for i, t in enumerate(targets):
        if t.endpoint is None and is_host_node(res, t.node):
            if action == "stat":
                targets[i] = host_target(res, t.node)  # spec None: the host itself
            else:
                local[t.node] = _result(t.node, f"{t.node} is a hypervisor host, not a VM "
                                        "(rpower stat only)", ok=False)
        elif t.endpoint is None and t.error is None:
            local[t.node] = (_result(t.node, "off") if action == "stat"
                             else _result(t.node, "vm.host is not set", ok=False))

    def call(drv, group):
        from nodemgr.dispatch import error_message
        from nodemgr.plugins.base import DriverError, NodeResult

        for t in group:
            if t.spec is None:
                try:
                    state = drv.host_power()
                except DriverError as exc:
                    yield NodeResult(t.node, ok=False, message=error_message(exc))
                    continue
                yield NodeResult(t.node, message=state, data={"state": state, "hypervisor": True})
        vms = [t.spec for t in group if t.spec is not None]
        if vms:
            yield from drv.power(vms, action)

    results = ctx.stream(targets, call, local)
    return ctx.report(results, lambda r: adopted.get(r.node))


# -- mkvm -------------------------------------------------------------------------------------

MKVM_HELP = """\
Create virtual machines from their table definitions.

Reads vm.host, vm.memory (MiB), vm.cpus, vm.nics, vm.nicmodel, vm.storage,
vm.storagemodel, vm.storageformat, vm.bootorder, mac.mac and vpd.uuid. Missing MACs and
UUIDs are generated and written to the mac and vpd tables; the domain definition is kept
in kvm_nodedata. Domains are persistent (defined on the hypervisor). A VM without vm.host
goes to the host of vm.migrationdest with the most free memory, written to vm.host.

options:
  -s, --size SIZE[,SIZE...]  create one disk per size in the first vm.storage location,
                             named <node>.<dev>.<format>; bare numbers are GiB, suffixes
                             K, M, G, T accepted (20, 20G, 20480M)
  --mem SIZE                 memory (bare number = MiB; 4G accepted); written to vm.memory
  --cpus N                   virtual CPUs; written to vm.cpus
  -f, --force                replace an existing definition and existing disk files
  --bootparams KEY=VALUE ...  parameters the guest reads at first boot, kept in the
                             vmbootparams table (replacing what was there): ip
                             (address/prefix or dhcp: how the VM's address is set),
                             gateway, dns, hostname, any other key. Oracle VM: written
                             to the VM's Bootparams.img; libvirt: a cloud-init NoCloud
                             disk (label cidata) attached as the cdrom

Silent on success (like xCAT).

examples:
  mkvm vm1 -s 20G
  mkvm 'vm[1-4]' -s 10G,2G --mem 2048 --cpus 2
  mkvm web1 --bootparams ip=10.0.0.5/24 gateway=10.0.0.1 dns=10.0.0.1 role=web
""" + EXIT


@main_wrapper
def mkvm(argv: list[str]) -> int:
    from nodemgr.units import parse_size_mib, parse_sizes_mib

    p = parser("mkvm", MKVM_HELP)
    p.add_argument("noderange")
    p.add_argument("-s", "--size", dest="size")
    p.add_argument("--mem")
    p.add_argument("--cpus")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--bootparams", nargs="+", action="extend", metavar="KEY=VALUE")
    _common(p)
    a = p.parse_args(argv)
    boot = None
    if a.bootparams:
        from nodemgr.bootparams import format_column, parse_pairs

        boot = parse_pairs(a.bootparams)
    sizes = parse_sizes_mib(a.size, "G") if a.size else []
    mem = parse_size_mib(a.mem, "M") if a.mem else None
    if a.cpus is not None and (not a.cpus.isdigit() or int(a.cpus) < 1):
        raise UsageError(f"invalid --cpus '{a.cpus}' (a whole number of at least 1)")
    cpus = int(a.cpus) if a.cpus else None
    ctx = Ctx("mkvm", a.noderange, argv, a.json)
    from nodemgr.vmspec import MANAGER_DRIVERS, fill_identity, vm_targets

    res = ctx.resolved()
    targets = vm_targets(res, disk_sizes_mib=sizes, memory_mib=mem, cpus=cpus, need_host=False)
    adopted = _adopt_hosts(ctx, res, targets)
    for t in targets:
        if t.endpoint is None and t.error is None:
            t.error = ("vm.mgr is not set (the managing engine)" if t.driver in MANAGER_DRIVERS
                       else "vm.host is not set (and no vm.migrationdest to choose from)")
    identity = {}
    for t in targets:
        if t.spec is not None and t.error is None:
            # a manager (RHEV-M) assigns MACs and the VM id itself; its driver returns them
            identity[t.node] = ({} if t.driver in MANAGER_DRIVERS
                                else fill_identity(res, t.spec))
            if mem:
                identity[t.node]["vm.memory"] = str(mem)
            if cpus:
                identity[t.node]["vm.cpus"] = str(cpus)
            if boot is not None:
                t.spec.bootparams = dict(boot)
                identity[t.node]["vmbootparams.params"] = format_column(boot)
            identity[t.node].update(adopted.get(t.node, {}))
    results = ctx.stream(targets, lambda drv, group: drv.create([t.spec for t in group],
                                                                force=a.force))
    return ctx.report(results, lambda r: identity.get(r.node))


# -- rmvm -------------------------------------------------------------------------------------

RMVM_HELP = """\
Remove virtual machines from their hypervisors.

A running VM is refused unless -f is given. The node's definition in the tables is kept;
its stored domain definition (kvm_nodedata) is dropped.

options:
  -f, --force   power the VM off first
  -p, --purge   also delete its disk volumes (not cdroms, raw-format or block devices;
                the VM's own boot-parameter disk, <node>.cidata.iso, is deleted on Xen)

Silent on success.

examples:
  rmvm vm1
  rmvm vm1,vm2 -f -p
""" + EXIT


@main_wrapper
def rmvm(argv: list[str]) -> int:
    p = parser("rmvm", RMVM_HELP)
    p.add_argument("noderange")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-p", "--purge", action="store_true")
    _common(p)
    a = p.parse_args(argv)
    ctx = Ctx("rmvm", a.noderange, argv, a.json)
    from nodemgr.vmspec import vm_targets

    targets = vm_targets(ctx.resolved())
    results = ctx.stream(targets, lambda drv, group: drv.remove(
        [t.spec for t in group], force=a.force, purge=a.purge))

    def drop(r):
        ctx.store.delete("kvm_nodedata", {"node": r.node})
        return {}

    for r in results:
        if r.ok:
            r.updates.pop("kvm_nodedata.xml", None)
            with ctx.store.transaction():
                drop(r)
                ctx.write(r.node, r.updates)
        ctx.out.result(r)
    return ctx.out.exit_code


# -- chvm -------------------------------------------------------------------------------------

CHVM_HELP = """\
Change virtual machines.

options:
  -a SIZE[,SIZE...]        add disks (in the rightmost vm.storage location; bare number = GiB)
  -d DEV[,DEV...]          detach disks, keeping their storage (vdb, sdc, ...)
  -p DEV[,DEV...]          detach and purge disks
  --resize DEV=SIZE[,...]  grow disks (bare number = GiB); qcow2 cannot shrink
  --cpus N                 virtual CPUs (VM must be off); written to vm.cpus
  --mem SIZE               memory (bare number = MiB; live when running, up to the
                           maximum); written to vm.memory
  --cdrom PATH             insert an ISO image in the cdrom drive
  --eject                  eject the cdrom

With no option, the table settings (vm.memory, vm.cpus, ...) are pushed to the VM, as
xCAT's chvm does for RHEV.

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

    p = parser("chvm", CHVM_HELP)
    p.add_argument("noderange")
    p.add_argument("-a", dest="add")
    p.add_argument("-p", dest="purge")
    p.add_argument("-d", dest="detach")
    p.add_argument("--resize")
    p.add_argument("--cpus")
    p.add_argument("--mem")
    p.add_argument("--cdrom", "--optical", "--dvd", dest="cdrom")
    p.add_argument("--eject", action="store_true")
    _common(p)
    a = p.parse_args(argv)
    if a.add and (a.purge or a.detach):
        raise UsageError(f"-a and {'-p' if a.purge else '-d'} cannot be used together")
    if a.cdrom and a.eject:
        raise UsageError("--cdrom and --eject cannot be used together")
    change = VmChange()
    updates = {}
    if a.add:
        change.add_disks_mib = parse_sizes_mib(a.add, "G")
    if a.purge:
        change.remove_disks = [d.strip() for d in a.purge.split(",") if d.strip()]
    if a.detach:
        change.detach_disks = [d.strip() for d in a.detach.split(",") if d.strip()]
        both = set(change.detach_disks) & set(change.remove_disks)
        if both:
            raise UsageError(f"{','.join(sorted(both))}: give a disk to -d or to -p, not both")
    if a.resize:
        for item in a.resize.split(","):
            dev, sep, size = item.partition("=")
            if not sep or not dev.strip():
                raise UsageError(f"invalid --resize '{item}' (use DEV=SIZE, e.g. vda=30G)")
            change.resize[dev.strip()] = parse_size_mib(size, "G")
    if a.cpus is not None:
        if not a.cpus.isdigit() or int(a.cpus) < 1:
            raise UsageError(f"invalid --cpus '{a.cpus}' (a whole number of at least 1)")
        change.cpus = int(a.cpus)
        updates["vm.cpus"] = a.cpus
    if a.mem is not None:
        change.memory_mib = parse_size_mib(a.mem, "M")
        updates["vm.memory"] = str(change.memory_mib)
    change.cdrom = a.cdrom
    change.eject = a.eject
    change.push = not any((a.add, a.purge, a.detach, a.resize, a.cpus, a.mem, a.cdrom,
                           a.eject))
    ctx = Ctx("chvm", a.noderange, argv, a.json)
    from nodemgr.vmspec import vm_targets

    targets = vm_targets(ctx.resolved())
    results = ctx.stream(targets, lambda drv, group: drv.change([t.spec for t in group],
                                                                change))
    return ctx.report(results, lambda r: dict(updates))


# -- lsvm -------------------------------------------------------------------------------------

LSVM_HELP = """\
List virtual machines.

For a hypervisor node: every VM defined on it, running or not, one line each,
"host: vmname: state". For a manager node (RHEV-M, OVM Manager: the node VMs name in
vm.mgr): every VM it manages, the same way. For a VM node: its details (Id, Host, OS,
Memory, CPU, State, disks), one "node: key: value" line each.

A node is taken as a hypervisor or manager when it has no vm.host (or vm.mgr) and has a
hypervisor row or a hostconn.uri. Its driver: nodehm.power/nodehm.mgt, else that of
hypervisor.type, else that of the VMs naming it in vm.mgr.

examples:
  lsvm kvmhost1
  lsvm rhevm1                   # every VM of that engine
  lsvm vm1,vm2
""" + EXIT


@main_wrapper
def lsvm(argv: list[str]) -> int:
    p = parser("lsvm", LSVM_HELP)
    p.add_argument("noderange")
    _common(p)
    a = p.parse_args(argv)
    ctx = Ctx("lsvm", a.noderange, argv, a.json)
    from nodemgr.plugins.base import NodeResult
    from nodemgr.vmspec import host_target, is_host_node, vm_targets

    res = ctx.resolved()
    targets = []
    for t in vm_targets(res, need_host=False):
        if t.endpoint is not None:
            targets.append(t)  # a VM on a known host
            continue
        if is_host_node(res, t.node):
            targets.append(host_target(res, t.node))  # a hypervisor or a manager
        else:
            t.error = t.error or "vm.host is not set"
            targets.append(t)

    def call(drv, group):
        for t in group:
            if t.spec is None:
                vms = sorted(drv.list_vms(), key=lambda v: v.name)
                yield NodeResult(t.node, message="\n".join(f"{v.name}: {v.state}" for v in vms),
                                 data={"vms": [{"name": v.name, "state": v.state} for v in vms]})
            else:
                yield from drv.describe([t.spec])

    return ctx.report(ctx.stream(targets, call))


# -- rmigrate ----------------------------------------------------------------------------------

RMIGRATE_HELP = """\
Live-migrate virtual machines to another hypervisor.

The target is the given hypervisor node, else the host in vm.migrationdest (a noderange)
with the most free memory, skipping the current host and unreachable ones; for a VM
managed by RHEV-M (nodehm.mgt=rhevm) with neither, the engine chooses the host. vm.host is
changed only after the VM is verified running on the target. Migrations run one at a
time, as xCAT does. Shared storage (or diskless guests) is a prerequisite.

options:
  -f, --force   when the source hypervisor is unreachable, just record the VM on the
                target (vm.host) so it can be started there

examples:
  rmigrate vm1 kvmhost2
  rmigrate 'vm[1-4]'            # choose from vm.migrationdest
""" + EXIT


@main_wrapper
def rmigrate(argv: list[str]) -> int:
    p = parser("rmigrate", RMIGRATE_HELP)
    p.add_argument("noderange")
    p.add_argument("target", nargs="?")
    p.add_argument("-f", "--force", action="store_true")
    _common(p)
    a = p.parse_args(argv)
    ctx = Ctx("rmigrate", a.noderange, argv, a.json)
    from nodemgr.vmspec import MANAGER_DRIVERS, host_endpoint, vm_targets

    res = ctx.resolved()
    if a.target:
        from nodemgr import noderange

        noderange.expand(a.target, ctx.resolver)  # the target must be a known node
    targets = vm_targets(res)
    dest, local = {}, {}
    for t in targets:
        if t.error or t.endpoint is None:
            continue
        target = a.target or _pick_host(ctx, res, t.node, exclude=t.endpoint.host)
        if not target and t.driver in MANAGER_DRIVERS and \
                not res.attrs[t.node].get("vm.migrationdest"):
            dest[t.node] = None  # no target named: the manager (RHEV-M) chooses the host
        elif not target:
            local[t.node] = _result(t.node, "Unable to identify a suitable target host for "
                                    f"guest {t.node}", ok=False)
        elif target == t.endpoint.host:
            local[t.node] = _result(t.node, f"Guest is already on host {target}")
        else:
            dest[t.node] = host_endpoint(res, target, t.driver)

    def call(drv, group):
        for t in group:
            yield from drv.migrate([t.spec], dest[t.node])

    results = []
    for r in ctx.stream(targets, call, local, maxp=1):
        if not r.ok and a.force and dest.get(r.node) and r.data.get("error") in ("Unreachable",
                                                                              "Timeout"):
            r = _result(r.node, f"migrated to {dest[r.node].host}",
                        **{"vm.host": dest[r.node].host})
        results.append(r)
    return ctx.report(results)


def _adopt_hosts(ctx: Ctx, res, targets) -> dict[str, dict[str, str]]:
    """For VMs without ``vm.host`` but with ``vm.migrationdest``, choose the destination
    host with the most free memory (as xCAT's mkvm and rpower on do) and point the target
    at it. Returns node -> ``{"vm.host": host}`` to write when the operation succeeds."""
    from nodemgr.vmspec import MANAGER_DRIVERS, host_endpoint

    adopted = {}
    for t in targets:
        if (t.endpoint is not None or t.error is not None or t.spec is None
                or t.driver in MANAGER_DRIVERS or not res.attrs[t.node].get("vm.migrationdest")):
            continue
        host = _pick_host(ctx, res, t.node, exclude=None)
        if host is None:
            t.error = f"Unable to identify a suitable target host for guest {t.node}"
            continue
        t.endpoint = host_endpoint(res, host, t.driver)
        adopted[t.node] = {"vm.host": host}
    return adopted


def _pick_host(ctx: Ctx, res, node: str, exclude: str | None) -> str | None:
    """The host of ``vm.migrationdest`` with the most free memory (reachable ones only)."""
    from nodemgr import dispatch, noderange
    from nodemgr.plugins.base import NodeResult
    from nodemgr.vmspec import host_target

    dests = res.attrs[node].get("vm.migrationdest")
    if not dests:
        return None
    hosts = [h for h in noderange.expand(dests, ctx.resolver) if h != exclude]
    targets = [host_target(res, h) for h in hosts]

    def call(drv, group):
        for t in group:
            yield NodeResult(t.node, data={"free": drv.host_free_memory_mib()})

    best, best_free = None, -1
    for r in dispatch.run(targets, call, maxp=ctx.maxp, timeout=min(ctx.timeout, 15.0)):
        if r.ok and r.data.get("free", -1) > best_free:
            best, best_free = r.node, r.data["free"]
    return best


# -- clonevm ------------------------------------------------------------------------------------

CLONEVM_HELP = """\
Make a master from a VM, or VMs from a master.

  -t MASTER   make master MASTER from the (single, normally powered-off) VM: its disks are
              copied to <MASTER>.<dev>.<fmt>; unless -d, the VM is rebased onto the copies
              and vm.master is set. Writes the vmmaster and kvm_masterdata rows.
  -b MASTER   create each VM from master MASTER: qcow2 disks backed by the master's
              (thin), or full copies with -d; new MACs and UUIDs; sets vm.master (thin only).
  -d, --detached   full copies, no dependency on the master
  -f, --force      -t: allow a running VM (implies -d)

examples:
  clonevm vm1 -t rhel9-gold
  clonevm 'vm[10-19]' -b rhel9-gold
""" + EXIT


@main_wrapper
def clonevm(argv: list[str]) -> int:
    p = parser("clonevm", CLONEVM_HELP)
    p.add_argument("noderange")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("-t", dest="make")
    g.add_argument("-b", dest="base")
    p.add_argument("-d", "--detached", action="store_true")
    p.add_argument("-f", "--force", action="store_true")
    _common(p)
    a = p.parse_args(argv)
    ctx = Ctx("clonevm", a.noderange, argv, a.json)
    from nodemgr.vmspec import MANAGER_DRIVERS, driver_of, fill_identity, vm_targets

    res = ctx.resolved()
    if a.make:
        if len(ctx.nodes) != 1:
            raise UsageError("-t makes one master from exactly one VM")
        detached = a.detached or a.force
        targets = vm_targets(res)

        def call(drv, group):
            for t in group:
                yield drv.make_master(t.spec, a.make, detached=detached, force=a.force)

        for r in ctx.stream(targets, call):
            if r.ok:
                node = r.node
                at = res.attrs[node]
                with ctx.store.transaction():
                    ctx.store.upsert("vmmaster", {"name": a.make}, {
                        "os": at.get("nodetype.os"), "arch": at.get("nodetype.arch"),
                        "profile": at.get("nodetype.profile"),
                        "storage": (at.get("vm.storage") or "").split("|")[0] or None,
                        "storagemodel": at.get("vm.storagemodel"), "nics": at.get("vm.nics"),
                        "vintage": time.strftime("%Y-%m-%d %H:%M:%S"),
                        "originator": getpass.getuser(),
                        "virttype": at.get("hypervisor.type")})
                    ctx.store.upsert("kvm_masterdata", {"name": a.make},
                                     {"xml": r.data.pop("master_definition", None)})
                    if not detached:
                        r.updates["vm.master"] = a.make
                    ctx.write(node, r.updates)
            r.data.pop("master_definition", None)
            ctx.out.result(r)
        return ctx.out.exit_code

    master = ctx.store.get("vmmaster", {"name": a.base})
    managed = {n for n in ctx.nodes if driver_of(res.attrs[n]) in MANAGER_DRIVERS}
    if master is None and len(managed) < len(ctx.nodes):
        raise UsageError(f"no master named '{a.base}' in the vmmaster table")
    master = master or {}  # a manager's template: the manager checks the name
    mdata = ctx.store.get("kvm_masterdata", {"name": a.base})
    mxml = mdata["xml"] if mdata else None
    for node in ctx.nodes:  # a VM without its own nics/storage takes the master's
        if node in managed:
            continue  # a manager's template carries its own disks and NICs
        at = res.attrs[node]
        for col in ("nics", "storage", "storagemodel"):
            if not at.get(f"vm.{col}") and master.get(col):
                at[f"vm.{col}"] = master[col]
    targets = vm_targets(res)
    identity = {}
    for t in targets:
        if t.spec is not None and t.error is None:
            identity[t.node] = ({} if t.driver in MANAGER_DRIVERS
                                else fill_identity(res, t.spec))
            if not a.detached:
                identity[t.node]["vm.master"] = a.base
    results = ctx.stream(targets, lambda drv, group: drv.clone_from_master(
        [t.spec for t in group], a.base, mxml, detached=a.detached))
    return ctx.report(results, lambda r: identity.get(r.node))
