"""The arithmetic evaluator used by ``|re|repl|`` table values: results and refusals."""

from __future__ import annotations

import pytest

from nodemgr.tables import safeeval
from nodemgr.tables.safeeval import EvalError, evaluate, format_number, numify


@pytest.mark.parametrize("expr, groups, expected", [
    ("($1+0)", ["05"], 5),
    ("($1)", ["05"], "05"),                 # Perl: a group stays a string until arithmetic
    ("$1*2+1", ["3"], 7),
    ("(${1}-1)", ["10"], 9),
    ("($1-1)/14+1", ["29"], 3),             # exact division stays an int
    ("7/2", [], 3.5),                       # Perl '/' is float division
    ("7//2", [], 3),
    ("-7 % 3", [], 2),                      # Perl/Python: sign of the right operand
    ("7.9 % 3", [], 1),                     # '%' truncates its operands
    ("2**10", [], 1024),
    ("-(3)", [], -3),
    ("+3", [], 3),
    ("$1+$2", ["1", "2"], 3),
    ("$3+1", ["1"], 1),                     # undefined group is 0 in arithmetic
    ("$1+1", ["abc"], 1),                   # non-numeric string numifies to 0
    ("$1+1", ["12abc"], 13),                # leading number
    ("sprintf('%02d', $1)", ["7"], "07"),
    ("sprintf('%02d', ($1-1)/14+1)", ["15"], "02"),
    ("sprintf('%02d', 7/2)", [], "03"),     # %d truncates
    ('sprintf("%s-%03d", "r", 5)', [], "r-005"),
    ('sprintf("n$1")', ["9"], "n9"),        # double quotes interpolate groups
    ("sprintf('%x%%', 255)", [], "ff%"),
    ("sprintf('%.2f', 1/3)", [], "0.33"),
    ("a2idx('c')", [], 3),
    ("a2idx($1)", ["B"], 2),
    ("a2zidx('a')", [], 0),
    ("a2zidx($1)", ["d"], 3),
    ("dim2idx(2, 10, 5, 8)", [], 21),       # rack 2 of 10, unit 5 of 8
    ("dim2idx($1, 4, $2, 16)", ["1", "3"], 19),
    ("skip(5, '3:2')", [], 7),
    ("skip(2, '3:2')", [], 2),
    ("skip(10, '3:2,8:1')", [], 13),
    ("ipadd(10,0,0,0,5)", [], "10.0.0.5"),
    ("ipadd(10,0,0,0,300)", [], "10.0.1.44"),
    ("ipadd(10,0,0,0,0,1,1)", [], "10.0.0.1"),
    ("ipadd(10,0,0,0,254,1,1)", [], "10.0.1.1"),
    ("ipadd(10,0,0,250,$1,1,1)", ["10"], "10.0.1.6"),
])
def test_evaluate(expr, groups, expected):
    result = evaluate(expr, groups)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize("expr", [
    "__import__('os')",
    "__import__('os').system('touch /tmp/pwned')",
    "open('/etc/passwd')",
    "eval('1')",
    "exec('1')",
    "().__class__.__bases__[0].__subclasses__()",
    "(1).__class__",
    "sprintf.__globals__",
    "a2idx.__code__",
    "[1, 2]",
    "{1: 2}",
    "(1, 2)",
    "lambda: 1",
    "x",
    "True",
    "None",
    "1 if 1 else 2",
    "1 < 2",
    "1 and 2",
    "~1",
    "1 << 3",
    "1 | 2",
    "sprintf(*['%d', 1])",
    "sprintf(fmt='%d')",
    "[c for c in 'ab']",
    "f'{1}'",
    "b'x'",
    "1j",
    "$x",
    "$$",
    "9**9**9",
    "10**100000",
    "2**4096 * 2**4096",
    "1/0",
    "1//0",
    "1%0",
    "sprintf('%9999d', 1)",
    "'unterminated",
    "(1",
    "a2idx('1')",
    "dim2idx(1)",
    "ipadd(300,0,0,0,1)",
])
def test_refused(expr):
    with pytest.raises(EvalError):
        evaluate(expr, ["1"])


def test_no_eval_or_exec_in_module():
    import inspect

    src = inspect.getsource(safeeval)
    code = "\n".join(line for line in src.splitlines() if not line.strip().startswith("#"))
    assert "eval(" not in code.replace("evaluate(", "").replace("_eval(", "")
    assert "exec(" not in code


def test_expression_length_limit():
    with pytest.raises(EvalError):
        evaluate("1+" * 2000 + "1")


def test_numify_and_format():
    assert numify(" 42xyz") == 42
    assert numify("3.50") == 3.5
    assert numify("1e3") == 1000
    assert numify("") == 0
    assert numify(None) == 0
    assert format_number(3.0) == "3"
    assert format_number(3.5) == "3.5"
    assert format_number(1 / 3) == "0.333333333333333"  # Perl prints %.15g
    assert format_number("07") == "07"


# -- compiled once (issue 14 item 1) ----------------------------------------------------------
def test_compile_expr_is_a_function_of_the_groups():
    fn = safeeval.compile_expr("sprintf('%02d', ($1-1)/14+1)")
    assert [fn([g]) for g in ("1", "15", "29")] == ["01", "02", "03"]
    assert safeeval.compile_expr("sprintf('%02d', ($1-1)/14+1)") is fn   # cached by text
    boom = safeeval.compile_expr("$1/0")                 # compiles; fails when evaluated
    with pytest.raises(EvalError, match="division by zero"):
        boom(["1"])
    with pytest.raises(EvalError, match="not allowed"):
        safeeval.compile_expr("open('/etc/passwd')")


@pytest.mark.parametrize("expr, groups, expected", [
    ("2*3+$1", ["4"], 10),             # folded constants, then a group
    ("-(-$1)", ["7"], 7),
    ("$1 - -1", ["1"], 2),
    ("$0+1", ["9"], 1),                # $0 is no group: 0
    ("($2)", ["1"], ""),
    ("$1*1", [None], 0),
    ("$1+0", ["\u00b2"], 0),           # a Unicode digit is not a number to Perl
    ("$1+0", [" 12"], 12),
    ("$1+0", ["1" * 30], 111111111111111111111111111111),
    ("7/2*2", [], 7),
])
def test_compiled_semantics(expr, groups, expected):
    assert evaluate(expr, groups) == expected


def test_nesting_bound_is_fixed():
    evaluate("-" * 90 + "1")
    with pytest.raises(EvalError, match="nested too deeply"):
        evaluate("-" * 150 + "1")
