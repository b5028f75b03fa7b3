"""Writing a generated file so a reader sees the old or the new content, never a part:
write a temporary name in the same directory, then ``os.replace`` (POSIX rename).

Used by makedhcp (which checks the temporary file with ``kea-dhcp4 -t`` / ``dnsmasq
--test`` before the rename) and makewebconf. Boot files have their own staged tree
(:class:`nodemgr.netboot.bootfiles.TftpTree`), renamed only after the tables commit.
"""

from __future__ import annotations

import contextlib
import os
import re


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


#: a staging writer's marker in a directory it writes temporaries into: ``.nodemgr-staging.<pid>``
MARKER = ".nodemgr-staging."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_and_mark(root: str, subdirs=()) -> str:
    """Claim *root* for this process's staged writes: remove the temporary files of every
    writer whose marker is there and whose process is gone (killed between staging and
    publishing), in *root* and its *subdirs* (relative), then create this process's marker.

    Call under the writer lock (:meth:`nodemgr.tables.store.Store.writer_lock`), so no live
    writer's temporaries are touched. Temporary names: ``.<name>.tmp<pid>`` and
    ``.<name>.tmp<pid>-<n>``.

    Returns:
        The marker's path (remove it with :func:`unmark` once published or discarded).
    Raises:
        OSError: *root* cannot be created or written.
    """
    os.makedirs(root, exist_ok=True)
    me = os.getpid()
    for name in os.listdir(root):
        if not name.startswith(MARKER):
            continue
        try:
            pid = int(name[len(MARKER):])
        except ValueError:
            continue
        if pid == me or _alive(pid):
            continue
        pattern = re.compile(rf"^\..+\.tmp{pid}(-\d+)?$")
        for d in ("", *subdirs):
            full = os.path.join(root, d)
            try:
                names = os.listdir(full)
            except OSError:
                continue
            for n in names:
                if pattern.match(n):
                    _unlink(os.path.join(full, n))
        _unlink(os.path.join(root, name))
    marker = os.path.join(root, f"{MARKER}{me}")
    with open(marker, "w"):
        pass
    return marker


def unmark(marker: str | None) -> None:
    """Remove a marker of :func:`sweep_and_mark` (missing is fine)."""
    if marker:
        with contextlib.suppress(OSError):
            os.unlink(marker)


def carry_out(pending) -> list[tuple[str, str, str]]:
    """Carry out staged changes in order: ``(key, temporary path, final path)`` renames and
    ``(key, None, path)`` removals (a missing file is fine).

    Returns:
        ``(key, final path, reason)`` for each change that failed; the others are made
        regardless, and a failed rename's temporary file is removed.
    """
    failed = []
    for key, tmp, path in pending:
        try:
            if tmp is None:
                os.unlink(path)
            else:
                os.replace(tmp, path)
        except FileNotFoundError:
            if tmp is not None:
                failed.append((key, path, "its temporary file vanished"))
        except OSError as exc:
            if tmp is not None:
                _unlink(tmp)
            failed.append((key, path, exc.strerror or str(exc)))
    return failed


class StagedFiles:
    """Files written now under temporary names and put in place later, all together:
    :meth:`publish` after the tables commit, :meth:`discard` if they roll back (the same
    rule as the TFTP tree's boot files, for files outside it: answer files).

    Each change carries a *key* (the node) so a failure can be reported for it.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[str, str | None, str]] = []
        self._dirs: set[str] = set()
        self._markers: list[str] = []

    def write(self, key: str, path: str, text: str, mode: int = 0o600,
              dirmode: int = 0o755) -> None:
        """Write *text* to a temporary name beside *path* now (creating the directory
        with *dirmode*); *path* gets it at :meth:`publish`. Raises OSError (nothing
        pending for it)."""
        self.claim(os.path.dirname(path), dirmode)
        self._pending.append((key, write_temp(path, text, mode), path))

    def claim(self, d: str, dirmode: int = 0o755) -> None:
        """Under the writer lock: create directory *d* if missing, remove a killed writer's
        temporaries there (:func:`sweep_and_mark`) and mark it until :meth:`publish` or
        :meth:`discard`. Idempotent."""
        if d not in self._dirs:
            os.makedirs(d, mode=dirmode, exist_ok=True)
            self._markers.append(sweep_and_mark(d))
            self._dirs.add(d)

    def claimed(self, d: str) -> bool:
        """True once :meth:`claim` ran for *d* (until published or discarded)."""
        return d in self._dirs

    def remove(self, key: str, path: str) -> None:
        """Remove *path* at :meth:`publish` (a missing file is fine)."""
        self._pending.append((key, None, path))

    def publish(self) -> list[tuple[str, str, str]]:
        """Carry out the pending changes in order. Returns ``(key, path, reason)`` for each
        that failed (its temporary file removed)."""
        pending, self._pending = self._pending, []
        failed = carry_out(pending)
        self._unmark()
        return failed

    def _unmark(self) -> None:
        markers, self._markers, self._dirs = self._markers, [], set()
        for m in markers:
            unmark(m)

    def discard(self) -> None:
        """Drop every pending change, removing the temporary files."""
        pending, self._pending = self._pending, []
        for _key, tmp, _path in pending:
            if tmp is not None:
                _unlink(tmp)
        self._unmark()
