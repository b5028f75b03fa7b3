"""WSGI entry point of nodemgr's web app, for mod_wsgi, uWSGI or any WSGI server.

    WSGIScriptAlias /xcatrhevh /opt/nodemgr/cgi/nodemgr.wsgi/xcatrhevh   (Apache mod_wsgi)

From a checkout (/opt/nodemgr above) the checkout is put on sys.path, so it runs without
installing. An installed package carries this file as package data, in
$(python3 -c 'import nodemgr.share as s; print(s.__path__[0])')/cgi/; with mod_wsgi, set
WSGIPythonHome (or python-home=) to the environment that has nodemgr[netboot] installed.
A server that takes a module name needs no file at all: nodemgr.web.app:create_app() is the
application factory (gunicorn's etc/gunicorn.conf.py uses it).
"""

import os
import sys

_checkout = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
if os.path.isfile(os.path.join(_checkout, "nodemgr", "__init__.py")):
    sys.path.insert(0, _checkout)

try:
    from nodemgr.web.app import create_app
except ModuleNotFoundError as exc:  # nodemgr or flask not installed for this Python
    extra = "" if (exc.name or "").startswith("nodemgr") else "[netboot]"
    raise SystemExit(f"Error: nodemgr.wsgi needs {exc.name}: pip install 'nodemgr{extra}'") from None

application = create_app()
