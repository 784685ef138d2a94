# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""The programs the bench times: ours, its reference programs, and peers.

A Program says where its object is, which section to load, whether its
maps must be kept off the host's bpffs (a peer's maps are pinned by name:
see ipxdp.bpf.BpfObject: without pin_root no map is pinned), which map entries to write after loading (a
peer's rules), and the verdict it must give each frame.  load() does all of
it; the bench checks every verdict before it times a program.

The peer is xdp-filter (Debian's xdp-tools), loaded straight from its
object with the rule written into its map: no xdp-filter binary runs
anywhere near the timed path.  Its objects named alw_* pass by default and
drop what a rule matches.  Its map values are bit sets: SRC=1, DST=2, TCP=4,
UDP=8.

xdpfilt_alw_ip.o is the peer for a source-address blocklist: the row
"blocklist vs xdp-filter with the same list" is
xdp_filter_ip(addresses) next to the blocklist's Program, with the same
addresses.
"""

import os
import socket
import struct

from ipxdp import bpf
from ipxdp.bpf import XDP_ABORTED, XDP_DROP, XDP_PASS

XDP_FILTER_DIR = "/usr/lib/x86_64-linux-gnu/bpf"
SRC, DST, TCP = 1, 2, 4          # xdp-filter's map value bits
XDP_FILTER_MAX_EXT = 5           # IPv6 extension headers it walks (measured)


class Program:
    """@expect(frame) gives the verdict the program must return on a
    packets.Frame; @rules are (map name, key bytes, u64 value) written into
    every CPU's slot of a per-CPU map after loading.  A @peer's object is
    loaded with its maps unpinned and libbpf's warnings about it hidden."""

    def __init__(self, name, path, section, expect, peer=False, rules=(), note=""):
        self.name, self.path, self.section = name, path, section
        self.expect = expect
        self.peer = peer
        self.rules = list(rules)
        self.note = note

    def load(self):
        """The loaded object, rules written; the caller closes it."""
        obj = bpf.BpfObject(self.path, quiet=self.peer)
        try:
            for mapname, key, value in self.rules:
                bpf.set_percpu(obj.map_fd(mapname), key, value)
        except (OSError, KeyError):
            obj.close()
            raise
        return obj


def ours(name, path, section, like=None):
    """One of ipxdp's programs or the bench's reference programs: the
    verdicts packets.Frame lists for it (or for @like: a second copy of a
    program)."""
    return Program(name, path, section, lambda f, n=like or name: f.expect[n])


def _ipv6_ext_headers(data):
    """How many IPv6 extension headers a bench frame has before its
    upper-layer header (0 for anything that is not untagged IPv6)."""
    if data[12:14] != b"\x86\xdd":
        return 0
    nh, off, n = data[20], 54, 0
    while nh in (0, 43, 60):  # hop-by-hop, routing, destination options
        nh, off, n = data[off], off + 8 * (data[off + 1] + 1), n + 1
    return n


def xdp_filter_tcp(ports):
    """xdpfilt_alw_tcp.o with one rule per port: drop TCP to it.  Given
    the destination ports of the bench's TCP frames, it drops every TCP
    frame as drop-tcp does and passes the rest; but it aborts (XDP_ABORTED)
    on IPv6 behind more than XDP_FILTER_MAX_EXT extension headers."""

    def expect(f):
        if _ipv6_ext_headers(f.data) > XDP_FILTER_MAX_EXT:
            return XDP_ABORTED
        return XDP_DROP if f.expect["drop-tcp"] == XDP_DROP else XDP_PASS

    rules = [("filter_ports", struct.pack(">H", p) + b"\0\0", DST | TCP) for p in sorted(set(ports))]
    return Program("xdp-filter", os.path.join(XDP_FILTER_DIR, "xdpfilt_alw_tcp.o"), "xdp", expect,
                   peer=True, rules=rules,
                   note=f"xdp-filter: xdpfilt_alw_tcp.o, rule: drop TCP to port "
                        f"{', '.join(str(p) for p in sorted(set(ports)))}; aborts on IPv6 "
                        f"behind more than {XDP_FILTER_MAX_EXT} extension headers.")


def xdp_filter_ip(addresses, expect):
    """xdpfilt_alw_ip.o dropping frames from each IPv4 address in
    @addresses (at most 10,000: the size of its filter_ipv4 map, exact
    addresses only); @expect as for Program."""
    rules = [("filter_ipv4", socket.inet_aton(a), SRC) for a in addresses]
    return Program("xdp-filter-ip", os.path.join(XDP_FILTER_DIR, "xdpfilt_alw_ip.o"), "xdp", expect,
                   peer=True, rules=rules)
