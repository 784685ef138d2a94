# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Seeded random frames aimed at the parser, as plain bytes.

frame(seed, index) is a pure function: the same pair always gives the same
frame, so any disagreement can be replayed from the two numbers.  The frames
are built to reach every rule: 0-3 VLAN tags, IPv4 with IHL 0-15, option
bytes and fragment offsets, IPv6 chains of 0-8 extension headers of every
kind and length, TCP to the bounce port, truncation at any byte, and random
byte flips on top.
"""

import random
import struct

TPIDS = (0x8100, 0x88A8)
EXT_KINDS = (0, 43, 44, 51, 60)  # hop-by-hop, routing, fragment, AH, dest opts
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
    if proto == 6:
        dport = tx_port if r.random() < 0.5 else r.randrange(65536)
        doff_flags = (r.choice((5, 5, 5, 0, 15)) << 12) | r.randrange(512)
        hdr = struct.pack("!HHIIHHHH", r.randrange(65536), dport, r.getrandbits(32),
                          r.getrandbits(32), doff_flags, r.randrange(65536), 0, 0)
    elif proto == 17:
        hdr = struct.pack("!HHHH", r.randrange(65536), tx_port if r.random() < 0.3 else 53, 8, 0)
    else:
        hdr = b""
    return hdr + r.randbytes(_pick(r, [(6, 0), (3, r.randrange(1, 64)), (1, r.randrange(64, 1400))]))


def _ipv4(r, tx_port):
    ihl = _pick(r, [(55, 5), (35, r.randrange(6, 16)), (10, r.randrange(0, 5))])
    version = 4 if r.random() < 0.92 else r.randrange(16)
    proto = r.choice(L4_PROTOS) if r.random() < 0.9 else r.randrange(256)
    frag_off = _pick(r, [(65, 0), (20, r.randrange(1, 8192)), (15, 0x2000)])  # MF, offset 0
    frag_off |= r.choice((0, 0x4000, 0x8000)) if r.random() < 0.2 else 0
    opts = r.randbytes(max(ihl - 5, 0) * 4)
    hdr = struct.pack("!BBHHHBBH4s4s", (version << 4) | ihl, 0, r.randrange(65536),
                      r.randrange(65536), frag_off, 64, proto, 0, b"\x0a\0\0\x01", b"\x0a\0\0\x02")
    return hdr + opts + _l4(r, proto, tx_port)


def _ext(r, kind, nh):
    if kind == 44:  # fragment: 8 bytes
        offset = _pick(r, [(60, 0), (40, r.randrange(1, 8192))])
        return bytes([nh, 0]) + struct.pack("!H", (offset << 3) | r.randrange(8)) + r.randbytes(4)
    hdrlen = _pick(r, [(70, r.randrange(0, 4)), (25, r.randrange(4, 16)), (5, r.randrange(16, 256))])
    length = (hdrlen + 2) * 4 if kind == 51 else (hdrlen + 1) * 8
    return bytes([nh, hdrlen]) + r.randbytes(length - 2)


def _ipv6(r, tx_port):
    nexts = _pick(r, [(30, 0), (30, r.randrange(1, 4)), (25, r.randrange(4, 7)), (15, r.randrange(7, 9))])
    kinds = [r.choice(EXT_KINDS) for _ in range(nexts)]
    proto = r.choice(L4_PROTOS) if r.random() < 0.9 else r.randrange(256)
    chain = b""
    for i, kind in enumerate(kinds):
        chain += _ext(r, kind, kinds[i + 1] if i + 1 < len(kinds) else proto)
    version = 6 if r.random() < 0.95 else r.randrange(16)
    first = kinds[0] if kinds else proto
    hdr = struct.pack("!IHBB16s16s", version << 28, 0, first, 64,
                      b"\xfd" + b"\0" * 14 + b"\x01", b"\xfd" + b"\0" * 14 + b"\x02")
    return hdr + chain + _l4(r, proto, tx_port)


def frame(seed, index, tx_port):
    """The index-th frame of the given seed: 14 to 1514 bytes."""
    r = random.Random((seed << 32) ^ index)
    out = bytearray(b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01")
    for _ in range(_pick(r, [(40, 0), (27, 1), (27, 2), (6, 3)])):
        out += struct.pack("!HH", r.choice(TPIDS), r.randrange(65536))
    l3 = _pick(r, [(45, "ipv4"), (45, "ipv6"), (10, "other")])
    if l3 == "ipv4":
        out += struct.pack("!H", 0x0800) + _ipv4(r, tx_port)
    elif l3 == "ipv6":
        out += struct.pack("!H", 0x86DD) + _ipv6(r, tx_port)
    else:
        out += struct.pack("!H", r.choice((0x0806, 0x88CC, 0x0800, 0x86DD, r.randrange(65536))))
        out += r.randbytes(r.randrange(0, 64))
    if r.random() < 0.2:  # truncate anywhere from 14 bytes up
        del out[r.randrange(14, max(len(out), 15)):]
    if r.random() < 0.25:  # flip a few bytes, mostly in the headers
        for _ in range(r.randrange(1, 5)):
            if len(out) > 12:
                out[r.randrange(12, min(len(out), 160))] ^= 1 << r.randrange(8)
    if len(out) < 14:
        out += bytes(14 - len(out))
    return bytes(out[:1514])
