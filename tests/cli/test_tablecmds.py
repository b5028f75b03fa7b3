"""tabdump, tabrestore and chtab run in-process against a fresh SQLite file (cli_env)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nodemgr.cli.tablecmds import chtab, tabdump, tabrestore
from nodemgr.tables.schema import TABLES

DATA = Path(__file__).parent.parent / "tables" / "data"
NODELIST_HDR = ("#node,groups,status,statustime,appstatus,appstatustime,primarysn,hidden,"
                "updatestatus,updatestatustime,zonename,comments,disable")


def run(capsys, func, *argv):
    rc = func(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


# -- tabdump ------------------------------------------------------------------------------
def test_tabdump_lists_tables_sorted(cli_env, capsys):
    rc, out, err = run(capsys, tabdump)
    assert (rc, err) == (0, "")
    assert out.splitlines() == sorted(TABLES)


def test_tabdump_table_with_default_rows(cli_env, capsys):
    rc, out, _ = run(capsys, tabdump, "policy")
    assert rc == 0
    assert out.splitlines()[0] == "#priority,name,host,commands,noderange,parameters,time," \
                                  "rule,comments,disable"
    assert '"1","root",,,,,,"allow",,' in out.splitlines()


def test_tabdump_empty_table_prints_header(cli_env, capsys):
    rc, out, _ = run(capsys, tabdump, "nodelist")
    assert (rc, out) == (0, NODELIST_HDR + "\n")


def test_tabdump_descriptions(cli_env, capsys):
    rc, out, _ = run(capsys, tabdump, "-d", "chain")
    assert rc == 0
    blocks = out.rstrip("\n").split("\n\n")
    assert blocks[0] == "node:\t\tThe node name or group name."
    assert blocks[1].startswith("currstate:\t")          # 9 characters: one tab
    assert len(blocks) == len(TABLES["chain"].columns)
    rc, out, _ = run(capsys, tabdump, "-d")
    assert rc == 0
    assert out.split("\n\n")[0].startswith("auditlog:\t")
    assert "\nvm:\t\tVirtualization parameters.\n" in out


def test_tabdump_where_and_file(cli_env, capsys, tmp_path):
    for node, mgt in (("n1", "kvm"), ("n2", "ipmi"), ("r1n3", "kvm")):
        assert chtab([f"node={node}", f"nodehm.mgt={mgt}"]) == 0
    assert chtab(["node=n4", "nodehm.power=x"]) == 0

    def nodes(*args):
        rc, out, err = run(capsys, tabdump, *args, "nodehm")
        assert (rc, err) == (0, "")
        return [line.split(",")[0].strip('"') for line in out.splitlines()[1:]]

    assert nodes("-w", "mgt==kvm") == ["n1", "r1n3"]
    assert nodes("-w", "mgt!=kvm") == ["n2"]             # undefined never matches
    assert nodes("-w", "node=~n%") == ["n1", "n2", "n4"]
    assert nodes("-w", "node!~n%") == ["r1n3"]
    assert nodes("-w", "node=~_1") == ["n1"]              # _ is one character
    assert nodes("-w", "node=~_1n%") == ["r1n3"]
    assert nodes("-w", "mgt==kvm", "-w", "node=~n%") == ["n1"]
    assert nodes("-w", "node>n2") == ["r1n3", "n4"]
    assert nodes("-w", "node<=n2") == ["n1", "n2"]
    target = tmp_path / "out.csv"
    rc, out, _ = run(capsys, tabdump, "-f", str(target), "-w", "mgt==ipmi", "nodehm")
    assert (rc, out) == (0, "")
    assert target.read_text().splitlines()[1].startswith('"n2",,"ipmi"')


def test_tabdump_last_n_auditlog(cli_env, capsys):
    for i in range(5):
        assert chtab([f"recid={i}", f"auditlog.command=cmd{i}"]) == 0
    rc, out, _ = run(capsys, tabdump, "-n", "2", "auditlog")
    assert rc == 0
    assert [line.split(",")[0] for line in out.splitlines()[1:]] == ['"3"', '"4"']
    rc, _, err = run(capsys, tabdump, "-n", "2", "site")
    assert rc == 1 and "auditlog" in err


@pytest.mark.parametrize("args, message", [
    (["nope"], 'Error: Unknown table "nope"'),
    (["-w", "bogus==1", "site"], 'Error: No column "bogus" in table "site"'),
    (["-w", "garbage", "site"], "Error: bad selection 'garbage'"),
    (["-w", "key==x"], "Error: -f, -w and -n need a TABLE"),
    (["-f", "/nonexistent-dir/x.csv", "site"], "Error: cannot write /nonexistent-dir/x.csv"),
    (["site", "extra"], "Error: unexpected argument: extra\nUsage: tabdump "),
])
def test_tabdump_errors(cli_env, capsys, args, message):
    rc, out, err = run(capsys, tabdump, *args)
    assert rc == 1
    assert out == ""
    assert err.startswith(message)


def test_help_texts_are_man_page_grade(capsys):
    for func in (tabdump, tabrestore, chtab):
        with pytest.raises(SystemExit) as exc:
            func(["--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith(f"Usage: {func.__name__} "), func.__name__
        for section in ("examples:", "exit status:", "options:"):
            assert section in out, (func.__name__, section)


# -- tabrestore ---------------------------------------------------------------------------
def test_tabrestore_real_xcat_dumps_byte_identical(cli_env, capsys, tmp_path):
    for fname, table in (("xcat210_site.csv", "site"), ("xcat210_nodelist.csv", "nodelist"),
                         ("xcatdoc_policy.csv", "policy"), ("xcatdoc_vm.csv", "vm")):
        path = tmp_path / f"{table}.csv"
        shutil.copy(DATA / fname, path)
        rc, out, err = run(capsys, tabrestore, str(path))
        assert (rc, out, err) == (0, "", "")
        rc, out, _ = run(capsys, tabdump, table)
        assert out.encode() == (DATA / fname).read_bytes()
        dumped = tmp_path / "again.csv"
        assert tabdump(["-f", str(dumped), table]) == 0
        assert dumped.read_bytes() == (DATA / fname).read_bytes()


def test_tabrestore_add_rows(cli_env, capsys, tmp_path):
    path = tmp_path / "nodelist.csv"
    path.write_text(NODELIST_HDR + '\n"n1","all",,,,,,,,,,,\n')
    assert tabrestore([str(path)]) == 0
    path.write_text('#node,groups\n"n2","all"\n')
    assert tabrestore(["-a", str(path)]) == 0
    rc, out, _ = run(capsys, tabdump, "nodelist")
    assert [line.split(",")[0] for line in out.splitlines()[1:]] == ['"n1"', '"n2"']


@pytest.mark.parametrize("name, text, message", [
    ("nodelist.csv", '#node,bogus\n"n9","x"\n', 'Error: No column "bogus" in table "nodelist"'),
    ("nodelist.csv", '#node,groups\n"n9","x\n', 'Error: CSV unmatched " in record on line 2'),
    ("nodelist.csv", '#node,groups\n"n9","x"\n"n9","y"\n', "line 3: database error"),
    ("nodelist.csv", '#node,groups\n"n9","x",1,2\n', "Error: Too many fields on line 2"),
    ("nosuchtable.csv", '#node\n"n9"\n', 'Error: Unknown table "nosuchtable"'),
    ("missing/nodelist.csv", None, "Error: cannot read"),
])
def test_tabrestore_failure_leaves_table_unchanged(cli_env, capsys, tmp_path, name, text,
                                                   message):
    good = tmp_path / "nodelist.csv"
    good.write_text(NODELIST_HDR + '\n"keep","all",,,,,,,,,,,\n')
    assert tabrestore([str(good)]) == 0
    before = run(capsys, tabdump, "nodelist")[1]
    bad = tmp_path / "bad" / name
    if text is not None:
        bad.parent.mkdir(parents=True, exist_ok=True)
        bad.write_text(text)
    rc, out, err = run(capsys, tabrestore, str(bad))
    assert rc == 1
    assert err.startswith(message) or message in err
    assert run(capsys, tabdump, "nodelist")[1] == before


# -- chtab --------------------------------------------------------------------------------
def test_chtab_add_change_append_delete(cli_env, capsys):
    assert chtab(["node=n1", "nodelist.groups=compute,all", "nodehm.mgt=kvm"]) == 0
    assert chtab(["node=n1", "nodelist.groups+=vms,all", "nodelist.groups+=vms"]) == 0
    assert chtab(["node=n1", "nodehm.mgt=ipmi", "nodehm.power=ipmi"]) == 0
    assert chtab(["node=n2", "nodelist.groups+=all"]) == 0
    out = run(capsys, tabdump, "nodelist")[1].splitlines()
    assert out[1:] == ['"n1","compute,all,vms",,,,,,,,,,,', '"n2","all",,,,,,,,,,,']
    assert run(capsys, tabdump, "nodehm")[1].splitlines()[1] == '"n1","ipmi","ipmi"' + "," * 13
    assert chtab(["node=n1", "nodehm.power="]) == 0      # empty value clears the column
    assert run(capsys, tabdump, "nodehm")[1].splitlines()[1] == '"n1",,"ipmi"' + "," * 13
    assert chtab(["-d", "node=n1", "nodelist", "nodehm"]) == 0
    assert run(capsys, tabdump, "nodelist")[1].splitlines()[1:] == ['"n2","all",,,,,,,,,,,']
    assert run(capsys, tabdump, "nodehm")[1].splitlines()[1:] == []


def test_chtab_site_and_partial_key(cli_env, capsys):
    assert chtab(["key=dhcpsetup", "site.value=y"]) == 0
    assert chtab(["key=newkey", "site.value=v", "site.comments=c"]) == 0
    assert chtab(["key=system", "passwd.username=root", "passwd.password=cluster"]) == 0
    assert chtab(["key=system", "passwd.password=changed"]) == 0  # key is not the full pkey
    site = run(capsys, tabdump, "site")[1]
    assert '"dhcpsetup","y",,' in site.splitlines()
    assert site.splitlines()[-1] == '"newkey","v","c",'
    assert run(capsys, tabdump, "passwd")[1].splitlines()[1:] == [
        '"system","root","changed",,,,']


def test_chtab_updates_disabled_rows_too(cli_env, capsys):
    assert chtab(["node=n1", "nodelist.groups=all", "nodelist.disable=1"]) == 0
    assert chtab(["node=n1", "nodelist.groups+=x"]) == 0
    assert run(capsys, tabdump, "nodelist")[1].splitlines()[1:] == [
        '"n1","all,x",,,,,,,,,,,"1"']


@pytest.mark.parametrize("args, message", [
    (["node=n1", "nodehm.mgt=kvm", "bogus.col=1"], 'Error: Unknown table "bogus"'),
    (["node=n1", "nodehm.mgt=kvm", "nodehm.bogus=1"],
     'Error: No column "bogus" in table "nodehm"'),
    (["key=x", "nodehm.mgt=kvm", "nodelist.groups=all"], 'Error: No column "key" in table'),
    (["node=n1", "nodehm.mgt=kvm", "justtext"], "Error: bad assignment 'justtext'"),
    (["node", "nodehm.mgt=kvm"], "Error: bad key 'node'"),
    (["key=system", "passwd.password=x"], "Error: database error"),  # username NOT NULL
    (["-d", "node=n1", "nodehm.mgt=x"], "Error: with -d give table names"),
    (["-d", "node=n1", "nosuch"], 'Error: Unknown table "nosuch"'),
    (["-d", "key=n1", "nodehm"], 'Error: No column "key" in table "nodehm"'),
    (["node=n1"], "Error: the following arguments are required"),
])
def test_chtab_errors_write_nothing(cli_env, capsys, args, message):
    assert chtab(["node=n1", "nodehm.mgt=before"]) == 0
    before = {t: run(capsys, tabdump, t)[1] for t in ("nodehm", "nodelist", "passwd")}
    rc, out, err = run(capsys, chtab, *args)
    assert rc == 1
    assert err.startswith(message), err
    assert "\n" not in err.rstrip("\n") or message.endswith("required")
    assert {t: run(capsys, tabdump, t)[1] for t in before} == before


def test_chtab_password_dash_reads_stdin_never_argv(cli_env, monkeypatch, capsys):
    """Issue 12 item 7: `passwd.password=-` takes the secret from standard input."""
    import io

    from nodemgr.cli.tablecmds import chtab as _chtab
    from nodemgr.tables.store import Store

    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret pass\n"))
    assert _chtab(["key=system", "passwd.username=root", "passwd.password=-"]) == 0
    assert Store(cli_env).get("passwd", {"key": "system", "username": "root"})[
        "password"] == "s3cret pass"
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert _chtab(["key=ipmi", "passwd.username=admin", "passwd.password=-"]) == 1
    assert "reads the value from standard input, which is empty" in capsys.readouterr().err
    assert Store(cli_env).get("passwd", {"key": "ipmi", "username": "admin"}) is None
