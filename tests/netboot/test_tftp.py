"""The TFTP server against real clients (tftpy's client, curl, raw packets) on loopback."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest
import tftpy

from nodemgr.netboot import tftp


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "tftproot"
    (r / "pxelinux.cfg").mkdir(parents=True)
    (r / "big").write_bytes(os.urandom(1 << 20))
    (r / "pxelinux.cfg" / "node01").write_text("DEFAULT local\n")
    (r / "pxelinux.cfg" / "01-52-54-00-aa-bb-01").symlink_to("node01")
    (r / "escape").symlink_to("/etc/passwd")
    (r / "dirlink").symlink_to(tmp_path)
    (tmp_path / "secret").write_text("secret\n")
    return r


@pytest.fixture
def server(root):
    srv = tftp.Server(str(root), "127.0.0.1", 0, timeout=0.5, retries=3,
                      dynamic=lambda path, ip: b"generated for %s\n" % ip.encode()
                      if path == "gen/hello" else None)
    srv.bind()
    t = threading.Thread(target=tftp.serve_forever, args=(srv,), daemon=True)
    t.start()
    yield srv
    srv.stop()
    t.join(5)
    srv.close()


def fetch(server, name, tmp_path, **options):
    out = tmp_path / ("out-" + hashlib.md5(name.encode()).hexdigest())
    client = tftpy.TftpClient("127.0.0.1", server.port, options)
    client.download(name, str(out), timeout=2)
    return out.read_bytes()


def rrq(name: str, **options) -> bytes:
    pkt = struct.pack(">H", 1) + name.encode() + b"\0octet\0"
    for k, v in options.items():
        pkt += k.encode() + b"\0" + str(v).encode() + b"\0"
    return pkt


def ask(server, packet: bytes) -> bytes:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    try:
        s.sendto(packet, ("127.0.0.1", server.port))
        return s.recvfrom(65536)[0]
    finally:
        s.close()


def test_serves_file_with_blksize_and_tsize(server, root, tmp_path):
    data = fetch(server, "big", tmp_path, blksize=1468, tsize=0)
    assert data == (root / "big").read_bytes()


def test_serves_alias_symlink_inside_root(server, tmp_path):
    assert fetch(server, "pxelinux.cfg/01-52-54-00-aa-bb-01", tmp_path) == b"DEFAULT local\n"


def test_oack_holds_only_requested_options_and_timeout(server, root):
    reply = ask(server, rrq("big", tsize=0, timeout=3))
    assert reply[:2] == b"\x00\x06"
    fields = reply[2:].split(b"\0")[:-1]
    opts = dict(zip(fields[::2], fields[1::2], strict=True))
    assert opts == {b"tsize": str(1 << 20).encode(), b"timeout": b"3"}


@pytest.mark.parametrize("name", ["../secret", "pxelinux.cfg/../../secret", "/../secret",
                                  "escape", "dirlink/secret", "pxelinux.cfg", "a\\b", "/",
                                  "//pxelinux.cfg"])
def test_refuses_paths_out_of_root(server, name):
    reply = ask(server, rrq(name))
    assert reply[:4] == struct.pack(">HH", 5, 2), reply  # ERROR, access violation


def test_a_leading_slash_names_the_root(server, root, tmp_path):
    """GRUB (prefix (tftp)/boot/grub2) asks for /boot/grub2/grub.cfg-01-<mac>: served
    from the root, as tftpd-hpa -s does; /etc/passwd is <root>/etc/passwd (not found)."""
    assert fetch(server, "/pxelinux.cfg/01-52-54-00-aa-bb-01", tmp_path) == b"DEFAULT local\n"
    assert ask(server, rrq("/etc/passwd"))[:4] == struct.pack(">HH", 5, 1)  # not found


def test_missing_file_is_not_found(server):
    assert ask(server, rrq("nope"))[:4] == struct.pack(">HH", 5, 1)


def test_write_request_refused_and_nothing_written(server, root):
    pkt = struct.pack(">H", 2) + b"newfile\0octet\0"
    assert ask(server, pkt)[:4] == struct.pack(">HH", 5, 2)
    assert not (root / "newfile").exists()


def test_dynamic_content_goes_through_a_temp_file(server, tmp_path):
    assert fetch(server, "gen/hello", tmp_path) == b"generated for 127.0.0.1\n"
    # the server is still alive afterwards (tftpy's own loop died here with BytesIO)
    assert fetch(server, "pxelinux.cfg/node01", tmp_path) == b"DEFAULT local\n"


def test_concurrent_transfers(server, root, tmp_path):
    want = (root / "big").read_bytes()
    results, errors = [], []

    def one(i):
        try:
            out = tmp_path / f"c{i}"
            tftpy.TftpClient("127.0.0.1", server.port, {"blksize": 1468}).download(
                "big", str(out), timeout=3)
            results.append(out.read_bytes() == want)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and results == [True] * 10


def test_survives_abandoned_and_failing_transfers(root, tmp_path):
    def boom(path, ip):
        raise RuntimeError("generator exploded")

    srv = tftp.Server(str(root), "127.0.0.1", 0, timeout=0.2, retries=1, dynamic=boom)
    srv.bind()
    t = threading.Thread(target=tftp.serve_forever, args=(srv,), daemon=True)
    t.start()
    try:
        # a client that asks and vanishes; a hook that raises; garbage on the port
        ask(srv, rrq("big", blksize=1468))
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(b"\xff\xff garbage", ("127.0.0.1", srv.port))
        s.sendto(rrq("gen/x"), ("127.0.0.1", srv.port))
        s.close()
        time.sleep(0.8)  # the abandoned transfer times out
        assert fetch(srv, "pxelinux.cfg/node01", tmp_path) == b"DEFAULT local\n"
        assert srv.failures >= 2
    finally:
        srv.stop()
        t.join(5)
        srv.close()


def test_loop_failure_is_restarted(server, tmp_path, monkeypatch):
    calls = []
    real = tftp.Server._accept

    def flaky(self, sel, sessions):
        if not calls:
            calls.append(1)
            raise RuntimeError("loop bug")
        return real(self, sel, sessions)

    monkeypatch.setattr(tftp.Server, "_accept", flaky)
    # the request that met the failing loop is still queued on the socket: answered after
    # the restart
    assert fetch(server, "pxelinux.cfg/node01", tmp_path) == b"DEFAULT local\n"
    assert calls == [1]


def test_resolve_rules(root):
    r = os.path.realpath(root)
    assert tftp.resolve(r, "pxelinux.cfg/node01") == os.path.join(r, "pxelinux.cfg", "node01")
    assert tftp.resolve(r, "/x") == os.path.join(r, "x")   # the root, not the system's /
    for bad in ["", "/", "/../x", "../x", "a/../../x", "a\0b", "escape"]:
        with pytest.raises(tftp.PathRefused):
            tftp.resolve(r, bad)


def _curl_and_free_port() -> int:
    """A free UDP port on loopback for a server the test starts; curl must be installed."""
    if not shutil.which("curl"):
        pytest.fail("curl is required")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_command_serves_with_curl(root, tmp_path):
    port = _curl_and_free_port()
    proc = subprocess.Popen([sys.executable, "-m", "nodemgr.cli.tftpcmd", "--root", str(root),
                             "--address", "127.0.0.1", "--port", str(port), "--workers", "2"],
                            stderr=subprocess.PIPE, text=True)
    try:
        assert "serving" in proc.stderr.readline()
        out = tmp_path / "curl.out"
        subprocess.run(["curl", "-s", "--tftp-blksize", "1468", "-o", str(out),
                        f"tftp://127.0.0.1:{port}/big"], check=True, timeout=20)
        assert out.read_bytes() == (root / "big").read_bytes()
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "big sent 1048576 bytes" in err
    assert err.count("\n") < 10  # one line per transfer, none per packet


def test_command_errors(tmp_path):
    r = subprocess.run([sys.executable, "-m", "nodemgr.cli.tftpcmd", "--root",
                        str(tmp_path / "missing")], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.startswith("Error: TFTP root")
    r = subprocess.run([sys.executable, "-m", "nodemgr.cli.tftpcmd", "--help"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "examples:" in r.stdout and "exit status:" in r.stdout


def test_client_timeout_option_sets_the_resend_interval(root):
    srv = tftp.Server(str(root), "127.0.0.1", 0, timeout=30, retries=3)
    srv.bind()
    t = threading.Thread(target=tftp.serve_forever, args=(srv,), daemon=True)
    t.start()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    try:
        s.sendto(rrq("big", timeout=1), ("127.0.0.1", srv.port))
        first, _ = s.recvfrom(65536)
        t0 = time.monotonic()
        again, _ = s.recvfrom(65536)   # no ACK from us: the OACK comes again after ~1 s
        waited = time.monotonic() - t0
        assert first == again and first[:2] == b"\x00\x06"
        assert 0.8 <= waited < 2.5, waited
    finally:
        s.close()
        srv.stop()
        t.join(5)
        srv.close()


@pytest.mark.parametrize("size", [0, 511, 512, 3 * 1468, 44 * 1468 * 2, 44 * 1468 * 2 + 7])
def test_sizes_at_block_and_chunk_boundaries(server, root, tmp_path, size):
    # blocks are sliced out of chunks of whole blocks: a file ending exactly on a block or
    # chunk boundary still ends with an empty block (RFC 1350), nothing lost or repeated
    (root / "sized").write_bytes(os.urandom(size))
    for options in ({}, {"blksize": 1468}):
        assert fetch(server, "sized", tmp_path, **options) == (root / "sized").read_bytes()


@pytest.mark.parametrize("blksize", [8, 9, 63, 64, 65464])
def test_every_rfc2348_blksize_works(server, root, tmp_path, blksize):
    """Issue 12 item 5: 8-63 used to need more than IOV_MAX buffers in one preadv."""
    (root / "odd").write_bytes(os.urandom(70_000))
    assert fetch(server, "odd", tmp_path, blksize=blksize) == (root / "odd").read_bytes()


def test_lock_step_ignores_duplicate_and_accepts_padded_acks(server, root):
    want = (root / "big").read_bytes()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    try:
        s.sendto(rrq("big"), ("127.0.0.1", server.port))
        pkt, peer = s.recvfrom(65536)
        assert pkt[:4] == struct.pack(">HH", 3, 1) and pkt[4:] == want[:512]
        s.sendto(struct.pack(">HH", 4, 1) + b"pad", peer)   # trailing bytes: still ACK 1
        pkt, _ = s.recvfrom(65536)
        assert pkt[:4] == struct.pack(">HH", 3, 2) and pkt[4:] == want[512:1024]
        s.sendto(struct.pack(">HH", 4, 1), peer)            # duplicate ACK: no new block
        s.settimeout(0.2)             # (the resend timer is 0.5 s)
        with pytest.raises(TimeoutError):
            s.recvfrom(65536)
        s.settimeout(3)
        s.sendto(struct.pack(">HH", 4, 2), peer)
        assert s.recvfrom(65536)[0][:4] == struct.pack(">HH", 3, 3)
        s.sendto(struct.pack(">HH", 5, 0) + b"bye\0", peer)  # client gives up
    finally:
        s.close()


def _children(pid: int) -> set[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return {int(x) for x in f.read().split()}
    except FileNotFoundError:
        return set()


def _wait_for_children(pid: int, ok, timeout=10.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _children(pid)
        if ok(found):
            return found
        time.sleep(0.05)
    raise AssertionError(f"children of {pid}: {_children(pid)}")


@pytest.mark.slow
def test_supervisor_restarts_a_killed_worker_and_stops_all(root, tmp_path):
    port = _curl_and_free_port()
    log = open(tmp_path / "tftpd.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "nodemgr.cli.tftpcmd", "--root", str(root),
                             "--address", "127.0.0.1", "--port", str(port), "--workers", "3"],
                            stderr=log)
    everyone: set[int] = set()
    try:
        first = _wait_for_children(proc.pid, lambda c: len(c) == 3)
        everyone |= first
        victim = sorted(first)[0]
        os.kill(victim, 9)
        now = _wait_for_children(proc.pid, lambda c: len(c) == 3 and victim not in c)
        everyone |= now
        assert len(now - first) == 1  # one replacement, the others untouched
        want = (root / "big").read_bytes()
        for i in range(6):            # several client ports: spread over all three workers
            out = tmp_path / f"after{i}"
            subprocess.run(["curl", "-s", "--tftp-blksize", "1468", "-o", str(out),
                            f"tftp://127.0.0.1:{port}/big"], check=True, timeout=20)
            assert out.read_bytes() == want
        proc.terminate()
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in everyone:          # nothing left behind, even on failure
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
    for pid in everyone:
        assert not os.path.exists(f"/proc/{pid}"), f"worker {pid} still running"
    log.seek(0)
    text = log.read()
    assert f"worker {victim} died (signal 9)" in text and "restarting in 0.1 s" in text
    assert "big sent 1048576 bytes" in text


@pytest.mark.parametrize("workers", ["1", "2"])
def test_root_is_the_tftpdir_setting_and_sighup_rereads_it(tmp_path, workers):
    """Without --root the server serves site.tftpdir; after chtab + SIGHUP (to the parent,
    which forwards it to every worker) new transfers come from the new root."""
    from nodemgr.tables.store import Store

    port = _curl_and_free_port()
    old, new = tmp_path / "old", tmp_path / "new"
    for d, text in ((old, "old root\n"), (new, "new root\n")):
        d.mkdir()
        (d / "which").write_text(text)
    url = f"sqlite:///{tmp_path}/t.sqlite"
    (tmp_path / "none.conf").write_text("[nodemgr]\n")
    store = Store(url)
    store.upsert("site", {"key": "tftpdir"}, {"value": str(old)})
    env = dict(os.environ, NODEMGR_DB=url, NODEMGR_CONF=str(tmp_path / "none.conf"))
    log = open(tmp_path / "tftpd.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "nodemgr.cli.tftpcmd", "--address",
                             "127.0.0.1", "--port", str(port), "--workers", workers],
                            stderr=log, env=env, start_new_session=True)

    def get() -> str:
        out = tmp_path / "got"
        out.unlink(missing_ok=True)
        for _ in range(50):  # until the server is up
            if subprocess.run(["curl", "-s", "-o", str(out), f"tftp://127.0.0.1:{port}/which"],
                              timeout=20).returncode == 0:
                return out.read_text()
            time.sleep(0.1)
        raise AssertionError(log.seek(0) or log.read())

    try:
        assert get() == "old root\n"
        store.upsert("site", {"key": "tftpdir"}, {"value": str(new)})
        assert get() == "old root\n"      # resolved at start, not per request
        os.kill(proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while get() != "new root\n":      # every worker: several client ports below
            assert time.monotonic() < deadline, "SIGHUP did not switch the root"
            time.sleep(0.1)
        assert {get() for _ in range(6)} == {"new root\n"}
        store.upsert("site", {"key": "tftpdir"}, {"value": str(tmp_path / "missing")})
        os.kill(proc.pid, signal.SIGHUP)
        time.sleep(0.5)
        assert get() == "new root\n"      # a bad value keeps the old root
        assert proc.poll() is None
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
        store.close()
    log.seek(0)
    text = log.read()
    assert "SIGHUP: root" in text and "is not a directory; root stays" in text


@pytest.fixture
def one_byte_root(tmp_path):
    (tmp_path / "f").write_bytes(b"x")
    return tmp_path


def test_a_timeout_above_the_cap_is_declined(one_byte_root):
    """RFC 2349 lets the server decline an option, not change it: timeout=255 is left out
    of the OACK (the server's own timeout applies); 10 is accepted."""
    srv = tftp.Server(str(one_byte_root), "127.0.0.1", 0, timeout=0.5, retries=1)
    srv.bind()
    t = threading.Thread(target=tftp.serve_forever, args=(srv,), daemon=True)
    t.start()
    try:
        assert ask(srv, rrq("f", timeout=255, tsize=0)) == b"\x00\x06tsize\x001\x00"
        assert ask(srv, rrq("f", timeout=10)) == b"\x00\x06timeout\x0010\x00"
    finally:
        srv.stop()
        t.join(5)
        srv.close()


def test_a_flood_of_unanswered_requests_does_not_lock_clients_out(root, tmp_path):
    """Issue 12 item 6: 2,500 never-acknowledged requests with timeout=255 (from one
    spoofable address, 127.0.0.2) used to hold a socket each for minutes until descriptors
    ran out; now the worker keeps at most MAX_PER_CLIENT of them, and a legitimate client
    (another address, or the same one) is served at once."""
    srv = tftp.Server(str(root), "127.0.0.1", 0, timeout=2, retries=5)
    srv.bind()
    t = threading.Thread(target=tftp.serve_forever, args=(srv,), daemon=True)
    t.start()
    socks = []
    try:
        for _ in range(2500):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.2", 0))
            s.sendto(rrq("big", timeout=255, blksize=1468), ("127.0.0.1", srv.port))
            socks.append(s)
            if len(socks) >= 100:      # the test itself must not run out of descriptors
                for x in socks:
                    x.close()
                socks.clear()
                time.sleep(0.02)       # let the server drain its receive queue
        for x in socks:
            x.close()
        socks.clear()
        time.sleep(0.5)
        assert fetch(srv, "big", tmp_path) == (root / "big").read_bytes()
        assert srv.evicted >= 100  # (a loaded kernel may drop some of the burst)
        open_fds = len(os.listdir("/proc/self/fd"))
        assert open_fds < 2 * tftp.MAX_PER_CLIENT + 100, open_fds
    finally:
        for x in socks:
            x.close()
        srv.stop()
        t.join(5)
        srv.close()
