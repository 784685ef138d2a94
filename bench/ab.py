#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""usage: ab.py [--quick] [--out FILE] [--cpu N] [--loads N] B_OBJECT

A/B of a parser change: drop-tcp as built (A, build/drop-tcp.o) against
drop-tcp built from another parse.h (B_OBJECT; `make bench-ab PARSE=FILE`
builds it into build/bench/ab/ and runs this), in one run of the
per-packet bench (bench/micro.py): the same loads, rounds and calls, the
floor, touch and xdp-filter beside them.  A and B are each loaded twice, so
the run measures its own noise twice (A/A and B/B).

Prints, per packet class and per depth of the IPv6 extension-header
series, each copy's ns over the floor, B - A (the mean of B's two copies
minus the mean of A's), the two self-checks and the price of correctness
of each (see performance.md); then one line: B - A on the extension-header
chain and on the class where B does worst, against the run's noise (the
largest A/A or B/B difference).  Writes the figures to FILE (default
build/bench-ab.json).  Needs root.

options:
  --quick       2 loads of 1 round: checks that it works; not to be judged
  --out FILE    where to write the JSON
  --cpu N       the CPU to time on (default: the last one this process may use)
  --loads N     loads of every program (default 20, as make bench)
  -h, --help    show this help
"""

import argparse
import json
import os
import signal
import statistics
import sys
import time

import bench
import host
import packets
import peers
from host import BenchError
from ipxdp import netns

CHAIN = "ipv6-ext3-tcp"
COPIES = ("A", "A2", "B", "B2")


class Interrupted(Exception):
    pass


def programs(b_path):
    """The floor first, touch, A and B twice each, xdp-filter."""
    a_path = os.path.join(bench.ROOT, "build", "drop-tcp.o")
    progs = {p: peers.ours(p, os.path.join(bench.ROOT, path), sec)
             for p, (path, sec) in bench.OBJECTS.items() if p in ("floor", "touch")}
    for name, path in zip(COPIES, (a_path, a_path, b_path, b_path)):
        progs[name] = peers.ours(name, path, "drop-tcp", like="drop-tcp")
    progs["xdp-filter"] = bench.peer()
    return progs


def frames(tx_port):
    """[(name, label, Frame, is a class)]: the classes, then the
    extension-header series (its depth 0 is the IPv6 TCP class, not timed
    twice)."""
    out = [(f.name, f.label, f, True) for f in packets.classes(tx_port)]
    seen = {f.data for _, _, f, _ in out}
    for series, depth, f in packets.scaling(tx_port):
        if series == "ipv6_ext" and f.data not in seen:
            out.append((f.name, f"{depth} ext hdrs", f, False))
    return out


def figures(raw, rows):
    ns = raw["ns"]
    med = lambda p, n: statistics.median(x - y for x, y in zip(ns[p][n], ns["floor"][n]))  # noqa: E731
    out = {}
    for name, label, _, is_class in rows:
        m = {p: round(med(p, name), 3) for p in ns if p != "floor"}
        a, b = (m["A"] + m["A2"]) / 2, (m["B"] + m["B2"]) / 2
        peer = m["xdp-filter"] - m["touch"]
        price = (lambda x: round((x - m["touch"]) / peer, 3) if peer > 0 else None)  # noqa: E731
        out[name] = {"label": label, "class": is_class, "over_floor": m, "b_minus_a": round(b - a, 3),
                     "aa": round(m["A"] - m["A2"], 3), "bb": round(m["B"] - m["B2"], 3),
                     "price_a": price(a), "price_b": price(b)}
    return out


def _price(v):
    return f"{v:.2f}" if v is not None else "-"


def table(fig, raw, loads):
    lines = [f"A/B (BPF_PROG_TEST_RUN, {loads} loads x {len(raw['load']) // loads} round(s), each the "
             f"fastest of {raw['calls']} calls of {raw['repeat']} runs): ns over the floor, median",
             f"{'class':<22}" + "".join(f"{c:>7}" for c in COPIES) + f"{'B-A':>7}{'A/A':>7}{'B/B':>7}"
             f"{'price A':>9}{'price B':>9}"]
    for row in fig.values():
        m = row["over_floor"]
        lines.append(f"{row['label']:<22}" + "".join(f"{m[c]:>+7.2f}" for c in COPIES)
                     + f"{row['b_minus_a']:>+7.2f}{row['aa']:>+7.2f}{row['bb']:>+7.2f}"
                     f"{_price(row['price_a']):>9}{_price(row['price_b']):>9}")
    noise = max(max(abs(r["aa"]), abs(r["bb"])) for r in fig.values())
    chain = fig[CHAIN]
    series = [r["b_minus_a"] for r in fig.values() if not r["class"]]
    worst = max((r for n, r in fig.items() if n != CHAIN and r["class"]), key=lambda r: r["b_minus_a"])
    lines.append(f"B - A: {chain['b_minus_a']:+.2f} ns on {chain['label']} (price {_price(chain['price_a'])} "
                 f"-> {_price(chain['price_b'])}), {min(series):+.2f} to {max(series):+.2f} ns on the "
                 f"extension-header series; on the other classes at most {worst['b_minus_a']:+.2f} ns "
                 f"({worst['label']}); noise (largest A/A or B/B difference): {noise:.2f} ns")
    sizes = ", ".join(f"{p} {raw['sizes'][p][0]}" for p in ("A", "B", "xdp-filter"))
    lines.append(f"Instructions after the verifier: {sizes}.")
    return lines, noise


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        print(f"ab: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def main(argv=None):
    p = _Parser(prog="ab.py", add_help=False)
    p.add_argument("-h", "--help", action="store_true")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=os.path.join(bench.ROOT, "build", "bench-ab.json"))
    p.add_argument("--cpu", type=int, default=max(os.sched_getaffinity(0)))
    p.add_argument("--loads", type=int)
    p.add_argument("b_object", nargs="?")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    if args.help:
        print(__doc__.strip())
        return 0
    if not args.b_object:
        p.error("name the object to compare, B")
    if args.cpu not in os.sched_getaffinity(0):
        p.error(f"CPU {args.cpu} is not one this process may use")
    quick, cpu = args.quick, args.cpu
    loads = args.loads or (2 if quick else 20)
    rounds = 1 if quick else 2
    b_path = os.path.abspath(args.b_object)
    if os.geteuid() != 0:
        print("ab: needs root (it loads BPF programs and creates a network namespace)", file=sys.stderr)
        return 1
    if not os.path.exists(b_path):
        print(f"ab: {args.b_object}: no such object", file=sys.stderr)
        return 1

    def interrupted(signum, _frame):
        raise Interrupted(signal.Signals(signum).name)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, interrupted)
    progs = programs(b_path)
    rows = frames(bench.tx_port())
    timed = [(name, f.data, {p: prog.expect(f) for p, prog in progs.items()}) for name, _, f, _ in rows]
    nss = netns.Namespaces(bench.PREFIX, ipv6=False)  # a killed run's are removed by the next
    children = bench.Children()
    stats = host.Sysctl("kernel.bpf_stats_enabled", 0)
    started = time.monotonic()
    try:
        netns.remove_stale(bench.PREFIX)
        stats.set()
        tx = nss.add("tx")
        bench.make_holds(tx, len(progs))
        raw = bench.run_micro(children, tx, cpu, progs, timed, loads, rounds, quick)
    except (BenchError, OSError, netns.CommandFailed) as e:
        print(f"ab: {str(e).splitlines()[0]}", file=sys.stderr)
        return 1
    except Interrupted as e:
        print(f"ab: interrupted ({e})", file=sys.stderr)
        return 130
    finally:
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        children.stop()
        nss.close()
        stats.restore()
    fig = figures(raw, rows)
    lines, noise = table(fig, raw, loads)
    print("\n".join(lines), flush=True)
    meta = dict(bench.machine(), cpu=cpu, quick=quick, b_object=b_path,
                date=time.strftime("%Y-%m-%d %H:%M:%S %z"), seconds=round(time.monotonic() - started, 1),
                busy_other_cpus=[round(b, 3) for b in raw["busy"]], preempted_calls_rerun=raw["retried"])
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "classes": fig, "noise_ns": noise, "summary": lines[-2],
                   "raw_ns": raw["ns"]}, f, indent=1)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
