"""The table schema: xCAT table and column names, keys, and default rows.

Column order is xCAT's (``perl-xCAT/xCAT/Schema.pm``) so that a table dumped by a real xCAT
restores and dumps back byte-identical. Tables that xCAT does not have (``hostconn``,
``virttype``) are nodemgr's own and say so in their description.
This module is data only: no I/O, no imports beyond the standard library.
"""

from __future__ import annotations

from collections import namedtuple

from nodemgr.errors import TableError

TAIL = ("comments", "disable")


_TableSchema = namedtuple("TableSchema", "name columns keys nodecol description descriptions "
                          "intindex")


class TableSchema(_TableSchema):
    """One table (immutable; a named tuple rather than a dataclass: ``dataclasses`` imports
    ``inspect``, ~10 ms of every command's cold start).

    Attributes:
        name: table name.
        columns: every column in schema order, ending with ``comments``, ``disable``.
        keys: the primary-key columns.
        nodecol: the key column that holds node or group names (node-keyed tables), else None.
        description: one line for ``tabdump -d``.
        descriptions: column -> one-line description.
        intindex: text columns that hold integers and carry an index on their integer value,
            so the store's ``max_int`` is one index lookup (``auditlog.recid`` grows with
            every command).
    """

    __slots__ = ()

    def __new__(cls, name: str, columns: tuple[str, ...], keys: tuple[str, ...],
                nodecol: str | None = None, description: str = "",
                descriptions: dict[str, str] | None = None, intindex: tuple[str, ...] = ()):
        return super().__new__(cls, name, columns, keys, nodecol, description,
                               {} if descriptions is None else descriptions, intindex)

    def check_column(self, column: str) -> None:
        """Raise TableError ``No column "x" in table "t"`` when *column* is unknown."""
        if column not in self.columns:
            raise TableError(f'No column "{column}" in table "{self.name}"')


_TAIL_DESC = {
    "comments": "Any user-written notes.",
    "disable": "Set to 'yes' or '1' to comment out this row.",
}


def _t(name, cols, /, keys=None, nodecol="node", description="", coldesc=None, intindex=(),
       **desc):
    """One table; *coldesc* holds column descriptions whose names clash with the
    parameters (osimage.description)."""
    columns = tuple(cols.split()) + TAIL
    keys = tuple((keys or cols.split()[0]).split())
    desc = {**_TAIL_DESC, **(coldesc or {}), **desc}
    return TableSchema(name, columns, keys, nodecol, description, desc, tuple(intindex))


_NODE = "The node name or group name."

TABLES: dict[str, TableSchema] = {
    t.name: t
    for t in (
        _t("site", "key value", nodecol=None,
           description="Global settings for the whole cluster: each setting is one row, named "
           "in the key column (master, domain, installdir, tftpdir, dhcpsetup, nodestatus, "
           "excludenodes, vmmaxp, hierarchicalattrs, ...).",
           key="Name of the setting.",
           value='The value of the setting named in the "key" column.'),
        _t("nodelist", "node groups status statustime appstatus appstatustime primarysn hidden "
           "updatestatus updatestatustime zonename",
           description="The list of all the nodes in the cluster, including each node's "
           "current status and what groups it is in.",
           node="The hostname of a node in the cluster.",
           groups="A comma-delimited list of groups this node is a member of (all nodes "
           "should be in 'all'; names starting with __ are internal).",
           status="The current status of this node, set by the software: defined, booting, "
           "netbooting, booted, discovering, configuring, installing, alive, standingby, "
           "powering-off, unreachable, ... Blank means defined.",
           statustime="The date and time when the status was updated.",
           appstatus="A comma-delimited list of application status, e.g. "
           "'sshd=up,ftp=down'.",
           appstatustime="The date and time when appstatus was updated.",
           primarysn="Not used. The primary service node of this node.",
           hidden="Used to hide fsp and bpa definitions: 1 means do not show them in lsdef "
           "and nodels.",
           updatestatus="The current node update status: synced, out-of-sync, syncing, "
           "failed.",
           updatestatustime="The date and time when updatestatus was updated.",
           zonename="The zone the node is assigned to (undefined: no zone)."),
        _t("nodegroup", "groupname grouptype members membergroups wherevals", nodecol=None,
           description="Contains group definitions, whose membership is dynamic depending "
           "on characteristics of the node.",
           groupname="Name of the group.",
           grouptype="static or dynamic. A dynamic group's members are the nodes matching "
           "wherevals.",
           members="Not used: a place holder for the object commands (static membership "
           "lives in nodelist.groups).",
           membergroups="A comma-separated list of nodegroups this nodegroup refers to.",
           wherevals='A list of "attr*val" pairs, separated by "::", selecting the members '
           "of a dynamic group; the operator * is ==, =~, != or !~."),
        _t("nodetype", "node os arch profile provmethod supportedarchs nodetype",
           description="A few hardware and software characteristics of the nodes.",
           node=_NODE,
           os="The operating system deployed on this node (rhels7.9, rhevh6.2, sles15, ...). "
           "The special value boottarget uses the boottarget table row named by profile.",
           arch="The hardware architecture of this node: x86_64, ppc64, ppc64le, aarch64, ...",
           profile="The string used to locate the kickstart/autoyast template (ignored when "
           "provmethod names an osimage).",
           provmethod="The provisioning method: install, netboot, statelite or the name of "
           "an osimage.",
           supportedarchs="Comma-delimited list of architectures this node can execute.",
           nodetype="A comma-delimited list of characteristics of this node: ppc, blade, vm, "
           "osi, mm, mn, rsa, switch."),
        _t("nodehm", "node power mgt cons termserver termport conserver serialport serialspeed "
           "serialflow getmac cmdmapping consoleondemand consoleenabled",
           description="Settings that control how each node's hardware is managed.",
           node=_NODE,
           power="The method to control the power of the node; if not set, mgt is used "
           "(ipmi, kvm, esx, rhevm, ...).",
           mgt="The method to use for general hardware management of the node, the default "
           "for power and getmac (ipmi, openbmc, kvm, libvirt, rhevm, xen, ...).",
           cons="The console method; defaults to mgt when serialport is set.",
           termserver="The hostname of the terminal server.",
           termport="The port number on the terminal server this node is connected to.",
           conserver="The host running the console server daemon (default: the management "
           "node).",
           serialport="The serial port of the node, linux numbering (0=ttyS0, 1=ttyS1).",
           serialspeed="The speed of the serial port, e.g. 115200.",
           serialflow="The flow control of the serial port, e.g. hard.",
           getmac="The method to get the node's MAC address; if not set, mgt is used.",
           cmdmapping="File mapping hardware management commands for a device type (PCM).",
           consoleondemand="Overrides site.consoleondemand: yes/1 or no/0.",
           consoleenabled="1 when the node is registered in the console server."),
        _t("noderes", "node servicenode netboot tftpserver tftpdir nfsserver monserver nfsdir "
           "installnic primarynic discoverynics cmdinterface xcatmaster current_osimage "
           "next_osimage nimserver routenames nameservers proxydhcp syslog",
           description="Resources and settings to use when installing nodes.",
           node=_NODE,
           servicenode="A comma-separated list of service nodes for this node (first "
           "reachable one is used).",
           netboot="The network boot loader: pxe, xnba, grub2, grub2-http, grub2-tftp, "
           "petitboot, yaboot.",
           tftpserver="The TFTP server for this node (as known by the node); defaults to "
           "networks.tftpserver.",
           tftpdir="The directory that roots this node's TFTP content (default site.tftpdir).",
           nfsserver="The NFS or HTTP server for this node (as known by the node).",
           monserver='The monitoring aggregation point: "x,y" (address as known by the '
           "management node, and by the node).",
           nfsdir="The path that should be mounted from the NFS server.",
           installnic="The node's adapter used for OS deployment: an interface name, a MAC "
           'or the keyword "mac" (the mac table entry).',
           primarynic="Deprecated; see installnic.",
           discoverynics="Restrict discovery to these adapters, e.g. eth2,eth3 or bnx2:0.",
           cmdinterface="Not used.",
           xcatmaster="The hostname of the management/service node as known by this node; "
           "default for nfsserver and tftpserver.",
           current_osimage="Not used. The osimage currently deployed on this node.",
           next_osimage="Not used. The osimage to deploy next.",
           nimserver="Not used. The NIM server for this node.",
           routenames="A comma-separated list of routes (routes table) to set up on the node.",
           nameservers="A node/group specific override of the name server list.",
           proxydhcp="Whether the node supports the proxydhcp protocol: yes/1 or no/0 "
           "(default yes).",
           syslog="How to configure syslog on the node: blank runs the syslog postscript, "
           "ignore does not."),
        _t("hosts", "node ip hostnames otherinterfaces",
           description="IP addresses and hostnames of nodes, used to populate /etc/hosts and "
           "DNS. Regular expressions here are a quick way to describe many nodes.",
           node=_NODE,
           ip="The IP address of the node.",
           hostnames="Hostname aliases for this node, comma or blank separated.",
           otherinterfaces="Other IP addresses of this node: -<ext>:<ip>,<name>:<ip>,..."),
        _t("mac", "node interface mac",
           description="The MAC address of the node's install adapter, normally filled in "
           "by getmacs, discovery or mkvm.",
           node=_NODE,
           interface="The adapter interface name used to install and manage the node, "
           "e.g. eth0.",
           mac='The MAC address(es) for static bindings: one MAC, or a "|"-separated list of '
           '"mac!hostname" entries; "!*NOIP*" marks a MAC without an address.'),
        _t("chain", "node currstate currchain chain ondiscover",
           description="Controls what operations are done (and in what order) when a node "
           "is discovered and deployed.",
           node=_NODE,
           currstate="The current or next chain step for this node, set by discovery or "
           "nodeset.",
           currchain="The chain steps still left to do for this node.",
           chain="A comma-delimited chain of actions run when the node is discovered: boot, "
           "runcmd=<cmd>, runimage=<URL>, shell, standby, osimage=<name>.",
           ondiscover="Not used."),
        _t("bootparams", "node kernel initrd kcmdline addkcmdline dhcpstatements "
           "adddhcpstatements",
           description="Current boot settings to be sent to systems attempting network "
           "boot; mostly written by nodeset.",
           node="The node or group name.",
           kernel="The kernel network boot should load (or a chained loader such as memdisk).",
           initrd="The initial ramdisk network boot should load.",
           kcmdline="Arguments to be passed to the kernel.",
           addkcmdline='User kernel options for the installer, or with prefix "R::" for the '
           "installed OS.",
           dhcpstatements="Custom DHCP statements managed by the software.",
           adddhcpstatements="Custom DHCP statements for the administrator (not implemented)."),
        _t("hypervisor", "node type mgr interface netmap defaultnet cluster datacenter "
           "preferdirect",
           description="Hypervisor parameters.",
           node="The node or static group name.",
           type="The plugin for hypervisor-specific commands such as revacuate (kvm, rhevh, "
           "esx, ...).",
           mgr="The virtualization manager of this hypervisor when applicable (e.g. the "
           "RHEV-M or vCenter host).",
           interface="Interfaces of the hypervisor: "
           "networkname:interfacename:bootprotocol:IP:netmask:gateway, |-separated.",
           netmap="Optional mapping of names to physical ports, e.g. "
           "10ge=vmnic_16.0&vmnic_16.1,ge=vmnic1.",
           defaultnet="The network guests join when they do not name one.",
           cluster="The cluster the hypervisor belongs to in the virtualization "
           "infrastructure.",
           datacenter="The datacenter the hypervisor belongs to.",
           preferdirect="yes/1: talk to the hypervisor directly even when mgr is set."),
        _t("vm", "node mgr host migrationdest storage storagemodel storagecache storageformat "
           "cfgstore memory cpus nics nicmodel bootorder clockoffset virtflags master vncport "
           "textconsole powerstate beacon datacenter cluster guestostype othersettings "
           "physlots vidmodel vidproto vidpassword",
           description="Virtualization parameters.",
           node="The node or static group name.",
           mgr="The function manager for the virtual machine.",
           host="The system that currently hosts the VM.",
           migrationdest="A noderange of candidate destinations for migration.",
           storage="Storage files or devices for the VM, e.g. dir:///var/lib/vm/<node>, "
           "nfs://<server>/path, lvm://vg, phy:/dev/x; several separated by |.",
           storagemodel="Model of storage devices provided to the guest (virtio, ide, scsi).",
           storagecache="Caching scheme for disks, e.g. none, writethrough, writeback.",
           storageformat="Default disk format, e.g. raw or qcow2.",
           cfgstore="Optional persistent location for configuration data.",
           memory="Megabytes of memory the VM should currently have.",
           cpus="Number of CPUs the VM should see.",
           nics="Network configuration: [physnet:]interface,... (bridge or network names).",
           nicmodel="Model of NICs provided to the VM (e1000, rtl8139, virtio, ...).",
           bootorder="Boot sequence, e.g. net,hd.",
           clockoffset='Guest RTC synced to "localtime" or "utc" (guessed from nodetype.os '
           "when unset).",
           virtflags="Flags for the virtualization method, e.g. "
           "imageformat=qcow2,clonemethod=qemu-img,placement_affinity=migratable.",
           master="The master image (vmmaster.name) this VM is linked to.",
           vncport="Tracks the current VNC display port (not meant to be set).",
           textconsole="Tracks the pseudo-TTY of the VM's serial console.",
           powerstate="The last known power state of the VM.",
           beacon="The last known state of the identify LED.",
           datacenter="The datacenter the VM lives in (VMware, RHEV).",
           cluster="The cluster the VM belongs to in the virtualization infrastructure.",
           guestostype="An OS identifier passed to the virtualization stack (normally "
           "derived from nodetype.os).",
           othersettings="Semicolon-delimited key:value settings, e.g. "
           "cpumode:host-passthrough;vcpupin:0-15,^8;membind:0;devpassthrough:...;machine:q35.",
           physlots="Physical slot drc indexes assigned to the partition (POWER).",
           vidmodel="Model of video adapter, e.g. qxl, vga, virtio.",
           vidproto="Remote video protocol, e.g. vnc or spice.",
           vidpassword="Password for VNC/SPICE access instead of random tokens."),
        _t("vmmaster", "name os arch profile storage storagemodel nics vintage originator "
           "virttype specializeparameters", nodecol="name",
           description="Inventory of virtualization images for use with clonevm; not meant "
           "to be edited by hand.",
           name="The name of a master.",
           os="nodetype.os at the time the master was captured.",
           arch="nodetype.arch at the time of capture.",
           profile="nodetype.profile at the time of capture.",
           storage="The storage location of the master's disks.",
           storagemodel="The default storage model for VMs cloned from this master.",
           nics="The NIC configuration of the master.",
           vintage="When this image was created.",
           originator="The user who created the image.",
           virttype="The virtualization type this image is for (kvm, vmware, ...).",
           specializeparameters="Implementation-specific arguments for specialization."),
        _t("policy", "priority name host commands noderange parameters time rule", nodecol=None,
           description="The policy table controls who has authority to run specific "
           "commands: the access control list, evaluated in priority order.",
           priority="The priority of this rule; lower numbers are evaluated first "
           "(1.0 before 4.1).",
           name='The user (or "%group") this rule applies to; default "*" (all users).',
           host='The host users may issue the commands from; default "*" (all hosts).',
           commands='The commands this rule applies to; default "*" (all commands).',
           noderange='The noderange this rule applies to; default "*" (all nodes).',
           parameters="A regular expression matching the command parameters this rule "
           "applies to.",
           time="Time ranges the command may run in (not supported).",
           rule="allow (or accept), trusted, or anything else to deny."),
        _t("postscripts", "node postscripts postbootscripts",
           description="The scripts that run on a node after its install (postscripts, from "
           "the answer file's post-install step) and at its first boot (postbootscripts). "
           "Row xcatdefaults applies to every node, first.",
           node="The node name or group name, or xcatdefaults.",
           postscripts="Comma-separated scripts in <installdir>/postscripts/, run in order "
           "after the install.",
           postbootscripts="Comma-separated scripts in <installdir>/postscripts/, run in "
           "order at the first boot."),
        _t("passwd", "key username password cryptmethod authdomain", keys="key username",
           nodecol=None,
           description="Contains default userids and passwords to access cluster "
           "components (BMCs, hypervisor managers, nodes, ...).",
           key="The type of component this user/password is for: ipmi, system, rhevm, "
           "rhevh, hmc, switch, ...",
           username="The default userid for this type of component.",
           password="The default password for this type of component.",
           cryptmethod="How the password is encrypted (md5, sha256, sha512; blank = plain).",
           authdomain="The domain in which this entry has meaning."),
        _t("osimage", "imagename groups profile imagetype description provmethod rootfstype "
           "nfsrootopts osdistroname osupdatename cfmdir osname osvers osarch synclists "
           "postscripts postbootscripts serverrole isdeletable kitcomponents environvar",
           nodecol=None,
           description="Basic information about an operating system image that can be used "
           "to deploy cluster nodes.",
           imagename="The name of this OS image definition.",
           groups="A comma-delimited list of image groups this image belongs to.",
           profile="The node usage category, e.g. compute, service.",
           imagetype="The type of image: linux or AIX.",
           coldesc={"description": "OS image description."},
           provmethod="install, netboot, statelite, boottarget, dualboot or sysclone.",
           rootfstype="The rootfs type for statelite images: nfs or ramdisk.",
           nfsrootopts="Additional NFS mount options for the root filesystem of a "
           "statelite image.",
           osdistroname="The name of the OS distro definition (osdistro table).",
           osupdatename="A comma-separated list of OS distro updates to apply.",
           cfmdir="CFM directory name (PCM).",
           osname="Operating system name: Linux or AIX.",
           osvers="The OS version deployed, e.g. rhels7.9.",
           osarch="The hardware architecture of the image.",
           synclists="Comma-separated files listing files to synchronize to the nodes.",
           postscripts="Comma-separated scripts to run after installation or diskless boot.",
           postbootscripts="Comma-separated scripts to run at boot after installation.",
           serverrole="The role of servers built from this image (compute, servicenode, ...).",
           isdeletable="Whether this image may be deleted (PCM).",
           kitcomponents="Kit component IDs assigned to this image.",
           environvar="Comma-delimited environment variables for the image."),
        _t("linuximage", "imagename template boottarget addkcmdline pkglist pkgdir "
           "otherpkglist otherpkgdir exlist postinstall rootimgdir kerneldir nodebootif "
           "otherifce netdrivers kernelver krpmver permission dump crashkernelsize "
           "partitionfile driverupdatesrc", nodecol=None,
           description="Information about a Linux operating system image that can be used "
           "to deploy cluster nodes.",
           imagename="The name of this OS image definition.",
           template="The installer template (kickstart, autoyast, ...) for stateful installs.",
           boottarget="The boottarget definition whose kernel, initrd and parameters to use.",
           addkcmdline='Kernel options for the installer, or with prefix "R::" for the '
           "installed OS.",
           pkglist="The file listing the distro packages of the image.",
           pkgdir="Comma-separated directories holding the distro packages (base OS first).",
           otherpkglist="Comma-separated files listing non-distro packages.",
           otherpkgdir="Where the non-distro packages are.",
           exlist="The file listing files excluded from a diskless image.",
           postinstall="Comma-separated scripts run at the end of genimage (diskless).",
           rootimgdir="The directory where the (diskless) image is stored.",
           kerneldir="The directory of a third-party kernel (diskless).",
           nodebootif="The interface a diskless node boots over, e.g. eth0.",
           otherifce="Other interfaces configured by DHCP in the image.",
           netdrivers="Ethernet drivers to include in the image.",
           kernelver="The kernel version of the image.",
           krpmver="The rpm version of the kernel packages (SLES).",
           permission="Mount permission of /.statelite (default 755).",
           dump='NFS directory for kernel dumps: "nfs://<server>/<path>".',
           crashkernelsize="Memory reserved for the kdump kernel (default 256M).",
           partitionfile="Partition definition file or script (s:, d:, c: prefixes).",
           driverupdatesrc="Comma-separated driver update sources: dud:<file> or rpm:<file>."),
        _t("osdistro", "osdistroname basename majorversion minorversion arch type dirpaths",
           nodecol=None,
           description="Information about an operating system distro, written by copycds.",
           osdistroname="Unique name (e.g. rhels8.6-x86_64).",
           basename="The OS base name (e.g. rhels).",
           majorversion="The OS major version (e.g. 8).",
           minorversion="The OS minor version (e.g. 6).",
           arch="The OS architecture (e.g. x86_64).",
           type="Linux or AIX.",
           dirpaths="Directories where the OS distro files are stored (comma list)."),
        _t("boottarget", "bprofile kernel initrd kcmdline", nodecol=None,
           description="Specify non-standard initrd, kernel, and parameters that should be "
           "used for a given profile.",
           bprofile="The name of this boot target (linuximage.boottarget names it).",
           kernel="The kernel, relative to the TFTP root; kernel!hypervisor for multiboot "
           "(Xen dom0).",
           initrd="The initrd, relative to the TFTP root.",
           kcmdline="Arguments for the kernel; for multiboot 'hypervisor args --- kernel args'. "
           "!myipfn! becomes the management node's address."),
        _t("nodetoken", "node tokenhash expires",
           description="nodemgr: the one-time install-finished token of each armed node "
           "(only its SHA-256 hash; written by nodeset, consumed by the callback).",
           node=_NODE,
           tokenhash="Hex SHA-256 of the token.",
           expires="Expiry, seconds since the epoch (UTC)."),
        _t("bootalias", "node aliases",
           description="nodemgr: the boot-file aliases nodeset last gave each node (so a "
           "one-node nodeset removes stale ones without scanning the TFTP tree).",
           node=_NODE,
           aliases="Comma-separated alias paths relative to the TFTP root."),
        _t("bootpending", "node owner",
           description="nodemgr: nodes whose boot and answer files a writer committed but "
           "had not all put in place yet (written in the tables' transaction, deleted once "
           "the files are renamed); a row left by a killed writer makes the next writer "
           "redo that node's files (nodeset enact) first.",
           node=_NODE,
           owner="The writer that committed the row: <pid>-<start time in ns>."),
        _t("vpd", "node serial mtm side asset uuid",
           description="The Machine type, Model, and Serial numbers of each node.",
           node=_NODE,
           serial="The serial number of the node.",
           mtm="The machine type and model number of the node, e.g. 7984-6BU.",
           side="<BPA>-<port> or <FSP>-<port>: the BPA/FSP side information.",
           asset="An inventory number for the administrator's use.",
           uuid="The UUID of the node (written by mkvm for VMs)."),
        _t("auditlog", "recid audittime userid clientname clienttype command noderange args "
           "status", nodecol=None, intindex=("recid",),
           description="Audit Data log.",
           recid="The record id.",
           audittime="The timestamp for the audit entry.",
           userid="The user running the command.",
           clientname="The client machine where the command originated.",
           clienttype="Type of command: cli, java, webui, other.",
           command="Command executed.",
           noderange="The noderange on which the command was run.",
           args="The command argument list.",
           status="Allowed or Denied.",
           disable="Do not use: tabprune will not work if set to yes or 1."),
        _t("kvm_nodedata", "node xml",
           description="Persistent store for the KVM plugin, not intended for manual "
           "modification.",
           node="The node corresponding to the virtual machine.",
           xml="The domain XML generated by the software, fleshed out by libvirt, and stored "
           "for reuse."),
        _t("kvm_masterdata", "name xml", nodecol="name",
           description="Persistent store for the KVM plugin for masters.",
           name="The name of the relevant master.",
           xml="The domain XML to be customized for clones of this master."),
        _t("vmbootparams", "node params",
           description="nodemgr: boot parameters given to a VM at first boot (mkvm "
           "--bootparams): OVM through Bootparams.img, libvirt/Xen through a cloud-init "
           "NoCloud config disk.",
           node=_NODE,
           params="key=value pairs separated by '|', e.g. ip=10.0.0.5/24|gateway=10.0.0.1|"
           "dns=10.0.0.1|hostname=web1; ip (address/prefix or dhcp) sets the guest's "
           "address."),
        _t("hostconn", "node uri authmethod username options",
           description="nodemgr: how to reach a hypervisor node (connection-string template "
           "with #{...} macros, auth method, user); overrides virttype.",
           node=_NODE,
           uri="Connection string or template, e.g. "
           "qemu+ssh://#{user.name}@#{target.host}/system",
           authmethod="Authentication method, e.g. ssh or tls.",
           options="Driver options as key=value pairs separated by ';', e.g. "
           "migrate_uri=tcp://10.1.0.5:49152;listen_address=10.1.0.5 (libvirt).",
           username="The user to connect as."),
        _t("virttype", "type connstring authmethod emulator domaintype", nodecol=None,
           description="nodemgr: per virtualization type (kvm, qemu, xen) the default "
           "connection-string template, auth method and emulator path.",
           type="The virtualization type, e.g. kvm, qemu, xen.",
           connstring="Template with macros #{auth.sep} #{auth.method} #{user.name} "
           "#{target.host}.",
           authmethod="Default authentication method, e.g. ssh.",
           emulator="Path of the emulator binary.",
           domaintype="The libvirt domain type."),
        _t("serverpool", "name virttype subnet interfaces username userid groupid authmethod "
           "snmpagents", nodecol=None,
           description="nodemgr: server pools (a group of hypervisor nodes of the same name; "
           "members have hypervisor.cluster = the pool), as in the seed's IMS design.",
           name="The pool name; also the node group of its machines.",
           virttype="Virtualization type of its machines (kvm, qemu, xen): virttype row.",
           subnet="The pool's subnet (a.b.c.d/n), probed to find machines known by MAC.",
           interfaces="Local interfaces to probe the subnet from, in order, ';'-separated.",
           username="The pool user the management node logs in as.",
           userid="Unix user id of the pool user.",
           groupid="Unix group id of the pool user.",
           authmethod="Authentication method of the pool user (default ssh).",
           snmpagents="SNMP agents holding the subnet's neighbour table: "
           "host[:port][@v2c|@v3], '|'-separated; credentials from passwd (key snmp)."),
        _t("networks", "netname net mask mgtifname gateway dhcpserver tftpserver nameservers "
           "ntpservers logservers dynamicrange staticrange staticrangeincrement nodehostname "
           "ddnsdomain vlanid domain mtu", keys="net mask", nodecol=None,
           description="Describes the networks in the cluster and info necessary to set up "
           "nodes on that network (makenetworks fills it; makedhcp writes a subnet per row).",
           netname="Name used to identify this network definition.",
           net="The network address.",
           mask="The network mask.",
           mgtifname="The interface name of the management/service node facing this network.",
           gateway="The network gateway (router option); '<xcatmaster>' means the node's "
           "management node.",
           dhcpserver="The DHCP server that is servicing this network.",
           tftpserver="The TFTP server that is servicing this network (next-server); default "
           "the management node's address on the network.",
           nameservers="A comma-delimited list of DNS servers each node in this network "
           "should use.",
           ntpservers="The ntp servers for this network, comma-delimited.",
           logservers="The log servers for this network.",
           dynamicrange="The IP address range used by DHCP to assign dynamic IP addresses "
           "for requests on this network (a.b.c.d-e.f.g.h).",
           staticrange="The IP address range used to dynamically assign static IPs to "
           "newly discovered nodes.",
           staticrangeincrement="The increment of staticrange.",
           nodehostname="A regular expression used to specify node name to network-specific "
           "hostname.",
           ddnsdomain="A domain to be combined with nodename to construct FQDN for DDNS "
           "updates induced by DHCP.",
           vlanid="The vlan ID if this network is within a vlan.",
           domain="The DNS domain name (ex. cluster.com).",
           mtu="The MTU of this network."),
        _t("ipdiscovery", "node mac ip via switchport age discovered", nodecol="node",
           description="nodemgr: the last MAC->IP answer discoverip wrote into hosts.ip, "
           "with where it came from and how old it was.",
           node=_NODE,
           mac="The MAC address that was looked up.",
           ip="The address found (also written to hosts.ip).",
           via="Who answered: an SNMP agent host:port, or neigh:<interface> for the local "
           "neighbour table.",
           switchport="Switch port of the MAC from BRIDGE-MIB/Q-BRIDGE-MIB, with its agent.",
           age="Seconds since the answering table last updated the entry, when it says.",
           discovered="UTC time of the answer, YYYY-MM-DDTHH:MM:SSZ."),
    )
}

#: Rows written into a new, empty database.
DEFAULT_ROWS: dict[str, list[dict[str, str]]] = {
    "site": [
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
        # install-finished callback (nodemgr.web.callback): anonymous, but only with a valid
        # one-time token; site.callbacktokens=no needs xCAT's row 7 (commands=rhevhupdateflag)
        {"priority": "4.91", "commands": "rhevhupdateflag,installfinished",
         "parameters": "^auth=token$", "rule": "allow"},
    ],
    # xCAT's xcatdefaults row: what every node runs (nodemgr/share/postscripts, put in
    # <installdir>/postscripts by mknb)
    "postscripts": [
        {"node": "xcatdefaults", "postscripts": "sethostname,remoteshell"},
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
