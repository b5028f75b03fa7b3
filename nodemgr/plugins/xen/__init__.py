"""Xen family: a dom0's toolstack (``xl``, else legacy ``xm``) driven over SSH.

``driver`` holds :class:`XenDriver` (paramiko through :mod:`nodemgr.sshpool`), ``parse``
the pure readers and writers of the toolstack's text formats (``xl list``, ``xl list -l``,
``xl info``, ``xentop -b``, domain configuration files), ``console`` the serial console
stream (``xl console`` on an SSH channel with a pty).

Importing this package costs no SSH library: :data:`TRAITS` is plain data (what
:func:`nodemgr.plugins.registry.traits` reads) and the driver class is imported on first
access (``nodemgr.plugins.xen:XenDriver``, the entry point, still resolves).

What it must never do: import paramiko at package import time.
"""

from __future__ import annotations

from nodemgr.plugins.base import Traits, lazy_exports

#: What the Xen family is (see :class:`~nodemgr.plugins.base.Traits`): endpoint = the dom0
#: named by ``vm.host``, MACs/UUIDs come from the tables, hosts of ``hypervisor.type``
#: ``xen``, reached over SSH (``site.sshknownhosts`` / ``site.sshkey``).
TRAITS = Traits(
    label="Xen (xl over SSH)", host_types=("xen",), ssh=True,
    cannot=(("getrvidparms", "Xen guests made by nodemgr have no VNC/SPICE display (no vfb "
                             "in their config); use rcons for the serial console"),),
)

_LAZY = {"XenDriver": "driver", "ssh_target": "driver", "xen_dev": "driver",
         "XenConsole": "console"}


__getattr__ = lazy_exports(__name__, _LAZY)

__all__ = ["TRAITS", *_LAZY]
