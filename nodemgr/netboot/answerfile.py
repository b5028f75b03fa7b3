"""Answer files (kickstart, preseed) rendered from Jinja2 templates, one per node.

``nodeset`` renders one answer file per node it arms for an install, under
``<installdir>/autoinst/<node>`` (mode 0600; the web app serves it only to that node), and
puts its URL on the boot line (``inst.ks=`` for anaconda, ``url=`` for debian-installer).

**Engine.** Jinja2's :class:`~jinja2.sandbox.SandboxedEnvironment` with
:class:`~jinja2.StrictUndefined` (a name missing from the context is an error naming the
template and line, never an empty string), ``trim_blocks``/``lstrip_blocks`` and
``keep_trailing_newline``. Filters beyond Jinja2's own: ``sh`` (``shlex.quote``),
``exports`` (a mapping as ``export K='v'`` lines) and ``comment`` (prefix every line with
``"#> "``: how a preseed carries the post-install script, see :data:`POST_BEGIN`). A template is compiled once per :class:`Renderer`
(one ``nodeset`` call), not once per node.

**Lookup** (xCAT ``SvrUtils::get_file_name``): ``linuximage.template`` when set (an
absolute path, or relative to the search path); else in each directory of the search path
— the site directory ``<templatedir>/<platform>/`` (setting ``templatedir``, default
``<installdir>/custom/install``) first, then the shipped ``nodemgr/share/install/<platform>/``
— the first readable of ``<profile>.<os>.<arch>.tmpl``, ``<profile>.<osbase>.<arch>.tmpl``,
``<profile>.<genos>.<arch>.tmpl``, ``<profile>.<os>.tmpl``, ``<profile>.<osbase>.tmpl``,
``<profile>.<genos>.tmpl``, ``<profile>.<arch>.tmpl``, ``<profile>.tmpl``, where *os* is
``osimage.osvers`` (``rocky9.2``), *osbase* drops its last ``.<n>`` (``rocky9``) and
*genos* is the RHEL release a clone follows (``rhels9``; for other families *osbase*).
Platforms: ``rh`` (rhels, centos, rocky, alma, ol, fedora), ``debian``, ``rhvh``
(RHV-H / oVirt Node 4, a kickstart with ``liveimg``). Other OS families (``rhevh`` 3.x,
which takes kernel arguments; Xen installers; test images) have no answer file unless
``linuximage.template`` names one.

**Context** — one dict, built by ``nodeset`` from the tables (templates never read tables;
every key is always present, possibly ``None`` or empty):

=================== =====================================================================
``node``            node name (``n1``); also ``hostname``
``domain``          ``site.domain`` (may be empty); ``fqdn`` = ``node.domain`` or ``node``
``ip``              ``hosts.ip`` or None
``mac``             install MAC, lower case with colons
``network``         the node's ``networks`` row: ``net``, ``mask`` (dotted), ``gateway``
                    (None when unset; ``<xcatmaster>`` becomes ``master``), ``nameservers``
                    (list; ``<xcatmaster>`` likewise), ``mtu`` (str or None), ``name`` —
                    or None when the node is on no row
``master``          the management node's address as the node sees it
``http``            web server base URL, ``http://<server>[:<httpport>]`` (port left out at 80)
``install_url``     ``<http>/install``; ``postscripts_url`` = ``<install_url>/postscripts``
``answer_url``      this file's own URL, ``<install_url>/autoinst/<node>``
``repo``            the OS repository URL (``linuximage.pkgdir``'s first entry served
                    under ``/install``, else ``<install_url>/<osvers>/<arch>``)
``osvers``          ``osimage.osvers``; ``arch``, ``profile``, ``imagename``; ``platform``
``partition``       text of ``linuximage.partitionfile`` (kickstart ``part`` lines, a
                    preseed ``partman`` recipe), or None (the template's default layout)
``rootpw_hash``     crypted root password from ``passwd`` key ``system`` user ``root``
                    (``$6$...``/``$5$``/``$y$``/``$1$``; a clear value is refused)
``timezone``        ``site.timezone``, default ``UTC``
``kernel_options``  the installed system's extra kernel arguments: the ``R::`` parts of
                    ``linuximage.addkcmdline`` and ``bootparams.addkcmdline`` (xCAT)
``callback_url``    the install-finished URL with the node's one-time token
``status_url``      ``POST`` target for a failed postscript (same token), body
                    ``status=failed&script=<name>``
``postscripts``     ordered names from the ``postscripts`` table (row ``xcatdefaults``
                    first, then the node's groups and the node, duplicates dropped);
                    ``postbootscripts`` likewise (run at first boot)
``env``             the postscripts' environment (xCAT's names): ``NODE``, ``MASTER``,
                    ``NODEIP`` (``hosts.ip``, may be empty), ``OSVER``, ``ARCH``,
                    ``PROFILE``, ``PROVMETHOD`` (image name),
                    ``DOMAIN``, ``TIMEZONE``, ``INSTALLDIR``, ``NODESETSTATE``
                    (``install``), ``POSTSCRIPTS_URL``, ``MN_SSH_PUBKEY`` (text of the
                    file named by setting ``sshpubkey``, empty when absent)
=================== =====================================================================

**Post-install section.** Every shipped template wraps its post-install script (POSIX
``sh``) between the lines :data:`POST_BEGIN` and :data:`POST_END`; a preseed carries the
lines commented with ``"#> "``. :data:`EXTRACT_SH` is the shell that extracts it (the
preseed's ``late_command`` and the test guest use it).

This module must never read a table, never print and never log a rendered file (it holds
a password hash and a token).
"""

from __future__ import annotations

import os
import re
import shlex

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from nodemgr.errors import NodemgrError

#: The shipped templates: ``<here>/../share/install/<platform>/``.
SHIPPED_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "share", "install")
#: The shipped postscripts, copied into ``<installdir>/postscripts/`` by ``mknb``.
SHIPPED_POSTSCRIPTS = os.path.join(os.path.dirname(SHIPPED_DIR), "postscripts")
POST_BEGIN = "#nodemgr:post-begin"
POST_END = "#nodemgr:post-end"
#: sed program printing the post-install section of an answer file on stdin (markers
#: dropped, a leading ``"#> "`` or ``"#>"`` removed). No backslash and no ``'``: a preseed
#: carries it in ``late_command`` through debconf, whose readers may eat backslashes.
EXTRACT_SED = (f"/^{POST_BEGIN}/,/^{POST_END}/{{/^{POST_BEGIN}/d;/^{POST_END}/d;"
               "s/^#> //;s/^#>//;p}")
EXTRACT_SH = f"sed -n '{EXTRACT_SED}'"


class TemplateError(NodemgrError):
    """A template is missing, malformed or uses a value the context lacks."""


def _comment(text: str, prefix: str = "#> ") -> str:
    """Every line of *text* prefixed (an empty line gets the prefix without its blank); a
    final newline stays a newline."""
    text = str(text)
    end = "\n" if text.endswith("\n") else ""
    body = text[:-1] if end else text
    return "\n".join(prefix + line if line else prefix.rstrip()
                     for line in body.split("\n")) + end


def _exports(values) -> str:
    """``export K='v'`` lines (shell-quoted values, no final newline) of a mapping whose
    keys are shell names; one filter call instead of a loop (a loop's pieces cost a
    generator step each, per node)."""
    values = dict(values)
    keys = tuple(values)
    if keys not in _NAMES_OK:
        for k in keys:
            if not _SHELL_NAME.match(str(k)):
                raise TemplateError(f"exports: {k!r} is not a shell variable name")
        _NAMES_OK.add(keys)
    q = shlex.quote
    return "\n".join(f"export {k}={q('' if v is None else str(v))}" for k, v in values.items())


_SHELL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAMES_OK: set[tuple] = set()


def environment(search_path: list[str]) -> SandboxedEnvironment:
    """The Jinja2 environment of answer files.

    Args:
        search_path: directories ``{% include %}`` and template names are looked up in,
            first match wins (site directory first, then :data:`SHIPPED_DIR`).
    Returns:
        A sandboxed, strict environment with the ``sh`` and ``comment`` filters.
    """
    env = SandboxedEnvironment(loader=jinja2.FileSystemLoader(search_path),
                               undefined=jinja2.StrictUndefined, trim_blocks=True,
                               lstrip_blocks=True, keep_trailing_newline=True,
                               autoescape=False, auto_reload=False)  # one nodeset call
    env.filters["sh"] = lambda v: shlex.quote("" if v is None else str(v))
    env.filters["comment"] = _comment
    env.filters["exports"] = _exports
    return env


def _where(exc: Exception, name: str) -> str:
    line = getattr(exc, "lineno", None)
    fname = getattr(exc, "filename", None) or getattr(exc, "name", None) or name
    return f"{fname}, line {line}" if line else fname


def render_file(path: str, context: dict, search_path: list[str] | None = None) -> str:
    """Render the template file *path* with *context* (one-off; :class:`Renderer` caches).

    Args:
        path: template file path.
        context: see the module docstring.
        search_path: directories ``{% include %}`` names are relative to (the parents of
            the platform directories); :data:`SHIPPED_DIR` is always searched last.
    Returns:
        The rendered text.
    Raises:
        TemplateError: syntax error or undefined value (names template and line).
    """
    return Renderer(search_path).render(path, context)


class Renderer:
    """Compiles each template once and renders it for many nodes (one ``nodeset`` call).

    Args:
        search_path: directories for ``{% include %}`` (site first, shipped last); default
            ``[SHIPPED_DIR]``.
    """

    def __init__(self, search_path: list[str] | None = None) -> None:
        self.search_path = list(search_path or []) + [SHIPPED_DIR]
        self.env = environment(self.search_path)
        self._compiled: dict[str, jinja2.Template | TemplateError] = {}

    def template(self, path: str) -> jinja2.Template:
        """The compiled template of file *path*. Raises TemplateError (cached too)."""
        hit = self._compiled.get(path)
        if hit is None:
            try:
                with open(path, encoding="utf-8") as f:
                    source = f.read()
                code = self.env.compile(source, name=os.path.basename(path), filename=path)
                hit = self.env.template_class.from_code(self.env, code,
                                                        self.env.make_globals(None))
            except OSError as exc:
                hit = TemplateError(f"template {path}: {exc.strerror or exc}")
            except jinja2.TemplateSyntaxError as exc:
                hit = TemplateError(f"template {_where(exc, path)}: {_one_line(exc.message)}")
            self._compiled[path] = hit
        if isinstance(hit, TemplateError):
            raise hit
        return hit

    def render(self, path: str, context: dict) -> str:
        """Render *path* with *context*. Raises TemplateError naming template and line."""
        tmpl = self.template(path)
        try:
            return tmpl.render(context)
        except jinja2.TemplateError as exc:
            raise TemplateError(f"template {_render_where(exc, path)}: "
                                f"{_one_line(getattr(exc, 'message', None) or exc)}") from None


def _one_line(text) -> str:
    return " ".join(str(text).split())


def _render_where(exc: Exception, path: str) -> str:
    """'<file>, line N' of a render-time error, from the traceback's template frames."""
    import traceback

    tb = exc.__traceback__
    where = path
    for frame, lineno in traceback.walk_tb(tb):
        fname = frame.f_code.co_filename
        if not fname.endswith(".py") and not fname.startswith("<"):
            where = f"{fname}, line {lineno}"
    return where
