"""Answer files through nodeset (lookup, context, staged writes, bad input) and the web
app's /install/autoinst/<node> and /install-status/<node> routes, on SQLite and
PostgreSQL."""

from __future__ import annotations

import os
import re

import pytest

from nodemgr.netboot import autoinst
from nodemgr.netboot.nodeset import nodeset
from nodemgr.tables.resolve import Resolver
from nodemgr.web.app import create_app

IMG = "rocky9.2-x86_64-install-compute"
MAC = "52:54:00:aa:bb:01"
HASH = "$6$saltsalt$Jx5DxkJ2O7kOeH0c6wUjPXqgqGOcq0nDLVq0vDg4VAl1n3gC6QT8y3H9bH1oG2Nf6d9TxS1hUq/0"
#: a tiny template using most of the context (what the shipped ones use is tested in
#: test_templates.py)
TEMPLATE = """\
# answer file for node {{ node }}
url --url={{ repo }}
rootpw --iscrypted {{ rootpw_hash }}
timezone {{ timezone }}
{% if network %}network {{ network.net }}/{{ network.mask }} gw={{ network.gateway }}{% endif %}

bootloader --append="{{ kernel_options }}"
%post
#nodemgr:post-begin
{% for k, v in env.items() %}
export {{ k }}={{ v | sh }}
{% endfor %}
scripts="{{ postscripts | join(' ') }}"
wget -q -O- {{ callback_url | sh }}
#nodemgr:post-end
%end
"""


@pytest.fixture
def cl(store, tmp_path):
    """n1 (MAC, IP 10.0.0.11) and n2 (no MAC); a TFTP root, an install tree with the
    postscripts, a crypted root hash, the image with its own template."""
    tftp, inst = tmp_path / "tftp", tmp_path / "install"
    (inst / "postscripts").mkdir(parents=True)
    for s in ("sethostname", "remoteshell", "extra"):
        (inst / "postscripts" / s).write_text("#!/bin/sh\nexit 0\n")
    tmpl = tmp_path / "ks.tmpl"
    tmpl.write_text(TEMPLATE)
    for k, v in {"tftpdir": str(tftp), "installdir": str(inst), "master": "10.0.0.1",
                 "callbackurl": "http://10.0.0.1:8080", "timezone": "Europe/Paris"}.items():
        store.upsert("site", {"key": k}, {"value": v})
    store.upsert("passwd", {"key": "system", "username": "root"}, {"password": HASH})
    store.insert("networks", {"net": "10.0.0.0", "mask": "255.255.255.0",
                              "gateway": "<xcatmaster>", "nameservers": "10.0.0.2"})
    for n, ip in (("n1", "10.0.0.11"), ("n2", "10.0.0.12")):
        store.insert("nodelist", {"node": n, "groups": "compute,all"})
        store.insert("hosts", {"node": n, "ip": ip})
    store.insert("mac", {"node": "n1", "mac": MAC})
    store.insert("postscripts", {"node": "compute", "postscripts": "extra"})
    store.insert("osimage", {"imagename": IMG, "provmethod": "install", "osvers": "rocky9.2",
                             "osarch": "x86_64", "profile": "compute"})
    store.insert("linuximage", {"imagename": IMG, "template": str(tmpl),
                                "addkcmdline": "R::console=ttyS0 inst.text"})
    store.insert("boottarget", {"bprofile": "rocky9.2-x86_64",
                                "kernel": "xcat/rocky9.2/x86_64/vmlinuz",
                                "initrd": "xcat/rocky9.2/x86_64/initrd.img",
                                "kcmdline": "inst.repo=http://!myipfn!/install/rocky9.2/x86_64"})
    return store, tftp, inst, tmpl


def run(store, nodes, state):
    return {r.node: (r.ok, r.message) for r in nodeset(store, Resolver(store), nodes, state)}


def test_install_renders_the_answer_file_and_points_the_boot_line_at_it(cl):
    store, tftp, inst, _ = cl
    assert run(store, ["n1"], f"osimage={IMG}") == {"n1": (True, "install rocky9.2-x86_64-compute")}
    path = inst / "autoinst" / "n1"
    assert path.stat().st_mode & 0o777 == 0o600
    text = path.read_text()
    assert text.startswith("# answer file for node n1\n")
    assert "url --url=http://10.0.0.1/install/rocky9.2/x86_64\n" in text
    assert f"rootpw --iscrypted {HASH}\n" in text and "timezone Europe/Paris\n" in text
    assert "network 10.0.0.0/255.255.255.0 gw=10.0.0.1\n" in text  # <xcatmaster>
    assert 'bootloader --append="console=ttyS0"' in text               # R:: parts only
    assert "export NODE=n1\n" in text and "export MASTER=10.0.0.1\n" in text
    assert "export PROVMETHOD=rocky9.2-x86_64-install-compute\n" in text
    assert 'scripts="sethostname remoteshell extra"' in text          # xcatdefaults, group
    token = re.search(r"install-finished/n1\?token=([\w-]+)", text).group(1)
    boot = (tftp / "pxelinux.cfg" / "n1").read_text()
    # the boot line names the answer file, carries no token and no R:: part
    assert ("inst.repo=http://10.0.0.1/install/rocky9.2/x86_64 inst.text "
            "BOOTIF=01-52-54-00-aa-bb-01 inst.ks=http://10.0.0.1/install/autoinst/n1\n") in boot
    assert token not in boot and "nodemgr.callback" not in boot and "R::" not in boot
    for name in ("bootparams", "chain", "nodelist", "nodetoken"):
        assert token not in repr(store.select(name, include_disabled=True)), name
    # next (the callback's step) boots from disk and removes the answer file
    assert run(store, ["n1"], "next") == {"n1": (True, "boot")}
    assert not path.exists()
    assert run(store, ["n1"], f"osimage={IMG}")["n1"][0] and path.exists()
    assert run(store, ["n1"], "offline") == {"n1": (True, "offline")}
    assert not path.exists() and os.listdir(inst / "autoinst") == []


def test_http_port_and_debian_boot_arguments(cl):
    store, tftp, inst, tmpl = cl
    store.upsert("site", {"key": "httpport"}, {"value": "8081"})
    store.upsert("site", {"key": "domain"}, {"value": "example.org"})
    store.update("osimage", {"imagename": IMG}, {"osvers": "debian12.5"})
    store.insert("boottarget", {"bprofile": "debian12.5-x86_64", "kernel": "k", "initrd": "i"})
    assert run(store, ["n1"], f"osimage={IMG}")["n1"][0]
    boot = (tftp / "pxelinux.cfg" / "n1").read_text()
    assert ("auto=true priority=critical url=http://10.0.0.1:8081/install/autoinst/n1 "
            "hostname=n1 domain=example.org interface=auto") in boot
    assert "url --url=http://10.0.0.1:8081/install/debian12.5/x86_64" in (
        inst / "autoinst" / "n1").read_text()


def unchanged(store, tftp, inst):
    assert store.get("chain", {"node": "n1"}) is None
    assert not (tftp / "pxelinux.cfg" / "n1").exists()
    assert not (inst / "autoinst" / "n1").exists()
    assert store.get("nodetoken", {"node": "n1"}) is None


@pytest.mark.parametrize("source,needle", [
    ("{% if x %}\nbroken\n", "ks.tmpl, line 2: Unexpected end of template"),
    ("line\n{{ nosuchvalue }}\n", "ks.tmpl, line 2: 'nosuchvalue' is undefined"),
    ("{{ ''.__class__.__mro__ }}\n", "ks.tmpl, line 1: access to attribute '__class__'"),
])
def test_template_errors_name_the_line_and_change_nothing(cl, source, needle):
    store, tftp, inst, tmpl = cl
    tmpl.write_text(source)
    ok, msg = run(store, ["n1"], f"osimage={IMG}")["n1"]
    assert not ok and needle in msg and "\n" not in msg, msg
    unchanged(store, tftp, inst)


def test_no_template_lists_the_names_searched(cl):
    store, tftp, inst, _ = cl
    store.update("linuximage", {"imagename": IMG}, {"template": ""})
    store.update("osimage", {"imagename": IMG}, {"osvers": "rocky7.9", "profile": "hpc"})
    store.insert("boottarget", {"bprofile": "rocky7.9-x86_64", "kernel": "k", "initrd": "i"})
    ok, msg = run(store, ["n1"], f"osimage={IMG}")["n1"]
    assert not ok and msg.startswith("no answer-file template for os rocky7.9 profile hpc")
    site = os.path.join(str(inst), "custom", "install", "rh")
    for name in ("hpc.rocky7.9.x86_64.tmpl", "hpc.rocky7.x86_64.tmpl",
                 "hpc.rhels7.x86_64.tmpl", "hpc.rocky7.9.tmpl", "hpc.rhels7.tmpl",
                 "hpc.x86_64.tmpl", "hpc.tmpl"):
        assert f"{site}/{name}" in msg
        assert f"{autoinst.answerfile.SHIPPED_DIR}/rh/{name}" in msg
    unchanged(store, tftp, inst)


def test_site_directory_overrides_and_xcat_name_order(cl, tmp_path):
    store, tftp, inst, _ = cl
    store.update("linuximage", {"imagename": IMG}, {"template": ""})
    site = inst / "custom" / "install" / "rh"
    site.mkdir(parents=True)
    (site / "compute.rhels9.tmpl").write_text("genos {{ node }}\n")
    assert run(store, ["n1"], f"osimage={IMG}")["n1"][0]
    assert (inst / "autoinst" / "n1").read_text() == "genos n1\n"
    (site / "compute.rocky9.x86_64.tmpl").write_text("osbase.arch {{ node }}\n")  # earlier
    assert run(store, ["n1"], f"osimage={IMG}")["n1"][0]
    assert (inst / "autoinst" / "n1").read_text() == "osbase.arch n1\n"
    store.upsert("site", {"key": "templatedir"}, {"value": str(tmp_path / "elsewhere")})
    ok, msg = run(store, ["n1"], f"osimage={IMG}")["n1"]  # shipped rhels9 from then on
    assert ok, msg
    assert "%post" in (inst / "autoinst" / "n1").read_text()


def test_names_and_platforms():
    assert autoinst.os_names("rocky9.2") == ("rocky9.2", "rocky9", "rhels9")
    assert autoinst.os_names("debian12.5") == ("debian12.5", "debian12", "debian12")
    assert autoinst.platform("alma8.9") == "rh" and autoinst.platform("rhvh4.4") == "rhvh"
    assert autoinst.platform("rhevh6.5") is None and autoinst.platform("xcp-ng8.2") is None
    assert autoinst.platform("debian12") == "debian" and autoinst.platform("e2e1") is None
    assert autoinst.candidate_names("compute", "rhels9", "x86_64") == [
        "compute.rhels9.x86_64.tmpl", "compute.rhels9.tmpl", "compute.x86_64.tmpl",
        "compute.tmpl"]


@pytest.mark.parametrize("row,needle", [
    (None, "has no password hash"),
    ("cluster", "holds a clear-text password"),
    ("$6$", "holds a clear-text password"),
])
def test_root_hash_missing_or_clear_is_refused(cl, row, needle):
    store, tftp, inst, _ = cl
    store.delete("passwd", {"key": "system", "username": "root"})
    if row is not None:
        store.insert("passwd", {"key": "system", "username": "root", "password": row})
    ok, msg = run(store, ["n1"], f"osimage={IMG}")["n1"]
    assert not ok and needle in msg and (row is None or row not in msg.split(";")[0][-8:])
    unchanged(store, tftp, inst)


def test_missing_postscript_fails_that_node(cl):
    store, tftp, inst, _ = cl
    os.unlink(inst / "postscripts" / "extra")
    ok, msg = run(store, ["n1"], f"osimage={IMG}")["n1"]
    assert not ok and msg.startswith("postscript extra (postscripts table) is not in")
    unchanged(store, tftp, inst)


def test_a_failed_commit_writes_no_answer_file(cl, monkeypatch):
    store, tftp, inst, _ = cl
    real = store.upsert_many

    def boom(table, rows):
        if table == "nodetoken":
            raise RuntimeError("disk full")
        return real(table, rows)

    monkeypatch.setattr(store, "upsert_many", boom)
    with pytest.raises(RuntimeError):
        run(store, ["n1"], f"osimage={IMG}")
    monkeypatch.undo()
    unchanged(store, tftp, inst)
    assert not [n for n in os.listdir(inst / "autoinst") if n.startswith(".")]


def test_a_non_install_image_and_rhevh_have_no_answer_file(cl):
    store, tftp, inst, _ = cl
    store.update("osimage", {"imagename": IMG}, {"osvers": "e2e1"})
    store.update("linuximage", {"imagename": IMG}, {"template": ""})
    store.insert("boottarget", {"bprofile": "e2e1-x86_64", "kernel": "k", "initrd": "i"})
    assert run(store, ["n1"], f"osimage={IMG}")["n1"][0]
    assert "nodemgr.callback=" in (tftp / "pxelinux.cfg" / "n1").read_text()
    assert not (inst / "autoinst" / "n1").exists()


# -- the web app -------------------------------------------------------------------------

@pytest.fixture
def web(cl):
    store, tftp, inst, _ = cl
    assert run(store, ["n1"], f"osimage={IMG}")["n1"][0]
    app = create_app(db_url=store.url, tftp_root=str(tftp), install_root=str(inst))
    return store, app.test_client(), inst


def get(client, url, addr="10.0.0.11"):
    return client.get(url, environ_base={"REMOTE_ADDR": addr})


def test_answer_file_served_to_its_node_only(web):
    store, client, inst = web
    r = get(client, "/install/autoinst/n1")
    assert r.status_code == 200 and r.text == (inst / "autoinst" / "n1").read_text()
    assert r.headers["Cache-Control"] == "no-store"
    r = get(client, "/install/autoinst/n1", addr="10.0.0.12")   # n2 asks for n1's file
    assert r.status_code == 403 and "HASH" not in r.text and "$6$" not in r.text
    assert r.text == "n1: request from 10.0.0.12 is not from the node's address\n"
    assert get(client, "/install/autoinst/n2", addr="10.0.0.12").status_code == 404  # unarmed
    assert get(client, "/install/autoinst/nosuch").status_code == 404


@pytest.mark.parametrize("path", [
    "/install/autoinst/", "/install/autoinst", "/install/autoinst/../autoinst/n1",
    "/install/autoinst/%2E%2E", "/install/autoinst/x%2Fn1", "/install/autoinst/n1/",
    "/install//autoinst/n1", "/install/./autoinst/n1", "/install/autoinst/.n1.tmp1",
])
def test_answer_file_bad_paths_refused(web, path):
    _, client, _ = web
    r = client.get(path, environ_base={"REMOTE_ADDR": "10.0.0.12"}, follow_redirects=True)
    assert r.status_code in (400, 403, 404), (path, r.status_code)
    assert "rootpw" not in r.text
    if "//" not in path:  # (Werkzeug redirects // to the canonical, checked route)
        r = get(client, path)  # n1 itself: only the canonical URL gives it its file
        assert r.status_code in (400, 403, 404) and "rootpw" not in r.text, path


def test_install_status_failed_marks_the_node_and_consumes_the_token(web):
    store, client, inst = web
    text = (inst / "autoinst" / "n1").read_text()
    url = re.search(r"(http://\S+/install-finished/n1\?token=[\w-]+)", text).group(1)
    status_url = url.replace("/install-finished/", "/install-status/").split("://", 1)[1]
    status_url = status_url[status_url.index("/"):]
    chain = store.get("chain", {"node": "n1"})
    bad = client.post(status_url + "x", data={"status": "failed", "script": "extra"},
                      environ_base={"REMOTE_ADDR": "10.0.0.11"})
    assert bad.status_code == 403
    other = client.post(status_url, data={"status": "failed", "script": "extra"},
                        environ_base={"REMOTE_ADDR": "10.0.0.12"})
    assert other.status_code == 403 and store.get("nodetoken", {"node": "n1"})
    assert client.post(status_url, data={"status": "booted"},
                       environ_base={"REMOTE_ADDR": "10.0.0.11"}).status_code == 400
    r = client.post(status_url, data={"status": "failed", "script": "extra"},
                    environ_base={"REMOTE_ADDR": "10.0.0.11"})
    assert (r.status_code, r.text) == (200, "n1: failed\n")
    assert store.get("nodelist", {"node": "n1"})["status"] == "failed"
    assert store.get("nodetoken", {"node": "n1"}) is None
    assert store.get("chain", {"node": "n1"}) == chain          # chain left as it was
    last = store.select("auditlog")[-1]
    assert (last["command"], last["status"]) == ("installstatus", "allowed")
    assert "script=extra" in last["args"]
    # the token is spent: the install cannot be reported finished with it afterwards
    path = url.split("://", 1)[1]
    assert get(client, path[path.index("/"):]).status_code == 403


def test_an_answer_file_that_cannot_be_written_fails_the_node_before_its_boot_file(cl):
    store, tftp, inst, _ = cl
    (inst / "autoinst").write_text("a file where the directory should be\n")
    ok, msg = run(store, ["n1"], f"osimage={IMG}")["n1"]
    assert not ok and msg.startswith(f"cannot write the answer file {inst}/autoinst/n1")
    unchanged(store, tftp, inst.parent / "elsewhere")   # tables and boot files untouched


def test_a_bad_regex_value_fails_its_node_only(cl):
    """issue 12 item 3: a value that cannot be rendered (huge repeat) fails the node whose
    group carries it; the other node is set as usual."""
    store, tftp, inst, _ = cl
    store.insert("mac", {"node": "n2", "mac": "52:54:00:aa:bb:02"})
    store.update("nodelist", {"node": "n2"}, {"groups": "badrx,compute,all"})
    store.insert("noderes", {"node": "badrx", "netboot": "/a{99999999999}/x/"})
    res = run(store, ["n1", "n2"], f"osimage={IMG}")
    assert res["n1"] == (True, "install rocky9.2-x86_64-compute")
    ok, msg = res["n2"]
    assert not ok and "noderes.netboot" in msg and "badrx" in msg and "\n" not in msg, msg
    assert not (tftp / "pxelinux.cfg" / "n2").exists() and store.get("chain", {"node": "n2"}) is None
    ok, msg = run(store, ["n1", "n2"], "stat")["n2"]
    assert not ok and "noderes.netboot" in msg
