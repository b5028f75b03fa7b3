"""A Flask app that behaves like an oVirt / RHEV-M engine for the subset nodemgr uses.

Serves API v4 (``/ovirt-engine/api``) and v3 (``/api`` on a RHEV-M 3.x, or ``Version: 3``
on a 4.0/4.1 engine), with: state transitions over time (down → wait_for_launch →
powering_up → up, powering_down, saving_state → suspended, restoring_state, migrating,
reboot_in_progress, image_locked while disks are copied, host installing → up,
preparing_for_maintenance → maintenance), jobs, ``async=true`` actions (202), ``?search=
name=...``, the engine's fault shapes (409 ``[Cannot run VM. VM is running.]``, 404 with an
empty body, 401 HTML with ``WWW-Authenticate``, 400 ``Incomplete parameters``), HTTP Basic
with ``Prefer: persistent-auth`` sessions (JSESSIONID) and SSO bearer tokens, revoked by
``/ovirt-engine/services/sso-logout`` (GET or POST, ``token``/``scope`` parameters, JSON
answer, as ovirt-engine's SsoLogoutServlet). A start is validated as RunVmValidator does:
booting from the hard disk alone needs a disk, from the network alone a NIC (409 with the
engine's AppErrors wording, 3.x and 4.x). Single sub-resources are served as their
collection shows them (``vms/{id}/nics/{id}``, ``diskattachments/{id}``, ``statistics/{id}``,
``hosts/{id}/nics/{id}``, ``hosts/{id}/statistics[/{id}]``).

Every representation is rendered from a real recording (``tests/fixtures/ovirt/v4``): the
recorded object is the skeleton and the simulator's state is written into it, so elements
the simulator does not model keep their real shape (``test_ovirt_fidelity.py`` checks it).
v3 is derived from v4 by the documented differences (``<status><state>``, attributes for
topology, MAC, version, boot devices, a cluster's ``<cpu id="...">``; ``/api`` hrefs), and a
v3 ``<host_nics>`` starts with the collection's ``<actions>`` (``setupnetworks``).

Cloud-init: a VM keeps the ``<initialization>`` of its add/update (shown on GET in place of
the recording's empty one; ``root_password`` is write-only, as on the engine); a start
with ``use_cloud_init=true`` boots with the action's ``vm/initialization`` (else the VM's
own), kept as ``cloud_init`` in the VM's state, and the running guest then reports that
configuration's static address in its reported devices (as a guest that applied it would).

Run on its own: ``python -m tests.simulators.ovirt --port 8443 [--tls] [--password P]
[--api 4|3|both]``; it accepts ``admin@internal``, and starts with a ``Default`` data center
and cluster, the ``Blank`` template and one host. Test code only; it must never be
imported by nodemgr itself.
"""

from __future__ import annotations

import argparse
import base64
import copy
import itertools
import re
import secrets
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

from flask import Flask, Response, request

from nodemgr.plugins.rhevm import api
from tests.simulators.serving import LoopbackServer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ovirt" / "v4"
BLANK_ID = "00000000-0000-0000-0000-000000000000"
V4 = "/ovirt-engine/api"
GIB = 1024 ** 3


#: Typos in the official documentation examples (ovirt-engine-api-model@4fb1a804), kept
#: verbatim in the fixtures and repaired here, exactly and only where they occur:
#: file -> [(as printed in the docs, repaired)]
DOC_TYPOS = {
    "model_docs/vm_start_cloud_init.http": [("<gateway>192.168.0.1</netmask>",
                                             "<gateway>192.168.0.1</gateway>")],
    "model_docs/vms_add_from_template_clone.http": [("myvm<name>", "myvm</name>"),
                                                    ("mytemplate<name>", "mytemplate</name>"),
                                                    ("mycluster<name>", "mycluster</name>")],
}


def split_http(text: str, name: str = "") -> dict:
    """Split a documentation ``.http`` example into its parts.

    Format (as extracted from ovirt-engine-api-model): an optional request line
    (``POST /ovirt-engine/api/vms HTTP/1.1``) with headers, then XML documents whose root
    elements start in column 0; an ``HTTP/1.1 201 Created`` status line (plus headers)
    marks the documents after it as the response. Without a status line, two documents are
    request and response; a single one is the response of a GET and the request otherwise.
    Lines holding only ``...`` (the docs' ellipsis) are dropped; :data:`DOC_TYPOS` are
    repaired.

    Returns:
        ``{"method": str|None, "path": str|None, "status": int|None,
        "request": Element|None, "response": Element|None}``.
    Raises:
        xml.etree.ElementTree.ParseError: a body that is not well-formed.
    """
    for wrong, right in DOC_TYPOS.get(name, []):
        text = text.replace(wrong, right)
    method = path = status = None
    docs: list[tuple[bool, list[str]]] = []  # (after a status line, lines)
    in_response = False
    cur: list[str] | None = None
    for line in text.splitlines():
        if line.strip() == "...":
            continue
        if cur is None and line.startswith("HTTP/1."):
            in_response, status = True, int(line.split()[1])
            continue
        if cur is None and method is None and not docs and re.match(r"[A-Z]+ /", line):
            method, path = line.split()[:2]
            continue
        if cur is None:
            if line.startswith("<") and not line.startswith("</"):
                cur = [line]
                docs.append((in_response, cur))
                if line.rstrip().endswith("/>") and line.count("<") == 1:
                    cur = None
            continue  # headers and blank lines between documents
        cur.append(line)
        if line.startswith("</"):
            cur = None
    parsed = [(resp, ET.fromstring("\n".join(lines).strip())) for resp, lines in docs]
    request_doc = next((x for resp, x in parsed if not resp), None)
    response_doc = next((x for resp, x in parsed if resp), None)
    if response_doc is None and status is None:
        plain = [x for _, x in parsed]
        if len(plain) >= 2:
            request_doc, response_doc = plain[0], plain[1]
        elif plain and method in ("GET", None):
            request_doc, response_doc = None, plain[0]
    return {"method": method, "path": path, "status": status, "request": request_doc,
            "response": response_doc}


def load_xml(name: str) -> ET.Element:
    """A recording under the fixtures: ``.xml`` as is (``...`` lines dropped); for a
    documentation ``.http`` example its response body, else its request body
    (:func:`split_http`)."""
    raw = (FIXTURES / name).read_text()
    if name.endswith(".http"):
        parts = split_http(raw, name)
        doc = parts["response"] if parts["response"] is not None else parts["request"]
        if doc is None:
            raise ValueError(f"{name} has no XML body")
        return doc
    raw = "\n".join(line for line in raw.splitlines() if line.strip() != "...")
    return ET.fromstring(raw.strip())


def _first(root: ET.Element, pred=lambda e: True) -> ET.Element:
    return next(e for e in root if e.tag != "link" and pred(e))


#: kind -> (recording, how to pick the object) — the skeleton of each representation
SKELETONS = {
    "vm": lambda: load_xml("v4_vm_get.xml"),
    "cluster": lambda: _first(load_xml("v4_clusters_list.xml")),
    "data_center": lambda: _first(load_xml("v4_datacenters_list.xml")),
    "storage_domain": lambda: _first(load_xml("v4_datacenter_storagedomains.xml"),
                                     lambda e: api.text(e, "storage/type") == "nfs"),
    "network": lambda: _first(load_xml("v4_networks_list.xml")),
    "vnic_profile": lambda: _first(load_xml("v4_vnicprofiles_list.xml")),
    "template": lambda: _first(load_xml("v4_templates_search_vm_id.xml")),
    "disk": lambda: _first(load_xml("v4_disks_list.xml"),
                           lambda e: api.text(e, "content_type") == "data"),
    "disk_attachment": lambda: _first(load_xml("v4_vm_diskattachments.xml")),
    "host": lambda: _first(load_xml("model_docs/quickstart_hosts_list.http")),
    "host_nic": lambda: _first(load_xml("v4_host_nics.xml")),
    "nic": lambda: load_xml("model_docs/vm_nics_add.http"),
    "statistic": lambda: _first(load_xml("model_docs/vm_statistics_list.http")),
    "host_statistic": lambda: _first(load_xml("model_docs/host_statistics_list.xml")),
    "job": lambda: _first(load_xml("model_docs/jobs_list.http")),
    "reported_device": lambda: _first(load_xml("v4_vm_reporteddevices.xml")),
    "action": lambda: load_xml("real_action_response_with_job.xml"),
    "api": lambda: load_xml("model_docs/api_root_4.0.4.xml"),
}

COLL = {"vms": "vm", "hosts": "host", "clusters": "cluster", "datacenters": "data_center",
        "storagedomains": "storage_domain", "networks": "network", "templates": "template",
        "vnicprofiles": "vnic_profile", "jobs": "job", "disks": "disk"}
PLURAL = {"vm": "vms", "host": "hosts", "cluster": "clusters", "data_center": "data_centers",
          "storage_domain": "storage_domains", "network": "networks", "template": "templates",
          "vnic_profile": "vnic_profiles", "job": "jobs", "disk": "disks", "nic": "nics",
          "host_nic": "host_nics", "disk_attachment": "disk_attachments",
          "statistic": "statistics", "host_statistic": "statistics",
          "reported_device": "reported_devices", "graphics_console": "graphics_consoles"}


class Fault(Exception):
    """An engine error answer: HTTP *code*, fault *reason*/*detail* (None: empty body)."""

    def __init__(self, code: int, detail: str | None = None, reason: str = "Operation Failed",
                 action: bool = False):
        super().__init__(detail)
        self.code, self.detail, self.reason, self.action = code, detail, reason, action


def _setp(e: ET.Element, path: str, value) -> ET.Element:
    """Set the text of *path* under *e*, creating elements on the way."""
    cur = e
    for part in path.split("/"):
        nxt = cur.find(part)
        if nxt is None:
            nxt = ET.SubElement(cur, part)
        cur = nxt
    cur.text = None if value is None else str(value)
    return cur


def _link(e: ET.Element, tag: str, href: str | None, id_: str | None) -> None:
    old = e.find(tag)
    if id_ is None:
        if old is not None:
            e.remove(old)
        return
    if old is None:
        old = ET.SubElement(e, tag)
    old.attrib = {"href": href, "id": id_}
    for c in list(old):
        old.remove(c)


def _el(tag: str, value) -> ET.Element:
    e = ET.Element(tag)
    e.text = str(value)
    return e


def _retarget(e: ET.Element, old_href: str | None, new_href: str) -> None:
    for x in e.iter():
        h = x.get("href")
        if old_href and h and h.startswith(old_href):
            x.set("href", new_href + h[len(old_href):])


def _java_uuid(name: str) -> str:
    import hashlib

    b = bytearray(hashlib.md5(name.encode()).digest())
    b[6] = (b[6] & 0x0F) | 0x30
    b[8] = (b[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(b)))


class Engine:
    """The simulated engine's state. *step* is the seconds between status transitions;
    *api* is ``4`` (oVirt 4.2+: v4 only, ``/api`` is 404), ``3`` (RHEV-M 3.x: ``/api``
    only) or ``both`` (4.0/4.1)."""

    def __init__(self, password: str = "password", step: float = 0.05, api_mode: str = "4",
                 user: str = "admin@internal", ca_pem: bytes | None = None) -> None:
        self.user, self.password, self.step, self.api_mode = user, password, step, api_mode
        self.ca_pem = ca_pem
        self.lock = threading.RLock()
        self.objs: dict[str, dict[str, dict]] = {c: {} for c in COLL}
        self.sessions: set[str] = set()
        self.tokens: set[str] = set()
        self.logouts: list[tuple[str, dict]] = []  # (method, parameters) of sso-logout calls
        self.requests: list[tuple[str, str, dict]] = []  # (method, path, headers) log
        self.skel = {k: f() for k, f in SKELETONS.items()}
        self._mac = itertools.count(0x100)
        dc = self.add("datacenters", name="Default", status="up", local=False,
                      description="The default Data Center")
        cl = self.add("clusters", name="Default", data_center=dc, cpu_type="Intel Westmere Family",
                      networks=[])
        net = self.add("networks", name="ovirtmgmt", data_center=dc, vlan=None)
        self.add("vnicprofiles", name="ovirtmgmt", network=net)
        self.objs["clusters"][cl]["networks"].append(net)
        self.objs["templates"][BLANK_ID] = {"id": BLANK_ID, "name": "Blank", "status": "ok",
                                             "memory": GIB, "sockets": 1, "cores": 1,
                                             "cluster": None, "vm": None, "disks": [],
                                             "_trans": []}
        self.add("hosts", name="host1", address="host1.example.com", status="up", cluster=cl,
                 memory=16 * GIB)

    # -- state ---------------------------------------------------------------------------
    def add(self, coll: str, **fields) -> str:
        """Add an object to *coll*; returns its id."""
        oid = fields.pop("id", None) or str(uuid.uuid4())
        fields.update(id=oid, _trans=[])
        fields.setdefault("status", None)
        self.objs[coll][oid] = fields
        return oid

    def later(self, obj: dict, *states: str, after: float = 1.0) -> None:
        """Walk *obj* through *states*, one every ``step`` seconds (times *after* first)."""
        now = time.monotonic()
        obj["_trans"] = [(now + self.step * (after + i), s) for i, s in enumerate(states)]

    def tick(self) -> None:
        """Apply every transition that is due."""
        now = time.monotonic()
        for coll in self.objs.values():
            for obj in coll.values():
                while obj["_trans"] and obj["_trans"][0][0] <= now:
                    _, st = obj["_trans"].pop(0)
                    if callable(st):
                        st(obj)
                    else:
                        obj["status"] = st

    def by_name(self, coll: str, name: str) -> dict | None:
        return next((o for o in self.objs[coll].values() if o.get("name") == name), None)

    def mac(self) -> str:
        n = next(self._mac)
        return f"00:1a:4a:16:{n >> 8:02x}:{n & 0xff:02x}"

    def job(self, description: str, done_when) -> str:
        """A job that finishes when ``done_when()`` is true (checked on each tick)."""
        jid = self.add("jobs", name=description, status="started", start=time.time())
        j = self.objs["jobs"][jid]
        j["done_when"] = done_when
        return jid

    def tick_jobs(self) -> None:
        for j in self.objs["jobs"].values():
            if j["status"] == "started" and j["done_when"]():
                j["status"] = "finished"
                j["end"] = time.time()


# -- rendering ---------------------------------------------------------------------------------


class Renderer:
    """Build v4 elements from the skeletons; convert to v3."""

    def __init__(self, eng: Engine, base: str, version: str = "4") -> None:
        self.e, self.base, self.version = eng, base, version

    def href(self, coll: str, oid: str) -> str:
        return f"{V4}/{coll}/{oid}"

    def skel(self, kind: str, href: str, oid: str) -> ET.Element:
        x = copy.deepcopy(self.e.skel[kind])
        _retarget(x, x.get("href"), href)
        x.attrib = {"href": href, "id": oid}
        return x

    def obj(self, coll: str, o: dict) -> ET.Element:
        return getattr(self, "r_" + COLL[coll])(o)

    def _ref(self, x: ET.Element, tag: str, coll: str, oid: str | None) -> None:
        _link(x, tag, self.href(coll, oid) if oid else None, oid)

    def r_vm(self, o: dict) -> ET.Element:
        x = self.skel("vm", self.href("vms", o["id"]), o["id"])
        _setp(x, "name", o["name"])
        _setp(x, "status", o["status"])
        _setp(x, "memory", o["memory"])
        _setp(x, "memory_policy/guaranteed", o["memory"])
        _setp(x, "cpu/topology/sockets", o["sockets"])
        _setp(x, "cpu/topology/cores", o["cores"])
        boot = x.find("os/boot/devices")
        for c in list(boot):
            boot.remove(c)
        for d in o["boot"]:
            ET.SubElement(boot, "device").text = d
        _setp(x, "display/type", o["display"])
        _setp(x, "type", o["type"])
        _setp(x, "placement_policy/affinity", o["affinity"])
        if o.get("init") is not None:
            old = x.find("initialization")
            pos = list(x).index(old) if old is not None else len(x)
            if old is not None:
                x.remove(old)
            x.insert(pos, copy.deepcopy(o["init"]))
        pp = x.find("placement_policy")
        for old in pp.findall("hosts"):
            pp.remove(old)
        if o.get("pin_host"):
            hs = ET.SubElement(pp, "hosts")
            ET.SubElement(hs, "host", {"href": self.href("hosts", o["pin_host"]),
                                       "id": o["pin_host"]})
        running = o["status"] not in ("down", "image_locked", "suspended")
        if self.version == "3" and o["status"] == "up" and o["nics"]:
            # RHEV 3.x reported the guest agent's addresses inline (<ip address=""/>)
            _setp(x, "guest_info/ips/ip/address", o["ip"])
        self._ref(x, "host", "hosts", o.get("host") if running else None)
        self._ref(x, "cluster", "clusters", o["cluster"])
        self._ref(x, "template", "templates", o["template"])
        self._ref(x, "original_template", "templates", o["template"])
        if not running:
            for tag in ("start_time",):
                if x.find(tag) is not None:
                    x.remove(x.find(tag))
        else:
            _setp(x, "start_time", o.get("start_time") or "2024-01-01T00:00:00.000+00:00")
        self._display(x.find("display"), o, running)
        return x

    def display_of(self, o: dict) -> tuple[str, int, int | None] | None:
        """(address, port, TLS port or None) of a running VM's display: the address of
        the host it runs on, a port per VM from 5900; SPICE also listens with TLS on the
        next port (VNC has none). None while the VM is not running."""
        if o["status"] in ("down", "image_locked", "suspended") or not o.get("host"):
            return None
        h = self.e.objs["hosts"].get(o["host"]) or {}
        port = 5900 + 2 * list(self.e.objs["vms"]).index(o["id"]) if o["id"] in \
            self.e.objs["vms"] else 5900
        return h.get("ip", "192.0.2.10"), port, port + 1 if o["display"] == "spice" else None

    def _display(self, d: ET.Element, o: dict, running: bool) -> None:
        """The VM's ``<display>``: ``address``/``port``/``secure_port`` only while it runs
        (the recording is of a running SPICE VM: address and secure_port)."""
        where = self.display_of(o) if running else None
        for tag in ("address", "port", "secure_port"):
            if d.find(tag) is not None:
                d.remove(d.find(tag))
        if where is None:
            return
        addr, port, tls = where
        for tag, value in (("address", addr), ("port", port), ("secure_port", tls)):
            if value is not None:  # the engine's children are in name order
                pos = next((i for i, c in enumerate(d) if c.tag > tag), len(d))
                d.insert(pos, _el(tag, value))

    def r_graphics_console(self, vm: dict, protocol: str, current: bool) -> ET.Element:
        """One of ``vms/{id}/graphicsconsoles``: id = the protocol name in hex (the
        engine's ``7370696365`` for ``spice``), ``protocol``, and with ``current=true``
        the running VM's ``address``, ``port`` and (SPICE) ``tls_port``
        (ovirt-engine-api-model GraphicsConsole, VmGraphicsConsolesService.List)."""
        gid = protocol.encode().hex()
        x = ET.Element("graphics_console", {
            "href": f"{self.href('vms', vm['id'])}/graphicsconsoles/{gid}", "id": gid})
        where = self.display_of(vm) if current else None
        if where is not None:
            addr, port, tls = where
            x.append(_el("address", addr))
            x.append(_el("port", port))
        x.append(_el("protocol", protocol))
        if where is not None and tls is not None:
            x.append(_el("tls_port", tls))
        ET.SubElement(x, "vm", {"href": self.href("vms", vm["id"]), "id": vm["id"]})
        return x

    def r_host(self, o: dict) -> ET.Element:
        x = self.skel("host", self.href("hosts", o["id"]), o["id"])
        _setp(x, "name", o["name"])
        _setp(x, "address", o["address"])
        _setp(x, "status", o["status"])
        _setp(x, "memory", o["memory"])
        _setp(x, "max_scheduling_memory", o["memory"] - self.used_memory(o["id"]))
        _setp(x, "type", o.get("type", "rhel"))
        self._ref(x, "cluster", "clusters", o.get("cluster"))
        return x

    def used_memory(self, hid: str) -> int:
        return sum(v["memory"] for v in self.e.objs["vms"].values()
                   if v.get("host") == hid and v["status"] not in ("down", "suspended"))

    def r_cluster(self, o: dict) -> ET.Element:
        x = self.skel("cluster", self.href("clusters", o["id"]), o["id"])
        _setp(x, "name", o["name"])
        _setp(x, "cpu/type", o["cpu_type"])
        _setp(x, "description", o.get("description"))
        self._ref(x, "data_center", "datacenters", o["data_center"])
        return x

    def r_data_center(self, o: dict) -> ET.Element:
        x = self.skel("data_center", self.href("datacenters", o["id"]), o["id"])
        _setp(x, "name", o["name"])
        _setp(x, "status", o["status"])
        _setp(x, "local", str(bool(o["local"])).lower())
        if x.find("description") is None:
            _setp(x, "description", o.get("description"))
        return x

    def r_storage_domain(self, o: dict, dc_href: str | None = None) -> ET.Element:
        href = dc_href or self.href("storagedomains", o["id"])
        x = self.skel("storage_domain", href, o["id"])
        _setp(x, "name", o["name"])
        st = o["status"] if dc_href else ("unattached" if not o.get("data_center") else None)
        if dc_href:
            st = o["dc_status"]
        _setp(x, "status", st or "active")
        if not dc_href and o.get("data_center"):
            x.remove(x.find("status"))  # the engine prints status only under a data center
        _setp(x, "storage/type", o["storage_type"])
        _setp(x, "storage/address", o.get("address") or "")
        _setp(x, "storage/path", o["path"])
        _setp(x, "type", "data")
        _setp(x, "available", 100 * GIB)
        self._ref(x, "data_center", "datacenters", o.get("data_center"))
        dcs = x.find("data_centers")
        if dcs is not None:
            for c in list(dcs):
                dcs.remove(c)
            if o.get("data_center"):
                ET.SubElement(dcs, "data_center", {"href": self.href("datacenters",
                                                                     o["data_center"]),
                                                   "id": o["data_center"]})
        return x

    def r_network(self, o: dict) -> ET.Element:
        x = self.skel("network", self.href("networks", o["id"]), o["id"])
        _setp(x, "name", o["name"])
        self._ref(x, "data_center", "datacenters", o["data_center"])
        if o.get("vlan"):
            _setp(x, "vlan/id", o["vlan"])
        return x

    def r_vnic_profile(self, o: dict) -> ET.Element:
        x = self.skel("vnic_profile", self.href("vnicprofiles", o["id"]), o["id"])
        _setp(x, "name", o["name"])
        self._ref(x, "network", "networks", o["network"])
        return x

    def r_template(self, o: dict) -> ET.Element:
        x = self.skel("template", self.href("templates", o["id"]), o["id"])
        _setp(x, "name", o["name"])
        _setp(x, "status", o["status"])
        _setp(x, "memory", o["memory"])
        _setp(x, "cpu/topology/sockets", o["sockets"])
        _setp(x, "cpu/topology/cores", o["cores"])
        self._ref(x, "cluster", "clusters", o.get("cluster"))
        return x

    def r_disk(self, o: dict) -> ET.Element:
        x = self.skel("disk", self.href("disks", o["id"]), o["id"])
        for k in ("name", "alias", "description"):
            _setp(x, k, o["name"])
        _setp(x, "provisioned_size", o["size"])
        _setp(x, "actual_size", 0)
        _setp(x, "format", o["format"])
        _setp(x, "sparse", str(o["format"] == "cow").lower())
        _setp(x, "status", o["status"])
        sds = x.find("storage_domains")
        for c in list(sds):
            sds.remove(c)
        ET.SubElement(sds, "storage_domain", {"href": self.href("storagedomains", o["sd"]),
                                              "id": o["sd"]})
        return x

    def r_disk_attachment(self, vm: dict, d: dict, index: int) -> ET.Element:
        href = f"{self.href('vms', vm['id'])}/diskattachments/{d['id']}"
        x = self.skel("disk_attachment", href, d["id"])
        _setp(x, "bootable", str(d["bootable"]).lower())
        _setp(x, "interface", d["interface"])
        _setp(x, "logical_name", "/dev/vd" + "abdefghijklmnop"[index])
        self._ref(x, "disk", "disks", d["id"])
        self._ref(x, "vm", "vms", vm["id"])
        return x

    def r_disk_v3(self, vm: dict, d: dict) -> ET.Element:
        x = self.r_disk(d)
        _retarget(x, x.get("href"), f"{self.href('vms', vm['id'])}/disks/{d['id']}")
        x.set("href", f"{self.href('vms', vm['id'])}/disks/{d['id']}")
        _setp(x, "size", d["size"])
        _setp(x, "interface", d["interface"])
        _setp(x, "bootable", str(d["bootable"]).lower())
        self._ref(x, "vm", "vms", vm["id"])
        return x

    def r_nic(self, vm: dict, n: dict) -> ET.Element:
        href = f"{self.href('vms', vm['id'])}/nics/{n['id']}"
        x = self.skel("nic", href, n["id"])
        _setp(x, "name", n["name"])
        _setp(x, "interface", n["interface"])
        _setp(x, "mac/address", n["mac"])
        _setp(x, "linked", "true")
        _setp(x, "plugged", "true")
        self._ref(x, "vnic_profile", "vnicprofiles", n["profile"])
        self._ref(x, "network", "networks", n["network"])
        self._ref(x, "vm", "vms", vm["id"])
        return x

    def r_host_nic(self, h: dict) -> ET.Element:
        nid = _java_uuid(h["id"] + "eth0")
        x = self.skel("host_nic", f"{self.href('hosts', h['id'])}/nics/{nid}", nid)
        _setp(x, "ip/address", h.get("ip", "192.0.2.10"))
        _setp(x, "status", "up")
        self._ref(x, "host", "hosts", h["id"])
        return x

    def stat_rows(self, href: str, back: tuple[str, str, str], rows) -> list[ET.Element]:
        """``<statistic>`` elements under *href* (ids as the engine makes them, from the
        name) for *rows* ``(name, description, kind, type, unit, value)``, each linking
        back to its owner *back* = (tag, href, id)."""
        out = []
        for name, desc, kind, typ, unit, val in rows:
            sid = _java_uuid(name)
            x = self.skel("statistic", f"{href}/statistics/{sid}", sid)
            for k, v in (("name", name), ("description", desc), ("kind", kind), ("type", typ),
                         ("unit", unit), ("values/value/datum", val)):
                _setp(x, k, v)
            x.remove(x.find("vm"))
            ET.SubElement(x, back[0], {"href": back[1], "id": back[2]})
            out.append(x)
        return out

    #: a running VM's NIC traffic (bytes/s) and disk I/O (bytes/s) in the simulator
    NIC_RX, NIC_TX, DISK_READ, DISK_WRITE = 1500.0, 500.0, 4096.0, 2048.0

    def r_nic_statistics(self, vm: dict, n: dict) -> list[ET.Element]:
        """A VM NIC's statistics (ovirt-engine NicStatisticalQuery): rates in bytes/s,
        4.x also in bits/s (``.bps``), error and byte counters; 3.x the first four."""
        up = vm["status"] == "up"
        rx, tx = (self.NIC_RX, self.NIC_TX) if up else (0.0, 0.0)
        rows = [("data.current.rx", "Receive data rate", "gauge", "decimal",
                 "bytes_per_second", rx),
                ("data.current.tx", "Transmit data rate", "gauge", "decimal",
                 "bytes_per_second", tx),
                ("errors.total.rx", "Total received errors", "counter", "integer", "none", 0),
                ("errors.total.tx", "Total transmitted errors", "counter", "integer", "none",
                 0)]
        if self.version == "4":
            rows[2:2] = [("data.current.rx.bps", "Receive data rate", "gauge", "decimal",
                          "bits_per_second", rx * 8),
                         ("data.current.tx.bps", "Transmit data rate", "gauge", "decimal",
                          "bits_per_second", tx * 8)]
            rows += [("data.total.rx", "Total received data", "counter", "integer", "bytes",
                      int(rx * 60)),
                     ("data.total.tx", "Total transmitted data", "counter", "integer",
                      "bytes", int(tx * 60))]
        href = f"{self.href('vms', vm['id'])}/nics/{n['id']}"
        return self.stat_rows(href, ("nic", href, n["id"]), rows)

    def r_disk_statistics(self, d: dict, running: bool, href: str) -> list[ET.Element]:
        """A disk's statistics (ovirt-engine DiskStatisticalQuery): read/write rates in
        bytes/s and latencies in seconds."""
        rd, wr = (self.DISK_READ, self.DISK_WRITE) if running else (0.0, 0.0)
        rows = [("data.current.read", "Read data rate", "gauge", "decimal",
                 "bytes_per_second", rd),
                ("data.current.write", "Write data rate", "gauge", "decimal",
                 "bytes_per_second", wr),
                ("disk.read.latency", "Read latency", "gauge", "decimal", "seconds", 0.001),
                ("disk.write.latency", "Write latency", "gauge", "decimal", "seconds", 0.002),
                ("disk.flush.latency", "Flush latency", "gauge", "decimal", "seconds", 0.0)]
        return self.stat_rows(href, ("disk", href, d["id"]), rows)

    def r_statistics(self, vm: dict) -> list[ET.Element]:
        used = vm["memory"] * 3 // 10 if vm["status"] == "up" else 0
        out = []
        for name, desc, kind, typ, unit, val in (
                ("memory.installed", "Total memory configured", "gauge", "integer", "bytes",
                 vm["memory"]),
                ("memory.used", "Memory used (agent)", "gauge", "integer", "bytes", used),
                ("cpu.current.guest", "CPU used by guest", "gauge", "decimal", "percent",
                 12.5 if vm["status"] == "up" else 0),
                ("cpu.current.hypervisor", "CPU overhead", "gauge", "decimal", "percent",
                 0.5 if vm["status"] == "up" else 0),
                ("cpu.current.total", "Total CPU used", "gauge", "decimal", "percent",
                 13 if vm["status"] == "up" else 0)):
            sid = _java_uuid(name)
            x = self.skel("statistic", f"{self.href('vms', vm['id'])}/statistics/{sid}", sid)
            for k, v in (("name", name), ("description", desc), ("kind", kind), ("type", typ),
                         ("unit", unit), ("values/value/datum", val)):
                _setp(x, k, v)
            self._ref(x, "vm", "vms", vm["id"])
            out.append(x)
        return out

    def r_host_statistics(self, h: dict) -> list[ET.Element]:
        """A host's statistics (the documented ``memory.total`` one first, in its shape)."""
        used = self.used_memory(h["id"])
        up = h["status"] == "up"
        out = []
        for name, desc, typ, unit, val in (
                ("memory.total", "Total memory", "integer", "bytes", h["memory"]),
                ("memory.used", "Used memory", "integer", "bytes", used),
                ("memory.free", "Free memory", "integer", "bytes", h["memory"] - used),
                ("cpu.current.user", "User CPU usage", "decimal", "percent", 2 if up else 0),
                ("cpu.current.system", "System CPU usage", "decimal", "percent",
                 1 if up else 0),
                ("cpu.current.idle", "Idle CPU usage", "decimal", "percent", 97 if up else 0),
                ("cpu.load.avg.5m", "CPU 5 minute load average", "decimal", "none",
                 0.1 if up else 0)):
            sid = _java_uuid(h["id"] + name)
            x = self.skel("host_statistic", f"{self.href('hosts', h['id'])}/statistics/{sid}",
                          sid)
            for k, v in (("name", name), ("description", desc), ("kind", "gauge"),
                         ("type", typ), ("unit", unit), ("values/value/datum", val)):
                _setp(x, k, v)
            self._ref(x, "host", "hosts", h["id"])
            out.append(x)
        return out

    def r_reported(self, vm: dict) -> list[ET.Element]:
        if vm["status"] != "up" or not vm["nics"]:
            return []
        n = vm["nics"][0]
        rid = _java_uuid(vm["id"] + n["mac"])
        x = self.skel("reported_device", f"{self.href('vms', vm['id'])}/reporteddevices/{rid}",
                      rid)
        ips = x.find("ips")
        for c in list(ips):
            ips.remove(c)
        ip = ET.SubElement(ips, "ip")
        ET.SubElement(ip, "address").text = vm["ip"]
        ET.SubElement(ip, "version").text = "v4"
        _setp(x, "name", n["name"])
        _setp(x, "mac/address", n["mac"])
        self._ref(x, "vm", "vms", vm["id"])
        return [x]

    def r_job(self, o: dict) -> ET.Element:
        x = self.skel("job", self.href("jobs", o["id"]), o["id"])
        _setp(x, "description", o["name"])
        _setp(x, "status", o["status"])
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000+00:00", time.gmtime(o["start"]))
        _setp(x, "start_time", stamp)
        _setp(x, "last_updated", stamp)
        if o["status"] == "started":
            if x.find("end_time") is not None:
                x.remove(x.find("end_time"))
        else:
            _setp(x, "end_time", time.strftime("%Y-%m-%dT%H:%M:%S.000+00:00",
                                               time.gmtime(o.get("end") or time.time())))
        return x

    def r_api(self) -> ET.Element:
        x = copy.deepcopy(self.e.skel["api"])
        for link in x.findall("link"):
            link.set("href", link.get("href").replace("/api/", V4 + "/", 1))
        _setp(x, "product_info/name", "oVirt Engine" if self.e.api_mode != "3"
              else "Red Hat Enterprise Virtualization Manager")
        ver = x.find("product_info/version")
        if self.e.api_mode == "3":
            for k, v in (("major", 3), ("minor", 6), ("build", 8), ("revision", 0),
                         ("full_version", "3.6.8")):
                _setp(ver, k, v)
        _setp(x, "special_objects/blank_template", None).attrib = {
            "href": self.href("templates", BLANK_ID), "id": BLANK_ID}
        return x

    def action(self, status: str = "complete", job: str | None = None,
               extra: list | None = None) -> ET.Element:
        x = copy.deepcopy(self.e.skel["action"])
        j = x.find("job")
        if job:
            j.attrib = {"href": self.href("jobs", job), "id": job}
        else:
            x.remove(j)
        for c in extra or []:
            x.insert(0, c)
        _setp(x, "status", status)
        return x


def to_v3(x: ET.Element, base: str) -> ET.Element:
    """The v3 form of a v4 element (hypervisor-apis.md §1.4 table)."""
    x = copy.deepcopy(x)
    for st in x.iter("statistic"):
        # v3: <values type="INTEGER">, <type>GAUGE</type>, <unit>BYTES</unit>, no <kind>
        kind, typ = st.find("kind"), st.find("type")
        if kind is not None and typ is not None:
            vals = st.find("values")
            if vals is not None:
                vals.set("type", (typ.text or "").upper())
            typ.text = (kind.text or "").upper()
            st.remove(kind)
            if st.find("unit") is not None:
                st.find("unit").text = (st.findtext("unit") or "").upper()
    for e in x.iter():
        h = e.get("href")
        if h and base == "/api" and h.startswith(V4):
            e.set("href", "/api" + h[len(V4):])
    for e in list(x.iter()):
        for c in list(e):
            if c.tag == "status" and len(c) == 0 and c.text:
                st, c.text = c.text, None
                ET.SubElement(c, "state").text = st
            elif c.tag == "topology" and len(c):
                c.attrib.update({k.tag: k.text for k in c})
                for k in list(c):
                    c.remove(k)
            elif c.tag in ("mac", "ip") and c.find("address") is not None:
                c.attrib.update({k.tag: k.text or "" for k in c if len(k) == 0})
                for k in list(c):
                    c.remove(k)
            elif c.tag == "version" and c.find("major") is not None:
                c.attrib.update({k.tag: k.text or "" for k in c if k.tag != "full_version"})
                for k in list(c):
                    if k.tag != "full_version":
                        c.remove(k)
            elif c.tag == "cpu" and e.tag == "cluster" and c.find("type") is not None:
                c.set("id", c.findtext("type"))  # v3: <cpu id="Intel Penryn Family"/>
                c.remove(c.find("type"))
            elif c.tag == "vlan" and c.find("id") is not None:
                c.set("id", c.findtext("id"))
                c.remove(c.find("id"))
            elif c.tag == "os" and c.find("boot/devices") is not None:
                devs = [d.text for d in c.findall("boot/devices/device")]
                c.remove(c.find("boot"))
                if c.find("type") is not None:
                    c.set("type", c.findtext("type"))
                    c.remove(c.find("type"))
                for d in devs:
                    ET.SubElement(c, "boot", {"dev": d})
    return x


# -- the Flask app ------------------------------------------------------------------------------


def create_app(eng: Engine) -> Flask:
    """The WSGI app serving *eng*."""
    app = Flask("ovirt-sim")

    def xml(x: ET.Element | None, code: int = 200, headers: dict | None = None) -> Response:
        body = b"" if x is None else ET.tostring(x, encoding="utf-8", xml_declaration=True)
        return Response(body, code, headers=headers or {},
                        content_type="application/xml" if x is not None else None)

    def fault_resp(f: Fault, version: str, base: str) -> Response:
        if f.detail is None:
            return Response(b"", f.code)
        fx = ET.Element("fault")
        ET.SubElement(fx, "reason").text = f.reason
        ET.SubElement(fx, "detail").text = f"[{f.detail}]" if f.reason == "Operation Failed" \
            else f.detail
        if f.action:
            ax = ET.Element("action")
            ET.SubElement(ax, "status").text = "failed"
            ax.append(fx)
            fx = ax
        return xml(to_v3(fx, base) if version == "3" else fx, f.code)

    def unauthorized() -> Response:
        return Response(b"<html><head><title>Error</title></head><body>Unauthorized</body></html>",
                        401, headers={"WWW-Authenticate": 'Basic realm="RESTAPI"'},
                        content_type="text/html;charset=UTF-8")

    def authenticated() -> tuple[bool, str | None]:
        auth = request.headers.get("Authorization", "")
        cookie = request.cookies.get("JSESSIONID")
        if auth.startswith("Bearer "):
            return auth[7:] in eng.tokens, None
        if auth.startswith("Basic "):
            try:
                user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
            except Exception:  # noqa: BLE001
                return False, None
            if user != eng.user or pw != eng.password:
                return False, None
            if "persistent-auth" in request.headers.get("Prefer", ""):
                sid = secrets.token_hex(12)
                eng.sessions.add(sid)
                return True, sid
            return True, None
        if cookie and cookie in eng.sessions:
            return True, None
        return False, None

    @app.post("/ovirt-engine/sso/oauth/token")
    def sso():
        f = request.form
        if f.get("grant_type") != "password" or f.get("scope") != "ovirt-app-api":
            return {"error_code": "invalid_request", "error": "Invalid request."}, 400
        if f.get("username") != eng.user or f.get("password") != eng.password:
            return {"error_code": "access_denied",
                    "error": f"Cannot authenticate user '{f.get('username')}': The username "
                             "or password is incorrect.."}, 400
        tok = secrets.token_urlsafe(24)
        eng.tokens.add(tok)
        return {"access_token": tok, "token_type": "bearer", "scope": "ovirt-app-api",
                "exp": str(int(time.time() * 1000) + 3600_000)}

    @app.route("/ovirt-engine/services/sso-logout", methods=["GET", "POST"])
    def sso_logout():
        # ovirt-engine's services SsoLogoutServlet: any method, token and scope as request
        # parameters (query or form: the Python SDK POSTs a form, the Ruby/Java SDKs used a
        # query), revoked through the SSO service, whose JSON answer is passed on with
        # HTTP 200 (OAuthRevokeServlet: {} for any token, known or not)
        token = request.values.get("token")
        eng.logouts.append((request.method, dict(request.values)))
        if not token:
            return {"error_code": "invalid_request", "error": "No token specified."}
        eng.tokens.discard(token)
        return {}

    @app.get("/ovirt-engine/services/pki-resource")
    def pki():
        if not eng.ca_pem:
            return Response(b"", 404)
        return Response(eng.ca_pem, content_type="application/x-x509-ca-cert")

    @app.route("/<path:path>", methods=["GET", "POST", "PUT", "DELETE"])
    @app.route("/", defaults={"path": ""}, methods=["GET"])
    def api_route(path: str):
        path = "/" + path
        if path.startswith(V4 + "/") or path == V4:
            base = V4
            if eng.api_mode == "3":
                return Response(b"<html><head><title>Error</title></head><body>Not Found"
                                b"</body></html>", 404, content_type="text/html")
            version = request.headers.get("Version") or ("3" if eng.api_mode == "3" else "4")
            if path.startswith(V4 + "/v3/") or path.startswith(V4 + "/v4/"):
                version, path = path[len(V4) + 2], V4 + path[len(V4) + 3:]
            if version == "3" and eng.api_mode == "4":
                return Response(b"", 400)
        elif (path.startswith("/api/") or path == "/api") and eng.api_mode in ("3", "both"):
            base, version = "/api", "3"
        else:
            return Response(b"<html><head><title>Error</title></head><body>Not Found"
                            b"</body></html>", 404, content_type="text/html")
        ok, sid = authenticated()
        if not ok:
            return unauthorized()
        rel = path[len(base):].strip("/")
        with eng.lock:
            eng.requests.append((request.method, path, dict(request.headers)))
            eng.tick()
            eng.tick_jobs()
            r = Renderer(eng, base, version)
            try:
                code, out, headers = handle(eng, r, request.method, rel, version)
            except Fault as f:
                resp = fault_resp(f, version, base)
            else:
                if out is not None and version == "3":
                    out = to_v3(out, base)
                resp = xml(out, code, headers)
        if sid:
            resp.set_cookie("JSESSIONID", sid, path=base, httponly=True, secure=request.is_secure)
        return resp

    return app


def _body() -> ET.Element:
    data = request.get_data()
    if not data.strip():
        return ET.Element("action")
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise Fault(400, f"Invalid XML: {exc}", reason="Invalid value") from None


def _ref_id(eng: Engine, x: ET.Element | None, coll: str, what: str) -> str | None:
    """Resolve a ``<cluster id=..>`` / ``<cluster><name>..`` reference; 404 when unknown."""
    if x is None:
        return None
    oid = x.get("id")
    if oid:
        if oid not in eng.objs[coll]:
            raise Fault(404, f"Entity not found: {oid}", reason="Operation Failed")
        return oid
    name = api.text(x, "name")
    o = eng.by_name(coll, name) if name else None
    if o is None:
        raise Fault(404, f"Entity not found: {what}: name={name}")
    return o["id"]


def _collection(tag: str, items: list[ET.Element]) -> ET.Element:
    c = ET.Element(PLURAL[tag])
    c.extend(items)
    return c


def _search(eng: Engine, coll: str, objs: list[dict]) -> list[dict]:
    q = request.args.get("search")
    if not q:
        return objs
    m = re.fullmatch(r"\s*(name|host|Host\.name)\s*=\s*(\S+)\s*", q)
    if not m:
        raise Fault(400, f"Invalid search: {q}", reason="Invalid value")
    key, pat = m.groups()
    rx = re.compile("^" + re.escape(pat).replace(r"\*", ".*") + "$", re.I)
    if key == "name":
        return [o for o in objs if rx.match(o.get("name") or "")]
    hosts = {h["id"] for h in eng.objs["hosts"].values() if rx.match(h["name"])}
    return [o for o in objs if o.get("host") in hosts and o["status"] not in ("down",)]


VM_RUNNING = {"up", "powering_up", "wait_for_launch", "migrating", "reboot_in_progress",
              "powering_down", "paused", "restoring_state", "saving_state"}


def handle(eng: Engine, r: Renderer, method: str, rel: str, version: str):
    """Dispatch one API request; returns (status, element or None, headers)."""
    parts = [p for p in rel.split("/") if p]
    if not parts:
        if method != "GET":
            raise Fault(405, None)
        return 200, r.r_api(), {}
    coll = parts[0]
    if coll not in COLL:
        raise Fault(404, None)
    objs = eng.objs[coll]
    if len(parts) == 1:
        if method == "GET":
            items = [r.obj(coll, o) for o in _search(eng, coll, list(objs.values()))]
            return 200, _collection(COLL[coll], items), {}
        if method == "POST":
            return ADD[coll](eng, r, _body(), version)
        raise Fault(405, None)
    oid = parts[1]
    o = objs.get(oid)
    if o is None:
        raise Fault(404, None)  # real 4.x: empty body
    if len(parts) == 2:
        if method == "GET":
            return 200, r.obj(coll, o), {}
        if method == "PUT":
            return UPDATE[coll](eng, r, o, _body(), version)
        if method == "DELETE":
            return REMOVE[coll](eng, r, o, version)
        raise Fault(405, None)
    if len(parts) == 3 and method == "POST" and (coll, parts[2]) in ACTIONS:
        body = _body()
        res = ACTIONS[(coll, parts[2])](eng, r, o, body, version)
        if api.text(body, "async") == "true":
            act = r.action("pending")
            act.set("href", f"{r.href(coll, oid)}/{parts[2]}/{uuid.uuid4()}")
            return 202, act, {}
        return res
    return SUB[(coll, parts[2])](eng, r, o, parts[3:], method, version)


# -- VMs ---------------------------------------------------------------------------------------


def add_vm(eng: Engine, r: Renderer, b: ET.Element, version: str, *, clone_of=None):
    name = api.text(b, "name")
    if not name:
        raise Fault(400, "Vm [name] required for add", reason="Incomplete parameters")
    if eng.by_name("vms", name):
        raise Fault(409, "Cannot add VM. The VM name is already in use, please choose a "
                         "unique name and try again.")
    cl = _ref_id(eng, b.find("cluster"), "clusters", "Cluster")
    if cl is None:
        raise Fault(400, "Vm [cluster] required for add", reason="Incomplete parameters")
    tpl = _ref_id(eng, b.find("template"), "templates", "VmTemplate") or BLANK_ID
    t = eng.objs["templates"][tpl]
    if t["status"] != "ok":
        raise Fault(409, "Cannot add VM. Template image is locked.")
    sockets, cores = api.topology(b) if b.find("cpu/topology") is not None else (
        t["sockets"], t["cores"])
    pp = b.find("placement_policy")
    pin = None
    if pp is not None:
        pin = _ref_id(eng, pp.find("hosts/host"), "hosts", "VDS") or \
            _ref_id(eng, pp.find("host"), "hosts", "VDS")
    vid = eng.add("vms", name=name, status="down", memory=int(api.text(b, "memory") or t["memory"]),
                  sockets=sockets, cores=cores, boot=api.boot_devices(b) or ["hd"],
                  display=api.text(b, "display/type", "vnc"), type=api.text(b, "type", "server"),
                  affinity=api.text(b, "placement_policy/affinity", "migratable"),
                  pin_host=pin, cluster=cl, template=tpl, host=None, nics=[], disks=[],
                  ip=f"192.0.2.{len(eng.objs['vms']) + 20}",
                  init=_initialization(b.find("initialization")), cloud_init=None)
    vm = eng.objs["vms"][vid]
    for n in t.get("nics", []):
        vm["nics"].append(dict(n, id=str(uuid.uuid4()), mac=eng.mac()))
    code = 201
    if t["disks"]:
        thin = request.args.get("clone") != "true"
        for d in t["disks"]:
            did = eng.add("disks", name=f"{name}_{d['name']}", size=d["size"], format=d["format"],
                          sd=d["sd"], status="locked", bootable=d["bootable"],
                          interface=d["interface"])
            vm["disks"].append(did)
            eng.later(eng.objs["disks"][did], "ok", after=2 if thin else 6)
        vm["status"] = "image_locked"
        eng.later(vm, "down", after=2 if thin else 6)
        code = 202
    return code, r.r_vm(vm), {"Location": r.href("vms", vid)}


def update_vm(eng: Engine, r: Renderer, vm: dict, b: ET.Element, version: str):
    if vm["status"] == "image_locked":
        raise Fault(409, "Cannot edit VM. VM is being created or its disks are locked.")
    if api.text(b, "memory"):
        vm["memory"] = int(api.text(b, "memory"))
    if b.find("cpu/topology") is not None:
        vm["sockets"], vm["cores"] = api.topology(b)
    if api.boot_devices(b):
        vm["boot"] = api.boot_devices(b)
    if api.text(b, "display/type"):
        vm["display"] = api.text(b, "display/type")
    if b.find("placement_policy") is not None:
        vm["affinity"] = api.text(b, "placement_policy/affinity", vm["affinity"])
        pp = b.find("placement_policy")
        vm["pin_host"] = _ref_id(eng, pp.find("hosts/host"), "hosts", "VDS") or \
            _ref_id(eng, pp.find("host"), "hosts", "VDS")
    if api.text(b, "name"):
        vm["name"] = api.text(b, "name")
    if b.find("initialization") is not None:
        vm["init"] = _initialization(b.find("initialization"))
    return 200, r.r_vm(vm), {}


def _initialization(e: ET.Element | None) -> ET.Element | None:
    """What the engine keeps of an ``<initialization>``: all of it but the write-only
    ``root_password``."""
    if e is None:
        return None
    e = copy.deepcopy(e)
    for pw in e.findall("root_password"):
        e.remove(pw)
    return e


def remove_vm(eng: Engine, r: Renderer, vm: dict, version: str):
    if vm["status"] in VM_RUNNING or vm["status"] == "suspended":
        raise Fault(409, "Cannot remove VM. VM is running.")
    if vm["status"] == "image_locked":
        raise Fault(409, "Cannot remove VM: VM is locked. Please try again in a few minutes.")
    # disks are deleted unless detach_only (v4 query parameter; v3 <action><vm><disks>
    # <detach_only>); detached ones stay as floating disks
    body = _body() if version == "3" else None
    detach = request.args.get("detach_only") == "true" or (
        body is not None and api.text(body, "vm/disks/detach_only") == "true")
    for did in vm["disks"]:
        if detach:
            eng.objs["disks"].get(did, {})["floating"] = True
        else:
            eng.objs["disks"].pop(did, None)
    del eng.objs["vms"][vm["id"]]
    return 200, None, {}


def _pick_host(eng: Engine, vm: dict, exclude: str | None = None) -> str | None:
    if vm.get("pin_host") and vm["pin_host"] != exclude:
        h = eng.objs["hosts"].get(vm["pin_host"])
        return h["id"] if h and h["status"] == "up" else None
    for h in eng.objs["hosts"].values():
        if h["status"] == "up" and h.get("cluster") == vm["cluster"] and h["id"] != exclude:
            return h["id"]
    return None


def _vm_job(eng: Engine, r: Renderer, vm: dict, desc: str, want: str):
    jid = eng.job(f"{desc} VM {vm['name']}", lambda: vm["status"] == want)
    return 200, r.action("complete", jid), {}


def vm_start(eng, r, vm, b, version):
    st = vm["status"]
    if st in VM_RUNNING:
        raise Fault(409, "Cannot run VM. VM is running." if st == "up" else
                    f"Cannot run VM because the VM is in {st.replace('_', ' ').title()} status.",
                    action=True)
    if st == "image_locked":
        raise Fault(409, "Cannot run VM: VM is locked. Please try again in a few minutes.",
                    action=True)
    if st != "suspended":  # a resume keeps its boot (engine bug 1023366 fixed exactly that)
        _validate_boot_sequence(eng, vm, b)
    host = vm.get("host") if st == "suspended" else _pick_host(eng, vm)
    if host is None:
        raise Fault(409, "Cannot run VM. There is no host that satisfies current scheduling "
                         "constraints.", action=True)
    vm["host"] = host
    vm["start_time"] = time.strftime("%Y-%m-%dT%H:%M:%S.000+00:00", time.gmtime())
    if st != "suspended" and b is not None and api.text(b, "use_cloud_init") == "true":
        init = b.find("vm/initialization")
        vm["cloud_init"] = _initialization(init) if init is not None else vm.get("init")
        cfg = vm["cloud_init"]
        addrs = api.initialization_addresses(_wrap_vm(cfg)) if cfg is not None else []
        if addrs:
            vm["ip"] = addrs[0]  # the guest applied its static address
    if st == "suspended":
        vm["status"] = "restoring_state"
        eng.later(vm, "up")
    else:
        vm["status"] = "wait_for_launch"
        eng.later(vm, "powering_up", "up")
    return _vm_job(eng, r, vm, "Launching", "up")


#: ovirt-engine's AppErrors.properties for ${action}=run ${type}=VM, as the REST API words
#: them (continuation lines' leading blanks dropped, as Java properties do): RHEV-M 3.x,
#: then oVirt 4.x; the fault detail is the list in brackets.
NO_BOOTABLE_DISK = {
    "3": "Cannot run VM without at least one bootable disk.\nAlternatives:\n"
         "-Create a disk for this VM, and rerun the VM.\n"
         "-Change the boot sequence using the Edit VM command (Boot Option Sub-Tab).\n"
         "-Use the Run-Once command to select a different boot option and rerun the VM.",
    "4": "Cannot run VM without at least one bootable disk.\nAlternatives:\n"
         "- Create a disk for this VM, and rerun the VM.\n"
         "- Change the boot sequence using the Edit VM command (Boot Option Sub-Tab).\n"
         "- Use the 'Run Once' command to select a different boot option and rerun the VM.",
}
NO_BOOTABLE_NIC = {
    "3": "VM is configured to be 'Network bootable', but no Network Interface is "
         "configured.\nAlternatives:\n-Select a different boot device (using the 'Run "
         "Once' command or 'Edit VM' command on Boot Option Sub-Tab).\n"
         "-Configure Network Interface and rerun the VM.",
    "4": "VM is configured to be 'Network bootable', but no Network Interface is "
         "configured.\nAlternatives:\n- Select a different boot device (using the 'Run "
         "Once' command or 'Edit VM' command on Boot Option Sub-Tab).\n"
         "- Configure Network Interface and rerun the VM.",
}


def _validate_boot_sequence(eng: Engine, vm: dict, b: ET.Element | None) -> None:
    """oVirt's RunVmValidator.validateBootSequence: the boot sequence of this run (a run
    once's ``vm/os/boot`` in the action, else the VM's) that is the hard disk alone needs a
    disk (VM_CANNOT_RUN_FROM_DISK_WITHOUT_DISK); the network alone needs a NIC
    (VM_CANNOT_RUN_FROM_NETWORK_WITHOUT_NETWORK). Both answered 409 like every validation
    failure of an action."""
    run_vm = b.find("vm") if b is not None else None
    boot = (api.boot_devices(run_vm) if run_vm is not None else []) or vm["boot"]
    texts = NO_BOOTABLE_DISK if boot == ["hd"] else NO_BOOTABLE_NIC if boot == ["network"] \
        else None
    if texts is None:
        return
    if boot == ["hd"] and any(d in eng.objs["disks"] for d in vm["disks"]):
        return
    if boot == ["network"] and vm["nics"]:
        return
    raise Fault(409, texts["3" if eng.api_mode == "3" else "4"], action=True)


def _wrap_vm(init: ET.Element) -> ET.Element:
    vm = ET.Element("vm")
    vm.append(copy.deepcopy(init))
    return vm


def vm_stop(eng, r, vm, b, version):
    if vm["status"] in ("down", "image_locked"):
        raise Fault(409, "Cannot stop VM. VM is not running.", action=True)
    eng.later(vm, "down", after=1)
    return _vm_job(eng, r, vm, "Stopping", "down")


def vm_shutdown(eng, r, vm, b, version):
    if vm["status"] != "up":
        raise Fault(409, "Cannot shutdown VM. VM is not running.", action=True)
    vm["status"] = "powering_down"
    eng.later(vm, "down", after=2)
    return _vm_job(eng, r, vm, "Shutting down", "down")


def vm_suspend(eng, r, vm, b, version):
    if vm["status"] != "up":
        raise Fault(409, "Cannot hibernate VM. VM is not up.", action=True)
    vm["status"] = "saving_state"
    eng.later(vm, "suspended", after=2)
    return _vm_job(eng, r, vm, "Hibernating", "suspended")


def vm_reboot(eng, r, vm, b, version):
    if vm["status"] != "up":
        raise Fault(409, "Cannot reboot VM. VM is not up.", action=True)
    vm["status"] = "reboot_in_progress"
    eng.later(vm, "up", after=2)
    return _vm_job(eng, r, vm, "Rebooting", "up")


def vm_migrate(eng, r, vm, b, version):
    if vm["status"] != "up":
        raise Fault(409, "Cannot migrate VM. VM is not running.", action=True)
    target = _ref_id(eng, b.find("host"), "hosts", "VDS")
    if target == vm["host"]:
        raise Fault(409, "Cannot migrate VM. VM is already running on this host.", action=True)
    if target is None:
        target = _pick_host(eng, dict(vm, pin_host=None), exclude=vm["host"])
    elif eng.objs["hosts"][target]["status"] != "up":
        raise Fault(409, "Cannot migrate VM. Destination host is not up.", action=True)
    if target is None:
        raise Fault(409, "Cannot migrate VM. There is no host that satisfies current "
                         "scheduling constraints.", action=True)
    vm["status"] = "migrating"

    def land(o, t=target):
        o["host"] = t
        o["status"] = "up"

    vm["_trans"] = [(time.monotonic() + eng.step * 3, land)]
    return _vm_job(eng, r, vm, "Migrating", "up")


def vm_ticket(eng, r, vm, b, version):
    """The ``ticket`` action (documented ``vm_ticket.http``): the requested
    ``ticket/value`` or a new one, ``expiry`` as asked (default 120 s); kept as the VM's
    ``ticket`` (what a viewer would have to give)."""
    t = ET.Element("ticket")
    value = api.text(b, "ticket/value") or secrets.token_hex(6)
    ET.SubElement(t, "value").text = value
    ET.SubElement(t, "expiry").text = api.text(b, "ticket/expiry") or "120"
    vm["ticket"] = value
    return 200, r.action("complete", extra=[t]), {}


def graphics_consoles(eng, r, vm, rest, method):
    """``vms/{id}/graphicsconsoles[/{gid}[/ticket]]`` (v4): the VM's one console of its
    display protocol; ``current=true`` adds the running display's address and ports;
    ``ticket`` answers as the VM's ``ticket`` action (a new password, 120 s)."""
    protocol = vm["display"]
    current = request.args.get("current") == "true"
    gc = r.r_graphics_console(vm, protocol, current)
    if method == "GET" and not rest:
        return 200, _collection("graphics_console", [gc]), {}
    if not rest or rest[0] != gc.get("id"):
        raise Fault(404, None)
    if method == "GET" and len(rest) == 1:
        return 200, gc, {}
    if method == "POST" and rest[1:] == ["ticket"]:
        return vm_ticket(eng, r, vm, _body(), "4")
    raise Fault(404, None)


def disk_sub(eng, r, d, rest, method, version, kind):
    """``disks/{id}/statistics[/{sid}]`` (v4): the disk's I/O while a running VM uses it."""
    if kind == "statistics" and method == "GET" and version == "4":
        running = any(d["id"] in v["disks"] and v["status"] == "up"
                      for v in eng.objs["vms"].values())
        return _one_or_all("statistic", r.r_disk_statistics(
            d, running, r.href("disks", d["id"])), rest)
    raise Fault(404, None)


def vm_sub(eng, r, vm, rest, method, version, kind):
    if kind == "nics" and method == "GET" and len(rest) >= 2 and rest[1] == "statistics":
        for n in vm["nics"]:
            if n["id"] == rest[0]:
                return _one_or_all("statistic", r.r_nic_statistics(vm, n), rest[2:])
        raise Fault(404, None)
    if kind == "disks" and version == "3" and method == "GET" and len(rest) >= 2 \
            and rest[1] == "statistics" and rest[0] in vm["disks"]:
        href = f"{r.href('vms', vm['id'])}/disks/{rest[0]}"
        return _one_or_all("statistic", r.r_disk_statistics(
            eng.objs["disks"][rest[0]], vm["status"] == "up", href), rest[2:])
    if kind == "graphicsconsoles" and version == "4":
        return graphics_consoles(eng, r, vm, rest, method)
    if kind == "nics":
        if method == "GET" and not rest:
            return 200, _collection("nic", [r.r_nic(vm, n) for n in vm["nics"]]), {}
        if method == "GET" and len(rest) == 1:
            for n in vm["nics"]:
                if n["id"] == rest[0]:
                    return 200, r.r_nic(vm, n), {}
            raise Fault(404, None)
        if method == "POST" and not rest:
            b = _body()
            name = api.text(b, "name")
            if not name:
                raise Fault(400, "Nic [name] required for add", reason="Incomplete parameters")
            if any(n["name"] == name for n in vm["nics"]):
                raise Fault(409, "Cannot add Interface. The VM Network Interface name is "
                                 "already in use.")
            if version == "3":
                net = _ref_id(eng, b.find("network"), "networks", "Network")
                prof = next((p["id"] for p in eng.objs["vnicprofiles"].values()
                             if p["network"] == net), None)
            else:
                prof = _ref_id(eng, b.find("vnic_profile"), "vnicprofiles", "VnicProfile")
                net = eng.objs["vnicprofiles"][prof]["network"] if prof else None
            n = {"id": str(uuid.uuid4()), "name": name, "mac": api.mac(b) or eng.mac(),
                 "interface": api.text(b, "interface", "virtio"), "profile": prof,
                 "network": net}
            vm["nics"].append(n)
            return 201, r.r_nic(vm, n), {}
    if kind in ("diskattachments", "disks") and (kind == "disks") == (version == "3"):
        disks = [eng.objs["disks"][d] for d in vm["disks"] if d in eng.objs["disks"]]
        if method == "GET" and not rest:
            if kind == "disks":
                return 200, _collection("disk", [r.r_disk_v3(vm, d) for d in disks]), {}
            return 200, _collection("disk_attachment", [
                r.r_disk_attachment(vm, d, i) for i, d in enumerate(disks)]), {}
        if method == "GET" and len(rest) == 1:
            for i, d in enumerate(disks):
                if d["id"] == rest[0]:
                    return 200, (r.r_disk_v3(vm, d) if kind == "disks" else
                                 r.r_disk_attachment(vm, d, i)), {}
            raise Fault(404, None)
        if method == "POST" and not rest:
            b = _body()
            d = b if kind == "disks" else b.find("disk")
            if d is None:
                raise Fault(400, "DiskAttachment [disk] required for add",
                            reason="Incomplete parameters")
            sd = _ref_id(eng, d.find("storage_domains/storage_domain"), "storagedomains",
                         "StorageDomain")
            if sd is None:
                raise Fault(400, "Disk [storageDomain] required for add",
                            reason="Incomplete parameters")
            if eng.objs["storagedomains"][sd].get("dc_status") != "active":
                raise Fault(409, "Cannot add Virtual Disk. Storage Domain is not active.")
            size = int(api.text(d, "provisioned_size") or api.text(d, "size") or 0)
            src = b
            did = eng.add("disks", name=api.text(d, "name") or f"{vm['name']}_Disk",
                          size=size, format=api.text(d, "format", "cow"), sd=sd,
                          status="locked",
                          bootable=(api.text(src, "bootable") or "false") == "true",
                          interface=api.text(src, "interface", "virtio"))
            eng.later(eng.objs["disks"][did], "ok")
            vm["disks"].append(did)
            dd = eng.objs["disks"][did]
            out = r.r_disk_v3(vm, dd) if kind == "disks" else \
                r.r_disk_attachment(vm, dd, len(vm["disks"]) - 1)
            return 201, out, {}
        if method == "DELETE" and len(rest) == 1 and rest[0] in vm["disks"]:
            if vm["status"] != "down":
                raise Fault(409, "Cannot remove Virtual Disk. VM is running.")
            vm["disks"].remove(rest[0])
            # 4.x: ?detach_only=true; 3.x: a body <action><detach>true</detach></action>
            keep = request.args.get("detach_only") == "true" or (
                version == "3" and api.text(_body(), "detach") == "true")
            if not keep:
                eng.objs["disks"].pop(rest[0], None)
            return 200, None, {}
    if kind == "statistics" and method == "GET":
        return _one_or_all("statistic", r.r_statistics(vm), rest)
    if kind == "reporteddevices" and method == "GET" and version == "4":
        return 200, _collection("reported_device", r.r_reported(vm)), {}
    raise Fault(404, None)


# -- templates, hosts, data center objects -------------------------------------------------------


def add_template(eng, r, b, version):
    name = api.text(b, "name")
    if not name:
        raise Fault(400, "Template [name] required for add", reason="Incomplete parameters")
    vid = _ref_id(eng, b.find("vm"), "vms", "VM")
    if vid is None:
        raise Fault(400, "Template [vm] required for add", reason="Incomplete parameters")
    if eng.by_name("templates", name):
        raise Fault(409, "Cannot add Template. The Template name is already in use, please "
                         "choose a unique name and try again.")
    vm = eng.objs["vms"][vid]
    if vm["status"] != "down":
        raise Fault(409, "Cannot add Template. VM is running." if vm["status"] in VM_RUNNING
                    else f"Cannot add Template. VM is {vm['status']}.")
    disks = [dict(eng.objs["disks"][d]) for d in vm["disks"] if d in eng.objs["disks"]]
    tid = eng.add("templates", name=name, status="locked", memory=vm["memory"],
                  sockets=vm["sockets"], cores=vm["cores"], cluster=vm["cluster"], vm=vid,
                  disks=disks, nics=[{k: n[k] for k in ("name", "interface", "profile",
                                                         "network")} for n in vm["nics"]])
    vm["status"] = "image_locked"
    eng.later(vm, "down", after=3)
    eng.later(eng.objs["templates"][tid], "ok", after=3)
    return 202, r.r_template(eng.objs["templates"][tid]), {}


def remove_template(eng, r, t, version):
    if t["id"] == BLANK_ID:
        raise Fault(409, "Cannot remove Template. Blank Template cannot be removed.")
    if any(v["template"] == t["id"] for v in eng.objs["vms"].values()):
        raise Fault(409, "Cannot remove Template. The following VMs are based on it.")
    del eng.objs["templates"][t["id"]]
    return 200, None, {}


def add_host(eng, r, b, version):
    name = api.text(b, "name")
    if not name or not api.text(b, "address"):
        raise Fault(400, "Host [name|address] required for add", reason="Incomplete parameters")
    if eng.by_name("hosts", name):
        raise Fault(409, "Cannot add Host. The Host name is already in use, please choose a "
                         "unique name and try again.")
    cl = _ref_id(eng, b.find("cluster"), "clusters", "Cluster")
    if cl is None:
        raise Fault(400, "Host [cluster] required for add", reason="Incomplete parameters")
    if not api.text(b, "root_password"):
        raise Fault(400, "Host [rootPassword] required for add", reason="Incomplete parameters")
    hid = eng.add("hosts", name=name, address=api.text(b, "address"), status="installing",
                  cluster=cl, memory=16 * GIB)
    eng.later(eng.objs["hosts"][hid], "initializing", "up", after=2)
    return 201, r.r_host(eng.objs["hosts"][hid]), {"Location": r.href("hosts", hid)}


def remove_host(eng, r, h, version):
    if h["status"] not in ("maintenance", "pending_approval", "install_failed", "down"):
        raise Fault(409, "Cannot remove Host. Host must be in Maintenance mode first.")
    del eng.objs["hosts"][h["id"]]
    return 200, None, {}


def host_activate(eng, r, h, b, version):
    if h["status"] == "up":
        raise Fault(409, "Cannot activate Host. Host is already Up.", action=True)
    if h["status"] != "maintenance":
        raise Fault(409, f"Cannot activate Host. Host is {h['status']}.", action=True)
    h["status"] = "activating" if False else "initializing"
    eng.later(h, "up")
    return 200, r.action("complete"), {}


def host_deactivate(eng, r, h, b, version):
    if h["status"] == "maintenance":
        raise Fault(409, "Cannot switch Host to Maintenance mode. Host is already in "
                         "Maintenance mode.", action=True)
    if any(v.get("host") == h["id"] and v["status"] in VM_RUNNING
           for v in eng.objs["vms"].values()):
        raise Fault(409, "Cannot switch Host to Maintenance mode. Host has running VMs and "
                         "no host to migrate them to.", action=True)
    h["status"] = "preparing_for_maintenance"
    eng.later(h, "maintenance")
    return 200, r.action("complete"), {}


def host_approve(eng, r, h, b, version):
    if h["status"] != "pending_approval":
        raise Fault(409, f"Cannot approve Host. Host is {h['status']}.", action=True)
    cl = _ref_id(eng, b.find("cluster"), "clusters", "Cluster")
    if cl:
        h["cluster"] = cl
    h["status"] = "installing"
    eng.later(h, "initializing", "up")
    return 200, r.action("complete"), {}


def _one_or_all(tag: str, items: list[ET.Element], rest: list[str]):
    """GET of a sub-collection (no *rest*) or of one member by id (404 with an empty body,
    as for any unknown id)."""
    if not rest:
        return 200, _collection(tag, items), {}
    if len(rest) == 1:
        for x in items:
            if x.get("id") == rest[0]:
                return 200, x, {}
    raise Fault(404, None)


def host_sub(eng, r, h, rest, method, version, kind):
    if kind == "nics" and method == "GET":
        code, out, headers = _one_or_all("host_nic", [r.r_host_nic(h)], rest)
        if version == "3" and not rest:
            # RHEV-M 3.x lists the collection's own action first: <host_nics><actions><link
            # rel="setupnetworks"/></actions><host_nic>... (4.x moved it to the host)
            acts = ET.Element("actions")
            ET.SubElement(acts, "link", href=f"{r.href('hosts', h['id'])}/nics/setupnetworks",
                          rel="setupnetworks")
            out.insert(0, acts)
        return code, out, headers
    if kind == "statistics" and method == "GET":
        return _one_or_all("host_statistic", r.r_host_statistics(h), rest)
    raise Fault(404, None)


def add_dc(eng, r, b, version):
    name = api.text(b, "name")
    if not name:
        raise Fault(400, "DataCenter [name] required for add", reason="Incomplete parameters")
    if eng.by_name("datacenters", name):
        raise Fault(409, "Cannot create Data Center. The Data Center name is already in use.")
    local = api.text(b, "local") == "true" or api.text(b, "storage_type") == "localfs"
    did = eng.add("datacenters", name=name, status="uninitialized", local=local)
    return 201, r.r_data_center(eng.objs["datacenters"][did]), {}


def remove_dc(eng, r, dc, version):
    if any(c["data_center"] == dc["id"] for c in eng.objs["clusters"].values()) and \
            request.args.get("force") != "true":
        raise Fault(409, "Cannot remove Data Center. There are clusters in it.")
    if any(s.get("data_center") == dc["id"] for s in eng.objs["storagedomains"].values()):
        raise Fault(409, "Cannot remove Data Center. Storage domains are attached to it.")
    del eng.objs["datacenters"][dc["id"]]
    return 200, None, {}


def dc_sub(eng, r, dc, rest, method, version, kind):
    if kind != "storagedomains":
        raise Fault(404, None)
    sds = [s for s in eng.objs["storagedomains"].values() if s.get("data_center") == dc["id"]]
    dch = r.href("datacenters", dc["id"])
    if not rest and method == "GET":
        return 200, _collection("storage_domain", [
            r.r_storage_domain(s, f"{dch}/storagedomains/{s['id']}") for s in sds]), {}
    if not rest and method == "POST":
        sid = _ref_id(eng, _body(), "storagedomains", "StorageDomain")
        s = eng.objs["storagedomains"][sid]
        if s.get("data_center"):
            raise Fault(409, "Cannot attach Storage. Storage Domain is already attached to a "
                             "Data Center.")
        if bool(dc["local"]) != (s["storage_type"] == "localfs"):
            raise Fault(409, "Cannot attach Storage. Storage Domain type does not match the "
                             "Data Center type.")
        s["data_center"], s["dc_status"] = dc["id"], "locked"
        eng.later(s, lambda o: o.update(dc_status="active"))
        dc["status"] = "up"
        return 201, r.r_storage_domain(s, f"{dch}/storagedomains/{sid}"), {}
    s = eng.objs["storagedomains"].get(rest[0]) if rest else None
    if s is None or s.get("data_center") != dc["id"]:
        raise Fault(404, None)
    if len(rest) == 1 and method == "GET":
        return 200, r.r_storage_domain(s, f"{dch}/storagedomains/{s['id']}"), {}
    if len(rest) == 1 and method == "DELETE":
        if s["dc_status"] != "maintenance":
            raise Fault(409, "Cannot detach Storage. Storage Domain status is not Maintenance.")
        s["data_center"], s["dc_status"] = None, None
        return 200, None, {}
    if len(rest) == 2 and method == "POST" and rest[1] in ("activate", "deactivate"):
        if rest[1] == "activate":
            if s["dc_status"] == "active":
                raise Fault(409, "Cannot activate Storage. Storage Domain is already active.",
                            action=True)
            s["dc_status"] = "activating"
            eng.later(s, lambda o: o.update(dc_status="active"))
        else:
            if s["dc_status"] != "active":
                raise Fault(409, "Cannot deactivate Storage. Storage Domain is not active.",
                            action=True)
            if any(eng.objs["vms"][v]["status"] in VM_RUNNING for v in eng.objs["vms"]
                   if any(eng.objs["disks"].get(d, {}).get("sd") == s["id"]
                          for d in eng.objs["vms"][v]["disks"])):
                raise Fault(409, "Cannot deactivate Storage. Running VMs use disks on it.",
                            action=True)
            s["dc_status"] = "preparing_for_maintenance"
            eng.later(s, lambda o: o.update(dc_status="maintenance"))
        return 200, r.action("complete"), {}
    raise Fault(404, None)


def add_cluster(eng, r, b, version):
    name = api.text(b, "name")
    if not name:
        raise Fault(400, "Cluster [name] required for add", reason="Incomplete parameters")
    if eng.by_name("clusters", name):
        raise Fault(409, "Cannot create Cluster. Cluster name is already in use.")
    dc = _ref_id(eng, b.find("data_center"), "datacenters", "DataCenter")
    if dc is None:
        raise Fault(400, "Cluster [dataCenter] required for add", reason="Incomplete parameters")
    cpu = b.find("cpu")
    cpu_type = (cpu.get("id") or api.text(cpu, "type")) if cpu is not None else None
    mgmt = next((n["id"] for n in eng.objs["networks"].values()
                 if n["data_center"] == dc and n["name"] == "ovirtmgmt"), None)
    cid = eng.add("clusters", name=name, data_center=dc, cpu_type=cpu_type or "Intel Penryn Family",
                  networks=[mgmt] if mgmt else [])
    return 201, r.r_cluster(eng.objs["clusters"][cid]), {}


def remove_cluster(eng, r, c, version):
    if any(h.get("cluster") == c["id"] for h in eng.objs["hosts"].values()) or \
            any(v["cluster"] == c["id"] for v in eng.objs["vms"].values()):
        raise Fault(409, "Cannot remove Cluster. Host Cluster contains one or more Hosts or "
                         "VMs.")
    del eng.objs["clusters"][c["id"]]
    return 200, None, {}


def cluster_sub(eng, r, c, rest, method, version, kind):
    if kind != "networks":
        raise Fault(404, None)
    if not rest and method == "GET":
        return 200, _collection("network", [r.r_network(eng.objs["networks"][n])
                                            for n in c["networks"] if n in eng.objs["networks"]]), {}
    if not rest and method == "POST":
        nid = _ref_id(eng, _body(), "networks", "Network")
        if nid in c["networks"]:
            raise Fault(409, "Cannot add Network. The Network is already attached to the "
                             "Cluster.")
        if eng.objs["networks"][nid]["data_center"] != c["data_center"]:
            raise Fault(409, "Cannot add Network. The Network belongs to another Data Center.")
        c["networks"].append(nid)
        return 201, r.r_network(eng.objs["networks"][nid]), {}
    if len(rest) == 1 and method == "DELETE" and rest[0] in c["networks"]:
        c["networks"].remove(rest[0])
        return 200, None, {}
    raise Fault(404, None)


def add_network(eng, r, b, version):
    name = api.text(b, "name")
    dc = _ref_id(eng, b.find("data_center"), "datacenters", "DataCenter")
    if not name or dc is None:
        raise Fault(400, "Network [name|dataCenter] required for add",
                    reason="Incomplete parameters")
    if any(n["name"] == name and n["data_center"] == dc for n in eng.objs["networks"].values()):
        raise Fault(409, "Cannot create Network. The Network name is already in use.")
    vl = b.find("vlan")
    vlan = (vl.get("id") or api.text(vl, "id")) if vl is not None else None
    nid = eng.add("networks", name=name, data_center=dc, vlan=vlan)
    eng.add("vnicprofiles", name=name, network=nid)
    return 201, r.r_network(eng.objs["networks"][nid]), {}


def remove_network(eng, r, n, version):
    if any(n["id"] in c["networks"] for c in eng.objs["clusters"].values()):
        raise Fault(409, "Cannot remove Network. The Network is attached to a Cluster.")
    for pid in [p for p, v in eng.objs["vnicprofiles"].items() if v["network"] == n["id"]]:
        del eng.objs["vnicprofiles"][pid]
    del eng.objs["networks"][n["id"]]
    return 200, None, {}


def add_sd(eng, r, b, version):
    name = api.text(b, "name")
    st = b.find("storage")
    if not name or st is None or not api.text(st, "type") or not api.text(st, "path"):
        raise Fault(400, "StorageDomain [name|storage.type|storage.path] required for add",
                    reason="Incomplete parameters")
    hid = _ref_id(eng, b.find("host"), "hosts", "VDS")
    if hid is None:
        raise Fault(400, "StorageDomain [host] required for add", reason="Incomplete parameters")
    if eng.by_name("storagedomains", name):
        raise Fault(409, "Cannot add Storage. The Storage Domain name is already in use.")
    kind = api.text(st, "type")
    if kind not in ("nfs", "localfs"):
        raise Fault(400, f"Invalid value: {kind} is not a member of StorageType",
                    reason="Invalid value")
    if kind == "nfs" and not api.text(st, "address"):
        raise Fault(400, "StorageDomain [storage.address] required for add",
                    reason="Incomplete parameters")
    sid = eng.add("storagedomains", name=name, storage_type=kind, address=api.text(st, "address"),
                  path=api.text(st, "path"), data_center=None, dc_status=None)
    return 201, r.r_storage_domain(eng.objs["storagedomains"][sid]), {}


def remove_sd(eng, r, s, version):
    if s.get("data_center"):
        raise Fault(409, "Cannot remove Storage. Storage Domain is attached to a Data Center.")
    del eng.objs["storagedomains"][s["id"]]
    return 200, None, {}


def _nope(*a):
    raise Fault(405, None)


def update_simple(eng, r, o, b, version):
    if api.text(b, "name"):
        o["name"] = api.text(b, "name")
    return 200, r.r_host(o) if "address" in o else r.obj("clusters", o), {}


ADD = {"vms": add_vm, "templates": add_template, "hosts": add_host, "datacenters": add_dc,
       "clusters": add_cluster, "networks": add_network, "storagedomains": add_sd,
       "vnicprofiles": _nope, "jobs": _nope, "disks": _nope}
UPDATE = {"vms": update_vm}
UPDATE.update({k: _nope for k in COLL if k != "vms"})
REMOVE = {"vms": remove_vm, "templates": remove_template, "hosts": remove_host,
          "datacenters": remove_dc, "clusters": remove_cluster, "networks": remove_network,
          "storagedomains": remove_sd, "vnicprofiles": _nope, "jobs": _nope, "disks": _nope}
ACTIONS = {("vms", "start"): vm_start, ("vms", "stop"): vm_stop,
           ("vms", "shutdown"): vm_shutdown, ("vms", "suspend"): vm_suspend,
           ("vms", "reboot"): vm_reboot, ("vms", "migrate"): vm_migrate,
           ("vms", "ticket"): vm_ticket, ("hosts", "activate"): host_activate,
           ("hosts", "deactivate"): host_deactivate, ("hosts", "approve"): host_approve}


class _Sub(dict):
    def __missing__(self, key):
        coll, kind = key
        fn = {"vms": vm_sub, "hosts": host_sub, "datacenters": dc_sub,
              "clusters": cluster_sub, "disks": disk_sub}.get(coll)
        if fn is None:
            return lambda *a: (_ for _ in ()).throw(Fault(404, None))
        return lambda eng, r, o, rest, method, version: fn(eng, r, o, rest, method, version,
                                                           kind)


SUB = _Sub()


# -- serving -----------------------------------------------------------------------------------


class Server(LoopbackServer):
    """The simulator on a loopback port in a background thread (tests)."""

    def __init__(self, engine: Engine, port: int = 0, ssl_context=None,
                 host: str = "127.0.0.1") -> None:
        self.engine = engine
        super().__init__(create_app(engine), port, ssl_context, host)


def self_signed(tmpdir: Path, names=("localhost", "127.0.0.1")) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate it signed for *names*: (ca.pem, cert.pem, key.pem),
    made with the ``cryptography`` package."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ovirt-sim test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    sans = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    tmpdir = Path(tmpdir)
    tmpdir.mkdir(parents=True, exist_ok=True)
    paths = tmpdir / "ca.pem", tmpdir / "cert.pem", tmpdir / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.simulators.ovirt --port N [--tls] [--password P] [--api 4|3|both]``"""
    import ssl
    import tempfile

    p = argparse.ArgumentParser(prog="python -m tests.simulators.ovirt",
                                description="Simulated oVirt / RHEV-M engine (admin@internal).")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--tls", action="store_true", help="serve HTTPS with a fresh test CA "
                   "(its path is printed; also served at /ovirt-engine/services/pki-resource)")
    p.add_argument("--password", default="password")
    p.add_argument("--api", choices=("4", "3", "both"), default="4")
    p.add_argument("--step", type=float, default=0.5, help="seconds between state changes")
    a = p.parse_args(argv)
    ctx = None
    ca_pem = None
    if a.tls:
        d = Path(tempfile.mkdtemp(prefix="ovirt-sim-"))
        ca, cert, key = self_signed(d, ("localhost", a.host))
        ca_pem = ca.read_bytes()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        print(f"CA certificate: {ca}", flush=True)
    eng = Engine(password=a.password, step=a.step, api_mode=a.api, ca_pem=ca_pem)
    srv = Server(eng, a.port, ctx, a.host)
    base = "/api" if a.api == "3" else V4
    print(f"serving {'https' if a.tls else 'http'}://{a.host}:{srv.port}{base}", flush=True)
    try:
        srv.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


class TlsEngine:
    """A simulated engine on loopback HTTPS with a fresh test CA, for tests:
    ``with TlsEngine(tmp_path) as t: t.url, t.ca, t.engine``."""

    def __init__(self, tmpdir: Path, api_mode: str = "4", password: str = "password",
                 step: float = 0.02) -> None:
        import ssl

        self.ca, cert, key = self_signed(Path(tmpdir) / f"pki-{secrets.token_hex(3)}")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.engine = Engine(password=password, step=step, api_mode=api_mode,
                             ca_pem=self.ca.read_bytes())
        self.server = Server(self.engine, 0, ctx)
        self.path = "/api" if api_mode == "3" else V4
        self.url = f"https://127.0.0.1:{self.server.port}{self.path}"

    def __enter__(self) -> TlsEngine:
        self.server.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.server.__exit__(*exc)
