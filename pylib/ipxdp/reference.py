# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""The parsing rules and the three programs, restated in plain Python.

This is the specification the BPF objects are judged by, so it stands
alone: it shares no code with include/parse.h or any other C file, reads
nothing the build produced, and imports nothing from this package (not the
frame builders of wire.py, nor the constants project.py reads from the C
headers).  Each rule is written out here again, from the documents, and
the tests check the objects, the hand-written frame table and this module
against each other.  Keep it that way: a helper shared with the builders
or the C code would let one mistake agree with itself.

It reads the frame as bytes and says for every frame what each program
must do with it.
"""

import struct

ETH_P_IP, ETH_P_IPV6 = 0x0800, 0x86DD
VLAN_TPIDS = (0x8100, 0x88A8)  # 802.1Q, 802.1ad
VLAN_MAX_DEPTH = 2
IPV6_EXT_MAX_CHAIN = 6
HOPOPTS, ROUTING, FRAGMENT, AH, DSTOPTS = 0, 43, 44, 51, 60
IPV6_EXT = (HOPOPTS, ROUTING, FRAGMENT, AH, DSTOPTS)
TCP = 6

KEY_NON_IP = 256
KEY_MALFORMED = 257

DROP, PASS, TX = "DROP", "PASS", "TX"


class Parsed:
    """key: IP protocol 0-255, KEY_NON_IP or KEY_MALFORMED.
    l4: offset of the transport header, or None (non-first fragment,
    not IP, malformed)."""

    def __init__(self, key, l4=None):
        self.key, self.l4 = key, l4

    def __repr__(self):
        return f"Parsed(key={self.key}, l4={self.l4})"


MALFORMED = Parsed(KEY_MALFORMED)


def _u16(frame, off):
    return struct.unpack_from("!H", frame, off)[0]


def parse(frame):
    n = len(frame)
    if n < 14:
        return MALFORMED
    ethertype, off = _u16(frame, 12), 14
    for _ in range(VLAN_MAX_DEPTH):
        if ethertype not in VLAN_TPIDS:
            break
        if off + 4 > n:
            return MALFORMED
        ethertype, off = _u16(frame, off + 2), off + 4
    if ethertype in VLAN_TPIDS:
        return MALFORMED  # a third tag
    if ethertype == ETH_P_IP:
        return _parse_ipv4(frame, off)
    if ethertype == ETH_P_IPV6:
        return _parse_ipv6(frame, off)
    return Parsed(KEY_NON_IP)


def _parse_ipv4(frame, off):
    if off + 20 > len(frame):
        return MALFORMED
    version, ihl = frame[off] >> 4, frame[off] & 0xF
    if version != 4 or ihl < 5 or off + ihl * 4 > len(frame):
        return MALFORMED
    proto = frame[off + 9]
    frag_offset = _u16(frame, off + 6) & 0x1FFF
    return Parsed(proto, None if frag_offset else off + ihl * 4)


def _parse_ipv6(frame, off):
    n = len(frame)
    if off + 40 > n or frame[off] >> 4 != 6:
        return MALFORMED
    nexthdr, off = frame[off + 6], off + 40
    for _ in range(IPV6_EXT_MAX_CHAIN):
        if nexthdr not in IPV6_EXT:
            return Parsed(nexthdr, off)
        if nexthdr == FRAGMENT:
            if off + 8 > n:
                return MALFORMED
            nexthdr, frag_offset = frame[off], _u16(frame, off + 2) >> 3
            off += 8
            if frag_offset:
                return Parsed(nexthdr, None)
            continue
        if off + 2 > n:
            return MALFORMED
        hdrlen = frame[off + 1]
        length = (hdrlen + 2) * 4 if nexthdr == AH else (hdrlen + 1) * 8
        if off + length > n:
            return MALFORMED
        nexthdr, off = frame[off], off + length
    if nexthdr in IPV6_EXT:
        return MALFORMED  # a seventh extension header
    return Parsed(nexthdr, off)


def drop_tcp(frame):
    """-> (verdict, output frame)"""
    p = parse(frame)
    return (DROP if p.key in (TCP, KEY_MALFORMED) else PASS), bytes(frame)


def port_9090(frame, tx_port, tx_mac):
    """-> (verdict, output frame); tx_mac is 6 bytes."""
    frame = bytes(frame)
    p = parse(frame)
    if p.key == KEY_MALFORMED:
        return DROP, frame
    if p.key != TCP:
        return PASS, frame
    if p.l4 is None or p.l4 + 20 > len(frame) or _u16(frame, p.l4 + 2) != tx_port:
        return DROP, frame
    return TX, tx_mac + frame[6:]


def count(frame):
    """-> (key, bytes) the frame adds to count's counters; it always passes."""
    return parse(frame).key, len(frame)
