"""Bench rows for key-sized work and bulk writes (issue 14 items 2 and 3).

a) ``nodels n000001`` against a 100,000-node table vs the same against a 1,000-node table
   (target <= 1.3x);
b) ``nodeadd 'x[00001-10000]' groups=new,all nodehm.mgt=ipmi`` and then
   ``noderm 'x[00001-10000]'`` into / from a 100,000-node table vs a 1,000-node table
   (target <= 1.3x each);
c) ``nodeadd`` of 100,000 new nodes (and ``noderm`` of them), ``tabrestore`` of a
   100,000-row hosts dump and ``nodeset`` of 10,000 nodes (library call) on PostgreSQL
   vs SQLite (target <= 2x each, issue 14 item 3).

Every command is the real console script run as a subprocess (cold start included, the
same on both sides), stdout to /dev/null; the tables are built in set-up with
``Store.upsert_many`` (nodelist + nodehm rows). Each round runs both sides, alternating
which goes first; a nodeadd round is followed by the noderm of the same nodes, which
brings the table back to its set-up state. Medians, the median of the per-round ratios,
every round shown.

PostgreSQL: a fresh schema in ``$NODEMGR_TEST_PG`` (default ``postgresql:///nodemgr_test``,
the test server), dropped afterwards; its rows are shown as n/a when it is unreachable.

Run alone: ``python bench/scale_bench.py [--quick]`` (``--quick``: 3 rounds instead of 5,
c) with 20,000 nodes); ``bench/bench.py`` calls :func:`run`. Saves its rows to
``bench/results/scale.txt`` when run alone.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PG_BASE = os.environ.get("NODEMGR_TEST_PG", "postgresql:///nodemgr_test")
SMALL, LARGE, BATCH = 1_000, 100_000, 10_000


def _env(url: str, work: Path) -> dict[str, str]:
    conf = work / "none.conf"
    conf.write_text("[nodemgr]\n")
    env = dict(os.environ, NODEMGR_DB=url, NODEMGR_CONF=str(conf))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPYCACHEPREFIX", None)
    env.pop("XCAT_NODE_PREFIX", None)
    return env


def _timed(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])}: exit {p.returncode}: {p.stderr.strip()[-200:]}")
    return wall


def _cmd(name: str, *args: str) -> list[str]:
    return [str(VENV_BIN / name), *args]


def _build(url: str, n: int) -> None:
    """A table of *n* nodes n000001.. (groups compute,all; nodehm.mgt ipmi)."""
    from nodemgr.tables.store import Store

    store = Store(url)
    with store.transaction():
        store.upsert_many("nodelist", ({"node": f"n{i:06d}", "groups": "compute,all"}
                                       for i in range(1, n + 1)))
        store.upsert_many("nodehm", ({"node": f"n{i:06d}", "mgt": "ipmi"}
                                     for i in range(1, n + 1)))
    store.close()


def _count(url: str, table: str = "nodelist") -> int:
    from nodemgr.tables.store import Store

    store = Store(url)
    try:
        return len(store.select(table, include_disabled=True, columns=["node"]))
    finally:
        store.close()


class _Pg:
    """Fresh PostgreSQL schemas, dropped on close."""

    def __init__(self) -> None:
        import psycopg

        self.admin = psycopg.connect(PG_BASE, autocommit=True, connect_timeout=5)
        self.schemas: list[str] = []

    def url(self) -> str:
        schema = "bench_" + uuid.uuid4().hex[:10]
        self.admin.execute(f"CREATE SCHEMA {schema}")
        self.schemas.append(schema)
        sep = "&" if "?" in PG_BASE else "?"
        return f"{PG_BASE}{sep}options=-csearch_path%3D{schema}"

    def close(self) -> None:
        for s in self.schemas:
            self.admin.execute(f"DROP SCHEMA {s} CASCADE")
        self.admin.close()


def _pair_rows(t, label_a: str, label_b: str, rounds: list[tuple[float, float]],
               target: float, what: str) -> None:
    a = statistics.median(r[0] for r in rounds)
    b = statistics.median(r[1] for r in rounds)
    ratio = statistics.median(r[0] / r[1] for r in rounds)
    verdict = "OK" if ratio <= target else "OVER"
    t.row(label_a, f"{a * 1000:.0f} ms", f"{ratio:.2f}x {what}",
          f"{verdict} (target <= {target:g}x)")
    t.row(label_b, f"{b * 1000:.0f} ms", "baseline")
    t.row("  rounds (ours / baseline, ms)", "", "",
          " ".join(f"{x * 1000:.0f}/{y * 1000:.0f}" for x, y in rounds))


def _add_rm_rounds(urls: dict[str, str], envs: dict[str, dict], order: list[str],
                   rounds: int, spec: str, count: int) -> dict[str, list[tuple[float, float]]]:
    """*rounds* of nodeadd then noderm of *spec* on each side; (add, rm) walls per side."""
    out: dict[str, list[tuple[float, float]]] = {k: [] for k in order}
    base = {k: _count(urls[k]) for k in order}
    for i in range(rounds):
        for side in (order if i % 2 == 0 else order[::-1]):
            env = envs[side]
            add = _timed(_cmd("nodeadd", spec, "groups=new,all", "nodehm.mgt=ipmi"), env)
            got = _count(urls[side])
            if got != base[side] + count:
                raise RuntimeError(f"nodeadd on {side}: {got} nodes, expected "
                                   f"{base[side] + count}")
            rm = _timed(_cmd("noderm", spec), env)
            got = _count(urls[side]), _count(urls[side], "nodehm")
            if got != (base[side], base[side]):
                raise RuntimeError(f"noderm on {side}: {got} rows left, expected "
                                   f"{base[side]}")
            out[side].append((add, rm))
    return out


def _nodeset_rows(t, work: Path, pg: _Pg, rounds: int) -> None:
    """``nodeset <10,000 nodes> osimage=`` (library call, boot files on tmpfs when
    writable) on PostgreSQL vs SQLite, fresh tables and trees each round, order
    alternating (bench/nodeset_bench.py's set-up)."""
    import tempfile

    import nodeset_bench as nb

    from nodemgr.netboot.nodeset import nodeset

    nb.N = 10_000
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else str(work)
    walls: dict[str, list[float]] = {"sqlite": [], "pg": []}
    for i in range(rounds):
        for side in (("sqlite", "pg") if i % 2 == 0 else ("pg", "sqlite")):
            with tempfile.TemporaryDirectory(prefix="nodemgr-bench-", dir=base) as tmp:
                store, res = nb._setup(Path(tmp), pg.url() if side == "pg" else None)
                t0 = time.perf_counter()
                out = nodeset(store, res, nb._nodes(), f"osimage={nb.IMG}")
                walls[side].append(time.perf_counter() - t0)
                store.close()
                if not all(r.ok for r in out):
                    raise RuntimeError(f"nodeset on {side}: {out[0].message}")
    _pair_rows(t, "nodeset 10k osimage=, PostgreSQL", "nodeset 10k osimage=, SQLite",
               list(zip(walls["pg"], walls["sqlite"], strict=True)), 2.0, "SQLite")


def run(t, work: Path, *, quick: bool = False) -> None:
    """Add the rows to bench table *t* (``bench.Table``)."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    rounds = 3 if quick else 5
    bulk = 20_000 if quick else 100_000
    sq = {n: f"sqlite:///{work}/scale-{n}.sqlite" for n in (SMALL, LARGE)}
    t0 = time.perf_counter()
    for n, url in sq.items():
        _build(url, n)
    built = time.perf_counter() - t0
    envs = {n: _env(url, work) for n, url in sq.items()}

    t.title(f"scale: key-sized work, {LARGE:,} vs {SMALL:,} nodes (SQLite; console scripts as "
            f"subprocesses; median of {rounds}, order alternating)")
    t.row(f"set-up: both tables built (upsert_many, {SMALL + LARGE:,} nodes x 2 tables)",
          f"{built:.2f} s")
    walls: list[tuple[float, float]] = []
    for i in range(rounds + 1):
        order = [LARGE, SMALL] if i % 2 else [SMALL, LARGE]
        got = {n: _timed(_cmd("nodels", "n000001"), envs[n]) for n in order}
        if i:  # the first pass warms the page cache and .pyc files
            walls.append((got[LARGE], got[SMALL]))
    _pair_rows(t, f"nodels n000001 @ {LARGE:,}", f"nodels n000001 @ {SMALL:,}", walls, 1.3,
               f"the {SMALL:,} table")

    spec = f"x[00001-{BATCH:05d}]"
    res = _add_rm_rounds(sq, envs, [SMALL, LARGE], rounds, spec, BATCH)
    pairs = list(zip(res[LARGE], res[SMALL], strict=True))
    _pair_rows(t, f"nodeadd {spec} (10k new) into {LARGE:,}",
               f"nodeadd {spec} into {SMALL:,}", [(a[0], b[0]) for a, b in pairs], 1.3,
               f"the {SMALL:,} table")
    _pair_rows(t, f"noderm {spec} from {LARGE + BATCH:,}",
               f"noderm {spec} from {SMALL + BATCH:,}", [(a[1], b[1]) for a, b in pairs],
               1.3, f"the {SMALL:,} table")

    t.title(f"scale: bulk writes, nodeadd / noderm of {bulk:,} new nodes, PostgreSQL vs SQLite "
            f"(empty tables; median of {rounds})")
    try:
        pg = _Pg()
    except Exception as exc:  # server not reachable
        t.row("PostgreSQL", "n/a", "", f"{type(exc).__name__}: {exc}"[:70])
        return
    try:
        urls = {"sqlite": f"sqlite:///{work}/scale-bulk.sqlite", "pg": pg.url()}
        t0 = time.perf_counter()
        _build(urls["pg"], LARGE)
        t.row(f"set-up: {LARGE:,} nodes x 2 tables on PostgreSQL (upsert_many)",
              f"{time.perf_counter() - t0:.2f} s", "", "info; then emptied")
        for url in urls.values():
            from nodemgr.tables.store import Store

            s = Store(url)
            with s.transaction():
                s.delete("nodelist")
                s.delete("nodehm")
            s.close()
        envs2 = {k: _env(u, work) for k, u in urls.items()}
        spec = f"b[000001-{bulk:06d}]"
        res = _add_rm_rounds(urls, envs2, ["sqlite", "pg"], rounds, spec, bulk)
        pairs = list(zip(res["pg"], res["sqlite"], strict=True))
        _pair_rows(t, f"nodeadd {bulk // 1000}k, PostgreSQL", f"nodeadd {bulk // 1000}k, SQLite",
                   [(a[0], b[0]) for a, b in pairs], 2.0, "SQLite")
        _pair_rows(t, f"noderm {bulk // 1000}k, PostgreSQL", f"noderm {bulk // 1000}k, SQLite",
                   [(a[1], b[1]) for a, b in pairs], 2.0, "SQLite")
        (work / "dump").mkdir(exist_ok=True)
        dump = work / "dump" / "hosts.csv"  # tabrestore takes the table from the name
        with open(dump, "w") as f:  # what tabdump hosts writes for `bulk` nodes
            f.write("#node,ip,hostnames,otherinterfaces,comments,disable\n")
            for i in range(bulk):
                f.write(f'"b{i:06d}","10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",,,,\n')
        walls: dict[str, list[float]] = {"sqlite": [], "pg": []}
        for i in range(rounds):
            for side in (("sqlite", "pg") if i % 2 == 0 else ("pg", "sqlite")):
                walls[side].append(_timed(_cmd("tabrestore", str(dump)), envs2[side]))
                if _count(urls[side], "hosts") != bulk:
                    raise RuntimeError(f"tabrestore on {side}: wrong row count")
        _pair_rows(t, f"tabrestore of a {bulk // 1000}k hosts dump, PostgreSQL",
                   f"tabrestore of a {bulk // 1000}k hosts dump, SQLite",
                   list(zip(walls["pg"], walls["sqlite"], strict=True)), 2.0, "SQLite")
        _nodeset_rows(t, work, pg, rounds)
    finally:
        pg.close()


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 rounds; c) with 20,000 nodes")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench import RESULTS, Table  # bench/bench.py

    table = Table()
    with tempfile.TemporaryDirectory(prefix="nodemgr-bench-") as tmp:
        run(table, Path(tmp), quick=args.quick)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scale.txt").write_text("\n".join(table.lines) + "\n")
    print(f"saved to {RESULTS / 'scale.txt'}")
