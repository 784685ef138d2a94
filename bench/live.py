# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Throughput with live frames, against what users would pick instead.

The generator is gen-redirect run with BPF_F_TEST_XDP_LIVE_FRAMES in the
sender namespace: each frame is redirected out of one end of a veth pair
and arrives at the other end, in the namespace of one configuration:

  floor             XDP_DROP only, native XDP
  drop-tcp-native   drop-tcp, native XDP
  drop-tcp-native-copy  the same again, on a receiver of its own (A/A)
  xdp-filter-native xdp-filter's xdpfilt_alw_tcp.o with a rule dropping TCP
                    to the flood's port, native XDP (loaded by the bench
                    with its maps unpinned, held by a child process)
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
After every round each receiver's counters must account for every frame
sent to it.
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
    ("drop-tcp-native-copy", "drop-tcp again (A/A), native", "xdp"),
    ("xdp-filter-native", "xdp-filter alw_tcp, native XDP", "xdp"),
    ("drop-tcp-generic", "drop-tcp, generic XDP", "early"),
    ("nft-ingress", "nftables netdev ingress", "early"),
    ("nft-prerouting", "nftables inet prerouting", "prerouting"),
    ("iptables-raw", "iptables raw PREROUTING", "prerouting"),
]
LABELS = {name: label for name, label, _ in CONFIGS}


def _mac(i, end):
    return f"02:00:00:be:{0x10 + i:02x}:{end:02x}"


# Native XDP programs loaded with ip: (object, section).  Each is loaded
# afresh (ip -force) before every round, like xdp-filter (see holder), so
# that where the kernel places a program, which moves its cost by a few
# tenths of a ns, is a different draw every round.
NATIVE = {
    "floor": ("build/bench/floor.o", "floor"),
    "drop-tcp-native": ("build/drop-tcp.o", "drop-tcp"),
    "drop-tcp-native-copy": ("build/drop-tcp.o", "drop-tcp"),
}


def holder(conn, ns_path, program, dev):
    """Child process: load @program (a peers.Program) in the namespace at
    @ns_path and
    attach it to @dev with a BPF link; on "reload", load it afresh and
    swap it in (bpf_link_update), until the driver says "quit" or closes
    the pipe."""
    try:
        bpf.setns(ns_path)
        obj = program.load()
        link = bpf.hold(obj.prog_fd(program.section), dev)
        conn.send(("ok",))
        while True:
            try:
                msg = conn.recv()
            except EOFError:
                break
            if msg[0] != "reload":
                break
            new = program.load()
            bpf.update_link(link, new.prog_fd(program.section))
            obj.close()
            obj = new
            conn.send(("ok",))
        os.close(link)
        obj.close()
    except (OSError, KeyError, BenchError) as e:
        conn.send(("error", str(e)))
    finally:
        conn.close()


def _reply(conn):
    try:
        reply = conn.recv()
    except EOFError:
        raise BenchError("the process holding xdp-filter died") from None
    if reply[0] != "ok":
        raise BenchError(f"xdp-filter: {reply[1]}")


def _attach(ns, dev, name):
    path, sec = NATIVE[name]
    ns.ip("-force", "link", "set", "dev", dev, "xdpdrv", "obj", str(paths.ROOT / path), "sec", sec)


def _setup_config(name, ns, dev, start_holder, peer):
    """Make namespace @ns (an ipxdp.netns.Namespace) drop the flood on @dev
    the way @name does; returns the pipe to the process holding its
    program, if any."""
    drop_tcp = str(paths.ROOT / "build" / "drop-tcp.o")
    if name in NATIVE:
        _attach(ns, dev, name)
        return None
    if name == "xdp-filter-native":
        # Not through ip: it would pin the peer's maps on the host.
        conn = start_holder(holder, ns.path, peer, dev)
        _reply(conn)
        return conn
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

    def __init__(self, namespaces, tx, start_worker, start_holder, peer):
        """@namespaces: the run's ipxdp.netns.Namespaces; @tx: the sender
        namespace in it, created by the driver (micro uses it too);
        @start_worker starts the generator (pinned), @start_holder the
        process holding @peer (a peers.Program) on its receiver."""
        self.tx = tx
        self.rx = {}
        self.holders = []
        self.conn = None
        for i, (name, _, _) in enumerate(CONFIGS):
            rns = namespaces.add(name)
            tdev = f"tx-{i}"
            tx.ip("link", "add", tdev, "address", _mac(i, 1), "type", "veth",
                  "peer", "name", "rx", "address", _mac(i, 2), "netns", rns.name)
            rns.ip("addr", "add", "198.18.0.2/32", "dev", "rx")
            rns.ip("link", "set", "dev", "rx", "up")
            tx.ip("link", "set", "dev", tdev, "up")
            held = _setup_config(name, rns, "rx", start_holder, peer)
            if held:
                self.holders.append(held)
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

    def run_set(self, items, sent):
        """Run [(config, frames)] back to back, each after a short warm-up,
        and return ns per frame for each; adds what was sent to each
        configuration to @sent.  If the generator was preempted during any
        of them, the whole set is run again (up to RETRIES times)."""
        for _ in range(RETRIES):
            results = self._call("runs", [(n, f, WARM) for n, f in items])[0]
            for (n, f), (retval, _, _) in zip(items, results):
                sent[n] = sent.get(n, 0) + f + WARM
                if retval != 0:
                    raise BenchError(f"generator run for {n} returned {retval}")
            if not any(pre for _, _, pre in results):
                break
            self.retried += 1
        return [ns / f for (_, f), (_, ns, _) in zip(items, results)]

    def check(self, before, sent):
        """Check that each receiver's counters went up from @before by what
        @sent says it was sent, and dropped it where it should; returns the
        counters now."""
        kinds = {n: k for n, _, k in CONFIGS}
        now = dict(before)
        for n in sent:
            rns = self.rx[n][0]
            after = counters(rns, "rx")
            # NAPI may still be finishing the last batch: give it a moment.
            for _ in range(50):
                if after["frames"] - before[n]["frames"] >= sent[n]:
                    break
                time.sleep(0.01)
                after = counters(rns, "rx")
            _check(n, kinds[n], before[n], after, sent[n])
            now[n] = after
        return now

    def calibrate(self, run_s, probe):
        """Frames per timed run for each configuration: about @run_s seconds."""
        self.counters = {n: counters(self.rx[n][0], "rx") for n in self.rx}
        for name in self.rx:
            sent = {}
            per = min(self.run_set([(name, probe)] * 3, sent))
            self.counters = self.check(self.counters, sent)
            self.frames[name] = max(10000, int(run_s * 1e9 / per) // 1000 * 1000)
        return dict(self.frames)

    def reload(self, rng):
        """Load every native program afresh, in a random order."""
        names = [n for n in self.rx if n in NATIVE] + ["holders"]
        rng.shuffle(names)
        for n in names:
            if n == "holders":
                for conn in self.holders:
                    conn.send(("reload",))
                    _reply(conn)
            else:
                _attach(self.rx[n][0], "rx", n)

    def round(self, rnd):
        """One round: every configuration once, in an order rotated by
        @rnd, each back to back with a run of the floor (before it in even
        rounds, after it in odd ones); then every receiver's counters are
        checked.  Returns {config: (floor ns, ns)} per frame."""
        names = [n for n in self.rx if n != "floor"]
        k = rnd % len(names)
        out, sent = {}, {}
        for name in names[k:] + names[:k]:
            pair = [("floor", self.frames["floor"]), (name, self.frames[name])]
            if rnd % 2:
                pair.reverse()
            ns = dict(zip((n for n, _ in pair), self.run_set(pair, sent)))
            out[name] = (ns["floor"], ns[name])
        self.counters = self.check(self.counters, sent)
        return out

    def close(self):
        for conn in [c for c in [self.conn] + self.holders if c]:
            try:
                conn.send(("quit",))
            except OSError:
                pass
