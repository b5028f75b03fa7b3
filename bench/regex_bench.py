"""Bench rows for regex attribute values (issue 14 item 1).

``nodels compute hosts.ip nodehm.mgt groups`` over 10,000 and 100,000 nodes on SQLite, with
the values xCAT clusters keep at group level: ``hosts.ip`` of group ``compute`` is
``|n(\\d+)|10.($1//65536).(($1//256)%256).($1%256)|`` (three arithmetic expressions per
node) and ``nodehm.mgt`` is the ``s///`` form ``/^n\\d+$/ipmi/``; ``groups`` is each node's
own ``nodelist.groups``. Target: <= 10x the baseline (issue 14: 106x before).

Both sides run as subprocesses of the same interpreter, started cold, stdout to
/dev/null: ``nodels`` is the real console script (what an operator waits for, cold start
and the 300,000 output lines included), and the baseline is ``python -c`` with a single
sqlite3 join returning the same raw (unrendered) rows, printed in the same
``node: table.col: value`` lines, so both pay for start-up and printing and the ratio is
the cost of resolving and rendering. Rounds alternate which of the two goes first;
medians, the median of the per-round ratios, every round shown.

Run alone (``python bench/regex_bench.py``; ``bench/run`` calls it) or through
:func:`run` (``run(table, workdir)``). Saves its rows to ``bench/results/regex.txt``.
``NODEMGR_BENCH_REGEX_SIZES`` (default ``10000,100000``) and
``NODEMGR_BENCH_REGEX_ROUNDS`` (default 3) change the sizes and rounds.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
SIZES = [int(x) for x in os.environ.get("NODEMGR_BENCH_REGEX_SIZES", "10000,100000").split(",")]
ROUNDS = int(os.environ.get("NODEMGR_BENCH_REGEX_ROUNDS", "3"))
TARGET = 10.0

IP = r"|n(\d+)|10.($1//65536).(($1//256)%256).($1%256)|"
MGT = r"/^n\d+$/ipmi/"
ATTRS = ["hosts.ip", "nodehm.mgt", "groups"]

#: The baseline: one join, the raw values, the same lines nodels prints.
BASELINE = r"""
import sqlite3, sys
db = sys.argv[1]
con = sqlite3.connect(db)
out = sys.stdout
w = out.write
for node, groups, ip, mgt in con.execute('''
    SELECT n.node, n.groups, COALESCE(NULLIF(h.ip, ''), g.ip),
           COALESCE(NULLIF(m.mgt, ''), gm.mgt)
    FROM nodelist n
    LEFT JOIN hosts h ON h.node = n.node
    LEFT JOIN hosts g ON g.node = 'compute'
    LEFT JOIN nodehm m ON m.node = n.node
    LEFT JOIN nodehm gm ON gm.node = 'compute'
    WHERE ',' || n.groups || ',' LIKE '%,compute,%'
    ORDER BY n.node'''):
    w(f"{node}: hosts.ip: {ip}\n{node}: nodehm.mgt: {mgt}\n{node}: groups: {groups}\n")
"""


def _populate(path: Path, n: int) -> None:
    """A store with *n* nodes n000001.. in groups compute,all and the two group values
    (schema from ``Store``; rows with one ``executemany``)."""
    from nodemgr.tables.store import Store

    url = f"sqlite:///{path}"
    Store(url).close()  # schema and default rows
    con = sqlite3.connect(path)
    with con:
        con.executemany('INSERT INTO nodelist (node, groups) VALUES (?, ?)',
                        ((f"n{i:06d}", "compute,all") for i in range(1, n + 1)))
        con.execute("INSERT INTO hosts (node, ip) VALUES ('compute', ?)", (IP,))
        con.execute("INSERT INTO nodehm (node, mgt) VALUES ('compute', ?)", (MGT,))
    con.close()


def _env(db: Path, conf: Path) -> dict[str, str]:
    env = dict(os.environ, NODEMGR_DB=f"sqlite:///{db}", NODEMGR_CONF=str(conf))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # commands run with their byte-code caches
    env.pop("PYTHONPYCACHEPREFIX", None)
    return env


def _timed(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{argv[0]} exit {p.returncode}: {p.stderr.decode()[-200:]}")
    return wall


def _check(nodels: list[str], env: dict[str, str], n: int) -> str:
    """Run nodels once and check its output (line count, rendered values of two nodes)."""
    p = subprocess.run(nodels, env=env, capture_output=True, text=True, check=True)
    lines = p.stdout.splitlines()
    assert len(lines) == 3 * n, (len(lines), p.stderr[-200:])
    want = {"n000001: hosts.ip: 10.0.0.1", "n000001: nodehm.mgt: ipmi",
            "n000001: groups: compute,all"}
    assert want <= set(lines[:3]), lines[:3]
    last = f"n{n:06d}: hosts.ip: 10.{n // 65536}.{n // 256 % 256}.{n % 256}"
    assert last in lines, last
    return lines[0]


def size_rows(t, work: Path, n: int) -> None:
    db = work / f"regex-{n}.sqlite"
    conf = work / "none.conf"
    conf.write_text("[nodemgr]\n")
    _populate(db, n)
    env = _env(db, conf)
    nodels = [str(VENV_BIN / "nodels"), "compute", *ATTRS]
    base = [str(VENV_BIN / "python"), "-c", BASELINE, str(db)]
    _check(nodels, env, n)
    _timed(base, env)  # warm the page cache and byte-code for both
    ours: list[float] = []
    raws: list[float] = []
    for rnd in range(ROUNDS):
        if rnd % 2:
            raws.append(_timed(base, env))
            ours.append(_timed(nodels, env))
        else:
            ours.append(_timed(nodels, env))
            raws.append(_timed(base, env))
    ratios = [o / r for o, r in zip(ours, raws, strict=True)]
    raw_med, our_med, ratio = (statistics.median(x) for x in (raws, ours, ratios))
    t.row(f"{n:,} nodes: sqlite3 join, raw values (baseline)", f"{raw_med:.2f} s", "1.00x",
          "rounds " + "/".join(f"{x:.2f}" for x in raws) + " s")
    verdict = "OK" if ratio <= TARGET else "OVER"
    t.row(f"{n:,} nodes: nodels compute {' '.join(ATTRS)}", f"{our_med:.2f} s",
          f"{ratio:.1f}x baseline ({verdict}, <= {TARGET:.0f}x)",
          "rounds " + "/".join(f"{x:.2f}" for x in ours) + " s; ratios "
          + "/".join(f"{x:.1f}" for x in ratios)
          + f"; {our_med / n * 1e6:.1f} us/node")
    db.unlink()


def run(t, work: Path) -> None:
    """Add the regex-value rows to bench table *t* (``bench.Table``)."""
    t.title(f"g) regex values: nodels over SQLite, subprocesses, median of {ROUNDS} rounds "
            "(order alternated)")
    t.row("hosts.ip of group compute", "", "", IP)
    t.row("nodehm.mgt of group compute", "", "", MGT)
    for n in SIZES:
        size_rows(t, work, n)


def main() -> int:
    sys.path.insert(0, str(ROOT / "bench"))
    sys.path.insert(0, str(ROOT))
    from bench import Table  # bench/bench.py

    t = Table()
    t.emit(f"nodemgr regex bench  {time.strftime('%Y-%m-%d %H:%M:%S')}  commit "
           + subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
           + f"  nproc {os.cpu_count()}  load "
           + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    where = subprocess.run([str(VENV_BIN / "python"), "-c",
                            "import nodemgr; print(nodemgr.__file__)"],
                           capture_output=True, text=True, cwd="/").stdout.strip()
    t.emit(f"nodels runs nodemgr from {where}")
    with tempfile.TemporaryDirectory(prefix="nodemgr-bench-") as tmp:
        run(t, Path(tmp))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "regex.txt").write_text("\n".join(t.lines) + "\n")
    print(f"saved to {out / 'regex.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
