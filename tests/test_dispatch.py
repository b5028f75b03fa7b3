"""Dispatch: grouping, node order, streaming, the bound, timeouts, error mapping; registry."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
import threading
import time
import tomllib
from pathlib import Path

import pytest

from nodemgr import dispatch
from nodemgr.dispatch import Target, each, run, specs
from nodemgr.plugins import registry
from nodemgr.plugins.base import (
    DriverError,
    Endpoint,
    HypervisorDriver,
    InvalidState,
    NodeResult,
    PermanentError,
    VmSpec,
)
from nodemgr.plugins.fake import seed_state

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch):
    monkeypatch.setattr(registry, "_cache", {})


def fake_target(node: str, host: str, query: str = "") -> Target:
    uri = f"fake://{host}" + (f"?{query}" if query else "")
    return Target(node, "fake", Endpoint("fake", uri, host), VmSpec(node))


def stat(driver, targets):
    return driver.power(specs(targets), "stat")


def timed(iterator, limit: float = 10.0):
    """[(seconds since start, result)] as the results are yielded; fails (rather than
    hanging the test run) when the iterator has not finished within *limit* seconds."""
    out: list = []
    t0 = time.monotonic()

    def consume():
        for r in iterator:
            out.append((time.monotonic() - t0, r))
        out.append(None)

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    t.join(limit)
    assert out and out[-1] is None, f"dispatch did not finish within {limit} s"
    return out[:-1]


# -- test drivers -------------------------------------------------------------------------


class SleepyDriver(HypervisorDriver):
    """Connect sleeps ``connect=S``; each node sleeps ``per=S``; counts concurrency."""

    name = "sleepy"
    lock = threading.Lock()
    active = 0
    peak = 0
    closed = 0

    def _opt(self, key: str) -> float:
        return float(dict(p.split("=") for p in self.endpoint.uri.split("?")[1].split("&"))
                     .get(key, 0))

    def connect(self):
        with SleepyDriver.lock:
            SleepyDriver.active += 1
            SleepyDriver.peak = max(SleepyDriver.peak, SleepyDriver.active)
        time.sleep(self._opt("connect"))

    def close(self):
        with SleepyDriver.lock:
            SleepyDriver.active -= 1
            SleepyDriver.closed += 1

    def power(self, specs_, action):
        for s in specs_:
            time.sleep(self._opt("per"))
            yield NodeResult(s.node, message=f"{action} via {self.endpoint.host}")


@pytest.fixture
def sleepy(monkeypatch):
    monkeypatch.setattr(SleepyDriver, "active", 0)
    monkeypatch.setattr(SleepyDriver, "peak", 0)
    monkeypatch.setattr(SleepyDriver, "closed", 0)
    registry.register("sleepy", SleepyDriver)
    return SleepyDriver


def sleepy_target(node: str, host: str, connect: float = 0.0, per: float = 0.0) -> Target:
    ep = Endpoint("sleepy", f"sleepy://{host}?connect={connect}&per={per}", host)
    return Target(node, "sleepy", ep, VmSpec(node))


# -- order and streaming --------------------------------------------------------------------


def test_results_come_back_in_target_order_under_random_latency(sleepy):
    rnd = random.Random(7)
    hosts = {f"h{i}": (rnd.uniform(0, 0.05), rnd.uniform(0, 0.01)) for i in range(15)}
    # nodes interleaved over hosts, so group order and node order differ
    targets = [sleepy_target(f"n{i:03d}", h, *hosts[h])
               for i, h in enumerate(rnd.choice(sorted(hosts)) for _ in range(120))]
    results = list(run(targets, stat, maxp=6, timeout=10))
    assert [r.node for r in results] == [t.node for t in targets]
    assert all(r.ok and r.message == f"stat via {t.endpoint.host}"
               for r, t in zip(results, targets, strict=True))
    assert sleepy.closed == 15 and sleepy.active == 0


def test_results_stream_before_slow_groups_finish(sleepy):
    targets = [sleepy_target("a", "fast"), sleepy_target("b", "slow", connect=1.0)]
    got = timed(run(targets, stat, timeout=5))
    assert [r.node for _, r in got] == ["a", "b"]
    assert got[0][0] < 0.5 <= 1.0 <= got[1][0]


def test_one_group_per_driver_and_endpoint(sleepy):
    seen = []

    def call(driver, group):
        seen.append((driver.endpoint.uri, [t.node for t in group]))
        return stat(driver, group)

    targets = [sleepy_target("a", "h1"), sleepy_target("b", "h2"), sleepy_target("c", "h1")]
    list(run(targets, call))
    assert sorted(seen) == [("sleepy://h1?connect=0.0&per=0.0", ["a", "c"]),
                            ("sleepy://h2?connect=0.0&per=0.0", ["b"])]


def test_results_matched_by_node_name_then_position(sleepy):
    def backwards(driver, group):
        return reversed(list(stat(driver, group)))

    targets = [sleepy_target(n, "h1") for n in "abc"]
    assert [r.node for r in run(targets, backwards)] == ["a", "b", "c"]

    def nameless(driver, group):
        return [NodeResult("?", message=t.node.upper()) for t in group]

    assert [(r.node, r.message) for r in run(targets, nameless)] == [
        ("a", "A"), ("b", "B"), ("c", "C")]


def test_preresolved_errors_yield_at_once_and_load_nothing(sleepy):
    targets = [Target("x", "fake", None, error="Can't find x"),
               Target("y", "", Endpoint("", "", "")),
               Target("z", "sleepy", None),
               sleepy_target("w", "h1", connect=0.5)]
    it = run(targets, stat)
    t0 = time.monotonic()
    first = [next(it), next(it), next(it)]
    assert time.monotonic() - t0 < 0.2
    assert [(r.node, r.ok) for r in first] == [("x", False), ("y", False), ("z", False)]
    assert first[0].message == "Can't find x"
    assert first[1].message.startswith("Unable to identify plugin for this command")
    assert "vm.host" in first[2].message
    assert next(it).ok
    assert "fake" not in registry._cache                # never loaded for the error node


# -- the bound -------------------------------------------------------------------------------


@pytest.mark.parametrize("maxp", [1, 4])
def test_at_most_maxp_groups_connect_at_once(sleepy, maxp):
    targets = [sleepy_target(f"n{i}", f"h{i}", connect=0.03) for i in range(16)]
    results = list(run(targets, stat, maxp=maxp))
    assert all(r.ok for r in results)
    assert sleepy.peak == maxp


# -- timeouts ---------------------------------------------------------------------------------


def test_hanging_endpoint_times_out_while_others_finish_on_time(tmp_path):
    state = tmp_path / "s.json"
    healthy = [fake_target(f"v{i}", f"h{i % 5}", f"state={state}&latency=0.05")
               for i in range(20)]
    dead = [fake_target(f"d{i}", "deadhost", "hang=1") for i in range(3)]
    got = timed(run(healthy + dead, stat, timeout=1.0))
    by_node = {r.node: (t, r) for t, r in got}
    assert max(by_node[t.node][0] for t in healthy) < 0.5      # ~2 round trips, not 1 s
    assert all(by_node[t.node][1].message == "off" for t in healthy)
    for t in dead:
        at, r = by_node[t.node]
        assert not r.ok and r.message == "timed out after 1 s talking to deadhost"
        assert 0.95 <= at < 1.5


def test_abandoned_group_frees_its_slot(tmp_path):
    """maxp=1 and the first endpoint dead: the others still run after its timeout."""
    targets = [fake_target("d", "dead", "hang=1")] + [
        fake_target(f"v{i}", f"h{i}", "latency=0.02") for i in range(5)]
    got = timed(run(targets, stat, maxp=1, timeout=0.5))
    assert got[0][1].message == "timed out after 0.5 s talking to dead"
    assert all(r.ok for _, r in got[1:])
    assert got[-1][0] < 0.5 + 5 * 0.04 + 0.5


def test_connect_timeout_and_hang_in_a_call():
    targets = [fake_target("a", "dead", "hang=1"), fake_target("b", "mute", "hang=power")]
    got = timed(run(targets, stat, timeout=1.0, connect_timeout=0.3))
    assert got[0][1].message == "timed out after 0.3 s talking to dead"
    assert got[0][0] < 0.7
    assert got[1][1].message == "timed out after 1 s talking to mute"   # connected, then hung


def test_process_exits_promptly_with_a_hung_group(tmp_path):
    """Abandoned threads must not hold up interpreter exit (no atexit join)."""
    script = textwrap.dedent("""
        from nodemgr.dispatch import Target, run, specs
        from nodemgr.plugins.base import Endpoint, VmSpec
        t = [Target(n, "fake", Endpoint("fake", f"fake://{h}?hang=1", h), VmSpec(n))
             for n, h in (("a", "dead1"), ("b", "dead2"))]
        for r in run(t, lambda d, g: d.power(specs(g), "stat"), timeout=1):
            print(r.node, r.ok, r.message, flush=True)
    """)
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=15)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["a False timed out after 1 s talking to dead1",
                                        "b False timed out after 1 s talking to dead2"]
    assert elapsed < 4


# -- failures ------------------------------------------------------------------------------------


def test_unreachable_fails_only_its_group():
    targets = [fake_target("a", "ok1"), fake_target("b", "gone", "refuse=1&latency=5"),
               fake_target("c", "ok2"), fake_target("d", "gone", "refuse=1&latency=5")]
    t0 = time.monotonic()
    results = list(run(targets, stat, timeout=10))
    assert time.monotonic() - t0 < 1
    assert [(r.node, r.ok) for r in results] == [("a", True), ("b", False), ("c", True),
                                                 ("d", False)]
    assert results[1].message == results[3].message == "Cannot communicate via fake to gone"


class Boom(Exception):
    pass


@pytest.mark.parametrize(("exc", "message"), [
    (InvalidState("VM is locked"), "VM is locked"),
    (DriverError("first line\nsecond line"), "first line"),
    (RuntimeError("kaput"), "internal error: RuntimeError: kaput"),
    (Boom(), "internal error: Boom"),
])
def test_exception_midway_fails_unreported_nodes_with_one_line(exc, message):
    class Flaky(HypervisorDriver):
        name = "flaky"

        def power(self, specs_, action):
            yield NodeResult(specs_[0].node, message="on")
            raise exc

    registry.register("flaky", Flaky)
    ep = Endpoint("flaky", "flaky://h", "h")
    targets = [Target(n, "flaky", ep, VmSpec(n)) for n in "abc"]
    results = list(run(targets, stat))
    assert [(r.ok, r.message) for r in results] == [(True, "on"), (False, message),
                                                    (False, message)]


def test_exception_in_connect_or_constructor_and_missing_results():
    class BadConnect(HypervisorDriver):
        def connect(self):
            raise KeyError("token")

    class Quiet(HypervisorDriver):
        def power(self, specs_, action):
            return iter([])

    registry.register("badconnect", BadConnect)
    registry.register("quiet", Quiet)
    targets = [Target("a", "badconnect", Endpoint("badconnect", "x://1", "1"), VmSpec("a")),
               Target("b", "quiet", Endpoint("quiet", "x://2", "2"), VmSpec("b")),
               Target("c", "nosuch", Endpoint("nosuch", "x://3", "3"), VmSpec("c"))]
    results = list(run(targets, stat))
    assert results[0].message == "internal error: KeyError: 'token'"
    assert results[1].message == "no result from the driver for this node"
    assert results[2].message == ("Unable to identify plugin for this command, check relevant "
                                  "tables: nodehm.power;nodehm.mgt (no driver named 'nosuch')")
    assert not any(r.ok for r in results)


def test_each_fails_only_the_node_that_raised(tmp_path):
    state = tmp_path / "s.json"
    seed_state(str(state), "h1", ["a"], state="off")
    seed_state(str(state), "h1", ["b"], state="on")
    targets = [fake_target(n, "h1", f"state={state}") for n in "abc"]

    def master(driver, t):
        return driver.make_master(t.spec, f"m-{t.node}")

    results = list(run(targets, each(master)))
    assert [r.ok for r in results] == [True, False, False]
    assert "running" in results[1].message
    assert results[2].message == "Domain not found: no domain with matching name 'c'"
    # host-level calls: one target per host
    hosts = [Target("h1", "fake", Endpoint("fake", f"fake://h1?state={state}", "h1"))]
    listing = list(run(hosts, each(lambda d, t: NodeResult(
        t.node, message="\n".join(v.name for v in d.list_vms())))))
    assert listing[0].message == "a\nb"


def test_error_message_never_multiline():
    assert dispatch.error_message(PermanentError("")) == "PermanentError"
    assert dispatch.error_message(ValueError("x\ny")) == "internal error: ValueError: x"


# -- registry ----------------------------------------------------------------------------------


def test_builtin_names_match_pyproject_entry_points():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    eps = data["project"]["entry-points"]["nodemgr.plugins"]
    assert {k: tuple(v.split(":")) for k, v in eps.items() if k in registry.BUILTIN} == \
        registry.BUILTIN
    assert set(registry.BUILTIN) <= set(eps)


def test_builtin_driver_loads_without_scanning_entry_points():
    code = ("import sys\nfrom nodemgr.plugins.registry import load_driver\n"
            "cls = load_driver('fake')\nprint(cls.__name__, 'importlib.metadata' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["FakeDriver", "False"]


def test_load_driver_caches_and_scans_entry_points_for_others(monkeypatch):
    from importlib.metadata import EntryPoint

    from nodemgr.plugins.fake import FakeDriver

    assert registry.load_driver("fake") is FakeDriver
    assert registry.load_driver("fake") is registry._cache["fake"]
    monkeypatch.setattr(registry, "_eps", {
        "site": EntryPoint("site", "nodemgr.plugins.fake:FakeDriver", registry.GROUP),
        "notadriver": EntryPoint("notadriver", "nodemgr.dispatch:run", registry.GROUP),
        "broken": EntryPoint("broken", "nodemgr.no_such_module:X", registry.GROUP)})
    assert registry.load_driver("site") is FakeDriver
    with pytest.raises(PermanentError, match="is not a HypervisorDriver"):
        registry.load_driver("notadriver")
    with pytest.raises(PermanentError, match="driver broken cannot be loaded"):
        registry.load_driver("broken")
    with pytest.raises(registry.UnknownDriver) as info:
        registry.load_driver("vmware")
    assert str(info.value) == ("Unable to identify plugin for this command, check relevant "
                               "tables: nodehm.power;nodehm.mgt (no driver named 'vmware')")
    assert "site" in registry.available()


def test_installed_entry_points_include_the_builtins():
    monkey = registry._eps
    try:
        registry._eps = None
        assert set(registry.BUILTIN) <= set(registry.available())
    finally:
        registry._eps = monkey


def test_password_never_reaches_a_message():
    class Leaky(HypervisorDriver):
        def connect(self):
            if self.endpoint.host == "h1":
                raise PermanentError(f"login failed with {self.endpoint.password}")

        def power(self, specs_, action):
            return [NodeResult(s.node, ok=False, message=f"bad {self.endpoint.password}!")
                    for s in specs_]

    registry.register("leaky", Leaky)
    targets = [Target("a", "leaky", Endpoint("leaky", "x://1", "h1", password="s3cret"),
                      VmSpec("a")),
               Target("b", "leaky", Endpoint("leaky", "x://2", "h2", password="s3cret"),
                      VmSpec("b"))]
    assert [r.message for r in run(targets, stat)] == ["login failed with ***", "bad ***!"]


def test_timeout_message_names_the_uri_without_user_when_no_host():
    t = Target("a", "fake", Endpoint("fake", "fake://admin@dead?hang=1"), VmSpec("a"))
    (_, r), = timed(run([t], stat, timeout=0.2))
    assert r.message == "timed out after 0.2 s talking to fake://dead?hang=1"


def test_a_missing_driver_library_is_named_with_its_extra():
    """A driver whose optional library is missing: the node's one line names it and the
    extra to install, not an internal error."""
    from nodemgr.dispatch import error_message

    try:
        exec("import paramiko_not_installed_here", {"__name__": "nodemgr.plugins.xen"})
    except ModuleNotFoundError as exc:
        err = exc
    err.name = "paramiko"  # as if paramiko itself were missing
    msg = error_message(err)
    assert msg.startswith("this node's driver needs paramiko: pip install 'nodemgr["), msg
    assert "internal error" not in msg
    assert error_message(ModuleNotFoundError("x", name="nodemgr.nosuch")).startswith(
        "internal error: ModuleNotFoundError")
