"""Kea DHCPv4's control channel and configuration check, with the standard library only.

Kea 2.2 (Debian 12) listens on a unix stream socket (``control-socket`` in the
configuration, Kea ARM "Management API" / "Control Channel"): the client sends one JSON
command ``{"command": ..., "arguments": {...}}``, Kea answers one JSON object
``{"result": 0|1|2|3, "text": ..., "arguments": ...}`` and closes the connection (result 0 =
success, 1 = error, 2 = unsupported command, 3 = empty). Commands used by makedhcp:
``config-reload`` (re-read the file Kea was started with; leases stay in the memfile
database), ``config-get`` (the running configuration) and ``status-get``. Kea 2.2 has no
``host_cmds`` hook (reservation commands) in Debian; a whole-configuration reload is the
way to change reservations without a restart.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess

from nodemgr.errors import NodemgrError


class KeaError(NodemgrError):
    """Kea refused a configuration or a command (one line, Kea's own text)."""


class KeaNotRunning(NodemgrError):
    """No Kea answers on the control socket (absent, stale or refusing)."""


def command(sock_path: str, name: str, arguments: dict | None = None,
            timeout: float = 30.0) -> dict:
    """Send one control command to Kea and return its answer.

    Args:
        sock_path: path of Kea's unix control socket (setting ``keasocket``).
        name: command name (``config-reload``, ``config-get``, ``status-get``, ...).
        arguments: the command's ``arguments`` object, if any.
        timeout: seconds for connect + answer (a reload of 10,000 reservations takes
            about a second on a 2-core machine).
    Returns:
        Kea's answer, a dict ``{"result": int, "text": str, "arguments": ...}`` (Kea ARM
        "Data Syntax"; a list answer of the control agent is unwrapped to its element).
    Raises:
        KeaNotRunning: the socket does not exist or nobody accepts on it.
        KeaError: the answer is not JSON (names the command).
    """
    msg = {"command": name}
    if arguments is not None:
        msg["arguments"] = arguments
    if not os.path.exists(sock_path):
        raise KeaNotRunning(f"no Kea control socket at {sock_path}")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(sock_path)
            s.sendall(json.dumps(msg).encode())
            chunks = []
            while True:  # Kea 2.2 closes the connection after one answer
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
    except (ConnectionRefusedError, FileNotFoundError):
        raise KeaNotRunning(f"nothing answers on the Kea control socket {sock_path}") from None
    except OSError as exc:
        raise KeaNotRunning(f"Kea control socket {sock_path}: {exc.strerror or exc}") from None
    try:
        answer = json.loads(b"".join(chunks))
    except ValueError:
        raise KeaError(f"Kea's answer to {name} is not JSON") from None
    if isinstance(answer, list) and answer:
        answer = answer[0]
    return answer


def reload(sock_path: str) -> str:
    """``config-reload``: Kea re-reads the file it was started with (``-c``), without a
    restart; a rejected file leaves the running configuration in place.

    Returns:
        Kea's text (``Configuration successful.``).
    Raises:
        KeaNotRunning: no server on the socket.
        KeaError: Kea's result is not 0 (its text).
    """
    ans = command(sock_path, "config-reload")
    if ans.get("result") != 0:
        raise KeaError(f"Kea rejected the configuration on reload: {ans.get('text')}")
    return str(ans.get("text", ""))


def running_config(sock_path: str) -> dict:
    """``config-get``: the running configuration, ``{"Dhcp4": {...}}`` (``hash`` dropped).

    Raises:
        KeaNotRunning, KeaError (result not 0).
    """
    ans = command(sock_path, "config-get")
    if ans.get("result") != 0 or not isinstance(ans.get("arguments"), dict):
        raise KeaError(f"Kea config-get failed: {ans.get('text')}")
    cfg = dict(ans["arguments"])
    cfg.pop("hash", None)
    return cfg


def binary() -> str:
    """Path of ``kea-dhcp4`` (PATH, then /usr/sbin).

    Raises:
        KeaError: not installed (names the Debian package).
    """
    path = shutil.which("kea-dhcp4") or ("/usr/sbin/kea-dhcp4"
                                         if os.access("/usr/sbin/kea-dhcp4", os.X_OK) else None)
    if not path:
        raise KeaError("kea-dhcp4 is not installed (Debian package kea-dhcp4-server)")
    return path


def check_file(path: str, timeout: float = 60.0) -> None:
    """``kea-dhcp4 -t <path>``: Kea's own syntax and logic check (it also checks that the
    configured interfaces exist on this machine).

    Raises:
        KeaError: ``kea-dhcp4 -t`` exit code not 0; the message is Kea's error line
            (``Error encountered: ...`` / ``... (file:line:col)``), on one line.
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="nodemgr-kea-t-") as d:
        # -t writes a logger lock file: into a scratch directory, not next to the config
        env = dict(os.environ, KEA_PIDFILE_DIR=d, KEA_LOCKFILE_DIR=d)
        try:
            p = subprocess.run([binary(), "-t", path], capture_output=True, text=True,
                               timeout=timeout, env=env, check=False)
        except subprocess.TimeoutExpired:
            raise KeaError(f"kea-dhcp4 -t {path} did not finish in {timeout:.0f} s") from None
    if p.returncode != 0:
        raise KeaError("kea-dhcp4 -t rejected the configuration: " + _kea_message(p.stdout
                                                                                + p.stderr))


def _kea_message(text: str) -> str:
    """The line of ``kea-dhcp4 -t`` output that says what is wrong (one line)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for key in ("Error encountered", "ERROR", "error", "failed"):
        for ln in lines:
            if key in ln:
                return ln[ln.find(key):] if key == "Error encountered" else ln
    return lines[-1] if lines else "(no output)"
