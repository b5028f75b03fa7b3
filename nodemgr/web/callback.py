"""The install-finished callback: who may call it, and what it does — framework-free.

A node's installer calls ``GET /install-finished/<node>?token=..`` (or xCAT's RHEV-H route
``/xcatrhevh/rhevh_finish_install/<node>``) when it is done. :func:`finish` decides and acts:

1. the name must be a usable node name (else 400) of a defined node (else 404);
2. identity: the request's source address must be one of the node's addresses
   (``hosts.ip``, else DNS); a proxy's ``X-Forwarded-For`` is believed only when the direct
   peer is listed in ``site.callbackproxies`` (addresses or networks, comma-separated);
3. policy (reference §4): command ``rhevhupdateflag`` (xCAT route) or ``installfinished``,
   user anonymous (empty), host = the node, argument ``auth=token`` or ``auth=address``;
   the default rows allow ``auth=token`` only, so with ``site.callbacktokens=no`` a site
   must add xCAT's row (``"7",,,"rhevhupdateflag",,,,"allow",,``) itself;
4. in one transaction: the one-time token is consumed (tokens on), ``nodeset <node> next``,
   ``updatenodestat <node> booted`` and an ``auditlog`` row. ``nodeset next`` is planned
   before the write lock (:func:`nodemgr.netboot.nodeset.prepare`) and planned again inside
   it if the node's chain row changed meanwhile; writers queue on the store's writer lock
   (:meth:`nodemgr.tables.store.Store.writer_lock`), held until the boot files are in place.

Every refusal (400/403/404) changes nothing but an ``auditlog`` row for 403s (denials are
audited, as for every command). This module must never log, return or audit the token.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass

from nodemgr.errors import NodemgrError, PolicyDenied, UsageError

log = logging.getLogger("nodemgr.callback")

#: route kind -> policy command name
COMMANDS = {"rhevh": "rhevhupdateflag", "general": "installfinished"}


@dataclass
class Answer:
    """An HTTP answer: status code and a one-line text body."""

    status: int
    text: str


def _addr(text: str):
    try:
        a = ipaddress.ip_address(text.strip().split("%")[0])
    except ValueError:
        return None
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped:
        return a.ipv4_mapped
    return a


def client_address(store, remote_addr: str, forwarded_for: str | None):
    """The caller's address, honouring ``X-Forwarded-For`` from trusted proxies only.

    Args:
        store: table store (``site.callbackproxies``: comma list of addresses/networks).
        remote_addr: the TCP peer address.
        forwarded_for: the ``X-Forwarded-For`` header value, or None.
    Returns:
        An ``ipaddress`` address, or None when unparseable. Walking the header from the
        right, the first address that is not itself a trusted proxy is the client.
    """
    peer = _addr(remote_addr or "")
    if peer is None or not forwarded_for:
        return peer
    nets = []
    for item in (store.site("callbackproxies") or "").split(","):
        if item.strip():
            try:
                nets.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                continue

    def trusted(a) -> bool:
        return any(a.version == n.version and a in n for n in nets)

    if not trusted(peer):
        return peer
    for hop in reversed(forwarded_for.split(",")):
        a = _addr(hop)
        if a is None:
            return None
        if not trusted(a):
            return a
    return peer


def node_addresses(resolver, node: str) -> set:
    """The node's addresses: ``hosts.ip`` when set, else its DNS / ``/etc/hosts`` names."""
    ip = resolver.attr(node, "hosts.ip")
    found = set()
    if ip and ip.strip():
        a = _addr(ip)
        if a is not None:
            found.add(a)
        return found
    try:
        infos = socket.getaddrinfo(node, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return found
    for info in infos:
        a = _addr(info[4][0])
        if a is not None:
            found.add(a)
    return found


class _Refused(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


def finish(store, node: str, *, kind: str, remote_addr: str, forwarded_for: str | None,
           token: str | None) -> Answer:
    """Handle one install-finished callback (see :func:`_finish`); the site table is read
    once for the whole request."""
    with store.site_cache():
        return _finish(store, node, kind=kind, remote_addr=remote_addr,
                       forwarded_for=forwarded_for, token=token)


def _finish(store, node: str, *, kind: str, remote_addr: str, forwarded_for: str | None,
            token: str | None) -> Answer:
    """Handle one install-finished callback.

    Args:
        store: the table store (one per worker process; not shared between threads).
        node: the node name from the URL.
        kind: ``rhevh`` (xCAT's route) or ``general``.
        remote_addr: TCP peer address; forwarded_for: ``X-Forwarded-For`` or None.
        token: the ``token`` query parameter, or None.
    Returns:
        200 ``<node>: booted``; 400 malformed name; 404 unknown node; 403 identity, token or
        policy failure; 500 when ``nodeset next`` fails for the node (nothing changed).
    """
    from nodemgr import policy
    from nodemgr.netboot import nodeset, tokens

    command = COMMANDS[kind]
    first = _identify(store, node, remote_addr, forwarded_for,
                      ("hosts", *nodeset.read_tables("next")))
    if isinstance(first, Answer):
        return first
    resolver, source, shown_host = first
    use_tokens = tokens.enabled(store)
    args = ["auth=token" if use_tokens else "auth=address"]
    try:
        # read-only checks first, outside the write lock (SQLite serialises writers)
        _check_caller(store, resolver, node, source, shown_host, command, args)
        # plan `nodeset next` (resolution, boot file text) before the write lock too
        prepared = nodeset.prepare(store, resolver, [node], "next")
        with store.writer_lock():
            if nodeset.recover(store):  # a killed writer's nodes first (rarely anything)
                resolver.invalidate()
            with store.transaction():
                if use_tokens and not tokens.consume(store, node, token or ""):
                    raise _Refused(403, f"{node}: missing, wrong, used or expired token")
                if not prepared.unchanged():  # a nodeset ran meanwhile: plan again, locked
                    resolver.invalidate()
                    prepared = nodeset.prepare(store, resolver, [node], "next")
                results = nodeset.apply(prepared, set_status="booted")  # updatenodestat booted
                if not results[0].ok:
                    raise _Refused(500, f"{node}: nodeset next failed: {results[0].message}")
                policy.audit(store, user="", host=shown_host, command=command,
                             noderange=node, args=args, status="allowed")
        if node in prepared.unpublished:  # committed, but a boot file rename failed
            log.error("callback: %s: %s", node, prepared.unpublished[node])
            return Answer(500, f"{node}: booted, but {prepared.unpublished[node]}")
    except _Refused as exc:
        log.warning("callback: %s", exc)
        if exc.status == 403:
            _audit_denial(store, shown_host, command, node, args, str(exc))
        return Answer(exc.status, str(exc))
    except NodemgrError as exc:
        log.error("callback: %s: %s", node, exc)
        return Answer(500, f"{node}: {exc}")
    log.info("callback: %s from %s: booted, next state %s", node, shown_host,
             results[0].message)
    return Answer(200, f"{node}: booted")


def _identify(store, node: str, remote_addr: str, forwarded_for: str | None,
              tables: tuple[str, ...]):
    """The checks before any identity decision: a usable node name (400), a defined node
    (404). Returns (resolver, client address or None, address shown in logs) or the
    refusal :class:`Answer`. *tables*: the node-keyed tables to read in one statement."""
    from nodemgr.netboot import bootfiles
    from nodemgr.tables.resolve import Resolver

    try:
        bootfiles.check_node_name(node)
    except UsageError:
        return Answer(400, "malformed node name")
    resolver = Resolver(store, nodes_by_key=True)  # one node: read its rows only
    if not resolver.known([node]):
        return Answer(404, f"{node}: unknown node")
    resolver.prefetch([node], tables)
    source = client_address(store, remote_addr, forwarded_for)
    shown_host = str(source) if source is not None else (remote_addr or "?")
    return resolver, source, shown_host


def _check_caller(store, resolver, node, source, shown_host, command, args) -> None:
    """Identity (the node's own address) and policy; raises :class:`_Refused` (403)."""
    from nodemgr import policy

    if source is None or source not in node_addresses(resolver, node):
        raise _Refused(403, f"{node}: request from {shown_host} is not from the "
                            "node's address")
    try:
        policy.check(store.select("policy"), user="", host=node, command=command,
                     nodes=[node], args=args, expand=lambda nr: _expand(nr, resolver))
    except PolicyDenied:
        raise _Refused(403, f"{node}: {command} denied by the policy table") from None


def answer_file(store, node: str, *, remote_addr: str, forwarded_for: str | None,
                installdir: str) -> tuple[Answer, str | None]:
    """``GET /install/autoinst/<node>``: the node's answer file, to the node only.

    The same identity rules as the callback (400 malformed name, 404 unknown node, 403
    from any address but the node's, trusted proxies as :func:`client_address`); no token
    is needed (the boot line carries none; the file holds the node's token). 404 when the
    node has no answer file (not armed for an install).

    Returns:
        (answer, text of the file or None).
    """
    with store.site_cache():
        first = _identify(store, node, remote_addr, forwarded_for, ("hosts",))
        if isinstance(first, Answer):
            return first, None
        resolver, source, shown_host = first
        if source is None or source not in node_addresses(resolver, node):
            log.warning("autoinst: %s: request from %s is not from the node's address",
                        node, shown_host)
            return Answer(403, f"{node}: request from {shown_host} is not from the node's "
                               "address"), None
    import os

    try:
        with open(os.path.join(installdir, "autoinst", node), encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return Answer(404, f"{node}: no answer file (not set for an install)"), None
    except OSError as exc:
        log.error("autoinst: %s: cannot read the answer file: %s", node, exc.strerror)
        return Answer(500, f"{node}: cannot read the answer file"), None
    log.info("autoinst: %s fetched its answer file from %s", node, shown_host)
    return Answer(200, f"{node}: answer file"), text


#: ``POST /install-status/<node>`` statuses a node may report about itself
REPORTABLE = ("failed",)


def report_status(store, node: str, *, remote_addr: str, forwarded_for: str | None,
                  token: str | None, status: str, script: str | None) -> Answer:
    """``POST /install-status/<node>?token=..`` (body ``status=failed&script=<name>``):
    a node's answer file reports that a postscript failed.

    The identity, policy (command ``installfinished``) and token rules of
    :func:`finish`; the token is consumed (a failed install cannot be reported booted
    later with it). Writes ``nodelist.status=failed`` (and statustime) and an ``auditlog``
    row naming the script; the chain is left as it is (the administrator looks, then runs
    ``nodeset`` again). 400 for a status other than :data:`REPORTABLE`.
    """
    from nodemgr import policy
    from nodemgr.netboot import status as nodestatus
    from nodemgr.netboot import tokens

    if status not in REPORTABLE:
        return Answer(400, f"status must be one of {', '.join(REPORTABLE)}")
    script = (script or "").strip()
    if len(script) > 128 or any(not (c.isalnum() or c in "._-") for c in script):
        return Answer(400, "malformed script name")
    command = COMMANDS["general"]
    with store.site_cache():
        first = _identify(store, node, remote_addr, forwarded_for, ("hosts",))
        if isinstance(first, Answer):
            return first
        resolver, source, shown_host = first
        use_tokens = tokens.enabled(store)
        args = ["auth=token" if use_tokens else "auth=address", f"status={status}"]
        if script:
            args.append(f"script={script}")
        try:
            _check_caller(store, resolver, node, source, shown_host, command, args[:1])
            with store.writer_lock(), store.transaction():
                if use_tokens and not tokens.consume(store, node, token or ""):
                    raise _Refused(403, f"{node}: missing, wrong, used or expired token")
                store.upsert("nodelist", {"node": node},
                             {"status": status, "statustime": nodestatus.timestamp()})
                policy.audit(store, user="", host=shown_host, command="installstatus",
                             noderange=node, args=args, status="allowed")
        except _Refused as exc:
            log.warning("install-status: %s", exc)
            if exc.status == 403:
                _audit_denial(store, shown_host, "installstatus", node, args, str(exc))
            return Answer(exc.status, str(exc))
        except NodemgrError as exc:
            log.error("install-status: %s: %s", node, exc)
            return Answer(500, f"{node}: {exc}")
    log.warning("install-status: %s reports %s%s", node, status,
                f" (postscript {script})" if script else "")
    return Answer(200, f"{node}: {status}")


def _expand(nr: str, resolver) -> list[str]:
    from nodemgr import noderange

    return noderange.expand(nr, resolver, verify=False)


def _audit_denial(store, host, command, node, args, reason) -> None:
    from nodemgr import policy

    try:
        policy.audit(store, user="", host=host, command=command, noderange=node, args=args,
                     status="denied: " + reason.split(": ", 1)[-1])
    except NodemgrError as exc:  # the refusal stands even when auditing fails
        log.error("callback: cannot write the audit row: %s", exc)
