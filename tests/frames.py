# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""A hand-written table of frames, one per parsing rule, with what each is.

Every case says, by hand, the count key the frame belongs to (IP protocol,
NON_IP or MALFORMED) and whether port-9090 must bounce it.  From those two
facts the tests derive what each program must do; the table does not consult
the reference classifier, so it checks the reference as well as the objects.
The frames are put together with ipxdp.wire, the one set of frame builders.
"""

from ipxdp import project
from ipxdp.wire import (AH, DSTOPTS, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, ETH_P_LLDP, FRAGMENT,
                        GRE, HOPOPTS, ICMP, ICMPV6, IP_MF, IPIP, IPV6, MAX_FRAME, MIN_FRAME,
                        NONXT, ROUTING, TCP, UDP, arp, chain, dot1ad, dot1q, eth, ext,
                        frag6, gre, icmp_echo, ipv4, ipv6, mac, tcp, udp)

NON_IP, MALFORMED = project.KEY_NON_IP, project.KEY_MALFORMED


class Case:
    def __init__(self, name, frame, key, bounce=False):
        self.name = name
        self.frame = bytes(frame)
        self.key = key
        self.bounce = bounce
        assert MIN_FRAME <= len(self.frame) <= MAX_FRAME, name


def v4(proto, payload=b"", tags=(), **kw):
    """Ethernet (behind @tags) / IPv4 / @payload."""
    return eth(ETH_P_IP, tags) + ipv4(proto, payload, **kw)


def v6(nh, payload=b"", tags=(), **kw):
    """Ethernet (behind @tags) / IPv6 / @payload."""
    return eth(ETH_P_IPV6, tags) + ipv6(nh, payload, **kw)


def with_chain(kinds, final, l4, frag_offset=0, tags=()):
    """Ethernet / IPv6 / extension headers of @kinds, 16 bytes each but for
    the fragment header (every fragment header at @frag_offset, M set) /
    @l4, protocol @final."""
    lens = [2 if k == AH else 1 for k in kinds]  # 16 bytes in either unit
    first = kinds[0] if kinds else final
    return v6(first, chain(kinds, final, lens, frag6(frag_offset, more=True)) + l4, tags)


def cases(tx_port):
    """The table.  tx_port is the port port-9090 was built for."""
    other = 80 if tx_port != 80 else 81
    payload = b"x" * 8
    t = []
    add = lambda *a, **kw: t.append(Case(*a, **kw))  # noqa: E731

    # The chapter's three tests.
    add("chapter-tcp", v4(TCP, tcp(80, 20)), 6)
    add("chapter-udp", v4(UDP, udp(53, 53)), 17)
    add("chapter-tcp-9090", v4(TCP, tcp(tx_port, 20)), 6, True)

    # Plain IPv4 / IPv6.
    add("ipv4-tcp", v4(TCP, tcp(other, payload=payload)), 6)
    add("ipv4-tcp-txport", v4(TCP, tcp(tx_port, payload=payload)), 6, True)
    add("ipv4-tcp-txport-as-source", v4(TCP, tcp(other, tx_port)), 6)
    add("ipv4-udp-txport", v4(UDP, udp(tx_port, payload=payload)), 17)
    add("ipv4-icmp", v4(ICMP, icmp_echo()), 1)
    add("ipv6-tcp", v6(TCP, tcp(other)), 6)
    add("ipv6-tcp-txport", v6(TCP, tcp(tx_port)), 6, True)
    add("ipv6-udp", v6(UDP, udp(53)), 17)
    add("ipv6-icmp", v6(ICMPV6, icmp_echo(v6=True)), 58)
    add("ipv6-no-next-header", v6(NONXT), 59)

    # Not IP.
    add("arp", eth(ETH_P_ARP) + arp(), NON_IP)
    add("lldp", eth(ETH_P_LLDP, dst=mac("01:80:c2:00:00:0e")) + b"\x02\x07" + bytes(40), NON_IP)
    add("802.3-length-field", eth(46) + b"\xaa" * 46, NON_IP)
    add("ethernet-header-only-ipv4-type", eth(ETH_P_IP), MALFORMED)
    add("ethernet-header-only-arp-type", eth(ETH_P_ARP), NON_IP)

    # VLAN tags: up to two, 802.1Q and 802.1ad in any combination.
    q10 = [dot1q(10)]
    add("vlan-ipv4-tcp", v4(TCP, tcp(other), q10), 6)
    add("vlan-ipv4-tcp-txport", v4(TCP, tcp(tx_port), q10), 6, True)
    add("vlan-ipv4-udp", v4(UDP, udp(53), q10), 17)
    add("vlan-arp", eth(ETH_P_ARP, q10) + arp(), NON_IP)
    add("qinq-ad-q-ipv6-tcp-txport", v6(TCP, tcp(tx_port), [dot1ad(100), dot1q(10)]), 6, True)
    add("qinq-q-q-ipv4-tcp", v4(TCP, tcp(80), [dot1q(1), dot1q(2)]), 6)
    add("qinq-ad-ad-ipv4-udp", v4(UDP, udp(53), [dot1ad(1), dot1ad(2)]), 17)
    add("qinq-q-ad-ipv6-udp", v6(UDP, udp(53), [dot1q(1), dot1ad(2)]), 17)
    add("three-tags-udp", v4(UDP, udp(53), [dot1ad(1), dot1q(2), dot1q(3)]), MALFORMED)
    add("three-tags-arp", eth(ETH_P_ARP, [dot1q(1), dot1q(2), dot1q(3)]) + arp(), MALFORMED)
    add("frame-ends-inside-tag", v4(UDP, udp(53), [dot1q(1)])[:16], MALFORMED)
    add("frame-ends-inside-second-tag", v4(UDP, udp(53), [dot1q(1), dot1q(2)])[:20], MALFORMED)

    # IPv4 header validity and options.
    opts40 = b"\x01" * 39 + b"\x00"  # 40 bytes: IHL 15
    add("ipv4-options-40-tcp-txport", v4(TCP, tcp(tx_port), options=opts40), 6, True)
    add("ipv4-options-40-tcp", v4(TCP, tcp(other), options=opts40), 6)
    add("ipv4-options-4-udp", v4(UDP, udp(53), options=b"\x01\x01\x01\x00"), 17)
    # With IHL ignored, the options would be read as the TCP header: put
    # the bounce port where a 20-byte-header reader would look.
    add("ipv4-options-hide-port", v4(TCP, tcp(other), options=b"\x01\x01" + tx_port.to_bytes(2, "big")), 6)
    add("ipv4-ihl-4", v4(UDP, udp(53), ihl=4), MALFORMED)
    add("ipv4-ihl-0", v4(TCP, tcp(80), ihl=0), MALFORMED)
    add("ipv4-version-6-in-ipv4-frame", v4(UDP, udp(53), version=6), MALFORMED)
    add("ipv6-version-4-in-ipv6-frame", v6(UDP, udp(53), version=4), MALFORMED)
    add("ipv4-options-cut-short", v4(UDP, udp(53), options=opts40)[:14 + 40], MALFORMED)
    add("ipv4-total-length-ignored", v4(TCP, tcp(tx_port), total_length=20), 6, True)

    # IPv4 fragments: only offset 0 carries the transport header.
    fake_tcp = tcp(tx_port, 1)  # payload that looks like a TCP header
    add("ipv4-first-fragment-tcp-txport", v4(TCP, tcp(tx_port, payload=payload), frag_off=IP_MF), 6, True)
    add("ipv4-later-fragment-tcp", v4(TCP, fake_tcp, frag_off=IP_MF | 185), 6)
    add("ipv4-last-fragment-tcp", v4(TCP, fake_tcp, frag_off=370), 6)
    add("ipv4-later-fragment-udp", v4(UDP, b"u" * 16, frag_off=185), 17)
    add("ipv4-later-fragment-no-payload", v4(TCP, frag_off=1), 6)

    # IPv6 fragments.
    add("ipv6-first-fragment-tcp-txport", with_chain([FRAGMENT], TCP, tcp(tx_port)), 6, True)
    add("ipv6-later-fragment-tcp", v6(FRAGMENT, ext(FRAGMENT, TCP, frag_field=frag6(100, True)) + fake_tcp), 6)
    add("ipv6-later-fragment-udp", v6(FRAGMENT, ext(FRAGMENT, UDP, frag_field=frag6(100)) + b"u" * 16), 17)
    add("ipv6-later-fragment-then-ext-type",
        v6(FRAGMENT, ext(FRAGMENT, DSTOPTS, frag_field=frag6(3)) + bytes(16)), 60)

    # IPv6 extension-header chains.
    add("ipv6-hbh-tcp-txport", with_chain([HOPOPTS], TCP, tcp(tx_port)), 6, True)
    add("ipv6-dst-tcp-txport", with_chain([DSTOPTS], TCP, tcp(tx_port)), 6, True)
    add("ipv6-ah-tcp-txport", with_chain([AH], TCP, tcp(tx_port)), 6, True)
    # Read in 8-byte units, AH would end 8 bytes later, where ack holds the port.
    add("ipv6-ah-hides-port", with_chain([AH], TCP, tcp(other, ack=tx_port)), 6)
    add("ipv6-chain-3-udp", with_chain([HOPOPTS, ROUTING, DSTOPTS], UDP, udp(53)), 17)
    six = [HOPOPTS, DSTOPTS, ROUTING, AH, FRAGMENT, DSTOPTS]
    add("ipv6-chain-6-tcp-txport", with_chain(six, TCP, tcp(tx_port)), 6, True)
    add("ipv6-chain-6-tcp", with_chain(six, TCP, tcp(other)), 6)
    add("ipv6-chain-6-udp", with_chain([DSTOPTS] * 6, UDP, udp(53)), 17)
    add("ipv6-chain-7-udp", with_chain([DSTOPTS] * 7, UDP, udp(53)), MALFORMED)
    add("ipv6-chain-7-tcp", with_chain(six + [DSTOPTS], TCP, tcp(80)), MALFORMED)
    add("ipv6-chain-6th-is-later-fragment", with_chain([DSTOPTS] * 5 + [FRAGMENT], TCP, fake_tcp, 9), 6)
    add("ipv6-chain-7th-is-later-fragment", with_chain([DSTOPTS] * 6 + [FRAGMENT], TCP, fake_tcp, 9),
        MALFORMED)
    add("ipv6-ext-cut-short", with_chain([HOPOPTS, DSTOPTS], UDP, udp(53))[:14 + 40 + 8 + 4], MALFORMED)
    add("ipv6-ext-len-past-end", v6(DSTOPTS, ext(DSTOPTS, UDP, 200, fill=b"\x01\x04" + bytes(4)) + udp(53)),
        MALFORMED)
    add("ipv6-later-fragment-header-cut",
        v6(FRAGMENT, ext(FRAGMENT, TCP, frag_field=frag6(5)))[:14 + 40 + 6], MALFORMED)

    # Tunnels: the outer protocol decides.
    add("gre-carrying-tcp", v4(GRE, gre(ETH_P_IP) + ipv4(TCP, tcp(tx_port))), 47)
    add("ipip-carrying-tcp", v4(IPIP, ipv4(TCP, tcp(tx_port))), 4)
    add("6in4-carrying-tcp", v4(IPV6, ipv6(TCP, tcp(tx_port))), 41)
    add("ipv6-in-ipv6-tcp", v6(IPV6, ipv6(TCP, tcp(tx_port))), 41)

    # Transport header presence (only port-9090 reads it).
    add("tcp-doff-bogus-still-bounces", v4(TCP, tcp(tx_port, doff=2)), 6, True)
    add("ipv4-tcp-cut-19-bytes", v4(TCP, tcp(tx_port))[:14 + 20 + 19], 6)
    add("ipv4-tcp-header-exactly-20", v4(TCP, tcp(tx_port))[:14 + 20 + 20], 6, True)
    add("ipv6-tcp-cut-3-bytes", v6(TCP, tcp(tx_port))[:14 + 40 + 3], 6)
    add("ipv6-tcp-no-l4-bytes", v6(TCP, tcp(tx_port))[:14 + 40], 6)

    # Padding and trailers are normal.
    add("ipv4-udp-padded-to-60", v4(UDP, udp(53)) + bytes(18), 17)
    add("ipv4-tcp-txport-with-trailer", v4(TCP, tcp(tx_port)) + b"\xfe" * 20, 6, True)

    # Sizes.
    add("max-size-ipv6-tcp-txport", v6(TCP, tcp(tx_port, payload=b"z" * (MAX_FRAME - 14 - 40 - 20))),
        6, True)
    return t


def truncation_cases(tx_port):
    """Each base frame cut at every byte from 14 up: until the IP headers are
    complete the frame is malformed, after that it is TCP (bounced only once
    the 20-byte TCP header is complete)."""
    bases = [
        ("vlan-ipv4-opts", v4(TCP, tcp(tx_port), [dot1q(5)], options=b"\x01" * 8), 14 + 4 + 28),
        ("qinq-ipv6-chain", with_chain([HOPOPTS, AH, FRAGMENT], TCP, tcp(tx_port), tags=[dot1ad(1), dot1q(2)]),
         14 + 8 + 40 + 16 + 16 + 8),
    ]
    out = []
    for name, full, l3_end in bases:
        for cut in range(MIN_FRAME, len(full) + 1):
            frame = full[:cut]
            if cut < l3_end:
                out.append(Case(f"{name}-cut-{cut}", frame, MALFORMED))
            else:
                out.append(Case(f"{name}-cut-{cut}", frame, TCP, bounce=cut >= l3_end + 20))
    return out
