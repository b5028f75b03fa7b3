"""Shared set-up for callback tests: a node armed for an install by the real ``nodeset``."""

from __future__ import annotations

import os
import re

from nodemgr.netboot import nodeset
from nodemgr.tables.resolve import Resolver

IMAGE = "e2e-x86_64-install-compute"
#: Install images of OS families that take an answer file (:func:`define_answer_images`):
#: the shipped kickstart (rh/compute.rhels9.tmpl, boot line ``inst.ks=``) and preseed
#: (debian/compute.debian12.tmpl, ``url=``), booting IMAGE's boot target (the test kernel
#: and initramfs).
KS_IMAGE = "rhels9.4-x86_64-install-compute"
PRESEED_IMAGE = "debian12.5-x86_64-install-compute"
ANSWER_IMAGES = {KS_IMAGE: "rhels9.4", PRESEED_IMAGE: "debian12.5"}


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


def define_answer_images(store, rootpw_hash: str, *, boottarget: str = "e2e") -> None:
    """Add :data:`ANSWER_IMAGES` (profile compute, x86_64, no ``linuximage.template``: the
    shipped templates are found by osvers) with *boottarget* (default :func:`define`'s),
    and the root password hash answer files carry (``passwd`` key ``system`` user
    ``root``, an already crypted value)."""
    with store.transaction():
        for name, osvers in ANSWER_IMAGES.items():
            store.upsert("osimage", {"imagename": name},
                         {"provmethod": "install", "osvers": osvers, "osarch": "x86_64",
                          "profile": "compute", "imagetype": "linux"})
            store.upsert("linuximage", {"imagename": name}, {"boottarget": boottarget})
        store.upsert("passwd", {"key": "system", "username": "root"},
                     {"password": rootpw_hash})


def answer_file(store, node: str) -> str:
    """Path of *node*'s answer file, ``<installdir>/autoinst/<node>``."""
    return os.path.join(store.site("installdir") or "/install", "autoinst", node)


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


def answer_callback_path(store, node: str) -> str:
    """The install-finished URL's path and query (with the token) from *node*'s answer
    file — where an image with an answer file keeps the token (its boot file has none)."""
    with open(answer_file(store, node), encoding="utf-8") as fh:
        text = fh.read()
    m = re.search(r"https?://[^/\s'\"]+(/install-finished/[^\s'\"]+)", text)
    assert m, f"no install-finished URL in the answer file of {node}"
    return m.group(1)


def state(store, node: str) -> tuple:
    """What a callback may change: (status, currstate, currchain, token hash, kcmdline)."""
    nl = store.get("nodelist", {"node": node}) or {}
    ch = store.get("chain", {"node": node}) or {}
    tok = store.get("nodetoken", {"node": node}) or {}
    bp = store.get("bootparams", {"node": node}) or {}
    return (nl.get("status"), ch.get("currstate"), ch.get("currchain"), tok.get("tokenhash"),
            bp.get("kcmdline"))
