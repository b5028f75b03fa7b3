"""cgi/nodemgr.cgi (the CGI shim) and cgi/nodemgr.wsgi run the same application."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

from nodemgr.tables.store import Store
from tests.web.provision import arm, define, state

ROOT = Path(__file__).resolve().parents[2]


def test_cgi_shim_runs_the_callback(tmp_path):
    url = f"sqlite:///{tmp_path}/cgi.sqlite"
    (tmp_path / "tftpboot").mkdir()
    store = Store(url)
    define(store, str(tmp_path / "tftpboot"), {"node01": ("10.0.0.5", "52:54:00:00:00:05")})
    path, _, query = arm(store, ["node01"])["node01"].partition("?")
    env = dict(os.environ, NODEMGR_DB=url, NODEMGR_CONF=str(tmp_path / "none.conf"),
               GATEWAY_INTERFACE="CGI/1.1", REQUEST_METHOD="GET", SCRIPT_NAME="",
               PATH_INFO=path, QUERY_STRING=query, REMOTE_ADDR="10.0.0.5",
               SERVER_NAME="mn", SERVER_PORT="80", SERVER_PROTOCOL="HTTP/1.1")
    (tmp_path / "none.conf").write_text("[nodemgr]\n")
    r = subprocess.run([sys.executable, str(ROOT / "cgi" / "nodemgr.cgi")], env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.stdout.startswith("Status: 200"), r.stdout + r.stderr
    assert r.stdout.rstrip().endswith("node01: booted")
    assert state(store, "node01")[0] == "booted"
    r = subprocess.run([sys.executable, str(ROOT / "cgi" / "nodemgr.cgi")], env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.stdout.startswith("Status: 403")
    store.close()


def test_wsgi_entry_point(monkeypatch, tmp_path):
    monkeypatch.setenv("NODEMGR_DB", f"sqlite:///{tmp_path}/w.sqlite")
    app = runpy.run_path(str(ROOT / "cgi" / "nodemgr.wsgi"))["application"]
    assert app.test_client().get("/healthz").text == "ok\n"
