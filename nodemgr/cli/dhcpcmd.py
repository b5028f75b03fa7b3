"""``makedhcp`` (xCAT's): write the DHCP server configuration and load it into the running
server. Thin: the logic is :mod:`nodemgr.netboot.dhcp` and :mod:`nodemgr.netboot.kea`."""

from __future__ import annotations

import sys

from nodemgr.cli.common import main_wrapper, open_store, parser, prepare
from nodemgr.cli.output import Reporter

MAKEDHCP_USAGE = """\
makedhcp -n [-V|--verbose]
       makedhcp [-n] <noderange> [-V|--verbose]
       makedhcp -d <noderange> [-V|--verbose]
       makedhcp -a [-d] [-V|--verbose]
       makedhcp -q <noderange> | -q -a"""

MAKEDHCP_HELP = """\
Write the DHCP server configuration from the tables and load it into the running server
without a restart (xCAT's makedhcp). The back end is the setting dhcpserver: kea (default,
Kea DHCPv4) or dnsmasq (small sites).

  makedhcp -n               a new configuration: a subnet per networks row, every
                            reservation already in the configuration kept (refreshed
                            from the tables)
  makedhcp [-n] <noderange> add or refresh the reservations of these nodes
  makedhcp -d <noderange>   delete their reservations
  makedhcp -a [-d]          every node (-a -d: no reservation at all)
  makedhcp -q <noderange>   what the running server has for each node (-q -a: all)

A reservation is the node's MAC (mac.mac, or noderes.installnic when it is a MAC) ->
hosts.ip, host name = node name, next-server = noderes.tftpserver or the management address
(noderes.xcatmaster, site.master, else this machine's address on the node's network). The
boot file is chosen by the client's architecture (option 93), user class (77) and vendor
class (60), and the node's noderes.netboot:

  netboot   BIOS            x64 UEFI (7,9,16)         iPXE (user class iPXE)
  pxe       pxelinux.0      none (no UEFI pxelinux)   pxelinux.0 on BIOS
  xnba      undionly.kpxe   snponly.efi               .../tftpboot/xcat/xnba/nodes/${hostname}
  grub2*    none            boot/grub2/grubx64.efi    grubx64.efi on UEFI
  UEFI HTTP boot (vendor class HTTPClient), any node:
            http://<server>[:<httpport>]/tftpboot/snponly.efi, option 60 HTTPClient

Kea: the file (keaconf) is written to a temporary name, checked with kea-dhcp4 -t, renamed,
then loaded with config-reload over the control socket (keasocket); leases stay (memfile
kea-leases4.csv next to the file). Kea must run with -c <keaconf>.
dnsmasq: plain mac,ip,name lines in the hosts file (dnsmasqhosts, re-read on SIGHUP) and
an options file (dnsmasqconf; start dnsmasq with --conf-file=<it>) that is checked with
dnsmasq --test; dnsmasq gets SIGHUP (pid from dnsmasqpid), or is restarted with its own
command line when the options file changed (a new node, netboot or network: SIGHUP does
not re-read it).

Bad input changes nothing and is one line per node ("node: Error: ..."): no MAC, no
hosts.ip, an IP in no networks row, the same MAC or IP as another node (both named), no
management address. Silent on success (-V: a summary line on stdout: what was written
and how the server was reloaded).

files (settings, "nodemgr-config" prints them):
  keaconf      /etc/kea/kea-dhcp4.conf      keasocket   /run/kea/kea4-ctrl-socket
  dnsmasqconf  /etc/nodemgr/dnsmasq.conf    dnsmasqhosts /etc/nodemgr/dnsmasq.hosts
  dnsmasqpid   /run/nodemgr-dnsmasq.pid     httpport, master, dhcpserver

examples:
  makenetworks && makedhcp -n
  makedhcp compute
  makedhcp -d n17
  makedhcp -q n1,n2
  chtab key=dhcpserver site.value=dnsmasq && makedhcp -a

exit status:
  0  written and loaded; also when the server is not running (the files are written and
     a "Warning: ... not running ... start it with ..." line says how to start it)
  1  a node was refused or the server rejected the configuration (nothing changed, the
     running configuration kept), a bad argument, or (-q) a node has no reservation
"""


def _authorize(store, resolver, nodes: list[str], argv: list[str], audit: bool) -> None:
    """The policy check and audit row of :func:`nodemgr.cli.common.prepare` for -a."""
    from nodemgr import policy
    from nodemgr.errors import PolicyDenied

    user = policy.current_user()
    try:
        policy.authorize(store, resolver, "makedhcp", nodes, argv, user=user)
    except PolicyDenied:
        policy.audit(store, user=user, host="localhost", command="makedhcp", noderange="-a",
                     args=argv, status="Denied")
        raise
    if audit:
        policy.audit(store, user=user, host="localhost", command="makedhcp", noderange="-a",
                     args=argv, status="Allowed")


@main_wrapper
def makedhcp(argv: list[str]) -> int:
    p = parser("makedhcp", MAKEDHCP_HELP, usage=MAKEDHCP_USAGE)
    p.add_argument("noderange", nargs="?")
    p.add_argument("-n", action="store_true", dest="new", help="new configuration (see above)")
    p.add_argument("-a", action="store_true", dest="all", help="every node in nodelist")
    p.add_argument("-d", action="store_true", dest="delete",
                   help="delete (with a noderange or -a)")
    p.add_argument("-q", action="store_true", dest="query", help="query the running server")
    a = p.parse_args(argv)
    from nodemgr.errors import UsageError
    from nodemgr.netboot import dhcp

    if a.all and a.noderange:
        raise UsageError("give either -a or a noderange, not both")
    if not (a.new or a.all or a.noderange):
        raise UsageError("nothing to do: give -n, -a or a noderange (see makedhcp --help)")
    if (a.delete or a.query) and not (a.all or a.noderange):
        raise UsageError(f"-{'d' if a.delete else 'q'} needs a noderange or -a")
    if a.query and (a.delete or a.new):
        raise UsageError("-q cannot be combined with -n or -d")
    store = open_store()
    out = Reporter()
    resolver, nodes = None, []
    if a.noderange:
        resolver, nodes = prepare(store, "makedhcp", a.noderange, argv, audit=not a.query)
    else:
        from nodemgr.tables.resolve import Resolver

        resolver = Resolver(store)
        if a.all:  # every node: no noderange to expand, the same policy check and audit
            nodes = resolver.nodes()
            _authorize(store, resolver, nodes, argv, audit=not a.query)
    if a.query:
        for node, found, text in dhcp.query(store, nodes):
            out.node(node, text, ok=found)
        return out.exit_code
    kw: dict = {"new": a.new}
    if a.all:
        kw["replace"] = [] if a.delete else nodes
    elif a.delete:
        kw["delete"] = nodes
    else:
        kw["add"] = nodes
    try:
        res = dhcp.makedhcp(store, resolver, **kw)
    except dhcp.NodeErrors as exc:
        for node, msg in exc.errors:
            out.node(node, msg, ok=False)
        return 1
    for w in res.warnings:
        sys.stderr.write(f"Warning: {w}\n")
    if a.verbose:
        out.line(f"makedhcp: {res.count} reservation(s) in {', '.join(res.files)}"
                 + (f"; {res.reloaded}" if res.reloaded else ""))
    return 0
