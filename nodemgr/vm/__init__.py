"""The VM side: operations over a noderange (:mod:`nodemgr.vm.ops`), where VMs go
(:mod:`nodemgr.vm.placement`), the identities the core assigns (:mod:`nodemgr.vm.identity`)
and the one module that turns a driver's facts into table columns
(:mod:`nodemgr.vm.writeback`). Drivers live in :mod:`nodemgr.plugins`; commands in
:mod:`nodemgr.cli.vmcmds` parse, call an operation and print.
"""
