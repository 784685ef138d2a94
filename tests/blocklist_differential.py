# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Differential test of blocklist: random lists x random and mutated frames.

A round draws a block and an allow list (nested prefixes of both families,
/0, /32 and /128 entries, IPv4-mapped IPv6 prefixes), loads them with
xdp-block, and runs frames through blocklist.o: framegen's frames (VLAN
stacks, QinQ, IPv4 options and fragments, IPv6 extension headers,
truncations, flipped bits) with their source address rewritten to one
drawn from the lists (inside a prefix, at its first or last address, or
anywhere).  The object and blocklist_reference.py must agree on every
verdict, on the output bytes, and at the end of the round on every
per-prefix counter and every total.  Everything follows from (seed,
round), so a failure can be replayed.
"""

import ipaddress
import random

import blocklist_reference as ref
from blocklist_env import TOTALS
import framegen
import reference
from bpfrun import VERDICTS


def _v4(r, plen):
    return ipaddress.ip_network((r.getrandbits(32), plen), strict=False)


def _v6(r, plen):
    return ipaddress.ip_network((r.getrandbits(128), plen), strict=False)


def _inside(r, net, plen):
    """A random subnet of @net with prefix length @plen (>= net's)."""
    host = r.getrandbits(net.max_prefixlen - net.prefixlen)
    addr = int(net.network_address) | host
    return ipaddress.ip_network((addr, plen), strict=False)


def random_lists(r):
    """(block, allow): lists of ipaddress networks."""
    roots = [_v4(r, r.choice((8, 12, 16, 20, 24))) for _ in range(r.randrange(2, 6))]
    roots += [_v6(r, r.choice((16, 32, 48, 64))) for _ in range(r.randrange(2, 5))]
    roots.append(ipaddress.ip_network(f"::ffff:{ipaddress.IPv4Address(r.getrandbits(32))}/"
                                      f"{r.choice((104, 112, 120, 128))}", strict=False))
    block = set(roots)
    for _ in range(r.randrange(5, 40)):  # nested inside the roots
        root = r.choice(roots)
        block.add(_inside(r, root, r.randrange(root.prefixlen, root.max_prefixlen + 1)))
    if r.random() < 0.3:
        block.add(ipaddress.ip_network("0.0.0.0/0"))
    if r.random() < 0.3:
        block.add(ipaddress.ip_network("::/0"))
    allow = set()
    for _ in range(r.randrange(0, 8)):  # mostly inside or around blocked ones
        base = r.choice(sorted(block, key=str))
        if r.random() < 0.7 and base.prefixlen < base.max_prefixlen:
            allow.add(_inside(r, base, r.randrange(base.prefixlen + 1, base.max_prefixlen + 1)))
        elif base.prefixlen > 0:
            allow.add(base.supernet(prefixlen_diff=r.randrange(1, base.prefixlen + 1)))
    return sorted(block, key=str), sorted(allow, key=str)


def random_source(r, version, networks):
    """An address of that version: in one of @networks (anywhere, first,
    last), or anywhere at all."""
    mine = [n for n in networks if n.version == version]
    bits = 32 if version == 4 else 128
    if mine and r.random() < 0.85:
        net = r.choice(mine)
        pick = r.random()
        if pick < 0.15:
            return net.network_address
        if pick < 0.3:
            return net.broadcast_address
        host = r.getrandbits(bits - net.prefixlen) if net.prefixlen < bits else 0
        return ipaddress.ip_address(int(net.network_address) | host)
    return ipaddress.ip_address(r.getrandbits(bits)) if version == 4 else \
        ipaddress.IPv6Address(r.getrandbits(128))


def frames(seed, rnd, count, tx_port, networks):
    """(index, frame): framegen's frames, IP ones with a new source."""
    r = random.Random((seed << 20) ^ rnd)
    for i in range(count):
        frame = framegen.frame(seed, rnd * 1_000_000 + i, tx_port)
        if reference.parse(frame).key < reference.KEY_NON_IP:
            ethertype, _ = ref.l3_offset(frame)
            frame = ref.with_source(frame, random_source(r, 4 if ethertype == reference.ETH_P_IP else 6,
                                                         networks))
        yield i, frame


def run_round(fs, obj, seed, rnd, count, tx_port):
    """One round; returns a list of disagreements (strings)."""
    r = random.Random((seed << 8) ^ rnd)
    block, allow = random_lists(r)
    for name, nets in (("block", block), ("allow", allow)):
        args = ["load", "-"] + (["--allow"] if name == "allow" else [])
        fs.block(*args, input="".join(f"{n}\n" for n in nets), check=True)
    lists = ref.Lists([str(n) for n in block], [str(n) for n in allow])
    before = obj.totals()
    tally = ref.Tally()
    found = []
    for i, frame in frames(seed, rnd, count, tx_port, block + allow):
        decision = lists.decide(frame)
        tally.add(decision, len(frame))
        verdict, out = obj.run(frame)
        name = VERDICTS.get(verdict, f"unknown({verdict})")
        if name != decision.verdict or (name == "PASS" and out != frame):
            found.append(f"seed {seed} round {rnd} frame {i}: {name}, reference {decision}\n"
                         f"  frame {frame.hex()}")
    got = {}
    for name, entries in fs.lists().items():
        for e in entries:
            if e["packets"] or e["bytes"]:
                got[(name, ipaddress.ip_network(e["prefix"]))] = {"packets": e["packets"], "bytes": e["bytes"]}
    if got != tally.rules:
        found.append(f"seed {seed} round {rnd}: per-prefix counters {got}, reference {tally.rules}")
    after = obj.totals()
    for name in TOTALS:
        want = tally.totals.get(name, {"packets": 0, "bytes": 0})
        delta = {k: after[name][k] - before[name][k] for k in ("packets", "bytes")}
        if delta != want:
            found.append(f"seed {seed} round {rnd}: total {name} moved by {delta}, reference {want}")
    return found
