"""Shared set-up for callback tests: a node armed for an install by the real ``nodeset``."""

from __future__ import annotations

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


def callback_path(store, node: str) -> str:
    row = store.get("bootparams", {"node": node})
    m = re.search(r"nodemgr\.callback=https?://[^/\s]+(\S+)", row["kcmdline"])
    assert m, row["kcmdline"]
    return m.group(1)


def state(store, node: str) -> tuple:
    """What a callback may change: (status, currstate, currchain, token hash, kcmdline)."""
    nl = store.get("nodelist", {"node": node}) or {}
    ch = store.get("chain", {"node": node}) or {}
    tok = store.get("nodetoken", {"node": node}) or {}
    bp = store.get("bootparams", {"node": node}) or {}
    return (nl.get("status"), ch.get("currstate"), ch.get("currchain"), tok.get("tokenhash"),
            bp.get("kcmdline"))
