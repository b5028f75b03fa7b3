"""The opt-in access log under a real gunicorn (etc/gunicorn.conf.py, logger_class
nodemgr.web.accesslog.AccessLogger): token= values are written ***, control characters
escaped, so a still-valid token never lands in the file and %0A cannot forge a line."""

from __future__ import annotations

import http.client

import pytest

from nodemgr.web.accesslog import escape, redact_query, safe
from tests.web.test_gunicorn import free_port, gunicorn

#: every atom that can carry a client's text
RICH = ('%(h)s "%(r)s" %(s)s q=%(q)s U=%(U)s f="%(f)s" a="%(a)s" i="%({referer}i)s" '
        'e=%({query_string}e)s raw=%({raw_uri}e)s x="%({x-note}i)s"')
FORGED = '127.0.0.1 "GET /forged" 200 0 0ms'
FORGED_PATH = "/install-finished/node01%0D%0A" + FORGED.replace(" ", "%20").replace(
    '"', "%22") + "%0A%1B%7F%85%5C"


def _request(port: int, path: str, headers: dict[str, str]) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


@pytest.mark.parametrize("fmt", [None, RICH], ids=["default-format", "every-atom"])
def test_access_log_redacts_tokens_and_escapes_controls(tmp_path, monkeypatch, fmt):
    log = tmp_path / "access.log"
    monkeypatch.setenv("NODEMGR_WEB_ACCESSLOG", str(log))
    if fmt:
        monkeypatch.setenv("NODEMGR_WEB_ACCESSLOG_FORMAT", fmt)
    else:
        monkeypatch.delenv("NODEMGR_WEB_ACCESSLOG_FORMAT", raising=False)
    (tmp_path / "none.conf").write_text("[nodemgr]\n")
    port = free_port()
    with gunicorn(f"sqlite:///{tmp_path}/web.sqlite", tmp_path / "none.conf", port):
        _request(port, "/install-finished/node01?token=SECRET1", {})
        _request(port, f"{FORGED_PATH}?a=1&tok%65n=SECRET2;TOKEN=SECRET3&b=2",
                 {"User-Agent": "wget?token=SECRET4",
                  "Referer": "http://10.0.0.1/x?token=SECRET5#f",
                  "X-Note": 'a\tb"c\\d'})  # gunicorn answers 400 to other controls
    text = log.read_text()
    lines = text.splitlines()
    assert "SECRET" not in text, text
    assert not [ln for ln in lines if not ln.startswith('127.0.0.1 "GET ')], text
    assert '"GET /forged' not in text and not any(ln.startswith(FORGED) for ln in lines)
    forged = [ln for ln in lines if "forged" in ln]
    assert len(forged) == 1, text
    assert ("node01\\x0d\\x0a127.0.0.1 \\x22GET /forged\\x22 200 0 0ms"
            "\\x0a\\x1b\\x7f\\x85\\x5c") in forged[0]
    if fmt:
        line = forged[0]
        assert "tok%65n=***;TOKEN=***&b=2" in line and "q=a=1&tok%65n=***" in line
        assert 'a="wget?token=***"' in line
        assert 'f="http://10.0.0.1/x?token=***#f"' in line and 'i="http://10.0.0.1/' in line
        assert 'x="a\\x09b\\x22c\\x5cd"' in line
        assert "raw=/install-finished/node01%0D%0A127.0.0.1" in line
        assert "/install-finished/node01?token=*** HTTP/1.1" in text


def test_redaction_and_escaping_rules():
    assert redact_query("token=abc") == "token=***"
    assert redact_query("/p?x=1&token=abc&y=token=z") == "/p?x=1&token=***&y=token=z"
    assert redact_query("a=b;Token+=c") == "a=b;Token+=***"
    assert redact_query("notatoken=1&mytoken=2") == "notatoken=1&mytoken=2"
    assert escape('a\r\nb\x00\x7f\x85"\\') == "a\\x0d\\x0ab\\x00\\x7f\\x85\\x22\\x5c"
    assert escape("caf\u00e9 ok/~") == "caf\u00e9 ok/~"
    assert safe(b"GET /?token=x\n") == "GET /?token=***\\x0a" and safe(200) == 200
