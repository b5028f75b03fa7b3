"""Writing a generated file so a reader sees the old or the new content, never a part:
write a temporary name in the same directory, then ``os.replace`` (POSIX rename).

Used by makedhcp (which checks the temporary file with ``kea-dhcp4 -t`` / ``dnsmasq
--test`` before the rename) and makewebconf. Boot files have their own staged tree
(:class:`nodemgr.netboot.bootfiles.TftpTree`), renamed only after the tables commit.
"""

from __future__ import annotations

import os


def temp_name(path: str) -> str:
    """``<dir>/.<name>.tmp<pid>``: hidden, in *path*'s directory (same file system)."""
    d, base = os.path.split(os.path.abspath(path))
    return os.path.join(d, f".{base}.tmp{os.getpid()}")


def write_temp(path: str, text: str, mode: int | None = None) -> str:
    """Write *text* (UTF-8) to :func:`temp_name` of *path* and return that name; the
    caller renames it over *path* with ``os.replace`` (or removes it).

    Args:
        mode: permission bits; None = those of the existing *path*, else 0644.
    Raises:
        OSError: the directory is missing or not writable (the temporary file is removed).
    """
    if mode is None:
        try:
            mode = os.stat(path).st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o644
    tmp = temp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)
        data = text.encode("utf-8")
        while data:
            data = data[os.write(fd, data):]
    except BaseException:
        os.close(fd)
        _unlink(tmp)
        raise
    os.close(fd)
    return tmp


def write_atomic(path: str, text: str, mode: int | None = None) -> None:
    """:func:`write_temp` then rename over *path*. Raises OSError (nothing replaced)."""
    tmp = write_temp(path, text, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
