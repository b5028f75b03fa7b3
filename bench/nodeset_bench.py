"""Bench rows for nodeset: ``nodeset <10,000 nodes> osimage=<img>`` (library call, SQLite)
against the raw time to write and rename the same files (node file via temp + rename,
two aliases via temp symlink + rename) in the same run. Target: ratio <= 2."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

N = 10_000
IMG = "rhels8.6-x86_64-install-compute"


def _setup(work: Path):
    from nodemgr.tables.resolve import Resolver
    from nodemgr.tables.store import Store

    store = Store(f"sqlite:///{work}/nodeset.sqlite")
    with store.transaction():
        store.upsert("site", {"key": "tftpdir"}, {"value": str(work / "tftp")})
        store.upsert("site", {"key": "master"}, {"value": "10.0.0.1"})
        store.insert("osimage", {"imagename": IMG, "provmethod": "install", "osvers": "rhels8.6",
                                 "osarch": "x86_64", "profile": "compute"})
        store.insert("boottarget", {"bprofile": "rhels8.6-x86_64",
                                    "kernel": "xcat/rhels8.6/x86_64/vmlinuz",
                                    "initrd": "xcat/rhels8.6/x86_64/initrd.img",
                                    "kcmdline": "inst.repo=http://!myipfn!/install/rhels8.6/x86_64"})
        for i in range(N):
            n = f"n{i:05d}"
            store.insert("nodelist", {"node": n, "groups": "compute,all"})
            store.insert("mac", {"node": n, "mac": f"52:54:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}"})
            store.insert("hosts", {"node": n, "ip": f"10.1.{i >> 8 & 255}.{i & 255}"})
    return store, Resolver(store)


def _raw(work: Path, texts: dict[str, str], aliases: dict[str, list[str]]) -> float:
    root = work / "raw" / "pxelinux.cfg"
    root.mkdir(parents=True)
    t0 = time.perf_counter()
    for node, text in texts.items():
        for a in aliases[node]:
            tmp = root / f".{a}.tmp"
            os.symlink(node, tmp)
            os.replace(tmp, root / a)
        tmp = root / f".{node}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, text.encode())
        os.close(fd)
        os.replace(tmp, root / node)
    return time.perf_counter() - t0


def run(t, work: Path) -> None:
    """Add the nodeset rows to bench table *t* (``bench.Table``)."""
    from nodemgr.netboot.nodeset import nodeset

    t.title(f"nodeset osimage= for {N:,} nodes (pxelinux, 2 aliases each, SQLite)")
    store, res = _setup(work)
    t0 = time.perf_counter()
    results = nodeset(store, res, [f"n{i:05d}" for i in range(N)], f"osimage={IMG}")
    elapsed = time.perf_counter() - t0
    assert all(r.ok for r in results)
    d = work / "tftp" / "pxelinux.cfg"
    texts = {f"n{i:05d}": (d / f"n{i:05d}").read_text() for i in range(N)}
    aliases: dict[str, list[str]] = {}
    for e in os.scandir(d):
        if e.is_symlink():
            aliases.setdefault(os.readlink(e.path), []).append(e.name)
    raw = _raw(work, texts, aliases)
    t.row("raw: write+rename node file, symlink+rename 2 aliases", f"{raw:.2f} s", "baseline")
    t.row("nodeset (tables, tokens, render, files)", f"{elapsed:.2f} s",
          f"{elapsed / raw:.2f}x raw (target <= 2x)", f"{N / elapsed:,.0f} nodes/s")
    t0 = time.perf_counter()
    nodeset(store, res, [f"n{i:05d}" for i in range(N)], "next")
    nxt = time.perf_counter() - t0
    t.row("nodeset next (-> boot, local-boot files)", f"{nxt:.2f} s",
          f"{nxt / raw:.2f}x raw", f"{N / nxt:,.0f} nodes/s")
    store.close()
    shutil.rmtree(work / "tftp", ignore_errors=True)
    shutil.rmtree(work / "raw", ignore_errors=True)


if __name__ == "__main__":
    import sys
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench import Table  # bench/bench.py

    with tempfile.TemporaryDirectory(prefix="nodemgr-bench-") as tmp:
        run(Table(), Path(tmp))
