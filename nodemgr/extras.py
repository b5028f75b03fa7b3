"""Optional libraries: which extra of pyproject.toml brings each one, and the one line a
command prints when one is missing.

``pip install nodemgr`` brings only the core dependency (``regex``); drivers, PostgreSQL,
network boot and the web app need an extra (``pip install 'nodemgr[netboot]'``). A command
that reaches a missing library stops with ``Error: copycds needs pycdlib: pip install
'nodemgr[netboot]'`` (``nodemgr.cli.common.main_wrapper`` asks :func:`missing_message`),
never with a ``ModuleNotFoundError`` traceback.

The table is data here because an installed package has no pyproject.toml to read;
tests/test_packaging.py checks that it agrees with pyproject's
``[project.optional-dependencies]`` and that every library nodemgr imports is in it. Nothing
here is imported on a command's normal path: only when an import has already failed.
"""

from __future__ import annotations

import types

#: extra -> import names of its libraries, in pyproject.toml's order
EXTRAS: dict[str, tuple[str, ...]] = {
    "libvirt": ("libvirt",),
    "postgresql": ("psycopg",),
    "test": ("pytest", "hypothesis", "ruff", "pykickstart"),
    "xen": ("paramiko",),
    "snmp": ("pysnmp",),
    "snmptest": ("snmpsim", "pysmi"),
    "netboot": ("tftpy", "flask", "gunicorn", "requests", "pycdlib", "tqdm", "psutil", "jinja2"),
    "rhevm": ("requests",),
    "ovirtsim": ("flask", "cryptography"),
    "ovm": ("zeep", "lxml", "requests", "paramiko", "pycdlib"),
    "ovmsim": ("flask", "lxml", "cryptography"),
}

#: distribution name -> import name, where the two differ
IMPORT_NAMES = {"libvirt-python": "libvirt"}

#: the core dependencies' import names (``pip install nodemgr`` brings them)
CORE = ("regex",)

#: modules that come with a listed library: missing, they mean that library is missing
BROUGHT_BY = {"werkzeug": "flask", "urllib3": "requests", "markupsafe": "jinja2"}

#: extras for the test suite and the simulators: named only when no other extra has it
SUPPORT = ("test", "snmptest", "ovirtsim", "ovmsim")

#: nodemgr module (prefix) -> the extra its imports belong to, when a library is in
#: several extras (paramiko: xen and ovm; requests: netboot, rhevm and ovm)
IMPORTERS = {
    "nodemgr.plugins.xen": "xen",
    "nodemgr.plugins.ovm": "ovm",
    "nodemgr.plugins.rhevm": "rhevm",
    "nodemgr.plugins.libvirt": "libvirt",
    "nodemgr.snmp": "snmp",
    "nodemgr.tables.store": "postgresql",
    "nodemgr.netboot": "netboot",
    "nodemgr.web": "netboot",
}


def extras_of(module: str) -> list[str]:
    """The extras that bring top-level module *module*: pyproject's order, SUPPORT last."""
    module = BROUGHT_BY.get(module, module)
    found = [extra for extra, mods in EXTRAS.items() if module in mods]
    return sorted(found, key=lambda extra: extra in SUPPORT)


def missing_module(exc: BaseException) -> ModuleNotFoundError | None:
    """The ModuleNotFoundError of a library outside nodemgr behind *exc*: *exc* itself, or
    the error it was raised from or while handling (a command's own ``except ImportError:
    raise ConfigError(...)``). None when there is none: a missing ``nodemgr.*`` module is a
    broken install or a bug, and keeps its traceback."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, ModuleNotFoundError):
            name = exc.name or ""
            if name and name.split(".")[0] != "nodemgr":
                return exc
            return None
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def _importers(tb: types.TracebackType | None) -> list[str]:
    """The ``__name__`` of each frame in *tb*, innermost first."""
    names = []
    while tb is not None:
        names.append(tb.tb_frame.f_globals.get("__name__", ""))
        tb = tb.tb_next
    return names[::-1]


def missing_message(command: str, exc: BaseException) -> str | None:
    """``copycds needs pycdlib: pip install 'nodemgr[netboot]'`` for an *exc* that is (or
    was raised from) a missing library; None for any other exception."""
    err = missing_module(exc)
    if err is None:
        return None
    module = err.name.split(".")[0]
    if module in CORE:
        return f"{command} needs {module}: pip install {module} (a dependency of nodemgr)"
    candidates = extras_of(module)
    if not candidates:
        return f"{command} needs {module}, which is not installed"
    extra = candidates[0]
    for name in _importers(err.__traceback__):
        chosen = next((e for prefix, e in IMPORTERS.items()
                       if (name == prefix or name.startswith(prefix + ".")
                           or name.startswith(prefix + "_")) and e in candidates), None)
        if chosen:
            extra = chosen
            break
    return f"{command} needs {module}: pip install 'nodemgr[{extra}]'"
