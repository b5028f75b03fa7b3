"""Xen driver: drives a dom0's toolstack (``xl``, else legacy ``xm``) over SSH.

One SSH connection per dom0 (``nodemgr.sshpool``, paramiko, host keys checked against the
administrator's known_hosts). Each VM has one domain configuration file on the dom0, written
from its VmSpec: by default ``<cfgdir>/<node>.cfg`` with ``cfgdir`` = ``/etc/xen/nodemgr``;
with endpoint option ``layout=openqrm`` openQRM's ``/var/lib/xen/VirtualMachines/<mac>/
<mac>.xen``. Operations map to toolstack commands: on = ``create``, off = ``destroy``,
softoff = ``shutdown``, reset = ``destroy`` + ``create``, suspend/resume = ``save``/
``restore`` (or ``pause``/``unpause`` with option ``suspend=pause``), migrate = ``xl
migrate`` (``xm migrate --live``), stat/lsvm/stats = one ``list``, free memory = ``info``.

Endpoint: the URI's user, host and port (``ssh://root@dom0:22/``, or the ``xen+ssh://``
template of the virttype table); options ``known_hosts``, ``key``, ``cfgdir``, ``layout``,
``imagedir``, ``toolstack`` (``xl``/``xm``, default detected), ``suspend``, ``migrate_host``
(address the source dom0 uses to reach this one).

Boot parameters (``spec.bootparams``, ``mkvm --bootparams``): a cloud-init NoCloud config
disk (``nodemgr.bootparams``, ISO 9660 labelled ``cidata``) is built locally, uploaded over
SFTP (temporary name, then rename) as ``<node>.cidata.iso`` beside the VM's images (the
openqrm layout: in the VM's directory) and added to the domain config as a read-only cdrom
(xl: ``format=raw,vdev=hdc,access=ro,devtype=cdrom,target=<iso>``, xm:
``file:<iso>,hdc:cdrom,r``); ``rmvm -p`` deletes it; ``addresses`` reads the address back
from it.

What it must never do: read tables, trust an unknown host key, dump raw toolstack output as
an error (errors are mapped to one line), or delete a block device (``phy:``) on purge.
"""

from __future__ import annotations

import os
import posixpath
import shlex
import tempfile
from collections.abc import Iterator, Sequence
from urllib.parse import urlsplit

from nodemgr.plugins.base import (
    Endpoint,
    HypervisorDriver,
    InvalidState,
    NodeResult,
    NotFound,
    PermanentError,
    Traits,
    Unreachable,
    VmChange,
    VmInfo,
    VmSpec,
)
from nodemgr.plugins.xen_parse import (
    ParseError,
    format_config,
    parse_config,
    parse_disk,
    parse_info,
    parse_list,
    parse_vif,
    power_state,
)

DEFAULT_CFGDIR = "/etc/xen/nodemgr"
OPENQRM_DIR = "/var/lib/xen/VirtualMachines"
DEFAULT_IMAGEDIR = "/var/lib/xen/images"
CIDATA_SUFFIX = ".cidata.iso"
XEN_BOOT = {"network": "n", "hd": "c", "cdrom": "d"}


def ssh_target(endpoint: Endpoint) -> tuple[str, int, str]:
    """(host, port, user) from the endpoint URI (``ssh://u@h:p/``, ``xen+ssh://u@h/``), else
    the endpoint's host node with port 22 and its user (default root)."""
    if "://" in endpoint.uri:
        u = urlsplit(endpoint.uri)
        if u.hostname:
            return u.hostname, u.port or 22, u.username or endpoint.username or "root"
    return endpoint.host, 22, endpoint.username or "root"


class XenDriver(HypervisorDriver):
    """Xen dom0 over SSH. See the module docstring for options."""

    name = "xen"
    traits = Traits(label="Xen (xl over SSH)", host_types=("xen",), ssh=True)

    def __init__(self, endpoint: Endpoint, timeout: float = 60.0) -> None:
        super().__init__(endpoint, timeout)
        self.conn = None
        self.tool = endpoint.option("toolstack")
        self.host, self.port, self.user = ssh_target(endpoint)
        self.where = endpoint.host or self.host
        layout = endpoint.option("layout", "nodemgr")
        if layout not in ("nodemgr", "openqrm"):
            raise PermanentError(f"unknown Xen config layout '{layout}' (nodemgr or openqrm)")
        self.layout = layout
        self.cfgdir = endpoint.option("cfgdir") or (OPENQRM_DIR if layout == "openqrm"
                                                   else DEFAULT_CFGDIR)

    # connection ---------------------------------------------------------------------------
    def connect(self) -> None:
        """Open (or reuse) the SSH connection and detect the toolstack."""
        from nodemgr import sshpool

        self.conn = sshpool.connection(
            self.host, port=self.port, user=self.user, password=self.endpoint.password,
            key_filename=self.endpoint.option("key"),
            known_hosts=self.endpoint.option("known_hosts"), timeout=min(self.timeout, 30.0))
        if not self.tool:
            r = self.conn.run("command -v xl || command -v xm", timeout=self.timeout)
            found = r.out.strip().splitlines()
            if r.rc != 0 or not found:
                raise PermanentError(f"neither xl nor xm found on {self.where}")
            self.tool = posixpath.basename(found[0])

    def close(self) -> None:
        """Keep the pooled connection open for reuse (closed at process exit)."""
        self.conn = None

    # helpers ------------------------------------------------------------------------------------
    def _sh(self, argv: Sequence[str] | str):
        if self.conn is None:
            self.connect()
        return self.conn.run(argv, timeout=self.timeout)

    def _xl(self, *args: str, node: str | None = None, ok_missing: bool = False):
        """Run the toolstack; map errors to typed one-line exceptions."""
        if self.conn is None:
            self.connect()  # detects the toolstack
        r = self._sh([self.tool, *args])
        if r.rc == 0:
            return r
        text = _error_text(r.err or r.out)
        if "invalid domain identifier" in text or "does not exist" in text:
            if ok_missing:
                return None
            raise NotFound(f"Cannot find vm {node or args[-1]} on {self.where}")
        raise PermanentError(f"{self.tool} {args[0]} failed on {self.where}: {text}")

    def _domains(self) -> dict:
        r = self._xl("list")
        try:
            return {d.name: d for d in parse_list(r.out) if d.domid != 0}
        except ParseError as exc:
            raise PermanentError(f"{self.where}: {exc}") from None

    def cfg_path(self, spec: VmSpec) -> str:
        """Path of the VM's configuration file on the dom0."""
        if self.layout == "openqrm":
            if not spec.nics or not spec.nics[0].mac:
                raise PermanentError("the openqrm config layout needs a MAC (mac.mac)")
            mac = spec.nics[0].mac.lower()
            return f"{self.cfgdir}/{mac}/{mac}.xen"
        return f"{self.cfgdir}/{spec.node}.cfg"

    def _save_path(self, spec: VmSpec) -> str:
        return self.cfg_path(spec)[: -len(".cfg")] + ".save" if self.layout == "nodemgr" \
            else posixpath.dirname(self.cfg_path(spec)) + f"/{spec.node}.save"

    def _read_cfg(self, spec: VmSpec) -> dict | None:
        r = self._sh(["cat", self.cfg_path(spec)])
        if r.rc != 0:
            return None
        try:
            return parse_config(r.out)
        except ParseError as exc:
            raise PermanentError(f"{self.cfg_path(spec)} on {self.where}: {exc}") from None

    def _write_cfg(self, spec: VmSpec, cfg: dict) -> None:
        path = self.cfg_path(spec)
        r = self._sh(["mkdir", "-p", posixpath.dirname(path)])
        if r.rc != 0:
            raise PermanentError(f"cannot create {posixpath.dirname(path)} on {self.where}: "
                                 f"{_error_text(r.err)}")
        self.conn.put(path, format_config(cfg, f"{spec.node}: written by nodemgr").encode())

    def _image_dir(self, location: str | None) -> str:
        loc = location or self.endpoint.option("imagedir") or DEFAULT_IMAGEDIR
        for prefix in ("dir://", "file://"):
            if loc.startswith(prefix):
                loc = loc[len(prefix):]
        if not loc.startswith("/"):
            raise PermanentError(f"Xen storage must be a directory on the dom0 (dir:///path), "
                                 f"not '{location}'")
        return loc.rstrip("/")

    def _image_path(self, spec: VmSpec, disk) -> str:
        return f"{self._image_dir(disk.location)}/{spec.node}.{xen_dev(disk.dev)}.{disk.format}"

    # boot parameters ---------------------------------------------------------------------
    def cidata_path(self, spec: VmSpec) -> str:
        """Path on the dom0 of the VM's cloud-init config disk: ``<node>.cidata.iso`` in the
        directory of its first disk (``vm.storage``, else option ``imagedir``), or in the
        VM's own directory with the openqrm layout."""
        if self.layout == "openqrm":
            return posixpath.dirname(self.cfg_path(spec)) + f"/{spec.node}{CIDATA_SUFFIX}"
        loc = next((d.location for d in spec.disks if d.location), None) or \
            next(iter(spec.storage or []), None)
        return f"{self._image_dir(loc)}/{spec.node}{CIDATA_SUFFIX}"

    def _put_cidata(self, spec: VmSpec) -> str:
        """Build the NoCloud ISO for *spec* locally and upload it atomically; returns its
        path on the dom0. Raises PermanentError when the dom0 refuses the write."""
        from nodemgr.bootparams import build_cidata_iso

        path = self.cidata_path(spec)
        with tempfile.TemporaryDirectory(prefix="nodemgr-cidata-") as tmp:
            local = os.path.join(tmp, "cidata.iso")
            build_cidata_iso(local, spec.node, spec.bootparams,
                             spec.nics[0].mac if spec.nics else None, spec.uuid)
            with open(local, "rb") as fh:
                data = fh.read()
        r = self._sh(["mkdir", "-p", posixpath.dirname(path)])
        if r.rc != 0:
            raise PermanentError(f"cannot create {posixpath.dirname(path)} on {self.where}: "
                                 f"{_error_text(r.err)}")
        self.conn.put(path, data)
        return path

    def cidata_disk(self, path: str, disks: Sequence[str]) -> str:
        """The read-only cdrom disk spec for the config disk at *path* (first free of
        hdc, hdd, hdb): xl's key=value form, xm's ``file:<path>,hdc:cdrom,r``."""
        used = {parse_disk(d).vdev for d in disks}
        dev = next((d for d in ("hdc", "hdd", "hdb") if d not in used), "hdc")
        if self.tool == "xm":
            return f"file:{path},{dev}:cdrom,r"
        return f"format=raw,vdev={dev},access=ro,devtype=cdrom,target={path}"

    def _attach_cidata(self, spec: VmSpec, cfg: dict) -> str | None:
        """Upload the config disk and add it to *cfg* when *spec* has boot parameters;
        returns the uploaded path (None without parameters)."""
        if not spec.bootparams:
            return None
        path = self._put_cidata(spec)
        cfg["disk"] = [*cfg.get("disk", []), self.cidata_disk(path, cfg.get("disk", []))]
        return path

    def read_bootparams(self, spec: VmSpec, cfg: dict) -> dict[str, str] | None:
        """The boot parameters read back from the config disk *cfg* references (downloaded
        over SFTP, opened with pycdlib); None when it has none. Raises PermanentError for
        an unreadable disk."""
        from nodemgr.bootparams import parse_conf, read_cidata_iso

        isos = [d.target for d in map(parse_disk, cfg.get("disk", []))
                if d.cdrom and d.target.endswith(CIDATA_SUFFIX)]
        if not isos:
            return None
        if self.conn is None:
            self.connect()
        data = self.conn.get(isos[0])
        if data is None:
            return None
        with tempfile.TemporaryDirectory(prefix="nodemgr-cidata-") as tmp:
            local = os.path.join(tmp, "cidata.iso")
            with open(local, "wb") as fh:
                fh.write(data)
            try:
                _, files = read_cidata_iso(local)
            except Exception:  # noqa: BLE001 - pycdlib raises its own and OSError
                raise PermanentError(f"{isos[0]} on {self.where} is not a readable config "
                                     "disk") from None
        return parse_conf(files.get("bootparams.conf", b""))

    def build_config(self, spec: VmSpec, disks: list[str] | None = None) -> dict:
        """The configuration file content for *spec* (``disks`` overrides the disk list).

        Boot: ``vm.othersettings`` may set ``kernel``, ``ramdisk``, ``extra``,
        ``bootloader``, ``bootargs`` and ``type`` (``pv``, ``pvh``, ``hvm``) as
        ``key=value;...``; without kernel or bootloader the guest is HVM and boots in
        ``vm.bootorder`` order (network first = PXE).
        """
        other = {}
        for item in (spec.extra.get("othersettings") or "").split(";"):
            k, sep, v = item.partition("=")
            if sep and k.strip():
                other[k.strip()] = v.strip()
        cfg: dict = {"name": spec.node, "memory": spec.memory_mib, "vcpus": spec.cpus}
        if spec.uuid:
            cfg["uuid"] = spec.uuid
        vifs = []
        for nic in spec.nics:
            parts = [f"mac={nic.mac}"] if nic.mac else []
            if nic.network:
                parts.append(f"bridge={nic.network}")
            if nic.model and nic.model not in ("virtio", "netfront"):
                parts.append(f"model={nic.model}")
            vifs.append(",".join(parts))
        cfg["vif"] = vifs
        if disks is None:
            disks = []
            for d in spec.disks:
                path = self._image_path(spec, d) if d.size_mib or d.location else d.source
                if not path:
                    continue
                if self.tool == "xm":
                    disks.append(f"file:{path},{xen_dev(d.dev)},w")
                else:
                    disks.append(f"format={d.format},vdev={xen_dev(d.dev)},access=rw,"
                                 f"target={path}")
        cfg["disk"] = disks
        pv = {k: other[k] for k in ("kernel", "ramdisk", "extra", "cmdline", "bootloader",
                                    "bootargs") if other.get(k)}
        kind = other.get("type") or ("pv" if pv else "hvm")
        cfg.update(pv)
        if kind == "hvm":
            if self.tool == "xm":
                cfg["builder"] = "hvm"
            else:
                cfg["type"] = "hvm"
            cfg["boot"] = "".join(XEN_BOOT[b] for b in spec.bootorder if b in XEN_BOOT) or "c"
        elif self.tool != "xm":
            cfg["type"] = kind
        cfg.update({"on_poweroff": "destroy", "on_reboot": "restart", "on_crash": "preserve"})
        return cfg

    # operations ----------------------------------------------------------------------------------
    def create(self, specs: Sequence[VmSpec], *, force: bool = False) -> Iterator[NodeResult]:
        """Write each VM's config and create its image files (raw: sparse ``truncate``,
        qcow2: ``qemu-img create``); does not start it (``rpower on`` does). Replacing an
        existing config (*force*) without new disks keeps the disks it lists."""
        running = self._domains()
        for spec in specs:
            try:
                if spec.node in running:
                    raise InvalidState(f"{spec.node} is running on {self.where}")
                old = self._read_cfg(spec)
                if old is not None and not force:
                    raise InvalidState(f"{spec.node} already exists on {self.where} "
                                       "(use -f to replace it)")
                cfg = self.build_config(spec)
                if old is not None and not spec.disks:
                    # -f without new disks: keep the VM's disks (else they are orphaned);
                    # only our old config disk goes, _attach_cidata adds the new one
                    ours = f"{spec.node}{CIDATA_SUFFIX}"
                    cfg["disk"] = [d for d in old.get("disk", []) if not (
                        parse_disk(d).cdrom and posixpath.basename(parse_disk(d).target) == ours)]
                for d in spec.disks:
                    if d.size_mib:
                        self._make_image(self._image_path(spec, d), d.format, d.size_mib, force)
                iso = self._attach_cidata(spec, cfg)
                try:
                    self._write_cfg(spec, cfg)
                except PermanentError:
                    if iso:
                        self._sh(["rm", "-f", "--", iso])
                    raise
                yield NodeResult(spec.node, updates={"vm.host": self.endpoint.host}
                                 if self.endpoint.host and "://" not in self.endpoint.host
                                 else {})
            except (NotFound, InvalidState, PermanentError) as exc:
                yield NodeResult(spec.node, ok=False, message=str(exc))

    def _make_image(self, path: str, fmt: str, size_mib: int, force: bool) -> None:
        exists = self._sh(["test", "-e", path]).rc == 0
        if exists and not force:
            raise InvalidState(f"disk {path} already exists on {self.where} (use -f)")
        self._sh(["mkdir", "-p", posixpath.dirname(path)])
        if fmt == "raw":
            argv = ["truncate", "-s", f"{size_mib}M", path]
        else:
            argv = ["qemu-img", "create", "-q", "-f", fmt, path, f"{size_mib}M"]
        r = self._sh(argv)
        if r.rc != 0:
            raise PermanentError(f"cannot create {path} on {self.where}: {_error_text(r.err)}")

    def remove(self, specs: Sequence[VmSpec], *, force: bool = False,
               purge: bool = False) -> Iterator[NodeResult]:
        """Remove each VM's config (and save file); ``force`` destroys a running domain
        first; ``purge`` deletes its file-backed disks (never ``phy:`` devices)."""
        running = self._domains()
        for spec in specs:
            try:
                cfg = self._read_cfg(spec)
                if spec.node in running:
                    if not force:
                        raise InvalidState(f"{spec.node} is running on {self.where} "
                                           "(use -f to stop it first)")
                    self._xl("destroy", spec.node, node=spec.node, ok_missing=True)
                elif cfg is None:
                    raise NotFound(f"Cannot find vm {spec.node} on {self.where}")
                if purge and cfg:
                    ours = f"{spec.node}{CIDATA_SUFFIX}"  # our config disk, not other cdroms
                    files = [d.target for d in map(parse_disk, cfg.get("disk", []))
                             if d.file_backed and (not d.cdrom
                                                   or posixpath.basename(d.target) == ours)]
                    if files:
                        self._sh(["rm", "-f", "--", *files])
                self._sh(["rm", "-f", "--", self.cfg_path(spec), self._save_path(spec)])
                yield NodeResult(spec.node)
            except (NotFound, InvalidState, PermanentError) as exc:
                yield NodeResult(spec.node, ok=False, message=str(exc))

    def power(self, specs: Sequence[VmSpec], action: str) -> Iterator[NodeResult]:
        """Power *action* on each VM with xCAT's replies (``on``, ``off``, ``off on``,
        ``on reset``, ``reset``, ``suspended``). ``on`` of a crashed domain (kept by
        ``on_crash=preserve``, ``--psc-``) destroys it and creates it again."""
        running = self._domains()
        for spec in specs:
            try:
                msg = self._power_one(spec, action, running.get(spec.node))
                status = {"on": "powering-on", "off": "powering-off", "off on": "powering-on"}
                upd = {"nodelist.status": status[msg]} if action != "stat" and msg in status \
                    else {}
                yield NodeResult(spec.node, message=msg, updates=upd, data={"state": msg})
            except (NotFound, InvalidState, PermanentError) as exc:
                yield NodeResult(spec.node, ok=False, message=str(exc))

    def _stopped_state(self, spec: VmSpec) -> str:
        if self._sh(["test", "-e", self._save_path(spec)]).rc == 0:
            return "suspended"
        return "off"

    def _start(self, spec: VmSpec) -> None:
        save = self._save_path(spec)
        if self._sh(["test", "-e", save]).rc == 0:
            self._xl("restore", save, node=spec.node)
            self._sh(["rm", "-f", save])
            return
        if self._sh(["test", "-e", self.cfg_path(spec)]).rc != 0:
            raise NotFound(f"Cannot find vm {spec.node} on {self.where}")
        self._xl("create", self.cfg_path(spec), node=spec.node)

    def _power_one(self, spec: VmSpec, action: str, dom) -> str:
        state = power_state(dom.state) if dom else None
        if action == "stat":
            return state if dom else self._stopped_state(spec)
        if action == "on":
            if dom and state == "suspended":
                self._xl("unpause", spec.node, node=spec.node)
            elif dom and state in ("crashed", "off"):
                # kept by on_crash=preserve (or shut down, not yet reaped): what an xl user
                # does, xl destroy + xl create, since create refuses the name while it exists
                self._xl("destroy", spec.node, node=spec.node, ok_missing=True)
                self._start(spec)
            elif not dom:
                self._start(spec)
            return "on"
        if action == "off":
            if dom:
                self._xl("destroy", spec.node, node=spec.node, ok_missing=True)
            return "off"
        if action == "softoff":
            if dom:
                self._xl("shutdown", spec.node, node=spec.node, ok_missing=True)
            return "off"
        if action in ("reset", "boot"):
            if dom:
                self._xl("destroy", spec.node, node=spec.node, ok_missing=True)
            self._start(spec)
            if action == "reset":
                return "reset"
            return "on reset" if dom else "off on"
        if action == "suspend":
            if not dom:
                raise InvalidState(f"{spec.node} is not running")
            if self.endpoint.option("suspend") == "pause":
                self._xl("pause", spec.node, node=spec.node)
            else:
                self._xl("save", spec.node, self._save_path(spec), node=spec.node)
            return "suspended"
        if action == "resume":
            if dom and state == "suspended":
                self._xl("unpause", spec.node, node=spec.node)
            elif not dom:
                if self._stopped_state(spec) != "suspended":
                    raise InvalidState(f"{spec.node} is not suspended")
                self._start(spec)
            return "on"
        raise PermanentError(f"Unsupported power directive '{action}'")

    def list_vms(self) -> list[VmInfo]:
        """Running domains plus every VM with a config file here (off/suspended)."""
        running = self._domains()
        out = {name: VmInfo(name, power_state(d.state)) for name, d in running.items()}
        if self.layout == "openqrm":
            cmd = f"grep -h '^name' {shlex.quote(self.cfgdir)}/*/*.xen 2>/dev/null"
        else:
            cmd = f"cd {shlex.quote(self.cfgdir)} 2>/dev/null && ls -1"
        r = self._sh(cmd)
        for line in r.out.splitlines():
            if self.layout == "openqrm":
                name = line.partition("=")[2].strip().strip("'\"")
            else:
                name = line[:-4] if line.endswith(".cfg") else ""
                if line.endswith(".save"):
                    out.setdefault(line[:-5], VmInfo(line[:-5], "suspended"))
                    continue
            if name and name not in out:
                out[name] = VmInfo(name, "off")
        return sorted(out.values(), key=lambda v: v.name)

    def describe(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        """Host, State, Memory, CPUs, disks and NICs from the config and ``list``."""
        running = self._domains()
        for spec in specs:
            cfg = self._read_cfg(spec)
            dom = running.get(spec.node)
            if cfg is None and dom is None:
                yield NodeResult(spec.node, ok=False,
                                 message=f"Cannot find vm {spec.node} on {self.where}")
                continue
            cfg = cfg or {}
            state = power_state(dom.state) if dom else self._stopped_state(spec)
            lines = [f"Id: {dom.domid if dom else ''}", f"Host: {self.where}",
                     f"State: {state}",
                     f"Memory: {dom.memory_mib if dom else cfg.get('memory', '')}",
                     f"CPU: {dom.vcpus if dom else cfg.get('vcpus', '')}",
                     f"Config: {self.cfg_path(spec)}"]
            for d in map(parse_disk, cfg.get("disk", [])):
                lines.append(f"Disk {d.vdev}: {d.target}")
            for i, v in enumerate(cfg.get("vif", [])):
                kv = parse_vif(v)
                lines.append(f"NIC {i}: {kv.get('mac', '')} {kv.get('bridge', '')}".rstrip())
            yield NodeResult(spec.node, message="\n".join(lines), data={"state": state})

    def stats(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        """``cpu_time_s``, ``memory_mib``, ``vcpus``, ``state`` per VM from one ``list``."""
        running = self._domains()
        for spec in specs:
            d = running.get(spec.node)
            if d is None:
                yield NodeResult(spec.node, message="off", data={"state": "off"})
            else:
                yield NodeResult(spec.node, message=f"cpu {d.cpu_time_s:.1f} s, "
                                 f"memory {d.memory_mib} MiB, {d.vcpus} vcpus",
                                 data={"cpu_time_s": d.cpu_time_s, "memory_mib": d.memory_mib,
                                       "vcpus": d.vcpus, "state": power_state(d.state)})

    def addresses(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        """The static address of each VM's boot parameters, read back from its config disk
        on the dom0 (else from ``spec.bootparams``); ``data["addresses"]`` is a list, empty
        for DHCP or no parameters (the toolstack itself knows no guest addresses)."""
        from nodemgr.bootparams import addresses as bp_addresses

        for spec in specs:
            try:
                cfg = self._read_cfg(spec)
                if cfg is None:
                    raise NotFound(f"Cannot find vm {spec.node} on {self.where}")
                params = self.read_bootparams(spec, cfg)
                addrs = bp_addresses(spec.bootparams if params is None else params)
                yield NodeResult(spec.node, message=",".join(addrs), data={"addresses": addrs})
            except (NotFound, PermanentError) as exc:
                yield NodeResult(spec.node, ok=False, message=str(exc))

    def host_free_memory_mib(self) -> int:
        """``free_memory`` of ``xl info`` (MiB)."""
        info = parse_info(self._xl("info").out)
        try:
            return int(info["free_memory"])
        except (KeyError, ValueError):
            raise PermanentError(f"no free_memory in {self.tool} info on {self.where}") from None

    def change(self, specs: Sequence[VmSpec], change: VmChange) -> Iterator[NodeResult]:
        """cpus/memory (config; live ``mem-set``/``vcpu-set`` when running), add disks
        (new image files), remove disks (detached from the config, file deleted), detach
        disks (from the config only, the file kept). The
        config change applies at the next start for anything not live."""
        running = self._domains()
        for spec in specs:
            try:
                cfg = self._read_cfg(spec)
                if cfg is None:
                    raise NotFound(f"Cannot find vm {spec.node} on {self.where}")
                dom = running.get(spec.node)
                if change.cpus:
                    cfg["vcpus"] = change.cpus
                    if dom:
                        self._xl("vcpu-set", spec.node, str(change.cpus), node=spec.node)
                if change.memory_mib:
                    cfg["memory"] = change.memory_mib
                    if dom:
                        self._xl("mem-set", spec.node, f"{change.memory_mib}m", node=spec.node)
                disks = list(cfg.get("disk", []))
                used = {parse_disk(d).vdev for d in disks}
                if change.add_disks_mib:
                    from nodemgr.plugins.base import DiskSpec, next_dev_names

                    loc = (spec.storage or [""])[-1]
                    names = [n for n in next_dev_names("virtio", 26, ())
                             if xen_dev(n) not in used][: len(change.add_disks_mib)]
                    for dev, size in zip(names, change.add_disks_mib, strict=False):
                        d = DiskSpec(dev=dev, location=loc, size_mib=size,
                                     format=spec.storageformat)
                        path = self._image_path(spec, d)
                        self._make_image(path, d.format, size, False)
                        disks.append(f"format={d.format},vdev={xen_dev(dev)},access=rw,"
                                     f"target={path}" if self.tool != "xm"
                                     else f"file:{path},{xen_dev(dev)},w")
                purge = set(change.remove_disks)
                for dev in [*change.remove_disks, *change.detach_disks]:
                    hit = [d for d in disks if parse_disk(d).vdev == xen_dev(dev)]
                    if not hit:
                        raise NotFound(f"{spec.node} has no disk {dev}")
                    info = parse_disk(hit[0])
                    disks.remove(hit[0])
                    if info.file_backed and dev in purge:
                        self._sh(["rm", "-f", "--", info.target])
                if change.resize or change.cdrom or change.eject:
                    raise PermanentError("chvm --resize/--cdrom/--eject are not supported by "
                                         "the xen driver")
                cfg["disk"] = disks
                self._write_cfg(spec, cfg)
                yield NodeResult(spec.node)
            except (NotFound, InvalidState, PermanentError) as exc:
                yield NodeResult(spec.node, ok=False, message=str(exc))

    def migrate(self, specs: Sequence[VmSpec], target: Endpoint) -> Iterator[NodeResult]:
        """``xl migrate <vm> <host>`` (``xm migrate --live``), verified on the target, then
        the config file moves with the VM. Updates ``vm.host``."""
        other = XenDriver(target, self.timeout)
        other.connect()
        dest = target.option("migrate_host") or other.host
        for spec in specs:
            try:
                cfg = self._read_cfg(spec)
                args = ("migrate", "--live", spec.node, dest) if self.tool == "xm" \
                    else ("migrate", spec.node, dest)
                r = self._sh([self.tool, *args])
                if r.rc != 0:
                    lines = [x for x in r.err.splitlines() if x.strip()]
                    raise PermanentError(f"migration to {target.host} failed: "
                                         f"{_error_text(chr(10).join(lines))}")
                if spec.node not in other._domains():
                    raise PermanentError(f"{spec.node} is not running on {target.host} after "
                                         "migration")
                if cfg is not None:
                    other._write_cfg(spec, cfg)
                    self._sh(["rm", "-f", "--", self.cfg_path(spec)])
                yield NodeResult(spec.node, message=f"migrated to {target.host}",
                                 updates={"vm.host": target.host})
            except (NotFound, InvalidState, PermanentError, Unreachable) as exc:
                yield NodeResult(spec.node, ok=False, message=str(exc))

    def make_master(self, spec: VmSpec, master: str, *, detached: bool = False,
                    force: bool = False) -> NodeResult:
        """Copy the (stopped) VM's file-backed images to ``<master>.<dev>.<fmt>`` beside
        them; the master's config goes to ``data["master_definition"]``. Images are always
        full copies (the VM keeps its own disks)."""
        cfg = self._read_cfg(spec)
        if cfg is None:
            raise NotFound(f"Cannot find vm {spec.node} on {self.where}")
        if spec.node in self._domains() and not force:
            raise InvalidState(f"{spec.node} is running; stop it or use -f")
        disks = []
        for raw in cfg.get("disk", []):
            d = parse_disk(raw)
            if not d.file_backed or d.cdrom:
                continue
            dst = posixpath.join(posixpath.dirname(d.target),
                                 posixpath.basename(d.target).replace(spec.node, master, 1))
            if dst == d.target:
                dst = d.target + f".{master}"
            self._copy(d.target, dst)
            disks.append(raw.replace(d.target, dst))
        mcfg = dict(cfg, name=master, disk=disks)
        mcfg.pop("uuid", None)
        return NodeResult(spec.node, message=f"master {master} made",
                          data={"master_definition": format_config(mcfg)})

    def clone_from_master(self, specs: Sequence[VmSpec], master: str,
                          master_definition: str | None, *,
                          detached: bool = False) -> Iterator[NodeResult]:
        """Each VM gets full copies of the master's images (``cp --sparse=always``) and its
        own config (name, UUID, MACs from the spec)."""
        if not master_definition:
            raise PermanentError(f"no stored definition for master {master}")
        mcfg = parse_config(master_definition)
        for spec in specs:
            try:
                disks = []
                for raw in mcfg.get("disk", []):
                    d = parse_disk(raw)
                    dst = posixpath.join(posixpath.dirname(d.target),
                                         posixpath.basename(d.target).replace(master, spec.node, 1))
                    if dst == d.target:
                        dst = d.target + f".{spec.node}"
                    self._copy(d.target, dst)
                    disks.append(raw.replace(d.target, dst))
                cfg = self.build_config(spec, disks=disks)
                for k in ("kernel", "ramdisk", "extra", "cmdline", "bootloader", "type",
                          "builder", "boot"):
                    if k in mcfg and k not in cfg:
                        cfg[k] = mcfg[k]
                self._attach_cidata(spec, cfg)
                self._write_cfg(spec, cfg)
                yield NodeResult(spec.node)
            except (NotFound, InvalidState, PermanentError) as exc:
                yield NodeResult(spec.node, ok=False, message=str(exc))

    def _copy(self, src: str, dst: str) -> None:
        r = self._sh(["cp", "--sparse=always", "--", src, dst])
        if r.rc != 0:
            raise PermanentError(f"cannot copy {src} on {self.where}: {_error_text(r.err)}")


def xen_dev(dev: str) -> str:
    """Xen guest device name for a VmSpec device (``vda`` -> ``xvda``; others unchanged)."""
    return "x" + dev if dev.startswith("vd") else dev


def _error_text(text: str) -> str:
    """The meaningful line of toolstack stderr: progress lines dropped, ``Error:`` removed."""
    lines = [line.strip() for line in text.splitlines() if line.strip()
             and not line.startswith(("Parsing config from", "Using config file", "Usage"))]
    if not lines:
        return "failed (no message)"
    line = lines[0] if len(lines) == 1 else next(
        (x for x in lines if "error" in x.lower() or "fail" in x.lower()), lines[0])
    return line.removeprefix("Error: ").removeprefix("libxl: error: ")
