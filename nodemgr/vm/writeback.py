"""Facts -> table columns: the only VM code that knows which column holds what.

A driver reports what it learnt as typed :class:`~nodemgr.plugins.base.Facts`; this
module writes them for the node, in the transaction the caller opened:

==================  =========================================================
fact                column(s)
==================  =========================================================
uuid                ``vpd.uuid``
macs                ``mac.mac`` (xCAT format: first plain, others ``!*NOIP*``)
definition          ``kvm_nodedata.xml`` (cleared: the row is deleted)
host                ``vm.host``
master              ``vm.master`` (cleared: NULL)
cpus                ``vm.cpus``
memory_mib          ``vm.memory`` (MiB)
status              ``nodelist.status`` and ``nodelist.statustime``
bootparams          ``vmbootparams.params`` (``k=v`` list, :mod:`nodemgr.bootparams`)
==================  =========================================================

Power state, addresses, metrics, inventory and the boot device are not stored.
``NodeResult.updates`` (the old ``{"table.col": value}`` form, still accepted from a
site's own driver) is applied after the facts.
"""

from __future__ import annotations

from collections.abc import Mapping

from nodemgr.formats import format_macs, timestamp
from nodemgr.plugins.base import Facts, NodeResult
from nodemgr.tables.schema import table as table_schema

#: fact name -> "table.column"
COLUMNS = {"uuid": "vpd.uuid", "macs": "mac.mac", "definition": "kvm_nodedata.xml",
           "host": "vm.host", "master": "vm.master", "cpus": "vm.cpus",
           "memory_mib": "vm.memory", "status": "nodelist.status"}


def columns(facts: Facts) -> dict[str, str | None]:
    """The ``{"table.col": value}`` writes *facts* stand for (None clears a column)."""
    out: dict[str, str | None] = {}
    for name, col in COLUMNS.items():
        value = getattr(facts, name)
        if value is not None:
            out[col] = format_macs(value) if name == "macs" else str(value)
        elif name in facts.cleared:
            out[col] = None
    if facts.bootparams is not None:
        from nodemgr.bootparams import format_column

        out["vmbootparams.params"] = format_column(facts.bootparams)
    return out


def write(store, node: str, result: NodeResult | None = None,
          extra: Facts | None = None) -> None:
    """Write *result*'s facts (and legacy updates), then *extra* facts, for *node*.

    Args:
        store: the table store; call inside ``store.transaction()``.
        node: the node whose rows are written (keyed by each table's node column).
        result: a successful driver result, or None.
        extra: more facts decided by the operation itself (memory from ``mkvm --mem``,
            the host chosen by placement, generated MACs and UUID); they win over the
            driver's.
    A cleared definition deletes the node's ``kvm_nodedata`` row.
    """
    updates: dict[str, str | None] = {}
    if result is not None:
        updates.update(columns(result.facts))
        updates.update(result.updates)
    if extra is not None:
        updates.update(columns(extra))
    if "kvm_nodedata.xml" in updates and updates["kvm_nodedata.xml"] is None:
        del updates["kvm_nodedata.xml"]
        store.delete("kvm_nodedata", {"node": node})
    apply(store, node, updates)


def apply(store, node: str, updates: Mapping[str, str | None]) -> None:
    """Write ``{"table.col": value}`` for *node* (its own row, keyed by the table's node
    column). ``nodelist.status`` also stamps ``statustime``. Call inside a transaction."""
    by_table: dict[str, dict[str, str | None]] = {}
    for attr, value in updates.items():
        tname, col = attr.split(".", 1)
        by_table.setdefault(tname, {})[col] = value
        if attr == "nodelist.status":
            by_table[tname]["statustime"] = timestamp()
    for tname, values in by_table.items():
        t = table_schema(tname)
        keycol = t.nodecol or t.keys[0]
        store.upsert(tname, {keycol: node}, values)


def write_master(store, master: str, attrs: Mapping[str, str | None],
                 definition: str | None, *, vintage: str, originator: str) -> None:
    """Record master *master* made from a VM (``clonevm -t``): its ``vmmaster`` row from
    the VM's resolved attributes *attrs* (``table.col`` keys) and its native definition in
    ``kvm_masterdata``. Call inside a transaction."""
    store.upsert("vmmaster", {"name": master}, {
        "os": attrs.get("nodetype.os"), "arch": attrs.get("nodetype.arch"),
        "profile": attrs.get("nodetype.profile"),
        "storage": (attrs.get("vm.storage") or "").split("|")[0] or None,
        "storagemodel": attrs.get("vm.storagemodel"), "nics": attrs.get("vm.nics"),
        "vintage": vintage, "originator": originator,
        "virttype": attrs.get("hypervisor.type")})
    store.upsert("kvm_masterdata", {"name": master}, {"xml": definition})


def read_master(store, master: str) -> dict | None:
    """Master *master*'s ``vmmaster`` row plus ``definition`` (its ``kvm_masterdata``
    XML, or None), or None when there is no such master."""
    row = store.get("vmmaster", {"name": master})
    if row is None:
        return None
    data = store.get("kvm_masterdata", {"name": master})
    return {**row, "definition": data["xml"] if data else None}


def scanned_columns(vm, host: str, driver: str, endpoint_attr: str) -> dict[str, str | None]:
    """The node definition ``rscan -w`` writes for *vm* (a :class:`VmInfo`) found on
    *host* by *driver*: groups, mgt, the endpoint attribute (``vm.host`` or ``vm.mgr`` =
    *host*; a manager's VM also gets ``vm.host`` = the host it runs on), memory, cpus,
    MACs, UUID. Unknown values are left out."""
    cols: dict[str, str | None] = {"nodelist.groups": "vm,all", "nodehm.mgt": driver,
                                   endpoint_attr: host}
    if endpoint_attr != "vm.host" and vm.host:
        cols["vm.host"] = vm.host
    facts = Facts(uuid=vm.uuid, macs=list(vm.macs) or None, memory_mib=vm.memory_mib,
                  cpus=vm.cpus)
    cols.update(columns(facts))
    return cols


def write_scanned(store, node: str, cols: Mapping[str, str | None]) -> None:
    """Write the definition of scanned node *node* (:func:`scanned_columns`); the
    ``nodelist`` row is created when missing. Call inside a transaction."""
    apply(store, node, cols)
