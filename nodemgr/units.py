"""Size strings as xCAT accepts them: ``20``, ``20G``, ``20480M``, ``512K``, ``1T``.

Units are binary (K = KiB, M = MiB, G = GiB, T = TiB). Results are whole MiB.
"""

from __future__ import annotations

import re

from nodemgr.errors import UsageError

_FACTORS_MIB = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT])?(?:i?B)?\s*$", re.IGNORECASE)


def parse_size_mib(text: str, default_unit: str = "G") -> int:
    """Parse one size into MiB.

    Args:
        text: a number with an optional unit suffix K, M, G or T (``KB``/``KiB`` accepted).
        default_unit: unit of a bare number (``G`` for disk sizes, ``M`` for memory).
    Returns:
        The size in MiB, rounded up to a whole MiB, at least 1.
    Raises:
        UsageError: ``invalid size '10X' (use a number with an optional K, M, G or T)``.
    """
    m = _SIZE.match(text or "")
    if not m:
        raise UsageError(f"invalid size '{text}' (use a number with an optional K, M, G or T)")
    number = float(m.group(1))
    unit = (m.group(2) or default_unit).upper()
    mib = number * _FACTORS_MIB[unit]
    whole = int(mib) if mib == int(mib) else int(mib) + 1
    if whole < 1:
        raise UsageError(f"invalid size '{text}' (must be at least 1 MiB)")
    return whole


def parse_sizes_mib(text: str, default_unit: str = "G") -> list[int]:
    """Parse a comma list of sizes (``mkvm -s 20G,10G``) into MiB values."""
    parts = [p for p in (text or "").split(",")]
    if not parts or any(not p.strip() for p in parts):
        raise UsageError(f"invalid size list '{text}'")
    return [parse_size_mib(p, default_unit) for p in parts]
