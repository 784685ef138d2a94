# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""No window on replace: under a TCP flood, `xdp-attach --force` swaps
drop-tcp and port-9090 (both drop the flood's port) back and forth 50 times
in one mode, and not one flood frame gets past XDP.

"Past XDP" is measured by an nftables netdev ingress rule on the receiver,
which runs after XDP (native and generic alike).  The table is created
fresh for each measurement (an anonymous counter cannot be reset on this
nft).  The sender's counters show that the flood ran through every swap, and
the same set-up replacing by detach-then-attach shows leaks, so the test
can fail."""

import json
import re
import time

import pytest

from ipxdp import paths, wire
from ipxdp.netns import namespaces
from ipxdp.project import MODE_KEYWORDS as KEYWORD
from ipxdp.sender import Sender, senders

FLOOD_PORT = 8000  # neither program lets it through: not TX_PORT
SWAPS = 50
LEAK_ROUNDS = 10


def attach(ns, *args):
    return ns.run([paths.script("xdp-attach"), *args])


def nft_fresh(ns, table, dev):
    """A new netdev table counting the flood's port on @dev's ingress."""
    ns.run(["nft", "-f", "-"], check=True, input=(
        f"table netdev {table} {{\n"
        f"  chain ingress {{ type filter hook ingress device \"{dev}\" priority 0; "
        f"tcp dport {FLOOD_PORT} counter; }}\n"
        f"}}\n"))


def nft_packets(ns, table):
    out = json.loads(ns.run(["nft", "-j", "list", "table", "netdev", table], check=True).stdout)
    (counter,) = [e["counter"] for item in out["nftables"] if "rule" in item
                  for e in item["rule"]["expr"] if "counter" in e]
    return counter["packets"]


def flood_while(tx, frame, action, table, rx):
    """Floods @frame from CPU 1 while @action() runs; returns (what the
    counter behind XDP saw, the sender's report, action's result)."""
    nft_fresh(rx, table, "rcv")
    with senders() as procs:
        procs.append(Sender(tx, "snd", cpu=1, flood=frame, seconds=120))
        before = tx.tx_packets("snd")
        deadline = time.monotonic() + 10
        while tx.tx_packets("snd") < before + 1000:  # the flood is on
            assert time.monotonic() < deadline, "the flood did not start"
            time.sleep(0.01)
        result = action()
        report = procs[0].stop()
    time.sleep(0.1)
    return nft_packets(rx, table), report, result


@pytest.fixture
def pair():
    with namespaces("ipxdp-hwin", "tx", "rx", ipv6=False) as (tx, rx):
        tx.add_veth("snd", "rcv", peer=rx)
        yield tx, rx


@pytest.mark.parametrize("mode", ["native", "generic"])
def test_no_window_on_replace(pair, mode):
    tx, rx = pair
    frame = wire.tcp4(FLOOD_PORT, dst=rx.link_mac("rcv"), src=tx.link_mac("snd"))

    # The counter sees the flood when nothing stops it.
    seen, report, _ = flood_while(tx, frame, lambda: time.sleep(0.3), "ipxdp_open", rx)
    assert report["sent"] > 1000 and seen > 1000, (seen, report)

    res = attach(rx, "--mode", mode, "rcv", paths.obj("drop-tcp"))
    assert res.returncode == 0, res.stderr
    line = re.compile(rf"^rcv: (drop-tcp|port-9090) attached \({mode}, prog id (\d+)\)$")

    def swaps():
        done, ids, tx_seen = [], [], [tx.tx_packets("snd")]
        for i in range(SWAPS):
            prog = "port-9090" if i % 2 == 0 else "drop-tcp"
            res = attach(rx, "--force", "--mode", mode, "rcv", paths.obj(prog))
            assert res.returncode == 0, res.stderr
            m = line.match(res.stdout.strip())
            assert m and m.group(1) == prog, res.stdout
            done.append(prog)
            ids.append(int(m.group(2)))
            tx_seen.append(tx.tx_packets("snd"))
        return done, ids, tx_seen

    passed, report, (done, ids, tx_seen) = flood_while(tx, frame, swaps, "ipxdp_swap", rx)
    assert len(done) == SWAPS and len(set(ids)) == SWAPS, "every swap attached a new program"
    assert [(a.mode, a.id) for a in rx.attached("rcv")] == [(mode, ids[-1])]
    # The flood ran across every swap: the sender sent frames during each.
    steps = [b - a for a, b in zip(tx_seen, tx_seen[1:])]
    assert min(steps) > 0, f"no flood frames during some swaps: {steps}"
    assert report["sent"] >= sum(steps)
    assert passed == 0, f"{passed} flood frames got past XDP during {SWAPS} replacements"


@pytest.mark.parametrize("mode", ["native", "generic"])
def test_detach_then_attach_leaks(pair, mode):
    """The negative control: the same flood and counter catch the window
    that a replace by detach-then-attach opens."""
    tx, rx = pair
    frame = wire.tcp4(FLOOD_PORT, dst=rx.link_mac("rcv"), src=tx.link_mac("snd"))
    obj = paths.obj("drop-tcp")
    rx.ip("link", "set", "dev", "rcv", KEYWORD[mode], "obj", obj, "sec", "drop-tcp")

    def detach_attach():
        for _ in range(LEAK_ROUNDS):
            rx.ip("link", "set", "dev", "rcv", KEYWORD[mode], "off")
            rx.ip("link", "set", "dev", "rcv", KEYWORD[mode], "obj", obj, "sec", "drop-tcp")

    leaked, report, _ = flood_while(tx, frame, detach_attach, "ipxdp_leak", rx)
    assert report["sent"] > 1000
    assert leaked > 0, "detach-then-attach opened no window: the counter behind XDP may be blind"
