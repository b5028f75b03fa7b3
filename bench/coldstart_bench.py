"""Cold start of every command (issue 14 item 6: each <= 100 ms with byte-code present).

Each row runs one command as a whole process -- the console script in the venv's ``bin/``,
as a user types it -- against a small SQLite database (one fake hypervisor, four VMs), and
pairs it with ``python -c pass`` from the same interpreter and site, run alternately
(A B A B ...) so that drift of a shared, noisy machine hits both. A row shows the median
and the spread (min-max) of the command, the baseline's median in the same pairs, and the
verdict against the 100 ms target. Commands that need real hardware or daemons to do
their work are timed on ``--help`` (argument parsing, the command's module and everything
it imports up front); the others also on a real read-only or cheap call.

Run: ``python bench/coldstart_bench.py [--runs N] [--only WORD]`` (default 20 runs); the
table is printed and saved to ``bench/results/coldstart.txt``. Byte-code caches are
written first (``compileall``) and used: ``PYTHONDONTWRITEBYTECODE`` is unset for the
commands, as on an installed system. Nothing here is imported by nodemgr.
"""

from __future__ import annotations

import argparse
import compileall
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench" / "results"
TARGET = 0.100  # seconds (issue 14 item 6)

#: Calls that do the command's real work on the bench database; every other command in
#: the registry is timed on ``--help``.
WORK = [
    ("nodels", []),
    ("nodels", ["vm0001"]),
    ("nodels", ["vms", "vm.host"]),
    ("tabdump", []),
    ("tabdump", ["site"]),
    ("lsdef", ["vm0001"]),
    ("nodeset", ["vm0001", "stat"]),
    ("rpower", ["vm0001", "stat"]),
    ("lsvm", ["vm0001"]),
    ("updatenodestat", ["vm0001", "booted"]),
    ("lspool", []),
    ("makenetworks", ["-d"]),
    ("nodemgr-config", ["-n", "vm0001"]),
    ("copycds", ["--help"]),
    ("nodels", ["-v"]),
]


def median_pairs(argv: list[str], base: list[str], env: dict[str, str], runs: int
                 ) -> tuple[list[float], list[float], list[float], int]:
    """Wall seconds of *runs* alternating runs of *argv* and *base* (after one warm-up
    each), *argv*'s CPU seconds (user + system, from the kernel's accounting of the
    finished child: less sensitive to other work on the machine than the wall time),
    and *argv*'s exit code."""
    rc = subprocess.run(argv, env=env, capture_output=True).returncode
    subprocess.run(base, env=env, capture_output=True)
    ours, theirs, cpu = [], [], []
    for _ in range(runs):
        for cmd, into in ((argv, ours), (base, theirs)):
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            into.append(time.perf_counter() - t0)
            if cmd is argv:
                r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    return ours, theirs, cpu, rc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20, help="pairs per row (default 20)")
    ap.add_argument("--only", help="only rows whose command line contains this text")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    from bench import populate  # bench/bench.py: the same fake cluster as its rows
    from nodemgr.cli.registry import COMMANDS

    compileall.compile_dir(str(ROOT / "nodemgr"), quiet=1)
    lines: list[str] = []

    def emit(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    emit(f"cold start, every command  {time.strftime('%Y-%m-%d %H:%M:%S')}  commit "
         + subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip())
    emit(f"machine: {platform.machine()}, nproc {os.cpu_count()}, Python "
         f"{platform.python_version()}; load average "
         + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    emit(f"median of {args.runs} runs [min-max], each paired with python -c pass; "
         f"target <= {TARGET * 1000:.0f} ms")
    emit("")
    emit(f"  {'command':<40} {'median':>7} {'[min-max]':>13} {'cpu':>6} {'baseline':>9} "
         f"{'ratio':>6}  verdict")
    rows = [(name, args_) for name, args_ in WORK]
    rows += [(name, ["--help"]) for name in COMMANDS if (name, ["--help"]) not in rows]
    over = 0
    with tempfile.TemporaryDirectory(prefix="nodemgr-coldstart-") as tmp:
        work = Path(tmp)
        db = f"sqlite:///{work}/small.sqlite"
        conf = work / "none.conf"
        conf.write_text("[nodemgr]\n")
        populate(db, work / "state", endpoints=1, per_endpoint=4, dead=set(), latency=0.0,
                 timeout=2)
        env = dict(os.environ, NODEMGR_DB=db, NODEMGR_CONF=str(conf))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.pop("PYTHONPYCACHEPREFIX", None)
        base = [str(VENV_BIN / "python"), "-c", "pass"]
        for name, cmd_args in rows:
            shown = " ".join([name, *cmd_args])
            if args.only and args.only not in shown:
                continue
            exe = VENV_BIN / name
            if not exe.exists():
                emit(f"  {shown:<40} {'n/a':>7}  (not installed in {VENV_BIN})")
                continue
            ours, theirs, cpu, rc = median_pairs([str(exe), *cmd_args], base, env,
                                                 args.runs)
            med, bmed = statistics.median(ours), statistics.median(theirs)
            ok = med <= TARGET
            over += not ok
            spread = f"[{min(ours) * 1000:.0f}-{max(ours) * 1000:.0f}]"
            emit(f"  {shown:<40} {med * 1000:>4.0f} ms {spread:>13} "
                 f"{statistics.median(cpu) * 1000:>3.0f} ms {bmed * 1000:>6.0f} ms "
                 f"{med / bmed:>5.1f}x  {'OK' if ok else 'OVER'}"
                 + ("" if rc == 0 else f" (exit {rc})"))
    emit("")
    emit(f"{over} row(s) over the {TARGET * 1000:.0f} ms target")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "coldstart.txt").write_text("\n".join(lines) + "\n")
    print(f"saved to {RESULTS / 'coldstart.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
