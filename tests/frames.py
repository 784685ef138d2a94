# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""A hand-written table of frames, one per parsing rule, with what each is.

Every case says, by hand, the count key the frame belongs to (IP protocol,
NON_IP or MALFORMED) and whether port-9090 must bounce it.  From those two
facts the tests derive what each program must do; the table does not consult
reference.py, so it checks the reference classifier as well as the objects.
"""

from scapy.all import (ARP, GRE, ICMP, IP, TCP, UDP, Dot1AD, Dot1Q, Ether,
                       ICMPv6EchoRequest, IPOption, IPv6, IPv6ExtHdrFragment,
                       Raw)

NON_IP, MALFORMED = 256, 257
SRC, DST = "02:00:00:00:00:01", "02:00:00:00:00:02"


class Case:
    def __init__(self, name, frame, key, bounce=False):
        self.name = name
        self.frame = bytes(frame)
        self.key = key
        self.bounce = bounce
        assert 14 <= len(self.frame) <= 1514, name


def eth():
    return Ether(src=SRC, dst=DST)


def ip4(**kw):
    return IP(src="10.0.0.1", dst="10.0.0.2", **kw)


def ip6(**kw):
    return IPv6(src="fd00::1", dst="fd00::2", **kw)


EXT_TYPES = {"hbh": 0, "rt": 43, "frag": 44, "ah": 51, "dst": 60}


def ext_header(kind, nh, frag_offset=0):
    """One IPv6 extension header as bytes, built by hand so that its length
    field is exactly what the test means."""
    if kind == "frag":
        return bytes([nh, 0]) + ((frag_offset << 3) | 1).to_bytes(2, "big") + b"\0\0\0\7"
    if kind == "ah":  # length (2 + 2) * 4 = 16 bytes: 4-byte units
        return bytes([nh, 2]) + b"\0\0" + b"\0\0\0\1" + b"\0\0\0\1" + b"\0" * 4
    # hop-by-hop, routing, destination options: length (1 + 1) * 8 = 16
    # bytes (8-byte units), filled with one PadN option.
    return bytes([nh, 1, 1, 12]) + b"\0" * 12


def ext_chain(kinds, final_nh, frag_offset=0):
    """Extension headers by kind ('hbh', 'rt', 'dst', 'ah', 'frag'), then
    final_nh; the last fragment header gets frag_offset."""
    out = b""
    for i, kind in enumerate(kinds):
        nh = EXT_TYPES[kinds[i + 1]] if i + 1 < len(kinds) else final_nh
        out += ext_header(kind, nh, frag_offset if kind == "frag" else 0)
    return out


def with_chain(kinds, inner, frag_offset=0):
    """Ethernet / IPv6 / extension headers / inner (a scapy layer or bytes)."""
    final_nh = inner.overload_fields.get(IPv6, {}).get("nh") if not isinstance(inner, bytes) else 6
    first = EXT_TYPES[kinds[0]] if kinds else final_nh
    return eth() / ip6(nh=first) / Raw(ext_chain(kinds, final_nh, frag_offset) + bytes(inner))


def cases(tx_port):
    """The table.  tx_port is the port port-9090 was built for."""
    other = 80 if tx_port != 80 else 81
    payload = Raw(b"x" * 8)
    t = []
    add = lambda *a, **kw: t.append(Case(*a, **kw))  # noqa: E731

    # The chapter's three tests.
    add("chapter-tcp", Ether() / IP() / TCP(), 6)
    add("chapter-udp", Ether() / IP() / UDP(), 17)
    add("chapter-tcp-9090", Ether() / IP() / TCP(dport=tx_port), 6, True)

    # Plain IPv4 / IPv6.
    add("ipv4-tcp", eth() / ip4() / TCP(dport=other) / payload, 6)
    add("ipv4-tcp-txport", eth() / ip4() / TCP(dport=tx_port) / payload, 6, True)
    add("ipv4-tcp-txport-as-source", eth() / ip4() / TCP(sport=tx_port, dport=other), 6)
    add("ipv4-udp-txport", eth() / ip4() / UDP(dport=tx_port) / payload, 17)
    add("ipv4-icmp", eth() / ip4() / ICMP(), 1)
    add("ipv6-tcp", eth() / ip6() / TCP(dport=other), 6)
    add("ipv6-tcp-txport", eth() / ip6() / TCP(dport=tx_port), 6, True)
    add("ipv6-udp", eth() / ip6() / UDP(dport=53), 17)
    add("ipv6-icmp", eth() / ip6() / ICMPv6EchoRequest(), 58)
    add("ipv6-no-next-header", eth() / ip6(nh=59), 59)

    # Not IP.
    add("arp", eth() / ARP(), NON_IP)
    add("lldp", Ether(src=SRC, dst="01:80:c2:00:00:0e", type=0x88CC) / Raw(b"\x02\x07" + b"\0" * 40), NON_IP)
    add("802.3-length-field", Ether(src=SRC, dst=DST, type=46) / Raw(b"\xaa" * 46), NON_IP)
    add("ethernet-header-only-ipv4-type", bytes(eth() / ip4())[:14], MALFORMED)
    add("ethernet-header-only-arp-type", bytes(eth() / ARP())[:14], NON_IP)

    # VLAN tags: up to two, 802.1Q and 802.1ad in any combination.
    add("vlan-ipv4-tcp", eth() / Dot1Q(vlan=10) / ip4() / TCP(dport=other), 6)
    add("vlan-ipv4-tcp-txport", eth() / Dot1Q(vlan=10) / ip4() / TCP(dport=tx_port), 6, True)
    add("vlan-ipv4-udp", eth() / Dot1Q(vlan=10) / ip4() / UDP(), 17)
    add("vlan-arp", eth() / Dot1Q(vlan=10) / ARP(), NON_IP)
    add("qinq-ad-q-ipv6-tcp-txport", eth() / Dot1AD(vlan=100) / Dot1Q(vlan=10) / ip6() / TCP(dport=tx_port), 6, True)
    add("qinq-q-q-ipv4-tcp", eth() / Dot1Q(vlan=1) / Dot1Q(vlan=2) / ip4() / TCP(), 6)
    add("qinq-ad-ad-ipv4-udp", eth() / Dot1AD(vlan=1) / Dot1AD(vlan=2) / ip4() / UDP(), 17)
    add("qinq-q-ad-ipv6-udp", eth() / Dot1Q(vlan=1) / Dot1AD(vlan=2) / ip6() / UDP(), 17)
    add("three-tags-udp", eth() / Dot1AD(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / ip4() / UDP(), MALFORMED)
    add("three-tags-arp", eth() / Dot1Q(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / ARP(), MALFORMED)
    add("frame-ends-inside-tag", bytes(eth() / Dot1Q(vlan=1) / ip4() / UDP())[:16], MALFORMED)
    add("frame-ends-inside-second-tag", bytes(eth() / Dot1Q() / Dot1Q() / ip4())[:20], MALFORMED)

    # IPv4 header validity and options.
    opts40 = [IPOption(b"\x01" * 39 + b"\x00")]  # 40 bytes: IHL 15
    add("ipv4-options-40-tcp-txport", eth() / ip4(options=opts40) / TCP(dport=tx_port), 6, True)
    add("ipv4-options-40-tcp", eth() / ip4(options=opts40) / TCP(dport=other), 6)
    add("ipv4-options-4-udp", eth() / ip4(options=[IPOption(b"\x01\x01\x01\x00")]) / UDP(), 17)
    # With IHL ignored, the options would be read as the TCP header: put
    # the bounce port where a 20-byte-header reader would look.
    add("ipv4-options-hide-port", eth() / ip4(options=[IPOption(b"\x01\x01" + tx_port.to_bytes(2, "big"))])
        / TCP(dport=other), 6)
    add("ipv4-ihl-4", eth() / ip4(ihl=4) / UDP(), MALFORMED)
    add("ipv4-ihl-0", eth() / ip4(ihl=0) / TCP(), MALFORMED)
    add("ipv4-version-6-in-ipv4-frame", eth() / ip4(version=6) / UDP(), MALFORMED)
    add("ipv6-version-4-in-ipv6-frame", eth() / ip6(version=4) / UDP(), MALFORMED)
    add("ipv4-options-cut-short", bytes(eth() / ip4(options=opts40) / UDP())[:14 + 40], MALFORMED)
    add("ipv4-total-length-ignored", eth() / ip4(len=20) / TCP(dport=tx_port), 6, True)

    # IPv4 fragments: only offset 0 carries the transport header.
    add("ipv4-first-fragment-tcp-txport", eth() / ip4(flags="MF", frag=0) / TCP(dport=tx_port) / payload, 6, True)
    fake_tcp = bytes(TCP(sport=1, dport=tx_port))  # payload that looks like a TCP header
    add("ipv4-later-fragment-tcp", eth() / ip4(proto=6, flags="MF", frag=185) / Raw(fake_tcp), 6)
    add("ipv4-last-fragment-tcp", eth() / ip4(proto=6, frag=370) / Raw(fake_tcp), 6)
    add("ipv4-later-fragment-udp", eth() / ip4(proto=17, frag=185) / Raw(b"u" * 16), 17)
    add("ipv4-later-fragment-no-payload", eth() / ip4(proto=6, frag=1), 6)

    # IPv6 fragments.
    add("ipv6-first-fragment-tcp-txport", with_chain(["frag"], TCP(dport=tx_port)), 6, True)
    add("ipv6-later-fragment-tcp", eth() / ip6() / IPv6ExtHdrFragment(nh=6, offset=100, m=1) / Raw(fake_tcp), 6)
    add("ipv6-later-fragment-udp", eth() / ip6() / IPv6ExtHdrFragment(nh=17, offset=100) / Raw(b"u" * 16), 17)
    add("ipv6-later-fragment-then-ext-type", eth() / ip6() / IPv6ExtHdrFragment(nh=60, offset=3) / Raw(b"\0" * 16), 60)

    # IPv6 extension-header chains.
    add("ipv6-hbh-tcp-txport", with_chain(["hbh"], TCP(dport=tx_port)), 6, True)
    add("ipv6-dst-tcp-txport", with_chain(["dst"], TCP(dport=tx_port)), 6, True)
    add("ipv6-ah-tcp-txport", with_chain(["ah"], TCP(dport=tx_port)), 6, True)
    # Read in 8-byte units, AH would end 8 bytes later, where ack holds the port.
    add("ipv6-ah-hides-port", with_chain(["ah"], TCP(dport=other, ack=tx_port)), 6)
    add("ipv6-chain-3-udp", with_chain(["hbh", "rt", "dst"], UDP()), 17)
    add("ipv6-chain-6-tcp-txport", with_chain(["hbh", "dst", "rt", "ah", "frag", "dst"], TCP(dport=tx_port)), 6, True)
    add("ipv6-chain-6-tcp", with_chain(["hbh", "dst", "rt", "ah", "frag", "dst"], TCP(dport=other)), 6)
    add("ipv6-chain-6-udp", with_chain(["dst"] * 6, UDP()), 17)
    add("ipv6-chain-7-udp", with_chain(["dst"] * 7, UDP()), MALFORMED)
    add("ipv6-chain-7-tcp", with_chain(["hbh", "dst", "rt", "ah", "frag", "dst", "dst"], TCP()), MALFORMED)
    add("ipv6-chain-6th-is-later-fragment", with_chain(["dst"] * 5 + ["frag"], fake_tcp, frag_offset=9), 6)
    add("ipv6-chain-7th-is-later-fragment", with_chain(["dst"] * 6 + ["frag"], fake_tcp, frag_offset=9), MALFORMED)
    add("ipv6-ext-cut-short", bytes(with_chain(["hbh", "dst"], UDP()))[:14 + 40 + 8 + 4], MALFORMED)
    add("ipv6-ext-len-past-end", eth() / ip6(nh=60) / Raw(bytes([17, 200, 1, 4]) + b"\0" * 4 + bytes(UDP())), MALFORMED)
    add("ipv6-later-fragment-header-cut", bytes(eth() / ip6() / IPv6ExtHdrFragment(nh=6, offset=5))[:14 + 40 + 6], MALFORMED)

    # Tunnels: the outer protocol decides.
    add("gre-carrying-tcp", eth() / ip4() / GRE() / ip4() / TCP(dport=tx_port), 47)
    add("ipip-carrying-tcp", eth() / ip4(proto=4) / ip4() / TCP(dport=tx_port), 4)
    add("6in4-carrying-tcp", eth() / ip4(proto=41) / ip6() / TCP(dport=tx_port), 41)
    add("ipv6-in-ipv6-tcp", eth() / ip6() / ip6() / TCP(dport=tx_port), 41)

    # Transport header presence (only port-9090 reads it).
    add("tcp-doff-bogus-still-bounces", eth() / ip4() / TCP(dport=tx_port, dataofs=2), 6, True)
    add("ipv4-tcp-cut-19-bytes", bytes(eth() / ip4() / TCP(dport=tx_port))[:14 + 20 + 19], 6)
    add("ipv4-tcp-header-exactly-20", bytes(eth() / ip4() / TCP(dport=tx_port))[:14 + 20 + 20], 6, True)
    add("ipv6-tcp-cut-3-bytes", bytes(eth() / ip6() / TCP(dport=tx_port))[:14 + 40 + 3], 6)
    add("ipv6-tcp-no-l4-bytes", bytes(eth() / ip6() / TCP(dport=tx_port))[:14 + 40], 6)

    # Padding and trailers are normal.
    add("ipv4-udp-padded-to-60", bytes(eth() / ip4() / UDP()) + b"\0" * 18, 17)
    add("ipv4-tcp-txport-with-trailer", bytes(eth() / ip4() / TCP(dport=tx_port)) + b"\xfe" * 20, 6, True)

    # Sizes.
    add("max-size-ipv6-tcp-txport", eth() / ip6() / TCP(dport=tx_port) / Raw(b"z" * (1514 - 14 - 40 - 20)), 6, True)
    return t


def truncation_cases(tx_port):
    """Each base frame cut at every byte from 14 up: until the IP headers are
    complete the frame is malformed, after that it is TCP (bounced only once
    the 20-byte TCP header is complete)."""
    bases = [
        ("vlan-ipv4-opts", eth() / Dot1Q(vlan=5) / ip4(options=[IPOption(b"\x01" * 8)]) / TCP(dport=tx_port),
         14 + 4 + 28),
        ("qinq-ipv6-chain", eth() / Dot1AD() / Dot1Q() / with_chain(["hbh", "ah", "frag"], TCP(dport=tx_port))[IPv6],
         14 + 8 + 40 + 16 + 16 + 8),
    ]
    out = []
    for name, pkt, l3_end in bases:
        full = bytes(pkt)
        for cut in range(14, len(full) + 1):
            frame = full[:cut]
            if cut < l3_end:
                out.append(Case(f"{name}-cut-{cut}", frame, MALFORMED))
            else:
                out.append(Case(f"{name}-cut-{cut}", frame, 6, bounce=cut >= l3_end + 20))
    return out
