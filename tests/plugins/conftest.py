"""Fixtures for the libvirt driver tests.

* ``test_uri``: a private libvirt *test driver* host (``test:///<file>``; each open of a
  file URI gets its own fresh state, unlike ``test:///default``).
* ``real``: the system libvirtd (``qemu:///system``, started by ``scripts/setup-host``) with
  a private directory pool under ``/var/lib/nodemgr/test-<id>``; every domain named
  ``nmtest-<id>-*`` and the pool are removed afterwards, even when the test fails.
* ``mig_hosts``: two extra libvirtd instances in their own mount namespaces (own host UUIDs,
  ``tests/fixtures/libvirtd_instance.sh``), stopped afterwards.

Without a reachable libvirtd these tests skip, unless ``NODEMGR_REQUIRE_ALL=1`` (CI), where
they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REQUIRE_ALL = os.environ.get("NODEMGR_REQUIRE_ALL") == "1"
SYSTEM_URI = os.environ.get("NODEMGR_TEST_LIBVIRT", "qemu:///system")
INSTANCE_SH = Path(__file__).resolve().parents[1] / "fixtures" / "libvirtd_instance.sh"

TESTNODE_XML = """<node>
  <cpu><mhz>2000</mhz><model>i686</model><nodes>1</nodes><sockets>1</sockets><cores>2</cores>
       <threads>1</threads></cpu>
  <memory>4194304</memory>
  <domain type='test'>
    <name>cn001</name>
    <uuid>11111111-0000-4000-8000-000000000001</uuid>
    <memory>262144</memory><vcpu>1</vcpu>
    <os><type>hvm</type><boot dev='network'/></os>
    <devices>
      <disk type='file' device='disk'>
        <driver name='qemu' type='qcow2'/>
        <source file='/images/cn001.vda.qcow2'/>
        <target dev='vda' bus='virtio'/>
      </disk>
      <disk type='file' device='disk'>
        <driver name='qemu' type='raw'/>
        <source file='/images/cn001.vdb.raw'/>
        <target dev='vdb' bus='virtio'/>
      </disk>
      <disk type='file' device='cdrom'>
        <driver name='qemu' type='raw'/>
        <target dev='hdc' bus='ide'/>
        <readonly/>
      </disk>
      <interface type='network'><mac address='52:54:00:00:00:01'/><source network='default'/></interface>
    </devices>
  </domain>
  <domain type='test'>
    <name>cn002</name>
    <memory>262144</memory><vcpu>1</vcpu>
    <os><type>hvm</type></os>
  </domain>
  <network>
    <name>default</name>
    <bridge name='virbr0'/>
    <ip address='192.168.122.1' netmask='255.255.255.0'>
      <dhcp><range start='192.168.122.2' end='192.168.122.254'/></dhcp>
    </ip>
  </network>
  <pool type='dir'>
    <name>images</name>
    <target><path>/images</path></target>
    <volume type='file'><name>cn001.vda.qcow2</name><capacity unit='M'>64</capacity>
      <target><format type='qcow2'/></target></volume>
    <volume type='file'><name>cn001.vdb.raw</name><capacity unit='M'>64</capacity>
      <target><format type='raw'/></target></volume>
  </pool>
</node>
"""


@pytest.fixture
def test_uri(tmp_path: Path) -> str:
    """URI of a fresh libvirt test-driver host: running domains ``cn001`` (two disks in the
    pool ``images`` at ``/images``, one raw) and ``cn002`` (no disks)."""
    path = tmp_path / "testnode.xml"
    path.write_text(TESTNODE_XML)
    return f"test://{path}"


def _need(reason: str) -> None:
    if REQUIRE_ALL:
        pytest.fail(reason)
    pytest.skip(reason)


def _libvirt_or_skip():
    try:
        import libvirt
    except ImportError:
        _need("libvirt-python is not installed")
    return libvirt


@dataclass
class RealHost:
    """The system libvirtd with a private pool directory for one test."""

    uri: str
    prefix: str
    dir: Path
    conn: object
    extra_cleanup: list = field(default_factory=list)

    @property
    def location(self) -> str:
        return f"dir://{self.dir}"

    def name(self, suffix: str) -> str:
        return f"{self.prefix}-{suffix}"


def _cleanup_domains(conn, prefix: str) -> None:
    import libvirt

    for dom in conn.listAllDomains(0):
        if not dom.name().startswith(prefix):
            continue
        try:
            if dom.isActive():
                dom.destroy()
        except libvirt.libvirtError:
            pass
        try:
            if dom.isPersistent():
                dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                                  | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                                  | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
        except libvirt.libvirtError:
            pass


def _cleanup_pools(conn, directory: Path) -> None:
    import libvirt

    for pool in conn.listAllStoragePools(0):
        try:
            if str(directory) not in pool.XMLDesc(0):
                continue
            if pool.isActive():
                pool.destroy()
            pool.undefine()
        except libvirt.libvirtError:
            pass


@pytest.fixture
def real():
    """The system libvirtd with a fresh pool directory; cleans up domains, pool and files."""
    libvirt = _libvirt_or_skip()
    libvirt.registerErrorHandler(lambda *_: None, None)
    try:
        conn = libvirt.open(SYSTEM_URI)
    except libvirt.libvirtError as exc:
        _need(f"libvirtd not reachable at {SYSTEM_URI}: {exc}")
    tag = uuid.uuid4().hex[:8]
    directory = Path(f"/var/lib/nodemgr/test-{tag}")
    directory.parent.mkdir(parents=True, exist_ok=True)
    host = RealHost(uri=SYSTEM_URI, prefix=f"nmtest-{tag}", dir=directory, conn=conn)
    try:
        yield host
    finally:
        _cleanup_domains(conn, host.prefix)
        _cleanup_pools(conn, directory)
        for fn in host.extra_cleanup:
            fn()
        shutil.rmtree(directory, ignore_errors=True)
        conn.close()


@pytest.fixture
def l2_bridge():
    """An L2-only bridge (no address, IPv6 off) for a real NIC; removed afterwards."""
    name = "nmtbr" + uuid.uuid4().hex[:6]
    if shutil.which("ip") is None:
        _need("iproute2 (ip) is not installed")
    subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
    try:
        Path(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6").write_text("1\n")
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "link", "del", name], check=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class MigHost:
    name: str
    dir: Path
    tcp_port: int

    @property
    def unix_uri(self) -> str:
        return f"qemu+unix:///system?socket={self.dir}/run/libvirt-sock"

    @property
    def tcp_uri(self) -> str:
        return f"qemu+tcp://127.0.0.1:{self.tcp_port}/system"


@pytest.fixture
def mig_hosts():
    """Two private libvirtd instances (hosts ``mighostA``/``mighostB``), TCP on loopback."""
    _libvirt_or_skip()
    if os.geteuid() != 0 or shutil.which("unshare") is None or not Path("/usr/sbin/libvirtd").exists():
        _need("needs root, unshare and /usr/sbin/libvirtd to run private libvirtd instances")
    base = Path(f"/tmp/nmmig-{uuid.uuid4().hex[:6]}")  # short: unix socket paths are <108 bytes
    hosts = [MigHost("mighostA", base / "A", _free_port()), MigHost("mighostB", base / "B", _free_port())]
    started = []
    import libvirt

    try:
        for i, h in enumerate(hosts):
            # both pinned to CPU 0, the second seeded with the first's QEMU capability cache:
            # libvirt re-probes QEMU (~8 s) when the cached host CPUID differs, and on this
            # kind of VM the CPUID differs between CPUs (see libvirtd_instance.sh)
            env = dict(os.environ, CPUS="0")
            if i:
                env["CAPS_CACHE"] = str(hosts[0].dir / "cache" / "qemu" / "capabilities")
            res = subprocess.run([str(INSTANCE_SH), "start", str(h.dir), str(uuid.uuid4()),
                                  str(h.tcp_port)], capture_output=True, text=True, timeout=60,
                                 env=env)
            started.append(h)
            if res.returncode != 0:
                pytest.fail(f"libvirtd instance {h.name} did not start: {res.stderr.strip()}")
            conn = libvirt.open(h.unix_uri)  # warm up: probe QEMU now if the cache is stale
            conn.getCapabilities()
            conn.close()
        yield hosts
    finally:
        # the stop script kills this instance's QEMUs (by pid file) and its daemon; both
        # instances stop in parallel (a daemon takes ~2 s to exit here)
        stops = [subprocess.Popen([str(INSTANCE_SH), "stop", str(h.dir)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for h in started]
        for proc in stops:
            proc.wait(timeout=60)
        shutil.rmtree(base, ignore_errors=True)
