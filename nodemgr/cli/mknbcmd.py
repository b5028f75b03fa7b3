"""Boot service commands: ``mknb`` (boot loaders into the TFTP root) and ``makewebconf``
(the nginx server file that serves the TFTP and install trees over HTTP).

Thin: the work is :mod:`nodemgr.netboot.mknb` and :mod:`nodemgr.netboot.webconf`.
"""

from __future__ import annotations

import json
import sys

from nodemgr.cli.common import main_wrapper, open_store, parser
from nodemgr.errors import UsageError

MKNB_HELP = """\
Place everything a node fetches over TFTP before its own boot file in the TFTP root
(site.tftpdir, default /tftpboot; -p overrides), from the Debian packages:

  file                      source                                     Debian package
  pxelinux.0                /usr/lib/PXELINUX/pxelinux.0               pxelinux
  ldlinux.c32, mboot.c32,   /usr/lib/syslinux/modules/bios/            syslinux-common
  libcom32.c32, libutil.c32
  undionly.kpxe,            /usr/lib/ipxe/ (ipxe.efi is a symlink:     ipxe
  snponly.efi, ipxe.efi     its target's bytes are copied)
  boot/grub2/grubx64.efi    grub-mkimage -O x86_64-efi                 grub-efi-amd64-bin,
                            -p '(tftp)/boot/grub2' from                grub-common
                            /usr/lib/grub/x86_64-efi, modules embedded

BIOS nodes boot pxelinux.0 (or undionly.kpxe for iPXE); UEFI nodes boot grubx64.efi (or
snponly.efi for iPXE), which reads the grub.cfg-01-<mac> file nodeset writes under
boot/grub2/. makedhcp hands out these names.

Idempotent and atomic: a file whose content is already right is left alone (same inode
and mtime); a new or changed file is written under a temporary name and renamed. The GRUB
image is rebuilt only when its inputs change (grub-mkimage version, module list, module
files, prefix; recorded in boot/grub2/.grubx64.efi.inputs). Every source is checked
first: a missing package is one error line naming it, and nothing is placed.

It also copies the shipped postscripts (sethostname, remoteshell) into
<installdir>/postscripts/, where answer files fetch them; one already there is kept as
it is (a site's edited copy wins).

Output: one line per file, "<file>: placed|updated|unchanged (<source>)", then a summary
line ("nothing changed" on a second run).

Secure Boot is not built here: use Debian's signed shim and GRUB instead (see the README,
"Boot loaders: mknb").

exit status:
  0  every file is in place
  1  a package is missing, grub-mkimage failed or the TFTP root is not writable
     (nothing placed)

examples:
  mknb                     # into site.tftpdir
  mknb x86_64 -p /srv/tftp
  mknb --sysroot /var/tmp/debs   # sources from dpkg-deb -x trees instead of /
"""


@main_wrapper
def mknb(argv: list[str]) -> int:
    p = parser("mknb", MKNB_HELP)
    p.add_argument("arch", nargs="?", default="x86_64",
                   help="architecture (xCAT's argument); only x86_64")
    p.add_argument("-p", "--tftpdir", metavar="DIR",
                   help="TFTP root to fill (default: site.tftpdir)")
    p.add_argument("--sysroot", metavar="DIR", default="/",
                   help="look for the packages' files under DIR instead of / "
                        "(grub-mkimage still comes from $PATH)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    p.add_argument("--json", action="store_true", help="one JSON object per file")
    a = p.parse_args(argv)
    if a.arch not in ("x86_64", "x86-64", "amd64"):
        raise UsageError(f"architecture '{a.arch}' is not supported (x86_64 only)")
    from nodemgr import policy, settings
    from nodemgr.netboot import mknb as nb

    store = open_store()
    root = a.tftpdir if a.tftpdir is not None else settings.get(store, "tftpdir")
    policy.audit(store, user=policy.current_user(), host="localhost", command="mknb",
                 noderange="", args=argv, status="Allowed")
    results = nb.mknb(root, sysroot=a.sysroot)
    installdir = settings.get(store, "installdir")
    try:
        scripts = nb.install_postscripts(installdir)
    except OSError as exc:
        raise UsageError(f"cannot install the postscripts into {installdir}/postscripts: "
                         f"{exc.strerror or exc}") from None
    if a.json:
        for r in scripts:  # after the boot files'
            results.append(nb.Placed(f"{installdir}/{r.name}", r.action, r.source, r.package))
        for r in results:
            print(json.dumps({"file": r.name, "action": r.action, "source": r.source,
                              "package": r.package}))
        return 0
    if a.quiet:
        return 0
    for r in results:
        print(f"{r.name}: {r.action} ({r.source})")
    for r in scripts:
        if r.action == "placed":
            print(f"{installdir}/{r.name}: placed ({r.source})")
    changed = sum(r.action != "unchanged" for r in results)
    if changed:
        print(f"{root}: {changed} of {len(results)} files placed or updated")
    else:
        print(f"{root}: nothing changed ({len(results)} files already in place)")
    return 0


MAKEWEBCONF_HELP = """\
Print the nginx server file for network boot, rendered from the settings (nodemgr-config
shows them): the TFTP root (tftpdir) at /tftpboot/ and the install tree (installdir) at
/install/, read-only, no listing; /install-finished/ and /xcatrhevh/ proxied to the web
app under gunicorn with X-Forwarded-For set to the client's address (never appended) and
no access log (the URLs carry one-time tokens); everything else 404. nginx listens on
httpport (default 80), on every address as default_server unless --listen names one.

The URLs nodeset writes (http://<master>[:<httpport>]/tftpboot/..., /install/...) are
what this file serves, whatever tftpdir and installdir are: render it again after
changing them. etc/nginx/nodemgr.conf is the rendering of the defaults. The web app
believes X-Forwarded-For only from site.callbackproxies (add 127.0.0.1). Debian's
/etc/nginx/sites-enabled/default is default_server on port 80 too: remove it (nginx -t
says "a duplicate default server"), or use --listen.

exit status:
  0  written
  1  a setting or option is unusable (not an absolute path, characters nginx would
     misread, not a port), or FILE cannot be written (nothing changed)

examples:
  makewebconf -o /etc/nginx/conf.d/nodemgr.conf && nginx -t && nginx -s reload
  makewebconf --listen 10.0.0.1 --upstream 127.0.0.1:8080
"""


@main_wrapper
def makewebconf(argv: list[str]) -> int:
    p = parser("makewebconf", MAKEWEBCONF_HELP)
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write FILE atomically (temporary name + rename) instead of stdout")
    p.add_argument("--listen", metavar="ADDR",
                   help="address nginx listens on (default: every address)")
    p.add_argument("--upstream", metavar="HOST:PORT", default=None,
                   help="gunicorn's address for the callbacks (default 127.0.0.1:8080; "
                        "unix:/path for a socket)")
    a = p.parse_args(argv)
    from nodemgr.netboot import webconf

    wc = webconf.from_settings(open_store(), listen=a.listen,
                               upstream=a.upstream or webconf.DEFAULT_UPSTREAM)
    text = webconf.render(wc)
    if a.output is None:
        sys.stdout.write(text)
        return 0
    try:
        webconf.write_atomic(a.output, text)
    except OSError as exc:
        raise UsageError(f"cannot write {a.output}: {exc.strerror or exc}") from None
    return 0
