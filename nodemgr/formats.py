"""Value formats of xCAT's tables, parsed and written in this one place.

- ``mac.mac``: MACs separated by ``|``, each optionally ``!hostname`` or ``!*NOIP*``
  (xCAT's mac table: a MAC with no address of its own); the first is the install NIC.
- xCAT timestamps (``nodelist.statustime``, ``auditlog.audittime``): ``MM-DD-YYYY
  HH:MM:SS`` in local time.
- yes/no columns (``site.callbacktokens``, ``disable``, ``hostconn`` options): ``1``,
  ``yes``, ``y``, ``true``, ``on`` (any case) are true.
- ``key=value`` lists (``vm.virtflags``, ``hostconn.options``): items separated by ``,``
  (or ``;``), a bare key meaning ``1``.
"""

from __future__ import annotations

import time

TRUE_WORDS = frozenset(("1", "yes", "y", "true", "on"))
FALSE_WORDS = frozenset(("0", "no", "n", "false", "off", ""))
NOIP = "*NOIP*"


def truthy(value: str | None) -> bool:
    """Whether a yes/no column value is true (None and "" are false)."""
    return (value or "").strip().lower() in TRUE_WORDS


def parse_macs(value: str | None) -> list[str]:
    """``mac.mac`` (``aa:..|bb:..!host-eth1|cc:..!*NOIP*``) -> MACs in order, lower case."""
    return [e.split("!", 1)[0].strip().lower() for e in (value or "").split("|") if e.strip()]


def format_macs(macs: list[str]) -> str:
    """MACs in NIC order -> the ``mac.mac`` value: the first plain (the install NIC, the
    one that gets the node's address), the others marked ``!*NOIP*``; "" for none."""
    return "|".join([macs[0]] + [f"{m}!{NOIP}" for m in macs[1:]]) if macs else ""


def timestamp(when: float | None = None) -> str:
    """xCAT's timestamp ``MM-DD-YYYY HH:MM:SS`` (local time) of *when* (epoch seconds;
    now when None)."""
    return time.strftime("%m-%d-%Y %H:%M:%S", time.localtime(when))


def keyvals(value: str | None, seps: str = ",;") -> dict[str, str]:
    """``k=v,k2=v2`` (any of *seps* between items) -> dict; a bare key is ``"1"``;
    blanks around keys and values are dropped, empty items skipped."""
    text = value or ""
    for sep in seps[1:]:
        text = text.replace(sep, seps[0])
    out: dict[str, str] = {}
    for item in text.split(seps[0]) if seps else [text]:
        key, eq, val = item.partition("=")
        if key.strip():
            out[key.strip()] = val.strip() if eq else "1"
    return out
