"""A domain's serial console as a libvirt stream (``rcons``), for the libvirt driver.

libvirt-python's ``virDomain.openConsole(None, stream, flags)`` connects a ``virStream`` to
the domain's first console (a ``<console>``/``<serial>`` of type pty); ``virStream.recv``
then gives what the guest prints and ``send`` types into it. It is the same path ``virsh
console`` takes, and it works over every URI (``qemu+ssh``, ``qemu+tcp``) because the bytes
travel in the libvirt connection.

Reading: a stream is read without blocking the driver's connection only with libvirt's
event loop: a *blocking* ``recv`` holds the connection's socket, and every other call on
that connection then waits for the guest to print something (found here: ``defineXML``
hung behind a silent console). So the first console opened in a process registers
libvirt's default event loop (``virEventRegisterDefaultImpl``) and runs it in a daemon
thread; each console gets a connection of its own, opened after that (only connections
opened after the registration use the loop), with a non-blocking stream whose
``VIR_STREAM_EVENT_READABLE`` callback (run by the loop thread) queues what arrives.
:meth:`LibvirtConsoleStream.read` waits on that queue with a timeout; ``close`` removes the
callback, aborts the stream and closes the console's connection. This is what ``virsh
console`` does.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from nodemgr.plugins.base import ConsoleStream

#: bytes asked of the stream per recv
CHUNK = 4096

_loop_lock = threading.Lock()
_loop_started = False


def ensure_event_loop(lv: Any) -> None:
    """Register libvirt's default event loop and run it in a daemon thread, once per
    process. Connections opened afterwards use it (keepalive included); those opened
    before keep working as they did."""
    global _loop_started
    with _loop_lock:
        if _loop_started:
            return
        lv.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                lv.virEventRunDefaultImpl()

        threading.Thread(target=run, name="libvirt-events", daemon=True).start()
        _loop_started = True


class LibvirtConsoleStream(ConsoleStream):
    """An open serial console of one domain.

    Args:
        lv: the ``libvirt`` module.
        conn: the console's own connection (closed with the console).
        stream: a non-blocking ``virStream`` already passed to ``openConsole``.
    """

    def __init__(self, lv: Any, conn: Any, stream: Any) -> None:
        self._lv = lv
        self._conn = conn
        self._stream = stream
        self._chunks: queue.Queue[bytes | None] = queue.Queue()
        self._closed = False
        self._eof = False
        self._buf = b""
        self._lock = threading.Lock()
        stream.eventAddCallback(lv.VIR_STREAM_EVENT_READABLE | lv.VIR_STREAM_EVENT_ERROR
                                | lv.VIR_STREAM_EVENT_HANGUP, self._on_event, None)

    def _on_event(self, stream: Any, events: int, _opaque: Any) -> None:
        """Event-loop thread: queue every chunk that is there; None marks the end."""
        lv = self._lv
        try:
            if events & lv.VIR_STREAM_EVENT_READABLE:
                while True:
                    data = stream.recv(CHUNK)
                    if isinstance(data, bytes) and data:
                        self._chunks.put(data)
                        continue
                    if data == -2:  # nothing more for now
                        return
                    break  # b"": end of stream
            elif not events & (lv.VIR_STREAM_EVENT_ERROR | lv.VIR_STREAM_EVENT_HANGUP):
                return
        except Exception:  # noqa: BLE001 - libvirtError: the domain stopped, or aborted
            pass
        self._end()

    def _end(self) -> None:
        try:
            self._stream.eventRemoveCallback()
        except Exception:  # noqa: BLE001
            pass
        self._chunks.put(None)
    def read(self, timeout: float) -> bytes | None:
        """Up to 4 KiB the guest printed (what has arrived, joined), waiting at most
        *timeout* seconds for the first bytes; b"" when nothing came in time, None once
        the console closed (domain stopped, console taken by another client with force,
        or :meth:`close`) and everything before was read."""
        if self._closed:
            return None
        if not self._buf:
            if self._eof:
                return None
            try:
                first = self._chunks.get(timeout=max(timeout, 0.0))
            except queue.Empty:
                return b""
            if first is None:
                self._eof = True
                return None
            self._buf = first
            while len(self._buf) < CHUNK:
                try:
                    more = self._chunks.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._eof = True
                    break
                self._buf += more
        out, self._buf = self._buf[:CHUNK], self._buf[CHUNK:]
        return out

    def write(self, data: bytes) -> None:
        """Send *data* (keystrokes) to the guest's console. Raises OSError once closed."""
        if self._closed or self._eof:
            raise OSError("console closed")
        with self._lock:
            sent = 0
            while sent < len(data):
                n = self._stream.send(data[sent:])
                if n == -2:  # the stream is full: let the loop thread drain it
                    threading.Event().wait(0.01)
                    continue
                if not isinstance(n, int) or n < 0:
                    raise OSError("console closed")
                sent += n

    def close(self) -> None:
        """Stop reading, abort the stream, close the console's connection; never raises."""
        if self._closed:
            return
        self._closed = True
        for step in (self._stream.eventRemoveCallback, self._stream.abort, self._conn.close):
            try:
                step()
            except Exception:  # noqa: BLE001 - close never raises
                pass


def open_console(lv: Any, open_conn: Any, name: str) -> LibvirtConsoleStream:
    """Open domain *name*'s first console on a connection of its own (``open_conn()``
    makes it, after the event loop is running) with ``VIR_DOMAIN_CONSOLE_FORCE`` (a stale
    session, e.g. a ``virsh console`` left open, is taken over). Raises libvirtError or
    what *open_conn* raises."""
    ensure_event_loop(lv)
    conn = open_conn()
    try:
        dom = conn.lookupByName(name)
        stream = conn.newStream(lv.VIR_STREAM_NONBLOCK)
        try:
            dom.openConsole(None, stream, lv.VIR_DOMAIN_CONSOLE_FORCE)
            return LibvirtConsoleStream(lv, conn, stream)
        except BaseException:
            try:
                stream.abort()
            except Exception:  # noqa: BLE001
                pass
            raise
    except BaseException:
        try:
            conn.close()
        except Exception:  # noqa: BLE001
            pass
        raise
