"""Bench rows for the install-finished callback and the TFTP server (loopback only).

c) callback throughput: 2,000 distinct nodes armed by ``nodeset osimage=`` (SQLite), each
   calling its own URL from its own address (127.0.x.y) against gunicorn with 4 sync
   workers, 16 concurrent connections; baseline: ``/healthz`` on the same server with the
   same client. Target ≥ 0.5×; lost updates = nodes not ``booted`` afterwards.
d) TFTP: 50 concurrent ``curl`` clients fetching 1 MiB at blksize 1468 from
   ``nodemgr-tftpd`` vs Debian's ``in.tftpd`` (tftpd-hpa); median of 3 wall times each.
   Target ratio ≤ 1.0.

Called from bench.py (``run(table, workdir)``); a missing tool shows as ``n/a``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
NODES = 2000
CONCURRENCY = 16


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


def callback(t, work: Path) -> None:
    t.title(f"install-finished callback, {NODES:,} nodes, gunicorn 4 sync workers, SQLite")
    gunicorn = VENV_BIN / "gunicorn"
    if not gunicorn.exists():
        t.row("callback throughput", "n/a", "", "gunicorn not installed")
        return
    sys.path.insert(0, str(ROOT))
    from nodemgr.netboot import nodeset
    from nodemgr.tables.resolve import Resolver
    from nodemgr.tables.store import Store
    from tests.web.provision import IMAGE, callback_path, define

    url = f"sqlite:///{work}/callback.sqlite"
    tftp = work / "cb-tftpboot"
    tftp.mkdir()
    store = Store(url)
    names = [f"cb{i:05d}" for i in range(NODES)]
    define(store, str(tftp), {n: (_ip(i), _mac(i)) for i, n in enumerate(names)})
    res = nodeset.nodeset(store, Resolver(store), names, f"osimage={IMAGE}")
    if not all(r.ok for r in res):
        t.row("callback throughput", "n/a", "", "nodeset failed: " + res[0].message)
        return
    jobs = [(_ip(i), callback_path(store, n)) for i, n in enumerate(names)]
    port = _free_port()
    (work / "none.conf").write_text("[nodemgr]\n")
    env = dict(os.environ, NODEMGR_DB=url, NODEMGR_CONF=str(work / "none.conf"),
               NODEMGR_WEB_WORKERS="4", NODEMGR_WEB_BIND=f"127.0.0.1:{port}")
    log = open(work / "gunicorn.log", "w")
    proc = subprocess.Popen([str(gunicorn), "-c", "etc/gunicorn.conf.py", "--log-level",
                             "warning"], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        hello = [(_ip(i), "/healthz") for i in range(NODES)]
        asyncio.run(_load(port, hello[:200]))                      # warm-up
        h_wall, h_codes = asyncio.run(_load(port, hello))
        c_wall, c_codes = asyncio.run(_load(port, jobs))
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()
    booted = sum(1 for r in store.select("nodelist", columns=("node", "status"))
                 if r["status"] == "booted")
    h_rate, c_rate = NODES / h_wall, NODES / c_wall
    t.row("GET /healthz (hello-world baseline)", f"{h_rate:,.0f} req/s",
          "baseline", f"{h_codes.get(200, 0)} × 200")
    t.row("GET /install-finished/<node>?token=.. (distinct nodes)", f"{c_rate:,.0f} req/s",
          f"{c_rate / h_rate:.2f}× baseline", "target ≥ 0.5×")
    t.row("  answers / lost updates", f"{c_codes.get(200, 0)} × 200",
          f"{NODES - booted} lost", f"codes {dict(sorted(c_codes.items()))}")
    store.close()


def _wall(port: int, clients: int) -> float:
    t0 = time.perf_counter()
    procs = [subprocess.Popen(["curl", "-s", "--tftp-blksize", "1468", "-o", "/dev/null",
                               f"tftp://127.0.0.1:{port}/big"]) for _ in range(clients)]
    bad = sum(p.wait() != 0 for p in procs)
    wall = time.perf_counter() - t0
    if bad:
        raise RuntimeError(f"{bad} curl transfers failed")
    return wall


def tftp(t, work: Path, clients: int = 50) -> None:
    t.title(f"TFTP, {clients} concurrent curl clients x 1 MiB, blksize 1468")
    intftpd = shutil.which("in.tftpd") or "/usr/sbin/in.tftpd"
    if not shutil.which("curl") or not os.path.exists(intftpd):
        t.row("TFTP wall time", "n/a", "", "curl or tftpd-hpa (in.tftpd) not installed")
        return
    root = work / "tftp-root"
    root.mkdir()
    (root / "big").write_bytes(os.urandom(1 << 20))
    results = {}
    for name in ("in.tftpd", "nodemgr-tftpd 1 worker", "nodemgr-tftpd 4 workers"):
        port = _free_port(socket.SOCK_DGRAM)
        if name == "in.tftpd":
            cmd = [intftpd, "-L", "-u", "root", "-s", "-a", f"127.0.0.1:{port}", str(root)]
        else:
            cmd = [sys.executable, "-m", "nodemgr.cli.tftpcmd", "--root", str(root),
                   "--address", "127.0.0.1", "--port", str(port), "--quiet",
                   "--workers", name.split()[1]]
        proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            _wall(port, 2)
            results[name] = statistics.median(_wall(port, clients) for _ in range(3))
        except RuntimeError as exc:
            results[name] = None
            t.row(name, "n/a", "", str(exc))
        finally:
            proc.terminate()
            proc.wait(10)
    base = results.get("in.tftpd")
    t.row("in.tftpd (tftpd-hpa), median of 3", f"{base:.2f} s" if base else "n/a", "baseline")
    for name in ("nodemgr-tftpd 1 worker", "nodemgr-tftpd 4 workers"):
        ours = results.get(name)
        if ours and base:
            t.row(f"{name}, median of 3", f"{ours:.2f} s", f"{ours / base:.2f}× in.tftpd",
                  "target ≤ 1.0")


def run(t, work: Path) -> None:
    """Add the callback and TFTP rows to table *t*."""
    for part in (callback, tftp):
        try:
            part(t, work)
        except Exception as exc:  # a broken part is reported, never crashes the bench
            t.row(part.__name__, "n/a", "", f"{type(exc).__name__}: {exc}")
