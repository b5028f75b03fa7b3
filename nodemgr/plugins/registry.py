"""Find a hypervisor driver class by name.

Drivers are declared in the ``nodemgr.plugins`` entry-point group, so a site adds one by
installing a package; nothing here needs editing. The built-in names (``libvirt``, ``kvm``,
``fake``) are imported directly: scanning entry points needs ``importlib.metadata``, whose
import alone costs ~35 ms on a 2-core machine, and the commands must start in ≤150 ms.
Entry points are scanned only for a name that is not built in, once per process.

This module must never instantiate or connect a driver; it only finds classes.
"""

from __future__ import annotations

import importlib
import threading

from nodemgr.plugins.base import NO_PLUGIN, HypervisorDriver, PermanentError, Traits

GROUP = "nodemgr.plugins"


#: name -> (module, class) imported without scanning entry points. Keep in step with
#: ``[project.entry-points."nodemgr.plugins"]`` in pyproject.toml (a test checks it).
BUILTIN: dict[str, tuple[str, str]] = {
    "libvirt": ("nodemgr.plugins.libvirt", "LibvirtDriver"),
    "kvm": ("nodemgr.plugins.libvirt", "LibvirtDriver"),
    "fake": ("nodemgr.plugins.fake", "FakeDriver"),
    "rhevm": ("nodemgr.plugins.rhevm", "RhevmDriver"),
    "xen": ("nodemgr.plugins.xen", "XenDriver"),
    "ovm": ("nodemgr.plugins.ovm", "OvmDriver"),
    "vbox": ("nodemgr.plugins.vbox", "VboxDriver"),
}

_cache: dict[str, type[HypervisorDriver]] = {}
_lock = threading.Lock()


class UnknownDriver(PermanentError):
    """No driver of that name: xCAT's "Unable to identify plugin" message plus the name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{NO_PLUGIN} (no driver named {name!r})" if name else NO_PLUGIN)
        self.name = name


def register(name: str, cls: type[HypervisorDriver]) -> None:
    """Make *cls* the driver for *name* in this process (tests, embedding)."""
    with _lock:
        _cache[name] = cls


def load_driver(name: str) -> type[HypervisorDriver]:
    """The driver class registered as *name*.

    Args:
        name: entry-point name (``nodehm.mgt`` / ``nodehm.power`` value), e.g. ``kvm``.
    Returns:
        A :class:`HypervisorDriver` subclass (cached per process).
    Raises:
        UnknownDriver: no such name.
        PermanentError: the driver's module cannot be imported (missing dependency) or the
            entry point does not name a HypervisorDriver subclass.
    """
    cls = _cache.get(name)
    if cls is not None:
        return cls
    with _lock:
        cls = _cache.get(name)
        if cls is None:
            cls = _load(name)
            _cache[name] = cls
    return cls


def _load(name: str) -> type[HypervisorDriver]:
    if not name:
        raise UnknownDriver(name)
    if name in BUILTIN:
        module, attr = BUILTIN[name]
        try:
            obj = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise PermanentError(f"driver {name} cannot be loaded: {exc}") from None
    else:
        ep = _entry_points().get(name)
        if ep is None:
            raise UnknownDriver(name)
        try:
            obj = ep.load()
        except Exception as exc:  # a site plugin may fail in any way on import
            raise PermanentError(f"driver {name} cannot be loaded: "
                                 f"{type(exc).__name__}: {exc}") from None
    if not (isinstance(obj, type) and issubclass(obj, HypervisorDriver)):
        raise PermanentError(f"driver {name} ({obj!r}) is not a HypervisorDriver")
    return obj


_eps: dict | None = None


def _entry_points() -> dict:
    """name -> EntryPoint for the group, scanned once (first name wins)."""
    global _eps
    if _eps is None:
        from importlib.metadata import entry_points

        found: dict = {}
        for ep in entry_points(group=GROUP):
            found.setdefault(ep.name, ep)
        _eps = found
    return _eps


def traits(name: str) -> Traits:
    """The :class:`Traits` of driver *name*.

    A built-in driver package may declare ``TRAITS`` in its ``__init__`` so the traits
    are known without importing the driver's libraries (start-up cost); otherwise the
    class is loaded and its ``traits`` attribute read. Raises UnknownDriver /
    PermanentError as :func:`load_driver`.
    """
    found = _traits.get(name)
    if found is None:
        found = None
        if name in BUILTIN:
            try:
                found = getattr(importlib.import_module(BUILTIN[name][0]), "TRAITS", None)
            except ImportError:
                found = None
        if found is None:
            found = load_driver(name).traits
        _traits[name] = found
    return found


_traits: dict[str, Traits] = {}


def for_host_type(vtype: str) -> str | None:
    """The driver name managing hosts of ``hypervisor.type`` *vtype* (the first built-in
    whose :attr:`Traits.host_types` lists it, then installed entry points), or None."""
    for names in (lambda: BUILTIN, lambda: [n for n in available() if n not in BUILTIN]):
        for name in names():  # entry points are scanned only when no built-in matches
            try:
                if vtype in traits(name).host_types:
                    return name
            except PermanentError:
                continue
    return None


def available() -> list[str]:
    """Every driver name: built-ins plus installed entry points, sorted."""
    return sorted(set(BUILTIN) | set(_entry_points()))
