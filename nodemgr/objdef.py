"""xCAT's data objects for lsdef, mkdef, chdef and rmdef: the attribute map and the logic.

An *object* is a node, a group, an osimage, a network, the site, a policy rule or an osdistro,
named by its key (``node``, ``groupname``, ``imagename``, ``netname``, ``priority``,
``osdistroname``; the site is the one object ``clustersite``). Its *attributes* are xCAT's
names (``mac``, ``vmhost``, ``os``...), each stored in one ``table.column``: the map below is
xCAT's ``%defspec`` (``perl-xCAT/xCAT/Schema.pm``) kept as data, one dict per object type,
for the tables this schema has. The attributes whose table nodemgr does not have are listed
in :data:`NOT_HERE` (naming one is an error that says so).

Reading (:class:`Objects`):

* a node's values are what the node sees (:class:`~nodemgr.tables.resolve.Resolver`: its own
  row, then its groups, regular expressions evaluated), and ``postscripts`` /
  ``postbootscripts`` start with the ``xcatdefaults`` row's, like xCAT's lsdef;
* with ``own=True`` (stanza output, ``lsdef -z``) a node's values are its own rows as stored:
  no group values, regular expressions unevaluated, no ``xcatdefaults``, so
  ``lsdef -z | mkdef -z -f`` writes back exactly the rows it read;
* a group's values are its rows in the node-keyed tables (what its members inherit) plus its
  ``nodegroup`` row; ``members`` is computed (static: the nodes whose ``nodelist.groups``
  names it; dynamic: the nodes matching ``wherevals``);
* other types read their rows as stored.

Writing (:func:`apply`) computes every row first and then writes them all in one
transaction, so an error leaves every table unchanged. ``attr,=v`` / ``-p`` append each
comma-list item not yet present and ``attr^=v`` / ``-m`` remove items (the rule of
:mod:`nodemgr.tables.lists` that nodech and chtab use), starting from the value lsdef shows
without ``-z`` (a node's inherited value included). An empty value clears the object's own
value (the row keeps NULL; a node then inherits its groups' value again, as in xCAT).

This module never prints: problems raise :class:`ObjectError` (one line), warnings are
returned to the caller.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from nodemgr import noderange
from nodemgr.errors import NodemgrError
from nodemgr.tables import lists
from nodemgr.tables.schema import TABLES

__all__ = [
    "ObjType", "TYPES", "TYPE_NAMES", "ALL_TYPES", "NOT_HERE", "LEFT_OUT_TYPES", "ObjectError",
    "Change", "Where", "Stanza", "Objects", "object_type", "check_attribute",
    "parse_assignment", "parse_where", "parse_stanza", "render_stanza", "apply", "remove",
    "SITE_NAME", "STANZA_HEADER",
]

#: The one site object's name (xCAT's).
SITE_NAME = "clustersite"
#: First line of ``lsdef -z`` output (xCAT's).
STANZA_HEADER = "# <xCAT data object stanza file>"


class ObjectError(NodemgrError):
    """Bad object input (type, name, attribute, stanza); one line, nothing was changed."""


@dataclass(frozen=True)
class ObjType:
    """One object type.

    Attributes:
        name: the type (``node``).
        key: the attribute that names an object (xCAT's ``objkey``); it is not listed.
        keyentry: where object names live (``nodelist.node``).
        attrs: attribute -> ``table.column``, in Schema.pm order.
        only_if: attribute -> (attribute, word): stored only when the other attribute's
            value contains that word (osimage: the linuximage columns need
            ``imagetype=linux``).
    """

    name: str
    key: str
    keyentry: str
    attrs: Mapping[str, str]
    only_if: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def entry(self, attr: str) -> tuple[str, str]:
        """``(table, column)`` of *attr*."""
        tab, col = self.attrs[attr].split(".", 1)
        return tab, col

    def tables(self) -> list[str]:
        """The tables this type's attributes live in (first-seen order)."""
        return list(dict.fromkeys([self.keyentry.split(".")[0]]
                                  + [e.split(".")[0] for e in self.attrs.values()]))


# -- the attribute map (xCAT Schema.pm %defspec), for the tables this schema has -------------
#: ``@nodeattrs``: attributes of both nodes and groups (a group's are its rows in the
#: node-keyed tables, the values its members inherit).
NODE_ATTRS: dict[str, str] = {
    "nodetype": "nodetype.nodetype",
    "postscripts": "postscripts.postscripts",
    "postbootscripts": "postscripts.postbootscripts",
    "xcatmaster": "noderes.xcatmaster",
    "servicenode": "noderes.servicenode",
    "tftpserver": "noderes.tftpserver",
    "tftpdir": "noderes.tftpdir",
    "nfsserver": "noderes.nfsserver",
    "nimserver": "noderes.nimserver",
    "nfsdir": "noderes.nfsdir",
    "monserver": "noderes.monserver",
    "supportproxydhcp": "noderes.proxydhcp",
    "kernel": "bootparams.kernel",
    "initrd": "bootparams.initrd",
    "kcmdline": "bootparams.kcmdline",
    "addkcmdline": "bootparams.addkcmdline",
    "primarynic": "noderes.primarynic",
    "installnic": "noderes.installnic",
    "netboot": "noderes.netboot",
    "nameservers": "noderes.nameservers",
    "routenames": "noderes.routenames",
    "arch": "nodetype.arch",
    "supportedarchs": "nodetype.supportedarchs",
    "os": "nodetype.os",
    "profile": "nodetype.profile",
    "provmethod": "nodetype.provmethod",
    "mgt": "nodehm.mgt",
    "power": "nodehm.power",
    "cons": "nodehm.cons",
    "termserver": "nodehm.termserver",
    "termport": "nodehm.termport",
    "conserver": "nodehm.conserver",
    "getmac": "nodehm.getmac",
    "cmdmapping": "nodehm.cmdmapping",
    "serialport": "nodehm.serialport",
    "serialspeed": "nodehm.serialspeed",
    "serialflow": "nodehm.serialflow",
    "consoleondemand": "nodehm.consoleondemand",
    "serial": "vpd.serial",
    "mtm": "vpd.mtm",
    "side": "vpd.side",
    "interface": "mac.interface",
    "mac": "mac.mac",
    "chain": "chain.chain",
    "ondiscover": "chain.ondiscover",
    "currstate": "chain.currstate",
    "currchain": "chain.currchain",
    "vmmanager": "vm.mgr",
    "vmhost": "vm.host",
    "migrationdest": "vm.migrationdest",
    "vmstorage": "vm.storage",
    "vmphyslots": "vm.physlots",
    "vmothersetting": "vm.othersettings",
    "vmstoragemodel": "vm.storagemodel",
    "vmstoragecache": "vm.storagecache",
    "vmstorageformat": "vm.storageformat",
    "vmcfgstore": "vm.cfgstore",
    "vmmemory": "vm.memory",
    "vmcpus": "vm.cpus",
    "vmnics": "vm.nics",
    "vmnicnicmodel": "vm.nicmodel",
    "vmbootorder": "vm.bootorder",
    "vmvirtflags": "vm.virtflags",
    "vmmaster": "vm.master",
    "vmvncport": "vm.vncport",
    "vmtextconsole": "vm.textconsole",
    "vmbeacon": "vm.beacon",
    "vmcluster": "vm.cluster",
    "hosttype": "hypervisor.type",
    "hostinterface": "hypervisor.interface",
    "hostmanager": "hypervisor.mgr",
    "hostcluster": "hypervisor.cluster",
    "ip": "hosts.ip",
    "hostnames": "hosts.hostnames",
    "otherinterfaces": "hosts.otherinterfaces",
}

#: A node's own attributes (``nodelist``), then :data:`NODE_ATTRS`.
NODE: dict[str, str] = {
    "groups": "nodelist.groups",
    "status": "nodelist.status",
    "statustime": "nodelist.statustime",
    "appstatus": "nodelist.appstatus",
    "appstatustime": "nodelist.appstatustime",
    "primarysn": "nodelist.primarysn",
    "hidden": "nodelist.hidden",
    "updatestatus": "nodelist.updatestatus",
    "updatestatustime": "nodelist.updatestatustime",
    "zonename": "nodelist.zonename",
    "usercomment": "nodelist.comments",
    **NODE_ATTRS,
}

GROUP: dict[str, str] = {
    "grouptype": "nodegroup.grouptype",
    "members": "nodegroup.members",
    "membergroups": "nodegroup.membergroups",
    "wherevals": "nodegroup.wherevals",
    "usercomment": "nodegroup.comments",
    **NODE_ATTRS,
}

_LINUX = ("imagetype", "linux")
OSIMAGE: dict[str, str] = {
    "groups": "osimage.groups",
    "imagetype": "osimage.imagetype",
    "description": "osimage.description",
    "provmethod": "osimage.provmethod",
    "osdistroname": "osimage.osdistroname",
    "osupdatename": "osimage.osupdatename",
    "cfmdir": "osimage.cfmdir",
    "rootfstype": "osimage.rootfstype",
    "profile": "osimage.profile",
    "osname": "osimage.osname",
    "osvers": "osimage.osvers",
    "osarch": "osimage.osarch",
    "synclists": "osimage.synclists",
    "postscripts": "osimage.postscripts",
    "postbootscripts": "osimage.postbootscripts",
    "serverrole": "osimage.serverrole",
    "isdeletable": "osimage.isdeletable",
    "kitcomponents": "osimage.kitcomponents",
    "template": "linuximage.template",
    "boottarget": "linuximage.boottarget",
    "addkcmdline": "linuximage.addkcmdline",
    "pkglist": "linuximage.pkglist",
    "pkgdir": "linuximage.pkgdir",
    "otherpkglist": "linuximage.otherpkglist",
    "otherpkgdir": "linuximage.otherpkgdir",
    "exlist": "linuximage.exlist",
    "postinstall": "linuximage.postinstall",
    "rootimgdir": "linuximage.rootimgdir",
    "kerneldir": "linuximage.kerneldir",
    "nodebootif": "linuximage.nodebootif",
    "otherifce": "linuximage.otherifce",
    "netdrivers": "linuximage.netdrivers",
    "kernelver": "linuximage.kernelver",
    "krpmver": "linuximage.krpmver",
    "permission": "linuximage.permission",
    "dump": "linuximage.dump",
    "crashkernelsize": "linuximage.crashkernelsize",
    "partitionfile": "linuximage.partitionfile",
    "driverupdatesrc": "linuximage.driverupdatesrc",
    "usercomment": "linuximage.comments",
}
#: Schema.pm's ``only_if => 'imagetype=linux'`` attributes.
OSIMAGE_ONLY_IF = {a: _LINUX for a, e in OSIMAGE.items()
                   if e.startswith("linuximage.") or a == "rootfstype"}

NETWORK: dict[str, str] = {
    "net": "networks.net",
    "mask": "networks.mask",
    "mgtifname": "networks.mgtifname",
    "gateway": "networks.gateway",
    "dhcpserver": "networks.dhcpserver",
    "tftpserver": "networks.tftpserver",
    "nameservers": "networks.nameservers",
    "ntpservers": "networks.ntpservers",
    "logservers": "networks.logservers",
    "dynamicrange": "networks.dynamicrange",
    "nodehostname": "networks.nodehostname",
    "ddnsdomain": "networks.ddnsdomain",
    "vlanid": "networks.vlanid",
    "domain": "networks.domain",
    "staticrange": "networks.staticrange",
    "staticrangeincrement": "networks.staticrangeincrement",
    "usercomment": "networks.comments",
}

POLICY: dict[str, str] = {
    "name": "policy.name",
    "host": "policy.host",
    "commands": "policy.commands",
    "noderange": "policy.noderange",
    "parameters": "policy.parameters",
    "time": "policy.time",
    "rule": "policy.rule",
    "usercomment": "policy.comments",
}

OSDISTRO: dict[str, str] = {
    "basename": "osdistro.basename",
    "majorversion": "osdistro.majorversion",
    "minorversion": "osdistro.minorversion",
    "arch": "osdistro.arch",
    "type": "osdistro.type",
    "dirpaths": "osdistro.dirpaths",
}

#: The audit log's records (xCAT's ``auditlog`` object; ``lsdef -a`` leaves them out).
AUDITLOG: dict[str, str] = {
    a: f"auditlog.{a}" for a in ("audittime", "userid", "clientname", "clienttype", "command",
                                 "noderange", "args", "status", "comments", "disable")}

TYPES: dict[str, ObjType] = {t.name: t for t in (
    ObjType("node", "node", "nodelist.node", NODE),
    ObjType("group", "groupname", "nodegroup.groupname", GROUP),
    ObjType("osimage", "imagename", "osimage.imagename", OSIMAGE, OSIMAGE_ONLY_IF),
    ObjType("network", "netname", "networks.netname", NETWORK),
    # site: every site row is an attribute (key=value) of the one object clustersite
    ObjType("site", "master", "site.key", {}),
    ObjType("policy", "priority", "policy.priority", POLICY),
    ObjType("osdistro", "osdistroname", "osdistro.osdistroname", OSDISTRO),
    ObjType("auditlog", "recid", "auditlog.recid", AUDITLOG),
)}
#: Type names, sorted (the order of xCAT's usage list and of ``lsdef -a``).
TYPE_NAMES = sorted(TYPES)
#: What ``-a`` means: every type but the audit log (xCAT: it "might be very big").
ALL_TYPES = [n for n in TYPE_NAMES if n != "auditlog"]

#: xCAT attributes of a node (and group) stored in tables this schema does not have.
_NODE_NOT_HERE: dict[str, str] = {
    "setupnameserver": "servicenode.nameserver", "setupdhcp": "servicenode.dhcpserver",
    "setuptftp": "servicenode.tftpserver", "setupnfs": "servicenode.nfsserver",
    "setupconserver": "servicenode.conserver", "setupipforward": "servicenode.ipforward",
    "setupproxydhcp": "servicenode.proxydhcp", "setupldap": "servicenode.ldapserver",
    "setupntp": "servicenode.ntpserver", "setupftp": "servicenode.ftpserver",
    "setupnim": "servicenode.nimserver", "dhcpinterfaces": "servicenode.dhcpinterfaces",
    "iscsiserver": "iscsi.server", "iscsitarget": "iscsi.target",
    "iscsiuserid": "iscsi.userid", "iscsipassword": "iscsi.passwd",
    "username": "ppchcp.username, mpa.username, websrv.username, switches.sshusername",
    "password": "ppchcp.password, mpa.password, websrv.password, switches.sshpassword",
    "hcp": "ppc.hcp, zvm.hcp", "id": "ppc.id, mp.id", "pprofile": "ppc.pprofile",
    "parent": "ppc.parent", "hwtype": "ppc.nodetype, zvm.nodetype, mp.nodetype, mic.nodetype",
    "supernode": "ppc.supernode", "sfp": "ppc.sfp",
    "passwd.HMC": "ppcdirect.password", "passwd.hscroot": "ppcdirect.password",
    "passwd.admin": "ppcdirect.password", "passwd.general": "ppcdirect.password",
    "passwd.celogin": "ppcdirect.password", "userid": "zvm.userid",
    "bmc": "ipmi.bmc", "bmcport": "ipmi.bmcport", "bmcusername": "ipmi.username",
    "bmcpassword": "ipmi.password", "mpa": "mp.mpa", "slotid": "mp.id",
    "displayname": "mpa.displayname", "slots": "mpa.slots", "urlpath": "mpa.urlpath",
    "rack": "nodepos.rack", "unit": "nodepos.u", "chassis": "nodepos.chassis",
    "slot": "nodepos.slot", "room": "nodepos.room", "height": "nodepos.height",
    "nicips": "nics.nicips", "nichostnamesuffixes": "nics.nichostnamesuffixes",
    "nichostnameprefixes": "nics.nichostnameprefixes", "nictypes": "nics.nictypes",
    "niccustomscripts": "nics.niccustomscripts", "nicnetworks": "nics.nicnetworks",
    "nicaliases": "nics.nicaliases", "nicextraparams": "nics.nicextraparams",
    "productkey": "prodkey.key", "ou": "domain.ou", "domainadminuser": "domain.adminuser",
    "domainadminpassword": "domain.adminpassword", "authdomain": "domain.authdomain",
    "domaintype": "domain.type", "osvolume": "storage.osvolume",
    "storagcontroller": "storage.controller", "storagetype": "storage.type",
    "webport": "websrv.port", "switch": "switch.switch", "switchport": "switch.port",
    "switchvlan": "switch.vlan", "switchinterface": "switch.interface",
    "prescripts-begin": "prescripts.begin", "prescripts-end": "prescripts.end",
    "cfgmgr": "cfgmgt.cfgmgr", "cfgserver": "cfgmgt.cfgserver", "cfgmgtroles": "cfgmgt.roles",
    "michost": "mic.host", "micid": "mic.id", "micbridge": "mic.bridge",
    "miconboot": "mic.onboot", "micvlog": "mic.vlog", "micpowermgt": "mic.powermgt",
    "cputype": "hwinv.cputype", "cpucount": "hwinv.cpucount", "memory": "hwinv.memory",
    "disksize": "hwinv.disksize", "snmpusername": "switches.username",
    "snmppassword": "switches.password", "snmpversion": "switches.snmpversion",
    "snmpprivacy": "switches.privacy", "snmpauth": "switches.auth",
    "linkports": "switches.linkports", "protocol": "switches.protocol",
    "switchtype": "switches.switchtype",
}
#: type -> xCAT attribute -> where xCAT stores it, for attributes left out here.
NOT_HERE: dict[str, dict[str, str]] = {
    "node": _NODE_NOT_HERE,
    "group": _NODE_NOT_HERE,
    "osimage": {
        "installto": "winimage.installto", "winpepath": "winimage.winpepath",
        **{a: f"nimimage.{a}" for a in (
            "nimtype", "nimmethod", "lpp_source", "spot", "root", "configdump", "paging",
            "resolv_conf", "image_data", "tmp", "home", "shared_home", "shared_root",
            "script", "fb_script", "bosinst_data", "installp_bundle", "otherpkgs", "mksysb")},
    },
}
#: xCAT object types not offered here, with the reason.
LEFT_OUT_TYPES: dict[str, str] = {
    "route": "no routes table", "rack": "no rack table", "zone": "no zone table",
    "monitoring": "no monitoring/monsetting tables", "notification": "no notification table",
    "eventlog": "no eventlog table", "firmware": "no firmware table",
    "kit": "no kit table", "kitrepo": "no kitrepo table",
    "kitcomponent": "no kitcomponent table", "osdistroupdate": "no osdistroupdate table",
    "boottarget": "Schema.pm declares the type but defines no attributes for it",
}

_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_SITE_KEY_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]*")


def object_type(name: str) -> ObjType:
    """The type called *name* (xCAT's message otherwise)."""
    t = TYPES.get(name)
    if t is None:
        why = LEFT_OUT_TYPES.get(name)
        raise ObjectError(f"Type '{name}' is not a valid xCAT object type."
                          + (f" (nodemgr has no {name} objects: {why})" if why else ""))
    return t


def check_attribute(t: ObjType, attr: str) -> None:
    """Raise xCAT's ``'x' is not a valid attribute name for an object type of 't'.`` unless
    *attr* is one of *t*'s attributes (any well-formed name is a site attribute)."""
    if t.name == "site":
        if _SITE_KEY_RE.fullmatch(attr):
            return
    elif attr in t.attrs or attr == t.key:
        return
    msg = f"'{attr}' is not a valid attribute name for an object type of '{t.name}'."
    base = attr.split(".", 1)[0] if attr.startswith("nic") else attr
    where = NOT_HERE.get(t.name, {}).get(base)
    if where:
        msg += f" (xCAT stores it in {where}, a table nodemgr does not have)"
    raise ObjectError(msg)


# -- parsing ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Change:
    """One assignment: ``attr`` ``op`` (``=``, ``,=`` append, ``^=`` remove) ``value``."""

    attr: str
    op: str
    value: str


def parse_assignment(word: str) -> Change:
    """``attr=val``, ``attr,=val`` or ``attr^=val`` (the value may contain ``=``).

    Raises:
        ObjectError: xCAT's ``Incorrect 'attr=val' pair - x.``
    """
    lhs, eq, value = word.partition("=")
    lhs = lhs.strip()
    op = "="
    if lhs.endswith(","):
        op, lhs = ",=", lhs[:-1].rstrip()
    elif lhs.endswith("^"):
        op, lhs = "^=", lhs[:-1].rstrip()
    if not eq or not lhs:
        raise ObjectError(f"Incorrect 'attr=val' pair - {word}.")
    return Change(lhs, op, value.strip())


_WHERE_RE = re.compile(r"([^=!~]+?)(==|!=|=~|!~)(.*)", re.S)


@dataclass(frozen=True)
class Where:
    """One ``-w`` selection: ``attr==val``, ``!=``, ``=~regex``, ``!~regex`` (an unset value
    compares as the empty string; ``=~`` searches, like Perl's; /slashes/ are optional)."""

    text: str
    attr: str
    op: str
    value: str
    pattern: re.Pattern | None = None

    def matches(self, value: str | None) -> bool:
        v = value or ""
        if self.op == "==":
            return v == self.value
        if self.op == "!=":
            return v != self.value
        found = self.pattern.search(v) is not None
        return found if self.op == "=~" else not found


def parse_where(text: str) -> Where:
    """Parse one ``-w`` selection string.

    Raises:
        ObjectError: not ``attr<op>value`` or a bad regular expression.
    """
    m = _WHERE_RE.fullmatch(text.strip())
    if m is None:
        raise ObjectError(f"Incorrect selection string specified with -w flag: '{text}' "
                          "(use attr==val, attr!=val, attr=~regex or attr!~regex).")
    attr, op, value = m.group(1).strip(), m.group(2), m.group(3)
    pattern = None
    if op in ("=~", "!~"):
        body = value[1:] if value.startswith("/") else value
        body = body[:-1] if body.endswith("/") and len(body) > 0 else body
        try:
            pattern = re.compile(body)
        except (re.error, OverflowError, RecursionError) as exc:
            raise ObjectError(f"Incorrect selection string specified with -w flag: "
                              f"'{text}': {exc}") from None
    return Where(text, attr, op, value, pattern)


@dataclass
class Stanza:
    """One object of a stanza file: its name, type, attributes and the line of its header."""

    name: str
    objtype: str
    attrs: dict[str, str]
    line: int


def _unquote(value: str) -> str:
    """xCAT's reader: surrounding blanks and one pair of ``"`` around the value go."""
    value = value.strip()
    if value.startswith('"'):
        value = value[1:].lstrip()
    if value.endswith('"'):
        value = value[:-1].rstrip()
    return value


def parse_stanza(text: str) -> list[Stanza]:
    """Parse an xCAT stanza file (``xcatstanzafile(5)``).

    ``name:`` starts a stanza, ``attr=value`` lines follow (blanks around both ignored, a
    value's surrounding quotes removed), ``#`` lines and blank lines are skipped; every
    stanza needs ``objtype=``. ``default-<type>:`` stanzas give values for the stanzas of
    that type after them (cumulative; an empty value unsets the default; a stanza's own
    values win).

    Raises:
        ObjectError: ``stanza line N: ...`` for a line that is neither, an attribute before
            any header, a second stanza for a name, a stanza without objtype or with an
            unknown type or attribute.
    """
    stanzas: list[Stanza] = []
    seen: dict[str, int] = {}
    defaults: dict[str, dict[str, tuple[str, int]]] = {}
    cur: Stanza | None = None
    cur_default: str | None = None
    own: dict[str, tuple[str, int]] = {}
    lines = text.splitlines()

    def finish() -> None:
        nonlocal cur
        if cur is None:
            return
        if not cur.objtype:
            raise ObjectError(f"stanza line {cur.line}: No objtype value was specified for "
                              f"'{cur.name}'. Cannot create object definition.")
        t = object_type_at(cur.objtype, cur.line)
        merged = {k: v for k, v in defaults.get(t.name, {}).items() if v[0] != ""}
        merged.update(own)
        for attr, (_value, line) in merged.items():
            try:
                check_attribute(t, attr)
            except ObjectError as exc:
                raise ObjectError(f"stanza line {line}: {exc}") from None
        cur.attrs = {k: v for k, (v, _line) in merged.items()}
        stanzas.append(cur)
        cur = None

    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith(":") and "=" not in line:
            finish()
            name = line[:-1].strip()  # IPv6 network names (fd59::/64:) keep their colons
            if not name:
                raise ObjectError(f"stanza line {n}: a header without a name")
            if name.startswith("default-"):
                cur_default = name[len("default-"):]
                object_type_at(cur_default, n)
                defaults.setdefault(cur_default, {})
                continue
            if name in seen:
                raise ObjectError(f"stanza line {n}: a second stanza for '{name}' (the first "
                                  f"is on line {seen[name]}; only one stanza may exist for "
                                  "each object name)")
            seen[name] = n
            cur_default = None
            cur, own = Stanza(name, "", {}, n), {}
            continue
        attr, eq, value = line.partition("=")
        attr = attr.strip()
        if not eq or not attr:
            raise ObjectError(f"stanza line {n}: {line!r} is neither a 'name:' header nor an "
                              "'attr=value' line")
        value = _unquote(value)
        if cur_default is not None:
            defaults[cur_default][attr] = (value, n)
        elif cur is None:
            raise ObjectError(f"stanza line {n}: '{attr}=' comes before any 'name:' header")
        elif attr == "objtype":
            cur.objtype = value
        else:
            own[attr] = (value, n)
    finish()
    return stanzas


def object_type_at(name: str, line: int) -> ObjType:
    try:
        return object_type(name)
    except ObjectError as exc:
        raise ObjectError(f"stanza line {line}: {exc}") from None


def render_stanza(objects: Iterable[tuple[str, str, Mapping[str, str]]],
                  wanted: Sequence[str] | None = None, long: bool = True) -> str:
    """``lsdef -z`` text for (name, objtype, attributes) triples: the header line, then per
    object a blank line, ``name:``, ``    objtype=type`` and ``    attr=value`` sorted
    (*wanted*: only those, shown even when unset)."""
    out = [STANZA_HEADER]
    for name, objtype, attrs in objects:
        out.append("")
        out.append(f"{name}:")
        if not long:
            continue
        out.append(f"    objtype={objtype}")
        out.extend(f"    {a}={v}" for a, v in attr_lines(objtype, attrs, wanted))
    return "\n".join(out) + "\n"


def attr_lines(objtype: str, attrs: Mapping[str, str | None],
               wanted: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """The (attr, value) pairs lsdef prints, sorted by name: set values only, a group's
    ``members`` always, or with *wanted* exactly those attributes (unset ones empty)."""
    if wanted is not None:
        return [(a, attrs.get(a) or "") for a in sorted(dict.fromkeys(wanted))]
    out = [(a, v) for a, v in attrs.items() if v not in (None, "")]
    if objtype == "group" and not attrs.get("members"):
        out.append(("members", ""))  # xCAT prints a group's members even when there are none
    return sorted(out)


# -- reading ----------------------------------------------------------------------------------
def _has_word(value: str | None, word: str) -> bool:
    return re.search(rf"\b{re.escape(word)}\b", value or "") is not None


def _key_column(table: str) -> str:
    t = TABLES[table]
    return t.nodecol or t.keys[0]


class Objects:
    """Read access to the objects of one store (caches through one Resolver)."""

    def __init__(self, store, resolver=None) -> None:
        from nodemgr.tables.resolve import Resolver

        self.store = store
        self.resolver = resolver if resolver is not None else Resolver(store)

    def invalidate(self) -> None:
        self.resolver.invalidate()

    # -- names ----------------------------------------------------------------------------
    def names(self, t: ObjType) -> list[str]:
        """Every object of type *t*, sorted."""
        if t.name == "node":
            return sorted(self.resolver.nodes())
        if t.name == "site":
            return [SITE_NAME]
        if t.name == "group":
            names = set(self.resolver.nodegroups()) | self.resolver.static_groups()
            return sorted(n for n in names if n)
        tab, col = t.keyentry.split(".", 1)
        return sorted({r[col] for r in self.store.select(tab, columns=(col,))
                       if r[col] not in (None, "")})

    def exists(self, t: ObjType, names: Iterable[str]) -> set[str]:
        """Those of *names* that are objects of type *t*."""
        have = set(self.names(t))
        return {n for n in names if n in have}

    def hidden(self, nodes: Sequence[str]) -> set[str]:
        """Nodes with ``nodelist.hidden`` = 1 (lsdef shows them only with -S)."""
        rows = self.resolver.rows("nodelist", nodes)
        return {n for n in nodes if (rows.get(n) or {}).get("hidden") == "1"}

    # -- values ---------------------------------------------------------------------------
    def read(self, t: ObjType, names: Sequence[str], *, own: bool = False,
             defaults: bool = True, errors: dict[str, dict[str, str]] | None = None
             ) -> dict[str, dict[str, str | None]]:
        """name -> attribute -> value (None when unset) for existing objects *names*.

        Args:
            own: a node's own rows as stored (stanza output) instead of what it sees.
            defaults: a node's ``postscripts``/``postbootscripts`` start with the
                ``xcatdefaults`` row's (lsdef without -z); ignored with *own*.
            errors: collect a node's values that cannot be rendered (bad regex,
                arithmetic, timeout) as ``errors[node][table.column] = message`` (the
                value is None) instead of raising TableError.
        """
        names = list(names)
        if not names:
            return {}
        if t.name == "node":
            return self._read_nodes(t, names, own=own, defaults=defaults, errors=errors)
        if t.name == "group":
            return self._read_groups(t, names)
        if t.name == "site":
            values = {}
            for r in self.store.select("site"):
                if r["key"] not in (None, "") and r["value"] not in (None, ""):
                    values.setdefault(r["key"], r["value"])
            return {SITE_NAME: values}
        return self._read_rows(t, names)

    def _read_nodes(self, t, names, *, own, defaults, errors=None):
        attrs = [a for a in t.attrs]
        out: dict[str, dict[str, str | None]] = {n: {} for n in names}
        if own:
            tables = {t.entry(a)[0] for a in attrs}
            rows = {tab: self.resolver.rows(tab, names) for tab in tables}
            for n in names:
                for a in attrs:
                    tab, col = t.entry(a)
                    v = (rows[tab].get(n) or {}).get(col)
                    out[n][a] = None if v in (None, "") else v
            return out
        entries = [t.attrs[a] for a in attrs]
        if errors is None:
            values = self.resolver.attrs(names, list(dict.fromkeys(entries)))
        else:
            values = self.resolver.attrs(names, list(dict.fromkeys(entries)), errors=errors)
        for n in names:
            for a, e in zip(attrs, entries, strict=True):
                out[n][a] = values[n][e]
        if defaults:
            row = self.resolver.rows("postscripts", ["xcatdefaults"]).get("xcatdefaults") or {}
            for a in ("postscripts", "postbootscripts"):
                base = row.get(a)
                if not base:
                    continue
                for n in names:
                    mine = out[n].get(a)
                    out[n][a] = f"{base},{mine}" if mine else base
        return out

    def _read_groups(self, t, names):
        out: dict[str, dict[str, str | None]] = {n: {} for n in names}
        ngrows = self.resolver.nodegroups()
        tables = {t.entry(a)[0] for a in t.attrs if t.entry(a)[0] != "nodegroup"}
        rows = {tab: self.resolver.rows(tab, names) for tab in tables}
        for n in names:
            ng = ngrows.get(n) or {}
            for a in t.attrs:
                tab, col = t.entry(a)
                v = ng.get(col) if tab == "nodegroup" else (rows[tab].get(n) or {}).get(col)
                out[n][a] = None if v in (None, "") else v
            out[n]["members"] = ",".join(self.members(n)) or None
        return out

    def _read_rows(self, t, names):
        keytab, keycol = t.keyentry.split(".", 1)
        wanted = set(names)
        out: dict[str, dict[str, str | None]] = {n: dict.fromkeys(t.attrs) for n in names}
        for tab in t.tables():
            col = keycol if tab == keytab else _key_column(tab)
            first: dict[str, dict] = {}
            for r in self.store.select(tab):
                if r.get(col) in wanted:
                    first.setdefault(r[col], r)
            for a in t.attrs:
                atab, acol = t.entry(a)
                if atab != tab:
                    continue
                for n, r in first.items():
                    if r.get(acol) not in (None, ""):
                        out[n][a] = r[acol]
        for n in names:  # Schema.pm's only_if: linuximage values of non-linux images hide
            for a, (other, word) in t.only_if.items():
                if not _has_word(out[n].get(other), word):
                    out[n][a] = None
        return out

    def members(self, group: str) -> list[str]:
        """The group's nodes in nodelist order (static or dynamic, as noderanges see it)."""
        try:
            got = set(noderange.expand(group, self.resolver, exclude_site=False))
        except noderange.NoderangeError:
            return []
        return [n for n in self.resolver.nodes() if n in got]


# -- writing ----------------------------------------------------------------------------------
@dataclass
class _Plan:
    """Everything one command writes, computed before the transaction."""

    rows: dict[tuple[str, str], dict[str, str | None]] = field(default_factory=dict)
    site: dict[str, str | None] = field(default_factory=dict)
    networks: dict[str, tuple[bool, dict[str, str | None]]] = field(default_factory=dict)
    removals: list[tuple[ObjType, str]] = field(default_factory=list)
    create: set[tuple[str, str]] = field(default_factory=set)  # rows a new object needs
    warnings: list[str] = field(default_factory=list)

    def put(self, table: str, key: str, col: str, value: str | None) -> None:
        self.rows.setdefault((table, key), {})[col] = value


def _listop(current: str | None, op: str, value: str, delim: str = ",") -> str | None:
    if op == "=":
        return value if value != "" else None
    if delim == ",":
        result = (lists.append if op == ",=" else lists.remove)(current, value)
    else:
        items = [i for i in (current or "").split(delim) if i]
        extra = [i for i in value.split(delim) if i]
        if op == ",=":
            items += [i for i in extra if i not in items]
        else:
            items = [i for i in items if i not in extra]
        result = delim.join(items)
    return result or None


def apply(objects: Objects, t: ObjType, changes: Mapping[str, Sequence[Change]], *,
          new: Iterable[str] = (), replace: Iterable[str] = (),
          wherevals: Sequence[str] | None = None, dynamic: bool = False,
          where_op: str = "=") -> list[str]:
    """Write *changes* (object name -> assignments) of type *t* in one transaction.

    Args:
        objects: the object reader (its store is written).
        new: names that do not exist yet (created; a new group becomes static unless
            *dynamic*).
        replace: existing names whose old attributes are unset first (mkdef -f; columns
            outside the map keep their values, rows left empty are deleted).
        wherevals: ``-w`` selections for a group (dynamic: its ``wherevals``; static: the
            matching nodes become its members).
        dynamic: ``-d``: the group is (or becomes) dynamic.
        where_op: how *wherevals* combine with a dynamic group's current ones
            (``=``, ``,=`` add, ``^=`` remove).
    Returns:
        Warnings to print.
    Raises:
        ObjectError: bad attribute, value or member; nothing is written.
    """
    new, replace = set(new), set(replace)
    plan = _Plan()
    store = objects.store
    for name in sorted(replace):
        plan.removals.append((t, name))
    fresh = new | replace  # defined from scratch: no current values
    names = list(changes)
    for chs in changes.values():
        for c in chs:
            check_attribute(t, c.attr)
    current: dict[str, dict[str, str | None]] = {}
    existing = [n for n in names if n not in fresh]
    if existing and t.name != "site":
        current = objects.read(t, existing, defaults=False)
    elif t.name == "site":
        current = objects.read(t, [SITE_NAME])

    if t.name == "site":
        cur = current.get(SITE_NAME, {})
        for c in changes.get(SITE_NAME, ()):
            plan.site[c.attr] = _listop(plan.site.get(c.attr, cur.get(c.attr)), c.op, c.value)
    elif t.name == "network":
        _plan_networks(objects, t, changes, current, new, plan)
    elif t.name == "group":
        _plan_groups(objects, t, changes, current, fresh, new, plan, wherevals=wherevals,
                     dynamic=dynamic, where_op=where_op)
    else:
        for name, chs in changes.items():
            values = _values(t, chs, current.get(name, {}))
            _check_only_if(t, name, values, current.get(name, {}))
            if t.name == "node":
                _filter_xcatdefaults(objects, name, values, plan)
            for attr, value in values.items():
                if attr == t.key:
                    continue
                tab, col = t.entry(attr)
                plan.put(tab, name, col, value)
            if name in fresh:
                keytab = t.keyentry.split(".", 1)[0]
                plan.rows.setdefault((keytab, name), {})
                plan.create.add((keytab, name))
    if t.name == "node":
        _plan_group_warnings(objects, changes, plan)
    _execute(store, plan)
    objects.invalidate()
    return plan.warnings


def _values(t: ObjType, chs: Sequence[Change], cur: Mapping[str, str | None],
            delim_for: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """attribute -> new value for one object's assignments, in order."""
    out: dict[str, str | None] = {}
    for c in chs:
        base = out[c.attr] if c.attr in out else cur.get(c.attr)
        out[c.attr] = _listop(base, c.op, c.value, (delim_for or {}).get(c.attr, ","))
    return out


def _check_only_if(t: ObjType, name: str, values: Mapping[str, str | None],
                   cur: Mapping[str, str | None]) -> None:
    for attr in values:
        rule = t.only_if.get(attr)
        if rule is None or values[attr] is None:
            continue
        other, word = rule
        if not _has_word(values.get(other, cur.get(other)), word):
            raise ObjectError(f"Cannot set the attr='{attr}' attribute unless "
                              f"'{other}={word}' (object '{name}').")


def _filter_xcatdefaults(objects: Objects, name: str, values: dict[str, str | None],
                         plan: _Plan) -> None:
    """Schema.pm's setobjdefs: scripts the xcatdefaults row already runs are not stored on
    the node or group (lsdef prints them first anyway)."""
    row = objects.resolver.rows("postscripts", ["xcatdefaults"]).get("xcatdefaults") or {}
    for attr in ("postscripts", "postbootscripts"):
        value, base = values.get(attr), lists.items(row.get(attr))
        if value is None or not base:
            continue
        keep = []
        for item in lists.items(value):
            if item in base:
                plan.warnings.append(f"{name}: {attr} '{item}' is already included in the "
                                     "'xcatdefaults'.")
            else:
                keep.append(item)
        values[attr] = ",".join(keep) or None


def _plan_group_warnings(objects: Objects, changes, plan: _Plan) -> None:
    dynamic = {g for g, r in objects.resolver.nodegroups().items()
               if (r.get("grouptype") or "").strip().lower() == "dynamic"}
    for chs in changes.values():
        for c in chs:
            if c.attr == "groups" and c.op != "^=":
                for g in lists.items(c.value):
                    if g in dynamic:
                        plan.warnings.append(f"nodegroup {g} is a dynamic node group; nodes "
                                             "should not be added to it statically")
    for (tab, node), vals in plan.rows.items():
        if tab == "nodelist":
            groups = vals.get("groups")
            if groups is not None and node in lists.items(groups):
                raise ObjectError(f"node '{node}' cannot be a member of a group of its own "
                                  "name")


def _plan_networks(objects, t, changes, current, new, plan) -> None:
    rows = objects.store.select("networks")
    for name, chs in changes.items():
        cur = current.get(name, {})
        values = _values(t, chs, cur)
        values.pop(t.key, None)
        merged = {**cur, **values}
        if not merged.get("net") or not merged.get("mask"):
            raise ObjectError(f"Missing required attribute values for the '{name}' object. "
                              "The required attributes are: net mask")
        for r in rows:
            if r["netname"] != name and (r["net"], r["mask"]) == (merged["net"],
                                                                   merged["mask"]):
                raise ObjectError(f"A network definition called '{r['netname']}' already "
                                  "exists that contains the same net and mask values. Cannot "
                                  f"create a definition for '{name}'.")
        cols = {t.entry(a)[1]: v for a, v in values.items()}
        plan.networks[name] = (name not in new, cols)


#: What a dynamic group may be given (its members are computed, it passes nothing on:
#: nodes inherit only from the groups in their nodelist.groups).
_DYNAMIC_ATTRS = {"grouptype", "members", "membergroups", "wherevals", "usercomment"}


def _plan_groups(objects, t, changes, current, fresh, new, plan, *, wherevals, dynamic,
                 where_op) -> None:
    resolver = objects.resolver
    had_row = set(resolver.nodegroups())
    nodelist = resolver.rows("nodelist", resolver.nodes())
    pending: dict[str, str | None] = {}  # node -> its new nodelist.groups

    def groups_of(node: str) -> str | None:
        return pending[node] if node in pending else (nodelist.get(node) or {}).get("groups")

    for name, chs in changes.items():
        cur = current.get(name, {})
        is_fresh = name in fresh
        stored = (cur.get("grouptype") or "").strip().lower()
        asked = [c.value.strip().lower() for c in chs if c.attr == "grouptype" and c.op == "="]
        kind = "dynamic" if dynamic else (asked[-1] if asked else stored) or "static"
        member_chs = [c for c in chs if c.attr == "members"]
        values = _values(t, [c for c in chs if c.attr not in ("members", t.key)], cur,
                         {"wherevals": "::"})
        if kind == "dynamic":
            extra = sorted({c.attr for c in chs} - _DYNAMIC_ATTRS - {t.key})
            if extra:
                raise ObjectError(f"Can not assign attributes to dynamic node group '{name}'.")
            if wherevals is not None:
                base = values.get("wherevals", cur.get("wherevals"))
                values["wherevals"] = _listop(base, where_op, "::".join(wherevals), "::")
            where = values.get("wherevals", cur.get("wherevals"))
            if not where:
                raise ObjectError("The 'where' attributes and values were not provided for "
                                  f"dynamic group '{name}'.")
            for w in where.split("::"):
                _check_dynamic_where(w)
            values["grouptype"], values["members"] = "dynamic", "dynamic"
        else:
            if wherevals is not None and member_chs:
                raise ObjectError("Cannot use a list of members together with the '-w' "
                                  "option.")
            if kind != "static":
                raise ObjectError(f"grouptype '{kind}' of group '{name}' is neither static "
                                  "nor dynamic.")
            # the nodegroup row: a new group gets one (xCAT); a group that exists only in
            # nodelist.groups gets one when given a nodegroup attribute (so a stanza of such
            # a group recreates no row it did not have)
            row = (name in new or name in had_row and name not in fresh
                   or any(t.entry(a)[0] == "nodegroup" for a in values))
            if row:
                if name in new or member_chs or wherevals is not None:
                    values["members"] = "static"
                if not stored and not values.get("grouptype"):
                    values["grouptype"] = "static"
            old = [] if is_fresh else objects.members(name)
            add, drop = _membership(objects, name, old, member_chs, wherevals)
            for n in add:
                pending[n] = lists.append(groups_of(n), name) or None
            for n in drop:
                pending[n] = lists.remove(groups_of(n), name) or None
        _filter_xcatdefaults(objects, name, values, plan)
        for attr, value in values.items():
            tab, col = t.entry(attr)
            plan.put(tab, name, col, value)
        if name in new or kind == "dynamic":
            plan.create.add(("nodegroup", name))
    for node, groups in pending.items():
        plan.put("nodelist", node, "groups", groups)


def _membership(objects, name, old, member_chs, wherevals) -> tuple[list[str], list[str]]:
    """(nodes to add to group *name*, nodes to take out) for a static group."""
    resolver = objects.resolver
    if wherevals is not None:  # a static group of the nodes matching -w, as they are now
        sels = [parse_where(w) for w in wherevals]
        for s in sels:
            check_attribute(TYPES["node"], s.attr)
        nodes = resolver.nodes()
        vals = objects.read(TYPES["node"], nodes) if nodes else {}
        return [n for n in nodes if all(s.matches(vals[n].get(s.attr)) for s in sels)], []
    members = list(old)
    for c in member_chs:
        if not c.value.strip():
            continue  # "members=" (a stanza of an empty group) changes nothing, as in xCAT
        try:
            named = noderange.expand(c.value, resolver)
        except noderange.NoderangeError as exc:
            raise ObjectError(f"members of group '{name}': {exc}") from None
        if c.op == "=":
            members = named
        elif c.op == ",=":
            members += [n for n in named if n not in members]
        else:
            members = [n for n in members if n not in named]
    if name in members:
        raise ObjectError(f"'{name}' cannot be a member of a group of the same name.")
    return ([n for n in members if n not in old], [n for n in old if n not in members])


def _check_dynamic_where(text: str) -> None:
    w = parse_where(text)
    if w.attr not in NODE and w.attr not in ("node",):
        raise ObjectError(f"Incorrect attribute '{w.attr}' in the selection string specified "
                          "with -w flag.")
    aliases = {**noderange.OBJECT_ATTRS, **noderange.SHORTNAMES}
    if w.attr not in aliases:
        raise ObjectError(f"attribute '{w.attr}' cannot select the members of a dynamic "
                          "group yet (noderanges evaluate only: "
                          f"{', '.join(sorted(aliases))})")


def _execute(store, plan: _Plan) -> None:
    with store.transaction():
        touched: set[tuple[str, str]] = set()
        for t, name in plan.removals:
            touched |= _clear(store, t, name)
        upserts: dict[str, list[dict]] = {}
        for (tab, key), values in plan.rows.items():
            keycol = _key_column(tab)
            if values and all(v is None for v in values.values()) and \
                    (tab, key) not in plan.create:
                store.update(tab, {keycol: key}, values)  # clear: never creates a row
            else:
                upserts.setdefault(tab, []).append({keycol: key, **values})
        for tab, rows in upserts.items():  # one executemany per run of equal columns
            rows.sort(key=lambda r: tuple(r))
            store.upsert_many(tab, rows)
        for key, value in plan.site.items():
            if value is None:
                store.delete("site", {"key": key})
            else:
                store.upsert("site", {"key": key}, {"value": value})
        for name, (exists, cols) in plan.networks.items():
            if exists:
                if cols:
                    store.update("networks", {"netname": name}, cols)
            else:
                store.insert("networks", {"netname": name, **cols})
        for tab, key in touched - plan.create:
            _prune(store, tab, key)


def _mapped(t: ObjType) -> dict[str, list[str]]:
    """table -> the columns *t*'s attributes map to (key columns left out)."""
    out: dict[str, list[str]] = {}
    for entry in t.attrs.values():
        tab, col = entry.split(".", 1)
        if col not in TABLES[tab].keys:
            out.setdefault(tab, []).append(col)
    return out


def _clear(store, t: ObjType, name: str) -> set[tuple[str, str]]:
    """mkdef -f: unset every mapped attribute of object *name* (the columns nodemgr has
    beyond xCAT's map, such as kvm_nodedata.xml or vm.vidproto, keep their values); returns
    the rows touched, for :func:`_prune`."""
    if t.name == "site":  # the site's attributes are every site row
        store.delete("site")
        return set()
    touched = set()
    for tab, cols in _mapped(t).items():
        if t.name == "network":
            store.update(tab, {"netname": name},
                         {c: None for c in cols if c not in ("net", "mask")})
            continue
        store.update(tab, {_key_column(tab): name}, dict.fromkeys(cols))
        touched.add((tab, name))
    return touched


def _prune(store, tab: str, key: str) -> None:
    """Delete the row of *key* in *tab* when nothing but its key is left in it."""
    keycol = _key_column(tab)
    for row in store.select(tab, {keycol: key}, include_disabled=True):
        if all(v is None for c, v in row.items() if c != keycol):
            store.delete(tab, {keycol: key})


# -- removing ---------------------------------------------------------------------------------
def _remove_rows(store, t: ObjType, name: str) -> None:
    """Delete the rows that hold object *name* (not its group memberships)."""
    if t.name == "node":
        for tab in TABLES.values():
            if tab.nodecol:
                store.delete(tab.name, {tab.nodecol: name})
        return
    if t.name == "network":
        store.delete("networks", {"netname": name})
        return
    for tab in t.tables():
        store.delete(tab, {_key_column(tab): name})


def remove(objects: Objects, t: ObjType, names: Sequence[str]) -> None:
    """Remove objects *names* of type *t* in one transaction: every row that holds them
    (a node: every node-keyed table, like noderm; a group: its rows and its name in the
    ``nodelist.groups`` of its static members).

    Raises:
        ObjectError: the site (it cannot be removed).
    """
    if t.name == "site":
        raise ObjectError("The site definition cannot be removed; clear single attributes "
                          "with 'chdef -t site attr='.")
    store = objects.store
    pending: dict[str, str | None] = {}
    if t.name == "group":
        resolver = objects.resolver
        nodelist = resolver.rows("nodelist", resolver.nodes())
        dynamic = {g for g, r in resolver.nodegroups().items()
                   if (r.get("grouptype") or "").strip().lower() == "dynamic"}
        for g in names:
            if g in dynamic:
                continue
            for n in resolver.nodes():
                cur = pending.get(n, (nodelist.get(n) or {}).get("groups"))
                if g in lists.items(cur):
                    pending[n] = lists.remove(cur, g) or None
    with store.transaction():
        if t.name == "node":  # every node-keyed table, one executemany each (like noderm)
            for tab in TABLES.values():
                if tab.nodecol:
                    store.delete_many(tab.name, [{tab.nodecol: n} for n in names])
        else:
            for name in names:
                _remove_rows(store, t, name)
        for n, groups in pending.items():
            store.update("nodelist", {"node": n}, {"groups": groups})
    objects.invalidate()


def valid_name(t: ObjType, name: str) -> bool:
    """Whether *name* is usable as an object name of type *t* (nodes: nodeadd's rule)."""
    if t.name == "network":
        return bool(name.strip()) and "=" not in name and "," not in name
    return bool(_NAME_RE.fullmatch(name))
