"""Shell completion: the real bash (and zsh) functions against a scratch SQLite database with
nodes and groups, the back end's rules, and that a command's start never loads any of it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nodemgr import completion
from nodemgr.cli.registry import COMMANDS
from nodemgr.tables.schema import TABLES

REQUIRE_ALL = os.environ.get("NODEMGR_REQUIRE_ALL") == "1"
BIN = os.path.dirname(sys.executable)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cluster(cli_env):
    """vm01-vm03 (group compute), sw1-rack2 (group switches), a dynamic group kvmguests,
    a server pool; made with the commands themselves."""
    from nodemgr.cli.nodecmds import nodeadd
    from nodemgr.tables.store import open_default

    assert nodeadd(["vm[01-03]", "groups=all,compute", "nodehm.mgt=kvm"]) == 0
    assert nodeadd(["sw1-rack2", "groups=all,switches"]) == 0
    store = open_default()
    store.upsert("nodegroup", {"groupname": "kvmguests"},
                 {"grouptype": "dynamic", "wherevals": "mgt==kvm"})
    store.upsert("serverpool", {"name": "pool1"}, {"virttype": "kvm"})
    return cli_env


def _env(db: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "NODEMGR_DB": db,
            "PYTHONPATH": str(ROOT)}


def bash(line: str, db: str, script: str | None = None) -> list[str]:
    """COMPREPLY of the installed bash function for *line* (cursor at its end)."""
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    src = script or completion.script("bash")
    prog = f"""{src}
COMP_LINE=$1; COMP_POINT=${{#COMP_LINE}}
read -r -a COMP_WORDS <<<"$COMP_LINE"
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
[[ $COMP_LINE == *' ' ]] && COMP_WORDS+=("") && COMP_CWORD=$(( COMP_CWORD + 1 ))
_nodemgr_complete
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", prog, "bash", line],
                       capture_output=True, text=True, timeout=60, env=_env(db))
    assert r.returncode == 0, r.stderr
    return [w for w in r.stdout.splitlines() if w]


# -- bash, the real function -----------------------------------------------------------------

@pytest.mark.parametrize("line, expected", [
    ("rpower vm0", ["vm01", "vm02", "vm03"]),
    ("rpower com", ["compute"]),
    ("rpower kvm", ["kvmguests"]),                          # a dynamic group
    ("rpower vm01,v", ["vm01,vm01", "vm01,vm02", "vm01,vm03"]),   # after a comma
    ("rpower all,-sw", ["all,-sw1-rack2", "all,-switches"]),       # an exclusion
    ("rpower vm01-vm0", ["vm01-vm01", "vm01-vm02", "vm01-vm03"]),  # a range's right end
    ("rpower sw1-r", ["sw1-rack2"]),                        # a name that holds a -
    ("rpower all@co", ["compute"]),                         # bash's word starts after @
    ("rpower vm01 st", ["stat"]),                           # the action words
    ("rpower vm01 s", ["softoff", "stat", "suspend"]),
    ("rpower vm01 stat ", []),                              # nothing after the last one
    ("tabdump nodeh", ["nodehm"]),                          # table names
    ("nodels vm01 nodehm.m", ["nodehm.mgt"]),               # columns
    ("nodels vm01 nodeh", ["nodehm."]),
    ("nodels vm0", ["vm01", "vm02", "vm03"]),               # noderange first, then attributes
    ("chtab node=vm01 nodehm.co", ["nodehm.comments", "nodehm.cons", "nodehm.conserver",
                                   "nodehm.consoleenabled", "nodehm.consoleondemand"]),
    ("lspool po", ["pool1"]),
    ("nodemgr-config -n vm0", ["vm01", "vm02", "vm03"]),    # an option whose value is a range
])
def test_bash_completes(cluster, line, expected):
    assert sorted(bash(line, cluster)) == sorted(expected)


def test_bash_completes_every_option_of_every_command(cluster):
    """What each command's parser defines (what --help lists), for whatever the registry
    holds: one bash run per command."""
    for name in COMMANDS:
        p = completion.parser_of(name)
        assert p is not None, f"{name}: no parser reached"
        wanted = {o for a in p._actions for o in a.option_strings if o.startswith("--")}
        assert wanted <= set(bash(f"{name} --", cluster)), name


def test_bash_through_bash_completion_loader(cluster, tmp_path):
    """The installed layout (completion.write_scripts) loads on demand by command name, as
    bash-completion does for /usr/share/bash-completion/completions/<cmd>."""
    loader = Path("/usr/share/bash-completion/bash_completion")
    if not loader.is_file():
        if REQUIRE_ALL:
            pytest.fail("bash-completion is not installed (scripts/setup-host installs it)")
        pytest.skip("bash-completion is not installed")
    completion.write_scripts(tmp_path / "usr")
    user = tmp_path / "usr" / "share" / "bash-completion"
    prog = f"""
BASH_COMPLETION_USER_DIR={user}
. {loader}
complete -p rpower >/dev/null 2>&1 && echo early
__load_completion rpower && complete -p rpower
COMP_LINE='rpower vm01,v'; COMP_POINT=${{#COMP_LINE}}; COMP_WORDS=(rpower vm01,v); COMP_CWORD=1
_nodemgr_complete; printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", prog], capture_output=True,
                       text=True, timeout=60, env=_env(cluster))
    lines = r.stdout.splitlines()
    assert "early" not in lines
    assert "complete -F _nodemgr_complete rpower" in lines
    assert lines[-3:] == ["vm01,vm01", "vm01,vm02", "vm01,vm03"]
    for name in COMMANDS:
        assert os.readlink(user / "completions" / name) == "nodemgr"


def test_no_database_completes_no_names_and_creates_none(tmp_path):
    db = tmp_path / "absent.sqlite"
    assert bash("rpower vm", f"sqlite:///{db}") == []
    assert not db.exists()
    assert bash("rpower vm01 st", f"sqlite:///{db}") == ["stat"]


# -- the back end -----------------------------------------------------------------------------

def test_directives():
    assert completion.complete(["mknb", "-p", ""], 2).directive == "files"
    assert completion.complete(["copycds", ""], 1).directive == "files"
    assert completion.complete(["nodels", "vm01", "nodeh"], 2).directive == "nospace"
    assert completion.complete(["rpower", "vm01", "st"], 2).directive == ""


def test_command_names_and_tables():
    assert completion.complete(["rp"], 0).words == ["rpower"]
    assert completion.complete(["nosuch", ""], 1).words == []
    words = completion.complete(["tabdump", ""], 1).words
    assert words == list(TABLES)


def test_zsh_protocol_gives_the_shared_prefix(cluster):
    out = subprocess.run([sys.executable, "-m", "nodemgr.completion", "zsh", "2", "rpower",
                          "vm01,v"], capture_output=True, text=True, env=_env(cluster),
                         timeout=60).stdout.splitlines()
    assert out == ["nospace", "vm01,", "vm01", "vm02", "vm03"]


def test_bad_form_is_one_line(capsys):
    assert completion.main(["fish"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_zsh_completes_through_compsys(cluster, tmp_path):
    """The real zsh completion system (compinit, the #compdef line) in a zpty, TAB pressed."""
    if shutil.which("zsh") is None:
        if REQUIRE_ALL:
            pytest.fail("zsh is not installed (scripts/setup-host installs it)")
        pytest.skip("zsh is not installed")
    completion.write_scripts(tmp_path / "usr")
    fdir = tmp_path / "usr" / "share" / "zsh" / "vendor-completions"
    prog = f"""
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z 'PS1="> "; fpath=({fdir} $fpath); autoload -U compinit; compinit -u -D'
zpty -w z 'zstyle ":completion:*" list-prompt ""; zstyle ":completion:*" menu no'
zpty -w z 'setopt nolistambiguous; print -r -- START'
zpty -w -n z $'rpower vm0\\t\\t'
sleep 3
zpty -r -t z out '*' ; typeset -g all=$out
while zpty -r -t z out; do all+=$out; done
print -r -- $all
zpty -d z
"""
    r = subprocess.run(["zsh", "-f", "-c", prog], capture_output=True, text=True, timeout=120,
                       env={**_env(cluster), "HOME": str(tmp_path), "TERM": "dumb"})
    shown = r.stdout.split("START")[-1]
    for name in ("vm01", "vm02", "vm03"):
        assert name in shown, r.stdout[-2000:]
    assert "sw1-rack2" not in shown


# -- no cost to a command's start ---------------------------------------------------------

def test_a_command_start_loads_no_completion():
    code = ("import sys; from nodemgr.cli.registry import run\n"
            "try:\n    run('tabdump', ['-h'])\nexcept SystemExit:\n    pass\n"
            "bad = [m for m in sys.modules if m in ('nodemgr.completion', 'argcomplete')]\n"
            "sys.stderr.write(repr(bad))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, cwd=ROOT)
    assert r.stderr.strip().endswith("[]"), r.stderr
