"""VM operations over a noderange: each takes a :class:`Run` and yields one result per node.

The shape of :mod:`nodemgr.netboot.nodeset`: a function gets the store, the resolver and
the expanded nodes (a :class:`Run`), builds targets from the tables
(:mod:`nodemgr.vmspec`), runs them through :mod:`nodemgr.dispatch`, writes each
successful node's facts in its own transaction (:mod:`nodemgr.vm.writeback`) as the
result arrives, and yields :class:`~nodemgr.plugins.base.NodeResult` objects in noderange
order. Printing is the caller's (``nodemgr.cli.vmcmds``, or the web app).

Nothing here names a family: what differs comes from the drivers' traits.

Every result's ``data`` carries the same keys for every family: ``error`` (class name) on
failure, and what its facts say (``state``, ``host``, ``uuid``, ``addresses``, ``metrics``,
``inventory``, ``bootdev``) on success.
"""

from __future__ import annotations

import dataclasses
import getpass
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

from nodemgr import dispatch
from nodemgr.errors import DriverError, UsageError
from nodemgr.plugins.base import Facts, NodeResult, VmChange, VmInfo
from nodemgr.vm import placement, writeback

POWER_ACTIONS = ("on", "off", "softoff", "reset", "boot", "suspend", "resume", "stat")
BOOT_DEVICES = ("net", "hd", "cd", "default")
VITALS = ("cpu", "mem", "disk", "net", "all")
INVENTORY = ("all", "uuid", "cpu", "mem", "disk", "nic", "ip")


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


def failed(node: str, message: str) -> NodeResult:
    """A locally decided failure for *node*."""
    return NodeResult(node=node, ok=False, message=message)


class Run:
    """What one VM operation works on.

    Args:
        store: the table store.
        resolver: a :class:`nodemgr.tables.resolve.Resolver` over *store*.
        nodes: the expanded noderange, in order.
        maxp: endpoints in flight at once (default ``site.vmmaxp``, else 64).
        timeout: seconds per endpoint (default ``site.vmtimeout``, else 60).
    """

    def __init__(self, store, resolver, nodes: Sequence[str], *, maxp: int | None = None,
                 timeout: float | None = None) -> None:
        from nodemgr.vmspec import Resolved

        self.store = store
        self.resolver = resolver
        self.nodes = list(nodes)
        self.maxp = maxp or _int(store.site("vmmaxp"), 64)
        self.timeout = timeout or _float(store.site("vmtimeout"), 60.0)
        self.res = Resolved(resolver, self.nodes)

    def stream(self, targets, call: Callable, local: dict | None = None, *,
               maxp: int | None = None, validate: bool = False) -> Iterator[NodeResult]:
        """Results in node order: dispatched targets merged with locally decided ones."""
        local = local or {}
        remote = [t for t in targets if t.node not in local]
        it = iter(dispatch.run(remote, call, maxp=maxp or self.maxp, timeout=self.timeout,
                               validate=validate))
        for t in targets:
            yield local[t.node] if t.node in local else next(it)

    def commit(self, result: NodeResult, extra: Facts | None = None) -> NodeResult:
        """Write a successful *result*'s facts (and *extra*) for its node in one
        transaction; fill ``data`` from the facts. Returns *result*."""
        if result.ok:
            with self.store.transaction():
                writeback.write(self.store, result.node, result, extra)
            for key, value in facts_data(result.facts).items():
                result.data.setdefault(key, value)
        result.updates = {}
        return result

    def commit_all(self, results: Iterable[NodeResult],
                   extra: Callable[[NodeResult], Facts | None] | None = None
                   ) -> Iterator[NodeResult]:
        """:meth:`commit` each result as it arrives, with ``extra(result)``."""
        for r in results:
            yield self.commit(r, extra(r) if extra and r.ok else None)


def facts_data(facts: Facts) -> dict:
    """The ``--json`` keys *facts* give, the same for every family."""
    out: dict = {}
    if facts.power is not None:
        out["state"] = facts.power
    for name in ("host", "uuid", "bootdev"):
        if getattr(facts, name) is not None:
            out[name] = getattr(facts, name)
    if facts.addresses is not None:
        out["addresses"] = [dataclasses.asdict(a) for a in facts.addresses]
    if facts.metrics is not None:
        out["metrics"] = dataclasses.asdict(facts.metrics)
    if facts.inventory is not None:
        out["inventory"] = dataclasses.asdict(facts.inventory)
    return out


def _traits(driver: str):
    from nodemgr.vmspec import traits_of

    return traits_of(driver)


def _targets(run: Run, command: str, **kwargs):
    """:func:`nodemgr.vmspec.vm_targets` for *command*: a node whose family cannot run
    it (``Traits.cannot``) gets the family's reason as its error, before any call."""
    from nodemgr.vmspec import vm_targets

    targets = vm_targets(run.res, **kwargs)
    for t in targets:
        if t.error is None and t.driver:
            why = _traits(t.driver).why_not(command)
            if why:
                t.error = why
    return targets


def _host_nodes(run: Run, targets) -> dict[int, object]:
    """Positions of targets that are hypervisor/manager nodes (no endpoint of their own
    as a VM, and a hypervisor row or hostconn.uri), mapped to their host targets."""
    from nodemgr.vmspec import host_target, is_host_node

    return {i: host_target(run.res, t.node) for i, t in enumerate(targets)
            if t.endpoint is None and is_host_node(run.res, t.node)}


def adopt_hosts(run: Run, targets) -> dict[str, Facts]:
    """For VMs without an endpoint but with ``vm.migrationdest``, choose the destination
    host with the most free memory (as xCAT's mkvm and rpower on do) and point the target
    at it. Families whose endpoint places VMs itself are left alone. Returns node ->
    the facts to record when the operation succeeds (``host``)."""
    from nodemgr.vmspec import host_endpoint

    adopted = {}
    for t in targets:
        if (t.endpoint is not None or t.error is not None or t.spec is None
                or _traits(t.driver).endpoint_attr != "vm.host"
                or not run.res.attrs[t.node].get("vm.migrationdest")):
            continue
        host = placement.pick(run.res, t.node, maxp=run.maxp, timeout=min(run.timeout, 15.0))
        if host is None:
            t.error = f"Unable to identify a suitable target host for guest {t.node}"
            continue
        t.endpoint = host_endpoint(run.res, host, t.driver)
        adopted[t.node] = Facts(host=host)
    return adopted


# -- rpower ------------------------------------------------------------------------------


def power(run: Run, action: str) -> Iterator[NodeResult]:
    """``rpower``: run *action* (one of :data:`POWER_ACTIONS`) on each VM.

    A hypervisor or manager node answers ``stat`` with its own state (``on`` when its
    endpoint answers; a host reached through its manager: the manager's view of it) and
    refuses other actions; a VM without a host is ``off`` for ``stat``.
    """
    targets = _targets(run, "rpower", need_host=False)
    adopted = adopt_hosts(run, targets) if action in ("on", "boot") else {}
    local = {}
    for i, host in _host_nodes(run, targets).items():
        node = targets[i].node
        if action == "stat":
            targets[i] = host  # spec None: the host itself
        else:
            local[node] = failed(node, f"{node} is a hypervisor host, not a VM "
                                       "(rpower stat only)")
    for t in targets:
        if t.endpoint is None and t.error is None and t.node not in local:
            local[t.node] = (NodeResult(t.node, message="off", data={"state": "off"})
                             if action == "stat" else failed(t.node, "vm.host is not set"))

    def call(drv, group):
        for t in group:
            if t.spec is None:
                try:
                    state = drv.host_power()
                except DriverError as exc:
                    yield drv.failed(t.node, exc)
                    continue
                yield NodeResult(t.node, message=state, data={"state": state,
                                                              "hypervisor": True})
        vms = [t.spec for t in group if t.spec is not None]
        if vms:
            yield from drv.power(vms, action)

    yield from run.commit_all(run.stream(targets, call, local), lambda r: adopted.get(r.node))


# -- mkvm ------------------------------------------------------------------------------------


def create(run: Run, *, disk_sizes_mib: Sequence[int] = (), memory_mib: int | None = None,
           cpus: int | None = None, force: bool = False,
           bootparams: dict[str, str] | None = None) -> Iterator[NodeResult]:
    """``mkvm``: define each VM on its host (placed by free memory when it has none),
    creating disks of *disk_sizes_mib* (MiB). MACs and UUIDs are generated unless the
    family assigns them; *memory_mib*, *cpus* and *bootparams* are recorded on success."""
    from nodemgr.vm.identity import fill_identity
    targets = _targets(run, "mkvm", disk_sizes_mib=list(disk_sizes_mib), memory_mib=memory_mib,
                         cpus=cpus, need_host=False)
    adopted = adopt_hosts(run, targets)
    for t in targets:
        if t.endpoint is None and t.error is None:
            attr = _traits(t.driver).endpoint_attr
            t.error = (f"{attr} is not set" + (" (and no vm.migrationdest to choose from)"
                                               if attr == "vm.host" else " (the manager)"))
    extra: dict[str, Facts] = {}
    for t in targets:
        if t.spec is None or t.error is not None:
            continue
        facts = Facts() if _traits(t.driver).assigns_identity else fill_identity(run.store,
                                                                                 t.spec)
        facts.memory_mib, facts.cpus = memory_mib, cpus
        if bootparams is not None:
            t.spec.bootparams = dict(bootparams)
            facts.bootparams = dict(bootparams)
        if t.node in adopted:
            facts.host = adopted[t.node].host
        extra[t.node] = facts
    results = run.stream(targets, lambda drv, group: drv.create([t.spec for t in group],
                                                                force=force), validate=True)
    yield from run.commit_all(results, lambda r: extra.get(r.node))


# -- rmvm -------------------------------------------------------------------------------------


def remove(run: Run, *, force: bool = False, purge: bool = False) -> Iterator[NodeResult]:
    """``rmvm``: remove each VM from its host (``force`` stops it first, ``purge`` deletes
    its disks); the stored definition is dropped, the node's definition kept."""
    targets = _targets(run, "rmvm")
    results = run.stream(targets, lambda drv, group: drv.remove(
        [t.spec for t in group], force=force, purge=purge))
    yield from run.commit_all(results, lambda r: Facts(cleared={"definition"}))


# -- chvm -------------------------------------------------------------------------------------


def change(run: Run, change: VmChange) -> Iterator[NodeResult]:
    """``chvm``: apply *change* to each VM; new cpus/memory are recorded on success."""
    targets = _targets(run, "chvm")
    results = run.stream(targets, lambda drv, group: drv.change([t.spec for t in group],
                                                                change), validate=True)
    yield from run.commit_all(results, lambda r: Facts(cpus=change.cpus,
                                                       memory_mib=change.memory_mib))


# -- lsvm -------------------------------------------------------------------------------------


def listing(run: Run, *, details: bool = False) -> Iterator[NodeResult]:
    """``lsvm``: for a hypervisor or manager node, its VMs (``name: state``; with
    *details*, also uuid, memory, cpus, MACs, disks); for a VM, its details."""
    targets = _targets(run, "lsvm", need_host=False)
    hosts = _host_nodes(run, targets)
    for i, t in enumerate(targets):
        if i in hosts:
            targets[i] = hosts[i]
        elif t.endpoint is None:
            t.error = t.error or "vm.host is not set"

    def call(drv, group):
        for t in group:
            if t.spec is not None:
                yield from drv.describe([t.spec])
                continue
            vms = sorted(drv.scan() if details else drv.list_vms(), key=lambda v: v.name)
            lines = [line for v in vms for line in _vm_lines(v, details)]
            yield NodeResult(t.node, message="\n".join(lines),
                             data={"vms": [_vm_data(v, details) for v in vms]})

    yield from run.commit_all(run.stream(targets, call))


def _vm_lines(v: VmInfo, details: bool) -> list[str]:
    if not details:
        return [f"{v.name}: {v.state}"]
    out = [f"{v.name}: {v.state}"]
    for label, value in (("uuid", v.uuid), ("memory", f"{v.memory_mib} MiB"
                                            if v.memory_mib is not None else None),
                         ("cpus", v.cpus), ("host", v.host),
                         ("macs", ",".join(v.macs) if v.macs else None)):
        if value is not None:
            out.append(f"{v.name}: {label}: {value}")
    for d in v.disks:
        size = f" {d.size_mib} MiB" if d.size_mib is not None else ""
        out.append(f"{v.name}: disk {d.dev}:{size} {d.path or ''}".rstrip())
    return out


def _vm_data(v: VmInfo, details: bool) -> dict:
    return dataclasses.asdict(v) if details else {"name": v.name, "state": v.state}


# -- rmigrate ----------------------------------------------------------------------------------


def migrate(run: Run, target: str | None = None, *, force: bool = False) -> Iterator[NodeResult]:
    """``rmigrate``: live-migrate each VM to *target* (a hypervisor node), else to the
    ``vm.migrationdest`` host with the most free memory; a family whose endpoint places
    VMs chooses itself when neither is given. One migration at a time. With *force*, a VM
    whose source host is unreachable is just recorded on the target."""
    from nodemgr import noderange
    from nodemgr.vmspec import host_endpoint

    if target:
        noderange.expand(target, run.resolver)  # the target must be a known node
    targets = _targets(run, "rmigrate")
    dest, local = {}, {}
    for t in targets:
        if t.error or t.endpoint is None:
            continue
        host = target or placement.pick(run.res, t.node, exclude=t.endpoint.host,
                                        maxp=run.maxp, timeout=min(run.timeout, 15.0))
        if not host and _traits(t.driver).places_vms and \
                not run.res.attrs[t.node].get("vm.migrationdest"):
            dest[t.node] = None  # no target named: the manager chooses the host
        elif not host:
            local[t.node] = failed(t.node, "Unable to identify a suitable target host for "
                                           f"guest {t.node}")
        elif host == t.endpoint.host:
            local[t.node] = NodeResult(t.node, message=f"Guest is already on host {host}")
        else:
            dest[t.node] = host_endpoint(run.res, host, t.driver)

    def call(drv, group):
        for t in group:
            yield from drv.migrate([t.spec], dest[t.node])

    for r in run.stream(targets, call, local, maxp=1):
        if (not r.ok and force and dest.get(r.node)
                and r.data.get("error") in ("Unreachable", "Timeout")):
            r = NodeResult(r.node, message=f"migrated to {dest[r.node].host}",
                           facts=Facts(host=dest[r.node].host))
        yield run.commit(r)


# -- revacuate --------------------------------------------------------------------------------


def evacuate(run: Run) -> Iterator[NodeResult]:
    """``revacuate``: live-migrate every running VM off each hypervisor node of the run.

    For each host: its running VMs (``list_vms``) are matched to nodes (by name, else by
    ``vm.host``); each goes to the host of its ``vm.migrationdest`` with the most free
    memory that has room for it (memory of VMs already sent there is counted), or to the
    manager's choice for a family that places VMs. One result per VM (``vm: migrated to
    h2`` / its error), then one for the host: ``no running VM`` or which stayed and why.
    """
    from nodemgr.vmspec import host_endpoint, host_target, is_host_node

    for host in run.nodes:
        if not is_host_node(run.res, host):
            yield failed(host, f"{host} is not a hypervisor (no hypervisor row or "
                               "hostconn.uri)")
            continue
        ht = host_target(run.res, host)
        running, err = _running_vms(run, ht)
        if err is not None:
            yield err
            continue
        names = _vm_nodes(run, host, running)
        stayed: dict[str, str] = {}
        sub = _subrun(run, [n for n in names.values() if n])
        targets = _targets(sub, "revacuate")
        free: dict[str, int] = {}
        dest, local = {}, {}
        for vm, node in names.items():
            if node is None:
                stayed[vm] = "not a known node (rscan -w to define it)"
        for t in targets:
            if t.error or t.endpoint is None:
                local[t.node] = failed(t.node, t.error or "vm.host is not set")
                continue
            need = t.spec.memory_mib if t.spec else 0
            to = placement.pick(sub.res, t.node, exclude=host, need_mib=need, free=free,
                                maxp=run.maxp, timeout=min(run.timeout, 15.0))
            if to is None and _traits(t.driver).places_vms and \
                    not sub.res.attrs[t.node].get("vm.migrationdest"):
                dest[t.node] = None
            elif to is None and not placement.candidates(sub.res, t.node, exclude=host):
                local[t.node] = failed(t.node, "vm.migrationdest is not set (no other host "
                                               "to move it to)")
            elif to is None:
                local[t.node] = failed(t.node, f"no destination with room for {need} MiB "
                                               "in vm.migrationdest")
            else:
                free[to] -= need
                dest[t.node] = host_endpoint(sub.res, to, t.driver)

        def call(drv, group, dest=dest):
            for t in group:
                yield from drv.migrate([t.spec], dest[t.node])

        for r in sub.stream(targets, call, local, maxp=1):
            yield run.commit(r)
            if not r.ok:
                stayed[r.node] = r.message
        left, err = _running_vms(run, ht)
        if err is not None:
            yield err
            continue
        left_names = {vm.name: names.get(vm.name) or vm.name for vm in left}
        if not left_names:
            yield NodeResult(host, message="no running VM", data={"stayed": {}})
            continue
        why = {n: stayed.get(n) or stayed.get(name) or "still running here"
               for name, n in left_names.items()}
        yield NodeResult(host, ok=False, data={"stayed": why},
                         message="still running: " + "; ".join(f"{n} ({w})"
                                                               for n, w in why.items()))


def _running_vms(run: Run, host_target) -> tuple[list[VmInfo], NodeResult | None]:
    def call(drv, group):
        for t in group:
            yield NodeResult(t.node, data={"vms": drv.list_vms()})

    r = next(iter(dispatch.run([host_target], call, maxp=1, timeout=run.timeout)))
    if not r.ok:
        return [], r
    return [v for v in r.data["vms"] if v.state == "on"], None


def _vm_nodes(run: Run, host: str, vms: Sequence[VmInfo]) -> dict[str, str | None]:
    """VM name on *host* -> node name (the name itself when it is a node), else None."""
    known = set(run.resolver.nodes())
    return {v.name: v.name if v.name in known else None for v in vms}


def _subrun(run: Run, nodes: Sequence[str]) -> Run:
    return Run(run.store, run.resolver, nodes, maxp=run.maxp, timeout=run.timeout)


# -- rscan ------------------------------------------------------------------------------------


def scan(run: Run, *, write: bool = False, update: bool = False) -> Iterator[NodeResult]:
    """``rscan``: the VMs on each hypervisor or manager node of the run.

    Yields one result per host (``data["vms"]``: the :class:`VmInfo` of each VM as a
    dict; the message is xCAT's table ``type name hypervisor id cpu memory nic disk``).
    With *write*, node definitions are written for VMs not yet known (one transaction
    each); a known VM of this host is left alone unless *update*; a VM whose name is a
    node of another host, or is not a valid node name, is a failed result of its own and
    nothing is written for it.
    """
    from nodemgr.vmspec import host_target, is_host_node

    for host in run.nodes:
        if not is_host_node(run.res, host):
            yield failed(host, f"{host} is not a hypervisor or manager (no hypervisor row "
                               "or hostconn.uri)")
            continue
        ht = host_target(run.res, host)

        def call(drv, group):
            for t in group:
                yield NodeResult(t.node, data={"vms": drv.scan()})

        (r,) = list(dispatch.run([ht], call, maxp=1, timeout=run.timeout))
        if not r.ok:
            yield r
            continue
        vms = sorted(r.data["vms"], key=lambda v: v.name)
        attr = _traits(ht.driver).endpoint_attr
        yield NodeResult(host, message=_scan_table(ht.driver, host, vms),
                         data={"vms": [dataclasses.asdict(v) for v in vms],
                               "driver": ht.driver, "endpoint_attr": attr})
        if write:
            yield from _scan_write(run, host, ht.driver, attr, vms, update)


def _scan_table(driver: str, host: str, vms: Sequence[VmInfo]) -> str:
    rows = [("type", "name", "hypervisor", "id", "cpu", "memory", "nic", "disk")]
    for v in vms:
        rows.append((driver, v.name, v.host or host, v.uuid or "-",
                     str(v.cpus) if v.cpus is not None else "-",
                     str(v.memory_mib) if v.memory_mib is not None else "-",
                     ",".join(v.macs) or "-", ",".join(d.path or d.dev for d in v.disks) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def _scan_write(run: Run, host: str, driver: str, attr: str, vms: Sequence[VmInfo],
                update: bool) -> Iterator[NodeResult]:
    from nodemgr.objdef import object_type, valid_name

    node_type = object_type("node")
    known = set(run.resolver.nodes())
    have = run.resolver.attrs([v.name for v in vms if v.name in known], [attr])
    for v in vms:
        if not valid_name(node_type, v.name):
            yield failed(v.name, f"'{v.name}' on {host} is not a valid node name; not "
                                 "written")
            continue
        if v.name in known:
            where = have.get(v.name, {}).get(attr)
            if where and where != host:
                yield failed(v.name, f"node {v.name} already exists on {where} ({attr}); "
                                     f"the VM on {host} is not written")
                continue
            if not update:
                continue
        with run.store.transaction():
            writeback.write_scanned(run.store, v.name,
                                    writeback.scanned_columns(v, host, driver, attr))
        yield NodeResult(v.name, message=f"{'updated' if v.name in known else 'defined'} "
                                         f"from {host}")


# -- clonevm ------------------------------------------------------------------------------------


def make_master(run: Run, master: str, *, detached: bool = False,
                force: bool = False) -> Iterator[NodeResult]:
    """``clonevm -t``: make master *master* from the run's one VM; records the
    ``vmmaster`` row and its definition; the VM is based on it unless *detached*."""
    if len(run.nodes) != 1:
        raise UsageError("-t makes one master from exactly one VM")
    detached = detached or force
    targets = _targets(run, "clonevm")

    def call(drv, group):
        for t in group:
            yield drv.make_master(t.spec, master, detached=detached, force=force)

    for r in run.stream(targets, call):
        definition = r.facts.master_definition or r.data.pop("master_definition", None)
        r.data.pop("master_definition", None)
        if r.ok:
            with run.store.transaction():
                writeback.write_master(run.store, master, run.res.attrs[r.node], definition,
                                       vintage=time.strftime("%Y-%m-%d %H:%M:%S"),
                                       originator=getpass.getuser())
        yield run.commit(r, Facts(master=master) if not detached and r.ok else None)


def clone(run: Run, master: str, *, detached: bool = False) -> Iterator[NodeResult]:
    """``clonevm -b``: create each VM from master *master* (thin unless *detached*); a VM
    without its own nics/storage takes the master's; new MACs and UUIDs unless the family
    assigns them."""
    from nodemgr.vm.identity import fill_identity
    from nodemgr.vmspec import driver_of

    row = writeback.read_master(run.store, master)
    own = {n for n in run.nodes
           if _traits(driver_of(run.res.attrs[n])).endpoint_attr == "vm.host"}
    if row is None and own:
        raise UsageError(f"no master named '{master}' in the vmmaster table")
    row = row or {}  # a manager's template: the manager checks the name
    for node in own:  # a VM without its own nics/storage takes the master's
        at = run.res.attrs[node]
        for col in ("nics", "storage", "storagemodel"):
            if not at.get(f"vm.{col}") and row.get(col):
                at[f"vm.{col}"] = row[col]
    targets = _targets(run, "clonevm")
    extra = {}
    for t in targets:
        if t.spec is not None and t.error is None:
            facts = (Facts() if _traits(t.driver).assigns_identity
                     else fill_identity(run.store, t.spec))
            if not detached:
                facts.master = master
            extra[t.node] = facts
    results = run.stream(targets, lambda drv, group: drv.clone_from_master(
        [t.spec for t in group], master, row.get("definition"), detached=detached),
        validate=True)
    yield from run.commit_all(results, lambda r: extra.get(r.node))


# -- rvitals, rinv, rsetboot --------------------------------------------------------------------


def vitals(run: Run, items: Sequence[str] = ("all",),
           interval_s: float = 1.0) -> Iterator[NodeResult]:
    """``rvitals``: each VM's use over *interval_s* seconds; *items* from :data:`VITALS`.
    A figure the family cannot give is said so on its line; a node that gave none of the
    asked figures fails."""
    from nodemgr.vm import report
    bad = [i for i in items if i not in VITALS]
    if bad:
        raise UsageError(f"unknown vitals item '{bad[0]}' (one of {', '.join(VITALS)})")
    targets = _targets(run, "rvitals")
    results = run.stream(targets, lambda drv, group: drv.vitals([t.spec for t in group],
                                                                interval_s))
    for r in run.commit_all(results):
        yield report.vitals(r, items)


def inventory(run: Run, items: Sequence[str] = ("all",)) -> Iterator[NodeResult]:
    """``rinv``: each VM's inventory; *items* from :data:`INVENTORY`."""
    from nodemgr.vm import report
    bad = [i for i in items if i not in INVENTORY]
    if bad:
        raise UsageError(f"unknown inventory item '{bad[0]}' (one of {', '.join(INVENTORY)})")
    targets = _targets(run, "rinv")
    results = run.stream(targets, lambda drv, group: drv.inventory([t.spec for t in group]))
    for r in run.commit_all(results):
        yield report.inventory(r, items)


def set_boot(run: Run, device: str) -> Iterator[NodeResult]:
    """``rsetboot``: make *device* (:data:`BOOT_DEVICES`) each VM's first boot device from
    its next start."""
    if device not in BOOT_DEVICES:
        raise UsageError(f"unknown boot device '{device}' (one of {', '.join(BOOT_DEVICES)})")
    targets = _targets(run, "rsetboot")
    results = run.stream(targets, lambda drv, group: drv.set_boot([t.spec for t in group],
                                                                  device))
    for r in run.commit_all(results):
        if r.ok and not r.message:
            r.message = device
        yield r


# -- consoles -----------------------------------------------------------------------------------


def consoles(run: Run, *, kind: str | None = None) -> Iterator[NodeResult]:
    """``getcons`` / ``getrvidparms``: how to reach each VM's console. *kind*
    ``display`` keeps only remote displays (VNC/SPICE), ``serial`` only serial consoles."""
    from nodemgr.vm import report
    targets = _targets(run, "getrvidparms" if kind == "display" else "getcons")

    def call(drv, group):
        for t in group:
            try:
                yield report.console(t.node, drv.console(t.spec, display=kind == "display"),
                                     kind)
            except DriverError as exc:
                yield drv.failed(t.node, exc)

    yield from run.commit_all(run.stream(targets, call))


def open_console(run: Run, node: str):
    """``rcons``: connect to *node*'s endpoint and open its serial console.

    Returns:
        ``(driver, console)``: the connected driver (close it when done) and a
        :class:`~nodemgr.plugins.base.Console` whose ``stream`` is open.
    Raises:
        UsageError (no VM target), DriverError (the driver's one-line reason).
    """
    from nodemgr.plugins.registry import load_driver

    (t,) = _targets(run, "rcons")
    if t.error:
        raise UsageError(f"{node}: {t.error}")
    drv = load_driver(t.driver)(t.endpoint, run.timeout)
    try:
        drv.connect()
        console = drv.console(t.spec, open_stream=True)
    except BaseException:
        drv.close()
        raise
    if console.stream is None:
        drv.close()
        raise UsageError(f"{node}: no serial console ({console.kind})")
    return drv, console
