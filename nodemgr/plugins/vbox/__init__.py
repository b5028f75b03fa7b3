"""VirtualBox family: ``VBoxManage`` on the host, run over the shared SSH pool.

``driver`` holds :class:`VboxDriver` (paramiko through :mod:`nodemgr.sshpool`), ``parse``
the pure readers of VBoxManage's text (no I/O).

Importing this package costs no SSH library: :data:`TRAITS` is plain data (what
:func:`nodemgr.plugins.registry.traits` reads) and the driver class is imported on first
access (``nodemgr.plugins.vbox:VboxDriver``, the entry point, resolves through it).

What it must never do: import paramiko at package import time.
"""

from __future__ import annotations

from nodemgr.plugins.base import Traits

#: Why VirtualBox has no serial console for ``rcons``.
NO_SERIAL = ("VirtualBox VMs have no serial console reachable over SSH (a VM's UART goes to "
             "a host pipe or file); use getrvidparms for its VRDE (RDP) display")
#: Why VirtualBox cannot ``rmigrate``.
NO_MIGRATE = ("VirtualBox moves a running VM only by teleporting, which needs the same VM "
              "registered on the target host, its disks on storage both hosts share and the "
              "target started waiting for it; nodemgr does not set that up")

#: What the VirtualBox family is (see :class:`~nodemgr.plugins.base.Traits`): endpoint = the
#: host named by ``vm.host`` (VBoxManage runs there as the pool or machine user), MACs and
#: UUIDs come from the tables, hosts of ``hypervisor.type`` ``vbox``, reached over SSH.
TRAITS = Traits(
    label="VirtualBox (VBoxManage over SSH)", host_types=("vbox",), ssh=True,
    cannot=(("rcons", NO_SERIAL), ("rmigrate", NO_MIGRATE), ("revacuate", NO_MIGRATE)),
)

_LAZY = {"VboxDriver": "driver", "ssh_target": "driver"}


def __getattr__(name: str):
    """``VboxDriver`` (and ``ssh_target``) imported on first use (the driver module
    imports the SSH pool)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = ["TRAITS", *_LAZY]
