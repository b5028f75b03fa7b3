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
    return out


def write(store, node: str, result: NodeResult | None = None,
          extra: Mapping[str, str | None] | None = None) -> None:
    """Write *result*'s facts (and legacy updates), then *extra* columns, for *node*.

    Args:
        store: the table store; call inside ``store.transaction()``.
        node: the node whose rows are written (keyed by each table's node column).
        result: a successful driver result, or None.
        extra: more ``{"table.col": value}`` writes decided by the operation
            (``vm.memory`` from ``mkvm --mem``, ``vm.host`` chosen by placement).
    A cleared definition deletes the node's ``kvm_nodedata`` row.
    """
    updates: dict[str, str | None] = {}
    if result is not None:
        updates.update(columns(result.facts))
        updates.update(result.updates)
    updates.update(extra or {})
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
