"""xCAT's conventions on every command of the registry (issue 15 item 2), run as the user
runs them: a subprocess of the installed console script (``.venv/bin/<name>``), or of the
checkout's launcher ``bin/nodemgr <name>`` when the venv predates the command.

-h, --help and -? print the same ``Usage: <name> ...`` help and exit 0; -v and --version
print ``<name> - nodemgr version <x.y.z>``; a bad option is ``Error: Unknown option: ...``
followed by the Usage: block, exit 1; each option is listed once in --help; a command that
takes a noderange and gets words that look like a bracket range the shell expanded asks for
quotes. Also: -V's verbose() and logger, and the --json of tabdump, lspool, updatenodestat,
lsve.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nodemgr import __version__
from nodemgr.cli import common, netbootcmds, poolcmds, rhevcmds, tablecmds
from nodemgr.cli.registry import COMMANDS, run

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def argv_of(name: str) -> list[str]:
    script = VENV_BIN / name
    if script.exists() and _current(script, name):
        return [str(script)]
    return [sys.executable, str(ROOT / "bin" / "nodemgr"), name]


def _current(script: Path, name: str) -> bool:
    """The venv's script runs the registry's entry point (not a stale install's)."""
    module, func = COMMANDS[name].split(":")
    text = script.read_text(errors="replace")
    return f"from {module} import {func}" in text


@pytest.fixture
def env(tmp_path):
    conf = tmp_path / "none.conf"
    conf.write_text(f"[nodemgr]\ninstalldir = {tmp_path}/install\n")
    return dict(os.environ, NODEMGR_DB=f"sqlite:///{tmp_path}/conv.sqlite",
                NODEMGR_CONF=str(conf))


def sh(name: str, *args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([*argv_of(name), *args], capture_output=True, text=True, env=env,
                          timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_version_and_bad_option(name, env):
    helps = [sh(name, flag, env=env) for flag in ("-h", "--help", "-?")]
    for r in helps:
        assert (r.returncode, r.stderr) == (0, ""), (name, r.args, r.stderr)
        assert r.stdout.startswith(f"Usage: {name} "), (name, r.stdout[:80])
        assert "usage:" not in r.stdout.split("\n\n")[0]
    assert helps[0].stdout == helps[1].stdout == helps[2].stdout
    usage = "\n\n".join(helps[0].stdout.split("\n\n")[:2])  # lsdef's has a blank line
    assert f"{name} {{-v|--version}}" in usage or f"{name} [-v | --version]" in usage
    for flag in ("-v", "--version"):
        r = sh(name, flag, env=env)
        assert (r.returncode, r.stdout, r.stderr) == (
            0, f"{name} - nodemgr version {__version__}\n", ""), name
    r = sh(name, "--no-such-option", env=env)
    assert r.returncode == 1 and r.stdout == "", (name, r.stdout)
    assert r.stderr.startswith("Error: Unknown option: --no-such-option\nUsage: "), \
        (name, r.stderr[:200])
    assert "unrecognized arguments" not in r.stderr and "Traceback" not in r.stderr


_LISTING = re.compile(r"^ {2,4}(-[-\w?]+(?:, -[-\w?]+)*)(?: [^ ]+)? {2,}\S")


def _listed(text: str) -> tuple[set[str], set[str]]:
    """(options listed in argparse's sections, options listed by hand elsewhere) of a
    --help *text* below its Usage: block; a listing line is ``  -n, --name NAME  text``."""
    ours, by_hand = set(), set()
    for block in text.split("\n\n"):
        first = block.lstrip("\n").split("\n", 1)[0]
        into = ours if first in ("options:", "positional arguments:") else by_hand
        for line in block.splitlines():
            m = _LISTING.match(line)
            if m:
                into.update(o.strip() for o in m.group(1).split(","))
    return ours, by_hand


def _help(name: str, capsys) -> str:
    try:
        run(name, ["--help"])
    except SystemExit:
        pass
    return capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_options_listed_once(name, capsys):
    """No option is described both in the help's own text and in argparse's list."""
    ours, by_hand = _listed(_help(name, capsys).split("\n\n", 1)[1])
    assert ours, name
    assert not ours & by_hand, (name, sorted(ours & by_hand))


def _noderange_commands() -> list[str]:
    """The commands whose parser takes a noderange (asked of the parser itself)."""
    names = []
    for name in sorted(COMMANDS):
        out = io.StringIO()
        stdout, sys.stdout = sys.stdout, out
        try:
            run(name, ["--help"])
        except SystemExit:
            pass
        finally:
            sys.stdout = stdout
        if common._last is not None and common._last.takes_noderange:
            names.append(name)
    return names


NODERANGE_COMMANDS = _noderange_commands()


def test_the_noderange_commands_are_found():
    assert {"nodels", "nodech", "nodeadd", "noderm", "lsdef", "chdef", "rmdef", "rpower",
            "nodeset", "updatenodestat", "mkvm", "rmvm", "lsvm", "makedhcp", "discoverip",
            "chhypervisor", "rmhypervisor"} <= set(NODERANGE_COMMANDS)
    assert not {"tabdump", "copycds", "mkpool", "nodemgr-tftpd"} & set(NODERANGE_COMMANDS)


@pytest.mark.parametrize("name", NODERANGE_COMMANDS)
def test_a_shell_expanded_range_gets_the_quoting_hint(name, env):
    """``rpower au-vm[1-2] stat`` after the shell: ``rpower au-vm1 au-vm2 stat``."""
    r = sh(name, "au-vm1", "au-vm2", "stat", env=env)
    assert r.returncode == 1 and "Traceback" not in r.stderr, (name, r.stderr)
    assert "quote it, e.g. 'node[1-2]'" in r.stderr.splitlines()[0], (name, r.stderr)


@pytest.mark.parametrize("argv, first", [
    (["rpower", "au-vm1", "au-vm2"], "Error: Unsupported power directive 'au-vm2' (the shell "
     "probably expanded an unquoted bracket range: quote it, e.g. 'node[1-2]')"),
    (["rpower", "au-vm1", "au-vm2", "stat"], "Error: the noderange arrived as several "
     "arguments (au-vm1 au-vm2 stat); the shell probably expanded an unquoted bracket range: "
     "quote it, e.g. 'node[1-2]'"),
    (["nodeset", "-V", "n01", "n02", "boot"], "Error: the noderange arrived as several "
     "arguments (n01 n02 boot); the shell probably expanded an unquoted bracket range: "
     "quote it, e.g. 'node[1-2]'"),
])
def test_glob_hint_wording(argv, first, env):
    r = sh(argv[0], *argv[1:], env=env)
    assert r.returncode == 1 and r.stderr.splitlines()[0] == first


def test_no_hint_for_words_that_are_not_a_range(env):
    r = sh("rpower", "vm1", "hv2", "stat", env=env)
    assert r.returncode == 1
    assert r.stderr.startswith("Error: unexpected argument: stat\nUsage: rpower ")
    assert "quote" not in r.stderr


def test_usage_error_wording(env):
    r = sh("nodeset", "n1", env=env)
    assert r.returncode == 1
    assert r.stderr.startswith("Error: the following arguments are required: "
                               "state[,state...]\nUsage: nodeset noderange ")
    assert r.stderr.rstrip().endswith("nodeset [-?|-h|--help]")
    r = sh("tabdump", "site", "nodelist", env=env)
    assert r.stderr.startswith("Error: unexpected argument: nodelist\nUsage: tabdump ")


def test_synopsis_is_built_from_the_options():
    p = common.parser("demo", "A demo.")
    p.add_argument("noderange")
    p.add_argument("-b", "--blame", action="store_true", help="x")
    p.add_argument("-n", "--name", metavar="NAME", help="y")
    p.add_argument("words", nargs="*")
    assert p.format_usage() == (
        "Usage: demo noderange [words ...] [-V|--verbose] [-b|--blame] [-n|--name NAME]\n"
        "       demo {-v|--version}\n"
        "       demo [-?|-h|--help]\n")
    help_text = p.format_help()
    assert help_text.startswith(p.format_usage() + "\nA demo.\n")
    assert "  -h, --help, -?" in help_text and "  -n, --name NAME" in help_text


# -- -V / --verbose ----------------------------------------------------------------------------
def test_verbose_lines_go_to_stderr_only_with_V(capsys):
    @common.main_wrapper
    def demo(argv):
        a = common.parser("demo", "d").parse_args(argv)
        common.verbose("calling the driver")
        logging.getLogger(common.VERBOSE_LOGGER).info("writing vm.host")
        return 0 if a.verbose == common.is_verbose() else 3

    assert demo([]) == 0
    assert capsys.readouterr() == ("", "")
    assert demo(["-V"]) == 0
    assert capsys.readouterr() == ("", "calling the driver\nwriting vm.host\n")
    assert demo(["--verbose"]) == 0
    assert capsys.readouterr().err == "calling the driver\nwriting vm.host\n"
    assert demo([]) == 0  # the next command in the same process starts quiet again
    assert capsys.readouterr() == ("", "")


def test_verbose_switch_on_every_command(capsys):
    for name in sorted(COMMANDS):
        assert "-V, --verbose" in _help(name, capsys), name


# -- --json ------------------------------------------------------------------------------------
def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_tabdump_json(cli_env, capsys):
    assert tablecmds.chtab(["key=master", "site.value=10.0.0.1"]) == 0
    assert tablecmds.tabdump(["--json", "-w", "key==master", "site"]) == 0
    assert _lines(capsys.readouterr().out) == [
        {"table": "site", "row": {"key": "master", "value": "10.0.0.1", "comments": None,
                                  "disable": None}}]
    assert tablecmds.tabdump(["--json"]) == 0
    tables = _lines(capsys.readouterr().out)
    assert tables[0]["objtype"] == "table" and "description" in tables[0]["attributes"]
    assert tablecmds.tabdump(["-d", "--json", "site"]) == 0
    assert _lines(capsys.readouterr().out)[0] == {
        "name": "key", "objtype": "column",
        "attributes": {"table": "site", "description": "Name of the setting."}}


def test_lspool_json(cli_env, capsys):
    assert poolcmds.mkpool(["cloud", "--subnet", "10.1.0.0/24"]) == 0
    assert poolcmds.poolmachine(["cloud", "m1", "--ip", "10.1.0.5"]) == 0
    capsys.readouterr()
    assert poolcmds.lspool(["--json"]) == 0
    assert _lines(capsys.readouterr().out) == [
        {"name": "cloud", "objtype": "pool",
         "attributes": {"virttype": "kvm", "subnet": "10.1.0.0/24", "machines": ["m1"]}}]


def test_updatenodestat_json(cli_env, capsys):
    from nodemgr.cli.nodecmds import nodeadd

    assert nodeadd(["n[1-2]", "groups=all"]) == 0
    assert netbootcmds.updatenodestat(["n[1-2]", "booted", "--json"]) == 0
    rows = _lines(capsys.readouterr().out)
    assert [(r["node"], r["ok"], r["status"]) for r in rows] == [
        ("n1", True, "booted"), ("n2", True, "booted")]
    assert re.fullmatch(r"\d\d-\d\d-\d{4} \d\d:\d\d:\d\d", rows[0]["statustime"])
    assert netbootcmds.updatenodestat(["n1", "installed"]) == 0
    assert capsys.readouterr().out == ""  # silent without --json, as before


def test_lsve_json_objects():
    lines = ["data_center: [dc1]", "  description: main", "  storage_type: nfs",
             "  storagedomain: data1 (active)", "  storagedomain: iso1 (active)",
             "cluster: [cl1]", "  cpu_type: Intel Westmere Family", "  data_center: dc1"]
    assert rhevcmds.ve_objects(lines) == [
        {"name": "dc1", "objtype": "data_center", "attributes": {
            "description": "main", "storage_type": "nfs",
            "storagedomain": ["data1 (active)", "iso1 (active)"]}},
        {"name": "cl1", "objtype": "cluster", "attributes": {
            "cpu_type": "Intel Westmere Family", "data_center": "dc1"}}]


def test_chtab_names_every_unknown_table(cli_env, capsys):
    assert tablecmds.chtab(["node=n1", "nosuch.a=1", "vm.host=h", "other.b=2"]) == 1
    assert capsys.readouterr().err == 'Error: Unknown tables "nosuch", "other"\n'
    assert tablecmds.chtab(["-d", "node=n1", "nosuch", "other"]) == 1
    assert capsys.readouterr().err == 'Error: Unknown tables "nosuch", "other"\n'
