"""Simulated Oracle VM Manager 2.x web services (SOAP over HTTP/HTTPS) for tests and demos.

Serves ``/OVSWS/<Service>.wsdl`` for ServerPoolService (the reconstructed real WSDL in
``tests/fixtures/ovm/``) and the inferred VirtualMachineService, LifecycleService and
ResourceService (built by ``nodemgr.plugins.ovm.soap.build_wsdl``), and answers
document/literal SOAP 1.1 calls at ``/OVSWS/<Service>``. Requests are parsed and responses
rendered with zeep's schema objects loaded from those same WSDLs, so what goes over the
wire follows the schema (``test_ovm_fidelity.py`` checks ServerPoolService messages against
the real reconstructed XSD with lxml).

State: one server pool (``pool1``) with a master server (``ovs1``) and a second server
(``ovs2``, for migration), VMs and templates. VM power states follow the allowed-transition
table of the OVM 2.2 ``Operation`` javadoc (reference §2.4): an operation from any other
state is answered with a SOAP fault ``Operation <op> is not allowed ...``. The dom0 side is
a real directory standing for the pool master's ``/OVS`` (in tests: a tree inside a real
sshd's home): creating a VM copies ``seed_pool/<template>`` to ``running_pool/<vm>`` and
rewrites its ``vm.cfg`` the way the OVS agent does; deleting removes it; importing a
template requires ``seed_pool/<name>/vm.cfg``.

The agent's Xen side, when *xen_state* is given: a VM that runs is a domain file in
``<xen_state>/domains`` in the format of the Xen test double (``tests/fixtures/xen/
xl_double.py``, installed on the dom0 sshd as ``xentop``), so ``xentop -b`` on dom0 shows
it with the use figures of :attr:`OvmManager.load` (CPU load, disk and network rates).

VNC display (``VirtualMachine.vncPort`` / ``vncPassword``, real fields; ``getVncPassword``,
a real operation name): a VM gets a console password at creation (the config's, else a
random one: the 2.2 Manager asked for one when creating a VM [infer]) and a port from
5900 up while it runs (xend's ``vncunused``: the first free one). Boot device
(``VirtualMachine.bootDevice``, the 2.2 constants ``PXE``/``HDD``/``CDROM``): changed by
``configVM`` while the VM is off and written into ``vm.cfg`` as the agent would [infer]:
an HVM guest gets ``boot = 'n'|'c'|'d'``, a PV guest boots from the network through
``pypxeboot`` (``bootloader``/``bootargs = 'mac=...'``, as in the real xm sample
``xm-pv-bootloader-pypxeboot.cfg``) or from its disk through ``pygrub``; a PV guest cannot
boot from a CD (fault).

HTTP Basic is required on SOAP calls (not on WSDL downloads). ``fail_next[op] = text``
makes the next call of *op* fault (tests of half-done imports).

Run on its own: ``python -m tests.simulators.ovm --port 8888 [--tls] [--ovs DIR]``.

What it must never do: listen beyond loopback by default, or touch files outside its
``/OVS`` directory.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import os
import re
import shutil
import tempfile
import threading
import time
import uuid as uuidlib
from pathlib import Path

from lxml import etree

from nodemgr.plugins.ovm.soap import SERVICES, TYPES_NS, build_wsdl
from tests.simulators.serving import LoopbackServer

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ovm"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"

#: Display strings and codes of VmStatus. The real strings/codes were not visible [gap];
#: the UI showed "Running", "Powered Off", ... [infer].
STATUS_CODES = {"Running": 1, "Powered Off": 2, "Paused": 3, "Suspended": 4, "Error": 5,
                "Unknown": 6}
#: operation -> (states it is allowed from, resulting state); reference §2.4 (javadoc).
TRANSITIONS = {
    "powerOn": ({"Powered Off", "Unknown", "Error"}, "Running"),
    "powerOff": ({"Running", "Paused", "Unknown", "Error"}, "Powered Off"),
    "shutdown": ({"Running"}, "Powered Off"),
    "reboot": ({"Running"}, "Running"),
    "pause": ({"Running"}, "Paused"),
    "suspend": ({"Running"}, "Suspended"),
    "liveMigrate": ({"Running"}, "Running"),
    "unpause": ({"Paused"}, "Running"),
    "resume": ({"Suspended"}, "Running"),
    "deleteVMByVMId": ({"Powered Off", "Error", "Unknown"}, None),
    "saveAsTemplate": ({"Powered Off"}, "Powered Off"),
    "configVM": ({"Powered Off"}, "Powered Off"),
}


class Fault(Exception):
    """Answered as a SOAP 1.1 ``soap:Server`` fault with this faultstring."""


class OvmManager:
    """The simulated manager's state and operations.

    Args:
        ovs_root: directory standing for the pool master's ``/OVS``.
        username, password: the HTTP Basic credentials accepted.
        master_ip: the master server's ``ip`` (where the driver SSHes to).
        xen_state: the Xen double's state directory on dom0 (running VMs become domain
            files there), or None.
    """

    def __init__(self, ovs_root: str | Path, username: str = "admin",
                 password: str = "password", master_ip: str = "127.0.0.1",
                 xen_state: str | Path | None = None) -> None:
        self.ovs = Path(ovs_root)
        self.xen = Path(xen_state) if xen_state else None
        #: VM name -> use figures of its domain (``load`` CPUs' worth, ``*_bps`` rates)
        self.load: dict[str, dict[str, float]] = {}
        for d in ("running_pool", "seed_pool", "iso_pool", "sharedDisk"):
            (self.ovs / d).mkdir(parents=True, exist_ok=True)
            self._own(self.ovs / d)
        self.username, self.password = username, password
        self.lock = threading.RLock()
        self.ids = itertools.count(100)
        self.pool = {"haEnable": False, "description": "simulated pool", "status": "Active",
                     "serverPoolId": 1, "serverPoolName": "pool1", "serverPoolVirtualIP": None}
        self.servers = {name: self._server(sid, name, master_ip, mem)
                        for sid, name, mem in ((11, "ovs1", 16384), (12, "ovs2", 8192))}
        self.master_name = "ovs1"
        self.vms: dict[int, dict] = {}
        self.templates: dict[int, dict] = {}
        self.fail_next: dict[str, str] = {}
        self.messages: list[tuple[str, str, bytes, bytes]] = []

    def _own(self, path: Path) -> None:
        st = os.stat(self.ovs)
        for p in [path, *(path.rglob("*") if path.is_dir() else [])]:
            os.lchown(p, st.st_uid, st.st_gid)

    @staticmethod
    def _server(sid: int, name: str, ip: str, mem: int) -> dict:
        return {"comments": None, "platform": "x86_64", "memAmount": mem, "supportHVM": True,
                "serverType": "Server Pool Master,Utility Server,Virtual Machine Server",
                "loginUsername": "root", "status": "Active", "serverTypeDisplay": None,
                "memFree": mem, "serverId": sid, "vmList": None, "serverPool": None,
                "architecture": "x86_64", "hdAmount": 500000, "loginPassword": None,
                "agentPwd": None, "serverName": name, "location": None, "ip": ip,
                "cpuNum": 4, "hdFree": 400000}

    # helpers ---------------------------------------------------------------------------
    def _vm_by_id(self, vm_id) -> dict:
        vm = self.vms.get(int(vm_id or 0))
        if vm is None:
            raise Fault(f"Virtual machine {vm_id} not found")
        return vm

    def _vm(self, vm: dict | None) -> dict:
        return self._vm_by_id((vm or {}).get("imgId"))

    @staticmethod
    def _state(vm: dict) -> str:
        return vm["status"]["status"]

    def _set_state(self, vm: dict, state: str) -> None:
        old = (vm.get("status") or {}).get("status")
        vm["status"] = {"code": STATUS_CODES[state], "status": state, "vmId": vm["imgId"]}
        if state == "Running" and not vm.get("poweronTime"):
            vm["poweronTime"] = int(time.time() * 1000)
        if state == "Powered Off":
            vm["poweronTime"] = None
        if state in ("Running", "Paused"):
            if old not in ("Running", "Paused"):
                used = {v["vncPort"] for v in self.vms.values() if v.get("vncPort")}
                vm["vncPort"] = next(p for p in itertools.count(5900) if p not in used)
            self._domain(vm, "p" if state == "Paused" else "r")
        else:
            vm["vncPort"] = None
            self._domain(vm, None)

    def _domain(self, vm: dict, state: str | None) -> None:
        """Create/update (*state* ``r``/``p``) or remove (None) the VM's Xen domain file."""
        if self.xen is None:
            return
        import json

        doms = self.xen / "domains"
        doms.mkdir(parents=True, exist_ok=True)
        path = doms / f"{vm['imgName']}.json"
        if state is None:
            path.unlink(missing_ok=True)
            return
        try:
            cfg = _cfg_values(self._path(vm["location"]) / "vm.cfg")
        except (OSError, Fault):
            cfg = {}
        old = json.loads(path.read_text()) if path.exists() else {}
        d = {"name": cfg.get("name") or vm["imgName"], "domid": old.get("domid") or vm["imgId"],
             "memory": vm["memory"], "vcpus": vm["cpuNumber"], "uuid": vm["uuid"],
             "state": state + "-----" if state == "r" else "--p---",
             "cpu_time": old.get("cpu_time", 0.0), "started": old.get("started", time.time()),
             "config": {"vif": cfg.get("vif", []), "disk": cfg.get("disk", []),
                        "maxmem": vm["maximumMemory"]},
             **self.load.get(vm["imgName"], {})}
        tmp = doms / f".{vm['imgName']}.tmp"
        tmp.write_text(json.dumps(d))
        tmp.rename(path)
        self._own(doms)

    def _check(self, op: str, vm: dict) -> str | None:
        allowed, new = TRANSITIONS[op]
        state = self._state(vm)
        if state not in allowed:
            raise Fault(f"Operation {op} is not allowed for virtual machine {vm['imgName']} "
                        f"in status {state}")
        return new

    def public(self, vm: dict) -> dict:
        return {k: v for k, v in vm.items() if not k.startswith("_")}

    # ServerPoolService (real shapes) ---------------------------------------------------------
    def getAllServerPools(self):
        return [self.pool]

    def getServerPoolByName(self, poolName=None):
        if poolName != self.pool["serverPoolName"]:
            raise Fault(f"Server pool {poolName} not found")
        return self.pool

    def getServerPoolById(self, poolId=None):
        if int(poolId or 0) != self.pool["serverPoolId"]:
            raise Fault(f"Server pool {poolId} not found")
        return self.pool

    def getMasterServer(self, serverPool=None):
        self.getServerPoolByName((serverPool or {}).get("serverPoolName"))
        s = dict(self.servers[self.master_name])
        return s

    def getAllMembers(self, serverPool=None):
        return list(self.servers.values())

    def getVirtualServerByServerPool(self, serverPoolID=None):
        self.getServerPoolById(serverPoolID)
        return list(self.servers.values())

    def getVirtualServerByName(self, serverPoolName=None, virtualServerName=None):
        self.getServerPoolByName(serverPoolName)
        if virtualServerName not in self.servers:
            raise Fault(f"Virtual server {virtualServerName} not found")
        return self.servers[virtualServerName]

    def getVirtualServerMetrics(self, virtualServerIDList=None):
        out = []
        for sid in virtualServerIDList or []:
            s = next((s for s in self.servers.values() if s["serverId"] == sid), None)
            if s is None:
                raise Fault(f"Virtual server {sid} not found")
            used = sum(v["memory"] for v in self.vms.values()
                       if v["_server"] == s["serverName"] and self._state(v) != "Powered Off")
            out.append({"freeDiskSpace": s["hdFree"], "virtualServerID": sid,
                        "cpuSpeedMHZ": 2400, "freeMemory": s["memAmount"] - used,
                        "allocatedVCpu": sum(v["cpuNumber"] for v in self.vms.values()
                                             if v["_server"] == s["serverName"]),
                        "totalMemory": s["memAmount"], "numOfPhysicalCPU": s["cpuNum"],
                        "virtualServerName": s["serverName"], "cpuUtil": None})
        return out

    # VirtualMachineService [infer] --------------------------------------------------------------
    def getAllVMs(self, serverPool=None):
        return [self.public(v) for v in self.vms.values()]

    def getVMByName(self, serverPoolName=None, name=None):
        self.getServerPoolByName(serverPoolName)
        for v in self.vms.values():
            if v["imgName"] == name:
                return self.public(v)
        raise Fault(f"Virtual machine {name} not found in server pool {serverPoolName}")

    def getVM(self, vm=None):
        return self.public(self._vm(vm))

    def getAssociatedServer(self, vm=None):
        v = self._vm(vm)
        return self.servers[v["_server"]] if self._state(v) != "Powered Off" else None

    def getRealPath(self, vm=None):
        return self._vm(vm)["location"]

    def _power(self, op, vm):
        v = self._vm(vm)
        new = self._check(op, v)
        self._set_state(v, new)
        return self.public(v)

    def powerOn(self, vm=None):
        v = self._vm(vm)
        cfg = self._path(v["location"]) / "vm.cfg"
        if not cfg.exists():
            raise Fault(f"vm.cfg of {v['imgName']} is missing")
        return self._power("powerOn", vm)

    def powerOff(self, vm=None):
        return self._power("powerOff", vm)

    def shutdown(self, vm=None):
        return self._power("shutdown", vm)

    def reboot(self, vm=None):
        return self._power("reboot", vm)

    def pause(self, vm=None):
        return self._power("pause", vm)

    def unpause(self, vm=None):
        return self._power("unpause", vm)

    def suspend(self, vm=None):
        return self._power("suspend", vm)

    def resume(self, vm=None):
        return self._power("resume", vm)

    def deleteVMByVMId(self, vmId=None):
        v = self._vm_by_id(vmId)
        self._check("deleteVMByVMId", v)
        shutil.rmtree(self._path(v["location"]), ignore_errors=True)
        del self.vms[v["imgId"]]

    def getVncPassword(self, vm=None):
        return self._vm(vm)["vncPassword"]

    def getVMMetrics(self, vm=None):
        v = self._vm(vm)
        on = self._state(v) == "Running"
        up = (time.time() * 1000 - v["poweronTime"]) / 1000 if on and v["poweronTime"] else 0
        return {"vmId": v["imgId"], "cpuUtil": 3.5 if on else 0.0,
                "memoryUsed": v["memory"] if on else 0, "cpuTime": int(up)}

    def saveAsTemplate(self, vm=None, templateName=None):
        v = self._vm(vm)
        self._check("saveAsTemplate", v)
        if any(t["templateName"] == templateName for t in self.templates.values()):
            raise Fault(f"Template {templateName} already exists")
        src, dst = self._path(v["location"]), self.ovs / "seed_pool" / templateName
        shutil.copytree(src, dst)
        self._rewrite_cfg(dst / "vm.cfg", templateName, f"/OVS/seed_pool/{templateName}",
                          None)
        self._own(dst)
        t = self._template(templateName, "Approved")
        return t

    # LifecycleService [infer] -----------------------------------------------------------------
    def createVmBasedOnTemplate(self, templateVmConfig=None):
        c = templateVmConfig or {}
        name, tname = c.get("vmName"), c.get("templateName")
        self.getServerPoolByName(c.get("serverPoolName"))
        t = next((t for t in self.templates.values() if t["templateName"] == tname), None)
        if t is None:
            raise Fault(f"Template {tname} not found")
        if t["status"] != "Approved":
            raise Fault(f"Template {tname} is not approved")
        if not name or not re.match(r"^[A-Za-z0-9_.-]+$", name):
            raise Fault(f"Invalid virtual machine name {name!r}")
        if any(v["imgName"] == name for v in self.vms.values()):
            raise Fault(f"Virtual machine {name} already exists")
        server = c.get("virtualServerName") or self.master_name
        if server not in self.servers:
            raise Fault(f"Virtual server {server} not found")
        src, dst = self.ovs / "seed_pool" / tname, self.ovs / "running_pool" / name
        if dst.exists():
            raise Fault(f"/OVS/running_pool/{name} already exists")
        shutil.copytree(src, dst)
        mac = "00:16:3e:" + ":".join(f"{b:02x}" for b in os.urandom(3))
        vm_uuid = str(uuidlib.uuid4())
        self._rewrite_cfg(dst / "vm.cfg", name, f"/OVS/running_pool/{name}", mac,
                          memory=c.get("memory"), vcpus=c.get("cpuNumber"), uuid=vm_uuid)
        self._own(dst)
        vm_id = next(self.ids)
        hvm = _cfg_values(dst / "vm.cfg").get("builder") == "hvm"
        vm = {"imgName": name, "comments": None, "imgId": vm_id,
              "bootDevice": {"bootDevice": "HDD"}, "imgSize": None,
              "vncPassword": c.get("vncPassword") or base64.b32encode(os.urandom(5)).decode(),
              "maximumMemory": c.get("memory") or 512, "publish": None,
              "cpuNumber": c.get("cpuNumber") or 1, "haEnable": False,
              "uuid": vm_uuid, "operatingSystemName": "Oracle Enterprise Linux 5",
              "createTime": int(time.time() * 1000), "parentImg": t["templateId"],
              "systemPassword": None, "location": f"/OVS/running_pool/{name}",
              "memory": c.get("memory") or 512, "systemLogin": None, "platform": "x86_64",
              "deploy": None, "status": None, "vncPort": None, "imgIp": None,
              "poweronTime": None, "architecture": "x86_64",
              "virtualMachineType": {"vmType": "VM_TYPE_HVM" if hvm else "VM_TYPE_PVM"},
              "keyboardLayout": "en-us",
              "pvdriver": True, "_server": server}
        self._set_state(vm, "Powered Off")
        self.vms[vm_id] = vm
        return self.public(vm)

    def liveMigrate(self, vm=None, virtualServer=None):
        v = self._vm(vm)
        self._check("liveMigrate", v)
        name = (virtualServer or {}).get("serverName")
        if name not in self.servers:
            raise Fault(f"Virtual server {name} not found")
        if name == v["_server"]:
            raise Fault(f"Virtual machine {v['imgName']} is already on {name}")
        v["_server"] = name
        return self.public(v)

    def configVM(self, vm=None):
        v = self._vm(vm)
        self._check("configVM", v)
        v["memory"] = v["maximumMemory"] = int(vm.get("memory") or v["memory"])
        v["cpuNumber"] = int(vm.get("cpuNumber") or v["cpuNumber"])
        cfg = self._path(v["location"]) / "vm.cfg"
        self._rewrite_cfg(cfg, v["imgName"], v["location"], None, memory=v["memory"],
                          vcpus=v["cpuNumber"])
        boot = ((vm or {}).get("bootDevice") or {}).get("bootDevice")
        if boot and boot != v["bootDevice"]["bootDevice"]:
            self._set_boot(v, cfg, boot)
        return self.public(v)

    def _set_boot(self, v: dict, cfg: Path, boot: str) -> None:
        """The agent's rewrite of ``vm.cfg`` for boot device *boot* (see the module doc)."""
        if boot not in ("PXE", "HDD", "CDROM"):
            raise Fault(f"Invalid boot device {boot}")
        text = cfg.read_text()
        if v["virtualMachineType"]["vmType"] == "VM_TYPE_HVM":
            text = _set_line(text, "boot", {"PXE": "n", "HDD": "c", "CDROM": "d"}[boot])
        elif boot == "CDROM":
            raise Fault(f"Virtual machine {v['imgName']} is paravirtualized and cannot boot "
                        "from a CDROM")
        else:
            macs = re.findall(r"mac=([0-9A-Fa-f:]{17})", text)
            pxe = boot == "PXE"
            text = _set_line(text, "bootloader", "/usr/bin/pypxeboot" if pxe
                             else "/usr/bin/pygrub")
            text = _set_line(text, "bootargs", f"mac={macs[0]}" if pxe and macs else None)
        cfg.write_text(text)
        v["bootDevice"] = {"bootDevice": boot}

    def addDisk(self, vm=None, diskConfig=None):
        v = self._vm(vm)
        d = diskConfig or {}
        path = self._path(v["location"]) / f"{d.get('diskName')}.img"
        if path.exists():
            raise Fault(f"Disk {d.get('diskName')} already exists")
        with open(path, "wb") as fh:
            fh.truncate(int(d.get("diskSize") or 1) * 1024 * 1024)
        self._own(path)

    def attachCDtoVM(self, vm=None, cdConfig=None):
        v = self._vm(vm)
        iso = (cdConfig or {}).get("isoName")
        if not (self.ovs / "iso_pool" / str(iso)).exists():
            raise Fault(f"ISO {iso} not found in /OVS/iso_pool")
        v["_cd"] = iso

    def detachCD(self, vm=None):
        self._vm(vm).pop("_cd", None)

    # ResourceService [infer] -------------------------------------------------------------------
    def _template(self, name: str, status: str) -> dict:
        tid = next(self.ids)
        t = {"templateId": tid, "templateName": name, "serverPoolName": "pool1",
             "status": status, "location": f"/OVS/seed_pool/{name}", "description": None}
        self.templates[tid] = t
        return t

    def getAllTemplates(self, serverPoolName=None):
        self.getServerPoolByName(serverPoolName)
        return list(self.templates.values())

    def getTemplateByName(self, serverPoolName=None, templateName=None):
        self.getServerPoolByName(serverPoolName)
        for t in self.templates.values():
            if t["templateName"] == templateName:
                return t
        raise Fault(f"Template {templateName} not found")

    def importTemplate(self, serverPoolName=None, templateName=None, description=None):
        self.getServerPoolByName(serverPoolName)
        if not templateName or not (self.ovs / "seed_pool" / templateName / "vm.cfg").is_file():
            raise Fault(f"Template {templateName} not found in /OVS/seed_pool of the master")
        if any(t["templateName"] == templateName for t in self.templates.values()):
            raise Fault(f"Template {templateName} already exists")
        t = self._template(templateName, "Pending")
        t["description"] = description
        return t

    def approveTemplate(self, templateId=None):
        t = self.templates.get(int(templateId or 0))
        if t is None:
            raise Fault(f"Template {templateId} not found")
        t["status"] = "Approved"
        return t

    def deleteTemplate(self, templateId=None):
        t = self.templates.pop(int(templateId or 0), None)
        if t is None:
            raise Fault(f"Template {templateId} not found")
        shutil.rmtree(self.ovs / "seed_pool" / t["templateName"], ignore_errors=True)

    # files ---------------------------------------------------------------------------------------
    def _path(self, ovs_path: str) -> Path:
        rel = ovs_path.removeprefix("/OVS/").strip("/")
        p = (self.ovs / rel).resolve()
        if not str(p).startswith(str(self.ovs.resolve())):
            raise Fault(f"path {ovs_path} is outside /OVS")
        return p

    def _rewrite_cfg(self, cfg: Path, name: str, location: str, mac: str | None,
                     memory=None, vcpus=None, uuid: str | None = None) -> None:
        """What the agent does to a copied vm.cfg: name, disk paths, uuid, MAC, memory."""
        text = cfg.read_text()
        text = re.sub(r"/OVS/(seed_pool|running_pool)/[^/,']+", location, text)
        text = re.sub(r"(?m)^name\s*=.*$", f"name = '{name}'", text)
        if uuid or mac:  # a new VM (not a configVM rewrite) gets its UUID
            text = re.sub(r"(?m)^uuid\s*=.*$", f"uuid = '{uuid or uuidlib.uuid4()}'", text)
        if mac:
            text = re.sub(r"mac=[0-9A-Fa-f:]{17}", f"mac={mac}", text, count=1)
        if memory:
            text = re.sub(r"(?m)^memory\s*=.*$", f"memory = '{int(memory)}'", text)
        if vcpus:
            text = re.sub(r"(?m)^vcpus\s*=.*$", f"vcpus = {int(vcpus)}", text)
        cfg.write_text(text)


def _cfg_values(cfg: Path) -> dict:
    """The ``key = value`` settings of a vm.cfg (Python literals, as xm reads them)."""
    import ast

    out = {}
    for node in ast.parse(cfg.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return out


def _set_line(text: str, key: str, value: str | None) -> str:
    """*text* with ``key = 'value'`` set (appended when missing; removed for None)."""
    pat = re.compile(rf"(?m)^{key}\s*=.*\n?")
    line = f"{key} = '{value}'\n" if value is not None else ""
    if pat.search(text):
        return pat.sub(line, text, count=1)
    return text + ("" if text.endswith("\n") or not line else "\n") + line


# -- SOAP over WSGI ----------------------------------------------------------------------------


class SoapApp:
    """WSGI application: WSDL downloads and SOAP calls for :class:`OvmManager`."""

    def __init__(self, manager: OvmManager) -> None:
        from zeep import Client

        self.m = manager
        self.spool = (FIXTURES / "ovm22_ServerPoolService.reconstructed.wsdl").read_text()
        self.tmp = tempfile.mkdtemp(prefix="ovm-sim-wsdl-")
        self.clients = {}
        for svc in SERVICES:
            path = os.path.join(self.tmp, f"{svc}.wsdl")
            Path(path).write_text(build_wsdl(svc, self.spool, f"http://localhost/OVSWS/{svc}"))
            self.clients[svc] = Client(path)

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        method = environ["REQUEST_METHOD"]
        m = re.fullmatch(r"/OVSWS/(\w+?)(\.wsdl)?", path)
        if m is None or m.group(1) not in self.clients:
            return self._reply(start_response, "404 Not Found", b"not found", "text/plain")
        svc = m.group(1)
        if m.group(2) or (method == "GET" and "wsdl" in environ.get("QUERY_STRING", "")):
            scheme = environ.get("wsgi.url_scheme", "http")
            host = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
            text = build_wsdl(svc, self.spool, f"{scheme}://{host}/OVSWS/{svc}")
            return self._reply(start_response, "200 OK", text.encode(), "text/xml")
        if method != "POST":
            return self._reply(start_response, "405 Method Not Allowed", b"", "text/plain")
        if not self._authorized(environ.get("HTTP_AUTHORIZATION", "")):
            return self._reply(start_response, "401 Unauthorized", b"unauthorized",
                               "text/plain", [("WWW-Authenticate", 'Basic realm="OVSWS"')])
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        status, out, op = self.handle(svc, body)
        self.m.messages.append((svc, op, body, out))
        return self._reply(start_response, status, out, "text/xml; charset=utf-8")

    def _authorized(self, header: str) -> bool:
        if not header.startswith("Basic "):
            return False
        try:
            user, _, pw = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return user == self.m.username and pw == self.m.password

    @staticmethod
    def _reply(start_response, status, body: bytes, ctype: str, headers=()):
        start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body))),
                                *headers])
        return [body]

    def handle(self, svc: str, body: bytes) -> tuple[str, bytes, str]:
        """(HTTP status, response envelope, operation) for one SOAP request."""
        from zeep.helpers import serialize_object

        client = self.clients[svc]
        try:
            env = etree.fromstring(body)
            node = env.find(f"{{{SOAP_ENV}}}Body")[0]
        except (etree.XMLSyntaxError, TypeError, IndexError):
            return "500 Internal Server Error", fault("Client", "malformed SOAP request"), "?"
        qn = etree.QName(node)
        op = qn.localname.removesuffix("Element")
        handler = getattr(self.m, op, None)
        try:
            req_el = client.get_element(f"{{{TYPES_NS}}}{qn.localname}")
            resp_el = client.get_element(f"{{{TYPES_NS}}}{op}ResponseElement")
        except Exception:  # noqa: BLE001 - zeep's LookupError family
            return "500 Internal Server Error", fault("Client", f"unknown operation {op}"), op
        if handler is None:
            return "500 Internal Server Error", fault("Server", f"{op} is not simulated"), op
        args = serialize_object(req_el.parse(node, client.wsdl.types), target_cls=dict) or {}
        try:
            with self.m.lock:
                if op in self.m.fail_next:
                    raise Fault(self.m.fail_next.pop(op))
                result = handler(**args)
        except Fault as exc:
            return "500 Internal Server Error", fault("Server", str(exc)), op
        envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"env": SOAP_ENV})
        b = etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body")
        has_result = "result" in [name for name, _ in resp_el.type.elements]
        value = resp_el(result=result) if has_result else resp_el()
        resp_el.render(b, value)
        return "200 OK", etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"), op


def fault(code: str, text: str) -> bytes:
    """A SOAP 1.1 fault envelope."""
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"env": SOAP_ENV})
    f = etree.SubElement(etree.SubElement(env, f"{{{SOAP_ENV}}}Body"), f"{{{SOAP_ENV}}}Fault")
    etree.SubElement(f, "faultcode").text = f"env:{code}"
    etree.SubElement(f, "faultstring").text = text
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


class Server(LoopbackServer):
    """The simulator on a loopback port in a background thread (tests):
    ``with Server(OvmManager(dir)) as s: s.url``."""

    def __init__(self, manager: OvmManager, port: int = 0, ssl_context=None,
                 host: str = "127.0.0.1") -> None:
        self.manager = manager
        self.app = SoapApp(manager)
        super().__init__(self.app, port, ssl_context, host)
        scheme = "https" if ssl_context else "http"
        self.url = f"{scheme}://{host}:{self.port}/OVSWS"

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        self.app.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.simulators.ovm --port N [--tls] [--ovs DIR] [--password P]``"""
    import ssl

    from tests.simulators.ovirt import self_signed

    p = argparse.ArgumentParser(prog="python -m tests.simulators.ovm",
                                description="Simulated Oracle VM Manager 2.x web services "
                                "(user admin, HTTP Basic).")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--tls", action="store_true", help="serve HTTPS with a fresh test CA "
                   "(its path is printed)")
    p.add_argument("--password", default="password")
    p.add_argument("--ovs", help="directory standing for the master's /OVS (default: a new "
                   "temporary directory)")
    a = p.parse_args(argv)
    ctx = None
    if a.tls:
        d = Path(tempfile.mkdtemp(prefix="ovm-sim-"))
        ca, cert, key = self_signed(d, ("localhost", a.host))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        print(f"CA certificate: {ca}", flush=True)
    ovs = a.ovs or tempfile.mkdtemp(prefix="ovm-sim-OVS-")
    srv = Server(OvmManager(ovs, password=a.password), a.port, ctx, a.host)
    print(f"serving {srv.url}/<Service>.wsdl (/OVS = {ovs})", flush=True)
    try:
        srv.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.app.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
