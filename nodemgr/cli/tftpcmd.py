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
the parent, it reaches every worker): transfers started after the signal use the new root.
Without --address the tftpaddress setting is used (default 0.0.0.0).

examples:
  nodemgr-tftpd                                    # site.tftpdir on site.tftpaddress:69
  kill -HUP $(pgrep -of nodemgr-tftpd)             # after chtab key=tftpdir site.value=...
  nodemgr-tftpd --root /srv/tftp --address 10.0.0.1
  nodemgr-tftpd --port 6969 --workers 2 --quiet

systemd: etc/systemd/nodemgr-tftpd.service (Restart=always).

exit status:
  0  stopped by SIGTERM/SIGINT
  1  bad option, missing root, or the address cannot be bound
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
    ap.add_argument("--quiet", action="store_true", help="log failures only, not every "
                    "transfer")
    a = ap.parse_args(argv)
    if not 0 <= a.port <= 65535:
        raise UsageError(f"invalid port {a.port}")
    if a.workers < 1 or a.workers > 64:
        raise UsageError(f"invalid number of workers {a.workers} (1-64)")
    root = a.root
    if root is None or a.address is None:
        root_setting, address_setting = _settings()
        root = root if root is not None else root_setting
        a.address = a.address if a.address is not None else address_setting
    if not os.path.isdir(root):
        raise UsageError(f"TFTP root {root} is not a directory")

    from nodemgr.netboot import tftp

    _raise_nofile()
    logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(message)s",
                        level=logging.WARNING if a.quiet else logging.INFO)
    tftp.quiet_tftpy()
    server = tftp.Server(root, a.address, a.port, timeout=a.timeout, retries=a.retries,
                         reuse_port=a.workers > 1)
    try:
        server.bind()
    except OSError as exc:
        raise UsageError(f"cannot listen on {a.address}:{a.port}: {exc.strerror}") from None
    log = logging.getLogger("nodemgr.tftp")
    if a.root is None:
        signal.signal(signal.SIGHUP, lambda signum, frame: _reload_root(server, log))
    else:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if a.workers == 1:
        signal.signal(signal.SIGTERM, lambda signum, frame: server.stop())
        signal.signal(signal.SIGINT, lambda signum, frame: server.stop())
        log.info("tftp: serving %s on %s:%d", server.root, a.address, server.port)
        tftp.serve_forever(server)
        server.close()
        return 0
    return _supervise(server, a.workers, log)


def _raise_nofile() -> None:
    """Soft descriptor limit up to the hard one (at most 65536): each transfer holds a
    socket and a file, and a worker keeps up to tftp.MAX_SESSIONS of them."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _settings() -> tuple[str, str]:
    """(tftpdir, tftpaddress) as :mod:`nodemgr.settings` resolves them."""
    from nodemgr import config, settings
    from nodemgr.tables.store import Store

    store = Store(config.load().db_url)  # a fresh connection: called again on SIGHUP
    try:
        return settings.get(store, "tftpdir"), settings.get(store, "tftpaddress")
    finally:
        store.close()


def _reload_root(server, log: logging.Logger) -> None:
    """SIGHUP: resolve the tftpdir setting again; new transfers use it (a root that is not
    a directory, or an unreadable database, keeps the old root and logs one line)."""
    try:
        root = _settings()[0]
    except Exception as exc:  # noqa: BLE001 - a signal handler must not kill the server
        log.error("tftp: SIGHUP: cannot read the settings (%s); root stays %s", exc,
                  server.root)
        return
    if not os.path.isdir(root):
        log.error("tftp: SIGHUP: tftpdir %s is not a directory; root stays %s", root,
                  server.root)
        return
    if os.path.realpath(root) != server.root:
        log.info("tftp: SIGHUP: root %s -> %s", server.root, os.path.realpath(root))
        server.root = os.path.realpath(root)


#: Restart delay after a worker died: first, and ceiling while it keeps dying young.
RESTART_FIRST, RESTART_MAX = 0.1, 5.0
#: A worker that served this long (seconds) before dying restarts after RESTART_FIRST again.
RESTART_RESET = 60.0


def _spawn(server, inherit: bool, hup=signal.SIG_IGN) -> int:
    """Fork one worker. With *inherit* it serves the parent's bound socket, otherwise its
    own (``SO_REUSEPORT``: the kernel keeps each client on one socket); *hup* is its SIGHUP
    handler. The child never returns: it exits 0 when stopped by SIGTERM/SIGINT."""
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
        signal.signal(signal.SIGTERM, lambda signum, frame: server.stop())
        signal.signal(signal.SIGINT, lambda signum, frame: server.stop())
        signal.signal(signal.SIGHUP, hup)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
        _die_with_parent()
        if not inherit:
            server.close()
            server.bind()
        from nodemgr.netboot import tftp

        tftp.serve_forever(server)
        server.close()
    except BaseException as exc:  # noqa: BLE001 - a worker reports and exits, never returns
        logging.getLogger("nodemgr.tftp").error("tftp: worker %d failed: %s", os.getpid(), exc)
        code = 1
    finally:
        logging.shutdown()
        os._exit(code)


def _die_with_parent() -> None:
    """Linux ``prctl(PR_SET_PDEATHSIG, SIGTERM)``: a worker whose supervisor is killed
    (SIGKILL leaves no chance to stop it) stops too instead of serving unsupervised."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _supervise(server, workers: int, log: logging.Logger) -> int:
    """Run *workers* worker processes on the bound *server* socket until SIGTERM/SIGINT,
    restarting any that dies. Returns the exit code (0)."""
    stopping = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.append(signum))
    started: dict[int, float] = {}            # pid -> start time
    worker_hup = signal.getsignal(signal.SIGHUP)  # what a worker does with SIGHUP

    def forward_hup(signum, frame):
        for pid in list(started):
            try:
                os.kill(pid, signal.SIGHUP)
            except ProcessLookupError:
                pass
    signal.signal(signal.SIGHUP, forward_hup)
    for i in range(workers):                 # worker 0 serves the already-bound socket
        started[_spawn(server, inherit=i == 0, hup=worker_hup)] = time.monotonic()
    server.close()
    log.info("tftp: serving %s on %s:%d with %d workers (pids %s)", server.root,
             server.host, server.port, workers, " ".join(map(str, started)))
    backoff, due = RESTART_FIRST, []          # due: restart times of dead workers
    while not stopping:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            pid, status = 0, 0
        if pid and pid in started:
            lived = time.monotonic() - started.pop(pid)
            if lived > RESTART_RESET:
                backoff = RESTART_FIRST
            how = (f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
                   else f"exit status {os.waitstatus_to_exitcode(status)}")
            log.error("tftp: worker %d died (%s) after %.1f s; restarting in %.1f s", pid,
                      how, lived, backoff)
            due.append(time.monotonic() + backoff)
            backoff = min(RESTART_MAX, backoff * 2)
            continue
        now = time.monotonic()
        for when in [w for w in due if w <= now]:
            due.remove(when)
            try:
                pid = _spawn(server, inherit=False, hup=worker_hup)
            except OSError as exc:           # fork failed: try again later
                log.error("tftp: cannot start a worker: %s", exc)
                due.append(now + backoff)
                continue
            started[pid] = time.monotonic()
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
    log.info("tftp: stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
