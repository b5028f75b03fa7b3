"""Configuration: where the tables live and the few settings needed before they are open.

Lookup order for the file: ``$NODEMGR_CONF``, ``/etc/nodemgr/nodemgr.conf``, then
``etc/nodemgr.conf`` in the checkout. The database URL can be overridden by ``$NODEMGR_DB``.
Every other key seeds the ``site`` table of a new database; once there, the table wins
(:mod:`nodemgr.settings` is the one resolution every part uses).
This module must stay import-cheap: standard library only.
"""

from __future__ import annotations

import configparser
import os
from collections import namedtuple

from nodemgr.errors import ConfigError

CHECKOUT_CONF = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))),
                             "etc", "nodemgr.conf")
SYSTEM_CONF = "/etc/nodemgr/nodemgr.conf"
DEFAULT_DB_URL = "sqlite:////var/lib/nodemgr/nodemgr.sqlite"


_Config = namedtuple("Config", "db_url tftpdir installdir source site_seed")


class Config(_Config):
    """Settings read at start-up (immutable; a named tuple, not a dataclass: ``dataclasses``
    imports ``inspect``, ~10 ms of every command's cold start).

    Attributes:
        db_url: database URL, ``sqlite:///relative``, ``sqlite:////absolute`` or
            ``postgresql://user[:password]@host[:port]/dbname``.
        tftpdir: TFTP root (xCAT ``site.tftpdir``), default ``/tftpboot``.
        installdir: install tree root (``site.installdir``), default ``/install``.
        source: the file the settings came from, or ``None`` for built-in defaults.
        site_seed: every other ``[nodemgr]`` key of the file (``tftpdir``, ``master``, ...):
            the rows a new database's ``site`` table starts with, and the fallback of
            :func:`nodemgr.settings.lookup` while the table has no such row.
    """

    __slots__ = ()

    def __new__(cls, db_url: str = DEFAULT_DB_URL, tftpdir: str = "/tftpboot",
                installdir: str = "/install", source: str | None = None,
                site_seed: dict[str, str] | None = None):
        return super().__new__(cls, db_url, tftpdir, installdir, source,
                               {} if site_seed is None else site_seed)


def conf_path() -> str | None:
    """Return the configuration file in effect, or None when none exists."""
    env = os.environ.get("NODEMGR_CONF")
    if env:
        return env
    for candidate in (SYSTEM_CONF, CHECKOUT_CONF):
        if os.path.isfile(candidate):
            return candidate
    return None


def load() -> Config:
    """Read the configuration file (if any) and apply ``$NODEMGR_DB``.

    Returns:
        A :class:`Config`.
    Raises:
        ConfigError: the file named by ``$NODEMGR_CONF`` is missing or malformed.
    """
    path = conf_path()
    values: dict[str, str] = {}
    if path is not None:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            with open(path, encoding="utf-8") as fh:
                parser.read_file(fh)
        except (OSError, configparser.Error) as exc:
            raise ConfigError(f"cannot read configuration {path}: {exc}") from None
        if parser.has_section("nodemgr"):
            values = dict(parser.items("nodemgr"))
    db_url = os.environ.get("NODEMGR_DB") or values.get("db") or DEFAULT_DB_URL
    return Config(
        db_url=db_url,
        tftpdir=values.get("tftpdir", "/tftpboot"),
        installdir=values.get("installdir", "/install"),
        source=str(path) if path else None,
        site_seed={k: v for k, v in values.items() if k != "db" and v},
    )
