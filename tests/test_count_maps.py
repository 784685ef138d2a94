# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""count's map is not pinned: count attached with plain `ip` on two
interfaces keeps two independent sets of counters."""

import json

from ipxdp import paths
from ipxdp.netns import VethPair


def icmp_packets(ns):
    res = ns.run([paths.script("xdp-stats"), "--once", "--json", ns.dev], check=True)
    return json.loads(res.stdout)["protocols"].get("icmp", {}).get("packets", 0)


def map_ids(ns):
    (link,) = json.loads(ns.run(["ip", "-j", "link", "show", "dev", ns.dev], check=True).stdout)
    prog = json.loads(ns.run(["bpftool", "-j", "prog", "show", "id", str(link["xdp"]["prog"]["id"])],
                             check=True).stdout)
    return prog["map_ids"]


def test_two_interfaces_two_sets_of_counters():
    with VethPair("ipxdp-maps") as net:
        c, s = net.client, net.server
        for ns in (s, c):
            ns.ip("link", "set", "dev", ns.dev, "xdpdrv", "obj", str(paths.obj("count")), "sec", "count")
        assert map_ids(c) != map_ids(s)
        c.run(["ping", "-c", "3", "-i", "0.2", s.ip4], check=True)
        # Three requests arrived at the server, three replies at the client.
        assert (icmp_packets(s), icmp_packets(c)) == (3, 3)
        # Reattach on the client: a fresh map there, the server's untouched.
        c.ip("link", "set", "dev", c.dev, "xdpdrv", "off")
        c.ip("link", "set", "dev", c.dev, "xdpdrv", "obj", str(paths.obj("count")), "sec", "count")
        assert icmp_packets(c) == 0
        c.run(["ping", "-c", "2", "-i", "0.2", s.ip4], check=True)
        assert (icmp_packets(s), icmp_packets(c)) == (5, 2)
