"""Man pages: help2man's pages of every registry command, the table pages from the schema and
the hand-written noderange(3), each rendered by man-db with warnings on (the CI check)."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys

import pytest

from nodemgr import manpages
from nodemgr.cli.registry import COMMANDS
from nodemgr.completion import parser_of
from nodemgr.tables.schema import TABLES

REQUIRE_ALL = os.environ.get("NODEMGR_REQUIRE_ALL") == "1"


def _need(program: str) -> None:
    if shutil.which(program) is None:
        if REQUIRE_ALL:
            pytest.fail(f"{program} is not installed (scripts/setup-host installs it)")
        pytest.skip(f"{program} is not installed")


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """Every page, written by ``python -m nodemgr.manpages --out DIR`` as a packager runs it."""
    _need("help2man")
    out = tmp_path_factory.mktemp("man")
    r = subprocess.run([sys.executable, "-m", "nodemgr.manpages", "--out", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return out


def render(page, width: int = 80, plain: bool = False) -> tuple[str, str, int]:
    """``man --warnings -l -Tutf8`` of *page*: its text, its warnings, its exit code;
    *plain*: neither hyphenated nor justified, to compare words."""
    _need("man")
    env = {**os.environ, "MANWIDTH": str(width), "MAN_KEEP_FORMATTING": "0", "LC_ALL": "C.UTF-8"}
    r = subprocess.run(["man", "--warnings", "-l", "-Tutf8", *(["--nh", "--nj"] if plain else []),
                        str(page)], capture_output=True, text=True, timeout=60, env=env)
    text = re.sub(r".\x08", "", r.stdout)     # drop overstriking (bold, underline)
    return text, r.stderr, r.returncode


def test_every_command_table_and_noderange_has_a_page(pages):
    assert {p.name for p in (pages / "man1").iterdir()} == {f"{c}.1" for c in COMMANDS}
    assert {p.name for p in (pages / "man5").iterdir()} == (
        {f"{t}.{manpages.TABLE_SECTION}" for t in TABLES} | {f"{manpages.TABLES_PAGE}.5"})
    assert {p.name for p in (pages / "man3").iterdir()} == {"noderange.3"}


def test_every_page_renders_without_a_warning(pages):
    bad = {}
    for page in sorted(pages.glob("man*/*")):
        text, warnings, code = render(page)
        if code != 0 or warnings or not text.strip():
            bad[page.name] = warnings or f"exit {code}"
    assert not bad, bad


def test_the_warning_check_is_real(tmp_path):
    page = tmp_path / "broken.1"
    page.write_text('.TH BROKEN 1\n.SH NAME\nbroken \\- x\n.TP\n\\fBa-very-long-unbreakable-'
                    + "x" * 120 + "\\fR\n.\n.nosuchmacro\n\\*(zz\n")
    _text, warnings, _code = render(page)
    assert warnings


def test_a_command_page_is_its_help(pages):
    """Every option of the parser (what --help lists) is in the page; NAME is the first line
    of the parser's description; noderange commands point at noderange(3)."""
    for name in COMMANDS:
        text, _, _ = render(pages / "man1" / f"{name}.1", width=200, plain=True)
        text = re.sub(r"-\n\s*", "-", text)     # groff breaks lines after a hyphen
        p = parser_of(name)
        assert p is not None, name
        for action in p._actions:
            if action.help == argparse.SUPPRESS:    # not in --help either
                continue
            for option in action.option_strings:
                assert option in text, (name, option)
        first = p.description.strip().splitlines()[0].rstrip(".")
        assert f"{name} - {first}" in " ".join(text.split()), name
        assert "NODEMGR_DB" in text and f"{manpages.TABLES_PAGE}(5)" in text, name
    assert "noderange(3)" in render(pages / "man1" / "rpower.1")[0]
    assert "noderange(3)" not in render(pages / "man1" / "tabdump.1")[0]


def test_the_help_text_is_in_the_page(pages):
    """Every line of rpower's --help after its Usage block is in the page, word for word."""
    out = subprocess.run([sys.executable, "-c", "import sys; from nodemgr.cli.registry import "
                          "run; sys.exit(run('rpower', ['--help']))"], capture_output=True,
                         text=True, timeout=60).stdout
    text = " ".join(render(pages / "man1" / "rpower.1", width=200, plain=True)[0].split())
    body = out.split("\n\n", 1)[1]
    lines = [" ".join(line.split()) for line in body.splitlines() if len(line.split()) > 3]
    assert len(lines) > 5
    missing = [line for line in lines if line not in text]
    assert not missing, missing


def test_table_pages_carry_the_schema_descriptions(pages):
    text = " ".join(render(pages / "man5" / f"nodehm.{manpages.TABLE_SECTION}", 200, True)[0].split())
    t = TABLES["nodehm"]
    assert t.description in text
    for column in t.columns:
        assert f"{column} {t.descriptions[column]}" in text, column
    overview = " ".join(render(pages / "man5" / f"{manpages.TABLES_PAGE}.5", 300, True)[0].split())
    for name, t in TABLES.items():
        assert f"{name} {t.description}" in overview, name
        assert "Columns: " + ", ".join(t.columns) + "." in overview, name


def test_table_pages_do_not_shadow_the_systems_pages(pages):
    """hosts, networks, passwd: ours are section 5nodemgr, the system's hosts(5) stays."""
    for name in ("hosts", "networks", "passwd"):
        assert (pages / "man5" / f"{name}.5nodemgr").is_file()
        assert not (pages / "man5" / f"{name}.5").exists()
    _need("man")
    env = {**os.environ, "MANPATH": f"{pages}:"}
    found = subprocess.run(["man", "-w", "nodehm"], capture_output=True, text=True, env=env,
                           timeout=60).stdout.strip()
    assert found == str(pages / "man5" / "nodehm.5nodemgr")
    ours = subprocess.run(["man", "-w", "5nodemgr", "hosts"], capture_output=True, text=True,
                          env=env, timeout=60).stdout.strip()
    assert ours == str(pages / "man5" / "hosts.5nodemgr")


def test_noderange_page_examples_expand_as_described(sqlite_store):
    """The EXAMPLES of noderange(3) on a cluster that has the names they mention."""
    from nodemgr.noderange import expand
    from nodemgr.tables.resolve import Resolver

    text = (manpages.HANDWRITTEN / "man3" / "noderange.3").read_text()
    examples = re.findall(r"^\.TP\n\.B (.+)\n", text.split(".SH EXAMPLES")[1].split(".SH")[0],
                          re.M)
    racks = {1: ",rack1", 2: ",rack1", 3: ",rack2", 4: ",rack3"}
    rows = [{"node": f"node{i}", "groups": "all,compute" + racks.get(i, "")}
            for i in range(1, 31)]
    rows += [{"node": f"vm0{i}", "groups": "all,storage" if i == 4 else "all"}
             for i in range(1, 5)]
    rows += [{"node": f"f{f}n{n}", "groups": "frames"} for f in (1, 2, 3) for n in range(1, 21)]
    sqlite_store.upsert_many("nodelist", rows)
    sqlite_store.upsert_many("nodehm", [{"node": f"vm0{i}", "mgt": "kvm"} for i in (1, 2, 3)])
    r = Resolver(sqlite_store)
    got = {e.replace("\\-", "-"): expand(e.replace("\\-", "-"), r) for e in examples}
    nodes = {f"node{i}" for i in range(1, 31)}
    assert got == {
        "all,-node5-node10": sorted(nodes - {f"node{i}" for i in range(5, 11)}
                                    | {"vm01", "vm02", "vm03", "vm04"}),
        "node1-node10,-node3,-node5": sorted(f"node{i}" for i in (1, 2, 4, 6, 7, 8, 9, 10)),
        "all,-rack1-rack3,-storage": sorted(nodes - {"node1", "node2", "node3", "node4"}
                                            | {"vm01", "vm02", "vm03"}),
        "/node[23].*": sorted(n for n in nodes if n.startswith(("node2", "node3"))),
        "compute@rack1": ["node1", "node2"],
        "all@nodehm.mgt==kvm,-vm02": ["vm01", "vm03"],
        "f[1-3]n[1-20]": sorted(f"f{f}n{n}" for f in (1, 2, 3) for n in range(1, 21)),
    }


def test_unknown_command_is_one_line(tmp_path, capsys):
    assert manpages.main(["--out", str(tmp_path), "nosuch"]) == 1
    assert capsys.readouterr().err == "Error: not a nodemgr command: nosuch\n"
    assert not list(tmp_path.iterdir())


def test_missing_help2man_is_one_line(tmp_path, capsys):
    assert manpages.main(["--out", str(tmp_path), "--help2man", "/nonexistent/help2man",
                          "--sections", "1", "rpower"]) == 1
    assert capsys.readouterr().err == \
        "Error: /nonexistent/help2man not found: install help2man\n"
