"""The answer files of one ``nodeset`` call: which template, which context, which boot
arguments — everything :mod:`nodemgr.netboot.answerfile` must not know (tables).

:class:`AnswerFiles` is made once per call; it reads the site values, the ``xcatdefaults``
postscripts row, the networks and the management node's SSH public key once, finds and
compiles each image's template once, and builds one context per node (the keys documented
in :mod:`nodemgr.netboot.answerfile`). ``nodeset`` writes the result to
:func:`AnswerFiles.path` through its staged files (renamed only after the tables commit).

Raises :class:`nodemgr.netboot.nodeset.NodeFailure`-compatible :class:`AnswerFileError`
(one line per node): no template for an OS family that takes one (names every file
searched), a template error (template and line), the root password hash missing or stored
in clear, a postscript named in the tables but missing from ``<installdir>/postscripts/``.
"""

from __future__ import annotations

import os
import re

from nodemgr import networks, settings
from nodemgr.errors import NodemgrError
from nodemgr.netboot import answerfile, bootfiles

#: osvers prefix -> xCAT platform directory (longest prefix first)
_PLATFORMS = (("rhvh", "rhvh"), ("ovirt-node", "rhvh"), ("rhels", "rh"), ("rhel", "rh"),
              ("centos", "rh"), ("rocky", "rh"), ("alma", "rh"), ("ol", "rh"),
              ("fedora", "rh"), ("debian", "debian"))
#: RHEL clones whose templates are RHEL's (genos): osvers prefix
_RHEL_CLONES = ("rhels", "rhel", "centos", "rocky", "alma", "ol")
#: crypt(3) hash prefixes accepted for the root password (SHA-512, SHA-256, yescrypt, MD5)
_CRYPTED = re.compile(r"^\$(6|5|y|1|2[aby]|gy|7)\$[^\s]+$")
#: boot arguments of each platform: how its installer finds the answer file
_DEBIAN_ARGS = "auto=true priority=critical"


class AnswerFileError(NodemgrError):
    """A node's answer file cannot be made (one line naming the cause)."""


def platform(osvers: str) -> str | None:
    """The xCAT platform directory of *osvers* (``rocky9.2`` -> ``rh``), or None for OS
    families without an answer file (``rhevh`` 3.x, Xen installers, test images)."""
    low = (osvers or "").lower()
    if low.startswith("rhevh"):
        return None
    for prefix, plat in _PLATFORMS:
        if low.startswith(prefix) and low[len(prefix):len(prefix) + 1].isdigit():
            return plat
    return None


def os_names(osvers: str) -> tuple[str, str, str]:
    """(os, osbase, genos) of xCAT's template lookup: ``rocky9.2`` -> (``rocky9.2``,
    ``rocky9``, ``rhels9``); ``debian12.5`` -> (``debian12.5``, ``debian12``,
    ``debian12``)."""
    os_ = osvers
    osbase = os_.rsplit(".", 1)[0] if "." in os_ else os_
    genos = osbase
    m = re.match(r"^([a-z]+)(\d+)", os_.lower())
    if m and m.group(1) in _RHEL_CLONES:
        genos = f"rhels{m.group(2)}"
    return os_, osbase, genos


def candidate_names(profile: str, osvers: str, arch: str) -> list[str]:
    """Template file names in xCAT's order (``SvrUtils::get_file_name``), duplicates
    dropped."""
    os_, osbase, genos = os_names(osvers)
    names = [f"{profile}.{os_}.{arch}.tmpl", f"{profile}.{osbase}.{arch}.tmpl",
             f"{profile}.{genos}.{arch}.tmpl", f"{profile}.{os_}.tmpl",
             f"{profile}.{osbase}.tmpl", f"{profile}.{genos}.tmpl",
             f"{profile}.{arch}.tmpl", f"{profile}.tmpl"]
    return list(dict.fromkeys(names))


def find_template(dirs: list[str], plat: str, profile: str, osvers: str, arch: str) -> str:
    """The first readable template for (profile, osvers, arch) under ``<dir>/<plat>/`` of
    each of *dirs* in order.

    Raises:
        AnswerFileError: none found (lists every path searched).
    """
    searched = []
    for d in dirs:
        for name in candidate_names(profile, osvers, arch):
            path = os.path.join(d, plat, name)
            if os.access(path, os.R_OK) and os.path.isfile(path):
                return path
            searched.append(path)
    raise AnswerFileError(f"no answer-file template for os {osvers} profile {profile} arch "
                          f"{arch} (searched: {', '.join(searched)})")


def split_list(value: str | None) -> list[str]:
    """A comma list (``postscripts`` values) as names, blanks dropped."""
    return [v.strip() for v in (value or "").split(",") if v.strip()]


class AnswerFiles:
    """The answer files of one ``nodeset`` call.

    Args:
        store: the table store (site, passwd, postscripts ``xcatdefaults``, networks).
        conf: the configuration, if already loaded.
    """

    def __init__(self, store, conf=None) -> None:
        self.store = store
        self.installdir = settings.get(store, "installdir", conf) or "/install"
        self.templatedir = (settings.get(store, "templatedir", conf)
                            or os.path.join(self.installdir, "custom", "install"))
        self.httpport = settings.get(store, "httpport", conf) or "80"
        self.timezone = settings.get(store, "timezone", conf) or "UTC"
        self.domain = store.site("domain") or ""
        self._pubkey_setting = settings.get(store, "sshpubkey", conf)
        self._pubkey: str | None = None
        self._renderer = answerfile.Renderer([self.templatedir])
        self._templates: dict[str, tuple] = {}
        self._nets: list | None = None
        self._defaults: tuple[list[str], list[str]] | None = None
        self._rootpw: tuple | None = None
        self._present: dict[str, bool] = {}
        self._lists: dict[tuple, tuple[list[str], list[str]]] = {}

    # -- per image ---------------------------------------------------------------------
    def template_of(self, name: str, osi: dict, li: dict) -> tuple[str, str] | None:
        """(template path, platform) of image *name*, or None when its OS family takes no
        answer file and ``linuximage.template`` is unset. Raises AnswerFileError (cached
        per image)."""
        hit = self._templates.get(name)
        if hit is None:
            try:
                hit = (self._find(osi, li), None)
            except AnswerFileError as exc:
                hit = (None, exc)
            self._templates[name] = hit
        if hit[1] is not None:
            raise hit[1]
        return hit[0]

    def _find(self, osi: dict, li: dict) -> tuple[str, str] | None:
        osvers, arch = osi.get("osvers") or "", osi.get("osarch") or ""
        profile = osi.get("profile") or "compute"
        plat = platform(osvers)
        own = (li.get("template") or "").strip()
        if own:
            path = own if os.path.isabs(own) else os.path.join(self.templatedir, own)
            if not (os.path.isfile(path) and os.access(path, os.R_OK)):
                raise AnswerFileError(f"linuximage.template {own} of image "
                                      f"{osi.get('imagename')}: no readable file {path}")
            return path, plat or ("debian" if "preseed" in os.path.basename(path) else "rh")
        if plat is None:
            return None
        path = find_template([self.templatedir, answerfile.SHIPPED_DIR], plat, profile,
                             osvers, arch)
        return path, plat

    # -- shared values -----------------------------------------------------------------
    def http_base(self, server: str) -> str:
        """``http://<server>[:<httpport>]``."""
        host = f"[{server}]" if ":" in server else server
        return f"http://{host}{bootfiles.port_suffix(self.httpport)}"

    def path(self, node: str) -> str:
        """``<installdir>/autoinst/<node>``."""
        return os.path.join(self.installdir, "autoinst", node)

    def url(self, server: str, node: str) -> str:
        """The answer file's URL (``<http>/install/autoinst/<node>``)."""
        return f"{self.http_base(server)}/install/autoinst/{node}"

    def boot_args(self, plat: str, url: str, node: str) -> list[str]:
        """Kernel arguments that make *plat*'s installer fetch the answer file at *url*:
        anaconda ``inst.ks=<url>``; debian-installer ``auto=true priority=critical
        url=<url> hostname=<node> domain=<domain> interface=auto``."""
        if plat == "debian":
            args = [*_DEBIAN_ARGS.split(), f"url={url}", f"hostname={node}"]
            if self.domain:
                args.append(f"domain={self.domain}")
            return [*args, "interface=auto"]
        return [f"inst.ks={url}"]

    def rootpw_hash(self) -> str:
        """The crypted root password (``passwd`` key ``system`` user ``root``).

        Raises AnswerFileError: missing, or not a crypt(3) hash (a clear password is
        refused: answer files are fetched over plain HTTP)."""
        if self._rootpw is None:
            row = self.store.get("passwd", {"key": "system", "username": "root"}) or {}
            pw = (row.get("password") or "").strip()
            if not pw:
                self._rootpw = (None, AnswerFileError(
                    "passwd key=system username=root has no password hash (set one: "
                    "chtab key=system,username=root passwd.password=- and paste the "
                    "output of 'openssl passwd -6')"))
            elif not _CRYPTED.match(pw):
                self._rootpw = (None, AnswerFileError(
                    "passwd key=system username=root holds a clear-text password; store a "
                    "crypted hash instead ('openssl passwd -6' output)"))
            else:
                self._rootpw = (pw, None)
        if self._rootpw[1] is not None:
            raise self._rootpw[1]
        return self._rootpw[0]

    def pubkey(self) -> str:
        """The text of the management node's SSH public key (setting ``sshpubkey``), or
        '' when there is none."""
        if self._pubkey is None:
            paths = ([self._pubkey_setting] if self._pubkey_setting else
                     ["/root/.ssh/id_ed25519.pub", "/root/.ssh/id_rsa.pub"])
            self._pubkey = ""
            for p in paths:
                try:
                    with open(p, encoding="utf-8") as f:
                        self._pubkey = f.read().strip()
                    break
                except OSError:
                    continue
        return self._pubkey

    def network(self, ip: str | None, master: str) -> dict | None:
        """The context's ``network`` value for *ip* (None when on no networks row)."""
        if self._nets is None:
            self._nets = networks.load(self.store)
        n = networks.network_of(ip, self._nets)
        if n is None:
            return None
        gw = (n.row.get("gateway") or "").strip() or None
        if gw == "<xcatmaster>":
            gw = master
        ns = [x.strip() for x in (n.row.get("nameservers") or "").split(",") if x.strip()]
        ns = [master if x == "<xcatmaster>" else x for x in ns]
        return {"net": str(n.net.network_address), "mask": str(n.net.netmask), "gateway": gw,
                "nameservers": ns, "mtu": (n.row.get("mtu") or "").strip() or None,
                "name": n.name}

    def scripts(self, a: dict, osi: dict) -> tuple[list[str], list[str]]:
        """(postscripts, postbootscripts) of a node: ``xcatdefaults``, then
        ``osimage.postscripts``/``postbootscripts``, then the node's own (resolved through
        its groups); duplicates dropped, order kept.

        Raises AnswerFileError: a script missing from ``<installdir>/postscripts/``."""
        key = (osi.get("imagename"), osi.get("postscripts"), osi.get("postbootscripts"),
               a.get("postscripts.postscripts"), a.get("postscripts.postbootscripts"))
        hit = self._lists.get(key)
        if hit is None:
            hit = self._lists[key] = self._scripts(a, osi)
        return list(hit[0]), list(hit[1])  # (a template cannot change the next node's)

    def _scripts(self, a: dict, osi: dict) -> tuple[list[str], list[str]]:
        if self._defaults is None:
            row = self.store.get("postscripts", {"node": "xcatdefaults"}) or {}
            self._defaults = (split_list(row.get("postscripts")),
                              split_list(row.get("postbootscripts")))
        post = [*self._defaults[0], *split_list(osi.get("postscripts")),
                *split_list(a.get("postscripts.postscripts"))]
        boot = [*self._defaults[1], *split_list(osi.get("postbootscripts")),
                *split_list(a.get("postscripts.postbootscripts"))]
        post, boot = list(dict.fromkeys(post)), list(dict.fromkeys(boot))
        for name in (*post, *boot):
            ok = self._present.get(name)
            if ok is None:
                p = os.path.join(self.installdir, "postscripts", name)
                ok = self._present[name] = ("/" not in name and name not in (".", "..")
                                            and os.path.isfile(p))
            if not ok:
                raise AnswerFileError(f"postscript {name} (postscripts table) is not in "
                                      f"{os.path.join(self.installdir, 'postscripts')}/ "
                                      "(mknb installs the shipped ones)")
        return post, boot

    # -- per node ----------------------------------------------------------------------
    def render(self, tmpl: tuple[str, str], *, node: str, a: dict, name: str, osi: dict,
               li: dict, master: str, server: str, callback_url: str, status_url: str,
               mac: str, kernel_options: list[str]) -> str:
        """The answer file text of *node* (context: module docstring of answerfile).

        Args:
            tmpl: :meth:`template_of`'s (path, platform).
            a: the node's resolved attributes (``hosts.ip``, ``postscripts.*``,
                ``bootparams.addkcmdline``); name/osi/li: the image and its rows.
            master: the node's management address; server: its HTTP server.
            callback_url, status_url: with the node's token.
            kernel_options: the ``R::`` parts of the image's and node's ``addkcmdline``
                (prefix removed).
        Raises:
            AnswerFileError, answerfile.TemplateError: one line.
        """
        path, plat = tmpl
        osvers, arch = osi.get("osvers") or "", osi.get("osarch") or ""
        profile = osi.get("profile") or ""
        http = self.http_base(server)
        install_url = f"{http}/install"
        pkgdir = split_list(li.get("pkgdir"))
        if pkgdir and pkgdir[0].startswith(self.installdir.rstrip("/") + "/"):
            repo = install_url + pkgdir[0][len(self.installdir.rstrip("/")):]
        elif pkgdir and pkgdir[0].startswith(("http://", "https://")):
            repo = pkgdir[0]
        else:
            repo = f"{install_url}/{osvers}/{arch}"
        partition = None
        pfile = (li.get("partitionfile") or "").strip()
        if pfile:
            try:
                with open(pfile, encoding="utf-8") as f:
                    partition = f.read()
            except OSError as exc:
                raise AnswerFileError(f"linuximage.partitionfile {pfile}: "
                                      f"{exc.strerror or exc}") from None
        post, boot = self.scripts(a, osi)
        ip = (a.get("hosts.ip") or "").strip() or None
        postscripts_url = f"{install_url}/postscripts"
        env = {"NODE": node, "NODEIP": ip or "", "MASTER": master, "OSVER": osvers, "ARCH": arch,
               "PROFILE": profile, "PROVMETHOD": name, "DOMAIN": self.domain,
               "TIMEZONE": self.timezone, "INSTALLDIR": self.installdir,
               "NODESETSTATE": "install", "POSTSCRIPTS_URL": postscripts_url,
               "MN_SSH_PUBKEY": self.pubkey()}
        ctx = {"node": node, "hostname": node, "domain": self.domain,
               "fqdn": f"{node}.{self.domain}" if self.domain else node, "ip": ip,
               "mac": mac, "network": self.network(ip, master), "master": master,
               "http": http, "install_url": install_url, "postscripts_url": postscripts_url,
               "answer_url": f"{install_url}/autoinst/{node}", "repo": repo,
               "osvers": osvers, "arch": arch, "profile": profile, "imagename": name,
               "platform": plat, "partition": partition, "rootpw_hash": self.rootpw_hash(),
               "timezone": self.timezone, "kernel_options": " ".join(kernel_options),
               "callback_url": callback_url, "status_url": status_url,
               "postscripts": post, "postbootscripts": boot, "env": env}
        return self._renderer.render(path, ctx)
