# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""`xdp-block load` replaces a list atomically, under load.

1. A flood from an address that both the old and the new list block, while
   50 loads of two alternating files run: not one flood frame gets past XDP
   (an nftables netdev ingress counter behind it reads 0), and an address
   only the new list holds is dropped as soon as load returns.  The same
   flood and counter see frames leak through a reload that is not atomic
   (flush, then add), so the test can fail.
2. Two large lists with nothing in common, and a prober that keeps running
   frames from sources only one of them holds: each probe says which list
   it saw, and across N loads that may change at most N times.  A flood
   from an address in both lists could not see an in-place update that
   adds the new entries before it deletes the old ones; the prober does,
   and the negative control shows it.
"""

import ipaddress
import json
import threading
import time

import pytest

from ipxdp import paths, wire
from ipxdp.bpf import XDP_DROP, XDP_PASS
from ipxdp.netns import PrivateBpffs, namespaces
from ipxdp.sender import Sender, senders

OBJECT = paths.obj("blocklist")
FLOODER = "198.51.100.5"
LOADS = 50


def udp4(src, dst="10.200.0.2", dst_mac=wire.DST_MAC, src_mac=wire.SRC_MAC):
    return wire.eth(wire.ETH_P_IP, dst=dst_mac, src=src_mac) + wire.ipv4(
        wire.UDP, wire.udp(9, payload=b"ipxdp" * 4), src=wire.ip4(src), dst=wire.ip4(dst))


def prefixes(first_octet, count):
    """@count distinct /24s under first_octet.0.0.0/8."""
    return [f"{first_octet}.{i // 256}.{i % 256}.0/24" for i in range(count)]


def nft_fresh(ns, table, dev, src):
    ns.run(["nft", "-f", "-"], check=True, input=(
        f"table netdev {table} {{\n"
        f"  chain ingress {{ type filter hook ingress device \"{dev}\" priority 0; "
        f"ip saddr {src} counter; }}\n"
        f"}}\n"))


def nft_packets(ns, table):
    out = json.loads(ns.run(["nft", "-j", "list", "table", "netdev", table], check=True).stdout)
    (counter,) = [e["counter"] for item in out["nftables"] if "rule" in item
                  for e in item["rule"]["expr"] if "counter" in e]
    return counter["packets"]


def flood_while(tx, rx, frame, action, table):
    """Floods @frame from CPU 1 while @action() runs; returns (frames seen
    behind XDP, the sender's report, action's result)."""
    nft_fresh(rx, table, "rcv", FLOODER)
    with senders() as procs:
        procs.append(Sender(tx, "snd", cpu=1, flood=frame, seconds=300))
        before = tx.tx_packets("snd")
        deadline = time.monotonic() + 10
        while tx.tx_packets("snd") < before + 1000:
            assert time.monotonic() < deadline, "the flood did not start"
            time.sleep(0.01)
        result = action()
        report = procs[0].stop()
    time.sleep(0.1)
    return nft_packets(rx, table), report, result


@pytest.fixture
def lab(tmp_path):
    with PrivateBpffs() as fs, namespaces("ipxdp-blrl", "tx", "rx", ipv6=False) as (tx, rx):
        tx.add_veth("snd", "rcv", peer=rx)
        yield fs, tx, rx


@pytest.mark.parametrize("mode", ["native", "generic"])
def test_no_window_on_load(lab, tmp_path, mode):
    fs, tx, rx = lab
    frame = udp4(FLOODER, dst_mac=rx.link_mac("rcv"), src_mac=tx.link_mac("snd"))
    # Both block the flooder (through different entries); each has its own
    # prefix besides, and 2,000 others.
    files = {"a": tmp_path / "a.txt", "b": tmp_path / "b.txt"}
    files["a"].write_text("\n".join([f"{FLOODER}/32", "203.0.113.0/24"] + prefixes(10, 2000)) + "\n")
    files["b"].write_text("\n".join(["198.51.100.0/24", "192.0.2.0/24"] + prefixes(11, 2000)) + "\n")
    only = {"a": udp4("203.0.113.9"), "b": udp4("192.0.2.9")}

    # Nothing blocks it yet: the counter sees the flood.
    seen, report, _ = flood_while(tx, rx, frame, lambda: time.sleep(0.3), "ipxdp_open")
    assert report["sent"] > 1000 and seen > 1000, (seen, report)

    fs.block("load", str(files["a"]), check=True)
    res = rx.run([paths.script("xdp-attach"), "--mode", mode, "rcv", OBJECT], env=fs.env)
    assert res.returncode == 0, res.stderr

    with fs.load_object() as probe:
        def loads():
            tx_seen, late = [tx.tx_packets("snd")], []
            for i in range(LOADS):
                new, old = ("b", "a") if i % 2 == 0 else ("a", "b")
                res = fs.block("load", str(files[new]))
                assert res.returncode == 0 and res.stdout.startswith("block: changed"), res
                # As soon as load returns: the new list only.
                verdicts = (probe.run(only[new])[0], probe.run(only[old])[0])
                if verdicts != (XDP_DROP, XDP_PASS):
                    late.append((i, verdicts))
                tx_seen.append(tx.tx_packets("snd"))
            return tx_seen, late

        passed, report, (tx_seen, late) = flood_while(tx, rx, frame, loads, "ipxdp_load")
    steps = [b - a for a, b in zip(tx_seen, tx_seen[1:])]
    assert min(steps) > 0, f"no flood frames during some loads: {steps}"
    assert late == [], "a load returned before its list was in place"
    assert passed == 0, f"{passed} flood frames got past XDP during {LOADS} loads"


@pytest.mark.parametrize("mode", ["native", "generic"])
def test_a_reload_that_is_not_atomic_leaks(lab, mode):
    """The negative control: flush, then add, lets the flood through."""
    fs, tx, rx = lab
    frame = udp4(FLOODER, dst_mac=rx.link_mac("rcv"), src_mac=tx.link_mac("snd"))
    fs.block("add", FLOODER, check=True)
    res = rx.run([paths.script("xdp-attach"), "--mode", mode, "rcv", OBJECT], env=fs.env)
    assert res.returncode == 0, res.stderr

    def flush_then_add():
        for _ in range(5):
            fs.block("flush", check=True)
            fs.block("add", FLOODER, check=True)

    leaked, report, _ = flood_while(tx, rx, frame, flush_then_add, "ipxdp_leak")
    assert report["sent"] > 1000
    assert leaked > 0, "flush-then-add opened no window: the counter behind XDP may be blind"


# --- the prober ----------------------------------------------------------------

class Prober(threading.Thread):
    """Runs frames from two sources, one only list 1 holds and one only
    list 2 holds, through the object, one after the other, until stopped;
    each run says which list the program saw: a drop of source 1 or a pass
    of source 2 is list 1, the opposite list 2."""

    def __init__(self, obj, src1, src2):
        super().__init__(daemon=True)
        self.obj, self.frames = obj, (udp4(src1), udp4(src2))
        self.seen = []
        self.stop_now = threading.Event()

    def run(self):
        i = 0
        while not self.stop_now.is_set():
            verdict, _ = self.obj.run(self.frames[i % 2])
            if i % 2 == 0:
                self.seen.append(1 if verdict == XDP_DROP else 2)
            else:
                self.seen.append(2 if verdict == XDP_DROP else 1)
            i += 1

    def changes(self):
        return sum(1 for a, b in zip(self.seen, self.seen[1:]) if a != b)


@pytest.fixture
def two_lists(tmp_path):
    """Two lists of 20,000 prefixes with nothing in common; the probe
    sources are in the last prefix of each, the last one an update that
    walks the file would add."""
    one, two = prefixes(20, 20_000), prefixes(21, 20_000)
    files = (tmp_path / "one.txt", tmp_path / "two.txt")
    for f, nets in zip(files, (one, two)):
        f.write_text("\n".join(nets) + "\n")
    probes = tuple(str(ipaddress.ip_network(nets[-1]).network_address + 7) for nets in (one, two))
    return files, probes, (one, two)


def test_each_probe_sees_one_whole_list(two_lists):
    (one, two), (src1, src2), _ = two_lists
    with PrivateBpffs() as fs:
        fs.block("load", str(one), check=True)
        with fs.load_object() as obj:
            prober = Prober(obj, src1, src2)
            prober.start()
            loads = 10
            try:
                for i in range(loads):
                    res = fs.block("load", str(two if i % 2 == 0 else one))
                    assert res.returncode == 0 and res.stdout.startswith("block: changed"), res
            finally:
                prober.stop_now.set()
                prober.join()
    assert len(prober.seen) > 1000, "the prober barely ran"
    assert prober.seen[0] == 1 and prober.seen[-1] == 1 + loads % 2
    assert prober.changes() <= loads, f"{prober.changes()} changes of list over {loads} loads"


def test_an_in_place_update_is_seen_half_done(two_lists):
    """The negative control: adding list 2 into the live list and then
    deleting list 1 (xdp-block add, then del) shows both at once."""
    (one, _), (src1, src2), (_, nets2) = two_lists
    with PrivateBpffs() as fs:
        fs.block("load", str(one), check=True)
        nets1 = one.read_text().split()
        with fs.load_object() as obj:
            prober = Prober(obj, src1, src2)
            prober.start()
            try:
                fs.block("add", *nets2, check=True, timeout=300)
                fs.block("del", *nets1, check=True, timeout=300)
            finally:
                prober.stop_now.set()
                prober.join()
    assert prober.changes() > 2, f"{prober.changes()} changes for one in-place update: the prober may be blind"
