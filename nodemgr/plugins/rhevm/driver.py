"""The RHEV-M / oVirt driver: VMs, hosts and the data center through the engine's REST API.

The endpoint is the engine (``vm.mgr`` of a VM, ``hypervisor.mgr`` of a host); the engine
keeps the cluster's state, so nothing here talks to a hypervisor (VDSM) directly. VM
functions are the same interface as libvirt's (``mkvm``, ``chvm``, ``rmvm``, ``rpower``,
``rmigrate``, ``clonevm``, ``lsvm``, statistics, addresses, ``rvitals`` from the engine's
statistics, ``rinv``, ``rscan``, ``rsetboot`` through ``os/boot``, ``getrvidparms`` from the
VM's display / graphics consoles and a ``ticket``; no serial console: ``rcons`` is
Unsupported). Results carry :class:`~nodemgr.plugins.base.Facts` (the engine's id as
uuid, the MACs it assigned, the host after a migration, power and status words), never
columns; the per-node loop is the base class's ``each_node``; the data-center functions
(hosts, data centers, clusters, storage domains, logical networks) are extra methods used
by ``nodemgr.cli.rhevcmds``. Both API versions are spoken (see
:mod:`nodemgr.plugins.rhevm.api`); request bodies follow xCAT's ``rhevm.pm`` for v3 and the
ovirt-engine-api-model for v4.

Endpoint options (``hostconn.options`` of the engine node, ``k=v;k=v``): ``api=3|4|auto``,
``ca_file=/path/ca.pem``, ``auth=basic|sso``, ``insecure_http=1`` (allow ``http://``),
``poll=0.5`` (seconds between state polls). The URL is ``hostconn.uri``; a bare
``rhevm://<engine>`` means ``https://<engine>/ovirt-engine/api``.

Boot parameters (``spec.bootparams``, ``mkvm --bootparams``) go through the engine's
cloud-init support, API v4 only: ``mkvm`` stores them as the VM's ``<initialization>``
(:func:`nodemgr.plugins.rhevm.api.initialization`), and every start from down sends
``<action><use_cloud_init>true</use_cloud_init><vm><initialization>`` (the documented
start shape); on a v3 engine they are refused with a one-line error. ``addresses`` falls
back to the initialization's static address when the engine reports no guest address.

Never reads tables, never logs or echoes the password, never leaves a half-made VM
without saying so in the node's message.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence

from nodemgr.bootparams import addresses as bp_addresses
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
    Transient,
    Unsupported,
    VmChange,
    VmInfo,
    VmSpec,
    retry,
)
from nodemgr.plugins.rhevm import NO_SERIAL, TRAITS, api
from nodemgr.plugins.rhevm.api import el, ref, status, text

MIB = 1024 * 1024
#: engine VM status -> xCAT power word (anything else is printed as the engine says it)
POWER_WORD = {"down": "off", "up": "on", "suspended": "suspended", "paused": "suspended"}
#: rsetboot device -> engine boot device
BOOT_DEVICES = {"net": "network", "hd": "hd", "cd": "cdrom", "default": "default"}
#: seconds over which the engine's statistics are computed (vdsm ``vm_sample_interval``)
ENGINE_SAMPLE_S = 15.0
#: seconds a display ticket stays valid (the documented ``ticket`` example's expiry)
TICKET_S = 120
DISK_IFACES = {"virtio": "virtio", "virtio_scsi": "virtio_scsi", "scsi": "virtio_scsi",
               "ide": "ide", "sata": "sata"}


def engine_url(endpoint: Endpoint) -> str:
    """The API URL of *endpoint*: its URI, a ``rhevm://host`` URI meaning
    ``https://host/ovirt-engine/api``."""
    uri = endpoint.uri
    if uri.startswith("rhevm://"):
        host = uri[len("rhevm://"):].strip("/")
        return f"https://{host}{api.V4_PATH}"
    return uri


class RhevmDriver(HypervisorDriver):
    """Driver for one engine (see module docstring for the endpoint options)."""

    name = "rhevm"
    traits = TRAITS

    def __init__(self, endpoint: Endpoint, timeout: float = 60.0) -> None:
        super().__init__(endpoint, timeout)
        opt = endpoint.option
        self.engine = api.Engine(
            engine_url(endpoint), endpoint.username or "admin@internal", endpoint.password,
            version=opt("api"), ca_file=opt("ca_file"),
            allow_http=opt("insecure_http", "0") not in ("0", "", "no", "false"),
            auth=opt("auth", "basic"), timeout=min(timeout, float(opt("http_timeout", "30"))))
        self.poll = float(opt("poll", "0.5"))
        self.scope_host = endpoint.scope or None

    @property
    def v3(self) -> bool:
        return self.engine.version == "3"

    def connect(self) -> None:
        self.engine.connect()

    def close(self) -> None:
        self.engine.close()

    # -- helpers ------------------------------------------------------------------------
    def _vm(self, node: str, *, missing: str | None = None) -> ET.Element:
        found = self.engine.search("vms", node)
        if not found:
            raise NotFound(missing or f"{node}: node was not defined in the rhevm")
        return found[0]

    def _refresh(self, vm: ET.Element) -> ET.Element:
        return self.engine.get(f"vms/{vm.get('id')}")

    def _wait(self, path: str, want: set[str], what: str, *, fail: set[str] = frozenset(),
              timeout: float | None = None) -> ET.Element:
        """Poll *path* until its status is in *want*; InvalidState on *fail* or timeout."""
        limit = time.monotonic() + (timeout if timeout is not None else self.timeout * 0.9)
        while True:
            obj = self.engine.get(path)
            st = status(obj)
            if st in want:
                return obj
            if st in fail:
                raise InvalidState(f"{what} went to state {st}")
            if time.monotonic() >= limit:
                raise InvalidState(f"{what} still {st or 'unknown'} after waiting "
                                   f"{timeout if timeout is not None else self.timeout * 0.9:g} s")
            time.sleep(self.poll)

    def _follow(self, answer: ET.Element | None, what: str) -> None:
        """Follow an action's job (v4 ``<job href>``) until it is finished or failed."""
        if answer is None:
            return
        st = api.action_state(answer)
        if st == "failed":
            raise PermanentError(api.fault_text(answer) or f"{what} failed")
        job = answer.find("job")
        if job is None or not job.get("href"):
            return
        limit = time.monotonic() + self.timeout * 0.9
        while True:
            j = self.engine.get(job.get("href"))
            js = status(j)
            if js in ("finished", "") or js not in ("started", "unknown"):
                if js in ("failed", "aborted"):
                    raise PermanentError(f"{what}: engine job '{text(j, 'description', '')}' "
                                         f"{js}")
                return
            if time.monotonic() >= limit:
                raise InvalidState(f"{what}: engine job still {js}")
            time.sleep(self.poll)

    def _action(self, path: str, body: ET.Element | None = None, what: str = "") -> ET.Element:
        answer = self.engine.request("POST", path, body if body is not None else el("action"))
        self._follow(answer, what or path)
        return answer

    def _cluster(self, name: str) -> ET.Element:
        return self.engine.find("clusters", name, "cluster")

    def _host(self, name: str) -> ET.Element:
        found = self.engine.search("hosts", name)
        if not found:  # RHEV-H hosts registered with their FQDN (xCAT searched name*)
            root = self.engine.list("hosts", params={"search": f"name={name}*"})
            found = [h for h in root if (text(h, "name") or "").split(".")[0] == name]
        if not found:
            raise NotFound(f"host '{name}' not found on engine {self.engine.where}")
        return found[0]

    def _template(self, name: str) -> ET.Element:
        return self.engine.find("templates", name, "template")

    def _sd(self, name: str) -> ET.Element:
        return self.engine.find("storagedomains", name, "storage domain")

    # -- request bodies -----------------------------------------------------------------
    def _topology(self, sockets: int, cores: int) -> ET.Element:
        if self.v3:
            return el("cpu", children=[el("topology", attrib={"sockets": str(sockets),
                                                              "cores": str(cores)})])
        return el("cpu", children=[el("topology", children=[
            el("cores", str(cores)), el("sockets", str(sockets)), el("threads", "1")])])

    def _os(self, boot: list[str]) -> ET.Element:
        devs = [{"network": "network", "hd": "hd", "cdrom": "cdrom"}.get(b, b) for b in boot]
        if self.v3:
            return el("os", children=[el("boot", attrib={"dev": d}) for d in devs])
        return el("os", children=[el("boot", children=[el("devices", children=[
            el("device", d) for d in devs])])])

    def _vm_body(self, spec: VmSpec, *, full: bool) -> ET.Element:
        x = spec.extra
        body = el("vm")
        if full:
            body.append(el("name", spec.node))
            body.append(el("type", "server"))
            body.append(ref("cluster", name=x.get("cluster") or "Default"))
            body.append(ref("template", name=spec.master or "Blank"))
        body.append(el("memory", str(spec.memory_mib * MIB)))
        sockets = int(x.get("sockets") or 1)
        cores = int(x.get("cores") or max(1, spec.cpus // sockets))
        body.append(self._topology(sockets, cores))
        body.append(self._os(spec.bootorder))
        body.append(el("display", children=[el("type", x.get("vidproto") or "vnc")]))
        pp = el("placement_policy")
        if x.get("host"):
            h = self._host(x["host"])
            pp.append(el("hosts", children=[el("host", attrib={"id": h.get("id")})])
                      if not self.v3 else el("host", attrib={"id": h.get("id")}))
        pp.append(el("affinity", x.get("placement_affinity") or "migratable"))
        body.append(pp)
        return body

    def _disk_body(self, spec_disk, bootable: bool, sd_id: str, name: str) -> ET.Element:
        size = str((spec_disk.size_mib or 4768) * MIB)
        fmt = "raw" if spec_disk.format in ("raw",) else "cow"
        iface = DISK_IFACES.get(spec_disk.bus, "virtio")
        sds = el("storage_domains", children=[el("storage_domain", attrib={"id": sd_id})])
        if self.v3:
            return el("disk", children=[
                el("name", name), el("type", "system" if bootable else "data"),
                el("bootable", str(bootable).lower()), sds, el("size", size),
                el("provisioned_size", size), el("interface", iface), el("format", fmt)])
        return el("disk_attachment", children=[
            el("bootable", str(bootable).lower()), el("interface", iface),
            el("active", "true"),
            el("disk", children=[el("name", name), el("format", fmt),
                                 el("provisioned_size", size), sds])])

    def _nic_body(self, name: str, nic, vnic_profiles: dict[str, str]) -> ET.Element:
        kids = [el("name", name), el("interface", nic.model or "virtio")]
        if self.v3:
            kids.append(ref("network", name=nic.network))
        else:
            prof = vnic_profiles.get(nic.network)
            if prof is None:
                raise NotFound(f"network '{nic.network}' has no vNIC profile on engine "
                               f"{self.engine.where}")
            kids.append(el("vnic_profile", attrib={"id": prof}))
        if nic.mac:
            kids.append(el("mac", attrib={"address": nic.mac}) if self.v3
                        else el("mac", children=[el("address", nic.mac)]))
        return el("nic", children=kids)

    def _vnic_profiles(self) -> dict[str, str]:
        if self.v3:
            return {}
        nets = {n.get("id"): text(n, "name") for n in self.engine.list("networks")}
        out: dict[str, str] = {}
        for p in self.engine.list("vnicprofiles"):
            net = nets.get(api.link_id(p, "network"))
            if net and (text(p, "name") == net or net not in out):
                out[net] = p.get("id")
        return out

    def _disks_of(self, vm_id: str) -> list[tuple[ET.Element, ET.Element | None]]:
        """[(attachment-or-disk, disk)] of a VM in order (v3: /disks, v4: diskattachments)."""
        if self.v3:
            return [(d, d) for d in self.engine.list(f"vms/{vm_id}/disks")]
        out = []
        for a in self.engine.list(f"vms/{vm_id}/diskattachments"):
            d = a.find("disk")
            disk = self.engine.get(d.get("href")) if d is not None and d.get("href") else None
            out.append((a, disk))
        return out

    def _add_devices(self, spec: VmSpec, vm_id: str) -> list[str]:
        """Add the spec's disks and NICs to a new VM; returns the NIC MACs in order."""
        roles = (spec.extra.get("disk_roles") or "").split("|")
        for i, d in enumerate(spec.disks):
            sd = self._sd(d.location[3:] if d.location.startswith("sd:") else d.location)
            bootable = (roles[i] if i < len(roles) else "data") == "system"
            coll = "disks" if self.v3 else "diskattachments"
            self.engine.request("POST", f"vms/{vm_id}/{coll}",
                                self._disk_body(d, bootable, sd.get("id"), f"{spec.node}_Disk{i + 1}"))
        names = (spec.extra.get("nic_names") or "").split("|")
        existing = {text(n, "name"): n for n in self.engine.list(f"vms/{vm_id}/nics")}
        profiles = self._vnic_profiles() if spec.nics else {}
        for i, nic in enumerate(spec.nics):
            name = names[i] if i < len(names) and names[i] else f"nic{i + 1}"
            if name in existing:
                continue
            self.engine.request("POST", f"vms/{vm_id}/nics", self._nic_body(name, nic, profiles))
        return [api.mac(n) for n in self.engine.list(f"vms/{vm_id}/nics")]

    @staticmethod
    def _install_first(spec: VmSpec, macs: list[str]) -> list[str] | None:
        """The VM's MACs with the install NIC's (``spec.extra["install_nic"]``) first, or
        None when it has none."""
        if not macs:
            return None
        inst = int(spec.extra.get("install_nic") or 0)
        first = macs[inst] if inst < len(macs) else macs[0]
        return [first] + [m for m in macs if m != first]

    # -- VM operations --------------------------------------------------------------------
    def create(self, specs: Sequence[VmSpec], *, force: bool = False) -> Iterator[NodeResult]:
        return self.each_node(specs, self._create1)

    def _create1(self, spec: VmSpec, *, clone: bool | None = None) -> NodeResult:
        if self.engine.search("vms", spec.node):
            raise InvalidState(f"a VM named {spec.node} already exists on engine "
                               f"{self.engine.where} (rmvm it first)")
        # check names before changing anything: unknown ones fail with nothing created
        self._no_v3_bootparams(spec.bootparams)
        self._cluster(spec.extra.get("cluster") or "Default")
        self._template(spec.master or "Blank")
        for d in spec.disks:
            self._sd(d.location[3:] if d.location.startswith("sd:") else d.location)
        body = self._vm_body(spec, full=True)
        if spec.bootparams:
            body.append(api.initialization(spec.node, spec.bootparams))
        params = {"clone": "true"} if clone else None
        vm = self.engine.request("POST", "vms", body, params=params)
        vm_id = vm.get("id")
        try:
            self._wait(f"vms/{vm_id}", {"down"}, f"new VM {spec.node}", fail={"illegal"})
            macs = self._add_devices(spec, vm_id)
        except DriverError as exc:
            raise type(exc)(f"VM created but not completed: {exc}") from None
        # the engine's id identifies the VM from now on; the engine assigned the MACs
        return NodeResult(spec.node, data={"id": vm_id},
                          facts=Facts(uuid=vm_id, macs=self._install_first(spec, macs)))

    def remove(self, specs: Sequence[VmSpec], *, force: bool = False,
               purge: bool = False) -> Iterator[NodeResult]:
        def one(spec: VmSpec) -> NodeResult:
            vm = self._vm(spec.node)
            vid = vm.get("id")
            if force and status(vm) not in ("down",):
                self._action(f"vms/{vid}/stop", el("action", children=[el("force", "true")]))
                self._wait(f"vms/{vid}", {"down"}, f"VM {spec.node}")
            # disks: kept (detached, as floating disks of their storage domain) unless
            # purge; v4 query parameters, v3 the <action> body xCAT sent
            if self.v3:
                kids = [el("force", "true")] if force else []
                if not purge:
                    kids.append(el("vm", children=[el("disks", children=[
                        el("detach_only", "true")])]))
                self.engine.request("DELETE", f"vms/{vid}", el("action", children=kids))
            else:
                params = {"detach_only": "false" if purge else "true"}
                if force:
                    params["force"] = "true"
                self.engine.request("DELETE", f"vms/{vid}", params=params)
            return NodeResult(spec.node)

        return self.each_node(specs, one)

    def change(self, specs: Sequence[VmSpec], change: VmChange) -> Iterator[NodeResult]:
        def one(spec: VmSpec) -> NodeResult:
            vm = self._vm(spec.node)
            vid = vm.get("id")
            if change.cdrom or change.eject or change.resize:
                raise PermanentError("chvm --cdrom/--eject/--resize are not supported for "
                                     "rhevm VMs")
            if change.push or change.cpus or change.memory_mib:
                if change.cpus:
                    spec.cpus = change.cpus
                    spec.extra = dict(spec.extra, cores=str(change.cpus), sockets="1")
                if change.memory_mib:
                    spec.memory_mib = change.memory_mib
                body = self._vm_body(spec, full=False)
                self._busy(lambda: self.engine.request("PUT", f"vms/{vid}", body))
            if change.add_disks_mib:
                if not spec.storage:
                    raise PermanentError("vm.storage has no storage domain to add disks to")
                have = len(self._disks_of(vid))
                sd = spec.storage[-1]
                for i, size in enumerate(change.add_disks_mib):
                    d = DiskSpec(dev="", location=sd, size_mib=size,
                                 format=spec.storageformat, bus=spec.storagemodel)
                    sdo = self._sd(sd[3:] if sd.startswith("sd:") else sd)
                    coll = "disks" if self.v3 else "diskattachments"
                    self.engine.request("POST", f"vms/{vid}/{coll}", self._disk_body(
                        d, have + i == 0, sdo.get("id"), f"{spec.node}_Disk{have + i + 1}"))
            if change.remove_disks or change.detach_disks:
                disks = self._disks_of(vid)
                gone = [*change.remove_disks, *change.detach_disks]
                for dev in gone:
                    idx = _dev_index(dev)
                    if idx is None or idx >= len(disks):
                        raise NotFound(f"no disk {dev} on {spec.node}")
                for dev in sorted(gone, key=_dev_index, reverse=True):
                    att, _disk = disks[_dev_index(dev)]
                    keep = dev in change.detach_disks
                    if self.v3:  # 3.x: DELETE with <action><detach>true</detach></action>
                        self.engine.request("DELETE", att.get("href"), el("action", children=[
                            el("detach", "true")]) if keep else None)
                    else:
                        self.engine.request("DELETE", att.get("href"), params={
                            "detach_only": "true" if keep else "false"})
            return NodeResult(spec.node, message="change vm completed." if change.push else "")

        return self.each_node(specs, one)

    def power(self, specs: Sequence[VmSpec], action: str) -> Iterator[NodeResult]:
        return self.each_node(specs, self._power1, action)

    def _no_v3_bootparams(self, params: dict[str, str] | None) -> None:
        """PermanentError when boot parameters are asked of a v3 engine (v4 only)."""
        if params and self.v3:
            raise PermanentError(f"boot parameters need API v4 (cloud-init); engine "
                                 f"{self.engine.where} speaks v3")

    def _start(self, vid: str, node: str, bootparams: dict[str, str] | None = None) -> None:
        """Start a VM and wait for ``up``; with *bootparams* (a start from down) the action
        carries them as cloud-init (``use_cloud_init`` + ``vm/initialization``)."""
        body = None
        if bootparams:
            self._no_v3_bootparams(bootparams)
            body = api.cloud_init_start(node, bootparams)
        self._action(f"vms/{vid}/start", body, what=f"start {node}")
        self._wait(f"vms/{vid}", {"up"}, f"VM {node}")

    def _stop(self, vid: str, node: str) -> None:
        self._action(f"vms/{vid}/stop", what=f"stop {node}")
        self._wait(f"vms/{vid}", {"down"}, f"VM {node}")

    def _power1(self, spec: VmSpec, action: str) -> NodeResult:
        vm = self._vm(spec.node)
        vid = vm.get("id")
        prev = status(vm)
        prev_word = POWER_WORD.get(prev, prev)
        facts = Facts()
        if action == "stat":
            return NodeResult(spec.node, message=prev_word, data={"state": prev_word},
                              facts=Facts(power=prev_word))
        if action == "on":
            if prev != "up":
                self._start(vid, spec.node, spec.bootparams if prev == "down" else None)
                facts.status = "powering-on"
            msg = "on"
        elif action == "off":
            if prev != "down":
                self._stop(vid, spec.node)
                facts.status = "powering-off"
            msg = "off"
        elif action == "softoff":
            if prev != "down":
                self._action(f"vms/{vid}/shutdown", what=f"shutdown {spec.node}")
                self._wait(f"vms/{vid}", {"down"}, f"VM {spec.node}")
                facts.status = "powering-off"
            msg = "off"
        elif action == "reset" and prev == "down":
            msg = "off"  # like libvirt: nothing to reset
        elif action in ("reset", "boot"):
            self._no_v3_bootparams(spec.bootparams)  # before stopping it
            if prev != "down":
                self._stop(vid, spec.node)
            self._start(vid, spec.node, spec.bootparams)
            facts.status = "powering-on"
            msg = "reset" if action == "reset" else ("on reset" if prev != "down" else "off on")
        elif action == "suspend":
            self._action(f"vms/{vid}/suspend", what=f"suspend {spec.node}")
            self._wait(f"vms/{vid}", {"suspended"}, f"VM {spec.node}")
            msg = "suspended"
        elif action == "resume":
            if prev != "suspended":
                raise InvalidState(f"Cannot resume VM. VM is {prev}.")
            self._start(vid, spec.node)
            msg = "on"
        else:
            raise PermanentError(f"Unsupported power directive '{action}'")
        state = {"on": "on", "off": "off", "suspended": "suspended"}.get(msg.split()[-1], "on")
        facts.power = state
        return NodeResult(spec.node, message=msg, facts=facts,
                          data={"state": state, "previous": prev_word})

    def host_power(self) -> str:
        """The scoped host's status on the engine (``up`` → on, ``down`` → off, else the
        engine's word: maintenance, non_responsive, ...); the engine itself: on."""
        if not self.scope_host:
            return "on"
        st = status(self._host(self.scope_host))
        return {"up": "on", "down": "off"}.get(st, st or "unknown")

    def _listed(self) -> list[ET.Element]:
        """The engine's VMs; with a scope, those running on the scoped host."""
        params = None
        if self.scope_host:
            h = self._host(self.scope_host)
            params = {"search": f"host={text(h, 'name')}"}
        root = self.engine.list("vms", params=params)
        return [vm for vm in root if not self.scope_host or api.link_id(vm, "host")]

    def list_vms(self) -> list[VmInfo]:
        out = []
        for vm in self._listed():
            st = status(vm)
            out.append(VmInfo(name=text(vm, "name") or "", state=POWER_WORD.get(st, st),
                              uuid=vm.get("id")))
        return out

    def describe(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        def one(spec: VmSpec) -> NodeResult:
            vm = self._refresh(self._vm(spec.node))
            vid = vm.get("id")
            sockets, cores = api.topology(vm)
            mem = int(text(vm, "memory", "0"))
            lines = [f"Id: {vid}", f"State: {status(vm)}",
                     f"Memory: {mem // MIB} MiB", f"CPU: {sockets * cores} "
                     f"(sockets {sockets}, cores {cores})",
                     f"Boot order: {','.join(api.boot_devices(vm))}",
                     f"Display: {text(vm, 'display/type', '')}",
                     f"Affinity: {text(vm, 'placement_policy/affinity', '')}"]
            hid = api.link_id(vm, "host")
            if hid:
                lines.append(f"Host: {text(self.engine.get(f'hosts/{hid}'), 'name')}")
            cid = api.link_id(vm, "cluster")
            if cid:
                lines.append(f"Cluster: {text(self.engine.get(f'clusters/{cid}'), 'name')}")
            for i, (att, disk) in enumerate(self._disks_of(vid)):
                d = disk if disk is not None else att
                size = int(text(d, "provisioned_size") or text(d, "size") or 0)
                lines.append(f"Disk {i + 1}: {text(d, 'name', '')} {size // MIB} MiB "
                             f"{text(att, 'interface') or text(d, 'interface', '')} "
                             f"{text(d, 'format', '')} bootable={text(att, 'bootable', 'false')}")
            for n in self.engine.list(f"vms/{vid}/nics"):
                lines.append(f"NIC {text(n, 'name')}: {api.mac(n)} "
                             f"{text(n, 'interface', '')}")
            return NodeResult(spec.node, message="\n".join(lines),
                              data={"id": vid, "state": status(vm)})

        return self.each_node(specs, one)

    def migrate(self, specs: Sequence[VmSpec], target: Endpoint) -> Iterator[NodeResult]:
        def one(spec: VmSpec) -> NodeResult:
            vm = self._vm(spec.node)
            vid = vm.get("id")
            body = el("action")
            name = target.host if target is not None else ""
            if name and name != "*":
                try:
                    h = self._host(name)
                except NotFound:
                    raise NotFound(f"{name}: host was not defined in the rhevm.") from None
                body.append(el("host", attrib={"id": h.get("id")}))
            body.append(el("force", "true"))
            self._action(f"vms/{vid}/migrate", body, what=f"migrate {spec.node}")
            vm = self._wait(f"vms/{vid}", {"up"}, f"VM {spec.node}")
            hid = api.link_id(vm, "host")
            hname = text(self.engine.get(f"hosts/{hid}"), "name") if hid else ""
            if name and name != "*" and hname.split(".")[0] != name.split(".")[0]:
                raise InvalidState(f"VM {spec.node} is on {hname}, not {name}, after migrating")
            return NodeResult(spec.node, message=f"migrated to {hname.split('.')[0]}",
                              facts=Facts(host=hname.split(".")[0]))

        return self.each_node(specs, one)

    def make_master(self, spec: VmSpec, master: str, *, detached: bool = False,
                    force: bool = False) -> NodeResult:
        vm = self._vm(spec.node)
        if status(vm) != "down":
            raise InvalidState(f"Cannot add Template. VM {spec.node} must be down "
                               f"(it is {status(vm)}).")
        body = el("template", children=[el("name", master),
                                        el("vm", attrib={"id": vm.get("id")})])
        t = self.engine.request("POST", "templates", body)
        t = self._wait(f"templates/{t.get('id')}", {"ok"}, f"template {master}",
                       fail={"illegal"})
        return NodeResult(spec.node, message=f"{master}: {status(t)}.",
                          data={"master_definition": None, "template_id": t.get("id")})

    def clone_from_master(self, specs: Sequence[VmSpec], master: str,
                          master_definition: str | None, *,
                          detached: bool = False) -> Iterator[NodeResult]:
        def one(spec: VmSpec) -> NodeResult:
            spec.master = master
            return self._create1(spec, clone=detached)

        return self.each_node(specs, one)

    def stats(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        def one(spec: VmSpec) -> NodeResult:
            vm = self._vm(spec.node)
            values = {}
            for s in self.engine.list(f"vms/{vm.get('id')}/statistics"):
                datum = text(s, "values/value/datum")
                if datum is not None:
                    values[text(s, "name")] = float(datum)
            data = {"cpu_percent": values.get("cpu.current.total", 0.0),
                    "memory_mib": int(values.get("memory.installed", 0) // MIB),
                    "memory_used_mib": int(values.get("memory.used", 0) // MIB)}
            msg = (f"cpu: {data['cpu_percent']:g}%  memory: {data['memory_used_mib']} of "
                   f"{data['memory_mib']} MiB")
            return NodeResult(spec.node, message=msg, data=data)

        return self.each_node(specs, one)

    def addresses(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        """The guest agent's addresses of each VM; when it reports none, the static ones
        its cloud-init configuration or boot parameters give (:meth:`_addresses_of`)."""
        def one(spec: VmSpec) -> NodeResult:
            found = self._addresses_of(self._vm(spec.node), spec)
            agent = [a for a in found if a.source == "agent"]
            found = agent or found
            addrs = list(dict.fromkeys(a.ip for a in found))
            return NodeResult(spec.node, message=" ".join(addrs), data={"addresses": addrs},
                              facts=Facts(addresses=found))

        return self.each_node(specs, one)

    def host_free_memory_mib(self) -> int:
        if not self.scope_host:
            raise PermanentError("free memory needs a host")
        h = self._host(self.scope_host)
        return int(text(h, "max_scheduling_memory") or text(h, "memory") or 0) // MIB

    # -- rvitals, rinv, rscan, rsetboot, getrvidparms ---------------------------------------
    def translate(self, exc: Exception) -> DriverError | None:
        """A malformed number in an engine answer (``int()``/``float()`` of its text) is
        that node's PermanentError; other library errors are already mapped by
        :class:`~nodemgr.plugins.rhevm.api.Engine`."""
        if isinstance(exc, ValueError):
            return PermanentError(f"engine {self.engine.where} sent a malformed value: {exc}")
        return None

    def _busy(self, fn):
        """``fn()``, retried while the engine answers that the VM is locked (409 "...
        locked...", "Please try again in a few minutes": a disk copy or another task
        holds it) on a doubling schedule from ``poll`` seconds; other errors at once."""
        def once():
            try:
                return fn()
            except InvalidState as exc:
                if "locked" in str(exc).lower() or "try again" in str(exc).lower():
                    raise Transient(str(exc)) from None
                raise

        return retry(once, schedule=tuple(self.poll * 2 ** i for i in range(5)))

    @staticmethod
    def _stats(root_items: list[ET.Element]) -> dict[str, float]:
        """``{name: datum}`` of a ``<statistics>`` collection (first value of each), in
        either version's shape (v4 ``kind/type`` children, v3 ``values@type``)."""
        out = {}
        for s in root_items:
            datum = text(s, "values/value/datum")
            name = text(s, "name")
            if datum is not None and name:
                try:
                    out[name] = float(datum)
                except ValueError:  # a string statistic (disks.usage JSON)
                    continue
        return out

    def _sub_stats(self, path: str) -> dict[str, float]:
        """Statistics of a sub-resource (a NIC, a disk); {} when the engine has none
        (404: RHEV 3.0/3.1 had no disk statistics)."""
        try:
            return self._stats(self.engine.list(path))
        except NotFound:
            return {}

    def vitals(self, specs: Sequence[VmSpec], interval_s: float = 1.0) -> Iterator[NodeResult]:
        """Use of each VM from the engine's statistics (``GET vms/{id}/statistics``;
        ``nics/{id}/statistics``; v4 ``disks/{id}/statistics``, v3
        ``vms/{id}/disks/{id}/statistics``).

        The engine computes every figure itself over VDSM's sampling period (15 s, vdsm's
        ``vm_sample_interval``), so *interval_s* is not waited for and
        ``Metrics.interval_s`` is 15. ``cpu.current.total`` is the percentage of all the
        VM's vCPUs together (the engine divides by the vCPU count, the 0–100 % of its
        UI); :attr:`Metrics.cpu_pct` is per one vCPU summed, so it is multiplied by the
        vCPUs. Memory: ``memory.used`` (guest agent) and ``memory.installed``, MiB. Net:
        ``data.current.rx.bps``/``tx.bps`` (bits/s, divided by 8) where the engine has
        them, else ``data.current.rx``/``tx`` (bytes/s), all NICs summed. Disk:
        ``data.current.read``/``write`` (bytes/s), all disks summed; None where the
        engine gives no such statistic.
        """
        def one(spec: VmSpec) -> NodeResult:
            vm = self._vm(spec.node)
            vid = vm.get("id")
            sockets, cores = api.topology(vm)
            cpus = sockets * cores
            v = self._stats(self.engine.list(f"vms/{vid}/statistics"))
            rx = tx = rd = wr = None
            for n in self.engine.list(f"vms/{vid}/nics"):
                ns = self._sub_stats(f"vms/{vid}/nics/{n.get('id')}/statistics")
                for key, bits, bytes_ in (("rx", "data.current.rx.bps", "data.current.rx"),
                                          ("tx", "data.current.tx.bps", "data.current.tx")):
                    rate = ns[bits] / 8 if bits in ns else ns.get(bytes_)
                    if rate is None:
                        continue
                    if key == "rx":
                        rx = (rx or 0.0) + rate
                    else:
                        tx = (tx or 0.0) + rate
            for att, disk in self._disks_of(vid):
                did = (disk if disk is not None else att).get("id")
                ds = self._sub_stats(f"vms/{vid}/disks/{did}/statistics" if self.v3
                                     else f"disks/{did}/statistics")
                if "data.current.read" in ds:
                    rd = (rd or 0.0) + ds["data.current.read"]
                if "data.current.write" in ds:
                    wr = (wr or 0.0) + ds["data.current.write"]
            total = v.get("cpu.current.total")
            if total is None and "cpu.current.guest" in v:
                total = v["cpu.current.guest"] + v.get("cpu.current.hypervisor", 0.0)
            m = Metrics(interval_s=ENGINE_SAMPLE_S,
                        cpu_pct=round(total * cpus, 2) if total is not None else None,
                        cpus=cpus,
                        mem_used_mib=int(v["memory.used"] // MIB) if "memory.used" in v
                        else None,
                        mem_avail_mib=int(v["memory.installed"] // MIB)
                        if "memory.installed" in v else None,
                        disk_read_bps=rd, disk_write_bps=wr, net_rx_bps=rx, net_tx_bps=tx)
            return NodeResult(spec.node, facts=Facts(metrics=m),
                              data={"state": POWER_WORD.get(status(vm), status(vm))})

        return self.each_node(specs, one)

    def _addresses_of(self, vm: ET.Element, spec: VmSpec) -> list[Address]:
        """The VM's addresses: the guest agent's (v4 ``reporteddevices``, v3
        ``guest_info/ips``) as ``agent``, then the static ones its cloud-init
        ``initialization`` or *spec*'s boot parameters configure as ``bootparams``."""
        out: list[Address] = []
        for ip in vm.findall("guest_info/ips/ip"):  # v3: no MAC with it
            out.append(Address(ip.get("address") or text(ip, "address") or "", "agent"))
        if not self.v3:
            rd = self.engine.get(f"vms/{vm.get('id')}/reporteddevices")
            for dev in rd.findall("reported_device"):
                mac = api.mac(dev) or None
                for ip in dev.findall("ips/ip"):
                    out.append(Address(text(ip, "address") or "", "agent", mac))
        seen = {a.ip for a in out}
        for ip in api.initialization_addresses(vm) or bp_addresses(spec.bootparams):
            if ip not in seen:
                out.append(Address(ip, "bootparams"))
                seen.add(ip)
        return [a for a in out if a.ip]

    def _disk_infos(self, vid: str) -> list[DiskInfo]:
        out = []
        for i, (att, disk) in enumerate(self._disks_of(vid)):
            d = disk if disk is not None else att
            size = text(d, "provisioned_size") or text(d, "size")
            logical = text(att, "logical_name")  # v4, reported by the guest agent
            out.append(DiskInfo(dev=logical.rsplit("/", 1)[-1] if logical else
                                (text(d, "alias") or text(d, "name") or f"disk{i + 1}"),
                                size_mib=int(size) // MIB if size else None,
                                path=d.get("id"), format=text(d, "format")))
        return out

    def _nic_infos(self, vid: str, nets: dict[str, str] | None = None) -> list[NicInfo]:
        if nets is None:
            nets = {n.get("id"): text(n, "name") for n in self.engine.list("networks")}
        profiles = {} if self.v3 else {
            p.get("id"): api.link_id(p, "network") for p in self.engine.list("vnicprofiles")}
        out = []
        for n in self.engine.list(f"vms/{vid}/nics"):
            net = api.link_id(n, "network") or profiles.get(api.link_id(n, "vnic_profile"))
            out.append(NicInfo(mac=api.mac(n), network=nets.get(net) if net else None,
                               model=text(n, "interface")))
        return out

    def inventory(self, specs: Sequence[VmSpec]) -> Iterator[NodeResult]:
        """Each VM as the engine has it: id (the node's UUID), vCPUs (sockets × cores),
        memory, disks (``provisioned_size``, v4 ``logical_name`` when the guest agent
        reported it, else the disk's alias), NICs (MAC, network, model) and addresses
        (:meth:`_addresses_of`)."""
        nets: dict[str, str] = {}

        def one(spec: VmSpec) -> NodeResult:
            vm = self._refresh(self._vm(spec.node))
            vid = vm.get("id")
            if not nets:
                nets.update({n.get("id"): text(n, "name") for n in self.engine.list("networks")})
            sockets, cores = api.topology(vm)
            inv = Inventory(uuid=vid, cpus=sockets * cores,
                            memory_mib=int(text(vm, "memory", "0")) // MIB,
                            disks=self._disk_infos(vid), nics=self._nic_infos(vid, nets),
                            addresses=self._addresses_of(vm, spec))
            return NodeResult(spec.node, facts=Facts(inventory=inv, addresses=inv.addresses),
                              data={"id": vid, "state": status(vm)})

        return self.each_node(specs, one)

    def scan(self) -> list[VmInfo]:
        """Every VM of the engine (of the scoped host only, when scoped) with its id,
        memory, vCPUs, MACs, disks and the host it runs on (``rscan``)."""
        hosts = {h.get("id"): (text(h, "name") or "").split(".")[0]
                 for h in self.engine.list("hosts")}
        nets = {n.get("id"): text(n, "name") for n in self.engine.list("networks")}
        out = []
        for vm in self._listed():
            vid = vm.get("id")
            st = status(vm)
            sockets, cores = api.topology(vm)
            out.append(VmInfo(name=text(vm, "name") or "", state=POWER_WORD.get(st, st),
                              uuid=vid, memory_mib=int(text(vm, "memory", "0")) // MIB,
                              cpus=sockets * cores,
                              macs=[n.mac for n in self._nic_infos(vid, nets)],
                              disks=self._disk_infos(vid),
                              host=hosts.get(api.link_id(vm, "host") or "")))
        return out

    def set_boot(self, specs: Sequence[VmSpec], device: str) -> Iterator[NodeResult]:
        """Make *device* the VM's first boot device: ``PUT vms/{id}`` with its ``os/boot``
        (v4 ``devices/device``, v3 ``boot@dev``): ``net`` → ``network``, ``hd``, ``cd`` →
        ``cdrom``, then the VM's other current devices in their order; ``default`` puts
        ``vm.bootorder`` back. A running VM gets it from its next start (the engine keeps
        it as the next-run configuration). Unknown *device*: Unsupported, nothing sent.
        Retried while the VM is locked."""
        def one(spec: VmSpec) -> NodeResult:
            if device not in BOOT_DEVICES:
                raise Unsupported(f"boot device '{device}' is not one of net, hd, cd, default")
            vm = self._vm(spec.node)
            if device == "default":
                order = [b for b in spec.bootorder if b in BOOT_DEVICES.values()] or ["hd"]
            else:
                first = BOOT_DEVICES[device]
                order = [first] + [d for d in api.boot_devices(vm) if d != first]
            body = el("vm", children=[self._os(order)])
            got = self._busy(lambda: self.engine.request("PUT", f"vms/{vm.get('id')}", body))
            now = api.boot_devices(got) if got is not None else order
            return NodeResult(spec.node, message=",".join(now), facts=Facts(bootdev=device),
                              data={"bootorder": now})

        return self.each_node(specs, one)

    def console(self, spec: VmSpec, *, open_stream: bool = False,
                display: bool = False) -> Console:
        """The VM's remote display (``getrvidparms``): protocol (``vnc``/``spice``),
        address and port of the running VM, and a one-time password from the engine's
        ``ticket`` action (valid 120 s). v4: ``GET vms/{id}/graphicsconsoles?current=true``
        (the console whose protocol is the VM's ``display/type``) and its ``ticket``;
        v3: the VM's ``display`` (``address``, ``port``, ``secure_port``) and
        ``vms/{id}/ticket``. A SPICE console with only a TLS port gives that port.

        Raises: Unsupported for *open_stream* (no serial console through the engine,
        checked before any call); NotFound; InvalidState when the VM is not running (the
        engine has no display address then).
        """
        if open_stream:
            raise Unsupported(NO_SERIAL)
        vm = self._refresh(self._vm(spec.node))
        vid = vm.get("id")
        st = status(vm)
        if st not in ("up", "powering_up", "reboot_in_progress", "paused", "migrating"):
            raise InvalidState(f"{spec.node} is {st or 'unknown'}: the engine gives a display "
                               "only while the VM runs")
        kind = (text(vm, "display/type") or "vnc").lower()
        host = text(vm, "display/address")
        port = text(vm, "display/port")
        tls = text(vm, "display/secure_port")
        ticket_path = f"vms/{vid}/ticket"
        if not self.v3:
            consoles = self.engine.list(f"vms/{vid}/graphicsconsoles",
                                        params={"current": "true"})
            gc = next((c for c in consoles if text(c, "protocol") == kind),
                      consoles[0] if consoles else None)
            if gc is not None:
                kind = text(gc, "protocol") or kind
                host = text(gc, "address") or host
                port, tls = text(gc, "port") or port, text(gc, "tls_port") or tls
                ticket_path = f"vms/{vid}/graphicsconsoles/{gc.get('id')}/ticket"
        port_n = int(port or tls) if (port or tls) else None
        if not host or port_n is None:
            raise InvalidState(f"engine {self.engine.where} gives no display address for "
                               f"{spec.node}")
        answer = self._action(ticket_path, el("action", children=[el("ticket", children=[
            el("expiry", str(TICKET_S))])]), what=f"ticket for {spec.node}")
        password = text(answer, "ticket/value")
        if kind == "spice":
            query = "&".join(f"{k}={v}" for k, v in (("port", port), ("tls-port", tls)) if v)
            command = f"remote-viewer 'spice://{host}?{query}'"
        else:
            command = f"remote-viewer vnc://{host}:{port_n}"
        return Console(kind=kind, host=host, port=port_n, password=password, command=command)

    # -- hosts (chhypervisor, rmhypervisor) -----------------------------------------------
    def host_add(self, name: str, address: str, cluster: str, root_password: str | None
                 ) -> str:
        """Add host *name* at *address* to *cluster* (installs VDSM); returns its state."""
        if self.engine.search("hosts", name):
            raise InvalidState(f"host {name} is already defined on engine {self.engine.where}")
        self._cluster(cluster)
        if not root_password:
            raise PermanentError("no root password for the host (passwd table, key rhevh)")
        body = el("host", children=[el("name", name), el("address", address),
                                    el("root_password", root_password),
                                    ref("cluster", name=cluster)])
        h = self.engine.request("POST", "hosts", body)
        h = self._wait(f"hosts/{h.get('id')}", {"up"}, f"host {name}",
                       fail={"install_failed", "non_operational"})
        return status(h)

    def host_approve(self, name: str, cluster: str) -> str:
        """Approve a self-registered (``pending_approval``) RHEV-H host into *cluster*."""
        h = self._host(name)
        if status(h) != "pending_approval":
            raise InvalidState(f"host {name} is {status(h)}, not pending_approval")
        c = self._cluster(cluster)
        self._action(f"hosts/{h.get('id')}/approve",
                     el("action", children=[el("cluster", attrib={"id": c.get("id")})]))
        return "approved."

    def host_activate(self, name: str) -> str:
        """Activate a host (maintenance -> up)."""
        h = self._host(name)
        self._action(f"hosts/{h.get('id')}/activate")
        return status(self._wait(f"hosts/{h.get('id')}", {"up"}, f"host {name}"))

    def host_deactivate(self, name: str) -> str:
        """Put a host into maintenance."""
        h = self._host(name)
        if status(h) != "maintenance":
            self._action(f"hosts/{h.get('id')}/deactivate")
        return status(self._wait(f"hosts/{h.get('id')}", {"maintenance"}, f"host {name}"))

    def host_remove(self, name: str, force: bool = False) -> str:
        """Remove a host; *force* puts it into maintenance first."""
        h = self._host(name)
        if force and status(h) != "maintenance":
            self.host_deactivate(name)
        self.engine.request("DELETE", f"hosts/{h.get('id')}")
        return "removed."

    def host_info(self, name: str) -> list[str]:
        """``key: value`` lines describing host *name*, its NICs and its VMs."""
        h = self._host(name)
        sockets, cores = api.topology(h)
        lines = [f"hosts: [{text(h, 'name')}]", f"  address: {text(h, 'address', '')}",
                 f"  state: {status(h)}", f"  type: {text(h, 'type', '')}",
                 f"  cpu: {text(h, 'cpu/name', '')} ({sockets} sockets, {cores} cores)",
                 f"  memory: {int(text(h, 'memory') or 0) // MIB} MiB"]
        for n in self.engine.list(f"hosts/{h.get('id')}/nics"):
            ip = n.find("ip")
            addr = (ip.get("address") or text(ip, "address")) if ip is not None else None
            lines.append(f"  nic {text(n, 'name')}: mac {api.mac(n)} ip {addr or '-'} "
                         f"state {status(n) or '-'}")
        for vm in self.engine.list("vms", params={"search": f"host={text(h, 'name')}"}):
            if api.link_id(vm, "host") == h.get("id"):
                lines.append(f"  vm {text(vm, 'name')}: {status(vm)}")
        return lines

    # -- data center objects (lsve, cfgve) -------------------------------------------------
    COLLECTIONS = {"dc": ("datacenters", "data center"), "cl": ("clusters", "cluster"),
                   "sd": ("storagedomains", "storage domain"), "nw": ("networks", "network"),
                   "tpl": ("templates", "template"), "host": ("hosts", "host")}

    def ve_list(self, kind: str, names: Sequence[str] = ()) -> list[str]:
        """``lsve`` lines for objects of *kind* (``dc``, ``cl``, ``sd``, ``nw``, ``tpl``,
        ``host``), all of them or those *names*."""
        coll, what = self.COLLECTIONS[kind]
        objs = [self.engine.find(coll, n, what) for n in names] if names else \
            self.engine.list(coll)
        lines = []
        for o in objs:
            lines.append(f"{o.tag}: [{text(o, 'name')}]")
            for key in ("description", "status", "type", "version", "local", "storage_type",
                        "available", "used", "master", "storage/type", "storage/address",
                        "storage/path", "cpu/type", "vlan", "address"):
                v = text(o, key) if key not in ("status", "version", "vlan") else None
                if key == "cpu/type" and not v and o.find("cpu") is not None:
                    v = o.find("cpu").get("id")  # v3: <cpu id="Intel Penryn Family"/>
                if key == "status":
                    v = status(o) or None
                elif key == "version":
                    ver = o.find("version")
                    if ver is not None:
                        major = ver.get("major") or text(ver, "major")
                        minor = ver.get("minor") or text(ver, "minor")
                        v = f"{major}.{minor}" if major else None
                elif key == "vlan":
                    vl = o.find("vlan")
                    v = (vl.get("id") or text(vl, "id")) if vl is not None else None
                if v:
                    lines.append(f"  {key.replace('/', '_')}: {v}")
            for link in ("data_center", "cluster"):
                lk = o.find(link)
                if lk is not None and lk.get("href"):
                    try:
                        lines.append(f"  {link}: {text(self.engine.get(lk.get('href')), 'name')}")
                    except DriverError:
                        pass
            if kind == "dc":
                for sd in self.engine.list(f"datacenters/{o.get('id')}/storagedomains"):
                    lines.append(f"  storagedomain: {text(sd, 'name')} ({status(sd)})")
            if kind == "cl":
                for nw in self.engine.list(f"clusters/{o.get('id')}/networks"):
                    lines.append(f"  network: {text(nw, 'name')}")
        return lines

    def dc_create(self, name: str, local: bool, version: str | None = None) -> str:
        """Create data center *name* (shared or local storage)."""
        if self.engine.search("datacenters", name):
            raise InvalidState(f"data center {name} already exists")
        kids = [el("name", name)]
        if self.v3:
            kids.append(el("storage_type", "localfs" if local else "nfs"))
        else:
            kids.append(el("local", str(local).lower()))
        if version:
            major, _, minor = version.partition(".")
            kids.append(el("version", attrib={"major": major, "minor": minor or "0"})
                        if self.v3 else el("version", children=[el("major", major),
                                                                  el("minor", minor or "0")]))
        self.engine.request("POST", "datacenters", el("data_center", children=kids))
        return "created."

    def remove_object(self, kind: str, name: str, *, force: bool = False,
                      host: str | None = None) -> str:
        """Delete a data center, cluster, network, template or storage domain by name."""
        coll, what = self.COLLECTIONS[kind]
        o = self.engine.find(coll, name, what)
        if kind == "sd":
            hid = self._host(host).get("id") if host else None
            body = el("storage_domain", children=[
                el("host", attrib={"id": hid}) if hid else None, el("format", "true")])
            params = {"host": host, "format": "true"} if not self.v3 and host else None
            self.engine.request("DELETE", f"{coll}/{o.get('id')}",
                                body if self.v3 else None, params=params)
        else:
            params = {"force": "true"} if force and kind == "dc" else None
            self.engine.request("DELETE", f"{coll}/{o.get('id')}", params=params)
        return "removed."

    def cluster_create(self, name: str, datacenter: str, cpu_type: str) -> str:
        """Create cluster *name* in *datacenter* with CPU type *cpu_type*."""
        if self.engine.search("clusters", name):
            raise InvalidState(f"cluster {name} already exists")
        dc = self.engine.find("datacenters", datacenter, "data center")
        cpu = el("cpu", attrib={"id": cpu_type}) if self.v3 else \
            el("cpu", children=[el("type", cpu_type), el("architecture", "x86_64")])
        self.engine.request("POST", "clusters", el("cluster", children=[
            el("name", name), el("data_center", attrib={"id": dc.get("id")}), cpu]))
        return "created."

    def network_create(self, name: str, datacenter: str, vlan: str | None) -> str:
        """Create logical network *name* in *datacenter* (optionally tagged *vlan*)."""
        dc = self.engine.find("datacenters", datacenter, "data center")
        if any(text(n, "name") == name and api.link_id(n, "data_center") == dc.get("id")
               for n in self.engine.list("networks")):
            raise InvalidState(f"network {name} already exists in {datacenter}")
        kids = [el("name", name), el("data_center", attrib={"id": dc.get("id")})]
        if vlan:
            kids.append(el("vlan", attrib={"id": vlan}))
        self.engine.request("POST", "networks", el("network", children=kids))
        return "created."

    def _network(self, name: str, datacenter: str | None) -> ET.Element:
        dcid = self.engine.find("datacenters", datacenter, "data center").get("id") \
            if datacenter else None
        for n in self.engine.list("networks"):  # xCAT filtered the whole list by name too
            if text(n, "name") == name and (dcid is None or api.link_id(n, "data_center") == dcid):
                return n
        raise NotFound(f"network '{name}' not found on engine {self.engine.where}")

    def network_attach(self, name: str, cluster: str, datacenter: str | None) -> str:
        """Attach logical network *name* to *cluster*."""
        n = self._network(name, datacenter)
        c = self._cluster(cluster)
        self.engine.request("POST", f"clusters/{c.get('id')}/networks",
                            el("network", attrib={"id": n.get("id")}))
        return f"attached to {cluster}."

    def network_detach(self, name: str, cluster: str) -> str:
        """Detach logical network *name* from *cluster*."""
        c = self._cluster(cluster)
        for n in self.engine.list(f"clusters/{c.get('id')}/networks"):
            if text(n, "name") == name:
                self.engine.request("DELETE", f"clusters/{c.get('id')}/networks/{n.get('id')}")
                return f"detached from {cluster}."
        raise NotFound(f"network '{name}' is not attached to cluster {cluster}")

    def network_remove(self, name: str, datacenter: str | None) -> str:
        """Delete logical network *name*."""
        n = self._network(name, datacenter)
        self.engine.request("DELETE", f"networks/{n.get('id')}")
        return "removed."

    def sd_create(self, name: str, kind: str, host: str, path: str,
                  address: str | None = None) -> str:
        """Create storage domain *name*: ``nfs`` (``address:path``) or ``localfs`` (path
        on *host*), using *host* to create it."""
        if kind not in ("nfs", "localfs"):
            raise PermanentError(f"storage type '{kind}' not supported (nfs, localfs)")
        if kind == "nfs" and not address:
            raise PermanentError("an NFS storage domain needs a server address")
        if self.engine.search("storagedomains", name):
            raise InvalidState(f"storage domain {name} already exists")
        h = self._host(host)
        st = [el("type", kind)] + ([el("address", address)] if address else []) + \
            [el("path", path)]
        self.engine.request("POST", "storagedomains", el("storage_domain", children=[
            el("name", name), el("type", "data"), el("storage", children=st),
            el("host", attrib={"id": h.get("id")}) if self.v3 else ref("host", name=text(h, "name"))]))
        return "created."

    def _dc_sd(self, name: str, datacenter: str) -> tuple[ET.Element, ET.Element]:
        dc = self.engine.find("datacenters", datacenter, "data center")
        for sd in self.engine.list(f"datacenters/{dc.get('id')}/storagedomains"):
            if text(sd, "name") == name:
                return dc, sd
        raise NotFound(f"storage domain '{name}' is not attached to data center {datacenter}")

    def sd_attach(self, name: str, datacenter: str) -> str:
        """Attach storage domain *name* to *datacenter* (it becomes active)."""
        sd = self._sd(name)
        dc = self.engine.find("datacenters", datacenter, "data center")
        self.engine.request("POST", f"datacenters/{dc.get('id')}/storagedomains",
                            el("storage_domain", attrib={"id": sd.get("id")}))
        return f"attached to {datacenter}."

    def sd_activate(self, name: str, datacenter: str, up: bool) -> str:
        """Activate (*up*) or deactivate storage domain *name* in *datacenter*."""
        dc, sd = self._dc_sd(name, datacenter)
        path = f"datacenters/{dc.get('id')}/storagedomains/{sd.get('id')}"
        self._action(f"{path}/{'activate' if up else 'deactivate'}")
        want = "active" if up else "maintenance"
        return status(self._wait(path, {want}, f"storage domain {name}"))

    def sd_detach(self, name: str, datacenter: str) -> str:
        """Detach storage domain *name* (in maintenance) from *datacenter*."""
        dc, sd = self._dc_sd(name, datacenter)
        self.engine.request("DELETE", f"datacenters/{dc.get('id')}/storagedomains/{sd.get('id')}")
        return f"detached from {datacenter}."


def _dev_index(dev: str) -> int | None:
    """Position of a disk named like ``vdb``/``sda``/``hdd`` (``c`` is skipped as on KVM),
    or a 1-based ``disk2``."""
    if dev.startswith("disk") and dev[4:].isdigit():
        return int(dev[4:]) - 1
    letters = "abdefghijklmnopqrstuvwxyz"
    if len(dev) == 3 and dev[:2] in ("vd", "sd", "hd") and dev[2] in letters:
        return letters.index(dev[2])
    return None
