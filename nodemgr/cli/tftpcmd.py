"""``nodemgr-tftpd``: run the read-only TFTP server (nodemgr.netboot.tftp) in the foreground.

A thin command: options → :class:`nodemgr.netboot.tftp.Server`, one or more worker
processes sharing the port (``SO_REUSEPORT``), each under the restart loop. With several
workers the parent only supervises: it restarts a worker that dies (with backoff and a log
line) and on SIGTERM/SIGINT stops them all. It must never daemonize itself (systemd or the
caller supervises it) nor log per packet.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time

from nodemgr.cli.common import main_wrapper, parser
from nodemgr.errors import UsageError

EPILOG = """\
The root is served read-only: write requests, '..', absolute paths and symlinks leading
out of the root are refused. Options blksize (8-65464), tsize and timeout (1-255 s) are
negotiated (RFC 2347-2349). One log line per transfer goes to stderr; a failing transfer
never stops the server, and the receive loop restarts itself if it ever fails. With
--workers N > 1 the parent process supervises N workers: one that dies is restarted
(after 0.1 s, doubling up to 5 s while it keeps dying young) and logged; SIGTERM to the
parent stops every worker.

Without --root the root is the tftpdir setting (site table, else the configuration file,
else /tftpboot; `nodemgr-config` shows which), resolved at start and again on SIGHUP (sent to
the parent, which resolves it once and hands it to every worker): transfers started after
the signal use the new root.
Without --address the tftpaddress setting is used (default 0.0.0.0).

--user NAME (start as root): the port is bound (one socket per worker, kept by the parent
for restarts) and the settings' store opened as root, then every process becomes NAME and
its primary group for good (no supplementary groups; it refuses to start if NAME does not
exist, is root, or root could be regained). The root's files must be readable by NAME;
a file only root can read is refused (Access violation). SIGHUP still re-reads tftpdir:
through the store opened before the drop (the database stays root's 0600 file).

examples:
  nodemgr-tftpd                                    # site.tftpdir on site.tftpaddress:69
  kill -HUP $(pgrep -of nodemgr-tftpd)             # after chtab key=tftpdir site.value=...
  nodemgr-tftpd --root /srv/tftp --address 10.0.0.1
  nodemgr-tftpd --port 6969 --workers 2 --quiet
  nodemgr-tftpd --user nodemgr-tftp                # as the systemd unit runs it

systemd: etc/systemd/nodemgr-tftpd.service (Restart=always).

exit status:
  0  stopped by SIGTERM/SIGINT
  1  bad option, missing root, the address cannot be bound, or --user cannot be used
"""


@main_wrapper
def main(argv: list[str]) -> int:
    """Entry point of ``nodemgr-tftpd``."""
    ap = parser("nodemgr-tftpd", "Serve the TFTP root read-only to PXE clients.", EPILOG)
    ap.add_argument("--root", help="directory to serve (default: the tftpdir setting, "
                    "re-read on SIGHUP)")
    ap.add_argument("--address", help="IPv4 address to listen on (default: the "
                    "tftpaddress setting, 0.0.0.0)")
    ap.add_argument("--port", type=int, default=69, help="UDP port (default 69)")
    ap.add_argument("--timeout", type=float, default=2.0, help="seconds before a packet "
                    "is resent (default 2; a client's timeout option wins)")
    ap.add_argument("--retries", type=int, default=5, help="resends before a transfer "
                    "is abandoned (default 5)")
    ap.add_argument("--workers", type=int, default=min(8, 2 * (os.cpu_count() or 1)),
                    help="processes sharing the port (default: 2 per CPU, at most 8)")
    ap.add_argument("--user", help="start as root, bind the port and open the settings, "
                    "then run as this user and its group (no other groups) for good")
    ap.add_argument("--quiet", action="store_true", help="log failures only, not every "
                    "transfer")
    a = ap.parse_args(argv)
    if not 0 <= a.port <= 65535:
        raise UsageError(f"invalid port {a.port}")
    if a.workers < 1 or a.workers > 64:
        raise UsageError(f"invalid number of workers {a.workers} (1-64)")
    account = _account(a.user) if a.user is not None else None
    root = a.root
    reader = None
    if root is None or a.address is None:
        # a server that drops root keeps this store open: the database is root's 0600 file
        reader = _Settings(keep_open=account is not None and a.root is None)
        root_setting, address_setting = reader.get()
        root = root if root is not None else root_setting
        a.address = a.address if a.address is not None else address_setting
        if a.root is not None:
            reader.close()
            reader = None
    if not os.path.isdir(root):
        raise UsageError(f"TFTP root {root} is not a directory")

    from nodemgr.netboot import tftp

    _raise_nofile()
    logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(message)s",
                        level=logging.WARNING if a.quiet else logging.INFO)
    tftp.quiet_tftpy()
    server = tftp.Server(root, a.address, a.port, timeout=a.timeout, retries=a.retries,
                         reuse_port=a.workers > 1)
    socks = []
    try:
        server.bind()
        socks.append(server.sock)
        # one socket per worker, bound now (port 69 and SO_REUSEPORT's same-user rule need
        # the start's identity) and kept by the parent: a restarted worker takes its slot's
        socks += [server.open_socket() for _ in range(a.workers - 1)]
    except OSError as exc:
        for sock in socks:
            sock.close()
        raise UsageError(f"cannot listen on {a.address}:{a.port}: {exc.strerror}") from None
    log = logging.getLogger("nodemgr.tftp")
    if account is not None:
        _drop_privileges(account)
        log.info("tftp: running as user %s (uid %d, gid %d)", account.pw_name,
                 account.pw_uid, account.pw_gid)
    if a.workers == 1:
        if reader is not None:
            signal.signal(signal.SIGHUP, lambda signum, frame: _reload_root(server, log,
                                                                            reader))
        else:
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, lambda signum, frame: server.stop())
        signal.signal(signal.SIGINT, lambda signum, frame: server.stop())
        log.info("tftp: serving %s on %s:%d", server.root, a.address, server.port)
        tftp.serve_forever(server)
        server.close()
        return 0
    return _supervise(server, socks, log, reader)


def _account(name: str):
    """The passwd entry of ``--user``: it must exist, not be root, and we must be root."""
    import pwd

    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise UsageError(f"--user {name}: no such user") from None
    if entry.pw_uid == 0:
        raise UsageError(f"--user {name}: that is root (give an unprivileged user)")
    if os.geteuid() != 0:
        raise UsageError(f"--user {name} needs to be started as root (it binds the port "
                         "and opens the settings, then drops to the user)")
    return entry


def _drop_privileges(entry) -> None:
    """Become *entry*'s user and group for good (real, effective and saved ids; no
    supplementary groups). Refuses to go on if anything of root is left.

    What the server loads lazily is loaded first: the user may not be able to read the
    interpreter's library (a Python under /root), and a worker must not fail on its first
    packet (``sendto`` to a host name needs the ``idna`` codec) or at its start (ctypes)."""
    import encodings.idna  # noqa: F401 - preloaded, see above

    _libc()
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    if (os.getresuid() != (entry.pw_uid,) * 3 or os.getresgid() != (entry.pw_gid,) * 3
            or os.getgroups() not in ([], [entry.pw_gid])):
        raise UsageError(f"could not drop to user {entry.pw_name}")
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise UsageError(f"still able to become root after dropping to {entry.pw_name}")


def _raise_nofile() -> None:
    """Soft descriptor limit up to the hard one (at most 65536): each transfer holds a
    socket and a file, and a worker keeps up to tftp.MAX_SESSIONS of them."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class _Settings:
    """(tftpdir, tftpaddress) as :mod:`nodemgr.settings` resolves them, read at start and
    again on SIGHUP. Without *keep_open* each read opens a fresh store. With it (a server
    that drops root), the store opened now, still as root, stays open for the SIGHUP
    reads: after the drop the user cannot open the database (root's file, mode 0600);
    if that store fails, a fresh one is tried (a PostgreSQL URL with a password works)."""

    def __init__(self, keep_open: bool) -> None:
        from nodemgr import config
        from nodemgr.tables.store import Store

        self.conf = config.load()
        self.held = Store(self.conf.db_url) if keep_open else None

    def get(self) -> tuple[str, str]:
        from nodemgr import config
        from nodemgr.errors import ConfigError
        from nodemgr.tables.store import Store

        try:
            conf = config.load()
        except ConfigError:  # no longer readable by the user we run as: the start's
            conf = self.conf
        held_error = None
        if self.held is not None:
            try:
                return self._read(self.held, conf)
            except Exception as exc:  # noqa: BLE001 - try a fresh connection instead
                held_error = exc
        try:
            store = Store(conf.db_url)
        except ConfigError as exc:
            if held_error is None:
                raise
            raise ConfigError(f"{held_error}; reopening: {exc}") from None
        try:
            return self._read(store, conf)
        finally:
            store.close()

    @staticmethod
    def _read(store, conf) -> tuple[str, str]:
        from nodemgr import settings

        return (settings.get(store, "tftpdir", conf),
                settings.get(store, "tftpaddress", conf))

    def close(self) -> None:
        if self.held is not None:
            self.held.close()
            self.held = None


def _reload_root(server, log: logging.Logger, reader: _Settings) -> bool:
    """SIGHUP: resolve the tftpdir setting again; new transfers use it (a root that is not
    a directory, or an unreadable database, keeps the old root and logs one line).
    Returns whether the setting could be used."""
    try:
        root = reader.get()[0]
    except Exception as exc:  # noqa: BLE001 - a signal handler must not kill the server
        log.error("tftp: SIGHUP: cannot read the settings (%s); root stays %s", exc,
                  server.root)
        return False
    if not os.path.isdir(root) or "\n" in root:
        log.error("tftp: SIGHUP: tftpdir %s is not a directory; root stays %s", root,
                  server.root)
        return False
    if os.path.realpath(root) != server.root:
        log.info("tftp: SIGHUP: root %s -> %s", server.root, os.path.realpath(root))
        server.root = os.path.realpath(root)
    return True


#: Restart delay after a worker died: first, and ceiling while it keeps dying young.
RESTART_FIRST, RESTART_MAX = 0.1, 5.0
#: A worker that served this long (seconds) before dying restarts after RESTART_FIRST again.
RESTART_RESET = 60.0


def _spawn(server, sock, others: list, hup_fd: int | None) -> int:
    """Fork one worker serving *sock* (its slot's socket, bound by the parent). It closes
    *others* (the other slots' sockets and pipe ends); on SIGHUP it takes the root the
    parent wrote last on *hup_fd* (None: SIGHUP is ignored). The child never returns: it
    exits 0 when stopped by SIGTERM/SIGINT."""
    stops = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
    signal.pthread_sigmask(signal.SIG_BLOCK, stops)  # no SIGTERM before the child's handler
    try:
        pid = os.fork()
    except OSError:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
        raise
    if pid:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
        return pid
    code = 0
    try:
        for other in others:
            if isinstance(other, int):
                os.close(other)
            elif other is not sock:
                other.close()
        server.sock = sock
        signal.signal(signal.SIGTERM, lambda signum, frame: server.stop())
        signal.signal(signal.SIGINT, lambda signum, frame: server.stop())
        signal.signal(signal.SIGHUP, signal.SIG_IGN if hup_fd is None else
                      lambda signum, frame: _take_root(server, hup_fd))
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
        _die_with_parent()
        from nodemgr.netboot import tftp

        tftp.serve_forever(server)
        server.close()
    except BaseException as exc:  # noqa: BLE001 - a worker reports and exits, never returns
        logging.getLogger("nodemgr.tftp").error("tftp: worker %d failed: %s", os.getpid(), exc)
        code = 1
    finally:
        logging.shutdown()
        os._exit(code)


def _take_root(server, fd: int) -> None:
    """A worker's SIGHUP: the last root the parent wrote on the pipe *fd* (one per line;
    the parent resolved and checked it)."""
    data = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except (BlockingIOError, InterruptedError):
            break
        if not chunk:
            break
        data += chunk
    lines = [line for line in data.decode("utf-8", "surrogateescape").split("\n") if line]
    if lines:
        server.root = lines[-1]


def _libc():
    """The C library through ctypes (loaded once, before any privilege drop), or None."""
    global _LIBC
    if _LIBC is False:
        try:
            import ctypes

            _LIBC = ctypes.CDLL(None, use_errno=True)
        except (OSError, ImportError):
            _LIBC = None
    return _LIBC


_LIBC = False


def _die_with_parent() -> None:
    """Linux ``prctl(PR_SET_PDEATHSIG, SIGTERM)``: a worker whose supervisor is killed
    (SIGKILL leaves no chance to stop it) stops too instead of serving unsupervised."""
    libc = _libc()
    try:
        if libc is not None:
            libc.prctl(1, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _supervise(server, socks: list, log: logging.Logger, reader: _Settings | None) -> int:
    """Run one worker process per socket of *socks* until SIGTERM/SIGINT, restarting any
    that dies on its slot's socket. SIGHUP (with *reader*: no --root) resolves the root
    here, once, and hands it to every worker through its pipe. Returns the exit code (0)."""
    stopping = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.append(signum))
    started: dict[int, tuple[int, float, int | None]] = {}  # pid -> (slot, start, pipe)

    def on_hup(signum, frame):
        if not _reload_root(server, log, reader):
            return
        line = (server.root + "\n").encode("utf-8", "surrogateescape")
        for pid, (_, _, pipe) in list(started.items()):
            try:
                os.write(pipe, line)
                os.kill(pid, signal.SIGHUP)
            except (ProcessLookupError, BlockingIOError, BrokenPipeError):
                pass
    signal.signal(signal.SIGHUP, on_hup if reader is not None else signal.SIG_IGN)

    def spawn(slot: int) -> int:
        pipe_r = pipe_w = None
        if reader is not None:
            pipe_r, pipe_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        others = list(socks) + [p for _, _, p in started.values() if p is not None]
        others += [pipe_w] if pipe_w is not None else []
        try:
            pid = _spawn(server, socks[slot], others, pipe_r)
        except OSError:
            for fd in (pipe_r, pipe_w):
                if fd is not None:
                    os.close(fd)
            raise
        if pipe_r is not None:
            os.close(pipe_r)
        started[pid] = (slot, time.monotonic(), pipe_w)
        return pid

    for slot in range(len(socks)):
        spawn(slot)
    server.sock = None                        # the slots' sockets stay open in *socks*
    log.info("tftp: serving %s on %s:%d with %d workers (pids %s)", server.root,
             server.host, server.port, len(socks), " ".join(map(str, started)))
    backoff, due = RESTART_FIRST, []          # due: (restart time, slot) of dead workers
    while not stopping:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            pid, status = 0, 0
        if pid and pid in started:
            slot, began, pipe = started.pop(pid)
            if pipe is not None:
                os.close(pipe)
            lived = time.monotonic() - began
            if lived > RESTART_RESET:
                backoff = RESTART_FIRST
            how = (f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
                   else f"exit status {os.waitstatus_to_exitcode(status)}")
            log.error("tftp: worker %d died (%s) after %.1f s; restarting in %.1f s", pid,
                      how, lived, backoff)
            due.append((time.monotonic() + backoff, slot))
            backoff = min(RESTART_MAX, backoff * 2)
            continue
        now = time.monotonic()
        for item in [d for d in due if d[0] <= now]:
            due.remove(item)
            try:
                pid = spawn(item[1])
            except OSError as exc:           # fork failed: try again later
                log.error("tftp: cannot start a worker: %s", exc)
                due.append((now + backoff, item[1]))
                continue
            log.info("tftp: worker %d started", pid)
        time.sleep(0.05)
    for pid in started:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while started and time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid:
            started.pop(pid, None)
        else:
            time.sleep(0.05)
    for pid in started:                      # did not stop within 10 s
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    for sock in socks:
        sock.close()
    log.info("tftp: stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
