"""The seed's IMS notions for VirtualBox (seed 004) on the pool commands: a ``vbox``
virttype row holds the connection string, a pool of that type and its machines get vbox
endpoints for the pool user (or a machine's own user), and ``hypervisor.type=vbox`` hosts
are managed by the ``vbox`` driver (VBoxManage over SSH; no libvirt involved)."""

from __future__ import annotations

from nodemgr.cli import poolcmds
from nodemgr.plugins.base import Endpoint
from nodemgr.plugins.vbox import ssh_target
from nodemgr.tables.resolve import Resolver
from nodemgr.tables.store import open_default
from nodemgr.vmspec import Resolved, host_endpoint, host_target


def test_vbox_pool_machines_get_vbox_endpoints(cli_env, capsys):
    tpl = "vbox+ssh://#{user.name}@#{target.host}/"
    assert poolcmds.chvirttype(["vbox", "--connstring", tpl]) == 0
    assert poolcmds.mkpool(["vb", "--virttype", "vbox"]) == 0
    assert poolcmds.poolmachine(["vb", "desk1", "--ip", "10.0.0.9"]) == 0
    assert poolcmds.poolmachine(["vb", "desk2", "--ip", "10.0.0.10"]) == 0
    assert poolcmds.poolmachine(["vb", "here", "--local"]) == 0
    assert poolcmds.pooluser(["vb", "alice"]) == 0
    assert poolcmds.pooluser(["vb", "bob", "--machine", "desk2"]) == 0
    store = open_default()
    assert store.get("hypervisor", {"node": "desk1"})["type"] == "vbox"
    res = Resolved(Resolver(store), [])
    ep = host_endpoint(res, "desk1", "vbox")
    assert (ep.uri, ep.username) == ("vbox+ssh://alice@10.0.0.9/", "alice")
    assert ssh_target(ep) == ("10.0.0.9", 22, "alice")
    assert ssh_target(host_endpoint(res, "desk2", "vbox")) == ("10.0.0.10", 22, "bob")
    # the management node itself: VBoxManage runs as the pool user, over SSH on loopback
    local = host_endpoint(res, "here", "vbox")
    assert local.uri == "vbox+ssh:///" and ssh_target(local) == ("127.0.0.1", 22, "alice")
    # a vbox host is the vbox driver's, found from hypervisor.type
    t = host_target(res, "desk1")
    assert (t.driver, t.error) == ("vbox", None)
    assert capsys.readouterr().err == ""


def test_ssh_target_forms():
    assert ssh_target(Endpoint("vbox", "vbox://h1", host="n1")) == ("h1", 22, "root")
    assert ssh_target(Endpoint("vbox", "ssh://u@h1:2222/", host="n1")) == ("h1", 2222, "u")
    assert ssh_target(Endpoint("vbox", "vbox+ssh://:2200/", username="v")) == (
        "127.0.0.1", 2200, "v")
