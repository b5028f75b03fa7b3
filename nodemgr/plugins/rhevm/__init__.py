"""The RHEV-M / oVirt family: VMs, hosts and data-center objects through the engine's REST API.

Modules: :mod:`.driver` (:class:`RhevmDriver`, the VM and data-center functions),
:mod:`.api` (the REST session and the readers of both API versions' XML), :mod:`.spec`
(xCAT ``rhevm.pm``'s column formats, the family's part of a VM spec).

This ``__init__`` declares the family's :data:`TRAITS` and imports nothing heavy:
``nodemgr.plugins.registry.traits("rhevm")`` reads them without loading ``requests``.
``nodemgr.plugins.rhevm:RhevmDriver`` (the entry point) is resolved lazily by the module
``__getattr__``.
"""

from __future__ import annotations

from nodemgr.plugins.base import Traits, lazy_exports
from nodemgr.plugins.rhevm.spec import family_spec

#: why ``rcons`` cannot work here (also the Unsupported message of ``console(open_stream=True)``)
NO_SERIAL = ("an engine-managed VM has no serial console stream through the REST API; "
             "use getrvidparms / a VNC or SPICE viewer")

TRAITS = Traits(label="RHEV-M / oVirt (REST)", endpoint_attr="vm.mgr", assigns_identity=True,
                places_vms=True, host_types=("rhevh",), hosts_via_manager=True,
                spec=family_spec, cannot=(("rcons", NO_SERIAL),))

_LAZY = {"RhevmDriver": "driver", "engine_url": "driver"}


__getattr__ = lazy_exports(__name__, _LAZY)

__all__ = ["TRAITS", "NO_SERIAL", "RhevmDriver", "family_spec"]
