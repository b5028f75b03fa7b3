"""Server-pool commands: mkpool, lspool, rmpool, poolmachine, pooluser, chvirttype.

Thin wrappers over :mod:`nodemgr.pools` (the seed's ``asadmin create-server-pool``,
``create-machine``, ``create-server-pool-user``, ``create-machine-user``,
``add-libvirt-virtualization``). Every change is one store transaction and takes effect with
the next command; nothing here talks to a hypervisor.
"""

from __future__ import annotations

from nodemgr.cli.common import main_wrapper, open_store, parser
from nodemgr.cli.output import Reporter

EXIT = """
exit status:
  0  done
  1  bad argument, unknown pool or machine (nothing was changed)
"""

MKPOOL_HELP = """\
Create a server pool: a group of hypervisor machines of one virtualization type.

The pool is also a node group: `rpower cloud stat`, and VMs with vm.migrationdest=cloud are
placed on the pool's machine with the most free memory by mkvm / rpower on.

examples:
  mkpool cloud --virttype kvm --subnet 10.132.181.0/24 --interfaces "cscotun0;br0"
  mkpool xenpool --virttype xen --snmp 10.0.0.1@v2c
""" + EXIT


@main_wrapper
def mkpool(argv: list[str]) -> int:
    from nodemgr import pools

    p = parser("mkpool", MKPOOL_HELP)
    p.add_argument("pool")
    p.add_argument("--virttype", "--virtualization", default="kvm", metavar="TYPE",
                   help="kvm (default), qemu, xen, or another virttype row")
    p.add_argument("--subnet", metavar="NET", help="the pool's subnet a.b.c.d/n (discoverip "
                   "probes it for MAC-only machines)")
    p.add_argument("--interfaces", "--portName", metavar="LIST", help="local interfaces to "
                   "probe from, in order, ';'-separated (\"tun0;br0\")")
    p.add_argument("--snmp", metavar="AGENTS", help="SNMP agents with the subnet's ARP "
                   "table: host[:port][@v2c|@v3], '|'-separated")
    a = p.parse_args(argv)
    pools.create_pool(open_store(), a.pool, virttype=a.virttype, subnet=a.subnet,
                      interfaces=a.interfaces, snmpagents=a.snmp)
    return 0


LSPOOL_HELP = """\
List server pools: "pool: virttype=... subnet=... user=... machines=m1,m2"; with --json
one object per pool: {"name", "objtype": "pool", "attributes": {"virttype", "subnet",
"interfaces", "username", "snmpagents", "machines": [...]}} (unset ones left out).

examples:
  lspool
  lspool cloud
""" + EXIT


@main_wrapper
def lspool(argv: list[str]) -> int:
    from nodemgr import pools

    p = parser("lspool", LSPOOL_HELP)
    p.add_argument("pool", nargs="?")
    p.add_argument("--json", action="store_true", help="one JSON object per pool")
    a = p.parse_args(argv)
    store = open_store()
    rows = [pools.get_pool(store, a.pool)] if a.pool else store.select("serverpool")
    out = Reporter(json_mode=a.json)
    for r in sorted(rows, key=lambda r: r["name"]):
        attrs: dict = {k: r[k] for k in ("virttype", "subnet", "interfaces", "username",
                                         "snmpagents") if r.get(k)}
        machines = pools.machines(store, r["name"])
        if a.json:
            out.object(r["name"], "pool", {**attrs, "machines": machines})
        else:
            parts = [f"{k}={v}" for k, v in attrs.items()] + ["machines=" + ",".join(machines)]
            out.line(f"{r['name']}: " + " ".join(parts))
    return 0


RMPOOL_HELP = """\
Remove a server pool. A pool with machines is refused unless -f (they leave the pool; the
nodes themselves are kept).

examples:
  rmpool cloud
  rmpool cloud -f
""" + EXIT


@main_wrapper
def rmpool(argv: list[str]) -> int:
    from nodemgr import pools

    p = parser("rmpool", RMPOOL_HELP)
    p.add_argument("pool")
    p.add_argument("-f", "--force", action="store_true",
                   help="remove a pool that still has machines")
    a = p.parse_args(argv)
    pools.remove_pool(open_store(), a.pool, force=a.force)
    return 0


POOLMACHINE_HELP = """\
Add a machine (hypervisor node) to a server pool, or take it out with -d.

Takes effect at once: the next command sees the machine (no restart).

examples:
  poolmachine cloud local --local
  poolmachine cloud cloud-1 --mac 00:1c:c4:9f:e9:3b
  poolmachine cloud office --ip 10.132.181.57
  poolmachine cloud cloud-1 -d
""" + EXIT


@main_wrapper
def poolmachine(argv: list[str]) -> int:
    from nodemgr import pools

    p = parser("poolmachine", POOLMACHINE_HELP)
    p.add_argument("pool")
    p.add_argument("machine")
    p.add_argument("--ip", metavar="ADDR", help="a machine with a fixed address (hosts.ip)")
    p.add_argument("--mac", metavar="MAC", help="a DHCP machine known by MAC (mac.mac); "
                   "discoverip finds its address")
    p.add_argument("--local", action="store_true", help="the management node itself "
                   "(hosts.ip=127.0.0.1, local connection)")
    p.add_argument("-d", "--delete", action="store_true",
                   help="remove the machine from the pool")
    a = p.parse_args(argv)
    store = open_store()
    if a.delete:
        pools.remove_machine(store, a.pool, a.machine)
    else:
        pools.add_machine(store, a.pool, a.machine, ip=a.ip, mac=a.mac, local=a.local)
    return 0


POOLUSER_HELP = """\
Set the user the management node logs in as on a pool's machines, or (with --machine) one
machine's own user, which overrides the pool user. Passwords and keys stay in the passwd
table (key = the virtualization type) and site.sshkey, never on the command line.

examples:
  pooluser cloud cloud --userId 1001 --groupId 1001
  pooluser cloud admin --machine office
""" + EXIT


@main_wrapper
def pooluser(argv: list[str]) -> int:
    from nodemgr import pools

    p = parser("pooluser", POOLUSER_HELP)
    p.add_argument("pool")
    p.add_argument("user")
    p.add_argument("--machine", metavar="M", help="set machine M's user "
                   "(hostconn.username) instead of the pool's")
    p.add_argument("--userId", "--userid", dest="userid", metavar="N", help="Unix user id")
    p.add_argument("--groupId", "--groupid", dest="groupid", metavar="N",
                   help="Unix group id")
    p.add_argument("--authMethod", "--authmethod", dest="authmethod", metavar="M",
                   help="auth method for connection strings (default ssh)")
    a = p.parse_args(argv)
    pools.set_user(open_store(), a.pool, a.user, machine=a.machine, userid=a.userid,
                   groupid=a.groupid, authmethod=a.authmethod)
    return 0


CHVIRTTYPE_HELP = """\
Set a virtualization type's default connection-string template and emulator path (the
virttype table). Macros: #{auth.sep} #{auth.method} #{user.name} #{target.host}.

examples:
  chvirttype kvm --emulator /usr/bin/kvm
  chvirttype qemu --emulator /usr/bin/qemu-system-x86_64 \\
      --connstring 'qemu#{auth.sep}#{auth.method}://#{user.name}@#{target.host}/system'
  chvirttype xen --connstring 'ssh://#{user.name}@#{target.host}/'
""" + EXIT


@main_wrapper
def chvirttype(argv: list[str]) -> int:
    from nodemgr import pools

    p = parser("chvirttype", CHVIRTTYPE_HELP)
    p.add_argument("virttype")
    p.add_argument("--connstring", "--connectionString", metavar="TEMPLATE",
                   help="the connection-string template (virttype.connstring)")
    p.add_argument("--emulator", "--emulatorPath", metavar="PATH",
                   help="the emulator path (virttype.emulator)")
    p.add_argument("--authmethod", metavar="M", help="the auth method (#{auth.method})")
    a = p.parse_args(argv)
    pools.set_virttype(open_store(), a.virttype, connstring=a.connstring, emulator=a.emulator,
                       authmethod=a.authmethod)
    return 0
