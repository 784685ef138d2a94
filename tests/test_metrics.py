# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""xdp-stats --prometheus and --textfile, with the real components.

count is attached to two veths in a throwaway namespace, one of them named
`a"b\\c`; known frames go through both.  xdp-stats --textfile writes the
file, Debian's node_exporter (run by the test as user prometheus, the way
Debian runs it, on 127.0.0.1) serves it, curl scrapes /metrics, and the
per-protocol values must come back exactly, with node_textfile_scrape_error
0.  promtool check metrics accepts the output.  Then: the complete text
byte for byte; counters above 2^53 (written into count's map per CPU)
exact in --json, the text report and --prometheus; the blocklist's counters
from maps laid out as include/blocklist.h says, pinned in a bpffs of the
test's own (TC_BPF_MNT), and from the real blocklist.o attached with
xdp-attach, filled by xdp-block and sent known frames; the textfile's mode
and its one rename; bad input.
No node_exporter is left running.
"""

import ipaddress
import json
import os
import pathlib
import re
import stat
import struct
import subprocess
import tempfile

import pytest

import promtools
from ipxdp import blocklist_reference, bpf, paths, project, reference, wire
from ipxdp.netns import PrivateBpffs, namespaces, wait_for
from ipxdp.sender import Sender, senders
from promtools import NodeExporter, check_metrics, parse, value

HOSTILE = 'a"b\\c'  # a name the kernel takes: a quote and a backslash
NAMES = {wire.TCP: "tcp", wire.UDP: "udp", wire.ICMP: "icmp", project.KEY_NON_IP: "non-ip"}
# What the test sends: (peer device, frame, how often); count sees it on
# the other end, rcv or HOSTILE.
SENT = [
    ("snd", wire.tcp4(80), 5),
    ("snd", wire.udp4(53, payload=bytes(100)), 3),
    ("snd", wire.eth(wire.ETH_P_IP) + wire.ipv4(wire.ICMP, wire.icmp_echo(b"x" * 56)), 2),
    ("snd", wire.pad(wire.eth(wire.ETH_P_ARP) + wire.arp()), 1),
    ("hpeer", wire.udp4(123), 4),
]
RECEIVER = {"snd": "rcv", "hpeer": HOSTILE}
XDP_STATS = str(paths.script("xdp-stats"))


def expected_counts():
    """{(interface, protocol): (packets, bytes)}, from the reference."""
    want = {}
    for peer, frame, n in SENT:
        key, nbytes = reference.count(frame)
        k = (RECEIVER[peer], NAMES[key])
        p, b = want.get(k, (0, 0))
        want[k] = (p + n, b + n * nbytes)
    return want


def count_totals(ns, dev):
    """count's counters on DEV, straight from the map: {protocol: (packets, bytes)}."""
    return {NAMES.get(k, k): (sum(p for p, _ in v), sum(b for _, b in v))
            for k, v in ns.count_counters(dev).items()}


def count_map_id(ns, dev):
    (program,) = ns.attached(dev)
    for map_id in ns.bpftool("prog", "show", "id", str(program.id))["map_ids"]:
        if ns.bpftool("map", "show", "id", str(map_id))["name"] == project.COUNT_MAP:
            return map_id
    raise LookupError(f"no {project.COUNT_MAP} on {dev}")


def ok(res):
    assert res.returncode == 0, res.stderr
    return res.stdout


# --- fixtures -----------------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def no_daemon_left():
    """Nothing in this file leaves a node_exporter (or prometheus) running."""
    before = set(promtools.daemon_pids())
    yield
    assert set(promtools.daemon_pids()) - before == set()


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """rx: count on rcv and on HOSTILE, xdp-pass (not one of our objects) in
    generic mode on lo; tx: their peers, which sent SENT.  No IPv6, no
    addresses: nothing else crosses the links."""
    frames = tmp_path_factory.mktemp("frames")
    with namespaces("ipxdp-metrics", "tx", "rx", ipv6=False) as (tx, rx), senders() as procs:
        tx.add_veth("snd", "rcv", peer=rx)
        tx.add_veth("hpeer", HOSTILE, peer=rx)
        for dev in ("rcv", HOSTILE):
            ok(rx.run([paths.script("xdp-attach"), dev, "count"]))
        ok(rx.run([paths.script("xdp-attach"), "lo", str(paths.fixture("xdp-pass"))]))
        for peer in RECEIVER:
            path = frames / f"{peer}.hex"
            path.write_text("".join(f.hex() + "\n" for p, f, n in SENT if p == peer
                                    for _ in range(n)))
            procs.append(Sender(tx, peer, frames_file=path))
        for proc in procs:
            proc.wait()
        want = expected_counts()
        for dev in RECEIVER.values():
            mine = {proto: v for (d, proto), v in want.items() if d == dev}
            assert wait_for(lambda: count_totals(rx, dev) == mine), \
                f"{dev}: count saw {count_totals(rx, dev)}, not {mine}"
        yield rx


@pytest.fixture
def bpffs():
    """A bpffs of the test's own, given as TC_BPF_MNT: xdp-stats looks for
    the blocklist's pins there, never in the host's."""
    with PrivateBpffs() as fs:
        yield fs.root


@pytest.fixture
def env(bpffs, tmp_path):
    """xdp-stats's environment: the private bpffs; TMPDIR a directory the
    test checks is left empty."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    yield {**os.environ, "TC_BPF_MNT": str(bpffs), "TMPDIR": str(tmp)}
    assert list(tmp.iterdir()) == [], "xdp-stats left temporary files"


@pytest.fixture
def textfiles():
    """A textfile directory the prometheus user can read (pytest's
    tmp_path is not)."""
    with tempfile.TemporaryDirectory(prefix="ipxdp-textfile.") as d:
        os.chmod(d, 0o755)
        yield pathlib.Path(d)


def stats(ns, *args, env):
    return ns.run([XDP_STATS, *args], env=env)


def programs(ns):
    """{interface: (mode, prog id)} of every program attached in NS."""
    links = json.loads(ns.ip("-j", "link", "show"))
    return {link["ifname"]: (a.mode, a.id) for link in links for a in ns.attached(link["ifname"])}


# --- through node_exporter ------------------------------------------------------

def test_the_textfile_scraped_from_node_exporter(net, env, textfiles):
    assert (res := stats(net, "--textfile", str(textfiles), env=env)).returncode == 0, res.stderr
    assert (res.stdout, res.stderr) == ("", "")
    prom = textfiles / "ipxdp.prom"
    assert [p.name for p in textfiles.iterdir()] == ["ipxdp.prom"]
    assert stat.S_IMODE(prom.stat().st_mode) == 0o644

    with NodeExporter(textfiles, user="prometheus") as ne:
        samples = parse(ne.scrape())
    assert ne.proc.poll() is not None, "node_exporter still running"

    assert value(samples, "node_textfile_scrape_error") == 0
    want = expected_counts()
    for name, index in [("ipxdp_count_packets_total", 0), ("ipxdp_count_bytes_total", 1)]:
        got = {(s.labels["interface"], s.labels["protocol"]): s.value
               for s in samples if s.name == name}
        assert got == {k: v[index] for k, v in want.items()}, name
    info = {s.labels["interface"]: s.labels for s in samples if s.name == "ipxdp_program_info"}
    ids = programs(net)
    assert info == {
        "lo": {"interface": "lo", "mode": "generic", "object": "", "section": "",
               "prog_id": str(ids["lo"][1]), "name": "xdp_pass_all"},
        "rcv": {"interface": "rcv", "mode": "native", "object": "count.o", "section": "xdp.frags",
                "prog_id": str(ids["rcv"][1]), "name": "xdp_count_mb"},
        HOSTILE: {"interface": HOSTILE, "mode": "native", "object": "count.o",
                  "section": "xdp.frags", "prog_id": str(ids[HOSTILE][1]),
                  "name": "xdp_count_mb"},
    }
    assert all(s.value == 1 for s in samples if s.name == "ipxdp_program_info")
    # The bpffs holds no blocklist maps: no blocklist series.
    assert not [s for s in samples if s.name.startswith("ipxdp_blocklist")]


def test_nothing_attached_is_a_valid_file_without_series(env, textfiles):
    """No count anywhere, no blocklist: the file holds only the HELP and
    TYPE lines, and node_exporter reads it without an error."""
    with namespaces("ipxdp-metrics-empty", "ns", ipv6=False) as (ns,):
        assert (res := stats(ns, "--textfile", str(textfiles), env=env)).returncode == 0, res.stderr
    text = (textfiles / "ipxdp.prom").read_text()
    assert parse(text) == []
    assert re.findall(r"^# TYPE (\S+)", text, flags=re.M) == \
        ["ipxdp_count_packets_total", "ipxdp_count_bytes_total", "ipxdp_program_info"]
    assert check_metrics(text).returncode == 0
    with NodeExporter(textfiles, user="prometheus") as ne:
        samples = parse(ne.scrape())
    assert value(samples, "node_textfile_scrape_error") == 0
    assert not [s for s in samples if s.name.startswith("ipxdp_")]


def test_promtool_accepts_the_output(net, env):
    text = ok(stats(net, "--prometheus", env=env))
    assert 'interface="a\\"b\\\\c"' in text
    res = check_metrics(text)
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")


def test_the_whole_text(net, env):
    """Every line, in order: the families, HELP and TYPE, the escaping."""
    ids = programs(net)
    want = expected_counts()
    q = 'a\\"b\\\\c'

    def rows(index):
        out = []
        for dev, label in [("rcv", "rcv"), (HOSTILE, q)]:  # ip's order
            for proto in ["icmp", "tcp", "udp", "non-ip"]:  # protocol-number order
                if (dev, proto) in want:
                    out.append(f'{{interface="{label}",protocol="{proto}"}} {want[dev, proto][index]}')
        return out

    lines = ["# HELP ipxdp_count_packets_total Frames seen by count, per IP protocol.",
             "# TYPE ipxdp_count_packets_total counter",
             *("ipxdp_count_packets_total" + r for r in rows(0)),
             "# HELP ipxdp_count_bytes_total Bytes of the frames seen by count, per IP protocol.",
             "# TYPE ipxdp_count_bytes_total counter",
             *("ipxdp_count_bytes_total" + r for r in rows(1)),
             "# HELP ipxdp_program_info The XDP programs attached, one series each; "
             "the value is always 1.",
             "# TYPE ipxdp_program_info gauge",
             f'ipxdp_program_info{{interface="lo",mode="generic",object="",section="",'
             f'prog_id="{ids["lo"][1]}",name="xdp_pass_all"}} 1',
             f'ipxdp_program_info{{interface="rcv",mode="native",object="count.o",section="xdp.frags",'
             f'prog_id="{ids["rcv"][1]}",name="xdp_count_mb"}} 1',
             f'ipxdp_program_info{{interface="{q}",mode="native",object="count.o",section="xdp.frags",'
             f'prog_id="{ids[HOSTILE][1]}",name="xdp_count_mb"}} 1']
    assert ok(stats(net, "--prometheus", env=env)) == "".join(line + "\n" for line in lines)


def test_named_interfaces_only(net, env):
    """With DEV operands, only those (each once, however often named)."""
    samples = parse(ok(stats(net, "-p", HOSTILE, HOSTILE, env=env)))
    assert {s.labels["interface"] for s in samples} == {HOSTILE}
    assert value(samples, "ipxdp_count_packets_total", interface=HOSTILE, protocol="udp") == 4
    assert len([s for s in samples if s.name == "ipxdp_program_info"]) == 1


# --- exactness ------------------------------------------------------------------

BIG = {  # per CPU (CPU 0, CPU 1), and the exact sums
    wire.TCP: ([{"packets": 2 ** 63, "bytes": 2 ** 64 - 1},
                {"packets": 2 ** 63 - 1, "bytes": 2 ** 64 - 1}],
               18446744073709551615, 36893488147419103230),
    wire.UDP: ([{"packets": 2 ** 53 + 1, "bytes": 12345678901234567000},
                {"packets": 0, "bytes": 890}],
               9007199254740993, 12345678901234567890),
}


def test_counters_above_2_53_are_exact(env):
    """count's per-CPU values set near 2^64 with the package's libbpf
    bindings: every output prints the exact sums (2^53 + 1 is the first
    integer a double cannot hold; the TCP byte sum is past 2^64)."""
    assert bpf.num_possible_cpus() >= 2, "this test needs two CPUs"
    with namespaces("ipxdp-metrics-big", "ns", ipv6=False) as (ns,):
        ns.add_veth("big0", "big1")
        ok(ns.run([paths.script("xdp-attach"), "big0", "count"]))
        fd = bpf.map_fd_by_id(count_map_id(ns, "big0"))
        try:
            table = bpf.PerCpuArray(fd, project.COUNT_FIELDS)
            for key, (per_cpu, _, _) in BIG.items():
                table.update(key, per_cpu)
        finally:
            os.close(fd)
        assert count_totals(ns, "big0") == {NAMES[k]: (p, b) for k, (_, p, b) in BIG.items()}

        once = ok(stats(ns, "--once", "--json", "big0", env=env))
        text = ok(stats(ns, "--once", "big0", env=env))
        interval = ok(stats(ns, "--json", "-i", "0.1", "-c", "1", "big0", env=env))
        prom = ok(stats(ns, "--prometheus", env=env))

    assert once == ('{"interface":"big0","protocols":{'
                    '"tcp":{"packets":18446744073709551615,"bytes":36893488147419103230},'
                    '"udp":{"packets":9007199254740993,"bytes":12345678901234567890}}}\n')
    assert json.loads(once)["protocols"]["udp"]["packets"] == 2 ** 53 + 1  # Python reads it exactly
    rows = [line.split() for line in text.splitlines()[2:]]
    assert rows == [["tcp", "18446744073709551615", "36893488147419103230"],
                    ["udp", "9007199254740993", "12345678901234567890"]]
    report = json.loads(interval)
    assert report["protocols"]["tcp"] == {"packets": 18446744073709551615,
                                          "bytes": 36893488147419103230,
                                          "packets_per_second": 0, "bytes_per_second": 0}
    raw = {(s.name, s.labels.get("protocol")): s.raw for s in parse(prom)}
    for key, (_, packets, nbytes) in BIG.items():
        assert raw["ipxdp_count_packets_total", NAMES[key]] == str(packets)
        assert raw["ipxdp_count_bytes_total", NAMES[key]] == str(nbytes)
    assert check_metrics(prom).returncode == 0


# --- the blocklist's maps ---------------------------------------------------------

def blocklist_key(prefix):
    """struct blocklist_key for "198.51.100.0/24" or "2001:db8::/32", as
    bpftool's hex words (prefixlen in the machine's byte order)."""
    net = ipaddress.ip_network(prefix)
    family = 4 if net.version == 4 else 6
    key = struct.pack("=IB3x16s", 32 + net.prefixlen, family, net.network_address.packed)
    return key.hex(" ").split()


def u32(v):
    return struct.pack("=I", v).hex(" ").split()


class Blocklist:
    """The maps of include/blocklist.h, made with bpftool in DIR/tc/globals
    the way the object defines them (the lists' tries pinned beside)."""

    def __init__(self, bpffs, counters=16, totals=5):
        self.dir = bpffs / "tc" / "globals"
        self.dir.mkdir(parents=True)
        self.make("ipxdp_totals", "type", "percpu_array", "key", "4", "value", "16",
                  "entries", str(totals))
        self.make("ipxdp_counters", "type", "percpu_array", "key", "4", "value", "16",
                  "entries", str(counters))
        for outer, inner in [("ipxdp_block", "ipxdp_blocklist"), ("ipxdp_allow", "ipxdp_allowlist")]:
            self.make(f"{inner}_0", "type", "lpm_trie", "key", "24", "value", "4",
                      "entries", "64", "flags", "1", name=inner)
            self.make(outer, "type", "array_of_maps", "key", "4", "value", "4", "entries", "1",
                      "inner_map", "pinned", str(self.dir / f"{inner}_0"))
            self.bpftool("map", "update", "pinned", str(self.dir / outer), "key", "0", "0", "0", "0",
                         "value", "pinned", str(self.dir / f"{inner}_0"))

    def bpftool(self, *args):
        res = subprocess.run(["bpftool", *args], capture_output=True, text=True, timeout=30)
        assert res.returncode == 0, res.stderr
        return res.stdout

    def make(self, pin, *args, name=None):
        self.bpftool("map", "create", str(self.dir / pin), *args, "name", name or pin)

    def add(self, lst, prefix, slot):
        inner = {"block": "ipxdp_blocklist_0", "allow": "ipxdp_allowlist_0"}[lst]
        self.bpftool("map", "update", "pinned", str(self.dir / inner),
                     "key", "hex", *blocklist_key(prefix), "value", "hex", *u32(slot))

    def set(self, pin, slot, per_cpu):
        """Slot SLOT of the per-CPU map PIN: one (packets, bytes) per CPU."""
        info = json.loads(self.bpftool("-j", "map", "show", "pinned", str(self.dir / pin)))
        fd = bpf.map_fd_by_id(info["id"])
        try:
            bpf.PerCpuArray(fd, ("packets", "bytes")).update(
                slot, [{"packets": p, "bytes": b} for p, b in per_cpu])
        finally:
            os.close(fd)


NO_COUNTER = 0xFFFFFFFF


@pytest.fixture
def blocklist(bpffs):
    bl = Blocklist(bpffs)
    # totals: passed, blocked (2^64 - 1 over two CPUs), allowed; malformed
    # stays 0; 2 frames decided by a prefix without a counter slot.
    bl.set("ipxdp_totals", 0, [(7, 700), (3, 300)])
    bl.set("ipxdp_totals", 1, [(2 ** 63, 2 ** 63), (2 ** 63 - 1, 2 ** 63 + 5)])
    bl.set("ipxdp_totals", 2, [(4, 400)])
    bl.set("ipxdp_totals", 4, [(1, 60), (1, 60)])
    for lst, prefix, slot, per_cpu in [
        ("block", "198.51.100.0/24", 0, [(6, 600), (4, 400)]),
        ("block", "2001:db8::/32", 1, [(30, 3000)]),
        ("allow", "2001:db8:0:1::1/128", 2, [(10, 999)]),  # ties with 198.51.100.0/24
        ("block", "203.0.113.7/32", 3, []),                # no packets: no series
        ("block", "10.0.0.0/8", NO_COUNTER, None),          # no counter slot: no series
        ("block", "fe80::1:0:0:1/128", 4, [(2, 200)]),      # the longer zero run is "::"
        ("allow", "2001:db8:0:0:1:0:0:1/128", 5, [(1, 100)]),  # equal runs: the first
        ("block", "::/0", 6, [(3, 300)]),
    ]:
        bl.add(lst, prefix, slot)
        if per_cpu:
            bl.set("ipxdp_counters", slot, per_cpu)
    return bl


BLOCKLIST_TOTALS = """\
# HELP ipxdp_blocklist_packets_total Frames judged by the blocklist, per verdict.
# TYPE ipxdp_blocklist_packets_total counter
ipxdp_blocklist_packets_total{verdict="passed"} 10
ipxdp_blocklist_packets_total{verdict="blocked"} 18446744073709551615
ipxdp_blocklist_packets_total{verdict="allowed"} 4
ipxdp_blocklist_packets_total{verdict="malformed"} 0
# HELP ipxdp_blocklist_bytes_total Bytes of the frames judged by the blocklist, per verdict.
# TYPE ipxdp_blocklist_bytes_total counter
ipxdp_blocklist_bytes_total{verdict="passed"} 1000
ipxdp_blocklist_bytes_total{verdict="blocked"} 18446744073709551621
ipxdp_blocklist_bytes_total{verdict="allowed"} 400
ipxdp_blocklist_bytes_total{verdict="malformed"} 0
# HELP ipxdp_blocklist_uncounted_packets_total Frames decided by a listed prefix without \
a counter slot (in the verdict totals, in no per-prefix series).
# TYPE ipxdp_blocklist_uncounted_packets_total counter
ipxdp_blocklist_uncounted_packets_total 2
# HELP ipxdp_blocklist_uncounted_bytes_total Bytes of those frames.
# TYPE ipxdp_blocklist_uncounted_bytes_total counter
ipxdp_blocklist_uncounted_bytes_total 120
"""


def blocklist_part(text):
    lines = text.splitlines(keepends=True)
    return "".join(line for line in lines if "ipxdp_blocklist" in line)


def test_blocklist_totals(net, env, blocklist):
    text = ok(stats(net, "--prometheus", "rcv", env=env))
    assert blocklist_part(text) == BLOCKLIST_TOTALS
    res = check_metrics(text)
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")


def test_blocklist_top_prefixes(net, env, blocklist):
    top = [("block", "2001:db8::/32", 30, 3000),
           ("block", "198.51.100.0/24", 10, 1000),
           ("allow", "2001:db8:0:1::1/128", 10, 999),
           ("block", "::/0", 3, 300),
           ("block", "fe80::1:0:0:1/128", 2, 200),
           ("allow", "2001:db8::1:0:0:1/128", 1, 100)]

    def want(n):
        rows = top[:n]
        return BLOCKLIST_TOTALS + "".join([
            "# HELP ipxdp_blocklist_prefix_packets_total Frames decided by a listed prefix, "
            "for the prefixes with the most (xdp-stats --top).\n",
            "# TYPE ipxdp_blocklist_prefix_packets_total counter\n",
            *(f'ipxdp_blocklist_prefix_packets_total{{list="{lst}",prefix="{p}"}} {pk}\n'
              for lst, p, pk, _ in rows),
            "# HELP ipxdp_blocklist_prefix_bytes_total Bytes of the frames decided by a listed "
            "prefix, for the same prefixes.\n",
            "# TYPE ipxdp_blocklist_prefix_bytes_total counter\n",
            *(f'ipxdp_blocklist_prefix_bytes_total{{list="{lst}",prefix="{p}"}} {by}\n'
              for lst, p, _, by in rows)])

    for n in (2, 3, 100):
        text = ok(stats(net, "--prometheus", "--top", str(n), "rcv", env=env))
        assert blocklist_part(text) == want(n), n
    res = check_metrics(text)
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")


def test_blocklist_maps_of_another_layout_are_refused(net, env, bpffs, tmp_path):
    Blocklist(bpffs, totals=4)
    res = stats(net, "--prometheus", env=env)
    assert (res.returncode, res.stdout) == (2, "")
    assert res.stderr == ("xdp-stats: pinned map ipxdp_totals is not blocklist's: percpu_array, "
                          "4-byte keys, 16-byte values, 4 entries, where include/blocklist.h has "
                          "percpu_array, 4-byte keys, 16-byte values, 5 entries\n")


def test_blocklist_metrics_of_the_real_object(tmp_path):
    """blocklist.o attached with xdp-attach (TC_BPF_MNT: a bpffs of the
    test's own), its lists loaded with xdp-block, known frames sent to it:
    xdp-stats --prometheus --top N gives the totals and the N busiest
    prefixes exactly as the reference counts them, and program_info names
    the object."""
    block = ["198.51.100.0/24", "2001:db8::/32", "203.0.113.7", "10.0.0.0/8", "::ffff:192.0.2.0/120"]
    allow = ["198.51.100.7", "2001:db8:0:1::/64"]
    v4 = lambda src, l4=wire.udp(53): wire.eth(wire.ETH_P_IP) + wire.ipv4(  # noqa: E731
        wire.UDP, l4, src=ipaddress.ip_address(src).packed)
    v6 = lambda src: wire.eth(wire.ETH_P_IPV6) + wire.ipv6(  # noqa: E731
        wire.UDP, wire.udp(53, payload=b"six"), src=ipaddress.ip_address(src).packed)
    sent = [(v4("198.51.100.1"), 9), (v4("198.51.100.200", wire.udp(53, payload=bytes(300))), 2),
            (v6("2001:db8:ffff::1"), 7), (v6("2001:db8:0:1::5"), 5), (v4("198.51.100.7"), 4),
            (v6("::ffff:192.0.2.9"), 3), (v4("10.1.2.3"), 1), (v4("192.0.2.9"), 6),
            (wire.eth(wire.ETH_P_IP) + wire.ipv4(wire.UDP, wire.udp(53), ihl=3), 2),
            (wire.pad(wire.eth(wire.ETH_P_ARP) + wire.arp()), 1)]
    lists = blocklist_reference.Lists(block, allow)
    tally = blocklist_reference.Tally()
    for frame, n in sent:
        for _ in range(n):
            tally.add(lists.decide(frame), len(frame))
    frames = tmp_path / "frames.hex"
    frames.write_text("".join(f.hex() + "\n" for f, n in sent for _ in range(n)))

    with PrivateBpffs() as fs, namespaces("ipxdp-blmetrics", "tx", "rx", ipv6=False) as (tx, rx), \
            senders() as procs:
        env = {**fs.env, "TMPDIR": str(tmp_path)}
        tx.add_veth("snd", "rcv", peer=rx)
        fs.block("load", "-", input="\n".join(block) + "\n", check=True)
        fs.block("load", "--allow", "-", input="\n".join(allow) + "\n", check=True)
        ok(rx.run([paths.script("xdp-attach"), "rcv", str(paths.obj("blocklist"))], env=env))
        procs.append(Sender(tx, "snd", frames_file=frames))
        procs[0].wait()
        total = sum(n for _, n in sent)
        judged = lambda: sum(fs.stats()[v]["packets"] for v in ("passed", "blocked", "allowed", "malformed"))  # noqa: E731
        assert wait_for(lambda: judged() == total), fs.stats()
        texts = {n: ok(stats(rx, "--prometheus", "--top", str(n), env=env)) for n in (3, 100)}
        (prog,) = rx.attached("rcv")

    def series(metric, help_text, rows):
        return (f"# HELP {metric} {help_text}\n# TYPE {metric} counter\n"
                + "".join(f"{metric}{labels} {v}\n" for labels, v in rows))

    totals = [tally.totals.get(v, {"packets": 0, "bytes": 0}) for v in ("passed", "blocked", "allowed", "malformed")]
    names = ("passed", "blocked", "allowed", "malformed")
    # The busiest first; the counts above are all different.
    top = sorted(tally.rules.items(), key=lambda kv: -kv[1]["packets"])
    assert len({v["packets"] for _, v in top}) == len(top) == 6  # 203.0.113.7: none

    def want(n):
        rows = top[:n]
        return "".join([
            series("ipxdp_blocklist_packets_total", "Frames judged by the blocklist, per verdict.",
                   [(f'{{verdict="{v}"}}', t["packets"]) for v, t in zip(names, totals)]),
            series("ipxdp_blocklist_bytes_total", "Bytes of the frames judged by the blocklist, per verdict.",
                   [(f'{{verdict="{v}"}}', t["bytes"]) for v, t in zip(names, totals)]),
            series("ipxdp_blocklist_uncounted_packets_total", "Frames decided by a listed prefix without a "
                   "counter slot (in the verdict totals, in no per-prefix series).", [("", 0)]),
            series("ipxdp_blocklist_uncounted_bytes_total", "Bytes of those frames.", [("", 0)]),
            series("ipxdp_blocklist_prefix_packets_total", "Frames decided by a listed prefix, for the "
                   "prefixes with the most (xdp-stats --top).",
                   [(f'{{list="{lst}",prefix="{net}"}}', c["packets"]) for (lst, net), c in rows]),
            series("ipxdp_blocklist_prefix_bytes_total", "Bytes of the frames decided by a listed prefix, "
                   "for the same prefixes.",
                   [(f'{{list="{lst}",prefix="{net}"}}', c["bytes"]) for (lst, net), c in rows])])

    for n, text in texts.items():
        assert blocklist_part(text) == want(n), n
        assert f'ipxdp_program_info{{interface="rcv",mode="native",object="blocklist.o",' \
               f'section="xdp.frags",prog_id="{prog.id}",name="xdp_block_mb"}} 1\n' in text
        res = check_metrics(text)
        assert (res.returncode, res.stdout, res.stderr) == (0, "", "")


# --- the textfile ------------------------------------------------------------------

def test_the_textfile_is_replaced_in_one_rename(net, env, textfiles, tmp_path):
    """The new text goes into a temporary file in DIR, which is renamed over
    ipxdp.prom: ipxdp.prom itself is never opened for writing, so a reader
    never sees part of a file.  The old file stays whole for whoever holds
    it open, and the new one is 0644 even under umask 077."""
    prom = textfiles / "ipxdp.prom"
    prom.write_text("# the old file\n")
    prom.chmod(0o600)
    old_inode = prom.stat().st_ino
    log = tmp_path / "strace.log"
    with open(prom) as held:
        res = net.run(["strace", "-f", "-qq", "-o", str(log),
                       "-e", "trace=open,openat,creat,rename,renameat,renameat2",
                       "sh", "-c", 'umask 077; exec "$0" "$@"', XDP_STATS, "--textfile",
                       str(textfiles)], env=env)
        assert res.returncode == 0, res.stderr
        assert held.read() == "# the old file\n"
    assert prom.stat().st_ino != old_inode
    assert stat.S_IMODE(prom.stat().st_mode) == 0o644
    assert prom.read_text().startswith("# HELP ipxdp_count_packets_total ")
    assert [p.name for p in textfiles.iterdir()] == ["ipxdp.prom"]

    trace = log.read_text()
    d = re.escape(str(textfiles))
    written = set(re.findall(rf'open(?:at)?\((?:AT_FDCWD, )?"({d}/[^"]*)", [^)]*O_(?:WRONLY|RDWR)', trace))
    renamed = re.findall(rf'rename(?:at2?)?\((?:AT_FDCWD, )?"({d}/[^"]*)", (?:AT_FDCWD, )?'
                         rf'"({d}/[^"]*)"[^)]*\) = 0$', trace, flags=re.M)
    (tmp,) = written
    assert re.fullmatch(rf"{d}/\.ipxdp\.prom\.\w{{8}}", tmp)  # not *.prom: node_exporter skips it
    assert renamed == [(tmp, str(prom))]


@pytest.fixture
def read_only_dir():
    d = pathlib.Path(tempfile.mkdtemp(prefix="ipxdp-ro."))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "ipxdp-ro", str(d)], check=True)
    try:
        yield d
    finally:
        subprocess.run(["umount", str(d)], check=True)
        d.rmdir()


# --- bad input: one line, the exit code, nothing written --------------------------

def test_textfile_directory_problems(net, env, tmp_path, read_only_dir):
    afile = tmp_path / "afile"
    afile.write_text("")
    for d, message in [(tmp_path / "nosuch", "no such directory (--textfile needs the directory "
                                             "node_exporter's textfile collector reads)"),
                       (afile, "not a directory"),
                       (read_only_dir, "not writable")]:
        res = stats(net, "--textfile", str(d), env=env)
        assert (res.returncode, res.stdout, res.stderr) == (2, "", f"xdp-stats: {d}: {message}\n")
    assert list(read_only_dir.iterdir()) == []


def test_a_failed_run_leaves_the_old_file(net, env, textfiles):
    prom = textfiles / "ipxdp.prom"
    prom.write_text("# the old file\n")
    for devs, message in [(["lo"], "lo: no count program attached (attached: xdp_pass_all (generic))"),
                          (["rcv", "nosuch0"], "nosuch0: unknown interface (not in this network namespace)")]:
        res = stats(net, "--textfile", str(textfiles), *devs, env=env)
        assert (res.returncode, res.stdout, res.stderr) == (2, "", f"xdp-stats: {message}\n")
        assert [p.name for p in textfiles.iterdir()] == ["ipxdp.prom"]
        assert prom.read_text() == "# the old file\n"


@pytest.mark.parametrize("args, code, message", [
    (["--prometheus", "--top", "3"], 2, "--top: no blocklist counters here (no map ipxdp_totals "
                                        "pinned in {bpffs}/tc/globals): attach blocklist first"),
    (["--top", "3", "rcv"], 1, "--top is for --prometheus and --textfile (see xdp-stats --help)"),
    (["-p", "--top", "0"], 1, "--top needs a whole number greater than 0, not 0 (see xdp-stats --help)"),
    (["-p", "--top", "many"], 1, "--top needs a whole number greater than 0, not many "
                                 "(see xdp-stats --help)"),
    (["-p", "--textfile", "/tmp"], 1, "--prometheus prints what --textfile writes: use one of them "
                                      "(see xdp-stats --help)"),
    (["-p", "--json"], 1, "--prometheus writes the totals once, as metrics: it takes no --interval, "
                          "--count, --once or --json (see xdp-stats --help)"),
    (["--textfile", "/tmp", "-i", "2"], 1, "--textfile writes the totals once, as metrics: it takes "
                                           "no --interval, --count, --once or --json "
                                           "(see xdp-stats --help)"),
    (["--textfile"], 1, "--textfile needs a value (see xdp-stats --help)"),
    (["-p", "nosuch0"], 2, "nosuch0: unknown interface (not in this network namespace)"),
    (["-p", "rcv", "lo"], 2, "lo: no count program attached (attached: xdp_pass_all (generic))"),
])
def test_bad_input(net, env, bpffs, args, code, message):
    res = stats(net, *args, env=env)
    assert (res.returncode, res.stdout, res.stderr) == \
        (code, "", f"xdp-stats: {message.format(bpffs=bpffs)}\n")


def test_the_documented_metrics_are_the_real_ones(net, env, blocklist):
    """docs/monitoring.md: its table names exactly the families xdp-stats
    prints (with the blocklist and --top), and its example file uses their
    HELP lines."""
    text = ok(stats(net, "--prometheus", "--top", "1", env=env))
    families = re.findall(r"^# TYPE (\S+) ", text, flags=re.M)
    doc = (paths.ROOT / "docs" / "monitoring.md").read_text()
    table = re.search(r"^## The metrics\n(.*?)^## ", doc, flags=re.M | re.S)[1]
    assert sorted(re.findall(r"^\| `(ipxdp_\w+)` \|", table, flags=re.M)) == sorted(families)
    (example,) = re.findall(r"^```\n(# HELP ipxdp_count_packets_total .*?)^```$", doc,
                            flags=re.M | re.S)
    assert set(re.findall(r"^# HELP .*$", example, flags=re.M)) <= \
        set(re.findall(r"^# HELP .*$", text, flags=re.M))
