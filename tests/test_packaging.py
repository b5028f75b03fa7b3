"""Packaging: the wheel's contents, the extras table, and the commands of an install without
extras (a real wheel in a fresh venv): each starts, and a missing optional library is one
line naming the extra, never a traceback."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from nodemgr import extras
from nodemgr.cli.common import main_wrapper
from nodemgr.cli.registry import COMMANDS
from nodemgr.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _dist_name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9._-]+", requirement).group(0).lower()


def _import_name(requirement: str) -> str:
    dist = _dist_name(requirement)
    return extras.IMPORT_NAMES.get(dist, dist.replace("-", "_"))


# -- the extras table ----------------------------------------------------------------------

def test_extras_table_agrees_with_pyproject():
    optional = PYPROJECT["project"]["optional-dependencies"]
    assert list(extras.EXTRAS) == list(optional)
    for extra, requirements in optional.items():
        assert extras.EXTRAS[extra] == tuple(_import_name(r) for r in requirements), extra
    assert extras.CORE == tuple(_import_name(r) for r in PYPROJECT["project"]["dependencies"])
    assert set(extras.SUPPORT) <= set(optional)
    assert set(extras.IMPORTERS.values()) <= set(optional)


def _third_party_imports() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / "nodemgr").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != "nodemgr" and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_library_nodemgr_imports_is_core_or_in_an_extra():
    unknown = {mod: files for mod, files in _third_party_imports().items()
               if mod not in extras.CORE and not extras.extras_of(mod)}
    assert not unknown, f"add to pyproject's extras and nodemgr/extras.py: {unknown}"


# -- the message (in process, a library hidden through sys.modules) -------------------------

def _run_without(monkeypatch, module: str, func, argv):
    monkeypatch.setitem(sys.modules, module, None)   # import -> ModuleNotFoundError
    return main_wrapper(func)(argv)


def test_missing_pycdlib_is_one_line_naming_netboot(monkeypatch, capsys, tmp_path):
    from nodemgr.cli import netbootcmds

    iso = tmp_path / "x.iso"
    iso.write_bytes(b"not an iso")
    monkeypatch.setenv("NODEMGR_DB", f"sqlite:///{tmp_path}/db.sqlite")
    monkeypatch.setitem(sys.modules, "pycdlib", None)
    assert netbootcmds.copycds([str(iso)]) == 1
    assert capsys.readouterr().err == \
        "Error: copycds needs pycdlib: pip install 'nodemgr[netboot]'\n"


def test_the_extra_follows_the_importer():
    def fail_in(module_name: str, lib: str) -> ModuleNotFoundError:
        code = compile(f"import {lib}", f"<{module_name}>", "exec")
        try:
            exec(code, {"__name__": module_name})
        except ModuleNotFoundError as exc:
            return exc
        raise AssertionError("imported")

    saved = sys.modules.get("paramiko", "absent")
    sys.modules["paramiko"] = None
    try:
        xen = fail_in("nodemgr.plugins.xen", "paramiko")
        ovm = fail_in("nodemgr.plugins.ovm.soap", "paramiko")
        other = fail_in("nodemgr.sshpool", "paramiko")
    finally:
        if saved == "absent":
            del sys.modules["paramiko"]
        else:
            sys.modules["paramiko"] = saved
    assert extras.missing_message("mkvm", xen) == "mkvm needs paramiko: pip install 'nodemgr[xen]'"
    assert extras.missing_message("mkvm", ovm) == "mkvm needs paramiko: pip install 'nodemgr[ovm]'"
    assert extras.missing_message("x", other) == "x needs paramiko: pip install 'nodemgr[xen]'"


def test_a_command_error_raised_for_a_missing_library_names_the_extra(capsys):
    def nodels(argv):
        try:
            raise ModuleNotFoundError("No module named 'psycopg'", name="psycopg")
        except ImportError:
            raise ConfigError("PostgreSQL URL given but psycopg is not installed") from None

    nodels.__module__ = "nodemgr.cli.nodecmds"
    assert main_wrapper(nodels)([]) == 1
    assert capsys.readouterr().err == \
        "Error: nodels needs psycopg: pip install 'nodemgr[postgresql]'\n"


def test_other_missing_modules(capsys):
    def cmd(name):
        def run(argv):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return main_wrapper(run)

    assert cmd("werkzeug.routing")([]) == 1
    assert "needs werkzeug: pip install 'nodemgr[netboot]'" in capsys.readouterr().err
    assert cmd("regex")([]) == 1
    assert "needs regex: pip install regex" in capsys.readouterr().err
    assert cmd("frobnicate")([]) == 1
    assert capsys.readouterr().err.endswith("needs frobnicate, which is not installed\n")
    with pytest.raises(ModuleNotFoundError):   # nodemgr's own module: a bug, keeps its traceback
        cmd("nodemgr.nosuch")([])


# -- pyproject's package list --------------------------------------------------------------

def test_every_nodemgr_package_is_listed():
    setuptools_cfg = PYPROJECT["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "nodemgr").rglob("__init__.py")}
    mapped = set(setuptools_cfg["package-dir"])
    assert set(setuptools_cfg["packages"]) == found | mapped
    assert setuptools_cfg["package-dir"] == {"nodemgr.share.etc": "etc", "nodemgr.share.cgi": "cgi"}


# -- the wheel -----------------------------------------------------------------------------

def _source_files() -> list[str]:
    """The checkout's files (tracked and new, not ignored), or every file outside caches."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], cwd=ROOT, capture_output=True,
                             check=True, timeout=30).stdout
        return [f for f in out.decode().split("\0") if f and (ROOT / f).is_file()]
    except (OSError, subprocess.CalledProcessError):
        skip = {".venv", ".git", "build", "__pycache__", ".pytest_cache", ".hypothesis"}
        return [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
                if p.is_file() and not skip & set(p.relative_to(ROOT).parts)]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built (as pip builds it, isolated) from a copy of the checkout."""
    src = tmp_path_factory.mktemp("src")
    for rel in _source_files():
        if rel.startswith(("tests/", "bench/")):
            continue
        dest = src / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest, follow_symlinks=False)
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out),
                        str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    (whl,) = out.glob("nodemgr-*.whl")
    return whl


def _tracked(under: str) -> set[str]:
    return {f for f in _source_files() if f.startswith(under + "/") and "__pycache__" not in f
            and not f.endswith((".pyc", "/.keep"))}


def test_wheel_members(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    share = {f for f in _tracked("nodemgr/share") if not f.endswith("__init__.py")}
    assert share and share <= names, share - names
    for top in ("etc", "cgi"):
        files = _tracked(top)
        assert files
        shipped = {f"nodemgr/share/{f}" for f in files}
        assert shipped <= names, shipped - names
    for name in ("nodemgr/share/etc/gunicorn.conf.py", "nodemgr/share/etc/nodemgr.conf",
                 "nodemgr/share/etc/nginx/nodemgr.conf",
                 "nodemgr/share/etc/systemd/nodemgr-tftpd.service",
                 "nodemgr/share/etc/systemd/nodemgr-web.service",
                 "nodemgr/share/etc/sysusers.d/nodemgr-tftp.conf",
                 "nodemgr/share/cgi/nodemgr.cgi", "nodemgr/share/cgi/nodemgr.wsgi",
                 "nodemgr/extras.py", "nodemgr/cli/common.py"):
        assert name in names, name
    assert not [n for n in names if n.startswith(("tests/", "bench/", "bin/", "scripts/"))]
    info = next(n for n in names if n.endswith(".dist-info/METADATA")).rsplit("/", 1)[0]
    assert f"{info}/licenses/LICENSE" in names
    metadata = zipfile.ZipFile(wheel).read(f"{info}/METADATA").decode()
    assert "License-Expression: EPL-2.0" in metadata.splitlines()
    license_text = zipfile.ZipFile(wheel).read(f"{info}/licenses/LICENSE").decode()
    assert license_text == (ROOT / "LICENSE").read_text()
    assert license_text.startswith("Eclipse Public License - v 2.0\n")


def test_license_is_the_epl_2_0_text():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("Eclipse Public License - v 2.0\n\n    THE ACCOMPANYING PROGRAM")
    assert "Exhibit A - Form of Secondary Licenses Notice" in text
    assert len(text.encode()) == 14197   # eclipse.org's EPL-2.0.txt
    assert PYPROJECT["project"]["license"] == "EPL-2.0"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]


# -- an install without extras --------------------------------------------------------------

@pytest.fixture(scope="module")
def bare(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel and its core dependency only (no extras): its bin/."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    # pip from this environment installs into the new one; regex from pip's configured
    # index (or find-links), as `pip install nodemgr` would get it
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                        "--no-deps", str(wheel), *PYPROJECT["project"]["dependencies"]],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([str(python), "-c", "import pycdlib"], capture_output=True, timeout=60)
    assert r.returncode != 0, "the bare venv must not see the optional libraries"
    return venv / "bin"


def _run(bin_dir: Path, tmp_path: Path, *argv: str, db: str | None = None):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NODEMGR_", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    conf = tmp_path / "nodemgr.conf"   # not /etc/nodemgr's: only the database below
    conf.write_text("[nodemgr]\n")
    env["NODEMGR_CONF"] = str(conf)
    env["NODEMGR_DB"] = db or f"sqlite:///{tmp_path}/nodemgr.sqlite"
    return subprocess.run([str(bin_dir / argv[0]), *argv[1:]], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=60)


def test_bare_install_every_command_starts(bare, tmp_path):
    for name in COMMANDS:
        r = _run(bare, tmp_path, name, "--help")
        assert r.returncode == 0 and "Traceback" not in r.stderr, (name, r.stderr)
        assert r.stdout.strip(), name


def test_bare_install_missing_library_is_one_line(bare, tmp_path):
    iso = tmp_path / "x.iso"
    iso.write_bytes(b"\0" * 4096)
    r = _run(bare, tmp_path, "copycds", str(iso))
    assert (r.returncode, r.stdout, r.stderr) == (
        1, "", "Error: copycds needs pycdlib: pip install 'nodemgr[netboot]'\n")
    r = _run(bare, tmp_path, "nodemgr-tftpd", "--address", "127.0.0.1", "--port", "0",
             "--root", str(tmp_path))
    assert (r.returncode, r.stderr) == (
        1, "Error: nodemgr-tftpd needs tftpy: pip install 'nodemgr[netboot]'\n")


def test_bare_install_sqlite_works_postgresql_names_psycopg(bare, tmp_path):
    r = _run(bare, tmp_path, "nodeadd", "n1", "groups=all")
    assert r.returncode == 0, r.stderr
    r = _run(bare, tmp_path, "nodels")
    assert (r.returncode, r.stdout, r.stderr) == (0, "n1\n", "")
    r = _run(bare, tmp_path, "nodels", db="postgresql://nodemgr@127.0.0.1:1/nodemgr")
    assert (r.returncode, r.stdout, r.stderr) == (
        1, "", "Error: nodels needs psycopg: pip install 'nodemgr[postgresql]'\n")


# -- the systemd units ---------------------------------------------------------------------

@pytest.mark.parametrize("unit", ["nodemgr-tftpd.service", "nodemgr-web.service"])
def test_units_are_for_an_installed_package(unit, tmp_path):
    text = (ROOT / "etc" / "systemd" / unit).read_text()
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert "/opt/nodemgr" not in "\n".join(lines)          # only in the drop-in comment
    exec_start = next(ln for ln in lines if ln.startswith("ExecStart="))
    command = exec_start.split("=", 1)[1].split()[0]
    assert "/" not in command                           # found on systemd's PATH
    assert "Environment=NODEMGR_CONF=/etc/nodemgr/nodemgr.conf" in lines
    assert "systemctl edit" in text                     # how to point it at a checkout
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    exe = tmp_path / command                            # where the install would put it
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    copy = tmp_path / unit
    copy.write_text(text.replace(exec_start, exec_start.replace(command, str(exe), 1)))
    r = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True,
                       timeout=60)
    complaints = [ln for ln in (r.stdout + r.stderr).splitlines() if unit in ln]
    assert r.returncode == 0 and not complaints, r.stdout + r.stderr


# -- the runtime environment's bin/ ---------------------------------------------------------

def test_runtime_bin_holds_no_test_tools():
    """scripts/setup-host keeps pyproject's `test` extra (pytest, ruff, ...) in .venv-test,
    reached from .venv's python through a .pth file, never in .venv/bin."""
    runtime = ROOT / ".venv"
    if not (ROOT / ".venv-test").is_dir() or Path(sys.prefix).resolve() != runtime.resolve():
        pytest.skip("not the checkout's .venv made by scripts/setup-host")
    tools = {"pytest", "py.test", "ruff", "hypothesis", "ksvalidator", "ksflatten"}
    assert not tools & {p.name for p in (runtime / "bin").iterdir()}
    for name in ("pytest", "ruff"):
        r = subprocess.run([sys.executable, "-m", name, "--version"], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    assert (ROOT / ".venv-test" / "bin" / "ruff").exists()
    for project_script in PYPROJECT["project"]["scripts"]:
        assert (runtime / "bin" / project_script).exists(), project_script
