"""discoverip: find the current IP of nodes known by MAC and write hosts.ip.

Thin: expands the noderange, checks policy, reads the tables the lookup needs, calls
:func:`nodemgr.discovery.discover` and writes the answers with
:func:`nodemgr.discovery.apply` (one transaction). Never prints a credential.
"""

from __future__ import annotations

from nodemgr.cli.common import main_wrapper, open_store, parser, prepare
from nodemgr.cli.output import Reporter

DISCOVERIP_HELP = """\
Find the current IP address of nodes known by MAC (mac.mac), e.g. server-pool machines on
DHCP, and write it to hosts.ip.

Sources, in order:
  1. SNMP: the neighbour (ARP/ND) table of the agents of the node's server pool
     (serverpool.snmpagents, see mkpool --snmp) or, when the pool names none, of the site
     (site.snmpagents): IP-MIB ipNetToPhysicalTable (IPv4 and IPv6), else RFC 1213
     ipNetToMediaTable. The same agents' BRIDGE-MIB / Q-BRIDGE-MIB forwarding tables give
     the switch port of the MAC.
  2. The management node's own neighbour table, when the pool's subnet is directly
     attached through one of the pool's interfaces (serverpool.interfaces, tried in
     order): every address of the subnet is probed first (IPv4, up to a /20).
An address inside the pool's subnet wins over others, IPv4 over IPv6, a fresher entry
over an older one.

Agents: host[:port][@v2c|@v3[:user]][,timeout=S][,retries=N], '|'-separated.
Credentials come from the passwd table, never from the command line:
  v2c  passwd key=snmp (or snmp:<host>) username=community password=<community>
  v3   passwd key=snmp username=<user> password=<auth key> cryptmethod=SHA/AES
       and key=snmppriv username=<user> password=<privacy key>

Output: "node: <ip> (via <agent>)" (via neigh:<interface> for the local table), then
"node: switch port <port> (via <agent>)" when a forwarding table knows the MAC. hosts.ip
gets the address; table ipdiscovery keeps the MAC, the source, the switch port, the age of
the entry (seconds since the agent or kernel last updated it) and the UTC time of the
answer. A MAC without an IP yet is a per-node error; hosts.ip is kept.

examples:
  discoverip cloud
  discoverip cloud-1,cloud-2 --dry-run
  chtab key=snmp,username=community passwd.password=s3cret
  chtab key=snmpagents site.value='10.0.0.1@v2c|10.0.0.2:1161@v3:netops,timeout=1'
"""

EXIT = """
exit status:
  0  every node's address was found
  1  a node failed (its line on stderr reads "node: Error: ..."), or the command was
     refused (bad noderange, bad agent list, policy)
"""


@main_wrapper
def discoverip(argv: list[str]) -> int:
    p = parser("discoverip", DISCOVERIP_HELP, EXIT)
    p.add_argument("noderange")
    p.add_argument("--dry-run", action="store_true", help="print what was found; write nothing")
    p.add_argument("--timeout", type=float, metavar="S",
                   help="default per-request agent timeout in seconds (site.snmptimeout, else "
                   "2); an agent that does not answer fails within S x (retries+1)")
    p.add_argument("--no-local", action="store_true",
                   help="do not probe or read the local neighbour table")
    p.add_argument("--json", action="store_true", help="one JSON object per node")
    a = p.parse_args(argv)
    from nodemgr import discovery
    from nodemgr.errors import UsageError
    store = open_store()
    timeout = a.timeout
    if timeout is None:
        try:
            timeout = float(store.site("snmptimeout", str(discovery.DEFAULT_TIMEOUT)))
        except ValueError:
            raise UsageError("site.snmptimeout is not a number of seconds") from None
    if not 0 < timeout <= 60:
        raise UsageError(f"invalid timeout {timeout:g} (0 < seconds <= 60)")
    resolver, nodes = prepare(store, "discoverip", a.noderange,
                               ["--dry-run"] if a.dry_run else [])
    attrs = resolver.attrs(nodes, ["mac.mac", "hosts.ip", "hypervisor.cluster"])
    pool_rows = {r["name"]: r for r in store.select("serverpool")}
    answers = discovery.discover(
        nodes, macs={n: attrs[n].get("mac.mac") for n in nodes},
        pools={n: pool_rows.get(attrs[n].get("hypervisor.cluster") or "") for n in nodes},
        site_agents=store.site("snmpagents"), passwd=store.select("passwd"),
        old_ips={n: attrs[n].get("hosts.ip") for n in nodes}, timeout=timeout,
        local=not a.no_local)
    if not a.dry_run:
        discovery.apply(store, answers)
    out = Reporter(json_mode=a.json)
    for ans in answers:
        if ans.error:
            out.node(ans.node, ans.error, ok=False)
            continue
        lines = [f"{ans.ip} (via {ans.via})"]
        if ans.switchport:
            port, _, via = ans.switchport.rpartition(" (via ")
            lines.append(f"switch port {port} (via {via}")
        out.node(ans.node, "\n".join(lines), ip=ans.ip, via=ans.via, mac=ans.mac,
                 age=ans.age, switchport=ans.switchport, written=not a.dry_run)
    return out.exit_code
