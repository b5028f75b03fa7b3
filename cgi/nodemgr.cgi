#!/usr/bin/env python3
"""CGI shim for sites that run CGI under Apache, as xCAT's xcatrhevh.cgi did:

    ScriptAlias /xcatrhevh /opt/nodemgr/cgi/nodemgr.cgi/xcatrhevh
    ScriptAlias /install-finished /opt/nodemgr/cgi/nodemgr.cgi/install-finished

Apache sets REMOTE_ADDR and PATH_INFO; the standard library's wsgiref CGIHandler runs the
same WSGI application as gunicorn does (one process per request: fine for callbacks, use
gunicorn for boot files). Set NODEMGR_DB/NODEMGR_CONF with SetEnv when needed.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

from wsgiref.handlers import CGIHandler  # noqa: E402

from nodemgr.web.app import create_app  # noqa: E402

if __name__ == "__main__":
    CGIHandler().run(create_app())
