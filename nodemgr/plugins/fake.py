"""A complete in-memory hypervisor driver, for testing every layer above the drivers.

Like Ironic's fake driver, it implements the whole :class:`HypervisorDriver` interface with
the same output strings as xCAT's KVM plugin and libvirt, without any hypervisor. Its
state (VMs with power state, memory, cpus, disks; masters; host memory) lives in a JSON file
shared by every process and thread, guarded by ``flock`` on ``<file>.lock``, so parallel
groups and concurrent commands are safe; with no file it lives in this process only.

Endpoint URI forms (settings may also come from ``Endpoint.options``, which win)::

    fake:///var/tmp/state.json                  state file = the path
    fake://host01?state=/var/tmp/s.json&latency=0.05&hang=1&refuse=1&memory=65536

* ``state``: JSON state file (default: process memory).
* ``latency=S``: sleep S seconds per round trip — ``connect`` is one, each batch call one
  (``stat`` of many VMs is ONE round trip, as libvirt's ``listAllDomains``).
* ``hang=1`` (or ``hang=connect``): ``connect`` never returns (a dead endpoint).
  ``hang=<method>`` (``power``, ``create``, ...): that call never returns.
* ``refuse=1``: ``connect`` raises :class:`Unreachable` at once.
* ``memory=MiB``: the host's memory (default 65536) for ``host_free_memory_mib``.

VMs belong to the endpoint's host (``Endpoint.host``, else the URI's host, else
``localhost``). This module must never touch a real hypervisor or the tables.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from nodemgr.plugins.base import (
    POWER_ACTIONS,
    Address,
    Console,
    ConsoleStream,
    DiskInfo,
    Endpoint,
    Facts,
    HypervisorDriver,
    InvalidState,
    Inventory,
    Metrics,
    NicInfo,
    NodeResult,
    NotFound,
    PermanentError,
    Traits,
    Unreachable,
    Unsupported,
    VmChange,
    VmInfo,
    VmSpec,
    next_dev_names,
)

DEFAULT_HOST_MEMORY_MIB = 65536
RUNNING = ("on", "suspended")
LIBVIRT_STATE = {"on": (1, "running"), "suspended": (3, "paused"), "off": (5, "shut off")}

_memory: dict[str, dict] = {}  # state when no file is given, keyed by "" (one per process)
_memory_lock = threading.RLock()


# -- settings -----------------------------------------------------------------------------


def parse_uri(uri: str) -> tuple[str, str, dict[str, str]]:
    """Split ``fake://host/path?k=v&...`` into (host, path, query) without urllib."""
    rest = uri.split("://", 1)[1] if "://" in uri else uri
    rest, _, query = rest.partition("?")
    host, slash, path = rest.partition("/")
    params: dict[str, str] = {}
    for part in query.split("&") if query else []:
        k, _, v = part.partition("=")
        if "%" in v or "+" in v:
            from urllib.parse import unquote_plus

            v = unquote_plus(v)
        params[k] = v
    return host, (slash + path if path else ""), params


class Settings:
    """What a fake endpoint is: host name, state file, latency, failure modes."""

    def __init__(self, endpoint: Endpoint) -> None:
        host, path, q = parse_uri(endpoint.uri)
        q.update(dict(endpoint.options))
        self.host = endpoint.host or host or "localhost"
        self.state = q.get("state") or path or ""
        self.latency = float(q.get("latency") or 0)
        hang = q.get("hang", "")
        self.hang = "" if hang in ("", "0", "no") else ("connect" if hang in ("1", "yes") else hang)
        self.refuse = q.get("refuse", "") not in ("", "0", "no")
        self.memory_mib = int(q.get("memory") or DEFAULT_HOST_MEMORY_MIB)
        self.console = q.get("console", "serial")


class _FakeStream(ConsoleStream):
    """A fake serial console: a banner when the VM runs, then the echo of what is sent."""

    def __init__(self, node: str, running: bool) -> None:
        self.buf = (f"SeaBIOS (fake) {node}\r\nBooting from Network...\r\n".encode()
                    if running else b"")
        self.closed = False

    def read(self, timeout: float) -> bytes | None:
        if self.closed:
            return None
        if not self.buf:
            time.sleep(min(timeout, 0.05))
            return b""
        out, self.buf = self.buf[:4096], self.buf[4096:]
        return out

    def write(self, data: bytes) -> None:
        self.buf += data

    def close(self) -> None:
        self.closed = True


# -- state ----------------------------------------------------------------------------------


def _empty() -> dict:
    return {"vms": {}, "masters": {}, "hosts": {}, "next_id": 1}


@contextlib.contextmanager
def open_state(path: str, write: bool = False) -> Iterator[dict]:
    """The state dict at *path* (process memory when empty), locked for the block.

    A write block saves the dict on normal exit (atomically: temp file + rename) and
    discards changes on an exception.
    """
    if not path:
        with _memory_lock:
            st = _memory.setdefault("", _empty())
            work = copy.deepcopy(st) if write else st
            yield work
            if write:
                _memory[""] = work
        return
    lock_path = path + ".lock"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
            st = json.loads(text) if text.strip() else _empty()
        except FileNotFoundError:
            st = _empty()
        except ValueError as exc:
            raise PermanentError(f"fake state file {path} is not JSON: {exc}") from None
        for k, v in _empty().items():
            st.setdefault(k, v)
        yield st
        if write:
            tmp = f"{path}.tmp{os.getpid()}.{threading.get_ident()}"
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(st, fh, separators=(",", ":"))
            os.replace(tmp, path)
    finally:
        os.close(fd)  # releases the flock


def seed_state(path: str, host: str, names: Sequence[str], *, state: str = "on",
               memory_mib: int = 512, cpus: int = 1) -> None:
    """Put VMs *names* on *host* in the state at *path* (tests and the benchmark)."""
    with open_state(path, write=True) as st:
        for name in names:
            st["vms"][name] = _new_vm(st, name, host, memory_mib, cpus)
            st["vms"][name]["state"] = state
            if state in RUNNING:
                st["vms"][name]["started_at"] = time.time()


def _new_vm(st: dict, name: str, host: str, memory_mib: int, cpus: int,
            uuid: str | None = None) -> dict:
    import uuid as uuidlib  # lazily: uuid pulls in platform (~3 ms of start-up)

    vm_id = st["next_id"]
    st["next_id"] = vm_id + 1
    return {"id": vm_id, "host": host, "state": "off", "memory_mib": memory_mib, "cpus": cpus,
            "uuid": uuid or str(uuidlib.uuid4()), "disks": [], "nics": [], "master": None,
            "bootorder": ["network", "hd"], "cpu_time_s": 0.0, "started_at": None,
            "addresses": []}


def _disk_path(location: str, name: str, dev: str, fmt: str) -> str:
    if location.startswith("phy:"):
        return location[4:]
    base = location[len("dir://"):] if location.startswith("dir://") else location
    return f"{(base or '/var/lib/nodemgr/vms').rstrip('/')}/{name}.{dev}.{fmt}"


def _not_found(node: str) -> NotFound:
    return NotFound(f"Domain not found: no domain with matching name '{node}'")


# -- the driver -------------------------------------------------------------------------------


class FakeDriver(HypervisorDriver):
    """In-memory/JSON-file hypervisor with libvirt-like behaviour and xCAT's messages."""

    name = "fake"
    traits = Traits(label="fake (tests)", host_types=("fake",))

    def __init__(self, endpoint: Endpoint, timeout: float = 60.0) -> None:
        super().__init__(endpoint, timeout)
        self.settings = Settings(endpoint)
        self.host = self.settings.host
        self.connected = False
        self.round_trips = 0

    # -- plumbing ----------------------------------------------------------------------
    def _round_trip(self, what: str) -> None:
        if self.settings.hang == what:
            threading.Event().wait()  # never answers
        self.round_trips += 1
        if self.settings.latency > 0:
            time.sleep(self.settings.latency)

    def _batch(self, what: str, specs: Sequence[VmSpec],
               fn: Callable[[dict, VmSpec], NodeResult], write: bool) -> Iterator[NodeResult]:
        """One round trip, one locked state access, one result per spec in order."""
        self._round_trip(what)
        out: list[NodeResult] = []
        with open_state(self.settings.state, write=write) as st:
            out.extend(self.each_node(specs, lambda spec: fn(st, spec)))
        return iter(out)

    def _mine(self, st: dict, node: str) -> dict | None:
        vm = st["vms"].get(node)
        return vm if vm is not None and vm.get("host") == self.host else None

    def connect(self) -> None:
        if self.settings.refuse:
            raise Unreachable(f"Cannot communicate via fake to {self.host}")
        self._round_trip("connect")
        self.connected = True

    def close(self) -> None:
        self.connected = False

    # -- power ----------------------------------------------------------------------------
    def power(self, specs: Sequence[VmSpec], action: str) -> Iterator[NodeResult]:
        if action in ("state", "status"):
            action = "stat"
        if action not in POWER_ACTIONS:
            self._round_trip("power")
            return iter([NodeResult(s.node, ok=False,
                                    message=f"Unsupported power directive '{action}'")
                         for s in specs])
        return self._batch("power", specs, lambda st, s: self._power1(st, s, action),
                           write=action != "stat")

    def _start(self, vm: dict) -> None:
        vm["state"] = "on"
        vm["started_at"] = time.time()

    def _stop(self, vm: dict) -> None:
        if vm.get("started_at"):
            vm["cpu_time_s"] = vm.get("cpu_time_s", 0.0) + max(0.0, time.time() - vm["started_at"])
        vm["state"] = "off"
        vm["started_at"] = None

    def _power1(self, st: dict, spec: VmSpec, action: str) -> NodeResult:
        vm = self._mine(st, spec.node)
        prev = vm["state"] if vm else "off"
        if vm is None and action in ("on", "boot"):
            # like the libvirt driver: define from the stored definition, else not found
            if not spec.definition:
                raise NotFound(f"Cannot find vm {spec.node} on {self.host}")
            vm = st["vms"][spec.node] = _new_vm(st, spec.node, self.host, spec.memory_mib,
                                                spec.cpus, spec.uuid)
        if action == "stat":
            msg = prev
        elif action == "on":
            self._start(vm)
            msg = "on"
        elif action == "off":
            if vm:
                self._stop(vm)
            msg = "off"
        elif action == "softoff":
            if vm and prev in RUNNING:
                self._stop(vm)  # the fake guest honours ACPI at once
            msg = "off"
        elif action == "reset":
            if prev in RUNNING:
                self._stop(vm)
                self._start(vm)
                msg = "reset"
            else:
                msg = "off"
        elif action == "boot":
            if prev in RUNNING:
                self._stop(vm)
                self._start(vm)
                msg = "on reset"
            else:
                self._start(vm)
                msg = "off on"
        elif action == "suspend":
            if prev != "on":
                raise InvalidState("Requested operation is not valid: domain is not running")
            vm["state"] = "suspended"
            msg = "suspended"
        else:  # resume
            if prev != "suspended":
                raise InvalidState("Requested operation is not valid: domain is not paused")
            vm["state"] = "on"
            msg = "on"
        state = vm["state"] if vm else "off"
        facts = Facts(power=state)
        if action in ("on", "boot", "reset") and (prev != "on" or action != "on") and state == "on":
            facts.status = "powering-on"
        elif action in ("off", "softoff") and prev != "off":
            facts.status = "powering-off"
        return NodeResult(spec.node, message=msg, facts=facts,
                          data={"state": state, "previous": prev})

    # -- create / remove ----------------------------------------------------------------
    def create(self, specs: Sequence[VmSpec], *, force: bool = False) -> Iterator[NodeResult]:
        return self._batch("create", specs, lambda st, s: self._create1(st, s, force), True)

    def _create1(self, st: dict, spec: VmSpec, force: bool) -> NodeResult:
        self.validate(spec)
        for d in spec.disks:
            if d.size_mib and d.location.startswith("phy:"):
                raise PermanentError("mkvm management of block device storage not implemented")
        old = st["vms"].get(spec.node)
        new_disks = [d for d in spec.disks if d.size_mib and d.device == "disk"]
        if old is not None and not force and new_disks and old.get("disks"):
            paths = " ".join(d["path"] for d in old["disks"] if d.get("device") == "disk")
            raise InvalidState(f"Storage creation request conflicts with existing file(s) "
                               f"{paths}. To force remove the existing storage file, rerun "
                               f"mkvm with the -f option.")
        vm = _new_vm(st, spec.node, self.host, spec.memory_mib, spec.cpus, spec.uuid)
        if old is not None:
            vm["id"], vm["state"], vm["started_at"] = old["id"], old["state"], old["started_at"]
            vm["uuid"] = spec.uuid or old["uuid"]
            if not new_disks:
                vm["disks"] = old["disks"]
        if not (old is not None and not new_disks):
            for d in spec.disks:
                path = d.source or _disk_path(d.location, spec.node, d.dev, d.format)
                vm["disks"].append({"dev": d.dev, "device": d.device, "format": d.format,
                                    "bus": d.bus, "size_mib": d.size_mib or 0,
                                    "path": path if d.device == "disk" else d.source,
                                    "backing": None})
        vm["nics"] = [{"network": n.network, "mac": n.mac, "model": n.model, "kind": n.kind}
                      for n in spec.nics]
        vm["bootorder"] = list(spec.bootorder)
        vm["master"] = spec.master
        st["vms"][spec.node] = vm
        return NodeResult(spec.node, facts=Facts(host=self.host, uuid=vm["uuid"]),
                          data={"uuid": vm["uuid"]})

    def remove(self, specs: Sequence[VmSpec], *, force: bool = False,
               purge: bool = False) -> Iterator[NodeResult]:
        return self._batch("remove", specs, lambda st, s: self._remove1(st, s, force, purge),
                           True)

    def _remove1(self, st: dict, spec: VmSpec, force: bool, purge: bool) -> NodeResult:
        vm = self._mine(st, spec.node)
        if vm is None:
            raise NotFound("Cannot remove guest vm, no such vm found")
        if vm["state"] in RUNNING and not force:
            raise InvalidState("Cannot rmvm active guest (use -f argument to force)")
        lines = []
        purged = []
        if purge:
            for d in vm["disks"]:
                if d.get("device") != "disk" or not d.get("path"):
                    continue
                if d.get("format") == "raw" or d["path"].startswith("/dev/"):
                    lines.append(f"Not purging raw or block storage device: {d['path']}")
                else:
                    purged.append(d["path"])
        del st["vms"][spec.node]
        return NodeResult(spec.node, message="\n".join(lines), data={"purged": purged})

    # -- change ---------------------------------------------------------------------------
    def change(self, specs: Sequence[VmSpec], change: VmChange) -> Iterator[NodeResult]:
        return self._batch("change", specs, lambda st, s: self._change1(st, s, change), True)

    def _change1(self, st: dict, spec: VmSpec, ch: VmChange) -> NodeResult:
        old = self._mine(st, spec.node)
        if old is None:
            raise _not_found(spec.node)
        vm = copy.deepcopy(old)  # all or nothing per node
        running = vm["state"] in RUNNING
        lines: list[str] = []
        cpus = ch.cpus if ch.cpus is not None else (spec.cpus if ch.push else None)
        mem = ch.memory_mib if ch.memory_mib is not None else (spec.memory_mib if ch.push else None)
        if cpus is not None and cpus != vm["cpus"]:
            if running and not ch.push:
                raise InvalidState("Hot add of cpus not supported (VM must be powered down "
                                   "to successfully change)")
            vm["cpus"] = cpus
        if mem is not None:
            vm["memory_mib"] = mem
        disks = vm["disks"]
        used = {d["dev"] for d in disks}
        for size in ch.add_disks_mib:
            if not spec.storage:
                raise PermanentError("Requested initialization of storage, but vm.storage "
                                     "has no value for node")
            location, _, model = spec.storage[-1].partition("=")
            bus = model or spec.storagemodel
            if bus == "ide" and running:
                raise InvalidState("VM must be powered off to add IDE drives")
            dev = next(iter(next_dev_names(bus, 1, used)), None)
            if dev is None:
                raise PermanentError(f"Exhausted {bus} limits trying to add a disk")
            used.add(dev)
            disks.append({"dev": dev, "device": "disk", "format": spec.storageformat,
                          "bus": bus, "size_mib": size, "backing": None,
                          "path": _disk_path(location, spec.node, dev, spec.storageformat)})
        for dev in [*ch.remove_disks, *ch.detach_disks]:
            d = self._disk(vm, dev)
            disks.remove(d)
        for dev, size in ch.resize.items():
            d = self._disk(vm, dev)
            if size < d["size_mib"] and d["format"] == "qcow2":
                raise InvalidState(f"Resizing disk {dev} failed, qcow2 doesn't support "
                                   "shrinking images yet")
            d["size_mib"] = size
            lines.append(f"Resized disk {dev}")
        if ch.cdrom or ch.eject:
            cd = next((d for d in disks if d.get("device") == "cdrom"), None)
            if cd is None:
                cd = {"dev": "hdc", "device": "cdrom", "format": "raw", "bus": "ide",
                      "size_mib": 0, "path": None, "backing": None}
                disks.append(cd)
            cd["path"] = None if ch.eject else ch.cdrom
        st["vms"][spec.node] = vm
        return NodeResult(spec.node, message="\n".join(lines))

    @staticmethod
    def _disk(vm: dict, dev: str) -> dict:
        for d in vm["disks"]:
            if d["dev"] == dev and d.get("device") == "disk":
                return d
        raise NotFound(f"Unable to find disk {dev}")

    # -- read-only queries -----------------------------------------------------------------
    def list_vms(self) -> list[VmInfo]:
        self._round_trip("list_vms")
        with open_state(self.settings.state) as st:
            return [VmInfo(name, vm["state"], vm.get("uuid"))
                    for name, vm in st["vms"].items() if vm.get("host") == self.host]

    def scan(self) -> list[VmInfo]:
        """Every VM of the host with uuid, memory, cpus, MACs and disks."""
        self._round_trip("scan")
        with open_state(self.settings.state) as st:
            return [VmInfo(name, vm["state"], vm.get("uuid"), memory_mib=vm["memory_mib"],
                           cpus=vm["cpus"], macs=[n["mac"] for n in vm.get("nics", [])],
                           disks=[DiskInfo(d["dev"], d.get("size_mib"), d.get("path"),
                                           d.get("format"), d.get("device", "disk"))
                                  for d in vm.get("disks", [])])
                    for name, vm in st["vms"].items() if vm.get("host") == self.host]

    def describe(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        return self._batch("describe", specs, self._describe1, write=False)

    def _describe1(self, st: dict, spec: VmSpec) -> NodeResult:
        vm = self._mine(st, spec.node)
        if vm is None:
            raise NotFound("Could not get any information about specified object")
        code, text = LIBVIRT_STATE.get(vm["state"], (0, vm["state"]))
        lines = [f"Id: {vm['id'] if vm['state'] in RUNNING else '-'}", f"Host: {vm['host']}",
                 "OS: hvm", f"Memory: {vm['memory_mib'] * 1024}", f"CPU: {vm['cpus']}",
                 f"State: {code} ({text})"]
        for d in vm["disks"]:
            if d.get("device") == "disk":
                lines.append(f"Disk file: {d['path']}")
        return NodeResult(spec.node, message="\n".join(lines),
                          data={"state": vm["state"], "memory_mib": vm["memory_mib"],
                                "cpus": vm["cpus"], "host": vm["host"], "uuid": vm["uuid"]})

    def stats(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        return self._batch("stats", specs, self._stats1, write=False)

    def _stats1(self, st: dict, spec: VmSpec) -> NodeResult:
        vm = self._mine(st, spec.node)
        if vm is None:
            raise _not_found(spec.node)
        cpu = vm.get("cpu_time_s", 0.0)
        if vm["state"] in RUNNING and vm.get("started_at"):
            cpu += max(0.0, time.time() - vm["started_at"])
        data = {"state": vm["state"], "cpu_time_s": round(cpu, 3), "cpus": vm["cpus"],
                "memory_mib": vm["memory_mib"] if vm["state"] in RUNNING else 0}
        return NodeResult(spec.node, message="\n".join(f"{k}: {v}" for k, v in data.items()),
                          data=data)

    def addresses(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        return self._batch("addresses", specs, self._addresses1, write=False)

    def _addresses1(self, st: dict, spec: VmSpec) -> NodeResult:
        vm = self._mine(st, spec.node)
        if vm is None:
            raise _not_found(spec.node)
        addrs: list[str] = []
        if vm["state"] == "on":
            addrs = list(vm.get("addresses") or [])
            if not addrs:
                for n in vm["nics"]:
                    b = [int(x, 16) for x in n["mac"].split(":")[-3:]]
                    addrs.append(f"10.{b[0]}.{b[1]}.{b[2] % 254 + 1}")
        return NodeResult(spec.node, message=",".join(addrs), data={"addresses": addrs},
                          facts=Facts(addresses=[Address(a, "lease") for a in addrs]))

    # -- rvitals, rinv, rsetboot, consoles ----------------------------------------------------
    def vitals(self, specs: Sequence[VmSpec], interval_s: float = 1.0) -> Iterator[NodeResult]:
        """CPU % from the fake CPU time (a running fake VM keeps one vCPU busy) and memory;
        the fake has no disk or network counters (None)."""
        first = {r.node: r for r in self.stats(specs)}
        time.sleep(interval_s)
        out = []
        for r in self.stats(specs):
            if not r.ok or not first[r.node].ok:
                out.append(r if not r.ok else first[r.node])
                continue
            d0, d1 = first[r.node].data, r.data
            pct = 100.0 * (d1["cpu_time_s"] - d0["cpu_time_s"]) / interval_s
            out.append(NodeResult(r.node, facts=Facts(metrics=Metrics(
                interval_s=interval_s, cpu_pct=round(max(pct, 0.0), 1), cpus=d1["cpus"],
                mem_used_mib=d1["memory_mib"], mem_avail_mib=d1["memory_mib"]))))
        return iter(out)

    def inventory(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        addrs = {r.node: r for r in self.addresses(specs)}
        return self._batch("inventory", specs,
                           lambda st, s: self._inventory1(st, s, addrs.get(s.node)), False)

    def _inventory1(self, st: dict, spec: VmSpec, addrs: NodeResult | None) -> NodeResult:
        vm = self._mine(st, spec.node)
        if vm is None:
            raise _not_found(spec.node)
        inv = Inventory(uuid=vm["uuid"], cpus=vm["cpus"], memory_mib=vm["memory_mib"],
                        disks=[DiskInfo(d["dev"], d.get("size_mib"), d.get("path"),
                                        d.get("format"), d.get("device", "disk"))
                               for d in vm["disks"]],
                        nics=[NicInfo(n["mac"], n.get("network"), n.get("model"))
                              for n in vm["nics"]],
                        addresses=list(addrs.facts.addresses or []) if addrs and addrs.ok
                        else [])
        return NodeResult(spec.node, facts=Facts(inventory=inv))

    def set_boot(self, specs: Sequence[VmSpec], device: str) -> Iterator[NodeResult]:
        order = {"net": ["network", "hd"], "hd": ["hd", "network"], "cd": ["cdrom", "hd"]}
        if device not in (*order, "default"):
            raise Unsupported(f"unknown boot device '{device}'")
        return self._batch("set_boot", specs,
                           lambda st, s: self._set_boot1(st, s, order.get(device), device), True)

    def _set_boot1(self, st: dict, spec: VmSpec, order: list[str] | None,
                   device: str) -> NodeResult:
        vm = self._mine(st, spec.node)
        if vm is None:
            raise _not_found(spec.node)
        vm["bootorder"] = list(order or spec.bootorder)
        return NodeResult(spec.node, facts=Facts(bootdev=device))

    def console(self, spec: VmSpec, *, open_stream: bool = False,
                display: bool = False) -> Console:
        """A serial console that prints a firmware banner and echoes what it is sent
        (endpoint option ``console=none``: no console, Unsupported)."""
        self._round_trip("console")
        if self.settings.console == "none":
            raise Unsupported(f"{spec.node} has no serial console")
        with open_state(self.settings.state) as st:
            vm = self._mine(st, spec.node)
        if vm is None:
            raise _not_found(spec.node)
        c = Console(kind="serial", host=self.host, command=f"fake-console {spec.node}")
        if open_stream:
            c.stream = _FakeStream(spec.node, vm["state"] in RUNNING)
        return c

    def host_free_memory_mib(self) -> int:
        self._round_trip("host_free_memory_mib")
        with open_state(self.settings.state) as st:
            total = st["hosts"].get(self.host, {}).get("memory_mib", self.settings.memory_mib)
            used = sum(vm["memory_mib"] for vm in st["vms"].values()
                       if vm.get("host") == self.host and vm["state"] in RUNNING)
        return total - used

    # -- migrate --------------------------------------------------------------------------
    def migrate(self, specs: Sequence[VmSpec], target: Endpoint) -> Iterator[NodeResult]:
        self._round_trip("migrate")
        dst = Settings(target)
        if dst.refuse:
            return iter([NodeResult(s.node, ok=False,
                                    message=f"Failed migration of {s.node} from {self.host} "
                                            f"to {dst.host}: Cannot communicate via fake to "
                                            f"{dst.host}") for s in specs])
        if dst.hang:
            threading.Event().wait()
        if dst.latency:
            time.sleep(dst.latency)
        paths = sorted({self.settings.state, dst.state})
        with contextlib.ExitStack() as stack:
            states = {p: stack.enter_context(open_state(p, write=True)) for p in paths}
            src_st, dst_st = states[self.settings.state], states[dst.state]
            out = list(self.each_node(specs, lambda s: self._migrate1(src_st, dst_st, dst, s)))
        return iter(out)

    def _migrate1(self, src_st: dict, dst_st: dict, dst: Settings, spec: VmSpec) -> NodeResult:
        done = NodeResult(spec.node, message=f"migrated to {dst.host}",
                          facts=Facts(host=dst.host))
        if dst.host == self.host:
            return NodeResult(spec.node, message=f"Guest is already on host {dst.host}")
        vm = self._mine(src_st, spec.node)
        if vm is None:
            return done  # xCAT: not on the source -> just record the new host
        if vm["state"] in RUNNING:
            total = dst_st["hosts"].get(dst.host, {}).get("memory_mib", dst.memory_mib)
            used = sum(v["memory_mib"] for v in dst_st["vms"].values()
                       if v.get("host") == dst.host and v["state"] in RUNNING)
            if total - used < vm["memory_mib"]:
                raise InvalidState(f"Failed migration of {spec.node} from {self.host} to "
                                   f"{dst.host}: not enough free memory on {dst.host}")
        del src_st["vms"][spec.node]
        vm["host"] = dst.host
        dst_st["vms"][spec.node] = vm
        return done

    # -- masters and clones -----------------------------------------------------------------
    def make_master(self, spec: VmSpec, master: str, *, detached: bool = False,
                    force: bool = False) -> NodeResult:
        self._round_trip("make_master")
        with open_state(self.settings.state, write=True) as st:
            vm = self._mine(st, spec.node)
            if vm is None:
                raise _not_found(spec.node)
            running = vm["state"] in RUNNING
            if running and not force:
                raise InvalidState(f"{spec.node} is running; power it off or use -f")
            if master in st["masters"] and not force:
                raise InvalidState(f"Master {master} already exists (use -f to replace it)")
            detached = detached or running
            lines, mdisks = [], []
            for d in vm["disks"]:
                if d.get("device") != "disk":
                    continue
                mpath = d["path"].rsplit("/", 1)[0] + f"/{master}.{d['dev']}.{d['format']}"
                lines.append(f"Cloning {d['path']} (currently is {d['size_mib']} MB and has a "
                             f"capacity of {d['size_mib']} MB)")
                mdisks.append({**d, "path": mpath, "backing": None})
                if not detached:
                    d["backing"] = mpath
            record = {"name": master, "memory_mib": vm["memory_mib"], "cpus": vm["cpus"],
                      "disks": mdisks, "bootorder": vm.get("bootorder", []),
                      "nics": [{**n, "mac": ""} for n in vm["nics"]], "uuid": "none"}
            st["masters"][master] = record
            if not detached:
                vm["master"] = master
        return NodeResult(spec.node, message="\n".join(lines),
                          facts=Facts(master=None if detached else master,
                                      master_definition=json.dumps(record)))

    def clone_from_master(self, specs: Sequence[VmSpec], master: str,
                          master_definition: str | None, *,
                          detached: bool = False) -> Iterator[NodeResult]:
        return self._batch("clone_from_master", specs,
                           lambda st, s: self._clone1(st, s, master, master_definition, detached),
                           write=True)

    def _clone1(self, st: dict, spec: VmSpec, master: str, definition: str | None,
                detached: bool) -> NodeResult:
        rec = st["masters"].get(master)
        if rec is None and definition:
            try:
                rec = json.loads(definition)
            except ValueError:
                raise PermanentError(f"stored definition of master {master} is not "
                                     "readable by the fake driver") from None
        if rec is None:
            raise NotFound(f"Master {master} not found")
        if spec.node in st["vms"]:
            raise InvalidState(f"{spec.node} already exists; remove it first (rmvm)")
        vm = _new_vm(st, spec.node, self.host, rec["memory_mib"], rec["cpus"], spec.uuid)
        for d in rec["disks"]:
            path = d["path"].rsplit("/", 1)[0] + f"/{spec.node}.{d['dev']}.{d['format']}"
            vm["disks"].append({**d, "path": path,
                                "backing": None if detached else d["path"]})
        vm["nics"] = ([{"network": n.network, "mac": n.mac, "model": n.model, "kind": n.kind}
                       for n in spec.nics] or rec.get("nics", []))
        vm["bootorder"] = list(rec.get("bootorder") or spec.bootorder)
        vm["master"] = None if detached else master
        st["vms"][spec.node] = vm
        facts = Facts(host=self.host, uuid=vm["uuid"], master=None if detached else master)
        if detached:
            facts.cleared.add("master")
        return NodeResult(spec.node, facts=facts)
