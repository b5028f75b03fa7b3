"""Where a VM goes: the host of ``vm.migrationdest`` with the most free memory.

xCAT's mkvm, ``rpower on`` and rmigrate choose this way when a VM has no ``vm.host`` (or
no target is named); ``revacuate`` uses it for every VM of a host, counting the memory of
the VMs it already sent to a destination. Hosts that do not answer within 15 s are
skipped.
"""

from __future__ import annotations

from collections.abc import Iterable

from nodemgr import dispatch
from nodemgr.plugins.base import NodeResult


def free_memory(res, hosts: Iterable[str], *, maxp: int = 64,
                timeout: float = 15.0) -> dict[str, int]:
    """Free memory in MiB of each reachable host of *hosts* (hypervisor node names), asked
    of the hosts' drivers in parallel; unreachable or failing hosts are left out.

    Args:
        res: the :class:`nodemgr.vmspec.Resolved` of the run.
        hosts: hypervisor node names.
        maxp, timeout: dispatch limits (groups in flight; seconds per host).
    """
    from nodemgr.vmspec import host_target

    targets = [host_target(res, h) for h in dict.fromkeys(hosts)]

    def call(drv, group):
        for t in group:
            yield NodeResult(t.node, data={"free": drv.host_free_memory_mib()})

    return {r.node: r.data["free"] for r in dispatch.run(targets, call, maxp=maxp,
                                                         timeout=timeout)
            if r.ok and isinstance(r.data.get("free"), int)}


def candidates(res, node: str, exclude: str | None = None) -> list[str]:
    """The hosts *node* may go to: its ``vm.migrationdest`` noderange expanded, without
    *exclude* (its current host); [] when unset."""
    from nodemgr import noderange

    dests = res.attrs[node].get("vm.migrationdest")
    if not dests:
        return []
    return [h for h in noderange.expand(dests, res.resolver) if h != exclude]


def pick(res, node: str, exclude: str | None = None, *, need_mib: int = 0,
         free: dict[str, int] | None = None, maxp: int = 64,
         timeout: float = 15.0) -> str | None:
    """The candidate host of *node* with the most free memory (at least *need_mib*), or
    None. *free* (host -> MiB), when given, is used and updated instead of asking: a
    caller placing many VMs subtracts what it placed."""
    hosts = candidates(res, node, exclude)
    if not hosts:
        return None
    if free is None:
        free = free_memory(res, hosts, maxp=maxp, timeout=timeout)
    else:
        missing = [h for h in hosts if h not in free]
        if missing:
            free.update(free_memory(res, missing, maxp=maxp, timeout=timeout))
            for h in missing:
                free.setdefault(h, -1)  # did not answer: asked once, never chosen
    best, best_free = None, -1
    for h in hosts:
        if h in free and free[h] >= need_mib and free[h] > best_free:
            best, best_free = h, free[h]
    return best
