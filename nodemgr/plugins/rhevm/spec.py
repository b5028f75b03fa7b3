"""RHEV-M/oVirt's part of a VM spec: xCAT ``rhevm.pm``'s column formats.

The core calls :func:`family_spec` through the family's traits (``Traits.spec``) after it
built the generic spec; nothing else knows these formats.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from nodemgr.errors import UsageError
from nodemgr.formats import keyvals
from nodemgr.plugins.base import DiskSpec, NicSpec, VmSpec
from nodemgr.units import parse_size_mib


def family_spec(spec: VmSpec, a: Mapping, disk_sizes_mib: Sequence[int] = ()) -> None:
    """RHEV-M's column formats (xCAT ``rhevm.pm``): ``vm.storage`` = ``sd:size:type|...``
    (size default 5 GB, type ``system`` = bootable), ``vm.storagemodel`` = ``iface:format``
    (default ``virtio:cow``), ``vm.nics`` = ``network:ifname:install|...`` (default
    ``ovirtmgmt:eth0:yes``), ``vm.cpus`` = ``sockets:cores``, ``vm.host`` = placement host,
    ``vm.virtflags`` ``placement_affinity=...``. ``mkvm -s`` sizes replace the sizes in
    order. Raises UsageError on a malformed value."""
    iface, _, fmt = (a.get("storagemodel") or "virtio:cow").partition(":")
    fmt = fmt or "cow"
    disks, roles = [], []
    entries = [e for e in (a.get("storage") or "").split("|") if e.strip()]
    for i, entry in enumerate(entries):
        sd, _, rest = entry.strip().partition(":")
        size, _, role = rest.partition(":")
        try:
            mib = parse_size_mib(size, "G") if size else 4769  # xCAT: 5000000000 bytes
        except UsageError:
            raise UsageError(f"vm.storage entry '{entry}': bad size '{size}'") from None
        if i < len(disk_sizes_mib):
            mib = disk_sizes_mib[i]
        disks.append(DiskSpec(dev=f"disk{i + 1}", location=f"sd:{sd}", size_mib=mib,
                              format=fmt, bus=iface))
        roles.append(role or ("system" if i == 0 else "data"))
    spec.disks = disks
    spec.storage = [f"sd:{e.split(':', 1)[0].strip()}" for e in entries]
    spec.storagemodel, spec.storageformat = iface, fmt
    macs = list(a.get("macs") or [])
    nics, names, install = [], [], 0
    default = "ovirtmgmt:eth0:yes" if not a.get("master") else ""
    for i, entry in enumerate(e for e in (a.get("nics") or default).split("|") if e.strip()):
        net, _, rest = entry.strip().partition(":")
        ifname, _, flag = rest.partition(":")
        if flag.lower() in ("yes", "install", "1", "true"):
            install = i
        names.append(ifname or f"eth{i}")
        nics.append(NicSpec(network=net, mac=macs[i] if i < len(macs) else "",
                            model=a.get("nicmodel") or "virtio", kind="network"))
    spec.nics = nics
    cpus = a.get("cpus") or "1"
    sockets, _, cores = cpus.partition(":")
    if not sockets.isdigit() or (cores and not cores.isdigit()):
        raise UsageError(f"vm.cpus must be sockets[:cores], not '{cpus}'")
    cores = cores or "1"
    if spec.cpus and str(spec.cpus) != cpus and ":" not in cpus:
        sockets, cores = "1", str(spec.cpus)
    spec.cpus = int(sockets) * int(cores)
    spec.extra.update(sockets=sockets, cores=cores, disk_roles="|".join(roles),
                      nic_names="|".join(names), install_nic=str(install))
    if a.get("host"):
        spec.extra["host"] = a["host"]
    affinity = keyvals((a.get("virtflags") or "").replace(":", ","), ",").get(
        "placement_affinity")
    if affinity:
        spec.extra["placement_affinity"] = affinity
