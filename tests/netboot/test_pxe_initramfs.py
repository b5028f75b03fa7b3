"""The PXE test initramfs's shell (tests/fixtures/pxe): what test_e2e_pxe's guests run.

``init.sh`` extracts an answer file's post-install section with the very sed program the
shipped templates are written for (:data:`nodemgr.netboot.answerfile.EXTRACT_SED`), so the
two cannot drift; the scripts parse under busybox ash; the wget tap prints what the post
section's discarded answers were, never a query string (the token). Fast: no guest.
"""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from nodemgr.netboot import answerfile

PXE = Path(__file__).resolve().parents[1] / "fixtures" / "pxe"
BUSYBOX = "/bin/busybox"
need_busybox = pytest.mark.skipif(not os.access(BUSYBOX, os.X_OK),
                                  reason="busybox-static is not installed")


def test_init_extracts_with_answerfile_extract_sed_verbatim():
    init = (PXE / "init.sh").read_text()
    assert answerfile.EXTRACT_SED in init
    assert answerfile.EXTRACT_SH in init      # quoted as one sed -n '...' word, too


@need_busybox
@pytest.mark.parametrize("name", ["init.sh", "default.script", "wget-tap.sh"])
def test_scripts_parse_under_busybox_ash(name):
    r = subprocess.run([BUSYBOX, "sh", "-n", str(PXE / name)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@need_busybox
def test_init_extraction_under_busybox_sed(tmp_path):
    """The post section of a kickstart (plain lines) and of a preseed (``#> `` lines) as
    init.sh's sed line gets it from busybox sed."""
    line = next(ln for ln in (PXE / "init.sh").read_text().splitlines()
                if answerfile.EXTRACT_SED in ln)
    post = "echo one\n\necho 'two  spaced'\n"
    ks = f"text\n%post\n{answerfile.POST_BEGIN}\n{post}{answerfile.POST_END}\n%end\n"
    preseed = ("d-i x string y\n" + f"{answerfile.POST_BEGIN}\n"
               + "".join(f"#> {ln}\n" if ln else "#>\n" for ln in post.splitlines())
               + f"{answerfile.POST_END}\n")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(BUSYBOX, bindir / "sed")
    for name, text in (("ks", ks), ("preseed", preseed)):
        (tmp_path / "answer").write_text(text)
        r = subprocess.run([BUSYBOX, "sh", "-c", line.strip().replace("/tmp/", f"{tmp_path}/")],
                           env={"PATH": str(bindir)}, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "post.sh").read_text() == post, name
        (tmp_path / "post.sh").unlink()


@need_busybox
def test_wget_tap_prints_answers_without_the_query(tmp_path):
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = (b"n1: booted\n" if self.path.startswith("/install-finished/")
                    else b"n1: failed\n" if self.path.startswith("/install-status/")
                    else b"#!/bin/sh\n")
            code = 403 if self.path.startswith("/install/autoinst/") else 200
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.do_GET()

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(BUSYBOX, bindir / "busybox")
    shutil.copy(PXE / "wget-tap.sh", tmp_path / "tap.sh")
    script = (f". ./tap.sh\n"
              f"wget -q -O /dev/null '{base}/install-finished/n1?token=SECRET'; echo rc=$?\n"
              f"wget -q -O /dev/null --post-data='status=failed&script=x' "
              f"'{base}/install-status/n1?token=SECRET'; echo rc=$?\n"
              f"wget -q -O ps '{base}/install/postscripts/ps'; echo rc=$?; cat ps\n"
              f"wget -q -O /dev/null '{base}/install/autoinst/n2'; echo rc=$?\n")
    try:
        r = subprocess.run([BUSYBOX, "sh", "-c", script], cwd=tmp_path,
                           env={"PATH": str(bindir), "TMPDIR": str(tmp_path)},
                           capture_output=True, text=True, timeout=30)
    finally:
        srv.shutdown()
    out = r.stdout
    assert f"NODEMGR-E2E: wget GET {base}/install-finished/n1 exit 0 answer: n1: booted" in out
    assert (f"NODEMGR-E2E: wget POST {base}/install-status/n1 exit 0 answer: n1: failed"
            in out)
    assert f"NODEMGR-E2E: wget GET {base}/install/postscripts/ps exit 0\nrc=0\n#!/bin/sh" in out
    assert f"NODEMGR-E2E: wget GET {base}/install/autoinst/n2 exit 1 answer: \nrc=1" in out
    assert "SECRET" not in out + r.stderr
    assert out.count("rc=0") == 3
