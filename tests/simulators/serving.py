"""Serving a simulator's WSGI app on a loopback port from a background thread (tests and
``python -m tests.simulators.<name>``): one place for the werkzeug plumbing."""

from __future__ import annotations

import threading


class LoopbackServer:
    """``with LoopbackServer(app) as s: s.port`` — threaded werkzeug server, request logging
    off, TLS when *ssl_context* is given; stopped and closed on exit."""

    def __init__(self, app, port: int = 0, ssl_context=None, host: str = "127.0.0.1") -> None:
        from werkzeug.serving import WSGIRequestHandler, make_server

        class Quiet(WSGIRequestHandler):
            def log_request(self, *a, **k):
                pass

        self.httpd = make_server(host, port, app, threaded=True, ssl_context=ssl_context,
                                 request_handler=Quiet)
        self.host = host
        self.port = self.httpd.server_port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
