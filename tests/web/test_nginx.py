"""The web side of network boot: makewebconf's nginx server file (the shipped
etc/nginx/nodemgr.conf is its rendering of the defaults), the web app's /install/ and
/tftpboot/ routes, and the real nginx (Debian nginx-light) started with the rendered file
in front of a real gunicorn, on loopback only. Fast (~1.5 s), so not marked slow."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from nodemgr.cli.mknbcmd import makewebconf
from nodemgr.netboot import mknb, webconf
from nodemgr.tables.store import Store
from nodemgr.web.app import create_app
from tests.web.provision import arm, define, state
from tests.web.test_gunicorn import free_port, gunicorn

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def get(port: int, path: str, *, source: str = "127.0.0.1",
        headers: dict | None = None, method: str = "GET") -> tuple[int, bytes]:
    """One request sent as is (no client-side normalisation of ``..`` or ``%2F``)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                      source_address=(source, 0))
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


# -- the file ----------------------------------------------------------------------------

def test_shipped_file_is_makewebconf_of_the_defaults(cli_env, tmp_path, capsys):
    shipped = (ROOT / "etc/nginx/nodemgr.conf").read_text()
    assert shipped == webconf.render(webconf.WebConf())
    (tmp_path / "none.conf").write_text("[nodemgr]\n")  # (cli_env's names a test installdir)
    assert makewebconf([]) == 0  # a fresh database, no configuration file: the defaults
    assert capsys.readouterr().out == shipped
    assert "    listen 80 default_server;\n" in shipped
    assert "        alias /tftpboot/;\n" in shipped and "        alias /install/;\n" in shipped
    assert "autoindex on" not in shipped and "$proxy_add_x_forwarded_for" not in shipped


def test_makewebconf_follows_the_settings_and_refuses_bad_values(cli_env, tmp_path, capsys):
    from nodemgr.cli.common import open_store

    store = open_store()
    good = {"tftpdir": "/srv/tftp/", "installdir": "/srv/install", "httpport": "8081"}
    for k, v in good.items():
        store.upsert("site", {"key": k}, {"value": v})
    (tmp_path / "conf.d").mkdir()
    out = tmp_path / "conf.d" / "nodemgr.conf"
    assert makewebconf(["-o", str(out), "--listen", "10.0.0.1",
                        "--upstream", "127.0.0.1:9090"]) == 0
    text = out.read_text()
    assert "    listen 10.0.0.1:8081;\n" in text
    assert "alias /srv/tftp/;" in text and "alias /srv/install/;" in text
    # the callbacks, install-status and the answer files go to the app, never from disk
    assert text.count("proxy_pass http://127.0.0.1:9090;") == 4
    for loc in ("/install-finished/", "/xcatrhevh/", "/install-status/", "/install/autoinst/"):
        assert f"    location {loc} {{\n        proxy_pass http://127.0.0.1:9090;" in text
    assert out.stat().st_mode & 0o777 == 0o644 and os.listdir(out.parent) == ["nodemgr.conf"]
    assert makewebconf(["--listen", "fd00::1"]) == 0
    assert "    listen [fd00::1]:8081;\n" in capsys.readouterr().out
    for key, value, why in (("tftpdir", "/srv/my tftp", "characters nginx would misread"),
                            ("tftpdir", "/srv/$x", "characters nginx would misread"),
                            ("installdir", "relative", "must be an absolute path"),
                            ("httpport", "http", "is not a port number")):
        store.upsert("site", {"key": key}, {"value": value})
        assert makewebconf(["-o", str(out)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and why in err and key in err
        assert out.read_text() == text  # unchanged
        store.upsert("site", {"key": key}, {"value": good[key]})
    assert makewebconf(["--upstream", "nohost"]) == 1
    assert "upstream 'nohost'" in capsys.readouterr().err
    assert makewebconf(["--upstream", "127.0.0.1:8081"]) == 1  # nginx on gunicorn's port
    assert "httpport 8081 is the port of the upstream 127.0.0.1:8081" in capsys.readouterr().err
    assert makewebconf(["--upstream", "127.0.0.1:8081", "--listen", "10.0.0.1"]) == 0


# -- the web app's own routes ----------------------------------------------------------------

def test_app_serves_install_and_tftpboot_from_the_settings_per_request(sqlite_store, tmp_path):
    store = sqlite_store
    trees = {}
    for name in ("tftp1", "tftp2", "inst1", "inst2"):
        d = trees[name] = tmp_path / name
        (d / "os").mkdir(parents=True)
        (d / "os" / "file").write_text(name)
    (tmp_path / "secret").write_text("no")
    os.symlink("../secret", trees["inst1"] / "out")
    os.symlink("os/file", trees["inst1"] / "alias")
    store.upsert("site", {"key": "tftpdir"}, {"value": str(trees["tftp1"])})
    store.upsert("site", {"key": "installdir"}, {"value": str(trees["inst1"])})
    client = create_app(db_url=store.url).test_client()
    assert client.get("/install/os/file").data == b"inst1"
    assert client.get("/install/alias").data == b"inst1"  # a symlink inside the tree
    assert client.get("/tftpboot/os/file").data == b"tftp1"
    for path, codes in (("/install/out", {403}), ("/install/os", {403}), ("/install/", {404}),
                        ("/install/missing", {404}), ("/install/../secret", {403, 404}),
                        ("/install/os/%2E%2E/%2E%2E/secret", {403, 404})):
        assert client.get(path).status_code in codes, path
    # a change to the site table applies to the next request (no restart)
    store.upsert("site", {"key": "installdir"}, {"value": str(trees["inst2"])})
    store.upsert("site", {"key": "tftpdir"}, {"value": str(trees["tftp2"])})
    assert client.get("/install/os/file").data == b"inst2"
    assert client.get("/tftpboot/os/file").data == b"tftp2"


# -- the real nginx ------------------------------------------------------------------------------

NGINX_CONF = """\
worker_processes 1;
pid {d}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {d}/access.log;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    include {d}/nodemgr.conf;
}}
"""


@contextlib.contextmanager
def nginx(d: Path, port: int):
    """nginx with ``d/nginx.conf`` (which includes ``d/nodemgr.conf``), checked with -t,
    started (it daemonizes), stopped with ``-s quit`` (killed if that fails)."""
    (d / "tmp").mkdir(exist_ok=True)
    (d / "nginx.conf").write_text(NGINX_CONF.format(d=d))
    cmd = [NGINX, "-c", str(d / "nginx.conf"), "-e", str(d / "error.log")]
    t = subprocess.run([*cmd, "-t"], capture_output=True, text=True, timeout=20)
    assert t.returncode == 0 and "test is successful" in t.stderr, t.stderr
    subprocess.run(cmd, check=True, timeout=20)
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port),
                                                                         timeout=1):
                break
            time.sleep(0.02)
        yield
    finally:
        pid = None
        with contextlib.suppress(OSError, ValueError):
            pid = int((d / "nginx.pid").read_text())
        subprocess.run([*cmd, "-s", "quit"], capture_output=True, timeout=20)
        for _ in range(250):
            if not (d / "nginx.pid").exists():
                break
            time.sleep(0.02)
        else:
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)




@pytest.fixture
def world():
    """A 0755 directory outside pytest's 0700 tmp tree (nginx's workers run as nobody when
    the tests run as root), removed afterwards."""
    d = Path(tempfile.mkdtemp(prefix="nodemgr-nginx-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_real_nginx_serves_what_nodeset_writes_and_proxies_the_callback(world):
    d = world
    tftp, inst = d / "srv" / "tftp", d / "srv" / "inst"  # not /tftpboot: URLs must still work
    (tftp / "e2e").mkdir(parents=True)
    (tftp / "e2e" / "vmlinuz").write_bytes(b"KERNEL" * 1000)
    (tftp / "e2e" / "initrd.img").write_bytes(b"INITRD" * 1000)
    (inst / "e2e1" / "x86_64").mkdir(parents=True)
    (inst / "e2e1" / "x86_64" / ".treeinfo").write_text("[general]\n")
    (d / "outside").write_text("secret")
    if os.geteuid() == 0:  # a symlink to a file of another owner: refused (if_not_owner)
        (d / "other").write_text("secret")
        os.chown(d / "other", 65534, 65534)
        os.symlink("../../other", tftp / "foreign")
    port, app_port = free_port(), free_port()
    db_url = f"sqlite:///{d}/web.sqlite"
    (d / "none.conf").write_text("[nodemgr]\n")
    store = Store(db_url)
    try:
        define(store, str(tftp), {"node01": ("127.0.0.2", "52:54:00:aa:bb:01"),
                                  "node02": ("127.0.0.3", "52:54:00:aa:bb:02")},
               netboot="xnba", master="127.0.0.1")
        store.upsert("noderes", {"node": "node02"}, {"netboot": "grub2"})
        for k, v in {"installdir": str(inst), "httpport": str(port),
                     "callbackproxies": "127.0.0.1"}.items():
            store.upsert("site", {"key": k}, {"value": v})
        mknb.mknb(str(tftp))
        urls = arm(store, ["node01", "node02"])
        (d / "nodemgr.conf").write_text(webconf.render(webconf.from_settings(
            store, listen="127.0.0.1", upstream=f"127.0.0.1:{app_port}")))
        with gunicorn(db_url, d / "none.conf", app_port) as app, nginx(d, port):
            # iPXE (node01) and GRUB2 (node02) boot files, read through their MAC aliases
            # (symlinks), name kernel and initrd URLs that nginx serves
            code, script = get(port, "/tftpboot/xcat/xnba/macs/01-52-54-00-aa-bb-01")
            assert code == 200 and script.startswith(b"#!ipxe\n")
            fetched = re.findall(rb"http://127\.0\.0\.1:(\d+)(/tftpboot/\S+)", script)
            assert [p for _, p in fetched] == [b"/tftpboot/e2e/vmlinuz",
                                               b"/tftpboot/e2e/initrd.img"]
            assert {int(p) for p, _ in fetched} == {port}
            assert get(port, "/tftpboot/e2e/vmlinuz") == (200, b"KERNEL" * 1000)
            code, cfg = get(port, "/tftpboot/boot/grub2/grub.cfg-01-52-54-00-aa-bb-02")
            assert code == 200 and f"set root=(http,127.0.0.1:{port})".encode() in cfg
            path = re.search(rb"initrd (/tftpboot/\S+)", cfg).group(1).decode()
            assert get(port, path) == (200, b"INITRD" * 1000)
            # mknb's loaders, the install tree
            with open("/usr/lib/ipxe/undionly.kpxe", "rb") as fh:
                assert get(port, "/tftpboot/undionly.kpxe") == (200, fh.read())
            assert get(port, "/install/e2e1/x86_64/.treeinfo") == (200, b"[general]\n")
            # missing, listing, escapes, writes
            esc = {400, 404}  # nginx resolves ../%2F first: above "/" is 400, else no match
            for path, want in (("/tftpboot/missing", {404}), ("/install/nope", {404}),
                               ("/tftpboot/", {403}), ("/tftpboot/xcat/xnba/nodes/", {403}),
                               ("/install/", {403}),
                               ("/tftpboot/../outside", esc),
                               ("/tftpboot/..%2F..%2Foutside", esc),
                               ("/tftpboot/%2e%2e/%2e%2e/outside", esc),
                               ("/install/..%2f..%2foutside", esc),
                               ("/tftpboot/..%2Fsrv/inst/e2e1/x86_64/.treeinfo", esc),
                               ("/etc/passwd", {404}), ("/", {404}),
                               *((("/tftpboot/foreign", {403}),) if os.geteuid() == 0 else ())):
                code, body = get(port, path)
                assert code in want and b"secret" not in body, path
            assert get(port, "/tftpboot/e2e/vmlinuz", method="PUT")[0] == 405
            # the callback: nginx sets X-Forwarded-For to the client, the app (which trusts
            # 127.0.0.1 as a proxy) sees the node's own address
            assert get(port, urls["node01"], source="127.0.0.2") == (200, b"node01: booted\n")
            assert state(store, "node01")[:2] == ("booted", "boot")
            # a forged header is replaced, not appended to: even with the forging client
            # trusted as a proxy, the app sees "127.0.0.4" (appended: "127.0.0.3, 127.0.0.4",
            # read right to left = node02's address, accepted)
            store.upsert("site", {"key": "callbackproxies"}, {"value": "127.0.0.1,127.0.0.4"})
            code, _ = get(port, urls["node02"], source="127.0.0.4",
                          headers={"X-Forwarded-For": "127.0.0.3"})
            assert code == 403 and state(store, "node02")[0] == "installing"
            store.upsert("site", {"key": "callbackproxies"}, {"value": "127.0.0.1"})
            assert get(port, urls["node02"], source="127.0.0.3") == (200, b"node02: booted\n")
            app.terminate()
            out = app.communicate(timeout=10)[0]
        assert "node01 from 127.0.0.2: booted" in out and "token=" not in out
        access = (d / "access.log").read_text()
        assert "/tftpboot/e2e/vmlinuz" in access
        assert "install-finished" not in access and "token=" not in access
        assert not (d / "nginx.pid").exists()
    finally:
        store.close()


# -- what the boot files name ----------------------------------------------------------------

@pytest.mark.parametrize("netboot,port,want", [
    ("xnba", "80", ["kernel http://10.0.0.1/tftpboot/x/vmlinuz initrd=initrd a=1",
                    "initrd --name initrd http://10.0.0.1/tftpboot/x/initrd.img"]),
    ("xnba", "8081", ["kernel http://10.0.0.1:8081/tftpboot/x/vmlinuz initrd=initrd a=1",
                      "initrd --name initrd http://10.0.0.1:8081/tftpboot/x/initrd.img"]),
    ("grub2", "80", ["    set root=(http,10.0.0.1)", "    linux /tftpboot/x/vmlinuz a=1",
                     "    initrd /tftpboot/x/initrd.img"]),
    ("grub2-http", "8081", ["    set root=(http,10.0.0.1:8081)",
                            "    linux /tftpboot/x/vmlinuz a=1",
                            "    initrd /tftpboot/x/initrd.img"]),
    ("grub2-tftp", "8081", ["    set root=(tftp,10.0.0.1)", "    linux /x/vmlinuz a=1",
                            "    initrd /x/initrd.img"]),
])
def test_boot_files_fetch_over_http_from_the_served_prefix(tmp_path, netboot, port, want):
    from nodemgr.netboot.bootfiles import BootSpec, render

    text = render(BootSpec(node="n1", comment="install", netboot=netboot, kernel="x/vmlinuz",
                           initrd="x/initrd.img", args="a=1", server="10.0.0.1",
                           httpport=port, httpprefix="/tftpboot"))
    lines = text.splitlines()
    assert [ln for ln in lines if ln.strip().split(" ")[0] in ("kernel", "initrd", "linux",
                                                                 "set")
            and "timeout" not in ln and "default" not in ln] == want
    if netboot.startswith("grub2"):
        (tmp_path / "cfg").write_text(text)
        check = subprocess.run(["grub-script-check", str(tmp_path / "cfg")],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
