# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""blocklist's rules, restated with Python's ipaddress module.

Like reference.py, this is the specification: it shares no code with
progs/blocklist.c, include/blocklist.h, scripts/xdp-block or the frame
builders, and imports nothing of this package but reference.py.  The
frame's class comes from reference.parse (the parser's rules), the source
address from the bytes at the IP header, and each list's decision from
ipaddress networks, longest prefix first:

    not IP -> PASS (passed); malformed -> DROP (malformed);
    source in the allow list -> PASS (allowed), whatever the block list holds;
    source in the block list -> DROP (blocked); else PASS (passed).

A frame counts once, in its total and on the entry that decided it.  An
IPv4-mapped IPv6 address (::ffff:a.b.c.d) is an IPv6 address: only IPv6
entries match it.

    lists = Lists(block=["198.51.100.0/24"], allow=["198.51.100.7"])
    lists.decide(frame)  ->  Decision("PASS", "allowed", ("allow", IPv4Network('198.51.100.7/32')))
"""

import ipaddress
import struct

from . import reference

# The totals, in the order the object keeps them (include/blocklist.h says
# it again; tests/test_python_layout.py compares the two).
TOTALS = ("passed", "blocked", "allowed", "malformed", "uncounted")


class Decision:
    """verdict: "DROP" or "PASS"; total: the total it counts in (passed,
    blocked, allowed, malformed); rule: (list, network) of the entry that
    decided it, or None."""

    def __init__(self, verdict, total, rule=None):
        self.verdict, self.total, self.rule = verdict, total, rule

    def __eq__(self, other):
        return (self.verdict, self.total, self.rule) == (other.verdict, other.total, other.rule)

    def __repr__(self):
        return f"Decision({self.verdict}, {self.total}, {self.rule})"


def l3_offset(frame):
    """Where the IP header starts in a frame reference.parse calls IP."""
    ethertype, off = struct.unpack_from("!H", frame, 12)[0], 14
    while ethertype in reference.VLAN_TPIDS:
        ethertype, off = struct.unpack_from("!H", frame, off + 2)[0], off + 4
    return ethertype, off


def source(frame):
    """The source address of an IP frame (reference.parse says IP)."""
    ethertype, off = l3_offset(frame)
    if ethertype == reference.ETH_P_IP:
        return ipaddress.IPv4Address(frame[off + 12:off + 16])
    return ipaddress.IPv6Address(frame[off + 8:off + 24])


def network(text):
    """A prefix as xdp-block reads it: a bare address is a /32 or /128."""
    return ipaddress.ip_network(text, strict=True)


def longest(networks, address):
    """The longest network of @networks holding @address (same family
    only: an IPv4-mapped IPv6 address is not in any IPv4 network)."""
    best = None
    for net in networks:
        if net.version == address.version and address in net:
            if best is None or net.prefixlen > best.prefixlen:
                best = net
    return best


class Lists:
    def __init__(self, block=(), allow=()):
        self.block = {network(p) for p in block}
        self.allow = {network(p) for p in allow}

    def decide(self, frame):
        parsed = reference.parse(frame)
        if parsed.key == reference.KEY_MALFORMED:
            return Decision("DROP", "malformed")
        if parsed.key == reference.KEY_NON_IP:
            return Decision("PASS", "passed")
        src = source(frame)
        hit = longest(self.allow, src)
        if hit is not None:  # an allowed source is never dropped
            return Decision("PASS", "allowed", ("allow", hit))
        hit = longest(self.block, src)
        if hit is not None:
            return Decision("DROP", "blocked", ("block", hit))
        return Decision("PASS", "passed")

    def check(self, address):
        """What `xdp-block check ADDR` prints."""
        address = ipaddress.ip_address(address)
        hit = longest(self.allow, address)
        if hit is not None:
            return f"allowed by {hit}"
        hit = longest(self.block, address)
        if hit is not None:
            return f"blocked by {hit}"
        return "not listed"


class Tally:
    """Expected counters: per (list, network) and per total."""

    def __init__(self):
        self.rules = {}
        self.totals = {}

    def add(self, decision, nbytes):
        for table, key in ((self.totals, decision.total), (self.rules, decision.rule)):
            if key is None:
                continue
            entry = table.setdefault(key, {"packets": 0, "bytes": 0})
            entry["packets"] += 1
            entry["bytes"] += nbytes
