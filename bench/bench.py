#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""usage: bench.py [--quick] [--out DIR] [--cpu N] [--loads N] [--rounds N] [--live-rounds N]
                [--blocklist-loads N] [--blocklist-rounds N] [--blocklist-object OBJ]
                [--xdp-block SCRIPT]

Measure ipxdp's programs side by side, in one run:

  1. per-packet cost of drop-tcp, count, port-9090 and xdp-filter (its
     TCP-port program, dropping TCP to the bench's ports) on nine packet
     classes, and how it grows with VLAN tags and IPv6 extension headers,
     against a floor program that only returns XDP_DROP
     (BPF_PROG_TEST_RUN, timed from userspace), with drop-tcp loaded twice
     as a self-check (A/A); and each program's xdp.frags section next to
     its plain one, and on 9,000-byte frames (bench/frags.py);
  2. frames dropped per second with live frames: the floor, drop-tcp
     (native and generic XDP), xdp-filter (native), an nftables ingress
     rule, an nftables prerouting rule and an iptables raw rule;
  3. the blocklist (bench/blocklist.py): xdp-block load of 100,000
     prefixes, timed; per-packet cost with 0, 1,000, 100,000 and 1,000,000
     prefixes, sources spread over the list; live frames from spread
     sources against an nftables set rule and iptables with an ipset of the
     same list, and against xdp-filter with the same 10,000 addresses.

Prints the tables, the A/A self-check and a verdict line against the
project's targets, and writes DIR/bench.json, DIR/bench.txt and
DIR/bench.png.  Needs root, the built objects (make all bench-objs),
xdp-tools (xdp-filter's objects), ipset and python3-matplotlib.

options:
  --quick           few, short rounds and no 1,000,000-prefix list (under
                    30 s): checks that the bench works; its figures are not
                    judged
  --out DIR         where to write the results (default: build)
  --cpu N           the CPU to run the programs and the generator on
                    (default: the last one this process may use)
  --loads N         per-packet bench: times every program is loaded afresh
                    (default 20, quick 2)
  --rounds N        per-packet bench: rounds per load (default 2, quick 1)
  --live-rounds N   rounds of the live bench (default 31, quick 3)
  --blocklist-loads N
                    loads of the blocklist's per-packet bench (default 8,
                    quick 2)
  --blocklist-rounds N
                    rounds of the blocklist's live bench (default 11,
                    quick 3)
  --blocklist-object OBJ, --xdp-block SCRIPT
                    the blocklist object and xdp-block to bench (default:
                    build/blocklist.o and scripts/xdp-block)
  -h, --help        show this help

It creates network namespaces named ipxdp-bench-<pid>-* and, for the
blocklist's lists, directories /tmp/ipxdp-bench-<pid>-* and bpffs mounts
seen only in a mount namespace of its own (never /sys/fs/bpf); it removes
them when it ends, also when interrupted, and those of a bench that was
killed.  kernel.bpf_stats_enabled is kept at 0 while it runs and put back
afterwards.
"""

import argparse
import importlib.util
import json
import multiprocessing
import os
import platform
import random
import signal
import sys
import time

import blocklist
import host
import peers
from host import BenchError
from ipxdp import netns, paths, project

ROOT = str(paths.ROOT)
PREFIX = "ipxdp-bench"  # its namespaces: ipxdp-bench-<pid>-<n>-<role>

PROGRAMS = ["touch", "drop-tcp", "count", "port-9090", "xdp-filter"]  # the table's columns
OBJECTS = {  # program: (object, section); the floor first
    "floor": ("build/bench/floor.o", "floor"),
    "touch": ("build/bench/touch.o", "touch"),
    "drop-tcp": ("build/drop-tcp.o", "drop-tcp"),
    "count": ("build/count.o", "count"),
    "port-9090": ("build/port-9090.o", "port-9090"),
}
AA_COPY = "drop-tcp-copy"  # drop-tcp loaded a second time: the A/A self-check


class Interrupted(Exception):
    pass


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        print(f"bench: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def parse_args(argv):
    p = _Parser(prog="bench.py", add_help=False)
    p.add_argument("-h", "--help", action="store_true")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=os.path.join(ROOT, "build"))
    p.add_argument("--cpu", type=int)
    p.add_argument("--loads", type=int)
    p.add_argument("--rounds", type=int)
    p.add_argument("--live-rounds", type=int)
    p.add_argument("--blocklist-loads", type=int)
    p.add_argument("--blocklist-rounds", type=int)
    p.add_argument("--blocklist-object", default=os.path.join(ROOT, "build", "blocklist.o"))
    p.add_argument("--xdp-block", default=os.path.join(ROOT, "scripts", "xdp-block"))
    args = p.parse_args(argv)
    if args.help:
        print(__doc__.strip())
        sys.exit(0)
    quick = args.quick
    args.loads = args.loads or (2 if quick else 20)
    args.rounds = args.rounds or (1 if quick else 2)
    args.live_rounds = args.live_rounds or (3 if quick else 31)
    args.run_s = 0.02 if quick else 0.05     # one live run
    args.quiet_wait = 2 if quick else 10     # seconds to wait for a quiet machine
    # Fewer than the rest: the blocklist's calls are long (see blocklist.py).
    args.blocklist_loads = args.blocklist_loads or (2 if quick else 8)
    args.blocklist_rounds = args.blocklist_rounds or (3 if quick else 11)
    allowed = os.sched_getaffinity(0)
    if args.cpu is None:
        args.cpu = max(allowed)
    elif args.cpu not in allowed:
        p.error(f"CPU {args.cpu} is not one this process may use ({sorted(allowed)})")
    if args.rounds < 1 or args.live_rounds < 1 or args.loads < 1 or args.blocklist_rounds < 1 or \
            args.blocklist_loads < 1:
        p.error("loads and rounds must be at least 1")
    return args


def _child(fn, conn, args):
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    fn(conn, *args)


class Children:
    """The bench's worker processes (forked, so they share the code)."""

    def __init__(self):
        self.ctx = multiprocessing.get_context("fork")
        self.procs = []

    def start(self, fn, *args):
        mine, theirs = self.ctx.Pipe()
        p = self.ctx.Process(target=_child, args=(fn, theirs, args), daemon=True)
        p.start()
        theirs.close()
        self.procs.append(p)
        return mine

    def start_pinned(self, cpu):
        """A start() for workers whose second argument is the CPU."""
        return lambda fn, ns, *args: self.start(fn, ns, cpu, *args)

    def stop(self):
        """Wait briefly for workers that are done; stop the others."""
        for p in self.procs:
            p.join(timeout=1)
            if p.is_alive():
                p.terminate()
                p.join(timeout=2)
            if p.is_alive():
                p.kill()
                p.join()
        self.procs = []


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"kernel": platform.release(), "cpu_model": model, "cpus": os.cpu_count()}


def micro_programs():
    """{name: peers.Program} the per-packet bench times, the floor first."""
    progs = {p: peers.ours(p, os.path.join(ROOT, path), sec) for p, (path, sec) in OBJECTS.items()}
    progs[AA_COPY] = peers.ours(AA_COPY, progs["drop-tcp"].path, "drop-tcp", like="drop-tcp")
    progs["xdp-filter"] = peer()
    import frags
    progs.update(frags.programs(progs))  # the multi-buffer rows (frags.py)
    return progs


def peer():
    """xdp-filter, dropping TCP to every port the bench's TCP frames go to."""
    import live
    import packets
    return peers.xdp_filter_tcp([packets.OTHER_PORT, tx_port(), live.PORT])


def hold_devs(n):
    return [f"hold{i}" for i in range(n)]


def make_holds(tx, n):
    """Devices to hold programs in the dispatcher with (ipxdp.bpf.hold): @n
    for the per-packet bench, one for the generator."""
    devs = hold_devs(n) + ["hold-gen"]
    for i in range(0, len(devs), 2):
        tx.ip("link", "add", devs[i], "type", "veth", "peer", "name",
              devs[i + 1] if i + 1 < len(devs) else devs[i] + "-peer")


def run_micro(children, tx, cpu, programs, frames, loads, rounds, quick):
    """The per-packet worker (micro.py) in namespace @tx on @cpu: @programs
    ({name: peers.Program}, the floor first, each held on a device of
    make_holds()) on @frames, @loads loads of @rounds rounds.  Each call
    lasts about 1 ms of the floor's time (0.3 quick), each cell is the
    fastest of 3 calls (2 quick), and each load waits up to 0.5 s for a
    quiet machine (not quick).  Returns what the worker sends back."""
    import micro
    conn = children.start(micro.worker, tx.path, cpu, programs, hold_devs(len(programs)), frames,
                          loads, rounds, 0.3 if quick else 1, 2 if quick else 3, 0 if quick else 0.5)
    try:
        raw = conn.recv()
    except EOFError:
        raise BenchError("the per-packet bench process died") from None
    if "error" in raw:
        raise BenchError(raw["error"])
    return raw


def bench_micro(args, children, tx, packets):
    import frags
    classes = packets.classes(tx_port())
    scaling = packets.scaling(tx_port())
    jumbo = frags.jumbo_frames(packets)
    # Identical frames (IPv4 TCP is also "0 VLAN tags") are timed once.
    frames, alias = [], {}
    for f in classes + [f for _, _, f in scaling] + jumbo:
        first = next((name for name, data, _ in frames if data == f.data), None)
        if first:
            alias[f.name] = first
        else:
            frames.append((f.name, f.data, f.expect))
    programs = micro_programs()
    by_name = {f.name: f for f in classes + [f for _, _, f in scaling] + jumbo}
    common = {f.name for f in classes}
    frames = [(name, data, {p: frags.expect(p, prog, by_name[name], common)
                            for p, prog in programs.items()})
              for name, data, _ in frames]
    raw = run_micro(children, tx, args.cpu, programs, frames, args.loads, args.rounds, args.quick)
    for name, first in alias.items():
        for p in raw["ns"]:
            raw["ns"][p][name] = raw["ns"][p][first]
    import report
    fr = frags.split(raw)
    micro = report.micro_figures(raw, classes, scaling, PROGRAMS)
    micro["multibuffer"] = frags.figures(fr, classes, jumbo)
    return micro


def bench_live(args, children, nss, tx):
    import live
    import report
    lv = live.Live(nss, tx, children.start_pinned(args.cpu), children.start, peer())
    rng = random.Random(2)
    try:
        frames = lv.calibrate(args.run_s, 20000 if args.quick else 100000)
        rounds, busy = [], []
        for rnd in range(args.live_rounds):
            lv.reload(rng)
            if not args.quick:
                host.wait_quiet(1, sample=0.1, exclude={args.cpu})
            a = host.cpu_times()
            rounds.append(lv.round(rnd))
            busy.append(host.busy_between(a, host.cpu_times(), exclude={args.cpu}))
    finally:
        lv.close()
    return report.live_figures(rounds, frames, busy, lv.retried)


def tx_port():
    return project.port_9090_config(paths.ROOT / "build")[0]


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if os.geteuid() != 0:
        log("needs root (it loads BPF programs and creates network namespaces): run it as root")
        return 1
    missing = [path for path, _ in OBJECTS.values()] + ["build/bench/gen-redirect.o",
                                                        "build/port-9090.config"]
    missing = [p for p in missing if not os.path.exists(os.path.join(ROOT, p))]
    missing += [p for p in (args.blocklist_object, args.xdp_block) if not os.path.exists(p)]
    if missing:
        log(f"{missing[0]} is not built: run make all bench-objs (or make bench)")
        return 1
    tool = blocklist.check_tools()
    if tool:
        log(f"missing {tool} (the blocklist's peers need nftables, ipset and iptables): run make deps")
        return 1
    if not os.path.exists(os.path.join(peers.XDP_FILTER_DIR, "xdpfilt_alw_tcp.o")):
        log("missing xdp-tools (xdp-filter's objects, the bench's peer): run make deps")
        return 1
    if importlib.util.find_spec("matplotlib") is None:
        log("missing python3-matplotlib (for the plot): run make deps")
        return 1

    def interrupted(signum, _frame):
        raise Interrupted(signal.Signals(signum).name)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, interrupted)

    nss = netns.Namespaces(PREFIX, ipv6=False)  # no IPv6: no stray frames to count
    children = Children()
    stats = host.Sysctl("kernel.bpf_stats_enabled", 0)
    started = time.monotonic()
    rc = 0
    try:
        stale = netns.remove_stale(PREFIX)
        if stale:
            log(f"removed {len(stale)} namespaces left by a bench that was killed")
        stats.set()
        import packets
        tx = nss.add("tx")
        make_holds(tx, len(micro_programs()))

        busy = host.wait_quiet(args.quiet_wait, log=log)
        log(f"per-packet bench: {args.loads} loads x {args.rounds} rounds on CPU {args.cpu}")
        t0 = time.monotonic()
        micro = bench_micro(args, children, tx, packets)
        parts = {"micro": time.monotonic() - t0}
        busy2 = host.wait_quiet(args.quiet_wait, log=log)
        log(f"live bench: {args.live_rounds} rounds on CPU {args.cpu}")
        t0 = time.monotonic()
        lv = bench_live(args, children, nss, tx)
        parts["live"] = time.monotonic() - t0
        t0 = time.monotonic()
        bl = blocklist.run(args, children, nss, tx, log)
        parts["blocklist"] = time.monotonic() - t0
        if stats.read() != "0":
            log("warning: kernel.bpf_stats_enabled was turned on during the run: figures are slow")
    except (BenchError, OSError, netns.CommandFailed) as e:
        log(str(e).split("\n", 1)[0])
        rc = 1
    except Interrupted as e:
        log(f"interrupted ({e}): removing its namespaces")
        rc = 130
    finally:
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        children.stop()
        left = nss.close()
        stats.restore()
        if left:
            log(f"could not remove namespaces: {' '.join(left)}")
            rc = rc or 1
    if rc:
        return rc

    import report
    aa_line, line, targets = report.verdict(micro, lv, blocklist.targets(bl))
    elapsed = time.monotonic() - started
    meta = dict(machine(), cpu=args.cpu, quick=args.quick, date=time.strftime("%Y-%m-%d %H:%M:%S %z"),
                seconds=round(elapsed, 1), seconds_per_part={k: round(v, 1) for k, v in parts.items()},
                busy_before=[round(busy, 3), round(busy2, 3)],
                bpf_stats_enabled_before=stats.saved_before)
    notes = [peer().note]
    import frags
    text = report.micro_table(micro, PROGRAMS, args.cpu, notes) + frags.table(micro) + [""] + \
        report.live_table(lv, args.cpu) + [""] + blocklist.tables(bl, args.cpu) + ["", aa_line, line]
    print("\n".join(text), flush=True)
    os.makedirs(args.out, exist_ok=True)
    result = {"meta": meta, "micro": micro, "live": lv, "blocklist": bl, "targets": targets,
              "self_check": aa_line, "verdict": line}
    with open(os.path.join(args.out, "bench.json"), "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    with open(os.path.join(args.out, "bench.txt"), "w") as f:
        f.write("\n".join(text) + "\n")
    title = (f"ipxdp bench, {meta['cpu_model']}, {meta['cpus']} CPUs, Linux {meta['kernel']}"
             + (" (QUICK: not judged)" if args.quick else ""))
    report.plot(os.path.join(args.out, "bench.png"), micro, lv, PROGRAMS, title, bl)
    log(f"wrote {args.out}/bench.json, bench.txt, bench.png in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
