"""The shipped answer-file templates and postscripts, checked by the real tools and run for real.

Every template under ``nodemgr/share/install`` is rendered through :class:`Renderer` with a
full context built exactly per :mod:`nodemgr.netboot.answerfile`'s table (static and DHCP
networks, default and site partitioning, with and without postbootscripts and kernel
options). Each kickstart passes pykickstart's ``ksvalidator`` for its RHEL version and each
preseed ``debconf-set-selections --checkonly``. The post-install section, extracted with
:data:`answerfile.EXTRACT_SH`, is valid ``sh`` and is run for real with busybox sh against a
local HTTP server on 127.0.0.1 serving the shipped and two test postscripts (once with
curl on the PATH, once without so busybox wget is used): the install-finished URL is called
when every postscript succeeds; a failing or missing one is POSTed to the status URL and
the install-finished URL is not called. The preseed's ``late_command`` is checked through
debconf and then run the way debian-installer does, against a scratch ``/target``. Every
script writes only under ``$NODEMGR_ROOT`` (a scratch directory here). A missing tool
skips, unless ``NODEMGR_REQUIRE_ALL=1`` (CI), where it fails.
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from nodemgr.netboot import answerfile
from nodemgr.netboot.answerfile import Renderer, TemplateError

REQUIRE_ALL = os.environ.get("NODEMGR_REQUIRE_ALL") == "1"
SHIPPED = Path(answerfile.SHIPPED_DIR)
POSTSCRIPTS = Path(answerfile.SHIPPED_POSTSCRIPTS)
COMMON = SHIPPED / "common" / "nodemgr-post.sh"

# template -> (kind, ksvalidator version, osvers, platform)
TEMPLATES = {
    "rh/compute.rhels8.tmpl": ("ks", "RHEL8", "alma8.9", "rh"),
    "rh/compute.rhels9.tmpl": ("ks", "RHEL9", "rocky9.2", "rh"),
    "rhvh/compute.rhvh4.tmpl": ("ks", "RHEL8", "rhvh4.4", "rhvh"),
    "debian/compute.debian12.tmpl": ("preseed", None, "debian12.5", "debian"),
    "debian/xen.debian12.tmpl": ("preseed", None, "debian12.5", "debian"),
}
KICKSTARTS = [t for t, v in TEMPLATES.items() if v[0] == "ks"]
PRESEEDS = [t for t, v in TEMPLATES.items() if v[0] == "preseed"]

PARTITIONS = {
    "rh": "zerombr\nclearpart --all --initlabel\npart /boot --fstype=xfs --size=1024\n"
          "part swap --size=2048\npart / --fstype=xfs --size=1 --grow\n",
    "rhvh": "zerombr\nclearpart --all --initlabel\npart /boot --fstype=ext4 --size=1024\n"
            "part pv.01 --size=1 --grow\nvolgroup rhvh pv.01\n"
            "logvol none --vgname=rhvh --thinpool --name=pool --size=1 --grow\n"
            "logvol / --vgname=rhvh --thin --poolname=pool --fstype=ext4 --name=root --size=8192",
    "debian": "d-i partman-auto/method string regular\n"
              "d-i partman-auto/expert_recipe string root :: 1024 4096 -1 ext4 $primary{ } "
              "$bootable{ } method{ format } format{ } use_filesystem{ } filesystem{ ext4 } "
              "mountpoint{ / } .\n",
}
ROOTPW = ("$6$nodemgrtest$VDSLA6.m2LN4Gyg8W8mSOxHNgIpmgvXqt8cjKm16n7IsLvvHjOQlbhfLqMUI3fsYN6u"
          "P5Mn.4BR9FtC.t0UGM/")
# a trailing newline and a quote: both must survive shell quoting and the preseed's "#> "
PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINodemgrTestKey root@mn it's the MN\n"
TOKEN = "tok3n-ABC_123"
VARIANTS = ("static", "dhcp", "partial")


def need(path: str | None, what: str) -> str:
    """*path* when the tool exists; else skip (fail under NODEMGR_REQUIRE_ALL=1)."""
    if path and os.access(path, os.X_OK):
        return path
    why = f"{what} is not installed"
    if REQUIRE_ALL:
        pytest.fail(why)
    pytest.skip(why)


def busybox() -> str:
    return need("/bin/busybox" if os.path.exists("/bin/busybox") else shutil.which("busybox"),
                "busybox (package busybox-static)")


def ksvalidator() -> str:
    local = Path(sys.executable).parent / "ksvalidator"
    return need(str(local) if local.exists() else shutil.which("ksvalidator"),
                "ksvalidator (pykickstart)")


def context(template: str, variant: str = "static", base: str = "http://10.0.0.1:8080",
            master: str = "10.0.0.1", **over) -> dict:
    """A full context, keys exactly as answerfile's docstring lists them."""
    _kind, _ver, osvers, platform = TEMPLATES[template]
    arch, profile = "x86_64", template.split("/")[1].split(".")[0]
    install = f"{base}/install"
    ctx = {
        "node": "n1", "hostname": "n1", "domain": "cluster.test", "fqdn": "n1.cluster.test",
        "ip": "10.0.0.11", "mac": "52:54:00:aa:bb:01",
        "network": {"net": "10.0.0.0", "mask": "255.255.255.0", "gateway": "10.0.0.254",
                    "nameservers": ["10.0.0.2", "10.0.0.3"], "mtu": "9000"},
        "master": master, "http": base, "install_url": install,
        "postscripts_url": f"{install}/postscripts", "answer_url": f"{install}/autoinst/n1",
        "repo": f"{install}/{osvers}/{arch}", "osvers": osvers, "arch": arch,
        "profile": profile, "imagename": f"{osvers}-{arch}-install-{profile}",
        "platform": platform, "partition": None, "rootpw_hash": ROOTPW, "timezone": "UTC",
        "kernel_options": "",
        "callback_url": f"{base}/install-finished/n1?token={TOKEN}",
        "status_url": f"{base}/install-status/n1?token={TOKEN}",
        "postscripts": ["sethostname", "remoteshell"], "postbootscripts": [],
    }
    if variant == "dhcp":
        ctx.update(ip=None, network=None, partition=PARTITIONS[platform],
                   postbootscripts=["pb1", "pb2"],
                   kernel_options="console=ttyS0,115200n8 quiet")
        ctx["timezone"] = "Europe/Berlin"
    elif variant == "partial":
        ctx.update(domain="", fqdn="n1", postbootscripts=["pb1"], kernel_options="nomodeset",
                   network={"net": "10.0.0.0", "mask": "255.255.0.0", "gateway": None,
                            "nameservers": [], "mtu": None})
    ctx.update(over)
    ctx["env"] = {
        "NODE": ctx["node"], "MASTER": ctx["master"], "OSVER": osvers, "ARCH": arch,
        "PROFILE": profile, "PROVMETHOD": ctx["imagename"], "DOMAIN": ctx["domain"],
        "TIMEZONE": ctx["timezone"], "INSTALLDIR": "/install", "NODESETSTATE": "install",
        "POSTSCRIPTS_URL": ctx["postscripts_url"], "MN_SSH_PUBKEY": PUBKEY,
    }
    return ctx


RENDERER = Renderer()          # compiled once, as one nodeset call does


def render(template: str, ctx: dict) -> str:
    return RENDERER.render(str(SHIPPED / template), ctx)


def extract(text: str) -> str:
    out = subprocess.run(["sh", "-c", answerfile.EXTRACT_SH], input=text, text=True,
                         capture_output=True, check=True, timeout=10)
    return out.stdout


def late_command(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.startswith("d-i preseed/late_command ")]
    assert len(lines) == 1
    return lines[0].split(" string ", 1)[1]


def source_line(path: Path, needle: str) -> int:
    for no, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return no
    raise AssertionError(f"{needle} not in {path}")


def test_every_shipped_template_is_covered():
    shipped = {str(p.relative_to(SHIPPED)) for p in SHIPPED.rglob("*.tmpl")}
    assert shipped == set(TEMPLATES)
    assert COMMON.is_file()


# ---------------------------------------------------------------------------- rendering


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("template", KICKSTARTS)
def test_kickstart_renders_and_validates(template, variant, tmp_path):
    ctx = context(template, variant)
    text = render(template, ctx)
    assert text.splitlines()[0] == "# nodemgr answer file for node n1"
    assert "None" not in text
    lines = text.splitlines()
    assert f"rootpw --iscrypted {ROOTPW}" in lines
    tz = "Europe/Berlin" if variant == "dhcp" else "UTC"
    assert f"timezone {tz} --utc" in lines
    if template.startswith("rhvh/"):
        assert f"liveimg --url={ctx['repo']}/ovirt-node-ng-image.squashfs.img" in lines
        assert "%post --erroronfail --log=/root/nodemgr-post.log" in lines
        assert lines[lines.index("%post --erroronfail --log=/root/nodemgr-post.log") + 1] \
            .startswith("nodectl init || ")
    else:
        assert f"url --url={ctx['repo']}" in lines
        assert "%post --log=/root/nodemgr-post.log" in lines
        packages = lines[lines.index("%packages") + 1:]
        assert packages[:packages.index("%end")] == ["@core", "curl", "wget"]
    net = [ln for ln in lines if ln.startswith("network ")]
    assert len(net) == 1
    if variant == "static":
        assert net[0] == ("network --bootproto=static --device=52:54:00:aa:bb:01 --ip=10.0.0.11 "
                          "--netmask=255.255.255.0 --gateway=10.0.0.254 "
                          "--nameserver=10.0.0.2,10.0.0.3 --mtu=9000 "
                          "--hostname=n1.cluster.test --activate")
    elif variant == "partial":      # no gateway: the master; no nameservers, no MTU
        assert net[0] == ("network --bootproto=static --device=52:54:00:aa:bb:01 --ip=10.0.0.11 "
                          "--netmask=255.255.0.0 --gateway=10.0.0.1 --hostname=n1 --activate")
    else:
        assert net[0] == ("network --bootproto=dhcp --device=52:54:00:aa:bb:01 "
                          "--hostname=n1.cluster.test --activate")
    boot = [ln for ln in lines if ln.startswith("bootloader")]
    assert boot == [{"static": "bootloader", "partial": "bootloader --append=nomodeset",
                     "dhcp": "bootloader --append='console=ttyS0,115200n8 quiet'"}[variant]]
    if variant == "dhcp":
        assert PARTITIONS[ctx["platform"]].rstrip("\n") + "\n" in text
        assert "autopart" not in text
    else:
        assert "zerombr\nclearpart --all --initlabel\n" in text
        auto = "autopart --type=thinp" if template.startswith("rhvh/") else "autopart"
        assert auto in lines
    # %post body: no kickstart section line may appear inside it
    post = lines[next(i for i, ln in enumerate(lines) if ln.startswith("%post")) + 1:]
    assert post[-1] == "%end" and not any(ln.startswith("%") for ln in post[:-1])

    # one ksvalidator run checks every rendering of a version; only when it complains is
    # this file checked alone (so the failing test is the one whose file is wrong)
    version = TEMPLATES[template][1]
    rc, report = _ksvalidate_all(version)
    if not _ks_clean(rc, report):
        ks = tmp_path / "ks.cfg"
        ks.write_text(text)
        rc, report = _ksvalidate(version, [ks])
        assert _ks_clean(rc, report), report


def _ksvalidate(version: str, files: list[Path]) -> tuple[int, str]:
    res = subprocess.run([ksvalidator(), "-v", version, *map(str, files)], capture_output=True,
                         text=True, timeout=60)
    return res.returncode, res.stdout + res.stderr


def _ks_clean(rc: int, report: str) -> bool:
    return rc == 0 and "deprecat" not in report.lower() and "warning" not in report.lower()


@functools.cache
def _ksvalidate_all(version: str) -> tuple[int, str]:
    """ksvalidator -v VERSION over every kickstart of that version in every variant."""
    tool = ksvalidator()
    with tempfile.TemporaryDirectory(prefix="nodemgr-ks-") as d:
        files = []
        for t in KICKSTARTS:
            if TEMPLATES[t][1] == version:
                for v in VARIANTS:
                    files.append(Path(d) / f"{t.replace('/', '_')}.{v}.cfg")
                    files[-1].write_text(render(t, context(t, v)))
        res = subprocess.run([tool, "-v", version, *map(str, files)], capture_output=True,
                             text=True, timeout=60)
    return res.returncode, res.stdout + res.stderr


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("template", PRESEEDS)
def test_preseed_renders_and_validates(template, variant, tmp_path):
    ctx = context(template, variant)
    text = render(template, ctx)
    lines = text.splitlines()
    assert lines[0] == "# nodemgr answer file for node n1"
    assert "None" not in text
    # debconf joins a line ending in a backslash to the next one
    assert not [ln for ln in lines if ln.endswith("\\")]
    assert "d-i mirror/http/hostname string 10.0.0.1:8080" in lines
    assert "d-i mirror/http/directory string /install/debian12.5/x86_64" in lines
    assert "d-i netcfg/get_hostname string n1" in lines
    assert f"d-i netcfg/get_domain string {ctx['domain']}" in lines
    assert f"d-i passwd/root-password-crypted password {ROOTPW}" in lines
    assert "d-i passwd/make-user boolean false" in lines
    assert f"d-i time/zone string {ctx['timezone']}" in lines
    assert "d-i grub-installer/bootdev string default" in lines
    assert "d-i finish-install/reboot_in_progress note" in lines
    include = [ln for ln in lines if ln.startswith("d-i pkgsel/include string ")]
    xen = template.startswith("debian/xen.")
    assert include == ["d-i pkgsel/include string openssh-server wget curl"
                       + (" xen-system-amd64" if xen else "")]
    opts = [ln for ln in lines if "add-kernel-opts" in ln and not ln.startswith("#")]
    if ctx["kernel_options"]:
        assert opts == [f"d-i debian-installer/add-kernel-opts string {ctx['kernel_options']}"]
    else:
        assert opts == []
    if variant == "dhcp":
        assert PARTITIONS["debian"] in text
        assert "choose_recipe" not in text
    else:
        assert "d-i partman-auto/choose_recipe select atomic" in lines
    assert "d-i partman/confirm_nooverwrite boolean true" in lines
    cmd = late_command(text)
    assert cmd.startswith(f"wget -q -O /target/root/nodemgr-answer {ctx['answer_url']} && ")
    assert f"sed -n '{answerfile.EXTRACT_SED}' /target/root/nodemgr-answer" in cmd
    assert cmd.endswith("in-target sh /root/nodemgr-post.sh")
    # the post section: only comment lines between the markers
    begin, end = lines.index(answerfile.POST_BEGIN), lines.index(answerfile.POST_END)
    assert begin < end and all(ln.startswith("#>") for ln in lines[begin + 1:end])

    f = tmp_path / "preseed.cfg"
    f.write_text(text)
    tool = need(shutil.which("debconf-set-selections"), "debconf-set-selections (debconf)")
    res = subprocess.run([tool, "--checkonly", str(f)], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0 and res.stderr == "", res.stderr


def _debconf_db(tmp: Path) -> dict:
    conf = tmp / "debconf.conf"
    conf.write_text(f"Config: configdb\nTemplates: templatedb\n\n"
                    f"Name: configdb\nDriver: File\nFilename: {tmp}/config.dat\n\n"
                    f"Name: templatedb\nDriver: File\nMode: 644\nFilename: {tmp}/templates.dat\n")
    return {**os.environ, "DEBCONF_SYSTEMRC": str(conf)}


@pytest.mark.parametrize("template", PRESEEDS)
def test_late_command_survives_debconf(template, tmp_path):
    """Loaded into a scratch debconf database, late_command keeps every character."""
    text = render(template, context(template))
    f = tmp_path / "preseed.cfg"
    f.write_text(text)
    tool = need(shutil.which("debconf-set-selections"), "debconf-set-selections (debconf)")
    res = subprocess.run([tool, str(f)], env=_debconf_db(tmp_path), capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    db = (tmp_path / "config.dat").read_text().split("\n\n")
    rec = next(r for r in db if r.startswith("Name: preseed/late_command\n"))
    value = next(ln for ln in rec.splitlines() if ln.startswith("Value: "))[len("Value: "):]
    assert value == late_command(text)
    assert f"'{answerfile.EXTRACT_SED}'" in value
    # the markers, hostname and token made it into the file only as comments
    assert "install-finished" not in (tmp_path / "config.dat").read_text()


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_post_section_is_the_common_script_and_valid_sh(template, variant, tmp_path):
    ctx = context(template, variant)
    section = extract(render(template, ctx))
    common = RENDERER.render(str(COMMON), ctx)
    # kickstart: verbatim; preseed: through "#> " and back (a blank line at the end)
    if template.startswith("debian/xen."):
        assert section.rstrip("\n").endswith(common.rstrip("\n"))
        assert "NODEMGR_STEPS=xen_grub\n" + common.rstrip("\n") in section
        assert 'GRUB_DEFAULT="Debian GNU/Linux, with Xen hypervisor"' in section
        assert 'GRUB_CMDLINE_XEN_DEFAULT="dom0_mem=4096M,max:4096M"' in section
        assert "\n    update-grub\n" in section
    else:
        assert section.rstrip("\n") == common.rstrip("\n")
    assert ctx["callback_url"] in section and ctx["status_url"] in section
    assert f"\nexport MN_SSH_PUBKEY={shlex.quote(PUBKEY)}\n" in section
    for k in ctx["env"]:
        assert f"\nexport {k}=" in section
    script = tmp_path / "post.sh"
    script.write_text(section)
    shells = [["sh", "-n"], [busybox(), "sh", "-n"]]
    if shutil.which("bash"):
        shells.append(["bash", "-n"])
    for shell in shells:
        res = subprocess.run([*shell, str(script)], capture_output=True, text=True, timeout=10)
        assert res.returncode == 0, (shell, res.stderr)
    # the postbootscripts' runner is written only when there are some
    assert ("nodemgr-postboot.service" in section) == bool(ctx["postbootscripts"])


# ---------------------------------------------------------------------------- missing keys


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_missing_key_names_template_and_line(template):
    ctx = context(template)
    del ctx["rootpw_hash"]
    with pytest.raises(TemplateError) as exc:
        render(template, ctx)
    line = source_line(SHIPPED / template, "rootpw_hash")
    assert f"{template.split('/')[1]}, line {line}" in str(exc.value)
    assert "rootpw_hash" in str(exc.value)
    # a key only the common section uses: that file and line are named
    ctx = context(template)
    del ctx["callback_url"]
    with pytest.raises(TemplateError) as exc:
        render(template, ctx)
    assert f"nodemgr-post.sh, line {source_line(COMMON, 'callback_url')}" in str(exc.value)
    assert "callback_url" in str(exc.value)


# ---------------------------------------------------------------------------- real runs


class _Server:
    """A tiny HTTP server on 127.0.0.1: postscripts, answer files, the two node routes."""

    def __init__(self, psdir: Path):
        self.psdir = psdir
        self.requests: list[tuple[str, str, str]] = []
        self.answers: dict[str, str] = {}
        srv = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, code: int, body: bytes = b"") -> None:
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                srv.requests.append(("GET", self.path, ""))
                path = self.path.split("?", 1)[0]
                if path.startswith("/install/postscripts/"):
                    f = srv.psdir / path.rsplit("/", 1)[1]
                    return self._answer(200, f.read_bytes()) if f.is_file() else self._answer(404)
                if path in srv.answers:
                    return self._answer(200, srv.answers[path].encode())
                if path == "/install-finished/n1":
                    return self._answer(200, b"ok\n")
                self._answer(404)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                srv.requests.append(("POST", self.path, body))
                self._answer(200 if self.path.startswith("/install-status/n1") else 404)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def paths(self, method: str = "GET") -> list[str]:
        return [p for m, p, _ in self.requests if m == method]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path):
    psdir = tmp_path / "postscripts"
    psdir.mkdir()
    for name in ("sethostname", "remoteshell"):
        shutil.copy(POSTSCRIPTS / name, psdir / name)
    (psdir / "ok").write_text(
        '#!/bin/sh\n[ "$NODE" = n1 ] && [ "$NODESETSTATE" = install ] || exit 7\n'
        'printf "%s %s\\n" "$OSVER" "$PROFILE" > "$NODEMGR_ROOT/ok.ran"\n')
    (psdir / "bad").write_text("#!/bin/sh\necho bad is failing >&2\nexit 3\n")
    (psdir / "never").write_text('#!/bin/sh\n: > "$NODEMGR_ROOT/never.ran"\n')
    (psdir / "pb1").write_text('#!/bin/sh\necho "$NODE" > "$NODEMGR_ROOT/pb1.ran"\n')
    srv = _Server(psdir)
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def bindirs(tmp_path_factory):
    """PATH directories: busybox's applets only; the same plus curl."""
    bb = busybox()
    applets = subprocess.run([bb, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    dirs = {}
    for curl in (False, True):
        d = dirs[curl] = tmp_path_factory.mktemp("bin-curl" if curl else "bin")
        for name in applets:
            (d / name).symlink_to(bb)
        if curl and shutil.which("curl"):
            (d / "curl").symlink_to(shutil.which("curl"))
    return dirs


def _shell_env(tmp: Path, bindirs: dict, *, curl: bool) -> dict:
    """PATH: busybox's applets only, plus curl when asked; HOME, TMPDIR, NODEMGR_ROOT in tmp."""
    if curl:
        need(shutil.which("curl"), "curl")
    bindir = bindirs[curl]
    for d in ("home", "tmp", "root/etc/systemd"):
        (tmp / d).mkdir(parents=True, exist_ok=True)
    return {"PATH": str(bindir), "HOME": str(tmp / "home"), "TMPDIR": str(tmp / "tmp"),
            "NODEMGR_ROOT": str(tmp / "root"), "NODEIP": "10.0.0.11"}


def _run(script: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([busybox(), "sh", str(script)], env=env, capture_output=True,
                          text=True, timeout=30)


@pytest.mark.parametrize("curl", [True, False], ids=["curl", "busybox-wget"])
@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_post_section_runs_postscripts_then_callback(template, curl, server, bindirs,
                                                       tmp_path):
    ctx = context(template, base=server.base, master="127.0.0.1",
                  postscripts=["sethostname", "remoteshell", "ok"], postbootscripts=["pb1"])
    script = tmp_path / "post.sh"
    script.write_text(extract(render(template, ctx)))
    env = _shell_env(tmp_path, bindirs, curl=curl)
    res = _run(script, env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert server.paths() == ["/install/postscripts/sethostname",
                              "/install/postscripts/remoteshell", "/install/postscripts/ok",
                              "/install/postscripts/pb1", f"/install-finished/n1?token={TOKEN}"]
    assert server.paths("POST") == []
    assert TOKEN not in res.stdout + res.stderr
    root = tmp_path / "root"
    assert (root / "ok.ran").read_text() == f"{ctx['env']['OSVER']} {ctx['profile']}\n"
    assert (root / "etc/hostname").read_text() == "n1\n"
    assert "10.0.0.11\tn1.cluster.test n1\n127.0.0.1\tnodemgr-master\n" in \
        (root / "etc/hosts").read_text()
    assert (root / "root/.ssh/authorized_keys").read_text() == PUBKEY
    assert list((tmp_path / "tmp").iterdir()) == []          # the scratch directory is gone
    if template.startswith("debian/xen."):
        assert "dom0_mem=4096M,max:4096M" in \
            (root / "etc/default/grub.d/zz-nodemgr-xen.cfg").read_text()
    # postbootscripts: fetched, a systemd unit enabled; the runner runs them once, then
    # disables itself
    pb = root / "var/lib/nodemgr"
    assert (pb / "postbootscripts/pb1").is_file()
    unit = root / "etc/systemd/system/nodemgr-postboot.service"
    assert "ExecStart=/bin/sh /var/lib/nodemgr/postboot.sh" in unit.read_text()
    wants = root / "etc/systemd/system/multi-user.target.wants/nodemgr-postboot.service"
    assert os.readlink(wants) == "/etc/systemd/system/nodemgr-postboot.service"
    res = _run(pb / "postboot.sh", env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (root / "pb1.ran").read_text() == "n1\n"
    assert not os.path.lexists(wants) and not (pb / "postboot.sh").exists()
    assert (pb / "postboot.sh.done").is_file()


@pytest.mark.parametrize("failing", ["bad", "missing"])
@pytest.mark.parametrize("curl", [True, False], ids=["curl", "busybox-wget"])
@pytest.mark.parametrize("template", ["rh/compute.rhels9.tmpl", "debian/xen.debian12.tmpl"])
def test_failed_postscript_is_reported_without_callback(template, curl, failing, server,
                                                        bindirs, tmp_path):
    ctx = context(template, base=server.base, master="127.0.0.1",
                  postscripts=["ok", failing, "never"], postbootscripts=["pb1"])
    script = tmp_path / "post.sh"
    script.write_text(extract(render(template, ctx)))
    res = _run(script, _shell_env(tmp_path, bindirs, curl=curl))
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"nodemgr: {failing} failed" in res.stderr
    assert server.paths() == ["/install/postscripts/ok", f"/install/postscripts/{failing}"]
    assert [(p, b) for m, p, b in server.requests if m == "POST"] == [
        (f"/install-status/n1?token={TOKEN}", f"status=failed&script={failing}")]
    root = tmp_path / "root"
    assert (root / "ok.ran").exists() and not (root / "never.ran").exists()
    assert not (root / "var/lib/nodemgr").exists()
    assert list((tmp_path / "tmp").iterdir()) == []


@pytest.mark.parametrize("template", PRESEEDS)
def test_late_command_runs_like_debian_installer(template, server, bindirs, tmp_path):
    """late_command against a scratch /target: fetch, extract, in-target run, callback."""
    ctx = context(template, base=server.base, master="127.0.0.1", postscripts=["ok"])
    text = render(template, ctx)
    server.answers["/install/autoinst/n1"] = text
    env = _shell_env(tmp_path, bindirs, curl=False)
    target = tmp_path / "root"
    (target / "root").mkdir(parents=True)
    # in-target CMD ARGS: run in the target (here: NODEMGR_ROOT, paths under the target)
    stubdir = tmp_path / "stub"
    stubdir.mkdir()
    (stubdir / "in-target").write_text(
        f'#!{busybox()} sh\ncmd=$1; shift\nexec "$cmd" "{target}$1"\n')
    (stubdir / "in-target").chmod(0o755)
    env["PATH"] = f"{stubdir}:{env['PATH']}"
    cmd = late_command(text).replace("/target/", f"{target}/")
    res = subprocess.run([busybox(), "sh", "-c", cmd], env=env, capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0, res.stdout + res.stderr
    assert server.paths() == ["/install/autoinst/n1", "/install/postscripts/ok",
                              f"/install-finished/n1?token={TOKEN}"]
    assert (target / "ok.ran").is_file()
    assert not (target / "root/nodemgr-answer").exists()
    assert (target / "root/nodemgr-post.sh").read_text() == extract(text)


# ---------------------------------------------------------------------------- postscripts


def test_shipped_postscripts_are_plain_executable_sh():
    names = sorted(p.name for p in POSTSCRIPTS.iterdir() if p.is_file())
    assert {"sethostname", "remoteshell"} <= set(names)
    for name in names:
        f = POSTSCRIPTS / name
        text = f.read_text()
        assert f.stat().st_mode & stat.S_IXUSR, name
        assert text.startswith("#!/bin/sh\n") and "{{" not in text and "{%" not in text
        assert "NODEMGR_ROOT" in text.split("\n\n", 1)[0], name    # documented up top
        for shell in (["sh", "-n"], [busybox(), "sh", "-n"]):
            assert subprocess.run([*shell, str(f)], timeout=10).returncode == 0, (shell, name)


def _postscript(name: str, root: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run([busybox(), "sh", str(POSTSCRIPTS / name)],
                          env={"PATH": "/nonexistent", "NODEMGR_ROOT": str(root), **env},
                          capture_output=True, text=True, timeout=10)


def test_sethostname_writes_hostname_and_hosts_idempotently(tmp_path):
    root = tmp_path / "r"
    (root / "etc").mkdir(parents=True)
    hosts = root / "etc/hosts"
    hosts.write_text("127.0.0.1 localhost n1\n# a comment n1\n127.0.1.1 n1.cluster.test n1\n"
                     "10.0.0.1 mn.cluster.test mn nodemgr-master\n10.9.9.9 other")
    env = {"NODE": "n1", "DOMAIN": "cluster.test", "MASTER": "10.0.0.1", "NODEIP": "10.0.0.11"}
    res = _postscript("sethostname", root, **env)
    assert res.returncode == 0, res.stderr
    assert (root / "etc/hostname").read_text() == "n1\n"
    want = ("127.0.0.1 localhost\n# a comment n1\n10.0.0.1 mn.cluster.test mn\n10.9.9.9 other\n"
            "10.0.0.11\tn1.cluster.test n1\n10.0.0.1\tnodemgr-master\n")
    assert hosts.read_text() == want
    assert _postscript("sethostname", root, **env).returncode == 0
    assert hosts.read_text() == want
    # no domain, no /etc/hosts yet, a master given by name: no master line
    root2 = tmp_path / "r2"
    res = _postscript("sethostname", root2, NODE="n2", MASTER="mn.example", NODEIP="10.0.0.12")
    assert res.returncode == 0, res.stderr
    assert (root2 / "etc/hosts").read_text().endswith("localhost ip6-loopback\n10.0.0.12\tn2\n")
    # NODE is required
    res = _postscript("sethostname", tmp_path / "r3")
    assert res.returncode == 1 and "NODE is not set" in res.stderr
    assert not (tmp_path / "r3").exists()


def test_remoteshell_installs_key_idempotently(tmp_path):
    root = tmp_path / "r"
    (root / "root/.ssh").mkdir(parents=True)
    keys = root / "root/.ssh/authorized_keys"
    keys.write_text("ssh-rsa OTHER user@elsewhere")             # no final newline
    (root / "etc/ssh").mkdir(parents=True)
    conf = root / "etc/ssh/sshd_config"
    conf.write_text("Port 22\nPermitRootLogin no\n")
    two = "ssh-ed25519 AAAA1 root@mn\r\nssh-rsa BBBB2 root@mn2\n"
    for _ in range(2):
        res = _postscript("remoteshell", root, MN_SSH_PUBKEY=two)
        assert res.returncode == 0, res.stderr
    assert keys.read_text() == ("ssh-rsa OTHER user@elsewhere\nssh-ed25519 AAAA1 root@mn\n"
                                "ssh-rsa BBBB2 root@mn2\n")
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert stat.S_IMODE((root / "root/.ssh").stat().st_mode) == 0o700
    # sshd keeps the first value it reads: ours comes first, once
    assert conf.read_text() == ("# nodemgr remoteshell\nPermitRootLogin prohibit-password\n"
                                "Port 22\nPermitRootLogin no\n")
    # a config that includes sshd_config.d gets a drop-in instead
    root2 = tmp_path / "r2"
    (root2 / "etc/ssh/sshd_config.d").mkdir(parents=True)
    inc = "Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication no\n"
    (root2 / "etc/ssh/sshd_config").write_text(inc)
    res = _postscript("remoteshell", root2, MN_SSH_PUBKEY="ssh-ed25519 AAAA1 root@mn")
    assert res.returncode == 0, res.stderr
    assert (root2 / "etc/ssh/sshd_config").read_text() == inc
    assert "PermitRootLogin prohibit-password\n" in \
        (root2 / "etc/ssh/sshd_config.d/00-nodemgr.conf").read_text()
    keys2 = root2 / "root/.ssh/authorized_keys"
    assert keys2.read_text() == "ssh-ed25519 AAAA1 root@mn\n"
    assert stat.S_IMODE(keys2.stat().st_mode) == 0o600


@pytest.mark.parametrize("key", [None, "", " \n\n"])
def test_remoteshell_without_key_changes_nothing(key, tmp_path):
    root = tmp_path / "r"
    env = {} if key is None else {"MN_SSH_PUBKEY": key}
    res = _postscript("remoteshell", root, **env)
    assert res.returncode == 0
    assert "MN_SSH_PUBKEY is empty" in res.stdout
    assert not root.exists()
