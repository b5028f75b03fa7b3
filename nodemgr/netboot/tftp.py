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
  the negotiated timeout) on a non-blocking socket connected to the client, a few lines
  instead of tftpy's per-packet objects and log calls — it is where the time goes
  (bench/): the expected ACK is one comparison, and blocks arrive with one ``preadv`` per
  64 KiB in a buffer laid out as ready DATA packets (a packet is a slice of it);
* one log line per transfer, never one per packet.

It must never write into the root (write requests are refused), never serve a file from
outside it, and never hand tftpy an in-memory stream (generated content goes through an
anonymous temporary file).
"""

from __future__ import annotations

import logging
import os
import select
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
#: bytes read from the file at once (rounded down to whole blocks) in the data phase
CHUNK_BYTES = 64 * 1024

#: buffers one preadv may take (Linux UIO_MAXIOV; more is EINVAL): with blksize < 64 a
#: chunk holds fewer than CHUNK_BYTES.
IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024
#: RFC 2348: blksize between 8 and 65464 octets.
MIN_BLKSIZE, MAX_BLKSIZE = 8, 65464
#: RFC 2349: timeout between 1 and 255 seconds.
MIN_TIMEOUT, MAX_TIMEOUT = 1, 255
#: The longest client timeout accepted: a larger one is left out of the OACK (RFC 2349: the
#: server may not change the value, only decline it) and the server's own is used, so an
#: unanswered transfer cannot hold its socket and file for 255 s x retries.
ACCEPTED_TIMEOUT = 10
#: Transfers one worker keeps at once, and per client address; a new request beyond either
#: bound ends the longest-idle transfer of that set first (each holds a socket and a file).
MAX_SESSIONS, MAX_PER_CLIENT = 400, 64

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
        PathRefused: empty name, NUL or backslash, a ``..`` component, or a path (after
            following symlinks) outside *root*.

    A leading ``/`` names the root (tftpd-hpa ``-s``, dnsmasq ``tftp-root``): GRUB asks
    for ``/boot/grub2/grub.cfg-01-<mac>`` when its prefix is ``(tftp)/boot/grub2``, and
    ``grub2-tftp`` boot files say ``linux /xcat/...``. ``/etc/passwd`` is therefore
    ``<root>/etc/passwd``, never the system's.
    """
    if not filename or "\x00" in filename or "\\" in filename:
        raise PathRefused(f"invalid file name {filename!r}")
    filename = filename.lstrip("/")
    if not filename:
        raise PathRefused("invalid file name '/'")
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
            elif name == "timeout" and MIN_TIMEOUT <= number <= ACCEPTED_TIMEOUT:
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


class _Flow:
    """The data phase of one transfer: only what the per-packet path touches, in slots
    (attribute access on tftpy's context, a dict with dozens of keys, is slower)."""

    __slots__ = ("ctx", "recv", "send", "fdno", "fd", "expect", "final", "block", "blksize",
                 "offset", "buf", "view", "iov", "stride", "index", "count", "avail",
                 "chunk_size", "last_bytes",
                 "last_update", "retry_count", "timeout", "retries")

    def __init__(self, ctx: _Transfer) -> None:
        self.ctx = ctx
        sock = ctx.sock
        self.recv, self.send, self.fdno = sock.recv, sock.send, sock.fileno()
        self.fd = ctx.fileobj.fileno()
        self.block = ctx.next_block & 0xFFFF
        self.blksize = ctx.getBlocksize()
        self.expect = _DAT_HEAD.pack(4, self.block)  # the ACK that releases the next block
        self.final = ctx.pending_complete
        self.offset = ctx.metrics.bytes               # file bytes sent so far
        # one buffer laid out as ready DATA packets (4-byte header + block): one preadv per
        # CHUNK_BYTES fills the blocks in place; a packet is then a slice of it (no read()
        # per block, no allocation or copy of the block)
        count = max(1, min(IOV_MAX, CHUNK_BYTES // self.blksize))
        self.stride = 4 + self.blksize
        self.chunk_size = count * self.blksize
        self.buf = bytearray(count * self.stride)
        self.view = memoryview(self.buf)
        self.iov = [self.view[i * self.stride + 4:(i + 1) * self.stride] for i in range(count)]
        self.index = self.count = self.avail = 0       # next block in the buffer, blocks in it
        self.last_bytes = ctx.last_pkt.encode().buffer
        self.last_update = time.monotonic()
        self.retry_count = 0
        self.timeout, self.retries = ctx.timeout, ctx.retries


class _Transfer(TftpContextServer):
    """One transfer: tftpy's server context with our start state, no flock, and the
    generated-file hook."""

    def __init__(self, host, port, timeout, root, dynamic, retries):
        super().__init__(host, port, timeout, root, retries=retries, flock=False)
        self.state = _Start(self)
        self.dynamic = dynamic
        self.refused = None
        self.started = time.monotonic()
        self.flow: _Flow | None = None
        self.dest = (self.address, port)

    def enter_data_phase(self) -> _Flow:
        """After tftpy answered the request (OACK or first block): hand the lock-step
        data exchange to a :class:`_Flow` (see :meth:`Server._pump`)."""
        if not isinstance(self.state, _st.TftpStateExpectACK):
            raise TftpException("transfer did not start")
        # like tftpd-hpa: the kernel then drops datagrams from any other address/port
        # (RFC 1350 TIDs) and send/recv skip the address handling
        self.sock.connect(self.dest)
        # non-blocking instead of tftpy's socket timeout: CPython polls before every
        # send/recv on a socket with a timeout (two extra syscalls per block); epoll
        # already said the socket is ready
        self.sock.setblocking(False)
        self.flow = _Flow(self)
        return self.flow

    def generate(self, filename: str, client: str):
        data = self.dynamic(filename, client)
        if data is None:
            return None
        tmp = tempfile.TemporaryFile()
        tmp.write(data)
        tmp.seek(0)
        return tmp


def _acks(flow: _Flow, buf: bytes) -> bool:
    """The slow path of :meth:`Server._pump`: is *buf* (not byte-equal to the expected
    ACK) still the ACK of the last block sent (e.g. with trailing bytes)?

    Raises:
        TftpException: the client sent an ERROR packet (the transfer ends).
    """
    if len(buf) < 4 or buf[0] != 0:
        return False
    if buf[1] == 5:
        raise TftpException("client sent error " + buf[4:].split(b"\0")[0].decode(
            "ascii", "replace"))
    return buf[1] == 4 and ((buf[2] << 8) | buf[3]) == flow.block


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
        self.evicted = 0

    def bind(self) -> None:
        """Open the listening socket (kept across :meth:`run` restarts).

        Raises:
            OSError: the address cannot be bound (in use, no permission for port < 1024).
        """
        if self.sock is not None:
            return
        self.sock = self.open_socket()
        self.port = self.sock.getsockname()[1]

    def open_socket(self) -> socket.socket:
        """A new non-blocking socket bound to the server's address and port (with
        ``SO_REUSEPORT`` when *reuse_port*: several can then share the port, one per worker
        process; the kernel keeps each client on one of them).

        Raises:
            OSError: the address cannot be bound.
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            if self.reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((self.host, self.port))
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

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

        One ``epoll`` holds the listening socket and every transfer's socket; each wakeup
        handles all ready sockets before waiting again.

        Raises:
            Exception: only on a failure of the loop itself (never of a transfer);
                :func:`serve_forever` restarts it.
        """
        self.bind()
        ep = select.epoll()
        listening = self.sock.fileno()
        ep.register(listening, select.EPOLLIN)
        sessions: dict[tuple[str, int], _Transfer] = {}
        flows: dict[int, _Flow] = {}   # by socket descriptor
        maps = (sessions, flows)
        pump, finish, monotonic = self._pump, self._finish, time.monotonic
        last_scan = monotonic()
        try:
            while not self._stop:
                ready = ep.poll(poll)
                now = monotonic()
                for fd, _ in ready:
                    flow = flows.get(fd)
                    if flow is None:
                        if fd == listening:
                            self._accept(ep, maps)
                        continue
                    try:
                        if pump(flow, now):
                            finish(ep, maps, flow.ctx, None)
                    except Exception as exc:  # one transfer's failure ends only it
                        finish(ep, maps, flow.ctx, exc)
                if now - last_scan >= poll:
                    last_scan = now
                    for ctx in list(sessions.values()):
                        self._check_timeout(ep, maps, ctx, now)
        finally:
            for ctx in list(sessions.values()):
                finish(ep, maps, ctx, TftpException("server stopping"))
            ep.close()

    @staticmethod
    def _pump(flow: _Flow, now: float) -> bool:
        """Handle one packet of a transfer in its data phase (RFC 1350 lock-step: each
        ACK of the last block sent releases the next block). Returns True when the ACK of
        the final block arrived. Duplicate ACKs are ignored (no Sorcerer's Apprentice).

        The common case — the expected 4-byte ACK — costs one comparison; the packet is a
        slice of the flow's buffer, filled with one ``preadv`` per :data:`CHUNK_BYTES`."""
        try:
            buf = flow.recv(128)  # connected: only the client's TID gets through;
            # an ACK is 4 bytes (< 512: Python allocates it without malloc)
        except (BlockingIOError, InterruptedError):
            return False
        if buf != flow.expect and not _acks(flow, buf):
            return False
        if flow.final:
            return True
        i, blksize = flow.index, flow.blksize
        if i == flow.count:  # buffer used up: the next CHUNK_BYTES of the file
            avail = flow.avail = os.preadv(flow.fd, flow.iov, flow.offset)
            # a short read is the end: its last block is short (maybe empty, RFC 1350)
            flow.count = len(flow.iov) if avail == flow.chunk_size else avail // blksize + 1
            i = 0
        left = flow.avail - i * blksize
        size = blksize if left >= blksize else left
        start = i * flow.stride
        block = (flow.block + 1) & 0xFFFF
        _DAT_HEAD.pack_into(flow.buf, start, 3, block)
        flow.last_bytes = packet = flow.view[start:start + 4 + size]
        flow.block, flow.index = block, i + 1
        flow.expect = _DAT_HEAD.pack(4, block)
        flow.offset += size
        flow.final = size < blksize
        flow.last_update = now
        flow.retry_count = 0
        try:
            flow.send(packet)
        except BlockingIOError:  # send buffer full: the timeout resends it
            pass
        return False

    def _accept(self, ep, maps) -> None:
        sessions, flows = maps
        try:
            buf, (addr, port) = self.sock.recvfrom(65536)
        except (BlockingIOError, InterruptedError):
            return
        if (addr, port) in sessions:
            return  # a retransmitted request: the transfer already answers it
        self._make_room(ep, maps, addr)
        try:
            ctx = _Transfer(addr, port, self.timeout, self.root, self.dynamic, self.retries)
        except OSError as exc:
            log.error("tftp: cannot start a transfer for %s: %s", addr, exc)
            return
        sessions[(addr, port)] = ctx
        try:
            ctx.start(buf)
            flow = ctx.enter_data_phase()
            flows[flow.fdno] = flow
            ep.register(flow.fdno, select.EPOLLIN)
        except Exception as exc:
            self._finish(ep, maps, ctx, exc)

    def _make_room(self, ep, maps, addr: str) -> None:
        """Before a new transfer from *addr*: if this worker holds :data:`MAX_SESSIONS`
        transfers, or *addr* :data:`MAX_PER_CLIENT`, end the longest-idle one of that set
        (a flood of never-acknowledged requests cannot lock legitimate clients out)."""
        sessions = maps[0]
        mine = [c for c in sessions.values() if c.host == addr]
        for crowd, bound in ((mine, MAX_PER_CLIENT), (list(sessions.values()), MAX_SESSIONS)):
            if len(crowd) >= bound:
                idle = min(crowd, key=lambda c: c.flow.last_update if c.flow else c.started)
                self.evicted += 1
                if self.evicted == 1 or self.evicted % 1000 == 0:
                    log.warning("tftp: %d transfers at the bound of %d; ending the idlest "
                                "(%d ended so far)", len(crowd), bound, self.evicted)
                self._finish(ep, maps, idle, TftpTimeout("ended to make room"), quiet=True)
                return

    def _check_timeout(self, ep, maps, ctx, now) -> None:
        flow = ctx.flow
        if flow is None:
            self._finish(ep, maps, ctx, TftpException("transfer did not start"))
            return
        if now - flow.last_update <= flow.timeout:
            return
        flow.retry_count += 1
        if flow.retry_count > flow.retries:
            self._finish(ep, maps, ctx, TftpTimeout("no answer from the client"))
            return
        try:
            flow.last_update = now
            flow.send(flow.last_bytes)
        except BlockingIOError:
            pass
        except Exception as exc:
            self._finish(ep, maps, ctx, exc)

    def _finish(self, ep, maps, ctx, error, quiet: bool = False) -> None:
        sessions, flows = maps
        sessions.pop((ctx.host, ctx.port), None)
        flow = ctx.flow
        if flow is not None and flows.pop(flow.fdno, None) is flow:
            try:
                ep.unregister(flow.fdno)
            except (OSError, ValueError):
                pass
        try:
            ctx.end()
        except Exception:  # closing must never take the loop down
            pass
        name = ctx.file_to_transfer
        took = time.monotonic() - ctx.started
        sent = flow.offset if flow is not None else 0
        if error is None:
            self.transfers += 1
            log.info("tftp: %s %s sent %d bytes in %.2f s", ctx.host, name, sent, took)
        else:
            self.failures += 1
            if quiet:
                return
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
