"""Parsers and writers for the Xen toolstack's text formats (``xl``, legacy ``xm``).

Formats (``../shared/reference/hypervisor-apis.md`` §3, from xen-project/xen
``tools/xl/xl_info.c``, ``tools/xentop/xentop.c``, ``docs/man/xl.cfg.5.pod.in``,
``xl-disk-configuration.txt`` and ganeti's real fixtures): ``xl list`` rows, ``xl list -l``
(JSON array, or S-expressions for Xen 4.0/4.1, ``xm`` and ``output_format="sxp"``), ``xl
info`` (``key : value``), ``xentop -b`` tables (:func:`parse_xentop`), and domain
configuration files (Python-like ``key = value``; read with the standard library's ``ast``, so
multi-line lists, comments and both quote styles are handled without a home-made tokenizer).

Pure functions on strings (and :func:`top_metrics` on parsed rows): no I/O, no SSH, never
evaluates code (``ast.literal_eval`` only). Shared with the OVM family (an OVM 2.x server
is a Xen dom0).
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field

from nodemgr.plugins.base import Metrics


class ParseError(ValueError):
    """Text that does not have the expected format; the message names the problem."""


# -- xl list -------------------------------------------------------------------------------


@dataclass
class Domain:
    """One row of ``xl list`` / ``xm list``.

    Attributes:
        name: domain name (``(null)`` for a half-destroyed domain).
        domid: domain id, None for an xend-managed domain that is not running (xm).
        memory_mib: memory in MiB.
        vcpus: online VCPUs.
        state: the six state characters (``r-----``, ``-b----``, ``--psc-`` ...).
        cpu_time_s: CPU time in seconds.
    """

    name: str
    domid: int | None
    memory_mib: int
    vcpus: int
    state: str
    cpu_time_s: float


def parse_list(text: str) -> list[Domain]:
    """Rows of ``xl list`` / ``xm list`` output (header skipped; TAB or space separated).

    Raises:
        ParseError: a row without 5 or 6 whitespace-separated fields or with bad numbers.
    """
    out = []
    for line in text.splitlines():
        fields = line.split()
        if not fields or (fields[0] == "Name" and "ID" in fields):
            continue
        try:
            if len(fields) == 6:
                name, domid, mem, vcpus, state, cpu = fields
                did: int | None = int(domid)
            elif len(fields) == 5:  # xm: a stopped xend-managed domain has no id
                name, mem, vcpus, state, cpu = fields
                did = None
            else:
                raise ValueError
            out.append(Domain(name, did, int(mem), int(vcpus), state, float(cpu)))
        except ValueError:
            raise ParseError(f"unexpected xl list line: {line.strip()!r}") from None
    return out


def power_state(state: str) -> str:
    """The xCAT power word for a six-character Xen state.

    ``crashed`` (shutdown reason ``c``), ``off`` (shut down or dying: ``---s--``,
    ``-----d``... with ``s`` or ``d`` set), ``suspended`` (paused, ``p``), else ``on``
    (running ``r``, blocked ``b`` or ``------``: ganeti's reading of the same column).
    """
    s = (state + "------")[:6]
    if s[4] == "c":
        return "crashed"
    if s[3] == "s" or s[5] == "d":
        return "off"
    if s[2] == "p":
        return "suspended"
    return "on"


# -- xl info ---------------------------------------------------------------------------------


def parse_info(text: str) -> dict[str, str]:
    """``xl info`` / ``xm info`` -> {key: value} (values stripped; numbers stay strings)."""
    info = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and " " not in key.strip():
            info[key.strip()] = value.strip()
    return info


# -- xentop -b ---------------------------------------------------------------------------------


@dataclass
class TopRow:
    """One domain row of ``xentop -b`` (xen-project/xen ``tools/xentop/xentop.c``).

    Attributes:
        name: domain name (``-f`` gives it whole; without it names are cut to 10 chars).
        state: the six state characters in xentop's order ``dsbcpr`` (``--b---``).
        cpu_s: CPU time, whole seconds.
        cpu_pct: CPU use since the previous iteration, percent of one CPU summed over
            vCPUs; 0.0 in the first iteration (no previous sample).
        mem_kib: current memory, KiB.
        maxmem_kib: memory limit, KiB; None for ``no limit`` (dom0).
        vcpus: vCPUs.
        nets: number of NICs.
        net_tx_kib, net_rx_kib: bytes sent/received over all NICs, in KiB (cumulative).
        vbds: number of block devices.
        vbd_rd, vbd_wr: read/write requests (cumulative); None when xentop prints ``-``.
        vbd_rsect, vbd_wsect: 512-byte sectors read/written (cumulative); None for ``-``.
    """

    name: str
    state: str
    cpu_s: int
    cpu_pct: float
    mem_kib: int
    maxmem_kib: int | None
    vcpus: int
    nets: int
    net_tx_kib: int
    net_rx_kib: int
    vbds: int
    vbd_rd: int | None
    vbd_wr: int | None
    vbd_rsect: int | None
    vbd_wsect: int | None


_TOP_ROW = re.compile(
    r"^\s*(?P<name>\S.*?)\s+(?P<state>[dsbcpr-]{6})\s+(?P<cpu_s>\d+)\s+(?P<cpu_pct>[\d.]+)"
    r"\s+(?P<mem>\d+)\s+[\d.]+\s+(?P<maxmem>\d+|no limit)\s+(?:[\d.]+|n/a)\s+(?P<vcpus>\d+)"
    r"\s+(?P<nets>\d+)\s+(?P<tx>\d+)\s+(?P<rx>\d+)\s+(?P<vbds>\d+)\s+(?:\d+|-)"
    r"\s+(?P<rd>\d+|-)\s+(?P<wr>\d+|-)\s+(?P<rsect>\d+|-)\s+(?P<wsect>\d+|-)\s+\d+\s*$")


def parse_xentop(text: str) -> list[list[TopRow]]:
    """``xentop -b [-i N] [-f]`` output -> one list of rows per iteration, in order.

    An iteration starts at each ``NAME  STATE  CPU(sec) ...`` header; the summary lines
    an interactive or old xentop prints above it (``xentop - 18:03:17   Xen 4.1.2``,
    ``Mem: ...``) and the per-domain detail lines of ``-n``/``-v``/``-x`` are skipped.

    Raises:
        ParseError: no header at all, or a line right after a header that is not a row.
    """
    iterations: list[list[TopRow]] = []
    for line in text.splitlines():
        fields = line.split()
        if fields[:3] == ["NAME", "STATE", "CPU(sec)"]:
            iterations.append([])
            continue
        if not iterations or not fields:
            continue
        m = _TOP_ROW.match(line)
        if m is None:
            if not iterations[-1]:
                raise ParseError(f"unexpected xentop line: {line.strip()!r}")
            continue  # a -n/-v/-x detail line
        num = {k: None if m[k] == "-" else int(m[k]) for k in ("rd", "wr", "rsect", "wsect")}
        iterations[-1].append(TopRow(
            name=m["name"], state=m["state"], cpu_s=int(m["cpu_s"]),
            cpu_pct=float(m["cpu_pct"]), mem_kib=int(m["mem"]),
            maxmem_kib=None if m["maxmem"] == "no limit" else int(m["maxmem"]),
            vcpus=int(m["vcpus"]), nets=int(m["nets"]), net_tx_kib=int(m["tx"]),
            net_rx_kib=int(m["rx"]), vbds=int(m["vbds"]), vbd_rd=num["rd"],
            vbd_wr=num["wr"], vbd_rsect=num["rsect"], vbd_wsect=num["wsect"]))
    if not iterations:
        raise ParseError("no xentop header (NAME STATE CPU(sec) ...) in the output")
    return iterations


def top_metrics(first: TopRow | None, second: TopRow, interval_s: float) -> Metrics:
    """:class:`~nodemgr.plugins.base.Metrics` of one domain from its rows of two xentop
    iterations *interval_s* seconds apart (*first* None: the domain was not in the first
    one, so no CPU % and no rates). CPU % is xentop's own figure for the second iteration
    (of one CPU, summed over vCPUs); memory MiB: used = what Xen gave the guest (the dom0
    cannot see inside it), available = its limit (``maxmem``, else the allocation); disk
    rates from the 512-byte sector counters, network rates from the KiB counters, bytes/s.
    A counter xentop prints as ``-`` (VBD in error) or one that went down (the domain was
    restarted in between) gives None."""

    def rate(name: str, unit: int) -> float | None:
        a = getattr(first, name, None)
        b = getattr(second, name)
        if a is None or b is None or b < a or interval_s <= 0:
            return None
        return round((b - a) * unit / interval_s, 1)

    return Metrics(interval_s=float(interval_s),
                   cpu_pct=second.cpu_pct if first is not None else None, cpus=second.vcpus,
                   mem_used_mib=second.mem_kib // 1024,
                   mem_avail_mib=(second.maxmem_kib or second.mem_kib) // 1024,
                   disk_read_bps=rate("vbd_rsect", 512), disk_write_bps=rate("vbd_wsect", 512),
                   net_rx_bps=rate("net_rx_kib", 1024), net_tx_bps=rate("net_tx_kib", 1024))


# -- xl list -l --------------------------------------------------------------------------------


def parse_sxp(text: str) -> list:
    """S-expressions (``(domain (domid 0) (name x) ...)``) -> nested lists of strings.

    Atoms may be single-quoted (``'root=/dev/xvda1 ro'``). Raises ParseError on unbalanced
    parentheses.
    """
    tokens = re.findall(r"\(|\)|'[^']*'|\"[^\"]*\"|[^\s()]+", text)
    stack: list[list] = [[]]
    for tok in tokens:
        if tok == "(":
            stack.append([])
        elif tok == ")":
            if len(stack) < 2:
                raise ParseError("unbalanced ')' in S-expression output")
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(tok[1:-1] if tok[0] in "'\"" else tok)
    if len(stack) != 1:
        raise ParseError("unbalanced '(' in S-expression output")
    return stack[0]


def _sxp_get(node: list, key: str, default=None):
    for item in node[1:]:
        if isinstance(item, list) and item and item[0] == key:
            return item[1] if len(item) == 2 else item[1:]
    return default


def parse_list_long(text: str) -> list[dict]:
    """``xl list -l`` (JSON array, or SXP) -> one summary dict per domain.

    Keys: ``name``, ``domid`` (int or None), ``uuid``, ``memory_mib``, ``vcpus``, ``type``
    (``pv``/``hvm``/``pvh`` when known), ``state`` (SXP only), ``disks`` [{``target``,
    ``vdev``, ``mode``}], ``nics`` [{``mac``, ``bridge``}].
    Raises ParseError for text that is neither.
    """
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            doms = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ParseError(f"bad JSON from xl list -l: {exc}") from None
        return [_from_json(d) for d in doms]
    if stripped.startswith("(") or not stripped:
        return [_from_sxp(d) for d in parse_sxp(stripped)
                if isinstance(d, list) and d and d[0] == "domain"]
    raise ParseError("xl list -l output is neither JSON nor S-expressions")


def _from_json(d: dict) -> dict:
    cfg = d.get("config") or {}
    ci, bi = cfg.get("c_info") or {}, cfg.get("b_info") or {}
    mem_kb = bi.get("target_memkb") or bi.get("max_memkb") or 0
    return {
        "name": ci.get("name"), "domid": d.get("domid"), "uuid": ci.get("uuid"),
        "memory_mib": int(mem_kb) // 1024 if mem_kb else None,
        "vcpus": bi.get("max_vcpus"), "type": ci.get("type"), "state": None,
        "disks": [{"target": x.get("pdev_path"), "vdev": x.get("vdev"),
                   "mode": "w" if x.get("readwrite", 1) else "r"}
                  for x in cfg.get("disks") or []],
        "nics": [{"mac": x.get("mac"), "bridge": x.get("bridge")} for x in cfg.get("nics") or []],
    }


def _from_sxp(d: list) -> dict:
    disks, nics = [], []
    for item in d[1:]:
        if isinstance(item, list) and item and item[0] == "device" and len(item) > 1:
            dev = item[1]
            if dev[0] in ("vbd", "tap", "tap2"):
                uname = _sxp_get(dev, "uname")
                disks.append({"target": uname, "vdev": (_sxp_get(dev, "dev") or "").split(":")[0],
                              "mode": _sxp_get(dev, "mode")})
            elif dev[0] == "vif":
                nics.append({"mac": _sxp_get(dev, "mac"), "bridge": _sxp_get(dev, "bridge")})
    image = _sxp_get(d, "image")
    kind = None
    if isinstance(image, list) and image and isinstance(image[0], str):
        kind = {"linux": "pv", "hvm": "hvm"}.get(image[0])
    elif isinstance(image, list) and image and isinstance(image[0], list):
        kind = {"linux": "pv", "hvm": "hvm"}.get(image[0][0])
    domid = _sxp_get(d, "domid")
    mem = _sxp_get(d, "memory")
    vcpus = _sxp_get(d, "online_vcpus") or _sxp_get(d, "vcpus")
    return {"name": _sxp_get(d, "name"), "domid": int(domid) if domid not in (None, []) else None,
            "uuid": _sxp_get(d, "uuid"), "memory_mib": int(mem) if mem else None,
            "vcpus": int(vcpus) if vcpus else None, "type": kind,
            "state": _sxp_get(d, "state"), "disks": disks, "nics": nics}


# -- domain configuration files -----------------------------------------------------------------


def parse_config(text: str) -> dict:
    """A domain configuration file -> {key: value} (str, int, float or list of str).

    Raises:
        ParseError: a syntax error (with its line) or a value that is not a literal.
    """
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise ParseError(f"config line {exc.lineno}: {exc.msg}") from None
    cfg = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)):
            raise ParseError(f"config line {node.lineno}: not a 'key = value' setting")
        try:
            cfg[node.targets[0].id] = ast.literal_eval(node.value)
        except ValueError:
            raise ParseError(f"config line {node.lineno}: value of "
                             f"{node.targets[0].id} is not a literal") from None
    return cfg


#: Keys written first, in this order; the rest follow sorted.
_ORDER = ("name", "uuid", "type", "builder", "memory", "maxmem", "vcpus", "kernel", "ramdisk",
          "extra", "cmdline", "bootloader", "bootargs", "boot", "vif", "disk")


def format_config(cfg: dict, header: str = "") -> str:
    """{key: value} -> configuration file text (``key = "str"``, ``key = 1``,
    ``key = [ 'a', 'b' ]``), readable by ``xl`` and ``xm`` and by :func:`parse_config`."""
    lines = [f"# {line}" for line in header.splitlines()]
    for key in sorted(cfg, key=lambda k: (_ORDER.index(k) if k in _ORDER else len(_ORDER), k)):
        v = cfg[key]
        if isinstance(v, (list, tuple)):
            body = ", ".join(_quote(x) for x in v)
            lines.append(f"{key} = [ {body} ]")
        elif isinstance(v, bool):
            lines.append(f"{key} = {int(v)}")
        elif isinstance(v, (int, float)):
            lines.append(f"{key} = {v}")
        else:
            lines.append(f"{key} = {_quote(str(v))}")
    return "\n".join(lines) + "\n"


def _quote(s: str) -> str:
    if "'" not in s:
        return f"'{s}'"
    return json.dumps(s)


def parse_vif(spec: str) -> dict[str, str]:
    """``'mac=00:16:3e:..,bridge=xenbr0,model=e1000'`` -> {key: value}; ``''`` -> {}."""
    out = {}
    for item in spec.split(","):
        key, sep, value = item.strip().partition("=")
        if key:
            out[key] = value if sep else ""
    return out


@dataclass
class DiskInfo:
    """One ``disk = [...]`` entry, in any of xl's three syntaxes.

    Attributes:
        target: the path (``/dev/vg/lv``, ``/var/lib/xen/images/x.img``), prefix removed.
        vdev: guest device (``xvda``, ``hdc``).
        access: ``w``/``rw`` or ``r``/``ro``.
        format: ``raw``, ``qcow2``, ... when known.
        backend: ``phy``, ``file``, ``tap``, ``qdisk`` when known.
        cdrom: True for ``devtype=cdrom`` or a ``:cdrom`` vdev.
    """

    target: str
    vdev: str = ""
    access: str = "w"
    format: str | None = None
    backend: str | None = None
    cdrom: bool = False
    options: dict[str, str] = field(default_factory=dict)

    @property
    def file_backed(self) -> bool:
        """True for an image file (purgeable), False for a block device (``phy:``)."""
        if self.backend == "phy":
            return False
        return not self.target.startswith("/dev/") and bool(self.target)


_PREFIXES = ("phy:", "file:", "tap:aio:", "tap:qcow2:", "tap:tapdisk:", "tap2:aio:", "aio:",
             "qcow2:", "qcow:", "vhd:", "raw:")


def parse_disk(spec: str) -> DiskInfo:
    """Parse one disk spec: legacy ``phy:/dev/vg/lv,xvda,w``, xl positional
    ``/dev/vg/lv,raw,xvda,rw`` or key=value ``format=raw,vdev=xvda,target=/dev/...`` (target
    last, may contain commas). Raises ParseError when there is no target."""
    positional: list[str] = []
    opts: dict[str, str] = {}
    rest = spec.strip()
    while rest:
        if rest.startswith("target="):
            opts["target"] = rest[len("target="):]
            break
        item, _, rest = rest.partition(",")
        item = item.strip()
        key, sep, value = item.partition("=")
        if sep and re.fullmatch(r"[a-z-]+", key):
            opts[key] = value
        else:
            positional.append(item)
    d = DiskInfo(target="", options=opts)
    if len(positional) >= 4:
        d.target, d.format, d.vdev, d.access = positional[:4]
    elif len(positional) == 3:
        d.target, d.vdev, d.access = positional
    elif len(positional) == 2:
        d.target, d.vdev = positional
    elif positional:
        d.target = positional[0]
    d.target = opts.get("target", d.target)
    d.vdev = opts.get("vdev", d.vdev)
    d.access = opts.get("access", d.access) or "w"
    d.format = opts.get("format", d.format) or None
    d.backend = opts.get("backendtype")
    for prefix in _PREFIXES:
        if d.target.startswith(prefix):
            d.target = d.target[len(prefix):]
            kind = prefix.split(":")[0]
            d.backend = d.backend or {"aio": "tap", "tap2": "tap"}.get(kind, kind)
            if prefix.count(":") == 2 or kind in ("qcow2", "qcow", "vhd", "raw"):
                d.format = d.format or prefix.rstrip(":").split(":")[-1].replace("aio", "raw")
            break
    if d.vdev.endswith(":cdrom"):
        d.vdev, d.cdrom = d.vdev[: -len(":cdrom")], True
    d.cdrom = d.cdrom or opts.get("devtype") == "cdrom"
    if not d.target and not d.cdrom:
        raise ParseError(f"disk spec without a target: {spec!r}")
    return d
