"""The libvirt family (entry points ``libvirt`` and ``kvm``): VMs on KVM/QEMU hosts and on
anything else a libvirt URI reaches.

Modules: :mod:`.driver` (:class:`LibvirtDriver`: connection, errors, the VM operations),
:mod:`.domain_xml` (pure builders and editors of domain, pool and volume XML; never imports
``libvirt``), :mod:`.storage` (storage pools and volumes on the connection: xCAT's
``dir_<path>`` pools, ``<node>.<dev>.<fmt>`` volumes, purge retries, uploads),
:mod:`.console` (the serial console as a libvirt stream).

This ``__init__`` declares the family's :data:`TRAITS` and imports nothing heavy:
``nodemgr.plugins.registry.traits("kvm")`` reads them without loading ``libvirt``.
``nodemgr.plugins.libvirt:LibvirtDriver`` (the entry point) is resolved lazily by the
module ``__getattr__``.
"""

from __future__ import annotations

from nodemgr.plugins.base import Traits, lazy_exports

#: The family as data: the endpoint is the host (``vm.host``), the core assigns MACs and
#: UUIDs, the generic spec is this family's (no column formats of its own).
TRAITS = Traits(label="libvirt (KVM/QEMU)", host_types=("kvm", "qemu", "libvirt"))

_LAZY = {"LibvirtDriver": "driver", "state_word": "driver",
         "LibvirtConsoleStream": "console"}


__getattr__ = lazy_exports(__name__, _LAZY)

__all__ = ["TRAITS", *_LAZY]
