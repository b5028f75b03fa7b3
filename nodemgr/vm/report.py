"""Result text for the VM reading commands (rvitals, rinv, getcons, getrvidparms).

Lines follow xCAT's ``node: Label: value`` form; units are always printed (MiB, %,
bytes/s). A figure the node's family cannot give is said so on its own line; a node that
gave none of the asked figures is a failed result (exit 1), as the issue asks: "exit 1
only when nothing was given".
"""

from __future__ import annotations

from collections.abc import Sequence

from nodemgr.plugins.base import Console, Metrics, NodeResult

NA = "not available from this node's hypervisor family"


def _rate(bps: float) -> str:
    return f"{bps:.0f} bytes/s"


def vitals(r: NodeResult, items: Sequence[str]) -> NodeResult:
    """*r* (a ``vitals`` result) with its message set to the lines of *items*."""
    if not r.ok:
        return r
    m = r.facts.metrics or Metrics()
    want = {"cpu", "mem", "disk", "net"} if "all" in items else set(items)
    lines, given = [], 0
    if "cpu" in want:
        if m.cpu_pct is not None:
            over = f" over {m.interval_s:g} s" if m.interval_s else ""
            ncpu = f", {m.cpus} vCPU{'s' if m.cpus != 1 else ''}" if m.cpus else ""
            lines.append(f"CPU: {m.cpu_pct:.1f} %{over}{ncpu}")
            given += 1
        else:
            lines.append(f"CPU: {NA}")
    if "mem" in want:
        if m.mem_used_mib is not None or m.mem_avail_mib is not None:
            used = f"{m.mem_used_mib} MiB used" if m.mem_used_mib is not None else "used ?"
            avail = (f" of {m.mem_avail_mib} MiB available" if m.mem_avail_mib is not None
                     else "")
            lines.append(f"Memory: {used}{avail}")
            given += 1
        else:
            lines.append(f"Memory: {NA}")
    for key, label, a, b, an, bn in (
            ("disk", "Disk", m.disk_read_bps, m.disk_write_bps, "read", "write"),
            ("net", "Network", m.net_rx_bps, m.net_tx_bps, "rx", "tx")):
        if key not in want:
            continue
        if a is None and b is None:
            lines.append(f"{label}: {NA}")
            continue
        parts = [f"{an} {_rate(a)}" if a is not None else f"{an} ?",
                 f"{bn} {_rate(b)}" if b is not None else f"{bn} ?"]
        lines.append(f"{label}: {', '.join(parts)}")
        given += 1
    r.message = "\n".join(lines)
    if not given:
        r.ok = False
        r.data.setdefault("error", "Unsupported")
        r.message = (f"none of {', '.join(sorted(want))} is available from this node's "
                     "hypervisor family")
    return r


def inventory(r: NodeResult, items: Sequence[str]) -> NodeResult:
    """*r* (an ``inventory`` result) with its message set to the lines of *items*."""
    if not r.ok:
        return r
    inv = r.facts.inventory
    want = {"uuid", "cpu", "mem", "disk", "nic", "ip"} if "all" in items else set(items)
    lines, given = [], 0

    def add(ok: bool, text: str, label: str) -> None:
        nonlocal given
        lines.append(text if ok else f"{label}: {NA}")
        given += bool(ok)

    if inv is None:
        r.ok, r.message = False, f"no inventory: {NA}"
        return r
    if "uuid" in want:
        add(inv.uuid is not None, f"UUID: {inv.uuid}", "UUID")
    if "cpu" in want:
        add(inv.cpus is not None, f"CPUs: {inv.cpus}", "CPUs")
    if "mem" in want:
        add(inv.memory_mib is not None, f"Memory: {inv.memory_mib} MiB", "Memory")
    if "disk" in want:
        for d in inv.disks:
            size = f" {d.size_mib} MiB" if d.size_mib is not None else ""
            fmt = f" ({d.format})" if d.format else ""
            kind = " cdrom" if d.device == "cdrom" else ""
            lines.append(f"Disk {d.dev}:{kind}{size} {d.path or ''}".rstrip() + fmt)
        given += bool(inv.disks)
        if not inv.disks:
            lines.append("Disk: none")
    if "nic" in want:
        for i, n in enumerate(inv.nics, 1):
            extra = " ".join(x for x in (n.network, f"({n.model})" if n.model else None) if x)
            lines.append(f"NIC {i}: {n.mac} {extra}".rstrip())
        given += bool(inv.nics)
        if not inv.nics:
            lines.append("NIC: none")
    if "ip" in want:
        for a in inv.addresses:
            mac = f", {a.mac}" if a.mac else ""
            lines.append(f"IP: {a.ip} ({a.source}{mac})")
        if not inv.addresses:
            lines.append("IP: none found (guest agent, DHCP lease, neighbour table, boot "
                         "parameters)")
        given += 1  # "none found" is an answer
    r.message = "\n".join(lines)
    if not given:
        r.ok = False
        r.data.setdefault("error", "Unsupported")
    return r


def console(node: str, c: Console, kind: str | None = None) -> NodeResult:
    """The ``getcons`` / ``getrvidparms`` result for *node*'s console *c*. *kind*
    ``display`` wants a remote display (VNC/SPICE); ``serial`` a serial console."""
    display = c.kind in ("vnc", "spice", "rdp")  # rdp: VirtualBox VRDE
    if kind == "display" and not display:
        return NodeResult(node, ok=False, data={"error": "Unsupported", "console": c.kind},
                          message=f"no remote display, only a {c.kind} console"
                                  + (f": {c.command}" if c.command else ""))
    lines = [f"method: {c.kind}"]
    if c.host:
        lines.append(f"server: {c.host}")
    if c.port is not None:
        lines.append(f"vidport: {c.port}")
    if c.password:
        lines.append(f"password: {c.password}")
    if c.command:
        lines.append(f"command: {c.command}")
    data = {"console": c.kind, "server": c.host, "port": c.port, "command": c.command}
    if c.password:
        data["password"] = c.password
    return NodeResult(node, message="\n".join(lines), data=data)


def _scanned(r: NodeResult) -> list[tuple[str, dict[str, str | None]]]:
    """(vm name, columns rscan -w would write) for each VM of an ``rscan`` result."""
    from nodemgr.plugins.base import VmInfo
    from nodemgr.vm.writeback import scanned_columns

    out = []
    for d in r.data["vms"]:
        vm = VmInfo(**{k: v for k, v in d.items() if k != "disks"})
        out.append((vm.name, scanned_columns(vm, r.node, r.data["driver"],
                                             r.data["endpoint_attr"])))
    return out


def scan_stanza(r: NodeResult) -> str:
    """``rscan -z``: the VMs of an ``rscan`` result as an ``lsdef -z`` stanza file (xCAT
    attribute names; columns with no node attribute, such as ``vpd.uuid``, left out)."""
    from nodemgr.objdef import NODE, render_stanza

    by_col = {col: attr for attr, col in NODE.items()}
    objects = [(name, "node", {by_col[c]: v for c, v in cols.items() if c in by_col and v})
               for name, cols in _scanned(r)]
    return render_stanza(objects).rstrip("\n")


def scan_xml(r: NodeResult) -> str:
    """``rscan -x``: xCAT's XML form, one ``<node>`` element per VM with a child element
    per attribute (``table.column`` names as ``table_column``)."""
    from xml.sax.saxutils import escape

    lines = []
    for name, cols in _scanned(r):
        lines.append("<node>")
        lines.append(f"  <name>{escape(name)}</name>")
        for col, value in cols.items():
            if value:
                tag = col.replace(".", "_")
                lines.append(f"  <{tag}>{escape(value)}</{tag}>")
        lines.append("</node>")
    return "\n".join(lines)
