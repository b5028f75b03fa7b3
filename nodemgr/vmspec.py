"""From the tables to what a driver receives: driver name, endpoint and ``VmSpec`` per node.

This is the only module that knows how xCAT's columns (``nodehm.mgt``, ``vm.host``,
``vm.storage``, ``vm.nics``, ``mac.mac``, ``vpd.uuid``, ``kvm_nodedata.xml``,
``hypervisor.type``, ``hostconn``/``virttype`` connection strings, ``passwd``) become a
:class:`~nodemgr.plugins.base.VmSpec` and an :class:`~nodemgr.plugins.base.Endpoint`.
It reads tables and never talks to a hypervisor; writing results back is
:mod:`nodemgr.vm.writeback`'s job. It never names a family: what differs by family (the
attribute naming the endpoint, SSH options, the family's own column formats, which driver
manages a ``hypervisor.type``) comes from the driver's :class:`~nodemgr.plugins.base.Traits`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping

from nodemgr.dispatch import Target
from nodemgr.errors import UsageError
from nodemgr.formats import keyvals, parse_macs
from nodemgr.plugins.base import (
    DEFAULT_VIRT_TYPE,
    NO_PLUGIN,
    DiskSpec,
    Endpoint,
    NicSpec,
    PermanentError,
    Traits,
    VmSpec,
    next_dev_names,
)
from nodemgr.units import parse_size_mib

LOCALHOSTS = {"localhost", "127.0.0.1", "::1"}

#: The vm columns a driver spec is built from (the others are informational).
VM_ATTRS = [f"vm.{c}" for c in (
    "mgr", "host", "migrationdest", "storage", "storagemodel", "storagecache", "storageformat",
    "memory", "cpus", "nics", "nicmodel", "bootorder", "clockoffset", "virtflags", "master",
    "datacenter", "cluster", "guestostype", "othersettings", "vidmodel", "vidproto")]
NODE_ATTRS = VM_ATTRS + ["nodehm.mgt", "nodehm.power", "mac.mac", "vpd.uuid",
                         "kvm_nodedata.xml", "nodetype.os", "nodetype.arch",
                         "nodetype.profile", "hypervisor.type", "vmbootparams.params"]
HOST_ATTRS = ["hypervisor.type", "hypervisor.mgr", "hostconn.uri", "hostconn.authmethod",
              "hostconn.username", "hostconn.options", "nodehm.mgt", "nodehm.power",
              "hypervisor.cluster", "hosts.ip"]
#: Power drivers of a host's BMC: a host managed through one is still a hypervisor whose
#: VM-side driver comes from ``hypervisor.type``.
BMC_DRIVERS = {"ipmi", "bmc", "ipmitool", "openbmc", "redfish"}



class Resolved:
    """Table data for one command run: node attributes plus lookups shared by all nodes.

    Args:
        resolver: a :class:`nodemgr.tables.resolve.Resolver`.
        nodes: the expanded noderange.
    """

    def __init__(self, resolver, nodes: Iterable[str]) -> None:
        self.resolver = resolver
        self.store = resolver.store
        self.nodes = list(nodes)
        self.attrs = resolver.attrs(self.nodes, NODE_ATTRS)
        self._hosts: dict[str, dict[str, str | None]] = {}
        self._virttypes: dict[str, dict] | None = None
        self._endpoints: dict[tuple[str, str], Endpoint] = {}
        self._passwd: list[dict] | None = None
        self._known: set[str] | None = None
        self._managed: dict[str, str] | None = None

    def host_attrs(self, host: str) -> dict[str, str | None]:
        """Resolved attributes of hypervisor node *host* (empty values when undefined)."""
        if host not in self._hosts:
            self.prefetch_hosts([host])
        return self._hosts[host]

    def prefetch_hosts(self, hosts: Iterable[str]) -> None:
        """Resolve the attributes of many hypervisor nodes in one pass."""
        if self._known is None:
            self._known = set(self.resolver.nodes())
        todo = [h for h in dict.fromkeys(hosts) if h not in self._hosts]
        known = [h for h in todo if h in self._known]
        self._hosts.update(self.resolver.attrs(known, HOST_ATTRS) if known else {})
        self._hosts.update({h: dict.fromkeys(HOST_ATTRS) for h in todo if h not in known})

    def virttype(self, vtype: str) -> dict:
        """The ``virttype`` row for *vtype* (``kvm``, ``qemu``, ``xen``), or {}."""
        if self._virttypes is None:
            self._virttypes = {r["type"]: r for r in self.store.select("virttype")}
        return self._virttypes.get(vtype, {})

    def credentials(self, key: str, username: str | None = None) -> tuple[str | None, str | None]:
        """(username, password) from the ``passwd`` row for *key* (first row when no user)."""
        if self._passwd is None:
            self._passwd = self.store.select("passwd")
        rows = [r for r in self._passwd if r["key"] == key]
        if username:
            rows = [r for r in rows if r["username"] == username] or rows[:0]
        if not rows:
            return username, None
        return rows[0]["username"], rows[0]["password"]


# -- driver and endpoint ------------------------------------------------------------------


def driver_of(attrs: Mapping[str, str | None]) -> str | None:
    """Driver name from ``nodehm.power`` else ``nodehm.mgt``; None when neither is set."""
    return attrs.get("nodehm.power") or attrs.get("nodehm.mgt") or None


def traits_of(driver: str | None) -> Traits:
    """The traits of *driver* (registry); the default traits when it is unknown (the
    unknown name is reported by dispatch as xCAT's "Unable to identify plugin")."""
    if not driver:
        return Traits()
    from nodemgr.plugins.registry import traits

    try:
        return traits(driver)
    except PermanentError:
        return Traits()


def expand_connstring(template: str, *, host: str, user: str | None,
                      authmethod: str | None) -> str:
    """Expand the seed design's connection-string macros.

    Macros: ``#{auth.sep}`` (``+`` when an auth method is set, else empty),
    ``#{auth.method}``, ``#{user.name}``, ``#{target.host}``. For a local target
    (``localhost``) the auth part and ``user@host`` are dropped, so the KVM default
    ``qemu#{auth.sep}#{auth.method}://#{user.name}@#{target.host}/system`` becomes
    ``qemu:///system``.
    """
    local = host in LOCALHOSTS
    method = "" if local else (authmethod or "")
    out = (template.replace("#{auth.sep}", "+" if method else "")
           .replace("#{auth.method}", method)
           .replace("#{user.name}", "" if local else (user or "root"))
           .replace("#{target.host}", "" if local else host))
    return out.replace("://@/", ":///").replace("://@", "://")


def host_endpoint(res: Resolved, host: str, driver: str) -> Endpoint:
    """The endpoint for hypervisor (or manager) node *host* used by *driver*.

    ``host`` may itself be a URI (contains ``://``), used verbatim. Otherwise
    ``hostconn.uri`` of the host (a template or a URI), else the ``virttype`` template of
    ``hypervisor.type`` (default ``kvm``), else ``<driver>://<host>``.
    """
    cached = res._endpoints.get((host, driver))
    if cached is None:
        cached = res._endpoints[(host, driver)] = _host_endpoint(res, host, driver)
    return cached


def _host_endpoint(res: Resolved, host: str, driver: str) -> Endpoint:
    if "://" in host:
        return Endpoint(driver=driver, uri=host, host=host)
    ha = res.host_attrs(host)
    tr = traits_of(driver)
    # the virttype/passwd key: the host's hypervisor.type; for a manager node (no type of
    # its own) the driver's name, as xCAT keys passwd rows (rhevm, ovm)
    vtype = ha.get("hypervisor.type") or (
        tr.host_types[0] if tr.host_types and tr.endpoint_attr == "vm.host" else driver)
    vt = res.virttype(vtype)
    template = ha.get("hostconn.uri") or vt.get("connstring") or f"{driver}://#{{target.host}}"
    authmethod = ha.get("hostconn.authmethod") or vt.get("authmethod")
    username = ha.get("hostconn.username")
    if not username and ha.get("hypervisor.cluster"):  # the server pool's user
        from nodemgr.pools import pool_user

        username = pool_user(res.store, ha["hypervisor.cluster"])
    user, password = res.credentials(vtype, username)
    user = username or user
    options = parse_options(ha.get("hostconn.options"))
    if tr.ssh:  # known_hosts/key from site.sshknownhosts/sshkey unless the options set them
        have = {k for k, _ in options}
        options += tuple((k, v) for k, v in (("known_hosts", res.store.site("sshknownhosts")),
                                             ("key", res.store.site("sshkey")))
                         if v and k not in have)
    target = host if host in LOCALHOSTS else (ha.get("hosts.ip") or host)
    uri = expand_connstring(template, host=target, user=user, authmethod=authmethod)
    return Endpoint(driver=driver, uri=uri, host=host, username=user, password=password,
                    options=options)


def parse_options(value: str | None) -> tuple[tuple[str, str], ...]:
    """``hostconn.options`` (``k=v;k2=v2``) -> ``Endpoint.options`` pairs; a bare key is
    ``k=1``."""
    return tuple(keyvals(value, ";").items())


# -- spec -----------------------------------------------------------------------------------


def parse_nics(value: str | None, macs: list[str], default_model: str) -> list[NicSpec]:
    """``vm.nics`` (``br0,network:default,direct:eth1,br1=e1000``) -> NicSpecs with MACs."""
    nics = []
    entries: list[str] = []
    for part in re.split(r"[,|]", value or ""):
        part = part.strip()
        if part == "direct" and entries:
            entries[-1] += "|direct"
        elif part:
            entries.append(part)
    for i, entry in enumerate(entries):
        kind = "bridge"
        if entry.endswith("|direct"):
            kind, entry = "direct", entry[: -len("|direct")]
        name, _, model = entry.partition("=")
        if ":" in name:
            prefix, rest = name.split(":", 1)
            if prefix in ("bridge", "network", "direct"):
                kind, name = prefix, rest
        nics.append(NicSpec(network=name, mac=macs[i] if i < len(macs) else "",
                            model=model or default_model, kind=kind))
    return nics


def storage_locations(value: str | None) -> list[tuple[str, str | None]]:
    """``vm.storage`` -> [(location, model or None)] (``dir:///vms=virtio|nfs://s/p``)."""
    out = []
    for entry in (value or "").split("|"):
        entry = entry.strip()
        if not entry:
            continue
        loc = entry.split(",", 1)[0]
        model = None
        if "=" in loc:
            loc, model = loc.rsplit("=", 1)
        out.append((loc, model))
    return out


def dev_names(model: str, count: int, used: Iterable[str] = ()) -> list[str]:
    """Next *count* free device names for bus *model* (``vda``, ``vdb``, ``vdd``...)."""
    names = next_dev_names(model, count, used)
    if len(names) < count:
        raise UsageError(f"no free device names left for {count} more {model} disks")
    return names


def build_spec(node: str, attrs: Mapping[str, str | None], *, disk_sizes_mib: list[int] = (),
               memory_mib: int | None = None, cpus: int | None = None) -> VmSpec:
    """The VmSpec of *node* from its resolved attributes.

    Args:
        node: node name.
        attrs: resolved ``table.col`` values (see :data:`NODE_ATTRS`).
        disk_sizes_mib: sizes of disks to create (``mkvm -s``), placed in the first
            ``vm.storage`` location.
        memory_mib, cpus: overrides (``mkvm --mem/--cpus``).
    Raises:
        UsageError: malformed ``vm.memory``/``vm.cpus``, or disks requested without
            ``vm.storage``.
    """
    a = attrs
    model = a.get("vm.storagemodel") or "virtio"
    fmt = a.get("vm.storageformat") or _virtflag(a.get("vm.virtflags"), "imageformat") or "qcow2"
    locations = storage_locations(a.get("vm.storage"))
    disks = []
    if disk_sizes_mib:
        if not locations:
            raise UsageError("Requested initialization of storage, but vm.storage has no value "
                             "for node")
        loc, loc_model = locations[0]
        if loc.startswith("phy:"):
            raise UsageError("mkvm management of block device storage not implemented")
        bus = loc_model or model
        for dev, size in zip(dev_names(bus, len(disk_sizes_mib)), disk_sizes_mib, strict=True):
            disks.append(DiskSpec(dev=dev, location=loc, size_mib=size, format=fmt, bus=bus,
                                  cache=a.get("vm.storagecache")))
    try:
        mem = memory_mib or (parse_size_mib(a["vm.memory"], "M") if a.get("vm.memory") else 512)
        ncpu = cpus or (int(a["vm.cpus"].split(":")[0]) if a.get("vm.cpus") else 1)
    except ValueError:
        raise UsageError(f"vm.cpus must be a whole number, not '{a.get('vm.cpus')}'") from None
    boot = []
    for item in re.split(r"[,:]", a.get("vm.bootorder") or "network,hd"):
        item = item.strip().lower()
        word = {"n": "network", "net": "network", "network": "network", "h": "hd", "hd": "hd",
                "disk": "hd", "c": "cdrom", "cd": "cdrom", "cdrom": "cdrom"}.get(item)
        if word and word not in boot:
            boot.append(word)
    os_name = a.get("nodetype.os") or ""
    # vm.memory/vm.cpus as set in the table (absent when unset): a clone keeps its
    # master's size unless they are set
    extra = {k.split(".", 1)[1]: v for k, v in a.items()
             if k.startswith("vm.") and v and k.split(".", 1)[1] in (
                 "othersettings", "cluster", "datacenter", "vidmodel", "vidproto",
                 "guestostype", "virtflags", "mgr", "memory", "cpus")}
    extra.update({k.replace(".", "_"): v for k, v in a.items()
                  if k.startswith("nodetype.") and v})
    spec = VmSpec(
        node=node,
        uuid=a.get("vpd.uuid") or None,
        memory_mib=mem,
        cpus=ncpu,
        disks=disks,
        nics=parse_nics(a.get("vm.nics"), parse_macs(a.get("mac.mac")),
                        a.get("vm.nicmodel") or "virtio"),
        bootorder=boot or ["network", "hd"],
        virt_type=a.get("hypervisor.type") or DEFAULT_VIRT_TYPE,
        clockoffset=a.get("vm.clockoffset") or ("localtime" if os_name.startswith("win")
                                                else "utc"),
        master=a.get("vm.master") or None,
        definition=a.get("kvm_nodedata.xml") or None,
        storage=[loc for loc, _ in locations],
        storageformat=fmt,
        storagemodel=model,
        extra=extra,
    )
    if a.get("vmbootparams.params"):
        from nodemgr.bootparams import parse_column

        spec.bootparams = parse_column(a["vmbootparams.params"])
    family = traits_of(driver_of(a)).spec
    if family is not None:  # the family's own part (its column formats)
        xattrs = {k.split(".", 1)[1]: v for k, v in a.items() if k.startswith("vm.")}
        xattrs["macs"] = parse_macs(a.get("mac.mac"))
        family(spec, xattrs, list(disk_sizes_mib))
    return spec


def _virtflag(virtflags: str | None, name: str) -> str | None:
    return keyvals(virtflags, ",").get(name)


def vm_targets(res: Resolved, *, disk_sizes_mib: list[int] = (), memory_mib: int | None = None,
               cpus: int | None = None, need_host: bool = True) -> list[Target]:
    """One :class:`Target` per node of *res*, in node order.

    Nodes without a driver get xCAT's ``Unable to identify plugin`` error; nodes without
    ``vm.host`` (or ``vm.mgr`` for manager families) get ``vm.host is not set`` when
    *need_host*, else a target with no endpoint (the caller decides, e.g. ``stat`` → off).
    """
    targets = []
    res.prefetch_hosts(h for n in res.nodes
                       for h in (res.attrs[n].get("vm.host"), res.attrs[n].get("vm.mgr"))
                       if h and "://" not in h)
    for node in res.nodes:
        a = res.attrs[node]
        driver = driver_of(a)
        if not driver:
            targets.append(Target(node=node, driver="", endpoint=None, error=NO_PLUGIN))
            continue
        try:
            what = traits_of(driver).endpoint_attr
            host = a.get(what)
            if host:
                a = dict(a)
                a["hypervisor.type"] = res.host_attrs(host).get("hypervisor.type") if "://" not in host else None
            spec = build_spec(node, a, disk_sizes_mib=disk_sizes_mib, memory_mib=memory_mib,
                              cpus=cpus)
        except UsageError as exc:
            targets.append(Target(node=node, driver=driver, endpoint=None, error=str(exc)))
            continue
        if not host:
            targets.append(Target(node=node, driver=driver, endpoint=None, spec=spec,
                                  error=f"{what} is not set" if need_host else None))
            continue
        targets.append(Target(node=node, driver=driver, endpoint=host_endpoint(res, host, driver),
                              spec=spec))
    return targets


def managed_driver(res: Resolved, node: str) -> str | None:
    """The driver of the VMs whose ``vm.mgr`` is *node* (a manager node such as a RHEV-M or
    OVM Manager, which has no driver of its own), or None when no VM names it."""
    if res._managed is None:
        res._managed = {}
        known = res.resolver.nodes()
        for a in res.resolver.attrs(known, ["vm.mgr", "nodehm.mgt", "nodehm.power"]).values():
            if a.get("vm.mgr") and driver_of(a):
                res._managed.setdefault(a["vm.mgr"], driver_of(a))
    return res._managed.get(node)


def is_host_node(res: Resolved, node: str) -> bool:
    """Whether *node* is a hypervisor or manager node (a hypervisor row or ``hostconn.uri``)
    rather than a VM; callers ask only for nodes without ``vm.host``/``vm.mgr``."""
    ha = res.host_attrs(node)
    return bool(ha.get("hypervisor.type") or ha.get("hostconn.uri"))


def host_target(res: Resolved, host: str) -> Target:
    """A target for hypervisor (or manager) node *host* itself (``lsvm <host>``,
    ``rpower <host> stat``, migration targets). The driver: ``nodehm.power``/``mgt`` unless
    a BMC's, else that of ``hypervisor.type``, else (a manager node) that of the VMs naming
    it in ``vm.mgr``, else kvm."""
    ha = res.host_attrs(host)
    vtype = ha.get("hypervisor.type")
    driver = ha.get("nodehm.power") or ha.get("nodehm.mgt")
    if driver is None or driver in BMC_DRIVERS:
        from nodemgr.plugins.registry import for_host_type

        driver = for_host_type(vtype) if vtype else managed_driver(res, host)
        driver = driver or (None if vtype else for_host_type(DEFAULT_VIRT_TYPE))
    if driver and traits_of(driver).hosts_via_manager and ha.get("hypervisor.mgr"):
        # a RHEV-H host is reached through its engine; the fragment scopes the driver
        ep = host_endpoint(res, ha["hypervisor.mgr"], driver)
        return Target(node=host, driver=driver, endpoint=dataclasses.replace(ep, scope=host))
    return Target(node=host, driver=driver or "", endpoint=host_endpoint(res, host, driver),
                  error=None if driver else NO_PLUGIN)
