"""Bench rows for makedhcp (Kea back end), 10,000 nodes on SQLite.

e) ``makedhcp -a`` (the real command, in a network namespace the bench creates so that
   ``kea-dhcp4 -t`` finds the interface) against writing the same Kea file by hand in the
   same run: ``json.dump`` of the very structure makedhcp wrote (read back from its file)
   to a temporary name + rename, with and without the same ``kea-dhcp4 -t`` check. Rounds
   alternate which goes first; medians and the median of the per-round ratios. Target
   ratio <= 2 (against the hand-written file with the same check).
f) reload: a real ``kea-dhcp4`` started in that namespace on the 10,000-reservation file;
   the ``config-reload`` round trip over the control socket (median of 5), and
   ``makedhcp <one new node>`` end to end against the running server (write, -t, reload).

Run alone (``python bench/dhcp_bench.py``, as root; ``bench/run`` calls it first) or
through :func:`run` (``run(table, workdir)``). Prints rows and saves them to
``bench/results/dhcp.txt``. Needs root, ``ip`` and ``kea-dhcp4``; otherwise ``n/a``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N = 10_000
ROUNDS = int(os.environ.get("NODEMGR_BENCH_DHCP_ROUNDS", "3"))


def _populate(db: str, work: Path) -> None:
    from nodemgr.tables.store import Store

    store = Store(db)
    with store.transaction():
        for k, v in (("keaconf", work / "kea" / "kea-dhcp4.conf"),
                     ("keasocket", work / "kea" / "kea4.sock"), ("httpport", "80")):
            store.upsert("site", {"key": k}, {"value": str(v)})
        store.insert("networks", {"netname": "bench", "net": "10.100.0.0", "mask": "255.255.0.0",
                                  "mgtifname": "br0", "gateway": "10.100.0.1",
                                  "dynamicrange": "10.100.250.1-10.100.250.200"})
        kinds = ("pxe", "xnba", "grub2")
        for i in range(N):
            n = f"n{i:05d}"
            store.insert("nodelist", {"node": n, "groups": "compute,all"})
            store.insert("mac", {"node": n, "mac": f"52:54:00:{i >> 16 & 255:02x}:"
                                                   f"{i >> 8 & 255:02x}:{i & 255:02x}"})
            store.insert("hosts", {"node": n, "ip": f"10.100.{i // 250}.{i % 250 + 1}"})
            store.insert("noderes", {"node": n, "netboot": kinds[i % 3]})
    store.close()


def _by_hand(cfg: dict, path: Path, ns: str | None) -> float:
    """json.dump *cfg* to a temporary name, optionally kea-dhcp4 -t it, rename; seconds."""
    t0 = time.perf_counter()
    tmp = path.with_name(f".{path.name}.hand")
    with open(tmp, "w") as f:
        json.dump(cfg, f)
    if ns:
        subprocess.run(["ip", "netns", "exec", ns, "kea-dhcp4", "-t", str(tmp)],
                       check=True, capture_output=True, env=_kea_env(path.parent))
    os.replace(tmp, path)
    return time.perf_counter() - t0


def _kea_env(d: Path) -> dict:
    return dict(os.environ, KEA_PIDFILE_DIR=str(d), KEA_LOCKFILE_DIR=str(d))


def run(t, work: Path) -> None:
    t.title(f"makedhcp, Kea back end, {N:,} nodes (SQLite; a network namespace of the bench)")
    if os.geteuid() != 0 or not shutil.which("kea-dhcp4") or not shutil.which("ip"):
        t.row("makedhcp -a", "n/a", "", "needs root, ip and kea-dhcp4 (kea-dhcp4-server)")
        return
    work = work / "dhcp"
    (work / "kea").mkdir(parents=True)
    db = f"sqlite:///{work}/dhcp.sqlite"
    (work / "none.conf").write_text("[nodemgr]\n")
    _populate(db, work)
    env = dict(os.environ, NODEMGR_DB=db, NODEMGR_CONF=str(work / "none.conf"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    ns = f"nmdhb{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    kea_proc = None
    try:
        for cmd in ("ip link set lo up", "ip link add br0 type bridge",
                    "ip addr add 10.100.0.1/16 dev br0", "ip link set br0 up"):
            subprocess.run(["ip", "netns", "exec", ns, *cmd.split()], check=True)
        conf = work / "kea" / "kea-dhcp4.conf"
        cmd = ["ip", "netns", "exec", ns, sys.executable, "-c",
               "import sys; from nodemgr.cli.dhcpcmd import makedhcp; sys.exit(makedhcp())"]

        def ours() -> float:
            t0 = time.perf_counter()
            r = subprocess.run(cmd + ["-a"], env=env, cwd=ROOT, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if r.returncode != 0:
                raise RuntimeError(r.stderr.strip())
            return wall

        ours()  # warm-up: byte-code caches, page cache; also the file to copy the structure of
        cfg = json.loads(conf.read_text())
        assert sum(len(s.get("reservations", [])) for s in cfg["Dhcp4"]["subnet4"]) == N
        hand = work / "kea" / "hand.conf"
        a, b, c, ratios, ratios_c = [], [], [], [], []
        for rnd in range(ROUNDS):
            if rnd % 2:
                x = _by_hand(cfg, hand, None)
                z = _by_hand(cfg, hand, ns)
                y = ours()
            else:
                y = ours()
                x = _by_hand(cfg, hand, None)
                z = _by_hand(cfg, hand, ns)
            a.append(y)
            b.append(x)
            c.append(z)
            ratios.append(y / x)
            ratios_c.append(y / z)
        t0 = time.perf_counter()
        subprocess.run(["ip", "netns", "exec", ns, "kea-dhcp4", "-t", str(conf)], check=True,
                       capture_output=True, env=_kea_env(work / "kea"))
        check = time.perf_counter() - t0
        med = statistics.median
        rounds = " ".join(f"{v:.2f}" for v in a)
        t.row("makedhcp -a (command: read, render, write, kea-dhcp4 -t)", f"{med(a):.2f} s",
              f"rounds {rounds}")
        t.row("by hand: json.dump + rename", f"{med(b):.3f} s",
              f"ratio {med(ratios):.1f}x", "(no check)")
        t.row("by hand: json.dump + kea-dhcp4 -t + rename", f"{med(c):.2f} s",
              f"ratio {med(ratios_c):.2f}x", "target <= 2x")
        t.row("  of which kea-dhcp4 -t alone", f"{check:.2f} s")
        # f) the running server
        sock = work / "kea" / "kea4.sock"
        log = open(work / "kea.log", "w")
        kea_proc = subprocess.Popen(["ip", "netns", "exec", ns, "kea-dhcp4", "-c", str(conf)],
                                    env=_kea_env(work / "kea"), stdout=log, stderr=log,
                                    start_new_session=True)
        log.close()
        from nodemgr.netboot import kea

        t0 = time.perf_counter()
        while True:
            try:
                if kea.command(str(sock), "status-get", timeout=2).get("result") == 0:
                    break
            except kea.KeaNotRunning:
                pass
            if time.perf_counter() - t0 > 60:
                raise RuntimeError("kea-dhcp4 did not start: " + (work / "kea.log").read_text()[-300:])
            time.sleep(0.05)
        start = time.perf_counter() - t0
        reloads = []
        for _ in range(5):
            t0 = time.perf_counter()
            kea.reload(str(sock))
            reloads.append(time.perf_counter() - t0)
        t.row("Kea start on the file until the control socket answers", f"{start:.2f} s")
        t.row("config-reload round trip, 10,000 reservations", f"{med(reloads):.2f} s",
              "five: " + " ".join(f"{v:.2f}" for v in reloads))
        from nodemgr.tables.store import Store

        s = Store(db)
        with s.transaction():
            s.insert("nodelist", {"node": "nnew", "groups": "compute,all"})
            s.insert("mac", {"node": "nnew", "mac": "52:54:01:00:00:01"})
            s.insert("hosts", {"node": "nnew", "ip": "10.100.249.1"})
        s.close()
        t0 = time.perf_counter()
        r = subprocess.run(cmd + ["nnew", "-V"], env=env, cwd=ROOT, capture_output=True,
                           text=True)
        one = time.perf_counter() - t0
        ok = r.returncode == 0 and "Configuration successful" in r.stdout
        t.row("makedhcp <1 new node> into the running Kea (10,001)", f"{one:.2f} s",
              "reloaded" if ok else "FAILED", "" if ok else r.stderr.strip()[:60])
    except Exception as exc:  # a bench row, never a crash
        t.row("makedhcp bench", "n/a", "", f"failed: {str(exc)[:80]}")
    finally:
        if kea_proc is not None:
            os.killpg(kea_proc.pid, 15)
            kea_proc.wait(10)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def main() -> int:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench import Table

    t = Table()
    t.emit(f"nodemgr dhcp bench  {time.strftime('%Y-%m-%d %H:%M:%S')}  load average "
           + " ".join(f"{x:.2f}" for x in os.getloadavg()) + f"  nproc {os.cpu_count()}")
    with tempfile.TemporaryDirectory(prefix="nodemgr-dhcp-bench-") as tmp:
        run(t, Path(tmp))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "dhcp.txt").write_text("\n".join(t.lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
