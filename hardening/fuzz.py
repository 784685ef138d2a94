# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""make fuzz: the differential test at scale.

    fuzz.py [--seed S] [-n FRAMES] [--replay SEED:INDEX | --replay sweep:SEED:INDEX |
             --replay blocklist:SEED:ROUND]

Two sets of frames go through drop-tcp, port-9090 and count (the built
objects, via BPF_PROG_TEST_RUN) and through tests/reference.py, which must
agree on the verdict, the output bytes, and count's key and bytes:

  random  FRAMES frames (default 1000000) from tests/framegen.py, seeded
  sweep   the systematic frames of hardening/sweep.py (every VLAN stack,
          IHL, fragment field, IPv6 extension header kind and length, and
          truncation at every byte), about 12000 of them
  blocklist  FRAMES / 100000 rounds (at least 1) of tests/blocklist_differential.py:
          random nested block and allow lists loaded with xdp-block into a
          private bpffs, 10000 frames each with sources drawn from them;
          verdicts, output bytes, per-prefix counters and totals against
          tests/blocklist_reference.py (replay a round with
          --replay blocklist:SEED:ROUND)

Every disagreement is printed as a hex frame with the rule it breaks and the
command that replays it.  The run ends with the number of frames, each
program's verdicts (XDP_ABORTED among them) and the number of
disagreements; it exits 1 if there is any disagreement or any XDP_ABORTED.
"""

import argparse
import collections
import os
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

import blocklist_differential  # noqa: E402
import differential  # noqa: E402
from blocklist_env import PrivateBpffs  # noqa: E402
import framegen  # noqa: E402
import reference  # noqa: E402
import sweep  # noqa: E402
from bpfrun import VERDICTS  # noqa: E402

CHUNK = 100_000
KEYS = range(reference.KEY_MALFORMED + 1)


def tally_verdicts(objs):
    """Wraps each object's run() so that every verdict is counted."""
    verdicts = {name: collections.Counter() for name in ("drop-tcp", "port-9090", "count")}
    for name, obj in (("drop-tcp", objs.drop_tcp), ("port-9090", objs.port_9090), ("count", objs.count)):
        def run(frame, section=None, repeat=1, _run=obj.run, _tally=verdicts[name]):
            verdict, out = _run(frame, section, repeat)
            _tally[VERDICTS.get(verdict, f"unknown({verdict})")] += 1
            return verdict, out
        obj.run = run
    return verdicts


def describe(d, replay):
    parsed = reference.parse(d.frame)
    return (f"{d.program}: {d.what}\n"
            f"  reference parse: key={parsed.key} l4={parsed.l4}\n"
            f"  replay: /usr/bin/python3 hardening/fuzz.py --replay {replay}\n"
            f"  frame ({len(d.frame)} bytes): {d.frame.hex()}")


def run_sweep(objs, seed):
    """The systematic frames; returns [(replay, Disagreement)]."""
    frames = sweep.sweep(seed, objs.tx_port)
    objs.counters.clear(KEYS)
    totals, found = {}, []
    for index, (family, frame) in enumerate(frames):
        for d in differential.check_frame(objs, frame, seed, index, totals):
            d.what = f"[{family}] {d.what}"
            found.append((f"sweep:{seed}:{index}", d))
    counted = sum(objs.counters.total(k)["packets"] for k in KEYS)
    if counted != len(frames):
        found.append(("-", differential.Disagreement(seed, -1, "count", b"",
                                                     f"{counted} packets counted for {len(frames)} frames")))
    return len(frames), found


BLOCKLIST_FRAMES = 10_000


def run_blocklist(seed, rounds, tx_port, first=0):
    """Rounds of the blocklist differential test; returns the disagreements
    (strings) and the number of frames."""
    found = []
    with PrivateBpffs() as fs:
        fs.block("flush", check=True)
        with fs.load_object() as obj:
            for rnd in range(first, first + rounds):
                found += blocklist_differential.run_round(fs, obj, seed, rnd, BLOCKLIST_FRAMES, tx_port)
    return found, rounds * BLOCKLIST_FRAMES


def replay(objs, what):
    parts = what.split(":")
    if parts[0] == "blocklist":
        found, _ = run_blocklist(int(parts[1]), 1, objs.tx_port, first=int(parts[2]))
        for d in found[:50]:
            print(d)
        print(f"{len(found)} disagreements")
        return 1 if found else 0
    if parts[0] == "sweep":
        seed, index = int(parts[1]), int(parts[2])
        family, frame = sweep.sweep(seed, objs.tx_port)[index]
    else:
        seed, index = int(parts[0]), int(parts[1])
        family, frame = "random", framegen.frame(seed, index, objs.tx_port)
    objs.counters.clear(KEYS)
    found = differential.check_frame(objs, frame, seed, index, {})
    print(f"{family} frame ({len(frame)} bytes): {frame.hex()}")
    print(f"reference: {reference.parse(frame)}; drop-tcp {reference.drop_tcp(frame)[0]}, "
          f"port-9090 {reference.port_9090(frame, objs.tx_port, objs.tx_mac)[0]}")
    for d in found:
        print(describe(d, what))
    print(f"{len(found)} disagreements")
    return 1 if found else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=None, help="default: from the clock (printed)")
    ap.add_argument("-n", type=int, default=1_000_000, help="random frames (default 1000000)")
    ap.add_argument("--replay", metavar="[sweep:]SEED:INDEX", help="check one frame and print it")
    args = ap.parse_args()
    objs = differential.Objects(pathlib.Path(os.environ.get("IPXDP_BUILD", HERE.parent / "build")))
    try:
        if args.replay:
            return replay(objs, args.replay)
        seed = args.seed if args.seed is not None else int(time.time())
        verdicts = tally_verdicts(objs)
        start = time.monotonic()
        print(f"fuzz: seed {seed}; {args.n} random frames and the sweep through drop-tcp, "
              f"port-9090 and count (replay with --seed {seed})", flush=True)
        found = []
        nsweep, swept = run_sweep(objs, seed)
        found += swept
        print(f"  sweep: {nsweep} frames, {len(swept)} disagreements, "
              f"{time.monotonic() - start:.0f} s", flush=True)
        for first in range(0, args.n, CHUNK):
            last = min(first + CHUNK, args.n)
            # Index ranges keep every frame replayable from (seed, index).
            found += [(f"{d.seed}:{d.index}", d) for d in differential.run(objs, seed, first, last)]
            print(f"  random: {last} frames, {len(found)} disagreements, "
                  f"{time.monotonic() - start:.0f} s", flush=True)
        rounds = max(1, args.n // 100_000)
        block_found, nblock = run_blocklist(seed, rounds, objs.tx_port)
        print(f"  blocklist: {rounds} rounds, {nblock} frames, {len(block_found)} disagreements, "
              f"{time.monotonic() - start:.0f} s", flush=True)
        for where, d in found[:50]:
            print(describe(d, where))
        if len(found) > 50:
            print(f"... and {len(found) - 50} more")
        for d in block_found[:20]:
            print(f"blocklist: {d}\n  replay: /usr/bin/python3 hardening/fuzz.py --replay "
                  f"blocklist:{d.split()[1]}:{d.split()[3].rstrip(':')}")
        total = nsweep + args.n
        aborted = 0
        for name, counts in verdicts.items():
            aborted += counts["ABORTED"]
            shown = ", ".join(f"{v} {counts[v]}" for v in ("PASS", "DROP", "TX", "ABORTED"))
            others = sum(c for v, c in counts.items() if v not in ("PASS", "DROP", "TX", "ABORTED"))
            print(f"  {name:<9} {shown}" + (f", other {others}" if others else ""))
            if sum(counts.values()) != total:
                print(f"fuzz: {name} ran {sum(counts.values())} frames, expected {total}", file=sys.stderr)
                return 1
        print(f"fuzz: seed {seed}: {total} frames per program ({args.n} random, {nsweep} sweep), "
              f"{nblock} blocklist frames, {len(found) + len(block_found)} disagreements, "
              f"{aborted} XDP_ABORTED, {time.monotonic() - start:.0f} s")
        return 1 if found or block_found or aborted else 0
    finally:
        objs.close()


if __name__ == "__main__":
    sys.exit(main())
