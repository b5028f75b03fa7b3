"""Real QEMU guests network-boot from the project's own servers, as the commands set them up.

In a network namespace made here (bridge ``br0``, the guests' taps and a veth pair whose far
end ``srv0`` carries the servers' address 10.99.0.1) nothing is written by hand:

* ``makenetworks`` fills the networks table from ``srv0``; ``site.master`` stays unset, so
  ``nodeset``, ``makedhcp`` and the callback take the management address from that row
  (every command runs inside the namespace);
* ``mknb`` places the boot loaders in the TFTP root, ``makewebconf`` renders the nginx server
  file (``/tftpboot/``, ``/install/``, the callbacks proxied to gunicorn on 127.0.0.1:8080;
  nginx listens on ``site.httpport`` 8081, so every URL must carry the port);
* ``makedhcp -n`` writes the Kea configuration (Kea not running yet: a warning), Kea starts
  with ``kea-dhcp4 -c`` that file, and ``makedhcp <nodes>`` adds the reservations with a
  ``config-reload``; an RA-only dnsmasq answers iPXE's IPv6 router solicitation (Kea sends
  no RAs; iPXE would wait ~16 s);
* ``nodemgr-tftpd`` serves the TFTP root, the callback app runs under gunicorn, and the
  real ``nodeset <node> osimage=..`` writes each node's boot file.

Answer files: ``passwd`` holds a crypted root hash, ``mknb`` also installs the shipped
postscripts into the lab's installdir (served by nginx under ``/install/``), and the
``xcatdefaults`` postscripts row (sethostname, remoteshell; ``site.sshpubkey`` names a lab
key) applies to every node. Images ``rhels9.4-..`` and ``debian12.5-..`` (tests/web/
provision.py) boot the test kernel and initramfs but take the shipped kickstart
(``inst.ks=``) and preseed (``url=``, ``hostname=``): ``nodeset`` renders
``<installdir>/autoinst/<node>`` (0600, the token inside, none on the boot line). The
busybox initramfs (tests/fixtures/pxe/init.sh) fetches the answer file through nginx (the
app serves it to the node's own address only; nginx sets X-Forwarded-For and
``site.callbackproxies`` = 127.0.0.1), checks it names the host DHCP named, extracts the
post-install section with answerfile.EXTRACT_SED and runs it with sh: postscripts from
``/install/postscripts/``, then the install-finished URL with the token.

Guests, three at once: node01 boots legacy BIOS (SeaBIOS + QEMU's iPXE ROM, ``netboot=xnba``):
Kea hands iPXE the node's script URL; script, kernel and initrd come over HTTP through
nginx; kickstart. node02 and node04 boot UEFI (OVMF with its own PXE stack: virtio-net
``romfile=``, a private copy of the variable store, 512 MiB): node02 (``xnba``) gets
``snponly.efi`` over TFTP, whose iPXE asks Kea again and fetches the script and kernel over
HTTP; its kickstart's postscripts include ``e2e-fail`` (exit 1), so it reports the failure
to ``/install-status/`` and ends ``failed`` without calling install-finished. node04
(``grub2``) gets ``boot/grub2/grubx64.efi``, which reads ``grub.cfg-01-<mac>`` over TFTP and
the kernel over HTTP; preseed. Then node05 boots by UEFI HTTP boot (kickstart); its
``nodemgr.e2e.other=node06`` first asks for node06's answer file (node06 is armed but has
no guest): 403, node06 untouched. node03 boots pxelinux (kernel over TFTP), started by the
system libvirtd on an address-less root-namespace bridge patched in by a veth; its image
has no answer file: ``nodemgr.callback=`` on the boot line, fetched with wget as before.
The kernel is Debian's (unpacked, not installed). Each node must then be ``booted``
(node02 ``failed``, its chain unchanged), with a local-boot file, no answer file and a Kea
lease. Nothing leaves the namespace; everything is torn down even on failure. Under TCG on
2 cores: BIOS 15-35 s, UEFI 25-55 s when the three share the cores; about 1.5 minutes in
all.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from nodemgr.tables.store import Store
from tests.fixtures import nginx
from tests.fixtures.netns import Netns, sh, stop_groups
from tests.fixtures.pxe import build
from tests.web.provision import (
    IMAGE,
    KS_IMAGE,
    PRESEED_IMAGE,
    answer_callback_path,
    define,
    define_answer_images,
    state,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SERVER = "10.99.0.1"
HTTPPORT = "8081"           # not 80: the URLs must carry site.httpport
UPSTREAM = "127.0.0.1:8080"  # gunicorn, behind nginx
OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
#         name: (ip, mac, noderes.netboot, firmware, osimage)
NODES = {"node01": ("10.99.0.101", "52:54:00:aa:bb:01", "xnba", "bios", KS_IMAGE),
         "node02": ("10.99.0.102", "52:54:00:aa:bb:02", "xnba", "uefi", KS_IMAGE),
         "node03": ("10.99.0.103", "52:54:00:aa:bb:03", "pxe", "bios", IMAGE),  # libvirt
         "node04": ("10.99.0.104", "52:54:00:aa:bb:04", "grub2", "uefi", PRESEED_IMAGE),
         "node05": ("10.99.0.105", "52:54:00:aa:bb:05", "xnba", "uefi-http", KS_IMAGE),
         "node06": ("10.99.0.106", "52:54:00:aa:bb:06", "xnba", None, KS_IMAGE)}  # no guest
FAILING = "node02"          # its postscripts row adds FAIL_SCRIPT
FAIL_SCRIPT = "e2e-fail"
ASKER, VICTIM = "node05", "node06"   # ASKER asks for VICTIM's answer file
#: the key site.sshpubkey names; the remoteshell postscript puts it in authorized_keys
LAB_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINodemgrE2ELabKeyNotARealKey0123456789 e2e@lab"
REQUIRE_ALL = os.environ.get("NODEMGR_REQUIRE_ALL") == "1"


def need(ok: bool, why: str) -> None:
    if not ok:
        if REQUIRE_ALL:
            pytest.fail(why)
        pytest.skip(why)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    need(os.geteuid() == 0, "the PXE test needs root (network namespace, tap)")
    for tool in ("qemu-system-x86_64", "dnsmasq", "ip", "ss", "curl", "nginx", "kea-dhcp4",
                 "grub-mkimage"):
        need(shutil.which(tool) is not None, f"{tool} is not installed")
    for f in ("/usr/lib/PXELINUX/pxelinux.0", "/usr/lib/syslinux/modules/bios/ldlinux.c32",
              "/usr/lib/ipxe/snponly.efi", "/usr/lib/grub/x86_64-efi/http.mod", OVMF_CODE,
              OVMF_VARS, "/bin/busybox"):
        need(os.path.exists(f), f"{f} is missing (pxelinux, syslinux-common, ipxe, "
                                "grub-efi-amd64-bin, ovmf, busybox-static)")
    t_setup = time.monotonic()
    work = tmp_path_factory.mktemp("pxe")
    tftp, install, kea, web = (work / "tftpboot", work / "install", work / "kea",
                               work / "nginx")
    for d in (tftp / "e2e", install, kea, web / "tmp"):
        d.mkdir(parents=True)
    # the image's boottarget (tests/web/provision.py) points at e2e/vmlinuz, e2e/initrd.img
    kdir = build.kernel_dir()
    shutil.copy(build.vmlinuz(kdir), tftp / "e2e" / "vmlinuz")
    build.build_initramfs(kdir, str(tftp / "e2e" / "initrd.img"))

    url = f"sqlite:///{work}/nodemgr.sqlite"
    with contextlib.closing(Store(url)) as store:
        yield from _lab(store, url, work, tftp, install, kea, web, t_setup)


def _lab(store, url, work, tftp, install, kea, web, t_setup):
    define(store, str(tftp), {n: (ip, mac) for n, (ip, mac, *_) in NODES.items()},
           callbackurl=f"http://{SERVER}:{HTTPPORT}", master=None)
    # a crypted root hash (never a clear password) for the answer files; stdin, not argv
    rootpw = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=os.urandom(9).hex(),
                            capture_output=True, text=True, check=True).stdout.strip()
    define_answer_images(store, rootpw)
    (work / "lab_key.pub").write_text(LAB_KEY + "\n")
    with store.transaction():
        for key, value in (("httpport", HTTPPORT), ("installdir", str(install)),
                           ("dhcpserver", "kea"), ("keaconf", str(kea / "kea-dhcp4.conf")),
                           ("keasocket", str(kea / "kea4.sock")),
                           ("callbackproxies", "127.0.0.1"),    # nginx is the proxy
                           ("sshpubkey", str(work / "lab_key.pub"))):
            store.upsert("site", {"key": key}, {"value": value})
        for node, (_, _, netboot, *_) in NODES.items():
            store.upsert("noderes", {"node": node}, {"netboot": netboot})
        store.upsert("postscripts", {"node": FAILING}, {"postscripts": FAIL_SCRIPT})
        store.upsert("bootparams", {"node": ASKER},
                     {"addkcmdline": f"nodemgr.e2e.other={VICTIM}"})
    defaults = store.get("postscripts", {"node": "xcatdefaults"}) or {}
    assert defaults.get("postscripts") == "sethostname,remoteshell", defaults
    (work / "none.conf").write_text("[nodemgr]\n")
    env = dict(os.environ, NODEMGR_DB=url, NODEMGR_CONF=str(work / "none.conf"),
               NODEMGR_WEB_BIND=UPSTREAM, NODEMGR_WEB_WORKERS="2",
               KEA_PIDFILE_DIR=str(kea), KEA_LOCKFILE_DIR=str(kea))

    with Netns(f"nmpxe{os.getpid()}", str(work)) as ns:
        # GRUB's TCP reuses source port 21550.. with a tiny ISN: a TIME-WAIT socket of an
        # earlier boot from the same address would stall its HTTP (test-environment §6, 3)
        ns.run("sysctl", "-qw", "net.ipv4.tcp_max_tw_buckets=0")
        for cmd in ("ip link add br0 type bridge", "ip link set br0 type bridge forward_delay 0",
                    "ip link set br0 up",
                    "ip tuntap add dev tap0 mode tap", "ip link set tap0 master br0",
                    "ip link set tap0 up",
                    "ip tuntap add dev tap1 mode tap", "ip link set tap1 master br0",
                    "ip link set tap1 up",
                    "ip tuntap add dev tap2 mode tap", "ip link set tap2 master br0",
                    "ip link set tap2 up",
                    "ip link add srv0 type veth peer name srv0br",
                    "ip link set srv0br master br0", "ip link set srv0br up",
                    f"ip addr add {SERVER}/24 dev srv0", "ip -6 addr add fd99::1/64 dev srv0 nodad",
                    "ip link set srv0 up"):
            ns.run(*cmd.split())

        def nm(*args: str) -> str:
            """A nodemgr command inside the namespace; its stdout (fails on exit != 0)."""
            r = subprocess.run(ns.cmd("timeout", "60", str(BIN / args[0]), *args[1:]),
                               cwd=ROOT, env=env, capture_output=True, text=True)
            assert r.returncode == 0, f"{' '.join(args)}: exit {r.returncode}\n{r.stdout}{r.stderr}"
            return r.stdout + r.stderr

        out = nm("makenetworks")
        assert "mgtifname=srv0" in out, out
        out = nm("mknb")
        for f in ("pxelinux.0", "ldlinux.c32", "undionly.kpxe", "snponly.efi",
                  "boot/grub2/grubx64.efi"):
            assert (tftp / f).is_file(), f"mknb placed no {f}"
        for f in ("sethostname", "remoteshell"):  # the shipped postscripts, into installdir
            assert os.access(install / "postscripts" / f, os.X_OK), f"mknb: no {f}\n{out}"
        # the failing postscript of FAILING, next to the shipped ones
        (install / "postscripts" / FAIL_SCRIPT).write_text(
            '#!/bin/sh\necho "e2e-fail: failing on purpose on $NODE" >&2\nexit 1\n')
        (install / "postscripts" / FAIL_SCRIPT).chmod(0o755)
        nm("makewebconf", "-o", str(web / "nodemgr.conf"), "--upstream", UPSTREAM)
        (web / "nginx.conf").write_text(nginx.main_conf(web, user="root"))

        conf = kea / "kea-dhcp4.conf"
        out = nm("makedhcp", "-n", "-V")     # Kea is not running yet: written, a warning
        assert conf.is_file() and "0 reservation(s)" in out and "not running" in out, out
        kea_p = ns.start(["kea-dhcp4", "-c", str(conf)], "kea.log", env=env)
        ns.wait_listening("u", 67, proc=kea_p, log="kea.log")
        for _ in range(100):             # the control socket comes a moment after port 67
            if (kea / "kea4.sock").exists():
                break
            time.sleep(0.05)
        out = nm("makedhcp", ",".join(NODES), "-V")   # written, then config-reload
        assert f"{len(NODES)} reservation(s)" in out and "Configuration successful" in out, out
        # Kea has no router advertisements; iPXE waits ~16 s for one without (§1 gotcha 2)
        ns.start(["dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--user=root", "--port=0",
                  "--interface=srv0", "--bind-interfaces", f"--pid-file={work}/ra.pid",
                  "--enable-ra", "--dhcp-range=fd99::,ra-only"], "ra-dnsmasq.log")
        tftpd = ns.start([str(BIN / "nodemgr-tftpd"), "--address", SERVER, "--port", "69"],
                         "tftpd.log", env=env, cwd=ROOT)
        guni = ns.start([str(BIN / "gunicorn"), "-c", "etc/gunicorn.conf.py"], "gunicorn.log",
                        env=env, cwd=ROOT)
        t = subprocess.run(ns.cmd("nginx", "-c", str(web / "nginx.conf"), "-e",
                                  str(web / "error.log"), "-t"), capture_output=True, text=True)
        assert t.returncode == 0, t.stderr
        web_p = ns.start(["nginx", "-c", str(web / "nginx.conf"), "-e", str(web / "error.log"),
                          "-g", "daemon off;"], "nginx.out")
        ns.wait_listening("u", 69, SERVER, proc=tftpd, log="tftpd.log")
        ns.wait_listening("t", 8080, "127.0.0.1", proc=guni, log="gunicorn.log")
        ns.wait_listening("t", int(HTTPPORT), proc=web_p, log="nginx.out")
        # nginx serves the postscripts from installdir; answer files only through the app
        got = subprocess.run(ns.cmd("curl", "-sf", f"http://{SERVER}:{HTTPPORT}/install/"
                                    "postscripts/sethostname"), capture_output=True, text=True)
        assert got.stdout == (install / "postscripts" / "sethostname").read_text(), got
        print(f"\nlab set up in {time.monotonic() - t_setup:.1f} s")
        yield {"ns": ns, "store": store, "tftp": tftp, "work": work, "nm": nm, "conf": conf,
               "install": install}


def test_kea_config_from_makedhcp(lab):
    """What the guests will be offered is what makedhcp wrote: one reservation per node,
    management address from the networks row, the loader from classes, iPXE's URL with
    httpport."""
    cfg = json.loads((lab["conf"]).read_text())["Dhcp4"]
    assert cfg["interfaces-config"]["interfaces"] == ["srv0"]
    (subnet,) = cfg["subnet4"]
    assert subnet["subnet"] == "10.99.0.0/24"
    res = {r["hostname"]: r for r in subnet["reservations"]}
    for node, (ip, mac, netboot, *_) in NODES.items():
        assert res[node]["hw-address"] == mac and res[node]["ip-address"] == ip
        assert res[node]["next-server"] == SERVER
        assert "boot-file-name" not in res[node]       # it would beat every class
        assert res[node]["client-classes"] == [f"{netboot}-s0"]
    files = {c.get("boot-file-name") for c in cfg["client-classes"]}
    assert {"pxelinux.0", "undionly.kpxe", "snponly.efi", "boot/grub2/grubx64.efi",
            f"http://{SERVER}:{HTTPPORT}/tftpboot/xcat/xnba/nodes/${{hostname}}"} <= files


def test_install_through_answer_files_bios_and_uefi(lab):
    """Three guests at once, each through its answer file: node01 (SeaBIOS + QEMU's iPXE
    ROM, xnba; kickstart), node02 (OVMF PXE → mknb's snponly.efi → iPXE, xnba; kickstart
    whose postscripts include one that fails) and node04 (OVMF PXE → mknb's
    boot/grub2/grubx64.efi, prefix ``(tftp)/boot/grub2`` → ``grub.cfg-01-<mac>`` over TFTP
    → kernel over HTTP; preseed)."""
    nodes = ["node01", "node02", "node04"]
    armed = {node: arm(lab, node) for node in nodes}
    mac = NODES["node04"][1].replace(":", "-")
    # GRUB asks for "<prefix>/grub.cfg-01-<mac>", with the prefix's leading slash; a TFTP
    # server refusing that would leave GRUB at its prompt until the 120 s timeout
    probe = subprocess.run(lab["ns"].cmd("busybox", "tftp", "-g", "-r",
                                         f"/boot/grub2/grub.cfg-01-{mac}", "-l", "/dev/null",
                                         SERVER), capture_output=True, text=True, timeout=30)
    assert probe.returncode == 0, ("nodemgr-tftpd refuses the path GRUB asks for "
                                   f"(/boot/grub2/grub.cfg-01-{mac}): {probe.stderr}")
    t0 = time.monotonic()
    consoles = boot_all(lab, nodes, ["tap0", "tap1", "tap2"])
    print(f"{', '.join(nodes)} at once: {time.monotonic() - t0:.1f} s")
    for node, armed_node in armed.items():
        if node == FAILING:
            verify_failed(lab, node, consoles[node], armed_node)
        else:
            verify(lab, node, consoles[node], armed_node)


def test_install_uefi_http_boot_and_foreign_answer_file(lab):
    """node05: OVMF's UEFI HTTP boot (PXE switched off by fw_cfg; DHCP vendor class
    ``HTTPClient``) → Kea's ``http://<server>:<httpport>/tftpboot/snponly.efi`` through
    nginx → iPXE asks again (user class iPXE) → the node's script over HTTP → kickstart.
    Before its own, the guest asks for node06's answer file (node06 is armed, no guest):
    403, and node06 stays armed with its token."""
    victim = arm(lab, VICTIM)
    before = state(lab["store"], VICTIM)
    armed = arm(lab, ASKER)
    console = boot(lab, ASKER, "tap0")
    url = f"http://{SERVER}:{HTTPPORT}/install/autoinst/{VICTIM}"
    assert f"NODEMGR-E2E: asking for another node's answer file: {url}" in console, \
        _tail(console)
    # busybox wget: "server returned error: HTTP/1.1 403 FORBIDDEN" (nginx passes the
    # app's reason phrase on)
    assert re.search(r"NODEMGR-E2E: other answer file refused: .*server returned error: "
                     r"HTTP/1\.1 403 Forbidden", console, re.I), _tail(console)
    # the app saw the guest's own address (X-Forwarded-For from nginx, a trusted proxy)
    assert (f"autoinst: {VICTIM}: request from {NODES[ASKER][0]} is not from the node's "
            "address") in (lab["work"] / "gunicorn.log").read_text(errors="replace")
    # nor does any spelling of the path reach the static /install/ location (nginx runs as
    # root here: it could read the 0600 file). Refused (403/404, one plain-text line from
    # the app or nginx's 404), never the file
    codes = {}
    for path in (f"/install//autoinst/{VICTIM}", f"/install/./autoinst/{VICTIM}",
                 f"/install/postscripts/../autoinst/{VICTIM}", f"/install/autoinst%2F{VICTIM}",
                 f"/install/%61utoinst/{VICTIM}", "/install/autoinst/"):
        r = subprocess.run(lab["ns"].cmd("curl", "-s", "--path-as-is", "-w", "\n%{http_code}",
                                         f"http://{SERVER}:{HTTPPORT}{path}"),
                           capture_output=True, text=True, timeout=30)
        body, _, codes[path] = r.stdout.rpartition("\n")
        assert codes[path] in ("403", "404") and "token=" not in body and "$6$" not in body, \
            (path, codes[path], body[:200])
    print(f"{VICTIM}'s answer file from the server's address: {codes}")
    assert state(lab["store"], VICTIM) == before     # installing, same token, same chain
    assert before[0] == "installing" and before[3]
    assert victim["answer"].is_file()               # still there for its own node
    verify(lab, ASKER, console, armed)
    assert re.search(re.escape(NODES[ASKER][0]) + r' "GET /tftpboot/snponly.efi HTTP/1.1" 200',
                     (lab["work"] / "nginx" / "access.log").read_text()), _logs(lab)


def _boot_file(lab, node) -> Path:
    mac, netboot = NODES[node][1].replace(":", "-"), NODES[node][2]
    tftp = lab["tftp"]
    return {"pxe": tftp / "pxelinux.cfg" / f"01-{mac}",
            "xnba": tftp / "xcat" / "xnba" / "nodes" / node,
            "grub2": tftp / "boot" / "grub2" / f"grub.cfg-01-{mac}"}[netboot]


def arm(lab, node) -> dict:
    """The real ``nodeset <node> osimage=<its image>`` in the namespace; checks the boot
    file and the answer file; returns ``url_path`` (the install-finished path with the
    token: from the answer file, or from the boot file for an image without one),
    ``boot_file``, ``answer`` (the answer file's path) and ``currstate``."""
    image = NODES[node][4]
    lab["nm"]("nodeset", node, f"osimage={image}")
    store = lab["store"]
    armed = state(store, node)
    assert armed[0] == "installing" and armed[3], armed
    assert "token=" not in (armed[4] or "")
    boot_file = _boot_file(lab, node)
    answer = lab["install"] / "autoinst" / node
    text = boot_file.read_text()
    netboot = NODES[node][2]
    if image == IMAGE:   # no answer file: the callback URL with the token on the boot line
        assert "nodemgr.callback=" in text, text
        url_path = _callback_path(text)
        assert not answer.exists()
    else:                # the answer file's URL only; the token is inside the answer file
        url = f"http://{SERVER}:{HTTPPORT}/install/autoinst/{node}"
        if image == PRESEED_IMAGE:
            for word in ("auto=true", "priority=critical", f"url={url}",
                         f"hostname={node}", "interface=auto"):
                assert re.search(rf"(?<!\S){re.escape(word)}(?!\S)", text), (word, text)
        else:
            assert re.search(rf"(?<!\S)inst\.ks={re.escape(url)}(?!\S)", text), text
        assert "token=" not in text and "nodemgr.callback" not in text, text
        assert stat.S_IMODE(answer.stat().st_mode) == 0o600, oct(answer.stat().st_mode)
        url_path = answer_callback_path(store, node)
        assert url_path.startswith(f"/install-finished/{node}?token="), "no token"
    if netboot != "pxe":   # kernel and initrd over HTTP, from nginx on httpport
        assert (f"http://{SERVER}:{HTTPPORT}/tftpboot/e2e/vmlinuz" in text
                or f"(http,{SERVER}:{HTTPPORT})" in text), text
    if netboot == "xnba":  # EFI iPXE hands the initrd over only when the kernel line names it
        assert "initrd=initrd " in text, text
    return {"url_path": url_path, "boot_file": boot_file, "answer": answer,
            "currstate": armed[1]}


def qemu_cmd(lab, node: str, tap: str, console: Path) -> list[str]:
    """The guest: SeaBIOS + QEMU's iPXE ROM, or OVMF (Secure Boot off, a private variable
    store) with OVMF's own virtio-net driver and PXE (``romfile=``: QEMU's iPXE EFI ROM
    would add a boot entry of its own ahead of OVMF's PXE, test-environment §6 gotcha 1)
    and 512 MiB (GRUB 2.06's ``linux`` runs out of memory in 256, gotcha 2)."""
    _, mac, _, fw, _ = NODES[node]
    net = ["-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no"]
    common = ["-cpu", "qemu64", "-smp", "1", "-display", "none", "-monitor", "none",
              "-serial", f"file:{console}", "-no-reboot"]
    if fw == "bios":
        return ["qemu-system-x86_64", "-machine", "pc,accel=tcg", "-m", "256", *common,
                "-boot", "n", *net, "-device", f"virtio-net-pci,netdev=n0,mac={mac}"]
    vars_copy = lab["work"] / f"{node}-OVMF_VARS.fd"
    shutil.copy(OVMF_VARS, vars_copy)
    if fw == "uefi-http":  # OVMF tries PXEv4, PXEv6, HTTPv4, HTTPv6: PXE off (§6 gotcha 7)
        common += ["-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=no",
                   "-fw_cfg", "name=opt/org.tianocore/IPv6PXESupport,string=no"]
    return ["qemu-system-x86_64", "-machine", "q35,accel=tcg", "-m", "512", *common,
            "-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
            "-drive", f"if=pflash,format=raw,file={vars_copy}", *net,
            "-device", f"virtio-net-pci,netdev=n0,mac={mac},bootindex=1,romfile="]


_RUNNING: set = set()   # guests being booted, stopped at once when the test is interrupted


def boot_all(lab, nodes: list[str], taps: list[str]) -> dict[str, str]:
    """:func:`boot` the guests at the same time; node -> console text."""
    pool = ThreadPoolExecutor(len(nodes))
    try:
        return dict(zip(nodes, pool.map(boot, [lab] * len(nodes), nodes, taps), strict=True))
    except BaseException:
        stop_groups(list(_RUNNING), grace_s=2)
        raise
    finally:
        pool.shutdown(wait=True)


def boot(lab, node: str, tap: str = "tap0") -> str:
    """Network-boot *node*'s guest until it powers off; returns its serial console text."""
    console = lab["work"] / f"{node}.console"
    cmd = lab["ns"].cmd("timeout", "120", *qemu_cmd(lab, node, tap, console))
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    _RUNNING.add(p)
    try:
        _, err = p.communicate(timeout=130)
    finally:               # also on an interrupt: no guest outlives the test
        stop_groups([p], grace_s=2)
        _RUNNING.discard(p)
    took = time.monotonic() - t0
    text = console.read_text(errors="replace") if console.exists() else ""
    assert p.returncode == 0, (f"{node}: qemu exit {p.returncode} after {took:.1f}s: "
                               f"{err}\n{_tail(text)}\n{_logs(lab)}")
    print(f"{node} ({NODES[node][3]}, {NODES[node][2]}): booted to poweroff in {took:.1f} s")
    return text


def _tail(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)[-3000:]


def _logs(lab) -> str:
    out = []
    for name in ("kea.log", "tftpd.log", "nginx/access.log", "nginx/error.log"):
        p = lab["work"] / name
        if p.exists():
            out.append(f"--- {name}\n" + p.read_text(errors="replace")[-1500:])
    return "\n".join(out)


def replay(lab, node: str, url_path: str) -> tuple[int, str]:
    """GET the callback again through nginx from the node's own address (the guest is off
    by now); nginx sets X-Forwarded-For, which the app believes from 127.0.0.1."""
    ip = NODES[node][0]
    ns = lab["ns"]
    ns.run("ip", "addr", "add", f"{ip}/32", "dev", "srv0")
    try:
        r = subprocess.run(ns.cmd("curl", "-s", "-o", "/dev/stderr", "-w", "%{http_code}",
                                  "--interface", ip, f"http://{SERVER}:{HTTPPORT}{url_path}"),
                           capture_output=True, text=True, timeout=30)
        return int(r.stdout or 0), r.stderr
    finally:
        ns.run("ip", "addr", "del", f"{ip}/32", "dev", "srv0")


def _post_ran(lab, node, console) -> None:
    """The serial log of a guest that took its answer file: fetched and checked, its
    post-install section run with the shipped postscripts (sethostname wrote /etc/hostname,
    remoteshell the lab key)."""
    assert f"NODEMGR-E2E: answer file for {node} (" in console, _tail(console)
    if NODES[node][4] == PRESEED_IMAGE:   # d-i's hostname= agrees with DHCP's name
        assert f"NODEMGR-E2E: d-i hostname={node} is the DHCP name" in console
    # fetched through nginx; the app saw the node's own address (X-Forwarded-For)
    assert (f"autoinst: {node} fetched its answer file from {NODES[node][0]}"
            in (lab["work"] / "gunicorn.log").read_text(errors="replace")), _logs(lab)
    assert "NODEMGR-E2E: post section of " in console, _tail(console)
    for ps in ("sethostname", "remoteshell"):
        assert (f"NODEMGR-E2E: wget GET http://{SERVER}:{HTTPPORT}/install/postscripts/{ps}"
                " exit 0") in console, _tail(console)
    domain = lab["store"].site("domain")
    fqdn = f"{node}.{domain}" if domain else node
    assert f"sethostname: {fqdn} ({NODES[node][0]})" in console, _tail(console)
    assert re.search(rf"^NODEMGR-E2E: /etc/hostname: {node}\s*$", console, re.M), \
        _tail(console)
    assert f"NODEMGR-E2E: authorized_keys: {LAB_KEY}" in console, _tail(console)


def verify(lab, node, console, armed):
    """After the guest powered off: the callback answered booted (from the answer file's
    post section, or from the boot line's URL), chain advanced, local boot, token gone,
    answer file gone, replay refused."""
    store = lab["store"]
    if NODES[node][4] == IMAGE:
        assert f"NODEMGR-E2E: callback ok: {node}: booted" in console, _tail(console)
    else:
        _post_ran(lab, node, console)
        assert (f"NODEMGR-E2E: wget GET http://{SERVER}:{HTTPPORT}/install-finished/{node} "
                f"exit 0 answer: {node}: booted") in console, _tail(console)
        assert "NODEMGR-E2E: post exit 0" in console, _tail(console)
        assert not armed["answer"].exists()      # nodeset next → boot removed it
    status, currstate, _, tokenhash, _ = state(store, node)
    assert status == "booted"
    assert currstate == "boot"                  # chain advanced: install → boot
    assert tokenhash is None                    # token consumed
    text = armed["boot_file"].read_text()
    assert ("LOCALBOOT" in text) if NODES[node][2] == "pxe" else ("exit" in text)
    assert "nodemgr.callback" not in text and "token=" not in text
    q = lab["nm"]("makedhcp", "-q", node)     # Kea's running config and its lease
    assert f"lease = {NODES[node][0]} until" in q, q
    code, body = replay(lab, node, armed["url_path"])
    assert code == 403 and "token" in body, (code, body)
    assert state(store, node)[:2] == ("booted", "boot")


def verify_failed(lab, node, console, armed):
    """A postscript failed: the post section POSTed status=failed and stopped without
    calling install-finished; the node is ``failed``, its chain unchanged (still the
    install), the token consumed (the install-finished URL is refused from now on)."""
    store = lab["store"]
    _post_ran(lab, node, console)
    assert f"e2e-fail: failing on purpose on {node}" in console, _tail(console)
    assert (f"NODEMGR-E2E: wget POST http://{SERVER}:{HTTPPORT}/install-status/{node} "
            f"exit 0 answer: {node}: failed") in console, _tail(console)
    assert "NODEMGR-E2E: post exit 1" in console, _tail(console)
    assert "/install-finished/" not in console, _tail(console)   # never called
    status, currstate, currchain, tokenhash, _ = state(store, node)
    assert status == "failed"
    assert (currstate, currchain) == (armed["currstate"], "boot")  # chain unchanged
    assert tokenhash is None                    # consumed by the report
    assert "inst.ks=" in armed["boot_file"].read_text()          # still the install
    assert armed["answer"].is_file()
    code, body = replay(lab, node, armed["url_path"])
    assert code == 403 and "token" in body, (code, body)
    assert state(store, node)[:3] == ("failed", armed["currstate"], "boot")


def _callback_path(kcmdline: str) -> str:
    m = re.search(r"nodemgr\.callback=http://[^/\s]+(\S+)", kcmdline)
    assert m, kcmdline
    return m.group(1)


DOMAIN_XML = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='network'/></os>
  <features><acpi/></features>
  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>
  <on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>
  <devices>
    <interface type='bridge'><source bridge='{bridge}'/><mac address='{mac}'/>
      <model type='virtio'/></interface>
    <serial type='file'><source path='{console}'/><target port='0'/></serial>
    <video><model type='none'/></video>
    <memballoon model='none'/>
  </devices>
</domain>"""


def test_pxe_install_finished_through_libvirt(lab):
    """node03 (pxelinux, kernel over TFTP), the guest started by the system libvirtd
    (``<boot dev='network'/>``) on an address-less root-namespace bridge patched into the
    test namespace by a veth."""
    try:
        import libvirt
    except ImportError:
        need(False, "libvirt-python is not installed")
    libvirt.registerErrorHandler(lambda *_: None, None)  # errors are raised, not printed
    try:
        conn = libvirt.open("qemu:///system")
    except libvirt.libvirtError as exc:
        need(False, f"libvirtd not reachable: {exc}")
    tag = str(os.getpid())[-6:]
    bridge, vroot, vns = f"nmbr{tag}", f"nmva{tag}", f"nmvb{tag}"
    consdir = Path(tempfile.mkdtemp(prefix="nmpxe-", dir="/var/tmp"))
    consdir.chmod(0o755)               # QEMU runs as libvirt-qemu and writes the console here
    name = f"nmpxe-{tag}"
    ns = lab["ns"]

    def boot_libvirt(node):
        console = consdir / f"{node}.console"
        xml = DOMAIN_XML.format(name=name, bridge=bridge, mac=NODES[node][1], console=console)
        t0 = time.monotonic()
        dom = conn.createXML(xml, 0)    # transient: gone once the guest powers off
        while time.monotonic() - t0 < 120:
            try:
                dom.state()
            except libvirt.libvirtError:
                break
            time.sleep(0.2)
        else:
            dom.destroy()
            pytest.fail(f"the libvirt guest did not power off within 120 s\n{_logs(lab)}")
        print(f"{node} (libvirt, bios, pxe): booted to poweroff in {time.monotonic() - t0:.1f} s")
        return console.read_text(errors="replace")

    try:
        sh(None, "ip", "link", "add", bridge, "type", "bridge")
        sh(None, "sysctl", "-qw", f"net.ipv6.conf.{bridge}.disable_ipv6=1")
        sh(None, "ip", "link", "add", vroot, "type", "veth", "peer", "name", vns, "netns",
           ns.name)
        sh(None, "sysctl", "-qw", f"net.ipv6.conf.{vroot}.disable_ipv6=1")
        sh(None, "ip", "link", "set", vroot, "master", bridge)
        sh(None, "ip", "link", "set", vroot, "up")
        sh(None, "ip", "link", "set", bridge, "up")
        ns.run("ip", "link", "set", vns, "master", "br0")
        ns.run("ip", "link", "set", vns, "up")
        armed = arm(lab, "node03")
        verify(lab, "node03", boot_libvirt("node03"), armed)
    finally:
        try:
            conn.lookupByName(name).destroy()
        except libvirt.libvirtError:
            pass
        conn.close()
        subprocess.run(["ip", "link", "del", vroot], capture_output=True)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        shutil.rmtree(consdir, ignore_errors=True)
