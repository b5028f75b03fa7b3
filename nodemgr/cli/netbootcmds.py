"""Provisioning commands: nodeset, updatenodestat, copycds.

Each command parses its arguments, expands the noderange, checks policy, calls
``nodemgr.netboot`` and prints ``node: text`` lines. Nothing here renders boot files,
parses media or writes tables itself.
"""

from __future__ import annotations

import sys

from nodemgr.cli.common import main_wrapper, open_store, parser, prepare
from nodemgr.cli.output import Reporter

EXIT = """
exit status:
  0  every node (or the media) succeeded
  1  a node failed (its line on stderr reads "node: Error: ..."), or the command was
     refused (bad noderange, bad argument, policy)
"""


def _prepare(command: str, noderange_text: str, args: list[str], audit: bool = True):
    """Store, resolver and expanded nodes after the policy check (audited like VM commands)."""
    store = open_store()
    resolver, nodes = prepare(store, command, noderange_text, args, audit=audit)
    return store, resolver, nodes


# -- nodeset -----------------------------------------------------------------------------------

NODESET_HELP = """\
Set the next network boot of nodes: writes chain, nodetype, bootparams, nodelist.status and
the boot files (pxelinux, iPXE or GRUB2 by noderes.netboot) under the TFTP root.

states:
  osimage[=<image>]  install or netboot an osimage (default: nodetype.provmethod); the node
                     needs a MAC (mac.mac or noderes.installnic); an install also arms a
                     one-time callback token. Red Hat family, Debian and RHV-H 4 get an
                     answer file rendered from their template, <installdir>/autoinst/<node>
                     (0600; served to that node only), named on the kernel line
                     (inst.ks=<url>; d-i: auto=true priority=critical url=<url>) and
                     holding the callback URL; other installs get the callback URL on the
                     kernel line (nodemgr.callback=<url>; RHEV-H: local_boot_trigger=<url>)
  install, netboot   legacy: the osimage <os>-<arch>-install|netboot-<profile> from nodetype
  boot               boot from the local disk (an explicit local-boot entry is written;
                     the answer file is removed)
  shell, standby     the genesis kernel with destiny=shell / standby
  runcmd=<cmd>       genesis runs <cmd> (e.g. runcmd=bmcsetup)
  runimage=<url>     genesis downloads and runs <url>
  offline            remove every boot file and the answer file of the node
  stat               print the state in the node's boot file ("offline" when none)
  next               advance the chain (chain.currchain; see the README for the rules)
  enact              write the current state's boot files again
A comma list is a chain: the first state now, the rest in chain.currchain
(nodeset n1 runcmd=bmcsetup,osimage=rhels8.6-x86_64-install-compute).

Output: "node: <new chain.currstate>", e.g. "n1: install rhels8.6-x86_64-compute".
Per-node problems (unknown osimage, no MAC, no template, a template error with its line,
no crypted root hash in passwd key=system, a postscript missing from
<installdir>/postscripts/) fail that node only; the others proceed.

examples:
  nodeset n1 osimage=rhels8.6-x86_64-install-compute
  nodeset 'compute' boot
  nodeset n1,n2 stat
  nodeset n1 next
""" + EXIT


@main_wrapper
def nodeset(argv: list[str]) -> int:
    p = parser("nodeset", NODESET_HELP)
    p.add_argument("noderange")
    p.add_argument("state", metavar="state[,state...]")
    p.add_argument("--json", action="store_true", help="print one JSON object per node")
    a = p.parse_args(argv)
    from nodemgr.netboot.nodeset import nodeset as run
    from nodemgr.netboot.nodeset import parse_steps

    parse_steps(a.state)  # a malformed state is refused before anything else
    store, resolver, nodes = _prepare("nodeset", a.noderange, [a.state],
                                      audit=a.state != "stat")
    out = Reporter(json_mode=a.json)
    for r in run(store, resolver, nodes, a.state):
        out.result(r)
    return out.exit_code


# -- updatenodestat ----------------------------------------------------------------------------

UPDATENODESTAT_HELP = """\
Set nodelist.status (and nodelist.statustime, "MM-DD-YYYY HH:MM:SS") of nodes.

Valid statuses (xCAT's): alive, unreachable, installing, installed, booting, postbooting,
netbooting, booted, powering-on, powering-off, discovering, discovered, configuring,
configured, standingby, shell, defined, unknown, failed, bmcready, syncing, out-of-sync,
synced. Any other word is an error and nothing changes (xCAT ignored it silently).
Silent on success; --json prints one object per node, {"node", "ok", "message": "",
"status", "statustime"}.

examples:
  updatenodestat n1 booted
  updatenodestat 'compute' installing
""" + EXIT


@main_wrapper
def updatenodestat(argv: list[str]) -> int:
    p = parser("updatenodestat", UPDATENODESTAT_HELP)
    p.add_argument("noderange")
    p.add_argument("status")
    p.add_argument("--json", action="store_true", help="print one JSON object per node")
    a = p.parse_args(argv)
    from nodemgr.netboot import status

    status.check(a.status)
    store, _resolver, nodes = _prepare("updatenodestat", a.noderange, [a.status])
    status.updatenodestat(store, nodes, a.status)
    if a.json:
        out = Reporter(json_mode=True)
        for node in nodes:
            row = store.get("nodelist", {"node": node}) or {}
            out.node(node, status=row.get("status"), statustime=row.get("statustime"))
    return 0


# -- copycds -----------------------------------------------------------------------------------

COPYCDS_HELP = """\
Import installation media: copy an ISO's tree to <site.installdir>/<os>/<arch> without
mounting it, put its boot kernel and initrd under <tftpdir>/xcat/<os>/<arch>/, and create
the osdistro <os>-<arch>, boottarget <os>-<arch> and osimage/linuximage
<os>-<arch>-install-compute rows (Debian: also -install-xen, a Xen dom0 host).

Recognised: Red Hat family DVDs (.treeinfo / .discinfo: rhels, centos, rocky, alma, fedora,
ol), RHEV-H live ISOs (kept whole as rhevh.iso; the install initrd carries the ISO) and
Xen installers (XenServer / XCP-ng: multiboot xen.gz + vmlinuz) and Debian netinst/DVD/BD
images (.disk/info and dists/<codename>/Release: debian12.5; the tree is kept as an apt
mirror for the preseed).
A progress bar is shown when stderr is a terminal.

examples:
  copycds RHEL-8.6.0-x86_64-dvd1.iso
  copycds -n rhevh6.5 -a x86_64 rhevh-6.5-20150115.0.el6ev.iso
  copycds -i XCP-ng_8.2.1.iso
  copycds debian-12.5.0-amd64-netinst.iso
""" + EXIT


class _Progress:
    """tqdm progress bar on a terminal (stderr), nothing in a pipe."""

    def __init__(self) -> None:
        self.bar = None

    def start(self, total: int) -> None:
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                            desc="Copying media", file=sys.stderr, leave=False)

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@main_wrapper
def copycds(argv: list[str]) -> int:
    p = parser("copycds", COPYCDS_HELP)
    p.add_argument("iso", nargs="+", metavar="file.iso")
    p.add_argument("-n", "--name", "--osver", dest="name", metavar="NAME",
                   help="distribution name (e.g. rhels8.6, rhevh6.5); needed when the media "
                   "cannot be identified")
    p.add_argument("-a", "--arch", metavar="ARCH",
                   help="architecture; must agree with the media's when it names one")
    p.add_argument("-p", "--path", metavar="DIR",
                   help="copy to DIR instead of <installdir>/<os>/<arch>")
    p.add_argument("-o", "--noosimage", action="store_true",
                   help="do not create the osimage/linuximage rows")
    p.add_argument("-w", "--nonoverwrite", action="store_true",
                   help="refuse media already copied there (fingerprint)")
    p.add_argument("-i", "--inspection", action="store_true",
                   help="only print DISTNAME, ARCH and DISCNO; copy nothing")
    a = p.parse_args(argv)
    from nodemgr.netboot import copycds as cc

    out = Reporter()
    if a.inspection:
        for iso in a.iso:
            m = cc.inspect(iso, a.name, a.arch)
            out.line(f"DISTNAME:{m.distname}\nARCH:{m.arch}\nDISCNO:{m.discno}")
        return 0
    from nodemgr import policy

    store = open_store()
    policy.audit(store, user=policy.current_user(), host="localhost", command="copycds",
                 noderange="", args=argv, status="Allowed")
    failed = False
    for iso in a.iso:
        bar = _Progress()
        try:
            res = cc.copycds(store, iso, name=a.name, arch=a.arch, path=a.path,
                             noosimage=a.noosimage, nonoverwrite=a.nonoverwrite,
                             on_total=bar.start, progress=bar.update)
        except cc.MediaError as exc:
            out.error(str(exc))
            failed = True
            continue
        except OSError as exc:
            out.error(f"copying {iso} failed: {exc.strerror or exc}")
            failed = True
            continue
        finally:
            bar.close()
        out.line(f"Copying media to {res.target}")
        for img in res.osimages:
            out.line(f"Created osimage {img}")
        out.line("Media copy operation successful")
    return 1 if failed else 0
