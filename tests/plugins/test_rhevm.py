"""The RHEV-M / oVirt driver against the simulated engine over HTTPS on loopback (test CA),
in API v4 and v3: every VM function, host and data-center functions, and bad input."""

from __future__ import annotations

import socket
import time

import pytest

from nodemgr.plugins.base import (
    DiskSpec,
    Endpoint,
    NicSpec,
    PermanentError,
    Unreachable,
    VmChange,
    VmSpec,
)
from nodemgr.plugins.rhevm import RhevmDriver
from tests.simulators.ovirt import TlsEngine

pytestmark = pytest.mark.slow


def endpoint(t, password="password", **opts):
    o = {"ca_file": str(t.ca), "poll": "0.02"}
    o.update(opts)
    return Endpoint("rhevm", t.url, "eng", "admin@internal", password, tuple(o.items()))


@pytest.fixture(params=["4", "3"])
def sim(request, tmp_path):
    with TlsEngine(tmp_path, api_mode=request.param) as t:
        yield t


def driver(t, **opts):
    d = RhevmDriver(endpoint(t, **opts), 20)
    d.connect()
    return d


def spec(name="vm1", **kw):
    s = VmSpec(name, memory_mib=1024, cpus=2,
               disks=[DiskSpec("disk1", "sd:data1", 2048, "cow", "virtio")],
               nics=[NicSpec("ovirtmgmt", "52:54:00:00:00:01", "virtio", "network")],
               extra={"disk_roles": "system", "nic_names": "eth0", "sockets": "1",
                      "cores": "2"})
    for k, v in kw.items():
        setattr(s, k, v)
    return s


def storage(d):
    d.sd_create("data1", "nfs", "host1", "/exports/data1", "nfs.example.com")
    d.sd_attach("data1", "Default")
    deadline = time.monotonic() + 5
    while "active" not in "".join(d.ve_list("dc")) and time.monotonic() < deadline:
        time.sleep(0.02)


def test_version_detected_and_session_reused(sim):
    d = driver(sim)
    assert d.engine.version == ("3" if sim.path == "/api" else "4")
    n = len(sim.engine.requests)
    d.list_vms()
    hdrs = sim.engine.requests[n][2]
    assert "Authorization" not in hdrs and "JSESSIONID" in hdrs.get("Cookie", "")
    d.close()


def test_vm_lifecycle(sim):
    d = driver(sim)
    storage(d)
    s = spec()
    [r] = d.create([s])
    assert r.ok, r.message
    assert r.facts.macs == ["52:54:00:00:00:01"] and r.facts.uuid and not r.updates
    seen = []
    for action, want in (("stat", "off"), ("on", "on"), ("on", "on"), ("suspend", "suspended"),
                         ("resume", "on"), ("softoff", "off"), ("boot", "off on"),
                         ("boot", "on reset"), ("reset", "reset"), ("off", "off")):
        [r] = d.power([s], action)
        assert r.ok and r.message == want, (action, r.message)
        seen.append(r.message)
    [r] = d.describe([s])
    assert "Memory: 1024 MiB" in r.message and "Disk 1:" in r.message and "NIC eth0" in r.message
    [r] = d.change([s], VmChange(push=True, memory_mib=2048))
    assert r.ok and r.message == "change vm completed."
    [r] = d.change([s], VmChange(add_disks_mib=[1024]))
    assert not r.ok and "no storage domain" in r.message
    s.storage = ["sd:data1"]
    [r] = d.change([s], VmChange(add_disks_mib=[1024]))
    assert r.ok, r.message
    [r] = d.change([s], VmChange(remove_disks=["vdb"]))
    assert r.ok, r.message
    [r] = d.power([s], "on")
    [r] = d.stats([s])
    assert r.ok and r.data["memory_mib"] == 2048
    [r] = d.addresses([s])
    assert r.ok
    assert [v.name for v in d.list_vms()] == ["vm1"]
    [r] = d.remove([s])
    assert not r.ok and "VM is running" in r.message
    [r] = d.remove([s], force=True)
    assert r.ok
    [r] = d.power([s], "stat")
    assert not r.ok and "not defined" in r.message


def test_migrate_template_clone_and_hosts(sim):
    d = driver(sim)
    storage(d)
    assert d.host_add("host2", "192.0.2.2", "Default", "secret") == "up"
    s = spec()
    assert next(iter(d.create([s]))).ok
    assert next(iter(d.power([s], "on"))).ok
    [r] = d.migrate([s], Endpoint("rhevm", "x", "host2"))
    assert r.ok and r.message == "migrated to host2" and r.facts.host == "host2"
    [r] = d.migrate([s], Endpoint("rhevm", "x", "nohost"))
    assert not r.ok and "nohost: host was not defined" in r.message
    r = None
    with pytest.raises(Exception, match="must be down"):
        d.make_master(s, "gold")
    next(iter(d.power([s], "off")))
    r = d.make_master(s, "gold")
    assert r.ok and r.message == "gold: ok."
    [c1, c2] = d.clone_from_master([spec("vm2", disks=[]), spec("vm3", disks=[])], "gold", None,
                                   detached=True)
    assert c1.ok and c2.ok, (c1.message, c2.message)
    assert d.host_deactivate("host2") == "maintenance"
    assert d.host_activate("host2") == "up"
    assert d.host_remove("host2", force=True) == "removed."
    sim.engine.add("hosts", name="rhevh3", address="192.0.2.3", status="pending_approval",
                   cluster=None, memory=8 << 30)
    assert d.host_approve("rhevh3", "Default") == "approved."
    assert any("rhevh3" in line for line in d.ve_list("host"))


def test_datacenter_objects(sim):
    d = driver(sim)
    assert d.dc_create("dc2", local=True) == "created."
    assert d.cluster_create("cl2", "dc2", "Intel Westmere Family") == "created."
    assert d.network_create("storage", "dc2", "20") == "created."
    assert d.network_attach("storage", "cl2", "dc2") == "attached to cl2."
    assert any("network: storage" in x for x in d.ve_list("cl", ["cl2"]))
    assert d.network_detach("storage", "cl2") == "detached from cl2."
    assert d.network_remove("storage", "dc2") == "removed."
    assert d.sd_create("local1", "localfs", "host1", "/data/images") == "created."
    assert d.sd_attach("local1", "dc2") == "attached to dc2."
    time.sleep(0.1)
    assert d.sd_activate("local1", "dc2", False) == "maintenance"
    assert d.sd_activate("local1", "dc2", True) == "active"
    assert d.sd_activate("local1", "dc2", False) == "maintenance"
    assert d.sd_detach("local1", "dc2") == "detached from dc2."
    assert d.remove_object("sd", "local1", host="host1") == "removed."
    assert d.remove_object("cl", "cl2") == "removed."
    assert d.remove_object("dc", "dc2") == "removed."


@pytest.mark.parametrize("call,needle", [
    (lambda d: d.create([spec(extra={"cluster": "nocl"})]), "cluster 'nocl' not found"),
    (lambda d: d.create([spec(master="notpl")]), "template 'notpl' not found"),
    (lambda d: d.create([spec(disks=[DiskSpec("disk1", "sd:nosd", 1)])]),
     "storage domain 'nosd' not found"),
    (lambda d: d.migrate([spec()], Endpoint("rhevm", "x", "h")), "not defined in the rhevm"),
])
def test_unknown_names_one_line_nothing_created(sim, call, needle):
    d = driver(sim)
    [r] = call(d)
    assert not r.ok and needle in r.message and "\n" not in r.message
    assert sim.engine.objs["vms"] == {}


def test_409_conflict_is_reported(sim):
    d = driver(sim)
    s = spec(disks=[])
    next(iter(d.create([s])))
    next(iter(d.power([s], "on")))
    vid = next(iter(sim.engine.objs["vms"]))
    from nodemgr.plugins.base import InvalidState
    with pytest.raises(InvalidState, match=r"^Cannot run VM\. VM is running\.$"):
        d.engine.request("POST", f"vms/{vid}/start", None)
    [r] = d.create([s])
    assert not r.ok and "already exists" in r.message


def test_wrong_password_one_request_one_line(sim):
    d = RhevmDriver(endpoint(sim, password="wrong"), 20)
    with pytest.raises(PermanentError) as e:
        d.connect()
    assert "rejected the credentials" in str(e.value) and "wrong" not in str(e.value)
    assert len(sim.engine.requests) == 0  # 401 is answered before logging: one try only


def test_sso_token(sim):
    if sim.path == "/api":
        pytest.skip("SSO exists from oVirt 4.0")
    d = driver(sim, auth="sso")
    assert d.list_vms() == []
    assert sim.engine.requests[-1][2]["Authorization"].startswith("Bearer ")
    bad = RhevmDriver(endpoint(sim, password="nope", auth="sso"), 20)
    from nodemgr.plugins.rhevm import api as ovirt_api
    ovirt_api._tokens.clear()
    with pytest.raises(PermanentError, match="SSO login as admin@internal"):
        bad.connect()


def test_sso_login_is_logged_out_on_close(sim):
    """With SSO the driver revokes its token when the last session of the process that
    uses it closes, as the official SDK's close() does: POST services/sso-logout with
    scope=ovirt-app-api and the token (never in the URL)."""
    if sim.path == "/api":
        pytest.skip("SSO exists from oVirt 4.0")
    from nodemgr.plugins.rhevm import api as ovirt_api
    ovirt_api._tokens.clear()
    first, second = driver(sim, auth="sso"), driver(sim, auth="sso")
    assert len(sim.engine.tokens) == 1              # one login shared by both sessions
    [token] = sim.engine.tokens
    first.close()
    assert sim.engine.logouts == [] and second.list_vms() == []
    second.close()
    assert sim.engine.logouts == [("POST", {"scope": "ovirt-app-api", "token": token})]
    assert sim.engine.tokens == set() and ovirt_api._tokens == {}
    second.close()                                  # closing twice: nothing more sent
    assert len(sim.engine.logouts) == 1
    third = driver(sim, auth="sso")                 # a new login after the logout
    assert sim.engine.tokens and token not in sim.engine.tokens
    third.close()
    assert len(sim.engine.logouts) == 2 and sim.engine.tokens == set()
    basic = driver(sim)                             # Basic auth: no SSO logout
    basic.close()
    assert len(sim.engine.logouts) == 2


def test_start_of_a_vm_without_a_disk_is_one_line(sim):
    d = driver(sim)
    s = spec("nodisk", disks=[], bootorder=["hd"])
    [r] = d.create([s])
    assert r.ok, r.message
    [r] = d.power([s], "on")
    assert not r.ok
    assert r.message == "Cannot run VM without at least one bootable disk."
    [r] = d.power([s], "stat")
    assert r.ok and r.message == "off"
    d.close()


def test_untrusted_ca_and_plain_http_refused(sim, tmp_path):
    d = RhevmDriver(Endpoint("rhevm", sim.url, "e", "admin@internal", "password"), 20)
    with pytest.raises(PermanentError, match="not trusted"):
        d.connect()
    with pytest.raises(PermanentError, match="plain HTTP"):
        RhevmDriver(Endpoint("rhevm", sim.url.replace("https", "http"), "e", "a", "p"), 5)


def test_unreachable_within_timeout():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    d = RhevmDriver(Endpoint("rhevm", f"https://127.0.0.1:{port}/ovirt-engine/api", "e",
                             "admin@internal", "p"), 3)
    t0 = time.monotonic()
    with pytest.raises(Unreachable):
        d.connect()
    assert time.monotonic() - t0 < 3


def test_html_and_malformed_answers(tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    bodies = iter([(200, "text/html", b"<html><body>proxy login</body></html>"),
                   (200, "application/xml", b"<api><unclosed>")])

    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            code, ctype, body = next(bodies)
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = HTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_port}/ovirt-engine/api"
        for needle in ("text/html, not API XML", "malformed XML"):
            d = RhevmDriver(Endpoint("rhevm", url, "e", "admin@internal", "p",
                                     (("insecure_http", "1"),)), 5)
            with pytest.raises(PermanentError, match=needle):
                d.connect()
    finally:
        srv.shutdown()
        srv.server_close()


# -- rvitals, rinv, rscan, rsetboot, getrvidparms / rcons ------------------------------------


def running_vm(sim, d, name="vm1", display="spice"):
    storage(d)
    s = spec(name, extra={"disk_roles": "system", "nic_names": "eth0", "sockets": "1",
                          "cores": "2", "vidproto": display})
    [r] = d.create([s])
    assert r.ok, r.message
    [r] = d.power([s], "on")
    assert r.ok, r.message
    return s, sim.engine.objs["vms"][r.facts.uuid] if r.facts.uuid else next(
        v for v in sim.engine.objs["vms"].values() if v["name"] == name)


def test_vitals_from_the_engine_statistics(sim):
    """CPU % per vCPU summed (the engine's VM-wide % × vCPUs), memory used/installed MiB,
    NIC and disk rates in bytes/s summed, the engine's 15 s sampling period; a VM that is
    down has zero use; an unknown VM is its one line."""
    from tests.simulators.ovirt import Renderer

    d = driver(sim)
    s, vm = running_vm(sim, d)
    [r, bad] = d.vitals([s, spec("nosuch")], 1.0)
    assert r.ok and not r.updates, r.message
    m = r.facts.metrics
    assert (m.interval_s, m.cpus, m.cpu_pct) == (15.0, 2, 26.0)     # 13 % of 2 vCPUs
    assert (m.mem_avail_mib, m.mem_used_mib) == (1024, 307)
    assert (m.net_rx_bps, m.net_tx_bps) == (Renderer.NIC_RX, Renderer.NIC_TX)
    assert (m.disk_read_bps, m.disk_write_bps) == (Renderer.DISK_READ, Renderer.DISK_WRITE)
    assert not bad.ok and bad.data["error"] == "NotFound" and "not defined" in bad.message
    [r] = d.power([s], "off")
    [r] = d.vitals([s])
    assert r.ok and r.facts.metrics.cpu_pct == 0 and r.facts.metrics.net_rx_bps == 0
    d.close()


def test_inventory_and_scan(sim):
    """rinv: the engine's id, vCPUs, memory, disks with their provisioned size, NICs with
    MAC and network, the guest agent's addresses (with the MAC on v4); rscan: every VM
    with the same details, and the host a running one is on."""
    d = driver(sim)
    s, vm = running_vm(sim, d)
    [r] = d.inventory([s])
    assert r.ok, r.message
    inv = r.facts.inventory
    assert (inv.uuid, inv.cpus, inv.memory_mib) == (vm["id"], 2, 1024)
    assert [(x.size_mib, x.format) for x in inv.disks] == [(2048, "cow")]
    assert [(n.mac, n.network, n.model) for n in inv.nics] == [
        ("52:54:00:00:00:01", "ovirtmgmt", "virtio")]
    assert [(a.ip, a.source) for a in inv.addresses] == [(vm["ip"], "agent")]
    assert inv.addresses[0].mac == (None if sim.path == "/api" else "52:54:00:00:00:01")
    assert r.facts.addresses == inv.addresses and not r.updates
    [info] = d.scan()
    assert (info.name, info.state, info.uuid, info.cpus, info.memory_mib) == (
        "vm1", "on", vm["id"], 2, 1024)
    assert info.macs == ["52:54:00:00:00:01"] and info.host == "host1"
    assert [x.size_mib for x in info.disks] == [2048]
    d.close()


def test_set_boot_puts_the_device_first(sim):
    """rsetboot: the device first, the VM's other devices after it, through PUT vm
    os/boot; default = vm.bootorder; an unknown device is one line and nothing is sent."""
    d = driver(sim)
    storage(d)
    s = spec(bootorder=["hd"])
    assert next(iter(d.create([s]))).ok
    vm = next(iter(sim.engine.objs["vms"].values()))
    [r] = d.set_boot([s], "net")
    assert r.ok and r.facts.bootdev == "net" and vm["boot"] == ["network", "hd"], r.message
    [r] = d.set_boot([s], "cd")
    assert r.ok and vm["boot"] == ["cdrom", "network", "hd"]
    s.bootorder = ["network", "hd"]
    [r] = d.set_boot([s], "default")
    assert r.ok and vm["boot"] == ["network", "hd"] and r.message == "network,hd"
    n = len(sim.engine.requests)
    [r] = d.set_boot([s], "floppy")
    assert not r.ok and r.data["error"] == "Unsupported" and "'floppy'" in r.message
    assert len(sim.engine.requests) == n
    d.close()


def test_set_boot_waits_for_a_locked_vm(sim):
    """A VM whose disks are being copied answers 409 "...locked"; set_boot retries until
    the lock is gone (retry(), Transient)."""
    d = driver(sim)
    s = spec(disks=[])
    assert next(iter(d.create([s]))).ok
    vm = next(iter(sim.engine.objs["vms"].values()))
    vm["status"] = "image_locked"
    n = len(sim.engine.requests)

    def unlock_after_the_first_put():  # the engine's lock ends once a PUT was refused
        while not any(m == "PUT" for m, _, _ in sim.engine.requests[n:]):
            time.sleep(0.01)
        with sim.engine.lock:  # held while that PUT is answered
            vm["status"] = "down"

    import threading

    t = threading.Thread(target=unlock_after_the_first_put, daemon=True)
    t.start()
    [r] = d.set_boot([s], "net")
    t.join(5)
    assert r.ok and vm["boot"][0] == "network", r.message
    puts = [p for m, p, _ in sim.engine.requests[n:] if m == "PUT"]
    assert len(puts) >= 2                           # refused while locked, then done
    d.close()


@pytest.mark.parametrize("display", ["spice", "vnc"])
def test_console_is_the_remote_display_with_a_ticket(sim, display):
    """getrvidparms: protocol, address and port of the running VM's display (v4 graphics
    console, v3 display element) and the engine's one-time ticket; rcons (a serial
    stream) is Unsupported before any request; a VM that is down has no display."""
    d = driver(sim)
    s, vm = running_vm(sim, d, display=display)
    con = d.console(s)
    from tests.simulators.ovirt import Renderer

    addr, port, tls = Renderer(sim.engine, "/").display_of(vm)
    assert (con.kind, con.host, con.port) == (display, addr, port)
    assert con.password and con.password == vm["ticket"] and con.password not in repr(con)
    assert con.command.startswith("remote-viewer ") and con.password not in con.command
    if display == "spice":
        assert f"tls-port={tls}" in con.command
    n = len(sim.engine.requests)
    from nodemgr.plugins.base import InvalidState, Unsupported
    from nodemgr.plugins.rhevm import TRAITS
    with pytest.raises(Unsupported, match="no serial console"):
        d.console(s, open_stream=True)
    assert len(sim.engine.requests) == n and TRAITS.why_not("rcons")
    next(iter(d.power([s], "off")))
    with pytest.raises(InvalidState, match="only while the VM runs"):
        d.console(s)
    d.close()


def test_traits_need_no_http_library():
    import subprocess
    import sys

    code = ("import sys, nodemgr.plugins.registry as r; t = r.traits('rhevm'); "
            "print(t.endpoint_attr, t.hosts_via_manager, 'requests' in sys.modules, "
            "'nodemgr.plugins.rhevm.driver' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["vm.mgr", "True", "False", "False"]
