"""Agent lists, credentials from passwd, and parsing of hostile SNMP indexes/values."""

from __future__ import annotations

import pytest

from nodemgr.discovery import AgentSpec, credentials, node_macs, parse_agents
from nodemgr.errors import UsageError
from nodemgr.snmp import mac_text, parse_mac_index, parse_media_index, parse_phys_index


def test_parse_agents():
    a = parse_agents("10.0.0.1 | [fd00::1]:1161@v3:ops,timeout=0.5,retries=0|sw@v2c",
                     timeout=3)
    assert a == [AgentSpec("10.0.0.1", 161, "v2c", None, 3, 1),
                 AgentSpec("fd00::1", 1161, "v3", "ops", 0.5, 0),
                 AgentSpec("sw", 161, "v2c", None, 3, 1)]
    assert a[1].name == "[fd00::1]:1161"
    for bad in ("10.0.0.1:99999", "h@v4", "h,timeout=x", "h,timeout=100", "h,color=red", "a b"):
        with pytest.raises(UsageError, match="invalid SNMP agent"):
            parse_agents(bad)


def test_credentials_from_passwd_never_in_messages():
    rows = [{"key": "snmp", "username": "community", "password": "c1"},
            {"key": "snmp:sw:161", "username": "community", "password": "c2"},
            {"key": "snmp", "username": "ops", "password": "authkey", "cryptmethod": "sha/aes256"},
            {"key": "snmppriv", "username": "ops", "password": "privkey"},
            {"key": "snmp", "username": "md5only", "password": "k", "cryptmethod": "MD5"},
            {"key": "snmp", "username": "odd", "password": "k", "cryptmethod": "SHA/ROT13"}]
    assert credentials(rows, AgentSpec("r1")).community == "c1"
    assert credentials(rows, AgentSpec("sw")).community == "c2"
    c = credentials(rows, AgentSpec("r1", version="v3", user="ops"))
    assert (c.user, c.auth_key, c.priv_key, c.auth, c.priv) == \
        ("ops", "authkey", "privkey", "SHA", "AES256")
    assert "authkey" not in repr(c) and "privkey" not in repr(c)
    c = credentials(rows, AgentSpec("r1", version="v3", user="md5only"))
    assert (c.auth, c.priv_key) == ("MD5", None)
    with pytest.raises(UsageError, match="invalid SNMPv3 protocols") as e:
        credentials(rows, AgentSpec("r1", version="v3", user="odd"))
    assert "'k'" not in str(e.value)
    with pytest.raises(UsageError, match="no SNMP community for agent"):
        credentials([], AgentSpec("r1"))
    with pytest.raises(UsageError, match="no SNMPv3 user nobody for agent r1:161"):
        credentials(rows, AgentSpec("r1", version="v3", user="nobody"))


def test_index_and_value_parsers():
    assert parse_phys_index((3, 1, 4, 10, 98, 0, 50)) == (3, "10.98.0.50")
    assert parse_phys_index((3, 2, 16, 253, 152) + (0,) * 13 + (80,)) == (3, "fd98::50")
    assert parse_phys_index((3, 3, 8, 10, 0, 0, 1, 0, 0, 0, 5)) == (3, "10.0.0.1")  # ipv4z
    for bad in [(3, 1, 5, 10, 98, 0, 50), (3, 1, 4, 10, 98, 0), (3, 9, 4, 1, 2, 3, 4),
                (3, 1, 4, 10, 98, 0, 300), (3,)]:
        assert parse_phys_index(bad) is None, bad
    assert parse_media_index((2, 10, 0, 0, 7)) == (2, "10.0.0.7")
    assert parse_media_index((2, 10, 0, 7)) is None and parse_media_index((2, 1, 2, 3, 256)) is None
    assert parse_mac_index((82, 84, 0, 170, 187, 80)) == "52:54:00:aa:bb:50"
    assert parse_mac_index((82, 84, 0, 170, 187)) is None
    assert mac_text(b"\x52\x54\x00\xaa\xbb") is None


def test_node_macs():
    assert node_macs("52:54:00:AA:BB:01|52-54-00-aa-bb-02!n1-eth1 junk") == \
        ["52:54:00:aa:bb:01", "52:54:00:aa:bb:02"]
    assert node_macs(None) == []
