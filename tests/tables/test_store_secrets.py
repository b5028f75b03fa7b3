"""A PostgreSQL URL's password never shows: not in a connection error (ours or the text
psycopg/libpq echo), not in a command's output, not in nodemgr-config, not in psycopg's
debug log. Against the real server scripts/setup-host starts (issue 12, secrets)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid

import pytest

from nodemgr.errors import ConfigError
from nodemgr.tables.store import Store, mask_url

pytestmark = pytest.mark.postgres

SECRET = "Wr0ng-S3cret"


@pytest.fixture
def pw_role(pg_url):
    """A login role with a password (TCP to 127.0.0.1 uses scram-sha-256) that owns the
    fixture's fresh schema: (role, password, schema URL without credentials)."""
    import psycopg

    from tests.conftest import PG_BASE

    role, password = "nm_pw_" + uuid.uuid4().hex[:8], "R1ght-" + uuid.uuid4().hex[:10]
    schema = pg_url.rsplit("%3D", 1)[1]
    admin = psycopg.connect(PG_BASE, autocommit=True, connect_timeout=5)
    admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    admin.execute(f"GRANT ALL ON SCHEMA {schema} TO {role}")
    try:
        yield role, password, f"127.0.0.1/nodemgr_test?options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f"DROP OWNED BY {role}")
        admin.execute(f"DROP ROLE {role}")
        admin.close()


def _bad_urls(role: str, rest: str) -> list[str]:
    return [
        f"postgresql://{role}:{SECRET}@{rest}",                             # wrong password
        f"postgresql://{role}:{SECRET}@127.0.0.1:1/nodemgr_test",            # wrong port
        f"postgresql://{role}@{rest}&password={SECRET}",                     # in the query
        f"postgres://{role}:{SECRET}@[::1/nodemgr_test",                    # libpq echoes it
        f"postgresql://{role}:{SECRET}@127.0.0.1:x{SECRET}/nodemgr_test",     # echoed as port
        f"postgresql://{role}:{SECRET.replace('-', '%2D')}@{rest}",          # percent-encoded
        f"host=127.0.0.1 user={role} password={SECRET}",                     # not a URL at all
    ]


def test_connection_errors_show_the_url_with_the_password_masked(pw_role):
    role, _, rest = pw_role
    for url in _bad_urls(role, rest):
        with pytest.raises(ConfigError) as info:
            Store(url)
        text = str(info.value)
        assert SECRET not in text and SECRET.replace("-", "%2D") not in text, text
        assert "S3cret" not in text, text
        assert len(text.splitlines()) == 1
    with pytest.raises(ConfigError, match=rf"postgresql://{role}:\*\*\*@127\.0\.0\.1/nodemgr_"
                                          r".*password authentication failed"):
        Store(f"postgresql://{role}:{SECRET}@{rest}")


def test_psycopg_debug_log_of_a_failed_connection_has_no_password(pw_role, caplog):
    role, _, rest = pw_role
    with caplog.at_level(logging.DEBUG, logger="psycopg"), pytest.raises(ConfigError):
        Store(f"postgresql://{role}:{SECRET}@{rest}")
    assert caplog.records and SECRET not in caplog.text


def test_commands_and_nodemgr_config_never_print_the_password(pw_role, tmp_path):
    role, password, rest = pw_role
    (tmp_path / "none.conf").write_text("[nodemgr]\n")
    base = dict(os.environ, NODEMGR_CONF=str(tmp_path / "none.conf"))

    def run(args, url):
        return subprocess.run([sys.executable, "-c", "import sys; from nodemgr.cli."
                               f"{args[0]} import {args[1]} as m; sys.exit(m(sys.argv[1:]))", *args[2:]],
                              env=dict(base, NODEMGR_DB=url), capture_output=True, text=True,
                              timeout=60)

    for url in _bad_urls(role, rest)[2:5]:   # in the query, echoed by libpq, as the port
        r = run(("nodecmds", "nodels", "all"), url)
        assert r.returncode == 1 and r.stderr.startswith("Error: cannot open database") \
            or r.stderr.startswith("Error: unsupported database URL"), r.stderr
        assert SECRET not in r.stdout + r.stderr and "S3cret" not in r.stderr, r.stderr
    for url, extra in ((f"postgresql://{role}:{password}@{rest}", ()),
                       (f"postgresql://{role}@{rest}&password={password}", ("--json",))):
        r = run(("configcmds", "nodemgr_config", *extra), url)
        assert r.returncode == 0, r.stderr
        assert password not in r.stdout + r.stderr
        assert f"postgresql://{role}" in r.stdout and "***" in r.stdout


def test_mask_url_and_redact_forms():
    from nodemgr.tables.store import redact

    assert mask_url("postgresql://u:p%40ss@db.example/x") == "postgresql://u:***@db.example/x"
    assert mask_url("postgresql://u@h/x?sslmode=require&password=pw1&a=b") == \
        "postgresql://u@h/x?sslmode=require&password=***&a=b"
    assert mask_url("postgresql://u:pw@h/x?options=a@b") == "postgresql://u:***@h/x?options=a@b"
    assert mask_url("sqlite:////var/lib/nodemgr/nodemgr.sqlite") == \
        "sqlite:////var/lib/nodemgr/nodemgr.sqlite"
    assert mask_url("postgresql:///nodemgr") == "postgresql:///nodemgr"
    assert redact('invalid integer value "abcSecret" for "port"',
                  "postgresql://u:abcSecretXYZ@h:abcSecret/x") == \
        'invalid integer value "***" for "port"'
