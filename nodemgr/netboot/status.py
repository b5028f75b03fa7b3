"""Node status: xCAT's status names, the status a nodeset state implies, and
``updatenodestat``.

Sources: ``perl-xCAT/xCAT/GlobalDef.pm`` (status names), ``monitorctrl.pm
getNodeStatusFromNodesetState`` (state → status), ``updatenode.pm updatenodestat``
(``nodelist.status`` + ``statustime`` as ``MM-DD-YYYY HH:MM:SS`` local time, forced).
Unlike xCAT, an unknown status is an error, not silently ignored.
This module must never write anything but ``nodelist.status`` and ``nodelist.statustime``.
"""

from __future__ import annotations

from nodemgr import formats
from nodemgr.errors import UsageError

VALID_STATUSES: frozenset[str] = frozenset((
    "alive", "unreachable", "installing", "installed", "booting", "postbooting",
    "netbooting", "booted", "powering-on", "powering-off", "discovering", "discovered",
    "configuring", "configured", "standingby", "shell", "defined", "unknown", "failed",
    "bmcready",
    # update statuses (nodelist.updatestatus in xCAT, accepted here too)
    "syncing", "out-of-sync", "synced",
))


def status_for_state(state: str) -> str | None:
    """The node status implied by a nodeset state (``install rhels8.6-x86_64-compute`` →
    ``installing``), or None when the state implies none (offline, unknown words)."""
    word = state.split(" ", 1)[0].split("=", 1)[0]
    return {
        "install": "installing",
        "netboot": "netbooting",
        "statelite": "netbooting",
        "boot": "booting",
        "runimage": "booting",
        "runcmd": "configuring",
        "standby": "standingby",
        "shell": "shell",
        "discover": "discovering",
    }.get(word)


def timestamp(now: float | None = None) -> str:
    """xCAT's statustime format ``MM-DD-YYYY HH:MM:SS`` (local time): :func:`nodemgr.formats.timestamp`."""
    return formats.timestamp(now)


def check(status: str) -> None:
    """Raise UsageError naming the valid statuses when *status* is not one of them."""
    if status not in VALID_STATUSES:
        raise UsageError(f"unknown status '{status}'; valid: {', '.join(sorted(VALID_STATUSES))}")


def updatenodestat(store, nodes: list[str], status: str) -> None:
    """Set ``nodelist.status`` and ``statustime`` of *nodes* (one transaction).

    Args:
        store: the table store; the writes join the caller's transaction if one is open.
        nodes: node names (expanded already).
        status: one of :data:`VALID_STATUSES`.
    Raises:
        UsageError: unknown status (nothing written).
        TableError: the store failed (nothing written).
    """
    check(status)
    stamp = timestamp()
    with store.transaction():
        for node in nodes:
            store.upsert("nodelist", {"node": node}, {"status": status, "statustime": stamp})
