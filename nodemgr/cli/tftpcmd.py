"""``nodemgr-tftpd``: run the read-only TFTP server (nodemgr.netboot.tftp) in the foreground.

A thin command: options → :class:`nodemgr.netboot.tftp.Server`, one or more worker
processes sharing the port (``SO_REUSEPORT``), each under the restart loop. It must never
daemonize itself (systemd or the caller supervises it) nor log per packet.
"""

from __future__ import annotations

import logging
import os
import signal
import sys

from nodemgr.cli.common import main_wrapper, parser
from nodemgr.errors import UsageError

EPILOG = """\
The root is served read-only: write requests, '..', absolute paths and symlinks leading
out of the root are refused. Options blksize (8-65464), tsize and timeout (1-255 s) are
negotiated (RFC 2347-2349). One log line per transfer goes to stderr; a failing transfer
never stops the server, and the receive loop restarts itself if it ever fails.

examples:
  nodemgr-tftpd                                    # /tftpboot (site.tftpdir) on 0.0.0.0:69
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
    ap.add_argument("--root", help="directory to serve (default: tftpdir from the "
                    "configuration, /tftpboot)")
    ap.add_argument("--address", default="0.0.0.0", help="IPv4 address to listen on "
                    "(default 0.0.0.0)")
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
    if root is None:
        from nodemgr import config

        root = config.load().tftpdir
    if not os.path.isdir(root):
        raise UsageError(f"TFTP root {root} is not a directory")

    from nodemgr.netboot import tftp

    logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(message)s",
                        level=logging.WARNING if a.quiet else logging.INFO)
    tftp.quiet_tftpy()
    server = tftp.Server(root, a.address, a.port, timeout=a.timeout, retries=a.retries,
                         reuse_port=a.workers > 1)
    try:
        server.bind()
    except OSError as exc:
        raise UsageError(f"cannot listen on {a.address}:{a.port}: {exc.strerror}") from None
    children: list[int] = []
    for _ in range(a.workers - 1):
        pid = os.fork()
        if pid == 0:  # each worker its own socket: the kernel keeps a client on one worker
            children = []
            server.close()
            server.bind()
            break
        children.append(pid)

    def stop(signum, frame):
        server.stop()
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logging.getLogger("nodemgr.tftp").info("tftp: serving %s on %s:%d", server.root,
                                           a.address, server.port)
    tftp.serve_forever(server)
    for pid in children:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
