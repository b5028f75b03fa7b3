"""RHEV-M / oVirt data-center commands: lsve, cfgve, chhypervisor, rmhypervisor.

Named after xCAT's ``rhevm.pm`` helpers. ``lsve``/``cfgve`` act on objects of one engine
(``-m <engine node>``); ``chhypervisor``/``rmhypervisor`` act on hypervisor nodes, grouped
per engine (``hypervisor.mgr``), one connection each, through ``nodemgr.dispatch``. The
engine's URL, API version and CA come from its ``hostconn`` row, its credentials from the
``passwd`` table (key ``rhevm``); a host's root password for ``--add`` from key ``rhevh``.
Thin: parsing, table look-ups and printing only; the engine work is in
``nodemgr.plugins.rhevm``. Never prints or passes a password on the command line.
"""

from __future__ import annotations

from nodemgr.cli.common import main_wrapper, open_store, parser
from nodemgr.cli.output import Reporter
from nodemgr.errors import UsageError

EXIT = """
exit status:
  0  everything succeeded
  1  something failed ("name: Error: ..." on stderr), or bad arguments
"""


def _engine(store, resolver, engine: str):
    """The Target of engine node *engine* (its endpoint, for dispatch)."""
    from nodemgr.dispatch import Target
    from nodemgr.vmspec import Resolved, host_endpoint

    if engine not in set(resolver.nodes()):
        raise UsageError(f"engine node '{engine}' is not defined (nodeadd it, with "
                         "hostconn.uri)")
    res = Resolved(resolver, [])
    return Target(node=engine, driver="rhevm", endpoint=host_endpoint(res, engine, "rhevm"))


def _run_engine(target, fn, out: Reporter, timeout: float) -> int:
    """Run ``fn(driver)`` -> (label, text) on one engine; print ``label: text``."""
    from nodemgr import dispatch
    from nodemgr.plugins.base import NodeResult

    def call(drv, group):
        label, text = fn(drv)
        yield NodeResult(group[0].node, message=text, data={"label": label})

    for r in dispatch.run([target], call, timeout=timeout):
        if r.ok and r.data.get("label"):
            r.node = r.data.pop("label")
        out.result(r)
    return out.exit_code


def _timeout(store) -> float:
    try:
        return float(store.site("vmtimeout") or 120)
    except ValueError:
        return 120.0


# -- lsve -----------------------------------------------------------------------------------

LSVE_HELP = """\
List objects of a RHEV-M / oVirt engine.

Prints "<type>: [name]" followed by indented "key: value" lines (a data center lists its
storage domains, a cluster its networks). --json prints one object per engine object:
{"name", "objtype" (data_center, cluster, storage_domain, network, template, host),
"engine", "attributes": {key: value; a key listed several times: a list}}.

examples:
  lsve -t dc -m rhevm1
  lsve -t sd -m rhevm1 -o data1
""" + EXIT


@main_wrapper
def lsve(argv: list[str]) -> int:
    p = parser("lsve", LSVE_HELP)
    p.add_argument("-t", dest="kind", required=True, metavar="dc|cl|sd|nw|tpl|host",
                   choices=("dc", "cl", "sd", "nw", "tpl", "host"),
                   help="data centers, clusters, storage domains, logical networks, "
                   "templates, or hosts")
    p.add_argument("-m", dest="engine", required=True, metavar="ENGINE",
                   help="the engine node (its hostconn.uri, passwd key rhevm)")
    p.add_argument("-o", dest="objects", default="", metavar="NAME[,NAME...]",
                   help="only these objects (default: all)")
    p.add_argument("--json", action="store_true", help="one JSON object per engine object")
    a = p.parse_args(argv)
    from nodemgr.tables.resolve import Resolver

    store = open_store()
    target = _engine(store, Resolver(store), a.engine)
    names = [n for n in a.objects.split(",") if n]
    out = _VeJson(a.engine) if a.json else Reporter()
    return _run_engine(target, lambda d: (a.engine, "\n".join(d.ve_list(a.kind, names))),
                       out, _timeout(store))


class _VeJson(Reporter):
    """``lsve --json``: the engine's ``ve_list`` lines as one object per engine object."""

    def __init__(self, engine: str) -> None:
        super().__init__(json_mode=True)
        self.engine = engine

    def result(self, r) -> None:
        if not r.ok:
            return super().result(r)
        for obj in ve_objects(r.message.splitlines()):
            self.json({"name": obj["name"], "objtype": obj["objtype"], "engine": self.engine,
                       "attributes": obj["attributes"]})


def ve_objects(lines: list[str]) -> list[dict]:
    """``lsve`` text (``tag: [name]`` then ``  key: value`` lines) as
    ``[{"name", "objtype", "attributes"}]``; a key given more than once becomes a list."""
    objs: list[dict] = []
    for line in lines:
        if not line.startswith(" ") and line.endswith("]") and ": [" in line:
            tag, _, name = line.partition(": [")
            objs.append({"name": name[:-1], "objtype": tag, "attributes": {}})
        elif objs and ": " in line:
            key, _, value = line.strip().partition(": ")
            attrs = objs[-1]["attributes"]
            if key in attrs:
                old = attrs[key]
                attrs[key] = [*old, value] if isinstance(old, list) else [old, value]
            else:
                attrs[key] = value
    return objs


# -- cfgve ----------------------------------------------------------------------------------

CFGVE_HELP = """\
Create, change and remove objects of a RHEV-M / oVirt engine.

One action (-c, -r, -a, -b, -g, -s or --getca) on object -o NAME of type -t on engine
-m ENGINE; what each action needs per type:
  create (-c)       dc: [-k nfs|localfs]   cl: -d DC [-p CPUTYPE]   nw: -d DC [-n VLAN]
                    sd: -k nfs|localfs --host HOST --path PATH [--address NFSSERVER]
  remove (-r)       sd: must be detached; --host formats it.  dc: -f forces
  attach (-a)       sd: to data center -d DC;  nw: to cluster -l CLUSTER
  detach (-b)       sd: from -d DC (in maintenance);  nw: from -l CLUSTER
  activate (-g)     sd in -d DC
  deactivate (-s)   sd in -d DC (maintenance)
  getca (--getca)   fetch the engine's CA certificate over HTTPS (trust on first use)
                    into --ca-out FILE; then set hostconn.options ca_file=FILE on the
                    engine node

Prints "NAME: <result>".

examples:
  cfgve -t dc -m rhevm1 -o dc2 -c -k nfs
  cfgve -t cl -m rhevm1 -o cl2 -c -d dc2 -p "Intel Westmere Family"
  cfgve -t sd -m rhevm1 -o data1 -c -k nfs --address nfs1 --path /exports/data1 --host hv1
  cfgve -t sd -m rhevm1 -o data1 -a -d dc2
  cfgve -t nw -m rhevm1 -o storage -c -d dc2 -n 20
  cfgve -t nw -m rhevm1 -o storage -a -l cl2
  cfgve -m rhevm1 --getca --ca-out /etc/nodemgr/rhevm1-ca.pem
""" + EXIT


@main_wrapper
def cfgve(argv: list[str]) -> int:
    p = parser("cfgve", CFGVE_HELP)
    p.add_argument("-t", dest="kind", choices=("dc", "cl", "sd", "nw", "tpl"),
                   metavar="dc|cl|sd|nw|tpl", help="the object type")
    p.add_argument("-m", dest="engine", required=True, metavar="ENGINE",
                   help="the engine node")
    p.add_argument("-o", dest="obj", metavar="NAME", help="the object")
    g = p.add_mutually_exclusive_group()
    for flag, act in (("-c", "create"), ("-r", "remove"), ("-a", "attach"), ("-b", "detach"),
                      ("-g", "activate"), ("-s", "deactivate")):
        g.add_argument(flag, dest="action", action="store_const", const=act,
                       help=f"{act} the object")
    g.add_argument("--getca", dest="action", action="store_const", const="getca",
                   help="fetch the engine's CA certificate")
    p.add_argument("--ca-out", metavar="FILE", help="where --getca writes the certificate")
    p.add_argument("-f", "--force", action="store_true", help="force the removal of a dc")
    p.add_argument("-d", dest="dc", metavar="DC", help="the data center (default Default)")
    p.add_argument("-l", dest="cluster", metavar="CLUSTER", help="the cluster")
    p.add_argument("-k", dest="storage_type", metavar="nfs|localfs", help="the storage type")
    p.add_argument("-p", dest="cputype", default="Intel Westmere Family", metavar="CPUTYPE",
                   help="a cluster's CPU type (default Intel Westmere Family)")
    p.add_argument("-n", dest="vlan", metavar="VLAN", help="a network's VLAN id")
    p.add_argument("--host", metavar="HOST", help="the host that creates (or formats) an sd")
    p.add_argument("--path", metavar="PATH", help="an sd's export path")
    p.add_argument("--address", metavar="NFSSERVER", help="an sd's NFS server")
    a = p.parse_args(argv)
    if not a.action:
        raise UsageError("give one action: -c, -r, -a, -b, -g, -s or --getca")
    from nodemgr.tables.resolve import Resolver

    store = open_store()
    target = _engine(store, Resolver(store), a.engine)
    if a.action == "getca":
        if not a.ca_out:
            raise UsageError("--getca needs --ca-out FILE")
        return _getca(target, a.ca_out)
    if not a.kind or not a.obj:
        raise UsageError("-t and -o are required")
    k, o, act = a.kind, a.obj, a.action

    def need(value, flag):
        if not value:
            raise UsageError(f"{act} of a {k} needs {flag}")
        return value

    def fn(d):
        if act == "remove":
            return o, d.remove_object(k, o, force=a.force, host=a.host)
        if k == "dc" and act == "create":
            return o, d.dc_create(o, local=(a.storage_type == "localfs"))
        if k == "cl" and act == "create":
            return o, d.cluster_create(o, a.dc or "Default", a.cputype)
        if k == "nw":
            if act == "create":
                return o, d.network_create(o, a.dc or "Default", a.vlan)
            if act == "attach":
                return o, d.network_attach(o, need(a.cluster, "-l CLUSTER"), a.dc)
            if act == "detach":
                return o, d.network_detach(o, need(a.cluster, "-l CLUSTER"))
        if k == "sd":
            if act == "create":
                return o, d.sd_create(o, need(a.storage_type, "-k nfs|localfs"),
                                      need(a.host, "--host"), need(a.path, "--path"),
                                      a.address)
            dc = a.dc or "Default"
            if act == "attach":
                return o, d.sd_attach(o, dc)
            if act == "detach":
                return o, d.sd_detach(o, dc)
            if act in ("activate", "deactivate"):
                return o, d.sd_activate(o, dc, act == "activate")
        raise UsageError(f"cfgve cannot {act} a {k}")

    # argument errors are found before any connection
    if k in ("dc", "cl", "tpl") and act not in ("create", "remove") or \
            (k == "tpl" and act == "create"):
        raise UsageError(f"cfgve cannot {act} a {k}")
    if k == "sd" and act == "create":
        need(a.storage_type, "-k nfs|localfs"), need(a.host, "--host"), need(a.path, "--path")
    if k == "nw" and act in ("attach", "detach"):
        need(a.cluster, "-l CLUSTER")
    return _run_engine(target, fn, Reporter(), _timeout(store))


def _getca(target, out_path: str) -> int:
    import os
    import tempfile

    from nodemgr.plugins.rhevm import RhevmDriver

    drv = RhevmDriver(target.endpoint, 30)
    pem = drv.engine.fetch_ca()
    d = os.path.dirname(os.path.abspath(out_path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".ca-")
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.replace(tmp, out_path)
    fingerprint = _fingerprint(pem)
    print(f"{target.node}: CA certificate written to {out_path} (SHA-256 {fingerprint}: "
          f"compare it with the engine's); set hostconn.options ca_file={out_path}")
    return 0


def _fingerprint(pem: bytes) -> str:
    """SHA-256 fingerprint (``AB:CD:...``) of the first certificate in *pem*."""
    import hashlib
    import ssl

    text = pem.decode("ascii", "replace")
    start = text.index("-----BEGIN CERTIFICATE-----")
    end = text.index("-----END CERTIFICATE-----", start) + len("-----END CERTIFICATE-----")
    digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(text[start:end])).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


# -- chhypervisor / rmhypervisor ---------------------------------------------------------------

CHHYP_HELP = """\
Manage RHEV-H / oVirt hypervisor hosts through their engine (hypervisor.mgr).

Host network (-n) and power-management (-p) configuration are not implemented.

examples:
  chhypervisor hv1,hv2 --add
  chhypervisor rhevh3 -a
  chhypervisor hv1 -d
""" + EXIT

RMHYP_HELP = """\
Remove RHEV-H / oVirt hypervisor hosts from their engine (hypervisor.mgr).

The host must be in maintenance, unless -f, which deactivates it first.

examples:
  rmhypervisor hv2 -f
""" + EXIT


def _host_run(noderange_text: str, argv: list[str], command: str, fn) -> int:
    from nodemgr import dispatch, noderange, policy
    from nodemgr.dispatch import Target
    from nodemgr.plugins.base import NodeResult
    from nodemgr.tables.resolve import Resolver
    from nodemgr.vmspec import Resolved, host_endpoint

    store = open_store()
    resolver = Resolver(store)
    nodes = noderange.expand(noderange_text, resolver)
    policy.authorize(store, resolver, command, nodes, argv, user=policy.current_user())
    cols = ["hypervisor.mgr", "hypervisor.cluster", "hosts.ip"]
    attrs = resolver.attrs(nodes, cols)
    res = Resolved(resolver, [])
    targets = []
    for n in nodes:
        mgr = attrs[n].get("hypervisor.mgr")
        if not mgr:
            targets.append(Target(node=n, driver="rhevm", endpoint=None,
                                  error="Missing the management point in 'hypervisor.mgr'."))
        else:
            targets.append(Target(node=n, driver="rhevm",
                                  endpoint=host_endpoint(res, mgr, "rhevm")))

    def call(drv, group):
        for t in group:
            try:
                yield NodeResult(t.node, message=fn(drv, t.node, attrs[t.node], res))
            except Exception as exc:  # DriverError or UsageError: this host only
                from nodemgr.dispatch import error_message

                yield NodeResult(t.node, ok=False, message=error_message(exc))

    out = Reporter()
    for r in dispatch.run(targets, call, timeout=_timeout(store)):
        out.result(r)
    return out.exit_code


@main_wrapper
def chhypervisor(argv: list[str]) -> int:
    p = parser("chhypervisor", CHHYP_HELP)
    p.add_argument("noderange")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("-a", "--approve", dest="op", action="store_const", const="approve",
                   help="approve a self-registered host (pending_approval) into its cluster "
                   "(hypervisor.cluster, default Default)")
    g.add_argument("--add", dest="op", action="store_const", const="add",
                   help="add the host to its cluster: address from hosts.ip (else the node "
                   "name), root password from the passwd table (key rhevh, user root); "
                   "waits until up")
    g.add_argument("-e", "--activate", dest="op", action="store_const", const="activate",
                   help="activate (maintenance -> up)")
    g.add_argument("-d", "--deactivate", dest="op", action="store_const", const="deactivate",
                   help="put into maintenance")
    g.add_argument("-l", "--list", dest="op", action="store_const", const="list",
                   help="show the host, its NICs and its VMs")
    g.add_argument("-n", dest="op", action="store_const", const="network",
                   help="host network configuration (not implemented)")
    g.add_argument("-p", dest="op", action="store_const", const="power",
                   help="power-management configuration (not implemented)")
    a = p.parse_args(argv)
    if a.op in ("network", "power"):
        raise UsageError(f"chhypervisor -{a.op[0]} ({a.op} configuration) is not "
                         "implemented yet")

    def fn(drv, node, at, res):
        cluster = at.get("hypervisor.cluster") or "Default"
        if a.op == "approve":
            return drv.host_approve(node, cluster)
        if a.op == "add":
            _, pw = res.credentials("rhevh", "root")
            return drv.host_add(node, at.get("hosts.ip") or node, cluster, pw)
        if a.op == "activate":
            return drv.host_activate(node)
        if a.op == "deactivate":
            return drv.host_deactivate(node)
        return "\n".join(drv.host_info(node))

    return _host_run(a.noderange, argv, "chhypervisor", fn)


@main_wrapper
def rmhypervisor(argv: list[str]) -> int:
    p = parser("rmhypervisor", RMHYP_HELP)
    p.add_argument("noderange")
    p.add_argument("-f", "--force", action="store_true",
                   help="deactivate the host first (put it into maintenance)")
    a = p.parse_args(argv)
    return _host_run(a.noderange, argv, "rmhypervisor",
                     lambda drv, node, at, res: drv.host_remove(node, a.force))
