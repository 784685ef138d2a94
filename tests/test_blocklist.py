# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""blocklist.o under BPF_PROG_TEST_RUN, its lists filled by xdp-block itself.

Each test works in a private bpffs (ipxdp.netns.PrivateBpffs): xdp-block
pins the maps there, and the very .o file `ip` loads is loaded with libbpf
reusing those pins.  Verdicts, output bytes and every counter are checked
against ipxdp.blocklist_reference (Python's ipaddress), never against the
script's own view.
"""

import ipaddress
import os
import random

import pytest

import frames
from ipxdp import blocklist_reference as ref
from ipxdp import bpf, project, randframes, wire
from ipxdp.bpf import VERDICTS, num_possible_cpus
from ipxdp.netns import PrivateBpffs

TOTALS = project.BLOCKLIST_TOTALS
TX_PORT, _ = project.port_9090_config()
TABLE = frames.cases(TX_PORT) + frames.truncation_cases(TX_PORT)


def _own_source(i, case):
    """@case with a source address of its own: 198.51.100.i or 2001:db8::i."""
    v4 = ref.source(case.frame).version == 4
    src = ipaddress.ip_address(f"198.51.100.{i}" if v4 else f"2001:db8::{i:x}")
    return frames.Case(case.name, randframes.with_source(case.frame, src), case.key, case.bounce)


IP_CASES = [_own_source(i, c) for i, c in
            enumerate((c for c in TABLE if c.key not in (frames.NON_IP, frames.MALFORMED)), 1)]
TABLE = [c for c in TABLE if c.key in (frames.NON_IP, frames.MALFORMED)] + IP_CASES


@pytest.fixture(scope="module")
def fs():
    with PrivateBpffs() as bpffs:
        bpffs.block("flush", check=True)  # creates the pinned maps
        yield bpffs


@pytest.fixture(scope="module")
def obj(fs):
    with fs.load_object() as loaded:
        yield loaded


@pytest.fixture
def lists(fs, obj):
    """Sets the block and allow lists (via `xdp-block load`) and returns the
    reference for them; both lists are empty again afterwards."""
    def set_lists(block=(), allow=()):
        for name, prefixes in (("block", block), ("allow", allow)):
            args = ["load", "-"] + (["--allow"] if name == "allow" else [])
            fs.block(*args, input="".join(f"{p}\n" for p in prefixes), check=True)
        return ref.Lists(block, allow)
    yield set_lists
    for args in (["flush"], ["flush", "--allow"]):
        fs.block(*args, check=True)


def verdict(obj, frame):
    v, out = obj.run(frame)
    return VERDICTS.get(v, f"unknown({v})"), out


def packed(address):
    return ipaddress.ip_address(address).packed


def udp4(src, dst="192.0.2.99", frag_off=0, l4=None):
    """Ethernet / IPv4 from @src / UDP to port 53 (or @l4 as the payload)."""
    l4 = wire.udp(53, payload=b"q" * 8) if l4 is None else l4
    return wire.eth(wire.ETH_P_IP) + wire.ipv4(wire.UDP, l4, frag_off=frag_off, src=packed(src), dst=packed(dst))


def udp6(src, dst="2001:db8:ffff::99", before=b"", nh=wire.UDP, l4=None):
    """Ethernet / IPv6 from @src / @before (extension headers, the first
    of kind @nh) / UDP to port 53 (or @l4)."""
    l4 = wire.udp(53, payload=b"q" * 8) if l4 is None else l4
    return wire.eth(wire.ETH_P_IPV6) + wire.ipv6(nh, before + l4, src=packed(src), dst=packed(dst))


def rules(fs):
    """{(list, network): {"packets": P, "bytes": B}} from xdp-block list --json."""
    out = {}
    for name, entries in fs.lists().items():
        for e in entries:
            out[(name, ipaddress.ip_network(e["prefix"]))] = {"packets": e["packets"], "bytes": e["bytes"]}
    return out


def nonzero(table):
    return {k: v for k, v in table.items() if v["packets"] or v["bytes"]}


# --- every parsing rule, through the real lists --------------------------------

def test_empty_lists(obj, lists):
    """Nothing listed: IP passes unchanged, so does what is not IP, and a
    frame the parser cannot see through is dropped."""
    lists()
    for case in TABLE:
        got, out = verdict(obj, case.frame)
        if case.key == frames.MALFORMED:
            assert got == "DROP", case.name
        else:
            assert (got, out) == ("PASS", case.frame), case.name


def test_every_ip_frame_of_the_table_is_judged_by_its_source(obj, lists):
    """Each IP frame of the table (VLAN, QinQ, options, fragments, extension
    headers, tunnels, truncated transport headers), each from a source of
    its own, is dropped once its own source is listed, passed while only
    others are, and passed again once its source is also allowed."""
    assert len(IP_CASES) > 20
    sources = [str(ref.source(c.frame)) for c in IP_CASES]
    assert len(set(sources)) == len(sources)
    lists(block=sources[::2])
    for i, case in enumerate(IP_CASES):
        assert verdict(obj, case.frame)[0] == ("DROP" if i % 2 == 0 else "PASS"), case.name
    lists(block=sources, allow=sources)
    for case in IP_CASES:
        assert verdict(obj, case.frame) == ("PASS", case.frame), case.name
    # Frames that are not IP, or malformed, do not care about the lists.
    for case in TABLE:
        if case.key == frames.NON_IP:
            assert verdict(obj, case.frame) == ("PASS", case.frame), case.name
        elif case.key == frames.MALFORMED:
            assert verdict(obj, case.frame)[0] == "DROP", case.name


def test_each_frame_counts_once_in_the_right_total(obj, lists, fs):
    """Frame by frame, exactly one total moves, by one packet and the
    frame's length; at the end each entry has counted exactly the frames
    the reference says it decided."""
    sources = [str(ref.source(c.frame)) for c in IP_CASES]
    reference = lists(block=sources, allow=sources[:3])
    tally = ref.Tally()
    for case in TABLE:
        before = bpf.blocklist_totals(obj)
        decision = reference.decide(case.frame)
        assert verdict(obj, case.frame)[0] == decision.verdict, case.name
        after = bpf.blocklist_totals(obj)
        assert {k for k in TOTALS if after[k] != before[k]} == {decision.total}, case.name
        assert after[decision.total] == {
            "packets": before[decision.total]["packets"] + 1,
            "bytes": before[decision.total]["bytes"] + len(case.frame)}, case.name
        tally.add(decision, len(case.frame))
    assert nonzero(rules(fs)) == tally.rules
    assert len(tally.rules) == len(IP_CASES)


# --- the rules of the lists -----------------------------------------------------

def test_longest_prefix_and_allow_overrides(obj, lists, fs):
    reference = lists(block=["10.0.0.0/8", "10.1.2.0/24", "0.0.0.0/0", "2001:db8::/32", "::/0"],
                      allow=["10.1.0.0/16", "2001:db8:aaaa::/48", "192.0.2.7"])
    cases = {
        "10.1.2.3": "PASS",      # allowed by 10.1.0.0/16, whatever the /24 says
        "10.2.0.1": "DROP",      # 10.0.0.0/8
        "192.0.2.7": "PASS",     # allowed /32 inside the blocked /0
        "192.0.2.8": "DROP",     # 0.0.0.0/0
        "2001:db8:aaaa::1": "PASS",
        "2001:db8:bbbb::1": "DROP",
        "fe80::1": "DROP",       # ::/0
    }
    for src, want in cases.items():
        frame = udp6(src) if ":" in src else udp4(src)
        assert verdict(obj, frame)[0] == want, src
        assert reference.decide(frame).verdict == want, src
        got = fs.block("check", src, check=True).stdout.strip()
        assert got == reference.check(src), src
    assert fs.block("check", "10.1.2.3", check=True).stdout == "allowed by 10.1.0.0/16\n"
    assert fs.block("check", "10.2.0.1", check=True).stdout == "blocked by 10.0.0.0/8\n"


def test_overridden_block_entry_does_not_count(obj, lists, fs):
    lists(block=["10.1.2.0/24"], allow=["10.1.0.0/16"])
    frame = udp4("10.1.2.3")
    for _ in range(3):
        assert verdict(obj, frame)[0] == "PASS"
    got = rules(fs)
    assert got[("allow", ipaddress.ip_network("10.1.0.0/16"))] == {"packets": 3, "bytes": 3 * len(frame)}
    assert got[("block", ipaddress.ip_network("10.1.2.0/24"))] == {"packets": 0, "bytes": 0}


def test_ipv4_mapped_ipv6_is_ipv6(obj, lists):
    mapped = udp6("::ffff:198.51.100.1")
    plain = udp4("198.51.100.1")
    lists(block=["198.51.100.0/24", "0.0.0.0/0"])
    assert verdict(obj, mapped)[0] == "PASS"
    assert verdict(obj, plain)[0] == "DROP"
    lists(block=["::ffff:198.51.100.0/120"])
    assert verdict(obj, mapped)[0] == "DROP"
    assert verdict(obj, plain)[0] == "PASS"


def test_zero_length_prefixes_are_per_family(obj, lists):
    lists(block=["0.0.0.0/0"])
    assert verdict(obj, udp4("203.0.113.1"))[0] == "DROP"
    assert verdict(obj, udp6("2001:db8::1"))[0] == "PASS"
    lists(block=["::/0"])
    assert verdict(obj, udp4("203.0.113.1"))[0] == "PASS"
    assert verdict(obj, udp6("2001:db8::1"))[0] == "DROP"


def test_every_fragment_is_judged(obj, lists):
    """First, middle and last fragments all carry the source: all dropped
    from a blocked source, all passed from another one."""
    def fragments(src4, src6):
        first, rest = wire.udp(53, payload=b"x" * 16), b"x" * 24

        def frag6(offset, more, l4):
            return udp6(src6, nh=wire.FRAGMENT, l4=l4,
                        before=wire.ext(wire.FRAGMENT, wire.UDP, frag_field=wire.frag6(offset, more)))
        return [
            udp4(src4, frag_off=wire.IP_MF | 0, l4=first),
            udp4(src4, frag_off=wire.IP_MF | 3, l4=rest),
            udp4(src4, frag_off=6, l4=rest),
            frag6(0, True, first), frag6(3, True, rest), frag6(6, False, rest),
        ]
    lists(block=["198.51.100.0/24", "2001:db8:1::/48"])
    for frame in fragments("198.51.100.9", "2001:db8:1::9"):
        assert verdict(obj, frame)[0] == "DROP"
    for frame in fragments("192.0.2.9", "2001:db8:2::9"):
        assert verdict(obj, frame)[0] == "PASS"


# --- counters --------------------------------------------------------------------

def test_counters_exact_for_a_mix(obj, lists, fs):
    reference = lists(block=["198.51.100.0/24", "198.51.100.128/25", "2001:db8::/32"],
                      allow=["198.51.100.200/29"])
    mix = [(udp4("198.51.100.1"), 7), (udp4("198.51.100.130"), 5), (udp4("198.51.100.201"), 3),
           (udp4("192.0.2.1"), 2), (udp6("2001:db8::5"), 4), (wire.eth(wire.ETH_P_IP) + wire.ipv4(wire.UDP, ihl=3), 2),
           (wire.eth(wire.ETH_P_ARP) + wire.arp(), 1)]
    before = bpf.blocklist_totals(obj)
    tally = ref.Tally()
    for frame, times in mix:
        v, _ = obj.run(frame, repeat=times)
        decision = reference.decide(frame)
        assert VERDICTS[v] == decision.verdict
        for _ in range(times):
            tally.add(decision, len(frame))
    got = rules(fs)
    assert nonzero(got) == tally.rules
    totals = fs.stats()
    for name in TOTALS:
        want = tally.totals.get(name, {"packets": 0, "bytes": 0})
        assert totals[name] == {"packets": before[name]["packets"] + want["packets"],
                                "bytes": before[name]["bytes"] + want["bytes"]}, name
    assert totals == bpf.blocklist_totals(obj)


def test_counters_are_per_cpu_and_summed(obj, lists, fs):
    """Frames run on CPU 0 and on CPU 1 land in the two CPUs' slots of the
    same prefix; xdp-block adds them up."""
    if num_possible_cpus() < 2 or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs")
    lists(block=["203.0.113.0/24"])
    frame = udp4("203.0.113.5")
    saved = os.sched_getaffinity(0)
    try:
        for cpu, times in ((0, 3), (1, 4)):
            os.sched_setaffinity(0, {cpu})
            obj.run(frame, repeat=times)
    finally:
        os.sched_setaffinity(0, saved)
    (slot_id,) = [e for e in fs.lists()["block"]]
    counters = bpf.blocklist_counters(obj)
    per_cpu = [c for c in (counters.lookup(i) for i in range(4)) if any(x["packets"] for x in c)]
    assert len(per_cpu) == 1, "one slot counts the prefix"
    assert [c["packets"] for c in per_cpu[0][:2]] == [3, 4]
    assert slot_id == {"prefix": "203.0.113.0/24", "packets": 7, "bytes": 7 * len(frame)}


def test_add_and_del_act_on_the_next_packet(obj, lists, fs):
    lists()
    frame = udp4("198.51.100.44")
    assert verdict(obj, frame)[0] == "PASS"
    assert fs.block("add", "198.51.100.44", check=True).stdout == "block: 198.51.100.44/32 added\n"
    assert verdict(obj, frame)[0] == "DROP"
    assert fs.block("add", "--allow", "198.51.100.0/24", check=True).stdout == "allow: 198.51.100.0/24 added\n"
    assert verdict(obj, frame)[0] == "PASS"
    assert fs.block("del", "--allow", "198.51.100.0/24", check=True).stdout == "allow: 198.51.100.0/24 deleted\n"
    assert verdict(obj, frame)[0] == "DROP"
    assert fs.block("del", "198.51.100.44", check=True).stdout == "block: 198.51.100.44/32 deleted\n"
    assert verdict(obj, frame)[0] == "PASS"


def test_load_keeps_counters_of_prefixes_in_both_lists(obj, lists, fs):
    lists(block=["198.51.100.0/24", "203.0.113.0/24"])
    keep, gone = udp4("198.51.100.1"), udp4("203.0.113.1")
    obj.run(keep, repeat=5)
    obj.run(gone, repeat=2)
    res = fs.block("load", "-", input="198.51.100.0/24\n192.0.2.0/24\n", check=True)
    assert res.stdout == "block: changed (2 prefixes: 1 added, 1 deleted, 1 kept)\n"
    got = rules(fs)
    assert got == {("block", ipaddress.ip_network("198.51.100.0/24")): {"packets": 5, "bytes": 5 * len(keep)},
                   ("block", ipaddress.ip_network("192.0.2.0/24")): {"packets": 0, "bytes": 0}}
    # The new prefix took the slot the deleted one had: it starts at zero
    # and counts its own frames only.
    new = udp4("192.0.2.1")
    obj.run(new, repeat=3)
    assert rules(fs)[("block", ipaddress.ip_network("192.0.2.0/24"))] == {"packets": 3, "bytes": 3 * len(new)}
    assert verdict(obj, gone)[0] == "PASS"


def test_identical_load_is_not_swapped(obj, lists, fs):
    lists(block=["198.51.100.0/24", "2001:db8::/32"])
    obj.run(udp4("198.51.100.1"), repeat=2)
    before_id, before = fs.slot_map_id("ipxdp_block"), rules(fs)
    res = fs.block("load", "-", input="# the same, other order\n2001:db8::/32\n\n198.51.100.0/24\n", check=True)
    assert res.stdout == "block: unchanged (2 prefixes)\n"
    assert fs.slot_map_id("ipxdp_block") == before_id
    assert rules(fs) == before
    res = fs.block("load", "-", input="2001:db8::/32\n", check=True)
    assert res.stdout.startswith("block: changed ")
    assert fs.slot_map_id("ipxdp_block") != before_id


def test_flush_empties_a_list_atomically(obj, lists, fs):
    lists(block=["198.51.100.0/24"], allow=["198.51.100.7"])
    before = fs.slot_map_id("ipxdp_block")
    assert fs.block("flush", check=True).stdout == "block: changed (1 prefix deleted)\n"
    assert fs.slot_map_id("ipxdp_block") != before
    assert fs.block("flush", check=True).stdout == "block: unchanged (empty)\n"
    assert fs.lists() == {"block": [], "allow": [{"prefix": "198.51.100.7/32", "packets": 0, "bytes": 0}]}
    assert verdict(obj, udp4("198.51.100.1"))[0] == "PASS"


def test_capacities_match_the_build(obj, fs):
    """The pinned maps have the sizes build/blocklist.config records."""
    config = project.blocklist_config()
    info = fs.map_info("pinned", fs.globals / "ipxdp_counters")
    assert info["max_entries"] == config["BLOCKLIST_COUNTERS"]
    inner = fs.map_info("id", fs.slot_map_id("ipxdp_block"))
    assert (inner["type"], inner["bytes_key"], inner["bytes_value"], inner["flags"], inner["max_entries"]) == \
        ("lpm_trie", 24, 4, 1, config["BLOCKLIST_MAX"])
    table = fs.map_info("id", fs.slot_map_id("ipxdp_v4"))
    assert (table["type"], table["bytes_key"], table["bytes_value"], table["flags"], table["max_entries"]) == \
        ("array", 4, 64, 0, (1 << 20) + 16 + 128 + config["BLOCKLIST_V4_GROUPS"])


def _sweep(obj, fs, reference, first, last):
    """Every IPv4 address from @first to @last as a source, once: verdicts
    and the per-prefix counters as @reference says."""
    before = rules(fs)
    tally = ref.Tally()
    for a in range(int(ipaddress.ip_address(first)), int(ipaddress.ip_address(last)) + 1):
        frame = udp4(str(ipaddress.IPv4Address(a)))
        decision = reference.decide(frame)
        assert verdict(obj, frame)[0] == decision.verdict, (ipaddress.IPv4Address(a), decision)
        tally.add(decision, len(frame))
    moved = {k: {f: v[f] - before.get(k, {}).get(f, 0) for f in v} for k, v in rules(fs).items()}
    assert nonzero(moved) == tally.rules


def _ranges(reference, net):
    """How many runs of one deciding entry the addresses of @net make."""
    runs, last = 0, object()
    for a in ipaddress.ip_network(net):
        rule = reference.decide(udp4(str(a))).rule
        runs, last = runs + (rule != last), rule
    return runs


def test_ipv4_table_a_crowded_slash24(obj, lists, fs):
    """A /24 with more ranges than one group block holds (16) is split into
    16 blocks of 16 addresses; nested allow and block prefixes inside it
    and around it.  Every address of it and of its neighbours."""
    r = random.Random(20261201)
    block = {"203.0.112.0/20", "203.0.113.128/25", "203.0.113.0/32", "203.0.113.255/32"}
    block |= {f"203.0.113.{r.randrange(256)}/32" for _ in range(25)}
    block |= {f"203.0.113.{4 * r.randrange(64)}/30" for _ in range(6)}
    allow = {"203.0.113.64/27", "203.0.113.200/29", f"203.0.113.{r.randrange(256)}/32", "203.0.114.0/24"}
    reference = lists(block=sorted(block), allow=sorted(allow))
    assert _ranges(reference, "203.0.113.0/24") > 16
    _sweep(obj, fs, reference, "203.0.112.250", "203.0.114.5")


def test_ipv4_table_short_prefixes(obj, lists, fs):
    """Prefixes of /0 to /8 live in the /8 slots, /9 to /24 in the /24
    slots, longer ones in groups: an allow /8 inside a block /0 wins over
    block prefixes of every length inside it, and the longest allow wins."""
    reference = lists(block=["0.0.0.0/0", "10.0.0.0/9", "10.1.0.0/24", "10.1.1.1/32", "14.0.0.0/7"],
                      allow=["10.0.0.0/8", "10.1.1.0/28", "12.0.0.0/6", "10.1.1.0/25"])
    for first, last in (("9.255.255.250", "10.0.0.5"), ("10.0.255.250", "10.1.1.20"),
                        ("10.1.1.120", "10.1.1.130"), ("10.127.255.254", "10.128.0.1"),
                        ("11.255.255.254", "12.0.0.1"), ("13.255.255.255", "14.0.0.1"),
                        ("15.255.255.255", "16.0.0.1"), ("255.255.255.250", "255.255.255.255"),
                        ("0.0.0.0", "0.0.0.3")):
        _sweep(obj, fs, reference, first, last)


def test_every_change_swaps_in_a_new_ipv4_table(obj, lists, fs):
    """The table in use is never written: add, del, load and flush each
    build one and swap it in (one update, like a list)."""
    lists()
    seen = {fs.slot_map_id("ipxdp_v4")}
    for args, src, want in ((["add", "198.51.100.0/24"], "198.51.100.9", "DROP"),
                            (["add", "--allow", "198.51.100.9"], "198.51.100.9", "PASS"),
                            (["del", "--allow", "198.51.100.9"], "198.51.100.9", "DROP"),
                            (["flush"], "198.51.100.9", "PASS")):
        fs.block(*args, check=True)
        table = fs.slot_map_id("ipxdp_v4")
        assert table not in seen, args
        seen.add(table)
        assert verdict(obj, udp4(src))[0] == want, args
    fs.block("add", "2001:db8::/32", check=True)  # IPv6 only: the table is built again all the same
    assert fs.slot_map_id("ipxdp_v4") not in seen
