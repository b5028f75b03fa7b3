"""gunicorn's access log, made safe to keep (``logger_class`` in etc/gunicorn.conf.py).

Two rules for every atom of a line (request line, path, query, headers, environ values):

* the value of a ``token`` query parameter (a callback's still-valid one-time token) is
  written ``***``, whatever the spelling of the name (``token``, ``TOKEN``, ``tok%65n``:
  Werkzeug decodes names before the app reads them);
* control characters cannot forge or split lines: C0 controls (``\\r``, ``\\n``, ...), DEL,
  C1 controls (``\\x85`` is a line break to some readers), ``"`` and ``\\`` are written
  ``\\xNN`` as nginx's ``escape=default`` does. gunicorn hands the path over
  percent-decoded (``%0A`` is a newline by then), so this is done on the decoded atoms.

The error log is not touched: nodemgr's own lines never carry a token or a raw request.
"""

from __future__ import annotations

import re
import urllib.parse

from gunicorn.glogging import Logger

#: one ``name=value`` item of a query (``&`` or ``;`` separated), or of a request line /
#: referer after its ``?``
_PARAM = re.compile(r"(^|[?&;])([^=&;?#\s]*)=([^&;#\s]*)")
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f"\\]')

#: query parameter names whose values are never written (compared after decoding, lowercase)
SECRET_PARAMS = frozenset({"token"})


def redact_query(text: str) -> str:
    """Return *text* with the value of every ``token=`` parameter replaced by ``***``."""
    if "=" not in text:
        return text

    def one(m: re.Match) -> str:
        name = urllib.parse.unquote_plus(m.group(2)).strip().lower()
        if name in SECRET_PARAMS:
            return f"{m.group(1)}{m.group(2)}=***"
        return m.group(0)
    return _PARAM.sub(one, text)


def escape(text: str) -> str:
    """Return *text* with control characters, ``"`` and ``\\`` written ``\\xNN``."""
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)


def safe(value):
    """One atom as it may be written: strings redacted and escaped, anything else as is."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if isinstance(value, str):
        return escape(redact_query(value))
    return value


class AccessLogger(Logger):
    """gunicorn's logger whose access-log atoms go through :func:`safe`."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        return {key: safe(value) for key, value in atoms.items()}
