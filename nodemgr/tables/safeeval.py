"""Safe evaluation of the arithmetic in xCAT ``|pattern|replacement|`` table values.

xCAT evaluates every ``( ... )`` group of a ``|re|repl|`` replacement with Perl's ``Safe``
compartment, ``$1..$n`` bound to the regex groups. nodemgr never calls ``eval``/``exec``:
the expression is parsed with :mod:`ast`, checked and turned into nested closures (once per
distinct expression text, :func:`compile_expr`; evaluating is then calling them with the
groups), accepting only

* int/float literals and string literals (formats for ``sprintf``, letters for ``a2idx``);
* ``$1..$n`` / ``${n}`` (rewritten to internal names before parsing);
* ``+ - * / // % **``, unary ``+``/``-`` and parentheses;
* calls to the helpers ``a2idx a2zidx dim2idx skip ipadd sprintf`` (positional arguments).

Anything else (attribute access, names, subscripts, comprehensions, lambdas, keyword
arguments, ``__import__`` ...) raises :class:`EvalError`.

Perl scalar semantics are mimicked where they show: a bound group is a *string* (``($1)``
on ``node01`` gives ``01``) that becomes a number only under arithmetic (Perl numification:
leading number or 0); ``/`` is Perl's float division, kept an ``int`` when exact; ``%``
truncates both operands to integers; a float result prints like Perl (``%.15g``).

Helpers (nodemgr's reading of xCAT's; xCAT's sources document them only by example):

``a2idx(c)``   letter to 1-based index (``a``/``A`` -> 1).
``a2zidx(c)``  letter to 0-based index (``a`` -> 0).
``dim2idx(v1, n1, v2, n2, ...)``  row-major index of a point in a grid: for each value
               ``v`` with its dimension size ``n``: ``idx = idx * n + v``.
``skip(idx, "s:c,...")``  for each ``s:c`` (ascending ``s``) with ``idx >= s`` add ``c``:
               skip ``c`` numbers starting at ``s``.
``ipadd(b1, b2, b3, b4, add[, skipstart[, skipend]])``  the IPv4 address ``add`` usable
               addresses after ``b1.b2.b3.b4``, where in every /24 the first ``skipstart``
               and the last ``skipend`` host numbers are not usable (e.g. ``1, 1`` skips
               ``.0`` and ``.255``).
``sprintf(fmt, args...)``  Perl ``sprintf`` for ``%d %i %u %x %X %o %b %e %f %g %s %c %%``.
"""

from __future__ import annotations

import ast
import functools
import math
import re
from collections.abc import Callable, Sequence

__all__ = ["EvalError", "evaluate", "compile_expr", "compile_bare", "reason", "format_number",
           "numify"]

MAX_EXPR = 2000          # characters
MAX_INT_BITS = 4096      # bigger intermediate results are refused (no CPU/memory bombs)
MAX_WIDTH = 256          # sprintf field width / precision
MAX_DEPTH = 100          # syntax-tree depth (a fixed bound: never Python's recursion limit)


class EvalError(ValueError):
    """The expression is not allowed or cannot be computed."""


Number = int | float
Value = int | float | str


# -- Perl scalar helpers -------------------------------------------------------------------
_NUM_RE = re.compile(r"\s*([+-]?(?:\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?)")


def numify(v: Value | None) -> Number:
    """Perl's string-to-number: the leading number of *v*, else 0 (None is 0)."""
    t = type(v)
    if t is int or t is float:
        return v
    if t is str and v.isdigit() and v.isascii() and len(v) < 19:  # the usual group text
        return int(v)
    if v is None:
        return 0
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, float)):
        return v
    m = _NUM_RE.match(v)
    if not m:
        return 0
    text = m.group(1)
    if m.group(2) is None and m.group(3) is None:
        return int(text)
    f = float(text)
    return _norm(f)


def _norm(v: Number) -> Number:
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            raise EvalError("numeric overflow")
        if v.is_integer() and abs(v) < 2**63:
            return int(v)
    elif v.bit_length() > MAX_INT_BITS:
        raise EvalError("number too large")
    return v


def format_number(v: Value) -> str:
    """Render a value the way Perl prints it (integers plainly, floats with ``%.15g``)."""
    t = type(v)
    if t is str:
        return v
    if t is int:
        return str(v)
    if isinstance(v, str):
        return v
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return format(v, ".15g")
    return str(v)


# -- helpers --------------------------------------------------------------------------------
def _letter(c: Value) -> int:
    s = c if isinstance(c, str) else format_number(c)
    if not s or not ("a" <= s[0].lower() <= "z"):
        raise EvalError(f"not a letter: {s!r}")
    return ord(s[0].lower()) - ord("a")


def a2idx(c: Value) -> int:
    """``a`` -> 1, ``b`` -> 2, ... (case-insensitive, first character)."""
    return _letter(c) + 1


def a2zidx(c: Value) -> int:
    """``a`` -> 0, ``b`` -> 1, ... (case-insensitive, first character)."""
    return _letter(c)


def dim2idx(*args: Value) -> Number:
    """Row-major index from (value, dimension size) pairs."""
    if not args or len(args) % 2:
        raise EvalError("dim2idx needs value,size pairs")
    idx: Number = 0
    for i in range(0, len(args), 2):
        v, n = numify(args[i]), numify(args[i + 1])
        idx = _norm(idx * n + v)
    return idx


def skip(idx: Value, spec: Value = "") -> Number:
    """Skip ranges: for each ``start:count`` with ``idx >= start`` add ``count``."""
    n = numify(idx)
    text = spec if isinstance(spec, str) else format_number(spec)
    pairs = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        start, _, count = part.partition(":")
        pairs.append((numify(start), numify(count) if count else 1))
    for start, count in sorted(pairs):
        if n >= start:
            n += count
    return _norm(n)


def ipadd(b1: Value, b2: Value, b3: Value, b4: Value, add: Value = 0,
          skipstart: Value = 0, skipend: Value = 0) -> str:
    """IPv4 address *add* usable addresses after b1.b2.b3.b4 (see module docstring)."""
    octets = [int(numify(b)) for b in (b1, b2, b3, b4)]
    if any(not 0 <= o <= 255 for o in octets):
        raise EvalError("ipadd: octet out of range")
    lo, hi = int(numify(skipstart)), int(numify(skipend))
    per = 256 - lo - hi
    if lo < 0 or hi < 0 or per <= 0:
        raise EvalError("ipadd: bad skip range")
    base = (octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]
    block, host = base >> 8, base & 0xFF
    host = min(max(host, lo), 255 - hi)
    offset = (host - lo) + int(numify(add))
    block += offset // per
    host = lo + offset % per
    if not 0 <= block < (1 << 24):
        raise EvalError("ipadd: address out of range")
    addr = (block << 8) | host
    return ".".join(str((addr >> s) & 0xFF) for s in (24, 16, 8, 0))


_FMT_RE = re.compile(r"%(?P<flags>[-+ 0#]*)(?P<width>\*|\d+)?(?:\.(?P<prec>\*|\d+))?"
                     r"(?P<conv>[diuxXobeEfFgGsc%])")


def sprintf(fmt: Value = "", *args: Value) -> str:
    """Perl-like ``sprintf`` for the common conversions."""
    fmt = fmt if isinstance(fmt, str) else format_number(fmt)
    argv = list(args)

    def take() -> Value:
        return argv.pop(0) if argv else ""

    out = []
    pos = 0
    for m in _FMT_RE.finditer(fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        conv = m.group("conv")
        if conv == "%":
            out.append("%")
            continue
        width = m.group("width")
        prec = m.group("prec")
        if width == "*":
            width = str(int(numify(take())))
        if prec == "*":
            prec = str(int(numify(take())))
        if (width and abs(int(width)) > MAX_WIDTH) or (prec and int(prec) > MAX_WIDTH):
            raise EvalError("sprintf: field too wide")
        spec = "%" + m.group("flags") + (width or "") + (f".{prec}" if prec is not None else "")
        arg = take()
        if conv in "diu":
            out.append((spec + "d") % int(numify(arg)))
        elif conv in "xXo":
            n = int(numify(arg))
            out.append((spec + conv) % (n if n >= 0 else n & 0xFFFFFFFFFFFFFFFF))
        elif conv == "b":
            n = int(numify(arg))
            digits = format(n if n >= 0 else n & 0xFFFFFFFFFFFFFFFF, "b")
            out.append(("%" + m.group("flags").replace("#", "") + (width or "") + "s") % digits
                       if "0" not in m.group("flags")
                       else digits.zfill(int(width or 0)))
        elif conv in "eEfFgG":
            out.append((spec + conv) % float(numify(arg)))
        elif conv == "c":
            out.append(chr(int(numify(arg))))
        else:  # s
            out.append((spec + "s") % (arg if isinstance(arg, str) else format_number(arg)))
    out.append(fmt[pos:])
    return "".join(out)


HELPERS = {
    "a2idx": a2idx,
    "a2zidx": a2zidx,
    "dim2idx": dim2idx,
    "skip": skip,
    "ipadd": ipadd,
    "sprintf": sprintf,
}


# -- source rewriting: $1 -> _g1 ------------------------------------------------------------
_GROUP_RE = re.compile(r"\$(?:\{(\d+)\}|(\d+))")


class _NeedsGroups(Exception):
    """The expression interpolates groups into a double-quoted string: its source text
    depends on the groups, so it cannot be compiled once."""


def _rewrite(expr: str, groups: Sequence[str | None] | None) -> str:
    """Replace ``$n``/``${n}`` by ``_gN`` outside strings; interpolate them in ``"..."``.

    With *groups* None, a double-quoted string that names a group raises _NeedsGroups."""
    out = []
    i, n = 0, len(expr)
    while i < n:
        ch = expr[i]
        if ch in "'\"":
            j = i + 1
            buf = []
            while j < n and expr[j] != ch:
                if expr[j] == "\\" and j + 1 < n:
                    buf.append(expr[j:j + 2])
                    j += 2
                    continue
                buf.append(expr[j])
                j += 1
            if j >= n:
                raise EvalError("unterminated string")
            body = "".join(buf)
            if ch == '"' and _GROUP_RE.search(body):  # Perl interpolates groups in "..."
                if groups is None:
                    raise _NeedsGroups
                def interp(m: re.Match) -> str:
                    k = int(m.group(1) or m.group(2))
                    val = groups[k - 1] if 0 < k <= len(groups) else None
                    return (val or "").replace("\\", "\\\\").replace('"', '\\"')
                body = _GROUP_RE.sub(interp, body)
            out.append(ch + body + ch)
            i = j + 1
            continue
        m = _GROUP_RE.match(expr, i)
        if m:
            out.append(f"_g{int(m.group(1) or m.group(2))}")
            i = m.end()
            continue
        if ch == "$":
            raise EvalError("only $1..$n may be used")
        out.append(ch)
        i += 1
    return "".join(out)


# -- the compiler: a checked syntax tree to nested closures ---------------------------------
#: A compiled expression: the regex groups in, the value out (raises EvalError).
Compiled = Callable[[Sequence[str | None]], Value]


def _add(a: Number, b: Number) -> Number:
    return _norm(a + b)


def _sub(a: Number, b: Number) -> Number:
    return _norm(a - b)


def _mul(a: Number, b: Number) -> Number:
    if isinstance(a, int) and isinstance(b, int) and \
            a.bit_length() + b.bit_length() > MAX_INT_BITS:
        raise EvalError("number too large")
    return _norm(a * b)


def _div(a: Number, b: Number) -> Number:
    if b == 0:
        raise EvalError("Illegal division by zero")
    if isinstance(a, int) and isinstance(b, int) and a % b == 0:
        return a // b
    return _norm(a / b)


def _floordiv(a: Number, b: Number) -> Number:
    if b == 0:
        raise EvalError("Illegal division by zero")
    return _norm(a // b)


def _mod(a: Number, b: Number) -> Number:
    ia, ib = int(a), int(b)
    if ib == 0:
        raise EvalError("Illegal modulus zero")
    return ia % ib


def _pow(a: Number, b: Number) -> Number:
    if isinstance(a, int) and isinstance(b, int) and b >= 0:
        if a not in (0, 1, -1) and b * max(a.bit_length(), 1) > MAX_INT_BITS:
            raise EvalError("number too large")
        return a ** b
    try:
        r = float(a) ** float(b)
    except (OverflowError, ZeroDivisionError) as exc:
        raise EvalError(str(exc)) from None
    if isinstance(r, complex):
        raise EvalError("complex result")
    return _norm(r)


_BINOPS = {ast.Add: _add, ast.Sub: _sub, ast.Mult: _mul, ast.Div: _div,
           ast.FloorDiv: _floordiv, ast.Mod: _mod, ast.Pow: _pow}
_NAME_RE = re.compile(r"_g(\d+)")
_VARIES = object()  # "not a constant" (for folding)


def _const(v: Value) -> Compiled:
    return lambda groups: v


def _group_index(node: ast.Name) -> int:
    m = _NAME_RE.fullmatch(node.id)
    if not m or not isinstance(node.ctx, ast.Load):
        raise EvalError(f"name {node.id!r} not allowed")
    return int(m.group(1)) - 1


def _number(node: ast.AST) -> tuple[Compiled, object]:
    """Check *node* and compile it for arithmetic: a closure giving its numified value,
    and that value when it is a constant (else _VARIES): constants are folded and passed
    to the operators directly, a group is numified where it is read."""
    kind = type(node)
    if kind is ast.Constant and not isinstance(node.value, str):
        v = numify(_literal(node))
        return _const(v), v
    if kind is ast.Name:
        i = _group_index(node)
        if i < 0:
            return _const(0), 0

        def group_number(groups: Sequence[str | None]) -> Number:
            if i >= len(groups):
                return 0
            v = groups[i]
            if type(v) is str and v.isdigit() and v.isascii() and len(v) < 19:
                return int(v)  # numify's usual case, without the call
            return numify(v)
        return group_number, _VARIES
    if kind is ast.UnaryOp:
        fn, c = _number(node.operand)
        if isinstance(node.op, ast.UAdd):
            return fn, c
        if not isinstance(node.op, ast.USub):
            raise EvalError(f"operator {type(node.op).__name__} not allowed")
        if c is not _VARIES:
            try:
                v = _norm(-c)
                return _const(v), v
            except (EvalError, OverflowError, ValueError):
                pass
        return (lambda groups: _norm(-fn(groups))), _VARIES
    if kind is ast.BinOp:
        lf, lc = _number(node.left)
        rf, rc = _number(node.right)
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise EvalError(f"operator {type(node.op).__name__} not allowed")
        if lc is not _VARIES and rc is not _VARIES:
            try:
                v = op(lc, rc)
                return _const(v), v
            except (EvalError, OverflowError, ValueError):
                pass  # raised when evaluated, not while compiling
        if rc is not _VARIES:
            return (lambda groups: op(lf(groups), rc)), _VARIES
        if lc is not _VARIES:
            return (lambda groups: op(lc, rf(groups))), _VARIES
        return (lambda groups: op(lf(groups), rf(groups))), _VARIES
    fn = _build(node)  # a string literal or a helper call: numified when used
    return (lambda groups: numify(fn(groups))), _VARIES


def _literal(node: ast.Constant) -> Value:
    v = node.value
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise EvalError(f"literal {v!r} not allowed")
    return v if isinstance(v, str) else _norm(v)


def _build(node: ast.AST) -> Compiled:
    """Check *node* (only the constructs the module docstring lists) and return a closure
    computing it; raises EvalError for anything else."""
    kind = type(node)
    if kind is ast.Expression:
        return _build(node.body)
    if kind is ast.Constant:
        return _const(_literal(node))
    if kind is ast.Name:
        i = _group_index(node)

        def group(groups: Sequence[str | None]) -> Value:
            val = groups[i] if 0 <= i < len(groups) else None
            return "" if val is None else val
        return group
    if kind is ast.UnaryOp or kind is ast.BinOp:
        return _number(node)[0]
    if kind is ast.Call:
        if not isinstance(node.func, ast.Name) or node.func.id not in HELPERS:
            name = node.func.id if isinstance(node.func, ast.Name) else type(node.func).__name__
            raise EvalError(f"function {name!r} not allowed")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise EvalError("only positional arguments are allowed")
        name = node.func.id
        helper = HELPERS[name]
        args = [_build(a) for a in node.args]

        def call(groups: Sequence[str | None]) -> Value:
            try:
                return helper(*[a(groups) for a in args])
            except TypeError as exc:
                raise EvalError(f"{name}: {exc}") from None
        return call
    raise EvalError(f"{kind.__name__} not allowed")


@functools.lru_cache(maxsize=1024)
def _compile_source(src: str, expr: str) -> Compiled:
    """Parse rewritten source *src* (of *expr*, for messages) and build its closure."""
    try:
        tree = ast.parse(src.strip(), mode="eval")
    except SyntaxError as exc:
        raise EvalError(f"syntax error in {expr!r}: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError):
        raise EvalError(f"cannot parse {expr!r}") from None
    stack = [(tree, 1)]
    while stack:  # depth checked without recursion, so _build and the closures stay shallow
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise EvalError("expression nested too deeply")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    try:
        return _build(tree)
    except RecursionError:
        raise EvalError("expression nested too deeply") from None


def reason(exc: BaseException) -> str:
    """The EvalError message for an exception a :func:`compile_bare` function raised."""
    if isinstance(exc, RecursionError):
        return "expression nested too deeply"
    return str(exc)


def _guarded(fn: Compiled) -> Compiled:
    def run(groups: Sequence[str | None]) -> Value:
        try:
            return fn(groups)
        except (RecursionError, OverflowError, ValueError) as exc:
            if isinstance(exc, EvalError):
                raise
            raise EvalError(reason(exc)) from None
    return run


@functools.lru_cache(maxsize=1024)
def compile_bare(expr: str) -> Compiled:
    """:func:`compile_expr` without the wrapper that turns the rare ValueError,
    OverflowError or RecursionError of an evaluation into EvalError (for a caller that
    catches those itself, e.g. once per value; :func:`reason` gives the message).

    Raises:
        EvalError: disallowed construct, syntax error, expression too long.
    """
    if len(expr) > MAX_EXPR:
        raise EvalError("expression too long")
    try:
        src = _rewrite(expr, None)
    except _NeedsGroups:  # "...$1...": the source depends on the groups (rare)
        def per_groups(groups: Sequence[str | None]) -> Value:
            return _compile_source(_rewrite(expr, groups), expr)(groups)
        return per_groups
    return _compile_source(src, expr)


@functools.lru_cache(maxsize=1024)
def compile_expr(expr: str) -> Compiled:
    """Compile one arithmetic expression, once: the result is a function of the regex
    groups (``fn(groups) -> int | float | str``, raising EvalError), so a value used by
    many nodes is parsed and checked once (cached by its text).

    Raises:
        EvalError: disallowed construct, syntax error, expression too long.
    """
    return _guarded(compile_bare(expr))


def evaluate(expr: str, groups: Sequence[str | None] = ()) -> Value:
    """Evaluate one arithmetic expression with ``$1..$n`` bound to *groups*.

    Args:
        expr: the expression, e.g. ``($1-1)/14+1`` or ``sprintf('%02d',$1)``.
        groups: regex group texts (None for a group that did not take part).
    Returns:
        int, float or str.
    Raises:
        EvalError: disallowed construct, syntax error, division by zero, huge numbers.
    """
    return compile_expr(expr)(groups)
