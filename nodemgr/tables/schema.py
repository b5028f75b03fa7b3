"""The table schema: xCAT table and column names, keys, and default rows.

Column order is xCAT's (``perl-xCAT/xCAT/Schema.pm``) so that a table dumped by a real xCAT
restores and dumps back byte-identical. Tables that xCAT does not have (``hostconn``,
``virttype``) are nodemgr's own and say so in their description.
This module is data only: no I/O, no imports beyond the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nodemgr.errors import TableError

TAIL = ("comments", "disable")


@dataclass(frozen=True)
class TableSchema:
    """One table.

    Attributes:
        name: table name.
        columns: every column in schema order, ending with ``comments``, ``disable``.
        keys: the primary-key columns.
        nodecol: the key column that holds node or group names (node-keyed tables), else None.
        description: one line for ``tabdump -d``.
        descriptions: column -> one-line description.
    """

    name: str
    columns: tuple[str, ...]
    keys: tuple[str, ...]
    nodecol: str | None = None
    description: str = ""
    descriptions: dict[str, str] = field(default_factory=dict)

    def check_column(self, column: str) -> None:
        """Raise TableError ``No column "x" in table "t"`` when *column* is unknown."""
        if column not in self.columns:
            raise TableError(f'No column "{column}" in table "{self.name}"')


def _t(name, cols, keys=None, nodecol="node", description="", **desc):
    columns = tuple(cols.split()) + TAIL
    keys = tuple((keys or cols.split()[0]).split())
    return TableSchema(name, columns, keys, nodecol, description, desc)


TABLES: dict[str, TableSchema] = {
    t.name: t
    for t in (
        _t("site", "key value", nodecol=None,
           description="Global settings for the whole cluster.",
           key="Name of the attribute.", value="Value of the attribute."),
        _t("nodelist", "node groups status statustime appstatus appstatustime primarysn hidden "
           "updatestatus updatestatustime zonename",
           description="The list of all the nodes in the cluster, including each node's "
           "current status and what groups it is in.",
           node="The hostname of a node in the cluster.",
           groups="A comma-delimited list of groups this node is a member of.",
           status="Current status of the node (defined, powering-on, installing, booted, ...).",
           statustime="Last time the status was updated (MM-DD-YYYY HH:MM:SS)."),
        _t("nodegroup", "groupname grouptype members membergroups wherevals", nodecol=None,
           description="Contains group definitions, whose membership is dynamic depending "
           "on characteristics of the node.",
           groupname="Name of the group.", grouptype="static or dynamic.",
           wherevals="Criteria for dynamic groups: attr==val::attr=~val ..."),
        _t("nodetype", "node os arch profile provmethod supportedarchs nodetype",
           description="A few hardware and software characteristics of the nodes."),
        _t("nodehm", "node power mgt cons termserver termport conserver serialport serialspeed "
           "serialflow getmac cmdmapping consoleondemand consoleenabled",
           description="Settings that control how each node's hardware is managed.",
           power="Method to power the node on/off (overrides mgt).",
           mgt="The method to use to do general hardware management of the node "
           "(kvm, libvirt, rhevm, ovm, xen, ...)."),
        _t("noderes", "node servicenode netboot tftpserver tftpdir nfsserver monserver nfsdir "
           "installnic primarynic discoverynics cmdinterface xcatmaster current_osimage "
           "next_osimage nimserver routenames nameservers proxydhcp syslog",
           description="Resources and settings to use when installing nodes."),
        _t("hosts", "node ip hostnames otherinterfaces",
           description="IP addresses and hostnames of nodes."),
        _t("mac", "node interface mac",
           description="The MAC address of the node's install adapter."),
        _t("chain", "node currstate currchain chain ondiscover",
           description="Controls what operations are done (and in what order) when a node "
           "is discovered and deployed."),
        _t("bootparams", "node kernel initrd kcmdline addkcmdline dhcpstatements "
           "adddhcpstatements",
           description="Current boot settings to be sent to systems attempting network boot."),
        _t("hypervisor", "node type mgr interface netmap defaultnet cluster datacenter "
           "preferdirect",
           description="Hypervisor parameters."),
        _t("vm", "node mgr host migrationdest storage storagemodel storagecache storageformat "
           "cfgstore memory cpus nics nicmodel bootorder clockoffset virtflags master vncport "
           "textconsole powerstate beacon datacenter cluster guestostype othersettings "
           "physlots vidmodel vidproto vidpassword",
           description="Virtualization parameters.",
           host="The system that currently hosts the VM.",
           migrationdest="A noderange of hypervisors the VM may be migrated to.",
           storage="Disk locations: dir:///path, nfs://host/path, lvm://vg, phy:/dev/x; "
           "several separated by |.",
           memory="Megabytes of memory the VM currently should be set to.",
           cpus="Number of CPUs the VM should have.",
           nics="Network devices: bridge or network names, comma-separated.",
           bootorder="Boot sequence (net,hd,cdrom).",
           master="The name of a master (vmmaster.name) the VM is based on."),
        _t("vmmaster", "name os arch profile storage storagemodel nics vintage originator "
           "virttype specializeparameters", nodecol=None,
           description="Inventory of virtualization images for use with clonevm."),
        _t("policy", "priority name host commands noderange parameters time rule", nodecol=None,
           description="The policy table controls who has authority to run specific "
           "commands."),
        _t("passwd", "key username password cryptmethod authdomain", keys="key username",
           nodecol=None,
           description="Contains default userids and passwords for xCAT to access cluster "
           "components."),
        _t("osimage", "imagename groups profile imagetype description provmethod rootfstype "
           "osdistroname osupdatename cfmdir osname osvers osarch synclists postscripts "
           "postbootscripts serverrole isdeletable kitcomponents environvar", nodecol=None,
           description="Basic information about an operating system image."),
        _t("linuximage", "imagename template boottarget addkcmdline pkglist pkgdir "
           "otherpkglist otherpkgdir exlist postinstall rootimgdir kerneldir nodebootif "
           "otherifce netdrivers kernelver krpmver permission dump crashkernelsize "
           "partitionfile driverupdatesrc", nodecol=None,
           description="Information about a Linux operating system image."),
        _t("vpd", "node serial mtm side asset uuid",
           description="The Machine type, Model, and Serial numbers of each node."),
        _t("auditlog", "recid audittime userid clientname clienttype command noderange args "
           "status", nodecol=None,
           description="Audit Data log."),
        _t("kvm_nodedata", "node xml",
           description="Persistent store for KVM plugin: the domain definition of each VM."),
        _t("kvm_masterdata", "name xml", nodecol=None,
           description="Persistent store for KVM plugin for masters."),
        _t("hostconn", "node uri authmethod username",
           description="nodemgr: how to reach a hypervisor node (connection-string template "
           "with #{...} macros, auth method, user); overrides virttype.",
           uri="Connection string or template, e.g. qemu+ssh://#{user.name}@#{target.host}/system"),
        _t("virttype", "type connstring authmethod emulator domaintype", nodecol=None,
           description="nodemgr: per virtualization type (kvm, qemu, xen) the default "
           "connection-string template, auth method and emulator path.",
           connstring="Template with macros #{auth.sep} #{auth.method} #{user.name} "
           "#{target.host}."),
    )
}

#: Rows written into a new, empty database.
DEFAULT_ROWS: dict[str, list[dict[str, str]]] = {
    "site": [
        {"key": "master", "value": "localhost"},
        {"key": "domain", "value": "cluster"},
        {"key": "installdir", "value": "/install"},
        {"key": "tftpdir", "value": "/tftpboot"},
        {"key": "vmmaxp", "value": "64"},
        {"key": "vmtimeout", "value": "60"},
        {"key": "dhcpsetup", "value": "n"},
    ],
    "policy": [
        {"priority": "1", "name": "root", "rule": "allow"},
        {"priority": "1.2", "name": "localhost", "rule": "trusted"},
        {"priority": "3", "commands": "nextdestiny", "rule": "allow"},
        {"priority": "4", "commands": "getdestiny", "rule": "allow"},
    ],
    "virttype": [
        {"type": "kvm", "connstring": "qemu#{auth.sep}#{auth.method}://#{user.name}@#{target.host}/system",
         "authmethod": "ssh", "domaintype": "kvm"},
        {"type": "qemu", "connstring": "qemu#{auth.sep}#{auth.method}://#{user.name}@#{target.host}/system",
         "authmethod": "ssh", "domaintype": "qemu"},
        {"type": "xen", "connstring": "xen#{auth.sep}#{auth.method}://#{user.name}@#{target.host}/",
         "authmethod": "ssh", "domaintype": "xen"},
    ],
}


def table(name: str) -> TableSchema:
    """Return the schema of *name*.

    Raises:
        TableError: ``Unknown table "x"``.
    """
    try:
        return TABLES[name]
    except KeyError:
        raise TableError(f'Unknown table "{name}"') from None


def is_disabled(value: str | None) -> bool:
    """xCAT's rule: a row is disabled when ``disable`` is set and not 0/no (any case)."""
    return value is not None and value != "" and value.lower() not in ("0", "no")
