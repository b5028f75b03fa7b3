"""The callback under a real gunicorn (etc/gunicorn.conf.py) on loopback, real HTTP clients.

The node's address is 127.0.0.2: the client binds its source address to it, so the server
sees the request coming from the node itself. Fast (~1 s), so not marked slow.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from nodemgr.tables.store import Store
from tests.web.provision import arm, define, state

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_from(addr: str, port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(addr, 0))
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


@contextlib.contextmanager
def gunicorn(db_url: str, conf: Path, port: int, workers: int = 1):
    """The web app under gunicorn (etc/gunicorn.conf.py) on 127.0.0.1:*port* until the block
    ends; yields the process once /healthz answers."""
    env = dict(os.environ, NODEMGR_DB=db_url, NODEMGR_CONF=str(conf),
               NODEMGR_WEB_WORKERS=str(workers))
    exe = Path(sys.executable).with_name("gunicorn")
    proc = subprocess.Popen([str(exe), "-c", "etc/gunicorn.conf.py", "--bind",
                             f"127.0.0.1:{port}"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(200):
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.05)
        else:
            pytest.fail("gunicorn did not come up")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def served(tmp_path):
    url = f"sqlite:///{tmp_path}/web.sqlite"
    tftp = tmp_path / "tftpboot"
    tftp.mkdir()
    store = Store(url)
    define(store, str(tftp), {"node01": ("127.0.0.2", "52:54:00:aa:bb:01"),
                              "node02": ("127.0.0.3", "52:54:00:aa:bb:02")})
    port = free_port()
    (tmp_path / "none.conf").write_text("[nodemgr]\n")
    try:
        with gunicorn(url, tmp_path / "none.conf", port, workers=2) as proc:
            yield store, port, proc
    finally:
        store.close()


def test_callback_over_http(served):
    store, port, proc = served
    urls = arm(store, ["node01", "node02"])
    # the installer's wget, from the node's own address
    assert get_from("127.0.0.2", port, urls["node01"]) == (200, "node01: booted\n")
    assert state(store, "node01")[:2] == ("booted", "boot")
    # replay of the same URL
    code, text = get_from("127.0.0.2", port, urls["node01"])
    assert code == 403
    # node02's URL from node01's address
    assert get_from("127.0.0.2", port, urls["node02"])[0] == 403
    assert state(store, "node02")[0] == "installing"
    # requests: unknown node / malformed name / liveness
    assert requests.get(f"http://127.0.0.1:{port}/install-finished/nope").status_code == 404
    assert requests.get(f"http://127.0.0.1:{port}/install-finished/%2E%2E").status_code == 400
    assert get_from("127.0.0.3", port, urls["node02"])[0] == 200
    proc.terminate()
    out = proc.communicate(timeout=10)[0]
    assert "token=" not in out  # no query string in any log line
    assert "node01 from 127.0.0.2: booted" in out
