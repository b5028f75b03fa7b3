"""Shared set-up for callback tests: a node armed for an install by the real ``nodeset``."""

from __future__ import annotations

import os
import re

from nodemgr.netboot import nodeset
from nodemgr.tables.resolve import Resolver

IMAGE = "e2e-x86_64-install-compute"


def define(store, tftpdir: str, nodes: dict[str, tuple[str, str]], *, netboot: str = "pxe",
           kernel: str = "e2e/vmlinuz", initrd: str = "e2e/initrd.img",
           kcmdline: str = "console=ttyS0 quiet", callbackurl: str | None = None,
           master: str | None = "10.0.0.1") -> None:
    """Define *nodes* (name -> (ip, mac)) and an install image whose boot target is
    *kernel*/*initrd*, in one transaction; *master* goes to ``site.master`` (None: left
    unset, so each node's address comes from the networks table)."""
    with store.transaction():
        store.upsert("site", {"key": "tftpdir"}, {"value": tftpdir})
        if master:
            store.upsert("site", {"key": "master"}, {"value": master})
        if callbackurl:
            store.upsert("site", {"key": "callbackurl"}, {"value": callbackurl})
        store.upsert("osimage", {"imagename": IMAGE},
                     {"provmethod": "install", "osvers": "e2e1", "osarch": "x86_64",
                      "profile": "compute", "imagetype": "linux"})
        store.upsert("linuximage", {"imagename": IMAGE}, {"boottarget": "e2e"})
        store.upsert("boottarget", {"bprofile": "e2e"},
                     {"kernel": kernel, "initrd": initrd, "kcmdline": kcmdline})
        for node, (ip, mac) in nodes.items():
            store.upsert("nodelist", {"node": node}, {"groups": "all,compute"})
            store.upsert("hosts", {"node": node}, {"ip": ip})
            store.upsert("mac", {"node": node}, {"mac": mac})
            store.upsert("noderes", {"node": node}, {"netboot": netboot})


def arm(store, nodes: list[str]) -> dict[str, str]:
    """``nodeset <nodes> osimage=<IMAGE>``; returns node -> callback URL path+query from the
    written boot file's ``nodemgr.callback=`` argument."""
    results = nodeset.nodeset(store, Resolver(store), nodes, f"osimage={IMAGE}")
    assert all(r.ok for r in results), [r.message for r in results]
    return {n: callback_path(store, n) for n in nodes}


#: The node file of each noderes.netboot family, relative to the TFTP root.
NODE_FILE = {"pxe": "pxelinux.cfg/{}", "xnba": "xcat/xnba/nodes/{}", "grub2": "boot/grub2/{}"}


def callback_path(store, node: str) -> str:
    """The callback URL's path and query (with the one-time token) from the node's boot
    file — the only place the token is kept in clear."""
    netboot = (store.get("noderes", {"node": node}) or {}).get("netboot") or "pxe"
    path = os.path.join(store.site("tftpdir"),
                        NODE_FILE[netboot.split("-")[0]].format(node))
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    m = re.search(r"(?:nodemgr\.callback|local_boot_trigger)=https?://[^/\s]+(\S+)", text)
    assert m, text
    return m.group(1)


def state(store, node: str) -> tuple:
    """What a callback may change: (status, currstate, currchain, token hash, kcmdline)."""
    nl = store.get("nodelist", {"node": node}) or {}
    ch = store.get("chain", {"node": node}) or {}
    tok = store.get("nodetoken", {"node": node}) or {}
    bp = store.get("bootparams", {"node": node}) or {}
    return (nl.get("status"), ch.get("currstate"), ch.get("currchain"), tok.get("tokenhash"),
            bp.get("kcmdline"))
