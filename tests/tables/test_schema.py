"""The schema matches xCAT's Schema.pm (column order decides tabdump compatibility)."""

from __future__ import annotations

import pytest

from nodemgr.errors import TableError
from nodemgr.tables.schema import TABLES, is_disabled, table

# Column lists as in perl-xCAT/xCAT/Schema.pm of the revived xcat-core tree (%tabspec cols).
XCAT_COLS = {
    "site": "key value",
    "nodelist": "node groups status statustime appstatus appstatustime primarysn hidden "
                "updatestatus updatestatustime zonename",
    "nodegroup": "groupname grouptype members membergroups wherevals",
    "nodetype": "node os arch profile provmethod supportedarchs nodetype",
    "nodehm": "node power mgt cons termserver termport conserver serialport serialspeed "
              "serialflow getmac cmdmapping consoleondemand consoleenabled",
    "noderes": "node servicenode netboot tftpserver tftpdir nfsserver monserver nfsdir "
               "installnic primarynic discoverynics cmdinterface xcatmaster current_osimage "
               "next_osimage nimserver routenames nameservers proxydhcp syslog",
    "hosts": "node ip hostnames otherinterfaces",
    "mac": "node interface mac",
    "chain": "node currstate currchain chain ondiscover",
    "bootparams": "node kernel initrd kcmdline addkcmdline dhcpstatements adddhcpstatements",
    "hypervisor": "node type mgr interface netmap defaultnet cluster datacenter preferdirect",
    "vm": "node mgr host migrationdest storage storagemodel storagecache storageformat "
          "cfgstore memory cpus nics nicmodel bootorder clockoffset virtflags master vncport "
          "textconsole powerstate beacon datacenter cluster guestostype othersettings physlots "
          "vidmodel vidproto vidpassword",
    "vmmaster": "name os arch profile storage storagemodel nics vintage originator virttype "
                "specializeparameters",
    "policy": "priority name host commands noderange parameters time rule",
    "passwd": "key username password cryptmethod authdomain",
    "osimage": "imagename groups profile imagetype description provmethod rootfstype "
               "nfsrootopts osdistroname osupdatename cfmdir osname osvers osarch synclists "
               "postscripts postbootscripts serverrole isdeletable kitcomponents environvar",
    "linuximage": "imagename template boottarget addkcmdline pkglist pkgdir otherpkglist "
                  "otherpkgdir exlist postinstall rootimgdir kerneldir nodebootif otherifce "
                  "netdrivers kernelver krpmver permission dump crashkernelsize partitionfile "
                  "driverupdatesrc",
    "vpd": "node serial mtm side asset uuid",
    "auditlog": "recid audittime userid clientname clienttype command noderange args status",
    "kvm_nodedata": "node xml",
    "kvm_masterdata": "name xml",
}
XCAT_KEYS = {"passwd": ("key", "username"), "nodegroup": ("groupname",),
             "vmmaster": ("name",), "kvm_masterdata": ("name",), "policy": ("priority",),
             "site": ("key",), "osimage": ("imagename",), "auditlog": ("recid",)}
XCAT_NODECOL = {"vmmaster": "name", "kvm_masterdata": "name", "site": None, "policy": None,
                "passwd": None, "nodegroup": None, "osimage": None, "linuximage": None,
                "auditlog": None, "nodelist": "node", "vm": "node", "kvm_nodedata": "node"}


@pytest.mark.parametrize("name", sorted(XCAT_COLS))
def test_columns_in_xcat_order(name):
    assert TABLES[name].columns == tuple(XCAT_COLS[name].split()) + ("comments", "disable")


@pytest.mark.parametrize("name", sorted(XCAT_KEYS))
def test_keys(name):
    assert TABLES[name].keys == XCAT_KEYS[name]


@pytest.mark.parametrize("name", sorted(XCAT_NODECOL))
def test_nodecol(name):
    assert TABLES[name].nodecol == XCAT_NODECOL[name]


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_table_and_column_is_described(name):
    t = TABLES[name]
    assert t.description
    assert set(t.descriptions) == set(t.columns)
    assert all(t.descriptions[c] for c in t.columns)


def test_nodemgr_tables_say_so():
    for name in ("hostconn", "virttype"):
        assert TABLES[name].description.startswith("nodemgr:")


def test_lookup_errors():
    with pytest.raises(TableError, match='Unknown table "nope"'):
        table("nope")
    with pytest.raises(TableError, match='No column "x" in table "vm"'):
        table("vm").check_column("x")


@pytest.mark.parametrize("value, disabled", [
    (None, False), ("", False), ("0", False), ("no", False), ("NO", False), ("nO", False),
    ("1", True), ("yes", True), ("YES", True), ("x", True),
])
def test_is_disabled(value, disabled):
    assert is_disabled(value) is disabled
