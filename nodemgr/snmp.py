"""SNMP reads for MAC discovery: neighbour (ARP/ND) tables and switch forwarding tables.

Talks to one agent at a time with pysnmp 7's asyncio high-level API (``hlapi.v3arch``),
SNMP v2c (community) or v3 USM (auth/priv). pysnmp ships no IF-MIB, IP-MIB or BRIDGE-MIB,
so every object is named by its numeric OID (sources: RFC 4293 IP-MIB, RFC 1213, RFC 4188
BRIDGE-MIB, RFC 4363 Q-BRIDGE-MIB, RFC 2863 IF-MIB).

Values an agent sends are checked: a row with a malformed index or value is skipped and
counted in :attr:`AgentTables.malformed`, never trusted.

What it must never do: put a community or key into an exception text, a log line or a
process argument; wait longer than the agent's timeout (times its retries + 1) per request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress

# RFC 4293 IP-MIB ipNetToPhysicalTable: index ifIndex.addrType.addrLen.addr...
IPNET_PHYS_ADDR = "1.3.6.1.2.1.4.35.1.4"      # ipNetToPhysicalPhysAddress
IPNET_PHYS_UPDATED = "1.3.6.1.2.1.4.35.1.5"   # ipNetToPhysicalLastUpdated (TimeStamp)
IPNET_PHYS_TYPE = "1.3.6.1.2.1.4.35.1.6"      # ipNetToPhysicalType: invalid(2)
# RFC 1213 ipNetToMediaTable (IPv4 only): index ifIndex.a.b.c.d
IPNET_MEDIA_ADDR = "1.3.6.1.2.1.4.22.1.2"     # ipNetToMediaPhysAddress
IPNET_MEDIA_TYPE = "1.3.6.1.2.1.4.22.1.4"     # ipNetToMediaType: invalid(2)
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
# RFC 4188 BRIDGE-MIB / RFC 4363 Q-BRIDGE-MIB / RFC 2863 IF-MIB
DOT1D_FDB_PORT = "1.3.6.1.2.1.17.4.3.1.2"     # dot1dTpFdbPort.<mac>
DOT1Q_FDB_PORT = "1.3.6.1.2.1.17.7.1.2.2.1.2"  # dot1qTpFdbPort.<fdbId>.<mac>
DOT1D_BASEPORT_IFINDEX = "1.3.6.1.2.1.17.1.4.1.2"  # dot1dBasePortIfIndex.<port>
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"            # ifName.<ifIndex>
IF_DESCR = "1.3.6.1.2.1.2.2.1.2"              # ifDescr.<ifIndex> (when ifName is absent)

AUTH_PROTOCOLS = ("MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512")
PRIV_PROTOCOLS = ("DES", "3DES", "AES", "AES128", "AES192", "AES256")


class SnmpError(Exception):
    """An agent did not answer, refused the credentials, or answered an error.

    The message names the agent and the problem, never a credential."""


@dataclasses.dataclass(frozen=True)
class Credentials:
    """How to authenticate: v2c community, or a v3 USM user.

    ``auth``/``priv`` are protocol names (``SHA``, ``AES``...); ``priv_key`` None means
    authNoPriv. The repr hides every secret."""

    version: str  # "v2c" or "v3"
    community: str | None = dataclasses.field(default=None, repr=False)
    user: str | None = None
    auth_key: str | None = dataclasses.field(default=None, repr=False)
    priv_key: str | None = dataclasses.field(default=None, repr=False)
    auth: str = "SHA"
    priv: str = "AES"


@dataclasses.dataclass
class Neighbour:
    """One neighbour-table row: *ip* (text) has link-layer *mac* (``aa:bb:..``).

    ``age`` is how many seconds ago the agent last updated the row (None when unknown);
    ``table`` is ``ipNetToPhysical``, ``ipNetToMedia`` or ``neigh``."""

    ip: str
    mac: str
    ifindex: int | None
    age: float | None
    table: str


@dataclasses.dataclass
class AgentTables:
    """What one agent told us: neighbours and switch ports by MAC (``aa:bb:..`` ->
    port name), the number of malformed rows skipped, and the time the read took (s)."""

    neighbours: list[Neighbour] = dataclasses.field(default_factory=list)
    ports: dict[str, str] = dataclasses.field(default_factory=dict)
    malformed: int = 0
    seconds: float = 0.0


def mac_text(octets: bytes) -> str | None:
    """``aa:bb:cc:dd:ee:ff`` from 6 octets; None for any other length (malformed)."""
    if len(octets) != 6:
        return None
    return ":".join(f"{b:02x}" for b in octets)


def parse_phys_index(index: tuple[int, ...]) -> tuple[int, str] | None:
    """(ifIndex, ip text) from an ipNetToPhysicalTable index
    ``ifIndex.addrType.len.addr...`` (RFC 4293; addrType 1 ipv4, 2 ipv6, 3 ipv4z, 4 ipv6z);
    None when malformed. Zoned addresses drop their 4-octet zone index."""
    if len(index) < 3:
        return None
    ifindex, atype, alen, addr = index[0], index[1], index[2], index[3:]
    want = {1: 4, 2: 16, 3: 8, 4: 20}.get(atype)
    if want is None or alen != want or len(addr) != alen or any(not 0 <= b <= 255 for b in addr):
        return None
    raw = bytes(addr[:16] if atype in (2, 4) else addr[:4])
    return ifindex, str(ipaddress.ip_address(raw))


def parse_media_index(index: tuple[int, ...]) -> tuple[int, str] | None:
    """(ifIndex, ipv4 text) from an ipNetToMediaTable index ``ifIndex.a.b.c.d``; None when
    malformed."""
    if len(index) != 5 or any(not 0 <= b <= 255 for b in index[1:]):
        return None
    return index[0], ".".join(map(str, index[1:]))


def parse_mac_index(index: tuple[int, ...]) -> str | None:
    """``aa:bb:..`` from a 6-component MAC index (dot1dTpFdbTable); None when malformed."""
    if len(index) != 6 or any(not 0 <= b <= 255 for b in index):
        return None
    return mac_text(bytes(index))


def _octets(value) -> bytes | None:
    try:
        return bytes(value.asOctets())
    except (AttributeError, TypeError, ValueError):
        return None


def _int(value) -> int | None:
    if value.__class__.__name__ not in ("Integer", "Integer32", "Unsigned32", "Gauge32",
                                        "Counter32", "TimeTicks"):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _text(value) -> str | None:
    raw = _octets(value)
    if raw is None:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if text.isprintable() and text.strip() else None

def _add_neighbours(out, rows, parse_index, invalid, age, source: str) -> None:
    """Decode one ARP/neighbour table walk into ``out.neighbours``: rows whose index or
    physical address cannot be parsed are counted in ``out.malformed``; invalid entries
    (type 2) and all-zero MACs are skipped. *age* maps a row index to seconds or None."""
    for index, val in rows:
        parsed = parse_index(index)
        raw = _octets(val)
        mac = mac_text(raw) if raw is not None else None
        if parsed is None or mac is None:
            out.malformed += 1
            continue
        if index in invalid or mac == "00:00:00:00:00:00":
            continue
        out.neighbours.append(Neighbour(parsed[1], mac, parsed[0], age(index), source))



class Agent:
    """One SNMP agent at *host*:*port* read with *creds*.

    Args:
        host: address or name of the agent; port: UDP port (161).
        creds: :class:`Credentials`.
        timeout: seconds per request; retries: extra attempts per request.
        name: how messages call the agent (default ``host:port``).
    """

    def __init__(self, host: str, port: int, creds: Credentials, *, timeout: float = 2.0,
                 retries: int = 1, name: str | None = None) -> None:
        self.host, self.port, self.creds = host, port, creds
        self.timeout, self.retries = timeout, retries
        self.name = name or (f"[{host}]:{port}" if ":" in host else f"{host}:{port}")

    def _auth(self):
        from pysnmp.hlapi.v3arch import asyncio as hl

        c = self.creds
        if c.version == "v2c":
            return hl.CommunityData(c.community or "", mpModel=1)
        auth = {"MD5": hl.usmHMACMD5AuthProtocol, "SHA": hl.usmHMACSHAAuthProtocol,
                "SHA224": hl.usmHMAC128SHA224AuthProtocol,
                "SHA256": hl.usmHMAC192SHA256AuthProtocol,
                "SHA384": hl.usmHMAC256SHA384AuthProtocol,
                "SHA512": hl.usmHMAC384SHA512AuthProtocol}[c.auth]
        if not c.priv_key:
            return hl.UsmUserData(c.user, c.auth_key, authProtocol=auth)
        priv = {"DES": hl.usmDESPrivProtocol, "3DES": hl.usm3DESEDEPrivProtocol,
                "AES": hl.usmAesCfb128Protocol, "AES128": hl.usmAesCfb128Protocol,
                "AES192": hl.usmAesCfb192Protocol, "AES256": hl.usmAesCfb256Protocol}[c.priv]
        return hl.UsmUserData(c.user, c.auth_key, c.priv_key, authProtocol=auth,
                              privProtocol=priv)

    def _fail(self, what: str, indication) -> SnmpError:
        text = str(indication)
        if "timeout" in text.lower() or "No SNMP response" in text:
            budget = self.timeout * (self.retries + 1)
            return SnmpError(f"SNMP agent {self.name} did not answer within {budget:g} s")
        # pysnmp's indications name the problem (e.g. "Wrong SNMP PDU digest", "Unknown USM
        # user"); none of them carries a key or community.
        return SnmpError(f"SNMP agent {self.name}: {what}: {text}")

    async def read(self, *, fdb: bool = True) -> AgentTables:
        """Read the neighbour tables (ipNetToPhysicalTable, else ipNetToMediaTable) and,
        with *fdb*, the switch forwarding tables. Raises :class:`SnmpError` when the agent
        does not answer (within ``timeout * (retries+1)`` per request) or refuses us."""
        from pysnmp.hlapi.v3arch import asyncio as hl

        loop = asyncio.get_running_loop()
        t0 = loop.time()
        engine = hl.SnmpEngine()
        try:
            try:
                target = await hl.UdpTransportTarget.create(
                    (self.host, self.port), timeout=self.timeout, retries=self.retries)
            except Exception as exc:  # name resolution, bad address
                raise SnmpError(f"SNMP agent {self.name}: cannot reach: "
                                f"{exc.__class__.__name__}") from None
            auth = self._auth()
            ctx = hl.ContextData()

            async def get(oid: str):
                ei, es, _ix, vbs = await hl.get_cmd(engine, auth, target, ctx,
                                                    hl.ObjectType(hl.ObjectIdentity(oid)))
                if ei:
                    raise self._fail("GET " + oid, ei)
                if es:
                    raise SnmpError(f"SNMP agent {self.name}: GET {oid}: {es.prettyPrint()}")
                return vbs[0][1]

            async def walk(base: str) -> list[tuple[tuple[int, ...], object]]:
                prefix = tuple(int(x) for x in base.split("."))
                rows = []
                async for ei, es, _ix, vbs in hl.bulk_walk_cmd(
                        engine, auth, target, ctx, 0, 25,
                        hl.ObjectType(hl.ObjectIdentity(base)), lexicographicMode=False):
                    if ei:
                        raise self._fail("walk " + base, ei)
                    if es:
                        raise SnmpError(f"SNMP agent {self.name}: walk {base}: "
                                        f"{es.prettyPrint()}")
                    for oid, val in vbs:
                        o = tuple(oid)
                        if o[:len(prefix)] != prefix:
                            continue
                        if val.__class__.__name__ in ("NoSuchObject", "NoSuchInstance",
                                                      "EndOfMibView"):
                            continue
                        rows.append((o[len(prefix):], val))
                return rows

            out = AgentTables()
            await get(SYS_UPTIME)  # proves the credentials work before any walk
            await self._neighbours(walk, out, get)
            if fdb:
                await self._fdb(walk, out)
            out.seconds = loop.time() - t0
            return out
        finally:
            engine.close_dispatcher()

    async def _neighbours(self, walk, out: AgentTables, get) -> None:
        rows = await walk(IPNET_PHYS_ADDR)
        if rows:
            updated = {i: _int(v) for i, v in await walk(IPNET_PHYS_UPDATED)}
            # sysUpTime after the walks: net-snmp stamps rows when its cache reloads
            uptime = _int(await get(SYS_UPTIME))
            invalid = {i for i, v in await walk(IPNET_PHYS_TYPE) if _int(v) == 2}
            def age(index):
                ts = updated.get(index)
                return ((uptime - ts) / 100.0 if uptime is not None and ts is not None
                        and 0 <= ts <= uptime else None)

            _add_neighbours(out, rows, parse_phys_index, invalid, age, "ipNetToPhysical")
            return
        # RFC 1213 fallback (agents without the RFC 4293 table; IPv4 only)
        rows = await walk(IPNET_MEDIA_ADDR)
        invalid = {i for i, v in await walk(IPNET_MEDIA_TYPE) if _int(v) == 2} if rows else set()
        _add_neighbours(out, rows, parse_media_index, invalid, lambda index: None,
                        "ipNetToMedia")

    async def _fdb(self, walk, out: AgentTables) -> None:
        dot1d = await walk(DOT1D_FDB_PORT)
        dot1q = await walk(DOT1Q_FDB_PORT)
        if not dot1d and not dot1q:
            return
        bp2if = {}
        for index, val in await walk(DOT1D_BASEPORT_IFINDEX):
            n = _int(val)
            if len(index) == 1 and n is not None:
                bp2if[index[0]] = n
            else:
                out.malformed += 1
        names = {}
        for base in (IF_DESCR, IF_NAME):  # ifName wins over ifDescr
            for index, val in await walk(base):
                text = _text(val)
                if len(index) == 1 and text is not None:
                    names[index[0]] = text
        entries = [(parse_mac_index(i), v) for i, v in dot1d]
        entries += [(parse_mac_index(i[1:]), v) for i, v in dot1q]
        for mac, val in entries:
            port = _int(val)
            if mac is None or port is None:
                out.malformed += 1
                continue
            if port == 0:  # learned but port unknown (RFC 4188)
                continue
            ifindex = bp2if.get(port)
            out.ports.setdefault(mac, names.get(ifindex) or f"bridge port {port}")


async def read_agents(agents: list[Agent], *, fdb: bool = True
                      ) -> dict[str, AgentTables | SnmpError]:
    """Read every agent concurrently. Returns agent name -> tables, or the SnmpError it
    raised. Each agent is bounded by its own timeout (hard limit: the pysnmp budget for
    the requests made plus one second)."""

    async def one(a: Agent):
        try:
            return await a.read(fdb=fdb)
        except SnmpError as exc:
            return exc
        except Exception as exc:  # pysnmp internals on hostile input: name it, no dump
            return SnmpError(f"SNMP agent {a.name}: unusable answer "
                             f"({exc.__class__.__name__})")

    results = await asyncio.gather(*(one(a) for a in agents))
    return {a.name: r for a, r in zip(agents, results, strict=True)}
