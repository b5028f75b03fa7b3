"""The read-only TFTP server that hands boot loaders, kernels and boot files to PXE clients.

Built on tftpy 0.8.7 (packet codec, read-request handling and RFC 2347 option
negotiation; RFC 2348 ``blksize`` and 2349 ``tsize``/``timeout``) with four things of our own:

* path safety: a request is refused unless it names a regular file inside the root — no
  ``..`` component, no absolute path, no backslash or NUL, and no symlink whose target
  leaves the root (checked on the opened descriptor, so a swapped link cannot race us);
* a receive loop that dispatches each packet to its transfer through a selector (tftpy's
  own loop scans every session per packet and dies on any unhandled exception, including
  the one a ``BytesIO`` dynamic file raises at the end of a transfer); here one transfer's
  failure ends only that transfer, and :func:`serve_forever` restarts the loop if it ever
  fails as a whole;
* the lock-step data phase (ACK n releases block n+1; duplicate ACKs ignored; resend after
  the negotiated timeout) on a socket connected to the client, a few lines instead of
  tftpy's per-packet objects and log calls — it is where the time goes (bench/);
* one log line per transfer, never one per packet.

It must never write into the root (write requests are refused), never serve a file from
outside it, and never hand tftpy an in-memory stream (generated content goes through an
anonymous temporary file).
"""

from __future__ import annotations

import logging
import os
import selectors
import socket
import stat
import struct
import tempfile
import time
from collections.abc import Callable

import tftpy
from tftpy import TftpPacketTypes as _pt
from tftpy import TftpStates as _st
from tftpy.TftpContexts import TftpContextServer
from tftpy.TftpShared import TftpErrors, TftpException, TftpTimeout

log = logging.getLogger("nodemgr.tftp")

_DAT_HEAD = struct.Struct(">HH")

#: RFC 2348: blksize between 8 and 65464 octets.
MIN_BLKSIZE, MAX_BLKSIZE = 8, 65464
#: RFC 2349: timeout between 1 and 255 seconds.
MIN_TIMEOUT, MAX_TIMEOUT = 1, 255

#: A hook for generated files: ``(path, client_ip) -> bytes or None`` (None = not found).
Dynamic = Callable[[str, str], "bytes | None"]


class PathRefused(Exception):
    """A request that names something outside the root or not a plain file."""


def resolve(root: str, filename: str) -> str:
    """Check a requested TFTP file name and return the real path it names.

    Args:
        root: the TFTP root, already ``os.path.realpath``-ed.
        filename: the name from the read request (RFC 1350 netascii string).
    Returns:
        The absolute real path, inside *root*.
    Raises:
        PathRefused: empty name, NUL or backslash, absolute path, a ``..`` component, or
            a path (after following symlinks) outside *root*.
    """
    if not filename or "\x00" in filename or "\\" in filename:
        raise PathRefused(f"invalid file name {filename!r}")
    if filename.startswith("/"):
        raise PathRefused(f"absolute path refused: {filename!r}")
    if ".." in filename.split("/"):
        raise PathRefused(f"'..' refused: {filename!r}")
    real = os.path.realpath(os.path.join(root, filename))
    if not real.startswith(root + os.sep):
        raise PathRefused(f"{filename!r} leads outside the TFTP root")
    return real


def open_inside(root: str, filename: str):
    """Open a file of the root for reading, refusing anything :func:`resolve` refuses.

    The check is repeated on the opened descriptor (``/proc/self/fd``), so a symlink
    swapped between the check and the open cannot lead out of the root.

    Returns:
        A binary file object (a real file: tftpy needs ``fileno`` and ``name``), or None
        when the file does not exist.
    Raises:
        PathRefused: see :func:`resolve`; also for directories and special files.
    """
    real = resolve(root, filename)
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PathRefused(f"cannot open {filename!r}: {exc.strerror}") from None
    try:
        opened = os.readlink(f"/proc/self/fd/{fd}")
        if not opened.startswith(root + os.sep):
            raise PathRefused(f"{filename!r} leads outside the TFTP root")
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise PathRefused(f"{filename!r} is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


class _ReadRequest(_st.TftpStateServerRecvRRQ):
    """tftpy's read-request state with our path rules, RFC 2349 ``timeout`` and the RFC
    2348 blksize ceiling."""

    def returnSupportedOptions(self, options):  # noqa: N802 - tftpy API
        accepted = {}
        for name, value in options.items():
            try:
                number = int(value)
            except (TypeError, ValueError):
                continue
            if name == "blksize":
                accepted["blksize"] = max(MIN_BLKSIZE, min(MAX_BLKSIZE, number))
            elif name == "tsize":
                accepted["tsize"] = 0
            elif name == "timeout" and MIN_TIMEOUT <= number <= MAX_TIMEOUT:
                accepted["timeout"] = number
                self.context.timeout = number
        return accepted

    def handle(self, pkt, raddress, rport):
        ctx = self.context
        ctx.tidport = ctx.tidport or rport
        ctx.options = {"blksize": tftpy.TftpShared.DEF_BLKSIZE}
        accepted = self.returnSupportedOptions(pkt.options or {})
        ctx.options.update(accepted)
        ctx.file_to_transfer = pkt.filename
        try:
            fileobj = open_inside(ctx.root, pkt.filename)
        except PathRefused as exc:
            ctx.refused = str(exc)
            self.sendError(TftpErrors.AccessViolation)
            raise TftpException(str(exc)) from None
        if fileobj is None and ctx.dynamic is not None:
            fileobj = ctx.generate(pkt.filename, raddress)
        if fileobj is None:
            self.sendError(TftpErrors.FileNotFound)
            raise TftpException(f"file not found: {pkt.filename!r}")
        ctx.fileobj = fileobj
        if "tsize" in accepted:
            accepted["tsize"] = str(os.fstat(fileobj.fileno()).st_size)
        if accepted:
            # only the options the client asked for (RFC 2347); tftpy's own OACK adds blksize
            oack = _pt.TftpPacketOACK()
            oack.options = accepted
            ctx.sock.sendto(oack.encode().buffer, (ctx.host, ctx.tidport))
            ctx.last_pkt = oack
        else:
            ctx.next_block = 1
            ctx.pending_complete = self.sendDAT()
        return _st.TftpStateExpectACK(ctx)


class _Start(_st.TftpStateServerStart):
    """First packet of a transfer: read requests only; writes are refused."""

    def handle(self, pkt, raddress, rport):
        if isinstance(pkt, _pt.TftpPacketRRQ):
            return _ReadRequest(self.context).handle(pkt, raddress, rport)
        self.context.tidport = rport
        self.sendError(TftpErrors.AccessViolation if isinstance(pkt, _pt.TftpPacketWRQ)
                       else TftpErrors.IllegalTftpOp)
        raise TftpException("write requests are refused (read-only server)"
                            if isinstance(pkt, _pt.TftpPacketWRQ) else "not a read request")


class _Transfer(TftpContextServer):
    """One transfer: tftpy's server context with our start state, no flock, and the
    generated-file hook."""

    def __init__(self, host, port, timeout, root, dynamic, retries):
        super().__init__(host, port, timeout, root, retries=retries, flock=False)
        self.state = _Start(self)
        self.dynamic = dynamic
        self.refused = None
        self.started = time.monotonic()
        self.last_update = self.started
        self.sent = 0
        self.block = 0
        self.blksize = 512
        self.last_bytes = b""
        self.dest = (self.address, port)

    def enter_data_phase(self) -> None:
        """After tftpy answered the request (OACK or first block): take over the
        lock-step data exchange (see :meth:`Server._pump`)."""
        if not isinstance(self.state, _st.TftpStateExpectACK):
            raise TftpException("transfer did not start")
        self.block = self.next_block & 0xFFFF
        self.blksize = self.getBlocksize()
        self.last_bytes = self.last_pkt.encode().buffer
        self.sent = self.metrics.bytes
        self.last_update = time.monotonic()
        # like tftpd-hpa: the kernel then drops datagrams from any other address/port
        # (RFC 1350 TIDs) and send/recv skip the address handling
        self.sock.connect(self.dest)

    def generate(self, filename: str, client: str):
        data = self.dynamic(filename, client)
        if data is None:
            return None
        tmp = tempfile.TemporaryFile()
        tmp.write(data)
        tmp.seek(0)
        return tmp


class Server:
    """A read-only TFTP server on one UDP address.

    Args:
        root: the directory served (must exist).
        host: address to listen on (``0.0.0.0`` for all IPv4 addresses).
        port: UDP port (69; 0 picks a free one, see :attr:`port` after :meth:`bind`).
        timeout: seconds without an answer before a packet is sent again (a client's
            ``timeout`` option overrides it per transfer).
        retries: resends before a transfer is abandoned.
        dynamic: optional generated-file hook (see :data:`Dynamic`), asked only for names
            that pass the path rules and do not exist.
        reuse_port: set ``SO_REUSEPORT`` so several processes can share the port.
    Raises:
        ValueError: *root* is not a directory.
    """

    def __init__(self, root: str, host: str = "0.0.0.0", port: int = 69, *,
                 timeout: float = 2.0, retries: int = 5, dynamic: Dynamic | None = None,
                 reuse_port: bool = False) -> None:
        if not os.path.isdir(root):
            raise ValueError(f"TFTP root {root} is not a directory")
        self.root = os.path.realpath(root)
        self.host, self.port = host, port
        self.timeout, self.retries = timeout, retries
        self.dynamic = dynamic
        self.reuse_port = reuse_port
        self.sock: socket.socket | None = None
        self._stop = False
        quiet_tftpy()
        self.transfers = 0
        self.failures = 0

    def bind(self) -> None:
        """Open the listening socket (kept across :meth:`run` restarts).

        Raises:
            OSError: the address cannot be bound (in use, no permission for port < 1024).
        """
        if self.sock is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if self.reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((self.host, self.port))
        sock.setblocking(False)
        self.sock = sock
        self.port = sock.getsockname()[1]

    def stop(self) -> None:
        """Ask :meth:`run` / :func:`serve_forever` to return within one poll interval."""
        self._stop = True

    def close(self) -> None:
        """Close the listening socket."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def run(self, poll: float = 0.25) -> None:
        """Serve until :meth:`stop`. Transfers run concurrently, interleaved packet by packet.

        Raises:
            Exception: only on a failure of the loop itself (never of a transfer);
                :func:`serve_forever` restarts it.
        """
        self.bind()
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ, None)
        sessions: dict[tuple[str, int], _Transfer] = {}
        last_scan = time.monotonic()
        try:
            while not self._stop:
                ready = sel.select(poll)
                now = time.monotonic()
                for key, _ in ready:
                    ctx = key.data
                    if ctx is None:
                        self._accept(sel, sessions)
                        continue
                    try:
                        if self._pump(ctx, now):
                            self._finish(sel, sessions, ctx, None)
                    except Exception as exc:  # one transfer's failure ends only it
                        self._finish(sel, sessions, ctx, exc)
                if now - last_scan >= poll:
                    last_scan = now
                    for ctx in list(sessions.values()):
                        self._check_timeout(sel, sessions, ctx, now)
        finally:
            for ctx in list(sessions.values()):
                self._finish(sel, sessions, ctx, TftpException("server stopping"))
            sel.close()

    @staticmethod
    def _pump(ctx: _Transfer, now: float) -> bool:
        """Handle one packet of a transfer in its data phase (RFC 1350 lock-step: each
        ACK of the last block sent releases the next block). Returns True when the ACK of
        the final block arrived. Duplicate ACKs are ignored (no Sorcerer's Apprentice)."""
        try:
            buf = ctx.sock.recv(516)  # connected: only the client's TID gets through
        except (BlockingIOError, InterruptedError, TimeoutError):
            return False
        if len(buf) < 4 or buf[0] != 0:
            return False
        if buf[1] == 5:
            raise TftpException("client sent error " + buf[4:].split(b"\0")[0].decode(
                "ascii", "replace"))
        if buf[1] != 4 or ((buf[2] << 8) | buf[3]) != ctx.block:
            return False
        if ctx.pending_complete:
            return True
        ctx.block = (ctx.block + 1) & 0xFFFF
        data = ctx.fileobj.read(ctx.blksize)
        ctx.pending_complete = len(data) < ctx.blksize
        ctx.last_bytes = _DAT_HEAD.pack(3, ctx.block) + data
        ctx.sock.send(ctx.last_bytes)
        ctx.sent += len(data)
        ctx.last_update = now
        ctx.retry_count = 0
        return False

    def _accept(self, sel, sessions) -> None:
        try:
            buf, (addr, port) = self.sock.recvfrom(65536)
        except (BlockingIOError, InterruptedError):
            return
        if (addr, port) in sessions:
            return  # a retransmitted request: the transfer already answers it
        try:
            ctx = _Transfer(addr, port, self.timeout, self.root, self.dynamic, self.retries)
        except OSError as exc:
            log.error("tftp: cannot start a transfer for %s: %s", addr, exc)
            return
        sessions[(addr, port)] = ctx
        sel.register(ctx.sock, selectors.EVENT_READ, ctx)
        try:
            ctx.start(buf)
            ctx.enter_data_phase()
        except Exception as exc:
            self._finish(sel, sessions, ctx, exc)

    def _check_timeout(self, sel, sessions, ctx, now) -> None:
        if now - ctx.last_update <= ctx.timeout:
            return
        ctx.retry_count += 1
        if ctx.retry_count > ctx.retries:
            self._finish(sel, sessions, ctx, TftpTimeout("no answer from the client"))
            return
        try:
            ctx.last_update = now
            ctx.sock.send(ctx.last_bytes)
        except Exception as exc:
            self._finish(sel, sessions, ctx, exc)

    def _finish(self, sel, sessions, ctx, error) -> None:
        sessions.pop((ctx.host, ctx.port), None)
        try:
            sel.unregister(ctx.sock)
        except (KeyError, ValueError):
            pass
        try:
            ctx.end()
        except Exception:  # closing must never take the loop down
            pass
        name = ctx.file_to_transfer
        took = time.monotonic() - ctx.started
        if error is None:
            self.transfers += 1
            log.info("tftp: %s %s sent %d bytes in %.2f s", ctx.host, name, ctx.sent, took)
        else:
            self.failures += 1
            text = str(error).splitlines()[0] if str(error) else type(error).__name__
            log.warning("tftp: %s %s failed: %s", ctx.host, name or "-", ctx.refused or text)


def serve_forever(server: Server, *, max_backoff: float = 5.0) -> None:
    """Run *server* until stopped, restarting its loop after any failure of the loop.

    The socket stays bound across restarts, so clients see at most a short pause. Waits
    0.1 s after a failure, doubling up to *max_backoff*, reset after a minute of service.

    Raises:
        OSError: the address cannot be bound at start.
    """
    server.bind()
    backoff = 0.1
    while not server._stop:
        began = time.monotonic()
        try:
            server.run()
        except Exception as exc:
            log.error("tftp: server loop failed (%s: %s); restarting", type(exc).__name__,
                      str(exc).splitlines()[0] if str(exc) else "")
            if time.monotonic() - began > 60:
                backoff = 0.1
            time.sleep(backoff)
            backoff = min(max_backoff, backoff * 2)


def quiet_tftpy() -> None:
    """Silence tftpy's own per-packet log lines (it logs at INFO for every ACK)."""
    logging.getLogger("tftpy").setLevel(logging.CRITICAL)
