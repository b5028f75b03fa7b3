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
