"""Oracle VM 2.x family: the OVM Manager's web services (SOAP), plus SSH to the dom0s.

Modules: :mod:`.driver` (:class:`OvmDriver`: the VM operations, template import and the
dom0 steps over :mod:`nodemgr.sshpool`), :mod:`.soap` (:class:`~.soap.Manager`, the only
module that knows SOAP messages; zeep), :mod:`.spec` (the family's part of a VM spec).

Importing this package costs no SOAP or SSH library: :data:`TRAITS` is plain data (what
:func:`nodemgr.plugins.registry.traits` reads) and the driver class is imported on first
access (``nodemgr.plugins.ovm:OvmDriver``, the entry point, still resolves).

What it must never do: import zeep, requests or paramiko at package import time.
"""

from __future__ import annotations

from nodemgr.plugins.base import Traits, lazy_exports
from nodemgr.plugins.ovm.spec import family_spec

#: why ``rcons`` cannot work here (also the Unsupported message of
#: ``console(open_stream=True)``): the manager offers a VM's VNC display only
NO_SERIAL = ("an Oracle VM guest has no serial console through the OVM Manager (it offers "
             "the VM's VNC display only); use getrvidparms / a VNC viewer")

#: What the Oracle VM family is (see :class:`~nodemgr.plugins.base.Traits`): endpoint = the
#: manager named by ``vm.mgr``; the manager assigns MACs and UUIDs and places VMs on the
#: servers of its pool; hosts of ``hypervisor.type`` ``ovm`` are reached through their
#: manager (``hypervisor.mgr``; the endpoint's scope names the server); the dom0 steps go
#: over SSH.
TRAITS = Traits(label="Oracle VM (SOAP + SSH)", endpoint_attr="vm.mgr", assigns_identity=True,
                places_vms=True, host_types=("ovm",), hosts_via_manager=True, ssh=True,
                spec=family_spec, cannot=(("rcons", NO_SERIAL),))

_LAZY = {"OvmDriver": "driver", "state_word": "driver", "Manager": "soap",
         "base_url": "soap", "map_fault": "soap"}


__getattr__ = lazy_exports(__name__, _LAZY)

__all__ = ["TRAITS", "NO_SERIAL", "family_spec", *_LAZY]
