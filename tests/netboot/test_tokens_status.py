"""Tokens (mint/consume, one-time, expiry, hash only) and updatenodestat, on both back ends."""

from __future__ import annotations

import re

import pytest

from nodemgr.errors import UsageError
from nodemgr.netboot import status, tokens


def test_mint_stores_only_hash_and_consume_is_one_time(store):
    tok = tokens.mint(store, "n1")
    assert len(tok) >= 43
    row = store.get("nodetoken", {"node": "n1"})
    assert tok not in repr(row) and len(row["tokenhash"]) == 64
    with store.transaction():
        assert tokens.consume(store, "n1", "wrong" + tok) is False
    assert store.get("nodetoken", {"node": "n1"}) is not None  # a wrong token changes nothing
    with store.transaction():
        assert tokens.consume(store, "n1", tok) is True
    assert tokens.consume(store, "n1", tok) is False  # replay refused
    assert store.get("nodetoken", {"node": "n1"}) is None


def test_new_token_replaces_old_and_other_nodes_tokens_do_not_work(store):
    old = tokens.mint(store, "n1")
    new = tokens.mint(store, "n1")
    other = tokens.mint(store, "n2")
    assert old != new
    assert tokens.consume(store, "n1", old) is False
    assert tokens.consume(store, "n1", other) is False
    assert tokens.consume(store, "n1", "") is False
    assert tokens.consume(store, "n1", new) is True


def test_expired_token_refused(store):
    tok = tokens.mint(store, "n1", ttl_s=-1)
    assert tokens.consume(store, "n1", tok) is False
    assert tokens.consume(store, "nobody", tok) is False


def test_tokens_switch(store):
    assert tokens.enabled(store)
    store.upsert("site", {"key": "callbacktokens"}, {"value": "no"})
    assert not tokens.enabled(store)


def test_updatenodestat_writes_status_and_xcat_time(store):
    store.insert("nodelist", {"node": "n1", "groups": "all"})
    status.updatenodestat(store, ["n1"], "booted")
    row = store.get("nodelist", {"node": "n1"})
    assert row["status"] == "booted"
    assert re.fullmatch(r"\d\d-\d\d-\d{4} \d\d:\d\d:\d\d", row["statustime"])


def test_updatenodestat_unknown_status_is_an_error_and_changes_nothing(store):
    store.insert("nodelist", {"node": "n1", "groups": "all", "status": "installing"})
    with pytest.raises(UsageError, match="unknown status 'bootd'.*booted"):
        status.updatenodestat(store, ["n1"], "bootd")
    assert store.get("nodelist", {"node": "n1"})["status"] == "installing"


@pytest.mark.parametrize("state,expected", [
    ("install rhels8.6-x86_64-compute", "installing"), ("netboot x-y-z", "netbooting"),
    ("boot", "booting"), ("runimage=http://x/y", "booting"), ("runcmd=bmcsetup", "configuring"),
    ("standby", "standingby"), ("shell", "shell"), ("offline", None)])
def test_status_follows_state(state, expected):
    assert status.status_for_state(state) == expected
    assert expected is None or expected in status.VALID_STATUSES


def test_two_concurrent_callbacks_with_one_token_succeed_once(db_url):
    """The second transaction waits for the first one's write lock (SQLite) or row lock
    (PostgreSQL) and then finds the token gone: a token never works twice."""
    import threading

    from nodemgr.tables.store import Store

    first, second = Store(db_url), Store(db_url)
    token = tokens.mint(first, "n1")
    outcome = {}

    def other():
        with second.transaction():
            outcome["second"] = tokens.consume(second, "n1", token)

    with first.transaction():
        assert tokens.consume(first, "n1", token)
        if first.dialect == "postgresql":  # the row lock is what the other one meets
            t = threading.Thread(target=other)
            t.start()
            t.join(0.5)
            assert t.is_alive()  # waiting on our uncommitted delete
    if first.dialect == "sqlite":
        other()
    else:
        t.join(10)
    assert outcome == {"second": False}
    first.close()
    second.close()
