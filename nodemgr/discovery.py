"""MAC -> IP discovery for nodes known only by MAC (server-pool machines on DHCP).

Two sources, in this order:

1. **SNMP** (:mod:`nodemgr.snmp`): the neighbour tables of the agents configured for the
   node's pool (``serverpool.snmpagents``) or for the site (``site.snmpagents``), plus the
   switch port of the MAC from their forwarding tables.
2. **Local neighbour table** (the seed's own method): when the pool's subnet is directly
   attached to the management node through one of the pool's interfaces (tried in the
   order given, like the seed's ``portName`` list), every address of the subnet is probed
   (one UDP datagram each, which makes the kernel ARP for it) and the neighbour table is
   read (``ip -j -s neigh``, else ``/proc/net/arp``).

Agent specification (``|``-separated): ``host[:port][@v2c|@v3[:user]][,timeout=S][,retries=N]``,
IPv6 hosts in brackets (``[fd00::1]:161``). Credentials come from the ``passwd`` table, key
``snmp:<host>:<port>``, then ``snmp:<host>``, then ``snmp``: v2c uses the row with username ``community`` (its password
is the community); v3 uses the row of the user (the first other row when none is named),
password = authentication key, ``cryptmethod`` = ``AUTH[/PRIV]`` protocols (default
``SHA/AES``; ``SHA`` alone is authNoPriv), privacy key = password of the same user under key
``snmppriv[:<host>[:<port>]]``.

What it must never do: write a table (callers do, see :func:`apply`), put a credential in a
message, or probe a subnet that is not directly attached.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping

from nodemgr.errors import UsageError
from nodemgr.snmp import (
    AUTH_PROTOCOLS,
    PRIV_PROTOCOLS,
    Agent,
    AgentTables,
    Credentials,
    Neighbour,
    SnmpError,
)

DEFAULT_TIMEOUT = 2.0
DEFAULT_RETRIES = 1
MAX_PROBE_HOSTS = 4096  # a /20; larger subnets are read, not swept
_SPEC = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:@,\[\]\s]+))(?::(?P<port>\d+))?"
                   r"(?:@(?P<ver>v2c|v3)(?::(?P<user>[^,\s]+))?)?(?P<opts>(?:,[a-z]+=[^,\s]+)*)$")


@dataclasses.dataclass(frozen=True)
class AgentSpec:
    """One configured agent (no credentials): host, port, version, v3 user, timeout (s),
    retries."""

    host: str
    port: int = 161
    version: str = "v2c"
    user: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES

    @property
    def name(self) -> str:
        """``host:port`` (``[v6]:port``), how messages name the agent."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_agents(text: str | None, *, timeout: float = DEFAULT_TIMEOUT) -> list[AgentSpec]:
    """Parse an agent list (see the module docstring). Raises UsageError naming the first
    bad entry."""
    out = []
    for item in (text or "").split("|"):
        item = item.strip()
        if not item:
            continue
        m = _SPEC.match(item)
        if not m:
            raise UsageError(f"invalid SNMP agent '{item}' "
                             "(host[:port][@v2c|@v3[:user]][,timeout=S][,retries=N])")
        port = int(m["port"] or 161)
        if not 0 < port < 65536:
            raise UsageError(f"invalid SNMP agent '{item}': port {port}")
        spec = {"host": m["v6"] or m["host"], "port": port, "version": m["ver"] or "v2c",
                "user": m["user"], "timeout": timeout, "retries": DEFAULT_RETRIES}
        for opt in filter(None, (m["opts"] or "").split(",")):
            k, v = opt.split("=", 1)
            try:
                if k == "timeout" and 0 < float(v) <= 60:
                    spec["timeout"] = float(v)
                elif k == "retries" and 0 <= int(v) <= 5:
                    spec["retries"] = int(v)
                else:
                    raise ValueError
            except ValueError:
                raise UsageError(f"invalid SNMP agent '{item}': option '{opt}' "
                                 "(timeout=0.1..60, retries=0..5)") from None
        out.append(AgentSpec(**spec))
    return out


def credentials(passwd: Iterable[Mapping], spec: AgentSpec) -> Credentials:
    """The credentials of *spec* from *passwd* rows. Raises UsageError (no secret in it)
    when they are missing or name an unknown protocol."""
    rows = list(passwd)

    def pick(key: str, user: str | None = None, exclude: str | None = None):
        for k in (f"{key}:{spec.name}", f"{key}:{spec.host}", key):
            for r in rows:
                if r.get("key") != k or (r.get("disable") or "") not in ("", "0", "no"):
                    continue
                if user is not None and r.get("username") != user:
                    continue
                if exclude is not None and r.get("username") == exclude:
                    continue
                return r
        return None

    if spec.version == "v2c":
        r = pick("snmp", "community")
        if r is None or not r.get("password"):
            raise UsageError(f"no SNMP community for agent {spec.name} (passwd key=snmp "
                             "username=community)")
        return Credentials("v2c", community=r["password"])
    r = pick("snmp", spec.user) if spec.user else pick("snmp", exclude="community")
    if r is None or not r.get("password"):
        raise UsageError(f"no SNMPv3 user {spec.user or ''} for agent {spec.name} "
                         "(passwd key=snmp)".replace("user  for", "user for"))
    auth, _, priv = (r.get("cryptmethod") or "SHA/AES").upper().partition("/")
    if auth not in AUTH_PROTOCOLS or (priv and priv not in PRIV_PROTOCOLS):
        raise UsageError(f"invalid SNMPv3 protocols '{r.get('cryptmethod')}' for agent "
                         f"{spec.name} (AUTH[/PRIV]: {', '.join(AUTH_PROTOCOLS)} / "
                         f"{', '.join(PRIV_PROTOCOLS)})")
    priv_key = None
    if priv:
        p = pick("snmppriv", r["username"])
        if p is None or not p.get("password"):
            raise UsageError(f"no SNMPv3 privacy key for user {r['username']} of agent "
                             f"{spec.name} (passwd key=snmppriv)")
        priv_key = p["password"]
    return Credentials("v3", user=r["username"], auth_key=r["password"], priv_key=priv_key,
                       auth=auth, priv=priv or "AES")


def node_macs(value: str | None) -> list[str]:
    """MACs of an xCAT ``mac.mac`` value (``m1|m2!host``...), lower-case, in order."""
    out = []
    for part in re.split(r"[|\s]+", value or ""):
        m = part.split("!", 1)[0].strip().lower().replace("-", ":")
        if re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", m) and m not in out:
            out.append(m)
    return out


# -- local neighbour table -----------------------------------------------------------------


def _run_ip(args: list[str]) -> str | None:
    try:
        r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout if r.returncode == 0 else None


def attached_interface(subnet: str, interfaces: Iterable[str]) -> str | None:
    """The first of *interfaces* (in order) that exists, is up and has an address in
    *subnet*; None when the subnet is not directly attached through any of them."""
    net = ipaddress.ip_network(subnet, strict=False)
    for name in interfaces:
        out = _run_ip(["-j", "addr", "show", "dev", name])
        if not out:
            continue
        try:
            links = json.loads(out)
        except ValueError:
            continue
        for link in links:
            if "UP" not in (link.get("flags") or []):
                continue
            for a in link.get("addr_info") or []:
                try:
                    if ipaddress.ip_address(a.get("local", "")) in net:
                        return name
                except ValueError:
                    continue
    return None


def probe(subnet: str, interface: str) -> int:
    """Make the kernel resolve every host address of IPv4 *subnet* on *interface*: one UDP
    datagram to the discard port (9) each, sent from a socket bound to the interface.
    Returns the number of addresses probed (0 for IPv6 or a subnet larger than
    ``MAX_PROBE_HOSTS``: those are only read). Needs root (SO_BINDTODEVICE)."""
    net = ipaddress.ip_network(subnet, strict=False)
    if net.version != 4 or net.num_addresses > MAX_PROBE_HOSTS + 2:
        return 0
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        s.setblocking(False)
        n = 0
        for host in net.hosts():
            try:
                s.sendto(b"", (str(host), 9))
            except OSError:  # EHOSTUNREACH after a failed ARP, ENOBUFS: not an answer
                pass
            n += 1
        return n
    finally:
        s.close()


def read_neighbours(interface: str) -> list[Neighbour]:
    """The kernel's neighbour entries on *interface* that hold a MAC (states other than
    FAILED/INCOMPLETE), from ``ip -j -s neigh`` (with the age of the entry, seconds since
    its last update) or, when that fails, ``/proc/net/arp`` (IPv4, no age)."""
    out = _run_ip(["-j", "-s", "neigh", "show", "dev", interface])
    rows: list[Neighbour] = []
    if out is not None:
        try:
            entries = json.loads(out or "[]")
        except ValueError:
            entries = []
        for e in entries:
            state = set(e.get("state") or [])
            mac = (e.get("lladdr") or "").lower()
            if not mac or state & {"FAILED", "INCOMPLETE"}:
                continue
            age = e.get("updated")
            rows.append(Neighbour(e.get("dst", ""), mac, None,
                                  float(age) if isinstance(age, (int, float)) else None,
                                  "neigh"))
        return rows
    try:
        with open("/proc/net/arp") as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return rows
    for line in lines:
        f = line.split()
        if len(f) >= 6 and f[5] == interface and f[2] != "0x0":
            rows.append(Neighbour(f[0], f[3].lower(), None, None, "neigh"))
    return rows


def local_lookup(subnet: str, interface: str, macs: set[str], *, wait: float = 1.5
                 ) -> list[Neighbour]:
    """Probe *subnet* on *interface*, then poll its neighbour table for up to *wait*
    seconds until every MAC of *macs* is there. Returns the table's rows."""
    probe(subnet, interface)
    deadline = time.monotonic() + wait
    while True:
        rows = read_neighbours(interface)
        if macs <= {r.mac for r in rows} or time.monotonic() >= deadline:
            return rows
        time.sleep(0.1)


# -- putting it together ---------------------------------------------------------------------


@dataclasses.dataclass
class Answer:
    """Outcome for one node: ``ip``/``via``/``age``/``mac`` on success, else ``error``;
    ``switchport`` (``name (via agent)``) whenever a forwarding table knows the MAC."""

    node: str
    ip: str | None = None
    via: str | None = None
    age: float | None = None
    mac: str | None = None
    switchport: str | None = None
    error: str | None = None


def _best(cands: list[tuple[Neighbour, str]], subnet: str | None) -> tuple[Neighbour, str]:
    net = ipaddress.ip_network(subnet, strict=False) if subnet else None

    def rank(item):
        ip = ipaddress.ip_address(item[0].ip)
        return (not (net is not None and ip in net), ip.is_link_local, ip.version,
                item[0].age if item[0].age is not None else float("inf"))

    return min(cands, key=rank)


def discover(nodes: list[str], *, macs: Mapping[str, str | None],
             pools: Mapping[str, Mapping | None], site_agents: str | None,
             passwd: list[Mapping], old_ips: Mapping[str, str | None],
             timeout: float = DEFAULT_TIMEOUT, local: bool = True) -> list[Answer]:
    """Find the current IP of each node.

    Args:
        nodes: node names; macs: node -> ``mac.mac`` value.
        pools: node -> its ``serverpool`` row (None when the node is in no pool).
        site_agents: ``site.snmpagents``, used for nodes whose pool names no agents.
        passwd: the ``passwd`` rows; old_ips: node -> current ``hosts.ip`` (for messages).
        timeout: default per-request agent timeout, seconds.
        local: allow the local neighbour-table fallback.

    Returns one :class:`Answer` per node, in order. Raises UsageError for a malformed agent
    list (nothing is asked then).
    """
    import asyncio

    from nodemgr.snmp import read_agents

    node_specs: dict[str, list[AgentSpec]] = {}
    for n in nodes:
        pool = pools.get(n) or {}
        node_specs[n] = parse_agents(pool.get("snmpagents") or site_agents, timeout=timeout)
    specs = {s.name: s for ss in node_specs.values() for s in ss}
    results: dict[str, AgentTables | SnmpError] = {}
    agents = []
    for name, spec in specs.items():
        try:
            creds = credentials(passwd, spec)
        except UsageError as exc:
            results[name] = SnmpError(str(exc))
            continue
        agents.append(Agent(spec.host, spec.port, creds, timeout=spec.timeout,
                            retries=spec.retries, name=name))
    wanted = {n: node_macs(macs.get(n)) for n in nodes}
    if agents and any(wanted.values()):
        results.update(asyncio.run(read_agents(agents)))

    local_cache: dict[str, tuple[str | None, list[Neighbour]]] = {}
    answers = []
    for n in nodes:
        ans = Answer(n)
        answers.append(ans)
        node_macs_ = wanted[n]
        if not node_macs_:
            ans.error = "no MAC address to look up (mac.mac is empty)"
            continue
        ans.mac = node_macs_[0]
        pool = pools.get(n) or {}
        cands: list[tuple[Neighbour, str]] = []
        problems = []
        for spec in node_specs[n]:
            r = results.get(spec.name)
            if isinstance(r, SnmpError):
                problems.append(str(r))
                continue
            if r is None:
                continue
            if r.malformed:
                problems.append(f"SNMP agent {spec.name} sent {r.malformed} malformed "
                                "entries (skipped)")
            cands += [(nb, spec.name) for nb in r.neighbours if nb.mac in node_macs_]
            if ans.switchport is None:
                port = next((r.ports[m] for m in node_macs_ if m in r.ports), None)
                if port:
                    ans.switchport = f"{port} (via {spec.name})"
        asked = [s.name for s in node_specs[n]]
        if not cands and local and pool.get("subnet") and pool.get("interfaces"):
            key = pool["subnet"] + "|" + pool["interfaces"]
            if key not in local_cache:
                ifaces = [i for i in re.split(r"[;,\s]+", pool["interfaces"]) if i]
                iface = attached_interface(pool["subnet"], ifaces)
                all_macs = {m for x in nodes if (pools.get(x) or {}).get("subnet")
                            == pool["subnet"] for m in wanted[x]}
                rows = local_lookup(pool["subnet"], iface, all_macs) if iface else []
                local_cache[key] = (iface, rows)
            iface, rows = local_cache[key]
            if iface:
                asked.append(f"neigh:{iface}")
                cands = [(nb, f"neigh:{iface}") for nb in rows if nb.mac in node_macs_]
            elif not asked:
                problems.append(f"subnet {pool['subnet']} is not directly attached through "
                                f"{pool['interfaces']}")
        if cands:
            nb, via = _best(cands, pool.get("subnet"))
            ans.ip, ans.via, ans.age, ans.mac = nb.ip, via, nb.age, nb.mac
            continue
        if not asked and not problems:
            ans.error = ("no SNMP agents configured (serverpool.snmpagents or "
                         "site.snmpagents) and no directly attached pool subnet")
            continue
        old = old_ips.get(n)
        kept = f"hosts.ip kept: {old}" if old else "hosts.ip not set"
        answered = [s.name for s in node_specs[n] if isinstance(results.get(s.name), AgentTables)]
        answered += [a for a in asked if a.startswith("neigh:")]
        if answered:
            problems.insert(0, f"no IP address yet for MAC {', '.join(node_macs_)} in the "
                               f"neighbour tables of {', '.join(answered)}")
        ans.error = "; ".join(problems) + f" ({kept})"
    return answers


def utc_now() -> str:
    """The current UTC time as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def apply(store, answers: Iterable[Answer], *, when: str | None = None) -> None:
    """Write successful answers in one transaction: ``hosts.ip`` and the node's
    ``ipdiscovery`` row (mac, ip, via, switch port, age in seconds, UTC time)."""
    when = when or utc_now()
    with store.transaction():
        for a in answers:
            if a.ip is None:
                continue
            store.upsert("hosts", {"node": a.node}, {"ip": a.ip})
            store.upsert("ipdiscovery", {"node": a.node},
                         {"mac": a.mac, "ip": a.ip, "via": a.via, "switchport": a.switchport,
                          "age": None if a.age is None else f"{a.age:g}",
                          "discovered": when})
