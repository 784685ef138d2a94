# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""The blocklist's live bench: live.py's method with sources spread.

The generator is spread-redirect (bench/progs/spread.c), one loaded copy
per source set, each giving every frame the next of its SOURCES source
addresses before redirecting it out of the veth, as gen-redirect does.
Every configuration has a receiver namespace of its own: the floor and
the blocklist native (ip, with the list's bpffs as TC_BPF_MNT), xdp-filter
held by a child process (live.holder), the nftables set rule on ingress
and the iptables rule with its ipset on raw PREROUTING (GRO on, as
live.py's netfilter rules).  Each round pairs every configuration with a
run of the floor fed by the same generator copy; after every round each
receiver's counters must account for every frame sent to it, and the
iptables rule must have matched every one.
"""

import os
import socket
import time

import live
import packets
import peers
import report
import spread
import timedrun
from host import BenchError
from ipxdp import bpf, paths

FLOOR = ("build/bench/floor.o", "floor")


def gen_worker(conn, ns_path, cpu, sources, hold_devs):
    """Child process: the live generator, as live.worker, but one
    spread-redirect per source set (@sources: {set: bytes}), each held on
    one of @hold_devs.  Messages: ("prep", key, set, dev, frame), ("runs",
    [(key, frames, warm)]), ("quit",)."""
    objs, links = [], []
    try:
        bpf.setns(ns_path)
        timedrun.pin(cpu)
        fds = {}
        for (name, data), dev in zip(sources.items(), hold_devs):
            objs.append(spread.load(data))
            fds[name] = objs[-1].prog_fd("spread-redirect")
            links.append(bpf.hold(fds[name], dev))
        runs = {}
        while True:
            try:
                msg = conn.recv()
            except EOFError:
                break
            if msg[0] == "quit":
                break
            if msg[0] == "prep":
                _, key, name, dev, frame = msg
                runs[key] = timedrun.TimedRun(fds[name], frame, 1, live_ifindex=socket.if_nametoindex(dev),
                                              batch_size=live.BATCH)
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
    except (OSError, BenchError) as e:
        conn.send(("error", str(e)))
    finally:
        for fd in links:
            os.close(fd)
        for o in objs:
            o.close()
        conn.close()


def _rule_packets(ns):
    """Packets the first rule of the raw table's PREROUTING chain matched."""
    out = ns.run(["iptables", "-t", "raw", "-nvxL", "PREROUTING"], check=True).stdout.splitlines()
    return int(out[2].split()[0])


class LiveBench:
    """The receivers (one namespace each), the generator child; run rounds, close."""

    def __init__(self, configs, nss, tx, fs, lists, exact, obj, start_pinned, start, log):
        """@configs: [(name, label, how it drops, list, sources)] (see
        blocklist.LIVE), the floor first; @lists: the blocklist.Lists; the
        blocklist @obj is attached with ip, xdp-filter is given the
        addresses @exact."""
        self.tx, self.fs, self.obj = tx, fs, obj
        self.configs = configs
        self.kinds = {n: k for n, _, k, _, _ in self.configs}
        self.list_of = {n: lst for n, _, _, lst, _ in self.configs}
        self.set_of = {n: (lst, src) for n, _, _, lst, src in self.configs if lst}
        self.rx, self.holders, self.setup_s = {}, [], {}
        self.conn = None
        files = {}
        for i, (name, _, kind, lst, _) in enumerate(self.configs):
            rns = nss.add(f"bl-{name}")
            tdev, smac, dmac = f"tx-bl{i}", f"02:00:00:bf:{0x10 + i:02x}:01", f"02:00:00:bf:{0x10 + i:02x}:02"
            tx.ip("link", "add", tdev, "address", smac, "type", "veth",
                  "peer", "name", "rx", "address", dmac, "netns", rns.name)
            rns.ip("addr", "add", "198.18.0.2/32", "dev", "rx")
            rns.ip("link", "set", "dev", "rx", "up")
            tx.ip("link", "set", "dev", tdev, "up")
            self.rx[name] = (rns, tdev, smac, dmac)
            t0 = time.monotonic()
            if name == "floor" or name.startswith("blocklist-"):
                self._attach(name)
            elif name.startswith("xdp-filter-ip"):
                conn = start(live.holder, rns.path, peers.xdp_filter_ip(exact, expect=None), "rx")
                live._reply(conn)
                self.holders.append(conn)
            else:
                rns.run(["ethtool", "-K", "rx", "gro", "on"], check=True)
                if name.startswith("nft-set"):
                    files.setdefault(("nft", lst), lists.file(f"{lst}.nft", lists.lists[lst].nft("rx")))
                    rns.run(["nft", "-f", files["nft", lst]], check=True, timeout=300)
                else:
                    files.setdefault(("ipset", lst), lists.file(f"{lst}.ipset", lists.lists[lst].ipset()))
                    rns.run(["ipset", "restore", "-file", files["ipset", lst]], check=True, timeout=300)
                    rns.run(["iptables", "-t", "raw", "-A", "PREROUTING", "-m", "set", "--match-set",
                             "blocked", "src", "-j", "DROP"], check=True)
            if lst and not name.startswith("blocklist-"):
                self.setup_s[name] = round(time.monotonic() - t0, 2)
                log(f"blocklist: {name} set up in {self.setup_s[name]:.1f} s")
        sets = sorted(set(self.set_of.values()))
        self.conn = start_pinned(gen_worker, tx.path, {s: lists.sources[s] for s in sets},
                                 [f"blg{i}" for i in range(len(sets))])
        for name, (rns, tdev, smac, dmac) in self.rx.items():
            frame = packets.live_frame(smac, dmac, live.PORT)
            if name == "floor":
                for s in sets:  # the floor is paired with each configuration through its sources
                    self._call("prep", "floor@%s/%s" % s, s, tdev, frame)
            else:
                self._call("prep", name, self.set_of[name], tdev, frame)
        self.frames, self.retried = {}, 0

    def _attach(self, name):
        rns = self.rx[name][0]
        if name == "floor":
            rns.ip("-force", "link", "set", "dev", "rx", "xdpdrv", "obj", str(paths.ROOT / FLOOR[0]),
                   "sec", FLOOR[1])
        else:
            self.fs.run(["ip", "-force", "link", "set", "dev", "rx", "xdpdrv", "obj", self.obj,
                         "sec", "blocklist"], self.list_of[name], ns=rns, what="attaching the blocklist")

    def _call(self, *msg):
        self.conn.send(msg)
        try:
            reply = self.conn.recv()
        except EOFError:
            raise BenchError("the blocklist generator process died") from None
        if reply[0] == "error":
            raise BenchError(f"blocklist generator: {reply[1]}")
        return reply[1:]

    def _floor_key(self, name):
        return "floor@%s/%s" % self.set_of[name]

    def run_set(self, items, sent):
        """As live.Live.run_set."""
        for _ in range(live.RETRIES):
            results = self._call("runs", [(n, f, live.WARM) for n, f in items])[0]
            for (n, f), (retval, _, _) in zip(items, results):
                sent[n] = sent.get(n, 0) + f + live.WARM
                if retval != 0:
                    raise BenchError(f"generator run for {n} returned {retval}")
            if not any(pre for _, _, pre in results):
                break
            self.retried += 1
        return [ns / f for (_, f), (_, ns, _) in zip(items, results)]

    def _counters(self, name):
        c = live.counters(self.rx[name][0], "rx")
        if self.kinds.get(name) == "prerouting":
            c["rule"] = _rule_packets(self.rx[name][0])
        return c

    def check(self, before, sent):
        """As live.Live.check (the floor's runs under every floor@ key); an
        ipset rule must also have matched every frame."""
        total = {}
        for key, n in sent.items():
            name = "floor" if key.startswith("floor@") else key
            total[name] = total.get(name, 0) + n
        now = dict(before)
        for name, n in total.items():
            after = self._counters(name)
            for _ in range(50):
                if after["frames"] - before[name]["frames"] >= n:
                    break
                time.sleep(0.01)
                after = self._counters(name)
            live._check(name, self.kinds[name], {k: v for k, v in before[name].items() if k != "rule"},
                        {k: v for k, v in after.items() if k != "rule"}, n)
            if "rule" in after and after["rule"] - before[name]["rule"] != n:
                raise BenchError(f"{name}: the ipset rule matched {after['rule'] - before[name]['rule']} "
                                 f"of {n} frames")
            now[name] = after
        return now

    def calibrate(self, run_s, probe):
        self.counters = {n: self._counters(n) for n in self.rx}
        keys = [n for n in self.rx if n != "floor"] + [self._floor_key(n) for n in self.rx if n != "floor"]
        for key in dict.fromkeys(keys):
            sent = {}
            per = min(self.run_set([(key, probe)] * 3, sent))
            self.counters = self.check(self.counters, sent)
            self.frames[key] = max(10000, int(run_s * 1e9 / per) // 1000 * 1000)
        return dict(self.frames)

    def reload(self, rng):
        names = [n for n in self.rx if n == "floor" or n.startswith("blocklist-")] + ["holders"]
        rng.shuffle(names)
        for n in names:
            if n == "holders":
                for conn in self.holders:
                    conn.send(("reload",))
                    live._reply(conn)
            else:
                self._attach(n)

    def round(self, rnd):
        """As live.Live.round: {config: (floor ns, ns)}."""
        names = [n for n in self.rx if n != "floor"]
        k = rnd % len(names)
        out, sent = {}, {}
        for name in names[k:] + names[:k]:
            fk = self._floor_key(name)
            pair = [(fk, self.frames[fk]), (name, self.frames[name])]
            if rnd % 2:
                pair.reverse()
            ns = dict(zip((n for n, _ in pair), self.run_set(pair, sent)))
            out[name] = (ns[fk], ns[name])
        self.counters = self.check(self.counters, sent)
        return out

    def close(self):
        for conn in [c for c in [self.conn] + self.holders if c]:
            try:
                conn.send(("quit",))
            except OSError:
                pass


def figures(configs, rounds, frames, busy, retried):
    out = {"rounds": len(rounds), "batch_size": live.BATCH, "configs": {}, "ratios": {}}
    floor_all = [pair[0] for r in rounds for pair in r.values()]
    for name, label, _, lst, src in configs:
        if name == "floor":
            ns = floor = floor_all
        else:
            floor, ns = [r[name][0] for r in rounds], [r[name][1] for r in rounds]
        out["configs"][name] = {
            "label": label, "list": lst, "sources": src,
            "frames_per_run": frames.get(name, frames.get("floor@100k/listed")), "runs": len(ns),
            "mpps": report.summary([1e3 / x for x in ns], 3),
            "ns_per_frame": report.summary(ns),
            "over_floor_ns": report.summary(report.paired(ns, floor, lambda x, y: x - y)),
            "rate_vs_floor": report.summary(report.paired(floor, ns, lambda f, x: f / x), 3),
        }
    # The blocklist's frames per second over each other configuration of
    # its list, from two runs of the same round: > 1, the blocklist drops more.
    for name, _, _, lst, _ in configs:
        for bl in (f"blocklist-{lst}", f"blocklist-{lst}-copy"):
            if lst and name != bl and not name.startswith("blocklist-") and bl in out["configs"]:
                out["ratios"][f"{bl}/{name}"] = report.summary(
                    [r[name][1] / r[bl][1] for r in rounds], 3)
    out["busy_other_cpus"] = [round(b, 3) for b in busy]
    out["preempted_runs_rerun"] = retried
    out["raw_ns_per_frame"] = [{n: [round(v, 2) for v in pair] for n, pair in r.items()} for r in rounds]
    return out
