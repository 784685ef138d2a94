# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Systematic frames aimed at the parser, as plain bytes (built with wire.py).

randframes.py draws frames at random; this module walks the parser's
edges on purpose, so that `make fuzz` reaches each of them every run, not
just with high probability:

  vlan      every stack of 0-3 tags, each tag 802.1Q or 802.1ad, in front
            of IPv4, IPv6, ARP and a truncated inner header
  ipv4      version 0-15, IHL 0-15 with zero, NOP and random option bytes,
            every kind of fragment field (offset 0, 1, max; MF, DF, the
            reserved bit), to TCP on and off the bounce port, UDP, ICMP
  ipv6-one  one extension header of every kind with every length field
            0-255, and the fragment header with every flag/offset shape
  ipv6-chain chains of 0-8 extension headers: every chain of up to 3, every
            single-kind chain of 4-8, and seeded random chains of 4-8
  truncate  well-formed frames with every kind of header (every VLAN stack
            above, IPv4 with IHL 5-15, IPv6 chains of up to 2 headers, and
            longer ones), cut at every byte from 14

sweep(seed, tx_port) returns the list of (family, frame); the same
arguments always give the same list, so a frame is named by seed and index.
Every frame is 14-1514 bytes.
"""

import itertools
import random

from . import wire
from .wire import AH, DSTOPTS, FRAGMENT, HOPOPTS, ICMP, ICMPV6, NONXT, ROUTING, TCP, UDP
from .wire import chain, ext, ipv6
from .wire import ETH_P_8021AD as AD, ETH_P_8021Q as Q, ETH_P_ARP as ARP, ETH_P_IP as IP4, \
    ETH_P_IPV6 as IP6

EXT_KINDS = wire.IPV6_EXT
MAX_FRAME = wire.MAX_FRAME


def eth(tags, ethertype):
    """Ethernet header with @tags (a sequence of TPIDs, outermost first)."""
    return wire.eth(ethertype, [(tpid, 100 + i) for i, tpid in enumerate(tags)])


def l4(proto, dport):
    if proto == TCP:
        return wire.tcp(dport, payload=b"tcp!")
    if proto == UDP:
        return wire.udp(dport, payload=b"udp!")
    if proto in (ICMP, ICMPV6):
        return wire.icmp_echo(v6=proto == ICMPV6)
    return b"data"


def ipv4(proto, payload, ihl=5, version=4, frag_off=0, options=None):
    opts = options if options is not None else bytes(max(ihl - 5, 0) * 4)
    return wire.ipv4(proto, payload, opts, ihl=ihl, version=version, frag_off=frag_off)


def _cap(frame):
    return frame[:MAX_FRAME]


def vlan_frames(tx_port):
    for n in range(4):
        for tags in itertools.product(wire.VLAN_TPIDS, repeat=n):
            yield eth(tags, IP4) + ipv4(TCP, l4(TCP, tx_port))
            yield eth(tags, IP4) + ipv4(UDP, l4(UDP, tx_port))
            yield eth(tags, IP6) + ipv6(TCP, l4(TCP, tx_port))
            yield eth(tags, IP6) + ipv6(ICMPV6, l4(ICMPV6, 0))
            yield eth(tags, ARP) + bytes(28)
            yield eth(tags, Q)  # a tag announced, then nothing


FRAG_FIELDS4 = (0, 0x2000, 0x0001, 0x1FFF, 0x2001, 0x4000, 0x8000, 0x3FFF, 0xFFFF, 0xA000)
FRAG_FIELDS6 = (0, 1, 2, 4, 6, 8, 9, 0xFFF8, 0xFFF9, 0x0010)


def ipv4_frames(r, tx_port):
    for version in range(16):
        yield eth((), IP4) + ipv4(TCP, l4(TCP, tx_port), version=version)
    for ihl in range(16):
        n = max(ihl - 5, 0) * 4
        for opts in (bytes(n), b"\x01" * n, r.randbytes(n)):
            for frag in FRAG_FIELDS4:
                for proto, dport in ((TCP, tx_port), (TCP, tx_port + 1), (UDP, tx_port), (ICMP, 0)):
                    yield eth((), IP4) + ipv4(proto, l4(proto, dport), ihl=ihl,
                                                 frag_off=frag, options=opts)


def ipv6_one_frames(tx_port):
    for kind in (HOPOPTS, ROUTING, AH, DSTOPTS):
        for hdrlen in range(256):
            yield _cap(eth((), IP6) + ipv6(kind, ext(kind, TCP, hdrlen) + l4(TCP, tx_port)))
    for field in FRAG_FIELDS6:
        for proto in (TCP, UDP, FRAGMENT, HOPOPTS):
            yield eth((), IP6) + ipv6(FRAGMENT, ext(FRAGMENT, proto, frag_field=field) + l4(proto, tx_port))


def ipv6_chain_frames(r, tx_port):
    finals = ((TCP, tx_port), (UDP, tx_port), (NONXT, 0))
    for n in range(4):
        for kinds in itertools.product(EXT_KINDS, repeat=n):
            for final, dport in finals:
                yield eth((), IP6) + ipv6(kinds[0] if kinds else final, chain(kinds, final) + l4(final, dport))
            if FRAGMENT in kinds:  # the same chain as a non-first fragment
                yield eth((), IP6) + ipv6(kinds[0], chain(kinds, TCP, frag_field=wire.frag6(1)) + l4(TCP, tx_port))
    for n in range(4, 9):
        for kind in EXT_KINDS:
            yield eth((), IP6) + ipv6(kind, chain((kind,) * n, TCP) + l4(TCP, tx_port))
        for _ in range(40):
            kinds = tuple(r.choice(EXT_KINDS) for _ in range(n))
            lens = [r.choice((0, 0, 1, 2, 7)) for _ in range(n)]
            final, dport = r.choice(finals)
            frag = r.choice(FRAG_FIELDS6)
            yield _cap(eth((), IP6) + ipv6(kinds[0], chain(kinds, final, lens, frag) + l4(final, dport)))


def truncation_bases(tx_port):
    """Well-formed frames with every kind of header, to be cut at every byte."""
    yield eth((), IP4) + ipv4(TCP, l4(TCP, tx_port))
    yield eth((Q,), IP4) + ipv4(TCP, l4(TCP, tx_port), ihl=15, options=b"\x01" * 40)
    yield eth((AD, Q), IP4) + ipv4(UDP, l4(UDP, tx_port), ihl=6, options=b"\x01" * 4)
    yield eth((Q, Q), IP6) + ipv6(TCP, l4(TCP, tx_port))
    yield eth((AD,), ARP) + bytes(28)
    yield eth((), IP6) + ipv6(HOPOPTS, chain((HOPOPTS, ROUTING, FRAGMENT, AH, DSTOPTS, DSTOPTS), TCP,
                                                (0, 1, 0, 2, 0, 1)) + l4(TCP, tx_port))
    yield eth((Q,), IP6) + ipv6(AH, chain((AH, FRAGMENT), TCP, (5, 0), wire.frag6(1)) + l4(TCP, tx_port))
    yield eth((), IP6) + ipv6(ROUTING, chain((ROUTING,) * 7, UDP) + l4(UDP, tx_port))
    yield eth((), IP4) + ipv4(TCP, l4(TCP, tx_port), frag_off=0x0001)
    yield from vlan_frames(tx_port)
    for ihl in range(5, 16):
        yield eth((), IP4) + ipv4(TCP, l4(TCP, tx_port), ihl=ihl, options=b"\x01" * (ihl - 5) * 4)
    for n in range(3):
        for kinds in itertools.product(EXT_KINDS, repeat=n):
            yield eth((), IP6) + ipv6(kinds[0] if kinds else TCP, chain(kinds, TCP, [1] * n) + l4(TCP, tx_port))


def sweep(seed, tx_port):
    """[(family, frame)], the same for the same arguments."""
    r = random.Random(seed)
    out = []
    for family, frames in (("vlan", vlan_frames(tx_port)),
                           ("ipv4", ipv4_frames(r, tx_port)),
                           ("ipv6-one", ipv6_one_frames(tx_port)),
                           ("ipv6-chain", ipv6_chain_frames(r, tx_port))):
        out += [(family, f) for f in frames]
    for base in truncation_bases(tx_port):
        out += [("truncate", base[:cut]) for cut in range(14, len(base) + 1)]
    for _, f in out:
        assert 14 <= len(f) <= MAX_FRAME, f.hex()
    return out
