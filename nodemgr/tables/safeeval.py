"""Safe evaluation of the arithmetic in xCAT ``|pattern|replacement|`` table values.

xCAT evaluates every ``( ... )`` group of a ``|re|repl|`` replacement with Perl's ``Safe``
compartment, ``$1..$n`` bound to the regex groups. nodemgr never calls ``eval``/``exec``:
the expression is parsed with :mod:`ast` and walked by a tiny interpreter that accepts only

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
import math
import re
from collections.abc import Sequence

__all__ = ["EvalError", "evaluate", "format_number", "numify"]

MAX_EXPR = 2000          # characters
MAX_INT_BITS = 4096      # bigger intermediate results are refused (no CPU/memory bombs)
MAX_WIDTH = 256          # sprintf field width / precision


class EvalError(ValueError):
    """The expression is not allowed or cannot be computed."""


Number = int | float
Value = int | float | str


# -- Perl scalar helpers -------------------------------------------------------------------
_NUM_RE = re.compile(r"\s*([+-]?(?:\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?)")


def numify(v: Value | None) -> Number:
    """Perl's string-to-number: the leading number of *v*, else 0 (None is 0)."""
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


def _rewrite(expr: str, groups: Sequence[str | None]) -> str:
    """Replace ``$n``/``${n}`` by ``_gN`` outside strings; interpolate them in ``"..."``."""
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
            if ch == '"':  # Perl interpolates groups in double quotes
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


# -- the interpreter ------------------------------------------------------------------------
class _Interp:
    def __init__(self, groups: Sequence[str | None]) -> None:
        self.groups = groups

    def run(self, node: ast.AST) -> Value:
        meth = getattr(self, "_" + type(node).__name__, None)
        if meth is None:
            raise EvalError(f"{type(node).__name__} not allowed")
        return meth(node)

    def _Expression(self, node: ast.Expression) -> Value:
        return self.run(node.body)

    def _Constant(self, node: ast.Constant) -> Value:
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            raise EvalError(f"literal {v!r} not allowed")
        return _norm(v) if not isinstance(v, str) else v

    def _Name(self, node: ast.Name) -> Value:
        m = re.fullmatch(r"_g(\d+)", node.id)
        if not m or not isinstance(node.ctx, ast.Load):
            raise EvalError(f"name {node.id!r} not allowed")
        k = int(m.group(1))
        val = self.groups[k - 1] if 0 < k <= len(self.groups) else None
        return "" if val is None else val

    def _UnaryOp(self, node: ast.UnaryOp) -> Value:
        v = numify(self.run(node.operand))
        if isinstance(node.op, ast.USub):
            return _norm(-v)
        if isinstance(node.op, ast.UAdd):
            return v
        raise EvalError(f"operator {type(node.op).__name__} not allowed")

    def _BinOp(self, node: ast.BinOp) -> Value:
        a = numify(self.run(node.left))
        b = numify(self.run(node.right))
        op = node.op
        if isinstance(op, ast.Add):
            return _norm(a + b)
        if isinstance(op, ast.Sub):
            return _norm(a - b)
        if isinstance(op, ast.Mult):
            if isinstance(a, int) and isinstance(b, int) and \
                    a.bit_length() + b.bit_length() > MAX_INT_BITS:
                raise EvalError("number too large")
            return _norm(a * b)
        if isinstance(op, ast.Div):
            if b == 0:
                raise EvalError("Illegal division by zero")
            if isinstance(a, int) and isinstance(b, int) and a % b == 0:
                return a // b
            return _norm(a / b)
        if isinstance(op, ast.FloorDiv):
            if b == 0:
                raise EvalError("Illegal division by zero")
            return _norm(a // b)
        if isinstance(op, ast.Mod):
            ia, ib = int(a), int(b)
            if ib == 0:
                raise EvalError("Illegal modulus zero")
            return ia % ib
        if isinstance(op, ast.Pow):
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
        raise EvalError(f"operator {type(op).__name__} not allowed")

    def _Call(self, node: ast.Call) -> Value:
        if not isinstance(node.func, ast.Name) or node.func.id not in HELPERS:
            name = node.func.id if isinstance(node.func, ast.Name) else type(node.func).__name__
            raise EvalError(f"function {name!r} not allowed")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise EvalError("only positional arguments are allowed")
        args = [self.run(a) for a in node.args]
        try:
            return HELPERS[node.func.id](*args)
        except TypeError as exc:
            raise EvalError(f"{node.func.id}: {exc}") from None


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
    if len(expr) > MAX_EXPR:
        raise EvalError("expression too long")
    src = _rewrite(expr, groups)
    try:
        tree = ast.parse(src.strip(), mode="eval")
    except SyntaxError as exc:
        raise EvalError(f"syntax error in {expr!r}: {exc.msg}") from None
    except (ValueError, RecursionError):
        raise EvalError(f"cannot parse {expr!r}") from None
    try:
        return _Interp(groups).run(tree)
    except RecursionError:
        raise EvalError("expression nested too deeply") from None
    except (OverflowError, ValueError) as exc:
        if isinstance(exc, EvalError):
            raise
        raise EvalError(str(exc)) from None
