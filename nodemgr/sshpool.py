"""SSH connections to hypervisor hosts (Xen dom0, later Oracle VM dom0), one per host, reused.

Built on paramiko (the maintained pure-Python SSH client: exec channels with exit codes and
separate stderr, SFTP, ed25519/RSA keys, known_hosts parsing, no ``ssh`` subprocess per
command). Every connection checks the server's host key against a ``known_hosts`` file the
administrator controls, with paramiko's ``RejectPolicy``: an unknown or changed host key is
an error, never silently trusted (no trust-on-first-use).

A process keeps at most one open connection per (host, port, user); drivers get it with
:func:`connection` and run commands on new channels of the same transport, so a command
over many VMs of one dom0 costs one TCP connection, one key exchange and one login.

What it must never do: accept an unknown host key, put a password in a message, a log or a
command line, or run a command through a shell without quoting its arguments.
"""

from __future__ import annotations

import os
import shlex
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from nodemgr.plugins.base import PermanentError, Unreachable

#: Used when neither the host's settings nor the site give a known_hosts file.
DEFAULT_KNOWN_HOSTS = "/etc/nodemgr/ssh_known_hosts"


class CommandTimeout(Unreachable):
    """A remote command did not finish in time."""


@dataclass(frozen=True)
class Result:
    """Outcome of one remote command: exit code, stdout and stderr as text (UTF-8)."""

    rc: int
    out: str
    err: str


class Connection:
    """One authenticated SSH transport to a host. Thread-safe: each command is a channel."""

    def __init__(self, client, where: str) -> None:
        self._client = client
        self.where = where

    @property
    def alive(self) -> bool:
        """True while the transport is up."""
        t = self._client.get_transport()
        return bool(t and t.is_active())

    def run(self, argv: Sequence[str] | str, *, timeout: float = 60.0,
            stdin: bytes | None = None) -> Result:
        """Run a command on the host and wait for it.

        Args:
            argv: program and arguments (quoted with ``shlex.join``), or a ready command line.
            timeout: seconds for the whole command.
            stdin: bytes written to the command's standard input, then EOF.
        Returns:
            :class:`Result` (a non-zero exit code is not an exception).
        Raises:
            CommandTimeout: no exit status within *timeout*.
            Unreachable: the connection broke.
        """
        cmd = argv if isinstance(argv, str) else shlex.join(argv)
        try:
            chan = self._client.get_transport().open_session(timeout=timeout)
        except Exception as exc:  # paramiko raises SSHException/EOFError/OSError here
            raise Unreachable(f"connection to {self.where} lost: {_text(exc)}") from None
        try:
            chan.settimeout(timeout)
            chan.exec_command(cmd)
            if stdin:
                chan.sendall(stdin)
            chan.shutdown_write()
            out, err = bytearray(), bytearray()
            try:
                while True:  # stdout until EOF, taking stderr as it comes
                    while chan.recv_stderr_ready():
                        err += chan.recv_stderr(65536)
                    chunk = chan.recv(65536)  # blocks up to the timeout
                    if not chunk:
                        break
                    out += chunk
                while True:
                    chunk = chan.recv_stderr(65536)
                    if not chunk:
                        break
                    err += chunk
                if not chan.status_event.wait(timeout):
                    raise TimeoutError
            except TimeoutError:
                raise CommandTimeout(f"'{_short(cmd)}' did not finish within {timeout:g} s "
                                     f"on {self.where}") from None
            rc = chan.recv_exit_status()
            return Result(rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
        finally:
            chan.close()

    def open_pty(self, argv: Sequence[str] | str, *, timeout: float = 30.0,
                 term: str = "vt100", width: int = 80, height: int = 24):
        """Start an interactive command (a serial console) on a pseudo-terminal and return
        its open channel (paramiko ``Channel``: ``recv``/``send``/``exit_status_ready``/
        ``close``; the caller closes it). stdout and stderr come merged, as on a terminal.

        Args:
            argv: program and arguments (quoted with ``shlex.join``), or a command line.
            timeout: seconds to open the channel and start the command.
            term, width, height: the terminal type and size the remote side sees.
        Raises:
            Unreachable: the connection broke.
        """
        cmd = argv if isinstance(argv, str) else shlex.join(argv)
        try:
            chan = self._client.get_transport().open_session(timeout=timeout)
            chan.settimeout(timeout)
            chan.get_pty(term=term, width=width, height=height)
            chan.exec_command(cmd)
        except Exception as exc:  # paramiko raises SSHException/EOFError/OSError here
            raise Unreachable(f"connection to {self.where} lost: {_text(exc)}") from None
        return chan

    def put(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Write *data* to *path* on the host atomically (temp name in the same directory,
        then rename), over SFTP. Raises PermanentError when the host refuses."""
        tmp = f"{os.path.dirname(path) or '.'}/.{os.path.basename(path)}.nodemgr-tmp"
        try:
            with self._client.open_sftp() as sftp:
                with sftp.open(tmp, "wb") as fh:
                    fh.write(data)
                sftp.chmod(tmp, mode)
                sftp.posix_rename(tmp, path)
        except OSError as exc:
            raise PermanentError(f"cannot write {path} on {self.where}: {_text(exc)}") from None

    def get(self, path: str, limit: int = 64 << 20) -> bytes | None:
        """Read the file at *path* on the host over SFTP (at most *limit* bytes; larger →
        PermanentError). Returns None when it does not exist; other refusals raise
        PermanentError."""
        try:
            with self._client.open_sftp() as sftp:
                try:
                    size = sftp.stat(path).st_size or 0
                except FileNotFoundError:
                    return None
                if size > limit:
                    raise PermanentError(f"{path} on {self.where} is larger than "
                                         f"{limit >> 20} MiB")
                with sftp.open(path, "rb") as fh:
                    return fh.read()
        except OSError as exc:
            raise PermanentError(f"cannot read {path} on {self.where}: {_text(exc)}") from None

    def close(self) -> None:
        """Close the transport; never raises."""
        try:
            self._client.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass


def _text(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _short(cmd: str) -> str:
    return cmd if len(cmd) <= 60 else cmd[:57] + "..."


_lock = threading.Lock()
_pool: dict[tuple[str, int, str], Connection] = {}
_host_locks: dict[tuple[str, int, str], threading.Lock] = {}


def connection(host: str, *, port: int = 22, user: str = "root", password: str | None = None,
               key_filename: str | None = None, known_hosts: str | None = None,
               timeout: float = 30.0) -> Connection:
    """The open connection to *user*@*host*:*port*, opened on first use and then reused.

    Args:
        host: address or name of the host.
        port: SSH port.
        user: login name.
        password: password, used when no key is accepted (never logged).
        key_filename: private key file; None tries the agent-less defaults (``~/.ssh/id_*``)
            only when no password is given.
        known_hosts: the administrator's known_hosts file (default
            :data:`DEFAULT_KNOWN_HOSTS`); the host key must be in it.
        timeout: seconds for TCP connect, key exchange and login together.
    Returns:
        A :class:`Connection`.
    Raises:
        Unreachable: no TCP connection / timeout.
        PermanentError: unknown or changed host key, missing known_hosts file, failed login.
    """
    key = (host, int(port), user)
    with _lock:
        hlock = _host_locks.setdefault(key, threading.Lock())
    with hlock:
        conn = _pool.get(key)
        if conn is not None and conn.alive:
            return conn
        conn = _open(host, int(port), user, password, key_filename,
                     known_hosts or DEFAULT_KNOWN_HOSTS, timeout)
        _pool[key] = conn
        return conn


def drop(host: str, port: int = 22, user: str = "root") -> None:
    """Close and forget the pooled connection to *user*@*host*:*port*, if any."""
    conn = _pool.pop((host, int(port), user), None)
    if conn is not None:
        conn.close()


def close_all() -> None:
    """Close every pooled connection (end of a command, tests)."""
    for key in list(_pool):
        drop(*key)


def _open(host: str, port: int, user: str, password: str | None, key_filename: str | None,
          known_hosts: str, timeout: float) -> Connection:
    import paramiko  # lazily: ~60 ms of imports, only for commands that use SSH

    where = f"{user}@{host}" + (f":{port}" if port != 22 else "")
    if not os.path.isfile(known_hosts):
        raise PermanentError(f"known_hosts file {known_hosts} does not exist; put {host}'s "
                             "host key there (ssh-keyscan, then check its fingerprint)")
    if key_filename and not os.path.isfile(key_filename):
        raise PermanentError(f"SSH key file {key_filename} does not exist")
    client = paramiko.SSHClient()
    try:
        client.load_host_keys(known_hosts)
    except (OSError, paramiko.SSHException) as exc:
        raise PermanentError(f"cannot read known_hosts file {known_hosts}: "
                             f"{_text(exc)}") from None
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(host, port, username=user, password=password,
                       key_filename=key_filename, allow_agent=False,
                       look_for_keys=key_filename is None and password is None,
                       timeout=timeout, banner_timeout=timeout, auth_timeout=timeout,
                       channel_timeout=timeout)
    except paramiko.BadHostKeyException:
        client.close()
        raise PermanentError(f"host key of {host} does not match {known_hosts} (possible "
                             "man-in-the-middle); fix the file if the host was reinstalled"
                             ) from None
    except paramiko.AuthenticationException:
        client.close()
        raise PermanentError(f"authentication failed for {where}") from None
    except paramiko.SSHException as exc:
        client.close()
        text = _text(exc)
        if "known_hosts" in text or "not found in" in text:
            raise PermanentError(f"host key of {host} is not in {known_hosts}; add it "
                                 "(ssh-keyscan, then check its fingerprint)") from None
        raise Unreachable(f"SSH to {where} failed: {text}") from None
    except TimeoutError:
        client.close()
        raise Unreachable(f"no SSH answer from {where} within {timeout:g} s") from None
    except OSError as exc:
        client.close()
        raise Unreachable(f"cannot connect to {where}: {_text(exc)}") from None
    return Connection(client, where)
