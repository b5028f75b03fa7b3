"""Bench rows for noderange expansion over 10,000 nodes (the figures two timed tests used to
assert): each form, cold (a fresh resolver: the nodelist read included) and warm, against
the same names read straight from SQLite with sqlite3 in the same run. Median of ROUNDS.

Run alone: ``python bench/noderange_bench.py``. Writes only under a temporary directory.
"""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

N = 10_000
ROUNDS = 5
FORMS = ("node[00001-10000]", "node00001-node10000", "all", "/node.*", "all,-node0000[1-9]")


def _t(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(t, work: Path) -> None:
    """Add the rows to bench table *t* (``bench.Table``)."""
    from nodemgr.noderange import expand
    from nodemgr.tables.resolve import Resolver
    from nodemgr.tables.store import Store

    db = work / "noderange.sqlite"
    store = Store(f"sqlite:///{db}")
    with store.transaction():
        store.upsert_many("nodelist", ({"node": f"node{i:05d}", "groups": f"all,rack{i % 10}"}
                                       for i in range(1, N + 1)))
    env = {"HOME": str(work)}

    def raw():
        con = sqlite3.connect(db)
        names = [r[0] for r in con.execute("SELECT node FROM nodelist ORDER BY node")]
        con.close()
        return names

    base = statistics.median(_t(raw) for _ in range(ROUNDS))
    t.title(f"noderange expansion, {N:,} nodes (SQLite; median of {ROUNDS})")
    t.row("sqlite3: SELECT node FROM nodelist", f"{base * 1000:.1f} ms", "baseline")
    for form in FORMS:
        cold = statistics.median(_t(lambda f=form: expand(f, Resolver(store), env=env))
                                 for _ in range(ROUNDS))
        r = Resolver(store)
        expand(form, r, env=env)
        warm = statistics.median(_t(lambda f=form, r=r: expand(f, r, env=env))
                                 for _ in range(ROUNDS))
        t.row(f"expand {form!r}", f"{cold * 1000:.1f} ms cold",
              f"{cold / base:.1f}x raw", f"warm {warm * 1000:.1f} ms")
    store.close()


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench import Table  # bench/bench.py

    with tempfile.TemporaryDirectory(prefix="nodemgr-bench-") as tmp:
        run(Table(), Path(tmp))
