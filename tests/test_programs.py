# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""The three built objects on the hand-written frame table (frames.py).

Each case is run through the very .o file that `ip` loads, with
BPF_PROG_TEST_RUN; the verdict and the exact output bytes are checked, and
for count the exact change in its per-CPU counters.
"""

import pytest
from scapy.all import IP, TCP, UDP, Ether

import frames
from ipxdp import project, reference, wire
from ipxdp.bpf import XDP_DROP, XDP_PASS, XDP_TX, verdict_name

TX_PORT, TX_MAC = project.port_9090_config()
TABLE = frames.cases(TX_PORT) + frames.truncation_cases(TX_PORT)
IDS = [c.name for c in TABLE]
KEYS = range(project.COUNT_KEYS)


# The chapter's own unit tests, as it states them (with scapy, as the
# chapter does: frames built by a second, independent hand).

def test_chapter_drop_tcp(drop_tcp):
    verdict, _ = drop_tcp.run(bytes(Ether() / IP() / TCP()))
    assert verdict == XDP_DROP


def test_chapter_pass_udp(drop_tcp):
    frame = bytes(Ether() / IP() / UDP())
    assert drop_tcp.run(frame) == (XDP_PASS, frame)


def test_chapter_tcp_9090_rewritten_and_tx(port_9090):
    given = Ether() / IP() / TCP(dport=TX_PORT)
    expected = Ether(dst=":".join(f"{b:02x}" for b in TX_MAC)) / IP() / TCP(dport=TX_PORT)
    verdict, out = port_9090.run(bytes(given))
    assert verdict_name(verdict) == "TX"
    assert out == bytes(expected)


# Every parsing rule, per program.

@pytest.mark.parametrize("case", TABLE, ids=IDS)
def test_drop_tcp(drop_tcp, case):
    verdict, out = drop_tcp.run(case.frame)
    if case.key in (6, frames.MALFORMED):
        assert verdict_name(verdict) == "DROP"
    else:
        assert verdict_name(verdict) == "PASS"
        assert out == case.frame


@pytest.mark.parametrize("case", TABLE, ids=IDS)
def test_port_9090(port_9090, case):
    verdict, out = port_9090.run(case.frame)
    if case.bounce:
        assert verdict_name(verdict) == "TX"
        assert out == TX_MAC + case.frame[6:]  # only the destination MAC changes
    elif case.key in (6, frames.MALFORMED):
        assert verdict_name(verdict) == "DROP"
    else:
        assert verdict_name(verdict) == "PASS"
        assert out == case.frame


@pytest.mark.parametrize("case", TABLE, ids=IDS)
def test_count(count_obj, counters, case):
    before = {k: counters.total(k) for k in KEYS}
    verdict, out = count_obj.run(case.frame)
    assert verdict == XDP_PASS and out == case.frame
    for key in KEYS:
        got = counters.total(key)
        want = dict(before[key])
        if key == case.key:
            want = {"packets": want["packets"] + 1, "bytes": want["bytes"] + len(case.frame)}
        assert got == want, f"key {key}"


def test_count_totals_exact(count_obj, counters):
    """A mix of frames, each sent a known number of times."""
    mix = [(wire.tcp4(80), 7), (wire.udp4(53), 5),
           (frames.v6(wire.UDP, wire.udp(53)), 3),
           (wire.eth(wire.ETH_P_ARP, [wire.dot1q(1)]) + wire.arp(), 2),
           (frames.v4(wire.TCP, ihl=3), 4)]
    for frame, times in mix:
        count_obj.run(frame, repeat=times)
    assert counters.total(6) == {"packets": 7, "bytes": 7 * 54}
    assert counters.total(17) == {"packets": 5 + 3, "bytes": 5 * 42 + 3 * 62}
    assert counters.total(project.KEY_NON_IP) == {"packets": 2, "bytes": 2 * 46}
    assert counters.total(project.KEY_MALFORMED) == {"packets": 4, "bytes": 4 * 34}
    assert sum(counters.total(k)["packets"] for k in KEYS) == 21


# The table itself is checked against the reference classifier, so the
# differential test below stands on a verified specification.

@pytest.mark.parametrize("case", TABLE, ids=IDS)
def test_reference_agrees_with_table(case):
    parsed = reference.parse(case.frame)
    assert parsed.key == case.key
    verdict, _ = reference.port_9090(case.frame, TX_PORT, TX_MAC)
    assert (verdict == reference.TX) == case.bounce


def test_never_aborted_on_short_frames(drop_tcp, port_9090, count_obj):
    """Every length from 14 bytes of a few frame shapes: never XDP_ABORTED."""
    for base in (frames.cases(TX_PORT)[4].frame, TABLE[-1].frame):
        for cut in range(14, min(len(base), 200)):
            for obj in (drop_tcp, port_9090, count_obj):
                verdict, _ = obj.run(base[:cut])
                assert verdict in (XDP_DROP, XDP_PASS, XDP_TX)
