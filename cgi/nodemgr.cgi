#!/usr/bin/env python3
"""CGI shim for sites that run CGI under Apache, as xCAT's xcatrhevh.cgi did:

    ScriptAlias /xcatrhevh /opt/nodemgr/cgi/nodemgr.cgi/xcatrhevh
    ScriptAlias /install-finished /opt/nodemgr/cgi/nodemgr.cgi/install-finished

Apache sets REMOTE_ADDR and PATH_INFO; the standard library's wsgiref CGIHandler runs the
same WSGI application as gunicorn does (one process per request: fine for callbacks, use
gunicorn for boot files). Set NODEMGR_DB/NODEMGR_CONF with SetEnv when needed.

From a checkout (/opt/nodemgr above) the checkout is put on sys.path, so it runs without
installing. An installed package carries this file as package data: copy it from
$(python3 -c 'import nodemgr.share as s; print(s.__path__[0])')/cgi/ to the web server's
CGI directory and point the ScriptAlias there; its first line must name the Python that has
nodemgr[netboot] installed (a virtualenv's bin/python, say).
"""

import os
import sys

_checkout = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
if os.path.isfile(os.path.join(_checkout, "nodemgr", "__init__.py")):
    sys.path.insert(0, _checkout)

from wsgiref.handlers import CGIHandler  # noqa: E402

try:
    from nodemgr.web.app import create_app
except ModuleNotFoundError as exc:  # nodemgr or flask not installed for this Python
    extra = "" if (exc.name or "").startswith("nodemgr") else "[netboot]"
    sys.stderr.write(f"Error: nodemgr.cgi needs {exc.name}: pip install 'nodemgr{extra}'\n")
    sys.stdout.write("Status: 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\n"
                     "500 internal error (logged on the server)\n")
    sys.exit(1)

if __name__ == "__main__":
    CGIHandler().run(create_app())
