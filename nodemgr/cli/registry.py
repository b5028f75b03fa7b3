"""Command name -> ``module:function``: the same table as pyproject.toml's console scripts
(a test checks the two agree), so ``bin/nodemgr`` starts a command with one import and no
entry-point scan."""

from __future__ import annotations

import importlib

COMMANDS = {
    "tabdump": "nodemgr.cli.tablecmds:tabdump",
    "tabrestore": "nodemgr.cli.tablecmds:tabrestore",
    "chtab": "nodemgr.cli.tablecmds:chtab",
    "nodels": "nodemgr.cli.nodecmds:nodels",
    "nodech": "nodemgr.cli.nodecmds:nodech",
    "nodeadd": "nodemgr.cli.nodecmds:nodeadd",
    "noderm": "nodemgr.cli.nodecmds:noderm",
    "lsdef": "nodemgr.cli.defcmds:lsdef",
    "mkdef": "nodemgr.cli.defcmds:mkdef",
    "chdef": "nodemgr.cli.defcmds:chdef",
    "rmdef": "nodemgr.cli.defcmds:rmdef",
    "mkvm": "nodemgr.cli.vmcmds:mkvm",
    "rmvm": "nodemgr.cli.vmcmds:rmvm",
    "chvm": "nodemgr.cli.vmcmds:chvm",
    "lsvm": "nodemgr.cli.vmcmds:lsvm",
    "clonevm": "nodemgr.cli.vmcmds:clonevm",
    "rpower": "nodemgr.cli.vmcmds:rpower",
    "rmigrate": "nodemgr.cli.vmcmds:rmigrate",
    "revacuate": "nodemgr.cli.vmcmds:revacuate",
    "rvitals": "nodemgr.cli.vmcmds:rvitals",
    "rinv": "nodemgr.cli.vmcmds:rinv",
    "rsetboot": "nodemgr.cli.vmcmds:rsetboot",
    "rcons": "nodemgr.cli.vmcmds:rcons",
    "getcons": "nodemgr.cli.vmcmds:getcons",
    "getrvidparms": "nodemgr.cli.vmcmds:getrvidparms",
    "rscan": "nodemgr.cli.vmcmds:rscan",
    "mkpool": "nodemgr.cli.poolcmds:mkpool",
    "lspool": "nodemgr.cli.poolcmds:lspool",
    "rmpool": "nodemgr.cli.poolcmds:rmpool",
    "poolmachine": "nodemgr.cli.poolcmds:poolmachine",
    "pooluser": "nodemgr.cli.poolcmds:pooluser",
    "chvirttype": "nodemgr.cli.poolcmds:chvirttype",
    "nodemgr-tftpd": "nodemgr.cli.tftpcmd:main",
    "nodeset": "nodemgr.cli.netbootcmds:nodeset",
    "updatenodestat": "nodemgr.cli.netbootcmds:updatenodestat",
    "copycds": "nodemgr.cli.netbootcmds:copycds",
    "lsve": "nodemgr.cli.rhevcmds:lsve",
    "cfgve": "nodemgr.cli.rhevcmds:cfgve",
    "chhypervisor": "nodemgr.cli.rhevcmds:chhypervisor",
    "rmhypervisor": "nodemgr.cli.rhevcmds:rmhypervisor",
    "discoverip": "nodemgr.cli.discovercmds:discoverip",
    "nodemgr-config": "nodemgr.cli.configcmds:nodemgr_config",
    "makenetworks": "nodemgr.cli.configcmds:makenetworks",
    "makedhcp": "nodemgr.cli.dhcpcmd:makedhcp",
    "mknb": "nodemgr.cli.mknbcmd:mknb",
    "makewebconf": "nodemgr.cli.mknbcmd:makewebconf",
}


def run(name: str, argv: list[str]) -> int:
    """Run command *name* with *argv*; returns its exit code."""
    module, func = COMMANDS[name].split(":")
    return getattr(importlib.import_module(module), func)(argv)
