"""nodemgr-tftpd --user (bind as root, then run as the user for good) and the systemd unit's
sandboxing (issue 12, TFTP limits): a real server started as root with ``--user nobody`` on
loopback, a real TFTP client, the processes' ids read from /proc, and the SIGHUP re-read of
site.tftpdir from a database only root can open."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import tftpy

from nodemgr.tables.store import Store

ROOT = Path(__file__).resolve().parents[2]
REQUIRE_ALL = os.environ.get("NODEMGR_REQUIRE_ALL") == "1"
UNIT = ROOT / "etc" / "systemd" / "nodemgr-tftpd.service"


def _need_root():
    if os.geteuid() != 0:
        if REQUIRE_ALL:
            pytest.fail("the --user tests must run as root")
        pytest.skip("needs root")


@pytest.fixture
def world(tmp_path):
    """A directory tree nobody can walk (pytest's tmp_path is root's 0700): roots 'old'
    and 'new' with a public file each and a file only root may read."""
    _need_root()
    top = Path(tempfile.mkdtemp(prefix="nodemgr-tftp-user-"))
    top.chmod(0o755)
    for name in ("old", "new"):
        (top / name).mkdir(mode=0o755)
        (top / name / "which").write_text(f"{name} root\n")
        (top / name / "which").chmod(0o644)
    secret = top / "old" / "rootonly"
    secret.write_text("root only\n")
    secret.chmod(0o600)
    yield top
    shutil.rmtree(top)


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fetch(port: int, name: str, out: Path) -> bytes:
    out.unlink(missing_ok=True)
    tftpy.TftpClient("127.0.0.1", port, {}).download(name, str(out), timeout=2)
    return out.read_bytes()


def _ids(pid: int) -> dict[str, list[int]]:
    text = Path(f"/proc/{pid}/status").read_text()
    return {k: [int(v) for v in re.search(rf"^{k}:[ \t]*(.*)$", text, re.M).group(1).split()]
            for k in ("Uid", "Gid", "Groups")}


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@pytest.mark.parametrize("workers", ["1", "2"])
def test_user_drops_root_serves_readable_files_and_rereads_the_root_on_sighup(
        world, tmp_path, workers):
    nobody = pwd.getpwnam("nobody")
    url = f"sqlite:///{tmp_path}/t.sqlite"       # under root's 0700 tmp_path, file 0600
    store = Store(url)
    store.upsert("site", {"key": "tftpdir"}, {"value": str(world / "old")})
    (tmp_path / "none.conf").write_text("[nodemgr]\n")
    env = dict(os.environ, NODEMGR_DB=url, NODEMGR_CONF=str(tmp_path / "none.conf"))
    port = _free_port()
    log = open(tmp_path / "tftpd.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "nodemgr.cli.tftpcmd", "--address",
                             "127.0.0.1", "--port", str(port), "--workers", workers,
                             "--user", "nobody"], stderr=log, env=env,
                            start_new_session=True)
    out = tmp_path / "got"
    try:
        deadline = time.monotonic() + 15
        while "tftp: serving" not in (log.seek(0) or log.read()):
            assert proc.poll() is None and time.monotonic() < deadline, log.read()
            time.sleep(0.05)
        while True:                               # until the server answers
            try:
                got = _fetch(port, "which", out)
                break
            except tftpy.TftpException:
                assert proc.poll() is None and time.monotonic() < deadline, \
                    log.seek(0) or log.read()
                time.sleep(0.05)
        assert got == b"old root\n"
        pids = [proc.pid, *_children(proc.pid)]
        assert len(pids) == (1 if workers == "1" else 3)
        for pid in pids:                          # the supervisor too: nothing stays root
            ids = _ids(pid)
            assert ids["Uid"] == [nobody.pw_uid] * 4, (pid, ids)
            assert ids["Gid"] == [nobody.pw_gid] * 4, (pid, ids)
            assert ids["Groups"] in ([], [nobody.pw_gid]), (pid, ids)
        with pytest.raises(tftpy.TftpException, match="Access violation"):
            _fetch(port, "rootonly", out)         # 0600 root: the user cannot open it
        assert os.access(tmp_path / "t.sqlite", os.R_OK)   # (as root; nobody cannot)
        store.upsert("site", {"key": "tftpdir"}, {"value": str(world / "new")})
        os.kill(proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while _fetch(port, "which", out) != b"new root\n":
            assert time.monotonic() < deadline, log.seek(0) or log.read()
            time.sleep(0.1)
        assert {_fetch(port, "which", out) for _ in range(6)} == {b"new root\n"}
        store.upsert("site", {"key": "tftpdir"}, {"value": str(world / "missing")})
        os.kill(proc.pid, signal.SIGHUP)
        time.sleep(0.3)
        assert _fetch(port, "which", out) == b"new root\n"
        assert proc.poll() is None
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
        store.close()
    assert proc.returncode == 0
    log.seek(0)
    text = log.read()
    assert f"running as user nobody (uid {nobody.pw_uid}" in text
    assert "SIGHUP: root" in text and "is not a directory; root stays" in text
    assert "rootonly failed: cannot open 'rootonly': Permission denied" in text


def test_user_errors_are_one_line(world, tmp_path):
    base = [sys.executable, "-m", "nodemgr.cli.tftpcmd", "--root", str(world / "old"),
            "--address", "127.0.0.1", "--port", str(_free_port()), "--workers", "1"]
    for user, message in (("no-such-user-nm", "Error: --user no-such-user-nm: no such user"),
                          ("root", "Error: --user root: that is root")):
        r = subprocess.run(base + ["--user", user], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 1 and r.stderr.startswith(message), r.stderr
        assert r.stderr.count("\n") == 1


def test_user_needs_root(monkeypatch, capsys, tmp_path):
    from nodemgr.cli import tftpcmd

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert tftpcmd.main(["--root", str(tmp_path), "--user", "nobody"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: --user nobody needs to be started as root") and \
        err.count("\n") == 1


def test_unit_is_sandboxed_and_systemd_accepts_it(tmp_path):
    text = UNIT.read_text()
    directives = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            directives[key.strip()] = value.strip()
    assert "--user nodemgr-tftp" in directives["ExecStart"]
    assert "User" not in directives and "DynamicUser" not in directives
    assert set(directives["CapabilityBoundingSet"].split()) == {
        "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID"}
    assert "AmbientCapabilities" not in directives   # nothing survives the setuid
    for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                       ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                       ("ReadOnlyPaths", "-/tftpboot"),
                       ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX")):
        assert directives.get(key) == value, key
    assert int(directives["LimitNOFILE"]) >= 4096
    sysusers = (ROOT / "etc" / "sysusers.d" / "nodemgr-tftp.conf").read_text()
    assert re.search(r"^u nodemgr-tftp ", sysusers, re.M)
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if REQUIRE_ALL:
            pytest.fail("systemd-analyze is required (apt-get install systemd)")
        pytest.skip("systemd-analyze not installed")
    exe = Path(sys.executable).with_name("nodemgr-tftpd")
    unit = tmp_path / "nodemgr-tftpd.service"
    unit.write_text(text.replace("ExecStart=nodemgr-tftpd", f"ExecStart={exe}"))
    r = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                       timeout=60)
    complaints = [ln for ln in (r.stdout + r.stderr).splitlines() if unit.name in ln]
    assert r.returncode == 0 and not complaints, r.stdout + r.stderr
