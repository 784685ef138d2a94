# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""The systematic sweep of ipxdp.sweep (every VLAN stack, IHL,
fragment field, IPv6 extension header kind and length, truncation at every
byte from 14) through each built object and the reference classifier; `make
fuzz` runs it next to a million random frames."""

import collections

from ipxdp import differential, project, reference, sweep, wire

SEED = 1


def test_sweep_agrees_with_reference(objs):
    n, found = differential.run_sweep(objs, SEED)
    assert not found, "\n".join(str(d) for d in found[:10])
    assert n == len(sweep.sweep(SEED, objs.tx_port)) == objs.counted()


def test_sweep_reaches_every_edge():
    """What the sweep promises, checked on the frames themselves."""
    tx_port, tx_mac = project.port_9090_config()
    frames = sweep.sweep(SEED, tx_port)
    assert frames == sweep.sweep(SEED, tx_port), "the sweep must be reproducible"
    assert all(14 <= len(f) <= 1514 for _, f in frames)
    families = collections.Counter(fam for fam, _ in frames)
    assert set(families) == {"vlan", "ipv4", "ipv6-one", "ipv6-chain", "truncate"}

    # Every stack of 0-3 tags of both kinds.
    stacks = set()
    for fam, f in frames:
        if fam == "vlan":
            tags, off = [], 12
            while int.from_bytes(f[off:off + 2], "big") in wire.VLAN_TPIDS and off + 4 < len(f):
                tags.append(f[off:off + 2])
                off += 4
            stacks.add(tuple(tags))
    assert len(stacks) == 1 + 2 + 4 + 8

    # IPv4: every IHL and version; every IPv6 extension kind with every length.
    ipv4 = [f for fam, f in frames if fam == "ipv4"]
    assert {f[14] & 0xF for f in ipv4} == set(range(16))
    assert {f[14] >> 4 for f in ipv4} == set(range(16))
    one = {(f[20], f[55]) for fam, f in frames if fam == "ipv6-one" and f[20] != 44}
    assert one == {(k, n) for k in (0, 43, 51, 60) for n in range(256)}

    # Chains of 0-8 extension headers.
    lengths = set()
    for fam, f in frames:
        if fam == "ipv6-chain":
            nh, off, n = f[20], 54, 0
            while nh in wire.IPV6_EXT and off + 8 <= len(f):
                nh, off, n = f[off], off + wire.ext_len(nh, f[off + 1]), n + 1
            lengths.add(n)
    assert lengths == set(range(9))

    # Truncation at every byte from 14 of each base frame.
    cuts = collections.Counter(len(f) for fam, f in frames if fam == "truncate")
    assert min(cuts) == 14 and all(cuts[n] > 0 for n in range(14, 100))
    keys = collections.Counter(reference.parse(f).key for _, f in frames)
    for key in (6, 17, 1, 58, project.KEY_NON_IP, project.KEY_MALFORMED):
        assert keys[key] > 0, (key, keys)
    assert any(reference.port_9090(f, tx_port, tx_mac)[0] == reference.TX for _, f in frames)
