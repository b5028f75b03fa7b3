"""tabdump CSV: exact output, parsing, error texts with line numbers, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodemgr.errors import TableError
from nodemgr.tables.csvfmt import dump, parse, parse_lines, quote

COLS = ["node", "groups", "comments", "disable"]


def test_dump_exact_bytes():
    rows = [
        {"node": "n1", "groups": "all,compute", "comments": None, "disable": None},
        {"node": "n2", "groups": "", "comments": 'say "hi"', "disable": "1"},
        {"node": "n3", "groups": "a\nb", "comments": "x,y"},          # missing key = None
    ]
    assert dump(COLS, rows) == (
        "#node,groups,comments,disable\n"
        '"n1","all,compute",,\n'
        '"n2","","say ""hi""","1"\n'
        '"n3","a\nb","x,y",\n'
    )


def test_dump_empty_table_is_header_only():
    assert dump(["key", "value", "comments", "disable"], []) == "#key,value,comments,disable\n"


def test_quote():
    assert quote(None) == ""
    assert quote("") == '""'
    assert quote('a"b') == '"a""b"'


def test_parse_none_versus_empty_string():
    cols, rows = parse('#node,groups,comments,disable\n"n1","",,\n')
    assert cols == COLS
    assert rows == [{"node": "n1", "groups": "", "comments": None, "disable": None}]


def test_parse_quotes_commas_newlines():
    text = ('#node,groups,comments,disable\n'
            '"n1","a,b","line1\nline2\n\nline4 ""q""",\n'
            '"n2",,"",\n')
    _, rows = parse_lines(text)
    assert rows == [
        (2, {"node": "n1", "groups": "a,b", "comments": 'line1\nline2\n\nline4 "q"',
             "disable": None}),
        (6, {"node": "n2", "groups": None, "comments": "", "disable": None}),
    ]


def test_parse_unquoted_fields_and_short_rows():
    _, rows = parse("#node,groups,comments,disable\nn1,all,plain text\nn2\n")
    assert rows == [
        {"node": "n1", "groups": "all", "comments": "plain text", "disable": None},
        {"node": "n2", "groups": None, "comments": None, "disable": None},
    ]


def test_parse_header_quotes_and_blanks_stripped():
    cols, rows = parse('#"node","groups","comments","disable"  \n"n1",,,\n')
    assert cols == COLS
    assert rows[0]["node"] == "n1"


def test_parse_skips_blank_lines_and_trailing_whitespace():
    text = '#node,groups,comments,disable\n\n"n1",,,   \n   \n\n"n2",,,\n\n'
    _, rows = parse_lines(text)
    assert [(line, r["node"]) for line, r in rows] == [(3, "n1"), (6, "n2")]


def test_parse_without_final_newline():
    _, rows = parse('#node,groups,comments,disable\n"n1","g",,')
    assert rows == [{"node": "n1", "groups": "g", "comments": None, "disable": None}]


def test_parse_crlf_lines():
    _, rows = parse('#node,groups,comments,disable\r\n"n1","g",,\r\n"n2",,,\r\n')
    assert [r["node"] for r in rows] == ["n1", "n2"]
    assert rows[0]["groups"] == "g"


def test_one_trailing_comma_is_tolerated():
    _, rows = parse('#node,groups\n"n1","g",\nn2,h,\n')
    assert rows == [{"node": "n1", "groups": "g"}, {"node": "n2", "groups": "h"}]


def test_header_only():
    assert parse("#node,groups\n") == (["node", "groups"], [])
    assert parse("#node,groups") == (["node", "groups"], [])


@pytest.mark.parametrize("text, message", [
    ("", "Data missing header line starting with #"),
    ("node,groups\n", "Data missing header line starting with #"),
    ("#node,,groups\n", "Malformed header line: empty column name"),
    ('#node,groups\n"n1","unterminated\nn2,x\n', 'CSV unmatched " in record on line 2'),
    ('#node,groups\n"n1",\n\n"n2","a\nb\n', 'CSV unmatched " in record on line 4'),
    ('#node,groups\n"n1",""\n"n2","x","y"\n', "Too many fields on line 3"),
    ('#node,groups\n"n1","x",""\n', "Too many fields on line 2"),
    ('#node,groups\n"n1","x",,\n', "Too many fields on line 2"),
    ('#node,groups\n"n1","a\nb","c"\n', "Too many fields on line 2"),
    ('#node,groups\n"n1",a"b\n', 'CSV missing opening " for record with " characters on line 2'),
    ('#node,groups\n"n1","a"b"\n', 'CSV unescaped " in record on line 2'),
    ('#node,groups\n"n1","a\nb"c,\n', 'CSV unescaped " in record on line 3'),
])
def test_errors_name_the_line(text, message):
    with pytest.raises(TableError) as err:
        parse(text)
    assert str(err.value) == message


values = st.one_of(st.none(), st.text(alphabet=st.characters(
    blacklist_categories=("Cs",), blacklist_characters="\r\x00"), max_size=20))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.fixed_dictionaries({c: values for c in COLS}), max_size=6))
def test_round_trip(rows):
    # A row whose every field is undefined dumps as a line of commas, which parses back the
    # same; whitespace-only text stays quoted, so nothing is lost.
    text = dump(COLS, rows)
    cols, back = parse(text)
    assert cols == COLS
    assert back == rows
    assert dump(cols, back) == text
