"""xCAT's ``networks`` table: which network a node is on, and the management node's address
on it.

A node's network is the enabled ``networks`` row whose ``net``/``mask`` holds its
``hosts.ip`` (the longest prefix when rows overlap). The address a node must use to reach
this management node (boot lines' ``next-server``, HTTP and callback URLs) is, first match:
``noderes.xcatmaster``, ``site.master``, else the address of this machine's interface on
the node's network — the row's ``mgtifname`` when set, any interface inside the network
otherwise (a node on a loopback address is this machine: 127.0.0.1). There is no ``localhost`` fallback: a node that is not itself on a loopback
address is refused when the result is a loopback address (it would fetch from itself).

Interfaces are read with psutil (``net_if_addrs``: one portable call instead of parsing
``ip addr`` or ioctls). This module never writes tables; ``makenetworks`` does.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from nodemgr.errors import NodemgrError


class NetworkError(NodemgrError):
    """A node's network or management address cannot be determined (one line)."""


@dataclass(frozen=True)
class Network:
    """One ``networks`` row, parsed.

    Attributes:
        net: the IPv4 network (``10.0.0.0/24``).
        row: the table row as read (column -> value).
    """

    net: ipaddress.IPv4Network
    row: dict

    @property
    def name(self) -> str:
        """``netname``, else xCAT's generated name ``10_0_0_0-255_255_255_0``."""
        return self.row.get("netname") or generated_name(self.net)


def generated_name(net: ipaddress.IPv4Network) -> str:
    """xCAT's netname for a network without one: ``10_0_0_0-255_255_255_0``."""
    return f"{str(net.network_address).replace('.', '_')}-{str(net.netmask).replace('.', '_')}"


def parse_rows(rows) -> list[Network]:
    """Parse ``networks`` rows (dicts with ``net`` and ``mask``).

    Raises:
        NetworkError: a row whose net/mask is not an IPv4 network (names the row).
    """
    out = []
    for r in rows:
        try:
            out.append(Network(ipaddress.IPv4Network(f"{r['net']}/{r['mask']}"), dict(r)))
        except (ValueError, TypeError, KeyError):
            raise NetworkError(f"networks row net={r.get('net')!r} mask={r.get('mask')!r} "
                               "is not an IPv4 network") from None
    return out


def load(store) -> list[Network]:
    """Every enabled ``networks`` row of *store*, parsed (:func:`parse_rows`)."""
    return parse_rows(store.select("networks"))


def network_of(ip: str | None, nets: list[Network]) -> Network | None:
    """The network (longest prefix) that holds IPv4 address *ip*, or None."""
    try:
        addr = ipaddress.IPv4Address((ip or "").strip())
    except ValueError:
        return None
    best = None
    for n in nets:
        if addr in n.net and (best is None or n.net.prefixlen > best.net.prefixlen):
            best = n
    return best


def local_interfaces() -> list[tuple[str, ipaddress.IPv4Interface]]:
    """This machine's IPv4 addresses as ``(ifname, 10.0.0.1/24)``, in psutil's order."""
    import socket

    import psutil

    out = []
    for ifname, addrs in psutil.net_if_addrs().items():
        for a in addrs:
            if a.family == socket.AF_INET and a.address and a.netmask:
                out.append((ifname, ipaddress.IPv4Interface(f"{a.address}/{a.netmask}")))
    return out


def is_loopback(host: str | None) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    h = (host or "").strip().strip("[]").lower()
    if h in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


class MasterResolver:
    """The management node's address per node, cached per network for one command.

    Args:
        site_master: ``site.master`` (None or '' when unset).
        nets: the parsed ``networks`` rows.
        interfaces: :func:`local_interfaces` (read on first need when None).
    """

    def __init__(self, site_master: str | None, nets: list[Network],
                 interfaces: list | None = None) -> None:
        self.site_master = (site_master or "").strip() or None
        self.nets = nets
        self._ifaces = interfaces
        self._by_net: dict = {}

    def interfaces(self) -> list:
        if self._ifaces is None:
            self._ifaces = local_interfaces()
        return self._ifaces

    def address_on(self, net: Network) -> str:
        """This machine's address on *net* (``mgtifname``'s when set).

        Raises:
            NetworkError: no local interface has an address inside the network.
        """
        hit = self._by_net.get(net.net)
        if hit is None:
            ifname = (net.row.get("mgtifname") or "").strip()
            cands = [i for n, i in self.interfaces() if i.ip in net.net
                     and (not ifname or n == ifname)]
            if not cands:
                via = f" on interface {ifname}" if ifname else ""
                raise NetworkError(f"site.master is not set and this management node has no "
                                   f"address in network {net.name} ({net.net}){via}")
            hit = self._by_net[net.net] = str(cands[0].ip)
        return hit

    def for_node(self, ip: str | None, xcatmaster: str | None = None) -> str:
        """The address node at *ip* must use for this management node.

        Args:
            ip: the node's ``hosts.ip`` (None when it has none).
            xcatmaster: the node's ``noderes.xcatmaster`` (wins when set).
        Raises:
            NetworkError: no master can be determined, or it is a loopback address while the
                node is not (message names ``site.master``).
        """
        master = (xcatmaster or "").strip() or self.site_master
        source = "noderes.xcatmaster" if (xcatmaster or "").strip() else "site.master"
        if master is None and is_loopback(ip):
            master, source = "127.0.0.1", "this machine (the node is on loopback)"
        if master is None:
            if not ip:
                raise NetworkError("site.master is not set and the node has no hosts.ip to "
                                   "find its network by")
            net = network_of(ip, self.nets)
            if net is None:
                raise NetworkError(f"site.master is not set and {ip} is in no networks row "
                                   "(run makenetworks, or set site.master)")
            master, source = self.address_on(net), f"this machine's address on {net.name}"
        check_reachable(master, ip, source)
        return master


def check_reachable(host: str, node_ip: str | None, source: str) -> None:
    """Refuse a loopback *host* for a node that is not on a loopback address.

    Raises:
        NetworkError: ``<source> is <host>, a loopback address: node <ip> would fetch from
            itself``.
    """
    if is_loopback(host) and not is_loopback(node_ip or ""):
        raise NetworkError(f"{source} is {host}, a loopback address: the node "
                           f"({node_ip or 'no hosts.ip'}) would contact itself; set site.master "
                           "to this machine's address on the node's network")


def scan(interfaces: list | None = None) -> list[dict]:
    """``networks`` rows for this machine's non-loopback IPv4 interfaces (``makenetworks``).

    Returns:
        One row per distinct network: ``netname`` (xCAT's generated name), ``net``,
        ``mask``, ``mgtifname``, ``tftpserver`` and ``dhcpserver`` (this machine's address).
    """
    rows, seen = [], set()
    for ifname, iface in interfaces if interfaces is not None else local_interfaces():
        net = iface.network
        if iface.ip.is_loopback or iface.ip.is_link_local or net.prefixlen == 32 \
                or net in seen:
            continue
        seen.add(net)
        rows.append({"netname": generated_name(net), "net": str(net.network_address),
                     "mask": str(net.netmask), "mgtifname": ifname,
                     "tftpserver": str(iface.ip), "dhcpserver": str(iface.ip)})
    return rows
