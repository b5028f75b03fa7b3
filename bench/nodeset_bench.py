"""Bench rows for nodeset: ``nodeset <N nodes> osimage=<img>`` (library call, SQLite)
against the hand-written floor of the same work in the same run (issue 14 item 4: ratio
<= 2 on tmpfs at 10,000 and 50,000 nodes).

The floor writes exactly what nodeset wrote (checked, not assumed), with the content
precomputed: the table rows nodeset changed (captured by comparing its database before and
after: chain, nodetype, bootparams, nodelist status, nodetoken, bootalias), written into a
copy of the database nodeset started from in one transaction with one ``executemany`` per
table (the same upsert statement as nodemgr's store on SQLite); then every node file
through a temporary file + rename, every alias as a temporary symlink + rename, aliases
first, into an empty directory like nodeset's first run. Each round compares the two trees
(names, symlink targets, file sizes) and the two databases, and fails if they differ.
Nodeset's extra work beyond the floor: reading and resolving the tables, rendering, tokens,
the crash-safety bookkeeping (``bootpending`` rows committed with the tables and deleted
after the renames, staged temporary names, the tree's marker).

Creating files is itself noisy on a disk: on this journal-less ext4, for ~35 s after many
files were deleted (by anyone), each new inode costs a scan past the recently freed ones
(``perf``: ``ext4_create``/``ext4_symlink`` -> ``recently_deleted``), so a single disk
pair can be off by 5x in either direction; the tmpfs rows (``/dev/shm``) are the ones the
target is about.

The machine is also shared (other test runs, QEMU), so the bench runs ``ROUNDS`` rounds
(``$NODEMGR_BENCH_NODESET_ROUNDS``, default 3), each with a fresh database and fresh empty
directories, alternating which of the two goes first, and reports medians and the median
of the per-round ratios (every round shown), plus the median ratio of process CPU time
(user + system), which other processes on the machine disturb less than wall time.
Trees are deleted only at the end (a deletion would slow the next round's creations) and
the disk is synced before each timed phase.
This module must never write outside the bench's work directory.

Run alone: ``python bench/nodeset_bench.py [--sizes 10000,50000] [--tmpfs-only]``
(``--answers``: the answer-file rows alone).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import statistics
import time
from pathlib import Path

N = 10_000
ROUNDS = int(os.environ.get("NODEMGR_BENCH_NODESET_ROUNDS", "3"))
#: an OS family without an answer file: boot files only (the raw baseline's subject)
IMG = "linux8.6-x86_64-install-compute"
#: RHEL 8: the shipped kickstart, one answer file per node (the answer-file rows)
IMG_KS = "rhels8.6-x86_64-install-compute"
ROOT_HASH = "$6$benchsalt$" + "x" * 86


def _nodes() -> list[str]:
    return [f"n{i:05d}" for i in range(N)]


def _setup(work: Path, url: str | None = None):
    """Tables for N nodes under *work* (SQLite ``nodeset.sqlite`` unless *url*)."""
    from nodemgr.netboot import mknb
    from nodemgr.tables.resolve import Resolver
    from nodemgr.tables.store import Store

    store = Store(url or f"sqlite:///{work}/nodeset.sqlite")
    mknb.install_postscripts(str(work / "install"))
    with store.transaction():
        store.upsert("site", {"key": "tftpdir"}, {"value": str(work / "tftp")})
        store.upsert("site", {"key": "installdir"}, {"value": str(work / "install")})
        store.upsert("site", {"key": "master"}, {"value": "10.0.0.1"})
        store.upsert("passwd", {"key": "system", "username": "root"}, {"password": ROOT_HASH})
        for img, osvers in ((IMG, "linux8.6"), (IMG_KS, "rhels8.6")):
            store.insert("osimage", {"imagename": img, "provmethod": "install",
                                     "osvers": osvers, "osarch": "x86_64",
                                     "profile": "compute"})
            store.insert("boottarget", {
                "bprofile": f"{osvers}-x86_64", "kernel": f"xcat/{osvers}/x86_64/vmlinuz",
                "initrd": f"xcat/{osvers}/x86_64/initrd.img",
                "kcmdline": f"inst.repo=http://!myipfn!/install/{osvers}/x86_64"})
        names = _nodes()
        store.upsert_many("nodelist", ({"node": n, "groups": "compute,all"} for n in names))
        store.upsert_many("mac", ({"node": n, "mac": f"52:54:00:{i >> 16 & 255:02x}:"
                                   f"{i >> 8 & 255:02x}:{i & 255:02x}"}
                                  for i, n in enumerate(names)))
        store.upsert_many("hosts", ({"node": n, "ip": f"10.{1 + (i >> 16)}.{i >> 8 & 255}."
                                     f"{i & 255}"} for i, n in enumerate(names)))
    return store, Resolver(store)


def _db_path(work: Path) -> Path:
    return work / "nodeset.sqlite"


def _snapshot(path: Path) -> dict[str, tuple[list[str], set[tuple]]]:
    """table -> (columns, set of rows) of the SQLite database *path*."""
    con = sqlite3.connect(path)
    try:
        out = {}
        for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            cols = [r[1] for r in con.execute(f'PRAGMA table_info("{name}")')]
            out[name] = (cols, set(con.execute(f'SELECT * FROM "{name}"')))
        return out
    finally:
        con.close()


def _row_changes(before, after) -> list[tuple[str, list[str], list[tuple], list[tuple]]]:
    """What nodeset changed in the tables: (table, columns, rows written, keys of rows
    removed) per table whose rows differ (*before* / *after*: :func:`_snapshot`)."""
    from nodemgr.tables.schema import table

    out = []
    for name, (cols, rows) in after.items():
        old = before.get(name, (cols, set()))[1]
        if rows == old:
            continue
        kidx = [cols.index(k) for k in table(name).keys]
        written = sorted(rows - old)
        kept = {tuple(r[i] for i in kidx) for r in rows}
        removed = sorted({tuple(r[i] for i in kidx) for r in old - rows} - kept)
        out.append((name, cols, written, removed))
    return out


def _raw_rows(db: Path, changes) -> None:
    """The same rows written by hand: one transaction, one ``executemany`` per table
    (the upsert nodemgr's store uses on SQLite), the values precomputed."""
    from nodemgr.tables.schema import table

    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("BEGIN IMMEDIATE")
    for name, cols, written, removed in changes:
        keys = table(name).keys
        q = ", ".join(f'"{c}"' for c in cols)
        sets = ", ".join(f'"{c}" = excluded."{c}"' for c in cols if c not in keys)
        action = f"DO UPDATE SET {sets}" if sets else "DO NOTHING"
        con.executemany(f'INSERT INTO "{name}" ({q}) VALUES ({", ".join("?" * len(cols))}) '
                        f'ON CONFLICT ({", ".join(keys)}) {action}', written)
        if removed:
            con.executemany(f'DELETE FROM "{name}" WHERE '
                            + " AND ".join(f'"{k}" = ?' for k in keys), removed)
    con.execute("COMMIT")
    con.close()


def _raw(root: Path, texts: dict[str, str], aliases: dict[str, list[str]],
         db: Path | None = None, changes=()) -> tuple[float, float]:
    """Write *texts* (node -> file text) and *aliases* (node -> alias names) into the new
    directory *root* the plain way, after the table rows *changes* (:func:`_row_changes`)
    into database *db* (a copy of the tables nodeset started from); returns (wall
    seconds, process CPU seconds)."""
    root.mkdir(parents=True)
    c0, t0 = time.process_time(), time.perf_counter()
    if db is not None:
        _raw_rows(db, changes)
    for node, text in texts.items():
        for a in aliases.get(node, ()):
            tmp = root / f".{a}.tmp"
            os.symlink(node, tmp)
            os.replace(tmp, root / a)
        tmp = root / f".{node}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, text.encode())
        os.close(fd)
        os.replace(tmp, root / node)
    return time.perf_counter() - t0, time.process_time() - c0


def _manifest(d: Path) -> dict[str, tuple[str, str | int]]:
    """name -> ("link", target) or ("file", size) for every entry of *d*."""
    out: dict[str, tuple[str, str | int]] = {}
    for e in os.scandir(d):
        out[e.name] = (("link", os.readlink(e.path)) if e.is_symlink()
                       else ("file", e.stat(follow_symlinks=False).st_size))
    return out


def _capture(d: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    texts = {n: (d / n).read_text() for n in _nodes()}
    aliases: dict[str, list[str]] = {}
    for e in os.scandir(d):
        if e.is_symlink():
            aliases.setdefault(os.readlink(e.path), []).append(e.name)
    return texts, aliases


def _nodeset_osimage(work: Path, img: str = IMG, pre: Path | None = None
                     ) -> tuple[tuple[float, float], object, object]:
    """Set up *work* and run ``nodeset osimage=<img>`` on it, timed; *pre*: where to copy
    the database as it was before (the raw baseline's starting tables)."""
    from nodemgr.netboot.nodeset import nodeset

    store, res = _setup(work)
    if pre is not None:
        src, dst = sqlite3.connect(_db_path(work)), sqlite3.connect(pre)
        src.backup(dst)
        src.close()
        dst.close()
    os.sync()
    c0, t0 = time.process_time(), time.perf_counter()
    results = nodeset(store, res, _nodes(), f"osimage={img}")
    elapsed = time.perf_counter() - t0, time.process_time() - c0
    bad = [r for r in results if not r.ok]
    assert not bad, bad[:3]
    return elapsed, store, res


def _copy_db(work: Path, pre: Path) -> None:
    src, dst = sqlite3.connect(_db_path(work)), sqlite3.connect(pre)
    src.backup(dst)
    src.close()
    dst.close()


def _rounds(work: Path):
    """ROUNDS alternating (nodeset, raw) pairs under *work*; returns (raws, ours, files,
    links, store, resolver) with timings as (wall s, CPU s) and the last round's store.

    The raw side writes the same files and the same table rows (what nodeset changed,
    captured from its database) into a copy of the database nodeset started from. Checked
    each round: the same tree (names, link targets, sizes) and the same row changes; in a
    round where the raw side runs second, the very same tables as nodeset's."""
    captured = None
    raws: list[tuple[float, float]] = []
    ours: list[tuple[float, float]] = []
    files = 0
    store = res = None
    for rnd in range(ROUNDS):
        w = work / f"nodeset-r{rnd}"
        w.mkdir(parents=True)
        pre = w / "raw.sqlite"
        raw_first = rnd % 2 == 1 and captured is not None
        if raw_first:  # the same set-up, copied, then redone for nodeset
            _setup(w)[0].close()
            _copy_db(w, pre)
            for f in w.glob("nodeset.sqlite*"):
                f.unlink()
            start = _snapshot(pre)
            os.sync()  # start each timed phase with dirty data written back
            raw = _raw(w / "raw", captured[0], captured[1], pre, captured[2])
            assert _row_changes(start, _snapshot(pre)) == captured[2], "raw rows differ"
        if store is not None:
            store.close()
        elapsed, store, res = _nodeset_osimage(w, pre=None if raw_first else pre)
        d = w / "tftp" / "pxelinux.cfg"
        after = _snapshot(_db_path(w))
        texts, aliases = _capture(d)
        if not raw_first:
            captured = (texts, aliases, _row_changes(_snapshot(pre), after))
            os.sync()
            raw = _raw(w / "raw", texts, aliases, pre, captured[2])
            assert _snapshot(pre) == after, "raw baseline does not write the same rows"
        mine, theirs = _manifest(d), _manifest(w / "raw")
        assert mine == theirs, "raw baseline does not write the same files as nodeset"
        files = len(mine)
        raws.append(raw)
        ours.append(elapsed)
    links = sum(len(v) for v in captured[1].values())
    return raws, ours, files, links, store, res


def _report(t, where: str, raws, ours, files: int, links: int) -> float:
    """Rows for one set of rounds; returns the median raw wall time."""
    rw, us = [r[0] for r in raws], [o[0] for o in ours]
    ratios = [o / r for o, r in zip(us, rw, strict=True)]
    cpu = [o[1] / r[1] for o, r in zip(ours, raws, strict=True)]
    raw_med, ours_med = statistics.median(rw), statistics.median(us)
    t.row(f"{where}: floor, rows + {files - links:,} files + {links:,} symlinks",
          f"{raw_med:.2f} s", "baseline", "rounds " + "/".join(f"{x:.2f}" for x in rw) + " s")
    t.row(f"{where}: nodeset (tables, tokens, render, files)", f"{ours_med:.2f} s",
          f"{statistics.median(ratios):.2f}x floor (target <= 2x)",
          ("OK; " if statistics.median(ratios) <= 2 else "OVER; ")
          + "rounds " + "/".join(f"{x:.2f}" for x in us) + " s; ratios "
          + "/".join(f"{x:.2f}" for x in ratios) + "; CPU-time ratio "
          + f"{statistics.median(cpu):.2f}x; {N / ours_med:,.0f} nodes/s")
    return raw_med


#: tmpfs sizes of the floor rows (issue 14 item 4)
SIZES = (10_000, 50_000)


def run(t, work: Path, sizes=SIZES, disk: bool = True) -> None:
    """Add the nodeset rows to bench table *t* (``bench.Table``): 10,000 nodes on the
    bench's work directory (a disk; with *disk*), then each of *sizes* on tmpfs
    (``/dev/shm``, when writable), where no inode-allocator noise hides nodeset's own
    costs, then the answer-file rows."""
    import tempfile

    from nodemgr.netboot.nodeset import nodeset

    global N
    if disk:
        N = 10_000
        t.title(f"nodeset osimage= for {N:,} nodes on the disk (pxelinux, 2 aliases each, "
                f"SQLite; median of {ROUNDS} rounds, order alternated)")
        raws, ours, files, links, store, res = _rounds(work)
        raw_med = _report(t, "disk", raws, ours, files, links)
        t0 = time.perf_counter()
        nodeset(store, res, _nodes(), "next")
        nxt = time.perf_counter() - t0
        t.row("disk: nodeset next (-> boot, local-boot files)", f"{nxt:.2f} s",
              f"{nxt / raw_med:.2f}x raw", f"{N / nxt:,.0f} nodes/s")
        store.close()
        for rnd in range(ROUNDS):  # removed at the end: deletions slow later creations
            shutil.rmtree(work / f"nodeset-r{rnd}", ignore_errors=True)
    if not os.access("/dev/shm", os.W_OK):
        t.row("tmpfs rows", "n/a", "", "/dev/shm not writable")
        return
    for n in sizes:
        N = n
        t.title(f"nodeset osimage= for {N:,} nodes on tmpfs vs the hand-written floor (same "
                f"files and rows; median of {ROUNDS} rounds, order alternated)")
        with tempfile.TemporaryDirectory(prefix="nodemgr-bench-", dir="/dev/shm") as tmp:
            raws, ours, files, links, store, _ = _rounds(Path(tmp))
            store.close()
            _report(t, f"tmpfs {N // 1000}k", raws, ours, files, links)
    N = 10_000
    with tempfile.TemporaryDirectory(prefix="nodemgr-bench-", dir="/dev/shm") as tmp:
        answer_rows(t, Path(tmp))


def answer_rows(t, work: Path) -> None:
    """``nodeset osimage=`` for N nodes with answer files (RHEL 8: the shipped kickstart,
    one 0600 file per node) against the same nodeset of an image without them, ROUNDS
    alternating pairs, fresh database and directories each. Target: ratio <= 1.5."""
    plain: list[float] = []
    ks: list[float] = []
    for rnd in range(ROUNDS):
        order = (IMG, IMG_KS) if rnd % 2 == 0 else (IMG_KS, IMG)
        for img in order:
            w = work / f"answers-r{rnd}-{img}"
            w.mkdir(parents=True)
            (elapsed, _cpu), store, _ = _nodeset_osimage(w, img)
            if img == IMG_KS:
                files = os.listdir(w / "install" / "autoinst")
                assert len(files) == N, len(files)
                ks.append(elapsed)
            else:
                plain.append(elapsed)
            store.close()
    ratios = [k / p for k, p in zip(ks, plain, strict=True)]
    t.row(f"tmpfs: nodeset without answer files ({N:,} nodes)",
          f"{statistics.median(plain):.2f} s", "baseline",
          "rounds " + "/".join(f"{x:.2f}" for x in plain) + " s")
    t.row("tmpfs: nodeset with answer files (kickstart per node, 0600)",
          f"{statistics.median(ks):.2f} s",
          f"{statistics.median(ratios):.2f}x without (target <= 1.5x)",
          "rounds " + "/".join(f"{x:.2f}" for x in ks) + " s; ratios "
          + "/".join(f"{x:.2f}" for x in ratios))


if __name__ == "__main__":
    import argparse
    import sys
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench import RESULTS, Table  # bench/bench.py

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)),
                    help="tmpfs node counts, comma-separated (default %(default)s)")
    ap.add_argument("--tmpfs-only", action="store_true", help="leave out the disk rows")
    ap.add_argument("--answers", action="store_true", help="the answer-file rows alone")
    args = ap.parse_args()
    tbl = Table()
    if args.answers:  # the answer-file rows alone (~1 min)
        with tempfile.TemporaryDirectory(prefix="nodemgr-bench-", dir="/dev/shm") as tmp:
            answer_rows(tbl, Path(tmp))
    else:
        with tempfile.TemporaryDirectory(prefix="nodemgr-bench-") as tmp:
            run(tbl, Path(tmp), [int(x) for x in args.sizes.split(",")],
                disk=not args.tmpfs_only)
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "nodeset.txt").write_text("\n".join(tbl.lines) + "\n")
        print(f"saved to {RESULTS / 'nodeset.txt'}")
