# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Throughput with live frames, against what users would pick instead.

The generator is gen-redirect run with BPF_F_TEST_XDP_LIVE_FRAMES in the
sender namespace: each frame is redirected out of one end of a veth pair
and arrives at the other end, in the namespace of one configuration:

  floor             XDP_DROP only, native XDP
  drop-tcp-native   drop-tcp, native XDP
  drop-tcp-generic  drop-tcp, generic XDP          (GRO on, see below)
  nft-ingress       nftables netdev ingress rule   (GRO on)
  nft-prerouting    nftables inet prerouting rule  (GRO on)
  iptables-raw      iptables raw PREROUTING rule   (GRO on)

Redirected frames reach a veth only if it has NAPI: a native XDP program,
or GRO on.  Every configuration has its own fresh namespace, so no other
configuration's netfilter hooks stay registered on its path.  The frame is
a TCP SYN to the receiver's MAC and address from an address it has no
route to (a SYN that reached TCP would get no RST out).

On a small machine the receiver runs on the generator's CPU, right after
each batch, so the time of a run is the time to generate *and* receive its
frames: "ns per frame" is that sum, the same generator cost in every
configuration.  Each round runs every configuration once, in a rotated
order; every ratio is taken between two configurations of the same round.
After every run the receiver's counters must account for every frame.
"""

import os
import re
import socket
import time

import timedrun
from host import BenchError
from ipxdp import bpf, paths

PORT = 5201
BATCH = 64  # frames per batch: the veth ring holds 256
RETRIES = 5
WARM = 1000  # untimed frames before each timed run

# name, label, how it drops (what the counters must show)
CONFIGS = [
    ("floor", "floor (XDP_DROP only), native", "xdp"),
    ("drop-tcp-native", "drop-tcp, native XDP", "xdp"),
    ("drop-tcp-generic", "drop-tcp, generic XDP", "early"),
    ("nft-ingress", "nftables netdev ingress", "early"),
    ("nft-prerouting", "nftables inet prerouting", "prerouting"),
    ("iptables-raw", "iptables raw PREROUTING", "prerouting"),
]
LABELS = {name: label for name, label, _ in CONFIGS}


def _mac(i, end):
    return f"02:00:00:be:{0x10 + i:02x}:{end:02x}"


def _setup_config(name, ns, dev):
    """Make namespace @ns (an ipxdp.netns.Namespace) drop the flood on @dev
    the way @name does."""
    drop_tcp = str(paths.ROOT / "build" / "drop-tcp.o")
    floor = str(paths.ROOT / "build" / "bench" / "floor.o")
    if name == "floor":
        ns.ip("link", "set", "dev", dev, "xdpdrv", "obj", floor, "sec", "floor")
        return
    if name == "drop-tcp-native":
        ns.ip("link", "set", "dev", dev, "xdpdrv", "obj", drop_tcp, "sec", "drop-tcp")
        return
    # No native program: GRO gives the veth the NAPI instance that
    # redirected frames need.
    ns.run(["ethtool", "-K", dev, "gro", "on"], check=True)
    if name == "drop-tcp-generic":
        ns.ip("link", "set", "dev", dev, "xdpgeneric", "obj", drop_tcp, "sec", "drop-tcp")
    elif name == "nft-ingress":
        ns.run(["nft", "-f", "-"], check=True, input=(
            "table netdev ipxdp_bench {\n"
            f"  chain ingress {{ type filter hook ingress device \"{dev}\" priority 0;\n"
            f"    tcp dport {PORT} drop\n  }}\n}}\n"))
    elif name == "nft-prerouting":
        ns.run(["nft", "-f", "-"], check=True, input=(
            "table inet ipxdp_bench {\n"
            "  chain prerouting { type filter hook prerouting priority 0;\n"
            f"    tcp dport {PORT} drop\n  }}\n}}\n"))
    elif name == "iptables-raw":
        ns.run(["iptables", "-t", "raw", "-A", "PREROUTING",
                "-p", "tcp", "--dport", str(PORT), "-j", "DROP"], check=True)
    else:
        raise ValueError(name)


def counters(ns, dev):
    """The receiver's frame counters: NAPI frames, native XDP drops, and IP
    frames received and delivered (/proc/net is the reader's namespace's)."""
    out = ns.run(["sh", "-c", 'ethtool -S "$1" && cat /proc/net/snmp', "sh", dev], check=True).stdout
    c = {"frames": 0, "xdp_drops": 0}
    for m in re.finditer(r"rx_queue_\d+_xdp_(packets|drops): (\d+)", out):
        c["frames" if m.group(1) == "packets" else "xdp_drops"] += int(m.group(2))
    ip = [line.split()[1:] for line in out.splitlines() if line.startswith("Ip: ")]
    if len(ip) != 2:
        raise BenchError(f"cannot read IP counters in {ns.name}")
    snmp = dict(zip(ip[0], (int(v) for v in ip[1])))
    c["ip_in"], c["ip_delivered"] = snmp["InReceives"], snmp["InDelivers"]
    return c


def _check(name, kind, before, after, sent):
    d = {k: after[k] - before[k] for k in after}
    if d["frames"] != sent:
        raise BenchError(f"{name}: the receiver got {d['frames']} of {sent} frames")
    want = {"xdp": {"xdp_drops": sent, "ip_in": 0},
            "early": {"xdp_drops": 0, "ip_in": 0},
            "prerouting": {"xdp_drops": 0, "ip_in": sent, "ip_delivered": 0}}[kind]
    for k, v in want.items():
        if d[k] != v:
            raise BenchError(f"{name}: {k} went up by {d[k]} for {sent} frames, expected {v}: "
                             "the configuration does not drop the flood where it should")


def worker(conn, ns_path, cpu, gen_path, hold_dev):
    """Child process: the generator, pinned at real-time priority (see
    timedrun.pin), in the sender namespace (at @ns_path).
    Messages: ("prep", key, dev, frame), ("runs", [(key, frames, warm)]),
    ("quit",)."""
    try:
        bpf.setns(ns_path)
        timedrun.pin(cpu)
        gen = bpf.BpfObject(gen_path)
        fd = gen.prog_fd("gen-redirect")
        link = bpf.hold(fd, hold_dev)
        runs = {}
        while True:
            try:
                msg = conn.recv()
            except EOFError:  # the driver is gone
                break
            if msg[0] == "quit":
                break
            if msg[0] == "prep":
                _, key, dev, frame = msg
                runs[key] = timedrun.TimedRun(fd, frame, 1, live_ifindex=socket.if_nametoindex(dev),
                                              batch_size=BATCH)
                conn.send(("ok",))
            elif msg[0] == "runs":
                out = []
                for key, frames, warm in msg[1]:
                    if warm:
                        runs[key].set_repeat(warm)
                        runs[key].call()
                    runs[key].set_repeat(frames)
                    out.append(runs[key].call())
                conn.send(("ok", out))
        os.close(link)
    except (OSError, BenchError) as e:
        conn.send(("error", str(e)))
    finally:
        conn.close()


class Live:
    """The sender namespace, one receiver namespace per configuration, and
    the generator child; the driver creates it, runs rounds, closes it."""

    def __init__(self, namespaces, tx, start_worker):
        """@namespaces: the run's ipxdp.netns.Namespaces; @tx: the sender
        namespace in it, created by the driver (micro uses it too)."""
        self.tx = tx
        self.rx = {}
        for i, (name, _, _) in enumerate(CONFIGS):
            rns = namespaces.add(name)
            tdev = f"tx-{i}"
            tx.ip("link", "add", tdev, "address", _mac(i, 1), "type", "veth",
                  "peer", "name", "rx", "address", _mac(i, 2), "netns", rns.name)
            rns.ip("addr", "add", "198.18.0.2/32", "dev", "rx")
            rns.ip("link", "set", "dev", "rx", "up")
            tx.ip("link", "set", "dev", tdev, "up")
            _setup_config(name, rns, "rx")
            self.rx[name] = (rns, tdev, _mac(i, 1), _mac(i, 2))
        self.conn = start_worker(worker, tx.path, str(paths.ROOT / "build" / "bench" / "gen-redirect.o"),
                                 "hold-gen")
        from packets import live_frame
        for name, (rns, tdev, smac, dmac) in self.rx.items():
            self._call("prep", name, tdev, live_frame(smac, dmac, PORT))
        self.frames = {}
        self.retried = 0

    def _call(self, *msg):
        self.conn.send(msg)
        try:
            reply = self.conn.recv()
        except EOFError:
            raise BenchError("the generator process died") from None
        if reply[0] == "error":
            raise BenchError(f"generator: {reply[1]}")
        return reply[1:]

    def run_set(self, items):
        """Run [(config, frames)] back to back, each after a short warm-up,
        check every receiver's counters, and return ns per frame for each.
        If the generator was preempted during any of them, the whole set
        is run again (up to RETRIES times)."""
        kinds = {n: k for n, _, k in CONFIGS}
        names = list(dict.fromkeys(n for n, _ in items))
        before = {n: counters(self.rx[n][0], "rx") for n in names}
        sent = dict.fromkeys(names, 0)
        for _ in range(RETRIES):
            results = self._call("runs", [(n, f, WARM) for n, f in items])[0]
            for (n, f), (retval, _, _) in zip(items, results):
                sent[n] += f + WARM
                if retval != 0:
                    raise BenchError(f"generator run for {n} returned {retval}")
            if not any(pre for _, _, pre in results):
                break
            self.retried += 1
        for n in names:
            rns = self.rx[n][0]
            after = counters(rns, "rx")
            # NAPI may still be finishing the last batch: give it a moment.
            for _ in range(50):
                if after["frames"] - before[n]["frames"] >= sent[n]:
                    break
                time.sleep(0.01)
                after = counters(rns, "rx")
            _check(n, kinds[n], before[n], after, sent[n])
        return [ns / f for (_, f), (_, ns, _) in zip(items, results)]

    def calibrate(self, run_s, probe):
        """Frames per timed run for each configuration: about @run_s seconds."""
        for name in self.rx:
            per = min(self.run_set([(name, probe)] * 3))
            self.frames[name] = max(10000, int(run_s * 1e9 / per) // 1000 * 1000)
        return dict(self.frames)

    def round(self, rnd):
        """One round: every configuration once, in an order rotated by
        @rnd, each back to back with a run of the floor (before it in even
        rounds, after it in odd ones).  Returns {config: (floor ns, ns)}
        per frame."""
        names = [n for n in self.rx if n != "floor"]
        k = rnd % len(names)
        out = {}
        for name in names[k:] + names[:k]:
            pair = [("floor", self.frames["floor"]), (name, self.frames[name])]
            if rnd % 2:
                pair.reverse()
            ns = dict(zip((n for n, _ in pair), self.run_set(pair)))
            out[name] = (ns["floor"], ns[name])
        return out

    def close(self):
        try:
            self.conn.send(("quit",))
        except OSError:
            pass
