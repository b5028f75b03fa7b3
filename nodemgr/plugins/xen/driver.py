"""Xen driver: drives a dom0's toolstack (``xl``, else legacy ``xm``) over SSH.

One SSH connection per dom0 (``nodemgr.sshpool``, paramiko, host keys checked against the
administrator's known_hosts). Each VM has one domain configuration file on the dom0, written
from its VmSpec: by default ``<cfgdir>/<node>.cfg`` with ``cfgdir`` = ``/etc/xen/nodemgr``;
with endpoint option ``layout=openqrm`` openQRM's ``/var/lib/xen/VirtualMachines/<mac>/
<mac>.xen``. Operations map to toolstack commands: on = ``create``, off = ``destroy``,
softoff = ``shutdown``, reset = ``destroy`` + ``create``, suspend/resume = ``save``/
``restore`` (or ``pause``/``unpause`` with option ``suspend=pause``), migrate = ``xl
migrate`` (``xm migrate --live``), stat/lsvm/stats = one ``list``, free memory = ``info``,
rvitals = one ``xentop -b -f -i 2 -d <s>`` (else two ``list`` samples), rinv/rscan =
``list -l`` + the config files, rsetboot = ``boot=`` in the config, rcons = ``console`` on
an SSH channel with a pty.

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

Results carry :class:`~nodemgr.plugins.base.Facts` (host after mkvm/rmigrate, power word
and provisioning status after rpower, cpus/memory after chvm and clonevm, addresses,
metrics, inventory, boot device); the driver never names a table column.

What it must never do: read tables, trust an unknown host key, dump raw toolstack output as
an error (errors are mapped to one line), or delete a block device (``phy:``) on purge.
"""

from __future__ import annotations

import math
import os
import posixpath
import shlex
import tempfile
import time
from collections.abc import Iterator, Sequence
from urllib.parse import urlsplit

from nodemgr.formats import keyvals
from nodemgr.plugins.base import (
    Address,
    Console,
    DiskInfo,
    DiskSpec,
    DriverError,
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
    Unsupported,
    VmChange,
    VmInfo,
    VmSpec,
    next_dev_names,
)
from nodemgr.plugins.xen import TRAITS
from nodemgr.plugins.xen.parse import (
    ParseError,
    format_config,
    parse_config,
    parse_disk,
    parse_info,
    parse_list,
    parse_list_long,
    parse_vif,
    parse_xentop,
    power_state,
    top_metrics,
)

DEFAULT_CFGDIR = "/etc/xen/nodemgr"
OPENQRM_DIR = "/var/lib/xen/VirtualMachines"
DEFAULT_IMAGEDIR = "/var/lib/xen/images"
CIDATA_SUFFIX = ".cidata.iso"
XEN_BOOT = {"network": "n", "hd": "c", "cdrom": "d"}
#: rsetboot device -> the ``boot=`` letter of an HVM guest (xl.cfg(5): c disk, d cdrom,
#: n network)
BOOT_LETTER = {"net": "n", "hd": "c", "cd": "d"}
NEED_MAC = "the openqrm config layout needs the node's MAC (attribute mac)"
#: separator line between config files in :meth:`XenDriver._all_configs`
_CFG_MARK = "#### nodemgr-cfg "


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
    traits = TRAITS

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

    def validate(self, spec: VmSpec) -> None:
        """The generic checks, plus: the openqrm layout names a VM's files by its first
        MAC, so it needs one (xCAT attribute ``mac``). No network call."""
        super().validate(spec)
        if self.layout == "openqrm" and not (spec.nics and spec.nics[0].mac):
            raise PermanentError(NEED_MAC)

    def translate(self, exc: Exception) -> DriverError | None:
        """A toolstack output or config file this driver cannot read -> PermanentError
        naming the dom0; anything else is not ours to map."""
        if isinstance(exc, ParseError):
            return PermanentError(f"{self.where}: {exc}")
        return None

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
                raise PermanentError(NEED_MAC)
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
        other = keyvals(spec.extra.get("othersettings"), ";")
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
        existing config (*force*) without new disks keeps the disks it lists.
        ``facts.host`` = the dom0's node name."""
        running = self._domains()
        yield from self.each_node(specs, self._create_one, running, force)

    def _create_one(self, spec: VmSpec, running: dict, force: bool) -> NodeResult:
        if spec.node in running:
            raise InvalidState(f"{spec.node} is running on {self.where}")
        old = self._read_cfg(spec)
        if old is not None and not force:
            raise InvalidState(f"{spec.node} already exists on {self.where} "
                               "(use -f to replace it)")
        cfg = self.build_config(spec)
        if old is not None and not spec.disks:
            # -f without new disks: keep the VM's disks (else they are orphaned); only our
            # old config disk goes, _attach_cidata adds the new one
            cfg["disk"] = [d for d in old.get("disk", []) if not self._is_our_cidata(spec, d)]
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
        host = self.endpoint.host if self.endpoint.host and "://" not in self.endpoint.host \
            else None
        return NodeResult(spec.node, facts=Facts(host=host))

    @staticmethod
    def _is_our_cidata(spec: VmSpec, raw: str) -> bool:
        d = parse_disk(raw)
        return d.cdrom and posixpath.basename(d.target) == f"{spec.node}{CIDATA_SUFFIX}"

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
        yield from self.each_node(specs, self._remove_one, running, force, purge)

    def _remove_one(self, spec: VmSpec, running: dict, force: bool, purge: bool) -> NodeResult:
        cfg = self._read_cfg(spec)
        if spec.node in running:
            if not force:
                raise InvalidState(f"{spec.node} is running on {self.where} "
                                   "(use -f to stop it first)")
            self._xl("destroy", spec.node, node=spec.node, ok_missing=True)
        elif cfg is None:
            raise NotFound(f"Cannot find vm {spec.node} on {self.where}")
        if purge and cfg:
            # file-backed disks and our config disk, not other cdroms
            files = [d.target for d in map(parse_disk, cfg.get("disk", []))
                     if d.file_backed and (not d.cdrom or posixpath.basename(d.target)
                                           == f"{spec.node}{CIDATA_SUFFIX}")]
            if files:
                self._sh(["rm", "-f", "--", *files])
        self._sh(["rm", "-f", "--", self.cfg_path(spec), self._save_path(spec)])
        return NodeResult(spec.node)

    def power(self, specs: Sequence[VmSpec], action: str) -> Iterator[NodeResult]:
        """Power *action* on each VM with xCAT's replies (``on``, ``off``, ``off on``,
        ``on reset``, ``reset``, ``suspended``); ``facts.power`` = the state after it,
        ``facts.status`` = ``powering-on``/``powering-off`` for a change. ``on`` of a
        crashed domain (kept by ``on_crash=preserve``, ``--psc-``) destroys it and creates
        it again."""
        running = self._domains()
        yield from self.each_node(specs, self._power_result, action, running)

    def _power_result(self, spec: VmSpec, action: str, running: dict) -> NodeResult:
        msg = self._power_one(spec, action, running.get(spec.node))
        status = {"on": "powering-on", "off": "powering-off", "off on": "powering-on"}
        word = "on" if msg in ("reset", "on reset", "off on") else msg
        return NodeResult(spec.node, message=msg, data={"state": msg}, facts=Facts(
            power=word, status=status.get(msg) if action != "stat" else None))

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
        out = {name: VmInfo(name, power_state(d.state), memory_mib=d.memory_mib, cpus=d.vcpus)
               for name, d in running.items()}
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

    def scan(self) -> list[VmInfo]:
        """Every VM here (:meth:`list_vms`) with uuid, memory (MiB), vCPUs, MACs and disks
        (``rscan -w``): a running domain's from one ``list -l`` (what it runs with), a
        stopped one's from its config file (all files read in one command). Disk sizes are
        not read (``rinv`` does)."""
        vms = self.list_vms()
        longs = {d["name"]: d for d in self._list_long() if d.get("domid") != 0}
        cfgs = self._all_configs()
        for vm in vms:
            cfg = cfgs.get(vm.name, {})
            dom = longs.get(vm.name)
            inv = self._inventory_from(cfg, dom)
            vm.uuid, vm.cpus, vm.memory_mib = inv.uuid, inv.cpus, inv.memory_mib
            vm.macs = [n.mac for n in inv.nics if n.mac]
            vm.disks = inv.disks
        return vms

    def _list_long(self, name: str | None = None) -> list[dict]:
        """``list -l [name]`` parsed (JSON or SXP); [] when the toolstack refuses it."""
        r = self._sh([self.tool, "list", "-l", *([name] if name else [])])
        if r.rc != 0:
            return []
        return parse_list_long(r.out)

    def _all_configs(self) -> dict[str, dict]:
        """name -> parsed config of every config file in ``cfgdir`` (one command; a file
        that does not parse is left out: ``lsvm`` shows it, ``rinv`` names the error)."""
        pattern = "*/*.xen" if self.layout == "openqrm" else "*.cfg"
        cmd = (f"cd {shlex.quote(self.cfgdir)} 2>/dev/null && for f in {pattern}; do "
               f"[ -f \"$f\" ] && echo '{_CFG_MARK}'\"$f\" && cat -- \"$f\"; done; true")
        out: dict[str, dict] = {}
        for chunk in self._sh(cmd).out.split(_CFG_MARK)[1:]:
            _, _, text = chunk.partition("\n")
            try:
                cfg = parse_config(text)
            except ParseError:
                continue
            if cfg.get("name"):
                out[str(cfg["name"])] = cfg
        return out

    def _inventory_from(self, cfg: dict, dom: dict | None) -> Inventory:
        """Inventory of one VM from its config and (running) its ``list -l`` summary:
        what it runs with wins; disks in config order, cdroms marked."""
        dom = dom or {}
        nics = [NicInfo(mac=(kv.get("mac") or "").lower(), network=kv.get("bridge"),
                        model=kv.get("model") or "netfront")
                for kv in map(parse_vif, cfg.get("vif", []))]
        if not nics:
            nics = [NicInfo(mac=(n.get("mac") or "").lower(), network=n.get("bridge"))
                    for n in dom.get("nics", [])]
        disks = []
        for raw in cfg.get("disk", []):
            d = parse_disk(raw)
            disks.append(DiskInfo(dev=d.vdev, path=d.target or None, format=d.format,
                                  device="cdrom" if d.cdrom else "disk"))
        if not disks:
            disks = [DiskInfo(dev=d.get("vdev") or "", path=d.get("target"))
                     for d in dom.get("disks", [])]
        mem = dom.get("memory_mib") or _int(cfg.get("memory"))
        return Inventory(uuid=dom.get("uuid") or cfg.get("uuid"),
                         cpus=dom.get("vcpus") or _int(cfg.get("vcpus")),
                         memory_mib=mem, disks=disks, nics=nics)

    def describe(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        """Host, State, Memory, CPUs, disks and NICs from the config and ``list``."""
        running = self._domains()
        yield from self.each_node(specs, self._describe_one, running)

    def _describe_one(self, spec: VmSpec, running: dict) -> NodeResult:
        cfg = self._read_cfg(spec)
        dom = running.get(spec.node)
        if cfg is None and dom is None:
            raise NotFound(f"Cannot find vm {spec.node} on {self.where}")
        cfg = cfg or {}
        state = power_state(dom.state) if dom else self._stopped_state(spec)
        lines = [f"Id: {dom.domid if dom else ''}", f"Host: {self.where}",
                 f"State: {state}",
                 f"Memory: {dom.memory_mib if dom else cfg.get('memory', '')}",
                 f"CPU: {dom.vcpus if dom else cfg.get('vcpus', '')}",
                 f"Config: {self.cfg_path(spec)}"]
        if cfg.get("boot"):
            lines.append(f"Boot: {cfg['boot']}")
        for d in map(parse_disk, cfg.get("disk", [])):
            lines.append(f"Disk {d.vdev}: {d.target}")
        for i, v in enumerate(cfg.get("vif", [])):
            kv = parse_vif(v)
            lines.append(f"NIC {i}: {kv.get('mac', '')} {kv.get('bridge', '')}".rstrip())
        return NodeResult(spec.node, message="\n".join(lines), data={"state": state},
                          facts=Facts(power=state))

    def stats(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        """``cpu_time_s``, ``memory_mib``, ``vcpus``, ``state`` per VM from one ``list``."""
        running = self._domains()
        yield from self.each_node(specs, self._stats_one, running)

    @staticmethod
    def _stats_one(spec: VmSpec, running: dict) -> NodeResult:
        d = running.get(spec.node)
        if d is None:
            return NodeResult(spec.node, message="off", data={"state": "off"})
        return NodeResult(spec.node, message=f"cpu {d.cpu_time_s:.1f} s, "
                          f"memory {d.memory_mib} MiB, {d.vcpus} vcpus",
                          data={"cpu_time_s": d.cpu_time_s, "memory_mib": d.memory_mib,
                                "vcpus": d.vcpus, "state": power_state(d.state)})

    # rvitals -------------------------------------------------------------------------------------
    def vitals(self, specs: Sequence[VmSpec], interval_s: float = 1.0) -> Iterator[NodeResult]:
        """Use of each running VM over *interval_s* seconds, from ONE command for all of
        them: ``xentop -b -f -i 2 -d <s>`` (the dom0 takes both samples; xentop's delay is
        whole seconds, so the interval is rounded up to one and ``metrics.interval_s``
        says what was used). CPU % is xentop's (of one CPU, summed over vCPUs); memory used
        = the domain's current allocation (the toolstack cannot see inside the guest),
        available = its limit (``maxmem``); disk rates from the sector counters (512
        bytes), network rates from the KiB counters. Without xentop on the dom0, two
        ``list`` samples *interval_s* apart give CPU % and memory; disk and network stay
        None. A VM that is not running fails with InvalidState (nothing to measure)."""
        if self.conn is None:
            self.connect()
        delay = max(1, math.ceil(interval_s))
        r = self._sh(f"command -v xentop >/dev/null 2>&1 && xentop -b -f -i 2 -d {delay}")
        if r.rc == 0 and r.out.strip():
            runs = parse_xentop(r.out)
            before = {row.name: row for row in runs[0]} if len(runs) > 1 else {}
            samples = {row.name: top_metrics(before.get(row.name), row, delay)
                       for row in runs[-1]}
        else:
            samples = self._vitals_from_list(interval_s)
        yield from self.each_node(specs, self._vitals_one, samples)

    def _vitals_from_list(self, interval_s: float) -> dict[str, Metrics]:
        """Two ``list`` samples *interval_s* apart (CPU time -> CPU %, memory)."""
        t0, first = time.monotonic(), self._domains()
        time.sleep(max(interval_s, 0.1))
        t1, second = time.monotonic(), self._domains()
        out = {}
        for name, d in second.items():
            before = first.get(name)
            pct = None
            if before is not None and before.domid == d.domid:
                pct = round(max(d.cpu_time_s - before.cpu_time_s, 0.0) / (t1 - t0) * 100, 1)
            out[name] = Metrics(interval_s=round(t1 - t0, 2), cpu_pct=pct, cpus=d.vcpus,
                                mem_used_mib=d.memory_mib, mem_avail_mib=d.memory_mib)
        return out

    def _vitals_one(self, spec: VmSpec, samples: dict[str, Metrics]) -> NodeResult:
        m = samples.get(spec.node)
        if m is None:
            if self._read_cfg(spec) is None:
                raise NotFound(f"Cannot find vm {spec.node} on {self.where}")
            raise InvalidState(f"{spec.node} is not running on {self.where}")
        return NodeResult(spec.node, message=_metrics_text(m), facts=Facts(metrics=m))

    # rinv ------------------------------------------------------------------------------------------
    def inventory(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        """Each VM's uuid, vCPUs, memory (MiB), disks with their size (MiB: ``qemu-img
        info`` for qcow2, the file's or block device's size otherwise), NICs with MACs,
        and IP addresses with their source: ``bootparams`` (read back from the config
        disk) and ``arp`` (the dom0's neighbour table, ``ip neigh``, matched on the VM's
        MACs). A running domain's uuid/cpus/memory come from ``list -l``."""
        running = self._domains()
        neigh = self._neighbours()
        yield from self.each_node(specs, self._inventory_one, running, neigh)

    def _inventory_one(self, spec: VmSpec, running: dict,
                       neigh: dict[str, list[str]]) -> NodeResult:
        cfg = self._read_cfg(spec)
        if cfg is None and spec.node not in running:
            raise NotFound(f"Cannot find vm {spec.node} on {self.where}")
        dom = next(iter(self._list_long(spec.node)), None) if spec.node in running else None
        inv = self._inventory_from(cfg or {}, dom)
        for disk in inv.disks:
            if disk.path and disk.device == "disk":
                disk.size_mib = self._disk_size_mib(disk.path, disk.format)
        from nodemgr.bootparams import addresses as bp_addresses

        params = self.read_bootparams(spec, cfg or {})
        first_mac = inv.nics[0].mac if inv.nics else None
        addrs = [Address(ip, "bootparams", first_mac) for ip in bp_addresses(params or {})]
        for nic in inv.nics:
            addrs += [Address(ip, "arp", nic.mac) for ip in neigh.get(nic.mac, [])
                      if ip not in {a.ip for a in addrs}]
        inv.addresses = addrs
        return NodeResult(spec.node, message=_inventory_text(inv),
                          data={"uuid": inv.uuid, "cpus": inv.cpus, "memory_mib": inv.memory_mib},
                          facts=Facts(inventory=inv, addresses=addrs))

    def _disk_size_mib(self, path: str, fmt: str | None) -> int | None:
        """Virtual size of the image at *path* in MiB, None when it cannot be read."""
        if fmt and fmt not in ("raw", "aio"):
            import json

            r = self._sh(["qemu-img", "info", "--output=json", "-U", "--", path])
            try:
                return int(json.loads(r.out)["virtual-size"]) >> 20 if r.rc == 0 else None
            except (ValueError, KeyError, TypeError):
                return None
        r = self._sh(f"if [ -b {shlex.quote(path)} ]; then blockdev --getsize64 "
                     f"{shlex.quote(path)}; else stat -L -c %s -- {shlex.quote(path)}; fi")
        return int(r.out.strip()) >> 20 if r.rc == 0 and r.out.strip().isdigit() else None

    def _neighbours(self) -> dict[str, list[str]]:
        """MAC -> IP addresses in the dom0's neighbour table (``ip neigh show``; entries
        that failed or have no link-layer address skipped); {} without ``ip``."""
        r = self._sh("ip neigh show 2>/dev/null || true")
        out: dict[str, list[str]] = {}
        for line in r.out.splitlines():
            f = line.split()
            if "lladdr" in f and f[-1] not in ("FAILED", "INCOMPLETE"):
                mac = f[f.index("lladdr") + 1].lower()
                out.setdefault(mac, []).append(f[0])
        return out

    # rsetboot --------------------------------------------------------------------------------------
    def set_boot(self, specs: Sequence[VmSpec], device: str) -> Iterator[NodeResult]:
        """Make *device* (``net``, ``hd``, ``cd``; ``default`` = ``vm.bootorder``) the first
        boot device of each HVM guest: ``boot=`` in its config (xl.cfg(5): ``n`` network,
        ``c`` disk, ``d`` cdrom; the devices it had follow), read at its next start.
        ``facts.bootdev`` = *device*; ``data["boot"]`` = the new ``boot=``. An unknown
        device fails every node with no call to the dom0; a PV guest (kernel or bootloader,
        no firmware) is Unsupported; ``cd`` without a cdrom drive is InvalidState."""
        if device not in (*BOOT_LETTER, "default"):
            err = PermanentError(f"unknown boot device '{device}' (net, hd, cd or default)")
            yield from self.each_node(specs, _refuse, err)
            return
        running = self._domains()
        yield from self.each_node(specs, self._set_boot_one, device, running)

    def _set_boot_one(self, spec: VmSpec, device: str, running: dict) -> NodeResult:
        cfg = self._read_cfg(spec)
        if cfg is None:
            raise NotFound(f"Cannot find vm {spec.node} on {self.where}")
        hvm = cfg.get("type") == "hvm" or cfg.get("builder") == "hvm"
        if not hvm:
            raise Unsupported(f"{spec.node} is a PV guest (kernel/bootloader): it has no "
                              "firmware boot order")
        order = "".join(XEN_BOOT[b] for b in spec.bootorder if b in XEN_BOOT) or "c"
        if device != "default":
            letter = BOOT_LETTER[device]
            if letter == "d" and not any(parse_disk(d).cdrom for d in cfg.get("disk", [])):
                raise InvalidState(f"{spec.node} has no cdrom drive to boot from")
            current = str(cfg.get("boot") or order)
            order = letter + "".join(c for c in current if c != letter)
        cfg["boot"] = order
        self._write_cfg(spec, cfg)
        when = " (from its next start)" if spec.node in running else ""
        return NodeResult(spec.node, message=f"{device}{when}", data={"boot": order},
                          facts=Facts(bootdev=device))

    # rcons / getcons -----------------------------------------------------------------------------
    def console(self, spec: VmSpec, *, open_stream: bool = False,
                display: bool = False) -> Console:
        """The running domain's serial console: ``xl console <vm>`` on the dom0 (what
        ``Console.command`` gives as an ``ssh`` line); with *open_stream*, that command on
        an SSH channel with a pty (:class:`~nodemgr.plugins.xen.console.XenConsole`;
        Ctrl-] leaves, as with xl). Raises NotFound (no such VM), InvalidState (not
        running: xl has no console to attach to)."""
        if spec.node not in self._domains():
            if self._read_cfg(spec) is None:
                raise NotFound(f"Cannot find vm {spec.node} on {self.where}")
            raise InvalidState(f"{spec.node} is not running on {self.where}; rpower it on "
                               "first")
        port = f" -p {self.port}" if self.port != 22 else ""
        cmd = f"ssh -t{port} {self.user}@{self.host} {self.tool} console {spec.node}"
        con = Console(kind="serial", host=self.where, command=cmd)
        if open_stream:
            from nodemgr.plugins.xen.console import XenConsole

            con.stream = XenConsole(self.conn.open_pty([self.tool, "console", spec.node],
                                                       timeout=min(self.timeout, 30.0)))
        return con

    # addresses, free memory ------------------------------------------------------------------
    def addresses(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        """The static address of each VM's boot parameters, read back from its config disk
        on the dom0 (else from ``spec.bootparams``); ``data["addresses"]`` is a list, empty
        for DHCP or no parameters; ``facts.addresses`` the same with source ``bootparams``
        (``inventory`` adds the dom0's neighbour table)."""
        yield from self.each_node(specs, self._addresses_one)

    def _addresses_one(self, spec: VmSpec) -> NodeResult:
        from nodemgr.bootparams import addresses as bp_addresses

        cfg = self._read_cfg(spec)
        if cfg is None:
            raise NotFound(f"Cannot find vm {spec.node} on {self.where}")
        params = self.read_bootparams(spec, cfg)
        addrs = bp_addresses(spec.bootparams if params is None else params)
        mac = spec.nics[0].mac if spec.nics else None
        return NodeResult(spec.node, message=",".join(addrs), data={"addresses": addrs},
                          facts=Facts(addresses=[Address(a, "bootparams", mac) for a in addrs]))

    def host_free_memory_mib(self) -> int:
        """``free_memory`` of ``xl info`` (MiB)."""
        info = parse_info(self._xl("info").out)
        try:
            return int(info["free_memory"])
        except (KeyError, ValueError):
            raise PermanentError(f"no free_memory in {self.tool} info on {self.where}") from None

    # chvm ------------------------------------------------------------------------------------------
    def change(self, specs: Sequence[VmSpec], change: VmChange) -> Iterator[NodeResult]:
        """cpus/memory (config; live ``mem-set``/``vcpu-set`` when running), add disks
        (new image files), remove disks (detached from the config, file deleted), detach
        disks (from the config only, the file kept). The config change applies at the
        next start for anything not live. ``facts.cpus``/``memory_mib`` = the new values."""
        if change.resize or change.cdrom or change.eject:
            err = Unsupported("chvm --resize/--cdrom/--eject are not supported by the xen "
                              "driver")
            yield from self.each_node(specs, _refuse, err)
            return
        running = self._domains()
        yield from self.each_node(specs, self._change_one, change, running)

    def _change_one(self, spec: VmSpec, change: VmChange, running: dict) -> NodeResult:
        cfg = self._read_cfg(spec)
        if cfg is None:
            raise NotFound(f"Cannot find vm {spec.node} on {self.where}")
        dom = running.get(spec.node)
        disks = list(cfg.get("disk", []))
        used = {parse_disk(d).vdev for d in disks}
        for dev in [*change.remove_disks, *change.detach_disks]:  # check all before acting
            if xen_dev(dev) not in used:
                raise NotFound(f"{spec.node} has no disk {dev}")
        if change.cpus:
            cfg["vcpus"] = change.cpus
            if dom:
                self._xl("vcpu-set", spec.node, str(change.cpus), node=spec.node)
        if change.memory_mib:
            cfg["memory"] = change.memory_mib
            if dom:
                self._xl("mem-set", spec.node, f"{change.memory_mib}m", node=spec.node)
        if change.add_disks_mib:
            loc = (spec.storage or [""])[-1]
            names = [n for n in next_dev_names("virtio", 26, ())
                     if xen_dev(n) not in used][: len(change.add_disks_mib)]
            for dev, size in zip(names, change.add_disks_mib, strict=False):
                d = DiskSpec(dev=dev, location=loc, size_mib=size, format=spec.storageformat)
                path = self._image_path(spec, d)
                self._make_image(path, d.format, size, False)
                disks.append(self._disk_entry(path, d.format, xen_dev(dev)))
        purge = set(change.remove_disks)
        for dev in [*change.remove_disks, *change.detach_disks]:
            hit = next(d for d in disks if parse_disk(d).vdev == xen_dev(dev))
            info = parse_disk(hit)
            disks.remove(hit)
            if info.file_backed and dev in purge:
                self._sh(["rm", "-f", "--", info.target])
        cfg["disk"] = disks
        self._write_cfg(spec, cfg)
        return NodeResult(spec.node, facts=Facts(cpus=change.cpus or None,
                                                 memory_mib=change.memory_mib or None))

    def _disk_entry(self, path: str, fmt: str, vdev: str) -> str:
        """A read-write disk spec: xl's key=value form, xm's ``file:<path>,<vdev>,w``."""
        if self.tool == "xm":
            return f"file:{path},{vdev},w"
        return f"format={fmt},vdev={vdev},access=rw,target={path}"

    # rmigrate --------------------------------------------------------------------------------------
    def migrate(self, specs: Sequence[VmSpec], target: Endpoint) -> Iterator[NodeResult]:
        """``xl migrate <vm> <host>`` (``xm migrate --live``), verified on the target, then
        the config file moves with the VM. ``facts.host`` = ``target.host``."""
        other = XenDriver(target, self.timeout)
        other.connect()
        dest = target.option("migrate_host") or other.host
        yield from self.each_node(specs, self._migrate_one, other, dest, target)

    def _migrate_one(self, spec: VmSpec, other: XenDriver, dest: str,
                     target: Endpoint) -> NodeResult:
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
        return NodeResult(spec.node, message=f"migrated to {target.host}",
                          facts=Facts(host=target.host))

    # clonevm -----------------------------------------------------------------------------------------
    def make_master(self, spec: VmSpec, master: str, *, detached: bool = False,
                    force: bool = False) -> NodeResult:
        """Copy the (stopped) VM's file-backed images to ``<master>.<dev>.<fmt>`` beside
        them; the master's config is ``facts.master_definition`` (and
        ``data["master_definition"]``). Images are always full copies (the VM keeps its
        own disks)."""
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
        text = format_config(mcfg)
        return NodeResult(spec.node, message=f"master {master} made",
                          data={"master_definition": text},
                          facts=Facts(master_definition=text))

    def clone_from_master(self, specs: Sequence[VmSpec], master: str,
                          master_definition: str | None, *,
                          detached: bool = False) -> Iterator[NodeResult]:
        """Each VM gets full copies of the master's images (``cp --sparse=always``) and its
        own config (name, UUID, MACs from the spec). vCPUs and memory are the master's
        unless the node's ``vm.cpus``/``vm.memory`` are set; ``facts.cpus``/``memory_mib``
        report what the clone got."""
        if not master_definition:
            yield from self.each_node(specs, _refuse, PermanentError(
                f"no stored definition for master {master}"))
            return
        try:
            mcfg = parse_config(master_definition)
        except ParseError as exc:
            yield from self.each_node(specs, _refuse, PermanentError(
                f"stored definition of master {master}: {exc}"))
            return
        yield from self.each_node(specs, self._clone_one, master, mcfg)

    def _clone_one(self, spec: VmSpec, master: str, mcfg: dict) -> NodeResult:
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
        for key, table in (("vcpus", "cpus"), ("memory", "memory")):
            if table not in spec.extra and mcfg.get(key):
                cfg[key] = mcfg[key]
        self._attach_cidata(spec, cfg)
        self._write_cfg(spec, cfg)
        return NodeResult(spec.node, facts=Facts(cpus=_int(cfg.get("vcpus")),
                                                 memory_mib=_int(cfg.get("memory"))))

    def _copy(self, src: str, dst: str) -> None:
        r = self._sh(["cp", "--sparse=always", "--", src, dst])
        if r.rc != 0:
            raise PermanentError(f"cannot copy {src} on {self.where}: {_error_text(r.err)}")


def _refuse(spec: VmSpec, err: DriverError) -> NodeResult:
    """The per-node function for a request refused before any call: raises *err*."""
    raise err


def _int(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _metrics_text(m: Metrics) -> str:
    """``cpu 12.5% over 1 s, mem 256/256 MiB, disk r/w 0/4096 B/s, net rx/tx 0/0 B/s``."""
    parts = [f"cpu {m.cpu_pct:.1f}% over {m.interval_s:g} s" if m.cpu_pct is not None
             else "cpu n/a", f"mem {m.mem_used_mib}/{m.mem_avail_mib} MiB"]
    if m.disk_read_bps is not None:
        parts.append(f"disk r/w {m.disk_read_bps:.0f}/{m.disk_write_bps:.0f} B/s")
    if m.net_rx_bps is not None:
        parts.append(f"net rx/tx {m.net_rx_bps:.0f}/{m.net_tx_bps:.0f} B/s")
    return ", ".join(parts)


def _inventory_text(inv: Inventory) -> str:
    """xCAT's rinv lines: ``UUID/GUID:``, ``CPUs:``, ``Memory: N MB``, one per disk, NIC
    and address."""
    lines = [f"UUID/GUID: {inv.uuid or ''}", f"CPUs: {inv.cpus or ''}",
             f"Memory: {inv.memory_mib or ''} MB"]
    for d in inv.disks:
        size = f"{d.size_mib} MB" if d.size_mib is not None else "size unknown"
        lines.append(f"Disk {d.dev}: {size} @ {d.path}" if d.device == "disk"
                     else f"CD-ROM {d.dev}: {d.path}")
    for i, n in enumerate(inv.nics):
        lines.append(f"Network adapter {i}: {n.mac} {n.network or ''}".rstrip())
    for a in inv.addresses:
        lines.append(f"IP address: {a.ip} ({a.source})")
    return "\n".join(lines)


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
