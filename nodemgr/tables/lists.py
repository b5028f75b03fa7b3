"""Comma-list values (``nodelist.groups``, ``chain.chain``, ...): the one rule for
``chtab table.col+=v`` and ``nodech table.col,=v`` / ``table.col^=v`` (xCAT's).

Both operators take a comma list of items: ``+=``/``,=`` append each item not already
present, in order, after the current items; ``^=`` removes every listed item. Empty items
are dropped.
"""

from __future__ import annotations


def items(value: str | None) -> list[str]:
    """The non-empty items of a comma list (``"a,,b"`` → ``["a", "b"]``)."""
    return [i for i in (value or "").split(",") if i != ""]


def append(current: str | None, extra: str | None) -> str:
    """*current* with each item of *extra* not already there appended
    (``append("all,rhels5.5", "rhels5.5,rhels5.6")`` → ``"all,rhels5.5,rhels5.6"``)."""
    out = items(current)
    for item in items(extra):
        if item not in out:
            out.append(item)
    return ",".join(out)


def remove(current: str | None, extra: str | None) -> str:
    """*current* without any item of *extra*
    (``remove("all,rhels5.4,rhels5.5", "rhels5.4,rhels5.5")`` → ``"all"``)."""
    drop = set(items(extra))
    return ",".join(i for i in items(current) if i not in drop)
