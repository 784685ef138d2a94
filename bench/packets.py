# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""The frames the bench runs the programs on.

CLASSES are the packet classes of the per-packet table, SCALING the two
series of the cost-versus-work table: IPv4 TCP behind 0, 1, 2 VLAN tags,
and IPv6 TCP behind 0 to 6 extension headers (destination options, 8 bytes
each).  Every frame is padded to the 60-byte Ethernet minimum.

Each frame carries what drop-tcp, count and port-9090 must do with it, so
the bench checks every verdict before it times anything.
"""

from scapy.all import ARP, IP, TCP, UDP, Dot1AD, Dot1Q, Ether, IPOption, IPv6, Raw

SRC_MAC, DST_MAC = "02:00:00:be:0c:01", "02:00:00:be:0c:02"
OTHER_PORT = 80
HOPOPTS, ROUTING, DSTOPTS = 0, 43, 60
DROP, PASS, TX = 1, 2, 3  # XDP verdicts


def _pad(pkt):
    raw = bytes(pkt)
    return raw + b"\0" * max(0, 60 - len(raw))


def _eth():
    return Ether(src=SRC_MAC, dst=DST_MAC)


def _ip4(**kw):
    return IP(src="198.18.1.1", dst="198.18.0.2", **kw)


def _ip6(**kw):
    return IPv6(src="2001:db8::1", dst="2001:db8::2", **kw)


def _ext(kinds, final_nh):
    """IPv6 extension headers of the given types, 8 bytes each (length 0,
    one PadN option), chained to @final_nh."""
    out = b""
    for i in range(len(kinds)):
        nh = kinds[i + 1] if i + 1 < len(kinds) else final_nh
        out += bytes([nh, 0, 1, 4, 0, 0, 0, 0])
    return out


def _ip6_chain(kinds, l4, tags=()):
    pkt = _eth()
    for tag in tags:
        pkt = pkt / tag
    first = kinds[0] if kinds else 6
    return pkt / _ip6(nh=first) / Raw(_ext(kinds, 6) + bytes(l4))


class Frame:
    """A frame and the verdict each program must give it."""

    def __init__(self, name, label, pkt, tcp=True, bounce=False):
        self.name = name
        self.label = label
        self.data = _pad(pkt)
        tcp_verdict = TX if bounce else DROP
        d = self.data
        plain_ipv4_tcp = len(d) >= 34 and d[12:14] == b"\x08\x00" and d[23] == 6
        self.expect = {
            "floor": DROP,
            "touch": DROP if plain_ipv4_tcp else PASS,
            "drop-tcp": DROP if tcp else PASS,
            "count": PASS,
            "port-9090": tcp_verdict if tcp else PASS,
        }


def classes(tx_port):
    """The packet classes of the per-packet table, in table order."""
    syn = {"flags": "S"}
    return [
        Frame("ipv4-tcp", "IPv4 TCP", _eth() / _ip4() / TCP(dport=OTHER_PORT, **syn)),
        Frame("ipv4-udp", "IPv4 UDP", _eth() / _ip4() / UDP(dport=53), tcp=False),
        Frame("ipv4-tcp-txport", f"IPv4 TCP to {tx_port}",
              _eth() / _ip4() / TCP(dport=tx_port, **syn), bounce=True),
        Frame("ipv6-tcp", "IPv6 TCP", _eth() / _ip6() / TCP(dport=OTHER_PORT, **syn)),
        Frame("vlan-ipv4-tcp", "VLAN IPv4 TCP",
              _eth() / Dot1Q(vlan=10) / _ip4() / TCP(dport=OTHER_PORT, **syn)),
        Frame("qinq-ipv6-tcp", "QinQ IPv6 TCP",
              _eth() / Dot1AD(vlan=100) / Dot1Q(vlan=10) / _ip6() / TCP(dport=OTHER_PORT, **syn)),
        Frame("ipv6-ext3-tcp", "IPv6 3 ext hdrs TCP",
              _ip6_chain([HOPOPTS, ROUTING, DSTOPTS], TCP(dport=OTHER_PORT, **syn))),
        Frame("ipv4-opts40-tcp", "IPv4 40B options TCP",
              _eth() / _ip4(options=[IPOption(b"\x01" * 39 + b"\x00")]) / TCP(dport=OTHER_PORT, **syn)),
        Frame("arp", "ARP", _eth() / ARP(hwsrc=SRC_MAC, psrc="198.18.1.1", pdst="198.18.0.2"), tcp=False),
    ]


def scaling():
    """(series, depth, Frame): IPv4 TCP behind 0-2 VLAN tags, IPv6 TCP
    behind 0-6 destination-options headers."""
    out = []
    tags = [Dot1AD(vlan=100), Dot1Q(vlan=10)]
    for n in range(3):
        pkt = _eth()
        for tag in tags[2 - n:]:
            pkt = pkt / tag
        pkt = pkt / _ip4() / TCP(dport=OTHER_PORT, flags="S")
        out.append(("vlan", n, Frame(f"vlan{n}-ipv4-tcp", f"{n} VLAN tags", pkt)))
    for n in range(7):
        pkt = _ip6_chain([DSTOPTS] * n, TCP(dport=OTHER_PORT, flags="S"))
        out.append(("ipv6_ext", n, Frame(f"ext{n}-ipv6-tcp", f"{n} ext hdrs", pkt)))
    return out


def live_frame(src_mac, dst_mac, port):
    """The live flood's frame: a TCP SYN from an address the receiver has
    no route to, to the receiver's MAC and address, padded to 60 bytes."""
    pkt = (Ether(src=src_mac, dst=dst_mac) / IP(src="198.18.1.1", dst="198.18.0.2", ttl=64)
           / TCP(sport=40000, dport=port, flags="S", seq=1))
    return _pad(pkt)
