"""Readers for the text ``VBoxManage`` prints (VirtualBox 4.1 to 7.x), and its error texts.

Formats, each checked against the real recorded outputs in ``tests/fixtures/vbox/samples``
(provenance in ``tests/fixtures/vbox/README.md``) and VirtualBox's own source
(``src/VBox/Frontends/VBoxManage/VBoxManageInfo.cpp``, ``VBoxManageList.cpp``,
``VBoxManageMetrics.cpp``, ``VBoxManageGuestProp.cpp``, ``VBoxManageMisc.cpp``):

* ``showvminfo --machinereadable``: one ``key="value"`` or ``key=number`` per line; a key
  holding ``=`` or a storage slot is quoted (``"SATA-0-0"="/path"``); since 6.1 ``"`` and
  ``\\`` inside a value are escaped with ``\\`` (older versions printed them raw, so a
  backslash before any other character stays as it is); a value may span lines (a
  multi-line ``description``); 7.0 also prints a few lines that are not ``key=value`` at all
  (``Encryption:     disabled``, `` rec_screen0``), which are skipped.
* ``list vms`` / ``list runningvms``: ``"name" {uuid}`` per line.
* ``metrics query``: a fixed-width table (``Object``, ``Metric``, ``Values``) whose column
  widths are those of the dashed line under the header (VirtualBox 4-6: 10/20, 7.x: 15/40);
  values are ``, ``-separated, each a number with its unit (``%``, `` kB``, `` MB``, `` B/s``).
* ``guestproperty get``: ``Value: <v>`` or ``No value set!``; ``guestproperty enumerate``:
  ``Name: <n>, value: <v>, timestamp: <ns>, flags: <f>`` (up to 6.1, and 7.x with
  ``--old-format``) or 7.x's table ``<name padded> = '<value>'  @ <time> <flags>``.
* Errors: ``VBoxManage: error: <text>`` lines on stderr, then ``Details: code VBOX_E_...``
  and ``Context: ...``; exit code 1 (2 for syntax errors). A missing ``VBoxManage`` is the
  remote shell's ``sh: 1: VBoxManage: not found`` (dash) or ``...: command not found``
  (bash), exit 127.

Units: VirtualBox's ``memory`` and ``vram`` are MB meaning MiB (the API's ``MemorySize`` is
in units of 1024*1024 bytes); metrics' ``kB``/``MB`` are KiB/MiB as well.

Pure functions on strings: no I/O, no SSH; never evaluates anything it reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum


class ParseError(ValueError):
    """Text that does not have the expected format; the message names the problem."""


# -- showvminfo --machinereadable --------------------------------------------------------------


def _unescape(raw: str) -> str:
    """Undo VBoxManage's escaping: ``\\"`` -> ``"``, ``\\\\`` -> ``\\``; any other backslash
    (pre-6.1 output of a Windows path) is kept."""
    return re.sub(r'\\(["\\])', r"\1", raw)


def _closing_quote(s: str, start: int) -> int:
    """Index of the first unescaped ``"`` in *s* at or after *start*, or -1."""
    i = start
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s) and s[i + 1] in '"\\':
            i += 2
            continue
        if c == '"':
            return i
        i += 1
    return -1


def parse_machinereadable(text: str) -> dict[str, str]:
    """``VBoxManage showvminfo <vm> --machinereadable`` -> ``{key: value}``.

    Args:
        text: the command's standard output (any VirtualBox version 4.1-7.x).
    Returns:
        Keys as printed, without quotes (``SATA-0-0``, ``vrdeproperty[TCP/Ports]``); values
        unquoted and unescaped, numbers left as strings (``memory`` is ``"4096"``, MiB). A
        later duplicate key wins. Lines that are not ``key=value`` are skipped.
    Raises:
        ParseError: a quoted key or value that is never closed.
    """
    out: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.startswith('"'):
            end = _closing_quote(line, 1)
            if end < 0 or line[end + 1:end + 2] != "=":
                raise ParseError(f"unterminated quoted key in showvminfo line: {line!r}")
            key, rest = _unescape(line[1:end]), line[end + 2:]
        else:
            key, sep, rest = line.partition("=")
            if not sep or not key or key != key.strip() or '"' in key:
                continue  # "Encryption:     disabled", " rec_screen0", blank lines
        if rest.startswith('"'):
            body = rest[1:]
            end = _closing_quote(body, 0)
            while end < 0:  # a value that spans lines (description="a\nb")
                if i >= len(lines):
                    raise ParseError(f"unterminated value for {key!r} in showvminfo output")
                body += "\n" + lines[i]
                i += 1
                end = _closing_quote(body, 0)
            out[key] = _unescape(body[:end])
        else:
            out[key] = rest.strip()
    return out


@dataclass(frozen=True)
class Nic:
    """One enabled network adapter of a VM.

    Attributes:
        slot: adapter number, 1-8 (``--nic<slot>``).
        kind: attachment as VirtualBox prints it: ``nat``, ``bridged``, ``hostonly``,
            ``intnet``, ``natnetwork``, ``generic``, ``null`` (``none`` slots are left out).
        mac: ``08:00:27:44:d7:f6`` (lower case, colons; VirtualBox prints ``08002744D7F6``),
            or None.
        network: the bridged interface, host-only interface, internal or NAT network name.
        model: adapter type (``82540EM``, ``virtio``), or None.
    """

    slot: int
    kind: str
    mac: str | None
    network: str | None
    model: str | None


@dataclass(frozen=True)
class Disk:
    """One attached medium.

    Attributes:
        controller: storage controller name (``SATA``, ``IDE Controller``).
        port: port number. device: device number on the port.
        path: the medium file, or None for an empty DVD drive (``emptydrive``).
        uuid: the medium UUID when VirtualBox prints it (``<ctl>-ImageUUID-p-d``).
        dvd: True for a DVD drive (empty, ejectable, or an ``.iso``).
    """

    controller: str
    port: int
    device: int
    path: str | None
    uuid: str | None
    dvd: bool


_NETWORK_KEY = {"bridged": "bridgeadapter", "hostonly": "hostonlyadapter", "intnet": "intnet",
                "natnetwork": "nat-network", "generic": "generic"}


def format_mac(raw: str) -> str:
    """``08002744D7F6`` -> ``08:00:27:44:d7:f6``.

    Raises:
        ParseError: not 12 hex digits.
    """
    if not re.fullmatch(r"[0-9A-Fa-f]{12}", raw or ""):
        raise ParseError(f"not a VirtualBox MAC address: {raw!r}")
    raw = raw.lower()
    return ":".join(raw[i:i + 2] for i in range(0, 12, 2))


@dataclass
class VmInfo:
    """The facts the driver uses from one ``showvminfo --machinereadable``.

    Attributes:
        name, uuid: identity (``uuid`` without braces).
        state: VirtualBox's short state word (``running``, ``poweroff``...; see
            :func:`power_state`), or None when the output has no ``VMState``.
        memory_mib: RAM in MiB. cpus: virtual CPUs.
        ostype: guest OS type description. cfgfile: the ``.vbox`` settings file.
        boot: boot order, ``boot1``.. without ``none`` (``["net", "disk"]``).
        nics: enabled adapters in slot order. disks: attached media.
        raw: every key of the output.
    """

    name: str | None
    uuid: str | None
    state: str | None
    memory_mib: int | None
    cpus: int | None
    ostype: str | None
    cfgfile: str | None
    boot: list[str] = field(default_factory=list)
    nics: list[Nic] = field(default_factory=list)
    disks: list[Disk] = field(default_factory=list)
    raw: dict[str, str] = field(default_factory=dict)


def _int(d: dict[str, str], key: str) -> int | None:
    v = d.get(key)
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        raise ParseError(f"showvminfo {key}={v!r} is not a number") from None


def vm_info(text: str) -> VmInfo:
    """Parse ``showvminfo --machinereadable`` into :class:`VmInfo`.

    Raises:
        ParseError: bad quoting (see :func:`parse_machinereadable`), a non-numeric
            ``memory``/``cpus``, or a malformed MAC address.
    """
    d = parse_machinereadable(text)
    nics = []
    for slot in range(1, 37):
        kind = d.get(f"nic{slot}")
        if kind is None or kind == "none":
            continue
        mac = d.get(f"macaddress{slot}")
        net = d.get(f"{_NETWORK_KEY.get(kind, '')}{slot}") if kind in _NETWORK_KEY else None
        if kind == "nat":
            net = None
        nics.append(Nic(slot=slot, kind=kind, mac=format_mac(mac) if mac else None,
                        network=net, model=d.get(f"nictype{slot}")))
    controllers = [d[k] for k in sorted((k for k in d if re.fullmatch(
        r"storagecontrollername\d+", k)), key=lambda k: int(k[21:]))]
    disks = []
    for ctl in controllers:
        slot_re = re.compile(re.escape(ctl) + r"-(\d+)-(\d+)")
        for key, value in d.items():
            m = slot_re.fullmatch(key)
            if not m or value == "none":
                continue
            port, dev = int(m.group(1)), int(m.group(2))
            ejectable = (f"{ctl}-IsEjected-{port}-{dev}" in d
                         or (f"{ctl}-IsEjected" in d and value == "emptydrive"))
            path = None if value == "emptydrive" else value
            disks.append(Disk(controller=ctl, port=port, device=dev, path=path,
                              uuid=d.get(f"{ctl}-ImageUUID-{port}-{dev}"),
                              dvd=ejectable or path is None or value.lower().endswith(".iso")))
    boot = [d[f"boot{n}"] for n in range(1, 5) if d.get(f"boot{n}", "none") != "none"]
    return VmInfo(name=d.get("name"), uuid=d.get("UUID"), state=d.get("VMState"),
                  memory_mib=_int(d, "memory"), cpus=_int(d, "cpus"), ostype=d.get("ostype"),
                  cfgfile=d.get("CfgFile"), boot=boot, nics=nics, disks=disks, raw=d)


# -- power states ------------------------------------------------------------------------------

#: VirtualBox's short machine-state words (``machineStateToName(state, fShort=true)`` in
#: VBoxManageInfo.cpp, 4.x-7.x) -> xCAT power words. Transitional states count as the
#: state the machine is in while they last: a live snapshot of a running VM is ``on``,
#: teleporting a paused VM is ``suspended``, an offline snapshot is ``off``. ``saved`` (state
#: on disk, resumed by ``startvm``) is ``suspended``; ``aborted``, ``aborted-saved`` (7.0)
#: and ``gurumeditation`` (the VM is stuck) are ``crashed``, as the Xen driver reports a
#: crashed domain.
POWER_WORDS: dict[str, str] = {
    "running": "on", "starting": "on", "stopping": "on", "saving": "on", "restoring": "on",
    "teleporting": "on", "livesnapshotting": "on", "onlinesnapshotting": "on",
    "deletingsnapshotlive": "on", "teleportingin": "on", "faulttolerantsyncing": "on",
    "paused": "suspended", "teleportingpausedvm": "suspended",
    "deletingsnapshotlivepaused": "suspended", "saved": "suspended",
    "poweroff": "off", "teleported": "off", "settingup": "off", "snapshotting": "off",
    "restoringsnapshot": "off", "deletingsnapshot": "off",
    "aborted": "crashed", "aborted-saved": "crashed", "gurumeditation": "crashed",
}


def power_state(state: str | None) -> str:
    """The xCAT power word (``on``, ``off``, ``suspended``, ``crashed``) for a VirtualBox
    state word from ``VMState``; an unknown word comes back unchanged (the base driver's
    rule: "xCAT power word or the native state"), a missing one as ``unknown``."""
    if not state:
        return "unknown"
    return POWER_WORDS.get(state, state)


# -- list vms / list runningvms --------------------------------------------------------------

_LIST_RE = re.compile(r'"(.*)" \{([0-9a-fA-F-]{36})\}')


def parse_list_vms(text: str) -> list[tuple[str, str]]:
    """``VBoxManage list vms`` (or ``list runningvms``) -> ``[(name, uuid), ...]``.

    Names may hold spaces, quotes and braces (the UUID is the last ``{...}`` on the line);
    an unregistered-but-known VM is listed as ``"<inaccessible>"``.

    Raises:
        ParseError: a non-empty line that is not ``"name" {uuid}``.
    """
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _LIST_RE.fullmatch(line.strip())
        if not m:
            raise ParseError(f"unexpected 'list vms' line: {line!r}")
        out.append((m.group(1), m.group(2)))
    return out


# -- createvm / clonevm / import / startvm -----------------------------------------------------

_CREATED_RE = re.compile(r"Virtual machine '(.*)' is created(?: and registered)?\.\s*\n"
                         r"UUID: ([0-9a-fA-F-]{36})\s*\nSettings file: '(.*)'")


def parse_createvm(text: str) -> tuple[str, str, str]:
    """``VBoxManage createvm --name n --register`` -> ``(name, uuid, settings_file)``.

    Raises:
        ParseError: the three lines (``Virtual machine 'n' is created and registered.``,
            ``UUID: ...``, ``Settings file: '...'``) are not there.
    """
    m = _CREATED_RE.search(text)
    if not m:
        raise ParseError("createvm printed no 'Virtual machine ... is created' block")
    return m.group(1), m.group(2), m.group(3)


def parse_clonevm(text: str) -> str:
    """``VBoxManage clonevm ...`` -> the new machine's name (``Machine has been successfully
    cloned as "n"``).

    Raises:
        ParseError: no such line.
    """
    m = re.search(r'Machine has been successfully cloned as "(.*)"', text)
    if not m:
        raise ParseError("clonevm printed no 'successfully cloned' line")
    return m.group(1)


def parse_import(text: str) -> str | None:
    """``VBoxManage import <ova>`` -> the imported VM's name (the ``Suggested VM name "n"``
    line, which ``--vsys 0 --vmname`` changes), or None when the output does not list it.

    Raises:
        ParseError: no ``Successfully imported the appliance.`` line.
    """
    if "Successfully imported the appliance." not in text:
        raise ParseError("import printed no 'Successfully imported the appliance.' line")
    m = re.search(r'Suggested VM name "(.*)"', text)
    return m.group(1) if m else None


def started(text: str) -> bool:
    """True when ``startvm`` printed ``VM "n" has been successfully started.``."""
    return re.search(r'VM ".*" has been successfully started\.', text) is not None


# -- metrics -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """One row of ``metrics query``.

    Attributes:
        object: ``host`` or the VM name. name: ``CPU/Load/User``, ``RAM/Usage/Used:avg``...
        values: the samples, oldest first (an empty tuple when the metric has no data yet,
            e.g. a ``Guest/*`` metric without Guest Additions).
        unit: ``%``, ``kB`` (KiB), ``MB`` (MiB), ``B/s``... or None without samples.
    """

    object: str
    name: str
    values: tuple[float, ...]
    unit: str | None


_VALUE_RE = re.compile(r"(-?\d+(?:\.\d+)?)\s*(\S*)")


def parse_metrics_query(text: str) -> list[Metric]:
    """``VBoxManage metrics query [<vm>|host [<metrics>]]`` -> rows.

    Columns are cut at the widths of the dashed line (so a VM name with spaces survives),
    which works for the 10/20 widths of VirtualBox 4-6 and the 15/40 of 7.x.

    Raises:
        ParseError: no dashed header line, or a value that is not a number with a unit.
    """
    lines = text.splitlines()
    n = next((i for i, line in enumerate(lines)
              if line.startswith("---") and set(line) <= {"-", " "}), None)
    if n is None:
        raise ParseError("metrics query output has no '----- -----' header line")
    widths = [len(x) for x in lines[n].split(" ")]
    c1 = widths[0] + 1
    c2 = c1 + widths[1] + 1
    out = []
    for line in lines[n + 1:]:
        if not line.strip():
            continue
        obj, name, vals = line[:c1].strip(), line[c1:c2].strip(), line[c2:].strip()
        values, unit = [], None
        for item in filter(None, (v.strip() for v in vals.split(","))):
            m = _VALUE_RE.fullmatch(item)
            if not m:
                raise ParseError(f"metrics value {item!r} of {obj} {name} is not a number")
            values.append(float(m.group(1)))
            unit = m.group(2) or None
        out.append(Metric(object=obj, name=name, values=tuple(values), unit=unit))
    return out


# -- guest properties --------------------------------------------------------------------------


def parse_guestproperty_get(text: str) -> str | None:
    """``VBoxManage guestproperty get <vm> <name>`` -> the value, or None for ``No value
    set!`` (property absent: Guest Additions not running, or no such NIC).

    Raises:
        ParseError: neither ``Value: ...`` nor ``No value set!``.
    """
    for line in text.splitlines():
        if line.startswith("Value: "):
            return line[len("Value: "):]
        if line.strip() == "No value set!":
            return None
    raise ParseError(f"unexpected guestproperty get output: {text.strip()[:80]!r}")


_ENUM_OLD_RE = re.compile(r"Name: (.*?), value: (.*), timestamp: (-?\d+), flags: ?(.*)")
_ENUM_NEW_RE = re.compile(r"(\S+)\s+= '(.*)'(?:\s+@ .*)?")


def parse_guestproperty_enumerate(text: str) -> dict[str, str]:
    """``VBoxManage guestproperty enumerate <vm> [--patterns p]`` -> ``{name: value}``.

    Reads both layouts (see the module docstring); ``No properties found.`` gives ``{}``.

    Raises:
        ParseError: a line in neither layout.
    """
    out = {}
    for line in text.splitlines():
        if not line.strip() or line.strip() == "No properties found.":
            continue
        m = _ENUM_OLD_RE.fullmatch(line.rstrip()) or _ENUM_NEW_RE.fullmatch(line.rstrip())
        if not m:
            raise ParseError(f"unexpected guestproperty enumerate line: {line!r}")
        out[m.group(1)] = m.group(2)
    return out


def guest_ipv4(props: dict[str, str]) -> dict[int, str]:
    """``{nic index (0-based, as in /VirtualBox/GuestInfo/Net/<n>/V4/IP): address}`` from
    enumerated guest properties (Guest Additions publish them while they run)."""
    out = {}
    for name, value in props.items():
        m = re.fullmatch(r"/VirtualBox/GuestInfo/Net/(\d+)/V4/IP", name)
        if m and value:
            out[int(m.group(1))] = value
    return out


# -- errors ------------------------------------------------------------------------------------


class ErrorKind(StrEnum):
    """What went wrong, as far as the driver's per-node messages need to know."""

    MISSING = "missing"          #: VBoxManage is not installed / not on the PATH (exit 127)
    NOT_FOUND = "not_found"      #: VBOX_E_OBJECT_NOT_FOUND: no such registered machine
    LOCKED = "locked"            #: VBOX_E_INVALID_OBJECT_STATE: session lock held elsewhere
    EXISTS = "exists"            #: VBOX_E_FILE_ERROR on createvm: settings file exists
    HOSTIF = "hostif"            #: unknown bridged / host-only interface at startvm
    OTHER = "other"


@dataclass(frozen=True)
class VBoxError:
    """A classified VBoxManage failure.

    Attributes:
        kind: :class:`ErrorKind`.
        message: one line: the first ``VBoxManage: error:`` text without its prefix
            (``Could not find a registered machine named 'x'``), or a sentence of ours for
            a missing VBoxManage.
        code: the ``VBOX_E_*`` / ``NS_ERROR_*`` / ``E_*`` code name from the Details line,
            or None.
    """

    kind: ErrorKind
    message: str
    code: str | None


def classify_error(rc: int, stderr: str) -> VBoxError:
    """Classify a failed VBoxManage run (non-zero *rc*, its *stderr* text).

    The kinds come from the real texts (README of tests/fixtures/vbox): ``Could not find a
    registered machine named|with UUID`` (VBOX_E_OBJECT_NOT_FOUND), ``is already locked for
    a session`` / ``is already locked by a session`` (VBOX_E_INVALID_OBJECT_STATE),
    ``Machine settings file '...' already exists`` (VBOX_E_FILE_ERROR), ``Nonexistent host
    networking interface, name '...'`` and ``Failed to open/create the internal network
    'HostInterfaceNetworking-...'`` (bad bridged/host-only adapter), exit code 127 or the
    shell's ``not found`` (no VBoxManage).
    """
    text = stderr or ""
    if rc == 127 or re.search(r"VBoxManage: (?:command )?not found", text):
        return VBoxError(ErrorKind.MISSING, "VBoxManage is not installed (not found on the "
                         "host's PATH)", None)
    errors = [m.group(0) for m in re.finditer(r"(?<=: error: ).*", text)]
    main = next((e for e in errors if not e.startswith(("Details:", "Context:"))), None)
    if main is None:
        main = next((ln.strip() for ln in text.splitlines() if ln.strip()), f"exit code {rc}")
    cm = re.search(r"Details: code (\w+)", text)
    code = cm.group(1) if cm else None
    if "Could not find a registered machine" in text or code == "VBOX_E_OBJECT_NOT_FOUND":
        kind = ErrorKind.NOT_FOUND
    elif "is already locked" in text or code == "VBOX_E_INVALID_OBJECT_STATE":
        kind = ErrorKind.LOCKED
    elif re.search(r"Machine settings file '.*' already exists", text):
        kind = ErrorKind.EXISTS
    elif ("Nonexistent host networking interface" in text
          or "HostInterfaceNetworking-" in text):
        kind = ErrorKind.HOSTIF
    else:
        kind = ErrorKind.OTHER
    return VBoxError(kind, main.strip(), code)


# -- list hostinfo / list bridgedifs, hostonlyifs / showmediuminfo ---------------------------


def parse_colon_block(text: str) -> dict[str, str]:
    """``Key:   value`` lines (``list hostinfo``, one ``showmediuminfo``) -> ``{key: value}``;
    values stripped, keys as printed (7.x pads after the colon, older versions do not).
    Lines without a colon are skipped; a later duplicate key wins."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and key == key.rstrip():
            out[key.strip()] = value.strip()
    return out


def host_memory_available_mib(text: str) -> int:
    """``VBoxManage list hostinfo`` -> ``Memory available`` in MiB (printed as ``N MByte``:
    VBoxManageList.cpp divides bytes by 1024*1024).

    Raises:
        ParseError: no ``Memory available: N MByte`` line.
    """
    m = re.search(r"^Memory available:\s+(\d+) MByte", text, re.M)
    if not m:
        raise ParseError("list hostinfo printed no 'Memory available: N MByte' line")
    return int(m.group(1))


def host_cpu_count(text: str) -> int | None:
    """``VBoxManage list hostinfo`` -> the host's logical CPUs (``Processor online count``,
    else ``Processor count``), or None when neither is printed."""
    for key in ("Processor online count", "Processor count"):
        m = re.search(rf"^{key}:\s+(\d+)", text, re.M)
        if m:
            return int(m.group(1))
    return None


def parse_list_ifs(text: str) -> list[str]:
    """``VBoxManage list bridgedifs`` / ``list hostonlyifs`` -> interface names (the
    ``Name:`` line of each blank-line separated block)."""
    return [m.group(1).strip() for m in re.finditer(r"^Name:\s+(.*)$", text, re.M)]


def medium_capacity_mib(text: str) -> int | None:
    """``VBoxManage showmediuminfo disk <path>`` -> the virtual size in MiB (``Capacity:
    N MBytes``), or None when it is not printed."""
    m = re.search(r"^Capacity:\s+(\d+) MBytes", text, re.M)
    return int(m.group(1)) if m else None
