"""The Debian package (debian/): built from a copy of the checkout with dpkg-buildpackage
(dh-python's pybuild, Debian 12's own setuptools), then installed with ``dpkg -i`` into a
throwaway root: an overlay over this machine's / whose upper layer is a tmpfs, in a mount
namespace of its own (``unshare --mount``), so dpkg changes only the overlay and everything
it did vanishes with the namespace. In there the installed commands run (``nodels``,
``nodemgr-tftpd --help``, a real ``nodeadd``/``nodels`` on SQLite), the package's user
exists, systemd accepts the installed unit, and ``dpkg --purge`` removes it all.

Needs root, ``unshare`` and the build dependencies of debian/control (scripts/setup-host
installs them); without them the tests skip with the reason, or fail under
NODEMGR_REQUIRE_ALL=1 as in CI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from nodemgr.cli.registry import COMMANDS
from tests.test_packaging import _source_files

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
REQUIRE_ALL = os.environ.get("NODEMGR_REQUIRE_ALL") == "1"
#: Debian's own tools and Python only: never a virtualenv's or pyenv's python3.
DEB_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root"}

pytestmark = pytest.mark.slow


def _unavailable(reason: str):
    if REQUIRE_ALL:
        pytest.fail(f"{reason} (scripts/setup-host installs it)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def deb(tmp_path_factory) -> Path:
    """The .deb built by ``dpkg-buildpackage -us -uc -b`` in a copy of the checkout."""
    if os.geteuid() != 0:
        _unavailable("building and installing the package needs root")
    for tool in ("dpkg-buildpackage", "dpkg-checkbuilddeps", "unshare"):
        if not shutil.which(tool, path=DEB_ENV["PATH"]):
            _unavailable(f"{tool} not installed")
    top = tmp_path_factory.mktemp("deb")
    src = top / "nodemgr"
    for rel in _source_files():
        if rel.startswith(("tests/", "bench/")):
            continue
        dest = src / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest, follow_symlinks=False)
    copied = (src / "pyproject.toml").read_bytes()
    r = subprocess.run(["dpkg-checkbuilddeps"], cwd=src, env=DEB_ENV, capture_output=True,
                       text=True, timeout=60)
    if r.returncode != 0:
        _unavailable(r.stderr.strip().splitlines()[-1])
    r = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, env=DEB_ENV,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    assert (src / "pyproject.toml").read_bytes() == copied, \
        "debian/pep639-compat left pyproject.toml rewritten"
    (path,) = top.glob("nodemgr_*_all.deb")
    return path


def _deb(*args: str, deb: Path) -> str:
    return subprocess.run(["dpkg-deb", *args, str(deb)], capture_output=True, text=True,
                          check=True, timeout=60).stdout


def test_package_metadata(deb, tmp_path):
    version = PYPROJECT["project"]["version"]
    assert deb.name == f"nodemgr_{version}_all.deb"
    fields = dict(re.findall(r"^(\w[\w-]*): (.*)$", _deb("-f", deb=deb), re.M))
    depends = [d.strip() for d in fields["Depends"].split(",")]
    assert "python3-regex (>= 0.1.20221031)" in depends     # pyproject's regex>=2022.10.31
    assert any(d.startswith("python3:any") for d in depends)
    assert any("systemd-sysusers" in d for d in depends)     # makes the nodemgr-tftp user
    assert "python3-libvirt (>= 9.0)" in fields["Recommends"]
    control = tmp_path / "DEBIAN"
    subprocess.run(["dpkg-deb", "-e", str(deb), str(control)], check=True, timeout=60)
    assert (control / "conffiles").read_text().split() == [
        "/etc/nodemgr/gunicorn.conf.py", "/etc/nodemgr/nodemgr.conf"]
    postinst = (control / "postinst").read_text()
    assert "systemd-sysusers" in postinst and "nodemgr-tftp.conf" in postinst
    assert "deb-systemd-invoke start" not in postinst        # nothing starts on install


def test_package_files(deb):
    listing = {line.split()[-1].lstrip(".") for line in _deb("-c", deb=deb).splitlines()
               if not line.startswith("l")}
    links = {line.split()[-3].lstrip(".") for line in _deb("-c", deb=deb).splitlines()
             if line.startswith("l")}
    for name in PYPROJECT["project"]["scripts"]:
        assert f"/usr/bin/{name}" in listing, name
    for path in ("/etc/nodemgr/nodemgr.conf", "/etc/nodemgr/gunicorn.conf.py",
                 "/lib/systemd/system/nodemgr-tftpd.service",
                 "/lib/systemd/system/nodemgr-web.service",
                 "/usr/lib/sysusers.d/nodemgr-tftp.conf", "/var/lib/nodemgr/",
                 "/usr/share/doc/nodemgr/copyright", "/usr/share/doc/nodemgr/README.Debian",
                 "/usr/share/doc/nodemgr/examples/nginx/nodemgr.conf",
                 "/usr/share/doc/nodemgr/examples/cgi/nodemgr.wsgi",
                 "/usr/lib/python3/dist-packages/nodemgr/cli/registry.py",
                 "/usr/lib/python3/dist-packages/nodemgr/share/etc/nodemgr.conf",
                 "/usr/lib/python3/dist-packages/nodemgr/share/cgi/nodemgr.cgi"):
        assert path in listing, path
    assert not [p for p in listing if "/tests/" in p or p.startswith("/usr/lib/python3/dist"
                                                                     "-packages/tests")]
    # shell completion and man pages, when the checkout has their generators
    if (ROOT / "nodemgr" / "completion.py").exists():
        assert "/usr/share/bash-completion/completions/nodemgr" in listing
        assert "/usr/share/zsh/vendor-completions/_nodemgr" in listing
        assert {f"/usr/share/bash-completion/completions/{c}" for c in COMMANDS} <= links
    if (ROOT / "nodemgr" / "manpages.py").exists():
        pages = {p for p in listing if p.startswith("/usr/share/man/man1/")}
        assert {f"/usr/share/man/man1/{c}.1.gz" for c in COMMANDS} <= pages
        assert "/usr/share/man/man3/noderange.3.gz" in listing
        assert "/usr/share/man/man5/nodemgr-tables.5.gz" in listing


# The throwaway root: run as `unshare --mount --propagation private sh -c SCRIPT sh DEB`.
THROWAWAY = r"""
set -eu
T=$(mktemp -d /tmp/nodemgr-deb-root.XXXXXX)
mount -t tmpfs -o mode=0755 tmpfs "$T"
mkdir "$T/upper" "$T/work" "$T/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$T/upper,workdir=$T/work" "$T/root"
for d in proc sys dev; do mount --rbind "/$d" "$T/root/$d"; done
cp "$1" "$T/root/tmp/nodemgr.deb"
exec chroot "$T/root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 sh -c '
set -eu
step() { printf "\n### %s\n" "$*"; }
step dpkg -i;            dpkg -i /tmp/nodemgr.deb
step status;             dpkg-query -W -f="\${Status}\n" nodemgr
step which;              for c in nodels nodemgr-tftpd; do command -v "$c"; done
step nodels --help;      nodels --help
step nodels --version;   nodels --version || echo "rc=$?"
step nodemgr-tftpd --help; nodemgr-tftpd --help
step user;               getent passwd nodemgr-tftp
step conf;               cat /etc/nodemgr/nodemgr.conf
step tables
export NODEMGR_DB=sqlite:////tmp/nodemgr-deb-test.sqlite
nodeadd n1,n2 groups=compute,all
nodels compute
step man;                if command -v man >/dev/null; then man -w nodels; man -w 3 noderange; fi
step verify;             systemd-analyze verify /lib/systemd/system/nodemgr-tftpd.service 2>&1
step purge;              dpkg --purge nodemgr >/dev/null
ls /usr/bin/nodels /etc/nodemgr 2>&1 || true
'
"""


def _sections(out: str) -> dict[str, str]:
    parts = re.split(r"^### (.*)\n", out, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_dpkg_i_in_a_throwaway_root(deb):
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                        THROWAWAY, "sh", str(deb)], env=DEB_ENV, capture_output=True,
                       text=True, timeout=300)
    out = _sections(r.stdout)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "Setting up nodemgr (" in out["dpkg -i"]
    assert out["status"].strip() == "install ok installed"
    assert out["which"].split() == ["/usr/bin/nodels", "/usr/bin/nodemgr-tftpd"]
    assert "nodels" in out["nodels --help"]
    if "--version" in out["nodels --help"]:     # the common -v/--version (issue 15 item 2)
        assert PYPROJECT["project"]["version"] in out["nodels --version"]
        assert "rc=" not in out["nodels --version"]
    assert "--user" in out["nodemgr-tftpd --help"]
    user = out["user"].strip().split(":")
    assert user[0] == "nodemgr-tftp" and user[-1] == "/usr/sbin/nologin"
    assert "db = sqlite:////var/lib/nodemgr/nodemgr.sqlite" in out["conf"]
    assert out["tables"].split() == ["n1", "n2"]
    assert "nodemgr-tftpd.service" not in out["verify"], out["verify"]
    if (ROOT / "nodemgr" / "manpages.py").exists() and shutil.which("man"):
        assert out["man"].split() == ["/usr/share/man/man1/nodels.1.gz",
                                      "/usr/share/man/man3/noderange.3.gz"]
    assert "No such file or directory" in out["purge"]
    assert "Traceback" not in r.stdout + r.stderr
    # and nothing of it on this machine
    assert not Path("/usr/bin/nodels").exists()
    host = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "nodemgr"], env=DEB_ENV,
                          capture_output=True, text=True)
    assert "ok installed" not in host.stdout


def test_copyright_carries_the_license():
    text = (ROOT / "debian" / "copyright").read_text()
    body = text.split("\nLicense: EPL-2.0\n")[-1]
    unindented = "".join("\n" if ln == " ." else ln[1:] + "\n" for ln in body.splitlines())
    assert unindented == (ROOT / "LICENSE").read_text()


def test_changelog_version_is_pyproject_version():
    top = (ROOT / "debian" / "changelog").read_text().splitlines()[0]
    assert top.startswith(f"nodemgr ({PYPROJECT['project']['version']}) ")
    assert (ROOT / "debian" / "source" / "format").read_text().strip() == "3.0 (native)"


def test_pep639_compat_knows_the_current_lines():
    """debian/pep639-compat rewrites exact lines; a change to them must change it too."""
    script = (ROOT / "debian" / "pep639-compat").read_text()
    lines = (ROOT / "pyproject.toml").read_text().splitlines()
    for line in ('license = "EPL-2.0"', 'license-files = ["LICENSE"]'):
        assert line in lines and f"'{line}'" in script
    assert "setuptools>=77.0.3" in PYPROJECT["build-system"]["requires"]
