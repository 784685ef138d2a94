# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""End to end: blocklist attached with xdp-attach to the server's veth, in
native and in generic mode, its list changed with xdp-block while it runs.

The client has two addresses per family, one of which gets blocked: HTTP
and ping from that one fail, from the other they work, over IPv4 and IPv6;
`add` and `del` act without a re-attach (the program id never changes), and
`list` counts exactly the pings the blocked address sent.  The maps live in
a private bpffs (TC_BPF_MNT), for xdp-attach's `ip` and xdp-block alike.
"""

import pathlib
import re
import subprocess

import pytest

from ipxdp import paths
from ipxdp.netns import PrivateBpffs, VethPair, wait_for

PYTHON = paths.PYTHON
HTTP_PORT = 8000
PAGE = b"ipxdp blocklist end-to-end page\n"
OTHER4, BLOCKED4 = "10.199.0.1", "10.199.0.11"
OTHER6, BLOCKED6 = "fd00:199::1", "fd00:199::11"
PINGS = 5
# Echo requests as XDP sees them: Ethernet 14 + IP header + ICMP 8 + 56 data.
PING4_FRAME, PING6_FRAME = 14 + 20 + 8 + 56, 14 + 40 + 8 + 56


@pytest.fixture
def setup(tmp_path):
    with PrivateBpffs() as fs, VethPair("ipxdp-ble2e", ip4=(OTHER4, "10.199.0.2"),
                                        ip6=(OTHER6, "fd00:199::2")) as net:
        c, s = net.client, net.server
        c.ip("addr", "add", f"{BLOCKED4}/24", "dev", c.dev)
        c.ip("addr", "add", f"{BLOCKED6}/64", "dev", c.dev, "nodad")
        # Fixed neighbours: no ARP or neighbour discovery from the blocked
        # addresses, so the only frames they send are the ones counted.
        for addr in (s.ip4, s.ip6):
            c.ip("neigh", "replace", addr, "lladdr", s.mac, "dev", c.dev, "nud", "permanent")
        for addr in (OTHER4, BLOCKED4, OTHER6, BLOCKED6):
            s.ip("neigh", "replace", addr, "lladdr", c.mac, "dev", s.dev, "nud", "permanent")
        (tmp_path / "page.txt").write_bytes(PAGE)
        s.popen([PYTHON, "-m", "http.server", str(HTTP_PORT), "--bind", "::", "--directory", str(tmp_path)])
        assert wait_for(lambda: f":{HTTP_PORT} " in s.run(
            ["ss", "-Hltn", "sport", "=", f":{HTTP_PORT}"]).stdout, timeout=10), "no http.server"
        yield fs, net


def http(net, src, max_time):
    """curl from @src to the server (same family); (exit code, body)."""
    dst = f"[{net.server.ip6}]" if ":" in src else net.server.ip4
    res = subprocess.run(net.client.command(["curl", "-g", "-sS", "--interface", src, "--max-time",
                                             str(max_time), "-o", "-", f"http://{dst}:{HTTP_PORT}/page.txt"]),
                         capture_output=True, timeout=max_time + 10)
    return res.returncode, res.stdout


def ping(net, src, count=1):
    dst = net.server.ip6 if ":" in src else net.server.ip4
    return net.client.run(["ping", "-q", "-c", str(count), "-i", "0.05", "-W", "1", "-I", src, dst],
                          timeout=30).returncode


def reachable(net, src):
    """(HTTP works, ping works) from @src."""
    rc, body = http(net, src, 1.5)
    return (rc, body) == (0, PAGE), ping(net, src) == 0


def prog_id(net):
    return net.server.xdp()["prog"]["id"]


@pytest.mark.parametrize("mode", ["native", "generic"])
def test_blocked_source_cannot_reach_the_server(setup, mode):
    fs, net = setup
    for src in (OTHER4, BLOCKED4, OTHER6, BLOCKED6):
        assert reachable(net, src) == (True, True), src

    res = net.server.run([str(paths.script("xdp-attach")), "--mode", mode, net.server.dev,
                          str(paths.obj("blocklist"))], env=fs.env)
    assert res.returncode == 0, res.stderr
    m = re.fullmatch(rf"{net.server.dev}: blocklist attached \({mode}, multi-buffer, prog id (\d+)\)\n", res.stdout)
    assert m, res.stdout
    attached = int(m.group(1))
    assert fs.pins() == ["ipxdp_allow", "ipxdp_block", "ipxdp_counters", "ipxdp_totals", "ipxdp_v4"]
    for src in (OTHER4, BLOCKED4, OTHER6, BLOCKED6):  # nothing listed yet
        assert reachable(net, src) == (True, True), src

    fs.block("add", BLOCKED4, f"{BLOCKED6}/128", check=True)
    for src, works in ((OTHER4, True), (BLOCKED4, False), (OTHER6, True), (BLOCKED6, False)):
        assert reachable(net, src) == (works, works), src

    # The counters: a fresh entry (deleted and added again), then exactly
    # PINGS echo requests from each blocked address.
    fs.block("del", BLOCKED4, BLOCKED6, check=True)
    fs.block("add", BLOCKED4, BLOCKED6, check=True)
    assert ping(net, BLOCKED4, PINGS) != 0
    assert ping(net, BLOCKED6, PINGS) != 0
    listed = {e["prefix"]: (e["packets"], e["bytes"]) for e in fs.lists()["block"]}
    assert listed == {f"{BLOCKED4}/32": (PINGS, PINGS * PING4_FRAME),
                      f"{BLOCKED6}/128": (PINGS, PINGS * PING6_FRAME)}
    assert fs.block("check", BLOCKED4, check=True).stdout == f"blocked by {BLOCKED4}/32\n"

    # An allow entry overrides the block, and del gives the address back.
    fs.block("add", "--allow", "10.199.0.0/24", check=True)
    assert reachable(net, BLOCKED4) == (True, True)
    fs.block("del", "--allow", "10.199.0.0/24", check=True)
    assert reachable(net, BLOCKED4) == (False, False)
    fs.block("del", BLOCKED4, BLOCKED6, check=True)
    for src in (OTHER4, BLOCKED4, OTHER6, BLOCKED6):
        assert reachable(net, src) == (True, True), src

    assert prog_id(net) == attached, "the program was never re-attached"
    res = net.server.run([str(paths.script("xdp-detach")), net.server.dev])
    assert res.returncode == 0, res.stderr
    assert pathlib.Path(fs.globals / "ipxdp_block").exists(), "the list outlives the detach"
