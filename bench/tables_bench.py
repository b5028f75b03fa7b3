"""Bench rows per table size for the table commands (issue 14 item 7): the same command
against tables of 1,000, 10,000 and (opt-in, ``--large``) 100,000 nodes, with the growth
slope between sizes, so a super-linear step shows.

For each size N, a SQLite table of N nodes (nodelist groups ``compute,all``, hosts.ip,
nodehm.mgt) is built in set-up with ``Store.upsert_many``; then each command runs as the
real console script (a subprocess, cold start included; stdout to a file):

- ``nodels n000001``: key-sized work (slope ~0: the cost must not grow with the table);
- ``nodels compute hosts.ip nodehm.mgt``: whole-table work (slope ~1);
- ``nodeadd a[1-N] groups=new,all nodehm.mgt=ipmi`` then ``noderm a[1-N]``: N new nodes
  into / out of the N-node table (slope ~1);
- ``tabdump hosts`` then ``tabrestore`` of that dump (N rows; slope ~1).

Baseline in the same run: ``python -c pass`` (the same interpreter: the fixed start-up
cost every command pays). Each command runs ``--runs`` times (default 3) per size; the
median is shown with min-max, and the slope ``log(t2/t1) / log(n2/n1)`` between sizes
of the median minus the baseline (1.0 = linear; above ~1.2 flags a super-linear step).

Run alone: ``python bench/tables_bench.py [--large] [--runs N]``; ``bench/bench.py`` calls
:func:`run` (without the 100,000 size unless ``NODEMGR_BENCH_LARGE=1``). Saves its rows to
``bench/results/tables.txt`` when run alone.
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
SIZES = (1_000, 10_000)
LARGE = 100_000
#: above this slope a step counts as super-linear
SUPERLINEAR = 1.2


def _env(url: str, work: Path) -> dict[str, str]:
    conf = work / "none.conf"
    conf.write_text("[nodemgr]\n")
    env = dict(os.environ, NODEMGR_DB=url, NODEMGR_CONF=str(conf))
    for k in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX", "XCAT_NODE_PREFIX"):
        env.pop(k, None)
    return env


def _build(url: str, n: int) -> None:
    from nodemgr.tables.store import Store

    store = Store(url)
    names = [f"n{i:06d}" for i in range(1, n + 1)]
    with store.transaction():
        store.upsert_many("nodelist", ({"node": x, "groups": "compute,all"} for x in names))
        store.upsert_many("hosts", ({"node": x, "ip": f"10.{i >> 16 & 255}.{i >> 8 & 255}."
                                     f"{i & 255}"} for i, x in enumerate(names, 1)))
        store.upsert_many("nodehm", ({"node": x, "mgt": "ipmi"} for x in names))
    store.close()


def _timed(argv: list[str], env: dict[str, str], out: Path | None = None) -> float:
    with open(out or os.devnull, "w") as fh:
        t0 = time.perf_counter()
        p = subprocess.run(argv, env=env, stdout=fh, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:2])}: exit {p.returncode}: {p.stderr.strip()[-200:]}")
    return wall


def _cmd(name: str, *args: str) -> list[str]:
    return [str(VENV_BIN / name), *args]


def _cases(n: int, dump: Path):
    """(label, [(argv, stdout file or None), ...]) per command; a case of two commands
    (nodeadd + noderm, tabdump + tabrestore) leaves the table as it found it and is timed
    per command."""
    spec = f"a[{1:06d}-{n:06d}]"
    return [
        ("nodels n000001", [(_cmd("nodels", "n000001"), None)]),
        ("nodels compute hosts.ip nodehm.mgt", [
            (_cmd("nodels", "compute", "hosts.ip", "nodehm.mgt"), None)]),
        ("nodeadd <N new> / noderm <N>", [
            (_cmd("nodeadd", spec, "groups=new,all", "nodehm.mgt=ipmi"), None),
            (_cmd("noderm", spec), None)]),
        ("tabdump hosts / tabrestore <N rows>", [
            (_cmd("tabdump", "hosts"), dump), (_cmd("tabrestore", str(dump)), None)]),
    ]


def _slope(t1: float, t2: float, n1: int, n2: int) -> float | None:
    if t1 <= 0 or t2 <= 0:
        return None
    return math.log(t2 / t1) / math.log(n2 / n1)


def run(t, work: Path, *, large: bool | None = None, runs: int = 3) -> None:
    """Add the rows to bench table *t* (``bench.Table``)."""
    sys.path.insert(0, str(ROOT))
    if large is None:
        large = os.environ.get("NODEMGR_BENCH_LARGE") == "1"
    sizes = (*SIZES, LARGE) if large else SIZES
    py = str(VENV_BIN / "python")
    t.title(f"table commands per size ({', '.join(f'{n:,}' for n in sizes)} nodes, SQLite; "
            f"console scripts, median of {runs} [min-max]; slope = log growth of "
            "(median - baseline) per log growth of N)")
    envs = {}
    for n in sizes:
        url = f"sqlite:///{work}/tables-{n}.sqlite"
        t0 = time.perf_counter()
        _build(url, n)
        envs[n] = _env(url, work)
        t.row(f"set-up: {n:,} nodes x 3 tables (upsert_many)", f"{time.perf_counter() - t0:.2f} s")
    base = []
    for _ in range(runs + 1):
        base.append(_timed([py, "-c", "pass"], envs[sizes[0]]))
    base_med = statistics.median(base[1:])
    t.row("baseline: python -c pass (same interpreter)", f"{base_med * 1000:.0f} ms",
          "", f"[{min(base[1:]) * 1000:.0f}-{max(base[1:]) * 1000:.0f}]")
    # (label, command name) -> size -> walls
    walls: dict[tuple[str, str], dict[int, list[float]]] = {}
    for n in sizes:
        (work / f"dump-{n}").mkdir()
        dump = work / f"dump-{n}" / "hosts.csv"  # tabrestore takes the table from the name
        for label, steps in _cases(n, dump):
            for r in range(runs + (1 if n == sizes[0] else 0)):  # a warm-up on the first size
                for argv, out in steps:
                    wall = _timed(argv, envs[n], out)
                    if r or n != sizes[0]:
                        walls.setdefault((label, Path(argv[0]).name), {}).setdefault(
                            n, []).append(wall)
    steps_of: dict[str, int] = {}
    for label, _ in walls:
        steps_of[label] = steps_of.get(label, 0) + 1
    for (label, cmd), per in walls.items():
        name = label if steps_of[label] == 1 else f"{label}: {cmd}"
        prev = None
        for n in sizes:
            w = per[n]
            med = statistics.median(w)
            note = f"[{min(w):.2f}-{max(w):.2f}] s; {(med - base_med) / n * 1e6:,.1f} us/node"
            cmp = ""
            if prev is not None:
                s = _slope(prev[1] - base_med, med - base_med, prev[0], n)
                flag = "" if s is None or s <= SUPERLINEAR else " SUPER-LINEAR"
                cmp = f"slope {s:.2f} from {prev[0]:,}{flag}" if s is not None else "slope n/a"
            t.row(f"{name} @ {n:,}", f"{med:.2f} s", cmp, note)
            prev = (n, med)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--large", action="store_true", help="also 100,000 nodes (minutes)")
    ap.add_argument("--runs", type=int, default=3, help="runs per command and size")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench import RESULTS, Table  # bench/bench.py

    table = Table()
    with tempfile.TemporaryDirectory(prefix="nodemgr-bench-") as tmp:
        run(table, Path(tmp), large=args.large, runs=max(1, args.runs))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tables.txt").write_text("\n".join(table.lines) + "\n")
    print(f"saved to {RESULTS / 'tables.txt'}")
