"""Run driver calls over many nodes: grouped by endpoint, bounded, timed out, in node order.

This is the only place in nodemgr that runs things in parallel. Nodes that share a driver
and an endpoint form a group; each group gets one driver instance (``connect``, one
``call`` with all its nodes, ``close``) on its own daemon thread, and at most ``maxp`` groups
run at once (``site.vmmaxp``). Each group has a deadline of ``timeout`` seconds from its
start, connect included: a group that has not reported every node by then is abandoned —
its missing nodes fail with ``timed out after N s talking to <host>``, its thread is left
to die with the process (daemon threads never delay exit; ``concurrent.futures`` would,
because its atexit hook joins every worker), and its slot goes to the next group. So one
endpoint that never answers costs its own nodes one timeout, nothing more.

Results come back in the order of the targets, each as soon as it and every earlier one
is known, so output streams in noderange order.

What this module must never do: read or write tables, print, let a traceback reach the
user — an exception from a driver becomes its one-line message on every node it left
unreported — or let an endpoint's password through in an error message.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from nodemgr.errors import NodemgrError
from nodemgr.plugins.base import (
    NO_PLUGIN,
    DriverError,
    Endpoint,
    HypervisorDriver,
    NodeResult,
    VmSpec,
)

Call = Callable[[HypervisorDriver, list["Target"]], Iterable[NodeResult]]


@dataclass
class Target:
    """One node to act on, resolved from the tables.

    Attributes:
        node: node name (what the result line starts with).
        driver: entry-point name of the driver, or "" when unknown.
        endpoint: where to connect, or None when it cannot be resolved.
        spec: the VM spec handed to the driver (None for host-level calls).
        error: a pre-resolved error for this node; it is reported as is and the node is
            never sent to a driver.
    """

    node: str
    driver: str
    endpoint: Endpoint | None
    spec: VmSpec | None = None
    error: str | None = None


def error_message(exc: BaseException) -> str:
    """The one-line text a user sees for *exc*: its message for our own error types, the
    missing library and its extra for a missing optional module
    (``this node's driver needs paramiko: pip install 'nodemgr[xen]'``),
    ``internal error: <Type>: <msg>`` for anything else. Never a traceback."""
    if isinstance(exc, (DriverError, NodemgrError)):
        text = str(exc).strip()
        return text.splitlines()[0] if text else type(exc).__name__
    if isinstance(exc, ImportError):  # a driver's optional library is not installed
        from nodemgr import extras

        msg = extras.missing_message("this node's driver", exc)
        if msg:
            return msg
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"internal error: {type(exc).__name__}: {first}".rstrip(": ")


def _fmt_seconds(s: float) -> str:
    return f"{s:g}"


def _scrub(text: str, endpoint: Endpoint) -> str:
    """*text* with the endpoint's password masked, in case a driver leaked it."""
    secret = endpoint.password
    return text.replace(secret, "***") if secret and secret in text else text


def _where(endpoint: Endpoint) -> str:
    """The endpoint for a message: its host node, else its URI without user information."""
    if endpoint.host:
        return endpoint.host
    scheme, sep, rest = endpoint.uri.partition("://")
    return scheme + sep + rest.rpartition("@")[2] if sep else endpoint.uri


def specs(targets: Sequence[Target]) -> list[VmSpec]:
    """The specs of *targets* (for ``lambda d, ts: d.power(specs(ts), "stat")``)."""
    return [t.spec for t in targets]


def each(fn: Callable[[HypervisorDriver, Target], NodeResult]) -> Call:
    """Turn a per-node function into a group call.

    Use it for driver methods that take one node (``make_master``) or none
    (``list_vms``, ``host_free_memory_mib``). A :class:`DriverError` or
    :class:`NodemgrError` raised for one node fails only that node; anything else still
    fails the rest of the group.
    """

    def call(driver: HypervisorDriver, targets: list[Target]) -> Iterator[NodeResult]:
        for t in targets:
            try:
                yield fn(driver, t)
            except (DriverError, NodemgrError) as exc:
                yield NodeResult(t.node, ok=False, message=error_message(exc))

    return call


# -- the run ------------------------------------------------------------------------------


class _Group:
    __slots__ = ("driver", "endpoint", "indexes", "pending", "started", "connected",
                 "finished", "abandoned", "thread")

    def __init__(self, driver: str, endpoint: Endpoint) -> None:
        self.driver = driver
        self.endpoint = endpoint
        self.indexes: list[int] = []          # positions in targets, in order
        self.pending: dict[str, deque[int]] = {}  # node -> unreported positions
        self.started = 0.0
        self.connected = False
        self.finished = False
        self.abandoned = False
        self.thread: threading.Thread | None = None


class _Inbox:
    """Events from group threads to the generator: a list and a condition."""

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.events: deque[tuple] = deque()

    def put(self, event: tuple) -> None:
        with self.cond:
            self.events.append(event)
            self.cond.notify()

    def take(self, timeout: float | None) -> list[tuple]:
        with self.cond:
            if not self.events:
                self.cond.wait(timeout)
            out = list(self.events)
            self.events.clear()
            return out


VERBOSE_LOGGER = "nodemgr.verbose"  # the logger ``-V`` prints (nodemgr.cli.common)


def _tracer():
    """The ``-V`` logger when a command turned it on, else None (never imports logging)."""
    import sys

    logging = sys.modules.get("logging")
    if logging is None:
        return None
    log = logging.getLogger(VERBOSE_LOGGER)
    return log if log.isEnabledFor(logging.INFO) else None


def _arg(value) -> str:
    if isinstance(value, VmSpec):
        return value.node
    if isinstance(value, Endpoint):
        return _where(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_arg(v) for v in value) + "]"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Traced:
    """A driver whose public calls are logged, one line each (``-V``): family, endpoint,
    method and arguments (specs by node name; never a password)."""

    def __init__(self, driver: HypervisorDriver, log) -> None:
        self._driver, self._log = driver, log

    def __getattr__(self, name: str):
        attr = getattr(self._driver, name)
        if name.startswith("_") or not callable(attr) or isinstance(attr, type):
            return attr

        def traced(*args, **kwargs):
            shown = [_arg(a) for a in args] + [f"{k}={_arg(v)}" for k, v in kwargs.items()]
            self._log.info(f"{self._driver.name} {_where(self._driver.endpoint)}: "
                           f"{name}({', '.join(shown)})")
            return attr(*args, **kwargs)

        return traced


def _work(g: _Group, gid: int, targets: list[Target], call: Call, timeout: float,
          inbox: _Inbox, validate: bool = False) -> None:
    """Body of a group thread: never raises; reports through *inbox*. With *validate*,
    each target's spec is checked by ``driver.validate`` before ``connect()``: a node that
    fails is reported at once and never sent to the endpoint."""
    driver = None
    try:
        from nodemgr.plugins.registry import load_driver

        cls = load_driver(g.driver)
        driver = cls(g.endpoint, timeout)
        log = _tracer()
        if log is not None:
            driver = _Traced(driver, log)
        if validate:
            kept = []
            for t in targets:
                try:
                    if t.spec is not None:
                        driver.validate(t.spec)
                    kept.append(t)
                except (DriverError, NodemgrError) as exc:
                    inbox.put(("result", gid, NodeResult(
                        t.node, ok=False, message=error_message(exc),
                        data={"error": type(exc).__name__})))
            targets = kept
            if not targets:
                inbox.put(("done", gid, None, None))
                return
        driver.connect()
        inbox.put(("connected", gid))
        for r in call(driver, targets):
            inbox.put(("result", gid, r))
        inbox.put(("done", gid, None, None))
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a node message
        inbox.put(("done", gid, error_message(exc), type(exc).__name__))
    finally:
        if driver is not None:
            try:
                driver.close()
            except BaseException:  # noqa: BLE001 - close never raises, by contract
                pass


def run(targets: Sequence[Target], call: Call, *, maxp: int = 64, timeout: float = 60.0,
        connect_timeout: float | None = None, validate: bool = False) -> Iterator[NodeResult]:
    """Run *call* for every endpoint's group of *targets*; yield one result per target.

    Args:
        targets: the nodes, in the order results should come back.
        call: ``call(driver, group_targets)`` -> results for those targets, in their order
            (a result is matched to a target by node name, else by position). Runs on the
            group's thread after ``connect()``.
        maxp: at most this many groups in flight (``site.vmmaxp``); abandoned (timed-out)
            groups do not count.
        timeout: seconds a group may take from its start, connect included
            (``site.vmtimeout``); also given to the driver as its per-call timeout.
        connect_timeout: seconds ``connect()`` may take, if shorter than *timeout*.
        validate: check every spec with the driver's ``validate`` before ``connect()``
            (operations that build or change a VM from its spec: mkvm, chvm, clonevm).
    Yields:
        :class:`NodeResult` per target, in target order, each as soon as it and all
        earlier ones are known. Targets with ``error`` set, with no driver or no endpoint
        fail without any driver being loaded.
    """
    n = len(targets)
    results: list[NodeResult | None] = [None] * n
    groups: list[_Group] = []
    by_key: dict[tuple[str, str, str], int] = {}
    for i, t in enumerate(targets):
        if t.error is not None:
            results[i] = NodeResult(t.node, ok=False, message=t.error)
        elif not t.driver:
            results[i] = NodeResult(t.node, ok=False, message=NO_PLUGIN)
        elif t.endpoint is None:
            results[i] = NodeResult(t.node, ok=False,
                                    message="cannot determine the hypervisor or manager "
                                            "of this node (vm.host, vm.mgr)")
        else:
            key = (t.driver, t.endpoint.uri, t.endpoint.scope)
            gid = by_key.get(key)
            if gid is None:
                gid = by_key[key] = len(groups)
                groups.append(_Group(t.driver, t.endpoint))
            g = groups[gid]
            g.indexes.append(i)
            g.pending.setdefault(t.node, deque()).append(i)
    return _stream(targets, call, results, groups, max(1, int(maxp)), float(timeout),
                   connect_timeout, validate)


def _stream(targets: Sequence[Target], call: Call, results: list[NodeResult | None],
            groups: list[_Group], maxp: int, timeout: float,
            connect_timeout: float | None, validate: bool = False) -> Iterator[NodeResult]:
    inbox = _Inbox()
    waiting = deque(range(len(groups)))  # not started, in order of first node
    running: set[int] = set()
    nxt = 0
    n = len(results)

    def settle(gid: int, message: str, kind: str | None = None) -> None:
        g = groups[gid]
        message = _scrub(message, g.endpoint)
        for queue in g.pending.values():
            for i in queue:
                results[i] = NodeResult(targets[i].node, ok=False, message=message,
                                        data={"error": kind} if kind else {})
        g.pending.clear()
        g.finished = True
        running.discard(gid)

    def deliver(gid: int, r: NodeResult) -> None:
        g = groups[gid]
        queue = g.pending.get(r.node)
        if not queue:  # unknown name: take the first unreported position
            queue = next((q for q in g.pending.values() if q), None)
            if queue is None:
                return  # more results than nodes: ignore the surplus
            r = dataclasses.replace(r, node=targets[queue[0]].node)
        i = queue.popleft()
        if not queue:
            del g.pending[r.node]
        if not r.ok and g.endpoint.password and g.endpoint.password in r.message:
            r = dataclasses.replace(r, message=_scrub(r.message, g.endpoint))
        results[i] = r

    try:
        while True:
            while waiting and len(running) < maxp:
                gid = waiting.popleft()
                g = groups[gid]
                g.started = time.monotonic()
                running.add(gid)
                g.thread = threading.Thread(
                    target=_work, name=f"nodemgr-{g.driver}-{g.endpoint.host or gid}",
                    args=(g, gid, [targets[i] for i in g.indexes], call, timeout, inbox,
                          validate),
                    daemon=True)
                try:
                    g.thread.start()
                except RuntimeError as exc:  # "can't start new thread": out of resources
                    settle(gid, error_message(exc))
            while nxt < n and results[nxt] is not None:
                yield results[nxt]
                nxt += 1
            if nxt >= n:
                return
            # wait for news or for the earliest deadline
            now = time.monotonic()
            deadline = None
            for gid in running:
                d = _deadline(groups[gid], timeout, connect_timeout)
                deadline = d if deadline is None else min(deadline, d)
            wait = None if deadline is None else max(0.0, deadline - now)
            for ev in inbox.take(wait):
                gid = ev[1]
                g = groups[gid]
                if g.abandoned or g.finished:
                    continue
                if ev[0] == "connected":
                    g.connected = True
                elif ev[0] == "result":
                    deliver(gid, ev[2])
                else:  # done
                    settle(gid, ev[2] or "no result from the driver for this node", ev[3])
            now = time.monotonic()
            for gid in list(running):
                g = groups[gid]
                if now >= _deadline(g, timeout, connect_timeout):
                    limit = timeout
                    if connect_timeout is not None and not g.connected:
                        limit = min(timeout, connect_timeout)
                    g.abandoned = True
                    settle(gid, f"timed out after {_fmt_seconds(limit)} s talking to "
                                f"{_where(g.endpoint)}", "Timeout")
    finally:
        # the caller stopped early (or we are done): start nothing more; running group
        # threads are daemons and finish or die on their own
        waiting.clear()
        for gid in running:
            groups[gid].abandoned = True


def _deadline(g: _Group, timeout: float, connect_timeout: float | None) -> float:
    if connect_timeout is not None and not g.connected:
        return g.started + min(timeout, connect_timeout)
    return g.started + timeout
