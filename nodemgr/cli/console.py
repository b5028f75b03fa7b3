"""Bridge a terminal (or plain stdin/stdout) to a VM's serial console (``rcons``).

On a terminal, stdin is put in raw mode and restored on exit; the escape sequences
``Ctrl-E c .`` (xCAT's conserver) and ``Ctrl-]`` (virsh's) leave. Without a terminal,
stdin is sent to the guest until it ends, and the guest's output is copied to stdout until
the console closes or *timeout* seconds pass without output.
"""

from __future__ import annotations

import os
import select
import sys
import time

ESCAPES = (b"\x05c.", b"\x1d")  # Ctrl-E c .  /  Ctrl-]


def attach(stream, *, timeout: float | None = None, stdin=None, stdout=None) -> int:
    """Copy between the console *stream* (:class:`~nodemgr.plugins.base.ConsoleStream`)
    and the terminal until an escape, the console's end, or *timeout* seconds (None:
    never) without output. Returns the exit code (0)."""
    fin = stdin if stdin is not None else sys.stdin
    fout = stdout if stdout is not None else sys.stdout.buffer
    try:
        fd = fin.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        fd = None
    tty = fd is not None and os.isatty(fd)
    saved = None
    if tty:
        import termios
        import tty as ttymod

        saved = termios.tcgetattr(fd)
        ttymod.setraw(fd)
        fout.write(b"[Enter Ctrl-E c . or Ctrl-] to leave]\r\n")
        fout.flush()
    last, pending, stdin_open = time.monotonic(), b"", fd is not None
    try:
        while True:
            if stdin_open:
                ready, _, _ = select.select([fd], [], [], 0)
                if ready:
                    data = os.read(fd, 1024)
                    if not data:
                        stdin_open = False
                    else:
                        pending += data
                        if tty and any(e in pending for e in ESCAPES):
                            return 0
                        stream.write(data)
                        pending = pending[-3:]
            chunk = stream.read(0.2)
            if chunk is None:
                return 0
            if chunk:
                last = time.monotonic()
                fout.write(chunk)
                fout.flush()
            elif timeout is not None and time.monotonic() - last >= timeout:
                return 0
    finally:
        if saved is not None:
            import termios

            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
