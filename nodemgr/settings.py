"""One resolution for every setting that more than one part reads.

Order, first match wins (xCAT: the ``site`` table is authoritative):

1. the ``site`` table row (``chtab key=tftpdir site.value=/srv/tftp``);
2. the configuration file's ``[nodemgr]`` key (``etc/nodemgr.conf`` or ``$NODEMGR_CONF``) —
   which also seeds a new database's ``site`` rows, so after the first command the table
   holds it;
3. the built-in default below (``master`` has none: see :mod:`nodemgr.networks`).

``nodeset``, ``copycds``, ``makedhcp``, ``mknb``, ``nodemgr-tftpd`` and the web app all
call :func:`get`/:func:`lookup`; ``nodemgr config`` prints every setting with its source.
A running web app reads the site table per request (a change applies to the next request);
``nodemgr-tftpd`` resolves its root at start and again on SIGHUP.

Only the database URL is not here: it is needed before the tables can be read
(:mod:`nodemgr.config`).
"""

from __future__ import annotations

from dataclasses import dataclass

from nodemgr import config


@dataclass(frozen=True)
class Setting:
    """One setting: its ``site`` key, built-in default (None: no default) and meaning."""

    key: str
    default: str | None
    doc: str


SETTINGS: dict[str, Setting] = {s.key: s for s in (
    Setting("tftpdir", "/tftpboot", "TFTP root: boot loaders (mknb), boot files (nodeset), "
            "kernels (copycds); served by nodemgr-tftpd and over HTTP as /tftpboot/."),
    Setting("installdir", "/install", "install tree (copycds); served over HTTP as /install/."),
    Setting("master", None, "address nodes use to reach this management node; unset: the "
            "address of this machine's interface on the node's network (networks table)."),
    Setting("callbackurl", None, "base URL of the install-finished callback; unset: "
            "http://<master>:8080 (gunicorn, etc/gunicorn.conf.py)."),
    Setting("httpport", "80", "port of the web server (nginx) that serves /tftpboot/ and "
            "/install/ to iPXE, GRUB2 and installers."),
    Setting("templatedir", None, "site answer-file templates, <templatedir>/<platform>/"
            "<profile>.<os>.<arch>.tmpl, searched before the shipped ones; unset: "
            "<installdir>/custom/install (xCAT)."),
    Setting("timezone", "UTC", "time zone answer files give installed nodes."),
    Setting("sshpubkey", None, "public key the remoteshell postscript installs for root on "
            "new nodes; unset: /root/.ssh/id_ed25519.pub, else /root/.ssh/id_rsa.pub."),
    Setting("tftpaddress", "0.0.0.0", "address nodemgr-tftpd listens on (--address wins)."),
    Setting("dhcpserver", "kea", "makedhcp back end: kea or dnsmasq."),
    Setting("keaconf", "/etc/kea/kea-dhcp4.conf", "Kea DHCPv4 configuration makedhcp writes."),
    Setting("keasocket", "/run/kea/kea4-ctrl-socket", "Kea's control socket (config-reload)."),
    Setting("dnsmasqconf", "/etc/nodemgr/dnsmasq.conf", "dnsmasq options file makedhcp writes."),
    Setting("dnsmasqhosts", "/etc/nodemgr/dnsmasq.hosts", "dnsmasq --dhcp-hostsfile makedhcp "
            "writes."),
    Setting("dnsmasqpid", "/run/nodemgr-dnsmasq.pid", "pid file of the dnsmasq makedhcp "
            "signals (SIGHUP)."),
    Setting("kealeases", None, "Kea memfile lease file makedhcp configures; unset: "
            "/var/lib/kea/kea-leases4.csv for a keaconf under /etc/kea (Debian), else "
            "kea-leases4.csv next to keaconf."),
)}


def _conf_values(conf: config.Config | None) -> tuple[dict[str, str], str | None]:
    conf = conf if conf is not None else config.load()
    return conf.site_seed, conf.source


def lookup(store, key: str, conf: config.Config | None = None) -> tuple[str | None, str]:
    """The value of setting *key* and where it came from.

    Args:
        store: the table store (``site`` is read; inside :meth:`Store.site_cache` once).
        key: a setting name (:data:`SETTINGS`), or any other site key.
        conf: the configuration already loaded, else it is read.
    Returns:
        ``(value, source)``: source is ``site table``, ``<conf file path>`` or
        ``built-in default``; value is None (source ``unset``) when nothing gives one.
    """
    value = store.site(key)
    if value:
        return value, "site table"
    seed, path = _conf_values(conf)
    if seed.get(key):
        return seed[key], path or "configuration file"
    s = SETTINGS.get(key)
    if s is not None and s.default is not None:
        return s.default, "built-in default"
    return None, "unset"


def get(store, key: str, conf: config.Config | None = None) -> str | None:
    """The value of setting *key* (:func:`lookup` without the source)."""
    return lookup(store, key, conf)[0]


def table(store, conf: config.Config | None = None) -> list[tuple[str, str | None, str]]:
    """Every setting of :data:`SETTINGS` as ``(key, value, source)``, in that order."""
    conf = conf if conf is not None else config.load()
    with store.site_cache():
        return [(k, *lookup(store, k, conf)) for k in SETTINGS]
