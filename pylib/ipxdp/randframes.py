# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Seeded random frames aimed at the parser, as plain bytes.

frame(seed, index, tx_port) is a pure function: the same arguments always
give the same frame, so any disagreement can be replayed from the numbers.
The frames are built (with wire.py) to reach every rule: 0-3 VLAN tags,
IPv4 with IHL 0-15, option bytes and fragment offsets, IPv6 chains of 0-8
extension headers of every kind and length, TCP to the bounce port,
truncation at any byte, and random byte flips on top.

with_source(frame, address) gives an IP frame another source address (the
blocklist's differential test draws sources from its lists).
"""

import random

from . import wire

L4_PROTOS = (6, 6, 6, 6, 6, 17, 17, 17, 1, 58, 47, 4, 41, 132, 59)


def _pick(r, weighted):
    """weighted: [(weight, value)]"""
    x = r.random() * sum(w for w, _ in weighted)
    for w, v in weighted:
        x -= w
        if x < 0:
            return v
    return weighted[-1][1]


def _l4(r, proto, tx_port):
    if proto == wire.TCP:
        dport = tx_port if r.random() < 0.5 else r.randrange(65536)
        doff, flags = r.choice((5, 5, 5, 0, 15)), r.randrange(512)
        sport, seq, ack, window = r.randrange(65536), r.getrandbits(32), r.getrandbits(32), r.randrange(65536)
        hdr = wire.tcp(dport, sport, flags=flags, seq=seq, ack=ack, doff=doff, window=window)
    elif proto == wire.UDP:
        sport = r.randrange(65536)
        hdr = wire.udp(tx_port if r.random() < 0.3 else 53, sport)
    else:
        hdr = b""
    return hdr + r.randbytes(_pick(r, [(6, 0), (3, r.randrange(1, 64)), (1, r.randrange(64, 1400))]))


def _ipv4(r, tx_port):
    ihl = _pick(r, [(55, 5), (35, r.randrange(6, 16)), (10, r.randrange(0, 5))])
    version = 4 if r.random() < 0.92 else r.randrange(16)
    proto = r.choice(L4_PROTOS) if r.random() < 0.9 else r.randrange(256)
    frag_off = _pick(r, [(65, 0), (20, r.randrange(1, 8192)), (15, wire.IP_MF)])
    frag_off |= r.choice((0, wire.IP_DF, wire.IP_RF)) if r.random() < 0.2 else 0
    opts = r.randbytes(max(ihl - 5, 0) * 4)
    total_length, ident = r.randrange(65536), r.randrange(65536)
    return wire.ipv4(proto, _l4(r, proto, tx_port), opts, ihl=ihl, version=version,
                     frag_off=frag_off, total_length=total_length, ident=ident)


def _ext(r, kind, nh):
    if kind == wire.FRAGMENT:
        offset = _pick(r, [(60, 0), (40, r.randrange(1, 8192))])
        field = (offset << 3) | r.randrange(8)
        return wire.ext(kind, nh, frag_field=field, fill=r.randbytes(4))
    hdrlen = _pick(r, [(70, r.randrange(0, 4)), (25, r.randrange(4, 16)), (5, r.randrange(16, 256))])
    return wire.ext(kind, nh, hdrlen, fill=r.randbytes(wire.ext_len(kind, hdrlen) - 2))


def _ipv6(r, tx_port):
    nexts = _pick(r, [(30, 0), (30, r.randrange(1, 4)), (25, r.randrange(4, 7)), (15, r.randrange(7, 9))])
    kinds = [r.choice(wire.IPV6_EXT) for _ in range(nexts)]
    proto = r.choice(L4_PROTOS) if r.random() < 0.9 else r.randrange(256)
    chain = b""
    for i, kind in enumerate(kinds):
        chain += _ext(r, kind, kinds[i + 1] if i + 1 < len(kinds) else proto)
    version = 6 if r.random() < 0.95 else r.randrange(16)
    return wire.ipv6(kinds[0] if kinds else proto, chain + _l4(r, proto, tx_port), version=version)


def frame(seed, index, tx_port):
    """The index-th frame of the given seed: 14 to 1514 bytes."""
    r = random.Random((seed << 32) ^ index)
    tags = [(r.choice(wire.VLAN_TPIDS), r.randrange(65536))
            for _ in range(_pick(r, [(40, 0), (27, 1), (27, 2), (6, 3)]))]
    l3 = _pick(r, [(45, "ipv4"), (45, "ipv6"), (10, "other")])
    if l3 == "ipv4":
        out = bytearray(wire.eth(wire.ETH_P_IP, tags) + _ipv4(r, tx_port))
    elif l3 == "ipv6":
        out = bytearray(wire.eth(wire.ETH_P_IPV6, tags) + _ipv6(r, tx_port))
    else:
        ethertype = r.choice((wire.ETH_P_ARP, wire.ETH_P_LLDP, wire.ETH_P_IP, wire.ETH_P_IPV6,
                              r.randrange(65536)))
        out = bytearray(wire.eth(ethertype, tags) + r.randbytes(r.randrange(0, 64)))
    if r.random() < 0.2:  # truncate anywhere from 14 bytes up
        del out[r.randrange(14, max(len(out), 15)):]
    if r.random() < 0.25:  # flip a few bytes, mostly in the headers
        for _ in range(r.randrange(1, 5)):
            if len(out) > 12:
                out[r.randrange(12, min(len(out), 160))] ^= 1 << r.randrange(8)
    if len(out) < 14:
        out += bytes(14 - len(out))
    return bytes(out[:wire.MAX_FRAME])


def with_source(frame, address):
    """@frame (IPv4 or IPv6 behind up to two VLAN tags, as the parser
    takes it) with its source address replaced by @address (an
    ipaddress address of the frame's family); nothing else changes, not
    even the IPv4 header checksum, which no program reads."""
    ethertype, off = int.from_bytes(frame[12:14], "big"), 14
    while ethertype in wire.VLAN_TPIDS:
        ethertype, off = int.from_bytes(frame[off + 2:off + 4], "big"), off + 4
    packed = address.packed
    if ethertype == wire.ETH_P_IP and len(packed) == 4:
        start = off + 12
    elif ethertype == wire.ETH_P_IPV6 and len(packed) == 16:
        start = off + 8
    else:
        raise ValueError(f"not an IPv{address.version} frame: {frame[:off + 2].hex()}")
    return frame[:start] + packed + frame[start + len(packed):]
