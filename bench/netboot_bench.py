"""Bench rows for the install-finished callback and the TFTP server (loopback only).

c) callback throughput: 2,000 distinct nodes armed by ``nodeset osimage=``, each calling
   its own URL from its own address (127.0.x.y) against gunicorn with 4 sync workers, 16
   concurrent connections; baseline: ``/healthz`` on the same server with the same client.
   Several rounds (the nodes re-armed by ``nodeset`` before each; which of the two goes
   first alternates), medians reported with every round; the server's CPU time per request
   (gunicorn master + workers, from /proc) shows where the difference goes. Target ≥ 0.5×;
   lost updates = nodes not ``booted`` after a round. SQLite (the default), then the same
   on the PostgreSQL server of ``scripts/setup-host`` (fewer rounds) when it is reachable.
   Then, in one process, the CPU time of the callback's work (``finish``) against the same
   statements and boot file written by hand (:class:`ByHand`, :func:`callback_floor`), and
   the hand-written version served by the same gunicorn set-up: the ceiling of this
   machine for the same work.
d) TFTP: 50 concurrent ``curl`` clients fetching 1 MiB at blksize 1468 from
   ``nodemgr-tftpd`` vs Debian's ``in.tftpd`` (tftpd-hpa), servers timed in alternating
   rounds; median of 7 wall times each and of the per-round ratios. Target ratio ≤ 1.0.

Called from bench.py (``run(table, workdir)``); a missing tool shows as ``n/a``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
NODES = 2000
CONCURRENCY = 16
ROUNDS = int(os.environ.get("NODEMGR_BENCH_CALLBACK_ROUNDS", "3"))


def _free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mac(i: int) -> str:
    return "52:54:" + ":".join(f"{i >> s & 255:02x}" for s in (24, 16, 8, 0))


def _ip(i: int) -> str:
    return f"127.0.{10 + i // 250}.{1 + i % 250}"


async def _load(port: int, jobs: list[tuple[str, str]]) -> tuple[float, dict[int, int]]:
    """GET every (source address, path) with CONCURRENCY connections; returns wall time and
    a histogram of status codes (0 = failed)."""
    codes: dict[int, int] = {}
    queue = list(reversed(jobs))

    async def one(src: str, path: str) -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0))
        writer.write(f"GET {path} HTTP/1.1\r\nHost: mn\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        data = await reader.read()
        writer.close()
        return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0

    async def worker():
        while queue:
            src, path = queue.pop()
            try:
                code = await one(src, path)
            except OSError:
                code = 0
            codes[code] = codes.get(code, 0) + 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - t0, codes


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) of process *pid* and its children still running."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            f = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or f[1] == str(pid):  # f[1]: the parent's pid
            total += int(f[11]) + int(f[12])
    return total / os.sysconf("SC_CLK_TCK")


def _pg_url() -> str | None:
    """A fresh schema in the test database of ``scripts/setup-host``, or None."""
    try:
        import psycopg

        with psycopg.connect("postgresql:///nodemgr_test", autocommit=True,
                             connect_timeout=3) as c:
            c.execute("DROP SCHEMA IF EXISTS nodemgr_bench CASCADE")
            c.execute("CREATE SCHEMA nodemgr_bench")
    except Exception:
        return None
    return "postgresql:///nodemgr_test?options=-csearch_path%3Dnodemgr_bench"


def callback(t, work: Path, backend: str = "SQLite", by_hand: bool = False) -> None:
    """Callback rows (see the module docstring); *by_hand*: the workers run :class:`ByHand`
    instead of nodemgr's callback (``bench/byhand.gunicorn.conf.py``): the ceiling of this
    machine for the same work."""
    rounds = ROUNDS if backend == "SQLite" and not by_hand else max(1, ROUNDS // 2)
    t.title(f"install-finished callback{' WRITTEN BY HAND' if by_hand else ''}, {NODES:,} "
            f"nodes, gunicorn 4 sync workers, {backend}; {rounds} rounds (re-armed by "
            "nodeset each round, order alternated)")
    gunicorn = VENV_BIN / "gunicorn"
    if not gunicorn.exists():
        t.row("callback throughput", "n/a", "", "gunicorn not installed")
        return
    sys.path.insert(0, str(ROOT))
    from nodemgr.netboot import nodeset
    from nodemgr.tables.resolve import Resolver
    from nodemgr.tables.store import Store
    from tests.web.provision import IMAGE, callback_path, define

    suffix = "-by-hand" if by_hand else ""
    url = f"sqlite:///{work}/callback{suffix}.sqlite" if backend == "SQLite" else _pg_url()
    if url is None:
        t.row("callback throughput", "n/a", "", "PostgreSQL (nodemgr_test) not reachable")
        return
    tftp = work / f"cb-tftpboot-{backend}{suffix}"
    tftp.mkdir()
    store = Store(url)
    names = [f"cb{i:05d}" for i in range(NODES)]
    define(store, str(tftp), {n: (_ip(i), _mac(i)) for i, n in enumerate(names)})
    port = _free_port()
    (work / "none.conf").write_text("[nodemgr]\n")
    env = dict(os.environ, NODEMGR_DB=url, NODEMGR_CONF=str(work / "none.conf"),
               NODEMGR_WEB_WORKERS="4", NODEMGR_WEB_BIND=f"127.0.0.1:{port}")
    conf = "bench/byhand.gunicorn.conf.py" if by_hand else "etc/gunicorn.conf.py"
    log = open(work / f"gunicorn-{backend}{suffix}.log", "w")
    proc = subprocess.Popen([str(gunicorn), "-c", conf, "--log-level", "warning"],
                            cwd=ROOT, env=env, stdout=log, stderr=log)
    hello = [(_ip(i), "/healthz") for i in range(NODES)]
    per_round = []  # (hello rate, callback rate, hello CPU ms/req, callback CPU ms/req, lost)
    codes_all: dict[int, int] = {}
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        asyncio.run(_load(port, hello[:200]))                      # warm-up
        for rnd in range(rounds):
            res = nodeset.nodeset(store, Resolver(store), names, f"osimage={IMAGE}")
            if not all(r.ok for r in res):
                t.row("callback throughput", "n/a", "", "nodeset failed: " + res[0].message)
                return
            jobs = [(_ip(i), callback_path(store, n)) for i, n in enumerate(names)]
            got = {}
            for what in (("hello", "cb") if rnd % 2 == 0 else ("cb", "hello")):
                c0 = _cpu_of(proc.pid)
                wall, codes = asyncio.run(_load(port, hello if what == "hello" else jobs))
                got[what] = (NODES / wall, (_cpu_of(proc.pid) - c0) / NODES * 1000, codes)
            for code, k in got["cb"][2].items():
                codes_all[code] = codes_all.get(code, 0) + k
            booted = sum(1 for r in store.select("nodelist", columns=("node", "status"))
                         if r["status"] == "booted")
            per_round.append((got["hello"][0], got["cb"][0], got["hello"][1], got["cb"][1],
                              NODES - booted))
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()
        store.close()
    med = [statistics.median(col) for col in zip(*per_round, strict=True)]
    ratios = [c / h for h, c, *_ in per_round]
    t.row("GET /healthz (hello-world baseline), median", f"{med[0]:,.0f} req/s", "baseline",
          f"server CPU {med[2]:.2f} ms/req; rounds "
          + "/".join(f"{r[0]:,.0f}" for r in per_round))
    t.row("GET /install-finished/<node>?token=.., median", f"{med[1]:,.0f} req/s",
          f"{statistics.median(ratios):.2f}× baseline", f"target ≥ 0.5×; server CPU "
          f"{med[3]:.2f} ms/req; rounds " + "/".join(f"{r[1]:,.0f}" for r in per_round))
    lost = sum(r[4] for r in per_round)
    t.row("  answers / lost updates, all rounds", f"{codes_all.get(200, 0)} × 200",
          f"{lost} lost", f"codes {dict(sorted(codes_all.items()))}")


class ByHand:
    """The install-finished callback's work written by hand with ``sqlite3``: the same
    reads (the node's groups, its address, the rows ``nodeset next`` reads, site, policy),
    the same transaction (token checked and deleted, chain re-read, chain, bootparams,
    status, an audit row) and the same boot file (temporary file + rename), with no
    resolver, planner, policy engine or store layer — a floor for what ours costs.
    Only for nodes armed as the bench arms them (pxelinux, next state ``boot``)."""

    BOOT = b"#boot\nDEFAULT xCAT\nLABEL xCAT\n LOCALBOOT 0\n"

    def __init__(self, db_path: str, tftpdir: str) -> None:
        self.db = sqlite3.connect(db_path, isolation_level=None)
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.lock = os.open(db_path + ".writer.lock", os.O_RDWR | os.O_CREAT)
        self.pxe = f"{tftpdir}/pxelinux.cfg"

    def __call__(self, node: str, ip: str, token: str) -> int:
        """Handle one callback; returns the HTTP status (200, 403, 404)."""
        import fcntl
        import hashlib
        import hmac

        db = self.db
        row = db.execute("SELECT groups FROM nodelist WHERE node = ?", (node,)).fetchone()
        if row is None:
            return 404
        keys = [node, *(row[0] or "").split(",")]
        marks = ",".join("?" * len(keys))
        if (ip,) not in db.execute(f"SELECT ip FROM hosts WHERE node IN ({marks})",
                                   keys).fetchall():
            return 403
        for tab in ("noderes", "mac", "chain", "bootparams", "nodetype", "nodehm",
                    "hypervisor", "bootalias"):
            db.execute(f"SELECT * FROM {tab} WHERE node IN ({marks})", keys).fetchall()
        db.execute("SELECT * FROM site").fetchall()
        db.execute("SELECT * FROM policy").fetchall()
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        try:
            db.execute("BEGIN IMMEDIATE")
            th = db.execute("SELECT tokenhash FROM nodetoken WHERE node = ?", (node,)).fetchone()
            if th is None or not hmac.compare_digest(
                    hashlib.sha256(token.encode()).hexdigest(), th[0]):
                db.execute("ROLLBACK")
                return 403
            db.execute("DELETE FROM nodetoken WHERE node = ? AND tokenhash = ?", (node, th[0]))
            db.execute("SELECT currstate FROM chain WHERE node = ?", (node,)).fetchone()
            tmp = f"{self.pxe}/.{node}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, self.BOOT)
            os.close(fd)
            db.execute("UPDATE chain SET currstate = 'boot', currchain = NULL WHERE node = ?",
                       (node,))
            db.execute("UPDATE bootparams SET kernel = NULL, initrd = NULL, kcmdline = NULL "
                       "WHERE node = ?", (node,))
            db.execute("UPDATE nodelist SET status = 'booted', statustime = ? WHERE node = ?",
                       (time.strftime("%m-%d-%Y %H:%M:%S"), node))
            recid = db.execute("SELECT MAX(CAST(recid AS INTEGER)) FROM auditlog").fetchone()[0]
            db.execute("INSERT INTO auditlog (recid, command, noderange, status) VALUES "
                       "(?, 'installfinished', ?, 'allowed')", (str((recid or 0) + 1), node))
            db.execute("COMMIT")
            os.replace(tmp, f"{self.pxe}/{node}")
        finally:
            fcntl.flock(self.lock, fcntl.LOCK_UN)
        return 200


def callback_floor(t, work: Path, n: int = 1000) -> None:
    """In-process CPU time of one callback's work: :func:`nodemgr.web.callback.finish`
    against :class:`ByHand` — how much of the gap to ``/healthz`` is our layers."""
    from urllib.parse import parse_qs, urlsplit

    sys.path.insert(0, str(ROOT))
    from nodemgr.netboot import nodeset
    from nodemgr.tables.resolve import Resolver
    from nodemgr.tables.store import Store
    from nodemgr.web import callback as cb
    from tests.web.provision import IMAGE, callback_path, define

    t.title(f"callback work in-process, {n:,} callbacks each, SQLite + TFTP tree on the disk")
    url = f"sqlite:///{work}/floor.sqlite"
    store = Store(url)
    names = [f"fl{i:05d}" for i in range(2 * n)]
    define(store, str(work / "floor-tftp"), {x: (_ip(i), _mac(i)) for i, x in enumerate(names)})
    nodeset.nodeset(store, Resolver(store), names, f"osimage={IMAGE}")
    jobs = [(x, _ip(i), parse_qs(urlsplit(callback_path(store, x)).query)["token"][0])
            for i, x in enumerate(names)]
    c0 = time.process_time()
    for node, ip, tok in jobs[:n]:
        a = cb.finish(store, node, kind="general", remote_addr=ip, forwarded_for=None,
                      token=tok)
        assert a.status == 200, a
    ours = (time.process_time() - c0) / n
    store.close()
    by_hand = ByHand(f"{work}/floor.sqlite", str(work / "floor-tftp"))
    c0 = time.process_time()
    for node, ip, tok in jobs[n:]:
        assert by_hand(node, ip, tok) == 200
    floor = (time.process_time() - c0) / n
    by_hand.db.close()
    t.row("by hand: same statements + boot file, raw sqlite3", f"{floor * 1000:.2f} ms CPU",
          "baseline", "per callback, one process")
    t.row("nodemgr.web.callback.finish", f"{ours * 1000:.2f} ms CPU",
          f"{ours / floor:.1f}× by hand", "resolver, planner, policy, store layer")


def _wall(port: int, clients: int) -> float:
    """Seconds until *clients* concurrent curl processes fetched /big at blksize 1468.

    Raises:
        RuntimeError: a transfer failed (curl exit status not 0).
    """
    t0 = time.perf_counter()
    procs = [subprocess.Popen(["curl", "-s", "--tftp-blksize", "1468", "-o", "/dev/null",
                               f"tftp://127.0.0.1:{port}/big"]) for _ in range(clients)]
    bad = sum(p.wait() != 0 for p in procs)
    wall = time.perf_counter() - t0
    if bad:
        raise RuntimeError(f"{bad} curl transfers failed")
    return wall


def tftp(t, work: Path, clients: int = 50, rounds: int = 7) -> None:
    """TFTP rows: in.tftpd and nodemgr-tftpd (1 worker, default workers) all run at once
    on their own ports; each round times every server once, in rotating order, so load
    from neighbours on this shared machine falls on all of them alike. Reported: median
    wall time per server and the median of the per-round ratios to in.tftpd."""
    t.title(f"TFTP, {clients} concurrent curl clients x 1 MiB, blksize 1468")
    intftpd = shutil.which("in.tftpd") or "/usr/sbin/in.tftpd"
    if not shutil.which("curl") or not os.path.exists(intftpd):
        t.row("TFTP wall time", "n/a", "", "curl or tftpd-hpa (in.tftpd) not installed")
        return
    root = work / "tftp-root"
    root.mkdir()
    (root / "big").write_bytes(os.urandom(1 << 20))
    default = min(8, 2 * (os.cpu_count() or 1))   # nodemgr-tftpd's default --workers
    names = ["in.tftpd", "nodemgr-tftpd 1 worker", f"nodemgr-tftpd {default} workers"]
    ports, procs = {}, []
    try:
        for name in names:
            port = ports[name] = _free_port(socket.SOCK_DGRAM)
            if name == "in.tftpd":
                cmd = [intftpd, "-L", "-u", "root", "-s", "-a", f"127.0.0.1:{port}", str(root)]
            else:
                cmd = [sys.executable, "-m", "nodemgr.cli.tftpcmd", "--root", str(root),
                       "--address", "127.0.0.1", "--port", str(port), "--quiet",
                       "--workers", name.split()[1]]
            procs.append(subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.DEVNULL))
        time.sleep(0.5)
        for name in names:
            _wall(ports[name], clients)                          # warm-up
        walls: dict[str, list[float]] = {name: [] for name in names}
        for r in range(rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                walls[name].append(_wall(ports[name], clients))
    except RuntimeError as exc:
        t.row("TFTP wall time", "n/a", "", str(exc))
        return
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)
    base = walls["in.tftpd"]
    t.row(f"in.tftpd (tftpd-hpa), median of {rounds}", f"{statistics.median(base):.2f} s",
          "baseline", "rounds " + " ".join(f"{w:.2f}" for w in base))
    for name in names[1:]:
        ratios = [ours / b for ours, b in zip(walls[name], base, strict=True)]
        t.row(f"{name}, median of {rounds}", f"{statistics.median(walls[name]):.2f} s",
              f"{statistics.median(ratios):.2f}× in.tftpd", "target ≤ 1.0; per round "
              + " ".join(f"{x:.2f}" for x in ratios))


def run(t, work: Path) -> None:
    """Add the callback and TFTP rows to table *t*."""
    parts = (("callback", lambda: callback(t, work)),
             ("callback, PostgreSQL", lambda: callback(t, work, "PostgreSQL")),
             ("callback work in-process", lambda: callback_floor(t, work)),
             ("callback by hand", lambda: callback(t, work, by_hand=True)),
             ("tftp", lambda: tftp(t, work)))
    for name, part in parts:
        try:
            part()
        except Exception as exc:  # a broken part is reported, never crashes the bench
            t.row(name, "n/a", "", f"{type(exc).__name__}: {exc}")
