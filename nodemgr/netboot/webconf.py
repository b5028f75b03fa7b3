"""The nginx ``server {}`` file that makes the management node's web side of network boot:
the TFTP tree at ``/tftpboot/`` and the install tree at ``/install/``, read-only, and the
install-finished callbacks proxied to gunicorn. ``makewebconf`` renders it from the
resolved settings (:mod:`nodemgr.settings`), so every URL ``nodeset`` and ``copycds`` write
(``http://<master>[:<httpport>]/tftpboot/...``, ``.../install/...``) is what nginx serves,
whatever ``tftpdir`` and ``installdir`` are. ``etc/nginx/nodemgr.conf`` is the rendering of
the built-in defaults (a test keeps the two equal).

nginx facts the file relies on (Debian nginx-light 1.22, checked by tests/web/test_nginx.py):

* ``location /tftpboot/ { alias <tftpdir>/; }`` — both with a trailing slash (the classic
  ``alias`` traversal needs a location without one). nginx decodes ``%2F``/``%2E`` and
  resolves ``..`` before matching, so no request leaves the location's directory.
* ``disable_symlinks if_not_owner from=$document_root``: the aliases ``nodeset`` writes are
  symlinks inside the tree, owned like their targets, so they are served; a symlink whose
  target has another owner is refused (403); ``from=`` lets ``tftpdir`` itself be or lie
  under a symlink. nginx cannot confine a symlink's target to the tree (nodemgr-tftpd and
  the web app do): a same-owner symlink to a file outside is served.
* no ``autoindex``: a directory is 403, a missing file 404, anything but GET/HEAD 405.
* ``proxy_set_header X-Forwarded-For $remote_addr`` replaces whatever the client sent
  (``$proxy_add_x_forwarded_for`` would append to it); the app believes the header only
  from ``site.callbackproxies``. ``access_log off`` for the callbacks: their query string
  carries a one-time token.
* ``listen <port> default_server`` when no address is given: iPXE and GRUB send
  ``Host: <ip>``, which would otherwise land in Debian's default site. With an address
  (``--listen``) the more specific listen socket wins without ``default_server``.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass

from nodemgr.errors import UsageError
from nodemgr.netboot import files

#: URL paths, fixed: boot files name them whatever the directories are.
TFTP_LOCATION = "/tftpboot/"
INSTALL_LOCATION = "/install/"
#: proxied to the web app: the callbacks, a postscript's failure report, and the answer
#: files (a longer prefix than /install/, so nginx never serves them from disk)
CALLBACK_LOCATIONS = ("/install-finished/", "/xcatrhevh/", "/install-status/",
                      "/install/autoinst/")
DEFAULT_UPSTREAM = "127.0.0.1:8080"

# characters nginx would treat specially in an unquoted argument ($ variables, ; { } # and
# quotes, whitespace) are refused rather than escaped
_SAFE_PATH = re.compile(r"/[A-Za-z0-9._+,:=@%~/-]*\Z")
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?\Z")


@dataclass(frozen=True)
class WebConf:
    """What the server file is rendered from.

    Attributes:
        tftpdir: directory served as ``/tftpboot/`` (absolute).
        installdir: directory served as ``/install/`` (absolute).
        httpport: the port nginx listens on (``site.httpport``).
        listen: address to listen on; None = every address, as ``default_server``.
        upstream: gunicorn's ``host:port`` (or ``unix:/path``) for the callbacks.
    """

    tftpdir: str = "/tftpboot"
    installdir: str = "/install"
    httpport: str = "80"
    listen: str | None = None
    upstream: str = DEFAULT_UPSTREAM


def _dir(value: str | None, setting: str) -> str:
    if not value or not value.startswith("/"):
        raise UsageError(f"{setting} '{value or ''}' must be an absolute path")
    if not _SAFE_PATH.match(value):
        shown = value.encode("unicode_escape").decode("ascii")
        raise UsageError(f"{setting} '{shown}' has characters nginx would misread "
                         "(whitespace, quotes, $ ; {{ }} # \\); use a plain path")
    norm = os.path.normpath(value)
    if norm == "/":
        raise UsageError(f"{setting} '/' would serve the whole file system")
    return norm + "/"


def _port(value: str | None, what: str) -> int:
    try:
        port = int(str(value or "").strip())
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise UsageError(f"{what} '{value or ''}' is not a port number (1-65535)")
    return port


def _host(value: str, what: str) -> str:
    """*value* as nginx wants a host: IPv6 in brackets; raises UsageError if malformed."""
    v = value.strip()
    if v.startswith("[") and v.endswith("]"):
        v = v[1:-1]
    try:
        ip = ipaddress.ip_address(v)
    except ValueError:
        if _HOST.match(v):
            return v
        raise UsageError(f"{what} '{value}' is not an address or host name") from None
    return f"[{ip}]" if ip.version == 6 else str(ip)


def _upstream(value: str) -> str:
    v = value.strip()
    if v.startswith("unix:"):
        path = v[5:]
        if not path.startswith("/") or not _SAFE_PATH.match(path):
            raise UsageError(f"upstream '{value}' is not unix:/<absolute path>")
        return v
    host, sep, port = v.rpartition(":")
    if not sep or not host:
        raise UsageError(f"upstream '{value}' is not <host>:<port> or unix:/<path>")
    return f"{_host(host, 'upstream host')}:{_port(port, 'upstream port')}"


def render(wc: WebConf) -> str:
    """The nginx server file for *wc*.

    Returns:
        The file's text (a ``server { }`` block with a comment header; nothing in it
        depends on anything but *wc*).
    Raises:
        UsageError: a directory is not absolute or has characters nginx would misread, the
            port or the listen address or upstream is malformed, or nginx would listen on
            the upstream's own address and port.
    """
    tftp = _dir(wc.tftpdir, "tftpdir")
    inst = _dir(wc.installdir, "installdir")
    port = _port(wc.httpport, "httpport")
    listen = (f"{_host(wc.listen, 'listen address')}:{port}" if wc.listen
              else f"{port} default_server")
    up = _upstream(wc.upstream)
    up_host, _, up_port = up.rpartition(":")
    if (not up.startswith("unix:") and int(up_port) == port
            and (wc.listen is None or _host(wc.listen, "listen address") == up_host)):
        raise UsageError(f"httpport {port} is the port of the upstream {up} (gunicorn): "
                         "nginx would take gunicorn's port; choose another httpport or "
                         "NODEMGR_WEB_BIND")

    def static(location: str, directory: str, what: str) -> list[str]:
        return [f"    # {what}",
                f"    location {location} {{",
                f"        alias {directory};",
                "        autoindex off;",
                "        disable_symlinks if_not_owner from=$document_root;",
                "    }"]

    def proxied(location: str) -> list[str]:
        return [f"    location {location} {{",
                f"        proxy_pass http://{up};",
                "        proxy_set_header Host $http_host;  # with the port the client used",
                "        proxy_set_header X-Forwarded-For $remote_addr;  # replaced, never appended",
                "        access_log off;  # the query string carries a one-time token",
                "    }"]

    lines = [
        "# nodemgr network boot over HTTP (generated by makewebconf; etc/nginx/nodemgr.conf is",
        "# the rendering of the defaults). Include it from nginx's http block, e.g.",
        "#   makewebconf -o /etc/nginx/conf.d/nodemgr.conf && nginx -t && nginx -s reload",
        "# and render it again after changing tftpdir, installdir or httpport. The app",
        "# believes X-Forwarded-For only from site.callbackproxies:",
        "#   chtab key=callbackproxies site.value=127.0.0.1",
        "server {",
        f"    listen {listen};",
        "    server_name _;",
        "",
        *static(TFTP_LOCATION, tftp, "TFTP root (tftpdir): boot files, kernels and initrds "
                "for iPXE and GRUB2"),
        "",
        *static(INSTALL_LOCATION, inst, "install tree (installdir): installer repositories"),
        "",
        "    # install-finished callbacks, install-status reports and answer files (served to",
        "    # their node only): the web app under gunicorn (etc/gunicorn.conf.py)",
    ]
    for loc in CALLBACK_LOCATIONS:
        lines += proxied(loc)
    lines += ["",
              "    # nothing else",
              "    location / {",
              "        return 404;",
              "    }",
              "}"]
    return "\n".join(lines) + "\n"


def from_settings(store, *, listen: str | None = None, upstream: str = DEFAULT_UPSTREAM,
                  conf=None) -> WebConf:
    """A :class:`WebConf` from the resolved ``tftpdir``, ``installdir`` and ``httpport``
    (:func:`nodemgr.settings.get`) plus *listen* and *upstream*."""
    from nodemgr import settings

    with store.site_cache():
        return WebConf(tftpdir=settings.get(store, "tftpdir", conf),
                       installdir=settings.get(store, "installdir", conf),
                       httpport=settings.get(store, "httpport", conf),
                       listen=listen, upstream=upstream)


def write_atomic(path: str, text: str) -> None:
    """Write *text* to *path* through a temporary file in the same directory + rename,
    mode 0644. Raises OSError."""
    files.write_atomic(path, text, 0o644)
