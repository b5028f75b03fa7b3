"""Oracle VM's part of a VM spec: ``vm.host`` names the preferred server of the pool
(the endpoint is the manager, ``vm.mgr``). Called through ``Traits.spec``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from nodemgr.plugins.base import VmSpec


def family_spec(spec: VmSpec, a: Mapping, disk_sizes_mib: Sequence[int] = ()) -> None:
    """Record ``vm.host`` (the preferred OVM server) as ``spec.extra["host"]``."""
    if a.get("host"):
        spec.extra["host"] = a["host"]
