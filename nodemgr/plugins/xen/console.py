"""A Xen guest's serial console as a :class:`~nodemgr.plugins.base.ConsoleStream`:
``xl console <vm>`` running on the dom0 on an SSH channel with a pseudo-terminal
(:meth:`nodemgr.sshpool.Connection.open_pty`).

The bytes are the guest's, untouched (a terminal's CR LF included); keystrokes go to the
guest; ``xl console`` itself leaves on Ctrl-] (0x1d), which :meth:`XenConsole.detach`
sends. The channel is the caller's until :meth:`XenConsole.close`.

What it must never do: block longer than the timeout it was given, or raise from close.
"""

from __future__ import annotations

import time

from nodemgr.plugins.base import ConsoleStream, Unreachable

#: ``xl console``'s escape character (Ctrl-]), as in xl(1).
ESCAPE = b"\x1d"


class XenConsole(ConsoleStream):
    """The open console channel of one domain."""

    def __init__(self, channel) -> None:
        """Args: channel: an open paramiko channel running ``xl console <vm>`` on a pty."""
        self._chan = channel
        self._closed = False

    def read(self, timeout: float) -> bytes | None:
        """Up to 4 KiB the guest printed, waiting at most *timeout* seconds; b"" when
        nothing came in time, None once the console closed (``xl console`` exited)."""
        if self._closed:
            return None
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            if self._chan.recv_ready():
                data = self._chan.recv(4096)
                return data if data else self._eof()
            if self._chan.exit_status_ready() or self._chan.closed or self._chan.eof_received:
                return self._eof()
            left = deadline - time.monotonic()
            if left <= 0:
                return b""
            self._chan.settimeout(min(left, 0.2))
            try:
                data = self._chan.recv(4096)
            except TimeoutError:
                continue
            return data if data else self._eof()

    def _eof(self) -> None:
        self._closed = True
        return None

    def write(self, data: bytes) -> None:
        """Send *data* (keystrokes) to the guest. Raises Unreachable once closed."""
        if self._closed:
            raise Unreachable("the console is closed")
        try:
            self._chan.sendall(data)
        except OSError as exc:
            self._closed = True
            raise Unreachable(f"console lost: {exc}") from None

    def detach(self) -> None:
        """Leave the console as an xl user does (Ctrl-]); the guest keeps running."""
        if not self._closed:
            try:
                self._chan.sendall(ESCAPE)
            except OSError:
                self._closed = True

    def close(self) -> None:
        """Close the channel (``xl console`` gets a hang-up); never raises."""
        self._closed = True
        try:
            self._chan.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass
