"""nodemgr benchmark: command cold start and fan-out over many endpoints, each against a
baseline measured in the same run. Run it with ``bench/run``; it prints one table and saves
it to ``bench/results/latest.txt``.

a) cold start: wall time of ``python -c pass`` (the same interpreter and site as the
   commands) vs ``nodels <node>`` and ``rpower <vm> stat`` (fake driver) on a small SQLite
   database; target ≤150 ms.
b) fan-out: ``rpower stat`` of 1,000 VMs on 50 fake endpoints with 50 ms latency, one of
   which never answers, per-call timeout 2 s: through ``dispatch.run`` directly, through
   the real ``rpower`` command, and one endpoint at a time (maxp=1) as the baseline.

A command that is not installed or does not work yet is shown as ``n/a`` with the reason;
the benchmark never crashes because of it. Nothing here is imported by nodemgr.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench" / "results"

LATENCY = 0.05      # seconds per round trip to a fake endpoint
TIMEOUT = 2         # per-call timeout (site.vmtimeout)
ENDPOINTS = 50      # endpoints, one of them dead
PER_ENDPOINT = 20   # VMs per endpoint -> 1,000 VMs


def ms(s: float | None) -> str:
    return "n/a" if s is None else f"{s * 1000:.0f} ms"


def sec(s: float | None) -> str:
    return "n/a" if s is None else f"{s:.2f} s"


class Table:
    """Rows of (label, figure, comparison, note), printed aligned."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def title(self, text: str) -> None:
        self.emit("")
        self.emit(text)
        self.emit("-" * len(text))

    def row(self, label: str, figure: str, compare: str = "", note: str = "") -> None:
        self.emit(f"  {label:<52} {figure:>18}  {compare:<28} {note}".rstrip())

    def emit(self, line: str) -> None:
        print(line, flush=True)
        self.lines.append(line)


# -- environment ---------------------------------------------------------------------------


def cmd_env(db_url: str, conf: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["NODEMGR_DB"] = db_url
    env["NODEMGR_CONF"] = str(conf)
    # measure what an installed system sees: byte-code caches exist and are used
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPYCACHEPREFIX", None)
    return env


def populate(db_url: str, state_dir: Path, *, endpoints: int, per_endpoint: int,
             dead: set[int], latency: float, timeout: int) -> tuple[list[str], dict[str, str]]:
    """Tables for *endpoints* fake hosts with *per_endpoint* VMs each, in block order
    (vm0001..vm0020 on host01, ...); hosts in *dead* never answer. Returns (vms, vm->host)."""
    from nodemgr.plugins.fake import seed_state
    from nodemgr.tables.store import Store

    store = Store(db_url)
    vms, host_of = [], {}
    with store.transaction():
        store.upsert("site", {"key": "vmmaxp"}, {"value": "64"})
        store.upsert("site", {"key": "vmtimeout"}, {"value": str(timeout)})
        for h in range(1, endpoints + 1):
            host = f"host{h:02d}"
            state = state_dir / f"{host}.json"
            names = [f"vm{(h - 1) * per_endpoint + i + 1:04d}" for i in range(per_endpoint)]
            uri = (f"fake://{host}?hang=1" if h in dead
                   else f"fake://{host}?latency={latency}&state={state}")
            store.upsert("nodelist", {"node": host}, {"groups": "hosts"})
            store.upsert("hostconn", {"node": host}, {"uri": uri})
            for n in names:
                store.upsert("nodelist", {"node": n}, {"groups": "vms"})
                store.upsert("nodehm", {"node": n}, {"mgt": "fake"})
                store.upsert("vm", {"node": n}, {"host": host})
                host_of[n] = host
            vms += names
            if h not in dead:
                seed_state(str(state), host, names, state="on")
    store.close()
    return vms, host_of


# -- a) cold start -----------------------------------------------------------------------


def time_runs(argv: list[str], env: dict[str, str], n: int) -> tuple[float, float]:
    """(median, min) wall seconds of *n* runs after one warm-up run."""
    subprocess.run(argv, env=env, capture_output=True)
    walls = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls), min(walls)


def usable(argv: list[str], env: dict[str, str]) -> str | None:
    """None when *argv* runs and exits 0, else a short reason."""
    exe = Path(argv[0])
    if not exe.exists():
        return "not installed"
    try:
        help_ = subprocess.run([argv[0], "--help"], env=env, capture_output=True, text=True,
                               timeout=30)
        if help_.returncode != 0:
            return "--help fails: " + (help_.stderr.strip().splitlines() or ["?"])[-1][:60]
        p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "timed out"
    if p.returncode != 0:
        return f"exit {p.returncode}: " + (p.stderr.strip().splitlines() or ["?"])[-1][:60]
    return None


def command(name: str, args: list[str], env: dict[str, str]) -> tuple[list[str] | None, str]:
    """How to run command *name*: (argv, note), or (None, reason) when it cannot run.

    The console script in the venv is preferred. When it is stale (written by an older
    install, before pyproject.toml moved the command), the same entry point is run the way
    the script would run it, from ``[project.scripts]``, and the note says so."""
    script = [str(VENV_BIN / name), *args]
    reason = usable(script, env)
    if reason is None:
        return script, ""
    import tomllib

    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"].get(name)
    if not target:
        return None, reason
    module, func = target.split(":")
    argv = [str(VENV_BIN / "python"), "-c",
            f"import sys; from {module} import {func}; sys.exit({func}())", *args]
    if usable(argv, env) is None:
        return argv, f"venv script stale ({reason[:40]}...); ran {target}"
    return None, reason


def cold_start(t: Table, work: Path, runs: int, hyperfine: str | None) -> None:
    db = f"sqlite:///{work}/small.sqlite"
    conf = work / "none.conf"
    conf.write_text("[nodemgr]\n")
    env = cmd_env(db, conf)
    populate(db, work / "small", endpoints=1, per_endpoint=4, dead=set(), latency=0.0,
             timeout=TIMEOUT)
    py = str(VENV_BIN / "python")
    cases = [
        ("python -c pass (baseline, same interpreter)", [py, "-c", "pass"]),
        ("python -c 'import dispatch, registry, fake'",
         [py, "-c", "import nodemgr.dispatch, nodemgr.plugins.registry, nodemgr.plugins.fake"]),
        ("nodels vm0001", ("nodels", ["vm0001"])),
        ("rpower vm0001 stat  (fake driver)", ("rpower", ["vm0001", "stat"])),
    ]
    how = f"hyperfine ({hyperfine})" if hyperfine else "perf_counter loop"
    t.title(f"a) cold start, median of {runs} runs (min in brackets; {how})")
    base = None
    for label, argv in cases:
        note = ""
        if isinstance(argv, tuple):
            argv, note = command(*argv, env)
            if argv is None:
                t.row(label, "n/a", "", note)
                continue
        if hyperfine:
            med, low = run_hyperfine(hyperfine, argv, env, runs)
        else:
            med, low = time_runs(argv, env, runs)
        if base is None:
            base = med
            t.row(label, f"{ms(med)} [{ms(low)}]", "1.00x")
            continue
        verdict = "" if label.startswith("python") else (
            "OK (target <=150 ms)" if med <= 0.150 else "OVER target 150 ms")
        t.row(label, f"{ms(med)} [{ms(low)}]", f"{med / base:.2f}x baseline",
              f"{verdict}; {note}" if note else verdict)
    # the same command without byte-code caches (what PYTHONDONTWRITEBYTECODE=1 costs when
    # no __pycache__ exists, e.g. a read-only install that was never compiled)
    argv, _ = command("rpower", ["vm0001", "stat"], env)
    if argv is not None:
        env2 = dict(env, PYTHONDONTWRITEBYTECODE="1",
                    PYTHONPYCACHEPREFIX=str(work / "empty-pycache"))
        med, low = time_runs(argv, env2, max(5, runs // 3))
        t.row("rpower vm0001 stat, no .pyc (compile every run)", f"{ms(med)} [{ms(low)}]",
              f"{med / base:.2f}x baseline", "info only")


def run_hyperfine(hyperfine: str, argv: list[str], env: dict[str, str],
                  runs: int) -> tuple[float, float]:
    import json
    import shlex

    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([hyperfine, "-N", "--warmup", "1", "--runs", str(runs), "--export-json",
                        out.name, shlex.join(argv)], env=env, capture_output=True, check=True)
        res = json.load(open(out.name))["results"][0]
    return res["median"], res["min"]


# -- b) fan-out --------------------------------------------------------------------------------


def fanout_targets(state_dir: Path, dead: int):
    from nodemgr.dispatch import Target
    from nodemgr.plugins.base import Endpoint, VmSpec
    from nodemgr.plugins.fake import seed_state

    targets, dead_nodes = [], set()
    for h in range(1, ENDPOINTS + 1):
        host = f"host{h:02d}"
        state = state_dir / f"{host}.json"
        names = [f"vm{(h - 1) * PER_ENDPOINT + i + 1:04d}" for i in range(PER_ENDPOINT)]
        if h == dead:
            uri = f"fake://{host}?hang=1"
            dead_nodes |= set(names)
        else:
            uri = f"fake://{host}?latency={LATENCY}&state={state}"
            seed_state(str(state), host, names, state="on")
        ep = Endpoint("fake", uri, host)
        targets += [Target(n, "fake", ep, VmSpec(n)) for n in names]
    return targets, dead_nodes


def fanout_direct(state_dir: Path, dead: int, maxp: int) -> dict:
    """dispatch.run over 1,000 VMs; times of completion (in the driver thread) and yield."""
    from nodemgr import dispatch

    targets, dead_nodes = fanout_targets(state_dir, dead)
    done_at: dict[str, float] = {}
    t0 = time.monotonic()

    def call(driver, group):
        for r in driver.power(dispatch.specs(group), "stat"):
            done_at[r.node] = time.monotonic() - t0
            yield r

    yielded = {}
    errors = []
    for r in dispatch.run(targets, call, maxp=maxp, timeout=TIMEOUT):
        yielded[r.node] = time.monotonic() - t0
        if not r.ok:
            errors.append(r)
    wall = time.monotonic() - t0
    healthy = [t.node for t in targets if t.node not in dead_nodes]
    return {
        "wall": wall,
        "errors": len(errors),
        "errors_are_dead": {r.node for r in errors} == dead_nodes,
        "error_text": errors[0].message if errors else "",
        "dead": len(dead_nodes),
        "healthy_done": max(done_at.get(n, wall) for n in healthy),
        "healthy_yield": max(yielded[n] for n in healthy),
        "n": len(targets),
    }


def fanout_cli(t: Table, work: Path, *, with_dead: bool) -> dict | None:
    """``rpower vms stat`` as a subprocess; each output line time-stamped as it arrives."""
    tag = "dead" if with_dead else "healthy"
    db = f"sqlite:///{work}/fan-{tag}.sqlite"
    conf = work / "none.conf"
    conf.write_text("[nodemgr]\n")
    env = cmd_env(db, conf)
    dead = {ENDPOINTS} if with_dead else set()
    try:
        vms, host_of = populate(db, work / f"fan-{tag}", endpoints=ENDPOINTS,
                                per_endpoint=PER_ENDPOINT, dead=dead, latency=LATENCY,
                                timeout=TIMEOUT)
    except Exception as exc:  # tables not ready yet
        return {"na": f"cannot populate tables: {type(exc).__name__}: {exc}"[:80]}
    argv, note = command("rpower", [vms[0], "stat"], env)
    if argv is None:
        return {"na": note}
    argv[-2] = "vms"
    stamps: dict[str, list] = {"out": [], "err": []}
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1)

    def reader(stream, key):
        for line in stream:
            stamps[key].append((time.monotonic() - t0, line.rstrip("\n")))

    readers = [threading.Thread(target=reader, args=(proc.stdout, "out")),
               threading.Thread(target=reader, args=(proc.stderr, "err"))]
    for r in readers:
        r.start()
    try:
        rc = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return {"na": "did not finish within 60 s"}
    for r in readers:
        r.join()
    wall = time.monotonic() - t0
    dead_nodes = {n for n in vms if host_of[n] == f"host{ENDPOINTS:02d}"} if with_dead else set()
    err_nodes = {line.split(":", 1)[0] for _, line in stamps["err"] if ": Error: " in line}
    ok_lines = [(ts, line) for ts, line in stamps["out"] if line.endswith(": on")]
    return {
        "wall": wall, "rc": rc, "lines": len(stamps["out"]) + len(stamps["err"]),
        "errors": len(err_nodes), "errors_are_dead": err_nodes == dead_nodes,
        "dead": len(dead_nodes), "ok": len(ok_lines),
        "healthy_yield": max((ts for ts, _ in ok_lines), default=None),
        "first_line": min((ts for ts, _ in stamps["out"] + stamps["err"]), default=None),
        "error_text": next((line for _, line in stamps["err"]), ""),
    }


def fanout(t: Table, work: Path, skip_sequential: bool) -> None:
    target = TIMEOUT + 2 * LATENCY
    n = ENDPOINTS * PER_ENDPOINT
    t.title(f"b) rpower stat fan-out: {n:,} VMs on {ENDPOINTS} endpoints, {LATENCY * 1000:.0f} ms "
            f"round trip, endpoint host{ENDPOINTS:02d} never answers, timeout {TIMEOUT} s")
    t.row("one round trip (RTT)", ms(LATENCY))
    t.row("target: timeout + 2 RTT", sec(target))

    d = fanout_direct(work / "direct", dead=ENDPOINTS, maxp=64)
    t.row("dispatch.run, maxp=64: wall", sec(d["wall"]), f"{d['wall'] / target:.2f}x target",
          f"{d['wall'] / LATENCY:.0f} RTT")
    t.row("  nodes reported as errors", str(d["errors"]),
          f"expected {d['dead']} (dead endpoint's)",
          "OK" if d["errors_are_dead"] else "MISMATCH")
    t.row("  error text", "", "", d["error_text"])
    t.row("  healthy nodes: last completed at", ms(d["healthy_done"]),
          f"{d['healthy_done'] / LATENCY:.1f} RTT")
    t.row("  healthy nodes: last yielded at", ms(d["healthy_yield"]),
          f"{d['healthy_yield'] / LATENCY:.1f} RTT", "dead block last in node order")

    m = fanout_direct(work / "middle", dead=ENDPOINTS // 2, maxp=64)
    t.row(f"dispatch.run, dead = host{ENDPOINTS // 2:02d} (middle): wall", sec(m["wall"]),
          f"{m['wall'] / target:.2f}x target")
    t.row("  healthy nodes: last completed at", ms(m["healthy_done"]),
          f"{m['healthy_done'] / LATENCY:.1f} RTT")
    t.row("  healthy nodes: last yielded at", ms(m["healthy_yield"]), "",
          "node order: later nodes wait for the dead block")

    for with_dead in (True, False):
        c = fanout_cli(t, work, with_dead=with_dead)
        label = "rpower vms stat (CLI)" + ("" if with_dead else ", no dead endpoint")
        if "na" in c:
            t.row(label, "n/a", "", c["na"])
            continue
        goal = target if with_dead else 2 * LATENCY
        t.row(label + ": wall", sec(c["wall"]), f"{c['wall'] / goal:.2f}x "
              + ("target" if with_dead else "2 RTT"), f"exit {c['rc']}, {c['lines']} lines")
        if with_dead:
            t.row("  nodes reported as errors", str(c["errors"]), f"expected {c['dead']}",
                  "OK" if c["errors_are_dead"] else "MISMATCH")
            t.row("  error line", "", "", c["error_text"][:70])
        t.row("  healthy nodes: last line printed at", ms(c["healthy_yield"]),
              f"{c['ok']} lines 'on'")

    if skip_sequential:
        est = (ENDPOINTS - 1) * 2 * LATENCY + TIMEOUT
        t.row("baseline: one endpoint at a time (COMPUTED)", sec(est),
              f"{est / d['wall']:.1f}x slower than maxp=64")
    else:
        s = fanout_direct(work / "seq", dead=ENDPOINTS, maxp=1)
        t.row("baseline: one endpoint at a time (maxp=1)", sec(s["wall"]),
              f"{s['wall'] / d['wall']:.1f}x slower than maxp=64",
              f"errors {s['errors']}; measured")
    t.row("baseline: naive loop with no per-call timeout", "never ends", "",
          "(blocks on the dead endpoint; xCAT #3998/#4192)")


# -- main ----------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=30, help="cold-start runs per command (>=20)")
    ap.add_argument("--quick", action="store_true",
                    help="fewer cold-start runs, sequential baseline computed not measured")
    args = ap.parse_args()
    runs = 10 if args.quick else max(20, args.runs)
    sys.path.insert(0, str(ROOT))
    t = Table()
    t.emit(f"nodemgr bench  {time.strftime('%Y-%m-%d %H:%M:%S')}  commit "
           + subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip())
    t.emit(f"machine: {platform.machine()}, nproc {os.cpu_count()}, "
           f"Python {platform.python_version()} ({sys.executable}), {platform.platform()}")
    t.emit("load average at start: " + " ".join(f"{x:.2f}" for x in os.getloadavg())
           + "  (other work on the machine makes the cold-start medians noisy)")
    hyperfine = shutil.which("hyperfine")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nodemgr-bench-") as tmp:
        work = Path(tmp)
        cold_start(t, work, runs, hyperfine)
        fanout(t, work, args.quick)
        # callback and TFTP first: nodeset's rounds create and then delete 90,000 files,
        # which slows every file creation on this ext4 for ~35 s afterwards
        import netboot_bench  # bench/netboot_bench.py: callback and TFTP rows

        netboot_bench.run(t, work)
        # the callback rounds replaced thousands of boot files: let ext4's window of
        # recently freed inodes pass before timing 30,000 creations against the raw baseline
        settle = int(os.environ.get("NODEMGR_BENCH_SETTLE", "40"))
        t.emit(f"\n(waiting {settle} s for the file system to settle before nodeset)")
        time.sleep(settle)
        import nodeset_bench  # bench/nodeset_bench.py

        nodeset_bench.run(t, work)
        import noderange_bench  # bench/noderange_bench.py

        noderange_bench.run(t, work)
        import scale_bench  # bench/scale_bench.py: key-sized work, bulk writes (issue 14)

        scale_bench.run(t, work, quick=args.quick)
        import tables_bench  # bench/tables_bench.py: per-size rows and slopes (issue 14)

        tables_bench.run(t, work)
    t.emit("")
    t.emit(f"bench took {time.monotonic() - t0:.0f} s; commands run with byte-code caches "
           "(PYTHONDONTWRITEBYTECODE unset for them)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.txt").write_text("\n".join(t.lines) + "\n")
    print(f"saved to {RESULTS / 'latest.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
