"""Hypervisor drivers: one interface (``base.HypervisorDriver``) for every family.

Drivers receive resolved specs and an endpoint, never the tables. They are found through
the ``nodemgr.plugins`` entry-point group (see ``registry``).
"""
