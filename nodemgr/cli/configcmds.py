"""``nodemgr-config`` (every shared setting and where its value comes from) and
``makenetworks`` (xCAT's: fill the ``networks`` table from this machine's interfaces).

Thin: the resolution is :mod:`nodemgr.settings`, the network logic :mod:`nodemgr.networks`.
"""

from __future__ import annotations

import sys

from nodemgr.cli.common import main_wrapper, open_store, parser, prepare

CONFIG_HELP = """\
Print every setting that more than one part of nodemgr reads (nodeset, copycds, makedhcp,
mknb, nodemgr-tftpd, the web app), its value and where the value comes from:

  site table        a row of the site table (chtab key=tftpdir site.value=/srv/tftp)
  <file>            the configuration file's [nodemgr] key (it also seeds a new database)
  built-in default  neither says otherwise
  unset             no value: for master, each node uses this machine's address on its
                    network (networks table); see -n

The database URL itself comes from $NODEMGR_DB, else the configuration file ($NODEMGR_CONF,
/etc/nodemgr/nodemgr.conf, etc/nodemgr.conf in the checkout).

examples:
  nodemgr-config
  nodemgr-config -n compute
  chtab key=master site.value=10.0.0.1 && nodemgr-config | grep master

exit status:
  0  printed
  1  bad argument, or (with -n) a node has no usable management address
"""


@main_wrapper
def nodemgr_config(argv: list[str]) -> int:
    """Entry point of ``nodemgr-config``."""
    p = parser("nodemgr-config", CONFIG_HELP)
    p.add_argument("-n", "--node", dest="noderange", metavar="NODERANGE",
                   help="also print, per node, the management address its boot files, DHCP "
                   "entry and callback URL use, or why there is none")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per setting (and per node with -n)")
    a = p.parse_args(argv)
    import json

    from nodemgr import config, networks, settings
    conf = config.load()
    store = open_store()
    rows = settings.table(store, conf)
    if a.json:
        print(json.dumps({"setting": "db", "value": _masked(conf.db_url),
                          "source": "$NODEMGR_DB" if _db_from_env() else
                          (conf.source or "built-in default")}))
    else:
        print(f"db: {_masked(conf.db_url)} "
              f"({'$NODEMGR_DB' if _db_from_env() else conf.source or 'built-in default'})")
    for key, value, source in rows:
        if a.json:
            print(json.dumps({"setting": key, "value": value, "source": source}))
        else:
            print(f"{key}: {value if value is not None else '-'} ({source})")
    if not a.noderange:
        return 0
    resolver, nodes = prepare(store, "nodemgr-config", a.noderange, argv, audit=False)
    attrs = resolver.attrs(nodes, ["hosts.ip", "noderes.xcatmaster"])
    site_master = store.site("master")
    masters = networks.MasterResolver(site_master, [] if site_master else networks.load(store))
    rc = 0
    for node in nodes:
        try:
            addr = masters.for_node(attrs[node].get("hosts.ip"),
                                    attrs[node].get("noderes.xcatmaster"))
            text, ok = f"master={addr}", True
        except networks.NetworkError as exc:
            text, ok, rc = str(exc), False, 1
        if a.json:
            print(json.dumps({"node": node, "ok": ok, "master" if ok else "error":
                              text.removeprefix("master=")}))
        elif ok:
            print(f"{node}: {text}")
        else:
            sys.stderr.write(f"{node}: Error: {text}\n")
    return rc


def _db_from_env() -> bool:
    import os

    return bool(os.environ.get("NODEMGR_DB"))


def _masked(url: str) -> str:
    from nodemgr.tables.store import mask_url

    return mask_url(url)


MAKENETWORKS_HELP = """\
Fill the networks table from this machine's IPv4 interfaces (xCAT makenetworks): one row per
network an interface is on (loopback, link-local and /32 addresses are skipped), with xCAT's
generated netname (10_0_0_0-255_255_255_0), net, mask, mgtifname, and this machine's address
as tftpserver and dhcpserver. A network that already has a row (same net and mask) is left
as it is, so edits made with chtab or tabedit survive.

A node's network is the row whose net/mask holds its hosts.ip; makedhcp writes a subnet per
row and nodeset uses this machine's address on the node's network when site.master is unset.

examples:
  makenetworks -d
  makenetworks && tabdump networks

exit status:
  0  done (or displayed)
  1  bad argument, or the table could not be written (nothing was changed)
"""


@main_wrapper
def makenetworks(argv: list[str]) -> int:
    """Entry point of ``makenetworks``."""
    from nodemgr import networks
    from nodemgr.tables import csvfmt
    from nodemgr.tables.schema import table

    p = parser("makenetworks", MAKENETWORKS_HELP)
    p.add_argument("-d", "--display", action="store_true",
                   help="print the rows that would be written (tabdump CSV), change nothing")
    a = p.parse_args(argv)
    rows = networks.scan()
    store = open_store()
    if a.display:
        sys.stdout.write(csvfmt.dump(table("networks").columns, rows))
        return 0
    with store.transaction():
        have = {(r["net"], r["mask"]) for r in store.select("networks", columns=("net", "mask"))}
        for r in rows:
            if (r["net"], r["mask"]) in have:
                print(f"{r['netname']}: exists, left as it is")
                continue
            store.insert("networks", r)
            print(f"{r['netname']}: added (net={r['net']} mask={r['mask']} "
                  f"mgtifname={r['mgtifname']})")
    return 0
