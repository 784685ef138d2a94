# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""The frames the bench runs the programs on (built with ipxdp.wire).

CLASSES are the packet classes of the per-packet table, SCALING the two
series of the cost-versus-work table: IPv4 TCP behind 0, 1, 2 VLAN tags,
and IPv6 TCP behind 0 to 6 extension headers (destination options, 8 bytes
each).  Every frame is padded to the 60-byte Ethernet minimum.

Each frame carries what every program must do with it (the reference
classifier says it for drop-tcp, count and port-9090), so the bench checks
every verdict before it times anything.
"""

from ipxdp import bpf, reference, wire
from ipxdp.wire import DSTOPTS, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, HOPOPTS, ROUTING, TCP, UDP

SRC_MAC, DST_MAC = wire.mac("02:00:00:be:0c:01"), wire.mac("02:00:00:be:0c:02")
SRC_IP4, DST_IP4 = wire.ip4("198.18.1.1"), wire.ip4("198.18.0.2")
SRC_IP6, DST_IP6 = b"\x20\x01\x0d\xb8" + bytes(11) + b"\x01", b"\x20\x01\x0d\xb8" + bytes(11) + b"\x02"
OTHER_PORT = 80
VERDICT = {name: number for number, name in bpf.VERDICTS.items()}


def _v4(l4_proto, l4, tags=(), **kw):
    return wire.eth(ETH_P_IP, tags, DST_MAC, SRC_MAC) + wire.ipv4(l4_proto, l4, src=SRC_IP4, dst=DST_IP4, **kw)


def _v6(kinds, l4, tags=()):
    """IPv6 TCP behind extension headers of @kinds, 8 bytes each."""
    first = kinds[0] if kinds else TCP
    return wire.eth(ETH_P_IPV6, tags, DST_MAC, SRC_MAC) + \
        wire.ipv6(first, wire.chain(kinds, TCP) + l4, src=SRC_IP6, dst=DST_IP6)


def _syn(dport):
    return wire.tcp(dport, 20)


class Frame:
    """A frame and the verdict each program must give it."""

    def __init__(self, name, label, frame, tx_port):
        self.name = name
        self.label = label
        self.data = d = wire.pad(frame)
        plain_ipv4_tcp = len(d) >= 34 and d[12:14] == b"\x08\x00" and d[23] == TCP
        self.expect = {
            "floor": bpf.XDP_DROP,
            "touch": bpf.XDP_DROP if plain_ipv4_tcp else bpf.XDP_PASS,
            "drop-tcp": VERDICT[reference.drop_tcp(d)[0]],
            "count": bpf.XDP_PASS,
            "port-9090": VERDICT[reference.port_9090(d, tx_port, DST_MAC)[0]],
        }


def classes(tx_port):
    """The packet classes of the per-packet table, in table order."""
    arp = wire.eth(ETH_P_ARP, (), DST_MAC, SRC_MAC) + wire.arp(SRC_MAC, SRC_IP4, DST_IP4)
    return [Frame(name, label, frame, tx_port) for name, label, frame in [
        ("ipv4-tcp", "IPv4 TCP", _v4(TCP, _syn(OTHER_PORT))),
        ("ipv4-udp", "IPv4 UDP", _v4(UDP, wire.udp(53, 53))),
        ("ipv4-tcp-txport", f"IPv4 TCP to {tx_port}", _v4(TCP, _syn(tx_port))),
        ("ipv6-tcp", "IPv6 TCP", _v6([], _syn(OTHER_PORT))),
        ("vlan-ipv4-tcp", "VLAN IPv4 TCP", _v4(TCP, _syn(OTHER_PORT), [wire.dot1q(10)])),
        ("qinq-ipv6-tcp", "QinQ IPv6 TCP", _v6([], _syn(OTHER_PORT), [wire.dot1ad(100), wire.dot1q(10)])),
        ("ipv6-ext3-tcp", "IPv6 3 ext hdrs TCP", _v6([HOPOPTS, ROUTING, DSTOPTS], _syn(OTHER_PORT))),
        ("ipv4-opts40-tcp", "IPv4 40B options TCP",
         _v4(TCP, _syn(OTHER_PORT), options=b"\x01" * 39 + b"\x00")),
        ("arp", "ARP", arp),
    ]]


def scaling(tx_port):
    """(series, depth, Frame): IPv4 TCP behind 0-2 VLAN tags, IPv6 TCP
    behind 0-6 destination-options headers."""
    out = []
    tags = [wire.dot1ad(100), wire.dot1q(10)]
    for n in range(3):
        frame = _v4(TCP, _syn(OTHER_PORT), tags[2 - n:])
        out.append(("vlan", n, Frame(f"vlan{n}-ipv4-tcp", f"{n} VLAN tags", frame, tx_port)))
    for n in range(7):
        frame = _v6([DSTOPTS] * n, _syn(OTHER_PORT))
        out.append(("ipv6_ext", n, Frame(f"ext{n}-ipv6-tcp", f"{n} ext hdrs", frame, tx_port)))
    return out


def live_frame(src_mac, dst_mac, port):
    """The live flood's frame: a TCP SYN from an address the receiver has
    no route to, to the receiver's MAC and address, padded to 60 bytes."""
    return wire.pad(wire.tcp4(port, dst=wire.mac(dst_mac), src=wire.mac(src_mac),
                              ip_src=SRC_IP4, ip_dst=DST_IP4))
