"""Boot parameters: parsing (bad input named), bootparams.conf, the NoCloud files, and the
cidata ISO read back with pycdlib and with the kernel-independent ``isoinfo``-free path."""

from __future__ import annotations

import pytest

from nodemgr import bootparams as bp
from nodemgr.errors import UsageError


def test_parse_and_column_round_trip():
    p = bp.parse_pairs(["ip=10.0.0.5/24", "gateway=10.0.0.1|dns=1.1.1.1,9.9.9.9", "x.y=a b"])
    assert p == {"ip": "10.0.0.5/24", "gateway": "10.0.0.1", "dns": "1.1.1.1,9.9.9.9",
                 "x.y": "a b"}
    assert bp.parse_column(bp.format_column(p)) == p
    assert bp.render_conf(p) == b"dns=1.1.1.1,9.9.9.9\ngateway=10.0.0.1\nip=10.0.0.5/24\nx.y=a b\n"
    assert bp.parse_conf(bp.render_conf(p)) == p
    assert bp.addresses(p) == ["10.0.0.5"] and bp.addresses({"ip": "dhcp"}) == []


@pytest.mark.parametrize("item,needle", [
    ("novalue", "invalid boot parameter 'novalue'"),
    ("=x", "invalid boot parameter"),
    ("bad key=1", "invalid boot parameter"),
    ("ip=10.0.0.300", "ip='10.0.0.300'"),
    ("gateway=here", "gateway='here'"),
    ("password", "invalid boot parameter 'password'"),
])
def test_bad_pairs(item, needle):
    with pytest.raises(UsageError, match=needle.replace("(", r"\(").replace(".", r"\.")):
        bp.parse_pairs([item])


def test_password_never_echoed():
    with pytest.raises(UsageError) as e:
        bp.parse_pairs(["password"])
    assert "secret" not in str(e.value)
    files = bp.cidata_files("vm1", {"password": "s3cret", "ip": "dhcp"})
    assert b"s3cret" not in files["bootparams.conf"]


def test_network_config_static_and_dhcp():
    net = bp.network_config({"ip": "10.0.0.5/24", "gateway": "10.0.0.1", "dns": "10.0.0.2"},
                            "52:54:00:AA:00:01")
    assert 'mac_address: "52:54:00:aa:00:01"' in net and 'address: "10.0.0.5/24"' in net
    assert 'gateway: "10.0.0.1"' in net and 'dns_nameservers: ["10.0.0.2"]' in net
    assert "type: dhcp" in bp.network_config({"ip": "dhcp"}, None)
    assert bp.network_config({"role": "x"}, None) is None


def test_cidata_iso_round_trip(tmp_path):
    path = tmp_path / "vm1-cidata.iso"
    params = {"ip": "10.0.0.5/24", "hostname": "web1", "role": "web"}
    bp.build_cidata_iso(str(path), "vm1", params, "52:54:00:00:00:01")
    label, files = bp.read_cidata_iso(str(path))
    assert label == "cidata"
    assert set(files) == {"meta-data", "user-data", "network-config", "bootparams.conf"}
    assert files["meta-data"] == b'instance-id: "vm1"\nlocal-hostname: "web1"\n'
    assert files["user-data"].startswith(b"#cloud-config\nhostname: \"web1\"\n")
    assert bp.parse_conf(files["bootparams.conf"]) == params
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left
