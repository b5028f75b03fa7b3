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


def _pg_url(schema: str = "nodemgr_bench") -> str | None:
    """A fresh schema *schema* in the test database of ``scripts/setup-host``, or None."""
    try:
        import psycopg

        with psycopg.connect("postgresql:///nodemgr_test", autocommit=True,
                             connect_timeout=3) as c:
            c.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            c.execute(f"CREATE SCHEMA {schema}")
    except Exception:
        return None
    return f"postgresql:///nodemgr_test?options=-csearch_path%3D{schema}"


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

    #: the largest auditlog.recid (the store's integer expression, which its index uses)
    MAX_RECID = "SELECT MAX(CAST(recid AS INTEGER)) FROM auditlog"

    def _boot(self, run, node: str) -> str:
        """Inside the transaction, after the token: the chain read, the boot file written
        under its temporary name (returned), chain/bootparams/status updated, the audit
        row. *run*: ``execute(sql, params)`` with ``?`` placeholders."""
        run("SELECT currstate FROM chain WHERE node = ?", (node,)).fetchone()
        tmp = f"{self.pxe}/.{node}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, self.BOOT)
        os.close(fd)
        run("UPDATE chain SET currstate = 'boot', currchain = NULL WHERE node = ?", (node,))
        run("UPDATE bootparams SET kernel = NULL, initrd = NULL, kcmdline = NULL "
            "WHERE node = ?", (node,))
        run("UPDATE nodelist SET status = 'booted', statustime = ? WHERE node = ?",
            (time.strftime("%m-%d-%Y %H:%M:%S"), node))
        recid = run(self.MAX_RECID, ()).fetchone()[0]
        run("INSERT INTO auditlog (recid, command, noderange, status) VALUES "
            "(?, 'installfinished', ?, 'allowed')", (str((recid or 0) + 1), node))
        return tmp

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
            tmp = self._boot(db.execute, node)
            db.execute("COMMIT")
            os.replace(tmp, f"{self.pxe}/{node}")
        finally:
            fcntl.flock(self.lock, fcntl.LOCK_UN)
        return 200


class ByHandPg(ByHand):
    """:class:`ByHand` on PostgreSQL (psycopg 3, autocommit outside the transaction): the
    same reads, the same transaction and boot file, the writers queued on the same
    session-level advisory lock as nodemgr's ``Store.writer_lock``."""

    MAX_RECID = ("SELECT MAX(CASE WHEN recid ~ '^[0-9]{1,18}$' THEN CAST(recid AS BIGINT) "
                 "END) FROM auditlog")

    def __init__(self, url: str, tftpdir: str) -> None:
        import zlib

        import psycopg

        self.db = psycopg.connect(url, autocommit=True)
        self.key = zlib.crc32(b"nodemgr writer") & 0x7FFFFFFF
        self.pxe = f"{tftpdir}/pxelinux.cfg"

    def __call__(self, node: str, ip: str, token: str) -> int:
        """Handle one callback; returns the HTTP status (200, 403, 404)."""
        import hashlib
        import hmac

        db = self.db
        row = db.execute("SELECT groups FROM nodelist WHERE node = %s", (node,)).fetchone()
        if row is None:
            return 404
        keys = [node, *(row[0] or "").split(",")]
        if (ip,) not in db.execute("SELECT ip FROM hosts WHERE node = ANY(%s)",
                                   (keys,)).fetchall():
            return 403
        for tab in ("noderes", "mac", "chain", "bootparams", "nodetype", "nodehm",
                    "hypervisor", "bootalias"):
            db.execute(f"SELECT * FROM {tab} WHERE node = ANY(%s)", (keys,)).fetchall()
        db.execute("SELECT * FROM site").fetchall()
        db.execute("SELECT * FROM policy").fetchall()
        db.execute("SELECT pg_advisory_lock(%s)", (self.key,))
        try:
            with db.transaction():
                th = db.execute("SELECT tokenhash FROM nodetoken WHERE node = %s",
                                (node,)).fetchone()
                if th is None or not hmac.compare_digest(
                        hashlib.sha256(token.encode()).hexdigest(), th[0]):
                    return 403
                db.execute("DELETE FROM nodetoken WHERE node = %s AND tokenhash = %s",
                           (node, th[0]))
                tmp = self._boot(lambda sql, p: db.execute(sql.replace("?", "%s"), p), node)
            os.replace(tmp, f"{self.pxe}/{node}")
        finally:
            db.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        return 200


def _serve(work: Path, url: str, conf: str, tag: str):
    """A gunicorn (4 sync workers) on a free loopback port for database *url* with settings
    *conf*; returns (process, port, log file) once it accepts connections."""
    port = _free_port()
    (work / "none.conf").write_text("[nodemgr]\n")
    env = dict(os.environ, NODEMGR_DB=url, NODEMGR_CONF=str(work / "none.conf"),
               NODEMGR_WEB_WORKERS="4", NODEMGR_WEB_BIND=f"127.0.0.1:{port}")
    log = open(work / f"gunicorn-{tag}.log", "w")
    proc = subprocess.Popen([str(VENV_BIN / "gunicorn"), "-c", conf, "--log-level", "warning"],
                            cwd=ROOT, env=env, stdout=log, stderr=log)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, port, log


def callback_vs_by_hand(t, work: Path, backend: str = "SQLite", rounds: int = ROUNDS) -> None:
    """Issue 14 item 5: the callback against the same work written by hand (:class:`ByHand`
    / :class:`ByHandPg`, ``bench/byhand.gunicorn.conf.py``) under the same gunicorn set-up,
    both servers up at once on their own databases and TFTP trees, each round re-armed by
    ``nodeset`` and run in alternating order. Target >= 0.8x by hand, 0 lost."""
    t.title(f"install-finished callback vs the same work BY HAND, {NODES:,} nodes, gunicorn "
            f"4 sync workers each, {backend}; {rounds} rounds (re-armed, order alternated)")
    sys.path.insert(0, str(ROOT))
    from nodemgr.netboot import nodeset
    from nodemgr.tables.resolve import Resolver
    from nodemgr.tables.store import Store
    from tests.web.provision import IMAGE, callback_path, define

    names = [f"cb{i:05d}" for i in range(NODES)]
    sides = {}
    for side in ("ours", "by hand"):
        tag = f"{backend}-{side.replace(' ', '')}-paired"
        if backend == "SQLite":
            url = f"sqlite:///{work}/callback-{tag}.sqlite"
        else:
            url = _pg_url(schema=f"nodemgr_bench_{side.replace(' ', '')}")
            if url is None:
                t.row("callback vs by hand", "n/a", "", "PostgreSQL (nodemgr_test) not reachable")
                return
        tftp = work / f"cb-tftpboot-{tag}"
        tftp.mkdir()
        store = Store(url)
        define(store, str(tftp), {n: (_ip(i), _mac(i)) for i, n in enumerate(names)})
        conf = "bench/byhand.gunicorn.conf.py" if side == "by hand" else "etc/gunicorn.conf.py"
        sides[side] = (store, *_serve(work, url, conf, tag))
    per_round: dict[str, list[tuple[float, int]]] = {s: [] for s in sides}
    codes_all: dict[str, dict[int, int]] = {s: {} for s in sides}
    try:
        for _store, _proc, port, _log in sides.values():
            asyncio.run(_load(port, [(_ip(i), "/healthz") for i in range(200)]))  # warm-up
        for rnd in range(rounds):
            jobs = {}
            for side, (store, _proc, _port, _log) in sides.items():
                res = nodeset.nodeset(store, Resolver(store), names, f"osimage={IMAGE}")
                if not all(r.ok for r in res):
                    t.row("callback vs by hand", "n/a", "", "nodeset failed: " + res[0].message)
                    return
                jobs[side] = [(_ip(i), callback_path(store, n)) for i, n in enumerate(names)]
            order = list(sides) if rnd % 2 == 0 else list(sides)[::-1]
            for side in order:
                store, _proc, port, _log = sides[side]
                wall, codes = asyncio.run(_load(port, jobs[side]))
                for code, k in codes.items():
                    codes_all[side][code] = codes_all[side].get(code, 0) + k
                booted = sum(1 for r in store.select("nodelist", columns=("node", "status"))
                             if r["status"] == "booted")
                per_round[side].append((NODES / wall, NODES - booted))
                store.update("nodelist", None, {"status": None})  # the next round's count
    finally:
        for store, proc, _port, log in sides.values():
            proc.terminate()
            proc.wait(15)
            log.close()
            store.close()
    ratios = [o[0] / h[0] for o, h in zip(per_round["ours"], per_round["by hand"], strict=True)]
    for side in ("by hand", "ours"):
        rates = [r[0] for r in per_round[side]]
        lost = sum(r[1] for r in per_round[side])
        label = ("by hand: same statements + boot file (ByHand" + ("Pg" if backend != "SQLite"
                 else "") + ")") if side == "by hand" else "nodemgr callback (nodemgr.web.app)"
        med = statistics.median(ratios)
        t.row(label, f"{statistics.median(rates):,.0f} req/s",
              "baseline" if side == "by hand" else
              f"{med:.2f}x by hand ({'OK' if med >= 0.8 and not lost else 'UNDER'}; "
              "target >= 0.8x)",
              f"{lost} lost; codes {dict(sorted(codes_all[side].items()))}; rounds "
              + "/".join(f"{x:,.0f}" for x in rates)
              + ("" if side == "by hand" else "; ratios " + "/".join(f"{x:.2f}" for x in ratios)))


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
             ("callback vs by hand", lambda: callback_vs_by_hand(t, work)),
             ("callback vs by hand, PostgreSQL",
              lambda: callback_vs_by_hand(t, work, "PostgreSQL")),
             ("tftp", lambda: tftp(t, work)))
    for name, part in parts:
        try:
            part()
        except Exception as exc:  # a broken part is reported, never crashes the bench
            t.row(name, "n/a", "", f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    import argparse
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench import RESULTS, Table  # bench/bench.py

    ap = argparse.ArgumentParser(description="callback vs by hand (issue 14 item 5)")
    ap.add_argument("--rounds", type=int, default=ROUNDS)
    ap.add_argument("--backend", choices=("SQLite", "PostgreSQL", "both"), default="both")
    args = ap.parse_args()
    tbl = Table()
    with tempfile.TemporaryDirectory(prefix="nodemgr-bench-") as tmp:
        for b in (("SQLite", "PostgreSQL") if args.backend == "both" else (args.backend,)):
            callback_vs_by_hand(tbl, Path(tmp), b, args.rounds)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "callback.txt").write_text("\n".join(tbl.lines) + "\n")
    print(f"saved to {RESULTS / 'callback.txt'}")
