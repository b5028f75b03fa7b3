"""The Flask application: install-finished callback routes, boot files over HTTP, liveness.

Routes:

* ``GET /install-finished/<node>[?token=..]`` — general callback (kickstart ``%post``,
  preseed ``late_command``, any script); policy command ``installfinished``.
* ``GET /xcatrhevh/rhevh_finish_install/<node>[?token=..]`` — xCAT's RHEV-H
  ``local_boot_trigger`` route; policy command ``rhevhupdateflag``.
* ``GET /install/autoinst/<node>`` — the node's answer file (kickstart, preseed), only to
  the node's own address (:func:`nodemgr.web.callback.answer_file`); never listed, never
  served by the static ``/install/`` route.
* ``POST /install-status/<node>[?token=..]`` (``status=failed&script=<name>``) — a
  postscript failed (:func:`nodemgr.web.callback.report_status`).
* ``GET /tftpboot/<path>`` — the TFTP root (setting ``tftpdir``) read-only over HTTP
  (iPXE / GRUB2 ``http`` kernels and initrds), with the TFTP server's path rules.
* ``GET /install/<path>`` — the install tree (setting ``installdir``) the same way
  (installers' repositories, ``inst.repo=http://<master>/install/...``).

Both roots are resolved per request through :mod:`nodemgr.settings` (``site`` table first),
so ``chtab key=tftpdir site.value=...`` applies to the next request without a restart. In
production nginx serves both trees itself (``makewebconf``); these routes serve small sites
and tests.
* ``GET /healthz`` — ``ok`` (liveness; the benchmark's hello-world baseline).

One table store per worker process, opened on first use after the fork. Run one request at
a time per process (gunicorn ``sync`` workers). This module must never log a query string
(it carries the token) and never decide anything itself: see :mod:`nodemgr.web.callback`.
"""

from __future__ import annotations

import logging
import os

from flask import Flask, Response, abort, request, send_file
from werkzeug.exceptions import HTTPException

from nodemgr.web import callback

log = logging.getLogger("nodemgr.web")


def create_app(db_url: str | None = None, tftp_root: str | None = None,
               install_root: str | None = None) -> Flask:
    """Build the application.

    Args:
        db_url: database URL; default the configuration's (``$NODEMGR_DB``,
            ``nodemgr.conf``).
        tftp_root: directory served under ``/tftpboot``; default the ``tftpdir`` setting
            (:mod:`nodemgr.settings`), resolved per request.
        install_root: directory served under ``/install``; default the ``installdir``
            setting, resolved per request.
    Returns:
        A Flask app (a WSGI callable).
    """
    app = Flask("nodemgr")
    # "//" is not merged by a redirect (an HTML 308 that would bypass the plain-text error
    # handler and, behind nginx, lose the port): such a path is simply not a route (404)
    app.url_map.merge_slashes = False
    state: dict = {}

    def store():
        if state.get("pid") != os.getpid():  # never share a connection across a fork
            from nodemgr import config
            from nodemgr.tables.store import Store

            state["store"] = Store(db_url or config.load().db_url)
            state["pid"] = os.getpid()
        return state["store"]

    def answer(kind: str, node: str) -> Response:
        a = callback.finish(store(), node, kind=kind, remote_addr=request.remote_addr or "",
                            forwarded_for=request.headers.get("X-Forwarded-For"),
                            token=request.args.get("token"))
        return Response(a.text + "\n", status=a.status, mimetype="text/plain")

    @app.get("/install-finished/<node>")
    def install_finished(node: str):
        return answer("general", node)

    @app.get("/xcatrhevh/rhevh_finish_install/<node>")
    def rhevh_finish_install(node: str):
        return answer("rhevh", node)

    def conf():
        if "conf" not in state:
            from nodemgr import config

            state["conf"] = config.load()
        return state["conf"]

    def serve(root: str, path: str):
        """*path* of directory *root* with the TFTP server's rules (403 for ``..``,
        symlinks leaving the root, directories; 404 when absent; never a listing)."""
        from nodemgr.netboot import tftp

        try:
            fileobj = tftp.open_inside(os.path.realpath(root), path)
        except tftp.PathRefused:
            abort(403)
        if fileobj is None:
            abort(404)
        return send_file(fileobj, mimetype="application/octet-stream",
                         download_name=os.path.basename(path))

    def setting(key: str) -> str:
        """Setting *key* resolved now (site table first: a change applies to the next
        request)."""
        from nodemgr import settings

        return settings.get(store(), key, conf())

    @app.get("/tftpboot/<path:path>")
    def tftpboot(path: str):
        return serve(tftp_root if tftp_root is not None else setting("tftpdir"), path)

    def installdir() -> str:
        return install_root if install_root is not None else setting("installdir")

    @app.get("/install/<path:path>")
    def install(path: str):
        import posixpath

        first = posixpath.normpath("/" + path).lstrip("/").split("/", 1)[0]
        if first == "autoinst":  # answer files: only through the route below
            abort(403)
        return serve(installdir(), path)

    @app.get("/install/autoinst/<node>")
    def autoinst(node: str):
        a, text = callback.answer_file(store(), node, remote_addr=request.remote_addr or "",
                                       forwarded_for=request.headers.get("X-Forwarded-For"),
                                       installdir=installdir())
        if text is None:
            return Response(a.text + "\n", status=a.status, mimetype="text/plain")
        return Response(text, status=200, mimetype="text/plain",
                        headers={"Cache-Control": "no-store"})

    @app.post("/install-status/<node>")
    def install_status(node: str):
        a = callback.report_status(store(), node, remote_addr=request.remote_addr or "",
                                   forwarded_for=request.headers.get("X-Forwarded-For"),
                                   token=request.args.get("token"),
                                   status=request.form.get("status", ""),
                                   script=request.form.get("script"))
        return Response(a.text + "\n", status=a.status, mimetype="text/plain")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        """404, 403, 405, ... as one plain-text line (never Flask's HTML page)."""
        allow = getattr(exc, "valid_methods", None)
        return Response(f"{exc.code} {exc.name}\n", status=exc.code, mimetype="text/plain",
                        headers={"Allow": ", ".join(allow)} if allow else None)

    @app.errorhandler(Exception)
    def internal_error(exc: Exception):
        """Anything unexpected: logged once (type and first line, never a query string),
        answered 500 with one plain-text line — no traceback to the client."""
        first = str(exc).splitlines()[0] if str(exc) else ""
        log.error("web: %s %s failed: %s: %s", request.method, request.path,
                  type(exc).__name__, first)
        return Response("500 internal error (logged on the server)\n", status=500,
                        mimetype="text/plain")

    @app.get("/healthz")
    def healthz():
        return Response("ok\n", mimetype="text/plain")

    return app
