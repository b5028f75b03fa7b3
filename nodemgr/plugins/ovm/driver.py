"""Oracle VM 2.x driver: OVM Manager web services, plus SSH to the server pool master's dom0.

The plan of the seed one-pager (004, §4.1.2): the VM lifecycle goes through the manager's
web services (:mod:`nodemgr.plugins.ovm.soap`, the only module that knows SOAP); what the
web services do badly or not at all goes over SSH to the dom0s (:mod:`nodemgr.sshpool`,
paramiko, host keys checked against the administrator's known_hosts):

* **template import** — the ``<name>.tgz`` is copied over SFTP into ``/OVS/seed_pool``,
  extracted there into a staging directory, moved into place, then imported and approved
  through ResourceService. Any failure removes the staging files, and a template that was
  registered but not approved is unregistered again: nothing half-imported stays.
* **boot parameters** — ``bootparams.conf`` (``nodemgr.bootparams``) is written into the
  VM's small ``Bootparams.img`` with mtools' ``mcopy`` (no mount in dom0: the seed warns that
  mounting a disk the guest may use risks corruption), and the MACs in ``vm.cfg`` are set to
  the node's ``mac.mac`` before power-on.
* **use figures** (``rvitals``) — ``xentop -b -i 2 -d <interval>`` on the dom0 of the server
  the VM runs on (its ``ip`` from ServerPoolService): CPU % over the interval, memory,
  disk and network rates from the difference of the two iterations' counters (the format
  of xen-project/xen ``tools/xentop/xentop.c``, read by :func:`nodemgr.plugins.xen.parse.
  parse_xentop` and turned into figures by ``parse.top_metrics``: an OVM 2.x server is a
  Xen dom0).
* **inventory** (``rinv``, ``rscan``) — disks and NICs from the VM's ``vm.cfg`` (disk sizes
  from SFTP ``stat``), the address of the boot parameters (``Bootparams.img``), and the
  manager's ``imgIp``.

The manager gives the rest: the boot device (``VirtualMachine.bootDevice``: ``PXE``,
``HDD``, ``CDROM``, changed with ``configVM``) and the VNC display (``vncPort`` of a
running VM on its server, ``getVncPassword``). There is no serial console (``rcons``).

Endpoint: ``vm.mgr``'s connection string, ``http(s)://manager:8888/OVSWS`` or
``ovm://manager``; HTTP Basic from the passwd table (key ``ovm``). Options (``hostconn.options``
of the manager node): ``pool`` (server pool; default ``vm.cluster``, else the first pool),
``ca_file`` / ``verify=no`` (HTTPS), ``dom0_host`` (default the master's ``ip`` from
ServerPoolService), ``dom0_port`` (22), ``dom0_user`` (root), ``key``, ``known_hosts``,
``ovs_root`` (where the master's ``/OVS`` is, default ``/OVS``), ``templatedir`` (local
directory of ``<template>.tgz`` bundles, default ``/install/ovm/templates``).

Results carry :class:`~nodemgr.plugins.base.Facts` (the manager's MACs and UUID after
``mkvm``, the server after ``rmigrate``, the power word, the boot device); the write-back
module turns them into columns.

What it must never do: read tables, mount anything in dom0, trust an unknown host key,
print SOAP XML or a secret in a message, or leave a half-imported template registered.
"""

from __future__ import annotations

import os
import posixpath
import re
import shlex
import sys
from collections.abc import Iterator, Sequence

from nodemgr import bootparams as bp
from nodemgr.plugins.base import (
    Address,
    Console,
    DiskInfo,
    DriverError,
    Endpoint,
    Facts,
    HypervisorDriver,
    InvalidState,
    Inventory,
    NicInfo,
    NodeResult,
    NotFound,
    PermanentError,
    Unreachable,
    Unsupported,
    VmChange,
    VmInfo,
    VmSpec,
    retry,
)
from nodemgr.plugins.ovm import NO_SERIAL, TRAITS
from nodemgr.plugins.ovm.soap import Manager, base_url
from nodemgr.plugins.xen import parse as xenparse

DEFAULT_TEMPLATEDIR = "/install/ovm/templates"
#: VmStatus.status -> xCAT power word.
STATE_WORDS = {"running": "on", "powered off": "off", "poweredoff": "off",
               "suspended": "suspended", "paused": "paused", "error": "error",
               "unknown": "unknown"}
MAC_RE = re.compile(r"mac=([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})")
#: rsetboot device -> ``BootDevice.bootDevice`` (the 2.2 constants CDROM/HDD/PXE).
BOOT_DEVICES = {"net": "PXE", "hd": "HDD", "cd": "CDROM"}
#: ``vm.bootorder`` word -> rsetboot device (for ``default``).
ORDER_DEVICES = {"network": "net", "net": "net", "hd": "hd", "cdrom": "cd", "cd": "cd"}


def state_word(vm: dict) -> str:
    """xCAT power word of a ``VirtualMachine`` dict (``on``, ``off``, ``suspended`` ...)."""
    status = ((vm or {}).get("status") or {}).get("status") or "Unknown"
    return STATE_WORDS.get(status.lower(), status.lower())


def match_domain(rows: Sequence[xenparse.TopRow], name: str) -> xenparse.TopRow | None:
    """The ``xentop`` row of domain *name*: the row of that name, else the one row whose
    name is *name* cut to 10 characters (xentop without ``-f`` cuts names there).

    Raises:
        PermanentError: several rows fit the cut name.
    """
    exact = [r for r in rows if r.name == name]
    if exact:
        return exact[0]
    cut = [r for r in rows if len(r.name) == 10 and name[:10] == r.name]
    if len(cut) > 1:
        raise PermanentError(f"xentop cannot tell {name} from other domains starting with "
                             f"{name[:10]}")
    return cut[0] if cut else None


class OvmDriver(HypervisorDriver):
    """Oracle VM Manager 2.x + dom0 over SSH. See the module docstring for options."""

    name = "ovm"
    traits = TRAITS
    #: pauses (s) before retrying a manager call answered "busy" (:class:`Transient`)
    retry_schedule: tuple[float, ...] = (0.5, 1.0, 2.0)

    def __init__(self, endpoint: Endpoint, timeout: float = 60.0) -> None:
        super().__init__(endpoint, timeout)
        verify: bool | str = True
        if endpoint.option("ca_file"):
            verify = endpoint.option("ca_file")
        elif (endpoint.option("verify") or "").lower() in ("no", "0", "false"):
            verify = False
        self.mgr = Manager(base_url(endpoint.uri), endpoint.username, endpoint.password,
                           verify=verify, timeout=timeout)
        self.ovs_root = (endpoint.option("ovs_root") or "/OVS").rstrip("/") or "/"
        self.templatedir = endpoint.option("templatedir") or DEFAULT_TEMPLATEDIR
        self._pools: dict[str, dict] = {}
        self._conn = None

    # connection -------------------------------------------------------------------------------
    def connect(self) -> None:
        """Load ServerPoolService (fetching its WSDL) and list the pools: checks the manager
        is reachable and the credentials work."""
        for p in self.mgr.pools():
            self._pools[p["serverPoolName"]] = p

    def close(self) -> None:
        """Keep pooled connections for reuse (closed at process exit)."""
        self._conn = None

    def translate(self, exc: Exception) -> DriverError | None:
        """A dom0 connection that broke mid-transfer (paramiko's SSHException, EOFError,
        a socket error): Unreachable. Manager errors are typed by :mod:`.soap` already."""
        paramiko = sys.modules.get("paramiko")
        if (paramiko is not None and isinstance(exc, paramiko.SSHException)) or \
                isinstance(exc, (EOFError, ConnectionError, TimeoutError)):
            return Unreachable(f"dom0 connection of OVM Manager {self.mgr.where} lost: "
                               f"{type(exc).__name__}")
        return None

    def _pool(self, spec: VmSpec | None = None) -> dict:
        name = self.endpoint.option("pool") or (spec.extra.get("cluster") if spec else None)
        if not self._pools:
            self.connect()
        if name:
            if name not in self._pools:
                self._pools[name] = self.mgr.pool(name)
            return self._pools[name]
        if not self._pools:
            raise NotFound(f"OVM Manager {self.mgr.where} has no server pool")
        return next(iter(self._pools.values()))

    def _ssh(self, host: str):
        from nodemgr import sshpool

        return sshpool.connection(
            host, port=int(self.endpoint.option("dom0_port") or 22),
            user=self.endpoint.option("dom0_user") or "root",
            key_filename=self.endpoint.option("key"),
            known_hosts=self.endpoint.option("known_hosts"), timeout=min(self.timeout, 30.0))

    def _dom0(self, pool: dict):
        """The SSH connection to the pool master's dom0 (option ``dom0_host``, else the
        master's ``ip``)."""
        if self._conn is not None and self._conn.alive:
            return self._conn
        host = self.endpoint.option("dom0_host")
        if not host:
            master = self.mgr.master(pool) or {}
            host = master.get("ip") or master.get("serverName")
            if not host:
                raise PermanentError(f"the master of pool {pool['serverPoolName']} has no "
                                     "address (set option dom0_host)")
        self._conn = self._ssh(host)
        return self._conn

    def _server_dom0(self, pool: dict, server: dict):
        """The SSH connection to *server*'s dom0 (the master's is :meth:`_dom0`)."""
        master = self.mgr.master(pool) or {}
        if server.get("serverName") == master.get("serverName"):
            return self._dom0(pool)
        host = server.get("ip") or server.get("serverName")
        if not host:
            raise PermanentError(f"server {server.get('serverName')} has no address")
        return self._ssh(host)

    def _sh(self, pool: dict, argv: Sequence[str] | str, what: str) -> str:
        r = self._dom0(pool).run(argv, timeout=self.timeout)
        if r.rc != 0:
            text = (r.err or r.out).strip().splitlines()
            raise PermanentError(f"{what} failed on dom0: {text[-1] if text else f'rc {r.rc}'}")
        return r.out

    def _path(self, ovs_path: str) -> str:
        """Manager path (``/OVS/running_pool/vm1``) -> path on dom0 (under ``ovs_root``)."""
        if ovs_path == "/OVS" or ovs_path.startswith("/OVS/"):
            return self.ovs_root + ovs_path[4:]
        return ovs_path

    def _vm(self, spec: VmSpec, pool: dict | None = None) -> dict:
        pool = pool or self._pool(spec)
        vm = self.mgr.vm(pool["serverPoolName"], spec.node)
        if not vm:
            raise NotFound(f"Cannot find vm {spec.node} in server pool "
                           f"{pool['serverPoolName']}")
        return vm

    def _action(self, action: str, vm: dict) -> dict | None:
        """Manager power *action* on *vm*, retried while the manager says it is busy."""
        return retry(lambda: self.mgr.vm_action(action, vm), schedule=self.retry_schedule)

    # dom0 steps -----------------------------------------------------------------------------------
    def _read(self, pool: dict, path: str) -> bytes:
        data = self._dom0(pool).get(path)
        if data is None:
            raise PermanentError(f"cannot read {path} on dom0: no such file")
        return data

    def _vm_dir(self, vm: dict) -> str:
        return self._path(vm.get("location") or f"/OVS/running_pool/{vm['imgName']}")

    def _cfg(self, pool: dict, vm: dict) -> dict:
        """The VM's ``vm.cfg`` as a dict (:func:`nodemgr.plugins.xen.parse.parse_config`)."""
        path = posixpath.join(self._vm_dir(vm), "vm.cfg")
        try:
            return xenparse.parse_config(self._read(pool, path).decode())
        except xenparse.ParseError as exc:
            raise PermanentError(f"{vm['imgName']}/vm.cfg: {exc}") from None

    # what vm.cfg and the dom0 say about a VM ------------------------------------------------
    def _disks(self, pool: dict, cfg: dict) -> list[DiskInfo]:
        """The ``disk = [...]`` entries of *cfg* in order, with image sizes (SFTP ``stat``
        on the master's dom0; None for a block device or a missing file)."""
        disks = []
        for spec in cfg.get("disk") or []:
            try:
                d = xenparse.parse_disk(spec)
            except xenparse.ParseError:
                continue
            fmt = d.format or ("raw" if d.backend in ("file", "tap") else None)
            disks.append(DiskInfo(dev=d.vdev or d.target, path=d.target or None, format=fmt,
                                  device="cdrom" if d.cdrom else "disk"))
        files = [d for d in disks if d.path and not d.path.startswith("/dev/")]
        if files:
            conn = self._dom0(pool)
            try:
                with conn._client.open_sftp() as sftp:
                    for d in files:
                        try:
                            d.size_mib = (sftp.stat(self._path(d.path)).st_size or 0) >> 20
                        except OSError:
                            d.size_mib = None
            except OSError as exc:
                raise PermanentError(f"cannot stat the disk images on dom0: "
                                     f"{exc.strerror or exc}") from None
        return disks

    @staticmethod
    def _nics(cfg: dict) -> list[NicInfo]:
        """The ``vif = [...]`` entries of *cfg* with a MAC, in order."""
        out = []
        for spec in cfg.get("vif") or []:
            v = xenparse.parse_vif(spec)
            if v.get("mac"):
                out.append(NicInfo(v["mac"].lower(), v.get("bridge") or None,
                                   v.get("type") or v.get("model") or None))
        return out

    def _details(self, pool: dict, vm: dict) -> tuple[list[DiskInfo], list[NicInfo]]:
        cfg = self._cfg(pool, vm)
        return self._disks(pool, cfg), self._nics(cfg)

    def _set_macs(self, pool: dict, vm: dict, macs: list[str]) -> list[str]:
        """Put *macs* (in order) into ``vm.cfg``'s ``vif`` entries; returns the MACs now
        in the file. Only rewrites the file when something changes."""
        cfg = posixpath.join(self._vm_dir(vm), "vm.cfg")
        text = self._read(pool, cfg).decode()
        found = MAC_RE.findall(text)
        macs = [m.lower() for m in macs if m]
        if not macs or [m.lower() for m in found[:len(macs)]] == macs:
            return [m.lower() for m in found]
        it = iter(macs)

        def swap(m):
            return f"mac={next(it, m.group(1))}"

        new = MAC_RE.sub(swap, text)
        self._dom0(pool).put(cfg, new.encode(), 0o644)
        return [m.lower() for m in MAC_RE.findall(new)]

    def _bootparams_img(self, pool: dict, vm: dict) -> str:
        d = self._vm_dir(vm)
        text = self._read(pool, posixpath.join(d, "vm.cfg")).decode()
        m = re.search(r"file:([^,'\"]*Bootparams\.img)", text, re.IGNORECASE)
        return self._path(m.group(1)) if m else posixpath.join(d, "Bootparams.img")

    def write_bootparams(self, pool: dict, vm: dict, params: dict[str, str]) -> None:
        """Write ``bootparams.conf`` into the VM's ``Bootparams.img`` with ``mcopy -o``
        (never mounted). Raises PermanentError when the image is missing or not FAT."""
        img = self._bootparams_img(pool, vm)
        conn = self._dom0(pool)
        tmp = posixpath.join(posixpath.dirname(img), ".bootparams.conf.nodemgr")
        conn.put(tmp, bp.render_conf(params), 0o600)
        try:
            r = conn.run(f"test -f {shlex.quote(img)} || exit 3; MTOOLS_SKIP_CHECK=1 mcopy -o "
                         f"-i {shlex.quote(img)} {shlex.quote(tmp)} ::bootparams.conf",
                         timeout=self.timeout)
        finally:
            conn.run(["rm", "-f", tmp], timeout=self.timeout)
        if r.rc == 3:
            raise PermanentError(f"{vm['imgName']} has no Bootparams.img (its template lacks "
                                 "the boot-parameter disk)")
        if r.rc != 0:
            lines = (r.err or r.out).strip().splitlines()
            raise PermanentError(f"mcopy into {posixpath.basename(img)} failed: "
                                 f"{lines[-1] if lines else r.rc}")

    def read_bootparams(self, pool: dict, vm: dict) -> dict[str, str]:
        """``bootparams.conf`` read back from the VM's ``Bootparams.img`` with ``mtype``
        ({} when there is none)."""
        img = self._bootparams_img(pool, vm)
        r = self._dom0(pool).run(f"MTOOLS_SKIP_CHECK=1 mtype -i {shlex.quote(img)} "
                                 "::bootparams.conf", timeout=self.timeout)
        return bp.parse_conf(r.out) if r.rc == 0 else {}

    def _prepare_boot(self, spec: VmSpec, pool: dict, vm: dict) -> None:
        """Before power-on: MACs into vm.cfg, boot parameters into Bootparams.img."""
        macs = [n.mac for n in spec.nics if n.mac]
        if macs:
            self._set_macs(pool, vm, macs)
        if spec.bootparams:
            self.write_bootparams(pool, vm, spec.bootparams)

    # templates ------------------------------------------------------------------------------------
    def _archive(self, master: str) -> tuple[str, str]:
        """(template name, local .tgz path) for ``vm.master`` (a name or a path)."""
        if master.endswith((".tgz", ".tar.gz")):
            path = master
        else:
            path = os.path.join(self.templatedir, f"{master}.tgz")
        name = re.sub(r"\.(tgz|tar\.gz)$", "", os.path.basename(path))
        return name, path

    def import_template(self, pool: dict, archive: str, name: str) -> dict:
        """Import template *name* from local *archive* (``.tgz`` holding ``<name>/vm.cfg``
        and its images, or those files at the top): SFTP to the master's seed pool, extract
        there, register and approve through the web services.

        Returns the approved ``VirtualMachineTemplate``. Raises NotFound (no archive),
        PermanentError (corrupt archive, dom0 or manager failure) — in every failure case
        the staging files are removed and nothing stays registered.
        """
        if not os.path.isfile(archive):
            raise NotFound(f"template {name} is not in server pool {pool['serverPoolName']} "
                           f"and {archive} does not exist")
        if not re.match(r"^[A-Za-z0-9_.-]+$", name):
            raise PermanentError(f"invalid template name '{name}'")
        seed = self._path("/OVS/seed_pool")
        final = posixpath.join(seed, name)
        stage = posixpath.join(seed, f".{name}.nodemgr-import")
        tgz = stage + ".tgz"
        conn = self._dom0(pool)
        q = shlex.quote
        try:
            if conn.run(["test", "-e", final], timeout=self.timeout).rc == 0:
                raise PermanentError(f"{final} already exists on dom0 but is not a "
                                     "registered template; remove it first")
            try:
                with conn._client.open_sftp() as sftp:
                    sftp.put(archive, tgz)
            except OSError as exc:
                raise PermanentError(f"cannot copy {os.path.basename(archive)} to dom0: "
                                     f"{exc.strerror or exc}") from None
            self._sh(pool, f"rm -rf {q(stage)} && mkdir {q(stage)} && "
                     f"tar -xzf {q(tgz)} -C {q(stage)} --no-same-owner",
                     f"extracting {os.path.basename(archive)}")
            # the bundle holds <name>/vm.cfg (as Oracle's templates) or vm.cfg at the top
            self._sh(pool, f"cd {q(stage)} && if [ -f {q(name)}/vm.cfg ]; then "
                     f"mv {q(name)} {q(final)}; elif [ -f vm.cfg ]; then "
                     f"mkdir {q(final)} && mv ./* {q(final)}/; else "
                     "echo 'archive has no vm.cfg' >&2; exit 1; fi",
                     f"checking {os.path.basename(archive)}")
        except BaseException:
            conn.run(["rm", "-rf", stage, tgz], timeout=self.timeout)
            raise
        conn.run(["rm", "-rf", stage, tgz], timeout=self.timeout)
        template = None
        try:
            template = self.mgr.import_template(pool["serverPoolName"], name,
                                                f"imported by nodemgr from {archive}")
            return self.mgr.approve_template(template)
        except BaseException:
            if template is not None:
                try:
                    self.mgr.delete_template(template)
                except DriverError:
                    pass
            conn.run(["rm", "-rf", final], timeout=self.timeout)
            raise

    def _template(self, spec: VmSpec, pool: dict, master: str) -> str:
        name, archive = self._archive(master)
        t = self.mgr.template(pool["serverPoolName"], name)
        if t is None:
            t = self.import_template(pool, archive, name)
        elif (t.get("status") or "").lower() != "approved":
            t = self.mgr.approve_template(t)
        return name

    # VM operations --------------------------------------------------------------------------------
    def create(self, specs: Sequence[VmSpec], *, force: bool = False) -> Iterator[NodeResult]:
        """Create each VM from its template (``vm.master``; imported from
        ``<templatedir>/<master>.tgz`` when not yet in the pool), then set its MACs and boot
        parameters on dom0. A dom0 failure deletes the new VM again. Facts: the manager's
        UUID, and its MACs when the node had none (the manager's choice is kept)."""
        return self.each_node(specs, self._create, force)

    def _create(self, spec: VmSpec, force: bool) -> NodeResult:
        if not spec.master:
            raise PermanentError("vm.master (the OVM template) is required for ovm")
        pool = self._pool(spec)
        if self.mgr.vm(pool["serverPoolName"], spec.node):
            if not force:
                raise PermanentError(f"VM {spec.node} already exists in server pool "
                                     f"{pool['serverPoolName']} (use -f to replace it)")
            self._remove(spec, force=True, purge=True)
        template = self._template(spec, pool, spec.master)
        vm = self.mgr.create_from_template(pool["serverPoolName"], template, spec.node,
                                           spec.memory_mib, spec.cpus, spec.extra.get("host"))
        try:
            macs = self._set_macs(pool, vm, [n.mac for n in spec.nics if n.mac])
            if spec.bootparams:
                self.write_bootparams(pool, vm, spec.bootparams)
        except BaseException:
            try:
                self.mgr.delete_vm(vm)
            except DriverError:
                pass
            raise
        facts = Facts(uuid=vm.get("uuid") or None)
        if macs and not any(n.mac for n in spec.nics):
            facts.macs = macs
        return NodeResult(spec.node, facts=facts)

    def remove(self, specs: Sequence[VmSpec], *, force: bool = False,
               purge: bool = False) -> Iterator[NodeResult]:
        """Delete each VM through the manager (which removes its running_pool directory);
        a running VM needs *force* (powered off first)."""
        return self.each_node(specs, self._remove, force, purge)

    def _remove(self, spec: VmSpec, force: bool, purge: bool) -> NodeResult:
        vm = self._vm(spec)
        if state_word(vm) != "off":
            if not force:
                raise InvalidState(f"VM {spec.node} is {state_word(vm)}; power it off or use -f")
            vm = self._action("powerOff", vm) or vm
        self.mgr.delete_vm(vm)
        return NodeResult(spec.node, facts=Facts(power="off"))

    def power(self, specs: Sequence[VmSpec], action: str) -> Iterator[NodeResult]:
        """xCAT power actions; ``on``/``boot`` write MACs and boot parameters first.
        Illegal transitions come back from the manager as faults (InvalidState); a busy
        manager is retried (:attr:`retry_schedule`). Facts: ``power`` = the word after."""
        return self.each_node(specs, self._power, action)

    def _power(self, spec: VmSpec, action: str) -> NodeResult:
        pool = self._pool(spec)
        vm = self._vm(spec, pool)
        state = state_word(vm)
        msg = state
        if action == "stat":
            pass
        elif action == "on":
            if state != "on":
                self._prepare_boot(spec, pool, vm)
                msg = state_word(self._action("powerOn", vm))
        elif action == "off":
            if state != "off":
                msg = state_word(self._action("powerOff", vm))
        elif action == "softoff":
            if state != "off":
                msg = state_word(self._action("shutdown", vm))
        elif action == "reset":
            self._action("reboot", vm)
            msg = "reset"
        elif action == "boot":
            if state == "on":
                self._action("reboot", vm)
                msg = "on reset"
            else:
                self._prepare_boot(spec, pool, vm)
                msg = f"{state} {state_word(self._action('powerOn', vm))}"
        elif action == "suspend":
            msg = state_word(self._action("suspend", vm))
        elif action == "resume":
            msg = state_word(self._action("resume", vm))
        else:
            raise PermanentError(f"Unsupported power directive '{action}'")
        word = "on" if msg in ("reset", "on reset") else msg.split()[-1]
        return NodeResult(spec.node, message=msg, data={"state": msg.split()[-1]},
                          facts=Facts(power=word))

    def _scoped(self, pool: dict) -> list[dict]:
        """The pool's VMs; with a scope (a server reached through its manager), those
        running on that server."""
        vms = self.mgr.vms(pool)
        if not self.endpoint.scope:
            return vms
        return [v for v in vms if state_word(v) != "off" and
                (self.mgr.vm_server(v) or {}).get("serverName") == self.endpoint.scope]

    def list_vms(self) -> list[VmInfo]:
        """Every VM of the pool (option ``pool``, else the first), or with a scope those
        running on that server: name, state, UUID, memory and CPUs as the manager has
        them."""
        return [VmInfo(v["imgName"], state_word(v), v.get("uuid"), v.get("memory"),
                       v.get("cpuNumber"))
                for v in self._scoped(self._pool())]

    def host_power(self) -> str:
        """The scoped server's status in the manager (``Active`` → on, else the status in
        lower case); the manager itself: on."""
        if not self.endpoint.scope:
            return "on"
        pool = self._pool()
        st = (self.mgr.server(pool["serverPoolName"], self.endpoint.scope).get("status")
              or "unknown")
        return "on" if st.lower() == "active" else st.lower()

    def scan(self) -> list[VmInfo]:
        """:meth:`list_vms` plus each VM's MACs and disks (its ``vm.cfg`` on the master's
        dom0) and, for a running VM, the server it runs on."""
        pool = self._pool()
        out = []
        for v in self._scoped(pool):
            disks, nics = self._details(pool, v)
            server = self.mgr.vm_server(v) if state_word(v) != "off" else None
            out.append(VmInfo(v["imgName"], state_word(v), v.get("uuid"), v.get("memory"),
                              v.get("cpuNumber"), [n.mac for n in nics], disks,
                              (server or {}).get("serverName")))
        return out

    def describe(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        """Status, memory, CPUs, server, location, template, MACs, boot device."""
        def one(spec):
            pool = self._pool(spec)
            vm = self._vm(spec, pool)
            server = self.mgr.vm_server(vm) if state_word(vm) != "off" else None
            lines = [f"Status: {state_word(vm)}", f"Memory: {vm.get('memory')} MiB",
                     f"CPUs: {vm.get('cpuNumber')}",
                     f"Server: {(server or {}).get('serverName') or '-'}",
                     f"Pool: {pool['serverPoolName']}", f"Location: {vm.get('location')}",
                     f"UUID: {vm.get('uuid')}",
                     f"Boot device: {(vm.get('bootDevice') or {}).get('bootDevice') or '-'}"]
            cfg = self._read(pool, posixpath.join(self._vm_dir(vm), "vm.cfg")).decode()
            lines += [f"MAC {i}: {m.lower()}" for i, m in enumerate(MAC_RE.findall(cfg))]
            return NodeResult(spec.node, message="\n".join(lines),
                              data={"state": state_word(vm), "memory_mib": vm.get("memory"),
                                    "cpus": vm.get("cpuNumber")})
        return self.each_node(specs, one)

    def stats(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        """VM metrics: ``data`` has ``cpu_util_pct``, ``memory_mib``, ``cpu_time_s``."""
        def one(spec):
            m = self.mgr.vm_metrics(self._vm(spec))
            data = {"cpu_util_pct": m.get("cpuUtil"), "memory_mib": m.get("memoryUsed"),
                    "cpu_time_s": m.get("cpuTime")}
            return NodeResult(spec.node, message=" ".join(f"{k}={v}" for k, v in data.items()),
                              data=data)
        return self.each_node(specs, one)

    def _addresses(self, pool: dict, vm: dict, macs: Sequence[str]) -> list[Address]:
        """The address of the boot parameters (read back from ``Bootparams.img``; source
        ``bootparams``, the first NIC's MAC) and the manager's ``imgIp`` (``engine``)."""
        first = macs[0] if macs else None
        out = [Address(ip, "bootparams", first)
               for ip in bp.addresses(self.read_bootparams(pool, vm))]
        if vm.get("imgIp") and vm["imgIp"] not in [a.ip for a in out]:
            out.append(Address(vm["imgIp"], "engine"))
        return out

    def addresses(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        """The address given in the boot parameters (read back from ``Bootparams.img``),
        plus the manager's ``imgIp`` when it knows one: ``data["addresses"]`` (strings),
        ``facts.addresses``."""
        def one(spec):
            pool = self._pool(spec)
            vm = self._vm(spec, pool)
            found = self._addresses(pool, vm, [])
            addrs = [a.ip for a in found]
            return NodeResult(spec.node, message=",".join(addrs), data={"addresses": addrs},
                              facts=Facts(addresses=found))
        return self.each_node(specs, one)

    def inventory(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        """UUID, CPUs and memory (manager), disks with sizes and NICs with MACs
        (``vm.cfg`` on dom0), addresses (boot parameters, the manager's ``imgIp``):
        ``facts.inventory``."""
        def one(spec):
            pool = self._pool(spec)
            vm = self._vm(spec, pool)
            disks, nics = self._details(pool, vm)
            inv = Inventory(uuid=vm.get("uuid"), cpus=vm.get("cpuNumber"),
                            memory_mib=vm.get("memory"), disks=disks, nics=nics,
                            addresses=self._addresses(pool, vm, [n.mac for n in nics]))
            return NodeResult(spec.node, facts=Facts(inventory=inv))
        return self.each_node(specs, one)

    def vitals(self, specs: Sequence[VmSpec], interval_s: float = 1.0) -> Iterator[NodeResult]:
        """Use of each running VM over *interval_s* seconds (whole seconds, at least 1:
        xentop's delay), from ``xentop -b -i 2 -d <s>`` on the dom0 of its server: one run
        per server for all its VMs, the servers sampled in parallel. ``facts.metrics``;
        a VM that is not running is an InvalidState result."""
        delay = max(1, round(interval_s))
        where: dict[str, tuple[object, str, str]] = {}  # node -> (conn, host, domain name)

        def locate(spec):
            pool = self._pool(spec)
            vm = self._vm(spec, pool)
            if state_word(vm) not in ("on", "paused"):
                raise InvalidState(f"VM {spec.node} is {state_word(vm)}: no use figures")
            server = self.mgr.vm_server(vm) or {}
            cfg = self._cfg(pool, vm)
            conn = self._server_dom0(pool, server)
            where[spec.node] = (conn, server.get("serverName") or "?",
                                str(cfg.get("name") or vm["imgName"]))
            return NodeResult(spec.node)

        located = {r.node: r for r in self.each_node(specs, locate)}
        tops = self._xentops({c for c, _, _ in where.values()}, delay)
        for spec in specs:
            r = located[spec.node]
            if not r.ok:
                yield r
                continue
            conn, server, dom = where[spec.node]
            try:
                iterations = tops[conn]
                if isinstance(iterations, DriverError):
                    raise iterations
                rows = [match_domain(it, dom) for it in iterations[-2:]]
                if len(rows) < 2 or None in rows:
                    raise NotFound(f"no Xen domain {dom} in xentop on server {server}")
                m = xenparse.top_metrics(rows[0], rows[1], float(delay))
            except DriverError as exc:
                yield self.failed(spec.node, exc)
                continue
            yield NodeResult(spec.node, facts=Facts(metrics=m),
                             data={"server": server, "domain": dom})

    def _xentops(self, conns, delay: int) -> dict:
        """conn -> ``parse_xentop`` iterations of ``xentop -b -i 2 -d <delay>`` there (or
        the DriverError it failed with); the dom0s are sampled in parallel."""
        from concurrent.futures import ThreadPoolExecutor

        def one(conn):
            try:
                r = conn.run(["xentop", "-b", "-i", "2", "-d", str(delay)],
                             timeout=self.timeout + delay)
                if r.rc != 0:
                    lines = (r.err or r.out).strip().splitlines()
                    raise PermanentError(f"xentop failed on {conn.where}: "
                                         f"{lines[-1] if lines else f'rc {r.rc}'}")
                return xenparse.parse_xentop(r.out)
            except xenparse.ParseError as exc:
                return PermanentError(f"xentop on {conn.where}: {exc}")
            except DriverError as exc:
                return exc

        conns = list(conns)
        if len(conns) <= 1:
            return {c: one(c) for c in conns}
        with ThreadPoolExecutor(max_workers=min(len(conns), 8)) as pool:
            return dict(zip(conns, pool.map(one, conns), strict=True))

    def set_boot(self, specs: Sequence[VmSpec], device: str) -> Iterator[NodeResult]:
        """Make *device* (``net``, ``hd``, ``cd``; ``default`` = the first of
        ``vm.bootorder``) the VM's boot device in the manager (``bootDevice`` ``PXE``,
        ``HDD``, ``CDROM`` through ``configVM``; the manager writes it into ``vm.cfg``).
        The manager changes a VM's configuration only while it is powered off
        (InvalidState otherwise). ``facts.bootdev`` = *device*."""
        return self.each_node(specs, self._set_boot, device)

    def _set_boot(self, spec: VmSpec, device: str) -> NodeResult:
        dev = device
        if device == "default":
            first = spec.bootorder[0] if spec.bootorder else "hd"
            dev = ORDER_DEVICES.get(first, first)
        if dev not in BOOT_DEVICES:
            raise Unsupported(f"boot device '{dev}' is not one of net, hd, cd, default")
        want = BOOT_DEVICES[dev]
        vm = self._vm(spec)
        if (vm.get("bootDevice") or {}).get("bootDevice") != want:
            vm = self.mgr.set_boot_device(vm, want) or vm
        return NodeResult(spec.node, message=device, facts=Facts(bootdev=device),
                          data={"bootdev": device, "boot_device": want})

    def console(self, spec: VmSpec, *, open_stream: bool = False,
                display: bool = False) -> Console:
        """The VM's VNC display: the address of the server it runs on, the ``vncPort`` the
        manager reports and the VNC password (``getVncPassword``). Raises Unsupported with
        *open_stream* (no serial console), InvalidState when the VM is not running (the
        display exists only then), NotFound (no such VM, or no VNC port)."""
        if open_stream:
            raise Unsupported(NO_SERIAL)
        pool = self._pool(spec)
        vm = self._vm(spec, pool)
        if state_word(vm) not in ("on", "paused"):
            raise InvalidState(f"VM {spec.node} is {state_word(vm)}: its VNC display exists "
                               "only while it runs")
        port = vm.get("vncPort")
        if not port:
            raise NotFound(f"OVM Manager {self.mgr.where} reports no VNC port for {spec.node}")
        server = self.mgr.vm_server(vm) or {}
        host = server.get("ip") or server.get("serverName")
        password = self.mgr.vnc_password(vm) or vm.get("vncPassword") or None
        return Console("vnc", host=host, port=int(port), password=password,
                       command=f"vncviewer {host}::{int(port)}")

    def _free(self, pool: dict) -> dict[str, int]:
        """Server name -> free memory (``getVirtualServerMetrics``), MiB."""
        ids = [s["serverId"] for s in self.mgr.servers(pool)]
        return {m.get("virtualServerName"): m.get("freeMemory") or 0
                for m in self.mgr.server_metrics(ids)}

    def host_free_memory_mib(self) -> int:
        """Free memory of the scoped server, else the most of any server of the pool
        (``getVirtualServerMetrics``), MiB."""
        free = self._free(self._pool())
        if self.endpoint.scope:
            return free.get(self.endpoint.scope, 0)
        return max(free.values(), default=0)

    def migrate(self, specs: Sequence[VmSpec], target: Endpoint | None) -> Iterator[NodeResult]:
        """Live-migrate to server ``target.host`` of the pool, or with no *target* to the
        other server with the most free memory that has room for the VM; checked
        afterwards. ``facts.host`` = the server."""
        def one(spec):
            pool = self._pool(spec)
            vm = self._vm(spec, pool)
            if target is not None:
                name = target.host
            else:
                here = (self.mgr.vm_server(vm) or {}).get("serverName")
                room = {s: f for s, f in self._free(pool).items()
                        if s != here and f >= (vm.get("memory") or 0)}
                if not room:
                    raise PermanentError(f"no other server of pool {pool['serverPoolName']} "
                                         f"has room for {vm.get('memory')} MiB")
                name = max(room, key=room.get)
            server = self.mgr.server(pool["serverPoolName"], name)
            retry(lambda: self.mgr.live_migrate(vm, server), schedule=self.retry_schedule)
            now = self.mgr.vm_server(self._vm(spec, pool)) or {}
            if now.get("serverName") != name:
                raise PermanentError(f"{spec.node} is not on {name} after migration")
            return NodeResult(spec.node, message=f"migrated to {name}",
                              facts=Facts(host=name))
        return self.each_node(specs, one)

    def make_master(self, spec: VmSpec, master: str, *, detached: bool = False,
                    force: bool = False) -> NodeResult:
        """``clonevm -t``: save the powered-off VM as template *master*."""
        def one(s):
            self.mgr.save_as_template(self._vm(s), master)
            return NodeResult(s.node, message=f"template {master} created")
        return next(iter(self.each_node([spec], one)))

    def clone_from_master(self, specs: Sequence[VmSpec], master: str,
                          master_definition: str | None, *,
                          detached: bool = False) -> Iterator[NodeResult]:
        """``clonevm -b``: create each VM from template *master* (always a full copy)."""
        for spec in specs:
            spec.master = master
        return self.create(specs)

    def change(self, specs: Sequence[VmSpec], change: VmChange) -> Iterator[NodeResult]:
        """``--cpus``/``--mem``/push (VM off), ``-a`` (new disk images), ``--cdrom`` (an ISO
        name in ``/OVS/iso_pool``), ``--eject``. Removing or resizing disks is refused.
        Facts: the CPUs and memory now configured."""
        def one(spec):
            if change.remove_disks or change.detach_disks or change.resize:
                raise Unsupported("removing, detaching or resizing disks is not "
                                  "supported by the ovm driver")
            vm = self._vm(spec)
            done = []
            facts = Facts()
            mem = change.memory_mib or (spec.memory_mib if change.push else None)
            cpus = change.cpus or (spec.cpus if change.push else None)
            if mem or cpus:
                vm = dict(vm, memory=mem or vm.get("memory"),
                          cpuNumber=cpus or vm.get("cpuNumber"))
                vm = self.mgr.config_vm(vm) or vm
                facts.cpus, facts.memory_mib = vm.get("cpuNumber"), vm.get("memory")
                done.append("configured")
            for i, size in enumerate(change.add_disks_mib):
                self.mgr.add_disk(vm, f"{spec.node}-disk{i + 1}", size)
                done.append(f"disk of {size} MiB added")
            if change.cdrom:
                self.mgr.attach_cd(vm, os.path.basename(change.cdrom))
                done.append("cdrom inserted")
            if change.eject:
                self.mgr.detach_cd(vm)
                done.append("cdrom ejected")
            return NodeResult(spec.node, message="change vm completed." if done else "",
                              facts=facts)
        return self.each_node(specs, one)
