# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""The blocklist's part of the bench: what a list costs per packet, how
fast xdp-block loads one, and how many frames per second the blocklist
drops next to what users pick instead.

  lists       0, 1,000, 100,000 and 1,000,000 IPv4 prefixes and 10,000
              single addresses (bench/prefixes.py), each loaded with
              xdp-block into a bpffs of its own (bpffs.py)
  load        xdp-block load of 100,000 prefixes, wall time: into an empty
              list, over a list of which it replaces half, and over
              itself (unchanged)
  per-packet  the blocklist on each list, sources spread over the list:
              spread-tail (bench/progs/spread.c) gives every run the next
              of 65,536 listed (or unlisted) sources and tail-calls the
              program; the floor is timed behind spread-tail too, so "over
              the floor" is the lookup's cost alone.  Next to the 10,000
              single addresses, xdp-filter's xdpfilt_alw_ip.o with the same
              addresses.
  live        live frames from spread-redirect, each with the next listed
              source, into: the floor, the blocklist (twice: the A/A),
              an nftables netdev ingress rule `ip saddr @blocked drop`
              with an interval set, and iptables raw PREROUTING `-m set`
              with an ipset hash:net, each holding the same list; and
              the blocklist and xdp-filter with the 10,000 addresses.

The method is the rest of the bench's (micro.py, live.py): fresh loads,
the fastest of short calls, pairs with the floor in the same round,
verdicts and counters checked (blocklist_micro.py, blocklist_live.py;
bpffs.py for the lists' bpffs).  bench.py calls run() and prints
tables(), and puts targets() in its verdict line.
"""

import os
import random
import re
import shutil
import tempfile
import time

import blocklist_live
import blocklist_micro
import host
import live
import packets
import peers
import prefixes
import report
from blocklist_micro import Cell, Target
from bpffs import Bpffs
from host import BenchError
from ipxdp import paths
from ipxdp.bpf import XDP_DROP, XDP_PASS
from prefixes import SOURCES, PrefixList

TARGET = 100000             # the list size the targets are judged at
EXACT = 10000               # single addresses: xdp-filter's filter_ipv4 holds 10,000
# name, prefixes, seed; the million only outside QUICK
LISTS = [("0", 0, 10), ("1k", 1000, 11), ("100k", TARGET, 12), ("1M", 1000000, 13)]
EXACT_LIST = "10k32"
CHANGED_SEED = 14           # the 50,000 prefixes the "half replaced" list brings in
# A call runs every source once (65,536 runs): up to 0.1 s on the million,
# so a cell is the fastest of 2 such calls, and the part runs fewer loads
# (bench.py's --blocklist-loads) and live rounds than the rest, to keep
# make bench within 5 minutes.
MICRO_CALLS = 2
MIN_RATE_VS_PEER = 2.0      # live: blocklist >= 2x the frames per second of nft and ipset
MIN_RATE_VS_FLOOR = 0.5     # live: blocklist >= 0.5x the floor's
MAX_LOAD_S = 2.0            # xdp-block load of TARGET prefixes


DIR_PREFIX = "ipxdp-bench"  # its directories: /tmp/ipxdp-bench-<pid>-{lists,bpffs}-*


def size_label(n):
    return f"{n:,}"


def remove_stale_dirs():
    """Removes the directories of a bench that was killed outright (the
    files of its lists, the empty directory its bpffs was mounted on);
    returns how many."""
    removed = 0
    tmp = tempfile.gettempdir()
    for name in sorted(os.listdir(tmp)):
        m = re.match(re.escape(DIR_PREFIX) + r"-(\d+)-(lists|bpffs)-", name)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            path = os.path.join(tmp, name)
            for f in os.listdir(path) if m.group(2) == "lists" else []:
                os.unlink(os.path.join(path, f))
            os.rmdir(path)
            removed += 1
    return removed


# --- the lists -------------------------------------------------------------

class Lists:
    """The generated lists, their files (in a temporary directory) and the
    sources each part of the bench spreads over them."""

    def __init__(self, quick):
        self.dir = tempfile.mkdtemp(prefix=f"{DIR_PREFIX}-{os.getpid()}-lists-")
        self.lists = {name: PrefixList(name, n, seed) for name, n, seed in LISTS
                      if not (quick and n > TARGET)}
        self.lists[EXACT_LIST] = PrefixList(EXACT_LIST, EXACT, 15, exact=True)
        target = self.lists["100k"]
        self.changed = PrefixList("changed", TARGET // 2, CHANGED_SEED, other=target)
        rng = random.Random(16)
        self.sources = {}
        for name, lst in self.lists.items():
            if lst.count:
                self.sources[name, "listed"] = prefixes.packed(lst.listed(rng))
                self.sources[name, "hot"] = prefixes.packed(lst.hot(rng))
            self.sources[name, "unlisted"] = prefixes.packed(lst.unlisted(rng))

    def file(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def close(self):
        for f in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, f))
        os.rmdir(self.dir)


def _timed(fn):
    t0 = time.monotonic()
    out = fn()
    return out, round(time.monotonic() - t0, 3)


def load_lists(fs, lists, xdp_block, obj, log):
    """Every list into its bpffs with xdp-block; the target size three
    times, timed.  Returns {"load_s": {case: s}, "setup_s": {list: s}}."""
    block = lambda name, path: fs.run([xdp_block, "--object", obj, "load", path], name,  # noqa: E731
                                      what="xdp-block load").stdout
    setup, load = {}, {}
    for name, lst in lists.lists.items():
        path = lists.file(f"{name}.txt", lst.xdp_block())
        if name != "100k":
            _, setup[name] = _timed(lambda: block(name, path))
            continue
        # The target size: a list of as many prefixes into an empty list,
        # then this one (half of them replaced), then this one again.
        first = lst.lines()
        other = lists.file("100k-other.txt", "".join(
            line + "\n" for line in first[:TARGET // 2] + lists.changed.lines()))
        half = f"changed ({TARGET} prefixes: {TARGET // 2} added, {TARGET // 2} deleted, {TARGET // 2} kept)"
        for case, p, want in (("empty", other, f"changed ({TARGET} prefixes: {TARGET} added, 0 deleted"),
                              ("half_replaced", path, half),
                              ("unchanged", path, f"unchanged ({TARGET} prefixes)")):
            out, load[case] = _timed(lambda: block(name, p))
            if want not in out:
                raise BenchError(f"xdp-block load ({case}) said {out.strip()!r}, expected {want!r}")
        setup[name] = load["empty"]
        log(f"blocklist: xdp-block load of {TARGET:,} prefixes: " +
            ", ".join(f"{k.replace('_', ' ')} {v:.2f} s" for k, v in load.items()))
    return {"load_s": load, "setup_s": setup}


# --- per-packet and live ------------------------------------------------------

def micro_spec(lists, obj):
    """(targets, cells) of the per-packet table (see blocklist_micro.py),
    the floor's cell first."""
    xf = peers.xdp_filter_ip([prefixes.dotted(a) for a, _ in lists.lists[EXACT_LIST].prefixes()],
                             expect=None)
    floor, section = blocklist_live.FLOOR
    targets = {"floor": Target("floor", str(paths.ROOT / floor), section),
               "xdp-filter-ip": Target("peer", peer=xf)}
    cells = [Cell("floor", "floor", ("100k", "listed"), XDP_DROP)]
    for name, lst in lists.lists.items():
        targets[name] = Target("blocklist", obj, "blocklist", pin=name)
        kinds = ["unlisted"] if not lst.count else (
            ["listed", "unlisted"] if name == EXACT_LIST else ["listed", "unlisted", "hot"])
        for kind in kinds:
            cells.append(Cell(f"{name}/{kind}", name, (name, kind),
                              XDP_PASS if kind == "unlisted" else XDP_DROP))
    targets["100k-copy"] = Target("blocklist", obj, "blocklist", pin="100k")
    cells.append(Cell("100k-copy/listed", "100k-copy", ("100k", "listed"), XDP_DROP))
    for kind in ("listed", "unlisted"):
        cells.append(Cell(f"xdp-filter-ip/{kind}", "xdp-filter-ip", (EXACT_LIST, kind),
                          XDP_PASS if kind == "unlisted" else XDP_DROP))
    return targets, cells


# The live configurations: name, label, how it drops (live._check), list,
# sources (spread over the list, or one listed address: "hot").
LIVE = [
    ("floor", "floor (XDP_DROP only), native", "xdp", None, None),
    ("blocklist-100k", "blocklist, native", "xdp", "100k", "listed"),
    ("blocklist-100k-copy", "blocklist again (A/A), native", "xdp", "100k", "listed"),
    ("blocklist-100k-hot", "blocklist, one source, native", "xdp", "100k", "hot"),
    ("nft-set-100k", "nftables ingress, interval set", "early", "100k", "listed"),
    ("ipset-100k", "iptables raw + ipset hash:net", "prerouting", "100k", "listed"),
    ("blocklist-1M", "blocklist, native", "xdp", "1M", "listed"),
    ("nft-set-1M", "nftables ingress, interval set", "early", "1M", "listed"),
    ("ipset-1M", "iptables raw + ipset hash:net", "prerouting", "1M", "listed"),
    ("blocklist-10k32", "blocklist, native", "xdp", EXACT_LIST, "listed"),
    ("xdp-filter-ip-10k32", "xdp-filter alw_ip, native", "xdp", EXACT_LIST, "listed"),
]
GEN_SETS = 4  # the generator's source sets: 100k listed and hot, 1M, 10k32
LIST_LABEL = {"100k": f"{TARGET:,} prefixes", "1M": "1,000,000 prefixes", EXACT_LIST: f"{EXACT:,} /32"}
AA_CELLS = ("100k/listed", "100k-copy/listed")  # the per-packet A/A


# --- the part, as bench.py runs it -------------------------------------------

def check_tools():
    """The first tool the part needs that is missing, or None."""
    path = os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin"
    return next((t for t in ("nft", "ipset", "iptables", "bpftool", "nsenter", "ethtool")
                 if not shutil.which(t, path=path)), None)


def run(args, children, nss, tx, log):
    """The whole part; returns its figures."""
    out = {"meta": {}}
    t0 = time.monotonic()
    stale = remove_stale_dirs()
    if stale:
        log(f"blocklist: removed {stale} directories left by a bench that was killed")
    log("blocklist: generating the lists" + (" (QUICK: no 1,000,000 list)" if args.quick else ""))
    lists = Lists(args.quick)
    fs = None
    try:
        fs = Bpffs(children.start, list(lists.lists), f"{DIR_PREFIX}-{os.getpid()}-bpffs-")
        out["meta"]["lists"] = {n: {"prefixes": lst.count, "lengths": lst.lengths()}
                                for n, lst in lists.lists.items()}
        out.update(load_lists(fs, lists, args.xdp_block, args.blocklist_object, log))
        out["meta"]["seconds_setup"] = round(time.monotonic() - t0, 1)

        targets, cells = micro_spec(lists, args.blocklist_object)
        # Devices to hold the cells' programs and the live generator's copies on.
        devs = [f"blh{i}" for i in range(len(cells))] + [f"blg{i}" for i in range(GEN_SETS)]
        for i in range(0, len(devs), 2):
            tx.ip("link", "add", devs[i], "type", "veth", "peer", "name",
                  devs[i + 1] if i + 1 < len(devs) else devs[i] + "p")
        frame = packets.live_frame("02:00:00:be:0c:01", "02:00:00:be:0c:02", live.PORT)
        if not args.quick:
            host.wait_quiet(args.quiet_wait, log=log)
        log(f"blocklist per-packet bench: {args.blocklist_loads} loads x {args.rounds} rounds "
            f"on CPU {args.cpu}")
        t1 = time.monotonic()
        conn = children.start(blocklist_micro.worker, tx.path, fs.mnt, fs.base, args.cpu, targets, cells,
                              lists.sources, devs, frame, str(args.xdp_block), args.blocklist_loads, args.rounds,
                              MICRO_CALLS, 0 if args.quick else 0.5)
        try:
            raw = conn.recv()
        except EOFError:
            raise BenchError("the blocklist per-packet bench process died") from None
        if "error" in raw:
            raise BenchError(raw["error"])
        out["micro"] = blocklist_micro.figures(raw, cells, AA_CELLS)
        out["meta"]["seconds_micro"] = round(time.monotonic() - t1, 1)

        t2 = time.monotonic()
        configs = [(n, label + (f", {LIST_LABEL[lst]}" if lst else ""), how, lst, src)
                   for n, label, how, lst, src in LIVE if lst is None or lst in lists.lists]
        exact = [prefixes.dotted(a) for a, _ in lists.lists[EXACT_LIST].prefixes()]
        lv = blocklist_live.LiveBench(configs, nss, tx, fs, lists, exact, args.blocklist_object,
                                      children.start_pinned(args.cpu), children.start, log)
        try:
            out["live_setup_s"] = lv.setup_s
            if not args.quick:
                host.wait_quiet(args.quiet_wait, log=log)
            log(f"blocklist live bench: {args.blocklist_rounds} rounds on CPU {args.cpu}")
            rng = random.Random(5)
            frames = lv.calibrate(args.run_s, 20000 if args.quick else 100000)
            rounds, busy = [], []
            for rnd in range(args.blocklist_rounds):
                lv.reload(rng)
                if not args.quick:
                    host.wait_quiet(1, sample=0.1, exclude={args.cpu})
                a = host.cpu_times()
                rounds.append(lv.round(rnd))
                busy.append(host.busy_between(a, host.cpu_times(), exclude={args.cpu}))
        finally:
            lv.close()
        out["live"] = blocklist_live.figures(configs, rounds, frames, busy, lv.retried)
        out["meta"]["seconds_live"] = round(time.monotonic() - t2, 1)
    finally:
        # Every process that may use the bpffs stopped first (see Bpffs.close).
        if fs:
            fs.stop()
        children.stop()
        if fs:
            fs.close()
        lists.close()
    out["meta"]["seconds"] = round(time.monotonic() - t0, 1)
    return out


# --- verdict and tables ------------------------------------------------------

def targets(bl):
    """The blocklist's targets, each against the same round: ([target
    dicts as report.verdict takes them], [reasons not to judge])."""
    lv, load = bl["live"], bl["load_s"]
    cfg = lv["configs"]
    out = []
    for peer, what in (("nft-set-100k", "the nftables set rule"), ("ipset-100k", "iptables + ipset")):
        v = lv["ratios"][f"blocklist-100k/{peer}"]["median"]
        noise = abs(v - lv["ratios"][f"blocklist-100k-copy/{peer}"]["median"])
        out.append({"target": f"live: blocklist frames per second / {peer}'s, {TARGET:,} prefixes, "
                              "spread sources, paired rounds",
                    "value": v, "limit": f">= {MIN_RATE_VS_PEER}",
                    "status": report._status(v - MIN_RATE_VS_PEER, noise),
                    "text": f"live: blocklist at {v:.2f}x the frames per second of {what} "
                            f"({TARGET:,} prefixes, >= {MIN_RATE_VS_PEER}; A/A {noise:.2f})"})
    v = cfg["blocklist-100k"]["rate_vs_floor"]["median"]
    noise = abs(v - cfg["blocklist-100k-copy"]["rate_vs_floor"]["median"])
    out.append({"target": f"live: blocklist frames per second / the floor's, {TARGET:,} prefixes, "
                          "spread sources, paired rounds",
                "value": v, "limit": f">= {MIN_RATE_VS_FLOOR}",
                "status": report._status(v - MIN_RATE_VS_FLOOR, noise),
                "text": f"live: blocklist at {v:.3f}x the floor's frames per second "
                        f"({TARGET:,} prefixes, >= {MIN_RATE_VS_FLOOR}; A/A {noise:.3f})"})
    case, worst = max(load.items(), key=lambda kv: kv[1])
    out.append({"target": f"xdp-block load of {TARGET:,} prefixes, wall, the slowest case",
                "value": worst, "case": case, "limit": f"<= {MAX_LOAD_S} s",
                "status": "met" if worst <= MAX_LOAD_S else "MISSED",
                "text": f"xdp-block load of {TARGET:,} prefixes in {worst:.2f} s at worst "
                        f"({case.replace('_', ' ')}; <= {MAX_LOAD_S} s)"})
    short = [] if lv["rounds"] >= report.MIN_ROUNDS else \
        [f"{lv['rounds']} blocklist live rounds < {report.MIN_ROUNDS}"]
    return out, short


def _pm(s, sign=True):
    return report._pm(s, sign, 2 if abs(s["median"]) < 100 else 1)


def tables(bl, cpu):
    m, lv = bl["micro"], bl["live"]
    cells = m["cells"]
    per_load = m["rounds"] // max(1, m["loads"])
    lines = [f"Blocklist, per-packet cost (BPF_PROG_TEST_RUN behind spread-tail, CPU {cpu}, {m['loads']} "
             f"loads x {per_load} rounds, each the fastest of {m['calls']} calls of {SOURCES} runs, one per "
             "source): ns over the floor; median±half IQR",
             f"{'IPv4 prefixes':<22}{'listed, spread':>16}{'unlisted, spread':>18}{'listed, one source':>20}"]
    for name, n, _ in LISTS:
        if f"{name}/unlisted" not in cells:
            continue
        cols = [_pm(cells[f"{name}/{k}"]["over_floor"]) if f"{name}/{k}" in cells else "-"
                for k in ("listed", "unlisted", "hot")]
        lines.append(f"{size_label(n):<22}{cols[0]:>16}{cols[1]:>18}{cols[2]:>20}")
    lines.append(f"{size_label(EXACT) + ' /32':<22}{_pm(cells[EXACT_LIST + '/listed']['over_floor']):>16}"
                 f"{_pm(cells[EXACT_LIST + '/unlisted']['over_floor']):>18}{'-':>20}")
    lines.append(f"{'  xdp-filter alw_ip':<22}{_pm(cells['xdp-filter-ip/listed']['over_floor']):>16}"
                 f"{_pm(cells['xdp-filter-ip/unlisted']['over_floor']):>18}{'-':>20}")
    lines.append(f"floor behind spread-tail: {cells['floor']['ns']['median']:.1f} ns per run. A/A: the "
                 f"blocklist on {TARGET:,} prefixes, listed, minus a second copy: {m['aa_ns']:+.2f} ns.")
    lines.append(f"Sources: {SOURCES:,} per column, each listed one inside a random prefix of the list, "
                 "each unlisted one outside all; \"one source\": one listed address every time.")
    lines.append(f"xdp-filter: xdpfilt_alw_ip.o with the {EXACT:,} addresses (value SRC); it also looks up "
                 "the destination.")
    load = bl["load_s"]
    lines += ["", f"xdp-block load of {TARGET:,} prefixes (wall, one each): " + ", ".join(
        f"{k.replace('_', ' ')} {v:.2f} s" for k, v in load.items())]
    setup = ", ".join(f"{n} {s:.1f} s" for n, s in bl.get("live_setup_s", {}).items())
    lines.append("Setting up the peers' lists: " + (setup or "-") + "; xdp-block load: " + ", ".join(
        f"{n} {s:.1f} s" for n, s in bl["setup_s"].items()))
    lines += ["", f"Blocklist, live frames (spread sources: {SOURCES:,} listed addresses per list; generator "
                  f"and receiver on CPU {cpu}, {lv['rounds']} rounds, batches of {lv['batch_size']}): median "
                  "[min-max]; over floor and ratios paired per round",
              f"{'configuration':<52}{'Mpps':>7}{'[min-max]':>14}{'ns/frame':>10}{'over floor':>14}"
              f"{'x floor':>9}{'blocklist x':>13}"]
    for name, c in lv["configs"].items():
        ratio = lv["ratios"].get(f"blocklist-{c['list']}/{name}")
        r = f"{ratio['median']:.2f}" if ratio else "-"
        mp = c["mpps"]
        lines.append(f"{c['label']:<52}{mp['median']:>7.2f}{mp['min']:>7.2f}-{mp['max']:<6.2f}"
                     f"{c['ns_per_frame']['median']:>10.1f}{report._pm(c['over_floor_ns'], True):>14}"
                     f"{c['rate_vs_floor']['median']:>9.3f}{r:>13}")
    lines.append("blocklist x: the blocklist's frames per second (same list, same round) over this one's.")
    return lines
