"""Boot parameters: what a guest is told at first boot, for every hypervisor family.

A VM's boot parameters are ``key=value`` pairs (``mkvm --bootparams``, kept in the nodemgr
table ``vmbootparams``). This module turns them into the two carriers the drivers use:

* ``bootparams.conf`` (:func:`render_conf`): one ``key=value`` line per parameter, sorted,
  the file the seed's Oracle VM templates read from their small ``Bootparams.img`` disk
  (the OVM driver writes it there with mtools' ``mcopy``).
* a cloud-init NoCloud config disk (:func:`build_cidata_iso`): an ISO 9660 image with
  volume label ``cidata`` holding ``meta-data``, ``user-data``, ``network-config`` and a
  copy of ``bootparams.conf``, so stock cloud images configure themselves (libvirt, Xen).
  Layout: https://cloudinit.readthedocs.io/en/latest/reference/datasources/nocloud.html;
  network-config is version 1 (``type: physical`` + ``subnets``).

Well-known keys (every other key is passed through untouched): ``ip`` (``a.b.c.d/prefix``
or ``dhcp``; the guest's address — how a VM's IP is set), ``gateway``, ``dns`` (``,``
separated), ``hostname``, ``mac`` (the NIC the network settings apply to; default the VM's
first MAC), ``ssh_authorized_key``, ``password`` (never printed).

Built with pycdlib (pure Python, already a dependency for reading install media; no
``genisoimage`` subprocess). What it must never do: write a partial file (images are
written to a temporary name and renamed), or put a ``password`` value in a message.
"""

from __future__ import annotations

import io
import ipaddress
import os
import re
import tempfile
from collections.abc import Iterable, Mapping

from nodemgr.errors import UsageError

KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
#: Separator between pairs in the ``vmbootparams.params`` column.
SEP = "|"


def parse_pairs(items: Iterable[str]) -> dict[str, str]:
    """``["ip=10.0.0.5/24", "role=web"]`` -> ``{"ip": "10.0.0.5/24", "role": "web"}``.

    Each item may itself hold several pairs separated by ``|``. Raises UsageError naming
    the bad item (no ``=``, bad key, a value with a newline or ``|``, a bad ``ip``/``gateway``).
    """
    out: dict[str, str] = {}
    for item in items:
        for pair in item.split(SEP):
            if not pair.strip():
                continue
            key, sep, value = pair.partition("=")
            key = key.strip()
            if not sep or not KEY_RE.match(key):
                raise UsageError(f"invalid boot parameter '{_safe(pair)}' (expected key=value)")
            if "\n" in value or "\r" in value:
                raise UsageError(f"boot parameter {key} must be one line")
            out[key] = value.strip()
    _check_network(out)
    return out


def parse_column(value: str | None) -> dict[str, str]:
    """The ``vmbootparams.params`` column (``k=v|k2=v2``) -> dict; empty for None."""
    return parse_pairs([value]) if value else {}


def format_column(params: Mapping[str, str]) -> str:
    """dict -> ``vmbootparams.params`` column text (keys in the given order)."""
    return SEP.join(f"{k}={v}" for k, v in params.items())


def _safe(pair: str) -> str:
    key, sep, _ = pair.partition("=")
    return f"{key}=***" if sep and key.strip() == "password" else pair


def _check_network(p: Mapping[str, str]) -> None:
    ip = p.get("ip")
    if ip and ip != "dhcp":
        try:
            ipaddress.ip_interface(ip if "/" in ip else ip + "/24")
        except ValueError:
            raise UsageError(f"boot parameter ip='{ip}' is not an address/prefix or dhcp"
                             ) from None
    if p.get("gateway"):
        try:
            ipaddress.ip_address(p["gateway"])
        except ValueError:
            raise UsageError(f"boot parameter gateway='{p['gateway']}' is not an address"
                             ) from None


def render_conf(params: Mapping[str, str]) -> bytes:
    """``bootparams.conf``: ``key=value`` lines sorted by key, UTF-8, final newline."""
    return "".join(f"{k}={params[k]}\n" for k in sorted(params)).encode()


def parse_conf(data: bytes | str) -> dict[str, str]:
    """Inverse of :func:`render_conf` (blank and ``#`` lines ignored)."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    out = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            k, _, v = line.partition("=")
            out[k.strip()] = v.strip()
    return out


def addresses(params: Mapping[str, str]) -> list[str]:
    """The static addresses the parameters give the guest (``ip`` without prefix); [] for
    DHCP or none."""
    ip = params.get("ip")
    if not ip or ip == "dhcp":
        return []
    return [str(ipaddress.ip_interface(ip if "/" in ip else ip + "/24").ip)]


def _yaml_str(value: str) -> str:
    """A YAML double-quoted scalar (JSON string syntax is valid YAML)."""
    import json

    return json.dumps(value)


def meta_data(node: str, params: Mapping[str, str], instance_id: str | None = None) -> str:
    """NoCloud ``meta-data``: ``instance-id`` and ``local-hostname``."""
    host = params.get("hostname") or node
    return (f"instance-id: {_yaml_str(instance_id or node)}\n"
            f"local-hostname: {_yaml_str(host)}\n")


def user_data(params: Mapping[str, str]) -> str:
    """NoCloud ``user-data`` (``#cloud-config``): hostname, SSH key, password, and every
    parameter written to ``/etc/bootparams.conf`` for the guest's own scripts."""
    lines = ["#cloud-config"]
    if params.get("hostname"):
        lines.append(f"hostname: {_yaml_str(params['hostname'])}")
    if params.get("ssh_authorized_key"):
        lines += ["ssh_authorized_keys:", f"  - {_yaml_str(params['ssh_authorized_key'])}"]
    if params.get("password"):
        lines += [f"password: {_yaml_str(params['password'])}", "chpasswd: {expire: false}"]
    conf = render_conf({k: v for k, v in params.items() if k != "password"}).decode()
    lines += ["write_files:", "  - path: /etc/bootparams.conf", "    permissions: '0644'",
              f"    content: {_yaml_str(conf)}"]
    return "\n".join(lines) + "\n"


def network_config(params: Mapping[str, str], mac: str | None) -> str | None:
    """NoCloud ``network-config`` (version 1) for the NIC with *mac*, or None when the
    parameters say nothing about the network."""
    ip = params.get("ip")
    if not ip:
        return None
    mac = params.get("mac") or mac
    lines = ["version: 1", "config:", "  - type: physical", "    name: eth0"]
    if mac:
        lines.append(f"    mac_address: {_yaml_str(mac.lower())}")
    lines.append("    subnets:")
    if ip == "dhcp":
        lines.append("      - type: dhcp")
    else:
        iface = ipaddress.ip_interface(ip if "/" in ip else ip + "/24")
        lines += ["      - type: static", f"        address: {_yaml_str(str(iface))}"]
        if params.get("gateway"):
            lines.append(f"        gateway: {_yaml_str(params['gateway'])}")
        dns = [d.strip() for d in params.get("dns", "").split(",") if d.strip()]
        if dns:
            lines.append("        dns_nameservers: [" + ", ".join(_yaml_str(d) for d in dns)
                         + "]")
    return "\n".join(lines) + "\n"


def cidata_files(node: str, params: Mapping[str, str], mac: str | None = None,
                 instance_id: str | None = None) -> dict[str, bytes]:
    """File name -> content of the NoCloud disk for *node*."""
    files = {"meta-data": meta_data(node, params, instance_id).encode(),
             "user-data": user_data(params).encode(),
             "bootparams.conf": render_conf({k: v for k, v in params.items()
                                             if k != "password"})}
    net = network_config(params, mac)
    if net:
        files["network-config"] = net.encode()
    return files


def build_cidata_iso(path: str, node: str, params: Mapping[str, str], mac: str | None = None,
                     instance_id: str | None = None) -> None:
    """Write the NoCloud config disk for *node* to *path* (ISO 9660 + Joliet + Rock Ridge,
    volume label ``cidata``), atomically (temporary name in the same directory, rename).

    Raises OSError when the directory is not writable.
    """
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident="cidata")
    for name, data in sorted(cidata_files(node, params, mac, instance_id).items()):
        short = re.sub(r"[^A-Z0-9_]", "_", name.upper().replace(".", "_"))[:8]
        iso.add_fp(io.BytesIO(data), len(data), f"/{short}.;1", rr_name=name,
                   joliet_path=f"/{name}")
    fd, tmp = tempfile.mkstemp(prefix=".cidata-", dir=os.path.dirname(path) or ".")
    try:
        with os.fdopen(fd, "wb") as fh:
            iso.write_fp(fh)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        iso.close()


def read_cidata_iso(path: str) -> tuple[str, dict[str, bytes]]:
    """(volume label, {Rock Ridge name: content}) of a config disk (for tests and
    ``addresses``)."""
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.open(path)
    try:
        label = iso.pvd.volume_identifier.decode().strip()
        files = {}
        for child in iso.list_children(rr_path="/"):
            if child.is_file():
                name = child.rock_ridge.name().decode()
                out = io.BytesIO()
                iso.get_file_from_iso_fp(out, rr_path=f"/{name}")
                files[name] = out.getvalue()
        return label, files
    finally:
        iso.close()
