"""xCAT's output conventions, in one place.

Per-node data: ``node: text`` on stdout, one line per line of text, in the order given.
Per-node errors: ``node: Error: text`` on stderr. Global errors: ``Error: text`` on stderr.
``--json``: one JSON object per line on stdout, never a document to parse whole -- per node
``{"node", "ok", "message", ...data}``; per other object (a pool, a table row, a setting)
``{"name", "objtype", "attributes": {...}}`` as ``lsdef``'s, or the keys a command's help
names; a global error ``{"ok": false, "error": text}``.
The exit code is 1 when anything failed, else 0.

Cold start: ``json`` is imported when the first JSON line is written, ``typing`` never.
"""

from __future__ import annotations

import sys
from io import TextIOBase


def json_line(obj: object) -> str:
    """*obj* as one JSON line (no newline inside, keys in the order given)."""
    import json

    return json.dumps(obj)


class Reporter:
    """Prints results and remembers whether anything failed.

    Args:
        json_mode: print JSON lines instead of text.
        out, err: streams (default stdout/stderr).
    """

    def __init__(self, json_mode: bool = False, out: TextIOBase | None = None,
                 err: TextIOBase | None = None) -> None:
        self.json_mode = json_mode
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.failed = False

    @property
    def exit_code(self) -> int:
        """1 when any node or global error was reported, else 0."""
        return 1 if self.failed else 0

    def node(self, node: str, message: str = "", ok: bool = True, **data: object) -> None:
        """Report one node's outcome. An empty successful message prints nothing in text mode."""
        if not ok:
            self.failed = True
        if self.json_mode:
            obj = {"node": node, "ok": ok, "message": message}
            obj.update(data)
            self.out.write(json_line(obj) + "\n")
            self.out.flush()
            return
        if ok:
            for line in message.splitlines() if message else []:
                self.out.write(f"{node}: {line}\n")
            self.out.flush()
        else:
            lines = message.splitlines() or ["failed"]
            for line in lines:
                self.err.write(f"{node}: Error: {line}\n")
            self.err.flush()

    def result(self, r) -> None:
        """Report a ``NodeResult``-shaped object (node, ok, message, data)."""
        self.node(r.node, r.message, r.ok, **(getattr(r, "data", None) or {}))

    def error(self, text: str) -> None:
        """A global error: ``Error: text`` on stderr (JSON: ``{"ok": false, "error": ...}``)."""
        self.failed = True
        if self.json_mode:
            self.out.write(json_line({"ok": False, "error": text}) + "\n")
        else:
            self.err.write(f"Error: {text}\n")
            self.err.flush()

    def line(self, text: str) -> None:
        """A plain line on stdout (table dumps, lists)."""
        self.out.write(text + "\n")

    def object(self, name: str, objtype: str, attributes: dict) -> None:
        """``--json``: one object that is not a node, ``{"name", "objtype", "attributes"}``
        (the keys of ``lsdef --json``)."""
        self.out.write(json_line({"name": name, "objtype": objtype,
                                  "attributes": attributes}) + "\n")

    def json(self, obj: dict) -> None:
        """``--json``: one JSON line of *obj* as given."""
        self.out.write(json_line(obj) + "\n")
