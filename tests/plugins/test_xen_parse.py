"""The Xen parsers read every real sample in tests/fixtures/xen/samples (copied from
../shared/data/xen: ganeti's real xl output, upstream and libvirt test configs) and the
doubles' output, and configs written by the driver read back identically."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodemgr.plugins.xen.parse import (
    ParseError,
    format_config,
    parse_config,
    parse_disk,
    parse_info,
    parse_list,
    parse_list_long,
    parse_xentop,
    power_state,
    top_metrics,
)

SAMPLES = Path(__file__).parents[1] / "fixtures" / "xen" / "samples"


def read(name: str) -> str:
    return (SAMPLES / name).read_text()


def test_xl_list_real_samples():
    doms = parse_list(read("ganeti/xen-xl-list-4.0.1-four-instances.txt"))
    assert [(d.name, d.domid, d.memory_mib, d.vcpus, d.state) for d in doms] == [
        ("Domain-0", 0, 1023, 1, "r-----"), ("server01.example.com", 1, 1024, 1, "-b----"),
        ("web3106215069.example.com", 3, 4096, 1, "-b----"),
        ("testinstance.example.com", 2, 2048, 2, "r-----")]
    assert doms[0].cpu_time_s == 154706.1
    assert len(parse_list(read("ganeti/xen-xl-list-4.0.1-dom0-only.txt"))) == 1


def test_xl_list_current_format_with_tabs_and_xm_stopped_rows():
    text = ("Name                                        ID   Mem VCPUs\tState\tTime(s)\n"
            "Domain-0                                     0  1023     1     r-----  12.5\n"
            "(null)                                      7     0     1     --psc-   0.2\n"
            "managed-off                                     512     1     ------   0.0\n")
    doms = parse_list(text)
    assert doms[1].name == "(null)" and power_state(doms[1].state) == "crashed"
    assert doms[2].domid is None
    with pytest.raises(ParseError, match="unexpected xl list line"):
        parse_list("garbage line here\n")


@pytest.mark.parametrize("state,word", [
    ("r-----", "on"), ("-b----", "on"), ("------", "on"), ("--p---", "suspended"),
    ("---s--", "off"), ("---s-d", "off"), ("-----d", "off"), ("--psc-", "crashed"),
    ("---sc-", "crashed")])
def test_power_states(state, word):
    assert power_state(state) == word


def test_xl_info_and_list_long_sxp():
    info = parse_info(read("ganeti/xen-xl-info-4.0.1.txt"))
    assert info["free_memory"] == "8004" and info["xen_caps"].startswith("xen-3.0-x86_64")
    assert info["virt_caps"] == ""
    doms = parse_list_long(read("ganeti/xen-xl-list-long-4.0.1.txt"))
    assert [d["name"] for d in doms] == ["Domain-0", "instance1.example.com"]
    inst = doms[1]
    assert (inst["domid"], inst["memory_mib"], inst["state"], inst["type"]) == (
        119, 128, "-b----", "pv")
    assert inst["nics"] == [{"mac": "aa:00:00:30:8d:9d", "bridge": "xen-br0"}]
    assert inst["disks"][0]["vdev"] == "sda"
    with pytest.raises(ParseError):
        parse_list_long("(domain (name x)")


def test_list_long_json():
    text = ('[{"domid": 3, "config": {"c_info": {"type": "hvm", "name": "vm1", "uuid": "u"},'
            ' "b_info": {"max_vcpus": 2, "target_memkb": 524288},'
            ' "disks": [{"pdev_path": "/img", "vdev": "xvda", "readwrite": 1}],'
            ' "nics": [{"mac": "00:16:3e:00:00:01", "bridge": "xenbr0"}]}}]')
    (d,) = parse_list_long(text)
    assert (d["name"], d["memory_mib"], d["vcpus"], d["type"]) == ("vm1", 512, 2, "hvm")


@pytest.mark.parametrize("name", sorted(
    str(p.relative_to(SAMPLES)) for p in SAMPLES.glob("*/*")
    if p.suffix == ".cfg" or p.name.startswith("xlexample") or p.name == "xl.conf"))
def test_every_config_sample_parses_and_round_trips(name):
    cfg = parse_config(read(name))
    assert parse_config(format_config(cfg)) == cfg
    for spec in cfg.get("disk", []):
        assert parse_disk(spec).target


def test_disk_syntaxes():
    d = parse_disk("phy:/dev/HostVG/XenGuest1,xvda,w")
    assert (d.target, d.vdev, d.backend, d.file_backed) == ("/dev/HostVG/XenGuest1", "xvda",
                                                            "phy", False)
    d = parse_disk("file:/root/some.img,xvda,w")
    assert (d.target, d.file_backed) == ("/root/some.img", True)
    d = parse_disk("/root/boot.iso,raw,hdc,r,backendtype=qdisk,devtype=cdrom")
    assert d.cdrom and d.format == "raw" and d.vdev == "hdc"
    d = parse_disk("format=raw,vdev=xvda,access=rw,target=/a,b/c.img")
    assert d.target == "/a,b/c.img"
    d = parse_disk("tap:aio:/img/x.img,xvdb,w")
    assert (d.target, d.backend, d.format) == ("/img/x.img", "tap", "raw")
    with pytest.raises(ParseError):
        parse_disk(",,")


def test_bad_config_names_line():
    with pytest.raises(ParseError, match="config line 2"):
        parse_config('name = "x"\nmemory = = 3\n')
    with pytest.raises(ParseError, match="not a literal"):
        parse_config("name = __import__('os')\n")


def test_xentop_real_samples():
    """Public recordings of xentop (Xen 4.9.2 ``xl top``, Xen 4.1.2 ``xm top`` with their
    summary lines, an OVM dom0's ``xentop -b``): dom0's ``no limit``/``n/a``, a 10-char
    name, large counters."""
    (rows,) = parse_xentop(read("public/xentop-4.9.2-xl-top.txt"))
    dom0, guest = rows
    assert (dom0.name, dom0.state, dom0.maxmem_kib, dom0.cpu_pct) == (
        "Domain-0", "-----r", None, 0.3)
    assert (guest.name, guest.mem_kib, guest.maxmem_kib, guest.vcpus, guest.nets) == (
        "guest-01", 1048576, 1049600, 2, 1)
    assert (guest.net_tx_kib, guest.net_rx_kib, guest.vbd_rsect, guest.vbd_wsect) == (
        113, 34, 112010, 31608)
    (rows,) = parse_xentop(read("public/xentop-4.1.2-xm-top.txt"))
    assert rows[1].net_rx_kib == 17270964 and rows[1].vbd_wsect == 69690752
    (rows,) = parse_xentop(read("public/xentop-batch-ovm-dom0.txt"))
    assert [(r.name, r.vcpus, r.maxmem_kib) for r in rows] == [
        ("c2214-vkge", 92, 754978816), ("Domain-0", 4, 9437184)]


def test_xentop_iterations_detail_lines_and_errors():
    head = read("public/xentop-batch-ovm-dom0.txt").splitlines()[0]
    row = ("  guest-02 --b---         10   12.5     262144    1.6     262144       1.6     1"
           "    1       10       20    1        0        -        -          -          -    0")
    text = "\n".join([head, row, "VCPUs(sec):   0:         10s", head,
                      row.replace("   12.5", "   50.0")])
    first, second = parse_xentop(text)
    assert first[0].vbd_rd is None and first[0].vbd_wsect is None  # '-': a VBD in error
    assert (first[0].cpu_pct, second[0].cpu_pct) == (12.5, 50.0)
    with pytest.raises(ParseError, match="no xentop header"):
        parse_xentop("Name ID Mem\n")
    with pytest.raises(ParseError, match="unexpected xentop line"):
        parse_xentop(head + "\nnot a row\n")


def test_top_metrics_from_two_iterations():
    head = read("public/xentop-batch-ovm-dom0.txt").splitlines()[0]
    row = ("  guest-02 --b---         10   {pct}     262144    1.6     524288       3.2     2"
           "    1       {tx}       20    1        0        5        5       {rs}       {ws}    0")
    text = "\n".join([head, row.format(pct=" 0.0", tx=10, rs=100, ws=200), head,
                      row.format(pct="75.0", tx=30, rs=2148, ws=100)])
    first, second = (rows[0] for rows in parse_xentop(text))
    m = top_metrics(first, second, 2)
    assert (m.interval_s, m.cpu_pct, m.cpus, m.mem_used_mib, m.mem_avail_mib) == (
        2.0, 75.0, 2, 256, 512)
    assert (m.disk_read_bps, m.net_tx_bps, m.net_rx_bps) == (2048 * 512 / 2, 10240.0, 0.0)
    assert m.disk_write_bps is None  # went down: restarted in between
    alone = top_metrics(None, second, 2)
    assert (alone.cpu_pct, alone.disk_read_bps, alone.mem_used_mib) == (None, None, 256)
