"""VirtualBox family: ``VBoxManage`` on the host, run over the shared SSH pool.

``parse`` holds the pure readers of VBoxManage's text (no I/O); the driver lives beside it.
"""
