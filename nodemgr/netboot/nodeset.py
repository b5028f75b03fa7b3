"""``nodeset``: the chain state machine, bootparams, node status, tokens and boot files.

States (xCAT ``destiny.pm setdestiny``; reference §5.2): ``osimage[=<img>]``, legacy
``install``/``netboot``/``statelite`` (image ``<os>-<arch>-<provmethod>-<profile>`` from
nodetype), ``boot``, ``shell``, ``standby``, ``runcmd=<cmd>``, ``runimage=<url>``,
``offline``, ``stat``, ``next``, ``enact``; a comma list is a multi-step chain (first step
now, the rest in ``chain.currchain``). ``shell``, ``standby``, ``runcmd=`` and ``runimage=``
are parsed and kept in chains, but refused when applied: they boot xCAT's genesis image and
talk to xcatd, neither of which nodemgr provides, and a boot file that cannot work is never
written.

Addresses come from :mod:`nodemgr.networks` (``noderes.xcatmaster``, ``site.master``, else
this machine's address on the node's network; never a loopback address for a node that is
not on loopback) and :mod:`nodemgr.settings` (``tftpdir``, ``callbackurl``). HTTP URLs name
the TFTP tree as ``/tftpboot/`` whatever ``tftpdir`` is: the web app and etc/nginx map it.

``next`` (replaces xCAT's ``nextdestiny``, which could loop, issues #5098, #1803, PR #7713):

1. ``currchain`` not empty → its first step becomes current, the rest stays.
2. ``currchain`` empty and the node never had a state → start ``chain.chain`` (discovery).
3. ``currchain`` empty otherwise → the node is at the end of its chain: ``boot``,
   ``standby``, ``shell`` and diskless images (``netboot``/``statelite``) stay where they are
   (re-applied); a one-shot step (an install, ``runcmd=``, ``runimage=``) is never repeated
   and becomes ``standby``; ``offline`` stays ``offline``.

So repeated ``next`` reaches a fixed point after at most ``len(chain) + 1`` steps and never
re-runs a one-shot step. An install whose chain has no further step gets ``currchain=boot``
(xCAT), so the install-finished callback's ``next`` boots the node from its disk.

Every write of one call happens in one transaction, after every node's plan and boot
file text is computed; per-node problems (unknown osimage, missing MAC, bad name) fail that
node only and change nothing for it. Boot files follow the tables: they are written under
temporary names before the commit (a full disk fails the node, not the run) and renamed
into place only once the transaction commits — the caller's, when ``apply`` joins one — so
a failed commit leaves both the tables and the TFTP tree as they were. An install of an OS
family with an answer file (:mod:`nodemgr.netboot.autoinst`) also gets
``<installdir>/autoinst/<node>`` (0600), staged the same way. A ``bootpending`` row committed
with the tables names each node whose files are not all in place yet; a writer killed
before the renames leaves them, and the next writer (:func:`recover`) redoes those nodes.
This module must never print (commands do) and never put a token anywhere but the node's
answer file (else its boot file) and the ``nodetoken`` hash.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass, field
from urllib.parse import quote

from nodemgr import networks, settings
from nodemgr.errors import NodemgrError, UsageError
from nodemgr.netboot import autoinst, bootfiles, files, status, tokens
from nodemgr.plugins.base import NodeResult

log = logging.getLogger("nodemgr.nodeset")

#: Fault injection for the kill test (tests/netboot/test_crash.py): the name of a point in
#: :func:`apply` where this process kills itself with SIGKILL — ``staged`` (temporaries
#: written), ``in-transaction`` (tables written, not committed), ``committed`` (before any
#: rename), ``renaming`` (boot files renamed, answer files not), ``published`` (every file
#: in place, the ``bootpending`` rows not yet deleted). Unset in normal use.
CRASHPOINT = os.environ.get("NODEMGR_CRASHPOINT") or None


def _crash(point: str) -> None:
    if CRASHPOINT == point:
        os.kill(os.getpid(), signal.SIGKILL)

SIMPLE = ("boot", "shell", "standby", "offline", "install", "netboot", "statelite", "osimage")
SINGLE_ONLY = ("stat", "next", "enact", "offline")
STICKY = ("boot", "standby", "shell", "netboot", "statelite", "offline")
GENESIS = ("shell", "standby", "runcmd", "runimage")
CALLBACK_ARG = "nodemgr.callback"
#: URL path of the TFTP root on the web server, whatever ``tftpdir`` is (the web app and
#: etc/nginx map it to the resolved ``tftpdir``).
HTTP_TFTP_PREFIX = "/tftpboot"

_ATTRS = ("nodetype.os", "nodetype.arch", "nodetype.profile", "nodetype.provmethod",
          "noderes.netboot", "noderes.tftpserver", "noderes.xcatmaster", "noderes.tftpdir",
          "noderes.installnic", "mac.mac", "hosts.ip", "chain.currstate", "chain.currchain",
          "chain.chain", "bootparams.addkcmdline", "hypervisor.mgr",
          "postscripts.postscripts", "postscripts.postbootscripts")
#: Attributes only ``next``, ``enact`` and ``boot`` read; an image-only request
#: (``osimage=``, ``install``, ...) skips them.
_STATE_ATTRS = ("chain.currstate", "chain.currchain", "chain.chain")
_IMAGE_WORDS = ("osimage", "install", "netboot", "statelite")
#: Up to this many nodes, boot files are written per node from the alias records; above,
#: each format's directories are scanned once (cheaper than a record lookup per node).
PER_NODE_MAX = 64


class NodeFailure(NodemgrError):
    """One node cannot take the requested state (reported as that node's error)."""


def parse_steps(state: str) -> list[str]:
    """Split and check a state argument (``runcmd=bmcsetup,shell,osimage=img``).

    Returns:
        The steps, in order.
    Raises:
        UsageError: empty, unknown (``Unknown state X requested``), a value missing, or
            ``stat``/``next``/``enact``/``offline`` inside a multi-step chain.
    """
    steps = [s.strip() for s in (state or "").split(",")]
    if not state or any(not s for s in steps):
        raise UsageError("no state given (boot, shell, standby, offline, stat, next, enact, "
                         "runcmd=<cmd>, runimage=<url>, osimage[=<image>], install, netboot)")
    for s in steps:
        word, eq, value = s.partition("=")
        if word in ("runcmd", "runimage"):
            if not value:
                raise UsageError(f"state '{s}' needs a value ({word}=...)")
            if word == "runimage" and not value.startswith(("http://", "https://", "ftp://",
                                                             "tftp://")):
                raise UsageError(f"runimage needs an http://, https://, ftp:// or tftp:// URL, "
                                 f"not '{value}'")
            if any(c.isspace() for c in value):
                raise UsageError(f"state '{s}' must not contain spaces")
        elif word == "osimage":
            if eq and not value:
                raise UsageError("osimage= needs an image name")
        elif word in SIMPLE or word in SINGLE_ONLY:
            if eq:
                raise UsageError(f"Unknown state {s} requested")
        else:
            raise UsageError(f"Unknown state {s} requested")
        if word in SINGLE_ONLY and len(steps) > 1:
            raise UsageError(f"'{word}' cannot be part of a chain")
    return steps


def callback_base(store, master: str | None = None) -> str:
    """The callback server's base URL: ``site.callbackurl``, else ``http://<master>:8080``
    (gunicorn's port, etc/gunicorn.conf.py).

    Args:
        store: the table store.
        master: the node's management address (:class:`nodemgr.networks.MasterResolver`);
            default ``site.master``.
    Raises:
        NetworkError: no callbackurl, no *master* and no ``site.master``.
    """
    url = settings.get(store, "callbackurl", _conf())
    if url:
        return url
    master = master or store.site("master")
    if not master:
        raise networks.NetworkError("neither site.callbackurl nor site.master is set")
    return f"http://{master}:8080"


def callback_url(store, node: str, token: str | None, *, rhevh: bool = False,
                 base: str | None = None) -> str:
    """The install-finished URL a node calls when its install is done.

    Args:
        store: the table store (reads ``site.callbackurl``, else ``site.master``; not read
            when *base* is given).
        node: node name.
        token: the node's one-time token, or None when tokens are off.
        rhevh: use xCAT's RHEV-H route ``/xcatrhevh/rhevh_finish_install/<node>``.
        base: :func:`callback_base` computed once by a caller handling many nodes.
    Returns:
        ``<base>/install-finished/<node>[?token=<token>]`` (base default
        ``http://<site.master>:8080``).
    """
    base = base if base is not None else callback_base(store)
    route = "xcatrhevh/rhevh_finish_install" if rhevh else "install-finished"
    url = f"{base.rstrip('/')}/{route}/{quote(node, safe='')}"
    return f"{url}?token={token}" if token else url


def status_url(node: str, token: str | None, base: str) -> str:
    """Where a node's answer file reports a failed postscript:
    ``<base>/install-status/<node>[?token=<token>]`` (``POST status=failed&script=..``)."""
    url = f"{base.rstrip('/')}/install-status/{quote(node, safe='')}"
    return f"{url}?token={token}" if token else url


@dataclass
class _Plan:
    """What one node will become: tables and boot file."""

    node: str
    currstate: str
    currchain: str | None
    spec: bootfiles.BootSpec | None = None      # None → remove files (offline)
    nodetype: dict = field(default_factory=dict)
    bootparams: dict = field(default_factory=dict)
    status: str | None = None
    token: str | None = None                     # minted token (install states)
    keep_token: bool = False
    answer: str | None = None                    # answer file text (installs with one)


_conf_cache: tuple[tuple, object] | None = None


def _conf():
    """:func:`nodemgr.config.load`, parsed again only when the file in effect (its path,
    size, modification time) or ``$NODEMGR_DB`` changed: a callback makes two call
    contexts, each reading three settings that may fall back to the file, and parsing
    it was a third of a callback's CPU time."""
    global _conf_cache
    from nodemgr import config

    path = config.conf_path()
    try:
        st = os.stat(path) if path else None
    except OSError:
        st = None
    key = (path, st and (st.st_mtime_ns, st.st_size, st.st_ino), os.environ.get("NODEMGR_DB"))
    if _conf_cache is None or _conf_cache[0] != key:
        _conf_cache = (key, config.load())
    return _conf_cache[1]


class _Ctx:
    """Per-call caches: site values, osimage rows, TFTP trees."""

    def __init__(self, store, resolver) -> None:
        self.store = store
        self.resolver = resolver
        self.site_master = store.site("master")
        self._masters: networks.MasterResolver | None = None
        with store.site_cache():  # (site read once; the file only if site lacks a value)
            values = {k: store.site(k) for k in ("callbackurl", "httpport", "tftpdir")}
            if not all(values.values()):
                conf = _conf()
                values = {k: v or settings.get(store, k, conf) for k, v in values.items()}
        self.callbackurl = values["callbackurl"]
        self.httpport = values["httpport"]
        self.site_tftpdir = values["tftpdir"]
        self.tokens = tokens.enabled(store)
        self.nodestatus = (store.site("nodestatus") or "y").lower() not in ("n", "no", "0")
        self._images: dict[str, tuple] = {}
        self._trees: dict[str, bootfiles.TftpTree] = {}
        self._pwhash: dict[str, str | None] = {}
        self._lines: dict[tuple, tuple] = {}
        self._answers: autoinst.AnswerFiles | None = None
        self._master_of: dict[tuple | str | None, str] = {}
        #: names in the answer-file directory, listed once for a large call
        self.answer_names: set[str] | None = None
        self.answer_dir_seen = False
        self._reachable: set = set()
        #: answer files, renamed into place with the boot files after the commit
        self.staged = files.StagedFiles()

    @property
    def answers(self) -> autoinst.AnswerFiles:
        """The call's :class:`~nodemgr.netboot.autoinst.AnswerFiles` (made on first use)."""
        if self._answers is None:
            self._answers = autoinst.AnswerFiles(self.store, _conf())
        return self._answers

    def master(self, a: dict) -> str:
        """The address node *a* uses for this management node (``noderes.xcatmaster``,
        ``site.master``, else this machine's address on the node's network); NetworkError
        when there is none or it is a loopback address for a non-loopback node."""
        xm = a.get("noderes.xcatmaster")
        hit = self._master_of.get(xm)  # a named master that is no loopback: any node's
        if hit is not None:
            return hit
        key = (a.get("hosts.ip"), xm)
        hit = self._master_of.get(key)
        if hit is None:  # (a NetworkError is not cached: raised again for each node)
            if self._masters is None:
                nets = [] if self.site_master else networks.load(self.store)
                self._masters = networks.MasterResolver(self.site_master, nets)
            hit = self._master_of[key] = self._masters.for_node(*key)
            if ((xm or "").strip() or (self.site_master or "").strip()) \
                    and not networks.is_loopback(hit):
                # the node's address played no part (it only matters for a loopback master)
                self._master_of[xm] = hit
        return hit

    def callback_base(self, a: dict) -> str:
        """:func:`callback_base` for node *a*: ``site.callbackurl`` (checked: no loopback
        host for a non-loopback node), else ``http://<master>:8080``."""
        if self.callbackurl:
            ip = a.get("hosts.ip")
            if ip not in self._reachable:
                from urllib.parse import urlsplit

                networks.check_reachable(urlsplit(self.callbackurl).hostname or "", ip,
                                         "site.callbackurl's host")
                self._reachable.add(ip)
            return self.callbackurl
        return f"http://{self.master(a)}:8080"

    def tftpdir(self, a: dict) -> str:
        return a.get("noderes.tftpdir") or self.site_tftpdir

    def tree(self, root: str) -> bootfiles.TftpTree:
        t = self._trees.get(root)
        if t is None:
            t = self._trees[root] = bootfiles.TftpTree(root, staged=True)
        return t

    def image(self, name: str) -> tuple:
        """(osimage row, linuximage row, boottarget row) of *name*; NodeFailure if missing."""
        if name not in self._images:
            osi = self.store.get("osimage", {"imagename": name})
            if osi is None or not osi.get("provmethod"):
                self._images[name] = (None, None, None)
            else:
                li = self.store.get("linuximage", {"imagename": name}) or {}
                bt_name = li.get("boottarget") or f"{osi.get('osvers')}-{osi.get('osarch')}"
                bt = self.store.get("boottarget", {"bprofile": bt_name})
                self._images[name] = (osi, li, bt)
        osi, li, bt = self._images[name]
        if osi is None:
            raise NodeFailure(f"Cannot find the OS image {name} in the osimage table")
        return osi, li, bt

    def kernel_line(self, name: str, bt: dict, li: dict, myip: str) -> tuple:
        """(kernel, Xen hypervisor or '', kernel arguments, hypervisor arguments, the image's
        extra arguments) of image *name* for the master address *myip* — the same for every
        node of the image, so computed once per call. ``http://!myipfn!/`` becomes the web
        server's address with ``httpport`` (left out when 80); other ``!myipfn!`` the bare
        address (xCAT)."""
        key = (name, myip)
        hit = self._lines.get(key)
        if hit is None:
            kernel, _, hyp = bt["kernel"].partition("!")
            port = bootfiles.port_suffix(self.httpport)
            kc = (bt.get("kcmdline") or "").replace("http://!myipfn!/", f"http://{myip}{port}/")
            kc = kc.replace("!myipfn!", myip)
            hypargs = ""
            if hyp and " --- " in f" {kc} ":
                hypargs, _, kc = f" {kc} ".partition(" --- ")
                hypargs, kc = hypargs.strip(), kc.strip()
            extra = tuple(p for p in _words(li.get("addkcmdline"),
                                            f"linuximage.addkcmdline of {name}")
                          if not p.startswith("R::"))
            hit = self._lines[key] = (kernel, hyp, kc, hypargs, extra)
        return hit

    def pwhash(self, key: str, user: str) -> str | None:
        """MD5-crypt hash of passwd (key, user) (stored hashes are used as they are)."""
        k = f"{key}/{user}"
        if k not in self._pwhash:
            row = self.store.get("passwd", {"key": key, "username": user})
            pw = (row or {}).get("password")
            if not pw:
                self._pwhash[k] = None
            elif pw.startswith("$"):
                self._pwhash[k] = pw
            else:  # the password goes through stdin, never argv
                out = subprocess.run(["openssl", "passwd", "-1", "-stdin"], input=pw + "\n",
                                     capture_output=True, text=True, check=False)
                self._pwhash[k] = out.stdout.strip() or None
        return self._pwhash[k]


def _server(ctx: _Ctx, a: dict) -> str:
    """The node's TFTP/HTTP server: ``noderes.tftpserver``, else its management address."""
    tftpserver = (a.get("noderes.tftpserver") or "").strip()
    if tftpserver:
        networks.check_reachable(tftpserver, a.get("hosts.ip"), "noderes.tftpserver")
        return tftpserver
    return ctx.master(a)


def _install_mac(a: dict) -> str | None:
    nic = a.get("noderes.installnic")
    if nic and bootfiles._MAC_RE.match(nic.strip()):
        return bootfiles.normalize_mac(nic)
    return bootfiles.normalize_mac(a.get("mac.mac"))


def _words(value: str | None, where: str = "bootparams.addkcmdline") -> list[str]:
    """Shell-style words of an ``addkcmdline`` value ([] when empty).

    Raises:
        NodeFailure: an unbalanced quote or a trailing backslash (names *where*)."""
    if not value or not value.strip():
        return []
    try:
        return shlex.split(value)
    except ValueError as exc:
        raise NodeFailure(f"{where} {value!r} cannot be split into words: {exc}") from None


def _step_of_currstate(currstate: str, a: dict) -> str:
    """The step that re-applies *currstate* (``install rhels..`` → ``osimage=<provmethod>``)."""
    word = currstate.split(" ", 1)[0]
    if word in ("install", "netboot", "statelite"):
        pm = a.get("nodetype.provmethod")
        return f"osimage={pm}" if pm and pm not in ("install", "netboot", "statelite") else word
    return currstate


def _next_steps(a: dict) -> tuple[str, list[str]]:
    """The ``next`` algorithm (module docstring): (step to apply, remaining chain)."""
    cs = (a.get("chain.currstate") or "").strip()
    items = [s for s in (a.get("chain.currchain") or "").split(",") if s.strip()]
    if not items and not cs:
        items = [s for s in (a.get("chain.chain") or "").split(",") if s.strip()]
        if not items:
            return "standby", []
    if items:
        return items[0].strip(), [s.strip() for s in items[1:]]
    word = cs.split(" ", 1)[0].split("=", 1)[0]
    if word in STICKY:
        return _step_of_currstate(cs, a), []
    return "standby", []


def _spec(ctx, node, a, comment, *, mac: str | None, **kw) -> bootfiles.BootSpec:
    """The node's BootSpec; *mac*: its install MAC (:func:`_install_mac`, or None). A local
    boot (no kernel) needs no server address."""
    netboot = (a.get("noderes.netboot") or "pxe").strip()
    if netboot not in bootfiles.FORMATS:
        raise NodeFailure(f"noderes.netboot '{netboot}' is not supported "
                          f"({', '.join(bootfiles.FORMATS)})")
    return bootfiles.BootSpec(node=node, comment=comment, netboot=netboot,
                              mac=mac, ip=(a.get("hosts.ip") or "").strip() or None,
                              server=_server(ctx, a) if kw.get("kernel") else "",
                              httpport=ctx.httpport,
                              httpprefix=HTTP_TFTP_PREFIX, **kw)


def _no_genesis(step: str, via_next: bool) -> NodeFailure:
    """The refusal of a state that would boot xCAT's genesis image: nodemgr builds none and
    runs no xcatd, so such a boot file could only hang (never written)."""
    why = " (next: the chain has no further step)" if via_next else ""
    word = step.split("=", 1)[0]
    return NodeFailure(f"state '{word}'{why} boots xCAT's genesis image with xcatd, which "
                       "nodemgr does not provide: use boot or osimage=<image>")


def _rhevh_args(ctx, a, mac, url) -> str:
    mgr = a.get("hypervisor.mgr")
    if not mgr:
        raise NodeFailure("hypervisor.mgr (the RHEV-M server for management_server=) is not set")
    admin = ctx.pwhash("rhevh", "admin")
    root = ctx.pwhash("rhevh", "root")
    parts = ["rootflags=loop root=live:/rhevh.iso rootfstype=auto ro liveimg nomodeset check "
             "rootflags=ro crashkernel=512M-2G:64M,2G-:128M elevator=deadline "
             "processor.max_cstate=1 install reinstall quiet rd_NO_LVM rhgb rd_NO_LUKS rd_NO_MD "
             "rd_NO_DM storage_init", f"BOOTIF={mac}", "ip=dhcp"]
    if admin:
        parts.append(f"adminpw={admin}")
    if root:
        parts.append(f"rootpw={root}")
    parts += ["ssh_pwauth=1", f"management_server={mgr}"]
    if root:  # xCAT passes the rhevh root hash here too (sic), kept for compatibility
        parts.append(f"rhevm_admin_password={root}")
    parts.append(f"local_boot_trigger={url}")
    return " ".join(parts)


def _osimage(ctx, node, a, step) -> _Plan:
    word, _, name = step.partition("=")
    if word == "osimage":
        if not name:
            name = a.get("nodetype.provmethod") or ""
            if not name or name in ("install", "netboot", "statelite"):
                raise NodeFailure("OS image name must be specified in nodetype.provmethod")
    else:  # legacy install / netboot / statelite
        for col in ("os", "arch", "profile"):
            if not a.get(f"nodetype.{col}"):
                raise NodeFailure(f"nodetype.{col} not defined for {node}")
        name = f"{a['nodetype.os']}-{a['nodetype.arch']}-{word}-{a['nodetype.profile']}"
    osi, li, bt = ctx.image(name)
    provmethod = osi["provmethod"]
    if provmethod not in ("install", "netboot", "statelite"):
        raise NodeFailure(f"osimage {name}: provmethod '{provmethod}' is not supported")
    if not bt or not bt.get("kernel"):
        raise NodeFailure(f"osimage {name}: no kernel (linuximage.boottarget / boottarget "
                          "table); import the media with copycds")
    mac = _install_mac(a)
    if not mac:
        raise NodeFailure("No MAC address available for this node")
    osvers, osarch = osi.get("osvers") or "", osi.get("osarch") or ""
    profile = osi.get("profile") or ""
    currstate = f"{provmethod} {osvers}-{osarch}-{profile}"
    bootif = f"BOOTIF=01-{mac.replace(':', '-')}"
    myip = ctx.master(a)
    kernel, hyp, kc, hypargs, image_extra = ctx.kernel_line(name, bt, li, myip)
    node_words = _words(a.get("bootparams.addkcmdline"))
    # R:: parts are for the installed system's boot loader (xCAT), not the installer's
    extra = [*image_extra, *(p for p in node_words if not p.startswith("R::"))]
    token = None
    if provmethod == "install":
        token = tokens.secrets.token_urlsafe(32) if ctx.tokens else None
    rhevh = osvers.startswith("rhevh")
    answer = None
    tmpl = ctx.answers.template_of(name, osi, li) if provmethod == "install" and not rhevh \
        else None
    if rhevh:
        url = callback_url(ctx.store, node, token, rhevh=True, base=ctx.callback_base(a))
        args = _rhevh_args(ctx, a, mac, url)
    elif tmpl is not None:
        # the token goes into the answer file only (0600, served to the node alone)
        base = ctx.callback_base(a)
        server = _server(ctx, a)
        r_parts = [p[3:] for p in (*_words(li.get("addkcmdline"),
                                           f"linuximage.addkcmdline of {name}"), *node_words)
                   if p.startswith("R::")]
        answer = ctx.answers.render(
            tmpl, node=node, a=a, name=name, osi=osi, li=li, master=myip, server=server,
            callback_url=callback_url(ctx.store, node, token, base=base),
            status_url=status_url(node, token, base), mac=mac, kernel_options=r_parts)
        boot = ctx.answers.boot_args(tmpl[1], ctx.answers.url(server, node), node)
        args = " ".join(p for p in (kc, *extra, bootif, *boot) if p)
    else:
        parts = [kc, *extra, bootif]
        if provmethod == "install":
            parts.append(f"{CALLBACK_ARG}="
                         f"{callback_url(ctx.store, node, token, base=ctx.callback_base(a))}")
        args = " ".join(p for p in parts if p)
    spec = _spec(ctx, node, a, currstate, mac=mac, kernel=kernel, initrd=bt.get("initrd") or None,
                 args=args, hypervisor=hyp or None, hypargs=hypargs)
    stored_kernel = bt["kernel"]
    stored_args = f"{hypargs} --- {args}" if hyp else args
    if token:  # the live token goes into the node's boot file only, never into a table
        stored_args = stored_args.replace(f"?token={token}", "")
    return _Plan(node, currstate, None, spec,
                 nodetype={"provmethod": name, "profile": profile, "os": osvers,
                           "arch": osarch},
                 bootparams={"kernel": stored_kernel, "initrd": bt.get("initrd"),
                             "kcmdline": stored_args},
                 token=token, keep_token=token is not None, answer=answer)


def _apply(ctx, node: str, a: dict, step: str, rest: list[str], via_next: bool = False
           ) -> _Plan:
    word = step.split("=", 1)[0]
    if word == "boot":
        plan = _Plan(node, "boot", None, _spec(ctx, node, a, "boot", mac=_install_mac(a)),
                     bootparams={"kernel": None, "initrd": None, "kcmdline": None})
        prev = (a.get("chain.currstate") or "").split(" ", 1)[0]
        if prev in ("netboot", "statelite"):
            plan.nodetype = {"provmethod": None}
    elif word == "offline":
        plan = _Plan(node, "offline", None, None,
                     bootparams={"kernel": None, "initrd": None, "kcmdline": None})
    elif word in GENESIS:
        raise _no_genesis(step, via_next)
    else:
        plan = _osimage(ctx, node, a, step)
    if plan.currstate.startswith("install ") and not rest:
        rest = ["boot"]
    plan.currchain = ",".join(rest) or None
    if ctx.nodestatus:
        plan.status = status.status_for_state(plan.currstate)
    if plan.spec is not None:
        bootfiles.check_node_name(node)
    return plan


def _stat(ctx, nodes, attrs, bad: dict | None = None) -> list[NodeResult]:
    """``stat``: the state in each node's boot file; a node whose file disagrees with its
    ``chain.currstate``, or whose files a killed writer left pending, fails with why."""
    out = []
    pending = {r["node"] for r in ctx.store.select("bootpending", columns=("node",))}
    for node in nodes:
        a = attrs[node]
        if bad and node in bad:
            out.append(NodeResult(node, False, "; ".join(bad[node].values())))
            continue
        try:
            bootfiles.check_node_name(node)
            netboot = (a.get("noderes.netboot") or "pxe").strip()
            fam = "grub2" if netboot.startswith("grub2") else netboot
            if fam not in ("pxe", "xnba", "grub2"):
                raise NodeFailure(f"noderes.netboot '{netboot}' is not supported")
            c = ctx.tree(ctx.tftpdir(a)).comment(fam, node)
            shown = "offline" if c is None else (c or "boot")
            cs = (a.get("chain.currstate") or "").strip()
            if node in pending:
                out.append(NodeResult(node, False, f"{shown} (boot files not all in place "
                                      "after an interrupted nodeset: the next nodeset "
                                      f"redoes them, or run nodeset {node} enact)"))
            elif cs and cs != shown and not (cs == "offline" and c is None):
                out.append(NodeResult(node, False, f"{shown} (the tables say '{cs}': boot "
                                      f"files and tables disagree; run nodeset {node} "
                                      "enact)"))
            else:
                out.append(NodeResult(node, True, shown))
        except NodemgrError as exc:
            out.append(NodeResult(node, False, str(exc)))
    return out


def nodeset(store, resolver, nodes: list[str], state: str) -> list[NodeResult]:
    """Move *nodes* to *state*; write chain, nodetype, bootparams, status, token and boot
    files.

    Args:
        store: the table store; all table writes happen in one transaction (joining the
            caller's, e.g. the install-finished callback's).
        resolver: a Resolver over *store* (group inheritance); invalidated afterwards.
        nodes: expanded node names.
        state: a state or comma-separated chain (see module docstring).
    Returns:
        One NodeResult per node, in order: message = the new ``chain.currstate``
        (``stat``: the state in the boot file, ``offline`` when there is none), or the
        node's error (``ok=False``; nothing of that node changed).
    Raises:
        UsageError: the state argument itself is malformed (nothing changed).
        TableError: the store failed (nothing changed in the tables).
    """
    prepared = prepare(store, resolver, nodes, state)
    if isinstance(prepared, list):
        return prepared
    return apply(prepared)


@dataclass
class Prepared:
    """A computed ``nodeset`` (:func:`prepare`): plans and per-node errors, nothing written.

    Attributes:
        nodes: the nodes asked for, in order; chain: node -> (currstate, currchain) as read.
        unpublished: after the commit, node -> why its boot files could not all be put in
            place (the tables were written; a new ``nodeset`` retries). Empty otherwise.
    """

    store: object
    resolver: object
    ctx: _Ctx
    nodes: list[str]
    attrs: dict
    plans: dict
    errors: dict
    records: dict
    chain: dict
    unpublished: dict = field(default_factory=dict)
    owner: str = ""

    def unchanged(self) -> bool:
        """True when no node's ``chain`` row changed since :func:`prepare` read it (call
        inside the transaction that will :func:`apply` it)."""
        if not self.chain:
            return True
        rows = {r["node"]: (r["currstate"] or None, r["currchain"] or None) for r in self.store.select(
            "chain", columns=("node", "currstate", "currchain"), any_of=("node", list(self.chain)))}
        return all(rows.get(n, (None, None)) == v for n, v in self.chain.items())


def _wanted(steps: list[str]) -> tuple[str, ...]:
    """The attributes :func:`prepare` resolves for *steps*."""
    if all(st.split("=", 1)[0] in _IMAGE_WORDS for st in steps):
        return tuple(x for x in _ATTRS if x not in _STATE_ATTRS)
    return _ATTRS


def read_tables(state: str) -> tuple[str, ...]:
    """The node-keyed tables :func:`prepare` reads for *state* (for a few nodes), so a
    caller can have a resolver read them together with its own in one statement
    (:meth:`nodemgr.tables.resolve.Resolver.prefetch`). Raises UsageError as
    :func:`parse_steps`."""
    names = [a.split(".", 1)[0] for a in _wanted(parse_steps(state))]
    return tuple(dict.fromkeys([*names, "bootalias"]))


def prepare(store, resolver, nodes: list[str], state: str) -> Prepared | list[NodeResult]:
    """The read-only half of :func:`nodeset`: parse, resolve, plan every node (boot spec,
    table values, token) and read the alias records. Nothing is written, so a caller can do
    this before taking the database's write lock and :func:`apply` inside it.

    Returns:
        A :class:`Prepared`, or for ``stat`` the final results.
    Raises:
        UsageError, TableError: as :func:`nodeset`.
    """
    steps = parse_steps(state)
    ctx = _Ctx(store, resolver)
    bad: dict[str, dict[str, str]] = {}  # a value that cannot be rendered fails its node
    attrs = resolver.attrs(nodes, _wanted(steps), errors=bad)
    if steps == ["stat"]:
        return _stat(ctx, nodes, attrs, bad)
    plans: dict[str, _Plan] = {}
    errors: dict[str, str] = {n: "; ".join(v.values()) for n, v in bad.items()}
    for node in nodes:
        if node in errors:
            continue
        a = attrs[node]
        try:
            bootfiles.check_node_name(node)
            if steps == ["next"]:
                step, rest = _next_steps(a)
            elif steps == ["enact"]:
                cs = (a.get("chain.currstate") or "").strip()
                if not cs:
                    raise NodeFailure("no current state to enact (chain.currstate is empty)")
                step = _step_of_currstate(cs, a)
                rest = [s for s in (a.get("chain.currchain") or "").split(",") if s.strip()]
            else:
                step, rest = steps[0], steps[1:]
            plans[node] = _apply(ctx, node, a, step, rest, via_next=steps == ["next"])
        except NodemgrError as exc:
            errors[node] = str(exc)
    records = _alias_records(store, resolver, list(plans), len(plans) <= PER_NODE_MAX)
    chain = {}
    if steps in (["next"], ["enact"]) and len(plans) <= PER_NODE_MAX:
        chain = {n: (attrs[n].get("chain.currstate"), attrs[n].get("chain.currchain"))
                 for n in plans}
    return Prepared(store, resolver, ctx, list(nodes), attrs, plans, errors, records, chain)


def apply(p: Prepared, *, set_status: str | None = None) -> list[NodeResult]:
    """The writing half of :func:`nodeset`: boot files under temporary names, then every
    table in one transaction (joining the caller's), then — once that transaction commits —
    the boot files renamed into place (removed instead if it rolls back). Returns one
    NodeResult per node, in order; a node whose files could not be put in place after the
    commit fails with that reason (known here only when this call owns the transaction;
    otherwise see :attr:`Prepared.unpublished` after the caller's commit).

    It holds :meth:`Store.writer_lock` throughout, so concurrent writers' boot files land
    in the order of their commits; a caller that opens the transaction itself must take
    that lock before it and keep it until the commit (the callback does).

    *set_status*, when given, is written to ``nodelist.status`` of every node set instead of
    the state's own (the install-finished callback's ``booted``: one write, not two).
    Raises UsageError for a status that is not one of xCAT's."""
    if set_status is not None:
        status.check(set_status)
    if p.store.in_transaction:  # the caller holds store.writer_lock() until its commit
        return _apply_locked(p, set_status)
    with p.store.writer_lock():  # files renamed in commit order, even across processes
        if recover(p.store):
            p.resolver.invalidate()
        return _apply_locked(p, set_status)


def recover(store) -> list[NodeResult]:
    """Finish a killed writer's work: every node with a ``bootpending`` row (committed
    tables whose files were not all put in place) gets its files written again from its
    tables (``nodeset enact``: the current state re-applied; an install gets a new token,
    since the old one existed only in a file that may never have been placed). Stale
    temporary files of dead writers are removed as each tree is next written
    (:func:`nodemgr.netboot.files.sweep_and_mark`).

    Call with :meth:`Store.writer_lock` held and no transaction open (:func:`apply` and
    the callback do, before their own work). Cheap when there is nothing to do: one
    ``SELECT`` of an empty table.

    Returns:
        One NodeResult per node redone (``ok=False`` with the reason when a node could not
        be: its row is dropped, the failure logged; ``nodeset <node> stat`` shows the
        disagreement).
    """
    rows = store.select("bootpending", columns=("node",))
    if not rows:
        return []
    from nodemgr.tables.resolve import Resolver

    nodes = sorted({r["node"] for r in rows})
    resolver = Resolver(store)
    known = set(resolver.known(nodes))
    log.warning("nodeset: an earlier writer stopped before its boot files were all in "
                "place; redoing %d node(s)", len(nodes))
    results: list[NodeResult] = []
    todo = [n for n in nodes if n in known]
    if todo:
        prepared = prepare(store, resolver, todo, "enact")
        results = _apply_locked(prepared, None)
    failed = [r.node for r in results if not r.ok] + [n for n in nodes if n not in known]
    for r in results:
        if not r.ok:
            log.error("nodeset: %s: files not redone: %s", r.node, r.message)
    if failed:
        with store.transaction():
            store.delete_many("bootpending", ({"node": n} for n in failed))
    return results


def _apply_locked(p: Prepared, set_status: str | None) -> list[NodeResult]:
    store, resolver, ctx, nodes, attrs = p.store, p.resolver, p.ctx, p.nodes, p.attrs
    plans, errors, records = p.plans, p.errors, p.records
    # files: each node file is renamed into place after its aliases. A few nodes are
    # handled by their alias records (bootalias: no directory scan, cost independent of
    # the number of nodes); many nodes, or a node without a record whose files exist (a
    # tree written before records were kept), by one scan of each format's directories.
    new_records: dict[str, str | None] = {}
    for node, plan in list(plans.items()):
        # the answer file first: if it cannot be written the node is dropped before any of
        # its boot files is staged
        if not _stage_answer(ctx, node, plan, errors, plans, many=len(plans) > PER_NODE_MAX):
            continue
        previous = records.get(node)
        wanted = bootfiles.alias_names(plan.spec) if plan.spec is not None else []
        try:
            tree = ctx.tree(ctx.tftpdir(attrs[node]))
            tree.claim()  # (a killed writer's temporaries removed first)
            per_node = len(plans) <= PER_NODE_MAX and (node in records
                                                      or not tree.has_files(node))
            old = previous.split(",") if previous else []
            if plan.spec is None and per_node:
                tree.remove_node(node, old)
            elif plan.spec is None:
                tree.remove(node)
            elif per_node:
                tree.install_node(plan.spec, old, wanted)
            else:
                tree.install(plan.spec, wanted)
        except OSError as exc:
            errors[node] = f"cannot write boot files: {exc.strerror or exc}"
            del plans[node]
            # some aliases may exist already: keep them on the record for the next run
            wanted = list(dict.fromkeys([*(previous or "").split(","), *wanted]))
        value = ",".join(a for a in wanted if a) or None
        if value != previous or node not in records:
            new_records[node] = value
    # tables: one statement per table and column set (executemany), one transaction
    ps = plans.items()
    trees = list(ctx._trees.values())
    try:
        _write_tables(store, p, trees, ps, new_records, set_status)
    except BaseException:
        if not store.in_transaction:  # BEGIN itself failed: no rollback hook ran
            for t in (*trees, ctx.staged):
                t.discard()
        raise
    resolver.invalidate()
    out = []
    for n in nodes:
        if n in p.unpublished:  # committed here, but a rename failed afterwards
            out.append(NodeResult(n, False, p.unpublished[n]))
        elif n in plans:
            out.append(NodeResult(n, True, plans[n].currstate))
        else:
            out.append(NodeResult(n, False, errors[n]))
    return out


def _stage_answer(ctx: _Ctx, node: str, plan: _Plan, errors: dict, plans: dict, *,
                  many: bool) -> bool:
    """Stage *node*'s answer file (0600), or its removal when the new state has none.
    Returns False when it cannot be written (the node fails with the reason and is
    dropped from *plans*). The directory is claimed once per call (a killed writer's
    temporaries removed); *many*: it is listed once instead of a ``stat`` per node."""
    if plan.answer is None and ctx.answer_dir_seen and ctx.answer_names is not None \
            and node not in ctx.answer_names:
        return True  # (the common case of a large call: nothing to write or remove)
    path = ctx.answers.path(node)
    d = os.path.dirname(path)
    try:
        if not ctx.answer_dir_seen:
            ctx.answer_dir_seen = True
            if os.path.isdir(d):
                ctx.staged.claim(d)
                if many:
                    ctx.answer_names = set(os.listdir(d))
            elif many:
                ctx.answer_names = set()
        if plan.answer is not None:
            ctx.staged.claim(d)
            ctx.staged.write(node, path, plan.answer, mode=0o600)
        elif (node in ctx.answer_names) if ctx.answer_names is not None else (
                not many and os.path.lexists(path)):
            ctx.staged.remove(node, path)
    except OSError as exc:
        errors[node] = f"cannot write the answer file {path}: {exc.strerror or exc}"
        del plans[node]
        return False
    return True


def _write_tables(store, prep: Prepared, trees: list, ps, new_records: dict,
                  set_status: str | None) -> None:
    """:func:`apply`'s table writes, one statement per table and column set, in one
    transaction (the caller's, if one is open)."""
    stamp = status.timestamp()
    now = time.time()
    records = prep.records
    prep.owner = f"{os.getpid()}-{time.time_ns()}"
    _crash("staged")
    with store.transaction():
        # boot files follow the tables: renamed into place once this (or the caller's)
        # transaction commits, their temporary files removed if it rolls back
        store.after(on_commit=lambda: _publish(prep, trees),
                    on_rollback=lambda: [t.discard() for t in (*trees, prep.ctx.staged)])
        store.upsert_many("chain", ({"node": n, "currstate": p.currstate,
                                     "currchain": p.currchain} for n, p in ps))
        store.upsert_many("nodetype", ({"node": n, **p.nodetype} for n, p in ps if p.nodetype))
        store.upsert_many("bootparams", ({"node": n, **p.bootparams}
                                         for n, p in ps if p.bootparams))
        store.upsert_many("nodelist", ({"node": n, "status": set_status or p.status,
                                        "statustime": stamp}
                                       for n, p in ps if set_status or p.status))
        store.upsert_many("nodetoken", ({"node": n, **tokens.row_values(p.token, now=now)}
                                        for n, p in ps if p.token))
        store.delete_many("nodetoken", ({"node": n} for n, p in ps
                                        if not p.token and not p.keep_token))
        store.upsert_many("bootalias", ({"node": n, "aliases": v}
                                        for n, v in new_records.items() if v))
        store.delete_many("bootalias", ({"node": n} for n, v in new_records.items()
                                        if not v and n in records))
        # committed with the tables: which nodes' files are not all in place yet (deleted
        # once they are; a killed writer's rows make the next writer redo those nodes)
        store.upsert_many("bootpending", ({"node": n, "owner": prep.owner} for n, _ in ps))
        _crash("in-transaction")


def _publish(p: Prepared, trees: list) -> None:
    """Put the staged boot files in place (after the commit); failures go to
    ``p.unpublished`` and the log. Then the call's ``bootpending`` rows are deleted."""
    _crash("committed")
    for tree in trees:
        for node, rel, why in tree.publish():
            msg = (f"tables updated, but boot file {rel} could not be put in place: {why} "
                   "(run nodeset again)")
            log.error("nodeset: %s: %s", node, msg)
            p.unpublished.setdefault(node, msg)
    _crash("renaming")
    for node, path, why in p.ctx.staged.publish():
        msg = (f"tables updated, but answer file {path} could not be put in place: {why} "
               "(run nodeset again)")
        log.error("nodeset: %s: %s", node, msg)
        p.unpublished.setdefault(node, msg)
    _crash("published")
    if p.owner:
        with p.store.transaction():
            p.store.delete("bootpending", {"owner": p.owner})


def _alias_records(store, resolver, nodes: list[str], by_key: bool
                   ) -> dict[str, str | None]:
    """node -> its ``bootalias.aliases`` value for *nodes* that have a record (None when
    the value is empty); read by key for a few nodes (through the resolver, which may
    have them already), whole for many."""
    if not nodes:
        return {}
    wanted = set(nodes)
    rows = (resolver.rows("bootalias", nodes).values() if by_key
            else store.select("bootalias", columns=("node", "aliases")))
    out: dict[str, str | None] = {}
    for r in rows:
        if r["node"] in wanted and r["node"] not in out:
            out[r["node"]] = r["aliases"] or None
    return out


def tftp_root(store, resolver, node: str) -> str:
    """The TFTP root of *node* (noderes.tftpdir, site.tftpdir, configuration)."""
    a = resolver.attrs([node], ["noderes.tftpdir"])[node]
    return _Ctx(store, resolver).tftpdir(a)


__all__ = ["nodeset", "prepare", "apply", "read_tables", "Prepared", "callback_url", "callback_base", "parse_steps", "CALLBACK_ARG", "tftp_root",
           "NodeFailure"]
