"""Server pools (the seed's GlassFish IMS model) on top of xCAT's tables.

A pool is a row of nodemgr's own ``serverpool`` table (virtualization type, subnet, probe
interfaces, pool user, SNMP agents) plus a node group of the same name. A machine is a
hypervisor node in that group with ``hypervisor.cluster`` = the pool and ``hypervisor.type``
= the pool's type, known by ``hosts.ip`` or only by ``mac.mac`` (then ``discoverip`` finds
its address). A machine user overrides the pool user through ``hostconn.username``.

Why a table of its own: xCAT's ``hypervisor.cluster`` only names a cluster on each
hypervisor row; it has nowhere for a pool's subnet, interfaces, user or SNMP agents. Using
the group and ``hypervisor.cluster`` for membership keeps xCAT's noderange habits
(``rpower cloud stat``, ``vm.migrationdest=cloud`` places VMs in the pool by free memory)
and every change takes effect with the next command: nothing is cached, nothing restarts.

What it must never do: change anything when an argument is bad (all writes of one call run
in one store transaction), or touch nodes outside the pool it is asked about.
"""

from __future__ import annotations

import ipaddress
import re

from nodemgr.errors import UsageError

VIRT_TYPES = ("kvm", "qemu", "xen", "vbox")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def check_name(kind: str, name: str) -> str:
    """*name* if it is a valid pool/machine/user name, else UsageError naming it."""
    if not _NAME.match(name or ""):
        raise UsageError(f"invalid {kind} name '{name}' (letters, digits, '_', '.', '-'; "
                         "starting with a letter)")
    return name


def check_mac(mac: str) -> str:
    """Normalised lower-case ``aa:bb:cc:dd:ee:ff``; UsageError otherwise."""
    m = (mac or "").strip().lower().replace("-", ":")
    if not _MAC.match(m):
        raise UsageError(f"invalid MAC address '{mac}' (use aa:bb:cc:dd:ee:ff)")
    return m


def check_ip(ip: str) -> str:
    """*ip* if it is an IPv4/IPv6 address, else UsageError."""
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        raise UsageError(f"invalid IP address '{ip}'") from None


def check_subnet(subnet: str) -> str:
    """Normalised ``a.b.c.d/n``; UsageError otherwise."""
    try:
        return str(ipaddress.ip_network(subnet, strict=False))
    except ValueError:
        raise UsageError(f"invalid subnet '{subnet}' (use a.b.c.d/n)") from None


def get_pool(store, name: str) -> dict:
    """The ``serverpool`` row of *name*. Raises UsageError when there is none."""
    row = store.get("serverpool", {"name": name})
    if row is None:
        raise UsageError(f"no server pool named '{name}'")
    return row


def pool_user(store, pool: str) -> str | None:
    """The pool user of *pool* (None when the pool or its user is not set)."""
    row = store.get("serverpool", {"name": pool})
    return (row or {}).get("username") or None


def machines(store, pool: str) -> list[str]:
    """Names of the machines of *pool* (hypervisor rows with ``cluster`` = pool), sorted."""
    return sorted(r["node"] for r in store.select("hypervisor") if r.get("cluster") == pool)


def create_pool(store, name: str, *, virttype: str = "kvm", subnet: str | None = None,
                interfaces: str | None = None, snmpagents: str | None = None) -> None:
    """Add pool *name*. Raises UsageError for a bad value, an existing pool, or a node or
    group of the same name (the pool's group would clash)."""
    check_name("pool", name)
    if virttype not in VIRT_TYPES and store.get("virttype", {"type": virttype}) is None:
        raise UsageError(f"unknown virtualization type '{virttype}' (kvm, qemu, xen, or a "
                         "virttype row)")
    if subnet:
        subnet = check_subnet(subnet)
    with store.transaction():
        if store.get("serverpool", {"name": name}) is not None:
            raise UsageError(f"server pool '{name}' already exists")
        if store.get("nodelist", {"node": name}) is not None:
            raise UsageError(f"'{name}' is already a node name")
        store.upsert("serverpool", {"name": name},
                     {"virttype": virttype, "subnet": subnet, "interfaces": interfaces,
                      "snmpagents": snmpagents})


def remove_pool(store, name: str, *, force: bool = False) -> list[str]:
    """Remove pool *name*; with machines only when *force* (they leave the pool: group and
    ``hypervisor.cluster`` cleared, nodes kept). Returns the machines released."""
    get_pool(store, name)
    members = machines(store, name)
    if members and not force:
        raise UsageError(f"server pool '{name}' has machines ({', '.join(members)}); "
                         "remove them first or use -f")
    with store.transaction():
        for node in members:
            _leave(store, node, name)
        store.delete("serverpool", {"name": name})
    return members


def _leave(store, node: str, pool: str) -> None:
    store.upsert("hypervisor", {"node": node}, {"cluster": None})
    row = store.get("nodelist", {"node": node}) or {}
    groups = [g for g in (row.get("groups") or "").split(",") if g and g != pool]
    store.upsert("nodelist", {"node": node}, {"groups": ",".join(groups)})


def add_machine(store, pool: str, name: str, *, ip: str | None = None, mac: str | None = None,
                local: bool = False) -> None:
    """Add machine *name* to *pool*, known by *ip*, *mac*, or as the local machine
    (``hosts.ip`` = 127.0.0.1, reached without SSH by libvirt). Takes effect at once."""
    p = get_pool(store, pool)
    check_name("machine", name)
    if sum(bool(x) for x in (ip, mac, local)) == 0:
        raise UsageError("give the machine's --ip, --mac, or --local")
    if ip:
        ip = check_ip(ip)
    if mac:
        mac = check_mac(mac)
    if local:
        ip = ip or "127.0.0.1"
    with store.transaction():
        row = store.get("nodelist", {"node": name}) or {}
        groups = [g for g in (row.get("groups") or "").split(",") if g]
        hv = store.get("hypervisor", {"node": name}) or {}
        if hv.get("cluster") and hv["cluster"] != pool:
            raise UsageError(f"machine '{name}' is already in server pool '{hv['cluster']}'")
        if pool not in groups:
            groups.append(pool)
        store.upsert("nodelist", {"node": name}, {"groups": ",".join(groups)})
        store.upsert("hypervisor", {"node": name}, {"type": p.get("virttype") or "kvm",
                                                    "cluster": pool})
        if ip:
            store.upsert("hosts", {"node": name}, {"ip": ip})
        if mac:
            store.upsert("mac", {"node": name}, {"mac": mac})


def remove_machine(store, pool: str, name: str) -> None:
    """Take machine *name* out of *pool* (node kept, group and cluster cleared)."""
    get_pool(store, pool)
    if name not in machines(store, pool):
        raise UsageError(f"'{name}' is not a machine of server pool '{pool}'")
    with store.transaction():
        _leave(store, name, pool)


def set_user(store, pool: str, user: str, *, machine: str | None = None,
             userid: str | None = None, groupid: str | None = None,
             authmethod: str | None = None) -> None:
    """Set the pool user, or with *machine* that machine's own user (``hostconn``)."""
    get_pool(store, pool)
    check_name("user", user)
    for what, v in (("--userId", userid), ("--groupId", groupid)):
        if v is not None and not str(v).isdigit():
            raise UsageError(f"invalid {what} '{v}' (a number)")
    with store.transaction():
        if machine is None:
            store.upsert("serverpool", {"name": pool},
                         {"username": user, "userid": userid, "groupid": groupid,
                          "authmethod": authmethod})
            return
        if machine not in machines(store, pool):
            raise UsageError(f"'{machine}' is not a machine of server pool '{pool}'")
        hc = store.get("hostconn", {"node": machine}) or {}
        opts = [o for o in (hc.get("options") or "").split(";")
                if o and not o.startswith(("userid=", "groupid="))]
        opts += [f"userid={userid}"] if userid else []
        opts += [f"groupid={groupid}"] if groupid else []
        store.upsert("hostconn", {"node": machine},
                     {"username": user, "authmethod": authmethod or hc.get("authmethod"),
                      "options": ";".join(opts) or None})


def set_virttype(store, vtype: str, *, connstring: str | None = None,
                 emulator: str | None = None, authmethod: str | None = None) -> None:
    """Set the default connection-string template / emulator path of a virtualization
    type (the seed's ``add-libvirt-virtualization``)."""
    check_name("virtualization type", vtype)
    values = {k: v for k, v in (("connstring", connstring), ("emulator", emulator),
                                ("authmethod", authmethod)) if v is not None}
    if not values:
        raise UsageError("nothing to set (--connstring, --emulator, --authmethod)")
    with store.transaction():
        store.upsert("virttype", {"type": vtype}, values)
