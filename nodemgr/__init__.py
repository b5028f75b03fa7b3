"""nodemgr: xCAT-style node and virtual-machine management.

The package is layered (see README, "Architecture"): tables -> noderange -> policy ->
plugins -> dispatch -> netboot -> commands/web. A module imports only from layers above it.
Nothing here may import a heavy library (libvirt, Flask, zeep, ...) at module level.
"""

__version__ = "0.1.0"
