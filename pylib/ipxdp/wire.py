# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Frames as bytes: the one place that knows how each header is laid out.

Every frame the tests, the fuzzer and the bench make is put together from
these builders, so that each rule of the wire format (the VLAN TPIDs, the
two units of IPv6 extension header lengths, the fragment fields) is written
down once, here.  The reference classifier (reference.py) restates the
rules it checks on its own and does not use this module: a builder bug
cannot hide a parser bug.

    eth(ETH_P_IP, tags=[dot1ad(100), dot1q(10)])      Ethernet + VLAN tags
    + ipv4(TCP, tcp(9090), options=b"\\x01" * 4)       IPv4, IHL from options
    + ipv6(HOPOPTS, chain([HOPOPTS, AH], TCP) + tcp(9090))

Each builder takes the values a test wants to be wrong, too: ipv4(ihl=3),
ipv4(version=6), ext(AH, hdrlen=200) past the end of the frame.  The IPv4
header checksum is computed; transport checksums are left zero (nothing
built here is meant to reach a socket).
"""

import struct

# Ethernet types.
ETH_P_IP, ETH_P_ARP, ETH_P_IPV6, ETH_P_LLDP = 0x0800, 0x0806, 0x86DD, 0x88CC
ETH_P_8021Q, ETH_P_8021AD = 0x8100, 0x88A8
VLAN_TPIDS = (ETH_P_8021Q, ETH_P_8021AD)  # the tags parse.h looks behind

# IP protocols / IPv6 next-header values.
HOPOPTS, ICMP, IPIP, TCP, UDP, IPV6, ROUTING, FRAGMENT = 0, 1, 4, 6, 17, 41, 43, 44
GRE, AH, ICMPV6, NONXT, DSTOPTS, SCTP = 47, 51, 58, 59, 60, 132
IPV6_EXT = (HOPOPTS, ROUTING, FRAGMENT, AH, DSTOPTS)  # extension headers

# IPv4 flags, in the 16-bit flags/fragment-offset field.
IP_RF, IP_DF, IP_MF = 0x8000, 0x4000, 0x2000
TCP_SYN = 0x02

SRC_MAC, DST_MAC = b"\x02\0\0\0\0\x01", b"\x02\0\0\0\0\x02"
IP4_SRC, IP4_DST = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
IP6_SRC, IP6_DST = b"\xfd" + bytes(14) + b"\x01", b"\xfd" + bytes(14) + b"\x02"
MIN_FRAME, MAX_FRAME = 14, 1514  # an Ethernet header; the 1500-byte MTU


def mac(text):
    """"02:00:00:00:00:01" -> 6 bytes."""
    return bytes.fromhex(text.replace(":", ""))


def ip4(text):
    return bytes(int(b) for b in text.split("."))


def dot1q(vid):
    """An 802.1Q tag for eth(tags=...)."""
    return ETH_P_8021Q, vid


def dot1ad(vid):
    """An 802.1ad (QinQ service) tag for eth(tags=...)."""
    return ETH_P_8021AD, vid


def eth(ethertype, tags=(), dst=DST_MAC, src=SRC_MAC):
    """Ethernet header; @tags: (TPID, VLAN id) pairs, outermost first."""
    out = dst + src
    for tpid, vid in tags:
        out += struct.pack("!HH", tpid, vid)
    return out + struct.pack("!H", ethertype)


def checksum(data):
    """The Internet checksum (RFC 1071) of @data."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(proto, payload=b"", options=b"", ihl=None, version=4, frag_off=0,
         total_length=None, ident=1, ttl=64, src=IP4_SRC, dst=IP4_DST):
    """IPv4 header + @options + @payload.  The IHL field is
    5 + len(options) / 4 unless @ihl says otherwise (the header is 20 bytes
    plus the options whatever the field says); @frag_off is the flags and
    fragment offset field (IP_MF | offset in 8-byte units)."""
    if ihl is None:
        ihl = 5 + len(options) // 4
    if total_length is None:
        total_length = 20 + len(options) + len(payload)
    hdr = struct.pack("!BBHHHBBH4s4s", (version << 4) | ihl, 0, total_length & 0xFFFF,
                      ident, frag_off, ttl, proto, 0, src, dst) + options
    hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
    return hdr + payload


def ipv6(nh, payload=b"", version=6, hlim=64, src=IP6_SRC, dst=IP6_DST):
    """IPv6 header (next header @nh) + @payload."""
    return struct.pack("!IHBB16s16s", version << 28, len(payload) & 0xFFFF, nh, hlim,
                       src, dst) + payload


def ext_len(kind, hdrlen):
    """Bytes an IPv6 extension header of @kind with length field @hdrlen
    takes: AH counts 4-byte units after the first two (RFC 4302), the
    others 8-byte units after the first (RFC 8200); the fragment header
    has no length field and is 8 bytes."""
    if kind == FRAGMENT:
        return 8
    return (hdrlen + 2) * 4 if kind == AH else (hdrlen + 1) * 8


def frag6(offset, more=False):
    """The offset/flags field of an IPv6 fragment header: @offset in
    8-byte units, M set with @more."""
    return (offset << 3) | int(more)


def ext(kind, nh, hdrlen=0, frag_field=0, fill=None):
    """One IPv6 extension header of @kind (HOPOPTS, ROUTING, FRAGMENT, AH,
    DSTOPTS) whose next header is @nh.  @hdrlen is its length field; the
    rest is zeros (Pad1 options, for hop-by-hop and destination options)
    or @fill.  A fragment header carries @frag_field (see frag6) and
    identification 7."""
    if kind == FRAGMENT:
        return bytes([nh, 0]) + struct.pack("!H", frag_field) + (fill or struct.pack("!I", 7))
    body = ext_len(kind, hdrlen) - 2
    return bytes([nh, hdrlen]) + (fill if fill is not None else bytes(body))


def chain(kinds, final, hdrlens=None, frag_field=0):
    """Extension headers of @kinds, in order, then @final (the protocol
    after them); @hdrlens the length field of each (default 0), every
    fragment header with @frag_field."""
    out = b""
    for i, kind in enumerate(kinds):
        nh = kinds[i + 1] if i + 1 < len(kinds) else final
        out += ext(kind, nh, hdrlens[i] if hdrlens else 0, frag_field)
    return out


def tcp(dport, sport=40000, flags=TCP_SYN, seq=1, ack=0, doff=5, window=64240, payload=b""):
    """TCP header (data offset @doff, in 4-byte units) + @payload; the
    header is 20 bytes whatever @doff says."""
    return struct.pack("!HHIIHHHH", sport, dport, seq, ack, (doff << 12) | flags, window,
                       0, 0) + payload


def udp(dport, sport=40000, payload=b""):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def icmp_echo(payload=b"ping", v6=False):
    """An ICMP (or ICMPv6, @v6) echo request."""
    return bytes([128 if v6 else 8, 0]) + struct.pack("!HHH", 0, 1, 1) + payload


def arp(sender_mac=SRC_MAC, sender_ip=IP4_SRC, target_ip=IP4_DST):
    """An ARP request for @target_ip (28 bytes)."""
    return struct.pack("!HHBBH6s4s6s4s", 1, ETH_P_IP, 6, 4, 1, sender_mac, sender_ip,
                       bytes(6), target_ip)


def gre(proto):
    """A basic GRE header carrying @proto (an Ethernet type)."""
    return struct.pack("!HH", 0, proto)


def pad(frame, size=60):
    """@frame padded with zeros to @size bytes (the Ethernet minimum)."""
    return frame + bytes(max(0, size - len(frame)))


def tcp4(dport, sport=40000, dst=DST_MAC, src=SRC_MAC, ip_src=IP4_SRC, ip_dst=IP4_DST, flags=TCP_SYN):
    """The common case: Ethernet / IPv4 / TCP SYN to @dport, no payload."""
    return eth(ETH_P_IP, dst=dst, src=src) + ipv4(TCP, tcp(dport, sport, flags=flags),
                                                   src=ip_src, dst=ip_dst)


def udp4(dport, sport=40000, payload=b""):
    """Ethernet / IPv4 / UDP to @dport."""
    return eth(ETH_P_IP) + ipv4(UDP, udp(dport, sport, payload))
