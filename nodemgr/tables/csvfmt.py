"""xCAT's ``tabdump`` CSV format: writer and reader.

Format (``tabutils.pm`` ``output_table`` / ``tabrestore``):

* first line ``#col1,col2,...`` (column names, schema order);
* one line per row: a defined value is written ``"value"`` with every ``"`` doubled, an
  undefined value (None) as an empty field; fields joined by ``,``; a newline inside a value
  is written literally (the record then spans several lines); every line ends with ``\\n``.

The reader is written by hand because Python's :mod:`csv` cannot reproduce xCAT:

* it cannot tell ``""`` (empty string) from an empty field (undefined) -- both read as
  ``''`` -- yet tabdump distinguishes them and a round trip must keep the difference;
* it does not report xCAT's errors (``CSV unmatched " in record on line N``,
  ``Too many fields on line N``, a quote inside an unquoted field) with line numbers;
* xCAT strips ``"`` from the header and tolerates one trailing comma and trailing blanks.

Reader rules: quoted fields may contain doubled quotes, commas and newlines; unquoted fields
end at ``,`` or end of line and may not contain ``"``; a missing trailing field is undefined;
blank lines outside a quoted value are skipped (xCAT inserts an empty row or fails on them);
whitespace at the end of a line outside quotes is ignored (xCAT strips it). Line numbers in
errors are 1-based lines of the text, the header being line 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from nodemgr.errors import TableError

__all__ = ["dump", "parse", "parse_lines", "quote"]


def quote(value: str | None) -> str:
    """One field: ``"value"`` with inner quotes doubled, or '' for None."""
    if value is None:
        return ""
    return '"' + value.replace('"', '""') + '"'


def dump(columns: Sequence[str], rows: Iterable[Mapping[str, str | None]]) -> str:
    """Render *rows* (dicts; missing keys are undefined) as tabdump CSV text."""
    out = ["#" + ",".join(columns) + "\n"]
    for row in rows:
        out.append(",".join(quote(row.get(c)) for c in columns) + "\n")
    return "".join(out)


def _header(line: str) -> list[str]:
    if not line.startswith("#"):
        raise TableError("Data missing header line starting with #")
    text = line.replace('"', "")[1:].rstrip()
    cols = [c.strip() for c in text.split(",")]
    if not cols or any(c == "" for c in cols):
        raise TableError("Malformed header line: empty column name")
    return cols


def parse_lines(text: str) -> tuple[list[str], list[tuple[int, dict[str, str | None]]]]:
    """Like :func:`parse`, with each row's 1-based starting line number."""
    if text.startswith("\ufeff"):
        text = text[1:]
    nl = text.find("\n")
    header_line = text if nl < 0 else text[:nl]
    columns = _header(header_line.rstrip("\r"))
    ncols = len(columns)
    rows: list[tuple[int, dict[str, str | None]]] = []
    i = len(text) if nl < 0 else nl + 1
    n = len(text)
    line = 2
    while i < n:
        # blank line (only whitespace) outside quotes: skip
        j = i
        while j < n and text[j] in " \t\r":
            j += 1
        if j >= n:
            break
        if text[j] == "\n":
            i = j + 1
            line += 1
            continue
        start_line = line
        fields: list[str | None] = []
        while True:  # one field per iteration; i is at the field start
            if i < n and text[i] == '"':
                open_line = line
                buf = []
                k = i + 1
                while True:
                    q = text.find('"', k)
                    if q < 0:
                        raise TableError(f'CSV unmatched " in record on line {open_line}')
                    chunk = text[k:q]
                    line += chunk.count("\n")
                    buf.append(chunk)
                    if q + 1 < n and text[q + 1] == '"':
                        buf.append('"')
                        k = q + 2
                        continue
                    i = q + 1
                    break
                fields.append("".join(buf))
                # after the closing quote: ',' or (blanks then) end of line
                j = i
                while j < n and text[j] in " \t\r":
                    j += 1
                if i < n and text[i] == ",":
                    i += 1
                    continue
                if j >= n or text[j] == "\n":
                    i = j
                    break
                raise TableError(f'CSV unescaped " in record on line {line}')
            # unquoted (possibly empty) field
            k = i
            while k < n and text[k] not in ",\n":
                k += 1
            raw = text[i:k]
            end_of_record = k >= n or text[k] == "\n"
            if end_of_record:
                raw = raw.rstrip(" \t\r")
            if '"' in raw:
                raise TableError(
                    f'CSV missing opening " for record with " characters on line {line}')
            fields.append(raw if raw != "" else None)
            if end_of_record:
                i = k
                break
            i = k + 1
        if i < n:  # at the newline ending the record
            i += 1
            line += 1
        if len(fields) > ncols:
            if len(fields) == ncols + 1 and fields[-1] is None:
                fields.pop()  # an empty last field: xCAT tolerates one trailing comma
            else:
                raise TableError(f"Too many fields on line {start_line}")
        fields += [None] * (ncols - len(fields))
        rows.append((start_line, dict(zip(columns, fields, strict=True))))
    return columns, rows


def parse(text: str) -> tuple[list[str], list[dict[str, str | None]]]:
    """Parse tabdump CSV *text*.

    Returns:
        (columns from the header, rows as dicts column -> str or None).
    Raises:
        TableError: missing ``#`` header, ``CSV unmatched " in record on line N``,
            ``CSV unescaped " in record on line N``, ``CSV missing opening " ...``,
            ``Too many fields on line N``.
    """
    columns, rows = parse_lines(text)
    return columns, [r for _, r in rows]
