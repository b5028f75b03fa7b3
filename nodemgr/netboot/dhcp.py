"""makedhcp: DHCP configuration for Kea DHCPv4 and dnsmasq from the tables.

The configuration is always rendered whole, from three inputs: the ``networks`` table (a
subnet per row), the set of nodes that have a reservation, and the settings. The set of
nodes is read back from the file makedhcp wrote last (Kea: the reservations' ``hostname``;
dnsmasq: the hosts file's names), so ``makedhcp -n`` (new configuration) loses no
reservation and ``makedhcp <noderange>`` / ``-d`` add, refresh or drop nodes in it. Every
node's attributes are read in one pass (:class:`~nodemgr.tables.resolve.Resolver`, one read
per table), and all checks (MAC, IP, network, duplicates, management address) run before
anything is written: bad input is one line per node and changes nothing.

Boot-file choice (the same decisions in both back ends):

=================  ===============  ===================  =========================
netboot            BIOS (93 = 0)    x64 UEFI (7, 9, 16)  iPXE (user class ``iPXE``)
=================  ===============  ===================  =========================
pxe                pxelinux.0       none (see below)     pxelinux.0 (BIOS only)
xnba               undionly.kpxe    snponly.efi          the node's iPXE script URL
grub2, grub2-*     none             boot/grub2/grubx64.efi  grubx64.efi (UEFI only)
=================  ===============  ===================  =========================

A UEFI HTTP-boot client (vendor class ``HTTPClient``) of any node gets
``http://<server>[:<httpport>]/tftpboot/snponly.efi`` and option 60 ``HTTPClient`` (GRUB
2.06 hangs as an HTTP NBP); the iPXE it starts asks again with user class ``iPXE``. A
``netboot=pxe`` node's UEFI client is offered its address and no boot file: no UEFI
pxelinux is installed and ``nodeset`` writes only ``pxelinux.cfg`` files for it, so the
firmware moves on to its next boot entry instead of starting a loader that finds no
configuration. Unreserved (pool) clients get no boot file.

The iPXE script URL is ``http://<server>[:<httpport>]/tftpboot/xcat/xnba/nodes/${hostname}``:
iPXE expands settings in the DHCP file name and ``hostname`` is the reservation's host
name (option 12) = the node name, so one class serves every node (a literal per-node URL
would need a class per node: see :func:`kea_config`).

Kea: a reservation's ``boot-file-name``/``next-server`` beat every class (Kea ARM
"Host Reservations in DHCPv4"; test-environment gotcha 4), so reservations carry only
``client-classes`` (``<netboot kind>-s<server index>``) and ``next-server``; the boot file
comes from ``only-if-required`` classes that each subnet lists in
``require-client-classes`` (Kea ARM "Client Classification": required classes are
evaluated after host reservation lookup, so their ``member()`` sees reserved classes).
A fixed set of classes per server address, whatever the number of nodes.

dnsmasq: ``--dhcp-hostsfile`` holds plain ``mac,ip,name`` lines (re-read on SIGHUP; tagged
lines there crash dnsmasq 2.90 on SIGHUP, gotcha 5); the options file (``--conf-file``)
maps each MAC to its kind with ``dhcp-mac=set:<kind>-s<i>,<mac>`` and selects the file
with ``dhcp-boot=tag:...`` lines (dnsmasq(8)). SIGHUP does not re-read a conf file, so
when the options file changes dnsmasq is restarted (same command line, same network
namespace); when only the hosts file changes it gets SIGHUP.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field

from nodemgr import networks, settings
from nodemgr.errors import NodemgrError, UsageError
from nodemgr.netboot import kea
from nodemgr.netboot.bootfiles import normalize_mac
from nodemgr.netboot.files import write_temp


class DhcpError(NodemgrError):
    """A global makedhcp failure (one line)."""


#: noderes.netboot -> the kind that decides the loader
KINDS = {"pxe": "pxe", "xnba": "xnba", "grub2": "grub2", "grub2-tftp": "grub2",
         "grub2-http": "grub2"}
ATTRS = ("hosts.ip", "mac.mac", "noderes.netboot", "noderes.xcatmaster",
         "noderes.tftpserver", "noderes.installnic")
LEASE_HOOK = "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_lease_cmds.so"
LEASE_TIME = 43200  # seconds (xCAT's dhcpd default lease time)


@dataclass(frozen=True)
class Host:
    """One reservation: node name, ``aa:bb:cc:dd:ee:ff``, IPv4, kind (``pxe``/``xnba``/
    ``grub2``), boot server address (``noderes.tftpserver`` or the management address) and
    the network it is in."""

    node: str
    mac: str
    ip: str
    kind: str
    server: str
    net: networks.Network


@dataclass
class Plan:
    """What a configuration is rendered from.

    Attributes:
        nets: parsed ``networks`` rows, in table order.
        hosts: reservations, in order.
        servers: distinct boot server addresses (index = the ``-s<i>`` class suffix).
        httpport: the web server's port (``httpport``; 80 is left out of URLs).
        foreign: entries of the old configuration that are not nodes, kept as they were
            (Kea: reservation dicts by subnet; dnsmasq: host lines).
        subnet_ids: subnet (``10.0.0.0/24``) -> Kea subnet id of the old configuration.
    """

    nets: list
    hosts: list
    servers: list
    httpport: str = "80"
    foreign: dict = field(default_factory=dict)
    subnet_ids: dict = field(default_factory=dict)

    def port(self) -> str:
        return "" if self.httpport in ("", "80", None) else f":{self.httpport}"

    def urls(self, server: str) -> tuple[str, str]:
        """(UEFI HTTP-boot URL, iPXE script URL) on *server*."""
        base = f"http://{server}{self.port()}/tftpboot"
        return f"{base}/snponly.efi", base + "/xcat/xnba/nodes/${hostname}"


class NodeErrors(NodemgrError):
    """Per-node problems: ``errors`` is ``[(node, one-line message)]``; nothing was written."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__(f"{len(errors)} node(s) refused")
        self.errors = errors


# -- gathering -----------------------------------------------------------------------------


def gather(store, resolver, nodes: list[str], nets: list, master: str | None = None
           ) -> tuple[list[Host], list]:
    """Resolve *nodes* into reservations, one read per table.

    Args:
        store: the table store (``site.master`` through :mod:`nodemgr.settings`).
        resolver: a :class:`~nodemgr.tables.resolve.Resolver` (group inheritance).
        nodes: node names, in output order.
        nets: :func:`nodemgr.networks.load` of the store.
        master: ``site.master`` as resolved by :mod:`nodemgr.settings` (None: unset).
    Returns:
        ``(hosts, errors)``: a :class:`Host` per good node and ``[(node, message)]`` for
        the others: no MAC, no hosts.ip, a malformed MAC or IP, an IP in no networks row,
        an unknown noderes.netboot, no management address (:class:`networks.NetworkError`).
        Duplicates are checked by :func:`check_duplicates`.
    """
    attrs = resolver.attrs(nodes, ATTRS)
    masters = networks.MasterResolver(master, nets)
    finder = _NetFinder(nets)
    servers: dict = {}  # (xcatmaster, network) -> address: the same for every node there
    hosts, errors = [], []
    for node in nodes:
        try:
            hosts.append(_host(node, attrs[node], finder, masters, servers))
        except (NodemgrError, ValueError) as exc:
            errors.append((node, str(exc)))
    return hosts, errors


class _NetFinder:
    """:func:`nodemgr.networks.network_of` for many addresses: the rows as integers, longest
    prefix first (ipaddress objects cost ~20 µs per address; this ~1 µs)."""

    def __init__(self, nets: list) -> None:
        self.rows = sorted(((int(n.net.network_address), int(n.net.netmask), n) for n in nets),
                           key=lambda r: -r[1])

    @staticmethod
    def parse(ip: str) -> int | None:
        """The dotted-quad *ip* as an integer, None when it is not one."""
        parts = ip.split(".")
        if len(parts) != 4:
            return None
        v = 0
        for p in parts:
            if not (p.isascii() and p.isdigit()) or len(p) > 3 or int(p) > 255:
                return None
            v = v << 8 | int(p)
        return v

    def find(self, value: int):
        for net, mask, n in self.rows:
            if value & mask == net:
                return n
        return None


_CANON_MAC = re.compile(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}")


def _mac(value: str | None) -> str | None:
    """:func:`~nodemgr.netboot.bootfiles.normalize_mac`, with a fast path for a value that
    is already one ``aa:bb:cc:dd:ee:ff``."""
    if value and len(value) == 17 and _CANON_MAC.fullmatch(value):
        return value.lower()
    return normalize_mac(value)


def _host(node: str, a: dict, finder: _NetFinder, masters, servers: dict) -> Host:
    mac = _mac(a.get("mac.mac"))
    nic = (a.get("noderes.installnic") or "").strip()
    if nic and ":" in nic:
        mac = normalize_mac(nic)
    if not mac:
        raise UsageError("no MAC address (mac.mac): cannot make a DHCP reservation")
    ip = (a.get("hosts.ip") or "").strip()
    if not ip:
        raise UsageError("no IP address (hosts.ip): cannot make a DHCP reservation")
    value = finder.parse(ip)
    if value is None:
        raise UsageError(f"hosts.ip '{ip}' is not an IPv4 address")
    net = finder.find(value)
    if net is None:
        raise UsageError(f"{ip} is in no networks row (run makenetworks, or add the network "
                         "with chtab/tabedit networks)")
    netboot = (a.get("noderes.netboot") or "pxe").strip()
    kind = KINDS.get(netboot)
    if kind is None:
        raise UsageError(f"noderes.netboot '{netboot}' is not supported (use one of "
                         f"{', '.join(KINDS)})")
    server = (a.get("noderes.tftpserver") or "").strip()
    if server:
        networks.check_reachable(server, ip, "noderes.tftpserver")
    else:
        key = (a.get("noderes.xcatmaster"), net.net, value >> 24 == 127)
        server = servers.get(key)
        if server is None:
            server = servers[key] = masters.for_node(ip, a.get("noderes.xcatmaster"))
    return Host(node, mac, ip, kind, server, net)


def check_duplicates(hosts: list[Host], foreign_keys: list[tuple[str, str, str]] = ()
                     ) -> list[tuple[str, str]]:
    """Two reservations with the same MAC or the same IP.

    Args:
        hosts: the reservations to be written.
        foreign_keys: ``(name, mac, ip)`` of kept non-node entries.
    Returns:
        ``[(node, "MAC aa:.. is also <other>'s")]``, one per later duplicate (names both).
    """
    errors = []
    by_mac: dict[str, str] = {}
    by_ip: dict[str, str] = {}
    for name, mac, ip in [*foreign_keys, *((h.node, h.mac, h.ip) for h in hosts)]:
        other = by_mac.setdefault(mac, name)
        if other != name:
            errors.append((name, f"MAC {mac} is also {other}'s (mac.mac): one of them is wrong"))
        other = by_ip.setdefault(ip, name)
        if other != name:
            errors.append((name, f"IP {ip} is also {other}'s (hosts.ip): one of them is wrong"))
    return errors


# -- Kea -----------------------------------------------------------------------------------


def _strip_comments(text: str) -> str:
    """Kea's JSON with ``//``, ``#`` and ``/* */`` comments removed (outside strings)."""
    out, i, n, in_str = [], 0, len(text), False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
            out.append(c)
        elif c == "#" or text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


def read_kea(path: str) -> dict | None:
    """The Kea configuration at *path* (``{"Dhcp4": ...}``), None when the file is absent.

    Raises:
        DhcpError: the file is not Kea JSON (comments are allowed).
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DhcpError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        cfg = json.loads(text) if text.lstrip().startswith("{\"Dhcp4\"") else \
            json.loads(_strip_comments(text))
    except ValueError as exc:
        raise DhcpError(f"{path} is not a Kea JSON configuration ({exc}); move it away "
                        "and run makedhcp -n") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("Dhcp4"), dict):
        raise DhcpError(f"{path} has no Dhcp4 object; move it away and run makedhcp -n")
    return cfg


def kea_reserved(cfg: dict | None) -> tuple[list[str], list[dict], dict]:
    """What an old Kea configuration holds.

    Returns:
        ``(names, reservations, subnet_ids)``: every reservation's ``hostname`` (or
        ``hw-address`` when it has none) in file order, the reservation dicts themselves,
        and ``"10.0.0.0/24" -> id``.
    """
    names, res, ids = [], [], {}
    for sn in (cfg or {}).get("Dhcp4", {}).get("subnet4", []) or []:
        if sn.get("subnet") and isinstance(sn.get("id"), int):
            ids[str(ipaddress.IPv4Network(sn["subnet"], strict=False))] = sn["id"]
        for r in sn.get("reservations", []) or []:
            names.append(r.get("hostname") or r.get("hw-address") or "")
            res.append(r)
    return names, res, ids


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _ranges(net: networks.Network) -> list[tuple[str, str]]:
    """``networks.dynamicrange`` (``a-b[,c-d]``) as address pairs inside the network.

    Raises:
        DhcpError: malformed, or outside the network (names the row).
    """
    out = []
    for part in _split(net.row.get("dynamicrange")):
        lo, sep, hi = part.partition("-")
        try:
            a, b = ipaddress.IPv4Address(lo.strip()), ipaddress.IPv4Address(hi.strip())
        except ValueError:
            a = b = None
        if not sep or a is None or a not in net.net or b not in net.net or a > b:
            raise DhcpError(f"networks {net.name}: dynamicrange '{part}' is not "
                            f"'first-last' inside {net.net}")
        out.append((str(a), str(b)))
    return out


def _subst_master(values: list[str], net, plan: Plan) -> list[str]:
    """xCAT's ``<xcatmaster>`` in gateway/nameservers: the boot server of that network."""
    if "<xcatmaster>" not in values:
        return values
    srv = next((h.server for h in plan.hosts if h.net.net == net.net), None)
    if srv is None:
        raise DhcpError(f"networks {net.name}: '<xcatmaster>' with no node in the network "
                        "to take the management address from; set the address")
    return [srv if v == "<xcatmaster>" else v for v in values]


def _subnet_id(net, plan: Plan, used: set[int]) -> int:
    """The old id of the subnet, else its network address as a number (stable across
    rewrites, so leases keep their subnet), else the next free one."""
    sid = plan.subnet_ids.get(str(net.net))
    if sid is None or sid in used:
        sid = int(net.net.network_address) or 1
        while sid in used or sid >= 2 ** 32 - 1:
            sid = (sid + 1) % (2 ** 32 - 1) or 1
    used.add(sid)
    return sid


def kea_classes(plan: Plan) -> tuple[list[dict], dict[int, list[str]]]:
    """Kea ``client-classes`` and, per server index, the names of its required classes.

    Building blocks (evaluated on arrival): ``ipxe`` (option 77 ``iPXE``), ``efi-x64``
    (option 93 = 7, 9 or 16), ``bios`` (93 = 0), ``httpclient`` (option 60 starts with
    ``HTTPClient``); reservation-only classes ``<kind>-s<i>`` (no test); and six
    ``only-if-required`` classes per server that set the boot file (mutually exclusive).
    Kea ARM "Client Classification" (``member``, ``only-if-required``).
    """
    classes = [
        {"name": "ipxe", "test": "option[77].hex == 'iPXE'"},
        {"name": "efi-x64", "test": "option[93].hex == 0x0007 or option[93].hex == 0x0009 "
                                    "or option[93].hex == 0x0010"},
        {"name": "bios", "test": "option[93].hex == 0x0000"},
        {"name": "httpclient", "test": "substring(option[60].hex,0,10) == 'HTTPClient'"},
    ]
    required: dict[int, list[str]] = {}
    for i, server in enumerate(plan.servers):
        pxe, xnba, grub2 = f"pxe-s{i}", f"xnba-s{i}", f"grub2-s{i}"
        classes += [{"name": pxe}, {"name": xnba}, {"name": grub2}]
        http_url, ipxe_url = plan.urls(server)
        boot = [
            (f"boot-http-s{i}", f"(member('{pxe}') or member('{xnba}') or member('{grub2}')) "
             "and member('httpclient') and not member('ipxe')", http_url,
             [{"name": "vendor-class-identifier", "data": "HTTPClient"}]),
            (f"boot-ipxe-s{i}", f"member('{xnba}') and member('ipxe')", ipxe_url, None),
            (f"boot-efi-xnba-s{i}", f"member('{xnba}') and member('efi-x64') and not "
             "member('ipxe') and not member('httpclient')", "snponly.efi", None),
            (f"boot-efi-grub2-s{i}", f"member('{grub2}') and member('efi-x64') and not "
             "member('httpclient')", "boot/grub2/grubx64.efi", None),
            (f"boot-bios-xnba-s{i}", f"member('{xnba}') and member('bios') and not "
             "member('ipxe')", "undionly.kpxe", None),
            (f"boot-bios-pxe-s{i}", f"member('{pxe}') and member('bios')", "pxelinux.0", None),
        ]
        for name, test, file, opts in boot:
            c = {"name": name, "only-if-required": True, "test": test, "boot-file-name": file}
            if opts:
                c["option-data"] = opts
            classes.append(c)
        required[i] = [b[0] for b in boot]
    return classes, required


def lease_file(conf_path: str, setting: str | None = None) -> str:
    """The memfile lease file: the setting ``kealeases`` when set; for a configuration
    under ``/etc/kea`` Debian's ``/var/lib/kea/kea-leases4.csv`` (the packaged service runs
    as ``_kea``, which cannot write ``/etc/kea``); else ``kea-leases4.csv`` next to it."""
    if setting:
        return setting
    d = os.path.dirname(os.path.abspath(conf_path))
    return "/var/lib/kea/kea-leases4.csv" if d == "/etc/kea" else \
        os.path.join(d, "kea-leases4.csv")


def kea_config(plan: Plan, conf_path: str, socket_path: str, leases: str | None = None
               ) -> dict:
    """The whole Kea DHCPv4 configuration for *plan*.

    Args:
        plan: networks, reservations, servers (:func:`plan_for`).
        conf_path: where the file goes.
        socket_path: the control socket (setting ``keasocket``).
        leases: the setting ``kealeases`` (:func:`lease_file`).
    Returns:
        ``{"Dhcp4": {...}}`` (Kea ARM "DHCPv4 Server Configuration"): interfaces from
        ``networks.mgtifname`` (``*`` when none is set) with raw sockets, the control
        socket, a persistent memfile lease database, option 175 (iPXE ``no-pxedhcp``,
        always sent), the classes of :func:`kea_classes`, a subnet per networks row
        (routers, domain-name-servers, domain-name, pools from dynamicrange) with its
        reservations ``{hw-address, ip-address, hostname, next-server, client-classes}``.
        Scaling: a reservation adds one short class name, the class list does not grow
        with the nodes (10,000 reservations reload in about a second; see the bench).
    Raises:
        DhcpError: a malformed dynamicrange or ``<xcatmaster>`` without a server.
    """
    classes, required = kea_classes(plan)
    sindex = {s: i for i, s in enumerate(plan.servers)}
    by_net: dict = {}
    for h in plan.hosts:
        by_net.setdefault(h.net.net, []).append(h)
    subnets, used = [], set()
    for net in plan.nets:
        hosts = by_net.get(net.net, [])
        sn: dict = {"id": _subnet_id(net, plan, used), "subnet": str(net.net)}
        pools = _ranges(net)
        if pools:
            sn["pools"] = [{"pool": f"{a} - {b}"} for a, b in pools]
        opts = []
        gw = _subst_master(_split(net.row.get("gateway")), net, plan)
        if gw:
            opts.append({"name": "routers", "data": ", ".join(gw)})
        ns = _subst_master(_split(net.row.get("nameservers")), net, plan)
        if ns:
            opts.append({"name": "domain-name-servers", "data": ", ".join(ns)})
        if (net.row.get("domain") or "").strip():
            opts.append({"name": "domain-name", "data": net.row["domain"].strip()})
        if opts:
            sn["option-data"] = opts
        idx = sorted({sindex[h.server] for h in hosts})
        if idx:
            sn["require-client-classes"] = [c for i in idx for c in required[i]]
        res = [{"hw-address": h.mac, "ip-address": h.ip, "hostname": h.node,
                "next-server": h.server, "client-classes": [f"{h.kind}-s{sindex[h.server]}"]}
               for h in hosts]
        res += plan.foreign.get(net.net, [])
        if res:
            sn["reservations"] = res
        subnets.append(sn)
    ifaces = sorted({(n.row.get("mgtifname") or "").strip() for n in plan.nets} - {""})
    d4: dict = {
        "interfaces-config": {"interfaces": ifaces or ["*"], "dhcp-socket-type": "raw"},
        "control-socket": {"socket-type": "unix", "socket-name": socket_path},
        "lease-database": {"type": "memfile", "persist": True, "lfc-interval": 3600,
                           "name": lease_file(conf_path, leases)},
        "valid-lifetime": LEASE_TIME,
        "authoritative": True,
        # iPXE: encapsulated option 175, sub-option 176 no-pxedhcp = 1 (no ~3 s ProxyDHCP wait)
        "option-def": [{"name": "ipxe-encap", "code": 175, "type": "binary"}],
        "option-data": [{"name": "ipxe-encap", "data": "B00101", "always-send": True}],
        "client-classes": classes,
        "subnet4": subnets,
    }
    if os.path.exists(LEASE_HOOK):  # lease4-get & co. for makedhcp -q
        d4["hooks-libraries"] = [{"library": LEASE_HOOK}]
    return {"Dhcp4": d4}


def render_kea(cfg: dict) -> str:
    """The file text of a Kea configuration (plain JSON, one reservation per line)."""
    d4 = cfg["Dhcp4"]
    head = {k: v for k, v in d4.items() if k != "subnet4"}
    parts = ['{"Dhcp4": ', json.dumps(head, indent=1)[:-2], ',\n "subnet4": [']
    for j, sn in enumerate(d4["subnet4"]):
        res = sn.get("reservations", [])
        rest = {k: v for k, v in sn.items() if k != "reservations"}
        parts.append(("," if j else "") + "\n  " + json.dumps(rest)[:-1])
        if res:
            parts.append(', "reservations": [\n   ')
            parts.append(",\n   ".join(map(json.dumps, res)))
            parts.append("]")
        parts.append("}")
    parts.append("]\n}}\n")
    return "".join(parts)


# -- dnsmasq -------------------------------------------------------------------------------


def read_hosts(path: str) -> list[str]:
    """Lines of a dnsmasq hosts file ([] when absent), comments and blanks dropped."""
    try:
        with open(path, encoding="utf-8") as f:
            return [ln.strip() for ln in f if ln.strip() and not ln.lstrip().startswith("#")]
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise DhcpError(f"cannot read {path}: {exc.strerror or exc}") from None


def _host_line_key(line: str) -> tuple[str, str, str]:
    """``(name, mac, ip)`` of a ``mac,ip,name`` hosts line (missing parts empty)."""
    parts = [p.strip() for p in line.split(",")]
    mac = next((p.lower() for p in parts if p.count(":") == 5), "")
    ip = next((p for p in parts if p.count(".") == 3 and p.replace(".", "").isdigit()), "")
    name = next((p for p in reversed(parts) if p and p.lower() != mac and p != ip
                 and not p.startswith(("set:", "tag:", "id:"))), "")
    return name, mac, ip


def dnsmasq_files(plan: Plan, hosts_path: str, pid_path: str) -> tuple[str, str]:
    """The dnsmasq options file and hosts file for *plan*.

    Returns:
        ``(options text, hosts text)``. Options (dnsmasq(8) long options without ``--``):
        ``pid-file``, ``dhcp-hostsfile``, ``interface`` per mgtifname, ``dhcp-range`` per
        network (``static`` without dynamicrange) tagged ``net<i>`` with its router, DNS
        and domain options, option 175 ``b0:01:01`` forced, ``dhcp-match``/
        ``dhcp-userclass``/``dhcp-vendorclass`` tags, ``dhcp-mac=set:<kind>-s<i>,<mac>``
        per node and mutually exclusive ``dhcp-boot`` lines. Hosts: ``mac,ip,name``.
    Raises:
        DhcpError: a malformed dynamicrange.
    """
    o = ["# written by nodemgr makedhcp: start dnsmasq with --conf-file=<this file>.",
         "# This file is read at start only (makedhcp restarts dnsmasq when it changes);",
         "# the hosts file is re-read on SIGHUP.",
         f"pid-file={pid_path}", f"dhcp-hostsfile={hosts_path}"]
    for ifname in sorted({(n.row.get("mgtifname") or "").strip() for n in plan.nets} - {""}):
        o.append(f"interface={ifname}")
    for i, net in enumerate(plan.nets):
        mask = net.net.netmask
        pools = _ranges(net)
        if pools:
            o += [f"dhcp-range=set:net{i},{a},{b},{mask},{LEASE_TIME}" for a, b in pools]
        else:
            o.append(f"dhcp-range=set:net{i},{net.net.network_address},static,{mask},"
                     f"{LEASE_TIME}")
        gw = _subst_master(_split(net.row.get("gateway")), net, plan)
        if gw:
            o.append(f"dhcp-option=tag:net{i},option:router,{','.join(gw)}")
        ns = _subst_master(_split(net.row.get("nameservers")), net, plan)
        if ns:
            o.append(f"dhcp-option=tag:net{i},option:dns-server,{','.join(ns)}")
        if (net.row.get("domain") or "").strip():
            o.append(f"dhcp-option=tag:net{i},option:domain-name,{net.row['domain'].strip()}")
    o += ["dhcp-option-force=175,b0:01:01",
          "dhcp-match=set:bios,option:client-arch,0",
          "dhcp-match=set:efi-x64,option:client-arch,7",
          "dhcp-match=set:efi-x64,option:client-arch,9",
          "dhcp-match=set:efi-x64,option:client-arch,16",
          "dhcp-userclass=set:ipxe,iPXE",
          "dhcp-vendorclass=set:httpclient,HTTPClient",
          "dhcp-option-force=tag:httpclient,60,HTTPClient"]
    sindex = {s: i for i, s in enumerate(plan.servers)}
    o += [f"dhcp-mac=set:{h.kind}-s{sindex[h.server]},{h.mac}" for h in plan.hosts]
    for i, s in enumerate(plan.servers):
        http_url, ipxe_url = plan.urls(s)
        o += [f"dhcp-boot=tag:{k}-s{i},tag:httpclient,tag:!ipxe,{http_url}"
              for k in ("pxe", "xnba", "grub2")]
        o += [f"dhcp-boot=tag:xnba-s{i},tag:ipxe,{ipxe_url}",
              f"dhcp-boot=tag:xnba-s{i},tag:efi-x64,tag:!ipxe,tag:!httpclient,snponly.efi,,{s}",
              f"dhcp-boot=tag:grub2-s{i},tag:efi-x64,tag:!httpclient,boot/grub2/grubx64.efi,,{s}",
              f"dhcp-boot=tag:xnba-s{i},tag:bios,tag:!ipxe,undionly.kpxe,,{s}",
              f"dhcp-boot=tag:pxe-s{i},tag:bios,pxelinux.0,,{s}"]
    lines = [f"{h.mac},{h.ip},{h.node}" for h in plan.hosts] + list(plan.foreign.get("lines", []))
    return "\n".join(o) + "\n", "".join(ln + "\n" for ln in lines)


# -- files ---------------------------------------------------------------------------------


def write_tmp(path: str, text: str) -> str:
    """Write *text* to a temporary name in *path*'s directory (created when missing; mode
    of the existing file, else 0644); returns the temporary path (rename it with
    ``os.replace``). Raises DhcpError."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return write_temp(path, text)
    except OSError as exc:
        raise DhcpError(f"cannot write {path}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def locked(path: str):
    """Hold an exclusive lock on ``<path>.lock`` (one makedhcp at a time per file)."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd = os.open(os.path.join(d, f".{os.path.basename(path)}.lock"), os.O_RDWR | os.O_CREAT,
                 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# -- the operations ------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a makedhcp run did: files written, the reload, warnings (one line each)."""

    files: list = field(default_factory=list)
    reloaded: str = ""
    warnings: list = field(default_factory=list)
    count: int = 0


def _paths(store) -> dict:
    return {k: settings.get(store, k) for k in ("dhcpserver", "keaconf", "keasocket",
                                                 "kealeases", "dnsmasqconf", "dnsmasqhosts",
                                                 "dnsmasqpid", "httpport")}


def backend(store) -> str:
    """The setting ``dhcpserver`` (``kea`` or ``dnsmasq``); DhcpError otherwise."""
    b = (settings.get(store, "dhcpserver") or "kea").strip().lower()
    if b not in ("kea", "dnsmasq"):
        raise DhcpError(f"site.dhcpserver '{b}' is not supported (kea or dnsmasq)")
    return b


def makedhcp(store, resolver, *, add: list[str] = (), delete: list[str] = (),
             replace: list[str] | None = None, new: bool = False) -> Outcome:
    """Write the DHCP configuration and load it into the running server.

    Args:
        store, resolver: the tables.
        add: nodes to add or refresh.
        delete: nodes whose reservation is removed.
        replace: the whole set of nodes (``-a``; ``[]`` with ``-a -d``), else None: the
            old configuration's nodes (every one refreshed from the tables) ± *add*/*delete*.
        new: ``-n`` (no different result: the configuration is always rendered whole).
    Returns:
        An :class:`Outcome`.
    Raises:
        NodeErrors: per-node problems (nothing written).
        DhcpError, kea.KeaError: global problems (nothing changed, or the old file
            restored when the running server refused it).
    """
    with store.site_cache():  # one read of site for the whole run (resolver included)
        return _makedhcp(store, resolver, add, delete, replace)


def _makedhcp(store, resolver, add, delete, replace) -> Outcome:
    p = _paths(store)
    kind = backend(store)
    with locked(p["keaconf"] if kind == "kea" else p["dnsmasqconf"]):
        nets = networks.load(store)
        if not nets:
            raise DhcpError("the networks table is empty: run makenetworks (or add a row) "
                            "before makedhcp")
        known = set(resolver.nodes())
        old_ids: dict = {}
        foreign: dict = {}
        if kind == "kea":
            old = read_kea(p["keaconf"])
            names, res, old_ids = kea_reserved(old)
            for name, r in zip(names, res, strict=True):
                if name not in known:
                    net = networks.network_of(r.get("ip-address"), nets)
                    foreign.setdefault(None if net is None else net.net, []).append(r)
            dropped = foreign.pop(None, [])
        else:
            lines = read_hosts(p["dnsmasqhosts"])
            names = [_host_line_key(ln)[0] for ln in lines]
            foreign["lines"] = [ln for ln, n in zip(lines, names, strict=True) if n not in known]
            dropped = []
        if replace is not None:
            want = list(dict.fromkeys(replace))
        else:
            want = [n for n in dict.fromkeys(names) if n in known]
            want += [n for n in add if n not in want]
        gone = set(delete)
        want = [n for n in want if n not in gone]
        hosts, errors = gather(store, resolver, want, nets, settings.get(store, "master"))
        fkeys = [_host_line_key(ln) for ln in foreign.get("lines", [])] if kind != "kea" else \
            [(r.get("hostname") or "?", (r.get("hw-address") or "").lower(),
              r.get("ip-address") or "") for rs in foreign.values() for r in rs]
        errors += check_duplicates(hosts, fkeys)
        if errors:
            raise NodeErrors(errors)
        plan = Plan(nets=nets, hosts=hosts, servers=list(dict.fromkeys(h.server for h in hosts)),
                    httpport=p["httpport"] or "80", foreign=foreign, subnet_ids=old_ids)
        out = Outcome(count=len(hosts))
        out.warnings += [f"kept no reservation for {r.get('hostname') or r.get('hw-address')} "
                         f"({r.get('ip-address')}): it is not a node and in no networks row"
                         for r in dropped]
        if kind == "kea":
            _apply_kea(plan, p, out)
        else:
            _apply_dnsmasq(plan, p, out)
        return out


def install(files: list[tuple[str, str]], check) -> str | None:
    """Write every ``(path, text)`` of *files* to a temporary name in its directory, run
    ``check(temporary path of the first)``, then rename them all (the first last); on any
    failure the temporaries are removed and nothing is replaced.

    Returns:
        The first file's previous text (None when it did not exist).
    Raises:
        whatever *check* raises (DhcpError, kea.KeaError), DhcpError for a write failure.
    """
    try:
        with open(files[0][0], encoding="utf-8") as f:
            old = f.read()
    except OSError:
        old = None
    tmps = []
    try:
        for path, text in files:
            tmps.append(write_tmp(path, text))
        check(tmps[0])
        for (path, _), tmp in reversed(list(zip(files, tmps, strict=True))):
            os.replace(tmp, path)
    finally:
        for t in tmps:
            if os.path.exists(t):
                os.unlink(t)
    return old


def _apply_kea(plan: Plan, p: dict, out: Outcome) -> None:
    conf = p["keaconf"]
    text = render_kea(kea_config(plan, conf, p["keasocket"], p.get("kealeases")))
    old_text = install([(conf, text)], kea.check_file)
    out.files.append(conf)
    try:
        out.reloaded = kea.reload(p["keasocket"])
    except kea.KeaNotRunning as exc:
        out.warnings.append(f"Kea is not running ({exc}); {conf} is written: start it with "
                            f"'systemctl start kea-dhcp4-server' (or kea-dhcp4 -c {conf})")
    except kea.KeaError:
        if old_text is not None:  # keep the file the running server uses
            os.replace(write_tmp(conf, old_text), conf)
        raise


def _apply_dnsmasq(plan: Plan, p: dict, out: Outcome) -> None:
    conf, hosts_path, pid_path = p["dnsmasqconf"], p["dnsmasqhosts"], p["dnsmasqpid"]
    opts, hosts = dnsmasq_files(plan, hosts_path, pid_path)
    old_opts = install([(conf, opts), (hosts_path, hosts)], check_dnsmasq)
    out.files += [conf, hosts_path]
    pid = read_pid(pid_path)
    if pid is None:
        out.warnings.append(f"dnsmasq is not running (no live pid in {pid_path}); the files "
                            f"are written: start it with 'dnsmasq --conf-file={conf}'")
    elif old_opts == opts:
        os.kill(pid, signal.SIGHUP)
        out.reloaded = f"SIGHUP to dnsmasq pid {pid}"
    else:
        out.reloaded = f"dnsmasq restarted (options changed): pid {restart_dnsmasq(pid, pid_path)}"


def check_dnsmasq(conf: str) -> None:
    """``dnsmasq --test --conf-file=<conf>`` (syntax check, dnsmasq(8)).

    Raises:
        DhcpError: dnsmasq missing (names dnsmasq-base) or its message, on one line.
    """
    try:
        r = subprocess.run(["dnsmasq", "--test", f"--conf-file={conf}"], capture_output=True,
                           text=True, timeout=30, check=False)
    except FileNotFoundError:
        raise DhcpError("dnsmasq is not installed (Debian package dnsmasq-base)") from None
    if r.returncode != 0:
        msg = " ".join((r.stderr or r.stdout).split())
        raise DhcpError(f"dnsmasq --test rejected the options file: {msg}")


def read_pid(path: str) -> int | None:
    """The pid in *path* when that process is alive, else None."""
    try:
        with open(path) as f:
            pid = int(f.read().split()[0])
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError, IndexError):
        return None


def restart_dnsmasq(pid: int, pid_path: str, timeout: float = 5.0) -> int:
    """Stop dnsmasq *pid* and start its own command line again, in its network namespace.

    Returns:
        The new pid (from *pid_path*, or the started process when it stays in the
        foreground).
    Raises:
        DhcpError: the command line cannot be read, the old process does not stop, or
            the new one exits at once (its message).
    """
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode() for a in f.read().split(b"\0") if a]
        ns_fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        same_ns = os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat("/proc/self/ns/net").st_ino
    except OSError as exc:
        raise DhcpError(f"cannot restart dnsmasq pid {pid}: {exc.strerror or exc}") from None
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while os.path.exists(f"/proc/{pid}") and _alive(pid):
            if time.monotonic() > deadline:
                raise DhcpError(f"dnsmasq pid {pid} did not stop within {timeout:.0f} s")
            time.sleep(0.02)
        cmd = argv if same_ns else ["nsenter", f"--net=/proc/self/fd/{ns_fd}", "--", *argv]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True,
                                pass_fds=(ns_fd,), cwd="/")
    finally:
        os.close(ns_fd)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = read_pid(pid_path)
        if new is not None and new != pid:
            return new
        if proc.poll() is not None and proc.returncode != 0:
            err = " ".join(proc.stderr.read().decode(errors="replace").split())
            raise DhcpError(f"dnsmasq did not start again: {err or proc.returncode}")
        time.sleep(0.02)
    return proc.pid


def _alive(pid: int) -> bool:
    """False for a gone or zombie process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# -- query ---------------------------------------------------------------------------------


def query(store, nodes: list[str]) -> list[tuple[str, bool, str]]:
    """What the running server has for each of *nodes* (``makedhcp -q``).

    Kea: the running configuration (``config-get``) — the node's reservation by hostname —
    and, when the lease_cmds hook is loaded, its lease (``lease4-get-all``, one call).
    dnsmasq: the hosts file line and the options file's tag, when dnsmasq runs (its pid
    file is live; it has no query interface).

    Returns:
        ``[(node, found, text)]``: text ``ip-address = ..., hardware-address = ...,
        next-server = ..., boot = <kind> (subnet ...)[, lease = <ip> until <UTC time>]``
        or ``no reservation``.
    Raises:
        DhcpError / kea.KeaNotRunning: the server is not running (one line).
    """
    p = _paths(store)
    have: dict[str, str] = {}
    if backend(store) == "kea":
        cfg = kea.running_config(p["keasocket"])
        leases = _kea_leases(p["keasocket"], cfg)
        for sn in cfg.get("Dhcp4", {}).get("subnet4", []):
            for r in sn.get("reservations", []) or []:
                kind = ",".join(c.rsplit("-s", 1)[0] for c in r.get("client-classes", []))
                lease = leases.get((r.get("hw-address") or "").lower())
                have.setdefault(r.get("hostname") or "", (
                    f"ip-address = {r.get('ip-address')}, hardware-address = "
                    f"{r.get('hw-address')}, next-server = {r.get('next-server') or '-'}, "
                    f"boot = {kind or '-'} (subnet {sn.get('subnet')})"
                    + (f", lease = {lease}" if lease else "")))
    else:
        pid = read_pid(p["dnsmasqpid"])
        if pid is None:
            raise DhcpError(f"dnsmasq is not running (no live pid in {p['dnsmasqpid']})")
        tags = {}
        for ln in read_hosts(p["dnsmasqconf"]):
            if ln.startswith("dhcp-mac=set:"):
                tag, _, mac = ln[len("dhcp-mac=set:"):].partition(",")
                tags[mac.lower()] = tag.rsplit("-s", 1)[0]
        for ln in read_hosts(p["dnsmasqhosts"]):
            name, mac, ip = _host_line_key(ln)
            have.setdefault(name, f"ip-address = {ip}, hardware-address = {mac}, "
                                  f"boot = {tags.get(mac, '-')} (dnsmasq pid {pid})")
    return [(n, n in have, have.get(n, "no reservation")) for n in nodes]


def _kea_leases(sock: str, cfg: dict) -> dict[str, str]:
    """hw-address -> ``<ip> until <UTC time>`` from ``lease4-get-all`` (lease_cmds hook,
    Kea ARM "lease_cmds: Lease Commands"); {} when the hook is not loaded."""
    hooks = cfg.get("Dhcp4", {}).get("hooks-libraries", []) or []
    if not any("lease_cmds" in (h.get("library") or "") for h in hooks):
        return {}
    ans = kea.command(sock, "lease4-get-all")
    out = {}
    for le in (ans.get("arguments") or {}).get("leases", []) if ans.get("result") == 0 else []:
        end = time.strftime("%Y-%m-%d %H:%M:%S",
                            time.gmtime(int(le.get("cltt", 0)) + int(le.get("valid-lft", 0))))
        out[(le.get("hw-address") or "").lower()] = f"{le.get('ip-address')} until {end} UTC"
    return out
