"""VirtualBox through libvirt's vbox driver (seed 004): only the table -> URI mapping can
run here (Debian 12 has libvirt-daemon-driver-vbox but no VirtualBox, so no vbox:// URI can
be opened). A vbox virttype row, a pool of that type and its machines give vbox URIs."""

from __future__ import annotations

from nodemgr.cli import poolcmds
from nodemgr.tables.resolve import Resolver
from nodemgr.tables.store import open_default
from nodemgr.vmspec import Resolved, host_endpoint


def test_vbox_pool_machines_get_vbox_uris(cli_env, capsys):
    tpl = "vbox#{auth.sep}#{auth.method}://#{user.name}@#{target.host}/session"
    assert poolcmds.chvirttype(["vbox", "--connstring", tpl, "--authmethod", "ssh"]) == 0
    assert poolcmds.mkpool(["vb", "--virttype", "vbox"]) == 0
    assert poolcmds.poolmachine(["vb", "desk1", "--ip", "10.0.0.9"]) == 0
    assert poolcmds.poolmachine(["vb", "here", "--local"]) == 0
    assert poolcmds.pooluser(["vb", "alice"]) == 0
    store = open_default()
    assert store.get("hypervisor", {"node": "desk1"})["type"] == "vbox"
    res = Resolved(Resolver(store), [])
    assert host_endpoint(res, "desk1", "libvirt").uri == "vbox+ssh://alice@10.0.0.9/session"
    assert host_endpoint(res, "here", "libvirt").uri == "vbox:///session"
    assert capsys.readouterr().err == ""
