"""Fidelity of the OVM Manager simulator: every ServerPoolService request the driver sends
and every response the simulator answers validates (lxml XMLSchema) against the schema
reconstructed from a client generated against a real OVM 2.x Manager
(``tests/fixtures/ovm/``, copied from ``../shared/data/ovm/``); the served WSDL is that real
reconstructed one; faults are plain SOAP 1.1 faults; the operation list matches the real one.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from lxml import etree

from nodemgr.plugins.ovm.soap import Manager
from tests.simulators.ovm import FIXTURES, SOAP_ENV, OvmManager, Server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def schema():
    wrapper = f"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:w">
      <xs:import namespace="http://www.oracle.com/webservices/internal/literal"
        schemaLocation="{(FIXTURES / 'ovm22_literal.reconstructed.xsd').as_uri()}"/>
      <xs:import namespace="http://oracle.ovs.api/types/"
        schemaLocation="{(FIXTURES / 'ovm22_types.reconstructed.xsd').as_uri()}"/>
    </xs:schema>"""
    return etree.XMLSchema(etree.fromstring(wrapper.encode()))


@pytest.fixture(scope="module")
def sim():
    with tempfile.TemporaryDirectory() as d, Server(OvmManager(d)) as s:
        yield s


def body(xml: bytes):
    return etree.fromstring(xml).find(f"{{{SOAP_ENV}}}Body")[0]


def test_serverpool_messages_validate_against_real_schema(sim, schema):
    m = Manager(sim.url, "admin", "password")
    pool = m.pool("pool1")
    m.pools()
    m.master(pool)
    servers = m.servers(pool)
    m.server("pool1", "ovs2")
    m.server_metrics([s["serverId"] for s in servers])
    m.call("ServerPoolService", "getServerPoolById", poolId=1)
    m.call("ServerPoolService", "getAllMembers", serverPool=pool)
    msgs = [x for x in sim.manager.messages if x[0] == "ServerPoolService"]
    assert {op for _, op, _, _ in msgs} >= {
        "getServerPoolByName", "getAllServerPools", "getMasterServer",
        "getVirtualServerByServerPool", "getVirtualServerByName", "getVirtualServerMetrics",
        "getServerPoolById", "getAllMembers"}
    for _, op, req, resp in msgs:
        for xml, suffix in ((req, "Element"), (resp, "ResponseElement")):
            el = body(xml)
            assert etree.QName(el).localname == op + suffix
            assert etree.QName(el).namespace == "http://oracle.ovs.api/types/"
            doc = etree.ElementTree(etree.fromstring(etree.tostring(el)))
            assert schema.validate(doc), (op, suffix, schema.error_log.last_error)
    # the validator does reject a wrong shape (element order of VirtualServer swapped)
    _, _, _, resp = next(x for x in msgs if x[1] == "getVirtualServerByName")
    el = etree.fromstring(etree.tostring(body(resp)))
    vs = el[0]
    vs.insert(0, vs[3])
    assert not schema.validate(etree.ElementTree(el))


def test_served_wsdl_is_the_real_one_and_ops_match(sim):
    import requests

    text = requests.get(f"{sim.url}/ServerPoolService.wsdl", timeout=5).text
    real = (FIXTURES / "ovm22_ServerPoolService.reconstructed.wsdl").read_text()
    assert text.replace(f"{sim.url}/ServerPoolService",
                        "http://localhost:8888/OVSWS/ServerPoolService") == real
    ops = json.loads((FIXTURES / "ovm22_ServerPoolService.operations.json").read_text())
    names = {o["operation"] for o in ops}
    doc = etree.fromstring(text.encode())
    wsdl_ops = {o.get("name") for o in doc.iter("{http://schemas.xmlsoap.org/wsdl/}operation")}
    assert names == wsdl_ops and len(names) == 54
    actions = {o.get("soapAction") for o in doc.iter(
        "{http://schemas.xmlsoap.org/wsdl/soap/}operation")}
    assert "http://oracle.ovs.api//getAllServerPools" in actions


def test_faults_are_soap11_faults(sim):
    import requests

    env = (f'<e:Envelope xmlns:e="{SOAP_ENV}"><e:Body><t:getServerPoolByNameElement '
           'xmlns:t="http://oracle.ovs.api/types/"><t:poolName>nope</t:poolName>'
           "</t:getServerPoolByNameElement></e:Body></e:Envelope>")
    r = requests.post(f"{sim.url}/ServerPoolService", data=env, auth=("admin", "password"),
                      headers={"SOAPAction": '"http://oracle.ovs.api//getServerPoolByName"',
                               "Content-Type": "text/xml"}, timeout=5)
    assert r.status_code == 500
    f = body(r.content)
    assert etree.QName(f).localname == "Fault" and f.findtext("faultstring") == \
        "Server pool nope not found"
    r = requests.post(f"{sim.url}/ServerPoolService", data=env, timeout=5)
    assert r.status_code == 401
    assert Path(FIXTURES / "README.md").exists()


def test_virtual_machines_validate_against_the_real_type(sim, schema, tmp_path):
    """The VirtualMachine objects the (inferred) VM services answer with are the real
    type (element order, vncPort/vncPassword, bootDevice/BootDevice, VmStatus): each
    ``result`` validates as ``types:VirtualMachine``; a running VM has a VNC port and a
    powered-off one none; the boot device is one of the 2.2 constants."""
    from tests.fixtures.ovm_env import VM_CFG

    seed = sim.manager.ovs / "seed_pool" / "FID"
    seed.mkdir()
    (seed / "vm.cfg").write_text(VM_CFG.format(name="FID"))
    m = Manager(sim.url, "admin", "password")
    m.approve_template(m.import_template("pool1", "FID", "fidelity"))
    vm = m.create_from_template("pool1", "FID", "fidvm", 512, 1)
    assert vm["vncPort"] is None and vm["vncPassword"]
    on = m.vm_action("powerOn", vm)
    assert on["vncPort"] >= 5900 and m.vnc_password(on) == vm["vncPassword"]
    off = m.vm_action("powerOff", on)
    assert off["vncPort"] is None
    assert m.set_boot_device(off, "PXE")["bootDevice"] == {"bootDevice": "PXE"}
    m.delete_vm(m.vm("pool1", "fidvm"))
    vm_schema = etree.XMLSchema(etree.fromstring(f"""<xs:schema
      xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:t="http://oracle.ovs.api/types/"
      targetNamespace="urn:w" elementFormDefault="qualified">
      <xs:import namespace="http://www.oracle.com/webservices/internal/literal"
        schemaLocation="{(FIXTURES / 'ovm22_literal.reconstructed.xsd').as_uri()}"/>
      <xs:import namespace="http://oracle.ovs.api/types/"
        schemaLocation="{(FIXTURES / 'ovm22_types.reconstructed.xsd').as_uri()}"/>
      <xs:element name="vm" type="t:VirtualMachine"/></xs:schema>""".encode()))
    checked = set()
    for _svc, op, _, resp in sim.manager.messages:
        if op not in ("createVmBasedOnTemplate", "powerOn", "powerOff", "configVM",
                      "getVMByName"):
            continue
        for res in body(resp):
            el = etree.fromstring(etree.tostring(res))
            el.tag = "{urn:w}vm"
            assert vm_schema.validate(etree.ElementTree(el)), (op, vm_schema.error_log)
            boot = el.findtext("{http://oracle.ovs.api/types/}bootDevice/"
                               "{http://oracle.ovs.api/types/}bootDevice")
            assert boot in ("PXE", "HDD", "CDROM")
            checked.add(op)
    assert checked == {"createVmBasedOnTemplate", "powerOn", "powerOff", "configVM",
                       "getVMByName"}
