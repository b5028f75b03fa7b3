"""WSGI entry point of nodemgr's web app, for mod_wsgi, uWSGI or any WSGI server.

    WSGIScriptAlias /xcatrhevh /opt/nodemgr/cgi/nodemgr.wsgi/xcatrhevh   (Apache mod_wsgi)

The checkout is put on sys.path, so it runs without installing the package.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

from nodemgr.web.app import create_app  # noqa: E402

application = create_app()
