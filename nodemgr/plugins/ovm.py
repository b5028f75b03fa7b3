"""Oracle VM 2.x driver: OVM Manager web services, plus SSH to the server pool master's dom0.

The plan of the seed one-pager (004, §4.1.2): the VM lifecycle goes through the manager's
web services (``nodemgr.plugins.ovm_soap``, the only module that knows SOAP); two things the
web services do badly go over SSH to the pool master's dom0 (``nodemgr.sshpool``, paramiko,
host keys checked against the administrator's known_hosts):

* **template import** — the ``<name>.tgz`` is copied over SFTP into ``/OVS/seed_pool``,
  extracted there into a staging directory, moved into place, then imported and approved
  through ResourceService. Any failure removes the staging files, and a template that was
  registered but not approved is unregistered again: nothing half-imported stays.
* **boot parameters** — ``bootparams.conf`` (``nodemgr.bootparams``) is written into the
  VM's small ``Bootparams.img`` with mtools' ``mcopy`` (no mount in dom0: the seed warns that
  mounting a disk the guest may use risks corruption), and the MACs in ``vm.cfg`` are set to
  the node's ``mac.mac`` before power-on.

Endpoint: ``vm.mgr``'s connection string, ``http(s)://manager:8888/OVSWS`` or
``ovm://manager``; HTTP Basic from the passwd table (key ``ovm``). Options (``hostconn.options``
of the manager node): ``pool`` (server pool; default ``vm.cluster``, else the first pool),
``ca_file`` / ``verify=no`` (HTTPS), ``dom0_host`` (default the master's ``ip`` from
ServerPoolService), ``dom0_port`` (22), ``dom0_user`` (root), ``key``, ``known_hosts``,
``ovs_root`` (where the master's ``/OVS`` is, default ``/OVS``), ``templatedir`` (local
directory of ``<template>.tgz`` bundles, default ``/install/ovm/templates``).

What it must never do: read tables, mount anything in dom0, trust an unknown host key,
print SOAP XML or a secret in a message, or leave a half-imported template registered.
"""

from __future__ import annotations

import os
import posixpath
import re
import shlex
from collections.abc import Iterator, Sequence

from nodemgr import bootparams as bp
from nodemgr.plugins import ovm_spec
from nodemgr.plugins.base import (
    DriverError,
    Endpoint,
    HypervisorDriver,
    InvalidState,
    NodeResult,
    NotFound,
    PermanentError,
    Traits,
    VmChange,
    VmInfo,
    VmSpec,
)
from nodemgr.plugins.ovm_soap import Manager, base_url

DEFAULT_TEMPLATEDIR = "/install/ovm/templates"
#: VmStatus.status -> xCAT power word.
STATE_WORDS = {"running": "on", "powered off": "off", "poweredoff": "off",
               "suspended": "suspended", "paused": "paused", "error": "error",
               "unknown": "unknown"}
MAC_RE = re.compile(r"mac=([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})")


def state_word(vm: dict) -> str:
    """xCAT power word of a ``VirtualMachine`` dict (``on``, ``off``, ``suspended`` ...)."""
    status = ((vm or {}).get("status") or {}).get("status") or "Unknown"
    return STATE_WORDS.get(status.lower(), status.lower())


class OvmDriver(HypervisorDriver):
    """Oracle VM Manager 2.x + dom0 over SSH. See the module docstring for options."""

    name = "ovm"
    traits = Traits(label="Oracle VM (SOAP + SSH)", endpoint_attr="vm.mgr", assigns_identity=True,
                    places_vms=True, host_types=("ovm",), ssh=True, spec=ovm_spec.family_spec)

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

    def _dom0(self, pool: dict):
        """The SSH connection to the pool master's dom0."""
        if self._conn is not None and self._conn.alive:
            return self._conn
        from nodemgr import sshpool

        host = self.endpoint.option("dom0_host")
        if not host:
            master = self.mgr.master(pool) or {}
            host = master.get("ip") or master.get("serverName")
            if not host:
                raise PermanentError(f"the master of pool {pool['serverPoolName']} has no "
                                     "address (set option dom0_host)")
        self._conn = sshpool.connection(
            host, port=int(self.endpoint.option("dom0_port") or 22),
            user=self.endpoint.option("dom0_user") or "root",
            key_filename=self.endpoint.option("key"),
            known_hosts=self.endpoint.option("known_hosts"), timeout=min(self.timeout, 30.0))
        return self._conn

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

    def _each(self, specs: Sequence[VmSpec], fn) -> Iterator[NodeResult]:
        for spec in specs:
            try:
                yield fn(spec)
            except DriverError as exc:
                yield NodeResult(spec.node, ok=False, message=str(exc))

    # dom0 steps -----------------------------------------------------------------------------------
    def _read(self, pool: dict, path: str) -> bytes:
        conn = self._dom0(pool)
        try:
            with conn._client.open_sftp() as sftp, sftp.open(path, "rb") as fh:
                return fh.read()
        except OSError as exc:
            raise PermanentError(f"cannot read {path} on dom0: {exc.strerror or exc}") from None

    def _vm_dir(self, vm: dict) -> str:
        return self._path(vm.get("location") or f"/OVS/running_pool/{vm['imgName']}")

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
        parameters on dom0. A dom0 failure deletes the new VM again. Updates ``mac.mac``
        when the node had no MAC (the manager's choice is kept)."""
        return self._each(specs, lambda s: self._create(s, force))

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
        updates = {}
        if macs and not any(n.mac for n in spec.nics):
            updates["mac.mac"] = "|".join([macs[0]] + [f"{m}!*NOIP*" for m in macs[1:]])
        return NodeResult(spec.node, updates=updates)

    def remove(self, specs: Sequence[VmSpec], *, force: bool = False,
               purge: bool = False) -> Iterator[NodeResult]:
        """Delete each VM through the manager (which removes its running_pool directory);
        a running VM needs *force* (powered off first)."""
        return self._each(specs, lambda s: self._remove(s, force, purge))

    def _remove(self, spec: VmSpec, force: bool, purge: bool) -> NodeResult:
        vm = self._vm(spec)
        if state_word(vm) != "off":
            if not force:
                raise InvalidState(f"VM {spec.node} is {state_word(vm)}; power it off or use -f")
            vm = self.mgr.vm_action("powerOff", vm) or vm
        self.mgr.delete_vm(vm)
        return NodeResult(spec.node)

    def power(self, specs: Sequence[VmSpec], action: str) -> Iterator[NodeResult]:
        """xCAT power actions; ``on``/``boot`` write MACs and boot parameters first.
        Illegal transitions come back from the manager as faults (InvalidState)."""
        return self._each(specs, lambda s: self._power(s, action))

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
                msg = state_word(self.mgr.vm_action("powerOn", vm))
        elif action == "off":
            if state != "off":
                msg = state_word(self.mgr.vm_action("powerOff", vm))
        elif action == "softoff":
            if state != "off":
                msg = state_word(self.mgr.vm_action("shutdown", vm))
        elif action == "reset":
            self.mgr.vm_action("reboot", vm)
            msg = "reset"
        elif action == "boot":
            if state == "on":
                self.mgr.vm_action("reboot", vm)
                msg = "on reset"
            else:
                self._prepare_boot(spec, pool, vm)
                msg = f"{state} {state_word(self.mgr.vm_action('powerOn', vm))}"
        elif action == "suspend":
            msg = state_word(self.mgr.vm_action("suspend", vm))
        elif action == "resume":
            msg = state_word(self.mgr.vm_action("resume", vm))
        else:
            raise PermanentError(f"Unsupported power directive '{action}'")
        return NodeResult(spec.node, message=msg, data={"state": msg.split()[-1]})

    def list_vms(self) -> list[VmInfo]:
        """Every VM of the pool (option ``pool``, else the first)."""
        return [VmInfo(v["imgName"], state_word(v), v.get("uuid"))
                for v in self.mgr.vms(self._pool())]

    def describe(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        """Status, memory, CPUs, server, location, template, MACs, boot parameters."""
        def one(spec):
            pool = self._pool(spec)
            vm = self._vm(spec, pool)
            server = self.mgr.vm_server(vm) if state_word(vm) != "off" else None
            lines = [f"Status: {state_word(vm)}", f"Memory: {vm.get('memory')} MiB",
                     f"CPUs: {vm.get('cpuNumber')}",
                     f"Server: {(server or {}).get('serverName') or '-'}",
                     f"Pool: {pool['serverPoolName']}", f"Location: {vm.get('location')}",
                     f"UUID: {vm.get('uuid')}"]
            cfg = self._read(pool, posixpath.join(self._vm_dir(vm), "vm.cfg")).decode()
            lines += [f"MAC {i}: {m.lower()}" for i, m in enumerate(MAC_RE.findall(cfg))]
            return NodeResult(spec.node, message="\n".join(lines),
                              data={"state": state_word(vm), "memory_mib": vm.get("memory"),
                                    "cpus": vm.get("cpuNumber")})
        return self._each(specs, one)

    def stats(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        """VM metrics: ``data`` has ``cpu_util_pct``, ``memory_mib``, ``cpu_time_s``."""
        def one(spec):
            m = self.mgr.vm_metrics(self._vm(spec))
            data = {"cpu_util_pct": m.get("cpuUtil"), "memory_mib": m.get("memoryUsed"),
                    "cpu_time_s": m.get("cpuTime")}
            return NodeResult(spec.node, message=" ".join(f"{k}={v}" for k, v in data.items()),
                              data=data)
        return self._each(specs, one)

    def addresses(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        """The address given in the boot parameters (read back from ``Bootparams.img``),
        plus the manager's ``imgIp`` when it knows one."""
        def one(spec):
            pool = self._pool(spec)
            vm = self._vm(spec, pool)
            addrs = bp.addresses(self.read_bootparams(pool, vm))
            if vm.get("imgIp") and vm["imgIp"] not in addrs:
                addrs.append(vm["imgIp"])
            return NodeResult(spec.node, message=",".join(addrs), data={"addresses": addrs})
        return self._each(specs, one)

    def host_free_memory_mib(self) -> int:
        """Most free memory of a server of the pool (``getVirtualServerMetrics``), MiB."""
        pool = self._pool()
        ids = [s["serverId"] for s in self.mgr.servers(pool)]
        return max((m.get("freeMemory") or 0 for m in self.mgr.server_metrics(ids)), default=0)

    def migrate(self, specs: Sequence[VmSpec], target: Endpoint) -> Iterator[NodeResult]:
        """Live-migrate to server ``target.host`` of the pool; checked afterwards."""
        def one(spec):
            pool = self._pool(spec)
            vm = self._vm(spec, pool)
            server = self.mgr.server(pool["serverPoolName"], target.host)
            self.mgr.live_migrate(vm, server)
            now = self.mgr.vm_server(self._vm(spec, pool)) or {}
            if now.get("serverName") != target.host:
                raise PermanentError(f"{spec.node} is not on {target.host} after migration")
            return NodeResult(spec.node, message=f"migrated to {target.host}",
                              updates={"vm.host": target.host})
        return self._each(specs, one)

    def make_master(self, spec: VmSpec, master: str, *, detached: bool = False,
                    force: bool = False) -> NodeResult:
        """``clonevm -t``: save the powered-off VM as template *master*."""
        try:
            self.mgr.save_as_template(self._vm(spec), master)
        except DriverError as exc:
            return NodeResult(spec.node, ok=False, message=str(exc))
        return NodeResult(spec.node, message=f"template {master} created")

    def clone_from_master(self, specs: Sequence[VmSpec], master: str,
                          master_definition: str | None, *,
                          detached: bool = False) -> Iterator[NodeResult]:
        """``clonevm -b``: create each VM from template *master* (always a full copy)."""
        for spec in specs:
            spec.master = master
        return self.create(specs)

    def change(self, specs: Sequence[VmSpec], change: VmChange) -> Iterator[NodeResult]:
        """``--cpus``/``--mem``/push (VM off), ``-a`` (new disk images), ``--cdrom`` (an ISO
        name in ``/OVS/iso_pool``), ``--eject``. Removing or resizing disks is refused."""
        def one(spec):
            if change.remove_disks or change.detach_disks or change.resize:
                raise PermanentError("removing, detaching or resizing disks is not "
                                     "supported by the ovm driver")
            vm = self._vm(spec)
            done = []
            mem = change.memory_mib or (spec.memory_mib if change.push else None)
            cpus = change.cpus or (spec.cpus if change.push else None)
            if mem or cpus:
                vm = dict(vm, memory=mem or vm.get("memory"),
                          cpuNumber=cpus or vm.get("cpuNumber"))
                vm = self.mgr.config_vm(vm) or vm
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
            return NodeResult(spec.node, message="change vm completed." if done else "")
        return self._each(specs, one)
