"""gunicorn settings for nodemgr's web app (install-finished callback, boot files over HTTP).

Run from the checkout:  gunicorn -c etc/gunicorn.conf.py  [--bind 10.0.0.1:8080]
Environment: NODEMGR_WEB_BIND (default 0.0.0.0:8080, the port nodeset's callback URLs use
unless site.callbackurl says otherwise), NODEMGR_WEB_WORKERS (default 2 x CPUs, at most 8),
NODEMGR_DB / NODEMGR_CONF as for every command. No access log by default: a callback URL
carries its one-time token; the app logs one line per callback without it. Set
NODEMGR_WEB_ACCESSLOG=- (or a file) to get an access log: paths only by default, and
NODEMGR_WEB_ACCESSLOG_FORMAT may ask for more (gunicorn's atoms: %(r)s, %(q)s, %(a)s...).
Either way every atom goes through nodemgr.web.accesslog: a token= value is written ***,
control characters (a %0A in a path is a newline by then) as \\xNN, so no line is forged.
"""

import os

_checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

wsgi_app = "nodemgr.web.app:create_app()"
# a checkout's etc/: its nodemgr on the module path; an installed copy (/etc/nodemgr) adds none
if os.path.isfile(os.path.join(_checkout, "nodemgr", "__init__.py")):
    pythonpath = _checkout
bind = [os.environ.get("NODEMGR_WEB_BIND", "0.0.0.0:8080")]
workers = int(os.environ.get("NODEMGR_WEB_WORKERS", min(8, 2 * (os.cpu_count() or 1))))
worker_class = "sync"          # one request at a time per process: one table store each
timeout = 60
graceful_timeout = 10
loglevel = "info"
errorlog = "-"
accesslog = os.environ.get("NODEMGR_WEB_ACCESSLOG") or None
access_log_format = (os.environ.get("NODEMGR_WEB_ACCESSLOG_FORMAT")
                     or '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms')
logger_class = "nodemgr.web.accesslog.AccessLogger"   # token= redacted, controls escaped
proc_name = "nodemgr-web"


def post_worker_init(worker):
    """Send nodemgr's own log lines (one per callback, never a token) to gunicorn's error
    log."""
    import logging

    logger = logging.getLogger("nodemgr")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in worker.log.error_log.handlers:
        logger.addHandler(handler)
